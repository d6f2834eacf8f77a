//! Key rotation (PL-6) over real HTTP on both databases: after the switch to a new blind-index
//! key, values indexed with the previous key are still found, and still count as taken.

use diesel::prelude::*;
use rekisteri_core::{PersonalIdentityCode, TemporaryCodesAllowed};
use rekisteri_db::schema::{clients, proxies, usage_log};
use rekisteri_tests::{TestApp, USER_PASSWORD, assert_problem, idp_app_test};
use serde_json::{Value, json};

use crate::clients::{MAIJA, client_body, code, create, home_care_voucher, world};

const PROXY_PERSON: u32 = 60;
const HANDLER_EMAIL: &str = "handler@tampere.fi";

fn parse(identity_code: &str) -> PersonalIdentityCode {
    PersonalIdentityCode::parse(identity_code, TemporaryCodesAllowed::No).unwrap()
}

fn proxy_body(identity_code: &str) -> Value {
    json!({"identity_code": identity_code, "first_names": "Pekka", "surname": "Puolestapuhuja",
        "valid_from": "2026-01-01"})
}

/// The (seq, data kind, data id, outcome) of a usage-log page, newest first.
fn entries(page: &Value) -> Vec<(i64, String, Option<String>, String)> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["seq"].as_i64().unwrap(),
                e["data_kind"].as_str().unwrap().to_owned(),
                e["data_id"].as_str().map(str::to_owned),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn client_index(app: &TestApp, registrar: &str, id: &str) -> Vec<u8> {
    clients::table
        .filter(clients::registrar_id.eq(registrar))
        .filter(clients::id.eq(id))
        .select(clients::subject_index)
        .first::<Option<Vec<u8>>>(&mut app.db.conn())
        .unwrap()
        .unwrap()
}

