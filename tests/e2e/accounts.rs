//! Accounts, organisations, invitations, sessions (AC) and authentication everywhere (AX-2).

use diesel::prelude::*;
use rekisteri_core::Clock;
use rekisteri_db::schema::security_events;
use rekisteri_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, USER_PASSWORD, app_test, assert_problem};
use serde_json::{Value, json};

/// The security events of one type, oldest first, as (organisation, actor, details).
fn security_events_of(app: &TestApp, event_type: &str) -> Vec<(Option<String>, Option<String>, Value)> {
    security_events::table
        .filter(security_events::event_type.eq(event_type))
        .order((security_events::occurred_at, security_events::seq))
        .select((
            security_events::organisation_id,
            security_events::actor_id,
            security_events::details,
        ))
        .load::<(Option<String>, Option<String>, String)>(&mut app.db.conn())
        .unwrap()
        .into_iter()
        .map(|(o, a, d)| (o, a, serde_json::from_str(&d).unwrap()))
        .collect()
}

fn invite(app: &TestApp, token: &str, email: &str, organisation_id: &str, role: &str) -> reqwest::blocking::Response {
    app.post_as(
        token,
        "/v1/accounts",
        &json!({"email": email, "first_name": "Matti", "surname": "Mallikas",
            "organisation_id": organisation_id, "role": role}),
    )
}

app_test!(fn ax_2_every_operation_but_health_and_docs_requires_authentication(app) {
    let doc: Value = app.get("/openapi.json").json().unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let public = operation["security"] == json!([]);
            assert_eq!(public, path.starts_with("/health/") || path.starts_with("/v1/auth/login")
                || path.starts_with("/v1/auth/invitations/accept") || path.starts_with("/v1/auth/token"),
                "{method} {path}: unexpected public flag");
            if public {
                continue;
            }
            let concrete = path.replace(['{', '}'], "");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for token in [None, Some("not-a-session-token")] {
                let mut request = app.client.request(method.clone(), app.url(&concrete));
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                let response = request.json(&json!({})).send().unwrap();
                assert_eq!(
                    response.headers().get("www-authenticate").and_then(|v| v.to_str().ok()),
                    Some("Bearer"),
                    "{method} {path}"
                );
                assert_problem(response, 401, "/problems/unauthenticated");
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} operations were checked");
    // The documented public operations answer without credentials.
    assert_eq!(app.get("/health/live").status().as_u16(), 200);
    assert_eq!(app.get("/openapi.json").status().as_u16(), 200);
});

app_test!(fn ax_2_unknown_paths_are_404_whether_or_not_authenticated(app) {
    assert_problem(app.get("/v1/no-such-thing"), 404, "/problems/not-found");
});

app_test!(fn ac_3_invitation_sets_the_first_password_once(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let response = invite(app, &admin, "Maija@Example.FI", &org, "main_user");
    assert_eq!(response.status().as_u16(), 201);
    let body: Value = response.json().unwrap();
    assert_eq!(body["account"]["status"], "invited");
    // Shown as given; unique and found regardless of case.
    assert_eq!(body["account"]["email"], "Maija@Example.FI");
    let invitation = body["invitation_token"].as_str().unwrap().to_owned();
    // Before accepting, nobody can log in with any password.
    assert_problem(app.login("maija@example.fi", USER_PASSWORD), 401, "/problems/unauthenticated");
    let accept = |password: &str| {
        app.post("/v1/auth/invitations/accept", None, &json!({"token": invitation, "password": password}))
    };
    let accepted = accept(USER_PASSWORD);
    assert_eq!(accepted.status().as_u16(), 200);
    let account: Value = accepted.json().unwrap();
    assert_eq!(account["status"], "active");
    assert!(account.get("password_hash").is_none());
    // Single use: the same token again is refused and the password stays.
    let body = assert_problem(accept("another long password here"), 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "token");
    // The e-mail address is case-insensitive.
    assert_eq!(app.login("MAIJA@example.fi", USER_PASSWORD).status().as_u16(), 200);
    assert_problem(app.login("maija@example.fi", "another long password here"), 401, "/problems/unauthenticated");
});

app_test!(fn ac_3_expired_invitation_is_refused(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let body: Value = invite(app, &admin, "late@example.fi", &org, "editor").json().unwrap();
    app.clock.advance(time::Duration::days(7) + time::Duration::seconds(1));
    let response = app.post(
        "/v1/auth/invitations/accept",
        None,
        &json!({"token": body["invitation_token"], "password": USER_PASSWORD}),
    );
    let problem = assert_problem(response, 422, "/problems/business-rule");
    assert_eq!(problem["errors"][0]["field"], "token");
});

