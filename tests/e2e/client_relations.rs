//! Around a client (CL-7, CL-9, CL-10, CL-12, CL-17, AX-5..AX-7): proxies, citizens' own
//! records, care teams and special reasons, the restriction flag and the right-of-access
//! document, over real HTTP on both databases.

use diesel::prelude::*;
use rekisteri_db::schema::{change_history, disclosure_log, usage_log};
use rekisteri_tests::{TestApp, assert_problem, idp_app_test};
use reqwest::Method;
use serde_json::{Value, json};

use crate::clients::{MAIJA, World, client_body, code, create, home_care_voucher, world};

const PROXY_PERSON: u32 = 50;

fn clients_path(w: &World) -> String {
    format!("/v1/registrars/{}/clients", w.registrar)
}

/// A client of `w.registrar` with a home-care voucher from `w.provider`; returns its id.
fn maija(app: &TestApp, w: &World) -> String {
    let created = create(
        app,
        &w.handler,
        &w.registrar,
        &client_body(MAIJA, json!([home_care_voucher(&w.provider)])),
    );
    created["id"].as_str().unwrap().to_owned()
}

fn proxy_body(identity_code: &str, valid_from: &str, valid_to: Option<&str>) -> Value {
    json!({"identity_code": identity_code, "first_names": "Pekka", "surname": "Puolestapuhuja",
        "phone": "040 111 2222", "email": "pekka@esimerkki.fi", "valid_from": valid_from, "valid_to": valid_to})
}

/// A service unit of the organisation with `oid`, and a user of `role` of `organisation`
/// working in it: (account id, token, unit id).
fn professional(
    app: &TestApp,
    w: &World,
    organisation: &str,
    oid: &str,
    unit_oid: &str,
    email: &str,
    role: &str,
) -> (String, String, String) {
    let unit: Value = app
        .post_as(
            &w.admin,
            &format!("/v1/organisations/{oid}/service-units"),
            &json!({"oid": unit_oid, "name": "Kotihoito"}),
        )
        .json()
        .unwrap();
    let unit_id = unit["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no unit: {unit}"))
        .to_owned();
    let (account, token) = app.add_user(&w.admin, email, organisation, role);
    let joined = app.post_as(
        &w.admin,
        &format!("/v1/accounts/{account}/service-units"),
        &json!({"service_unit_id": unit_id}),
    );
    assert_eq!(joined.status().as_u16(), 201);
    (account, token, unit_id)
}

/// The (access basis, outcome, special reason) of the usage entries of `actor_id`'s accesses to
/// data `data_id` in `registrar`'s log.
fn bases(app: &TestApp, registrar: &str, data_id: &str) -> Vec<(String, String, Option<String>)> {
    usage_log::table
        .filter(usage_log::registrar_id.eq(registrar))
        .filter(usage_log::data_id.eq(data_id))
        .order(usage_log::seq)
        .select((usage_log::access_basis, usage_log::outcome, usage_log::special_reason))
        .load(&mut app.db.conn())
        .unwrap()
}

idp_app_test!(fn cl_7_a_proxy_is_recorded_listed_and_revoked_by_the_registrar(app) {
    let w = world(app);
    let id = maija(app, &w);
    let path = format!("{}/{id}/proxies", clients_path(&w));
    let response = app.post_as(&w.handler, &path, &proxy_body(&code(PROXY_PERSON), "2026-01-01", None));
    assert_eq!(response.status().as_u16(), 201);
    let proxy: Value = response.json().unwrap();
    assert_eq!(proxy["identity_code"], code(PROXY_PERSON));
    assert_eq!(proxy["surname"], "Puolestapuhuja");
    assert_eq!(proxy["client_id"], id.as_str());
    // One standing authorisation per person; a client is not their own proxy; codes are checked.
    assert_problem(app.post_as(&w.handler, &path, &proxy_body(&code(PROXY_PERSON), "2026-02-01", None)), 409, "/problems/conflict");
    let body = assert_problem(app.post_as(&w.handler, &path, &proxy_body(MAIJA, "2026-01-01", None)), 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "identity_code");
    let body = assert_problem(app.post_as(&w.handler, &path, &proxy_body("010180-100X", "2026-01-01", None)), 400, "/problems/validation");
    assert!(!body.to_string().contains("010180"), "{body}");
    let body = assert_problem(
        app.post_as(&w.handler, &path, &proxy_body(&code(51), "2026-03-01", Some("2026-02-01"))),
        422,
        "/problems/business-rule",
    );
    assert_eq!(body["errors"][0]["field"], "valid_to");
    // The provider sees the client but not its proxies; another registrar sees nothing.
    assert_problem(app.get_as(&w.provider_staff, &path), 403, "/problems/forbidden");
    assert_problem(app.get_as(&w.other_handler, &format!("/v1/registrars/{}/clients/{id}/proxies", w.other_registrar)), 404, "/problems/not-found");
    assert_problem(app.get_as(&w.other_handler, &path), 404, "/problems/not-found");
    let listed: Value = app.get_as(&w.handler, &path).json().unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["phone"], "040 111 2222");
    assert!(listed["items"][0]["revoked_at"].is_null());
    // Revoking keeps the row, marked; revoking again changes nothing.
    let pid = proxy["id"].as_str().unwrap();
    assert_eq!(app.delete_as(&w.handler, &format!("{path}/{pid}")).status().as_u16(), 204);
    assert_eq!(app.delete_as(&w.handler, &format!("{path}/{pid}")).status().as_u16(), 204);
    assert_problem(app.delete_as(&w.handler, &format!("{path}/{}", uuid_like())), 404, "/problems/not-found");
    let listed: Value = app.get_as(&w.handler, &path).json().unwrap();
    assert!(listed["items"][0]["revoked_at"].is_string());
    // After revoking, the person can be authorised again.
    assert_eq!(app.post_as(&w.handler, &path, &proxy_body(&code(PROXY_PERSON), "2026-06-01", None)).status().as_u16(), 201);
    // The proxy's own data use is logged under the proxy's own index.
    let person = rekisteri_core::PersonalIdentityCode::parse(&code(PROXY_PERSON), rekisteri_core::TemporaryCodesAllowed::No).unwrap();
    let proxy_index = rekisteri_audit::subject_index(&app.keyring, &person).to_vec();
    let logged: i64 = usage_log::table
        .filter(usage_log::registrar_id.eq(&w.registrar))
        .filter(usage_log::data_kind.eq("proxy"))
        .filter(usage_log::subject_index.eq(proxy_index))
        .count()
        .get_result(&mut app.db.conn())
        .unwrap();
    assert!(logged >= 4, "{logged}");
});

