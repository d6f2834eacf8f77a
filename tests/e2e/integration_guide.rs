//! The integration guide runs (issue 24): every block of `docs/integration.md` marked
//! `sh runnable` is executed, in order and in one shell, against a freshly started server seeded
//! with what the guide's variables name; then the test checks through the API that the blocks
//! did what the guide says.

use std::process::Command;

use rekisteri_tests::{TestApp, idp_app_test, sign_jwt};
use serde_json::{Value, json};

const GUIDE: &str = include_str!("../../docs/integration.md");
const MARKER: &str = "```sh runnable";
/// The client the guide creates, and the person whose citizen token the portal's block uses.
const GUIDE_CLIENT: &str = "280353-826T";
const UNIT_OID: &str = "1.2.246.10.99998.10.1";

/// The runnable blocks of the guide, with the line each starts on.
fn runnable_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        match current.as_mut() {
            None if line.trim_end() == MARKER => current = Some((index + 1, String::new())),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    assert!(current.is_none(), "a runnable block of the guide is not closed");
    blocks
}

/// The registrar, the provider, a recorded queue, a handler and the citizen the guide's
/// variables name.
struct Seeded {
    admin: String,
    registrar: String,
    provider: String,
    queue: String,
    user_id: String,
    user_idp_token: String,
    citizen_token: String,
}

fn seed(app: &TestApp) -> Seeded {
    let admin = app.bootstrap_admin();
    // Strong authentication is switched on after the queue is made: the main user who makes it
    // has only a password session here.
    let registrar = app.create_organisation_with(
        &admin,
        &json!({"name": "Tampere", "kind": "municipality", "oid": "1.2.246.10.99997",
            "strong_authentication_required": false}),
    );
    let provider = app.create_organisation_with(
        &admin,
        &json!({"name": "Hoiva Oy", "kind": "provider", "oid": "1.2.246.10.99998"}),
    );
    let created = |response: reqwest::blocking::Response| -> Value {
        assert_eq!(response.status().as_u16(), 201);
        response.json().unwrap()
    };
    created(app.post_as(
        &admin,
        &format!("/v1/organisations/{provider}/service-units"),
        &json!({"oid": UNIT_OID, "name": "Kotihoito"}),
    ));
    let unit = created(app.post_as(
        &admin,
        &format!("/v1/organisations/{registrar}/service-units"),
        &json!({"oid": "1.2.246.10.99997.10.1", "name": "Asiakaspalvelu"}),
    ));
    let area = created(app.post_as(
        &admin,
        &format!("/v1/registrars/{registrar}/service-areas"),
        &json!({"code": "home_care", "name": "Kotihoito", "service_types": ["home_care"]}),
    ));
    let handler_email = "kasittelija@tampere.fi";
    let (user_id, _) = app.add_user(&admin, handler_email, &registrar, "client_handler");
    created(app.post_as(
        &admin,
        &format!("/v1/accounts/{user_id}/service-areas"),
        &json!({"service_area_id": area["id"]}),
    ));
    let (_, main_user) = app.add_user(&admin, "paakayttaja@tampere.fi", &registrar, "main_user");
    let queue = created(app.post_as(
        &main_user,
        &format!("/v1/registrars/{registrar}/queues"),
        &json!({"name": "Kotihoidon neuvonta", "service_unit_id": unit["id"], "recorded": true,
            "recording_announcement": "Puhelu nauhoitetaan."}),
    ));
    let strong = app.patch_as(
        &admin,
        "/v1/organisations/1.2.246.10.99997",
        &json!({"strong_authentication_required": true}),
    );
    assert_eq!(strong.status().as_u16(), 200);
    let user_idp_token = sign_jwt(
        "ed25519",
        &app.jwt_claims(json!({"email": handler_email, "amr": ["sc"]})),
    );
    Seeded {
        registrar,
        provider,
        queue: queue["id"].as_str().unwrap().to_owned(),
        user_id,
        user_idp_token,
        citizen_token: app.citizen_token(GUIDE_CLIENT),
        admin,
    }
}

