//! The client record's lifecycle and the statistics (CL-13..CL-16): end of visibility for the
//! registrar and for providers, the due list and archive export, anonymisation, deletion after
//! retention, and suppressed aggregates.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use rekisteri_clients::ClientRegister;
use rekisteri_clients::lifecycle::{
    AnonymiseReport, DeletionReport, anonymise_clients, run_anonymise, run_anonymise_in_batches, run_deletion,
};
use rekisteri_core::Clock;
use rekisteri_db::schema::{change_history, clients, disclosure_log, service_events, services, usage_log};
use rekisteri_tests::world::{HANDLER, NURSE, OTHER_HANDLER, OTHER_NURSE};
use rekisteri_tests::{TestApp, USER_PASSWORD, World, app_test, assert_problem};
use serde_json::{Value, json};
use time::macros::datetime;

/// A valid identity code of someone born 1 Jan 1980 with individual number `100 + n`.
fn code(n: u32) -> String {
    rekisteri_tests::identity_code("010180", 100 + n)
}

const AUDITOR: &str = "dpo@tampere.fi";

/// The shared world on 5 January 2026, where the handler also reaches meals and personal
/// assistance, and `registrar` has an auditor.
fn world(app: &TestApp) -> World {
    app.clock.set(datetime!(2026-01-05 09:00 UTC));
    let w = app.world();
    let elderly = app.service_area(&w.admin, &w.registrar, "elderly", &["meals", "personal_assistance"]);
    app.grant_service_area(&w.admin, &w.handler_id, &elderly);
    app.add_user(&w.admin, AUDITOR, &w.registrar, "auditor");
    w
}

/// A fresh session of `email` at the clock's time (moving the clock ends older sessions).
fn as_user(app: &TestApp, email: &str) -> String {
    app.token(email, USER_PASSWORD)
}

fn service(provider: &str, service_type: &str, valid_to: &str) -> Value {
    json!({"kind": "purchased_service", "service_type": service_type, "service_name": "Palvelu",
        "quantity": 100, "unit": "hour", "valid_from": "2026-01-01", "valid_to": valid_to,
        "provider_id": provider, "decision_ref": "KH-2026-17", "additional_info": "Avain naapurilla"})
}

