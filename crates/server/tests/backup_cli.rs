//! The backup and restore drill of docs/operations.md, run for real with the binary: a demo
//! register with call recordings is backed up while its server serves, restored into a fresh
//! place, and the restored copy verifies its audit chains and serves the same client and the
//! same audio. SQLite with `rekisteri backup`; PostgreSQL with `pg_dump -Fc` and `pg_restore`
//! (and `rekisteri backup --no-database` for the keys and the audio).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Stdio};

use rekisteri_db::db_test;

mod common;

use common::{Served, succeeded};

/// The binary configured for one installation: its database, key file and audio directory.
fn rekisteri(dir: &Path, database_url: &str) -> Command {
    let mut command = common::rekisteri_on(dir, database_url);
    command
        .env("REKISTERI_DATA_DIR", dir)
        .env("REKISTERI_RECORDINGS_DIR", dir.join("recordings"));
    command
}

fn serve(dir: &Path, database_url: &str) -> Served {
    common::serve(rekisteri(dir, database_url))
}

/// What the drill compares between the original and the restored server: the first demo
/// client as its handler reads it, and a recording's audio as its supervisor hears it.
fn read_back(served: &Served, demo: &serde_json::Value) -> (serde_json::Value, Vec<u8>) {
    let http = reqwest::blocking::Client::new();
    let url = |path: &str| format!("{}{path}", served.address);
    let token = |role: &str| common::demo_token(demo, role);
    let rid = demo["first_client"]["registrar"].as_str().unwrap();
    let client_id = demo["first_client"]["id"].as_str().unwrap();
    let client = http
        .get(url(&format!("/v1/registrars/{rid}/clients/{client_id}")))
        .bearer_auth(token("client_handler"))
        .send()
        .unwrap();
    assert_eq!(client.status().as_u16(), 200);
    let client: serde_json::Value = client.json().unwrap();
    assert_eq!(client["identity_code"], demo["first_client"]["identity_code"]);

    let supervisor = token("call_supervisor");
    let contacts: serde_json::Value = http
        .get(url(&format!("/v1/registrars/{rid}/contacts")))
        .bearer_auth(&supervisor)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut recorded: Vec<&str> = contacts["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["recording"].is_null())
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    recorded.sort_unstable();
    assert_eq!(recorded.len(), 2, "{contacts}");
    let grant = http
        .post(url(&format!("/v1/registrars/{rid}/contacts/{}/listening-requests", recorded[0])))
        .bearer_auth(&supervisor)
        .json(&serde_json::json!({"reason_category": "verify_agreement", "reason": "Tarkistetaan sovittu asia varmuuskopion palautuksen jälkeen."}))
        .send()
        .unwrap();
    assert_eq!(grant.status().as_u16(), 201);
    let grant: serde_json::Value = grant.json().unwrap();
    let audio = http
        .get(url(grant["audio_url"].as_str().unwrap()))
        .bearer_auth(&supervisor)
        .send()
        .unwrap();
    assert_eq!(audio.status().as_u16(), 200);
    (client, audio.bytes().unwrap().to_vec())
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The PostgreSQL side of the drill: a `pg_dump -Fc` of the test's schema, restored by
/// `pg_restore` into a new database; returns the restored copy's URL and the database to drop.
fn dump_and_restore_postgres(url: &str, dump: &Path) -> Option<(String, String, String)> {
    let (Ok(_), Ok(_)) = (which("pg_dump"), which("pg_restore")) else {
        eprintln!("NOTE: pg_dump/pg_restore are not installed: the PostgreSQL restore drill is skipped");
        return None;
    };
    let (admin_url, schema) = url.split_once("options=-c%20search_path%3D").unwrap();
    let admin_url = admin_url.trim_end_matches(['?', '&']);
    let status = Command::new("pg_dump")
        .args(["-Fc", "-n", schema, "-f"])
        .arg(dump)
        .arg(format!("--dbname={admin_url}"))
        .status()
        .unwrap();
    assert!(status.success(), "pg_dump");
    let database = format!("rekisteri_restore_{schema}");
    let (server, _) = admin_url.rsplit_once('/').unwrap();
    let mut maintenance =
        <diesel::PgConnection as diesel::Connection>::establish(&format!("{server}/postgres")).unwrap();
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {database}")),
        &mut maintenance,
    )
    .unwrap();
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!("CREATE DATABASE {database}")),
        &mut maintenance,
    )
    .unwrap();
    let restored = format!("{server}/{database}");
    let status = Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error"])
        .arg(format!("--dbname={restored}"))
        .arg(dump)
        .status()
        .unwrap();
    assert!(status.success(), "pg_restore");
    Some((
        format!("{restored}?options=-c%20search_path%3D{schema}"),
        format!("{server}/postgres"),
        database,
    ))
}

