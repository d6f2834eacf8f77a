//! Reusable schemas the handlers' annotations name (`schema_with`, `value_type`): times, months,
//! roles, scopes and names written once.

use utoipa::openapi::schema::{KnownFormat, Object, SchemaFormat, Type};
use utoipa::openapi::{ObjectBuilder, RefOr, Schema};

/// A time as [`crate::extract::parse_time`] reads it: RFC 3339 or a date; with `null` too when
/// `nullable` (the default then applies).
fn time_or_date_schema(nullable: bool, description: &str) -> Schema {
    let string = |format| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
    };
    let mut any_of = utoipa::openapi::schema::AnyOfBuilder::new()
        .item(string(KnownFormat::DateTime))
        .item(string(KnownFormat::Date));
    if nullable {
        any_of = any_of.item(ObjectBuilder::new().schema_type(Type::Null));
    }
    Schema::AnyOf(any_of.description(Some(description)).build())
}

/// A time the caller may give as RFC 3339 (`2026-11-25T08:00:00Z`) or as a date (`2026-11-25`,
/// midnight UTC), as [`crate::extract::parse_time`] reads it.
pub fn time_or_date() -> Schema {
    time_or_date_schema(false, "RFC 3339 time or a date (YYYY-MM-DD, midnight UTC)")
}

/// [`time_or_date`], or `null` for the default.
pub fn time_or_date_or_null() -> Schema {
    time_or_date_schema(
        true,
        "RFC 3339 time or a date (YYYY-MM-DD, midnight UTC); null for the default",
    )
}

/// A calendar month `YYYY-MM`.
pub fn month() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[0-9]{4}-(0[1-9]|1[0-2])$"))
        .build()
}

fn string_enum(values: impl IntoIterator<Item = &'static str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .build()
}

/// A role (`rekisteri_accounts::Role::ALL`).
pub fn role() -> Object {
    string_enum(rekisteri_accounts::Role::ALL.iter().map(|r| r.as_str()))
}

/// An organisation's kind (`rekisteri_accounts::OrganisationKind::ALL`).
pub fn organisation_kind() -> Object {
    string_enum(rekisteri_accounts::OrganisationKind::ALL.iter().map(|k| k.as_str()))
}

/// An API client's scopes (`rekisteri_accounts::api_clients::SCOPES`).
pub fn scopes() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .min_items(Some(1))
        .items(string_enum(
            rekisteri_accounts::api_clients::SCOPES.iter().map(|(name, _)| *name),
        ))
        .build()
}

/// A name of 1-200 characters with something besides white space (names of organisations,
/// service units and API clients).
pub fn name_200() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(200))
        .pattern(Some(r"\S"))
        .build()
}

/// Codes of 1-64 characters of a-z, 0-9, `_` and `-` (service types of a service area).
pub fn code_list() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[a-z0-9_-]{1,64}$")),
        )
        .description(Some(
            "Service type codes (a-z, 0-9, `_`, `-`); each belongs to one area only.",
        ))
        .examples([serde_json::json!(["home_care_voucher", "home_care_purchased"])])
        .build()
}

/// [`time_or_date`] as a type, for `#[param(value_type = …, inline)]`: unlike `schema_with`, it
/// keeps the parameter's description and whether it is required.
pub struct TimeOrDate;

impl utoipa::PartialSchema for TimeOrDate {
    fn schema() -> RefOr<Schema> {
        RefOr::T(time_or_date())
    }
}

impl utoipa::ToSchema for TimeOrDate {}

/// [`month`] as a type, for `#[param(value_type = …, inline)]`.
pub struct Month;

impl utoipa::PartialSchema for Month {
    fn schema() -> RefOr<Schema> {
        RefOr::T(Schema::Object(month()))
    }
}

impl utoipa::ToSchema for Month {}
