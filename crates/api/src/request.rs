//! What handlers read from a request the same way everywhere: a page's size and id cursor, the
//! version an `If-Match` names, and the access to client data a request states (its id and a
//! special reason). One place, so every listing and every change answers the same malformed value
//! with the same problem. Also the call a handler makes with all of it on a registrar's data
//! ([`RegistrarCall`]).

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use rekisteri_accounts::Principal;
use rekisteri_clients::Request;

use crate::idempotency::disclosure;
use crate::middleware::RequestId;
use crate::principal::Authenticating;
use crate::principal::audit_context;
use crate::problem::ApiError;
use crate::{AppState, RunBlocking};

/// A page's size: 1–500, 100 when not given.
pub(crate) fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=500).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::field("limit", "must be 1-500")),
    }
}

/// An id cursor of a listing that pages by record id (clients, contacts, lifecycle lists).
pub(crate) fn decode_cursor(cursor: Option<&str>) -> Result<Option<String>, ApiError> {
    cursor
        .map(|c| {
            URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|id| uuid::Uuid::parse_str(id).is_ok())
                .ok_or_else(|| {
                    ApiError::BusinessRule(crate::problem::FieldError::new(
                        "cursor",
                        "is not a cursor this listing returned",
                    ))
                })
        })
        .transpose()
}

/// The cursor of the page after the record `id`, as [`decode_cursor`] reads it.
pub(crate) fn encode_cursor(id: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

/// The version an `If-Match` header names (`"3"`, or `W/"3"`); 428 without one (PL-2). Any
/// other value, `*` included, names no version of ours: it is passed on as [`NO_VERSION`], so the
/// record's absence (404) and the body's faults (400) are reported as for any other version, and
/// an existing record answers 412 as for a stale one (RFC 9110 §13.1.1): a change must name the
/// version it was based on.
pub(crate) fn if_match(http: &HttpRequest) -> Result<i64, ApiError> {
    let value = http.headers().get(header::IF_MATCH).ok_or_else(|| {
        ApiError::problem(
            crate::problem::ProblemType::PreconditionRequired,
            "Send the ETag of the version you read as If-Match.",
        )
    })?;
    Ok(value
        .to_str()
        .ok()
        .and_then(|v| v.trim().trim_start_matches("W/").trim_matches('"').parse().ok())
        .unwrap_or(NO_VERSION))
}

/// A version no record has (versions start at 1).
const NO_VERSION: i64 = -1;

/// What a domain call on client data needs from the request: the caller, their stated special
/// reason, the usage log's context and the time.
pub(crate) fn request<'a>(
    state: &AppState,
    principal: &'a Principal,
    registrar_id: &str,
    purpose: &str,
    access: &ClientAccess,
) -> Request<'a> {
    Request {
        special_reason: access.special_reason.clone(),
        ..registrar_request(state, principal, registrar_id, purpose, &access.request_id)
    }
}

/// [`request`] for the registrar's own lists and jobs, where no professional's special reason
/// applies.
pub(crate) fn registrar_request<'a>(
    state: &AppState,
    principal: &'a Principal,
    registrar_id: &str,
    purpose: &str,
    request_id: &RequestId,
) -> Request<'a> {
    Request {
        principal,
        special_reason: None,
        audit: audit_context(principal, registrar_id, purpose, request_id),
        now: state.clock.now(),
        access_cache: state.access_cache.clone(),
    }
}

/// A handler's call on a registrar's data: who asks, how the request reaches the data (its
/// access: for client data [`ClientAccess`]), and of which registrar. Each register's `run`
/// does the asking.
pub(crate) struct RegistrarCall<A> {
    state: web::Data<AppState>,
    principal: Authenticating,
    access: A,
    registrar_id: String,
}

/// The call a handler makes for `principal` on the data of the registrar `registrar_id`.
pub(crate) fn registrar_call<A>(
    state: web::Data<AppState>,
    principal: impl Into<Authenticating>,
    access: A,
    registrar_id: String,
) -> RegistrarCall<A> {
    RegistrarCall {
        state,
        principal: principal.into(),
        access,
        registrar_id,
    }
}

