//! The register of call and contact recordings (CA-1..CA-14), over HTTP on both databases:
//! queues and listening rights, contacts pushed by a telephony system, audio streamed in and
//! out, listening by reason with its memo, disclosure, legal hold, retention and reports.

use diesel::prelude::*;
use rekisteri_core::Clock;
use rekisteri_db::schema::{contacts, disclosure_log, recordings, usage_log};
use rekisteri_tests::{TestApp, TestAppOptions, USER_PASSWORD, app_test, assert_problem, security_event_count};
use serde_json::{Value, json};
use time::macros::datetime;

const CHUNK: usize = 64 * 1024;

struct World {
    admin: String,
    county: String,
    other_county: String,
    unit_a: String,
    main_user: String,
    agent_a: String,
    agent_b: String,
    agent_b_id: String,
    supervisor_a: String,
    supervisor_a_id: String,
    supervisor_b: String,
    auditor: String,
    stranger: String,
    telephony: String,
    queue_a: String,
    queue_b: String,
    unrecorded: String,
}

fn unit(app: &TestApp, admin: &str, org: &str, oid: &str, name: &str) -> String {
    let response = app.post_as(
        admin,
        &format!("/v1/organisations/{org}/service-units"),
        &json!({"oid": oid, "name": name}),
    );
    assert_eq!(response.status().as_u16(), 201);
    response.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned()
}

fn join(app: &TestApp, admin: &str, account: &str, unit: &str) {
    let response = app.post_as(
        admin,
        &format!("/v1/accounts/{account}/service-units"),
        &json!({"service_unit_id": unit}),
    );
    assert_eq!(response.status().as_u16(), 201, "{}", response.text().unwrap());
}

fn api_client(app: &TestApp, admin: &str, organisation: &str, scopes: &[&str]) -> String {
    crate::isolation::api_client(app, admin, organisation, scopes).1
}

fn queue(app: &TestApp, token: &str, rid: &str, body: &Value) -> String {
    let response = app.post_as(token, &format!("/v1/registrars/{rid}/queues"), body);
    assert_eq!(response.status().as_u16(), 201);
    response.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned()
}

fn world(app: &TestApp) -> World {
    app.clock.set(datetime!(2026-03-02 08:00 UTC));
    let admin = app.bootstrap_admin();
    let organisation = |name: &str, oid: &str| app.organisation(&admin, name, "wellbeing_services_county", oid);
    let county = organisation("Pirkanmaan hyvinvointialue", "1.2.246.10.5001");
    let other_county = organisation("Satakunnan hyvinvointialue", "1.2.246.10.5002");
    let unit_a = unit(app, &admin, &county, "1.2.246.10.5001.10.1", "Hammashoitola");
    let unit_b = unit(app, &admin, &county, "1.2.246.10.5001.10.2", "Hoitajavastaanotto");
    let (_, main_user) = app.add_user(&admin, "paakayttaja@pirha.fi", &county, "main_user");
    let user = |email: &str, org: &str, role: &str, unit: Option<&str>| {
        let (id, _) = app.add_user(&admin, email, org, role);
        if let Some(unit) = unit {
            join(app, &admin, &id, unit);
        }
        (id, app.token(email, USER_PASSWORD))
    };
    let (_, agent_a) = user("agentti.a@pirha.fi", &county, "call_agent", Some(&unit_a));
    let (agent_b_id, agent_b) = user("agentti.b@pirha.fi", &county, "call_agent", Some(&unit_b));
    let (supervisor_a_id, supervisor_a) = user("esimies.a@pirha.fi", &county, "call_supervisor", Some(&unit_a));
    let (_, supervisor_b) = user("esimies.b@pirha.fi", &county, "call_supervisor", Some(&unit_b));
    let (_, auditor) = user("tietosuoja@pirha.fi", &county, "auditor", None);
    let (_, stranger) = user("esimies@satakunta.fi", &other_county, "call_supervisor", None);
    let telephony = api_client(app, &admin, &county, &["calls:write"]);
    let announcement = "Puhelu nauhoitetaan laadun varmistamiseksi.";
    let queue_a = queue(
        app,
        &main_user,
        &county,
        &json!({"name": "Hammashoidon ajanvaraus", "service_unit_id": unit_a, "recorded": true, "recording_announcement": announcement}),
    );
    let queue_b = queue(
        app,
        &main_user,
        &county,
        &json!({"name": "Hoitajan puhelinneuvonta", "service_unit_id": unit_b, "recorded": true, "recording_announcement": announcement}),
    );
    let unrecorded = queue(
        app,
        &main_user,
        &county,
        &json!({"name": "Yleinen neuvonta", "service_unit_id": unit_a, "recorded": false}),
    );
    World {
        admin,
        county,
        other_county,
        unit_a,
        main_user,
        agent_a,
        agent_b,
        agent_b_id,
        supervisor_a,
        supervisor_a_id,
        supervisor_b,
        auditor,
        stranger,
        telephony,
        queue_a,
        queue_b,
        unrecorded,
    }
}

fn push(app: &TestApp, w: &World, body: &Value) -> Value {
    let response = app.post_as(&w.telephony, &format!("/v1/registrars/{}/contacts", w.county), body);
    assert_eq!(response.status().as_u16(), 201, "{}", response.text().unwrap());
    response.json().unwrap()
}

fn call(queue: &str, number: &str) -> Value {
    json!({"kind": "call", "queue_id": queue, "caller_number": number, "started_at": "2026-03-02T07:30:00Z",
        "wait_seconds": 40, "duration_seconds": 180, "home_municipality": "837"})
}

/// A WAV file of `len` bytes: a real header, then deterministic noise with `marker` planted
/// at the start, in the middle and at the end of the samples.
fn wav(len: usize, marker: &[u8; 32]) -> Vec<u8> {
    let data_len = len - 44;
    let mut out = rekisteri_recordings::wav_header(data_len as u32);
    out.reserve(data_len);
    let mut state: u64 = u64::from_le_bytes(marker[..8].try_into().unwrap()) | 1;
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push((state >> 24) as u8);
    }
    for at in [44, 44 + data_len / 2, len - 32] {
        out[at..at + 32].copy_from_slice(marker);
    }
    out
}

fn marker(n: u8) -> [u8; 32] {
    let mut m = *b"rekisteri-ca-test-marker-000000!";
    m[28] = b'0' + n;
    m
}

fn upload(app: &TestApp, token: &str, rid: &str, contact: &str, body: Vec<u8>) -> reqwest::blocking::Response {
    app.client
        .put(app.url(&format!("/v1/registrars/{rid}/contacts/{contact}/recording")))
        .bearer_auth(token)
        .header("Content-Type", "audio/wav")
        .body(body)
        .send()
        .unwrap()
}

fn listen(app: &TestApp, token: &str, rid: &str, contact: &str) -> reqwest::blocking::Response {
    app.post_as(
        token,
        &format!("/v1/registrars/{rid}/contacts/{contact}/listening-requests"),
        &json!({"reason_category": "complaint_or_claim", "reason": "Asiakas on tehnyt muistutuksen puhelun sisällöstä."}),
    )
}

