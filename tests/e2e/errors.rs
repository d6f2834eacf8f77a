//! PL-3: every malformed request gets a 4xx problem document, never text/plain, never a 5xx.

use actix_web::{HttpResponse, web};
use rekisteri_core::PersonalIdentityCode;
use rekisteri_db::testing::TestDatabase;
use rekisteri_tests::{TestApp, TestAppOptions, assert_problem};
use serde::Deserialize;

/// A probe mounted beside the real routes to exercise the JSON extractor every endpoint uses.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Probe {
    identity_code: PersonalIdentityCode,
    count: u32,
    #[serde(default)]
    items: Vec<ProbeItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ProbeItem {
    gender: Gender,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Gender {
    Male,
    Female,
}

async fn probe(body: rekisteri_api::Json<Probe>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"count": body.0.count}))
}

fn app() -> TestApp {
    TestApp::start_with(
        TestDatabase::sqlite(),
        TestAppOptions {
            body_limit: 2048,
            extra_routes: |config| {
                config.route("/probe", web::post().to(probe));
            },
            ..TestAppOptions::default()
        },
    )
}

fn post(app: &TestApp, content_type: &str, body: impl Into<reqwest::blocking::Body>) -> reqwest::blocking::Response {
    app.client
        .post(app.url("/probe"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .unwrap()
}

#[test]
fn pl_3_valid_body_passes_the_extractor() {
    let app = app();
    let response = post(
        &app,
        "application/json; charset=utf-8",
        r#"{"identity_code":"131052-308T","count":3}"#,
    );
    assert_eq!(response.status().as_u16(), 200);
}

#[test]
fn pl_3_malformed_json_is_400_with_position() {
    let app = app();
    let body = assert_problem(
        post(&app, "application/json", "{\"count\": 3,"),
        400,
        "/problems/malformed-body",
    );
    assert_eq!(body["detail"], "Invalid JSON at line 1 column 12.");
    let body = assert_problem(
        post(
            &app,
            "application/json",
            r#"{"identity_code":"131052-308T","count":3} trailing"#,
        ),
        400,
        "/problems/malformed-body",
    );
    assert!(
        body["detail"].as_str().unwrap().starts_with("Invalid JSON at line 1"),
        "{body}"
    );
}

#[test]
fn pl_3_wrong_or_missing_content_type_is_415() {
    let app = app();
    assert_problem(
        post(&app, "text/plain", r#"{"count":3}"#),
        415,
        "/problems/unsupported-media-type",
    );
    let response = app
        .client
        .post(app.url("/probe"))
        .body(r#"{"count":3}"#)
        .send()
        .unwrap();
    assert_problem(response, 415, "/problems/unsupported-media-type");
}

#[test]
fn pl_3_oversized_body_is_413_declared_or_streamed() {
    let app = app();
    let big = format!(
        r#"{{"identity_code":"131052-308T","count":3,"pad":"{}"}}"#,
        "x".repeat(4096)
    );
    let body = assert_problem(
        post(&app, "application/json", big.clone()),
        413,
        "/problems/payload-too-large",
    );
    assert_eq!(body["detail"], "The body may be at most 2048 bytes.");
    // Without Content-Length (chunked), the limit holds while reading.
    let chunks = std::io::Cursor::new(big.into_bytes());
    let streamed = app
        .client
        .post(app.url("/probe"))
        .header("content-type", "application/json")
        .body(reqwest::blocking::Body::new(chunks))
        .send()
        .unwrap();
    assert_problem(streamed, 413, "/problems/payload-too-large");
}

#[test]
fn pl_3_unknown_and_missing_fields_are_named() {
    let app = app();
    let body = assert_problem(
        post(
            &app,
            "application/json",
            r#"{"identity_code":"131052-308T","count":3,"colour":"red"}"#,
        ),
        400,
        "/problems/validation",
    );
    assert_eq!(body["errors"][0]["field"], "colour");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("unknown field `colour`"),
        "{body}"
    );
    let body = assert_problem(
        post(&app, "application/json", r#"{"identity_code":"131052-308T"}"#),
        400,
        "/problems/validation",
    );
    assert_eq!(body["errors"][0]["field"], "count");
    assert_eq!(body["errors"][0]["message"], "missing field `count`");
    let body = assert_problem(
        post(
            &app,
            "application/json",
            r#"{"identity_code":"131052-308T","count":3,"items":[{"gender":"male"},{}]}"#,
        ),
        400,
        "/problems/validation",
    );
    assert_eq!(body["errors"][0]["field"], "items[1].gender");
    assert_eq!(body["errors"][0]["message"], "missing field `gender`");
}

#[test]
fn pl_3_invalid_enum_and_nested_fields_give_the_path() {
    let app = app();
    let body = assert_problem(
        post(
            &app,
            "application/json",
            r#"{"identity_code":"131052-308T","count":1,"items":[{"gender":"male"},{"gender":"Virtanen"}]}"#,
        ),
        400,
        "/problems/validation",
    );
    assert_eq!(body["errors"][0]["field"], "items[1].gender");
    assert_eq!(
        body["errors"][0]["message"],
        "unknown value, expected `male` or `female`"
    );
    assert!(!body.to_string().contains("Virtanen"));
}

#[test]
fn cl_2_invalid_identity_code_is_400_naming_the_field_without_echoing_it() {
    let app = app();
    let body = assert_problem(
        post(&app, "application/json", r#"{"identity_code":"131052-308U","count":1}"#),
        400,
        "/problems/validation",
    );
    assert_eq!(body["errors"][0]["field"], "identity_code");
    assert_eq!(body["errors"][0]["message"], "the check character does not match");
    assert!(!body.to_string().contains("131052"), "{body}");
    // A code where a number belongs is not echoed either.
    let body = assert_problem(
        post(
            &app,
            "application/json",
            r#"{"identity_code":"131052-308T","count":"131052-308T"}"#,
        ),
        400,
        "/problems/validation",
    );
    assert_eq!(body["errors"][0]["field"], "count");
    assert!(!body.to_string().contains("131052"), "{body}");
}

#[test]
fn pl_3_unknown_path_is_404_and_wrong_method_is_405_with_allow() {
    let app = TestApp::start(TestDatabase::sqlite());
    let body = assert_problem(app.get("/v1/nothing/here"), 404, "/problems/not-found");
    assert_eq!(body["title"], "Not found");
    let response = app.client.delete(app.url("/health/ready")).send().unwrap();
    assert_eq!(response.headers()["allow"], "GET");
    let body = assert_problem(response, 405, "/problems/method-not-allowed");
    assert_eq!(body["detail"], "DELETE is not supported here; use GET.");
    let response = app.client.post(app.url("/openapi.json")).send().unwrap();
    assert_problem(response, 405, "/problems/method-not-allowed");
}

#[test]
fn pl_3_a_path_that_looks_like_personal_data_is_not_logged() {
    // The access log records the route pattern, so an identity code put in a URL by mistake
    // never reaches the log; the response is the ordinary 404.
    let app = TestApp::start(TestDatabase::sqlite());
    assert_problem(app.get("/v1/clients/131052-308T"), 404, "/problems/not-found");
}
