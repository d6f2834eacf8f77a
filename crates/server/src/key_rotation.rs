//! `rekisteri keys rotate | retire | status` (PL-6): drives a key rotation through its steps
//! (see `rekisteri_db::key_rotation`), waiting for the running servers between them, and logs
//! each start, switch, milestone and end as a security event.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rekisteri_audit::{ActorKind, NewEntry, SecurityEvent};
use rekisteri_crypto::{KeyId, Keyring};
use rekisteri_db::key_rotation::{self as rotation, Awaited, Rotation, RotationState};
use time::OffsetDateTime;

use crate::config::Config;
use crate::{Failure, Runtime, keys, open_runtime, runtime, usage};

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Add a new data key and a new blind-index key, switch every server to them and
    /// re-encrypt and re-index every stored value; resumes an interrupted rotation.
    Rotate {
        /// Rows per committed batch.
        #[arg(long, default_value_t = 1000)]
        batch: i64,
        /// How long to wait for running servers to load the new keys before giving up (the
        /// rotation can be resumed).
        #[arg(long, default_value_t = 300)]
        wait_secs: u64,
    },
    /// Remove an old key from the key file once no stored value needs it.
    Retire { key: String },
    /// The newest rotation, its passes and the servers it waits for.
    Status,
}

pub fn run(config: &Config, command: KeysCommand) -> Result<(), Failure> {
    match command {
        KeysCommand::Rotate { batch, wait_secs } => rotate(config, batch.max(1), Duration::from_secs(wait_secs)),
        KeysCommand::Retire { key } => retire(config, &key),
        KeysCommand::Status => status(config),
    }
}

/// The key file a rotation rewrites; keys from `REKISTERI_KEYS` cannot be rewritten here.
fn key_file(config: &Config) -> Result<PathBuf, Failure> {
    if std::env::var("REKISTERI_KEYS").is_ok_and(|t| !t.trim().is_empty()) {
        return Err(usage(
            "the keys come from REKISTERI_KEYS: write them to a file (mode 0600), run this with \
             REKISTERI_KEY_FILE naming it, then store the new file's text in the secret store and \
             restart the servers with it",
        ));
    }
    Ok(keys::key_file_path(config))
}

fn event(rt: &Runtime, event_type: &str, details: serde_json::Value) -> Result<(), Failure> {
    let entry = SecurityEvent {
        occurred_at: rekisteri_db::to_primitive(OffsetDateTime::now_utc()),
        organisation_id: None,
        event_type: event_type.to_owned(),
        actor_kind: ActorKind::System,
        actor_id: Some("cli:keys".to_owned()),
        details,
        request_id: None,
    };
    rt.audit
        .append(vec![NewEntry::Security(entry)])
        .map_err(|e| runtime(format!("the security event {event_type} could not be logged: {e}")))
}

fn key_id(text: &str) -> Result<KeyId, Failure> {
    KeyId::new(text).map_err(usage)
}

