//! The pass over the change history's copies of sealed values, which it re-encrypts in place
//! inside the JSON documents, keeping each backend's hex form.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use rekisteri_crypto::{FieldCipher, FieldContext, Keyring};

use super::pass::{Batch, save_progress, saved_cursor};
use super::sql::{Bind, Cursor, Sql, from_hex, run_bound};
use super::targets::{HISTORY, Source, TARGETS, Target};
use super::{ACTOR, RotationError};
use crate::{DbConnection, write_transaction_as};

#[derive(QueryableByName, Debug)]
pub(super) struct HistoryRow {
    #[diesel(sql_type = BigInt)]
    pub(super) id: i64,
    #[diesel(sql_type = Text)]
    pub(super) table_name: String,
    #[diesel(sql_type = Text)]
    pub(super) row_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub(super) old_row: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(super) new_row: Option<String>,
}

/// A sealed value as the history's JSON holds it: upper-case hex on SQLite (`hex()`), `\x` and
/// lower-case hex on PostgreSQL (`to_jsonb` of a `bytea`). The re-encrypted value keeps the form.
pub(super) fn decode_history_value(text: &str) -> (Vec<u8>, bool) {
    match text.strip_prefix("\\x") {
        Some(hex) => (from_hex(hex), true),
        None => (from_hex(text), false),
    }
}

fn encode_history_value(bytes: &[u8], postgres_form: bool) -> String {
    let hex = rekisteri_crypto::to_hex(bytes);
    if postgres_form {
        format!("\\x{hex}")
    } else {
        hex.to_uppercase()
    }
}

/// Re-encrypts the sealed values in one history document; `None` when nothing changes.
fn rekey_document(
    keyring: &Keyring,
    target: &Target,
    row_id: &str,
    document: &str,
) -> Result<Option<String>, RotationError> {
    let mut json: serde_json::Value = serde_json::from_str(document).map_err(|_| RotationError::History { id: 0 })?;
    let Some(fields) = json.as_object_mut() else {
        return Ok(None);
    };
    let cipher = FieldCipher::new(keyring);
    let mut changed = false;
    for (position, column) in target.sealed.iter().enumerate() {
        let Some(serde_json::Value::String(text)) = fields.get(*column) else {
            continue;
        };
        let (bytes, postgres_form) = decode_history_value(text);
        if bytes.is_empty() {
            continue;
        }
        let context = FieldContext::new(target.name, column, row_id);
        let index = target
            .indexes
            .iter()
            .find(|i| matches!(i.source, Source::Sealed(p) if p == position));
        let crypto = |source| RotationError::Crypto {
            target: HISTORY,
            column,
            source,
        };
        let (value, new_index) = match index {
            Some(index) => {
                let normalise = index.normalise;
                let out = cipher
                    .reseal_and_index(&context, &bytes, index.domain, |plain| normalise.apply(plain))
                    .map_err(crypto)?;
                (out.value, out.index.map(|i| (index.column, i)))
            }
            None => (cipher.reseal(&context, &bytes).map_err(crypto)?, None),
        };
        if let Some(value) = value {
            fields.insert((*column).to_owned(), encode_history_value(&value, postgres_form).into());
            changed = true;
        }
        if let Some((column, new_index)) = new_index
            && fields.get(column).is_some_and(|v| v.is_string())
        {
            let encoded: serde_json::Value = encode_history_value(&new_index, postgres_form).into();
            if fields.get(column) != Some(&encoded) {
                fields.insert(column.to_owned(), encoded);
                changed = true;
            }
        }
    }
    Ok(changed.then(|| json.to_string()))
}

