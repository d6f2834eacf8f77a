//! VTJ change ingestion over HTTP (VT-10, VT-11): start a registrar's sync, read its status,
//! push a batch of changes in the interface's own format. The registrar's own users holding
//! `manage_vtj` (scope `vtj:write`); another organisation's users get 404.

use actix_web::{HttpResponse, get, post, web};
use rekisteri_vtj::{Vtj, VtjClient, VtjError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::extract::{Json, parse_time};
use crate::middleware::RequestId;
use crate::principal::{Authenticated, audit_context};
use crate::problem::{ApiError, Problem, ProblemType, problem_responses};
use crate::{AppState, RunBlocking};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(start_sync)
        .service(show_status)
        .service(push_changes)
        .service(death_work_list)
        .service(moves_in_work_list);
}

problem_responses!(
    /// What every VTJ operation answers a caller without `manage_vtj` or of another registrar.
    VtjRefusals {
        "403" => "No manage_vtj",
        "404" => "No such registrar, or not the caller's",
    }
);

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
        VtjError::Refused(refusal) => refusal.into(),
        VtjError::InterfaceRefused { .. } | VtjError::Transport(_) => {
            ApiError::problem(ProblemType::NotReady, e.to_string())
        }
        VtjError::Clients(e) => e.into(),
        VtjError::Db(e) => e.into(),
        VtjError::Audit(e) => e.into(),
        e @ (VtjError::Config(_) | VtjError::Injected(_) | VtjError::Crypto) => ApiError::internal(e),
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
    #[schema(format = DateTime)]
    pub last_run_started_at: Option<String>,
    #[schema(format = DateTime)]
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
        VtjRefusals,
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
    rekisteri_vtj::authorise(&principal.0, &rid).map_err(map_error)?;
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
        VtjRefusals,
    )
)]
#[get("/v1/registrars/{rid}/vtj/status")]
async fn show_status(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    rekisteri_vtj::authorise(&principal.0, &rid).map_err(map_error)?;
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
/// schema is refused whole (400, `errors[].field` the path of the element at fault, e.g.
/// `muutokset[0].henkilotunnus`), and so is a `henkilotunnus` not in its canonical form (surrounding
/// whitespace, a lower-case century sign or check character: CL-2). A canonical code that is not
/// a valid identity code is not a schema error: its row fails and the rest applies (VT-3).
/// `applied`, `skipped` and `failed` count this batch's changes, also when other batches are
/// pushed at the same time (each change is applied once, in the order the batches were staged).
#[utoipa::path(
    tag = "vtj",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    request_body(content = crate::vtj::MuutoksetBatch, description = "A `muutokset` answer of DVV's change interface"),
    responses(
        (status = 200, body = VtjRunResult),
        VtjRefusals,
    )
)]
#[post("/v1/registrars/{rid}/vtj/changes")]
async fn push_changes(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
    body: Json<rekisteri_vtj::message::MuutoksetResponse>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    rekisteri_vtj::authorise(&principal.0, &rid).map_err(map_error)?;
    let answer = body.into_inner();
    rekisteri_vtj::message::check_pushed_muutokset(&answer).map_err(|e| ApiError::field(e.path, e.reason))?;
    let counts = state
        .run(move |conn, state| {
            let vtj = vtj(state);
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WorkListQuery {
    /// Only entries recorded at or after this time (RFC 3339 or a date).
    #[param(value_type = Option<crate::contract::TimeOrDate>, inline)]
    since: Option<String>,
    /// 1–500, default 100.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// How `read` reads a VTJ work list of the registrar with every listed person logged.
type WorkListRead<T> = fn(
    &mut rekisteri_db::DbConnection,
    &Vtj,
    &rekisteri_audit::AuditContext,
    Option<time::PrimitiveDateTime>,
    i64,
) -> Result<Vec<T>, rekisteri_vtj::VtjError>;

/// A work list for the registrar's own `manage_vtj` staff (VT-4, VT-7), read by `read`.
async fn work_list<T: Send + 'static>(
    state: &web::Data<AppState>,
    principal: Authenticated,
    request_id: RequestId,
    rid: String,
    query: WorkListQuery,
    purpose: &'static str,
    read: WorkListRead<T>,
) -> Result<Vec<T>, ApiError> {
    rekisteri_vtj::authorise(&principal.0, &rid).map_err(map_error)?;
    let limit = crate::request::page_limit(query.limit)?;
    let since = parse_time("since", query.since.as_deref())?;
    state
        .run(move |conn, state| {
            let context = audit_context(&principal.0, &rid, purpose, &request_id);
            read(conn, &vtj(state), &context, since, limit).map_err(map_error)
        })
        .await
}

/// One client whose services VTJ closed by the date of death (VT-7).
#[derive(Serialize, ToSchema)]
pub struct DeathClosureView {
    pub client_id: String,
    pub died_on: String,
    /// Open services closed with the date of death as their closing date.
    pub services_closed: i32,
    /// Proxies ended on the date of death (or revoked, if not yet begun).
    pub proxies_ended: i32,
    /// When VTJ applied the death.
    #[schema(format = DateTime)]
    pub recorded_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct DeathWorkList {
    pub items: Vec<DeathClosureView>,
}

/// The registrar's work list of clients closed by death (VT-7): whose open services VTJ closed
/// with the date of death and whose proxies it ended, newest first. Every listed client's read
/// is written to the usage log.
#[utoipa::path(
    tag = "vtj",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), WorkListQuery),
    responses(
        (status = 200, body = DeathWorkList),
        VtjRefusals,
    )
)]
#[get("/v1/registrars/{rid}/vtj/deaths")]
async fn death_work_list(
    state: web::Data<AppState>,
    principal: Authenticated,
    request_id: RequestId,
    path: web::Path<String>,
    query: web::Query<WorkListQuery>,
) -> Result<HttpResponse, ApiError> {
    let rows = work_list(
        &state,
        principal,
        request_id,
        path.into_inner(),
        query.into_inner(),
        "client register: clients closed by death (VTJ)",
        rekisteri_vtj::death_work_list,
    )
    .await?;
    Ok(HttpResponse::Ok().json(DeathWorkList {
        items: rows
            .into_iter()
            .map(|row| DeathClosureView {
                client_id: row.client_id,
                died_on: row.died_on.to_string(),
                services_closed: row.services_closed,
                proxies_ended: row.proxies_ended,
                recorded_at: rekisteri_audit::format_time(row.recorded_at),
            })
            .collect(),
    }))
}

