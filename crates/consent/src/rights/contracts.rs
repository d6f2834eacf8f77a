//! The organiser's contracts with providers, their Kanta joining dates and the exemption of a
//! small provider of support services from joining (RU-1, source 003 §5); the report of the
//! contracted providers that have not joined.

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
use crate::{ConsentError, at_primitive, helsinki_today, rule, validation};

/// A support service whose small providers an organiser may exempt from joining Kanta and from
/// recording separate electronic client documents (source 003 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SupportService {
    Cleaning,
    Errands,
    Meals,
    Laundry,
    Mobility,
}

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
    /// The support services for which the organiser exempts this small provider from joining
    /// Kanta and from recording separate electronic client documents (source 003 §5): such a
    /// provider is never reported as missing Kanta joining, and no registry use right opens for
    /// its services. Absent: not exempt. Not together with `kanta_joined_on` (422). Returned in
    /// a canonical order without repeats.
    #[serde(default)]
    #[schema(min_items = 1)]
    pub kanta_exemption: Option<Vec<SupportService>>,
}

/// RU-1: the organiser's contract with a provider, and whether the provider joined Kanta or is
/// exempt from joining.
pub fn set_contract(
    conn: &mut DbConnection,
    principal: &Principal,
    registrar_id: &str,
    provider_id: &str,
    mut body: ContractBody,
    now: time::OffsetDateTime,
) -> Result<ContractBody, ConsentError> {
    organiser_staff(conn, principal, registrar_id, Permission::ManageRegistryUseRights)?;
    if organisation_kind(conn, provider_id)? != Some(rekisteri_accounts::OrganisationKind::Provider) {
        return Err(ConsentError::Refused(Refusal::NotFound));
    }
    if body.contract_ref.trim().is_empty() {
        return Err(validation("contract_ref", "is required"));
    }
    if let Some(services) = body.kanta_exemption.as_mut() {
        if services.is_empty() {
            return Err(validation("kanta_exemption", "must name at least one support service"));
        }
        services.sort();
        services.dedup();
        if body.kanta_joined_on.is_some() {
            return Err(rule(
                "kanta_exemption",
                "a provider exempt from joining Kanta is not also marked as joined (kanta_joined_on)",
            ));
        }
    }
    let exemption = body
        .kanta_exemption
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| ConsentError::Crypto(e.to_string()))?;
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
                provider_contracts::kanta_exemption.eq(exemption.as_deref()),
                provider_contracts::updated_at.eq(at),
            ))
            .execute(conn)?;
        Ok::<_, ConsentError>(())
    })?;
    body.contract_ref = body.contract_ref.trim().to_owned();
    Ok(body)
}

/// A contracted provider that has not joined Kanta by the report's day.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MissingKantaJoining {
    pub provider_id: String,
    pub contract_ref: String,
    /// A joining date after the report's day; null: no joining date recorded.
    #[serde(with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub kanta_joined_on: Option<Date>,
}

/// The organiser's providers missing Kanta joining (RU-1).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KantaJoiningReport {
    /// The day in Finland the report is made for.
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub as_of: Date,
    /// In provider id order. A provider the organiser exempted (source 003 §5) is never here.
    pub items: Vec<MissingKantaJoining>,
}

/// RU-1: the providers the organiser has a contract with that have not joined Kanta by today
/// (no joining date, or a later one), leaving out those it exempted (source 003 §5).
pub fn kanta_joining_report(
    conn: &mut DbConnection,
    principal: &Principal,
    registrar_id: &str,
    now: time::OffsetDateTime,
) -> Result<KantaJoiningReport, ConsentError> {
    organiser_staff(conn, principal, registrar_id, Permission::ManageRegistryUseRights)?;
    let today = helsinki_today(now);
    let rows: Vec<(String, String, Option<Date>)> = provider_contracts::table
        .filter(provider_contracts::registrar_id.eq(registrar_id))
        .filter(provider_contracts::kanta_exemption.is_null())
        .filter(
            provider_contracts::kanta_joined_on
                .is_null()
                .or(provider_contracts::kanta_joined_on.gt(today)),
        )
        .order(provider_contracts::provider_id)
        .select((
            provider_contracts::provider_id,
            provider_contracts::contract_ref,
            provider_contracts::kanta_joined_on,
        ))
        .load(conn)?;
    let items = rows
        .into_iter()
        .map(|(provider_id, contract_ref, kanta_joined_on)| MissingKantaJoining {
            provider_id,
            contract_ref,
            kanta_joined_on,
        })
        .collect();
    Ok(KantaJoiningReport { as_of: today, items })
}
