//! PL-8 from the operator's side: `jobs run` takes the scheduler's lease, `jobs list` shows
//! the runs. On both databases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use rekisteri_db::db_test;

mod common;

use common::rekisteri_on as rekisteri;

db_test!(fn pl_8_jobs_run_takes_the_lease_refuses_while_it_is_held_and_jobs_list_shows_the_run(db) {
    let dir = tempfile::tempdir().unwrap();
    rekisteri_crypto::Keyring::create_file(&dir.path().join("keys.toml")).unwrap();
    let run = || {
        rekisteri(dir.path(), &db.url)
            .args(["jobs", "run", "registry-use-rights"])
            .output()
            .unwrap()
    };
    let output = run();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("registry-use-rights: 0 closed"));

    // Another server runs the job now (its lease runs for an hour): the command refuses.
    let held = rekisteri_db::lease::acquire(
        &mut db.conn(),
        "registry-use-rights",
        "server-a",
        time::OffsetDateTime::now_utc(),
        time::Duration::hours(1),
    )
    .unwrap()
    .unwrap();
    let refused = run();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("job registry-use-rights is running now") && stderr.contains("server-a"), "{stderr}");

    let list = rekisteri(dir.path(), &db.url).args(["jobs", "list"]).output().unwrap();
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let stdout = String::from_utf8_lossy(&list.stdout);
    let line = stdout.lines().find(|l| l.starts_with("registry-use-rights")).unwrap();
    assert!(line.contains("30 3 * * *") && line.contains(" ok ") && line.contains("running (server-a)"), "{stdout}");
    assert!(stdout.contains(r#"counts {"closed":0"#), "{stdout}");
    let outbox = stdout.lines().find(|l| l.starts_with("outbox")).unwrap();
    assert!(outbox.contains("*/10 * * * * *"), "{stdout}");

    // Released, the command runs again; the run is a security event with its counts.
    rekisteri_db::lease::release(&mut db.conn(), &held).unwrap();
    assert!(run().status.success());
    #[derive(diesel::QueryableByName)]
    struct Details {
        #[diesel(sql_type = diesel::sql_types::Text)]
        details: String,
    }
    let events: Vec<Details> = diesel::RunQueryDsl::load(
        diesel::sql_query("SELECT CAST(details AS TEXT) AS details FROM security_events WHERE event_type = 'job_run'"),
        &mut *db.conn(),
    )
    .unwrap();
    assert_eq!(events.len(), 2, "one event per run, none for the refused one");
    assert!(events.iter().all(|e| e.details.contains(r#""job":"registry-use-rights""#) && e.details.contains("duration_ms")));
});

/// The platform admin made by `admin bootstrap`, and a reminder queued for them as the inactivity
/// job queues one; returns the account id.
fn admin_with_reminder(dir: &std::path::Path, db: &rekisteri_db::testing::TestDatabase, email: &str) -> String {
    let output = rekisteri(dir, &db.url)
        .args(["admin", "bootstrap", "--email", email])
        .env("REKISTERI_ADMIN_PASSWORD", "a long and private passphrase")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let account = stdout.split_whitespace().nth(2).unwrap().to_owned();
    queue_reminder(db, &account);
    account
}

fn queue_reminder(db: &rekisteri_db::testing::TestDatabase, account: &str) {
    use diesel::prelude::*;
    use rekisteri_db::schema::{accounts, notification_outbox};
    let organisation: String = accounts::table
        .find(account)
        .select(accounts::organisation_id)
        .first(&mut *db.conn())
        .unwrap();
    let now = rekisteri_db::to_primitive(time::OffsetDateTime::now_utc());
    diesel::insert_into(notification_outbox::table)
        .values((
            notification_outbox::id.eq(uuid_like()),
            notification_outbox::organisation_id.eq(organisation),
            notification_outbox::account_id.eq(account),
            notification_outbox::kind.eq("inactivity_reminder"),
            notification_outbox::details
                .eq(r#"{"closes_at":"2027-01-05T10:00:00.000000Z","message":"Log in to keep the account open."}"#),
            notification_outbox::created_at.eq(now),
        ))
        .execute(&mut *db.conn())
        .unwrap();
}

fn uuid_like() -> String {
    rekisteri_crypto::to_hex(&rekisteri_crypto::random_bytes::<16>().unwrap())
}

fn smtp_env(command: &mut Command, port: u16) -> &mut Command {
    command
        .env("REKISTERI_SMTP_HOST", "127.0.0.1")
        .env("REKISTERI_SMTP_PORT", port.to_string())
        .env("REKISTERI_SMTP_TLS", "none")
        .env("REKISTERI_SMTP_SENDER", "Rekisteri <rekisteri@platform.test>")
}

db_test!(fn ac_7_pl_8_jobs_run_notifications_mails_each_reminder_once_and_jobs_list_shows_a_refusal(db) {
    let dir = tempfile::tempdir().unwrap();
    rekisteri_crypto::Keyring::create_file(&dir.path().join("keys.toml")).unwrap();
    // Without a relay the job has nowhere to send.
    let unset = rekisteri(dir.path(), &db.url).args(["jobs", "run", "notifications"]).output().unwrap();
    assert_eq!(unset.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unset.stderr).contains("REKISTERI_SMTP_HOST"));
    admin_with_reminder(dir.path(), db, "root@platform.test");
    let sink = rekisteri_tests::smtp::SmtpSink::start();
    let run = || smtp_env(&mut rekisteri(dir.path(), &db.url), sink.port).args(["jobs", "run", "notifications"]).output().unwrap();
    let first = run();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(String::from_utf8_lossy(&first.stdout).contains("notifications: 1 sent, 0 failed"), "{}", String::from_utf8_lossy(&first.stdout));
    let second = run();
    assert!(String::from_utf8_lossy(&second.stdout).contains("notifications: 0 sent, 0 failed (retried later), 0 dropped (no longer applied), 0 waiting"));
    let mail = sink.received();
    assert_eq!(mail.len(), 1, "one reminder, once across two runs");
    assert_eq!(mail[0].to, ["root@platform.test"]);

    // The relay refuses the next one for now: the run fails after trying, and says so.
    queue_reminder(db, &mail_account(db));
    sink.refuse_next(1, "451 4.3.0 root@platform.test: try again later");
    let refused = run();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("notifications: 1 of 1 not sent (SMTP 451 (refused for now))"), "{stderr}");
    assert_eq!(sink.received().len(), 1);
    let list = rekisteri(dir.path(), &db.url).args(["jobs", "list"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&list.stdout);
    let line = stdout.lines().find(|l| l.starts_with("notifications")).unwrap();
    assert!(line.contains(" failed "), "{stdout}");
    assert!(stdout.contains("error (1 failures in a row): notifications: 1 of 1 not sent (SMTP 451 (refused for now))"), "{stdout}");
    assert!(!stdout.contains("root@platform.test") && !stderr.contains("root@platform.test"), "no address in what operators read");

    // `config check` shows the relay, never its password.
    let check = smtp_env(&mut rekisteri(dir.path(), &db.url), sink.port)
        .env("REKISTERI_SMTP_USERNAME", "relay-user")
        .env("REKISTERI_SMTP_PASSWORD", "relay-secret-3141")
        .args(["config", "check"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(stdout.contains("[smtp]\nhost = \"127.0.0.1\"") && stdout.contains("tls = \"none\"") && stdout.contains("password = \"****\""), "{stdout}");
    assert!(!stdout.contains("relay-secret-3141"), "{stdout}");
});

fn mail_account(db: &rekisteri_db::testing::TestDatabase) -> String {
    use diesel::prelude::*;
    rekisteri_db::schema::accounts::table
        .select(rekisteri_db::schema::accounts::id)
        .first(&mut *db.conn())
        .unwrap()
}

fn job_runs(db: &rekisteri_db::testing::TestDatabase, job: &str) -> Vec<serde_json::Value> {
    #[derive(diesel::QueryableByName)]
    struct Details {
        #[diesel(sql_type = diesel::sql_types::Text)]
        details: String,
    }
    let rows: Vec<Details> = diesel::RunQueryDsl::load(
        diesel::sql_query("SELECT CAST(details AS TEXT) AS details FROM security_events WHERE event_type = 'job_run'"),
        &mut *db.conn(),
    )
    .unwrap();
    rows.iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(&r.details).unwrap())
        .filter(|d| d["job"] == job)
        .collect()
}

fn at(value: &serde_json::Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(value.as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap()
}

/// Polls `check` every 50 ms until it gives a value, for at most `seconds`.
fn wait_for<T>(what: &str, seconds: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not happen within {seconds} s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

db_test!(fn pl_8_two_serve_processes_never_run_a_job_at_once_and_one_takes_over_when_the_holder_is_killed(db) {
    let dir = tempfile::tempdir().unwrap();
    rekisteri_crypto::Keyring::create_file(&dir.path().join("keys.toml")).unwrap();
    admin_with_reminder(dir.path(), db, "root@platform.test");
    // A mail relay that never answers: a `notifications` run hangs in it (until its timeout),
    // holding the lease and renewing it, which is the moment to kill its server.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = dir.path().join("rekisteri.toml");
    std::fs::write(
        &config,
        "[jobs]\nlease_ttl_secs = 5\n\n[jobs.registry-use-rights]\nschedule = \"* * * * * *\"\n\n\
         [jobs.notifications]\nschedule = \"* * * * * *\"\n",
    )
    .unwrap();
    let serve = || {
        let child = smtp_env(&mut rekisteri(dir.path(), &db.url), black_hole.local_addr().unwrap().port())
            .env("REKISTERI_SMTP_TIMEOUT_SECS", "120")
            .env("REKISTERI_CONFIG", &config)
            .env("REKISTERI_BIND", "127.0.0.1:0")
            .env("REKISTERI_DATA_DIR", dir.path())
            .arg("serve")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        common::KillOnDrop(child)
    };
    let mut servers = vec![serve(), serve()];

    // Both schedulers try the every-second job; its runs never overlap.
    let runs = wait_for("20 runs of registry-use-rights", 90, || {
        let runs = job_runs(db, "registry-use-rights");
        (runs.len() >= 20).then_some(runs)
    });
    let mut intervals: Vec<(time::OffsetDateTime, time::OffsetDateTime, String)> = runs
        .iter()
        .map(|r| (at(&r["started_at"]), at(&r["finished_at"]), r["holder"].as_str().unwrap().to_owned()))
        .collect();
    intervals.sort();
    for pair in intervals.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "runs overlap: {:?} and {:?}", pair[0], pair[1]);
    }
    assert!(runs.iter().all(|r| r["outcome"] == "ok" && r["trigger"] == "schedule"), "{runs:?}");
    let holders: std::collections::BTreeSet<&str> = intervals.iter().map(|(_, _, holder)| holder.as_str()).collect();
    eprintln!("registry-use-rights: {} runs by {} servers", intervals.len(), holders.len());

    // The holder of the hanging `notifications` run dies; the other takes the job over only
    // once the lease has expired.
    let lease = |db: &rekisteri_db::testing::TestDatabase| {
        rekisteri_db::lease::state(&mut db.conn(), "notifications").unwrap().unwrap()
    };
    let held = wait_for("a notifications run holding its lease", 30, || {
        let state = lease(db);
        state.holder.is_some().then_some(state)
    });
    let holder = held.holder.clone().unwrap();
    let pid: u32 = holder.split('-').nth(1).unwrap().parse().unwrap();
    let position = servers.iter().position(|s| s.0.id() == pid).unwrap();
    let killed = servers.remove(position);
    drop(killed);
    let expired_at = lease(db).expires_at.unwrap();
    let survivor = servers[0].0.id();
    let taken = wait_for("the survivor taking the lease over", 30, || {
        let state = lease(db);
        state
            .holder
            .as_deref()
            .is_some_and(|h| h.starts_with(&format!("serve-{survivor}-")))
            .then_some(state)
    });
    assert!(taken.acquired_at.unwrap() > expired_at, "taken at {:?}, before the expiry {expired_at}", taken.acquired_at);
    assert!(taken.token > held.token, "a takeover moves the fencing token");
});
