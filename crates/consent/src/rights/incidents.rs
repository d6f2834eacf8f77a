//! Security incidents (RU-4): reported by the registrar's users or its contracted providers,
//! assessed by the registrar's data-protection officers within the 72-hour clock.

use diesel::prelude::*;
use rekisteri_accounts::{Permission, Principal};
use rekisteri_core::Refusal;
use rekisteri_db::schema::{case_documents, provider_contracts, security_incidents};
use rekisteri_db::{DbConnection, write_transaction};
use serde::{Deserialize, Serialize};
use time::{Duration, PrimitiveDateTime};
use utoipa::ToSchema;

use super::common::{is_organiser, open, organisation_kind, organiser_staff, seal};
use super::notifications::{NotificationKind, notify};
use crate::{ConsentError, ConsentRegister, at_primitive, format_time, new_id, rule, validation};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    #[schema(min_length = 1, pattern = "\\S")]
    pub description: String,
    /// RFC 3339; now when absent. The 72-hour clock runs from it.
    #[schema(format = DateTime)]
    pub discovered_at: Option<String>,
    /// A document found stored in the wrong register.
    pub document_id: Option<String>,
}

/// A move of the incident's state, the data subjects' notification, or both; at least one
/// (an empty change is 422 naming `body`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentChanges {
    /// `assessed`, `authority_notified` or `notification_not_required`; absent: the state stays.
    #[schema(pattern = "^(assessed|authority_notified|notification_not_required)$")]
    pub state: Option<String>,
    pub assessment: Option<String>,
    /// Whether the data subjects were notified of the incident. Once `true`, it stays.
    pub data_subjects_notified: Option<bool>,
    /// RFC 3339; when they were notified: only with `data_subjects_notified: true` (then now
    /// when absent), not before discovery and not in the future.
    #[schema(format = DateTime)]
    pub data_subjects_notified_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecurityIncident {
    pub id: String,
    pub registrar_id: String,
    /// `suspected`, `assessed`, `authority_notified` or `notification_not_required`.
    pub state: String,
    /// `reported`, `refused_store` or `misplaced_document`.
    pub source: String,
    pub description: Option<String>,
    pub document_id: Option<String>,
    #[schema(format = DateTime)]
    pub discovered_at: String,
    /// Discovery + 72 hours: the authority must be notified by then (source 003 §3.3.1).
    pub notify_by: String,
    pub assessment: Option<String>,
    /// When the authority was notified.
    #[schema(format = DateTime)]
    pub notified_at: Option<String>,
    pub reported_by: String,
    /// Whether the data subjects were notified; null: not recorded yet.
    pub data_subjects_notified: Option<bool>,
    /// When the data subjects were notified.
    #[schema(format = DateTime)]
    pub data_subjects_notified_at: Option<String>,
}

/// Where an incident stands (RU-4): `suspected` → `assessed` → `authority_notified` or
/// `notification_not_required`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IncidentState {
    Suspected,
    Assessed,
    AuthorityNotified,
    NotificationNotRequired,
}

impl IncidentState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Suspected => "suspected",
            Self::Assessed => "assessed",
            Self::AuthorityNotified => "authority_notified",
            Self::NotificationNotRequired => "notification_not_required",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value {
            "suspected" => Some(Self::Suspected),
            "assessed" => Some(Self::Assessed),
            "authority_notified" => Some(Self::AuthorityNotified),
            "notification_not_required" => Some(Self::NotificationNotRequired),
            _ => None,
        }
    }

    fn may_move_to(self, next: Self) -> bool {
        matches!(
            (self, next),
            (Self::Suspected, Self::Assessed)
                | (Self::Assessed, Self::AuthorityNotified)
                | (Self::Assessed, Self::NotificationNotRequired)
        )
    }
}

/// An incident as loaded with `incident_columns`, sealed texts still sealed.
#[derive(Debug, Queryable)]
struct IncidentRow {
    id: String,
    state: String,
    source: String,
    description: Option<Vec<u8>>,
    document_id: Option<String>,
    discovered_at: PrimitiveDateTime,
    notify_by: PrimitiveDateTime,
    assessment: Option<Vec<u8>>,
    notified_at: Option<PrimitiveDateTime>,
    reported_by: String,
    data_subjects_notified: Option<bool>,
    data_subjects_notified_at: Option<PrimitiveDateTime>,
}

