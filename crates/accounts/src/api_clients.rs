//! API clients (AX-2.2): other systems — client-record systems, telephony, back offices — log
//! in with OAuth 2.0 client credentials (RFC 6749 §4.4). The secret is shown once and kept only
//! as a hash; it can be rotated. An access token is short-lived and kept only as a hash.
//!
//! An integration acts with its scopes, or, when it names an end user of its own organisation
//! (`X-On-Behalf-Of`), with that user's rights; the end user is then carried into every log entry.

use diesel::prelude::*;
use rekisteri_core::Refusal;
use rekisteri_crypto::{equal_constant_time, random_token, token_hash};
use rekisteri_db::schema::{accounts, api_clients, api_tokens, organisations};
use rekisteri_db::{DbConnection, write_transaction};
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::organisations::security_event;
use crate::{AccountsError, AuthMethod, Permission, Principal, Register, now_primitive, rule, validation};

/// The scopes an API client can hold, and the permissions each grants. Administration
/// (organisations, accounts, service areas, security events) has no scope: no system acts as an
/// administrator (AX-1).
pub const SCOPES: &[(&str, &[Permission])] = &[
    ("audit:read", &[Permission::ReadRegistrarAudit]),
    (
        "clients:read",
        &[
            Permission::ReadClients,
            Permission::ReadClientsInCareRelationship,
            Permission::SpecialReasonAccess,
        ],
    ),
    ("clients:write", &[Permission::WriteClients]),
    ("service_events:write", &[Permission::RecordServiceEvents]),
    ("settlements:read", &[Permission::ReadSettlements]),
    ("statistics:read", &[Permission::ReadStatistics]),
    ("clients:archive", &[Permission::ExportClientArchive]),
    ("consent:write", &[Permission::ManageDisclosureConsent]),
    ("registry_use_rights:write", &[Permission::ManageRegistryUseRights]),
    ("case_documents:write", &[Permission::StoreCaseDocuments]),
    ("calls:write", &[Permission::PushContacts]),
    ("calls:read", &[Permission::ReadContacts]),
    ("vtj:write", &[Permission::ManageVtj]),
];

/// Whether one of `scopes` grants `permission`.
pub fn scopes_grant(scopes: &[String], permission: Permission) -> bool {
    scopes.iter().any(|scope| {
        SCOPES
            .iter()
            .any(|(name, granted)| name == scope && granted.contains(&permission))
    })
}

/// How long an access token lives.
pub const ACCESS_TOKEN_SECONDS: i64 = 900;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiClient {
    pub id: String,
    pub organisation_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: PrimitiveDateTime,
    pub secret_rotated_at: PrimitiveDateTime,
    pub disabled_at: Option<PrimitiveDateTime>,
    /// Set when an admin attested that the system authenticates its users strongly itself
    /// (AX-2): who attested it and when.
    pub strong_user_authentication: Option<Attestation>,
}

/// An admin's statement about an API client, with who made it and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    pub attested_by: String,
    pub attested_at: PrimitiveDateTime,
}

/// A client and its secret, which is shown only here.
#[derive(Debug)]
pub struct ClientWithSecret {
    pub client: ApiClient,
    pub secret: String,
}

/// The access token of a successful client-credentials grant.
#[derive(Debug)]
pub struct AccessToken {
    pub access_token: String,
    pub expires_in: i64,
    pub scopes: Vec<String>,
}

/// Why a token request was refused, as RFC 6749 §5.2 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthError {
    InvalidRequest,
    InvalidClient,
    UnsupportedGrantType,
    InvalidScope,
}

impl OAuthError {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
        }
    }
}

fn parse_scopes(field: &'static str, scopes: &[String]) -> Result<Vec<String>, AccountsError> {
    let mut out: Vec<String> = Vec::new();
    for scope in scopes {
        if !SCOPES.iter().any(|(known, _)| known == scope) {
            return Err(validation(field, "unknown scope; see docs/permissions.md"));
        }
        if !out.contains(scope) {
            out.push(scope.clone());
        }
    }
    out.sort();
    Ok(out)
}

/// An API client's row, in the order of `client_columns!`.
#[derive(Queryable)]
struct ClientRow {
    id: String,
    organisation_id: String,
    name: String,
    /// Space-separated.
    scopes: String,
    created_at: PrimitiveDateTime,
    secret_rotated_at: PrimitiveDateTime,
    disabled_at: Option<PrimitiveDateTime>,
    attested_by: Option<String>,
    attested_at: Option<PrimitiveDateTime>,
}

fn from_row(row: ClientRow) -> ApiClient {
    ApiClient {
        id: row.id,
        organisation_id: row.organisation_id,
        name: row.name,
        scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
        created_at: row.created_at,
        secret_rotated_at: row.secret_rotated_at,
        disabled_at: row.disabled_at,
        strong_user_authentication: row.attested_by.zip(row.attested_at).map(|(attested_by, attested_at)| {
            Attestation {
                attested_by,
                attested_at,
            }
        }),
    }
}

