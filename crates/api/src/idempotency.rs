//! `Idempotency-Key` on creating POSTs (PL-2): a retried push never creates a duplicate.
//!
//! One middleware serves every authenticated `POST /v1/…`, so a new creating endpoint is
//! covered without doing anything. With the header, the first request claims the key (its
//! caller's, within the registrar the path names) before the handler runs; the handler runs to
//! its end even when the client hangs up, and a 201 is stored (body sealed, PL-6) for 24 hours.
//! A retry with the same method, path and body gets the stored response (status, `Location`,
//! `ETag`, body, and `Idempotent-Replayed: true`) and creates nothing; another request with the
//! key gets 422 `idempotency-key-reused`; one while the first still runs 409
//! `idempotency-key-in-use`. A first request that did not answer 201 leaves no trace.
//!
//! The claim belongs to this server process (`AppState::instance`), so that a retry after a
//! `kill -9` is not refused for a day: see `rekisteri_idempotency`'s module docs. While the
//! claimed request runs, [`CLAIM`] holds its commit check, and [`RunBlocking::run`] makes every
//! write transaction of the request end in it: the claim is marked `written` in the same
//! transaction as the request's work, and that work cannot commit once the claim was taken over.
//!
//! A handler whose 201 discloses personal data says so with [`disclosing`]; a replay then
//! checks that the caller still holds the permission (and strong authentication where the
//! registrar requires it) and writes the usage entry before answering (AU-1, AU-4).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};
use futures_util::StreamExt;
use rekisteri_accounts::{Caller, Permission};
use rekisteri_idempotency::{Claim, Claimed, Disclosure, IdempotencyError, Scope, StoredResponse};

use crate::extract::{BodyLimit, DEFAULT_BODY_LIMIT};
use crate::middleware::RequestId;
use crate::problem::{ApiError, FieldError, Problem, ProblemType};
use crate::{AppState, RunBlocking};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on a response that is the stored answer to an earlier request with the key.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

tokio::task_local! {
    /// The commit check of the claim the running request holds (see the module docs).
    pub(crate) static CLAIM: rekisteri_db::CommitCheck;
}

/// Marks `response` as disclosing `disclosure` (what a replay of it logs).
pub fn disclosing(mut response: HttpResponse, disclosure: Disclosure) -> HttpResponse {
    response.extensions_mut().insert(disclosure);
    response
}

/// The disclosure of one record a register wrote, for a handler's 201.
pub fn disclosure(registrar_id: &str, purpose: &str, written: &rekisteri_audit::Written) -> Disclosure {
    Disclosure::one(
        registrar_id,
        purpose,
        written.permission,
        written.subject_index,
        written.data_kind,
        &written.data_id,
    )
}

fn header_problem(kind: ProblemType, message: &str) -> HttpResponse {
    let mut problem = Problem::new(kind);
    problem.detail = Some(format!("Idempotency-Key: {message}"));
    problem.errors = vec![FieldError::new("Idempotency-Key", message)];
    problem.response()
}

fn error_response(req: ServiceRequest, response: HttpResponse) -> ServiceResponse<BoxBody> {
    req.into_response(response)
}

fn internal(e: IdempotencyError) -> ApiError {
    match e {
        IdempotencyError::Audit(e) => e.into(),
        IdempotencyError::Db(e) => e.into(),
        e @ (IdempotencyError::Crypto(_) | IdempotencyError::Unusable(_)) => ApiError::internal(e),
    }
}

/// The caller a key belongs to: the API client for an integration (with the user it names), the
/// account otherwise, a citizen by the blind index of their code (under the active key). Second,
/// the same citizen under the other blind-index keys held, whose earlier keys are theirs too.
fn caller_scope(caller: &Caller, state: &AppState) -> (String, Vec<String>) {
    match caller {
        // A system's key is also its named user's: another user of the same system never gets
        // the first one's answer (AX-4).
        Caller::Account(principal) => (
            match &principal.integration {
                Some(integration) => match &integration.on_behalf_of {
                    Some(user) => format!("api_client:{}:on_behalf_of:{user}", integration.client_id),
                    None => format!("api_client:{}", integration.client_id),
                },
                None => format!("account:{}", principal.account_id),
            },
            Vec::new(),
        ),
        Caller::Citizen(citizen) => {
            let scope = |index: &[u8]| format!("citizen:{}", rekisteri_crypto::to_hex(index));
            let active = scope(&rekisteri_audit::subject_index(&state.keyring, &citizen.identity_code));
            let earlier = rekisteri_audit::subject_index_candidates(&state.keyring, &citizen.identity_code)
                .iter()
                .map(|index| scope(index))
                .filter(|other| *other != active)
                .collect();
            (active, earlier)
        }
    }
}

