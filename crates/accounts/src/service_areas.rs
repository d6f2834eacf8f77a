//! Service areas (palvelualue) and users' rights to them (AX-4, AC-11).
//!
//! Inside one registrar, client data is separated by service area: every service type belongs to
//! one area, and a registrar's user sees a client only through services of the areas the user
//! holds a right for. A right has a validity period like a role; ending it ends the sessions that
//! relied on it.

use diesel::prelude::*;
use rekisteri_core::Refusal;
use rekisteri_db::schema::{account_service_areas, service_areas, service_types};
use rekisteri_db::{DbConnection, write_transaction_as};
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::organisations::{find_organisation, security_event};
use crate::{AccountsError, Permission, Principal, Register, now_primitive, rule, validation};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceArea {
    pub id: String,
    pub registrar_id: String,
    pub code: String,
    pub name: String,
    /// The service type codes that belong to the area.
    pub service_types: Vec<String>,
}

/// Read in the column order of `service_area_grants`' select.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct ServiceAreaGrant {
    pub id: String,
    pub registrar_id: String,
    pub account_id: String,
    pub service_area_id: String,
    pub valid_from: PrimitiveDateTime,
    pub valid_until: Option<PrimitiveDateTime>,
}

fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Whether `actor` configures registrar `registrar_id`: its main users, or admins.
fn manages_areas(actor: &Principal, registrar_id: &str) -> bool {
    actor.can(Permission::ManageOrganisations)
        || (actor.can(Permission::ManageServiceAreas) && actor.organisation_id == registrar_id)
}

/// A service area to define.
#[derive(Debug, Clone)]
pub struct NewServiceArea {
    pub code: String,
    pub name: String,
    pub service_types: Vec<String>,
}

/// Defines a service area of a registrar with the service types that belong to it. A service type
/// belongs to one area only (409 when another area has it).
pub fn create_service_area(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
    registrar_key: &str,
    new: NewServiceArea,
    now: OffsetDateTime,
) -> Result<ServiceArea, AccountsError> {
    let (code, name) = (new.code.as_str(), new.name.as_str());
    let registrar = find_organisation(conn, Some(actor), registrar_key)?;
    if !manages_areas(actor, &registrar.id) {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "only the registrar's main users and admins define service areas".into(),
        )));
    }
    if !valid_code(code) {
        return Err(validation("code", "must be 1-64 of a-z, 0-9, '_' and '-'"));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(validation("name", "must be 1-200 characters"));
    }
    let mut service_types_sorted: Vec<String> = new.service_types.clone();
    service_types_sorted.sort();
    service_types_sorted.dedup();
    if service_types_sorted.iter().any(|t| !valid_code(t)) {
        return Err(validation(
            "service_types",
            "each must be 1-64 of a-z, 0-9, '_' and '-'",
        ));
    }
    let at = now_primitive(now);
    let id = uuid::Uuid::new_v4().to_string();
    write_transaction_as(conn, &crate::actor_label(Some(actor)), |conn| {
        let taken: i64 = service_areas::table
            .filter(service_areas::registrar_id.eq(&registrar.id))
            .filter(service_areas::code.eq(code))
            .count()
            .get_result(conn)?;
        if taken > 0 {
            return Err(AccountsError::Refused(Refusal::Conflict(
                "the registrar has a service area with this code".into(),
            )));
        }
        let types_taken: Vec<String> = service_types::table
            .filter(service_types::registrar_id.eq(&registrar.id))
            .filter(service_types::code.eq_any(&service_types_sorted))
            .select(service_types::code)
            .load(conn)?;
        if let Some(taken) = types_taken.first() {
            return Err(AccountsError::Refused(Refusal::Conflict(format!(
                "service type '{taken}' already belongs to another service area"
            ))));
        }
        diesel::insert_into(service_areas::table)
            .values((
                service_areas::registrar_id.eq(&registrar.id),
                service_areas::id.eq(&id),
                service_areas::code.eq(code),
                service_areas::name.eq(name),
                service_areas::created_at.eq(at),
            ))
            .execute(conn)?;
        for service_type in &service_types_sorted {
            diesel::insert_into(service_types::table)
                .values((
                    service_types::registrar_id.eq(&registrar.id),
                    service_types::id.eq(uuid::Uuid::new_v4().to_string()),
                    service_types::code.eq(service_type),
                    service_types::service_area_id.eq(&id),
                    service_types::created_at.eq(at),
                ))
                .execute(conn)?;
        }
        let event = security_event(
            Some(&registrar.id),
            Some(actor),
            "service_area_created",
            serde_json::json!({"service_area_id": id, "code": code, "service_types": service_types_sorted}),
            at,
        );
        register.audit.append_in(conn, vec![event], at)?;
        Ok(())
    })?;
    Ok(ServiceArea {
        id,
        registrar_id: registrar.id,
        code: code.to_owned(),
        name: name.to_owned(),
        service_types: service_types_sorted,
    })
}

