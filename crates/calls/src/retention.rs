//! Retention of the call register (CA-9..CA-11): a call's recorded audio is destroyed six
//! months after the call, a voicemail's audio and every other part of a contact two years
//! after it; a contact on legal hold keeps everything while the hold is in force (CA-10).
//!
//! Audio goes first, then the row that says so: a run that stops between the two destroys the
//! same object again next time (deleting a missing object succeeds), so nothing is ever marked
//! destroyed while still readable. Processing memos stay: they record what was done with a
//! recording, not the call.

use std::collections::HashSet;

use diesel::prelude::*;
use rekisteri_audit::{ActorKind, NewEntry, SecurityEvent};
use rekisteri_db::schema::{contacts, legal_holds, listening_grants, recordings};
use rekisteri_db::{DbConnection, write_transaction};
use time::{Date, PrimitiveDateTime};

use crate::{CallRegister, CallsError, at_primitive};

/// How long a call's recording is kept (CA-9).
pub const RECORDING_MONTHS: u8 = 6;
/// How long a voicemail and the rest of a contact are kept (CA-9, CA-11).
pub const CONTACT_YEARS: i32 = 2;

const BATCH: i64 = 500;

/// What a run did, for its security event and the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallsRetentionReport {
    pub recordings_destroyed: u64,
    pub voicemails_destroyed: u64,
    pub contacts_deleted: u64,
    /// Contacts past their retention kept by a legal hold in force.
    pub held: u64,
    /// Audio the store failed to delete: left as it was, tried again by the next run.
    pub failures: u64,
}

/// `date` `months` calendar months earlier (the last day of a shorter month).
fn months_before(date: Date, months: u8) -> Date {
    let total = date.year() * 12 + i32::from(u8::from(date.month())) - 1 - i32::from(months);
    let (year, month0) = (total.div_euclid(12), total.rem_euclid(12));
    let month = time::Month::try_from(u8::try_from(month0 + 1).unwrap_or(1)).unwrap_or(time::Month::January);
    let day = date.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).unwrap_or(date)
}

fn cutoff(now: PrimitiveDateTime, months: u8) -> PrimitiveDateTime {
    PrimitiveDateTime::new(months_before(now.date(), months), now.time())
}

