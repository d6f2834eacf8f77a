//! The lifecycle of a client record (CL-13..CL-15): end of visibility, the list of clients due
//! for anonymisation and their archive export, the anonymisation run and the deletion run.
//!
//! Decisions (see also `docs/architecture.md`):
//!
//! - **When a service ends.** A closed service ends on its `closed_on`; a service still marked
//!   active ends on its `valid_to` (a grant whose validity has run out is no longer active even
//!   if nobody closed it: otherwise a forgotten closing would keep a person identifiable for
//!   ever). A service whose validity has not ended is active, and keeps its client visible.
//! - **Registrar (CL-13).** A client is visible to the registrar while some service of theirs
//!   ended on or after [`visibility_cutoff`] (today moved back by 12 calendar months, 29 Feb
//!   clamped to 28 Feb), i.e. until 12 months after the last service ended. This is a property
//!   of the client, not of the caller's service areas; the area rules (AX-4) apply on top.
//! - **Provider (CL-13).** A provider sees a client the registrar still sees while the
//!   provider has an active service for them, or recorded a service event for them on or after
//!   the cut-off; a provider that never recorded an event for the client falls back to its own
//!   services' ends (closing date or validity end).
//! - A client past the end of visibility is 404 to everyone, exactly like a missing one, until
//!   the anonymisation run (daily) anonymises it.
//! - **Anonymisation (CL-14)** removes the identity code, its blind index (`subject_index`),
//!   names, address, e-mail, phone, next of kin, language, the move and death dates, the
//!   protection-order flag, the services' decision references and additional information and the
//!   events' notes (free text and references can identify). It keeps the home municipality,
//!   gender, `birth_year` (the age group's source, taken from the identity code before the
//!   code goes), the services, events, quantities and amounts. The change-history rows of the
//!   client, its services and events are deleted in the same transaction: they hold the old
//!   values as ciphertext the keys still open. Proxies and care-team memberships are deleted with their
//!   history.
//! - **Deletion (CL-15)**: an anonymised client, its services and events are deleted
//!   `organisations.anonymised_retention_years` (default 5, 1–100) whole years after
//!   `anonymised_at`, with their change-history rows.
//! - A client who died (`died_on`) or moved out (`moved_out_on`) on or before today gets their
//!   active services closed by the anonymisation run on that date (clamped into the service's
//!   validity), so that CL-13 then runs its course.
//! - Both runs work in batches of [`BATCH`] clients per transaction and are safe to re-run: a
//!   second run finds nothing to do and reports zeros.

use std::collections::{BTreeMap, HashMap};

use diesel::prelude::*;
use diesel::sql_types::Text;
use rekisteri_accounts::Permission;
use rekisteri_audit::{ActorKind, DataUse, DisclosureEntry, NewEntry, Outcome, SecurityEvent};
use rekisteri_core::Refusal;
use rekisteri_core::{PersonalIdentityCode, TemporaryCodesAllowed};
use rekisteri_db::schema::{
    care_team_members, change_history, client_death_closures, client_previous_codes, clients, proxies, service_events,
    services, vtj_monitored, vtj_staged,
};
use rekisteri_db::{DbBackend, DbConnection, write_transaction_as};
use serde::Serialize;
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime};
use utoipa::ToSchema;

use crate::access::{Reach, decide_for};
use crate::clients::{load_client, load_services_of, open_client};
use crate::sealed::RowCipher;
use crate::{
    Client, ClientRegister, ClientsError, Quantity, Request, ServiceEvent, at_primitive, format_time, validation,
};

time::serde::format_description!(lifecycle_date, Date, "[year]-[month]-[day]");

/// Months a client stays visible after their last service ended (CL-13).
pub const VISIBILITY_MONTHS: u32 = 12;
/// The default lead time of the due list (CL-14).
pub const DEFAULT_LEAD_DAYS: i64 = 30;
/// The longest lead time a caller may ask for.
pub const MAX_LEAD_DAYS: i64 = 365;
/// Clients per transaction in the runs: memory stays flat however large the register is.
pub const BATCH: i64 = 1000;

diesel::define_sql_function! {
    /// Registered only on the lifecycle runs' own SQLite connection: lets them purge the change
    /// history of the clients they anonymise or delete (migration 000009).
    fn rekisteri_lifecycle_allowed() -> Integer;
}

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

diesel::alias!(services as other_services: OtherServices);