fn uuid_like() -> &'static str {
    "00000000-0000-4000-8000-000000000000"
}

idp_app_test!(fn cl_9_a_citizen_and_a_valid_proxy_see_the_records_in_every_registrar_and_nobody_else_does(app) {
    let w = world(app);
    let id = maija(app, &w);
    let other = create(app, &w.other_handler, &w.other_registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider)])));
    let own: Value = app.get_as(&app.citizen_token(MAIJA), "/v1/me/client-records").json().unwrap();
    let items = own["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{own}");
    assert!(items.iter().all(|r| r["relation"] == "own" && r["client"]["identity_code"] == MAIJA));
    let registrars: Vec<&str> = items.iter().map(|r| r["registrar_id"].as_str().unwrap()).collect();
    assert!(registrars.contains(&w.registrar.as_str()) && registrars.contains(&w.other_registrar.as_str()));
    // The whole record, every service, the next of kin.
    let tampere = items.iter().find(|r| r["registrar_id"] == w.registrar.as_str()).unwrap();
    assert_eq!(tampere["registrar_name"], "Tampere");
    assert_eq!(tampere["client"]["next_of_kin"]["name"], "Matti Meikäläinen");
    assert_eq!(tampere["client"]["services"][0]["service_type"], "home_care");
    // A proxy valid today sees that one record; an expired, a future and a revoked one see none.
    let proxies = format!("{}/{id}/proxies", clients_path(&w));
    app.post_as(&w.handler, &proxies, &proxy_body(&code(PROXY_PERSON), "2026-01-01", None));
    app.post_as(&w.handler, &proxies, &proxy_body(&code(52), "2025-01-01", Some("2025-12-31")));
    app.post_as(&w.handler, &proxies, &proxy_body(&code(53), "2099-01-01", None));
    let revoked: Value = app.post_as(&w.handler, &proxies, &proxy_body(&code(54), "2026-01-01", None)).json().unwrap();
    app.delete_as(&w.handler, &format!("{proxies}/{}", revoked["id"].as_str().unwrap()));
    let acting: Value = app.get_as(&app.citizen_token(&code(PROXY_PERSON)), "/v1/me/client-records").json().unwrap();
    assert_eq!(acting["items"].as_array().unwrap().len(), 1, "{acting}");
    assert_eq!(acting["items"][0]["relation"], "proxy");
    assert_eq!(acting["items"][0]["client"]["id"], id.as_str());
    for person in [52, 53, 54, 55] {
        let none: Value = app.get_as(&app.citizen_token(&code(person)), "/v1/me/client-records").json().unwrap();
        assert_eq!(none["items"], json!([]), "person {person}");
    }
    // Staff are not citizens.
    assert_problem(app.get_as(&w.handler, "/v1/me/client-records"), 403, "/problems/forbidden");
    // Each record's read is in its own registrar's log, on the right basis.
    assert!(bases(app, &w.registrar, &id).contains(&("own_data".into(), "used".into(), None)));
    assert!(bases(app, &w.registrar, &id).contains(&("proxy".into(), "used".into(), None)));
    let other_id = other["id"].as_str().unwrap();
    assert!(bases(app, &w.other_registrar, other_id).contains(&("own_data".into(), "used".into(), None)));
    assert!(!bases(app, &w.other_registrar, other_id).iter().any(|(b, _, _)| b == "proxy"));
});

idp_app_test!(fn cl_10_a_client_or_proxy_changes_only_email_phone_and_next_of_kin(app) {
    let w = world(app);
    let id = maija(app, &w);
    app.post_as(&w.handler, &format!("{}/{id}/proxies", clients_path(&w)), &proxy_body(&code(PROXY_PERSON), "2026-01-01", None));
    let path = format!("/v1/me/client-records/{id}/contact");
    let citizen = app.citizen_token(MAIJA);
    let patch = |token: &str, version: Option<&str>, body: Value| {
        let headers: Vec<(&str, &str)> = version.map(|v| vec![("If-Match", v)]).unwrap_or_default();
        app.request_as(Method::PATCH, token, &path, &headers, Some(&body))
    };
    let response = patch(&citizen, Some("\"1\""), json!({"email": "uusi@esimerkki.fi", "next_of_kin": {"name": "Liisa", "phone": "040 222 3333"}}));
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["etag"], "\"2\"");
    let record: Value = response.json().unwrap();
    assert_eq!(record["client"]["email"], "uusi@esimerkki.fi");
    assert_eq!(record["client"]["phone"], "+358 40 123 4567");
    assert_eq!(record["client"]["next_of_kin"]["name"], "Liisa");
    // Nothing else may change; the version guards against lost updates.
    let body = assert_problem(patch(&citizen, Some("\"2\""), json!({"surname": "Muutettu"})), 400, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "surname");
    assert_problem(patch(&citizen, None, json!({"phone": "040 999 8888"})), 428, "/problems/precondition-required");
    assert_problem(patch(&citizen, Some("\"1\""), json!({"phone": "040 999 8888"})), 412, "/problems/precondition-failed");
    let body = assert_problem(patch(&citizen, Some("\"2\""), json!({"email": "ei-osoite"})), 400, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "email");
    // The proxy may do the same; another citizen finds nothing; staff are not citizens.
    let response = patch(&app.citizen_token(&code(PROXY_PERSON)), Some("\"2\""), json!({"phone": "040 999 8888"}));
    assert_eq!(response.status().as_u16(), 200);
    assert_problem(patch(&app.citizen_token(&code(55)), Some("\"3\""), json!({"phone": "040 999 7777"})), 404, "/problems/not-found");
    assert_problem(patch(&w.handler, Some("\"3\""), json!({"phone": "040 999 7777"})), 403, "/problems/forbidden");
    let read: Value = app.get_as(&w.handler, &format!("{}/{id}", clients_path(&w))).json().unwrap();
    assert_eq!(read["phone"], "040 999 8888");
    assert_eq!(read["surname"], "Meikäläinen");
    assert_eq!(read["version"], 3);
});