app_test!(fn ac_2_an_email_address_has_one_account(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    assert_eq!(invite(app, &admin, "same@example.fi", &org, "editor").status().as_u16(), 201);
    assert_problem(invite(app, &admin, "SAME@example.fi", &org, "expert"), 409, "/problems/conflict");
});

app_test!(fn ac_4_main_user_manages_only_its_own_organisation_and_never_grants_admin(app) {
    let admin = app.bootstrap_admin();
    let own = app.create_organisation(&admin, "Kotikunta", "municipality");
    let other = app.create_organisation(&admin, "Naapurikunta", "municipality");
    let (_, main_user) = app.add_user(&admin, "main@kotikunta.fi", &own, "main_user");
    let (stranger_id, _) = app.add_user(&admin, "main@naapuri.fi", &other, "editor");

    let problem = assert_problem(invite(app, &main_user, "boss@kotikunta.fi", &own, "admin"), 403, "/problems/forbidden");
    assert!(problem["detail"].as_str().unwrap().contains("admin"), "{problem}");
    assert_problem(invite(app, &main_user, "x@naapuri.fi", &other, "editor"), 404, "/problems/not-found");
    assert_problem(app.get_as(&main_user, &format!("/v1/accounts/{stranger_id}")), 404, "/problems/not-found");
    assert_problem(app.delete_as(&main_user, &format!("/v1/accounts/{stranger_id}")), 404, "/problems/not-found");
    // The same body as a missing account: existence is not revealed.
    assert_problem(app.get_as(&main_user, "/v1/accounts/00000000-0000-0000-0000-000000000000"), 404, "/problems/not-found");

    // Within its own organisation it invites and lists.
    assert_eq!(invite(app, &main_user, "new@kotikunta.fi", &own, "editor").status().as_u16(), 201);
    let list: Value = app.get_as(&main_user, "/v1/accounts").json().unwrap();
    let emails: Vec<&str> = list["items"].as_array().unwrap().iter().map(|a| a["email"].as_str().unwrap()).collect();
    assert_eq!(emails.len(), 2, "{emails:?}");
    assert!(emails.contains(&"main@kotikunta.fi") && emails.contains(&"new@kotikunta.fi"));
});

app_test!(fn ac_4_editor_and_expert_cannot_invite(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let (_, editor) = app.add_user(&admin, "editor@kotikunta.fi", &org, "editor");
    let (_, expert) = app.add_user(&admin, "expert@kotikunta.fi", &org, "expert");
    for token in [&editor, &expert] {
        assert_problem(invite(app, token, "x@kotikunta.fi", &org, "expert"), 403, "/problems/forbidden");
    }
    // An editor sees only itself.
    let list: Value = app.get_as(&editor, "/v1/accounts").json().unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["email"], "editor@kotikunta.fi");
});

app_test!(fn ac_9_account_data_reaches_only_itself_its_main_users_and_admins(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let (editor_id, editor) = app.add_user(&admin, "editor@kotikunta.fi", &org, "editor");
    let (expert_id, expert) = app.add_user(&admin, "expert@kotikunta.fi", &org, "expert");
    assert_problem(app.get_as(&expert, &format!("/v1/accounts/{editor_id}")), 404, "/problems/not-found");
    assert_eq!(app.get_as(&expert, &format!("/v1/accounts/{expert_id}")).status().as_u16(), 200);
    assert_eq!(app.get_as(&admin, &format!("/v1/accounts/{editor_id}")).status().as_u16(), 200);
    let me: Value = app.get_as(&editor, "/v1/me").json().unwrap();
    assert_eq!(me["account"]["id"], editor_id.as_str());
    assert_eq!(me["roles"], json!(["editor"]));
    assert_eq!(me["auth_method"], "password");
});