async fn read_body(req: &mut ServiceRequest, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::problem(
            ProblemType::PayloadTooLarge,
            format!("The body may be at most {limit} bytes."),
        )
    };
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::problem(ProblemType::MalformedBody, "The request body could not be read."))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

pub async fn layer(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let caller = req.extensions().get::<Caller>().cloned();
    let applies =
        req.method() == Method::POST && req.path().starts_with("/v1/") && req.headers().contains_key(&IDEMPOTENCY_KEY);
    // Public operations (log-in, token) have no caller to keep a key for: the header is ignored.
    let (true, Some(caller)) = (applies, caller) else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let mut values = req.headers().get_all(&IDEMPOTENCY_KEY);
    let key = match (values.next().map(HeaderValue::to_str), values.next()) {
        (Some(Ok(key)), None) if rekisteri_idempotency::is_valid_key(key) => key.to_owned(),
        _ => {
            let response = ApiError::field(
                "Idempotency-Key",
                "must be one header of 1-255 visible ASCII characters",
            )
            .error_response();
            return Ok(error_response(req, response));
        }
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(error_response(
            req,
            ApiError::internal("no application state").error_response(),
        ));
    };
    let limit = req.app_data::<BodyLimit>().map_or(DEFAULT_BODY_LIMIT, |l| l.0);
    let body = match read_body(&mut req, limit).await {
        Ok(body) => body,
        Err(error) => return Ok(error_response(req, error.error_response())),
    };
    let method = req.method().as_str().to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
    let hash = rekisteri_idempotency::request_hash(&method, &path, &body);
    req.set_payload(Payload::from(body));
    let (named, earlier_callers) = caller_scope(&caller, &state);
    let scope = Scope {
        registrar_id: rekisteri_idempotency::registrar_of_path(req.path()).to_owned(),
        caller: named,
        earlier_callers,
        key,
    };
    let now = rekisteri_db::to_primitive(state.clock.now());
    let claimed = state
        .run(move |conn, state| {
            rekisteri_idempotency::claim(conn, &scope, &method, &path, &hash, &state.instance, now).map_err(internal)
        })
        .await;
    match claimed {
        Err(error) => Ok(error_response(req, error.error_response())),
        Ok(Claim::InProgress) => Ok(error_response(
            req,
            header_problem(
                ProblemType::IdempotencyKeyInUse,
                "the first request with this key is still being processed; retry it later with the same key",
            ),
        )),
        Ok(Claim::Mismatch) => Ok(error_response(
            req,
            header_problem(
                ProblemType::IdempotencyKeyReused,
                "was used for a request with another method, path or body; use a new key for a new request",
            ),
        )),
        Ok(Claim::Interrupted) => {
            let mut response = ApiError::problem(
                ProblemType::Conflict,
                "The first request with this Idempotency-Key did its work, but the server stopped before it \
                 answered, so its answer is lost; nothing was created again.",
            )
            .error_response();
            response
                .headers_mut()
                .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
            Ok(error_response(req, response))
        }
        Ok(Claim::Completed(completed)) => {
            let request_id = req
                .extensions()
                .get::<RequestId>()
                .cloned()
                .unwrap_or_else(|| RequestId(uuid::Uuid::new_v4().to_string()));
            let response = match replay(&state, &caller, *completed, request_id).await {
                Ok(response) => response,
                Err(error) => error.error_response(),
            };
            Ok(error_response(req, response))
        }
        Ok(Claim::Claimed(claimed)) => {
            // The handler and the storing of its answer run as their own task, so that a client
            // hanging up cannot leave a created resource without its stored response.
            let check = rekisteri_idempotency::commit_check(&claimed);
            let task = actix_web::rt::spawn(async move {
                let result = CLAIM.scope(check, next.call(req)).await;
                finish(&state, claimed, result).await
            });
            match task.await {
                Ok(result) => result,
                Err(_) => Err(ApiError::internal("the request task ended abnormally").into()),
            }
        }
    }
}

