//! The REST API (PL-1): actix-web handlers, the OpenAPI document and the error mapping. Handlers
//! parse, authorise, call a domain crate and map its errors; no business rule lives here.

pub(crate) mod accounts;
mod api_clients;
mod audit;
mod auth;
pub mod bodies;
mod calls;
pub mod client_address;
mod client_relations;
mod clients;
mod consent;
mod contract;
mod data_subject_requests;
mod docs;
mod examples;
pub mod extract;
mod fallback;
pub mod hashing;
mod health;
pub mod idempotency;
mod lifecycle;
pub mod metrics;
pub mod middleware;
mod organisations;
mod own_records;
pub mod principal;
pub mod problem;
pub(crate) mod recordings;
mod request;
mod service_areas;
mod vtj;

use std::net::TcpListener;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use actix_web::body::BoxBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::{App, HttpServer, web};
use rekisteri_core::SharedClock;
use rekisteri_crypto::Keyring;
use rekisteri_db::Pool;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

pub use extract::{BodyLimit, DEFAULT_BODY_LIMIT, Json};
pub use middleware::RequestId;
pub use problem::{ApiError, FieldError, Problem, ProblemType};

/// What every handler can reach.
pub struct AppState {
    pub pool: Pool,
    /// The write path of the pushes' transactions: group-committed on SQLite (PL-13).
    pub writes: rekisteri_db::GroupCommit,
    /// How long a request waits for a pooled connection before it answers 503 with
    /// `Retry-After` ([`DEFAULT_REQUEST_DB_TIMEOUT`]); commands wait the pool's own timeout.
    pub request_db_timeout: Duration,
    /// The audit log writer every read of personal data goes through.
    pub audit: rekisteri_audit::AuditLog,
    pub keyring: Arc<Keyring>,
    pub accounts: rekisteri_accounts::AccountsOptions,
    pub clock: SharedClock,
    /// Set once the keys were checked against the database at start-up.
    pub keys_verified: bool,
    /// DVV's change interface (VT-9).
    pub vtj: rekisteri_vtj::VtjConfig,
    /// The principals of recently seen tokens, kept under the access version (PL-12).
    pub access_cache: Arc<rekisteri_accounts::access_cache::AccessCache>,
    /// The threads of password hashing (login, invitation acceptance), apart from database work.
    pub hashing: hashing::HashingPool,
    /// The proxies whose `X-Forwarded-For` names the client address (AC-5).
    pub trusted_proxies: client_address::TrustedProxies,
    /// Where call recordings' audio is kept, encrypted (CA-3, CA-4).
    pub audio: rekisteri_recordings::AudioStore,
    /// This server process as the owner of `Idempotency-Key` claims; its row must be kept alive
    /// (`rekisteri_idempotency::register_instance`) while it serves.
    pub instance: rekisteri_idempotency::Instance,
    /// The scrape token's digest that `/metrics` accepts besides an admin (none: admins only).
    pub metrics_token: Option<metrics::ScrapeToken>,
    /// Wakes this process's will-service forwarder when a request queued an item (CO-6); a
    /// handle nobody waits on where the scheduler does not run the outbox.
    pub outbox_wakeup: rekisteri_core::Wakeup,
    /// Database work handed off the event loop ([`RunBlocking::run`]): with the requests
    /// answered, the hops a request makes (`/metrics`: `rekisteri_blocking_calls_total`).
    pub blocking_calls: prometheus_client::metrics::counter::Counter,
}

impl AppState {
    /// The user register's handle (cheap: shared pointers).
    pub fn register(&self) -> rekisteri_accounts::Register {
        rekisteri_accounts::Register {
            keyring: self.keyring.clone(),
            audit: self.audit.clone(),
            options: self.accounts.clone(),
            access_cache: self.access_cache.clone(),
        }
    }
}

/// How long a request waits for a database connection by default: an outage answers 503
/// within 2 s (PL-10), while a pool busy under load still hands its connections round.
pub const DEFAULT_REQUEST_DB_TIMEOUT: Duration = Duration::from_millis(1500);

/// Runs blocking database work off the async executor, with a pooled connection.
pub trait RunBlocking {
    fn run<T, F>(&self, work: F) -> impl std::future::Future<Output = Result<T, ApiError>>
    where
        T: Send + 'static,
        F: FnOnce(&mut rekisteri_db::DbConnection, &AppState) -> Result<T, ApiError> + Send + 'static;
}

