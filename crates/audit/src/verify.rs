//! Walks every chain and reports where it breaks (AU-5). Streams in pages, so memory stays flat
//! however long the log is.

use std::collections::BTreeMap;

use diesel::prelude::*;
use rekisteri_crypto::{CHAIN_GENESIS, ChainHash, chain_step, verify_signature};
use rekisteri_db::DbConnection;
use rekisteri_db::schema::{audit_chains, audit_checkpoints, disclosure_log, security_events, usage_log};

use crate::writer::{DisclosureRow, SecurityRow, StoredEntry, UsageRow, checkpoint_message};
use crate::{AuditError, LogKind};

const PAGE: i64 = 10_000;

/// The first place a chain stops verifying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub chain_id: String,
    pub seq: i64,
    pub reason: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "chain {} entry {}: {}", self.chain_id, self.seq, self.reason)
    }
}

#[derive(Debug, Default, Clone)]
pub struct VerifyReport {
    pub chains: u64,
    pub entries: u64,
    pub signed_checkpoints: u64,
    /// The first break of every broken chain; empty when everything verifies.
    pub breaks: Vec<Break>,
}

impl VerifyReport {
    pub fn intact(&self) -> bool {
        self.breaks.is_empty()
    }
}

/// What verification needs to know beyond the database.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// The public key checkpoints are signed with; without it signatures are not checked.
    pub public_key: Option<&'a [u8]>,
    /// Checkpoints are expected at every multiple of this sequence number (0: not expected).
    pub checkpoint_interval: i64,
}

#[derive(Queryable)]
struct Checkpoint {
    chain_id: String,
    seq: i64,
    kind: String,
    hash: Vec<u8>,
    signature: Option<Vec<u8>>,
}

fn kind_of(chain_id: &str) -> Option<LogKind> {
    LogKind::ALL.into_iter().find(|k| {
        chain_id
            .strip_prefix(k.as_str())
            .is_some_and(|rest| rest.starts_with(':'))
    })
}

fn page(conn: &mut DbConnection, kind: LogKind, chain: &str, after: i64) -> QueryResult<Vec<StoredEntry>> {
    Ok(match kind {
        LogKind::Usage => usage_log::table
            .filter(usage_log::chain_id.eq(chain).and(usage_log::seq.gt(after)))
            .order(usage_log::seq)
            .limit(PAGE)
            .select(usage_log::all_columns)
            .load::<UsageRow>(conn)?
            .into_iter()
            .map(StoredEntry::Usage)
            .collect(),
        LogKind::Disclosure => disclosure_log::table
            .filter(disclosure_log::chain_id.eq(chain).and(disclosure_log::seq.gt(after)))
            .order(disclosure_log::seq)
            .limit(PAGE)
            .select(disclosure_log::all_columns)
            .load::<DisclosureRow>(conn)?
            .into_iter()
            .map(StoredEntry::Disclosure)
            .collect(),
        LogKind::Security => security_events::table
            .filter(security_events::chain_id.eq(chain).and(security_events::seq.gt(after)))
            .order(security_events::seq)
            .limit(PAGE)
            .select(security_events::all_columns)
            .load::<SecurityRow>(conn)?
            .into_iter()
            .map(StoredEntry::Security)
            .collect(),
    })
}

fn chain_fields(entry: &StoredEntry) -> (i64, &[u8], &[u8]) {
    match entry {
        StoredEntry::Usage(r) => (r.seq, &r.prev_hash, &r.hash),
        StoredEntry::Disclosure(r) => (r.seq, &r.prev_hash, &r.hash),
        StoredEntry::Security(r) => (r.seq, &r.prev_hash, &r.hash),
    }
}

