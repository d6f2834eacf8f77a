//! Retention of the logs (AU-8): entries are kept 12 years, then deleted. Each chain is cut
//! after its last entry older than the cut-off; a retention checkpoint keeps the hash of the
//! last deleted entry, so the remaining chain still verifies from there.
//!
//! Deleting is the one change the log tables allow, and only through this run: on SQLite the
//! delete triggers call `rekisteri_retention_allowed()`, a function only this run's own
//! connection defines; on PostgreSQL they check a transaction-local setting this run sets.

use diesel::prelude::*;
use rekisteri_db::schema::{audit_chains, audit_checkpoints, disclosure_log, security_events, usage_log};
use rekisteri_db::{DbConnection, write_transaction};
use time::PrimitiveDateTime;

use crate::writer::append_in_transaction;
use crate::{ActorKind, AuditError, LogKind, NewEntry, SecurityEvent, WriterOptions};

diesel::define_sql_function! {
    fn rekisteri_retention_allowed() -> Integer;
}

/// What a retention run removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RetentionReport {
    pub chains_cut: u64,
    pub entries_deleted: u64,
}

/// The last sequence number of `chain` whose entry, and every entry before it, is older than
/// `cutoff`; with its hash.
fn cut_point(
    conn: &mut DbConnection,
    kind: LogKind,
    chain: &str,
    cutoff: PrimitiveDateTime,
) -> QueryResult<Option<(i64, Vec<u8>)>> {
    macro_rules! cut {
        ($table:ident) => {{
            let first_kept: Option<i64> = $table::table
                .filter($table::chain_id.eq(chain).and($table::occurred_at.ge(cutoff)))
                .select(diesel::dsl::min($table::seq))
                .first(conn)?;
            let limit = match first_kept {
                Some(seq) => seq - 1,
                None => i64::MAX,
            };
            $table::table
                .filter($table::chain_id.eq(chain).and($table::seq.le(limit)))
                .order($table::seq.desc())
                .select(($table::seq, $table::hash))
                .first::<(i64, Vec<u8>)>(conn)
                .optional()
        }};
    }
    match kind {
        LogKind::Usage => cut!(usage_log),
        LogKind::Disclosure => cut!(disclosure_log),
        LogKind::Security => cut!(security_events),
    }
}

/// Where one chain is cut: its last entry past retention.
struct Cut {
    kind: LogKind,
    chain: String,
    seq: i64,
    hash: Vec<u8>,
}

/// SQLite's side: the logs there are views over monthly tables (`rekisteri_db::log_partitions`),
/// so the run asks the tables one by one, which lets it skip the months the cut-off cannot
/// touch, and drops a month whose entries are all in the chains' expired prefixes whole.
mod sqlite_months {
    use diesel::QueryResult;
    use diesel::sqlite::SqliteConnection;
    use rekisteri_db::log_partitions::{self, Partition};
    use time::PrimitiveDateTime;

    use super::Cut;
    use crate::LogKind;

    fn starts_at(part: &Partition) -> Option<PrimitiveDateTime> {
        part.month.map(|m| m.midnight())
    }

