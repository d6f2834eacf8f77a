//! The isolation matrix (PL-19), generated from the served OpenAPI document: every operation
//! under `/v1/registrars/{rid}/…` and every per-item path, filled with the ids of one registrar's
//! real resources, called as every kind of principal foreign to it. Any 2xx, any answer other
//! than 404 (or a documented 403 that does not depend on what exists), any byte of the
//! registrar's data in an answer, a refusal at its door missing from its usage log, or any
//! change to its data fails. A path parameter the matrix cannot fill fails it too, so an
//! operation is covered the day it is published.

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;
use rekisteri_db::schema::usage_log;
use rekisteri_tests::{TestApp, USER_PASSWORD, idp_app_test};
use serde_json::{Value, json};

use crate::clients::MAIJA;
use crate::isolation::api_client;

const VICTIM_OID: &str = "1.2.246.10.5001";
const VICTIM_UNIT_OID: &str = "1.2.246.10.5001.10.1";
const PROVIDER_OID: &str = "1.2.246.10.2001";
const PROVIDER_UNIT_OID: &str = "1.2.246.10.2001.10.1";
const CASE_ROOT: &str = "1.2.246.10.5001.99";
const CALLER: &str = "+358401234567";

/// What a victim's data looks like to the matrix: the values that fill the paths and bodies,
/// and every string of it that must never reach a foreign principal.
struct World {
    /// A path parameter's value, by the path segment it follows (`clients` → a client id).
    params: BTreeMap<&'static str, String>,
    /// A body field's value, by its name (`client_id` → the same client).
    fields: BTreeMap<&'static str, Value>,
    /// The identity code a body names.
    identity_code: String,
}

/// The victim registrar as its own people see it: a few reads whose answers must not change.
struct Victim {
    world: World,
    registrar: String,
    /// Ids, identity codes, names, phone numbers and e-mail addresses of the victim's data.
    secrets: Vec<String>,
    /// Reads (token, path) of the victim's own people, compared before and after the matrix.
    snapshots: Vec<(String, String)>,
}

fn id_of(response: reqwest::blocking::Response, what: &str) -> Value {
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    assert!(
        (200..300).contains(&status),
        "seeding {what} failed with {status}: {body}"
    );
    body
}

fn str_of(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {pointer} in {value}"))
        .to_owned()
}

/// A WAV file of a few hundred bytes of silence.
fn wav() -> Vec<u8> {
    let data_len: u32 = 400;
    let mut out = rekisteri_recordings::wav_header(data_len);
    out.resize(out.len() + data_len as usize, 0);
    out
}

fn put(app: &TestApp, token: &str, path: &str, body: Option<&Value>) -> reqwest::blocking::Response {
    app.request_as(reqwest::Method::PUT, token, path, &[], body)
}

