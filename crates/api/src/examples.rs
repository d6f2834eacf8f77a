//! Request and response examples of the main operations in the OpenAPI document (issue 24): what
//! an integrator sends to create or push something, and the 201 it gets back. They are kept here,
//! as data beside each other, so that one client's ids run through all of them; `make
//! openapi-check` validates every example against its schema (`tools/check-openapi-examples.py`).

use serde_json::{Value, json};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::{OpenApi, RefOr};

const REGISTRAR: &str = "0b6f3c1e-5d2a-4c8e-9f1a-2e7d4b6a8c01";
const PROVIDER: &str = "7c2d9e4f-1a3b-4d5c-8e6f-9a0b1c2d3e04";
const CLIENT: &str = "3f8a2b1c-9d4e-4f6a-8b7c-1d2e3f4a5b06";
const SERVICE: &str = "5e1d4c3b-2a9f-4e8d-b7c6-a5f4e3d2c107";
const SECOND_SERVICE: &str = "6a2e5d4c-3b1f-4a9e-8c7d-b6a5f4e3d208";
const EVENT: &str = "8b3f6e5d-4c2a-4b1f-9d8e-c7b6a5f4e309";
const QUEUE: &str = "1d5b8a7f-6e4c-4d3b-9f1a-e9d8c7b6a50b";
const CONTACT: &str = "2e6c9b8a-7f5d-4e4c-8a2b-f1e9d8c7b60c";
const API_CLIENT: &str = "4a7e1d9c-8b6f-4f5e-9b3c-a2f1e9d8c70d";
const RIGHT: &str = "6c9a3f1e-0d8b-4b7a-8d5e-c4b3a2f1e90e";
const DOCUMENT: &str = "7d0b4a2f-1e9c-4c8b-9e6f-d5c4b3a2f10f";
const UNIT_OID: &str = "1.2.246.10.7654321.10.1";
const CASE_OID: &str = "1.2.246.10.1234567.22.1";
const AT: &str = "2026-12-01T08:15:00Z";

fn new_voucher() -> Value {
    json!({"kind": "service_voucher", "service_type": "home_care", "service_name": "Kotihoidon palveluseteli",
        "quantity": 40, "unit": "hour", "unit_value_cents": 3250, "valid_from": "2026-12-01",
        "valid_to": "2027-11-30", "provider_id": PROVIDER, "provider_unit_oid": UNIT_OID,
        "decision_ref": "KH-2026-17", "additional_info": "Avain avainsäilössä"})
}

/// The example of a stored record: what was sent to create it, with what the register adds.
fn stored(sent: Value, added: Value) -> Value {
    let mut record = sent;
    if let (Some(object), Value::Object(added)) = (record.as_object_mut(), added) {
        object.extend(added);
    }
    record
}

fn service(id: &str, new: Value) -> Value {
    stored(
        new,
        json!({"id": id, "client_id": CLIENT, "status": "active", "closed_on": null, "version": 1}),
    )
}

fn new_client() -> Value {
    json!({"identity_code": "131052-308T", "first_names": "Maija Liisa", "surname": "Meikäläinen",
        "gender": "female", "language": "fi", "home_municipality": "837",
        "email": "maija@esimerkki.fi", "phone": "+358 40 123 4567",
        "next_of_kin": {"name": "Matti Meikäläinen", "phone": "+358 40 765 4321"},
        "address": {"street_address": "Hämeenkatu 1 A 5", "street_name": "Hämeenkatu", "postal_code": "33100",
            "post_office": "Tampere", "country_code": "FI"},
        "services": [new_voucher()]})
}

fn client() -> Value {
    // VT-4: what VTJ gives beside the permanent address, and guardianship with its dates.
    stored(
        new_client(),
        json!({"id": CLIENT, "registrar_id": REGISTRAR, "protection_order": false, "restricted": false,
            "died_on": null, "moved_in_on": null, "moved_out_on": null,
            "postal_address": {"street_address": "PL 12", "postal_code": "33101", "post_office": "Tampere",
                "country_code": "FI"},
            "guardianship": {"continuing_power_of_attorney": {"starts_on": "2026-11-01",
                "starts_on_precision": "month"}},
            "version": 1, "created_at": AT, "updated_at": AT, "services": [service(SERVICE, new_voucher())]}),
    )
}

