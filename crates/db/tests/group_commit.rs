//! PL-13: the requests' write transactions group-committed on SQLite, each in a savepoint of
//! one shared transaction. Groups are built without timing: the first job of a group holds the
//! writer until the others are queued behind it ([`GroupCommit::queued`]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::mpsc;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use rekisteri_db::testing::{TestDatabase, insert_organisation};
use rekisteri_db::{DbConnection, DbError, GroupCommit, db_test};

fn organisation_exists(conn: &mut DbConnection, id: &str) -> bool {
    use rekisteri_db::schema::organisations;
    organisations::table
        .filter(organisations::id.eq(id))
        .count()
        .get_result::<i64>(conn)
        .unwrap()
        == 1
}

fn history_actors(conn: &mut DbConnection, id: &str) -> Vec<String> {
    rekisteri_db::history::change_history_of(conn, "organisations", id)
        .unwrap()
        .into_iter()
        .map(|change| change.actor)
        .collect()
}

/// Spins (no sleeping) until `n` jobs wait behind the running one.
fn wait_until_queued(writer: &GroupCommit, n: usize) {
    while writer.queued() < n {
        std::thread::yield_now();
    }
}

/// Starts a job that holds the writer's transaction open until `behind` more jobs are queued;
/// `first` runs inside it before it waits. Returns once the job runs, with its answer's thread.
fn hold_writer(
    db: &TestDatabase,
    writer: &GroupCommit,
    behind: usize,
    first: impl FnOnce(&mut DbConnection) -> QueryResult<()> + Send + 'static,
) -> std::thread::JoinHandle<Result<(), DbError>> {
    let (running, started) = mpsc::channel();
    let pool = db.pool.clone();
    let inner = writer.clone();
    let holder = std::thread::spawn(move || {
        let mut conn = pool.get().unwrap();
        let waiter = inner.clone();
        inner.write_as(&mut conn, "account:first", move |conn| -> Result<(), DbError> {
            first(conn)?;
            running.send(()).unwrap();
            wait_until_queued(&waiter, behind);
            Ok(())
        })
    });
    started.recv().unwrap();
    holder
}

fn submit<T: Send + 'static>(
    db: &TestDatabase,
    writer: &GroupCommit,
    actor: &'static str,
    f: impl FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
) -> std::thread::JoinHandle<Result<T, DbError>> {
    let pool = db.pool.clone();
    let writer = writer.clone();
    std::thread::spawn(move || {
        let mut conn = pool.get().unwrap();
        writer.write_as(&mut conn, actor, f)
    })
}

#[test]
fn pl_13_a_failing_request_in_a_group_rolls_back_only_its_own_changes() {
    let db = TestDatabase::sqlite();
    let writer = GroupCommit::start(&db.pool).unwrap();
    assert!(writer.is_grouping());
    let first = hold_writer(&db, &writer, 2, |conn| insert_organisation(conn, "o-first").map(drop));
    let kept = submit(&db, &writer, "account:kept", |conn| {
        insert_organisation(conn, "o-kept")?;
        Ok(())
    });
    let failed = submit(&db, &writer, "account:failed", |conn| -> Result<(), DbError> {
        insert_organisation(conn, "o-failed")?;
        insert_organisation(conn, "o-failed-too")?;
        // The request fails after writing (a refusal found late, say): all it wrote goes.
        insert_organisation(conn, "o-failed")?;
        Ok(())
    });
    first.join().unwrap().unwrap();
    kept.join().unwrap().unwrap();
    let refused = failed.join().unwrap();
    assert!(
        matches!(
            refused,
            Err(DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            )))
        ),
        "{refused:?}"
    );
    assert_eq!(writer.groups(), 1, "the three jobs were one group, one commit");
    let mut conn = db.conn();
    assert!(organisation_exists(&mut conn, "o-first"));
    assert!(organisation_exists(&mut conn, "o-kept"));
    assert!(!organisation_exists(&mut conn, "o-failed"));
    assert!(!organisation_exists(&mut conn, "o-failed-too"));
    // Each request's history names its own actor; the failed one left no history at all.
    assert_eq!(history_actors(&mut conn, "o-first"), vec!["account:first"]);
    assert_eq!(history_actors(&mut conn, "o-kept"), vec!["account:kept"]);
    assert!(history_actors(&mut conn, "o-failed").is_empty());
    assert!(history_actors(&mut conn, "o-failed-too").is_empty());
    // The actor does not outlive its savepoint.
    let left: i64 = diesel::sql_query("SELECT COUNT(*) AS n FROM change_actor")
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n;
    assert_eq!(left, 0);
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[test]
fn pl_13_no_job_of_a_group_is_acknowledged_when_its_commit_fails() {
    let db = TestDatabase::sqlite();
    db.conn()
        .batch_execute(
            "CREATE TABLE gc_parent (id TEXT PRIMARY KEY); \
             CREATE TABLE gc_child (id TEXT PRIMARY KEY, parent TEXT NOT NULL REFERENCES gc_parent (id));",
        )
        .unwrap();
    let writer = GroupCommit::start(&db.pool).unwrap();
    // The first job succeeds in its savepoint but leaves a deferred foreign-key violation,
    // which SQLite reports only at COMMIT: the whole group fails there.
    let first = hold_writer(&db, &writer, 1, |conn| {
        conn.batch_execute("PRAGMA defer_foreign_keys = ON; INSERT INTO gc_child VALUES ('c', 'missing');")
    });
    let lost = submit(&db, &writer, "account:lost", |conn| {
        insert_organisation(conn, "o-lost")?;
        Ok("written")
    });
    assert!(first.join().unwrap().is_err());
    // Its own work succeeded, yet it is not acknowledged: its answer waited for the commit.
    let answer = lost.join().unwrap();
    assert!(answer.is_err(), "{answer:?}");
    assert_eq!(writer.groups(), 1);
    let mut conn = db.conn();
    assert!(!organisation_exists(&mut conn, "o-lost"));
    assert!(history_actors(&mut conn, "o-lost").is_empty());
    // The writer goes on with the next group.
    let after = submit(&db, &writer, "account:after", |conn| {
        insert_organisation(conn, "o-after")?;
        Ok(())
    });
    after.join().unwrap().unwrap();
    assert!(organisation_exists(&mut conn, "o-after"));
    assert_eq!(writer.groups(), 2);
}

