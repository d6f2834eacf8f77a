//! Data-subject requests with their due dates (CL-12): one calendar month from receipt,
//! extendable by at most two with the reason notified within the first month; refusals with
//! their reasons and complaint route; only the registrar's own staff with the permission.

use diesel::prelude::*;
use rekisteri_db::schema::{change_history, usage_log};
use rekisteri_tests::{TestApp, app_test, assert_problem};
use serde_json::{Value, json};

use crate::idempotency::{code, fixture};

/// "Today" of these tests: 15 March 2026 in Finland.
fn set_today(app: &TestApp) {
    app.clock.set(time::macros::datetime!(2026-03-15 10:00 UTC));
}

fn requests_path(registrar: &str) -> String {
    format!("/v1/registrars/{registrar}/data-subject-requests")
}

fn receive(app: &TestApp, token: &str, registrar: &str, body: &Value) -> Value {
    let response = app.post_as(token, &requests_path(registrar), body);
    assert_eq!(response.status().as_u16(), 201, "recording a test request failed");
    response.json().unwrap()
}

fn usage_outcomes(app: &TestApp, registrar: &str, data_id: &str) -> Vec<String> {
    usage_log::table
        .filter(usage_log::registrar_id.eq(registrar))
        .filter(usage_log::data_id.eq(data_id))
        .order(usage_log::seq)
        .select(usage_log::outcome)
        .load(&mut app.db.conn())
        .unwrap()
}

app_test!(fn cl_12_request_due_date_is_one_month_from_receipt(app) {
    set_today(app);
    let f = fixture(app);
    // The person is a client of the register: the request is linked to them.
    let client: Value = app
        .post_as(&f.handler, &format!("/v1/registrars/{}/clients", f.registrar), &json!({
            "identity_code": code(1), "first_names": "Pyry", "surname": "Pyytäjä",
            "services": [{"kind": "purchased_service", "service_type": "home_care", "service_name": "Kotihoito",
                "quantity": 10, "unit": "visit", "valid_from": "2026-01-01", "valid_to": "2026-12-31",
                "provider_id": f.provider}]}))
        .json()
        .unwrap();
    let response = app.post_as(&f.dpo, &requests_path(&f.registrar), &json!({
        "kind": "access", "identity_code": code(1), "received_on": "2026-01-31",
        "requester": {"name": "Pyry Pyytäjä", "email": "pyry@esimerkki.fi"}, "details": "Kaikki tietoni"}));
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(location, format!("{}/{id}", requests_path(&f.registrar)));
    // 31 January + one calendar month: the last day of February.
    assert_eq!(created["received_on"], "2026-01-31");
    assert_eq!(created["first_due_on"], "2026-02-28");
    assert_eq!(created["due_on"], "2026-02-28");
    assert_eq!(created["extended"], false);
    assert_eq!(created["status"], "received");
    assert_eq!(created["overdue"], true);
    assert_eq!(created["client_id"], client["id"]);
    assert_eq!(created["identity_code"], code(1));
    assert_eq!(created["requester"]["email"], "pyry@esimerkki.fi");
    // In a leap year, 29 February; mid-month, the same day; without received_on, today.
    let leap = receive(app, &f.dpo, &f.registrar, &json!({"kind": "erasure", "identity_code": code(2), "received_on": "2024-01-31"}));
    assert_eq!(leap["due_on"], "2024-02-29");
    assert!(leap.get("client_id").is_none(), "{leap}");
    let today = receive(app, &f.dpo, &f.registrar, &json!({"kind": "rectification", "identity_code": code(3)}));
    assert_eq!(today["received_on"], "2026-03-15");
    assert_eq!(today["due_on"], "2026-04-15");
    assert_eq!(today["overdue"], false);
    // Read back: the same, with its ETag; the creation and the read are logged uses.
    let read = app.get_as(&f.dpo, &location);
    assert_eq!(read.status().as_u16(), 200);
    assert_eq!(read.headers()["etag"], "\"1\"");
    let read: Value = read.json().unwrap();
    assert_eq!(read, created);
    assert_eq!(usage_outcomes(app, &f.registrar, id), vec!["used", "used"]);
    // Listing by due date, filtered and paged.
    let list: Value = app.get_as(&f.dpo, &requests_path(&f.registrar)).json().unwrap();
    let due: Vec<&str> = list["items"].as_array().unwrap().iter().map(|r| r["due_on"].as_str().unwrap()).collect();
    assert_eq!(due, ["2024-02-29", "2026-02-28", "2026-04-15"]);
    let overdue: Value = app.get_as(&f.dpo, &format!("{}?overdue=true", requests_path(&f.registrar))).json().unwrap();
    assert_eq!(overdue["items"].as_array().unwrap().len(), 2);
    let page: Value = app.get_as(&f.dpo, &format!("{}?limit=2", requests_path(&f.registrar))).json().unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = app.get_as(&f.dpo, &format!("{}?limit=2&cursor={cursor}", requests_path(&f.registrar))).json().unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["due_on"], "2026-04-15");
    assert!(rest["next_cursor"].is_null());
    let body = assert_problem(app.get_as(&f.dpo, &format!("{}?limit=501", requests_path(&f.registrar))), 400, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "limit");
    let received: Value = app.get_as(&f.dpo, &format!("{}?status=refused", requests_path(&f.registrar))).json().unwrap();
    assert_eq!(received["items"].as_array().unwrap().len(), 0);
    // Refused input names its field and never echoes the code.
    let path = requests_path(&f.registrar);
    let body = assert_problem(app.post_as(&f.dpo, &path, &json!({"kind": "access", "identity_code": "131052-308U"})), 400, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "identity_code");
    assert!(!body.to_string().contains("308U"), "{body}");
    let body = assert_problem(app.post_as(&f.dpo, &path, &json!({"kind": "forget_me", "identity_code": code(4)})), 400, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "kind");
    let body = assert_problem(app.post_as(&f.dpo, &path, &json!({"kind": "access", "identity_code": code(4), "received_on": "2026-03-16"})), 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "received_on");
    assert_eq!(app.get_as(&f.dpo, &path).json::<Value>().unwrap()["items"].as_array().unwrap().len(), 3);
});

