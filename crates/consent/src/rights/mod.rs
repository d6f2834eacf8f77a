//! Registry use rights (RU-1..RU-7), the documents stored under them (RU-8), register
//! separation (RU-3) and security incidents (RU-4).
//!
//! A right is usable on a day in Finland from its opening through `closes_after`: from 00:00
//! Europe/Helsinki of the next day it is closed (RU-5), whether or not the closing job has run
//! yet, so no access ever depends on the job's timing.

mod common;
mod contracts;
mod documents;
mod incidents;
mod notifications;
mod settings;
mod voucher_choices;

pub use contracts::{ContractBody, set_contract};
pub use documents::{CaseDocument, NewDocument, confirm_local_copy_destroyed, list_documents, store_document};
pub use incidents::{
    IncidentChanges, NewIncident, SecurityIncident, get_security_incident, list_security_incidents,
    report_security_incident, update_security_incident,
};
pub use notifications::{RegistryNotification, list_notifications};
pub use settings::{KantaSettings, set_kanta_settings};
pub use voucher_choices::{VoucherChoice, VoucherChoiceBody, record_voucher_choice};

use diesel::prelude::*;
use rekisteri_accounts::{Permission, Principal};
use rekisteri_audit::{AccessBasis, ActorKind, DataUse, Outcome};
use rekisteri_clients::{Request, reach_client};
use rekisteri_core::calendar::add_working_days;
use rekisteri_db::schema::{
    case_documents, kanta_settings, provider_contracts, registry_notifications, registry_use_rights,
    security_incidents, service_units, voucher_provider_choices,
};
use rekisteri_db::{DbConnection, write_transaction};
use serde::{Deserialize, Serialize};
use time::{Date, Duration, PrimitiveDateTime};
use utoipa::ToSchema;

use common::{
    RightRow, load_service, open, organisation_kind, organiser_staff, right_columns, seal, security_event,
    service_end,
};
use crate::decision::{RightState, is_usable};
use documents::mark_local_copies;
use notifications::notify;

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");
use crate::{ConsentError, ConsentRegister, at_primitive, format_time, helsinki_today, new_id, rule, validation};

/// RU-5: a right closes this many working days after the service ends.
pub const CLOSING_WORKING_DAYS: u32 = 7;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenRight {
    pub client_id: String,
    pub service_id: String,
    pub provider_unit_oid: String,
    /// Today in Finland when absent.
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub opened_on: Option<Date>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseRight {
    /// The last usable date the organiser sets for this right; today's date closes it from
    /// tomorrow 00:00, an earlier date closes it at once.
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub closes_after: Date,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenRight {
    /// Why the right is reopened (correcting or invalidating documents, RU-6).
    #[schema(min_length = 1, pattern = "\\S")]
    pub reason: String,
    /// The last usable date of the reopened right.
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub closes_after: Date,
}

/// A registry use right. `identity_code` is the delivery to the provider (RU-1): present on
/// every read, each a logged use.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Right {
    pub id: String,
    pub registrar_id: String,
    pub client_id: String,
    pub identity_code: Option<String>,
    pub service_id: String,
    pub provider_id: String,
    pub provider_unit_oid: String,
    pub case_oid: String,
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub opened_on: Date,
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub service_ended_on: Option<Date>,
    /// The last usable date; closed from 00:00 Finnish time of the next day.
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub closes_after: Option<Date>,
    pub closing_set_by_organiser: bool,
    /// `open`, `closed` or `reopened` (a right past `closes_after` reads as closed).
    pub status: String,
    pub reopen_reason: Option<String>,
    /// The provider reported a change of its service-unit OID (RU-1, source 003 §2.2).
    pub unit_oid_changed: bool,
}

pub type OpenedRight = Right;

/// What a closing run did (RU-5, RU-7).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ClosingReport {
    pub closed: Vec<String>,
    pub warned: Vec<String>,
    pub marked_for_destruction: usize,
    /// Documents whose provider's local copy is marked but not confirmed destroyed:
    /// (registrar, case OID, document id).
    pub unconfirmed_local_copies: Vec<(String, String, String)>,
}

fn effective_status(row: &RightRow, today: Date) -> String {
    if row.10 != "closed" && !is_usable(&row.10, row.6, row.8, today) && row.8.is_some_and(|last| today > last) {
        "closed".to_owned()
    } else {
        row.10.clone()
    }
}

