//! Clients (CL-1..CL-3, CL-8, CL-9, CL-11).

use diesel::prelude::*;
use rekisteri_accounts::Permission;
use rekisteri_audit::{AccessBasis, DataUse, Outcome};
use rekisteri_core::Refusal;
use rekisteri_core::{PersonalIdentityCode, TemporaryCodesAllowed};
use rekisteri_db::schema::{clients, services};
use rekisteri_db::{DbConnection, write_transaction, write_transaction_as};
use time::{Date, PrimitiveDateTime};

use crate::access::{Decision, Reach, decide_for};
use crate::sealed::RowCipher;
use crate::services::{ServiceRow, open_service, service_columns};
use crate::{
    Address, Client, ClientChanges, ClientRegister, ClientsError, DatePrecision, Gender, Guardianship, NewClient,
    NewService, NextOfKin, Request, ServiceKind, at_primitive, format_time, rule, validation,
};

#[derive(Clone, Queryable)]
pub(crate) struct ClientRow {
    pub registrar_id: String,
    pub id: String,
    pub subject_index: Option<Vec<u8>>,
    pub identity_code: Option<Vec<u8>>,
    pub first_names: Option<Vec<u8>>,
    pub surname: Option<Vec<u8>>,
    pub gender: String,
    pub home_municipality: Option<String>,
    pub moved_in_on: Option<Date>,
    pub moved_out_on: Option<Date>,
    pub died_on: Option<Date>,
    pub language: Option<String>,
    pub email: Option<Vec<u8>>,
    pub phone: Option<Vec<u8>>,
    pub next_of_kin: Option<Vec<u8>>,
    pub address: Option<Vec<u8>>,
    pub protection_order: bool,
    pub restricted: bool,
    pub version: i64,
    pub created_at: PrimitiveDateTime,
    pub updated_at: PrimitiveDateTime,
    pub anonymised_at: Option<PrimitiveDateTime>,
    /// VT-4: sealed like `address`, never stored under a protection order.
    pub temporary_address: Option<Vec<u8>>,
    pub postal_address: Option<Vec<u8>>,
    /// VT-4: sealed JSON of [`Guardianship`].
    pub guardianship: Option<Vec<u8>>,
    /// VT-4: `month` / `year` ([`DatePrecision`]), NULL for a full date.
    pub moved_in_on_precision: Option<String>,
    pub moved_out_on_precision: Option<String>,
    pub died_on_precision: Option<String>,
}

rekisteri_core::redacted_debug!(ClientRow {
    id,
    registrar_id,
    version
});

macro_rules! client_columns {
    () => {
        (
            clients::registrar_id,
            clients::id,
            clients::subject_index,
            clients::identity_code,
            clients::first_names,
            clients::surname,
            clients::gender,
            clients::home_municipality,
            clients::moved_in_on,
            clients::moved_out_on,
            clients::died_on,
            clients::language,
            clients::email,
            clients::phone,
            clients::next_of_kin,
            clients::address,
            clients::protection_order,
            clients::restricted,
            clients::version,
            clients::created_at,
            clients::updated_at,
            clients::anonymised_at,
            clients::temporary_address,
            clients::postal_address,
            clients::guardianship,
            clients::moved_in_on_precision,
            clients::moved_out_on_precision,
            clients::died_on_precision,
        )
    };
}
pub(crate) use client_columns;

impl ClientRow {
    pub(crate) fn subject(&self) -> Option<[u8; 32]> {
        self.subject_index.as_deref().and_then(|s| s.try_into().ok())
    }
}

pub(crate) fn load_client(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_id: &str,
) -> QueryResult<Option<ClientRow>> {
    clients::table
        .filter(clients::registrar_id.eq(registrar_id))
        .filter(clients::id.eq(client_id))
        .select(client_columns!())
        .first(conn)
        .optional()
}

/// The registrar's live (not anonymised) client whose identity-code index is one of
/// `candidates` (a code's [`rekisteri_audit::subject_index_candidates`], or one stored index).
pub(crate) fn client_by_subject(
    conn: &mut DbConnection,
    registrar_id: &str,
    candidates: &[Vec<u8>],
) -> QueryResult<Option<ClientRow>> {
    clients::table
        .filter(clients::registrar_id.eq(registrar_id))
        .filter(clients::subject_index.eq_any(candidates.to_vec()))
        .filter(clients::anonymised_at.is_null())
        .select(client_columns!())
        .first(conn)
        .optional()
}

pub(crate) fn load_services_of(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_ids: &[String],
) -> QueryResult<Vec<ServiceRow>> {
    services::table
        .filter(services::registrar_id.eq(registrar_id))
        .filter(services::client_id.eq_any(client_ids))
        .order((services::client_id, services::valid_from, services::id))
        .select(service_columns!())
        .load(conn)
}