/// One registrar with a real resource of every kind the API names, and its provider.
fn seed_victim(app: &TestApp, admin: &str) -> Victim {
    let organisation = |name: &str, kind: &str, oid: &str| app.organisation(admin, name, kind, oid);
    let v = organisation("Pirkanmaan hyvinvointialue", "wellbeing_services_county", VICTIM_OID);
    let provider = organisation("Hoiva Oy", "provider", PROVIDER_OID);
    let unit_of = |org: &str, oid: &str| {
        let unit = id_of(
            app.post_as(
                admin,
                &format!("/v1/organisations/{org}/service-units"),
                &json!({"oid": oid, "name": "Kotihoito"}),
            ),
            "a service unit",
        );
        str_of(&unit, "/id")
    };
    let v_unit = unit_of(&v, VICTIM_UNIT_OID);
    unit_of(&provider, PROVIDER_UNIT_OID);
    let join = |account: &str, unit: &str| {
        let joined = id_of(
            app.post_as(
                admin,
                &format!("/v1/accounts/{account}/service-units"),
                &json!({"service_unit_id": unit}),
            ),
            "a membership",
        );
        str_of(&joined, "/id")
    };
    let home_care = app.service_area(admin, &v, "home_care", &["home_care"]);
    let (handler_id, handler) = app.add_user(admin, "kasittelija@pirha.fi", &v, "client_handler");
    let area_grant = app.grant_service_area(admin, &handler_id, &home_care);
    let membership = join(&handler_id, &v_unit);
    let (_, dpo) = app.add_user(admin, "tietosuoja@pirha.fi", &v, "auditor");
    let (_, main_user) = app.add_user(admin, "paakayttaja@pirha.fi", &v, "main_user");
    let (supervisor_id, _) = app.add_user(admin, "esimies@pirha.fi", &v, "call_supervisor");
    join(&supervisor_id, &v_unit);
    let supervisor = app.token("esimies@pirha.fi", USER_PASSWORD);
    let (agent_id, _) = app.add_user(admin, "agentti@pirha.fi", &v, "call_agent");
    let (nurse_id, _) = app.add_user(admin, "hoitaja@pirha.fi", &v, "professional");
    join(&nurse_id, &v_unit);
    let (_, provider_staff) = app.add_user(admin, "hoitaja@hoiva.fi", &provider, "provider_staff");
    let (api_client_id, telephony) = api_client(app, admin, &v, &["calls:write"]);
    let account: Value = app.get_as(admin, &format!("/v1/accounts/{handler_id}")).json().unwrap();
    let role_grant = str_of(&account, "/roles/0/id");

    // The client register: a client with a purchased service, an event, a proxy, a care team.
    let clients = format!("/v1/registrars/{v}/clients");
    let client = id_of(
        app.post_as(
            &handler,
            &clients,
            &json!({"identity_code": MAIJA, "first_names": "Maija Liisa", "surname": "Meikäläinen",
            "phone": "+358 40 123 4567", "email": "maija@esimerkki.fi",
            "next_of_kin": {"name": "Matti Meikäläinen", "phone": "040 765 4321"},
            "services": [{"kind": "purchased_service", "service_type": "home_care", "service_name": "Kotihoito",
                "quantity": 10, "unit": "visit", "unit_value_cents": 3000, "valid_from": "2026-01-01",
                "valid_to": "2026-12-31", "provider_id": provider}]}),
        ),
        "a client",
    );
    let client_id = str_of(&client, "/id");
    let service = str_of(&client, "/services/0/id");
    let client_path = format!("{clients}/{client_id}");
    id_of(
        app.post_as(
            &provider_staff,
            &format!("/v1/registrars/{v}/services/{service}/events"),
            &json!({"delivered_on": "2026-11-30", "quantity": 1, "unit_price_cents": 3000}),
        ),
        "a service event",
    );
    let proxy_code = crate::clients::code(51);
    let proxy = id_of(
        app.post_as(
            &handler,
            &format!("{client_path}/proxies"),
            &json!({"identity_code": proxy_code,
            "first_names": "Pekka", "surname": "Puolestapuhuja", "phone": "040 111 2222", "valid_from": "2026-01-01"}),
        ),
        "a proxy",
    );
    let member = id_of(
        app.post_as(
            &handler,
            &format!("{client_path}/care-team"),
            &json!({"account_id": nurse_id, "service_unit_id": v_unit, "valid_from": "2026-01-01"}),
        ),
        "a care-team member",
    );

    // The consent register: informing, consent, a prohibition; Kanta settings, a contract, a
    // registry use right with a stored document and a security incident.
    id_of(
        app.post_as(
            &handler,
            &format!("{client_path}/kanta-informing"),
            &json!({"method": "in_person"}),
        ),
        "an informing",
    );
    id_of(
        put(
            app,
            &handler,
            &format!("{client_path}/disclosure-consent"),
            Some(&json!({"state": "positive"})),
        ),
        "a consent",
    );
    let prohibition = id_of(
        app.post_as(
            &handler,
            &format!("{client_path}/disclosure-prohibitions"),
            &json!({"scope": "document", "target": "doc-1"}),
        ),
        "a prohibition",
    );
    id_of(
        put(
            app,
            &handler,
            &format!("/v1/registrars/{v}/kanta-settings"),
            Some(&json!({"kanta_start_date": "2026-09-01", "case_oid_root": CASE_ROOT})),
        ),
        "Kanta settings",
    );
    id_of(
        put(
            app,
            &handler,
            &format!("/v1/registrars/{v}/provider-contracts/{provider}"),
            Some(&json!({"contract_ref": "PIRHA-2026-17", "kanta_joined_on": "2026-08-15"})),
        ),
        "a provider contract",
    );
    let right = id_of(
        app.post_as(
            &handler,
            &format!("/v1/registrars/{v}/registry-use-rights"),
            &json!({"client_id": client_id, "service_id": service, "provider_unit_oid": PROVIDER_UNIT_OID}),
        ),
        "a registry use right",
    );
    let case = str_of(&right, "/case_oid");
    let document = id_of(
        app.post_as(&provider_staff, &format!("/v1/registrars/{v}/cases/{case}/documents"),
            &json!({"service_task": "home_care", "document_type": "SOS-KOTIHOITO-KAYNTI", "structure_id": "1.2.246.537.6.12.2002.388",
                "title": "Käynti", "content_type": "application/json", "content": {"text": "Käynti tehty"}})),
        "a case document",
    );
    let incident = id_of(
        app.post_as(
            &provider_staff,
            &format!("/v1/registrars/{v}/security-incidents"),
            &json!({"description": "Asiakirja väärässä rekisterissä", "discovered_at": "2026-12-01T08:30:00Z",
                "document_id": document["id"]}),
        ),
        "a security incident",
    );
    let request = id_of(
        app.post_as(
            &dpo,
            &format!("/v1/registrars/{v}/data-subject-requests"),
            &json!({"kind": "access", "identity_code": MAIJA}),
        ),
        "a data-subject request",
    );

    // The call register: a queue with a named listener, a recorded call, a listening with its
    // memo and a disclosure, and a legal hold.
    let queue = id_of(
        app.post_as(
            &main_user,
            &format!("/v1/registrars/{v}/queues"),
            &json!({"name": "Kotihoidon neuvonta", "service_unit_id": v_unit, "recorded": true,
                "recording_announcement": "Puhelu nauhoitetaan."}),
        ),
        "a queue",
    );
    let queue_id = str_of(&queue, "/id");
    id_of(
        put(
            app,
            &main_user,
            &format!("/v1/registrars/{v}/queues/{queue_id}/listeners/{agent_id}"),
            None,
        ),
        "a listener",
    );
    let contact = id_of(
        app.post_as(
            &telephony,
            &format!("/v1/registrars/{v}/contacts"),
            &json!({"kind": "call", "queue_id": queue_id, "caller_number": CALLER, "client_identity_code": MAIJA,
                "started_at": "2026-12-01T07:30:00Z", "wait_seconds": 40, "duration_seconds": 180}),
        ),
        "a contact",
    );
    let contact_id = str_of(&contact, "/id");
    let contact_path = format!("/v1/registrars/{v}/contacts/{contact_id}");
    let uploaded = app
        .client
        .put(app.url(&format!("{contact_path}/recording")))
        .bearer_auth(&telephony)
        .header("Content-Type", "audio/wav")
        .body(wav())
        .send()
        .unwrap();
    id_of(uploaded, "a recording");
    let grant = id_of(
        app.post_as(&supervisor, &format!("{contact_path}/listening-requests"),
            &json!({"reason_category": "complaint_or_claim", "reason": "Asiakas on tehnyt muistutuksen puhelun sisällöstä."})),
        "a listening grant",
    );
    let memo = str_of(&grant, "/memo_id");
    id_of(
        app.post_as(&supervisor, &format!("/v1/registrars/{v}/processing-memos/{memo}/disclosures"),
            &json!({"recipient_kind": "authority", "recipient": "Sisä-Suomen poliisilaitos", "legal_basis": "poliisilaki 4:3",
                "disclosed": "koko tallenne"})),
        "a memo disclosure",
    );
    id_of(
        app.post_as(
            &supervisor,
            &format!("{contact_path}/legal-hold"),
            &json!({"authority": "Sisä-Suomen poliisilaitos", "case_reference": "5560/R/12345/26"}),
        ),
        "a legal hold",
    );

    let params: BTreeMap<&'static str, String> = [
        ("registrars", v.clone()),
        ("organisations", v.clone()),
        ("accounts", handler_id.clone()),
        ("roles", role_grant),
        ("service-areas", area_grant),
        ("service-units", membership),
        ("api-clients", api_client_id.clone()),
        ("clients", client_id.clone()),
        ("client-records", client_id.clone()),
        ("services", service.clone()),
        ("proxies", str_of(&proxy, "/id")),
        ("care-team", str_of(&member, "/id")),
        ("disclosure-prohibitions", str_of(&prohibition, "/id")),
        ("provider-contracts", provider.clone()),
        ("registry-use-rights", str_of(&right, "/id")),
        ("cases", case.clone()),
        ("documents", str_of(&document, "/id")),
        ("security-incidents", str_of(&incident, "/id")),
        ("data-subject-requests", str_of(&request, "/id")),
        ("queues", queue_id.clone()),
        ("listeners", agent_id.clone()),
        ("contacts", contact_id.clone()),
        ("processing-memos", memo.clone()),
        ("listening-grants", str_of(&grant, "/grant_id")),
        // Not an id: the report's name, one the server knows.
        ("reports", "special-reasons".to_owned()),
    ]
    .into_iter()
    .collect();
    let fields: BTreeMap<&'static str, Value> = [
        ("client_id", json!(client_id)),
        ("service_id", json!(service)),
        ("provider_id", json!(provider)),
        ("registrar_id", json!(v)),
        ("organisation_id", json!(v)),
        ("organisation", json!(v)),
        ("account_id", json!(nurse_id)),
        ("agent_id", json!(agent_id)),
        ("queue_id", json!(queue_id)),
        ("service_unit_id", json!(v_unit)),
        ("service_area_id", json!(home_care)),
        ("document_id", json!(document["id"])),
        ("case_oid", json!(case)),
        ("provider_unit_oid", json!(PROVIDER_UNIT_OID)),
        ("prohibition_id", json!(prohibition["id"])),
        ("caller_number", json!(CALLER)),
    ]
    .into_iter()
    .collect();
    let mut secrets: Vec<String> = params
        .iter()
        .filter(|(segment, _)| **segment != "reports")
        .map(|(_, id)| id.clone())
        .chain(fields.values().filter_map(|f| f.as_str().map(str::to_owned)))
        .collect();
    secrets.extend(
        [
            MAIJA,
            &proxy_code,
            "Meikäläinen",
            "Maija Liisa",
            "Puolestapuhuja",
            "+358 40 123 4567",
            "040 765 4321",
            "040 111 2222",
            "maija@esimerkki.fi",
            "Pirkanmaan hyvinvointialue",
            VICTIM_OID,
            "kasittelija@pirha.fi",
            "paakayttaja@pirha.fi",
            "esimies@pirha.fi",
            "Sisä-Suomen poliisilaitos",
            "5560/R/12345/26",
            &nurse_id,
            &supervisor_id,
            &home_care,
            &v_unit,
            &memo,
        ]
        .map(str::to_owned),
    );
    secrets.sort();
    secrets.dedup();
    let snapshots = vec![
        (handler.clone(), client_path.clone()),
        (handler.clone(), format!("{client_path}/proxies")),
        (handler.clone(), format!("{client_path}/care-team")),
        (handler.clone(), format!("{client_path}/disclosure-consent")),
        (handler.clone(), format!("{client_path}/disclosure-prohibitions")),
        (handler.clone(), format!("/v1/registrars/{v}/services/{service}/events")),
        (
            handler.clone(),
            format!("/v1/registrars/{v}/registry-use-rights/{}", str_of(&right, "/id")),
        ),
        (
            dpo.clone(),
            format!("/v1/registrars/{v}/data-subject-requests/{}", str_of(&request, "/id")),
        ),
        (
            dpo.clone(),
            format!("/v1/registrars/{v}/security-incidents/{}", str_of(&incident, "/id")),
        ),
        (supervisor.clone(), contact_path.clone()),
        (
            supervisor.clone(),
            format!("/v1/registrars/{v}/processing-memos/{memo}/disclosures"),
        ),
        (main_user.clone(), format!("/v1/registrars/{v}/queues")),
        (main_user.clone(), format!("/v1/accounts/{handler_id}")),
        (main_user.clone(), format!("/v1/organisations/{v}")),
        (main_user.clone(), format!("/v1/organisations/{v}/service-units")),
        (admin.to_owned(), "/v1/api-clients".to_owned()),
    ];
    Victim {
        world: World {
            params,
            fields,
            identity_code: MAIJA.to_owned(),
        },
        registrar: v,
        secrets,
        snapshots,
    }
}

