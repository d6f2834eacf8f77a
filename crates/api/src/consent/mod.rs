//! Kanta informing, disclosure consent and prohibitions, the disclosure decision (CO), registry
//! use rights, case documents and security incidents (RU) over HTTP. The rules live in the
//! consent crate; every read of consent state or documents is logged there.

use actix_web::http::header;
use actix_web::{HttpResponse, get, patch, post, put, web};
use rekisteri_accounts::Permission;
use rekisteri_consent::decision::ConsentState;
use rekisteri_consent::{
    CaseDocument, CloseRight, ConsentError, ConsentRegister, ConsentView, ContractBody, DecisionRequest,
    DecisionResponse, IncidentChanges, Informing, KantaSettings, NewDocument, NewIncident, NewInforming,
    NewProhibition, OpenRight, Prohibition, ReopenRight, Right, SecurityIncident, VoucherChoice, VoucherChoiceBody,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::clients::{ClientAccess, request};
use crate::extract::Json;
use crate::idempotency::{disclosing, disclosure};
use crate::principal::Authenticated;
use crate::problem::{ApiError, FieldError, Problem, ProblemType};
use crate::{AppState, RunBlocking};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_informings)
        .service(record_informing)
        .service(get_consent)
        .service(set_consent)
        .service(list_prohibitions)
        .service(add_prohibition)
        .service(revoke_prohibition)
        .service(decide)
        .service(set_kanta_settings)
        .service(set_contract)
        .service(record_voucher_choice)
        .service(list_rights)
        .service(open_right)
        .service(show_right)
        .service(close_right)
        .service(reopen_right)
        .service(list_documents)
        .service(store_document)
        .service(confirm_local_copy)
        .service(list_notifications)
        .service(list_incidents)
        .service(report_incident)
        .service(show_incident)
        .service(update_incident);
}

impl AppState {
    /// The consent register's handle (cheap: shared pointers).
    pub fn consent(&self) -> ConsentRegister {
        ConsentRegister {
            clients: self.clients(),
            outbox_wakeup: Some(self.outbox_wakeup.clone()),
        }
    }
}

