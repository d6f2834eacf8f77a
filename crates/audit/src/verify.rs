//! Walks every chain and reports where it breaks (AU-5). Streams in pages, so memory stays flat
//! however long the log is.

use std::collections::BTreeMap;

use diesel::prelude::*;
use rekisteri_crypto::{CHAIN_GENESIS, ChainHash, verify_signature};
use rekisteri_db::schema::{audit_chains, audit_checkpoints, disclosure_log, security_events, usage_log};
use rekisteri_db::{DbConnection, Pool};

use crate::walk::{Link, Walked, walk_page};
use crate::writer::checkpoint_message;
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
    /// Entries per segment that one worker thread verifies ([`DEFAULT_SEGMENT_ENTRIES`]).
    pub segment_entries: i64,
}

/// Large enough that a segment's start-up cost is noise, small enough that two cores share a
/// long chain.
pub const DEFAULT_SEGMENT_ENTRIES: i64 = 100_000;

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

/// Verifies every chain of every log.
///
/// Long chains are cut into segments that worker threads, each with its own connection, verify
/// at the same time; the segments are then joined in order, so the first break of a chain is
/// reported exactly as a single walk would.
pub fn verify_all(pool: &Pool, options: &VerifyOptions<'_>) -> Result<VerifyReport, AuditError> {
    let mut conn = pool.get()?;
    let conn = &mut *conn;
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
    let mut plans = Vec::new();
    for (chain, last_seq, last_hash) in &heads {
        report.chains += 1;
        let chain_checkpoints = checkpoints.remove(chain).unwrap_or_default();
        match plan_chain(chain, *last_seq, last_hash, chain_checkpoints, options, &mut report) {
            Ok(plan) => plans.push(plan),
            Err(broken) => report.breaks.push(broken),
        }
    }
    let segments: Vec<(usize, i64, i64)> = plans
        .iter()
        .enumerate()
        .flat_map(|(index, plan)| {
            let mut cuts = Vec::new();
            let mut from = plan.first_seq;
            while from <= plan.last_seq {
                let to = (from + options.segment_entries.max(1) - 1).min(plan.last_seq);
                cuts.push((index, from, to));
                from = to + 1;
            }
            cuts
        })
        .collect();
    let results = verify_segments(pool, conn, &plans, &segments)?;
    for (index, plan) in plans.iter().enumerate() {
        let mine: Vec<&SegmentResult> = segments
            .iter()
            .zip(&results)
            .filter(|((i, _, _), _)| *i == index)
            .map(|(_, result)| result)
            .collect();
        if let Some(broken) = join_chain(plan, &mine, &mut report) {
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

/// What is known of a chain before its entries are read.
struct ChainPlan {
    chain: String,
    kind: LogKind,
    /// The first entry still stored (1, or the one after a retention cut) and the hash it must
    /// link to.
    first_seq: i64,
    start_hash: ChainHash,
    last_seq: i64,
    last_hash: Vec<u8>,
    /// Signed checkpoints by sequence number, with the hash each vouches for.
    signed: BTreeMap<i64, Vec<u8>>,
}

/// Checks a chain's checkpoints and works out where its walk starts.
fn plan_chain(
    chain: &str,
    last_seq: i64,
    last_hash: &[u8],
    checkpoints: Vec<Checkpoint>,
    options: &VerifyOptions<'_>,
    report: &mut VerifyReport,
) -> Result<ChainPlan, Break> {
    let broken = |seq: i64, reason: String| Break {
        chain_id: chain.to_owned(),
        seq,
        reason,
    };
    let Some(kind) = kind_of(chain) else {
        return Err(broken(0, "the chain id names no log".into()));
    };
    // After a retention run the chain starts at the cut: the checkpoint holds the hash of the
    // last deleted entry.
    let (first_seq, start_hash) = match checkpoints
        .iter()
        .filter(|c| c.kind == "retention")
        .max_by_key(|c| c.seq)
    {
        Some(cut) => match ChainHash::try_from(cut.hash.as_slice()) {
            Ok(hash) => (cut.seq + 1, hash),
            Err(_) => return Err(broken(cut.seq, "the retention checkpoint is malformed".into())),
        },
        None => (1, CHAIN_GENESIS),
    };
    let mut signed = BTreeMap::new();
    for checkpoint in checkpoints.iter().filter(|c| c.kind == "signed") {
        report.signed_checkpoints += 1;
        if let Some(public_key) = options.public_key {
            let message = checkpoint_message(chain, checkpoint.seq, &checkpoint.hash);
            let valid = checkpoint
                .signature
                .as_deref()
                .is_some_and(|s| verify_signature(public_key, &message, s));
            if !valid {
                return Err(broken(checkpoint.seq, "the checkpoint's signature is not valid".into()));
            }
        }
        signed.insert(checkpoint.seq, checkpoint.hash.clone());
    }
    if options.checkpoint_interval > 0 {
        let mut due = ((first_seq - 1) / options.checkpoint_interval + 1) * options.checkpoint_interval;
        while due <= last_seq {
            if !signed.contains_key(&due) {
                return Err(broken(due, "the signed checkpoint due here is missing".into()));
            }
            due += options.checkpoint_interval;
        }
    }
    Ok(ChainPlan {
        chain: chain.to_owned(),
        kind,
        first_seq,
        start_hash,
        last_seq,
        last_hash: last_hash.to_vec(),
        signed,
    })
}

/// What one segment's walk found.
#[derive(Debug, Default)]
struct SegmentResult {
    entries: u64,
    /// The stored `prev_hash` of the segment's first entry: the join with the segment before.
    first_prev: Option<Vec<u8>>,
    /// The hash computed for the last entry walked, and the next sequence number expected.
    last_hash: Option<ChainHash>,
    next_seq: i64,
    broken: Option<(i64, String)>,
}

/// Verifies `[from, to]` of a chain on its own: each entry must follow the one before and match
/// its hash. The first entry is taken to link to its stored `prev_hash`; [`join_chain`] checks
/// that against the segment before.
fn verify_segment(conn: &mut DbConnection, plan: &ChainPlan, from: i64, to: i64) -> Result<SegmentResult, AuditError> {
    let mut walk = SegmentWalk {
        plan,
        previous: (from == plan.first_seq).then_some(plan.start_hash),
        result: SegmentResult {
            next_seq: from,
            ..SegmentResult::default()
        },
    };
    loop {
        let after = walk.result.next_seq - 1;
        let seen = walk_page(conn, plan.kind, &plan.chain, after, to, PAGE, &mut |entry| {
            walk.step(entry)
        })?;
        if walk.result.broken.is_some() {
            return Ok(walk.result);
        }
        if seen < PAGE {
            break;
        }
    }
    let mut result = walk.result;
    if result.next_seq <= to {
        result.broken = Some((
            result.next_seq,
            format!("entries {}..{} are missing", result.next_seq, plan.last_seq),
        ));
    }
    Ok(result)
}

/// One segment's walk, an entry at a time.
struct SegmentWalk<'a> {
    plan: &'a ChainPlan,
    /// The hash the next entry must link to; `None` before the first entry of a segment that
    /// does not start the chain.
    previous: Option<ChainHash>,
    result: SegmentResult,
}

impl SegmentWalk<'_> {
    /// Checks the next entry; false once the segment is broken.
    fn step(&mut self, entry: Walked) -> bool {
        let result = &mut self.result;
        let seq = entry.seq;
        if seq != result.next_seq {
            result.broken = Some((
                result.next_seq,
                format!("entry missing (the next stored entry is {seq})"),
            ));
            return false;
        }
        let (prev, computed, matches) = match entry.link {
            Link::Hashed {
                prev,
                computed,
                matches,
            } => (prev, computed, matches),
            Link::Malformed(stored) => {
                result.broken = Some(if self.previous.is_none() {
                    result.first_prev = Some(stored);
                    (seq, "its link to the entry before is malformed".into())
                } else {
                    (
                        seq,
                        "does not link to the entry before it (entries removed, reordered or changed)".into(),
                    )
                });
                return false;
            }
        };
        // The first entry of a segment is taken to link to what it stores; the join checks that.
        let link = match self.previous {
            Some(previous) => previous,
            None => {
                result.first_prev = Some(prev.to_vec());
                prev
            }
        };
        if prev != link {
            result.broken = Some((
                seq,
                "does not link to the entry before it (entries removed, reordered or changed)".into(),
            ));
            return false;
        }
        // `computed` is linked to the stored `prev_hash`, which is `link` here.
        if !matches {
            result.broken = Some((
                seq,
                "its content does not match its hash (changed after it was written)".into(),
            ));
            return false;
        }
        if self
            .plan
            .signed
            .get(&seq)
            .is_some_and(|vouched| vouched.as_slice() != computed.as_slice())
        {
            result.broken = Some((
                seq,
                "differs from the signed checkpoint (the chain was rewritten)".into(),
            ));
            return false;
        }
        result.entries += 1;
        result.last_hash = Some(computed);
        self.previous = Some(computed);
        result.next_seq = seq + 1;
        true
    }
}

/// Runs the segments on as many threads as there are cores, each with its own connection (the
/// first reuses `conn`); results come back in the segments' order.
fn verify_segments(
    pool: &Pool,
    conn: &mut DbConnection,
    plans: &[ChainPlan],
    segments: &[(usize, i64, i64)],
) -> Result<Vec<SegmentResult>, AuditError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(segments.len())
        .max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let run = |conn: &mut DbConnection| -> Result<Vec<(usize, SegmentResult)>, AuditError> {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(&(plan, from, to)) = segments.get(index) else {
                return Ok(done);
            };
            done.push((index, verify_segment(conn, &plans[plan], from, to)?));
        }
    };
    let mut results: Vec<(usize, SegmentResult)> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..workers)
            .map(|_| {
                scope.spawn(|| -> Result<Vec<(usize, SegmentResult)>, AuditError> {
                    let mut own = pool.get()?;
                    run(&mut own)
                })
            })
            .collect();
        let mut all = run(conn)?;
        for helper in helpers {
            match helper.join() {
                Ok(done) => all.extend(done?),
                Err(_) => return Err(AuditError::Write("a verification thread failed".into())),
            }
        }
        Ok(all)
    })?;
    results.sort_by_key(|(index, _)| *index);
    Ok(results.into_iter().map(|(_, result)| result).collect())
}

/// Joins a chain's segments in order and reports its first break.
fn join_chain(plan: &ChainPlan, segments: &[&SegmentResult], report: &mut VerifyReport) -> Option<Break> {
    let broken = |seq: i64, reason: String| {
        Some(Break {
            chain_id: plan.chain.clone(),
            seq,
            reason,
        })
    };
    let mut previous = plan.start_hash;
    let mut expected = plan.first_seq;
    for segment in segments {
        if let Some(first_prev) = &segment.first_prev
            && first_prev.as_slice() != previous.as_slice()
        {
            return broken(
                expected,
                "does not link to the entry before it (entries removed, reordered or changed)".into(),
            );
        }
        report.entries += segment.entries;
        if let Some((seq, reason)) = &segment.broken {
            return broken(*seq, reason.clone());
        }
        if let Some(last) = segment.last_hash {
            previous = last;
        }
        expected = segment.next_seq;
    }
    if expected - 1 != plan.last_seq {
        return broken(expected, format!("entries {expected}..{} are missing", plan.last_seq));
    }
    if previous.as_slice() != plan.last_hash.as_slice() {
        return broken(plan.last_seq, "the chain head does not match the last entry".into());
    }
    None
}