/// A call of +358 40 111 1111 in queue A with `len` bytes of recorded audio (marked 1); returns
/// the contact's id.
fn recorded_call(app: &TestApp, w: &World, len: usize) -> String {
    let contact = push(app, w, &call(&w.queue_a, "+358401111111"));
    let id = contact["id"].as_str().unwrap().to_owned();
    assert_eq!(
        upload(app, &w.telephony, &w.county, &id, wav(len, &marker(1)))
            .status()
            .as_u16(),
        201
    );
    id
}

fn grant(app: &TestApp, token: &str, rid: &str, contact: &str) -> Value {
    let response = listen(app, token, rid, contact);
    assert_eq!(response.status().as_u16(), 201, "{}", response.text().unwrap());
    response.json().unwrap()
}

fn audio(app: &TestApp, token: &str, grant: &Value, range: Option<&str>) -> reqwest::blocking::Response {
    let mut request = app
        .client
        .get(app.url(grant["audio_url"].as_str().unwrap()))
        .bearer_auth(token);
    if let Some(range) = range {
        request = request.header("Range", range);
    }
    request.send().unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every file under `dir`, read whole.
fn files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
    out
}

fn assert_no_clear_audio(dir: &std::path::Path, markers: &[[u8; 32]]) {
    for (path, bytes) in files(dir) {
        for m in markers {
            assert!(
                !bytes.windows(32).any(|w| w == m),
                "{} holds uploaded audio in clear",
                path.display()
            );
        }
    }
}

fn run_retention(app: &TestApp) -> rekisteri_calls::retention::CallsRetentionReport {
    let register = rekisteri_calls::CallRegister {
        keyring: app.keyring.clone(),
        audit: app.audit.clone(),
    };
    let executor = actix_web::rt::Runtime::new().unwrap();
    let audio = app.audio.clone();
    let mut destroy = |key: &str| executor.block_on(audio.delete(key)).map_err(|e| e.to_string());
    let mut handled = 0;
    let mut progress = |n: u64| handled += n;
    let mut conn = app.db.pool.connect_unpooled().unwrap();
    rekisteri_calls::retention::run(
        &mut conn,
        &register,
        app.clock.now(),
        "test-run",
        &mut destroy,
        &mut progress,
    )
    .unwrap()
}

app_test!(fn ca_1_queues_and_listening_rights(app) {
    let w = world(app);
    let path = format!("/v1/registrars/{}/queues", w.county);
    // A recorded queue must say what its callers hear.
    let refused = app.post_as(&w.main_user, &path, &json!({"name": "X", "service_unit_id": w.unit_a, "recorded": true}));
    let body = assert_problem(refused, 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "recording_announcement");
    // Only a main user configures queues; a call agent may not.
    let refused = app.post_as(&w.agent_a, &path, &json!({"name": "Y", "service_unit_id": w.unit_a, "recorded": false}));
    assert_problem(refused, 403, "/problems/forbidden");
    // A queue hangs on a service unit of the registrar itself.
    let foreign_unit = unit(app, &w.admin, &w.other_county, "1.2.246.10.5002.10.1", "Muu");
    let refused = app.post_as(&w.main_user, &path, &json!({"name": "Z", "service_unit_id": foreign_unit, "recorded": false}));
    let body = assert_problem(refused, 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "service_unit_id");
    let listed: Value = app.get_as(&w.agent_a, &path).json().unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);
    // Recording is switched on with an announcement, as a security event; new calls state it.
    let unrecorded = format!("{path}/{}", w.unrecorded);
    let refused = app.patch_as(&w.main_user, &unrecorded, &json!({"recorded": true}));
    assert_eq!(assert_problem(refused, 422, "/problems/business-rule")["errors"][0]["field"], "recording_announcement");
    assert_problem(app.patch_as(&w.agent_a, &unrecorded, &json!({"recorded": false})), 403, "/problems/forbidden");
    let changed = app.patch_as(&w.main_user, &unrecorded, &json!({"recorded": true, "recording_announcement": "Puhelu nauhoitetaan."}));
    assert_eq!(changed.status().as_u16(), 200);
    assert_eq!(changed.json::<Value>().unwrap()["recorded"], true);
    assert_eq!(security_event_count(app, "call_queue_changed"), 1);
    let recorded_now = push(app, &w, &call(&w.unrecorded, "+358401111119"));
    assert_eq!(recorded_now["recording_announcement"], "Puhelu nauhoitetaan.");
    let changed = app.patch_as(&w.main_user, &unrecorded, &json!({"recorded": false}));
    assert_eq!(changed.status().as_u16(), 200);
    // Another registrar's user sees no queues at all.
    assert_problem(app.get_as(&w.stranger, &path), 404, "/problems/not-found");

    // The supervisor of the queue's unit listens by default; an agent of another unit does not,
    // until the registrar grants it by name (a security event), and no longer once revoked.
    let id = &recorded_call(app, &w, 1000);
    assert_eq!(listen(app, &w.supervisor_a, &w.county, id).status().as_u16(), 201);
    assert_problem(listen(app, &w.supervisor_b, &w.county, id), 403, "/problems/forbidden");
    assert_problem(listen(app, &w.agent_b, &w.county, id), 403, "/problems/forbidden");
    let grant_path = format!("/v1/registrars/{}/queues/{}/listeners/{}", w.county, w.queue_a, w.agent_b_id);
    let before = security_event_count(app, "listening_right_granted");
    let granted = app.request_as(reqwest::Method::PUT, &w.main_user, &grant_path, &[], None);
    assert_eq!(granted.status().as_u16(), 200);
    assert_eq!(security_event_count(app, "listening_right_granted"), before + 1);
    let again = app.request_as(reqwest::Method::PUT, &w.main_user, &grant_path, &[], None);
    assert_problem(again, 409, "/problems/conflict");
    let listed: Value = app.get_as(&w.main_user, &path).json().unwrap();
    let queue = listed["items"].as_array().unwrap().iter().find(|q| q["id"] == w.queue_a.as_str()).unwrap().clone();
    assert_eq!(queue["listeners"][0]["account_id"], w.agent_b_id.as_str());
    assert_eq!(listen(app, &w.agent_b, &w.county, id).status().as_u16(), 201);
    assert_eq!(app.delete_as(&w.main_user, &grant_path).status().as_u16(), 204);
    assert_eq!(security_event_count(app, "listening_right_revoked"), 1);
    assert_problem(listen(app, &w.agent_b, &w.county, id), 403, "/problems/forbidden");
    assert_problem(app.delete_as(&w.main_user, &grant_path), 404, "/problems/not-found");
});

