//! Accounts, their rights, invitations and passwords (AC-2..AC-5, AC-8, AC-11).

use diesel::prelude::*;
use rekisteri_core::Refusal;
use rekisteri_crypto::{BlindIndex, FieldCipher, FieldContext, Keyring, hash_password, random_token, token_hash};
use rekisteri_db::schema::{account_roles, account_service_units, accounts, invitations, organisations, service_units};
use rekisteri_db::{DbConnection, write_transaction, write_transaction_as};
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::organisations::security_event;
use crate::{AccountsError, Principal, Register, Role, now_primitive, rule, validation};

/// A role held for a period (AC-11). `valid_until` is when it stopped or will stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    pub id: String,
    pub role: Role,
    pub valid_from: PrimitiveDateTime,
    pub valid_until: Option<PrimitiveDateTime>,
}

impl RoleGrant {
    pub fn active_at(&self, at: PrimitiveDateTime) -> bool {
        self.valid_from <= at && self.valid_until.is_none_or(|until| at < until)
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub organisation_id: String,
    pub email: String,
    pub first_name: String,
    pub surname: String,
    /// `invited`, `active` or `closed`.
    pub status: String,
    pub roles: Vec<RoleGrant>,
    pub service_unit_ids: Vec<String>,
    pub closed_at: Option<PrimitiveDateTime>,
    pub last_login_at: Option<PrimitiveDateTime>,
    pub created_at: PrimitiveDateTime,
}

rekisteri_core::redacted_debug!(Account { id, status });

#[derive(Clone)]
pub struct NewAccount {
    pub email: String,
    pub first_name: String,
    pub surname: String,
    pub organisation_id: String,
    pub role: Role,
    pub service_unit_ids: Vec<String>,
}

rekisteri_core::redacted_debug!(NewAccount {});

const EMAIL_DOMAIN: &str = "account_email";

/// The normalised form the blind index is computed over: e-mail is case-insensitive (AC-2).
fn normalised_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The blind index an account's e-mail address is stored with, under the active blind-index key.
pub(crate) fn email_index(keyring: &Keyring, email: &str) -> [u8; 32] {
    BlindIndex::new(keyring).compute(EMAIL_DOMAIN, normalised_email(email).as_bytes())
}

/// Every index an account with this address may hold: under each blind-index key held, since
/// accounts created before a key rotation's switch keep the previous key's index until
/// re-indexed. The active key's first; one element when one key is held.
pub(crate) fn email_index_candidates(keyring: &Keyring, email: &str) -> Vec<Vec<u8>> {
    BlindIndex::new(keyring)
        .candidates(EMAIL_DOMAIN, normalised_email(email).as_bytes())
        .into_iter()
        .map(|index| index.to_vec())
        .collect()
}

fn valid_name(field: &'static str, value: &str) -> Result<String, AccountsError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 100 {
        return Err(validation(field, "must be 1-100 characters"));
    }
    Ok(value.to_owned())
}

pub(crate) fn check_password(options: &crate::AccountsOptions, password: &str) -> Result<(), AccountsError> {
    if password.chars().count() < options.minimum_password_length {
        return Err(validation(
            "password",
            format!("must be at least {} characters", options.minimum_password_length),
        ));
    }
    if password.chars().count() > 1024 {
        return Err(validation("password", "must be at most 1024 characters"));
    }
    if crate::sessions::is_common_password(password) {
        return Err(rule("password", "is one of the most common passwords"));
    }
    Ok(())
}

pub(crate) fn hash(options: &crate::AccountsOptions, password: &str) -> Result<String, AccountsError> {
    hash_password(password, options.pbkdf2_iterations).map_err(|e| AccountsError::Crypto(e.to_string()))
}

fn encrypt(keyring: &Keyring, id: &str, column: &str, value: &str) -> Result<Vec<u8>, AccountsError> {
    Ok(FieldCipher::new(keyring).encrypt_str(&FieldContext::new("accounts", column, id), value)?)
}

// Staff account data (AC-9), not client data: shown only to the account, its main users and
// admins, and not part of the usage log.
#[allow(clippy::disallowed_methods)]
pub(crate) fn decrypt(keyring: &Keyring, id: &str, column: &str, value: &[u8]) -> Result<String, AccountsError> {
    Ok(FieldCipher::new(keyring).decrypt_string(&FieldContext::new("accounts", column, id), value)?)
}

