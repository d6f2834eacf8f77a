//! Data-subject requests and their due dates (CL-12, GDPR art. 12 (3)-(4)).
//!
//! A request is answered within one calendar month of its receipt (`first_due_on`). The deadline
//! may be extended by at most two further months, only with a reason, and only if the requester
//! was told of the extension and its reason within the first month. A refusal records its
//! reasons and the complaint route (the Data Protection Ombudsman unless another is named).
//!
//! Month arithmetic: the same day number in the month `n` months later; when that month is
//! shorter, its last day (31 Jan → 28 Feb, or 29 Feb in a leap year; 31 Mar → 30 Apr). An
//! extension by `n` months is counted from receipt too (received + 1 + `n` months), so that the
//! short month of the first deadline does not shorten the extended one (31 Jan, extended by
//! two: 30 Apr). Dates are Finnish calendar dates ("today" is today in Helsinki).
//!
//! The person is filed under the blind index of the identity code (the usage log's and the
//! client register's `subject_index`); the code, the requester's contact data and the free
//! texts are sealed to their row (PL-6). Every read is a logged use (AU-1) and a caller outside
//! the registrar gets 404 with the attempt logged (AX-4, AX-7).

use diesel::prelude::*;
use rekisteri_accounts::Permission;
use rekisteri_audit::{DataUse, Outcome};
use rekisteri_core::Refusal;
use rekisteri_db::schema::{clients, data_subject_requests as dsr};
use rekisteri_db::{DbConnection, write_transaction_as};
use serde::{Deserialize, Serialize};
use time::{Date, Month, PrimitiveDateTime};
use utoipa::ToSchema;

use crate::access::decide;
use crate::clients::{check_email, check_phone, deny, parse_identity_code};
use crate::sealed::{JsonFields, RowCipher};
use crate::{ClientRegister, ClientsError, Request, at_primitive, format_time, rule, validation};

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// The complaint route a refusal names unless the registrar gives another (GDPR art. 12 (4)).
pub const DEFAULT_COMPLAINT_ROUTE: &str =
    "Data Protection Ombudsman (tietosuojavaltuutettu), PL 800, 00531 Helsinki, https://tietosuoja.fi";

/// The data kind usage entries name a request by.
const DATA_KIND: &str = "data_subject_request";
const TABLE: &str = "data_subject_requests";

/// The right the person exercises (GDPR art. 15-21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    Access,
    Rectification,
    Restriction,
    Objection,
    Erasure,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Rectification => "rectification",
            Self::Restriction => "restriction",
            Self::Objection => "objection",
            Self::Erasure => "erasure",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "rectification" => Self::Rectification,
            "restriction" => Self::Restriction,
            "objection" => Self::Objection,
            "erasure" => Self::Erasure,
            _ => Self::Access,
        }
    }
}

/// Where a request stands. `completed` and `refused` close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Received,
    InProgress,
    Completed,
    Refused,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Refused => "refused",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "in_progress" => Self::InProgress,
            "completed" => Self::Completed,
            "refused" => Self::Refused,
            _ => Self::Received,
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, Self::Received | Self::InProgress)
    }
}

/// How the requester's identity was verified (source 000 §4: a request is made in a signed
/// document or in person at the registrar; strong electronic identification is the electronic
/// equivalent of a signature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentityVerification {
    /// In person at the registrar, with an identity document.
    InPerson,
    /// A letter signed by hand.
    SignedLetter,
    /// Strong electronic identification (bank credentials, mobile certificate, ID card).
    StrongElectronicIdentification,
}

impl IdentityVerification {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InPerson => "in_person",
            Self::SignedLetter => "signed_letter",
            Self::StrongElectronicIdentification => "strong_electronic_identification",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "in_person" => Some(Self::InPerson),
            "signed_letter" => Some(Self::SignedLetter),
            "strong_electronic_identification" => Some(Self::StrongElectronicIdentification),
            _ => None,
        }
    }
}

/// Who made the request and how to reach them, when it is not (only) the person themself.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Requester {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_address: Option<String>,
}

