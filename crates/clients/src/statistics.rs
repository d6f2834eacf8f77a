//! Statistics over the client register (CL-16): aggregates of live and anonymised clients,
//! never per person.
//!
//! Decisions:
//!
//! - **Who.** The registrar's own staff and systems with `read_statistics`, over the whole
//!   register (no cell names a person, so service areas do not narrow it); providers and other
//!   organisations get 404.
//! - **Clients report.** A client counts in a cell when one of their services (of that service
//!   type) was in force during the cell's month (or, without month grouping, the period): from
//!   `valid_from` to the closing date or validity end. Dimensions: `municipality` (home
//!   municipality code; `unknown` when not stored, e.g. under a protection order), `service_type`,
//!   `month`, `age_group` (`0-17`, `18-64`, `65-74`, `75-84`, `85+`, `unknown`; age in whole years
//!   in the cell's month's year, or the period's last year, from `birth_year`) and `gender`.
//!   Each cell gives the distinct `clients` and the distinct `services`.
//! - **Services report.** Delivered service events by `provider`, `service_type`, `month`; every
//!   cell is also split by `unit` (hours and visits do not add up). Each cell gives the distinct
//!   `clients`, the number of `events`, the delivered `quantity` and `amount_cents`
//!   (settlement's rounding, CL-6).
//! - **Suppression.** A cell counting fewer than [`THRESHOLD`] (5) distinct people is published
//!   with its values `null` and `suppressed: true` (primary suppression). No totals are
//!   published; a total is a coarser query (fewer `group_by` dimensions) whose cells are
//!   suppressed by the same rule. So that such a marginal cannot back out a suppressed cell,
//!   every line of cells that differ in one dimension only gets secondary suppression: while it
//!   holds exactly one suppressed cell, or suppressed cells adding up to fewer than 5 people, its
//!   smallest published cell is suppressed too; this repeats over every dimension until nothing
//!   changes. Empty cells (nobody) are not listed.
//! - **Logging.** Statistics read no person's data out, so they write no per-person usage entry;
//!   each request writes one usage entry without a data subject (`statistics_clients` /
//!   `statistics_services`, the period and grouping as its data id), so that who asked what can
//!   be reviewed, e.g. for differencing attempts.
//! - **Cost.** The register is read a batch of [`crate::lifecycle::BATCH`] clients at a time;
//!   memory holds only the cells. A period spans at most [`MAX_MONTHS`] months.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use diesel::prelude::*;
use rekisteri_accounts::Permission;
use rekisteri_audit::{DataUse, Outcome};
use rekisteri_core::Refusal;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::{clients, service_events, services};
use serde::Serialize;
use time::Date;
use utoipa::ToSchema;

use crate::access::decide;
use crate::lifecycle::{BATCH, add_months};
use crate::settlement::{amount_cents, month_bounds};
use crate::{ClientRegister, ClientsError, Quantity, Request, at_primitive, rule, validation};

/// Cells counting fewer distinct people are suppressed.
pub const THRESHOLD: i64 = 5;
/// The longest period one request covers.
pub const MAX_MONTHS: i32 = 36;

/// A dimension of the clients report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ClientDimension {
    Municipality,
    ServiceType,
    Month,
    AgeGroup,
    Gender,
}

impl ClientDimension {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "municipality" => Self::Municipality,
            "service_type" => Self::ServiceType,
            "month" => Self::Month,
            "age_group" => Self::AgeGroup,
            "gender" => Self::Gender,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Municipality => "municipality",
            Self::ServiceType => "service_type",
            Self::Month => "month",
            Self::AgeGroup => "age_group",
            Self::Gender => "gender",
        }
    }
}

/// A dimension of the services report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServiceDimension {
    Provider,
    ServiceType,
    Month,
}

impl ServiceDimension {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "provider" => Self::Provider,
            "service_type" => Self::ServiceType,
            "month" => Self::Month,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provider => "provider",
            Self::ServiceType => "service_type",
            Self::Month => "month",
        }
    }
}

/// A report's period and grouping as the caller gave them (`YYYY-MM`, comma-separated names).
#[derive(Debug, Clone, Default)]
pub struct StatisticsQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub group_by: Option<String>,
}

struct Period {
    first: Date,
    last: Date,
}

fn month_of(date: Date) -> String {
    format!("{:04}-{:02}", date.year(), u8::from(date.month()))
}