idp_app_test!(fn pl_6_lookups_find_values_indexed_with_the_previous_blind_key(app) {
    let w = world(app);
    let (_, auditor) = app.add_user(&w.admin, "auditor@tampere.fi", &w.registrar, "auditor");
    let clients_path = format!("/v1/registrars/{}/clients", w.registrar);
    let maija = parse(MAIJA);
    // Everything below is written while only k1/b1 exist.
    assert_eq!(app.keyring.blind_index_key_ids().len(), 1);
    let old_index = rekisteri_audit::subject_index(&app.keyring, &maija);
    let created = create(app, &w.handler, &w.registrar, &client_body(MAIJA, json!([home_care_voucher(&w.provider)])));
    let id = created["id"].as_str().unwrap().to_owned();
    let proxies_path = format!("{clients_path}/{id}/proxies");
    let response = app.post_as(&w.handler, &proxies_path, &proxy_body(&code(PROXY_PERSON)));
    assert_eq!(response.status().as_u16(), 201);
    let usage_search = || -> Value {
        let response = app.post_as(
            &auditor,
            &format!("/v1/registrars/{}/audit/usage/search", w.registrar),
            &json!({"identity_code": MAIJA}),
        );
        assert_eq!(response.status().as_u16(), 200);
        response.json().unwrap()
    };
    let before = entries(&usage_search());
    assert!(
        before.contains(&(before.last().unwrap().0, "client".into(), Some(id.clone()), "used".into())),
        "the creation is the oldest entry about Maija: {before:?}"
    );

    let keys = app.switch_to_rotated_keys();
    assert_eq!((keys.data.as_str(), keys.blind_index.as_str()), ("k2", "b2"));
    assert_eq!(app.keyring.active_blind_index_key_id().as_str(), "b2");
    let new_index = rekisteri_audit::subject_index(&app.keyring, &maija);
    assert_ne!(new_index, old_index);
    assert_eq!(
        rekisteri_audit::subject_index_candidates(&app.keyring, &maija),
        vec![new_index.to_vec(), old_index.to_vec()]
    );
    // Nothing re-indexed the rows: they hold the previous key's index.
    assert_eq!(client_index(app, &w.registrar, &id), old_index.to_vec());

    // Search by identity code finds the client.
    let response = app.post_as(&w.handler, &format!("{clients_path}/search"), &json!({"identity_code": MAIJA}));
    assert_eq!(response.status().as_u16(), 200);
    let found: Value = response.json().unwrap();
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{found}");
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["identity_code"], MAIJA);
    assert!(items[0].get("found_by_previous_identity_code").is_none(), "{found}");

    // The same person again is a duplicate, named to the caller who reaches it.
    let problem = assert_problem(
        app.post_as(&w.handler, &clients_path, &client_body(MAIJA, json!([home_care_voucher(&w.provider)]))),
        409,
        "/problems/conflict",
    );
    assert_eq!(problem["detail"], "The register already has a client with this identity code.");
    assert_eq!(problem["existing"], format!("{clients_path}/{id}").as_str());
    let count: i64 = clients::table
        .filter(clients::registrar_id.eq(&w.registrar))
        .count()
        .get_result(&mut app.db.conn())
        .unwrap();
    assert_eq!(count, 1);

    // A standing proxy is still standing, and the client is still not their own proxy.
    assert_problem(app.post_as(&w.handler, &proxies_path, &proxy_body(&code(PROXY_PERSON))), 409, "/problems/conflict");
    let problem = assert_problem(app.post_as(&w.handler, &proxies_path, &proxy_body(MAIJA)), 422, "/problems/business-rule");
    assert_eq!(problem["errors"][0]["field"], "identity_code");
    let standing: i64 = proxies::table
        .filter(proxies::client_id.eq(&id))
        .count()
        .get_result(&mut app.db.conn())
        .unwrap();
    assert_eq!(standing, 1);

    // The usage log by identity code: the entries written before the switch, and the three
    // made since (the auditor's search before the switch, the handler's search, the refused
    // duplicate), newest first.
    let after = entries(&usage_search());
    assert_eq!(after.len(), before.len() + 3, "{after:?}");
    assert_eq!(after[3..], before[..]);
    assert_eq!(
        after[..3].iter().map(|(_, kind, data, outcome)| (kind.as_str(), data.clone(), outcome.as_str())).collect::<Vec<_>>(),
        vec![
            ("client", Some(id.clone()), "exists"),
            ("client_search", Some(id.clone()), "used"),
            ("usage_log", None, "used"),
        ]
    );

    // Login by e-mail, in any case, with the account created before the switch.
    let response = app.login(HANDLER_EMAIL, USER_PASSWORD);
    assert_eq!(response.status().as_u16(), 200);
    let token = response.json::<Value>().unwrap()["token"].as_str().unwrap().to_owned();
    let me: Value = app.get_as(&token, "/v1/me").json().unwrap();
    assert_eq!(me["account"]["email"], HANDLER_EMAIL);
    assert_eq!(app.login("Handler@Tampere.FI", USER_PASSWORD).status().as_u16(), 200);
    // The address is taken.
    let problem = assert_problem(
        app.post_as(
            &w.admin,
            "/v1/accounts",
            &json!({"email": HANDLER_EMAIL, "first_name": "Toinen", "surname": "Käsittelijä",
                "organisation_id": w.registrar, "role": "client_handler"}),
        ),
        409,
        "/problems/conflict",
    );
    assert_eq!(problem["detail"], "an account with this e-mail address exists");

    // The citizen and their proxy find the record; the citizen's usage log shows the uses made
    // before the switch.
    let own: Value = app.get_as(&app.citizen_token(MAIJA), "/v1/me/client-records").json().unwrap();
    assert_eq!(own["items"].as_array().unwrap().len(), 1, "{own}");
    assert_eq!(own["items"][0]["relation"], "own");
    assert_eq!(own["items"][0]["client"]["id"], id.as_str());
    let acting: Value = app.get_as(&app.citizen_token(&code(PROXY_PERSON)), "/v1/me/client-records").json().unwrap();
    assert_eq!(acting["items"].as_array().unwrap().len(), 1, "{acting}");
    assert_eq!(acting["items"][0]["relation"], "proxy");
    assert_eq!(acting["items"][0]["client"]["id"], id.as_str());
    // Uses of the person's data filed under a blind index (the citizen's own log reads aside).
    let uses_under = |index: &[u8]| -> i64 {
        usage_log::table
            .filter(usage_log::subject_index.eq(index.to_vec()))
            .filter(usage_log::outcome.eq("used"))
            .filter(usage_log::data_kind.ne("own_usage_log"))
            .count()
            .get_result(&mut app.db.conn())
            .unwrap()
    };
    let (used_before, used_since) = (uses_under(&old_index), uses_under(&new_index));
    assert!(used_before >= 2 && used_since >= 2, "{used_before} {used_since}");
    let own_usage: Value = app.get_as(&app.citizen_token(MAIJA), "/v1/me/usage-log?limit=1000").json().unwrap();
    assert_eq!(own_usage["items"].as_array().unwrap().len() as i64, used_before + used_since, "{own_usage}");

    // What is written now carries the new key's index.
    let second = create(app, &w.handler, &w.registrar, &client_body(&code(2), json!([home_care_voucher(&w.provider)])));
    let second_id = second["id"].as_str().unwrap();
    assert_eq!(
        client_index(app, &w.registrar, second_id),
        rekisteri_audit::subject_index(&app.keyring, &parse(&code(2))).to_vec()
    );
    assert_eq!(client_index(app, &w.registrar, &id), old_index.to_vec());
});
