//! `/metrics` in the Prometheus (OpenMetrics) text format (PL-10; issue 21): requests and their latency by
//! route pattern, the audit writer's group commits, the connection pool, the scheduled jobs and
//! their leases, the outboxes' depth and the VTJ feed's lag.
//!
//! Who may read it: an admin, or a scraper with the token configured as
//! `REKISTERI_METRICS_TOKEN` (compared by digest, so its length and bytes do not leak through
//! timing). No label holds personal data or a raw path: requests are labelled by the matched
//! route *pattern*, a method outside the standard ones is `other`, and the only ids are those
//! of registrars (organisations) and of server instances.

use std::sync::LazyLock;

use actix_web::dev::ServiceRequest;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, get, web};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::principal::Authenticated;
use crate::problem::{ApiError, Problem, ProblemType};
use crate::{AppState, RunBlocking};

/// The content type of the exposition: OpenMetrics text, which Prometheus scrapes natively.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn configure(config: &mut ServiceConfig) {
    config.service(metrics);
}

/// The scrape token's SHA-256 digest; the token itself is not kept.
#[derive(Clone)]
pub struct ScrapeToken([u8; 32]);

impl ScrapeToken {
    pub fn new(token: &str) -> Self {
        Self(digest(token))
    }

    fn matches(&self, presented: &str) -> bool {
        // Both sides are digests of equal length: comparing them says nothing about the token.
        digest(presented) == self.0
    }
}

impl std::fmt::Debug for ScrapeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScrapeToken(****)")
    }
}

fn digest(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref());
    out
}

/// Marks a request that presented the scrape token (the middleware lets it past account
/// authentication; only `/metrics` accepts it).
#[derive(Clone, Copy)]
pub struct Scraper;

/// Whether `req` is a scrape of `/metrics` with the configured token.
pub fn is_scrape(req: &ServiceRequest) -> bool {
    if req.path() != "/metrics" {
        return false;
    }
    let Some(expected) = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| s.metrics_token.clone())
    else {
        return false;
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let matched = presented.is_some_and(|token| expected.matches(token));
    if matched {
        req.extensions_mut().insert(Scraper);
    }
    matched
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: &'static str,
}

struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

