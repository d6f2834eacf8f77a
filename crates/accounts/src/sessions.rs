//! Login, sessions and their expiry, logout, and failed-login throttling (AC-5, AC-6).

use std::sync::OnceLock;

use diesel::prelude::*;
use rekisteri_crypto::{BlindIndex, random_token, token_hash, verify_password};
use rekisteri_db::schema::{account_roles, account_service_units, accounts, sessions};
use rekisteri_db::{DbConnection, write_transaction};
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::accounts::email_index_candidates;
use crate::organisations::security_event;
use crate::throttle::{self, Counted, Limit};
use crate::{AccountsError, AuthMethod, Principal, Register, Role, now_primitive};

static COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

/// Whether `password` is on the shipped list of common passwords (compared case-insensitively).
pub(crate) fn is_common_password(password: &str) -> bool {
    static LIST: OnceLock<std::collections::HashSet<String>> = OnceLock::new();
    let list = LIST.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_lowercase)
            .collect()
    });
    list.contains(&password.to_lowercase())
}

/// A new session's token, shown to the user once; only its hash is stored.
#[derive(Debug)]
pub struct SessionToken {
    pub token: String,
    pub expires_at: PrimitiveDateTime,
}

/// What a login attempt came to; failures are recorded even though the caller gets an error.
pub enum LoginOutcome {
    LoggedIn(SessionToken),
    Refused(AccountsError),
}

/// The throttle keys of a login: the account named (by its e-mail, known or not), the client
/// address, and the address's logins for unknown e-mails (which are security events of the
/// address, not of each e-mail tried).
struct LoginKeys {
    account: Vec<u8>,
    address: Vec<u8>,
    unknown_from_address: Vec<u8>,
}

fn login_keys(register: &Register, email: &str, client_address: &str) -> LoginKeys {
    // The active key only: short-lived counters simply restart when the blind key switches.
    let index = BlindIndex::new(&register.keyring);
    LoginKeys {
        account: index
            .compute("throttle_account", email.trim().to_lowercase().as_bytes())
            .to_vec(),
        address: index.compute("throttle_address", client_address.as_bytes()).to_vec(),
        unknown_from_address: index
            .compute("throttle_unknown_account", client_address.as_bytes())
            .to_vec(),
    }
}

pub(crate) fn account_limit(options: &crate::AccountsOptions) -> Limit {
    Limit {
        failures: Some(options.throttle_failures),
        first_delay: options.throttle_delay,
        window: options.throttle_window,
    }
}

pub(crate) fn address_limit(options: &crate::AccountsOptions) -> Limit {
    Limit {
        failures: Some(options.throttle_address_failures),
        ..account_limit(options)
    }
}

/// A key that is never held back: it only groups failures into one security event per window.
pub(crate) fn event_limit(options: &crate::AccountsOptions) -> Limit {
    Limit {
        failures: None,
        ..account_limit(options)
    }
}

pub(crate) fn retry_after(until: PrimitiveDateTime, at: PrimitiveDateTime) -> AccountsError {
    let seconds = (until - at).as_seconds_f64().ceil();
    AccountsError::Throttled {
        // Whole seconds, rounded up; the cast cannot overflow (a hold is at most a window).
        #[allow(clippy::cast_possible_truncation)]
        retry_after_seconds: (seconds as i64).max(1),
    }
}

/// A hash of a password nobody has, verified when the e-mail is unknown so that a login for an
/// unknown address costs the same time as one for a known address.
fn dummy_hash(register: &Register) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| crate::accounts::hash(&register.options, "not a password of anyone").unwrap_or_default())
}

type LoginAccount = (String, String, Option<String>, String);

/// A login attempt that has been counted against the throttle ([`begin_login`]) and waits for
/// its password to be checked ([`PendingLogin::password_check`]) and the outcome recorded
/// ([`finish_login`]).
pub struct PendingLogin {
    account: Option<LoginAccount>,
    keys: LoginKeys,
    counted: Vec<Counted>,
    stored: String,
    at: PrimitiveDateTime,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin").finish_non_exhaustive()
    }
}

