//! `format: uuid` on the ids that are UUIDs, and the ids that are not: what a generated client
//! may assume about every id-named property and parameter.

use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, KnownFormat, Object, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};

/// Id-named properties and parameters that are not (always) UUIDs, as `(schema, name)`; an empty
/// schema matches the name anywhere. A property or parameter whose description mentions an OID
/// also takes an OID and is left as a string.
pub const NOT_UUID: &[(&str, &str, &str)] = &[
    ("", "business_id", "a Finnish business id (Y-tunnus)"),
    ("", "chain_id", "the name of an audit log's hash chain"),
    ("", "structure_id", "a Sosmeta structure id"),
    (
        "",
        "author_id",
        "an account id, or `api-client:<client id>` when a system stored the document as itself",
    ),
    (
        "",
        "listener_id",
        "an account id, or `api-client:<client id>` when a system acted as itself",
    ),
    (
        "RecipientBody",
        "id",
        "a recipient of any kind, named as its kind names it",
    ),
];

/// Whether a property or parameter named `name` holds an id (or, `*_ids`, a list of them).
pub(super) fn is_id_name(name: &str) -> bool {
    matches!(name, "id" | "rid" | "pid" | "sid") || name.ends_with("_id") || name.ends_with("_ids")
}

pub(super) fn declared_not_uuid(schema: &str, name: &str, description: Option<&str>) -> bool {
    description.is_some_and(|d| d.contains("OID"))
        || NOT_UUID
            .iter()
            .any(|(s, n, _)| *n == name && (s.is_empty() || *s == schema))
}

fn is_string(object: &Object) -> bool {
    match &object.schema_type {
        SchemaType::Type(t) => *t == Type::String,
        SchemaType::Array(types) => types.contains(&Type::String),
        SchemaType::AnyValue => false,
    }
}

fn uuid_format() -> Option<SchemaFormat> {
    Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))
}

/// Sets `format: uuid` on a string schema (or on the items of an array of strings).
pub(super) fn mark_uuid(schema: &mut RefOr<Schema>) {
    match schema {
        RefOr::T(Schema::Object(object)) if is_string(object) => object.format = uuid_format(),
        RefOr::T(Schema::Array(array)) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                mark_uuid(items);
            }
        }
        _ => {}
    }
}

fn description_of(schema: &RefOr<Schema>) -> Option<&str> {
    match schema {
        RefOr::T(Schema::Object(object)) => object.description.as_deref(),
        RefOr::T(Schema::Array(array)) => array.description.as_deref(),
        _ => None,
    }
}

/// Walks a schema (named `owner` when it is a component) and marks its id properties.
pub(super) fn mark_ids(owner: &str, schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else { return };
    match schema {
        Schema::Object(object) => {
            for (name, property) in object.properties.iter_mut() {
                if is_id_name(name) && !declared_not_uuid(owner, name, description_of(property)) {
                    mark_uuid(property);
                }
                mark_ids(owner, property);
            }
            if let Some(additional) = object.additional_properties.as_deref_mut()
                && let AdditionalProperties::RefOr(inner) = additional
            {
                mark_ids(owner, inner);
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                mark_ids(owner, items);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(|s| mark_ids(owner, s)),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(|s| mark_ids(owner, s)),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(|s| mark_ids(owner, s)),
        _ => {}
    }
}
