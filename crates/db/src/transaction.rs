use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use parking_lot::Mutex;

use crate::DbConnection;

/// Runs `f` in a transaction meant to write. On SQLite it begins `IMMEDIATE`, taking the write
/// lock up front: a deferred transaction that reads and then writes can fail with SQLITE_BUSY
/// when another writer committed in between, which no busy timeout can cure.
///
/// On SQLite the writers of this process also queue on an in-process lock of the database
/// first ([`sqlite_writer`]): SQLite's own busy handler lets a waiting writer sleep 1 to 100 ms
/// between attempts, which under concurrent writes costs most of the throughput and sets the
/// p99; a lock hands over at once.
///
/// Inside [`lease::fenced`](crate::lease::fenced) it checks the job's fencing token before it
/// commits, and rolls back when the lease was taken; inside [`checked`] it runs that check last.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    write_transaction_unfenced(conn, |conn| {
        let value = f(conn)?;
        crate::lease::check_current_fence(conn)?;
        check_before_commit(conn)?;
        Ok(value)
    })
}

/// A statement a write transaction runs just before it commits; an error rolls it back.
pub type CommitCheck = Arc<dyn Fn(&mut DbConnection) -> diesel::QueryResult<()> + Send + Sync>;

thread_local! {
    static COMMIT_CHECK: RefCell<Option<CommitCheck>> = const { RefCell::new(None) };
}

/// Runs `f` with every [`write_transaction`] of this thread ending in `check`, inside the
/// transaction: what the check writes commits with the transaction's work or not at all. An
/// `Idempotency-Key` claim uses it to record, atomically with a request's writes, that they
/// happened and that the claim was still its own (`rekisteri_idempotency`); like the job leases'
/// fence, without threading the claim through every domain crate.
pub fn checked<T>(check: CommitCheck, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<CommitCheck>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            COMMIT_CHECK.with(|current| *current.borrow_mut() = previous);
        }
    }
    let previous = COMMIT_CHECK.with(|current| current.borrow_mut().replace(check));
    let _restore = Restore(previous);
    f()
}

/// The commit check [`checked`] set for this thread, for a write that runs on another thread
/// (the group-commit writer).
pub(crate) fn current_commit_check() -> Option<CommitCheck> {
    COMMIT_CHECK.with(|current| current.borrow().clone())
}

fn check_before_commit(conn: &mut DbConnection) -> diesel::QueryResult<()> {
    match COMMIT_CHECK.with(|current| current.borrow().clone()) {
        Some(check) => check(conn),
        None => Ok(()),
    }
}

/// [`write_transaction`] without the fencing check: the lease operations themselves.
pub(crate) fn write_transaction_unfenced<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let writer = match conn {
        DbConnection::Sqlite(inner) => Some(sqlite_writer(inner)?),
        DbConnection::Postgres(_) => None,
    };
    // Waits as long as SQLite's busy timeout would; past it, goes on without the lock and
    // leaves the waiting to SQLite, so a writer that waits on itself fails as before instead
    // of hanging.
    let _turn = writer.as_ref().and_then(|lock| {
        let turn = lock.try_lock_for(crate::pool::SQLITE_BUSY_TIMEOUT);
        if turn.is_none() {
            log::warn!("a SQLite writer waited its busy timeout for the writer lock; it goes on without it");
        }
        turn
    });
    match conn {
        // The multi-connection's transaction manager delegates commit and rollback to the inner
        // connection's, which tracks this BEGIN like its own.
        DbConnection::Sqlite(inner) => AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?,
        DbConnection::Postgres(_) => <DbConnection as Connection>::TransactionManager::begin_transaction(conn)?,
    }
    match f(conn) {
        Ok(value) => {
            <DbConnection as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => match <DbConnection as Connection>::TransactionManager::rollback_transaction(conn) {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
            // SQLite rolled the transaction back by itself, which it does on SQLITE_FULL,
            // SQLITE_IOERR, SQLITE_BUSY and SQLITE_NOMEM only. `error` may then be an artefact
            // (a savepoint of diesel's SQLite batch insert that no longer exists) rather than
            // the cause; the cause is one of those, all of which mean "not now".
            // diesel notices that only after a failed `batch_execute` (NotInTransaction); after a
            // failed prepared statement its ROLLBACK is what fails, with SQLite's own words.
            Err(diesel::result::Error::NotInTransaction) => Err(rolled_back_by_sqlite().into()),
            Err(diesel::result::Error::DatabaseError(_, info))
                if matches!(conn, DbConnection::Sqlite(_)) && info.message() == SQLITE_NO_TRANSACTION =>
            {
                Err(rolled_back_by_sqlite().into())
            }
            Err(rollback_error) => Err(rollback_error.into()),
        },
    }
}

/// SQLite's answer to a ROLLBACK with no transaction open (`sqlite3_errmsg`, stable).
const SQLITE_NO_TRANSACTION: &str = "cannot rollback - no transaction is active";

fn rolled_back_by_sqlite() -> diesel::result::Error {
    diesel::result::Error::DatabaseError(
        diesel::result::DatabaseErrorKind::Unknown,
        Box::new(crate::SQLITE_ROLLED_BACK.to_owned()),
    )
}

#[derive(diesel::QueryableByName)]
struct DatabaseFile {
    #[diesel(sql_type = diesel::sql_types::Text)]
    file: String,
}

/// The in-process writer lock of the SQLite database `conn` is open on, one per file.
fn sqlite_writer(conn: &mut diesel::SqliteConnection) -> diesel::QueryResult<Arc<Mutex<()>>> {
    use diesel::RunQueryDsl;
    static WRITERS: LazyLock<Mutex<HashMap<String, Arc<Mutex<()>>>>> = LazyLock::new(Default::default);
    let file = diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
        .get_result::<DatabaseFile>(conn)?
        .file;
    Ok(WRITERS.lock().entry(file).or_default().clone())
}

/// Names the application user behind the changes of the current transaction, for the change
/// history that database triggers write (AU-9). On PostgreSQL a transaction-local setting; on
/// SQLite a one-row table that [`write_transaction_as`] clears again before it commits.
pub(crate) fn set_change_actor(conn: &mut DbConnection, actor: &str) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl;
    use diesel::sql_types::Text;
    match conn {
        DbConnection::Sqlite(inner) => {
            diesel::sql_query("DELETE FROM change_actor").execute(inner)?;
            diesel::sql_query("INSERT INTO change_actor (actor) VALUES (?)")
                .bind::<Text, _>(actor)
                .execute(inner)?;
        }
        DbConnection::Postgres(inner) => {
            diesel::sql_query("SELECT set_config('rekisteri.actor', $1, true)")
                .bind::<Text, _>(actor)
                .execute(inner)?;
        }
    }
    Ok(())
}

pub(crate) fn clear_change_actor(conn: &mut DbConnection) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl;
    if let DbConnection::Sqlite(inner) = conn {
        diesel::sql_query("DELETE FROM change_actor").execute(inner)?;
    }
    Ok(())
}

/// [`write_transaction`] whose changes the change history attributes to `actor` (an account id,
/// or `system:<job>`); without it the history names the database.
pub fn write_transaction_as<T, E, F>(conn: &mut DbConnection, actor: &str, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    write_transaction(conn, |conn| {
        set_change_actor(conn, actor)?;
        let value = f(conn)?;
        clear_change_actor(conn)?;
        Ok(value)
    })
}