fn period(query: &StatisticsQuery, today: Date) -> Result<Period, ClientsError> {
    let field =
        |name: &'static str, value: &str| month_bounds(value).map_err(|_| validation(name, "must be a month YYYY-MM"));
    let last = match &query.to {
        Some(to) => field("to", to)?.1,
        None => month_bounds(&month_of(today))?.1,
    };
    let first = match &query.from {
        Some(from) => field("from", from)?.0,
        None => add_months(month_bounds(&month_of(last))?.0, -11),
    };
    if first > last {
        return Err(rule("from", "must not be after to"));
    }
    if add_months(first, MAX_MONTHS) <= last {
        return Err(rule("to", format!("a period spans at most {MAX_MONTHS} months")));
    }
    Ok(Period { first, last })
}

fn dimensions<D: Copy + Ord>(
    group_by: Option<&str>,
    default: &[D],
    parse: fn(&str) -> Option<D>,
    allowed: &str,
) -> Result<Vec<D>, ClientsError> {
    let Some(group_by) = group_by else {
        return Ok(default.to_vec());
    };
    // Exactly the published pattern (a comma-separated list without spaces, empty for one cell);
    // a dimension named twice groups once, as a regular expression cannot forbid the repeat.
    let mut out = Vec::new();
    if group_by.is_empty() {
        return Ok(out);
    }
    for name in group_by.split(',') {
        let d = parse(name).ok_or_else(|| validation("group_by", format!("dimensions are {allowed}")))?;
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

/// The months of `[from, to]` that lie in the period.
fn months_between(from: Date, to: Date, period: &Period) -> Vec<String> {
    let (from, to) = (from.max(period.first), to.min(period.last));
    let mut out = Vec::new();
    let mut day = from.replace_day(1).unwrap_or(from);
    while day <= to {
        out.push(month_of(day));
        day = add_months(day, 1);
    }
    out
}

/// The age group of someone born in `birth_year` during `year` (CL-16).
pub fn age_group(birth_year: Option<i32>, year: i32) -> &'static str {
    match birth_year.map(|b| year - b) {
        None => "unknown",
        Some(age) if age < 18 => "0-17",
        Some(age) if age < 65 => "18-64",
        Some(age) if age < 75 => "65-74",
        Some(age) if age < 85 => "75-84",
        Some(_) => "85+",
    }
}

/// Cell values before suppression.
#[derive(Debug, Default, Clone)]
struct Tally {
    clients: i64,
    services: i64,
    events: i64,
    quantity_centi: i64,
    amount_cents: i64,
}

/// Primary and secondary suppression (see the module's documentation): the keys to suppress.
fn suppress(cells: &BTreeMap<Vec<String>, Tally>, dimensions: usize) -> BTreeSet<Vec<String>> {
    let mut hidden: BTreeSet<Vec<String>> = cells
        .iter()
        .filter(|(_, t)| t.clients < THRESHOLD)
        .map(|(k, _)| k.clone())
        .collect();
    let mut changed = !hidden.is_empty();
    while changed {
        changed = false;
        for d in 0..dimensions {
            let mut lines: BTreeMap<Vec<String>, Vec<&Vec<String>>> = BTreeMap::new();
            for key in cells.keys() {
                let mut rest = key.clone();
                rest.remove(d);
                lines.entry(rest).or_default().push(key);
            }
            for keys in lines.values() {
                loop {
                    let hidden_here: Vec<&&Vec<String>> = keys.iter().filter(|k| hidden.contains(**k)).collect();
                    let hidden_people: i64 = hidden_here.iter().map(|k| cells[**k].clients).sum();
                    if hidden_here.is_empty() || (hidden_here.len() >= 2 && hidden_people >= THRESHOLD) {
                        break;
                    }
                    let smallest = keys
                        .iter()
                        .filter(|k| !hidden.contains(**k))
                        .min_by_key(|k| (cells[**k].clients, (**k).clone()));
                    match smallest {
                        Some(key) => {
                            hidden.insert((*key).clone());
                            changed = true;
                        }
                        None => break,
                    }
                }
            }
        }
    }
    hidden
}

/// One cell of the clients report. Dimension fields appear when grouped by them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ClientCell {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub municipality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "2026-03")]
    pub month: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "75-84")]
    pub age_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    /// Distinct people; `null` when suppressed.
    pub clients: Option<i64>,
    /// Distinct services; `null` when suppressed.
    pub services: Option<i64>,
    /// The cell counts fewer than 5 people, or was suppressed so that another cell cannot be
    /// backed out of a total.
    pub suppressed: bool,
}

