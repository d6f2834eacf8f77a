//! Leases of the periodic jobs (PL-8): at most one holder runs a job at a time across every
//! server that shares the database, and a holder that lost its lease cannot write.
//!
//! A lease is a row of `job_leases`. [`acquire`] takes it only when it is free, expired or
//! already ours, in one conditional UPDATE, and moves its fencing token. Expiry alone cannot
//! keep two holders apart: a holder may stall (a GC-like pause, a suspended VM, a slow disk)
//! past its expiry while another takes over, then wake up and go on writing. So the job's
//! write transactions check the token too ([`check_fence`]); [`fenced`] makes every
//! [`write_transaction`](crate::write_transaction) of the current thread do that check just
//! before it commits, which fences the existing jobs without threading a token through every
//! domain crate. On PostgreSQL the check locks the lease row `FOR SHARE` until the commit, so a
//! taker's UPDATE waits for an in-flight transaction instead of overtaking it; on SQLite the
//! `BEGIN IMMEDIATE` of both already serialises them.

use std::cell::RefCell;

use diesel::prelude::*;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::schema::job_leases;
use crate::{DbConnection, to_primitive};

/// A held lease: the job, who holds it, and the token its writes are fenced with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job: String,
    pub holder: String,
    pub token: i64,
    pub expires_at: PrimitiveDateTime,
}

/// A job's row as `jobs list` and the schedulers read it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct JobState {
    pub job: String,
    pub holder: Option<String>,
    pub token: i64,
    pub acquired_at: Option<PrimitiveDateTime>,
    pub expires_at: Option<PrimitiveDateTime>,
    pub last_started_at: Option<PrimitiveDateTime>,
    pub last_finished_at: Option<PrimitiveDateTime>,
    pub last_outcome: Option<String>,
    pub last_counts: Option<String>,
    pub last_error: Option<String>,
    pub failures: i32,
    pub next_run_at: Option<PrimitiveDateTime>,
}

impl JobState {
    /// Whether someone holds the lease at `now`.
    pub fn held_at(&self, now: OffsetDateTime) -> bool {
        self.holder.is_some() && self.expires_at.is_some_and(|e| e >= to_primitive(now))
    }
}

/// What a finished run leaves in its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub finished_at: OffsetDateTime,
    /// `ok` or `failed`.
    pub outcome: String,
    /// The run's counts as JSON text.
    pub counts: Option<String>,
    pub error: Option<String>,
    /// Failures in a row, 0 after a success: what the next backoff is computed from.
    pub failures: i32,
    pub next_run_at: Option<OffsetDateTime>,
}

/// The error a fenced write fails with once its lease belongs to someone else.
#[derive(Debug, thiserror::Error)]
#[error("the lease of job {job} is no longer held by this run (another holder took it)")]
pub struct LeaseLost {
    pub job: String,
}

/// Whether a database error is a failed fencing check.
pub fn is_lease_lost(error: &diesel::result::Error) -> bool {
    matches!(error, diesel::result::Error::QueryBuilderError(e) if e.is::<LeaseLost>())
}

fn lease_lost(job: &str) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(Box::new(LeaseLost { job: job.to_owned() }))
}

/// Makes sure the job has a row, so that the conditional UPDATE has something to take.
fn ensure_row(conn: &mut DbConnection, job: &str) -> QueryResult<()> {
    let insert = diesel::insert_into(job_leases::table)
        .values((
            job_leases::job.eq(job),
            job_leases::token.eq(0_i64),
            job_leases::failures.eq(0),
        ))
        .on_conflict_do_nothing();
    match conn {
        DbConnection::Postgres(pg) => insert.execute(pg)?,
        DbConnection::Sqlite(sqlite) => insert.execute(sqlite)?,
    };
    Ok(())
}

