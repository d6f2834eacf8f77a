//! Supervision reports for a registrar's data-protection officer (AU-10): accesses with a special
//! reason, accesses outside office hours, users who viewed unusually many clients in a day, and
//! disclosures by recipient. Each report reads one registrar's chain over a bounded time range,
//! page by page, so memory stays flat.

use std::collections::{BTreeMap, HashSet};

use diesel::prelude::*;
use rekisteri_core::{helsinki_local, is_working_day};
use rekisteri_db::DbConnection;
use rekisteri_db::schema::{disclosure_log, usage_log};
use time::{Date, PrimitiveDateTime, Time};

use crate::writer::{DisclosureRow, UsageRow};
use crate::{LogKind, chain_id};

/// The longest range one report covers.
pub const MAX_REPORT_DAYS: i64 = 92;
/// The most rows a listing report returns; `truncated` says when there were more.
pub const MAX_REPORT_ROWS: usize = 10_000;
const PAGE: i64 = 5_000;

/// Office hours in Finnish time on working days (the calendar of RU-5): 07:00–18:00.
pub const OFFICE_OPENS: Time = time::macros::time!(7:00);
pub const OFFICE_CLOSES: Time = time::macros::time!(18:00);

/// Whether a use at the UTC instant `at` falls outside office hours in Finland.
pub fn outside_office_hours(at: PrimitiveDateTime) -> bool {
    let local = helsinki_local(at);
    !is_working_day(local.date()) || local.time() < OFFICE_OPENS || local.time() >= OFFICE_CLOSES
}

/// A listing report: the matching entries, oldest first.
#[derive(Debug, Clone)]
pub struct Listing<T> {
    pub rows: Vec<T>,
    pub truncated: bool,
}

/// One user's distinct clients on one Finnish calendar day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManyClients {
    pub actor_id: String,
    pub actor_name: Option<String>,
    pub day: Date,
    pub distinct_clients: u64,
}

/// Disclosures to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientCount {
    pub recipient_kind: String,
    pub recipient_id: String,
    pub recipient_name: Option<String>,
    pub disclosures: u64,
}

/// Calls `visit` with every usage entry of `registrar_id` in `[from, to)`, oldest first, while it
/// returns true.
fn each_usage(
    conn: &mut DbConnection,
    registrar_id: &str,
    from: PrimitiveDateTime,
    to: PrimitiveDateTime,
    special_reason_only: bool,
    mut visit: impl FnMut(UsageRow) -> bool,
) -> QueryResult<()> {
    let chain = chain_id(LogKind::Usage, Some(registrar_id));
    let mut after = 0;
    loop {
        let mut query = usage_log::table
            .filter(usage_log::chain_id.eq(&chain))
            .filter(usage_log::seq.gt(after))
            .filter(usage_log::occurred_at.ge(from).and(usage_log::occurred_at.lt(to)))
            .select(usage_log::all_columns)
            .order(usage_log::seq)
            .limit(PAGE)
            .into_boxed();
        if special_reason_only {
            query = query.filter(usage_log::access_basis.eq("special_reason"));
        }
        let rows = query.load::<UsageRow>(conn)?;
        let done = (rows.len() as i64) < PAGE;
        for row in rows {
            after = row.seq;
            if !visit(row) {
                return Ok(());
            }
        }
        if done {
            return Ok(());
        }
    }
}

/// Whether an entry records a person using client data (not the platform's own bookkeeping such
/// as log supervision).
fn is_client_data_use(row: &UsageRow) -> bool {
    row.outcome == "used"
        && row.subject_index.is_some()
        && !matches!(
            row.data_kind.as_str(),
            "usage_log" | "disclosure_log" | "audit_export" | "audit_report"
        )
}

fn listing(
    conn: &mut DbConnection,
    registrar_id: &str,
    from: PrimitiveDateTime,
    to: PrimitiveDateTime,
    special_reason_only: bool,
    keep: impl Fn(&UsageRow) -> bool,
) -> QueryResult<Listing<UsageRow>> {
    let mut rows = Vec::new();
    let mut truncated = false;
    each_usage(conn, registrar_id, from, to, special_reason_only, |row| {
        if keep(&row) {
            if rows.len() == MAX_REPORT_ROWS {
                truncated = true;
                return false;
            }
            rows.push(row);
        }
        true
    })?;
    Ok(Listing { rows, truncated })
}

/// Accesses on a special reason (AX-5), with the reason stated.
pub fn special_reason_accesses(
    conn: &mut DbConnection,
    registrar_id: &str,
    from: PrimitiveDateTime,
    to: PrimitiveDateTime,
) -> QueryResult<Listing<UsageRow>> {
    listing(conn, registrar_id, from, to, true, |_| true)
}

