//! Organisations and their service units (AC-1).

use actix_web::{HttpResponse, get, patch, post, web};
use rekisteri_accounts::{
    ContactDetails, NewOrganisation, Organisation, OrganisationKind, RegistrarContacts, ServiceUnit,
};
use rekisteri_core::Oid;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::extract::Json;
use crate::principal::{Authenticated, StaffOnly};
use crate::problem::{ApiError, Problem};
use crate::{AppState, RunBlocking};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_organisations)
        .service(create_organisation)
        .service(show_organisation)
        .service(update_organisation)
        .service(list_organisation_service_units)
        .service(add_unit);
}

#[derive(Serialize, ToSchema)]
pub struct OrganisationBody {
    /// Also the registrar id of the organisation's registers.
    pub id: String,
    pub name: String,
    #[schema(example = "municipality")]
    pub kind: String,
    #[schema(example = "1.2.246.10.1234567")]
    pub oid: Option<String>,
    #[schema(example = "0201256-6")]
    pub business_id: Option<String>,
    /// Whether client data needs a strong-authentication session (AX-2).
    pub strong_authentication_required: bool,
    /// A registrar's contact person and data-protection officer, shown to the people whose
    /// records it keeps (source 000 §4).
    pub contacts: RegistrarContacts,
    /// The organisation's DVV permit reference, written into its VTJ queries' usage entries
    /// (VT-9); absent: the platform's setting applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dvv_permit_reference: Option<String>,
    /// The municipalities whose residents the registrar's register serves (Statistics Finland's
    /// codes): a client moving to one of another registrar's is kept and that registrar notified;
    /// to a municipality no registrar serves, their services close (VT-4).
    pub municipality_codes: Vec<String>,
}

