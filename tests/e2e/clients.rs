//! The client register over HTTP (CL-1..CL-11, AX-4): creation with services, validation,
//! visibility per registrar, service area and provider, service events, settlement, the usage
//! log of every read.

use diesel::prelude::*;
use rekisteri_db::schema::{change_history, usage_log};
use rekisteri_tests::{TestApp, app_test, assert_problem};
use serde_json::{Value, json};

pub(crate) const MAIJA: &str = "131052-308T";
/// A valid identity code of someone born 1 Jan 1980 with individual number `100 + n`.
pub(crate) fn code(n: u32) -> String {
    rekisteri_tests::identity_code("010180", 100 + n)
}

/// The shared [`rekisteri_tests::World`] with a second area of `registrar`, `disability`
/// (personal assistance), to which the handler has a right too.
pub(crate) struct World {
    shared: rekisteri_tests::World,
    /// A client handler of `registrar` with a right to the disability-services area only.
    pub(crate) disability_handler: String,
}

impl std::ops::Deref for World {
    type Target = rekisteri_tests::World;

    fn deref(&self) -> &rekisteri_tests::World {
        &self.shared
    }
}

pub(crate) fn world(app: &TestApp) -> World {
    let shared = app.world();
    let admin = &shared.admin;
    let disability = app.service_area(admin, &shared.registrar, "disability", &["personal_assistance"]);
    app.grant_service_area(admin, &shared.handler_id, &disability);
    let (disability_id, disability_handler) =
        app.add_user(admin, "disability@tampere.fi", &shared.registrar, "client_handler");
    app.grant_service_area(admin, &disability_id, &disability);
    World {
        shared,
        disability_handler,
    }
}

pub(crate) fn home_care_voucher(provider: &str) -> Value {
    json!({"kind": "service_voucher", "service_type": "home_care", "service_name": "Kotihoidon palveluseteli",
        "quantity": 40, "unit": "hour", "unit_value_cents": 3250, "valid_from": "2026-01-01",
        "valid_to": "2026-12-31", "provider_id": provider, "decision_ref": "KH-2026-17",
        "additional_info": "Avain naapurilla"})
}

pub(crate) fn client_body(identity_code: &str, services: Value) -> Value {
    json!({"identity_code": identity_code, "first_names": "Maija Liisa", "surname": "Meikäläinen",
        "gender": "female", "home_municipality": "837", "language": "fi", "email": "maija@esimerkki.fi",
        "phone": "+358 40 123 4567", "next_of_kin": {"name": "Matti Meikäläinen", "phone": "040 765 4321"},
        "address": {"street_address": "Hämeenkatu 1 A 5", "street_name": "Hämeenkatu", "postal_code": "33100",
            "post_office": "Tampere", "country_code": "FI"},
        "services": services})
}

/// Creates a client as `token` and returns the response body.
pub(crate) fn create(app: &TestApp, token: &str, registrar: &str, body: &Value) -> Value {
    let response = app.post_as(token, &format!("/v1/registrars/{registrar}/clients"), body);
    assert_eq!(response.status().as_u16(), 201, "creating a test client failed");
    response.json().unwrap()
}

/// The usage entries of `registrar` about data `data_id`: (actor, outcome, basis, data kind).
pub(crate) fn usage_about(app: &TestApp, registrar: &str, data_id: &str) -> Vec<(String, String, String, String)> {
    usage_log::table
        .filter(usage_log::registrar_id.eq(registrar))
        .filter(usage_log::data_id.eq(data_id))
        .order(usage_log::seq)
        .select((
            usage_log::actor_id,
            usage_log::outcome,
            usage_log::access_basis,
            usage_log::data_kind,
        ))
        .load(&mut app.db.conn())
        .unwrap()
}

app_test!(fn cl_1_client_is_created_with_its_first_service_and_read_back(app) {
    let w = world(app);
    let created = create(app, &w.handler, &w.registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider)])));
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["identity_code"], MAIJA);
    assert_eq!(created["registrar_id"], w.registrar.as_str());
    assert_eq!(created["version"], 1);
    assert_eq!(created["services"][0]["status"], "active");
    assert_eq!(created["services"][0]["quantity"], 40);
    let response = app.get_as(&w.handler, &format!("/v1/registrars/{}/clients/{id}", w.registrar));
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let read: Value = response.json().unwrap();
    for field in ["identity_code", "first_names", "surname", "gender", "home_municipality", "language", "email",
        "phone", "next_of_kin", "address", "protection_order", "version", "created_at"] {
        assert_eq!(read[field], created[field], "{field}");
    }
    assert_eq!(read["address"]["street_name"], "Hämeenkatu");
    assert_eq!(read["services"][0]["additional_info"], "Avain naapurilla");
    assert_eq!(read["services"][0]["unit_value_cents"], 3250);
    // The creation and the read are both in the registrar's usage log, with the basis.
    let entries = usage_about(app, &w.registrar, id);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries.iter().all(|(_, outcome, basis, kind)| outcome == "used" && basis == "role" && kind == "client"));
    // The list shows the client too.
    let list: Value = app.get_as(&w.handler, &format!("/v1/registrars/{}/clients", w.registrar)).json().unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], id);
    assert!(list["next_cursor"].is_null());
});

