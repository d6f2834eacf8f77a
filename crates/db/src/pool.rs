use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::R2D2Connection;
use diesel::sqlite::SqliteConnection;
use r2d2::ManageConnection;
use scheduled_thread_pool::ScheduledThreadPool;

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

/// How much of the SQLite file a pooled connection maps into memory (address space, not RSS:
/// pages count towards RSS only when touched, and are shared with the page cache). A pooled
/// connection's mapping stays small: another connection's commit makes it unmap the whole file
/// at its next read transaction, so it holds only what one transaction touched.
const SQLITE_MMAP_BYTES: u64 = 1 << 30;

/// The page cache of a bulk run's connection ([`Pool::connect_unpooled`]), in KiB. A batch of
/// the anonymisation run dirties some 30 000 pages (its clients' rows and every random index
/// leaf they move); in SQLite's default 2 MB cache they were written to the WAL and read back
/// many times before the commit. An upper bound, taken only as pages are dirtied, and freed
/// with the connection when the run ends (PL-15; the server's own connections keep the default).
pub const SQLITE_BULK_CACHE_KIB: u64 = 256 * 1024;

/// How long a pooled connection may stay unused before it is closed; r2d2's reaper looks every
/// 30 s, so an unused connection goes 60–90 s after its last use.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The threads that open and close pooled connections, shared by every pool of the process.
/// r2d2 gives each pool three of its own, and the server has three pools (requests, the audit
/// writer, the group-commit writer): nine threads, each opening connections in a glibc arena
/// of its own that keeps what a closed connection freed (PL-16: a SQLite connection parses the
/// schema, about 0.6 MB). Two threads still open two connections at once in a burst; while
/// one waits on an unreachable PostgreSQL, the other serves every pool.
static CONNECTION_THREADS: LazyLock<Arc<ScheduledThreadPool>> = LazyLock::new(|| {
    Arc::new(
        ScheduledThreadPool::builder()
            .num_threads(2)
            .thread_name_pattern("db-connections-{}")
            .build(),
    )
});

/// How long a SQLite writer waits for another (the busy timeout, and the in-process writer
/// lock of `write_transaction`).
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: u32,
    pub connection_timeout: Duration,
    pub sqlite_synchronous: SqliteSynchronous,
    pub sqlite_busy_timeout: Duration,
    /// How long a PostgreSQL connection that answered a liveness check (`SELECT 1`) is taken as
    /// alive without another. Checking at every checkout cost a round trip per checkout, two
    /// per audited read (PL-12: 15 % of the PostgreSQL read rate); after a server restart, work
    /// on a connection checked within this long before fails once and the connection is dropped
    /// at its next check.
    pub postgres_liveness_interval: Duration,
    /// The most pages a SQLite connection lets the database file grow to (`max_page_count`):
    /// past it, writes fail as on a full disk (SQLITE_FULL) and requests answer 503 until
    /// space is freed. `None`: SQLite's own limit.
    pub sqlite_max_pages: Option<u64>,
    /// SQLite's `mmap_size` for each connection (0: no mapping, every page read with `pread`).
    pub sqlite_mmap_bytes: u64,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 16,
            connection_timeout: Duration::from_secs(10),
            sqlite_synchronous: SqliteSynchronous::Full,
            sqlite_busy_timeout: SQLITE_BUSY_TIMEOUT,
            postgres_liveness_interval: Duration::from_secs(1),
            sqlite_max_pages: None,
            sqlite_mmap_bytes: SQLITE_MMAP_BYTES,
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
        let max_pages = self
            .options
            .sqlite_max_pages
            .map_or(String::new(), |pages| format!(" PRAGMA max_page_count = {pages};"));
        format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; \
             PRAGMA foreign_keys = ON; PRAGMA mmap_size = {}; PRAGMA temp_store = MEMORY; \
             PRAGMA secure_delete = ON;{max_pages}",
            self.options.sqlite_busy_timeout.as_millis(),
            self.options.sqlite_synchronous.as_str(),
            self.options.sqlite_mmap_bytes,
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

    /// Not called at checkout (`test_on_check_out` is off); [`Pool::get`] checks PostgreSQL
    /// connections itself, at most once per `postgres_liveness_interval`.
    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectError> {
        conn.batch_execute("SELECT 1").map_err(|e| ConnectError(e.to_string()))
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// When a pooled PostgreSQL connection last answered a liveness check (kept in the pool's
/// per-connection extensions).
struct LastChecked(Instant);

/// A pool of connections to one database; cheap to clone.
#[derive(Clone)]
pub struct Pool {
    inner: r2d2::Pool<ConnectionManager>,
    url: DatabaseUrl,
    options: PoolOptions,
    /// Callers inside `get` now (`/metrics`); r2d2 does not count them.
    waiting: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

/// The pool at one moment (`/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolState {
    pub max_size: u32,
    pub connections: u32,
    pub idle_connections: u32,
    pub waiting: i64,
}

/// Counts a caller as waiting for a connection until it is dropped.
struct Waiting<'a>(&'a std::sync::atomic::AtomicI64);

