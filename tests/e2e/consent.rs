//! Kanta informing, disclosure consent and prohibitions (CO), registry use rights, case
//! documents and security incidents (RU), over HTTP on both databases.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

use diesel::prelude::*;
use rekisteri_core::Clock;
use rekisteri_db::schema::{
    case_documents, disclosure_log, registry_notifications, security_events, usage_log, will_service_outbox,
};
use rekisteri_tests::{TestApp, app_test, assert_problem, security_event_count};
use serde_json::{Value, json};

use crate::idempotency::code;

/// The shared [`rekisteri_tests::World`] on 1 December 2026, with a service unit of each
/// provider and an auditor of each registrar.
#[derive(Clone)]
struct World {
    shared: rekisteri_tests::World,
    dpo: String,
    other_dpo: String,
}

impl std::ops::Deref for World {
    type Target = rekisteri_tests::World;

    fn deref(&self) -> &rekisteri_tests::World {
        &self.shared
    }
}

const UNIT_OID: &str = "1.2.246.10.2001.10.1";
const OTHER_UNIT_OID: &str = "1.2.246.10.2002.10.1";
const CASE_ROOT: &str = "1.2.246.10.1001.99";

fn world(app: &TestApp) -> World {
    app.clock.set(time::macros::datetime!(2026-12-01 10:00 UTC));
    let shared = app.world();
    let admin = &shared.admin;
    for (org, oid) in [(&shared.provider, UNIT_OID), (&shared.other_provider, OTHER_UNIT_OID)] {
        let unit = app.post_as(
            admin,
            &format!("/v1/organisations/{org}/service-units"),
            &json!({"oid": oid, "name": "Kotihoito"}),
        );
        assert_eq!(unit.status().as_u16(), 201);
    }
    let (_, dpo) = app.add_user(admin, "tietosuoja@tampere.fi", &shared.registrar, "auditor");
    let (_, other_dpo) = app.add_user(admin, "tietosuoja@nokia.fi", &shared.other_registrar, "auditor");
    World { shared, dpo, other_dpo }
}

impl World {
    /// The organiser sets the right's last day to the day before today: closed at once.
    fn close_at_once(&mut self, app: &TestApp, right: &str) {
        self.travel(app, time::macros::datetime!(2026-12-03 10:00 UTC));
        let closed = app.post_as(
            &self.handler,
            &format!("/v1/registrars/{}/registry-use-rights/{right}/close", self.registrar),
            &json!({"closes_after": "2026-12-02"}),
        );
        assert_eq!(closed.status().as_u16(), 200);
        assert_eq!(closed.json::<Value>().unwrap()["status"], "closed");
    }

    /// Moves the clock to `at` and logs everyone in again (sessions do not last for weeks).
    fn travel(&mut self, app: &TestApp, at: time::OffsetDateTime) {
        app.clock.set(at);
        let login = |email: &str| app.token(email, rekisteri_tests::USER_PASSWORD);
        self.shared.handler = login(rekisteri_tests::world::HANDLER);
        self.dpo = login("tietosuoja@tampere.fi");
        self.shared.provider_staff = login(rekisteri_tests::world::NURSE);
        self.shared.other_provider_staff = login(rekisteri_tests::world::OTHER_NURSE);
    }
}

/// A client of the registrar with one service of `provider` ending `valid_to`; (client, service).
fn client_with_service(
    app: &TestApp,
    w: &World,
    n: u32,
    kind: &str,
    provider: &str,
    valid_to: &str,
) -> (String, String) {
    let response = app.post_as(
        &w.handler,
        &format!("/v1/registrars/{}/clients", w.registrar),
        &json!({"identity_code": code(n), "first_names": "Kaisa", "surname": "Kanta",
            "services": [{"kind": kind, "service_type": "home_care", "service_name": "Kotihoito",
                "quantity": 10, "unit": "visit", "unit_value_cents": 3000, "valid_from": "2026-01-01", "valid_to": valid_to,
                "provider_id": provider}]}),
    );
    assert_eq!(response.status().as_u16(), 201, "creating a test client failed");
    let client: Value = response.json().unwrap();
    (
        client["id"].as_str().unwrap().to_owned(),
        client["services"][0]["id"].as_str().unwrap().to_owned(),
    )
}

