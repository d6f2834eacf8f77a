//! `Idempotency-Key` on creating POSTs (PL-2): a retried push creates nothing and gets the first
//! answer; the stored answer is sealed at rest and its replay is a logged read.

use diesel::prelude::*;
use rekisteri_db::schema::{idempotency_keys, usage_log};
use rekisteri_tests::{TestApp, app_test, assert_problem};
use serde_json::{Value, json};

/// A registrar with two client handlers and its data-protection officer, another registrar with
/// its officer, and a provider with its staff.
pub(crate) struct Fixture {
    pub admin: String,
    pub registrar: String,
    pub other_registrar: String,
    pub provider: String,
    pub handler: String,
    pub other_handler: String,
    pub dpo: String,
    pub dpo_id: String,
    pub other_dpo: String,
    pub provider_staff: String,
}

pub(crate) fn fixture(app: &TestApp) -> Fixture {
    let admin = app.bootstrap_admin();
    let organisation = |name: &str, kind: &str, oid: &str| app.organisation(&admin, name, kind, oid);
    let registrar = organisation("Tampere", "municipality", "1.2.246.10.1001");
    let other_registrar = organisation("Nokia", "municipality", "1.2.246.10.1002");
    let provider = organisation("Hoiva Oy", "provider", "1.2.246.10.2001");
    let response = app.post_as(
        &admin,
        &format!("/v1/registrars/{registrar}/service-areas"),
        &json!({"code": "home_care", "name": "Kotihoito", "service_types": ["home_care"]}),
    );
    assert_eq!(response.status().as_u16(), 201);
    let area: Value = response.json().unwrap();
    let mut handlers = Vec::new();
    for email in ["handler@tampere.fi", "other.handler@tampere.fi"] {
        let (id, token) = app.add_user(&admin, email, &registrar, "client_handler");
        let granted = app.post_as(
            &admin,
            &format!("/v1/accounts/{id}/service-areas"),
            &json!({"service_area_id": area["id"]}),
        );
        assert_eq!(granted.status().as_u16(), 201);
        handlers.push(token);
    }
    let (dpo_id, dpo) = app.add_user(&admin, "tietosuoja@tampere.fi", &registrar, "auditor");
    let (_, other_dpo) = app.add_user(&admin, "tietosuoja@nokia.fi", &other_registrar, "auditor");
    let (_, provider_staff) = app.add_user(&admin, "nurse@hoiva.fi", &provider, "provider_staff");
    let other_handler = handlers.pop().unwrap();
    let handler = handlers.pop().unwrap();
    Fixture {
        admin,
        registrar,
        other_registrar,
        provider,
        handler,
        other_handler,
        dpo,
        dpo_id,
        other_dpo,
        provider_staff,
    }
}

/// A valid identity code of someone born 2 Feb 1970 with individual number `200 + n`.
pub(crate) fn code(n: u32) -> String {
    rekisteri_tests::identity_code("020270", 200 + n)
}

fn client_body(identity_code: &str, surname: &str, provider: &str) -> Value {
    json!({"identity_code": identity_code, "first_names": "Iida Ilona", "surname": surname,
        "email": "iida.idempotentti@esimerkki.fi",
        "services": [{"kind": "service_voucher", "service_type": "home_care", "service_name": "Kotihoidon palveluseteli",
            "quantity": 40, "unit": "hour", "unit_value_cents": 3250, "valid_from": "2026-01-01",
            "valid_to": "2026-12-31", "provider_id": provider}]})
}

fn count_items(app: &TestApp, token: &str, path: &str) -> usize {
    let list: Value = app.get_as(token, path).json().unwrap();
    list["items"].as_array().unwrap().len()
}

/// The usage entries about `data_id`: (outcome, purpose).
fn usage_of(app: &TestApp, registrar: &str, data_id: &str) -> Vec<(String, String)> {
    usage_log::table
        .filter(usage_log::registrar_id.eq(registrar))
        .filter(usage_log::data_id.eq(data_id))
        .order(usage_log::seq)
        .select((usage_log::outcome, usage_log::purpose))
        .load(&mut app.db.conn())
        .unwrap()
}

fn stored_keys(app: &TestApp) -> i64 {
    idempotency_keys::table.count().get_result(&mut app.db.conn()).unwrap()
}

