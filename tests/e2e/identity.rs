//! Trusted identity providers (AX-2.3), strong authentication for client data (AX-2) and the
//! citizen's own view of the usage log (AU-6).

use diesel::prelude::*;
use rekisteri_accounts::idp::IdpKind;
use rekisteri_accounts::{AuthMethod, Caller};
use rekisteri_audit::{AccessBasis, ActorKind, NewEntry, Outcome, UsageEntry};
use rekisteri_core::{Clock, PersonalIdentityCode, TemporaryCodesAllowed};
use rekisteri_db::schema::security_events;
use rekisteri_db::testing::TestDatabase;
use rekisteri_tests::{TestApp, TestAppOptions, USER_PASSWORD, assert_problem, sign_jwt, test_identity_provider};
use serde_json::{Value, json};

const CITIZEN: &str = "131052-308T";

fn start(db: TestDatabase) -> TestApp {
    TestApp::start_with(
        db,
        TestAppOptions {
            identity_providers: vec![
                test_identity_provider(IdpKind::Staff),
                test_identity_provider(IdpKind::Citizen),
            ],
            ..TestAppOptions::default()
        },
    )
}

/// Like `app_test!`, with the test identity providers configured.
macro_rules! idp_test {
    (fn $name:ident($app:ident) $body:block) => {
        rekisteri_tests::database_test!(fn $name(db) {
            let $app = &start(db);
            $body
        });
    };
}

/// An organisation requiring strong authentication, with one editor; returns (org, email).
fn staff_member(app: &TestApp, admin: &str) -> (String, String) {
    let org = app.create_organisation(admin, "Pirkanmaa", "wellbeing_services_county");
    let email = "nurse@pirkanmaa.fi".to_owned();
    app.add_user(admin, &email, &org, "editor");
    (org, email)
}

idp_test!(fn ax_2_staff_jwt_with_a_certificate_method_opens_a_strong_session(app) {
    let admin = app.bootstrap_admin();
    let (org, email) = staff_member(app, &admin);
    let token = sign_jwt("ed25519", &app.jwt_claims(json!({"email": email.to_uppercase(), "amr": ["sc"]})));
    let me: Value = app.get_as(&token, "/v1/me").json().unwrap();
    assert_eq!(me["auth_method"], "identity_provider_strong", "{me}");
    assert_eq!(me["account"]["organisation_id"], org.as_str());
    // The second request reuses the session that the first one opened: one login event.
    assert_eq!(app.get_as(&token, "/v1/me").status().as_u16(), 200);
    let logins: Vec<String> = security_events::table
        .filter(security_events::event_type.eq("login"))
        .filter(security_events::organisation_id.eq(&org))
        .select(security_events::details)
        .load(&mut app.db.conn())
        .unwrap();
    let idp_logins: Vec<&String> = logins.iter().filter(|d| d.contains("identity_provider_strong")).collect();
    assert_eq!(idp_logins.len(), 1, "{logins:?}");
    assert!(idp_logins[0].contains("professional card (test)") && idp_logins[0].contains("\"sc\""));
    assert!(!idp_logins[0].contains(&token));
    // A token without a strong method is a weaker session.
    let weak = sign_jwt("ed25519", &app.jwt_claims(json!({"email": email, "amr": ["pwd"]})));
    let me: Value = app.get_as(&weak, "/v1/me").json().unwrap();
    assert_eq!(me["auth_method"], "identity_provider");
});

idp_test!(fn ax_2_es256_and_rs256_tokens_verify_too(app) {
    let admin = app.bootstrap_admin();
    let (_, email) = staff_member(app, &admin);
    for key in ["p256", "rsa"] {
        let token = sign_jwt(key, &app.jwt_claims(json!({"email": email, "amr": ["hwk"]})));
        let response = app.get_as(&token, "/v1/me");
        assert_eq!(response.status().as_u16(), 200, "{key}");
    }
});