fn put_as(app: &TestApp, token: &str, path: &str, body: &Value) -> reqwest::blocking::Response {
    app.client
        .put(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .unwrap()
}

fn client_path(w: &World, client: &str, rest: &str) -> String {
    format!("/v1/registrars/{}/clients/{client}/{rest}", w.registrar)
}

fn inform(app: &TestApp, token: &str, w: &World, client: &str) {
    let response = app.post_as(
        token,
        &client_path(w, client, "kanta-informing"),
        &json!({"method": "in_person"}),
    );
    assert_eq!(response.status().as_u16(), 201);
}

fn set_consent(app: &TestApp, w: &World, client: &str, state: &str) {
    let response = put_as(
        app,
        &w.handler,
        &client_path(w, client, "disclosure-consent"),
        &json!({"state": state}),
    );
    assert_eq!(response.status().as_u16(), 200);
}

fn prohibit(app: &TestApp, w: &World, client: &str, body: Value) -> String {
    let response = app.post_as(&w.handler, &client_path(w, client, "disclosure-prohibitions"), &body);
    assert_eq!(response.status().as_u16(), 201);
    response.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned()
}

fn decide(app: &TestApp, w: &World, body: Value) -> Value {
    let response = app.post_as(
        &w.handler,
        &format!("/v1/registrars/{}/disclosure-decisions", w.registrar),
        &body,
    );
    assert_eq!(response.status().as_u16(), 200);
    response.json().unwrap()
}

fn disclosures(app: &TestApp, registrar: &str) -> Vec<(String, String)> {
    disclosure_log::table
        .filter(disclosure_log::registrar_id.eq(registrar))
        .order(disclosure_log::seq)
        .select((disclosure_log::recipient_id, disclosure_log::legal_basis))
        .load(&mut app.db.conn())
        .unwrap()
}

fn notifications(app: &TestApp, right: &str) -> Vec<String> {
    registry_notifications::table
        .filter(registry_notifications::subject_id.eq(right))
        .order((registry_notifications::created_at, registry_notifications::id))
        .select(registry_notifications::kind)
        .load(&mut app.db.conn())
        .unwrap()
}

/// The organiser's settings and a contract with the provider, joined to Kanta.
fn kanta_ready(app: &TestApp, w: &World, provider: &str) {
    let settings = put_as(
        app,
        &w.handler,
        &format!("/v1/registrars/{}/kanta-settings", w.registrar),
        &json!({"kanta_start_date": "2026-09-01", "case_oid_root": CASE_ROOT}),
    );
    assert_eq!(settings.status().as_u16(), 200);
    let contract = put_as(
        app,
        &w.handler,
        &format!("/v1/registrars/{}/provider-contracts/{provider}", w.registrar),
        &json!({"contract_ref": "HKI-2026-17", "kanta_joined_on": "2026-08-15"}),
    );
    assert_eq!(contract.status().as_u16(), 200);
}

fn open(app: &TestApp, w: &World, client: &str, service: &str, unit: &str) -> reqwest::blocking::Response {
    app.post_as(
        &w.handler,
        &format!("/v1/registrars/{}/registry-use-rights", w.registrar),
        &json!({"client_id": client, "service_id": service, "provider_unit_oid": unit}),
    )
}

fn open_ok(app: &TestApp, w: &World, client: &str, service: &str) -> Value {
    let response = open(app, w, client, service, UNIT_OID);
    assert_eq!(response.status().as_u16(), 201);
    response.json().unwrap()
}

fn documents_path(w: &World, case: &str) -> String {
    format!("/v1/registrars/{}/cases/{case}/documents", w.registrar)
}

fn store(app: &TestApp, token: &str, w: &World, case: &str, title: &str) -> reqwest::blocking::Response {
    app.post_as(
        token,
        &documents_path(w, case),
        &json!({"service_task": "home_care", "document_type": "SOS-KOTIHOITO-KAYNTI", "structure_id": "1.2.246.537.6.12.2002.388",
            "title": title, "content_type": "application/json", "content": {"text": "Käynti tehty"}}),
    )
}

fn run_job(app: &TestApp) -> rekisteri_consent::ClosingReport {
    rekisteri_consent::run_closing(&mut app.db.conn(), app.clock.now()).unwrap()
}

app_test!(fn co_1_consent_and_prohibitions_are_refused_before_informing(app) {
    let w = world(app);
    let (client, _) = client_with_service(app, &w, 1, "purchased_service", &w.provider, "2026-12-31");
    let consent = client_path(&w, &client, "disclosure-consent");
    let body = assert_problem(put_as(app, &w.handler, &consent, &json!({"state": "positive"})), 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "kanta_informing");
    let body = assert_problem(
        app.post_as(&w.handler, &client_path(&w, &client, "disclosure-prohibitions"), &json!({"scope": "all"})),
        422,
        "/problems/business-rule",
    );
    assert_eq!(body["errors"][0]["field"], "kanta_informing");
    let body = assert_problem(
        app.post_as(&w.handler, &client_path(&w, &client, "kanta-informing"), &json!({"method": "by_pigeon"})),
        400,
        "/problems/validation",
    );
    assert_eq!(body["errors"][0]["field"], "method");
    inform(app, &w.handler, &w, &client);
    let informings: Value = app.get_as(&w.handler, &client_path(&w, &client, "kanta-informing")).json().unwrap();
    assert_eq!(informings["items"].as_array().unwrap().len(), 1);
    assert_eq!(informings["items"][0]["method"], "in_person");
    assert_eq!(informings["items"][0]["recorded_by_organisation"], w.registrar.as_str());
    // Another registrar's user does not reach the client (404, logged as denied).
    assert_problem(app.get_as(&w.other_handler, &format!("/v1/registrars/{}/clients/{client}/kanta-informing", w.registrar)), 404, "/problems/not-found");
    let denied: i64 = usage_log::table
        .filter(usage_log::registrar_id.eq(&w.registrar))
        .filter(usage_log::outcome.eq("denied"))
        .count()
        .get_result(&mut app.db.conn())
        .unwrap();
    assert_eq!(denied, 1);
});

app_test!(fn co_2_consent_keeps_full_history_and_its_reads_are_logged(app) {
    let w = world(app);
    let (client, _) = client_with_service(app, &w, 2, "purchased_service", &w.provider, "2026-12-31");
    let consent = client_path(&w, &client, "disclosure-consent");
    let view: Value = app.get_as(&w.handler, &consent).json().unwrap();
    assert_eq!(view["state"], "not_given");
    assert_eq!(view["informed"], false);
    inform(app, &w.handler, &w, &client);
    // Nothing to revoke yet.
    assert_problem(put_as(app, &w.handler, &consent, &json!({"state": "revoked"})), 422, "/problems/business-rule");
    set_consent(app, &w, &client, "positive");
    app.clock.advance(time::Duration::minutes(1));
    set_consent(app, &w, &client, "negative");
    app.clock.advance(time::Duration::minutes(1));
    set_consent(app, &w, &client, "revoked");
    let view: Value = app.get_as(&w.handler, &consent).json().unwrap();
    assert_eq!(view["state"], "revoked");
    assert_eq!(view["informed"], true);
    let states: Vec<&str> = view["history"].as_array().unwrap().iter().map(|c| c["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["revoked", "negative", "positive"]);
    assert!(view["history"].as_array().unwrap().iter().all(|c| c["recorded_by_organisation"] == w.registrar.as_str()));
    assert_problem(put_as(app, &w.handler, &consent, &json!({"state": "not_given"})), 400, "/problems/validation");
    // Every read and change of the consent is a use in the registrar's log.
    let uses: i64 = usage_log::table
        .filter(usage_log::registrar_id.eq(&w.registrar))
        .filter(usage_log::data_kind.eq("disclosure_consent"))
        .filter(usage_log::outcome.eq("used"))
        .count()
        .get_result(&mut app.db.conn())
        .unwrap();
    assert_eq!(uses, 5);
});

app_test!(fn co_3_prohibition_of_one_document_leaves_the_others_disclosable(app) {
    let w = world(app);
    let (client, _) = client_with_service(app, &w, 3, "purchased_service", &w.provider, "2026-12-31");
    inform(app, &w.handler, &w, &client);
    set_consent(app, &w, &client, "positive");
    let ask = |document: &str| {
        decide(app, &w, json!({"client_id": client, "registrar_id": w.registrar, "service_task": "home_care",
            "document_id": document, "recipient": {"kind": "registrar", "id": w.other_registrar}}))
    };
    let allowed = ask("doc-1");
    assert_eq!(allowed["decision"], "allow");
    assert_eq!(allowed["basis"], "consent:positive");
    let one = prohibit(app, &w, &client, json!({"scope": "document", "target": "doc-1"}));
    let denied = ask("doc-1");
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["basis_kind"], "prohibition");
    assert_eq!(denied["prohibition_id"], one.as_str());
    assert_eq!(ask("doc-2")["decision"], "allow");
    // The prohibition outlives consent changes (CO-3).
    set_consent(app, &w, &client, "negative");
    set_consent(app, &w, &client, "positive");
    assert_eq!(ask("doc-1")["decision"], "deny");
    assert_eq!(ask("doc-2")["decision"], "allow");
    // A prohibition of all data wins over the positive consent, until revoked.
    app.clock.advance(time::Duration::minutes(1));
    let all = prohibit(app, &w, &client, json!({"scope": "all"}));
    assert_eq!(ask("doc-2")["basis"], format!("prohibition:all:{all}"));
    let revoke = format!("{}/{all}/revoke", client_path(&w, &client, "disclosure-prohibitions"));
    assert_eq!(app.post_as(&w.handler, &revoke, &json!({})).status().as_u16(), 200);
    assert_problem(app.post_as(&w.handler, &revoke, &json!({})), 422, "/problems/business-rule");
    assert_eq!(ask("doc-2")["decision"], "allow");
    let list: Value = app.get_as(&w.handler, &client_path(&w, &client, "disclosure-prohibitions")).json().unwrap();
    let in_force: Vec<bool> = list["items"].as_array().unwrap().iter().map(|p| p["in_force"].as_bool().unwrap()).collect();
    assert_eq!(in_force, [true, false]);
    // A service task's and a registrar's prohibitions.
    app.clock.advance(time::Duration::minutes(1));
    prohibit(app, &w, &client, json!({"scope": "service_task", "target": "family_work"}));
    let task = decide(app, &w, json!({"client_id": client, "registrar_id": w.registrar, "service_task": "family_work",
        "recipient": {"kind": "registrar", "id": w.other_registrar}}));
    assert_eq!(task["decision"], "deny");
    let body = assert_problem(
        app.post_as(&w.handler, &client_path(&w, &client, "disclosure-prohibitions"), &json!({"scope": "registrar"})),
        422,
        "/problems/business-rule",
    );
    assert_eq!(body["errors"][0]["field"], "target");
    // Every allow is a disclosure-log entry with its basis; denials are not disclosures.
    let logged = disclosures(app, &w.registrar);
    assert_eq!(logged.len(), 4);
    assert!(logged.iter().all(|(to, basis)| to == &w.other_registrar && basis == "consent:positive"));
});

app_test!(fn co_5_organiser_exception_only_for_the_provider_holding_the_open_right(app) {
    let mut w = world(app);
    let (client, service) = client_with_service(app, &w, 4, "purchased_service", &w.provider, "2026-12-18");
    kanta_ready(app, &w, &w.provider);
    let right = open_ok(app, &w, &client, &service);
    let case = right["case_oid"].as_str().unwrap().to_owned();
    inform(app, &w.handler, &w, &client);
    prohibit(app, &w, &client, json!({"scope": "all"}));
    let ask = |w: &World, recipient: &str, case: &str| {
        decide(app, w, json!({"client_id": client, "registrar_id": w.registrar, "case_oid": case,
            "recipient": {"kind": "provider", "id": recipient}}))
    };
    let allowed = ask(&w, &w.provider, &case);
    assert_eq!(allowed["decision"], "allow");
    assert_eq!(allowed["basis_kind"], "organiser_exception");
    assert_eq!(allowed["registry_use_right_id"], right["id"]);
    // Another provider, or another case, gets nothing: the prohibition stands.
    assert_eq!(ask(&w, &w.other_provider, &case)["decision"], "deny");
    assert_eq!(ask(&w, &w.provider, "1.2.246.10.1001.99.999")["decision"], "deny");
    assert_eq!(disclosures(app, &w.registrar), vec![(w.provider.clone(), format!("organiser_exception:{}", right["id"].as_str().unwrap()))]);
    // Once the right has closed, the exception is gone.
    w.travel(app, time::macros::datetime!(2027-01-02 10:00 UTC));
    assert_eq!(ask(&w, &w.provider, &case)["decision"], "deny");
});

app_test!(fn ru_1_opening_is_refused_naming_the_missing_condition(app) {
    let w = world(app);
    let (client, service) = client_with_service(app, &w, 5, "service_voucher", &w.provider, "2026-12-18");
    let refused = |unit: &str, field: &str| {
        let body = assert_problem(open(app, &w, &client, &service, unit), 422, "/problems/business-rule");
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    };
    refused(UNIT_OID, "voucher_provider_choice");
    let choice = app.post_as(&w.provider_staff, &format!("/v1/registrars/{}/voucher-provider-choices", w.registrar),
        &json!({"client_id": client, "service_id": service, "provider_unit_oid": UNIT_OID}));
    assert_eq!(choice.status().as_u16(), 201);
    // Only the chosen provider reports the choice.
    assert_problem(app.post_as(&w.other_provider_staff, &format!("/v1/registrars/{}/voucher-provider-choices", w.registrar),
        &json!({"client_id": client, "service_id": service, "provider_unit_oid": OTHER_UNIT_OID})), 404, "/problems/not-found");
    refused(UNIT_OID, "contract");
    let contract = format!("/v1/registrars/{}/provider-contracts/{}", w.registrar, w.provider);
    assert_eq!(put_as(app, &w.handler, &contract, &json!({"contract_ref": "HKI-2026-17"})).status().as_u16(), 200);
    refused(UNIT_OID, "provider_kanta_joining");
    assert_eq!(put_as(app, &w.handler, &contract, &json!({"contract_ref": "HKI-2026-17", "kanta_joined_on": "2026-08-15"})).status().as_u16(), 200);
    refused(OTHER_UNIT_OID, "provider_unit_oid");
    refused(UNIT_OID, "kanta_start_date");
    let settings = format!("/v1/registrars/{}/kanta-settings", w.registrar);
    assert_eq!(put_as(app, &w.handler, &settings, &json!({"kanta_start_date": "2027-01-01", "case_oid_root": CASE_ROOT})).status().as_u16(), 200);
    refused(UNIT_OID, "opened_on");
    assert_eq!(put_as(app, &w.handler, &settings, &json!({"kanta_start_date": "2026-09-01", "case_oid_root": CASE_ROOT})).status().as_u16(), 200);
    // Providers and other registrars do not open rights.
    assert_problem(app.post_as(&w.provider_staff, &format!("/v1/registrars/{}/registry-use-rights", w.registrar),
        &json!({"client_id": client, "service_id": service, "provider_unit_oid": UNIT_OID})), 404, "/problems/not-found");
    let response = open(app, &w, &client, &service, UNIT_OID);
    assert_eq!(response.status().as_u16(), 201);
    let right: Value = response.json().unwrap();
    assert_eq!(right["case_oid"], format!("{CASE_ROOT}.1"));
    assert_eq!(right["status"], "open");
    assert_eq!(right["opened_on"], "2026-12-01");
    assert_eq!(right["service_ended_on"], "2026-12-18");
    assert_eq!(right["closes_after"], "2026-12-31");
    assert_eq!(right["identity_code"], code(5));
    // One open right per service and provider.
    refused(UNIT_OID, "service_id");
    // The delivery: the provider is notified and reads the identity code and case OID.
    let id = right["id"].as_str().unwrap();
    assert_eq!(notifications(app, id), ["registry_use_right_opened"]);
    let delivered: Value = app.get_as(&w.provider_staff, &format!("/v1/registrars/{}/registry-use-rights/{id}", w.registrar)).json().unwrap();
    assert_eq!(delivered["identity_code"], code(5));
    assert_eq!(delivered["case_oid"], format!("{CASE_ROOT}.1"));
    assert_problem(app.get_as(&w.other_provider_staff, &format!("/v1/registrars/{}/registry-use-rights/{id}", w.registrar)), 404, "/problems/not-found");
    // A service that ended more than 7 working days ago gets no right (19 November + 7 = 30 November).
    let (ended_client, ended_service) = client_with_service(app, &w, 17, "purchased_service", &w.provider, "2026-11-19");
    let body = assert_problem(open(app, &w, &ended_client, &ended_service, UNIT_OID), 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "service_id");
    // The next case gets the next number under the root (refused openings used none).
    let (client2, service2) = client_with_service(app, &w, 6, "purchased_service", &w.provider, "2026-12-18");
    assert_eq!(open_ok(app, &w, &client2, &service2)["case_oid"], format!("{CASE_ROOT}.2"));
    let list: Value = app.get_as(&w.provider_staff, &format!("/v1/registrars/{}/registry-use-rights", w.registrar)).json().unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert!(list["items"].as_array().unwrap().iter().all(|r| r["unit_oid_changed"] == false && r["identity_code"].is_null()));
    // The provider reports another service-unit OID for the voucher client: the open right is
    // flagged for the organiser (source 003 §2.2).
    let changed = app.post_as(&w.provider_staff, &format!("/v1/registrars/{}/voucher-provider-choices", w.registrar),
        &json!({"client_id": client, "service_id": service, "provider_unit_oid": "1.2.246.10.2001.10.2"}));
    assert_eq!(changed.status().as_u16(), 201);
    let flagged: Value = app.get_as(&w.handler, &format!("/v1/registrars/{}/registry-use-rights/{id}", w.registrar)).json().unwrap();
    assert_eq!(flagged["unit_oid_changed"], true);
    // A provider with neither a service nor a contract of the registrar has no standing there.
    assert_problem(app.get_as(&w.other_provider_staff, &format!("/v1/registrars/{}/registry-use-rights", w.registrar)), 404, "/problems/not-found");
});

app_test!(fn ru_5_service_ending_friday_18_december_keeps_the_right_through_31_december(app) {
    let mut w = world(app);
    let (client, service) = client_with_service(app, &w, 7, "purchased_service", &w.provider, "2026-12-18");
    kanta_ready(app, &w, &w.provider);
    let right = open_ok(app, &w, &client, &service);
    let id = right["id"].as_str().unwrap().to_owned();
    let case = right["case_oid"].as_str().unwrap().to_owned();
    assert_eq!(right["closes_after"], "2026-12-31");
    assert_eq!(store(app, &w.provider_staff, &w, &case, "Käynti 1").status().as_u16(), 201);
    // Wednesday 23 December: four working days left, no warning yet (3 by default).
    w.travel(app, time::macros::datetime!(2026-12-23 08:00 UTC));
    assert!(run_job(app).warned.is_empty());
    // Monday 28 December: three working days before; warned once.
    w.travel(app, time::macros::datetime!(2026-12-28 08:00 UTC));
    assert_eq!(run_job(app).warned, vec![id.clone()]);
    assert!(run_job(app).warned.is_empty());
    assert_eq!(notifications(app, &id), ["registry_use_right_opened", "registry_use_right_closing_soon"]);
    let told: Value = app.get_as(&w.provider_staff, "/v1/registry-notifications").json().unwrap();
    let kinds: Vec<&str> = told["items"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["registry_use_right_opened", "registry_use_right_closing_soon"]);
    assert_eq!(told["items"][1]["details"]["closes_after"], "2026-12-31");
    assert_eq!(told["items"][1]["details"]["case_oid"], case.as_str());
    let none: Value = app.get_as(&w.other_provider_staff, "/v1/registry-notifications").json().unwrap();
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    // After the service ended the provider still reads its right, identity code included.
    let right_path = format!("/v1/registrars/{}/registry-use-rights/{id}", w.registrar);
    let read: Value = app.get_as(&w.provider_staff, &right_path).json().unwrap();
    assert_eq!(read["identity_code"], code(7));
    // Thursday 31 December 23:59:59 in Helsinki: still usable.
    w.travel(app, time::macros::datetime!(2026-12-31 21:59:59 UTC));
    assert!(run_job(app).closed.is_empty());
    assert_eq!(store(app, &w.provider_staff, &w, &case, "Käynti 2").status().as_u16(), 201);
    assert_eq!(app.get_as(&w.provider_staff, &documents_path(&w, &case)).status().as_u16(), 200);
    // 1 January 2027 00:00 in Helsinki: closed, even before the job runs.
    w.travel(app, time::macros::datetime!(2026-12-31 22:00 UTC));
    assert_problem(store(app, &w.provider_staff, &w, &case, "Käynti 3"), 403, "/problems/forbidden");
    assert_problem(app.get_as(&w.provider_staff, &documents_path(&w, &case)), 403, "/problems/forbidden");
    assert_eq!(security_event_count(app, "cross_register_store_refused"), 1);
    let report = run_job(app);
    assert_eq!(report.closed, vec![id.clone()]);
    assert_eq!(report.marked_for_destruction, 2);
    assert_eq!(report.unconfirmed_local_copies.len(), 2);
    let read: Value = app.get_as(&w.handler, &right_path).json().unwrap();
    assert_eq!(read["status"], "closed");
    assert_eq!(read["identity_code"], code(7));
    // The provider sees its right closed, without the identity code any more.
    let read: Value = app.get_as(&w.provider_staff, &right_path).json().unwrap();
    assert_eq!(read["status"], "closed");
    assert!(read["identity_code"].is_null());
    // The organiser still reads the documents of its register; their local copies are marked.
    let docs: Value = app.get_as(&w.handler, &documents_path(&w, &case)).json().unwrap();
    let copies: Vec<&str> = docs["items"].as_array().unwrap().iter().map(|d| d["local_copy"].as_str().unwrap()).collect();
    assert_eq!(copies, ["marked_for_destruction", "marked_for_destruction"]);
    assert_eq!(docs["items"][0]["content"]["text"], "Käynti tehty");
    // Stored content is ciphertext.
    let stored: Vec<Vec<u8>> = case_documents::table.select(case_documents::content).load(&mut app.db.conn()).unwrap();
    assert!(stored.iter().all(|c| !String::from_utf8_lossy(c).contains("Käynti")));
});

app_test!(fn ru_5_closing_date_skips_easter_and_midsummer(app) {
    let w = world(app);
    kanta_ready(app, &w, &w.provider);
    let (easter_client, easter_service) = client_with_service(app, &w, 8, "purchased_service", &w.provider, "2027-03-24");
    assert_eq!(open_ok(app, &w, &easter_client, &easter_service)["closes_after"], "2027-04-06");
    let (midsummer_client, midsummer_service) = client_with_service(app, &w, 9, "purchased_service", &w.provider, "2027-06-21");
    let right = open_ok(app, &w, &midsummer_client, &midsummer_service);
    assert_eq!(right["closes_after"], "2027-07-01");
    // A service closed early moves the closing with it (the job follows the service end).
    let case = right["case_oid"].as_str().unwrap().to_owned();
    let closed = app.patch_as(&w.handler, &format!("/v1/registrars/{}/services/{midsummer_service}", w.registrar),
        &json!({"status": "closed", "closed_on": "2026-12-01"}));
    assert_eq!(closed.status().as_u16(), 200);
    run_job(app);
    let read: Value = app.get_as(&w.handler, &format!("/v1/registrars/{}/registry-use-rights/{}", w.registrar, right["id"].as_str().unwrap())).json().unwrap();
    assert_eq!(read["service_ended_on"], "2026-12-01");
    assert_eq!(read["closes_after"], "2026-12-10");
    assert_eq!(store(app, &w.provider_staff, &w, &case, "Käynti").status().as_u16(), 201);
});

app_test!(fn ru_6_a_right_reopened_and_closed_again(app) {
    let mut w = world(app);
    let (client, service) = client_with_service(app, &w, 10, "purchased_service", &w.provider, "2026-12-18");
    kanta_ready(app, &w, &w.provider);
    let right = open_ok(app, &w, &client, &service);
    let id = right["id"].as_str().unwrap().to_owned();
    let case = right["case_oid"].as_str().unwrap().to_owned();
    let path = format!("/v1/registrars/{}/registry-use-rights/{id}", w.registrar);
    // Not closed: nothing to reopen.
    assert_problem(app.post_as(&w.handler, &format!("{path}/reopen"), &json!({"reason": "Korjaus", "closes_after": "2027-01-15"})), 422, "/problems/business-rule");
    // The organiser sets today as the last day, twice; the provider is notified each time.
    app.clock.advance(time::Duration::minutes(1));
    let closed: Value = app.post_as(&w.handler, &format!("{path}/close"), &json!({"closes_after": "2026-12-01"})).json().unwrap();
    assert_eq!(closed["status"], "open");
    app.clock.advance(time::Duration::minutes(1));
    let closed: Value = app.post_as(&w.handler, &format!("{path}/close"), &json!({"closes_after": "2026-12-01"})).json().unwrap();
    assert_eq!(closed["closing_set_by_organiser"], true);
    w.travel(app, time::macros::datetime!(2026-12-02 10:00 UTC));
    assert_problem(store(app, &w.provider_staff, &w, &case, "Myöhässä"), 403, "/problems/forbidden");
    assert_eq!(run_job(app).closed, vec![id.clone()]);
    let body = assert_problem(app.post_as(&w.handler, &format!("{path}/reopen"), &json!({"reason": " ", "closes_after": "2027-01-15"})), 400, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "reason");
    let reopened: Value = app.post_as(&w.handler, &format!("{path}/reopen"), &json!({"reason": "Kirjauksen korjaus", "closes_after": "2026-12-04"})).json().unwrap();
    assert_eq!(reopened["status"], "reopened");
    assert_eq!(reopened["reopen_reason"], "Kirjauksen korjaus");
    assert_eq!(store(app, &w.provider_staff, &w, &case, "Korjaus").status().as_u16(), 201);
    // The reopened right closes again after its date, by the job.
    w.travel(app, time::macros::datetime!(2026-12-04 22:00 UTC));
    assert_problem(store(app, &w.provider_staff, &w, &case, "Liian myöhään"), 403, "/problems/forbidden");
    assert_eq!(run_job(app).closed, vec![id.clone()]);
    let read: Value = app.get_as(&w.handler, &path).json().unwrap();
    assert_eq!(read["status"], "closed");
    assert_eq!(
        notifications(app, &id),
        [
            "registry_use_right_opened",
            "registry_use_right_closing_date_changed",
            "registry_use_right_closing_date_changed",
            "registry_use_right_reopened"
        ]
    );
});

app_test!(fn ru_3_a_second_provider_is_never_covered_by_another_providers_right(app) {
    let w = world(app);
    let (client, service) = client_with_service(app, &w, 11, "purchased_service", &w.provider, "2026-12-18");
    kanta_ready(app, &w, &w.provider);
    kanta_ready(app, &w, &w.other_provider);
    let case = open_ok(app, &w, &client, &service)["case_oid"].as_str().unwrap().to_owned();
    assert_problem(store(app, &w.other_provider_staff, &w, &case, "Väärä rekisteri"), 403, "/problems/forbidden");
    assert_problem(app.get_as(&w.other_provider_staff, &documents_path(&w, &case)), 403, "/problems/forbidden");
    assert_eq!(security_event_count(app, "cross_register_store_refused"), 1);
    assert_eq!(security_event_count(app, "case_read_refused"), 1);
    // Nor does a right in one register cover another registrar's register, which to a provider
    // without standing there looks like no registrar at all (AX-4).
    let other = format!("/v1/registrars/{}/cases/{case}/documents", w.other_registrar);
    assert_problem(app.post_as(&w.provider_staff, &other, &json!({"service_task": "home_care", "document_type": "X",
        "structure_id": "1", "title": "T", "content_type": "application/json", "content": {}})), 404, "/problems/not-found");
    assert_eq!(store(app, &w.provider_staff, &w, &case, "Oikea rekisteri").status().as_u16(), 201);
    let stored: i64 = case_documents::table.count().get_result(&mut app.db.conn()).unwrap();
    assert_eq!(stored, 1);
    // Every document read is a use with the registry use right as its basis.
    let docs: Value = app.get_as(&w.provider_staff, &documents_path(&w, &case)).json().unwrap();
    let id = docs["items"][0]["id"].as_str().unwrap();
    let bases: Vec<String> = usage_log::table
        .filter(usage_log::data_id.eq(id))
        .select(usage_log::access_basis)
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(bases, ["registry_use_right", "registry_use_right"]);
});

app_test!(fn ru_4_security_incident_runs_the_72_hour_clock_from_discovery(app) {
    let w = world(app);
    kanta_ready(app, &w, &w.provider);
    let (client, service) = client_with_service(app, &w, 16, "purchased_service", &w.provider, "2026-12-18");
    let case = open_ok(app, &w, &client, &service)["case_oid"].as_str().unwrap().to_owned();
    let misplaced: Value = store(app, &w.provider_staff, &w, &case, "Toisen asiakkaan käynti").json().unwrap();
    let path = format!("/v1/registrars/{}/security-incidents", w.registrar);
    let body = assert_problem(app.post_as(&w.provider_staff, &path, &json!({"description": "x", "document_id": "doc-9"})), 400, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "document_id");
    let response = app.post_as(&w.provider_staff, &path, &json!({"description": "Asiakirja väärässä rekisterissä",
        "discovered_at": "2026-12-01T08:30:00Z", "document_id": misplaced["id"]}));
    assert_eq!(response.status().as_u16(), 201);
    let incident: Value = response.json().unwrap();
    assert_eq!(incident["state"], "suspected");
    assert_eq!(incident["source"], "misplaced_document");
    assert_eq!(incident["notify_by"], "2026-12-04T08:30:00.000000Z");
    // A provider without a contract, and another registrar's DPO, do not reach the register.
    assert_problem(app.post_as(&w.other_provider_staff, &path, &json!({"description": "x"})), 404, "/problems/not-found");
    assert_problem(app.get_as(&w.other_dpo, &path), 404, "/problems/not-found");
    assert_problem(app.get_as(&w.handler, &path), 403, "/problems/forbidden");
    let one = format!("{path}/{}", incident["id"].as_str().unwrap());
    assert_problem(app.patch_as(&w.dpo, &one, &json!({"state": "authority_notified"})), 422, "/problems/business-rule");
    assert_problem(app.patch_as(&w.dpo, &one, &json!({"state": "assessed"})), 422, "/problems/business-rule");
    let assessed: Value = app.patch_as(&w.dpo, &one, &json!({"state": "assessed", "assessment": "Yksi asiakirja"})).json().unwrap();
    assert_eq!(assessed["state"], "assessed");
    let notified: Value = app.patch_as(&w.dpo, &one, &json!({"state": "authority_notified"})).json().unwrap();
    assert_eq!(notified["state"], "authority_notified");
    assert!(notified["notified_at"].is_string());
    let list: Value = app.get_as(&w.dpo, &path).json().unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(notifications(app, incident["id"].as_str().unwrap()), ["security_incident_suspected"]);
});

/// A stand-in for the national will service: answers 503 to the first `failures` requests,
/// then 200; records the `Idempotency-Key` of every request it accepted.
fn stub_will_service(failures: usize) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/recordings", listener.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let seen = accepted.clone();
    std::thread::spawn(move || {
        for (served, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            let mut key = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("idempotency-key:") {
                    key = line["idempotency-key:".len()..].trim().to_owned();
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let status = if served < failures {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            if served >= failures {
                seen.lock().unwrap().push(key);
            }
            let _ = stream
                .write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes());
        }
    });
    (url, accepted)
}

app_test!(fn co_6_will_service_outbox_delivers_every_item_once_after_the_endpoint_recovers(app) {
    let w = world(app);
    let (client, _) = client_with_service(app, &w, 12, "purchased_service", &w.provider, "2026-12-31");
    // Recorded at the registrar: not for the will service.
    inform(app, &w.handler, &w, &client);
    // Recorded at the provider: queued.
    inform(app, &w.provider_staff, &w, &client);
    let consent = put_as(app, &w.provider_staff, &client_path(&w, &client, "disclosure-consent"), &json!({"state": "positive"}));
    assert_eq!(consent.status().as_u16(), 200);
    let prohibition = app.post_as(&w.provider_staff, &client_path(&w, &client, "disclosure-prohibitions"), &json!({"scope": "document", "target": "doc-1"}));
    assert_eq!(prohibition.status().as_u16(), 201);
    let queued: Vec<String> = will_service_outbox::table
        .order((will_service_outbox::created_at, will_service_outbox::id))
        .select(will_service_outbox::id)
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(queued.len(), 3);
    let (url, accepted) = stub_will_service(4);
    let will = rekisteri_consent::WillService::new(url).unwrap();
    let register = rekisteri_consent::ConsentRegister {
        clients: rekisteri_clients::ClientRegister { keyring: app.keyring.clone(), audit: app.audit.clone() },
        outbox_wakeup: None,
    };
    let forward = || rekisteri_consent::forward_due(&mut app.db.conn(), &register, &will, app.clock.now()).unwrap();
    // Down: all three fail and wait 30 s; nothing is due before that.
    let first = forward();
    assert_eq!((first.delivered, first.failed, first.waiting), (0, 3, 3));
    assert_eq!(forward().failed, 0);
    // One more failure, then the endpoint recovers.
    app.clock.advance(time::Duration::seconds(30));
    let second = forward();
    assert_eq!((second.delivered, second.failed, second.waiting), (2, 1, 1));
    app.clock.advance(time::Duration::seconds(30));
    assert_eq!(forward().delivered, 0);
    app.clock.advance(time::Duration::seconds(30));
    let third = forward();
    assert_eq!((third.delivered, third.failed, third.waiting), (1, 0, 0));
    assert_eq!(forward(), rekisteri_consent::ForwardReport::default());
    let mut delivered = accepted.lock().unwrap().clone();
    delivered.sort();
    let mut expected = queued.clone();
    expected.sort();
    assert_eq!(delivered, expected);
    let logged = disclosures(app, &w.registrar);
    assert_eq!(logged.iter().filter(|(_, basis)| basis == "will_service_recording").count(), 3);
    // The payload (with the identity code) is sealed at rest.
    let payloads: Vec<Vec<u8>> = will_service_outbox::table.select(will_service_outbox::payload).load(&mut app.db.conn()).unwrap();
    assert!(payloads.iter().all(|p| !String::from_utf8_lossy(p).contains(&code(12))));
});

rekisteri_tests::database_test!(
    /// CO-6 "without delay", PL-8 "outbox on commit": with the real scheduler beside the server, an
    /// item a request queues reaches the will service with no `jobs run` and no scheduled run (the
    /// test's clock stands still, so the 10-second schedule never comes due): the request's commit
    /// wakes the `outbox` job, which still runs under its lease and is logged as a run.
    fn co_6_pl_8_an_item_queued_by_a_request_reaches_the_will_service_without_a_jobs_run(db) {
        use rekisteri_tests::TestAppOptions;

        let (url, accepted) = stub_will_service(0);
        let app = &TestApp::start_with(
            db,
            TestAppOptions {
                will_service: Some(url),
                ..TestAppOptions::default()
            },
        );
        let w = world(app);
        let (client, _) = client_with_service(app, &w, 15, "purchased_service", &w.provider, "2026-12-31");
        let runs = || -> Vec<String> {
            security_events::table
                .filter(security_events::event_type.eq("job_run"))
                .select(security_events::details)
                .load(&mut app.db.conn())
                .unwrap()
        };
        let wait_for = |what: &str, done: &dyn Fn() -> bool| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while !done() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{what} did not happen within 20 s"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        };
        // Recorded at the registrar: nothing queued, nothing woken.
        inform(app, &w.handler, &w, &client);
        // Recorded at the provider: queued, and on its way once the request has committed.
        inform(app, &w.provider_staff, &w, &client);
        let queued: Vec<String> = will_service_outbox::table
            .select(will_service_outbox::id)
            .load(&mut app.db.conn())
            .unwrap();
        assert_eq!(queued.len(), 1);
        wait_for("delivery to the will service", &|| !accepted.lock().unwrap().is_empty());
        wait_for("the run's security event", &|| !runs().is_empty());
        assert_eq!(
            *accepted.lock().unwrap(),
            queued,
            "delivered once, with its id as Idempotency-Key"
        );
        let state: String = will_service_outbox::table
            .select(will_service_outbox::state)
            .first(&mut app.db.conn())
            .unwrap();
        assert_eq!(state, "delivered");
        let runs: Vec<Value> = runs().iter().map(|d| serde_json::from_str(d).unwrap()).collect();
        assert_eq!(
            runs.len(),
            1,
            "one woken run; the registrar's record woke nothing: {runs:?}"
        );
        assert_eq!(runs[0]["job"], "outbox");
        assert_eq!(runs[0]["trigger"], "wake");
        assert_eq!(runs[0]["outcome"], "ok");
        assert_eq!(runs[0]["counts"]["delivered"], 1);
        assert_eq!(
            disclosures(app, &w.registrar)
                .iter()
                .filter(|(_, basis)| basis == "will_service_recording")
                .count(),
            1
        );
    }
);

app_test!(fn ru_2_provider_reads_and_stores_only_while_its_right_is_open(app) {
    let mut w = world(app);
    let (client, service) = client_with_service(app, &w, 13, "purchased_service", &w.provider, "2026-12-18");
    kanta_ready(app, &w, &w.provider);
    let right = open_ok(app, &w, &client, &service);
    let case = right["case_oid"].as_str().unwrap().to_owned();
    let empty: Value = app.get_as(&w.provider_staff, &documents_path(&w, &case)).json().unwrap();
    assert_eq!(empty["items"].as_array().unwrap().len(), 0);
    assert_eq!(store(app, &w.provider_staff, &w, &case, "Arvio").status().as_u16(), 201);
    let docs: Value = app.get_as(&w.provider_staff, &documents_path(&w, &case)).json().unwrap();
    assert_eq!(docs["items"][0]["title"], "Arvio");
    // The organiser closes the right at once (an end before today, after the opening day).
    w.close_at_once(app, right["id"].as_str().unwrap());
    assert_problem(store(app, &w.provider_staff, &w, &case, "Myöhään"), 403, "/problems/forbidden");
    assert_problem(app.get_as(&w.provider_staff, &documents_path(&w, &case)), 403, "/problems/forbidden");
    // The organiser's register still holds the document.
    let docs: Value = app.get_as(&w.handler, &documents_path(&w, &case)).json().unwrap();
    assert_eq!(docs["items"].as_array().unwrap().len(), 1);
});

app_test!(fn ru_7_local_copies_are_marked_and_unconfirmed_ones_reported(app) {
    let mut w = world(app);
    let (client, service) = client_with_service(app, &w, 14, "purchased_service", &w.provider, "2026-12-02");
    kanta_ready(app, &w, &w.provider);
    let case = open_ok(app, &w, &client, &service)["case_oid"].as_str().unwrap().to_owned();
    let first: Value = store(app, &w.provider_staff, &w, &case, "Yksi").json().unwrap();
    app.clock.advance(time::Duration::minutes(1));
    let second: Value = store(app, &w.provider_staff, &w, &case, "Kaksi").json().unwrap();
    assert_eq!(first["local_copy"], "kept");
    let confirm = |w: &World, doc: &Value| {
        app.post_as(&w.provider_staff, &format!("{}/{}/local-copy-destroyed", documents_path(w, &case), doc["id"].as_str().unwrap()), &json!({}))
    };
    // Not marked while the right is open.
    assert_problem(confirm(&w, &first), 422, "/problems/business-rule");
    // 2 December + 7 working days = 11 December; closed from the 12th.
    w.travel(app, time::macros::datetime!(2026-12-12 08:00 UTC));
    let report = run_job(app);
    assert_eq!(report.marked_for_destruction, 2);
    assert_eq!(report.unconfirmed_local_copies.len(), 2);
    assert_eq!(confirm(&w, &first).status().as_u16(), 204);
    // Another provider cannot confirm for it.
    assert_problem(confirm(&World { shared: rekisteri_tests::World { provider_staff: w.other_provider_staff.clone(), ..w.shared.clone() }, ..w.clone() }, &second), 404, "/problems/not-found");
    let report = run_job(app);
    assert_eq!(report.marked_for_destruction, 0);
    assert_eq!(report.unconfirmed_local_copies, vec![(w.registrar.clone(), case.clone(), second["id"].as_str().unwrap().to_owned())]);
});

app_test!(fn ru_8_documents_carry_their_sosmeta_type_and_are_encrypted_at_rest(app) {
    let w = world(app);
    let (client, service) = client_with_service(app, &w, 15, "purchased_service", &w.provider, "2026-12-18");
    kanta_ready(app, &w, &w.provider);
    let case = open_ok(app, &w, &client, &service)["case_oid"].as_str().unwrap().to_owned();
    // The organiser lists the types that need the professional's signature.
    let settings = put_as(app, &w.handler, &format!("/v1/registrars/{}/kanta-settings", w.registrar),
        &json!({"kanta_start_date": "2026-09-01", "case_oid_root": CASE_ROOT, "signed_document_types": ["SOS-PALVELUSUUNNITELMA"]}));
    assert_eq!(settings.json::<Value>().unwrap()["signed_document_types"], json!(["SOS-PALVELUSUUNNITELMA"]));
    let unsigned = app.post_as(&w.provider_staff, &documents_path(&w, &case), &json!({
        "service_task": "home_care", "document_type": "SOS-PALVELUSUUNNITELMA", "structure_id": "1.2.246.537.6.12.2002.126",
        "title": "Palvelusuunnitelma", "content_type": "application/json", "content": {}}));
    let body = assert_problem(unsigned, 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "signature");
    let response = app.post_as(&w.provider_staff, &documents_path(&w, &case), &json!({
        "service_task": "home_care", "document_type": "SOS-PALVELUSUUNNITELMA", "structure_id": "1.2.246.537.6.12.2002.126",
        "title": "Palvelusuunnitelma", "document_time": "2026-12-01T09:00:00Z", "signature": "MEUCIQDallekirjoitus",
        "content_type": "application/json", "content": {"goals": ["Kotona asuminen"]}, "author_unit_oid": UNIT_OID}));
    assert_eq!(response.status().as_u16(), 201);
    let stored: Value = response.json().unwrap();
    assert_eq!(stored["case_oid"], case.as_str());
    assert_eq!(stored["registrar_id"], w.registrar.as_str());
    assert_eq!(stored["client_id"], client.as_str());
    assert_eq!(stored["provider_id"], w.provider.as_str());
    assert_eq!(stored["author_unit_oid"], UNIT_OID);
    assert_eq!(stored["document_type"], "SOS-PALVELUSUUNNITELMA");
    assert_eq!(stored["structure_id"], "1.2.246.537.6.12.2002.126");
    assert_eq!(stored["document_time"], "2026-12-01T09:00:00.000000Z");
    assert_eq!(stored["signature"], "MEUCIQDallekirjoitus");
    let read: Value = app.get_as(&w.handler, &documents_path(&w, &case)).json().unwrap();
    assert_eq!(read["items"][0], stored);
    type Sealed = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);
    let rows: Vec<Sealed> = case_documents::table
        .select((case_documents::title, case_documents::content, case_documents::signature))
        .load(&mut app.db.conn())
        .unwrap();
    let (title, content, signature) = &rows[0];
    assert!(!String::from_utf8_lossy(title).contains("Palvelusuunnitelma"));
    assert!(!String::from_utf8_lossy(content).contains("Kotona"));
    assert!(!String::from_utf8_lossy(signature.as_ref().unwrap()).contains("allekirjoitus"));
    // A prohibition of the document's service task covers it when asked by document alone.
    inform(app, &w.handler, &w, &client);
    set_consent(app, &w, &client, "positive");
    let ask = || {
        decide(app, &w, json!({"client_id": client, "registrar_id": w.registrar, "document_id": stored["id"],
            "recipient": {"kind": "registrar", "id": w.other_registrar}}))
    };
    assert_eq!(ask()["decision"], "allow");
    prohibit(app, &w, &client, json!({"scope": "service_task", "target": "home_care"}));
    assert_eq!(ask()["decision"], "deny");
    for field in ["document_type", "structure_id", "title", "service_task"] {
        let mut body = json!({"service_task": "home_care", "document_type": "X", "structure_id": "1", "title": "T",
            "content_type": "application/json", "content": {}});
        body[field] = json!(" ");
        let problem = assert_problem(app.post_as(&w.provider_staff, &documents_path(&w, &case), &body), 400, "/problems/validation");
        assert_eq!(problem["errors"][0]["field"], field);
    }
});

/// The organiser's report of its contracted providers not (yet) joined to Kanta.
fn kanta_joining_report(app: &TestApp, token: &str, w: &World) -> reqwest::blocking::Response {
    app.get_as(token, &format!("/v1/registrars/{}/kanta-joining-report", w.registrar))
}

app_test!(fn ru_1_an_exempt_support_service_provider_gets_no_right_and_is_never_reported_missing_kanta_joining(app) {
    let w = world(app);
    let settings = put_as(app, &w.handler, &format!("/v1/registrars/{}/kanta-settings", w.registrar),
        &json!({"kanta_start_date": "2026-09-01", "case_oid_root": CASE_ROOT}));
    assert_eq!(settings.status().as_u16(), 200);
    let contract = format!("/v1/registrars/{}/provider-contracts/{}", w.registrar, w.provider);
    let other_contract = format!("/v1/registrars/{}/provider-contracts/{}", w.registrar, w.other_provider);
    let exempt = json!({"contract_ref": "HKI-2026-17", "kanta_exemption": ["meals", "cleaning"]});
    // Only the organiser's staff with the right to manage registry use rights set the exemption:
    // the provider itself and another registrar do not reach the register (404), the
    // organiser's data-protection officer lacks the permission (403).
    assert_problem(put_as(app, &w.provider_staff, &contract, &exempt), 404, "/problems/not-found");
    assert_problem(put_as(app, &w.other_handler, &contract, &exempt), 404, "/problems/not-found");
    let body = assert_problem(put_as(app, &w.dpo, &contract, &exempt), 403, "/problems/forbidden");
    assert!(body["detail"].as_str().unwrap().contains("manage_registry_use_rights"), "{body}");
    // Not a support service of the exemption, an empty list, or exempt and joined at once.
    let body = assert_problem(put_as(app, &w.handler, &contract,
        &json!({"contract_ref": "HKI-2026-17", "kanta_exemption": ["home_care"]})), 400, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "kanta_exemption[0]", "{body}");
    let body = assert_problem(put_as(app, &w.handler, &contract,
        &json!({"contract_ref": "HKI-2026-17", "kanta_exemption": []})), 400, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "kanta_exemption", "{body}");
    let body = assert_problem(put_as(app, &w.handler, &contract,
        &json!({"contract_ref": "HKI-2026-17", "kanta_exemption": ["meals"], "kanta_joined_on": "2026-08-15"})), 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "kanta_exemption", "{body}");
    // Nothing of the refused attempts was stored: no contract, so no report line either.
    let report: Value = kanta_joining_report(app, &w.handler, &w).json().unwrap();
    assert_eq!(report["items"], json!([]));
    // The organiser marks the provider exempt (kept in a canonical order); the other provider
    // has a contract but has not joined.
    let saved = put_as(app, &w.handler, &contract, &exempt);
    assert_eq!(saved.status().as_u16(), 200);
    let saved: Value = saved.json().unwrap();
    assert_eq!(saved["kanta_exemption"], json!(["cleaning", "meals"]));
    assert_eq!(saved["kanta_joined_on"], Value::Null);
    assert_eq!(put_as(app, &w.handler, &other_contract, &json!({"contract_ref": "HKI-2026-18"})).status().as_u16(), 200);
    // The report names the provider that should join, and never the exempt one.
    let report = kanta_joining_report(app, &w.handler, &w);
    assert_eq!(report.status().as_u16(), 200);
    let report: Value = report.json().unwrap();
    assert_eq!(report["as_of"], "2026-12-01");
    assert_eq!(report["items"], json!([{"provider_id": w.other_provider, "contract_ref": "HKI-2026-18", "kanta_joined_on": null}]));
    // A provider joining later than today is still missing today.
    assert_eq!(put_as(app, &w.handler, &other_contract, &json!({"contract_ref": "HKI-2026-18", "kanta_joined_on": "2027-01-01"})).status().as_u16(), 200);
    let report: Value = kanta_joining_report(app, &w.handler, &w).json().unwrap();
    assert_eq!(report["items"], json!([{"provider_id": w.other_provider, "contract_ref": "HKI-2026-18", "kanta_joined_on": "2027-01-01"}]));
    // The report is the organiser's: the providers and another registrar get 404, the DPO 403.
    assert_problem(kanta_joining_report(app, &w.provider_staff, &w), 404, "/problems/not-found");
    assert_problem(kanta_joining_report(app, &w.other_handler, &w), 404, "/problems/not-found");
    assert_problem(kanta_joining_report(app, &w.dpo, &w), 403, "/problems/forbidden");
    // Opening a right for the exempt provider's service is refused, naming the exemption.
    let (client, service) = client_with_service(app, &w, 21, "purchased_service", &w.provider, "2026-12-18");
    let body = assert_problem(open(app, &w, &client, &service, UNIT_OID), 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "provider_kanta_exemption", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("exempt"), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("exempt from joining Kanta"), "{body}");
    // The non-exempt provider that has not joined is refused as before.
    let (other_client, other_service) = client_with_service(app, &w, 22, "purchased_service", &w.other_provider, "2026-12-18");
    let body = assert_problem(open(app, &w, &other_client, &other_service, OTHER_UNIT_OID), 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "provider_kanta_joining", "{body}");
    // Lifting the exemption (the provider joined after all) lets the organiser open the right.
    let lifted: Value = put_as(app, &w.handler, &contract, &json!({"contract_ref": "HKI-2026-17", "kanta_joined_on": "2026-08-15"})).json().unwrap();
    assert_eq!(lifted["kanta_exemption"], Value::Null);
    let right = open(app, &w, &client, &service, UNIT_OID);
    assert_eq!(right.status().as_u16(), 201);
    let report: Value = kanta_joining_report(app, &w.handler, &w).json().unwrap();
    assert_eq!(report["items"].as_array().unwrap().len(), 1);
    assert_eq!(report["items"][0]["provider_id"], w.other_provider.as_str());
});

app_test!(fn ru_4_security_incident_records_whether_and_when_the_data_subjects_were_notified(app) {
    let w = world(app);
    let path = format!("/v1/registrars/{}/security-incidents", w.registrar);
    let report = |description: &str| -> String {
        let response = app.post_as(&w.provider_staff, &path, &json!({"description": description,
            "discovered_at": "2026-11-30T08:30:00Z"}));
        // The provider has a contract with the registrar, so it may report.
        assert_eq!(response.status().as_u16(), 201);
        let incident: Value = response.json().unwrap();
        assert_eq!(incident["data_subjects_notified"], Value::Null);
        assert_eq!(incident["data_subjects_notified_at"], Value::Null);
        format!("{path}/{}", incident["id"].as_str().unwrap())
    };
    kanta_ready(app, &w, &w.provider);
    let one = report("Tulostettu asiakaslista kadonnut");
    // Only the registrar's incident handlers record it.
    let notified = json!({"data_subjects_notified": true, "data_subjects_notified_at": "2026-12-01T09:00:00Z"});
    assert_problem(app.patch_as(&w.handler, &one, &notified), 403, "/problems/forbidden");
    assert_problem(app.patch_as(&w.other_dpo, &one, &notified), 404, "/problems/not-found");
    assert_problem(app.patch_as(&w.provider_staff, &one, &notified), 404, "/problems/not-found");
    // The time must fit the facts: not with "not notified", not before discovery, not in the future.
    let refused = |body: Value, field: &str| {
        let problem = assert_problem(app.patch_as(&w.dpo, &one, &body), 422, "/problems/business-rule");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    };
    refused(json!({"data_subjects_notified": false, "data_subjects_notified_at": "2026-12-01T09:00:00Z"}), "data_subjects_notified_at");
    refused(json!({"data_subjects_notified": true, "data_subjects_notified_at": "2026-11-30T08:00:00Z"}), "data_subjects_notified_at");
    refused(json!({"data_subjects_notified": true, "data_subjects_notified_at": "2026-12-02T09:00:00Z"}), "data_subjects_notified_at");
    let body = assert_problem(app.patch_as(&w.dpo, &one, &json!({"data_subjects_notified_at": "2026-12-01T09:00:00Z"})), 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "data_subjects_notified", "{body}");
    let body = assert_problem(app.patch_as(&w.dpo, &one, &json!({})), 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "body", "{body}");
    // Assessed and reported to the authority, then the data subjects were notified: the state
    // stays, the notification is stored and returned on every read.
    let assessed = app.patch_as(&w.dpo, &one, &json!({"state": "assessed", "assessment": "Lista sisälsi nimiä"}));
    assert_eq!(assessed.status().as_u16(), 200);
    assert_eq!(app.patch_as(&w.dpo, &one, &json!({"state": "authority_notified"})).status().as_u16(), 200);
    let updated = app.patch_as(&w.dpo, &one, &notified);
    assert_eq!(updated.status().as_u16(), 200);
    let updated: Value = updated.json().unwrap();
    assert_eq!(updated["state"], "authority_notified");
    assert_eq!(updated["data_subjects_notified"], true);
    assert_eq!(updated["data_subjects_notified_at"], "2026-12-01T09:00:00.000000Z");
    let shown: Value = app.get_as(&w.dpo, &one).json().unwrap();
    assert_eq!(shown["data_subjects_notified"], true);
    assert_eq!(shown["data_subjects_notified_at"], "2026-12-01T09:00:00.000000Z");
    // A notification once made is not undone.
    refused(json!({"data_subjects_notified": false}), "data_subjects_notified");
    // Another incident: the data subjects were not notified (recorded as such, without a time),
    // and later they were, at the moment it is recorded when no time is given.
    let two = report("Väärä vastaanottaja sähköpostissa");
    let not_notified: Value = app.patch_as(&w.dpo, &two, &json!({"data_subjects_notified": false})).json().unwrap();
    assert_eq!(not_notified["state"], "suspected");
    assert_eq!(not_notified["data_subjects_notified"], false);
    assert_eq!(not_notified["data_subjects_notified_at"], Value::Null);
    let later: Value = app.patch_as(&w.dpo, &two, &json!({"data_subjects_notified": true})).json().unwrap();
    assert_eq!(later["data_subjects_notified"], true);
    assert_eq!(later["data_subjects_notified_at"], "2026-12-01T10:00:00.000000Z");
    let list: Value = app.get_as(&w.dpo, &path).json().unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i["data_subjects_notified"] == true), "{list}");
});

