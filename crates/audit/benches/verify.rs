//! Audit chain verification throughput (PL-15: at least 500 000 entries/s), on SQLite and, when
//! `TEST_DATABASE_URL` is set, PostgreSQL. Prints figures; asserts only that the log verifies.
//!
//! `cargo bench -p rekisteri-audit --bench verify`. Environment: ENTRIES (1000000), VERIFY_RUNS
//! (3; the best run counts), BENCH_DATABASES (`sqlite`, `postgres`; both by default, PostgreSQL
//! only with TEST_DATABASE_URL).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use rekisteri_audit::{
    AccessBasis, ActorKind, NewEntry, Outcome, UsageEntry, VerifyOptions, WriterOptions, append_in_transaction,
};
use rekisteri_crypto::Keyring;
use rekisteri_db::testing::TestDatabase;
use rekisteri_db::{DbError, to_primitive, write_transaction};

fn entry(n: usize) -> NewEntry {
    NewEntry::Usage(UsageEntry {
        occurred_at: to_primitive(time::OffsetDateTime::now_utc()),
        registrar_id: format!("registrar-{}", n % 4),
        log_controller_id: format!("registrar-{}", n % 4),
        subject_index: Some([(n % 251) as u8; 32]),
        data_kind: "client".to_owned(),
        data_id: Some(format!("3f1c2a9e-1b2c-4d5e-8f90-{n:012}")),
        outcome: Outcome::Used,
        actor_kind: ActorKind::Staff,
        actor_id: "7d0c8a4e-2f5b-4a7e-9b1d-0c3e5f7a9b11".to_owned(),
        actor_name: Some("Maija Meikäläinen".to_owned()),
        on_behalf_of: None,
        service_unit_oid: Some("1.2.246.10.1234567.10.1".to_owned()),
        purpose: "service voucher decision".to_owned(),
        access_basis: AccessBasis::Role,
        special_reason: None,
        request_id: format!("0b6f1c1e-0000-4000-8000-{n:012}"),
        calling_system: Some("apotti".to_owned()),
    })
}

/// Fills a fresh log with `total` entries, verifies it `runs` times and returns the best
/// throughput in entries/s.
fn run(db: &TestDatabase, total: usize, runs: usize) -> f64 {
    let backend = db.backend().to_string();
    let keyring = Keyring::from_toml(&Keyring::generate_toml().unwrap()).unwrap();
    let options = WriterOptions {
        checkpoint_interval: 1000,
        ..WriterOptions::default()
    };
    let started = Instant::now();
    let mut conn = db.conn();
    let mut n = 0;
    while n < total {
        let batch: Vec<NewEntry> = (n..(n + 5000).min(total)).map(entry).collect();
        n += batch.len();
        write_transaction(&mut conn, |c| -> Result<(), DbError> {
            let now = to_primitive(time::OffsetDateTime::now_utc());
            append_in_transaction(c, batch, now, keyring.audit_signer(), &options)
                .map_err(|e| DbError::Migration(e.to_string()))
        })
        .unwrap();
    }
    let fill = started.elapsed().as_secs_f64();
    println!(
        "{backend:<9} fill   {total} entries in {fill:.1} s ({:.0} entries/s, 5000 per commit)",
        total as f64 / fill
    );
    let public = keyring.audit_signer().unwrap().public_key();
    let mut best = f64::INFINITY;
    for run in 1..=runs {
        let started = Instant::now();
        let report = rekisteri_audit::verify_all(
            &db.pool,
            &VerifyOptions {
                public_key: Some(&public),
                checkpoint_interval: 1000,
                segment_entries: rekisteri_audit::DEFAULT_SEGMENT_ENTRIES,
            },
        )
        .unwrap();
        let seconds = started.elapsed().as_secs_f64();
        assert!(report.intact(), "{:?}", report.breaks);
        assert_eq!(report.entries, total as u64);
        best = best.min(seconds);
        println!(
            "{backend:<9} verify {} entries, {} signed checkpoints in {seconds:.2} s = {:.0} entries/s (run {run}/{runs})",
            report.entries,
            report.signed_checkpoints,
            total as f64 / seconds
        );
    }
    total as f64 / best
}

fn main() {
    let total: usize = std::env::var("ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = std::env::var("VERIFY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let only = std::env::var("BENCH_DATABASES").unwrap_or_default();
    let mut results = Vec::new();
    if only.is_empty() || only.contains("sqlite") {
        results.push(("sqlite", run(&TestDatabase::sqlite(), total, runs)));
    }
    if (only.is_empty() || only.contains("postgres"))
        && let Some(db) = TestDatabase::postgres()
    {
        results.push(("postgres", run(&db, total, runs)));
    }
    println!("verify throughput, {total} entries, best of {runs} runs (PL-15 asks for 500 000 entries/s):");
    for (backend, rate) in results {
        println!("  {backend:<9} {rate:>10.0} entries/s");
    }
}