app_test!(fn cl_1_a_client_needs_a_service_and_one_per_identity_code(app) {
    let w = world(app);
    let path = format!("/v1/registrars/{}/clients", w.registrar);
    let body = assert_problem(app.post_as(&w.handler, &path, &client_body(MAIJA, json!([]))), 400, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "services");
    create(app, &w.handler, &w.registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider)])));
    let body = assert_problem(
        app.post_as(&w.handler, &path, &client_body(MAIJA, json!([home_care_voucher(&w.provider)]))),
        409,
        "/problems/conflict",
    );
    assert!(!body.to_string().contains("308T"), "{body}");
    // Another registrar keeps its own client with the same code (registers are never combined).
    create(app, &w.other_handler, &w.other_registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider)])));
    // A service type outside the registrar's areas, a missing voucher value and a reversed
    // validity name their fields.
    let mut bad = home_care_voucher(&w.provider);
    bad["service_type"] = json!("dentistry");
    let body = assert_problem(app.post_as(&w.handler, &path, &client_body(&code(1), json!([bad]))), 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "services[0].service_type");
    let mut bad = home_care_voucher(&w.provider);
    bad["valid_to"] = json!("2025-12-31");
    let body = assert_problem(app.post_as(&w.handler, &path, &client_body(&code(1), json!([bad]))), 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "services[0].valid_to");
    let mut bad = home_care_voucher(&w.provider);
    bad["provider_id"] = json!(w.registrar);
    let body = assert_problem(app.post_as(&w.handler, &path, &client_body(&code(1), json!([bad]))), 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "services[0].provider_id");
    // Nothing of the refused requests was kept.
    let list: Value = app.get_as(&w.handler, &path).json().unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
});

app_test!(fn cl_1_a_municipality_code_outside_statistics_finlands_list_is_refused_naming_the_field(app) {
    let w = world(app);
    let path = format!("/v1/registrars/{}/clients", w.registrar);
    // 099 was Honkajoki until it joined Kankaanpää in 2021; 000 was never a municipality.
    for unknown in ["099", "000"] {
        let mut body = client_body(MAIJA, json!([home_care_voucher(&w.provider)]));
        body["home_municipality"] = json!(unknown);
        let problem = assert_problem(app.post_as(&w.handler, &path, &body), 400, "/problems/validation");
        assert_eq!(problem["errors"][0]["field"], "home_municipality", "{problem}");
        assert!(
            problem["errors"][0]["message"].as_str().unwrap().contains("Statistics Finland"),
            "{problem}"
        );
    }
    let list: Value = app.get_as(&w.handler, &path).json().unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "nothing of the refused requests was kept");
    // A change to an unknown code is refused too; Kankaanpää (214) is taken.
    let created = create(app, &w.handler, &w.registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider)])));
    let client = format!("{path}/{}", created["id"].as_str().unwrap());
    let version = format!("\"{}\"", created["version"]);
    let patch = |code: &str| app.patch_if_match(&w.handler, &client, &version, &json!({"home_municipality": code}));
    let problem = assert_problem(patch("099"), 400, "/problems/validation");
    assert_eq!(problem["errors"][0]["field"], "home_municipality", "{problem}");
    let changed = patch("214");
    assert_eq!(changed.status().as_u16(), 200);
    assert_eq!(changed.json::<Value>().unwrap()["home_municipality"], "214");
});

app_test!(fn cl_1_concurrent_creates_of_one_client_yield_exactly_one_201(app) {
    let w = world(app);
    let path = format!("/v1/registrars/{}/clients", w.registrar);
    let body = client_body(&code(7), json!([home_care_voucher(&w.provider)]));
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|_| scope.spawn(|| app.post_as(&w.handler, &path, &body).status().as_u16()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 15, "{statuses:?}");
});

app_test!(fn cl_2_an_invalid_identity_code_is_refused_and_never_echoed(app) {
    let w = world(app);
    let path = format!("/v1/registrars/{}/clients", w.registrar);
    for (bad, reason) in [("131052-308U", "check character"), ("311352-308T", "calendar date"), ("010594Y9032", "temporary")] {
        let body = assert_problem(
            app.post_as(&w.handler, &path, &client_body(bad, json!([home_care_voucher(&w.provider)]))),
            400,
            "/problems/validation",
        );
        assert_eq!(body["errors"][0]["field"], "identity_code");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(reason), "{body}");
        assert!(!body.to_string().contains(&bad[7..]), "{body}");
    }
    let search = format!("/v1/registrars/{}/clients/search", w.registrar);
    let body = assert_problem(app.post_as(&w.handler, &search, &json!({"identity_code": "131052-308U"})), 400, "/problems/validation");
    assert!(!body.to_string().contains("308U"));
});

