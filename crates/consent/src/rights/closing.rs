//! Closing and reopening registry use rights (RU-5, RU-6) and the closing job, which also marks
//! the providers' local copies of a closed right's documents for destruction (RU-7).

use diesel::prelude::*;
use rekisteri_clients::Request;
use rekisteri_core::calendar::add_working_days;
use rekisteri_db::schema::{case_documents, kanta_settings, registry_use_rights};
use rekisteri_db::{DbConnection, write_transaction};
use serde::{Deserialize, Serialize};
use time::{Date, PrimitiveDateTime};
use utoipa::ToSchema;

use super::common::{RightStatus, rights_manager};
use super::documents::{LocalCopy, mark_local_copies};
use super::lifecycle::{Right, effective_status, load_right, right_of};
use super::notifications::{NotificationKind, notify};
use super::{CLOSING_WORKING_DAYS, iso_date};
use crate::{ConsentError, ConsentRegister, at_primitive, helsinki_today, rule, validation};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseRight {
    /// The last usable date the organiser sets for this right; today's date closes it from
    /// tomorrow 00:00, an earlier date closes it at once.
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub closes_after: Date,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenRight {
    /// Why the right is reopened (correcting or invalidating documents, RU-6).
    #[schema(min_length = 1, pattern = "\\S")]
    pub reason: String,
    /// The last usable date of the reopened right.
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub closes_after: Date,
}

/// What a closing run did (RU-5, RU-7).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ClosingReport {
    pub closed: Vec<String>,
    pub warned: Vec<String>,
    pub marked_for_destruction: usize,
    /// Documents whose provider's local copy is marked but not confirmed destroyed:
    /// (registrar, case OID, document id).
    pub unconfirmed_local_copies: Vec<(String, String, String)>,
}

/// RU-5: the organiser sets another closing date for one right; the provider is notified.
/// A date before today closes it at once.
pub fn close_right(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    right_id: &str,
    body: CloseRight,
) -> Result<Right, ConsentError> {
    rights_manager(conn, request.principal, registrar_id)?;
    let today = helsinki_today(request.now);
    let at = at_primitive(request.now);
    write_transaction(conn, |conn| {
        let row = load_right(conn, registrar_id, right_id)?;
        if effective_status(&row, today) == RightStatus::Closed {
            return Err(rule("status", "the right is closed; reopen it instead"));
        }
        if body.closes_after < row.opened_on {
            return Err(rule("closes_after", "must not be before the opening date"));
        }
        let closed_now = body.closes_after < today;
        diesel::update(
            registry_use_rights::table
                .filter(registry_use_rights::registrar_id.eq(registrar_id))
                .filter(registry_use_rights::id.eq(right_id)),
        )
        .set((
            registry_use_rights::closes_after.eq(Some(body.closes_after)),
            registry_use_rights::closing_set_by_organiser.eq(true),
            registry_use_rights::status.eq(if closed_now { RightStatus::Closed } else { row.status }.as_str()),
            registry_use_rights::closed_at.eq(closed_now.then_some(at)),
            registry_use_rights::version.eq(registry_use_rights::version + 1),
            registry_use_rights::updated_at.eq(at),
        ))
        .execute(conn)?;
        if closed_now {
            mark_local_copies(conn, registrar_id, right_id, at)?;
        }
        notify(
            conn,
            registrar_id,
            &row.provider_id,
            NotificationKind::RightClosingDateChanged,
            right_id,
            serde_json::json!({"right_id": right_id, "case_oid": row.case_oid, "closes_after": body.closes_after.to_string()}),
            at,
        )?;
        Ok::<_, ConsentError>(())
    })?;
    let _ = register;
    let row = load_right(conn, registrar_id, right_id)?;
    Ok(right_of(registrar_id, row, None, today))
}

