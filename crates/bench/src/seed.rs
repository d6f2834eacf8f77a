//! Setting a server up as an operator would, shared by `make bench` and the crash suite
//! (`tests/crash`): what `rekisteri demo seed` printed, valid identity codes, a client with its
//! first service, and a PostgreSQL database of its own per run.

use std::path::{Path, PathBuf};

use diesel::prelude::*;
use rekisteri_audit::{AccessBasis, ActorKind, NewEntry, Outcome, UsageEntry, WriterOptions};
use rekisteri_db::schema::usage_log;
use rekisteri_db::{DbError, Pool, to_primitive, write_transaction};
use serde_json::json;

/// What `rekisteri demo seed` printed that the benchmark and the crash suite need.
pub struct Demo {
    pub registrar: String,
    pub registrar_oid: String,
    pub provider: String,
    pub handler_token: String,
    pub staff_token: String,
    /// E-mail and password of the platform admin and of the registrar's main user.
    pub admin: (String, String),
    pub main_user: (String, String),
    /// E-mail and password of the registrar's client handler and of the provider's staff.
    pub handler: (String, String),
    pub staff: (String, String),
}

impl Demo {
    pub fn parse(output: &str) -> Result<Self, String> {
        let last = |line: &str| line.split_whitespace().last().unwrap_or_default().to_owned();
        let id_of = |name: &str| {
            output
                .lines()
                .find(|l| l.starts_with(name) && l.contains("1.2.246."))
                .and_then(|l| {
                    l.split_whitespace()
                        .find(|w| w.len() == 36 && w.matches('-').count() == 4)
                })
                .map(str::to_owned)
                .ok_or_else(|| format!("the demo seed printed no id for {name}"))
        };
        let token_of = |role: &str, organisation: &str| {
            output
                .lines()
                .find(|l| l.starts_with(role) && l.contains(organisation))
                .map(last)
                .ok_or_else(|| format!("the demo seed printed no {role} of {organisation}"))
        };
        // A user's row: role, organisation (of several words), e-mail, password, token.
        let login_of = |role: &str, organisation: &str| {
            output
                .lines()
                .find(|l| l.starts_with(role) && l.contains(organisation))
                .and_then(|l| {
                    let mut words = l.split_whitespace().skip_while(|w| !w.contains('@'));
                    Some((words.next()?.to_owned(), words.next()?.to_owned()))
                })
                .ok_or_else(|| format!("the demo seed printed no login of the {role} of {organisation}"))
        };
        let registrar_oid = output
            .lines()
            .find(|l| l.starts_with("Demo-Tampere") && l.contains("1.2.246."))
            .and_then(|l| l.split_whitespace().find(|w| w.starts_with("1.2.246.")))
            .map(str::to_owned)
            .ok_or("the demo seed printed no OID for Demo-Tampere")?;
        Ok(Self {
            registrar: id_of("Demo-Tampere")?,
            registrar_oid,
            admin: login_of("admin", "@")?,
            main_user: login_of("main_user", "Demo-Tampere")?,
            handler: login_of("client_handler", "Demo-Tampere")?,
            staff: login_of("provider_staff", "Demo Hoiva Oy")?,
            provider: id_of("Demo Hoiva Oy")?,
            handler_token: token_of("client_handler", "Demo-Tampere")?,
            staff_token: token_of("provider_staff", "Demo Hoiva Oy")?,
        })
    }
}

/// A valid identity code for bench client `n` (born in 1930, individual numbers 002-801).
pub fn identity_code(n: usize) -> Result<String, String> {
    let start = time::Date::from_calendar_date(1930, time::Month::January, 1).map_err(|e| e.to_string())?;
    let born = start + time::Duration::days((n / 800) as i64);
    let individual = 2 + n % 800;
    let digits = format!(
        "{:02}{:02}{:02}{individual:03}",
        born.day(),
        u8::from(born.month()),
        born.year() % 100
    );
    let number: u32 = digits.parse().map_err(|_| "identity code digits".to_owned())?;
    let check = rekisteri_core::identity_code::check_character(number);
    Ok(format!("{}-{}{check}", &digits[..6], &digits[6..]))
}

/// A database of its own for one run on the PostgreSQL server the URL names, dropped after.
pub struct PostgresDatabase {
    pub admin_url: String,
    pub name: String,
    pub url: String,
}

