//! Group commit of the requests' write transactions on SQLite (PL-13).
//!
//! SQLite has one writer at a time, and a commit with `synchronous = FULL` costs an fsync of the
//! write-ahead log. Run one transaction per request and the push rate is the fsync rate. The
//! [`GroupCommit`] writer is a thread of its own with one connection: it takes the jobs that
//! concurrent requests queued, opens one `BEGIN IMMEDIATE`, runs each job in a `SAVEPOINT` of
//! its own (released when the job succeeds, rolled back to when it fails, so a failing request
//! leaves nothing and the others go on), takes more queued jobs up to [`MAX_GROUP`] while it
//! runs, commits once, and only then answers every job of the group. If the commit fails, every
//! job gets the error: nothing is acknowledged that is not durable, and no job's effects commit
//! in part (its savepoint holds all it wrote, its change-history actor and its commit check).
//!
//! On PostgreSQL a [`GroupCommit`] runs each job in a transaction of its own on the caller's
//! connection (PostgreSQL already groups concurrent commits' WAL flushes), as it does on SQLite
//! when it was started [`GroupCommit::off`] or no writer is set for the thread.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;

use diesel::Connection;
use diesel::connection::TransactionManager;
use diesel::result::{DatabaseErrorKind, Error};

use crate::transaction::{CommitCheck, clear_change_actor, current_commit_check, set_change_actor};
use crate::{DbConnection, DbError, Pool};

/// The most jobs one commit takes.
pub const MAX_GROUP: usize = 64;

/// What a job's caller gets when the writer thread is gone (it stops only when the process
/// does, or after a panic outside a job): an unavailable database, 503.
pub(crate) const WRITER_GONE: &str = "the SQLite group-commit writer is not running";

/// A request's write transaction, queued for the writer.
trait Job: Send {
    /// Runs the work inside the job's savepoint; whether it succeeded (then the savepoint is
    /// released, otherwise rolled back to).
    fn run(&mut self, conn: &mut DbConnection) -> bool;
    /// Answers the caller once the group's fate is known: with the job's own result after the
    /// commit, or with `failure` when the group did not commit.
    fn reply(self: Box<Self>, failure: Option<&GroupFailure>);
}

/// Why a group did not commit, handed to each of its jobs as an error of its own.
#[derive(Debug, Clone)]
struct GroupFailure {
    kind: Option<DatabaseErrorKindCopy>,
    message: String,
}

/// The kinds worth keeping of a failed commit (diesel's kind is not `Clone`).
#[derive(Debug, Clone, Copy)]
enum DatabaseErrorKindCopy {
    ClosedConnection,
    ReadOnlyTransaction,
    ForeignKeyViolation,
    Other,
}

impl GroupFailure {
    fn of(error: &Error) -> Self {
        match error {
            Error::DatabaseError(kind, info) => Self {
                kind: Some(match kind {
                    DatabaseErrorKind::ClosedConnection => DatabaseErrorKindCopy::ClosedConnection,
                    DatabaseErrorKind::ReadOnlyTransaction => DatabaseErrorKindCopy::ReadOnlyTransaction,
                    DatabaseErrorKind::ForeignKeyViolation => DatabaseErrorKindCopy::ForeignKeyViolation,
                    _ => DatabaseErrorKindCopy::Other,
                }),
                message: info.message().to_owned(),
            },
            Error::NotInTransaction => Self {
                kind: Some(DatabaseErrorKindCopy::Other),
                message: crate::SQLITE_ROLLED_BACK.to_owned(),
            },
            other => Self {
                kind: None,
                message: other.to_string(),
            },
        }
    }

    fn message(message: &str) -> Self {
        Self {
            kind: Some(DatabaseErrorKindCopy::Other),
            message: message.to_owned(),
        }
    }

    /// The error a job of the group gets; [`crate::is_unavailable`] judges it as it would the
    /// original (its kind, or SQLite's message).
    fn error(&self) -> Error {
        let kind = match self.kind {
            Some(DatabaseErrorKindCopy::ClosedConnection) => DatabaseErrorKind::ClosedConnection,
            Some(DatabaseErrorKindCopy::ReadOnlyTransaction) => DatabaseErrorKind::ReadOnlyTransaction,
            Some(DatabaseErrorKindCopy::ForeignKeyViolation) => DatabaseErrorKind::ForeignKeyViolation,
            Some(DatabaseErrorKindCopy::Other) | None => DatabaseErrorKind::Unknown,
        };
        Error::DatabaseError(kind, Box::new(self.message.clone()))
    }
}