fn take(
    conn: &mut DbConnection,
    job: &str,
    holder: &str,
    now: OffsetDateTime,
    ttl: Duration,
    due_only: bool,
) -> QueryResult<Option<Lease>> {
    let at = to_primitive(now);
    let expires_at = to_primitive(now + ttl);
    crate::transaction::write_transaction_unfenced(conn, |conn| {
        ensure_row(conn, job)?;
        let free = job_leases::holder
            .is_null()
            .or(job_leases::expires_at.is_null())
            .or(job_leases::expires_at.lt(at))
            .or(job_leases::holder.eq(holder));
        let due = job_leases::next_run_at.is_null().or(job_leases::next_run_at.le(at));
        let target = job_leases::table.filter(job_leases::job.eq(job)).filter(free);
        let values = (
            job_leases::holder.eq(holder),
            job_leases::token.eq(job_leases::token + 1),
            job_leases::acquired_at.eq(at),
            job_leases::expires_at.eq(expires_at),
        );
        let token = if due_only {
            diesel::update(target.filter(due))
                .set(values)
                .returning(job_leases::token)
                .get_result::<i64>(conn)
                .optional()?
        } else {
            diesel::update(target)
                .set(values)
                .returning(job_leases::token)
                .get_result::<i64>(conn)
                .optional()?
        };
        Ok(token.map(|token| Lease {
            job: job.to_owned(),
            holder: holder.to_owned(),
            token,
            expires_at,
        }))
    })
}

/// Takes the job's lease for `ttl` if it is free, expired or already `holder`'s; `None` when
/// another holder has it. Every acquisition moves the token.
pub fn acquire(
    conn: &mut DbConnection,
    job: &str,
    holder: &str,
    now: OffsetDateTime,
    ttl: Duration,
) -> QueryResult<Option<Lease>> {
    take(conn, job, holder, now, ttl, false)
}

/// Like [`acquire`], but only when the job is due (`next_run_at` unset or reached): the
/// schedulers of several servers then run a due job once, not once each one after the other.
pub fn acquire_if_due(
    conn: &mut DbConnection,
    job: &str,
    holder: &str,
    now: OffsetDateTime,
    ttl: Duration,
) -> QueryResult<Option<Lease>> {
    take(conn, job, holder, now, ttl, true)
}

/// Extends a held lease to `now + ttl`; `false` when it is no longer ours (the token moved).
pub fn renew(conn: &mut DbConnection, lease: &mut Lease, now: OffsetDateTime, ttl: Duration) -> QueryResult<bool> {
    let expires_at = to_primitive(now + ttl);
    let updated = crate::transaction::write_transaction_unfenced(conn, |conn| {
        diesel::update(held(lease))
            .set(job_leases::expires_at.eq(expires_at))
            .execute(conn)
    })?;
    if updated == 1 {
        lease.expires_at = expires_at;
    }
    Ok(updated == 1)
}

/// Gives the lease up; `false` when it was no longer ours.
pub fn release(conn: &mut DbConnection, lease: &Lease) -> QueryResult<bool> {
    let updated = crate::transaction::write_transaction_unfenced(conn, |conn| {
        diesel::update(held(lease))
            .set((
                job_leases::holder.eq(None::<String>),
                job_leases::expires_at.eq(None::<PrimitiveDateTime>),
            ))
            .execute(conn)
    })?;
    Ok(updated == 1)
}

/// Records that a run started under `lease`.
pub fn record_start(conn: &mut DbConnection, lease: &Lease, now: OffsetDateTime) -> QueryResult<bool> {
    let updated = crate::transaction::write_transaction_unfenced(conn, |conn| {
        diesel::update(held(lease))
            .set(job_leases::last_started_at.eq(to_primitive(now)))
            .execute(conn)
    })?;
    Ok(updated == 1)
}