/// A request as received (CL-12).
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDataSubjectRequest {
    pub kind: RequestKind,
    /// The person the request is about; never echoed in errors. Only the canonical form is accepted (CL-2): upper case, no surrounding whitespace.
    #[schema(example = "131052-308T")]
    pub identity_code: String,
    /// The day the request reached the registrar; today (Finnish time) when absent.
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub received_on: Option<Date>,
    pub requester: Option<Requester>,
    /// What the person asks, in their words or a summary.
    pub details: Option<String>,
    /// How the requester's identity was verified; may follow later, but a request completes
    /// only once it is recorded.
    pub identity_verification: Option<IdentityVerification>,
}

rekisteri_core::redacted_debug!(NewDataSubjectRequest { kind });

/// Changes to a request; absent fields stay. Sent with `If-Match`.
///
/// Extending: `extend_by_months` (1 or 2: due `1 + n` months from receipt) with
/// `extension_reason` and `extension_notified_on` (within the first month). Refusing:
/// `status: "refused"` with `refusal_reasons` (and `complaint_route`, by default the Data
/// Protection Ombudsman). Completing or refusing sets `closed_on` (today by default). Completing
/// needs `identity_verification` recorded (now or before); a refusal does not, since an identity
/// that could not be verified is itself a reason to refuse.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataSubjectRequestChanges {
    pub status: Option<RequestStatus>,
    #[schema(minimum = 1, maximum = 2)]
    pub extend_by_months: Option<i64>,
    pub extension_reason: Option<String>,
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub extension_notified_on: Option<Date>,
    pub refusal_reasons: Option<String>,
    pub complaint_route: Option<String>,
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub closed_on: Option<Date>,
    pub requester: Option<Requester>,
    pub details: Option<String>,
    pub identity_verification: Option<IdentityVerification>,
}

/// A data-subject request with its deadlines.
#[derive(Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DataSubjectRequest {
    pub id: String,
    pub registrar_id: String,
    pub kind: RequestKind,
    #[schema(example = "131052-308T")]
    pub identity_code: String,
    /// The register's client with this identity code at receipt, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requester: Option<Requester>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// How the requester's identity was verified; absent until recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_verification: Option<IdentityVerification>,
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub received_on: Date,
    /// One calendar month from receipt.
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub first_due_on: Date,
    /// The deadline in force: `first_due_on`, or later when extended.
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub due_on: Date,
    pub extended: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub extension_notified_on: Option<Date>,
    pub status: RequestStatus,
    /// Open and past `due_on` (Finnish date).
    pub overdue: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal_reasons: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complaint_route: Option<String>,
    /// The day the request was completed or refused.
    #[serde(skip_serializing_if = "Option::is_none", with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub closed_on: Option<Date>,
    /// The account that last handled the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handled_by: Option<String>,
    pub created_by: String,
    /// The version `If-Match` names.
    pub version: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl DataSubjectRequest {
    /// What recording the request disclosed (see [`crate::CreatedRecord`]): the person is
    /// named by the request's identity code.
    pub fn written(&self, keyring: &rekisteri_crypto::Keyring) -> rekisteri_audit::Written {
        rekisteri_audit::Written {
            permission: Permission::HandleDataSubjectRequests.as_str(),
            subject_index: rekisteri_core::PersonalIdentityCode::parse(
                &self.identity_code,
                rekisteri_core::TemporaryCodesAllowed::No,
            )
            .ok()
            .map(|code| rekisteri_audit::subject_index(keyring, &code)),
            data_kind: DATA_KIND,
            data_id: self.id.clone(),
        }
    }
}

rekisteri_core::redacted_debug!(DataSubjectRequest {
    id,
    registrar_id,
    client_id,
    version,
    status,
    kind
});

/// A listing's filter.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub status: Option<RequestStatus>,
    /// Only open requests past their due date.
    pub overdue: bool,
}

/// Where the previous page ended: its last request's due date and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestCursor {
    pub due_on: Date,
    pub id: String,
}

impl RequestCursor {
    /// `YYYY-MM-DD/<uuid>`; the API wraps it in base64.
    pub fn encode(&self) -> String {
        format!("{}/{}", format_date(self.due_on), self.id)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (date, id) = s.split_once('/')?;
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let due_on = Date::parse(date, &format).ok()?;
        uuid::Uuid::parse_str(id).ok()?;
        Some(Self {
            due_on,
            id: id.to_owned(),
        })
    }
}