app_test!(fn ca_2_contacts_pushed_by_telephony(app) {
    let w = world(app);
    let path = format!("/v1/registrars/{}/contacts", w.county);
    let body = json!({"kind": "call", "queue_id": w.queue_a, "caller_number": "+358407654321", "secret_number": true,
        "agent_id": w.supervisor_a_id, "started_at": "2026-03-02T07:00:00Z", "duration_seconds": 95,
        "client_name": "Maija Meikäläinen", "client_identity_code": "131052-308T"});
    // A retried push with its key stores the contact once.
    let first = app.request_as(reqwest::Method::POST, &w.telephony, &path, &[("Idempotency-Key", "call-0001")], Some(&body));
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().unwrap();
    let retry = app.request_as(reqwest::Method::POST, &w.telephony, &path, &[("Idempotency-Key", "call-0001")], Some(&body));
    assert_eq!(retry.status().as_u16(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().unwrap()["id"], first["id"]);
    let stored: i64 = contacts::table.count().get_result(&mut app.db.conn()).unwrap();
    assert_eq!(stored, 1);
    let id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(first["answered"], true);
    // The announcement the caller heard is part of the recorded contact.
    assert_eq!(first["recording_announcement"], "Puhelu nauhoitetaan laadun varmistamiseksi.");

    // Personal fields are ciphertext at rest.
    let (number, name): (Option<Vec<u8>>, Option<Vec<u8>>) = contacts::table
        .select((contacts::caller_number, contacts::client_name))
        .first(&mut app.db.conn())
        .unwrap();
    for sealed in [number.unwrap(), name.unwrap()] {
        let text = String::from_utf8_lossy(&sealed);
        assert!(!text.contains("358407654321") && !text.contains("Maija"), "stored in clear");
    }

    // A secret number shows to the users of its queue only (AX-6).
    let seen: Value = app.get_as(&w.agent_a, &format!("{path}/{id}")).json().unwrap();
    assert_eq!(seen["caller_number"], "+358407654321");
    assert_eq!(seen["client_name"], "Maija Meikäläinen");
    let other: Value = app.get_as(&w.agent_b, &format!("{path}/{id}")).json().unwrap();
    assert_eq!(other["caller_number"], Value::Null);
    assert_eq!(other["secret_number"], true);
    // … and is found by its number only by them.
    let search = |token: &str| -> Value {
        app.post_as(token, &format!("{path}/search"), &json!({"caller_number": "+358407654321"})).json().unwrap()
    };
    assert_eq!(search(&w.agent_a)["items"][0]["id"], id.as_str());
    assert_eq!(search(&w.agent_b)["items"], json!([]));

    // Numbers are E.164; chats carry no personal data; a queue of the registrar.
    let refused = app.post_as(&w.telephony, &path, &json!({"kind": "call", "queue_id": w.queue_a, "caller_number": "0401234567", "started_at": "2026-03-02T07:00:00Z"}));
    let body = assert_problem(refused, 400, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "caller_number");
    assert!(!body.to_string().contains("0401234567"), "{body}");
    let refused = app.post_as(&w.telephony, &path, &json!({"kind": "chat", "queue_id": w.queue_a, "client_name": "Matti", "started_at": "2026-03-02T07:00:00Z"}));
    assert_eq!(assert_problem(refused, 400, "/problems/validation")["errors"][0]["field"], "client_name");
    let chat = push(app, &w, &json!({"kind": "chat", "queue_id": w.queue_a, "started_at": "2026-03-02T07:10:00Z"}));
    assert_eq!(chat["caller_number"], Value::Null);
    assert_eq!(chat["recording_announcement"], Value::Null);
    let refused = app.post_as(&w.telephony, &path, &json!({"kind": "call", "queue_id": uuid::Uuid::new_v4().to_string(), "started_at": "2026-03-02T07:00:00Z"}));
    assert_eq!(assert_problem(refused, 422, "/problems/business-rule")["errors"][0]["field"], "queue_id");
    let refused = app.post_as(&w.telephony, &path, &json!({"kind": "call", "queue_id": w.queue_a, "started_at": "2026-03-03T07:00:00Z"}));
    assert_eq!(assert_problem(refused, 422, "/problems/business-rule")["errors"][0]["field"], "started_at");

    // The telephony system pushes but does not read; another registrar sees nothing.
    assert_problem(app.get_as(&w.telephony, &format!("{path}/{id}")), 403, "/problems/forbidden");
    assert_problem(app.get_as(&w.stranger, &format!("{path}/{id}")), 404, "/problems/not-found");
    let listed: Value = app.get_as(&w.agent_b, &path).json().unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
});

app_test!(fn ca_3_recordings_are_stored_once_encrypted_and_checked(app) {
    let w = world(app);
    let contact = push(app, &w, &call(&w.queue_a, "+358401111111"));
    let id = contact["id"].as_str().unwrap();
    let audio_bytes = wav(3 * CHUNK + 1234, &marker(1));
    // Not audio: refused from the bytes, whatever the header says; nothing is kept.
    let refused = upload(app, &w.telephony, &w.county, id, b"%PDF-1.7 this is not audio at all, not even close".to_vec());
    assert_eq!(assert_problem(refused, 400, "/problems/validation")["errors"][0]["field"], "body");
    assert!(files(app.audio_dir.path()).is_empty());
    let stored = upload(app, &w.telephony, &w.county, id, audio_bytes.clone());
    assert_eq!(stored.status().as_u16(), 201);
    let stored: Value = stored.json().unwrap();
    assert_eq!(stored["sha256"], sha256_hex(&audio_bytes));
    assert_eq!(stored["bytes"], audio_bytes.len());
    assert_eq!(stored["content_type"], "audio/wav");
    // Never replaced or changed.
    let again = upload(app, &w.telephony, &w.county, id, wav(2000, &marker(2)));
    assert_problem(again, 409, "/problems/conflict");
    assert_eq!(files(app.audio_dir.path()).len(), 1);
    let shown: Value = app.get_as(&w.agent_a, &format!("/v1/registrars/{}/contacts/{id}", w.county)).json().unwrap();
    assert_eq!(shown["recording"]["sha256"], sha256_hex(&audio_bytes));
    // A chat has no audio; a call of an unrecorded queue was not announced as recorded.
    let chat = push(app, &w, &json!({"kind": "chat", "queue_id": w.queue_a, "started_at": "2026-03-02T07:10:00Z"}));
    let refused = upload(app, &w.telephony, &w.county, chat["id"].as_str().unwrap(), wav(1000, &marker(3)));
    assert_problem(refused, 422, "/problems/business-rule");
    let plain = push(app, &w, &call(&w.unrecorded, "+358401111112"));
    let refused = upload(app, &w.telephony, &w.county, plain["id"].as_str().unwrap(), wav(1000, &marker(3)));
    assert_eq!(assert_problem(refused, 422, "/problems/business-rule")["errors"][0]["field"], "queue_id");
    // A voicemail of any queue takes its audio.
    let voicemail = push(app, &w, &json!({"kind": "voicemail", "queue_id": w.unrecorded, "caller_number": "+358401111113", "started_at": "2026-03-02T07:20:00Z"}));
    let stored = upload(app, &w.telephony, &w.county, voicemail["id"].as_str().unwrap(), wav(5000, &marker(4)));
    assert_eq!(stored.status().as_u16(), 201);
    // Only whoever pushed the contact uploads its audio: an agent cannot plant false evidence.
    let refused = upload(app, &w.supervisor_a, &w.county, plain["id"].as_str().unwrap(), wav(1000, &marker(5)));
    assert_problem(refused, 403, "/problems/forbidden");
    let pending = push(app, &w, &call(&w.queue_a, "+358401111114"));
    let refused = upload(app, &w.agent_a, &w.county, pending["id"].as_str().unwrap(), wav(1000, &marker(5)));
    assert_problem(refused, 403, "/problems/forbidden");
    // The stored audio is nowhere in clear.
    assert_no_clear_audio(app.audio_dir.path(), &[marker(1), marker(4)]);

    // A flipped byte in stored audio fails the next whole read, with a security event.
    let grant = grant(app, &w.supervisor_a, &w.county, id);
    assert_eq!(audio(app, &w.supervisor_a, &grant, None).bytes().unwrap().as_ref(), audio_bytes.as_slice());
    let storage_key: String = recordings::table
        .filter(recordings::contact_id.eq(id))
        .select(recordings::storage_key)
        .first(&mut app.db.conn())
        .unwrap();
    let file = app.audio_dir.path().join(&storage_key);
    let mut stored_bytes = std::fs::read(&file).unwrap();
    let middle = stored_bytes.len() / 2;
    stored_bytes[middle] ^= 0x01;
    std::fs::write(&file, stored_bytes).unwrap();
    assert_problem(audio(app, &w.supervisor_a, &grant, None), 500, "/problems/integrity-failure");
    assert_eq!(security_event_count(app, "recording_integrity_failure"), 1);
});

fn small_limit_app(db: rekisteri_db::testing::TestDatabase) -> TestApp {
    TestApp::start_with(
        db,
        TestAppOptions {
            recording_max_bytes: 100_000,
            ..TestAppOptions::default()
        },
    )
}

#[test]
fn ca_3_too_large_is_413_on_sqlite() {
    too_large(&small_limit_app(rekisteri_db::testing::TestDatabase::sqlite()));
}

#[test]
fn ca_3_too_large_is_413_on_postgres() {
    if let Some(db) = rekisteri_db::testing::TestDatabase::postgres() {
        too_large(&small_limit_app(db));
    }
}

fn too_large(app: &TestApp) {
    let w = world(app);
    let contact = push(app, &w, &call(&w.queue_a, "+358401111111"));
    let id = contact["id"].as_str().unwrap();
    assert_problem(
        upload(app, &w.telephony, &w.county, id, wav(100_001, &marker(1))),
        413,
        "/problems/payload-too-large",
    );
    assert!(
        files(app.audio_dir.path()).is_empty(),
        "an upload over the limit left a file"
    );
    assert_eq!(
        upload(app, &w.telephony, &w.county, id, wav(100_000, &marker(1)))
            .status()
            .as_u16(),
        201
    );
}

/// The server under test with its audio in the S3-compatible server that
/// `scripts/s3-test-server run` started (`TEST_S3_*`), and the server's data directory to scan.
/// Without one, the test is skipped, except under CI, where that is a failure.
fn s3_app(db: rekisteri_db::testing::TestDatabase) -> Option<(TestApp, std::path::PathBuf)> {
    let s3 = rekisteri_recordings::testing::TestS3::from_env("ca_4")?;
    let app = TestApp::start_with(
        db,
        TestAppOptions {
            audio: Some(rekisteri_recordings::StorageConfig::S3(s3.config)),
            ..TestAppOptions::default()
        },
    );
    Some((app, s3.objects))
}

/// CA-4 on object storage: the same upload, ranged reads, integrity check, single upload and
/// destruction as on the local directory, and nothing in clear in the bucket.
fn on_s3(app: &TestApp, objects: &std::path::Path) {
    let w = world(app);
    let contact = push(app, &w, &call(&w.queue_a, "+358401111111"));
    let id = contact["id"].as_str().unwrap();
    let audio_bytes = wav(2 * CHUNK + 777, &marker(7));
    assert_eq!(
        upload(app, &w.telephony, &w.county, id, audio_bytes.clone())
            .status()
            .as_u16(),
        201
    );
    assert_problem(
        upload(app, &w.telephony, &w.county, id, wav(1000, &marker(8))),
        409,
        "/problems/conflict",
    );
    let grant = grant(app, &w.supervisor_a, &w.county, id);
    assert_eq!(
        audio(app, &w.supervisor_a, &grant, None).bytes().unwrap().as_ref(),
        audio_bytes.as_slice()
    );
    let crossing = audio(
        app,
        &w.supervisor_a,
        &grant,
        Some(&format!("bytes={}-{}", CHUNK - 5, CHUNK + 4)),
    );
    assert_eq!(crossing.status().as_u16(), 206);
    assert_eq!(crossing.bytes().unwrap().as_ref(), &audio_bytes[CHUNK - 5..CHUNK + 5]);
    assert_eq!(files(objects).len(), 1);
    assert_no_clear_audio(objects, &[marker(7)]);
    // Destroyed audio leaves nothing behind.
    app.clock.set(datetime!(2026-09-03 08:00 UTC));
    assert_eq!(run_retention(app).recordings_destroyed, 1);
    assert!(files(objects).is_empty(), "destroyed audio is still in the bucket");
}

#[test]
fn ca_4_audio_in_s3_compatible_storage_on_sqlite() {
    if let Some((app, objects)) = s3_app(rekisteri_db::testing::TestDatabase::sqlite()) {
        on_s3(&app, &objects);
    }
}

#[test]
fn ca_4_audio_in_s3_compatible_storage_on_postgres() {
    if let Some(db) = rekisteri_db::testing::TestDatabase::postgres()
        && let Some((app, objects)) = s3_app(db)
    {
        on_s3(&app, &objects);
    }
}

app_test!(fn ca_4_the_database_holds_metadata_only(app) {
    let w = world(app);
    let contact = push(app, &w, &call(&w.queue_a, "+358401111111"));
    let id = contact["id"].as_str().unwrap();
    let audio_bytes = wav(CHUNK + 10, &marker(1));
    assert_eq!(upload(app, &w.telephony, &w.county, id, audio_bytes).status().as_u16(), 201);
    let (storage_key, bytes, data_key): (String, i64, Vec<u8>) = recordings::table
        .select((recordings::storage_key, recordings::bytes, recordings::data_key))
        .first(&mut app.db.conn())
        .unwrap();
    assert_eq!(bytes, (CHUNK + 10) as i64);
    // The object's name says nothing about the call; the data key is sealed.
    assert!(storage_key.starts_with(&format!("{}/", w.county)), "{storage_key}");
    assert!(!storage_key.contains(id) && !storage_key.contains("358401111111"), "{storage_key}");
    assert!(data_key.len() > 32 + 16);
    assert!(app.audio_dir.path().join(&storage_key).is_file());
});

app_test!(fn ca_5_listening_needs_rights_and_a_reason_each_time(app) {
    let w = world(app);
    let first = push(app, &w, &call(&w.queue_a, "+358401111111"));
    let second = push(app, &w, &call(&w.queue_a, "+358401111112"));
    let (first, second) = (first["id"].as_str().unwrap(), second["id"].as_str().unwrap());
    let first_audio = wav(CHUNK + 99, &marker(1));
    let second_audio = wav(CHUNK + 98, &marker(2));
    assert_eq!(upload(app, &w.telephony, &w.county, first, first_audio.clone()).status().as_u16(), 201);
    assert_eq!(upload(app, &w.telephony, &w.county, second, second_audio.clone()).status().as_u16(), 201);
    let path = format!("/v1/registrars/{}/contacts/{first}/listening-requests", w.county);
    // A reason in words.
    let refused = app.post_as(&w.supervisor_a, &path, &json!({"reason_category": "other", "reason": "tarkistus"}));
    assert_eq!(assert_problem(refused, 400, "/problems/validation")["errors"][0]["field"], "reason");
    let refused = app.post_as(&w.supervisor_a, &path, &json!({"reason_category": "curiosity", "reason": "Haluan vain kuulla miltä tämä kuulostaa."}));
    assert_problem(refused, 400, "/problems/validation");
    // Rights: the agent answering the queue does not listen; another registrar gets 404.
    assert_problem(listen(app, &w.agent_a, &w.county, first), 403, "/problems/forbidden");
    assert_problem(listen(app, &w.stranger, &w.county, first), 404, "/problems/not-found");
    assert_problem(listen(app, &w.telephony, &w.county, first), 403, "/problems/forbidden");
    // Each listening is asked for separately and is its own memo.
    let one = grant(app, &w.supervisor_a, &w.county, first);
    let two = grant(app, &w.supervisor_a, &w.county, first);
    assert_ne!(one["grant_id"], two["grant_id"]);
    assert_ne!(one["memo_id"], two["memo_id"]);
    // A grant serves its one recording, to the user it was issued to.
    assert_eq!(audio(app, &w.supervisor_a, &one, None).bytes().unwrap().as_ref(), first_audio.as_slice());
    let other = grant(app, &w.supervisor_a, &w.county, second);
    assert_eq!(audio(app, &w.supervisor_a, &other, None).bytes().unwrap().as_ref(), second_audio.as_slice());
    assert_problem(audio(app, &w.supervisor_b, &one, None), 404, "/problems/not-found");
    assert_problem(audio(app, &w.agent_a, &one, None), 404, "/problems/not-found");
    // A contact without audio has nothing to listen to.
    let silent = push(app, &w, &call(&w.queue_a, "+358401111113"));
    assert_problem(listen(app, &w.supervisor_a, &w.county, silent["id"].as_str().unwrap()), 409, "/problems/conflict");
});

app_test!(fn ca_6_every_listening_leaves_an_append_only_memo(app) {
    let w = world(app);
    let id = &recorded_call(app, &w, 4000);
    let grant = grant(app, &w.supervisor_a, &w.county, id);
    let memo_path = format!("/v1/registrars/{}/processing-memos/{}/disclosures", w.county, grant["memo_id"].as_str().unwrap());
    let memo: Value = app.get_as(&w.supervisor_a, &memo_path).json().unwrap();
    assert_eq!(memo["contact_id"], id.as_str());
    assert_eq!(memo["listener_id"], w.supervisor_a_id.as_str());
    assert_eq!(memo["reason_category"], "complaint_or_claim");
    assert_eq!(memo["reason"], "Asiakas on tehnyt muistutuksen puhelun sisällöstä.");
    assert_eq!(memo["entries"], json!([]));
    // The registrar's auditor reads it; an agent does not.
    assert_eq!(app.get_as(&w.auditor, &memo_path).status().as_u16(), 200);
    assert_problem(app.get_as(&w.agent_a, &memo_path), 403, "/problems/forbidden");

    // Saving to external media is its own operation, with its own reason, memo and log entry.
    let export_path = format!("/v1/registrars/{}/contacts/{id}/media-exports", w.county);
    let export = json!({"reason_category": "authority_request", "reason": "Poliisi pyysi tallenteen esitutkintaa varten.",
        "medium": "salattu USB-muisti 4411", "recipient_kind": "authority", "recipient": "Sisä-Suomen poliisilaitos",
        "legal_basis": "poliisilaki 4:3"});
    assert_problem(app.post_as(&w.agent_a, &export_path, &export), 403, "/problems/forbidden");
    let disclosures_before: i64 = disclosure_log::table.count().get_result(&mut app.db.conn()).unwrap();
    let exported = app.post_as(&w.supervisor_a, &export_path, &export);
    assert_eq!(exported.status().as_u16(), 201);
    let exported: Value = exported.json().unwrap();
    assert_ne!(exported["id"], grant["memo_id"]);
    assert_eq!(exported["entries"][0]["kind"], "media_export");
    assert_eq!(exported["entries"][0]["medium"], "salattu USB-muisti 4411");
    let logged: Vec<(String, String)> = disclosure_log::table
        .filter(disclosure_log::recipient_kind.eq("authority"))
        .select((disclosure_log::legal_basis, disclosure_log::discloser_id))
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(logged, vec![("poliisilaki 4:3".to_owned(), w.supervisor_a_id.clone())]);
    let disclosures_after: i64 = disclosure_log::table.count().get_result(&mut app.db.conn()).unwrap();
    assert_eq!(disclosures_after, disclosures_before + 1);

    // Memos are never edited or deleted, not even by someone with the database.
    let mut conn = app.db.conn();
    let edited = diesel::sql_query("UPDATE processing_memos SET reason_category = 'other'").execute(&mut conn);
    assert!(edited.is_err(), "a memo could be edited");
    let deleted = diesel::sql_query("DELETE FROM processing_memo_entries").execute(&mut conn);
    assert!(deleted.is_err(), "a memo line could be deleted");
});

app_test!(fn ca_7_disclosure_only_to_a_party_or_an_authority(app) {
    let w = world(app);
    let contact = push(app, &w, &json!({"kind": "call", "queue_id": w.queue_a, "caller_number": "+358401111111",
        "client_identity_code": "131052-308T", "started_at": "2026-03-02T07:30:00Z"}));
    let id = contact["id"].as_str().unwrap();
    assert_eq!(upload(app, &w.telephony, &w.county, id, wav(4000, &marker(1))).status().as_u16(), 201);
    let grant = grant(app, &w.supervisor_a, &w.county, id);
    let path = format!("/v1/registrars/{}/processing-memos/{}/disclosures", w.county, grant["memo_id"].as_str().unwrap());
    let refused = app.post_as(&w.supervisor_a, &path, &json!({"recipient_kind": "journalist", "recipient": "Aamulehti", "legal_basis": "-", "disclosed": "koko tallenne"}));
    assert_problem(refused, 400, "/problems/validation");
    let disclosed = app.post_as(&w.supervisor_a, &path, &json!({"recipient_kind": "party", "recipient": "Soittaja itse",
        "legal_basis": "EU 2016/679 art. 15", "disclosed": "koko tallenne"}));
    assert_eq!(disclosed.status().as_u16(), 201);
    let memo: Value = app.get_as(&w.supervisor_a, &path).json().unwrap();
    assert_eq!(memo["entries"].as_array().unwrap().len(), 1);
    assert_eq!(memo["entries"][0]["recipient"], "Soittaja itse");
    assert_eq!(memo["entries"][0]["recipient_kind"], "party");
    // The disclosure log names the person by index and the memo line, not the recipient.
    let (subject, recipient_id, name): (Option<Vec<u8>>, String, Option<String>) = disclosure_log::table
        .filter(disclosure_log::recipient_kind.eq("party"))
        .select((disclosure_log::subject_index, disclosure_log::recipient_id, disclosure_log::recipient_name))
        .first(&mut app.db.conn())
        .unwrap();
    let code = rekisteri_core::PersonalIdentityCode::parse("131052-308T", rekisteri_core::TemporaryCodesAllowed::No).unwrap();
    assert_eq!(subject.unwrap(), rekisteri_audit::subject_index(&app.keyring, &code).to_vec());
    assert!(recipient_id.starts_with("processing_memo_entry:"), "{recipient_id}");
    assert_eq!(name, None);
    let sealed: Vec<Vec<u8>> = rekisteri_db::schema::processing_memo_entries::table
        .select(rekisteri_db::schema::processing_memo_entries::disclosed)
        .load(&mut app.db.conn())
        .unwrap();
    assert!(sealed.iter().all(|d| !String::from_utf8_lossy(d).contains("koko tallenne")), "stored in clear");
    // Someone without listening rights cannot disclose.
    let refused = app.post_as(&w.supervisor_b, &path, &json!({"recipient_kind": "party", "recipient": "X", "legal_basis": "Y", "disclosed": "Z"}));
    assert_problem(refused, 403, "/problems/forbidden");
});

app_test!(fn ca_8_audio_streams_with_range_on_a_short_lived_grant(app) {
    let w = world(app);
    let contact = push(app, &w, &call(&w.queue_a, "+358401111111"));
    let id = contact["id"].as_str().unwrap();
    let bytes = wav(3 * CHUNK + 4321, &marker(1));
    let size = bytes.len();
    assert_eq!(upload(app, &w.telephony, &w.county, id, bytes.clone()).status().as_u16(), 201);
    let grant = grant(app, &w.supervisor_a, &w.county, id);
    let whole = audio(app, &w.supervisor_a, &grant, None);
    assert_eq!(whole.status().as_u16(), 200);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.headers()["content-type"], "audio/wav");
    assert_eq!(whole.headers()["content-length"], size.to_string().as_str());
    assert_eq!(whole.bytes().unwrap().as_ref(), bytes.as_slice());
    // Seeks: exactly the requested bytes, the first, the last, across a chunk boundary.
    for (range, expected, content_range) in [
        ("bytes=0-0".to_owned(), 0..1, format!("bytes 0-0/{size}")),
        ("bytes=-1".to_owned(), size - 1..size, format!("bytes {}-{}/{size}", size - 1, size - 1)),
        (format!("bytes={}-{}", CHUNK - 10, CHUNK + 9), CHUNK - 10..CHUNK + 10, format!("bytes {}-{}/{size}", CHUNK - 10, CHUNK + 9)),
        (format!("bytes={}-", 2 * CHUNK + 1), 2 * CHUNK + 1..size, format!("bytes {}-{}/{size}", 2 * CHUNK + 1, size - 1)),
        (format!("bytes=100-{}", size + 500), 100..size, format!("bytes 100-{}/{size}", size - 1)),
    ] {
        let response = audio(app, &w.supervisor_a, &grant, Some(&range));
        assert_eq!(response.status().as_u16(), 206, "{range}");
        assert_eq!(response.headers()["content-range"], content_range.as_str(), "{range}");
        assert_eq!(response.bytes().unwrap().as_ref(), &bytes[expected], "{range}");
    }
    // A player that names the audio type it wants is answered, not refused with 406.
    let typed = app
        .client
        .get(app.url(grant["audio_url"].as_str().unwrap()))
        .bearer_auth(&w.supervisor_a)
        .header("Accept", "audio/*")
        .header("Range", "bytes=0-3")
        .send()
        .unwrap();
    assert_eq!(typed.status().as_u16(), 206);
    assert_eq!(typed.bytes().unwrap().as_ref(), b"RIFF");
    let upper = audio(app, &w.supervisor_a, &grant, Some("Bytes=1-2"));
    assert_eq!(upper.status().as_u16(), 206);
    assert_eq!(upper.bytes().unwrap().as_ref(), &bytes[1..3]);
    let signed = audio(app, &w.supervisor_a, &grant, Some("bytes=+1-+2"));
    assert_eq!(signed.status().as_u16(), 200, "a malformed range is ignored");
    let outside = audio(app, &w.supervisor_a, &grant, Some(&format!("bytes={size}-")));
    assert_eq!(outside.headers()["content-range"], format!("bytes */{size}").as_str());
    assert_problem(outside, 416, "/problems/range-not-satisfiable");
    // Every request for audio is a logged use of the recording.
    let uses: i64 = usage_log::table
        .filter(usage_log::data_kind.eq("recording"))
        .filter(usage_log::data_id.eq(id))
        .filter(usage_log::actor_id.eq(&w.supervisor_a_id))
        .count()
        .get_result(&mut app.db.conn())
        .unwrap();
    assert_eq!(uses, 10);
    // The grant is short-lived.
    app.clock.set(datetime!(2026-03-02 08:16 UTC));
    let expired = assert_problem(audio(app, &w.supervisor_a, &grant, None), 403, "/problems/forbidden");
    assert!(expired["detail"].as_str().unwrap().contains("expired"), "{expired}");
});