idp_app_test!(fn ax_5_a_professional_reaches_a_client_only_through_the_care_team_of_a_unit_they_work_in(app) {
    let w = world(app);
    let id = maija(app, &w);
    let (nurse_id, nurse, unit) = professional(app, &w, &w.provider, "1.2.246.10.2001", "1.2.246.10.2001.10.1", "nurse2@hoiva.fi", "professional");
    let (colleague_id, colleague) = app.add_user(&w.admin, "colleague@hoiva.fi", &w.provider, "professional");
    let joined = app.post_as(&w.admin, &format!("/v1/accounts/{colleague_id}/service-units"), &json!({"service_unit_id": unit}));
    assert_eq!(joined.status().as_u16(), 201);
    let client = format!("{}/{id}", clients_path(&w));
    // Without a care relationship the professional is an outsider: 404, logged as denied.
    assert_problem(app.get_as(&nurse, &client), 404, "/problems/not-found");
    let list: Value = app.get_as(&nurse, &clients_path(&w)).json().unwrap();
    assert_eq!(list["items"], json!([]));
    assert_eq!(bases(app, &w.registrar, &id).last().unwrap(), &("none".to_owned(), "denied".to_owned(), None));
    // The registrar's staff put the nurse on the care team in the unit.
    let team = format!("{client}/care-team");
    let response = app.post_as(&w.handler, &team, &json!({"account_id": nurse_id, "service_unit_id": unit,
        "team_role": "omatyöntekijä", "valid_from": "2026-01-01"}));
    assert_eq!(response.status().as_u16(), 201);
    let member: Value = response.json().unwrap();
    let read = app.get_as(&nurse, &client);
    assert_eq!(read.status().as_u16(), 200);
    let read: Value = read.json().unwrap();
    assert_eq!(read["identity_code"], MAIJA);
    assert_eq!(bases(app, &w.registrar, &id).last().unwrap(), &("care_relationship".to_owned(), "used".to_owned(), None));
    let list: Value = app.get_as(&nurse, &clients_path(&w)).json().unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // A colleague of the same unit outside the team still sees nothing, nor its services.
    assert_problem(app.get_as(&colleague, &client), 404, "/problems/not-found");
    let service = read["services"][0]["id"].as_str().unwrap();
    assert_problem(app.get_as(&colleague, &format!("/v1/registrars/{}/services/{service}", w.registrar)), 404, "/problems/not-found");
    assert_eq!(app.get_as(&nurse, &format!("/v1/registrars/{}/services/{service}", w.registrar)).status().as_u16(), 200);
    // The team is visible; only the registrar's staff change it.
    let listed: Value = app.get_as(&nurse, &team).json().unwrap();
    assert_eq!(listed["items"][0]["team_role"], "omatyöntekijä");
    assert_problem(app.post_as(&nurse, &team, &json!({"account_id": nurse_id, "service_unit_id": unit, "valid_from": "2026-01-01"})), 403, "/problems/forbidden");
    let body = assert_problem(app.post_as(&w.handler, &team, &json!({"account_id": nurse_id, "service_unit_id": unit,
        "valid_from": "2026-02-01", "valid_until": "2026-01-01"})), 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "valid_until");
    // Ending the membership (with If-Match) ends the relationship at once.
    let member_path = format!("{team}/{}", member["id"].as_str().unwrap());
    assert_problem(app.request_as(Method::PATCH, &w.handler, &member_path, &[], Some(&json!({"valid_until": "2026-01-31"}))), 428, "/problems/precondition-required");
    let ended = app.request_as(Method::PATCH, &w.handler, &member_path, &[("If-Match", "\"1\"")], Some(&json!({"valid_until": "2026-01-31"})));
    assert_eq!(ended.status().as_u16(), 200);
    assert_eq!(ended.headers()["etag"], "\"2\"");
    assert_problem(app.get_as(&nurse, &client), 404, "/problems/not-found");
    assert_problem(app.request_as(Method::PATCH, &w.handler, &member_path, &[("If-Match", "\"1\"")], Some(&json!({"team_role": "x"}))), 412, "/problems/precondition-failed");
    assert_eq!(app.delete_as(&w.handler, &member_path).status().as_u16(), 204);
    assert_problem(app.delete_as(&w.handler, &member_path), 404, "/problems/not-found");
    let listed: Value = app.get_as(&w.handler, &team).json().unwrap();
    assert_eq!(listed["items"], json!([]));
    // Every change of the team is in the change history.
    let changes: Vec<String> = change_history::table
        .filter(change_history::table_name.eq("care_team_members"))
        .order(change_history::id)
        .select(change_history::operation)
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(changes, ["INSERT", "UPDATE", "DELETE"]);
});