fn format_date(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

#[derive(Debug, Clone)]
pub struct RequestPage {
    pub items: Vec<DataSubjectRequest>,
    pub next_cursor: Option<RequestCursor>,
}

/// `date` plus `months` calendar months; the last day of the target month when it is shorter
/// (31 Jan + 1 → 28/29 Feb). `None` only beyond the calendar's range.
pub fn add_months(date: Date, months: u32) -> Option<Date> {
    let index = i64::from(u8::from(date.month())) - 1 + i64::from(months);
    let year = i32::try_from(i64::from(date.year()) + index / 12).ok()?;
    let month = Month::try_from(u8::try_from(index % 12 + 1).ok()?).ok()?;
    let day = date.day().min(time::util::days_in_month(month, year));
    Date::from_calendar_date(year, month, day).ok()
}

/// Today in Finland, the calendar the deadlines run in.
fn today(at: PrimitiveDateTime) -> Date {
    rekisteri_core::helsinki_local(at).date()
}

#[derive(Clone, Queryable)]
struct RequestRow {
    registrar_id: String,
    id: String,
    kind: String,
    subject_index: Vec<u8>,
    identity_code: Vec<u8>,
    client_id: Option<String>,
    requester: Option<Vec<u8>>,
    details: Option<Vec<u8>>,
    received_on: Date,
    first_due_on: Date,
    due_on: Date,
    extension_reason: Option<Vec<u8>>,
    extension_notified_on: Option<Date>,
    status: String,
    refusal_reasons: Option<Vec<u8>>,
    complaint_route: Option<String>,
    closed_on: Option<Date>,
    handled_by: Option<String>,
    created_by: String,
    version: i64,
    created_at: PrimitiveDateTime,
    updated_at: PrimitiveDateTime,
    identity_verification: Option<String>,
}

rekisteri_core::redacted_debug!(RequestRow {
    id,
    registrar_id,
    client_id,
    version,
    status,
    kind
});

macro_rules! request_columns {
    () => {
        (
            dsr::registrar_id,
            dsr::id,
            dsr::kind,
            dsr::subject_index,
            dsr::identity_code,
            dsr::client_id,
            dsr::requester,
            dsr::details,
            dsr::received_on,
            dsr::first_due_on,
            dsr::due_on,
            dsr::extension_reason,
            dsr::extension_notified_on,
            dsr::status,
            dsr::refusal_reasons,
            dsr::complaint_route,
            dsr::closed_on,
            dsr::handled_by,
            dsr::created_by,
            dsr::version,
            dsr::created_at,
            dsr::updated_at,
            dsr::identity_verification,
        )
    };
}

impl RequestRow {
    fn subject(&self) -> Option<[u8; 32]> {
        self.subject_index.as_slice().try_into().ok()
    }

    fn usage(&self) -> DataUse {
        DataUse {
            subject_index: self.subject(),
            data_kind: DATA_KIND.into(),
            data_id: Some(self.id.clone()),
            outcome: Outcome::Used,
        }
    }

    /// Only inside `read_personal_data` closures.
    fn open(&self, register: &ClientRegister, today: Date) -> Result<DataSubjectRequest, ClientsError> {
        let cipher = RowCipher::new(&register.keyring, TABLE, &self.id);
        let status = RequestStatus::parse(&self.status);
        Ok(DataSubjectRequest {
            id: self.id.clone(),
            registrar_id: self.registrar_id.clone(),
            kind: RequestKind::parse(&self.kind),
            identity_code: cipher.open("identity_code", &self.identity_code)?,
            client_id: self.client_id.clone(),
            requester: cipher.open_json("requester", self.requester.as_deref())?,
            details: cipher.open_opt("details", self.details.as_deref())?,
            identity_verification: self
                .identity_verification
                .as_deref()
                .and_then(IdentityVerification::parse),
            received_on: self.received_on,
            first_due_on: self.first_due_on,
            due_on: self.due_on,
            extended: self.due_on > self.first_due_on,
            extension_reason: cipher.open_opt("extension_reason", self.extension_reason.as_deref())?,
            extension_notified_on: self.extension_notified_on,
            status,
            overdue: status.is_open() && self.due_on < today,
            refusal_reasons: cipher.open_opt("refusal_reasons", self.refusal_reasons.as_deref())?,
            complaint_route: self.complaint_route.clone(),
            closed_on: self.closed_on,
            handled_by: self.handled_by.clone(),
            created_by: self.created_by.clone(),
            version: self.version,
            created_at: format_time(self.created_at),
            updated_at: format_time(self.updated_at),
        })
    }
}

/// Only the registrar's own staff holding `handle_data_subject_requests` reach its requests: a
/// user of the registrar without it gets 403, anyone else 404 (logged as a denial when a
/// request was named).
fn authorise(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    request_id: Option<&str>,
) -> Result<crate::access::Decision, ClientsError> {
    let at = at_primitive(request.now);
    let decision = decide(
        conn,
        &request.access_cache,
        request.principal,
        registrar_id,
        Permission::HandleDataSubjectRequests,
        at,
        None,
    )?;
    if decision.is_registrar() {
        return Ok(decision);
    }
    Err(match request_id {
        Some(id) => deny(conn, register, request, None, DATA_KIND, id),
        None => ClientsError::Refused(Refusal::NotFound),
    })
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), ClientsError> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(validation(field, format!("must be 1-{max} characters")));
    }
    Ok(())
}

