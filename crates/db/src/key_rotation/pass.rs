//! The pass runner over one target table: select a batch after the saved cursor, re-key each row,
//! update it by compare and swap, and commit the batch with its progress.

use diesel::prelude::*;
use rekisteri_crypto::{CryptoError, FieldCipher, FieldContext, Keyring};

use super::history::next_history_batch;
use super::sql::{Bind, Cursor, MAX_INDEXES, PassRow, Sql, execute, load_rows};
use super::targets::{HISTORY, Second, Source, TARGETS, Target};
use super::{ACTOR, RotationError};
use crate::schema::{key_rotation_progress, key_rotations};
use crate::{DbConnection, write_transaction_as};

pub(super) fn select_sql(target: &Target, cursor: Option<&Cursor>, sql: &mut Sql, limit: i64) -> (String, Vec<Bind>) {
    let column = |i: usize| {
        target
            .sealed
            .get(i)
            .map(|c| format!("t.{c}"))
            .unwrap_or("NULL".to_owned())
    };
    let index = |i: usize| {
        target
            .indexes
            .get(i)
            .map(|x| format!("t.{}", x.column))
            .unwrap_or("NULL".to_owned())
    };
    let source = if target
        .indexes
        .iter()
        .any(|i| matches!(i.source, Source::ClientIdentityCode))
    {
        "(SELECT c.identity_code FROM clients c WHERE c.registrar_id = t.registrar_id AND c.id = t.client_id)"
    } else {
        "NULL"
    };
    let (k2_text, k2_int, k2_bin, order) = match target.second {
        Second::None => (
            "NULL".to_owned(),
            "NULL".to_owned(),
            "NULL".to_owned(),
            format!("t.{}", target.first),
        ),
        Second::Text(c) => (
            format!("t.{c}"),
            "NULL".into(),
            "NULL".into(),
            format!("t.{}, t.{c}", target.first),
        ),
        Second::BigInt(c) => (
            "NULL".into(),
            format!("t.{c}"),
            "NULL".into(),
            format!("t.{}, t.{c}", target.first),
        ),
        Second::Binary(c) => (
            "NULL".into(),
            "NULL".into(),
            format!("t.{c}"),
            format!("t.{}, t.{c}", target.first),
        ),
    };
    let mut binds = Vec::new();
    let filter = match cursor {
        None => String::new(),
        Some(cursor) => {
            let first = sql.placeholder();
            binds.push(Bind::Text(cursor.first.clone()));
            match cursor.second_bind(target.second) {
                None => format!("WHERE t.{} > {first}", target.first),
                Some(bind) => {
                    let second = sql.placeholder();
                    binds.push(bind);
                    format!("WHERE ({order}) > ({first}, {second})")
                }
            }
        }
    };
    let limit_at = sql.placeholder();
    binds.push(Bind::BigInt(limit));
    let text = format!(
        "SELECT t.{first} AS k1, {k2_text} AS k2_text, {k2_int} AS k2_int, {k2_bin} AS k2_bin, \
         {row_id} AS row_id, {v0} AS v0, {v1} AS v1, {v2} AS v2, {v3} AS v3, {v4} AS v4, {v5} AS v5, \
         {v6} AS v6, {v7} AS v7, {v8} AS v8, {v9} AS v9, {source} AS source, {i0} AS i0, {i1} AS i1 FROM {table} t {filter} ORDER BY {order} \
         LIMIT {limit_at}",
        first = target.first,
        row_id = target.row_id,
        v0 = column(0),
        v1 = column(1),
        v2 = column(2),
        v3 = column(3),
        v4 = column(4),
        v5 = column(5),
        v6 = column(6),
        v7 = column(7),
        v8 = column(8),
        v9 = column(9),
        i0 = index(0),
        i1 = index(1),
        table = target.name,
    );
    (text, binds)
}

