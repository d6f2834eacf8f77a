//! The `rekisteri` binary as an operator runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BINARY: &str = env!("CARGO_BIN_EXE_rekisteri");

fn rekisteri(dir: &std::path::Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info");
    command
}

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
    for n in 0..5 {
        log.append(vec![NewEntry::Usage(UsageEntry {
            occurred_at: rekisteri_db::to_primitive(time::OffsetDateTime::now_utc()),
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
    pool.get()
        .unwrap()
        .batch_execute("DROP TRIGGER usage_log_append_only; UPDATE usage_log SET actor_id = 'someone' WHERE seq = 3")
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
