//! Granted services (CL-4) and the service events providers record against them (CL-5).

use diesel::prelude::*;
use rekisteri_accounts::Permission;
use rekisteri_audit::{DataUse, Outcome};
use rekisteri_core::Refusal;
use rekisteri_db::schema::{service_events, services};
use rekisteri_db::{DbConnection, write_transaction_as};
use time::{Date, PrimitiveDateTime};

use crate::access::{Decision, Reach, decide_for};
use crate::clients::{CheckedService, check_service, deny, load_client};
use crate::sealed::RowCipher;
use crate::{
    ClientRegister, ClientsError, NewService, NewServiceEvent, Quantity, Request, Service, ServiceChanges,
    ServiceEvent, ServiceKind, ServiceStatus, Unit, at_primitive, format_time, rule, validation,
};

#[derive(Debug, Clone, Queryable)]
pub(crate) struct ServiceRow {
    pub registrar_id: String,
    pub id: String,
    pub client_id: String,
    pub kind: String,
    pub service_type: String,
    pub service_name: String,
    pub quantity_centi: i64,
    pub unit: String,
    pub unit_value_cents: Option<i64>,
    pub valid_from: Date,
    pub valid_to: Date,
    pub provider_id: String,
    pub provider_unit_oid: Option<String>,
    pub decision_ref: Option<String>,
    pub status: String,
    pub closed_on: Option<Date>,
    pub additional_info: Option<Vec<u8>>,
    pub version: i64,
    pub created_at: PrimitiveDateTime,
    pub updated_at: PrimitiveDateTime,
}

macro_rules! service_columns {
    () => {
        (
            services::registrar_id,
            services::id,
            services::client_id,
            services::kind,
            services::service_type,
            services::service_name,
            services::quantity_centi,
            services::unit,
            services::unit_value_cents,
            services::valid_from,
            services::valid_to,
            services::provider_id,
            services::provider_unit_oid,
            services::decision_ref,
            services::status,
            services::closed_on,
            services::additional_info,
            services::version,
            services::created_at,
            services::updated_at,
        )
    };
}
pub(crate) use service_columns;

fn service_view(row: &ServiceRow, additional_info: Option<String>) -> Service {
    Service {
        id: row.id.clone(),
        client_id: row.client_id.clone(),
        kind: ServiceKind::parse(&row.kind),
        service_type: row.service_type.clone(),
        service_name: row.service_name.clone(),
        quantity: Quantity(row.quantity_centi),
        unit: Unit::parse(&row.unit),
        unit_value_cents: row.unit_value_cents,
        valid_from: row.valid_from,
        valid_to: row.valid_to,
        provider_id: row.provider_id.clone(),
        provider_unit_oid: row.provider_unit_oid.clone(),
        decision_ref: row.decision_ref.clone(),
        status: if row.status == "closed" {
            ServiceStatus::Closed
        } else {
            ServiceStatus::Active
        },
        closed_on: row.closed_on,
        additional_info,
        version: row.version,
    }
}

/// Opens a service row (its additional information is sealed: free text may name people).
pub(crate) fn open_service(register: &ClientRegister, row: &ServiceRow) -> Result<Service, ClientsError> {
    let info = RowCipher::new(&register.keyring, "services", &row.id)
        .open_opt("additional_info", row.additional_info.as_deref())?;
    Ok(service_view(row, info))
}

/// A new service's row and the view of it the caller sent.
pub(crate) fn new_service_row(
    register: &ClientRegister,
    registrar_id: &str,
    client_id: &str,
    checked: CheckedService,
    at: PrimitiveDateTime,
) -> Result<(ServiceRow, Service), ClientsError> {
    let id = rekisteri_core::ids::new_row_id();
    let new = checked.new;
    let cipher = RowCipher::new(&register.keyring, "services", &id);
    let row = ServiceRow {
        registrar_id: registrar_id.to_owned(),
        id: id.clone(),
        client_id: client_id.to_owned(),
        kind: new.kind.as_str().to_owned(),
        service_type: new.service_type,
        service_name: new.service_name.trim().to_owned(),
        quantity_centi: new.quantity.centi(),
        unit: new.unit.as_str().to_owned(),
        unit_value_cents: new.unit_value_cents,
        valid_from: new.valid_from,
        valid_to: new.valid_to,
        provider_id: checked.provider_id,
        provider_unit_oid: new.provider_unit_oid.map(|o| o.to_string()),
        decision_ref: new.decision_ref,
        status: "active".into(),
        closed_on: None,
        additional_info: cipher.seal_opt("additional_info", new.additional_info.as_deref())?,
        version: 1,
        created_at: at,
        updated_at: at,
    };
    let view = service_view(&row, new.additional_info);
    Ok((row, view))
}

