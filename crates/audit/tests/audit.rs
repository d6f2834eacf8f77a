//! AU-4 and AU-5 on both databases: append only, tamper evident, fail closed, no forks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use rekisteri_audit::{
    AccessBasis, ActorKind, AuditError, AuditLog, DisclosureEntry, NewEntry, Outcome, SecurityEvent, UsageEntry,
    VerifyOptions, VerifyReport, WriterOptions,
};
use rekisteri_core::{Clock, ManualClock};
use rekisteri_crypto::{Keyring, chain_step};
use rekisteri_db::schema::{audit_chains, audit_outbox, usage_log};
use rekisteri_db::testing::TestDatabase;
use rekisteri_db::{Backend, DbConnection, db_test, to_primitive};
use time::macros::datetime;

fn keyring() -> Arc<Keyring> {
    Arc::new(Keyring::from_toml(&Keyring::generate_toml().unwrap()).unwrap())
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(datetime!(2026-11-25 10:00 UTC)))
}

fn usage(registrar: &str, n: usize) -> NewEntry {
    NewEntry::Usage(UsageEntry {
        occurred_at: to_primitive(datetime!(2026-11-25 10:00 UTC)) + time::Duration::microseconds(n as i64),
        registrar_id: registrar.to_owned(),
        log_controller_id: registrar.to_owned(),
        subject_index: Some([n as u8; 32]),
        data_kind: "client".to_owned(),
        data_id: Some(format!("client-{n}")),
        outcome: Outcome::Used,
        actor_kind: ActorKind::Staff,
        actor_id: "account-1".to_owned(),
        actor_name: Some("Maija Meikäläinen".to_owned()),
        on_behalf_of: None,
        service_unit_oid: Some("1.2.246.10.1234567.10.1".to_owned()),
        purpose: "service voucher decision".to_owned(),
        access_basis: AccessBasis::Role,
        special_reason: None,
        request_id: format!("req-{n}"),
        calling_system: None,
    })
}

fn disclosure(registrar: &str) -> NewEntry {
    NewEntry::Disclosure(DisclosureEntry {
        occurred_at: to_primitive(datetime!(2026-11-25 11:00 UTC)),
        registrar_id: registrar.to_owned(),
        subject_index: Some([7; 32]),
        description: "right-of-access document".to_owned(),
        discloser_kind: ActorKind::Staff,
        discloser_id: "account-1".to_owned(),
        recipient_kind: "data_subject".to_owned(),
        recipient_id: "self".to_owned(),
        recipient_name: None,
        purpose: "right of access".to_owned(),
        legal_basis: "GDPR art. 15".to_owned(),
        request_id: "req-d".to_owned(),
    })
}

fn security() -> NewEntry {
    NewEntry::Security(SecurityEvent {
        occurred_at: to_primitive(datetime!(2026-11-25 12:00 UTC)),
        organisation_id: None,
        event_type: "login_failed".to_owned(),
        actor_kind: ActorKind::System,
        actor_id: None,
        details: serde_json::json!({"reason": "wrong password"}),
        request_id: None,
    })
}

