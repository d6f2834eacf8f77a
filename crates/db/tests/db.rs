//! The storage layer on both backends: migrations, connection settings, transactions, key checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use rekisteri_crypto::Keyring;
use rekisteri_db::keycheck::{KeyCheckError, verify_keyring};
use rekisteri_db::schema::key_checks;
use rekisteri_db::testing::insert_organisation;
use rekisteri_db::{
    Backend, DatabaseUrl, DbConnection, DbError, Pool, PoolOptions, db_test, migrations, write_transaction,
};
use time::PrimitiveDateTime;
use time::macros::datetime;

#[derive(QueryableByName)]
struct Value {
    #[diesel(sql_type = Text)]
    value: String,
}

#[derive(Debug, QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count_key_checks(conn: &mut DbConnection) -> i64 {
    key_checks::table.count().get_result(conn).unwrap()
}

fn keyring() -> Keyring {
    Keyring::from_toml(&Keyring::generate_toml().unwrap()).unwrap()
}

db_test!(fn pl_5_embedded_migrations_leave_the_schema_current(db) {
    let mut conn = db.conn();
    assert_eq!(migrations::pending(&mut conn).unwrap(), Vec::<String>::new());
    assert_eq!(migrations::run_pending(&mut conn).unwrap(), Vec::<String>::new());
    assert_eq!(count_key_checks(&mut conn), 0);
    println!("{}: migrated and current", db.backend());
});

db_test!(fn pl_5_write_transaction_commits_whole_or_not_at_all(db) {
    let mut conn = db.conn();
    let now = PrimitiveDateTime::new(datetime!(2026-11-25 10:00 UTC).date(), datetime!(2026-11-25 10:00 UTC).time());
    let insert = |conn: &mut DbConnection, id: &str| {
        diesel::insert_into(key_checks::table)
            .values((key_checks::purpose.eq("data"), key_checks::key_id.eq(id), key_checks::check_value.eq(vec![1u8]), key_checks::created_at.eq(now)))
            .execute(conn)
    };
    let failed: Result<(), DbError> = write_transaction(&mut conn, |conn| {
        insert(conn, "a")?;
        insert(conn, "a")?; // primary key violation: the whole transaction goes
        Ok(())
    });
    assert!(matches!(failed, Err(DbError::Query(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)))));
    assert_eq!(count_key_checks(&mut conn), 0);
    write_transaction(&mut conn, |conn| -> Result<(), DbError> {
        insert(conn, "a")?;
        insert(conn, "b")?;
        Ok(())
    })
    .unwrap();
    assert_eq!(count_key_checks(&mut conn), 2);
});

db_test!(fn pl_5_timestamps_round_trip_in_utc_microseconds(db) {
    let mut conn = db.conn();
    let at = datetime!(2026-06-19 23:59:59.123456 UTC);
    let at = PrimitiveDateTime::new(at.date(), at.time());
    diesel::insert_into(key_checks::table)
        .values((key_checks::purpose.eq("data"), key_checks::key_id.eq("t"), key_checks::check_value.eq(vec![0u8]), key_checks::created_at.eq(at)))
        .execute(&mut conn)
        .unwrap();
    let read: PrimitiveDateTime = key_checks::table.select(key_checks::created_at).first(&mut conn).unwrap();
    assert_eq!(read, at);
});

db_test!(fn pl_6_a_key_file_that_does_not_match_the_database_is_refused(db) {
    let mut conn = db.conn();
    let now = datetime!(2026-11-25 10:00 UTC);
    let first = keyring();
    verify_keyring(&mut conn, &first, now).unwrap();
    verify_keyring(&mut conn, &first, now).unwrap();
    assert_eq!(count_key_checks(&mut conn), 2, "one data key and the blind-index key");
    // Another installation's keys: same key id 'k1', different key.
    match verify_keyring(&mut conn, &keyring(), now) {
        Err(KeyCheckError::WrongKey(id)) => assert_eq!(id, "k1"),
        Err(KeyCheckError::WrongBlindIndexKey(_)) => {}
        other => panic!("expected a key mismatch, got {other:?}"),
    }
    assert_eq!(count_key_checks(&mut conn), 2, "nothing recorded for a refused key file");
});

