//! Appending to the chains. [`append_in_transaction`] is the one place entries are written;
//! [`AuditLog`] runs it on a writer thread that groups the entries of concurrent callers into
//! one commit.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

use diesel::prelude::*;
use rekisteri_core::SharedClock;
use rekisteri_crypto::{CHAIN_GENESIS, ChainHash, CheckpointSigner, chain_step};
use rekisteri_db::schema::{audit_chains, audit_checkpoints, disclosure_log, security_events, usage_log};
use rekisteri_db::{DbConnection, Pool, chain_heads, kept_insert_into, kept_update, log_partitions, write_transaction};
use time::PrimitiveDateTime;

use crate::canonical::Canonical;
use crate::{ActorKind, AuditError, DisclosureEntry, NewEntry, SecurityEvent, UsageEntry};

#[derive(Debug, Clone, Insertable, Queryable)]
#[diesel(table_name = usage_log)]
pub struct UsageRow {
    pub chain_id: String,
    pub seq: i64,
    pub occurred_at: PrimitiveDateTime,
    pub registrar_id: String,
    pub log_controller_id: String,
    pub subject_index: Option<Vec<u8>>,
    pub data_kind: String,
    pub data_id: Option<String>,
    pub outcome: String,
    pub actor_kind: String,
    pub actor_id: String,
    pub actor_name: Option<String>,
    pub on_behalf_of: Option<String>,
    pub service_unit_oid: Option<String>,
    pub purpose: String,
    pub access_basis: String,
    pub special_reason: Option<String>,
    pub request_id: String,
    pub calling_system: Option<String>,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

#[derive(Debug, Clone, Insertable, Queryable)]
#[diesel(table_name = disclosure_log)]
pub struct DisclosureRow {
    pub chain_id: String,
    pub seq: i64,
    pub occurred_at: PrimitiveDateTime,
    pub registrar_id: String,
    pub subject_index: Option<Vec<u8>>,
    pub description: String,
    pub discloser_kind: String,
    pub discloser_id: String,
    pub recipient_kind: String,
    pub recipient_id: String,
    pub recipient_name: Option<String>,
    pub purpose: String,
    pub legal_basis: String,
    pub request_id: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

#[derive(Debug, Clone, Insertable, Queryable)]
#[diesel(table_name = security_events)]
pub struct SecurityRow {
    pub chain_id: String,
    pub seq: i64,
    pub occurred_at: PrimitiveDateTime,
    pub organisation_id: Option<String>,
    pub event_type: String,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub details: String,
    pub request_id: Option<String>,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// An entry as stored, chain fields included.
#[derive(Debug, Clone)]
pub enum StoredEntry {
    Usage(UsageRow),
    Disclosure(DisclosureRow),
    Security(SecurityRow),
}

impl UsageRow {
    pub fn canonical(&self) -> Vec<u8> {
        let mut c = Canonical::new("usage");
        c.text(Some(&self.chain_id))
            .number(self.seq)
            .time(self.occurred_at)
            .text(Some(&self.registrar_id))
            .text(Some(&self.log_controller_id))
            .binary(self.subject_index.as_deref())
            .text(Some(&self.data_kind))
            .text(self.data_id.as_deref())
            .text(Some(&self.outcome))
            .text(Some(&self.actor_kind))
            .text(Some(&self.actor_id))
            .text(self.actor_name.as_deref())
            .text(self.on_behalf_of.as_deref())
            .text(self.service_unit_oid.as_deref())
            .text(Some(&self.purpose))
            .text(Some(&self.access_basis))
            .text(self.special_reason.as_deref())
            .text(Some(&self.request_id))
            .text(self.calling_system.as_deref());
        c.finish()
    }
}

impl DisclosureRow {
    pub fn canonical(&self) -> Vec<u8> {
        let mut c = Canonical::new("disclosure");
        c.text(Some(&self.chain_id))
            .number(self.seq)
            .time(self.occurred_at)
            .text(Some(&self.registrar_id))
            .binary(self.subject_index.as_deref())
            .text(Some(&self.description))
            .text(Some(&self.discloser_kind))
            .text(Some(&self.discloser_id))
            .text(Some(&self.recipient_kind))
            .text(Some(&self.recipient_id))
            .text(self.recipient_name.as_deref())
            .text(Some(&self.purpose))
            .text(Some(&self.legal_basis))
            .text(Some(&self.request_id));
        c.finish()
    }
}

impl SecurityRow {
    pub fn canonical(&self) -> Vec<u8> {
        let mut c = Canonical::new("security");
        c.text(Some(&self.chain_id))
            .number(self.seq)
            .time(self.occurred_at)
            .text(self.organisation_id.as_deref())
            .text(Some(&self.event_type))
            .text(Some(&self.actor_kind))
            .text(self.actor_id.as_deref())
            .text(Some(&self.details))
            .text(self.request_id.as_deref());
        c.finish()
    }
}

impl StoredEntry {
    pub fn canonical(&self) -> Vec<u8> {
        match self {
            Self::Usage(r) => r.canonical(),
            Self::Disclosure(r) => r.canonical(),
            Self::Security(r) => r.canonical(),
        }
    }