app_test!(fn ac_5_short_and_common_passwords_are_refused(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let body: Value = invite(app, &admin, "weak@example.fi", &org, "editor").json().unwrap();
    let token = body["invitation_token"].as_str().unwrap();
    // Too short breaks the document (400); a common password is refused by a rule (422).
    for (password, status, kind) in [
        ("short pass", 400, "/problems/validation"),
        ("Q1W2E3R4T5Y6", 422, "/problems/business-rule"),
        ("qwerty123456", 422, "/problems/business-rule"),
    ] {
        let response = app.post("/v1/auth/invitations/accept", None, &json!({"token": token, "password": password}));
        let problem = assert_problem(response, status, kind);
        assert_eq!(problem["errors"][0]["field"], "password", "{password}: {problem}");
        assert!(!problem.to_string().contains(password), "the password is echoed");
    }
    // The token was not used up by the refusals.
    let ok = app.post("/v1/auth/invitations/accept", None, &json!({"token": token, "password": USER_PASSWORD}));
    assert_eq!(ok.status().as_u16(), 200);
});

app_test!(fn ac_5_failed_logins_are_throttled(app) {
    let _admin = app.bootstrap_admin();
    for _ in 0..5 {
        assert_problem(app.login(ADMIN_EMAIL, "wrong password, long enough"), 401, "/problems/unauthenticated");
    }
    let response = app.login(ADMIN_EMAIL, ADMIN_PASSWORD);
    let retry_after: i64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0 && retry_after <= 15 * 60, "{retry_after}");
    assert_problem(response, 429, "/problems/too-many-requests");
    // One event for the window's failures, one for the hold they earned (with their count).
    assert_eq!(security_events_of(app, "login_failed").len(), 1);
    let throttled = security_events_of(app, "login_throttled");
    assert_eq!(throttled.len(), 1);
    assert_eq!(throttled[0].2["failures"], 5);
    // After the window the right password works again.
    app.clock.advance(time::Duration::minutes(16));
    assert_eq!(app.login(ADMIN_EMAIL, ADMIN_PASSWORD).status().as_u16(), 200);
});

app_test!(fn ac_5_login_for_unknown_email_is_refused_like_a_wrong_password(app) {
    let _admin = app.bootstrap_admin();
    let unknown = assert_problem(app.login("nobody@example.fi", ADMIN_PASSWORD), 401, "/problems/unauthenticated");
    let wrong = assert_problem(app.login(ADMIN_EMAIL, "wrong password, long enough"), 401, "/problems/unauthenticated");
    assert_eq!(unknown["detail"], wrong["detail"]);
});

app_test!(fn ac_6_logout_ends_the_session_and_is_logged(app) {
    let admin = app.bootstrap_admin();
    assert_eq!(app.get_as(&admin, "/v1/me").status().as_u16(), 200);
    let response = app.post_as(&admin, "/v1/auth/logout", &json!({}));
    assert_eq!(response.status().as_u16(), 204);
    assert_problem(app.get_as(&admin, "/v1/me"), 401, "/problems/unauthenticated");
    let logouts = security_events_of(app, "logout");
    assert_eq!(logouts.len(), 1);
    assert_eq!(logouts[0].2["roles"], json!(["admin"]), "{:?}", logouts[0]);
    let logins = security_events_of(app, "login");
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].2["roles"], json!(["admin"]), "{:?}", logins[0]);
});

app_test!(fn ac_6_sessions_expire_when_idle_and_absolutely(app) {
    let admin = app.bootstrap_admin();
    app.clock.advance(time::Duration::minutes(29));
    assert_eq!(app.get_as(&admin, "/v1/me").status().as_u16(), 200);
    app.clock.advance(time::Duration::minutes(31));
    assert_problem(app.get_as(&admin, "/v1/me"), 401, "/problems/unauthenticated");
    assert_eq!(security_events_of(app, "session_expired").len(), 1);

    // Kept busy, a session still ends after 12 hours.
    let busy = app.token(ADMIN_EMAIL, ADMIN_PASSWORD);
    for _ in 0..25 {
        assert_eq!(app.get_as(&busy, "/v1/me").status().as_u16(), 200);
        app.clock.advance(time::Duration::minutes(29));
    }
    assert_problem(app.get_as(&busy, "/v1/me"), 401, "/problems/unauthenticated");
});

app_test!(fn ac_8_closed_account_cannot_log_in_and_its_session_stops_at_once(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let (id, user) = app.add_user(&admin, "leaving@kotikunta.fi", &org, "editor");
    assert_eq!(app.get_as(&user, "/v1/me").status().as_u16(), 200);
    let closed = app.delete_as(&admin, &format!("/v1/accounts/{id}"));
    assert_eq!(closed.status().as_u16(), 200);
    assert_eq!(closed.json::<Value>().unwrap()["status"], "closed");
    assert_problem(app.get_as(&user, "/v1/me"), 401, "/problems/unauthenticated");
    assert_problem(app.login("leaving@kotikunta.fi", USER_PASSWORD), 401, "/problems/unauthenticated");
    let events = security_events_of(app, "account_closed");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0.as_deref(), Some(org.as_str()));
});