/// [`load_services_of`] for one client, as a statement that stays prepared (a list of ids makes
/// a new one each time).
pub(crate) fn load_services_of_client(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_id: &str,
) -> QueryResult<Vec<ServiceRow>> {
    services::table
        .filter(services::registrar_id.eq(registrar_id))
        .filter(services::client_id.eq(client_id))
        .order((services::valid_from, services::id))
        .select(service_columns!())
        .load(conn)
}

/// Opens a client's row for the caller: a provider gets only the fields it needs (CL-9), and a
/// protection order leaves address and home municipality out for everyone (CL-8).
pub(crate) fn open_client(
    register: &ClientRegister,
    row: &ClientRow,
    services: &[ServiceRow],
    decision: &Decision,
) -> Result<Client, ClientsError> {
    // The data subject keeps the right of access during a restriction; everyone else sees
    // only that the record exists (CL-12).
    let own = matches!(decision.basis, AccessBasis::OwnData | AccessBasis::Proxy);
    if row.restricted && !own {
        return Ok(restricted_view(row));
    }
    let cipher = RowCipher::new(&register.keyring, "clients", &row.id);
    let full = decision.is_registrar();
    let protected = row.protection_order;
    let visible = services
        .iter()
        .filter(|s| s.client_id == row.id && decision.reaches_service(&s.service_type, &s.provider_id))
        .map(|s| open_service(register, s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Client {
        id: row.id.clone(),
        registrar_id: row.registrar_id.clone(),
        identity_code: cipher.open_opt("identity_code", row.identity_code.as_deref())?,
        first_names: cipher.open_opt("first_names", row.first_names.as_deref())?,
        surname: cipher.open_opt("surname", row.surname.as_deref())?,
        gender: full.then(|| Gender::parse(&row.gender)),
        home_municipality: if full && !protected {
            row.home_municipality.clone()
        } else {
            None
        },
        moved_in_on: row.moved_in_on.filter(|_| full),
        moved_in_on_precision: precision_of(row.moved_in_on, row.moved_in_on_precision.as_deref()).filter(|_| full),
        moved_out_on: row.moved_out_on.filter(|_| full),
        moved_out_on_precision: precision_of(row.moved_out_on, row.moved_out_on_precision.as_deref()).filter(|_| full),
        died_on: row.died_on.filter(|_| full),
        died_on_precision: precision_of(row.died_on, row.died_on_precision.as_deref()).filter(|_| full),
        language: row.language.clone(),
        email: cipher.open_opt("email", row.email.as_deref())?,
        phone: cipher.open_opt("phone", row.phone.as_deref())?,
        next_of_kin: if full {
            cipher.open_json("next_of_kin", row.next_of_kin.as_deref())?
        } else {
            None
        },
        address: if protected {
            None
        } else {
            cipher.open_json("address", row.address.as_deref())?
        },
        temporary_address: if protected {
            None
        } else {
            cipher.open_json("temporary_address", row.temporary_address.as_deref())?
        },
        postal_address: if protected {
            None
        } else {
            cipher.open_json("postal_address", row.postal_address.as_deref())?
        },
        guardianship: if full {
            cipher
                .open_json::<Guardianship>("guardianship", row.guardianship.as_deref())?
                .filter(|g| !g.is_empty())
        } else {
            None
        },
        protection_order: protected,
        found_by_previous_identity_code: false,
        restricted: row.restricted,
        version: row.version,
        created_at: format_time(row.created_at),
        updated_at: format_time(row.updated_at),
        services: visible,
    })
}

/// The precision of a stored date (VT-4): only beside a date, `None` for a full one.
fn precision_of(date: Option<Date>, stored: Option<&str>) -> Option<DatePrecision> {
    date.and(stored.and_then(DatePrecision::parse))
}

/// A restricted client as the staff see it (CL-12): that it exists, its version (to lift the
/// restriction) and nothing personal.
fn restricted_view(row: &ClientRow) -> Client {
    Client {
        id: row.id.clone(),
        registrar_id: row.registrar_id.clone(),
        identity_code: None,
        first_names: None,
        surname: None,
        gender: None,
        home_municipality: None,
        moved_in_on: None,
        moved_in_on_precision: None,
        moved_out_on: None,
        moved_out_on_precision: None,
        died_on: None,
        died_on_precision: None,
        language: None,
        email: None,
        phone: None,
        next_of_kin: None,
        address: None,
        temporary_address: None,
        postal_address: None,
        guardianship: None,
        protection_order: row.protection_order,
        found_by_previous_identity_code: false,
        restricted: true,
        version: row.version,
        created_at: format_time(row.created_at),
        updated_at: format_time(row.updated_at),
        services: Vec::new(),
    }
}

/// Refuses every processing but storage of a restricted client (CL-12).
pub(crate) fn ensure_not_restricted(row: &ClientRow) -> Result<(), ClientsError> {
    if row.restricted {
        return Err(ClientsError::Restricted);
    }
    Ok(())
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), ClientsError> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(validation(field, format!("must be 1-{max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(validation(field, "must not contain control characters"));
    }
    Ok(())
}

fn check_optional_text(field: &str, value: Option<&str>, max: usize) -> Result<(), ClientsError> {
    value.map_or(Ok(()), |v| check_text(field, v, max))
}

pub(crate) fn check_email(field: &str, value: Option<&str>) -> Result<(), ClientsError> {
    match value {
        Some(email) if !rekisteri_core::contact::is_email_address(email) => {
            Err(validation(field, "is not an e-mail address"))
        }
        _ => Ok(()),
    }
}

pub(crate) fn check_phone(field: &str, value: Option<&str>) -> Result<(), ClientsError> {
    match value {
        Some(phone) if !rekisteri_core::contact::is_phone_number(phone) => Err(validation(
            field,
            "is not a phone number (5-20 digits with '+', spaces, '-' and parentheses)",
        )),
        _ => Ok(()),
    }
}

pub(crate) fn check_next_of_kin(next_of_kin: Option<&NextOfKin>) -> Result<(), ClientsError> {
    if let Some(kin) = next_of_kin {
        check_optional_text("next_of_kin.name", kin.name.as_deref(), 200)?;
        check_phone("next_of_kin.phone", kin.phone.as_deref())?;
    }
    Ok(())
}

fn check_address(address: &Address) -> Result<(), ClientsError> {
    let fields = [
        ("address.street_address", &address.street_address),
        ("address.po_box", &address.po_box),
        ("address.street_name", &address.street_name),
        ("address.apartment_number", &address.apartment_number),
        ("address.apartment_letter", &address.apartment_letter),
        ("address.apartment_division_letter", &address.apartment_division_letter),
        ("address.post_office", &address.post_office),
        ("address.address_qualifier", &address.address_qualifier),
        ("address.municipality", &address.municipality),
    ];
    for (field, value) in fields {
        check_optional_text(field, value.as_deref(), 200)?;
    }
    if let Some(code) = &address.postal_code
        && (code.len() != 5 || !code.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(validation("address.postal_code", "must be five digits"));
    }
    if let Some(country) = &address.country_code
        && (country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(validation(
            "address.country_code",
            "must be an ISO 3166-1 alpha-2 code (FI, SE, …)",
        ));
    }
    Ok(())
}

fn check_language(language: Option<&str>) -> Result<(), ClientsError> {
    if let Some(language) = language
        && (language.len() != 2 || !language.bytes().all(|b| b.is_ascii_lowercase()))
    {
        return Err(validation("language", "must be an ISO 639-1 code (fi, sv, en, …)"));
    }
    Ok(())
}

/// Parses an identity code given by a caller (CL-2), only in its canonical form (nothing is
/// trimmed or upper-cased); the error names the field and the reason, never the code.
pub(crate) fn parse_identity_code(field: &str, value: &str) -> Result<PersonalIdentityCode, ClientsError> {
    PersonalIdentityCode::parse(value, TemporaryCodesAllowed::No).map_err(|e| validation(field, e.to_string()))
}

/// A new service checked against the registrar's service types, the caller's service areas and
/// the provider register.
pub(crate) struct CheckedService {
    pub new: NewService,
    pub provider_id: String,
}

pub(crate) fn check_service(
    conn: &mut DbConnection,
    decision: &Decision,
    registrar_id: &str,
    prefix: &str,
    service: NewService,
) -> Result<CheckedService, ClientsError> {
    let field = |name: &str| format!("{prefix}{name}");
    check_text(&field("service_name"), &service.service_name, 200)?;
    check_optional_text(&field("decision_ref"), service.decision_ref.as_deref(), 100)?;
    check_optional_text(&field("additional_info"), service.additional_info.as_deref(), 4000)?;
    if service.valid_to < service.valid_from {
        return Err(rule(field("valid_to"), "must be on or after valid_from"));
    }
    match (service.kind, service.unit_value_cents) {
        (ServiceKind::ServiceVoucher, None) => {
            return Err(rule(
                field("unit_value_cents"),
                "a service voucher needs its value per unit",
            ));
        }
        (_, Some(cents)) if !(0..=100_000_000).contains(&cents) => {
            return Err(validation(field("unit_value_cents"), "must be 0-100000000 cents"));
        }
        _ => {}
    }
    if !rekisteri_accounts::directory::is_service_type_of(conn, registrar_id, &service.service_type)? {
        return Err(rule(
            field("service_type"),
            "is not a service type of the registrar's service areas",
        ));
    }
    if let Reach::Registrar {
        service_types: Some(types),
    } = &decision.reach
        && !types.contains(&service.service_type)
    {
        return Err(ClientsError::Refused(Refusal::Forbidden(
            "the service type is outside the caller's service areas".into(),
        )));
    }
    let provider_id = match rekisteri_accounts::directory::organisation_by_id_or_oid(conn, &service.provider_id)? {
        Some((id, kind)) if kind == "provider" => id,
        _ => return Err(rule(field("provider_id"), "is not a provider organisation")),
    };
    if let Some(oid) = &service.provider_unit_oid
        && !rekisteri_accounts::directory::has_unit_with_oid(conn, &provider_id, oid.as_str())?
    {
        return Err(rule(
            field("provider_unit_oid"),
            "is not a service unit of the provider",
        ));
    }
    Ok(CheckedService {
        new: service,
        provider_id,
    })
}

pub(crate) fn is_unique_violation(error: &ClientsError) -> bool {
    matches!(
        error,
        ClientsError::Db(rekisteri_db::DbError::Query(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _
        )))
    )
}

/// Creates a client with their first services in one transaction (CL-1): one client per
/// registrar and identity code (409 otherwise, also under concurrent creates).
pub fn create_client(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    new: NewClient,
) -> Result<Client, ClientsError> {
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::WriteClients)?;
    match decision.reach {
        Reach::Registrar { .. } => {}
        Reach::Provider { .. } => {
            return Err(ClientsError::Refused(Refusal::Forbidden(
                "clients are created by the registrar, not by providers".into(),
            )));
        }
        Reach::Nothing => return Err(ClientsError::Refused(Refusal::NotFound)),
    }
    let code = parse_identity_code("identity_code", &new.identity_code)?;
    check_text("first_names", &new.first_names, 200)?;
    check_text("surname", &new.surname, 200)?;
    check_language(new.language.as_deref())?;
    check_email("email", new.email.as_deref())?;
    check_phone("phone", new.phone.as_deref())?;
    check_next_of_kin(new.next_of_kin.as_ref())?;
    if let Some(address) = &new.address {
        check_address(address)?;
    }
    for (field, date) in [
        ("moved_in_on", new.moved_in_on),
        ("moved_out_on", new.moved_out_on),
        ("died_on", new.died_on),
    ] {
        if date.is_some_and(|d| d < code.birth_date()) {
            return Err(rule(field, "is before the date of birth"));
        }
    }
    if new.services.is_empty() {
        return Err(validation(
            "services",
            "a client is created with at least one granted service",
        ));
    }
    let mut checked = Vec::with_capacity(new.services.len());
    for (i, service) in new.services.iter().cloned().enumerate() {
        checked.push(check_service(
            conn,
            &decision,
            registrar_id,
            &format!("services[{i}]."),
            service,
        )?);
    }
    let subject = rekisteri_audit::subject_index(&register.keyring, &code);
    // The person may be on file under a blind-index key being rotated out: a duplicate of them
    // is still a duplicate.
    let candidates = rekisteri_audit::subject_index_candidates(&register.keyring, &code);
    let id = uuid::Uuid::new_v4().to_string();
    let cipher = RowCipher::new(&register.keyring, "clients", &id);
    // A protection order means no address and no home municipality is stored at all (CL-8).
    let (address, home_municipality) = if new.protection_order {
        (None, None)
    } else {
        (new.address.clone(), new.home_municipality.map(|m| m.to_string()))
    };
    let row = ClientRow {
        registrar_id: registrar_id.to_owned(),
        id: id.clone(),
        subject_index: Some(subject.to_vec()),
        identity_code: Some(cipher.seal("identity_code", code.reveal())?),
        first_names: Some(cipher.seal("first_names", new.first_names.trim())?),
        surname: Some(cipher.seal("surname", new.surname.trim())?),
        gender: new.gender.as_str().to_owned(),
        home_municipality,
        moved_in_on: new.moved_in_on,
        moved_out_on: new.moved_out_on,
        died_on: new.died_on,
        language: new.language.clone(),
        email: cipher.seal_opt("email", new.email.as_deref())?,
        phone: cipher.seal_opt("phone", new.phone.as_deref())?,
        next_of_kin: cipher.seal_json("next_of_kin", new.next_of_kin.as_ref())?,
        address: cipher.seal_json("address", address.as_ref())?,
        protection_order: new.protection_order,
        restricted: false,
        version: 1,
        created_at: at,
        updated_at: at,
        anonymised_at: None,
        temporary_address: None,
        postal_address: None,
        guardianship: None,
        moved_in_on_precision: None,
        moved_out_on_precision: None,
        died_on_precision: None,
    };
    let service_rows = checked
        .into_iter()
        .map(|c| crate::services::new_service_row(register, registrar_id, &id, c, at))
        .collect::<Result<Vec<_>, _>>()?;
    let context = decision.context(&request.audit);
    let result = write_transaction_as(conn, &request.principal.account_id, |conn| {
        let taken: i64 = clients::table
            .filter(clients::registrar_id.eq(registrar_id))
            .filter(clients::subject_index.eq_any(&candidates))
            .count()
            .get_result(conn)?;
        if taken > 0 {
            return Err(ClientsError::ClientExists {
                registrar_id: registrar_id.to_owned(),
                client_id: None,
            });
        }
        insert_client(conn, &row, code.birth_date().year())?;
        for (service, _) in &service_rows {
            crate::services::insert_service(conn, service)?;
        }
        let entry = context.usage_entry(
            DataUse {
                subject_index: Some(subject),
                data_kind: "client".into(),
                data_id: Some(id.clone()),
                outcome: Outcome::Used,
            },
            at,
        );
        register.audit.append_in(conn, vec![entry], at)?;
        Ok(())
    });
    match result {
        Err(e) if is_unique_violation(&e) || matches!(e, ClientsError::ClientExists { .. }) => {
            return Err(existing_client(
                conn,
                register,
                request,
                &decision,
                registrar_id,
                subject,
                &candidates,
            )?);
        }
        other => other?,
    }
    // The caller sent these values; answering with them opens nothing new.
    Ok(Client {
        id: id.clone(),
        registrar_id: registrar_id.to_owned(),
        identity_code: Some(code.reveal().to_owned()),
        first_names: Some(new.first_names.trim().to_owned()),
        surname: Some(new.surname.trim().to_owned()),
        gender: Some(new.gender),
        home_municipality: row.home_municipality.clone(),
        moved_in_on: new.moved_in_on,
        moved_in_on_precision: None,
        moved_out_on: new.moved_out_on,
        moved_out_on_precision: None,
        died_on: new.died_on,
        died_on_precision: None,
        language: new.language,
        email: new.email,
        phone: new.phone,
        next_of_kin: new.next_of_kin,
        address,
        temporary_address: None,
        postal_address: None,
        guardianship: None,
        protection_order: new.protection_order,
        found_by_previous_identity_code: false,
        restricted: false,
        version: 1,
        created_at: format_time(at),
        updated_at: format_time(at),
        services: service_rows.into_iter().map(|(_, view)| view).collect(),
    })
}

