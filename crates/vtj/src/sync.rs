//! One registrar's VTJ run (VT-1..VT-3, VT-10): pending rows of a crashed run first, the
//! monitored list, the cursor (taken before any initial load), the initial load in batches, the
//! change loop until `ajanTasalla`, and the reveal of ended protection orders.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use rekisteri_audit::{AccessBasis, ActorKind, AuditContext, DataUse, Outcome};
use rekisteri_clients::population::{monitored_clients, monitored_subjects};
use rekisteri_db::schema::{vtj_monitored, vtj_staged, vtj_state};
use rekisteri_db::{DbConnection, write_transaction};
use serde_json::Value;
use time::PrimitiveDateTime;

use crate::staging::{ApplyCounts, apply_pending, outcomes_of, stage_messages};
use crate::{Vtj, VtjClient, VtjError};

/// A run holding the lock longer than this is taken to have died (a process crash leaves the
/// lock set).
const STALE_RUN: time::Duration = time::Duration::hours(6);

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub run_id: String,
    pub cursor_before: Option<i64>,
    pub cursor_after: Option<i64>,
    pub monitored: usize,
    /// `perustiedot` calls and the people they were for.
    pub load_calls: usize,
    pub loaded: usize,
    /// `muutokset` pages.
    pub pages: usize,
    pub staged: usize,
    pub counts: ApplyCounts,
}

/// `GET …/vtj/status` (VT-10).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VtjStatus {
    pub cursor: Option<i64>,
    pub running: bool,
    pub last_run_started_at: Option<String>,
    pub last_run_finished_at: Option<String>,
    pub last_run_outcome: Option<String>,
    pub last_run_error: Option<String>,
    pub monitored: i64,
    pub applied: i64,
    pub skipped: i64,
    pub failed: i64,
    pub pending: i64,
    /// The latest failed rows: staged sequence number and error.
    pub last_errors: Vec<StagedError>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StagedError {
    pub seq: i64,
    pub reason: Option<String>,
}

fn now(vtj: &Vtj) -> PrimitiveDateTime {
    rekisteri_db::to_primitive(vtj.clock.now())
}

/// The usage-log context of VTJ queries (VT-9: every look-up is personal-data processing),
/// naming the DVV permit they are made under: the registrar's own, else the platform's.
fn query_context(vtj: &Vtj, registrar_id: &str, permit: Option<&str>, run_id: &str) -> AuditContext {
    let permit = permit.unwrap_or(&vtj.config.permit_reference);
    AuditContext {
        registrar_id: registrar_id.to_owned(),
        // The registrar's own look-up, made for it by the platform.
        log_controller_id: registrar_id.to_owned(),
        actor_kind: ActorKind::System,
        actor_id: "vtj".into(),
        actor_name: None,
        on_behalf_of: None,
        service_unit_oid: None,
        purpose: if permit.is_empty() {
            "keeping the client register current from VTJ".into()
        } else {
            format!("keeping the client register current from VTJ (permit {permit})")
        },
        access_basis: AccessBasis::Integration,
        special_reason: None,
        request_id: run_id.to_owned(),
        calling_system: Some("VTJmutpa".into()),
    }
}

/// Takes the registrar's run lock (VT-10: one run at a time).
fn lock(conn: &mut DbConnection, vtj: &Vtj, registrar_id: &str, run_id: &str) -> Result<Option<i64>, VtjError> {
    let at = now(vtj);
    write_transaction(conn, |conn| {
        let state: Option<(Option<i64>, Option<PrimitiveDateTime>)> = vtj_state::table
            .filter(vtj_state::registrar_id.eq(registrar_id))
            .select((vtj_state::change_cursor, vtj_state::running_since))
            .first(conn)
            .optional()?;
        match state {
            None => {
                diesel::insert_into(vtj_state::table)
                    .values((
                        vtj_state::registrar_id.eq(registrar_id),
                        vtj_state::running_since.eq(at),
                        vtj_state::run_id.eq(run_id),
                        vtj_state::last_run_started_at.eq(at),
                    ))
                    .execute(conn)?;
                Ok(None)
            }
            Some((_, Some(since))) if since + STALE_RUN > at => Err(VtjError::AlreadyRunning),
            Some((cursor, _)) => {
                diesel::update(vtj_state::table.filter(vtj_state::registrar_id.eq(registrar_id)))
                    .set((
                        vtj_state::running_since.eq(at),
                        vtj_state::run_id.eq(run_id),
                        vtj_state::last_run_started_at.eq(at),
                    ))
                    .execute(conn)?;
                Ok(cursor)
            }
        }
    })
}

