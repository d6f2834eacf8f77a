//! Notifications to organisations about rights and incidents (RU-1, RU-4, RU-5): ids, dates and
//! kinds, no personal data.

use diesel::prelude::*;
use rekisteri_accounts::{Permission, Principal};
use rekisteri_core::Refusal;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::registry_notifications;
use serde::Serialize;
use time::PrimitiveDateTime;
use utoipa::ToSchema;

use crate::{ConsentError, format_time, new_id};

/// What a notification is about; stored and shown as [`NotificationKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NotificationKind {
    RightOpened,
    RightClosingSoon,
    RightClosingDateChanged,
    RightReopened,
    SecurityIncidentSuspected,
}

impl NotificationKind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::RightOpened => "registry_use_right_opened",
            Self::RightClosingSoon => "registry_use_right_closing_soon",
            Self::RightClosingDateChanged => "registry_use_right_closing_date_changed",
            Self::RightReopened => "registry_use_right_reopened",
            Self::SecurityIncidentSuspected => "security_incident_suspected",
        }
    }
}

pub(super) fn notify(
    conn: &mut DbConnection,
    registrar_id: &str,
    recipient_id: &str,
    kind: NotificationKind,
    subject_id: &str,
    details: serde_json::Value,
    at: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::insert_into(registry_notifications::table)
        .values((
            registry_notifications::registrar_id.eq(registrar_id),
            registry_notifications::id.eq(new_id()),
            registry_notifications::recipient_id.eq(recipient_id),
            registry_notifications::kind.eq(kind.as_str()),
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

#[derive(Debug, Queryable)]
struct NotificationRow {
    id: String,
    registrar_id: String,
    kind: String,
    subject_id: String,
    details: String,
    created_at: PrimitiveDateTime,
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
        return Err(ConsentError::Refused(Refusal::Forbidden(
            "the caller's roles grant no registry use right or incident permission".into(),
        )));
    }
    let rows: Vec<NotificationRow> = registry_notifications::table
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
            details: serde_json::from_str(&r.details).unwrap_or(serde_json::Value::Null),
            id: r.id,
            registrar_id: r.registrar_id,
            kind: r.kind,
            subject_id: r.subject_id,
            created_at: format_time(r.created_at),
        })
        .collect())
}
