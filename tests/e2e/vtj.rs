//! VTJ change ingestion (VT-1..VT-9) against the simulator of DVV's change interface over real
//! HTTP, on SQLite and PostgreSQL.

use std::sync::Arc;

use diesel::prelude::*;
use rekisteri_core::Clock;
use rekisteri_crypto::{FieldCipher, FieldContext};
use rekisteri_db::schema::{change_history, clients, disclosure_log, services, usage_log, vtj_staged};
use rekisteri_tests::{TestApp, USER_PASSWORD, World, app_test, assert_problem};
use rekisteri_vtj::simulator::{Simulator, SimulatorData};
use rekisteri_vtj::{FailPoints, Vtj, VtjClient, VtjConfig, VtjError};
use serde_json::{Value, json};
use time::macros::datetime;

/// A valid identity code: born 1 Jan 1980 plus `n / 800` days, individual number `100 + n % 800`.
fn code(n: u32) -> String {
    rekisteri_tests::identity_code(&format!("{:02}0180", 1 + n / 800), 100 + n % 800)
}

/// The shared world on 30 November 2026.
fn world(app: &TestApp) -> World {
    app.clock.set(datetime!(2026-11-30 09:00 UTC));
    app.world()
}

/// Creates the client `n` with one open service; returns its id and the service's.
fn create(app: &TestApp, w: &World, n: u32) -> (String, String) {
    let body = json!({"identity_code": code(n), "first_names": "Vanha", "surname": "Nimi",
        "gender": "female", "home_municipality": "837", "language": "fi",
        "address": {"street_name": "Alkukatu", "postal_code": "33100"},
        "services": [{"kind": "purchased_service", "service_type": "home_care", "service_name": "Kotihoito",
            "quantity": 10, "unit": "hour", "valid_from": "2026-01-01", "valid_to": "2027-12-31",
            "provider_id": w.provider}]});
    let response = app.post_as(&w.handler, &format!("/v1/registrars/{}/clients", w.registrar), &body);
    assert_eq!(response.status().as_u16(), 201, "{}", response.text().unwrap());
    let created: Value = response.json().unwrap();
    (
        created["id"].as_str().unwrap().to_owned(),
        created["services"][0]["id"].as_str().unwrap().to_owned(),
    )
}

/// DVV's base data of person `n`.
fn person(n: u32, street: &str) -> Value {
    json!({"henkilotunnus": code(n), "tietoryhmat": [
        {"tietoryhma": "HENKILON_NIMI", "etunimi": format!("Etu{n}"), "sukunimi": format!("Suku{n}")},
        {"tietoryhma": "VAKINAINEN_KOTIMAINEN_OSOITE", "katunimi": {"fi": street, "sv": street},
            "katunumero": format!("{}", n % 90 + 1), "postinumero": "33100", "postitoimipaikka": {"fi": "TAMPERE"}},
        {"tietoryhma": "KOTIKUNTA", "kuntakoodi": "837", "kuntaanMuuttopv": {"arvo": "2001-05-01", "tarkkuus": "PAIVA"}},
        {"tietoryhma": "AIDINKIELI", "kielikoodi": "fi"}
    ]})
}

fn name_change(n: u32, first: &str, on: &str) -> Value {
    json!({"henkilotunnus": code(n), "muutospv": format!("{on}T10:00:00.000Z"), "tietoryhmat": [
        {"tietoryhma": "HENKILON_NIMI", "muutosattribuutti": "LISATTY", "etunimi": first, "sukunimi": format!("Suku{n}")}
    ]})
}

fn simulator(people: Vec<Value>, changes: Vec<Value>, page_size: usize) -> Simulator {
    Simulator::start(
        "127.0.0.1:0",
        SimulatorData {
            kirjausavain: 1000,
            page_size,
            throttle: 0,
            people,
            changes,
        },
    )
    .unwrap()
}

fn vtj(app: &TestApp, sim: &Simulator) -> Vtj {
    Vtj {
        keyring: app.keyring.clone(),
        audit: app.audit.clone(),
        clock: app.clock.clone(),
        config: VtjConfig {
            base_url: sim.url.clone(),
            credentials: rekisteri_vtj::Credentials {
                username: "kunta-tampere".into(),
                password: "salainen-sana".into(),
            },
            xroad_client: Some("FI/MUN/0211675-2/rekisteri".into()),
            initial_backoff: std::time::Duration::from_millis(1),
            max_backoff: std::time::Duration::from_millis(5),
            permit_reference: "DVV/123/2026".into(),
            apply_batch: 5,
            ..VtjConfig::default()
        },
        fail: FailPoints::off(),
    }
}

fn sync(app: &TestApp, v: &Vtj, w: &World) -> Result<rekisteri_vtj::SyncReport, VtjError> {
    let client = VtjClient::new(v.config.clone()).unwrap();
    rekisteri_vtj::run_sync(&mut app.db.conn(), v, &client, &w.registrar)
}

#[allow(clippy::disallowed_methods, reason = "the test reads back what it compares")]
fn open(app: &TestApp, id: &str, column: &str, value: Option<Vec<u8>>) -> Option<String> {
    value.map(|v| {
        FieldCipher::new(&app.keyring)
            .decrypt_string(&FieldContext::new("clients", column, id), &v)
            .unwrap()
    })
}

/// The register as comparable values: per identity code, every field VTJ can touch and the
/// version (a change applied twice shows as a higher version), plus the services' states and
/// the staged rows' outcomes.
type FullState = (Vec<Vec<Option<String>>>, Vec<(String, Option<String>)>);

fn full_state(app: &TestApp, w: &World) -> FullState {
    type Row = (
        String,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Option<String>,
        Option<time::Date>,
        Option<String>,
        bool,
        i64,
    );
    let mut conn = app.db.conn();
    let rows: Vec<Row> = clients::table
        .filter(clients::registrar_id.eq(&w.registrar))
        .select((
            clients::id,
            clients::identity_code,
            clients::first_names,
            clients::surname,
            clients::address,
            clients::home_municipality,
            clients::died_on,
            clients::language,
            clients::protection_order,
            clients::version,
        ))
        .load(&mut conn)
        .unwrap();
    let mut state: Vec<Vec<Option<String>>> = rows
        .into_iter()
        .map(
            |(id, code, first, last, address, home, died, language, protected, version)| {
                let service: (String, Option<time::Date>) = services::table
                    .filter(services::registrar_id.eq(&w.registrar))
                    .filter(services::client_id.eq(&id))
                    .select((services::status, services::closed_on))
                    .first(&mut conn)
                    .unwrap();
                vec![
                    open(app, &id, "identity_code", code),
                    open(app, &id, "first_names", first),
                    open(app, &id, "surname", last),
                    open(app, &id, "address", address),
                    home,
                    died.map(|d| d.to_string()),
                    language,
                    Some(protected.to_string()),
                    Some(version.to_string()),
                    Some(format!("{service:?}")),
                ]
            },
        )
        .collect();
    state.sort();
    let staged = vtj_staged::table
        .filter(vtj_staged::registrar_id.eq(&w.registrar))
        .order(vtj_staged::seq)
        .select((vtj_staged::outcome, vtj_staged::reason))
        .load::<(Option<String>, Option<String>)>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|(o, r)| (o.unwrap_or_default(), r))
        .collect();
    (state, staged)
}

fn client_json(app: &TestApp, w: &World, id: &str) -> Value {
    let response = app.get_as(&w.handler, &format!("/v1/registrars/{}/clients/{id}", w.registrar));
    assert_eq!(response.status().as_u16(), 200);
    response.json().unwrap()
}

fn search(app: &TestApp, w: &World, identity_code: &str) -> Value {
    let response = app.post_as(
        &w.handler,
        &format!("/v1/registrars/{}/clients/search", w.registrar),
        &json!({"identity_code": identity_code}),
    );
    assert_eq!(response.status().as_u16(), 200, "{}", response.text().unwrap());
    response.json::<Value>().unwrap()["items"].clone()
}

app_test!(
    fn vt_2_initial_load_of_2500_people_in_three_batches_with_the_cursor_taken_first(app) {
        let w = world(app);
        let people: Vec<Value> = (0..2499).map(|n| person(n, "Kotikatu")).collect();
        for n in 0..2500 {
            create(app, &w, n);
        }
        let sim = simulator(people, Vec::new(), 100);
        let v = vtj(app, &sim);
        let report = sync(app, &v, &w).unwrap();
        assert_eq!(report.load_calls, 3);
        assert_eq!(report.loaded, 2500);
        assert_eq!(report.cursor_before, None);
        assert_eq!(report.cursor_after, Some(1000));
        let calls = sim.calls();
        let kinds: Vec<(&str, usize)> = calls.iter().map(|c| (c.kind.as_str(), c.codes)).collect();
        assert_eq!(
            kinds,
            vec![
                ("kirjausavain", 0),
                ("perustiedot", 1000),
                ("perustiedot", 1000),
                ("perustiedot", 500),
                ("muutokset", 2500)
            ]
        );
        assert!(calls.iter().all(|c| c.authenticated
            && c.status == 200
            && c.xroad_client.as_deref() == Some("FI/MUN/0211675-2/rekisteri")));
        // 2 499 known to DVV applied; the unknown code is silently absent.
        assert_eq!((report.counts.applied, report.counts.skipped, report.counts.failed), (2499, 0, 0));
        let (state, _) = full_state(app, &w);
        let first = state.iter().find(|r| r[0].as_deref() == Some(code(7).as_str())).unwrap();
        assert_eq!(first[1].as_deref(), Some("Etu7"));
        assert!(first[3].as_deref().unwrap().contains("Kotikatu 8"));
        let unknown = state.iter().find(|r| r[0].as_deref() == Some(code(2499).as_str())).unwrap();
        assert_eq!(unknown[1].as_deref(), Some("Vanha"));
        // The change history names vtj; the usage log has one query entry per person.
        let mut conn = app.db.conn();
        let by_vtj: i64 = change_history::table
            .filter(change_history::table_name.eq("clients"))
            .filter(change_history::actor.eq("vtj"))
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(by_vtj, 2499);
        let queries: Vec<String> = usage_log::table
            .filter(usage_log::data_kind.eq("vtj_perustiedot"))
            .select(usage_log::outcome)
            .load(&mut conn)
            .unwrap();
        assert_eq!(queries.len(), 2500);
        assert_eq!(queries.iter().filter(|o| *o == "not_found").count(), 1);
    }
);