#[test]
fn pl_5_sqlite_settings_are_applied_to_every_pooled_connection() {
    let db = rekisteri_db::testing::TestDatabase::sqlite();
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut conn = db.conn();
        let pragma = |conn: &mut DbConnection, name: &str| -> String {
            let column = if name == "busy_timeout" { "timeout" } else { name };
            diesel::sql_query(format!("SELECT CAST({column} AS TEXT) AS value FROM pragma_{name}"))
                .get_result::<Value>(conn)
                .unwrap()
                .value
        };
        assert_eq!(pragma(&mut conn, "journal_mode"), "wal");
        assert_eq!(pragma(&mut conn, "foreign_keys"), "1");
        assert_eq!(pragma(&mut conn, "synchronous"), "2", "FULL");
        assert_eq!(pragma(&mut conn, "busy_timeout"), "5000");
        held.push(conn);
    }
}

#[test]
fn pl_15_a_bulk_runs_own_connection_has_a_page_cache_for_its_batch_and_pooled_ones_keep_the_default() {
    let db = rekisteri_db::testing::TestDatabase::sqlite();
    let cache = |conn: &mut DbConnection| -> String {
        diesel::sql_query("SELECT CAST(cache_size AS TEXT) AS value FROM pragma_cache_size")
            .get_result::<Value>(conn)
            .unwrap()
            .value
    };
    let mut own = db.pool.connect_unpooled().unwrap();
    assert_eq!(cache(&mut own), format!("-{}", rekisteri_db::SQLITE_BULK_CACHE_KIB));
    assert_eq!(rekisteri_db::SQLITE_BULK_CACHE_KIB, 262_144, "256 MiB");
    assert_eq!(cache(&mut db.conn()), "-2000", "SQLite's default, 2 MB");
}

#[test]
fn pl_5_concurrent_sqlite_writers_that_read_first_do_not_fail() {
    // Deferred transactions that read and then write fail with SQLITE_BUSY under contention;
    // write_transaction begins IMMEDIATE, so every writer waits its turn instead.
    let db = rekisteri_db::testing::TestDatabase::sqlite();
    let now = PrimitiveDateTime::new(
        datetime!(2026-11-25 10:00 UTC).date(),
        datetime!(2026-11-25 10:00 UTC).time(),
    );
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let pool = db.pool.clone();
            scope.spawn(move || {
                let mut conn = pool.get().unwrap();
                for i in 0..50 {
                    write_transaction(&mut conn, |conn| -> Result<(), DbError> {
                        let n: i64 = key_checks::table.count().get_result(conn)?;
                        diesel::insert_into(key_checks::table)
                            .values((
                                key_checks::purpose.eq("data"),
                                key_checks::key_id.eq(format!("{thread}-{i}-{n}")),
                                key_checks::check_value.eq(vec![0u8]),
                                key_checks::created_at.eq(now),
                            ))
                            .execute(conn)?;
                        Ok(())
                    })
                    .unwrap();
                }
            });
        }
    });
    let n: Number = diesel::sql_query("SELECT COUNT(*) AS n FROM key_checks")
        .get_result(&mut db.conn())
        .unwrap();
    assert_eq!(n.n, 200);
}

#[test]
fn pl_5_an_unsupported_url_is_refused_before_any_file_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let before = std::fs::read_dir(dir.path()).unwrap().count();
    let cwd_listing = std::fs::read_dir(".").unwrap().count();
    assert!(DatabaseUrl::parse("mysql://x").is_err());
    assert!(DatabaseUrl::parse(&dir.path().join("plain.db").display().to_string()).is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before);
    assert_eq!(std::fs::read_dir(".").unwrap().count(), cwd_listing);
}