macro_rules! incident_columns {
    () => {
        (
            security_incidents::id,
            security_incidents::state,
            security_incidents::source,
            security_incidents::description,
            security_incidents::document_id,
            security_incidents::discovered_at,
            security_incidents::notify_by,
            security_incidents::assessment,
            security_incidents::notified_at,
            security_incidents::reported_by,
            security_incidents::data_subjects_notified,
            security_incidents::data_subjects_notified_at,
        )
    };
}

fn incident_of(
    register: &ConsentRegister,
    registrar_id: &str,
    r: IncidentRow,
) -> Result<SecurityIncident, ConsentError> {
    Ok(SecurityIncident {
        description: r
            .description
            .as_deref()
            .map(|d| open(register, "security_incidents", "description", &r.id, d))
            .transpose()?,
        assessment: r
            .assessment
            .as_deref()
            .map(|d| open(register, "security_incidents", "assessment", &r.id, d))
            .transpose()?,
        id: r.id,
        registrar_id: registrar_id.to_owned(),
        state: r.state,
        source: r.source,
        document_id: r.document_id,
        discovered_at: format_time(r.discovered_at),
        notify_by: format_time(r.notify_by),
        notified_at: r.notified_at.map(format_time),
        reported_by: r.reported_by,
        data_subjects_notified: r.data_subjects_notified,
        data_subjects_notified_at: r.data_subjects_notified_at.map(format_time),
    })
}

/// RU-4: any user of the registrar, or of a provider with a contract with it, reports a
/// suspected breach; the 72-hour clock runs from discovery and the registrar's contact is
/// notified through the outbox.
pub fn report_security_incident(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    principal: &Principal,
    registrar_id: &str,
    body: NewIncident,
    now: time::OffsetDateTime,
) -> Result<SecurityIncident, ConsentError> {
    if !is_organiser(organisation_kind(conn, registrar_id)?) {
        return Err(ConsentError::Refused(Refusal::NotFound));
    }
    if principal.organisation_id != registrar_id {
        let contracted: i64 = provider_contracts::table
            .filter(provider_contracts::registrar_id.eq(registrar_id))
            .filter(provider_contracts::provider_id.eq(&principal.organisation_id))
            .count()
            .get_result(conn)?;
        if contracted == 0 {
            return Err(ConsentError::Refused(Refusal::NotFound));
        }
    }
    if body.description.trim().is_empty() {
        return Err(validation("description", "is required"));
    }
    let discovered = match body.discovered_at.as_deref() {
        None => at_primitive(now),
        Some(text) => {
            let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|_| validation("discovered_at", "must be an RFC 3339 date-time"))?;
            if parsed > now {
                return Err(rule("discovered_at", "must not be in the future"));
            }
            at_primitive(parsed)
        }
    };
    if let Some(document_id) = body.document_id.as_deref() {
        let found: i64 = case_documents::table
            .filter(case_documents::registrar_id.eq(registrar_id))
            .filter(case_documents::id.eq(document_id))
            .count()
            .get_result(conn)?;
        if found == 0 {
            return Err(validation("document_id", "is not a document stored in this register"));
        }
    }
    let source = if body.document_id.is_some() {
        "misplaced_document"
    } else {
        "reported"
    };
    let id = new_id();
    let at = at_primitive(now);
    let description = seal(
        register,
        "security_incidents",
        "description",
        &id,
        body.description.trim(),
    )?;
    write_transaction(conn, |conn| {
        diesel::insert_into(security_incidents::table)
            .values((
                security_incidents::registrar_id.eq(registrar_id),
                security_incidents::id.eq(&id),
                security_incidents::state.eq(IncidentState::Suspected.as_str()),
                security_incidents::source.eq(source),
                security_incidents::description.eq(Some(&description)),
                security_incidents::document_id.eq(body.document_id.as_deref()),
                security_incidents::discovered_at.eq(discovered),
                security_incidents::notify_by.eq(discovered + Duration::hours(72)),
                security_incidents::reported_by.eq(&principal.account_id),
                security_incidents::version.eq(1i64),
                security_incidents::created_at.eq(at),
                security_incidents::updated_at.eq(at),
            ))
            .execute(conn)?;
        notify(
            conn,
            registrar_id,
            registrar_id,
            NotificationKind::SecurityIncidentSuspected,
            &id,
            serde_json::json!({"incident_id": id, "notify_by": format_time(discovered + Duration::hours(72))}),
            at,
        )?;
        Ok::<_, ConsentError>(())
    })?;
    Ok(SecurityIncident {
        id: id.clone(),
        registrar_id: registrar_id.to_owned(),
        state: IncidentState::Suspected.as_str().into(),
        source: source.into(),
        description: Some(body.description.trim().to_owned()),
        document_id: body.document_id,
        discovered_at: format_time(discovered),
        notify_by: format_time(discovered + Duration::hours(72)),
        assessment: None,
        notified_at: None,
        reported_by: principal.account_id.clone(),
        data_subjects_notified: None,
        data_subjects_notified_at: None,
    })
}