app_test!(fn ca_9_recording_audio_is_destroyed_after_six_months_voicemail_after_two_years(app) {
    let w = world(app);
    let recorded = push(app, &w, &call(&w.queue_a, "+358401111111"));
    let voicemail = push(app, &w, &json!({"kind": "voicemail", "queue_id": w.queue_a, "caller_number": "+358401111112", "started_at": "2026-03-02T07:40:00Z"}));
    let (recorded, voicemail) = (recorded["id"].as_str().unwrap(), voicemail["id"].as_str().unwrap());
    assert_eq!(upload(app, &w.telephony, &w.county, recorded, wav(5000, &marker(1))).status().as_u16(), 201);
    assert_eq!(upload(app, &w.telephony, &w.county, voicemail, wav(5000, &marker(2))).status().as_u16(), 201);
    // Not yet: the day before six months have passed.
    app.clock.set(datetime!(2026-09-02 07:00 UTC));
    assert_eq!(run_retention(app), Default::default());
    app.clock.set(datetime!(2026-09-02 08:00 UTC));
    let report = run_retention(app);
    assert_eq!((report.recordings_destroyed, report.voicemails_destroyed, report.contacts_deleted), (1, 0, 0));
    assert_eq!(files(app.audio_dir.path()).len(), 1, "only the voicemail's audio remains");
    // Months later: a new session.
    let supervisor = app.token("esimies.a@pirha.fi", USER_PASSWORD);
    let shown: Value = app.get_as(&supervisor, &format!("/v1/registrars/{}/contacts/{recorded}", w.county)).json().unwrap();
    assert_eq!(shown["recording"]["destroyed_at"], "2026-09-02T08:00:00.000000Z");
    assert_eq!(shown["recording"]["destroyed_by_run"], "test-run");
    assert_eq!(shown["recording"]["sha256"].as_str().unwrap().len(), 64, "the metadata stays");
    let key: Vec<u8> = recordings::table
        .filter(recordings::contact_id.eq(recorded))
        .select(recordings::data_key)
        .first(&mut app.db.conn())
        .unwrap();
    assert!(key.is_empty(), "the data key outlived the audio");
    let refused = assert_problem(listen(app, &supervisor, &w.county, recorded), 409, "/problems/conflict");
    assert!(refused["detail"].as_str().unwrap().contains("destroyed"), "{refused}");
    assert_eq!(security_event_count(app, "calls_retention_run"), 2);
    // Two years on, the voicemail's audio goes with both contacts.
    app.clock.set(datetime!(2028-03-02 08:00 UTC));
    let report = run_retention(app);
    assert_eq!((report.recordings_destroyed, report.voicemails_destroyed, report.contacts_deleted), (0, 1, 2));
    assert!(files(app.audio_dir.path()).is_empty());
});

