//! Staging raw messages and applying them in order (VT-3, VT-4, VT-6, VT-8).
//!
//! A message is staged as it came, sealed to its row (it holds an identity code and personal
//! data), except what a protection order or CL-8 forbids storing: contact addresses always, and
//! the censored groups of a protected person. Application takes the pending rows in `seq`
//! order, a bounded batch per transaction; each row ends `applied`, `skipped` (reason) or
//! `failed` (error) in the same transaction as its change, so a crash and a re-run apply each
//! row exactly once.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use rekisteri_audit::{ActorKind, DisclosureEntry, NewEntry};
use rekisteri_clients::ClientsError;
use rekisteri_clients::moves::MoveEffect;
use rekisteri_clients::population::{PopulationBatch, PopulationOutcome, PopulationUpdate, protected_subjects};
use rekisteri_core::Refusal;
use rekisteri_crypto::{FieldCipher, FieldContext};
use rekisteri_db::schema::{vtj_monitored, vtj_staged};
use rekisteri_db::{DbConnection, write_transaction_as};
use serde_json::Value;
use time::{Date, PrimitiveDateTime};

use crate::message::{identity_code_of, interpret, protection_in, strip};
use crate::{Vtj, VtjError};

/// The change history's actor for everything VTJ applies (VT-4).
pub const ACTOR: &str = "vtj";

/// Rows applied, skipped and failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyCounts {
    pub applied: u64,
    pub skipped: u64,
    pub failed: u64,
}

impl ApplyCounts {
    pub fn total(&self) -> u64 {
        self.applied + self.skipped + self.failed
    }

    fn add(&mut self, other: ApplyCounts) {
        self.applied += other.applied;
        self.skipped += other.skipped;
        self.failed += other.failed;
    }
}

/// Serialises a registrar's staging and application across servers and requests (pushed batches
/// arrive concurrently): the numbering of staged rows, and which request applies a pending row.
/// SQLite's write transactions already run one at a time; on PostgreSQL a transaction-scoped
/// advisory lock, released at commit or rollback.
pub(crate) fn lock_registrar(conn: &mut DbConnection, registrar_id: &str) -> Result<(), VtjError> {
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind::<diesel::sql_types::Text, _>(format!("rekisteri.vtj/{registrar_id}"))
            .execute(pg)?;
    }
    Ok(())
}

fn row_id(registrar_id: &str, seq: i64) -> String {
    format!("{registrar_id}/{seq}")
}

fn seal(vtj: &Vtj, registrar_id: &str, seq: i64, message: &Value) -> Result<Vec<u8>, VtjError> {
    let id = row_id(registrar_id, seq);
    let json = serde_json::to_string(message).map_err(|_| VtjError::Crypto)?;
    Ok(FieldCipher::new(&vtj.keyring).encrypt_str(&FieldContext::new("vtj_staged", "message", &id), &json)?)
}

#[allow(
    clippy::disallowed_methods,
    reason = "opens a staged VTJ message to apply or purge it; the VTJ query that brought it is in the usage log"
)]
fn open(vtj: &Vtj, registrar_id: &str, seq: i64, sealed: &[u8]) -> Result<Value, VtjError> {
    let id = row_id(registrar_id, seq);
    let json =
        FieldCipher::new(&vtj.keyring).decrypt_string(&FieldContext::new("vtj_staged", "message", &id), sealed)?;
    serde_json::from_str(&json).map_err(|_| VtjError::Crypto)
}

type StagedInsert = (
    diesel::dsl::Eq<vtj_staged::registrar_id, String>,
    diesel::dsl::Eq<vtj_staged::seq, i64>,
    diesel::dsl::Eq<vtj_staged::source, String>,
    diesel::dsl::Eq<vtj_staged::change_cursor, Option<i64>>,
    diesel::dsl::Eq<vtj_staged::subject_index, Option<Vec<u8>>>,
    diesel::dsl::Eq<vtj_staged::message, Vec<u8>>,
    diesel::dsl::Eq<vtj_staged::received_at, PrimitiveDateTime>,
);

