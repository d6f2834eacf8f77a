//! Liveness and readiness (PL-10).

use std::time::Duration;

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

/// The service can take traffic: the database answers, its schema is current and the keys are
/// loaded and match the database.
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
    let checked = web::block(move || -> Result<Vec<String>, String> {
        let mut conn = pool.get_timeout(Duration::from_secs(2)).map_err(|e| e.to_string())?;
        rekisteri_db::migrations::pending(&mut conn).map_err(|e| e.to_string())
    })
    .await;
    let mut failures = Vec::new();
    match checked {
        Ok(Ok(pending)) if pending.is_empty() => {}
        Ok(Ok(pending)) => failures.push(FieldError::new(
            "migrations",
            format!("{} migrations are pending; run `rekisteri migrate`", pending.len()),
        )),
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
            },
        });
    }
    let mut problem = Problem::new(ProblemType::NotReady);
    problem.detail = Some("One or more readiness checks failed.".to_owned());
    problem.errors = failures;
    problem.response()
}