/// What one row becomes: new values for the columns that change.
struct RowChange {
    sets: Vec<(&'static str, Option<Vec<u8>>)>,
    resealed: u64,
}

fn rekey_row(keyring: &Keyring, target: &Target, row: &PassRow) -> Result<RowChange, RotationError> {
    let cipher = FieldCipher::new(keyring);
    let crypto = |column: &'static str| {
        move |source: CryptoError| RotationError::Crypto {
            target: target.name,
            column,
            source,
        }
    };
    let mut sets = Vec::new();
    let mut resealed = 0;
    let mut computed: [Option<[u8; 32]>; MAX_INDEXES] = [None, None];
    for (position, column) in target.sealed.iter().enumerate() {
        let Some(Some(value)) = row.values().get(position).copied() else {
            continue;
        };
        let context = FieldContext::new(target.name, column, &row.row_id);
        let index_of = target
            .indexes
            .iter()
            .position(|i| matches!(i.source, Source::Sealed(p) if p == position));
        let new_value = match index_of.and_then(|i| target.indexes.get(i).map(|x| (i, x))) {
            Some((slot, index)) => {
                let normalise = index.normalise;
                let out = cipher
                    .reseal_and_index(&context, value, index.domain, |plain| normalise.apply(plain))
                    .map_err(crypto(column))?;
                if let Some(computed_slot) = computed.get_mut(slot) {
                    *computed_slot = out.index;
                }
                out.value
            }
            None => cipher.reseal(&context, value).map_err(crypto(column))?,
        };
        if let Some(new_value) = new_value {
            sets.push((*column, Some(new_value)));
            resealed += 1;
        }
    }
    for (slot, index) in target.indexes.iter().enumerate() {
        if let (Source::ClientIdentityCode, Some(source)) = (index.source, &row.source) {
            let context = FieldContext::new("clients", "identity_code", &row.row_id);
            let normalise = index.normalise;
            let out = cipher
                .reseal_and_index(&context, source, index.domain, |plain| normalise.apply(plain))
                .map_err(crypto(index.column))?;
            if let Some(computed_slot) = computed.get_mut(slot) {
                *computed_slot = out.index;
            }
        }
        let current = row.indexes().get(slot).copied().cloned().flatten();
        if let Some(Some(new_index)) = computed.get(slot)
            && current.as_deref() != Some(new_index.as_slice())
        {
            sets.push((index.column, Some(new_index.to_vec())));
        }
    }
    Ok(RowChange { sets, resealed })
}

fn update_sql(target: &Target, row: &PassRow, change: &RowChange, sql: &mut Sql) -> (String, Vec<Bind>) {
    let mut binds = Vec::new();
    let mut assignments = Vec::new();
    for (column, value) in &change.sets {
        assignments.push(format!("{column} = {}", sql.placeholder()));
        binds.push(Bind::Binary(value.clone()));
    }
    let mut conditions = vec![format!("{} = {}", target.first, sql.placeholder())];
    binds.push(Bind::Text(row.k1.clone()));
    match target.second {
        Second::None => {}
        Second::Text(c) => {
            conditions.push(format!("{c} = {}", sql.placeholder()));
            binds.push(Bind::Text(row.k2_text.clone().unwrap_or_default()));
        }
        Second::BigInt(c) => {
            conditions.push(format!("{c} = {}", sql.placeholder()));
            binds.push(Bind::BigInt(row.k2_int.unwrap_or_default()));
        }
        Second::Binary(c) => {
            conditions.push(format!("{c} = {}", sql.placeholder()));
            binds.push(Bind::Binary(row.k2_bin.clone()));
        }
    }
    // Compare and swap: the row is changed only if every value read is still there.
    let same = sql.same();
    for (position, column) in target.sealed.iter().enumerate() {
        conditions.push(format!("{column} {same} {}", sql.placeholder()));
        binds.push(Bind::Binary(row.values().get(position).copied().cloned().flatten()));
    }
    for (slot, index) in target.indexes.iter().enumerate() {
        if matches!(target.second, Second::Binary(c) if c == index.column) {
            continue;
        }
        conditions.push(format!("{} {same} {}", index.column, sql.placeholder()));
        binds.push(Bind::Binary(row.indexes().get(slot).copied().cloned().flatten()));
    }
    (
        format!(
            "UPDATE {} SET {} WHERE {}",
            target.name,
            assignments.join(", "),
            conditions.join(" AND ")
        ),
        binds,
    )
}

