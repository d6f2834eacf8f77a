//! The client register over HTTP (CL): clients with their services, service events and
//! settlement. Every read writes the usage log through the clients crate; a client the caller
//! may not see answers 404 like a missing one (AX-4).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use rekisteri_clients::{
    Client, ClientChanges, ClientRegister, NewClient, NewService, NewServiceEvent, Service, ServiceChanges,
    ServiceEvent, Settlement,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::extract::Json;
use crate::idempotency::disclosing;
use crate::principal::{Authenticated, Authenticating};
use crate::problem::{ApiError, Problem};
use crate::request::{ClientAccess, decode_cursor, if_match, page_limit, registrar_call};
use crate::{AppState, RunBlocking};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_clients)
        .service(create_client)
        .service(search)
        .service(show_client)
        .service(update_client)
        .service(list_services)
        .service(add_service)
        .service(show_service)
        .service(update_service)
        .service(list_events)
        .service(record_event)
        .service(settlement)
        .service(provider_users);
}

impl AppState {
    /// The client register's handle (cheap: shared pointers).
    pub fn clients(&self) -> ClientRegister {
        ClientRegister {
            keyring: self.keyring.clone(),
            audit: self.audit.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ClientList {
    pub items: Vec<Client>,
    /// Present when more clients follow: pass it as `cursor`.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchResult {
    /// The client with the code, when the caller may see them; otherwise empty.
    pub items: Vec<Client>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1–500, default 100.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// The clients the caller reaches, in a stable order, a page at a time. Each listed client is a
/// logged use.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), PageQuery),
    responses(
        (status = 200, body = ClientList),
        (status = 403, description = "No right to read clients, or strong authentication required", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/registrars/{rid}/clients")]
async fn list_clients(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let query = query.into_inner();
    let limit = page_limit(query.limit)?;
    let after = decode_cursor(query.cursor.as_deref())?;
    let page = registrar_call(state, principal, access, rid)
        .run("client register: list clients", move |conn, state, request, rid| {
            rekisteri_clients::list_clients(conn, &state.clients(), request, rid, after.as_deref(), limit)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ClientList {
        items: page.items,
        next_cursor: page.next_cursor.map(crate::request::encode_cursor),
    }))
}

/// Create a client together with the first granted services (CL-1). 409 when the register has
/// a client with the identity code; the code is never echoed in an error.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    request_body = NewClient,
    responses(
        (status = 201, body = Client, headers(("Location" = String, description = "The client's URL"), ("ETag" = String, description = "The client's version"))),
        (status = 409, description = "A client with this identity code exists", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/clients")]
async fn create_client(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<String>,
    body: Json<NewClient>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let new = body.into_inner();
    let (client, disclosure) = registrar_call(state, principal, access, rid)
        .create("client register: create client", move |conn, state, request, rid| {
            rekisteri_clients::create_client(conn, &state.clients(), request, rid, new)
        })
        .await?;
    let response = HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/v1/registrars/{}/clients/{}", client.registrar_id, client.id),
        ))
        .insert_header((header::ETAG, format!("\"{}\"", client.version)))
        .json(client);
    Ok(disclosing(response, disclosure))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityCodeSearch {
    /// Never echoed back in errors or logs. Only the canonical form is accepted (CL-2): upper case, no surrounding whitespace.
    #[schema(example = "131052-308T")]
    pub identity_code: String,
}

/// Find a client by identity code (the code in the body, never in a URL). Every search is logged
/// with the person's index, whether or not anyone is found (CL-11).
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    request_body = IdentityCodeSearch,
    responses(
        (status = 200, body = SearchResult),
    )
)]
#[post("/v1/registrars/{rid}/clients/search")]
async fn search(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<String>,
    body: Json<IdentityCodeSearch>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let code = body.into_inner().identity_code;
    let items = registrar_call(state, principal, access, rid)
        .run(
            "client register: search by identity code",
            move |conn, state, request, rid| {
                rekisteri_clients::search_by_identity_code(conn, &state.clients(), request, rid, &code)
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(SearchResult { items }))
}

/// One client with the services the caller may see (CL-9).
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = Client, headers(("ETag" = String, description = "The client's version"))),
    )
)]
#[get("/v1/registrars/{rid}/clients/{id}")]
async fn show_client(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let client = registrar_call(state, principal, access, rid)
        .run("client register: read client", move |conn, state, request, rid| {
            rekisteri_clients::get_client(conn, &state.clients(), request, rid, &id)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, format!("\"{}\"", client.version)))
        .json(client))
}

#[derive(Serialize, ToSchema)]
pub struct ServiceList {
    pub items: Vec<Service>,
}

/// The client's services the caller may see.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = ServiceList),
    )
)]
#[get("/v1/registrars/{rid}/clients/{id}/services")]
async fn list_services(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let items = registrar_call(state, principal, access, rid)
        .run("client register: read services", move |conn, state, request, rid| {
            rekisteri_clients::list_services(conn, &state.clients(), request, rid, &id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ServiceList { items }))
}

/// Grant the client another service (CL-4).
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    request_body = NewService,
    responses(
        (status = 201, body = Service),
    )
)]
#[post("/v1/registrars/{rid}/clients/{id}/services")]
async fn add_service(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
    body: Json<NewService>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let new = body.into_inner();
    let (service, disclosure) = registrar_call(state, principal, access, rid)
        .create("client register: grant service", move |conn, state, request, rid| {
            rekisteri_clients::add_service(conn, &state.clients(), request, rid, &id, new)
        })
        .await?;
    Ok(disclosing(HttpResponse::Created().json(service), disclosure))
}

