//! The deletion run (CL-15): anonymised clients past the registrar's retention go, with their
//! services, events and change history.

use diesel::prelude::*;
use rekisteri_db::DbConnection;
use rekisteri_db::history::{allow_purge, purging};
use rekisteri_db::schema::{clients, service_events, services};
use serde::Serialize;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::BATCH;
use super::purge::{purge_history, registrars, run_event};
use super::visibility::add_months;
use crate::{ClientRegister, ClientsError, at_primitive};

/// What one deletion run did (CL-15).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct DeletionReport {
    pub clients_deleted: u64,
    pub services_deleted: u64,
    pub events_deleted: u64,
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
    allow_purge(conn)?;
    let at = at_primitive(now);
    let mut report = DeletionReport::default();
    let mut per_registrar = serde_json::Map::new();
    for (registrar_id, retention_years) in registrars(conn)? {
        let cutoff = PrimitiveDateTime::new(add_months(at.date(), -12 * retention_years.clamp(1, 100)), at.time());
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
            // The deletes leave no history rows of their own (`purging`).
            let (services_deleted, events_deleted) = purging(conn, |conn| {
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