impl RunBlocking for web::Data<AppState> {
    async fn run<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut rekisteri_db::DbConnection, &AppState) -> Result<T, ApiError> + Send + 'static,
    {
        self.blocking_calls.inc();
        let state = self.clone();
        // A request holding an Idempotency-Key claim: its writes commit only with the claim.
        let check = idempotency::CLAIM.try_with(Clone::clone).ok();
        web::block(move || {
            let mut conn = state.pool.get_timeout(state.request_db_timeout)?;
            // A change's log entries on PostgreSQL commit into the outbox with it and are chained
            // here, before anyone is answered (rekisteri_audit::outbox).
            let (result, staged) = rekisteri_audit::outbox::staging(|| {
                rekisteri_db::group_commit::grouped(&state.writes, || match check {
                    Some(check) => rekisteri_db::checked(check, || work(&mut conn, &state)),
                    None => work(&mut conn, &state),
                })
            });
            drop(conn);
            if staged.is_empty() {
                return result;
            }
            let chained = state.audit.chain_staged(staged);
            let value = result?;
            chained?;
            Ok(value)
        })
        .await?
    }
}

/// Adds the bearer security scheme and makes it the default for every operation; public
/// operations opt out with `security(())`.
struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ClientCredentials, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Scopes, SecurityRequirement, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session token from POST /v1/auth/login, or a JWT of a trusted identity provider \
                         (citizens; staff with strong authentication)",
                    ))
                    .build(),
            ),
        );
        let scopes = Scopes::from_iter(
            rekisteri_accounts::api_clients::SCOPES
                .iter()
                .map(|(name, _)| (*name, "see docs/permissions.md")),
        );
        components.add_security_scheme(
            "api_client",
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::ClientCredentials(ClientCredentials::new(
                    "/v1/auth/token",
                    scopes,
                ))],
                "API clients (other systems). Name the end user acted for in X-On-Behalf-Of (an account id of \
                 the client's organisation): the call then has the intersection of the client's scopes and the \
                 user's rights. Where a registrar requires strong authentication, send the user's own staff \
                 identity-provider token in X-On-Behalf-Of-Token unless an admin attested the client \
                 (PUT /v1/api-clients/{id}/strong-user-authentication). See docs/permissions.md.",
            )),
        );
        openapi.security = Some(vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("api_client", Vec::<String>::new()),
        ]);
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rekisteri API",
        description = "Personal-data registers of Finnish municipalities and wellbeing services \
counties behind one REST API. Every error is `application/problem+json` (RFC 9457); every \
response carries `X-Request-Id`. Identity codes never appear in URLs: searches by identity code \
are POSTs with the code in the body.",
        license(name = "EUPL-1.2", identifier = "EUPL-1.2")
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&SecurityAddon),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "auth", description = "Logging in and out, invitations"),
        (name = "accounts", description = "Organisations, service units and user accounts (AC)"),
        (name = "clients", description = "The client register of service vouchers and purchased services (CL)"),
        (name = "audit", description = "Usage and disclosure logs, security events, chain verification (AU)"),
        (name = "me", description = "A citizen's own records and their proxies' (CL-9, CL-10)"),
        (name = "consent", description = "Kanta informing, disclosure consent and prohibitions, registry use rights and case documents (CO, RU)"),
        (name = "vtj", description = "Population register (VTJ) change ingestion (VT)"),
        (name = "calls", description = "The register of call and contact recordings: queues, contacts, listening by reason, processing memos, legal hold, reports (CA)"),
    )
)]
struct ApiDoc;

/// Every module registers its own routes and OpenAPI paths here. The client register comes
/// first: actix tries the routes in the order they were registered, with a regular expression
/// for each templated one, and the audited reads and the pushes are its routes (PL-12). The
/// order picks no other handler: no two operations of one method share a path (test
/// `pl_12_no_two_operations_of_one_method_match_one_path`).
fn configure(config: &mut ServiceConfig) {
    clients::configure(config);
    health::configure(config);
    metrics::configure(config);
    auth::configure(config);
    api_clients::configure(config);
    organisations::configure(config);
    accounts::configure(config);
    audit::configure(config);
    service_areas::configure(config);
    client_relations::configure(config);
    own_records::configure(config);
    lifecycle::configure(config);
    data_subject_requests::configure(config);
    consent::configure(config);
    vtj::configure(config);
    calls::configure(config);
}

/// The OpenAPI 3.1 document of the routes the service registers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let doc = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(configure)
        .split_for_parts()
        .1;
    document(doc)
}

/// What the modules' document-wide modifiers add to the generated document; the route table
/// (public operations, media types) is read from the result.
fn document(doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    contract::document(fallback::document(extract::document(idempotency::document(doc))))
}