fn right_of(registrar_id: &str, row: RightRow, identity_code: Option<String>, today: Date) -> Right {
    let status = effective_status(&row, today);
    Right {
        id: row.0,
        registrar_id: registrar_id.to_owned(),
        client_id: row.1,
        identity_code,
        service_id: row.2,
        provider_id: row.3,
        provider_unit_oid: row.4,
        case_oid: row.5,
        opened_on: row.6,
        service_ended_on: row.7,
        closes_after: row.8,
        closing_set_by_organiser: row.9,
        status,
        reopen_reason: row.11,
        unit_oid_changed: row.12,
    }
}

/// The client's rights in every state, for the disclosure decision (CO-5).
pub(crate) fn rights_of_client(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_id: &str,
) -> Result<Vec<RightState>, ConsentError> {
    let rows: Vec<RightRow> = registry_use_rights::table
        .filter(registry_use_rights::registrar_id.eq(registrar_id))
        .filter(registry_use_rights::client_id.eq(client_id))
        .select(right_columns!())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| RightState {
            id: r.0,
            registrar_id: registrar_id.to_owned(),
            provider_id: r.3,
            case_oid: r.5,
            status: r.10,
            opened_on: r.6,
            closes_after: r.8,
        })
        .collect())
}

/// RU-1: opens a right, refused with the missing condition named; issues the case OID.
pub fn open_right(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    body: OpenRight,
) -> Result<Right, ConsentError> {
    organiser_staff(
        conn,
        request.principal,
        registrar_id,
        Permission::ManageRegistryUseRights,
    )?;
    let reached = reach_client(
        conn,
        &register.clients,
        request,
        registrar_id,
        &body.client_id,
        Permission::ReadClients,
    )?;
    let today = helsinki_today(request.now);
    let opened_on = body.opened_on.unwrap_or(today);
    let at = at_primitive(request.now);
    let unit_oid = body.provider_unit_oid.trim().to_owned();
    let service = load_service(conn, registrar_id, &body.service_id)?
        .filter(|s| s.0 == body.client_id)
        .ok_or_else(|| rule("service_id", "is not a service of this client"))?;
    let provider_id = service.2.clone();
    let context = reached.decision.context(&request.audit);
    register.clients.audit.read_personal_data(conn, &context, at, |conn| {
        let row = write_transaction(conn, |conn| {
            if service.1 == "service_voucher" {
                let chosen: i64 = voucher_provider_choices::table
                    .filter(voucher_provider_choices::registrar_id.eq(registrar_id))
                    .filter(voucher_provider_choices::service_id.eq(&body.service_id))
                    .filter(voucher_provider_choices::provider_id.eq(&provider_id))
                    .count()
                    .get_result(conn)?;
                if chosen == 0 {
                    return Err(rule(
                        "voucher_provider_choice",
                        "the provider has not reported the voucher client's choice of provider",
                    ));
                }
            }
            let contract: Option<Option<Date>> = provider_contracts::table
                .filter(provider_contracts::registrar_id.eq(registrar_id))
                .filter(provider_contracts::provider_id.eq(&provider_id))
                .select(provider_contracts::kanta_joined_on)
                .first(conn)
                .optional()?;
            let Some(joined) = contract else {
                return Err(rule("contract", "no contract with the provider is recorded"));
            };
            if joined.is_none_or(|day| day > opened_on) {
                return Err(rule(
                    "provider_kanta_joining",
                    "the provider is not marked as joined to the Kanta client-data repository",
                ));
            }
            let registered: i64 = service_units::table
                .filter(service_units::organisation_id.eq(&provider_id))
                .filter(service_units::oid.eq(&unit_oid))
                .count()
                .get_result(conn)?;
            if registered == 0 {
                return Err(rule(
                    "provider_unit_oid",
                    "is not one of the provider's registered service units",
                ));
            }
            // The increment comes first: it locks the settings row, so concurrent openings
            // (PostgreSQL, READ COMMITTED) each read their own number.
            diesel::update(kanta_settings::table.filter(kanta_settings::registrar_id.eq(registrar_id)))
                .set(kanta_settings::last_case_number.eq(kanta_settings::last_case_number + 1))
                .execute(conn)?;
            let settings: Option<(Date, String, i64)> = kanta_settings::table
                .filter(kanta_settings::registrar_id.eq(registrar_id))
                .select((
                    kanta_settings::kanta_start_date,
                    kanta_settings::case_oid_root,
                    kanta_settings::last_case_number,
                ))
                .first(conn)
                .optional()?;
            let Some((start, root, number)) = settings else {
                return Err(rule("kanta_start_date", "the organiser's Kanta start date is not set"));
            };
            if opened_on < start {
                return Err(rule("opened_on", "is before the organiser's Kanta start date"));
            }
            let ended = service_end(&service);
            let closes_after = add_working_days(ended, CLOSING_WORKING_DAYS);
            if closes_after < opened_on {
                return Err(rule(
                    "service_id",
                    "the service ended more than 7 working days before the opening date",
                ));
            }
            let existing: Vec<RightRow> = registry_use_rights::table
                .filter(registry_use_rights::registrar_id.eq(registrar_id))
                .filter(registry_use_rights::service_id.eq(&body.service_id))
                .filter(registry_use_rights::provider_id.eq(&provider_id))
                .select(right_columns!())
                .load(conn)?;
            if existing.iter().any(|r| effective_status(r, today) != "closed") {
                return Err(rule(
                    "service_id",
                    "the service already has an open registry use right for this provider",
                ));
            }
            let case_oid = format!("{root}.{number}");
            let id = new_id();
            diesel::insert_into(registry_use_rights::table)
                .values((
                    registry_use_rights::registrar_id.eq(registrar_id),
                    registry_use_rights::id.eq(&id),
                    registry_use_rights::client_id.eq(&body.client_id),
                    registry_use_rights::service_id.eq(&body.service_id),
                    registry_use_rights::provider_id.eq(&provider_id),
                    registry_use_rights::provider_unit_oid.eq(&unit_oid),
                    registry_use_rights::case_oid.eq(&case_oid),
                    registry_use_rights::opened_on.eq(opened_on),
                    registry_use_rights::service_ended_on.eq(Some(ended)),
                    registry_use_rights::closes_after.eq(Some(closes_after)),
                    registry_use_rights::closing_set_by_organiser.eq(false),
                    registry_use_rights::status.eq("open"),
                    registry_use_rights::opened_by.eq(&request.principal.account_id),
                    registry_use_rights::version.eq(1i64),
                    registry_use_rights::created_at.eq(at),
                    registry_use_rights::updated_at.eq(at),
                ))
                .execute(conn)?;
            // The delivery to the provider (RU-1): it reads the right, identity code and case
            // OID included, as a logged use.
            notify(
                conn,
                registrar_id,
                &provider_id,
                "registry_use_right_opened",
                &id,
                serde_json::json!({"right_id": id, "case_oid": case_oid}),
                at,
            )?;
            let row: RightRow = registry_use_rights::table
                .filter(registry_use_rights::registrar_id.eq(registrar_id))
                .filter(registry_use_rights::id.eq(&id))
                .select(right_columns!())
                .first(conn)?;
            Ok::<_, ConsentError>(row)
        })?;
        let code = reached.reveal_identity_code(&register.clients)?;
        let id = row.0.clone();
        Ok((
            right_of(registrar_id, row, code, today),
            vec![DataUse {
                subject_index: reached.subject,
                data_kind: "registry_use_right".into(),
                data_id: Some(id),
                outcome: Outcome::Used,
            }],
        ))
    })
}