/// The check of a password against a stored hash: PBKDF2, CPU work for whichever thread the
/// caller chooses (the API runs it on its own small pool).
pub struct PasswordCheck {
    stored: String,
}

impl std::fmt::Debug for PasswordCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordCheck").finish_non_exhaustive()
    }
}

impl PasswordCheck {
    pub fn verify(&self, password: &str) -> bool {
        verify_password(password, &self.stored).unwrap_or(false)
    }
}

impl PendingLogin {
    /// The password check (the dummy hash for an unknown e-mail, so that timing tells nothing).
    pub fn password_check(&self) -> PasswordCheck {
        PasswordCheck {
            stored: self.stored.clone(),
        }
    }

    fn counted(&self, key: &[u8]) -> Option<&Counted> {
        self.counted.iter().find(|c| c.key == key)
    }
}

/// The first step of a login (AC-5): refuses a held-back account or address, and otherwise
/// counts the attempt as a failure of both, in one write transaction, before the password is
/// checked; a successful login takes the count back. Of any number of parallel guesses, at most
/// the account's limit get their password checked.
pub fn begin_login(
    conn: &mut DbConnection,
    register: &Register,
    email: &str,
    client_address: &str,
    now: OffsetDateTime,
) -> Result<PendingLogin, AccountsError> {
    let at = now_primitive(now);
    let keys = login_keys(register, email, client_address);
    let account: Option<LoginAccount> = accounts::table
        .filter(accounts::email_index.eq_any(email_index_candidates(&register.keyring, email)))
        .select((
            accounts::id,
            accounts::organisation_id,
            accounts::password_hash,
            accounts::status,
        ))
        .first(conn)
        .optional()?;
    let options = &register.options;
    let mut limits: Vec<(&[u8], Limit)> = vec![
        (&keys.account, account_limit(options)),
        (&keys.address, address_limit(options)),
    ];
    if account.is_none() {
        limits.push((&keys.unknown_from_address, event_limit(options)));
    }
    let counted = write_transaction(conn, |conn| throttle::count_attempt(conn, &limits, at))?;
    // A refused attempt is no security event of its own: the hold that refuses it was one.
    let counted = counted.map_err(|until| retry_after(until, at))?;
    // The hash is checked whatever the account's state, so timing tells nothing.
    let stored = account
        .as_ref()
        .and_then(|(_, _, hash, _)| hash.clone())
        .unwrap_or_else(|| dummy_hash(register).to_owned());
    Ok(PendingLogin {
        account,
        keys,
        counted,
        stored,
        at,
    })
}

/// The last step of a login: opens the session when the password was right and the account is
/// active (and takes back the failure counted for it), or records the failure. Failures are
/// security events once per account (or per address, for unknown e-mails) per throttle window,
/// with the count of the window before; every hold they earn is one too, with its count.
pub fn finish_login(
    conn: &mut DbConnection,
    register: &Register,
    pending: PendingLogin,
    password_ok: bool,
    now: OffsetDateTime,
) -> Result<SessionToken, AccountsError> {
    let at = pending.at;
    let accepted = match &pending.account {
        Some((id, organisation, Some(_), status)) if password_ok && status == "active" => {
            Some((id.clone(), organisation.clone()))
        }
        _ => None,
    };
    let Some((account_id, organisation_id)) = accepted else {
        record_login_failure(conn, register, &pending)?;
        return Err(AccountsError::InvalidCredentials);
    };
    let earlier_failures = pending
        .counted(&pending.keys.account)
        .map_or(0, |c| c.failures - 1)
        .max(0);
    let token = random_token()?;
    let session_id = uuid::Uuid::new_v4().to_string();
    let expires_at = now_primitive(now + register.options.session_absolute);
    write_transaction(conn, |conn| {
        throttle::lock(conn, &[&pending.keys.account, &pending.keys.address], at)?;
        throttle::reset(conn, &pending.keys.account)?;
        if let Some(address) = pending.counted(&pending.keys.address) {
            throttle::uncount(conn, address, at)?;
        }
        diesel::insert_into(sessions::table)
            .values((
                sessions::token_hash.eq(token_hash(&token).to_vec()),
                sessions::id.eq(&session_id),
                sessions::account_id.eq(&account_id),
                sessions::auth_method.eq(AuthMethod::Password.as_str()),
                sessions::created_at.eq(at),
                sessions::last_seen_at.eq(at),
                sessions::expires_at.eq(expires_at),
            ))
            .execute(conn)?;
        diesel::update(accounts::table.find(&account_id))
            .set(accounts::last_login_at.eq(at))
            .execute(conn)?;
        let (roles, units) = current_rights(conn, &account_id, at)?;
        let event = security_event(
            Some(&organisation_id),
            None,
            "login",
            serde_json::json!({"account_id": account_id, "session_id": session_id, "auth_method": "password",
                "roles": roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(), "service_unit_ids": units,
                "failed_attempts_before": earlier_failures}),
            at,
        );
        register.audit.append_in(conn, vec![event], at)?;
        Ok::<_, AccountsError>(())
    })?;
    Ok(SessionToken { token, expires_at })
}

