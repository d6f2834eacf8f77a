//! The audit trail over HTTP (AU-5..AU-7): a registrar's usage and disclosure logs for its
//! auditors, the platform's security events and the chain verification for admins, exports.
//!
//! Reading a log is itself a use of personal data, so every query writes a usage entry into the
//! registrar's own log before it answers (AU-1, AU-4).
//!
//! A provider's auditors read, of the usage log of a registrar the provider works for, the
//! entries that name the provider as their log controller: its own staff's (AU-1); the other
//! log paths stay the registrar's own.

use actix_web::http::header;
use actix_web::{HttpResponse, get, post, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rekisteri_accounts::{Permission, Principal, UsageLogReach};
use rekisteri_audit::query::{Cursor, Filter, Page};
use rekisteri_audit::{AccessBasis, ActorKind, AuditContext, DataUse, LogKind, Outcome};
use rekisteri_core::{PersonalIdentityCode, TemporaryCodesAllowed};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::extract::{Json, parse_time};
use crate::middleware::RequestId;
use crate::principal::{Authenticated, CitizenAuthenticated, CitizenOnly};
use crate::problem::{ApiError, Problem, ProblemType, problem_responses};
use crate::{AppState, RunBlocking};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(verify)
        .service(security_events)
        .service(usage)
        .service(usage_search)
        .service(disclosures)
        .service(export)
        .service(supervision_report)
        .service(own_usage);
}

/// Query parameters of the log listings. Times are RFC 3339 (`2026-11-25T08:00:00Z`) or dates
/// (`2026-11-25`, midnight UTC); `to` is exclusive.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Entries of one user (account id).
    user: Option<String>,
    /// Usage: the data kind (e.g. `client`); disclosures: the recipient kind.
    kind: Option<String>,
    #[param(value_type = Option<crate::contract::TimeOrDate>, inline)]
    from: Option<String>,
    #[param(value_type = Option<crate::contract::TimeOrDate>, inline)]
    to: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Entries per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