fn check_requester(requester: Option<&Requester>) -> Result<(), ClientsError> {
    let Some(r) = requester else { return Ok(()) };
    if let Some(name) = &r.name {
        check_text("requester.name", name, 200)?;
    }
    if let Some(address) = &r.postal_address {
        check_text("requester.postal_address", address, 500)?;
    }
    check_email("requester.email", r.email.as_deref())?;
    check_phone("requester.phone", r.phone.as_deref())?;
    Ok(())
}

fn load(conn: &mut DbConnection, registrar_id: &str, id: &str) -> QueryResult<Option<RequestRow>> {
    dsr::table
        .filter(dsr::registrar_id.eq(registrar_id))
        .filter(dsr::id.eq(id))
        .select(request_columns!())
        .first(conn)
        .optional()
}

/// Records a request received (CL-12): due one calendar month from receipt. The person's
/// client, if the register has one, is linked.
pub fn create_request(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    new: NewDataSubjectRequest,
) -> Result<DataSubjectRequest, ClientsError> {
    let at = at_primitive(request.now);
    let today = today(at);
    let decision = authorise(conn, register, request, registrar_id, None)?;
    let code = parse_identity_code("identity_code", &new.identity_code)?;
    check_requester(new.requester.as_ref())?;
    if let Some(details) = &new.details {
        check_text("details", details, 4000)?;
    }
    let received_on = new.received_on.unwrap_or(today);
    if received_on > today {
        return Err(rule("received_on", "must not be in the future"));
    }
    let first_due_on = add_months(received_on, 1).ok_or_else(|| validation("received_on", "is out of range"))?;
    let subject = rekisteri_audit::subject_index(&register.keyring, &code);
    let client_id: Option<String> = clients::table
        .filter(clients::registrar_id.eq(registrar_id))
        .filter(clients::subject_index.eq_any(rekisteri_audit::subject_index_candidates(&register.keyring, &code)))
        .filter(clients::anonymised_at.is_null())
        .select(clients::id)
        .first(conn)
        .optional()?;
    let id = rekisteri_core::ids::new_row_id();
    let cipher = RowCipher::new(&register.keyring, TABLE, &id);
    let row = RequestRow {
        registrar_id: registrar_id.to_owned(),
        id: id.clone(),
        kind: new.kind.as_str().to_owned(),
        subject_index: subject.to_vec(),
        identity_code: cipher.seal("identity_code", code.reveal())?,
        client_id,
        requester: cipher.seal_json("requester", new.requester.as_ref())?,
        details: cipher.seal_opt("details", new.details.as_deref().map(str::trim))?,
        received_on,
        first_due_on,
        due_on: first_due_on,
        extension_reason: None,
        extension_notified_on: None,
        status: RequestStatus::Received.as_str().to_owned(),
        refusal_reasons: None,
        complaint_route: None,
        closed_on: None,
        handled_by: None,
        created_by: request.principal.account_id.clone(),
        version: 1,
        created_at: at,
        updated_at: at,
        identity_verification: new.identity_verification.map(|v| v.as_str().to_owned()),
    };
    let context = decision.context(&request.audit);
    write_transaction_as(conn, &request.principal.account_id, |conn| {
        diesel::insert_into(dsr::table)
            .values((
                dsr::registrar_id.eq(&row.registrar_id),
                dsr::id.eq(&row.id),
                dsr::kind.eq(&row.kind),
                dsr::subject_index.eq(&row.subject_index),
                dsr::identity_code.eq(&row.identity_code),
                dsr::client_id.eq(&row.client_id),
                dsr::requester.eq(&row.requester),
                dsr::details.eq(&row.details),
                dsr::received_on.eq(row.received_on),
                dsr::first_due_on.eq(row.first_due_on),
                dsr::due_on.eq(row.due_on),
                dsr::status.eq(&row.status),
                dsr::created_by.eq(&row.created_by),
                dsr::version.eq(row.version),
                dsr::created_at.eq(row.created_at),
                dsr::updated_at.eq(row.updated_at),
                dsr::identity_verification.eq(&row.identity_verification),
            ))
            .execute(conn)?;
        register
            .audit
            .append_in(conn, vec![context.usage_entry(row.usage(), at)], at)?;
        Ok::<_, ClientsError>(())
    })?;
    // The caller sent these values; answering with them opens nothing new.
    Ok(DataSubjectRequest {
        id,
        registrar_id: registrar_id.to_owned(),
        kind: new.kind,
        identity_code: code.reveal().to_owned(),
        client_id: row.client_id,
        requester: new.requester,
        details: new.details.map(|d| d.trim().to_owned()),
        identity_verification: new.identity_verification,
        received_on,
        first_due_on,
        due_on: first_due_on,
        extended: false,
        extension_reason: None,
        extension_notified_on: None,
        status: RequestStatus::Received,
        overdue: first_due_on < today,
        refusal_reasons: None,
        complaint_route: None,
        closed_on: None,
        handled_by: None,
        created_by: row.created_by,
        version: 1,
        created_at: format_time(at),
        updated_at: format_time(at),
    })
}