/// RU-4: the registrar's incidents (its data-protection officers).
pub fn list_security_incidents(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    principal: &Principal,
    registrar_id: &str,
) -> Result<Vec<SecurityIncident>, ConsentError> {
    organiser_staff(conn, principal, registrar_id, Permission::HandleSecurityIncidents)?;
    let rows: Vec<IncidentRow> = security_incidents::table
        .filter(security_incidents::registrar_id.eq(registrar_id))
        .order((security_incidents::discovered_at, security_incidents::id))
        .select(incident_columns!())
        .load(conn)?;
    rows.into_iter()
        .map(|r| incident_of(register, registrar_id, r))
        .collect()
}

pub fn get_security_incident(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    principal: &Principal,
    registrar_id: &str,
    id: &str,
) -> Result<SecurityIncident, ConsentError> {
    organiser_staff(conn, principal, registrar_id, Permission::HandleSecurityIncidents)?;
    let row: IncidentRow = security_incidents::table
        .filter(security_incidents::registrar_id.eq(registrar_id))
        .filter(security_incidents::id.eq(id))
        .select(incident_columns!())
        .first(conn)
        .optional()?
        .ok_or(ConsentError::Refused(Refusal::NotFound))?;
    incident_of(register, registrar_id, row)
}

/// RU-4: `suspected` → `assessed` → `authority_notified` or `notification_not_required`; and
/// whether and when the data subjects were notified, in any state.
pub fn update_security_incident(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    principal: &Principal,
    registrar_id: &str,
    id: &str,
    changes: IncidentChanges,
    now: time::OffsetDateTime,
) -> Result<SecurityIncident, ConsentError> {
    organiser_staff(conn, principal, registrar_id, Permission::HandleSecurityIncidents)?;
    if changes.state.is_none()
        && changes.data_subjects_notified.is_none()
        && changes.data_subjects_notified_at.is_none()
    {
        // 422, not 400: utoipa 5.5 writes `min_properties` as `maxProperties`, so the document
        // cannot say it, and a 400 means the request breaks the document (docs/errors.md).
        return Err(rule(
            "body",
            "names a new state, the data subjects' notification, or both",
        ));
    }
    let next = changes
        .state
        .as_deref()
        .map(|state| {
            IncidentState::parse(state)
                .filter(|s| *s != IncidentState::Suspected)
                .ok_or_else(|| {
                    validation(
                        "state",
                        "must be assessed, authority_notified or notification_not_required",
                    )
                })
        })
        .transpose()?;
    if next.is_none() && changes.assessment.is_some() {
        return Err(rule("assessment", "is given with a move to assessed"));
    }
    let subjects_notified_at = changes
        .data_subjects_notified_at
        .as_deref()
        .map(|text| {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|_| validation("data_subjects_notified_at", "must be an RFC 3339 date-time"))
        })
        .transpose()?;
    let at = at_primitive(now);
    write_transaction(conn, |conn| {
        let (state, discovered_at, subjects_notified): (String, PrimitiveDateTime, Option<bool>) =
            security_incidents::table
                .filter(security_incidents::registrar_id.eq(registrar_id))
                .filter(security_incidents::id.eq(id))
                .select((
                    security_incidents::state,
                    security_incidents::discovered_at,
                    security_incidents::data_subjects_notified,
                ))
                .first(conn)
                .optional()?
                .ok_or(ConsentError::Refused(Refusal::NotFound))?;
        let subjects = data_subjects_notification(
            changes.data_subjects_notified,
            subjects_notified_at,
            subjects_notified,
            discovered_at,
            now,
        )?;
        let target = security_incidents::table
            .filter(security_incidents::registrar_id.eq(registrar_id))
            .filter(security_incidents::id.eq(id));
        if let Some(next) = next {
            if !IncidentState::parse(&state).is_some_and(|current| current.may_move_to(next)) {
                return Err(rule("state", format!("an incident in state {state} cannot move there")));
            }
            let assessment = changes
                .assessment
                .as_deref()
                .map(|a| seal(register, "security_incidents", "assessment", id, a.trim()))
                .transpose()?;
            if next == IncidentState::Assessed && assessment.is_none() {
                return Err(rule("assessment", "is required to assess an incident"));
            }
            diesel::update(target)
                .set(security_incidents::state.eq(next.as_str()))
                .execute(conn)?;
            if let Some(assessment) = assessment {
                diesel::update(target)
                    .set(security_incidents::assessment.eq(Some(assessment)))
                    .execute(conn)?;
            }
            if next == IncidentState::AuthorityNotified {
                diesel::update(target)
                    .set(security_incidents::notified_at.eq(Some(at)))
                    .execute(conn)?;
            }
        }
        if let Some((notified, notified_at)) = subjects {
            let values = (
                security_incidents::data_subjects_notified.eq(Some(notified)),
                security_incidents::data_subjects_notified_at.eq(notified_at),
            );
            // A `false` never overwrites a `true`, also one a concurrent change committed after
            // this transaction read the row (PostgreSQL, READ COMMITTED).
            let changed = if notified {
                diesel::update(target).set(values).execute(conn)?
            } else {
                diesel::update(
                    target.filter(
                        security_incidents::data_subjects_notified
                            .is_null()
                            .or(security_incidents::data_subjects_notified.eq(false)),
                    ),
                )
                .set(values)
                .execute(conn)?
            };
            if changed == 0 {
                return Err(rule(
                    "data_subjects_notified",
                    "the data subjects' notification is already recorded and is not undone",
                ));
            }
        }
        diesel::update(target)
            .set((
                security_incidents::version.eq(security_incidents::version + 1),
                security_incidents::updated_at.eq(at),
            ))
            .execute(conn)?;
        Ok::<_, ConsentError>(())
    })?;
    get_security_incident(conn, register, principal, registrar_id, id)
}

