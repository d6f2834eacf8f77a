//! The organiser's view of who works in its register for providers (AC-11): the users of every
//! provider that has a service in the registrar's register, with their rights and validity.

use diesel::prelude::*;
use rekisteri_accounts::{Account, Permission, Principal};
use rekisteri_core::Refusal;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::services;

use crate::ClientsError;

/// A provider's user as the organiser sees them: who, for which provider, with which rights.
/// The e-mail address stays with the provider (AC-9).
#[derive(Debug, Clone)]
pub struct ProviderUser {
    pub provider_id: String,
    pub provider_name: String,
    pub account: Account,
}

/// The users of the providers working in registrar `registrar_id`'s register. For the
/// registrar's main users and admins (who manage rights) and its auditors (who supervise them).
pub fn provider_users(
    conn: &mut DbConnection,
    accounts_register: &rekisteri_accounts::Register,
    principal: &Principal,
    registrar_id: &str,
) -> Result<Vec<ProviderUser>, ClientsError> {
    let own = principal.organisation_id == registrar_id;
    let allowed = principal.can(Permission::ManageOrganisations)
        || (own && (principal.can(Permission::ManageServiceAreas) || principal.can(Permission::ReadRegistrarAudit)));
    if !allowed {
        return Err(if own {
            ClientsError::Refused(Refusal::Forbidden(
                "only the registrar's main users and auditors list provider users".into(),
            ))
        } else {
            ClientsError::Refused(Refusal::NotFound)
        });
    }
    // An admin may list any registrar's provider users, but only a registrar that exists.
    if !rekisteri_accounts::directory::organisation_exists(conn, registrar_id)? {
        return Err(ClientsError::Refused(Refusal::NotFound));
    }
    let providers: Vec<String> = services::table
        .filter(services::registrar_id.eq(registrar_id))
        .select(services::provider_id)
        .distinct()
        .load(conn)?;
    let names = rekisteri_accounts::directory::organisation_names(conn, &providers)?;
    let account_ids = rekisteri_accounts::directory::accounts_of(conn, &providers)?;
    let mut out = Vec::with_capacity(account_ids.len());
    for (id, provider_id) in account_ids {
        let account = rekisteri_accounts::get_account(conn, accounts_register, None, &id)?;
        out.push(ProviderUser {
            provider_name: names
                .iter()
                .find(|(p, _)| *p == provider_id)
                .map(|(_, n)| n.clone())
                .unwrap_or_default(),
            provider_id,
            account,
        });
    }
    Ok(out)
}
