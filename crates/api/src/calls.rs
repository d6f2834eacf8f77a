//! The register of call and contact recordings over HTTP (CA): queues, contacts pushed by the
//! telephony system, listening by stated reason, processing memos, legal hold and reports.
//! Audio goes in and out through [`crate::recordings`].

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use rekisteri_accounts::Principal;
use rekisteri_calls::reports::{ContactReport, GroupBy};
use rekisteri_calls::{
    CallRegister, CallsError, Contact, ContactFilter, LegalHold, ListeningGrant, ListeningRequest, MediaExport,
    MemoEntry, NewContact, NewDisclosure, NewLegalHold, NewQueue, ProcessingMemo, Queue, QueueChanges, QueueListener,
    Request,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::AppState;
use crate::extract::Json;
use crate::idempotency::{disclosing, disclosure};
use crate::middleware::RequestId;
use crate::principal::{Authenticating, audit_context};
use crate::problem::{ApiError, Problem};
use crate::request::{RegistrarCall, registrar_call};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_queues)
        .service(create_queue)
        .service(update_queue)
        .service(grant_listening)
        .service(revoke_listening)
        .service(list_contacts)
        .service(create_contact)
        .service(search_contacts)
        .service(show_contact)
        .service(place_legal_hold)
        .service(release_legal_hold)
        .service(request_listening)
        .service(export_to_media)
        .service(list_disclosures)
        .service(add_disclosure)
        .service(contact_report);
    crate::recordings::configure(config);
}

impl AppState {
    /// The call register's handle (cheap: shared pointers).
    pub fn calls(&self) -> CallRegister {
        CallRegister {
            keyring: self.keyring.clone(),
            audit: self.audit.clone(),
        }
    }
}

pub(crate) fn request<'a>(
    state: &AppState,
    principal: &'a Principal,
    registrar_id: &str,
    purpose: &str,
    request_id: &RequestId,
) -> Request<'a> {
    Request {
        principal,
        audit: audit_context(principal, registrar_id, purpose, request_id),
        now: state.clock.now(),
        access_cache: state.access_cache.clone(),
    }
}

impl RegistrarCall<RequestId> {
    /// Runs `work` on a pooled connection, its uses logged under `purpose`.
    async fn run<T, F>(self, purpose: &'static str, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut rekisteri_db::DbConnection, &CallRegister, &Request<'_>, &str) -> Result<T, CallsError>
            + Send
            + 'static,
    {
        self.run_as(move |conn, state, principal, request_id, registrar_id| {
            let request = request(state, principal, registrar_id, purpose, request_id);
            Ok(work(conn, &state.calls(), &request, registrar_id)?)
        })
        .await
    }
}

impl From<CallsError> for ApiError {
    fn from(e: CallsError) -> Self {
        use rekisteri_calls::CallsError as E;
        match e {
            E::Refused(refusal) => refusal.into(),
            E::StrongAuthenticationRequired => rekisteri_accounts::AccountsError::StrongAuthenticationRequired.into(),
            E::Audit(e) => e.into(),
            E::Db(e) => e.into(),
            e @ E::Crypto(_) => ApiError::internal(e),
        }
    }
}

const RID: &str = "Registrar (organisation) id";

#[derive(Serialize, ToSchema)]
pub struct QueueList {
    pub items: Vec<Queue>,
}

/// The registrar's service queues with their explicit listeners (CA-1).
#[utoipa::path(
    tag = "calls",
    params(("rid" = String, Path, description = RID)),
    responses(
        (status = 200, body = QueueList),
    )
)]
#[get("/v1/registrars/{rid}/queues")]
async fn list_queues(
    state: web::Data<AppState>,
    principal: Authenticating,
    request_id: RequestId,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let items = registrar_call(state, principal, request_id, rid)
        .run("call register: list queues", move |conn, _, request, rid| {
            rekisteri_calls::list_queues(conn, request, rid)
        })
        .await?;
    Ok(HttpResponse::Ok().json(QueueList { items }))
}

