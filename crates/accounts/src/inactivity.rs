//! The inactivity job (AC-7, AC-8): an account unused for six months is closed, after a reminder
//! queued 14 days before; a closed account is deleted 30 days after closing unless an admin
//! restored it. Accounts that ever held rights to client data (any role beyond Palvelumanuaali's
//! four) are never deleted: the usage log must stay explainable for its retention period, so
//! their identity and their history of rights are kept (AC-8).

use diesel::prelude::*;
use rekisteri_db::schema::{
    account_roles, account_service_units, accounts, invitations, notification_outbox, sessions,
};
use rekisteri_db::{DbConnection, write_transaction, write_transaction_as};
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::organisations::security_event;
use crate::{AccountsError, Register, Role, now_primitive};

/// The settings of the job.
#[derive(Debug, Clone, Copy)]
pub struct InactivityOptions {
    pub close_after_months: u8,
    pub remind_days_before: i64,
    pub delete_after_days: i64,
}

impl Default for InactivityOptions {
    fn default() -> Self {
        Self {
            close_after_months: 6,
            remind_days_before: 14,
            delete_after_days: 30,
        }
    }
}

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InactivityReport {
    pub reminded: u64,
    pub closed: u64,
    pub deleted: u64,
    /// Closed long enough, but kept because they held rights to client data.
    pub kept: u64,
}

/// `at` moved back by whole calendar months (the day clamped to the target month's length).
fn months_before(at: PrimitiveDateTime, months: u8) -> PrimitiveDateTime {
    let total = at.year() * 12 + i32::from(u8::from(at.month())) - 1 - i32::from(months);
    let (year, month0) = (total.div_euclid(12), total.rem_euclid(12));
    let month = time::Month::try_from((month0 + 1) as u8).unwrap_or(time::Month::January);
    let last_day = time::util::days_in_month(month, year);
    let date = time::Date::from_calendar_date(year, month, at.day().min(last_day)).unwrap_or(at.date());
    PrimitiveDateTime::new(date, at.time())
}

type Candidate = (String, String, Option<PrimitiveDateTime>, PrimitiveDateTime);

/// Runs the job once at `now`.
pub fn run_inactivity(
    conn: &mut DbConnection,
    register: &Register,
    options: InactivityOptions,
    now: OffsetDateTime,
) -> Result<InactivityReport, AccountsError> {
    let at = now_primitive(now);
    let close_before = months_before(at, options.close_after_months);
    let remind_before = close_before + time::Duration::days(options.remind_days_before);
    let mut report = InactivityReport::default();

    let active: Vec<Candidate> = accounts::table
        .filter(accounts::status.eq("active"))
        .select((
            accounts::id,
            accounts::organisation_id,
            accounts::last_login_at,
            accounts::created_at,
        ))
        .load(conn)?;
    for (id, organisation, last_login, created) in active {
        let last_used = last_login.unwrap_or(created);
        if last_used <= close_before {
            write_transaction(conn, |conn| {
                let ended = crate::accounts::mark_closed(conn, &id, at)?;
                let event = security_event(
                    Some(&organisation),
                    None,
                    "account_closed",
                    serde_json::json!({"account_id": id, "reason": "inactivity", "sessions_ended": ended}),
                    at,
                );
                register.audit.append_in(conn, vec![event], at)?;
                Ok::<_, AccountsError>(())
            })?;
            report.closed += 1;
        } else if last_used <= remind_before {
            let already: i64 = notification_outbox::table
                .filter(notification_outbox::account_id.eq(&id))
                .filter(notification_outbox::kind.eq("inactivity_reminder"))
                .filter(notification_outbox::created_at.ge(last_used))
                .count()
                .get_result(conn)?;
            if already > 0 {
                continue;
            }
            let closes_at = last_used + (at - close_before);
            write_transaction(conn, |conn| {
                diesel::insert_into(notification_outbox::table)
                    .values((
                        notification_outbox::id.eq(uuid::Uuid::new_v4().to_string()),
                        notification_outbox::organisation_id.eq(&organisation),
                        notification_outbox::account_id.eq(&id),
                        notification_outbox::kind.eq("inactivity_reminder"),
                        notification_outbox::details.eq(serde_json::json!({
                            "closes_at": crate::format_time(closes_at),
                            "message": "Log in to keep the account open.",
                        })
                        .to_string()),
                        notification_outbox::created_at.eq(at),
                    ))
                    .execute(conn)?;
                let event = security_event(
                    Some(&organisation),
                    None,
                    "inactivity_reminder_queued",
                    serde_json::json!({"account_id": id}),
                    at,
                );
                register.audit.append_in(conn, vec![event], at)?;
                Ok::<_, AccountsError>(())
            })?;
            report.reminded += 1;
        }
    }

    let delete_before = at - time::Duration::days(options.delete_after_days);
    let closed: Vec<(String, String)> = accounts::table
        .filter(accounts::status.eq("closed"))
        .filter(accounts::closed_at.le(delete_before))
        .select((accounts::id, accounts::organisation_id))
        .load(conn)?;
    let palvelumanuaali = [Role::Admin, Role::MainUser, Role::Editor, Role::Expert].map(Role::as_str);
    for (id, organisation) in closed {
        let roles: Vec<String> = account_roles::table
            .filter(account_roles::account_id.eq(&id))
            .select(account_roles::role)
            .load(conn)?;
        let area_rights: i64 = rekisteri_db::schema::account_service_areas::table
            .filter(rekisteri_db::schema::account_service_areas::account_id.eq(&id))
            .count()
            .get_result(conn)?;
        if area_rights > 0 || roles.iter().any(|r| !palvelumanuaali.contains(&r.as_str())) {
            report.kept += 1;
            continue;
        }
        write_transaction_as(conn, "system:inactivity", |conn| {
            diesel::delete(sessions::table.filter(sessions::account_id.eq(&id))).execute(conn)?;
            diesel::delete(invitations::table.filter(invitations::account_id.eq(&id))).execute(conn)?;
            diesel::delete(account_service_units::table.filter(account_service_units::account_id.eq(&id)))
                .execute(conn)?;
            diesel::delete(account_roles::table.filter(account_roles::account_id.eq(&id))).execute(conn)?;
            diesel::delete(notification_outbox::table.filter(notification_outbox::account_id.eq(&id))).execute(conn)?;
            diesel::delete(accounts::table.find(&id)).execute(conn)?;
            let event = security_event(
                Some(&organisation),
                None,
                "account_deleted",
                serde_json::json!({"account_id": id, "reason": "closed_30_days"}),
                at,
            );
            register.audit.append_in(conn, vec![event], at)?;
            Ok::<_, AccountsError>(())
        })?;
        report.deleted += 1;
    }
    Ok(report)
}

/// Notifications not yet delivered (`/metrics`' outbox depth).
pub fn undelivered_notifications(conn: &mut DbConnection) -> diesel::QueryResult<i64> {
    notification_outbox::table
        .filter(notification_outbox::state.eq("pending"))
        .count()
        .get_result(conn)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::months_before;

    #[test]
    fn ac_7_six_months_back_is_calendar_months() {
        assert_eq!(
            months_before(datetime!(2026-11-25 10:00), 6),
            datetime!(2026-05-25 10:00)
        );
        assert_eq!(
            months_before(datetime!(2026-08-31 10:00), 6),
            datetime!(2026-02-28 10:00)
        );
        assert_eq!(
            months_before(datetime!(2026-03-15 00:00), 6),
            datetime!(2025-09-15 00:00)
        );
    }
}
