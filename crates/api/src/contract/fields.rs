//! The patterns and lengths of request fields as the registers check them (PL-18), so that a
//! value the server refuses is one the document refuses too.

use utoipa::openapi::schema::{SchemaFormat, SchemaType, Type};
use utoipa::openapi::{OpenApi, RefOr, Schema};

/// The request fields that take a Finnish personal identity code (henkilötunnus), by schema.
const IDENTITY_CODE_FIELDS: &[(&str, &str)] = &[
    ("NewClient", "identity_code"),
    ("NewContact", "client_identity_code"),
    ("NewDataSubjectRequest", "identity_code"),
    ("NewProxy", "identity_code"),
    ("PersonSearch", "identity_code"),
    ("IdentityCodeSearch", "identity_code"),
];

/// The request fields that take a municipality code, by schema: an enum of Statistics Finland's
/// classification as shipped (`rekisteri_core::municipality`), so a code the server refuses is
/// one the document refuses too.
const MUNICIPALITY_FIELDS: &[(&str, &str)] = &[
    ("NewClient", "home_municipality"),
    ("ClientChanges", "home_municipality"),
    ("NewContact", "home_municipality"),
];

/// The request fields that take an OID, by schema.
const OID_FIELDS: &[(&str, &str)] = &[
    ("NewOrganisationBody", "oid"),
    ("NewServiceUnitBody", "oid"),
    ("KantaSettings", "case_oid_root"),
    ("NewService", "provider_unit_oid"),
];

/// The fields that take an e-mail address ([`rekisteri_core::contact::EMAIL_PATTERN`]), by schema.
const EMAIL_FIELDS: &[(&str, &str)] = &[
    ("InviteBody", "email"),
    ("NewClient", "email"),
    ("ClientChanges", "email"),
    ("ContactChanges", "email"),
    ("NewProxy", "email"),
    ("Requester", "email"),
    ("ContactDetails", "email"),
];

/// The fields that take a phone number ([`rekisteri_core::contact::PHONE_PATTERN`]), by schema.
const PHONE_FIELDS: &[(&str, &str)] = &[
    ("NewClient", "phone"),
    ("ClientChanges", "phone"),
    ("ContactChanges", "phone"),
    ("NewProxy", "phone"),
    ("NextOfKin", "phone"),
    ("Requester", "phone"),
    ("ContactDetails", "phone"),
];

/// A line of text: something besides white space, and no control characters.
pub const TEXT_PATTERN: &str =
    r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";

/// Free text that may run over lines: something besides white space.
pub const NON_BLANK_PATTERN: &str = r"\S";

/// Request fields the registers check as text, by schema: `(schema, field, pattern, maxLength)`,
/// each 1 character at least. The pattern is [`TEXT_PATTERN`] where the register refuses control
/// characters, [`NON_BLANK_PATTERN`] where line breaks are welcome, `None` where only the length
/// is checked (and an empty string is taken).
const TEXT_FIELDS: &[(&str, &str, Option<&str>, usize)] = &[
    ("Address", "street_address", Some(TEXT_PATTERN), 200),
    ("Address", "po_box", Some(TEXT_PATTERN), 200),
    ("Address", "street_name", Some(TEXT_PATTERN), 200),
    ("Address", "apartment_number", Some(TEXT_PATTERN), 200),
    ("Address", "apartment_letter", Some(TEXT_PATTERN), 200),
    ("Address", "apartment_division_letter", Some(TEXT_PATTERN), 200),
    ("Address", "post_office", Some(TEXT_PATTERN), 200),
    ("Address", "address_qualifier", Some(TEXT_PATTERN), 200),
    ("Address", "municipality", Some(TEXT_PATTERN), 200),
    ("Address", "postal_code", Some("^[0-9]{5}$"), 5),
    ("Address", "country_code", Some("^[A-Z]{2}$"), 2),
    ("NextOfKin", "name", Some(TEXT_PATTERN), 200),
    ("ContactDetails", "name", Some(TEXT_PATTERN), 200),
    (
        "OrganisationChangesBody",
        "dvv_permit_reference",
        Some(TEXT_PATTERN),
        100,
    ),
    ("ClientChanges", "first_names", Some(TEXT_PATTERN), 200),
    ("ClientChanges", "surname", Some(TEXT_PATTERN), 200),
    ("NewService", "decision_ref", Some(TEXT_PATTERN), 100),
    ("NewService", "additional_info", Some(TEXT_PATTERN), 4000),
    ("ServiceChanges", "additional_info", None, 4000),
    ("NewServiceEvent", "note", None, 4000),
    ("NewCareTeamMember", "team_role", Some(TEXT_PATTERN), 100),
    ("CareTeamMemberChanges", "team_role", Some(TEXT_PATTERN), 100),
    ("Requester", "name", Some(NON_BLANK_PATTERN), 200),
    ("Requester", "postal_address", Some(NON_BLANK_PATTERN), 500),
    ("NewDataSubjectRequest", "details", Some(NON_BLANK_PATTERN), 4000),
    ("DataSubjectRequestChanges", "details", Some(NON_BLANK_PATTERN), 4000),
    (
        "DataSubjectRequestChanges",
        "extension_reason",
        Some(NON_BLANK_PATTERN),
        4000,
    ),
    (
        "DataSubjectRequestChanges",
        "refusal_reasons",
        Some(NON_BLANK_PATTERN),
        4000,
    ),
    (
        "DataSubjectRequestChanges",
        "complaint_route",
        Some(NON_BLANK_PATTERN),
        1000,
    ),
    ("NewLegalHold", "authority", Some(TEXT_PATTERN), 200),
    ("NewLegalHold", "case_reference", Some(TEXT_PATTERN), 200),
    ("NewContact", "client_name", Some(TEXT_PATTERN), 200),
];

