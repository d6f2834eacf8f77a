//! Failed attempts, counted before they are checked, per key (an account, a client address),
//! with delays that grow with every failure past a key's limit (AC-5).
//!
//! A key's row holds its failures in the current window. A window starts with a key's first
//! failure and lasts `window`; while the key is held back it lasts until `window` after the
//! hold ends, so that failures keep adding up through the delays. Past its limit every failure
//! holds the key back: first for `first_delay`, then twice as long each time, at most `window`.
//!
//! Counting happens in the write transaction that checks the hold, before the secret is
//! checked: of any number of parallel attempts, at most the limit get evaluated (on SQLite the
//! transaction is `BEGIN IMMEDIATE`; on PostgreSQL the rows are read `FOR UPDATE` in key order,
//! so that two attempts never wait on each other in a cycle).

use diesel::prelude::*;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::login_throttle;
use time::{Duration, PrimitiveDateTime};

/// When a key is held back, and for how long.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    /// Failures within a window before the first hold; `None`: never held back (the key only
    /// decides when a failure is a security event of its own).
    pub failures: Option<i32>,
    pub first_delay: Duration,
    pub window: Duration,
}

impl Limit {
    /// The hold a key earns with its `failures`-th failure of a window.
    fn delay(&self, failures: i32) -> Option<Duration> {
        let limit = self.failures?;
        if failures < limit {
            return None;
        }
        let doublings = u32::try_from((failures - limit).min(30)).unwrap_or(30);
        let factor = 2_i64.checked_pow(doublings).unwrap_or(i64::MAX);
        let delay = Duration::seconds(self.first_delay.whole_seconds().max(1).saturating_mul(factor));
        Some(delay.min(self.window.max(self.first_delay)))
    }
}

/// A key after one attempt was counted on it.
#[derive(Debug, Clone)]
pub(crate) struct Counted {
    pub key: Vec<u8>,
    /// Failures in the current window, this one included.
    pub failures: i32,
    /// The failures of the key's previous window, when this attempt opened a new one.
    pub previous_window: i32,
    /// The hold this attempt set.
    pub locked_until: Option<PrimitiveDateTime>,
}

impl Counted {
    /// Whether this attempt was the first failure of a window.
    pub fn opened_window(&self) -> bool {
        self.failures == 1
    }
}

type Row = (Vec<u8>, i32, PrimitiveDateTime, Option<PrimitiveDateTime>);

/// Makes sure every key has a row and locks the rows (PostgreSQL, `FOR UPDATE` in key order;
/// SQLite's `BEGIN IMMEDIATE` holds the whole database); returns them. Runs inside a write
/// transaction.
fn lock_rows(conn: &mut DbConnection, keys: &[&[u8]], at: PrimitiveDateTime) -> QueryResult<Vec<Row>> {
    let mut ordered: Vec<&[u8]> = keys.to_vec();
    ordered.sort();
    ordered.dedup();
    let fresh: Vec<_> = ordered
        .iter()
        .map(|key| {
            (
                login_throttle::throttle_key.eq(*key),
                login_throttle::failures.eq(0),
                login_throttle::window_started_at.eq(at),
                login_throttle::locked_until.eq(None::<PrimitiveDateTime>),
            )
        })
        .collect();
    let columns = (
        login_throttle::throttle_key,
        login_throttle::failures,
        login_throttle::window_started_at,
        login_throttle::locked_until,
    );
    match conn {
        DbConnection::Sqlite(c) => {
            diesel::insert_or_ignore_into(login_throttle::table)
                .values(&fresh)
                .execute(c)?;
            login_throttle::table
                .filter(login_throttle::throttle_key.eq_any(&ordered))
                .select(columns)
                .load(c)
        }
        DbConnection::Postgres(c) => {
            diesel::insert_into(login_throttle::table)
                .values(&fresh)
                .on_conflict_do_nothing()
                .execute(c)?;
            login_throttle::table
                .filter(login_throttle::throttle_key.eq_any(&ordered))
                .order(login_throttle::throttle_key)
                .select(columns)
                .for_update()
                .load(c)
        }
    }
}

/// Locks the keys' rows (in key order, like every other writer of them, so that two
/// transactions never wait on each other in a cycle) before a transaction changes them.
pub(crate) fn lock(conn: &mut DbConnection, keys: &[&[u8]], at: PrimitiveDateTime) -> QueryResult<()> {
    lock_rows(conn, keys, at).map(|_| ())
}

