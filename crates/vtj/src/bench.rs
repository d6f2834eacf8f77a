//! The throughput benchmark of VT-13 / PL-14: stage and apply `n` VTJ changes on a fresh
//! database, and in the same run measure the raw UPDATE-by-key rate of the same table on the
//! same database, so that the ratio of the two is the figure of merit.
//!
//! `rekisteri bench vtj --changes N` prints the report; `make bench` calls
//! [`stage_and_apply`].

use std::sync::Arc;
use std::time::Instant;

use diesel::prelude::*;
use rekisteri_core::{PersonalIdentityCode, SystemClock, TemporaryCodesAllowed};
use rekisteri_crypto::{FieldCipher, FieldContext, Keyring};
use rekisteri_db::schema::{clients, organisations, vtj_monitored};
use rekisteri_db::{DatabaseUrl, DbConnection, Pool, PoolOptions, write_transaction, write_transaction_as};
use serde_json::json;

use crate::staging::{ACTOR, apply_pending, stage_messages};
use crate::{FailPoints, Vtj, VtjConfig, VtjError};

/// What one benchmark run measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BenchReport {
    pub backend: String,
    pub changes: u64,
    pub people: u64,
    pub stage_seconds: f64,
    pub apply_seconds: f64,
    /// Staged changes applied per second (application only).
    pub changes_per_second: f64,
    /// Staging and application together.
    pub end_to_end_per_second: f64,
    pub raw_updates: u64,
    /// `UPDATE clients … WHERE registrar_id = ? AND id = ?`, 1000 per transaction, same
    /// table (with its change-history trigger), same database, same run.
    pub raw_updates_per_second: f64,
    /// `changes_per_second / raw_updates_per_second` (target ≥ 0.4).
    pub ratio: f64,
}

/// The `n`th distinct valid identity code (born in the 1900s).
fn nth_code(n: u64) -> Result<PersonalIdentityCode, VtjError> {
    let individual = 2 + n % 898;
    let days = n / 898;
    let date = time::Date::from_calendar_date(1920, time::Month::January, 1)
        .map_err(|_| VtjError::Config("date".into()))?
        + time::Duration::days(days as i64);
    let digits = format!(
        "{:02}{:02}{:02}{individual:03}",
        date.day(),
        u8::from(date.month()),
        date.year() % 100
    );
    let number: u64 = digits.parse().map_err(|_| VtjError::Config("code".into()))?;
    let text = format!(
        "{}-{individual:03}{}",
        &digits[..6],
        rekisteri_core::identity_code::check_character(number as u32)
    );
    PersonalIdentityCode::parse(&text, TemporaryCodesAllowed::No).map_err(|_| VtjError::Config("code".into()))
}