async fn release(state: &web::Data<AppState>, claimed: Claimed) {
    let released = state
        .run(move |conn, _| rekisteri_idempotency::release(conn, &claimed).map_err(internal))
        .await;
    if let Err(error) = released {
        log::error!("idempotency: a claim could not be released: {error}");
    }
}

/// Stores a 201 under the claimed key; forgets the claim of anything else.
async fn finish<B: MessageBody + 'static>(
    state: &web::Data<AppState>,
    claimed: Claimed,
    result: Result<ServiceResponse<B>, actix_web::Error>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let response = match result {
        Ok(response) if response.status() == StatusCode::CREATED => response,
        other => {
            release(state, claimed).await;
            return other.map(ServiceResponse::map_into_boxed_body);
        }
    };
    let disclosure = response.response().extensions().get::<Disclosure>().cloned();
    let (request, response) = response.into_parts();
    let (head, body) = response.into_parts();
    let Ok(bytes) = actix_web::body::to_bytes(body).await else {
        // The resource exists; the claim stays pending (409 to retries while this server runs,
        // `Interrupted` after it stopped) rather than let a retry create it again.
        log::error!("idempotency: a created response's body could not be read");
        return Err(ApiError::internal("the response body could not be read").into());
    };
    let header = |name: HeaderName| {
        head.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    // A one-time secret (an invitation token, a client secret) is never kept.
    let withheld = header(header::CACHE_CONTROL).is_some_and(|v| v.contains("no-store"));
    let stored = StoredResponse {
        status: head.status().as_u16(),
        location: header(header::LOCATION),
        etag: header(header::ETAG),
        content_type: header(header::CONTENT_TYPE),
        body: if withheld { Vec::new() } else { bytes.to_vec() },
        withheld,
    };
    let completed = state
        .run(move |conn, state| {
            rekisteri_idempotency::complete(conn, &state.keyring, &claimed, &stored, disclosure.as_ref())
                .map_err(internal)
        })
        .await;
    if let Err(error) = completed {
        // As above: the claim stays pending, so a retry gets 409, never a duplicate.
        log::error!("idempotency: a created response could not be stored: {error}");
    }
    Ok(ServiceResponse::new(request, head.set_body(BoxBody::new(bytes))))
}

/// The stored answer, with its usage entry written first when it discloses personal data.
async fn replay(
    state: &web::Data<AppState>,
    caller: &Caller,
    completed: rekisteri_idempotency::CompletedKey,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let principal = match caller {
        Caller::Account(principal) => Some(principal.clone()),
        Caller::Citizen(_) => None,
    };
    let now = state.clock.now();
    let stored = state
        .run(move |conn, state| {
            let disclosure = completed.disclosure().map_err(internal)?;
            let context = match (disclosure.filter(|d| !d.uses.is_empty()), &principal) {
                (Some(disclosure), Some(principal)) => {
                    let needed = disclosure
                        .permission
                        .as_deref()
                        .map(|name| Permission::ALL.into_iter().find(|p| p.as_str() == name));
                    let allowed = match needed {
                        None => true,
                        Some(Some(permission)) => principal.can(permission),
                        Some(None) => false,
                    };
                    if !allowed {
                        return Err(ApiError::problem(
                            ProblemType::Forbidden,
                            "The caller no longer holds the right the stored response needs.",
                        ));
                    }
                    rekisteri_accounts::require_strong_authentication(conn, principal, &disclosure.registrar_id)?;
                    let context = crate::principal::audit_context(
                        principal,
                        &disclosure.registrar_id,
                        &format!("{} (idempotent replay)", disclosure.purpose),
                        &request_id,
                    );
                    if let Some(Some(permission)) = needed {
                        reach_disclosed(conn, state, principal, &disclosure, permission, &context, now)?;
                    }
                    Some(context)
                }
                _ => None,
            };
            rekisteri_idempotency::replay(
                conn,
                &state.keyring,
                &state.audit,
                &completed,
                context.as_ref(),
                rekisteri_db::to_primitive(now),
            )
            .map_err(internal)
        })
        .await?;
    if stored.withheld {
        let mut response = ApiError::problem(
            ProblemType::Conflict,
            "The first request with this Idempotency-Key succeeded, but its answer held a secret that is shown \
             only once; nothing was created again.",
        )
        .error_response();
        if let Some(value) = stored.location.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert(header::LOCATION, value);
        }
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
        return Ok(response);
    }
    let status = StatusCode::from_u16(stored.status).map_err(ApiError::internal)?;
    let mut response = HttpResponse::build(status);
    for (name, value) in [
        (header::LOCATION, stored.location),
        (header::ETAG, stored.etag),
        (header::CONTENT_TYPE, stored.content_type),
    ] {
        if let Some(value) = value.and_then(|v: String| HeaderValue::from_str(&v).ok()) {
            response.insert_header((name, value));
        }
    }
    response.insert_header((IDEMPOTENT_REPLAYED, HeaderValue::from_static("true")));
    Ok(response.body(stored.body))
}