fn unlock(conn: &mut DbConnection, vtj: &Vtj, registrar_id: &str, error: Option<String>) -> Result<(), VtjError> {
    let at = now(vtj);
    let outcome = if error.is_some() { "failed" } else { "completed" };
    write_transaction(conn, |conn| {
        diesel::update(vtj_state::table.filter(vtj_state::registrar_id.eq(registrar_id)))
            .set((
                vtj_state::running_since.eq(None::<PrimitiveDateTime>),
                vtj_state::last_run_finished_at.eq(at),
                vtj_state::last_run_outcome.eq(outcome),
                vtj_state::last_error.eq(error),
            ))
            .execute(conn)?;
        Ok::<_, VtjError>(())
    })
}

/// Runs the registrar's sync against the interface `client` speaks to.
pub fn run_sync(
    conn: &mut DbConnection,
    vtj: &Vtj,
    client: &VtjClient,
    registrar_id: &str,
) -> Result<SyncReport, VtjError> {
    let run_id = uuid::Uuid::new_v4().to_string();
    let cursor = lock(conn, vtj, registrar_id, &run_id)?;
    let mut report = SyncReport {
        run_id: run_id.clone(),
        cursor_before: cursor,
        ..SyncReport::default()
    };
    let result = sync_locked(conn, vtj, client, registrar_id, &mut report);
    let error = result.as_ref().err().map(ToString::to_string);
    if let Some(e) = &error {
        log::warn!("vtj: run {run_id} failed: {e}");
    } else {
        log::info!(
            "vtj: run {run_id}: cursor {:?} -> {:?}, {} loaded, {} pages, {} applied, {} skipped, {} failed",
            report.cursor_before,
            report.cursor_after,
            report.loaded,
            report.pages,
            report.counts.applied,
            report.counts.skipped,
            report.counts.failed
        );
    }
    unlock(conn, vtj, registrar_id, error)?;
    result.map(|()| report)
}

fn add(total: &mut ApplyCounts, more: ApplyCounts) {
    total.applied += more.applied;
    total.skipped += more.skipped;
    total.failed += more.failed;
}

