//! Opening and reading registry use rights (RU-1): the conditions of an opening, the case OID
//! and the delivery of the client's identity code to the provider.

use diesel::prelude::*;
use rekisteri_accounts::{Permission, Principal};
use rekisteri_audit::{AccessBasis, ActorKind, DataUse, Outcome};
use rekisteri_clients::Request;
use rekisteri_core::Refusal;
use rekisteri_core::calendar::add_working_days;
use rekisteri_db::schema::{kanta_settings, provider_contracts, registry_use_rights, voucher_provider_choices};
use rekisteri_db::{DbConnection, write_transaction};
use serde::{Deserialize, Serialize};
use time::Date;
use utoipa::ToSchema;

use super::common::{RightRow, RightStatus, is_voucher, reach_to_read, right_columns, rights_manager};
use super::notifications::{NotificationKind, notify};
use super::{CLOSING_WORKING_DAYS, iso_date};
use crate::decision::RightState;
use crate::{ConsentError, ConsentRegister, at_primitive, helsinki_today, new_id, rule};

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

/// A registry use right. `identity_code` is the delivery to the provider (RU-1): present on
/// every read, each a logged use.
#[derive(Clone, Serialize, ToSchema)]
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

rekisteri_core::redacted_debug!(Right {
    id,
    registrar_id,
    client_id,
    status
});

pub type OpenedRight = Right;

/// What the right is on `today`: closed from the day after its last usable day, whether or not
/// the closing job has stored that yet (RU-5).
pub(super) fn effective_status(row: &RightRow, today: Date) -> RightStatus {
    if row.status != RightStatus::Closed && !row.is_usable(today) && row.closes_after.is_some_and(|last| today > last) {
        RightStatus::Closed
    } else {
        row.status
    }
}

pub(super) fn right_of(registrar_id: &str, row: RightRow, identity_code: Option<String>, today: Date) -> Right {
    let status = effective_status(&row, today).as_str().to_owned();
    Right {
        id: row.id,
        registrar_id: registrar_id.to_owned(),
        client_id: row.client_id,
        identity_code,
        service_id: row.service_id,
        provider_id: row.provider_id,
        provider_unit_oid: row.provider_unit_oid,
        case_oid: row.case_oid,
        opened_on: row.opened_on,
        service_ended_on: row.service_ended_on,
        closes_after: row.closes_after,
        closing_set_by_organiser: row.closing_set_by_organiser,
        status,
        reopen_reason: row.reopen_reason,
        unit_oid_changed: row.unit_oid_changed,
    }
}

/// The client's rights in every state, oldest first.
fn right_rows_of_client(conn: &mut DbConnection, registrar_id: &str, client_id: &str) -> QueryResult<Vec<RightRow>> {
    registry_use_rights::table
        .filter(registry_use_rights::registrar_id.eq(registrar_id))
        .filter(registry_use_rights::client_id.eq(client_id))
        .order((registry_use_rights::created_at, registry_use_rights::id))
        .select(right_columns!())
        .load(conn)
}

/// The client's rights in every state, for the disclosure decision (CO-5).
pub(crate) fn rights_of_client(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_id: &str,
) -> Result<Vec<RightState>, ConsentError> {
    Ok(right_rows_of_client(conn, registrar_id, client_id)?
        .into_iter()
        .map(|r| RightState {
            id: r.id,
            registrar_id: registrar_id.to_owned(),
            provider_id: r.provider_id,
            case_oid: r.case_oid,
            status: r.status.as_str().to_owned(),
            opened_on: r.opened_on,
            closes_after: r.closes_after,
        })
        .collect())
}