/// Creates a client (born 1980, female, Tampere) with `services`; returns (client id, service ids).
fn create(app: &TestApp, w: &World, n: u32, services: Value) -> (String, Vec<String>) {
    let body = json!({"identity_code": code(n), "first_names": "Maija", "surname": "Meikäläinen",
        "gender": "female", "home_municipality": "837", "language": "fi", "email": "maija@esimerkki.fi",
        "phone": "+358 40 123 4567", "next_of_kin": {"name": "Matti", "phone": "040 765 4321"},
        "address": {"street_name": "Hämeenkatu", "postal_code": "33100"}, "services": services});
    let response = app.post_as(
        &as_user(app, HANDLER),
        &format!("/v1/registrars/{}/clients", w.registrar),
        &body,
    );
    assert_eq!(response.status().as_u16(), 201);
    let created: Value = response.json().unwrap();
    let ids = created["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    (created["id"].as_str().unwrap().to_owned(), ids)
}

fn close(app: &TestApp, w: &World, sid: &str, on: &str) {
    let response = app.patch_as(
        &as_user(app, HANDLER),
        &format!("/v1/registrars/{}/services/{sid}", w.registrar),
        &json!({"status": "closed", "closed_on": on}),
    );
    assert_eq!(response.status().as_u16(), 200);
}

fn record(app: &TestApp, w: &World, nurse: &str, sid: &str, on: &str) {
    let response = app.post_as(
        &as_user(app, nurse),
        &format!("/v1/registrars/{}/services/{sid}/events", w.registrar),
        &json!({"delivered_on": on, "quantity": 2, "unit_price_cents": 4500, "note": "Asiakas voi hyvin"}),
    );
    assert_eq!(response.status().as_u16(), 201, "{}", response.text().unwrap());
}

fn register(app: &TestApp) -> ClientRegister {
    ClientRegister {
        keyring: app.keyring.clone(),
        audit: app.audit.clone(),
    }
}

fn anonymise(app: &TestApp) -> AnonymiseReport {
    let mut own = app.db.pool.connect_unpooled().unwrap();
    run_anonymise(&mut own, &register(app), app.clock.now()).unwrap()
}

fn delete(app: &TestApp) -> DeletionReport {
    let mut own = app.db.pool.connect_unpooled().unwrap();
    run_deletion(&mut own, &register(app), app.clock.now()).unwrap()
}

fn status(app: &TestApp, token: &str, path: &str) -> u16 {
    app.get_as(token, path).status().as_u16()
}

fn listed(app: &TestApp, token: &str, registrar: &str) -> Vec<String> {
    let list: Value = app
        .get_as(token, &format!("/v1/registrars/{registrar}/clients"))
        .json()
        .unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

fn history_rows(app: &TestApp, ids: &[String]) -> i64 {
    change_history::table
        .filter(change_history::row_id.eq_any(ids))
        .count()
        .get_result(&mut app.db.conn())
        .unwrap()
}

app_test!(fn cl_13_client_stops_being_visible_to_registrar_after_12_months(app) {
    let w = world(app);
    let (gone, gone_services) = create(app, &w, 1, json!([service(&w.provider, "home_care", "2026-12-31")]));
    close(app, &w, &gone_services[0], "2026-06-30");
    // A client with an active service never stops being visible.
    let (active, _) = create(app, &w, 2, json!([service(&w.provider, "home_care", "2030-12-31")]));
    let client = |id: &str| format!("/v1/registrars/{}/clients/{id}", w.registrar);
    let service_path = format!("/v1/registrars/{}/services/{}", w.registrar, gone_services[0]);
    let search = |token: &str, n: u32| -> usize {
        let found: Value = app
            .post_as(token, &format!("/v1/registrars/{}/clients/search", w.registrar), &json!({"identity_code": code(n)}))
            .json()
            .unwrap();
        found["items"].as_array().unwrap().len()
    };
    // The last day of the 12 months: still there everywhere.
    app.clock.set(datetime!(2027-06-30 20:00 UTC));
    let token = as_user(app, HANDLER);
    assert_eq!(status(app, &token, &client(&gone)), 200);
    assert_eq!(status(app, &token, &service_path), 200);
    assert_eq!(listed(app, &token, &w.registrar), vec![gone.clone(), active.clone()].into_iter().collect::<std::collections::BTreeSet<_>>().into_iter().collect::<Vec<_>>());
    assert_eq!(search(&token, 1), 1);
    // The next day: 404 like a missing client, on every path, and the attempt is logged.
    app.clock.set(datetime!(2027-07-01 08:00 UTC));
    let token = as_user(app, HANDLER);
    assert_problem(app.get_as(&token, &client(&gone)), 404, "/problems/not-found");
    assert_problem(app.get_as(&token, &format!("{}/services", client(&gone))), 404, "/problems/not-found");
    assert_problem(app.get_as(&token, &service_path), 404, "/problems/not-found");
    assert_eq!(listed(app, &token, &w.registrar), vec![active.clone()]);
    assert_eq!(search(&token, 1), 0);
    assert_eq!(status(app, &token, &client(&active)), 200);
    assert_eq!(search(&token, 2), 1);
    let denied: i64 = usage_log::table
        .filter(usage_log::data_id.eq(&gone))
        .filter(usage_log::outcome.eq("denied"))
        .count()
        .get_result(&mut app.db.conn())
        .unwrap();
    assert_eq!(denied, 2, "the read and the services read are logged as denied");
    // Another registrar never saw the client at all.
    assert_problem(app.get_as(&as_user(app, OTHER_HANDLER), &format!("/v1/registrars/{}/clients/{gone}", w.other_registrar)), 404, "/problems/not-found");
});

app_test!(fn cl_13_provider_stops_seeing_a_client_12_months_after_its_last_event(app) {
    let w = world(app);
    let (id, sids) = create(app, &w, 1, json!([
        service(&w.provider, "home_care", "2026-12-31"),
        service(&w.other_provider, "meals", "2026-12-31"),
    ]));
    app.clock.set(datetime!(2026-03-10 12:00 UTC));
    record(app, &w, NURSE, &sids[0], "2026-03-10");
    app.clock.set(datetime!(2026-05-01 12:00 UTC));
    close(app, &w, &sids[0], "2026-04-30");
    close(app, &w, &sids[1], "2026-04-30");
    let path = format!("/v1/registrars/{}/clients/{id}", w.registrar);
    app.clock.set(datetime!(2027-03-10 12:00 UTC));
    assert_eq!(status(app, &as_user(app, NURSE), &path), 200);
    // The other provider never recorded an event: its closing date counts.
    assert_eq!(status(app, &as_user(app, OTHER_NURSE), &path), 200);
    app.clock.set(datetime!(2027-03-11 12:00 UTC));
    assert_problem(app.get_as(&as_user(app, NURSE), &path), 404, "/problems/not-found");
    assert_problem(app.get_as(&as_user(app, NURSE), &format!("/v1/registrars/{}/services/{}", w.registrar, sids[0])), 404, "/problems/not-found");
    assert!(listed(app, &as_user(app, NURSE), &w.registrar).is_empty());
    assert_eq!(status(app, &as_user(app, OTHER_NURSE), &path), 200);
    assert_eq!(listed(app, &as_user(app, OTHER_NURSE), &w.registrar), vec![id.clone()]);
    assert_eq!(status(app, &as_user(app, HANDLER), &path), 200);
    app.clock.set(datetime!(2027-05-01 12:00 UTC));
    assert_problem(app.get_as(&as_user(app, OTHER_NURSE), &path), 404, "/problems/not-found");
    assert_problem(app.get_as(&as_user(app, HANDLER), &path), 404, "/problems/not-found");
});

/// Two clients of home care: one whose service, with a visit on `visited_on` recorded at `now`,
/// ended on 30 June 2026, and one whose service runs to 2030. Returns (the departed client, its
/// services, the active client).
fn departed_and_active(
    app: &TestApp,
    w: &World,
    now: time::OffsetDateTime,
    visited_on: &str,
) -> (String, Vec<String>, String) {
    let (departed, services) = create(app, w, 1, json!([service(&w.provider, "home_care", "2026-12-31")]));
    app.clock.set(now);
    record(app, w, NURSE, &services[0], visited_on);
    close(app, w, &services[0], "2026-06-30");
    let (active, _) = create(app, w, 2, json!([service(&w.provider, "home_care", "2030-12-31")]));
    (departed, services, active)
}

app_test!(fn cl_14_due_list_and_archive_export_before_anonymisation(app) {
    let w = world(app);
    let (due, _, active) = departed_and_active(app, &w, datetime!(2026-06-01 12:00 UTC), "2026-05-20");
    app.clock.set(datetime!(2027-06-10 12:00 UTC));
    let token = as_user(app, HANDLER);
    let path = |rest: &str| format!("/v1/registrars/{}/lifecycle/{rest}", w.registrar);
    let list: Value = app.get_as(&token, &path("due")).json().unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["client_id"], due.as_str());
    assert_eq!(list["items"][0]["last_service_ended_on"], "2026-06-30");
    assert_eq!(list["items"][0]["visible_until"], "2027-06-30");
    assert_eq!(list["items"][0]["anonymised_from"], "2027-07-01");
    assert!(list["next_cursor"].is_null());
    // A shorter lead time does not reach it yet; a bad one is a 400.
    let list: Value = app.get_as(&token, &path("due?lead_days=20")).json().unwrap();
    assert!(list["items"].as_array().unwrap().is_empty());
    let body = assert_problem(app.get_as(&token, &path("due?lead_days=400")), 400, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "lead_days");
    // The export holds the whole record in clear, with the events.
    let export: Value = app.get_as(&token, &path("archive-export")).json().unwrap();
    let items = export["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["client"]["identity_code"], code(1));
    assert_eq!(items[0]["client"]["surname"], "Meikäläinen");
    assert_eq!(items[0]["client"]["services"][0]["additional_info"], "Avain naapurilla");
    assert_eq!(items[0]["events"][0]["note"], "Asiakas voi hyvin");
    assert_eq!(items[0]["anonymised_from"], "2027-07-01");
    assert!(!export.to_string().contains(&active));
    // The export is a disclosure to the archive, and both reads are in the usage log.
    let disclosures: Vec<String> = disclosure_log::table
        .filter(disclosure_log::registrar_id.eq(&w.registrar))
        .select(disclosure_log::recipient_kind)
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(disclosures, vec!["archive".to_owned()]);
    let kinds: Vec<String> = usage_log::table
        .filter(usage_log::data_id.eq(&due))
        .filter(usage_log::data_kind.like("client_%"))
        .order(usage_log::seq)
        .select(usage_log::data_kind)
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(kinds, vec!["client_lifecycle", "client_archive_export"]);
    // Providers, other registrars and roles without the permissions get nothing.
    assert_problem(app.get_as(&as_user(app, NURSE), &path("due")), 404, "/problems/not-found");
    assert_problem(app.get_as(&as_user(app, NURSE), &path("archive-export")), 404, "/problems/not-found");
    assert_problem(app.get_as(&as_user(app, OTHER_HANDLER), &path("archive-export")), 404, "/problems/not-found");
    assert_problem(app.get_as(&as_user(app, AUDITOR), &path("archive-export")), 403, "/problems/forbidden");
});

app_test!(fn cl_14_anonymisation_removes_identity_data_irreversibly_and_idempotently(app) {
    let w = world(app);
    let (gone, sids, kept) = departed_and_active(app, &w, datetime!(2026-03-10 12:00 UTC), "2026-03-10");
    let proxy: Value = app
        .post_as(&as_user(app, HANDLER), &format!("/v1/registrars/{}/clients/{gone}/proxies", w.registrar),
            &json!({"identity_code": code(40), "first_names": "Pekka", "surname": "Puolestapuhuja", "valid_from": "2026-01-01"}))
        .json()
        .unwrap();
    let proxy_id = proxy["id"].as_str().unwrap().to_owned();
    assert!(history_rows(app, std::slice::from_ref(&proxy_id)) > 0);
    let event_ids: Vec<String> = service_events::table.select(service_events::id).load(&mut app.db.conn()).unwrap();
    assert!(history_rows(app, std::slice::from_ref(&gone)) > 0);
    // Still visible: nothing to do.
    app.clock.set(datetime!(2027-06-30 12:00 UTC));
    assert_eq!(anonymise(app), AnonymiseReport::default());
    app.clock.set(datetime!(2027-07-01 02:00 UTC));
    assert_eq!(anonymise(app), AnonymiseReport { services_closed: 0, clients_anonymised: 1 });
    assert_eq!(anonymise(app), AnonymiseReport::default(), "a second run changes nothing");
    type Row = (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);
    let row: Row = clients::table
        .filter(clients::id.eq(&gone))
        .select((clients::subject_index, clients::identity_code, clients::first_names, clients::surname,
            clients::email, clients::phone, clients::next_of_kin, clients::address))
        .first(&mut app.db.conn())
        .unwrap();
    assert_eq!(row, (None, None, None, None, None, None, None, None));
    let kept_fields: (Option<String>, String, Option<i32>, Option<String>, bool) = clients::table
        .filter(clients::id.eq(&gone))
        .select((clients::home_municipality, clients::gender, clients::birth_year, clients::language, clients::anonymised_at.is_not_null()))
        .first(&mut app.db.conn())
        .unwrap();
    assert_eq!(kept_fields, (Some("837".into()), "female".into(), Some(1980), None, true));
    let service_row: (Option<Vec<u8>>, Option<String>, i64) = services::table
        .filter(services::id.eq(&sids[0]))
        .select((services::additional_info, services::decision_ref, services::quantity_centi))
        .first(&mut app.db.conn())
        .unwrap();
    assert_eq!(service_row, (None, None, 10000));
    let event: (Option<Vec<u8>>, i64, i64) = service_events::table
        .filter(service_events::client_id.eq(&gone))
        .select((service_events::note, service_events::quantity_centi, service_events::unit_price_cents))
        .first(&mut app.db.conn())
        .unwrap();
    assert_eq!(event, (None, 200, 4500));
    // No history row of the client, its services or events keeps the old ciphertexts.
    let mut ids = vec![gone.clone()];
    ids.extend(sids.iter().cloned());
    ids.extend(event_ids.iter().cloned());
    assert_eq!(history_rows(app, &ids), 0);
    // The client's proxies go with the identity data, history and all.
    let proxies_left: i64 = rekisteri_db::schema::proxies::table.count().get_result(&mut app.db.conn()).unwrap();
    assert_eq!(proxies_left, 0);
    assert_eq!(history_rows(app, std::slice::from_ref(&proxy_id)), 0);
    assert!(history_rows(app, std::slice::from_ref(&kept)) > 0, "other clients' history stays");
    // The change history stays append-only for everyone else.
    assert!(diesel::delete(change_history::table).execute(&mut app.db.conn()).is_err());
    // The person is not found by identity code and can come back as a new client.
    let token = as_user(app, HANDLER);
    let found: Value = app
        .post_as(&token, &format!("/v1/registrars/{}/clients/search", w.registrar), &json!({"identity_code": code(1)}))
        .json()
        .unwrap();
    assert!(found["items"].as_array().unwrap().is_empty());
    let (again, _) = create(app, &w, 1, json!([service(&w.provider, "home_care", "2027-12-31")]));
    assert_ne!(again, gone);
    let run = rekisteri_tests::security_event_count(app, "clients_anonymise_run");
    assert_eq!(run, 3);
});

app_test!(fn pl_15_anonymisation_walks_in_creation_order_across_batches_and_ties(app) {
    let w = world(app);
    // Four clients created at one moment (ties on created_at), then three at a later one; one
    // of the later ones keeps a service and stays visible.
    let mut gone = Vec::new();
    let mut gone_services = Vec::new();
    for n in 1..=4 {
        let (id, sids) = create(app, &w, n, json!([service(&w.provider, "home_care", "2026-06-30")]));
        gone.push(id);
        gone_services.extend(sids);
    }
    app.clock.set(datetime!(2026-01-06 10:00 UTC));
    for n in 5..=6 {
        let (id, sids) = create(app, &w, n, json!([service(&w.provider, "meals", "2026-06-30")]));
        gone.push(id);
        gone_services.extend(sids);
    }
    let (kept, _) = create(app, &w, 7, json!([service(&w.provider, "home_care", "2030-12-31")]));
    app.clock.set(datetime!(2027-07-01 02:00 UTC));
    let mut own = app.db.pool.connect_unpooled().unwrap();
    // Batches of two: the cursor crosses the tie and the moment between the groups.
    let report = run_anonymise_in_batches(&mut own, &register(app), app.clock.now(), 2).unwrap();
    assert_eq!(report, AnonymiseReport { services_closed: 0, clients_anonymised: 6 });
    let mut anonymised: Vec<String> = clients::table
        .filter(clients::anonymised_at.is_not_null())
        .select(clients::id)
        .load(&mut app.db.conn())
        .unwrap();
    anonymised.sort();
    let mut expected = gone.clone();
    expected.sort();
    assert_eq!(anonymised, expected);
    let mut rows = gone.clone();
    rows.extend(gone_services);
    assert_eq!(history_rows(app, &rows), 0, "no history row of the anonymised clients or their services");
    assert!(history_rows(app, std::slice::from_ref(&kept)) > 0, "the visible client's history stays");
    let purge_rows: i64 = change_history::table
        .filter(change_history::actor.eq(rekisteri_db::history::PURGE_ACTOR))
        .count()
        .get_result(&mut app.db.conn())
        .unwrap();
    assert_eq!(purge_rows, 0);
    assert_eq!(
        run_anonymise_in_batches(&mut own, &register(app), app.clock.now(), 2).unwrap(),
        AnonymiseReport::default()
    );
});

app_test!(fn cl_15_anonymised_data_is_deleted_after_retention_and_departed_clients_services_close(app) {
    let w = world(app);
    let (dead, sids) = create(app, &w, 1, json!([
        service(&w.provider, "home_care", "2026-12-31"),
        service(&w.provider, "meals", "2026-12-31"),
    ]));
    let (alive, _) = create(app, &w, 2, json!([service(&w.provider, "home_care", "2026-12-31")]));
    app.clock.set(datetime!(2026-03-10 12:00 UTC));
    record(app, &w, NURSE, &sids[0], "2026-03-09");
    let token = as_user(app, HANDLER);
    let client: Value = app.get_as(&token, &format!("/v1/registrars/{}/clients/{dead}", w.registrar)).json().unwrap();
    let response = app.client
        .patch(app.url(&format!("/v1/registrars/{}/clients/{dead}", w.registrar)))
        .bearer_auth(&token)
        .header("If-Match", format!("\"{}\"", client["version"]))
        .json(&json!({"died_on": "2026-03-12"}))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // Not yet dead by the clock: nothing closes.
    assert_eq!(anonymise(app).services_closed, 0);
    app.clock.set(datetime!(2026-03-13 01:00 UTC));
    assert_eq!(anonymise(app), AnonymiseReport { services_closed: 2, clients_anonymised: 0 });
    assert_eq!(anonymise(app), AnonymiseReport::default());
    let closed: Vec<(String, Option<time::Date>)> = services::table
        .filter(services::client_id.eq(&dead))
        .select((services::status, services::closed_on))
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(closed, vec![("closed".into(), Some(time::macros::date!(2026-03-12))); 2]);
    // CL-13 then runs its course: anonymised 12 months after the closing.
    app.clock.set(datetime!(2027-03-13 01:00 UTC));
    assert_eq!(anonymise(app).clients_anonymised, 1);
    // Retention: five years after the anonymisation by default.
    app.clock.set(datetime!(2032-03-12 01:00 UTC));
    assert_eq!(delete(app), DeletionReport::default());
    app.clock.set(datetime!(2032-03-13 01:00 UTC));
    assert_eq!(delete(app), DeletionReport { clients_deleted: 1, services_deleted: 2, events_deleted: 1 });
    assert_eq!(delete(app), DeletionReport::default(), "a second run deletes nothing");
    let left: i64 = clients::table.filter(clients::id.eq(&dead)).count().get_result(&mut app.db.conn()).unwrap();
    assert_eq!(left, 0);
    let left: i64 = services::table.filter(services::client_id.eq(&dead)).count().get_result(&mut app.db.conn()).unwrap();
    assert_eq!(left, 0);
    let mut ids = vec![dead.clone()];
    ids.extend(sids.iter().cloned());
    assert_eq!(history_rows(app, &ids), 0, "no history row is left of the deleted client");
    // The other client was never anonymised (no run since its end of visibility): kept.
    let kept: i64 = clients::table.filter(clients::id.eq(&alive)).count().get_result(&mut app.db.conn()).unwrap();
    assert_eq!(kept, 1);
    let runs = rekisteri_tests::security_event_count(app, "clients_deletion_run");
    assert_eq!(runs, 3);
});

app_test!(fn cl_16_cells_under_five_people_are_suppressed(app) {
    let w = world(app);
    // home_care: 6 people, meals: 7, personal_assistance: 2.
    let mut n = 0;
    let mut home_care = Vec::new();
    for (service_type, people) in [("home_care", 6), ("meals", 7), ("personal_assistance", 2)] {
        for _ in 0..people {
            n += 1;
            let (_, sids) = create(app, &w, n, json!([service(&w.provider, service_type, "2026-12-31")]));
            if service_type == "home_care" {
                home_care.push(sids[0].clone());
            }
        }
    }
    app.clock.set(datetime!(2026-03-10 12:00 UTC));
    for sid in &home_care {
        record(app, &w, NURSE, sid, "2026-03-02");
    }
    let token = as_user(app, HANDLER);
    let stats = |token: &str, query: &str| -> Value {
        let response = app.get_as(token, &format!("/v1/registrars/{}/statistics/clients?from=2026-01&to=2026-12&{query}", w.registrar));
        assert_eq!(response.status().as_u16(), 200);
        response.json().unwrap()
    };
    let report = stats(&token, "group_by=service_type");
    assert_eq!(report["threshold"], 5);
    assert_eq!(report["cells"], json!([
        {"service_type": "home_care", "clients": null, "services": null, "suppressed": true},
        {"service_type": "meals", "clients": 7, "services": 7, "suppressed": false},
        {"service_type": "personal_assistance", "clients": null, "services": null, "suppressed": true},
    ]));
    // The total is a coarser query, also suppressed by the same rule when small.
    let report = stats(&token, "group_by=");
    assert_eq!(report["cells"], json!([{"clients": 15, "services": 15, "suppressed": false}]));
    // By month: every month of 2026 holds all 15 in three cells.
    let report = stats(&token, "group_by=month,age_group,gender");
    let cells = report["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 12);
    assert_eq!(cells[0], json!({"month": "2026-01", "age_group": "18-64", "gender": "female", "clients": 15, "services": 15, "suppressed": false}));
    // Services: 6 people's events at one provider in March.
    let response = app.get_as(&token, &format!("/v1/registrars/{}/statistics/services?from=2026-01&to=2026-12", w.registrar));
    assert_eq!(response.status().as_u16(), 200);
    let report: Value = response.json().unwrap();
    assert_eq!(report["cells"], json!([{"provider_id": w.provider, "service_type": "home_care", "month": "2026-03",
        "unit": "hour", "clients": 6, "events": 6, "quantity": 12, "amount_cents": 54000, "suppressed": false}]));
    // Statistics write one usage entry without a person, and never per person.
    let entries: Vec<(Option<Vec<u8>>, String)> = usage_log::table
        .filter(usage_log::data_kind.like("statistics_%"))
        .select((usage_log::subject_index, usage_log::data_kind))
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(entries.len(), 4);
    assert!(entries.iter().all(|(subject, _)| subject.is_none()));
    // Providers, other registrars and roles without read_statistics get nothing.
    let path = format!("/v1/registrars/{}/statistics/clients", w.registrar);
    assert_problem(app.get_as(&as_user(app, NURSE), &path), 404, "/problems/not-found");
    assert_problem(app.get_as(&as_user(app, OTHER_HANDLER), &path), 404, "/problems/not-found");
    assert_problem(app.get_as(&as_user(app, AUDITOR), &path), 403, "/problems/forbidden");
    let body = assert_problem(app.get_as(&token, &format!("{path}?group_by=name")), 400, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "group_by");
    let body = assert_problem(app.get_as(&token, &format!("{path}?from=2020-01&to=2026-12")), 422, "/problems/business-rule");
    assert_eq!(body["errors"][0]["field"], "to");
    let _ = w.other_registrar;
    let _ = w.other_provider;
});

app_test!(fn cl_14_a_client_granted_a_service_after_the_run_picked_them_is_not_anonymised(app) {
    let w = world(app);
    let (kept, _) = create(app, &w, 1, json!([service(&w.provider, "home_care", "2026-03-31")]));
    let (gone, _) = create(app, &w, 2, json!([service(&w.provider, "home_care", "2026-03-31")]));
    // On the last day both are visible, a request grants `kept` a new service; the nightly
    // run, a minute later, had picked both before that request wrote.
    app.clock.set(datetime!(2027-03-31 23:59 UTC));
    let response = app.post_as(
        &as_user(app, HANDLER),
        &format!("/v1/registrars/{}/clients/{kept}/services", w.registrar),
        &service(&w.provider, "meals", "2027-12-31"),
    );
    assert_eq!(response.status().as_u16(), 201, "{}", response.text().unwrap());
    app.clock.set(datetime!(2027-04-01 00:00 UTC));
    let mut own = app.db.pool.connect_unpooled().unwrap();
    let picked = [kept.clone(), gone.clone()];
    assert_eq!(anonymise_clients(&mut own, &register(app), &w.registrar, &picked, app.clock.now()).unwrap(), 1);
    let anonymised: Vec<String> = clients::table
        .filter(clients::anonymised_at.is_not_null())
        .select(clients::id)
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(anonymised, vec![gone.clone()]);
    let client: Value = app
        .get_as(&as_user(app, HANDLER), &format!("/v1/registrars/{}/clients/{kept}", w.registrar))
        .json()
        .unwrap();
    assert_eq!(client["identity_code"], code(1));
    // The whole run agrees: nothing more is due.
    assert_eq!(anonymise(app), AnonymiseReport::default());
});

/// Waits until a backend of the test's PostgreSQL database waits for a lock, or `request` has
/// finished (a request that never waits has its answer checked by the caller).
fn until_waiting_for_a_lock(app: &TestApp, request: &std::thread::JoinHandle<u16>) {
    let mut conn = app.db.conn();
    while !request.is_finished() {
        let waiting: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock')",
        ))
        .get_result(&mut *conn)
        .unwrap();
        if waiting > 0 {
            return;
        }
        std::thread::yield_now();
    }
}

/// `body` sent by `method` to `path` as `token`, on a thread of its own; its status.
fn send_aside(
    app: &TestApp,
    method: reqwest::Method,
    token: String,
    path: &str,
    body: Value,
) -> std::thread::JoinHandle<u16> {
    let (http, url) = (app.client.clone(), app.url(path));
    std::thread::spawn(move || {
        http.request(method, url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .unwrap()
            .status()
            .as_u16()
    })
}

app_test!(fn cl_14_a_service_granted_while_the_run_holds_the_client_is_refused(app) {
    let w = world(app);
    let (client, _) = create(app, &w, 1, json!([service(&w.provider, "home_care", "2026-12-31")]));
    let mut run = app.db.conn();
    let rekisteri_db::DbConnection::Postgres(pg) = &mut *run else {
        // SQLite has one writer: the request's transaction and the run's cannot interleave.
        return;
    };
    // The run's batch transaction, as far as its lock of the client.
    pg.batch_execute(&format!("BEGIN; SELECT id FROM clients WHERE id = '{client}' FOR UPDATE")).unwrap();
    let request = send_aside(
        app,
        reqwest::Method::POST,
        as_user(app, HANDLER),
        &format!("/v1/registrars/{}/clients/{client}/services", w.registrar),
        service(&w.provider, "meals", "2026-12-31"),
    );
    until_waiting_for_a_lock(app, &request);
    pg.batch_execute(&format!(
        "UPDATE clients SET anonymised_at = now(), subject_index = NULL, identity_code = NULL WHERE id = '{client}'; COMMIT"
    ))
    .unwrap();
    assert_eq!(request.join().unwrap(), 404);
    let services_of_client: i64 = services::table
        .filter(services::client_id.eq(&client))
        .count()
        .get_result(&mut app.db.conn())
        .unwrap();
    assert_eq!(services_of_client, 1, "no service was added to the anonymised client");
});

app_test!(fn cl_4_a_change_of_a_service_keeps_what_another_changed_meanwhile(app) {
    let w = world(app);
    let (_, sids) = create(app, &w, 1, json!([service(&w.provider, "home_care", "2026-12-31")]));
    let sid = &sids[0];
    let mut other = app.db.conn();
    let rekisteri_db::DbConnection::Postgres(pg) = &mut *other else {
        // SQLite has one writer: the two changes cannot interleave.
        return;
    };
    // Another change of the service, under way: it holds the row.
    pg.batch_execute(&format!("BEGIN; SELECT id FROM services WHERE id = '{sid}' FOR UPDATE")).unwrap();
    let request = send_aside(
        app,
        reqwest::Method::PATCH,
        as_user(app, HANDLER),
        &format!("/v1/registrars/{}/services/{sid}", w.registrar),
        json!({"quantity": 150}),
    );
    until_waiting_for_a_lock(app, &request);
    pg.batch_execute(&format!(
        "UPDATE services SET valid_to = '2027-06-30', version = version + 1 WHERE id = '{sid}'; COMMIT"
    ))
    .unwrap();
    assert_eq!(request.join().unwrap(), 200);
    let (valid_to, quantity, version): (time::Date, i64, i64) = services::table
        .filter(services::id.eq(sid))
        .select((services::valid_to, services::quantity_centi, services::version))
        .first(&mut app.db.conn())
        .unwrap();
    assert_eq!(valid_to, time::macros::date!(2027 - 06 - 30), "the other change is kept");
    assert_eq!(quantity, 15_000, "this change is made");
    assert_eq!(version, 3);
});

app_test!(fn cl_14_anonymisation_keeps_the_birth_year_of_a_client_stored_before_it_was_kept(app) {
    let w = world(app);
    let (gone, _, kept) = departed_and_active(app, &w, datetime!(2026-03-10 12:00 UTC), "2026-03-10");
    // A row from before migration 000009 kept the year of birth: only its identity code has it.
    diesel::update(clients::table.filter(clients::id.eq(&gone)))
        .set(clients::birth_year.eq(None::<i32>))
        .execute(&mut app.db.conn())
        .unwrap();
    app.clock.set(datetime!(2027-07-01 02:00 UTC));
    assert_eq!(anonymise(app), AnonymiseReport { services_closed: 0, clients_anonymised: 1 });
    let years: Vec<(String, Option<i32>, Option<Vec<u8>>)> = clients::table
        .filter(clients::id.eq_any([&gone, &kept]))
        .order(clients::id.eq(&kept))
        .select((clients::id, clients::birth_year, clients::identity_code))
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(years.len(), 2);
    assert_eq!((&years[0].0, years[0].1, years[0].2.is_none()), (&gone, Some(1980), true), "taken from the code, then the code removed");
    assert_eq!((&years[1].0, years[1].2.is_some()), (&kept, true), "the visible client is untouched");
});
