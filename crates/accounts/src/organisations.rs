//! Organisations and service units (AC-1).

use diesel::prelude::*;
use rekisteri_audit::{ActorKind, NewEntry, SecurityEvent};
use rekisteri_core::Oid;
use rekisteri_core::Refusal;
use rekisteri_db::schema::{organisations, registrar_municipalities, service_units};
use rekisteri_db::{DbConnection, write_transaction_as};
use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, PrimitiveDateTime};
use utoipa::ToSchema;

use crate::{AccountsError, OrganisationKind, Principal, Register, now_primitive, validation};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub id: String,
    pub name: String,
    pub kind: OrganisationKind,
    pub oid: Option<Oid>,
    pub business_id: Option<String>,
    pub strong_authentication_required: bool,
    /// A registrar's facts a person is told where they see their records (source 000 §4).
    pub contacts: RegistrarContacts,
    /// The organisation's own DVV permit for VTJ queries (VT-9); the platform's when absent.
    pub dvv_permit_reference: Option<String>,
    /// The municipalities whose residents a registrar's register serves, in code order.
    pub municipality_codes: Vec<String>,
    pub version: i64,
    pub created_at: PrimitiveDateTime,
    pub updated_at: PrimitiveDateTime,
}

/// Someone to contact: a person, or a function such as "tietosuojavastaava", with at least one
/// way to reach them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactDetails {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S", example = "Tietosuojavastaava")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "tietosuojavastaava@example.fi")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "+358 9 123 4567")]
    pub phone: Option<String>,
}

/// Whom a data subject contacts about a registrar's register (source 000 §4, GDPR art. 13 (1)
/// (a)-(b)): its contact person for the register and its data-protection officer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct RegistrarContacts {
    /// The register's contact person (rekisterin yhteyshenkilö); absent when not recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_person: Option<ContactDetails>,
    /// The data-protection officer (tietosuojavastaava); absent when not recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_protection_officer: Option<ContactDetails>,
}

impl RegistrarContacts {
    /// From the stored JSON columns; a value that does not parse reads as absent, since only
    /// checked values are ever written.
    pub(crate) fn from_columns(contact_person: Option<&str>, data_protection_officer: Option<&str>) -> Self {
        let parse = |value: Option<&str>| value.and_then(|v| serde_json::from_str::<ContactDetails>(v).ok());
        Self {
            contact_person: parse(contact_person),
            data_protection_officer: parse(data_protection_officer),
        }
    }
}

#[derive(Queryable)]
struct OrganisationRow {
    id: String,
    name: String,
    kind: String,
    oid: Option<String>,
    business_id: Option<String>,
    strong_authentication_required: bool,
    contact_person: Option<String>,
    data_protection_officer: Option<String>,
    dvv_permit_reference: Option<String>,
    version: i64,
    created_at: PrimitiveDateTime,
    updated_at: PrimitiveDateTime,
}