#[test]
fn pl_5_unreachable_postgres_is_a_clear_error() {
    let url = DatabaseUrl::parse("postgres://nobody@127.0.0.1:1/none").unwrap();
    assert_eq!(url.backend(), Backend::Postgres);
    let err = Pool::open(&url, &PoolOptions::default()).unwrap_err();
    assert!(matches!(err, DbError::Connect(_)), "{err}");
    assert!(err.to_string().starts_with("cannot connect to the database"), "{err}");
}

fn backend_pid(conn: &mut DbConnection) -> i64 {
    diesel::sql_query("SELECT pg_backend_pid()::bigint AS n")
        .get_result::<Number>(conn)
        .unwrap()
        .n
}

/// Ends a PostgreSQL backend as a server restart would, and waits until it has gone.
fn terminate(db: &rekisteri_db::testing::TestDatabase, pid: i64) {
    let ended = diesel::sql_query(format!("SELECT pg_terminate_backend({pid}, 10000)::int::bigint AS n"))
        .get_result::<Number>(&mut db.conn())
        .unwrap();
    assert_eq!(ended.n, 1, "backend {pid} did not end");
}

// A pooled PostgreSQL connection is checked (`SELECT 1`) at most once per liveness interval, not
// at every checkout (PL-12); one the server has dropped is then replaced, not handed out.
#[test]
fn pl_5_a_postgres_connection_the_server_dropped_is_replaced_at_checkout() {
    let Some(db) = rekisteri_db::testing::TestDatabase::postgres() else {
        return;
    };
    let url = DatabaseUrl::parse(&db.url).unwrap();
    let pool_with = |interval: std::time::Duration| {
        Pool::open(
            &url,
            &PoolOptions {
                max_size: 1,
                postgres_liveness_interval: interval,
                ..PoolOptions::default()
            },
        )
        .unwrap()
    };

    let checked = pool_with(std::time::Duration::ZERO);
    let first = backend_pid(&mut checked.get().unwrap());
    terminate(&db, first);
    let mut conn = checked.get().unwrap();
    let second = backend_pid(&mut conn);
    assert_ne!(second, first, "a new connection replaces the dropped one");

    // Within the interval the connection is handed out unchecked: the dropped one fails once.
    let trusting = pool_with(std::time::Duration::from_secs(3600));
    let pid = backend_pid(&mut trusting.get().unwrap());
    terminate(&db, pid);
    let failed = diesel::sql_query("SELECT 1::bigint AS n").get_result::<Number>(&mut *trusting.get().unwrap());
    assert!(failed.is_err(), "the unchecked connection was the dropped one");
}

#[derive(QueryableByName)]
struct KeyStart {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    key_name: String,
    #[diesel(sql_type = Text)]
    first_column: String,
}

/// Every primary and unique key of the tables that hold a client's data (the `clients` table
/// and every table with a `client_id` column), with its first column: a table added later is
/// checked without being named here.
fn client_data_keys(conn: &mut DbConnection) -> Vec<KeyStart> {
    match conn {
        DbConnection::Sqlite(inner) => diesel::sql_query(
            "SELECT m.name AS table_name, il.name AS key_name, ii.name AS first_column \
             FROM sqlite_master m \
             JOIN pragma_index_list(m.name) il ON il.\"unique\" = 1 \
             JOIN pragma_index_info(il.name) ii ON ii.seqno = 0 \
             WHERE m.type = 'table' AND (m.name = 'clients' OR EXISTS \
               (SELECT 1 FROM pragma_table_info(m.name) c WHERE c.name = 'client_id')) \
             ORDER BY 1, 2",
        )
        .load(inner)
        .unwrap(),
        DbConnection::Postgres(inner) => diesel::sql_query(
            "SELECT t.relname::text AS table_name, i.relname::text AS key_name, a.attname::text AS first_column \
             FROM pg_index x \
             JOIN pg_class t ON t.oid = x.indrelid \
             JOIN pg_class i ON i.oid = x.indexrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema() \
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0] \
             WHERE x.indisunique AND (t.relname = 'clients' OR EXISTS \
               (SELECT 1 FROM information_schema.columns c WHERE c.table_schema = current_schema() \
                AND c.table_name = t.relname AND c.column_name = 'client_id')) \
             ORDER BY 1, 2",
        )
        .load(inner)
        .unwrap(),
    }
}

