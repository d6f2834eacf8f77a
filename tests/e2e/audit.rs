//! The audit trail over HTTP: queries (AU-6), export (AU-7), verification (AU-5), security
//! events (AU-3), and the log of the log queries themselves (AU-1).

use diesel::connection::SimpleConnection;
use rekisteri_audit::{AccessBasis, ActorKind, NewEntry, Outcome, UsageEntry};
use rekisteri_core::{Clock, PersonalIdentityCode, TemporaryCodesAllowed};
use rekisteri_tests::{TestApp, app_test, assert_problem};
use serde_json::{Value, json};

const PERSON_A: &str = "131052-308T";
const PERSON_B: &str = "010101A123N";

struct Registrar {
    id: String,
    auditor: String,
    auditor_id: String,
}

/// A registrar with an auditor, and the admin's token.
fn registrar(app: &TestApp, admin: &str, name: &str) -> Registrar {
    let id = app.create_organisation(admin, name, "wellbeing_services_county");
    let email = format!("dpo@{}.fi", name.to_lowercase());
    let (auditor_id, auditor) = app.add_user(admin, &email, &id, "auditor");
    Registrar {
        id,
        auditor,
        auditor_id,
    }
}

fn code(text: &str) -> PersonalIdentityCode {
    PersonalIdentityCode::parse(text, TemporaryCodesAllowed::No).unwrap()
}

/// A usage entry of a staff member reading a client of `registrar`.
fn read_of(app: &TestApp, registrar: &str, person: &str, actor: &str, kind: &str, minutes: i64) -> NewEntry {
    NewEntry::Usage(UsageEntry {
        occurred_at: rekisteri_db::to_primitive(app.clock.now()) + time::Duration::minutes(minutes),
        registrar_id: registrar.to_owned(),
        log_controller_id: registrar.to_owned(),
        subject_index: Some(rekisteri_audit::subject_index(&app.keyring, &code(person))),
        data_kind: kind.to_owned(),
        data_id: Some(format!("client-of-{minutes}")),
        outcome: Outcome::Used,
        actor_kind: ActorKind::Staff,
        actor_id: actor.to_owned(),
        actor_name: Some("Maija Mallikas".to_owned()),
        on_behalf_of: None,
        service_unit_oid: None,
        purpose: "home care".to_owned(),
        access_basis: AccessBasis::CareRelationship,
        special_reason: None,
        request_id: format!("req-{minutes}"),
        calling_system: None,
    })
}

fn seqs(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect()
}

