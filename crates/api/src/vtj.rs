//! VTJ change ingestion over HTTP (VT-10, VT-11): start a registrar's sync, read its status,
//! push a batch of changes in the interface's own format. The registrar's own users holding
//! `manage_vtj` (scope `vtj:write`); another organisation's users get 404.

use actix_web::{HttpResponse, get, post, web};
use rekisteri_accounts::Permission;
use rekisteri_vtj::{Vtj, VtjClient, VtjError};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::extract::Json;
use crate::principal::Authenticated;
use crate::problem::{ApiError, Problem, ProblemType};
use crate::{AppState, RunBlocking};

pub fn configure(config: &mut ServiceConfig) {
    config.service(start_sync).service(show_status).service(push_changes);
}

fn authorise(principal: &rekisteri_accounts::Principal, rid: &str) -> Result<(), ApiError> {
    if principal.organisation_id != rid {
        return Err(ApiError::problem(ProblemType::NotFound, "no such registrar"));
    }
    if !principal.can(Permission::ManageVtj) {
        return Err(ApiError::problem(
            ProblemType::Forbidden,
            "VTJ ingestion needs manage_vtj",
        ));
    }
    Ok(())
}

fn vtj(state: &AppState) -> Vtj {
    Vtj {
        keyring: state.keyring.clone(),
        audit: state.audit.clone(),
        clock: state.clock.clone(),
        config: state.vtj.clone(),
        fail: rekisteri_vtj::FailPoints::off(),
    }
}

fn map_error(e: VtjError) -> ApiError {
    match e {
        VtjError::AlreadyRunning => ApiError::problem(ProblemType::Conflict, e.to_string()),
        VtjError::Malformed(m) => ApiError::field("body", m),
        VtjError::Refused { .. } | VtjError::Transport(_) => ApiError::problem(ProblemType::NotReady, e.to_string()),
        VtjError::Clients(e) => e.into(),
        other => ApiError::internal(other),
    }
}

/// What a run or a pushed batch did.
#[derive(Serialize, ToSchema)]
pub struct VtjRunResult {
    pub cursor_before: Option<i64>,
    pub cursor_after: Option<i64>,
    /// People followed (clients with an open service, VT-1).
    pub monitored: usize,
    /// People whose base data was fetched (`perustiedot`, VT-2).
    pub loaded: usize,
    /// `muutokset` pages fetched.
    pub pages: usize,
    pub applied: u64,
    pub skipped: u64,
    pub failed: u64,
}

/// The registrar's VTJ state (VT-10).
#[derive(Serialize, ToSchema)]
pub struct VtjStatusView {
    /// `viimeisinKirjausavain`: where the next change fetch continues.
    pub cursor: Option<i64>,
    pub running: bool,
    pub last_run_started_at: Option<String>,
    pub last_run_finished_at: Option<String>,
    /// `completed` or `failed`.
    pub last_run_outcome: Option<String>,
    pub last_run_error: Option<String>,
    pub monitored: i64,
    /// Staged change messages by outcome.
    pub applied: i64,
    pub skipped: i64,
    pub failed: i64,
    pub pending: i64,
    /// The latest failed messages: their sequence number and error.
    pub last_errors: Vec<VtjStagedError>,
}

#[derive(Serialize, ToSchema)]
pub struct VtjStagedError {
    pub seq: i64,
    pub reason: Option<String>,
}

/// Runs the registrar's VTJ sync now (VT-10): the pending rows of an interrupted run, the
/// initial load of newly monitored people, then the changes until up to date. One run per
/// registrar at a time: a second start answers 409.
#[utoipa::path(
    tag = "vtj",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    responses(
        (status = 200, body = VtjRunResult),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No manage_vtj", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such registrar, or not the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A run of this registrar is already going", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The VTJ interface did not answer", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/vtj/sync")]
async fn start_sync(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    authorise(&principal.0, &rid)?;
    let report = state
        .run(move |conn, state| {
            let vtj = vtj(state);
            let client = VtjClient::new(vtj.config.clone()).map_err(map_error)?;
            rekisteri_vtj::run_sync(conn, &vtj, &client, &rid).map_err(map_error)
        })
        .await?;
    Ok(HttpResponse::Ok().json(VtjRunResult {
        cursor_before: report.cursor_before,
        cursor_after: report.cursor_after,
        monitored: report.monitored,
        loaded: report.loaded,
        pages: report.pages,
        applied: report.counts.applied,
        skipped: report.counts.skipped,
        failed: report.counts.failed,
    }))
}

/// The registrar's cursor, last run, staged messages by outcome and the last errors (VT-10).
#[utoipa::path(
    tag = "vtj",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    responses(
        (status = 200, body = VtjStatusView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No manage_vtj", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such registrar, or not the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/registrars/{rid}/vtj/status")]
async fn show_status(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    authorise(&principal.0, &rid)?;
    let s = state
        .run(move |conn, _| rekisteri_vtj::status(conn, &rid).map_err(map_error))
        .await?;
    Ok(HttpResponse::Ok().json(VtjStatusView {
        cursor: s.cursor,
        running: s.running,
        last_run_started_at: s.last_run_started_at,
        last_run_finished_at: s.last_run_finished_at,
        last_run_outcome: s.last_run_outcome,
        last_run_error: s.last_run_error,
        monitored: s.monitored,
        applied: s.applied,
        skipped: s.skipped,
        failed: s.failed,
        pending: s.pending,
        last_errors: s
            .last_errors
            .into_iter()
            .map(|e| VtjStagedError {
                seq: e.seq,
                reason: e.reason,
            })
            .collect(),
    }))
}

/// Pushes a batch of changes in the interface's own format (a `muutokset` answer:
/// `{"viimeisinKirjausavain", "muutokset": [{"henkilotunnus", "muutospv", "tietoryhmat"}],
/// "ajanTasalla"}`, VT-11). It goes through the same staging and application as a fetched
/// page; changes for people not on the monitored list are skipped. A batch that breaks the
/// schema is refused whole (400, naming the element).
#[utoipa::path(
    tag = "vtj",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    request_body(content = Object, description = "A `muutokset` answer of DVV's change interface"),
    responses(
        (status = 200, body = VtjRunResult),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No manage_vtj", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such registrar, or not the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/vtj/changes")]
async fn push_changes(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
    body: Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    authorise(&principal.0, &rid)?;
    let text = body.into_inner().to_string();
    let counts = state
        .run(move |conn, state| {
            let vtj = vtj(state);
            let answer = rekisteri_vtj::message::parse_muutokset(&text).map_err(map_error)?;
            rekisteri_vtj::sync::ingest(conn, &vtj, &rid, "push", answer.muutokset).map_err(map_error)
        })
        .await?;
    Ok(HttpResponse::Ok().json(VtjRunResult {
        cursor_before: None,
        cursor_after: None,
        monitored: 0,
        loaded: 0,
        pages: 0,
        applied: counts.applied,
        skipped: counts.skipped,
        failed: counts.failed,
    }))
}