impl LogQuery {
    /// The filter, cursor and page size the query asks for.
    fn page(self) -> Result<(Filter, Option<Cursor>, i64), ApiError> {
        let filter = Filter {
            actor_id: self.user,
            kind: self.kind,
            from: parse_time("from", self.from.as_deref())?,
            to: parse_time("to", self.to.as_deref())?,
            ..Filter::default()
        };
        Ok((filter, decode_cursor(self.cursor.as_deref())?, limit(self.limit)?))
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SecurityQuery {
    /// One organisation's events; `platform` for the platform's own.
    organisation: Option<String>,
    /// The event type, e.g. `login_failed`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    event_type: Option<String>,
    user: Option<String>,
    #[param(value_type = Option<crate::contract::TimeOrDate>, inline)]
    from: Option<String>,
    #[param(value_type = Option<crate::contract::TimeOrDate>, inline)]
    to: Option<String>,
    cursor: Option<String>,
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// A page of log entries, newest first. Each entry has the fields its chain hash covers, in the
/// form of the JSON Lines export.
#[derive(Serialize, ToSchema)]
pub struct EntryPage {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<serde_json::Value>,
    /// Present when more entries match: pass it as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonSearch {
    /// The person's identity code; it never appears in a URL (api.md). Only the canonical form is accepted (CL-2): upper case, no surrounding whitespace.
    #[schema(value_type = String, example = "131052-308T")]
    pub identity_code: String,
    #[schema(schema_with = crate::contract::time_or_date_or_null)]
    pub from: Option<String>,
    #[schema(schema_with = crate::contract::time_or_date_or_null)]
    pub to: Option<String>,
    pub cursor: Option<String>,
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct BreakBody {
    pub chain_id: String,
    pub seq: i64,
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct VerifyBody {
    /// True when every chain and every signed checkpoint verifies.
    pub intact: bool,
    pub chains: u64,
    pub entries: u64,
    pub signed_checkpoints: u64,
    /// The first break of each broken chain.
    pub breaks: Vec<BreakBody>,
}

fn encode_cursor(cursor: &Cursor) -> String {
    let text = match cursor {
        Cursor::Seq(seq) => format!("s|{seq}"),
        Cursor::Time {
            occurred_at,
            chain_id,
            seq,
        } => format!(
            "t|{}|{seq}|{chain_id}",
            occurred_at.assume_utc().unix_timestamp_nanos() / 1000
        ),
    };
    URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(value: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    let invalid = || {
        ApiError::BusinessRule(crate::problem::FieldError::new(
            "cursor",
            "is not a cursor this listing returned",
        ))
    };
    let bytes = URL_SAFE_NO_PAD.decode(value).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(4, '|');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("s"), Some(seq), None, None) => Ok(Some(Cursor::Seq(seq.parse().map_err(|_| invalid())?))),
        (Some("t"), Some(micros), Some(seq), Some(chain)) => {
            let micros: i128 = micros.parse().map_err(|_| invalid())?;
            let at = time::OffsetDateTime::from_unix_timestamp_nanos(micros * 1000).map_err(|_| invalid())?;
            Ok(Some(Cursor::Time {
                occurred_at: rekisteri_db::to_primitive(at),
                chain_id: chain.to_owned(),
                seq: seq.parse().map_err(|_| invalid())?,
            }))
        }
        _ => Err(invalid()),
    }
}

fn limit(value: Option<i64>) -> Result<i64, ApiError> {
    match value {
        None => Ok(100),
        Some(n) if (1..=rekisteri_audit::query::MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::field("limit", "must be between 1 and 1000")),
    }
}

/// A registrar's logs are visible only to its own auditors; to everyone else the registrar's
/// audit paths do not exist (AX-4).
fn require_auditor(principal: &Principal, registrar_id: &str) -> Result<(), ApiError> {
    if principal.audits_registrar(registrar_id) {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

problem_responses!(
    /// What a registrar's audit paths answer a caller who does not audit it (AX-4).
    AuditedRegistrar { "404" => "Not a registrar whose logs the caller audits" }
);

fn require(principal: &Principal, permission: Permission) -> Result<(), ApiError> {
    if principal.can(permission) {
        Ok(())
    } else {
        Err(ApiError::problem(
            ProblemType::Forbidden,
            format!("this needs the permission {}", permission.as_str()),
        ))
    }
}

/// What an auditor's query of `registrar_id`'s log leaves in that same log: the request's
/// audit context and the one use it makes.
fn supervision(
    principal: &Principal,
    registrar_id: &str,
    subject_index: Option<[u8; 32]>,
    data_kind: &str,
    request_id: &RequestId,
) -> (AuditContext, DataUse) {
    (
        crate::principal::audit_context(principal, registrar_id, "log supervision", request_id),
        DataUse {
            subject_index,
            data_kind: data_kind.to_owned(),
            data_id: None,
            outcome: Outcome::Used,
        },
    )
}

fn page_body<T>(page: Page<T>, json: impl Fn(T) -> serde_json::Value) -> EntryPage {
    EntryPage {
        next_cursor: page.next.as_ref().map(encode_cursor),
        items: page.items.into_iter().map(json).collect(),
    }
}

fn usage_json(row: rekisteri_audit::UsageRow) -> serde_json::Value {
    rekisteri_audit::export::entry_json(&rekisteri_audit::StoredEntry::Usage(row))
}

fn disclosure_json(row: rekisteri_audit::DisclosureRow) -> serde_json::Value {
    rekisteri_audit::export::entry_json(&rekisteri_audit::StoredEntry::Disclosure(row))
}

fn security_json(row: rekisteri_audit::SecurityRow) -> serde_json::Value {
    rekisteri_audit::export::entry_json(&rekisteri_audit::StoredEntry::Security(row))
}

/// Walk every hash chain and check the signed checkpoints (AU-5).
#[utoipa::path(
    tag = "audit",
    responses(
        (status = 200, description = "The result; `intact` is false when a chain breaks", body = VerifyBody),
    )
)]
#[get("/v1/audit/verify")]
async fn verify(state: web::Data<AppState>, principal: Authenticated) -> Result<HttpResponse, ApiError> {
    require(&principal.0, Permission::ReadSecurityEvents)?;
    // The walk takes connections of its own from the pool, one per worker thread.
    let walker = state.clone();
    let report = web::block(move || {
        let public_key = walker.keyring.audit_signer().map(|s| s.public_key());
        let options = rekisteri_audit::VerifyOptions {
            public_key: public_key.as_deref(),
            checkpoint_interval: walker.audit.options().checkpoint_interval,
            segment_entries: rekisteri_audit::DEFAULT_SEGMENT_ENTRIES,
        };
        rekisteri_audit::verify_all(&walker.pool, &options).map_err(ApiError::from)
    })
    .await??;
    Ok(HttpResponse::Ok().json(VerifyBody {
        intact: report.intact(),
        chains: report.chains,
        entries: report.entries,
        signed_checkpoints: report.signed_checkpoints,
        breaks: report
            .breaks
            .into_iter()
            .map(|b| BreakBody {
                chain_id: b.chain_id,
                seq: b.seq,
                reason: b.reason,
            })
            .collect(),
    }))
}

/// The platform's security events, newest first (AU-3): logins, failures, account changes,
/// retention runs.
#[utoipa::path(
    tag = "audit",
    params(SecurityQuery),
    responses(
        (status = 200, body = EntryPage),
    )
)]
#[get("/v1/audit/security-events")]
async fn security_events(
    state: web::Data<AppState>,
    principal: Authenticated,
    query: web::Query<SecurityQuery>,
) -> Result<HttpResponse, ApiError> {
    require(&principal.0, Permission::ReadSecurityEvents)?;
    let query = query.into_inner();
    let filter = Filter {
        organisation_id: query.organisation,
        actor_id: query.user,
        kind: query.event_type,
        from: parse_time("from", query.from.as_deref())?,
        to: parse_time("to", query.to.as_deref())?,
        subject_candidates: None,
        log_controller_id: None,
    };
    let cursor = decode_cursor(query.cursor.as_deref())?;
    let limit = limit(query.limit)?;
    let page = state
        .run(move |conn, _| {
            rekisteri_audit::query::security_event_entries(conn, &filter, cursor.as_ref(), limit)
                .map_err(ApiError::query)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page_body(page, security_json)))
}

/// Runs a query of `registrar_id`'s usage log and logs it there before answering, as a use of
/// the data of the person with index `subject` when the query is about one. The query covers
/// what the principal reaches of the log (AU-1): the registrar's own auditors all of it, a
/// provider's auditors their own organisation's entries; anyone else gets 404.
#[allow(clippy::too_many_arguments)]
async fn usage_page(
    state: web::Data<AppState>,
    principal: Principal,
    registrar_id: String,
    subject: Option<[u8; 32]>,
    filter: Filter,
    cursor: Option<Cursor>,
    limit: i64,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .run(move |conn, state| {
            let reach = state
                .access_cache
                .usage_log_reach(conn, &principal, &registrar_id)
                .map_err(ApiError::query)?
                .ok_or(ApiError::NotFound)?;
            let filter = Filter {
                log_controller_id: reach.log_controller_id().map(str::to_owned),
                ..filter
            };
            let (mut context, entry) = supervision(&principal, &registrar_id, subject, "usage_log", &request_id);
            if reach != UsageLogReach::Whole && context.actor_kind == ActorKind::Staff {
                // A provider's person, as in every other use of the organiser's register.
                context.actor_kind = ActorKind::ProviderUser;
            }
            state
                .audit
                .read_personal_data(conn, &context, rekisteri_db::to_primitive(state.clock.now()), |conn| {
                    let page =
                        rekisteri_audit::query::usage_entries(conn, &registrar_id, &filter, cursor.as_ref(), limit)
                            .map_err(ApiError::query)?;
                    Ok::<_, ApiError>((page, vec![entry]))
                })
        })
        .await?;
    Ok(HttpResponse::Ok().json(page_body(page, usage_json)))
}

/// The registrar's usage log, newest first (AU-6): for its auditors and its providers'.
///
/// The registrar's auditors read all of it.
/// A provider's auditors, of a registrar the provider works for, read only the entries whose
/// `log_controller_id` is the provider: its own staff's and systems' uses (AU-1).
#[utoipa::path(
    tag = "audit",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), LogQuery),
    responses(
        (status = 200, body = EntryPage),
        AuditedRegistrar,
    )
)]
#[get("/v1/registrars/{rid}/audit/usage")]
async fn usage(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
    query: web::Query<LogQuery>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let (filter, cursor, limit) = query.into_inner().page()?;
    usage_page(
        state,
        principal.0,
        path.into_inner(),
        None,
        filter,
        cursor,
        limit,
        request_id,
    )
    .await
}