fn from_row(row: OrganisationRow) -> Organisation {
    Organisation {
        contacts: RegistrarContacts::from_columns(
            row.contact_person.as_deref(),
            row.data_protection_officer.as_deref(),
        ),
        id: row.id,
        name: row.name,
        kind: OrganisationKind::parse(&row.kind).unwrap_or(OrganisationKind::OtherOrganiser),
        oid: row.oid.and_then(|o| o.parse().ok()),
        business_id: row.business_id,
        strong_authentication_required: row.strong_authentication_required,
        dvv_permit_reference: row.dvv_permit_reference,
        municipality_codes: Vec::new(),
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

macro_rules! organisation_columns {
    () => {
        (
            organisations::id,
            organisations::name,
            organisations::kind,
            organisations::oid,
            organisations::business_id,
            organisations::strong_authentication_required,
            organisations::contact_person,
            organisations::data_protection_officer,
            organisations::dvv_permit_reference,
            organisations::version,
            organisations::created_at,
            organisations::updated_at,
        )
    };
}

#[derive(Debug, Clone)]
pub struct NewOrganisation {
    pub name: String,
    pub kind: OrganisationKind,
    pub oid: Option<Oid>,
    pub business_id: Option<String>,
    pub strong_authentication_required: Option<bool>,
}

/// Finnish business ID (Y-tunnus): seven digits, a hyphen and a check digit.
fn valid_business_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    if bytes.len() != 9 || bytes[7] != b'-' || !bytes.iter().enumerate().all(|(i, b)| i == 7 || b.is_ascii_digit()) {
        return false;
    }
    let weights = [7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = bytes[..7]
        .iter()
        .zip(weights)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = match sum % 11 {
        0 => 0,
        1 => return false,
        r => 11 - r,
    };
    u32::from(bytes[8] - b'0') == check
}

pub(crate) fn security_event(
    organisation: Option<&str>,
    actor: Option<&Principal>,
    event_type: &str,
    details: serde_json::Value,
    now: PrimitiveDateTime,
) -> NewEntry {
    NewEntry::Security(SecurityEvent {
        occurred_at: now,
        organisation_id: organisation.map(str::to_owned),
        event_type: event_type.to_owned(),
        actor_kind: if actor.is_some_and(Principal::is_admin) {
            ActorKind::Admin
        } else if actor.is_some() {
            ActorKind::Staff
        } else {
            ActorKind::System
        },
        actor_id: actor.map(|a| a.account_id.clone()),
        details,
        request_id: None,
    })
}

/// Creates an organisation (admins; `actor` is `None` only for the bootstrap command).
pub fn create_organisation(
    conn: &mut DbConnection,
    register: &Register,
    actor: Option<&Principal>,
    new: NewOrganisation,
    now: OffsetDateTime,
) -> Result<Organisation, AccountsError> {
    if actor.is_some_and(|a| !a.can(crate::Permission::ManageOrganisations)) {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "only admins create organisations".into(),
        )));
    }
    let name = new.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(validation("name", "must be 1-200 characters"));
    }
    if let Some(id) = &new.business_id
        && !valid_business_id(id)
    {
        return Err(validation(
            "business_id",
            "is not a valid Finnish business ID (1234567-8)",
        ));
    }
    let now = now_primitive(now);
    let id = uuid::Uuid::new_v4().to_string();
    let strong = new.strong_authentication_required.unwrap_or(true);
    write_transaction_as(conn, &crate::actor_label(actor), |conn| {
        if let Some(oid) = &new.oid {
            let taken: i64 = organisations::table
                .filter(organisations::oid.eq(oid.as_str()))
                .count()
                .get_result(conn)?;
            if taken > 0 {
                return Err(AccountsError::Refused(Refusal::Conflict(
                    "an organisation with this OID exists".into(),
                )));
            }
        }
        diesel::insert_into(organisations::table)
            .values((
                organisations::id.eq(&id),
                organisations::name.eq(&name),
                organisations::kind.eq(new.kind.as_str()),
                organisations::oid.eq(new.oid.as_ref().map(Oid::as_str)),
                organisations::business_id.eq(&new.business_id),
                organisations::strong_authentication_required.eq(strong),
                organisations::version.eq(1i64),
                organisations::created_at.eq(now),
                organisations::updated_at.eq(now),
            ))
            .execute(conn)?;
        let event = security_event(
            Some(&id),
            actor,
            "organisation_created",
            serde_json::json!({"organisation_id": id, "kind": new.kind.as_str()}),
            now,
        );
        register.audit.append_in(conn, vec![event], now)?;
        Ok(())
    })?;
    Ok(Organisation {
        id,
        name,
        kind: new.kind,
        oid: new.oid,
        business_id: new.business_id,
        strong_authentication_required: strong,
        contacts: RegistrarContacts::default(),
        dvv_permit_reference: None,
        municipality_codes: Vec::new(),
        version: 1,
        created_at: now,
        updated_at: now,
    })
}

