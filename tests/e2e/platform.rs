//! Health, the OpenAPI document, the docs page and request ids.

use rekisteri_db::testing::TestDatabase;
use rekisteri_tests::{TestApp, TestAppOptions, app_test, assert_problem, db_test};

db_test!(fn pl_10_ready_when_database_migrations_and_keys_are_good(db) {
    let app = TestApp::start(db_reopen(db));
    let live = app.get("/health/live");
    assert_eq!(live.status().as_u16(), 200);
    let ready = app.get("/health/ready");
    assert_eq!(ready.status().as_u16(), 200);
    let body: serde_json::Value = ready.json().unwrap();
    assert_eq!(body, serde_json::json!({"status": "ready", "checks": {"database": "ok", "migrations": "ok", "keys": "ok", "audit_log": "ok"}}));
});

db_test!(fn pl_10_not_ready_without_verified_keys(db) {
    let app = TestApp::start_with(db_reopen(db), TestAppOptions { keys_verified: false, ..TestAppOptions::default() });
    let body = assert_problem(app.get("/health/ready"), 503, "/problems/not-ready");
    assert_eq!(body["errors"], serde_json::json!([{"field": "keys", "message": "the encryption keys were not verified against the database"}]));
});

/// The db_test body gets a borrowed database; the app takes one of its own of the same backend.
fn db_reopen(db: &TestDatabase) -> TestDatabase {
    match db.backend() {
        rekisteri_db::Backend::Sqlite => TestDatabase::sqlite(),
        rekisteri_db::Backend::Postgres => TestDatabase::postgres().expect("PostgreSQL configured"),
    }
}

#[test]
fn pl_1_served_openapi_document_is_3_1_and_equals_the_committed_one() {
    let app = TestApp::start(TestDatabase::sqlite());
    let response = app.get("/openapi.json");
    assert_eq!(response.status().as_u16(), 200);
    let served: serde_json::Value = response.json().unwrap();
    assert_eq!(served["openapi"], "3.1.0");
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../api-spec/openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(served, committed, "api-spec/openapi.json is stale: run `make openapi`");
    assert!(served["paths"]["/health/ready"]["get"].is_object());
}

#[test]
fn pl_1_docs_page_works_offline() {
    let app = TestApp::start(TestDatabase::sqlite());
    let redirect = get_without_following(&app, "/docs");
    assert_eq!(redirect.status().as_u16(), 308);
    let page = app.get("/docs/");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"),
        "external URL in {html}"
    );
    let initializer = app.get("/docs/swagger-initializer.js").text().unwrap();
    assert!(initializer.contains("\"url\": \"/openapi.json\""), "{initializer}");
    assert!(initializer.contains("\"validatorUrl\": \"none\""), "{initializer}");
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-ui-standalone-preset.js",
    ] {
        assert_eq!(app.get(&format!("/docs/{asset}")).status().as_u16(), 200, "{asset}");
    }
}

/// PL-16: the Swagger UI is served from the binary, offline, with only the files its page loads
/// (the release's source maps and ES bundles are left out of the binary).
#[test]
fn pl_16_swagger_ui_is_served_offline() {
    let app = TestApp::start(TestDatabase::sqlite());
    let content_type =
        |response: &reqwest::blocking::Response| response.headers()["content-type"].to_str().unwrap().to_owned();
    for (path, expected) in [
        ("/docs/", "text/html; charset=utf-8"),
        ("/docs/index.html", "text/html; charset=utf-8"),
        ("/docs/swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        (
            "/docs/swagger-ui-standalone-preset.js",
            "text/javascript; charset=utf-8",
        ),
        ("/docs/swagger-initializer.js", "text/javascript; charset=utf-8"),
        ("/docs/swagger-ui.css", "text/css; charset=utf-8"),
        ("/docs/index.css", "text/css; charset=utf-8"),
        ("/docs/favicon-32x32.png", "image/png"),
        ("/docs/favicon-16x16.png", "image/png"),
        ("/openapi.json", "application/json"),
    ] {
        let response = app.get(path);
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(content_type(&response), expected, "{path}");
    }
    let bundle = app.get("/docs/swagger-ui-bundle.js").text().unwrap();
    assert!(
        bundle.len() > 1_000_000 && bundle.contains("SwaggerUIBundle"),
        "{} bytes",
        bundle.len()
    );
    // The page loads every file it names from the server itself.
    let page = app.get("/docs/").text().unwrap();
    for reference in page.split('"').filter(|part| part.starts_with("./")) {
        assert_eq!(
            app.get(&format!("/docs/{}", &reference[2..])).status().as_u16(),
            200,
            "{reference}"
        );
    }
    for unused in [
        "swagger-ui-bundle.js.map",
        "swagger-ui-es-bundle.js",
        "swagger-ui.js",
        "swagger-ui.css.map",
    ] {
        assert_eq!(app.get(&format!("/docs/{unused}")).status().as_u16(), 404, "{unused}");
    }
}

