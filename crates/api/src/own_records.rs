//! A citizen's own client records (CL-9, CL-10): their own records and those of the clients they
//! are a valid proxy for, in every registrar, and the contact fields they may change.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, patch, web};
use rekisteri_clients::{CitizenRequest, ContactChanges, OwnRecord};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::extract::Json;
use crate::middleware::RequestId;
use crate::principal::{CitizenAuthenticated, CitizenOnly};
use crate::problem::{ApiError, Problem, ProcessingRestricted};
use crate::request::if_match;
use crate::{AppState, RunBlocking};

pub fn configure(config: &mut ServiceConfig) {
    config.service(list_own_records).service(change_own_contact);
}

/// What a domain call on the citizen's own records needs from the request.
fn citizen_request<'a>(
    state: &AppState,
    citizen: &'a CitizenAuthenticated,
    request_id: &'a RequestId,
) -> CitizenRequest<'a> {
    CitizenRequest {
        citizen: &citizen.0,
        request_id: &request_id.0,
        now: state.clock.now(),
    }
}

#[derive(Serialize, ToSchema)]
pub struct OwnRecordList {
    pub items: Vec<OwnRecord>,
}

/// The signed-in citizen's client records in every registrar, and the records of the clients
/// they are a valid proxy for today (`relation`: `own` or `proxy`). Each record is logged in
/// its registrar's usage log (basis `own_data` or `proxy`).
#[utoipa::path(
    tag = "me",
    responses(
        (status = 200, body = OwnRecordList),
        CitizenOnly,
    )
)]
#[get("/v1/me/client-records")]
async fn list_own_records(
    state: web::Data<AppState>,
    citizen: CitizenAuthenticated,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let items = state
        .run(move |conn, state| {
            let request = citizen_request(state, &citizen, &request_id);
            Ok(rekisteri_clients::own_records(conn, &state.clients(), &request)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(OwnRecordList { items }))
}

/// Change the e-mail, phone or next of kin of an own record or of a client the citizen is a
/// valid proxy for (CL-10); any other field is a 400. Send the record's `version` as
/// `If-Match` (412 when stale, 428 without it).
#[utoipa::path(
    tag = "me",
    params(("id" = String, Path, description = "Client id of the record"),
        ("If-Match" = String, Header, description = "The record's version as read")),
    request_body = ContactChanges,
    responses(
        (status = 200, body = OwnRecord, headers(("ETag" = String, description = "The new version"))),
        CitizenOnly,
        (status = 404, description = "Not a record the citizen reaches", body = Problem, content_type = "application/problem+json"),
        ProcessingRestricted,
    )
)]
#[patch("/v1/me/client-records/{id}/contact")]
async fn change_own_contact(
    state: web::Data<AppState>,
    citizen: CitizenAuthenticated,
    request_id: RequestId,
    http: HttpRequest,
    path: web::Path<String>,
    body: Json<ContactChanges>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let expected = if_match(&http)?;
    let changes = body.into_inner();
    let record = state
        .run(move |conn, state| {
            let request = citizen_request(state, &citizen, &request_id);
            Ok(rekisteri_clients::change_own_contact(
                conn,
                &state.clients(),
                &request,
                &id,
                expected,
                changes,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, format!("\"{}\"", record.client.version)))
        .json(record))
}