/// Waits until every live server reports `awaited`, printing who is behind.
fn wait_for_servers(rt: &Runtime, awaited: Awaited<'_>, patience: Duration) -> Result<(), Failure> {
    let started = Instant::now();
    let mut told = usize::MAX;
    loop {
        let mut conn = rt.pool.get().map_err(runtime)?;
        let behind = rotation::servers_behind(&mut conn, awaited, OffsetDateTime::now_utc()).map_err(runtime)?;
        drop(conn);
        if behind.is_empty() {
            return Ok(());
        }
        let what = match awaited {
            Awaited::Holding(d, b) => format!("to load keys {d} and {b}"),
            Awaited::WritingWith(d, b) => format!("to write with keys {d} and {b}"),
        };
        if behind.len() != told {
            eprintln!(
                "waiting for {} running server(s) {what} (they check every few seconds; a server \
                 whose keys come from REKISTERI_KEYS must be restarted with the new key file)",
                behind.len()
            );
            told = behind.len();
        }
        if started.elapsed() > patience {
            return Err(runtime(format!(
                "{} server(s) did not report {what} in time: restart them with the new key file and \
                 run `rekisteri keys rotate` again to resume",
                behind.len()
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The rotation to drive: the unfinished one, or a new one with fresh keys in the key file.
fn current_or_new(rt: &Runtime, config: &Config) -> Result<Rotation, Failure> {
    let path = key_file(config)?;
    let mut conn = rt.pool.get().map_err(runtime)?;
    if let Some(existing) = rotation::newest(&mut conn).map_err(runtime)?
        && existing.state != RotationState::Finished
    {
        let held =
            rt.keyring.holds(&key_id(&existing.to_data_key)?) && rt.keyring.holds(&key_id(&existing.to_blind_key)?);
        if held {
            eprintln!("resuming rotation {} ({})", existing.id, existing.state.as_str());
            return Ok(existing);
        }
        // Killed between recording the rotation and writing the key file: nothing was written
        // with the keys it names, so it is dropped and a new one begins.
        if !rotation::abandon_prepared(&mut conn, &existing.id).map_err(runtime)? {
            return Err(runtime(format!(
                "rotation {} to keys {} and {} is switched, but the key file {} lacks those keys: \
                 restore the key file the rotation wrote",
                existing.id,
                existing.to_data_key,
                existing.to_blind_key,
                path.display()
            )));
        }
        eprintln!("rotation {} never wrote its keys; starting again", existing.id);
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| runtime(format!("cannot read the key file {}: {e}", path.display())))?;
    let (new_text, ids) = Keyring::add_rotation_keys(&text).map_err(runtime)?;
    let from = (rt.keyring.active_key_id(), rt.keyring.active_blind_index_key_id());
    // The key file is written only after the rotation is recorded as prepared: a server that
    // starts with the new file in between still writes with the old keys, because the newest
    // rotation, not the file, names the active keys.
    let recorded = rotation::begin(
        &mut conn,
        (&from.0, &from.1),
        (&ids.data, &ids.blind_index),
        OffsetDateTime::now_utc(),
    )
    .map_err(runtime)?;
    Keyring::replace_file(&path, &new_text).map_err(runtime)?;
    let new_keys = Keyring::from_toml(&new_text).map_err(runtime)?;
    rt.keyring.absorb(new_keys).map_err(runtime)?;
    rekisteri_db::keycheck::verify_keyring(&mut conn, &rt.keyring, OffsetDateTime::now_utc()).map_err(runtime)?;
    event(
        rt,
        "key_rotation_started",
        serde_json::json!({
            "rotation": recorded.id,
            "from_data_key": from.0.as_str(),
            "to_data_key": ids.data.as_str(),
            "from_blind_index_key": from.1.as_str(),
            "to_blind_index_key": ids.blind_index.as_str(),
        }),
    )?;
    eprintln!(
        "rotation {}: keys {} and {} added to {}",
        recorded.id,
        ids.data,
        ids.blind_index,
        path.display()
    );
    Ok(recorded)
}

/// Fault injection for the crash tests: with `REKISTERI_FAULT_PAUSE_IN_ROTATION_BATCH=N`, the
/// N-th batch that changes rows stops inside its transaction, after its updates and before its
/// commit, says so on stderr and waits for stdin to close, so a test can `kill -9` the process at
/// exactly that point. Unset in production: then nothing here runs.
struct FaultPause {
    at: Option<u64>,
    seen: u64,
}

impl FaultPause {
    fn from_env() -> Self {
        Self {
            at: std::env::var("REKISTERI_FAULT_PAUSE_IN_ROTATION_BATCH")
                .ok()
                .and_then(|v| v.parse().ok()),
            seen: 0,
        }
    }

    fn before_commit(&mut self, target: &str, batch: &rotation::Batch) {
        let Some(at) = self.at else { return };
        if batch.values_resealed == 0 {
            return;
        }
        self.seen += 1;
        if self.seen == at {
            eprintln!("fault: paused in batch {at} of the rotation ({target}), before its commit");
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        }
    }
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Runs every pass to its end; returns the values re-encrypted.
fn run_passes(rt: &Runtime, rotation_id: &str, batch: i64) -> Result<u64, Failure> {
    let mut conn = rt.pool.get().map_err(runtime)?;
    let totals = rotation::rows_to_walk(&mut conn).map_err(runtime)?;
    let total: i64 = totals.iter().map(|(_, n)| n).sum();
    let bar = progress_bar(total.max(0) as u64);
    let mut walked = 0u64;
    let mut resealed = 0u64;
    let mut next_milestone = 1u64;
    let mut fault = FaultPause::from_env();
    for target in rotation::pass_names() {
        bar.set_message(target);
        loop {
            let done = rotation::next_batch(&mut conn, &rt.keyring, rotation_id, target, batch, &mut |b| {
                fault.before_commit(target, b)
            })
            .map_err(runtime)?;
            walked += done.rows;
            resealed += done.values_resealed;
            bar.inc(done.rows);
            // A milestone per quarter of the rows, so the security log shows how far it got.
            while total > 0 && next_milestone <= 3 && walked * 4 >= next_milestone * total as u64 {
                event(
                    rt,
                    "key_rotation_progress",
                    serde_json::json!({
                        "rotation": rotation_id,
                        "percent": next_milestone * 25,
                        "rows": walked,
                        "values_resealed": resealed,
                    }),
                )?;
                next_milestone += 1;
            }
            if done.done {
                break;
            }
        }
    }
    bar.finish_and_clear();
    Ok(resealed)
}

fn rotate(config: &Config, batch: i64, patience: Duration) -> Result<(), Failure> {
    let rt = open_runtime(config)?;
    let mut current = current_or_new(&rt, config)?;
    if current.state == RotationState::Prepared {
        wait_for_servers(
            &rt,
            Awaited::Holding(&current.to_data_key, &current.to_blind_key),
            patience,
        )?;
        let mut conn = rt.pool.get().map_err(runtime)?;
        rotation::advance(
            &mut conn,
            &current.id,
            RotationState::Switched,
            OffsetDateTime::now_utc(),
        )
        .map_err(runtime)?;
        rt.keyring
            .set_active(&key_id(&current.to_data_key)?, &key_id(&current.to_blind_key)?)
            .map_err(runtime)?;
        event(
            &rt,
            "key_rotation_switched",
            serde_json::json!({ "rotation": current.id, "data_key": current.to_data_key, "blind_index_key": current.to_blind_key }),
        )?;
        current.state = RotationState::Switched;
    }
    if current.state == RotationState::Switched {
        wait_for_servers(
            &rt,
            Awaited::WritingWith(&current.to_data_key, &current.to_blind_key),
            patience,
        )?;
        let started = Instant::now();
        let resealed = run_passes(&rt, &current.id, batch)?;
        let mut conn = rt.pool.get().map_err(runtime)?;
        // A value a request sealed with the old key while its server switched would stay
        // behind the passes; the check finds any such value before the rotation may end.
        let left = rotation::values_under_key(&mut conn, &current.from_data_key).map_err(runtime)?;
        if !left.is_empty() {
            return Err(runtime(format!(
                "values still under key {} after the passes ({left:?}): a server may still write with \
                 it; run `rekisteri keys rotate` again",
                current.from_data_key
            )));
        }
        rotation::advance(
            &mut conn,
            &current.id,
            RotationState::Finished,
            OffsetDateTime::now_utc(),
        )
        .map_err(runtime)?;
        let seconds = started.elapsed().as_secs_f64();
        event(
            &rt,
            "key_rotation_finished",
            serde_json::json!({ "rotation": current.id, "values_resealed": resealed, "seconds": seconds }),
        )?;
        println!(
            "rotation {} finished: {resealed} values re-encrypted in {seconds:.1} s; nothing uses key {} \
             any more: `rekisteri keys retire {}` removes it from the key file",
            current.id, current.from_data_key, current.from_data_key
        );
    }
    Ok(())
}

fn retire(config: &Config, key: &str) -> Result<(), Failure> {
    let id = key_id(key)?;
    let path = key_file(config)?;
    let rt = open_runtime(config)?;
    let mut conn = rt.pool.get().map_err(runtime)?;
    if rt.keyring.active_key_id() == id || rt.keyring.active_blind_index_key_id() == id {
        return Err(usage(format!("key {id} is active: rotate to new keys first")));
    }
    if let Some(current) = rotation::newest(&mut conn).map_err(runtime)?
        && current.state != RotationState::Finished
    {
        return Err(usage(format!(
            "rotation {} is not finished: run `rekisteri keys rotate` to finish it first",
            current.id
        )));
    }
    if rt.keyring.data_key_ids().contains(&id) {
        let left = rotation::values_under_key(&mut conn, id.as_str()).map_err(runtime)?;
        if !left.is_empty() {
            return Err(usage(format!(
                "key {id} still encrypts stored values ({left:?}): run `rekisteri keys rotate` first"
            )));
        }
    } else if rt.keyring.blind_index_key_ids().contains(&id) {
        let entries =
            rotation::audit_entries_indexed_before(&mut conn, rekisteri_db::to_primitive(OffsetDateTime::now_utc()))
                .map_err(runtime)?;
        if entries > 0 {
            return Err(usage(format!(
                "blind-index key {id} may have indexed {entries} audit-log entries, which keep their \
                 index (it is part of the hash chain): without the key, a person's access report would \
                 miss them. Keep it until retention has removed those entries"
            )));
        }
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| runtime(format!("cannot read the key file {}: {e}", path.display())))?;
    let new_text = Keyring::remove_key(&text, &id).map_err(usage)?;
    Keyring::replace_file(&path, &new_text).map_err(runtime)?;
    rotation::forget_key(&mut conn, id.as_str()).map_err(runtime)?;
    event(&rt, "key_retired", serde_json::json!({ "key": id.as_str() }))?;
    println!("key {id} removed from {}", path.display());
    Ok(())
}

fn status(config: &Config) -> Result<(), Failure> {
    let rt = open_runtime(config)?;
    let mut conn = rt.pool.get().map_err(runtime)?;
    println!(
        "keys held: data {:?}, blind index {:?}; active {} and {}",
        rt.keyring
            .data_key_ids()
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>(),
        rt.keyring
            .blind_index_key_ids()
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>(),
        rt.keyring.active_key_id(),
        rt.keyring.active_blind_index_key_id()
    );
    let Some(current) = rotation::newest(&mut conn).map_err(runtime)? else {
        println!("no rotation yet");
        return Ok(());
    };
    println!(
        "rotation {}: {} ({} → {}, {} → {}), {} values re-encrypted",
        current.id,
        current.state.as_str(),
        current.from_data_key,
        current.to_data_key,
        current.from_blind_key,
        current.to_blind_key,
        current.values_resealed
    );
    for (target, rows, done) in rotation::progress(&mut conn, &current.id).map_err(runtime)? {
        println!("  {target:<24} {rows:>10} rows {}", if done { "done" } else { "" });
    }
    Ok(())
}