idp_app_test!(fn ax_5_a_special_reason_opens_a_client_only_for_roles_holding_the_permission_and_is_reported(app) {
    let w = world(app);
    let id = maija(app, &w);
    let (_, senior, _) = professional(app, &w, &w.provider, "1.2.246.10.2001", "1.2.246.10.2001.10.1", "senior@hoiva.fi", "senior_professional");
    let (_, plain) = app.add_user(&w.admin, "plain@hoiva.fi", &w.provider, "professional");
    let client = format!("{}/{id}", clients_path(&w));
    let explanation = "Asiakkaan%20kiireellinen%20tilanne%20p%C3%A4ivystyksess%C3%A4";
    let stated = [("Special-Reason", "1"), ("Special-Reason-Explanation", explanation)];
    // Without a reason the senior is an outsider like anyone without a care relationship.
    assert_problem(app.get_as(&senior, &client), 404, "/problems/not-found");
    let response = app.request_as(Method::GET, &senior, &client, &stated, None);
    assert_eq!(response.status().as_u16(), 200);
    let expected_reason = "1: Asiakkaan kiireellinen tilanne päivystyksessä".to_owned();
    assert_eq!(bases(app, &w.registrar, &id).last().unwrap(), &("special_reason".to_owned(), "used".to_owned(), Some(expected_reason.clone())));
    // A professional without the permission stays an outsider, reason or not.
    assert_problem(app.request_as(Method::GET, &plain, &client, &stated, None), 404, "/problems/not-found");
    // A reason outside the list, or without an explanation, is refused naming the header.
    let body = assert_problem(app.request_as(Method::GET, &senior, &client, &[("Special-Reason", "77"), ("Special-Reason-Explanation", explanation)], None), 400, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "Special-Reason");
    let body = assert_problem(app.request_as(Method::GET, &senior, &client, &[("Special-Reason", "1")], None), 400, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "Special-Reason-Explanation");
    // The registrar's data-protection officer sees the access in the special-reason report.
    let (_, auditor) = app.add_user(&w.admin, "dpo@tampere.fi", &w.registrar, "auditor");
    let today = rekisteri_core::Clock::now(&*app.clock).date();
    let (from, to) = (today - time::Duration::days(30), today + time::Duration::days(1));
    let report: Value = app
        .get_as(&auditor, &format!("/v1/registrars/{}/audit/reports/special-reasons?from={from}&to={to}", w.registrar))
        .json()
        .unwrap();
    assert!(report.to_string().contains("Asiakkaan kiireellinen tilanne"), "{report}");
});

idp_app_test!(fn ax_6_a_provider_sees_only_the_fields_it_needs_and_its_own_services(app) {
    let w = world(app);
    let mut other_service = home_care_voucher(&w.other_provider);
    other_service["additional_info"] = json!("Toisen tuottajan tieto");
    let created = create(app, &w.handler, &w.registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider), other_service])));
    let id = created["id"].as_str().unwrap();
    let seen: Value = app.get_as(&w.provider_staff, &format!("{}/{id}", clients_path(&w))).json().unwrap();
    for hidden in ["gender", "home_municipality", "next_of_kin", "moved_in_on"] {
        assert!(seen[hidden].is_null(), "{hidden}: {seen}");
    }
    assert_eq!(seen["identity_code"], MAIJA);
    assert_eq!(seen["services"].as_array().unwrap().len(), 1);
    assert_eq!(seen["services"][0]["provider_id"], w.provider.as_str());
    assert!(!seen.to_string().contains("Toisen tuottajan"));
    let foreign = created["services"].as_array().unwrap().iter().find(|s| s["provider_id"] == w.other_provider.as_str()).unwrap();
    assert_problem(
        app.get_as(&w.provider_staff, &format!("/v1/registrars/{}/services/{}", w.registrar, foreign["id"].as_str().unwrap())),
        404,
        "/problems/not-found",
    );
    let services: Value = app.get_as(&w.provider_staff, &format!("{}/{id}/services", clients_path(&w))).json().unwrap();
    assert_eq!(services["items"].as_array().unwrap().len(), 1);
});

idp_app_test!(fn ax_7_every_decision_logs_the_basis_it_used(app) {
    let w = world(app);
    let id = maija(app, &w);
    let client = format!("{}/{id}", clients_path(&w));
    app.post_as(&w.handler, &format!("{client}/proxies"), &proxy_body(&code(PROXY_PERSON), "2026-01-01", None));
    let (nurse_id, nurse, unit) = professional(app, &w, &w.provider, "1.2.246.10.2001", "1.2.246.10.2001.10.1", "nurse3@hoiva.fi", "professional");
    app.post_as(&w.handler, &format!("{client}/care-team"), &json!({"account_id": nurse_id, "service_unit_id": unit, "valid_from": "2026-01-01"}));
    let before = bases(app, &w.registrar, &id).len();
    assert_eq!(app.get_as(&w.handler, &client).status().as_u16(), 200);
    assert_eq!(app.get_as(&w.provider_staff, &client).status().as_u16(), 200);
    assert_eq!(app.get_as(&nurse, &client).status().as_u16(), 200);
    assert_eq!(app.get_as(&app.citizen_token(MAIJA), "/v1/me/client-records").status().as_u16(), 200);
    assert_eq!(app.get_as(&app.citizen_token(&code(PROXY_PERSON)), "/v1/me/client-records").status().as_u16(), 200);
    assert_eq!(app.get_as(&w.other_provider_staff, &client).status().as_u16(), 404);
    let logged: Vec<(String, String)> = bases(app, &w.registrar, &id)[before..]
        .iter()
        .map(|(basis, outcome, _)| (basis.clone(), outcome.clone()))
        .collect();
    let expected: Vec<(String, String)> = [("role", "used"), ("role", "used"), ("care_relationship", "used"), ("own_data", "used"), ("proxy", "used"), ("none", "denied")]
        .iter()
        .map(|(b, o)| ((*b).to_owned(), (*o).to_owned()))
        .collect();
    assert_eq!(logged, expected);
    // The denial names no rule to the caller beyond "not found".
    let body = assert_problem(app.get_as(&w.other_provider_staff, &client), 404, "/problems/not-found");
    assert!(!body.to_string().contains("care") && !body.to_string().contains("provider"), "{body}");
});