/// Organisations the actor may see: all for admins, otherwise its own.
pub fn list_organisations(conn: &mut DbConnection, actor: &Principal) -> Result<Vec<Organisation>, AccountsError> {
    let mut query = organisations::table
        .select(organisation_columns!())
        .order(organisations::name)
        .into_boxed();
    if !actor.can(crate::Permission::ManageOrganisations) {
        query = query.filter(organisations::id.eq(actor.organisation_id.clone()));
    }
    let mut organisations: Vec<Organisation> = query.load::<OrganisationRow>(conn)?.into_iter().map(from_row).collect();
    with_municipalities(conn, &mut organisations)?;
    Ok(organisations)
}

/// Fills in the municipalities each of `organisations` serves, in one query.
fn with_municipalities(conn: &mut DbConnection, organisations: &mut [Organisation]) -> QueryResult<()> {
    let ids: Vec<&str> = organisations.iter().map(|o| o.id.as_str()).collect();
    let rows: Vec<(String, String)> = registrar_municipalities::table
        .filter(registrar_municipalities::registrar_id.eq_any(ids))
        .order(registrar_municipalities::municipality_code)
        .select((
            registrar_municipalities::registrar_id,
            registrar_municipalities::municipality_code,
        ))
        .load(conn)?;
    for (registrar_id, code) in rows {
        if let Some(organisation) = organisations.iter_mut().find(|o| o.id == registrar_id) {
            organisation.municipality_codes.push(code);
        }
    }
    Ok(())
}

/// An organisation by id or OID, when the actor may see it.
pub fn find_organisation(
    conn: &mut DbConnection,
    actor: Option<&Principal>,
    key: &str,
) -> Result<Organisation, AccountsError> {
    let row: Option<OrganisationRow> = organisations::table
        .filter(organisations::id.eq(key).or(organisations::oid.eq(key)))
        .select(organisation_columns!())
        .first(conn)
        .optional()?;
    let mut organisation = row.map(from_row).ok_or(AccountsError::Refused(Refusal::NotFound))?;
    with_municipalities(conn, std::slice::from_mut(&mut organisation))?;
    match actor {
        Some(actor) if !actor.is_admin() && actor.organisation_id != organisation.id => {
            Err(AccountsError::Refused(Refusal::NotFound))
        }
        _ => Ok(organisation),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUnit {
    pub id: String,
    pub organisation_id: String,
    pub oid: Oid,
    pub name: String,
}

/// Adds a service unit (admins, or main users of the organisation).
pub fn add_service_unit(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
    organisation_key: &str,
    oid: Oid,
    name: &str,
    now: OffsetDateTime,
) -> Result<ServiceUnit, AccountsError> {
    let organisation = find_organisation(conn, Some(actor), organisation_key)?;
    if !actor.manages_organisation(&organisation.id) {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "only admins and the organisation's main users add service units".into(),
        )));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(validation("name", "must be 1-200 characters"));
    }
    let now = now_primitive(now);
    let id = uuid::Uuid::new_v4().to_string();
    write_transaction_as(conn, &crate::actor_label(Some(actor)), |conn| {
        let taken: i64 = service_units::table
            .filter(service_units::oid.eq(oid.as_str()))
            .count()
            .get_result(conn)?;
        if taken > 0 {
            return Err(AccountsError::Refused(Refusal::Conflict(
                "a service unit with this OID exists".into(),
            )));
        }
        diesel::insert_into(service_units::table)
            .values((
                service_units::id.eq(&id),
                service_units::organisation_id.eq(&organisation.id),
                service_units::oid.eq(oid.as_str()),
                service_units::name.eq(name),
                service_units::created_at.eq(now),
            ))
            .execute(conn)?;
        let event = security_event(
            Some(&organisation.id),
            Some(actor),
            "service_unit_added",
            serde_json::json!({"service_unit_id": id, "oid": oid.as_str()}),
            now,
        );
        register.audit.append_in(conn, vec![event], now)?;
        Ok(())
    })?;
    Ok(ServiceUnit {
        id,
        organisation_id: organisation.id,
        oid,
        name: name.to_owned(),
    })
}