impl From<ConsentError> for ApiError {
    fn from(e: ConsentError) -> Self {
        match e {
            ConsentError::Validation { field, message } => ApiError::field(field, message),
            ConsentError::Rule { field, message } => ApiError::BusinessRule(FieldError::new(field, message)),
            ConsentError::NotFound => ApiError::NotFound,
            ConsentError::Forbidden(detail) => ApiError::problem(ProblemType::Forbidden, detail),
            ConsentError::Clients(e) => e.into(),
            ConsentError::Audit(e) => e.into(),
            ConsentError::Db(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

fn subject(conn: &mut rekisteri_db::DbConnection, rid: &str, client_id: &str) -> Result<Option<[u8; 32]>, ApiError> {
    Ok(rekisteri_clients::subject_of(conn, rid, "client", client_id)?)
}

#[derive(Serialize, ToSchema)]
pub struct InformingList {
    pub items: Vec<Informing>,
}

#[derive(Serialize, ToSchema)]
pub struct ProhibitionList {
    pub items: Vec<Prohibition>,
}

#[derive(Serialize, ToSchema)]
pub struct RightList {
    pub items: Vec<Right>,
}

#[derive(Serialize, ToSchema)]
pub struct DocumentList {
    pub items: Vec<CaseDocument>,
}

#[derive(Serialize, ToSchema)]
pub struct NotificationList {
    pub items: Vec<rekisteri_consent::RegistryNotification>,
}

#[derive(Serialize, ToSchema)]
pub struct IncidentList {
    pub items: Vec<SecurityIncident>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    /// `positive`, `negative` or `revoked`.
    #[schema(value_type = String, pattern = "^(positive|negative|revoked)$")]
    pub state: ConsentState,
}

/// The client's Kanta informing records (CO-1); a logged use.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = InformingList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/registrars/{rid}/clients/{id}/kanta-informing")]
async fn list_informings(
    state: web::Data<AppState>,
    principal: Authenticated,
    access: ClientAccess,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let items = state
        .run(move |conn, state| {
            let request = request(state, &principal.0, &rid, "kanta: read informing", &access);
            Ok(rekisteri_consent::list_informings(
                conn,
                &state.consent(),
                &request,
                &rid,
                &id,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(InformingList { items }))
}

/// Record that the client was informed about Kanta storage (CO-1): `method` is `in_person` or
/// `omakanta_receipt`. Consent and prohibitions are refused before it.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    request_body = NewInforming,
    responses(
        (status = 201, body = Informing),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/clients/{id}/kanta-informing")]
async fn record_informing(
    state: web::Data<AppState>,
    principal: Authenticated,
    access: ClientAccess,
    path: web::Path<(String, String)>,
    body: Json<NewInforming>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let new = body.into_inner();
    let (created, disclosure) = state
        .run(move |conn, state| {
            let purpose = "kanta: record informing";
            let request = request(state, &principal.0, &rid, purpose, &access);
            let created = rekisteri_consent::record_informing(conn, &state.consent(), &request, &rid, &id, new)?;
            let disclosure = disclosure(
                &rid,
                purpose,
                Permission::ManageDisclosureConsent,
                subject(conn, &rid, &id)?,
                "kanta_informing",
                &created.id,
            );
            Ok((created, disclosure))
        })
        .await?;
    Ok(disclosing(HttpResponse::Created().json(created), disclosure))
}

/// The client's disclosure consent (CO-2): the current state (the newest change; `not_given`
/// when none) and the history, newest first. A logged use.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = ConsentView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/registrars/{rid}/clients/{id}/disclosure-consent")]
async fn get_consent(
    state: web::Data<AppState>,
    principal: Authenticated,
    access: ClientAccess,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let view = state
        .run(move |conn, state| {
            let request = request(state, &principal.0, &rid, "kanta: read disclosure consent", &access);
            Ok(rekisteri_consent::get_consent(
                conn,
                &state.consent(),
                &request,
                &rid,
                &id,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Record the client's disclosure consent (CO-2): `positive`, `negative` or `revoked`. Refused
/// (422, `kanta_informing`) before the client has been informed (CO-1).
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    request_body = ConsentBody,
    responses(
        (status = 200, body = ConsentView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not informed yet, or nothing to revoke", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/registrars/{rid}/clients/{id}/disclosure-consent")]
async fn set_consent(
    state: web::Data<AppState>,
    principal: Authenticated,
    access: ClientAccess,
    path: web::Path<(String, String)>,
    body: Json<ConsentBody>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let new_state = body.into_inner().state;
    let view = state
        .run(move |conn, state| {
            let request = request(state, &principal.0, &rid, "kanta: record disclosure consent", &access);
            Ok(rekisteri_consent::set_consent(
                conn,
                &state.consent(),
                &request,
                &rid,
                &id,
                new_state,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The client's disclosure prohibitions (CO-3), in force and revoked; a logged use.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = ProhibitionList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/registrars/{rid}/clients/{id}/disclosure-prohibitions")]
async fn list_prohibitions(
    state: web::Data<AppState>,
    principal: Authenticated,
    access: ClientAccess,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let items = state
        .run(move |conn, state| {
            let request = request(state, &principal.0, &rid, "kanta: read prohibitions", &access);
            Ok(rekisteri_consent::list_prohibitions(
                conn,
                &state.consent(),
                &request,
                &rid,
                &id,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ProhibitionList { items }))
}

/// Record a prohibition (CO-3): `scope` `all`, or `registrar`, `service_task` or `document`
/// with its `target`. In force until revoked, across later consent changes; needs informing.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id")),
    request_body = NewProhibition,
    responses(
        (status = 201, body = Prohibition),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not informed yet", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/clients/{id}/disclosure-prohibitions")]
async fn add_prohibition(
    state: web::Data<AppState>,
    principal: Authenticated,
    access: ClientAccess,
    path: web::Path<(String, String)>,
    body: Json<NewProhibition>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let new = body.into_inner();
    let (created, disclosure) = state
        .run(move |conn, state| {
            let purpose = "kanta: record prohibition";
            let request = request(state, &principal.0, &rid, purpose, &access);
            let created = rekisteri_consent::add_prohibition(conn, &state.consent(), &request, &rid, &id, new)?;
            let disclosure = disclosure(
                &rid,
                purpose,
                Permission::ManageDisclosureConsent,
                subject(conn, &rid, &id)?,
                "disclosure_prohibition",
                &created.id,
            );
            Ok((created, disclosure))
        })
        .await?;
    Ok(disclosing(HttpResponse::Created().json(created), disclosure))
}

/// Revoke a prohibition (CO-3); it stays in the history.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Client id"),
        ("pid" = String, Path, description = "Prohibition id")),
    responses(
        (status = 200, body = Prohibition),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Already revoked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/clients/{id}/disclosure-prohibitions/{pid}/revoke")]
async fn revoke_prohibition(
    state: web::Data<AppState>,
    principal: Authenticated,
    access: ClientAccess,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id, pid) = path.into_inner();
    let revoked = state
        .run(move |conn, state| {
            let request = request(state, &principal.0, &rid, "kanta: revoke prohibition", &access);
            Ok(rekisteri_consent::revoke_prohibition(
                conn,
                &state.consent(),
                &request,
                &rid,
                &id,
                &pid,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(revoked))
}

/// May data X (registrar, service task, document) of a client be disclosed to recipient Q?
/// (CO-4) `allow` or `deny` with the basis: the consent state, the prohibition that matched,
/// or the organiser's exception (CO-5: the provider holding an open registry use right for the
/// client and the case). Every `allow` is a disclosure-log entry with that basis.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id: the register holding the client")),
    request_body = DecisionRequest,
    responses(
        (status = 200, body = DecisionResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/disclosure-decisions")]
async fn decide(
    state: web::Data<AppState>,
    principal: Authenticated,
    access: ClientAccess,
    path: web::Path<String>,
    body: Json<DecisionRequest>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let body = body.into_inner();
    let decision = state
        .run(move |conn, state| {
            let request = request(state, &principal.0, &rid, "kanta: disclosure decision", &access);
            Ok(rekisteri_consent::decide_disclosure(
                conn,
                &state.consent(),
                &request,
                &rid,
                body,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(decision))
}

/// The organiser's Kanta settings (RU-1): start date, case OID root, working days of notice
/// before an automatic closing (RU-5).
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    request_body = KantaSettings,
    responses(
        (status = 200, body = KantaSettings),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/registrars/{rid}/kanta-settings")]
async fn set_kanta_settings(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
    body: Json<KantaSettings>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let body = body.into_inner();
    let saved = state
        .run(move |conn, state| {
            Ok(rekisteri_consent::set_kanta_settings(
                conn,
                &principal.0,
                &rid,
                body,
                state.clock.now(),
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(saved))
}

/// The organiser's contract with a provider and the provider's Kanta joining date (RU-1).
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("provider_id" = String, Path, description = "Provider organisation id")),
    request_body = ContractBody,
    responses(
        (status = 200, body = ContractBody),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/registrars/{rid}/provider-contracts/{provider_id}")]
async fn set_contract(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<(String, String)>,
    body: Json<ContractBody>,
) -> Result<HttpResponse, ApiError> {
    let (rid, provider_id) = path.into_inner();
    let body = body.into_inner();
    let saved = state
        .run(move |conn, state| {
            Ok(rekisteri_consent::set_contract(
                conn,
                &principal.0,
                &rid,
                &provider_id,
                body,
                state.clock.now(),
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(saved))
}

/// The provider reports a voucher client's choice of provider (RU-1); the organiser then opens
/// the registry use right. A changed service-unit OID flags the open rights of that service.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    request_body = VoucherChoiceBody,
    responses(
        (status = 201, body = VoucherChoice),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/voucher-provider-choices")]
async fn record_voucher_choice(
    state: web::Data<AppState>,
    principal: Authenticated,
    access: ClientAccess,
    path: web::Path<String>,
    body: Json<VoucherChoiceBody>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let body = body.into_inner();
    let (created, disclosure) = state
        .run(move |conn, state| {
            let purpose = "registry use right: report voucher choice";
            let request = request(state, &principal.0, &rid, purpose, &access);
            let created = rekisteri_consent::record_voucher_choice(conn, &state.consent(), &request, &rid, body)?;
            let disclosure = disclosure(
                &rid,
                purpose,
                Permission::ReadClients,
                subject(conn, &rid, &created.client_id)?,
                "voucher_provider_choice",
                &created.id,
            );
            Ok((created, disclosure))
        })
        .await?;
    Ok(disclosing(HttpResponse::Created().json(created), disclosure))
}

/// The registrar's registry use rights (its staff), or a provider's own rights in it; without
/// identity codes.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    responses(
        (status = 200, body = RightList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/registrars/{rid}/registry-use-rights")]
async fn list_rights(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let items = state
        .run(move |conn, state| {
            Ok(rekisteri_consent::list_rights(
                conn,
                &principal.0,
                &rid,
                state.clock.now(),
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(RightList { items }))
}

/// Open a registry use right (RU-1) for the client's service with the provider's service-unit
/// OID; returns the case OID (issued under the organiser's OID root) and the identity code
/// delivered to the provider. Refused (422) naming the missing condition: `voucher_provider_choice`,
/// `contract`, `provider_kanta_joining`, `provider_unit_oid`, `kanta_start_date`, `opened_on`.
/// The right closes 7 working days after the service ends (RU-5).
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    request_body = OpenRight,
    responses(
        (status = 201, body = Right, headers(("Location" = String, description = "The right's URL"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A condition of RU-1 does not hold; `errors` names it", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/registry-use-rights")]
async fn open_right(
    state: web::Data<AppState>,
    principal: Authenticated,
    access: ClientAccess,
    path: web::Path<String>,
    body: Json<OpenRight>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let body = body.into_inner();
    let (created, disclosure) = state
        .run(move |conn, state| {
            let purpose = "registry use right: open";
            let request = request(state, &principal.0, &rid, purpose, &access);
            let created = rekisteri_consent::open_right(conn, &state.consent(), &request, &rid, body)?;
            let disclosure = disclosure(
                &rid,
                purpose,
                Permission::ManageRegistryUseRights,
                subject(conn, &rid, &created.client_id)?,
                "registry_use_right",
                &created.id,
            );
            Ok((created, disclosure))
        })
        .await?;
    let location = format!(
        "/v1/registrars/{}/registry-use-rights/{}",
        created.registrar_id, created.id
    );
    Ok(disclosing(
        HttpResponse::Created()
            .insert_header((header::LOCATION, location))
            .json(created),
        disclosure,
    ))
}

/// One registry use right, with the client's identity code and the case OID: the organiser's
/// staff who reach the client, or the right's provider (its delivery, RU-1). A logged use.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Right id")),
    responses(
        (status = 200, body = Right),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/registrars/{rid}/registry-use-rights/{id}")]
async fn show_right(
    state: web::Data<AppState>,
    principal: Authenticated,
    access: ClientAccess,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let right = state
        .run(move |conn, state| {
            let request = request(state, &principal.0, &rid, "registry use right: read", &access);
            Ok(rekisteri_consent::get_right(
                conn,
                &state.consent(),
                &request,
                &rid,
                &id,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(right))
}

/// The organiser sets another closing date for this right (RU-5): `closes_after` is the last
/// usable day; the right is closed from 00:00 Finnish time of the next day, at once for a date
/// before today. The provider is notified.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Right id")),
    request_body = CloseRight,
    responses(
        (status = 200, body = Right),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Already closed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/registry-use-rights/{id}/close")]
async fn close_right(
    state: web::Data<AppState>,
    principal: Authenticated,
    access: ClientAccess,
    path: web::Path<(String, String)>,
    body: Json<CloseRight>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let body = body.into_inner();
    let right = state
        .run(move |conn, state| {
            let request = request(state, &principal.0, &rid, "registry use right: close", &access);
            Ok(rekisteri_consent::close_right(
                conn,
                &state.consent(),
                &request,
                &rid,
                &id,
                body,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(right))
}

/// Reopen a closed right (RU-6) to correct or invalidate the provider's documents: `reason`
/// and the last usable day `closes_after`. The provider is notified.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Right id")),
    request_body = ReopenRight,
    responses(
        (status = 200, body = Right),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The right is not closed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/registry-use-rights/{id}/reopen")]
async fn reopen_right(
    state: web::Data<AppState>,
    principal: Authenticated,
    access: ClientAccess,
    path: web::Path<(String, String)>,
    body: Json<ReopenRight>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let body = body.into_inner();
    let right = state
        .run(move |conn, state| {
            let request = request(state, &principal.0, &rid, "registry use right: reopen", &access);
            Ok(rekisteri_consent::reopen_right(conn, &request, &rid, &id, body)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(right))
}

/// The case's documents (RU-2, RU-8): for the provider only while its right is open (403 and a
/// security event otherwise), for the organiser's staff who reach the client. Each document
/// is a logged use.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("case_oid" = String, Path, description = "Case OID")),
    responses(
        (status = 200, body = DocumentList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/registrars/{rid}/cases/{case_oid}/documents")]
async fn list_documents(
    state: web::Data<AppState>,
    principal: Authenticated,
    access: ClientAccess,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, case_oid) = path.into_inner();
    let items = state
        .run(move |conn, state| {
            let request = request(state, &principal.0, &rid, "case documents: read", &access);
            Ok(rekisteri_consent::list_documents(
                conn,
                &state.consent(),
                &request,
                &rid,
                &case_oid,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(DocumentList { items }))
}

/// A provider stores a document into the organiser's register under the case (RU-2, RU-8):
/// Sosmeta `document_type` and `structure_id`, title, time, signature, content (encrypted at
/// rest). Without an open right of the caller's organisation for the case it is refused (403)
/// and a security event (RU-3, ArSa05).
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("case_oid" = String, Path, description = "Case OID")),
    request_body = NewDocument,
    responses(
        (status = 201, body = CaseDocument),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No open registry use right covers the case", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/cases/{case_oid}/documents")]
async fn store_document(
    state: web::Data<AppState>,
    principal: Authenticated,
    access: ClientAccess,
    path: web::Path<(String, String)>,
    body: Json<NewDocument>,
) -> Result<HttpResponse, ApiError> {
    let (rid, case_oid) = path.into_inner();
    let body = body.into_inner();
    let (created, disclosure) = state
        .run(move |conn, state| {
            let purpose = "case documents: store";
            let request = request(state, &principal.0, &rid, purpose, &access);
            let created = rekisteri_consent::store_document(conn, &state.consent(), &request, &rid, &case_oid, body)?;
            let disclosure = disclosure(
                &rid,
                purpose,
                Permission::StoreCaseDocuments,
                subject(conn, &rid, &created.client_id)?,
                "document",
                &created.id,
            );
            Ok((created, disclosure))
        })
        .await?;
    Ok(disclosing(HttpResponse::Created().json(created), disclosure))
}

/// The provider confirms that its local copy of the document is destroyed (RU-7); the
/// closing job reports the copies marked for destruction and not yet confirmed.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("case_oid" = String, Path, description = "Case OID"),
        ("id" = String, Path, description = "Document id")),
    responses(
        (status = 204, description = "Confirmed"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The copy is not marked for destruction", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/cases/{case_oid}/documents/{id}/local-copy-destroyed")]
async fn confirm_local_copy(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, case_oid, id) = path.into_inner();
    state
        .run(move |conn, state| {
            Ok(rekisteri_consent::confirm_local_copy_destroyed(
                conn,
                &principal.0,
                &rid,
                &case_oid,
                &id,
                state.clock.now(),
            )?)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The notifications addressed to the caller's organisation (RU-1, RU-4, RU-5): a provider's
/// rights opened, closing soon (the configured working days before), their closing date
/// changed or reopened; a registrar's suspected incidents. Oldest first.
#[utoipa::path(
    tag = "consent",
    responses(
        (status = 200, body = NotificationList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/registry-notifications")]
async fn list_notifications(state: web::Data<AppState>, principal: Authenticated) -> Result<HttpResponse, ApiError> {
    let items = state
        .run(move |conn, _| Ok(rekisteri_consent::list_notifications(conn, &principal.0)?))
        .await?;
    Ok(HttpResponse::Ok().json(NotificationList { items }))
}

/// The registrar's security incidents (RU-4), for its data-protection officers.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    responses(
        (status = 200, body = IncidentList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/registrars/{rid}/security-incidents")]
async fn list_incidents(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let items = state
        .run(move |conn, state| {
            Ok(rekisteri_consent::list_security_incidents(
                conn,
                &state.consent(),
                &principal.0,
                &rid,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(IncidentList { items }))
}

/// Report a suspected breach (RU-4): any user of the registrar or of a provider under contract
/// with it. The 72-hour clock (`notify_by`) runs from `discovered_at`; the registrar's contact
/// is notified through the outbox. Name a `document_id` for a document found in the wrong
/// register.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id")),
    request_body = NewIncident,
    responses(
        (status = 201, body = SecurityIncident),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/security-incidents")]
async fn report_incident(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
    body: Json<NewIncident>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let body = body.into_inner();
    let created = state
        .run(move |conn, state| {
            Ok(rekisteri_consent::report_security_incident(
                conn,
                &state.consent(),
                &principal.0,
                &rid,
                body,
                state.clock.now(),
            )?)
        })
        .await?;
    Ok(HttpResponse::Created().json(created))
}

/// One security incident (RU-4).
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Incident id")),
    responses(
        (status = 200, body = SecurityIncident),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/registrars/{rid}/security-incidents/{id}")]
async fn show_incident(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let found = state
        .run(move |conn, state| {
            Ok(rekisteri_consent::get_security_incident(
                conn,
                &state.consent(),
                &principal.0,
                &rid,
                &id,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(found))
}

/// Move an incident on (RU-4): `suspected` → `assessed` (with `assessment`) →
/// `authority_notified` or `notification_not_required`.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Incident id")),
    request_body = IncidentChanges,
    responses(
        (status = 200, body = SecurityIncident),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a permitted transition", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/registrars/{rid}/security-incidents/{id}")]
async fn update_incident(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<(String, String)>,
    body: Json<IncidentChanges>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let changes = body.into_inner();
    let updated = state
        .run(move |conn, state| {
            Ok(rekisteri_consent::update_security_incident(
                conn,
                &state.consent(),
                &principal.0,
                &rid,
                &id,
                changes,
                state.clock.now(),
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(updated))
}