/// The ids of the registrar's clients with a service that ended on or after `$cutoff` (or has
/// not ended yet), as a subquery (over an alias of `services`, so that it nests in queries of
/// `services`).
macro_rules! clients_with_service_ending_after {
    ($registrar_id:expr, $cutoff:expr) => {
        other_services
            .filter(other_services.field(services::registrar_id).eq($registrar_id))
            .filter(
                other_services
                    .field(services::closed_on)
                    .is_not_null()
                    .and(other_services.field(services::closed_on).assume_not_null().ge($cutoff))
                    .or(other_services
                        .field(services::closed_on)
                        .is_null()
                        .and(other_services.field(services::valid_to).ge($cutoff))),
            )
            .select(other_services.field(services::client_id))
    };
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
        .any(|(closed_on, valid_to)| closed_on.unwrap_or(valid_to) >= cutoff)
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

/// A client due for anonymisation within the lead time (CL-14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DueClient {
    pub client_id: String,
    /// When the client's last service ended (closing date, or validity end); absent when the
    /// client has no service at all.
    #[serde(with = "lifecycle_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub last_service_ended_on: Option<Date>,
    /// The last day the client is visible (CL-13).
    #[serde(with = "lifecycle_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub visible_until: Option<Date>,
    /// The first day the anonymisation run anonymises the client.
    #[serde(with = "lifecycle_date")]
    #[schema(value_type = String, format = Date)]
    pub anonymised_from: Date,
}

/// One page of the due list.
#[derive(Debug, Clone)]
pub struct DuePage {
    pub items: Vec<DueClient>,
    pub next_cursor: Option<String>,
}

/// The registrar's clients that the reach covers and that will no longer be visible on
/// `today + lead_days`: (id, subject index) in id order.
fn due_ids(
    conn: &mut DbConnection,
    registrar_id: &str,
    reach: &Reach,
    day: Date,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<(String, Option<Vec<u8>>)>> {
    let mut query = clients::table
        .filter(clients::registrar_id.eq(registrar_id.to_owned()))
        .filter(clients::anonymised_at.is_null())
        .filter(clients::id.ne_all(clients_with_service_ending_after!(
            registrar_id.to_owned(),
            visibility_cutoff(day)
        )))
        .order(clients::id)
        .limit(limit)
        .select((clients::id, clients::subject_index))
        .into_boxed();
    match reach {
        Reach::Registrar { service_types: None } => {}
        Reach::Registrar {
            service_types: Some(types),
        } => {
            let in_areas = services::table
                .filter(services::registrar_id.eq(registrar_id.to_owned()))
                .filter(services::service_type.eq_any(types.clone()))
                .select(services::client_id);
            query = query.filter(clients::id.eq_any(in_areas));
        }
        Reach::Provider { .. } | Reach::Nothing => return Ok(Vec::new()),
    }
    if let Some(after) = after {
        query = query.filter(clients::id.gt(after.to_owned()));
    }
    query.load(conn)
}

fn due_entries(
    conn: &mut DbConnection,
    registrar_id: &str,
    ids: &[String],
    today: Date,
) -> QueryResult<HashMap<String, DueClient>> {
    let ends: Vec<(String, Option<Date>, Date)> = services::table
        .filter(services::registrar_id.eq(registrar_id))
        .filter(services::client_id.eq_any(ids))
        .select((services::client_id, services::closed_on, services::valid_to))
        .load(conn)?;
    let mut last: HashMap<String, Date> = HashMap::new();
    for (client, closed_on, valid_to) in ends {
        let end = closed_on.unwrap_or(valid_to);
        let slot = last.entry(client).or_insert(end);
        *slot = (*slot).max(end);
    }
    Ok(ids
        .iter()
        .map(|id| {
            let ended = last.get(id).copied();
            let until = ended.map(visible_until);
            let from = until.and_then(Date::next_day).unwrap_or(today).max(today);
            (
                id.clone(),
                DueClient {
                    client_id: id.clone(),
                    last_service_ended_on: ended,
                    visible_until: until,
                    anonymised_from: from,
                },
            )
        })
        .collect())
}

fn check_lead(lead_days: Option<i64>) -> Result<i64, ClientsError> {
    match lead_days {
        None => Ok(DEFAULT_LEAD_DAYS),
        Some(days) if (0..=MAX_LEAD_DAYS).contains(&days) => Ok(days),
        Some(_) => Err(validation("lead_days", format!("must be 0-{MAX_LEAD_DAYS}"))),
    }
}

/// The clients due for anonymisation within `lead_days` (default 30): those who will no longer
/// be visible to the registrar by then, including those already past it and not yet
/// anonymised (CL-14). The registrar's staff with `read_clients`, within their service areas;
/// every listed client is a logged use (`client_lifecycle`).
pub fn due_for_anonymisation(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    lead_days: Option<i64>,
    after: Option<&str>,
    limit: i64,
) -> Result<DuePage, ClientsError> {
    let lead = check_lead(lead_days)?;
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::ReadClients)?;
    if !decision.is_registrar() {
        return Err(ClientsError::Refused(Refusal::NotFound));
    }
    let today = request.now.date();
    let day = today.saturating_add(Duration::days(lead));
    let mut ids = due_ids(conn, registrar_id, &decision.reach, day, after, limit + 1)?;
    let more = ids.len() as i64 > limit;
    ids.truncate(usize::try_from(limit).unwrap_or(0));
    let plain: Vec<String> = ids.iter().map(|(id, _)| id.clone()).collect();
    let mut entries = due_entries(conn, registrar_id, &plain, today)?;
    let next_cursor = if more { plain.last().cloned() } else { None };
    let items = register
        .audit
        .read_personal_data(conn, &decision.context(&request.audit), at, |_| {
            let mut items = Vec::with_capacity(ids.len());
            let mut uses = Vec::with_capacity(ids.len());
            for (id, subject) in &ids {
                if let Some(entry) = entries.remove(id) {
                    items.push(entry);
                }
                uses.push(DataUse {
                    subject_index: subject.as_deref().and_then(|s| s.try_into().ok()),
                    data_kind: "client_lifecycle".into(),
                    data_id: Some(id.clone()),
                    outcome: Outcome::Used,
                });
            }
            Ok::<_, ClientsError>((items, uses))
        })?;
    Ok(DuePage { items, next_cursor })
}