/// The same shape with nothing behind it: fresh ids, an OID no registrar has, another person.
fn ghost_world(victim: &World) -> World {
    let fresh = |value: &str| -> String {
        if value.starts_with("1.2.246.") {
            "1.2.246.10.5999.99.1".to_owned()
        } else if value.starts_with('+') {
            "+358409999999".to_owned()
        } else {
            uuid::Uuid::new_v4().to_string()
        }
    };
    World {
        params: victim
            .params
            .iter()
            .map(|(k, v)| (*k, if *k == "reports" { v.clone() } else { fresh(v) }))
            .collect(),
        fields: victim
            .fields
            .iter()
            .map(|(k, v)| (*k, json!(fresh(v.as_str().unwrap_or_default()))))
            .collect(),
        identity_code: crate::clients::code(77),
    }
}

/// A principal of anything but the victim: a session token and the headers it sends.
struct Principal {
    name: &'static str,
    token: String,
    /// The user an integration acts for (`X-On-Behalf-Of`).
    on_behalf_of: Option<String>,
}

fn foreign_principals(app: &TestApp, admin: &str) -> Vec<Principal> {
    let organisation = |name: &str, kind: &str, oid: &str| app.organisation(admin, name, kind, oid);
    let other = organisation(
        "Satakunnan hyvinvointialue",
        "wellbeing_services_county",
        "1.2.246.10.5002",
    );
    let other_provider = organisation("Apu Oy", "provider", "1.2.246.10.2002");
    let other_unit: Value = app
        .post_as(
            admin,
            &format!("/v1/organisations/{other}/service-units"),
            &json!({"oid": "1.2.246.10.5002.10.1", "name": "Neuvonta"}),
        )
        .json()
        .unwrap();
    let other_area = app.service_area(admin, &other, "home_care", &["home_care"]);
    let (handler_id, handler) = app.add_user(admin, "kasittelija@satakunta.fi", &other, "client_handler");
    app.grant_service_area(admin, &handler_id, &other_area);
    let (_, auditor) = app.add_user(admin, "tietosuoja@satakunta.fi", &other, "auditor");
    let (main_user_id, main_user) = app.add_user(admin, "paakayttaja@satakunta.fi", &other, "main_user");
    let (supervisor_id, _) = app.add_user(admin, "esimies@satakunta.fi", &other, "call_supervisor");
    let joined = app.post_as(
        admin,
        &format!("/v1/accounts/{supervisor_id}/service-units"),
        &json!({"service_unit_id": other_unit["id"]}),
    );
    assert_eq!(joined.status().as_u16(), 201);
    let supervisor = app.token("esimies@satakunta.fi", USER_PASSWORD);
    let (_, provider_staff) = app.add_user(admin, "hoitaja@apu.fi", &other_provider, "provider_staff");
    let scopes: Vec<&str> = rekisteri_accounts::api_clients::SCOPES
        .iter()
        .map(|(scope, _)| *scope)
        .collect();
    let (_, integration) = api_client(app, admin, &other, &scopes);
    let principal = |name, token: String| Principal {
        name,
        token,
        on_behalf_of: None,
    };
    vec![
        principal("another registrar's client handler", handler),
        principal("another registrar's auditor", auditor),
        principal("another registrar's main user", main_user),
        principal("another registrar's call supervisor", supervisor),
        principal("an unrelated provider's staff", provider_staff),
        principal("a citizen", app.citizen_token(&crate::clients::code(88))),
        principal(
            "another organisation's integration with every scope",
            integration.clone(),
        ),
        Principal {
            name: "another organisation's integration with every scope acting for its main user",
            token: integration,
            on_behalf_of: Some(main_user_id),
        },
    ]
}

