//! The test harness every crate's database tests use: each test gets a fresh SQLite file and,
//! when `TEST_DATABASE_URL` names a PostgreSQL server, a fresh PostgreSQL schema, both migrated
//! with the real migrations. Write a test once with [`db_test!`](crate::db_test) and it runs on
//! both.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;

use crate::{Backend, DatabaseUrl, Pool, PoolOptions, PooledConnection, migrations};

/// A migrated database that disappears when dropped.
pub struct TestDatabase {
    pub pool: Pool,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, schema: String },
}

fn options() -> PoolOptions {
    PoolOptions {
        max_size: 8,
        connection_timeout: Duration::from_secs(30),
        ..PoolOptions::default()
    }
}

impl TestDatabase {
    /// A fresh SQLite database file in its own temporary directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let pool = Pool::open(&DatabaseUrl::parse(&url).expect("url"), &options()).expect("open SQLite");
        migrations::run_pending(&mut pool.get().expect("connection")).expect("migrate SQLite");
        Self {
            pool,
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A fresh schema in the PostgreSQL database `TEST_DATABASE_URL` names (created if missing).
    /// `None` when the variable is unset, except under `CI=true`, where a missing PostgreSQL is
    /// a failure: coverage of PostgreSQL must not vanish silently.
    pub fn postgres() -> Option<Self> {
        let Some(admin_url) = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but TEST_DATABASE_URL is not set: PostgreSQL tests cannot be skipped in CI");
            }
            eprintln!("postgres: skipped, TEST_DATABASE_URL is not set");
            return None;
        };
        let mut admin = connect_creating_database(&admin_url);
        let schema = format!("test_{}", uuid::Uuid::new_v4().simple());
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("create test schema");
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-c%20search_path%3D{schema}");
        let pool = Pool::open(&DatabaseUrl::parse(&url).expect("url"), &options()).expect("open PostgreSQL");
        migrations::run_pending(&mut pool.get().expect("connection")).expect("migrate PostgreSQL");
        Some(Self {
            pool,
            url,
            cleanup: Cleanup::Postgres { admin_url, schema },
        })
    }

    pub fn backend(&self) -> Backend {
        self.pool.backend()
    }

    pub fn conn(&self) -> PooledConnection {
        self.pool.get().expect("test connection")
    }
}

impl TestDatabase {
    /// The leak sweep's look at everything the test left in the database.
    fn sweep(&self) {
        if crate::leak_sweep::dir().is_none() {
            return;
        }
        match &self.cleanup {
            Cleanup::Sqlite(dir) => {
                if let Ok(mut conn) = self.pool.get() {
                    let _ = conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)");
                }
                for name in ["test.db", "test.db-wal"] {
                    if let Ok(bytes) = std::fs::read(dir.path().join(name)) {
                        crate::leak_sweep::scan(&format!("SQLite file {name}"), &bytes);
                    }
                }
            }
            Cleanup::Postgres { schema, .. } => {
                #[derive(diesel::QueryableByName)]
                struct Line {
                    #[diesel(sql_type = diesel::sql_types::Text)]
                    line: String,
                }
                let Ok(mut conn) = self.pool.get() else { return };
                let crate::DbConnection::Postgres(pg) = &mut *conn else {
                    return;
                };
                let tables: Vec<Line> = diesel::RunQueryDsl::load(
                    diesel::sql_query(format!(
                        "SELECT c.relname::text AS line FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                         WHERE n.nspname = '{schema}' AND c.relkind = 'r'"
                    )),
                    pg,
                )
                .unwrap_or_default();
                for table in tables {
                    let rows: Vec<Line> = diesel::RunQueryDsl::load(
                        diesel::sql_query(format!(
                            "SELECT CAST(row_to_json(t) AS TEXT) AS line FROM \"{schema}\".\"{}\" t",
                            table.line
                        )),
                        pg,
                    )
                    .unwrap_or_default();
                    let text: Vec<u8> = rows.into_iter().flat_map(|r| (r.line + "\n").into_bytes()).collect();
                    crate::leak_sweep::scan(&format!("PostgreSQL table {}", table.line), &text);
                }
            }
        }
        crate::leak_sweep::flush();
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        self.sweep();
        if let Cleanup::Postgres { admin_url, schema } = &self.cleanup
            && let Ok(mut admin) = PgConnection::establish(admin_url)
        {
            let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

/// Connects to the test server; creates the named database first if it does not exist, so
/// `TEST_DATABASE_URL=postgres://postgres@127.0.0.1/rekisteri_test` works on a fresh server.
fn connect_creating_database(url: &str) -> PgConnection {
    match PgConnection::establish(url) {
        Ok(conn) => conn,
        Err(e) if e.to_string().contains("does not exist") => {
            let (server, database) = split_database(url);
            let mut maintenance = PgConnection::establish(&format!("{server}/postgres{}", query_of(url)))
                .unwrap_or_else(|e| panic!("TEST_DATABASE_URL: cannot reach the server: {e}"));
            // Two test threads may race to create it; either way it exists afterwards.
            let _ = maintenance.batch_execute(&format!("CREATE DATABASE \"{database}\""));
            PgConnection::establish(url).unwrap_or_else(|e| panic!("TEST_DATABASE_URL: {e}"))
        }
        Err(e) => panic!("TEST_DATABASE_URL: cannot connect: {e}"),
    }
}

fn query_of(url: &str) -> &str {
    url.find('?').map_or("", |i| &url[i..])
}

fn split_database(url: &str) -> (&str, &str) {
    let without_query = &url[..url.find('?').unwrap_or(url.len())];
    let scheme_end = without_query.find("://").map_or(0, |i| i + 3);
    match without_query[scheme_end..].find('/') {
        Some(slash) => {
            let slash = scheme_end + slash;
            (&without_query[..slash], &without_query[slash + 1..])
        }
        None => (without_query, "postgres"),
    }
}

/// Defines a test that runs once on SQLite and once on PostgreSQL, as `name::sqlite` and
/// `name::postgres`:
///
/// ```ignore
/// db_test!(fn pl_5_something(db) {
///     let mut conn = db.conn();
///     // ...
/// });
/// ```
#[macro_export]
macro_rules! db_test {
    ($(#[$meta:meta])* fn $name:ident($db:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($db: &$crate::testing::TestDatabase) $body

            #[test]
            fn sqlite() {
                body(&$crate::testing::TestDatabase::sqlite());
            }

            #[test]
            fn postgres() {
                if let Some(db) = $crate::testing::TestDatabase::postgres() {
                    body(&db);
                }
            }
        }
    };
}

/// Inserts the organisation `id` ("Testikunta", a municipality) by plain SQL: a tracked row for
/// the tests of the change history and of the write paths.
pub fn insert_organisation(conn: &mut crate::DbConnection, id: &str) -> diesel::QueryResult<usize> {
    use crate::schema::organisations;
    use diesel::prelude::*;
    let at = crate::to_primitive(time::OffsetDateTime::now_utc());
    diesel::insert_into(organisations::table)
        .values((
            organisations::id.eq(id),
            organisations::name.eq("Testikunta"),
            organisations::kind.eq("municipality"),
            organisations::strong_authentication_required.eq(false),
            organisations::version.eq(1i64),
            organisations::created_at.eq(at),
            organisations::updated_at.eq(at),
        ))
        .execute(conn)
}