/// One client of the archive export: the whole record in clear.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ArchiveRecord {
    #[serde(flatten)]
    pub due: DueClient,
    pub client: Client,
    /// Every event of the client's services (in the caller's reach), in delivery order.
    pub events: Vec<ServiceEvent>,
}

/// One page of the archive export.
#[derive(Debug, Clone)]
pub struct ArchivePage {
    pub items: Vec<ArchiveRecord>,
    pub next_cursor: Option<String>,
}

/// The archive export of the clients due (CL-14): everything the record holds, in clear, for
/// the registrar's long-term archive. Needs `read_clients` and `export_client_archive`; every
/// exported client is a usage entry and a disclosure-log entry (recipient: the registrar's
/// archive), durable before the data leaves.
pub fn archive_export(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    lead_days: Option<i64>,
    after: Option<&str>,
    limit: i64,
) -> Result<ArchivePage, ClientsError> {
    let lead = check_lead(lead_days)?;
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::ReadClients)?;
    if !decision.is_registrar() {
        return Err(ClientsError::Refused(Refusal::NotFound));
    }
    if !request.principal.can(Permission::ExportClientArchive) {
        return Err(ClientsError::Refused(Refusal::Forbidden(
            "the caller's roles do not grant export_client_archive".into(),
        )));
    }
    let today = request.now.date();
    let day = today.saturating_add(Duration::days(lead));
    let mut ids = due_ids(conn, registrar_id, &decision.reach, day, after, limit + 1)?;
    let more = ids.len() as i64 > limit;
    ids.truncate(usize::try_from(limit).unwrap_or(0));
    let plain: Vec<String> = ids.iter().map(|(id, _)| id.clone()).collect();
    let mut entries = due_entries(conn, registrar_id, &plain, today)?;
    let mut rows = Vec::with_capacity(plain.len());
    for id in &plain {
        if let Some(row) = load_client(conn, registrar_id, id)? {
            rows.push(row);
        }
    }
    let service_rows = load_services_of(conn, registrar_id, &plain)?;
    type EventRow = (
        String,
        String,
        String,
        Date,
        i64,
        i64,
        Option<Vec<u8>>,
        PrimitiveDateTime,
    );
    let event_rows: Vec<EventRow> = service_events::table
        .filter(service_events::registrar_id.eq(registrar_id))
        .filter(service_events::client_id.eq_any(&plain))
        .order((
            service_events::client_id,
            service_events::delivered_on,
            service_events::created_at,
            service_events::id,
        ))
        .select((
            service_events::client_id,
            service_events::id,
            service_events::service_id,
            service_events::delivered_on,
            service_events::quantity_centi,
            service_events::unit_price_cents,
            service_events::note,
            service_events::created_at,
        ))
        .load(conn)?;
    let next_cursor = if more { plain.last().cloned() } else { None };
    let context = decision.context(&request.audit);
    let items = register.audit.audited_read(conn, |_| {
        let mut items = Vec::with_capacity(rows.len());
        let mut log = Vec::with_capacity(rows.len() * 2);
        for row in &rows {
            let client = open_client(register, row, &service_rows, &decision)?;
            let reached: Vec<&str> = client.services.iter().map(|s| s.id.as_str()).collect();
            let mut events = Vec::new();
            for (client_id, id, service_id, delivered_on, quantity, price, note, created_at) in &event_rows {
                if client_id != &row.id || !reached.contains(&service_id.as_str()) {
                    continue;
                }
                let note = RowCipher::new(&register.keyring, "service_events", id).open_opt("note", note.as_deref())?;
                events.push(ServiceEvent {
                    id: id.clone(),
                    service_id: service_id.clone(),
                    delivered_on: *delivered_on,
                    quantity: Quantity(*quantity),
                    unit_price_cents: *price,
                    note,
                    created_at: format_time(*created_at),
                });
            }
            let subject = row.subject();
            log.push(context.usage_entry(
                DataUse {
                    subject_index: subject,
                    data_kind: "client_archive_export".into(),
                    data_id: Some(row.id.clone()),
                    outcome: Outcome::Used,
                },
                at,
            ));
            log.push(NewEntry::Disclosure(DisclosureEntry {
                occurred_at: at,
                registrar_id: registrar_id.to_owned(),
                subject_index: subject,
                description: format!("client {} exported to the archive before anonymisation (CL-14)", row.id),
                discloser_kind: context.actor_kind,
                discloser_id: context.actor_id.clone(),
                recipient_kind: "archive".into(),
                recipient_id: registrar_id.to_owned(),
                recipient_name: Some("the registrar's long-term archive".into()),
                purpose: "long-term archiving before anonymisation".into(),
                legal_basis: "the registrar's duty to archive (archive act 831/1994), source 000 §9".into(),
                request_id: context.request_id.clone(),
            }));
            let due = entries.remove(&row.id).unwrap_or(DueClient {
                client_id: row.id.clone(),
                last_service_ended_on: None,
                visible_until: None,
                anonymised_from: today,
            });
            items.push(ArchiveRecord { due, client, events });
        }
        Ok::<_, ClientsError>((items, log))
    })?;
    Ok(ArchivePage { items, next_cursor })
}

