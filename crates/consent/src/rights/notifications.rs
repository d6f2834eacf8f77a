//! Notifications to organisations about rights and incidents (RU-1, RU-4, RU-5): ids, dates and
//! kinds, no personal data.

use diesel::prelude::*;
use rekisteri_accounts::{Permission, Principal};
use rekisteri_db::DbConnection;
use rekisteri_db::schema::registry_notifications;
use serde::Serialize;
use time::PrimitiveDateTime;
use utoipa::ToSchema;

use crate::{ConsentError, format_time, new_id};

pub(super) fn notify(
    conn: &mut DbConnection,
    registrar_id: &str,
    recipient_id: &str,
    kind: &str,
    subject_id: &str,
    details: serde_json::Value,
    at: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::insert_into(registry_notifications::table)
        .values((
            registry_notifications::registrar_id.eq(registrar_id),
            registry_notifications::id.eq(new_id()),
            registry_notifications::recipient_id.eq(recipient_id),
            registry_notifications::kind.eq(kind),
            registry_notifications::subject_id.eq(subject_id),
            registry_notifications::details.eq(details.to_string()),
            registry_notifications::created_at.eq(at),
        ))
        .execute(conn)
}

/// A notification to an organisation (RU-4, RU-5): ids, dates and kinds, no personal data.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegistryNotification {
    pub id: String,
    pub registrar_id: String,
    /// `registry_use_right_opened`, `registry_use_right_closing_soon`,
    /// `registry_use_right_closing_date_changed`, `registry_use_right_reopened`,
    /// `security_incident_suspected`.
    pub kind: String,
    /// The right or incident it is about.
    pub subject_id: String,
    pub details: serde_json::Value,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// The notifications addressed to the principal's organisation, oldest first: a provider's
/// users who store case documents, a registrar's users who manage rights or incidents.
pub fn list_notifications(
    conn: &mut DbConnection,
    principal: &Principal,
) -> Result<Vec<RegistryNotification>, ConsentError> {
    if ![
        Permission::StoreCaseDocuments,
        Permission::ManageRegistryUseRights,
        Permission::HandleSecurityIncidents,
    ]
    .into_iter()
    .any(|p| principal.can(p))
    {
        return Err(ConsentError::Forbidden(
            "the caller's roles grant no registry use right or incident permission".into(),
        ));
    }
    let rows: Vec<(String, String, String, String, String, PrimitiveDateTime)> = registry_notifications::table
        .filter(registry_notifications::recipient_id.eq(&principal.organisation_id))
        .order((registry_notifications::created_at, registry_notifications::id))
        .select((
            registry_notifications::id,
            registry_notifications::registrar_id,
            registry_notifications::kind,
            registry_notifications::subject_id,
            registry_notifications::details,
            registry_notifications::created_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| RegistryNotification {
            id: r.0,
            registrar_id: r.1,
            kind: r.2,
            subject_id: r.3,
            details: serde_json::from_str(&r.4).unwrap_or(serde_json::Value::Null),
            created_at: format_time(r.5),
        })
        .collect())
}
