//! The organiser's Kanta settings (RU-1): start date, case OID root, notice before closing and
//! the document types that must be signed.

use diesel::prelude::*;
use rekisteri_accounts::{Permission, Principal};
use rekisteri_db::schema::kanta_settings;
use rekisteri_db::{DbConnection, write_transaction};
use serde::{Deserialize, Serialize};
use time::Date;
use utoipa::ToSchema;

use super::common::organiser_staff;
use super::iso_date;
use crate::{ConsentError, at_primitive, validation};

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KantaSettings {
    /// The organiser's Kanta start date; no right opens before it (RU-1).
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub kanta_start_date: Date,
    /// The OID root the organiser's case OIDs are issued under (`<root>.<n>`).
    pub case_oid_root: String,
    /// Working days of notice to the provider before an automatic closing (default 3).
    #[schema(maximum = 30)]
    pub closing_notice_working_days: Option<u32>,
    /// The Sosmeta document types whose documents must carry the professional's electronic
    /// signature (RU-8); none by default.
    #[serde(default)]
    pub signed_document_types: Vec<String>,
}

/// RU-1: the organiser's Kanta start date, case OID root and notice period.
pub fn set_kanta_settings(
    conn: &mut DbConnection,
    principal: &Principal,
    registrar_id: &str,
    settings: KantaSettings,
    now: time::OffsetDateTime,
) -> Result<KantaSettings, ConsentError> {
    organiser_staff(conn, principal, registrar_id, Permission::ManageRegistryUseRights)?;
    let root = settings.case_oid_root.trim();
    if root.parse::<rekisteri_core::Oid>().is_err() {
        return Err(validation("case_oid_root", "must be an OID (digits separated by dots)"));
    }
    let notice = settings.closing_notice_working_days.unwrap_or(3);
    if notice > 30 {
        return Err(validation("closing_notice_working_days", "must be 0–30"));
    }
    let mut signed: Vec<String> = settings
        .signed_document_types
        .iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    signed.sort();
    signed.dedup();
    let signed_json = serde_json::to_string(&signed).map_err(|e| ConsentError::Crypto(e.to_string()))?;
    let at = at_primitive(now);
    write_transaction(conn, |conn| {
        let exists: i64 = kanta_settings::table
            .filter(kanta_settings::registrar_id.eq(registrar_id))
            .count()
            .get_result(conn)?;
        let values = (
            kanta_settings::kanta_start_date.eq(settings.kanta_start_date),
            kanta_settings::case_oid_root.eq(root),
            kanta_settings::closing_notice_working_days.eq(notice as i32),
            kanta_settings::signed_document_types.eq(&signed_json),
            kanta_settings::updated_at.eq(at),
        );
        if exists == 0 {
            diesel::insert_into(kanta_settings::table)
                .values((kanta_settings::registrar_id.eq(registrar_id), values))
                .execute(conn)?;
        } else {
            diesel::update(kanta_settings::table.filter(kanta_settings::registrar_id.eq(registrar_id)))
                .set(values)
                .execute(conn)?;
        }
        Ok::<_, ConsentError>(())
    })?;
    Ok(KantaSettings {
        kanta_start_date: settings.kanta_start_date,
        case_oid_root: root.to_owned(),
        closing_notice_working_days: Some(notice),
        signed_document_types: signed,
    })
}