/// The registrar's service areas: for its own users and admins.
pub fn list_service_areas(
    conn: &mut DbConnection,
    actor: &Principal,
    registrar_key: &str,
) -> Result<Vec<ServiceArea>, AccountsError> {
    let registrar = find_organisation(conn, Some(actor), registrar_key)?;
    let areas: Vec<(String, String, String)> = service_areas::table
        .filter(service_areas::registrar_id.eq(&registrar.id))
        .order(service_areas::code)
        .select((service_areas::id, service_areas::code, service_areas::name))
        .load(conn)?;
    let types: Vec<(String, String)> = service_types::table
        .filter(service_types::registrar_id.eq(&registrar.id))
        .order(service_types::code)
        .select((service_types::service_area_id, service_types::code))
        .load(conn)?;
    Ok(areas
        .into_iter()
        .map(|(id, code, name)| ServiceArea {
            service_types: types.iter().filter(|(a, _)| *a == id).map(|(_, t)| t.clone()).collect(),
            id,
            registrar_id: registrar.id.clone(),
            code,
            name,
        })
        .collect())
}

/// Grants account `account_id` (a user of the registrar) a right to a service area for
/// `[valid_from, valid_until)`; `valid_from` defaults to now.
#[allow(clippy::too_many_arguments)]
pub fn grant_service_area(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
    account_id: &str,
    service_area_id: &str,
    valid_from: Option<PrimitiveDateTime>,
    valid_until: Option<PrimitiveDateTime>,
    now: OffsetDateTime,
) -> Result<ServiceAreaGrant, AccountsError> {
    let account = crate::get_account(conn, register, Some(actor), account_id)?;
    if !manages_areas(actor, &account.organisation_id) {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "only the registrar's main users and admins grant service-area rights".into(),
        )));
    }
    // As with roles (AC-4): reaching more clients always takes a second person.
    if account.id == actor.account_id {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "nobody grants a service-area right to their own account".into(),
        )));
    }
    let area: Option<String> = service_areas::table
        .filter(service_areas::registrar_id.eq(&account.organisation_id))
        .filter(service_areas::id.eq(service_area_id))
        .select(service_areas::id)
        .first(conn)
        .optional()?;
    if area.is_none() {
        return Err(rule(
            "service_area_id",
            "is not a service area of the account's organisation",
        ));
    }
    let at = now_primitive(now);
    let valid_from = valid_from.unwrap_or(at);
    if valid_until.is_some_and(|until| until <= valid_from) {
        return Err(rule("valid_until", "must be after valid_from"));
    }
    let grant = ServiceAreaGrant {
        id: uuid::Uuid::new_v4().to_string(),
        registrar_id: account.organisation_id.clone(),
        account_id: account_id.to_owned(),
        service_area_id: service_area_id.to_owned(),
        valid_from,
        valid_until,
    };
    write_transaction_as(conn, &crate::actor_label(Some(actor)), |conn| {
        diesel::insert_into(account_service_areas::table)
            .values((
                account_service_areas::id.eq(&grant.id),
                account_service_areas::registrar_id.eq(&grant.registrar_id),
                account_service_areas::account_id.eq(account_id),
                account_service_areas::service_area_id.eq(service_area_id),
                account_service_areas::valid_from.eq(valid_from),
                account_service_areas::valid_until.eq(valid_until),
                account_service_areas::granted_by.eq(&actor.account_id),
                account_service_areas::created_at.eq(at),
            ))
            .execute(conn)?;
        let event = security_event(
            Some(&grant.registrar_id),
            Some(actor),
            "service_area_granted",
            serde_json::json!({"account_id": account_id, "grant_id": grant.id, "service_area_id": service_area_id,
                "valid_from": crate::format_time(valid_from), "valid_until": valid_until.map(crate::format_time)}),
            at,
        );
        register.audit.append_in(conn, vec![event], at)?;
        Ok::<_, AccountsError>(())
    })?;
    Ok(grant)
}