#[test]
fn pl_4_request_id_is_taken_from_the_caller_or_made() {
    let app = TestApp::start(TestDatabase::sqlite());
    let given = app
        .client
        .get(app.url("/health/live"))
        .header("X-Request-Id", "apotti-batch-42")
        .send()
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "apotti-batch-42");
    let made = app.get("/health/live");
    let id = made.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    // A value that is not a plain token is replaced, never reflected.
    let odd = app
        .client
        .get(app.url("/health/live"))
        .header("X-Request-Id", "131052-308T <script>")
        .send()
        .unwrap();
    let replaced = odd.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(replaced, "131052-308T <script>");
    assert_eq!(replaced.len(), 36);
    // Errors carry it too.
    let missing = app
        .client
        .get(app.url("/nowhere"))
        .header("X-Request-Id", "trace-1")
        .send()
        .unwrap();
    assert_eq!(missing.headers()["x-request-id"], "trace-1");
}

app_test!(fn pl_3_responses_carry_security_headers(app) {
    let header = |response: &reqwest::blocking::Response, name: &str| {
        response.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
    };
    let general = |response: &reqwest::blocking::Response| {
        assert_eq!(header(response, "x-content-type-options").as_deref(), Some("nosniff"), "{}", response.url());
        assert_eq!(header(response, "referrer-policy").as_deref(), Some("no-referrer"), "{}", response.url());
    };
    // API responses, successes and errors alike, are never stored by a cache.
    let admin = app.bootstrap_admin();
    let me = app.get_as(&admin, "/v1/me");
    assert_eq!(me.status().as_u16(), 200);
    let unauthenticated = app.get("/v1/me");
    assert_eq!(unauthenticated.status().as_u16(), 401);
    let missing = app.get_as(&admin, "/v1/nowhere");
    assert_eq!(missing.status().as_u16(), 404);
    let login = app.login(rekisteri_tests::ADMIN_EMAIL, "not the password at all");
    assert_eq!(login.status().as_u16(), 401);
    for response in [&me, &unauthenticated, &missing, &login] {
        general(response);
        assert_eq!(header(response, "cache-control").as_deref(), Some("no-store"), "{}", response.url());
        assert_eq!(header(response, "content-security-policy"), None, "{}", response.url());
    }
    // Health and the OpenAPI document hold neither tokens nor personal data.
    let live = app.get("/health/live");
    let openapi = app.get("/openapi.json");
    for response in [&live, &openapi] {
        assert_eq!(response.status().as_u16(), 200);
        general(response);
        assert_eq!(header(response, "cache-control"), None, "{}", response.url());
        assert_eq!(header(response, "content-security-policy"), None, "{}", response.url());
    }
    // The docs page, its redirect and its assets: framed by no one, scripts only from files.
    let policy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                  object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
    let redirect = get_without_following(app, "/docs");
    assert_eq!(redirect.status().as_u16(), 308);
    let page = app.get("/docs/");
    let initializer = app.get("/docs/swagger-initializer.js");
    for response in [&redirect, &page, &initializer] {
        general(response);
        assert_eq!(header(response, "content-security-policy").as_deref(), Some(policy), "{}", response.url());
        assert_eq!(header(response, "cache-control"), None, "{}", response.url());
    }
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().unwrap();
    let scripts: Vec<&str> = html.split("<script").skip(1).collect();
    assert_eq!(scripts.len(), 3, "{html}");
    for script in scripts {
        let (tag, rest) = script.split_once('>').unwrap();
        assert!(tag.contains(" src="), "an inline script needs 'unsafe-inline': {html}");
        assert!(rest.trim_start().starts_with("</script>"), "an inline script needs 'unsafe-inline': {html}");
    }
});

