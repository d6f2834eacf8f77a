//! The organiser's Kanta settings, provider contracts, voucher choices and registry use rights
//! (RU-1, RU-5, RU-6).

use actix_web::http::header;
use actix_web::{HttpResponse, get, post, put, web};
use rekisteri_consent::{
    CloseRight, ContractBody, KantaJoiningReport, KantaSettings, OpenRight, ReopenRight, Right, VoucherChoice,
    VoucherChoiceBody,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::Json;
use crate::idempotency::disclosing;
use crate::principal::{Authenticated, Authenticating};
use crate::problem::{ApiError, Problem};
use crate::request::{ClientAccess, registrar_call};
use crate::{AppState, RunBlocking};

#[derive(Serialize, ToSchema)]
pub struct RightList {
    pub items: Vec<Right>,
}

/// The organiser's Kanta settings (RU-1): start date, case OID root, working days of notice
/// before an automatic closing (RU-5).
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    request_body = KantaSettings,
    responses(
        (status = 200, body = KantaSettings),
    )
)]
#[put("/v1/registrars/{rid}/kanta-settings")]
pub(super) async fn set_kanta_settings(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
    body: Json<KantaSettings>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let body = body.into_inner();
    let saved = state
        .run(move |conn, state| {
            Ok(rekisteri_consent::set_kanta_settings(
                conn,
                &principal.0,
                &rid,
                body,
                state.clock.now(),
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(saved))
}

/// The organiser's contract with a provider and the provider's Kanta joining date (RU-1).
///
/// Or, instead of the joining date, the organiser's exemption of a small provider of support
/// services from joining Kanta and from recording separate electronic client documents
/// (`kanta_exemption`, source 003 §5):
/// no registry use right opens for an exempt provider's services (422 naming
/// `provider_kanta_exemption`), and the Kanta-joining report never lists it. Replaces the
/// contract recorded before.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("provider_id" = String, Path, description = "Provider organisation id")),
    request_body = ContractBody,
    responses(
        (status = 200, body = ContractBody),
        (status = 422, description = "`kanta_exemption` together with `kanta_joined_on`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/registrars/{rid}/provider-contracts/{provider_id}")]
pub(super) async fn set_contract(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<(String, String)>,
    body: Json<ContractBody>,
) -> Result<HttpResponse, ApiError> {
    let (rid, provider_id) = path.into_inner();
    let body = body.into_inner();
    let saved = state
        .run(move |conn, state| {
            Ok(rekisteri_consent::set_contract(
                conn,
                &principal.0,
                &rid,
                &provider_id,
                body,
                state.clock.now(),
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(saved))
}

/// The organiser's providers missing Kanta joining (RU-1).
///
/// The providers the organiser has a contract with that have not joined the Kanta client-data
/// repository by today in Finland (no joining date, or a later one), in provider id order. A
/// provider the organiser exempted from joining (`kanta_exemption`, source 003 §5) is never listed.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    responses(
        (status = 200, body = KantaJoiningReport),
    )
)]
#[get("/v1/registrars/{rid}/kanta-joining-report")]
pub(super) async fn kanta_joining_report(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let report = state
        .run(move |conn, state| {
            Ok(rekisteri_consent::kanta_joining_report(
                conn,
                &principal.0,
                &rid,
                state.clock.now(),
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(report))
}

/// The provider reports a voucher client's choice of provider (RU-1); the organiser then opens
/// the registry use right. A changed service-unit OID flags the open rights of that service.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    request_body = VoucherChoiceBody,
    responses(
        (status = 201, body = VoucherChoice),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/voucher-provider-choices")]
pub(super) async fn record_voucher_choice(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<String>,
    body: Json<VoucherChoiceBody>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let body = body.into_inner();
    let (created, disclosure) = registrar_call(state, principal, access, rid)
        .create(
            "registry use right: report voucher choice",
            move |conn, state, request, rid| {
                rekisteri_consent::record_voucher_choice(conn, &state.consent(), request, rid, body)
            },
        )
        .await?;
    Ok(disclosing(HttpResponse::Created().json(created), disclosure))
}

/// The registrar's registry use rights (its staff), or a provider's own rights in it; without
/// identity codes.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    responses(
        (status = 200, body = RightList),
    )
)]
#[get("/v1/registrars/{rid}/registry-use-rights")]
pub(super) async fn list_rights(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let items = state
        .run(move |conn, state| {
            Ok(rekisteri_consent::list_rights(
                conn,
                &principal.0,
                &rid,
                state.clock.now(),
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(RightList { items }))
}

/// Open a registry use right (RU-1) for the client's service with the provider's service-unit
/// OID; returns the case OID (issued under the organiser's OID root) and the identity code
/// delivered to the provider. Refused (422) naming the missing condition: `voucher_provider_choice`,
/// `contract`, `provider_kanta_exemption` (the organiser exempted the provider from joining
/// Kanta, source 003 §5), `provider_kanta_joining`, `provider_unit_oid`, `kanta_start_date`,
/// `opened_on`.
/// The right closes 7 working days after the service ends (RU-5).
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    request_body = OpenRight,
    responses(
        (status = 201, body = Right, headers(("Location" = String, description = "The right's URL"))),
        (status = 422, description = "A condition of RU-1 does not hold; `errors` names it", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/registry-use-rights")]
pub(super) async fn open_right(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<String>,
    body: Json<OpenRight>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let body = body.into_inner();
    let (created, disclosure) = registrar_call(state, principal, access, rid)
        .create("registry use right: open", move |conn, state, request, rid| {
            rekisteri_consent::open_right(conn, &state.consent(), request, rid, body)
        })
        .await?;
    let location = format!(
        "/v1/registrars/{}/registry-use-rights/{}",
        created.registrar_id, created.id
    );
    Ok(disclosing(
        HttpResponse::Created()
            .insert_header((header::LOCATION, location))
            .json(created),
        disclosure,
    ))
}

/// One registry use right, with the client's identity code and the case OID: the organiser's
/// staff who reach the client, or the right's provider (its delivery, RU-1). A logged use.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Right id")),
    responses(
        (status = 200, body = Right),
    )
)]
#[get("/v1/registrars/{rid}/registry-use-rights/{id}")]
pub(super) async fn show_right(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let right = registrar_call(state, principal, access, rid)
        .run("registry use right: read", move |conn, state, request, rid| {
            rekisteri_consent::get_right(conn, &state.consent(), request, rid, &id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(right))
}

/// The organiser sets another closing date for this right (RU-5): `closes_after` is the last
/// usable day; the right is closed from 00:00 Finnish time of the next day, at once for a date
/// before today. The provider is notified.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Right id")),
    request_body = CloseRight,
    responses(
        (status = 200, body = Right),
        (status = 422, description = "Already closed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/registry-use-rights/{id}/close")]
pub(super) async fn close_right(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
    body: Json<CloseRight>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let body = body.into_inner();
    let right = registrar_call(state, principal, access, rid)
        .run("registry use right: close", move |conn, state, request, rid| {
            rekisteri_consent::close_right(conn, &state.consent(), request, rid, &id, body)
        })
        .await?;
    Ok(HttpResponse::Ok().json(right))
}

/// Reopen a closed right (RU-6) to correct or invalidate the provider's documents: `reason`
/// and the last usable day `closes_after`. The provider is notified.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Right id")),
    request_body = ReopenRight,
    responses(
        (status = 200, body = Right),
        (status = 422, description = "The right is not closed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/registry-use-rights/{id}/reopen")]
pub(super) async fn reopen_right(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
    body: Json<ReopenRight>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let body = body.into_inner();
    let right = registrar_call(state, principal, access, rid)
        .run("registry use right: reopen", move |conn, _, request, rid| {
            rekisteri_consent::reopen_right(conn, request, rid, &id, body)
        })
        .await?;
    Ok(HttpResponse::Ok().json(right))
}