app_test!(
    fn vt_3_change_loop_spans_several_pages_and_saves_the_cursor(app) {
        let w = world(app);
        for n in 0..10 {
            create(app, &w, n);
        }
        let changes: Vec<Value> = (0..25).map(|i| name_change(i % 10, &format!("Muutos{i}"), "2026-11-20")).collect();
        let sim = simulator((0..10).map(|n| person(n, "Kotikatu")).collect(), Vec::new(), 10);
        let v = vtj(app, &sim);
        sync(app, &v, &w).unwrap();
        for c in changes {
            sim.push_change(c);
        }
        let report = sync(app, &v, &w).unwrap();
        assert_eq!(report.pages, 3);
        assert_eq!(report.staged, 25);
        assert_eq!((report.cursor_before, report.cursor_after), (Some(1000), Some(1025)));
        assert_eq!(report.counts.applied, 25);
        let (state, _) = full_state(app, &w);
        let p5 = state.iter().find(|r| r[0].as_deref() == Some(code(5).as_str())).unwrap();
        assert_eq!(p5[1].as_deref(), Some("Muutos15"));
        let status = rekisteri_vtj::status(&mut app.db.conn(), &w.registrar).unwrap();
        assert_eq!(status.cursor, Some(1025));
        assert_eq!((status.applied, status.pending, status.failed), (35, 0, 0));
        // Nothing new: one page, nothing staged.
        let again = sync(app, &v, &w).unwrap();
        assert_eq!((again.pages, again.staged), (1, 0));
    }
);

/// Runs a load and three pages of changes on a fresh register; `crash` injects failures.
fn crash_scenario(app: &TestApp, crash: bool) -> FullState {
    let w = world(app);
    for n in 0..12 {
        create(app, &w, n);
    }
    let sim = simulator((0..12).map(|n| person(n, "Kotikatu")).collect(), Vec::new(), 8);
    let v = vtj(app, &sim);
    sync(app, &v, &w).unwrap();
    for i in 0..20u32 {
        sim.push_change(name_change(i % 12, &format!("Muutos{i}"), "2026-11-21"));
    }
    sim.push_change(
        json!({"henkilotunnus": code(3), "muutospv": "2026-11-22", "tietoryhmat": [
        {"tietoryhma": "KUOLINPAIVA", "kuollut": true, "kuolinpv": {"arvo": "2026-11-22", "tarkkuus": "PAIVA"}}]}),
    );
    if crash {
        v.fail.after_staging.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(matches!(sync(app, &v, &w), Err(VtjError::Injected("after staging"))));
        v.fail.after_applied_rows.store(7, std::sync::atomic::Ordering::SeqCst);
        assert!(matches!(
            sync(app, &v, &w),
            Err(VtjError::Injected("in the middle of application"))
        ));
        let status = rekisteri_vtj::status(&mut app.db.conn(), &w.registrar).unwrap();
        assert!(status.pending > 0, "the crash left rows to apply");
    }
    sync(app, &v, &w).unwrap();
    full_state(app, &w)
}

app_test!(
    fn vt_3_crash_between_staging_and_application_and_during_application_then_rerun_equals_an_uninterrupted_run(app) {
        let crashed = crash_scenario(app, true);
        let db = match &*app.db.conn() {
            rekisteri_db::DbConnection::Sqlite(_) => rekisteri_db::testing::TestDatabase::sqlite(),
            rekisteri_db::DbConnection::Postgres(_) => rekisteri_db::testing::TestDatabase::postgres().unwrap(),
        };
        let other = TestApp::start(db);
        let clean = crash_scenario(&other, false);
        assert_eq!(crashed, clean);
        // Every staged row applied exactly once.
        assert!(crashed.1.iter().all(|(o, _)| o == "applied"));
        let dead = crashed.0.iter().find(|r| r[0].as_deref() == Some(code(3).as_str())).unwrap();
        assert_eq!(dead[5].as_deref(), Some("2026-11-22"));
        assert!(dead[9].as_deref().unwrap().contains("closed"), "VT-7: {dead:?}");
    }
);

app_test!(
    fn vt_5_identity_code_correction_rekeys_the_client_and_the_old_code_still_finds_it(app) {
        let w = world(app);
        let (id, _) = create(app, &w, 1);
        create(app, &w, 2);
        let sim = simulator(vec![person(1, "Kotikatu"), person(2, "Kotikatu")], Vec::new(), 10);
        let v = vtj(app, &sim);
        sync(app, &v, &w).unwrap();
        let new_code = code(801);
        sim.push_change(json!({"henkilotunnus": code(1), "muutospv": "2026-11-25", "tietoryhmat": [
            {"tietoryhma": "HENKILOTUNNUS_KORJAUS", "muutosattribuutti": "KORJATTAVA", "voimassaolo": "PASSIIVI",
             "muutettuHenkilotunnus": code(1)},
            {"tietoryhma": "HENKILOTUNNUS_KORJAUS", "muutosattribuutti": "KORJATTU", "voimassaolo": "AKTIIVI",
             "aktiivinenHenkilotunnus": new_code, "edellisetHenkilotunnukset": [code(1)]}]}));
        let report = sync(app, &v, &w).unwrap();
        assert_eq!(report.counts.applied, 1);
        let by_old = search(app, &w, &code(1));
        let found = by_old.as_array().unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["id"], id.as_str());
        assert_eq!(found[0]["identity_code"], new_code.as_str());
        assert_eq!(found[0]["found_by_previous_identity_code"], true);
        let by_new = search(app, &w, &new_code);
        assert_eq!(by_new[0]["id"], id.as_str());
        assert!(by_new[0].get("found_by_previous_identity_code").is_none());
        // The monitored list follows: a change for the new code applies.
        sim.push_change(name_change(801, "Korjattu", "2026-11-26"));
        let report = sync(app, &v, &w).unwrap();
        assert_eq!(report.counts.applied, 1);
        assert_eq!(client_json(app, &w, &id)["first_names"], "Korjattu");
    }
);

app_test!(
    fn vt_6_protection_order_purges_address_and_home_municipality_everywhere_and_its_end_reveals_them(app) {
        let w = world(app);
        let (id, _) = create(app, &w, 4);
        create(app, &w, 5);
        let sim = simulator(vec![person(4, "Salakuja"), person(5, "Kotikatu")], Vec::new(), 10);
        let v = vtj(app, &sim);
        sync(app, &v, &w).unwrap();
        assert_eq!(client_json(app, &w, &id)["address"]["street_name"], "Salakuja");
        // DVV: the order begins; a new address arrives censored, a contact address with it.
        let mut protected = person(4, "Uusikuja");
        protected["tietoryhmat"].as_array_mut().unwrap().push(json!(
            {"tietoryhma": "TURVAKIELTO", "turvakieltoAktiivinen": true, "turvaLoppuPv": {"arvo": "2030-01-01", "tarkkuus": "PAIVA"}}));
        sim.set_person(protected);
        sim.push_change(json!({"henkilotunnus": code(4), "muutospv": "2026-11-27", "tietoryhmat": [
            {"tietoryhma": "TURVAKIELTO", "muutosattribuutti": "LISATTY", "turvakieltoAktiivinen": true,
             "turvaLoppuPv": {"arvo": "2030-01-01", "tarkkuus": "PAIVA"}},
            {"tietoryhma": "VAKINAINEN_KOTIMAINEN_OSOITE", "muutosattribuutti": "LISATTY", "katunimi": {"fi": "Uusikuja"}},
            {"tietoryhma": "KOTIMAINEN_YHTEYSOSOITE", "muutosattribuutti": "LISATTY", "postiosoite": {"fi": "PL 1"}}]}));
        sync(app, &v, &w).unwrap();
        let client = client_json(app, &w, &id);
        assert_eq!(client["protection_order"], true);
        assert!(client.get("address").is_none() && client.get("home_municipality").is_none());
        let mut conn = app.db.conn();
        let (address, home): (Option<Vec<u8>>, Option<String>) = clients::table
            .filter(clients::registrar_id.eq(&w.registrar))
            .filter(clients::id.eq(&id))
            .select((clients::address, clients::home_municipality))
            .first(&mut conn)
            .unwrap();
        assert_eq!((address, home), (None, None));
        let history = rekisteri_db::history::change_history_of(&mut conn, "clients", &id).unwrap();
        assert!(history.len() > 2);
        for h in &history {
            for row in [&h.old_row, &h.new_row].into_iter().flatten() {
                let row: Value = serde_json::from_str(row).unwrap();
                assert!(row.get("address").is_none() && row.get("home_municipality").is_none(), "{row}");
            }
        }
        // The staged messages hold no censored group of this person any more.
        let staged: Vec<(i64, Vec<u8>)> = vtj_staged::table
            .filter(vtj_staged::registrar_id.eq(&w.registrar))
            .select((vtj_staged::seq, vtj_staged::message))
            .load(&mut conn)
            .unwrap();
        let mut seen = 0;
        for (seq, sealed) in staged {
            #[allow(clippy::disallowed_methods, reason = "the test inspects what was staged")]
            let text = FieldCipher::new(&app.keyring)
                .decrypt_string(
                    &FieldContext::new("vtj_staged", "message", &format!("{}/{seq}", w.registrar)),
                    &sealed,
                )
                .unwrap();
            assert!(!text.contains("Uusikuja") && !text.contains("PL 1"), "{text}");
            if text.contains(&code(4)) {
                assert!(!text.contains("Salakuja"), "{text}");
                seen += 1;
            }
        }
        assert!(seen >= 2);
        drop(conn);
        if let rekisteri_db::DbConnection::Sqlite(_) = &*app.db.conn() {
            let path = app.db.url.trim_start_matches("sqlite://").to_owned();
            {
                let mut conn = app.db.conn();
                diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut *conn).unwrap();
            }
            for file in [path.clone(), format!("{path}-wal")] {
                if let Ok(bytes) = std::fs::read(&file) {
                    for needle in ["Salakuja", "Uusikuja", code(4).as_str()] {
                        assert!(
                            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                            "{needle} in {file}"
                        );
                    }
                }
            }
        }
        // The order ends: the values are fetched again and revealed.
        sim.set_person(person(4, "Avoinkatu"));
        sim.push_change(json!({"henkilotunnus": code(4), "muutospv": "2026-11-29", "tietoryhmat": [
            {"tietoryhma": "TURVAKIELTO", "muutosattribuutti": "MUUTETTU", "turvakieltoAktiivinen": false}]}));
        sync(app, &v, &w).unwrap();
        let client = client_json(app, &w, &id);
        assert_eq!(client["protection_order"], false);
        assert_eq!(client["address"]["street_name"], "Avoinkatu");
        assert_eq!(client["home_municipality"], "837");
    }
);

