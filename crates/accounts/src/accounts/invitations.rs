//! Inviting an account and accepting the invitation (AC-3): the token is checked, and its
//! failures held back like a login's, before any password is hashed.

use diesel::prelude::*;
use rekisteri_core::Refusal;
use rekisteri_crypto::{BlindIndex, random_token, token_hash};
use rekisteri_db::schema::{account_roles, account_service_units, accounts, invitations, organisations};
use rekisteri_db::{DbConnection, write_transaction, write_transaction_as};
use time::{OffsetDateTime, PrimitiveDateTime};

use super::passwords::{PasswordHasher, check_password};
use super::reads::get_account;
use super::rights::only_admins_grant;
use super::row::{Account, NewAccount, email_index, email_index_candidates, encrypt, valid_name};
use crate::directory::unit_organisation;
use crate::organisations::security_event;
use crate::{AccountsError, Principal, Register, now_primitive, rule, validation};

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
            if unit_organisation(conn, unit)?.as_ref() != Some(&new.organisation_id) {
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