    fn set_chain(&mut self, seq: i64, prev: &ChainHash) -> ChainHash {
        let (row_seq, row_prev) = match self {
            Self::Usage(r) => (&mut r.seq, &mut r.prev_hash),
            Self::Disclosure(r) => (&mut r.seq, &mut r.prev_hash),
            Self::Security(r) => (&mut r.seq, &mut r.prev_hash),
        };
        *row_seq = seq;
        *row_prev = prev.to_vec();
        let hash = chain_step(prev, &self.canonical());
        match self {
            Self::Usage(r) => r.hash = hash.to_vec(),
            Self::Disclosure(r) => r.hash = hash.to_vec(),
            Self::Security(r) => r.hash = hash.to_vec(),
        }
        hash
    }
}

fn row_of(entry: NewEntry) -> StoredEntry {
    let chain_id = entry.chain_id();
    match entry {
        NewEntry::Usage(e) => StoredEntry::Usage(usage_row(chain_id, e)),
        NewEntry::Disclosure(e) => StoredEntry::Disclosure(disclosure_row(chain_id, e)),
        NewEntry::Security(e) => StoredEntry::Security(security_row(chain_id, e)),
    }
}

fn usage_row(chain_id: String, e: UsageEntry) -> UsageRow {
    UsageRow {
        chain_id,
        seq: 0,
        occurred_at: e.occurred_at,
        registrar_id: e.registrar_id,
        log_controller_id: e.log_controller_id,
        subject_index: e.subject_index.map(|i| i.to_vec()),
        data_kind: e.data_kind,
        data_id: e.data_id,
        outcome: e.outcome.as_str().to_owned(),
        actor_kind: e.actor_kind.as_str().to_owned(),
        actor_id: e.actor_id,
        actor_name: e.actor_name,
        on_behalf_of: e.on_behalf_of,
        service_unit_oid: e.service_unit_oid,
        purpose: e.purpose,
        access_basis: e.access_basis.as_str().to_owned(),
        special_reason: e.special_reason,
        request_id: e.request_id,
        calling_system: e.calling_system,
        prev_hash: Vec::new(),
        hash: Vec::new(),
    }
}

fn disclosure_row(chain_id: String, e: DisclosureEntry) -> DisclosureRow {
    DisclosureRow {
        chain_id,
        seq: 0,
        occurred_at: e.occurred_at,
        registrar_id: e.registrar_id,
        subject_index: e.subject_index.map(|i| i.to_vec()),
        description: e.description,
        discloser_kind: e.discloser_kind.as_str().to_owned(),
        discloser_id: e.discloser_id,
        recipient_kind: e.recipient_kind,
        recipient_id: e.recipient_id,
        recipient_name: e.recipient_name,
        purpose: e.purpose,
        legal_basis: e.legal_basis,
        request_id: e.request_id,
        prev_hash: Vec::new(),
        hash: Vec::new(),
    }
}

fn security_row(chain_id: String, e: SecurityEvent) -> SecurityRow {
    SecurityRow {
        chain_id,
        seq: 0,
        occurred_at: e.occurred_at,
        organisation_id: e.organisation_id,
        event_type: e.event_type,
        actor_kind: e.actor_kind.as_str().to_owned(),
        actor_id: e.actor_id,
        details: e.details.to_string(),
        request_id: e.request_id,
        prev_hash: Vec::new(),
        hash: Vec::new(),
    }
}

/// The message a checkpoint signature covers.
pub fn checkpoint_message(chain_id: &str, seq: i64, hash: &[u8]) -> Vec<u8> {
    format!(
        "rekisteri/audit-checkpoint/v1\0{chain_id}\0{seq}\0{}",
        rekisteri_crypto::to_hex(hash)
    )
    .into_bytes()
}

/// How the chain is kept.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// The most entries one group commit takes.
    pub max_batch_entries: usize,
    /// A signed checkpoint is written whenever a chain's sequence reaches a multiple of this.
    pub checkpoint_interval: i64,
    /// The longest a group commit waits for the writer's connection; past it the group fails
    /// as unavailable, and its callers answer 503 instead of waiting on an outage.
    pub connection_timeout: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            max_batch_entries: 512,
            checkpoint_interval: 1000,
            connection_timeout: Duration::from_secs(1),
        }
    }
}

