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
        for chain in &chains {
            let Some(kind) = LogKind::ALL
                .into_iter()
                .find(|k| chain.starts_with(&format!("{}:", k.as_str())))
            else {
                continue;
            };
            let Some((seq, hash)) = cut_point(conn, kind, chain, cutoff)? else {
                continue;
            };
            let deleted = delete_through(conn, kind, chain, seq, batch)?;
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
            report.entries_deleted += deleted as u64;
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

/// On PostgreSQL, creates the log tables' monthly partitions from last month to a year ahead
/// (at start and with every retention run); SQLite has nothing to do.
pub fn ensure_partitions(conn: &mut DbConnection, today: time::Date) -> Result<(), AuditError> {
    if let DbConnection::Postgres(c) = conn {
        let first = today.saturating_sub(time::Duration::days(31));
        diesel::sql_query("SELECT audit_ensure_partitions($1, 15)")
            .bind::<diesel::sql_types::Date, _>(first)
            .execute(c)?;
    }
    Ok(())
}
