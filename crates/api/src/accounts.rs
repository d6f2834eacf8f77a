//! User accounts (AC-2..AC-4, AC-8, AC-9) and the caller's own view (`/v1/me`).

use actix_web::{HttpResponse, delete, get, patch, post, web};
use rekisteri_accounts::{Account, NewAccount, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::extract::{Json, parse_time};
use crate::principal::{Authenticated, StaffOnly};
use crate::problem::{ApiError, Problem};
use crate::{AppState, RunBlocking};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(me)
        .service(list_accounts)
        .service(invite)
        .service(show_account)
        .service(close)
        .service(restore)
        .service(grant_role)
        .service(end_role)
        .service(update_account)
        .service(list_account_service_units)
        .service(join_unit)
        .service(leave_unit);
}

#[derive(Serialize, ToSchema)]
pub struct RoleBody {
    /// The grant's id, for ending it.
    pub id: String,
    #[schema(example = "main_user")]
    pub role: String,
    #[schema(value_type = String, format = DateTime)]
    pub valid_from: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_until: Option<String>,
}

/// An account as its managers see it. Never a password or token.
#[derive(Serialize, ToSchema)]
pub struct AccountBody {
    pub id: String,
    pub organisation_id: String,
    pub email: String,
    pub first_name: String,
    pub surname: String,
    /// `invited`, `active` or `closed`.
    pub status: String,
    pub roles: Vec<RoleBody>,
    pub service_unit_ids: Vec<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closed_at: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_login_at: Option<String>,
}

impl From<Account> for AccountBody {
    fn from(a: Account) -> Self {
        let time = rekisteri_audit::format_time;
        Self {
            id: a.id,
            organisation_id: a.organisation_id,
            email: a.email,
            first_name: a.first_name,
            surname: a.surname,
            status: a.status,
            roles: a
                .roles
                .into_iter()
                .map(|r| RoleBody {
                    id: r.id,
                    role: r.role.as_str().to_owned(),
                    valid_from: time(r.valid_from),
                    valid_until: r.valid_until.map(time),
                })
                .collect(),
            service_unit_ids: a.service_unit_ids,
            closed_at: a.closed_at.map(time),
            last_login_at: a.last_login_at.map(time),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AccountList {
    pub items: Vec<AccountBody>,
}

#[derive(Serialize, ToSchema)]
pub struct MeBody {
    pub account: AccountBody,
    /// The roles in force now.
    pub roles: Vec<String>,
    /// The service units the caller works in now.
    pub service_unit_ids: Vec<String>,
    #[schema(example = "password")]
    pub auth_method: String,
}

/// The caller: its account, organisation, current roles and service units.
#[utoipa::path(
    tag = "accounts",
    responses(
        (status = 200, body = MeBody),
    )
)]
#[get("/v1/me")]
async fn me(state: web::Data<AppState>, principal: Authenticated) -> Result<HttpResponse, ApiError> {
    let principal = principal.0;
    let id = principal.account_id.clone();
    let account = state
        .run(move |conn, state| Ok(rekisteri_accounts::get_account(conn, &state.register(), None, &id)?))
        .await?;
    Ok(HttpResponse::Ok().json(MeBody {
        account: account.into(),
        roles: principal.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        service_unit_ids: principal.service_unit_ids,
        auth_method: principal.auth_method.as_str().to_owned(),
    }))
}

/// Accounts the caller manages: all for admins, its organisation's for main users, itself
/// otherwise.
#[utoipa::path(
    tag = "accounts",
    responses(
        (status = 200, body = AccountList),
        StaffOnly,
    )
)]
#[get("/v1/accounts")]
async fn list_accounts(state: web::Data<AppState>, principal: Authenticated) -> Result<HttpResponse, ApiError> {
    let items = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::list_accounts(
                conn,
                &state.register(),
                &principal.0,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(AccountList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    #[schema(example = "maija.meikalainen@example.fi")]
    pub email: String,
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub first_name: String,
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub surname: String,
    pub organisation_id: String,
    #[schema(schema_with = crate::contract::role)]
    pub role: Role,
    #[serde(default)]
    pub service_unit_ids: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct InvitationBody {
    pub account: AccountBody,
    /// The single-use invitation token, valid 7 days. Shown only here: pass it to the user, who
    /// sets a password with POST /v1/auth/invitations/accept.
    pub invitation_token: String,
}

/// Invite a user: creates the account and returns its invitation token once (admins; main users
/// for their own organisation, never as admin).
#[utoipa::path(
    tag = "accounts",
    request_body = InviteBody,
    responses(
        (status = 201, body = InvitationBody),
        (status = 404, description = "The organisation is not one the caller manages", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The e-mail address has an account", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/accounts")]
async fn invite(
    state: web::Data<AppState>,
    principal: Authenticated,
    body: Json<InviteBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let now = state.clock.now();
    let new = NewAccount {
        email: body.email,
        first_name: body.first_name,
        surname: body.surname,
        organisation_id: body.organisation_id,
        role: body.role,
        service_unit_ids: body.service_unit_ids,
    };
    let (account, token) = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::invite(
                conn,
                &state.register(),
                Some(&principal.0),
                new,
                now,
            )?)
        })
        .await?;
    // The token is shown once: not cached, not kept for an idempotent replay (PL-2).
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(InvitationBody {
            account: account.into(),
            invitation_token: token,
        }))
}