app_test!(fn cl_12_extension_needs_reason_and_notice_within_first_month(app) {
    set_today(app);
    let f = fixture(app);
    let created = receive(app, &f.dpo, &f.registrar, &json!({"kind": "access", "identity_code": code(5), "received_on": "2026-01-31"}));
    let path = format!("{}/{}", requests_path(&f.registrar), created["id"].as_str().unwrap());
    let extension = json!({"extend_by_months": 2, "extension_reason": "Laaja pyyntö: tiedot kolmesta järjestelmästä",
        "extension_notified_on": "2026-02-20"});
    assert_problem(app.patch_as(&f.dpo, &path, &extension), 428, "/problems/precondition-required");
    assert_problem(app.patch_if_match(&f.dpo, &path, "\"7\"", &extension), 412, "/problems/precondition-failed");
    let refused = |body: Value, field: &str| {
        let problem = assert_problem(app.patch_if_match(&f.dpo, &path, "\"1\"", &body), 422, "/problems/business-rule");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    };
    refused(json!({"extend_by_months": 2, "extension_notified_on": "2026-02-20"}), "extension_reason");
    refused(json!({"extend_by_months": 2, "extension_reason": " ", "extension_notified_on": "2026-02-20"}), "extension_reason");
    refused(json!({"extend_by_months": 2, "extension_reason": "Laaja"}), "extension_notified_on");
    // The notice came after the first month (due 28 February).
    refused(json!({"extend_by_months": 2, "extension_reason": "Laaja", "extension_notified_on": "2026-03-01"}), "extension_notified_on");
    refused(json!({"extend_by_months": 2, "extension_reason": "Laaja", "extension_notified_on": "2026-01-30"}), "extension_notified_on");
    refused(json!({"extend_by_months": 3, "extension_reason": "Laaja", "extension_notified_on": "2026-02-20"}), "extend_by_months");
    refused(json!({"extension_reason": "Laaja", "extension_notified_on": "2026-02-20"}), "extend_by_months");
    // Nothing of the refused changes was kept.
    let unchanged: Value = app.get_as(&f.dpo, &path).json().unwrap();
    assert_eq!(unchanged["version"], 1);
    assert_eq!(unchanged["due_on"], "2026-02-28");
    // With a reason notified in time: due three months from receipt.
    let extended = app.patch_if_match(&f.dpo, &path, "\"1\"", &extension);
    assert_eq!(extended.status().as_u16(), 200);
    assert_eq!(extended.headers()["etag"], "\"2\"");
    let extended: Value = extended.json().unwrap();
    assert_eq!(extended["first_due_on"], "2026-02-28");
    assert_eq!(extended["due_on"], "2026-04-30");
    assert_eq!(extended["extended"], true);
    assert_eq!(extended["overdue"], false);
    assert_eq!(extended["extension_reason"], "Laaja pyyntö: tiedot kolmesta järjestelmästä");
    assert_eq!(extended["extension_notified_on"], "2026-02-20");
    assert_eq!(extended["handled_by"], f.dpo_id.as_str());
    // One month is enough too; never more than two.
    let shorter = app.patch_if_match(&f.dpo, &path, "\"2\"", &json!({"extend_by_months": 1,
        "extension_reason": "Laaja", "extension_notified_on": "2026-02-20", "status": "in_progress"}));
    assert_eq!(shorter.status().as_u16(), 200);
    let shorter: Value = shorter.json().unwrap();
    assert_eq!(shorter["due_on"], "2026-03-31");
    assert_eq!(shorter["status"], "in_progress");
    // The change history has the request's insert and both updates, made by the officer.
    let history: Vec<(String, String)> = change_history::table
        .filter(change_history::table_name.eq("data_subject_requests"))
        .filter(change_history::row_id.eq(created["id"].as_str().unwrap()))
        .order(change_history::id)
        .select((change_history::operation, change_history::actor))
        .load(&mut app.db.conn())
        .unwrap();
    let operations: Vec<&str> = history.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(operations, ["INSERT", "UPDATE", "UPDATE"]);
    assert!(history.iter().all(|(_, actor)| actor == &f.dpo_id), "{history:?}");
});