/// The security events of a failed login: `login_failed` when it opened its account's (or, for
/// an unknown e-mail, its address's) window, and `login_throttled` for each hold it earned.
fn record_login_failure(
    conn: &mut DbConnection,
    register: &Register,
    pending: &PendingLogin,
) -> Result<(), AccountsError> {
    let at = pending.at;
    let account_id = pending.account.as_ref().map(|a| a.0.as_str());
    let organisation_id = pending.account.as_ref().map(|a| a.1.as_str());
    let reason = match &pending.account {
        None => "unknown_account",
        Some((_, _, _, status)) if status != "active" => "account_not_active",
        _ => "wrong_password",
    };
    let event_key = if pending.account.is_some() {
        &pending.keys.account
    } else {
        &pending.keys.unknown_from_address
    };
    let mut events = Vec::new();
    if let Some(counted) = pending.counted(event_key).filter(|c| c.opened_window()) {
        events.push(security_event(
            organisation_id,
            None,
            "login_failed",
            serde_json::json!({"account_id": account_id, "reason": reason,
                "failures": counted.failures, "previous_window_failures": counted.previous_window,
                "window_minutes": register.options.throttle_window.whole_minutes()}),
            at,
        ));
    }
    for (key, scope) in [(&pending.keys.account, "account"), (&pending.keys.address, "address")] {
        if let Some((counted, until)) = pending
            .counted(key)
            .and_then(|c| c.locked_until.map(|until| (c, until)))
        {
            events.push(security_event(
                organisation_id.filter(|_| scope == "account"),
                None,
                "login_throttled",
                serde_json::json!({"account_id": account_id.filter(|_| scope == "account"), "scope": scope,
                    "failures": counted.failures, "locked_until": crate::format_time(until)}),
                at,
            ));
        }
    }
    if events.is_empty() {
        return Ok(());
    }
    write_transaction(conn, |conn| {
        register.audit.append_in(conn, events, at).map_err(AccountsError::from)
    })
}

/// Records a refused attempt (e.g. an API client's wrong credentials) as a security event once
/// per `key` per throttle window, with the count of the window before, so that anonymous traffic
/// cannot grow the hash chain without bound; the other refusals are only counted.
pub(crate) fn record_refusal(
    conn: &mut DbConnection,
    register: &Register,
    event_type: &str,
    key: &[u8],
    mut details: serde_json::Value,
    at: PrimitiveDateTime,
) -> Result<(), AccountsError> {
    let limit = event_limit(&register.options);
    write_transaction(conn, |conn| {
        let counted = throttle::count_failure(conn, &[(key, limit)], at)?;
        let Some(counted) = counted.first().filter(|c| c.opened_window()) else {
            return Ok(());
        };
        if let Some(fields) = details.as_object_mut() {
            fields.insert("failures".to_owned(), counted.failures.into());
            fields.insert("previous_window_failures".to_owned(), counted.previous_window.into());
        }
        let event = security_event(None, None, event_type, details, at);
        register.audit.append_in(conn, vec![event], at)?;
        Ok(())
    })
}