fn new_purchased_service() -> Value {
    json!({"kind": "purchased_service", "service_type": "home_care", "service_name": "Kotihoito (ostopalvelu)",
        "quantity": 20, "unit": "visit", "unit_value_cents": 4500, "valid_from": "2026-12-01",
        "valid_to": "2027-05-31", "provider_id": PROVIDER, "provider_unit_oid": UNIT_OID})
}

fn new_contact() -> Value {
    json!({"kind": "call", "queue_id": QUEUE, "started_at": "2026-12-01T08:02:11Z",
        "caller_number": "+358401234567", "answered": true, "wait_seconds": 40, "duration_seconds": 95,
        "client_name": "Maija Meikäläinen", "client_identity_code": "131052-308T", "home_municipality": "837",
        "secret_number": false})
}

fn new_document() -> Value {
    json!({"service_task": "home_care", "document_type": "SOS-KOTIHOITO-KAYNTI",
        "structure_id": "1.2.246.537.6.12.2002.388", "title": "Kotikäynti",
        "document_time": "2026-12-01T09:30:00Z", "author_unit_oid": UNIT_OID,
        "content_type": "application/json", "content": {"text": "Käynti tehty, lääkkeet annettu."}})
}

/// `(path, method, request example, 2xx status, response example)`.
fn examples() -> Vec<(&'static str, &'static str, Option<Value>, &'static str, Value)> {
    let contact = stored(
        new_contact(),
        json!({"id": CONTACT, "registrar_id": REGISTRAR, "agent_id": null, "recording": null,
            "recording_announcement": "Puhelu nauhoitetaan laadun varmistamiseksi.", "legal_hold": null,
            "created_at": "2026-12-01T08:04:00Z"}),
    );
    let document = stored(
        new_document(),
        json!({"id": DOCUMENT, "registrar_id": REGISTRAR, "case_oid": CASE_OID, "client_id": CLIENT,
            "author_id": format!("api-client:{API_CLIENT}"), "provider_id": PROVIDER, "signature": null,
            "local_copy": "kept", "created_at": "2026-12-01T09:31:00Z"}),
    );
    vec![
        (
            "/v1/registrars/{rid}/clients",
            "post",
            Some(new_client()),
            "201",
            client(),
        ),
        (
            "/v1/registrars/{rid}/clients/{id}/services",
            "post",
            Some(new_purchased_service()),
            "201",
            service(SECOND_SERVICE, new_purchased_service()),
        ),
        (
            "/v1/registrars/{rid}/services/{sid}/events",
            "post",
            Some(json!({"delivered_on": "2026-12-01", "quantity": 1.5, "note": "Aamukäynti"})),
            "201",
            json!({"id": EVENT, "service_id": SERVICE, "delivered_on": "2026-12-01", "quantity": 1.5,
                "unit_price_cents": 3250, "note": "Aamukäynti", "created_at": "2026-12-01T10:05:00Z"}),
        ),
        (
            "/v1/registrars/{rid}/clients/{id}/kanta-informing",
            "post",
            Some(json!({"method": "in_person", "informed_at": AT})),
            "201",
            json!({"id": "0e1c5b3a-2f0d-4d9c-8f7a-e6d5c4b3a210", "client_id": CLIENT, "method": "in_person",
                "informed_at": AT, "recorded_by": format!("api-client:{API_CLIENT}"),
                "recorded_by_organisation": REGISTRAR, "recorded_at": AT}),
        ),
        (
            "/v1/registrars/{rid}/clients/{id}/disclosure-consent",
            "put",
            Some(json!({"state": "positive"})),
            "200",
            json!({"client_id": CLIENT, "state": "positive", "informed": true, "history": [
                {"state": "positive", "recorded_by": format!("api-client:{API_CLIENT}"),
                    "recorded_by_organisation": REGISTRAR, "recorded_at": AT}]}),
        ),
        (
            "/v1/registrars/{rid}/contacts",
            "post",
            Some(new_contact()),
            "201",
            contact,
        ),
        (
            "/v1/registrars/{rid}/registry-use-rights",
            "post",
            Some(json!({"client_id": CLIENT, "service_id": SECOND_SERVICE, "provider_unit_oid": UNIT_OID})),
            "201",
            json!({"id": RIGHT, "registrar_id": REGISTRAR, "client_id": CLIENT, "service_id": SECOND_SERVICE,
                "provider_id": PROVIDER, "provider_unit_oid": UNIT_OID, "case_oid": CASE_OID,
                "identity_code": "131052-308T", "opened_on": "2026-12-01", "service_ended_on": "2027-05-31",
                "closes_after": "2027-06-09", "closing_set_by_organiser": false, "reopen_reason": null,
                "status": "open", "unit_oid_changed": false}),
        ),
        (
            "/v1/registrars/{rid}/cases/{case_oid}/documents",
            "post",
            Some(new_document()),
            "201",
            document,
        ),
        (
            "/v1/api-clients",
            "post",
            Some(json!({"name": "Asiakastietojärjestelmä", "organisation": REGISTRAR,
                "scopes": ["clients:write", "clients:read", "consent:write"]})),
            "201",
            json!({"client": {"id": API_CLIENT, "organisation_id": REGISTRAR, "name": "Asiakastietojärjestelmä",
                "scopes": ["clients:write", "clients:read", "consent:write"], "created_at": AT,
                "secret_rotated_at": AT, "disabled": false, "strong_user_authentication": null},
                "client_secret": "kR3v9Q…shown once…"}),
        ),
        (
            "/v1/auth/token",
            "post",
            None,
            "200",
            json!({"access_token": "rk_at_…", "token_type": "Bearer", "expires_in": 900,
                "scope": "clients:write clients:read consent:write"}),
        ),
        (
            "/v1/registrars/{rid}/clients/search",
            "post",
            Some(json!({"identity_code": "131052-308T"})),
            "200",
            json!({"items": [client()]}),
        ),
    ]
}