app_test!(fn cl_2_a_non_canonical_identity_code_is_refused_at_every_entry_point(app) {
    let w = world(app);
    let (_, auditor) = app.add_user(&w.admin, "auditor@tampere.fi", &w.registrar, "auditor");
    let created = create(app, &w.handler, &w.registrar, &client_body(&code(1), json!([home_care_voucher(&w.provider)])));
    let clients = format!("/v1/registrars/{}/clients", w.registrar);
    let client = format!("{clients}/{}", created["id"].as_str().unwrap());
    let whitespace = "must not have surrounding whitespace";
    let upper = "the century sign and the check character must be upper case";
    // Each is MAIJA's valid code, changed only in form: nothing is normalised (CL-2).
    let cases = [
        (" 131052-308T", whitespace),
        ("131052-308T ", whitespace),
        ("\t131052-308T\n", whitespace),
        ("131052-308t", upper),
        ("131052y308T", upper),
        ("010594y123w", upper),
    ];
    for (bad, reason) in cases {
        let proxy = json!({"identity_code": bad, "first_names": "Pekka", "surname": "Puolestapuhuja",
            "valid_from": "2026-01-01"});
        let attempts: [(&str, &str, reqwest::blocking::Response); 5] = [
            ("create client", "identity_code",
                app.post_as(&w.handler, &clients, &client_body(bad, json!([home_care_voucher(&w.provider)])))),
            ("search", "identity_code",
                app.post_as(&w.handler, &format!("{clients}/search"), &json!({"identity_code": bad}))),
            ("add proxy", "identity_code", app.post_as(&w.handler, &format!("{client}/proxies"), &proxy)),
            ("data-subject request", "identity_code", app.post_as(
                &auditor,
                &format!("/v1/registrars/{}/data-subject-requests", w.registrar),
                &json!({"kind": "access", "identity_code": bad}),
            )),
            ("audit search by person", "identity_code", app.post_as(
                &auditor,
                &format!("/v1/registrars/{}/audit/usage/search", w.registrar),
                &json!({"identity_code": bad}),
            )),
        ];
        for (what, field, response) in attempts {
            let body = assert_problem(response, 400, "/problems/validation");
            assert_eq!(body["errors"][0]["field"], field, "{what} {bad:?}: {body}");
            assert_eq!(body["errors"][0]["message"], reason, "{what} {bad:?}: {body}");
            let text = body.to_string();
            assert!(!text.contains(bad.trim()) && !text.contains(&bad.trim()[7..]) && !text.contains("131052"), "{what}: {text}");
        }
        // A client's code is not changed by PATCH at all (VTJ corrects it, VT-5): the field is unknown.
        let response = app
            .client
            .patch(app.url(&client))
            .bearer_auth(&w.handler)
            .header("If-Match", "\"1\"")
            .json(&json!({"identity_code": bad}))
            .send()
            .unwrap();
        let body = assert_problem(response, 400, "/problems/validation");
        assert_eq!(body["errors"][0]["field"], "identity_code", "{body}");
        assert!(!body.to_string().contains(&bad.trim()[7..]), "{body}");
    }
    // Nothing was created: one client (the one made above), no proxy, no request.
    let list: Value = app.get_as(&w.handler, &clients).json().unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let proxies: Value = app.get_as(&w.handler, &format!("{client}/proxies")).json().unwrap();
    assert_eq!(proxies["items"].as_array().map_or(0, Vec::len), 0, "{proxies}");
    let requests: Value = app
        .get_as(&auditor, &format!("/v1/registrars/{}/data-subject-requests", w.registrar))
        .json()
        .unwrap();
    assert_eq!(requests["items"].as_array().map_or(0, Vec::len), 0, "{requests}");
    // The canonical form is accepted everywhere.
    let response = app.post_as(&w.handler, &format!("{clients}/search"), &json!({"identity_code": code(1)}));
    assert_eq!(response.status().as_u16(), 200);
});

app_test!(fn pl_3_a_missing_required_field_is_named_by_its_path(app) {
    let w = world(app);
    let path = format!("/v1/registrars/{}/clients", w.registrar);
    let refused = |body: &Value| -> (String, String) {
        let problem = assert_problem(app.post_as(&w.handler, &path, body), 400, "/problems/validation");
        assert_eq!(problem["errors"].as_array().unwrap().len(), 1, "{problem}");
        (
            problem["errors"][0]["field"].as_str().unwrap().to_owned(),
            problem["errors"][0]["message"].as_str().unwrap().to_owned(),
        )
    };
    // Top level: the field itself, never `body`.
    let mut body = client_body(&code(1), json!([home_care_voucher(&w.provider)]));
    body.as_object_mut().unwrap().remove("services");
    assert_eq!(refused(&body), ("services".to_owned(), "missing field `services`".to_owned()));
    let mut body = client_body(&code(1), json!([home_care_voucher(&w.provider)]));
    body.as_object_mut().unwrap().remove("surname");
    assert_eq!(refused(&body).0, "surname");
    // Nested: the path to the missing field, as other field errors are named.
    let mut service = home_care_voucher(&w.provider);
    service.as_object_mut().unwrap().remove("service_type");
    let body = client_body(&code(1), json!([home_care_voucher(&w.provider), service]));
    assert_eq!(
        refused(&body),
        ("services[1].service_type".to_owned(), "missing field `service_type`".to_owned())
    );
    // Unknown fields and wrong types name their paths too (PL-3).
    let mut service = home_care_voucher(&w.provider);
    service["colour"] = json!("red");
    let (field, message) = refused(&client_body(&code(1), json!([service])));
    assert_eq!(field, "services[0].colour");
    assert!(message.starts_with("unknown field `colour`"), "{message}");
    let mut service = home_care_voucher(&w.provider);
    service["quantity"] = json!("forty");
    assert_eq!(refused(&client_body(&code(1), json!([service]))).0, "services[0].quantity");
    let mut body = client_body(&code(1), json!([home_care_voucher(&w.provider)]));
    body["address"]["postal_code"] = json!(33100);
    assert_eq!(
        refused(&body),
        ("address.postal_code".to_owned(), "invalid type: integer, expected a string".to_owned())
    );
    // Only a document that is not an object at all is about the `body`.
    assert_eq!(
        refused(&json!("a client")),
        ("body".to_owned(), "invalid type: string, expected struct NewClient".to_owned())
    );
    // Nothing was created.
    let list: Value = app.get_as(&w.handler, &path).json().unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
});

