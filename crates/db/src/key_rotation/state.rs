//! A rotation's state and its steps (prepared, switched, finished), and the servers' reports of
//! the keys they hold, which the command driving a rotation waits on between the steps.

use std::collections::BTreeMap;

use diesel::prelude::*;
use rekisteri_crypto::{KeyId, Keyring};
use time::{OffsetDateTime, PrimitiveDateTime};

use super::targets::{HISTORY, TARGETS};
use crate::schema::{instance_keys, key_checks, key_rotation_progress, key_rotations, server_instances};
use crate::{DbConnection, to_primitive, write_transaction};

/// Where a rotation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationState {
    Prepared,
    Switched,
    Finished,
}

impl RotationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prepared => "prepared",
            Self::Switched => "switched",
            Self::Finished => "finished",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "prepared" => Self::Prepared,
            "switched" => Self::Switched,
            // The column's CHECK allows nothing else.
            _ => Self::Finished,
        }
    }
}

/// One rotation as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub id: String,
    pub from_data_key: String,
    pub to_data_key: String,
    pub from_blind_key: String,
    pub to_blind_key: String,
    pub state: RotationState,
    pub started_at: PrimitiveDateTime,
    pub switched_at: Option<PrimitiveDateTime>,
    pub finished_at: Option<PrimitiveDateTime>,
    pub values_resealed: i64,
}

impl Rotation {
    /// The keys servers write with now: the old ones until the switch.
    pub fn active(&self) -> (&str, &str) {
        match self.state {
            RotationState::Prepared => (&self.from_data_key, &self.from_blind_key),
            RotationState::Switched | RotationState::Finished => (&self.to_data_key, &self.to_blind_key),
        }
    }
}

type RotationRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    PrimitiveDateTime,
    Option<PrimitiveDateTime>,
    Option<PrimitiveDateTime>,
    i64,
);

fn rotation_from(row: RotationRow) -> Rotation {
    let (id, from_data_key, to_data_key, from_blind_key, to_blind_key, state, started_at, switched_at, finished_at, n) =
        row;
    Rotation {
        id,
        from_data_key,
        to_data_key,
        from_blind_key,
        to_blind_key,
        state: RotationState::parse(&state),
        started_at,
        switched_at,
        finished_at,
        values_resealed: n,
    }
}

/// The newest rotation, which decides the active keys; `None` before the first.
pub fn newest(conn: &mut DbConnection) -> QueryResult<Option<Rotation>> {
    key_rotations::table
        .select((
            key_rotations::id,
            key_rotations::from_data_key,
            key_rotations::to_data_key,
            key_rotations::from_blind_key,
            key_rotations::to_blind_key,
            key_rotations::state,
            key_rotations::started_at,
            key_rotations::switched_at,
            key_rotations::finished_at,
            key_rotations::values_resealed,
        ))
        .order((key_rotations::started_at.desc(), key_rotations::id.desc()))
        .first::<RotationRow>(conn)
        .optional()
        .map(|row| row.map(rotation_from))
}

/// Records a new rotation, `prepared`, with a pending pass per table.
pub fn begin(
    conn: &mut DbConnection,
    from: (&KeyId, &KeyId),
    to: (&KeyId, &KeyId),
    now: OffsetDateTime,
) -> QueryResult<Rotation> {
    let id = format!("rot-{}", now.unix_timestamp_nanos());
    write_transaction(conn, |conn| {
        diesel::insert_into(key_rotations::table)
            .values((
                key_rotations::id.eq(&id),
                key_rotations::from_data_key.eq(from.0.as_str()),
                key_rotations::to_data_key.eq(to.0.as_str()),
                key_rotations::from_blind_key.eq(from.1.as_str()),
                key_rotations::to_blind_key.eq(to.1.as_str()),
                key_rotations::state.eq(RotationState::Prepared.as_str()),
                key_rotations::started_at.eq(to_primitive(now)),
                key_rotations::values_resealed.eq(0),
            ))
            .execute(conn)?;
        for target in TARGETS.iter().map(|t| t.name).chain([HISTORY]) {
            diesel::insert_into(key_rotation_progress::table)
                .values((
                    key_rotation_progress::rotation_id.eq(&id),
                    key_rotation_progress::target.eq(target),
                    key_rotation_progress::done.eq(false),
                    key_rotation_progress::rows_done.eq(0),
                ))
                .execute(conn)?;
        }
        QueryResult::Ok(())
    })?;
    newest(conn)?.ok_or(diesel::result::Error::NotFound)
}