/// The contacts a hold in force keeps on `today` (few: holds are rare).
fn held_contacts(conn: &mut DbConnection, today: Date) -> Result<HashSet<(String, String)>, CallsError> {
    let rows: Vec<(String, String)> = legal_holds::table
        .filter(legal_holds::released_at.is_null())
        .filter(legal_holds::until_on.is_null().or(legal_holds::until_on.ge(today)))
        .select((legal_holds::registrar_id, legal_holds::contact_id))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// Whether a hold placed since the run began keeps this one contact.
fn held_now(conn: &mut DbConnection, registrar_id: &str, contact_id: &str, today: Date) -> Result<bool, CallsError> {
    Ok(diesel::select(diesel::dsl::exists(
        legal_holds::table
            .filter(legal_holds::registrar_id.eq(registrar_id))
            .filter(legal_holds::contact_id.eq(contact_id))
            .filter(legal_holds::released_at.is_null())
            .filter(legal_holds::until_on.is_null().or(legal_holds::until_on.ge(today))),
    ))
    .get_result(conn)?)
}

/// Runs the register's retention at `now`: `destroy` removes one object from the audio store
/// (and succeeds for one already gone); `progress` hears of every contact handled.
pub fn run(
    conn: &mut DbConnection,
    register: &CallRegister,
    now: time::OffsetDateTime,
    run_id: &str,
    destroy: &mut dyn FnMut(&str) -> Result<(), String>,
    progress: &mut dyn FnMut(u64),
) -> Result<CallsRetentionReport, CallsError> {
    let at = at_primitive(now);
    let recording_cutoff = cutoff(at, RECORDING_MONTHS);
    let contact_cutoff = cutoff(at, 12 * CONTACT_YEARS as u8);
    // A hold's last day is a Finnish calendar day.
    let today = rekisteri_core::helsinki_local(at).date();
    let held = held_contacts(conn, today)?;
    let mut report = CallsRetentionReport::default();
    let mut counted_held: HashSet<(String, String)> = HashSet::new();

    // Audio past its retention: calls' and callbacks' after six months, voicemails' after two
    // years.
    let mut after = (String::new(), String::new());
    loop {
        let due: Vec<(String, String, String, String, PrimitiveDateTime)> = recordings::table
            .inner_join(
                contacts::table.on(contacts::registrar_id
                    .eq(recordings::registrar_id)
                    .and(contacts::id.eq(recordings::contact_id))),
            )
            .filter(recordings::destroyed_at.is_null())
            .filter(contacts::started_at.lt(recording_cutoff))
            .filter(
                recordings::registrar_id.gt(after.0.clone()).or(recordings::registrar_id
                    .eq(after.0.clone())
                    .and(recordings::contact_id.gt(after.1.clone()))),
            )
            .order((recordings::registrar_id, recordings::contact_id))
            .limit(BATCH)
            .select((
                recordings::registrar_id,
                recordings::contact_id,
                recordings::storage_key,
                contacts::kind,
                contacts::started_at,
            ))
            .load(conn)?;
        let Some(last) = due.last() else { break };
        after = (last.0.clone(), last.1.clone());
        for (registrar_id, contact_id, storage_key, kind, started_at) in due {
            let voicemail = kind == "voicemail";
            if voicemail && started_at >= contact_cutoff {
                continue;
            }
            let key = (registrar_id.clone(), contact_id.clone());
            if held.contains(&key) || held_now(conn, &registrar_id, &contact_id, today)? {
                if counted_held.insert(key) {
                    report.held += 1;
                }
                continue;
            }
            if let Err(message) = destroy(&storage_key) {
                log::error!("retention: the audio of a recording could not be deleted: {message}");
                report.failures += 1;
                continue;
            }
            // The data key goes with the audio: any copy of the ciphertext left elsewhere (a
            // backup, an unwiped block) can no longer be decrypted.
            diesel::update(
                recordings::table
                    .filter(recordings::registrar_id.eq(&registrar_id))
                    .filter(recordings::contact_id.eq(&contact_id)),
            )
            .set((
                recordings::destroyed_at.eq(at),
                recordings::destroyed_by_run.eq(run_id),
                recordings::data_key.eq(Vec::<u8>::new()),
            ))
            .execute(conn)?;
            if voicemail {
                report.voicemails_destroyed += 1;
            } else {
                report.recordings_destroyed += 1;
            }
            progress(1);
        }
    }

    // Contacts past two years, whose audio (if any) is destroyed by now unless held.
    let mut after = (String::new(), String::new());
    loop {
        let due: Vec<(String, String)> = contacts::table
            .filter(contacts::started_at.lt(contact_cutoff))
            .filter(
                contacts::registrar_id.gt(after.0.clone()).or(contacts::registrar_id
                    .eq(after.0.clone())
                    .and(contacts::id.gt(after.1.clone()))),
            )
            .order((contacts::registrar_id, contacts::id))
            .limit(BATCH)
            .select((contacts::registrar_id, contacts::id))
            .load(conn)?;
        let Some(last) = due.last() else { break };
        after = last.clone();
        for key in due {
            if held.contains(&key) || held_now(conn, &key.0, &key.1, today)? {
                if counted_held.insert(key.clone()) {
                    report.held += 1;
                }
                continue;
            }
            let (registrar_id, contact_id) = (&key.0, &key.1);
            write_transaction(conn, |conn| {
                let undestroyed: bool = diesel::select(diesel::dsl::exists(
                    recordings::table
                        .filter(recordings::registrar_id.eq(registrar_id))
                        .filter(recordings::contact_id.eq(contact_id))
                        .filter(recordings::destroyed_at.is_null()),
                ))
                .get_result(conn)?;
                if undestroyed {
                    // Audio the first pass did not reach (it failed): left for the next run.
                    return Ok::<_, CallsError>(());
                }
                diesel::delete(
                    recordings::table
                        .filter(recordings::registrar_id.eq(registrar_id))
                        .filter(recordings::contact_id.eq(contact_id)),
                )
                .execute(conn)?;
                diesel::delete(
                    listening_grants::table
                        .filter(listening_grants::registrar_id.eq(registrar_id))
                        .filter(listening_grants::contact_id.eq(contact_id)),
                )
                .execute(conn)?;
                diesel::delete(
                    legal_holds::table
                        .filter(legal_holds::registrar_id.eq(registrar_id))
                        .filter(legal_holds::contact_id.eq(contact_id)),
                )
                .execute(conn)?;
                diesel::delete(
                    contacts::table
                        .filter(contacts::registrar_id.eq(registrar_id))
                        .filter(contacts::id.eq(contact_id)),
                )
                .execute(conn)?;
                report.contacts_deleted += 1;
                Ok(())
            })?;
            progress(1);
        }
    }

    register.audit.append(vec![NewEntry::Security(SecurityEvent {
        occurred_at: at,
        organisation_id: None,
        event_type: "calls_retention_run".to_owned(),
        actor_kind: ActorKind::System,
        actor_id: Some(run_id.to_owned()),
        details: serde_json::json!({
            "run_id": run_id,
            "recordings_destroyed": report.recordings_destroyed,
            "voicemails_destroyed": report.voicemails_destroyed,
            "contacts_deleted": report.contacts_deleted,
            "held": report.held,
            "failures": report.failures,
        }),
        request_id: None,
    })])?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::months_before;
    use time::macros::date;

    #[test]
    fn ca_9_six_months_before_is_a_calendar_date() {
        assert_eq!(months_before(date!(2026 - 08 - 31), 6), date!(2026 - 02 - 28));
        assert_eq!(months_before(date!(2026 - 03 - 15), 6), date!(2025 - 09 - 15));
        assert_eq!(months_before(date!(2026 - 03 - 15), 24), date!(2024 - 03 - 15));
        assert_eq!(months_before(date!(2028 - 02 - 29), 24), date!(2026 - 02 - 28));
    }
}