app_test!(fn cl_3_personal_fields_are_not_in_the_database_in_clear(app) {
    let w = world(app);
    create(app, &w.handler, &w.registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider)])));
    let secrets = [MAIJA, "Meikäläinen", "Maija Liisa", "Hämeenkatu", "+358 40 123 4567", "maija@esimerkki.fi", "040 765 4321", "Avain naapurilla"];
    app.assert_not_stored_in_clear(&["clients", "services", "service_events", "change_history", "usage_log"], 1000, &secrets);
});

app_test!(fn cl_5_service_events_outside_validity_over_quantity_or_by_another_provider_are_refused(app) {
    let w = world(app);
    let created = create(app, &w.handler, &w.registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider)])));
    let sid = created["services"][0]["id"].as_str().unwrap();
    let events = format!("/v1/registrars/{}/services/{sid}/events", w.registrar);
    let ok = app.post_as(&w.provider_staff, &events, &json!({"delivered_on": "2026-03-02", "quantity": 1.5, "note": "Aamukäynti"}));
    assert_eq!(ok.status().as_u16(), 201);
    let event: Value = ok.json().unwrap();
    assert_eq!(event["unit_price_cents"], 3250);
    assert_eq!(event["quantity"], 1.5);
    let body = assert_problem(
        app.post_as(&w.provider_staff, &events, &json!({"delivered_on": "2027-01-01", "quantity": 1})),
        422,
        "/problems/business-rule",
    );
    assert_eq!(body["errors"][0]["field"], "delivered_on");
    let body = assert_problem(
        app.post_as(&w.provider_staff, &events, &json!({"delivered_on": "2026-03-03", "quantity": 38.51})),
        422,
        "/problems/business-rule",
    );
    assert_eq!(body["errors"][0]["field"], "quantity");
    // Exactly the rest of the grant is accepted.
    let rest = app.post_as(&w.provider_staff, &events, &json!({"delivered_on": "2026-03-03", "quantity": 38.5}));
    assert_eq!(rest.status().as_u16(), 201);
    // The registrar sees the service but is not its provider: 422. Another provider does not
    // see it at all: 404, and the attempt is logged as denied.
    let body = assert_problem(
        app.post_as(&w.handler, &events, &json!({"delivered_on": "2026-03-04", "quantity": 1})),
        422,
        "/problems/business-rule",
    );
    assert_eq!(body["errors"][0]["field"], "service_id");
    assert_problem(
        app.post_as(&w.other_provider_staff, &events, &json!({"delivered_on": "2026-03-04", "quantity": 1})),
        404,
        "/problems/not-found",
    );
    let denied = usage_about(app, &w.registrar, sid);
    assert!(denied.iter().any(|(_, outcome, basis, _)| outcome == "denied" && basis == "none"), "{denied:?}");
    let list: Value = app.get_as(&w.provider_staff, &events).json().unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(list["items"][0]["note"], "Aamukäynti");
});

app_test!(fn cl_4_a_service_is_closed_by_patch_and_takes_no_events_after_closing(app) {
    let w = world(app);
    let created = create(app, &w.handler, &w.registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider)])));
    let sid = created["services"][0]["id"].as_str().unwrap();
    let path = format!("/v1/registrars/{}/services/{sid}", w.registrar);
    let closed = app.patch_as(&w.handler, &path, &json!({"status": "closed", "closed_on": "2026-06-30"}));
    assert_eq!(closed.status().as_u16(), 200);
    let closed: Value = closed.json().unwrap();
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["closed_on"], "2026-06-30");
    assert_eq!(closed["additional_info"], "Avain naapurilla");
    assert_problem(app.patch_as(&w.handler, &path, &json!({"status": "closed"})), 409, "/problems/conflict");
    assert_problem(app.patch_as(&w.provider_staff, &path, &json!({"quantity": 10})), 403, "/problems/forbidden");
    let body = assert_problem(
        app.post_as(&w.provider_staff, &format!("{path}/events"), &json!({"delivered_on": "2026-07-01", "quantity": 1})),
        422,
        "/problems/business-rule",
    );
    assert_eq!(body["errors"][0]["field"], "delivered_on");
});