app_test!(fn ac_8_admin_restores_a_closed_account_within_30_days_only(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let (_, main_user) = app.add_user(&admin, "main@kotikunta.fi", &org, "main_user");
    let (early, _) = app.add_user(&admin, "early@kotikunta.fi", &org, "editor");
    let (late, _) = app.add_user(&admin, "late@kotikunta.fi", &org, "editor");
    for id in [&early, &late] {
        assert_eq!(app.delete_as(&main_user, &format!("/v1/accounts/{id}")).status().as_u16(), 200);
    }
    // Restoring is for admins.
    assert_problem(app.post_as(&main_user, &format!("/v1/accounts/{early}/restore"), &json!({})), 403, "/problems/forbidden");
    app.clock.advance(time::Duration::days(29));
    let admin = app.token(ADMIN_EMAIL, ADMIN_PASSWORD);
    let restored = app.post_as(&admin, &format!("/v1/accounts/{early}/restore"), &json!({}));
    assert_eq!(restored.status().as_u16(), 200);
    assert_eq!(restored.json::<Value>().unwrap()["status"], "active");
    assert_eq!(app.login("early@kotikunta.fi", USER_PASSWORD).status().as_u16(), 200);
    app.clock.advance(time::Duration::days(1) + time::Duration::seconds(1));
    let admin = app.token(ADMIN_EMAIL, ADMIN_PASSWORD);
    assert_problem(app.post_as(&admin, &format!("/v1/accounts/{late}/restore"), &json!({})), 409, "/problems/conflict");
});

app_test!(fn ac_10_account_and_organisation_changes_are_security_events(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let (id, _) = app.add_user(&admin, "someone@kotikunta.fi", &org, "expert");
    let created = security_events_of(app, "organisation_created");
    assert!(created.iter().any(|(o, _, _)| o.as_deref() == Some(org.as_str())), "{created:?}");
    let invited = security_events_of(app, "account_invited");
    let invited_here: Vec<_> = invited.iter().filter(|(o, _, _)| o.as_deref() == Some(org.as_str())).collect();
    assert_eq!(invited_here.len(), 1, "{invited:?}");
    assert_eq!(invited_here[0].2["account_id"], id.as_str());
    assert!(invited_here[0].1.is_some(), "the inviting admin is the actor");
    // Personal details never enter the security log.
    for (_, _, details) in security_events_of(app, "account_invited") {
        assert!(!details.to_string().contains("someone@"), "{details}");
    }
});

app_test!(fn ax_2_a_session_token_is_never_echoed(app) {
    let _admin = app.bootstrap_admin();
    let response = app.login(ADMIN_EMAIL, ADMIN_PASSWORD);
    assert!(response.headers().get("set-cookie").is_none());
    let body: Value = response.json().unwrap();
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.len(), 43, "256 bits in unpadded base64url");
    let me = app.get_as(token, "/v1/me").text().unwrap();
    assert!(!me.contains(token));
});

fn main_user_grant(app: &TestApp, admin: &str, id: &str) -> String {
    let account: Value = app.get_as(admin, &format!("/v1/accounts/{id}")).json().unwrap();
    account["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "main_user")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

app_test!(fn ac_11_ending_a_role_now_stops_it_and_ends_the_sessions_that_relied_on_it(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let (id, main_user) = app.add_user(&admin, "main@kotikunta.fi", &org, "main_user");
    assert_eq!(invite(app, &main_user, "a@kotikunta.fi", &org, "editor").status().as_u16(), 201);
    let grant = main_user_grant(app, &admin, &id);
    let ended = app.client.patch(app.url(&format!("/v1/accounts/{id}/roles/{grant}"))).bearer_auth(&admin).json(&json!({})).send().unwrap();
    assert_eq!(ended.status().as_u16(), 200);
    let account: Value = ended.json().unwrap();
    // The grant is kept as history, with its end.
    assert!(account["roles"][0]["valid_until"].is_string(), "{account}");
    assert_problem(app.get_as(&main_user, "/v1/me"), 401, "/problems/unauthenticated");
    let again = app.token("main@kotikunta.fi", USER_PASSWORD);
    let me: Value = app.get_as(&again, "/v1/me").json().unwrap();
    assert_eq!(me["roles"], json!([]));
    assert_problem(invite(app, &again, "b@kotikunta.fi", &org, "editor"), 403, "/problems/forbidden");
    let events = security_events_of(app, "role_ended");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].2["sessions_ended"], 1);
});

