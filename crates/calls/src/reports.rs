//! Contact reports (CA-13): aggregates per queue per day or hour, never individuals.
//!
//! A cell with fewer than [`THRESHOLD`] contacts has its values `null` and `suppressed: true`:
//! at that size shares and percentiles would describe single calls; so has an average or a
//! percentile over fewer than [`THRESHOLD`] durations or waits. No totals across cells are
//! published, but a day is the total of its hours: so that a day's cell (another query) cannot
//! back out a suppressed hour, an hourly report suppresses more hours of the same queue and day
//! while exactly one is suppressed or the suppressed ones hold fewer than [`THRESHOLD`] contacts
//! (as the client statistics do, CL-16). Periods start and end on whole days or hours, so no
//! two windows differ by a single contact. Days and hours are Finnish local time, the time the
//! queue's staff work in.

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;
use rekisteri_accounts::Permission;
use rekisteri_audit::{DataUse, Outcome};
use rekisteri_db::DbConnection;
use rekisteri_db::schema::contacts;
use serde::{Deserialize, Serialize};
use time::PrimitiveDateTime;
use utoipa::ToSchema;

use crate::access::enter;
use crate::{CallRegister, CallsError, Request, at_primitive, rule};

/// Cells with fewer contacts are suppressed.
pub const THRESHOLD: usize = 5;
/// The longest period one report covers.
pub const MAX_DAYS: i64 = 366;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Day,
    Hour,
}

/// One queue in one period.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ContactReportCell {
    pub queue_id: String,
    /// `YYYY-MM-DD` for a day, `YYYY-MM-DDTHH` for an hour, Finnish local time.
    pub period: String,
    pub suppressed: bool,
    pub contacts: Option<u64>,
    /// Share of calls and callbacks an agent answered, of all contacts.
    pub answered_share: Option<f64>,
    pub callback_share: Option<f64>,
    pub voicemail_share: Option<f64>,
    pub average_duration_seconds: Option<f64>,
    pub p90_duration_seconds: Option<f64>,
    pub average_wait_seconds: Option<f64>,
    pub p90_wait_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ContactReport {
    #[schema(format = DateTime)]
    pub from: String,
    #[schema(format = DateTime)]
    pub to: String,
    pub group_by: GroupBy,
    pub threshold: u64,
    pub cells: Vec<ContactReportCell>,
}

/// What a report covers.
#[derive(Debug, Clone)]
pub struct ReportQuery {
    pub from: time::OffsetDateTime,
    /// Exclusive.
    pub to: time::OffsetDateTime,
    pub group_by: GroupBy,
    pub queue_id: Option<String>,
}

#[derive(Default)]
struct Tally {
    contacts: u64,
    answered: u64,
    callbacks: u64,
    voicemails: u64,
    durations: Vec<i32>,
    waits: Vec<i32>,
}

fn average(values: &[i32]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(values.iter().map(|v| f64::from(*v)).sum::<f64>() / values.len() as f64)
}

/// The 90th percentile by the nearest-rank method: the smallest value at or above which 10 %
/// of the values lie.
fn p90(values: &mut [i32]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = (values.len() * 90).div_ceil(100).max(1);
    values.get(rank - 1).map(|v| f64::from(*v))
}

/// Values an average or a percentile may be published over.
fn enough(values: &[i32]) -> Option<&[i32]> {
    (values.len() >= THRESHOLD).then_some(values)
}

fn enough_mut(values: &mut [i32]) -> Option<&mut [i32]> {
    (values.len() >= THRESHOLD).then_some(values)
}