/// One request; a logged use.
pub fn get_request(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    id: &str,
) -> Result<DataSubjectRequest, ClientsError> {
    let at = at_primitive(request.now);
    let decision = authorise(conn, register, request, registrar_id, Some(id))?;
    let Some(row) = load(conn, registrar_id, id)? else {
        return Err(deny(conn, register, request, None, DATA_KIND, id));
    };
    let today = today(at);
    register
        .audit
        .read_personal_data(conn, &decision.context(&request.audit), at, |_| {
            Ok::<_, ClientsError>((row.open(register, today)?, vec![row.usage()]))
        })
}

/// The registrar's requests by due date (then id), `limit` at a time; every listed request is a
/// logged use.
pub fn list_requests(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    filter: &RequestFilter,
    after: Option<&RequestCursor>,
    limit: i64,
) -> Result<RequestPage, ClientsError> {
    let at = at_primitive(request.now);
    let today = today(at);
    let decision = authorise(conn, register, request, registrar_id, None)?;
    let mut query = dsr::table
        .filter(dsr::registrar_id.eq(registrar_id))
        .select(request_columns!())
        .order((dsr::due_on, dsr::id))
        .limit(limit + 1)
        .into_boxed();
    if let Some(status) = filter.status {
        query = query.filter(dsr::status.eq(status.as_str()));
    }
    if filter.overdue {
        query = query
            .filter(dsr::status.eq_any([RequestStatus::Received.as_str(), RequestStatus::InProgress.as_str()]))
            .filter(dsr::due_on.lt(today));
    }
    if let Some(after) = after {
        query = query.filter(
            dsr::due_on
                .gt(after.due_on)
                .or(dsr::due_on.eq(after.due_on).and(dsr::id.gt(after.id.clone()))),
        );
    }
    let mut rows: Vec<RequestRow> = query.load(conn)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next_cursor = if more {
        rows.last().map(|r| RequestCursor {
            due_on: r.due_on,
            id: r.id.clone(),
        })
    } else {
        None
    };
    let items = register
        .audit
        .read_personal_data(conn, &decision.context(&request.audit), at, |_| {
            let mut items = Vec::with_capacity(rows.len());
            for row in &rows {
                items.push(row.open(register, today)?);
            }
            Ok::<_, ClientsError>((items, rows.iter().map(RequestRow::usage).collect()))
        })?;
    Ok(RequestPage { items, next_cursor })
}