app_test!(fn cl_6_settlement_of_a_month_matches_the_hand_computed_total_in_json_and_csv(app) {
    let w = world(app);
    let purchased = json!({"kind": "purchased_service", "service_type": "home_care", "service_name": "Kotihoito (ostopalvelu)",
        "quantity": 100, "unit": "visit", "valid_from": "2026-01-01", "valid_to": "2026-12-31", "provider_id": "1.2.246.10.2001"});
    let a = create(app, &w.handler, &w.registrar, &client_body(&code(1), json!([home_care_voucher(&w.provider)])));
    let b = create(app, &w.handler, &w.registrar, &client_body(&code(2), json!([purchased])));
    let record = |service: &Value, date: &str, quantity: f64, price: Option<i64>| {
        let mut body = json!({"delivered_on": date, "quantity": quantity});
        if let Some(price) = price {
            body["unit_price_cents"] = json!(price);
        }
        let path = format!("/v1/registrars/{}/services/{}/events", w.registrar, service["id"].as_str().unwrap());
        assert_eq!(app.post_as(&w.provider_staff, &path, &body).status().as_u16(), 201);
    };
    // Voucher at 32.50 €/h: 1.5 h + 2.25 h = 3.75 h → 48.75 € + 73.125 € (73.13, half up) = 121.88 €.
    record(&a["services"][0], "2026-10-01", 1.5, None);
    record(&a["services"][0], "2026-10-15", 2.25, None);
    // Purchased at agreed prices: 3 × 45.99 € + 1 × 50.01 € = 187.98 €.
    record(&b["services"][0], "2026-10-31", 3.0, Some(4599));
    record(&b["services"][0], "2026-10-02", 1.0, Some(5001));
    // Outside the month: not in the October settlement.
    record(&b["services"][0], "2026-11-01", 1.0, Some(9999));
    record(&a["services"][0], "2026-09-30", 1.0, None);
    let path = format!("/v1/registrars/{}/settlements?provider=1.2.246.10.2001&month=2026-10", w.registrar);
    let json: Value = app.get_as(&w.handler, &path).json().unwrap();
    assert_eq!(json["total_amount_cents"], 12188 + 18798, "{json}");
    let lines = json["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    let line_a = lines.iter().find(|l| l["client_id"] == a["id"]).unwrap();
    assert_eq!((line_a["quantity"].clone(), line_a["amount_cents"].clone()), (json!(3.75), json!(12188)));
    assert_eq!(line_a["client_name"], "Meikäläinen Maija Liisa");
    // The provider gets the same settlement; the other provider gets none of it.
    let own: Value = app.get_as(&w.provider_staff, &path).json().unwrap();
    assert_eq!(own["total_amount_cents"], 30986);
    assert_problem(app.get_as(&w.other_provider_staff, &path), 404, "/problems/not-found");
    let csv = app
        .client
        .get(app.url(&path))
        .bearer_auth(&w.handler)
        .header("Accept", "text/csv")
        .send()
        .unwrap();
    assert_eq!(csv.status().as_u16(), 200);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = csv.text().unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert!(rows[0].starts_with("client_id,client_name"));
    assert_eq!(*rows.last().unwrap(), "total,,,,,,,30986,309.86");
    assert!(text.contains(",hour,3.75,12188,121.88"), "{text}");
    assert!(text.contains(",visit,4,18798,187.98"), "{text}");
    assert_problem(
        app.get_as(&w.handler, &format!("/v1/registrars/{}/settlements?provider=1.2.246.10.2001&month=2026-13", w.registrar)),
        400,
        "/problems/validation",
    );
});

app_test!(fn cl_8_protection_order_stores_and_shows_no_address_or_municipality(app) {
    let w = world(app);
    let mut body = client_body(MAIJA, json!([home_care_voucher(&w.provider)]));
    body["protection_order"] = json!(true);
    let created = create(app, &w.handler, &w.registrar, &body);
    let id = created["id"].as_str().unwrap();
    for view in [created.clone(), app.get_as(&w.handler, &format!("/v1/registrars/{}/clients/{id}", w.registrar)).json().unwrap()] {
        assert_eq!(view["protection_order"], true);
        assert!(view.get("address").is_none(), "{view}");
        assert!(view.get("home_municipality").is_none(), "{view}");
    }
    let (address, municipality): (Option<Vec<u8>>, Option<String>) = rekisteri_db::schema::clients::table
        .filter(rekisteri_db::schema::clients::id.eq(id))
        .select((rekisteri_db::schema::clients::address, rekisteri_db::schema::clients::home_municipality))
        .first(&mut app.db.conn())
        .unwrap();
    assert_eq!((address, municipality), (None, None));
});

app_test!(fn cl_9_each_caller_sees_only_what_its_rules_allow(app) {
    let w = world(app);
    let other_service = json!({"kind": "purchased_service", "service_type": "personal_assistance",
        "service_name": "Henkilökohtainen apu", "quantity": 10, "unit": "hour", "valid_from": "2026-01-01",
        "valid_to": "2026-12-31", "provider_id": w.other_provider, "additional_info": "Toisen tuottajan tieto"});
    let created = create(app, &w.handler, &w.registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider), other_service])));
    let id = created["id"].as_str().unwrap();
    let path = format!("/v1/registrars/{}/clients/{id}", w.registrar);
    // The provider sees the needed fields and its own service only.
    let seen: Value = app.get_as(&w.provider_staff, &path).json().unwrap();
    assert_eq!(seen["identity_code"], MAIJA);
    assert_eq!(seen["phone"], "+358 40 123 4567");
    assert!(seen.get("next_of_kin").is_none() && seen.get("gender").is_none(), "{seen}");
    let services = seen["services"].as_array().unwrap();
    assert_eq!(services.len(), 1);
    assert_eq!(services[0]["provider_id"], w.provider.as_str());
    assert!(!seen.to_string().contains("Toisen tuottajan"));
    // The handler with only the disability area sees only that service.
    let seen: Value = app.get_as(&w.disability_handler, &path).json().unwrap();
    assert_eq!(seen["services"].as_array().unwrap().len(), 1);
    assert_eq!(seen["services"][0]["service_type"], "personal_assistance");
    // Another registrar's handler: 404 on the client, its services and in the list.
    assert_problem(app.get_as(&w.other_handler, &path), 404, "/problems/not-found");
    assert_problem(app.get_as(&w.other_handler, &format!("{path}/services")), 404, "/problems/not-found");
    assert_problem(app.get_as(&w.other_handler, &format!("/v1/registrars/{}/clients", w.registrar)), 404, "/problems/not-found");
    // A registrar's client is not reachable under another registrar's path either.
    assert_problem(app.get_as(&w.handler, &format!("/v1/registrars/{}/clients/{id}", w.other_registrar)), 404, "/problems/not-found");
    // A user of the registrar without client roles is refused outright.
    let (_, editor) = app.add_user(&w.admin, "editor@tampere.fi", &w.registrar, "editor");
    assert_problem(app.get_as(&editor, &path), 403, "/problems/forbidden");
    // Each denial is in the registrar's log, with no basis.
    let entries = usage_about(app, &w.registrar, id);
    let denials = entries.iter().filter(|(_, outcome, basis, _)| outcome == "denied" && basis == "none").count();
    assert_eq!(denials, 2, "{entries:?}");
    let provider_reads = entries.iter().filter(|(_, outcome, basis, _)| outcome == "used" && basis == "role").count();
    assert_eq!(provider_reads, 3, "{entries:?}");
});