app_test!(fn ca_10_legal_hold_keeps_a_recording_until_released(app) {
    let w = world(app);
    let contact = push(app, &w, &call(&w.queue_a, "+358401111111"));
    let second = push(app, &w, &call(&w.queue_a, "+358401111112"));
    let (id, second) = (contact["id"].as_str().unwrap(), second["id"].as_str().unwrap());
    assert_eq!(upload(app, &w.telephony, &w.county, id, wav(5000, &marker(1))).status().as_u16(), 201);
    assert_eq!(upload(app, &w.telephony, &w.county, second, wav(5000, &marker(2))).status().as_u16(), 201);
    let path = format!("/v1/registrars/{}/contacts/{id}/legal-hold", w.county);
    let hold = json!({"authority": "Sisä-Suomen poliisilaitos", "case_reference": "5560/R/12345/26"});
    assert_problem(app.post_as(&w.agent_a, &path, &hold), 403, "/problems/forbidden");
    let placed = app.post_as(&w.supervisor_a, &path, &hold);
    assert_eq!(placed.status().as_u16(), 201);
    assert_problem(app.post_as(&w.supervisor_a, &path, &hold), 409, "/problems/conflict");
    assert_eq!(security_event_count(app, "legal_hold_placed"), 1);
    let shown: Value = app.get_as(&w.supervisor_a, &format!("/v1/registrars/{}/contacts/{id}", w.county)).json().unwrap();
    assert_eq!(shown["legal_hold"]["case_reference"], "5560/R/12345/26");
    assert_eq!(shown["legal_hold"]["until_on"], Value::Null);
    // The authority's case is not an agent's business.
    let agent_view: Value = app.get_as(&w.agent_a, &format!("/v1/registrars/{}/contacts/{id}", w.county)).json().unwrap();
    assert_eq!(agent_view["legal_hold"], Value::Null);
    // A hold with a last day ends by itself; a last day already past is refused.
    let second_path = format!("/v1/registrars/{}/contacts/{second}/legal-hold", w.county);
    let past = json!({"authority": "Poliisi", "case_reference": "X-1", "until_on": "2026-03-01"});
    let body = assert_problem(app.post_as(&w.supervisor_a, &second_path, &past), 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "until_on");
    let dated = json!({"authority": "Poliisi", "case_reference": "X-1", "until_on": "2026-10-15"});
    assert_eq!(app.post_as(&w.supervisor_a, &second_path, &dated).status().as_u16(), 201);
    // Held: both survive the run after six months.
    app.clock.set(datetime!(2026-10-01 08:00 UTC));
    let report = run_retention(app);
    assert_eq!((report.recordings_destroyed, report.held), (0, 2));
    assert_eq!(files(app.audio_dir.path()).len(), 2);
    // Released: the first run after it destroys the audio.
    let supervisor = app.token("esimies.a@pirha.fi", USER_PASSWORD);
    assert_eq!(app.delete_as(&supervisor, &path).status().as_u16(), 204);
    assert_eq!(security_event_count(app, "legal_hold_released"), 1);
    assert_problem(app.delete_as(&supervisor, &path), 404, "/problems/not-found");
    let report = run_retention(app);
    assert_eq!((report.recordings_destroyed, report.held), (1, 1));
    assert_eq!(files(app.audio_dir.path()).len(), 1);
    // The dated hold's last day passes.
    app.clock.set(datetime!(2026-10-15 20:00 UTC));
    assert_eq!(run_retention(app).held, 1);
    app.clock.set(datetime!(2026-10-16 08:00 UTC));
    let supervisor = app.token("esimies.a@pirha.fi", USER_PASSWORD);
    let shown: Value = app.get_as(&supervisor, &format!("/v1/registrars/{}/contacts/{second}", w.county)).json().unwrap();
    assert_eq!(shown["legal_hold"], Value::Null, "a hold past its last day is over");
    assert_eq!(run_retention(app).recordings_destroyed, 1);
    assert!(files(app.audio_dir.path()).is_empty());
    // … and makes room for a new hold.
    let renewed = json!({"authority": "Poliisi", "case_reference": "X-2"});
    assert_eq!(app.post_as(&supervisor, &second_path, &renewed).status().as_u16(), 201);
});