/// One operation of the document.
struct Operation {
    method: reqwest::Method,
    path: String,
    /// The request body's media type and schema.
    body: Option<(String, Value)>,
    /// Query and header parameters: (name, in, required, schema).
    parameters: Vec<(String, String, bool, Value)>,
    documents_403: bool,
}

/// The operations the matrix calls: those under a registrar and those naming an item.
fn operations(document: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        if !(path.starts_with("/v1/registrars/{rid}") || path.contains('{')) {
            continue;
        }
        for (method, operation) in item.as_object().unwrap() {
            let method = match method.as_str() {
                "get" => reqwest::Method::GET,
                "post" => reqwest::Method::POST,
                "put" => reqwest::Method::PUT,
                "patch" => reqwest::Method::PATCH,
                "delete" => reqwest::Method::DELETE,
                _ => continue,
            };
            let body = operation["requestBody"]["content"].as_object().and_then(|content| {
                content
                    .iter()
                    .next()
                    .map(|(media, spec)| (media.clone(), spec["schema"].clone()))
            });
            let parameters = operation["parameters"]
                .as_array()
                .map(|all| {
                    all.iter()
                        .map(|p| {
                            (
                                p["name"].as_str().unwrap().to_owned(),
                                p["in"].as_str().unwrap().to_owned(),
                                p["required"].as_bool().unwrap_or(false),
                                p["schema"].clone(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(Operation {
                method,
                path: path.clone(),
                body,
                parameters,
                documents_403: operation["responses"].get("403").is_some(),
            });
        }
    }
    out
}

/// Resolves a local `$ref`.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(
                document,
                document
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling {reference}")),
            )
        }
        None => schema,
    }
}

/// A minimal value the schema accepts, with the world's ids in the fields that name them.
fn generate(document: &Value, schema: &Value, field: Option<&str>, world: &World) -> Value {
    if let Some(field) = field {
        if let Some(value) = world.fields.get(field) {
            return value.clone();
        }
        if field == "identity_code" || field == "client_identity_code" {
            return json!(world.identity_code);
        }
    }
    let schema = resolve(document, schema);
    for combinator in ["oneOf", "anyOf", "allOf"] {
        if let Some(variants) = schema[combinator].as_array() {
            // The first variant that is not `null` (an optional field's other half).
            let variant = variants
                .iter()
                .find(|v| resolve(document, v)["type"] != "null")
                .unwrap_or(&variants[0]);
            return generate(document, variant, field, world);
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        return values[0].clone();
    }
    if let Some(example) = schema.get("example") {
        return example.clone();
    }
    let kind = match &schema["type"] {
        Value::String(kind) => kind.clone(),
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null")
            .unwrap_or("null")
            .to_owned(),
        _ if schema.get("properties").is_some() => "object".to_owned(),
        _ => return json!({}),
    };
    match kind.as_str() {
        "object" => {
            let mut object = serde_json::Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap();
                let property = &schema["properties"][name];
                object.insert(name.to_owned(), generate(document, property, Some(name), world));
            }
            Value::Object(object)
        }
        "array" => {
            let count = schema["minItems"].as_u64().unwrap_or(0);
            Value::Array(
                (0..count)
                    .map(|_| generate(document, &schema["items"], field, world))
                    .collect(),
            )
        }
        "integer" | "number" => json!(schema["minimum"].as_i64().unwrap_or(1).max(1)),
        "boolean" => json!(false),
        "null" => Value::Null,
        _ => match schema["format"].as_str() {
            Some("date") => json!("2026-12-01"),
            Some("date-time") => json!("2026-12-01T08:00:00Z"),
            Some("uuid") => json!(uuid::Uuid::new_v4().to_string()),
            _ => {
                let text = "Isolation matrix probe text, one of many";
                let shortest = schema["minLength"].as_u64().unwrap_or(1) as usize;
                let longest = schema["maxLength"].as_u64().unwrap_or(200) as usize;
                let length = text.len().clamp(shortest, longest.max(shortest));
                json!(text.chars().cycle().take(length).collect::<String>())
            }
        },
    }
}

/// A body for the operations whose schema is looser than the server (a plain string where the
/// server takes an enum, a free-form object), as the server's own documentation describes it.
fn fixture(method: &reqwest::Method, path: &str, world: &World) -> Option<Value> {
    let fixture = match (method.as_str(), path.rsplit('/').next().unwrap_or_default()) {
        ("PUT", "disclosure-consent") => json!({"state": "positive"}),
        ("POST", "disclosure-prohibitions") => json!({"scope": "all"}),
        ("POST", "kanta-informing") => json!({"method": "in_person"}),
        ("PATCH", "{id}") if path.ends_with("/security-incidents/{id}") => {
            json!({"state": "assessed", "assessment": "Ei vaikutuksia"})
        }
        ("POST", "changes") => json!({"viimeisinKirjausavain": 7, "ajanTasalla": true, "muutokset": [
            {"henkilotunnus": world.identity_code, "muutospv": "2026-11-29T10:00:00.000Z", "tietoryhmat": [
                {"tietoryhma": "HENKILON_NIMI", "muutosattribuutti": "LISATTY", "etunimi": "Vieras", "sukunimi": "Muutos"}]}]}),
        _ => return None,
    };
    Some(fixture)
}

/// A required query parameter's value.
fn query_value(document: &Value, name: &str, schema: &Value, world: &World) -> String {
    match name {
        "from" => "2026-11-30T22:00:00Z".to_owned(),
        "to" => "2026-12-01T22:00:00Z".to_owned(),
        "month" => "2026-11".to_owned(),
        "provider" => world.fields["provider_id"].as_str().unwrap().to_owned(),
        _ => match generate(document, schema, Some(name), world) {
            Value::String(text) => text,
            other => other.to_string(),
        },
    }
}

/// The operation's path with the world's values, or the parameters it has none for.
fn fill(path: &str, world: &World) -> Result<String, Vec<String>> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    let mut previous = "";
    for segment in path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            match world.params.get(previous) {
                Some(value) => out.push(value.clone()),
                None => missing.push(format!("{{{name}}} after /{previous}/ in {path}")),
            }
        } else {
            out.push(segment.to_owned());
        }
        previous = segment;
    }
    if missing.is_empty() {
        Ok(out.join("/"))
    } else {
        Err(missing)
    }
}