app_test!(fn cl_12_the_access_document_holds_kanta_informing_consent_history_prohibitions_and_rights_with_their_documents(app) {
    let w = world(app);
    let (client, service) = client_with_service(app, &w, 31, "purchased_service", &w.provider, "2026-12-31");
    let (other, other_service) = client_with_service(app, &w, 32, "purchased_service", &w.provider, "2026-12-31");
    kanta_ready(app, &w, &w.provider);
    // The person: informed, consent given and then refused, one prohibition, one right with a
    // document stored under it.
    inform(app, &w.handler, &w, &client);
    set_consent(app, &w, &client, "positive");
    app.clock.advance(time::Duration::minutes(1));
    set_consent(app, &w, &client, "negative");
    let prohibition = prohibit(app, &w, &client, json!({"scope": "registrar", "target": w.other_registrar}));
    let right = open_ok(app, &w, &client, &service);
    let case = right["case_oid"].as_str().unwrap().to_owned();
    assert_eq!(store(app, &w.provider_staff, &w, &case, "Kotihoidon arvio").status().as_u16(), 201);
    // Another person of the same register, with entries of every kind: none of them belongs in
    // the first person's document.
    inform(app, &w.handler, &w, &other);
    set_consent(app, &w, &other, "positive");
    prohibit(app, &w, &other, json!({"scope": "all"}));
    let other_right = open_ok(app, &w, &other, &other_service);
    let other_case = other_right["case_oid"].as_str().unwrap().to_owned();
    assert_eq!(store(app, &w.provider_staff, &w, &other_case, "Toisen arvio").status().as_u16(), 201);

    let response = app.get_as(&w.dpo, &client_path(&w, &client, "access-report"));
    assert_eq!(response.status().as_u16(), 200);
    let report: Value = response.json().unwrap();
    assert_eq!(report["client"]["id"], client.as_str());
    let informings = report["kanta_informings"].as_array().unwrap();
    assert_eq!(informings.len(), 1, "{report}");
    assert_eq!(informings[0]["client_id"], client.as_str());
    assert_eq!(informings[0]["method"], "in_person");
    assert_eq!(informings[0]["recorded_by_organisation"], w.registrar.as_str());
    assert_eq!(report["disclosure_consent"]["client_id"], client.as_str());
    assert_eq!(report["disclosure_consent"]["state"], "negative");
    let states: Vec<&str> = report["disclosure_consent"]["history"].as_array().unwrap().iter().map(|c| c["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["negative", "positive"]);
    let prohibitions = report["prohibitions"].as_array().unwrap();
    assert_eq!(prohibitions.len(), 1, "{report}");
    assert_eq!(prohibitions[0]["id"], prohibition.as_str());
    assert_eq!(prohibitions[0]["scope"], "registrar");
    assert_eq!(prohibitions[0]["target"], w.other_registrar.as_str());
    assert_eq!(prohibitions[0]["in_force"], true);
    let rights = report["registry_use_rights"].as_array().unwrap();
    assert_eq!(rights.len(), 1, "{report}");
    assert_eq!(rights[0]["id"], right["id"]);
    assert_eq!(rights[0]["case_oid"], case.as_str());
    assert_eq!(rights[0]["provider_id"], w.provider.as_str());
    assert_eq!(rights[0]["status"], "open");
    // The identity code is the document's once, in the client section.
    assert!(rights[0]["identity_code"].is_null(), "{report}");
    let documents = rights[0]["documents"].as_array().unwrap();
    assert_eq!(documents.len(), 1, "{report}");
    assert_eq!(documents[0]["title"], "Kotihoidon arvio");
    assert_eq!(documents[0]["content"], json!({"text": "Käynti tehty"}));
    assert!(!report.to_string().contains("Toisen arvio"), "{report}");
    assert!(!report.to_string().contains(other.as_str()), "{report}");
    // The whole document is one logged use and one disclosure to the data subject.
    let logged: Vec<String> = usage_log::table
        .filter(usage_log::registrar_id.eq(&w.registrar))
        .filter(usage_log::data_kind.eq("access_report"))
        .select(usage_log::data_id.assume_not_null())
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(logged, std::slice::from_ref(&client));
    assert_eq!(disclosures(app, &w.registrar).last().unwrap(), &(client.clone(), "GDPR art. 15".to_owned()));
    // The other registrar's officer and the provider still find nothing.
    assert_problem(app.get_as(&w.other_dpo, &client_path(&w, &client, "access-report")), 404, "/problems/not-found");
    assert_problem(app.get_as(&w.provider_staff, &client_path(&w, &client, "access-report")), 404, "/problems/not-found");
});
