//! Checks of what a caller sends before anything is written: text lengths, contact details,
//! addresses, identity codes and new services.

use rekisteri_core::Refusal;
use rekisteri_core::{PersonalIdentityCode, TemporaryCodesAllowed};
use rekisteri_db::DbConnection;

use crate::access::{Decision, Reach};
use crate::{Address, ClientsError, NewService, NextOfKin, ServiceKind, rule, validation};

pub(super) fn check_text(field: &str, value: &str, max: usize) -> Result<(), ClientsError> {
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

pub(super) fn check_address(address: &Address) -> Result<(), ClientsError> {
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

pub(super) fn check_language(language: Option<&str>) -> Result<(), ClientsError> {
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