macro_rules! client_columns {
    () => {
        (
            api_clients::id,
            api_clients::organisation_id,
            api_clients::name,
            api_clients::scopes,
            api_clients::created_at,
            api_clients::secret_rotated_at,
            api_clients::disabled_at,
            api_clients::strong_user_authentication_attested_by,
            api_clients::strong_user_authentication_attested_at,
        )
    };
}

fn require_admin(actor: Option<&Principal>) -> Result<(), AccountsError> {
    match actor {
        Some(actor) if !actor.can(Permission::ManageAllAccounts) => Err(AccountsError::Refused(Refusal::Forbidden(
            "only admins manage API clients".into(),
        ))),
        _ => Ok(()),
    }
}

/// Registers an API client of `organisation` (an id or OID) with `scopes`; `actor` is `None`
/// only for the command line.
pub fn create_api_client(
    conn: &mut DbConnection,
    register: &Register,
    actor: Option<&Principal>,
    name: &str,
    organisation: &str,
    scopes: &[String],
    now: OffsetDateTime,
) -> Result<ClientWithSecret, AccountsError> {
    require_admin(actor)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(validation("name", "must be 1-200 characters"));
    }
    let scopes = parse_scopes("scopes", scopes)?;
    if scopes.is_empty() {
        return Err(validation("scopes", "name at least one scope"));
    }
    let organisation_id: String = organisations::table
        .filter(
            organisations::id
                .eq(organisation)
                .or(organisations::oid.eq(organisation)),
        )
        .select(organisations::id)
        .first(conn)
        .optional()?
        .ok_or_else(|| rule("organisation", "no such organisation"))?;
    let id = uuid::Uuid::new_v4().to_string();
    let secret = random_token()?;
    let at = now_primitive(now);
    write_transaction(conn, |conn| {
        diesel::insert_into(api_clients::table)
            .values((
                api_clients::id.eq(&id),
                api_clients::organisation_id.eq(&organisation_id),
                api_clients::name.eq(name),
                api_clients::secret_hash.eq(token_hash(&secret).to_vec()),
                api_clients::scopes.eq(scopes.join(" ")),
                api_clients::created_by.eq(actor.map(|a| a.account_id.clone())),
                api_clients::created_at.eq(at),
                api_clients::secret_rotated_at.eq(at),
            ))
            .execute(conn)?;
        let event = security_event(
            Some(&organisation_id),
            actor,
            "api_client_created",
            serde_json::json!({"client_id": id, "scopes": scopes}),
            at,
        );
        register.audit.append_in(conn, vec![event], at)?;
        Ok::<_, AccountsError>(())
    })?;
    Ok(ClientWithSecret {
        client: get_api_client(conn, &id)?,
        secret,
    })
}

fn get_api_client(conn: &mut DbConnection, id: &str) -> Result<ApiClient, AccountsError> {
    api_clients::table
        .find(id)
        .select(client_columns!())
        .first::<ClientRow>(conn)
        .optional()?
        .map(from_row)
        .ok_or(AccountsError::Refused(Refusal::NotFound))
}

/// Every API client (admins).
pub fn list_api_clients(conn: &mut DbConnection, actor: &Principal) -> Result<Vec<ApiClient>, AccountsError> {
    require_admin(Some(actor))?;
    Ok(api_clients::table
        .select(client_columns!())
        .order(api_clients::created_at)
        .load::<ClientRow>(conn)?
        .into_iter()
        .map(from_row)
        .collect())
}

/// A new secret for the client; the old one and every token issued with it stop at once.
pub fn rotate_secret(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
    id: &str,
    now: OffsetDateTime,
) -> Result<ClientWithSecret, AccountsError> {
    require_admin(Some(actor))?;
    let client = get_api_client(conn, id)?;
    let secret = random_token()?;
    let at = now_primitive(now);
    write_transaction(conn, |conn| {
        diesel::update(api_clients::table.find(id))
            .set((
                api_clients::secret_hash.eq(token_hash(&secret).to_vec()),
                api_clients::secret_rotated_at.eq(at),
            ))
            .execute(conn)?;
        let revoked = diesel::delete(api_tokens::table.filter(api_tokens::client_id.eq(id))).execute(conn)?;
        let event = security_event(
            Some(&client.organisation_id),
            Some(actor),
            "api_client_secret_rotated",
            serde_json::json!({"client_id": id, "tokens_revoked": revoked}),
            at,
        );
        register.audit.append_in(conn, vec![event], at)?;
        Ok::<_, AccountsError>(())
    })?;
    Ok(ClientWithSecret {
        client: get_api_client(conn, id)?,
        secret,
    })
}

