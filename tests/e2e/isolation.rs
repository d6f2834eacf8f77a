//! Access hardening (issue 18): an integration never exceeds the intersection of its scopes and
//! the named user's rights (AX-1, AX-2); an idempotent replay is a new read; a duplicate create
//! reveals nothing the caller could not read; another registrar looks like no registrar (AX-4).

use diesel::prelude::*;
use rekisteri_core::Clock;
use rekisteri_db::schema::{security_events, usage_log};
use rekisteri_tests::{TestApp, app_test, assert_problem, idp_app_test, sign_jwt};
use serde_json::{Value, json};

use crate::clients::{MAIJA, client_body, create, home_care_voucher};

/// A registrar with a client, its people, a provider, another registrar and API clients.
struct Setup {
    admin: String,
    admin_id: String,
    registrar: String,
    provider: String,
    other_registrar: String,
    handler: String,
    handler_id: String,
    handler_email: &'static str,
    auditor_id: String,
    main_user_id: String,
    /// A client handler of the registrar without a right to the client's service area.
    outsider_id: String,
    stranger_id: String,
    client: String,
}

fn setup(app: &TestApp) -> Setup {
    let admin = app.bootstrap_admin();
    let admin_id = me(app, &admin)["account"]["id"].as_str().unwrap().to_owned();
    let organisation = |name: &str, kind: &str, oid: &str| app.organisation(&admin, name, kind, oid);
    let registrar = organisation("Tampere", "municipality", "1.2.246.10.1001");
    let other_registrar = organisation("Nokia", "municipality", "1.2.246.10.1002");
    let provider = organisation("Hoiva Oy", "provider", "1.2.246.10.2001");
    let home_care = app.service_area(&admin, &registrar, "home_care", &["home_care"]);
    let disability = app.service_area(&admin, &registrar, "disability", &["personal_assistance"]);
    let handler_email = "handler@tampere.fi";
    let (handler_id, handler) = app.add_user(&admin, handler_email, &registrar, "client_handler");
    app.grant_service_area(&admin, &handler_id, &home_care);
    let (outsider_id, _) = app.add_user(&admin, "disability@tampere.fi", &registrar, "client_handler");
    app.grant_service_area(&admin, &outsider_id, &disability);
    let (auditor_id, _) = app.add_user(&admin, "dpo@tampere.fi", &registrar, "auditor");
    let (main_user_id, _) = app.add_user(&admin, "main@tampere.fi", &registrar, "main_user");
    let (stranger_id, _) = app.add_user(&admin, "handler@nokia.fi", &other_registrar, "client_handler");
    let created = create(
        app,
        &handler,
        &registrar,
        &client_body(MAIJA, json!([home_care_voucher(&provider)])),
    );
    Setup {
        admin,
        admin_id,
        registrar,
        provider,
        other_registrar,
        handler,
        handler_id,
        handler_email,
        auditor_id,
        main_user_id,
        outsider_id,
        stranger_id,
        client: created["id"].as_str().unwrap().to_owned(),
    }
}

/// Sets the registrar's strong-authentication rule behind the API (only admins change it there).
fn require_strong_authentication(app: &TestApp, registrar: &str, required: bool) {
    diesel::update(rekisteri_db::schema::organisations::table.find(registrar))
        .set(rekisteri_db::schema::organisations::strong_authentication_required.eq(required))
        .execute(&mut app.db.conn())
        .unwrap();
}

fn me(app: &TestApp, token: &str) -> Value {
    app.get_as(token, "/v1/me").json().unwrap()
}

/// An API client of `organisation` with `scopes`; returns (client id, access token).
pub(crate) fn api_client(app: &TestApp, admin: &str, organisation: &str, scopes: &[&str]) -> (String, String) {
    let (id, secret) = app.create_api_client(admin, organisation, scopes);
    let token = app.client_credentials_token(&id, &secret);
    (id, token)
}