/// A right, with the client's identity code (RU-1's delivery); a logged use. The organiser's
/// staff who reach the client read it on the client register's basis; the right's provider on
/// the right itself (it may no longer reach the client through its services once the service
/// ended, yet the right lasts 7 working days more), with the identity code only while usable.
pub fn get_right(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    right_id: &str,
) -> Result<Right, ConsentError> {
    let row: Option<RightRow> = registry_use_rights::table
        .filter(registry_use_rights::registrar_id.eq(registrar_id))
        .filter(registry_use_rights::id.eq(right_id))
        .select(right_columns!())
        .first(conn)
        .optional()?;
    let Some(row) = row else {
        return Err(ConsentError::NotFound);
    };
    let principal = request.principal;
    let today = helsinki_today(request.now);
    let at = at_primitive(request.now);
    let use_of = |subject| {
        vec![DataUse {
            subject_index: subject,
            data_kind: "registry_use_right".into(),
            data_id: Some(right_id.to_owned()),
            outcome: Outcome::Used,
        }]
    };
    if principal.organisation_id == row.3 && principal.can(Permission::StoreCaseDocuments) {
        let subject = rekisteri_clients::subject_of(conn, registrar_id, "client", &row.1)?;
        let context = rekisteri_audit::AuditContext {
            access_basis: AccessBasis::RegistryUseRight,
            actor_kind: ActorKind::ProviderUser,
            ..request.audit.clone()
        };
        let usable = is_usable(&row.10, row.6, row.8, today);
        return register.clients.audit.read_personal_data(conn, &context, at, |conn| {
            let code = if usable {
                rekisteri_clients::identity_code_of(conn, &register.clients, registrar_id, &row.1)?
            } else {
                None
            };
            Ok((right_of(registrar_id, row, code, today), use_of(subject)))
        });
    }
    if principal.organisation_id != registrar_id {
        return Err(ConsentError::NotFound);
    }
    let reached = reach_client(
        conn,
        &register.clients,
        request,
        registrar_id,
        &row.1,
        Permission::ReadClients,
    )?;
    let context = reached.decision.context(&request.audit);
    register.clients.audit.read_personal_data(conn, &context, at, |_| {
        let code = reached.reveal_identity_code(&register.clients)?;
        Ok((right_of(registrar_id, row, code, today), use_of(reached.subject)))
    })
}