impl From<Organisation> for OrganisationBody {
    fn from(o: Organisation) -> Self {
        Self {
            id: o.id,
            name: o.name,
            kind: o.kind.as_str().to_owned(),
            oid: o.oid.map(|oid| oid.to_string()),
            business_id: o.business_id,
            strong_authentication_required: o.strong_authentication_required,
            contacts: o.contacts,
            dvv_permit_reference: o.dvv_permit_reference,
            municipality_codes: o.municipality_codes,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganisationBody {
    #[schema(schema_with = crate::contract::name_200)]
    pub name: String,
    #[schema(schema_with = crate::contract::organisation_kind)]
    pub kind: OrganisationKind,
    #[schema(value_type = Option<String>, example = "1.2.246.10.1234567")]
    pub oid: Option<Oid>,
    pub business_id: Option<String>,
    /// Default true.
    pub strong_authentication_required: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct OrganisationList {
    pub items: Vec<OrganisationBody>,
}

/// Organisations the caller may see: all for admins, otherwise its own.
#[utoipa::path(
    tag = "accounts",
    responses(
        (status = 200, body = OrganisationList),
        StaffOnly,
    )
)]
#[get("/v1/organisations")]
async fn list_organisations(state: web::Data<AppState>, principal: Authenticated) -> Result<HttpResponse, ApiError> {
    let items = state
        .run(move |conn, _| Ok(rekisteri_accounts::list_organisations(conn, &principal.0)?))
        .await?;
    Ok(HttpResponse::Ok().json(OrganisationList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Create an organisation (admins).
#[utoipa::path(
    tag = "accounts",
    request_body = NewOrganisationBody,
    responses(
        (status = 201, body = OrganisationBody),
        (status = 409, description = "The OID is taken", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/organisations")]
async fn create_organisation(
    state: web::Data<AppState>,
    principal: Authenticated,
    body: Json<NewOrganisationBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let now = state.clock.now();
    let new = NewOrganisation {
        name: body.name,
        kind: body.kind,
        oid: body.oid,
        business_id: body.business_id,
        strong_authentication_required: body.strong_authentication_required,
    };
    let organisation = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::create_organisation(
                conn,
                &state.register(),
                Some(&principal.0),
                new,
                now,
            )?)
        })
        .await?;
    Ok(HttpResponse::Created().json(OrganisationBody::from(organisation)))
}

/// One organisation, by id or OID.
#[utoipa::path(
    tag = "accounts",
    params(("oid" = String, Path, description = "The organisation's OID, or its id")),
    responses(
        (status = 200, body = OrganisationBody),
        StaffOnly,
    )
)]
#[get("/v1/organisations/{oid}")]
async fn show_organisation(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = path.into_inner();
    let organisation = state
        .run(move |conn, _| Ok(rekisteri_accounts::find_organisation(conn, Some(&principal.0), &key)?))
        .await?;
    Ok(HttpResponse::Ok().json(OrganisationBody::from(organisation)))
}

#[derive(Serialize, ToSchema)]
pub struct ServiceUnitBody {
    pub id: String,
    pub organisation_id: String,
    #[schema(example = "1.2.246.10.1234567.10.1")]
    pub oid: String,
    pub name: String,
}

impl From<ServiceUnit> for ServiceUnitBody {
    fn from(u: ServiceUnit) -> Self {
        Self {
            id: u.id,
            organisation_id: u.organisation_id,
            oid: u.oid.to_string(),
            name: u.name,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ServiceUnitList {
    pub items: Vec<ServiceUnitBody>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewServiceUnitBody {
    #[schema(value_type = String, example = "1.2.246.10.1234567.10.1")]
    pub oid: Oid,
    #[schema(schema_with = crate::contract::name_200)]
    pub name: String,
}

/// The organisation's service units.
#[utoipa::path(
    tag = "accounts",
    params(("oid" = String, Path, description = "The organisation's OID, or its id")),
    responses(
        (status = 200, body = ServiceUnitList),
        StaffOnly,
    )
)]
#[get("/v1/organisations/{oid}/service-units")]
async fn list_organisation_service_units(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = path.into_inner();
    let items = state
        .run(move |conn, _| Ok(rekisteri_accounts::list_service_units(conn, &principal.0, &key)?))
        .await?;
    Ok(HttpResponse::Ok().json(ServiceUnitList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Add a service unit (admins, or the organisation's main users).
#[utoipa::path(
    tag = "accounts",
    params(("oid" = String, Path, description = "The organisation's OID, or its id")),
    request_body = NewServiceUnitBody,
    responses(
        (status = 201, body = ServiceUnitBody),
        (status = 409, description = "The OID is taken", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/organisations/{oid}/service-units")]
async fn add_unit(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
    body: Json<NewServiceUnitBody>,
) -> Result<HttpResponse, ApiError> {
    let key = path.into_inner();
    let NewServiceUnitBody { oid, name } = body.into_inner();
    let now = state.clock.now();
    let unit = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::add_service_unit(
                conn,
                &state.register(),
                &principal.0,
                &key,
                oid,
                &name,
                now,
            )?)
        })
        .await?;
    Ok(HttpResponse::Created().json(ServiceUnitBody::from(unit)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganisationChangesBody {
    pub name: Option<String>,
    pub business_id: Option<String>,
    /// Whether client data needs a strong identity-provider login (AX-2); on by default.
    pub strong_authentication_required: Option<bool>,
    /// Replaces the register's contact person (name, and an e-mail or a phone).
    pub contact_person: Option<ContactDetails>,
    /// Replaces the data-protection officer (name or function, and an e-mail or a phone).
    pub data_protection_officer: Option<ContactDetails>,
    /// The organisation's own DVV permit reference (VT-9), 1-100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"\S",
        example = "DVV/1234/05.01.00/2026"
    )]
    pub dvv_permit_reference: Option<String>,
    /// Replaces the municipalities the registrar serves; a code another registrar serves is a 409.
    #[schema(value_type = Option<Vec<String>>, example = json!(["837", "211"]))]
    pub municipality_codes: Option<Vec<rekisteri_core::MunicipalityCode>>,
}

/// Change an organisation (admins).
#[utoipa::path(
    tag = "accounts",
    params(("oid" = String, Path, description = "The organisation's OID, or its id")),
    request_body = OrganisationChangesBody,
    responses(
        (status = 200, body = OrganisationBody),
    )
)]
#[patch("/v1/organisations/{oid}")]
async fn update_organisation(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
    body: Json<OrganisationChangesBody>,
) -> Result<HttpResponse, ApiError> {
    let key = path.into_inner();
    let body = body.into_inner();
    let changes = rekisteri_accounts::OrganisationChanges {
        name: body.name,
        business_id: body.business_id,
        strong_authentication_required: body.strong_authentication_required,
        contact_person: body.contact_person,
        data_protection_officer: body.data_protection_officer,
        dvv_permit_reference: body.dvv_permit_reference,
        municipality_codes: body.municipality_codes,
    };
    let now = state.clock.now();
    let organisation = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::update_organisation(
                conn,
                &state.register(),
                &principal.0,
                &key,
                changes,
                now,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(OrganisationBody::from(organisation)))
}