impl<'a> Waiting<'a> {
    fn start(counter: &'a std::sync::atomic::AtomicI64) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
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
            // Connections a burst opened (the start-up's jobs, a peak of requests) are closed
            // after a minute unused, down to one (PL-16: each SQLite connection holds its own
            // parsed schema, about 0.6 MB here; r2d2's default keeps them ten minutes).
            .idle_timeout(Some(POOL_IDLE_TIMEOUT))
            // A SQLite connection is a file handle that does not go stale. A PostgreSQL
            // connection can (the server restarts): `get` checks it, but not at every checkout.
            .test_on_check_out(false)
            .connection_timeout(options.connection_timeout)
            .thread_pool(Arc::clone(&CONNECTION_THREADS))
            .build(manager)?;
        Ok(Self {
            inner,
            url: url.clone(),
            options: options.clone(),
            waiting: Default::default(),
        })
    }

    pub fn state(&self) -> PoolState {
        let state = self.inner.state();
        PoolState {
            max_size: self.inner.max_size(),
            connections: state.connections,
            idle_connections: state.idle_connections,
            waiting: self.waiting.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// A live connection, waiting at most the pool's `connection_timeout` for one.
    pub fn get(&self) -> Result<PooledConnection, DbError> {
        self.get_timeout(self.options.connection_timeout)
    }

    /// A live connection, waiting at most `timeout` in all (request handlers wait less than
    /// the commands do, and answer 503 rather than keep a caller waiting on an outage).
    pub fn get_timeout(&self, timeout: Duration) -> Result<PooledConnection, DbError> {
        let _waiting = Waiting::start(&self.waiting);
        let deadline = Instant::now() + timeout;
        self.live(|| {
            let left = deadline.saturating_duration_since(Instant::now());
            // r2d2 cannot wait for nothing: with no time left one short last try.
            self.inner.get_timeout(left.max(Duration::from_millis(1)))
        })
    }

    /// A connection from `checkout` that is alive: a PostgreSQL connection not checked within
    /// the liveness interval answers `SELECT 1` first, and one that does not is marked broken,
    /// so that the pool drops it instead of taking it back, and the next is tried.
    fn live(&self, checkout: impl Fn() -> Result<PooledConnection, r2d2::Error>) -> Result<PooledConnection, DbError> {
        if self.url.backend() == Backend::Sqlite {
            return Ok(checkout()?);
        }
        // Each failed attempt drops a connection; a pool that opened new ones all failing is an
        // outage, not something to loop on.
        for _ in 0..=self.options.max_size {
            let mut conn = checkout()?;
            let recently_checked = r2d2::PooledConnection::extensions(&conn)
                .get::<LastChecked>()
                .is_some_and(|last| last.0.elapsed() < self.options.postgres_liveness_interval);
            if recently_checked {
                return Ok(conn);
            }
            if conn.batch_execute("SELECT 1").is_ok() {
                r2d2::PooledConnection::extensions_mut(&mut conn).insert(LastChecked(Instant::now()));
                return Ok(conn);
            }
            if let DbConnection::Postgres(pg) = &mut *conn {
                <AnsiTransactionManager as TransactionManager<PgConnection>>::transaction_manager_status_mut(pg)
                    .set_in_error();
            }
        }
        Err(DbError::Connect(
            "no pooled connection to PostgreSQL answers (is the server running?)".to_owned(),
        ))
    }

    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// A connection of its own, never returned to the pool, with the same settings: for work
    /// that changes a connection's state in ways pooled connections must not inherit (the bulk
    /// runs: audit retention, anonymisation, deletion). On SQLite its page cache is
    /// [`SQLITE_BULK_CACHE_KIB`] rather than SQLite's 2 MB.
    pub fn connect_unpooled(&self) -> Result<DbConnection, DbError> {
        let manager = ConnectionManager {
            url: self.url.clone(),
            options: self.options.clone(),
        };
        let mut conn = manager.connect().map_err(|e| DbError::Connect(e.0))?;
        if let DbConnection::Sqlite(sqlite) = &mut conn {
            sqlite
                .batch_execute(&format!("PRAGMA cache_size = -{SQLITE_BULK_CACHE_KIB}"))
                .map_err(|e| DbError::Connect(e.to_string()))?;
        }
        Ok(conn)
    }

    /// A pool of its own with one connection and the same settings, waiting at most
    /// `connection_timeout` for it: for a thread that must not wait behind the requests
    /// holding this pool's connections (the audit writer), yet whose connection is checked
    /// and replaced as pooled ones are.
    ///
    /// Its SQLite connection does not map the file (PL-16, issue 22 point 6). A connection is
    /// made to unmap only by another connection's commit; the audit writer is the only writer
    /// while the server serves reads, so its mapping kept every page it had touched (the
    /// usage log's indexes, where each entry lands on a leaf of its own, and what its
    /// checkpoints read), and the process's peak RSS grew with the log: 500 MB at full scale,
    /// one mapping of over 200 MB. Without the mapping it reads those pages with `pread` into
    /// its page cache, which its own commits do not reset.
    pub fn single(&self, connection_timeout: Duration) -> Result<Pool, DbError> {
        Pool::open(
            &self.url,
            &PoolOptions {
                max_size: 1,
                connection_timeout,
                sqlite_mmap_bytes: 0,
                ..self.options.clone()
            },
        )
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }
}
