//! A voucher client's choice of provider, reported by the provider (RU-1).

use diesel::prelude::*;
use rekisteri_audit::{DataUse, Outcome};
use rekisteri_clients::Request;
use rekisteri_core::Refusal;
use rekisteri_db::schema::{registry_use_rights, voucher_provider_choices};
use rekisteri_db::{DbConnection, write_transaction};
use serde::{Deserialize, Serialize};
use time::PrimitiveDateTime;
use utoipa::ToSchema;

use super::common::{RightStatus, is_voucher, reach_to_read};
use crate::{ConsentError, ConsentRegister, at_primitive, format_time, new_id, rule};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoucherChoiceBody {
    pub client_id: String,
    pub service_id: String,
    pub provider_unit_oid: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VoucherChoice {
    pub id: String,
    pub client_id: String,
    pub service_id: String,
    pub provider_id: String,
    pub provider_unit_oid: String,
    #[schema(format = DateTime)]
    pub reported_at: String,
}

/// RU-1: a provider reports a voucher client's choice of provider.
pub fn record_voucher_choice(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    body: VoucherChoiceBody,
) -> Result<VoucherChoice, ConsentError> {
    let reached = reach_to_read(conn, register, request, registrar_id, &body.client_id)?;
    if !reached.decision.is_provider() {
        return Err(ConsentError::Refused(Refusal::Forbidden(
            "the provider chosen reports the client's choice".into(),
        )));
    }
    let provider_id = request.principal.organisation_id.clone();
    let service = rekisteri_clients::service_term(conn, registrar_id, &body.service_id)?
        .filter(|s| s.client_id == body.client_id && s.provider_id == provider_id)
        .ok_or_else(|| rule("service_id", "is not a service of this client with this provider"))?;
    if !is_voucher(&service) {
        return Err(rule(
            "service_id",
            "only a service voucher has a choice of provider to report",
        ));
    }
    let at = at_primitive(request.now);
    let id = new_id();
    let context = reached.decision.context(&request.audit);
    register.clients.audit.read_personal_data(conn, &context, at, |conn| {
        write_transaction(conn, |conn| {
            record_choice(conn, registrar_id, &body, &provider_id, &id, request, at)
        })?;
        let choice = VoucherChoice {
            id: id.clone(),
            client_id: body.client_id.clone(),
            service_id: body.service_id.clone(),
            provider_id: provider_id.clone(),
            provider_unit_oid: body.provider_unit_oid.trim().to_owned(),
            reported_at: format_time(at),
        };
        Ok((
            choice,
            vec![DataUse {
                subject_index: reached.subject,
                data_kind: "voucher_provider_choice".into(),
                data_id: Some(id.clone()),
                outcome: Outcome::Used,
            }],
        ))
    })
}

fn record_choice(
    conn: &mut DbConnection,
    registrar_id: &str,
    body: &VoucherChoiceBody,
    provider_id: &str,
    id: &str,
    request: &Request<'_>,
    at: PrimitiveDateTime,
) -> Result<(), ConsentError> {
    diesel::insert_into(voucher_provider_choices::table)
        .values((
            voucher_provider_choices::registrar_id.eq(registrar_id),
            voucher_provider_choices::id.eq(&id),
            voucher_provider_choices::client_id.eq(&body.client_id),
            voucher_provider_choices::service_id.eq(&body.service_id),
            voucher_provider_choices::provider_id.eq(&provider_id),
            voucher_provider_choices::provider_unit_oid.eq(body.provider_unit_oid.trim()),
            voucher_provider_choices::reported_by.eq(&request.principal.account_id),
            voucher_provider_choices::reported_at.eq(at),
        ))
        .execute(conn)?;
    // A changed service-unit OID flags the provider's open rights of this client (RU-1).
    diesel::update(
        registry_use_rights::table
            .filter(registry_use_rights::registrar_id.eq(registrar_id))
            .filter(registry_use_rights::service_id.eq(&body.service_id))
            .filter(registry_use_rights::provider_unit_oid.ne(body.provider_unit_oid.trim()))
            .filter(registry_use_rights::status.ne(RightStatus::Closed.as_str())),
    )
    .set(registry_use_rights::unit_oid_changed.eq(true))
    .execute(conn)?;
    Ok(())
}
