//! The list of clients due for anonymisation within a lead time (CL-14), which the staff
//! review before the run; every listed client is a logged use.

use std::collections::HashMap;

use diesel::prelude::*;
use rekisteri_accounts::Permission;
use rekisteri_audit::{DataUse, Outcome};
use rekisteri_core::Refusal;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::{clients, services};
use serde::Serialize;
use time::{Date, Duration};
use utoipa::ToSchema;

use super::visibility::{visibility_cutoff, visible_until};
use super::{DEFAULT_LEAD_DAYS, MAX_LEAD_DAYS, lifecycle_date, other_services};
use crate::access::{Reach, decide_for};
use crate::{ClientRegister, ClientsError, Request, at_primitive, validation};

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
pub(super) fn due_ids(
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

/// One page of the due list: the clients due within `lead` days of `today` after `after`, with
/// their subject indexes, what the list says of each, and the next page's cursor.
pub(super) type DuePageIds = (
    Vec<(String, Option<Vec<u8>>)>,
    HashMap<String, DueClient>,
    Option<String>,
);

pub(super) fn due_page(
    conn: &mut DbConnection,
    registrar_id: &str,
    reach: &Reach,
    today: Date,
    lead: i64,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<DuePageIds> {
    let day = today.saturating_add(Duration::days(lead));
    let mut ids = due_ids(conn, registrar_id, reach, day, after, limit + 1)?;
    let more = ids.len() as i64 > limit;
    ids.truncate(usize::try_from(limit).unwrap_or(0));
    let plain: Vec<String> = ids.iter().map(|(id, _)| id.clone()).collect();
    let entries = due_entries(conn, registrar_id, &plain, today)?;
    let next_cursor = if more { plain.last().cloned() } else { None };
    Ok((ids, entries, next_cursor))
}

pub(super) fn due_entries(
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
        let end = crate::service_ends_on(closed_on, valid_to);
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

pub(super) fn check_lead(lead_days: Option<i64>) -> Result<i64, ClientsError> {
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
    let (ids, mut entries, next_cursor) = due_page(
        conn,
        registrar_id,
        &decision.reach,
        request.now.date(),
        lead,
        after,
        limit,
    )?;
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