fn which(program: &str) -> Result<(), ()> {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .map_err(drop)?;
    if found.success() { Ok(()) } else { Err(()) }
}

db_test!(fn pl_17_a_backup_restores_into_a_working_server_with_every_record_and_a_verified_chain(db) {
    let original = tempfile::tempdir().unwrap();
    rekisteri_crypto::Keyring::create_file(&original.path().join("keys.toml")).unwrap();
    let demo = succeeded(
        rekisteri(original.path(), &db.url).args(["demo", "seed", "--json"]).output().unwrap(),
        "demo seed",
    );
    let demo: serde_json::Value = serde_json::from_str(&demo).unwrap();
    let served = serve(original.path(), &db.url);
    let (client, audio) = read_back(&served, &demo);
    assert!(audio.starts_with(b"RIFF"), "the demo's audio is a WAV file");

    // The backup is taken while the original serves.
    let backups = tempfile::tempdir().unwrap();
    let backup = backups.path().join("2026-12-05");
    let is_postgres = db.backend() == rekisteri_db::Backend::Postgres;
    let manifest = if is_postgres {
        let refused = rekisteri(original.path(), &db.url)
            .args(["backup", "--to"])
            .arg(&backup)
            .output()
            .unwrap();
        assert_eq!(refused.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&refused.stderr).contains("pg_dump -Fc"));
        assert!(!backup.exists(), "nothing written when refused");
        // The database first, then the keys and the audio, as docs/operations.md says.
        let Some(restored) = dump_and_restore_postgres(&db.url, &backups.path().join("rekisteri.dump")) else {
            return;
        };
        let manifest = succeeded(
            rekisteri(original.path(), &db.url)
                .args(["backup", "--no-database", "--to"])
                .arg(&backup)
                .output()
                .unwrap(),
            "backup --no-database",
        );
        Some((manifest, restored))
    } else {
        let manifest = succeeded(
            rekisteri(original.path(), &db.url).args(["backup", "--to"]).arg(&backup).output().unwrap(),
            "backup",
        );
        Some((manifest, (String::new(), String::new(), String::new())))
    };
    let Some((manifest, (pg_url, pg_maintenance, pg_database))) = manifest else {
        return;
    };
    drop(served);
    let manifest: toml::Table = toml::from_str(&manifest).unwrap();
    assert_eq!(manifest["audio_objects"].as_integer(), Some(2), "{manifest}");
    assert_eq!(manifest["audio"].as_str(), Some("recordings"));
    assert_eq!(manifest["backend"].as_str(), Some(if is_postgres { "postgres" } else { "sqlite" }));
    assert!(manifest["schema_version"].as_str().unwrap().starts_with("2026"), "{manifest}");
    assert_eq!(mode_of(&backup.join("keys.toml")), 0o600);
    assert_eq!(mode_of(&backup), 0o700);
    assert_eq!(
        std::fs::read(backup.join("keys.toml")).unwrap(),
        std::fs::read(original.path().join("keys.toml")).unwrap()
    );
    // A second backup into the same directory is refused rather than mixed with the first.
    let again = rekisteri(original.path(), &db.url)
        .args(["backup", "--no-database", "--to"])
        .arg(&backup)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));

    // Restore into a fresh place: the files back, migrate, verify, serve.
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(backup.join("keys.toml"), restored.path().join("keys.toml")).unwrap();
    copy_tree(&backup.join("recordings"), &restored.path().join("recordings"));
    let restored_url = if is_postgres {
        pg_url
    } else {
        assert_eq!(manifest["database"].as_str(), Some("rekisteri.db"));
        std::fs::copy(backup.join("rekisteri.db"), restored.path().join("rekisteri.db")).unwrap();
        format!("sqlite://{}", restored.path().join("rekisteri.db").display())
    };
    succeeded(rekisteri(restored.path(), &restored_url).arg("migrate").output().unwrap(), "migrate");
    let verify = succeeded(
        rekisteri(restored.path(), &restored_url).args(["audit", "verify"]).output().unwrap(),
        "audit verify",
    );
    assert!(verify.contains("intact"), "{verify}");
    let served = serve(restored.path(), &restored_url);
    let (restored_client, restored_audio) = read_back(&served, &demo);
    assert_eq!(restored_client, client);
    assert_eq!(restored_audio, audio, "the same audio, decrypted with the restored keys");
    drop(served);

    if is_postgres {
        let mut maintenance = <diesel::PgConnection as diesel::Connection>::establish(&pg_maintenance).unwrap();
        diesel::RunQueryDsl::execute(
            diesel::sql_query(format!("DROP DATABASE IF EXISTS {pg_database} WITH (FORCE)")),
            &mut maintenance,
        )
        .unwrap();
    }
});
