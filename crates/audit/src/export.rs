//! Export of a chain as JSON Lines with its hashes (AU-7), for verification outside the
//! platform with `tools/verify-audit-export.py`. Each line holds every field the hash covers,
//! in the text form the canonical encoding uses, plus `prev_hash` and `hash` in hex.

use std::io::Write;

use diesel::prelude::*;
use rekisteri_crypto::to_hex;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::{disclosure_log, security_events, usage_log};
use serde_json::{Value, json};

use crate::canonical::format_time;
use crate::writer::{DisclosureRow, SecurityRow, StoredEntry, UsageRow};
use crate::{AuditError, LogKind};

const PAGE: i64 = 5_000;

/// The longest time range one export over the API covers: a year, leap day included. A longer
/// range is asked for as several exports, so that no single request holds a connection and a
/// blocking thread for hours; the command line (`audit export`) has no such limit.
pub const MAX_EXPORT_DAYS: i64 = 366;

/// Refuses an API export's range that does not end after it starts or covers more than
/// [`MAX_EXPORT_DAYS`] (422 naming `to`).
pub fn check_api_range(
    from: time::PrimitiveDateTime,
    to: time::PrimitiveDateTime,
) -> Result<(), rekisteri_core::Refusal> {
    crate::bounded_range(from, to, MAX_EXPORT_DAYS, "an export covers at most 366 days")
}

fn hex(value: &Option<Vec<u8>>) -> Value {
    value.as_ref().map_or(Value::Null, |v| Value::String(to_hex(v)))
}

/// One entry as an export line.
pub fn entry_json(entry: &StoredEntry) -> Value {
    match entry {
        StoredEntry::Usage(r) => json!({
            "log": "usage", "chain_id": r.chain_id, "seq": r.seq, "occurred_at": format_time(r.occurred_at),
            "registrar_id": r.registrar_id, "log_controller_id": r.log_controller_id,
            "subject_index": hex(&r.subject_index), "data_kind": r.data_kind, "data_id": r.data_id,
            "outcome": r.outcome, "actor_kind": r.actor_kind, "actor_id": r.actor_id,
            "actor_name": r.actor_name, "on_behalf_of": r.on_behalf_of, "service_unit_oid": r.service_unit_oid,
            "purpose": r.purpose, "access_basis": r.access_basis, "special_reason": r.special_reason,
            "request_id": r.request_id, "calling_system": r.calling_system,
            "prev_hash": to_hex(&r.prev_hash), "hash": to_hex(&r.hash),
        }),
        StoredEntry::Disclosure(r) => json!({
            "log": "disclosure", "chain_id": r.chain_id, "seq": r.seq, "occurred_at": format_time(r.occurred_at),
            "registrar_id": r.registrar_id, "subject_index": hex(&r.subject_index),
            "description": r.description, "discloser_kind": r.discloser_kind, "discloser_id": r.discloser_id,
            "recipient_kind": r.recipient_kind, "recipient_id": r.recipient_id, "recipient_name": r.recipient_name,
            "purpose": r.purpose, "legal_basis": r.legal_basis, "request_id": r.request_id,
            "prev_hash": to_hex(&r.prev_hash), "hash": to_hex(&r.hash),
        }),
        StoredEntry::Security(r) => json!({
            "log": "security", "chain_id": r.chain_id, "seq": r.seq, "occurred_at": format_time(r.occurred_at),
            "organisation_id": r.organisation_id, "event_type": r.event_type, "actor_kind": r.actor_kind,
            "actor_id": r.actor_id, "details": r.details, "request_id": r.request_id,
            "prev_hash": to_hex(&r.prev_hash), "hash": to_hex(&r.hash),
        }),
    }
}

fn page(conn: &mut DbConnection, kind: LogKind, chain: &str, after: i64, last: i64) -> QueryResult<Vec<StoredEntry>> {
    macro_rules! load {
        ($table:ident, $row:ty, $variant:ident) => {
            $table::table
                .filter(
                    $table::chain_id
                        .eq(chain)
                        .and($table::seq.gt(after))
                        .and($table::seq.le(last)),
                )
                .order($table::seq)
                .limit(PAGE)
                .select($table::all_columns)
                .load::<$row>(conn)?
                .into_iter()
                .map(StoredEntry::$variant)
                .collect()
        };
    }
    Ok(match kind {
        LogKind::Usage => load!(usage_log, UsageRow, Usage),
        LogKind::Disclosure => load!(disclosure_log, DisclosureRow, Disclosure),
        LogKind::Security => load!(security_events, SecurityRow, Security),
    })
}

fn kind_of(chain: &str) -> Result<LogKind, AuditError> {
    LogKind::ALL
        .into_iter()
        .find(|k| chain.starts_with(&format!("{}:", k.as_str())))
        .ok_or_else(|| AuditError::Write(format!("'{chain}' is not a chain id")))
}

/// One page of an export: the JSON Lines of the entries of `chain` after `after` up to
/// `last`, how many they are, and the seq the next page starts after; `None` when none is left.
/// A caller that streams an export reads it page by page, each with a connection of its own
/// for only as long as the page takes.
pub fn export_page(
    conn: &mut DbConnection,
    chain: &str,
    after: i64,
    last: i64,
) -> Result<Option<(Vec<u8>, u64, i64)>, AuditError> {
    let rows = page(conn, kind_of(chain)?, chain, after, last)?;
    let Some(tail) = rows.last() else {
        return Ok(None);
    };
    let next = match tail {
        StoredEntry::Usage(r) => r.seq,
        StoredEntry::Disclosure(r) => r.seq,
        StoredEntry::Security(r) => r.seq,
    };
    let mut out = Vec::new();
    for row in &rows {
        let line = entry_json(row).to_string();
        writeln!(out, "{line}").map_err(|e| AuditError::Write(format!("export: {e}")))?;
    }
    Ok(Some((out, rows.len() as u64, next)))
}

/// Writes entries `first..=last` of `chain` as JSON Lines; returns how many were written.
pub fn export_chain(
    conn: &mut DbConnection,
    chain: &str,
    first: i64,
    last: i64,
    out: &mut dyn Write,
) -> Result<u64, AuditError> {
    kind_of(chain)?;
    let mut after = first.saturating_sub(1);
    let mut written = 0;
    while let Some((lines, count, next)) = export_page(conn, chain, after, last)? {
        out.write_all(&lines)
            .map_err(|e| AuditError::Write(format!("export: {e}")))?;
        written += count;
        after = next;
    }
    Ok(written)
}