/// RU-6: reopens a closed right with a reason and a last usable date.
pub fn reopen_right(
    conn: &mut DbConnection,
    request: &Request<'_>,
    registrar_id: &str,
    right_id: &str,
    body: ReopenRight,
) -> Result<Right, ConsentError> {
    rights_manager(conn, request.principal, registrar_id)?;
    let today = helsinki_today(request.now);
    let at = at_primitive(request.now);
    if body.reason.trim().is_empty() {
        return Err(validation("reason", "is required"));
    }
    if body.closes_after < today {
        return Err(rule("closes_after", "must be today or later"));
    }
    write_transaction(conn, |conn| {
        let row = load_right(conn, registrar_id, right_id)?;
        if effective_status(&row, today) != RightStatus::Closed {
            return Err(rule("status", "only a closed right can be reopened"));
        }
        diesel::update(
            registry_use_rights::table
                .filter(registry_use_rights::registrar_id.eq(registrar_id))
                .filter(registry_use_rights::id.eq(right_id)),
        )
        .set((
            registry_use_rights::closes_after.eq(Some(body.closes_after)),
            registry_use_rights::closing_set_by_organiser.eq(true),
            registry_use_rights::status.eq(RightStatus::Reopened.as_str()),
            registry_use_rights::closed_at.eq(None::<PrimitiveDateTime>),
            registry_use_rights::reopen_reason.eq(Some(body.reason.trim())),
            registry_use_rights::warned_for.eq(None::<Date>),
            registry_use_rights::version.eq(registry_use_rights::version + 1),
            registry_use_rights::updated_at.eq(at),
        ))
        .execute(conn)?;
        notify(
            conn,
            registrar_id,
            &row.provider_id,
            NotificationKind::RightReopened,
            right_id,
            serde_json::json!({"right_id": right_id, "case_oid": row.case_oid, "closes_after": body.closes_after.to_string()}),
            at,
        )?;
        Ok::<_, ConsentError>(())
    })?;
    let row = load_right(conn, registrar_id, right_id)?;
    Ok(right_of(registrar_id, row, None, today))
}

/// A right not stored as closed, as the closing job loads it.
#[derive(Debug, Queryable)]
struct OpenRow {
    registrar_id: String,
    id: String,
    service_id: String,
    provider_id: String,
    closes_after: Option<Date>,
    set_by_organiser: bool,
    warned_for: Option<Date>,
    case_oid: String,
}