/// What one anonymisation run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct AnonymiseReport {
    /// Active services closed because their client died or moved out (CL-15).
    pub services_closed: u64,
    pub clients_anonymised: u64,
}

/// What one deletion run did (CL-15).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct DeletionReport {
    pub clients_deleted: u64,
    pub services_deleted: u64,
    pub events_deleted: u64,
}

/// Gives `conn` (a connection of the run's own) the right to purge change history.
fn allow_history_purge(conn: &mut DbConnection) -> Result<(), ClientsError> {
    if let DbConnection::Sqlite(c) = conn {
        rekisteri_lifecycle_allowed_utils::register_impl(c, || 1)?;
    }
    Ok(())
}

fn begin_purge(conn: &mut DbConnection) -> QueryResult<()> {
    if let DbConnection::Postgres(c) = conn {
        diesel::sql_query("SET LOCAL rekisteri.lifecycle_purge = 'on'").execute(c)?;
    }
    Ok(())
}

fn end_purge(conn: &mut DbConnection) -> QueryResult<()> {
    if let DbConnection::Postgres(c) = conn {
        diesel::sql_query("SET LOCAL rekisteri.lifecycle_purge = 'off'").execute(c)?;
    }
    Ok(())
}

/// Deletes the change history of the clients `ids` and of their services and events (in
/// chunks: a client may have many events, and SQLite binds at most 32 766 values).
/// Purges the change history of the clients `ids` and of every row about them; their proxies and
/// care-team memberships (identity data of the client's circle) are deleted first, so that the
/// history rows those deletes write go too.
fn purge_history(conn: &mut DbConnection, registrar_id: &str, ids: &[String]) -> QueryResult<usize> {
    let proxy_ids: Vec<String> = proxies::table
        .filter(proxies::registrar_id.eq(registrar_id))
        .filter(proxies::client_id.eq_any(ids))
        .select(proxies::id)
        .load(conn)?;
    let member_ids: Vec<String> = care_team_members::table
        .filter(care_team_members::registrar_id.eq(registrar_id))
        .filter(care_team_members::client_id.eq_any(ids))
        .select(care_team_members::id)
        .load(conn)?;
    diesel::delete(
        proxies::table
            .filter(proxies::registrar_id.eq(registrar_id))
            .filter(proxies::client_id.eq_any(ids)),
    )
    .execute(conn)?;
    diesel::delete(
        care_team_members::table
            .filter(care_team_members::registrar_id.eq(registrar_id))
            .filter(care_team_members::client_id.eq_any(ids)),
    )
    .execute(conn)?;
    let service_ids: Vec<String> = services::table
        .filter(services::registrar_id.eq(registrar_id))
        .filter(services::client_id.eq_any(ids))
        .select(services::id)
        .load(conn)?;
    let event_ids: Vec<String> = service_events::table
        .filter(service_events::registrar_id.eq(registrar_id))
        .filter(service_events::client_id.eq_any(ids))
        .select(service_events::id)
        .load(conn)?;
    let mut purged = 0;
    for (table, rows) in [
        ("clients", ids),
        ("services", &service_ids[..]),
        ("service_events", &event_ids[..]),
        ("proxies", &proxy_ids[..]),
        ("care_team_members", &member_ids[..]),
    ] {
        for chunk in rows.chunks(10_000) {
            purged += diesel::delete(
                change_history::table
                    .filter(change_history::table_name.eq(table))
                    .filter(change_history::row_id.eq_any(chunk)),
            )
            .execute(conn)?;
        }
    }
    Ok(purged)
}

