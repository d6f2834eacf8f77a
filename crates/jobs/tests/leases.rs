//! PL-8: leases keep every job to one holder at a time, and fencing keeps a holder that lost
//! its lease from writing. Every test runs on SQLite and PostgreSQL; time is a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use rekisteri_core::{Clock, ManualClock, SharedClock};
use rekisteri_db::lease;
use rekisteri_db::testing::TestDatabase;
use rekisteri_db::{DbConnection, db_test, write_transaction};
use rekisteri_jobs::{Job, JobReport, RunOutcome, Schedule, Scheduler, SchedulerError, SchedulerOptions};
use time::Duration;
use time::macros::datetime;

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(datetime!(2026-12-07 10:00 UTC)))
}

/// A table the test jobs write to: what a fenced write left behind.
fn probe_table(db: &TestDatabase) {
    db.conn()
        .batch_execute("CREATE TABLE fencing_probe (holder TEXT NOT NULL, token BIGINT NOT NULL)")
        .unwrap();
}

fn probe_write(conn: &mut DbConnection, holder: &str, token: i64) -> Result<(), diesel::result::Error> {
    write_transaction(conn, |conn| {
        diesel::sql_query(format!(
            "INSERT INTO fencing_probe (holder, token) VALUES ('{holder}', {token})"
        ))
        .execute(conn)
        .map(drop)
    })
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn probe_rows(db: &TestDatabase) -> i64 {
    diesel::sql_query("SELECT COUNT(*) AS n FROM fencing_probe")
        .get_result::<Count>(&mut *db.conn())
        .unwrap()
        .n
}

fn options(ttl: Duration) -> SchedulerOptions {
    SchedulerOptions {
        lease_ttl: ttl,
        renew_every: None,
        ..SchedulerOptions::default()
    }
}

db_test!(fn pl_8_two_schedulers_on_one_database_never_run_the_same_job_at_once(db) {
    probe_table(db);
    let clock = clock();
    let in_flight = Arc::new(AtomicU64::new(0));
    let overlapped = Arc::new(AtomicBool::new(false));
    // Logical time: each run takes a number as it starts and another as it ends; two runs
    // overlapped exactly when their intervals interleave.
    let ticks = Arc::new(AtomicU64::new(0));
    let intervals = Arc::new(Mutex::new(Vec::<(u64, u64, String)>::new()));
    let scheduler = |holder: &str| {
        let (in_flight, overlapped, ticks, intervals, pool) =
            (in_flight.clone(), overlapped.clone(), ticks.clone(), intervals.clone(), db.pool.clone());
        let job = Job {
            name: "probe".to_owned(),
            schedule: Schedule::parse("*/10 * * * * *").unwrap(),
            enabled: true,
            run: Box::new(move |context| {
                if in_flight.fetch_add(1, Ordering::SeqCst) != 0 {
                    overlapped.store(true, Ordering::SeqCst);
                }
                let start = ticks.fetch_add(1, Ordering::SeqCst);
                let mut conn = pool.get().map_err(|e| e.to_string())?;
                probe_write(&mut conn, &context.lease.holder, context.lease.token).map_err(|e| e.to_string())?;
                std::thread::yield_now();
                let end = ticks.fetch_add(1, Ordering::SeqCst);
                intervals.lock().unwrap().push((start, end, context.lease.holder.clone()));
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok(JobReport::default())
            }),
        };
        // The lease outlives the test's clock: this test is about two live holders.
        Scheduler::new(
            db.pool.clone(),
            clock.clone() as SharedClock,
            None,
            holder.to_owned(),
            vec![job],
            options(Duration::days(3650)),
        )
    };
    let (a, b) = (scheduler("server-a"), scheduler("server-b"));
    std::thread::scope(|scope| {
        for s in [&a, &b] {
            let (clock, intervals) = (clock.clone(), intervals.clone());
            scope.spawn(move || {
                // How many slots fall due to a run depends on how the two threads interleave
                // (a jump over several slots is one run), so go on until enough runs happened,
                // with a bound in case none ever does.
                for _ in 0..20_000 {
                    if intervals.lock().unwrap().len() >= 40 {
                        break;
                    }
                    clock.advance(Duration::seconds(3));
                    for (_, outcome) in s.run_due() {
                        assert!(!matches!(outcome, RunOutcome::Failed(_)), "{outcome:?}");
                    }
                }
            });
        }
    });
    assert!(!overlapped.load(Ordering::SeqCst));
    let mut intervals = intervals.lock().unwrap().clone();
    intervals.sort();
    for pair in intervals.windows(2) {
        assert!(pair[0].1 < pair[1].0, "runs overlapped: {pair:?}");
    }
    assert!(intervals.len() >= 20, "only {} runs", intervals.len());
    assert_eq!(probe_rows(db), intervals.len() as i64, "every run's fenced write committed");
    // Each run took the lease afresh: the tokens moved once per run.
    let state = lease::state(&mut db.conn(), "probe").unwrap().unwrap();
    assert_eq!(state.token, intervals.len() as i64);
    assert_eq!(state.holder, None);
    assert_eq!(state.last_outcome.as_deref(), Some("ok"));
});

db_test!(fn pl_8_a_holder_whose_lease_expired_loses_it_to_the_other(db) {
    let clock = clock();
    let ttl = Duration::seconds(60);
    let mut conn = db.conn();
    let a = lease::acquire(&mut conn, "outbox", "server-a", clock.now(), ttl).unwrap().unwrap();
    clock.advance(Duration::seconds(30));
    assert_eq!(lease::acquire(&mut conn, "outbox", "server-b", clock.now(), ttl).unwrap(), None);
    // Renewed, it holds on past its first expiry.
    let mut a_renewed = a.clone();
    assert!(lease::renew(&mut conn, &mut a_renewed, clock.now(), ttl).unwrap());
    clock.advance(Duration::seconds(45));
    assert_eq!(lease::acquire(&mut conn, "outbox", "server-b", clock.now(), ttl).unwrap(), None);
    // Not renewed again: at its expiry the other holder takes it, with a new token.
    clock.advance(Duration::seconds(16));
    let b = lease::acquire(&mut conn, "outbox", "server-b", clock.now(), ttl).unwrap().unwrap();
    assert!(b.token > a.token);
    let state = lease::state(&mut conn, "outbox").unwrap().unwrap();
    assert_eq!(state.holder.as_deref(), Some("server-b"));
    assert!(state.held_at(clock.now()));
    // The old holder can neither renew, release nor record a run any more.
    assert!(!lease::renew(&mut conn, &mut a_renewed, clock.now(), ttl).unwrap());
    assert!(!lease::release(&mut conn, &a).unwrap());
    let record = lease::RunRecord {
        finished_at: clock.now(),
        outcome: "ok".to_owned(),
        counts: None,
        error: None,
        failures: 0,
        next_run_at: None,
    };
    assert!(!lease::finish(&mut conn, &a, &record).unwrap());
    assert_eq!(lease::state(&mut conn, "outbox").unwrap().unwrap().holder.as_deref(), Some("server-b"));
    // Released, the lease is free at once.
    assert!(lease::release(&mut conn, &b).unwrap());
    assert!(lease::acquire(&mut conn, "outbox", "server-a", clock.now(), ttl).unwrap().is_some());
});

db_test!(fn pl_8_a_holder_whose_lease_was_taken_cannot_commit(db) {
    probe_table(db);
    let clock = clock();
    let ttl = Duration::seconds(60);
    let mut conn = db.conn();
    let a = lease::acquire(&mut conn, "anonymise", "server-a", clock.now(), ttl).unwrap().unwrap();
    lease::fenced(&a, || probe_write(&mut conn, "server-a", a.token)).unwrap();
    // Server A stalls past its expiry; B takes over.
    clock.advance(Duration::seconds(61));
    let b = lease::acquire(&mut conn, "anonymise", "server-b", clock.now(), ttl).unwrap().unwrap();
    let refused = lease::fenced(&a, || probe_write(&mut conn, "server-a", a.token)).unwrap_err();
    assert!(lease::is_lease_lost(&refused), "{refused}");
    assert!(lease::check_fence(&mut conn, "anonymise", "server-a", a.token).is_err());
    lease::fenced(&b, || probe_write(&mut conn, "server-b", b.token)).unwrap();
    // A's first write and B's write; A's refused one was rolled back.
    assert_eq!(probe_rows(db), 2);
    // Outside a fenced scope nothing is checked (the web requests' transactions).
    probe_write(&mut conn, "request", 0).unwrap();
});

db_test!(fn pl_8_a_job_whose_lease_is_taken_mid_run_fails_and_writes_nothing(db) {
    probe_table(db);
    let clock = clock();
    let ttl = Duration::seconds(60);
    let pool = db.pool.clone();
    let job_clock = clock.clone();
    let job = Job {
        name: "anonymise".to_owned(),
        schedule: Schedule::parse("30 2 * * *").unwrap(),
        enabled: true,
        run: Box::new(move |context| {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            // The run stalls past its lease, and another server takes the job over.
            job_clock.advance(Duration::seconds(61));
            lease::acquire(&mut conn, "anonymise", "server-b", job_clock.now(), ttl)
                .map_err(|e| e.to_string())?
                .ok_or("server-b could not take the lease")?;
            probe_write(&mut conn, &context.lease.holder, context.lease.token).map_err(|e| e.to_string())?;
            Ok(JobReport::default())
        }),
    };
    let a = Scheduler::new(db.pool.clone(), clock.clone() as SharedClock, None, "server-a".to_owned(), vec![job], options(ttl));
    match a.run_now("anonymise").unwrap() {
        RunOutcome::Failed(message) => assert!(message.contains("no longer held"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(probe_rows(db), 0);
    // The new holder's lease stands: the stalled run's end did not release or overwrite it.
    let state = lease::state(&mut db.conn(), "anonymise").unwrap().unwrap();
    assert_eq!(state.holder.as_deref(), Some("server-b"));
});

db_test!(fn pl_8_jobs_run_refuses_while_another_holder_runs_the_job(db) {
    let clock = clock();
    let ttl = Duration::minutes(5);
    let ran = Arc::new(AtomicU64::new(0));
    let job = |ran: Arc<AtomicU64>| Job {
        name: "retention".to_owned(),
        schedule: Schedule::parse("0 2 * * *").unwrap(),
        enabled: true,
        run: Box::new(move |_| {
            ran.fetch_add(1, Ordering::SeqCst);
            let mut report = JobReport::default();
            report.counts.insert("deleted".to_owned(), 3.into());
            Ok(report)
        }),
    };
    let command = Scheduler::new(db.pool.clone(), clock.clone() as SharedClock, None, "cli".to_owned(), vec![job(ran.clone())], options(ttl));
    let held = lease::acquire(&mut db.conn(), "retention", "server-a", clock.now(), ttl).unwrap().unwrap();
    match command.run_now("retention") {
        Err(SchedulerError::Busy { holder, .. }) => assert_eq!(holder, "server-a"),
        other => panic!("{other:?}"),
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    lease::release(&mut db.conn(), &held).unwrap();
    assert!(matches!(command.run_now("retention").unwrap(), RunOutcome::Succeeded(_)));
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    let state = lease::state(&mut db.conn(), "retention").unwrap().unwrap();
    assert_eq!(state.last_outcome.as_deref(), Some("ok"));
    assert_eq!(state.last_counts.as_deref(), Some(r#"{"deleted":3}"#));
    assert!(matches!(command.run_now("nightly"), Err(SchedulerError::Unknown(_))));
});

db_test!(fn pl_8_a_failing_job_is_retried_with_backoff_until_it_succeeds(db) {
    let clock = clock();
    let fail = Arc::new(AtomicBool::new(true));
    let job_fail = fail.clone();
    let job = Job {
        name: "inactivity".to_owned(),
        schedule: Schedule::parse("0 3 * * *").unwrap(),
        enabled: true,
        run: Box::new(move |_| if job_fail.load(Ordering::SeqCst) { Err("mail server down".to_owned()) } else { Ok(JobReport::default()) }),
    };
    let s = Scheduler::new(db.pool.clone(), clock.clone() as SharedClock, None, "server-a".to_owned(), vec![job], options(Duration::minutes(5)));
    // Registered at 12:00 Helsinki time, due at 03:00 the next night (01:00 UTC).
    assert_eq!(s.run_due()[0].1, RunOutcome::Skipped);
    clock.set(datetime!(2026-12-08 01:00 UTC));
    assert!(matches!(s.run_due()[0].1, RunOutcome::Failed(_)));
    let state = lease::state(&mut db.conn(), "inactivity").unwrap().unwrap();
    assert_eq!((state.failures, state.last_error.as_deref()), (1, Some("mail server down")));
    assert_eq!(state.next_run_at, Some(datetime!(2026-12-08 01:00:30)));
    clock.advance(Duration::seconds(29));
    assert_eq!(s.run_due()[0].1, RunOutcome::Skipped);
    clock.advance(Duration::seconds(1));
    assert!(matches!(s.run_due()[0].1, RunOutcome::Failed(_)));
    // The wait doubles.
    let state = lease::state(&mut db.conn(), "inactivity").unwrap().unwrap();
    assert_eq!(state.next_run_at, Some(datetime!(2026-12-08 01:01:30)));
    fail.store(false, Ordering::SeqCst);
    clock.set(datetime!(2026-12-08 01:01:30 UTC));
    assert!(matches!(s.run_due()[0].1, RunOutcome::Succeeded(_)));
    let state = lease::state(&mut db.conn(), "inactivity").unwrap().unwrap();
    assert_eq!((state.failures, state.last_outcome.as_deref()), (0, Some("ok")));
    assert_eq!(state.next_run_at, Some(datetime!(2026-12-09 01:00)));
});
