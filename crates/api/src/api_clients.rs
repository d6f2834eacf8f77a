//! API clients and the OAuth 2.0 client-credentials token endpoint (AX-2.2).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rekisteri_accounts::api_clients::{ApiClient, ClientWithSecret, OAuthError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::extract::Json;
use crate::principal::Authenticated;
use crate::problem::ApiError;
use crate::{AppState, RunBlocking};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(token)
        .service(list_api_clients)
        .service(create_api_client)
        .service(rotate_secret)
        .service(attest_strong_user_authentication)
        .service(withdraw_strong_user_authentication);
}

/// A token request (RFC 6749 §4.4.2), form-encoded. The client authenticates with HTTP Basic
/// (`client_id:client_secret`) or with these fields in the body.
#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    #[schema(example = "client_credentials")]
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    #[schema(format = Password)]
    pub client_secret: Option<String>,
    /// Space-separated scopes; default all of the client's.
    pub scope: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: i64,
    pub scope: String,
}

/// An OAuth 2.0 error (RFC 6749 §5.2): the one error body of the API that is not a problem
/// document, because token clients expect this shape.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `unsupported_grant_type` or `invalid_scope`.
    pub error: &'static str,
    pub error_description: String,
}

fn oauth_error(error: OAuthError, description: &str, basic: bool) -> HttpResponse {
    let status = if error == OAuthError::InvalidClient {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    let body = OAuthErrorBody {
        error: error.as_str(),
        error_description: description.to_owned(),
    };
    let mut response = HttpResponse::build(status);
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    if status == StatusCode::UNAUTHORIZED && basic {
        response.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"rekisteri\""));
    }
    let mut response = response.json(&body);
    response.extensions_mut().insert(body);
    response
}

fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Exchange client credentials for a short-lived bearer token (OAuth 2.0 client credentials,
/// RFC 6749 §4.4). Errors follow RFC 6749 §5.2, not RFC 9457.
#[utoipa::path(
    tag = "auth",
    security(()),
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, description = "invalid_request, unsupported_grant_type or invalid_scope", body = OAuthErrorBody, content_type = "application/json"),
        (status = 401, description = "invalid_client", body = OAuthErrorBody, content_type = "application/json"),
    )
)]
#[post("/v1/auth/token")]
async fn token(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let form_encoded = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let basic = basic_credentials(&req);
    let invalid = |description: &str| oauth_error(OAuthError::InvalidRequest, description, basic.is_some());
    if !form_encoded {
        return invalid("send the request as application/x-www-form-urlencoded");
    }
    let Ok(form) = serde_urlencoded::from_bytes::<TokenRequest>(&body) else {
        return invalid("the form could not be read");
    };
    if form.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(
            OAuthError::UnsupportedGrantType,
            "only grant_type=client_credentials is supported",
            basic.is_some(),
        );
    }
    let credentials = match (&basic, form.client_id, form.client_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return invalid("authenticate the client with one method only");
        }
        (Some((id, secret)), None, None) => (id.clone(), secret.clone()),
        (None, Some(id), Some(secret)) => (id, secret),
        _ => return invalid("client_id and client_secret are required"),
    };
    let now = state.clock.now();
    let scope = form.scope;
    let (id, secret) = credentials;
    let result = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::api_clients::issue_token(
                conn,
                &state.register(),
                &id,
                &secret,
                scope.as_deref(),
                now,
            ))
        })
        .await;
    match result {
        Ok(Ok(token)) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(TokenResponse {
                access_token: token.access_token,
                token_type: "Bearer",
                expires_in: token.expires_in,
                scope: token.scopes.join(" "),
            }),
        Ok(Err(OAuthError::InvalidClient)) => oauth_error(
            OAuthError::InvalidClient,
            "unknown client, wrong secret or disabled client",
            basic.is_some(),
        ),
        Ok(Err(OAuthError::InvalidScope)) => oauth_error(
            OAuthError::InvalidScope,
            "a requested scope is not one of the client's",
            basic.is_some(),
        ),
        Ok(Err(other)) => oauth_error(other, "the request could not be processed", basic.is_some()),
        Err(e) => actix_web::ResponseError::error_response(&e),
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApiClientBody {
    /// The client id (public).
    pub id: String,
    pub organisation_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    #[schema(value_type = String, format = DateTime)]
    pub secret_rotated_at: String,
    pub disabled: bool,
    /// Present when an admin attested that the system authenticates its users strongly itself
    /// (AX-2): a user it names in `X-On-Behalf-Of` then reaches client data of registrars that
    /// require strong authentication without sending the user's own token.
    pub strong_user_authentication: Option<AttestationBody>,
}

/// Who attested and when.
#[derive(Serialize, ToSchema)]
pub struct AttestationBody {
    /// The admin's account id.
    pub attested_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub attested_at: String,
}

impl From<ApiClient> for ApiClientBody {
    fn from(c: ApiClient) -> Self {
        Self {
            id: c.id,
            organisation_id: c.organisation_id,
            name: c.name,
            scopes: c.scopes,
            created_at: rekisteri_audit::format_time(c.created_at),
            secret_rotated_at: rekisteri_audit::format_time(c.secret_rotated_at),
            disabled: c.disabled_at.is_some(),
            strong_user_authentication: c.strong_user_authentication.map(|a| AttestationBody {
                attested_by: a.attested_by,
                attested_at: rekisteri_audit::format_time(a.attested_at),
            }),
        }
    }
}

/// A client with its secret, shown only in this response.
#[derive(Serialize, ToSchema)]
pub struct ApiClientWithSecret {
    pub client: ApiClientBody,
    pub client_secret: String,
}

impl From<ClientWithSecret> for ApiClientWithSecret {
    fn from(c: ClientWithSecret) -> Self {
        Self {
            client: c.client.into(),
            client_secret: c.secret,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApiClientList {
    pub items: Vec<ApiClientBody>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiClient {
    #[schema(schema_with = crate::contract::name_200)]
    pub name: String,
    /// The organisation's id or OID.
    pub organisation: String,
    #[schema(schema_with = crate::contract::scopes)]
    pub scopes: Vec<String>,
}

/// Every API client (admins).
#[utoipa::path(
    tag = "accounts",
    responses(
        (status = 200, body = ApiClientList),
    )
)]
#[get("/v1/api-clients")]
async fn list_api_clients(state: web::Data<AppState>, principal: Authenticated) -> Result<HttpResponse, ApiError> {
    let items = state
        .run(move |conn, _| Ok(rekisteri_accounts::api_clients::list_api_clients(conn, &principal.0)?))
        .await?;
    Ok(HttpResponse::Ok().json(ApiClientList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Register an API client (admins); the secret is in this response only.
#[utoipa::path(
    tag = "accounts",
    request_body = NewApiClient,
    responses(
        (status = 201, body = ApiClientWithSecret),
    )
)]
#[post("/v1/api-clients")]
async fn create_api_client(
    state: web::Data<AppState>,
    principal: Authenticated,
    body: Json<NewApiClient>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let now = state.clock.now();
    let created = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::api_clients::create_api_client(
                conn,
                &state.register(),
                Some(&principal.0),
                &body.name,
                &body.organisation,
                &body.scopes,
                now,
            )?)
        })
        .await?;
    // The secret is shown once: not cached, not kept for an idempotent replay (PL-2).
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ApiClientWithSecret::from(created)))
}

/// A new secret (admins): the old secret and its tokens stop working at once.
#[utoipa::path(
    tag = "accounts",
    params(("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = ApiClientWithSecret),
    )
)]
#[post("/v1/api-clients/{id}/rotate-secret")]
async fn rotate_secret(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let rotated = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::api_clients::rotate_secret(
                conn,
                &state.register(),
                &principal.0,
                &id,
                now,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ApiClientWithSecret::from(rotated)))
}

/// Attest that the client's system authenticates its users strongly itself (admins; AX-2). A
/// security event names the admin.
#[utoipa::path(
    tag = "accounts",
    params(("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = ApiClientBody),
    )
)]
#[put("/v1/api-clients/{id}/strong-user-authentication")]
async fn attest_strong_user_authentication(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_strong_user_authentication(state, principal, path.into_inner(), true).await
}

/// Withdraw the attestation (admins): the users the client names need their own strong token
/// again where a registrar requires strong authentication.
#[utoipa::path(
    tag = "accounts",
    params(("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = ApiClientBody),
    )
)]
#[delete("/v1/api-clients/{id}/strong-user-authentication")]
async fn withdraw_strong_user_authentication(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_strong_user_authentication(state, principal, path.into_inner(), false).await
}

async fn set_strong_user_authentication(
    state: web::Data<AppState>,
    principal: Authenticated,
    id: String,
    attested: bool,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    let client = state
        .run(move |conn, state| {
            Ok(rekisteri_accounts::api_clients::set_strong_user_authentication(
                conn,
                &state.register(),
                &principal.0,
                &id,
                attested,
                now,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ApiClientBody::from(client)))
}