/// The registrars in id order, with how long each keeps anonymised clients.
fn registrars(conn: &mut DbConnection) -> QueryResult<Vec<(String, i32)>> {
    let mut registrars: Vec<(String, i32)> = rekisteri_accounts::directory::registrars(conn)?
        .into_iter()
        .map(|r| (r.id, r.anonymised_retention_years))
        .collect();
    registrars.sort();
    Ok(registrars)
}

fn run_event(event_type: &str, at: PrimitiveDateTime, details: serde_json::Value) -> NewEntry {
    NewEntry::Security(SecurityEvent {
        occurred_at: at,
        organisation_id: None,
        event_type: event_type.to_owned(),
        actor_kind: ActorKind::System,
        actor_id: None,
        details,
        request_id: None,
    })
}

/// Closes the active services of clients who died or moved out on or before `today` (CL-15).
fn close_services_of_departed(
    conn: &mut DbConnection,
    registrar_id: &str,
    actor: &str,
    today: Date,
    at: PrimitiveDateTime,
) -> Result<u64, ClientsError> {
    let mut closed = 0u64;
    // One pass over the services in id order, each joined to its client by key.
    let mut after: Option<String> = None;
    loop {
        let mut query = services::table
            .inner_join(
                clients::table.on(clients::registrar_id
                    .eq(services::registrar_id)
                    .and(clients::id.eq(services::client_id))),
            )
            .filter(services::registrar_id.eq(registrar_id.to_owned()))
            .filter(services::status.eq("active"))
            .filter(clients::anonymised_at.is_null())
            .filter(
                clients::died_on
                    .is_not_null()
                    .and(clients::died_on.assume_not_null().le(today))
                    .or(clients::moved_out_on
                        .is_not_null()
                        .and(clients::moved_out_on.assume_not_null().le(today))),
            )
            .into_boxed();
        if let Some(after) = &after {
            query = query.filter(services::id.gt(after.clone()));
        }
        type Row = (String, String, Date, Date, Option<Date>, Option<Date>);
        let rows: Vec<Row> = query
            .order(services::id)
            .limit(BATCH)
            .select((
                services::id,
                services::client_id,
                services::valid_from,
                services::valid_to,
                clients::died_on,
                clients::moved_out_on,
            ))
            .load(conn)?;
        let Some((last, ..)) = rows.last() else {
            return Ok(closed);
        };
        after = Some(last.clone());
        write_transaction_as(conn, actor, |conn| {
            for (id, _, valid_from, valid_to, died, moved) in &rows {
                let left = [*died, *moved]
                    .into_iter()
                    .flatten()
                    .filter(|d| *d <= today)
                    .min()
                    .unwrap_or(today);
                let closed_on = left.clamp(*valid_from, (*valid_to).max(*valid_from));
                diesel::update(
                    services::table
                        .filter(services::registrar_id.eq(registrar_id))
                        .filter(services::id.eq(id))
                        .filter(services::status.eq("active")),
                )
                .set((
                    services::status.eq("closed"),
                    services::closed_on.eq(closed_on),
                    services::version.eq(services::version + 1),
                    services::updated_at.eq(at),
                ))
                .execute(conn)?;
            }
            Ok::<_, ClientsError>(())
        })?;
        closed += rows.len() as u64;
    }
}