pub(crate) fn insert_service(conn: &mut DbConnection, row: &ServiceRow) -> QueryResult<usize> {
    diesel::insert_into(services::table)
        .values((
            services::registrar_id.eq(&row.registrar_id),
            services::id.eq(&row.id),
            services::client_id.eq(&row.client_id),
            services::kind.eq(&row.kind),
            services::service_type.eq(&row.service_type),
            services::service_name.eq(&row.service_name),
            services::quantity_centi.eq(row.quantity_centi),
            services::unit.eq(&row.unit),
            services::unit_value_cents.eq(row.unit_value_cents),
            services::valid_from.eq(row.valid_from),
            services::valid_to.eq(row.valid_to),
            services::provider_id.eq(&row.provider_id),
            services::provider_unit_oid.eq(&row.provider_unit_oid),
            services::decision_ref.eq(&row.decision_ref),
            services::status.eq(&row.status),
            services::closed_on.eq(row.closed_on),
            services::additional_info.eq(&row.additional_info),
            services::version.eq(row.version),
            services::created_at.eq(row.created_at),
            services::updated_at.eq(row.updated_at),
        ))
        .execute(conn)
}

/// The day a service ends: its closing day when it was closed, else the last day of its decision
/// (CL-13's visibility, RU-5's closing of a right and the statistics all count from it).
pub fn service_ends_on(closed_on: Option<Date>, valid_to: Date) -> Date {
    closed_on.unwrap_or(valid_to)
}

/// What the other registers need of a service (RU-1, RU-5): whose it is, its kind and provider,
/// and its term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTerm {
    pub client_id: String,
    pub kind: ServiceKind,
    pub provider_id: String,
    pub valid_to: Date,
    pub closed_on: Option<Date>,
}

impl ServiceTerm {
    /// See [`service_ends_on`].
    pub fn ends_on(&self) -> Date {
        service_ends_on(self.closed_on, self.valid_to)
    }
}

/// The term of service `service_id` of the registrar; none when there is no such service.
pub fn service_term(
    conn: &mut DbConnection,
    registrar_id: &str,
    service_id: &str,
) -> Result<Option<ServiceTerm>, ClientsError> {
    let row: Option<(String, String, String, Date, Option<Date>)> = services::table
        .filter(services::registrar_id.eq(registrar_id))
        .filter(services::id.eq(service_id))
        .select((
            services::client_id,
            services::kind,
            services::provider_id,
            services::valid_to,
            services::closed_on,
        ))
        .first(conn)
        .optional()?;
    Ok(
        row.map(|(client_id, kind, provider_id, valid_to, closed_on)| ServiceTerm {
            client_id,
            kind: ServiceKind::parse(&kind),
            provider_id,
            valid_to,
            closed_on,
        }),
    )
}

/// Whether a service's row is read for a decision or to be changed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ServiceLock {
    None,
    /// Locked until the transaction ends (PostgreSQL `FOR UPDATE`; SQLite's write transaction
    /// already holds the lock), so that a change applies to the row as it stands.
    ForUpdate,
}

fn load_service(
    conn: &mut DbConnection,
    registrar_id: &str,
    service_id: &str,
    lock: ServiceLock,
) -> QueryResult<Option<ServiceRow>> {
    let query = services::table
        .filter(services::registrar_id.eq(registrar_id))
        .filter(services::id.eq(service_id))
        .select(service_columns!());
    if lock == ServiceLock::ForUpdate
        && let DbConnection::Postgres(c) = conn
    {
        return query.for_update().first(c).optional();
    }
    query.first(conn).optional()
}

