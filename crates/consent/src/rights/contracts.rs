//! The organiser's contracts with providers and their Kanta joining dates (RU-1).

use diesel::prelude::*;
use rekisteri_accounts::{Permission, Principal};
use rekisteri_core::Refusal;
use rekisteri_db::schema::provider_contracts;
use rekisteri_db::{DbConnection, write_transaction};
use serde::{Deserialize, Serialize};
use time::Date;
use utoipa::ToSchema;

use super::common::{organisation_kind, organiser_staff};
use super::iso_date;
use crate::{ConsentError, at_primitive, validation};

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractBody {
    /// The organiser's reference of the contract with the provider.
    #[schema(min_length = 1, pattern = "\\S")]
    pub contract_ref: String,
    /// The day the provider joined the Kanta client-data repository; absent: not joined.
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub kanta_joined_on: Option<Date>,
}

/// RU-1: the organiser's contract with a provider, and whether the provider joined Kanta.
pub fn set_contract(
    conn: &mut DbConnection,
    principal: &Principal,
    registrar_id: &str,
    provider_id: &str,
    body: ContractBody,
    now: time::OffsetDateTime,
) -> Result<ContractBody, ConsentError> {
    organiser_staff(conn, principal, registrar_id, Permission::ManageRegistryUseRights)?;
    if organisation_kind(conn, provider_id)?.as_deref() != Some("provider") {
        return Err(ConsentError::Refused(Refusal::NotFound));
    }
    if body.contract_ref.trim().is_empty() {
        return Err(validation("contract_ref", "is required"));
    }
    let at = at_primitive(now);
    write_transaction(conn, |conn| {
        diesel::delete(
            provider_contracts::table
                .filter(provider_contracts::registrar_id.eq(registrar_id))
                .filter(provider_contracts::provider_id.eq(provider_id)),
        )
        .execute(conn)?;
        diesel::insert_into(provider_contracts::table)
            .values((
                provider_contracts::registrar_id.eq(registrar_id),
                provider_contracts::provider_id.eq(provider_id),
                provider_contracts::contract_ref.eq(body.contract_ref.trim()),
                provider_contracts::kanta_joined_on.eq(body.kanta_joined_on),
                provider_contracts::updated_at.eq(at),
            ))
            .execute(conn)?;
        Ok::<_, ConsentError>(())
    })?;
    Ok(body)
}