idp_app_test!(fn cl_12_a_restriction_blocks_all_processing_but_storage_until_lifted(app) {
    let w = world(app);
    let id = maija(app, &w);
    let client = format!("{}/{id}", clients_path(&w));
    let read: Value = app.get_as(&w.handler, &client).json().unwrap();
    let service = read["services"][0]["id"].as_str().unwrap().to_owned();
    let restrict = app.request_as(Method::PATCH, &w.handler, &client, &[("If-Match", "\"1\"")], Some(&json!({"restricted": true})));
    assert_eq!(restrict.status().as_u16(), 200);
    let stub: Value = restrict.json().unwrap();
    assert_eq!(stub["restricted"], true);
    for hidden in ["identity_code", "first_names", "surname", "email", "address"] {
        assert!(stub[hidden].is_null(), "{hidden}: {stub}");
    }
    assert_eq!(stub["services"], json!([]));
    // Every processing but storage is refused.
    assert_problem(app.post_as(&w.handler, &format!("{client}/services"), &home_care_voucher(&w.provider)), 409, "/problems/processing-restricted");
    assert_problem(app.get_as(&w.provider_staff, &format!("/v1/registrars/{}/services/{service}", w.registrar)), 409, "/problems/processing-restricted");
    assert_problem(
        app.post_as(&w.provider_staff, &format!("/v1/registrars/{}/services/{service}/events", w.registrar),
            &json!({"delivered_on": "2026-11-02", "quantity": 2, "unit_price_cents": 3250})),
        409,
        "/problems/processing-restricted",
    );
    assert_problem(app.request_as(Method::PATCH, &w.handler, &client, &[("If-Match", "\"2\"")], Some(&json!({"surname": "Muu"}))), 409, "/problems/processing-restricted");
    assert_problem(app.post_as(&w.handler, &format!("{client}/proxies"), &proxy_body(&code(PROXY_PERSON), "2026-01-01", None)), 409, "/problems/processing-restricted");
    // The data subject keeps the right of access.
    let own: Value = app.get_as(&app.citizen_token(MAIJA), "/v1/me/client-records").json().unwrap();
    assert_eq!(own["items"][0]["client"]["surname"], "Meikäläinen");
    assert_eq!(own["items"][0]["client"]["restricted"], true);
    // Lifting it restores processing.
    let lift = app.request_as(Method::PATCH, &w.handler, &client, &[("If-Match", "\"2\"")], Some(&json!({"restricted": false})));
    assert_eq!(lift.status().as_u16(), 200);
    let full: Value = lift.json().unwrap();
    assert_eq!(full["surname"], "Meikäläinen");
    assert_eq!(full["restricted"], false);
    assert_eq!(app.get_as(&w.provider_staff, &format!("/v1/registrars/{}/services/{service}", w.registrar)).status().as_u16(), 200);
});

idp_app_test!(fn cl_12_the_right_of_access_document_holds_the_register_about_the_person_and_is_a_disclosure(app) {
    let w = world(app);
    let id = maija(app, &w);
    create(app, &w.other_handler, &w.other_registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider)])));
    let client = format!("{}/{id}", clients_path(&w));
    app.post_as(&w.handler, &format!("{client}/proxies"), &proxy_body(&code(PROXY_PERSON), "2026-01-01", None));
    let read: Value = app.get_as(&w.handler, &client).json().unwrap();
    let service = read["services"][0]["id"].as_str().unwrap();
    let event = app.post_as(&w.provider_staff, &format!("/v1/registrars/{}/services/{service}/events", w.registrar),
        &json!({"delivered_on": "2026-11-02", "quantity": 2, "unit_price_cents": 3250, "note": "Siivous tehty"}));
    assert_eq!(event.status().as_u16(), 201);
    let (_, auditor) = app.add_user(&w.admin, "dpo@tampere.fi", &w.registrar, "auditor");
    let (_, other_auditor) = app.add_user(&w.admin, "dpo@nokia.fi", &w.other_registrar, "auditor");
    // The registrar's call register: a call from the person's phone and a callback naming them
    // by identity code belong in the document; someone else's call does not.
    let contacts = crate::calls::contacts_for_access_report(app, &w.admin, &w.registrar, "1.2.246.10.1001", MAIJA);
    let response = app.get_as(&auditor, &format!("{client}/access-report"));
    assert_eq!(response.status().as_u16(), 200);
    let report: Value = response.json().unwrap();
    assert_eq!(report["registrar_id"], w.registrar.as_str());
    assert_eq!(report["client"]["identity_code"], MAIJA);
    assert_eq!(report["client"]["next_of_kin"]["name"], "Matti Meikäläinen");
    assert_eq!(report["client"]["services"].as_array().unwrap().len(), 1);
    assert_eq!(report["service_events"][0]["note"], "Siivous tehty");
    assert_eq!(report["proxies"][0]["surname"], "Puolestapuhuja");
    let found: Vec<&str> = report["contacts"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(found, contacts, "{report}");
    assert_eq!(report["contacts"][1]["client_identity_code"], MAIJA);
    // The person's own secret number is theirs to see.
    assert_eq!(report["contacts"][0]["caller_number"], "+358401234567");
    let usage = report["usage"].as_array().unwrap();
    assert!(usage.iter().any(|u| u["data_kind"] == "client" && u["access_basis"] == "role"), "{report}");
    // One register per document: nothing from the other registrar's register.
    assert!(usage.iter().all(|u| u["organisation_id"] != w.other_registrar.as_str()));
    // Producing it is a disclosure to the data subject.
    let disclosures: Vec<(String, String)> = disclosure_log::table
        .filter(disclosure_log::registrar_id.eq(&w.registrar))
        .select((disclosure_log::recipient_kind, disclosure_log::legal_basis))
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(disclosures, [("data_subject".to_owned(), "GDPR art. 15".to_owned())]);
    let again: Value = app.get_as(&auditor, &format!("{client}/access-report")).json().unwrap();
    assert_eq!(again["disclosures"][0]["recipient_kind"], "data_subject");
    // The registrar's other users get 403; another registrar's officer and providers 404.
    assert_problem(app.get_as(&w.handler, &format!("{client}/access-report")), 403, "/problems/forbidden");
    assert_problem(app.get_as(&other_auditor, &format!("{client}/access-report")), 404, "/problems/not-found");
    assert_problem(app.get_as(&w.provider_staff, &format!("{client}/access-report")), 404, "/problems/not-found");
    assert_problem(app.get_as(&auditor, &format!("{}/{}/access-report", clients_path(&w), uuid_like())), 404, "/problems/not-found");
});

