//! Liveness and readiness (PL-10).

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::AppState;
use crate::problem::{FieldError, Problem, ProblemType};

pub fn configure(config: &mut ServiceConfig) {
    config.service(live).service(ready);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    #[schema(example = "live")]
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    pub status: &'static str,
    pub checks: ReadinessChecks,
}

/// Each check is `ok` when ready.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessChecks {
    #[schema(example = "ok")]
    pub database: &'static str,
    #[schema(example = "ok")]
    pub migrations: &'static str,
    #[schema(example = "ok")]
    pub keys: &'static str,
    /// The audit log can be written (a full or read-only disk fails this).
    #[schema(example = "ok")]
    pub audit_log: &'static str,
}

/// The process is running.
#[utoipa::path(
    tag = "health",
    security(()),
    responses((status = 200, description = "The process is alive", body = Liveness))
)]
#[get("/health/live")]
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Liveness { status: "live" })
}

/// The service can take traffic: the database answers, its schema is current, the keys are
/// loaded and match the database, and the audit log can be written.
///
/// After a write of the audit log failed for want of the database (a full or read-only disk, a
/// lost connection), this tries the log again and stays 503 until it can be written; the
/// recovery is recorded as an `audit_log_restored` security event. No restart is needed.
#[utoipa::path(
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready; `errors` names the failing checks", body = Problem,
         content_type = "application/problem+json"),
    )
)]
#[get("/health/ready")]
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let keys_ok = state.keys_verified;
    let pool = state.pool.clone();
    let audit = state.audit.clone();
    let timeout = state.request_db_timeout;
    let checked = web::block(move || -> Result<(Vec<String>, Result<(), String>), String> {
        let mut conn = pool.get_timeout(timeout).map_err(|e| e.to_string())?;
        let pending = rekisteri_db::migrations::pending(&mut conn).map_err(|e| e.to_string())?;
        drop(conn);
        // Through the writer's own connection: checks (and replaces) it, and while the log is
        // failing tries to write it.
        Ok((pending, audit.probe().map_err(|e| e.to_string())))
    })
    .await;
    let mut failures = Vec::new();
    match checked {
        Ok(Ok((pending, audit_log))) => {
            if !pending.is_empty() {
                failures.push(FieldError::new(
                    "migrations",
                    format!("{} migrations are pending; run `rekisteri migrate`", pending.len()),
                ));
            }
            if let Err(cause) = audit_log {
                log::warn!("readiness: the audit log cannot be written: {cause}");
                failures.push(FieldError::new(
                    "audit_log",
                    "the audit log cannot be written (is the database's disk full or read-only?)",
                ));
            }
        }
        Ok(Err(cause)) => {
            log::warn!("readiness: database check failed: {cause}");
            failures.push(FieldError::new("database", "the database does not answer"));
        }
        Err(cause) => {
            log::warn!("readiness: check did not run: {cause}");
            failures.push(FieldError::new("database", "the database check did not run"));
        }
    }
    if !keys_ok {
        failures.push(FieldError::new(
            "keys",
            "the encryption keys were not verified against the database",
        ));
    }
    if failures.is_empty() {
        return HttpResponse::Ok().json(Readiness {
            status: "ready",
            checks: ReadinessChecks {
                database: "ok",
                migrations: "ok",
                keys: "ok",
                audit_log: "ok",
            },
        });
    }
    let mut problem = Problem::new(ProblemType::NotReady);
    problem.detail = Some("One or more readiness checks failed.".to_owned());
    problem.errors = failures;
    problem.response()
}