/// A service the decision reaches, with its client's index for the log; otherwise a logged
/// denial and 404.
fn reachable_service(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    decision: &Decision,
    registrar_id: &str,
    service_id: &str,
) -> Result<(ServiceRow, Option<[u8; 32]>), ClientsError> {
    let row = load_service(conn, registrar_id, service_id, ServiceLock::None)?;
    let client = match &row {
        Some(row) => load_client(conn, registrar_id, &row.client_id)?,
        None => None,
    };
    let subject = client.as_ref().and_then(|c| c.subject());
    // CL-13: the services of a client past the end of visibility are not there either.
    let mut visible = match &row {
        Some(row) => {
            decision.reaches_service(&row.service_type, &row.provider_id)
                && client.as_ref().is_some_and(|c| c.anonymised_at.is_none())
                && crate::lifecycle::is_visible(
                    conn,
                    registrar_id,
                    &decision.reach,
                    &row.client_id,
                    request.now.date(),
                )?
        }
        None => false,
    };
    if visible && let (Some(gate), Some(row)) = (&decision.care, &row) {
        visible = crate::care_team::has_care_relationship(conn, registrar_id, &row.client_id, gate)?;
    }
    match (row, client) {
        (Some(row), Some(client)) if visible => {
            crate::clients::ensure_not_restricted(&client)?;
            Ok((row, subject))
        }
        _ => Err(deny(conn, register, request, subject, "service", service_id)),
    }
}

fn used(subject: Option<[u8; 32]>, kind: &str, id: &str) -> DataUse {
    DataUse {
        subject_index: subject,
        data_kind: kind.to_owned(),
        data_id: Some(id.to_owned()),
        outcome: Outcome::Used,
    }
}

/// The client's services the caller may see.
pub fn list_services(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
) -> Result<Vec<Service>, ClientsError> {
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::ReadClients)?;
    let (client, rows) = crate::clients::reachable_client(conn, register, request, &decision, registrar_id, client_id)?;
    crate::clients::ensure_not_restricted(&client)?;
    let subject = client.subject();
    let visible: Vec<ServiceRow> = rows
        .into_iter()
        .filter(|s| decision.reaches_service(&s.service_type, &s.provider_id))
        .collect();
    register
        .audit
        .read_personal_data(conn, &decision.context(&request.audit), at, |_| {
            let services = visible
                .iter()
                .map(|s| open_service(register, s))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, ClientsError>((services, vec![used(subject, "services", client_id)]))
        })
}

/// Grants the client another service (CL-4); the registrar's staff within their service areas.
pub fn add_service(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
    new: NewService,
) -> Result<Service, ClientsError> {
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::WriteClients)?;
    let client = load_client(conn, registrar_id, client_id)?;
    let subject = client.as_ref().and_then(|c| c.subject());
    // A client the caller does not see through its own areas is not there for it (AX-4).
    let visible = crate::clients::load_services_of(conn, registrar_id, &[client_id.to_owned()])?
        .iter()
        .any(|s| decision.reaches_service(&s.service_type, &s.provider_id))
        && crate::lifecycle::is_visible(conn, registrar_id, &decision.reach, client_id, request.now.date())?;
    match (&decision.reach, &client) {
        (Reach::Registrar { .. }, Some(c)) if c.anonymised_at.is_none() && visible => {
            crate::clients::ensure_not_restricted(c)?;
        }
        (Reach::Provider { .. }, Some(_)) => {
            return Err(ClientsError::Refused(Refusal::Forbidden(
                "services are granted by the registrar, not by providers".into(),
            )));
        }
        _ => return Err(deny(conn, register, request, subject, "client", client_id)),
    }
    let checked = check_service(conn, &decision, registrar_id, "", new)?;
    let (row, view) = new_service_row(register, registrar_id, client_id, checked, at)?;
    let context = decision.context(&request.audit);
    let written = write_transaction_as(conn, &request.principal.account_id, |conn| {
        if !crate::lifecycle::hold_client_against_anonymisation(conn, registrar_id, client_id)? {
            return Ok(false);
        }
        insert_service(conn, &row)?;
        let entry = context.usage_entry(used(subject, "service", &row.id), at);
        register.audit.append_in(conn, vec![entry], at)?;
        Ok::<_, ClientsError>(true)
    })?;
    if !written {
        // Anonymised since it was checked above.
        return Err(deny(conn, register, request, subject, "client", client_id));
    }
    Ok(view)
}

/// One service, when the caller reaches it.
pub fn get_service(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    service_id: &str,
) -> Result<Service, ClientsError> {
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::ReadClients)?;
    let (row, subject) = reachable_service(conn, register, request, &decision, registrar_id, service_id)?;
    register
        .audit
        .read_personal_data(conn, &decision.context(&request.audit), at, |_| {
            Ok::<_, ClientsError>((open_service(register, &row)?, vec![used(subject, "service", &row.id)]))
        })
}

