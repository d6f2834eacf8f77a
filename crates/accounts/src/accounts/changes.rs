//! Changes to an account itself: closing and restoring it (AC-8), its names, and the first admin
//! at bootstrap.

use diesel::prelude::*;
use rekisteri_core::Refusal;
use rekisteri_db::schema::{accounts, organisations};
use rekisteri_db::{DbConnection, write_transaction_as};
use time::{OffsetDateTime, PrimitiveDateTime};

use super::invitations::{accept_invitation, invite};
use super::passwords::check_password;
use super::reads::get_account;
use super::row::{Account, NewAccount, encrypt, valid_name};
use crate::organisations::security_event;
use crate::{AccountsError, Principal, Register, Role, now_primitive};

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
        let ended = mark_closed(conn, id, at)?;
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

/// Marks the account closed and ends its sessions (reason `account_closed`); how many ended.
pub(crate) fn mark_closed(conn: &mut DbConnection, id: &str, at: PrimitiveDateTime) -> QueryResult<usize> {
    diesel::update(accounts::table.find(id))
        .set((
            accounts::status.eq("closed"),
            accounts::closed_at.eq(at),
            accounts::updated_at.eq(at),
            accounts::version.eq(accounts::version + 1),
        ))
        .execute(conn)?;
    crate::sessions::end_sessions_of(conn, id, at, "account_closed")
}