app_test!(
    fn vt_8_unknown_group_is_skipped_with_its_reason_while_the_rest_applies(app) {
        let w = world(app);
        for n in 0..3 {
            create(app, &w, n);
        }
        let sim = simulator((0..3).map(|n| person(n, "Kotikatu")).collect(), Vec::new(), 10);
        let v = vtj(app, &sim);
        sync(app, &v, &w).unwrap();
        sim.push_change(json!({"henkilotunnus": code(0), "muutospv": "2026-11-28", "uusiKentta": 1,
            "tietoryhmat": [{"tietoryhma": "AVARUUSOSOITE", "planeetta": "Mars"}]}));
        sim.push_change(json!({"henkilotunnus": code(1), "muutospv": "2026-11-28", "tietoryhmat": [
            {"tietoryhma": "AVARUUSOSOITE", "planeetta": "Mars"},
            {"tietoryhma": "HENKILON_NIMI", "muutosattribuutti": "LISATTY", "etunimi": "Uusi", "sukunimi": "Suku1",
             "tuntematonKentta": true}]}));
        sim.push_change(name_change(2, "Kolmas", "2026-11-28"));
        let report = sync(app, &v, &w).unwrap();
        assert_eq!((report.counts.applied, report.counts.skipped, report.counts.failed), (2, 1, 0));
        let (state, staged) = full_state(app, &w);
        let tail: Vec<_> = staged.iter().rev().take(3).rev().cloned().collect();
        assert_eq!(
            tail,
            vec![
                ("skipped".to_owned(), Some("unknown group AVARUUSOSOITE".to_owned())),
                ("applied".to_owned(), Some("unknown group AVARUUSOSOITE".to_owned())),
                ("applied".to_owned(), None),
            ]
        );
        let p1 = state.iter().find(|r| r[0].as_deref() == Some(code(1).as_str())).unwrap();
        assert_eq!(p1[1].as_deref(), Some("Uusi"));
    }
);

app_test!(
    fn vt_8_malformed_json_is_refused_with_its_position_and_nothing_is_applied(app) {
        let w = world(app);
        create(app, &w, 0);
        let sim = simulator(vec![person(0, "Kotikatu")], Vec::new(), 10);
        let v = vtj(app, &sim);
        sync(app, &v, &w).unwrap();
        let before = full_state(app, &w);
        let good = json!({"viimeisinKirjausavain": 5, "ajanTasalla": true,
            "muutokset": [name_change(0, "Ei", "2026-11-28")]})
        .to_string();
        let input = format!("{good}\n{{\"viimeisinKirjausavain\": 6, \"muutokset\": [}}\n");
        let error = rekisteri_vtj::sync::ingest_text(&mut app.db.conn(), &v, &w.registrar, "import", &input).unwrap_err();
        assert!(
            error.to_string().starts_with("malformed message: input line 2: line 1 column 44"),
            "{error}"
        );
        let schema = r#"{"viimeisinKirjausavain": 6, "ajanTasalla": true, "muutokset": [{"henkilotunnus": 1}]}"#;
        let error = rekisteri_vtj::sync::ingest_text(&mut app.db.conn(), &v, &w.registrar, "import", &format!("{good}\n{schema}"))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "malformed message: input line 2: muutokset[0].henkilotunnus: expected a string"
        );
        assert_eq!(full_state(app, &w), before);
        // The well-formed file applies.
        let counts = rekisteri_vtj::sync::ingest_text(&mut app.db.conn(), &v, &w.registrar, "import", &good).unwrap();
        assert_eq!(counts.applied, 1);
    }
);

app_test!(
    fn cl_2_a_non_canonical_identity_code_in_a_pushed_vtj_batch_is_a_400_and_an_invalid_one_fails_its_row(app) {
        // The interface writes codes in canonical form: one in another form is a malformed
        // request, refused whole (400 naming it) and nothing applied. A canonical code that is
        // not valid is content, judged row by row (VT-3): its row fails, the rest applies.
        let w = world(app);
        let lettered = (0..31).find(|n| code(*n).ends_with(|c: char| c.is_ascii_uppercase())).unwrap();
        let other = lettered + 1;
        create(app, &w, lettered);
        create(app, &w, other);
        let sim = simulator(vec![person(lettered, "Kotikatu"), person(other, "Kotikatu")], Vec::new(), 10);
        sync(app, &vtj(app, &sim), &w).unwrap();
        let before = full_state(app, &w);
        let admin = app.token(rekisteri_tests::ADMIN_EMAIL, rekisteri_tests::ADMIN_PASSWORD);
        app.add_user(&admin, "paakayttaja@tampere.fi", &w.registrar, "main_user");
        let main_user = app.token("paakayttaja@tampere.fi", USER_PASSWORD);
        let path = format!("/v1/registrars/{}/vtj/changes", w.registrar);
        let mut lower = name_change(lettered, "Pieni", "2026-11-29");
        lower["henkilotunnus"] = json!(code(lettered).to_ascii_lowercase());
        let mut spaced = name_change(other, "Tyhja", "2026-11-29");
        spaced["henkilotunnus"] = json!(format!(" {}", code(other)));
        for (i, batch) in [
            json!({"viimeisinKirjausavain": 7, "ajanTasalla": true, "muutokset": [lower, name_change(other, "Oikea", "2026-11-29")]}),
            json!({"viimeisinKirjausavain": 7, "ajanTasalla": true, "muutokset": [name_change(other, "Oikea", "2026-11-29"), spaced]}),
        ]
        .into_iter()
        .enumerate()
        {
            let problem = assert_problem(app.post_as(&main_user, &path, &batch), 400, "/problems/validation");
            let at = if i == 0 { 0 } else { 1 };
            assert_eq!(problem["errors"][0]["field"], format!("muutokset[{at}].henkilotunnus"));
            assert!(!problem.to_string().contains(&code(lettered)[..6]), "{problem}");
        }
        assert_eq!(full_state(app, &w), before, "nothing of a refused batch applies");
        // A canonical code with a wrong check character fails its own row only.
        let mut wrong = name_change(lettered, "Vaara", "2026-11-29");
        let valid = code(lettered);
        let swapped = if valid.ends_with('A') { "B" } else { "A" };
        wrong["henkilotunnus"] = json!(format!("{}{swapped}", &valid[..10]));
        let batch = json!({"viimeisinKirjausavain": 7, "ajanTasalla": true,
            "muutokset": [wrong, name_change(other, "Oikea", "2026-11-29")]});
        let response = app.post_as(&main_user, &path, &batch);
        assert_eq!(response.status().as_u16(), 200);
        let pushed: Value = response.json().unwrap();
        assert_eq!(
            (pushed["applied"].as_u64(), pushed["skipped"].as_u64(), pushed["failed"].as_u64()),
            (Some(1), Some(0), Some(1)),
            "{pushed}"
        );
        let (state, staged) = full_state(app, &w);
        let invalid = ("failed".to_owned(), Some("henkilotunnus: not a valid identity code".to_owned()));
        assert_eq!(staged[staged.len() - 2..], [invalid, ("applied".to_owned(), None)]);
        let row = |n: u32| state.iter().find(|r| r[0].as_deref() == Some(code(n).as_str())).unwrap().clone();
        let was = |n: u32| before.0.iter().find(|r| r[0].as_deref() == Some(code(n).as_str())).unwrap().clone();
        assert_eq!(row(lettered), was(lettered));
        assert_eq!(row(other)[1].as_deref(), Some("Oikea"));
    }
);

app_test!(
    fn pl_3_a_malformed_pushed_vtj_batch_names_the_field_by_its_path(app) {
        let w = world(app);
        create(app, &w, 0);
        let admin = app.token(rekisteri_tests::ADMIN_EMAIL, rekisteri_tests::ADMIN_PASSWORD);
        app.add_user(&admin, "paakayttaja@tampere.fi", &w.registrar, "main_user");
        let main_user = app.token("paakayttaja@tampere.fi", USER_PASSWORD);
        let path = format!("/v1/registrars/{}/vtj/changes", w.registrar);
        let refused = |batch: Value| -> (String, String) {
            let problem = rekisteri_tests::assert_problem(app.post_as(&main_user, &path, &batch), 400, "/problems/validation");
            (
                problem["errors"][0]["field"].as_str().unwrap().to_owned(),
                problem["errors"][0]["message"].as_str().unwrap().to_owned(),
            )
        };
        assert_eq!(
            refused(json!({"viimeisinKirjausavain": 7, "ajanTasalla": true})),
            ("muutokset".to_owned(), "missing field `muutokset`".to_owned())
        );
        assert_eq!(
            refused(json!({"viimeisinKirjausavain": "7", "ajanTasalla": true, "muutokset": []})).0,
            "viimeisinKirjausavain"
        );
        assert_eq!(
            refused(json!({"viimeisinKirjausavain": 7, "ajanTasalla": true,
                "muutokset": [name_change(0, "Hyva", "2026-11-29"), {"henkilotunnus": 5}]})),
            ("muutokset[1].henkilotunnus".to_owned(), "expected a string".to_owned())
        );
        assert_eq!(
            refused(json!({"viimeisinKirjausavain": 7, "ajanTasalla": true,
                "muutokset": [{"henkilotunnus": code(0), "tietoryhmat": [{"etunimi": "Ei"}]}]})),
            ("muutokset[0].tietoryhmat[0].tietoryhma".to_owned(), "expected a string".to_owned())
        );
        // Nothing of a refused batch was staged.
        let staged: i64 = vtj_staged::table
            .filter(vtj_staged::registrar_id.eq(&w.registrar))
            .count()
            .get_result(&mut app.db.conn())
            .unwrap();
        assert_eq!(staged, 0);
    }
);

app_test!(
    fn vt_9_429_is_answered_with_backoff_and_eventual_success(app) {
        let w = world(app);
        create(app, &w, 0);
        let sim = simulator(vec![person(0, "Kotikatu")], Vec::new(), 10);
        sim.throttle(3);
        let v = vtj(app, &sim);
        let report = sync(app, &v, &w).unwrap();
        assert_eq!(report.counts.applied, 1);
        let statuses: Vec<(String, u16)> = sim.calls().into_iter().map(|c| (c.kind, c.status)).collect();
        assert_eq!(
            statuses[..4],
            [
                ("kirjausavain".to_owned(), 429),
                ("kirjausavain".to_owned(), 429),
                ("kirjausavain".to_owned(), 429),
                ("kirjausavain".to_owned(), 200)
            ]
        );
        // Beyond the retry bound the run fails and says so, without applying anything.
        sim.throttle(100);
        sim.push_change(name_change(0, "Ei", "2026-11-28"));
        let error = sync(app, &v, &w).unwrap_err();
        assert_eq!(error.to_string(), "the VTJ interface refused muutokset: HTTP 429");
        let status = rekisteri_vtj::status(&mut app.db.conn(), &w.registrar).unwrap();
        assert_eq!(status.last_run_outcome.as_deref(), Some("failed"));
        assert!(!status.running);
    }
);