/// The latest hold of the keys still in force at `at`, after locking their rows.
pub(crate) fn held_until(
    conn: &mut DbConnection,
    keys: &[&[u8]],
    at: PrimitiveDateTime,
) -> QueryResult<Option<PrimitiveDateTime>> {
    Ok(lock_rows(conn, keys, at)?
        .into_iter()
        .filter_map(|(_, _, _, until)| until)
        .filter(|until| *until > at)
        .max())
}

/// Checks the keys' holds and, when none is in force, counts one failure on each before the
/// attempt is evaluated. `Err(until)`: held back, nothing counted. Runs inside a write
/// transaction (the caller's), which must commit whatever the attempt comes to.
pub(crate) fn count_attempt(
    conn: &mut DbConnection,
    keys: &[(&[u8], Limit)],
    at: PrimitiveDateTime,
) -> QueryResult<Result<Vec<Counted>, PrimitiveDateTime>> {
    let plain: Vec<&[u8]> = keys.iter().map(|(key, _)| *key).collect();
    let rows = lock_rows(conn, &plain, at)?;
    if let Some(until) = rows
        .iter()
        .filter_map(|(_, _, _, until)| *until)
        .filter(|until| *until > at)
        .max()
    {
        return Ok(Err(until));
    }
    let mut counted = Vec::with_capacity(keys.len());
    for (key, limit) in keys {
        let Some((_, failures, started, held)) = rows.iter().find(|row| row.0.as_slice() == *key) else {
            continue;
        };
        let window_ends = (*started + limit.window).max(held.map_or(*started, |until| until + limit.window));
        let (failures, previous_window, started) = if *failures > 0 && window_ends > at {
            (failures + 1, 0, *started)
        } else {
            (1, *failures, at)
        };
        let locked_until = limit.delay(failures).map(|delay| at + delay);
        diesel::update(login_throttle::table.find(key))
            .set((
                login_throttle::failures.eq(failures),
                login_throttle::window_started_at.eq(started),
                login_throttle::locked_until.eq(locked_until),
            ))
            .execute(conn)?;
        counted.push(Counted {
            key: key.to_vec(),
            failures,
            previous_window,
            locked_until,
        });
    }
    Ok(Ok(counted))
}

/// Counts one failure on keys whose holds were checked in this transaction ([`held_until`]).
pub(crate) fn count_failure(
    conn: &mut DbConnection,
    keys: &[(&[u8], Limit)],
    at: PrimitiveDateTime,
) -> QueryResult<Vec<Counted>> {
    Ok(count_attempt(conn, keys, at)?.unwrap_or_default())
}

/// Takes back an attempt counted on `key` that turned out to be no failure: one failure less,
/// and no hold if this attempt set it (while it holds nobody else is counted, so it is still
/// the key's). Runs inside a write transaction.
pub(crate) fn uncount(conn: &mut DbConnection, counted: &Counted, at: PrimitiveDateTime) -> QueryResult<()> {
    let rows = lock_rows(conn, &[&counted.key], at)?;
    let Some((_, failures, _, held)) = rows.first() else {
        return Ok(());
    };
    let held = if counted.locked_until.is_some() { None } else { *held };
    diesel::update(login_throttle::table.find(&counted.key))
        .set((
            login_throttle::failures.eq((failures - 1).max(0)),
            login_throttle::locked_until.eq(held),
        ))
        .execute(conn)?;
    Ok(())
}

/// Forgets a key's failures (a successful login of its account).
pub(crate) fn reset(conn: &mut DbConnection, key: &[u8]) -> QueryResult<()> {
    diesel::delete(login_throttle::table.find(key)).execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ac_5_holds_grow_past_the_limit_up_to_the_window() {
        let limit = Limit {
            failures: Some(5),
            first_delay: Duration::minutes(1),
            window: Duration::minutes(15),
        };
        let delays: Vec<Option<i64>> = (3..=11).map(|n| limit.delay(n).map(|d| d.whole_minutes())).collect();
        assert_eq!(
            delays,
            [
                None,
                None,
                Some(1),
                Some(2),
                Some(4),
                Some(8),
                Some(15),
                Some(15),
                Some(15)
            ]
        );
        let unlimited = Limit {
            failures: None,
            ..limit
        };
        assert_eq!(unlimited.delay(1000), None);
    }
}
