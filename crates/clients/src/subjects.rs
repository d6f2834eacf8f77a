//! Whose data a record is: for what a response discloses (the usage entry of an idempotent
//! replay, PL-2, AU-1).

use diesel::prelude::*;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::{care_team_members, clients, proxies, service_events, services};

use crate::ClientsError;

/// The blind index of the person that record `data_id` of kind `data_kind` (`client`,
/// `service`, `service_event`, `proxy`, `care_team_member`) of the registrar is about; `None` for another kind or a record
/// that is not there (or anonymised).
pub fn subject_of(
    conn: &mut DbConnection,
    registrar_id: &str,
    data_kind: &str,
    data_id: &str,
) -> Result<Option<[u8; 32]>, ClientsError> {
    let client_id: Option<String> = match data_kind {
        "client" => Some(data_id.to_owned()),
        "service" => services::table
            .filter(services::registrar_id.eq(registrar_id))
            .filter(services::id.eq(data_id))
            .select(services::client_id)
            .first(conn)
            .optional()?,
        "service_event" => service_events::table
            .filter(service_events::registrar_id.eq(registrar_id))
            .filter(service_events::id.eq(data_id))
            .select(service_events::client_id)
            .first(conn)
            .optional()?,
        "proxy" => proxies::table
            .filter(proxies::registrar_id.eq(registrar_id))
            .filter(proxies::id.eq(data_id))
            .select(proxies::client_id)
            .first(conn)
            .optional()?,
        "care_team_member" => care_team_members::table
            .filter(care_team_members::registrar_id.eq(registrar_id))
            .filter(care_team_members::id.eq(data_id))
            .select(care_team_members::client_id)
            .first(conn)
            .optional()?,
        _ => None,
    };
    let Some(client_id) = client_id else { return Ok(None) };
    let index: Option<Option<Vec<u8>>> = clients::table
        .filter(clients::registrar_id.eq(registrar_id))
        .filter(clients::id.eq(client_id))
        .select(clients::subject_index)
        .first(conn)
        .optional()?;
    Ok(index.flatten().and_then(|i| i.as_slice().try_into().ok()))
}