type AccountRow = (
    String,
    String,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    String,
    Option<PrimitiveDateTime>,
    Option<PrimitiveDateTime>,
    PrimitiveDateTime,
);

macro_rules! account_columns {
    () => {
        (
            accounts::id,
            accounts::organisation_id,
            accounts::email,
            accounts::first_name,
            accounts::surname,
            accounts::status,
            accounts::closed_at,
            accounts::last_login_at,
            accounts::created_at,
        )
    };
}

fn load_account(conn: &mut DbConnection, keyring: &Keyring, row: AccountRow) -> Result<Account, AccountsError> {
    let (id, organisation_id, email, first_name, surname, status, closed_at, last_login_at, created_at) = row;
    let roles: Vec<(String, String, PrimitiveDateTime, Option<PrimitiveDateTime>)> = account_roles::table
        .filter(account_roles::account_id.eq(&id))
        .order(account_roles::valid_from)
        .select((
            account_roles::id,
            account_roles::role,
            account_roles::valid_from,
            account_roles::valid_until,
        ))
        .load(conn)?;
    let units: Vec<String> = account_service_units::table
        .filter(
            account_service_units::account_id
                .eq(&id)
                .and(account_service_units::valid_until.is_null()),
        )
        .select(account_service_units::service_unit_id)
        .load(conn)?;
    Ok(Account {
        email: decrypt(keyring, &id, "email", &email)?,
        first_name: decrypt(keyring, &id, "first_name", &first_name)?,
        surname: decrypt(keyring, &id, "surname", &surname)?,
        roles: roles
            .into_iter()
            .filter_map(|(rid, role, valid_from, valid_until)| {
                Some(RoleGrant {
                    id: rid,
                    role: role.parse().ok()?,
                    valid_from,
                    valid_until,
                })
            })
            .collect(),
        service_unit_ids: units,
        id,
        organisation_id,
        status,
        closed_at,
        last_login_at,
        created_at,
    })
}

/// Creates an invited account and its single-use invitation token (AC-3). Admins invite into
/// any organisation; main users into their own, never as admin (AC-4).
pub fn invite(
    conn: &mut DbConnection,
    register: &Register,
    actor: Option<&Principal>,
    new: NewAccount,
    now: OffsetDateTime,
) -> Result<(Account, String), AccountsError> {
    if let Some(actor) = actor {
        if !actor.manages_organisation(&new.organisation_id) {
            return if actor.can(crate::Permission::ManageOwnOrganisationAccounts) {
                Err(AccountsError::Refused(Refusal::NotFound))
            } else {
                Err(AccountsError::Refused(Refusal::Forbidden(
                    "only admins and main users invite users".into(),
                )))
            };
        }
        only_admins_grant(actor, new.role)?;
    }
    let email = new.email.clone();
    if !rekisteri_core::contact::is_email_address(&email) {
        return Err(validation("email", "is not an e-mail address"));
    }
    let first_name = valid_name("first_name", &new.first_name)?;
    let surname = valid_name("surname", &new.surname)?;
    let keyring = &register.keyring;
    let id = uuid::Uuid::new_v4().to_string();
    let token = random_token()?;
    let at = now_primitive(now);
    write_transaction_as(conn, &crate::actor_label(actor), |conn| {
        let organisation: i64 = organisations::table
            .filter(organisations::id.eq(&new.organisation_id))
            .count()
            .get_result(conn)?;
        if organisation == 0 {
            return Err(rule("organisation_id", "no such organisation"));
        }
        for unit in &new.service_unit_ids {
            let belongs: i64 = service_units::table
                .filter(
                    service_units::id
                        .eq(unit)
                        .and(service_units::organisation_id.eq(&new.organisation_id)),
                )
                .count()
                .get_result(conn)?;
            if belongs == 0 {
                return Err(validation(
                    "service_unit_ids",
                    "a service unit is not one of the organisation's",
                ));
            }
        }
        let index = email_index(keyring, &email);
        // An address on file under a blind-index key being rotated out is taken all the same.
        let taken: i64 = accounts::table
            .filter(accounts::email_index.eq_any(email_index_candidates(keyring, &email)))
            .count()
            .get_result(conn)?;
        if taken > 0 {
            return Err(AccountsError::Refused(Refusal::Conflict(
                "an account with this e-mail address exists".into(),
            )));
        }
        diesel::insert_into(accounts::table)
            .values((
                accounts::id.eq(&id),
                accounts::organisation_id.eq(&new.organisation_id),
                accounts::email_index.eq(index.to_vec()),
                accounts::email.eq(encrypt(keyring, &id, "email", &email)?),
                accounts::first_name.eq(encrypt(keyring, &id, "first_name", &first_name)?),
                accounts::surname.eq(encrypt(keyring, &id, "surname", &surname)?),
                accounts::status.eq("invited"),
                accounts::version.eq(1i64),
                accounts::created_at.eq(at),
                accounts::updated_at.eq(at),
            ))
            .execute(conn)?;
        let granted_by = actor.map_or("bootstrap".to_owned(), |a| a.account_id.clone());
        diesel::insert_into(account_roles::table)
            .values((
                account_roles::id.eq(uuid::Uuid::new_v4().to_string()),
                account_roles::account_id.eq(&id),
                account_roles::role.eq(new.role.as_str()),
                account_roles::valid_from.eq(at),
                account_roles::granted_by.eq(&granted_by),
                account_roles::created_at.eq(at),
            ))
            .execute(conn)?;
        for unit in &new.service_unit_ids {
            diesel::insert_into(account_service_units::table)
                .values((
                    account_service_units::id.eq(uuid::Uuid::new_v4().to_string()),
                    account_service_units::account_id.eq(&id),
                    account_service_units::service_unit_id.eq(unit),
                    account_service_units::valid_from.eq(at),
                    account_service_units::created_at.eq(at),
                ))
                .execute(conn)?;
        }
        diesel::insert_into(invitations::table)
            .values((
                invitations::token_hash.eq(token_hash(&token).to_vec()),
                invitations::account_id.eq(&id),
                invitations::expires_at.eq(now_primitive(now + register.options.invitation_valid)),
                invitations::created_at.eq(at),
            ))
            .execute(conn)?;
        let event = security_event(
            Some(&new.organisation_id),
            actor,
            "account_invited",
            serde_json::json!({"account_id": id, "role": new.role.as_str(), "service_unit_ids": new.service_unit_ids}),
            at,
        );
        register.audit.append_in(conn, vec![event], at)?;
        Ok(())
    })?;
    let account = get_account(conn, register, actor, &id)?;
    Ok((account, token))
}

