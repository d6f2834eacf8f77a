//! The `rekisteri` binary as an operator runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

mod common;

use common::rekisteri;

#[test]
fn pl_5_unsupported_database_url_exits_nonzero_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output = rekisteri(dir.path())
        .arg("migrate")
        .env("DATABASE_URL", "mysql://x")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unsupported database URL scheme 'mysql'"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file may be created"
    );
}

#[test]
fn pl_5_migrate_creates_and_migrates_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let output = rekisteri(dir.path()).arg("migrate").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(dir.path().join("data/rekisteri.db").exists());
    let again = rekisteri(dir.path()).arg("migrate").output().unwrap();
    assert!(String::from_utf8_lossy(&again.stderr).contains("is current"));
}

#[test]
fn pl_5_migrate_against_postgres() {
    let Some(db) = rekisteri_db::testing::TestDatabase::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let output = rekisteri(dir.path())
        .arg("migrate")
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("(postgres) is current"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn pl_10_config_check_prints_the_effective_configuration_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let output = rekisteri(dir.path())
        .args(["config", "check"])
        .env("DATABASE_URL", "postgres://app:hunter2@db.internal/reg")
        .env("REKISTERI_KEYS", "active_data_key = \"k1\"\nblind_index_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n[data_keys]\nk1 = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("database_url = \"postgres://app:****@db.internal/reg\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("# keys: REKISTERI_KEYS: data keys [\"k1\"], active \"k1\""),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2") && !stdout.contains("AAAAAAAA"), "{stdout}");
    // PostgreSQL without keys is refused: fresh keys are made only for the embedded default.
    let output = rekisteri(dir.path())
        .args(["config", "check"])
        .env("DATABASE_URL", "postgres://app@db/reg")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("set REKISTERI_KEY_FILE or REKISTERI_KEYS"));
}

#[test]
fn pl_10a_config_check_and_serve_refuse_a_bucket_outside_the_eu_eea() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = |command: &mut Command, region: &str| {
        command
            .env("REKISTERI_S3_BUCKET", "recordings")
            .env("REKISTERI_S3_ENDPOINT", "https://s3.example.com")
            .env("REKISTERI_S3_ACCESS_KEY_ID", "id")
            .env("REKISTERI_S3_SECRET_ACCESS_KEY", "secret-key")
            .env("REKISTERI_S3_REGION", region);
    };
    let mut check = rekisteri(dir.path());
    check.args(["config", "check"]);
    bucket(&mut check, "europe-north1");
    let output = check.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("data_location = \"eu_eea\""), "{stdout}");
    assert!(
        stdout.contains("recordings_placement = \"FI (region europe-north1)\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("database_placement = \"the operator's premises"),
        "{stdout}"
    );
    for command in [vec!["config", "check"], vec!["serve"]] {
        let mut refused = rekisteri(dir.path());
        refused.args(&command).env("REKISTERI_BIND", "127.0.0.1:0");
        bucket(&mut refused, "eu-west-2");
        let output = refused.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command:?}: {stderr}");
        assert!(
            stderr.contains(
                "REKISTERI_S3_REGION: the recordings bucket would be in GB (region eu-west-2), outside the EU/EEA"
            ),
            "{command:?}: {stderr}"
        );
    }
    // Storage on the premises that calls itself us-east-1 is accepted once its country is stated.
    let mut stated = rekisteri(dir.path());
    stated
        .args(["config", "check"])
        .env("REKISTERI_S3_COUNTRY", "FI")
        .env("REKISTERI_DATA_LOCATION", "finland");
    bucket(&mut stated, "us-east-1");
    let output = stated.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("recordings_placement = \"FI (stated by REKISTERI_S3_COUNTRY)\""),
        "{stdout}"
    );
    // A managed database in a region outside is refused before anything connects to it.
    let output = rekisteri(dir.path())
        .args(["config", "check"])
        .env(
            "DATABASE_URL",
            "postgres://app:hunter2@reg.abc.us-east-1.rds.amazonaws.com/reg",
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("DATABASE_URL: the database would be in US"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// A `rekisteri serve` on a free port of loopback, with its log so far and the rest to come.
struct Served {
    child: std::process::Child,
    address: String,
    log: String,
    lines: std::io::Lines<BufReader<std::process::ChildStderr>>,
}

fn serve(dir: &std::path::Path) -> Served {
    let mut child = rekisteri(dir)
        .arg("serve")
        .env("REKISTERI_BIND", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let address = loop {
        let line = lines.next().expect("server exited before serving").unwrap();
        log.push_str(&line);
        log.push('\n');
        if let Some(rest) = line.split("serving on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    Served {
        child,
        address,
        log,
        lines,
    }
}

fn terminate(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn ac_3_admin_bootstrap_and_api_client_create_print_secrets_once_and_none_reaches_the_log() {
    const PASSWORD: &str = "a long and private passphrase";
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = |password: &str| {
        rekisteri(dir.path())
            .args(["admin", "bootstrap", "--email", "root@platform.test"])
            .env("REKISTERI_ADMIN_PASSWORD", password)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let weak = bootstrap("short");
    assert_eq!(weak.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&weak.stderr);
    assert!(stderr.contains("password: must be at least 12 characters"), "{stderr}");
    let missing = rekisteri(dir.path())
        .args(["admin", "bootstrap", "--email", "root@platform.test"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("REKISTERI_ADMIN_PASSWORD"));

    let made = bootstrap(PASSWORD);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let again = bootstrap(PASSWORD);
    assert_eq!(
        again.status.code(),
        Some(2),
        "the e-mail address has an account already"
    );

    let made_text = String::from_utf8_lossy(&made.stdout).into_owned();
    let platform = made_text
        .split("platform organisation ")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let api_client = |scopes: &str| {
        rekisteri(dir.path())
            .args([
                "api-client",
                "create",
                "--name",
                "Apotti",
                "--organisation",
                &platform,
                "--scopes",
                scopes,
            ])
            .output()
            .unwrap()
    };
    assert_eq!(api_client("clients:read,everything").status.code(), Some(2));
    let created = api_client("clients:read,audit:read");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let created_text = String::from_utf8_lossy(&created.stdout).into_owned();
    let field = |name: &str| {
        created_text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = ")))
            .unwrap()
            .to_owned()
    };
    let (client_id, client_secret) = (field("client_id"), field("client_secret"));

    let Served {
        child,
        address,
        mut log,
        lines,
    } = serve(dir.path());
    let client = reqwest::blocking::Client::new();
    let token = client
        .post(format!("{address}/v1/auth/token"))
        .basic_auth(&client_id, Some(&client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    assert_eq!(token.status().as_u16(), 200);
    let access_token = token.json::<serde_json::Value>().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let login = client
        .post(format!("{address}/v1/auth/login"))
        .json(&serde_json::json!({"email": "ROOT@platform.test", "password": PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(login.status().as_u16(), 200);
    let token = login.json::<serde_json::Value>().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = client
        .get(format!("{address}/v1/me"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(
        me.json::<serde_json::Value>().unwrap()["roles"],
        serde_json::json!(["admin"])
    );
    let wrong = client
        .post(format!("{address}/v1/auth/login"))
        .json(&serde_json::json!({"email": "root@platform.test", "password": "not the password at all"}))
        .send()
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    terminate(&child);
    log.extend(lines.map_while(Result::ok).map(|l| l + "\n"));
    for output in [&weak, &made, &again] {
        log.push_str(&String::from_utf8_lossy(&output.stdout));
        log.push_str(&String::from_utf8_lossy(&output.stderr));
    }
    assert!(log.contains("POST /v1/auth/login"), "the access log is captured: {log}");
    for secret in [
        PASSWORD,
        "not the password at all",
        token.as_str(),
        "root@platform.test",
        "ROOT@platform.test",
        client_secret.as_str(),
        access_token.as_str(),
    ] {
        assert!(
            !log.contains(secret),
            "a secret or personal detail reached the log: {log}"
        );
    }
}

#[test]
fn pl_11_sigterm_stops_the_server_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let Served {
        mut child,
        address,
        log,
        lines,
    } = serve(dir.path());
    assert!(log.contains("created a new key file data/keys.toml"), "{log}");
    let ready = reqwest::blocking::get(format!("{address}/health/ready")).unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    terminate(&child);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit {exit:?}; log: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data/keys.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn pl_10_json_logs_are_one_object_per_line_with_the_request_fields_and_no_personal_data() {
    const CODE: &str = "131052-308T";
    const TOKEN: &str = "not-a-real-token-but-a-secret-one";
    let dir = tempfile::tempdir().unwrap();
    let mut child = rekisteri(dir.path())
        .arg("serve")
        .env("REKISTERI_BIND", "127.0.0.1:0")
        .env("REKISTERI_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log: Vec<String> = Vec::new();
    let address = loop {
        let line = lines.next().expect("server exited before serving").unwrap();
        log.push(line.clone());
        let object: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if let Some(rest) = object["message"].as_str().and_then(|m| m.strip_prefix("serving on ")) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let client = reqwest::blocking::Client::new();
    let live = client
        .get(format!("{address}/health/live"))
        .header("X-Request-Id", "json-live-1")
        .send()
        .unwrap();
    assert_eq!(live.status().as_u16(), 200);
    // An identity code in a path and a token in a header: neither may reach the log.
    let registrar = "5f0e8c3a-9d1b-4c7e-8a2f-6b4d3e2c1a09";
    let probe = client
        .get(format!("{address}/v1/registrars/{registrar}/clients/{CODE}"))
        .header("X-Request-Id", "json-probe-2")
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    assert_eq!(probe.status().as_u16(), 401);
    let login = client
        .post(format!("{address}/v1/auth/login"))
        .header("X-Request-Id", "json-login-3")
        .json(&serde_json::json!({"email": "maija.meikalainen@example.fi", "password": "Maija Meikäläinen 1952"}))
        .send()
        .unwrap();
    assert_eq!(login.status().as_u16(), 401);
    terminate(&child);
    log.extend(lines.map_while(Result::ok));
    assert!(child.wait().unwrap().success(), "{log:?}");
    let objects: Vec<serde_json::Value> = log
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}")))
        .collect();
    for (line, object) in log.iter().zip(&objects) {
        for field in ["timestamp", "level", "target", "message"] {
            assert!(object[field].is_string(), "{field} missing: {line}");
        }
        for secret in [CODE, "131052", TOKEN, "maija", "Maija", "Meikäläinen", registrar] {
            assert!(!line.contains(secret), "{secret} in the log: {line}");
        }
    }
    let access = |id: &str| {
        objects
            .iter()
            .find(|o| o["target"] == "rekisteri::access" && o["request_id"] == id)
            .unwrap_or_else(|| panic!("no access line for {id}: {log:?}"))
    };
    let live = access("json-live-1");
    assert_eq!(
        (&live["method"], &live["route"], &live["status"]),
        (
            &serde_json::json!("GET"),
            &serde_json::json!("/health/live"),
            &serde_json::json!(200)
        )
    );
    assert!(live["duration_us"].is_u64(), "{live}");
    let probe = access("json-probe-2");
    assert_eq!(probe["status"], 401);
    assert_eq!(probe["route"], "/v1/registrars/{rid}/clients/{id}", "{probe}");
    assert_eq!(access("json-login-3")["route"], "/v1/auth/login");
}

#[test]
fn au_5_audit_verify_exits_0_when_intact_and_1_naming_the_first_break() {
    use rekisteri_audit::{AccessBasis, ActorKind, AuditLog, NewEntry, Outcome, UsageEntry, WriterOptions};
    let dir = tempfile::tempdir().unwrap();
    assert!(rekisteri(dir.path()).arg("migrate").output().unwrap().status.success());
    let keyring =
        std::sync::Arc::new(rekisteri_crypto::Keyring::create_file(&dir.path().join("data/keys.toml")).unwrap());
    let url = format!("sqlite://{}", dir.path().join("data/rekisteri.db").display());
    let pool = rekisteri_db::Pool::open(&rekisteri_db::DatabaseUrl::parse(&url).unwrap(), &Default::default()).unwrap();
    let clock = std::sync::Arc::new(rekisteri_core::SystemClock);
    let log = AuditLog::start(
        pool.clone(),
        clock,
        Some(keyring),
        WriterOptions {
            checkpoint_interval: 1000,
            ..Default::default()
        },
    )
    .unwrap();
    let at = rekisteri_db::to_primitive(time::OffsetDateTime::now_utc());
    for n in 0..5 {
        log.append(vec![NewEntry::Usage(UsageEntry {
            occurred_at: at,
            registrar_id: "r1".into(),
            log_controller_id: "r1".into(),
            subject_index: None,
            data_kind: "search".into(),
            data_id: None,
            outcome: Outcome::NotFound,
            actor_kind: ActorKind::Staff,
            actor_id: format!("a{n}"),
            actor_name: None,
            on_behalf_of: None,
            service_unit_oid: None,
            purpose: "test".into(),
            access_basis: AccessBasis::Role,
            special_reason: None,
            request_id: format!("r{n}"),
            calling_system: None,
        })])
        .unwrap();
    }
    let output = rekisteri(dir.path()).args(["audit", "verify"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("1 chains, 5 entries, 0 signed checkpoints verified"),
        "{stdout}"
    );
    assert!(stdout.contains("intact"));
    use diesel::connection::SimpleConnection;
    // The log is a view over its monthly tables on SQLite: the entries are in this month's.
    let month = rekisteri_db::log_partitions::partition_for("usage_log", at);
    pool.get()
        .unwrap()
        .batch_execute(&format!(
            "DROP TRIGGER {month}_append_only; UPDATE {month} SET actor_id = 'someone' WHERE seq = 3"
        ))
        .unwrap();
    let output = rekisteri(dir.path()).args(["audit", "verify"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("BROKEN chain usage:r1 entry 3: its content does not match its hash"),
        "{stdout}"
    );
    // The export of the intact prefix still verifies; the export shows the break too.
    let export = rekisteri(dir.path())
        .args(["audit", "export", "--chain", "usage:r1", "--to-seq", "2"])
        .output()
        .unwrap();
    assert!(export.status.success());
    assert_eq!(String::from_utf8_lossy(&export.stdout).lines().count(), 2);
}

/// The users table of `demo seed`'s output: (role, organisation, e-mail, password, token) per row.
fn demo_users(stdout: &str) -> Vec<(String, String, String, String, String)> {
    stdout
        .lines()
        .filter(|line| line.contains(".demo.test "))
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            let n = cells.len();
            assert!(n >= 5, "{line}");
            (
                cells[0].to_owned(),
                cells[1..n - 3].join(" "),
                cells[n - 3].to_owned(),
                cells[n - 2].to_owned(),
                cells[n - 1].to_owned(),
            )
        })
        .collect()
}

#[test]
fn pl_9_demo_seed_creates_a_usable_demo_once() {
    use diesel::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    assert!(rekisteri(dir.path()).arg("migrate").output().unwrap().status.success());
    let seed = || rekisteri(dir.path()).args(["demo", "seed"]).output().unwrap();
    let first = seed();
    let stdout = String::from_utf8_lossy(&first.stdout).into_owned();
    let mut log = String::from_utf8_lossy(&first.stderr).into_owned();
    assert!(first.status.success(), "{log}");
    assert!(
        stdout.contains("strong authentication is turned off for the demo registrars Demo-Tampere and Demo-Nokia"),
        "{stdout}"
    );
    assert!(stdout.contains("session token"), "{stdout}");
    let users = demo_users(&stdout);
    let count = |role: &str| users.iter().filter(|u| u.0 == role).count();
    assert_eq!(users.len(), 10, "{stdout}");
    assert_eq!(
        [
            count("admin"),
            count("main_user"),
            count("client_handler"),
            count("auditor"),
            count("provider_staff"),
            count("call_agent"),
            count("call_supervisor")
        ],
        [1, 2, 2, 2, 1, 1, 1],
        "{stdout}"
    );
    assert!(stdout.contains("3 call-register contacts"), "{stdout}");
    let mut secrets: Vec<&str> = users.iter().flat_map(|u| [u.3.as_str(), u.4.as_str()]).collect();
    secrets.sort_unstable();
    secrets.dedup();
    assert_eq!(secrets.len(), 20, "every password and token differs");
    let user = |role: &str, organisation: &str| {
        users
            .iter()
            .find(|u| u.0 == role && u.1 == organisation)
            .unwrap_or_else(|| panic!("no {role} of {organisation}: {stdout}"))
            .clone()
    };
    let handler = user("client_handler", "Demo-Tampere");
    let staff = user("provider_staff", "Demo Hoiva Oy");
    let other_handler = user("client_handler", "Demo-Nokia");
    let rid = common::demo_registrar(&stdout);
    let (client_id, identity_code) = {
        let line = stdout
            .lines()
            .find(|l| l.starts_with("A client of Demo-Tampere"))
            .unwrap();
        let id = line.split("id ").nth(1).unwrap().split(',').next().unwrap().to_owned();
        (id, line.rsplit(' ').next().unwrap().to_owned())
    };

    let second = seed();
    let again = String::from_utf8_lossy(&second.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&second.stderr));
    assert_eq!(second.status.code(), Some(0), "{log}");
    assert!(again.contains("already seeded"), "{again}");
    assert!(demo_users(&again).is_empty(), "{again}");
    for secret in &secrets {
        assert!(!again.contains(secret), "the second run shows a secret again: {again}");
    }
    {
        use rekisteri_db::schema::{accounts, clients, organisations, service_events};
        let url = format!("sqlite://{}", dir.path().join("data/rekisteri.db").display());
        let pool =
            rekisteri_db::Pool::open(&rekisteri_db::DatabaseUrl::parse(&url).unwrap(), &Default::default()).unwrap();
        let mut conn = pool.get().unwrap();
        let conn = &mut *conn;
        let counts = (
            organisations::table.count().get_result::<i64>(conn).unwrap(),
            accounts::table.count().get_result::<i64>(conn).unwrap(),
            clients::table.count().get_result::<i64>(conn).unwrap(),
            service_events::table.count().get_result::<i64>(conn).unwrap(),
            rekisteri_db::schema::contacts::table
                .count()
                .get_result::<i64>(conn)
                .unwrap(),
            rekisteri_db::schema::recordings::table
                .count()
                .get_result::<i64>(conn)
                .unwrap(),
        );
        assert_eq!(
            counts,
            (4, 10, 10, 30, 3, 2),
            "platform, 2 registrars, provider; users; clients; visits; contacts; recordings"
        );
    }
    // Every change of the seed is in the audit trail, whose chains are intact.
    let verify = rekisteri(dir.path()).args(["audit", "verify"]).output().unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    let Served {
        child,
        address,
        log: served_log,
        lines,
    } = serve(dir.path());
    log.push_str(&served_log);
    let client = reqwest::blocking::Client::new();
    let get = |token: &str, path: &str| {
        let response = client
            .get(format!("{address}{path}"))
            .bearer_auth(token)
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "GET {path}");
        response.json::<serde_json::Value>().unwrap()
    };
    let me = get(&handler.4, "/v1/me");
    assert_eq!(me["roles"], serde_json::json!(["client_handler"]), "{me}");
    assert_eq!(me["auth_method"], "password");
    let list = get(&handler.4, &format!("/v1/registrars/{rid}/clients"));
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 5, "{list}");
    assert!(
        items.iter().all(|c| c["services"][0]["service_type"] == "home_care"),
        "{list}"
    );
    let found = client
        .post(format!("{address}/v1/registrars/{rid}/clients/search"))
        .bearer_auth(&handler.4)
        .json(&serde_json::json!({"identity_code": identity_code}))
        .send()
        .unwrap();
    assert_eq!(found.status().as_u16(), 200);
    let found = found.json::<serde_json::Value>().unwrap();
    assert_eq!(found["items"][0]["id"], client_id.as_str(), "{found}");
    // The provider sees its client and the visits it recorded; the other registrar sees nothing.
    let own = get(&staff.4, &format!("/v1/registrars/{rid}/clients/{client_id}"));
    let sid = own["services"][0]["id"].as_str().unwrap();
    let events = get(&staff.4, &format!("/v1/registrars/{rid}/services/{sid}/events"));
    assert_eq!(events["items"].as_array().unwrap().len(), 3, "{events}");
    let other = client
        .get(format!("{address}/v1/registrars/{rid}/clients/{client_id}"))
        .bearer_auth(&other_handler.4)
        .send()
        .unwrap();
    assert_eq!(other.status().as_u16(), 404);
    terminate(&child);
    log.extend(lines.map_while(Result::ok).map(|l| l + "\n"));
    assert!(log.contains("GET /v1/me"), "the access log is captured: {log}");
    for secret in secrets
        .iter()
        .copied()
        .chain(users.iter().map(|u| u.2.as_str()))
        .chain([identity_code.as_str()])
    {
        assert!(
            !log.contains(secret),
            "a secret or personal detail reached the log: {log}"
        );
    }
}

#[test]
fn cl_14_jobs_run_anonymise_and_retention_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let seeded = rekisteri(dir.path()).args(["demo", "seed"]).output().unwrap();
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));
    for _ in 0..2 {
        let output = rekisteri(dir.path())
            .args(["jobs", "run", "anonymise"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        // The demo clients have services in force: nobody is due.
        assert!(
            stdout.contains("anonymise: 0 clients anonymised, 0 services closed"),
            "{stdout}"
        );
    }
    let output = rekisteri(dir.path())
        .args(["jobs", "run", "retention"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("retention: 0 anonymised clients deleted"), "{stdout}");
}

#[test]
fn ru_5_jobs_run_registry_use_rights_and_outbox_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let seeded = rekisteri(dir.path()).args(["demo", "seed"]).output().unwrap();
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));
    let output = rekisteri(dir.path())
        .args(["jobs", "run", "registry-use-rights"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("registry-use-rights: 0 closed, 0 providers warned, 0 local copies marked for destruction, 0 not yet confirmed destroyed"),
        "{stdout}"
    );
    // CO-6: the forwarder needs its endpoint, and with an empty outbox sends nothing.
    let unset = rekisteri(dir.path()).args(["jobs", "run", "outbox"]).output().unwrap();
    assert_eq!(unset.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unset.stderr).contains("REKISTERI_WILL_SERVICE_URL"),
        "{}",
        String::from_utf8_lossy(&unset.stderr)
    );
    let output = rekisteri(dir.path())
        .args(["jobs", "run", "outbox"])
        .env("REKISTERI_WILL_SERVICE_URL", "http://127.0.0.1:9/recordings")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .contains("outbox: 0 delivered to the will service, 0 failed (retried later), 0 waiting"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn pl_6_the_data_directory_and_what_the_server_creates_in_it_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let output = rekisteri(dir.path()).arg("migrate").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(mode_of(&dir.path().join("data")), 0o700);
    assert_eq!(mode_of(&dir.path().join("data/rekisteri.db")), 0o600);
    // The key file of the embedded default, made on first start.
    let output = rekisteri(dir.path())
        .args(["admin", "bootstrap", "--email", "ada@example.test"])
        .env("REKISTERI_ADMIN_PASSWORD", "a long and private passphrase")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(mode_of(&dir.path().join("data/keys.toml")), 0o600);
    for entry in std::fs::read_dir(dir.path().join("data")).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode_of(&path) & 0o077, 0, "{}", path.display());
    }
}

#[test]
fn pl_6_a_group_readable_key_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, rekisteri_crypto::Keyring::generate_toml().unwrap()).unwrap();
    let configured = keys.display().to_string();
    // The configured file by its path as given, and the embedded default's in the data directory.
    for (mode, path, env, shown) in [
        (0o640, keys.clone(), Some(keys.clone()), configured.as_str()),
        (0o604, keys.clone(), Some(keys.clone()), configured.as_str()),
        (0o644, dir.path().join("data/keys.toml"), None, "data/keys.toml"),
    ] {
        if env.is_none() {
            std::fs::create_dir_all(dir.path().join("data")).unwrap();
            std::fs::copy(&keys, &path).unwrap();
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut command = rekisteri(dir.path());
        command.args(["config", "check"]);
        if let Some(env) = &env {
            command.env("REKISTERI_KEY_FILE", env);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "the key file {shown} is open to group or others (mode {mode:04o}); anyone who can read it \
                 can read every encrypted field: run `chmod 600 {shown}`"
            )),
            "{stderr}"
        );
        // Once private, it is taken.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stdout).contains("# keys: "));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        if env.is_none() {
            std::fs::remove_file(&path).unwrap();
        }
    }
}

/// `demo seed --json` (issue 24, for `make example`): the same demo as one JSON document on
/// stdout, whose tokens work; a second run prints no secret and exits non-zero, since a script
/// asking for the tokens cannot have them.
#[test]
fn pl_9_demo_seed_json_prints_the_demo_as_one_document() {
    let dir = tempfile::tempdir().unwrap();
    let seed = || rekisteri(dir.path()).args(["demo", "seed", "--json"]).output().unwrap();
    let first = seed();
    let mut log = String::from_utf8_lossy(&first.stderr).into_owned();
    assert!(first.status.success(), "{log}");
    let demo: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let users = demo["users"].as_array().unwrap();
    assert_eq!(users.len(), 10, "{demo}");
    let registrars: Vec<&str> = demo["registrars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(registrars, ["Demo-Tampere", "Demo-Nokia"]);
    assert_eq!(demo["provider"]["kind"], "provider");
    let rid = demo["registrars"][0]["id"].as_str().unwrap();
    assert_eq!(demo["first_client"]["registrar"], rid);
    let handler = users
        .iter()
        .find(|u| u["role"] == "client_handler" && u["organisation"] == "Demo-Tampere")
        .unwrap();

    let second = seed();
    log.push_str(&String::from_utf8_lossy(&second.stderr));
    assert_eq!(second.status.code(), Some(1), "{log}");
    let again = String::from_utf8_lossy(&second.stdout);
    assert!(!again.contains(handler["token"].as_str().unwrap()), "{again}");

    let Served {
        mut child,
        address,
        log: served,
        ..
    } = serve(dir.path());
    let client = reqwest::blocking::Client::new();
    let read = client
        .get(format!(
            "{address}/v1/registrars/{rid}/clients/{}",
            demo["first_client"]["id"].as_str().unwrap()
        ))
        .bearer_auth(handler["token"].as_str().unwrap())
        .send()
        .unwrap();
    assert_eq!(read.status().as_u16(), 200, "{served}");
    let read: serde_json::Value = read.json().unwrap();
    assert_eq!(read["identity_code"], demo["first_client"]["identity_code"]);
    terminate(&child);
    child.wait().unwrap();
}