type Heads = BTreeMap<String, (i64, ChainHash)>;

/// Locks and reads the heads of `chains` (creating missing ones), in chain-id order so that two
/// writers never wait on each other in a cycle.
fn lock_heads(conn: &mut DbConnection, chains: &[String], now: PrimitiveDateTime) -> Result<Heads, AuditError> {
    let rows: Vec<(String, i64, Vec<u8>)> = match conn {
        DbConnection::Sqlite(c) => {
            let new_heads: Vec<_> = chains
                .iter()
                .map(|id| {
                    (
                        audit_chains::chain_id.eq(id.clone()),
                        audit_chains::last_seq.eq(0i64),
                        audit_chains::last_hash.eq(CHAIN_GENESIS.to_vec()),
                        audit_chains::updated_at.eq(now),
                    )
                })
                .collect();
            // The IMMEDIATE transaction already holds the database's write lock.
            diesel::insert_or_ignore_into(audit_chains::table)
                .values(&new_heads)
                .execute(c)?;
            audit_chains::table
                .filter(audit_chains::chain_id.eq_any(chains))
                .select((audit_chains::chain_id, audit_chains::last_seq, audit_chains::last_hash))
                .load(c)?
        }
        DbConnection::Postgres(c) => chain_heads::lock_or_create(c, chains, &CHAIN_GENESIS, now)?,
    };
    if rows.len() != chains.len() {
        return Err(AuditError::Write(format!(
            "{} of {} chain heads could be locked",
            rows.len(),
            chains.len()
        )));
    }
    let mut heads = Heads::new();
    for (id, seq, hash) in rows {
        let hash = ChainHash::try_from(hash.as_slice())
            .map_err(|_| AuditError::Write(format!("chain head {id} has a malformed hash")))?;
        heads.insert(id, (seq, hash));
    }
    Ok(heads)
}

