//! Database access for both backends in one binary: SQLite (the embedded default) and
//! PostgreSQL (production), chosen at run time from the URL scheme.
//!
//! All SQL of the platform lives behind this crate. Domain crates get a [`DbConnection`] and the
//! schema; they never open connections or choose a backend themselves.

mod connection;
pub mod history;
pub mod keycheck;
pub mod lease;
pub mod migrations;
mod pool;
pub mod schema;
mod transaction;
mod url;

#[cfg(feature = "testing")]
pub mod testing;

pub use connection::DbConnection;
/// The backend type of [`DbConnection`], for boxed queries built in the domain crates.
pub type DbBackend = <DbConnection as diesel::Connection>::Backend;
pub use pool::{ConnectionManager, Pool, PoolOptions, PoolState, PooledConnection, SqliteSynchronous};
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

/// A UTC instant as the schema's `Timestamp` columns hold it (UTC, no offset).
pub fn to_primitive(at: time::OffsetDateTime) -> time::PrimitiveDateTime {
    let utc = at.to_offset(time::UtcOffset::UTC);
    time::PrimitiveDateTime::new(utc.date(), utc.time())
}
