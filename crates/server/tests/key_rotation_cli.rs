//! Key rotation (PL-6) with the binary, as an operator runs it: a demo register served while
//! `keys rotate` runs, killed with SIGKILL inside a batch's transaction, resumed, then the old
//! data key retired and the server restarted with a key file that no longer holds it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use diesel::RunQueryDsl;
use rekisteri_db::db_test;

mod common;

use common::{Served, demo_token as token, succeeded};

fn rekisteri(dir: &Path, database_url: &str) -> Command {
    let mut command = common::rekisteri_on(dir, database_url);
    command
        .env("REKISTERI_DATA_DIR", dir)
        .env("REKISTERI_RECORDINGS_DIR", dir.join("recordings"))
        // A heartbeat a second, so a rotation's waits for the server are short.
        .env("REKISTERI_INSTANCE_LEASE_SECS", "3");
    command
}

fn serve(dir: &Path, database_url: &str) -> Served {
    common::serve(rekisteri(dir, database_url))
}

fn identity_code(n: u32) -> String {
    // Born 1 January 1950; individual numbers from 002 up.
    let individual = 2 + n;
    let nine = 10150 * 1000 + individual;
    format!(
        "010150-{individual:03}{}",
        rekisteri_core::identity_code::check_character(nine)
    )
}

/// The clients created (id, identity code) and every unexpected answer.
type WriterReport = (Vec<(String, String)>, Vec<String>);

/// Creates clients and reads each back while the rotation runs; returns what it created (id,
/// identity code) and every answer that was not the expected one.
fn write_and_read(
    address: String,
    demo: serde_json::Value,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<WriterReport> {
    std::thread::spawn(move || {
        let http = reqwest::blocking::Client::new();
        let rid = demo["first_client"]["registrar"].as_str().unwrap().to_owned();
        let provider = demo["provider"]["id"].as_str().unwrap().to_owned();
        let handler = token(&demo, "client_handler");
        let (mut created, mut wrong) = (Vec::new(), Vec::new());
        let mut n = 0;
        // At least a few rounds, whatever the interleaving.
        while !stop.load(Ordering::SeqCst) || n < 5 {
            let code = identity_code(n);
            n += 1;
            let body = serde_json::json!({
                "identity_code": code, "first_names": "Kierto", "surname": format!("Testaaja{n}"),
                "language": "fi", "home_municipality": "837",
                "services": [{"kind": "service_voucher", "service_type": "home_care",
                    "service_name": "Kotihoito", "quantity": 10, "unit": "hour", "unit_value_cents": 3000,
                    "valid_from": "2026-01-01", "valid_to": "2026-12-31", "provider_id": provider,
                    "decision_ref": format!("KR-{n}")}]
            });
            let answer = http
                .post(format!("{address}/v1/registrars/{rid}/clients"))
                .bearer_auth(&handler)
                .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
                .json(&body)
                .send()
                .unwrap();
            if answer.status().as_u16() != 201 {
                wrong.push(format!(
                    "create {}: {}",
                    answer.status(),
                    answer.text().unwrap_or_default()
                ));
                continue;
            }
            let id = answer.json::<serde_json::Value>().unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let read = http
                .get(format!("{address}/v1/registrars/{rid}/clients/{id}"))
                .bearer_auth(&handler)
                .send()
                .unwrap();
            let read_code = read.json::<serde_json::Value>().unwrap()["identity_code"].clone();
            if read_code != code.as_str() {
                wrong.push(format!("read {id}: {read_code}"));
            }
            created.push((id, code));
        }
        (created, wrong)
    })
}

/// Every place in the database that holds a ciphertext header naming key `k1` (`01 02 6b 31`),
/// as raw bytes or as the hex the change history keeps: found by the database, not by our code.
fn places_naming_k1(db: &rekisteri_db::testing::TestDatabase) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Column {
        #[diesel(sql_type = diesel::sql_types::Text)]
        table_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        column_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        data_type: String,
    }
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = db.conn();
    let mut found = Vec::new();
    match &mut *conn {
        rekisteri_db::DbConnection::Sqlite(inner) => {
            let columns: Vec<Column> = diesel::sql_query(
                "SELECT m.name AS table_name, p.name AS column_name, p.type AS data_type \
                 FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table'",
            )
            .load(inner)
            .unwrap();
            for c in columns {
                let n: i64 = diesel::sql_query(format!(
                    "SELECT COUNT(*) AS n FROM \"{t}\" WHERE instr(CAST(\"{c}\" AS BLOB), X'01026B31') > 0 \
                     OR instr(upper(CAST(\"{c}\" AS TEXT)), '01026B31') > 0",
                    t = c.table_name,
                    c = c.column_name
                ))
                .get_result::<Count>(inner)
                .unwrap()
                .n;
                if n > 0 {
                    found.push(format!("{}.{} ({}): {n}", c.table_name, c.column_name, c.data_type));
                }
            }
        }
        rekisteri_db::DbConnection::Postgres(inner) => {
            let columns: Vec<Column> = diesel::sql_query(
                "SELECT table_name::text AS table_name, column_name::text AS column_name, data_type::text AS data_type \
                 FROM information_schema.columns WHERE table_schema = current_schema() \
                 AND data_type IN ('bytea', 'jsonb', 'text')",
            )
            .load(inner)
            .unwrap();
            for c in columns {
                let condition = match c.data_type.as_str() {
                    "bytea" => format!("position('\\x01026b31'::bytea in \"{}\") > 0", c.column_name),
                    _ => format!("lower(\"{}\"::text) LIKE '%01026b31%'", c.column_name),
                };
                let n: i64 = diesel::sql_query(format!(
                    "SELECT COUNT(*) AS n FROM \"{}\" WHERE {condition}",
                    c.table_name
                ))
                .get_result::<Count>(inner)
                .unwrap()
                .n;
                if n > 0 {
                    found.push(format!("{}.{} ({}): {n}", c.table_name, c.column_name, c.data_type));
                }
            }
        }
    }
    found
}