/// The organiser's rights (its staff), or a provider's own rights in this register; without
/// identity codes (open one for the delivery).
pub fn list_rights(
    conn: &mut DbConnection,
    principal: &Principal,
    registrar_id: &str,
    now: time::OffsetDateTime,
) -> Result<Vec<Right>, ConsentError> {
    let today = helsinki_today(now);
    let mut query = registry_use_rights::table
        .filter(registry_use_rights::registrar_id.eq(registrar_id))
        .into_boxed();
    if principal.organisation_id == registrar_id {
        organiser_staff(conn, principal, registrar_id, Permission::ManageRegistryUseRights)?;
    } else if principal.can(Permission::StoreCaseDocuments) {
        query = query.filter(registry_use_rights::provider_id.eq(&principal.organisation_id));
    } else {
        return Err(ConsentError::NotFound);
    }
    let rows: Vec<RightRow> = query
        .order((registry_use_rights::created_at, registry_use_rights::id))
        .select(right_columns!())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| right_of(registrar_id, r, None, today))
        .collect())
}

fn load_right(conn: &mut DbConnection, registrar_id: &str, right_id: &str) -> Result<RightRow, ConsentError> {
    registry_use_rights::table
        .filter(registry_use_rights::registrar_id.eq(registrar_id))
        .filter(registry_use_rights::id.eq(right_id))
        .select(right_columns!())
        .first(conn)
        .optional()?
        .ok_or(ConsentError::NotFound)
}

/// RU-5: the organiser sets another closing date for one right; the provider is notified.
/// A date before today closes it at once.
pub fn close_right(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    right_id: &str,
    body: CloseRight,
) -> Result<Right, ConsentError> {
    organiser_staff(
        conn,
        request.principal,
        registrar_id,
        Permission::ManageRegistryUseRights,
    )?;
    let today = helsinki_today(request.now);
    let at = at_primitive(request.now);
    write_transaction(conn, |conn| {
        let row = load_right(conn, registrar_id, right_id)?;
        if effective_status(&row, today) == "closed" {
            return Err(rule("status", "the right is closed; reopen it instead"));
        }
        if body.closes_after < row.6 {
            return Err(rule("closes_after", "must not be before the opening date"));
        }
        let closed_now = body.closes_after < today;
        diesel::update(
            registry_use_rights::table
                .filter(registry_use_rights::registrar_id.eq(registrar_id))
                .filter(registry_use_rights::id.eq(right_id)),
        )
        .set((
            registry_use_rights::closes_after.eq(Some(body.closes_after)),
            registry_use_rights::closing_set_by_organiser.eq(true),
            registry_use_rights::status.eq(if closed_now { "closed" } else { row.10.as_str() }),
            registry_use_rights::closed_at.eq(closed_now.then_some(at)),
            registry_use_rights::version.eq(registry_use_rights::version + 1),
            registry_use_rights::updated_at.eq(at),
        ))
        .execute(conn)?;
        if closed_now {
            mark_local_copies(conn, registrar_id, right_id, at)?;
        }
        notify(
            conn,
            registrar_id,
            &row.3,
            "registry_use_right_closing_date_changed",
            right_id,
            serde_json::json!({"right_id": right_id, "case_oid": row.5, "closes_after": body.closes_after.to_string()}),
            at,
        )?;
        Ok::<_, ConsentError>(())
    })?;
    let _ = register;
    let row = load_right(conn, registrar_id, right_id)?;
    Ok(right_of(registrar_id, row, None, today))
}