idp_app_test!(fn pl_1_every_runnable_block_of_the_integration_guide_runs(app) {
    let blocks = runnable_blocks(GUIDE);
    // Credentials, tokens, the client-record system's eight, telephony, back office, documents,
    // the citizen portal.
    assert_eq!(blocks.len(), 14, "the guide's runnable blocks: {:?}", blocks.iter().map(|b| b.0).collect::<Vec<_>>());
    for tool in ["curl", "jq", "python3"] {
        let found = Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
        assert!(found, "the guide's blocks need {tool} (docs/testing.md)");
    }
    let s = seed(app);
    let mut script = String::from("set -euo pipefail\n");
    for (line, body) in &blocks {
        script.push_str(&format!("echo '== docs/integration.md line {line}' >&2\n{body}"));
    }
    script.push_str("echo '== every block ran' >&2\n");
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("BASE", &app.base)
        .env("ADMIN_TOKEN", &s.admin)
        .env("RID", &s.registrar)
        .env("PROVIDER", &s.provider)
        .env("UNIT_OID", UNIT_OID)
        .env("QUEUE", &s.queue)
        .env("USER_ID", &s.user_id)
        .env("USER_IDP_TOKEN", &s.user_idp_token)
        .env("CITIZEN_TOKEN", &s.citizen_token)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.ends_with("== every block ran\n"),
        "a runnable block of docs/integration.md failed ({}); the last line named is where.\nstdout:\n{}\nstderr:\n{stderr}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
    );

    // What the blocks did, read back through the API by a system of each organisation.
    let (_, reader) = crate::isolation::api_client(app, &s.admin, &s.registrar, &["clients:read", "consent:write", "calls:read"]);
    let (_, provider) = crate::isolation::api_client(app, &s.admin, &s.provider, &["case_documents:write"]);
    let r = &s.registrar;
    let found: Value = app
        .post_as(&reader, &format!("/v1/registrars/{r}/clients/search"), &json!({"identity_code": GUIDE_CLIENT}))
        .json()
        .unwrap();
    let clients = found["items"].as_array().unwrap();
    assert_eq!(clients.len(), 1, "the retried and repeated pushes made one client: {found}");
    let client = &clients[0];
    // Changed once by the system with If-Match (the stale and the unconditional change were
    // refused), and once by the citizen.
    assert_eq!(client["phone"], "+358 40 765 4321");
    assert_eq!(client["email"], "lyyli@esimerkki.fi");
    let services = client["services"].as_array().unwrap();
    let mut kinds: Vec<&str> = services.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["purchased_service", "service_voucher"]);
    let voucher = services.iter().find(|s| s["kind"] == "service_voucher").unwrap();
    let events: Value = app
        .get_as(&reader, &format!("/v1/registrars/{r}/services/{}/events", voucher["id"].as_str().unwrap()))
        .json()
        .unwrap();
    let events = events["items"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["quantity"], 1.5);
    let id = client["id"].as_str().unwrap();
    let consent: Value = app
        .get_as(&reader, &format!("/v1/registrars/{r}/clients/{id}/disclosure-consent"))
        .json()
        .unwrap();
    assert_eq!((consent["state"].as_str(), consent["informed"].as_bool()), (Some("positive"), Some(true)));
    let contacts: Value = app.get_as(&reader, &format!("/v1/registrars/{r}/contacts")).json().unwrap();
    let contacts = contacts["items"].as_array().unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["recording"]["content_type"], "audio/wav");
    let rights: Value = app.get_as(&provider, &format!("/v1/registrars/{r}/registry-use-rights")).json().unwrap();
    let rights = rights["items"].as_array().unwrap();
    assert_eq!(rights.len(), 1);
    let case = rights[0]["case_oid"].as_str().unwrap();
    let documents: Value = app
        .get_as(&provider, &format!("/v1/registrars/{r}/cases/{case}/documents"))
        .json()
        .unwrap();
    let titles: Vec<&str> = documents["items"].as_array().unwrap().iter().map(|d| d["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Kotikäynti"]);
    // The admin registered the four systems of the guide, and nothing else was made on its way.
    let listed: Value = app.get_as(&s.admin, "/v1/api-clients").json().unwrap();
    let names: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    for name in ["Asiakastietojärjestelmä", "Puhelinjärjestelmä", "Taloushallinto", "Hoiva Oy:n asiakastietojärjestelmä"] {
        assert_eq!(names.iter().filter(|n| **n == name).count(), 1, "{names:?}");
    }
});

#[test]
fn pl_1_runnable_blocks_are_found_and_a_failing_one_is_not_hidden() {
    let text = "intro\n```sh runnable\necho one\n```\n```sh\nnot runnable\n```\n```sh runnable\nfalse\necho two\n```\n";
    let blocks = runnable_blocks(text);
    assert_eq!(
        blocks,
        [(2, "echo one\n".to_owned()), (8, "false\necho two\n".to_owned())]
    );
}