/// One committed batch of a pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batch {
    pub rows: u64,
    pub values_resealed: u64,
    /// Rows a concurrent change got to first (left as that change wrote them).
    pub rows_skipped: u64,
    pub done: bool,
}

pub(super) fn saved_cursor(
    conn: &mut DbConnection,
    rotation_id: &str,
    target: &str,
) -> QueryResult<(Option<String>, bool)> {
    key_rotation_progress::table
        .filter(key_rotation_progress::rotation_id.eq(rotation_id))
        .filter(key_rotation_progress::target.eq(target))
        .select((key_rotation_progress::cursor, key_rotation_progress::done))
        .first(conn)
        .optional()
        .map(|row| row.unwrap_or((None, false)))
}

pub(super) fn save_progress(
    conn: &mut DbConnection,
    rotation_id: &str,
    target: &str,
    cursor: Option<&Cursor>,
    batch: &Batch,
) -> QueryResult<()> {
    let cursor = cursor.and_then(|c| serde_json::to_string(c).ok());
    diesel::update(
        key_rotation_progress::table
            .filter(key_rotation_progress::rotation_id.eq(rotation_id))
            .filter(key_rotation_progress::target.eq(target)),
    )
    .set((
        key_rotation_progress::cursor.eq(cursor),
        key_rotation_progress::done.eq(batch.done),
        key_rotation_progress::rows_done.eq(key_rotation_progress::rows_done + batch.rows as i64),
    ))
    .execute(conn)?;
    diesel::update(key_rotations::table.filter(key_rotations::id.eq(rotation_id)))
        .set(key_rotations::values_resealed.eq(key_rotations::values_resealed + batch.values_resealed as i64))
        .execute(conn)?;
    Ok(())
}

/// Runs the next batch of the pass `target` of the rotation `rotation_id` and commits it with
/// its progress; a pass already done returns a done batch of no rows. `before_commit` sees the
/// batch inside its transaction (fault injection for the crash tests).
pub fn next_batch(
    conn: &mut DbConnection,
    keyring: &Keyring,
    rotation_id: &str,
    target: &str,
    batch_size: i64,
    before_commit: &mut dyn FnMut(&Batch),
) -> Result<Batch, RotationError> {
    if target == HISTORY {
        return next_history_batch(conn, keyring, rotation_id, batch_size, before_commit);
    }
    let Some(spec) = TARGETS.iter().find(|t| t.name == target) else {
        return Ok(Batch {
            done: true,
            ..Batch::default()
        });
    };
    write_transaction_as(conn, ACTOR, |conn| {
        let (saved, done) = saved_cursor(conn, rotation_id, target)?;
        if done {
            return Ok(Batch {
                done: true,
                ..Batch::default()
            });
        }
        let cursor: Option<Cursor> = saved.as_deref().and_then(|c| serde_json::from_str(c).ok());
        let (select, binds) = select_sql(spec, cursor.as_ref(), &mut Sql::new(conn), batch_size);
        let rows = load_rows(conn, &select, binds)?;
        let mut batch = Batch {
            rows: rows.len() as u64,
            done: (rows.len() as i64) < batch_size,
            ..Batch::default()
        };
        for row in &rows {
            let change = rekey_row(keyring, spec, row)?;
            if change.sets.is_empty() {
                continue;
            }
            let (update, binds) = update_sql(spec, row, &change, &mut Sql::new(conn));
            if execute(conn, &update, binds)? == 1 {
                batch.values_resealed += change.resealed;
            } else {
                batch.rows_skipped += 1;
            }
        }
        let next = rows.last().map(Cursor::of).or(cursor);
        save_progress(conn, rotation_id, target, next.as_ref(), &batch)?;
        before_commit(&batch);
        Ok(batch)
    })
}