/// The client's rights in every state as the organiser reads them, oldest first, without the
/// identity code (the document they go into holds it once).
pub(crate) fn rights_of_client_read(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_id: &str,
    today: Date,
) -> Result<Vec<Right>, ConsentError> {
    Ok(right_rows_of_client(conn, registrar_id, client_id)?
        .into_iter()
        .map(|r| right_of(registrar_id, r, None, today))
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
    rights_manager(conn, request.principal, registrar_id)?;
    let reached = reach_to_read(conn, register, request, registrar_id, &body.client_id)?;
    let today = helsinki_today(request.now);
    let opened_on = body.opened_on.unwrap_or(today);
    let at = at_primitive(request.now);
    let unit_oid = body.provider_unit_oid.trim().to_owned();
    let service = rekisteri_clients::service_term(conn, registrar_id, &body.service_id)?
        .filter(|s| s.client_id == body.client_id)
        .ok_or_else(|| rule("service_id", "is not a service of this client"))?;
    let provider_id = service.provider_id.clone();
    let context = reached.decision.context(&request.audit);
    register.clients.audit.read_personal_data(conn, &context, at, |conn| {
        let row = write_transaction(conn, |conn| {
            if is_voucher(&service) {
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
            let contract: Option<(Option<Date>, Option<String>)> = provider_contracts::table
                .filter(provider_contracts::registrar_id.eq(registrar_id))
                .filter(provider_contracts::provider_id.eq(&provider_id))
                .select((provider_contracts::kanta_joined_on, provider_contracts::kanta_exemption))
                .first(conn)
                .optional()?;
            let Some((joined, exemption)) = contract else {
                return Err(rule("contract", "no contract with the provider is recorded"));
            };
            if exemption.is_some() {
                return Err(rule(
                    "provider_kanta_exemption",
                    "the organiser has marked the provider, a small provider of support services, exempt \
                     from joining Kanta and from recording separate electronic client documents \
                     (source 003 §5): no registry use right opens for its services",
                ));
            }
            if joined.is_none_or(|day| day > opened_on) {
                return Err(rule(
                    "provider_kanta_joining",
                    "the provider is not marked as joined to the Kanta client-data repository",
                ));
            }
            if !rekisteri_accounts::directory::has_unit_with_oid(conn, &provider_id, &unit_oid)? {
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
            let ended = service.ends_on();
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
            if existing
                .iter()
                .any(|r| effective_status(r, today) != RightStatus::Closed)
            {
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
                    registry_use_rights::status.eq(RightStatus::Open.as_str()),
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
                NotificationKind::RightOpened,
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
        let id = row.id.clone();
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
        return Err(ConsentError::Refused(Refusal::NotFound));
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
    if principal.organisation_id == row.provider_id && principal.can(Permission::StoreCaseDocuments) {
        let subject = rekisteri_clients::subject_of(conn, registrar_id, "client", &row.client_id)?;
        let context = rekisteri_audit::AuditContext {
            access_basis: AccessBasis::RegistryUseRight,
            actor_kind: ActorKind::ProviderUser,
            ..request.audit.clone()
        };
        let usable = row.is_usable(today);
        return register.clients.audit.read_personal_data(conn, &context, at, |conn| {
            let code = if usable {
                rekisteri_clients::identity_code_of(conn, &register.clients, registrar_id, &row.client_id)?
            } else {
                None
            };
            Ok((right_of(registrar_id, row, code, today), use_of(subject)))
        });
    }
    if principal.organisation_id != registrar_id {
        return Err(ConsentError::Refused(Refusal::NotFound));
    }
    let reached = reach_to_read(conn, register, request, registrar_id, &row.client_id)?;
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
        rights_manager(conn, principal, registrar_id)?;
    } else if principal.can(Permission::StoreCaseDocuments) {
        query = query.filter(registry_use_rights::provider_id.eq(&principal.organisation_id));
    } else {
        return Err(ConsentError::Refused(Refusal::NotFound));
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

pub(super) fn load_right(
    conn: &mut DbConnection,
    registrar_id: &str,
    right_id: &str,
) -> Result<RightRow, ConsentError> {
    registry_use_rights::table
        .filter(registry_use_rights::registrar_id.eq(registrar_id))
        .filter(registry_use_rights::id.eq(right_id))
        .select(right_columns!())
        .first(conn)
        .optional()?
        .ok_or(ConsentError::Refused(Refusal::NotFound))
}