/// The cells to suppress: primary (fewer than [`THRESHOLD`] contacts), and for hours the
/// secondary suppression within each queue's day (see the module's documentation).
fn suppress(tallies: &BTreeMap<(String, String), Tally>, group_by: GroupBy) -> BTreeSet<(String, String)> {
    let mut out: BTreeSet<(String, String)> = tallies
        .iter()
        .filter(|(_, t)| (t.contacts as usize) < THRESHOLD)
        .map(|(key, _)| key.clone())
        .collect();
    if group_by == GroupBy::Day {
        return out;
    }
    // An hour's period is `YYYY-MM-DDTHH`: its day is the part before `T`.
    let mut days: BTreeMap<(String, String), Vec<(String, u64)>> = BTreeMap::new();
    for ((queue, period), t) in tallies {
        let day = period.split('T').next().unwrap_or(period).to_owned();
        days.entry((queue.clone(), day))
            .or_default()
            .push((period.clone(), t.contacts));
    }
    for ((queue, _), hours) in days {
        loop {
            let hidden: Vec<u64> = hours
                .iter()
                .filter(|(p, _)| out.contains(&(queue.clone(), p.clone())))
                .map(|(_, n)| *n)
                .collect();
            let exposed =
                hidden.len() == 1 || (!hidden.is_empty() && (hidden.iter().sum::<u64>() as usize) < THRESHOLD);
            if !exposed {
                break;
            }
            let smallest = hours
                .iter()
                .filter(|(p, _)| !out.contains(&(queue.clone(), p.clone())))
                .min_by_key(|(_, n)| *n);
            match smallest {
                Some((period, _)) => {
                    out.insert((queue.clone(), period.clone()));
                }
                None => break,
            }
        }
    }
    out
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn period(started_at: PrimitiveDateTime, group_by: GroupBy) -> String {
    let local = rekisteri_core::helsinki_local(started_at);
    match group_by {
        GroupBy::Day => local.date().to_string(),
        GroupBy::Hour => format!("{}T{:02}", local.date(), local.hour()),
    }
}

type ReportRow = (String, String, bool, PrimitiveDateTime, Option<i32>, Option<i32>);

/// The report over `[from, to)` (CA-13), optionally for one queue. Reading it is logged as a
/// use of the register without a data subject.
pub fn contact_report(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    registrar_id: &str,
    query: &ReportQuery,
) -> Result<ContactReport, CallsError> {
    let ReportQuery {
        from,
        to,
        group_by,
        queue_id,
    } = query.clone();
    let context = enter(conn, request, registrar_id, Some(Permission::ReadContactReports))?;
    if to <= from {
        return Err(rule("to", "must be after from"));
    }
    if (to - from).whole_days() > MAX_DAYS {
        return Err(rule("to", format!("a report covers at most {MAX_DAYS} days")));
    }
    for (field, instant) in [("from", from), ("to", to)] {
        let local = rekisteri_core::helsinki_local(at_primitive(instant));
        let aligned = match group_by {
            GroupBy::Day => local.time() == time::Time::MIDNIGHT,
            GroupBy::Hour => local.minute() == 0 && local.second() == 0 && local.nanosecond() == 0,
        };
        if !aligned {
            return Err(rule(
                field,
                match group_by {
                    GroupBy::Day => "must be the start of a day in Finnish time (00:00 Europe/Helsinki)",
                    GroupBy::Hour => "must be the start of an hour",
                },
            ));
        }
    }
    let at = at_primitive(request.now);
    let mut rows_query = contacts::table
        .filter(contacts::registrar_id.eq(registrar_id))
        .filter(contacts::started_at.ge(at_primitive(from)))
        .filter(contacts::started_at.lt(at_primitive(to)))
        .select((
            contacts::queue_id,
            contacts::kind,
            contacts::answered,
            contacts::started_at,
            contacts::duration_seconds,
            contacts::wait_seconds,
        ))
        .into_boxed();
    if let Some(queue_id) = queue_id {
        rows_query = rows_query.filter(contacts::queue_id.eq(queue_id));
    }
    let rows: Vec<ReportRow> = rows_query.load(conn)?;
    let mut tallies: BTreeMap<(String, String), Tally> = BTreeMap::new();
    for (queue, kind, answered, started_at, duration, wait) in rows {
        let tally = tallies.entry((queue, period(started_at, group_by))).or_default();
        tally.contacts += 1;
        if answered {
            tally.answered += 1;
        }
        match kind.as_str() {
            "callback" => tally.callbacks += 1,
            "voicemail" => tally.voicemails += 1,
            _ => {}
        }
        if let Some(d) = duration {
            tally.durations.push(d);
        }
        if let Some(w) = wait {
            tally.waits.push(w);
        }
    }
    let suppressed = suppress(&tallies, group_by);
    let cells = tallies
        .into_iter()
        .map(|((queue_id, period), mut t)| {
            if suppressed.contains(&(queue_id.clone(), period.clone())) {
                return ContactReportCell {
                    queue_id,
                    period,
                    suppressed: true,
                    contacts: None,
                    answered_share: None,
                    callback_share: None,
                    voicemail_share: None,
                    average_duration_seconds: None,
                    p90_duration_seconds: None,
                    average_wait_seconds: None,
                    p90_wait_seconds: None,
                };
            }
            ContactReportCell {
                queue_id,
                period,
                suppressed: false,
                contacts: Some(t.contacts),
                answered_share: share(t.answered, t.contacts),
                callback_share: share(t.callbacks, t.contacts),
                voicemail_share: share(t.voicemails, t.contacts),
                average_duration_seconds: enough(&t.durations).and_then(average),
                p90_duration_seconds: enough_mut(&mut t.durations).and_then(p90),
                average_wait_seconds: enough(&t.waits).and_then(average),
                p90_wait_seconds: enough_mut(&mut t.waits).and_then(p90),
            }
        })
        .collect();
    let report = ContactReport {
        from: crate::format_time(at_primitive(from)),
        to: crate::format_time(at_primitive(to)),
        group_by,
        threshold: THRESHOLD as u64,
        cells,
    };
    register.audit.read_personal_data(conn, &context, at, |_| {
        Ok::<_, CallsError>((
            report,
            vec![DataUse {
                subject_index: None,
                data_kind: "contact_report".to_owned(),
                data_id: None,
                outcome: Outcome::Used,
            }],
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::p90;

    #[test]
    fn ca_13_p90_is_the_nearest_rank() {
        assert_eq!(p90(&mut [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), Some(9.0));
        assert_eq!(p90(&mut [5]), Some(5.0));
        assert_eq!(p90(&mut [10, 1, 7, 3, 5]), Some(10.0));
        assert_eq!(p90(&mut []), None);
    }
}