/// The year of birth of a client row about to be anonymised: the stored one, or derived from
/// the identity code (rows created before migration 000009). The code never leaves this
/// function; only the year does.
fn birth_year_of(
    register: &ClientRegister,
    id: &str,
    stored: Option<i32>,
    identity_code: Option<&[u8]>,
) -> Result<Option<i32>, ClientsError> {
    if stored.is_some() {
        return Ok(stored);
    }
    let Some(code) = RowCipher::new(&register.keyring, "clients", id).open_opt("identity_code", identity_code)? else {
        return Ok(None);
    };
    Ok(PersonalIdentityCode::parse(&code, TemporaryCodesAllowed::Yes)
        .ok()
        .map(|c| c.birth_date().year()))
}

/// The index of `sealed`'s identity code under every blind-index key held. The code never
/// leaves this function; only its indexes do.
fn code_candidates(
    register: &ClientRegister,
    table: &'static str,
    row_id: &str,
    sealed: &[u8],
) -> Result<Vec<Vec<u8>>, ClientsError> {
    let clear = RowCipher::new(&register.keyring, table, row_id).open("identity_code", sealed)?;
    Ok(PersonalIdentityCode::parse(&clear, TemporaryCodesAllowed::Yes)
        .map(|code| rekisteri_audit::subject_index_candidates(&register.keyring, &code))
        .unwrap_or_default())
}