/// The registrar's usage entries about one person, found by identity code (AU-6). The search
/// itself is logged as a use of that person's data. A provider's auditors find only the
/// entries whose `log_controller_id` is the provider (AU-1).
#[utoipa::path(
    tag = "audit",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    request_body = PersonSearch,
    responses(
        (status = 200, body = EntryPage),
        AuditedRegistrar,
    )
)]
#[post("/v1/registrars/{rid}/audit/usage/search")]
async fn usage_search(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
    body: Json<PersonSearch>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let code = PersonalIdentityCode::parse(&body.identity_code, TemporaryCodesAllowed::Yes)
        .map_err(|e| ApiError::field("identity_code", e.to_string()))?;
    let subject = rekisteri_audit::subject_index(&state.keyring, &code);
    let filter = Filter {
        subject_candidates: Some(rekisteri_audit::subject_index_candidates(&state.keyring, &code)),
        from: parse_time("from", body.from.as_deref())?,
        to: parse_time("to", body.to.as_deref())?,
        ..Filter::default()
    };
    let cursor = decode_cursor(body.cursor.as_deref())?;
    usage_page(
        state,
        principal.0,
        path.into_inner(),
        Some(subject),
        filter,
        cursor,
        limit(body.limit)?,
        request_id,
    )
    .await
}