/// RU-5, RU-7: the closing job. Follows each open right's service end (7 working days after
/// it, unless the organiser set the date), warns the provider the configured working days
/// before an automatic closing (once per date), closes rights whose last usable day has passed
/// in Finland and marks their documents' local copies for destruction; reports the local copies
/// not yet confirmed destroyed.
pub fn run_closing(conn: &mut DbConnection, now: time::OffsetDateTime) -> Result<ClosingReport, ConsentError> {
    let today = helsinki_today(now);
    let at = at_primitive(now);
    let mut report = ClosingReport::default();
    write_transaction(conn, |conn| {
        let open: Vec<OpenRow> = registry_use_rights::table
            .filter(registry_use_rights::status.ne(RightStatus::Closed.as_str()))
            .order((registry_use_rights::registrar_id, registry_use_rights::id))
            .select((
                registry_use_rights::registrar_id,
                registry_use_rights::id,
                registry_use_rights::service_id,
                registry_use_rights::provider_id,
                registry_use_rights::closes_after,
                registry_use_rights::closing_set_by_organiser,
                registry_use_rights::warned_for,
                registry_use_rights::case_oid,
            ))
            .load(conn)?;
        for right in open {
            let OpenRow {
                registrar_id,
                id,
                service_id,
                provider_id,
                closes_after,
                set_by_organiser,
                warned_for,
                case_oid,
            } = right;
            let mut last = closes_after;
            if !set_by_organiser
                && let Some(service) = rekisteri_clients::service_term(conn, &registrar_id, &service_id)?
            {
                let ended = service.ends_on();
                let computed = add_working_days(ended, CLOSING_WORKING_DAYS);
                if Some(computed) != closes_after {
                    diesel::update(
                        registry_use_rights::table
                            .filter(registry_use_rights::registrar_id.eq(&registrar_id))
                            .filter(registry_use_rights::id.eq(&id)),
                    )
                    .set((
                        registry_use_rights::service_ended_on.eq(Some(ended)),
                        registry_use_rights::closes_after.eq(Some(computed)),
                        registry_use_rights::updated_at.eq(at),
                    ))
                    .execute(conn)?;
                }
                last = Some(computed);
            }
            let Some(last) = last else { continue };
            if today > last {
                diesel::update(
                    registry_use_rights::table
                        .filter(registry_use_rights::registrar_id.eq(&registrar_id))
                        .filter(registry_use_rights::id.eq(&id)),
                )
                .set((
                    registry_use_rights::status.eq(RightStatus::Closed.as_str()),
                    registry_use_rights::closed_at.eq(Some(at)),
                    registry_use_rights::version.eq(registry_use_rights::version + 1),
                    registry_use_rights::updated_at.eq(at),
                ))
                .execute(conn)?;
                report.marked_for_destruction += mark_local_copies(conn, &registrar_id, &id, at)?;
                report.closed.push(id);
                continue;
            }
            if set_by_organiser || warned_for == Some(last) {
                continue;
            }
            let notice: i32 = kanta_settings::table
                .filter(kanta_settings::registrar_id.eq(&registrar_id))
                .select(kanta_settings::closing_notice_working_days)
                .first(conn)
                .optional()?
                .unwrap_or(3);
            if add_working_days(today, notice.max(0) as u32) >= last {
                notify(
                    conn,
                    &registrar_id,
                    &provider_id,
                    NotificationKind::RightClosingSoon,
                    &id,
                    serde_json::json!({"right_id": id, "case_oid": case_oid, "closes_after": last.to_string()}),
                    at,
                )?;
                diesel::update(
                    registry_use_rights::table
                        .filter(registry_use_rights::registrar_id.eq(&registrar_id))
                        .filter(registry_use_rights::id.eq(&id)),
                )
                .set(registry_use_rights::warned_for.eq(Some(last)))
                .execute(conn)?;
                report.warned.push(id);
            }
        }
        report.unconfirmed_local_copies = case_documents::table
            .filter(case_documents::local_copy.eq(LocalCopy::MarkedForDestruction.as_str()))
            .order((
                case_documents::registrar_id,
                case_documents::case_oid,
                case_documents::id,
            ))
            .select((
                case_documents::registrar_id,
                case_documents::case_oid,
                case_documents::id,
            ))
            .load(conn)?;
        Ok::<_, ConsentError>(())
    })?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::is_usable;
    use time::macros::{date, datetime};

    fn last_day(ended: Date) -> Date {
        add_working_days(ended, CLOSING_WORKING_DAYS)
    }

    #[test]
    fn ru_5_spec_example_service_ending_friday_before_christmas_holds_through_new_years_eve() {
        let last = last_day(date!(2026 - 12 - 18));
        assert_eq!(last, date!(2026 - 12 - 31));
        assert!(is_usable(
            "open",
            date!(2026 - 09 - 01),
            Some(last),
            date!(2026 - 12 - 31)
        ));
        assert!(!is_usable(
            "open",
            date!(2026 - 09 - 01),
            Some(last),
            date!(2027 - 01 - 01)
        ));
        // 00:00 Helsinki on 1 January 2027 is 22:00 UTC on 31 December.
        assert_eq!(
            helsinki_today(datetime!(2026-12-31 21:59:59 UTC)),
            date!(2026 - 12 - 31)
        );
        assert_eq!(helsinki_today(datetime!(2026-12-31 22:00 UTC)), date!(2027 - 01 - 01));
    }

    #[test]
    fn ru_5_closing_skips_easter_and_midsummer() {
        // Good Friday 26 March and Easter Monday 29 March 2027 are not working days.
        assert_eq!(last_day(date!(2027 - 03 - 24)), date!(2027 - 04 - 06));
        // Midsummer Eve, Friday 25 June 2027, is not a working day.
        assert_eq!(last_day(date!(2027 - 06 - 21)), date!(2027 - 07 - 01));
        // Midsummer 2026: Eve Friday 19 June.
        assert_eq!(last_day(date!(2026 - 06 - 17)), date!(2026 - 06 - 29));
    }

    #[test]
    fn ru_6_a_closed_right_is_unusable_whatever_its_dates() {
        assert!(!is_usable(
            "closed",
            date!(2026 - 09 - 01),
            Some(date!(2030 - 01 - 01)),
            date!(2026 - 12 - 01)
        ));
        assert!(is_usable(
            "reopened",
            date!(2026 - 09 - 01),
            Some(date!(2027 - 01 - 15)),
            date!(2027 - 01 - 15)
        ));
        assert!(!is_usable(
            "open",
            date!(2026 - 12 - 02),
            Some(date!(2027 - 01 - 15)),
            date!(2026 - 12 - 01)
        ));
    }
}
