//! Changes' log entries on PostgreSQL, committed with the change and chained just after it.
//!
//! A change appends its log entries in its own transaction, so that no change commits without
//! them (AU-4). Appending to a chain locks the chain's head until the commit, and on PostgreSQL
//! each request commits on its own connection: every push of a registrar waited for the previous
//! push's WAL flush behind that lock, and the pushes ran one at a time (issue 22, "Pushes on
//! PostgreSQL" in `docs/performance.md`). Inside [`staging`] (the API runs each request's
//! blocking work in it), [`AuditLog::append_in`](crate::AuditLog::append_in) on PostgreSQL
//! inserts the entries into `audit_outbox` instead, in the change's transaction and without a
//! lock; the request then hands the staged ids to the audit writer, whose group commit moves
//! them into their chains, and is answered only after that commit.
//!
//! What holds: a committed change has its entries, in the outbox or in the chain; an entry
//! reaches the chain once (taking it is a `DELETE … RETURNING`, so two writers cannot both take
//! it); entries of a change that rolled back never existed. What a crash between the commit and
//! the chaining leaves in the outbox, the next writer to start (and every readiness probe)
//! takes into the chains. On SQLite nothing is staged: the group commit already shares one
//! transaction, and its head lock, among concurrent requests.

use std::cell::RefCell;

use diesel::prelude::*;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::audit_outbox;
use time::PrimitiveDateTime;

use crate::{AuditError, NewEntry};

/// The most entries a sweep of left-over entries takes into one group commit.
const SWEEP_LIMIT: i64 = 10_000;

thread_local! {
    static STAGED: RefCell<Option<Vec<i64>>> = const { RefCell::new(None) };
}

/// Runs `work` with changes' log entries on PostgreSQL staged in the outbox; returns its result
/// and the ids staged, which the caller hands to
/// [`AuditLog::chain_staged`](crate::AuditLog::chain_staged) before it answers anyone. Ids of
/// a transaction that rolled back are among them and are skipped there.
pub fn staging<T>(work: impl FnOnce() -> T) -> (T, Vec<i64>) {
    struct Restore(Option<Vec<i64>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            STAGED.with(|staged| *staged.borrow_mut() = outer);
        }
    }
    let outer = STAGED.with(|staged| staged.borrow_mut().replace(Vec::new()));
    let restore = Restore(outer);
    let result = work();
    let ids = STAGED.with(|staged| staged.borrow_mut().take()).unwrap_or_default();
    drop(restore);
    (result, ids)
}

/// Stages `entries` if this thread is inside [`staging`] and `conn` is PostgreSQL's; returns
/// them back otherwise, for the caller to append in its transaction.
pub(crate) fn stage(
    conn: &mut DbConnection,
    entries: Vec<NewEntry>,
    now: PrimitiveDateTime,
) -> Result<Option<Vec<NewEntry>>, AuditError> {
    let staging = STAGED.with(|staged| staged.borrow().is_some());
    let c = match conn {
        DbConnection::Postgres(c) if staging => c,
        _ => return Ok(Some(entries)),
    };
    let mut rows = Vec::with_capacity(entries.len());
    for entry in &entries {
        let json = serde_json::to_string(entry)
            .map_err(|e| AuditError::Write(format!("an entry could not be staged ({:?} error)", e.classify())))?;
        rows.push((audit_outbox::created_at.eq(now), audit_outbox::entry.eq(json)));
    }
    let ids: Vec<i64> = diesel::insert_into(audit_outbox::table)
        .values(&rows)
        .returning(audit_outbox::id)
        .get_results(c)?;
    STAGED.with(|staged| {
        if let Some(staged) = staged.borrow_mut().as_mut() {
            staged.extend(ids);
        }
    });
    Ok(None)
}

/// Takes out of the outbox, in the writer's transaction, the entries staged as `ids` (those
/// still there) and, with `sweep`, any others left there; in the order they were staged.
pub(crate) fn take(conn: &mut DbConnection, ids: &[i64], sweep: bool) -> Result<Vec<NewEntry>, AuditError> {
    let c = match conn {
        DbConnection::Postgres(c) if sweep || !ids.is_empty() => c,
        _ => return Ok(Vec::new()),
    };
    let mut ids = ids.to_vec();
    if sweep {
        ids.extend(
            audit_outbox::table
                .select(audit_outbox::id)
                .order(audit_outbox::id)
                .limit(SWEEP_LIMIT)
                .load::<i64>(c)?,
        );
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: Vec<(i64, String)> = diesel::delete(audit_outbox::table.filter(audit_outbox::id.eq_any(&ids)))
        .returning((audit_outbox::id, audit_outbox::entry))
        .get_results(c)?;
    rows.sort_unstable_by_key(|(id, _)| *id);
    rows.into_iter()
        .map(|(id, json)| {
            serde_json::from_str(&json)
                // serde's message can quote the entry's values; the log gets only where it broke.
                .map_err(|e| {
                    AuditError::Write(format!(
                        "the staged entry {id} could not be read ({:?} error at column {})",
                        e.classify(),
                        e.column()
                    ))
                })
        })
        .collect()
}