app_test!(
    fn vt_1_only_clients_with_an_open_service_are_monitored_and_others_are_skipped(app) {
        let w = world(app);
        create(app, &w, 0);
        let (_, service) = create(app, &w, 1);
        let response = app.patch_as(
            &w.handler,
            &format!("/v1/registrars/{}/services/{service}", w.registrar),
            &json!({"status": "closed", "closed_on": "2026-11-29"}),
        );
        assert_eq!(response.status().as_u16(), 200);
        let sim = simulator(vec![person(0, "Kotikatu"), person(1, "Kotikatu")], Vec::new(), 10);
        let v = vtj(app, &sim);
        let report = sync(app, &v, &w).unwrap();
        assert_eq!((report.monitored, report.loaded), (1, 1));
        let pushed = json!({"viimeisinKirjausavain": 9, "ajanTasalla": true,
            "muutokset": [name_change(1, "Ei", "2026-11-28")]})
        .to_string();
        let counts = rekisteri_vtj::sync::ingest_text(&mut app.db.conn(), &v, &w.registrar, "push", &pushed).unwrap();
        assert_eq!((counts.applied, counts.skipped), (0, 1));
        let (_, staged) = full_state(app, &w);
        assert_eq!(
            staged.last().unwrap(),
            &("skipped".to_owned(), Some("not on the monitored list".to_owned()))
        );
    }
);

app_test!(
    fn vt_9_no_identity_code_or_secret_in_any_log_line_of_a_sync_run(app) {
        rekisteri_tests::capture_log();
        let w = world(app);
        for n in 0..3 {
            create(app, &w, n);
        }
        let sim = simulator((0..3).map(|n| person(n, "Kotikatu")).collect(), Vec::new(), 10);
        sim.throttle(1);
        let v = vtj(app, &sim);
        let _ = Arc::clone(&v.fail);
        sync(app, &v, &w).unwrap();
        sim.push_change(name_change(1, "Loki", "2026-11-28"));
        sync(app, &v, &w).unwrap();
        let lines = rekisteri_tests::captured_log_lines();
        assert!(lines.iter().any(|l| l.contains("vtj: run")), "the run logs");
        for line in &lines {
            for n in 0..3 {
                assert!(!line.contains(&code(n)), "{line}");
            }
            assert!(!line.contains("salainen-sana"), "{line}");
        }
    }
);

/// Starts the application with its VTJ configuration pointing at `sim`.
fn app_with_simulator(db: rekisteri_db::testing::TestDatabase, sim: &Simulator) -> TestApp {
    let options = rekisteri_tests::TestAppOptions {
        vtj: VtjConfig {
            base_url: sim.url.clone(),
            credentials: rekisteri_vtj::Credentials {
                username: "kunta-tampere".into(),
                password: "salainen-sana".into(),
            },
            scheme: rekisteri_vtj::CredentialScheme::MutpHeaders,
            initial_backoff: std::time::Duration::from_millis(1),
            max_backoff: std::time::Duration::from_millis(5),
            ..VtjConfig::default()
        },
        ..rekisteri_tests::TestAppOptions::default()
    };
    TestApp::start_with(db, options)
}

fn vt_10_body(db: rekisteri_db::testing::TestDatabase) {
    let sim = simulator((0..3).map(|n| person(n, "Kotikatu")).collect(), Vec::new(), 10);
    let app = &app_with_simulator(db, &sim);
    let w = world(app);
    for n in 0..3 {
        create(app, &w, n);
    }
    let admin = app.token(rekisteri_tests::ADMIN_EMAIL, rekisteri_tests::ADMIN_PASSWORD);
    app.add_user(&admin, "paakayttaja@tampere.fi", &w.registrar, "main_user");
    let other = w.other_registrar.clone();
    app.add_user(&admin, "paakayttaja@nokia.fi", &other, "main_user");
    let main_user = app.token("paakayttaja@tampere.fi", USER_PASSWORD);
    let sync_path = format!("/v1/registrars/{}/vtj/sync", w.registrar);
    let response = app.post_as(&main_user, &sync_path, &json!({}));
    assert_eq!(response.status().as_u16(), 200);
    let run: Value = response.json().unwrap();
    assert_eq!(
        (
            run["monitored"].as_u64(),
            run["loaded"].as_u64(),
            run["applied"].as_u64()
        ),
        (Some(3), Some(3), Some(3))
    );
    assert!(sim.calls().iter().all(|c| c.authenticated && c.status == 200));
    // Pushed batch (VT-11): the interface's own format, through the same staging.
    let changes_path = format!("/v1/registrars/{}/vtj/changes", w.registrar);
    let batch = json!({"viimeisinKirjausavain": 7, "ajanTasalla": true, "muutokset": [
        name_change(1, "Tyonnetty", "2026-11-29"), name_change(700, "Vieras", "2026-11-29")]});
    let response = app.post_as(&main_user, &changes_path, &batch);
    assert_eq!(response.status().as_u16(), 200);
    let pushed: Value = response.json().unwrap();
    assert_eq!(
        (pushed["applied"].as_u64(), pushed["skipped"].as_u64()),
        (Some(1), Some(1))
    );
    let broken = json!({"viimeisinKirjausavain": 7, "ajanTasalla": true, "muutokset": [{"henkilotunnus": 5}]});
    let problem = rekisteri_tests::assert_problem(
        app.post_as(&main_user, &changes_path, &broken),
        400,
        "/problems/validation",
    );
    assert!(
        problem
            .to_string()
            .contains("muutokset[0].henkilotunnus: expected a string"),
        "{problem}"
    );
    // Status (VT-10).
    let response = app.get_as(&main_user, &format!("/v1/registrars/{}/vtj/status", w.registrar));
    assert_eq!(response.status().as_u16(), 200);
    let status: Value = response.json().unwrap();
    assert_eq!(status["cursor"], 1000);
    assert_eq!(status["last_run_outcome"], "completed");
    assert_eq!(
        (status["applied"].as_i64(), status["skipped"].as_i64()),
        (Some(4), Some(1))
    );
    assert_eq!(status["running"], false);
    // Another registrar's user: 404; a user of the registrar without manage_vtj: 403.
    let stranger = app.token("paakayttaja@nokia.fi", USER_PASSWORD);
    assert_eq!(app.post_as(&stranger, &sync_path, &json!({})).status().as_u16(), 404);
    assert_eq!(app.post_as(&w.handler, &sync_path, &json!({})).status().as_u16(), 403);
    // One run per registrar at a time: while one holds the lock, a second start is 409.
    {
        let mut conn = app.db.conn();
        diesel::update(
            rekisteri_db::schema::vtj_state::table
                .filter(rekisteri_db::schema::vtj_state::registrar_id.eq(&w.registrar)),
        )
        .set(rekisteri_db::schema::vtj_state::running_since.eq(Some(rekisteri_db::to_primitive(app.clock.now()))))
        .execute(&mut *conn)
        .unwrap();
    }
    rekisteri_tests::assert_problem(
        app.post_as(&main_user, &sync_path, &json!({})),
        409,
        "/problems/conflict",
    );
}

rekisteri_tests::database_test!(
    fn vt_10_sync_and_status_over_http_with_one_run_per_registrar_and_pushed_batches(db) {
        vt_10_body(db);
    }
);

app_test!(
    fn vt_7_death_closes_services_ends_proxies_and_puts_the_client_on_the_work_list(app) {
        let w = world(app);
        let (id, service) = create(app, &w, 1);
        let (living, _) = create(app, &w, 2);
        let proxies = format!("/v1/registrars/{}/clients/{id}/proxies", w.registrar);
        for (n, from) in [(900, "2026-01-01"), (901, "2027-01-01")] {
            let body = json!({"identity_code": code(n), "first_names": "Pekka", "surname": "Puolestapuhuja",
                "valid_from": from, "valid_to": null});
            let response = app.post_as(&w.handler, &proxies, &body);
            assert_eq!(response.status().as_u16(), 201, "{}", response.text().unwrap());
        }
        let sim = simulator(vec![person(1, "Kotikatu"), person(2, "Kotikatu")], Vec::new(), 10);
        let v = vtj(app, &sim);
        sync(app, &v, &w).unwrap();
        sim.push_change(json!({"henkilotunnus": code(1), "muutospv": "2026-11-23T08:00:00.000Z", "tietoryhmat": [
            {"tietoryhma": "KUOLINPAIVA", "kuollut": true, "kuolinpv": {"arvo": "2026-11-22", "tarkkuus": "PAIVA"}}]}));
        assert_eq!(sync(app, &v, &w).unwrap().counts.applied, 1);
        let client = client_json(app, &w, &id);
        assert_eq!(client["died_on"], "2026-11-22");
        {
            use rekisteri_db::schema::proxies;
            let mut conn = app.db.conn();
            let closed: (String, Option<time::Date>) = services::table
                .filter(services::id.eq(&service))
                .select((services::status, services::closed_on))
                .first(&mut *conn)
                .unwrap();
            assert_eq!(closed, ("closed".to_owned(), Some(time::macros::date!(2026 - 11 - 22))));
            let mut ended: Vec<(time::Date, Option<time::Date>, Option<String>)> = proxies::table
                .filter(proxies::client_id.eq(&id))
                .select((proxies::valid_from, proxies::valid_to, proxies::revoked_by))
                .load(&mut *conn)
                .unwrap();
            ended.sort();
            assert_eq!(
                ended,
                vec![
                    (time::macros::date!(2026 - 01 - 01), Some(time::macros::date!(2026 - 11 - 22)), None),
                    (time::macros::date!(2027 - 01 - 01), None, Some("vtj".to_owned())),
                ]
            );
        }
        // Service events dated after the death are refused; one before it is still accepted.
        let admin = app.token(rekisteri_tests::ADMIN_EMAIL, rekisteri_tests::ADMIN_PASSWORD);
        app.add_user(&admin, "hoitaja@hoiva.fi", &w.provider, "provider_staff");
        let staff = app.token("hoitaja@hoiva.fi", USER_PASSWORD);
        let events = format!("/v1/registrars/{}/services/{service}/events", w.registrar);
        let refused = rekisteri_tests::assert_problem(
            app.post_as(&staff, &events, &json!({"delivered_on": "2026-11-23", "quantity": 1, "unit_price_cents": 4500})),
            422,
            "/problems/business-rule",
        );
        assert_eq!(refused["errors"][0]["field"], "delivered_on");
        let before = app.post_as(&staff, &events, &json!({"delivered_on": "2026-11-21", "quantity": 1, "unit_price_cents": 4500}));
        assert_eq!(before.status().as_u16(), 201, "{}", before.text().unwrap());
        // The work list names the client closed this way, and not the living one; the read is logged.
        app.add_user(&admin, "paakayttaja@tampere.fi", &w.registrar, "main_user");
        let main_user = app.token("paakayttaja@tampere.fi", USER_PASSWORD);
        let path = format!("/v1/registrars/{}/vtj/deaths", w.registrar);
        let response = app.get_as(&main_user, &path);
        assert_eq!(response.status().as_u16(), 200);
        let list: Value = response.json().unwrap();
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{list}");
        assert_eq!(items[0]["client_id"], id.as_str());
        assert_ne!(items[0]["client_id"], living.as_str());
        assert_eq!(items[0]["died_on"], "2026-11-22");
        assert_eq!((items[0]["services_closed"].as_i64(), items[0]["proxies_ended"].as_i64()), (Some(1), Some(2)));
        {
            let mut conn = app.db.conn();
            let logged: Vec<(Option<String>, String, String)> = usage_log::table
                .filter(usage_log::data_kind.eq("vtj_death_work_list"))
                .select((usage_log::data_id, usage_log::outcome, usage_log::actor_id))
                .load(&mut *conn)
                .unwrap();
            assert_eq!(logged.len(), 1);
            assert_eq!(logged[0].0.as_deref(), Some(id.as_str()));
            assert_eq!(logged[0].1, "used");
        }
        let later = app.get_as(&main_user, &format!("{path}?since=2026-12-01"));
        assert_eq!(later.json::<Value>().unwrap()["items"], json!([]));
        rekisteri_tests::assert_problem(app.get_as(&main_user, &format!("{path}?since=eilen")), 400, "/problems/validation");
        // The handler without manage_vtj: 403; another registrar's user: 404.
        rekisteri_tests::assert_problem(app.get_as(&w.handler, &path), 403, "/problems/forbidden");
        let other = w.other_registrar.clone();
        app.add_user(&admin, "paakayttaja@nokia.fi", &other, "main_user");
        let stranger = app.token("paakayttaja@nokia.fi", USER_PASSWORD);
        rekisteri_tests::assert_problem(app.get_as(&stranger, &path), 404, "/problems/not-found");
    }
);