/// Checks e-mail and password and opens a session (AC-6): [`begin_login`], the password check
/// on the calling thread, [`finish_login`].
pub fn login(
    conn: &mut DbConnection,
    register: &Register,
    email: &str,
    password: &str,
    client_address: &str,
    now: OffsetDateTime,
) -> Result<SessionToken, AccountsError> {
    let pending = begin_login(conn, register, email, client_address, now)?;
    let password_ok = pending.password_check().verify(password);
    finish_login(conn, register, pending, password_ok, now)
}

pub(crate) fn current_rights(
    conn: &mut DbConnection,
    account_id: &str,
    at: PrimitiveDateTime,
) -> QueryResult<(Vec<Role>, Vec<String>)> {
    current_rights_until(conn, account_id, at).map(|(roles, units, _)| (roles, units))
}

/// The rights in force at `at`, and the next instant at which one of the account's rights
/// begins or ends (none: they hold until somebody changes them).
pub(crate) fn current_rights_until(
    conn: &mut DbConnection,
    account_id: &str,
    at: PrimitiveDateTime,
) -> QueryResult<(Vec<Role>, Vec<String>, Option<PrimitiveDateTime>)> {
    // Every period of the account is read (a handful of rows, ended ones included) so that
    // the next change comes with the same statement.
    let roles: Vec<(String, PrimitiveDateTime, Option<PrimitiveDateTime>)> = account_roles::table
        .filter(account_roles::account_id.eq(account_id))
        .select((
            account_roles::role,
            account_roles::valid_from,
            account_roles::valid_until,
        ))
        .load(conn)?;
    let units: Vec<(String, PrimitiveDateTime, Option<PrimitiveDateTime>)> = account_service_units::table
        .filter(account_service_units::account_id.eq(account_id))
        .select((
            account_service_units::service_unit_id,
            account_service_units::valid_from,
            account_service_units::valid_until,
        ))
        .load(conn)?;
    let in_force =
        |from: &PrimitiveDateTime, until: &Option<PrimitiveDateTime>| *from <= at && until.is_none_or(|u| u > at);
    let next_change = roles
        .iter()
        .chain(units.iter())
        .flat_map(|(_, from, until)| [Some(*from), *until])
        .flatten()
        .filter(|instant| *instant > at)
        .min();
    let mut in_force_roles: Vec<Role> = roles
        .iter()
        .filter(|(_, from, until)| in_force(from, until))
        .filter_map(|(r, _, _)| r.parse().ok())
        .collect();
    in_force_roles.sort();
    in_force_roles.dedup();
    let in_force_units = units
        .into_iter()
        .filter(|(_, from, until)| in_force(from, until))
        .map(|(u, _, _)| u)
        .collect();
    Ok((in_force_roles, in_force_units, next_change))
}

/// A session as the bearer check reads it.
#[derive(Queryable)]
struct SessionRow {
    id: String,
    account_id: String,
    auth_method: String,
    last_seen_at: PrimitiveDateTime,
    expires_at: PrimitiveDateTime,
    ended_at: Option<PrimitiveDateTime>,
}

/// Resolves a bearer token to the principal it stands for, with the rights valid now (AC-11:
/// a right that ended stops working on the next request). An idle, expired or ended session, or
/// one of a closed account, is refused; expiry is recorded as a security event.
pub fn authenticate(
    conn: &mut DbConnection,
    register: &Register,
    token: &str,
    now: OffsetDateTime,
) -> Result<Principal, AccountsError> {
    authenticate_until(conn, register, token, now).map(|(principal, _)| principal)
}

