//! Who reaches which clients of a registrar (CL-9, AX-4..AX-7).
//!
//! A decision names its basis, which goes to the usage log; a caller outside every rule gets a
//! reach that matches nothing, so a missing and a forbidden client look the same (404).

use rekisteri_accounts::access_cache::{AccessCache, OrganisationAccess};
use rekisteri_accounts::{Permission, Principal};
use rekisteri_audit::{AccessBasis, ActorKind, AuditContext};
use rekisteri_core::Refusal;
use rekisteri_db::DbConnection;
use time::PrimitiveDateTime;

use crate::special_reasons::SpecialReason;
use crate::{ClientsError, validation};

/// The part of a registrar's register a caller reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// The registrar's own staff: clients with a service of these service types (the service
    /// areas the user holds rights for, AX-4); `None`: every type (the registrar's own
    /// integration acting without a named user).
    Registrar { service_types: Option<Vec<String>> },
    /// A provider's staff: clients with a service of this provider, and only its services
    /// (CL-9, AX-6).
    Provider { provider_id: String },
    /// Anyone else: nothing (an outsider, another registrar's user).
    Nothing,
}

/// The care-relationship rule that binds the professional roles (AX-5): on top of its reach, a
/// professional sees only the clients on whose care team they are, in a service unit they work
/// in at the moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CareGate {
    pub account_id: String,
    /// The service units the professional works in now (memberships in force).
    pub service_unit_ids: Vec<String>,
    /// The day in Finland the care-team validity dates are compared with.
    pub today: time::Date,
}

/// An access decision with the basis the usage log records (AX-7).
#[derive(Debug, Clone)]
pub struct Decision {
    pub reach: Reach,
    pub basis: AccessBasis,
    pub actor_kind: ActorKind,
    /// Set for a professional who reaches clients only through a care relationship.
    pub care: Option<CareGate>,
    /// The stated special reason (THL code and explanation) when it is the basis (AX-5).
    pub special_reason: Option<String>,
}

impl Decision {
    /// Whether a service of `service_type` given to `provider_id` is within reach.
    pub fn reaches_service(&self, service_type: &str, provider_id: &str) -> bool {
        match &self.reach {
            Reach::Registrar { service_types: None } => true,
            Reach::Registrar {
                service_types: Some(types),
            } => types.iter().any(|t| t == service_type),
            Reach::Provider { provider_id: own } => own == provider_id,
            Reach::Nothing => false,
        }
    }

    pub fn is_registrar(&self) -> bool {
        matches!(self.reach, Reach::Registrar { .. })
    }

    pub fn is_provider(&self) -> bool {
        matches!(self.reach, Reach::Provider { .. })
    }

    /// The usage-entry context of this decision.
    pub fn context(&self, base: &AuditContext) -> AuditContext {
        AuditContext {
            access_basis: self.basis,
            actor_kind: self.actor_kind,
            special_reason: self.special_reason.clone(),
            ..base.clone()
        }
    }

    /// The context of a refused attempt (AX-7: the log shows it).
    pub fn denied(base: &AuditContext) -> AuditContext {
        AuditContext {
            access_basis: AccessBasis::None,
            special_reason: None,
            ..base.clone()
        }
    }
}

fn bare_integration(principal: &Principal) -> bool {
    principal.integration.as_ref().is_some_and(|i| i.on_behalf_of.is_none())
}

