//! Ending a right an account holds for a time: a role grant, a service-unit membership or a
//! service-area right (AC-11). The three end the same way, so they share this.

use rekisteri_core::Refusal;
use rekisteri_db::{DbConnection, write_transaction_as};
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::organisations::security_event;
use crate::{AccountsError, Principal, Register, now_primitive};

/// A right about to end, as its owner found it.
pub(crate) struct Ending<'a> {
    pub account_id: &'a str,
    /// The organisation whose security log records the end.
    pub organisation_id: &'a str,
    pub valid_from: PrimitiveDateTime,
    pub valid_until: Option<PrimitiveDateTime>,
    /// The refusal's words when the right has already ended ("the role has already ended").
    pub already_ended: &'static str,
    /// The security event's name and its details; `valid_until` and `sessions_ended` are added.
    pub event: &'static str,
    pub details: serde_json::Value,
}

/// Ends the right at `valid_until` (now when absent, never before it began). `set_end` writes
/// the end into the right's own table. When it ends now, the account's open sessions, which
/// relied on it, end in the same transaction. The right stays as history (AC-8). Returns the end.
pub(crate) fn end_right(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
    ending: Ending<'_>,
    valid_until: Option<PrimitiveDateTime>,
    now: OffsetDateTime,
    set_end: impl FnOnce(&mut DbConnection, PrimitiveDateTime) -> diesel::QueryResult<usize>,
) -> Result<PrimitiveDateTime, AccountsError> {
    let at = now_primitive(now);
    if ending.valid_until.is_some_and(|current| current <= at) {
        return Err(Refusal::Conflict(ending.already_ended.to_owned()).into());
    }
    let until = valid_until.unwrap_or(at).max(ending.valid_from);
    write_transaction_as(conn, &crate::actor_label(Some(actor)), |conn| {
        set_end(conn, until)?;
        let sessions_ended = if until <= at {
            crate::sessions::end_sessions_of(conn, ending.account_id, at, "rights_ended")?
        } else {
            0
        };
        let mut details = ending.details;
        if let Some(fields) = details.as_object_mut() {
            fields.insert("valid_until".to_owned(), crate::format_time(until).into());
            fields.insert("sessions_ended".to_owned(), sessions_ended.into());
        }
        let event = security_event(Some(ending.organisation_id), Some(actor), ending.event, details, at);
        register.audit.append_in(conn, vec![event], at)?;
        Ok::<_, AccountsError>(())
    })?;
    Ok(until)
}