/// [`authenticate`], and the instant until which its answer cannot change without a write that
/// moves the access version: the session's expiry, its idle limit, the next minute's
/// `last_seen_at` update, the next start or end of one of the account's rights.
fn authenticate_until(
    conn: &mut DbConnection,
    register: &Register,
    token: &str,
    now: OffsetDateTime,
) -> Result<(Principal, PrimitiveDateTime), AccountsError> {
    let at = now_primitive(now);
    let hash = token_hash(token).to_vec();
    let session: Option<SessionRow> = sessions::table
        .find(&hash)
        .select((
            sessions::id,
            sessions::account_id,
            sessions::auth_method,
            sessions::last_seen_at,
            sessions::expires_at,
            sessions::ended_at,
        ))
        .first(conn)
        .optional()?;
    let Some(SessionRow {
        id: session_id,
        account_id,
        auth_method: method,
        last_seen_at: last_seen,
        expires_at,
        ended_at,
    }) = session
    else {
        return Err(AccountsError::Unauthenticated);
    };
    if ended_at.is_some() {
        return Err(AccountsError::Unauthenticated);
    }
    let (organisation_id, status): (String, String) = accounts::table
        .find(&account_id)
        .select((accounts::organisation_id, accounts::status))
        .first(conn)?;
    let from_identity_provider = method != AuthMethod::Password.as_str();
    let expired = if at >= expires_at {
        Some("absolute_expiry")
    } else if !from_identity_provider && at >= last_seen + register.options.session_idle {
        // An identity provider's token lives until its own expiry; idleness is the provider's.
        Some("idle_expiry")
    } else if status != "active" {
        Some("account_not_active")
    } else {
        None
    };
    if let Some(reason) = expired {
        write_transaction(conn, |conn| {
            diesel::update(sessions::table.find(&hash))
                .set((sessions::ended_at.eq(at), sessions::end_reason.eq(reason)))
                .execute(conn)?;
            let event = security_event(
                Some(&organisation_id),
                None,
                "session_expired",
                serde_json::json!({"session_id": session_id, "account_id": account_id, "reason": reason}),
                at,
            );
            register.audit.append_in(conn, vec![event], at)?;
            Ok::<_, AccountsError>(())
        })?;
        return Err(AccountsError::Unauthenticated);
    }
    let (roles, service_unit_ids, rights_change) = current_rights_until(conn, &account_id, at)?;
    // last_seen_at moves at most once a minute: a write per request would cost more than the
    // request itself.
    let last_seen = if at - last_seen >= LAST_SEEN_STEP {
        diesel::update(sessions::table.find(&hash))
            .set(sessions::last_seen_at.eq(at))
            .execute(conn)?;
        at
    } else {
        last_seen
    };
    let mut valid_until = expires_at.min(last_seen + LAST_SEEN_STEP);
    if !from_identity_provider {
        valid_until = valid_until.min(last_seen + register.options.session_idle);
    }
    if let Some(change) = rights_change {
        valid_until = valid_until.min(change);
    }
    let auth_method = AuthMethod::parse(&method).ok_or(AccountsError::Unauthenticated)?;
    let principal = Principal {
        account_id,
        organisation_id,
        roles,
        service_unit_ids,
        session_id,
        auth_method,
        integration: None,
    };
    Ok((principal, valid_until))
}

const LAST_SEEN_STEP: time::Duration = time::Duration::minutes(1);

/// Ends the session the token belongs to.
pub fn logout(
    conn: &mut DbConnection,
    register: &Register,
    principal: &Principal,
    now: OffsetDateTime,
) -> Result<(), AccountsError> {
    let at = now_primitive(now);
    write_transaction(conn, |conn| {
        diesel::update(
            sessions::table.filter(sessions::id.eq(&principal.session_id).and(sessions::ended_at.is_null())),
        )
        .set((sessions::ended_at.eq(at), sessions::end_reason.eq("logout")))
        .execute(conn)?;
        let event = security_event(
            Some(&principal.organisation_id),
            Some(principal),
            "logout",
            serde_json::json!({"session_id": principal.session_id, "roles": principal.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()}),
            at,
        );
        register.audit.append_in(conn, vec![event], at)?;
        Ok(())
    })
}

/// Ends every open session of an account (closing, rights ended); returns how many.
pub(crate) fn end_sessions_of(
    conn: &mut DbConnection,
    account_id: &str,
    at: PrimitiveDateTime,
    reason: &str,
) -> QueryResult<usize> {
    diesel::update(sessions::table.filter(sessions::account_id.eq(account_id).and(sessions::ended_at.is_null())))
        .set((sessions::ended_at.eq(at), sessions::end_reason.eq(reason)))
        .execute(conn)
}