fn as_integration(
    app: &TestApp,
    method: reqwest::Method,
    token: &str,
    user: Option<&str>,
    path: &str,
    body: Option<&Value>,
) -> reqwest::blocking::Response {
    let mut headers = Vec::new();
    if let Some(user) = user {
        headers.push(("X-On-Behalf-Of", user));
    }
    app.request_as(method, token, path, &headers, body)
}

app_test!(fn ax_1_an_integration_naming_a_user_acts_with_the_intersection_of_its_scopes_and_the_users_rights(app) {
    let s = setup(app);
    let r = &s.registrar;
    // Each operation, the one permission it needs, and what its refusal answers.
    let operations: [(&str, String, &str); 3] = [
        ("clients:read", format!("/v1/registrars/{r}/clients/{}", s.client), "read_clients"),
        ("audit:read", format!("/v1/registrars/{r}/audit/usage"), "read_registrar_audit"),
        ("statistics:read", format!("/v1/registrars/{r}/statistics/clients"), "read_statistics"),
    ];
    // What each named user's roles grant of the three.
    let users: [(&str, &str, &[&str]); 3] = [
        ("client handler", &s.handler_id, &["read_clients", "read_statistics"]),
        ("auditor", &s.auditor_id, &["read_registrar_audit"]),
        ("main user", &s.main_user_id, &["read_statistics"]),
    ];
    let scope_sets: [&[&str]; 4] = [&["statistics:read"], &["clients:read"], &["audit:read"], &["clients:read", "audit:read", "statistics:read"]];
    let mut checked = 0;
    for scopes in scope_sets {
        let (_, token) = api_client(app, &s.admin, r, scopes);
        for (who, user, rights) in users {
            for (scope, path, permission) in &operations {
                let expected = scopes.contains(scope) && rights.contains(permission);
                let response = as_integration(app, reqwest::Method::GET, &token, Some(user), path, None);
                let status = response.status().as_u16();
                let text = response.text().unwrap();
                if expected {
                    assert_eq!(status, 200, "{scopes:?} for the {who}: {path}");
                } else {
                    assert!(status == 403 || status == 404, "{scopes:?} for the {who}: {path} gave {status}");
                    assert!(!text.contains("Meikäläinen") && !text.contains(MAIJA), "{scopes:?} for the {who}: {text}");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 36);
    // The scopes alone do not make an integration an administrator, whoever it names.
    let (_, platform) = api_client(app, &s.admin, r, &["calls:write", "clients:read"]);
    let refused = as_integration(app, reqwest::Method::POST, &platform, Some(&s.admin_id), "/v1/api-clients", Some(&json!({"name": "X", "organisation": r, "scopes": ["clients:write"]})));
    assert_problem(refused, 403, "/problems/forbidden");
    let refused = as_integration(app, reqwest::Method::POST, &platform, None, "/v1/api-clients", Some(&json!({"name": "X", "organisation": r, "scopes": ["clients:write"]})));
    assert_problem(refused, 403, "/problems/forbidden");
    // Nor does it act for an account of another organisation.
    let refused = as_integration(app, reqwest::Method::GET, &platform, Some(&s.stranger_id), &format!("/v1/registrars/{r}/clients/{}", s.client), None);
    assert_problem(refused, 403, "/problems/forbidden");
    // A named user without the client's service area does not reach it, whatever the scopes.
    let refused = as_integration(app, reqwest::Method::GET, &platform, Some(&s.outsider_id), &format!("/v1/registrars/{r}/clients/{}", s.client), None);
    assert_problem(refused, 404, "/problems/not-found");
});

app_test!(fn ax_1_an_integration_never_acts_for_an_administrator(app) {
    let s = setup(app);
    let platform_org = me(app, &s.admin)["account"]["organisation_id"].as_str().unwrap().to_owned();
    // Even a client of the admin's own organisation cannot name the admin.
    let (_, token) = api_client(app, &s.admin, &platform_org, &["calls:write"]);
    let refused = as_integration(app, reqwest::Method::POST, &token, Some(&s.admin_id), "/v1/api-clients", Some(&json!({"name": "X", "organisation": s.registrar, "scopes": ["clients:write"]})));
    let body = assert_problem(refused, 403, "/problems/forbidden");
    assert!(body["detail"].as_str().unwrap().contains("administrator"), "{body}");
    let listed: Value = app.get_as(&s.admin, "/v1/api-clients").json().unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "no client was created: {listed}");
});

// The strong-authentication rule (AX-2) binds a user named by an integration like the user's
// own session: the user's strong token must stand behind the call, or an admin's attestation
// of the system.
idp_app_test!(fn ax_2_a_named_user_reaches_strongly_protected_client_data_only_with_their_strong_sign_in(app) {
    let s = setup(app);
    let r = &s.registrar;
    require_strong_authentication(app, r, true);
    let (client_id, token) = api_client(app, &s.admin, r, &["clients:read"]);
    let path = format!("/v1/registrars/{r}/clients/{}", s.client);
    let read = |headers: &[(&str, &str)]| app.request_as(reqwest::Method::GET, &token, &path, headers, None);
    let user = s.handler_id.as_str();
    // The user's own password session is refused, and so is the system naming the user.
    assert_problem(app.get_as(&s.handler, &path), 403, "/problems/strong-authentication-required");
    assert_problem(read(&[("X-On-Behalf-Of", user)]), 403, "/problems/strong-authentication-required");
    // The system acting as itself is a system: its scope reaches the register.
    assert_eq!(read(&[]).status().as_u16(), 200);
    // With the user's strong token beside the system's: allowed.
    let strong = sign_jwt("ed25519", &app.jwt_claims(json!({"email": s.handler_email, "amr": ["sc"]})));
    assert_eq!(read(&[("X-On-Behalf-Of", user), ("X-On-Behalf-Of-Token", &strong)]).status().as_u16(), 200);
    // A weak token of the user changes nothing; another person's token, or one that does not
    // verify, is refused outright.
    let weak = sign_jwt("ed25519", &app.jwt_claims(json!({"email": s.handler_email, "amr": ["pwd"]})));
    assert_problem(read(&[("X-On-Behalf-Of", user), ("X-On-Behalf-Of-Token", &weak)]), 403, "/problems/strong-authentication-required");
    let someone_else = sign_jwt("ed25519", &app.jwt_claims(json!({"email": "dpo@tampere.fi", "amr": ["sc"]})));
    assert_problem(read(&[("X-On-Behalf-Of", user), ("X-On-Behalf-Of-Token", &someone_else)]), 401, "/problems/unauthenticated");
    let forged = sign_jwt("other-ed25519", &app.jwt_claims(json!({"email": s.handler_email, "amr": ["sc"]})));
    assert_problem(read(&[("X-On-Behalf-Of", user), ("X-On-Behalf-Of-Token", &forged)]), 401, "/problems/unauthenticated");
    // An admin's attestation that the system authenticates its users strongly: allowed without
    // the user's token; the listing shows who attested and when; a security event names it.
    let attestation = format!("/v1/api-clients/{client_id}/strong-user-authentication");
    let main_user = app.token("main@tampere.fi", rekisteri_tests::USER_PASSWORD);
    assert_problem(app.request_as(reqwest::Method::PUT, &main_user, &attestation, &[], None), 403, "/problems/forbidden");
    let attested = app.request_as(reqwest::Method::PUT, &s.admin, &attestation, &[], None);
    assert_eq!(attested.status().as_u16(), 200);
    let attested: Value = attested.json().unwrap();
    assert_eq!(attested["strong_user_authentication"]["attested_by"], s.admin_id.as_str());
    assert!(attested["strong_user_authentication"]["attested_at"].is_string());
    let listed: Value = app.get_as(&s.admin, "/v1/api-clients").json().unwrap();
    let entry = listed["items"].as_array().unwrap().iter().find(|c| c["id"] == client_id.as_str()).unwrap().clone();
    assert_eq!(entry["strong_user_authentication"], attested["strong_user_authentication"]);
    assert_eq!(read(&[("X-On-Behalf-Of", user)]).status().as_u16(), 200);
    let kinds: Vec<String> = security_events::table
        .select(security_events::event_type)
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(kinds.iter().filter(|k| *k == "api_client_strong_user_authentication_attested").count(), 1);
    // Withdrawn: the user's own strong token is needed again.
    assert_eq!(app.request_as(reqwest::Method::DELETE, &s.admin, &attestation, &[], None).status().as_u16(), 200);
    assert_problem(read(&[("X-On-Behalf-Of", user)]), 403, "/problems/strong-authentication-required");
    let listed: Value = app.get_as(&s.admin, "/v1/api-clients").json().unwrap();
    assert!(listed["items"][0]["strong_user_authentication"].is_null());
});

app_test!(fn ax_4_an_idempotent_replay_is_a_new_read_for_the_current_caller(app) {
    let s = setup(app);
    let r = &s.registrar;
    let (_, token) = api_client(app, &s.admin, r, &["clients:write", "clients:read"]);
    let path = format!("/v1/registrars/{r}/clients");
    let code = crate::clients::code(7);
    let body = client_body(&code, json!([home_care_voucher(&s.provider)]));
    let post = |user: &str| {
        app.request_as(reqwest::Method::POST, &token, &path, &[("X-On-Behalf-Of", user), ("Idempotency-Key", "push-1")], Some(&body))
    };
    let first = post(&s.handler_id);
    assert_eq!(first.status().as_u16(), 201, "{}", first.text().unwrap());
    let replay = post(&s.handler_id);
    assert_eq!(replay.status().as_u16(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    // Another user of the same system with the same key is another caller: the stored answer
    // is not theirs (the create runs again for them, and may not reach the client).
    let other = post(&s.outsider_id);
    assert_ne!(other.status().as_u16(), 201);
    assert!(other.headers().get("idempotent-replayed").is_none());
    let text = other.text().unwrap();
    assert!(!text.contains(&code) && !text.contains("Meikäläinen"), "{text}");
    // The same user, once the service-area right has ended, gets what a new read gets: 404.
    let right: String = rekisteri_db::schema::account_service_areas::table
        .filter(rekisteri_db::schema::account_service_areas::account_id.eq(&s.handler_id))
        .select(rekisteri_db::schema::account_service_areas::id)
        .first(&mut app.db.conn())
        .unwrap();
    diesel::update(rekisteri_db::schema::account_service_areas::table.find(&right))
        .set(rekisteri_db::schema::account_service_areas::valid_until.eq(Some(rekisteri_db::to_primitive(app.clock.now()))))
        .execute(&mut app.db.conn())
        .unwrap();
    let problem = assert_problem(post(&s.handler_id), 404, "/problems/not-found");
    let text = problem.to_string();
    assert!(!text.contains(&code) && !text.contains("Meikäläinen"), "{text}");
});

app_test!(fn cl_1_a_duplicate_create_answers_409_naming_the_client_only_to_whoever_reaches_it_and_is_logged(app) {
    let s = setup(app);
    let r = &s.registrar;
    let outsider = app.token("disability@tampere.fi", rekisteri_tests::USER_PASSWORD);
    let mut assistance = home_care_voucher(&s.provider);
    assistance["service_type"] = json!("personal_assistance");
    let mut body = client_body(MAIJA, json!([assistance]));
    body["surname"] = json!("Toinen");
    // A handler without the client's service area learns the person is there, and no more.
    let refused = app.post_as(&outsider, &format!("/v1/registrars/{r}/clients"), &body);
    let problem = assert_problem(refused, 409, "/problems/conflict");
    assert!(problem.get("existing").is_none(), "{problem}");
    let text = problem.to_string();
    assert!(!text.contains(&s.client) && !text.contains(MAIJA), "{text}");
    // The handler who reaches the client is told which one it is.
    let own = client_body(MAIJA, json!([home_care_voucher(&s.provider)]));
    let refused = app.post_as(&s.handler, &format!("/v1/registrars/{r}/clients"), &own);
    let problem = assert_problem(refused, 409, "/problems/conflict");
    assert_eq!(problem["existing"], format!("/v1/registrars/{r}/clients/{}", s.client));
    // Both attempts are in the usage log: who learnt of whom, with the basis.
    let entries: Vec<(String, String, String, Option<String>)> = usage_log::table
        .filter(usage_log::registrar_id.eq(r))
        .filter(usage_log::outcome.eq("exists"))
        .order(usage_log::seq)
        .select((usage_log::actor_id, usage_log::access_basis, usage_log::data_kind, usage_log::data_id))
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(
        entries,
        vec![
            (s.outsider_id.clone(), "role".to_owned(), "client".to_owned(), Some(s.client.clone())),
            (s.handler_id.clone(), "role".to_owned(), "client".to_owned(), Some(s.client.clone())),
        ]
    );
    // Nothing else was created.
    let count: i64 = rekisteri_db::schema::clients::table.count().get_result(&mut app.db.conn()).unwrap();
    assert_eq!(count, 1);
});

/// What a response says, without what differs between any two requests: status, content type
/// and body.
type Answer = (u16, Option<String>, String);

fn answer(response: reqwest::blocking::Response) -> Answer {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, content_type, response.text().unwrap())
}

app_test!(fn ax_4_another_registrars_paths_answer_exactly_what_a_registrar_that_does_not_exist_answers(app) {
    let s = setup(app);
    let r = &s.registrar;
    // The registrar requires strong authentication, which the stranger's session is not.
    require_strong_authentication(app, r, true);
    let stranger = app.token("handler@nokia.fi", rekisteri_tests::USER_PASSWORD);
    let (_, integration) = api_client(app, &s.admin, &s.other_registrar, &["clients:read", "clients:write", "audit:read"]);
    let random = "5f0e8c3a-9d1b-4c7e-8a2f-6b4d3e2c1a09".to_owned();
    let client = s.client.clone();
    let calls = |registrar: &str, token: &str| -> Vec<(&'static str, Answer)> {
        let p = |rest: &str| format!("/v1/registrars/{registrar}{rest}");
        let search = json!({"identity_code": MAIJA});
        vec![
            ("GET client", answer(app.request_as(reqwest::Method::GET, token, &p(&format!("/clients/{client}")), &[], None))),
            ("GET list", answer(app.request_as(reqwest::Method::GET, token, &p("/clients"), &[], None))),
            ("POST search", answer(app.request_as(reqwest::Method::POST, token, &p("/clients/search"), &[], Some(&search)))),
            ("PATCH bad If-Match", answer(app.request_as(reqwest::Method::PATCH, token, &p(&format!("/clients/{client}")), &[("If-Match", "not a version")], Some(&json!({"language": "sv"}))))),
            ("PATCH good If-Match", answer(app.request_as(reqwest::Method::PATCH, token, &p(&format!("/clients/{client}")), &[("If-Match", "\"1\"")], Some(&json!({"language": "sv"}))))),
            ("POST create, bad body", answer(app.request_as(reqwest::Method::POST, token, &p("/clients"), &[("Idempotency-Key", "k-1")], Some(&json!({"nonsense": true}))))),
            ("GET audit", answer(app.request_as(reqwest::Method::GET, token, &p("/audit/usage"), &[], None))),
            ("GET statistics", answer(app.request_as(reqwest::Method::GET, token, &p("/statistics/clients"), &[], None))),
            ("GET settlement", answer(app.request_as(reqwest::Method::GET, token, &p("/settlements?month=2026-01"), &[], None))),
        ]
    };
    let mut pairs = 0;
    for (who, token) in [("another registrar's handler", stranger.as_str()), ("another registrar's integration", integration.as_str())] {
        let foreign = calls(r, token);
        let missing = calls(&random, token);
        for ((call, foreign), (_, missing)) in foreign.into_iter().zip(missing) {
            assert_eq!(foreign, missing, "{who}: {call}");
            assert_eq!(foreign.0, 404, "{who}: {call}: {}", foreign.2);
            pairs += 1;
        }
    }
    assert_eq!(pairs, 18);
    // Nothing changed, and the registrar's log shows who knocked.
    let client: Value = {
        require_strong_authentication(app, r, false);
        app.get_as(&s.handler, &format!("/v1/registrars/{r}/clients/{}", s.client)).json().unwrap()
    };
    assert_eq!(client["language"], "fi");
    let mut knocks: Vec<(String, Option<String>)> = usage_log::table
        .filter(usage_log::registrar_id.eq(r))
        .filter(usage_log::outcome.eq("denied"))
        .filter(usage_log::actor_id.eq(&s.stranger_id))
        .select((usage_log::data_kind, usage_log::data_id))
        .load(&mut app.db.conn())
        .unwrap();
    knocks.sort();
    let on_client = (String::from("client"), Some(s.client.clone()));
    let on_registrar = (String::from("registrar"), Some(r.clone()));
    assert_eq!(knocks, [vec![on_client; 3], vec![on_registrar; 6]].concat());
});

// A read by a token this server already knows skips the middleware's blocking call: the read's
// own call confirms the caller on its connection before it reads anything (PL-12: one hop per
// audited read). A caller moved to another organisation behind the API meanwhile (as another
// server process would write it) is refused there as the middleware refuses a stranger: 404
// and a denied knock in the registrar's log, and no read. A session ended meanwhile answers 401
// with its challenge.
app_test!(fn pl_12_a_remembered_caller_is_confirmed_by_the_reads_own_call_before_anything_is_read(app) {
    use rekisteri_db::schema::accounts;
    let s = setup(app);
    let r = &s.registrar;
    let path = format!("/v1/registrars/{r}/clients/{}", s.client);
    let entries_on_client = |outcome: &str| -> i64 {
        usage_log::table
            .filter(usage_log::registrar_id.eq(r))
            .filter(usage_log::actor_id.eq(&s.handler_id))
            .filter(usage_log::data_id.eq(&s.client))
            .filter(usage_log::outcome.eq(outcome))
            .count()
            .get_result(&mut app.db.conn())
            .unwrap()
    };
    let read_before = entries_on_client("used");
    // Twice: the second read's caller is the one the server kept.
    for _ in 0..2 {
        assert_eq!(app.get_as(&s.handler, &path).status().as_u16(), 200);
    }
    assert_eq!(entries_on_client("used"), read_before + 2);
    diesel::update(accounts::table.find(&s.handler_id))
        .set(accounts::organisation_id.eq(&s.other_registrar))
        .execute(&mut app.db.conn())
        .unwrap();
    assert_problem(app.get_as(&s.handler, &path), 404, "/problems/not-found");
    assert_eq!(entries_on_client("used"), read_before + 2, "nothing was read");
    let knocks: Vec<(String, String)> = usage_log::table
        .filter(usage_log::registrar_id.eq(r))
        .filter(usage_log::actor_id.eq(&s.handler_id))
        .filter(usage_log::outcome.eq("denied"))
        .select((usage_log::data_kind, usage_log::purpose))
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(knocks, [("client".to_owned(), "GET outside the caller's registrars".to_owned())]);
    // Back home, the same session reads again; ended through the API, it is refused with the
    // challenge, though this server kept its principal.
    diesel::update(accounts::table.find(&s.handler_id))
        .set(accounts::organisation_id.eq(r))
        .execute(&mut app.db.conn())
        .unwrap();
    for _ in 0..2 {
        assert_eq!(app.get_as(&s.handler, &path).status().as_u16(), 200);
    }
    assert_eq!(app.post_as(&s.handler, "/v1/auth/logout", &json!({})).status().as_u16(), 204);
    let refused = app.get_as(&s.handler, &path);
    assert_eq!(refused.headers().get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"));
    assert_problem(refused, 401, "/problems/unauthenticated");
    assert_eq!(entries_on_client("used"), read_before + 4);
});
