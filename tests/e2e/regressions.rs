//! Regressions found by trying the service from outside (issue 20, point 5): each case here
//! once answered wrongly.

use rekisteri_tests::{app_test, assert_problem};
use serde_json::{Value, json};

use crate::clients::{MAIJA, client_body, create, home_care_voucher, world};

fn field_of(problem: &Value) -> &str {
    problem["errors"][0]["field"].as_str().unwrap()
}

app_test!(fn cl_6_a_positive_quantity_below_one_hundredth_is_refused_naming_the_field(app) {
    let w = world(app);
    let r = &w.registrar;
    // These passed the two-decimals check, rounded to 0 and hit a CHECK constraint (500).
    for tiny in [json!(1e-10), json!(5e-324)] {
        let mut service = home_care_voucher(&w.provider);
        service["quantity"] = tiny.clone();
        let response = app.post_as(&w.handler, &format!("/v1/registrars/{r}/clients"), &client_body(MAIJA, json!([service])));
        let problem = assert_problem(response, 400, "/problems/validation");
        assert_eq!(field_of(&problem), "services[0].quantity", "{tiny}");
    }
    let created = create(app, &w.handler, r, &client_body(MAIJA, json!([home_care_voucher(&w.provider)])));
    let id = created["id"].as_str().unwrap();
    let sid = created["services"][0]["id"].as_str().unwrap();
    let mut service = home_care_voucher(&w.provider);
    service["quantity"] = json!(1e-10);
    let problem = assert_problem(app.post_as(&w.handler, &format!("/v1/registrars/{r}/clients/{id}/services"), &service), 400, "/problems/validation");
    assert_eq!(field_of(&problem), "quantity");
    let problem = assert_problem(app.patch_as(&w.handler, &format!("/v1/registrars/{r}/services/{sid}"), &json!({"quantity": 1e-10})), 400, "/problems/validation");
    assert_eq!(field_of(&problem), "quantity");
    let event = json!({"delivered_on": "2026-03-02", "quantity": 5e-324});
    let problem = assert_problem(app.post_as(&w.provider_staff, &format!("/v1/registrars/{r}/services/{sid}/events"), &event), 400, "/problems/validation");
    assert_eq!(field_of(&problem), "quantity");
    // The smallest quantity there is still works.
    let event = json!({"delivered_on": "2026-03-02", "quantity": 0.01});
    assert_eq!(app.post_as(&w.provider_staff, &format!("/v1/registrars/{r}/services/{sid}/events"), &event).status().as_u16(), 201);
});

app_test!(fn ac_4_nobody_closes_their_own_account(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let (main_id, main_user) = app.add_user(&admin, "main@kotikunta.fi", &org, "main_user");
    let (other_id, _) = app.add_user(&admin, "other@kotikunta.fi", &org, "editor");
    let own = app.delete_as(&main_user, &format!("/v1/accounts/{main_id}"));
    assert_problem(own, 403, "/problems/forbidden");
    // Still active: the main user goes on working.
    let me: Value = app.get_as(&main_user, "/v1/me").json().unwrap();
    assert_eq!(me["account"]["status"], "active");
    let admin_id = app.get_as(&admin, "/v1/me").json::<Value>().unwrap()["account"]["id"].as_str().unwrap().to_owned();
    assert_problem(app.delete_as(&admin, &format!("/v1/accounts/{admin_id}")), 403, "/problems/forbidden");
    // Another account of the organisation is still the main user's to close.
    assert_eq!(app.delete_as(&main_user, &format!("/v1/accounts/{other_id}")).status().as_u16(), 200);
});