fn insert_client(conn: &mut DbConnection, row: &ClientRow, birth_year: i32) -> QueryResult<usize> {
    diesel::insert_into(clients::table)
        .values((
            clients::registrar_id.eq(&row.registrar_id),
            clients::id.eq(&row.id),
            clients::subject_index.eq(&row.subject_index),
            clients::identity_code.eq(&row.identity_code),
            clients::first_names.eq(&row.first_names),
            clients::surname.eq(&row.surname),
            clients::gender.eq(&row.gender),
            clients::home_municipality.eq(&row.home_municipality),
            clients::moved_in_on.eq(row.moved_in_on),
            clients::moved_out_on.eq(row.moved_out_on),
            clients::died_on.eq(row.died_on),
            clients::language.eq(&row.language),
            clients::email.eq(&row.email),
            clients::phone.eq(&row.phone),
            clients::next_of_kin.eq(&row.next_of_kin),
            clients::address.eq(&row.address),
            clients::protection_order.eq(row.protection_order),
            clients::restricted.eq(row.restricted),
            clients::version.eq(row.version),
            clients::created_at.eq(row.created_at),
            clients::updated_at.eq(row.updated_at),
            // The age group's source, kept through anonymisation (CL-14, CL-16).
            clients::birth_year.eq(Some(birth_year)),
        ))
        .execute(conn)
}