app_test!(fn cl_12_refusal_records_reasons_and_complaint_route(app) {
    set_today(app);
    let f = fixture(app);
    let created = receive(app, &f.dpo, &f.registrar, &json!({"kind": "erasure", "identity_code": code(6), "received_on": "2026-03-02"}));
    let path = format!("{}/{}", requests_path(&f.registrar), created["id"].as_str().unwrap());
    let problem = assert_problem(app.patch_if_match(&f.dpo, &path, "\"1\"", &json!({"status": "refused"})), 422, "/problems/business-rule");
    assert_eq!(problem["errors"][0]["field"], "refusal_reasons");
    let problem = assert_problem(
        app.patch_if_match(&f.dpo, &path, "\"1\"", &json!({"status": "in_progress", "refusal_reasons": "Ei"})),
        422,
        "/problems/business-rule",
    );
    assert_eq!(problem["errors"][0]["field"], "refusal_reasons");
    let problem = assert_problem(
        app.patch_if_match(&f.dpo, &path, "\"1\"", &json!({"status": "refused", "refusal_reasons": "Ei", "closed_on": "2026-03-16"})),
        422,
        "/problems/business-rule",
    );
    assert_eq!(problem["errors"][0]["field"], "closed_on");
    let refused = app.patch_if_match(&f.dpo, &path, "\"1\"", &json!({"status": "refused",
        "refusal_reasons": "Tiedot on säilytettävä lakisääteisen säilytysajan (laki 123/2000 § 5)"}));
    assert_eq!(refused.status().as_u16(), 200);
    let refused: Value = refused.json().unwrap();
    assert_eq!(refused["status"], "refused");
    assert_eq!(refused["refusal_reasons"], "Tiedot on säilytettävä lakisääteisen säilytysajan (laki 123/2000 § 5)");
    assert_eq!(refused["complaint_route"], rekisteri_clients_default_route());
    assert_eq!(refused["closed_on"], "2026-03-15");
    assert_eq!(refused["handled_by"], f.dpo_id.as_str());
    assert_eq!(refused["overdue"], false);
    // A closed request no longer changes.
    let problem = assert_problem(app.patch_if_match(&f.dpo, &path, "\"2\"", &json!({"status": "completed"})), 422, "/problems/business-rule");
    assert_eq!(problem["errors"][0]["field"], "status");
    // Another complaint route may be named; completion records its day.
    let second = receive(app, &f.dpo, &f.registrar, &json!({"kind": "objection", "identity_code": code(7), "received_on": "2026-03-02"}));
    let second_path = format!("{}/{}", requests_path(&f.registrar), second["id"].as_str().unwrap());
    let refused: Value = app.patch_if_match(&f.dpo, &second_path, "\"1\"", &json!({"status": "refused",
        "refusal_reasons": "Perusteeton", "complaint_route": "Hallinto-oikeus"})).json().unwrap();
    assert_eq!(refused["complaint_route"], "Hallinto-oikeus");
    let third = receive(app, &f.dpo, &f.registrar, &json!({"kind": "access", "identity_code": code(8), "received_on": "2026-03-02"}));
    let third_path = format!("{}/{}", requests_path(&f.registrar), third["id"].as_str().unwrap());
    let completed: Value = app.patch_if_match(&f.dpo, &third_path, "\"1\"", &json!({"status": "completed", "closed_on": "2026-03-10", "identity_verification": "in_person"}))
        .json()
        .unwrap();
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["closed_on"], "2026-03-10");
    assert!(completed.get("refusal_reasons").is_none(), "{completed}");
    let refused_list: Value = app.get_as(&f.dpo, &format!("{}?status=refused", requests_path(&f.registrar))).json().unwrap();
    assert_eq!(refused_list["items"].as_array().unwrap().len(), 2);
});