/// An invitation acceptance whose token was found valid ([`begin_accept_invitation`]); the
/// password is still to be hashed ([`PendingAcceptance::password_hasher`]) and stored
/// ([`finish_accept_invitation`]).
pub struct PendingAcceptance {
    token_hash: Vec<u8>,
    hasher: PasswordHasher,
}

impl std::fmt::Debug for PendingAcceptance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAcceptance").finish_non_exhaustive()
    }
}

/// Hashing a new password: PBKDF2, CPU work for whichever thread the caller chooses (the API
/// runs it on its own small pool).
#[derive(Debug, Clone, Copy)]
pub struct PasswordHasher {
    iterations: std::num::NonZeroU32,
}

impl PasswordHasher {
    pub fn hash(&self, password: &str) -> Result<String, AccountsError> {
        hash_password(password, self.iterations).map_err(|e| AccountsError::Crypto(e.to_string()))
    }
}

impl PendingAcceptance {
    pub fn password_hasher(&self) -> PasswordHasher {
        self.hasher
    }
}

fn invitation_key(register: &Register, client_address: &str) -> Vec<u8> {
    // The active key only: a short-lived counter simply restarts when the blind key switches.
    BlindIndex::new(&register.keyring)
        .compute("throttle_invitation_address", client_address.as_bytes())
        .to_vec()
}

/// The first step of accepting an invitation (AC-3): checks the password's rules and the token
/// before any password is hashed. An unknown, used or expired token counts as a failure of the
/// client address, which is held back like a login's (AC-5); its holds are security events.
pub fn begin_accept_invitation(
    conn: &mut DbConnection,
    register: &Register,
    token: &str,
    password: &str,
    client_address: &str,
    now: OffsetDateTime,
) -> Result<PendingAcceptance, AccountsError> {
    check_password(&register.options, password)?;
    let at = now_primitive(now);
    let key = invitation_key(register, client_address);
    let limit = crate::sessions::address_limit(&register.options);
    let hash = token_hash(token).to_vec();
    let outcome = write_transaction(conn, |conn| {
        if let Some(until) = crate::throttle::held_until(conn, &[&key], at)? {
            return Ok::<_, AccountsError>(Err(Some(until)));
        }
        if invitation_account(conn, &hash, at)?.is_some() {
            return Ok(Ok(()));
        }
        let counted = crate::throttle::count_failure(conn, &[(&key, limit)], at)?;
        let holds: Vec<_> = counted
            .iter()
            .filter_map(|c| {
                c.locked_until.map(|until| {
                    security_event(
                        None,
                        None,
                        "invitation_throttled",
                        serde_json::json!({"scope": "address", "failures": c.failures,
                            "locked_until": crate::format_time(until)}),
                        at,
                    )
                })
            })
            .collect();
        if !holds.is_empty() {
            register.audit.append_in(conn, holds, at)?;
        }
        Ok(Err(None))
    })?;
    match outcome {
        Ok(()) => Ok(PendingAcceptance {
            token_hash: hash,
            hasher: PasswordHasher {
                iterations: register.options.pbkdf2_iterations,
            },
        }),
        Err(Some(until)) => Err(crate::sessions::retry_after(until, at)),
        Err(None) => Err(invalid_invitation()),
    }
}