struct Work<T, E, F> {
    work: Option<F>,
    actor: Option<String>,
    check: Option<CommitCheck>,
    result: Option<Result<T, E>>,
    reply: mpsc::SyncSender<Result<T, E>>,
}

impl<T, E, F> Job for Work<T, E, F>
where
    T: Send,
    E: From<Error> + Send,
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send,
{
    fn run(&mut self, conn: &mut DbConnection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let actor = self.actor.take();
        let check = self.check.take();
        // What `write_transaction_as` does inside its transaction, here inside the savepoint:
        // the actor is set and cleared by this job alone, and the commit check (an
        // Idempotency-Key claim's mark) goes with the job's own writes.
        let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<T, E> {
            if let Some(actor) = &actor {
                set_change_actor(conn, actor)?;
            }
            let value = work(conn)?;
            if actor.is_some() {
                clear_change_actor(conn)?;
            }
            if let Some(check) = &check {
                check(conn)?;
            }
            Ok(value)
        }));
        let result = outcome.unwrap_or_else(|_| {
            log::error!("a job of the SQLite group-commit writer panicked; its savepoint is rolled back");
            Err(GroupFailure::message("a write job panicked").error().into())
        });
        let succeeded = result.is_ok();
        self.result = Some(result);
        succeeded
    }

    fn reply(self: Box<Self>, failure: Option<&GroupFailure>) {
        let result = match (failure, self.result) {
            (Some(failure), _) => Err(failure.error().into()),
            (None, Some(result)) => result,
            (None, None) => Err(GroupFailure::message(WRITER_GONE).error().into()),
        };
        // A caller that is gone has nothing left to answer.
        let _ = self.reply.send(result);
    }
}

struct Shared {
    sender: mpsc::Sender<Box<dyn Job>>,
    queued: Arc<AtomicUsize>,
    groups: Arc<AtomicU64>,
}

/// The write path of the requests' transactions: a SQLite group-commit writer, or each
/// transaction on the caller's connection (PostgreSQL, or group commit off). Cheap to clone;
/// the writer thread ends when the last clone is dropped.
#[derive(Clone)]
pub struct GroupCommit {
    shared: Option<Arc<Shared>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("grouping", &self.shared.is_some())
            .finish()
    }
}

impl GroupCommit {
    /// Each transaction on the caller's connection.
    pub fn off() -> Self {
        Self { shared: None }
    }

    /// A writer thread with a connection of its own (`pool`'s settings, like the audit
    /// writer's [`Pool::single`]) on SQLite; [`GroupCommit::off`] on PostgreSQL.
    pub fn start(pool: &Pool) -> Result<Self, DbError> {
        if pool.backend() == crate::Backend::Postgres {
            return Ok(Self::off());
        }
        let single = pool.single(crate::pool::SQLITE_BUSY_TIMEOUT)?;
        let (sender, receiver) = mpsc::channel::<Box<dyn Job>>();
        let queued = Arc::new(AtomicUsize::new(0));
        let groups = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            pool: single,
            receiver,
            queued: queued.clone(),
            groups: groups.clone(),
        };
        std::thread::Builder::new()
            .name("sqlite-group-commit".to_owned())
            .spawn(move || writer.run())
            .map_err(|e| DbError::Connect(format!("cannot start the SQLite group-commit writer: {e}")))?;
        Ok(Self {
            shared: Some(Arc::new(Shared { sender, queued, groups })),
        })
    }

    /// Whether transactions go through a writer thread.
    pub fn is_grouping(&self) -> bool {
        self.shared.is_some()
    }

    /// Jobs queued and not yet taken by the writer (tests wait on it to build a group).
    pub fn queued(&self) -> usize {
        self.shared.as_ref().map_or(0, |s| s.queued.load(Ordering::SeqCst))
    }

    /// Groups the writer has committed or failed so far.
    pub fn groups(&self) -> u64 {
        self.shared.as_ref().map_or(0, |s| s.groups.load(Ordering::SeqCst))
    }

    /// Runs `f` as a write transaction whose changes the change history attributes to `actor`,
    /// as [`write_transaction_as`](crate::write_transaction_as) does: through the writer (in a
    /// savepoint of its shared transaction) when there is one and `conn` is SQLite, otherwise on
    /// `conn`. Returns only once the transaction is durable or failed. The calling thread's
    /// commit check ([`checked`](crate::checked)) runs at the end of the job, inside its
    /// savepoint. A thread inside [`lease::fenced`](crate::lease::fenced) writes on `conn`.
    pub fn write_as<T, E, F>(&self, conn: &mut DbConnection, actor: &str, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        let shared = match (&self.shared, &*conn) {
            (Some(shared), DbConnection::Sqlite(_)) if !crate::lease::is_fenced() => shared,
            _ => return crate::write_transaction_as(conn, actor, f),
        };
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Box::new(Work {
            work: Some(f),
            actor: Some(actor.to_owned()),
            check: current_commit_check(),
            result: None,
            reply,
        });
        shared.queued.fetch_add(1, Ordering::SeqCst);
        if shared.sender.send(job).is_err() {
            shared.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(GroupFailure::message(WRITER_GONE).error().into());
        }
        answer
            .recv()
            .unwrap_or_else(|_| Err(GroupFailure::message(WRITER_GONE).error().into()))
    }
}