/// Logs a refused attempt on a client (AX-7) durably, then answers 404.
pub(crate) fn deny(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    subject: Option<[u8; 32]>,
    data_kind: &str,
    data_id: &str,
) -> ClientsError {
    let at = at_primitive(request.now);
    let logged = register.audit.read_personal_data(
        conn,
        &Decision::denied(&request.audit),
        at,
        |_| -> Result<((), Vec<DataUse>), ClientsError> {
            Ok((
                (),
                vec![DataUse {
                    subject_index: subject,
                    data_kind: data_kind.to_owned(),
                    data_id: Some(data_id.to_owned()),
                    outcome: Outcome::Denied,
                }],
            ))
        },
    );
    match logged {
        Ok(()) => ClientsError::Refused(Refusal::NotFound),
        Err(e) => e,
    }
}

/// A client the decision reaches, with all its services (for the caller to filter); otherwise a
/// logged denial and 404, so that a missing and a forbidden client look the same (AX-4, AX-7).
/// The answer to a create for a person the register already holds: the attempt goes to the
/// usage log (outcome `exists`) in a transaction of its own, since the create's rolled back,
/// so the auditor sees who learnt of whom; the existing client is named only to a caller who
/// reaches it.
fn existing_client(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    decision: &Decision,
    registrar_id: &str,
    subject: [u8; 32],
    candidates: &[Vec<u8>],
) -> Result<ClientsError, ClientsError> {
    let at = at_primitive(request.now);
    let existing = client_by_subject(conn, registrar_id, candidates)?.map(|row| row.id);
    let reached = match &existing {
        Some(id) => visible_client(conn, request, decision, registrar_id, id)?.is_some(),
        None => false,
    };
    let entry = decision.context(&request.audit).usage_entry(
        DataUse {
            subject_index: Some(subject),
            data_kind: "client".into(),
            data_id: existing.clone(),
            outcome: Outcome::Exists,
        },
        at,
    );
    write_transaction(conn, |conn| register.audit.append_in(conn, vec![entry], at))?;
    Ok(ClientsError::ClientExists {
        registrar_id: registrar_id.to_owned(),
        client_id: existing.filter(|_| reached),
    })
}