/// The account's service-area grants, ended ones included (the history of rights, AC-8).
pub fn service_area_grants(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
    account_id: &str,
) -> Result<Vec<ServiceAreaGrant>, AccountsError> {
    crate::get_account(conn, register, Some(actor), account_id)?;
    Ok(account_service_areas::table
        .filter(account_service_areas::account_id.eq(account_id))
        .order(account_service_areas::created_at)
        .select((
            account_service_areas::id,
            account_service_areas::registrar_id,
            account_service_areas::account_id,
            account_service_areas::service_area_id,
            account_service_areas::valid_from,
            account_service_areas::valid_until,
        ))
        .load(conn)?)
}

/// Ends a service-area grant at `valid_until` (now when absent). Ending it now ends the account's
/// open sessions, which relied on it (AC-11).
pub fn end_service_area(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
    account_id: &str,
    grant_id: &str,
    valid_until: Option<PrimitiveDateTime>,
    now: OffsetDateTime,
) -> Result<ServiceAreaGrant, AccountsError> {
    let grant = service_area_grants(conn, register, actor, account_id)?
        .into_iter()
        .find(|g| g.id == grant_id)
        .ok_or(AccountsError::Refused(Refusal::NotFound))?;
    if !manages_areas(actor, &grant.registrar_id) {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "only the registrar's main users and admins end service-area rights".into(),
        )));
    }
    let until = crate::ending::end_right(
        conn,
        register,
        actor,
        crate::ending::Ending {
            account_id,
            organisation_id: &grant.registrar_id,
            valid_from: grant.valid_from,
            valid_until: grant.valid_until,
            already_ended: "the right has already ended",
            event: "service_area_ended",
            details: serde_json::json!({"account_id": account_id, "grant_id": grant_id}),
        },
        valid_until,
        now,
        |conn, until| {
            diesel::update(account_service_areas::table.find(grant_id))
                .set(account_service_areas::valid_until.eq(until))
                .execute(conn)
        },
    )?;
    Ok(ServiceAreaGrant {
        valid_until: Some(until),
        ..grant
    })
}

/// Every service-area right of an account in a registrar, whatever its validity, with the
/// area's service types (what [`crate::access_cache::AccessCache::service_types_in_force`] keeps).
pub(crate) fn area_rights(
    conn: &mut DbConnection,
    account_id: &str,
    registrar_id: &str,
) -> QueryResult<Vec<crate::access_cache::AreaRight>> {
    let rows: Vec<(String, PrimitiveDateTime, Option<PrimitiveDateTime>)> = service_types::table
        .inner_join(
            account_service_areas::table.on(account_service_areas::service_area_id
                .eq(service_types::service_area_id)
                .and(account_service_areas::registrar_id.eq(service_types::registrar_id))),
        )
        .filter(service_types::registrar_id.eq(registrar_id))
        .filter(account_service_areas::account_id.eq(account_id))
        .select((
            service_types::code,
            account_service_areas::valid_from,
            account_service_areas::valid_until,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(service_type, valid_from, valid_until)| crate::access_cache::AreaRight {
                service_type,
                valid_from,
                valid_until,
            },
        )
        .collect())
}

/// Every service type of the registrar (for principals that reach all areas: the registrar's
/// own integrations acting without a named user).
pub fn all_service_types(conn: &mut DbConnection, registrar_id: &str) -> QueryResult<Vec<String>> {
    service_types::table
        .filter(service_types::registrar_id.eq(registrar_id))
        .select(service_types::code)
        .load(conn)
}