idp_test!(fn ax_2_wrong_audience_issuer_expired_unsigned_or_unknown_key_is_401(app) {
    let admin = app.bootstrap_admin();
    let (_, email) = staff_member(app, &admin);
    let now = app.clock.now().unix_timestamp();
    let good = app.jwt_claims(json!({"email": email, "amr": ["sc"]}));
    let with = |patch: Value| {
        let mut claims = good.clone();
        claims.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
        claims
    };
    let unsigned = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#), b64.encode(good.to_string()))
    };
    let tampered = {
        let token = sign_jwt("ed25519", &good);
        let parts: Vec<&str> = token.split('.').collect();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let other = with(json!({"email": "admin@rekisteri.test"}));
        format!("{}.{}.{}", parts[0], b64.encode(other.to_string()), parts[2])
    };
    let cases = [
        ("wrong audience", sign_jwt("ed25519", &with(json!({"aud": "someone-else"})))),
        ("wrong issuer", sign_jwt("ed25519", &with(json!({"iss": "https://evil.test"})))),
        ("expired", sign_jwt("ed25519", &with(json!({"exp": now - 61})))),
        ("not yet valid", sign_jwt("ed25519", &with(json!({"nbf": now + 3600})))),
        ("unknown key", sign_jwt("other-ed25519", &good)),
        ("alg none", unsigned),
        ("tampered claims", tampered),
        ("unknown account", sign_jwt("ed25519", &with(json!({"email": "stranger@example.fi"})))),
    ];
    for (what, token) in cases {
        let response = app.get_as(&token, "/v1/me");
        assert_eq!(response.status().as_u16(), 401, "{what}");
        assert_problem(response, 401, "/problems/unauthenticated");
    }
    assert_eq!(app.get_as(&sign_jwt("ed25519", &good), "/v1/me").status().as_u16(), 200);
    // The expiry is checked against the platform's clock.
    let token = sign_jwt("ed25519", &good);
    app.clock.advance(time::Duration::minutes(12));
    assert_problem(app.get_as(&token, "/v1/me"), 401, "/problems/unauthenticated");
});

/// A citizen token from the test provider with `claims` over the standard ones; `None` removes
/// a claim.
fn citizen_token_with(app: &TestApp, claims: &[(&str, Option<Value>)]) -> String {
    let mut token = app.jwt_claims(json!({"iss": rekisteri_tests::CITIZEN_IDP_ISSUER,
        "national_identification_number": CITIZEN, "amr": ["bank"]}));
    let object = token.as_object_mut().unwrap();
    for (name, value) in claims {
        match value {
            Some(value) => object.insert((*name).to_owned(), value.clone()),
            None => object.remove(*name),
        };
    }
    sign_jwt("rsa", &token)
}

idp_test!(fn ax_2_time_claims_that_are_not_json_numbers_are_refused(app) {
    let now = app.clock.now().unix_timestamp();
    let path = "/v1/me/client-records";
    assert_eq!(app.get_as(&citizen_token_with(app, &[]), path).status().as_u16(), 200);
    let cases = [
        ("exp as a string", "exp", json!((now + 600).to_string())),
        ("nbf as a string", "nbf", json!("9999999999")),
        ("iat as a string", "iat", json!(now.to_string())),
        ("exp as null", "exp", Value::Null),
        ("nbf as a fraction", "nbf", json!(now as f64 + 0.5)),
        ("iat as a boolean", "iat", json!(true)),
    ];
    for (what, claim, value) in cases {
        let token = citizen_token_with(app, &[(claim, Some(value))]);
        let response = app.get_as(&token, path);
        assert_eq!(response.status().as_u16(), 401, "{what}");
        assert_problem(response, 401, "/problems/unauthenticated");
    }
});

idp_test!(fn ax_2_a_citizen_token_needs_iat_and_lives_at_most_the_providers_maximum(app) {
    let now = app.clock.now().unix_timestamp();
    let path = "/v1/me/client-records";
    let at = |iat: i64, exp: i64| citizen_token_with(app, &[("iat", Some(json!(iat))), ("exp", Some(json!(exp)))]);
    // The default maximum is an hour, to the second.
    assert_eq!(app.get_as(&at(now, now + 3600), path).status().as_u16(), 200);
    assert_eq!(app.get_as(&at(now - 3000, now + 600), path).status().as_u16(), 200);
    let cases = [
        ("without iat", citizen_token_with(app, &[("iat", None)])),
        ("an hour and a second", at(now, now + 3601)),
        ("a day", at(now - 600, now + 86_400)),
        ("issued in the future", at(now + 3600, now + 3700)),
    ];
    for (what, token) in cases {
        let response = app.get_as(&token, path);
        assert_eq!(response.status().as_u16(), 401, "{what}");
        assert_problem(response, 401, "/problems/unauthenticated");
    }
    // Staff tokens open a session that ends like any other; they need no iat.
    let admin = app.bootstrap_admin();
    let (_, email) = staff_member(app, &admin);
    let mut staff = app.jwt_claims(json!({"email": email, "amr": ["sc"]}));
    staff.as_object_mut().unwrap().remove("iat");
    assert_eq!(app.get_as(&sign_jwt("ed25519", &staff), "/v1/me").status().as_u16(), 200);
});