/// Records a finished run and releases the lease in one statement; `false` (and nothing
/// recorded) when the lease was lost meanwhile: the new holder's record is the one that counts.
pub fn finish(conn: &mut DbConnection, lease: &Lease, record: &RunRecord) -> QueryResult<bool> {
    let updated = crate::transaction::write_transaction_unfenced(conn, |conn| {
        diesel::update(held(lease))
            .set((
                job_leases::holder.eq(None::<String>),
                job_leases::expires_at.eq(None::<PrimitiveDateTime>),
                job_leases::last_finished_at.eq(to_primitive(record.finished_at)),
                job_leases::last_outcome.eq(&record.outcome),
                job_leases::last_counts.eq(&record.counts),
                job_leases::last_error.eq(&record.error),
                job_leases::failures.eq(record.failures),
                job_leases::next_run_at.eq(record.next_run_at.map(to_primitive)),
            ))
            .execute(conn)
    })?;
    Ok(updated == 1)
}

/// Sets when the job is next due if nothing has set it yet (a job new to this database).
pub fn schedule_if_unset(conn: &mut DbConnection, job: &str, next_run_at: OffsetDateTime) -> QueryResult<()> {
    crate::transaction::write_transaction_unfenced(conn, |conn| {
        ensure_row(conn, job)?;
        diesel::update(
            job_leases::table
                .filter(job_leases::job.eq(job))
                .filter(job_leases::next_run_at.is_null()),
        )
        .set(job_leases::next_run_at.eq(to_primitive(next_run_at)))
        .execute(conn)?;
        Ok(())
    })
}

/// Every job's row, by name.
pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<JobState>> {
    job_leases::table.order(job_leases::job).load(conn)
}

/// One job's row.
pub fn state(conn: &mut DbConnection, job: &str) -> QueryResult<Option<JobState>> {
    job_leases::table.filter(job_leases::job.eq(job)).first(conn).optional()
}

/// The lease row as long as `lease` is still the current one.
type Held<'a> = diesel::dsl::Filter<
    diesel::dsl::Filter<
        diesel::dsl::Filter<job_leases::table, diesel::dsl::Eq<job_leases::job, &'a str>>,
        diesel::dsl::Eq<job_leases::holder, &'a str>,
    >,
    diesel::dsl::Eq<job_leases::token, i64>,
>;

fn held(lease: &Lease) -> Held<'_> {
    job_leases::table
        .filter(job_leases::job.eq(lease.job.as_str()))
        .filter(job_leases::holder.eq(lease.holder.as_str()))
        .filter(job_leases::token.eq(lease.token))
}

/// Fails with [`LeaseLost`] unless `holder` still holds the job's lease with `token`. Call it
/// inside the transaction whose writes it guards: on PostgreSQL it keeps the lease row locked
/// until that transaction ends.
pub fn check_fence(conn: &mut DbConnection, job: &str, holder: &str, token: i64) -> QueryResult<()> {
    let query = job_leases::table
        .filter(job_leases::job.eq(job))
        .filter(job_leases::holder.eq(holder))
        .select(job_leases::token);
    let current = match conn {
        DbConnection::Postgres(pg) => query.for_share().first::<i64>(pg).optional()?,
        DbConnection::Sqlite(sqlite) => query.first::<i64>(sqlite).optional()?,
    };
    if current == Some(token) {
        Ok(())
    } else {
        Err(lease_lost(job))
    }
}

thread_local! {
    static FENCE: RefCell<Option<Lease>> = const { RefCell::new(None) };
}

/// Runs `f` with every write transaction of this thread fenced by `lease`.
pub fn fenced<T>(lease: &Lease, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Lease>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            FENCE.with(|fence| *fence.borrow_mut() = previous);
        }
    }
    let previous = FENCE.with(|fence| fence.borrow_mut().replace(lease.clone()));
    let _restore = Restore(previous);
    f()
}

/// The check [`write_transaction`](crate::write_transaction) makes before it commits.
/// Whether this thread runs inside [`fenced`].
pub(crate) fn is_fenced() -> bool {
    FENCE.with(|fence| fence.borrow().is_some())
}

pub(crate) fn check_current_fence(conn: &mut DbConnection) -> QueryResult<()> {
    match FENCE.with(|fence| fence.borrow().clone()) {
        Some(lease) => check_fence(conn, &lease.job, &lease.holder, lease.token),
        None => Ok(()),
    }
}
