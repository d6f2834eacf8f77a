//! A registrar's service areas and its users' rights to them (AX-4, AC-11).

use actix_web::{HttpResponse, get, patch, post, web};
use rekisteri_accounts::service_areas::{ServiceArea, ServiceAreaGrant};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::accounts::EndGrantBody;
use crate::extract::{Json, parse_time};
use crate::principal::{Authenticated, StaffOnly};
use crate::problem::{ApiError, Problem};
use crate::{AppState, RunBlocking};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_service_areas)
        .service(create_service_area)
        .service(list_grants)
        .service(grant_area)
        .service(end_grant);
}

#[derive(Serialize, ToSchema)]
pub struct ServiceAreaBody {
    pub id: String,
    pub registrar_id: String,
    #[schema(example = "home_care")]
    pub code: String,
    pub name: String,
    /// The service type codes that belong to the area; a service's `service_type` is one of them.
    pub service_types: Vec<String>,
}

impl From<ServiceArea> for ServiceAreaBody {
    fn from(a: ServiceArea) -> Self {
        Self {
            id: a.id,
            registrar_id: a.registrar_id,
            code: a.code,
            name: a.name,
            service_types: a.service_types,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ServiceAreaList {
    pub items: Vec<ServiceAreaBody>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewServiceAreaBody {
    #[schema(example = "home_care", pattern = "^[a-z0-9_-]{1,64}$")]
    pub code: String,
    #[schema(example = "Kotihoito")]
    pub name: String,
    #[schema(schema_with = crate::contract::code_list)]
    pub service_types: Vec<String>,
}

/// The registrar's service areas.
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id; an admin may name the registrar by its OID instead")),
    responses(
        (status = 200, body = ServiceAreaList),
    )
)]
#[get("/v1/registrars/{rid}/service-areas")]
async fn list_service_areas(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let items = state
        .run(move |conn, _| {
            Ok(rekisteri_accounts::service_areas::list_service_areas(
                conn,
                &principal.0,
                &rid,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ServiceAreaList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Define a service area with its service types (the registrar's main users, admins).
#[utoipa::path(
    tag = "clients",
    params(("rid" = String, Path, description = "Registrar (organisation) id; an admin may name the registrar by its OID instead")),
    request_body = NewServiceAreaBody,
    responses(
        (status = 201, body = ServiceAreaBody),
        (status = 409, description = "The code or a service type is taken", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/service-areas")]
async fn create_service_area(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
    body: Json<NewServiceAreaBody>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let body = body.into_inner();
    let now = state.clock.now();
    let area = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::service_areas::create_service_area(
                conn,
                &state.register(),
                &principal.0,
                &rid,
                rekisteri_accounts::service_areas::NewServiceArea {
                    code: body.code,
                    name: body.name,
                    service_types: body.service_types,
                },
                now,
            )?)
        })
        .await?;
    Ok(HttpResponse::Created().json(ServiceAreaBody::from(area)))
}

#[derive(Serialize, ToSchema)]
pub struct ServiceAreaGrantBody {
    pub id: String,
    pub registrar_id: String,
    pub account_id: String,
    pub service_area_id: String,
    pub valid_from: String,
    #[schema(schema_with = crate::contract::time_or_date_or_null)]
    pub valid_until: Option<String>,
}

impl From<ServiceAreaGrant> for ServiceAreaGrantBody {
    fn from(g: ServiceAreaGrant) -> Self {
        Self {
            id: g.id,
            registrar_id: g.registrar_id,
            account_id: g.account_id,
            service_area_id: g.service_area_id,
            valid_from: rekisteri_audit::format_time(g.valid_from),
            valid_until: g.valid_until.map(rekisteri_audit::format_time),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ServiceAreaGrantList {
    pub items: Vec<ServiceAreaGrantBody>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceAreaGrantRequest {
    pub service_area_id: String,
    /// RFC 3339 or a date; default now.
    #[schema(schema_with = crate::contract::time_or_date_or_null)]
    pub valid_from: Option<String>,
    #[schema(schema_with = crate::contract::time_or_date_or_null)]
    pub valid_until: Option<String>,
}

/// The account's service-area rights, ended ones included (the history of rights, AC-8).
#[utoipa::path(
    tag = "accounts",
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 200, body = ServiceAreaGrantList),
        StaffOnly,
    )
)]
#[get("/v1/accounts/{id}/service-areas")]
async fn list_grants(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let items = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::service_areas::service_area_grants(
                conn,
                &state.register(),
                &principal.0,
                &id,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ServiceAreaGrantList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Grant a registrar user a right to a service area for a validity period (AX-4, AC-11).
#[utoipa::path(
    tag = "accounts",
    params(("id" = String, Path, description = "Account id")),
    request_body = ServiceAreaGrantRequest,
    responses(
        (status = 201, body = ServiceAreaGrantBody),
    )
)]
#[post("/v1/accounts/{id}/service-areas")]
async fn grant_area(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
    body: Json<ServiceAreaGrantRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let body = body.into_inner();
    let valid_from = parse_time("valid_from", body.valid_from.as_deref())?;
    let valid_until = parse_time("valid_until", body.valid_until.as_deref())?;
    let now = state.clock.now();
    let grant = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::service_areas::grant_service_area(
                conn,
                &state.register(),
                &principal.0,
                &id,
                &body.service_area_id,
                valid_from,
                valid_until,
                now,
            )?)
        })
        .await?;
    Ok(HttpResponse::Created().json(ServiceAreaGrantBody::from(grant)))
}

/// End a service-area right (AC-11): it stops at that moment, and ending it now ends the
/// account's open sessions. The grant is kept as history.
#[utoipa::path(
    tag = "accounts",
    params(("id" = String, Path, description = "Account id"), ("grant_id" = String, Path, description = "Service-area grant id")),
    request_body = EndGrantBody,
    responses(
        (status = 200, body = ServiceAreaGrantBody),
        (status = 409, description = "The right has already ended", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/accounts/{id}/service-areas/{grant_id}")]
async fn end_grant(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<(String, String)>,
    body: Json<EndGrantBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, grant_id) = path.into_inner();
    let valid_until = parse_time("valid_until", body.into_inner().valid_until.as_deref())?;
    let now = state.clock.now();
    let grant = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::service_areas::end_service_area(
                conn,
                &state.register(),
                &principal.0,
                &id,
                &grant_id,
                valid_until,
                now,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ServiceAreaGrantBody::from(grant)))
}
