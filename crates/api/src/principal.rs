//! Who is calling (AX-1, AX-2). The request middleware authenticates every request to a
//! non-public operation before routing; handlers take [`Authenticated`] to get the principal.

use std::future::{Ready, ready};

use futures_util::future::LocalBoxFuture;

use actix_web::dev::{Payload, ServiceRequest};
use actix_web::http::{Method, header};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use rekisteri_accounts::{AccountsError, Caller, Citizen, Principal};
use rekisteri_core::Refusal;

use crate::problem::{ApiError, ProblemType, problem_responses};
use crate::{AppState, RunBlocking};

/// The authenticated principal of the request.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let authenticating = Authenticating::from_request(req, payload).into_inner();
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let Authenticating { principal, unconfirmed } = authenticating?;
            match unconfirmed {
                None => Ok(Authenticated(principal)),
                // A handler that takes the principal before its blocking call: confirmed by a
                // hop of its own, as the middleware would have done.
                Some(unconfirmed) => {
                    let state = state.ok_or_else(|| ApiError::internal("no application state"))?;
                    state
                        .run(move |conn, state| unconfirmed.confirm(conn, state))
                        .await
                        .map(Authenticated)
                }
            }
        })
    }
}

/// The caller of an operation whose handler does its work in one blocking call
/// ([`crate::request::RegistrarCall`]): authenticated by the middleware, or, for a `GET` whose
/// token this process already knows, taken from memory and confirmed at the start of that call,
/// on its connection, before anything is read (PL-12: one blocking hop per audited read).
#[derive(Debug, Clone)]
pub struct Authenticating {
    principal: Principal,
    unconfirmed: Option<Unconfirmed>,
}

impl Authenticating {
    /// The principal the request's work runs as: the middleware's, or the one confirming the
    /// remembered guess answers now, which is the one to use if the rights changed meanwhile.
    pub(crate) fn confirm(
        self,
        conn: &mut rekisteri_db::DbConnection,
        state: &AppState,
    ) -> Result<Principal, ApiError> {
        match self.unconfirmed {
            None => Ok(self.principal),
            Some(unconfirmed) => unconfirmed.confirm(conn, state),
        }
    }
}

impl From<Authenticated> for Authenticating {
    fn from(authenticated: Authenticated) -> Self {
        Self {
            principal: authenticated.0,
            unconfirmed: None,
        }
    }
}

impl FromRequest for Authenticating {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // The middleware has refused every unauthenticated request to a non-public operation,
        // so a missing caller here means the operation is public yet asks for one.
        let extensions = req.extensions();
        ready(match extensions.get::<Caller>() {
            Some(Caller::Account(principal)) => Ok(Authenticating {
                principal: principal.clone(),
                unconfirmed: extensions.get::<Unconfirmed>().cloned(),
            }),
            Some(Caller::Citizen(_)) => Err(staff_only()),
            None => Err(unauthenticated()),
        })
    }
}

/// What an operation for staff and integrations answers a citizen.
fn staff_only() -> ApiError {
    ApiError::problem(
        ProblemType::Forbidden,
        "This operation is for staff and integrations; citizens use the /v1/me paths.",
    )
}

/// What confirming a principal taken from memory needs: the request's credentials, and where
/// it knocks, for the standing check (AX-4) the middleware would have made.
#[derive(Debug, Clone)]
struct Unconfirmed {
    token: String,
    on_behalf_of: Option<String>,
    knock: Knock,
}

/// A request at a registrar's door (AX-4): what a refusal there logs.
#[derive(Debug, Clone)]
struct Knock {
    method: Method,
    path: String,
    request_id: crate::RequestId,
}

impl Knock {
    fn of(req: &ServiceRequest) -> Self {
        Self {
            method: req.method().clone(),
            path: req.path().to_owned(),
            request_id: req
                .extensions()
                .get::<crate::RequestId>()
                .cloned()
                .unwrap_or_else(|| crate::RequestId(uuid::Uuid::new_v4().to_string())),
        }
    }

    fn purpose(&self) -> String {
        format!("{} outside the caller's registrars", self.method)
    }

    /// The account's standing in `registrar_id`, looked up: without it, the knock logged and 404.
    fn require(
        &self,
        conn: &mut rekisteri_db::DbConnection,
        state: &AppState,
        principal: &Principal,
        registrar_id: &str,
    ) -> Result<(), ApiError> {
        let context = audit_context(principal, registrar_id, &self.purpose(), &self.request_id);
        Ok(rekisteri_clients::access::require_standing(
            conn,
            &state.clients(),
            principal,
            &context,
            door_target(&self.path),
            rekisteri_db::to_primitive(state.clock.now()),
        )?)
    }
}