/// Create a service queue (CA-1): its service unit, whether calls are recorded and the
/// announcement callers hear.
#[utoipa::path(
    tag = "calls",
    params(("rid" = String, Path, description = RID)),
    request_body = NewQueue,
    responses(
        (status = 201, body = Queue),
        (status = 409, description = "The registrar has a queue with this name", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/queues")]
async fn create_queue(
    state: web::Data<AppState>,
    principal: Authenticating,
    request_id: RequestId,
    path: web::Path<String>,
    body: Json<NewQueue>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let new = body.into_inner();
    let queue = registrar_call(state, principal, request_id, rid)
        .run("call register: create queue", move |conn, calls, request, rid| {
            rekisteri_calls::create_queue(conn, calls, request, rid, new)
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/v1/registrars/{}/queues/{}", queue.registrar_id, queue.id),
        ))
        .json(queue))
}

/// Change a queue's name, whether its calls are recorded, or the announcement (CA-1); a
/// security event. Contacts already pushed keep the announcement they were pushed under.
#[utoipa::path(
    tag = "calls",
    params(("rid" = String, Path, description = RID), ("id" = String, Path, description = "Queue id")),
    request_body = QueueChanges,
    responses(
        (status = 200, body = Queue),
        (status = 409, description = "The registrar has a queue with this name", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/registrars/{rid}/queues/{id}")]
async fn update_queue(
    state: web::Data<AppState>,
    principal: Authenticating,
    request_id: RequestId,
    path: web::Path<(String, String)>,
    body: Json<QueueChanges>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let changes = body.into_inner();
    let queue = registrar_call(state, principal, request_id, rid)
        .run("call register: change queue", move |conn, calls, request, rid| {
            rekisteri_calls::update_queue(conn, calls, request, rid, &id, changes)
        })
        .await?;
    Ok(HttpResponse::Ok().json(queue))
}

/// Grant a named user listening rights for a queue (CA-1); a security event.
#[utoipa::path(
    tag = "calls",
    params(("rid" = String, Path, description = RID), ("id" = String, Path, description = "Queue id"), ("account_id" = String, Path, description = "The user's account id")),
    responses(
        (status = 200, body = QueueListener),
        (status = 409, description = "The user already holds the right", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/registrars/{rid}/queues/{id}/listeners/{account_id}")]
async fn grant_listening(
    state: web::Data<AppState>,
    principal: Authenticating,
    request_id: RequestId,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, queue_id, account_id) = path.into_inner();
    let listener = registrar_call(state, principal, request_id, rid)
        .run("call register: grant listening", move |conn, calls, request, rid| {
            rekisteri_calls::grant_listening(conn, calls, request, rid, &queue_id, &account_id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(listener))
}

/// End a user's explicit listening rights for a queue; a security event.
#[utoipa::path(
    tag = "calls",
    params(("rid" = String, Path, description = RID), ("id" = String, Path, description = "Queue id"), ("account_id" = String, Path, description = "The user's account id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such right in force", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/registrars/{rid}/queues/{id}/listeners/{account_id}")]
async fn revoke_listening(
    state: web::Data<AppState>,
    principal: Authenticating,
    request_id: RequestId,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, queue_id, account_id) = path.into_inner();
    registrar_call(state, principal, request_id, rid)
        .run("call register: revoke listening", move |conn, calls, request, rid| {
            rekisteri_calls::revoke_listening(conn, calls, request, rid, &queue_id, &account_id)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct ContactList {
    pub items: Vec<Contact>,
    /// Present when more contacts follow: pass it as `cursor`.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ContactQuery {
    /// Only this queue's contacts.
    #[param(format = Uuid)]
    queue_id: Option<String>,
    /// Contacts that started at or after this instant (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<time::OffsetDateTime>,
    /// Contacts that started before this instant (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<time::OffsetDateTime>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1–500, default 100.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// The registrar's contacts, a page at a time; each listed contact is a logged view (CA-14). A
/// secret number shows only to the users of the queue it was given in (AX-6).
#[utoipa::path(
    tag = "calls",
    params(("rid" = String, Path, description = RID), ContactQuery),
    responses(
        (status = 200, body = ContactList),
    )
)]
#[get("/v1/registrars/{rid}/contacts")]
async fn list_contacts(
    state: web::Data<AppState>,
    principal: Authenticating,
    request_id: RequestId,
    path: web::Path<String>,
    query: web::Query<ContactQuery>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let query = query.into_inner();
    let filter = ContactFilter {
        queue_id: query.queue_id,
        from: query.from,
        to: query.to,
        after: crate::request::decode_cursor(query.cursor.as_deref())?,
        limit: crate::request::page_limit(query.limit)?,
    };
    let page = registrar_call(state, principal, request_id, rid)
        .run("call register: list contacts", move |conn, calls, request, rid| {
            rekisteri_calls::list_contacts(conn, calls, request, rid, filter)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ContactList {
        items: page.items,
        next_cursor: page.next_after.map(crate::request::encode_cursor),
    }))
}

/// Push a contact (CA-2): the telephony system, with `Idempotency-Key` so that a retry never
/// stores it twice. The caller's number, the client's name and identity code are sealed; the
/// number is found later by its blind index.
#[utoipa::path(
    tag = "calls",
    params(("rid" = String, Path, description = RID)),
    request_body = NewContact,
    responses(
        (status = 201, body = Contact, headers(("Location" = String, description = "The contact's URL"))),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/contacts")]
async fn create_contact(
    state: web::Data<AppState>,
    principal: Authenticating,
    request_id: RequestId,
    path: web::Path<String>,
    body: Json<NewContact>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let new = body.into_inner();
    let purpose = "call register: push contact";
    let (contact, disclosure) = registrar_call(state, principal, request_id, rid)
        .run(purpose, move |conn, calls, request, rid| {
            let contact = rekisteri_calls::create_contact(conn, calls, request, rid, new)?;
            let disclosure = disclosure(rid, purpose, &contact.written(&calls.keyring));
            Ok((contact, disclosure))
        })
        .await?;
    let response = HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/v1/registrars/{}/contacts/{}", contact.registrar_id, contact.id),
        ))
        .json(contact);
    Ok(disclosing(response, disclosure))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallerNumberSearch {
    /// E.164; never echoed back in errors or logs.
    #[schema(pattern = r"^\+[1-9][0-9]{5,14}$", example = "+358401234567")]
    pub caller_number: String,
}

#[derive(Serialize, ToSchema)]
pub struct ContactSearchResult {
    pub items: Vec<Contact>,
}

/// Find the contacts from one number (the number in the body, never in a URL). A secret number
/// is found only by the users it is shown to. Every search is logged, found or not.
#[utoipa::path(
    tag = "calls",
    params(("rid" = String, Path, description = RID)),
    request_body = CallerNumberSearch,
    responses(
        (status = 200, body = ContactSearchResult),
    )
)]
#[post("/v1/registrars/{rid}/contacts/search")]
async fn search_contacts(
    state: web::Data<AppState>,
    principal: Authenticating,
    request_id: RequestId,
    path: web::Path<String>,
    body: Json<CallerNumberSearch>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let number = body.into_inner().caller_number;
    let items = registrar_call(state, principal, request_id, rid)
        .run("call register: search by number", move |conn, calls, request, rid| {
            rekisteri_calls::search_by_caller_number(conn, calls, request, rid, &number)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ContactSearchResult { items }))
}

/// One contact with its recording's metadata and any legal hold; the view is logged (CA-14).
#[utoipa::path(
    tag = "calls",
    params(("rid" = String, Path, description = RID), ("id" = String, Path, description = "Contact id")),
    responses(
        (status = 200, body = Contact),
    )
)]
#[get("/v1/registrars/{rid}/contacts/{id}")]
async fn show_contact(
    state: web::Data<AppState>,
    principal: Authenticating,
    request_id: RequestId,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let contact = registrar_call(state, principal, request_id, rid)
        .run("call register: view contact", move |conn, calls, request, rid| {
            rekisteri_calls::get_contact(conn, calls, request, rid, &id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(contact))
}

/// Put a contact's recording on legal hold (CA-10): kept past retention until the hold's last
/// day or its release. A security event.
#[utoipa::path(
    tag = "calls",
    params(("rid" = String, Path, description = RID), ("id" = String, Path, description = "Contact id")),
    request_body = NewLegalHold,
    responses(
        (status = 201, body = LegalHold),
        (status = 409, description = "A hold is already in force", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/contacts/{id}/legal-hold")]
async fn place_legal_hold(
    state: web::Data<AppState>,
    principal: Authenticating,
    request_id: RequestId,
    path: web::Path<(String, String)>,
    body: Json<NewLegalHold>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let new = body.into_inner();
    let hold = registrar_call(state, principal, request_id, rid)
        .run("call register: legal hold", move |conn, calls, request, rid| {
            rekisteri_calls::place_legal_hold(conn, calls, request, rid, &id, new)
        })
        .await?;
    Ok(HttpResponse::Created().json(hold))
}

/// Release the hold in force: the recording returns to normal retention (CA-10).
#[utoipa::path(
    tag = "calls",
    params(("rid" = String, Path, description = RID), ("id" = String, Path, description = "Contact id")),
    responses(
        (status = 204, description = "Released"),
        (status = 404, description = "No hold in force", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/registrars/{rid}/contacts/{id}/legal-hold")]
async fn release_legal_hold(
    state: web::Data<AppState>,
    principal: Authenticating,
    request_id: RequestId,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    registrar_call(state, principal, request_id, rid)
        .run("call register: release legal hold", move |conn, calls, request, rid| {
            rekisteri_calls::release_legal_hold(conn, calls, request, rid, &id)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Ask to listen to a contact's recording (CA-5): listening rights for its queue and a stated
/// reason. Returns a grant for this one recording that expires in 15 minutes, and creates the
/// processing memo (CA-6).
#[utoipa::path(
    tag = "calls",
    params(("rid" = String, Path, description = RID), ("id" = String, Path, description = "Contact id")),
    request_body = ListeningRequest,
    responses(
        (status = 201, body = ListeningGrant),
        (status = 403, description = "No listening rights for the queue", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No recording, or its audio was destroyed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/contacts/{id}/listening-requests")]
async fn request_listening(
    state: web::Data<AppState>,
    principal: Authenticating,
    request_id: RequestId,
    path: web::Path<(String, String)>,
    body: Json<ListeningRequest>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let listening = body.into_inner();
    let grant = registrar_call(state, principal, request_id, rid)
        .run("call register: listening", move |conn, calls, request, rid| {
            rekisteri_calls::request_listening(conn, calls, request, rid, &id, listening)
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, grant.audio_url.clone()))
        .json(grant))
}

/// Save a recording to external media (CA-6): listening rights, a stated reason, the medium,
/// recipient and basis; a new processing memo and a disclosure-log entry.
#[utoipa::path(
    tag = "calls",
    params(("rid" = String, Path, description = RID), ("id" = String, Path, description = "Contact id")),
    request_body = MediaExport,
    responses(
        (status = 201, body = ProcessingMemo),
        (status = 409, description = "No recording, or its audio was destroyed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/contacts/{id}/media-exports")]
async fn export_to_media(
    state: web::Data<AppState>,
    principal: Authenticating,
    request_id: RequestId,
    path: web::Path<(String, String)>,
    body: Json<MediaExport>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let export = body.into_inner();
    let memo = registrar_call(state, principal, request_id, rid)
        .run("call register: media export", move |conn, calls, request, rid| {
            rekisteri_calls::export_to_media(conn, calls, request, rid, &id, export)
        })
        .await?;
    Ok(HttpResponse::Created().json(memo))
}

/// A processing memo with what was disclosed or saved from the recording (CA-6): the listeners
/// of the contact's queue and the registrar's auditors; reading it is logged.
#[utoipa::path(
    tag = "calls",
    params(("rid" = String, Path, description = RID), ("id" = String, Path, description = "Processing memo id")),
    responses(
        (status = 200, body = ProcessingMemo),
    )
)]
#[get("/v1/registrars/{rid}/processing-memos/{id}/disclosures")]
async fn list_disclosures(
    state: web::Data<AppState>,
    principal: Authenticating,
    request_id: RequestId,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let memo = registrar_call(state, principal, request_id, rid)
        .run(
            "call register: read processing memo",
            move |conn, calls, request, rid| rekisteri_calls::list_disclosures(conn, calls, request, rid, &id),
        )
        .await?;
    Ok(HttpResponse::Ok().json(memo))
}

/// Record a disclosure of the listened recording (CA-7): only to a party of the call or an
/// authority. Completes the memo (append-only) and writes the disclosure log (AU-2).
#[utoipa::path(
    tag = "calls",
    params(("rid" = String, Path, description = RID), ("id" = String, Path, description = "Processing memo id")),
    request_body = NewDisclosure,
    responses(
        (status = 201, body = MemoEntry),
    )
)]
#[post("/v1/registrars/{rid}/processing-memos/{id}/disclosures")]
async fn add_disclosure(
    state: web::Data<AppState>,
    principal: Authenticating,
    request_id: RequestId,
    path: web::Path<(String, String)>,
    body: Json<NewDisclosure>,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let new = body.into_inner();
    let entry = registrar_call(state, principal, request_id, rid)
        .run("call register: disclosure", move |conn, calls, request, rid| {
            rekisteri_calls::add_disclosure(conn, calls, request, rid, &id, new)
        })
        .await?;
    Ok(HttpResponse::Created().json(entry))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// Start of the period (RFC 3339), inclusive.
    #[serde(with = "time::serde::rfc3339")]
    #[param(value_type = String, format = DateTime)]
    from: time::OffsetDateTime,
    /// End of the period (RFC 3339), exclusive; at most 366 days after `from`.
    #[serde(with = "time::serde::rfc3339")]
    #[param(value_type = String, format = DateTime)]
    to: time::OffsetDateTime,
    /// `day` (default) or `hour`, Finnish local time.
    group_by: Option<GroupBy>,
    /// Only this queue.
    #[param(format = Uuid)]
    queue_id: Option<String>,
}

/// Contact reports (CA-13): per queue per day or hour, answered / callback / voicemail shares,
/// average and 90th-percentile duration and wait; cells of fewer than five contacts suppressed.
/// Never individuals.
#[utoipa::path(
    tag = "calls",
    params(("rid" = String, Path, description = RID), ReportQuery),
    responses(
        (status = 200, body = ContactReport),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/registrars/{rid}/contact-reports")]
async fn contact_report(
    state: web::Data<AppState>,
    principal: Authenticating,
    request_id: RequestId,
    path: web::Path<String>,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let rid = path.into_inner();
    let query = query.into_inner();
    let report = rekisteri_calls::reports::ReportQuery {
        from: query.from,
        to: query.to,
        group_by: query.group_by.unwrap_or(GroupBy::Day),
        queue_id: query.queue_id,
    };
    let report = registrar_call(state, principal, request_id, rid)
        .run("call register: contact report", move |conn, calls, request, rid| {
            rekisteri_calls::reports::contact_report(conn, calls, request, rid, &report)
        })
        .await?;
    Ok(HttpResponse::Ok().json(report))
}