app_test!(fn pl_3_a_literal_path_allows_only_its_own_methods(app) {
    let w = world(app);
    let search = format!("/v1/registrars/{}/clients/search", w.registrar);
    let response = app.client.request(reqwest::Method::OPTIONS, app.url(&search)).send().unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    assert_problem(response, 405, "/problems/method-not-allowed");
    // Also with credentials and a body: the method of `…/clients/{id}` never reaches its handler
    // through the literal path (issue 20 point 2, found by schemathesis).
    let response = app.client.patch(app.url(&search)).bearer_auth(&w.handler).header("If-Match", "\"1\"").json(&json!({"language": "sv"})).send().unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    assert_problem(response, 405, "/problems/method-not-allowed");
    // A templated path keeps its own.
    let client = format!("/v1/registrars/{}/clients/5f0e8c3a-9d1b-4c7e-8a2f-6b4d3e2c1a09", w.registrar);
    let response = app.client.request(reqwest::Method::OPTIONS, app.url(&client)).send().unwrap();
    assert_eq!(response.headers()["allow"], "GET, PATCH");
});

app_test!(fn pl_3_an_accept_header_that_no_answer_matches_is_406(app) {
    let admin = app.bootstrap_admin();
    let me = |accept: &str| app.request_as(reqwest::Method::GET, &admin, "/v1/me", &[("Accept", accept)], None);
    // It answered 200 JSON, although docs/errors.md promises 406.
    for accept in ["application/xml", "text/html, text/csv", "application/json;q=0, text/plain"] {
        let response = me(accept);
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{accept}");
        assert_problem(response, 406, "/problems/not-acceptable");
    }
    for accept in ["application/json", "application/*", "*/*", "text/html, application/json;q=0.5"] {
        assert_eq!(me(accept).status().as_u16(), 200, "{accept}");
    }
    // An answer without a body takes any Accept.
    let logout = app.request_as(reqwest::Method::POST, &admin, "/v1/auth/logout", &[("Accept", "application/xml")], None);
    assert_eq!(logout.status().as_u16(), 204);
});

app_test!(fn cl_6_settlement_csv_neutralises_cells_a_spreadsheet_would_run_as_formulas(app) {
    let w = world(app);
    let r = &w.registrar;
    let mut body = client_body(MAIJA, json!([home_care_voucher(&w.provider)]));
    body["surname"] = json!("=HYPERLINK(\"http://evil.example\";\"x\")");
    body["first_names"] = json!("@SUM(A1)");
    let created = create(app, &w.handler, r, &body);
    let sid = created["services"][0]["id"].as_str().unwrap();
    let event = json!({"delivered_on": "2026-10-01", "quantity": 1});
    assert_eq!(app.post_as(&w.provider_staff, &format!("/v1/registrars/{r}/services/{sid}/events"), &event).status().as_u16(), 201);
    let path = format!("/v1/registrars/{r}/settlements?provider=1.2.246.10.2001&month=2026-10");
    let csv = app.request_as(reqwest::Method::GET, &w.handler, &path, &[("Accept", "text/csv")], None);
    assert_eq!(csv.status().as_u16(), 200);
    let text = csv.text().unwrap();
    let line = text.lines().nth(1).unwrap();
    // The name cell starts with a quote, so no spreadsheet runs it; the JSON keeps the name.
    assert!(line.contains(",\"'=HYPERLINK(\"\"http://evil.example\"\";\"\"x\"\") @SUM(A1)\","), "{line}");
    assert!(!text.lines().any(|l| l.split(',').any(|cell| cell.starts_with('=') || cell.starts_with('@'))), "{text}");
    let json: Value = app.get_as(&w.handler, &path).json().unwrap();
    assert_eq!(json["lines"][0]["client_name"], "=HYPERLINK(\"http://evil.example\";\"x\") @SUM(A1)");
});

app_test!(fn pl_18_an_admin_listing_the_provider_users_of_no_registrar_gets_404(app) {
    // Found by schemathesis: an admin got 200 with no items for a registrar that does not exist.
    let admin = app.bootstrap_admin();
    let missing = "/v1/registrars/5f0e8c3a-9d1b-4c7e-8a2f-6b4d3e2c1a09/provider-users";
    assert_problem(app.get_as(&admin, missing), 404, "/problems/not-found");
});