thread_local! {
    static CURRENT: RefCell<Option<GroupCommit>> = const { RefCell::new(None) };
}

/// Runs `f` with [`write_as`] of this thread going through `writer` (the API sets it around a
/// request's blocking work, as it does the Idempotency-Key's commit check).
pub fn grouped<T>(writer: &GroupCommit, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<GroupCommit>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|current| *current.borrow_mut() = previous);
        }
    }
    let previous = CURRENT.with(|current| current.borrow_mut().replace(writer.clone()));
    let _restore = Restore(previous);
    f()
}

/// A write transaction as `actor` through the thread's [`GroupCommit`] (see [`grouped`]), or
/// [`write_transaction_as`](crate::write_transaction_as) on `conn` where none is set. For the
/// hot write paths whose transaction needs nothing borrowed (`f` is `'static`): the pushes.
pub fn write_as<T, E, F>(conn: &mut DbConnection, actor: &str, f: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<Error> + Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
{
    match CURRENT.with(|current| current.borrow().clone()) {
        Some(writer) => writer.write_as(conn, actor, f),
        None => crate::write_transaction_as(conn, actor, f),
    }
}

struct Writer {
    pool: Pool,
    receiver: mpsc::Receiver<Box<dyn Job>>,
    queued: Arc<AtomicUsize>,
    groups: Arc<AtomicU64>,
}

impl Writer {
    fn take(&self, job: Box<dyn Job>, group: &mut Vec<Box<dyn Job>>) {
        self.queued.fetch_sub(1, Ordering::SeqCst);
        group.push(job);
    }

    fn run(self) {
        while let Ok(first) = self.receiver.recv() {
            let mut group = Vec::with_capacity(MAX_GROUP);
            self.take(first, &mut group);
            let failure = self.run_group(&mut group).err();
            self.groups.fetch_add(1, Ordering::SeqCst);
            if let Some(failure) = &failure {
                log::warn!(
                    "a SQLite group commit of {} write transactions failed: {}",
                    group.len(),
                    failure.message
                );
            }
            for job in group {
                job.reply(failure.as_ref());
            }
        }
    }

    /// One shared transaction: each job in its savepoint, more jobs taken while there is room
    /// and something queued, then the commit. An error means nothing of the group committed.
    fn run_group(&self, group: &mut Vec<Box<dyn Job>>) -> Result<(), GroupFailure> {
        let mut conn = self.pool.get().map_err(|e| match e {
            DbError::Query(e) => GroupFailure::of(&e),
            _ => GroupFailure::message(WRITER_GONE),
        })?;
        let mut broken = false;
        crate::transaction::write_transaction_unfenced(&mut conn, |conn| {
            let mut next = 0;
            while next < group.len() {
                if let Some(job) = group.get_mut(next) {
                    in_savepoint(conn, job.as_mut()).inspect_err(|_| broken = true)?;
                }
                next += 1;
                if group.len() < MAX_GROUP
                    && let Ok(job) = self.receiver.try_recv()
                {
                    self.take(job, group);
                }
            }
            Ok::<_, Error>(())
        })
        .map_err(|e| {
            if broken {
                // A savepoint that cannot be released or rolled back to: SQLite rolled the
                // whole transaction back by itself, which it does on a full or read-only
                // disk, an I/O error, a lock or no memory only (what the job itself got).
                GroupFailure::message(crate::SQLITE_ROLLED_BACK)
            } else {
                GroupFailure::of(&e)
            }
        })
    }
}

/// Runs `job` in a savepoint of the open transaction. An error here (the savepoint could not be
/// made, released or rolled back to: SQLite rolled the whole transaction back by itself, say)
/// breaks the group.
fn in_savepoint(conn: &mut DbConnection, job: &mut dyn Job) -> Result<(), Error> {
    type Manager = <DbConnection as Connection>::TransactionManager;
    Manager::begin_transaction(conn)?;
    if job.run(conn) {
        Manager::commit_transaction(conn)
    } else {
        Manager::rollback_transaction(conn)
    }
}