/// The registrar's disclosure log, newest first (AU-2, AU-6).
#[utoipa::path(
    tag = "audit",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), LogQuery),
    responses(
        (status = 200, body = EntryPage),
        AuditedRegistrar,
    )
)]
#[get("/v1/registrars/{rid}/audit/disclosures")]
async fn disclosures(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
    query: web::Query<LogQuery>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let principal = principal.0;
    let registrar_id = path.into_inner();
    require_auditor(&principal, &registrar_id)?;
    let (filter, cursor, limit) = query.into_inner().page()?;
    let page = state
        .run(move |conn, state| {
            let (context, entry) = supervision(&principal, &registrar_id, None, "disclosure_log", &request_id);
            state
                .audit
                .read_personal_data(conn, &context, rekisteri_db::to_primitive(state.clock.now()), |conn| {
                    let page = rekisteri_audit::query::disclosure_entries(
                        conn,
                        &registrar_id,
                        &filter,
                        cursor.as_ref(),
                        limit,
                    )
                    .map_err(ApiError::query)?;
                    Ok::<_, ApiError>((page, vec![entry]))
                })
        })
        .await?;
    Ok(HttpResponse::Ok().json(page_body(page, disclosure_json)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `usage` (default) or `disclosure`.
    #[param(pattern = "^(usage|disclosure)$")]
    log: Option<String>,
    /// Start of the range (RFC 3339 or date), inclusive.
    #[param(value_type = crate::contract::TimeOrDate, inline)]
    from: String,
    /// End of the range, exclusive; at most 366 days after `from`.
    #[param(value_type = crate::contract::TimeOrDate, inline)]
    to: String,
}

/// A range of the registrar's log as JSON Lines with the chain hashes (AU-7), oldest first;
/// verify it outside the platform with `tools/verify-audit-export.py`. The range covers at most
/// 366 days (a longer one is a 422 naming `to`); the body is streamed in pages of 5 000 entries
/// (chunked, no `Content-Length`). An error while it streams cuts the body short without
/// its terminating chunk, so a client sees an incomplete transfer, never a shorter export.
#[utoipa::path(
    tag = "audit",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ExportQuery),
    responses(
        (status = 200, description = "JSON Lines (`application/jsonl`, streamed): one log entry per line, each a JSON \
object with `log`, `chain_id` (`usage:<registrar id>` or `disclosure:<registrar id>`), `seq`, `occurred_at`, the entry's fields and its chain hashes \
(`prev_hash`, `hash`). A generator that knows \
no `application/jsonl` can take it as bytes (openapi-python-client: `content_type_overrides: {application/jsonl: \
application/octet-stream}`).", content_type = "application/jsonl", body = String),
        AuditedRegistrar,
        (status = 422, description = "`to` is not after `from`, or the range is longer than 366 days (`business-rule`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/registrars/{rid}/audit/export")]
async fn export(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
    query: web::Query<ExportQuery>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let principal = principal.0;
    let registrar_id = path.into_inner();
    require_auditor(&principal, &registrar_id)?;
    let query = query.into_inner();
    let kind = match query.log.as_deref() {
        None | Some("usage") => LogKind::Usage,
        Some("disclosure") => LogKind::Disclosure,
        Some(_) => return Err(ApiError::field("log", "must be usage or disclosure")),
    };
    let from = parse_time("from", Some(&query.from))?.ok_or_else(|| ApiError::field("from", "is required"))?;
    let to = parse_time("to", Some(&query.to))?.ok_or_else(|| ApiError::field("to", "is required"))?;
    rekisteri_audit::export::check_api_range(from, to)?;
    let chain = rekisteri_audit::chain_id(kind, Some(&registrar_id));
    // The export's own usage entry is durable before the first page is read; the seq range is
    // fixed now, so entries written while the body streams are not part of it.
    let range = {
        let chain = chain.clone();
        state
            .run(move |conn, state| {
                let (context, entry) = supervision(&principal, &registrar_id, None, "audit_export", &request_id);
                state
                    .audit
                    .read_personal_data(conn, &context, rekisteri_db::to_primitive(state.clock.now()), |conn| {
                        let range =
                            rekisteri_audit::query::seq_range(conn, kind, &chain, from, to).map_err(ApiError::query)?;
                        Ok::<_, ApiError>((range, vec![entry]))
                    })
            })
            .await?
    };
    let pages = futures_util::stream::unfold(
        range.map(|(first, last)| (first.saturating_sub(1), last)),
        move |cursor| {
            let state = state.clone();
            let chain = chain.clone();
            async move {
                let (after, last) = cursor?;
                let page = state
                    .run(move |conn, _| {
                        rekisteri_audit::export::export_page(conn, &chain, after, last).map_err(ApiError::from)
                    })
                    .await;
                match page {
                    Ok(Some((lines, _, next))) => Some((Ok(web::Bytes::from(lines)), Some((next, last)))),
                    Ok(None) => None,
                    Err(error) => {
                        log::error!("audit export: a page could not be read, the body is cut short: {error}");
                        Some((Err(std::io::Error::other("the export could not be completed")), None))
                    }
                }
            }
        },
    );
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/jsonl"))
        .streaming(pages))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// Start of the range (RFC 3339 or date), inclusive.
    #[param(value_type = crate::contract::TimeOrDate, inline)]
    from: String,
    /// End of the range, exclusive; at most 92 days after `from`.
    #[param(value_type = crate::contract::TimeOrDate, inline)]
    to: String,
    /// `many-clients`: the number of distinct clients in one day that is unusual (default 50).
    threshold: Option<u64>,
}