/// The client and its services when the decision reaches it now, without logging anything.
fn visible_client(
    conn: &mut DbConnection,
    request: &Request<'_>,
    decision: &Decision,
    registrar_id: &str,
    client_id: &str,
) -> Result<Option<(ClientRow, Vec<ServiceRow>)>, ClientsError> {
    let row = load_client(conn, registrar_id, client_id)?;
    let services = match &row {
        Some(row) => load_services_of_client(conn, registrar_id, &row.id)?,
        None => Vec::new(),
    };
    let reached = services
        .iter()
        .any(|s| decision.reaches_service(&s.service_type, &s.provider_id));
    let mut visible = reached
        && match &decision.reach {
            // The registrar's own reach depends on the client's services alone, all loaded.
            crate::access::Reach::Registrar { .. } => {
                crate::lifecycle::registrar_sees(services.iter().map(|s| (s.closed_on, s.valid_to)), request.now.date())
            }
            reach => crate::lifecycle::is_visible(conn, registrar_id, reach, client_id, request.now.date())?,
        };
    if visible && let Some(gate) = &decision.care {
        visible = crate::care_team::has_care_relationship(conn, registrar_id, client_id, gate)?;
    }
    Ok(match row {
        Some(row) if visible && row.anonymised_at.is_none() => Some((row, services)),
        _ => None,
    })
}

