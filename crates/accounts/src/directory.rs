//! What the other registers read of this crate's tables: organisations, their service units and
//! service types, and which organisation an account belongs to. Each table has one owner
//! (`crates/db/tests/ownership.rs`); a register that needs a fact of these tables asks here
//! instead of querying them itself.

use diesel::prelude::*;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::{accounts, organisations, registrar_municipalities, service_types, service_units};

use crate::{OrganisationKind, RegistrarContacts};

/// An organisation that keeps a client register (neither a provider nor the platform).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registrar {
    pub id: String,
    pub name: String,
    /// How long the anonymised clients of its register are kept (CL-14).
    pub anonymised_retention_years: i32,
    /// Whom a person contacts about the register (source 000 §4).
    pub contacts: RegistrarContacts,
    /// Its own DVV permit for VTJ queries (VT-9); the platform's applies when absent.
    pub dvv_permit_reference: Option<String>,
}

const NOT_REGISTRARS: [&str; 2] = ["provider", "platform"];

type RegistrarRow = (String, String, i32, Option<String>, Option<String>, Option<String>);

macro_rules! registrar_columns {
    () => {
        (
            organisations::id,
            organisations::name,
            organisations::anonymised_retention_years,
            organisations::contact_person,
            organisations::data_protection_officer,
            organisations::dvv_permit_reference,
        )
    };
}

fn registrar_of(row: RegistrarRow) -> Registrar {
    let (id, name, anonymised_retention_years, contact_person, data_protection_officer, dvv_permit_reference) = row;
    Registrar {
        id,
        name,
        anonymised_retention_years,
        contacts: RegistrarContacts::from_columns(contact_person.as_deref(), data_protection_officer.as_deref()),
        dvv_permit_reference,
    }
}

/// Every registrar, in name order (then id).
pub fn registrars(conn: &mut DbConnection) -> QueryResult<Vec<Registrar>> {
    let rows: Vec<RegistrarRow> = organisations::table
        .filter(organisations::kind.ne_all(NOT_REGISTRARS))
        .order((organisations::name, organisations::id))
        .select(registrar_columns!())
        .load(conn)?;
    Ok(rows.into_iter().map(registrar_of).collect())
}

/// Registrar `id`; none when it is no registrar.
pub fn registrar(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Registrar>> {
    let row: Option<RegistrarRow> = organisations::table
        .find(id)
        .filter(organisations::kind.ne_all(NOT_REGISTRARS))
        .select(registrar_columns!())
        .first(conn)
        .optional()?;
    Ok(row.map(registrar_of))
}

/// The registrar whose register serves the residents of municipality `code`, if any.
pub fn registrar_of_municipality(conn: &mut DbConnection, code: &str) -> QueryResult<Option<String>> {
    registrar_municipalities::table
        .find(code)
        .select(registrar_municipalities::registrar_id)
        .first(conn)
        .optional()
}

/// The municipalities registrar `id` serves; empty when none were recorded.
pub fn municipalities_of(conn: &mut DbConnection, id: &str) -> QueryResult<Vec<String>> {
    registrar_municipalities::table
        .filter(registrar_municipalities::registrar_id.eq(id))
        .order(registrar_municipalities::municipality_code)
        .select(registrar_municipalities::municipality_code)
        .load(conn)
}

/// The name of registrar `id`; none when it is no registrar.
pub fn registrar_name(conn: &mut DbConnection, id: &str) -> QueryResult<Option<String>> {
    organisations::table
        .find(id)
        .filter(organisations::kind.ne_all(NOT_REGISTRARS))
        .select(organisations::name)
        .first(conn)
        .optional()
}

/// The kind of organisation `id`; none when there is no such organisation.
pub fn organisation_kind(conn: &mut DbConnection, id: &str) -> QueryResult<Option<OrganisationKind>> {
    let kind: Option<String> = organisations::table
        .find(id)
        .select(organisations::kind)
        .first(conn)
        .optional()?;
    Ok(kind.and_then(|k| OrganisationKind::parse(&k)))
}

/// Whether any organisation has the id.
pub fn organisation_exists(conn: &mut DbConnection, id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        organisations::table.filter(organisations::id.eq(id)),
    ))
    .get_result(conn)
}

/// The names of the organisations among `ids`, as `(id, name)`.
pub fn organisation_names(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<(String, String)>> {
    organisations::table
        .filter(organisations::id.eq_any(ids))
        .select((organisations::id, organisations::name))
        .load(conn)
}

/// The organisation a caller named by its id or its OID, as `(id, kind)`.
pub fn organisation_by_id_or_oid(conn: &mut DbConnection, key: &str) -> QueryResult<Option<(String, String)>> {
    organisations::table
        .filter(organisations::id.eq(key).or(organisations::oid.eq(key)))
        .select((organisations::id, organisations::kind))
        .first(conn)
        .optional()
}

/// The id of the provider organisation a caller named by its id or its OID.
pub fn provider_by_id_or_oid(conn: &mut DbConnection, key: &str) -> QueryResult<Option<String>> {
    organisations::table
        .filter(organisations::id.eq(key).or(organisations::oid.eq(key)))
        .filter(organisations::kind.eq("provider"))
        .select(organisations::id)
        .first(conn)
        .optional()
}

/// Whether `organisation_id` has registered a service unit with the OID.
pub fn has_unit_with_oid(conn: &mut DbConnection, organisation_id: &str, oid: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        service_units::table
            .filter(service_units::organisation_id.eq(organisation_id))
            .filter(service_units::oid.eq(oid)),
    ))
    .get_result(conn)
}

/// The organisation service unit `unit_id` belongs to, for every register that hangs its
/// records on a unit (CA-1); `None` for an unknown unit.
pub fn unit_organisation(conn: &mut DbConnection, unit_id: &str) -> QueryResult<Option<String>> {
    service_units::table
        .find(unit_id)
        .select(service_units::organisation_id)
        .first(conn)
        .optional()
}

/// Whether `code` is a service type of one of the registrar's service areas.
pub fn is_service_type_of(conn: &mut DbConnection, registrar_id: &str, code: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        service_types::table
            .filter(service_types::registrar_id.eq(registrar_id))
            .filter(service_types::code.eq(code)),
    ))
    .get_result(conn)
}

/// The organisation of account `account_id` while it is open (not closed).
pub fn open_account_organisation(conn: &mut DbConnection, account_id: &str) -> QueryResult<Option<String>> {
    accounts::table
        .find(account_id)
        .filter(accounts::status.ne("closed"))
        .select(accounts::organisation_id)
        .first(conn)
        .optional()
}

/// The accounts of the organisations among `organisation_ids`, oldest first, as
/// `(account id, organisation id)`.
pub fn accounts_of(conn: &mut DbConnection, organisation_ids: &[String]) -> QueryResult<Vec<(String, String)>> {
    accounts::table
        .filter(accounts::organisation_id.eq_any(organisation_ids))
        .order(accounts::created_at)
        .select((accounts::id, accounts::organisation_id))
        .load(conn)
}