impl PostgresDatabase {
    pub fn create(url: &str, prefix: &str) -> Result<Self, String> {
        let (server, _) = url
            .rsplit_once('/')
            .ok_or_else(|| "the PostgreSQL URL names no database".to_owned())?;
        let admin_url = format!("{server}/postgres");
        let name = format!("{prefix}_{}", std::process::id());
        let mut conn = diesel::PgConnection::establish(&admin_url)
            .map_err(|e| format!("connecting to PostgreSQL's postgres database: {e}"))?;
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&mut conn)
            .map_err(|e| e.to_string())?;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .map_err(|e| format!("creating the database: {e}"))?;
        Ok(Self {
            url: format!("{server}/{name}"),
            admin_url,
            name,
        })
    }

    pub fn drop_it(&self) {
        if let Ok(mut conn) = diesel::PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut conn);
        }
    }
}

pub fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn fresh_dir(dir: &Path) -> Result<PathBuf, String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("removing {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir.to_owned())
}

pub fn client_body(n: usize, provider: &str, valid_from: time::Date) -> Result<String, String> {
    let body = json!({
        "identity_code": identity_code(n)?,
        "first_names": "Maija Liisa", "surname": format!("Penkki{n}"), "gender": "female",
        "home_municipality": "837", "language": "fi", "email": format!("penkki{n}@esimerkki.fi"),
        "phone": "+358 40 123 4567", "next_of_kin": {"name": "Matti Meikäläinen", "phone": "040 765 4321"},
        "address": {"street_address": "Hämeenkatu 1 A 5", "street_name": "Hämeenkatu", "postal_code": "33100",
            "post_office": "Tampere", "country_code": "FI"},
        "services": [{"kind": "service_voucher", "service_type": "home_care",
            "service_name": "Kotihoidon palveluseteli", "quantity": 40, "unit": "hour",
            "unit_value_cents": 3250, "valid_from": valid_from.to_string(),
            "valid_to": (valid_from + time::Duration::days(364)).to_string(),
            "provider_id": provider, "decision_ref": format!("KH-2026-{n}")}],
    });
    Ok(body.to_string())
}

/// Appends usage entries in the registrar's chain until the log holds `target` entries, as the
/// server's writer would (hash-chained, signed checkpoints), 5 000 per commit.
pub fn fill_log(
    pool: &Pool,
    keyring: &rekisteri_crypto::Keyring,
    registrar: &str,
    target: u64,
    occurred_at: Option<time::PrimitiveDateTime>,
) -> Result<u64, String> {
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let existing: i64 = usage_log::table
        .filter(usage_log::registrar_id.eq(registrar))
        .count()
        .get_result(&mut *conn)
        .map_err(|e| format!("counting the log: {e}"))?;
    let missing = target.saturating_sub(u64::try_from(existing).unwrap_or(0));
    let options = WriterOptions::default();
    let mut added = 0u64;
    while added < missing {
        let batch = (missing - added).min(5000);
        let now = to_primitive(time::OffsetDateTime::now_utc());
        let entries: Vec<NewEntry> = (0..batch)
            .map(|i| {
                let n = added + i;
                let mut subject = [0u8; 32];
                subject[..8].copy_from_slice(&n.to_le_bytes());
                NewEntry::Usage(UsageEntry {
                    occurred_at: occurred_at.unwrap_or(now),
                    registrar_id: registrar.to_owned(),
                    log_controller_id: registrar.to_owned(),
                    subject_index: Some(subject),
                    data_kind: "client".to_owned(),
                    data_id: Some(uuid::Uuid::new_v4().to_string()),
                    outcome: Outcome::Used,
                    actor_kind: ActorKind::Staff,
                    actor_id: "7d0c8a4e-2f5b-4a7e-9b1d-0c3e5f7a9b11".to_owned(),
                    actor_name: Some("Maija Meikäläinen".to_owned()),
                    on_behalf_of: None,
                    service_unit_oid: Some("1.2.246.10.1234567.10.1".to_owned()),
                    purpose: "client register: read client".to_owned(),
                    access_basis: AccessBasis::Role,
                    special_reason: None,
                    request_id: uuid::Uuid::new_v4().to_string(),
                    calling_system: Some("apotti".to_owned()),
                })
            })
            .collect();
        write_transaction(&mut conn, |c| -> Result<(), DbError> {
            rekisteri_audit::append_in_transaction(c, entries, now, keyring.audit_signer(), &options)
                .map_err(|e| DbError::Migration(e.to_string()))
        })
        .map_err(|e| format!("filling the log: {e}"))?;
        added += batch;
    }
    Ok(added)
}