/// Stages `messages` (elements of `perustiedot` or `muutokset`) in the caller's transaction, in
/// their order, after the registrar's last staged row. Returns the indexes of the people named.
pub fn stage_messages(
    conn: &mut DbConnection,
    vtj: &Vtj,
    registrar_id: &str,
    source: &str,
    cursor: Option<i64>,
    messages: Vec<Value>,
    at: PrimitiveDateTime,
) -> Result<Vec<Option<[u8; 32]>>, VtjError> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    lock_registrar(conn, registrar_id)?;
    let today = at.date();
    let last: Option<i64> = vtj_staged::table
        .filter(vtj_staged::registrar_id.eq(registrar_id))
        .select(diesel::dsl::max(vtj_staged::seq))
        .first(conn)?;
    let mut seq = last.unwrap_or(0);
    let codes: Vec<_> = messages.iter().map(identity_code_of).collect();
    let subjects: Vec<Option<[u8; 32]>> = codes
        .iter()
        .map(|c| c.as_ref().map(|c| rekisteri_audit::subject_index(&vtj.keyring, c)))
        .collect();
    // The client may hold its index under a blind-index key being rotated out.
    let candidates: Vec<Vec<Vec<u8>>> = codes
        .iter()
        .map(|c| {
            c.as_ref()
                .map(|c| rekisteri_audit::subject_index_candidates(&vtj.keyring, c))
                .unwrap_or_default()
        })
        .collect();
    let known: Vec<Vec<u8>> = candidates
        .iter()
        .flatten()
        .cloned()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let protected: HashSet<Vec<u8>> = protected_subjects(conn, registrar_id, &known)?.into_iter().collect();
    let mut rows: Vec<StagedInsert> = Vec::with_capacity(messages.len());
    for ((mut message, subject), candidates) in messages.into_iter().zip(subjects.iter()).zip(&candidates) {
        seq += 1;
        // Nothing a protection order hides is stored while it is active, not even staged (VT-6).
        let order = protection_in(&message, today);
        let is_protected = order.unwrap_or_else(|| candidates.iter().any(|c| protected.contains(c)));
        strip(&mut message, is_protected);
        rows.push((
            vtj_staged::registrar_id.eq(registrar_id.to_owned()),
            vtj_staged::seq.eq(seq),
            vtj_staged::source.eq(source.to_owned()),
            vtj_staged::change_cursor.eq(cursor),
            vtj_staged::subject_index.eq(subject.map(|s| s.to_vec())),
            vtj_staged::message.eq(seal(vtj, registrar_id, seq, &message)?),
            vtj_staged::received_at.eq(at),
        ));
    }
    for chunk in rows.chunks(500) {
        match conn {
            DbConnection::Sqlite(c) => diesel::insert_into(vtj_staged::table)
                .values(chunk.to_vec())
                .execute(c)?,
            DbConnection::Postgres(c) => diesel::insert_into(vtj_staged::table)
                .values(chunk.to_vec())
                .execute(c)?,
        };
    }
    Ok(subjects)
}

struct Pending {
    seq: i64,
    subject: Option<Vec<u8>>,
    message: Vec<u8>,
}

/// A pending row's message opened, and the indexes its person may be monitored under: the code's
/// under every blind-index key held, since the monitored list and the staged row may each have
/// been indexed on either side of a key rotation's switch.
struct Opened {
    message: Option<Value>,
    candidates: Vec<Vec<u8>>,
}

fn open_pending(vtj: &Vtj, registrar_id: &str, row: &Pending) -> Opened {
    let message = open(vtj, registrar_id, row.seq, &row.message).ok();
    let mut candidates = message
        .as_ref()
        .and_then(identity_code_of)
        .map(|code| rekisteri_audit::subject_index_candidates(&vtj.keyring, &code))
        .unwrap_or_default();
    if let Some(subject) = row.subject.as_ref().filter(|s| !candidates.contains(s)) {
        candidates.push(subject.clone());
    }
    Opened { message, candidates }
}