app_test!(fn cl_11_identity_code_search_is_logged_with_or_without_a_hit(app) {
    let w = world(app);
    create(app, &w.handler, &w.registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider)])));
    let search = format!("/v1/registrars/{}/clients/search", w.registrar);
    let hit: Value = app.post_as(&w.handler, &search, &json!({"identity_code": MAIJA})).json().unwrap();
    assert_eq!(hit["items"][0]["identity_code"], MAIJA);
    let miss: Value = app.post_as(&w.handler, &search, &json!({"identity_code": code(3)})).json().unwrap();
    assert_eq!(miss["items"], json!([]));
    // A handler of the registrar without the client's service area cannot find the client even
    // with the code; the search is logged under the person all the same.
    let hidden: Value = app.post_as(&w.disability_handler, &search, &json!({"identity_code": MAIJA})).json().unwrap();
    assert_eq!(hidden["items"], json!([]));
    // The other provider, with no standing in the registrar, cannot even search it: refused at
    // the registrar's door, before the body is read, and logged as a denial about the registrar.
    assert_problem(app.post_as(&w.other_provider_staff, &search, &json!({"identity_code": MAIJA})), 404, "/problems/not-found");
    let knocked: Vec<String> = usage_log::table
        .filter(usage_log::registrar_id.eq(&w.registrar))
        .filter(usage_log::data_kind.eq("registrar"))
        .select(usage_log::outcome)
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(knocked, ["denied"]);
    let searches: Vec<(String, Option<Vec<u8>>)> = usage_log::table
        .filter(usage_log::registrar_id.eq(&w.registrar))
        .filter(usage_log::data_kind.eq("client_search"))
        .order(usage_log::seq)
        .select((usage_log::outcome, usage_log::subject_index))
        .load(&mut app.db.conn())
        .unwrap();
    let outcomes: Vec<&str> = searches.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(outcomes, ["used", "not_found", "not_found"]);
    assert!(searches.iter().all(|(_, subject)| subject.as_ref().is_some_and(|s| s.len() == 32)));
    assert_eq!(searches[0].1, searches[2].1, "the same person is named by the same index");
    assert_ne!(searches[0].1, searches[1].1);
});

/// Maija in the register, her path, and a new client handler of the registrar with no
/// service-area right yet: (path, the handler's account id, its token).
fn maija_and_a_handler_without_rights(app: &TestApp, w: &World) -> (String, String, String) {
    let created = create(
        app,
        &w.handler,
        &w.registrar,
        &client_body(MAIJA, json!([home_care_voucher(&w.provider)])),
    );
    let path = format!(
        "/v1/registrars/{}/clients/{}",
        w.registrar,
        created["id"].as_str().unwrap()
    );
    let (id, token) = app.add_user(&w.admin, "temp@tampere.fi", &w.registrar, "client_handler");
    (path, id, token)
}

app_test!(fn ac_11_ending_a_service_area_right_stops_access_on_the_next_request(app) {
    let w = world(app);
    let (path, id, token) = maija_and_a_handler_without_rights(app, &w);
    let home_care = w.home_care.clone();
    // Without a right to the area the client is not there.
    assert_problem(app.get_as(&token, &path), 404, "/problems/not-found");
    let grant = app.grant_service_area(&w.admin, &id, &home_care);
    assert_eq!(app.get_as(&token, &path).status().as_u16(), 200);
    let ended = app.patch_as(&w.admin, &format!("/v1/accounts/{id}/service-areas/{grant}"), &json!({}));
    assert_eq!(ended.status().as_u16(), 200);
    // The session relied on the right and ended with it; a new session sees nothing.
    assert_problem(app.get_as(&token, &path), 401, "/problems/unauthenticated");
    let token = app.token("temp@tampere.fi", rekisteri_tests::USER_PASSWORD);
    assert_problem(app.get_as(&token, &path), 404, "/problems/not-found");
    let grants: Value = app.get_as(&w.admin, &format!("/v1/accounts/{id}/service-areas")).json().unwrap();
    assert!(grants["items"][0]["valid_until"].is_string(), "the ended right stays as history");
    // A main user of another organisation cannot grant rights here.
    let (_, other_main) = app.add_user(&w.admin, "main@nokia.fi", &w.other_registrar, "main_user");
    let refused = app.post_as(&other_main, &format!("/v1/accounts/{id}/service-areas"), &json!({"service_area_id": home_care}));
    assert_problem(refused, 404, "/problems/not-found");
});