/// RU-6: reopens a closed right with a reason and a last usable date.
pub fn reopen_right(
    conn: &mut DbConnection,
    request: &Request<'_>,
    registrar_id: &str,
    right_id: &str,
    body: ReopenRight,
) -> Result<Right, ConsentError> {
    organiser_staff(
        conn,
        request.principal,
        registrar_id,
        Permission::ManageRegistryUseRights,
    )?;
    let today = helsinki_today(request.now);
    let at = at_primitive(request.now);
    if body.reason.trim().is_empty() {
        return Err(validation("reason", "is required"));
    }
    if body.closes_after < today {
        return Err(rule("closes_after", "must be today or later"));
    }
    write_transaction(conn, |conn| {
        let row = load_right(conn, registrar_id, right_id)?;
        if effective_status(&row, today) != "closed" {
            return Err(rule("status", "only a closed right can be reopened"));
        }
        diesel::update(
            registry_use_rights::table
                .filter(registry_use_rights::registrar_id.eq(registrar_id))
                .filter(registry_use_rights::id.eq(right_id)),
        )
        .set((
            registry_use_rights::closes_after.eq(Some(body.closes_after)),
            registry_use_rights::closing_set_by_organiser.eq(true),
            registry_use_rights::status.eq("reopened"),
            registry_use_rights::closed_at.eq(None::<PrimitiveDateTime>),
            registry_use_rights::reopen_reason.eq(Some(body.reason.trim())),
            registry_use_rights::warned_for.eq(None::<Date>),
            registry_use_rights::version.eq(registry_use_rights::version + 1),
            registry_use_rights::updated_at.eq(at),
        ))
        .execute(conn)?;
        notify(
            conn,
            registrar_id,
            &row.3,
            "registry_use_right_reopened",
            right_id,
            serde_json::json!({"right_id": right_id, "case_oid": row.5, "closes_after": body.closes_after.to_string()}),
            at,
        )?;
        Ok::<_, ConsentError>(())
    })?;
    let row = load_right(conn, registrar_id, right_id)?;
    Ok(right_of(registrar_id, row, None, today))
}