impl Unconfirmed {
    /// Authenticates the token on `conn` as the middleware does ([`authenticate`]): the access
    /// version read, and the kept principal used only if it still holds. A principal that has
    /// lost its standing in the path's registrar meanwhile is refused there as the middleware
    /// refuses it ([`require_standing`]).
    fn confirm(self, conn: &mut rekisteri_db::DbConnection, state: &AppState) -> Result<Principal, ApiError> {
        let now = state.clock.now();
        let caller = authenticate_caller(conn, state, &self.token, self.on_behalf_of.as_deref(), None, now)
            .map_err(authentication_error)?;
        let Caller::Account(principal) = caller else {
            return Err(staff_only());
        };
        if let Some(registrar_id) = registrar_of_path(&self.knock.path)
            && !rekisteri_clients::access::has_standing_without_lookup(&principal, registrar_id)
        {
            self.knock.require(conn, state, &principal, registrar_id)?;
        }
        Ok(principal)
    }
}

problem_responses!(
    /// What an operation for staff and integrations answers a citizen ([`Authenticated`]).
    StaffOnly { "403" => "A citizen: the operation is for staff and integrations" }
);

problem_responses!(
    /// What an operation for citizens answers any other caller ([`CitizenAuthenticated`]).
    CitizenOnly { "403" => "Not a citizen's login" }
);

/// A citizen identified by a trusted identity provider (AX-1).
#[derive(Debug, Clone)]
pub struct CitizenAuthenticated(pub Citizen);

impl FromRequest for CitizenAuthenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.extensions().get::<Caller>() {
            Some(Caller::Citizen(citizen)) => Ok(CitizenAuthenticated(citizen.clone())),
            Some(Caller::Account(_)) => Err(ApiError::problem(
                ProblemType::Forbidden,
                "This operation is for citizens signed in through a trusted identity provider.",
            )),
            None => Err(unauthenticated()),
        })
    }
}

pub fn unauthenticated() -> ApiError {
    ApiError::problem(
        ProblemType::Unauthenticated,
        "Send a valid token as 'Authorization: Bearer <token>'.",
    )
}

fn bearer_token(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty() && t.len() <= 8192)
}

/// The header in which an integration names the end user it acts for (AX-1), as X-Road's
/// user id is carried; the user's rights then apply and the user is logged.
pub const ON_BEHALF_OF: &str = "x-on-behalf-of";

/// The header in which an integration that names a user may send that user's own token from a
/// trusted staff identity provider, so that the user's strong sign-in stands behind the call
/// (AX-2) where the registrar requires it.
pub const ON_BEHALF_OF_TOKEN: &str = "x-on-behalf-of-token";

/// Whether `value` has the form of an account id: a hyphenated UUID (`format: uuid`).
fn is_account_id(value: &str) -> bool {
    value.len() == 36 && uuid::Uuid::try_parse(value).is_ok()
}

/// Authenticates the request's bearer token and stores the principal in its extensions.
pub async fn authenticate(req: &ServiceRequest) -> Result<(), ApiError> {
    let token = bearer_token(req).ok_or_else(unauthenticated)?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("no application state"))?;
    let on_behalf_of = req
        .headers()
        .get(ON_BEHALF_OF)
        // Checked whatever the token: the document declares the header's form for every caller.
        .map(|v| {
            v.to_str()
                .ok()
                .map(str::trim)
                .filter(|id| is_account_id(id))
                .map(str::to_owned)
                .ok_or_else(|| ApiError::field("X-On-Behalf-Of", "must be an account id (a UUID)"))
        })
        .transpose()?;
    let user_token = req
        .headers()
        .get(ON_BEHALF_OF_TOKEN)
        .map(|v| v.to_str().map(|s| s.trim().to_owned()))
        .transpose()
        .map_err(|_| ApiError::field("X-On-Behalf-Of-Token", "must be a JWT"))?;
    let now = state.clock.now();
    // A read by a token this process knows needs no blocking call here: its handler's call
    // confirms the principal before its work (one hop instead of two). Only reads: a write's
    // Idempotency-Key layer acts on the caller before the handler runs.
    if user_token.is_none()
        && matches!(*req.method(), Method::GET | Method::HEAD)
        && let Some(principal) =
            rekisteri_accounts::remembered_bearer(&state.access_cache, &token, on_behalf_of.as_deref(), now)
        && registrar_of_path(req.path())
            .is_none_or(|rid| rekisteri_clients::access::has_standing_without_lookup(&principal, rid))
    {
        let unconfirmed = Unconfirmed {
            token,
            on_behalf_of,
            knock: Knock::of(req),
        };
        req.extensions_mut().insert(Caller::Account(principal));
        req.extensions_mut().insert(unconfirmed);
        return Ok(());
    }
    let caller = state
        .run(move |conn, state| {
            authenticate_caller(conn, state, &token, on_behalf_of.as_deref(), user_token.as_deref(), now)
                .map_err(authentication_error)
        })
        .await?;
    req.extensions_mut().insert(caller);
    Ok(())
}

/// Authentication answers only 401 or 403: anything else it returns is a failure of ours, not
/// something the caller could mend.
fn authentication_error(e: AccountsError) -> ApiError {
    match e {
        AccountsError::Unauthenticated => unauthenticated(),
        AccountsError::Refused(Refusal::Forbidden(detail)) => ApiError::problem(ProblemType::Forbidden, detail),
        AccountsError::Db(e) => e.into(),
        AccountsError::Audit(e) => e.into(),
        e @ (AccountsError::Refused(_)
        | AccountsError::InvalidCredentials
        | AccountsError::Throttled { .. }
        | AccountsError::StrongAuthenticationRequired
        | AccountsError::Crypto(_)) => ApiError::internal(e),
    }
}

