//! The OpenAPI document says exactly what the server does (PL-1): the document-wide parts that
//! no single handler owns, added after every module registered its operations.
//!
//! - the headers the request middleware honours on every operation (`X-Request-Id`, and on
//!   authenticated ones `X-On-Behalf-Of` and `X-On-Behalf-Of-Token`, see [`crate::principal`]),
//!   and the `X-Request-Id` every response carries;
//! - `format: uuid` on the ids that are UUIDs (every id the platform makes is a v4 UUID), except
//!   the ones that take something else too (see [`NOT_UUID`]);
//! - public operations with `security: []`, so a generated client calls them without a token;
//! - a one-line `summary` (the doc comment's first sentence), with the rest in `description`;
//! - the `servers` entry;
//! - the API's version and its changelog in `info` (`x-changelog`, and as text in the
//!   description; see docs/api-versioning.md), and request and response examples of the main
//!   operations ([`crate::examples`]).
//! - 503 `service-unavailable` with `Retry-After` on every operation that touches the database
//!   (all but the health checks): any of them can meet an unavailable database or audit log.

use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, KnownFormat, Object, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{ObjectBuilder, OpenApi, RefOr, Required, Schema};

/// The longest summary the document keeps (a test holds every operation to it).
pub const SUMMARY_MAX: usize = 120;
/// A first sentence longer than this is cut to its first clause for the summary.
const SUMMARY_SOFT_MAX: usize = 90;

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
fn is_id_name(name: &str) -> bool {
    matches!(name, "id" | "rid" | "pid" | "sid") || name.ends_with("_id") || name.ends_with("_ids")
}