#[test]
fn pl_13_a_job_gets_the_commit_check_of_its_callers_thread() {
    let db = TestDatabase::sqlite();
    let writer = GroupCommit::start(&db.pool).unwrap();
    let mut conn = db.conn();
    // The check (an Idempotency-Key claim's mark) refuses: the job's writes go with it.
    let refuse: rekisteri_db::CommitCheck =
        std::sync::Arc::new(|_conn: &mut DbConnection| Err(diesel::result::Error::RollbackTransaction));
    let refused: Result<(), DbError> = rekisteri_db::checked(refuse, || {
        rekisteri_db::group_commit::grouped(&writer, || {
            rekisteri_db::group_commit::write_as(&mut conn, "account:checked", |conn| -> Result<(), DbError> {
                insert_organisation(conn, "o-checked")?;
                Ok(())
            })
        })
    });
    assert!(refused.is_err());
    assert_eq!(writer.groups(), 1, "the job ran on the writer");
    assert!(!organisation_exists(&mut conn, "o-checked"));
}

db_test!(fn pl_13_write_as_commits_whole_or_not_at_all_on_either_backend(db) {
    let writer = GroupCommit::start(&db.pool).unwrap();
    assert_eq!(writer.is_grouping(), db.backend() == rekisteri_db::Backend::Sqlite);
    let mut conn = db.conn();
    writer
        .write_as(&mut conn, "account:a", |conn| -> Result<(), DbError> {
            insert_organisation(conn, "o-a")?;
            Ok(())
        })
        .unwrap();
    let failed = writer.write_as(&mut conn, "account:b", |conn| -> Result<(), DbError> {
        insert_organisation(conn, "o-b")?;
        insert_organisation(conn, "o-a")?;
        Ok(())
    });
    assert!(failed.is_err());
    assert!(organisation_exists(&mut conn, "o-a"));
    assert!(!organisation_exists(&mut conn, "o-b"));
    assert_eq!(history_actors(&mut conn, "o-a"), vec!["account:a"]);
});

/// A job that meets a full database (SQLite's `max_page_count`, as on a full disk) fails, and so
/// does its group if SQLite rolled the shared transaction back: as unavailable (503), never as
/// our bug; the writer goes on once there is room.
#[test]
fn pl_13_a_full_database_fails_a_group_as_unavailable() {
    let db = TestDatabase::sqlite();
    let pages: i64 = diesel::sql_query("SELECT page_count AS n FROM pragma_page_count()")
        .get_result::<Count>(&mut db.conn())
        .unwrap()
        .n;
    let max_pages = u64::try_from(pages).unwrap() + 50;
    let pool = rekisteri_db::Pool::open(
        db.pool.url(),
        &rekisteri_db::PoolOptions {
            max_size: 2,
            sqlite_max_pages: Some(max_pages),
            ..rekisteri_db::PoolOptions::default()
        },
    )
    .unwrap();
    let writer = GroupCommit::start(&pool).unwrap();
    let mut conn = pool.get().unwrap();
    let full: Result<(), DbError> = writer.write_as(&mut conn, "account:full", |conn| {
        insert_organisation(conn, "o-before-full")?;
        conn.batch_execute("CREATE TABLE gc_filler (b BLOB)")?;
        loop {
            conn.batch_execute("INSERT INTO gc_filler VALUES (zeroblob(65536))")?;
        }
    });
    let error = full.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(!organisation_exists(&mut conn, "o-before-full"));
    writer
        .write_as(&mut conn, "account:after", |conn| -> Result<(), DbError> {
            insert_organisation(conn, "o-after-full")?;
            Ok(())
        })
        .unwrap();
    assert!(organisation_exists(&mut conn, "o-after-full"));
}