app_test!(fn pl_2_retried_push_with_same_idempotency_key_creates_nothing(app) {
    let f = fixture(app);
    let clients = format!("/v1/registrars/{}/clients", f.registrar);
    let body = client_body(&code(1), "Idempotentti", &f.provider);
    let first = app.post_with_key(&f.handler, &clients, "push-0001", &body);
    assert_eq!(first.status().as_u16(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()["location"].clone();
    let etag = first.headers()["etag"].clone();
    let first_body = first.text().unwrap();
    // The retry gets the first answer, byte for byte, and creates nothing.
    let retry = app.post_with_key(&f.handler, &clients, "push-0001", &body);
    assert_eq!(retry.status().as_u16(), 201);
    assert_eq!(retry.headers()["location"], location);
    assert_eq!(retry.headers()["etag"], etag);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["content-type"], "application/json");
    assert_eq!(retry.text().unwrap(), first_body);
    assert_eq!(count_items(app, &f.handler, &clients), 1);
    // A service event, which a plain retry would record twice, is recorded once.
    let created: Value = serde_json::from_str(&first_body).unwrap();
    let sid = created["services"][0]["id"].as_str().unwrap();
    let events = format!("/v1/registrars/{}/services/{sid}/events", f.registrar);
    let event = json!({"delivered_on": "2026-03-02", "quantity": 1.5});
    let first = app.post_with_key(&f.provider_staff, &events, "event-17", &event);
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().unwrap();
    let retry = app.post_with_key(&f.provider_staff, &events, "event-17", &event);
    assert_eq!(retry.status().as_u16(), 201);
    assert_eq!(retry.json::<Value>().unwrap(), first);
    assert_eq!(count_items(app, &f.provider_staff, &events), 1);
    // A first request that failed leaves no record: the client fixes it and retries with the key.
    let mut bad = event.clone();
    bad["quantity"] = json!(1000);
    let refused = app.post_with_key(&f.provider_staff, &events, "event-18", &bad);
    assert_problem(refused, 422, "/problems/business-rule");
    let invalid = app.post_with_key(&f.provider_staff, &events, "event-18", &json!({"quantity": 1}));
    assert_problem(invalid, 400, "/problems/validation");
    assert_eq!(stored_keys(app), 2);
    let fixed = app.post_with_key(&f.provider_staff, &events, "event-18", &json!({"delivered_on": "2026-03-03", "quantity": 1}));
    assert_eq!(fixed.status().as_u16(), 201);
    assert_eq!(count_items(app, &f.provider_staff, &events), 2);
    // Without the key, the same push is a new request (and here a duplicate identity code).
    assert_problem(app.post_as(&f.handler, &clients, &body), 409, "/problems/conflict");
    // Keys expire after 24 hours; then the key is free again.
    // (The sessions have expired by then: log in again.)
    app.clock.advance(time::Duration::hours(24));
    let staff = app.token("nurse@hoiva.fi", rekisteri_tests::USER_PASSWORD);
    let again = app.post_with_key(&staff, &events, "event-17", &json!({"delivered_on": "2026-03-04", "quantity": 1}));
    assert_eq!(again.status().as_u16(), 201);
    assert!(again.headers().get("idempotent-replayed").is_none());
    assert_eq!(count_items(app, &staff, &events), 3);
    assert_eq!(stored_keys(app), 1, "the expired keys were removed");
});

app_test!(fn pl_2_idempotency_key_with_different_body_is_refused(app) {
    let f = fixture(app);
    let clients = format!("/v1/registrars/{}/clients", f.registrar);
    let body = client_body(&code(2), "Toistuva", &f.provider);
    assert_eq!(app.post_with_key(&f.handler, &clients, "k-1", &body).status().as_u16(), 201);
    let other = client_body(&code(3), "Toinen", &f.provider);
    let problem = assert_problem(app.post_with_key(&f.handler, &clients, "k-1", &other), 422, "/problems/idempotency-key-reused");
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
    assert!(!problem.to_string().contains(&code(3)[7..]), "{problem}");
    // The same key on another path is another request too.
    let search = format!("/v1/registrars/{}/clients/search", f.registrar);
    let problem = assert_problem(
        app.post_with_key(&f.handler, &search, "k-1", &json!({"identity_code": code(2)})),
        422,
        "/problems/idempotency-key-reused",
    );
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
    // Nothing of the refused requests was created.
    assert_eq!(count_items(app, &f.handler, &clients), 1);
    // A key must be 1-255 visible ASCII characters.
    for bad in ["", "has space", &"k".repeat(256)] {
        let problem = assert_problem(app.post_with_key(&f.handler, &clients, bad, &other), 400, "/problems/validation");
        assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
    }
    assert_eq!(app.post_with_key(&f.handler, &clients, &"k".repeat(255), &other).status().as_u16(), 201);
    assert_eq!(count_items(app, &f.handler, &clients), 2);
});

app_test!(fn pl_2_parallel_requests_with_one_key_create_exactly_one(app) {
    let f = fixture(app);
    let clients = format!("/v1/registrars/{}/clients", f.registrar);
    let created: Value = app.post_with_key(&f.handler, &clients, "c", &client_body(&code(4), "Rinnakkainen", &f.provider))
        .json()
        .unwrap();
    let sid = created["services"][0]["id"].as_str().unwrap();
    let events = format!("/v1/registrars/{}/services/{sid}/events", f.registrar);
    let event = json!({"delivered_on": "2026-03-02", "quantity": 1});
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let response = app.post_with_key(&f.provider_staff, &events, "parallel-1", &event);
                    let status = response.status().as_u16();
                    (status, response.text().unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created: Vec<&String> = answers.iter().filter(|(s, _)| *s == 201).map(|(_, b)| b).collect();
    assert!(!created.is_empty(), "{answers:?}");
    assert!(created.iter().all(|b| *b == created[0]), "every 201 is the same answer: {answers:?}");
    for (status, body) in &answers {
        if *status != 201 {
            assert_eq!(*status, 409, "{answers:?}");
            assert!(body.contains("/problems/idempotency-key-in-use"), "{body}");
        }
    }
    assert_eq!(count_items(app, &f.provider_staff, &events), 1);
});

app_test!(fn pl_2_replay_of_personal_data_writes_the_usage_log(app) {
    let f = fixture(app);
    let clients = format!("/v1/registrars/{}/clients", f.registrar);
    let body = client_body(&code(5), "Lokitettu", &f.provider);
    let created: Value = app.post_with_key(&f.handler, &clients, "logged", &body).json().unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(usage_of(app, &f.registrar, id), vec![("used".to_owned(), "client register: create client".to_owned())]);
    let replay = app.post_with_key(&f.handler, &clients, "logged", &body);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    // The entry was committed before the answer left: it is there when the answer arrives.
    assert_eq!(
        usage_of(app, &f.registrar, id),
        vec![
            ("used".to_owned(), "client register: create client".to_owned()),
            ("used".to_owned(), "client register: create client (idempotent replay)".to_owned()),
        ]
    );
    let subjects: Vec<Option<Vec<u8>>> = usage_log::table
        .filter(usage_log::data_id.eq(id))
        .select(usage_log::subject_index)
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(subjects.len(), 2);
    assert!(subjects[0].is_some() && subjects[0] == subjects[1], "the replay names the same person");
});

app_test!(fn pl_2_stored_response_is_not_in_the_database_in_clear(app) {
    let f = fixture(app);
    let clients = format!("/v1/registrars/{}/clients", f.registrar);
    let identity_code = code(6);
    let body = client_body(&identity_code, "Salattu-Säilötty", &f.provider);
    assert_eq!(app.post_with_key(&f.handler, &clients, "sealed", &body).status().as_u16(), 201);
    assert_eq!(stored_keys(app), 1);
    let secrets = [identity_code.as_str(), "Salattu-Säilötty", "Iida Ilona", "iida.idempotentti@esimerkki.fi"];
    app.assert_not_stored_in_clear(&["idempotency_keys"], 100, &secrets);
});

app_test!(fn pl_2_another_callers_same_key_is_independent(app) {
    let f = fixture(app);
    let clients = format!("/v1/registrars/{}/clients", f.registrar);
    let first = app.post_with_key(&f.handler, &clients, "shared-key", &client_body(&code(7), "Ensimmäinen", &f.provider));
    assert_eq!(first.status().as_u16(), 201);
    // Another account with the same key and another body: its own request, created.
    let second = app.post_with_key(&f.other_handler, &clients, "shared-key", &client_body(&code(8), "Toinen", &f.provider));
    assert_eq!(second.status().as_u16(), 201);
    assert!(second.headers().get("idempotent-replayed").is_none());
    // And with the first caller's very body: not a replay of someone else's answer, but its own
    // attempt (which the register refuses as a duplicate identity code).
    let third = app.post_with_key(&f.other_handler, &clients, "shared-key-2", &client_body(&code(7), "Ensimmäinen", &f.provider));
    assert_problem(third, 409, "/problems/conflict");
    assert_eq!(count_items(app, &f.handler, &clients), 2);
    assert_eq!(stored_keys(app), 2);
});

app_test!(fn pl_2_a_retried_data_subject_request_is_recorded_once_and_replayed_only_with_the_right(app) {
    let f = fixture(app);
    let path = format!("/v1/registrars/{}/data-subject-requests", f.registrar);
    let body = json!({"kind": "access", "identity_code": code(9)});
    let first = app.post_with_key(&f.dpo, &path, "dsr-1", &body);
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().unwrap();
    let replay = app.post_with_key(&f.dpo, &path, "dsr-1", &body);
    assert_eq!(replay.status().as_u16(), 201);
    assert_eq!(replay.json::<Value>().unwrap(), first);
    assert_eq!(count_items(app, &f.dpo, &path), 1);
    let uses = usage_of(app, &f.registrar, first["id"].as_str().unwrap());
    assert_eq!(uses.iter().filter(|(_, p)| p.ends_with("(idempotent replay)")).count(), 1, "{uses:?}");
    // Once the officer's role has ended, the stored answer is not handed out any more.
    let account: Value = app.get_as(&f.admin, &format!("/v1/accounts/{}", f.dpo_id)).json().unwrap();
    let grant = account["roles"][0]["id"].as_str().unwrap();
    let ended = app
        .client
        .patch(app.url(&format!("/v1/accounts/{}/roles/{grant}", f.dpo_id)))
        .bearer_auth(&f.admin)
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(ended.status().as_u16(), 200);
    let again = app.token("tietosuoja@tampere.fi", rekisteri_tests::USER_PASSWORD);
    assert_problem(app.post_with_key(&again, &path, "dsr-1", &body), 403, "/problems/forbidden");
    assert_eq!(usage_of(app, &f.registrar, first["id"].as_str().unwrap()), uses);
});

app_test!(fn pl_2_a_one_time_secret_is_never_kept_for_a_replay(app) {
    let f = fixture(app);
    let invitation = json!({"email": "uusi@tampere.fi", "first_name": "Uusi", "surname": "Käyttäjä",
        "organisation_id": f.registrar, "role": "auditor"});
    let first = app.post_with_key(&f.admin, "/v1/accounts", "invite-1", &invitation);
    assert_eq!(first.status().as_u16(), 201);
    assert_eq!(first.headers()["cache-control"], "no-store");
    let token = first.json::<Value>().unwrap()["invitation_token"].as_str().unwrap().to_owned();
    // The retry creates nothing and is told so, without the token.
    let retry = app.post_with_key(&f.admin, "/v1/accounts", "invite-1", &invitation);
    let replayed = retry.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap().to_owned());
    let problem = assert_problem(retry, 409, "/problems/conflict");
    assert_eq!(replayed.as_deref(), Some("true"), "{problem}");
    assert!(!problem.to_string().contains(&token), "{problem}");
    let stored: Vec<Option<Vec<u8>>> = idempotency_keys::table
        .select(idempotency_keys::body)
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(stored, vec![None]);
    let accounts: Value = app.get_as(&f.admin, "/v1/accounts").json().unwrap();
    let invited = accounts["items"].as_array().unwrap().iter().filter(|a| a["email"] == "uusi@tampere.fi").count();
    assert_eq!(invited, 1, "{accounts}");
});

/// The caller scope the server keeps `token`'s keys under, read from the claim of a real keyed
/// request (`account:<id>`).
fn caller_of(app: &TestApp, key: &str) -> String {
    idempotency_keys::table
        .filter(idempotency_keys::idempotency_key.eq(key))
        .select(idempotency_keys::caller)
        .first(&mut app.db.conn())
        .unwrap()
}

/// Another server process, alive from `from` for `lease`.
fn other_server(app: &TestApp, from: time::OffsetDateTime, lease: time::Duration) -> rekisteri_idempotency::Instance {
    let instance = rekisteri_idempotency::Instance::new(lease);
    rekisteri_idempotency::register_instance(&mut app.db.conn(), &instance, rekisteri_db::to_primitive(from)).unwrap();
    instance
}

/// The claim `owner` takes of `key` for a POST of `body` to `path`, as its server would take it
/// just before running the handler.
fn claim_as(
    app: &TestApp,
    owner: &rekisteri_idempotency::Instance,
    caller: &str,
    registrar: &str,
    key: &str,
    path: &str,
    body: &[u8],
) -> rekisteri_idempotency::Claimed {
    let scope = rekisteri_idempotency::Scope {
        registrar_id: registrar.to_owned(),
        caller: caller.to_owned(),
        earlier_callers: Vec::new(),
        key: key.to_owned(),
    };
    let hash = rekisteri_idempotency::request_hash("POST", path, body);
    let now = rekisteri_db::to_primitive(rekisteri_core::Clock::now(&*app.clock));
    match rekisteri_idempotency::claim(&mut app.db.conn(), &scope, "POST", path, &hash, owner, now).unwrap() {
        rekisteri_idempotency::Claim::Claimed(claimed) => claimed,
        other => panic!("the key was not free: {other:?}"),
    }
}

fn post_bytes(app: &TestApp, token: &str, path: &str, key: &str, body: &[u8]) -> reqwest::blocking::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .header("Content-Type", "application/json")
        .body(body.to_vec())
        .send()
        .unwrap()
}