/// One account, to itself, its organisation's main users and admins (AC-9).
#[utoipa::path(
    tag = "accounts",
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 200, body = AccountBody),
        StaffOnly,
    )
)]
#[get("/v1/accounts/{id}")]
async fn show_account(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let account = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::get_account(
                conn,
                &state.register(),
                Some(&principal.0),
                &id,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(AccountBody::from(account)))
}

/// Close an account: it cannot log in and its sessions end at once; admins can restore it within
/// 30 days (AC-8).
#[utoipa::path(
    tag = "accounts",
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 200, body = AccountBody),
    )
)]
#[delete("/v1/accounts/{id}")]
async fn close(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let account = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::close_account(
                conn,
                &state.register(),
                &principal.0,
                &id,
                now,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(AccountBody::from(account)))
}

/// Restore a closed account within 30 days of closing (admins).
#[utoipa::path(
    tag = "accounts",
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 200, body = AccountBody),
        (status = 409, description = "Not closed, or closed more than 30 days ago", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/accounts/{id}/restore")]
async fn restore(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let account = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::restore_account(
                conn,
                &state.register(),
                &principal.0,
                &id,
                now,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(AccountBody::from(account)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    #[schema(schema_with = crate::contract::role)]
    pub role: Role,
    /// RFC 3339 or a date; default now.
    #[schema(schema_with = crate::contract::time_or_date_or_null)]
    pub valid_from: Option<String>,
    /// RFC 3339 or a date; default open-ended.
    #[schema(schema_with = crate::contract::time_or_date_or_null)]
    pub valid_until: Option<String>,
}

/// Grant a role for a period (AC-11): admins any; main users their own organisation's, never
/// admin. Earlier grants stay as the account's history of rights.
#[utoipa::path(
    tag = "accounts",
    params(("id" = String, Path, description = "Account id")),
    request_body = GrantBody,
    responses(
        (status = 201, body = AccountBody),
    )
)]
#[post("/v1/accounts/{id}/roles")]
async fn grant_role(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
    body: Json<GrantBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let body = body.into_inner();
    let valid_from = parse_time("valid_from", body.valid_from.as_deref())?;
    let valid_until = parse_time("valid_until", body.valid_until.as_deref())?;
    let now = state.clock.now();
    let account = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::grant_role(
                conn,
                &state.register(),
                &principal.0,
                &id,
                body.role,
                valid_from,
                valid_until,
                now,
            )?)
        })
        .await?;
    Ok(HttpResponse::Created().json(AccountBody::from(account)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndGrantBody {
    /// When the role stops (RFC 3339 or a date); default now. Ending it now also ends the
    /// account's open sessions.
    #[schema(schema_with = crate::contract::time_or_date_or_null)]
    pub valid_until: Option<String>,
}

/// End a role when the person moves to other tasks or leaves (AC-11); it stops working at that
/// moment. The grant is kept as history.
#[utoipa::path(
    tag = "accounts",
    params(("id" = String, Path, description = "Account id"), ("grant_id" = String, Path, description = "Role grant id")),
    request_body = EndGrantBody,
    responses(
        (status = 200, body = AccountBody),
        (status = 409, description = "The role has already ended", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/accounts/{id}/roles/{grant_id}")]
async fn end_role(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<(String, String)>,
    body: Json<EndGrantBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, grant_id) = path.into_inner();
    let valid_until = parse_time("valid_until", body.into_inner().valid_until.as_deref())?;
    let now = state.clock.now();
    let account = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::end_role(
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
    Ok(HttpResponse::Ok().json(AccountBody::from(account)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountChangesBody {
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub first_name: Option<String>,
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub surname: Option<String>,
}

/// Change an account's names: the account itself, its organisation's main users, admins.
#[utoipa::path(
    tag = "accounts",
    params(("id" = String, Path, description = "Account id")),
    request_body = AccountChangesBody,
    responses(
        (status = 200, body = AccountBody),
        StaffOnly,
        (status = 409, description = "The account is closed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/accounts/{id}")]
async fn update_account(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
    body: Json<AccountChangesBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let body = body.into_inner();
    let changes = rekisteri_accounts::AccountChanges {
        first_name: body.first_name,
        surname: body.surname,
    };
    let now = state.clock.now();
    let account = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::update_account(
                conn,
                &state.register(),
                &principal.0,
                &id,
                changes,
                now,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(AccountBody::from(account)))
}

#[derive(Serialize, ToSchema)]
pub struct MembershipBody {
    pub id: String,
    pub account_id: String,
    pub service_unit_id: String,
    #[schema(value_type = String, format = DateTime)]
    pub valid_from: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[schema(schema_with = crate::contract::time_or_date_or_null)]
    pub valid_until: Option<String>,
}

impl From<rekisteri_accounts::ServiceUnitMembership> for MembershipBody {
    fn from(m: rekisteri_accounts::ServiceUnitMembership) -> Self {
        Self {
            id: m.id,
            account_id: m.account_id,
            service_unit_id: m.service_unit_id,
            valid_from: rekisteri_audit::format_time(m.valid_from),
            valid_until: m.valid_until.map(rekisteri_audit::format_time),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MembershipList {
    pub items: Vec<MembershipBody>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipRequest {
    pub service_unit_id: String,
    /// RFC 3339 or a date; default now.
    #[schema(schema_with = crate::contract::time_or_date_or_null)]
    pub valid_from: Option<String>,
    #[schema(schema_with = crate::contract::time_or_date_or_null)]
    pub valid_until: Option<String>,
}

/// The account's service-unit memberships, ended ones included (AC-8, AC-11).
#[utoipa::path(
    tag = "accounts",
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 200, body = MembershipList),
        StaffOnly,
    )
)]
#[get("/v1/accounts/{id}/service-units")]
async fn list_account_service_units(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let items = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::service_unit_memberships(
                conn,
                &state.register(),
                &principal.0,
                &id,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(MembershipList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Add the account to a service unit of its organisation for a validity period (AC-11).
#[utoipa::path(
    tag = "accounts",
    params(("id" = String, Path, description = "Account id")),
    request_body = MembershipRequest,
    responses(
        (status = 201, body = MembershipBody),
    )
)]
#[post("/v1/accounts/{id}/service-units")]
async fn join_unit(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
    body: Json<MembershipRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let body = body.into_inner();
    let valid_from = parse_time("valid_from", body.valid_from.as_deref())?;
    let valid_until = parse_time("valid_until", body.valid_until.as_deref())?;
    let now = state.clock.now();
    let membership = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::add_service_unit_membership(
                conn,
                &state.register(),
                &principal.0,
                &id,
                &body.service_unit_id,
                valid_from,
                valid_until,
                now,
            )?)
        })
        .await?;
    Ok(HttpResponse::Created().json(MembershipBody::from(membership)))
}

/// End a service-unit membership (AC-11): it stops at that moment, and ending it now ends the
/// account's open sessions. The membership is kept as history.
#[utoipa::path(
    tag = "accounts",
    params(("id" = String, Path, description = "Account id"), ("membership_id" = String, Path, description = "Membership id")),
    request_body = EndGrantBody,
    responses(
        (status = 200, body = MembershipBody),
        (status = 409, description = "The membership has already ended", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/accounts/{id}/service-units/{membership_id}")]
async fn leave_unit(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<(String, String)>,
    body: Json<EndGrantBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, membership_id) = path.into_inner();
    let valid_until = parse_time("valid_until", body.into_inner().valid_until.as_deref())?;
    let now = state.clock.now();
    let membership = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::end_service_unit_membership(
                conn,
                &state.register(),
                &principal.0,
                &id,
                &membership_id,
                valid_until,
                now,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(MembershipBody::from(membership)))
}
