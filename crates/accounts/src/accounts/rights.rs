//! An account's rights over time (AC-4, AC-11): role grants and service-unit memberships, granted
//! and ended with history kept, never widened by the account itself.

use diesel::prelude::*;
use rekisteri_core::Refusal;
use rekisteri_db::schema::{account_roles, account_service_units};
use rekisteri_db::{DbConnection, write_transaction_as};
use time::{OffsetDateTime, PrimitiveDateTime};

use super::reads::get_account;
use super::row::Account;
use crate::directory::unit_organisation;
use crate::organisations::security_event;
use crate::{AccountsError, Principal, Register, Role, now_primitive, rule};

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
pub(super) fn only_admins_grant(actor: &Principal, role: Role) -> Result<(), AccountsError> {
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
    if unit_organisation(conn, service_unit_id)?.as_ref() != Some(&account.organisation_id) {
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