idp_test!(fn ac_8_closing_an_account_ends_its_identity_provider_session(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Pirkanmaa", "wellbeing_services_county");
    let (id, _) = app.add_user(&admin, "leaving@pirkanmaa.fi", &org, "editor");
    let token = sign_jwt("ed25519", &app.jwt_claims(json!({"email": "leaving@pirkanmaa.fi", "amr": ["sc"]})));
    assert_eq!(app.get_as(&token, "/v1/me").status().as_u16(), 200);
    assert_eq!(app.delete_as(&admin, &format!("/v1/accounts/{id}")).status().as_u16(), 200);
    assert_problem(app.get_as(&token, "/v1/me"), 401, "/problems/unauthenticated");
});

idp_test!(fn ax_2_password_sessions_are_kept_from_client_data_of_a_registrar_that_requires_strong_authentication(app) {
    let admin = app.bootstrap_admin();
    let (org, email) = staff_member(app, &admin);
    let relaxed = app.post_as(&admin, "/v1/organisations", &json!({"name": "Demo", "kind": "municipality", "strong_authentication_required": false}));
    let relaxed: Value = relaxed.json().unwrap();
    let relaxed = relaxed["id"].as_str().unwrap().to_owned();
    let password = app.token(&email, USER_PASSWORD);
    let strong = sign_jwt("ed25519", &app.jwt_claims(json!({"email": email, "amr": ["sc"]})));
    let weak = sign_jwt("ed25519", &app.jwt_claims(json!({"email": email, "amr": ["pwd"]})));
    let register = app.register();
    let mut conn = app.db.conn();
    let principal = |token: &str| match rekisteri_accounts::authenticate_bearer(&mut app.db.conn(), &register, token, None, app.clock.now()).unwrap() {
        Caller::Account(p) => p,
        other => panic!("{other:?}"),
    };
    let password = principal(&password);
    assert_eq!(password.auth_method, AuthMethod::Password);
    for p in [&password, &principal(&weak)] {
        assert!(matches!(
            rekisteri_accounts::require_strong_authentication(&mut conn, p, &org),
            Err(rekisteri_accounts::AccountsError::StrongAuthenticationRequired)
        ));
        assert!(rekisteri_accounts::require_strong_authentication(&mut conn, p, &relaxed).is_ok());
    }
    assert!(rekisteri_accounts::require_strong_authentication(&mut conn, &principal(&strong), &org).is_ok());
});