pub fn list_service_units(
    conn: &mut DbConnection,
    actor: &Principal,
    organisation_key: &str,
) -> Result<Vec<ServiceUnit>, AccountsError> {
    let organisation = find_organisation(conn, Some(actor), organisation_key)?;
    let rows: Vec<(String, String, String, String)> = service_units::table
        .filter(service_units::organisation_id.eq(&organisation.id))
        .order(service_units::name)
        .select((
            service_units::id,
            service_units::organisation_id,
            service_units::oid,
            service_units::name,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, organisation_id, oid, name)| {
            Some(ServiceUnit {
                id,
                organisation_id,
                oid: oid.parse().ok()?,
                name,
            })
        })
        .collect())
}

/// Changes to an organisation; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct OrganisationChanges {
    pub name: Option<String>,
    pub business_id: Option<String>,
    pub strong_authentication_required: Option<bool>,
    pub contact_person: Option<ContactDetails>,
    pub data_protection_officer: Option<ContactDetails>,
    pub dvv_permit_reference: Option<String>,
    /// Replaces the municipalities a registrar's register serves.
    pub municipality_codes: Option<Vec<rekisteri_core::MunicipalityCode>>,
}

/// Checks a contact and returns it trimmed, naming `field`'s members in a refusal.
fn checked_contact(field: &str, contact: ContactDetails) -> Result<ContactDetails, AccountsError> {
    let name = contact.name.trim();
    if name.is_empty() || contact.name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(validation(
            format!("{field}.name"),
            "must be 1-200 characters without control characters",
        ));
    }
    let (email, phone) = (contact.email, contact.phone);
    if email
        .as_deref()
        .is_some_and(|e| !rekisteri_core::contact::is_email_address(e))
    {
        return Err(validation(format!("{field}.email"), "is not an e-mail address"));
    }
    if phone
        .as_deref()
        .is_some_and(|p| !rekisteri_core::contact::is_phone_number(p))
    {
        return Err(validation(
            format!("{field}.phone"),
            "is not a phone number (5-20 digits with '+', spaces, '-' and parentheses)",
        ));
    }
    if email.is_none() && phone.is_none() {
        return Err(validation(
            field,
            "needs an e-mail address or a phone number to reach them",
        ));
    }
    Ok(ContactDetails {
        name: name.to_owned(),
        email,
        phone,
    })
}

fn contact_column(contact: Option<&ContactDetails>) -> Option<String> {
    contact.map(|c| serde_json::json!({"name": c.name, "email": c.email, "phone": c.phone}).to_string())
}

