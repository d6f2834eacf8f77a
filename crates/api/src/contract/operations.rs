//! What every operation carries besides its own: the request-id and on-behalf-of headers, whether
//! it is public, and the 503 of an unavailable database or audit log.

use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{KnownFormat, SchemaFormat, Type};
use utoipa::openapi::{ObjectBuilder, RefOr, Required};

fn header_parameter(name: &str, description: &str, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

pub(super) fn request_id_parameter() -> Parameter {
    // No pattern in the schema: the server never refuses a request for its `X-Request-Id`, it
    // replaces one it would not keep, so any value is valid (issue 20 point 2).
    header_parameter(
        "X-Request-Id",
        "The caller's id for the request. One of 1-128 characters of `A-Z a-z 0-9 - _ . :` (the pattern \
         `^[A-Za-z0-9._:-]{1,128}$`) is kept: logged, written to audit entries and returned in the response's \
         `X-Request-Id`. Absent or any other value: the request is not refused; the server makes a UUID.",
        ObjectBuilder::new().schema_type(Type::String),
    )
}

pub(super) fn on_behalf_of_parameters() -> [Parameter; 2] {
    [
        header_parameter(
            "X-On-Behalf-Of",
            "API clients only (with other tokens its value is checked, then ignored): the account id (a UUID) \
             of the end user of the client's organisation the call is made for. The call then has the \
             intersection of the client's scopes and the user's rights, and the user is logged (AX-1). Never an \
             admin or another organisation's account (403). See docs/permissions.md.",
            // `format: uuid`, not the equivalent pattern: schemathesis's coverage phase fills a
            // header with a pattern with values that break it.
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
        ),
        header_parameter(
            "X-On-Behalf-Of-Token",
            "API clients naming a user in `X-On-Behalf-Of` only: that user's own token (a JWT) from a trusted \
             staff identity provider, so that the user's strong sign-in stands behind the call where the \
             registrar requires strong authentication (AX-2). It must name the same account (401 otherwise); \
             without `X-On-Behalf-Of` it is refused (403). See docs/permissions.md.",
            ObjectBuilder::new().schema_type(Type::String),
        ),
    ]
}

pub(super) fn request_id_header() -> utoipa::openapi::header::Header {
    utoipa::openapi::header::HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(
            "The request's id: the caller's valid `X-Request-Id`, or a new UUID",
        ))
        .build()
}

/// Whether the operation is public: `security` holds an empty requirement (`security(())` in a
/// handler's annotation) or is empty.
pub fn is_public(operation: &Operation) -> bool {
    operation.security.as_ref().is_some_and(|requirements| {
        requirements.is_empty()
            || requirements
                .iter()
                .any(|r| serde_json::to_value(r).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty())))
    })
}

pub(super) fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

/// The operations that never touch the database (readiness documents its own 503).
pub(super) const WITHOUT_DATABASE: &[&str] = &["/health/live", "/health/ready"];

/// The cause of the 503, after "The" (its own response) or "the" (another 503's).
const UNAVAILABLE: &str = "database does not answer in time or the audit log cannot be written \
     (`service-unavailable`); nothing was returned, try again after `Retry-After`";

fn retry_after_header() -> utoipa::openapi::header::Header {
    utoipa::openapi::header::HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)))
        .description(Some("Seconds to wait before trying again"))
        .build()
}

/// Adds the 503 of an unavailable database or audit log, or names it in the operation's own 503.
pub(super) fn document_unavailable(operation: &mut Operation) {
    let responses = &mut operation.responses.responses;
    match responses.get_mut("503") {
        Some(RefOr::T(response)) => {
            response.description = format!("{}; or the {UNAVAILABLE}", response.description);
            response
                .headers
                .entry("Retry-After".to_owned())
                .or_insert_with(retry_after_header);
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            let mut response = crate::problem::documented_problem(&format!("The {UNAVAILABLE}"));
            if let RefOr::T(response) = &mut response {
                response.headers.insert("Retry-After".to_owned(), retry_after_header());
            }
            responses.insert("503".to_owned(), response);
        }
    }
}