/// Applies the registrar's pending staged rows in order, `config.apply_batch` per transaction.
pub fn apply_pending(conn: &mut DbConnection, vtj: &Vtj, registrar_id: &str) -> Result<ApplyCounts, VtjError> {
    let mut counts = ApplyCounts::default();
    let batch = vtj.config.apply_batch.max(1) as i64;
    loop {
        let at = rekisteri_db::to_primitive(vtj.clock.now());
        // The pending rows are read under the lock: a row another request is applying is
        // applied once, by it.
        let done = write_transaction_as(conn, ACTOR, |conn| {
            lock_registrar(conn, registrar_id)?;
            let pending: Vec<Pending> = vtj_staged::table
                .filter(vtj_staged::registrar_id.eq(registrar_id))
                .filter(vtj_staged::outcome.is_null())
                .order(vtj_staged::seq)
                .limit(batch)
                .select((vtj_staged::seq, vtj_staged::subject_index, vtj_staged::message))
                .load::<(i64, Option<Vec<u8>>, Vec<u8>)>(conn)?
                .into_iter()
                .map(|(seq, subject, message)| Pending { seq, subject, message })
                .collect();
            if pending.is_empty() {
                return Ok::<_, VtjError>(None);
            }
            apply_batch(conn, vtj, registrar_id, &pending, at).map(Some)
        })?;
        match done {
            Some(done) => counts.add(done),
            None => return Ok(counts),
        }
    }
}

/// The outcomes of the staged rows `seqs` of a registrar: what became of one pushed batch,
/// whichever request applied its rows.
pub fn outcomes_of(
    conn: &mut DbConnection,
    registrar_id: &str,
    seqs: std::ops::RangeInclusive<i64>,
) -> Result<ApplyCounts, VtjError> {
    let rows: Vec<(Option<String>, i64)> = vtj_staged::table
        .filter(vtj_staged::registrar_id.eq(registrar_id))
        .filter(vtj_staged::seq.between(*seqs.start(), *seqs.end()))
        .group_by(vtj_staged::outcome)
        .select((vtj_staged::outcome, diesel::dsl::count_star()))
        .load(conn)?;
    let mut counts = ApplyCounts::default();
    for (outcome, n) in rows {
        let n = u64::try_from(n).unwrap_or_default();
        match outcome.as_deref() {
            Some("applied") => counts.applied += n,
            Some("skipped") => counts.skipped += n,
            _ => counts.failed += n,
        }
    }
    Ok(counts)
}

/// The last staged row's number of a registrar (0 before any).
pub(crate) fn last_seq(conn: &mut DbConnection, registrar_id: &str) -> Result<i64, VtjError> {
    let last: Option<i64> = vtj_staged::table
        .filter(vtj_staged::registrar_id.eq(registrar_id))
        .select(diesel::dsl::max(vtj_staged::seq))
        .first(conn)?;
    Ok(last.unwrap_or(0))
}

/// What a batch reads once and writes back once (VT-13): the monitored entries of its people,
/// their clients, and the outcome of each row. Only the client UPDATE is per change.
struct BatchState {
    monitored: HashMap<Vec<u8>, (String, Option<Date>)>,
    /// Monitored entries whose `last_change_on` moved.
    moved: HashSet<Vec<u8>>,
    clients: PopulationBatch,
}