/// The clients report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ClientStatistics {
    #[schema(example = "2026-01")]
    pub from: String,
    #[schema(example = "2026-12")]
    pub to: String,
    pub group_by: Vec<String>,
    /// Cells counting fewer distinct people are suppressed.
    pub threshold: i64,
    pub cells: Vec<ClientCell>,
}

/// One cell of the services report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ServiceCell {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub month: Option<String>,
    /// Every cell is split by unit: `hour`, `visit`, `day`, `euro`.
    pub unit: String,
    /// Distinct people; `null` when suppressed.
    pub clients: Option<i64>,
    pub events: Option<i64>,
    pub quantity: Option<Quantity>,
    pub amount_cents: Option<i64>,
    pub suppressed: bool,
}

/// The services report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ServiceStatistics {
    pub from: String,
    pub to: String,
    pub group_by: Vec<String>,
    pub threshold: i64,
    pub cells: Vec<ServiceCell>,
}

fn authorise(
    conn: &mut DbConnection,
    request: &Request<'_>,
    registrar_id: &str,
) -> Result<crate::access::Decision, ClientsError> {
    let decision = decide(
        conn,
        &request.access_cache,
        request.principal,
        registrar_id,
        Permission::ReadStatistics,
        at_primitive(request.now),
        None,
    )?;
    if !decision.is_registrar() {
        return Err(ClientsError::Refused(Refusal::NotFound));
    }
    Ok(decision)
}

fn log_statistics(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    decision: &crate::access::Decision,
    kind: &str,
    description: String,
) -> Result<(), ClientsError> {
    register.audit.read_personal_data(
        conn,
        &decision.context(&request.audit),
        at_primitive(request.now),
        |_| {
            Ok::<_, ClientsError>((
                (),
                vec![DataUse {
                    subject_index: None,
                    data_kind: kind.to_owned(),
                    data_id: Some(description),
                    outcome: Outcome::Used,
                }],
            ))
        },
    )
}

type ServiceSpan = (String, String, String, Date, Date, Option<Date>);

/// Clients by municipality, service type, month, age group and gender (CL-16). Default
/// grouping `service_type,month`; default period the twelve months up to the current one.
pub fn client_statistics(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    query: &StatisticsQuery,
) -> Result<ClientStatistics, ClientsError> {
    let decision = authorise(conn, request, registrar_id)?;
    let period = period(query, request.now.date())?;
    let dims = dimensions(
        query.group_by.as_deref(),
        &[ClientDimension::ServiceType, ClientDimension::Month],
        ClientDimension::parse,
        "municipality, service_type, month, age_group, gender",
    )?;
    let mut cells: BTreeMap<Vec<String>, Tally> = BTreeMap::new();
    let mut after = String::new();
    loop {
        let overlapping = services::table
            .filter(services::registrar_id.eq(registrar_id))
            .filter(services::valid_from.le(period.last))
            .filter(
                services::closed_on
                    .is_not_null()
                    .and(services::closed_on.assume_not_null().ge(period.first))
                    .or(services::closed_on.is_null().and(services::valid_to.ge(period.first))),
            );
        let ids: Vec<String> = overlapping
            .filter(services::client_id.gt(&after))
            .select(services::client_id)
            .distinct()
            .order(services::client_id)
            .limit(BATCH)
            .load(conn)?;
        let Some(last) = ids.last().cloned() else {
            break;
        };
        let people: HashMap<String, (Option<String>, String, Option<i32>)> = clients::table
            .filter(clients::registrar_id.eq(registrar_id))
            .filter(clients::id.eq_any(&ids))
            .select((
                clients::id,
                clients::home_municipality,
                clients::gender,
                clients::birth_year,
            ))
            .load::<(String, Option<String>, String, Option<i32>)>(conn)?
            .into_iter()
            .map(|(id, m, g, b)| (id, (m, g, b)))
            .collect();
        let spans: Vec<ServiceSpan> = overlapping
            .filter(services::client_id.eq_any(&ids))
            .order((services::client_id, services::id))
            .select((
                services::client_id,
                services::id,
                services::service_type,
                services::valid_from,
                services::valid_to,
                services::closed_on,
            ))
            .load(conn)?;
        let mut per_client: BTreeMap<&str, BTreeMap<Vec<String>, BTreeSet<&str>>> = BTreeMap::new();
        for (client_id, service_id, service_type, valid_from, valid_to, closed_on) in &spans {
            let Some((municipality, gender, birth_year)) = people.get(client_id) else {
                continue;
            };
            let end = crate::service_ends_on(*closed_on, *valid_to);
            let months = if dims.contains(&ClientDimension::Month) {
                months_between(*valid_from, end, &period)
            } else {
                vec![month_of(period.last)]
            };
            for month in months {
                let year: i32 = month
                    .get(..4)
                    .and_then(|y| y.parse().ok())
                    .unwrap_or(period.last.year());
                let key = dims
                    .iter()
                    .map(|d| match d {
                        ClientDimension::Municipality => municipality.clone().unwrap_or_else(|| "unknown".into()),
                        ClientDimension::ServiceType => service_type.clone(),
                        ClientDimension::Month => month.clone(),
                        ClientDimension::AgeGroup => age_group(*birth_year, year).to_owned(),
                        ClientDimension::Gender => gender.clone(),
                    })
                    .collect();
                per_client
                    .entry(client_id.as_str())
                    .or_default()
                    .entry(key)
                    .or_default()
                    .insert(service_id.as_str());
            }
        }
        for keys in per_client.into_values() {
            for (key, services) in keys {
                let tally = cells.entry(key).or_default();
                tally.clients += 1;
                tally.services += services.len() as i64;
            }
        }
        after = last;
    }
    let hidden = suppress(&cells, dims.len());
    let cells = cells
        .into_iter()
        .map(|(key, tally)| {
            let value = |d: ClientDimension| dims.iter().position(|x| *x == d).map(|i| key[i].clone());
            let suppressed = hidden.contains(&key);
            ClientCell {
                municipality: value(ClientDimension::Municipality),
                service_type: value(ClientDimension::ServiceType),
                month: value(ClientDimension::Month),
                age_group: value(ClientDimension::AgeGroup),
                gender: value(ClientDimension::Gender),
                clients: (!suppressed).then_some(tally.clients),
                services: (!suppressed).then_some(tally.services),
                suppressed,
            }
        })
        .collect();
    let group_by: Vec<String> = dims.iter().map(|d| d.as_str().to_owned()).collect();
    let report = ClientStatistics {
        from: month_of(period.first),
        to: month_of(period.last),
        group_by: group_by.clone(),
        threshold: THRESHOLD,
        cells,
    };
    log_statistics(
        conn,
        register,
        request,
        &decision,
        "statistics_clients",
        format!("{}..{} by {}", report.from, report.to, group_by.join(",")),
    )?;
    Ok(report)
}