idp_app_test!(fn cl_17_proxy_changes_through_the_api_and_directly_in_the_database_are_in_the_change_history(app) {
    let w = world(app);
    let id = maija(app, &w);
    let path = format!("{}/{id}/proxies", clients_path(&w));
    let proxy: Value = app.post_as(&w.handler, &path, &proxy_body(&code(PROXY_PERSON), "2026-01-01", None)).json().unwrap();
    let pid = proxy["id"].as_str().unwrap();
    app.delete_as(&w.handler, &format!("{path}/{pid}"));
    let mut conn = app.db.conn();
    diesel::sql_query("UPDATE proxies SET valid_to = valid_from").execute(&mut conn).unwrap();
    let rows: Vec<(String, String)> = change_history::table
        .filter(change_history::table_name.eq("proxies"))
        .filter(change_history::row_id.eq(pid))
        .order(change_history::id)
        .select((change_history::operation, change_history::actor))
        .load(&mut conn)
        .unwrap();
    let operations: Vec<&str> = rows.iter().map(|(op, _)| op.as_str()).collect();
    assert_eq!(operations, ["INSERT", "UPDATE", "UPDATE"]);
    assert!(!rows[0].1.starts_with("database"), "{rows:?}");
    assert!(rows[2].1.starts_with("database"), "{rows:?}");
});

idp_app_test!(fn ax_4_isolation_matrix_of_proxies_care_teams_access_reports_and_own_records(app) {
    let w = world(app);
    let id = maija(app, &w);
    let r = &w.registrar;
    let client = format!("/v1/registrars/{r}/clients/{id}");
    let read: Value = app.get_as(&w.handler, &client).json().unwrap();
    let sid = read["services"][0]["id"].as_str().unwrap().to_owned();
    let proxy: Value = app.post_as(&w.handler, &format!("{client}/proxies"), &proxy_body(&code(PROXY_PERSON), "2026-01-01", None)).json().unwrap();
    let pid = proxy["id"].as_str().unwrap().to_owned();
    app.post_as(&w.handler, &format!("{client}/proxies"), &proxy_body(&code(52), "2025-01-01", Some("2025-12-31")));
    let (nurse_id, _, unit) = professional(app, &w, &w.provider, "1.2.246.10.2001", "1.2.246.10.2001.10.1", "nurse4@hoiva.fi", "professional");
    let member: Value = app
        .post_as(&w.handler, &format!("{client}/care-team"), &json!({"account_id": nurse_id, "service_unit_id": unit, "valid_from": "2026-01-01"}))
        .json()
        .unwrap();
    let mid = member["id"].as_str().unwrap().to_owned();
    // A professional of the same unit who is not on the care team.
    let (outsider_id, outsider) = app.add_user(&w.admin, "outsider@hoiva.fi", &w.provider, "professional");
    app.post_as(&w.admin, &format!("/v1/accounts/{outsider_id}/service-units"), &json!({"service_unit_id": unit}));
    let event = json!({"delivered_on": "2026-03-02", "quantity": 1});
    let if_match = [("If-Match", "\"1\"")];
    let callers = [
        (&w.other_handler, "other registrar"),
        (&w.other_provider_staff, "other provider"),
        (&w.disability_handler, "no area right"),
        (&outsider, "outside the care team"),
    ];
    let mut client_denials = 0;
    let mut service_denials = 0;
    let mut knocks = 0;
    for (caller, who) in callers {
        // Another registrar's user and an unrelated provider have no standing in the registrar:
        // they are refused at its door, each request logged as a denial about the record its
        // path names (listings and searches: about the registrar).
        let outside = who == "other registrar" || who == "other provider";
        let client_calls: Vec<(&str, reqwest::blocking::Response)> = vec![
            ("GET client", app.get_as(caller, &client)),
            ("PATCH client", app.request_as(Method::PATCH, caller, &client, &if_match, Some(&json!({"email": "x@y.fi"})))),
            ("GET services", app.get_as(caller, &format!("{client}/services"))),
            ("GET proxies", app.get_as(caller, &format!("{client}/proxies"))),
            ("POST proxies", app.post_as(caller, &format!("{client}/proxies"), &proxy_body(&code(60), "2026-01-01", None))),
            ("DELETE proxy", app.delete_as(caller, &format!("{client}/proxies/{pid}"))),
            ("GET care team", app.get_as(caller, &format!("{client}/care-team"))),
            ("POST care team", app.post_as(caller, &format!("{client}/care-team"), &json!({"account_id": nurse_id, "service_unit_id": unit, "valid_from": "2026-01-01"}))),
            ("PATCH member", app.request_as(Method::PATCH, caller, &format!("{client}/care-team/{mid}"), &if_match, Some(&json!({"team_role": "x"})))),
            ("DELETE member", app.delete_as(caller, &format!("{client}/care-team/{mid}"))),
        ];
        for (call, response) in client_calls {
            assert_eq!(response.status().as_u16(), 404, "{who}: {call}");
            client_denials += 1;
        }
        // The right-of-access document: a registrar user without the permission learns only
        // that they lack it (403, the same for every id); everyone else gets 404.
        let report = app.get_as(caller, &format!("{client}/access-report"));
        if who == "no area right" {
            assert_eq!(report.status().as_u16(), 403, "{who}: access report");
        } else {
            assert_eq!(report.status().as_u16(), 404, "{who}: access report");
            client_denials += 1;
        }
        for (call, response) in [
            ("GET service", app.get_as(caller, &format!("/v1/registrars/{r}/services/{sid}"))),
            ("GET events", app.get_as(caller, &format!("/v1/registrars/{r}/services/{sid}/events"))),
            ("POST events", app.post_as(caller, &format!("/v1/registrars/{r}/services/{sid}/events"), &event)),
        ] {
            assert_eq!(response.status().as_u16(), 404, "{who}: {call}");
            service_denials += 1;
        }
        let list = app.get_as(caller, &format!("/v1/registrars/{r}/clients"));
        let found = app.post_as(caller, &format!("/v1/registrars/{r}/clients/search"), &json!({"identity_code": MAIJA}));
        if outside {
            assert_problem(list, 404, "/problems/not-found");
            assert_problem(found, 404, "/problems/not-found");
            knocks += 2;
        } else {
            assert_eq!(list.json::<Value>().unwrap()["items"], json!([]), "{who}: list");
            assert_eq!(found.json::<Value>().unwrap()["items"], json!([]), "{who}: search");
        }
    }
    let denied = |data_id: &str| bases(app, r, data_id).iter().filter(|(basis, outcome, _)| basis == "none" && outcome == "denied").count();
    assert_eq!(denied(&id), client_denials);
    assert_eq!(denied(&sid), service_denials);
    assert_eq!(denied(r), knocks, "the listings and searches of those outside");
    // Another citizen and an expired proxy reach nothing of the client's.
    for person in [55, 52] {
        let token = app.citizen_token(&code(person));
        let own: Value = app.get_as(&token, "/v1/me/client-records").json().unwrap();
        assert_eq!(own["items"], json!([]), "person {person}");
        assert_problem(
            app.request_as(Method::PATCH, &token, &format!("/v1/me/client-records/{id}/contact"), &if_match, Some(&json!({"phone": "040 123 1234"}))),
            404,
            "/problems/not-found",
        );
    }
    // Nothing changed.
    let after: Value = app.get_as(&w.handler, &client).json().unwrap();
    assert_eq!(after["version"], 1);
    let proxies: Value = app.get_as(&w.handler, &format!("{client}/proxies")).json().unwrap();
    assert_eq!(proxies["items"].as_array().unwrap().len(), 2);
    assert!(proxies["items"][0]["revoked_at"].is_null());
    let team: Value = app.get_as(&w.handler, &format!("{client}/care-team")).json().unwrap();
    assert_eq!(team["items"].as_array().unwrap().len(), 1);
    assert!(team["items"][0]["team_role"].is_null());
});