/// RU-4: the data subjects' notification to store, if the change records one: whether they
/// were notified, and when (only if they were: the given time, or now). A time needs
/// `notified: true`; it is not before the discovery nor in the future; a recorded `true` stays.
fn data_subjects_notification(
    notified: Option<bool>,
    notified_at: Option<time::OffsetDateTime>,
    recorded: Option<bool>,
    discovered_at: PrimitiveDateTime,
    now: time::OffsetDateTime,
) -> Result<Option<(bool, Option<PrimitiveDateTime>)>, ConsentError> {
    let Some(notified) = notified else {
        if notified_at.is_some() {
            return Err(rule(
                "data_subjects_notified",
                "is required (true) when the time of the data subjects' notification is given",
            ));
        }
        return Ok(None);
    };
    if recorded == Some(true) && !notified {
        return Err(rule(
            "data_subjects_notified",
            "the data subjects' notification is already recorded and is not undone",
        ));
    }
    if !notified {
        if notified_at.is_some() {
            return Err(rule(
                "data_subjects_notified_at",
                "is given only when the data subjects were notified",
            ));
        }
        return Ok(Some((false, None)));
    }
    let when = notified_at.unwrap_or(now);
    if when > now {
        return Err(rule("data_subjects_notified_at", "must not be in the future"));
    }
    let when = at_primitive(when);
    if when < discovered_at {
        return Err(rule(
            "data_subjects_notified_at",
            "must not be before the incident's discovery",
        ));
    }
    Ok(Some((true, Some(when))))
}