fn latency_histogram() -> Histogram {
    // 0.1 ms … about 3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

static HTTP: LazyLock<HttpMetrics> = LazyLock::new(|| HttpMetrics {
    requests: Family::default(),
    duration: Family::new_with_constructor(latency_histogram),
});

/// A method as a label: the standard ones by name, anything else as `other`, so a client cannot
/// grow the series without bound.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts one answered request (called by the request middleware with the route pattern).
pub fn observe_request(route: &str, method: &actix_web::http::Method, status: u16, seconds: f64) {
    let method = method_label(method);
    HTTP.requests
        .get_or_create(&RequestLabels {
            route: route.to_owned(),
            method,
            status,
        })
        .inc();
    HTTP.duration
        .get_or_create(&RouteLabels {
            route: route.to_owned(),
            method,
        })
        .observe(seconds);
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HolderLabels {
    job: String,
    holder: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboxLabels {
    outbox: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegistrarLabels {
    registrar_id: String,
}

/// What the database says at the moment of the scrape.
struct Snapshot {
    jobs: Vec<rekisteri_db::lease::JobState>,
    will_service_outbox: i64,
    notification_outbox: i64,
    vtj: Vec<rekisteri_vtj::sync::FeedLag>,
    now: time::PrimitiveDateTime,
}

fn seconds_between(from: time::PrimitiveDateTime, to: time::PrimitiveDateTime) -> f64 {
    (to - from).as_seconds_f64()
}

/// A gauge of seconds.
type SecondsGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// Gauges of seconds by `L` (a float gauge's family needs its constructor named).
fn seconds_family<L: Clone + std::hash::Hash + Eq>() -> Family<L, SecondsGauge, fn() -> SecondsGauge> {
    Family::new_with_constructor(SecondsGauge::default)
}

/// The exposition: the process's own series and the snapshot's.
fn render(state: &AppState, snapshot: &Snapshot) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("rekisteri");
    registry.register(
        "http_requests",
        "Answered requests by route pattern, method and status",
        HTTP.requests.clone(),
    );
    registry.register(
        "http_request_duration_seconds",
        "Time from the request's arrival to its answer, by route pattern and method",
        HTTP.duration.clone(),
    );
    registry.register(
        "blocking_calls",
        "Database work handed off the event loop to the blocking threads; per answered request, the hops a request makes",
        state.blocking_calls.clone(),
    );
    let audit = rekisteri_audit::metrics::writer_metrics();
    registry.register(
        "audit_group_commit_entries",
        "Audit entries per group commit of the writer",
        audit.group_entries.clone(),
    );
    registry.register(
        "audit_group_commit_seconds",
        "Time of a group commit of the audit writer",
        audit.commit_seconds.clone(),
    );
    registry.register(
        "audit_group_commit_failures",
        "Group commits of the audit writer that failed",
        audit.failures.clone(),
    );

    let pool = state.pool.state();
    let pool_gauge = |name: &str, help: &str, value: i64, registry: &mut Registry| {
        let gauge: Gauge = Gauge::default();
        gauge.set(value);
        registry.register(name, help, gauge);
    };
    pool_gauge(
        "db_pool_size",
        "Connections the pool may open",
        i64::from(pool.max_size),
        &mut registry,
    );
    pool_gauge(
        "db_pool_connections",
        "Connections open now",
        i64::from(pool.connections),
        &mut registry,
    );
    pool_gauge(
        "db_pool_in_use",
        "Connections lent to a request or job now",
        i64::from(pool.connections.saturating_sub(pool.idle_connections)),
        &mut registry,
    );
    pool_gauge(
        "db_pool_waiting",
        "Callers waiting for a connection now",
        pool.waiting,
        &mut registry,
    );

    let failures = Family::<JobLabels, Gauge>::default();
    let last_success = Family::<JobLabels, Gauge>::default();
    let last_duration = seconds_family::<JobLabels>();
    let since_last_run = seconds_family::<JobLabels>();
    let lease = Family::<HolderLabels, Gauge>::default();
    for job in &snapshot.jobs {
        let labels = JobLabels { job: job.job.clone() };
        failures.get_or_create(&labels).set(i64::from(job.failures));
        if let Some(outcome) = &job.last_outcome {
            last_success.get_or_create(&labels).set(i64::from(outcome == "ok"));
        }
        if let (Some(started), Some(finished)) = (job.last_started_at, job.last_finished_at)
            && finished >= started
        {
            last_duration
                .get_or_create(&labels)
                .set(seconds_between(started, finished));
            since_last_run
                .get_or_create(&labels)
                .set(seconds_between(finished, snapshot.now).max(0.0));
        }
        if let (Some(holder), Some(expires)) = (&job.holder, job.expires_at)
            && expires >= snapshot.now
        {
            lease
                .get_or_create(&HolderLabels {
                    job: job.job.clone(),
                    holder: holder.clone(),
                })
                .set(1);
        }
    }
    registry.register(
        "job_consecutive_failures",
        "Failed runs of the job since its last success (it retries with backoff)",
        failures,
    );
    registry.register(
        "job_last_run_success",
        "1 when the job's last run succeeded",
        last_success,
    );
    registry.register(
        "job_last_run_duration_seconds",
        "Duration of the job's last run",
        last_duration,
    );
    registry.register(
        "job_seconds_since_last_run",
        "Time since the job's last run finished",
        since_last_run,
    );
    registry.register(
        "job_lease_held",
        "1 for the server instance holding the job's lease",
        lease,
    );

    let outbox = Family::<OutboxLabels, Gauge>::default();
    outbox
        .get_or_create(&OutboxLabels { outbox: "will_service" })
        .set(snapshot.will_service_outbox);
    outbox
        .get_or_create(&OutboxLabels {
            outbox: "notifications",
        })
        .set(snapshot.notification_outbox);
    registry.register("outbox_depth", "Items waiting for delivery", outbox);

    let staged = Family::<RegistrarLabels, Gauge>::default();
    let lag = seconds_family::<RegistrarLabels>();
    for feed in &snapshot.vtj {
        let labels = RegistrarLabels {
            registrar_id: feed.registrar_id.clone(),
        };
        staged.get_or_create(&labels).set(feed.staged);
        if let Some(completed) = feed.last_completed_at {
            lag.get_or_create(&labels)
                .set(seconds_between(completed, snapshot.now).max(0.0));
        }
    }
    registry.register("vtj_staged_changes", "Fetched VTJ changes not yet applied", staged);
    registry.register(
        "vtj_seconds_since_last_sync",
        "Time since the registrar's last completed VTJ sync",
        lag,
    );

    let mut out = String::new();
    encode(&mut out, &registry)?;
    Ok(out)
}

/// The server's figures in the Prometheus text format, for an admin or the configured scrape
/// token. No label holds personal data.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "The exposition in the OpenMetrics text format", body = String,
         content_type = "application/openmetrics-text"),
        (status = 403, description = "Neither an admin nor the scrape token", body = Problem,
         content_type = "application/problem+json"),
    )
)]
#[get("/metrics")]
async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let scraper = req.extensions().get::<Scraper>().is_some();
    if !scraper {
        let principal = Authenticated::extract(&req).await?;
        if !principal.0.is_admin() {
            return Err(ApiError::problem(
                ProblemType::Forbidden,
                "The metrics are for admins and the configured scrape token.",
            ));
        }
    }
    let snapshot = state
        .run(|conn, state| {
            let jobs = rekisteri_db::lease::list(conn).map_err(ApiError::internal)?;
            let will_service_outbox = rekisteri_consent::will_service_outbox_depth(conn).map_err(ApiError::internal)?;
            let notification_outbox =
                rekisteri_accounts::inactivity::undelivered_notifications(conn).map_err(ApiError::internal)?;
            let vtj = rekisteri_vtj::sync::feed_lag(conn).map_err(ApiError::internal)?;
            Ok(Snapshot {
                jobs,
                will_service_outbox,
                notification_outbox,
                vtj,
                now: rekisteri_db::to_primitive(state.clock.now()),
            })
        })
        .await?;
    let body = render(&state, &snapshot).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, CONTENT_TYPE))
        .body(body))
}
