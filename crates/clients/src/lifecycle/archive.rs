//! The archive export of the clients due (CL-14): the whole record in clear for the registrar's
//! long-term archive, logged as a use and a disclosure before the data leaves.

use diesel::prelude::*;
use rekisteri_accounts::Permission;
use rekisteri_audit::{DataUse, DisclosureEntry, NewEntry, Outcome};
use rekisteri_core::Refusal;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::service_events;
use serde::Serialize;
use time::{Date, PrimitiveDateTime};
use utoipa::ToSchema;

use super::due::{DueClient, check_lead, due_page};
use crate::access::decide_for;
use crate::clients::{load_client, load_services_of, open_client};
use crate::sealed::RowCipher;
use crate::{Client, ClientRegister, ClientsError, Quantity, Request, ServiceEvent, at_primitive, format_time};

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
    let (ids, mut entries, next_cursor) = due_page(conn, registrar_id, &decision.reach, today, lead, after, limit)?;
    let plain: Vec<String> = ids.into_iter().map(|(id, _)| id).collect();
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
