//! Around a client (CL-7, CL-12, AX-5): proxies, the care team of the case and the
//! right-of-access document. The rules live in the clients crate; every read writes the usage
//! log there, and a client the caller may not see answers 404 like a missing one.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use rekisteri_clients::{CareTeamMember, CareTeamMemberChanges, NewCareTeamMember, NewProxy, Proxy};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::extract::Json;
use crate::idempotency::disclosing;
use crate::principal::{Authenticated, Authenticating};
use crate::problem::{ApiError, Problem, ProcessingRestricted};
use crate::request::{ClientAccess, if_match, registrar_call, request};
use crate::{AppState, RunBlocking};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_proxies)
        .service(add_proxy)
        .service(revoke_proxy)
        .service(list_care_team)
        .service(add_care_team_member)
        .service(update_care_team_member)
        .service(remove_care_team_member)
        .service(access_report);
}

#[derive(Serialize, ToSchema)]
pub struct ProxyList {
    pub items: Vec<Proxy>,
}

/// The client's proxies (CL-7), standing and revoked. The registrar's staff only; a provider
/// that sees the client gets 403.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = ProxyList),
        ProcessingRestricted,
    )
)]
#[get("/v1/registrars/{rid}/clients/{id}/proxies")]
async fn list_proxies(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let items = registrar_call(state, principal, access, rid)
        .run("client register: read proxies", move |conn, state, request, rid| {
            rekisteri_clients::list_proxies(conn, &state.clients(), request, rid, &id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ProxyList { items }))
}

/// Record a person authorised to act for the client (CL-7): 409 when the person already holds
/// a standing authorisation for the client, 422 when it is the client themselves.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    request_body = NewProxy,
    responses(
        (status = 201, body = Proxy),
        (status = 409, description = "A standing authorisation exists, or processing is restricted", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The client is not their own proxy", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/clients/{id}/proxies")]
async fn add_proxy(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
    body: Json<NewProxy>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let new = body.into_inner();
    let (proxy, disclosure) = registrar_call(state, principal, access, rid)
        .create("client register: add proxy", move |conn, state, request, rid| {
            rekisteri_clients::add_proxy(conn, &state.clients(), request, rid, &id, new)
        })
        .await?;
    Ok(disclosing(HttpResponse::Created().json(proxy), disclosure))
}

/// Revoke a proxy authorisation; the revoked proxy stays listed with `revoked_at`. Revoking
/// twice changes nothing.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id"),
        ("pid" = String, Path, description = "Proxy id")),
    responses(
        (status = 204, description = "Revoked"),
        ProcessingRestricted,
    )
)]
#[delete("/v1/registrars/{rid}/clients/{id}/proxies/{pid}")]
async fn revoke_proxy(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id, pid) = path.into_inner();
    registrar_call(state, principal, access, rid)
        .run("client register: revoke proxy", move |conn, state, request, rid| {
            rekisteri_clients::revoke_proxy(conn, &state.clients(), request, rid, &id, &pid)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct CareTeam {
    pub items: Vec<CareTeamMember>,
}

/// The care team of the client's case (AX-5), ended memberships included.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = CareTeam),
        ProcessingRestricted,
    )
)]
#[get("/v1/registrars/{rid}/clients/{id}/care-team")]
async fn list_care_team(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let items = registrar_call(state, principal, access, rid)
        .run("client register: read care team", move |conn, state, request, rid| {
            rekisteri_clients::list_care_team(conn, &state.clients(), request, rid, &id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(CareTeam { items }))
}

/// Add a professional to the care team of the client's case (AX-5). The account belongs to
/// the registrar or to a provider of one of the client's services; the service unit to the
/// account's organisation. The registrar's staff with `write_clients` keep the team.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    request_body = NewCareTeamMember,
    responses(
        (status = 201, body = CareTeamMember, headers(("ETag" = String, description = "The membership's version"))),
        ProcessingRestricted,
    )
)]
#[post("/v1/registrars/{rid}/clients/{id}/care-team")]
async fn add_care_team_member(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
    body: Json<NewCareTeamMember>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let new = body.into_inner();
    let (member, disclosure) = registrar_call(state, principal, access, rid)
        .create(
            "client register: add care team member",
            move |conn, state, request, rid| {
                rekisteri_clients::add_care_team_member(conn, &state.clients(), request, rid, &id, new)
            },
        )
        .await?;
    let response = HttpResponse::Created()
        .insert_header((header::ETAG, format!("\"{}\"", member.version)))
        .json(member);
    Ok(disclosing(response, disclosure))
}