/// A person who moved into one of the registrar's municipalities from a municipality another
/// registrar of the system serves (VT-4). The sending register keeps its record; the notice
/// holds what VTJ told, for the receiving registrar to arrange the person's services.
#[derive(Serialize, ToSchema)]
pub struct MoveNoticeView {
    pub id: String,
    #[schema(example = "131052-308T")]
    pub identity_code: String,
    /// The new home municipality (Statistics Finland's code).
    #[schema(example = "837")]
    pub home_municipality: String,
    /// The day the person moved in.
    #[schema(format = Date)]
    pub moved_on: Option<String>,
    /// The registrar whose client the person was.
    pub from_registrar_id: String,
    #[schema(format = DateTime)]
    pub recorded_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct MoveNoticeList {
    pub items: Vec<MoveNoticeView>,
}

/// The registrar's work list of people who moved into its municipalities from another
/// registrar's (VT-4), newest first. Every listed person's read is written to the usage log.
#[utoipa::path(
    tag = "vtj",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), WorkListQuery),
    responses(
        (status = 200, body = MoveNoticeList),
        VtjRefusals,
    )
)]
#[get("/v1/registrars/{rid}/vtj/moves-in")]
async fn moves_in_work_list(
    state: web::Data<AppState>,
    principal: Authenticated,
    request_id: RequestId,
    path: web::Path<String>,
    query: web::Query<WorkListQuery>,
) -> Result<HttpResponse, ApiError> {
    let rows = work_list(
        &state,
        principal,
        request_id,
        path.into_inner(),
        query.into_inner(),
        "client register: people who moved in from another registrar (VTJ)",
        rekisteri_vtj::moves_in_work_list,
    )
    .await?;
    Ok(HttpResponse::Ok().json(MoveNoticeList {
        items: rows
            .into_iter()
            .map(|row| MoveNoticeView {
                id: row.id,
                identity_code: row.identity_code,
                home_municipality: row.home_municipality,
                moved_on: row.moved_on.map(|d| d.to_string()),
                from_registrar_id: row.from_registrar_id,
                recorded_at: rekisteri_audit::format_time(row.recorded_at),
            })
            .collect(),
    }))
}

/// The `muutokset` answer an integrator pushes (VT-11), as `rekisteri_vtj::message` checks it:
/// the interface's fields, each person's `henkilotunnus` in canonical form (no surrounding white
/// space, no lower-case letter) and its `tietoryhmat`, each naming its `tietoryhma`. Anything
/// else in a person's message is DVV's and passes through.
pub struct MuutoksetBatch;

/// Rust's `char::is_whitespace`, the white space `str::trim` removes.
const WHITE_SPACE: &str = r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

impl utoipa::PartialSchema for MuutoksetBatch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
        let canonical = format!("^([^{WHITE_SPACE}a-z]([^a-z]*[^{WHITE_SPACE}a-z])?)?$");
        let group = ObjectBuilder::new()
            .property("tietoryhma", ObjectBuilder::new().schema_type(Type::String))
            .required("tietoryhma");
        let person = ObjectBuilder::new()
            .property(
                "henkilotunnus",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(canonical))
                    .description(Some(
                        "In canonical form; a canonical code that is no valid identity code fails only its row (VT-3)",
                    )),
            )
            .required("henkilotunnus")
            .property("tietoryhmat", ArrayBuilder::new().items(group));
        ObjectBuilder::new()
            .property(
                "viimeisinKirjausavain",
                ObjectBuilder::new().schema_type(Type::Integer).format(Some(
                    utoipa::openapi::schema::SchemaFormat::KnownFormat(utoipa::openapi::schema::KnownFormat::Int64),
                )),
            )
            .required("viimeisinKirjausavain")
            .property("muutokset", ArrayBuilder::new().items(person))
            .required("muutokset")
            .property("ajanTasalla", ObjectBuilder::new().schema_type(Type::Boolean))
            .required("ajanTasalla")
            .into()
    }
}

impl utoipa::ToSchema for MuutoksetBatch {}