idp_app_test!(fn cl_8_a_protection_order_set_later_purges_the_address_from_the_row_and_its_change_history(app) {
    let w = world(app);
    let id = maija(app, &w);
    let client = format!("{}/{id}", clients_path(&w));
    let moved = app.request_as(Method::PATCH, &w.handler, &client, &[("If-Match", "\"1\"")],
        Some(&json!({"address": {"street_address": "Satakunnankatu 2", "postal_code": "33210"}, "home_municipality": "091"})));
    assert_eq!(moved.status().as_u16(), 200);
    let history = |app: &TestApp| rekisteri_db::history::change_history_of(&mut app.db.conn(), "clients", &id).unwrap();
    let before_order = history(app);
    let with_address = before_order
        .iter()
        .flat_map(|h| [&h.old_row, &h.new_row])
        .filter(|doc| doc.as_deref().unwrap_or_default().contains("\"address\""))
        .count();
    assert_eq!(with_address, 2, "the move keeps the address it replaced and the one it set, before the order");
    // CL-17 by diff: the move's row keeps only the columns it changed, the creation's no copy.
    let keys = |doc: Option<&str>| -> Vec<String> {
        let doc: Value = serde_json::from_str(doc.unwrap()).unwrap();
        // The test clock may stand still between the two, so updated_at is not counted.
        let mut keys: Vec<String> = doc.as_object().unwrap().keys().filter(|k| *k != "updated_at").cloned().collect();
        keys.sort();
        keys
    };
    let changed = ["address", "home_municipality", "version"];
    assert_eq!(keys(before_order[1].old_row.as_deref()), changed);
    assert_eq!(keys(before_order[1].new_row.as_deref()), changed);
    assert_eq!((&before_order[0].old_row, &before_order[0].new_row), (&None, &None), "the creation keeps no copy");
    let ordered = app.request_as(Method::PATCH, &w.handler, &client, &[("If-Match", "\"2\"")], Some(&json!({"protection_order": true})));
    assert_eq!(ordered.status().as_u16(), 200);
    let view: Value = ordered.json().unwrap();
    assert_eq!(view["protection_order"], true);
    assert!(view.get("address").is_none() && view.get("home_municipality").is_none(), "{view}");
    let rows = history(app);
    assert_eq!(rows.len(), 3, "no history row is lost, only redacted");
    let moved: Value = serde_json::from_str(rows[1].old_row.as_deref().unwrap()).unwrap();
    assert!(moved.get("version").is_some(), "the other fields stay: {moved}");
    let order: Value = serde_json::from_str(rows[2].new_row.as_deref().unwrap()).unwrap();
    // SQLite's history holds a boolean as 1, PostgreSQL's as true.
    assert!([json!(true), json!(1)].contains(&order["protection_order"]), "{order}");
    for row in &rows {
        for doc in [&row.old_row, &row.new_row].into_iter().flatten() {
            let doc: Value = serde_json::from_str(doc).unwrap();
            assert!(doc.get("address").is_none() && doc.get("home_municipality").is_none(), "{doc}");
        }
    }
    // The redaction is the only change the history accepts.
    let mut conn = app.db.conn();
    assert!(diesel::sql_query("UPDATE change_history SET actor = 'someone else'").execute(&mut conn).is_err());
    assert!(diesel::sql_query("DELETE FROM change_history").execute(&mut conn).is_err());
    // A later address is not stored while the order stands.
    let again = app.request_as(Method::PATCH, &w.handler, &client, &[("If-Match", "\"3\"")],
        Some(&json!({"address": {"street_address": "Uusi katu 1"}})));
    assert_eq!(again.status().as_u16(), 200);
    let stored: Option<Vec<u8>> = rekisteri_db::schema::clients::table
        .filter(rekisteri_db::schema::clients::id.eq(&id))
        .select(rekisteri_db::schema::clients::address)
        .first(&mut conn)
        .unwrap();
    assert!(stored.is_none());
});