/// Records (or, with `attested` false, withdraws) an admin's attestation that the client's
/// system authenticates its users strongly itself (AX-2): a user it names then reaches client
/// data of a registrar that requires strong authentication. A security event either way.
pub fn set_strong_user_authentication(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
    id: &str,
    attested: bool,
    now: OffsetDateTime,
) -> Result<ApiClient, AccountsError> {
    require_admin(Some(actor))?;
    let client = get_api_client(conn, id)?;
    let at = now_primitive(now);
    let (by, when) = if attested {
        (Some(actor.account_id.clone()), Some(at))
    } else {
        (None, None)
    };
    write_transaction(conn, |conn| {
        diesel::update(api_clients::table.find(id))
            .set((
                api_clients::strong_user_authentication_attested_by.eq(by),
                api_clients::strong_user_authentication_attested_at.eq(when),
            ))
            .execute(conn)?;
        let event = security_event(
            Some(&client.organisation_id),
            Some(actor),
            if attested {
                "api_client_strong_user_authentication_attested"
            } else {
                "api_client_strong_user_authentication_withdrawn"
            },
            serde_json::json!({"client_id": id}),
            at,
        );
        register.audit.append_in(conn, vec![event], at)?;
        Ok::<_, AccountsError>(())
    })?;
    get_api_client(conn, id)
}

/// The client-credentials grant: checks the secret and issues a short-lived access token with
/// the requested scopes (all of the client's when none are named). Every grant and refusal is a
/// security event.
pub fn issue_token(
    conn: &mut DbConnection,
    register: &Register,
    client_id: &str,
    client_secret: &str,
    requested_scopes: Option<&str>,
    now: OffsetDateTime,
) -> Result<AccessToken, OAuthError> {
    let at = now_primitive(now);
    let stored: Option<(String, Vec<u8>, String, Option<PrimitiveDateTime>)> = api_clients::table
        .find(client_id)
        .select((
            api_clients::organisation_id,
            api_clients::secret_hash,
            api_clients::scopes,
            api_clients::disabled_at,
        ))
        .first(conn)
        .optional()
        .map_err(|_| OAuthError::InvalidRequest)?;
    let presented = token_hash(client_secret);
    // Refusals are one security event per client (all unknown ids together) per window.
    // The active key only: a short-lived counter simply restarts when the blind key switches.
    let refusal_key = rekisteri_crypto::BlindIndex::new(&register.keyring)
        .compute(
            "refused_api_client",
            if stored.is_some() { client_id } else { "" }.as_bytes(),
        )
        .to_vec();
    let Some((organisation_id, _, scopes, None)) = stored.filter(|s| equal_constant_time(&s.1, &presented)) else {
        let details = serde_json::json!({"client_id_length": client_id.len()});
        let _ = crate::sessions::record_refusal(conn, register, "api_client_refused", &refusal_key, details, at);
        return Err(OAuthError::InvalidClient);
    };
    let held: Vec<String> = scopes.split_whitespace().map(str::to_owned).collect();
    let granted: Vec<String> = match requested_scopes.map(str::trim).filter(|s| !s.is_empty()) {
        None => held.clone(),
        Some(requested) => {
            let requested: Vec<String> = requested.split_whitespace().map(str::to_owned).collect();
            if requested.iter().any(|s| !held.contains(s)) {
                return Err(OAuthError::InvalidScope);
            }
            requested
        }
    };
    let token = random_token().map_err(|_| OAuthError::InvalidRequest)?;
    let expires_at = at + time::Duration::seconds(ACCESS_TOKEN_SECONDS);
    write_transaction(conn, |conn| {
        diesel::delete(api_tokens::table.filter(api_tokens::expires_at.le(at))).execute(conn)?;
        diesel::insert_into(api_tokens::table)
            .values((
                api_tokens::token_hash.eq(token_hash(&token).to_vec()),
                api_tokens::client_id.eq(client_id),
                api_tokens::scopes.eq(granted.join(" ")),
                api_tokens::created_at.eq(at),
                api_tokens::expires_at.eq(expires_at),
            ))
            .execute(conn)?;
        let event = security_event(
            Some(&organisation_id),
            None,
            "api_token_issued",
            serde_json::json!({"client_id": client_id, "scopes": granted}),
            at,
        );
        register.audit.append_in(conn, vec![event], at)?;
        Ok::<_, AccountsError>(())
    })
    .map_err(|_| OAuthError::InvalidRequest)?;
    Ok(AccessToken {
        access_token: token,
        expires_in: ACCESS_TOKEN_SECONDS,
        scopes: granted,
    })
}