type EventFact = (String, String, Date, i64, i64);

/// Delivered quantities and amounts by provider, service type and month (CL-16), every cell
/// split by unit. Default grouping `provider,service_type,month`.
pub fn service_statistics(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    query: &StatisticsQuery,
) -> Result<ServiceStatistics, ClientsError> {
    let decision = authorise(conn, request, registrar_id)?;
    let period = period(query, request.now.date())?;
    let dims = dimensions(
        query.group_by.as_deref(),
        &[
            ServiceDimension::Provider,
            ServiceDimension::ServiceType,
            ServiceDimension::Month,
        ],
        ServiceDimension::parse,
        "provider, service_type, month",
    )?;
    let mut cells: BTreeMap<Vec<String>, Tally> = BTreeMap::new();
    let mut after = String::new();
    loop {
        let in_period = service_events::table
            .filter(service_events::registrar_id.eq(registrar_id))
            .filter(service_events::delivered_on.ge(period.first))
            .filter(service_events::delivered_on.le(period.last));
        let ids: Vec<String> = in_period
            .filter(service_events::client_id.gt(&after))
            .select(service_events::client_id)
            .distinct()
            .order(service_events::client_id)
            .limit(BATCH)
            .load(conn)?;
        let Some(last) = ids.last().cloned() else {
            break;
        };
        let events: Vec<EventFact> = in_period
            .filter(service_events::client_id.eq_any(&ids))
            .select((
                service_events::client_id,
                service_events::service_id,
                service_events::delivered_on,
                service_events::quantity_centi,
                service_events::unit_price_cents,
            ))
            .load(conn)?;
        let service_ids: BTreeSet<&str> = events.iter().map(|e| e.1.as_str()).collect();
        let facts: HashMap<String, (String, String, String)> = services::table
            .filter(services::registrar_id.eq(registrar_id))
            .filter(services::id.eq_any(service_ids))
            .select((
                services::id,
                services::provider_id,
                services::service_type,
                services::unit,
            ))
            .load::<(String, String, String, String)>(conn)?
            .into_iter()
            .map(|(id, p, t, u)| (id, (p, t, u)))
            .collect();
        let mut per_client: BTreeMap<&str, BTreeMap<Vec<String>, Tally>> = BTreeMap::new();
        for (client_id, service_id, delivered_on, quantity, price) in &events {
            let Some((provider, service_type, unit)) = facts.get(service_id) else {
                continue;
            };
            let mut key: Vec<String> = dims
                .iter()
                .map(|d| match d {
                    ServiceDimension::Provider => provider.clone(),
                    ServiceDimension::ServiceType => service_type.clone(),
                    ServiceDimension::Month => month_of(*delivered_on),
                })
                .collect();
            key.push(unit.clone());
            let tally = per_client
                .entry(client_id.as_str())
                .or_default()
                .entry(key)
                .or_default();
            tally.events += 1;
            tally.quantity_centi += quantity;
            tally.amount_cents += amount_cents(*quantity, *price);
        }
        for keys in per_client.into_values() {
            for (key, t) in keys {
                let tally = cells.entry(key).or_default();
                tally.clients += 1;
                tally.events += t.events;
                tally.quantity_centi += t.quantity_centi;
                tally.amount_cents += t.amount_cents;
            }
        }
        after = last;
    }
    // The unit is a dimension of its own for the suppression.
    let hidden = suppress(&cells, dims.len() + 1);
    let cells = cells
        .into_iter()
        .map(|(key, tally)| {
            let value = |d: ServiceDimension| dims.iter().position(|x| *x == d).map(|i| key[i].clone());
            let suppressed = hidden.contains(&key);
            ServiceCell {
                provider_id: value(ServiceDimension::Provider),
                service_type: value(ServiceDimension::ServiceType),
                month: value(ServiceDimension::Month),
                unit: key.last().cloned().unwrap_or_default(),
                clients: (!suppressed).then_some(tally.clients),
                events: (!suppressed).then_some(tally.events),
                quantity: (!suppressed).then_some(Quantity(tally.quantity_centi)),
                amount_cents: (!suppressed).then_some(tally.amount_cents),
                suppressed,
            }
        })
        .collect();
    let group_by: Vec<String> = dims.iter().map(|d| d.as_str().to_owned()).collect();
    let report = ServiceStatistics {
        from: month_of(period.first),
        to: month_of(period.last),
        group_by: group_by.clone(),
        threshold: THRESHOLD,
        cells,
    };
    log_statistics(
        conn,
        register,
        request,
        &decision,
        "statistics_services",
        format!("{}..{} by {}", report.from, report.to, group_by.join(",")),
    )?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(values: &[(&[&str], i64)]) -> BTreeMap<Vec<String>, Tally> {
        values
            .iter()
            .map(|(k, n)| {
                (
                    k.iter().map(|s| (*s).to_owned()).collect(),
                    Tally {
                        clients: *n,
                        ..Tally::default()
                    },
                )
            })
            .collect()
    }

    #[test]
    fn cl_16_cells_under_five_people_are_suppressed_with_a_second_cell_in_their_line() {
        // One dimension: the 3 is suppressed; so is the next smallest, or 10 - 7 would give it.
        let c = cells(&[(&["a"], 3), (&["b"], 7), (&["c"], 20)]);
        let hidden = suppress(&c, 1);
        assert_eq!(hidden.len(), 2);
        assert!(hidden.contains(&vec!["a".to_owned()]) && hidden.contains(&vec!["b".to_owned()]));
        // Nothing under the threshold: nothing suppressed.
        assert!(suppress(&cells(&[(&["a"], 5), (&["b"], 6)]), 1).is_empty());
        // Two small cells adding up to fewer than 5 pull in a third.
        let hidden = suppress(&cells(&[(&["a"], 1), (&["b"], 2), (&["c"], 9), (&["d"], 30)]), 1);
        assert_eq!(hidden.len(), 3);
        // Two dimensions: every row and column holds 0 or at least 2 suppressed cells.
        let c = cells(&[
            (&["x", "1"], 2),
            (&["x", "2"], 10),
            (&["y", "1"], 12),
            (&["y", "2"], 15),
        ]);
        let hidden = suppress(&c, 2);
        assert_eq!(hidden.len(), 4, "{hidden:?}");
    }

    #[test]
    fn cl_16_age_groups() {
        assert_eq!(age_group(Some(1940), 2026), "85+");
        assert_eq!(age_group(Some(1950), 2026), "75-84");
        assert_eq!(age_group(Some(1961), 2026), "65-74");
        assert_eq!(age_group(Some(1962), 2026), "18-64");
        assert_eq!(age_group(Some(2010), 2026), "0-17");
        assert_eq!(age_group(None, 2026), "unknown");
    }
}