fn invalid_invitation() -> AccountsError {
    rule("token", "the invitation is unknown, used or expired")
}

/// The account an unused, unexpired invitation is for, while the account is still invited.
fn invitation_account(
    conn: &mut DbConnection,
    token_hash: &[u8],
    at: PrimitiveDateTime,
) -> Result<Option<String>, AccountsError> {
    let invitation: Option<(String, PrimitiveDateTime, Option<PrimitiveDateTime>)> = invitations::table
        .filter(invitations::token_hash.eq(token_hash))
        .select((invitations::account_id, invitations::expires_at, invitations::used_at))
        .first(conn)
        .optional()?;
    let Some((account_id, expires_at, None)) = invitation else {
        return Ok(None);
    };
    if expires_at <= at {
        return Ok(None);
    }
    let status: String = accounts::table.find(&account_id).select(accounts::status).first(conn)?;
    Ok((status == "invited").then_some(account_id))
}

/// The last step of accepting an invitation: uses the invitation up and stores the hashed
/// password, when the invitation is still unused (single use, AC-3).
pub fn finish_accept_invitation(
    conn: &mut DbConnection,
    register: &Register,
    pending: PendingAcceptance,
    password_hash: &str,
    now: OffsetDateTime,
) -> Result<Account, AccountsError> {
    let at = now_primitive(now);
    let account_id = write_transaction(conn, |conn| {
        let Some(account_id) = invitation_account(conn, &pending.token_hash, at)? else {
            return Err(invalid_invitation());
        };
        diesel::update(invitations::table.filter(invitations::token_hash.eq(&pending.token_hash)))
            .set(invitations::used_at.eq(at))
            .execute(conn)?;
        diesel::update(accounts::table.find(&account_id))
            .set((
                accounts::password_hash.eq(password_hash),
                accounts::status.eq("active"),
                accounts::updated_at.eq(at),
                accounts::version.eq(accounts::version + 1),
            ))
            .execute(conn)?;
        let organisation: String = accounts::table
            .find(&account_id)
            .select(accounts::organisation_id)
            .first(conn)?;
        let event = security_event(
            Some(&organisation),
            None,
            "invitation_accepted",
            serde_json::json!({"account_id": account_id}),
            at,
        );
        register.audit.append_in(conn, vec![event], at)?;
        Ok(account_id)
    })?;
    get_account(conn, register, None, &account_id)
}

/// The client address the command line counts as (it has no peer).
const LOCAL_ADDRESS: &str = "local";

/// Sets the first password with an invitation token: single use, within its validity (AC-3).
/// [`begin_accept_invitation`], the hashing on the calling thread, [`finish_accept_invitation`].
pub fn accept_invitation(
    conn: &mut DbConnection,
    register: &Register,
    token: &str,
    password: &str,
    now: OffsetDateTime,
) -> Result<Account, AccountsError> {
    let pending = begin_accept_invitation(conn, register, token, password, LOCAL_ADDRESS, now)?;
    let password_hash = pending.password_hasher().hash(password)?;
    finish_accept_invitation(conn, register, pending, &password_hash, now)
}

/// An account, when the actor may see it (AC-9): itself, its organisation's main users, admins.
pub fn get_account(
    conn: &mut DbConnection,
    register: &Register,
    actor: Option<&Principal>,
    id: &str,
) -> Result<Account, AccountsError> {
    let row: Option<AccountRow> = accounts::table
        .find(id)
        .select(account_columns!())
        .first(conn)
        .optional()?;
    let row = row.ok_or(AccountsError::Refused(Refusal::NotFound))?;
    if let Some(actor) = actor
        && actor.account_id != row.0
        && !actor.manages_organisation(&row.1)
    {
        return Err(AccountsError::Refused(Refusal::NotFound));
    }
    load_account(conn, &register.keyring, row)
}