/// One service.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("sid" = String, Path, description = "Service id")),
    responses(
        (status = 200, body = Service),
    )
)]
#[get("/v1/registrars/{rid}/services/{sid}")]
async fn show_service(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, sid) = path.into_inner();
    let service = registrar_call(state, principal, access, rid)
        .run("client register: read service", move |conn, state, request, rid| {
            rekisteri_clients::get_service(conn, &state.clients(), request, rid, &sid)
        })
        .await?;
    Ok(HttpResponse::Ok().json(service))
}

/// Change a service; close it with `{"status": "closed", "closed_on": "2026-12-31"}`.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("sid" = String, Path, description = "Service id")),
    request_body = ServiceChanges,
    responses(
        (status = 200, body = Service),
        (status = 409, description = "The service is already closed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The new quantity is below what was delivered", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/registrars/{rid}/services/{sid}")]
async fn update_service(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
    body: Json<ServiceChanges>,
) -> Result<HttpResponse, ApiError> {
    let (rid, sid) = path.into_inner();
    let changes = body.into_inner();
    let service = registrar_call(state, principal, access, rid)
        .run("client register: change service", move |conn, state, request, rid| {
            rekisteri_clients::update_service(conn, &state.clients(), request, rid, &sid, changes)
        })
        .await?;
    Ok(HttpResponse::Ok().json(service))
}

#[derive(Serialize, ToSchema)]
pub struct ServiceEventList {
    pub items: Vec<ServiceEvent>,
}

/// The service's recorded events, in delivery order.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("sid" = String, Path, description = "Service id")),
    responses(
        (status = 200, body = ServiceEventList),
    )
)]
#[get("/v1/registrars/{rid}/services/{sid}/events")]
async fn list_events(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, sid) = path.into_inner();
    let items = registrar_call(state, principal, access, rid)
        .run(
            "client register: read service events",
            move |conn, state, request, rid| rekisteri_clients::list_events(conn, &state.clients(), request, rid, &sid),
        )
        .await?;
    Ok(HttpResponse::Ok().json(ServiceEventList { items }))
}