/// Routes served outside the OpenAPI document.
const UNDOCUMENTED_ROUTES: &[(&str, Method)] = &[
    ("/openapi.json", Method::GET),
    ("/docs", Method::GET),
    ("/docs/{_:.*}", Method::GET),
];

/// The application with every route, the error handling and the request middleware.
pub fn app(
    state: web::Data<AppState>,
    body_limit: BodyLimit,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    // The document is generated as the routes are registered; each worker registers them again,
    // and drops its document at once: the route table is built once per process.
    let app = App::new().into_utoipa_app().configure(configure).into_app();
    app.app_data(state)
        .app_data(body_limit)
        .app_data(extract::path_config())
        .app_data(extract::query_config())
        .app_data(web::Data::from(Arc::clone(&ROUTES)))
        .route("/openapi.json", web::get().to(docs::openapi_json))
        .route("/docs", web::get().to(docs::redirect))
        .route("/docs/{_:.*}", web::get().to(docs::serve_file))
        .default_service(web::to(fallback::fallback))
        // Inside the request middleware: runs after authentication (PL-2).
        .wrap(actix_web::middleware::from_fn(idempotency::layer))
        .wrap(actix_web::middleware::from_fn(middleware::request_context))
}

/// The routes, which operations are public and what they answer in, read from the document.
static ROUTES: LazyLock<Arc<fallback::RouteTable>> =
    LazyLock::new(|| Arc::new(fallback::RouteTable::from_openapi(&openapi(), UNDOCUMENTED_ROUTES)));

/// How the HTTP server runs.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub workers: usize,
    /// Threads for blocking database work, over all workers. More threads than pooled
    /// connections only queue on the pool's lock, so the pool's size is the natural figure.
    pub blocking_threads: usize,
    pub body_limit: usize,
    /// How long in-flight requests may take to finish after SIGTERM (PL-11).
    pub shutdown_timeout: Duration,
    /// Off for servers embedded in tests, which are stopped through their handle.
    pub handle_signals: bool,
}

/// Starts serving on `listener`; the returned future runs until shutdown.
pub fn server(state: AppState, settings: &ServerSettings, listener: TcpListener) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let limit = BodyLimit(settings.body_limit);
    let workers = settings.workers.max(1);
    let mut server = HttpServer::new(move || app(state.clone(), limit))
        .workers(workers)
        .worker_max_blocking_threads(settings.blocking_threads.div_ceil(workers).max(1))
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        .listen(listener)?;
    if !settings.handle_signals {
        server = server.disable_signals();
    }
    Ok(server.run())
}