/// Verifies every chain of every log.
pub fn verify_all(conn: &mut DbConnection, options: &VerifyOptions<'_>) -> Result<VerifyReport, AuditError> {
    let heads: Vec<(String, i64, Vec<u8>)> = audit_chains::table
        .order(audit_chains::chain_id)
        .select((audit_chains::chain_id, audit_chains::last_seq, audit_chains::last_hash))
        .load(conn)?;
    let mut checkpoints: BTreeMap<String, Vec<Checkpoint>> = BTreeMap::new();
    let rows: Vec<Checkpoint> = audit_checkpoints::table
        .order((audit_checkpoints::chain_id, audit_checkpoints::seq))
        .select((
            audit_checkpoints::chain_id,
            audit_checkpoints::seq,
            audit_checkpoints::kind,
            audit_checkpoints::hash,
            audit_checkpoints::signature,
        ))
        .load(conn)?;
    for checkpoint in rows {
        checkpoints
            .entry(checkpoint.chain_id.clone())
            .or_default()
            .push(checkpoint);
    }
    let mut report = VerifyReport::default();
    for (chain, last_seq, last_hash) in &heads {
        report.chains += 1;
        let chain_checkpoints = checkpoints.remove(chain).unwrap_or_default();
        if let Some(broken) = verify_chain(
            conn,
            chain,
            *last_seq,
            last_hash,
            &chain_checkpoints,
            options,
            &mut report,
        )? {
            report.breaks.push(broken);
        }
    }
    // Entries or checkpoints of a chain that has no head were put there behind the writer's back.
    for chain in checkpoints.keys() {
        report.breaks.push(Break {
            chain_id: chain.clone(),
            seq: 0,
            reason: "checkpoints for an unknown chain".into(),
        });
    }
    let known: Vec<&String> = heads.iter().map(|(c, _, _)| c).collect();
    for (kind, orphans) in [
        (
            LogKind::Usage,
            usage_log::table
                .filter(usage_log::chain_id.ne_all(&known))
                .select(usage_log::chain_id)
                .distinct()
                .load::<String>(conn)?,
        ),
        (
            LogKind::Disclosure,
            disclosure_log::table
                .filter(disclosure_log::chain_id.ne_all(&known))
                .select(disclosure_log::chain_id)
                .distinct()
                .load::<String>(conn)?,
        ),
        (
            LogKind::Security,
            security_events::table
                .filter(security_events::chain_id.ne_all(&known))
                .select(security_events::chain_id)
                .distinct()
                .load::<String>(conn)?,
        ),
    ] {
        for chain in orphans {
            report.breaks.push(Break {
                chain_id: chain,
                seq: 0,
                reason: format!("{} entries outside every known chain", kind.table()),
            });
        }
    }
    Ok(report)
}

fn verify_chain(
    conn: &mut DbConnection,
    chain: &str,
    last_seq: i64,
    last_hash: &[u8],
    checkpoints: &[Checkpoint],
    options: &VerifyOptions<'_>,
    report: &mut VerifyReport,
) -> Result<Option<Break>, AuditError> {
    let broken = |seq: i64, reason: String| {
        Ok(Some(Break {
            chain_id: chain.to_owned(),
            seq,
            reason,
        }))
    };
    let Some(kind) = kind_of(chain) else {
        return broken(0, "the chain id names no log".into());
    };
    // After a retention run the chain starts at the cut: the checkpoint holds the hash of the
    // last deleted entry.
    let (mut expected, mut previous) = match checkpoints
        .iter()
        .filter(|c| c.kind == "retention")
        .max_by_key(|c| c.seq)
    {
        Some(cut) => match ChainHash::try_from(cut.hash.as_slice()) {
            Ok(hash) => (cut.seq + 1, hash),
            Err(_) => return broken(cut.seq, "the retention checkpoint is malformed".into()),
        },
        None => (1, CHAIN_GENESIS),
    };
    let signed: BTreeMap<i64, &Checkpoint> = checkpoints
        .iter()
        .filter(|c| c.kind == "signed")
        .map(|c| (c.seq, c))
        .collect();
    for checkpoint in signed.values() {
        report.signed_checkpoints += 1;
        if let Some(public_key) = options.public_key {
            let message = checkpoint_message(chain, checkpoint.seq, &checkpoint.hash);
            let valid = checkpoint
                .signature
                .as_deref()
                .is_some_and(|s| verify_signature(public_key, &message, s));
            if !valid {
                return broken(checkpoint.seq, "the checkpoint's signature is not valid".into());
            }
        }
    }
    if options.checkpoint_interval > 0 {
        let first_due = ((expected - 1) / options.checkpoint_interval + 1) * options.checkpoint_interval;
        let mut due = first_due;
        while due <= last_seq {
            if !signed.contains_key(&due) {
                return broken(due, "the signed checkpoint due here is missing".into());
            }
            due += options.checkpoint_interval;
        }
    }
    let mut after = expected - 1;
    loop {
        let rows = page(conn, kind, chain, after)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let (seq, prev_hash, hash) = chain_fields(row);
            if seq != expected {
                return broken(expected, format!("entry missing (the next stored entry is {seq})"));
            }
            if prev_hash != previous.as_slice() {
                return broken(
                    seq,
                    "does not link to the entry before it (entries removed, reordered or changed)".into(),
                );
            }
            let computed = chain_step(&previous, &row.canonical());
            if hash != computed.as_slice() {
                return broken(
                    seq,
                    "its content does not match its hash (changed after it was written)".into(),
                );
            }
            if let Some(checkpoint) = signed.get(&seq)
                && checkpoint.hash != computed.as_slice()
            {
                return broken(
                    seq,
                    "differs from the signed checkpoint (the chain was rewritten)".into(),
                );
            }
            report.entries += 1;
            previous = computed;
            expected += 1;
            after = seq;
        }
    }
    if expected - 1 != last_seq {
        return broken(expected, format!("entries {expected}..{last_seq} are missing"));
    }
    if previous.as_slice() != last_hash {
        return broken(last_seq, "the chain head does not match the last entry".into());
    }
    Ok(None)
}