/// Removes a rotation that never got past `prepared` (its keys never reached the key file):
/// nothing was written with its keys, since servers write with the old ones until the switch.
pub fn abandon_prepared(conn: &mut DbConnection, id: &str) -> QueryResult<bool> {
    write_transaction(conn, |conn| {
        let prepared = key_rotations::table
            .filter(key_rotations::id.eq(id))
            .filter(key_rotations::state.eq(RotationState::Prepared.as_str()));
        if diesel::select(diesel::dsl::exists(prepared)).get_result::<bool>(conn)? {
            diesel::delete(key_rotation_progress::table.filter(key_rotation_progress::rotation_id.eq(id)))
                .execute(conn)?;
            diesel::delete(key_rotations::table.filter(key_rotations::id.eq(id))).execute(conn)?;
            return Ok(true);
        }
        Ok(false)
    })
}

/// Moves a rotation to `state`, stamping the time.
pub fn advance(conn: &mut DbConnection, id: &str, state: RotationState, now: OffsetDateTime) -> QueryResult<()> {
    let now = to_primitive(now);
    write_transaction(conn, |conn| {
        let target = key_rotations::table.filter(key_rotations::id.eq(id));
        match state {
            RotationState::Prepared => diesel::update(target)
                .set(key_rotations::state.eq(state.as_str()))
                .execute(conn)?,
            RotationState::Switched => diesel::update(target)
                .set((
                    key_rotations::state.eq(state.as_str()),
                    key_rotations::switched_at.eq(now),
                ))
                .execute(conn)?,
            RotationState::Finished => diesel::update(target)
                .set((
                    key_rotations::state.eq(state.as_str()),
                    key_rotations::finished_at.eq(now),
                ))
                .execute(conn)?,
        };
        Ok(())
    })
}

/// Each pass of a rotation: target, rows done, whether it is done.
pub fn progress(conn: &mut DbConnection, rotation_id: &str) -> QueryResult<Vec<(String, i64, bool)>> {
    key_rotation_progress::table
        .filter(key_rotation_progress::rotation_id.eq(rotation_id))
        .select((
            key_rotation_progress::target,
            key_rotation_progress::rows_done,
            key_rotation_progress::done,
        ))
        .order(key_rotation_progress::target)
        .load(conn)
}

/// Reports, for the running server `instance_id`, the keys it holds and the ones it writes with.
pub fn report_instance_keys(
    conn: &mut DbConnection,
    instance_id: &str,
    keyring: &Keyring,
    now: OffsetDateTime,
) -> QueryResult<()> {
    let held = keyring
        .data_key_ids()
        .into_iter()
        .chain(keyring.blind_index_key_ids())
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let (data, blind) = (keyring.active_key_id(), keyring.active_blind_index_key_id());
    let now = to_primitive(now);
    write_transaction(conn, |conn| {
        let updated = diesel::update(instance_keys::table.filter(instance_keys::instance_id.eq(instance_id)))
            .set((
                instance_keys::held.eq(&held),
                instance_keys::data_key.eq(data.as_str()),
                instance_keys::blind_key.eq(blind.as_str()),
                instance_keys::reported_at.eq(now),
            ))
            .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(instance_keys::table)
                .values((
                    instance_keys::instance_id.eq(instance_id),
                    instance_keys::held.eq(&held),
                    instance_keys::data_key.eq(data.as_str()),
                    instance_keys::blind_key.eq(blind.as_str()),
                    instance_keys::reported_at.eq(now),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// What a rotation waits for before its next step.
#[derive(Debug, Clone, Copy)]
pub enum Awaited<'a> {
    /// Every live server holds these keys.
    Holding(&'a str, &'a str),
    /// Every live server writes with these keys.
    WritingWith(&'a str, &'a str),
}

/// The live servers (their instance row not expired) that have not yet reported what `awaited`
/// asks; empty when the rotation may go on.
pub fn servers_behind(conn: &mut DbConnection, awaited: Awaited<'_>, now: OffsetDateTime) -> QueryResult<Vec<String>> {
    let live: Vec<String> = server_instances::table
        .filter(server_instances::expires_at.gt(to_primitive(now)))
        .select(server_instances::id)
        .load(conn)?;
    let reports: BTreeMap<String, (String, String, String)> = instance_keys::table
        .filter(instance_keys::instance_id.eq_any(&live))
        .select((
            instance_keys::instance_id,
            (instance_keys::held, instance_keys::data_key, instance_keys::blind_key),
        ))
        .load::<(String, (String, String, String))>(conn)?
        .into_iter()
        .collect();
    Ok(live
        .into_iter()
        .filter(|id| {
            let Some((held, data, blind)) = reports.get(id) else {
                return true;
            };
            match awaited {
                Awaited::Holding(d, b) => {
                    let held: Vec<&str> = held.split(',').collect();
                    !(held.contains(&d) && held.contains(&b))
                }
                Awaited::WritingWith(d, b) => !(data == d && blind == b),
            }
        })
        .collect())
}

/// Removes the key check of a retired key (the key file no longer holds it).
pub fn forget_key(conn: &mut DbConnection, key_id: &str) -> QueryResult<usize> {
    write_transaction(conn, |conn| {
        diesel::delete(key_checks::table.filter(key_checks::key_id.eq(key_id))).execute(conn)
    })
}