/// Resolves any bearer token: a session token of ours, an API client's access token (with the
/// end user it acts for, if any), or a trusted identity provider's JWT (AX-2). A staff JWT opens a session row on first use (keyed by the token's hash) and is then
/// checked like any session; a citizen JWT is verified on every request.
pub fn authenticate_bearer(
    conn: &mut DbConnection,
    register: &Register,
    token: &str,
    on_behalf_of: Option<&str>,
    now: OffsetDateTime,
) -> Result<crate::Caller, AccountsError> {
    let at = now_primitive(now);
    let hash = token_hash(token);
    let version = crate::access_cache::current_version(conn)?;
    register.access_cache.observe(version);
    if let Some(principal) = register.access_cache.get(hash, on_behalf_of, version, at) {
        return Ok(crate::Caller::Account(principal));
    }
    let (principal, valid_until) = match authenticate_uncached(conn, register, token, on_behalf_of, now)? {
        Authenticated::Account(principal, valid_until) => (principal, valid_until),
        Authenticated::Citizen(citizen) => return Ok(crate::Caller::Citizen(citizen)),
    };
    register
        .access_cache
        .put(hash, on_behalf_of, version, at, valid_until, &principal);
    Ok(crate::Caller::Account(principal))
}

/// The principal this process keeps for the token under the latest access version it has read,
/// without reading the database: what [`authenticate_bearer`] will answer unless the version has
/// moved since. Only a guess until confirmed: a request that takes it must call
/// [`authenticate_bearer`] on its own connection before its work reads anything (PL-12's one
/// blocking hop), and use the principal that call answers.
pub fn remembered_bearer(
    cache: &crate::access_cache::AccessCache,
    token: &str,
    on_behalf_of: Option<&str>,
    now: OffsetDateTime,
) -> Option<Principal> {
    cache.get(
        token_hash(token),
        on_behalf_of,
        cache.latest_version(),
        now_primitive(now),
    )
}

enum Authenticated {
    /// A staff member or a system, and the instant until which the answer holds unless the
    /// access version moves.
    Account(Principal, PrimitiveDateTime),
    /// Citizens' tokens are verified on every request (no database read to save).
    Citizen(crate::Citizen),
}

