//! Database access for both backends in one binary: SQLite (the embedded default) and
//! PostgreSQL (production), chosen at run time from the URL scheme.
//!
//! All SQL of the platform lives behind this crate. Domain crates get a [`DbConnection`] and the
//! schema; they never open connections or choose a backend themselves.

pub mod backup;
pub mod chain_heads;
mod connection;
pub mod group_commit;
pub mod history;
mod kept;
pub mod key_rotation;
pub mod keycheck;
pub mod lease;
pub mod log_partitions;
pub mod migrations;
mod pool;
pub mod schema;
pub mod statistics;
mod transaction;
mod url;

#[cfg(feature = "testing")]
pub use rekisteri_leak_sweep as leak_sweep;
#[cfg(feature = "testing")]
pub mod testing;

pub use connection::DbConnection;
pub use group_commit::GroupCommit;
pub use kept::{KeptInsert, KeptUpdate, kept_insert_into, kept_update};
/// The backend type of [`DbConnection`], for boxed queries built in the domain crates.
pub type DbBackend = <DbConnection as diesel::Connection>::Backend;
pub use pool::{
    ConnectionManager, Pool, PoolOptions, PoolState, PooledConnection, SQLITE_BULK_CACHE_KIB, SqliteSynchronous,
};
pub use transaction::{CommitCheck, checked, write_transaction, write_transaction_as};
pub use url::{Backend, DatabaseUrl, DatabaseUrlError};

/// Errors of the storage layer. Messages name what failed, never a row's personal data.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Url(#[from] DatabaseUrlError),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("cannot create the database directory {path}: {source}")]
    Directory { path: String, source: std::io::Error },
}

#[doc(hidden)]
pub mod conversion_support {
    pub use diesel::result::Error as QueryError;
    pub use rekisteri_crypto::CryptoError;
}

/// `From<diesel::result::Error>` for an error type with a `Db(DbError)` variant: a query's error
/// is a database failure there as here.
#[macro_export]
macro_rules! query_error_into_db {
    ($error:ty) => {
        impl From<$crate::conversion_support::QueryError> for $error {
            fn from(e: $crate::conversion_support::QueryError) -> Self {
                Self::Db($crate::DbError::Query(e))
            }
        }
    };
}

/// `From<rekisteri_crypto::CryptoError>` for an error type with a `Crypto(String)` variant, which
/// keeps the error's message.
#[macro_export]
macro_rules! crypto_error_into_message {
    ($error:ty) => {
        impl From<$crate::conversion_support::CryptoError> for $error {
            fn from(e: $crate::conversion_support::CryptoError) -> Self {
                Self::Crypto(e.to_string())
            }
        }
    };
}

/// Runs `$body` on the backend's own connection, bound to `$c`: a statement on the hot path of
/// every request (PL-12). Diesel's multi-connection writes a statement's SQL text anew on every
/// execution, twice (to learn whether it may stay prepared, and to bind it), even when the
/// statement is already prepared: a few per cent of an audited read's CPU. On the backend's
/// connection a statement of static shape is found in the cache by its type. `$body` must
/// compile for both backends.
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::DbConnection::Sqlite($c) => $body,
            $crate::DbConnection::Postgres($c) => $body,
        }
    };
}

impl DbError {
    /// Whether the failure is the database's unavailability rather than the request's or our
    /// code's fault: no connection within the wait, a connection lost, a read-only or full
    /// database or disk. Such a failure passes; the caller may try again later (503).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Connect(_) | Self::Pool(_) => true,
            Self::Query(e) => is_unavailable(e),
            Self::Url(_) | Self::Migration(_) | Self::Directory { .. } => false,
        }
    }
}

/// SQLite's messages (`sqlite3_errstr`, stable across versions) for the result codes that mean
/// the file cannot be written or read now: SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR,
/// SQLITE_CANTOPEN and SQLITE_BUSY (past the busy timeout). diesel reports them as `Unknown`
/// with the message only.
const SQLITE_UNAVAILABLE: &[&str] = &[
    "database or disk is full",
    "attempt to write a readonly database",
    "disk I/O error",
    "unable to open database file",
    "database is locked",
    SQLITE_ROLLED_BACK,
    group_commit::WRITER_GONE,
];

/// What [`write_transaction`] reports when SQLite rolled its transaction back by itself.
pub(crate) const SQLITE_ROLLED_BACK: &str =
    "SQLite rolled the transaction back by itself (a full or read-only disk, an I/O error, a lock or no memory)";

/// PostgreSQL's messages for a server that is going away, coming up or out of disk, which
/// diesel reports as `Unknown` (it does not expose the SQLSTATE).
const POSTGRES_UNAVAILABLE: &[&str] = &[
    "terminating connection",
    "server closed the connection",
    "no connection to the server",
    "the database system is",
    "No space left on device",
    "could not extend file",
];

/// Whether a query failed because the database is unavailable (see [`DbError::is_unavailable`]).
pub fn is_unavailable(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::ReadOnlyTransaction,
            _,
        ) => true,
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            SQLITE_UNAVAILABLE.contains(&message) || POSTGRES_UNAVAILABLE.iter().any(|m| message.contains(m))
        }
        _ => false,
    }
}

/// A UTC instant as the schema's `Timestamp` columns hold it (UTC, no offset).
pub fn to_primitive(at: time::OffsetDateTime) -> time::PrimitiveDateTime {
    let utc = at.to_offset(time::UtcOffset::UTC);
    time::PrimitiveDateTime::new(utc.date(), utc.time())
}