app_test!(fn ac_11_a_role_ended_from_a_date_stops_working_at_that_moment_for_a_logged_in_user(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let (id, main_user) = app.add_user(&admin, "main@kotikunta.fi", &org, "main_user");
    let grant = main_user_grant(app, &admin, &id);
    let until = rekisteri_audit::format_time(rekisteri_db::to_primitive(app.clock.now() + time::Duration::minutes(10)));
    let ended = app.client.patch(app.url(&format!("/v1/accounts/{id}/roles/{grant}"))).bearer_auth(&admin)
        .json(&json!({"valid_until": until})).send().unwrap();
    assert_eq!(ended.status().as_u16(), 200);
    assert_eq!(invite(app, &main_user, "a@kotikunta.fi", &org, "editor").status().as_u16(), 201);
    app.clock.advance(time::Duration::minutes(10));
    // Same session, next request: the role is gone.
    assert_problem(invite(app, &main_user, "b@kotikunta.fi", &org, "editor"), 403, "/problems/forbidden");
    let me: Value = app.get_as(&main_user, "/v1/me").json().unwrap();
    assert_eq!(me["roles"], json!([]));
});

// The server keeps a token's principal under the database's access version (PL-12); a change
// written by another process (here: straight to the database, as another server or an operator's
// tool would) moves the version, so the next request of this server sees it.
app_test!(fn ac_11_a_right_changed_by_another_process_holds_on_the_next_request_of_this_server(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let (id, main_user) = app.add_user(&admin, "main@kotikunta.fi", &org, "main_user");
    let grant = main_user_grant(app, &admin, &id);
    let version = || -> i64 {
        use rekisteri_db::schema::access_version;
        access_version::table.select(access_version::version).first(&mut app.db.conn()).unwrap()
    };
    // Twice, so the second answer comes from the kept principal.
    for _ in 0..2 {
        let me: Value = app.get_as(&main_user, "/v1/me").json().unwrap();
        assert_eq!(me["roles"], json!(["main_user"]));
    }
    let before = version();
    use rekisteri_db::schema::{account_roles, accounts};
    diesel::update(account_roles::table.find(&grant))
        .set(account_roles::valid_until.eq(Some(rekisteri_db::to_primitive(app.clock.now()))))
        .execute(&mut app.db.conn())
        .unwrap();
    assert!(version() > before, "ending a right moves the access version");
    let me: Value = app.get_as(&main_user, "/v1/me").json().unwrap();
    assert_eq!(me["roles"], json!([]));
    assert_problem(invite(app, &main_user, "a@kotikunta.fi", &org, "editor"), 403, "/problems/forbidden");
    // Closing the account the same way ends the session at once.
    diesel::update(accounts::table.find(&id)).set(accounts::status.eq("closed")).execute(&mut app.db.conn()).unwrap();
    assert_problem(app.get_as(&main_user, "/v1/me"), 401, "/problems/unauthenticated");
    // A login or a last_seen_at step moves nothing (they change no kept answer).
    let before = version();
    let editor = app.add_user(&admin, "editor@kotikunta.fi", &org, "editor").1;
    let after_add = version();
    assert!(after_add > before, "granting a role moves the version");
    let _ = app.get_as(&editor, "/v1/me");
    app.clock.advance(time::Duration::minutes(2));
    let _ = app.get_as(&editor, "/v1/me");
    assert_eq!(version(), after_add);
});

app_test!(fn ac_4_main_user_grants_roles_in_its_organisation_but_never_admin(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let (_, main_user) = app.add_user(&admin, "main@kotikunta.fi", &org, "main_user");
    let (editor_id, editor) = app.add_user(&admin, "editor@kotikunta.fi", &org, "editor");
    let grant = |token: &str, role: &str| app.post_as(token, &format!("/v1/accounts/{editor_id}/roles"), &json!({"role": role}));
    assert_problem(grant(&main_user, "admin"), 403, "/problems/forbidden");
    assert_problem(grant(&editor, "main_user"), 403, "/problems/forbidden");
    let granted = grant(&main_user, "expert");
    assert_eq!(granted.status().as_u16(), 201);
    let me: Value = app.get_as(&editor, "/v1/me").json().unwrap();
    assert_eq!(me["roles"], json!(["editor", "expert"]));
    let bad = app.post_as(&main_user, &format!("/v1/accounts/{editor_id}/roles"), &json!({"role": "expert", "valid_from": "2027-01-01", "valid_until": "2026-01-01"}));
    assert_eq!(assert_problem(bad, 422, "/problems/business-rule")["errors"][0]["field"], "valid_until");
});