/// Appends `entries` in the caller's transaction: locks the chain heads, links each entry to
/// its predecessor, inserts, advances the heads and signs checkpoints that fall due. The
/// caller commits (or its failure rolls everything back, entries included).
pub fn append_in_transaction(
    conn: &mut DbConnection,
    entries: Vec<NewEntry>,
    now: PrimitiveDateTime,
    signer: Option<&CheckpointSigner>,
    options: &WriterOptions,
) -> Result<(), AuditError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut rows: Vec<StoredEntry> = entries.into_iter().map(row_of).collect();
    let mut chains: Vec<String> = rows.iter().map(|r| chain_of(r).to_owned()).collect();
    chains.sort();
    chains.dedup();
    let mut heads = lock_heads(conn, &chains, now)?;
    let mut checkpoints = Vec::new();
    for row in &mut rows {
        let chain = chain_of(row).to_owned();
        let (seq, prev) = heads.get(&chain).copied().unwrap_or((0, CHAIN_GENESIS));
        let hash = row.set_chain(seq + 1, &prev);
        if options.checkpoint_interval > 0 && (seq + 1) % options.checkpoint_interval == 0 {
            checkpoints.push((chain.clone(), seq + 1, hash));
        }
        heads.insert(chain, (seq + 1, hash));
    }
    insert_rows(conn, rows)?;
    advance_heads(conn, heads, now)?;
    if let Some(signer) = signer {
        for (chain, seq, hash) in checkpoints {
            insert_checkpoint(conn, &chain, seq, &hash, signer, now)?;
        }
    }
    Ok(())
}

fn advance_heads(conn: &mut DbConnection, heads: Heads, now: PrimitiveDateTime) -> Result<(), AuditError> {
    match conn {
        DbConnection::Sqlite(c) => {
            for (chain, (seq, hash)) in heads {
                kept_update(
                    audit_chains::table,
                    (
                        audit_chains::last_seq.eq(seq),
                        audit_chains::last_hash.eq(hash.to_vec()),
                        audit_chains::updated_at.eq(now),
                    ),
                    audit_chains::chain_id.eq(chain),
                )
                .execute(c)?;
            }
        }
        DbConnection::Postgres(c) => {
            chain_heads::advance(
                c,
                heads
                    .iter()
                    .map(|(chain, (seq, hash))| (chain.as_str(), *seq, hash.as_slice())),
                now,
            )?;
        }
    }
    Ok(())
}

pub(crate) fn insert_checkpoint(
    conn: &mut DbConnection,
    chain: &str,
    seq: i64,
    hash: &[u8],
    signer: &CheckpointSigner,
    now: PrimitiveDateTime,
) -> Result<(), AuditError> {
    let signature = signer.sign(&checkpoint_message(chain, seq, hash));
    let values = (
        audit_checkpoints::chain_id.eq(chain),
        audit_checkpoints::seq.eq(seq),
        audit_checkpoints::kind.eq("signed"),
        audit_checkpoints::hash.eq(hash.to_vec()),
        audit_checkpoints::signing_key_id.eq(Some(signer.key_id())),
        audit_checkpoints::signature.eq(Some(signature)),
        audit_checkpoints::created_at.eq(now),
    );
    match conn {
        DbConnection::Sqlite(c) => diesel::insert_or_ignore_into(audit_checkpoints::table)
            .values(values)
            .execute(c)?,
        DbConnection::Postgres(c) => diesel::insert_into(audit_checkpoints::table)
            .values(values)
            .on_conflict_do_nothing()
            .execute(c)?,
    };
    Ok(())
}

fn chain_of(row: &StoredEntry) -> &str {
    match row {
        StoredEntry::Usage(r) => &r.chain_id,
        StoredEntry::Disclosure(r) => &r.chain_id,
        StoredEntry::Security(r) => &r.chain_id,
    }
}