fn operation<'a>(item: &'a mut PathItem, method: &str) -> Option<&'a mut Operation> {
    match method {
        "get" => item.get.as_mut(),
        "post" => item.post.as_mut(),
        "put" => item.put.as_mut(),
        "patch" => item.patch.as_mut(),
        "delete" => item.delete.as_mut(),
        _ => None,
    }
}

/// Sets the examples on their operations' JSON request bodies and responses.
pub fn add(doc: &mut OpenApi) {
    for (path, method, request, status, response) in examples() {
        let Some(operation) = doc.paths.paths.get_mut(path).and_then(|item| operation(item, method)) else {
            continue;
        };
        if let (Some(request), Some(body)) = (request, operation.request_body.as_mut())
            && let Some(content) = body.content.get_mut("application/json")
        {
            content.example = Some(request);
        }
        if let Some(RefOr::T(answer)) = operation.responses.responses.get_mut(status)
            && let Some(content) = answer.content.get_mut("application/json")
        {
            content.example = Some(response);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// Every example names an operation of the document that has a JSON body where it is set:
    /// a renamed path would otherwise drop its example silently.
    #[test]
    fn pl_1_every_example_lands_on_an_operation_of_the_document() {
        let doc = serde_json::to_value(crate::openapi()).unwrap();
        for (path, method, request, status, _) in super::examples() {
            let operation = &doc["paths"][path][method];
            assert!(operation.is_object(), "{method} {path} is not in the document");
            if request.is_some() {
                assert!(
                    operation["requestBody"]["content"]["application/json"]["example"].is_object(),
                    "{method} {path}: no request example"
                );
            }
            assert!(
                operation["responses"][status]["content"]["application/json"]["example"].is_object(),
                "{method} {path}: no {status} example"
            );
        }
    }
}
