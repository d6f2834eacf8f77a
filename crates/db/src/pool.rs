use std::fmt;
use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::R2D2Connection;
use diesel::sqlite::SqliteConnection;
use r2d2::ManageConnection;

use crate::{Backend, DatabaseUrl, DbConnection, DbError};

/// SQLite's `synchronous` setting. `Full` syncs the write-ahead log at every commit, so a
/// commit survives power loss; `Normal` survives a crash of the process but not of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSynchronous {
    #[default]
    Full,
    Normal,
}

impl SqliteSynchronous {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

impl std::str::FromStr for SqliteSynchronous {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Self::Full),
            "normal" => Ok(Self::Normal),
            _ => Err(format!("'{s}' is not a SQLite synchronous mode: use full or normal")),
        }
    }
}

/// How much of the SQLite file a connection maps into memory (address space, not RSS: pages
/// count towards RSS only when touched, and are shared with the page cache).
const SQLITE_MMAP_BYTES: u64 = 1 << 30;

/// How long a SQLite writer waits for another (the busy timeout, and the in-process writer
/// lock of `write_transaction`).
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: u32,
    pub connection_timeout: Duration,
    pub sqlite_synchronous: SqliteSynchronous,
    pub sqlite_busy_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 16,
            connection_timeout: Duration::from_secs(10),
            sqlite_synchronous: SqliteSynchronous::Full,
            sqlite_busy_timeout: SQLITE_BUSY_TIMEOUT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectError(String);

/// Opens connections of the backend the URL names, with the per-connection settings applied.
pub struct ConnectionManager {
    url: DatabaseUrl,
    options: PoolOptions,
}

impl ConnectionManager {
    fn sqlite_pragmas(&self) -> String {
        // mmap: in WAL mode a connection drops its whole page cache whenever another one has
        // committed, which with a usage-log write per request is always; without mmap every read
        // then fetches each page it touches with a pread of its own (some 200 per audited read).
        // temp_store: sorts and DISTINCTs stay in memory instead of temporary files.
        // secure_delete: what is deleted or purged (a protected address, VT-6, CL-8) is overwritten
        // in the file, not left in free pages.
        // busy_timeout first: switching a fresh file to WAL needs a lock other connections may hold.
        format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; \
             PRAGMA foreign_keys = ON; PRAGMA mmap_size = {SQLITE_MMAP_BYTES}; PRAGMA temp_store = MEMORY; \
             PRAGMA secure_delete = ON;",
            self.options.sqlite_busy_timeout.as_millis(),
            self.options.sqlite_synchronous.as_str()
        )
    }
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = ConnectError;

    fn connect(&self) -> Result<DbConnection, ConnectError> {
        match &self.url {
            DatabaseUrl::Sqlite { path } => {
                let path = path
                    .to_str()
                    .ok_or_else(|| ConnectError("the SQLite path is not valid UTF-8".to_owned()))?;
                let mut conn = SqliteConnection::establish(path).map_err(|e| ConnectError(e.to_string()))?;
                conn.batch_execute(&self.sqlite_pragmas())
                    .map_err(|e| ConnectError(e.to_string()))?;
                Ok(DbConnection::Sqlite(conn))
            }
            DatabaseUrl::Postgres { url } => {
                let mut conn = PgConnection::establish(url).map_err(|e| ConnectError(e.to_string()))?;
                // Timestamps are bound as UTC; the session zone must agree.
                conn.batch_execute("SET TIME ZONE 'UTC'")
                    .map_err(|e| ConnectError(e.to_string()))?;
                Ok(DbConnection::Postgres(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectError> {
        conn.batch_execute("SELECT 1").map_err(|e| ConnectError(e.to_string()))
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// A pool of connections to one database; cheap to clone.
#[derive(Clone)]
pub struct Pool {
    inner: r2d2::Pool<ConnectionManager>,
    url: DatabaseUrl,
    options: PoolOptions,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("url", &self.url)
            .field("state", &self.inner.state())
            .finish()
    }
}

impl Pool {
    /// Opens a pool. For SQLite the file's directory is created; the first connection is made
    /// here, so a wrong URL or an unreachable server fails now rather than at the first request.
    pub fn open(url: &DatabaseUrl, options: &PoolOptions) -> Result<Self, DbError> {
        if let DatabaseUrl::Sqlite { path } = url
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|source| DbError::Directory {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let manager = ConnectionManager {
            url: url.clone(),
            options: options.clone(),
        };
        // Fail fast with the real reason instead of r2d2's "timed out waiting for connection".
        drop(manager.connect().map_err(|e| DbError::Connect(e.0))?);
        let inner = r2d2::Pool::builder()
            .max_size(options.max_size)
            .min_idle(Some(1))
            // A SQLite connection is a file handle that does not go stale; checking it with a
            // query at every checkout would cost two statements per request. A PostgreSQL
            // connection can (the server restarts), so it is checked.
            .test_on_check_out(url.backend() == Backend::Postgres)
            .connection_timeout(options.connection_timeout)
            .build(manager)?;
        Ok(Self {
            inner,
            url: url.clone(),
            options: options.clone(),
        })
    }

    pub fn get(&self) -> Result<PooledConnection, DbError> {
        Ok(self.inner.get()?)
    }

    pub fn get_timeout(&self, timeout: Duration) -> Result<PooledConnection, DbError> {
        Ok(self.inner.get_timeout(timeout)?)
    }

    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// A connection of its own, never returned to the pool, with the same settings: for work
    /// that changes a connection's state in ways pooled connections must not inherit (the
    /// audit retention run).
    pub fn connect_unpooled(&self) -> Result<DbConnection, DbError> {
        let manager = ConnectionManager {
            url: self.url.clone(),
            options: self.options.clone(),
        };
        manager.connect().map_err(|e| DbError::Connect(e.0))
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }
}