db_test!(fn pl_7_every_key_of_client_data_starts_with_the_registrar(db) {
    let mut conn = db.conn();
    let keys = client_data_keys(&mut conn);
    let tables: std::collections::BTreeSet<&str> = keys.iter().map(|k| k.table_name.as_str()).collect();
    for expected in ["clients", "services", "service_events", "proxies", "care_team_members"] {
        assert!(tables.contains(expected), "{expected} is missing from {tables:?}");
    }
    // api_tokens.client_id names an API client (a system), not a client of a register.
    let strays: Vec<String> = keys
        .iter()
        .filter(|k| k.table_name != "api_tokens" && k.first_column != "registrar_id")
        .map(|k| format!("{} {} starts with {}", k.table_name, k.key_name, k.first_column))
        .collect();
    assert!(strays.is_empty(), "keys that do not start with registrar_id (PL-7): {strays:?}");
});

// What the API answers with 503 rather than 500 (PL-10): the database's unavailability, told
// apart from faults of the request or of ours, on real failures of each backend.
#[test]
fn pl_10_a_full_sqlite_database_and_a_lost_postgres_connection_are_unavailable() {
    let db = rekisteri_db::testing::TestDatabase::sqlite();
    diesel::sql_query("CREATE TABLE filler (b BLOB)")
        .execute(&mut db.conn())
        .unwrap();
    let pages = diesel::sql_query("SELECT page_count AS n FROM pragma_page_count()")
        .get_result::<Number>(&mut db.conn())
        .unwrap()
        .n;
    let full = Pool::open(
        db.pool.url(),
        &PoolOptions {
            max_size: 1,
            sqlite_max_pages: Some(u64::try_from(pages).unwrap() + 1),
            ..PoolOptions::default()
        },
    )
    .unwrap();
    let mut conn = full.get().unwrap();
    let mut failure = None;
    for _ in 0..100 {
        if let Err(e) = diesel::sql_query("INSERT INTO filler VALUES (zeroblob(4096))").execute(&mut *conn) {
            failure = Some(e);
            break;
        }
    }
    let failure = failure.expect("the database filled up");
    assert_eq!(failure.to_string(), "database or disk is full");
    assert!(rekisteri_db::is_unavailable(&failure));
    assert!(DbError::Query(failure).is_unavailable());
    // A fault of the request or of ours is not an outage.
    let invalid = diesel::sql_query("SELECT * FROM no_such_table")
        .execute(&mut *conn)
        .unwrap_err();
    assert!(!rekisteri_db::is_unavailable(&invalid));
    assert!(!DbError::Migration("x".into()).is_unavailable());
    drop(conn);

    let Some(db) = rekisteri_db::testing::TestDatabase::postgres() else {
        return;
    };
    let trusting = Pool::open(
        &DatabaseUrl::parse(&db.url).unwrap(),
        &PoolOptions {
            max_size: 1,
            postgres_liveness_interval: std::time::Duration::from_secs(3600),
            ..PoolOptions::default()
        },
    )
    .unwrap();
    let pid = backend_pid(&mut trusting.get().unwrap());
    terminate(&db, pid);
    let lost = diesel::sql_query("SELECT 1::bigint AS n")
        .get_result::<Number>(&mut *trusting.get().unwrap())
        .unwrap_err();
    assert!(rekisteri_db::is_unavailable(&lost), "{lost:?}");
    let unreachable = Pool::open(
        &DatabaseUrl::parse("postgres://nobody@127.0.0.1:1/none").unwrap(),
        &PoolOptions::default(),
    )
    .unwrap_err();
    assert!(unreachable.is_unavailable());
}