app_test!(fn au_6_auditor_pages_the_registrar_usage_log_newest_first_with_a_cursor(app) {
    let admin = app.bootstrap_admin();
    let r = registrar(app, &admin, "Pirkanmaa");
    app.audit
        .append((1..=5).map(|n| read_of(app, &r.id, PERSON_A, "nurse-1", "client", n)).collect())
        .unwrap();
    let mut seen = Vec::new();
    let mut path = format!("/v1/registrars/{}/audit/usage?user=nurse-1&limit=2", r.id);
    loop {
        let page: Value = app.get_as(&r.auditor, &path).json().unwrap();
        seen.extend(seqs(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/registrars/{}/audit/usage?user=nurse-1&limit=2&cursor={cursor}", r.id),
            None => break,
        }
    }
    assert_eq!(seen, vec![5, 4, 3, 2, 1]);
    let page: Value = app.get_as(&r.auditor, &format!("/v1/registrars/{}/audit/usage?user=nurse-1&limit=1", r.id)).json().unwrap();
    let entry = &page["items"][0];
    assert_eq!(entry["actor_id"], "nurse-1");
    assert_eq!(entry["purpose"], "home care");
    assert_eq!(entry["access_basis"], "care_relationship");
    assert_eq!(entry["hash"].as_str().unwrap().len(), 64);
    assert!(!page.to_string().contains(PERSON_A));
});

app_test!(fn au_6_filters_by_kind_and_time(app) {
    let admin = app.bootstrap_admin();
    let r = registrar(app, &admin, "Pirkanmaa");
    app.audit
        .append(vec![
            read_of(app, &r.id, PERSON_A, "nurse-1", "client", 10),
            read_of(app, &r.id, PERSON_A, "nurse-1", "service", 20),
            read_of(app, &r.id, PERSON_B, "nurse-2", "client", 30),
        ])
        .unwrap();
    let start = rekisteri_audit::format_time(rekisteri_db::to_primitive(app.clock.now()));
    let at = |minutes: i64| rekisteri_audit::format_time(rekisteri_db::to_primitive(app.clock.now() + time::Duration::minutes(minutes)));
    let list = |query: String| -> Value {
        app.get_as(&r.auditor, &format!("/v1/registrars/{}/audit/usage?{query}", r.id)).json().unwrap()
    };
    let clients = list("kind=client".into());
    assert_eq!(clients["items"].as_array().unwrap().iter().map(|e| e["data_id"].as_str().unwrap()).collect::<Vec<_>>(),
        vec!["client-of-30", "client-of-10"]);
    let window = list(format!("from={}&to={}", at(15), at(30)));
    assert_eq!(window["items"].as_array().unwrap().len(), 1, "{window}");
    assert_eq!(window["items"][0]["data_kind"], "service");
    assert!(list(format!("from={start}&kind=service"))["items"].as_array().unwrap().len() == 1);
    let bad = app.get_as(&r.auditor, &format!("/v1/registrars/{}/audit/usage?from=yesterday", r.id));
    let problem = assert_problem(bad, 400, "/problems/validation");
    assert_eq!(problem["errors"][0]["field"], "from");
    let bad = app.get_as(&r.auditor, &format!("/v1/registrars/{}/audit/usage?cursor=bm9wZQ", r.id));
    assert_eq!(assert_problem(bad, 422, "/problems/business-rule")["errors"][0]["field"], "cursor");
});

app_test!(fn au_6_only_the_registrars_own_auditor_reads_its_log(app) {
    let admin = app.bootstrap_admin();
    let r = registrar(app, &admin, "Pirkanmaa");
    let other = registrar(app, &admin, "Satakunta");
    let (_, main_user) = app.add_user(&admin, "main@pirkanmaa.fi", &r.id, "main_user");
    app.audit.append(vec![read_of(app, &r.id, PERSON_A, "nurse-1", "client", 1)]).unwrap();
    for token in [&other.auditor, &admin, &main_user] {
        for path in ["usage", "disclosures"] {
            assert_problem(app.get_as(token, &format!("/v1/registrars/{}/audit/{path}", r.id)), 404, "/problems/not-found");
        }
        let search = app.post_as(token, &format!("/v1/registrars/{}/audit/usage/search", r.id), &json!({"identity_code": PERSON_A}));
        assert_problem(search, 404, "/problems/not-found");
    }
    // The same answer as for a registrar that does not exist.
    assert_problem(app.get_as(&other.auditor, "/v1/registrars/no-such-registrar/audit/usage"), 404, "/problems/not-found");
    let own: Value = app.get_as(&other.auditor, &format!("/v1/registrars/{}/audit/usage", other.id)).json().unwrap();
    assert!(own["items"].as_array().unwrap().iter().all(|e| e["registrar_id"] == other.id.as_str()));
});

app_test!(fn au_6_search_by_identity_code_in_the_body_finds_one_persons_entries_and_is_logged(app) {
    let admin = app.bootstrap_admin();
    let r = registrar(app, &admin, "Pirkanmaa");
    app.audit
        .append(vec![
            read_of(app, &r.id, PERSON_A, "nurse-1", "client", 1),
            read_of(app, &r.id, PERSON_B, "nurse-1", "client", 2),
            read_of(app, &r.id, PERSON_A, "nurse-2", "client", 3),
        ])
        .unwrap();
    let search = || -> Value {
        let response = app.post_as(&r.auditor, &format!("/v1/registrars/{}/audit/usage/search", r.id), &json!({"identity_code": PERSON_A}));
        assert_eq!(response.status().as_u16(), 200);
        response.json().unwrap()
    };
    let first = search();
    assert_eq!(seqs(&first), vec![3, 1]);
    // The search itself is a use of person A's data: the next search shows it.
    let second = search();
    let newest = &second["items"][0];
    assert_eq!(newest["data_kind"], "usage_log");
    assert_eq!(newest["actor_id"], r.auditor_id.as_str());
    assert_eq!(newest["purpose"], "log supervision");
    assert_eq!(seqs(&second)[1..], [3, 1]);

    let wrong = app.post_as(&r.auditor, &format!("/v1/registrars/{}/audit/usage/search", r.id), &json!({"identity_code": "131052-308U"}));
    let problem = assert_problem(wrong, 400, "/problems/validation");
    assert_eq!(problem["errors"][0]["field"], "identity_code");
    assert!(!problem.to_string().contains("131052-308"), "{problem}");
});

app_test!(fn au_1_every_log_listing_is_logged_before_it_answers(app) {
    let admin = app.bootstrap_admin();
    let r = registrar(app, &admin, "Pirkanmaa");
    let response = app.get_as(&r.auditor, &format!("/v1/registrars/{}/audit/disclosures", r.id));
    assert_eq!(response.status().as_u16(), 200);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let usage: Value = app.get_as(&r.auditor, &format!("/v1/registrars/{}/audit/usage?kind=disclosure_log", r.id)).json().unwrap();
    let entry = &usage["items"][0];
    assert_eq!(entry["request_id"], request_id.as_str());
    assert_eq!(entry["actor_id"], r.auditor_id.as_str());
    assert_eq!(entry["outcome"], "used");
});

app_test!(fn au_5_verify_over_http_reports_intact_and_names_the_first_break(app) {
    let admin = app.bootstrap_admin();
    let r = registrar(app, &admin, "Pirkanmaa");
    app.audit
        .append((1..=3).map(|n| read_of(app, &r.id, PERSON_A, "nurse-1", "client", n)).collect())
        .unwrap();
    assert_problem(app.get_as(&r.auditor, "/v1/audit/verify"), 403, "/problems/forbidden");
    let report: Value = app.get_as(&admin, "/v1/audit/verify").json().unwrap();
    assert_eq!(report["intact"], true, "{report}");
    assert!(report["entries"].as_u64().unwrap() >= 3);

    let chain = format!("usage:{}", r.id);
    let sql = format!("UPDATE usage_log SET purpose = 'nothing to see' WHERE chain_id = '{chain}' AND seq = 2");
    let mut conn = app.db.conn();
    match &mut *conn {
        // The log is a view over its monthly tables there: change the entry in its month's.
        rekisteri_db::DbConnection::Sqlite(c) => {
            let months = rekisteri_db::log_partitions::partitions(c, "usage_log").unwrap();
            for month in months.into_iter().filter(|p| p.month.is_some()).map(|p| p.name) {
                let sql = sql.replace("usage_log", &month);
                c.batch_execute(&format!(
                    "DROP TRIGGER {month}_append_only; {sql};
                     CREATE TRIGGER {month}_append_only BEFORE UPDATE ON {month}
                     BEGIN SELECT RAISE(ABORT, 'usage_log is append-only'); END;"
                ))
                .unwrap();
            }
        }
        rekisteri_db::DbConnection::Postgres(c) => c
            .batch_execute(&format!("SET session_replication_role = replica; {sql}; SET session_replication_role = origin;"))
            .unwrap(),
    }
    let report: Value = app.get_as(&admin, "/v1/audit/verify").json().unwrap();
    assert_eq!(report["intact"], false);
    assert_eq!(report["breaks"], json!([{"chain_id": chain, "seq": 2, "reason": report["breaks"][0]["reason"]}]));
});

app_test!(fn au_3_admins_list_security_events_by_type_with_a_cursor(app) {
    let admin = app.bootstrap_admin();
    let r = registrar(app, &admin, "Pirkanmaa");
    // Failed logins are one event per account per throttle window (AC-5): three accounts.
    app.add_user(&admin, "dpo2@pirkanmaa.fi", &r.id, "auditor");
    app.add_user(&admin, "dpo3@pirkanmaa.fi", &r.id, "auditor");
    for email in ["dpo@pirkanmaa.fi", "dpo2@pirkanmaa.fi", "dpo3@pirkanmaa.fi"] {
        assert_eq!(app.login(email, "wrong password, long enough").status().as_u16(), 401);
    }
    let first: Value = app.get_as(&admin, "/v1/audit/security-events?type=login_failed&limit=2").json().unwrap();
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest: Value = app.get_as(&admin, &format!("/v1/audit/security-events?type=login_failed&limit=2&cursor={cursor}")).json().unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    let all: Vec<&Value> = first["items"].as_array().unwrap().iter().chain(rest["items"].as_array().unwrap()).collect();
    assert!(all.iter().all(|e| e["event_type"] == "login_failed" && e["organisation_id"] == r.id.as_str()));
    let of_org: Value = app.get_as(&admin, &format!("/v1/audit/security-events?organisation={}", r.id)).json().unwrap();
    assert!(of_org["items"].as_array().unwrap().iter().all(|e| e["organisation_id"] == r.id.as_str()));
    assert!(of_org["items"].as_array().unwrap().len() >= 5, "{of_org}");
    assert_problem(app.get_as(&r.auditor, "/v1/audit/security-events"), 403, "/problems/forbidden");
});

app_test!(fn au_7_an_export_over_http_verifies_with_the_outside_script(app) {
    // A fixed time of day, so that the entries fall inside the exported day.
    app.clock.set(time::macros::datetime!(2026-11-25 10:00 UTC));
    let admin = app.bootstrap_admin();
    let r = registrar(app, &admin, "Pirkanmaa");
    app.audit
        .append((1..=12).map(|n| read_of(app, &r.id, PERSON_A, "nurse-1", "client", n)).collect())
        .unwrap();
    let day = app.clock.now().date();
    let response = app.get_as(&r.auditor, &format!("/v1/registrars/{}/audit/export?from={day}&to={}", r.id, day.next_day().unwrap()));
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/jsonl");
    let text = response.text().unwrap();
    assert_eq!(text.lines().count(), 12, "{text}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.jsonl");
    std::fs::write(&path, &text).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tools/verify-audit-export.py");
    let output = std::process::Command::new("python3").arg(script).arg(&path).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    let missing = app.get_as(&r.auditor, &format!("/v1/registrars/{}/audit/export?from={day}", r.id));
    assert_eq!(missing.status().as_u16(), 400);
});

app_test!(fn au_7_an_export_is_streamed_with_the_same_lines_as_the_chain_export(app) {
    app.clock.set(time::macros::datetime!(2026-11-25 10:00 UTC));
    let admin = app.bootstrap_admin();
    let r = registrar(app, &admin, "Pirkanmaa");
    app.audit
        .append((1..=12).map(|n| read_of(app, &r.id, PERSON_A, "nurse-1", "client", n)).collect())
        .unwrap();
    let day = app.clock.now().date();
    // What the export returned when it was built in memory: the whole chain range at once, read
    // before the export writes its own usage entry.
    let chain = rekisteri_audit::chain_id(rekisteri_audit::LogKind::Usage, Some(&r.id));
    let mut conn = app.db.conn();
    let (first, last) = rekisteri_audit::query::seq_range(
        &mut conn,
        rekisteri_audit::LogKind::Usage,
        &chain,
        rekisteri_db::to_primitive(day.midnight().assume_utc()),
        rekisteri_db::to_primitive(day.next_day().unwrap().midnight().assume_utc()),
    )
    .unwrap()
    .unwrap();
    let mut whole = Vec::new();
    assert_eq!(rekisteri_audit::export::export_chain(&mut conn, &chain, first, last, &mut whole).unwrap(), 12);
    drop(conn);
    let path = format!("/v1/registrars/{}/audit/export?from={day}&to={}", r.id, day.next_day().unwrap());
    let response = app.get_as(&r.auditor, &path);
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/jsonl");
    assert_eq!(response.headers().get("transfer-encoding").map(|v| v.to_str().unwrap()), Some("chunked"));
    assert_eq!(response.headers().get("content-length"), None);
    let streamed = response.bytes().unwrap();
    assert_eq!(String::from_utf8(streamed.to_vec()).unwrap(), String::from_utf8(whole).unwrap());
    // An empty range is an empty body.
    let empty = app.get_as(&r.auditor, &format!("/v1/registrars/{}/audit/export?from=2020-01-01&to=2020-01-02", r.id));
    assert_eq!(empty.status().as_u16(), 200);
    assert_eq!(empty.text().unwrap(), "");
});

app_test!(fn au_7_an_export_covers_at_most_366_days(app) {
    let admin = app.bootstrap_admin();
    let r = registrar(app, &admin, "Pirkanmaa");
    let export = |from: &str, to: &str| {
        app.get_as(&r.auditor, &format!("/v1/registrars/{}/audit/export?from={from}&to={to}", r.id))
    };
    // A leap year whole, and 366 days of an ordinary year.
    assert_eq!(export("2028-01-01", "2029-01-01").status().as_u16(), 200);
    assert_eq!(export("2025-01-01", "2026-01-02").status().as_u16(), 200);
    for (from, to) in [("2025-01-01", "2026-01-02T00:00:01Z"), ("2020-01-01", "2026-01-01")] {
        let body = assert_problem(export(from, to), 422, "/problems/business-rule");
        assert_eq!(body["errors"], json!([{"field": "to", "message": "an export covers at most 366 days"}]), "{from}..{to}");
    }
});

app_test!(fn au_10_supervision_reports(app) {
    use rekisteri_audit::DisclosureEntry;
    // Wednesday 25 November 2026, 12:00 in Helsinki.
    app.clock.set(time::macros::datetime!(2026-11-25 10:00 UTC));
    let admin = app.bootstrap_admin();
    let r = registrar(app, &admin, "Pirkanmaa");
    let mut special = read_of(app, &r.id, PERSON_A, "doctor-1", "client", 5);
    if let NewEntry::Usage(e) = &mut special {
        e.access_basis = AccessBasis::SpecialReason;
        e.special_reason = Some("emergency: the client is unconscious".to_owned());
    }
    let disclosure = |recipient: &str| {
        NewEntry::Disclosure(DisclosureEntry {
            occurred_at: rekisteri_db::to_primitive(app.clock.now()),
            registrar_id: r.id.clone(),
            subject_index: None,
            description: "service plan".to_owned(),
            discloser_kind: ActorKind::Staff,
            discloser_id: "nurse-1".to_owned(),
            recipient_kind: "organisation".to_owned(),
            recipient_id: recipient.to_owned(),
            recipient_name: Some(format!("Provider {recipient}")),
            purpose: "care".to_owned(),
            legal_basis: "consent".to_owned(),
            request_id: "req-d".to_owned(),
        })
    };
    app.audit
        .append(vec![
            special,
            // 22:00 in Helsinki: outside office hours.
            read_of(app, &r.id, PERSON_B, "nurse-2", "client", 600),
            read_of(app, &r.id, PERSON_A, "nurse-1", "client", 1),
            read_of(app, &r.id, PERSON_B, "nurse-1", "client", 2),
            read_of(app, &r.id, "010101A124P", "nurse-1", "client", 3),
            read_of(app, &r.id, PERSON_A, "nurse-1", "service", 4),
            disclosure("p1"),
            disclosure("p1"),
            disclosure("p2"),
        ])
        .unwrap();
    let report = |name: &str, extra: &str| -> Value {
        let response = app.get_as(&r.auditor, &format!("/v1/registrars/{}/audit/reports/{name}?from=2026-11-25&to=2026-11-26{extra}", r.id));
        assert_eq!(response.status().as_u16(), 200, "{name}");
        response.json().unwrap()
    };
    let special = report("special-reasons", "");
    assert_eq!(special["rows"].as_array().unwrap().len(), 1, "{special}");
    assert_eq!(special["rows"][0]["special_reason"], "emergency: the client is unconscious");
    let late = report("outside-office-hours", "");
    assert_eq!(late["rows"].as_array().unwrap().iter().map(|e| e["actor_id"].as_str().unwrap()).collect::<Vec<_>>(), vec!["nurse-2"]);
    let many = report("many-clients", "&threshold=3");
    assert_eq!(many["rows"], json!([{"actor_id": "nurse-1", "actor_name": "Maija Mallikas", "day": "2026-11-25", "distinct_clients": 3}]));
    let recipients = report("disclosures-by-recipient", "");
    assert_eq!(recipients["rows"][0]["recipient_id"], "p1");
    assert_eq!(recipients["rows"][0]["disclosures"], 2);
    assert_eq!(recipients["rows"][1]["disclosures"], 1);
    assert_problem(
        app.get_as(&r.auditor, &format!("/v1/registrars/{}/audit/reports/gossip?from=2026-11-25&to=2026-11-26", r.id)),
        404,
        "/problems/not-found",
    );
    let long = app.get_as(&r.auditor, &format!("/v1/registrars/{}/audit/reports/many-clients?from=2026-01-01&to=2026-11-26", r.id));
    assert_eq!(assert_problem(long, 422, "/problems/business-rule")["errors"][0]["field"], "to");
});

app_test!(fn au_2_disclosure_entries_name_the_data_recipient_purpose_and_basis(app) {
    use rekisteri_audit::DisclosureEntry;
    let admin = app.bootstrap_admin();
    let r = registrar(app, &admin, "Pirkanmaa");
    app.audit
        .append(vec![NewEntry::Disclosure(DisclosureEntry {
            occurred_at: rekisteri_db::to_primitive(app.clock.now()),
            registrar_id: r.id.clone(),
            subject_index: Some(rekisteri_audit::subject_index(&app.keyring, &code(PERSON_A))),
            description: "service plan and decision".to_owned(),
            discloser_kind: ActorKind::Staff,
            discloser_id: "nurse-1".to_owned(),
            recipient_kind: "organisation".to_owned(),
            recipient_id: "1.2.246.10.12345678".to_owned(),
            recipient_name: Some("Hoivakoti Oy".to_owned()),
            purpose: "care in a purchased service".to_owned(),
            legal_basis: "consent".to_owned(),
            request_id: "req-9".to_owned(),
        })])
        .unwrap();
    let page: Value = app.get_as(&r.auditor, &format!("/v1/registrars/{}/audit/disclosures?kind=organisation", r.id)).json().unwrap();
    let entry = &page["items"][0];
    assert_eq!(entry["description"], "service plan and decision");
    assert_eq!(entry["discloser_id"], "nurse-1");
    assert_eq!(entry["recipient_id"], "1.2.246.10.12345678");
    assert_eq!(entry["recipient_name"], "Hoivakoti Oy");
    assert_eq!(entry["purpose"], "care in a purchased service");
    assert_eq!(entry["legal_basis"], "consent");
    assert_eq!(entry["registrar_id"], r.id.as_str());
    let none: Value = app.get_as(&r.auditor, &format!("/v1/registrars/{}/audit/disclosures?kind=person", r.id)).json().unwrap();
    assert_eq!(none["items"], json!([]));
});

/// The request id the server answered `response` under.
fn request_id_of(response: &reqwest::blocking::Response) -> String {
    response.headers()["x-request-id"].to_str().unwrap().to_owned()
}

/// Every usage entry of `registrar`'s log that `token` lists, newest first, in one page.
fn whole_usage_log(app: &TestApp, token: &str, registrar: &str) -> Vec<Value> {
    let response = app.get_as(token, &format!("/v1/registrars/{registrar}/audit/usage?limit=1000"));
    assert_eq!(response.status().as_u16(), 200);
    let page: Value = response.json().unwrap();
    assert!(page["next_cursor"].is_null(), "{page}");
    page["items"].as_array().unwrap().clone()
}

app_test!(fn au_1_a_providers_auditor_reads_exactly_its_own_staffs_entries_in_the_organisers_log(app) {
    use crate::clients::{MAIJA, client_body, code as nth_code, create, home_care_voucher, world};
    use std::collections::BTreeSet;
    let w = world(app);
    let clients = format!("/v1/registrars/{}/clients", w.registrar);
    // Two clients of the organiser, one served by each provider; creating them is a use by the
    // organiser's own staff.
    let maija = create(app, &w.handler, &w.registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider)])));
    let maija = format!("{clients}/{}", maija["id"].as_str().unwrap());
    let other = create(app, &w.handler, &w.registrar, &client_body(&nth_code(1), json!([home_care_voucher(&w.other_provider)])));
    let other = format!("{clients}/{}", other["id"].as_str().unwrap());
    assert_eq!(app.get_as(&w.handler, &maija).status().as_u16(), 200);
    // The provider's staff list its clients, read Maija, search her by identity code and knock at
    // the other provider's client (404, a denied entry); the other provider's staff read theirs.
    let mut provider_requests = BTreeSet::new();
    for (response, status) in [
        (app.get_as(&w.provider_staff, &clients), 200),
        (app.get_as(&w.provider_staff, &maija), 200),
        (app.post_as(&w.provider_staff, &format!("{clients}/search"), &json!({"identity_code": MAIJA})), 200),
        (app.get_as(&w.provider_staff, &other), 404),
    ] {
        assert_eq!(response.status().as_u16(), status);
        provider_requests.insert(request_id_of(&response));
    }
    let response = app.get_as(&w.other_provider_staff, &other);
    assert_eq!(response.status().as_u16(), 200);
    let other_provider_requests = BTreeSet::from([request_id_of(&response)]);

    // Each entry names the acting user's organisation as its log controller.
    let (_, organiser_auditor) = app.add_user(&w.admin, "dpo@tampere.fi", &w.registrar, "auditor");
    let whole = whole_usage_log(app, &organiser_auditor, &w.registrar);
    let request = |e: &Value| e["request_id"].as_str().unwrap().to_owned();
    for entry in &whole {
        let expected = if provider_requests.contains(&request(entry)) {
            &w.provider
        } else if other_provider_requests.contains(&request(entry)) {
            &w.other_provider
        } else {
            &w.registrar
        };
        assert_eq!(entry["log_controller_id"], expected.as_str(), "{entry}");
        assert_eq!(entry["registrar_id"], w.registrar.as_str(), "{entry}");
    }
    let logged: BTreeSet<String> = whole.iter().map(request).collect();
    assert!(provider_requests.is_subset(&logged) && other_provider_requests.is_subset(&logged), "{whole:?}");
    let controlled_by = |organisation: &str| -> Vec<Value> {
        whole.iter().filter(|e| e["log_controller_id"] == organisation).cloned().collect()
    };
    let own = controlled_by(&w.provider);
    assert!(own.iter().any(|e| e["outcome"] == "denied"), "{own:?}");
    assert!(!controlled_by(&w.registrar).is_empty() && !controlled_by(&w.other_provider).is_empty());

    // The provider's auditor lists exactly its own staff's entries: not the organiser's staff's,
    // not the other provider's.
    let (auditor_id, auditor) = app.add_user(&w.admin, "dpo@hoiva.fi", &w.provider, "auditor");
    let seen = whole_usage_log(app, &auditor, &w.registrar);
    assert_eq!(seen, own);
    assert_eq!(seen.iter().map(request).collect::<BTreeSet<_>>(), provider_requests);
    // Its look is a use of the organiser's log, in that log, under its own organisation.
    let again = whole_usage_log(app, &auditor, &w.registrar);
    let look = &again[0];
    assert_eq!(look["data_kind"], "usage_log");
    assert_eq!(look["actor_id"], auditor_id.as_str());
    assert_eq!(look["actor_kind"], "provider_user");
    assert_eq!(look["log_controller_id"], w.provider.as_str());
    assert_eq!(look["registrar_id"], w.registrar.as_str());
    assert_eq!(look["purpose"], "log supervision");
    assert_eq!(again[1..], seen[..]);
    // A search by identity code finds only its own staff's entries about the person, although
    // the organiser's staff used her data too.
    let maija_index = rekisteri_crypto::to_hex(&rekisteri_audit::subject_index(&app.keyring, &code(MAIJA)));
    let about_maija = |entries: &[Value]| -> Vec<Value> {
        entries.iter().filter(|e| e["subject_index"] == maija_index.as_str()).cloned().collect()
    };
    assert!(!about_maija(&controlled_by(&w.registrar)).is_empty());
    let search = app.post_as(&auditor, &format!("/v1/registrars/{}/audit/usage/search", w.registrar), &json!({"identity_code": MAIJA}));
    assert_eq!(search.status().as_u16(), 200);
    let found: Value = search.json().unwrap();
    assert!(!about_maija(&own).is_empty());
    assert_eq!(found["items"].as_array().unwrap()[..], about_maija(&own)[..], "{found}");
    // The other provider's auditor, likewise, sees its own staff's entries only.
    let (_, other_auditor) = app.add_user(&w.admin, "dpo@apu.fi", &w.other_provider, "auditor");
    assert_eq!(whole_usage_log(app, &other_auditor, &w.registrar), controlled_by(&w.other_provider));

    // Nothing else of the organiser's log, and nothing of another registrar's.
    for path in ["disclosures", "export?from=2026-01-01&to=2026-02-01", "reports/special-reasons?from=2026-01-01&to=2026-02-01"] {
        assert_problem(app.get_as(&auditor, &format!("/v1/registrars/{}/audit/{path}", w.registrar)), 404, "/problems/not-found");
    }
    for registrar in [w.other_registrar.as_str(), "no-such-registrar"] {
        assert_problem(app.get_as(&auditor, &format!("/v1/registrars/{registrar}/audit/usage")), 404, "/problems/not-found");
        let search = app.post_as(&auditor, &format!("/v1/registrars/{registrar}/audit/usage/search"), &json!({"identity_code": MAIJA}));
        assert_problem(search, 404, "/problems/not-found");
    }
    // The provider's staff without the auditor's role read no log.
    assert_problem(app.get_as(&w.provider_staff, &format!("/v1/registrars/{}/audit/usage", w.registrar)), 404, "/problems/not-found");
});