/// A supervision report; `rows` depend on the report.
#[derive(Serialize, ToSchema)]
pub struct ReportBody {
    pub report: String,
    #[schema(value_type = String, format = DateTime)]
    pub from: String,
    #[schema(value_type = String, format = DateTime)]
    pub to: String,
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Value>,
    /// True when the listing stopped at 10 000 rows: narrow the range.
    pub truncated: bool,
}

/// Supervision reports for the registrar's data-protection officer (AU-10):
/// `special-reasons` (accesses on a special reason), `outside-office-hours` (uses of client data
/// outside 07:00–18:00 Finnish time on working days), `many-clients` (users who used at least
/// `threshold` distinct clients' data in one day), `disclosures-by-recipient`.
#[utoipa::path(
    tag = "audit",
    params(
        ("rid" = String, Path, description = "Registrar (organisation) id"),
        ("name" = String, Path, description = "special-reasons, outside-office-hours, many-clients or disclosures-by-recipient"),
        ReportQuery
    ),
    responses(
        (status = 200, body = ReportBody),
        (status = 404, description = "No such report, or not a registrar whose logs the caller audits", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`to` is not after `from`, or the range is longer than 92 days (`business-rule`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/registrars/{rid}/audit/reports/{name}")]
async fn supervision_report(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<(String, String)>,
    query: web::Query<ReportQuery>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    use rekisteri_audit::reports::{self, Report, ReportKind, ReportRequest};
    let principal = principal.0;
    let (registrar_id, name) = path.into_inner();
    require_auditor(&principal, &registrar_id)?;
    let kind = ReportKind::from_name(&name).ok_or(ApiError::NotFound)?;
    let query = query.into_inner();
    let from = parse_time("from", Some(&query.from))?.ok_or_else(|| ApiError::field("from", "is required"))?;
    let to = parse_time("to", Some(&query.to))?.ok_or_else(|| ApiError::field("to", "is required"))?;
    let request = ReportRequest::new(kind, from, to, query.threshold)?;
    let report = state
        .run(move |conn, state| {
            let context = crate::principal::audit_context(&principal, &registrar_id, "log supervision", &request_id);
            let at = rekisteri_db::to_primitive(state.clock.now());
            Ok::<_, ApiError>(reports::read_report(
                &state.audit,
                conn,
                &context,
                at,
                &registrar_id,
                &request,
            )?)
        })
        .await?;
    let (rows, truncated) = match report {
        Report::Entries(listing) => (listing.rows.into_iter().map(usage_json).collect(), listing.truncated),
        Report::ManyClients(rows) => (
            rows.into_iter()
                .map(|r| {
                    serde_json::json!({"actor_id": r.actor_id, "actor_name": r.actor_name,
                        "day": r.day.to_string(), "distinct_clients": r.distinct_clients})
                })
                .collect(),
            false,
        ),
        Report::Recipients(rows) => (
            rows.into_iter()
                .map(|r| {
                    serde_json::json!({"recipient_kind": r.recipient_kind, "recipient_id": r.recipient_id,
                        "recipient_name": r.recipient_name, "disclosures": r.disclosures})
                })
                .collect(),
            false,
        ),
    };
    Ok(HttpResponse::Ok().json(ReportBody {
        report: kind.name().to_owned(),
        from: rekisteri_audit::format_time(request.from),
        to: rekisteri_audit::format_time(request.to),
        rows,
        truncated,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Entries per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// One use of the caller's data.
#[derive(Serialize, ToSchema)]
pub struct OwnUsageBody {
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: String,
    pub registrar_id: String,
    /// The organisation that used the data.
    pub organisation: Option<String>,
    pub data_kind: String,
    pub purpose: String,
    pub access_basis: String,
}

#[derive(Serialize, ToSchema)]
pub struct OwnUsagePage {
    pub items: Vec<OwnUsageBody>,
    pub next_cursor: Option<String>,
}

/// Who has used my data (AU-6): the organisations and purposes, newest first, across every
/// registrar; employees' personal details are not shown. For citizens signed in through a
/// trusted identity provider.
#[utoipa::path(
    tag = "audit",
    params(PageQuery),
    responses(
        (status = 200, body = OwnUsagePage),
        CitizenOnly,
    )
)]
#[get("/v1/me/usage-log")]
async fn own_usage(
    state: web::Data<AppState>,
    citizen: CitizenAuthenticated,
    query: web::Query<PageQuery>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let citizen = citizen.0;
    let query = query.into_inner();
    let cursor = decode_cursor(query.cursor.as_deref())?;
    let limit = limit(query.limit)?;
    let page = state
        .run(move |conn, state| {
            let subject = rekisteri_audit::subject_index(&state.keyring, &citizen.identity_code);
            // The citizen's own read goes to the platform's usage log, under the citizen's own index.
            let context = AuditContext {
                registrar_id: "platform".to_owned(),
                log_controller_id: "platform".to_owned(),
                actor_kind: ActorKind::Citizen,
                actor_id: format!("citizen:{}", rekisteri_crypto::to_hex(&subject[..8])),
                actor_name: None,
                on_behalf_of: None,
                service_unit_oid: None,
                purpose: "right of access".to_owned(),
                access_basis: AccessBasis::OwnData,
                special_reason: None,
                request_id: request_id.0.clone(),
                calling_system: Some(citizen.provider.clone()),
            };
            let entry = DataUse {
                subject_index: Some(subject),
                data_kind: "own_usage_log".to_owned(),
                data_id: None,
                outcome: Outcome::Used,
            };
            state
                .audit
                .read_personal_data(conn, &context, rekisteri_db::to_primitive(state.clock.now()), |conn| {
                    let candidates = rekisteri_audit::subject_index_candidates(&state.keyring, &citizen.identity_code);
                    let page = rekisteri_audit::query::usage_about_person(conn, &candidates, cursor.as_ref(), limit)
                        .map_err(ApiError::query)?;
                    let ids: Vec<String> = page.items.iter().map(|u| u.registrar_id.clone()).collect();
                    let names: std::collections::HashMap<String, String> =
                        rekisteri_accounts::directory::organisation_names(conn, &ids)
                            .map_err(ApiError::query)?
                            .into_iter()
                            .collect();
                    Ok::<_, ApiError>(((page, names), vec![entry]))
                })
        })
        .await?;
    let (page, names) = page;
    Ok(HttpResponse::Ok().json(OwnUsagePage {
        next_cursor: page.next.as_ref().map(encode_cursor),
        items: page
            .items
            .into_iter()
            .map(|u| OwnUsageBody {
                occurred_at: rekisteri_audit::format_time(u.occurred_at),
                organisation: names.get(&u.registrar_id).cloned(),
                registrar_id: u.registrar_id,
                data_kind: u.data_kind,
                purpose: u.purpose,
                access_basis: u.access_basis,
            })
            .collect(),
    }))
}
