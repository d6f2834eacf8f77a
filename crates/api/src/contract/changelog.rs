//! The API's version and changelog (docs/api-versioning.md), kept beside each other so that a
//! change of the document raises the version with its entry.

use utoipa::openapi::OpenApi;

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

pub(super) fn changelog(doc: &mut OpenApi) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