/// Binary columns that hold no sealed value, each with why a key rotation leaves it alone.
const NOT_SEALED: &[(&str, &str)] = &[
    (
        "key_checks.check_value",
        "one value per key, removed when the key is retired",
    ),
    ("audit_chains.last_hash", "a hash"),
    (
        "usage_log.subject_index",
        "part of the audit hash chain; lookups match every blind key held",
    ),
    ("usage_log.prev_hash", "a hash"),
    ("usage_log.hash", "a hash"),
    (
        "disclosure_log.subject_index",
        "part of the audit hash chain; lookups match every blind key held",
    ),
    ("disclosure_log.prev_hash", "a hash"),
    ("disclosure_log.hash", "a hash"),
    ("security_events.prev_hash", "a hash"),
    ("security_events.hash", "a hash"),
    ("audit_checkpoints.hash", "a hash"),
    ("audit_checkpoints.signature", "an Ed25519 signature"),
    ("invitations.token_hash", "a hash"),
    ("sessions.token_hash", "a hash"),
    (
        "login_throttle.throttle_key",
        "a short-lived counter's key; counting restarts under the new key",
    ),
    ("api_clients.secret_hash", "a hash"),
    ("api_tokens.token_hash", "a hash"),
    ("idempotency_keys.request_hash", "a hash"),
    (
        "idempotency_keys.disclosure",
        "JSON naming what a stored answer discloses, no personal data",
    ),
    ("recordings.sha256", "a hash of the audio"),
];

db_test!(fn pl_6_every_sealed_column_is_rotated(db) {
    #[derive(QueryableByName)]
    struct Column {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let mut conn = db.conn();
    let columns: Vec<Column> = match &mut *conn {
        DbConnection::Sqlite(c) => diesel::sql_query(
            "SELECT m.name || '.' || p.name AS name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND upper(p.type) = 'BLOB'",
        )
        .load(c)
        .unwrap(),
        DbConnection::Postgres(c) => diesel::sql_query(
            "SELECT table_name || '.' || column_name AS name FROM information_schema.columns \
             WHERE table_schema = current_schema() AND data_type = 'bytea'",
        )
        .load(c)
        .unwrap(),
    };
    // On SQLite a log's rows from before its monthly tables (migration 000030) are in
    // `<log>_legacy`, which stands for the log as PostgreSQL's partitioned table does.
    let mut binary: Vec<String> = columns.into_iter().map(|c| c.name.replacen("_legacy.", ".", 1)).collect();
    // PostgreSQL lists the audit log's partitions as tables of their own.
    let partition = |name: &str| {
        let table = name.split('.').next().unwrap_or_default().as_bytes();
        table.len() > 8
            && table[table.len() - 7..]
                .iter()
                .enumerate()
                .all(|(i, b)| if i == 4 { *b == b'_' } else { b.is_ascii_digit() })
    };
    binary.retain(|name| !partition(name) && !name.contains("_default."));
    binary.sort();
    binary.dedup();
    let mut expected: Vec<String> = rekisteri_db::key_rotation::sealed_columns()
        .into_iter()
        .map(|(table, column)| format!("{table}.{column}"))
        .chain(NOT_SEALED.iter().map(|(name, _)| (*name).to_owned()))
        .collect();
    expected.sort();
    expected.dedup();
    assert_eq!(binary, expected, "a binary column is neither rotated nor listed as not sealed");
});

#[derive(diesel::QueryableByName)]
struct OrganisationNow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    contact_person: Option<String>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    version: i64,
}

fn history_of_organisation(conn: &mut DbConnection, id: &str) -> usize {
    rekisteri_db::history::change_history_of(conn, "organisations", id)
        .unwrap()
        .len()
}