/// Uses of client data outside office hours ([`outside_office_hours`]).
pub fn accesses_outside_office_hours(
    conn: &mut DbConnection,
    registrar_id: &str,
    from: PrimitiveDateTime,
    to: PrimitiveDateTime,
) -> QueryResult<Listing<UsageRow>> {
    listing(conn, registrar_id, from, to, false, |row| {
        is_client_data_use(row) && outside_office_hours(row.occurred_at)
    })
}

/// A user's name (as logged) and the distinct clients whose data they used on one day.
type DayOfUser = (Option<String>, HashSet<Vec<u8>>);

/// Users who used the data of at least `threshold` distinct clients on one Finnish day, most first.
pub fn users_with_many_clients(
    conn: &mut DbConnection,
    registrar_id: &str,
    from: PrimitiveDateTime,
    to: PrimitiveDateTime,
    threshold: u64,
) -> QueryResult<Vec<ManyClients>> {
    let mut seen: BTreeMap<(String, Date), DayOfUser> = BTreeMap::new();
    each_usage(conn, registrar_id, from, to, false, |row| {
        if is_client_data_use(&row)
            && let Some(subject) = row.subject_index
        {
            let day = helsinki_local(row.occurred_at).date();
            let slot = seen
                .entry((row.actor_id, day))
                .or_insert_with(|| (None, HashSet::new()));
            if slot.0.is_none() {
                slot.0 = row.actor_name;
            }
            slot.1.insert(subject);
        }
        true
    })?;
    let mut out: Vec<ManyClients> = seen
        .into_iter()
        .filter(|(_, (_, clients))| clients.len() as u64 >= threshold)
        .map(|((actor_id, day), (actor_name, clients))| ManyClients {
            actor_id,
            actor_name,
            day,
            distinct_clients: clients.len() as u64,
        })
        .collect();
    out.sort_by(|a, b| b.distinct_clients.cmp(&a.distinct_clients).then(a.day.cmp(&b.day)));
    Ok(out)
}

/// The registrar's disclosures in `[from, to)` counted by recipient, most first.
pub fn disclosures_by_recipient(
    conn: &mut DbConnection,
    registrar_id: &str,
    from: PrimitiveDateTime,
    to: PrimitiveDateTime,
) -> QueryResult<Vec<RecipientCount>> {
    let chain = chain_id(LogKind::Disclosure, Some(registrar_id));
    let mut counts: BTreeMap<(String, String), (Option<String>, u64)> = BTreeMap::new();
    let mut after = 0;
    loop {
        let rows = disclosure_log::table
            .filter(disclosure_log::chain_id.eq(&chain))
            .filter(disclosure_log::seq.gt(after))
            .filter(
                disclosure_log::occurred_at
                    .ge(from)
                    .and(disclosure_log::occurred_at.lt(to)),
            )
            .select(disclosure_log::all_columns)
            .order(disclosure_log::seq)
            .limit(PAGE)
            .load::<DisclosureRow>(conn)?;
        let done = (rows.len() as i64) < PAGE;
        for row in rows {
            after = row.seq;
            let slot = counts
                .entry((row.recipient_kind, row.recipient_id))
                .or_insert((None, 0));
            if row.recipient_name.is_some() {
                slot.0 = row.recipient_name;
            }
            slot.1 += 1;
        }
        if done {
            break;
        }
    }
    let mut out: Vec<RecipientCount> = counts
        .into_iter()
        .map(
            |((recipient_kind, recipient_id), (recipient_name, disclosures))| RecipientCount {
                recipient_kind,
                recipient_id,
                recipient_name,
                disclosures,
            },
        )
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse(r.disclosures));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::{ReportKind, ReportRequest, outside_office_hours};
    use rekisteri_core::Refusal;

    #[test]
    fn au_10_reports_are_named_as_in_the_path_and_their_range_is_checked() {
        for kind in ReportKind::ALL {
            assert_eq!(ReportKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(ReportKind::from_name("everything"), None);
        let from = datetime!(2026-09-01 00:00);
        let ok = ReportRequest::new(ReportKind::ManyClients, from, datetime!(2026-12-02 00:00), None).unwrap();
        assert_eq!(ok.threshold, 50);
        let zero = ReportRequest::new(ReportKind::ManyClients, from, datetime!(2026-09-02 00:00), Some(0)).unwrap();
        assert_eq!(zero.threshold, 1);
        let too_long = ReportRequest::new(ReportKind::SpecialReasons, from, datetime!(2026-12-02 00:00:01), None);
        assert_eq!(
            too_long.unwrap_err(),
            Refusal::rule("to", "a report covers at most 92 days")
        );
        let reversed = ReportRequest::new(ReportKind::SpecialReasons, from, from, None);
        assert_eq!(reversed.unwrap_err(), Refusal::rule("to", "must be after from"));
    }

    #[test]
    fn au_10_office_hours_are_finnish_working_days_from_7_to_18() {
        // Wednesday 25 November 2026, winter time (UTC+2).
        assert!(outside_office_hours(datetime!(2026-11-25 04:59)));
        assert!(!outside_office_hours(datetime!(2026-11-25 05:00)));
        assert!(!outside_office_hours(datetime!(2026-11-25 15:59)));
        assert!(outside_office_hours(datetime!(2026-11-25 16:00)));
        // Saturday, and Independence Day (a Sunday in 2026; Christmas Eve 2026 is a Thursday).
        assert!(outside_office_hours(datetime!(2026-11-28 10:00)));
        assert!(outside_office_hours(datetime!(2026-12-24 10:00)));
        // Summer time (UTC+3): 06:30 UTC is 09:30 in Helsinki.
        assert!(!outside_office_hours(datetime!(2026-06-03 06:30)));
        assert!(outside_office_hours(datetime!(2026-06-03 15:30)));
    }
}

/// A supervision report (AU-10), by the name it has in the API's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Accesses on a special reason (AX-5).
    SpecialReasons,
    /// Uses of client data outside 07:00–18:00 Finnish time on working days.
    OutsideOfficeHours,
    /// Users who used at least the threshold of distinct clients' data in one day.
    ManyClients,
    DisclosuresByRecipient,
}