/// Runs the benchmark on the database `database_url` (which should be empty or a scratch
/// database: it is migrated and filled). `n_changes` name changes are spread over at most
/// 100 000 people.
pub fn stage_and_apply(database_url: &str, n_changes: u64) -> Result<BenchReport, VtjError> {
    let url = DatabaseUrl::parse(database_url).map_err(|e| VtjError::Config(e.to_string()))?;
    let pool = Pool::open(&url, &PoolOptions::default())?;
    let mut conn = pool.get()?;
    rekisteri_db::migrations::run_pending(&mut conn)?;
    let keyring = Arc::new(
        Keyring::generate_toml()
            .and_then(|t| Keyring::from_toml(&t))
            .map_err(|e| VtjError::Config(e.to_string()))?,
    );
    let clock: rekisteri_core::SharedClock = Arc::new(SystemClock);
    let audit = rekisteri_audit::AuditLog::start(
        pool.clone(),
        clock.clone(),
        Some(keyring.clone()),
        rekisteri_audit::WriterOptions::default(),
    )?;
    let vtj = Vtj {
        keyring: keyring.clone(),
        audit,
        clock: clock.clone(),
        config: VtjConfig {
            apply_batch: 1000,
            ..VtjConfig::default()
        },
        fail: FailPoints::off(),
    };
    let registrar = uuid::Uuid::new_v4().to_string();
    let at = rekisteri_db::to_primitive(clock.now());
    let people = n_changes.clamp(1, 100_000);
    let mut codes = Vec::with_capacity(people as usize);
    let mut ids = Vec::with_capacity(people as usize);
    write_transaction(&mut conn, |conn| {
        diesel::insert_into(organisations::table)
            .values((
                organisations::id.eq(&registrar),
                organisations::name.eq("Benchmark municipality"),
                organisations::kind.eq("municipality"),
                organisations::strong_authentication_required.eq(false),
                organisations::version.eq(1i64),
                organisations::created_at.eq(at),
                organisations::updated_at.eq(at),
                organisations::anonymised_retention_years.eq(5),
            ))
            .execute(conn)?;
        Ok::<_, VtjError>(())
    })?;
    // The people: clients with a sealed identity code, monitored.
    let cipher = FieldCipher::new(&keyring);
    for chunk_start in (0..people).step_by(1000) {
        let end = (chunk_start + 1000).min(people);
        write_transaction(&mut conn, |conn| {
            for n in chunk_start..end {
                let code = nth_code(n)?;
                let id = rekisteri_core::ids::new_row_id();
                let subject = rekisteri_audit::subject_index(&keyring, &code);
                let sealed =
                    |column: &str, value: &str| cipher.encrypt_str(&FieldContext::new("clients", column, &id), value);
                diesel::insert_into(clients::table)
                    .values((
                        clients::registrar_id.eq(&registrar),
                        clients::id.eq(&id),
                        clients::subject_index.eq(subject.to_vec()),
                        clients::identity_code.eq(sealed("identity_code", code.reveal())?),
                        clients::first_names.eq(sealed("first_names", "Alku")?),
                        clients::surname.eq(sealed("surname", "Nimi")?),
                        clients::gender.eq("unknown"),
                        clients::home_municipality.eq("837"),
                        clients::language.eq("fi"),
                        clients::protection_order.eq(false),
                        clients::restricted.eq(false),
                        clients::version.eq(1i64),
                        clients::created_at.eq(at),
                        clients::updated_at.eq(at),
                    ))
                    .execute(conn)?;
                diesel::insert_into(vtj_monitored::table)
                    .values((
                        vtj_monitored::registrar_id.eq(&registrar),
                        vtj_monitored::subject_index.eq(subject.to_vec()),
                        vtj_monitored::client_id.eq(&id),
                        vtj_monitored::needs_load.eq(false),
                    ))
                    .execute(conn)?;
                codes.push(code.reveal().to_owned());
                ids.push(id);
            }
            Ok::<_, VtjError>(())
        })?;
    }
    // Stage: the messages as a change page would bring them, 10 000 per transaction.
    let started = Instant::now();
    let mut staged = 0u64;
    while staged < n_changes {
        let count = (n_changes - staged).min(10_000);
        let messages = (staged..staged + count)
            .map(|i| {
                json!({"henkilotunnus": codes[(i % people) as usize], "muutospv": "2026-11-30T08:00:00.000Z",
                    "tietoryhmat": [{"tietoryhma": "HENKILON_NIMI", "muutosattribuutti": "LISATTY",
                        "etunimi": format!("Etu{i}"), "sukunimi": "Nimi"}]})
            })
            .collect();
        write_transaction(&mut conn, |conn| {
            stage_messages(conn, &vtj, &registrar, "import", Some(staged as i64), messages, at)?;
            Ok::<_, VtjError>(())
        })?;
        staged += count;
    }
    let stage_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let counts = apply_pending(&mut conn, &vtj, &registrar)?;
    let apply_seconds = started.elapsed().as_secs_f64();
    if counts.applied != n_changes {
        return Err(VtjError::Config(format!(
            "applied {} of {n_changes} changes ({} skipped, {} failed)",
            counts.applied, counts.skipped, counts.failed
        )));
    }
    // The raw UPDATE-by-key rate of the same table on the same database.
    let raw_updates = n_changes.min(200_000);
    let started = Instant::now();
    let mut done = 0u64;
    while done < raw_updates {
        let end = (done + 1000).min(raw_updates);
        write_transaction_as(&mut conn, ACTOR, |conn| {
            for i in done..end {
                raw_update(conn, &registrar, &ids[(i % people) as usize], i)?;
            }
            Ok::<_, VtjError>(())
        })?;
        done = end;
    }
    let raw_seconds = started.elapsed().as_secs_f64();
    let changes_per_second = n_changes as f64 / apply_seconds.max(1e-9);
    let raw_updates_per_second = raw_updates as f64 / raw_seconds.max(1e-9);
    Ok(BenchReport {
        backend: pool.backend().to_string(),
        changes: n_changes,
        people,
        stage_seconds,
        apply_seconds,
        changes_per_second,
        end_to_end_per_second: n_changes as f64 / (stage_seconds + apply_seconds).max(1e-9),
        raw_updates,
        raw_updates_per_second,
        ratio: changes_per_second / raw_updates_per_second,
    })
}

fn raw_update(conn: &mut DbConnection, registrar: &str, id: &str, i: u64) -> Result<(), VtjError> {
    // Kept prepared, as a plain loop would keep it (see rekisteri_db::kept_update).
    rekisteri_db::kept_update(
        clients::table,
        (
            clients::language.eq(if i.is_multiple_of(2) { "sv" } else { "fi" }),
            clients::version.eq(clients::version + 1),
        ),
        clients::registrar_id.eq(registrar).and(clients::id.eq(id)),
    )
    .execute(conn)?;
    Ok(())
}