fn insert_rows(conn: &mut DbConnection, rows: Vec<StoredEntry>) -> Result<(), AuditError> {
    let mut usage = Vec::new();
    let mut disclosure = Vec::new();
    let mut security = Vec::new();
    for row in rows {
        match row {
            StoredEntry::Usage(r) => usage.push(r),
            StoredEntry::Disclosure(r) => disclosure.push(r),
            StoredEntry::Security(r) => security.push(r),
        }
    }
    // On PostgreSQL one multi-row insert per log into the partitioned table. On SQLite each log is
    // a view over its monthly tables (`rekisteri_db::log_partitions`): a row goes into its
    // month's table, made on the month's first entry, by a statement kept prepared per table
    // (diesel's own batch insert runs a statement per row there as well).
    macro_rules! insert_batch {
        ($table:ident, $rows:expr) => {
            match conn {
                DbConnection::Sqlite(c) => {
                    for row in &$rows {
                        let partition = log_partitions::partition_for(stringify!($table), row.occurred_at);
                        log_partitions::insert_into_month(c, stringify!($table), &partition, |c| {
                            kept_insert_into(&partition, $table::table, row).execute(c)
                        })?;
                    }
                }
                DbConnection::Postgres(c) => {
                    // 65 535 bound parameters allow 3 000 usage rows per statement.
                    for chunk in $rows.chunks(1000) {
                        diesel::insert_into($table::table).values(chunk).execute(c)?;
                    }
                }
            }
        };
    }
    insert_batch!(usage_log, usage);
    insert_batch!(disclosure_log, disclosure);
    insert_batch!(security_events, security);
    Ok(())
}

/// Why a group commit failed, as every caller in the group is told.
#[derive(Debug, Clone)]
struct Failure {
    unavailable: bool,
    message: String,
}

struct Job {
    entries: Vec<NewEntry>,
    /// Entries staged in the outbox by committed changes, to be moved into their chains.
    staged: Vec<i64>,
    /// Whether to take whatever else the outbox holds (a crashed process's entries).
    sweep: bool,
    reply: mpsc::SyncSender<Result<(), Failure>>,
}

/// Since when the log could not be written because the database was unavailable, and how many
/// attempts (group commits and readiness probes) failed since.
#[derive(Debug, Clone, Copy)]
struct Outage {
    since: PrimitiveDateTime,
    failed_attempts: u64,
}

/// The process's audit log writer. Cloning is cheap; the writer thread ends when the last clone
/// is dropped.
#[derive(Clone)]
pub struct AuditLog {
    sender: mpsc::SyncSender<Job>,
    keyring: Option<std::sync::Arc<rekisteri_crypto::Keyring>>,
    options: WriterOptions,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditLog")
    }
}

impl AuditLog {
    /// Starts the writer thread. It holds one connection to `pool`'s database of its own, not
    /// one of the pool's, checked and replaced as pooled ones are.
    pub fn start(
        pool: Pool,
        clock: SharedClock,
        signer: Option<std::sync::Arc<rekisteri_crypto::Keyring>>,
        options: WriterOptions,
    ) -> Result<Self, AuditError> {
        // A pool of one of its own, outside the requests' pool: requests hold pooled
        // connections while they wait for this writer, so a writer that took its connection
        // from the same pool could wait behind them for ever once they fill it.
        let own = pool.single(options.connection_timeout)?;
        let (sender, receiver) = mpsc::sync_channel::<Job>(4096);
        let keyring = signer.clone();
        // What a crashed process left in the outbox goes into the chains before anything else:
        // a sweep queued first, whose answer nobody waits for.
        let (reply, _unheard) = mpsc::sync_channel(1);
        sender
            .send(Job {
                entries: Vec::new(),
                staged: Vec::new(),
                sweep: true,
                reply,
            })
            .map_err(|_| AuditError::WriterStopped)?;
        std::thread::Builder::new()
            .name("audit-writer".to_owned())
            .spawn(move || run_writer(own, clock, signer, options, receiver))
            .map_err(|e| AuditError::Write(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            sender,
            keyring,
            options,
        })
    }

    /// The settings the writer runs with (verification needs the checkpoint interval).
    pub fn options(&self) -> WriterOptions {
        self.options
    }

    /// Appends `entries` and returns once they are durably committed, or with the error that
    /// kept them (and everything committed with them) out.
    pub fn append(&self, entries: Vec<NewEntry>) -> Result<(), AuditError> {
        self.send(entries, Vec::new(), false)
    }

