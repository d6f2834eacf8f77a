//! The client register's lifecycle and statistics over HTTP (CL-13..CL-16): the clients due for
//! anonymisation, their archive export, and the aggregate reports. The anonymisation and the
//! deletion themselves are maintenance runs (`rekisteri jobs run anonymise|retention`), not
//! endpoints.

use actix_web::{HttpResponse, get, web};
use rekisteri_clients::lifecycle::{ArchiveRecord, DueClient};
use rekisteri_clients::statistics::{ClientStatistics, ServiceStatistics, StatisticsQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::middleware::RequestId;
use crate::principal::Authenticated;
use crate::problem::{ApiError, Problem, problem_responses};
use crate::request::registrar_request;
use crate::{AppState, RunBlocking};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(due_list)
        .service(archive_export)
        .service(client_statistics)
        .service(service_statistics);
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DueQuery {
    /// Days ahead (0–365, default 30): list whoever will no longer be visible by then, and
    /// whoever is past it but not yet anonymised.
    #[param(minimum = 0, maximum = 365)]
    lead_days: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1–500, default 100.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct DueList {
    pub items: Vec<DueClient>,
    /// Present when more follow: pass it as `cursor`.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ArchiveExport {
    pub items: Vec<ArchiveRecord>,
    /// Present when more follow: pass it as `cursor`.
    pub next_cursor: Option<String>,
}

/// The clients due for anonymisation (CL-14) within `lead_days`: ids and dates only, in id
/// order. Needs `read_clients`; the caller's service areas apply. Every listed client is a
/// usage-log entry.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), DueQuery),
    responses(
        (status = 200, body = DueList),
        (status = 403, description = "No right to read clients, or strong authentication required", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such registrar, or not the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/registrars/{rid}/lifecycle/due")]
async fn due_list(
    state: web::Data<AppState>,
    principal: Authenticated,
    request_id: RequestId,
    path: web::Path<String>,
    query: web::Query<DueQuery>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let query = query.into_inner();
    let limit = crate::request::page_limit(query.limit)?;
    let after = crate::request::decode_cursor(query.cursor.as_deref())?;
    let page = state
        .run(move |conn, state| {
            let request = registrar_request(
                state,
                &principal.0,
                &rid,
                "client register: clients due for anonymisation",
                &request_id,
            );
            Ok(rekisteri_clients::lifecycle::due_for_anonymisation(
                conn,
                &state.clients(),
                &request,
                &rid,
                query.lead_days,
                after.as_deref(),
                limit,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(DueList {
        items: page.items,
        next_cursor: page.next_cursor.map(crate::request::encode_cursor),
    }))
}

/// The archive export of the clients due (CL-14): each client's whole record in clear, with
/// every event, for the registrar's long-term archive, a page at a time. Needs `read_clients`
/// and `export_client_archive`; every exported client is a usage-log and a disclosure-log
/// entry, committed before the response.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), DueQuery),
    responses(
        (status = 200, body = ArchiveExport),
        (status = 403, description = "No right to export, or strong authentication required", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such registrar, or not the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/registrars/{rid}/lifecycle/archive-export")]
async fn archive_export(
    state: web::Data<AppState>,
    principal: Authenticated,
    request_id: RequestId,
    path: web::Path<String>,
    query: web::Query<DueQuery>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let query = query.into_inner();
    let limit = crate::request::page_limit(query.limit)?;
    let after = crate::request::decode_cursor(query.cursor.as_deref())?;
    let page = state
        .run(move |conn, state| {
            let request = registrar_request(
                state,
                &principal.0,
                &rid,
                "client register: archive export before anonymisation",
                &request_id,
            );
            Ok(rekisteri_clients::lifecycle::archive_export(
                conn,
                &state.clients(),
                &request,
                &rid,
                query.lead_days,
                after.as_deref(),
                limit,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ArchiveExport {
        items: page.items,
        next_cursor: page.next_cursor.map(crate::request::encode_cursor),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ClientStatisticsQuery {
    /// First month `YYYY-MM`; default eleven months before `to`.
    #[param(value_type = Option<crate::contract::Month>, inline)]
    from: Option<String>,
    /// Last month `YYYY-MM`; default the current month. At most 36 months in all.
    #[param(value_type = Option<crate::contract::Month>, inline)]
    to: Option<String>,
    /// Comma-separated: `municipality`, `service_type`, `month`, `age_group`, `gender`;
    /// default `service_type,month`; empty for one cell.
    #[param(
        pattern = "^((municipality|service_type|month|age_group|gender)(,(municipality|service_type|month|age_group|gender))*)?$"
    )]
    group_by: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ServiceStatisticsQuery {
    /// First month `YYYY-MM`; default eleven months before `to`.
    #[param(value_type = Option<crate::contract::Month>, inline)]
    from: Option<String>,
    /// Last month `YYYY-MM`; default the current month. At most 36 months in all.
    #[param(value_type = Option<crate::contract::Month>, inline)]
    to: Option<String>,
    /// Comma-separated: `provider`, `service_type`, `month`; default all three. Cells are
    /// always split by unit.
    #[param(pattern = "^((provider|service_type|month)(,(provider|service_type|month))*)?$")]
    group_by: Option<String>,
}

problem_responses!(
    /// What the CL-16 reports refuse.
    StatisticsRefusals {
        "422" => "`from` is after `to`, or the period is longer than 36 months (`business-rule`)",
        "403" => "No right to read statistics, or strong authentication required",
        "404" => "No such registrar, or not the caller's",
    }
);

/// One of the CL-16 reports, as the clients crate computes it.
type StatisticsReport<R> = fn(
    &mut rekisteri_db::DbConnection,
    &rekisteri_clients::ClientRegister,
    &rekisteri_clients::Request<'_>,
    &str,
    &StatisticsQuery,
) -> Result<R, rekisteri_clients::ClientsError>;

/// Answers the registrar `rid`'s CL-16 `report` for `query`.
async fn statistics<R: Serialize + Send + 'static>(
    state: web::Data<AppState>,
    principal: Authenticated,
    request_id: RequestId,
    rid: String,
    query: StatisticsQuery,
    report: StatisticsReport<R>,
) -> Result<HttpResponse, ApiError> {
    let report = state
        .run(move |conn, state| {
            let request = registrar_request(state, &principal.0, &rid, "client register: statistics", &request_id);
            Ok(report(conn, &state.clients(), &request, &rid, &query)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(report))
}

/// Clients by home municipality, service type, month, age group and gender (CL-16), over live
/// and anonymised data. Aggregates only: a cell counting fewer than 5 people has `null` values
/// and `suppressed: true`, and so does a second cell of its line, so that no total backs it out.
/// Needs `read_statistics`.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ClientStatisticsQuery),
    responses(
        (status = 200, body = ClientStatistics),
        StatisticsRefusals,
    )
)]
#[get("/v1/registrars/{rid}/statistics/clients")]
async fn client_statistics(
    state: web::Data<AppState>,
    principal: Authenticated,
    request_id: RequestId,
    path: web::Path<String>,
    query: web::Query<ClientStatisticsQuery>,
) -> Result<HttpResponse, ApiError> {
    let ClientStatisticsQuery { from, to, group_by } = query.into_inner();
    let query = StatisticsQuery { from, to, group_by };
    let report = rekisteri_clients::statistics::client_statistics;
    statistics(state, principal, request_id, path.into_inner(), query, report).await
}

/// Delivered quantities and amounts by provider, service type and month (CL-16), split by
/// unit; cells of fewer than 5 people suppressed like the clients report. Needs
/// `read_statistics`.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ServiceStatisticsQuery),
    responses(
        (status = 200, body = ServiceStatistics),
        StatisticsRefusals,
    )
)]
#[get("/v1/registrars/{rid}/statistics/services")]
async fn service_statistics(
    state: web::Data<AppState>,
    principal: Authenticated,
    request_id: RequestId,
    path: web::Path<String>,
    query: web::Query<ServiceStatisticsQuery>,
) -> Result<HttpResponse, ApiError> {
    let ServiceStatisticsQuery { from, to, group_by } = query.into_inner();
    let query = StatisticsQuery { from, to, group_by };
    let report = rekisteri_clients::statistics::service_statistics;
    statistics(state, principal, request_id, path.into_inner(), query, report).await
}