db_test!(fn cl_17_an_update_keeps_only_the_changed_columns_in_history(db) {
    use rekisteri_db::schema::organisations;
    use rekisteri_db::write_transaction_as;
    let mut conn = db.conn();
    write_transaction_as(&mut conn, "job:test", |conn| insert_organisation(conn, "o-diff")).unwrap();
    let rename = |conn: &mut DbConnection, name: &str| {
        write_transaction_as(conn, "job:test", |conn| {
            diesel::update(organisations::table.find("o-diff"))
                .set(organisations::name.eq(name))
                .execute(conn)
        })
        .unwrap()
    };
    rename(&mut conn, "Kotikunta");
    rename(&mut conn, "Kotikunta");
    write_transaction_as(&mut conn, "job:test", |conn| {
        diesel::update(organisations::table.find("o-diff"))
            .set((organisations::contact_person.eq(Some("Kirjaamo")), organisations::version.eq(2i64)))
            .execute(conn)
    })
    .unwrap();
    let history = rekisteri_db::history::change_history_of(&mut conn, "organisations", "o-diff").unwrap();
    let doc = |text: &Option<String>| -> serde_json::Value { serde_json::from_str(text.as_deref().unwrap()).unwrap() };
    let operations: Vec<&str> = history.iter().map(|h| h.operation.as_str()).collect();
    assert_eq!(operations, ["INSERT", "UPDATE", "UPDATE"], "an update that changes nothing leaves no row");
    assert_eq!(doc(&history[1].old_row), serde_json::json!({"name": "Testikunta"}));
    assert_eq!(doc(&history[1].new_row), serde_json::json!({"name": "Kotikunta"}));
    assert_eq!(doc(&history[2].old_row), serde_json::json!({"contact_person": null, "version": 1}));
    assert_eq!(doc(&history[2].new_row), serde_json::json!({"contact_person": "Kirjaamo", "version": 2}));
    // The insert names who and when, without a copy of the row (000032): the row as inserted is
    // the row now with the changes undone, newest first.
    assert_eq!((history[0].actor.as_str(), &history[0].old_row, &history[0].new_row), ("job:test", &None, &None));
    let mut inserted: serde_json::Value = diesel::sql_query(
        "SELECT name, contact_person, version FROM organisations WHERE id = 'o-diff'",
    )
    .get_result::<OrganisationNow>(&mut conn)
    .map(|o| serde_json::json!({"name": o.name, "contact_person": o.contact_person, "version": o.version}))
    .unwrap();
    for change in history[1..].iter().rev() {
        for (column, value) in doc(&change.old_row).as_object().unwrap() {
            inserted[column] = value.clone();
        }
    }
    assert_eq!(inserted, serde_json::json!({"name": "Testikunta", "contact_person": null, "version": 1}));
});