    /// Moves the entries that changes staged in the outbox as `ids` ([`crate::outbox::staging`])
    /// into their chains, and returns once that is committed. Ids no longer there (taken by
    /// another writer, or of a change that rolled back) are skipped.
    pub fn chain_staged(&self, ids: Vec<i64>) -> Result<(), AuditError> {
        self.send(Vec::new(), ids, false)
    }

    fn send(&self, entries: Vec<NewEntry>, staged: Vec<i64>, sweep: bool) -> Result<(), AuditError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.sender
            .send(Job {
                entries,
                staged,
                sweep,
                reply,
            })
            .map_err(|_| AuditError::WriterStopped)?;
        match answer.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Failure {
                unavailable: true,
                message,
            })) => Err(AuditError::Unavailable(message)),
            Ok(Err(Failure { message, .. })) => Err(AuditError::Write(message)),
            Err(_) => Err(AuditError::WriterStopped),
        }
    }

    /// Whether the log can be written, for readiness (PL-10). While the last group commit
    /// failed for want of the database, this tries again: it commits the
    /// `audit_log_restored` security event that ends the outage, or fails as the log still
    /// does. Otherwise it checks the writer's connection (and replaces a dead one), and on
    /// PostgreSQL chains what the outbox holds ([`crate::outbox`]: a crashed process's entries;
    /// usually nothing, and then it writes nothing).
    pub fn probe(&self) -> Result<(), AuditError> {
        self.send(Vec::new(), Vec::new(), true)
    }

    /// Appends in the caller's open transaction, with this log's signer and checkpoint
    /// interval: for entries that must commit atomically with the change they record. Inside
    /// [`crate::outbox::staging`] on PostgreSQL the transaction commits them into the outbox,
    /// for [`Self::chain_staged`] to chain.
    pub fn append_in(
        &self,
        conn: &mut DbConnection,
        entries: Vec<NewEntry>,
        now: PrimitiveDateTime,
    ) -> Result<(), AuditError> {
        let Some(entries) = crate::outbox::stage(conn, entries, now)? else {
            return Ok(());
        };
        let signer = self.keyring.as_ref().and_then(|k| k.audit_signer());
        append_in_transaction(conn, entries, now, signer, &self.options)
    }

    /// Runs `read` (on its own connection), then logs the entries it produced, and hands over
    /// the data only after they are durable (AU-4). If the log cannot be written, the caller
    /// gets the error and never the data.
    pub fn audited_read<T, E>(
        &self,
        conn: &mut DbConnection,
        read: impl FnOnce(&mut DbConnection) -> Result<(T, Vec<NewEntry>), E>,
    ) -> Result<T, E>
    where
        E: From<AuditError>,
    {
        let (data, entries) = read(conn)?;
        self.append(entries)?;
        Ok(data)
    }
}

/// The security event that closes an outage of the log: from when until now entries could not
/// be written, so nothing that needed them was served (AU-4).
fn restored_event(outage: Outage, now: PrimitiveDateTime) -> NewEntry {
    NewEntry::Security(SecurityEvent {
        occurred_at: now,
        organisation_id: None,
        event_type: "audit_log_restored".to_owned(),
        actor_kind: ActorKind::System,
        actor_id: Some("audit-writer".to_owned()),
        details: serde_json::json!({
            "unavailable_since": crate::format_time(outage.since),
            "failed_attempts": outage.failed_attempts,
        }),
        request_id: None,
    })
}

/// Appends `entries` in a savepoint of the caller's transaction and undoes them: whether they
/// would go in now, without logging uses that were refused (their callers got nothing).
fn try_and_undo(
    conn: &mut DbConnection,
    entries: Vec<NewEntry>,
    now: PrimitiveDateTime,
    signer: Option<&CheckpointSigner>,
    options: &WriterOptions,
) -> Result<(), AuditError> {
    enum Trial {
        Undone,
        Failed(AuditError),
    }
    impl From<diesel::result::Error> for Trial {
        fn from(e: diesel::result::Error) -> Self {
            Self::Failed(e.into())
        }
    }
    let trial = conn.transaction::<(), Trial, _>(|conn| {
        append_in_transaction(conn, entries, now, signer, options).map_err(Trial::Failed)?;
        Err(Trial::Undone)
    });
    match trial {
        Ok(()) | Err(Trial::Undone) => Ok(()),
        Err(Trial::Failed(e)) => Err(e),
    }
}