/// Accounts the actor manages: all for admins, its organisation's for main users, itself
/// otherwise.
pub fn list_accounts(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
) -> Result<Vec<Account>, AccountsError> {
    let mut query = accounts::table
        .select(account_columns!())
        .order(accounts::created_at)
        .into_boxed();
    if !actor.is_admin() {
        if actor.can(crate::Permission::ManageOwnOrganisationAccounts) {
            query = query.filter(accounts::organisation_id.eq(actor.organisation_id.clone()));
        } else {
            query = query.filter(accounts::id.eq(actor.account_id.clone()));
        }
    }
    let rows: Vec<AccountRow> = query.load(conn)?;
    rows.into_iter()
        .map(|row| load_account(conn, &register.keyring, row))
        .collect()
}

/// Closes an account: it cannot log in and its sessions end at once (AC-8).
pub fn close_account(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
    id: &str,
    now: OffsetDateTime,
) -> Result<Account, AccountsError> {
    let account = get_account(conn, register, Some(actor), id)?;
    if !actor.manages_organisation(&account.organisation_id) {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "only admins and the organisation's main users close accounts".into(),
        )));
    }
    // Like any change of one's own rights: closing one's own account would lock out its holder
    // until an admin restores it.
    if account.id == actor.account_id {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "nobody closes their own account; another main user or an admin does".into(),
        )));
    }
    if account
        .roles
        .iter()
        .any(|r| r.role == Role::Admin && r.valid_until.is_none())
        && !actor.is_admin()
    {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "only admins close an admin's account".into(),
        )));
    }
    let at = now_primitive(now);
    write_transaction_as(conn, &crate::actor_label(Some(actor)), |conn| {
        diesel::update(accounts::table.find(id))
            .set((
                accounts::status.eq("closed"),
                accounts::closed_at.eq(at),
                accounts::updated_at.eq(at),
                accounts::version.eq(accounts::version + 1),
            ))
            .execute(conn)?;
        let ended = crate::sessions::end_sessions_of(conn, id, at, "account_closed")?;
        let event = security_event(
            Some(&account.organisation_id),
            Some(actor),
            "account_closed",
            serde_json::json!({"account_id": id, "sessions_ended": ended}),
            at,
        );
        register.audit.append_in(conn, vec![event], at)?;
        Ok::<_, AccountsError>(())
    })?;
    get_account(conn, register, Some(actor), id)
}

/// Reopens a closed account within 30 days of closing (admins only, AC-8).
pub fn restore_account(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
    id: &str,
    now: OffsetDateTime,
) -> Result<Account, AccountsError> {
    if !actor.is_admin() {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "only admins restore accounts".into(),
        )));
    }
    let account = get_account(conn, register, Some(actor), id)?;
    let at = now_primitive(now);
    match account.closed_at {
        Some(closed) if account.status == "closed" && at < closed + time::Duration::days(30) => {}
        Some(_) if account.status == "closed" => {
            return Err(AccountsError::Refused(Refusal::Conflict(
                "the account was closed more than 30 days ago; make a new one".into(),
            )));
        }
        _ => {
            return Err(AccountsError::Refused(Refusal::Conflict(
                "the account is not closed".into(),
            )));
        }
    }
    write_transaction_as(conn, &crate::actor_label(Some(actor)), |conn| {
        diesel::update(accounts::table.find(id))
            .set((
                accounts::status.eq("active"),
                accounts::closed_at.eq(None::<PrimitiveDateTime>),
                accounts::updated_at.eq(at),
                accounts::version.eq(accounts::version + 1),
            ))
            .execute(conn)?;
        let event = security_event(
            Some(&account.organisation_id),
            Some(actor),
            "account_restored",
            serde_json::json!({"account_id": id}),
            at,
        );
        register.audit.append_in(conn, vec![event], at)?;
        Ok::<_, AccountsError>(())
    })?;
    get_account(conn, register, Some(actor), id)
}