/// Decides what `principal` reaches of registrar `registrar_id`'s clients for work needing
/// `permission`. A registrar that does not exist is a 404; one that requires strong
/// authentication refuses a password session with its own 403 (AX-2).
///
/// A professional (AX-5) who lacks `permission` but reads through a care relationship gets a
/// [`CareGate`]; with `special_reason_access` a stated special reason replaces the gate. A
/// special reason stated by anyone else changes nothing: without a care relationship they
/// remain an outsider.
pub fn decide(
    conn: &mut DbConnection,
    cache: &AccessCache,
    principal: &Principal,
    registrar_id: &str,
    permission: Permission,
    at: PrimitiveDateTime,
    special_reason: Option<&SpecialReason>,
) -> Result<Decision, ClientsError> {
    let Some(OrganisationAccess {
        kind,
        strong_authentication_required: strong_required,
    }) = cache.organisation_access(conn, registrar_id)?
    else {
        return Err(ClientsError::Refused(Refusal::NotFound));
    };
    if kind == "provider" || kind == "platform" {
        // Providers and the platform keep no client register of their own.
        return Err(ClientsError::Refused(Refusal::NotFound));
    }
    rekisteri_accounts::check_strong_authentication(principal, strong_required)?;
    let actor_kind = if bare_integration(principal) {
        ActorKind::Integration
    } else if principal.organisation_id == registrar_id {
        ActorKind::Staff
    } else {
        ActorKind::ProviderUser
    };
    let basis = if bare_integration(principal) {
        AccessBasis::Integration
    } else {
        AccessBasis::Role
    };
    let nothing = Decision {
        reach: Reach::Nothing,
        basis: AccessBasis::None,
        actor_kind,
        care: None,
        special_reason: None,
    };
    let through_care = !principal.can(permission)
        && permission == Permission::ReadClients
        && principal.can(Permission::ReadClientsInCareRelationship);
    if through_care {
        return care_decision(conn, cache, principal, registrar_id, at, special_reason, actor_kind);
    }
    if principal.organisation_id == registrar_id {
        if !principal.can(permission) {
            return Err(ClientsError::Refused(Refusal::Forbidden(format!(
                "the caller's roles do not grant {}",
                permission.as_str()
            ))));
        }
        let service_types = if bare_integration(principal) {
            None
        } else {
            Some(cache.service_types_in_force(conn, &principal.account_id, registrar_id, at)?)
        };
        return Ok(Decision {
            reach: Reach::Registrar { service_types },
            basis,
            actor_kind,
            care: None,
            special_reason: None,
        });
    }
    if !principal.can(permission) {
        return Ok(nothing);
    }
    let caller_kind = cache
        .organisation_access(conn, &principal.organisation_id)?
        .map(|o| o.kind);
    if caller_kind.as_deref() != Some("provider") {
        return Ok(nothing);
    }
    Ok(Decision {
        reach: Reach::Provider {
            provider_id: principal.organisation_id.clone(),
        },
        basis,
        actor_kind,
        care: None,
        special_reason: None,
    })
}

/// Whether `principal` has any standing in registrar `registrar_id` (AX-4): its own staff and
/// integrations, a provider that serves or has a contract with it, and the platform's admins
/// (who keep every organisation's service areas). Anyone else gets, at every path of the
/// registrar and before any other check, exactly what a registrar id that does not exist gets,
/// so that not even a registrar's setting (strong authentication) tells one apart.
pub fn has_standing(conn: &mut DbConnection, principal: &Principal, registrar_id: &str) -> Result<bool, ClientsError> {
    use diesel::dsl::exists;
    use diesel::prelude::*;
    use rekisteri_db::schema::{provider_contracts, services};
    if has_standing_without_lookup(principal, registrar_id) {
        return Ok(true);
    }
    let provider = principal.organisation_id.as_str();
    // The contract table is the consent register's; the question "does this provider work for
    // the registrar" is asked here once for every register.
    let serves: bool = diesel::select(exists(
        services::table
            .filter(services::registrar_id.eq(registrar_id))
            .filter(services::provider_id.eq(provider)),
    ))
    .get_result(conn)?;
    if serves {
        return Ok(true);
    }
    Ok(diesel::select(exists(
        provider_contracts::table
            .filter(provider_contracts::registrar_id.eq(registrar_id))
            .filter(provider_contracts::provider_id.eq(provider)),
    ))
    .get_result(conn)?)
}

/// What a request refused at a registrar's door was after, as its usage entry names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoorTarget {
    /// One record (`client`, `service`, …) by its id.
    Record { kind: String, id: String },
    /// The registrar as a whole (a listing, a search, a report).
    Registrar,
}

/// [`has_standing`], and for a caller without it a 404 ([`ClientsError::Refused(Refusal::NotFound)`]) and, when
/// the registrar exists, a denied entry in its usage log about `target`, so its auditor sees
/// who knocked and at what (AX-7). The entry is committed on its own: the request goes no further.
pub fn require_standing(
    conn: &mut DbConnection,
    register: &crate::ClientRegister,
    principal: &Principal,
    context: &AuditContext,
    target: DoorTarget,
    at: PrimitiveDateTime,
) -> Result<(), ClientsError> {
    if has_standing(conn, principal, &context.registrar_id)? {
        return Ok(());
    }
    Err(refuse_at_door(conn, register, context, target, at))
}

