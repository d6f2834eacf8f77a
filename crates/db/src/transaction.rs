use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, TransactionManager};

use crate::DbConnection;

/// Runs `f` in a transaction meant to write. On SQLite it begins `IMMEDIATE`, taking the write
/// lock up front: a deferred transaction that reads and then writes can fail with SQLITE_BUSY
/// when another writer committed in between, which no busy timeout can cure.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
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
            Err(rollback_error) => Err(rollback_error.into()),
        },
    }
}
