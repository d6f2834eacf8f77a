//! The VTJ commands: `jobs run vtj-sync`, `vtj sync|import|simulate`, `bench vtj`.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Subcommand;
use rekisteri_vtj::simulator::{Simulator, SimulatorData};
use rekisteri_vtj::{FailPoints, Vtj, VtjClient, VtjConfig};

use crate::config::Config;
use crate::{Failure, open_runtime, runtime, usage};

#[derive(Subcommand)]
pub enum VtjCommand {
    /// Fetch and apply the changes of one registrar now (or of every registrar with monitored
    /// clients). Configured by REKISTERI_VTJ_* (see docs/vtj.md).
    Sync {
        #[arg(long)]
        registrar: Option<String>,
    },
    /// Apply a file of change messages (JSON Lines of `muutokset` answers) for a registrar.
    Import {
        file: PathBuf,
        #[arg(long)]
        registrar: String,
    },
    /// Serve the simulator of DVV's change interface from a data file.
    Simulate {
        #[arg(long, default_value = "127.0.0.1:8090")]
        bind: String,
        #[arg(long)]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Stage and apply N VTJ changes and compare with the raw UPDATE-by-key rate (VT-13).
    Vtj {
        #[arg(long, default_value_t = 1_000_000)]
        changes: u64,
        /// A scratch database; default a new SQLite file in a temporary directory.
        #[arg(long)]
        database: Option<String>,
    },
}

fn context(config: &Config) -> Result<(rekisteri_db::Pool, Vtj), Failure> {
    let rt = open_runtime(config)?;
    let vtj_config = VtjConfig::from_env(&|name| std::env::var(name).ok()).map_err(usage)?;
    Ok((
        rt.pool,
        Vtj {
            keyring: rt.keyring,
            audit: rt.audit,
            clock: rt.clock,
            config: vtj_config,
            fail: FailPoints::off(),
        },
    ))
}

/// `jobs run vtj-sync` and `vtj sync`: one run per registrar; a registrar whose run is already
/// going is reported and the others continue.
pub fn sync(config: &Config, registrar: Option<String>) -> Result<(), Failure> {
    let (pool, vtj) = context(config)?;
    let client = VtjClient::new(vtj.config.clone()).map_err(usage)?;
    let mut conn = pool.get().map_err(runtime)?;
    let registrars = match registrar {
        Some(r) => vec![r],
        None => rekisteri_clients::population::registrars_with_clients(&mut conn).map_err(runtime)?,
    };
    let mut failed = 0;
    for rid in registrars {
        match rekisteri_vtj::run_sync(&mut conn, &vtj, &client, &rid) {
            Ok(r) => println!("{}", summary(&rid, &r)),
            Err(e) => {
                eprintln!("vtj-sync {rid}: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(runtime(format!("{failed} registrar runs failed")));
    }
    Ok(())
}

/// One registrar's run as `vtj sync` prints it and the job reports it.
fn summary(rid: &str, r: &rekisteri_vtj::SyncReport) -> String {
    format!(
        "vtj-sync {rid}: cursor {} -> {}, {} monitored, {} loaded, {} pages, {} applied, {} skipped, {} failed",
        r.cursor_before.map_or("-".into(), |c| c.to_string()),
        r.cursor_after.map_or("-".into(), |c| c.to_string()),
        r.monitored,
        r.loaded,
        r.pages,
        r.counts.applied,
        r.counts.skipped,
        r.counts.failed
    )
}

/// The scheduled `vtj-sync` (VT-10): every registrar with monitored clients; a failed
/// registrar fails the run (it is retried with backoff) after the others had their turn.
pub fn sync_job(rt: &crate::Runtime, out: &mut rekisteri_jobs::JobReport) -> Result<(), Failure> {
    let vtj = Vtj {
        keyring: rt.keyring.clone(),
        audit: rt.audit.clone(),
        clock: rt.clock.clone(),
        config: VtjConfig::from_env(&|name| std::env::var(name).ok()).map_err(usage)?,
        fail: FailPoints::off(),
    };
    let mut conn = rt.pool.get().map_err(runtime)?;
    let registrars = rekisteri_clients::population::registrars_with_clients(&mut conn).map_err(runtime)?;
    if registrars.is_empty() {
        out.line("vtj-sync: no registrar has monitored clients");
        return Ok(());
    }
    let client = VtjClient::new(vtj.config.clone()).map_err(usage)?;
    let mut failed = Vec::new();
    for rid in registrars {
        match rekisteri_vtj::run_sync(&mut conn, &vtj, &client, &rid) {
            Ok(r) => {
                out.line(summary(&rid, &r));
                out.count("registrars", 1);
                out.count("applied", r.counts.applied);
                out.count("skipped", r.counts.skipped);
                out.count("failed", r.counts.failed);
            }
            Err(e) => failed.push(format!("{rid}: {e}")),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(runtime(format!(
            "{} registrar runs failed: {}",
            failed.len(),
            failed.join("; ")
        )))
    }
}

pub fn run(config: &Config, command: VtjCommand) -> Result<(), Failure> {
    match command {
        VtjCommand::Sync { registrar } => sync(config, registrar),
        VtjCommand::Import { file, registrar } => import(config, &file, &registrar),
        VtjCommand::Simulate { bind, data } => simulate(&bind, &data),
    }
}

/// Stages and applies the file; a malformed line refuses the whole file (VT-8). The progress
/// bar shows on a terminal only.
fn import(config: &Config, file: &std::path::Path, registrar: &str) -> Result<(), Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| usage(format!("{}: {e}", file.display())))?;
    let (pool, vtj) = context(config)?;
    let mut conn = pool.get().map_err(runtime)?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(lines.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} pages {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    // Every line is parsed first: nothing is applied from a file with a broken line.
    let mut pages = Vec::with_capacity(lines.len());
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let answer = rekisteri_vtj::message::parse_muutokset(line)
            .map_err(|e| usage(format!("{} line {}: {e}", file.display(), i + 1)))?;
        pages.push(answer.muutokset);
    }
    let mut total = rekisteri_vtj::ApplyCounts::default();
    for page in pages {
        let counts = rekisteri_vtj::sync::ingest(&mut conn, &vtj, registrar, "import", page).map_err(runtime)?;
        total.applied += counts.applied;
        total.skipped += counts.skipped;
        total.failed += counts.failed;
        bar.inc(1);
        bar.set_message(format!("{} applied", total.applied));
    }
    bar.finish_and_clear();
    println!(
        "vtj import: {} applied, {} skipped, {} failed",
        total.applied, total.skipped, total.failed
    );
    Ok(())
}

fn simulate(bind: &str, data: &std::path::Path) -> Result<(), Failure> {
    let text = std::fs::read_to_string(data).map_err(|e| usage(format!("{}: {e}", data.display())))?;
    let data: SimulatorData = serde_json::from_str(&text)
        .map_err(|e| usage(format!("{}: line {} column {}", data.display(), e.line(), e.column())))?;
    let simulator = Simulator::start(bind, data).map_err(|e| runtime(format!("cannot listen on {bind}: {e}")))?;
    println!("VTJ simulator on {} (REKISTERI_VTJ_BASE_URL)", simulator.url);
    simulator.wait();
    Ok(())
}

pub fn bench(command: BenchCommand) -> Result<(), Failure> {
    let BenchCommand::Vtj { changes, database } = command;
    let scratch = tempfile::tempdir().map_err(runtime)?;
    let url = database.unwrap_or_else(|| format!("sqlite://{}", scratch.path().join("bench.db").display()));
    let r = rekisteri_vtj::bench::stage_and_apply(&url, changes).map_err(runtime)?;
    println!("backend                 {}", r.backend);
    println!("changes                 {} over {} people", r.changes, r.people);
    println!("staging                 {:.2} s", r.stage_seconds);
    println!("application             {:.2} s", r.apply_seconds);
    println!("changes/s (apply)       {:.0}", r.changes_per_second);
    println!("changes/s (stage+apply) {:.0}", r.end_to_end_per_second);
    println!(
        "raw UPDATE-by-key/s     {:.0} ({} rows)",
        r.raw_updates_per_second, r.raw_updates
    );
    println!("ratio                   {:.2}", r.ratio);
    Ok(())
}