/// The refusal of a caller without standing at the door of `context.registrar_id`: when the
/// registrar exists, a denied entry in its usage log about `target` (committed on its own, the
/// request goes no further); then a 404 either way, so that a registrar that exists and one
/// that does not answer alike (AX-4, AX-7). Returns the error to answer with.
pub fn refuse_at_door(
    conn: &mut DbConnection,
    register: &crate::ClientRegister,
    context: &AuditContext,
    target: DoorTarget,
    at: PrimitiveDateTime,
) -> ClientsError {
    match log_refusal_at_door(conn, register, context, target, at) {
        Ok(()) => ClientsError::Refused(Refusal::NotFound),
        Err(e) => e,
    }
}

fn log_refusal_at_door(
    conn: &mut DbConnection,
    register: &crate::ClientRegister,
    context: &AuditContext,
    target: DoorTarget,
    at: PrimitiveDateTime,
) -> Result<(), ClientsError> {
    let registrar_id = context.registrar_id.as_str();
    if rekisteri_accounts::directory::organisation_exists(conn, registrar_id)? {
        let (data_kind, data_id) = match target {
            DoorTarget::Record { kind, id } => (kind, id),
            DoorTarget::Registrar => ("registrar".to_owned(), registrar_id.to_owned()),
        };
        let entry = Decision::denied(context).usage_entry(
            rekisteri_audit::DataUse {
                subject_index: None,
                data_kind,
                data_id: Some(data_id),
                outcome: rekisteri_audit::Outcome::Denied,
            },
            at,
        );
        rekisteri_db::write_transaction(conn, |conn| register.audit.append_in(conn, vec![entry], at))?;
    }
    Ok(())
}

/// The part of [`has_standing`] that needs no database: the registrar's own people and systems,
/// and the platform's admins.
pub fn has_standing_without_lookup(principal: &Principal, registrar_id: &str) -> bool {
    principal.organisation_id == registrar_id || principal.can(Permission::ManageOrganisations)
}

/// [`decide`] for a request of the register: its principal, its moment and the special reason
/// it states.
pub fn decide_for(
    conn: &mut DbConnection,
    request: &crate::Request<'_>,
    registrar_id: &str,
    permission: Permission,
) -> Result<Decision, ClientsError> {
    decide(
        conn,
        &request.access_cache,
        request.principal,
        registrar_id,
        permission,
        crate::at_primitive(request.now),
        request.special_reason.as_ref(),
    )
}

/// A professional's decision (AX-5): the reach of their organisation (the registrar's service
/// areas, or the provider's own services) narrowed by the care relationship, unless a permitted
/// special reason is stated.
fn care_decision(
    conn: &mut DbConnection,
    cache: &AccessCache,
    principal: &Principal,
    registrar_id: &str,
    at: PrimitiveDateTime,
    special_reason: Option<&SpecialReason>,
    actor_kind: ActorKind,
) -> Result<Decision, ClientsError> {
    let reach = if principal.organisation_id == registrar_id {
        Reach::Registrar {
            service_types: Some(cache.service_types_in_force(conn, &principal.account_id, registrar_id, at)?),
        }
    } else {
        let caller_kind = cache
            .organisation_access(conn, &principal.organisation_id)?
            .map(|o| o.kind);
        if caller_kind.as_deref() != Some("provider") {
            return Ok(Decision {
                reach: Reach::Nothing,
                basis: AccessBasis::None,
                actor_kind,
                care: None,
                special_reason: None,
            });
        }
        Reach::Provider {
            provider_id: principal.organisation_id.clone(),
        }
    };
    if let Some(reason) = special_reason
        && principal.can(Permission::SpecialReasonAccess)
    {
        return Ok(Decision {
            reach,
            basis: AccessBasis::SpecialReason,
            actor_kind,
            care: None,
            special_reason: Some(reason.for_log()),
        });
    }
    Ok(Decision {
        reach,
        basis: AccessBasis::CareRelationship,
        actor_kind,
        care: Some(CareGate {
            account_id: principal.account_id.clone(),
            service_unit_ids: principal.service_unit_ids.clone(),
            today: rekisteri_core::calendar::helsinki_local(at).date(),
        }),
        special_reason: None,
    })
}

/// Parses the special reason a caller states (AX-5): a code of the list and an explanation.
pub fn parse_special_reason(code: &str, explanation: Option<&str>) -> Result<SpecialReason, ClientsError> {
    SpecialReason::parse(code, explanation).map_err(|(field, message)| validation(field, message))
}
