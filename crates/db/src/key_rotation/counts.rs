//! What a rotation measures rather than changes: the rows each pass will walk, the values still
//! under a key (what `keys retire` refuses on), and the audit entries indexed before a time.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use rekisteri_crypto::FieldCipher;
use time::PrimitiveDateTime;

use super::history::{HistoryRow, decode_history_value};
use super::pass::select_sql;
use super::sql::{Cursor, Sql, load_rows};
use super::targets::{HISTORY, TARGETS};
use crate::DbConnection;

/// How many rows each pass will walk, for a progress bar.
pub fn rows_to_walk(conn: &mut DbConnection) -> QueryResult<Vec<(&'static str, i64)>> {
    let mut out = Vec::new();
    for target in TARGETS {
        out.push((
            target.name,
            count(conn, &format!("SELECT COUNT(*) AS n FROM {}", target.name))?,
        ));
    }
    let tables: Vec<String> = TARGETS
        .iter()
        .filter(|t| !t.sealed.is_empty())
        .map(|t| format!("'{}'", t.name))
        .collect();
    out.push((
        HISTORY,
        count(
            conn,
            &format!(
                "SELECT COUNT(*) AS n FROM change_history WHERE table_name IN ({})",
                tables.join(", ")
            ),
        )?,
    ));
    Ok(out)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(conn: &mut DbConnection, sql: &str) -> QueryResult<i64> {
    match conn {
        DbConnection::Sqlite(inner) => diesel::sql_query(sql).get_result::<Count>(inner).map(|c| c.n),
        DbConnection::Postgres(inner) => diesel::sql_query(sql).get_result::<Count>(inner).map(|c| c.n),
    }
}

/// The values still sealed under `key_id`, per table and column (the change history's copies
/// under `change_history`): what `keys retire` refuses on. Reads ciphertext headers only.
pub fn values_under_key(conn: &mut DbConnection, key_id: &str) -> QueryResult<BTreeMap<String, u64>> {
    let mut found = BTreeMap::new();
    let names = |bytes: &[u8]| FieldCipher::key_id_of(bytes).is_ok_and(|id| id == key_id);
    for target in TARGETS.iter().filter(|t| !t.sealed.is_empty()) {
        let mut cursor: Option<Cursor> = None;
        loop {
            let (select, binds) = select_sql(target, cursor.as_ref(), &mut Sql::new(conn), 2_000);
            let rows = load_rows(conn, &select, binds)?;
            for row in &rows {
                for (position, column) in target.sealed.iter().enumerate() {
                    if let Some(Some(value)) = row.values().get(position).copied()
                        && names(value)
                    {
                        *found.entry(format!("{}.{column}", target.name)).or_insert(0) += 1;
                    }
                }
            }
            match rows.last() {
                Some(last) if rows.len() == 2_000 => cursor = Some(Cursor::of(last)),
                _ => break,
            }
        }
    }
    let postgres = matches!(conn, DbConnection::Postgres(_));
    let mut after = 0i64;
    loop {
        let select = if postgres {
            "SELECT id, table_name, row_id, old_row::text AS old_row, new_row::text AS new_row \
             FROM change_history WHERE id > $1 ORDER BY id LIMIT 2000"
        } else {
            "SELECT id, table_name, row_id, old_row, new_row FROM change_history WHERE id > ? ORDER BY id LIMIT 2000"
        };
        let rows: Vec<HistoryRow> = match conn {
            DbConnection::Sqlite(inner) => diesel::sql_query(select).bind::<BigInt, _>(after).load(inner)?,
            DbConnection::Postgres(inner) => diesel::sql_query(select).bind::<BigInt, _>(after).load(inner)?,
        };
        for row in &rows {
            let Some(target) = TARGETS.iter().find(|t| t.name == row.table_name) else {
                continue;
            };
            for document in [&row.old_row, &row.new_row].into_iter().flatten() {
                let Ok(serde_json::Value::Object(fields)) = serde_json::from_str::<serde_json::Value>(document) else {
                    continue;
                };
                for column in target.sealed {
                    if let Some(serde_json::Value::String(text)) = fields.get(*column)
                        && names(&decode_history_value(text).0)
                    {
                        *found.entry(format!("{HISTORY}.{}.{column}", target.name)).or_insert(0) += 1;
                    }
                }
            }
        }
        match rows.last() {
            Some(last) if rows.len() == 2_000 => after = last.id,
            _ => break,
        }
    }
    Ok(found)
}

/// Audit-log entries with a subject index written before `until`: found by subject only while
/// the blind key they were indexed with is held.
pub fn audit_entries_indexed_before(conn: &mut DbConnection, until: PrimitiveDateTime) -> QueryResult<i64> {
    use crate::schema::{disclosure_log, usage_log};
    let usage: i64 = usage_log::table
        .filter(usage_log::subject_index.is_not_null())
        .filter(usage_log::occurred_at.lt(until))
        .count()
        .get_result(conn)?;
    let disclosure: i64 = disclosure_log::table
        .filter(disclosure_log::subject_index.is_not_null())
        .filter(disclosure_log::occurred_at.lt(until))
        .count()
        .get_result(conn)?;
    Ok(usage + disclosure)
}