fn non_blank(field: &str, value: Option<&str>, max: usize, missing: &str) -> Result<String, ClientsError> {
    match value {
        Some(v) if !v.trim().is_empty() => {
            // The published maximum counts what was sent, so the length is checked before trimming.
            check_text(field, v, max)?;
            Ok(v.trim().to_owned())
        }
        _ => Err(rule(field, missing)),
    }
}

/// Changes a request when `expected_version` is still the stored one (412 otherwise): moves its
/// status, extends its deadline (CL-12 rules, 422 naming the field), closes it.
#[allow(clippy::too_many_lines)]
pub fn update_request(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    id: &str,
    expected_version: i64,
    changes: DataSubjectRequestChanges,
) -> Result<DataSubjectRequest, ClientsError> {
    let at = at_primitive(request.now);
    let today = today(at);
    let decision = authorise(conn, register, request, registrar_id, Some(id))?;
    let Some(row) = load(conn, registrar_id, id)? else {
        return Err(deny(conn, register, request, None, DATA_KIND, id));
    };
    if row.version != expected_version {
        return Err(ClientsError::VersionMismatch);
    }
    let current = RequestStatus::parse(&row.status);
    if !current.is_open() {
        return Err(rule(
            "status",
            "the request is closed (completed or refused) and no longer changes",
        ));
    }
    check_requester(changes.requester.as_ref())?;
    if let Some(details) = &changes.details {
        check_text("details", details, 4000)?;
    }
    let cipher = RowCipher::new(&register.keyring, TABLE, id);
    let mut next = row.clone();
    // The extension (GDPR art. 12 (3)): at most two more months, with a reason the requester was
    // told within the first month.
    let extending = changes.extend_by_months.is_some()
        || changes.extension_reason.is_some()
        || changes.extension_notified_on.is_some();
    if extending {
        let months = changes.extend_by_months.ok_or_else(|| {
            rule(
                "extend_by_months",
                "an extension says by how many months (1 or 2) the deadline moves",
            )
        })?;
        if !(1..=2).contains(&months) {
            return Err(rule(
                "extend_by_months",
                "the deadline can be extended by at most two months beyond the first",
            ));
        }
        let reason = non_blank(
            "extension_reason",
            changes.extension_reason.as_deref(),
            4000,
            "an extension needs its reason",
        )?;
        let notified = changes.extension_notified_on.ok_or_else(|| {
            rule(
                "extension_notified_on",
                "the requester must be told of the extension and its reason within the first month: record the day",
            )
        })?;
        if notified < row.received_on {
            return Err(rule("extension_notified_on", "is before the request was received"));
        }
        if notified > row.first_due_on {
            return Err(rule(
                "extension_notified_on",
                "the notice of an extension must be given within the first month (by first_due_on)",
            ));
        }
        if notified > today {
            return Err(rule("extension_notified_on", "must not be in the future"));
        }
        let months = u32::try_from(months).unwrap_or(1);
        next.due_on =
            add_months(row.received_on, 1 + months).ok_or_else(|| validation("extend_by_months", "is out of range"))?;
        next.extension_reason = Some(cipher.seal("extension_reason", &reason)?);
        next.extension_notified_on = Some(notified);
    }
    let target = changes.status.unwrap_or(current);
    if target == RequestStatus::Received && current != RequestStatus::Received {
        return Err(rule("status", "a request in progress does not go back to received"));
    }
    if target != RequestStatus::Refused && (changes.refusal_reasons.is_some() || changes.complaint_route.is_some()) {
        let field = if changes.refusal_reasons.is_some() {
            "refusal_reasons"
        } else {
            "complaint_route"
        };
        return Err(rule(
            field,
            "only a refusal (status: refused) records refusal reasons and a complaint route",
        ));
    }
    if target.is_open() && changes.closed_on.is_some() {
        return Err(rule("closed_on", "only completing or refusing a request closes it"));
    }
    if target == RequestStatus::Refused {
        let reasons = non_blank(
            "refusal_reasons",
            changes.refusal_reasons.as_deref(),
            4000,
            "a refusal records its reasons",
        )?;
        let route = match changes.complaint_route.as_deref() {
            None => DEFAULT_COMPLAINT_ROUTE.to_owned(),
            Some(route) => {
                check_text("complaint_route", route, 1000)?;
                route.trim().to_owned()
            }
        };
        next.refusal_reasons = Some(cipher.seal("refusal_reasons", &reasons)?);
        next.complaint_route = Some(route);
    }
    if let Some(verification) = changes.identity_verification {
        next.identity_verification = Some(verification.as_str().to_owned());
    }
    if target == RequestStatus::Completed && next.identity_verification.is_none() {
        return Err(rule(
            "identity_verification",
            "a request is completed only for a requester whose identity was verified: record how \
             (in_person, signed_letter or strong_electronic_identification)",
        ));
    }
    if !target.is_open() {
        let closed_on = changes.closed_on.unwrap_or(today);
        if closed_on < row.received_on {
            return Err(rule("closed_on", "is before the request was received"));
        }
        if closed_on > today {
            return Err(rule("closed_on", "must not be in the future"));
        }
        next.closed_on = Some(closed_on);
    }
    next.status = target.as_str().to_owned();
    if changes.requester.is_some() {
        next.requester = cipher.seal_json("requester", changes.requester.as_ref())?;
    }
    if let Some(details) = &changes.details {
        next.details = Some(cipher.seal("details", details.trim())?);
    }
    let context = decision.context(&request.audit);
    write_transaction_as(conn, &request.principal.account_id, |conn| {
        let updated = diesel::update(
            dsr::table
                .filter(dsr::registrar_id.eq(registrar_id))
                .filter(dsr::id.eq(id))
                .filter(dsr::version.eq(expected_version)),
        )
        .set((
            dsr::requester.eq(&next.requester),
            dsr::details.eq(&next.details),
            dsr::due_on.eq(next.due_on),
            dsr::extension_reason.eq(&next.extension_reason),
            dsr::extension_notified_on.eq(next.extension_notified_on),
            dsr::status.eq(&next.status),
            dsr::refusal_reasons.eq(&next.refusal_reasons),
            dsr::complaint_route.eq(&next.complaint_route),
            dsr::closed_on.eq(next.closed_on),
            dsr::identity_verification.eq(&next.identity_verification),
            dsr::handled_by.eq(&request.principal.account_id),
            dsr::version.eq(dsr::version + 1),
            dsr::updated_at.eq(at),
        ))
        .execute(conn)?;
        if updated == 0 {
            return Err(ClientsError::VersionMismatch);
        }
        register
            .audit
            .append_in(conn, vec![context.usage_entry(row.usage(), at)], at)?;
        Ok(())
    })?;
    get_request(conn, register, request, registrar_id, id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn cl_12_one_calendar_month_ends_on_the_last_day_of_a_shorter_month() {
        assert_eq!(add_months(date!(2026 - 01 - 15), 1), Some(date!(2026 - 02 - 15)));
        assert_eq!(add_months(date!(2026 - 01 - 31), 1), Some(date!(2026 - 02 - 28)));
        assert_eq!(add_months(date!(2028 - 01 - 31), 1), Some(date!(2028 - 02 - 29)));
        assert_eq!(add_months(date!(2026 - 03 - 31), 1), Some(date!(2026 - 04 - 30)));
        assert_eq!(add_months(date!(2026 - 12 - 31), 1), Some(date!(2027 - 01 - 31)));
        assert_eq!(add_months(date!(2026 - 11 - 30), 3), Some(date!(2027 - 02 - 28)));
        assert_eq!(add_months(date!(2026 - 02 - 28), 1), Some(date!(2026 - 03 - 28)));
    }

    #[test]
    fn cl_12_cursor_round_trips() {
        let cursor = RequestCursor {
            due_on: date!(2026 - 02 - 28),
            id: "0b7c6a3e-3f7e-4c39-9d1e-6c1b0f3d2a11".into(),
        };
        assert_eq!(RequestCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(RequestCursor::decode("2026-02-28/not-a-uuid"), None);
    }
}