app_test!(fn pl_17_a_claim_of_a_killed_server_that_committed_nothing_runs_again_once(app) {
    let f = fixture(app);
    let clients = format!("/v1/registrars/{}/clients", f.registrar);
    let first = app.post_with_key(&f.handler, &clients, "seen", &client_body(&code(20), "Eka", &f.provider));
    assert_eq!(first.status().as_u16(), 201);
    let caller = caller_of(app, "seen");
    let body = serde_json::to_vec(&client_body(&code(21), "Kesken", &f.provider)).unwrap();
    // A server claimed the key, then was killed before the handler committed anything; its
    // instance row was last renewed two minutes ago with a one-minute lease.
    let now = rekisteri_core::Clock::now(&*app.clock);
    let dead = other_server(app, now - time::Duration::minutes(2), time::Duration::minutes(1));
    claim_as(app, &dead, &caller, &f.registrar, "killed-1", &clients, &body);
    // The retry runs the request (the claim is taken over), and creates the client once.
    let retry = post_bytes(app, &f.handler, &clients, "killed-1", &body);
    assert_eq!(retry.status().as_u16(), 201);
    assert!(retry.headers().get("idempotent-replayed").is_none());
    let created: Value = retry.json().unwrap();
    assert_eq!(count_items(app, &f.handler, &clients), 2);
    // The next retry replays that answer; nothing more is created.
    let again = post_bytes(app, &f.handler, &clients, "killed-1", &body);
    assert_eq!(again.status().as_u16(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().unwrap()["id"], created["id"]);
    assert_eq!(count_items(app, &f.handler, &clients), 2);
    let owners: Vec<Option<String>> = idempotency_keys::table
        .filter(idempotency_keys::idempotency_key.eq("killed-1"))
        .select(idempotency_keys::owner)
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(owners, vec![Some(app.instance.id.clone())]);
});

app_test!(fn pl_17_a_claim_of_a_live_server_is_in_use_until_its_lease_runs_out(app) {
    let f = fixture(app);
    let clients = format!("/v1/registrars/{}/clients", f.registrar);
    assert_eq!(app.post_with_key(&f.handler, &clients, "seen", &client_body(&code(22), "Eka", &f.provider)).status().as_u16(), 201);
    let caller = caller_of(app, "seen");
    let body = serde_json::to_vec(&client_body(&code(23), "Toinen", &f.provider)).unwrap();
    // Another server sharing the database holds the claim and renewed its lease just now.
    let now = rekisteri_core::Clock::now(&*app.clock);
    let other = other_server(app, now, time::Duration::minutes(1));
    let held = claim_as(app, &other, &caller, &f.registrar, "shared-1", &clients, &body);
    assert_problem(post_bytes(app, &f.handler, &clients, "shared-1", &body), 409, "/problems/idempotency-key-in-use");
    assert_eq!(count_items(app, &f.handler, &clients), 1);
    // It stops renewing (killed); once its lease has run out, the retry runs.
    app.clock.advance(time::Duration::seconds(61));
    let retry = post_bytes(app, &f.handler, &clients, "shared-1", &body);
    assert_eq!(retry.status().as_u16(), 201);
    assert_eq!(count_items(app, &f.handler, &clients), 2);
    // Should the other server only have stalled, its late write cannot commit any more: the
    // claim is no longer its own, and the write is rolled back with the mark.
    use rekisteri_db::schema::server_instances as instances;
    let stray = "a row the stalled server writes";
    let mut conn = app.db.conn();
    let late = rekisteri_db::checked(rekisteri_idempotency::commit_check(&held), || {
        rekisteri_db::write_transaction(&mut conn, |conn| {
            diesel::insert_into(instances::table)
                .values((
                    instances::id.eq(stray),
                    instances::started_at.eq(rekisteri_db::to_primitive(now)),
                    instances::expires_at.eq(rekisteri_db::to_primitive(now)),
                ))
                .execute(conn)
        })
    });
    let error = late.unwrap_err();
    assert!(rekisteri_idempotency::is_claim_lost(&error), "{error}");
    let strays: i64 = instances::table
        .filter(instances::id.eq(stray))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(strays, 0, "the stalled server's write was rolled back");
});

app_test!(fn pl_17_a_claim_whose_request_committed_before_its_server_died_is_never_run_again(app) {
    let f = fixture(app);
    let clients = format!("/v1/registrars/{}/clients", f.registrar);
    assert_eq!(app.post_with_key(&f.handler, &clients, "seen", &client_body(&code(24), "Eka", &f.provider)).status().as_u16(), 201);
    let caller = caller_of(app, "seen");
    let body = serde_json::to_vec(&client_body(&code(25), "Kirjoitettu", &f.provider)).unwrap();
    let now = rekisteri_core::Clock::now(&*app.clock);
    let dying = other_server(app, now, time::Duration::minutes(1));
    let claimed = claim_as(app, &dying, &caller, &f.registrar, "written-1", &clients, &body);
    // The request's write transaction commits (and with it the mark), then the server is killed
    // before it stored its answer.
    let mut conn = app.db.conn();
    rekisteri_db::checked(rekisteri_idempotency::commit_check(&claimed), || {
        rekisteri_db::write_transaction(&mut conn, |_| Ok::<_, diesel::result::Error>(()))
    })
    .unwrap();
    drop(conn);
    assert_problem(post_bytes(app, &f.handler, &clients, "written-1", &body), 409, "/problems/idempotency-key-in-use");
    app.clock.advance(time::Duration::seconds(61));
    // The owner is dead: the request is not run again, and the retry is told it did its work.
    for _ in 0..2 {
        let retry = post_bytes(app, &f.handler, &clients, "written-1", &body);
        let replayed = retry.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap().to_owned());
        let problem = assert_problem(retry, 409, "/problems/conflict");
        assert_eq!(replayed.as_deref(), Some("true"), "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("its answer is lost"), "{problem}");
    }
    assert_eq!(count_items(app, &f.handler, &clients), 1);
    // The key with another body is still another request.
    let other = serde_json::to_vec(&client_body(&code(26), "Muu", &f.provider)).unwrap();
    assert_problem(post_bytes(app, &f.handler, &clients, "written-1", &other), 422, "/problems/idempotency-key-reused");
});

app_test!(fn pl_6_a_citizens_key_claimed_before_a_blind_key_switch_is_still_theirs(app) {
    let code = rekisteri_core::PersonalIdentityCode::parse("131052-308T", rekisteri_core::TemporaryCodesAllowed::No).unwrap();
    let citizen = |index: &[u8]| format!("citizen:{}", rekisteri_crypto::to_hex(index));
    let before = citizen(&rekisteri_audit::subject_index(&app.keyring, &code));
    let (path, body) = ("/v1/me/something", br#"{"a":1}"#);
    claim_as(app, &app.instance, &before, "platform", "retry-me", path, body);
    app.switch_to_rotated_keys();
    let after = citizen(&rekisteri_audit::subject_index(&app.keyring, &code));
    assert_ne!(after, before);
    let scope = rekisteri_idempotency::Scope {
        registrar_id: "platform".to_owned(),
        caller: after,
        earlier_callers: vec![before],
        key: "retry-me".to_owned(),
    };
    let hash = rekisteri_idempotency::request_hash("POST", path, body);
    let now = rekisteri_db::to_primitive(rekisteri_core::Clock::now(&*app.clock));
    let claim = |scope: &rekisteri_idempotency::Scope| {
        rekisteri_idempotency::claim(&mut app.db.conn(), scope, "POST", path, &hash, &app.instance, now).unwrap()
    };
    // The retry finds the first request's claim under the citizen's earlier name.
    assert!(matches!(claim(&scope), rekisteri_idempotency::Claim::InProgress), "{:?}", claim(&scope));
    // Under the new name alone the key would look free, and the request would run twice.
    let bare = rekisteri_idempotency::Scope { earlier_callers: Vec::new(), ..scope };
    assert!(matches!(claim(&bare), rekisteri_idempotency::Claim::Claimed(_)));
});
