//! Data-subject requests over HTTP (CL-12): received, tracked against their due date (one
//! calendar month, extendable by at most two), completed or refused with the complaint route.
//! For the registrar's staff holding `handle_data_subject_requests`; every read is logged.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rekisteri_clients::{
    DataSubjectRequest, DataSubjectRequestChanges, NewDataSubjectRequest, RequestCursor, RequestFilter, RequestStatus,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::extract::Json;
use crate::idempotency::{disclosing, disclosure};
use crate::principal::{Authenticated, Authenticating};
use crate::problem::{ApiError, Problem};
use crate::request::{ClientAccess, if_match, page_limit, registrar_call, request};
use crate::{AppState, RunBlocking};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_requests)
        .service(create_request)
        .service(show_request)
        .service(update_request);
}

#[derive(Serialize, ToSchema)]
pub struct DataSubjectRequestList {
    pub items: Vec<DataSubjectRequest>,
    /// Present when more requests follow: pass it as `cursor`.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RequestQuery {
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1–500, default 100.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Only requests in this status.
    #[param(value_type = Option<RequestStatus>)]
    status: Option<RequestStatus>,
    /// `true`: only open requests past their due date.
    overdue: Option<bool>,
}

fn location(request: &DataSubjectRequest) -> String {
    format!(
        "/v1/registrars/{}/data-subject-requests/{}",
        request.registrar_id, request.id
    )
}

/// The registrar's data-subject requests by due date, a page at a time. Each listed request is
/// a logged use.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), RequestQuery),
    responses(
        (status = 200, body = DataSubjectRequestList),
        (status = 403, description = "No right to handle data-subject requests", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/registrars/{rid}/data-subject-requests")]
async fn list_requests(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<String>,
    query: web::Query<RequestQuery>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let query = query.into_inner();
    let limit = page_limit(query.limit)?;
    let after = query
        .cursor
        .as_deref()
        .map(|c| {
            URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| RequestCursor::decode(&s))
                .ok_or_else(|| {
                    ApiError::BusinessRule(crate::problem::FieldError::new(
                        "cursor",
                        "is not a cursor this listing returned",
                    ))
                })
        })
        .transpose()?;
    let filter = RequestFilter {
        status: query.status,
        overdue: query.overdue.unwrap_or(false),
    };
    let page = registrar_call(state, principal, access, rid)
        .run("data-subject requests: list", move |conn, state, request, rid| {
            rekisteri_clients::list_requests(conn, &state.clients(), request, rid, &filter, after.as_ref(), limit)
        })
        .await?;
    Ok(HttpResponse::Ok().json(DataSubjectRequestList {
        items: page.items,
        next_cursor: page.next_cursor.map(|c| URL_SAFE_NO_PAD.encode(c.encode())),
    }))
}

/// Record a data-subject request as received (CL-12): due one calendar month from
/// `received_on` (the last day of a shorter month: 31 Jan → 28/29 Feb). The identity code is
/// never echoed in an error.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    request_body = NewDataSubjectRequest,
    responses(
        (status = 201, body = DataSubjectRequest, headers(("Location" = String, description = "The request's URL"), ("ETag" = String, description = "The request's version"))),
    )
)]
#[post("/v1/registrars/{rid}/data-subject-requests")]
async fn create_request(
    state: web::Data<AppState>,
    principal: Authenticated,
    access: ClientAccess,
    path: web::Path<String>,
    body: Json<NewDataSubjectRequest>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let new = body.into_inner();
    let (created, disclosure) = state
        .run(move |conn, state| {
            let purpose = "data-subject requests: record request";
            let request = request(state, &principal.0, &rid, purpose, &access);
            let created = rekisteri_clients::create_request(conn, &state.clients(), &request, &rid, new)?;
            let disclosure = disclosure(&rid, purpose, &created.written(&state.keyring));
            Ok((created, disclosure))
        })
        .await?;
    let response = HttpResponse::Created()
        .insert_header((header::LOCATION, location(&created)))
        .insert_header((header::ETAG, format!("\"{}\"", created.version)))
        .json(created);
    Ok(disclosing(response, disclosure))
}

/// One data-subject request with its deadlines.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, body = DataSubjectRequest, headers(("ETag" = String, description = "The request's version"))),
    )
)]
#[get("/v1/registrars/{rid}/data-subject-requests/{id}")]
async fn show_request(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let found = registrar_call(state, principal, access, rid)
        .run(
            "data-subject requests: read request",
            move |conn, state, request, rid| rekisteri_clients::get_request(conn, &state.clients(), request, rid, &id),
        )
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, format!("\"{}\"", found.version)))
        .json(found))
}

/// Handle a request; send its `ETag` as `If-Match` (412 when stale, 428 without). Extend the
/// deadline with `extend_by_months` (1 or 2), `extension_reason` and `extension_notified_on`
/// (within the first month); refuse with `status: "refused"` and `refusal_reasons` (the
/// complaint route defaults to the Data Protection Ombudsman); complete with
/// `status: "completed"`. A closed request no longer changes (422).
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Request id"),
        ("If-Match" = String, Header, description = "The request's ETag as read")),
    request_body = DataSubjectRequestChanges,
    responses(
        (status = 200, body = DataSubjectRequest, headers(("ETag" = String, description = "The new version"))),
        (status = 412, description = "The request changed since it was read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A rule of CL-12 refuses the change (extension without reason or late notice, refusal without reasons, closed request); `errors` names the field", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/registrars/{rid}/data-subject-requests/{id}")]
async fn update_request(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    http: HttpRequest,
    path: web::Path<(String, String)>,
    body: Json<DataSubjectRequestChanges>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let version = if_match(&http)?;
    let changes = body.into_inner();
    let updated = registrar_call(state, principal, access, rid)
        .run(
            "data-subject requests: handle request",
            move |conn, state, request, rid| {
                rekisteri_clients::update_request(conn, &state.clients(), request, rid, &id, version, changes)
            },
        )
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, format!("\"{}\"", updated.version)))
        .json(updated))
}