/// What VTJ keeps of the clients (CL-14): their staged messages, earlier identity codes, place
/// on the monitored list and on the death work list go with the identity data.
fn purge_population_data(
    conn: &mut DbConnection,
    register: &ClientRegister,
    registrar_id: &str,
    ids: &[String],
) -> Result<(), ClientsError> {
    /// A client's id, index and sealed identity code.
    type Current = (String, Option<Vec<u8>>, Option<Vec<u8>>);
    let current: Vec<Current> = clients::table
        .filter(clients::registrar_id.eq(registrar_id))
        .filter(clients::id.eq_any(ids))
        .select((clients::id, clients::subject_index, clients::identity_code))
        .load(conn)?;
    let previous: Vec<(String, Vec<u8>, Vec<u8>)> = client_previous_codes::table
        .filter(client_previous_codes::registrar_id.eq(registrar_id))
        .filter(client_previous_codes::client_id.eq_any(ids))
        .select((
            client_previous_codes::client_id,
            client_previous_codes::subject_index,
            client_previous_codes::identity_code,
        ))
        .load(conn)?;
    // During a key rotation a message may have been staged under either blind-index key,
    // whichever the row holds now: the codes are opened for their indexes under every key.
    // With one key held the stored indexes are the only ones, and nothing is opened.
    let rotating = register.keyring.blind_index_key_ids().len() > 1;
    let mut subjects: Vec<Vec<u8>> = Vec::with_capacity(current.len() + previous.len());
    for (id, subject, sealed) in &current {
        subjects.extend(subject.iter().cloned());
        if let Some(sealed) = sealed.as_deref().filter(|_| rotating) {
            subjects.extend(code_candidates(register, "clients", id, sealed)?);
        }
    }
    for (client_id, subject, sealed) in &previous {
        subjects.push(subject.clone());
        if rotating {
            subjects.extend(code_candidates(register, "client_previous_codes", client_id, sealed)?);
        }
    }
    subjects.sort_unstable();
    subjects.dedup();
    for chunk in subjects.chunks(500) {
        diesel::delete(
            vtj_staged::table
                .filter(vtj_staged::registrar_id.eq(registrar_id))
                .filter(vtj_staged::subject_index.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    diesel::delete(
        client_previous_codes::table
            .filter(client_previous_codes::registrar_id.eq(registrar_id))
            .filter(client_previous_codes::client_id.eq_any(ids)),
    )
    .execute(conn)?;
    diesel::delete(
        vtj_monitored::table
            .filter(vtj_monitored::registrar_id.eq(registrar_id))
            .filter(vtj_monitored::client_id.eq_any(ids)),
    )
    .execute(conn)?;
    diesel::delete(
        client_death_closures::table
            .filter(client_death_closures::registrar_id.eq(registrar_id))
            .filter(client_death_closures::client_id.eq_any(ids)),
    )
    .execute(conn)?;
    Ok(())
}

/// Anonymises one batch of clients (CL-14) in one transaction.
fn anonymise_batch(
    conn: &mut DbConnection,
    register: &ClientRegister,
    registrar_id: &str,
    actor: &str,
    years: &BTreeMap<Option<i32>, Vec<String>>,
    at: PrimitiveDateTime,
) -> Result<(), ClientsError> {
    let ids: Vec<String> = years.values().flatten().cloned().collect();
    write_transaction_as(conn, actor, |conn| {
        begin_purge(conn)?;
        purge_population_data(conn, register, registrar_id, &ids)?;
        for (year, group) in years {
            diesel::update(
                clients::table
                    .filter(clients::registrar_id.eq(registrar_id))
                    .filter(clients::id.eq_any(group))
                    .filter(clients::anonymised_at.is_null()),
            )
            .set((
                clients::subject_index.eq(None::<Vec<u8>>),
                clients::identity_code.eq(None::<Vec<u8>>),
                clients::first_names.eq(None::<Vec<u8>>),
                clients::surname.eq(None::<Vec<u8>>),
                clients::email.eq(None::<Vec<u8>>),
                clients::phone.eq(None::<Vec<u8>>),
                clients::next_of_kin.eq(None::<Vec<u8>>),
                clients::address.eq(None::<Vec<u8>>),
                clients::temporary_address.eq(None::<Vec<u8>>),
                clients::postal_address.eq(None::<Vec<u8>>),
                clients::guardianship.eq(None::<Vec<u8>>),
                clients::language.eq(None::<String>),
                clients::moved_in_on.eq(None::<Date>),
                clients::moved_in_on_precision.eq(None::<String>),
                clients::moved_out_on.eq(None::<Date>),
                clients::moved_out_on_precision.eq(None::<String>),
                clients::died_on.eq(None::<Date>),
                clients::died_on_precision.eq(None::<String>),
                clients::protection_order.eq(false),
                clients::birth_year.eq(*year),
                clients::anonymised_at.eq(Some(at)),
                clients::version.eq(clients::version + 1),
                clients::updated_at.eq(at),
            ))
            .execute(conn)?;
        }
        diesel::update(
            services::table
                .filter(services::registrar_id.eq(registrar_id))
                .filter(services::client_id.eq_any(&ids)),
        )
        .set((
            services::additional_info.eq(None::<Vec<u8>>),
            services::decision_ref.eq(None::<String>),
        ))
        .execute(conn)?;
        diesel::update(
            service_events::table
                .filter(service_events::registrar_id.eq(registrar_id))
                .filter(service_events::client_id.eq_any(&ids)),
        )
        .set(service_events::note.eq(None::<Vec<u8>>))
        .execute(conn)?;
        // Proxies and care-team memberships go with the identity data (CL-14).
        purge_history(conn, registrar_id, &ids)?;
        end_purge(conn)?;
        Ok::<_, ClientsError>(())
    })
}

/// The anonymisation run (CL-14, CL-15) over every registrar at `now`: closes the services of
/// clients who died or moved out, then anonymises every client no longer visible to the
/// registrar, [`BATCH`] at a time. Writes a security event with the counts. `conn` must be a
/// connection of its own ([`rekisteri_db::Pool::connect_unpooled`]): on SQLite it gains the
/// right to purge change history.
pub fn run_anonymise(
    conn: &mut DbConnection,
    register: &ClientRegister,
    now: OffsetDateTime,
) -> Result<AnonymiseReport, ClientsError> {
    allow_history_purge(conn)?;
    let at = at_primitive(now);
    let today = now.date();
    let actor = "job:anonymise";
    let mut report = AnonymiseReport::default();
    let mut per_registrar = serde_json::Map::new();
    for (registrar_id, _) in registrars(conn)? {
        let closed = close_services_of_departed(conn, &registrar_id, actor, today, at)?;
        let mut anonymised = 0u64;
        // One pass in id order; each client is checked against its own services through the
        // index (a correlated NOT EXISTS), so a batch costs the same at the end of a million
        // clients as at the start.
        let mut after: Option<String> = None;
        loop {
            let mut query = clients::table
                .filter(clients::registrar_id.eq(registrar_id.clone()))
                .filter(clients::anonymised_at.is_null())
                .filter(diesel::dsl::not(diesel::dsl::exists(
                    clients_with_service_ending_after!(registrar_id.clone(), visibility_cutoff(today))
                        .filter(other_services.field(services::client_id).eq(clients::id)),
                )))
                .into_boxed();
            if let Some(after) = &after {
                query = query.filter(clients::id.gt(after.clone()));
            }
            let batch: Vec<(String, Option<i32>, Option<Vec<u8>>)> = query
                .order(clients::id)
                .limit(BATCH)
                .select((clients::id, clients::birth_year, clients::identity_code))
                .load(conn)?;
            let Some((last, _, _)) = batch.last() else {
                break;
            };
            after = Some(last.clone());
            let mut years: BTreeMap<Option<i32>, Vec<String>> = BTreeMap::new();
            for (id, stored, code) in &batch {
                let year = birth_year_of(register, id, *stored, code.as_deref())?;
                years.entry(year).or_default().push(id.clone());
            }
            anonymise_batch(conn, register, &registrar_id, actor, &years, at)?;
            anonymised += batch.len() as u64;
        }
        if closed > 0 || anonymised > 0 {
            per_registrar.insert(
                registrar_id.clone(),
                serde_json::json!({"services_closed": closed, "clients_anonymised": anonymised}),
            );
        }
        report.services_closed += closed;
        report.clients_anonymised += anonymised;
    }
    register.audit.append(vec![run_event(
        "clients_anonymise_run",
        at,
        serde_json::json!({
            "services_closed": report.services_closed,
            "clients_anonymised": report.clients_anonymised,
            "registrars": per_registrar,
        }),
    )])?;
    Ok(report)
}

/// The deletion run (CL-15) over every registrar at `now`: deletes each anonymised client whose
/// `anonymised_at` lies the registrar's `anonymised_retention_years` or more in the past, with
/// its services, events and their change history, [`BATCH`] clients per transaction. Writes a
/// security event with the counts. `conn` must be a connection of its own.
pub fn run_deletion(
    conn: &mut DbConnection,
    register: &ClientRegister,
    now: OffsetDateTime,
) -> Result<DeletionReport, ClientsError> {
    allow_history_purge(conn)?;
    let at = at_primitive(now);
    let mut report = DeletionReport::default();
    let mut per_registrar = serde_json::Map::new();
    for (registrar_id, retention_years) in registrars(conn)? {
        let cutoff = PrimitiveDateTime::new(add_months(at.date(), -12 * retention_years.clamp(1, 100)), at.time());
        // The rows this run deletes leave DELETE rows in the history under this actor, which
        // the same transaction purges.
        let actor = format!("job:retention:{}", uuid::Uuid::new_v4());
        let before = report.clone();
        loop {
            let ids: Vec<String> = clients::table
                .filter(clients::registrar_id.eq(registrar_id.clone()))
                .filter(clients::anonymised_at.is_not_null())
                .filter(clients::anonymised_at.assume_not_null().le(cutoff))
                .order(clients::id)
                .limit(BATCH)
                .select(clients::id)
                .load(conn)?;
            if ids.is_empty() {
                break;
            }
            let (services_deleted, events_deleted) = write_transaction_as(conn, &actor, |conn| {
                begin_purge(conn)?;
                purge_history(conn, &registrar_id, &ids)?;
                let events = diesel::delete(
                    service_events::table
                        .filter(service_events::registrar_id.eq(&registrar_id))
                        .filter(service_events::client_id.eq_any(&ids)),
                )
                .execute(conn)?;
                let services_deleted = diesel::delete(
                    services::table
                        .filter(services::registrar_id.eq(&registrar_id))
                        .filter(services::client_id.eq_any(&ids)),
                )
                .execute(conn)?;
                diesel::delete(
                    clients::table
                        .filter(clients::registrar_id.eq(&registrar_id))
                        .filter(clients::id.eq_any(&ids)),
                )
                .execute(conn)?;
                diesel::delete(
                    change_history::table
                        .filter(change_history::actor.eq(&actor))
                        .filter(change_history::operation.eq("DELETE"))
                        .filter(change_history::table_name.eq_any([
                            "clients",
                            "services",
                            "service_events",
                            "proxies",
                            "care_team_members",
                        ])),
                )
                .execute(conn)?;
                end_purge(conn)?;
                Ok::<_, ClientsError>((services_deleted as u64, events as u64))
            })?;
            report.clients_deleted += ids.len() as u64;
            report.services_deleted += services_deleted;
            report.events_deleted += events_deleted;
        }
        if report != before {
            per_registrar.insert(
                registrar_id.clone(),
                serde_json::json!({
                    "retention_years": retention_years,
                    "clients_deleted": report.clients_deleted - before.clients_deleted,
                }),
            );
        }
    }
    register.audit.append(vec![run_event(
        "clients_deletion_run",
        at,
        serde_json::json!({
            "clients_deleted": report.clients_deleted,
            "services_deleted": report.services_deleted,
            "events_deleted": report.events_deleted,
            "registrars": per_registrar,
        }),
    )])?;
    Ok(report)
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