// The server keeps what access decisions read (the registrar's kind and strong-authentication
// rule, an account's service-area rights) under the access version (PL-12); a change written
// behind the API, as another server process or an operator's tool would, holds on the next
// request all the same.
app_test!(fn ax_4_a_kept_access_decision_follows_a_change_made_by_another_process(app) {
    use rekisteri_core::Clock;
    use rekisteri_db::schema::{account_service_areas, organisations};
    let w = world(app);
    let (path, id, token) = maija_and_a_handler_without_rights(app, &w);
    let home_care = w.home_care.clone();
    let grant = app.grant_service_area(&w.admin, &id, &home_care);
    // Twice, so that the second decision comes from what the server kept.
    for _ in 0..2 {
        assert_eq!(app.get_as(&token, &path).status().as_u16(), 200);
    }
    diesel::update(account_service_areas::table.find(&grant))
        .set(account_service_areas::valid_until.eq(Some(rekisteri_db::to_primitive(app.clock.now()))))
        .execute(&mut app.db.conn())
        .unwrap();
    assert_problem(app.get_as(&token, &path), 404, "/problems/not-found");
    // The handler who still has the right reads on, until the registrar asks for strong
    // authentication, which a password session is not.
    for _ in 0..2 {
        assert_eq!(app.get_as(&w.handler, &path).status().as_u16(), 200);
    }
    diesel::update(organisations::table.find(&w.registrar))
        .set(organisations::strong_authentication_required.eq(true))
        .execute(&mut app.db.conn())
        .unwrap();
    assert_problem(app.get_as(&w.handler, &path), 403, "/problems/strong-authentication-required");
});

app_test!(fn cl_17_client_changes_made_directly_in_the_database_are_in_the_change_history(app) {
    let w = world(app);
    let created = create(app, &w.handler, &w.registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider)])));
    let id = created["id"].as_str().unwrap();
    diesel::sql_query(format!("UPDATE clients SET language = 'sv' WHERE id = '{id}'"))
        .execute(&mut app.db.conn())
        .unwrap();
    let rows: Vec<(String, String)> = change_history::table
        .filter(change_history::table_name.eq("clients"))
        .filter(change_history::row_id.eq(id))
        .order(change_history::id)
        .select((change_history::operation, change_history::actor))
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].0, "INSERT");
    assert!(!rows[0].1.starts_with("database"), "the API's insert names the user: {rows:?}");
    assert_eq!(rows[1].0, "UPDATE");
    assert!(rows[1].1.starts_with("database"), "{rows:?}");
    let services: i64 = change_history::table
        .filter(change_history::table_name.eq("services"))
        .count()
        .get_result(&mut app.db.conn())
        .unwrap();
    assert_eq!(services, 1);
});

app_test!(fn ac_11_the_organiser_lists_the_rights_of_provider_users_working_in_its_register(app) {
    let w = world(app);
    create(app, &w.handler, &w.registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider)])));
    let (_, main_user) = app.add_user(&w.admin, "main@tampere.fi", &w.registrar, "main_user");
    let path = format!("/v1/registrars/{}/provider-users", w.registrar);
    let response = app.get_as(&main_user, &path);
    assert_eq!(response.status().as_u16(), 200);
    let list: Value = response.json().unwrap();
    let items = list["items"].as_array().unwrap();
    // Only the provider with a service in this register, not the other provider.
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["provider_id"], w.provider.as_str());
    assert_eq!(items[0]["roles"][0]["role"], "provider_staff");
    assert!(items[0]["roles"][0]["valid_from"].is_string());
    assert!(items[0].get("email").is_none(), "{list}");
    // A client handler is refused; another registrar's main user does not see the list.
    assert_problem(app.get_as(&w.handler, &path), 403, "/problems/forbidden");
    let (_, other_main) = app.add_user(&w.admin, "main@nokia.fi", &w.other_registrar, "main_user");
    assert_problem(app.get_as(&other_main, &path), 404, "/problems/not-found");
    let _ = &w.other_provider;
});