fn run_writer(
    pool: Pool,
    clock: SharedClock,
    keyring: Option<std::sync::Arc<rekisteri_crypto::Keyring>>,
    options: WriterOptions,
    receiver: mpsc::Receiver<Job>,
) {
    // While the database cannot take the log: since when, and the entries of the last group
    // that failed.
    let mut outage: Option<Outage> = None;
    let mut failed: Vec<NewEntry> = Vec::new();
    while let Ok(first) = receiver.recv() {
        let mut jobs = vec![first];
        let mut count = jobs[0].entries.len();
        while count < options.max_batch_entries {
            match receiver.try_recv() {
                Ok(job) => {
                    count += job.entries.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let callers: Vec<NewEntry> = jobs.iter_mut().flat_map(|j| std::mem::take(&mut j.entries)).collect();
        let staged: Vec<i64> = jobs.iter_mut().flat_map(|j| std::mem::take(&mut j.staged)).collect();
        let sweep = jobs.iter().any(|j| j.sweep);
        let started = std::time::Instant::now();
        let now = rekisteri_db::to_primitive(clock.now());
        let ongoing = outage;
        let signer = keyring.as_ref().and_then(|k| k.audit_signer());
        // The pool checks a PostgreSQL connection that has not answered lately, and replaces
        // one that does not answer: the first group after a database restart is not lost.
        let result = pool.get().map_err(AuditError::from).and_then(|mut conn| match ongoing {
            None if callers.is_empty()
                && staged.is_empty()
                && !(sweep && conn.backend() == rekisteri_db::Backend::Postgres) =>
            {
                Ok(())
            }
            None => write_transaction(&mut conn, |conn| {
                let mut entries = crate::outbox::take(conn, &staged, sweep)?;
                entries.extend(callers.iter().cloned());
                append_in_transaction(conn, entries, now, signer, &options)
            }),
            Some(ongoing) => write_transaction(&mut conn, |conn| {
                // A probe (readiness) ends the outage only if what failed last would go in
                // now: a small security event may fit where the usage entries did not.
                if callers.is_empty() && !failed.is_empty() {
                    try_and_undo(conn, failed.clone(), now, signer, &options)?;
                }
                let mut entries = vec![restored_event(ongoing, now)];
                entries.extend(crate::outbox::take(conn, &staged, sweep)?);
                entries.extend(callers.iter().cloned());
                append_in_transaction(conn, entries, now, signer, &options)
            }),
        });
        let figures = crate::metrics::writer_metrics();
        figures.group_entries.observe(count as f64);
        figures.commit_seconds.observe(started.elapsed().as_secs_f64());
        let result = match result {
            Ok(()) => {
                if ongoing.is_some() {
                    log::info!("audit writer: the log can be written again");
                    outage = None;
                    failed.clear();
                }
                Ok(())
            }
            Err(error) => {
                figures.failures.inc();
                let unavailable = error.is_unavailable();
                log::error!("audit writer: a group commit of {count} entries failed: {error}");
                if unavailable {
                    if !callers.is_empty() {
                        failed = callers;
                    }
                    outage = Some(Outage {
                        since: ongoing.map_or(now, |o| o.since),
                        failed_attempts: ongoing.map_or(0, |o| o.failed_attempts) + 1,
                    });
                }
                Err(Failure {
                    unavailable,
                    message: error.to_string(),
                })
            }
        };
        for job in jobs {
            let _ = job.reply.send(result.clone());
        }
    }
}
