//! What the anonymisation and deletion runs share: the purge of change history (within
//! `rekisteri_db::history::purging`), the registrars they walk and the security event they write.

use diesel::prelude::*;
use rekisteri_audit::{ActorKind, NewEntry, SecurityEvent};
use rekisteri_db::DbConnection;
use rekisteri_db::schema::{care_team_members, change_history, proxies, service_events, services};
use time::PrimitiveDateTime;

/// Purges the change history of the clients `ids` and of every row about them; their proxies and
/// care-team memberships (identity data of the client's circle) are deleted first. In chunks: a
/// client may have many events, and SQLite binds at most 32 766 values.
pub(super) fn purge_history(conn: &mut DbConnection, registrar_id: &str, ids: &[String]) -> QueryResult<usize> {
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
pub(super) fn registrars(conn: &mut DbConnection) -> QueryResult<Vec<(String, i32)>> {
    let mut registrars: Vec<(String, i32)> = rekisteri_accounts::directory::registrars(conn)?
        .into_iter()
        .map(|r| (r.id, r.anonymised_retention_years))
        .collect();
    registrars.sort();
    Ok(registrars)
}

pub(super) fn run_event(event_type: &str, at: PrimitiveDateTime, details: serde_json::Value) -> NewEntry {
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