/// Change a membership's role or dates (end it with `valid_until`); send its `ETag` as
/// `If-Match` (412 when stale, 428 without it).
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id"),
        ("member_id" = String, Path, description = "Care-team membership id"),
        ("If-Match" = String, Header, description = "The membership's ETag as read")),
    request_body = CareTeamMemberChanges,
    responses(
        (status = 200, body = CareTeamMember, headers(("ETag" = String, description = "The new version"))),
        ProcessingRestricted,
    )
)]
#[patch("/v1/registrars/{rid}/clients/{id}/care-team/{member_id}")]
async fn update_care_team_member(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    http: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: Json<CareTeamMemberChanges>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id, member_id) = path.into_inner();
    let expected = if_match(&http)?;
    let changes = body.into_inner();
    let member = registrar_call(state, principal, access, rid)
        .run("client register: change care team", move |conn, state, request, rid| {
            rekisteri_clients::update_care_team_member(
                conn,
                &state.clients(),
                request,
                rid,
                &id,
                &member_id,
                expected,
                changes,
            )
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, format!("\"{}\"", member.version)))
        .json(member))
}

/// Remove a professional from the care team; the change history keeps the membership.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id"),
        ("member_id" = String, Path, description = "Care-team membership id")),
    responses(
        (status = 204, description = "Removed"),
        ProcessingRestricted,
    )
)]
#[delete("/v1/registrars/{rid}/clients/{id}/care-team/{member_id}")]
async fn remove_care_team_member(
    state: web::Data<AppState>,
    principal: Authenticated,
    access: ClientAccess,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id, member_id) = path.into_inner();
    registrar_call(state, principal, access, rid)
        .run("client register: change care team", move |conn, state, request, rid| {
            rekisteri_clients::remove_care_team_member(conn, &state.clients(), request, rid, &id, &member_id)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The right-of-access document: the client register's sections, its consent and registry use
/// rights, and the registrar's other register that names the person: the contacts of the call
/// register found by the client's identity code or phone number (CA-14).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AccessDocument {
    #[serde(flatten)]
    pub client_register: rekisteri_clients::AccessReport,
    #[serde(flatten)]
    pub consent: rekisteri_consent::ConsentSections,
    /// The person's calls, callbacks and voicemails in the register of call and contact
    /// recordings (without audio: listening has its own procedure, CA-5).
    pub contacts: Vec<rekisteri_calls::Contact>,
}

/// The right-of-access document (CL-12): everything the registrar's registers hold about the
/// client, in one JSON document, for the registrar's data-protection officer
/// (`handle_data_subject_requests`). Producing it writes a disclosure-log entry; it works during
/// a restriction.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = AccessDocument),
    )
)]
#[get("/v1/registrars/{rid}/clients/{id}/access-report")]
async fn access_report(
    state: web::Data<AppState>,
    principal: Authenticated,
    access: ClientAccess,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let report = state
        .run(move |conn, state| {
            let request = request(state, &principal.0, &rid, "right of access", &access);
            let (report, consent) = rekisteri_consent::access_document(conn, &state.consent(), &request, &rid, &id)?;
            let code = report.client.identity_code.as_deref().and_then(|code| {
                rekisteri_core::PersonalIdentityCode::parse(code, rekisteri_core::TemporaryCodesAllowed::Yes).ok()
            });
            let calls_request = crate::calls::request(state, &principal.0, &rid, "right of access", &access.request_id);
            let contacts = rekisteri_calls::contacts_of_person(
                conn,
                &state.calls(),
                &calls_request,
                &rid,
                code.as_ref(),
                report.client.phone.as_deref(),
            )?;
            Ok(AccessDocument {
                client_register: report,
                consent,
                contacts,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(report))
}