app_test!(
    fn cl_14_anonymisation_takes_the_clients_vtj_data_with_it(app) {
        use rekisteri_db::schema::{client_death_closures, client_previous_codes, vtj_monitored};
        let w = world(app);
        let (id, _) = create(app, &w, 1);
        create(app, &w, 2);
        let sim = simulator(vec![person(1, "Kotikatu"), person(2, "Kotikatu")], Vec::new(), 10);
        let v = vtj(app, &sim);
        sync(app, &v, &w).unwrap();
        sim.push_change(json!({"henkilotunnus": code(1), "muutospv": "2026-11-25", "tietoryhmat": [
            {"tietoryhma": "HENKILOTUNNUS_KORJAUS", "muutosattribuutti": "KORJATTU", "voimassaolo": "AKTIIVI",
             "aktiivinenHenkilotunnus": code(801), "edellisetHenkilotunnukset": [code(1)]}]}));
        assert_eq!(sync(app, &v, &w).unwrap().counts.applied, 1);
        sim.push_change(json!({"henkilotunnus": code(801), "muutospv": "2026-11-27", "tietoryhmat": [
            {"tietoryhma": "KUOLINPAIVA", "kuollut": true, "kuolinpv": {"arvo": "2026-11-26", "tarkkuus": "PAIVA"}}]}));
        assert_eq!(sync(app, &v, &w).unwrap().counts.applied, 1);
        let subject = |n: u32| {
            let code = rekisteri_core::PersonalIdentityCode::parse(&code(n), rekisteri_core::TemporaryCodesAllowed::No)
                .unwrap();
            rekisteri_audit::subject_index(&app.keyring, &code).to_vec()
        };
        // Per client: staged messages under its old and new code, earlier codes, monitored
        // entries, work-list entries.
        let held = |client: &str| -> [i64; 4] {
            let mut conn = app.db.conn();
            [
                vtj_staged::table
                    .filter(vtj_staged::registrar_id.eq(&w.registrar))
                    .filter(vtj_staged::subject_index.eq_any([subject(1), subject(801)]))
                    .count()
                    .get_result(&mut *conn)
                    .unwrap(),
                client_previous_codes::table
                    .filter(client_previous_codes::client_id.eq(client))
                    .count()
                    .get_result(&mut *conn)
                    .unwrap(),
                vtj_monitored::table
                    .filter(vtj_monitored::client_id.eq(client))
                    .count()
                    .get_result(&mut *conn)
                    .unwrap(),
                client_death_closures::table
                    .filter(client_death_closures::client_id.eq(client))
                    .count()
                    .get_result(&mut *conn)
                    .unwrap(),
            ]
        };
        // Staged: base data, correction, death; one earlier code; monitored under the new code only.
        let before = held(&id);
        assert_eq!(before, [3, 1, 1, 1]);
        // Twelve months after its services closed, the client is anonymised, and its VTJ data goes too.
        app.clock.set(datetime!(2028-01-02 09:00 UTC));
        let mut own = app.db.pool.connect_unpooled().unwrap();
        let register = rekisteri_clients::ClientRegister {
            keyring: app.keyring.clone(),
            audit: app.audit.clone(),
        };
        let report = rekisteri_clients::lifecycle::run_anonymise(&mut own, &register, app.clock.now()).unwrap();
        assert!(report.clients_anonymised >= 1, "{report:?}");
        assert_eq!(held(&id), [0, 0, 0, 0]);
    }
);

app_test!(
    fn pl_6_vtj_changes_reach_clients_indexed_with_the_previous_blind_key(app) {
        use rekisteri_db::schema::vtj_monitored;
        let w = world(app);
        let (id, _) = create(app, &w, 1);
        let (other, _) = create(app, &w, 2);
        let sim = simulator(vec![person(1, "Kotikatu"), person(2, "Kotikatu")], Vec::new(), 10);
        let v = vtj(app, &sim);
        let report = sync(app, &v, &w).unwrap();
        assert_eq!((report.monitored, report.loaded, report.counts.applied), (2, 2, 2));
        let parsed = rekisteri_core::PersonalIdentityCode::parse(&code(1), rekisteri_core::TemporaryCodesAllowed::No).unwrap();
        let old_index = rekisteri_audit::subject_index(&app.keyring, &parsed).to_vec();
        app.switch_to_rotated_keys();
        let new_index = rekisteri_audit::subject_index(&app.keyring, &parsed).to_vec();
        assert_ne!(old_index, new_index);
        let monitored_index = || -> Vec<u8> {
            vtj_monitored::table
                .filter(vtj_monitored::client_id.eq(&id))
                .select(vtj_monitored::subject_index)
                .first(&mut app.db.conn())
                .unwrap()
        };
        // A change staged under the new key applies to the client monitored under the old one,
        // and nobody is loaded again.
        sim.push_change(name_change(1, "Vaihdettu", "2026-11-26"));
        let report = sync(app, &v, &w).unwrap();
        assert_eq!(
            (report.monitored, report.loaded, report.counts.applied, report.counts.skipped, report.counts.failed),
            (2, 0, 1, 0, 0)
        );
        assert_eq!(client_json(app, &w, &id)["first_names"], "Vaihdettu");
        assert_eq!(monitored_index(), old_index);
        // The rotation re-indexes the client (as its re-indexing pass would): the monitored entry
        // follows it without a new load, and the next change still applies.
        rekisteri_db::write_transaction_as(&mut app.db.conn(), "system:key-rotation", |conn| {
            diesel::update(clients::table.filter(clients::id.eq(&id)))
                .set(clients::subject_index.eq(Some(new_index.clone())))
                .execute(conn)
        })
        .unwrap();
        sim.push_change(name_change(1, "Taas", "2026-11-27"));
        let report = sync(app, &v, &w).unwrap();
        assert_eq!(
            (report.monitored, report.loaded, report.counts.applied, report.counts.skipped, report.counts.failed),
            (2, 0, 1, 0, 0)
        );
        assert_eq!(client_json(app, &w, &id)["first_names"], "Taas");
        assert_eq!(monitored_index(), new_index);
        // Anonymisation takes the person's staged messages under either key.
        let staged = || -> i64 {
            vtj_staged::table
                .filter(vtj_staged::registrar_id.eq(&w.registrar))
                .filter(vtj_staged::subject_index.eq_any([old_index.clone(), new_index.clone()]))
                .count()
                .get_result(&mut app.db.conn())
                .unwrap()
        };
        assert_eq!(staged(), 3);
        app.clock.set(datetime!(2030-01-02 09:00 UTC));
        let mut own = app.db.pool.connect_unpooled().unwrap();
        let register = rekisteri_clients::ClientRegister {
            keyring: app.keyring.clone(),
            audit: app.audit.clone(),
        };
        let report = rekisteri_clients::lifecycle::run_anonymise(&mut own, &register, app.clock.now()).unwrap();
        assert_eq!(report.clients_anonymised, 2, "{report:?}");
        assert_eq!(staged(), 0);
        let left: i64 = vtj_staged::table
            .filter(vtj_staged::registrar_id.eq(&w.registrar))
            .count()
            .get_result(&mut app.db.conn())
            .unwrap();
        assert_eq!(left, 0, "client {other}'s staged messages go too");
    }
);

