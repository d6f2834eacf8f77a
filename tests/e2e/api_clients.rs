//! API clients: OAuth 2.0 client credentials (AX-2.2), scopes, rotation, acting on behalf of a
//! named end user (AX-1).

use rekisteri_tests::{TestApp, app_test, assert_problem};
use serde_json::{Value, json};

struct Client {
    id: String,
    secret: String,
}

fn create_client(app: &TestApp, admin: &str, organisation: &str, scopes: &[&str]) -> Client {
    let (id, secret) = app.create_api_client(admin, organisation, scopes);
    Client { id, secret }
}

fn token_request(app: &TestApp, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> reqwest::blocking::Response {
    let mut request = app.client.post(app.url("/v1/auth/token")).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    request.send().unwrap()
}

fn oauth_error(response: reqwest::blocking::Response, status: u16, error: &str) {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string());
}

fn access_token(app: &TestApp, client: &Client) -> String {
    app.client_credentials_token(&client.id, &client.secret)
}

app_test!(fn ax_2_client_credentials_give_a_short_lived_token_with_the_clients_scopes(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Pirkanmaa", "wellbeing_services_county");
    let client = create_client(app, &admin, &org, &["audit:read", "clients:read"]);
    // Credentials in the form body, a subset of the scopes.
    let response = token_request(
        app,
        &[("grant_type", "client_credentials"), ("client_id", &client.id), ("client_secret", &client.secret), ("scope", "audit:read")],
        None,
    );
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "audit:read");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(app.get_as(token, &format!("/v1/registrars/{org}/audit/usage")).status().as_u16(), 200);
    // Without a named user the integration holds only its scopes: no account management.
    assert_problem(app.get_as(token, "/v1/api-clients"), 403, "/problems/forbidden");
    // Expired after 15 minutes.
    app.clock.advance(time::Duration::seconds(901));
    assert_problem(app.get_as(token, &format!("/v1/registrars/{org}/audit/usage")), 401, "/problems/unauthenticated");
});

app_test!(fn ax_2_token_errors_follow_rfc_6749(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Pirkanmaa", "wellbeing_services_county");
    let client = create_client(app, &admin, &org, &["audit:read"]);
    let grant = [("grant_type", "client_credentials")];
    oauth_error(token_request(app, &grant, Some((&client.id, "wrong-secret"))), 401, "invalid_client");
    oauth_error(token_request(app, &grant, Some(("no-such-client", &client.secret))), 401, "invalid_client");
    oauth_error(token_request(app, &[("grant_type", "password")], Some((&client.id, &client.secret))), 400, "unsupported_grant_type");
    oauth_error(
        token_request(app, &[("grant_type", "client_credentials"), ("scope", "clients:write")], Some((&client.id, &client.secret))),
        400,
        "invalid_scope",
    );
    oauth_error(token_request(app, &grant, None), 400, "invalid_request");
    let json_body = app.client.post(app.url("/v1/auth/token")).json(&json!({"grant_type": "client_credentials"})).send().unwrap();
    oauth_error(json_body, 400, "invalid_request");
});

app_test!(fn ax_2_rotating_the_secret_stops_the_old_secret_and_its_tokens(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Pirkanmaa", "wellbeing_services_county");
    let client = create_client(app, &admin, &org, &["audit:read"]);
    let old_token = access_token(app, &client);
    let rotated = app.post_as(&admin, &format!("/v1/api-clients/{}/rotate-secret", client.id), &json!({}));
    assert_eq!(rotated.status().as_u16(), 200);
    let rotated: Value = rotated.json().unwrap();
    let new = Client { id: client.id.clone(), secret: rotated["client_secret"].as_str().unwrap().to_owned() };
    assert_ne!(new.secret, client.secret);
    oauth_error(token_request(app, &[("grant_type", "client_credentials")], Some((&client.id, &client.secret))), 401, "invalid_client");
    assert_problem(app.get_as(&old_token, &format!("/v1/registrars/{org}/audit/usage")), 401, "/problems/unauthenticated");
    let token = access_token(app, &new);
    assert_eq!(app.get_as(&token, &format!("/v1/registrars/{org}/audit/usage")).status().as_u16(), 200);
    // The list never shows a secret.
    let list = app.get_as(&admin, "/v1/api-clients").text().unwrap();
    assert!(!list.contains(&new.secret) && list.contains(&client.id));
});

app_test!(fn ax_1_an_integration_acting_for_a_named_user_has_at_most_that_users_rights_and_is_logged(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Pirkanmaa", "wellbeing_services_county");
    let other = app.create_organisation(&admin, "Satakunta", "wellbeing_services_county");
    let (auditor_id, auditor) = app.add_user(&admin, "dpo@pirkanmaa.fi", &org, "auditor");
    let (stranger_id, _) = app.add_user(&admin, "dpo@satakunta.fi", &other, "auditor");
    let (editor_id, _) = app.add_user(&admin, "editor@pirkanmaa.fi", &org, "editor");
    let reader = access_token(app, &create_client(app, &admin, &org, &["clients:read"]));
    let client = create_client(app, &admin, &org, &["audit:read"]);
    let token = access_token(app, &client);
    let as_user = |token: &str, user: &str| {
        app.client
            .get(app.url(&format!("/v1/registrars/{org}/audit/usage")))
            .bearer_auth(token)
            .header("X-On-Behalf-Of", user)
            .send()
            .unwrap()
    };
    // A client whose scopes do not reach the logs does not reach them by naming the auditor
    // (the intersection of scopes and the user's rights, AX-1).
    assert_problem(app.get_as(&reader, &format!("/v1/registrars/{org}/audit/usage")), 404, "/problems/not-found");
    assert_problem(as_user(&reader, &auditor_id), 404, "/problems/not-found");
    let as_user = |user: &str| as_user(&token, user);
    let response = as_user(&auditor_id);
    assert_eq!(response.status().as_u16(), 200);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_problem(as_user(&editor_id), 404, "/problems/not-found");
    assert_problem(as_user(&stranger_id), 403, "/problems/forbidden");
    // The log names the end user and the calling system.
    let page: Value = app.get_as(&auditor, &format!("/v1/registrars/{org}/audit/usage?kind=usage_log")).json().unwrap();
    let entry = page["items"].as_array().unwrap().iter().find(|e| e["request_id"] == request_id.as_str()).unwrap().clone();
    assert_eq!(entry["actor_id"], auditor_id.as_str());
    assert_eq!(entry["on_behalf_of"], auditor_id.as_str());
    assert_eq!(entry["calling_system"], client.id.as_str());
});

app_test!(fn ax_2_only_admins_manage_api_clients(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Pirkanmaa", "wellbeing_services_county");
    let (_, main_user) = app.add_user(&admin, "main@pirkanmaa.fi", &org, "main_user");
    let response = app.post_as(&main_user, "/v1/api-clients", &json!({"name": "X", "organisation": org, "scopes": ["clients:read"]}));
    assert_problem(response, 403, "/problems/forbidden");
    let response = app.post_as(&admin, "/v1/api-clients", &json!({"name": "X", "organisation": org, "scopes": ["everything"]}));
    assert_eq!(assert_problem(response, 400, "/problems/validation")["errors"][0]["field"], "scopes");
});