fn sync_locked(
    conn: &mut DbConnection,
    vtj: &Vtj,
    client: &VtjClient,
    registrar_id: &str,
    report: &mut SyncReport,
) -> Result<(), VtjError> {
    // What a crashed run staged is applied before anything new is fetched.
    add(&mut report.counts, apply_pending(conn, vtj, registrar_id)?);
    report.monitored = refresh_monitored(conn, registrar_id)?;
    let permit = rekisteri_accounts::directory::registrar(conn, registrar_id)?.and_then(|r| r.dvv_permit_reference);
    let context = query_context(vtj, registrar_id, permit.as_deref(), &report.run_id);
    // VT-2: the cursor is taken before the initial load, so that nothing changing during the
    // load is missed.
    let mut cursor = match report.cursor_before {
        Some(c) => c,
        None => {
            let c = client.kirjausavain(vtj.clock.now().date())?;
            write_transaction(conn, |conn| {
                diesel::update(vtj_state::table.filter(vtj_state::registrar_id.eq(registrar_id)))
                    .set(vtj_state::change_cursor.eq(c))
                    .execute(conn)?;
                Ok::<_, VtjError>(())
            })?;
            c
        }
    };
    initial_load(conn, vtj, client, registrar_id, cursor, &context, report)?;
    let codes: Vec<String> = monitored_clients(conn, &vtj.keyring, registrar_id)?
        .iter()
        .map(|m| m.identity_code.reveal().to_owned())
        .collect();
    if !codes.is_empty() {
        loop {
            let answer = client.muutokset(cursor, &codes)?;
            let next = answer.viimeisin_kirjausavain;
            let staged = answer.muutokset.len();
            let at = now(vtj);
            write_transaction(conn, |conn| {
                let subjects = stage_messages(conn, vtj, registrar_id, "muutokset", Some(next), answer.muutokset, at)?;
                // VT-3: the new cursor commits with the staged rows.
                diesel::update(vtj_state::table.filter(vtj_state::registrar_id.eq(registrar_id)))
                    .set(vtj_state::change_cursor.eq(next))
                    .execute(conn)?;
                let mut entries = vec![context.usage_entry(
                    DataUse {
                        subject_index: None,
                        data_kind: "vtj_muutokset".into(),
                        data_id: Some(format!(
                            "codes={} cursor={cursor}->{next} changes={staged}",
                            codes.len()
                        )),
                        outcome: Outcome::Used,
                    },
                    at,
                )];
                entries.extend(subjects.into_iter().flatten().map(|s| {
                    context.usage_entry(
                        DataUse {
                            subject_index: Some(s),
                            data_kind: "vtj_change".into(),
                            data_id: Some(format!("cursor={next}")),
                            outcome: Outcome::Used,
                        },
                        at,
                    )
                }));
                vtj.audit.append_in(conn, entries, at)?;
                Ok::<_, VtjError>(())
            })?;
            report.pages += 1;
            report.staged += staged;
            cursor = next;
            vtj.fail.staged()?;
            add(&mut report.counts, apply_pending(conn, vtj, registrar_id)?);
            if answer.ajan_tasalla {
                break;
            }
        }
    }
    // VT-6: protection orders that ended in this run are fetched again and revealed.
    initial_load(conn, vtj, client, registrar_id, cursor, &context, report)?;
    report.cursor_after = Some(cursor);
    Ok(())
}

/// Brings `vtj_monitored` in line with the client register (VT-1): new clients with an open
/// service enter needing their base data, clients without one leave.
/// Two refreshes of one registrar (concurrent pushes, a push during a sync) would each add the
/// same new clients, so the list is read and changed in one transaction that holds the
/// registrar's VTJ lock.
fn refresh_monitored(conn: &mut DbConnection, registrar_id: &str) -> Result<usize, VtjError> {
    write_transaction(conn, |conn| {
        crate::staging::lock_registrar(conn, registrar_id)?;
        refresh_monitored_locked(conn, registrar_id)
    })
}

