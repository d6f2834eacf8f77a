//! What several subjects of the registry use rights share: the right and service rows, who may
//! manage a register, security events and the sealing of stored texts.

use diesel::prelude::*;
use rekisteri_accounts::{OrganisationKind, Permission, Principal};
use rekisteri_audit::{ActorKind, NewEntry, SecurityEvent};
use rekisteri_clients::{Request, ServiceKind, ServiceTerm};
use rekisteri_core::Refusal;
use rekisteri_crypto::{FieldCipher, FieldContext};
use rekisteri_db::DbConnection;
use time::Date;

use crate::decision::is_usable;
use crate::{ConsentError, ConsentRegister, at_primitive};

/// A right's status as stored. A right past `closes_after` may still be stored as open or
/// reopened until the closing job runs; [`super::lifecycle::effective_status`] says what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RightStatus {
    Open,
    Closed,
    Reopened,
}

impl RightStatus {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Reopened => "reopened",
        }
    }

    pub(super) fn parse(value: &str) -> Option<Self> {
        match value {
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            "reopened" => Some(Self::Reopened),
            _ => None,
        }
    }
}

impl TryFrom<String> for RightStatus {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or_else(|| format!("unknown registry use right status {value:?}"))
    }
}

/// A right as loaded with [`right_columns`], in that order.
#[derive(Debug, Clone, Queryable)]
pub(super) struct RightRow {
    pub id: String,
    pub client_id: String,
    pub service_id: String,
    pub provider_id: String,
    pub provider_unit_oid: String,
    pub case_oid: String,
    pub opened_on: Date,
    pub service_ended_on: Option<Date>,
    pub closes_after: Option<Date>,
    pub closing_set_by_organiser: bool,
    #[diesel(deserialize_as = String)]
    pub status: RightStatus,
    pub reopen_reason: Option<String>,
    pub unit_oid_changed: bool,
}

impl RightRow {
    /// Usable on `today` in Finland (RU-5, RU-6).
    pub(super) fn is_usable(&self, today: Date) -> bool {
        is_usable(self.status.as_str(), self.opened_on, self.closes_after, today)
    }
}

macro_rules! right_columns {
    () => {
        (
            registry_use_rights::id,
            registry_use_rights::client_id,
            registry_use_rights::service_id,
            registry_use_rights::provider_id,
            registry_use_rights::provider_unit_oid,
            registry_use_rights::case_oid,
            registry_use_rights::opened_on,
            registry_use_rights::service_ended_on,
            registry_use_rights::closes_after,
            registry_use_rights::closing_set_by_organiser,
            registry_use_rights::status,
            registry_use_rights::reopen_reason,
            registry_use_rights::unit_oid_changed,
        )
    };
}
pub(super) use right_columns;

pub(super) fn organisation_kind(conn: &mut DbConnection, id: &str) -> Result<Option<OrganisationKind>, ConsentError> {
    Ok(rekisteri_accounts::directory::organisation_kind(conn, id)?)
}

/// Whether `kind` keeps registers (an organiser), as opposed to a provider or the platform.
pub(super) fn is_organiser(kind: Option<OrganisationKind>) -> bool {
    matches!(
        kind,
        Some(
            OrganisationKind::Municipality
                | OrganisationKind::WellbeingServicesCounty
                | OrganisationKind::OtherOrganiser
        )
    )
}

/// The organiser's own staff holding `permission`; anyone else: 404 (another organisation)
/// or 403 (the registrar's user without the permission).
pub(super) fn organiser_staff(
    conn: &mut DbConnection,
    principal: &Principal,
    registrar_id: &str,
    permission: Permission,
) -> Result<(), ConsentError> {
    if !is_organiser(organisation_kind(conn, registrar_id)?) || principal.organisation_id != registrar_id {
        return Err(ConsentError::Refused(Refusal::NotFound));
    }
    rekisteri_accounts::require_strong_authentication(conn, principal, registrar_id)?;
    if !principal.can(permission) {
        return Err(ConsentError::Refused(Refusal::Forbidden(format!(
            "the caller's roles do not grant {}",
            permission.as_str()
        ))));
    }
    Ok(())
}

/// Only a service voucher has a choice of provider (RU-1).
pub(super) fn is_voucher(service: &ServiceTerm) -> bool {
    service.kind == ServiceKind::ServiceVoucher
}

pub(super) fn security_event(
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    event_type: &str,
    details: serde_json::Value,
) -> Result<(), ConsentError> {
    register.clients.audit.append(vec![NewEntry::Security(SecurityEvent {
        occurred_at: at_primitive(request.now),
        organisation_id: Some(registrar_id.to_owned()),
        event_type: event_type.to_owned(),
        actor_kind: ActorKind::ProviderUser,
        actor_id: Some(request.principal.account_id.clone()),
        details,
        request_id: Some(request.audit.request_id.clone()),
    })])?;
    Ok(())
}

pub(super) fn seal(
    register: &ConsentRegister,
    table: &str,
    column: &str,
    row_id: &str,
    value: &str,
) -> Result<Vec<u8>, ConsentError> {
    Ok(FieldCipher::new(&register.clients.keyring).encrypt_str(&FieldContext::new(table, column, row_id), value)?)
}

#[allow(
    clippy::disallowed_methods,
    reason = "case documents, opened inside read_personal_data closures that log the use; incident texts (no \
              client data by rule) for the registrar's data-protection officer"
)]
pub(super) fn open(
    register: &ConsentRegister,
    table: &str,
    column: &str,
    row_id: &str,
    value: &[u8],
) -> Result<String, ConsentError> {
    Ok(FieldCipher::new(&register.clients.keyring).decrypt_string(&FieldContext::new(table, column, row_id), value)?)
}

/// [`organiser_staff`] with `manage_registry_use_rights`: who opens, closes and reopens rights.
pub(super) fn rights_manager(
    conn: &mut DbConnection,
    principal: &Principal,
    registrar_id: &str,
) -> Result<(), ConsentError> {
    organiser_staff(conn, principal, registrar_id, Permission::ManageRegistryUseRights)
}

/// The client as a reader of the client register reaches it (`read_clients`).
pub(super) fn reach_to_read(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
) -> Result<rekisteri_clients::ReachedClient, ConsentError> {
    Ok(rekisteri_clients::reach_client(
        conn,
        &register.clients,
        request,
        registrar_id,
        client_id,
        Permission::ReadClients,
    )?)
}