/// A GET whose redirect is answered, not followed.
fn get_without_following(app: &TestApp, path: &str) -> reqwest::blocking::Response {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url(path))
        .send()
        .unwrap()
}

/// One sample: the series' name, its labels and its value.
type Sample = (String, Vec<(String, String)>, f64);

/// Checks `text` against the OpenMetrics text grammar this server writes: metadata lines,
/// samples `name{label="value",…} number`, and the closing `# EOF`. Returns the samples.
fn parse_openmetrics(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "the exposition ends with # EOF");
    let name_ok = |name: &str| {
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    };
    for line in &lines[..lines.len() - 1] {
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            assert!(["HELP", "TYPE", "UNIT"].contains(&kind), "{line}");
            assert!(name_ok(name), "{line}");
            if kind == "TYPE" {
                let type_ = parts.next().unwrap_or("");
                assert!(
                    ["counter", "gauge", "histogram", "info", "unknown"].contains(&type_),
                    "{line}"
                );
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            other => other.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let labels = body
                    .split("\",")
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (key, quoted) = pair.split_once("=\"").unwrap_or_else(|| panic!("bad label: {line}"));
                        assert!(name_ok(key), "{line}");
                        (key.to_owned(), quoted.trim_end_matches('"').to_owned())
                    })
                    .collect();
                (name, labels)
            }
        };
        assert!(name_ok(name), "{line}");
        samples.push((name.to_owned(), labels, value));
    }
    samples
}

/// A server with a scrape token, a registrar's client handler and a client of theirs read once.
struct Scraped {
    app: TestApp,
    admin: String,
    handler: String,
    registrar: String,
    client: String,
}

const SCRAPE: &str = "a-scrape-token-of-forty-characters-long!";

fn scraped_app(db: &TestDatabase) -> Scraped {
    use crate::clients::{MAIJA, client_body, create, home_care_voucher};
    let app = TestApp::start_with(
        db_reopen(db),
        TestAppOptions {
            metrics_token: Some(SCRAPE.to_owned()),
            ..TestAppOptions::default()
        },
    );
    let admin = app.bootstrap_admin();
    let registrar = app.organisation(&admin, "Tampere", "municipality", "1.2.246.10.1001");
    let provider = app.create_organisation(&admin, "Hoiva Oy", "provider");
    let home_care = app.service_area(&admin, &registrar, "home_care", &["home_care"]);
    let (handler_id, handler) = app.add_user(&admin, "handler@tampere.fi", &registrar, "client_handler");
    app.grant_service_area(&admin, &handler_id, &home_care);
    let created = create(
        &app,
        &handler,
        &registrar,
        &client_body(MAIJA, serde_json::json!([home_care_voucher(&provider)])),
    );
    let client = created["id"].as_str().unwrap().to_owned();
    let read = app.get_as(&handler, &format!("/v1/registrars/{registrar}/clients/{client}"));
    assert_eq!(read.status().as_u16(), 200);
    Scraped {
        app,
        admin,
        handler,
        registrar,
        client,
    }
}