fn refresh_monitored_locked(conn: &mut DbConnection, registrar_id: &str) -> Result<usize, VtjError> {
    let current = monitored_subjects(conn, registrar_id)?;
    let wanted: HashSet<Vec<u8>> = current.iter().map(|(s, _)| s.to_vec()).collect();
    let rows: Vec<(Vec<u8>, String)> = vtj_monitored::table
        .filter(vtj_monitored::registrar_id.eq(registrar_id))
        .select((vtj_monitored::subject_index, vtj_monitored::client_id))
        .load(conn)?;
    let known: HashSet<Vec<u8>> = rows.iter().map(|(s, _)| s.clone()).collect();
    // A row whose client is still wanted under another index was left behind by a key rotation
    // re-indexing the client (a VT-5 correction adds the new code's row itself): it moves to the
    // new index, keeping its place in the change feed, instead of loading the person anew.
    let mut left_behind: HashMap<String, Vec<u8>> = rows
        .into_iter()
        .filter(|(s, _)| !wanted.contains(s))
        .map(|(s, id)| (id, s))
        .collect();
    let mut new: Vec<(Vec<u8>, String)> = Vec::new();
    let mut moved: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (subject, id) in current.into_iter().filter(|(s, _)| !known.contains(s.as_slice())) {
        match left_behind.remove(&id) {
            Some(old) => moved.push((old, subject.to_vec())),
            None => new.push((subject.to_vec(), id)),
        }
    }
    let gone: Vec<Vec<u8>> = left_behind.into_values().collect();
    for (old, subject) in &moved {
        diesel::update(
            vtj_monitored::table
                .filter(vtj_monitored::registrar_id.eq(registrar_id))
                .filter(vtj_monitored::subject_index.eq(old)),
        )
        .set(vtj_monitored::subject_index.eq(subject))
        .execute(conn)?;
    }
    for chunk in gone.chunks(500) {
        diesel::delete(
            vtj_monitored::table
                .filter(vtj_monitored::registrar_id.eq(registrar_id))
                .filter(vtj_monitored::subject_index.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    for (subject, client_id) in &new {
        diesel::insert_into(vtj_monitored::table)
            .values((
                vtj_monitored::registrar_id.eq(registrar_id),
                vtj_monitored::subject_index.eq(subject),
                vtj_monitored::client_id.eq(client_id),
                vtj_monitored::needs_load.eq(true),
            ))
            .execute(conn)?;
    }
    Ok(wanted.len())
}

/// `perustiedot` for every monitored person still needing base data, `batch_size` codes a call
/// (VT-2); each answer is staged with the marks cleared in one transaction, then applied.
fn initial_load(
    conn: &mut DbConnection,
    vtj: &Vtj,
    client: &VtjClient,
    registrar_id: &str,
    cursor: i64,
    context: &AuditContext,
    report: &mut SyncReport,
) -> Result<(), VtjError> {
    // By client, not by index: the client and its monitored row may hold their indexes under
    // different blind-index keys while a key rotation re-indexes them.
    let needing: HashSet<String> = vtj_monitored::table
        .filter(vtj_monitored::registrar_id.eq(registrar_id))
        .filter(vtj_monitored::needs_load.eq(true))
        .select(vtj_monitored::client_id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    if needing.is_empty() {
        return Ok(());
    }
    let people: Vec<_> = monitored_clients(conn, &vtj.keyring, registrar_id)?
        .into_iter()
        .filter(|m| needing.contains(&m.client_id))
        .collect();
    for batch in people.chunks(client.config().batch_size) {
        let codes: Vec<String> = batch.iter().map(|m| m.identity_code.reveal().to_owned()).collect();
        let answer = client.perustiedot(&codes)?;
        let at = now(vtj);
        let persons: Vec<Value> = answer.perustiedot;
        write_transaction(conn, |conn| {
            let found: HashSet<[u8; 32]> =
                stage_messages(conn, vtj, registrar_id, "perustiedot", Some(cursor), persons, at)?
                    .into_iter()
                    .flatten()
                    .collect();
            let ids: Vec<&str> = batch.iter().map(|m| m.client_id.as_str()).collect();
            diesel::update(
                vtj_monitored::table
                    .filter(vtj_monitored::registrar_id.eq(registrar_id))
                    .filter(vtj_monitored::client_id.eq_any(&ids)),
            )
            .set(vtj_monitored::needs_load.eq(false))
            .execute(conn)?;
            let entries = batch
                .iter()
                .map(|m| {
                    // As the staged answer was indexed: under the active key.
                    let subject = rekisteri_audit::subject_index(&vtj.keyring, &m.identity_code);
                    context.usage_entry(
                        DataUse {
                            subject_index: Some(subject),
                            data_kind: "vtj_perustiedot".into(),
                            data_id: Some(format!("cursor={cursor}")),
                            // An unknown code is silently absent from the answer.
                            outcome: if found.contains(&subject) {
                                Outcome::Used
                            } else {
                                Outcome::NotFound
                            },
                        },
                        at,
                    )
                })
                .collect();
            vtj.audit.append_in(conn, entries, at)?;
            Ok::<_, VtjError>(())
        })?;
        report.load_calls += 1;
        report.loaded += batch.len();
        vtj.fail.staged()?;
        add(&mut report.counts, apply_pending(conn, vtj, registrar_id)?);
    }
    Ok(())
}

/// Stages pushed or imported `muutokset` answers (VT-11) and applies them: the same path as a
/// fetched page, without moving the cursor.
pub fn ingest(
    conn: &mut DbConnection,
    vtj: &Vtj,
    registrar_id: &str,
    source: &str,
    messages: Vec<Value>,
) -> Result<ApplyCounts, VtjError> {
    refresh_monitored(conn, registrar_id)?;
    let at = now(vtj);
    let count = messages.len() as i64;
    if count == 0 {
        return apply_pending(conn, vtj, registrar_id).map(|_| ApplyCounts::default());
    }
    // The batch's rows are numbered under the lock that stages them; concurrent pushes' rows
    // may be applied by either request, so the answer counts this batch's rows by number.
    let first = write_transaction(conn, |conn| {
        let staged = stage_messages(conn, vtj, registrar_id, source, None, messages, at)?;
        Ok::<_, VtjError>(crate::staging::last_seq(conn, registrar_id)? - staged.len() as i64 + 1)
    })?;
    apply_pending(conn, vtj, registrar_id)?;
    outcomes_of(conn, registrar_id, first..=first + count - 1)
}

/// VT-10: the registrar's cursor, last run, counts by outcome and last errors.
pub fn status(conn: &mut DbConnection, registrar_id: &str) -> Result<VtjStatus, VtjError> {
    type StateRow = (
        Option<i64>,
        Option<PrimitiveDateTime>,
        Option<PrimitiveDateTime>,
        Option<PrimitiveDateTime>,
        Option<String>,
        Option<String>,
    );
    let state: Option<StateRow> = vtj_state::table
        .filter(vtj_state::registrar_id.eq(registrar_id))
        .select((
            vtj_state::change_cursor,
            vtj_state::running_since,
            vtj_state::last_run_started_at,
            vtj_state::last_run_finished_at,
            vtj_state::last_run_outcome,
            vtj_state::last_error,
        ))
        .first(conn)
        .optional()?;
    let counts: Vec<(Option<String>, i64)> = vtj_staged::table
        .filter(vtj_staged::registrar_id.eq(registrar_id))
        .group_by(vtj_staged::outcome)
        .select((vtj_staged::outcome, diesel::dsl::count_star()))
        .load(conn)?;
    let count = |o: Option<&str>| counts.iter().find(|(k, _)| k.as_deref() == o).map_or(0, |(_, n)| *n);
    let last_errors = vtj_staged::table
        .filter(vtj_staged::registrar_id.eq(registrar_id))
        .filter(vtj_staged::outcome.eq("failed"))
        .order(vtj_staged::seq.desc())
        .limit(10)
        .select((vtj_staged::seq, vtj_staged::reason))
        .load::<(i64, Option<String>)>(conn)?
        .into_iter()
        .map(|(seq, reason)| StagedError { seq, reason })
        .collect();
    let monitored: i64 = vtj_monitored::table
        .filter(vtj_monitored::registrar_id.eq(registrar_id))
        .count()
        .get_result(conn)?;
    let format = |t: Option<PrimitiveDateTime>| t.map(rekisteri_audit::format_time);
    let (cursor, running, started, finished, outcome, error) = state.unwrap_or_default();
    Ok(VtjStatus {
        cursor,
        running: running.is_some(),
        last_run_started_at: format(started),
        last_run_finished_at: format(finished),
        last_run_outcome: outcome,
        last_run_error: error,
        monitored,
        applied: count(Some("applied")),
        skipped: count(Some("skipped")),
        failed: count(Some("failed")),
        pending: count(None),
        last_errors,
    })
}

/// VT-11: a file or a pushed body of `muutokset` answers (JSON Lines; a single answer is one
/// line). Every line is parsed before anything is staged: a malformed line refuses the whole
/// input, naming the line and column, and nothing of it is applied (VT-8).
pub fn ingest_text(
    conn: &mut DbConnection,
    vtj: &Vtj,
    registrar_id: &str,
    source: &str,
    text: &str,
) -> Result<ApplyCounts, VtjError> {
    let mut messages = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let answer = crate::message::parse_muutokset(line).map_err(|e| match e {
            VtjError::Malformed(m) => VtjError::Malformed(format!("input line {}: {m}", i + 1)),
            other => other,
        })?;
        messages.extend(answer.muutokset);
    }
    ingest(conn, vtj, registrar_id, source, messages)
}

/// VT-7: the registrar's clients whose services VTJ closed by the date of death, newest first.
/// Each listed client's use is logged in the same transaction as the read (AU-1): if the log
/// cannot be written, nothing is returned.
pub fn death_work_list(
    conn: &mut DbConnection,
    vtj: &Vtj,
    context: &AuditContext,
    since: Option<PrimitiveDateTime>,
    limit: i64,
) -> Result<Vec<rekisteri_clients::population::DeathClosure>, VtjError> {
    logged_work_list(
        conn,
        vtj,
        context,
        "vtj_death_work_list",
        |conn| {
            Ok(rekisteri_clients::population::death_work_list(
                conn,
                &context.registrar_id,
                since,
                limit,
            )?)
        },
        |row| (row.subject_index, row.client_id.clone()),
    )
}

/// VT-4: the people who moved into the registrar's municipalities from another registrar's,
/// newest first, with their identity codes. Each listed person's use is logged in the same
/// transaction as the read (AU-1): if the log cannot be written, nothing is returned.
pub fn moves_in_work_list(
    conn: &mut DbConnection,
    vtj: &Vtj,
    context: &AuditContext,
    since: Option<PrimitiveDateTime>,
    limit: i64,
) -> Result<Vec<rekisteri_clients::moves::MoveNotice>, VtjError> {
    logged_work_list(
        conn,
        vtj,
        context,
        "vtj_move_notice",
        |conn| {
            Ok(rekisteri_clients::moves::moves_in(
                conn,
                &vtj.keyring,
                &context.registrar_id,
                since,
                limit,
            )?)
        },
        |row| (row.subject_index, row.id.clone()),
    )
}

/// Reads a work list and logs each listed person's use in the same transaction (AU-1): if the
/// log cannot be written, nothing is returned.
fn logged_work_list<T>(
    conn: &mut DbConnection,
    vtj: &Vtj,
    context: &AuditContext,
    data_kind: &str,
    read: impl FnOnce(&mut DbConnection) -> Result<Vec<T>, VtjError>,
    used: impl Fn(&T) -> (Option<[u8; 32]>, String),
) -> Result<Vec<T>, VtjError> {
    let at = now(vtj);
    write_transaction(conn, |conn| {
        let rows = read(conn)?;
        let entries: Vec<_> = rows
            .iter()
            .map(|row| {
                let (subject_index, data_id) = used(row);
                context.usage_entry(
                    DataUse {
                        subject_index,
                        data_kind: data_kind.to_owned(),
                        data_id: Some(data_id),
                        outcome: Outcome::Used,
                    },
                    at,
                )
            })
            .collect();
        if !entries.is_empty() {
            vtj.audit.append_in(conn, entries, at)?;
        }
        Ok(rows)
    })
}

/// One registrar's place in the change feed, for `/metrics`: when a run last completed, and how
/// many fetched changes still wait to be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedLag {
    pub registrar_id: String,
    pub last_completed_at: Option<PrimitiveDateTime>,
    pub staged: i64,
}

/// [`FeedLag`] of every registrar that takes VTJ changes.
pub fn feed_lag(conn: &mut DbConnection) -> Result<Vec<FeedLag>, VtjError> {
    let states: Vec<(String, Option<PrimitiveDateTime>, Option<String>)> = vtj_state::table
        .select((
            vtj_state::registrar_id,
            vtj_state::last_run_finished_at,
            vtj_state::last_run_outcome,
        ))
        .order(vtj_state::registrar_id)
        .load(conn)?;
    let staged: Vec<(String, i64)> = vtj_staged::table
        .group_by(vtj_staged::registrar_id)
        .select((vtj_staged::registrar_id, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(states
        .into_iter()
        .map(|(registrar_id, finished, outcome)| FeedLag {
            staged: staged.iter().find(|(id, _)| *id == registrar_id).map_or(0, |(_, n)| *n),
            last_completed_at: finished.filter(|_| outcome.as_deref() == Some("completed")),
            registrar_id,
        })
        .collect())
}