idp_test!(fn au_6_a_citizen_sees_which_organisations_used_their_data_and_why(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Pirkanmaa", "wellbeing_services_county");
    let code = PersonalIdentityCode::parse(CITIZEN, TemporaryCodesAllowed::No).unwrap();
    let other = PersonalIdentityCode::parse("010101A123N", TemporaryCodesAllowed::No).unwrap();
    let entry = |person: &PersonalIdentityCode, purpose: &str| {
        NewEntry::Usage(UsageEntry {
            occurred_at: rekisteri_db::to_primitive(app.clock.now()),
            registrar_id: org.clone(),
            log_controller_id: org.clone(),
            subject_index: Some(rekisteri_audit::subject_index(&app.keyring, person)),
            data_kind: "client".to_owned(),
            data_id: None,
            outcome: Outcome::Used,
            actor_kind: ActorKind::Staff,
            actor_id: "nurse-1".to_owned(),
            actor_name: Some("Hoitaja Hanna".to_owned()),
            on_behalf_of: None,
            service_unit_oid: None,
            purpose: purpose.to_owned(),
            access_basis: AccessBasis::CareRelationship,
            special_reason: None,
            request_id: "req".to_owned(),
            calling_system: None,
        })
    };
    app.audit.append(vec![entry(&code, "home care"), entry(&other, "somebody else's care"), entry(&code, "service voucher")]).unwrap();
    let token = sign_jwt("rsa", &app.jwt_claims(json!({"iss": rekisteri_tests::CITIZEN_IDP_ISSUER, "national_identification_number": CITIZEN, "amr": ["bank"]})));
    let response = app.get_as(&token, "/v1/me/usage-log?limit=1");
    assert_eq!(response.status().as_u16(), 200);
    let first: Value = response.json().unwrap();
    assert_eq!(first["items"], json!([{"occurred_at": first["items"][0]["occurred_at"], "registrar_id": org, "organisation": "Pirkanmaa",
        "data_kind": "client", "purpose": "service voucher", "access_basis": "care_relationship"}]));
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest: Value = app.get_as(&token, &format!("/v1/me/usage-log?cursor={cursor}")).json().unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["purpose"], "home care");
    assert!(rest["next_cursor"].is_null());
    for page in [&first, &rest] {
        assert!(!page.to_string().contains("Hanna") && !page.to_string().contains("nurse-1"));
    }
    // A citizen is not staff, and staff are not citizens.
    assert_problem(app.get_as(&token, "/v1/accounts"), 403, "/problems/forbidden");
    assert_problem(app.get_as(&admin, "/v1/me/usage-log"), 403, "/problems/forbidden");
    // The citizen's look was itself logged, under the citizen's index, in the platform's log.
    let logged: i64 = rekisteri_db::schema::usage_log::table
        .filter(rekisteri_db::schema::usage_log::data_kind.eq("own_usage_log"))
        .filter(rekisteri_db::schema::usage_log::subject_index.eq(rekisteri_audit::subject_index(&app.keyring, &code).to_vec()))
        .count()
        .get_result(&mut app.db.conn())
        .unwrap();
    assert_eq!(logged, 2);
});

idp_test!(fn ax_2_over_http_a_password_session_gets_403_from_client_data_and_a_card_login_gets_through(app) {
    let admin = app.bootstrap_admin();
    // Registrars require strong authentication by default.
    let org = app.create_organisation(&admin, "Pirkanmaa", "wellbeing_services_county");
    let email = "handler@pirkanmaa.fi";
    let (id, password) = app.add_user(&admin, email, &org, "client_handler");
    let area = app.post_as(&admin, &format!("/v1/registrars/{org}/service-areas"),
        &json!({"code": "home_care", "name": "Kotihoito", "service_types": ["home_care"]}));
    let area: Value = area.json().unwrap();
    let granted = app.post_as(&admin, &format!("/v1/accounts/{id}/service-areas"), &json!({"service_area_id": area["id"]}));
    assert_eq!(granted.status().as_u16(), 201);
    let clients = format!("/v1/registrars/{org}/clients");
    let body = assert_problem(app.get_as(&password, &clients), 403, "/problems/strong-authentication-required");
    assert!(body["detail"].as_str().unwrap().contains("strong"));
    let search = app.post_as(&password, &format!("{clients}/search"), &json!({"identity_code": CITIZEN}));
    assert_problem(search, 403, "/problems/strong-authentication-required");
    let weak = sign_jwt("ed25519", &app.jwt_claims(json!({"email": email, "amr": ["pwd"]})));
    assert_problem(app.get_as(&weak, &clients), 403, "/problems/strong-authentication-required");
    let card = sign_jwt("ed25519", &app.jwt_claims(json!({"email": email, "amr": ["sc"]})));
    let response = app.get_as(&card, &clients);
    assert_eq!(response.status().as_u16(), 200);
    let list: Value = response.json().unwrap();
    assert_eq!(list["items"], json!([]));
    // The same password session reaches the same data where the registrar has turned the rule off.
    let relaxed = app.patch_as(&admin, &format!("/v1/organisations/{org}"), &json!({"strong_authentication_required": false}));
    assert_eq!(relaxed.status().as_u16(), 200);
    assert_eq!(app.get_as(&password, &clients).status().as_u16(), 200);
});