/// Status, content type and body: what an answer says, apart from what differs between any two.
type Answer = (u16, Option<String>, String);

fn call(
    app: &TestApp,
    document: &Value,
    operation: &Operation,
    principal: &Principal,
    world: &World,
    n: usize,
) -> (Answer, String) {
    let path = fill(&operation.path, world).unwrap();
    let mut query = Vec::new();
    let mut builder = app
        .client
        .request(operation.method.clone(), app.url(&path))
        .bearer_auth(&principal.token);
    if let Some(user) = &principal.on_behalf_of {
        builder = builder.header("X-On-Behalf-Of", user);
    }
    for (name, location, required, schema) in &operation.parameters {
        match (location.as_str(), required) {
            ("query", true) => query.push((name.clone(), query_value(document, name, schema, world))),
            ("header", true) if name == "If-Match" => builder = builder.header("If-Match", "\"1\""),
            ("header", true) => panic!(
                "{} {}: no value for the required header {name}",
                operation.method, operation.path
            ),
            _ => {}
        }
    }
    builder = builder.query(&query);
    if operation.method == reqwest::Method::POST {
        builder = builder.header("Idempotency-Key", format!("matrix-{n}"));
    }
    match &operation.body {
        Some((media, schema)) if media == "application/json" => {
            let body = fixture(&operation.method, &operation.path, world)
                .unwrap_or_else(|| generate(document, schema, None, world));
            builder = builder.json(&body);
        }
        Some((media, _)) if media == "application/octet-stream" => {
            builder = builder.header("Content-Type", "audio/wav").body(wav());
        }
        Some((media, _)) => panic!("{} {}: no body for {media}", operation.method, operation.path),
        None => {}
    }
    let response = builder.send().unwrap();
    let status = response.status().as_u16();
    let headers: String = response
        .headers()
        .iter()
        .map(|(name, value)| format!("{name}: {}\n", value.to_str().unwrap_or_default()))
        .collect();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    ((status, content_type, response.text().unwrap()), headers)
}

