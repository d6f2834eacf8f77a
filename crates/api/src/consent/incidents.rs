//! Security incidents (RU-4).

use actix_web::{HttpResponse, get, patch, post, web};
use rekisteri_consent::{IncidentChanges, NewIncident, SecurityIncident};
use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::Json;
use crate::principal::Authenticated;
use crate::problem::{ApiError, Problem};
use crate::{AppState, RunBlocking};

#[derive(Serialize, ToSchema)]
pub struct IncidentList {
    pub items: Vec<SecurityIncident>,
}

/// The registrar's security incidents (RU-4), for its data-protection officers.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    responses(
        (status = 200, body = IncidentList),
    )
)]
#[get("/v1/registrars/{rid}/security-incidents")]
pub(super) async fn list_incidents(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let items = state
        .run(move |conn, state| {
            Ok(rekisteri_consent::list_security_incidents(
                conn,
                &state.consent(),
                &principal.0,
                &rid,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(IncidentList { items }))
}

/// Report a suspected breach (RU-4): any user of the registrar or of a provider under contract
/// with it. The 72-hour clock (`notify_by`) runs from `discovered_at`; the registrar's contact
/// is notified through the outbox. Name a `document_id` for a document found in the wrong
/// register.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    request_body = NewIncident,
    responses(
        (status = 201, body = SecurityIncident),
    )
)]
#[post("/v1/registrars/{rid}/security-incidents")]
pub(super) async fn report_incident(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
    body: Json<NewIncident>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let body = body.into_inner();
    let created = state
        .run(move |conn, state| {
            Ok(rekisteri_consent::report_security_incident(
                conn,
                &state.consent(),
                &principal.0,
                &rid,
                body,
                state.clock.now(),
            )?)
        })
        .await?;
    Ok(HttpResponse::Created().json(created))
}

/// One security incident (RU-4).
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Incident id")),
    responses(
        (status = 200, body = SecurityIncident),
    )
)]
#[get("/v1/registrars/{rid}/security-incidents/{id}")]
pub(super) async fn show_incident(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let found = state
        .run(move |conn, state| {
            Ok(rekisteri_consent::get_security_incident(
                conn,
                &state.consent(),
                &principal.0,
                &rid,
                &id,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(found))
}

/// Move an incident on (RU-4): `suspected` → `assessed` (with `assessment`) →
/// `authority_notified` or `notification_not_required`; and record whether and when the data
/// subjects were notified (`data_subjects_notified`, `data_subjects_notified_at`), in any state,
/// with or without a move. A recorded notification is not undone (422); a time is given only
/// with `data_subjects_notified: true` (now when absent), not before the discovery and not in
/// the future (422).
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Incident id")),
    request_body = IncidentChanges,
    responses(
        (status = 200, body = SecurityIncident),
        (status = 422, description = "Not a permitted transition, or a data-subject notification that does not fit; `errors` names the field", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/registrars/{rid}/security-incidents/{id}")]
pub(super) async fn update_incident(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<(String, String)>,
    body: Json<IncidentChanges>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let changes = body.into_inner();
    let updated = state
        .run(move |conn, state| {
            Ok(rekisteri_consent::update_security_incident(
                conn,
                &state.consent(),
                &principal.0,
                &rid,
                &id,
                changes,
                state.clock.now(),
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(updated))
}