fn declared_not_uuid(schema: &str, name: &str, description: Option<&str>) -> bool {
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
fn mark_uuid(schema: &mut RefOr<Schema>) {
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
fn mark_ids(owner: &str, schema: &mut RefOr<Schema>) {
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

fn header_parameter(name: &str, description: &str, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

fn request_id_parameter() -> Parameter {
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

fn on_behalf_of_parameters() -> [Parameter; 2] {
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

fn request_id_header() -> utoipa::openapi::header::Header {
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

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
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

/// Where the first sentence of `text` ends (the index after its full stop), if it ends before
/// the text does: a full stop followed by white space, outside parentheses, brackets and code,
/// and not that of an abbreviation.
fn first_sentence_end(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut code = false;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        match c {
            '`' => code = !code,
            '(' | '[' | '{' if !code => depth += 1,
            ')' | ']' | '}' if !code => depth = depth.saturating_sub(1),
            '?' if !code && depth == 0 && bytes.get(i + 1).is_some_and(u8::is_ascii_whitespace) => {
                return Some(i + 1);
            }
            '.' if !code && depth == 0 => {
                let followed_by_space = bytes.get(i + 1).is_some_and(u8::is_ascii_whitespace);
                let word = text[..i]
                    .rsplit(|c: char| c.is_whitespace() || c == '(')
                    .next()
                    .unwrap_or("");
                let abbreviation = matches!(word, "e.g" | "i.e" | "etc" | "cf" | "vs" | "approx" | "No" | "Art");
                if followed_by_space && !abbreviation {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Where the first clause of `text` ends: before a `:`, `;` or ` — ` outside parentheses and code.
fn first_clause_end(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut code = false;
    for (i, c) in text.char_indices() {
        match c {
            '`' => code = !code,
            '(' | '[' | '{' if !code => depth += 1,
            ')' | ']' | '}' if !code => depth = depth.saturating_sub(1),
            ':' | ';' | '—' if !code && depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// A long first sentence as a summary: its first clause, without parentheses, and cut at a
/// word before [`SUMMARY_MAX`] if it is still too long.
fn shorten(sentence: &str) -> String {
    let clause = first_clause_end(sentence).map_or(sentence, |end| sentence[..end].trim_end());
    let mut short = without_parentheses(clause);
    if short.chars().count() > SUMMARY_MAX {
        let mut cut = String::new();
        for word in short.split(' ') {
            if cut.chars().count() + word.chars().count() + 1 > SUMMARY_MAX - 1 {
                break;
            }
            if !cut.is_empty() {
                cut.push(' ');
            }
            cut.push_str(word);
        }
        short = format!("{}…", cut.trim_end_matches([',', ';', ':']));
    }
    short
}

/// `text` without its parenthesised parts (outside code).
fn without_parentheses(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut code = false;
    for c in text.chars() {
        match c {
            '`' if depth == 0 => {
                code = !code;
                out.push(c);
            }
            '(' if !code => depth += 1,
            ')' if !code && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    out.replace(" ,", ",")
        .replace(" ;", ";")
        .replace(" :", ":")
        .replace(" .", ".")
}

/// A one-line summary and the description that keeps the rest, from a doc comment's first
/// paragraph (which utoipa puts in `summary`) and its other paragraphs (`description`).
pub fn split_summary(summary: &str, description: Option<&str>) -> (String, Option<String>) {
    let text = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    let (first, rest) = match first_sentence_end(&text) {
        Some(end) => (text[..end].to_owned(), text[end..].trim().to_owned()),
        None => (text.clone(), String::new()),
    };
    let first = first.trim_end_matches('.').to_owned();
    // A first sentence too long for a summary is shortened; the description then keeps all of it.
    let (short, rest) = if first.chars().count() > SUMMARY_SOFT_MAX {
        (shorten(&first), summary.trim().to_owned())
    } else {
        // The rest keeps the comment's own line breaks (Markdown).
        let rest = if rest.is_empty() {
            String::new()
        } else {
            reflow_rest(summary.trim(), &rest)
        };
        (first, rest)
    };
    let description = [Some(rest.as_str()), description]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    (short, (!description.is_empty()).then_some(description))
}

/// The part of `original` (with its line breaks) that `rest` (with single spaces) is the end of.
fn reflow_rest(original: &str, rest: &str) -> String {
    let skip = original
        .split_whitespace()
        .count()
        .saturating_sub(rest.split_whitespace().count());
    let mut previous_is_space = true;
    let mut starts = original.char_indices().filter_map(|(i, c)| {
        let start = previous_is_space && !c.is_whitespace();
        previous_is_space = c.is_whitespace();
        start.then_some(i)
    });
    starts
        .nth(skip)
        .map_or_else(|| rest.to_owned(), |i| original[i..].to_owned())
}

/// The version of the API contract (`info.version`): its major is the one in the paths
/// (`/v1`); see docs/api-versioning.md. Raised with every entry of [`CHANGELOG`].
pub const API_VERSION: &str = "1.8.0";

/// What changed in the API, newest first: `(version, date, changes)`. An entry is added with
/// every change of the document that an integrator may notice (docs/api-versioning.md); the
/// entries before 1.3.0 were written afterwards from the repository's history.
pub const CHANGELOG: &[(&str, &str, &str)] = &[
    (
        "1.8.0",
        "2026-12-06",
        "Registrar facts and a complete right-of-access document (issue 25): an organisation keeps its \
         `contacts` (`contact_person` and `data_protection_officer`, each a name with an e-mail or a phone) and \
         its own `dvv_permit_reference`, changed by `PATCH /v1/organisations/{oid}`; the VTJ queries of a \
         registrar name its own permit when it has one. `GET /v1/me/client-records` shows each record's \
         `registrar_contacts`. The access report (`.../clients/{id}/access-report`) adds `registrar_contacts`, \
         `kanta_informings`, `disclosure_consent` (with its history), `prohibitions` and `registry_use_rights`, \
         each right with the `documents` stored under it. A data-subject request records \
         `identity_verification` (`in_person`, `signed_letter`, `strong_electronic_identification`) at receipt \
         or later; completing a request without it is a 422 naming the field. An organisation records the \
         `municipality_codes` its register serves (one registrar per municipality, 409 otherwise); a client \
         moving into another registrar's municipality is kept and that registrar reads a notice at \
         `GET /v1/registrars/{rid}/vtj/moves-in`, a move to a municipality no registrar serves closes the \
         client's services (VT-4). \
         What VTJ gives about a client is kept, not dropped (issue 25, VT-4). A client read by the registrar's \
         staff shows `guardianship` (`guardian` from `EDUNVALVONTA`, `continuing_power_of_attorney` from \
         `EDUNVALVONTAVALTUUTUS`, each with `starts_on` and `ends_on`), and, beside the permanent `address`, \
         the `temporary_address` and the `postal_address` (never under a protection order, like `address`). \
         A date VTJ gives to the month or the year only stays so: `moved_in_on`, `moved_out_on` and \
         `died_on` (and the guardianship dates) are then the first day of the month or year, with \
         `*_precision` (`month` or `year`) beside them; absent, the date is a full date. All of these are \
         read-only (they come from VTJ); a date written with `PATCH` is a full date.",
    ),
    (
        "1.7.0",
        "2026-12-06",
        "Kanta details of source 003 §5 (issue 25): a provider contract takes `kanta_exemption`, the support \
         services (`cleaning`, `errands`, `meals`, `laundry`, `mobility`) for which the organiser exempts a \
         small provider from joining Kanta and from recording separate electronic client documents; opening a \
         registry use right for an exempt provider's service is refused (422 naming `provider_kanta_exemption`). \
         `GET /v1/registrars/{rid}/kanta-joining-report` lists the contracted providers not joined to Kanta, \
         never an exempt one. A security incident records whether and when its data subjects were notified \
         (`data_subjects_notified`, `data_subjects_notified_at`); its `PATCH` takes them with or without a \
         `state`, which is no longer required. A home municipality (`NewClient`, `ClientChanges`, \
         `NewContact`) is one of Statistics Finland's municipality codes, an enum in the document instead of \
         any three digits; another code is a 400 naming the field (CL-1).",
    ),
    (
        "1.6.1",
        "2026-12-06",
        "Documentation only: the 400, 401, 403 and 404 answers of every protected operation say what they \
         mean and name their problem type (they were listed without a description). No status, schema or \
         behaviour changed.",
    ),
    (
        "1.6.0",
        "2026-12-06",
        "The rest of what the server checks is in the document (`make fuzz-api` finds no disagreement): \
         e-mail addresses and phone numbers (one pattern each, the same the registers apply; an invited \
         user's address is no longer trimmed), business ids (`fi-business-id`), a listening's or media \
         export's reason of three words, text fields without control characters (addresses, next of kin, \
         service references, care-team roles, legal holds, contact names, call-register texts), free texts of \
         data-subject requests, service-type codes, the statistics' `group_by` lists (a dimension named twice \
         now groups once), the export's `log`. Refusals that depend on stored data or on other fields are \
         422 `business-rule`: a recorded queue without an announcement, a service type outside the \
         registrar's areas, a provider's unit that is not the provider's, a validity or membership that ends \
         before it starts, a move or death before the birth date the identity code gives, `closed_on` without closing, an audit export over 366 days or a report over 92.",
    ),
    (
        "1.5.0",
        "2026-12-05",
        "The document says what the server checks (schemathesis, `make fuzz-api`): a 400 now means the \
         request breaks the document, and refusals that depend on other records or fields are 422 \
         `business-rule` (a unit or area of another organisation, an end before the start, a closed account, \
         a provider that is not one, a service of another client, a voucher without its value, an unknown \
         invitation or organisation, a common password, a cursor no listing returned, a statistics period \
         over 36 months). Patterns, lengths, enums and formats declared: identity codes (`fi-identity-code`), \
         OIDs, roles, organisation kinds, scopes, names, months, times given as RFC 3339 or a date, \
         quantities (`multipleOf` 0.01), the pushed VTJ batch. `X-Request-Id` takes any value; \
         `X-On-Behalf-Of` is `format: uuid` and checked for every caller; an `If-Match` naming no version is \
         412; an integer may be written `5.0`; a body is a JSON object, never an array; a method only a less \
         specific path has is 405.",
    ),
    (
        "1.4.0",
        "2026-12-05",
        "`GET /metrics` (OpenMetrics text, for admins or a scrape token); 503 `service-unavailable` with \
         `Retry-After` documented on every operation that uses the database; a retry whose first request's \
         server died after doing the work answers 409 `conflict` with `Idempotent-Replayed: true`; the 403 \
         that a citizen gets on account and organisation operations is documented.",
    ),
    (
        "1.3.0",
        "2026-12-05",
        "For integrators (issue 24): every operation has its own operationId (the shared `list`, `create`, \
         `show`, `update` and `list_units` became `list_accounts`, `create_api_client`, `show_organisation`, \
         … — regenerate generated clients; requests and responses are unchanged); ids declared `format: uuid` \
         and times `format: date-time`; `Idempotency-Key`, `X-Request-Id`, `X-On-Behalf-Of` and \
         `X-On-Behalf-Of-Token` declared where they apply; public operations `security: []`; request and \
         response examples; this changelog.",
    ),
    (
        "1.2.0",
        "2026-12-05",
        "The register of call and contact recordings (contacts, recordings, listening by reason, legal hold, \
         reports); 406 for an `Accept` that no answer matches; 413 and 415 listed on every JSON-bodied \
         operation; failed log-ins throttled (429 with `Retry-After`) and password checks shed (503 `busy` with \
         `Retry-After`); strong authentication of a user named in `X-On-Behalf-Of` (`X-On-Behalf-Of-Token`, \
         attestation).",
    ),
    (
        "1.1.0",
        "2026-11-30",
        "Kanta informing, disclosure consent and prohibitions, registry use rights and case documents; \
         data-subject requests; proxies and care teams; `Idempotency-Key` on every creating POST; VTJ change \
         ingestion.",
    ),
    (
        "1.0.0",
        "2026-11-25",
        "First version: log-in, API clients, organisations, accounts and service areas; the client register \
         with services, service events, settlements, lifecycle and statistics; the usage and disclosure logs.",
    ),
];

fn changelog(doc: &mut OpenApi) {
    doc.info.version = API_VERSION.to_owned();
    let entries: Vec<serde_json::Value> = CHANGELOG
        .iter()
        .map(|(version, date, changes)| serde_json::json!({"version": version, "date": date, "changes": changes}))
        .collect();
    doc.info.extensions.get_or_insert_with(Default::default).merge(
        [("x-changelog".to_owned(), serde_json::Value::Array(entries))]
            .into_iter()
            .collect(),
    );
    let mut text = String::from(
        "\n\n## Versions\n\nThe major version is in the paths (`/v1`); within it, changes only add (docs/api-versioning.md). \
         An operation is deprecated, with `deprecated: true` and `Deprecation` and `Sunset` response headers, at least six months before it goes.\n\n## Changelog\n",
    );
    for (version, date, changes) in CHANGELOG {
        text.push_str(&format!("\n- **{version}** ({date}): {changes}"));
    }
    let description = doc.info.description.get_or_insert_with(String::new);
    description.push_str(&text);
}

/// The operations that never touch the database (readiness documents its own 503).
const WITHOUT_DATABASE: &[&str] = &["/health/live", "/health/ready"];

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
fn document_unavailable(operation: &mut Operation) {
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
            let pages = parameters
                .iter()
                .any(|p| p.name == "cursor" && matches!(p.parameter_in, ParameterIn::Query));
            if pages {
                document_problem(
                    &mut operation.responses,
                    "422",
                    "`cursor` is not one this listing returned (`/problems/business-rule`)",
                );
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

fn constrain_fields(doc: &mut OpenApi) {
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

/// Documents a problem answer of `status` in an operation's `responses`, unless its handler
/// already did (in its own words).
fn document_problem(responses: &mut utoipa::openapi::Responses, status: &str, description: &str) {
    responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| crate::problem::documented_problem(description));
}

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

    #[test]
    fn pl_1_the_document_carries_its_version_and_changelog() {
        let doc = serde_json::to_value(crate::openapi()).unwrap();
        assert_eq!(doc["info"]["version"], API_VERSION);
        let log = doc["info"]["x-changelog"].as_array().unwrap();
        assert_eq!(log.len(), CHANGELOG.len());
        // The newest entry is the current version, and versions only go up.
        assert_eq!(log[0]["version"], API_VERSION);
        let versions: Vec<Vec<u32>> = CHANGELOG
            .iter()
            .map(|(v, _, _)| v.split('.').map(|n| n.parse().unwrap()).collect())
            .collect();
        assert!(versions.windows(2).all(|w| w[0] > w[1]), "{versions:?}");
        // The major version is the paths' one.
        let major = API_VERSION.split('.').next().unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert!(
            paths
                .keys()
                .filter(|p| !p.starts_with("/health") && *p != "/metrics")
                .all(|p| p.starts_with(&format!("/v{major}/")))
        );
        let description = doc["info"]["description"].as_str().unwrap();
        assert!(description.contains("## Changelog") && description.contains(&format!("**{API_VERSION}**")));
    }

    #[test]
    fn pl_1_summary_is_the_first_sentence_and_the_rest_is_the_description() {
        let (summary, description) = split_summary(
            "Lists the clients (newest first, e.g. `a.b`). Paged by `cursor`;\nsee docs/x.md.",
            Some("More."),
        );
        assert_eq!(summary, "Lists the clients (newest first, e.g. `a.b`)");
        assert_eq!(
            description.as_deref(),
            Some("Paged by `cursor`;\nsee docs/x.md.\n\nMore.")
        );
        let (summary, description) = split_summary("One line.", None);
        assert_eq!((summary.as_str(), description), ("One line", None));
        let long = format!("Pushes a batch ({}) in its own format. Then more.", "x ".repeat(80));
        let (summary, description) = split_summary(&long, None);
        assert_eq!(summary, "Pushes a batch in its own format");
        assert_eq!(description.as_deref(), Some(long.as_str()));
        let long = format!(
            "Close an account: it cannot log in {}. Then more.",
            "and so on ".repeat(10)
        );
        assert_eq!(split_summary(&long, None).0, "Close an account");
        let (summary, _) = split_summary("May X be disclosed to Q? `allow` or `deny`.", None);
        assert_eq!(summary, "May X be disclosed to Q?");
        let (summary, _) = split_summary(&"word ".repeat(60), None);
        assert!(
            summary.chars().count() <= SUMMARY_MAX && summary.ends_with('…'),
            "{summary}"
        );
    }
}