/// `changes` applied to the service as it stands, or why they cannot be.
fn apply_service_changes(
    row: &mut ServiceRow,
    changes: &ServiceChanges,
    sealed_info: Option<&Vec<u8>>,
    today: Date,
) -> Result<(), ClientsError> {
    if let Some(valid_to) = changes.valid_to {
        if valid_to < row.valid_from {
            return Err(rule("valid_to", "must be on or after valid_from"));
        }
        row.valid_to = valid_to;
    }
    if let Some(quantity) = changes.quantity {
        row.quantity_centi = quantity.centi();
    }
    match (changes.status, changes.closed_on) {
        (Some(ServiceStatus::Closed), closed_on) => {
            if row.status == "closed" {
                return Err(ClientsError::Refused(Refusal::Conflict(
                    "the service is already closed".into(),
                )));
            }
            let closed_on = closed_on.unwrap_or(today);
            if closed_on < row.valid_from {
                return Err(rule("closed_on", "must be on or after valid_from"));
            }
            row.status = "closed".into();
            row.closed_on = Some(closed_on);
        }
        (Some(ServiceStatus::Active), _) => {
            return Err(validation(
                "status",
                "a closed service is not reopened; grant a new service",
            ));
        }
        (None, Some(_)) => return Err(rule("closed_on", "is given with status: closed")),
        (None, None) => {}
    }
    if let Some(sealed) = sealed_info {
        row.additional_info = Some(sealed.clone());
    }
    Ok(())
}

/// Changes a service: closing (`status: closed` with `closed_on`), a new end date, quantity or
/// additional information. The registrar's staff only. The changes are applied to the row as it
/// stands in the write transaction, not as it was read for the access decision, so that a
/// concurrent change of another field (or the anonymisation's purge) is kept.
pub fn update_service(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    service_id: &str,
    changes: ServiceChanges,
) -> Result<Service, ClientsError> {
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::ReadClients)?;
    let (read, subject) = reachable_service(conn, register, request, &decision, registrar_id, service_id)?;
    if decision.is_provider() || !request.principal.can(Permission::WriteClients) {
        return Err(ClientsError::Refused(Refusal::Forbidden(
            "services are changed by the registrar, not by providers".into(),
        )));
    }
    // Checked against the row as read, for an answer before any lock is taken; again below.
    apply_service_changes(&mut read.clone(), &changes, None, request.now.date())?;
    let sealed_info = match &changes.additional_info {
        Some(info) => {
            if info.chars().count() > 4000 {
                return Err(validation("additional_info", "must be at most 4000 characters"));
            }
            Some(RowCipher::new(&register.keyring, "services", service_id).seal("additional_info", info)?)
        }
        None => None,
    };
    let context = decision.context(&request.audit);
    let service = write_transaction_as(conn, &request.principal.account_id, |conn| {
        // The client before the service, in the order the anonymisation locks them.
        if !crate::lifecycle::hold_client_against_anonymisation(conn, registrar_id, &read.client_id)? {
            return Ok(None);
        }
        let Some(mut row) = load_service(conn, registrar_id, service_id, ServiceLock::ForUpdate)? else {
            return Ok(None);
        };
        apply_service_changes(&mut row, &changes, sealed_info.as_ref(), request.now.date())?;
        let delivered: i64 = service_events::table
            .filter(service_events::registrar_id.eq(registrar_id))
            .filter(service_events::service_id.eq(service_id))
            .select(service_events::quantity_centi)
            .load::<i64>(conn)?
            .into_iter()
            .sum();
        if delivered > row.quantity_centi {
            return Err(rule("quantity", "is less than what has already been delivered"));
        }
        diesel::update(
            services::table
                .filter(services::registrar_id.eq(registrar_id))
                .filter(services::id.eq(service_id)),
        )
        .set((
            services::valid_to.eq(row.valid_to),
            services::quantity_centi.eq(row.quantity_centi),
            services::status.eq(&row.status),
            services::closed_on.eq(row.closed_on),
            services::additional_info.eq(&row.additional_info),
            services::version.eq(services::version + 1),
            services::updated_at.eq(at),
        ))
        .execute(conn)?;
        let entry = context.usage_entry(used(subject, "service", service_id), at);
        register.audit.append_in(conn, vec![entry], at)?;
        row.version += 1;
        row.updated_at = at;
        Ok::<_, ClientsError>(Some(service_view(&row, changes.additional_info.clone())))
    })?;
    let Some(service) = service else {
        // Anonymised (or deleted) since it was checked above.
        return Err(deny(conn, register, request, subject, "service", service_id));
    };
    if changes.additional_info.is_some() {
        return Ok(service);
    }
    // The stored additional information goes back only through the logged read path.
    get_service(conn, register, request, registrar_id, service_id)
}