app_test!(fn ca_11_contact_data_is_deleted_after_two_years_unless_held(app) {
    let w = world(app);
    let kept = push(app, &w, &call(&w.queue_a, "+358401111111"));
    let gone = push(app, &w, &call(&w.queue_a, "+358401111112"));
    let chat = push(app, &w, &json!({"kind": "chat", "queue_id": w.queue_a, "started_at": "2026-03-02T07:10:00Z"}));
    let kept = kept["id"].as_str().unwrap();
    let hold = json!({"authority": "Käräjäoikeus", "case_reference": "R 26/1234"});
    assert_eq!(app.post_as(&w.supervisor_a, &format!("/v1/registrars/{}/contacts/{kept}/legal-hold", w.county), &hold).status().as_u16(), 201);
    // A year and a half on, everything is kept.
    app.clock.set(datetime!(2027-09-02 08:00 UTC));
    assert_eq!(run_retention(app).contacts_deleted, 0);
    app.clock.set(datetime!(2028-03-02 08:00 UTC));
    let report = run_retention(app);
    assert_eq!((report.contacts_deleted, report.held), (2, 1));
    let remaining: Vec<String> = contacts::table.select(contacts::id).load(&mut app.db.conn()).unwrap();
    assert_eq!(remaining, vec![kept.to_owned()]);
    let agent = app.token("agentti.a@pirha.fi", USER_PASSWORD);
    for id in [gone["id"].as_str().unwrap(), chat["id"].as_str().unwrap()] {
        assert_problem(app.get_as(&agent, &format!("/v1/registrars/{}/contacts/{id}", w.county)), 404, "/problems/not-found");
    }
});