app_test!(fn ac_4_nobody_grants_a_role_to_their_own_account(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let (main_id, main_user) = app.add_user(&admin, "main@kotikunta.fi", &org, "main_user");
    let admin_id = app.get_as(&admin, "/v1/me").json::<Value>().unwrap()["account"]["id"].as_str().unwrap().to_owned();
    let grant = |token: &str, id: &str, role: &str| app.post_as(token, &format!("/v1/accounts/{id}/roles"), &json!({"role": role}));
    for (token, id, role) in [
        (&main_user, &main_id, "client_handler"),
        (&main_user, &main_id, "main_user"),
        (&admin, &admin_id, "auditor"),
        (&admin, &admin_id, "admin"),
    ] {
        let body = assert_problem(grant(token, id, role), 403, "/problems/forbidden");
        assert_eq!(body["detail"], "nobody grants a role to their own account", "{role}");
    }
    let roles = |token: &str| app.get_as(token, "/v1/me").json::<Value>().unwrap()["roles"].clone();
    assert_eq!(roles(&main_user), json!(["main_user"]));
    assert_eq!(roles(&admin), json!(["admin"]));
    // Someone else may.
    assert_eq!(grant(&admin, &main_id, "client_handler").status().as_u16(), 201);
    assert_eq!(roles(&main_user), json!(["main_user", "client_handler"]));
});

app_test!(fn ac_4_nobody_grants_a_service_area_right_or_a_service_unit_to_their_own_account(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let (main_id, main_user) = app.add_user(&admin, "main@kotikunta.fi", &org, "main_user");
    let area: Value = app
        .post_as(&admin, &format!("/v1/registrars/{org}/service-areas"), &json!({"code": "elderly", "name": "Ikäihmiset", "service_types": ["home_care"]}))
        .json()
        .unwrap();
    let unit: Value = app
        .post_as(&admin, &format!("/v1/organisations/{org}/service-units"), &json!({"oid": "1.2.246.10.1001.10.1", "name": "Kotihoito"}))
        .json()
        .unwrap();
    let grant_area = |token: &str| app.post_as(token, &format!("/v1/accounts/{main_id}/service-areas"), &json!({"service_area_id": area["id"]}));
    let join_unit = |token: &str| app.post_as(token, &format!("/v1/accounts/{main_id}/service-units"), &json!({"service_unit_id": unit["id"]}));
    let body = assert_problem(grant_area(&main_user), 403, "/problems/forbidden");
    assert_eq!(body["detail"], "nobody grants a service-area right to their own account");
    let body = assert_problem(join_unit(&main_user), 403, "/problems/forbidden");
    assert_eq!(body["detail"], "nobody adds their own account to a service unit");
    let areas: Value = app.get_as(&admin, &format!("/v1/accounts/{main_id}/service-areas")).json().unwrap();
    assert_eq!(areas["items"], json!([]), "{areas}");
    let units: Value = app.get_as(&admin, &format!("/v1/accounts/{main_id}/service-units")).json().unwrap();
    assert_eq!(units["items"], json!([]), "{units}");
    // Someone else may.
    assert_eq!(grant_area(&admin).status().as_u16(), 201);
    assert_eq!(join_unit(&admin).status().as_u16(), 201);
});