db_test!(fn pl_6_rotation_killed_mid_batch_resumes_and_leaves_nothing_under_the_old_key(db) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    rekisteri_crypto::Keyring::create_file(&home.join("keys.toml")).unwrap();
    let demo: serde_json::Value = serde_json::from_str(&succeeded(
        rekisteri(home, &db.url).args(["demo", "seed", "--json"]).output().unwrap(),
        "demo seed",
    ))
    .unwrap();
    assert!(places_naming_k1(db).len() > 5, "the demo's values are sealed under k1");
    let served = serve(home, &db.url);
    // A listening request leaves a processing memo, append-only but for a rotation's reseal.
    let http = reqwest::blocking::Client::new();
    let rid = demo["first_client"]["registrar"].as_str().unwrap();
    let supervisor = token(&demo, "call_supervisor");
    let contacts: serde_json::Value = http
        .get(format!("{}/v1/registrars/{rid}/contacts", served.address))
        .bearer_auth(&supervisor)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let recorded = contacts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| !c["recording"].is_null())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let grant = http
        .post(format!(
            "{}/v1/registrars/{rid}/contacts/{recorded}/listening-requests",
            served.address
        ))
        .bearer_auth(&supervisor)
        .json(&serde_json::json!({"reason_category": "verify_agreement", "reason": "Tarkistetaan sovittu asia ennen avainten vaihtoa."}))
        .send()
        .unwrap();
    assert_eq!(grant.status().as_u16(), 201);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = write_and_read(served.address.clone(), demo.clone(), stop.clone());

    // The first run stops inside its third changing batch, before the commit, and is killed there.
    let mut first = rekisteri(home, &db.url)
        .args(["keys", "rotate", "--batch", "3"])
        .env("REKISTERI_FAULT_PAUSE_IN_ROTATION_BATCH", "3")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(first.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    loop {
        let line = stderr.next().expect("the rotation ended before the fault point").unwrap();
        if line.starts_with("fault: paused") {
            break;
        }
        said.push(line);
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let status = succeeded(rekisteri(home, &db.url).args(["keys", "status"]).output().unwrap(), "status");
    assert!(status.contains(": switched (k1 → k2, b1 → b2)"), "{status}\n{said:?}");

    // Resumed, it finishes; the server keeps answering throughout.
    let finished = succeeded(
        rekisteri(home, &db.url).args(["keys", "rotate", "--batch", "3"]).output().unwrap(),
        "resumed rotation",
    );
    assert!(finished.contains("finished"), "{finished}");
    stop.store(true, Ordering::SeqCst);
    let (created, wrong) = writer.join().unwrap();
    assert_eq!(wrong, Vec::<String>::new(), "every write and read during the rotation succeeded");
    assert!(created.len() >= 5);

    // Retiring the active key is refused; the old data key goes.
    let refused = rekisteri(home, &db.url).args(["keys", "retire", "k2"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    succeeded(rekisteri(home, &db.url).args(["keys", "retire", "k1"]).output().unwrap(), "retire k1");
    let key_file = std::fs::read_to_string(home.join("keys.toml")).unwrap();
    assert!(!key_file.contains("k1 ="), "{key_file}");
    assert_eq!(places_naming_k1(db), Vec::<String>::new(), "no row names k1");
    drop(served);

    // With only the new data key, the server reads every client and finds them by identity code.
    let served = serve(home, &db.url);
    let handler = token(&demo, "client_handler");
    let mut everyone = created.clone();
    everyone.push((
        demo["first_client"]["id"].as_str().unwrap().to_owned(),
        demo["first_client"]["identity_code"].as_str().unwrap().to_owned(),
    ));
    for (id, code) in &everyone {
        let read: serde_json::Value = http
            .get(format!("{}/v1/registrars/{rid}/clients/{id}", served.address))
            .bearer_auth(&handler)
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(read["identity_code"], code.as_str(), "{read}");
        let found = http
            .post(format!("{}/v1/registrars/{rid}/clients/search", served.address))
            .bearer_auth(&handler)
            .json(&serde_json::json!({ "identity_code": code }))
            .send()
            .unwrap();
        assert_eq!(found.status().as_u16(), 200);
        let found: serde_json::Value = found.json().unwrap();
        assert_eq!(found["items"][0]["id"], id.as_str(), "{found}");
    }
    drop(served);
    let verified = succeeded(rekisteri(home, &db.url).args(["audit", "verify"]).output().unwrap(), "audit verify");
    assert!(verified.contains("intact"), "{verified}");
    let log = succeeded(rekisteri(home, &db.url).args(["keys", "status"]).output().unwrap(), "status");
    assert!(log.contains("keys held: data [\"k2\"]"), "{log}");

    // Start, switch, the quarter milestones, end and retirement are security events.
    use rekisteri_db::schema::security_events as events;
    use diesel::prelude::*;
    let logged: Vec<(String, String)> = events::table
        .filter(events::event_type.like("key_%"))
        .order((events::occurred_at, events::seq))
        .select((events::event_type, events::details))
        .load(&mut *db.conn())
        .unwrap();
    let kinds: Vec<&str> = logged.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"key_rotation_started"), "{logged:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "key_rotation_switched").count(), 1, "{logged:?}");
    assert!(kinds.iter().filter(|k| **k == "key_rotation_progress").count() >= 3, "{logged:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "key_rotation_finished").count(), 1, "{logged:?}");
    assert_eq!(kinds.last(), Some(&"key_retired"), "{logged:?}");
    assert!(logged.iter().any(|(kind, details)| kind == "key_retired" && details.contains("\"k1\"")));
});
