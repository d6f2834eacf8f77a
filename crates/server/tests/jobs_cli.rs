//! PL-8 from the operator's side: `jobs run` takes the scheduler's lease, `jobs list` shows
//! the runs. On both databases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use rekisteri_db::db_test;

const BINARY: &str = env!("CARGO_BIN_EXE_rekisteri");

fn rekisteri(dir: &std::path::Path, database_url: &str) -> Command {
    let mut command = Command::new(BINARY);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("DATABASE_URL", database_url)
        .env("REKISTERI_KEY_FILE", dir.join("keys.toml"));
    command
}

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