pub(crate) type EventRow = (String, String, Date, i64, i64, Option<Vec<u8>>, PrimitiveDateTime);

/// Every event of the client's services, in delivery order.
pub(crate) fn events_of_client(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_id: &str,
) -> QueryResult<Vec<EventRow>> {
    service_events::table
        .filter(service_events::registrar_id.eq(registrar_id))
        .filter(service_events::client_id.eq(client_id))
        .order((
            service_events::delivered_on,
            service_events::created_at,
            service_events::id,
        ))
        .select((
            service_events::id,
            service_events::service_id,
            service_events::delivered_on,
            service_events::quantity_centi,
            service_events::unit_price_cents,
            service_events::note,
            service_events::created_at,
        ))
        .load(conn)
}

pub(crate) fn open_event(register: &ClientRegister, row: EventRow) -> Result<ServiceEvent, ClientsError> {
    let (id, service_id, delivered_on, quantity, price, note, created_at) = row;
    let note = RowCipher::new(&register.keyring, "service_events", &id).open_opt("note", note.as_deref())?;
    Ok(ServiceEvent {
        id,
        service_id,
        delivered_on,
        quantity: Quantity(quantity),
        unit_price_cents: price,
        note,
        created_at: format_time(created_at),
    })
}

/// Whether a delivery on `delivered_on` falls within the service's validity and before its
/// closing (CL-5).
fn check_delivery_date(row: &ServiceRow, delivered_on: Date) -> Result<(), ClientsError> {
    if delivered_on < row.valid_from || delivered_on > row.valid_to {
        return Err(rule(
            "delivered_on",
            format!(
                "is outside the service's validity {} – {}",
                row.valid_from, row.valid_to
            ),
        ));
    }
    if let Some(closed_on) = row.closed_on
        && delivered_on > closed_on
    {
        return Err(rule(
            "delivered_on",
            format!("is after the service closed on {closed_on}"),
        ));
    }
    Ok(())
}