/// RU-5, RU-7: the closing job. Follows each open right's service end (7 working days after
/// it, unless the organiser set the date), warns the provider the configured working days
/// before an automatic closing (once per date), closes rights whose last usable day has passed
/// in Finland and marks their documents' local copies for destruction; reports the local copies
/// not yet confirmed destroyed.
pub fn run_closing(conn: &mut DbConnection, now: time::OffsetDateTime) -> Result<ClosingReport, ConsentError> {
    let today = helsinki_today(now);
    let at = at_primitive(now);
    let mut report = ClosingReport::default();
    write_transaction(conn, |conn| {
        type OpenRow = (String, String, String, String, Option<Date>, bool, Option<Date>, String);
        let open: Vec<OpenRow> = registry_use_rights::table
            .filter(registry_use_rights::status.ne("closed"))
            .order((registry_use_rights::registrar_id, registry_use_rights::id))
            .select((
                registry_use_rights::registrar_id,
                registry_use_rights::id,
                registry_use_rights::service_id,
                registry_use_rights::provider_id,
                registry_use_rights::closes_after,
                registry_use_rights::closing_set_by_organiser,
                registry_use_rights::warned_for,
                registry_use_rights::case_oid,
            ))
            .load(conn)?;
        for (registrar_id, id, service_id, provider_id, closes_after, set_by_organiser, warned_for, case_oid) in open {
            let mut last = closes_after;
            if !set_by_organiser && let Some(service) = load_service(conn, &registrar_id, &service_id)? {
                let ended = service_end(&service);
                let computed = add_working_days(ended, CLOSING_WORKING_DAYS);
                if Some(computed) != closes_after {
                    diesel::update(
                        registry_use_rights::table
                            .filter(registry_use_rights::registrar_id.eq(&registrar_id))
                            .filter(registry_use_rights::id.eq(&id)),
                    )
                    .set((
                        registry_use_rights::service_ended_on.eq(Some(ended)),
                        registry_use_rights::closes_after.eq(Some(computed)),
                        registry_use_rights::updated_at.eq(at),
                    ))
                    .execute(conn)?;
                }
                last = Some(computed);
            }
            let Some(last) = last else { continue };
            if today > last {
                diesel::update(
                    registry_use_rights::table
                        .filter(registry_use_rights::registrar_id.eq(&registrar_id))
                        .filter(registry_use_rights::id.eq(&id)),
                )
                .set((
                    registry_use_rights::status.eq("closed"),
                    registry_use_rights::closed_at.eq(Some(at)),
                    registry_use_rights::version.eq(registry_use_rights::version + 1),
                    registry_use_rights::updated_at.eq(at),
                ))
                .execute(conn)?;
                report.marked_for_destruction += mark_local_copies(conn, &registrar_id, &id, at)?;
                report.closed.push(id);
                continue;
            }
            if set_by_organiser || warned_for == Some(last) {
                continue;
            }
            let notice: i32 = kanta_settings::table
                .filter(kanta_settings::registrar_id.eq(&registrar_id))
                .select(kanta_settings::closing_notice_working_days)
                .first(conn)
                .optional()?
                .unwrap_or(3);
            if add_working_days(today, notice.max(0) as u32) >= last {
                notify(
                    conn,
                    &registrar_id,
                    &provider_id,
                    "registry_use_right_closing_soon",
                    &id,
                    serde_json::json!({"right_id": id, "case_oid": case_oid, "closes_after": last.to_string()}),
                    at,
                )?;
                diesel::update(
                    registry_use_rights::table
                        .filter(registry_use_rights::registrar_id.eq(&registrar_id))
                        .filter(registry_use_rights::id.eq(&id)),
                )
                .set(registry_use_rights::warned_for.eq(Some(last)))
                .execute(conn)?;
                report.warned.push(id);
            }
        }
        report.unconfirmed_local_copies = case_documents::table
            .filter(case_documents::local_copy.eq("marked_for_destruction"))
            .order((
                case_documents::registrar_id,
                case_documents::case_oid,
                case_documents::id,
            ))
            .select((
                case_documents::registrar_id,
                case_documents::case_oid,
                case_documents::id,
            ))
            .load(conn)?;
        Ok::<_, ConsentError>(())
    })?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn last_day(ended: Date) -> Date {
        add_working_days(ended, CLOSING_WORKING_DAYS)
    }

    #[test]
    fn ru_5_spec_example_service_ending_friday_before_christmas_holds_through_new_years_eve() {
        let last = last_day(date!(2026 - 12 - 18));
        assert_eq!(last, date!(2026 - 12 - 31));
        assert!(is_usable(
            "open",
            date!(2026 - 09 - 01),
            Some(last),
            date!(2026 - 12 - 31)
        ));
        assert!(!is_usable(
            "open",
            date!(2026 - 09 - 01),
            Some(last),
            date!(2027 - 01 - 01)
        ));
        // 00:00 Helsinki on 1 January 2027 is 22:00 UTC on 31 December.
        assert_eq!(
            helsinki_today(datetime!(2026-12-31 21:59:59 UTC)),
            date!(2026 - 12 - 31)
        );
        assert_eq!(helsinki_today(datetime!(2026-12-31 22:00 UTC)), date!(2027 - 01 - 01));
    }

    #[test]
    fn ru_5_closing_skips_easter_and_midsummer() {
        // Good Friday 26 March and Easter Monday 29 March 2027 are not working days.
        assert_eq!(last_day(date!(2027 - 03 - 24)), date!(2027 - 04 - 06));
        // Midsummer Eve, Friday 25 June 2027, is not a working day.
        assert_eq!(last_day(date!(2027 - 06 - 21)), date!(2027 - 07 - 01));
        // Midsummer 2026: Eve Friday 19 June.
        assert_eq!(last_day(date!(2026 - 06 - 17)), date!(2026 - 06 - 29));
    }

    #[test]
    fn ru_6_a_closed_right_is_unusable_whatever_its_dates() {
        assert!(!is_usable(
            "closed",
            date!(2026 - 09 - 01),
            Some(date!(2030 - 01 - 01)),
            date!(2026 - 12 - 01)
        ));
        assert!(is_usable(
            "reopened",
            date!(2026 - 09 - 01),
            Some(date!(2027 - 01 - 15)),
            date!(2027 - 01 - 15)
        ));
        assert!(!is_usable(
            "open",
            date!(2026 - 12 - 02),
            Some(date!(2027 - 01 - 15)),
            date!(2026 - 12 - 01)
        ));
    }
}