pub(crate) fn reachable_client(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    decision: &Decision,
    registrar_id: &str,
    client_id: &str,
) -> Result<(ClientRow, Vec<ServiceRow>), ClientsError> {
    if let Some(found) = visible_client(conn, request, decision, registrar_id, client_id)? {
        return Ok(found);
    }
    let subject = load_client(conn, registrar_id, client_id)?.and_then(|r| r.subject());
    Err(deny(conn, register, request, subject, "client", client_id))
}

/// One client with the services the caller may see (CL-9); a client the caller may not see is
/// a 404 and a logged denial.
pub fn get_client(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
) -> Result<Client, ClientsError> {
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::ReadClients)?;
    let (row, services) = reachable_client(conn, register, request, &decision, registrar_id, client_id)?;
    register
        .audit
        .read_personal_data(conn, &decision.context(&request.audit), at, |_| {
            let client = open_client(register, &row, &services, &decision)?;
            Ok::<_, ClientsError>((
                client,
                vec![DataUse {
                    subject_index: row.subject(),
                    data_kind: "client".into(),
                    data_id: Some(row.id.clone()),
                    outcome: Outcome::Used,
                }],
            ))
        })
}

/// A page of clients and the cursor of the next.
#[derive(Debug, Clone)]
pub struct ClientPage {
    pub items: Vec<Client>,
    pub next_cursor: Option<String>,
}

/// The clients the caller reaches, in id order, `limit` at a time (PL-2); every listed client is
/// a logged use.
pub fn list_clients(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<ClientPage, ClientsError> {
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::ReadClients)?;
    let mut query = services::table
        .filter(services::registrar_id.eq(registrar_id))
        .select(services::client_id)
        .distinct()
        .order(services::client_id)
        .limit(limit + 1)
        .into_boxed();
    match &decision.reach {
        Reach::Registrar { service_types: None } => {}
        Reach::Registrar {
            service_types: Some(types),
        } => query = query.filter(services::service_type.eq_any(types.clone())),
        Reach::Provider { provider_id } => query = query.filter(services::provider_id.eq(provider_id.clone())),
        Reach::Nothing => {
            return Ok(ClientPage {
                items: Vec::new(),
                next_cursor: None,
            });
        }
    }
    if let Some(after) = after {
        query = query.filter(services::client_id.gt(after.to_owned()));
    }
    if let Some(gate) = &decision.care {
        query =
            query.filter(services::client_id.eq_any(crate::care_team::care_team_clients(conn, registrar_id, gate)?));
    }
    // CL-13: a client past the end of visibility is not listed.
    let query = crate::lifecycle::only_visible(query, registrar_id, &decision.reach, request.now.date(), None);
    let mut ids: Vec<String> = query.load(conn)?;
    let more = ids.len() as i64 > limit;
    ids.truncate(usize::try_from(limit).unwrap_or(0));
    let rows: Vec<ClientRow> = clients::table
        .filter(clients::registrar_id.eq(registrar_id))
        .filter(clients::id.eq_any(&ids))
        .filter(clients::anonymised_at.is_null())
        .order(clients::id)
        .select(client_columns!())
        .load(conn)?;
    let services = load_services_of(conn, registrar_id, &ids)?;
    let next_cursor = if more { ids.last().cloned() } else { None };
    let items = register
        .audit
        .read_personal_data(conn, &decision.context(&request.audit), at, |_| {
            let mut items = Vec::with_capacity(rows.len());
            let mut uses = Vec::with_capacity(rows.len());
            for row in &rows {
                items.push(open_client(register, row, &services, &decision)?);
                uses.push(DataUse {
                    subject_index: row.subject(),
                    data_kind: "client".into(),
                    data_id: Some(row.id.clone()),
                    outcome: Outcome::Used,
                });
            }
            Ok::<_, ClientsError>((items, uses))
        })?;
    Ok(ClientPage { items, next_cursor })
}