pub(super) fn next_history_batch(
    conn: &mut DbConnection,
    keyring: &Keyring,
    rotation_id: &str,
    batch_size: i64,
    before_commit: &mut dyn FnMut(&Batch),
) -> Result<Batch, RotationError> {
    write_transaction_as(conn, ACTOR, |conn| {
        let (saved, done) = saved_cursor(conn, rotation_id, HISTORY)?;
        if done {
            return Ok(Batch {
                done: true,
                ..Batch::default()
            });
        }
        let after = saved
            .as_deref()
            .and_then(|c| serde_json::from_str::<Cursor>(c).ok())
            .and_then(|c| c.history_id)
            .unwrap_or(0);
        let tables: Vec<String> = TARGETS
            .iter()
            .filter(|t| !t.sealed.is_empty())
            .map(|t| format!("'{}'", t.name))
            .collect();
        let mut sql = Sql::new(conn);
        let select = format!(
            "SELECT id, table_name, row_id, {old} AS old_row, {new} AS new_row FROM change_history \
             WHERE id > {after_at} AND table_name IN ({tables}) ORDER BY id LIMIT {limit_at}",
            old = if sql.postgres { "old_row::text" } else { "old_row" },
            new = if sql.postgres { "new_row::text" } else { "new_row" },
            after_at = sql.placeholder(),
            tables = tables.join(", "),
            limit_at = sql.placeholder(),
        );
        let rows: Vec<HistoryRow> = match conn {
            DbConnection::Sqlite(inner) => diesel::sql_query(&select)
                .bind::<BigInt, _>(after)
                .bind::<BigInt, _>(batch_size)
                .load(inner)?,
            DbConnection::Postgres(inner) => diesel::sql_query(&select)
                .bind::<BigInt, _>(after)
                .bind::<BigInt, _>(batch_size)
                .load(inner)?,
        };
        let mut batch = Batch {
            rows: rows.len() as u64,
            done: (rows.len() as i64) < batch_size,
            ..Batch::default()
        };
        for row in &rows {
            let Some(target) = TARGETS.iter().find(|t| t.name == row.table_name) else {
                continue;
            };
            let rekey = |document: &Option<String>| -> Result<Option<String>, RotationError> {
                match document {
                    Some(text) => rekey_document(keyring, target, &row.row_id, text).map_err(|e| match e {
                        RotationError::History { .. } => RotationError::History { id: row.id },
                        other => other,
                    }),
                    None => Ok(None),
                }
            };
            let (old, new) = (rekey(&row.old_row)?, rekey(&row.new_row)?);
            if old.is_none() && new.is_none() {
                continue;
            }
            let mut sql = Sql::new(conn);
            let cast = if sql.postgres { "::jsonb" } else { "" };
            let same = sql.same();
            let update = format!(
                "UPDATE change_history SET old_row = {}{cast}, new_row = {}{cast} WHERE id = {} \
                 AND old_row {same} {}{cast} AND new_row {same} {}{cast}",
                sql.placeholder(),
                sql.placeholder(),
                sql.placeholder(),
                sql.placeholder(),
                sql.placeholder(),
            );
            let text = |v: Option<String>| v.map(Bind::Text).unwrap_or(Bind::Binary(None));
            let binds = vec![
                text(old.or(row.old_row.clone())),
                text(new.or(row.new_row.clone())),
                Bind::BigInt(row.id),
                text(row.old_row.clone()),
                text(row.new_row.clone()),
            ];
            if execute_history(conn, &update, binds)? == 1 {
                batch.values_resealed += 1;
            } else {
                batch.rows_skipped += 1;
            }
        }
        let next = rows.last().map(|r| Cursor {
            first: String::new(),
            text: None,
            int: None,
            hex: None,
            history_id: Some(r.id),
        });
        let kept = Cursor {
            first: String::new(),
            text: None,
            int: None,
            hex: None,
            history_id: Some(after),
        };
        save_progress(conn, rotation_id, HISTORY, Some(next.as_ref().unwrap_or(&kept)), &batch)?;
        before_commit(&batch);
        Ok(batch)
    })
}

/// History documents are bound as text (or NULL of text).
fn execute_history(conn: &mut DbConnection, sql: &str, binds: Vec<Bind>) -> QueryResult<usize> {
    run_bound!(conn, sql, binds, execute, |query, bind| match bind {
        Bind::Text(v) => query.bind::<Nullable<Text>, _>(Some(v)),
        Bind::BigInt(v) => query.bind::<BigInt, _>(v),
        Bind::Binary(_) => query.bind::<Nullable<Text>, _>(None::<String>),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_values_keep_their_backend_form() {
        let (bytes, pg) = decode_history_value("\\x01026b31");
        assert_eq!((bytes.as_slice(), pg), (&[1u8, 2, 0x6b, 0x31][..], true));
        assert_eq!(encode_history_value(&bytes, true), "\\x01026b31");
        let (bytes, pg) = decode_history_value("01026B31");
        assert!(!pg);
        assert_eq!(encode_history_value(&bytes, false), "01026B31");
    }
}