fn authenticate_uncached(
    conn: &mut DbConnection,
    register: &Register,
    token: &str,
    on_behalf_of: Option<&str>,
    now: OffsetDateTime,
) -> Result<Authenticated, AccountsError> {
    if !crate::idp::looks_like_jwt(token) {
        if let Some((principal, valid_until)) =
            crate::api_clients::authenticate_client_token(conn, token, on_behalf_of, now)?
        {
            return Ok(Authenticated::Account(principal, valid_until));
        }
        let (principal, valid_until) = authenticate_until(conn, register, token, now)?;
        return Ok(Authenticated::Account(principal, valid_until));
    }
    let known = sessions::table
        .find(token_hash(token).to_vec())
        .select(sessions::id)
        .first::<String>(conn)
        .optional()?;
    if known.is_some() {
        let (principal, valid_until) = authenticate_until(conn, register, token, now)?;
        return Ok(Authenticated::Account(principal, valid_until));
    }
    match crate::idp::verify(&register.options.identity_providers, token, now)? {
        crate::idp::Verified::Citizen {
            identity_code,
            provider,
            strong,
        } => Ok(Authenticated::Citizen(crate::Citizen {
            identity_code,
            provider,
            auth_method: if strong {
                AuthMethod::StrongIdentityProvider
            } else {
                AuthMethod::IdentityProvider
            },
        })),
        crate::idp::Verified::Staff {
            account,
            provider,
            strong,
            methods,
            expires_at,
        } => {
            open_identity_provider_session(
                conn, register, token, &account, &provider, strong, &methods, expires_at, now,
            )?;
            let (principal, valid_until) = authenticate_until(conn, register, token, now)?;
            Ok(Authenticated::Account(principal, valid_until))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn open_identity_provider_session(
    conn: &mut DbConnection,
    register: &Register,
    token: &str,
    email: &str,
    provider: &str,
    strong: bool,
    methods: &[String],
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), AccountsError> {
    let at = now_primitive(now);
    let account: Option<(String, String, String)> = accounts::table
        .filter(accounts::email_index.eq_any(email_index_candidates(&register.keyring, email)))
        .select((accounts::id, accounts::organisation_id, accounts::status))
        .first(conn)
        .optional()?;
    let Some((account_id, organisation_id, "active")) = account.as_ref().map(|(a, o, s)| (a, o, s.as_str())) else {
        let event = security_event(
            account.as_ref().map(|a| a.1.as_str()),
            None,
            "login_failed",
            serde_json::json!({"account_id": account.as_ref().map(|a| &a.0), "provider": provider,
                "reason": if account.is_some() { "account_not_active" } else { "unknown_account" }}),
            at,
        );
        write_transaction(conn, |conn| {
            register
                .audit
                .append_in(conn, vec![event], at)
                .map_err(AccountsError::from)
        })?;
        return Err(AccountsError::Unauthenticated);
    };
    let method = if strong {
        AuthMethod::StrongIdentityProvider
    } else {
        AuthMethod::IdentityProvider
    };
    let session_id = uuid::Uuid::new_v4().to_string();
    let expires_at = now_primitive(expires_at.min(now + register.options.session_absolute));
    write_transaction(conn, |conn| {
        diesel::insert_into(sessions::table)
            .values((
                sessions::token_hash.eq(token_hash(token).to_vec()),
                sessions::id.eq(&session_id),
                sessions::account_id.eq(account_id),
                sessions::auth_method.eq(method.as_str()),
                sessions::created_at.eq(at),
                sessions::last_seen_at.eq(at),
                sessions::expires_at.eq(expires_at),
            ))
            .execute(conn)?;
        diesel::update(accounts::table.find(account_id))
            .set(accounts::last_login_at.eq(at))
            .execute(conn)?;
        let (roles, units) = current_rights(conn, account_id, at)?;
        let event = security_event(
            Some(organisation_id),
            None,
            "login",
            serde_json::json!({"account_id": account_id, "session_id": session_id, "auth_method": method.as_str(),
                "provider": provider, "amr": methods,
                "roles": roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(), "service_unit_ids": units}),
            at,
        );
        register.audit.append_in(conn, vec![event], at)?;
        Ok::<_, AccountsError>(())
    })
}

/// Client data of a registrar that requires strong authentication (the default) is refused to
/// sessions that did not sign in strongly (AX-2). Every client-data operation calls this.
pub fn require_strong_authentication(
    conn: &mut DbConnection,
    principal: &Principal,
    registrar_id: &str,
) -> Result<(), AccountsError> {
    use rekisteri_db::schema::organisations;
    if !bound_by_strong_authentication(principal) {
        return Ok(());
    }
    let required: Option<bool> = organisations::table
        .find(registrar_id)
        .select(organisations::strong_authentication_required)
        .first(conn)
        .optional()?;
    // An unknown registrar is left to the caller's own 404.
    check_strong_authentication(principal, required.unwrap_or(false))
}

/// Whether the registrars' strong-authentication rule applies to the principal: it does to
/// people who did not sign in strongly, whether in their own session or named by an integration
/// (unless the user's strong sign-in stands behind the call), not to a system acting as itself
/// (AX-1, AX-2).
fn bound_by_strong_authentication(principal: &Principal) -> bool {
    match &principal.integration {
        Some(integration) if integration.on_behalf_of.is_none() => false,
        Some(integration) => !integration.strong_user_authentication,
        None => !principal.auth_method.is_strong(),
    }
}

/// [`require_strong_authentication`] for a caller that has read the registrar's setting
/// (`required`) already.
pub fn check_strong_authentication(principal: &Principal, required: bool) -> Result<(), AccountsError> {
    if required && bound_by_strong_authentication(principal) {
        return Err(AccountsError::StrongAuthenticationRequired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_common_password;

    #[test]
    fn ac_5_common_passwords_are_recognised_case_insensitively() {
        assert!(is_common_password("password"));
        assert!(is_common_password("PlayStation"));
        assert!(is_common_password("masterbating"));
        assert!(!is_common_password("correct horse battery staple"));
    }
}