/// Changes an organisation (admins, AC-4). Turning strong authentication off for a registrar is
/// a security event like every other change.
pub fn update_organisation(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
    organisation_key: &str,
    changes: OrganisationChanges,
    now: OffsetDateTime,
) -> Result<Organisation, AccountsError> {
    let organisation = find_organisation(conn, Some(actor), organisation_key)?;
    if !actor.can(crate::Permission::ManageOrganisations) {
        return Err(AccountsError::Refused(Refusal::Forbidden(
            "only admins change organisations".into(),
        )));
    }
    let name = match changes.name {
        Some(name) if name.trim().is_empty() || name.trim().chars().count() > 200 => {
            return Err(validation("name", "must be 1-200 characters"));
        }
        Some(name) => name.trim().to_owned(),
        None => organisation.name.clone(),
    };
    let business_id = match changes.business_id {
        Some(id) if !valid_business_id(&id) => {
            return Err(validation("business_id", "is not a Finnish business ID (1234567-8)"));
        }
        Some(id) => Some(id),
        None => organisation.business_id.clone(),
    };
    let strong = changes
        .strong_authentication_required
        .unwrap_or(organisation.strong_authentication_required);
    let contact_person = match changes.contact_person {
        Some(contact) => Some(checked_contact("contact_person", contact)?),
        None => organisation.contacts.contact_person.clone(),
    };
    let data_protection_officer = match changes.data_protection_officer {
        Some(contact) => Some(checked_contact("data_protection_officer", contact)?),
        None => organisation.contacts.data_protection_officer.clone(),
    };
    let dvv_permit_reference = match changes.dvv_permit_reference {
        Some(reference)
            if reference.trim().is_empty()
                || reference.chars().count() > 100
                || reference.chars().any(char::is_control) =>
        {
            return Err(validation(
                "dvv_permit_reference",
                "must be 1-100 characters without control characters",
            ));
        }
        Some(reference) => Some(reference.trim().to_owned()),
        None => organisation.dvv_permit_reference.clone(),
    };
    let municipality_codes = match changes.municipality_codes {
        Some(_)
            if matches!(
                organisation.kind,
                OrganisationKind::Provider | OrganisationKind::Platform
            ) =>
        {
            return Err(crate::rule(
                "municipality_codes",
                "only a registrar (a municipality, a wellbeing services county or another organiser) serves municipalities",
            ));
        }
        Some(codes) => {
            let mut codes: Vec<String> = codes.iter().map(|c| c.as_str().to_owned()).collect();
            codes.sort();
            codes.dedup();
            Some(codes)
        }
        None => None,
    };
    let at = now_primitive(now);
    write_transaction_as(conn, &crate::actor_label(Some(actor)), |conn| {
        if let Some(codes) = &municipality_codes {
            let held: Vec<(String, String)> = registrar_municipalities::table
                .inner_join(organisations::table)
                .filter(registrar_municipalities::municipality_code.eq_any(codes))
                .filter(registrar_municipalities::registrar_id.ne(&organisation.id))
                .select((registrar_municipalities::municipality_code, organisations::name))
                .load(conn)?;
            if let Some((code, holder)) = held.first() {
                return Err(AccountsError::Refused(Refusal::Conflict(format!(
                    "municipality {code} is served by another registrar ({holder}); a municipality has one registrar"
                ))));
            }
            diesel::delete(
                registrar_municipalities::table.filter(registrar_municipalities::registrar_id.eq(&organisation.id)),
            )
            .execute(conn)?;
            for code in codes {
                diesel::insert_into(registrar_municipalities::table)
                    .values((
                        registrar_municipalities::municipality_code.eq(code),
                        registrar_municipalities::registrar_id.eq(&organisation.id),
                    ))
                    .execute(conn)?;
            }
        }
        diesel::update(organisations::table.find(&organisation.id))
            .set((
                organisations::name.eq(&name),
                organisations::business_id.eq(&business_id),
                organisations::strong_authentication_required.eq(strong),
                organisations::contact_person.eq(contact_column(contact_person.as_ref())),
                organisations::data_protection_officer.eq(contact_column(data_protection_officer.as_ref())),
                organisations::dvv_permit_reference.eq(&dvv_permit_reference),
                organisations::updated_at.eq(at),
                organisations::version.eq(organisations::version + 1),
            ))
            .execute(conn)?;
        let event = security_event(
            Some(&organisation.id),
            Some(actor),
            "organisation_changed",
            serde_json::json!({"organisation_id": organisation.id,
                "strong_authentication_required": strong,
                "strong_authentication_changed": strong != organisation.strong_authentication_required}),
            at,
        );
        register.audit.append_in(conn, vec![event], at)?;
        Ok::<_, AccountsError>(())
    })?;
    find_organisation(conn, Some(actor), &organisation.id)
}

#[cfg(test)]
mod tests {
    use super::valid_business_id;

    #[test]
    fn ac_1_business_id_check_digit() {
        assert!(valid_business_id("0201256-6"));
        assert!(valid_business_id("1572860-0"));
        assert!(!valid_business_id("0201256-5"));
        assert!(!valid_business_id("020125-66"));
        assert!(!valid_business_id("0201256"));
    }
}