/// Finds a client by identity code (CL-11): always logged, with the person's index, whether or
/// not anyone is found. A client outside the caller's reach is not found.
pub fn search_by_identity_code(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    identity_code: &str,
) -> Result<Vec<Client>, ClientsError> {
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::ReadClients)?;
    let code = parse_identity_code("identity_code", identity_code)?;
    let subject = rekisteri_audit::subject_index(&register.keyring, &code);
    let candidates = rekisteri_audit::subject_index_candidates(&register.keyring, &code);
    let mut row = client_by_subject(conn, registrar_id, &candidates)?;
    // VT-5: a code VTJ corrected still finds its client, flagged.
    let mut by_previous_code = false;
    if row.is_none()
        && let Some(id) = crate::population::client_by_previous_code(conn, registrar_id, &candidates)?
    {
        row = load_client(conn, registrar_id, &id)?.filter(|r| r.anonymised_at.is_none());
        by_previous_code = row.is_some();
    }
    let services = match &row {
        Some(row) => load_services_of(conn, registrar_id, std::slice::from_ref(&row.id))?,
        None => Vec::new(),
    };
    let visible = match &row {
        Some(row) => crate::lifecycle::is_visible(conn, registrar_id, &decision.reach, &row.id, request.now.date())?,
        None => false,
    };
    let mut found = row.filter(|_| {
        visible
            && services
                .iter()
                .any(|s| decision.reaches_service(&s.service_type, &s.provider_id))
    });
    if let (Some(row), Some(gate)) = (&found, &decision.care)
        && !crate::care_team::has_care_relationship(conn, registrar_id, &row.id, gate)?
    {
        found = None;
    }
    let context = if matches!(decision.reach, Reach::Nothing) {
        Decision::denied(&request.audit)
    } else {
        decision.context(&request.audit)
    };
    register.audit.read_personal_data(conn, &context, at, |_| {
        let (items, outcome, data_id) = match &found {
            Some(row) => (
                vec![Client {
                    found_by_previous_identity_code: by_previous_code,
                    ..open_client(register, row, &services, &decision)?
                }],
                Outcome::Used,
                Some(row.id.clone()),
            ),
            None if matches!(decision.reach, Reach::Nothing) => (Vec::new(), Outcome::Denied, None),
            None => (Vec::new(), Outcome::NotFound, None),
        };
        Ok::<_, ClientsError>((
            items,
            vec![DataUse {
                subject_index: Some(subject),
                data_kind: "client_search".into(),
                data_id,
                outcome,
            }],
        ))
    })
}