/// The request fields that take a Finnish business id (Y-tunnus), by schema.
const BUSINESS_ID_FIELDS: &[(&str, &str)] = &[
    ("NewOrganisationBody", "business_id"),
    ("OrganisationChangesBody", "business_id"),
];

/// The form of a business id: seven digits, a hyphen and a check digit. The check digit is more
/// than a pattern can say; the format `fi-business-id` names it.
pub const BUSINESS_ID_PATTERN: &str = "^[0-9]{7}-[0-9]$";

/// The form of an identity code: birth date, century sign, individual number and check
/// character. The check character and the date's validity are more than a pattern can say; the
/// format `fi-identity-code` names them (CL-2).
pub const IDENTITY_CODE_PATTERN: &str = "^[0-9]{6}[-+A-FU-Y][0-9]{3}[0-9A-FHJ-NPR-Y]$";

/// An OID as `rekisteri_core::oid` takes it: first arc 0-2, decimal arcs without leading
/// zeros, at least two arcs.
pub const OID_PATTERN: &str = r"^[0-2](\.(0|[1-9][0-9]*))+$";

pub(super) fn constrain_fields(doc: &mut OpenApi) {
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    for (schema, field, pattern, max_length) in TEXT_FIELDS {
        if let Some(property) = property_mut(components, schema, field) {
            property.min_length = pattern.map(|_| 1);
            property.max_length = Some(*max_length);
            property.pattern = pattern.map(str::to_owned);
        }
    }
    let fields = IDENTITY_CODE_FIELDS
        .iter()
        .map(|f| (f, IDENTITY_CODE_PATTERN, Some("fi-identity-code"), 11))
        .chain(OID_FIELDS.iter().map(|f| (f, OID_PATTERN, None, 255)))
        .chain(
            BUSINESS_ID_FIELDS
                .iter()
                .map(|f| (f, BUSINESS_ID_PATTERN, Some("fi-business-id"), 9)),
        )
        .chain(EMAIL_FIELDS.iter().map(|f| {
            let max = rekisteri_core::contact::EMAIL_MAX_CHARS;
            (f, rekisteri_core::contact::EMAIL_PATTERN, None, max)
        }))
        .chain(PHONE_FIELDS.iter().map(|f| {
            (
                f,
                rekisteri_core::contact::PHONE_PATTERN,
                None,
                rekisteri_core::contact::PHONE_MAX_CHARS,
            )
        }));
    for (schema, field) in MUNICIPALITY_FIELDS {
        if let Some(property) = property_mut(components, schema, field) {
            let nullable = matches!(&property.schema_type, SchemaType::Array(types) if types.contains(&Type::Null));
            let mut codes: Vec<serde_json::Value> = rekisteri_core::municipality::municipalities()
                .map(|(code, _)| code.into())
                .collect();
            if nullable {
                codes.push(serde_json::Value::Null);
            }
            property.pattern = None;
            property.enum_values = Some(codes);
            let described = property.description.take().unwrap_or_default();
            property.description = Some(
                format!(
                    "{described} One of Statistics Finland's municipality codes as the server ships them \
                     (docs/operations.md, Municipality codes)."
                )
                .trim_start()
                .to_owned(),
            );
        }
    }
    // A list of municipality codes: the same enum on its items.
    if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut("OrganisationChangesBody")
        && let Some(RefOr::T(Schema::Array(array))) = object.properties.get_mut("municipality_codes")
        && let utoipa::openapi::schema::ArrayItems::RefOrSchema(items) = &mut array.items
        && let RefOr::T(Schema::Object(item)) = items.as_mut()
    {
        item.enum_values = Some(
            rekisteri_core::municipality::municipalities()
                .map(|(code, _)| code.into())
                .collect(),
        );
    }
    for ((schema, field), pattern, format, max_length) in fields {
        if let Some(property) = property_mut(components, schema, field) {
            property.pattern = Some(pattern.to_owned());
            property.max_length = Some(max_length);
            if let Some(format) = format {
                property.format = Some(SchemaFormat::Custom(format.to_owned()));
            }
        }
    }
}

/// A named schema's own (not referenced) property, to constrain in place.
fn property_mut<'a>(
    components: &'a mut utoipa::openapi::Components,
    schema: &str,
    field: &str,
) -> Option<&'a mut utoipa::openapi::schema::Object> {
    let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) else {
        return None;
    };
    match object.properties.get_mut(field) {
        Some(RefOr::T(Schema::Object(property))) => Some(property),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pl_18_every_constrained_field_is_in_the_document_with_its_pattern() {
        let doc = serde_json::to_value(crate::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let tables = [
            IDENTITY_CODE_FIELDS,
            OID_FIELDS,
            BUSINESS_ID_FIELDS,
            EMAIL_FIELDS,
            PHONE_FIELDS,
        ];
        let fields = tables
            .iter()
            .flat_map(|t| t.iter().copied())
            .chain(TEXT_FIELDS.iter().map(|(schema, field, _, _)| (*schema, *field)));
        let mut count = 0;
        for (schema, field) in fields {
            let property = &schemas[schema]["properties"][field];
            assert!(property.is_object(), "{schema}.{field} is not in the document");
            assert!(property["maxLength"].is_u64(), "{schema}.{field} has no maxLength");
            count += 1;
        }
        assert!(count > 50, "{count}");
    }
}