#[cfg(test)]
mod tests {
    #[test]
    fn pl_1_committed_openapi_document_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../api-spec/openapi.json");
        let committed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let generated = serde_json::to_value(super::openapi()).unwrap();
        assert!(
            committed == generated,
            "api-spec/openapi.json differs from the code: run `make openapi`"
        );
        assert_eq!(generated["openapi"], "3.1.0");
    }

    #[test]
    fn pl_1_every_operation_has_its_own_operation_id() {
        // Generators name a client's methods after operationId: a repeated one silently drops
        // all but one of the operations that share it.
        let doc = serde_json::to_value(super::openapi()).unwrap();
        let mut seen = std::collections::BTreeMap::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let id = operation["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
                if let Some(first) = seen.insert(id.to_owned(), format!("{method} {path}")) {
                    panic!("operationId {id} of {method} {path} is also that of {first}");
                }
            }
        }
    }

    #[test]
    fn pl_1_every_time_is_documented_as_a_date_time() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
            let Some(properties) = schema["properties"].as_object() else {
                continue;
            };
            for (property, definition) in properties {
                if property.ends_with("_at") {
                    assert_eq!(definition["format"], "date-time", "{name}.{property}");
                }
            }
        }
    }

    #[test]
    fn pl_3_every_operation_with_a_json_body_documents_413_and_415() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        let mut bodies = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                if operation["requestBody"]["content"]["application/json"].is_null() {
                    continue;
                }
                bodies += 1;
                for status in ["413", "415"] {
                    assert!(
                        operation["responses"][status]["content"]["application/problem+json"].is_object(),
                        "{method} {path} does not document {status}"
                    );
                }
            }
        }
        assert!(bodies > 40, "{bodies}");
    }

    #[test]
    fn pl_1_every_operation_documents_its_errors_as_problems() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = operation["responses"].as_object().unwrap();
                assert!(!responses.is_empty(), "{method} {path} documents no responses");
                for (status, response) in responses {
                    // The token endpoint answers errors as RFC 6749 §5.2 requires; RFC 6749 has
                    // no error for an outage, which is the platform's 503 problem there too.
                    if path == "/v1/auth/token" && status != "503" {
                        assert!(response["content"]["application/problem+json"].is_null());
                        continue;
                    }
                    if status.starts_with('4') || status.starts_with('5') {
                        assert!(
                            response["content"]["application/problem+json"].is_object(),
                            "{method} {path} {status} is not documented as a problem"
                        );
                    }
                }
            }
        }
    }

    /// Every operation of the document with its path and method.
    fn operations(doc: &serde_json::Value) -> Vec<(String, String, serde_json::Value)> {
        let mut all = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                all.push((path.clone(), method.clone(), operation.clone()));
            }
        }
        all
    }

    fn header<'a>(operation: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
        operation["parameters"]
            .as_array()?
            .iter()
            .find(|p| p["in"] == "header" && p["name"] == name)
    }

    const PUBLIC_OPERATIONS: &[(&str, &str)] = &[
        ("get", "/health/live"),
        ("get", "/health/ready"),
        ("post", "/v1/auth/login"),
        ("post", "/v1/auth/invitations/accept"),
        ("post", "/v1/auth/token"),
    ];

    #[test]
    fn pl_1_public_operations_are_typed_as_needing_no_token() {
        // `security: []` overrides the document's default: a generated client calls them without
        // a token. Every other operation inherits the default (bearer or API client).
        let doc = serde_json::to_value(super::openapi()).unwrap();
        assert!(!doc["security"].as_array().unwrap().is_empty());
        let table = super::fallback::RouteTable::from_openapi(&super::openapi(), &[]);
        for (path, method, operation) in operations(&doc) {
            let public = PUBLIC_OPERATIONS.contains(&(method.as_str(), path.as_str()));
            let concrete = path.replace('{', "x").replace('}', "");
            let access = table.access(&method.to_uppercase().parse().unwrap(), &concrete);
            if public {
                assert_eq!(operation["security"], serde_json::json!([]), "{method} {path}");
                assert_eq!(access, super::fallback::Access::Public, "{method} {path}");
            } else {
                assert!(
                    operation.get("security").is_none(),
                    "{method} {path} overrides security"
                );
                assert_eq!(access, super::fallback::Access::Authenticated, "{method} {path}");
            }
        }
    }

    #[test]
    fn pl_1_every_operation_declares_the_request_headers_the_server_honours() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        let mut creating = 0;
        for (path, method, operation) in operations(&doc) {
            let request_id = header(&operation, "X-Request-Id").unwrap_or_else(|| panic!("{method} {path}"));
            // Any value is taken (one that is not kept is replaced), so the schema has no pattern.
            assert_eq!(
                request_id["schema"],
                serde_json::json!({"type": "string"}),
                "{method} {path}"
            );
            let public = operation["security"] == serde_json::json!([]);
            for name in ["X-On-Behalf-Of", "X-On-Behalf-Of-Token"] {
                assert_eq!(header(&operation, name).is_some(), !public, "{name} on {method} {path}");
            }
            if let Some(on_behalf_of) = header(&operation, "X-On-Behalf-Of") {
                assert!(
                    on_behalf_of["description"]
                        .as_str()
                        .unwrap()
                        .contains("account id (a UUID)"),
                    "{method} {path}"
                );
                assert_eq!(on_behalf_of["schema"]["format"], "uuid", "{method} {path}");
            }
            // The middleware keeps and replays the 201s of authenticated POSTs; public ones have
            // no caller to keep a key for, and a POST answering anything else leaves no trace.
            let creates = method == "post" && operation["responses"]["201"].is_object();
            creating += usize::from(creates);
            assert_eq!(
                header(&operation, "Idempotency-Key").is_some(),
                creates && !public,
                "Idempotency-Key on {method} {path}"
            );
        }
        assert!(creating >= 26, "{creating}");
    }

    #[test]
    fn pl_1_every_response_declares_its_request_id() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        for (path, method, operation) in operations(&doc) {
            for (status, response) in operation["responses"].as_object().unwrap() {
                assert!(
                    response["headers"]["X-Request-Id"]["schema"].is_object(),
                    "{method} {path} {status}"
                );
            }
        }
    }

    fn is_id_name(name: &str) -> bool {
        matches!(name, "id" | "rid" | "pid" | "sid") || name.ends_with("_id") || name.ends_with("_ids")
    }

    /// Whether an id-named thing is documented as a UUID, or is one of the known exceptions.
    fn check_id(place: &str, schema_name: &str, name: &str, definition: &serde_json::Value) {
        let description = definition["description"].as_str().unwrap_or("");
        let exception = description.contains("OID")
            || super::contract::NOT_UUID
                .iter()
                .any(|(s, n, _)| *n == name && (s.is_empty() || *s == schema_name));
        let schema = if definition["schema"].is_object() {
            &definition["schema"]
        } else {
            definition
        };
        let schema = if schema["type"] == "array" {
            &schema["items"]
        } else {
            schema
        };
        if schema["$ref"].is_string() {
            return;
        }
        if exception {
            assert!(
                schema["format"] != "uuid",
                "{place} is declared a UUID but takes other values"
            );
        } else {
            assert_eq!(schema["format"], "uuid", "{place}");
        }
    }

    fn check_properties(place: &str, schema_name: &str, schema: &serde_json::Value, checked: &mut usize) {
        if let Some(properties) = schema["properties"].as_object() {
            for (name, definition) in properties {
                if is_id_name(name) {
                    *checked += 1;
                    check_id(&format!("{place}.{name}"), schema_name, name, definition);
                }
                check_properties(&format!("{place}.{name}"), schema_name, definition, checked);
            }
        }
        for key in ["items", "additionalProperties"] {
            if schema[key].is_object() {
                check_properties(place, schema_name, &schema[key], checked);
            }
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            for inner in schema[key].as_array().into_iter().flatten() {
                check_properties(place, schema_name, inner, checked);
            }
        }
    }

    #[test]
    fn pl_1_ids_are_documented_as_uuids_where_only_a_uuid_is_taken() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        let mut checked = 0;
        for (path, method, operation) in operations(&doc) {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                if parameter["in"] != "header" && is_id_name(name) {
                    checked += 1;
                    check_id(&format!("{method} {path} {name}"), "", name, parameter);
                }
            }
        }
        for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
            check_properties(name, name, schema, &mut checked);
        }
        assert!(checked > 200, "{checked}");
        // What the server takes besides a UUID stays a plain string, said in the description.
        let parameter = |method: &str, path: &str, name: &str| {
            doc["paths"][path][method]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap()
                .clone()
        };
        assert_eq!(
            parameter("get", "/v1/registrars/{rid}/clients/{id}", "rid")["schema"]["format"],
            "uuid"
        );
        assert_eq!(
            parameter("get", "/v1/registrars/{rid}/clients/{id}", "id")["schema"]["format"],
            "uuid"
        );
        assert!(parameter("get", "/v1/registrars/{rid}/service-areas", "rid")["schema"]["format"].is_null());
        assert!(parameter("get", "/v1/organisations/{oid}", "oid")["schema"]["format"].is_null());
        let schemas = &doc["components"]["schemas"];
        assert!(schemas["NewService"]["properties"]["provider_id"]["format"].is_null());
        assert_eq!(schemas["Service"]["properties"]["provider_id"]["format"], "uuid");
        assert_eq!(
            schemas["AccountBody"]["properties"]["service_unit_ids"]["items"]["format"],
            "uuid"
        );
    }

    #[test]
    fn pl_1_every_operation_has_a_one_line_summary() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        for (path, method, operation) in operations(&doc) {
            let summary = operation["summary"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}"));
            assert!(
                !summary.is_empty()
                    && !summary.contains('\n')
                    && !summary.ends_with('.')
                    && summary.chars().count() <= super::contract::SUMMARY_MAX,
                "{method} {path}: {summary:?}"
            );
        }
        // The rest of a doc comment is kept in the description.
        let vtj = &doc["paths"]["/v1/registrars/{rid}/vtj/changes"]["post"];
        assert_eq!(
            vtj["summary"],
            "Pushes a batch of changes in the interface's own format"
        );
        assert!(vtj["description"].as_str().unwrap().contains("VT-3"));
    }

    #[test]
    fn pl_1_document_names_its_server_and_the_audit_export_media_type() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        assert_eq!(doc["servers"][0]["url"], "/");
        let export = &doc["paths"]["/v1/registrars/{rid}/audit/export"]["get"]["responses"]["200"];
        let content = export["content"].as_object().unwrap();
        assert_eq!(content.keys().collect::<Vec<_>>(), ["application/jsonl"]);
        assert!(
            export["description"]
                .as_str()
                .unwrap()
                .contains("one log entry per line")
        );
    }
}