    /// As [`super::cut_point`]: the last entry of `chain` such that it and every entry before it
    /// occurred before `cutoff`.
    pub(super) fn cut_point(
        conn: &mut SqliteConnection,
        kind: LogKind,
        chain: &str,
        cutoff: PrimitiveDateTime,
    ) -> QueryResult<Option<(i64, Vec<u8>)>> {
        let parts = log_partitions::partitions(conn, kind.table())?;
        let mut first_kept: Option<i64> = None;
        for part in &parts {
            let first = if part.ends_at().is_some_and(|end| end <= cutoff) {
                // Every entry of a month that ended by the cut-off occurred before it.
                None
            } else if starts_at(part).is_some_and(|start| start >= cutoff) {
                log_partitions::min_seq(conn, &part.name, chain)?
            } else {
                log_partitions::first_at_or_after(conn, &part.name, chain, cutoff)?
            };
            first_kept = match (first_kept, first) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let limit = first_kept.map_or(i64::MAX, |seq| seq - 1);
        let mut last: Option<(i64, Vec<u8>)> = None;
        for part in &parts {
            if starts_at(part).is_some_and(|start| start >= cutoff) {
                continue;
            }
            if let Some(found) = log_partitions::last_through(conn, &part.name, chain, limit)?
                && last.as_ref().is_none_or(|(seq, _)| found.0 > *seq)
            {
                last = Some(found);
            }
        }
        Ok(last)
    }

    /// Deletes every chain's prefix up to its cut: whole months where they hold nothing else,
    /// `batch` entries per statement elsewhere. Returns the entries removed.
    pub(super) fn delete_prefixes(
        conn: &mut SqliteConnection,
        cuts: &[Cut],
        cutoff: PrimitiveDateTime,
        batch: i64,
    ) -> QueryResult<u64> {
        let mut deleted = 0u64;
        for kind in LogKind::ALL {
            let log_table = kind.table();
            let cuts: Vec<&Cut> = cuts.iter().filter(|c| c.kind == kind).collect();
            if cuts.is_empty() {
                continue;
            }
            let chains: Vec<String> = cuts.iter().map(|c| c.chain.clone()).collect();
            for part in log_partitions::partitions(conn, log_table)? {
                // Entries at or after the cut-off follow every cut (a cut ends before the first).
                if starts_at(&part).is_some_and(|start| start >= cutoff) {
                    continue;
                }
                if part.ends_at().is_some_and(|end| end <= cutoff)
                    && whole_month_is_expired(conn, &part.name, &cuts, &chains)?
                {
                    deleted += u64::try_from(log_partitions::count(conn, &part.name)?).unwrap_or(0);
                    log_partitions::drop_month(conn, log_table, &part.name)?;
                    continue;
                }
                for cut in &cuts {
                    let Some(mut from) = log_partitions::min_seq(conn, &part.name, &cut.chain)? else {
                        continue;
                    };
                    while from <= cut.seq {
                        let to = from.saturating_add(batch.max(1) - 1).min(cut.seq);
                        deleted += log_partitions::delete_range(conn, &part.name, &cut.chain, from, to)? as u64;
                        if to == cut.seq {
                            break;
                        }
                        from = to + 1;
                    }
                }
            }
        }
        Ok(deleted)
    }

    /// Whether every entry in `partition` lies in its chain's expired prefix.
    fn whole_month_is_expired(
        conn: &mut SqliteConnection,
        partition: &str,
        cuts: &[&Cut],
        chains: &[String],
    ) -> QueryResult<bool> {
        if log_partitions::holds_other_chains(conn, partition, chains)? {
            return Ok(false);
        }
        for cut in cuts {
            if log_partitions::max_seq(conn, partition, &cut.chain)?.is_some_and(|last| last > cut.seq) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Entries per DELETE statement. With delete triggers, SQLite first copies every row a statement
/// deletes into a temporary table (in memory: `temp_store = MEMORY`) and then deletes them: one
/// statement over 10 000 000 entries held 7.7 GB. In ranges of this many the run's memory stays
/// flat, in the same one transaction.
const DELETE_BATCH: i64 = 50_000;

/// Deletes `chain`'s entries up to and including `seq`, in ranges of `batch` sequence numbers.
fn delete_through(conn: &mut DbConnection, kind: LogKind, chain: &str, seq: i64, batch: i64) -> QueryResult<usize> {
    macro_rules! delete_ranges {
        ($table:ident) => {{
            let first: Option<i64> = $table::table
                .filter($table::chain_id.eq(chain))
                .select(diesel::dsl::min($table::seq))
                .first(conn)?;
            let mut deleted = 0;
            let mut from = first.unwrap_or(i64::MAX);
            while from <= seq {
                let to = from.saturating_add(batch.max(1) - 1).min(seq);
                deleted +=
                    diesel::delete($table::table.filter($table::chain_id.eq(chain).and($table::seq.between(from, to))))
                        .execute(conn)?;
                if to == seq {
                    break;
                }
                from = to + 1;
            }
            Ok(deleted)
        }};
    }
    match kind {
        LogKind::Usage => delete_ranges!(usage_log),
        LogKind::Disclosure => delete_ranges!(disclosure_log),
        LogKind::Security => delete_ranges!(security_events),
    }
}

/// Deletes every entry older than `cutoff` (each chain's prefix), records the cuts, and writes
/// a security event with the counts, all in one transaction. `conn` must be a connection of its
/// own ([`rekisteri_db::Pool::connect_unpooled`]): on SQLite it gains the right to delete.
pub fn run(
    conn: &mut DbConnection,
    cutoff: PrimitiveDateTime,
    now: PrimitiveDateTime,
) -> Result<RetentionReport, AuditError> {
    run_in_ranges(conn, cutoff, now, DELETE_BATCH)
}

/// [`run`], deleting `batch` entries per statement (tests use small ranges to cross their
/// bounds).
#[doc(hidden)]
pub fn run_in_ranges(
    conn: &mut DbConnection,
    cutoff: PrimitiveDateTime,
    now: PrimitiveDateTime,
    batch: i64,
) -> Result<RetentionReport, AuditError> {
    if let DbConnection::Sqlite(c) = conn {
        rekisteri_retention_allowed_utils::register_impl(c, || 1)?;
    }
    let chains: Vec<String> = audit_chains::table
        .order(audit_chains::chain_id)
        .select(audit_chains::chain_id)
        .load(conn)?;
    let report = write_transaction(conn, |conn| -> Result<RetentionReport, AuditError> {
        if let DbConnection::Postgres(c) = conn {
            diesel::sql_query("SET LOCAL rekisteri.audit_retention = 'on'").execute(c)?;
        }
        let mut report = RetentionReport::default();
        let mut cuts = Vec::new();
        for chain in &chains {
            let Some(kind) = LogKind::ALL
                .into_iter()
                .find(|k| chain.starts_with(&format!("{}:", k.as_str())))
            else {
                continue;
            };
            let cut = match conn {
                DbConnection::Sqlite(c) => sqlite_months::cut_point(c, kind, chain, cutoff)?,
                DbConnection::Postgres(_) => cut_point(conn, kind, chain, cutoff)?,
            };
            if let Some((seq, hash)) = cut {
                cuts.push(Cut {
                    kind,
                    chain: chain.clone(),
                    seq,
                    hash,
                });
            }
        }
        report.entries_deleted = match conn {
            DbConnection::Sqlite(c) => sqlite_months::delete_prefixes(c, &cuts, cutoff, batch)?,
            DbConnection::Postgres(_) => {
                let mut deleted = 0;
                for cut in &cuts {
                    deleted += delete_through(conn, cut.kind, &cut.chain, cut.seq, batch)? as u64;
                }
                deleted
            }
        };
        for Cut { chain, seq, hash, .. } in cuts {
            diesel::insert_into(audit_checkpoints::table)
                .values((
                    audit_checkpoints::chain_id.eq(chain),
                    audit_checkpoints::seq.eq(seq),
                    audit_checkpoints::kind.eq("retention"),
                    audit_checkpoints::hash.eq(hash),
                    audit_checkpoints::created_at.eq(now),
                ))
                .execute(conn)?;
            report.chains_cut += 1;
        }
        let event = SecurityEvent {
            occurred_at: now,
            organisation_id: None,
            event_type: "audit_retention_run".to_owned(),
            actor_kind: ActorKind::System,
            actor_id: None,
            details: serde_json::json!({
                "cutoff": crate::canonical::format_time(cutoff),
                "chains_cut": report.chains_cut,
                "entries_deleted": report.entries_deleted,
            }),
            request_id: None,
        };
        let options = WriterOptions {
            checkpoint_interval: 0,
            ..WriterOptions::default()
        };
        append_in_transaction(conn, vec![NewEntry::Security(event)], now, None, &options)?;
        if let DbConnection::Postgres(c) = conn {
            diesel::sql_query("SET LOCAL rekisteri.audit_retention = 'off'").execute(c)?;
        }
        Ok(report)
    })?;
    Ok(report)
}

/// On PostgreSQL, creates the log tables' monthly partitions from last month to a year ahead; on
/// SQLite, where the writer creates a month's table with its first entry, brings the logs' views
/// in step with the tables present. At start and with every retention run.
pub fn ensure_partitions(conn: &mut DbConnection, today: time::Date) -> Result<(), AuditError> {
    match conn {
        DbConnection::Postgres(c) => {
            let first = today.saturating_sub(time::Duration::days(31));
            diesel::sql_query("SELECT audit_ensure_partitions($1, 15)")
                .bind::<diesel::sql_types::Date, _>(first)
                .execute(c)?;
        }
        DbConnection::Sqlite(_) => {
            write_transaction(conn, |conn| -> Result<(), AuditError> {
                if let DbConnection::Sqlite(c) = conn {
                    rekisteri_db::log_partitions::rebuild_views(c)?;
                }
                Ok(())
            })?;
        }
    }
    Ok(())
}