impl ReportKind {
    pub const ALL: [ReportKind; 4] = [
        ReportKind::SpecialReasons,
        ReportKind::OutsideOfficeHours,
        ReportKind::ManyClients,
        ReportKind::DisclosuresByRecipient,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReportKind::SpecialReasons => "special-reasons",
            ReportKind::OutsideOfficeHours => "outside-office-hours",
            ReportKind::ManyClients => "many-clients",
            ReportKind::DisclosuresByRecipient => "disclosures-by-recipient",
        }
    }

    /// The report of that name; none for a name no report has (the API's 404).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// The number of distinct clients in one day that is unusual when the caller names none.
pub const DEFAULT_MANY_CLIENTS_THRESHOLD: u64 = 50;

/// A report asked for, its range and threshold checked.
#[derive(Debug, Clone, Copy)]
pub struct ReportRequest {
    pub kind: ReportKind,
    pub from: PrimitiveDateTime,
    pub to: PrimitiveDateTime,
    /// For [`ReportKind::ManyClients`]: at least 1.
    pub threshold: u64,
}

impl ReportRequest {
    /// Refuses a range that does not end after it starts or covers more than
    /// [`MAX_REPORT_DAYS`] (422 naming `to`).
    pub fn new(
        kind: ReportKind,
        from: PrimitiveDateTime,
        to: PrimitiveDateTime,
        threshold: Option<u64>,
    ) -> Result<Self, rekisteri_core::Refusal> {
        crate::bounded_range(from, to, MAX_REPORT_DAYS, "a report covers at most 92 days")?;
        Ok(Self {
            kind,
            from,
            to,
            threshold: threshold.unwrap_or(DEFAULT_MANY_CLIENTS_THRESHOLD).max(1),
        })
    }
}

/// What a report found.
#[derive(Debug, Clone)]
pub enum Report {
    /// [`ReportKind::SpecialReasons`] and [`ReportKind::OutsideOfficeHours`]: the entries.
    Entries(Listing<UsageRow>),
    ManyClients(Vec<ManyClients>),
    Recipients(Vec<RecipientCount>),
}

/// Runs `request` over `registrar_id`'s logs as a use of personal data: the reading logs one
/// `audit_report` use under `context` (the supervisor's look at the log is itself logged, AU-5),
/// durable before the report is returned.
pub fn read_report(
    log: &crate::AuditLog,
    conn: &mut DbConnection,
    context: &crate::AuditContext,
    at: PrimitiveDateTime,
    registrar_id: &str,
    request: &ReportRequest,
) -> Result<Report, crate::AuditError> {
    let (from, to) = (request.from, request.to);
    log.read_personal_data(conn, context, at, |conn| {
        let report = match request.kind {
            ReportKind::SpecialReasons => Report::Entries(special_reason_accesses(conn, registrar_id, from, to)?),
            ReportKind::OutsideOfficeHours => {
                Report::Entries(accesses_outside_office_hours(conn, registrar_id, from, to)?)
            }
            ReportKind::ManyClients => Report::ManyClients(users_with_many_clients(
                conn,
                registrar_id,
                from,
                to,
                request.threshold,
            )?),
            ReportKind::DisclosuresByRecipient => {
                Report::Recipients(disclosures_by_recipient(conn, registrar_id, from, to)?)
            }
        };
        let used = crate::DataUse {
            subject_index: None,
            data_kind: "audit_report".to_owned(),
            data_id: None,
            outcome: crate::Outcome::Used,
        };
        Ok::<_, crate::AuditError>((report, vec![used]))
    })
}