/// A replay is a new read (AX-4): every client-register record the stored answer holds must be
/// within the caller's reach now, decided as a first request would be (a denial is logged).
fn reach_disclosed(
    conn: &mut rekisteri_db::DbConnection,
    state: &AppState,
    principal: &rekisteri_accounts::Principal,
    disclosure: &Disclosure,
    permission: Permission,
    context: &rekisteri_audit::AuditContext,
    now: time::OffsetDateTime,
) -> Result<(), ApiError> {
    let request = rekisteri_clients::Request {
        principal,
        special_reason: None,
        audit: context.clone(),
        now,
        access_cache: state.access_cache.clone(),
    };
    for used in &disclosure.uses {
        if !rekisteri_clients::CLIENT_REGISTER_KINDS.contains(&used.data_kind.as_str()) {
            continue;
        }
        let subject = used.subject().ok_or(ApiError::NotFound)?;
        rekisteri_clients::reach_subject(
            conn,
            &state.clients(),
            &request,
            &disclosure.registrar_id,
            &subject,
            permission,
        )?;
    }
    Ok(())
}

/// Documents the header on every POST that answers 201, with its 409 and 422, in the OpenAPI
/// document (the middleware serves them all).
pub fn document(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::{RefOr, Required};
    let parameter = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "1-255 visible ASCII characters, unique per request (e.g. a UUID). A retry with the same key, \
             method, path and body within 24 hours gets the first 201 response back (with \
             `Idempotent-Replayed: true`) and creates nothing. If the server died while the first \
             request ran, a retry gets 409 `idempotency-key-in-use` until the server's lease has run \
             out (30 s by default), then runs again if nothing was committed, or gets 409 `conflict` \
             with `Idempotent-Replayed: true` if it was. See docs/errors.md.",
        ))
        .schema(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .min_length(Some(1))
                .max_length(Some(255))
                .pattern(Some("^[!-~]{1,255}$")),
        ))
        .build();
    let problem = crate::problem::documented_problem;
    for item in doc.paths.paths.values_mut() {
        let Some(post) = item.post.as_mut() else { continue };
        if !post.responses.responses.contains_key("201") {
            continue;
        }
        post.parameters.get_or_insert_with(Vec::new).push(parameter.clone());
        for (status, extra) in [
            (
                "409",
                "The first request with the Idempotency-Key is still being processed (`idempotency-key-in-use`)",
            ),
            (
                "422",
                "The Idempotency-Key was used for another request (`idempotency-key-reused`)",
            ),
        ] {
            match post.responses.responses.get_mut(status) {
                Some(RefOr::T(response)) => {
                    response.description = format!("{}; or: {extra}", response.description);
                }
                Some(RefOr::Ref(_)) => {}
                None => {
                    post.responses.responses.insert(status.to_owned(), problem(extra));
                }
            }
        }
    }
    doc
}