/// Changes a client (the registrar's staff who see the client) when `expected_version` is still
/// the stored one (PL-2: 412 otherwise, also under concurrent changes). A protection order
/// erases the stored address and home municipality (CL-8).
pub fn update_client(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
    expected_version: i64,
    changes: ClientChanges,
) -> Result<Client, ClientsError> {
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::ReadClients)?;
    let (row, _) = reachable_client(conn, register, request, &decision, registrar_id, client_id)?;
    if !decision.is_registrar() || !request.principal.can(Permission::WriteClients) {
        return Err(ClientsError::Refused(Refusal::Forbidden(
            "clients are changed by the registrar's staff with write_clients".into(),
        )));
    }
    if row.restricted {
        // Only lifting the restriction is processing that a restriction allows.
        let only_flag = ClientChanges {
            restricted: None,
            ..changes.clone()
        };
        if !is_empty_change(&only_flag) {
            return Err(ClientsError::Restricted);
        }
    }
    if let Some(v) = &changes.first_names {
        check_text("first_names", v, 200)?;
    }
    if let Some(v) = &changes.surname {
        check_text("surname", v, 200)?;
    }
    check_language(changes.language.as_deref())?;
    check_email("email", changes.email.as_deref())?;
    check_phone("phone", changes.phone.as_deref())?;
    check_next_of_kin(changes.next_of_kin.as_ref())?;
    if let Some(address) = &changes.address {
        check_address(address)?;
    }
    let cipher = RowCipher::new(&register.keyring, "clients", client_id);
    let protected = changes.protection_order.unwrap_or(row.protection_order);
    let mut next = row.clone();
    if let Some(v) = &changes.first_names {
        next.first_names = Some(cipher.seal("first_names", v.trim())?);
    }
    if let Some(v) = &changes.surname {
        next.surname = Some(cipher.seal("surname", v.trim())?);
    }
    if let Some(v) = changes.gender {
        next.gender = v.as_str().to_owned();
    }
    next.moved_in_on = changes.moved_in_on.or(row.moved_in_on);
    next.moved_out_on = changes.moved_out_on.or(row.moved_out_on);
    next.died_on = changes.died_on.or(row.died_on);
    // A date written through the API is a full date (VT-4).
    if changes.moved_in_on.is_some() {
        next.moved_in_on_precision = None;
    }
    if changes.moved_out_on.is_some() {
        next.moved_out_on_precision = None;
    }
    if changes.died_on.is_some() {
        next.died_on_precision = None;
    }
    if changes.language.is_some() {
        next.language = changes.language.clone();
    }
    if changes.email.is_some() {
        next.email = cipher.seal_opt("email", changes.email.as_deref())?;
    }
    if changes.phone.is_some() {
        next.phone = cipher.seal_opt("phone", changes.phone.as_deref())?;
    }
    if changes.next_of_kin.is_some() {
        next.next_of_kin = cipher.seal_json("next_of_kin", changes.next_of_kin.as_ref())?;
    }
    if protected {
        next.address = None;
        next.temporary_address = None;
        next.postal_address = None;
        next.home_municipality = None;
    } else {
        if changes.address.is_some() {
            next.address = cipher.seal_json("address", changes.address.as_ref())?;
        }
        if let Some(m) = changes.home_municipality {
            next.home_municipality = Some(m.to_string());
        }
    }
    next.protection_order = protected;
    next.restricted = changes.restricted.unwrap_or(row.restricted);
    let context = decision.context(&request.audit);
    write_transaction_as(conn, &request.principal.account_id, |conn| {
        let updated = diesel::update(
            clients::table
                .filter(clients::registrar_id.eq(registrar_id))
                .filter(clients::id.eq(client_id))
                .filter(clients::version.eq(expected_version)),
        )
        .set((
            clients::first_names.eq(&next.first_names),
            clients::surname.eq(&next.surname),
            clients::gender.eq(&next.gender),
            clients::home_municipality.eq(&next.home_municipality),
            clients::moved_in_on.eq(next.moved_in_on),
            clients::moved_out_on.eq(next.moved_out_on),
            clients::died_on.eq(next.died_on),
            clients::language.eq(&next.language),
            clients::email.eq(&next.email),
            clients::phone.eq(&next.phone),
            clients::next_of_kin.eq(&next.next_of_kin),
            clients::address.eq(&next.address),
            clients::temporary_address.eq(&next.temporary_address),
            clients::postal_address.eq(&next.postal_address),
            clients::moved_in_on_precision.eq(&next.moved_in_on_precision),
            clients::moved_out_on_precision.eq(&next.moved_out_on_precision),
            clients::died_on_precision.eq(&next.died_on_precision),
            clients::protection_order.eq(next.protection_order),
            clients::restricted.eq(next.restricted),
            clients::version.eq(clients::version + 1),
            clients::updated_at.eq(at),
        ))
        .execute(conn)?;
        if updated == 0 {
            return Err(ClientsError::VersionMismatch);
        }
        if protected && !row.protection_order {
            // The order purges the old address from the history too, the update's own row
            // included (CL-8).
            rekisteri_db::history::redact_protected_address(conn, client_id)?;
        }
        let entry = context.usage_entry(
            DataUse {
                subject_index: row.subject(),
                data_kind: "client".into(),
                data_id: Some(client_id.to_owned()),
                outcome: Outcome::Used,
            },
            at,
        );
        register.audit.append_in(conn, vec![entry], at)?;
        Ok(())
    })?;
    get_client(conn, register, request, registrar_id, client_id)
}

fn is_empty_change(changes: &ClientChanges) -> bool {
    let ClientChanges {
        first_names,
        surname,
        gender,
        home_municipality,
        moved_in_on,
        moved_out_on,
        died_on,
        language,
        email,
        phone,
        next_of_kin,
        address,
        protection_order,
        restricted,
    } = changes;
    first_names.is_none()
        && surname.is_none()
        && gender.is_none()
        && home_municipality.is_none()
        && moved_in_on.is_none()
        && moved_out_on.is_none()
        && died_on.is_none()
        && language.is_none()
        && email.is_none()
        && phone.is_none()
        && next_of_kin.is_none()
        && address.is_none()
        && protection_order.is_none()
        && restricted.is_none()
}