db_test!(fn pl_10_metrics_are_openmetrics_text_for_an_admin_or_the_scrape_token_with_no_personal_data(db) {
    use crate::clients::MAIJA;
    let Scraped { app, admin, handler, registrar, client } = scraped_app(db);
    let client = client.as_str();
    // Who may read them.
    assert_problem(app.get("/metrics"), 401, "/problems/unauthenticated");
    assert_problem(app.get_as(&handler, "/metrics"), 403, "/problems/forbidden");
    assert_problem(app.get_as("a-scrape-token-of-forty-characters-long?", "/metrics"), 401, "/problems/unauthenticated");
    let scraped = app.get_as(SCRAPE, "/metrics");
    assert_eq!(scraped.status().as_u16(), 200);
    assert_eq!(scraped.headers()["content-type"], "application/openmetrics-text; version=1.0.0; charset=utf-8");
    let text = scraped.text().unwrap();
    assert_eq!(app.get_as(&admin, "/metrics").status().as_u16(), 200);

    let samples = parse_openmetrics(&text);
    let value = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
        samples
            .iter()
            .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v)))
            .map(|(_, _, v)| *v)
    };
    let route = "/v1/registrars/{rid}/clients/{id}";
    assert!(
        value("rekisteri_http_requests_total", &[("route", route), ("method", "GET"), ("status", "200")]) >= Some(1.0),
        "{text}"
    );
    assert!(value("rekisteri_http_request_duration_seconds_count", &[("route", route), ("method", "GET")]) >= Some(1.0), "{text}");
    assert!(value("rekisteri_audit_group_commit_entries_count", &[]) >= Some(1.0), "{text}");
    assert!(value("rekisteri_audit_group_commit_seconds_count", &[]) >= Some(1.0), "{text}");
    assert!(value("rekisteri_audit_group_commit_failures_total", &[]).is_some(), "{text}");
    assert!(value("rekisteri_db_pool_size", &[]) >= Some(1.0), "{text}");
    assert!(value("rekisteri_db_pool_in_use", &[]).is_some(), "{text}");
    assert!(value("rekisteri_db_pool_waiting", &[]).is_some(), "{text}");
    assert_eq!(value("rekisteri_outbox_depth", &[("outbox", "will_service")]), Some(0.0), "{text}");
    assert_eq!(value("rekisteri_outbox_depth", &[("outbox", "notifications")]), Some(0.0), "{text}");
    // The raw path (with the client's id) never becomes a label; nor does anything personal.
    for secret in [MAIJA, "131052", client, "handler@tampere.fi", SCRAPE, handler.as_str()] {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }
    assert!(!text.contains(&format!("/v1/registrars/{registrar}")), "a raw path in the metrics");
});

// PL-12: an audited read by a caller this server already knows makes one blocking call, its
// caller confirmed inside it (docs/architecture.md, `principal`); a caller it does not know yet
// is authenticated by the middleware first, a call of its own.
db_test!(fn pl_12_an_audited_read_by_a_known_caller_makes_one_blocking_call(db) {
    let Scraped { app, handler, registrar, client, .. } = scraped_app(db);
    let path = format!("/v1/registrars/{registrar}/clients/{client}");
    let blocking_calls = || -> f64 {
        let text = app.get_as(SCRAPE, "/metrics").text().unwrap();
        parse_openmetrics(&text)
            .into_iter()
            .find(|(name, _, _)| name == "rekisteri_blocking_calls_total")
            .map(|(_, _, value)| value)
            .unwrap_or_else(|| panic!("no rekisteri_blocking_calls_total in {text}"))
    };
    let read_with = |token: &str| -> f64 {
        let before = blocking_calls();
        let scrape = blocking_calls() - before;
        assert_eq!(app.get_as(token, &path).status().as_u16(), 200);
        blocking_calls() - before - 2.0 * scrape
    };
    assert_eq!(read_with(&handler), 1.0, "a read by a known caller");
    let unknown = app.token("handler@tampere.fi", rekisteri_tests::USER_PASSWORD);
    assert_eq!(read_with(&unknown), 2.0, "the first read of a new session");
    assert_eq!(read_with(&unknown), 1.0, "its second read");
});
