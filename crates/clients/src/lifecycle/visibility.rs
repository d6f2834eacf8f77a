//! The end of visibility (CL-13): the calendar arithmetic of the cut-off and the one query
//! filter that decides which clients the registrar and a provider still see.

use diesel::prelude::*;
use diesel::sql_types::Text;
use rekisteri_db::schema::{service_events, services};
use rekisteri_db::{DbBackend, DbConnection};
use time::{Date, Month};

use super::VISIBILITY_MONTHS;
use super::other_services;
use crate::access::Reach;

/// `date` moved by whole calendar months (negative: back), the day clamped to the month.
pub fn add_months(date: Date, months: i32) -> Date {
    let total = date.year() * 12 + i32::from(u8::from(date.month())) - 1 + months;
    let (year, month0) = (total.div_euclid(12), total.rem_euclid(12));
    let month = u8::try_from(month0 + 1)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .unwrap_or(Month::January);
    let day = date.day().min(time::util::days_in_month(month, year));
    Date::from_calendar_date(year, month, day).unwrap_or(date)
}

/// The earliest service end that still keeps a client visible on `today` (CL-13).
pub fn visibility_cutoff(today: Date) -> Date {
    add_months(today, -(VISIBILITY_MONTHS as i32))
}

/// The last day on which a client whose last service ended on `last_end` is visible.
pub fn visible_until(last_end: Date) -> Date {
    let mut day = add_months(last_end, VISIBILITY_MONTHS as i32);
    // Around 29 February the clamped month arithmetic may allow one more day.
    while let Some(next) = day.next_day() {
        if visibility_cutoff(next) <= last_end {
            day = next;
        } else {
            break;
        }
    }
    day
}

macro_rules! provider_services {
    ($registrar_id:expr, $provider_id:expr) => {
        other_services
            .filter(other_services.field(services::registrar_id).eq($registrar_id))
            .filter(other_services.field(services::provider_id).eq($provider_id))
            .select(other_services.field(services::id))
    };
}

/// A subquery narrowed to one client (`(id)`) or not (`all`). The subqueries of
/// [`only_visible`] are not correlated with the outer query, so without the narrowing a
/// question about one client would walk every service of the registrar.
macro_rules! narrowed {
    ($query:expr, all) => {
        $query
    };
    ($query:expr, $client:expr) => {
        $query.filter(other_services.field(services::client_id).eq($client))
    };
}

/// The body of [`only_visible`], for one narrowing (see [`narrowed`]).
macro_rules! visible_filter {
    ($query:expr, $registrar:expr, $reach:expr, $today:expr, $client:tt) => {{
        let (query, registrar, today) = ($query, $registrar, $today);
        let cutoff = visibility_cutoff(today);
        let query = query.filter(services::client_id.eq_any(narrowed!(
            clients_with_service_ending_after!(registrar.clone(), cutoff),
            $client
        )));
        match $reach {
            Reach::Registrar { .. } => query,
            Reach::Provider { provider_id } => {
                let ongoing = narrowed!(
                    other_services
                        .filter(other_services.field(services::registrar_id).eq(registrar.clone()))
                        .filter(other_services.field(services::provider_id).eq(provider_id.clone()))
                        .filter(other_services.field(services::status).eq("active"))
                        .filter(other_services.field(services::valid_to).ge(today))
                        .select(other_services.field(services::client_id)),
                    $client
                );
                let recent_events = service_events::table
                    .filter(service_events::registrar_id.eq(registrar.clone()))
                    .filter(service_events::delivered_on.ge(cutoff))
                    .filter(service_events::service_id.eq_any(narrowed!(
                        provider_services!(registrar.clone(), provider_id.clone()),
                        $client
                    )))
                    .select(service_events::client_id);
                let any_events = service_events::table
                    .filter(service_events::registrar_id.eq(registrar.clone()))
                    .filter(service_events::service_id.eq_any(narrowed!(
                        provider_services!(registrar.clone(), provider_id.clone()),
                        $client
                    )))
                    .select(service_events::client_id);
                let own_recent = narrowed!(
                    clients_with_service_ending_after!(registrar.clone(), cutoff)
                        .filter(other_services.field(services::provider_id).eq(provider_id.clone())),
                    $client
                );
                query.filter(
                    services::client_id
                        .eq_any(ongoing)
                        .or(services::client_id.eq_any(recent_events))
                        .or(services::client_id
                            .ne_all(any_events)
                            .and(services::client_id.eq_any(own_recent))),
                )
            }
            Reach::Nothing => query.filter(services::registrar_id.is_null()),
        }
    }};
}

/// Narrows a query over `services` selecting `client_id` to the clients `reach` still sees on
/// `today` (CL-13). The one place the end of visibility is decided for reads. `client`, when
/// the query is about one client, narrows the subqueries to it as well (same answer, found by
/// index instead of by walking the registrar's services).
pub(crate) fn only_visible<'a>(
    query: services::BoxedQuery<'a, DbBackend, Text>,
    registrar_id: &str,
    reach: &Reach,
    today: Date,
    client: Option<&str>,
) -> services::BoxedQuery<'a, DbBackend, Text> {
    let registrar = registrar_id.to_owned();
    match client {
        Some(id) => visible_filter!(query, registrar, reach, today, (id.to_owned())),
        None => visible_filter!(query, registrar, reach, today, all),
    }
}

/// Whether the registrar still sees on `today` a client whose services (all of them in its
/// register) have these closing dates and validity ends (CL-13): the rule of
/// `clients_with_service_ending_after!`, for a client whose services are already in hand.
pub(crate) fn registrar_sees(services: impl IntoIterator<Item = (Option<Date>, Date)>, today: Date) -> bool {
    let cutoff = visibility_cutoff(today);
    services
        .into_iter()
        .any(|(closed_on, valid_to)| crate::service_ends_on(closed_on, valid_to) >= cutoff)
}

/// Whether `reach` still sees client `client_id` on `today` (CL-13).
pub(crate) fn is_visible(
    conn: &mut DbConnection,
    registrar_id: &str,
    reach: &Reach,
    client_id: &str,
    today: Date,
) -> QueryResult<bool> {
    let query = services::table
        .filter(services::registrar_id.eq(registrar_id.to_owned()))
        .filter(services::client_id.eq(client_id.to_owned()))
        .select(services::client_id)
        .into_boxed();
    let found: Vec<String> = only_visible(query, registrar_id, reach, today, Some(client_id))
        .limit(1)
        .load(conn)?;
    Ok(!found.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn cl_13_visibility_cutoff_is_twelve_calendar_months() {
        assert_eq!(visibility_cutoff(date!(2027 - 03 - 15)), date!(2026 - 03 - 15));
        assert_eq!(visibility_cutoff(date!(2028 - 02 - 29)), date!(2027 - 02 - 28));
        assert_eq!(visible_until(date!(2026 - 03 - 15)), date!(2027 - 03 - 15));
        assert_eq!(visible_until(date!(2024 - 02 - 29)), date!(2025 - 02 - 28));
        // A client whose last service ended 28 Feb 2027 is still visible on 29 Feb 2028.
        assert_eq!(visible_until(date!(2027 - 02 - 28)), date!(2028 - 02 - 29));
        for end in [date!(2026 - 01 - 31), date!(2027 - 02 - 28), date!(2024 - 02 - 29)] {
            let until = visible_until(end);
            assert!(visibility_cutoff(until) <= end);
            assert!(visibility_cutoff(until.next_day().unwrap()) > end);
        }
    }
}