app_test!(fn cl_12_a_request_completes_only_once_the_requesters_identity_verification_is_recorded(app) {
    set_today(app);
    let f = fixture(app);
    let created = receive(app, &f.dpo, &f.registrar, &json!({"kind": "access", "identity_code": code(11), "received_on": "2026-03-02"}));
    assert!(created.get("identity_verification").is_none(), "{created}");
    let path = format!("{}/{}", requests_path(&f.registrar), created["id"].as_str().unwrap());
    // Source 000 §4: signed by hand, or in person at the registrar; without a record of how the
    // requester was identified, the request cannot be answered.
    let problem = assert_problem(app.patch_if_match(&f.dpo, &path, "\"1\"", &json!({"status": "completed"})), 422, "/problems/business-rule");
    assert_eq!(problem["errors"][0]["field"], "identity_verification");
    let unchanged: Value = app.get_as(&f.dpo, &path).json().unwrap();
    assert_eq!(unchanged["status"], "received");
    assert_eq!(unchanged["version"], 1);
    // An unknown method is a 400 naming the field.
    let problem = assert_problem(
        app.patch_if_match(&f.dpo, &path, "\"1\"", &json!({"identity_verification": "phone_call"})),
        400,
        "/problems/validation",
    );
    assert!(problem.to_string().contains("identity_verification"), "{problem}");
    // Recorded first, completed later.
    let verified: Value = app.patch_if_match(&f.dpo, &path, "\"1\"", &json!({"identity_verification": "signed_letter"})).json().unwrap();
    assert_eq!(verified["identity_verification"], "signed_letter");
    assert_eq!(verified["status"], "received");
    let completed: Value = app.patch_if_match(&f.dpo, &path, "\"2\"", &json!({"status": "completed"})).json().unwrap();
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["identity_verification"], "signed_letter");
    // Recorded at receipt: strong electronic identification.
    let electronic = receive(app, &f.dpo, &f.registrar, &json!({"kind": "rectification", "identity_code": code(12),
        "identity_verification": "strong_electronic_identification"}));
    assert_eq!(electronic["identity_verification"], "strong_electronic_identification");
    let stored: Value = app
        .get_as(&f.dpo, &format!("{}/{}", requests_path(&f.registrar), electronic["id"].as_str().unwrap()))
        .json()
        .unwrap();
    assert_eq!(stored["identity_verification"], "strong_electronic_identification");
    // A refusal needs no verification: an identity that could not be verified is a reason.
    let unverified = receive(app, &f.dpo, &f.registrar, &json!({"kind": "erasure", "identity_code": code(13)}));
    let unverified_path = format!("{}/{}", requests_path(&f.registrar), unverified["id"].as_str().unwrap());
    let refused = app.patch_if_match(&f.dpo, &unverified_path, "\"1\"", &json!({"status": "refused",
        "refusal_reasons": "Pyytäjän henkilöllisyyttä ei voitu varmentaa"}));
    assert_eq!(refused.status().as_u16(), 200);
});

