//! Kanta informing, disclosure consent and prohibitions, and the disclosure decision (CO-1..CO-5).

use actix_web::{HttpResponse, get, post, put, web};
use rekisteri_consent::decision::ConsentState;
use rekisteri_consent::{
    ConsentView, DecisionRequest, DecisionResponse, Informing, NewInforming, NewProhibition, Prohibition,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::Json;
use crate::idempotency::disclosing;
use crate::principal::Authenticating;
use crate::problem::{ApiError, Problem};
use crate::request::{ClientAccess, registrar_call};

#[derive(Serialize, ToSchema)]
pub struct InformingList {
    pub items: Vec<Informing>,
}

#[derive(Serialize, ToSchema)]
pub struct ProhibitionList {
    pub items: Vec<Prohibition>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    /// `positive`, `negative` or `revoked`.
    #[schema(value_type = String, pattern = "^(positive|negative|revoked)$")]
    pub state: ConsentState,
}

/// The client's Kanta informing records (CO-1); a logged use.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = InformingList),
    )
)]
#[get("/v1/registrars/{rid}/clients/{id}/kanta-informing")]
pub(super) async fn list_informings(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let items = registrar_call(state, principal, access, rid)
        .run("kanta: read informing", move |conn, state, request, rid| {
            rekisteri_consent::list_informings(conn, &state.consent(), request, rid, &id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(InformingList { items }))
}

/// Record that the client was informed about Kanta storage (CO-1): `method` is `in_person` or
/// `omakanta_receipt`. Consent and prohibitions are refused before it.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    request_body = NewInforming,
    responses(
        (status = 201, body = Informing),
    )
)]
#[post("/v1/registrars/{rid}/clients/{id}/kanta-informing")]
pub(super) async fn record_informing(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
    body: Json<NewInforming>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let new = body.into_inner();
    let (created, disclosure) = registrar_call(state, principal, access, rid)
        .create("kanta: record informing", move |conn, state, request, rid| {
            rekisteri_consent::record_informing(conn, &state.consent(), request, rid, &id, new)
        })
        .await?;
    Ok(disclosing(HttpResponse::Created().json(created), disclosure))
}

/// The client's disclosure consent (CO-2): the current state (the newest change; `not_given`
/// when none) and the history, newest first. A logged use.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = ConsentView),
    )
)]
#[get("/v1/registrars/{rid}/clients/{id}/disclosure-consent")]
pub(super) async fn get_consent(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let view = registrar_call(state, principal, access, rid)
        .run("kanta: read disclosure consent", move |conn, state, request, rid| {
            rekisteri_consent::get_consent(conn, &state.consent(), request, rid, &id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Record the client's disclosure consent (CO-2): `positive`, `negative` or `revoked`. Refused
/// (422, `kanta_informing`) before the client has been informed (CO-1).
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    request_body = ConsentBody,
    responses(
        (status = 200, body = ConsentView),
        (status = 422, description = "Not informed yet, or nothing to revoke", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/registrars/{rid}/clients/{id}/disclosure-consent")]
pub(super) async fn set_consent(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
    body: Json<ConsentBody>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let new_state = body.into_inner().state;
    let view = registrar_call(state, principal, access, rid)
        .run("kanta: record disclosure consent", move |conn, state, request, rid| {
            rekisteri_consent::set_consent(conn, &state.consent(), request, rid, &id, new_state)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The client's disclosure prohibitions (CO-3), in force and revoked; a logged use.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = ProhibitionList),
    )
)]
#[get("/v1/registrars/{rid}/clients/{id}/disclosure-prohibitions")]
pub(super) async fn list_prohibitions(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let items = registrar_call(state, principal, access, rid)
        .run("kanta: read prohibitions", move |conn, state, request, rid| {
            rekisteri_consent::list_prohibitions(conn, &state.consent(), request, rid, &id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ProhibitionList { items }))
}

/// Record a prohibition (CO-3): `scope` `all`, or `registrar`, `service_task` or `document`
/// with its `target`. In force until revoked, across later consent changes; needs informing.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    request_body = NewProhibition,
    responses(
        (status = 201, body = Prohibition),
        (status = 422, description = "Not informed yet", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/clients/{id}/disclosure-prohibitions")]
pub(super) async fn add_prohibition(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
    body: Json<NewProhibition>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let new = body.into_inner();
    let (created, disclosure) = registrar_call(state, principal, access, rid)
        .create("kanta: record prohibition", move |conn, state, request, rid| {
            rekisteri_consent::add_prohibition(conn, &state.consent(), request, rid, &id, new)
        })
        .await?;
    Ok(disclosing(HttpResponse::Created().json(created), disclosure))
}

/// Revoke a prohibition (CO-3); it stays in the history.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id"),
        ("pid" = String, Path, description = "Prohibition id")),
    responses(
        (status = 200, body = Prohibition),
        (status = 422, description = "Already revoked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/clients/{id}/disclosure-prohibitions/{pid}/revoke")]
pub(super) async fn revoke_prohibition(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id, pid) = path.into_inner();
    let revoked = registrar_call(state, principal, access, rid)
        .run("kanta: revoke prohibition", move |conn, state, request, rid| {
            rekisteri_consent::revoke_prohibition(conn, &state.consent(), request, rid, &id, &pid)
        })
        .await?;
    Ok(HttpResponse::Ok().json(revoked))
}

/// May data X (registrar, service task, document) of a client be disclosed to recipient Q?
/// (CO-4) `allow` or `deny` with the basis: the consent state, the prohibition that matched,
/// or the organiser's exception (CO-5: the provider holding an open registry use right for the
/// client and the case). Every `allow` is a disclosure-log entry with that basis.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id: the register holding the client")),
    request_body = DecisionRequest,
    responses(
        (status = 200, body = DecisionResponse),
    )
)]
#[post("/v1/registrars/{rid}/disclosure-decisions")]
pub(super) async fn decide(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<String>,
    body: Json<DecisionRequest>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let body = body.into_inner();
    let decision = registrar_call(state, principal, access, rid)
        .run("kanta: disclosure decision", move |conn, state, request, rid| {
            rekisteri_consent::decide_disclosure(conn, &state.consent(), request, rid, body)
        })
        .await?;
    Ok(HttpResponse::Ok().json(decision))
}