db_test!(fn pl_14_a_kept_update_is_prepared_once_and_changes_what_diesels_update_would(db) {
    use diesel::connection::{Connection, InstrumentationEvent};
    use rekisteri_db::schema::organisations;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut conn = db.conn();
    insert_organisation(&mut conn, "o-kept").unwrap();
    let cached = Arc::new(AtomicUsize::new(0));
    let counter = cached.clone();
    (*conn).set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::CacheQuery { sql, .. } = event
            && sql.starts_with("UPDATE")
        {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    for name in ["Ykskunta", "Kakskunta", "Kolmekunta"] {
        let updated = rekisteri_db::kept_update(
            organisations::table,
            (organisations::name.eq(name), organisations::version.eq(organisations::version + 1)),
            organisations::id.eq("o-kept"),
        )
        .execute(&mut *conn)
        .unwrap();
        assert_eq!(updated, 1);
    }
    assert_eq!(cached.load(Ordering::SeqCst), 1, "prepared once, then kept");
    // diesel's own update of the same shape is prepared anew every time: that is why kept_update exists.
    for name in ["Neljäkunta", "Viisikunta"] {
        diesel::update(organisations::table.find("o-kept"))
            .set((organisations::name.eq(name), organisations::version.eq(organisations::version + 1)))
            .execute(&mut *conn)
            .unwrap();
    }
    assert_eq!(cached.load(Ordering::SeqCst), 1);
    (*conn).set_instrumentation(|_: InstrumentationEvent<'_>| {});
    let (name, version): (String, i64) = organisations::table
        .find("o-kept")
        .select((organisations::name, organisations::version))
        .first(&mut *conn)
        .unwrap();
    assert_eq!((name.as_str(), version), ("Viisikunta", 6));
    // A predicate that matches nothing changes nothing.
    let none = rekisteri_db::kept_update(organisations::table, organisations::name.eq("x"), organisations::id.eq("no-such"))
        .execute(&mut *conn)
        .unwrap();
    assert_eq!(none, 0);
});

db_test!(fn pl_15_changes_made_in_a_lifecycle_purge_leave_no_history_and_others_do(db) {
    use rekisteri_db::history::{PURGE_ACTOR, purging};
    use rekisteri_db::write_transaction_as;
    let mut conn = db.conn();
    write_transaction_as(&mut conn, "job:test", |conn| insert_organisation(conn, "o-kept")).unwrap();
    assert_eq!(history_of_organisation(&mut conn, "o-kept"), 1);
    purging(&mut conn, |conn| insert_organisation(conn, "o-purge")).unwrap();
    assert_eq!(history_of_organisation(&mut conn, "o-purge"), 0);
    // After the purge the same connection's changes are recorded again.
    write_transaction_as(&mut conn, "job:test", |conn| insert_organisation(conn, "o-after")).unwrap();
    assert_eq!(history_of_organisation(&mut conn, "o-after"), 1);
    // On PostgreSQL the actor alone is not enough: the purge's transaction setting is needed too.
    write_transaction_as(&mut conn, PURGE_ACTOR, |conn| insert_organisation(conn, "o-actor-only")).unwrap();
    let expected = match db.backend() {
        rekisteri_db::Backend::Postgres => 1,
        rekisteri_db::Backend::Sqlite => 0,
    };
    assert_eq!(history_of_organisation(&mut conn, "o-actor-only"), expected);
});

db_test!(fn pl_15_a_clients_events_and_the_anonymisation_walk_have_their_indexes(db) {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let mut conn = db.conn();
    let sql = match db.backend() {
        rekisteri_db::Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('clients', 'service_events', 'client_previous_codes') ORDER BY name",
        rekisteri_db::Backend::Postgres => "SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema() AND tablename IN ('clients', 'service_events', 'client_previous_codes') ORDER BY indexname",
    };
    let names: Vec<String> = diesel::sql_query(sql)
        .load::<Name>(&mut *conn)
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert!(names.contains(&"service_events_client".to_owned()), "{names:?}");
    assert!(names.contains(&"clients_not_anonymised_by_age".to_owned()), "{names:?}");
    assert!(names.contains(&"client_previous_codes_client".to_owned()), "{names:?}");
    assert!(!names.contains(&"clients_not_anonymised".to_owned()), "replaced: {names:?}");
});

db_test!(fn pl_15_the_history_triggers_do_not_fire_for_the_bulk_runs_actors(db) {
    use diesel::connection::SimpleConnection;
    use rekisteri_db::history::PURGE_ACTOR;
    use rekisteri_db::schema::organisations;
    use rekisteri_db::write_transaction_as;
    if db.backend() != rekisteri_db::Backend::Sqlite {
        // record_change() returns first thing for them (pl_15_changes_made_in_a_lifecycle_purge…).
        return;
    }
    let mut conn = db.conn();
    // Without the BEFORE INSERT triggers that drop such rows, only the history triggers' own
    // guard keeps them out (migration 000031): SQLite builds an INSERT's values before its
    // BEFORE triggers run, so without the guard each row's document was built to be dropped.
    conn.batch_execute("DROP TRIGGER change_history_skip_lifecycle_purge; DROP TRIGGER change_history_skip_key_rotation")
        .unwrap();
    for (actor, id) in [(PURGE_ACTOR, "o-purge"), (rekisteri_db::key_rotation::ACTOR, "o-rotation"), ("job:test", "o-tracked")] {
        write_transaction_as(&mut conn, actor, |conn| {
            insert_organisation(conn, id)?;
            diesel::update(organisations::table.find(id))
                .set(organisations::name.eq("Muutettu"))
                .execute(conn)?;
            diesel::delete(organisations::table.find(id)).execute(conn)
        })
        .unwrap();
        let expected = if actor == "job:test" { 3 } else { 0 };
        assert_eq!(history_of_organisation(&mut conn, id), expected, "{actor}");
    }
});

db_test!(fn pl_13_without_autovacuum_the_server_analyses_what_autovacuum_would(db) {
    #[derive(diesel::QueryableByName)]
    struct Autovacuum {
        #[diesel(sql_type = Text)]
        autovacuum: String,
    }
    let mut conn = db.conn();
    if !matches!(&*conn, DbConnection::Postgres(_)) {
        // SQLite keeps no statistics that its plans depend on: nothing to keep.
        assert!(!rekisteri_db::statistics::kept_by_server(&mut conn).unwrap());
        assert_eq!(rekisteri_db::statistics::analyze_stale(&mut conn).unwrap(), Vec::<String>::new());
        return;
    }
    // A backend reports its counts when it goes idle, at most once a second unless asked.
    let report_counts = |conn: &mut DbConnection| {
        diesel::sql_query("SELECT pg_stat_force_next_flush()").execute(conn).unwrap();
    };
    let setting: Autovacuum = diesel::sql_query("SHOW autovacuum").get_result(&mut *conn).unwrap();
    assert_eq!(rekisteri_db::statistics::kept_by_server(&mut conn).unwrap(), setting.autovacuum == "off");
    // Past autovacuum's analyze threshold (50 rows plus a tenth of the table).
    for n in 0..60 {
        insert_organisation(&mut conn, &format!("o-stats-{n}")).unwrap();
    }
    report_counts(&mut conn);
    let analysed = rekisteri_db::statistics::analyze_stale(&mut conn).unwrap();
    assert!(analysed.iter().any(|t| t.ends_with(".organisations")), "{analysed:?}");
    report_counts(&mut conn);
    // Analysed, the table is not stale again until it changes again.
    let again = rekisteri_db::statistics::analyze_stale(&mut conn).unwrap();
    assert!(!again.iter().any(|t| t.ends_with(".organisations")), "{again:?}");
});

// SQLite 3.53 compiles `LIMIT ?` with the bound value and marks the statement to be compiled
// again whenever that parameter is bound: every kept statement with a LIMIT (diesel's `first()`)
// was recompiled at every execution. The query planner stability guarantee turns that off
// (`.cargo/config.toml`); its statistics of memory use stay off too (a mutex per allocation).
db_test!(fn pl_12_sqlite_keeps_statements_compiled_whatever_their_limit_binds(db) {
    #[derive(diesel::QueryableByName)]
    struct CompileOption {
        #[diesel(sql_type = Text)]
        compile_options: String,
    }
    let mut conn = db.conn();
    let DbConnection::Sqlite(sqlite) = &mut *conn else {
        // PostgreSQL plans a prepared statement once per connection (its generic plan after five
        // custom ones) and never recompiles it for a bound value.
        return;
    };
    let options: Vec<String> = diesel::sql_query("SELECT compile_options FROM pragma_compile_options")
        .load::<CompileOption>(sqlite)
        .unwrap()
        .into_iter()
        .map(|o| o.compile_options)
        .collect();
    assert!(options.iter().any(|o| o == "ENABLE_QPSG"), "{options:?}");
    assert!(options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"), "{options:?}");
});