fn rekisteri_clients_default_route() -> &'static str {
    "Data Protection Ombudsman (tietosuojavaltuutettu), PL 800, 00531 Helsinki, https://tietosuoja.fi"
}

app_test!(fn cl_12_other_registrars_get_404_and_staff_without_the_permission_403(app) {
    set_today(app);
    let f = fixture(app);
    let created = receive(app, &f.dpo, &f.registrar, &json!({"kind": "access", "identity_code": code(9)}));
    let id = created["id"].as_str().unwrap();
    let path = format!("{}/{id}", requests_path(&f.registrar));
    // Another registrar's officer: nothing exists, and the attempts on the request are logged.
    assert_problem(app.get_as(&f.other_dpo, &path), 404, "/problems/not-found");
    assert_problem(app.patch_if_match(&f.other_dpo, &path, "\"1\"", &json!({"status": "completed"})), 404, "/problems/not-found");
    assert_problem(app.get_as(&f.other_dpo, &requests_path(&f.registrar)), 404, "/problems/not-found");
    assert_problem(
        app.post_as(&f.other_dpo, &requests_path(&f.registrar), &json!({"kind": "access", "identity_code": code(10)})),
        404,
        "/problems/not-found",
    );
    assert_eq!(usage_outcomes(app, &f.registrar, id), vec!["used", "denied", "denied"]);
    // Its own list does not show the request; a provider's staff reaches nothing either.
    let own: Value = app.get_as(&f.other_dpo, &requests_path(&f.other_registrar)).json().unwrap();
    assert_eq!(own["items"].as_array().unwrap().len(), 0);
    assert_problem(app.get_as(&f.provider_staff, &path), 404, "/problems/not-found");
    // The registrar's own client handler lacks the permission: 403.
    assert_problem(app.get_as(&f.handler, &path), 403, "/problems/forbidden");
    assert_problem(app.get_as(&f.handler, &requests_path(&f.registrar)), 403, "/problems/forbidden");
    assert_problem(
        app.post_as(&f.handler, &requests_path(&f.registrar), &json!({"kind": "access", "identity_code": code(10)})),
        403,
        "/problems/forbidden",
    );
    // A request id of another registrar under this registrar's path is not found.
    let other = receive(app, &f.other_dpo, &f.other_registrar, &json!({"kind": "access", "identity_code": code(9)}));
    let crossed = format!("{}/{}", requests_path(&f.registrar), other["id"].as_str().unwrap());
    assert_problem(app.get_as(&f.dpo, &crossed), 404, "/problems/not-found");
    let list: Value = app.get_as(&f.dpo, &requests_path(&f.registrar)).json().unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
});