/// The first admin and the platform organisation (`rekisteri admin bootstrap`).
pub fn bootstrap_admin(
    conn: &mut DbConnection,
    register: &Register,
    email: &str,
    first_name: &str,
    surname: &str,
    password: &str,
    now: OffsetDateTime,
) -> Result<Account, AccountsError> {
    check_password(&register.options, password)?;
    let platform = match organisations::table
        .filter(organisations::kind.eq("platform"))
        .select(organisations::id)
        .first::<String>(conn)
        .optional()?
    {
        Some(id) => id,
        None => {
            crate::create_organisation(
                conn,
                register,
                None,
                crate::NewOrganisation {
                    name: "Rekisteri platform".into(),
                    kind: crate::OrganisationKind::Platform,
                    oid: None,
                    business_id: None,
                    strong_authentication_required: Some(false),
                },
                now,
            )?
            .id
        }
    };
    let new = NewAccount {
        email: email.to_owned(),
        first_name: first_name.to_owned(),
        surname: surname.to_owned(),
        organisation_id: platform,
        role: Role::Admin,
        service_unit_ids: Vec::new(),
    };
    let (_, token) = invite(conn, register, None, new, now)?;
    accept_invitation(conn, register, &token, password, now)
}

/// Checks that `actor` may change `account`'s rights with `role` (AC-4): admins any; main users
/// their own organisation's, never admin.
fn may_manage_rights(actor: &Principal, account: &Account, role: Role) -> Result<(), AccountsError> {
    if !actor.manages_organisation(&account.organisation_id) {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "only admins and the organisation's main users change rights".into(),
        )));
    }
    if role == Role::Admin && !actor.is_admin() {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "only admins grant or end the admin role".into(),
        )));
    }
    Ok(())
}

/// Admins alone grant the admin role, and the auditor role: an auditor reads the registrar's
/// logs, which record what its main users do, so a main user must not choose who watches them.
fn only_admins_grant(actor: &Principal, role: Role) -> Result<(), AccountsError> {
    if matches!(role, Role::Admin | Role::Auditor) && !actor.is_admin() {
        return Err(AccountsError::Refused(Refusal::Forbidden(format!(
            "only admins grant the {} role",
            role.as_str()
        ))));
    }
    Ok(())
}

/// Grants `role` to account `id` for `[valid_from, valid_until)` (AC-11); `valid_from`
/// defaults to now. Earlier grants stay as history. Nobody grants a role to their own account:
/// widening one's own rights always takes a second person (AC-4).
#[allow(clippy::too_many_arguments)]
pub fn grant_role(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
    id: &str,
    role: Role,
    valid_from: Option<PrimitiveDateTime>,
    valid_until: Option<PrimitiveDateTime>,
    now: OffsetDateTime,
) -> Result<Account, AccountsError> {
    let account = get_account(conn, register, Some(actor), id)?;
    may_manage_rights(actor, &account, role)?;
    if account.id == actor.account_id {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "nobody grants a role to their own account".into(),
        )));
    }
    only_admins_grant(actor, role)?;
    let at = now_primitive(now);
    let valid_from = valid_from.unwrap_or(at);
    if valid_until.is_some_and(|until| until <= valid_from) {
        return Err(rule("valid_until", "must be after valid_from"));
    }
    let grant_id = uuid::Uuid::new_v4().to_string();
    write_transaction_as(conn, &crate::actor_label(Some(actor)), |conn| {
        diesel::insert_into(account_roles::table)
            .values((
                account_roles::id.eq(&grant_id),
                account_roles::account_id.eq(id),
                account_roles::role.eq(role.as_str()),
                account_roles::valid_from.eq(valid_from),
                account_roles::valid_until.eq(valid_until),
                account_roles::granted_by.eq(&actor.account_id),
                account_roles::created_at.eq(at),
            ))
            .execute(conn)?;
        let event = security_event(
            Some(&account.organisation_id),
            Some(actor),
            "role_granted",
            serde_json::json!({"account_id": id, "grant_id": grant_id, "role": role.as_str(),
                "valid_from": crate::format_time(valid_from), "valid_until": valid_until.map(crate::format_time)}),
            at,
        );
        register.audit.append_in(conn, vec![event], at)?;
        Ok::<_, AccountsError>(())
    })?;
    get_account(conn, register, Some(actor), id)
}