/// A writer whose start-up sweep of the outbox is done: the sweep runs on the writer's own
/// thread, and a test that stages entries right after the start would otherwise race it.
fn writer(db: &TestDatabase, keys: &Arc<Keyring>, interval: i64) -> AuditLog {
    let log = AuditLog::start(
        db.pool.clone(),
        clock(),
        Some(keys.clone()),
        WriterOptions {
            checkpoint_interval: interval,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    log.append(Vec::new()).unwrap();
    log
}

fn verify(db: &TestDatabase, keys: &Keyring, interval: i64) -> VerifyReport {
    let public = keys.audit_signer().unwrap().public_key();
    rekisteri_audit::verify_all(
        &db.pool,
        &VerifyOptions {
            public_key: Some(&public),
            checkpoint_interval: interval,
            // Small segments, so that every test also checks the joins between segments.
            segment_entries: 7,
        },
    )
    .unwrap()
}

/// The monthly tables of `log` on SQLite (migration 000030), by name.
fn sqlite_months(conn: &mut DbConnection, log: &str) -> Vec<String> {
    let DbConnection::Sqlite(c) = conn else {
        panic!("SQLite only")
    };
    rekisteri_db::log_partitions::partitions(c, log)
        .unwrap()
        .into_iter()
        .filter(|p| p.month.is_some())
        .map(|p| p.name)
        .collect()
}

/// Runs SQL with the triggers out of the way, as someone with direct database access could. On
/// SQLite `usage_log` is a view, so the SQL runs against each month's table of it instead.
fn behind_the_triggers(db: &TestDatabase, sql: &str) {
    let mut conn = db.conn();
    match db.backend() {
        Backend::Sqlite => {
            for month in sqlite_months(&mut conn, "usage_log") {
                let sql = sql.replace("usage_log", &month);
                conn.batch_execute(&format!(
                    "DROP TRIGGER {month}_append_only; DROP TRIGGER {month}_retention_only; {sql};
                     CREATE TRIGGER {month}_append_only BEFORE UPDATE ON {month}
                     BEGIN SELECT RAISE(ABORT, 'usage_log is append-only'); END;
                     CREATE TRIGGER {month}_retention_only BEFORE DELETE ON {month}
                     BEGIN SELECT RAISE(ABORT, 'usage_log is append-only') WHERE rekisteri_retention_allowed() IS NOT 1; END;"
                ))
                .unwrap()
            }
        }
        Backend::Postgres => conn
            .batch_execute(&format!(
                "SET session_replication_role = replica; {sql}; SET session_replication_role = origin;"
            ))
            .unwrap(),
    }
}

fn sql_error(conn: &mut DbConnection, sql: &str) -> String {
    conn.batch_execute(sql).expect_err(sql).to_string()
}

db_test!(fn au_5_update_delete_and_truncate_on_log_tables_are_refused(db) {
    let keys = keyring();
    writer(db, &keys, 2).append(vec![usage("r1", 1), usage("r1", 2), disclosure("r1"), security()]).unwrap();
    let mut conn = db.conn();
    for log in ["usage_log", "disclosure_log", "security_events"] {
        let mut tables = vec![log.to_owned()];
        if db.backend() == Backend::Sqlite {
            // The log is a view there (which SQLite itself will not let anyone change); its
            // tables refuse as PostgreSQL's table does.
            let view = sql_error(&mut conn, &format!("UPDATE {log} SET request_id = 'x'"));
            assert!(view.contains("cannot modify") && view.contains("view"), "{view}");
            tables = sqlite_months(&mut conn, log);
            assert_eq!(tables.len(), 1, "{tables:?}");
        }
        for table in tables {
            let update = sql_error(&mut conn, &format!("UPDATE {table} SET request_id = 'x'"));
            assert!(update.contains("append-only"), "{update}");
            let delete = sql_error(&mut conn, &format!("DELETE FROM {table}"));
            assert!(delete.contains("append-only") || delete.contains("rekisteri_retention_allowed"), "{delete}");
        }
    }
    let checkpoint = sql_error(&mut conn, "DELETE FROM audit_checkpoints");
    assert!(checkpoint.contains("append-only"), "{checkpoint}");
    if db.backend() == Backend::Postgres {
        let truncate = sql_error(&mut conn, "TRUNCATE usage_log");
        assert!(truncate.contains("append-only"), "{truncate}");
    }
    let count: i64 = usage_log::table.count().get_result(&mut conn).unwrap();
    assert_eq!(count, 2);
    assert!(verify(db, &keys, 2).intact());
});

db_test!(fn au_5_an_intact_log_verifies_with_every_chain_counted(db) {
    let keys = keyring();
    let log = writer(db, &keys, 5);
    for n in 1..=12 {
        log.append(vec![usage("r1", n), usage("r2", n)]).unwrap();
    }
    log.append(vec![disclosure("r1"), security()]).unwrap();
    let report = verify(db, &keys, 5);
    assert!(report.intact(), "{:?}", report.breaks);
    assert_eq!(report.chains, 4, "usage:r1, usage:r2, disclosure:r1, security:platform");
    assert_eq!(report.entries, 26);
    assert_eq!(report.signed_checkpoints, 4, "seq 5 and 10 of both usage chains");
    let head: (i64, Vec<u8>) = audit_chains::table
        .filter(audit_chains::chain_id.eq("usage:r1"))
        .select((audit_chains::last_seq, audit_chains::last_hash))
        .first(&mut db.conn())
        .unwrap();
    assert_eq!(head.0, 12);
});

db_test!(fn au_5_concurrent_writers_creating_and_sharing_chains_neither_fork_nor_deadlock(db) {
    // Each transaction names chains in a different order, some shared by every writer and one
    // new to it: the heads are created and locked in one order, whatever the entries' order, so
    // no two writers wait on each other in a cycle (PostgreSQL would abort one as a deadlock).
    let keys = keyring();
    let options = WriterOptions {
        checkpoint_interval: 0,
        ..WriterOptions::default()
    };
    let writers = 4;
    let rounds = 25;
    std::thread::scope(|scope| {
        for w in 0..writers {
            let pool = db.pool.clone();
            let options = &options;
            scope.spawn(move || {
                let mut conn = pool.get().unwrap();
                for round in 0..rounds {
                    let mut entries = vec![
                        usage(&format!("new-{w}-{round}"), 1),
                        usage("shared-a", round),
                        usage("shared-b", round),
                        usage("shared-c", round),
                    ];
                    entries.rotate_left((w + round) % 4);
                    if (w + round) % 2 == 1 {
                        entries.reverse();
                    }
                    rekisteri_db::write_transaction(&mut conn, |c| {
                        rekisteri_audit::append_in_transaction(c, entries, to_primitive(clock().now()), None, options)
                    })
                    .unwrap();
                }
            });
        }
    });
    let report = verify(db, &keys, 0);
    assert!(report.intact(), "{:?}", report.breaks);
    assert_eq!(report.chains, (3 + writers * rounds) as u64);
    assert_eq!(report.entries, (4 * writers * rounds) as u64);
    let shared: Vec<(String, i64)> = audit_chains::table
        .filter(audit_chains::chain_id.like("usage:shared-%"))
        .order(audit_chains::chain_id)
        .select((audit_chains::chain_id, audit_chains::last_seq))
        .load(&mut db.conn())
        .unwrap();
    let expected = (writers * rounds) as i64;
    assert_eq!(
        shared,
        vec![
            ("usage:shared-a".to_owned(), expected),
            ("usage:shared-b".to_owned(), expected),
            ("usage:shared-c".to_owned(), expected),
        ]
    );
});

fn usage_entries(db: &TestDatabase, registrar: &str) -> i64 {
    usage_log::table
        .filter(usage_log::registrar_id.eq(registrar))
        .count()
        .get_result(&mut db.conn())
        .unwrap()
}

fn outbox_entries(db: &TestDatabase) -> i64 {
    audit_outbox::table.count().get_result(&mut db.conn()).unwrap()
}

db_test!(fn au_4_a_changes_staged_entries_are_chained_once_and_only_if_it_committed(db) {
    let keys = keyring();
    let log = writer(db, &keys, 0);
    let now = to_primitive(clock().now());
    let mut conn = db.conn();
    let ((), staged) = rekisteri_audit::outbox::staging(|| {
        rekisteri_db::write_transaction(&mut conn, |c| log.append_in(c, vec![usage("r1", 1)], now)).unwrap();
        let rolled_back = rekisteri_db::write_transaction::<(), AuditError, _>(&mut conn, |c| {
            log.append_in(c, vec![usage("r1", 2)], now)?;
            Err(AuditError::Write("the change failed".to_owned()))
        });
        assert!(rolled_back.is_err());
    });
    if db.backend() == Backend::Postgres {
        // Committed with the change, not yet in the chain; the rolled-back change left nothing.
        assert_eq!(staged.len(), 2);
        assert_eq!((usage_entries(db, "r1"), outbox_entries(db)), (0, 1));
    } else {
        // SQLite appends in the change's transaction (its group commit shares the head's lock).
        assert!(staged.is_empty());
        assert_eq!((usage_entries(db, "r1"), outbox_entries(db)), (1, 0));
    }
    log.chain_staged(staged.clone()).unwrap();
    assert_eq!((usage_entries(db, "r1"), outbox_entries(db)), (1, 0));
    // Chaining the same ids again finds them gone: nothing is chained twice.
    log.chain_staged(staged).unwrap();
    let report = verify(db, &keys, 0);
    assert!(report.intact(), "{:?}", report.breaks);
    assert_eq!(report.entries, 1);
    let data_id: Option<String> = usage_log::table.select(usage_log::data_id).first(&mut db.conn()).unwrap();
    assert_eq!(data_id.as_deref(), Some("client-1"));
});

db_test!(fn au_4_entries_a_crashed_process_left_in_the_outbox_are_chained_when_a_writer_starts(db) {
    let keys = keyring();
    let now = to_primitive(clock().now());
    {
        let crashed = writer(db, &keys, 0);
        let mut conn = db.conn();
        let ((), _never_chained) = rekisteri_audit::outbox::staging(|| {
            rekisteri_db::write_transaction(&mut conn, |c| crashed.append_in(c, vec![usage("r1", 1), usage("r1", 2)], now))
                .unwrap();
        });
    }
    let expected_outbox = if db.backend() == Backend::Postgres { 2 } else { 0 };
    assert_eq!(outbox_entries(db), expected_outbox);
    let restarted = writer(db, &keys, 0);
    // An empty append is answered after everything the writer did before it: its start.
    restarted.append(Vec::new()).unwrap();
    assert_eq!((usage_entries(db, "r1"), outbox_entries(db)), (2, 0));
    let seqs: Vec<i64> = usage_log::table.order(usage_log::seq).select(usage_log::seq).load(&mut db.conn()).unwrap();
    assert_eq!(seqs, vec![1, 2]);
    assert!(verify(db, &keys, 0).intact());
});

db_test!(fn au_4_a_readiness_probe_chains_what_the_outbox_holds(db) {
    let keys = keyring();
    let log = writer(db, &keys, 0);
    let now = to_primitive(clock().now());
    let mut conn = db.conn();
    let ((), _left) = rekisteri_audit::outbox::staging(|| {
        rekisteri_db::write_transaction(&mut conn, |c| log.append_in(c, vec![usage("r1", 1)], now)).unwrap();
    });
    log.probe().unwrap();
    assert_eq!((usage_entries(db, "r1"), outbox_entries(db)), (1, 0));
    assert!(verify(db, &keys, 0).intact());
});

db_test!(fn au_5_content_changed_behind_the_triggers_is_found(db) {
    let keys = keyring();
    let log = writer(db, &keys, 0);
    for n in 1..=5 {
        log.append(vec![usage("r1", n)]).unwrap();
    }
    behind_the_triggers(db, "UPDATE usage_log SET purpose = 'curiosity' WHERE seq = 3");
    let report = verify(db, &keys, 0);
    assert_eq!(report.breaks.len(), 1);
    assert_eq!(report.breaks[0].chain_id, "usage:r1");
    assert_eq!(report.breaks[0].seq, 3);
    assert!(report.breaks[0].reason.contains("content does not match its hash"), "{}", report.breaks[0]);
});

db_test!(fn au_5_deleted_entries_are_found(db) {
    let keys = keyring();
    let log = writer(db, &keys, 0);
    for n in 1..=5 {
        log.append(vec![usage("r1", n), usage("r2", n)]).unwrap();
    }
    behind_the_triggers(db, "DELETE FROM usage_log WHERE chain_id = 'usage:r1' AND seq = 2");
    behind_the_triggers(db, "DELETE FROM usage_log WHERE chain_id = 'usage:r2' AND seq = 5");
    let report = verify(db, &keys, 0);
    assert_eq!(report.breaks.len(), 2, "{:?}", report.breaks);
    assert_eq!((report.breaks[0].chain_id.as_str(), report.breaks[0].seq), ("usage:r1", 2));
    assert!(report.breaks[0].reason.contains("entry missing"));
    assert_eq!((report.breaks[1].chain_id.as_str(), report.breaks[1].seq), ("usage:r2", 5));
    assert!(report.breaks[1].reason.contains("entries 5..5 are missing"), "{}", report.breaks[1]);
});

db_test!(fn au_5_reordered_entries_are_found(db) {
    let keys = keyring();
    let log = writer(db, &keys, 0);
    for n in 1..=4 {
        log.append(vec![usage("r1", n)]).unwrap();
    }
    // Swap the sequence numbers of entries 2 and 3.
    behind_the_triggers(
        db,
        "UPDATE usage_log SET seq = 99 WHERE seq = 2; UPDATE usage_log SET seq = 2 WHERE seq = 3; \
         UPDATE usage_log SET seq = 3 WHERE seq = 99",
    );
    let report = verify(db, &keys, 0);
    assert_eq!(report.breaks.len(), 1);
    assert_eq!(report.breaks[0].seq, 2);
    assert!(report.breaks[0].reason.contains("does not link"), "{}", report.breaks[0]);
});

db_test!(fn au_5_a_rewrite_with_recomputed_hashes_is_found_by_signed_checkpoints(db) {
    let keys = keyring();
    let log = writer(db, &keys, 5);
    for n in 1..=12 {
        log.append(vec![usage("r1", n)]).unwrap();
    }
    // The attacker changes entry 2 and recomputes every later hash and the chain head: the
    // hash chain alone now verifies.
    behind_the_triggers(db, "UPDATE usage_log SET purpose = 'curiosity' WHERE seq = 2");
    let mut conn = db.conn();
    let rows: Vec<rekisteri_audit::UsageRow> =
        usage_log::table.order(usage_log::seq).select(usage_log::all_columns).load(&mut conn).unwrap();
    let mut previous = [0u8; 32];
    for mut row in rows {
        row.prev_hash = previous.to_vec();
        let hash = chain_step(&previous, &row.canonical());
        let sql_hash = rekisteri_crypto::to_hex(&hash);
        let sql_prev = rekisteri_crypto::to_hex(&previous);
        let (hash_literal, prev_literal) = match db.backend() {
            Backend::Sqlite => (format!("X'{sql_hash}'"), format!("X'{sql_prev}'")),
            Backend::Postgres => (format!("'\\x{sql_hash}'::bytea"), format!("'\\x{sql_prev}'::bytea")),
        };
        behind_the_triggers(db, &format!("UPDATE usage_log SET hash = {hash_literal}, prev_hash = {prev_literal} WHERE seq = {}", row.seq));
        if row.seq == 12 {
            conn.batch_execute(&format!("UPDATE audit_chains SET last_hash = {hash_literal} WHERE chain_id = 'usage:r1'")).unwrap();
        }
        previous = hash;
    }
    // Every link is consistent again; only the signed checkpoint at 5 tells.
    let report = verify(db, &keys, 5);
    assert_eq!(report.breaks.len(), 1, "{:?}", report.breaks);
    assert_eq!(report.breaks[0].seq, 5);
    assert!(report.breaks[0].reason.contains("differs from the signed checkpoint"), "{}", report.breaks[0]);
});

db_test!(fn au_5_removed_or_forged_checkpoints_are_found(db) {
    let keys = keyring();
    let log = writer(db, &keys, 5);
    for n in 1..=6 {
        log.append(vec![usage("r1", n)]).unwrap();
    }
    // Checked against another installation's key, the signatures fail.
    let other = keyring();
    let public = other.audit_signer().unwrap().public_key();
    let forged = rekisteri_audit::verify_all(&db.pool, &VerifyOptions { public_key: Some(&public), checkpoint_interval: 5, segment_entries: 3 }).unwrap();
    assert_eq!(forged.breaks.len(), 1);
    assert!(forged.breaks[0].reason.contains("signature is not valid"));
    let mut conn = db.conn();
    match db.backend() {
        Backend::Sqlite => conn.batch_execute("DROP TRIGGER audit_checkpoints_no_delete; DELETE FROM audit_checkpoints").unwrap(),
        Backend::Postgres => conn.batch_execute("SET session_replication_role = replica; DELETE FROM audit_checkpoints; SET session_replication_role = origin").unwrap(),
    }
    let report = verify(db, &keys, 5);
    assert_eq!(report.breaks.len(), 1);
    assert_eq!(report.breaks[0].seq, 5);
    assert!(report.breaks[0].reason.contains("checkpoint due here is missing"));
});

db_test!(fn au_5_entries_with_every_optional_field_set_or_empty_verify(db) {
    // Verification hashes each row as it decodes it; every kind of value, null or not, and
    // every form a stored time takes must come out as the writer encoded it.
    let keys = keyring();
    let log = writer(db, &keys, 3);
    let long = "ä".repeat(300);
    let mut entries = Vec::new();
    for at in [
        datetime!(2026-11-25 10:00 UTC),
        datetime!(2026-11-25 10:00:00.5 UTC),
        datetime!(2026-11-25 10:00:00.123456 UTC),
        datetime!(2026-11-25 23:59:59.000010 UTC),
    ] {
        let at = to_primitive(at);
        entries.push(NewEntry::Usage(UsageEntry {
            occurred_at: at,
            registrar_id: "r9".to_owned(),
            log_controller_id: "r9".to_owned(),
            subject_index: Some([0xa5; 32]),
            data_kind: "client".to_owned(),
            data_id: Some(String::new()),
            outcome: Outcome::Used,
            actor_kind: ActorKind::Staff,
            actor_id: "account-1".to_owned(),
            actor_name: Some(long.clone()),
            on_behalf_of: Some("account-2".to_owned()),
            service_unit_oid: Some("1.2.246.10.1234567.10.1".to_owned()),
            purpose: "service voucher decision".to_owned(),
            access_basis: AccessBasis::Role,
            special_reason: Some("emergency".to_owned()),
            request_id: "req".to_owned(),
            calling_system: Some("apotti".to_owned()),
        }));
        entries.push(NewEntry::Usage(UsageEntry {
            occurred_at: at,
            registrar_id: "r9".to_owned(),
            log_controller_id: "r9".to_owned(),
            subject_index: None,
            data_kind: String::new(),
            data_id: None,
            outcome: Outcome::Used,
            actor_kind: ActorKind::Staff,
            actor_id: String::new(),
            actor_name: None,
            on_behalf_of: None,
            service_unit_oid: None,
            purpose: String::new(),
            access_basis: AccessBasis::Role,
            special_reason: None,
            request_id: String::new(),
            calling_system: None,
        }));
        entries.push(NewEntry::Disclosure(DisclosureEntry {
            occurred_at: at,
            subject_index: None,
            recipient_name: Some(long.clone()),
            ..match disclosure("r9") {
                NewEntry::Disclosure(d) => d,
                _ => unreachable!(),
            }
        }));
        entries.push(NewEntry::Security(SecurityEvent {
            occurred_at: at,
            organisation_id: Some("org-1".to_owned()),
            event_type: "login".to_owned(),
            actor_kind: ActorKind::Staff,
            actor_id: Some("account-1".to_owned()),
            details: serde_json::json!({ "note": long }),
            request_id: Some("req".to_owned()),
        }));
    }
    log.append(entries).unwrap();
    let report = verify(db, &keys, 3);
    assert!(report.intact(), "{:?}", report.breaks);
    assert_eq!(report.entries, 16);
    assert_eq!(report.chains, 3);
});

db_test!(fn au_5_a_field_set_to_null_and_malformed_links_are_found(db) {
    let keys = keyring();
    let log = writer(db, &keys, 0);
    for n in 1..=10 {
        log.append(vec![usage("r1", n), usage("r2", n), usage("r3", n)]).unwrap();
    }
    let short = match db.backend() {
        Backend::Sqlite => "X'00'",
        Backend::Postgres => "'\\x00'::bytea",
    };
    behind_the_triggers(db, "UPDATE usage_log SET actor_name = NULL WHERE chain_id = 'usage:r1' AND seq = 3");
    // Inside a segment (verify() cuts every 7 entries) and at the start of one.
    behind_the_triggers(db, &format!("UPDATE usage_log SET prev_hash = {short} WHERE chain_id = 'usage:r2' AND seq = 4"));
    behind_the_triggers(db, &format!("UPDATE usage_log SET prev_hash = {short} WHERE chain_id = 'usage:r3' AND seq = 8"));
    let report = verify(db, &keys, 0);
    let found: Vec<(&str, i64)> = report.breaks.iter().map(|b| (b.chain_id.as_str(), b.seq)).collect();
    assert_eq!(found, [("usage:r1", 3), ("usage:r2", 4), ("usage:r3", 8)], "{:?}", report.breaks);
    assert!(report.breaks[0].reason.contains("content does not match its hash"), "{}", report.breaks[0]);
    assert!(report.breaks[1].reason.contains("does not link"), "{}", report.breaks[1]);
    assert!(report.breaks[2].reason.contains("does not link"), "{}", report.breaks[2]);
});

db_test!(fn au_5_concurrent_writers_do_not_fork_the_chain(db) {
    let keys = keyring();
    // Two writers stand for two server processes; eight threads share them.
    let writers = [writer(db, &keys, 1000), writer(db, &keys, 1000)];
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let log = writers[thread % 2].clone();
            scope.spawn(move || {
                let registrar = if thread % 4 == 0 { "r1" } else { "r2" };
                for n in 0..1000 {
                    log.append(vec![usage(registrar, n)]).unwrap();
                }
            });
        }
    });
    let report = verify(db, &keys, 1000);
    assert!(report.intact(), "{:?}", report.breaks);
    assert_eq!(report.entries, 8000);
    let heads: Vec<(String, i64)> =
        audit_chains::table.order(audit_chains::chain_id).select((audit_chains::chain_id, audit_chains::last_seq)).load(&mut db.conn()).unwrap();
    assert_eq!(heads, vec![("usage:r1".to_owned(), 2000), ("usage:r2".to_owned(), 6000)]);
    assert_eq!(report.signed_checkpoints, 8, "2 on usage:r1, 6 on usage:r2");
});