app_test!(fn ca_12_a_deactivated_user_cannot_use_an_earlier_grant(app) {
    let w = world(app);
    let id = &recorded_call(app, &w, 5000);
    let grant = grant(app, &w.supervisor_a, &w.county, id);
    assert_eq!(audio(app, &w.supervisor_a, &grant, Some("bytes=0-9")).status().as_u16(), 206);
    assert_eq!(app.delete_as(&w.main_user, &format!("/v1/accounts/{}", w.supervisor_a_id)).status().as_u16(), 200);
    assert_problem(audio(app, &w.supervisor_a, &grant, Some("bytes=0-9")), 401, "/problems/unauthenticated");
    // Nor log in again to use it.
    assert_ne!(app.login("esimies.a@pirha.fi", USER_PASSWORD).status().as_u16(), 200);
});

app_test!(fn ca_13_reports_are_aggregates_with_small_cells_suppressed(app) {
    let w = world(app);
    // Queue A, 2 March 09-10 Finnish time (07-08 UTC): six contacts.
    let rows = [
        ("call", true, 60, 10),
        ("call", true, 120, 20),
        ("call", false, 0, 300),
        ("callback", true, 240, 0),
        ("voicemail", false, 30, 50),
        ("call", true, 600, 5),
        // 08-09 Finnish time: two more.
        ("call", true, 100, 15),
        ("call", false, 0, 200),
    ];
    for (i, (kind, answered, duration, wait)) in rows.iter().enumerate() {
        let started = if i < 6 { format!("2026-03-02T07:{:02}:00Z", 5 * i) } else { format!("2026-03-02T06:{:02}:00Z", 5 * i) };
        push(app, &w, &json!({"kind": kind, "queue_id": w.queue_a, "answered": answered, "duration_seconds": duration,
            "wait_seconds": wait, "started_at": started, "caller_number": "+358401111111"}));
    }
    // Queue B: two contacts, too few to show.
    for i in 0..2 {
        push(app, &w, &json!({"kind": "call", "queue_id": w.queue_b, "answered": true, "duration_seconds": 100,
            "started_at": format!("2026-03-02T07:{:02}:00Z", 10 + i)}));
    }
    let path = format!("/v1/registrars/{}/contact-reports?from=2026-03-01T22:00:00Z&to=2026-03-02T22:00:00Z", w.county);
    assert_problem(app.get_as(&w.agent_a, &path), 403, "/problems/forbidden");
    let report: Value = app.get_as(&w.supervisor_a, &path).json().unwrap();
    let cells = report["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2, "{report}");
    let a = cells.iter().find(|c| c["queue_id"] == w.queue_a.as_str()).unwrap();
    assert_eq!(a["period"], "2026-03-02");
    assert_eq!(a["suppressed"], false);
    assert_eq!(a["contacts"], 8);
    assert_eq!(a["answered_share"], 5.0 / 8.0);
    assert_eq!(a["callback_share"], 1.0 / 8.0);
    assert_eq!(a["voicemail_share"], 1.0 / 8.0);
    assert_eq!(a["average_duration_seconds"], (60.0 + 120.0 + 0.0 + 240.0 + 30.0 + 600.0 + 100.0 + 0.0) / 8.0);
    // Nearest rank: the 8th of 8 sorted values (ceil(0.9 × 8) = 8).
    assert_eq!(a["p90_duration_seconds"], 600.0);
    assert_eq!(a["average_wait_seconds"], (10.0 + 20.0 + 300.0 + 0.0 + 50.0 + 5.0 + 15.0 + 200.0) / 8.0);
    assert_eq!(a["p90_wait_seconds"], 300.0);
    let b = cells.iter().find(|c| c["queue_id"] == w.queue_b.as_str()).unwrap();
    assert_eq!(b["suppressed"], true);
    assert_eq!(b["contacts"], Value::Null);
    assert_eq!(b["answered_share"], Value::Null);
    // Hourly, in Finnish time; and never an individual (no numbers, names or ids of contacts).
    let hourly: Value = app.get_as(&w.supervisor_a, &format!("{path}&group_by=hour&queue_id={}", w.queue_a)).json().unwrap();
    let cells = hourly["cells"].as_array().unwrap();
    assert_eq!(cells.iter().map(|c| c["period"].as_str().unwrap()).collect::<Vec<_>>(), ["2026-03-02T08", "2026-03-02T09"]);
    // 08-09 has two contacts; 09-10 is suppressed too, or the day's 8 would give it away.
    assert!(cells.iter().all(|c| c["suppressed"] == true && c["contacts"].is_null()), "{hourly}");
    // A phone number would show as E.164; the ids in the cells are random UUIDs, which may hold "358".
    assert!(!hourly.to_string().contains("+358"), "{hourly}");
    // Windows start on whole days (or hours), so two windows never differ by one contact.
    let misaligned = format!("/v1/registrars/{}/contact-reports?from=2026-03-01T22:30:00Z&to=2026-03-02T22:00:00Z", w.county);
    let body = assert_problem(app.get_as(&w.supervisor_a, &misaligned), 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "from");
    // A report covers at most a year.
    let long = format!("/v1/registrars/{}/contact-reports?from=2025-01-01T00:00:00Z&to=2026-03-02T00:00:00Z", w.county);
    assert_problem(app.get_as(&w.supervisor_a, &long), 422, "/problems/business-rule");
});

app_test!(fn ca_14_every_action_on_the_register_is_audited(app) {
    let w = world(app);
    let id = recorded_call(app, &w, 5000);
    assert_eq!(app.get_as(&w.agent_b, &format!("/v1/registrars/{}/contacts/{id}", w.county)).status().as_u16(), 200);
    let grant = grant(app, &w.supervisor_a, &w.county, &id);
    assert_eq!(audio(app, &w.supervisor_a, &grant, None).status().as_u16(), 200);
    let rows: Vec<(String, String, String, String)> = usage_log::table
        .filter(usage_log::data_id.eq(&id))
        .order(usage_log::occurred_at)
        .select((usage_log::data_kind, usage_log::actor_id, usage_log::outcome, usage_log::purpose))
        .load(&mut app.db.conn())
        .unwrap();
    let kinds: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(kinds, ["contact", "recording", "contact", "listening_request", "recording"], "{rows:?}");
    assert!(rows.iter().all(|r| r.2 == "used"));
    assert_eq!(rows[3].3, "call register: listening (complaint_or_claim)");
    assert_eq!(rows[4].1, w.supervisor_a_id);
    assert!(rows[4].3.contains(grant["memo_id"].as_str().unwrap()), "{rows:?}");
    // Holds and retention are security events (checked in ca_10 and ca_9); the chains verify.
    let verified = app.get_as(&w.admin, "/v1/audit/verify");
    assert_eq!(verified.status().as_u16(), 200);
    assert_eq!(verified.json::<Value>().unwrap()["breaks"], json!([]));
});

/// For the right-of-access test of the client register (CL-12): a recorded queue in
/// `registrar`, a call from the person's phone (+358 40 123 4567), a callback naming them by
/// `identity_code`, and a call of someone else; returns the person's two contacts' ids in order.
pub(crate) fn contacts_for_access_report(
    app: &TestApp,
    admin: &str,
    registrar: &str,
    registrar_oid: &str,
    identity_code: &str,
) -> Vec<String> {
    let unit = unit(
        app,
        admin,
        registrar,
        &format!("{registrar_oid}.10.99"),
        "Puhelinpalvelu",
    );
    let (_, main_user) = app.add_user(admin, "puhelinpaakayttaja@example.fi", registrar, "main_user");
    let queue = queue(
        app,
        &main_user,
        registrar,
        &json!({"name": "Neuvonta", "service_unit_id": unit, "recorded": false}),
    );
    let telephony = api_client(app, admin, registrar, &["calls:write"]);
    let push = |body: Value| -> String {
        let response = app.post_as(&telephony, &format!("/v1/registrars/{registrar}/contacts"), &body);
        assert_eq!(response.status().as_u16(), 201, "{}", response.text().unwrap());
        response.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned()
    };
    let started = |minute: u32| {
        (app.clock.now() - time::Duration::hours(1) + time::Duration::minutes(minute.into()))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let from_phone = push(
        json!({"kind": "call", "queue_id": queue, "caller_number": "+358401234567", "secret_number": true, "started_at": started(1)}),
    );
    let by_code = push(
        json!({"kind": "callback", "queue_id": queue, "client_identity_code": identity_code, "started_at": started(2)}),
    );
    push(json!({"kind": "call", "queue_id": queue, "caller_number": "+358409999999", "started_at": started(3)}));
    vec![from_phone, by_code]
}