/// Records a delivered service (CL-5). Refused with 422 outside the service's validity (or
/// after its closing), beyond the granted quantity, or when the caller is not the service's
/// provider; another provider does not see the service at all (404).
pub fn record_event(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    service_id: &str,
    new: NewServiceEvent,
) -> Result<crate::Created<ServiceEvent>, ClientsError> {
    let at = at_primitive(request.now);
    // Who sees the service learns why it may not record: only its provider does (422);
    // whoever does not see it gets 404 like for a missing one.
    let decision = decide_for(conn, request, registrar_id, Permission::ReadClients)?;
    let (row, subject) = reachable_service(conn, register, request, &decision, registrar_id, service_id)?;
    if row.provider_id != request.principal.organisation_id {
        return Err(rule("service_id", "only the service's provider records its events"));
    }
    if !request.principal.can(Permission::RecordServiceEvents) {
        return Err(ClientsError::Refused(Refusal::Forbidden(
            "the caller's roles do not grant record_service_events".into(),
        )));
    }
    if let Some(note) = &new.note
        && note.chars().count() > 4000
    {
        return Err(validation("note", "must be at most 4000 characters"));
    }
    let kind = ServiceKind::parse(&row.kind);
    let price = match (kind, new.unit_price_cents, row.unit_value_cents) {
        (ServiceKind::ServiceVoucher, Some(given), Some(value)) if given != value => {
            return Err(rule(
                "unit_price_cents",
                "a service voucher is paid at its value per unit",
            ));
        }
        (ServiceKind::ServiceVoucher, _, Some(value)) => value,
        (_, Some(given), _) if (0..=100_000_000).contains(&given) => given,
        (_, Some(_), _) => return Err(validation("unit_price_cents", "must be 0-100000000 cents")),
        (_, None, _) => {
            return Err(validation(
                "unit_price_cents",
                "a purchased service's event needs the agreed unit price",
            ));
        }
    };
    check_delivery_date(&row, new.delivered_on)?;
    let id = rekisteri_core::ids::new_row_id();
    let note = RowCipher::new(&register.keyring, "service_events", &id).seal_opt("note", new.note.as_deref())?;
    let context = decision.context(&request.audit);
    // Owned, for the group-commit writer (PL-13), which runs the transaction on its thread.
    let audit = register.audit.clone();
    let (registrar, service, event_id) = (registrar_id.to_owned(), service_id.to_owned(), id.clone());
    let client_id = row.client_id.clone();
    let recorded_by = request.principal.account_id.clone();
    let (delivered_on, quantity) = (new.delivered_on, new.quantity);
    let written = rekisteri_db::group_commit::write_as(conn, &request.principal.account_id, move |conn| {
        let (registrar_id, service_id, id) = (registrar.as_str(), service.as_str(), event_id.as_str());
        // The client before the service, in the order the anonymisation locks them.
        if !crate::lifecycle::hold_client_against_anonymisation(conn, registrar_id, &client_id)? {
            return Err(ClientsError::Refused(Refusal::NotFound));
        }
        // The service as it stands, locked so that concurrent events cannot together exceed
        // the grant, nor one be recorded past a closing or a shortening made meanwhile.
        let Some(current) = load_service(conn, registrar_id, service_id, ServiceLock::ForUpdate)? else {
            return Err(ClientsError::Refused(Refusal::NotFound));
        };
        check_delivery_date(&current, delivered_on)?;
        let (granted, unit) = (current.quantity_centi, current.unit);
        let delivered: i64 = service_events::table
            .filter(service_events::registrar_id.eq(registrar_id))
            .filter(service_events::service_id.eq(service_id))
            .select(service_events::quantity_centi)
            .load::<i64>(conn)?
            .into_iter()
            .sum();
        if delivered + quantity.centi() > granted {
            return Err(rule(
                "quantity",
                format!(
                    "exceeds the granted quantity: {} of {} {} delivered before",
                    Quantity(delivered),
                    Quantity(granted),
                    unit
                ),
            ));
        }
        diesel::insert_into(service_events::table)
            .values((
                service_events::registrar_id.eq(registrar_id),
                service_events::id.eq(id),
                service_events::service_id.eq(service_id),
                service_events::client_id.eq(&client_id),
                service_events::delivered_on.eq(delivered_on),
                service_events::quantity_centi.eq(quantity.centi()),
                service_events::unit_price_cents.eq(price),
                service_events::note.eq(&note),
                service_events::recorded_by.eq(&recorded_by),
                service_events::created_at.eq(at),
            ))
            .execute(conn)?;
        let entry = context.usage_entry(used(subject, "service_event", id), at);
        audit.append_in(conn, vec![entry], at)?;
        Ok::<_, ClientsError>(())
    });
    match written {
        // Anonymised since it was checked above.
        Err(ClientsError::Refused(Refusal::NotFound)) => {
            return Err(deny(conn, register, request, subject, "service", service_id));
        }
        other => other?,
    }
    let event = ServiceEvent {
        id,
        service_id: service_id.to_owned(),
        delivered_on: new.delivered_on,
        quantity: new.quantity,
        unit_price_cents: price,
        note: new.note,
        created_at: format_time(at),
    };
    Ok(crate::Created::of_subject(event, subject))
}

/// The events recorded against a service the caller reaches, in delivery order.
pub fn list_events(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    service_id: &str,
) -> Result<Vec<ServiceEvent>, ClientsError> {
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::ReadClients)?;
    let (row, subject) = reachable_service(conn, register, request, &decision, registrar_id, service_id)?;
    let rows: Vec<EventRow> = service_events::table
        .filter(service_events::registrar_id.eq(registrar_id))
        .filter(service_events::service_id.eq(&row.id))
        .order((
            service_events::delivered_on,
            service_events::created_at,
            service_events::id,
        ))
        .select((
            service_events::id,
            service_events::service_id,
            service_events::delivered_on,
            service_events::quantity_centi,
            service_events::unit_price_cents,
            service_events::note,
            service_events::created_at,
        ))
        .load(conn)?;
    register
        .audit
        .read_personal_data(conn, &decision.context(&request.audit), at, |_| {
            let events = rows
                .into_iter()
                .map(|r| open_event(register, r))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, ClientsError>((events, vec![used(subject, "service_events", service_id)]))
        })
}
