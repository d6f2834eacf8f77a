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

/// A handler that fails as a fault of ours does: a database error, say.
async fn broken() -> Result<HttpResponse, rekisteri_api::ApiError> {
    Err(rekisteri_api::ApiError::internal("the probe's cause"))
}

fn app() -> TestApp {
    TestApp::start_with(
        TestDatabase::sqlite(),
        TestAppOptions {
            body_limit: 2048,
            extra_routes: |config| {
                config.route("/probe", web::post().to(probe));
                config.route("/broken", web::get().to(broken));
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

/// Sends `head` on a fresh connection and reads the whole answer (the parser closes it).
fn raw_exchange(app: &TestApp, head: &[u8]) -> String {
    use std::io::{Read, Write};
    let address = app.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    stream.write_all(head).unwrap();
    // The parser closes the connection with bytes of ours still unread, so the kernel may end
    // it with a reset after the answer: keep what arrived.
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn pl_3_requests_the_http_parser_refuses_get_the_documented_empty_answer() {
    let app = app();
    let many_headers: String = (0..96).map(|i| format!("X-{i}: v\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a NUL in a header", b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n".to_vec(), "400 Bad Request"),
        ("two Content-Length headers", b"POST /v1/organisations HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}".to_vec(), "400 Bad Request"),
        ("Content-Length with Transfer-Encoding", b"POST /v1/organisations HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), "400 Bad Request"),
        ("an unknown HTTP version", b"GET /health/live HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(), "400 Bad Request"),
        ("a 64 KiB request target", [b"GET /".to_vec(), vec![b'a'; 65535], b" HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()].concat(), "400 Bad Request"),
        ("97 header fields", format!("GET /health/live HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(), "431 Request Header Fields Too Large"),
    ];
    for (case, head, status) in cases {
        let answer = raw_exchange(&app, &head).to_ascii_lowercase();
        assert!(
            answer.starts_with(&format!("http/1.1 {}\r\n", status.to_ascii_lowercase())),
            "{case}: {answer}"
        );
        assert!(answer.contains("\r\ncontent-length: 0\r\n"), "{case}: {answer}");
        assert!(answer.contains("\r\nconnection: close\r\n"), "{case}: {answer}");
        assert!(!answer.contains("content-type"), "{case}: {answer}");
        assert!(!answer.contains("x-request-id"), "{case}: {answer}");
        assert!(answer.ends_with("\r\n\r\n"), "{case}: the answer has no body: {answer}");
    }
    // Just inside each limit, the request reaches the service and gets its ordinary answers.
    let target = [
        b"GET /".to_vec(),
        vec![b'a'; 65533],
        b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    ]
    .concat();
    let answer = raw_exchange(&app, &target).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 404 not found\r\n"), "{answer}");
    assert!(answer.contains("content-type: application/problem+json"), "{answer}");
    let headers: String = (0..94).map(|i| format!("X-{i}: v\r\n")).collect();
    let answer = raw_exchange(
        &app,
        format!("GET /health/live HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n").as_bytes(),
    )
    .to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200 ok\r\n"), "{answer}");
    assert!(answer.contains("x-request-id"), "{answer}");
}

#[test]
fn pl_4_an_internal_error_is_logged_with_the_request_id_the_caller_quotes() {
    rekisteri_tests::capture_log();
    let app = app();
    let response = app
        .client
        .get(app.url("/broken"))
        .header("X-Request-Id", "report-me-7")
        .send()
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "report-me-7");
    let body = assert_problem(response, 500, "/problems/internal");
    assert!(
        !body.to_string().contains("the probe's cause"),
        "the cause stays in the log: {body}"
    );
    let lines = rekisteri_tests::captured_log_lines();
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("ERROR") && line.contains("report-me-7 internal error: the probe's cause")),
        "{lines:?}"
    );
}