app_test!(fn ax_4_isolation_matrix_every_client_endpoint_answers_404_to_those_outside_and_logs_it(app) {
    let w = world(app);
    let created = create(app, &w.handler, &w.registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider)])));
    let id = created["id"].as_str().unwrap();
    let sid = created["services"][0]["id"].as_str().unwrap();
    let r = &w.registrar;
    let mut personal_assistance = home_care_voucher(&w.provider);
    personal_assistance["service_type"] = json!("personal_assistance");
    let event = json!({"delivered_on": "2026-03-02", "quantity": 1});
    // Another registrar's handler, another provider's staff, and a handler of the same registrar
    // without a right to the client's service area.
    for (caller, who) in [(&w.other_handler, "other registrar"), (&w.other_provider_staff, "other provider"), (&w.disability_handler, "no area right")] {
        let calls: Vec<(&str, reqwest::blocking::Response)> = vec![
            ("GET client", app.get_as(caller, &format!("/v1/registrars/{r}/clients/{id}"))),
            ("GET services", app.get_as(caller, &format!("/v1/registrars/{r}/clients/{id}/services"))),
            ("POST services", app.post_as(caller, &format!("/v1/registrars/{r}/clients/{id}/services"), &personal_assistance)),
            ("GET service", app.get_as(caller, &format!("/v1/registrars/{r}/services/{sid}"))),
            ("PATCH service", app.patch_as(caller, &format!("/v1/registrars/{r}/services/{sid}"), &json!({"quantity": 50}))),
            ("GET events", app.get_as(caller, &format!("/v1/registrars/{r}/services/{sid}/events"))),
            ("POST events", app.post_as(caller, &format!("/v1/registrars/{r}/services/{sid}/events"), &event)),
        ];
        for (call, response) in calls {
            assert_eq!(response.status().as_u16(), 404, "{who}: {call}");
        }
        let list = app.get_as(caller, &format!("/v1/registrars/{r}/clients"));
        let found = app.post_as(caller, &format!("/v1/registrars/{r}/clients/search"), &json!({"identity_code": MAIJA}));
        if who == "no area right" {
            assert_eq!(list.json::<Value>().unwrap()["items"], json!([]), "{who}: list");
            assert_eq!(found.json::<Value>().unwrap()["items"], json!([]), "{who}: search");
        } else {
            // No standing in the registrar at all: what a registrar that does not exist answers.
            assert_problem(list, 404, "/problems/not-found");
            assert_problem(found, 404, "/problems/not-found");
        }
    }
    // Every refused call on the client or its service is in the registrar's log as a denial
    // (for those outside the registrar, refused at its door, about the record the path names),
    // and the listings and searches of those outside as denials about the registrar.
    let denied = |data_id: &str| {
        usage_about(app, r, data_id).into_iter().filter(|(_, outcome, basis, _)| outcome == "denied" && basis == "none").count()
    };
    assert_eq!(denied(id), 3 * 3, "GET client, GET services and POST services by three callers");
    assert_eq!(denied(sid), 3 * 4, "the four service calls by three callers");
    assert_eq!(denied(r), 2 * 2, "the list and the search by the two callers outside");
    // Nothing changed: the service keeps its quantity and has no events.
    let service: Value = app.get_as(&w.handler, &format!("/v1/registrars/{r}/services/{sid}")).json().unwrap();
    assert_eq!(service["quantity"], 40);
    let events: Value = app.get_as(&w.handler, &format!("/v1/registrars/{r}/services/{sid}/events")).json().unwrap();
    assert_eq!(events["items"], json!([]));
});

app_test!(fn cl_1_a_client_is_changed_with_if_match_and_a_stale_version_is_refused(app) {
    let w = world(app);
    let created = create(app, &w.handler, &w.registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider)])));
    let path = format!("/v1/registrars/{}/clients/{}", w.registrar, created["id"].as_str().unwrap());
    let patch = |etag: Option<&str>, body: Value| {
        let mut request = app.client.patch(app.url(&path)).bearer_auth(&w.handler).json(&body);
        if let Some(etag) = etag {
            request = request.header("If-Match", etag);
        }
        request.send().unwrap()
    };
    assert_problem(patch(None, json!({"phone": "040 111 2222"})), 428, "/problems/precondition-required");
    let changed = patch(Some("\"1\""), json!({"phone": "040 111 2222", "protection_order": true}));
    assert_eq!(changed.status().as_u16(), 200);
    assert_eq!(changed.headers()["etag"], "\"2\"");
    let changed: Value = changed.json().unwrap();
    assert_eq!(changed["phone"], "040 111 2222");
    assert_eq!(changed["version"], 2);
    // CL-8: the order erased what was stored.
    assert!(changed.get("address").is_none() && changed.get("home_municipality").is_none(), "{changed}");
    let address: Option<Vec<u8>> = rekisteri_db::schema::clients::table
        .filter(rekisteri_db::schema::clients::id.eq(created["id"].as_str().unwrap()))
        .select(rekisteri_db::schema::clients::address)
        .first(&mut app.db.conn())
        .unwrap();
    assert_eq!(address, None);
    // The first version is stale now: 412, and nothing changes.
    assert_problem(patch(Some("\"1\""), json!({"phone": "040 999 9999"})), 412, "/problems/precondition-failed");
    let body = assert_problem(patch(Some("\"2\""), json!({"email": "not an address"})), 400, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "email");
    let read: Value = app.get_as(&w.handler, &path).json().unwrap();
    assert_eq!((read["phone"].clone(), read["version"].clone()), (json!("040 111 2222"), json!(2)));
    // A provider reads but does not change clients.
    assert_problem(
        app.client.patch(app.url(&path)).bearer_auth(&w.provider_staff).header("If-Match", "\"2\"").json(&json!({"phone": "040 1"})).send().unwrap(),
        403,
        "/problems/forbidden",
    );
});