fn denials(app: &TestApp, registrar: &str) -> i64 {
    usage_log::table
        .filter(usage_log::registrar_id.eq(registrar))
        .filter(usage_log::outcome.eq("denied"))
        .count()
        .get_result(&mut app.db.conn())
        .unwrap()
}

fn snapshot(app: &TestApp, victim: &Victim) -> Vec<(String, u16, String)> {
    victim
        .snapshots
        .iter()
        .map(|(token, path)| {
            let response = app.get_as(token, path);
            (path.clone(), response.status().as_u16(), response.text().unwrap())
        })
        .collect()
}

idp_app_test!(fn pl_19_every_registrar_and_item_operation_refuses_every_foreign_principal_and_reveals_nothing(app) {
    app.clock.set(time::macros::datetime!(2026-12-01 10:00 UTC));
    let admin = app.bootstrap_admin();
    let victim = seed_victim(app, &admin);
    let principals = foreign_principals(app, &admin);
    let ghost = ghost_world(&victim.world);
    let document: Value = app.get("/openapi.json").json().unwrap();
    let operations = operations(&document);
    let missing: Vec<String> = operations.iter().filter_map(|o| fill(&o.path, &victim.world).err()).flatten().collect();
    assert!(missing.is_empty(), "path parameters the isolation matrix cannot fill with a victim's id: {missing:#?}");
    let clients_before: i64 = rekisteri_db::schema::clients::table
        .filter(rekisteri_db::schema::clients::registrar_id.eq(&victim.registrar))
        .count()
        .get_result(&mut app.db.conn())
        .unwrap();
    let before = snapshot(app, &victim);
    // The scan sees the victim's data where it is: in the victim's own read of its client.
    let seen = victim.secrets.iter().filter(|s| before[0].2.contains(s.as_str())).count();
    assert!(seen >= 5, "the scan finds only {seen} of the victim's values in its own client: {}", before[0].2);

    let mut failures = Vec::new();
    let mut pairs = 0;
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut unlogged = BTreeSet::new();
    let mut logged_denials = 0;
    for operation in &operations {
        let name = format!("{} {}", operation.method, operation.path);
        for principal in &principals {
            pairs += 1;
            let denied_before = denials(app, &victim.registrar);
            let (answer, headers) = call(app, &document, operation, principal, &victim.world, pairs);
            let logged = denials(app, &victim.registrar) > denied_before;
            let (ghost_answer, _) = call(app, &document, operation, principal, &ghost, pairs + 100_000);
            *statuses.entry(answer.0).or_default() += 1;
            let who = principal.name;
            let status = answer.0;
            if (200..300).contains(&status) {
                failures.push(format!("{name} as {who}: {status} {}", answer.2));
                continue;
            }
            // A registrar's paths answer what a registrar that does not exist answers (AX-4);
            // elsewhere a principal that may never call the operation may be told so.
            let registrar_path = operation.path.starts_with("/v1/registrars/{rid}");
            if status != 404 && (registrar_path || !(status == 403 && operation.documents_403)) {
                failures.push(format!("{name} as {who}: {status} (not 404 or a documented 403) {}", answer.2));
            }
            let path = fill(&operation.path, &victim.world).unwrap();
            let shown = format!("{headers}{}", answer.2);
            for secret in &victim.secrets {
                if !path.contains(secret.as_str()) && shown.contains(secret.as_str()) {
                    failures.push(format!("{name} as {who}: the answer holds the victim's {secret:?}: {shown}"));
                }
            }
            if answer != ghost_answer {
                failures.push(format!("{name} as {who}: answers {answer:?} about the victim but {ghost_answer:?} about nothing"));
            }
            if registrar_path && !logged {
                unlogged.insert(format!("{name} as {who}"));
            }
            if logged {
                logged_denials += 1;
            }
        }
    }
    println!("PL-19 isolation matrix: {pairs} (operation, principal) pairs: {} operations x {} principals; statuses {statuses:?}; {logged_denials} denials in the victim's usage log", operations.len(), principals.len());
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert!(unlogged.is_empty(), "refusals at the victim's door missing from its usage log:\n{}", unlogged.iter().cloned().collect::<Vec<_>>().join("\n"));
    assert!(operations.len() >= 90, "only {} operations in the matrix", operations.len());
    assert_eq!(pairs, operations.len() * principals.len());

    // Nothing of the victim's changed.
    let clients_after: i64 = rekisteri_db::schema::clients::table
        .filter(rekisteri_db::schema::clients::registrar_id.eq(&victim.registrar))
        .count()
        .get_result(&mut app.db.conn())
        .unwrap();
    assert_eq!(clients_after, clients_before);
    let after = snapshot(app, &victim);
    for ((path, status, body), (_, status_after, body_after)) in before.iter().zip(&after) {
        assert_eq!(*status, 200, "{path}: {body}");
        assert_eq!((status, body), (status_after, body_after), "{path} changed");
    }
});