app_test!(fn ac_4_only_an_admin_grants_the_auditor_role(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let (_, main_user) = app.add_user(&admin, "main@kotikunta.fi", &org, "main_user");
    let (editor_id, editor) = app.add_user(&admin, "editor@kotikunta.fi", &org, "editor");
    let grant = |token: &str| app.post_as(token, &format!("/v1/accounts/{editor_id}/roles"), &json!({"role": "auditor"}));
    let body = assert_problem(grant(&main_user), 403, "/problems/forbidden");
    assert_eq!(body["detail"], "only admins grant the auditor role");
    let body = assert_problem(invite(app, &main_user, "dpo@kotikunta.fi", &org, "auditor"), 403, "/problems/forbidden");
    assert_eq!(body["detail"], "only admins grant the auditor role");
    let listed: Value = app.get_as(&admin, "/v1/accounts").json().unwrap();
    assert!(!listed.to_string().contains("dpo@kotikunta.fi"), "{listed}");
    assert_eq!(app.get_as(&editor, "/v1/me").json::<Value>().unwrap()["roles"], json!(["editor"]));
    // An admin does both.
    assert_eq!(grant(&admin).status().as_u16(), 201);
    assert_eq!(app.get_as(&editor, "/v1/me").json::<Value>().unwrap()["roles"], json!(["editor", "auditor"]));
    assert_eq!(invite(app, &admin, "dpo@kotikunta.fi", &org, "auditor").status().as_u16(), 201);
});

app_test!(fn au_9_changes_to_rights_leave_a_history_naming_who_made_them_even_behind_the_api(app) {
    use diesel::connection::SimpleConnection;
    use rekisteri_db::history::change_history_of;
    let admin = app.bootstrap_admin();
    let admin_id = app.get_as(&admin, "/v1/me").json::<Value>().unwrap()["account"]["id"].as_str().unwrap().to_owned();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let (id, _) = app.add_user(&admin, "main@kotikunta.fi", &org, "main_user");
    let grant = main_user_grant(app, &admin, &id);
    let ended = app.client.patch(app.url(&format!("/v1/accounts/{id}/roles/{grant}"))).bearer_auth(&admin).json(&json!({})).send().unwrap();
    assert_eq!(ended.status().as_u16(), 200);
    // Someone with database access changes the role directly.
    app.db.conn().batch_execute(&format!("UPDATE account_roles SET role = 'admin' WHERE id = '{grant}'")).unwrap();

    let history = change_history_of(&mut app.db.conn(), "account_roles", &grant).unwrap();
    let ops: Vec<(&str, &str)> = history.iter().map(|h| (h.operation.as_str(), h.actor.as_str())).collect();
    assert_eq!(ops.len(), 3, "{history:?}");
    assert_eq!(ops[0], ("INSERT", admin_id.as_str()));
    assert_eq!(ops[1], ("UPDATE", admin_id.as_str()));
    assert_eq!(ops[2].0, "UPDATE");
    assert!(ops[2].1.starts_with("database"), "a change behind the API names the database: {}", ops[2].1);
    let before: Value = serde_json::from_str(history[1].old_row.as_deref().unwrap()).unwrap();
    let after: Value = serde_json::from_str(history[1].new_row.as_deref().unwrap()).unwrap();
    assert!(before["valid_until"].is_null());
    assert!(after["valid_until"].is_string());
    let tampered: Value = serde_json::from_str(history[2].new_row.as_deref().unwrap()).unwrap();
    assert_eq!(tampered["role"], "admin");
    // The history itself cannot be changed or emptied.
    let mut conn = app.db.conn();
    assert!(conn.batch_execute("UPDATE change_history SET actor = 'nobody'").is_err());
    assert!(conn.batch_execute("DELETE FROM change_history").is_err());
    // Logins do not touch the history of rights.
    let _ = app.token("main@kotikunta.fi", USER_PASSWORD);
    assert_eq!(change_history_of(&mut app.db.conn(), "account_roles", &grant).unwrap().len(), 3);
});

app_test!(fn ac_1_admins_change_organisations_and_main_users_cannot(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let (_, main_user) = app.add_user(&admin, "main@kotikunta.fi", &org, "main_user");
    let patch = |token: &str, body: Value| {
        app.client.patch(app.url(&format!("/v1/organisations/{org}"))).bearer_auth(token).json(&body).send().unwrap()
    };
    assert_problem(patch(&main_user, json!({"strong_authentication_required": false})), 403, "/problems/forbidden");
    let bad = patch(&admin, json!({"business_id": "0201256-5"}));
    assert_eq!(assert_problem(bad, 400, "/problems/validation")["errors"][0]["field"], "business_id");
    let changed = patch(&admin, json!({"name": "Uusi kunta", "strong_authentication_required": false}));
    assert_eq!(changed.status().as_u16(), 200);
    let body: Value = changed.json().unwrap();
    assert_eq!(body["name"], "Uusi kunta");
    assert_eq!(body["strong_authentication_required"], false);
    let events = security_events_of(app, "organisation_changed");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].2["strong_authentication_changed"], true);
});