/// The provider records a delivered service (CL-5): refused with 422 outside the service's
/// validity, beyond the granted quantity, or by anyone but the service's provider.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("sid" = String, Path, description = "Service id")),
    request_body = NewServiceEvent,
    responses(
        (status = 201, body = ServiceEvent),
        (status = 422, description = "Past the validity, over the granted quantity, or not the service's provider", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/services/{sid}/events")]
async fn record_event(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
    body: Json<NewServiceEvent>,
) -> Result<HttpResponse, ApiError> {
    let (rid, sid) = path.into_inner();
    let new = body.into_inner();
    let (event, disclosure) = registrar_call(state, principal, access, rid)
        .create(
            "client register: record service event",
            move |conn, state, request, rid| {
                rekisteri_clients::record_event(conn, &state.clients(), request, rid, &sid, new)
            },
        )
        .await?;
    Ok(disclosing(HttpResponse::Created().json(event), disclosure))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SettlementQuery {
    /// The provider organisation's OID or id.
    provider: String,
    /// `YYYY-MM`.
    #[param(value_type = crate::contract::Month, inline)]
    month: String,
}

/// A provider's settlement for a month (CL-6): JSON, or CSV with `Accept: text/csv`. Amounts are
/// integer cents.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), SettlementQuery),
    responses(
        (status = 200, body = Settlement, content_type = "application/json"),
        (status = 200, body = String, content_type = "text/csv", description = "One row per client and service, then the total"),
        (status = 422, description = "`provider` is no provider organisation (`business-rule`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/registrars/{rid}/settlements")]
async fn settlement(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    http: HttpRequest,
    path: web::Path<String>,
    query: web::Query<SettlementQuery>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let SettlementQuery { provider, month } = query.into_inner();
    let csv = http
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    let settlement = registrar_call(state, principal, access, rid)
        .run("client register: settlement", move |conn, state, request, rid| {
            rekisteri_clients::settlement(conn, &state.clients(), request, rid, &provider, &month)
        })
        .await?;
    if csv {
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .body(rekisteri_clients::settlement_csv(&settlement)));
    }
    Ok(HttpResponse::Ok().json(settlement))
}

#[derive(Serialize, ToSchema)]
pub struct ProviderUserBody {
    pub provider_id: String,
    pub provider_name: String,
    pub account_id: String,
    pub first_name: String,
    pub surname: String,
    /// `invited`, `active` or `closed`.
    pub status: String,
    /// Every role grant with its validity, ended ones included.
    pub roles: Vec<crate::accounts::RoleBody>,
    pub service_unit_ids: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ProviderUserList {
    pub items: Vec<ProviderUserBody>,
}

/// The users of the providers working in the registrar's register, with their rights and
/// validity (AC-11): for the registrar's main users and auditors, and admins. E-mail addresses
/// stay with the provider (AC-9).
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    responses(
        (status = 200, body = ProviderUserList),
    )
)]
#[get("/v1/registrars/{rid}/provider-users")]
async fn provider_users(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let users = state
        .run(move |conn, state| {
            Ok(rekisteri_clients::provider_users(
                conn,
                &state.register(),
                &principal.0,
                &rid,
            )?)
        })
        .await?;
    let items = users
        .into_iter()
        .map(|u| {
            let account = crate::accounts::AccountBody::from(u.account);
            ProviderUserBody {
                provider_id: u.provider_id,
                provider_name: u.provider_name,
                account_id: account.id,
                first_name: account.first_name,
                surname: account.surname,
                status: account.status,
                roles: account.roles,
                service_unit_ids: account.service_unit_ids,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(ProviderUserList { items }))
}

/// Change a client; send the `ETag` of the version read as `If-Match` (412 when it is stale,
/// 428 without it). Absent fields stay as they are.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id"),
        ("If-Match" = String, Header, description = "The client's ETag as read")),
    request_body = ClientChanges,
    responses(
        (status = 200, body = Client, headers(("ETag" = String, description = "The new version"))),
        (status = 412, description = "The client changed since it was read", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/registrars/{rid}/clients/{id}")]
async fn update_client(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    http: HttpRequest,
    path: web::Path<(String, String)>,
    body: Json<ClientChanges>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let version = if_match(&http)?;
    let changes = body.into_inner();
    let client = registrar_call(state, principal, access, rid)
        .run("client register: change client", move |conn, state, request, rid| {
            rekisteri_clients::update_client(conn, &state.clients(), request, rid, &id, version, changes)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, format!("\"{}\"", client.version)))
        .json(client))
}
