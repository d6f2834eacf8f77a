//! Logging in and out, and accepting an invitation (AC-3, AC-6).

use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::accounts::AccountBody;
use crate::extract::Json;
use crate::principal::Authenticated;
use crate::problem::{ApiError, Problem};
use crate::{AppState, RunBlocking};

pub fn configure(config: &mut ServiceConfig) {
    config.service(login).service(logout).service(accept_invitation);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "maija.meikalainen@example.fi")]
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// The session token: send it as `Authorization: Bearer <token>`. Shown once.
    pub token: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: String,
}

/// Log in with e-mail and password; returns a session token.
#[utoipa::path(
    tag = "auth",
    security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 400, description = "Malformed request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong e-mail address or password, or the account is not active", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins for this account or address; see Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many password checks at once; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/auth/login")]
async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { email, password } = body.into_inner();
    let address = state.trusted_proxies.of_request(&req);
    let now = state.clock.now();
    // A place on the hashing pool first: when it is full, the attempt is refused before it
    // costs (or counts) anything.
    let hashing = state.hashing.reserve_waiting().await?;
    let pending = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::begin_login(
                conn,
                &state.register(),
                &email,
                &address,
                now,
            )?)
        })
        .await?;
    let check = pending.password_check();
    let password_ok = hashing.run(move || check.verify(&password)).await?;
    let session = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::finish_login(
                conn,
                &state.register(),
                pending,
                password_ok,
                now,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(LoginResponse {
        token: session.token,
        expires_at: rekisteri_audit::format_time(session.expires_at),
    }))
}

/// End the current session.
#[utoipa::path(
    tag = "auth",
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "No valid session", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/auth/logout")]
async fn logout(state: web::Data<AppState>, principal: Authenticated) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    state
        .run(move |conn, state| Ok(rekisteri_accounts::logout(conn, &state.register(), &principal.0, now)?))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationRequest {
    /// The invitation token the inviter passed on.
    pub token: String,
    /// At least 12 characters, not one of the most common passwords.
    #[schema(format = Password, min_length = 12, max_length = 1024)]
    pub password: String,
}

/// Set the first password with an invitation token (single use, valid 7 days).
#[utoipa::path(
    tag = "auth",
    security(()),
    request_body = AcceptInvitationRequest,
    responses(
        (status = 200, description = "The account is active", body = AccountBody),
        (status = 400, description = "A password that is too short or too long", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown, used or expired token, or one of the most common passwords (`business-rule`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed acceptances from this address; see Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many password checks at once; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/auth/invitations/accept")]
async fn accept_invitation(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<AcceptInvitationRequest>,
) -> Result<HttpResponse, ApiError> {
    let AcceptInvitationRequest { token, password } = body.into_inner();
    let address = state.trusted_proxies.of_request(&req);
    let now = state.clock.now();
    // A place on the hashing pool first, as for a login: the pool's size bounds how many
    // password requests hold database connections at once, so a flood of them (bogus tokens
    // included) is shed when it is full. The token is checked (and a bad one counted)
    // before anything is hashed; a refusal gives the place back unused.
    let hashing = state.hashing.reserve_waiting().await?;
    let checked = password.clone();
    let pending = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::begin_accept_invitation(
                conn,
                &state.register(),
                &token,
                &checked,
                &address,
                now,
            )?)
        })
        .await?;
    let hasher = pending.password_hasher();
    let password_hash = hashing.run(move || hasher.hash(&password)).await??;
    let account = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::finish_accept_invitation(
                conn,
                &state.register(),
                pending,
                &password_hash,
                now,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(AccountBody::from(account)))
}