/// Ends a role grant at `valid_until` (now when absent), when a person moves to other tasks or
/// leaves (AC-11). The role stops working at that moment; when it ends now, the account's open
/// sessions, which relied on it, end at once. The grant stays as history (AC-8).
pub fn end_role(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
    id: &str,
    grant_id: &str,
    valid_until: Option<PrimitiveDateTime>,
    now: OffsetDateTime,
) -> Result<Account, AccountsError> {
    let account = get_account(conn, register, Some(actor), id)?;
    let grant = account
        .roles
        .iter()
        .find(|g| g.id == grant_id)
        .cloned()
        .ok_or(AccountsError::Refused(Refusal::NotFound))?;
    may_manage_rights(actor, &account, grant.role)?;
    crate::ending::end_right(
        conn,
        register,
        actor,
        crate::ending::Ending {
            account_id: id,
            organisation_id: &account.organisation_id,
            valid_from: grant.valid_from,
            valid_until: grant.valid_until,
            already_ended: "the role has already ended",
            event: "role_ended",
            details: serde_json::json!({"account_id": id, "grant_id": grant_id, "role": grant.role.as_str()}),
        },
        valid_until,
        now,
        |conn, until| {
            diesel::update(account_roles::table.find(grant_id))
                .set(account_roles::valid_until.eq(until))
                .execute(conn)
        },
    )?;
    get_account(conn, register, Some(actor), id)
}

/// Changes to an account's names; absent fields stay.
#[derive(Clone, Default)]
pub struct AccountChanges {
    pub first_name: Option<String>,
    pub surname: Option<String>,
}

rekisteri_core::redacted_debug!(AccountChanges {});

/// Changes an account's names: the account itself, its organisation's main users and admins
/// (AC-4, AC-9). The e-mail address is the user name and is not changed here.
pub fn update_account(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
    id: &str,
    changes: AccountChanges,
    now: OffsetDateTime,
) -> Result<Account, AccountsError> {
    let account = get_account(conn, register, Some(actor), id)?;
    if account.status == "closed" {
        return Err(AccountsError::Refused(Refusal::Conflict(
            "a closed account is not changed".into(),
        )));
    }
    let first_name = changes
        .first_name
        .as_deref()
        .map(|v| valid_name("first_name", v))
        .transpose()?;
    let surname = changes
        .surname
        .as_deref()
        .map(|v| valid_name("surname", v))
        .transpose()?;
    let at = now_primitive(now);
    let keyring = &register.keyring;
    write_transaction_as(conn, &crate::actor_label(Some(actor)), |conn| {
        if let Some(first_name) = &first_name {
            diesel::update(accounts::table.find(id))
                .set(accounts::first_name.eq(encrypt(keyring, id, "first_name", first_name)?))
                .execute(conn)?;
        }
        if let Some(surname) = &surname {
            diesel::update(accounts::table.find(id))
                .set(accounts::surname.eq(encrypt(keyring, id, "surname", surname)?))
                .execute(conn)?;
        }
        diesel::update(accounts::table.find(id))
            .set((accounts::updated_at.eq(at), accounts::version.eq(accounts::version + 1)))
            .execute(conn)?;
        let event = security_event(
            Some(&account.organisation_id),
            Some(actor),
            "account_changed",
            serde_json::json!({"account_id": id, "first_name_changed": first_name.is_some(),
                "surname_changed": surname.is_some()}),
            at,
        );
        register.audit.append_in(conn, vec![event], at)?;
        Ok::<_, AccountsError>(())
    })?;
    get_account(conn, register, Some(actor), id)
}

/// Working in a service unit for a period (AC-11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUnitMembership {
    pub id: String,
    pub account_id: String,
    pub service_unit_id: String,
    pub valid_from: PrimitiveDateTime,
    pub valid_until: Option<PrimitiveDateTime>,
}

/// The account's service-unit memberships, ended ones included (AC-8: the history of rights).
pub fn service_unit_memberships(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
    account_id: &str,
) -> Result<Vec<ServiceUnitMembership>, AccountsError> {
    get_account(conn, register, Some(actor), account_id)?;
    let rows: Vec<(String, String, PrimitiveDateTime, Option<PrimitiveDateTime>)> = account_service_units::table
        .filter(account_service_units::account_id.eq(account_id))
        .order(account_service_units::created_at)
        .select((
            account_service_units::id,
            account_service_units::service_unit_id,
            account_service_units::valid_from,
            account_service_units::valid_until,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, service_unit_id, valid_from, valid_until)| ServiceUnitMembership {
            id,
            account_id: account_id.to_owned(),
            service_unit_id,
            valid_from,
            valid_until,
        })
        .collect())
}