impl<A: Send + 'static> RegistrarCall<A> {
    /// Runs `work` on a pooled connection with the caller, the access and the registrar's id:
    /// the caller confirmed first on that connection, so the request makes one blocking call.
    pub(crate) async fn run_as<T, F>(self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut rekisteri_db::DbConnection, &AppState, &Principal, &A, &str) -> Result<T, ApiError>
            + Send
            + 'static,
    {
        let Self {
            state,
            principal,
            access,
            registrar_id,
        } = self;
        state
            .run(move |conn, state| {
                let principal = principal.confirm(conn, state)?;
                work(conn, state, &principal, &access, &registrar_id)
            })
            .await
    }
}

impl RegistrarCall<ClientAccess> {
    /// Runs `work` on a pooled connection, its uses of client data logged under `purpose`.
    pub(crate) async fn run<T, E, F>(self, purpose: &'static str, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        ApiError: From<E>,
        F: FnOnce(&mut rekisteri_db::DbConnection, &AppState, &Request<'_>, &str) -> Result<T, E> + Send + 'static,
    {
        self.run_as(move |conn, state, principal, access, registrar_id| {
            let request = request(state, principal, registrar_id, purpose, access);
            Ok(work(conn, state, &request, registrar_id)?)
        })
        .await
    }

    /// [`Self::run`] for `work` that creates a record of a client, with what creating it
    /// disclosed (AU-2) for the idempotency layer to keep beside the answer.
    pub(crate) async fn create<C, E, F>(
        self,
        purpose: &'static str,
        work: F,
    ) -> Result<(C::Record, rekisteri_idempotency::Disclosure), ApiError>
    where
        C: rekisteri_clients::IntoCreated,
        C::Record: Send + 'static,
        ApiError: From<E>,
        F: FnOnce(&mut rekisteri_db::DbConnection, &AppState, &Request<'_>, &str) -> Result<C, E> + Send + 'static,
    {
        self.run::<_, ApiError, _>(purpose, move |conn, state, request, registrar_id| {
            let created = work(conn, state, request, registrar_id)?.into_created();
            let written = rekisteri_clients::written(conn, registrar_id, &created)?;
            Ok((created.record, disclosure(registrar_id, purpose, &written)))
        })
        .await
    }
}

/// The request's id and the special reason (AX-5) a professional may state in the
/// `Special-Reason` header (a code of the THL list) with `Special-Reason-Explanation`
/// (percent-encoded UTF-8 text). A malformed reason is a 400 naming the header; a reason stated
/// without the `special_reason_access` permission changes nothing.
pub struct ClientAccess {
    pub request_id: RequestId,
    pub special_reason: Option<rekisteri_clients::special_reasons::SpecialReason>,
}

impl actix_web::FromRequest for ClientAccess {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        use actix_web::HttpMessage;
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(uuid::Uuid::new_v4().to_string()));
        std::future::ready(special_reason(req).map(|special_reason| ClientAccess {
            request_id,
            special_reason,
        }))
    }
}

fn special_reason(req: &HttpRequest) -> Result<Option<rekisteri_clients::special_reasons::SpecialReason>, ApiError> {
    let Some(code) = req.headers().get("Special-Reason") else {
        return Ok(None);
    };
    let code = code
        .to_str()
        .map_err(|_| ApiError::field("Special-Reason", "must be a code of the special-reason list"))?;
    let explanation = req
        .headers()
        .get("Special-Reason-Explanation")
        .map(|v| {
            let raw = v
                .to_str()
                .map_err(|_| ApiError::field("Special-Reason-Explanation", "must be percent-encoded UTF-8 text"))?;
            percent_encoding::percent_decode_str(raw)
                .decode_utf8()
                .map(|text| text.into_owned())
                .map_err(|_| ApiError::field("Special-Reason-Explanation", "must be percent-encoded UTF-8 text"))
        })
        .transpose()?;
    rekisteri_clients::access::parse_special_reason(code, explanation.as_deref())
        .map(Some)
        .map_err(ApiError::from)
}
