//! The OpenAPI document says exactly what the server does (PL-1): the document-wide parts that
//! no single handler owns, added after every module registered its operations.
//!
//! - the headers the request middleware honours on every operation (`X-Request-Id`, and on
//!   authenticated ones `X-On-Behalf-Of` and `X-On-Behalf-Of-Token`, see [`crate::principal`]),
//!   and the `X-Request-Id` every response carries;
//! - `format: uuid` on the ids that are UUIDs (every id the platform makes is a v4 UUID), except
//!   the ones that take something else too (see [`NOT_UUID`](ids::NOT_UUID));
//! - public operations with `security: []`, so a generated client calls them without a token;
//! - a one-line `summary` (the doc comment's first sentence), with the rest in `description`;
//! - the `servers` entry;
//! - the API's version and its changelog in `info` (`x-changelog`, and as text in the
//!   description; see docs/api-versioning.md), and request and response examples of the main
//!   operations ([`crate::examples`]).
//! - 412 and 428 on every operation that takes `If-Match`;
//! - 503 `service-unavailable` with `Retry-After` on every operation that touches the database
//!   (all but the health checks): any of them can meet an unavailable database or audit log.

mod changelog;
mod fields;
mod ids;
mod operations;
mod schemas;
mod summary;

#[cfg(test)]
pub use ids::NOT_UUID;
pub use operations::is_public;
pub use schemas::{Month, TimeOrDate, code_list, name_200, organisation_kind, role, scopes, time_or_date_or_null};
#[cfg(test)]
pub use summary::SUMMARY_MAX;

use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::{OpenApi, RefOr};

use changelog::changelog;
use fields::constrain_fields;
use ids::{declared_not_uuid, is_id_name, mark_ids, mark_uuid};
use operations::{
    WITHOUT_DATABASE, document_unavailable, on_behalf_of_parameters, operations, request_id_header,
    request_id_parameter,
};
use summary::split_summary;

/// Adds the document-wide parts; see the module's comment.
pub fn document(mut doc: OpenApi) -> OpenApi {
    changelog(&mut doc);
    crate::examples::add(&mut doc);
    doc.servers = Some(vec![
        utoipa::openapi::server::ServerBuilder::new()
            .url("/")
            .description(Some(
                "The server that serves this document (the API is at the root of its origin; `make run` binds \
                 http://127.0.0.1:8080, REKISTERI_BIND)",
            ))
            .build(),
    ]);
    for (path, item) in doc.paths.paths.iter_mut() {
        let touches_database = !WITHOUT_DATABASE.contains(&path.as_str());
        for operation in operations(item) {
            if touches_database {
                document_unavailable(operation);
            }
            let public = is_public(operation);
            if public {
                operation.security = Some(Vec::new());
            }
            if let Some(summary) = operation.summary.take() {
                let (summary, description) = split_summary(&summary, operation.description.as_deref());
                operation.summary = Some(summary);
                operation.description = description;
            }
            let parameters = operation.parameters.get_or_insert_with(Vec::new);
            for parameter in parameters.iter_mut() {
                if matches!(parameter.parameter_in, ParameterIn::Path | ParameterIn::Query)
                    && is_id_name(&parameter.name)
                    && !declared_not_uuid("", &parameter.name, parameter.description.as_deref())
                    && let Some(schema) = parameter.schema.as_mut()
                {
                    mark_uuid(schema);
                }
            }
            parameters.push(request_id_parameter());
            if !public && operation.request_body.is_some() {
                // Rules that depend on what the register holds (an end before the start, a unit
                // of another organisation) refuse a body the schema allows.
                document_problem(
                    &mut operation.responses,
                    "422",
                    "A rule of the register refuses the request (`/problems/business-rule`)",
                );
            }
            if takes(parameters, "cursor", ParameterIn::Query) {
                document_problem(
                    &mut operation.responses,
                    "422",
                    "`cursor` is not one this listing returned (`/problems/business-rule`)",
                );
            }
            if takes(parameters, "If-Match", ParameterIn::Header) {
                // What `crate::request::if_match` and a stale version answer.
                document_problem(&mut operation.responses, "412", "If-Match is stale");
                document_problem(&mut operation.responses, "428", "If-Match is missing");
            }
            if !public {
                // What every protected operation can answer: no or a bad token, a right the
                // caller (or the user an integration names in `X-On-Behalf-Of`) lacks, and a
                // record the caller cannot see. Handlers that say more keep their wording.
                for (status, description) in [
                    ("401", "No or invalid credentials (`/problems/unauthenticated`)"),
                    (
                        "403",
                        "Not allowed, or `X-On-Behalf-Of` names no active user of the API client's organisation \
                         (`/problems/forbidden`)",
                    ),
                    (
                        "404",
                        "No such record, or not one the caller may see (`/problems/not-found`)",
                    ),
                ] {
                    document_problem(&mut operation.responses, status, description);
                }
                parameters.extend(on_behalf_of_parameters());
                // A malformed `X-On-Behalf-Of` is refused before the handler runs.
                document_problem(
                    &mut operation.responses,
                    "400",
                    "A parameter or the body breaks this document (`/problems/validation`, \
                     `/problems/malformed-body`); `errors` names the fields",
                );
            }
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response.headers.insert("X-Request-Id".to_owned(), request_id_header());
                }
            }
        }
    }
    if let Some(components) = doc.components.as_mut() {
        for (name, schema) in components.schemas.iter_mut() {
            mark_ids(name, schema);
        }
    }
    constrain_fields(&mut doc);
    doc
}

/// Whether an operation takes the parameter `name` in `place`.
fn takes(parameters: &[utoipa::openapi::path::Parameter], name: &str, place: ParameterIn) -> bool {
    parameters.iter().any(|p| p.name == name && p.parameter_in == place)
}

/// Documents a problem answer of `status` in an operation's `responses`, unless its handler
/// already did (in its own words).
fn document_problem(responses: &mut utoipa::openapi::Responses, status: &str, description: &str) {
    responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| crate::problem::documented_problem(description));
}