fn apply_batch(
    conn: &mut DbConnection,
    vtj: &Vtj,
    registrar_id: &str,
    pending: &[Pending],
    at: PrimitiveDateTime,
) -> Result<ApplyCounts, VtjError> {
    let opened: Vec<Opened> = pending.iter().map(|row| open_pending(vtj, registrar_id, row)).collect();
    let subjects: Vec<Vec<u8>> = opened
        .iter()
        .flat_map(|o| o.candidates.iter().cloned())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    // Keyed by the index the monitored row holds; each message finds its row by its candidates.
    let mut monitored = HashMap::with_capacity(subjects.len());
    for chunk in subjects.chunks(500) {
        let rows: Vec<(Vec<u8>, String, Option<Date>)> = vtj_monitored::table
            .filter(vtj_monitored::registrar_id.eq(registrar_id))
            .filter(vtj_monitored::subject_index.eq_any(chunk))
            .select((
                vtj_monitored::subject_index,
                vtj_monitored::client_id,
                vtj_monitored::last_change_on,
            ))
            .load(conn)?;
        monitored.extend(rows.into_iter().map(|(s, id, last)| (s, (id, last))));
    }
    let client_ids: Vec<String> = monitored
        .values()
        .map(|(id, _)| id.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut state = BatchState {
        monitored,
        moved: HashSet::new(),
        clients: PopulationBatch::load(conn, registrar_id, &client_ids)?,
    };
    let mut done = ApplyCounts::default();
    let mut outcomes: Vec<(i64, &'static str, Option<String>)> = Vec::with_capacity(pending.len());
    for (row, opened) in pending.iter().zip(&opened) {
        let (outcome, reason) = apply_one(conn, vtj, registrar_id, row, opened, at, &mut state)?;
        vtj.fail.applied_one()?;
        match outcome {
            "applied" => done.applied += 1,
            "skipped" => done.skipped += 1,
            _ => done.failed += 1,
        }
        outcomes.push((row.seq, outcome, reason));
    }
    write_outcomes(conn, registrar_id, &outcomes, at)?;
    // `last_change_on` of the people whose changes moved it, grouped by the new date.
    let mut by_date: HashMap<Date, Vec<Vec<u8>>> = HashMap::new();
    for subject in &state.moved {
        if let Some((_, Some(on))) = state.monitored.get(subject) {
            by_date.entry(*on).or_default().push(subject.clone());
        }
    }
    for (on, subjects) in by_date {
        for chunk in subjects.chunks(500) {
            diesel::update(
                vtj_monitored::table
                    .filter(vtj_monitored::registrar_id.eq(registrar_id))
                    .filter(vtj_monitored::subject_index.eq_any(chunk)),
            )
            .set(vtj_monitored::last_change_on.eq(Some(on)))
            .execute(conn)?;
        }
    }
    Ok(done)
}

/// Marks the batch's rows: consecutive rows with the same outcome and no reason in one
/// statement (the common case: a whole batch applied), the others one by one.
fn write_outcomes(
    conn: &mut DbConnection,
    registrar_id: &str,
    outcomes: &[(i64, &'static str, Option<String>)],
    at: PrimitiveDateTime,
) -> Result<(), VtjError> {
    let mut i = 0;
    while i < outcomes.len() {
        let (first, outcome, reason) = &outcomes[i];
        let mut last = *first;
        if reason.is_none() {
            while let Some((seq, o, None)) = outcomes.get(i + 1)
                && o == outcome
            {
                last = *seq;
                i += 1;
            }
        }
        diesel::update(
            vtj_staged::table
                .filter(vtj_staged::registrar_id.eq(registrar_id))
                .filter(vtj_staged::seq.between(*first, last))
                .filter(vtj_staged::outcome.is_null()),
        )
        .set((
            vtj_staged::outcome.eq(*outcome),
            vtj_staged::reason.eq(reason),
            vtj_staged::processed_at.eq(at),
        ))
        .execute(conn)?;
        i += 1;
    }
    Ok(())
}

fn apply_one(
    conn: &mut DbConnection,
    vtj: &Vtj,
    registrar_id: &str,
    row: &Pending,
    opened: &Opened,
    at: PrimitiveDateTime,
    state: &mut BatchState,
) -> Result<(&'static str, Option<String>), VtjError> {
    let Some(message) = &opened.message else {
        return Ok(("failed", Some("the staged message cannot be opened".into())));
    };
    if row.subject.is_none() {
        return Ok(("failed", Some("henkilotunnus: not a valid identity code".into())));
    }
    // `subject`: the index the person's monitored row holds, whichever key made it.
    let Some((subject, (client_id, last_change_on))) = opened
        .candidates
        .iter()
        .find_map(|c| state.monitored.get(c).map(|found| (c.clone(), found.clone())))
    else {
        return Ok(("skipped", Some("not on the monitored list".into())));
    };
    let meaning = interpret(message, at.date());
    let reasons = (!meaning.skipped.is_empty()).then(|| meaning.skipped.join("; "));
    if let (Some(on), Some(last)) = (meaning.changed_on, last_change_on)
        && on < last
    {
        return Ok(("skipped", Some("older than the data the register holds".into())));
    }
    if meaning.update == PopulationUpdate::default() {
        return Ok(("skipped", Some(reasons.unwrap_or_else(|| "nothing to apply".into()))));
    }
    let outcome = match state.clients.apply(conn, &vtj.keyring, &client_id, &meaning.update, at) {
        Ok(outcome) => outcome,
        Err(
            ClientsError::Refused(Refusal::Conflict(m))
            | ClientsError::Refused(Refusal::Validation { message: m, .. })
            | ClientsError::Refused(Refusal::Rule { message: m, .. }),
        ) => {
            return Ok(("failed", Some(m)));
        }
        Err(e) => return Err(e.into()),
    };
    let PopulationOutcome::Applied {
        protection_started,
        protection_ended,
        rekeyed_to,
        moved,
        ..
    } = outcome
    else {
        return Ok(("skipped", Some("no such client in the register".into())));
    };
    if let MoveEffect::ToRegistrar {
        registrar_id: receiving,
        notice_id,
    } = &moved
    {
        // The notice hands VTJ's facts of the person to another registrar: a disclosure of the
        // sending register (AU-2).
        let entry = NewEntry::Disclosure(DisclosureEntry {
            occurred_at: at,
            registrar_id: registrar_id.to_owned(),
            subject_index: <[u8; 32]>::try_from(subject.as_slice()).ok(),
            description: "notice of a move: identity code, new home municipality and day of the move (VTJ)".into(),
            discloser_kind: ActorKind::System,
            discloser_id: "vtj".into(),
            recipient_kind: "registrar".into(),
            recipient_id: receiving.clone(),
            recipient_name: None,
            purpose: "the registrar of the new home municipality arranges the client's services".into(),
            legal_basis: "a move between registrars of the system (source 000)".into(),
            request_id: format!("vtj-move-{notice_id}"),
        });
        vtj.audit.append_in(conn, vec![entry], at)?;
    }
    if protection_started {
        purge_staged(conn, vtj, registrar_id, &opened.candidates)?;
    }
    if let Some(new_subject) = rekeyed_to {
        let new_subject = new_subject.to_vec();
        let mut new_candidates = meaning
            .update
            .new_identity_code
            .as_ref()
            .map(|code| rekisteri_audit::subject_index_candidates(&vtj.keyring, code))
            .unwrap_or_default();
        if !new_candidates.contains(&new_subject) {
            new_candidates.push(new_subject.clone());
        }
        let exists: i64 = vtj_monitored::table
            .filter(vtj_monitored::registrar_id.eq(registrar_id))
            .filter(vtj_monitored::subject_index.eq_any(&new_candidates))
            .count()
            .get_result(conn)?;
        if exists == 0 {
            let last = meaning.changed_on.or(last_change_on);
            diesel::insert_into(vtj_monitored::table)
                .values((
                    vtj_monitored::registrar_id.eq(registrar_id),
                    vtj_monitored::subject_index.eq(&new_subject),
                    vtj_monitored::client_id.eq(&client_id),
                    vtj_monitored::needs_load.eq(false),
                    vtj_monitored::last_change_on.eq(last),
                ))
                .execute(conn)?;
            state.monitored.insert(new_subject, (client_id.clone(), last));
        }
    }
    let newer = meaning
        .changed_on
        .filter(|on| last_change_on.is_none_or(|last| *on > last));
    if newer.is_some() {
        state.monitored.insert(subject.clone(), (client_id.clone(), newer));
        state.moved.insert(subject);
    }
    if protection_ended {
        // VT-6: when the order ends, the hidden values are fetched again.
        diesel::update(
            vtj_monitored::table
                .filter(vtj_monitored::registrar_id.eq(registrar_id))
                .filter(vtj_monitored::client_id.eq(&client_id)),
        )
        .set(vtj_monitored::needs_load.eq(true))
        .execute(conn)?;
    }
    Ok(("applied", reasons))
}

/// VT-6: overwrites the censored groups of every staged message of this person, found by the
/// indexes of their code under every blind-index key held.
fn purge_staged(
    conn: &mut DbConnection,
    vtj: &Vtj,
    registrar_id: &str,
    candidates: &[Vec<u8>],
) -> Result<usize, VtjError> {
    let rows: Vec<(i64, Vec<u8>)> = vtj_staged::table
        .filter(vtj_staged::registrar_id.eq(registrar_id))
        .filter(vtj_staged::subject_index.eq_any(candidates))
        .select((vtj_staged::seq, vtj_staged::message))
        .load(conn)?;
    let mut purged = 0;
    for (seq, sealed) in rows {
        let mut message = open(vtj, registrar_id, seq, &sealed)?;
        if strip(&mut message, true) {
            diesel::update(
                vtj_staged::table
                    .filter(vtj_staged::registrar_id.eq(registrar_id))
                    .filter(vtj_staged::seq.eq(seq)),
            )
            .set(vtj_staged::message.eq(seal(vtj, registrar_id, seq, &message)?))
            .execute(conn)?;
            purged += 1;
        }
    }
    Ok(purged)
}