#[derive(Debug)]
enum ReadError {
    Audit,
}

impl From<AuditError> for ReadError {
    fn from(_: AuditError) -> Self {
        ReadError::Audit
    }
}

db_test!(fn au_4_a_read_whose_log_entry_cannot_be_written_returns_no_data(db) {
    let keys = keyring();
    let log = writer(db, &keys, 0);
    let read = |log: &AuditLog| -> Result<String, ReadError> {
        log.audited_read(&mut db.conn(), |_conn| Ok::<_, ReadError>(("Virtanen, Matti".to_owned(), vec![usage("r1", 1)])))
    };
    assert_eq!(read(&log).unwrap(), "Virtanen, Matti");
    let mut conn = db.conn();
    match db.backend() {
        Backend::Sqlite => {
            for month in sqlite_months(&mut conn, "usage_log") {
                conn.batch_execute(&format!(
                    "CREATE TRIGGER refuse_log_{month} BEFORE INSERT ON {month} BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                ))
                .unwrap();
            }
        }
        Backend::Postgres => conn
            .batch_execute(
                "CREATE FUNCTION refuse_log() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql;
                 CREATE TRIGGER refuse_log BEFORE INSERT ON usage_log FOR EACH ROW EXECUTE FUNCTION refuse_log();",
            )
            .unwrap(),
    }
    assert!(matches!(read(&log), Err(ReadError::Audit)));
    // The failed group left nothing behind: not the entry, not an advanced head.
    let head: i64 = audit_chains::table.select(audit_chains::last_seq).first(&mut conn).unwrap();
    assert_eq!(head, 1);
    let _ = clock().now();
});

fn usage_at(registrar: &str, n: usize, at: time::OffsetDateTime) -> NewEntry {
    match usage(registrar, n) {
        NewEntry::Usage(mut e) => {
            e.occurred_at = to_primitive(at);
            NewEntry::Usage(e)
        }
        other => other,
    }
}

db_test!(fn au_8_retention_deletes_expired_entries_and_the_rest_still_verifies(db) {
    let keys = keyring();
    let log = writer(db, &keys, 3);
    for n in 1..=4 {
        log.append(vec![usage_at("r1", n, datetime!(2014-06-01 12:00 UTC))]).unwrap();
    }
    for n in 5..=7 {
        log.append(vec![usage_at("r1", n, datetime!(2026-11-20 12:00 UTC))]).unwrap();
    }
    log.append(vec![usage_at("r2", 1, datetime!(2026-11-20 12:00 UTC))]).unwrap();
    let now = datetime!(2026-11-25 03:00 UTC);
    let cutoff = to_primitive(now.replace_year(2014).unwrap());
    let mut own = db.pool.connect_unpooled().unwrap();
    let report = rekisteri_audit::retention::run(&mut own, cutoff, to_primitive(now)).unwrap();
    assert_eq!(report, rekisteri_audit::retention::RetentionReport { chains_cut: 1, entries_deleted: 4 });
    let left: Vec<i64> = usage_log::table.filter(usage_log::chain_id.eq("usage:r1")).order(usage_log::seq).select(usage_log::seq).load(&mut db.conn()).unwrap();
    assert_eq!(left, vec![5, 6, 7]);
    let report = verify(db, &keys, 3);
    assert!(report.intact(), "{:?}", report.breaks);
    assert_eq!(report.entries, 3 + 1 + 1, "r1's rest, r2, and the run's own security event");
    // The run recorded itself.
    let events: Vec<(String, String)> = rekisteri_db::schema::security_events::table
        .select((rekisteri_db::schema::security_events::event_type, rekisteri_db::schema::security_events::details))
        .load(&mut db.conn())
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "audit_retention_run");
    assert!(events[0].1.contains("\"entries_deleted\":4"), "{}", events[0].1);
    // The right to delete stayed with the run: a pooled connection is still refused.
    assert!(db.conn().batch_execute("DELETE FROM usage_log").is_err());
    assert_eq!(usage_log::table.count().get_result::<i64>(&mut db.conn()).unwrap(), 4);
});

// The run deletes in ranges of sequence numbers (memory stays flat over 10 000 000 entries);
// ranges that do not divide the expired prefix evenly still delete all of it and nothing more.
db_test!(fn au_8_retention_in_ranges_deletes_the_whole_expired_prefix_and_nothing_more(db) {
    let keys = keyring();
    let log = writer(db, &keys, 0);
    // The month of the cut-off: on SQLite its table stays, and the run deletes the entries.
    for n in 1..=10 {
        log.append(vec![usage_at("r1", n, datetime!(2014-11-01 12:00 UTC))]).unwrap();
    }
    for n in 11..=12 {
        log.append(vec![usage_at("r1", n, datetime!(2026-11-20 12:00 UTC))]).unwrap();
    }
    let now = datetime!(2026-11-25 03:00 UTC);
    let cutoff = to_primitive(now.replace_year(2014).unwrap());
    let mut own = db.pool.connect_unpooled().unwrap();
    let report = rekisteri_audit::retention::run_in_ranges(&mut own, cutoff, to_primitive(now), 3).unwrap();
    assert_eq!(report, rekisteri_audit::retention::RetentionReport { chains_cut: 1, entries_deleted: 10 });
    let left: Vec<i64> = usage_log::table.filter(usage_log::chain_id.eq("usage:r1")).order(usage_log::seq).select(usage_log::seq).load(&mut db.conn()).unwrap();
    assert_eq!(left, vec![11, 12]);
    assert!(verify(db, &keys, 0).intact());
});

// Retention drops a month whose entries all lie in the chains' expired prefixes whole (SQLite:
// one table per month, as PostgreSQL's partitions), and deletes the entries of a month that also
// holds entries still kept.
db_test!(fn au_8_retention_drops_a_month_past_retention_whole_and_keeps_one_another_chain_still_needs(db) {
    let keys = keyring();
    let log = writer(db, &keys, 0);
    let append = |registrar: &str, n: usize, at: time::OffsetDateTime| log.append(vec![usage_at(registrar, n, at)]).unwrap();
    // r1 and r3: March 2014 wholly past retention; r1 goes on in the cut-off's month and today.
    for n in 1..=3 {
        append("r1", n, datetime!(2014-03-10 12:00 UTC));
    }
    append("r3", 1, datetime!(2014-03-20 12:00 UTC));
    append("r3", 2, datetime!(2014-03-21 12:00 UTC));
    append("r1", 4, datetime!(2014-11-10 12:00 UTC));
    append("r1", 5, datetime!(2014-11-24 12:00 UTC));
    append("r1", 6, datetime!(2026-11-20 12:00 UTC));
    // r2's second entry carries an old time but follows one that is kept: not in its prefix, so
    // April 2014 must stay although every entry in it is older than the cut-off.
    append("r2", 1, datetime!(2026-11-20 12:00 UTC));
    append("r2", 2, datetime!(2014-04-02 12:00 UTC));
    let now = datetime!(2026-11-25 03:00 UTC);
    let cutoff = to_primitive(now.replace_year(2014).unwrap());
    let mut own = db.pool.connect_unpooled().unwrap();
    let report = rekisteri_audit::retention::run(&mut own, cutoff, to_primitive(now)).unwrap();
    assert_eq!(report, rekisteri_audit::retention::RetentionReport { chains_cut: 2, entries_deleted: 7 });
    let left: Vec<(String, i64)> = usage_log::table
        .order((usage_log::chain_id, usage_log::seq))
        .select((usage_log::chain_id, usage_log::seq))
        .load(&mut db.conn())
        .unwrap();
    let left: Vec<(&str, i64)> = left.iter().map(|(c, s)| (c.as_str(), *s)).collect();
    assert_eq!(left, vec![("usage:r1", 6), ("usage:r2", 1), ("usage:r2", 2)]);
    if db.backend() == Backend::Sqlite {
        let months = sqlite_months(&mut db.conn(), "usage_log");
        assert_eq!(months, vec!["usage_log_2014_04", "usage_log_2014_11", "usage_log_2026_11"]);
    }
    let report = verify(db, &keys, 0);
    assert!(report.intact(), "{:?}", report.breaks);
    // The run's own event went into the current month and the view shows it.
    assert_eq!(rekisteri_db::schema::security_events::table.count().get_result::<i64>(&mut db.conn()).unwrap(), 1);
});

db_test!(fn au_7_an_export_verifies_with_the_outside_script(db) {
    let keys = keyring();
    let log = writer(db, &keys, 0);
    for n in 1..=20 {
        log.append(vec![usage("r1", n)]).unwrap();
    }
    log.append(vec![disclosure("r1"), security()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/verify-audit-export.py");
    let run = |path: &std::path::Path, extra: &[&str]| -> (bool, String) {
        let output = std::process::Command::new("python3").arg(script).arg(path).args(extra).output().expect("python3");
        (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
    };
    for chain in ["usage:r1", "disclosure:r1", "security:platform"] {
        let path = dir.path().join(format!("{chain}.jsonl"));
        let mut file = std::fs::File::create(&path).unwrap();
        rekisteri_audit::export::export_chain(&mut db.conn(), chain, 1, i64::MAX, &mut file).unwrap();
        let (ok, out) = run(&path, &[]);
        assert!(ok, "{chain}: {out}");
        assert!(out.starts_with("OK "), "{out}");
    }
    // A later range links to the hash it continues from.
    let path = dir.path().join("tail.jsonl");
    let mut file = std::fs::File::create(&path).unwrap();
    assert_eq!(rekisteri_audit::export::export_chain(&mut db.conn(), "usage:r1", 11, 20, &mut file).unwrap(), 10);
    let hash_10: Vec<u8> = usage_log::table.filter(usage_log::seq.eq(10).and(usage_log::chain_id.eq("usage:r1"))).select(usage_log::hash).first(&mut db.conn()).unwrap();
    let (ok, out) = run(&path, &["--previous-hash", &rekisteri_crypto::to_hex(&hash_10)]);
    assert!(ok, "{out}");
    let (ok, out) = run(&path, &["--previous-hash", &"00".repeat(32)]);
    assert!(!ok);
    assert!(out.contains("entry 11 (line 1): does not link"), "{out}");
    // An edited line is named.
    let text = std::fs::read_to_string(dir.path().join("usage:r1.jsonl")).unwrap();
    let edited = text.replacen("\"purpose\":\"service voucher decision\"", "\"purpose\":\"curiosity\"", 4);
    let edited = edited.replacen("\"purpose\":\"curiosity\"", "\"purpose\":\"service voucher decision\"", 3);
    let path = dir.path().join("edited.jsonl");
    std::fs::write(&path, edited).unwrap();
    let (ok, out) = run(&path, &[]);
    assert!(!ok);
    assert!(out.contains("chain usage:r1 entry 4 (line 4): its content does not match its hash"), "{out}");
});

fn context() -> rekisteri_audit::AuditContext {
    rekisteri_audit::AuditContext {
        registrar_id: "r1".to_owned(),
        log_controller_id: "p1".to_owned(),
        actor_kind: ActorKind::Staff,
        actor_id: "account-7".to_owned(),
        actor_name: Some("Hoitaja Hanna".to_owned()),
        on_behalf_of: None,
        service_unit_oid: Some("1.2.246.10.1234567.10.1".to_owned()),
        purpose: "home care".to_owned(),
        access_basis: AccessBasis::CareRelationship,
        special_reason: None,
        request_id: "req-ctx".to_owned(),
        calling_system: Some("apotti".to_owned()),
    }
}

db_test!(fn au_1_personal_data_is_read_only_with_a_context_that_explains_the_read(db) {
    use rekisteri_audit::DataUse;
    let keys = keyring();
    let log = writer(db, &keys, 0);
    let at = to_primitive(datetime!(2026-11-25 10:00 UTC));
    let read = |context: &rekisteri_audit::AuditContext| -> Result<String, ReadError> {
        log.read_personal_data(&mut db.conn(), context, at, |_conn| {
            let found = DataUse { subject_index: Some([9; 32]), data_kind: "client".to_owned(), data_id: Some("c-1".to_owned()), outcome: Outcome::Used };
            let searched = DataUse { subject_index: Some([8; 32]), data_kind: "client".to_owned(), data_id: None, outcome: Outcome::NotFound };
            Ok::<_, ReadError>(("Virtanen, Matti".to_owned(), vec![found, searched]))
        })
    };
    assert_eq!(read(&context()).unwrap(), "Virtanen, Matti");
    type Logged = (String, String, String, String, Option<String>, String, Option<String>);
    let rows: Vec<Logged> = usage_log::table
        .order(usage_log::seq)
        .select((usage_log::actor_id, usage_log::purpose, usage_log::access_basis, usage_log::outcome, usage_log::data_id, usage_log::request_id, usage_log::calling_system))
        .load(&mut db.conn())
        .unwrap();
    assert_eq!(rows, vec![
        ("account-7".into(), "home care".into(), "care_relationship".into(), "used".into(), Some("c-1".into()), "req-ctx".into(), Some("apotti".into())),
        ("account-7".into(), "home care".into(), "care_relationship".into(), "not_found".into(), None, "req-ctx".into(), Some("apotti".into())),
    ]);
    // The entries are in the registrar's chain and name the acting user's organisation as
    // their log controller (AU-1).
    let kept: Vec<(String, String, String)> = usage_log::table
        .order(usage_log::seq)
        .select((usage_log::chain_id, usage_log::registrar_id, usage_log::log_controller_id))
        .load(&mut db.conn())
        .unwrap();
    assert_eq!(kept, vec![("usage:r1".into(), "r1".into(), "p1".into()); 2]);
    // A read that cannot say why, or by whom, gets nothing and logs nothing.
    for broken in [
        rekisteri_audit::AuditContext { purpose: " ".into(), ..context() },
        rekisteri_audit::AuditContext { actor_id: String::new(), ..context() },
        rekisteri_audit::AuditContext { log_controller_id: " ".into(), ..context() },
        rekisteri_audit::AuditContext { request_id: String::new(), ..context() },
        rekisteri_audit::AuditContext { access_basis: AccessBasis::SpecialReason, ..context() },
    ] {
        assert!(matches!(read(&broken), Err(ReadError::Audit)), "{broken:?}");
    }
    let count: i64 = usage_log::table.count().get_result(&mut db.conn()).unwrap();
    assert_eq!(count, 2);
});

db_test!(fn au_4_the_writer_needs_no_pooled_connection_so_a_full_pool_cannot_stall_it(db) {
    // Requests hold their pooled connection while they wait for the writer. With every pooled
    // connection held, a writer that needed one of them would wait until the pool timed out.
    let pool = rekisteri_db::Pool::open(
        db.pool.url(),
        &rekisteri_db::PoolOptions {
            max_size: 1,
            connection_timeout: std::time::Duration::from_millis(300),
            ..rekisteri_db::PoolOptions::default()
        },
    )
    .unwrap();
    let keys = keyring();
    let log = AuditLog::start(pool.clone(), clock(), Some(keys.clone()), WriterOptions::default()).unwrap();
    let held = pool.get().unwrap();
    assert!(pool.get().is_err(), "the pool's one connection is taken");
    log.append(vec![usage("registrar-1", 1)]).unwrap();
    drop(held);
    let logged: i64 = usage_log::table.count().get_result(&mut db.conn()).unwrap();
    assert_eq!(logged, 1);
});

// A month's table that is missing from its log's view (made by hand, or restored from a copy of
// another file) is found and shown again by the start-up's `ensure_partitions`: no entry stays
// invisible to the readers, the verification included.
db_test!(fn au_5_a_months_table_missing_from_the_view_is_put_back_at_start(db) {
    if db.backend() != Backend::Sqlite {
        return;
    }
    let keys = keyring();
    writer(db, &keys, 0).append(vec![usage("r1", 1), usage("r1", 2)]).unwrap();
    let month = sqlite_months(&mut db.conn(), "usage_log").pop().unwrap();
    db.conn()
        .batch_execute("DROP VIEW usage_log; CREATE VIEW usage_log AS SELECT * FROM usage_log_legacy")
        .unwrap();
    assert_eq!(usage_log::table.count().get_result::<i64>(&mut db.conn()).unwrap(), 0);
    rekisteri_audit::retention::ensure_partitions(&mut db.conn(), time::macros::date!(2026 - 11 - 25)).unwrap();
    assert_eq!(usage_log::table.count().get_result::<i64>(&mut db.conn()).unwrap(), 2);
    assert_eq!(sqlite_months(&mut db.conn(), "usage_log"), vec![month]);
    assert!(verify(db, &keys, 0).intact());
});