fn authenticate_caller(
    conn: &mut rekisteri_db::DbConnection,
    state: &AppState,
    token: &str,
    on_behalf_of: Option<&str>,
    user_token: Option<&str>,
    now: time::OffsetDateTime,
) -> Result<Caller, AccountsError> {
    let register = state.register();
    let mut caller = rekisteri_accounts::authenticate_bearer(conn, &register, token, on_behalf_of, now)?;
    if let (Some(user_token), Caller::Account(principal)) = (user_token, &mut caller) {
        rekisteri_accounts::api_clients::confirm_user_assertion(conn, &register, principal, user_token, now)?;
    }
    Ok(caller)
}

/// The registrar a path of a registrar's register names (`/v1/registrars/{rid}/…`).
pub fn registrar_of_path(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/registrars/")
        .and_then(|rest| rest.split('/').next())
        .filter(|rid| !rid.is_empty())
}

/// Refuses, before any other check, a caller without standing in the registrar the path names
/// with what a registrar that does not exist answers (AX-4): 404. The registrar's own people
/// and systems pass without a database round trip.
pub async fn require_standing(req: &ServiceRequest) -> Result<(), ApiError> {
    let Some(registrar_id) = registrar_of_path(req.path()) else {
        return Ok(());
    };
    let caller = match req.extensions().get::<Caller>() {
        Some(caller) => caller.clone(),
        None => return Err(ApiError::NotFound),
    };
    if let Caller::Account(principal) = &caller
        && rekisteri_clients::access::has_standing_without_lookup(principal, registrar_id)
    {
        return Ok(());
    }
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("no application state"))?;
    let knock = Knock::of(req);
    let registrar_id = registrar_id.to_owned();
    match caller {
        Caller::Account(principal) => {
            state
                .run(move |conn, state| knock.require(conn, state, &principal, &registrar_id))
                .await
        }
        // Citizens reach their records through /v1/me, never a registrar's paths; the knock is
        // logged all the same (PL-19).
        Caller::Citizen(citizen) => {
            let now = state.clock.now();
            state
                .run(move |conn, state| {
                    let request = rekisteri_clients::CitizenRequest {
                        citizen: &citizen,
                        request_id: &knock.request_id.0,
                        now,
                    };
                    let target = door_target(&knock.path);
                    Err(request
                        .refuse_at_door(conn, &state.clients(), &registrar_id, &knock.purpose(), target)
                        .into())
                })
                .await
        }
    }
}

/// The record a registrar path names (`…/clients/{id}/…` is client `id`), for the usage entry of
/// a refused request. Only an id that is a UUID is taken: a path is the caller's text, and the
/// log must not keep whatever was typed there (an identity code, say).
fn door_target(path: &str) -> rekisteri_clients::access::DoorTarget {
    use rekisteri_clients::access::DoorTarget;
    let mut segments = path.split('/').skip(4);
    match (segments.next(), segments.next()) {
        (Some(collection), Some(id)) if uuid::Uuid::parse_str(id).is_ok() => DoorTarget::Record {
            kind: collection.strip_suffix('s').unwrap_or(collection).replace('-', "_"),
            id: id.to_owned(),
        },
        _ => DoorTarget::Registrar,
    }
}

/// The audit context of a request by `principal` that uses data of `registrar_id`'s register
/// (AU-1): an integration without a named user is logged as itself, with its client id as the
/// calling system; one acting for a user is logged as that user, on behalf of whom it acts. The
/// entry goes into the registrar's log and names the principal's own organisation as its log
/// controller: a provider's staff's uses belong to the provider's register keeping.
pub fn audit_context(
    principal: &Principal,
    registrar_id: &str,
    purpose: &str,
    request_id: &crate::RequestId,
) -> rekisteri_audit::AuditContext {
    use rekisteri_audit::{AccessBasis, ActorKind};
    let bare_integration = principal.integration.as_ref().is_some_and(|i| i.on_behalf_of.is_none());
    rekisteri_audit::AuditContext {
        registrar_id: registrar_id.to_owned(),
        log_controller_id: principal.organisation_id.clone(),
        actor_kind: if bare_integration {
            ActorKind::Integration
        } else {
            ActorKind::Staff
        },
        actor_id: principal.account_id.clone(),
        actor_name: None,
        on_behalf_of: principal.integration.as_ref().and_then(|i| i.on_behalf_of.clone()),
        service_unit_oid: None,
        purpose: purpose.to_owned(),
        access_basis: if bare_integration {
            AccessBasis::Integration
        } else {
            AccessBasis::Role
        },
        special_reason: None,
        request_id: request_id.0.clone(),
        calling_system: principal.integration.as_ref().map(|i| i.client_id.clone()),
    }
}