/// The principal of an API access token, or `None` when the token is not one. With
/// `on_behalf_of` (an account id of the client's organisation) the end user's current rights
/// apply; without it, the scopes' permissions. With the principal comes the instant until which
/// only a write that moves the access version can change it (the token's expiry, the next start
/// or end of one of the end user's rights).
pub(crate) fn authenticate_client_token(
    conn: &mut DbConnection,
    token: &str,
    on_behalf_of: Option<&str>,
    now: OffsetDateTime,
) -> Result<Option<(Principal, PrimitiveDateTime)>, AccountsError> {
    let at = now_primitive(now);
    let found: Option<(String, String, PrimitiveDateTime)> = api_tokens::table
        .find(token_hash(token).to_vec())
        .select((api_tokens::client_id, api_tokens::scopes, api_tokens::expires_at))
        .first(conn)
        .optional()?;
    let Some((client_id, scopes, expires_at)) = found else {
        return Ok(None);
    };
    if expires_at <= at {
        return Err(AccountsError::Unauthenticated);
    }
    let (organisation_id, disabled, attested_at): (String, Option<PrimitiveDateTime>, Option<PrimitiveDateTime>) =
        api_clients::table
            .find(&client_id)
            .select((
                api_clients::organisation_id,
                api_clients::disabled_at,
                api_clients::strong_user_authentication_attested_at,
            ))
            .first(conn)?;
    if disabled.is_some() {
        return Err(AccountsError::Unauthenticated);
    }
    let scopes: Vec<String> = scopes.split_whitespace().map(str::to_owned).collect();
    let integration = crate::Integration {
        client_id: client_id.clone(),
        scopes,
        on_behalf_of: None,
        strong_user_authentication: false,
    };
    let Some(user) = on_behalf_of else {
        return Ok(Some((
            Principal {
                account_id: format!("api-client:{client_id}"),
                organisation_id,
                roles: Vec::new(),
                service_unit_ids: Vec::new(),
                session_id: format!("api-token:{client_id}"),
                auth_method: AuthMethod::ClientCredentials,
                integration: Some(integration),
            },
            expires_at,
        )));
    };
    // The end user must be an active account of the client's own organisation.
    let account: Option<String> = accounts::table
        .find(user)
        .filter(accounts::organisation_id.eq(&organisation_id))
        .filter(accounts::status.eq("active"))
        .select(accounts::id)
        .first(conn)
        .optional()?;
    let Some(account_id) = account else {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "X-On-Behalf-Of names no active user of the client's organisation".into(),
        )));
    };
    let (roles, service_unit_ids, rights_change) = crate::sessions::current_rights_until(conn, &account_id, at)?;
    // Administration is never done through a system: an admin's rights reach every
    // organisation, and a stolen client secret must not become them (AX-1).
    if roles
        .iter()
        .any(|role| role.permissions().contains(&crate::Permission::ManageAllAccounts))
    {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "X-On-Behalf-Of cannot name an administrator; administrators act only in their own sessions".into(),
        )));
    }
    let valid_until = rights_change.map_or(expires_at, |change| change.min(expires_at));
    Ok(Some((
        Principal {
            account_id: account_id.clone(),
            organisation_id,
            roles,
            service_unit_ids,
            session_id: format!("api-token:{client_id}"),
            auth_method: AuthMethod::ClientCredentials,
            integration: Some(crate::Integration {
                on_behalf_of: Some(account_id),
                strong_user_authentication: attested_at.is_some(),
                ..integration
            }),
        },
        valid_until,
    )))
}

/// Confirms that the end user an integration names signed in strongly (AX-2): `assertion` is
/// that user's own token from a trusted staff identity provider, sent by the system beside its
/// own (`X-On-Behalf-Of-Token`). A token that does not verify, or names another account, is
/// refused; a valid token of a weak method leaves the principal as it was.
pub fn confirm_user_assertion(
    conn: &mut DbConnection,
    register: &Register,
    principal: &mut Principal,
    assertion: &str,
    now: OffsetDateTime,
) -> Result<(), AccountsError> {
    let Some(integration) = principal.integration.as_mut() else {
        return Ok(());
    };
    let Some(user) = integration.on_behalf_of.as_deref() else {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "X-On-Behalf-Of-Token needs X-On-Behalf-Of naming the user whose token it is".into(),
        )));
    };
    let crate::idp::Verified::Staff { account, strong, .. } =
        crate::idp::verify(&register.options.identity_providers, assertion, now)?
    else {
        return Err(AccountsError::Unauthenticated);
    };
    let named: Option<Vec<u8>> = accounts::table
        .find(user)
        .select(accounts::email_index)
        .first(conn)
        .optional()?;
    // The account may still hold its address's index under a blind-index key being rotated out.
    let presented = crate::accounts::email_index_candidates(&register.keyring, &account);
    if !named.is_some_and(|index| presented.iter().any(|p| equal_constant_time(&index, p))) {
        return Err(AccountsError::Unauthenticated);
    }
    integration.strong_user_authentication |= strong;
    Ok(())
}