app_test!(
    fn vt_11_concurrent_pushed_batches_apply_once_and_each_answers_for_its_own_changes(app) {
        // Found by the crash suite's load (issue 20): pushes that arrive together each refreshed
        // the monitored list and inserted the same new people (500, unique constraint), and each
        // applied and counted whatever was pending, its neighbours' changes too.
        let w = world(app);
        let threads = 6u32;
        let ids: Vec<String> = (0..threads * 2).map(|n| create(app, &w, n).0).collect();
        let admin = app.token(rekisteri_tests::ADMIN_EMAIL, rekisteri_tests::ADMIN_PASSWORD);
        app.add_user(&admin, "paakayttaja@tampere.fi", &w.registrar, "main_user");
        let main_user = app.token("paakayttaja@tampere.fi", USER_PASSWORD);
        let path = format!("/v1/registrars/{}/vtj/changes", w.registrar);
        let rounds = 3u32;
        let start = std::sync::Barrier::new(threads as usize);
        let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let (start, path, main_user) = (&start, &path, &main_user);
                    scope.spawn(move || {
                        start.wait();
                        (1..=rounds)
                            .map(|round| {
                                let on = format!("2026-11-2{round}");
                                let batch = json!({"viimeisinKirjausavain": round, "ajanTasalla": true, "muutokset": [
                                    name_change(2 * t, &format!("Kierros{round}"), &on),
                                    name_change(2 * t + 1, &format!("Kierros{round}"), &on)]});
                                let response = app.post_as(main_user, path, &batch);
                                (response.status().as_u16(), response.text().unwrap())
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        for (status, body) in &answers {
            assert_eq!(*status, 200, "{body}");
            let counts: Value = serde_json::from_str(body).unwrap();
            assert_eq!(
                (&counts["applied"], &counts["skipped"], &counts["failed"]),
                (&json!(2), &json!(0), &json!(0)),
                "{body}"
            );
        }
        let staged: Vec<Option<String>> = vtj_staged::table
            .filter(vtj_staged::registrar_id.eq(&w.registrar))
            .select(vtj_staged::outcome)
            .load(&mut app.db.conn())
            .unwrap();
        assert_eq!(staged.len() as u32, threads * 2 * rounds);
        assert!(staged.iter().all(|o| o.as_deref() == Some("applied")), "{staged:?}");
        let monitored: i64 = rekisteri_db::schema::vtj_monitored::table
            .filter(rekisteri_db::schema::vtj_monitored::registrar_id.eq(&w.registrar))
            .count()
            .get_result(&mut app.db.conn())
            .unwrap();
        assert_eq!(monitored as u32, threads * 2);
        for id in &ids {
            assert_eq!(client_json(app, &w, id)["first_names"], "Kierros3");
        }
    }
);

app_test!(
    fn vt_4_a_change_older_than_the_applied_one_is_skipped_and_a_failed_row_never_blocks_the_others(app) {
        let w = world(app);
        let ids: Vec<String> = (0..3).map(|n| create(app, &w, n).0).collect();
        let admin = app.token(rekisteri_tests::ADMIN_EMAIL, rekisteri_tests::ADMIN_PASSWORD);
        app.add_user(&admin, "paakayttaja@tampere.fi", &w.registrar, "main_user");
        let main_user = app.token("paakayttaja@tampere.fi", USER_PASSWORD);
        let path = format!("/v1/registrars/{}/vtj/changes", w.registrar);
        let push = |key: u32, changes: Vec<Value>| -> Value {
            let batch = json!({"viimeisinKirjausavain": key, "ajanTasalla": true, "muutokset": changes});
            let response = app.post_as(&main_user, &path, &batch);
            assert_eq!(response.status().as_u16(), 200, "{}", response.text().unwrap());
            response.json().unwrap()
        };
        let counts = |v: &Value| (v["applied"].clone(), v["skipped"].clone(), v["failed"].clone());
        // The newer change applies; one dated before it then changes nothing.
        assert_eq!(counts(&push(1, vec![name_change(0, "Uudempi", "2026-11-25")])), (json!(1), json!(0), json!(0)));
        assert_eq!(counts(&push(2, vec![name_change(0, "Vanhempi", "2026-11-20")])), (json!(0), json!(1), json!(0)));
        assert_eq!(client_json(app, &w, &ids[0])["first_names"], "Uudempi");
        // A change that cannot apply (its identity code's check character is wrong) fails on its
        // own row; the changes before and after it in the same batch apply.
        let mut broken = name_change(2, "Rikki", "2026-11-26");
        let good = code(2);
        let wrong_check = if good.ends_with('A') { "B" } else { "A" };
        broken["henkilotunnus"] = json!(format!("{}{wrong_check}", &good[..10]));
        let answer = push(
            3,
            vec![
                name_change(1, "Ensimmäinen", "2026-11-26"),
                broken,
                name_change(0, "Viimeinen", "2026-11-26"),
            ],
        );
        assert_eq!(counts(&answer), (json!(2), json!(0), json!(1)), "{answer}");
        assert_eq!(client_json(app, &w, &ids[1])["first_names"], "Ensimmäinen");
        assert_eq!(client_json(app, &w, &ids[2])["first_names"], "Vanha");
        assert_eq!(client_json(app, &w, &ids[0])["first_names"], "Viimeinen");
        let rows: Vec<(i64, Option<String>, Option<String>)> = vtj_staged::table
            .filter(vtj_staged::registrar_id.eq(&w.registrar))
            .order(vtj_staged::seq)
            .select((vtj_staged::seq, vtj_staged::outcome, vtj_staged::reason))
            .load(&mut app.db.conn())
            .unwrap();
        let outcomes: Vec<(Option<&str>, Option<&str>)> =
            rows.iter().map(|(_, o, r)| (o.as_deref(), r.as_deref())).collect();
        assert_eq!(outcomes[0], (Some("applied"), None));
        assert_eq!(outcomes[1], (Some("skipped"), Some("older than the data the register holds")));
        assert_eq!(outcomes[2], (Some("applied"), None));
        assert_eq!(outcomes[3].0, Some("failed"));
        assert_eq!(outcomes[3].1, Some("henkilotunnus: not a valid identity code"));
        assert_eq!(outcomes[4], (Some("applied"), None));
        assert_eq!(rows.len(), 5);
    }
);

app_test!(
    fn vt_9_vtj_queries_name_the_registrars_own_dvv_permit_and_else_the_platforms(app) {
        let w = world(app);
        create(app, &w, 0);
        let sim = simulator(vec![person(0, "Kotikatu")], Vec::new(), 10);
        let v = vtj(app, &sim);
        let purposes = |app: &TestApp| -> Vec<String> {
            usage_log::table
                .filter(usage_log::registrar_id.eq(&w.registrar))
                .filter(usage_log::actor_id.eq("vtj"))
                .filter(usage_log::data_kind.eq_any(["vtj_perustiedot", "vtj_muutokset"]))
                .select(usage_log::purpose)
                .load(&mut app.db.conn())
                .unwrap()
        };
        // Without a permit of its own, the registrar's queries are made under the platform's.
        sync(app, &v, &w).unwrap();
        let before = purposes(app);
        assert!(!before.is_empty());
        assert!(
            before
                .iter()
                .all(|p| p == "keeping the client register current from VTJ (permit DVV/123/2026)"),
            "{before:?}"
        );
        // Its own permit, recorded by an admin, is named from the next run on.
        let admin = app.token(rekisteri_tests::ADMIN_EMAIL, rekisteri_tests::ADMIN_PASSWORD);
        let changed = app.patch_as(
            &admin,
            &format!("/v1/organisations/{}", w.registrar),
            &json!({"dvv_permit_reference": "DVV/777/05.01.00/2026"}),
        );
        assert_eq!(changed.status().as_u16(), 200);
        assert_eq!(changed.json::<Value>().unwrap()["dvv_permit_reference"], "DVV/777/05.01.00/2026");
        sim.push_change(name_change(0, "Uusi", "2026-11-28"));
        sync(app, &v, &w).unwrap();
        let after = purposes(app);
        let named = |permit: &str| {
            let purpose = format!("keeping the client register current from VTJ (permit {permit})");
            after.iter().filter(|p| **p == purpose).count()
        };
        assert_eq!(named("DVV/123/2026"), before.len(), "{after:?}");
        assert!(named("DVV/777/05.01.00/2026") >= 1, "{after:?}");
        assert_eq!(named("DVV/123/2026") + named("DVV/777/05.01.00/2026"), after.len(), "{after:?}");
        // A blank reference is a 400 naming the field, and the stored one stays.
        let problem = assert_problem(
            app.patch_as(&admin, &format!("/v1/organisations/{}", w.registrar), &json!({"dvv_permit_reference": "  "})),
            400,
            "/problems/validation",
        );
        assert_eq!(problem["errors"][0]["field"], "dvv_permit_reference");
        let organisation: Value = app.get_as(&admin, &format!("/v1/organisations/{}", w.registrar)).json().unwrap();
        assert_eq!(organisation["dvv_permit_reference"], "DVV/777/05.01.00/2026");
    }
);

fn home_municipality_change(n: u32, municipality: &str, moved_on: &str) -> Value {
    json!({"henkilotunnus": code(n), "muutospv": format!("{moved_on}T10:00:00.000Z"), "tietoryhmat": [
        {"tietoryhma": "KOTIKUNTA", "muutosattribuutti": "LISATTY", "kuntakoodi": municipality,
            "kuntaanMuuttopv": {"arvo": moved_on, "tarkkuus": "PAIVA"}}
    ]})
}

/// The client's services as `(status, closed_on)`.
fn service_states(app: &TestApp, w: &World, client: &str) -> Vec<(String, Option<time::Date>)> {
    services::table
        .filter(services::registrar_id.eq(&w.registrar))
        .filter(services::client_id.eq(client))
        .select((services::status, services::closed_on))
        .load(&mut app.db.conn())
        .unwrap()
}

app_test!(
    fn vt_4_a_move_between_two_registrars_keeps_the_services_and_notifies_the_new_registrar(app) {
        let w = world(app);
        let admin = app.token(rekisteri_tests::ADMIN_EMAIL, rekisteri_tests::ADMIN_PASSWORD);
        let nokia = w.other_registrar.clone();
        let set_municipalities = |organisation: &str, codes: Value| {
            app.patch_as(&admin, &format!("/v1/organisations/{organisation}"), &json!({"municipality_codes": codes}))
        };
        // Tampere serves Tampere and Kangasala; Nokia serves Nokia.
        let tampere: Value = set_municipalities(&w.registrar, json!(["837", "211"])).json().unwrap();
        assert_eq!(tampere["municipality_codes"], json!(["211", "837"]));
        assert_eq!(set_municipalities(&nokia, json!(["536"])).status().as_u16(), 200);
        // A municipality has one registrar; a provider serves none; a code must exist.
        assert_problem(set_municipalities(&nokia, json!(["536", "837"])), 409, "/problems/conflict");
        let problem = assert_problem(set_municipalities(&w.provider, json!(["536"])), 422, "/problems/business-rule");
        assert_eq!(problem["errors"][0]["field"], "municipality_codes");
        assert_problem(set_municipalities(&nokia, json!(["999"])), 400, "/problems/validation");
        let kept: Value = app.get_as(&admin, &format!("/v1/organisations/{nokia}")).json().unwrap();
        assert_eq!(kept["municipality_codes"], json!(["536"]));

        let (to_nokia, _) = create(app, &w, 0);
        let (to_helsinki, _) = create(app, &w, 1);
        let (to_kangasala, _) = create(app, &w, 2);
        let sim = simulator((0..3).map(|n| person(n, "Kotikatu")).collect(), Vec::new(), 10);
        let v = vtj(app, &sim);
        sync(app, &v, &w).unwrap();
        sim.push_change(home_municipality_change(0, "536", "2026-11-20"));
        sim.push_change(home_municipality_change(1, "091", "2026-11-25"));
        sim.push_change(home_municipality_change(2, "211", "2026-11-26"));
        let report = sync(app, &v, &w).unwrap();
        assert_eq!(report.counts.applied, 3);

        // Into a registrar of the system: the record and its services stay.
        assert_eq!(service_states(app, &w, &to_nokia), [("active".to_owned(), None)]);
        let moved: Value = app.get_as(&w.handler, &format!("/v1/registrars/{}/clients/{to_nokia}", w.registrar)).json().unwrap();
        assert_eq!(moved["home_municipality"], "536");
        // Within the registrar's own municipalities: nothing closes.
        assert_eq!(service_states(app, &w, &to_kangasala), [("active".to_owned(), None)]);
        // To a municipality no registrar of the system serves: the services close on the day of the move.
        assert_eq!(
            service_states(app, &w, &to_helsinki),
            [("closed".to_owned(), Some(time::macros::date!(2026 - 11 - 25)))]
        );

        // Nokia's register got one notice, with what VTJ told.
        app.add_user(&admin, "paakayttaja@nokia.fi", &nokia, "main_user");
        let nokia_main = app.token("paakayttaja@nokia.fi", USER_PASSWORD);
        let response = app.get_as(&nokia_main, &format!("/v1/registrars/{nokia}/vtj/moves-in"));
        assert_eq!(response.status().as_u16(), 200);
        let notices: Value = response.json().unwrap();
        let items = notices["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{notices}");
        assert_eq!(items[0]["identity_code"], code(0));
        assert_eq!(items[0]["home_municipality"], "536");
        assert_eq!(items[0]["moved_on"], "2026-11-20");
        assert_eq!(items[0]["from_registrar_id"], w.registrar.as_str());
        // The notice names no service of the sending register.
        assert!(!notices.to_string().contains("Kotihoito"), "{notices}");
        // Reading it is a logged use in Nokia's log; sending it a disclosure in Tampere's.
        let uses: Vec<String> = usage_log::table
            .filter(usage_log::registrar_id.eq(&nokia))
            .filter(usage_log::data_kind.eq("vtj_move_notice"))
            .select(usage_log::data_id.assume_not_null())
            .load(&mut app.db.conn())
            .unwrap();
        assert_eq!(uses, [items[0]["id"].as_str().unwrap().to_owned()]);
        let disclosed: Vec<(String, String)> = disclosure_log::table
            .filter(disclosure_log::registrar_id.eq(&w.registrar))
            .select((disclosure_log::recipient_kind, disclosure_log::recipient_id))
            .load(&mut app.db.conn())
            .unwrap();
        assert_eq!(disclosed, [("registrar".to_owned(), nokia.clone())]);
        // Tampere itself has no notice, and the list is Nokia's own: another registrar gets 404.
        app.add_user(&admin, "paakayttaja@tampere.fi", &w.registrar, "main_user");
        let tampere_main = app.token("paakayttaja@tampere.fi", USER_PASSWORD);
        let own: Value = app.get_as(&tampere_main, &format!("/v1/registrars/{}/vtj/moves-in", w.registrar)).json().unwrap();
        assert_eq!(own["items"], json!([]));
        assert_problem(app.get_as(&tampere_main, &format!("/v1/registrars/{nokia}/vtj/moves-in")), 404, "/problems/not-found");
    }
);

app_test!(
    fn vt_4_a_registrar_without_recorded_municipalities_closes_nothing_on_a_move(app) {
        let w = world(app);
        let (client, _) = create(app, &w, 0);
        let sim = simulator(vec![person(0, "Kotikatu")], Vec::new(), 10);
        let v = vtj(app, &sim);
        sync(app, &v, &w).unwrap();
        sim.push_change(home_municipality_change(0, "091", "2026-11-25"));
        assert_eq!(sync(app, &v, &w).unwrap().counts.applied, 1);
        // It cannot tell a move out of its area from one within it: the services stay.
        assert_eq!(service_states(app, &w, &client), [("active".to_owned(), None)]);
    }
);

/// The address JSON the API answers: every field of `Address`, the given ones set.
fn address_json(set: Value) -> Value {
    let mut all = json!({"street_address": null, "po_box": null, "street_name": null, "apartment_number": null,
        "apartment_letter": null, "apartment_division_letter": null, "postal_code": null, "post_office": null,
        "address_qualifier": null, "municipality": null, "country_code": null});
    for (k, v) in set.as_object().unwrap() {
        assert!(all.get(k).is_some(), "{k} is no address field");
        all[k] = v.clone();
    }
    all
}

/// The client row's sealed column `column` opened, as the test compares it.
fn sealed_column(app: &TestApp, w: &World, id: &str, column: &str) -> Option<String> {
    let mut conn = app.db.conn();
    let base = clients::table
        .filter(clients::registrar_id.eq(&w.registrar))
        .filter(clients::id.eq(id));
    let value: Option<Vec<u8>> = match column {
        "temporary_address" => base.select(clients::temporary_address).first(&mut conn),
        "postal_address" => base.select(clients::postal_address).first(&mut conn),
        "guardianship" => base.select(clients::guardianship).first(&mut conn),
        other => panic!("no sealed column {other}"),
    }
    .unwrap();
    if let Some(raw) = &value {
        // Sealed: no clear text of the value in the column.
        for needle in ["street_address", "guardian", "starts_on"] {
            assert!(
                !raw.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} in clear"
            );
        }
    }
    drop(conn);
    open(app, id, column, value)
}

/// The history rows of a client as JSON documents.
fn history_rows(app: &TestApp, id: &str) -> Vec<(String, Value)> {
    let history = rekisteri_db::history::change_history_of(&mut app.db.conn(), "clients", id).unwrap();
    history
        .into_iter()
        .flat_map(|h| {
            [h.old_row, h.new_row]
                .into_iter()
                .flatten()
                .map(move |row| (h.actor.clone(), serde_json::from_str::<Value>(&row).unwrap()))
        })
        .collect()
}

app_test!(
    fn vt_4_guardianship_from_vtj_is_kept_with_its_dates(app) {
        let w = world(app);
        let (id, _) = create(app, &w, 30);
        let (other, _) = create(app, &w, 31);
        let mut base = person(30, "Kotikatu");
        base["tietoryhmat"].as_array_mut().unwrap().push(json!(
            {"tietoryhma": "EDUNVALVONTA", "alkupv": {"arvo": "2019-03-15", "tarkkuus": "PAIVA"}}));
        let sim = simulator(vec![base, person(31, "Kotikatu")], Vec::new(), 10);
        let v = vtj(app, &sim);
        let report = sync(app, &v, &w).unwrap();
        assert_eq!((report.counts.applied, report.counts.skipped, report.counts.failed), (2, 0, 0));
        let client = client_json(app, &w, &id);
        assert_eq!(client["guardianship"], json!({"guardian": {"starts_on": "2019-03-15"}}));
        // Someone without guardianship has none.
        assert!(client_json(app, &w, &other).get("guardianship").is_none());
        let stored: Value = serde_json::from_str(&sealed_column(app, &w, &id, "guardianship").unwrap()).unwrap();
        assert_eq!(stored, json!({"guardian": {"starts_on": "2019-03-15"}}));

        // The guardian's task ends (the old value ends, no new one); a continuing power of
        // attorney is confirmed, its start known to the month.
        sim.push_change(json!({"henkilotunnus": code(30), "muutospv": "2026-11-20T10:00:00.000Z", "tietoryhmat": [
            {"tietoryhma": "EDUNVALVONTA", "muutosattribuutti": "MUUTETTU",
             "alkupv": {"arvo": "2019-03-15", "tarkkuus": "PAIVA"}, "loppupv": {"arvo": "2026-11-20", "tarkkuus": "PAIVA"}},
            {"tietoryhma": "EDUNVALVONTAVALTUUTUS", "muutosattribuutti": "LISATTY",
             "alkupv": {"arvo": "2026-11", "tarkkuus": "KUUKAUSI"}}]}));
        let report = sync(app, &v, &w).unwrap();
        assert_eq!((report.counts.applied, report.counts.skipped, report.counts.failed), (1, 0, 0));
        let (_, staged) = full_state(app, &w);
        assert_eq!(staged.last().unwrap(), &("applied".to_owned(), None));
        let client = client_json(app, &w, &id);
        assert_eq!(
            client["guardianship"],
            json!({"guardian": {"starts_on": "2019-03-15", "ends_on": "2026-11-20"},
                   "continuing_power_of_attorney": {"starts_on": "2026-11-01", "starts_on_precision": "month"}})
        );
        // The change is in the client's history, by vtj.
        let rows = history_rows(app, &id);
        let (actor, last) = rows.last().unwrap();
        assert_eq!(actor, "vtj");
        assert!(last.get("guardianship").is_some_and(|g| !g.is_null()), "{last}");

        // Read-only for the API's clients: the register does not take it in a change.
        let path = format!("/v1/registrars/{}/clients/{id}", w.registrar);
        let response = app
            .client
            .patch(app.url(&path))
            .bearer_auth(&w.handler)
            .header("If-Match", format!("\"{}\"", client["version"]))
            .json(&json!({"guardianship": {"guardian": null}}))
            .send()
            .unwrap();
        assert_problem(response, 400, "/problems/validation");
        assert_eq!(client_json(app, &w, &id)["guardianship"], client["guardianship"]);

        // Removed in VTJ: the measure is gone; with none left, so is the field and the value.
        sim.push_change(json!({"henkilotunnus": code(30), "muutospv": "2026-11-28T10:00:00.000Z", "tietoryhmat": [
            {"tietoryhma": "EDUNVALVONTA", "muutosattribuutti": "POISTETTU"},
            {"tietoryhma": "EDUNVALVONTAVALTUUTUS", "muutosattribuutti": "POISTETTU"}]}));
        sync(app, &v, &w).unwrap();
        assert!(client_json(app, &w, &id).get("guardianship").is_none());
        assert_eq!(sealed_column(app, &w, &id, "guardianship"), None);
    }
);

app_test!(
    fn vt_4_temporary_and_postal_addresses_are_kept_beside_the_permanent_one(app) {
        let w = world(app);
        let (id, _) = create(app, &w, 40);
        let with_secondary = |street: &str| {
            let mut p = person(40, street);
            let groups = p["tietoryhmat"].as_array_mut().unwrap();
            groups.push(json!({"tietoryhma": "TILAPAINEN_KOTIMAINEN_OSOITE", "katunimi": {"fi": "Mökkitie", "sv": "Stugvägen"},
                "katunumero": "3", "postinumero": "41800", "postitoimipaikka": {"fi": "KORPILAHTI"},
                "alkupv": {"arvo": "2026-06-01", "tarkkuus": "PAIVA"}}));
            groups.push(json!({"tietoryhma": "KOTIMAINEN_POSTIOSOITE", "postiosoite": {"fi": "PL 12", "sv": "PB 12"},
                "postinumero": "33101", "postitoimipaikka": {"fi": "TAMPERE", "sv": "TAMMERFORS"}}));
            p
        };
        let sim = simulator(vec![with_secondary("Kotikatu")], Vec::new(), 10);
        let v = vtj(app, &sim);
        let report = sync(app, &v, &w).unwrap();
        assert_eq!((report.counts.applied, report.counts.skipped, report.counts.failed), (1, 0, 0));
        let (_, staged) = full_state(app, &w);
        assert_eq!(staged, vec![("applied".to_owned(), None)], "nothing of it skipped");
        let temporary = address_json(json!({"street_address": "Mökkitie 3", "street_name": "Mökkitie",
            "postal_code": "41800", "post_office": "KORPILAHTI", "country_code": "FI"}));
        let postal = address_json(json!({"street_address": "PL 12", "postal_code": "33101", "post_office": "TAMPERE",
            "country_code": "FI"}));
        let client = client_json(app, &w, &id);
        assert_eq!(
            client["address"],
            address_json(json!({"street_address": "Kotikatu 41", "street_name": "Kotikatu", "postal_code": "33100",
                "post_office": "TAMPERE", "country_code": "FI"}))
        );
        assert_eq!(client["temporary_address"], temporary);
        assert_eq!(client["postal_address"], postal);
        // Sealed to the row like the permanent address.
        let stored: Value =
            serde_json::from_str(&sealed_column(app, &w, &id, "temporary_address").unwrap()).unwrap();
        assert_eq!(stored, temporary);
        let stored: Value = serde_json::from_str(&sealed_column(app, &w, &id, "postal_address").unwrap()).unwrap();
        assert_eq!(stored, postal);

        // The temporary address ends without a new one; a foreign postal address replaces the
        // domestic one. The permanent address stays.
        sim.push_change(json!({"henkilotunnus": code(40), "muutospv": "2026-11-20T10:00:00.000Z", "tietoryhmat": [
            {"tietoryhma": "TILAPAINEN_KOTIMAINEN_OSOITE", "muutosattribuutti": "MUUTETTU", "katunimi": {"fi": "Mökkitie"},
             "katunumero": "3", "loppupv": {"arvo": "2026-11-20", "tarkkuus": "PAIVA"}},
            {"tietoryhma": "ULKOMAINEN_POSTIOSOITE", "muutosattribuutti": "LISATTY", "lahiosoite": "Storgatan 1",
             "paikkakunta": "Stockholm", "valtiokoodi": "SE"}]}));
        sync(app, &v, &w).unwrap();
        let client = client_json(app, &w, &id);
        assert!(client.get("temporary_address").is_none(), "{client}");
        assert_eq!(sealed_column(app, &w, &id, "temporary_address"), None);
        assert_eq!(
            client["postal_address"],
            address_json(json!({"street_address": "Storgatan 1", "post_office": "Stockholm", "country_code": "SE"}))
        );
        assert_eq!(client["address"]["street_name"], "Kotikatu");
        sim.push_change(json!({"henkilotunnus": code(40), "muutospv": "2026-11-21T10:00:00.000Z", "tietoryhmat": [
            {"tietoryhma": "TILAPAINEN_ULKOMAINEN_OSOITE", "muutosattribuutti": "LISATTY", "lahiosoite": "Rue 5",
             "paikkakunta": "Paris", "valtiokoodi": "FR"}]}));
        sync(app, &v, &w).unwrap();
        let client = client_json(app, &w, &id);
        assert_eq!(
            client["temporary_address"],
            address_json(json!({"street_address": "Rue 5", "post_office": "Paris", "country_code": "FR"}))
        );

        // A protection order: no address of the person is kept, in the row or its history,
        // and the incoming secondary addresses are not stored (CL-8, VT-6).
        let mut protected = with_secondary("Salakuja");
        protected["tietoryhmat"].as_array_mut().unwrap().push(json!(
            {"tietoryhma": "TURVAKIELTO", "turvakieltoAktiivinen": true}));
        sim.set_person(protected);
        sim.push_change(json!({"henkilotunnus": code(40), "muutospv": "2026-11-27T10:00:00.000Z", "tietoryhmat": [
            {"tietoryhma": "TURVAKIELTO", "muutosattribuutti": "LISATTY", "turvakieltoAktiivinen": true},
            {"tietoryhma": "TILAPAINEN_KOTIMAINEN_OSOITE", "muutosattribuutti": "LISATTY", "katunimi": {"fi": "Piilotie"}},
            {"tietoryhma": "KOTIMAINEN_POSTIOSOITE", "muutosattribuutti": "LISATTY", "postiosoite": {"fi": "PL 99"}}]}));
        sync(app, &v, &w).unwrap();
        let client = client_json(app, &w, &id);
        assert_eq!(client["protection_order"], true);
        for field in ["address", "temporary_address", "postal_address", "home_municipality"] {
            assert!(client.get(field).is_none(), "{field}: {client}");
        }
        assert_eq!(sealed_column(app, &w, &id, "temporary_address"), None);
        assert_eq!(sealed_column(app, &w, &id, "postal_address"), None);
        let rows = history_rows(app, &id);
        assert!(rows.len() > 4);
        for (_, row) in &rows {
            for field in ["address", "temporary_address", "postal_address", "home_municipality"] {
                assert!(row.get(field).is_none(), "{field} in {row}");
            }
        }
        // Nor in the staged messages: their censored groups are overwritten.
        let staged: Vec<(i64, Vec<u8>)> = vtj_staged::table
            .filter(vtj_staged::registrar_id.eq(&w.registrar))
            .select((vtj_staged::seq, vtj_staged::message))
            .load(&mut app.db.conn())
            .unwrap();
        assert!(staged.len() >= 4);
        for (seq, sealed) in staged {
            #[allow(clippy::disallowed_methods, reason = "the test inspects what was staged")]
            let text = FieldCipher::new(&app.keyring)
                .decrypt_string(
                    &FieldContext::new("vtj_staged", "message", &format!("{}/{seq}", w.registrar)),
                    &sealed,
                )
                .unwrap();
            for needle in ["Mökkitie", "PL 12", "Storgatan", "Rue 5", "Piilotie", "PL 99"] {
                assert!(!text.contains(needle), "{needle} in {text}");
            }
        }
        // The order ends: the addresses are fetched again and revealed.
        sim.set_person(with_secondary("Avoinkatu"));
        sim.push_change(json!({"henkilotunnus": code(40), "muutospv": "2026-11-29T10:00:00.000Z", "tietoryhmat": [
            {"tietoryhma": "TURVAKIELTO", "muutosattribuutti": "MUUTETTU", "turvakieltoAktiivinen": false}]}));
        sync(app, &v, &w).unwrap();
        let client = client_json(app, &w, &id);
        assert_eq!(client["protection_order"], false);
        assert_eq!(client["address"]["street_name"], "Avoinkatu");
        assert_eq!(client["temporary_address"], temporary);
        assert_eq!(client["postal_address"], postal);

        // A protection order set by hand (CL-8) clears them the same way.
        let path = format!("/v1/registrars/{}/clients/{id}", w.registrar);
        let response = app
            .client
            .patch(app.url(&path))
            .bearer_auth(&w.handler)
            .header("If-Match", format!("\"{}\"", client["version"]))
            .json(&json!({"protection_order": true}))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{}", response.text().unwrap());
        let changed: Value = response.json().unwrap();
        assert!(changed.get("temporary_address").is_none() && changed.get("postal_address").is_none(), "{changed}");
        assert_eq!(sealed_column(app, &w, &id, "temporary_address"), None);
        assert_eq!(sealed_column(app, &w, &id, "postal_address"), None);
        for (_, row) in history_rows(app, &id) {
            for field in ["address", "temporary_address", "postal_address", "home_municipality"] {
                assert!(row.get(field).is_none(), "{field} in {row}");
            }
        }
    }
);

app_test!(
    fn vt_4_month_precision_date_round_trips(app) {
        let w = world(app);
        let (id, _) = create(app, &w, 50);
        let mut base = person(50, "Kotikatu");
        base["tietoryhmat"][2] = json!({"tietoryhma": "KOTIKUNTA", "kuntakoodi": "837",
            "kuntaanMuuttopv": {"arvo": "2024-01", "tarkkuus": "KUUKAUSI"}});
        let sim = simulator(vec![base], Vec::new(), 10);
        let v = vtj(app, &sim);
        sync(app, &v, &w).unwrap();
        let client = client_json(app, &w, &id);
        assert_eq!(client["moved_in_on"], "2024-01-01");
        assert_eq!(client["moved_in_on_precision"], "month");
        let stored: (Option<time::Date>, Option<String>) = clients::table
            .filter(clients::registrar_id.eq(&w.registrar))
            .filter(clients::id.eq(&id))
            .select((clients::moved_in_on, clients::moved_in_on_precision))
            .first(&mut app.db.conn())
            .unwrap();
        assert_eq!(stored, (Some(time::macros::date!(2024 - 01 - 01)), Some("month".to_owned())));

        // A full date from VTJ is a full date again.
        sim.push_change(json!({"henkilotunnus": code(50), "muutospv": "2026-11-20T10:00:00.000Z", "tietoryhmat": [
            {"tietoryhma": "KOTIKUNTA", "muutosattribuutti": "LISATTY", "kuntakoodi": "837",
             "kuntaanMuuttopv": {"arvo": "2024-01-17", "tarkkuus": "PAIVA"}}]}));
        sync(app, &v, &w).unwrap();
        let client = client_json(app, &w, &id);
        assert_eq!(client["moved_in_on"], "2024-01-17");
        assert!(client.get("moved_in_on_precision").is_none(), "{client}");

        // A move known to the year, a death known to the month.
        sim.push_change(json!({"henkilotunnus": code(50), "muutospv": "2026-11-21T10:00:00.000Z", "tietoryhmat": [
            {"tietoryhma": "KOTIKUNTA", "muutosattribuutti": "LISATTY", "kuntakoodi": "091",
             "kuntaanMuuttopv": {"arvo": "2025", "tarkkuus": "VUOSI"}},
            {"tietoryhma": "KUOLINPAIVA", "kuollut": true, "kuolinpv": {"arvo": "2026-11", "tarkkuus": "KUUKAUSI"}}]}));
        let report = sync(app, &v, &w).unwrap();
        assert_eq!((report.counts.applied, report.counts.skipped, report.counts.failed), (1, 0, 0));
        let client = client_json(app, &w, &id);
        assert_eq!(client["moved_in_on"], "2025-01-01");
        assert_eq!(client["moved_in_on_precision"], "year");
        assert_eq!(client["died_on"], "2026-11-01");
        assert_eq!(client["died_on_precision"], "month");
        let stored: (Option<time::Date>, Option<String>) = clients::table
            .filter(clients::registrar_id.eq(&w.registrar))
            .filter(clients::id.eq(&id))
            .select((clients::died_on, clients::died_on_precision))
            .first(&mut app.db.conn())
            .unwrap();
        assert_eq!(stored, (Some(time::macros::date!(2026 - 11 - 01)), Some("month".to_owned())));

        // A date the staff write is a full date; the other dates keep their precision.
        let path = format!("/v1/registrars/{}/clients/{id}", w.registrar);
        let response = app
            .client
            .patch(app.url(&path))
            .bearer_auth(&w.handler)
            .header("If-Match", format!("\"{}\"", client["version"]))
            .json(&json!({"moved_in_on": "2025-03-04"}))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{}", response.text().unwrap());
        let changed: Value = response.json().unwrap();
        assert_eq!(changed["moved_in_on"], "2025-03-04");
        assert!(changed.get("moved_in_on_precision").is_none(), "{changed}");
        assert_eq!(changed["died_on"], "2026-11-01");
        assert_eq!(changed["died_on_precision"], "month");
    }
);