app_test!(fn ac_9_names_are_changed_by_the_account_itself_or_its_managers_only(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let other = app.create_organisation(&admin, "Naapurikunta", "municipality");
    let (id, editor) = app.add_user(&admin, "editor@kotikunta.fi", &org, "editor");
    let (_, main_user) = app.add_user(&admin, "main@kotikunta.fi", &org, "main_user");
    let (_, stranger) = app.add_user(&admin, "main@naapurikunta.fi", &other, "main_user");
    let path = format!("/v1/accounts/{id}");
    let changed = app.patch_as(&editor, &path, &json!({"first_name": "Maija"}));
    assert_eq!(changed.status().as_u16(), 200);
    let changed: Value = changed.json().unwrap();
    assert_eq!((changed["first_name"].clone(), changed["surname"].clone()), (json!("Maija"), json!("User")));
    let changed: Value = app.patch_as(&main_user, &path, &json!({"surname": "Virtanen"})).json().unwrap();
    assert_eq!(changed["surname"], "Virtanen");
    assert_problem(app.patch_as(&stranger, &path, &json!({"surname": "X"})), 404, "/problems/not-found");
    let body = assert_problem(app.patch_as(&editor, &path, &json!({"surname": " "})), 400, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "surname");
    assert_problem(app.patch_as(&editor, &path, &json!({"email": "x@y.fi"})), 400, "/problems/validation");
    let events = security_events_of(app, "account_changed");
    assert_eq!(events.len(), 2);
    assert!(!events.iter().any(|(_, _, d)| d.to_string().contains("Virtanen")), "no names in events");
});

app_test!(fn ac_11_service_unit_membership_has_a_validity_and_ending_it_ends_the_sessions(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation_with(&admin, &json!({"name": "Hoiva Oy", "kind": "provider", "oid": "1.2.246.10.3001"}));
    let unit: Value = app
        .post_as(&admin, "/v1/organisations/1.2.246.10.3001/service-units", &json!({"oid": "1.2.246.10.3001.10.1", "name": "Kotihoito"}))
        .json()
        .unwrap();
    let unit = unit["id"].as_str().unwrap();
    let (id, user) = app.add_user(&admin, "nurse@hoiva.fi", &org, "provider_staff");
    let joined = app.post_as(&admin, &format!("/v1/accounts/{id}/service-units"), &json!({"service_unit_id": unit}));
    assert_eq!(joined.status().as_u16(), 201);
    let joined: Value = joined.json().unwrap();
    let me: Value = app.get_as(&user, "/v1/me").json().unwrap();
    assert_eq!(me["service_unit_ids"], json!([unit]));
    // A unit of another organisation is refused.
    let other = app.create_organisation_with(&admin, &json!({"name": "Apu Oy", "kind": "provider", "oid": "1.2.246.10.3002"}));
    let foreign: Value = app
        .post_as(&admin, &format!("/v1/organisations/{other}/service-units"), &json!({"oid": "1.2.246.10.3002.10.1", "name": "Apu"}))
        .json()
        .unwrap();
    let body = assert_problem(
        app.post_as(&admin, &format!("/v1/accounts/{id}/service-units"), &json!({"service_unit_id": foreign["id"]})),
        422,
        "/problems/business-rule",
    );
    assert_eq!(body["errors"][0]["field"], "service_unit_id");
    // The user cannot change its own units.
    assert_problem(app.post_as(&user, &format!("/v1/accounts/{id}/service-units"), &json!({"service_unit_id": unit})), 403, "/problems/forbidden");
    let ended = app.patch_as(&admin, &format!("/v1/accounts/{id}/service-units/{}", joined["id"].as_str().unwrap()), &json!({}));
    assert_eq!(ended.status().as_u16(), 200);
    assert_problem(app.get_as(&user, "/v1/me"), 401, "/problems/unauthenticated");
    let again = app.token("nurse@hoiva.fi", USER_PASSWORD);
    let me: Value = app.get_as(&again, "/v1/me").json().unwrap();
    assert_eq!(me["service_unit_ids"], json!([]));
    let history: Value = app.get_as(&admin, &format!("/v1/accounts/{id}/service-units")).json().unwrap();
    assert_eq!(history["items"].as_array().unwrap().len(), 1);
    assert!(history["items"][0]["valid_until"].is_string());
    let events = security_events_of(app, "service_unit_left");
    assert_eq!(events[0].2["sessions_ended"], 1);
});