idp_app_test!(fn pl_2_a_retried_proxy_or_care_team_push_creates_one_and_its_replay_is_logged(app) {
    let w = world(app);
    let id = maija(app, &w);
    let path = format!("{}/{id}/proxies", clients_path(&w));
    let body = proxy_body(&code(PROXY_PERSON), "2026-01-01", None);
    let first = app.request_as(Method::POST, &w.handler, &path, &[("Idempotency-Key", "proxy-push-1")], Some(&body));
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().unwrap();
    let again = app.request_as(Method::POST, &w.handler, &path, &[("Idempotency-Key", "proxy-push-1")], Some(&body));
    assert_eq!(again.status().as_u16(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().unwrap();
    assert_eq!(again, first);
    let listed: Value = app.get_as(&w.handler, &path).json().unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let replays: i64 = usage_log::table
        .filter(usage_log::registrar_id.eq(&w.registrar))
        .filter(usage_log::data_kind.eq("proxy"))
        .filter(usage_log::purpose.like("%(idempotent replay)"))
        .count()
        .get_result(&mut app.db.conn())
        .unwrap();
    assert_eq!(replays, 1);
    let (nurse_id, _, unit) = professional(app, &w, &w.provider, "1.2.246.10.2001", "1.2.246.10.2001.10.1", "nurse5@hoiva.fi", "professional");
    let team = format!("{}/{id}/care-team", clients_path(&w));
    let member = json!({"account_id": nurse_id, "service_unit_id": unit, "valid_from": "2026-01-01"});
    for _ in 0..2 {
        let response = app.request_as(Method::POST, &w.handler, &team, &[("Idempotency-Key", "team-push-1")], Some(&member));
        assert_eq!(response.status().as_u16(), 201);
    }
    let listed: Value = app.get_as(&w.handler, &team).json().unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
});

idp_app_test!(fn cl_12_registrar_contacts_are_kept_per_registrar_and_shown_in_own_records_and_the_access_document(app) {
    let w = world(app);
    let id = maija(app, &w);
    create(app, &w.other_handler, &w.other_registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider)])));
    let tampere_dpo = json!({"name": "Tietosuojavastaava", "email": "tietosuoja@tampere.fi", "phone": "+358 3 565 611"});
    let tampere_contact = json!({"name": "Kaisa Yhteyshenkilö", "email": "asiakasrekisteri@tampere.fi"});
    let nokia_dpo = json!({"name": "Nokian tietosuojavastaava", "phone": "+358 3 341 3111"});
    let changed = app.patch_as(&w.admin, &format!("/v1/organisations/{}", w.registrar),
        &json!({"contact_person": tampere_contact, "data_protection_officer": tampere_dpo}));
    assert_eq!(changed.status().as_u16(), 200);
    let organisation: Value = changed.json().unwrap();
    assert_eq!(organisation["contacts"], json!({"contact_person": tampere_contact, "data_protection_officer": tampere_dpo}));
    let changed = app.patch_as(&w.admin, &format!("/v1/organisations/{}", w.other_registrar), &json!({"data_protection_officer": nokia_dpo}));
    assert_eq!(changed.status().as_u16(), 200);
    // Someone to contact needs a way to reach them; a malformed address is named.
    for (body, field) in [
        (json!({"data_protection_officer": {"name": "Vastaava"}}), "data_protection_officer"),
        (json!({"contact_person": {"name": "Kaisa", "email": "ei-osoite"}}), "contact_person.email"),
        (json!({"contact_person": {"name": " ", "phone": "+358 3 565 611"}}), "contact_person.name"),
    ] {
        let problem = assert_problem(app.patch_as(&w.admin, &format!("/v1/organisations/{}", w.registrar), &body), 400, "/problems/validation");
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    // Only admins change them.
    assert_problem(app.patch_as(&w.handler, &format!("/v1/organisations/{}", w.registrar), &json!({"data_protection_officer": nokia_dpo})), 403, "/problems/forbidden");
    let kept: Value = app.get_as(&w.handler, &format!("/v1/organisations/{}", w.registrar)).json().unwrap();
    assert_eq!(kept["contacts"]["data_protection_officer"], tampere_dpo);
    // The person sees, beside each register's record, whom to contact about that register.
    let own: Value = app.get_as(&app.citizen_token(MAIJA), "/v1/me/client-records").json().unwrap();
    let items = own["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{own}");
    for item in items {
        let expected = if item["registrar_id"] == w.registrar.as_str() {
            json!({"contact_person": tampere_contact, "data_protection_officer": tampere_dpo})
        } else {
            assert_eq!(item["registrar_id"], w.other_registrar.as_str());
            json!({"data_protection_officer": nokia_dpo})
        };
        assert_eq!(item["registrar_contacts"], expected, "{item}");
    }
    // And so does the right-of-access document.
    let (_, auditor) = app.add_user(&w.admin, "dpo@tampere.fi", &w.registrar, "auditor");
    let report: Value = app.get_as(&auditor, &format!("{}/{id}/access-report", clients_path(&w))).json().unwrap();
    assert_eq!(report["registrar_contacts"], json!({"contact_person": tampere_contact, "data_protection_officer": tampere_dpo}));
});