/// Adds the account to a service unit of its organisation for `[valid_from, valid_until)`
/// (admins and the organisation's main users).
#[allow(clippy::too_many_arguments)]
pub fn add_service_unit_membership(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
    account_id: &str,
    service_unit_id: &str,
    valid_from: Option<PrimitiveDateTime>,
    valid_until: Option<PrimitiveDateTime>,
    now: OffsetDateTime,
) -> Result<ServiceUnitMembership, AccountsError> {
    let account = get_account(conn, register, Some(actor), account_id)?;
    if !actor.manages_organisation(&account.organisation_id) {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "only admins and the organisation's main users change service units".into(),
        )));
    }
    // A service unit is where care relationships hold (AX-5): joining one widens what a
    // professional reaches, so as with roles it takes a second person (AC-4).
    if account.id == actor.account_id {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "nobody adds their own account to a service unit".into(),
        )));
    }
    let belongs: i64 = service_units::table
        .filter(service_units::id.eq(service_unit_id))
        .filter(service_units::organisation_id.eq(&account.organisation_id))
        .count()
        .get_result(conn)?;
    if belongs == 0 {
        return Err(rule(
            "service_unit_id",
            "is not a service unit of the account's organisation",
        ));
    }
    let at = now_primitive(now);
    let valid_from = valid_from.unwrap_or(at);
    if valid_until.is_some_and(|until| until <= valid_from) {
        return Err(rule("valid_until", "must be after valid_from"));
    }
    let membership = ServiceUnitMembership {
        id: uuid::Uuid::new_v4().to_string(),
        account_id: account_id.to_owned(),
        service_unit_id: service_unit_id.to_owned(),
        valid_from,
        valid_until,
    };
    write_transaction_as(conn, &crate::actor_label(Some(actor)), |conn| {
        diesel::insert_into(account_service_units::table)
            .values((
                account_service_units::id.eq(&membership.id),
                account_service_units::account_id.eq(account_id),
                account_service_units::service_unit_id.eq(service_unit_id),
                account_service_units::valid_from.eq(valid_from),
                account_service_units::valid_until.eq(valid_until),
                account_service_units::created_at.eq(at),
            ))
            .execute(conn)?;
        let event = security_event(
            Some(&account.organisation_id),
            Some(actor),
            "service_unit_joined",
            serde_json::json!({"account_id": account_id, "membership_id": membership.id,
                "service_unit_id": service_unit_id, "valid_from": crate::format_time(valid_from),
                "valid_until": valid_until.map(crate::format_time)}),
            at,
        );
        register.audit.append_in(conn, vec![event], at)?;
        Ok::<_, AccountsError>(())
    })?;
    Ok(membership)
}

/// Ends a service-unit membership at `valid_until` (now when absent); ending it now ends the
/// account's open sessions, which relied on it (AC-11). The membership stays as history.
pub fn end_service_unit_membership(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
    account_id: &str,
    membership_id: &str,
    valid_until: Option<PrimitiveDateTime>,
    now: OffsetDateTime,
) -> Result<ServiceUnitMembership, AccountsError> {
    let account = get_account(conn, register, Some(actor), account_id)?;
    let membership = service_unit_memberships(conn, register, actor, account_id)?
        .into_iter()
        .find(|m| m.id == membership_id)
        .ok_or(AccountsError::Refused(Refusal::NotFound))?;
    if !actor.manages_organisation(&account.organisation_id) {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "only admins and the organisation's main users change service units".into(),
        )));
    }
    let until = crate::ending::end_right(
        conn,
        register,
        actor,
        crate::ending::Ending {
            account_id,
            organisation_id: &account.organisation_id,
            valid_from: membership.valid_from,
            valid_until: membership.valid_until,
            already_ended: "the membership has already ended",
            event: "service_unit_left",
            details: serde_json::json!({"account_id": account_id, "membership_id": membership_id}),
        },
        valid_until,
        now,
        |conn, until| {
            diesel::update(account_service_units::table.find(membership_id))
                .set(account_service_units::valid_until.eq(until))
                .execute(conn)
        },
    )?;
    Ok(ServiceUnitMembership {
        valid_until: Some(until),
        ..membership
    })
}

/// Whether `account_id` is an active account of `organisation_id`, for other registers that
/// name a member of staff (CA-1, CA-2).
pub fn is_active_member(conn: &mut DbConnection, organisation_id: &str, account_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        accounts::table
            .filter(accounts::id.eq(account_id))
            .filter(accounts::organisation_id.eq(organisation_id))
            .filter(accounts::status.eq("active")),
    ))
    .get_result(conn)
}
