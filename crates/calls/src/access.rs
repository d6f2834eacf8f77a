//! Who stands in the register and what they may do in it (AX-3, AX-4, CA-1, CA-5).
//!
//! Only the registrar's own staff and its own integrations enter; everyone else gets what a
//! registrar that does not exist gets (404). Inside, permissions come from roles (and an
//! integration's scopes); a queue's users are the staff of its service unit, and its listening
//! rights belong to the unit's supervisors and to the users granted them by name.

use diesel::prelude::*;
use rekisteri_accounts::{Permission, Principal};
use rekisteri_audit::{AccessBasis, ActorKind, AuditContext};
use rekisteri_core::Refusal;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::{call_queue_listeners, call_queues};
use time::PrimitiveDateTime;

use crate::{CallsError, Request};

/// The queue columns access decisions need.
#[derive(Debug, Clone, Queryable)]
pub(crate) struct QueueRow {
    pub id: String,
    pub service_unit_id: String,
    pub recorded: bool,
    pub recording_announcement: Option<String>,
}

fn bare_integration(principal: &Principal) -> bool {
    principal.integration.as_ref().is_some_and(|i| i.on_behalf_of.is_none())
}

/// Lets the caller into registrar `registrar_id`'s call register and returns the usage
/// entries' context: 404 to anyone but the registrar's own staff and integrations (AX-4), the
/// strong-authentication rule of the registrar (AX-2), then `permission` (403).
pub(crate) fn enter(
    conn: &mut DbConnection,
    request: &Request<'_>,
    registrar_id: &str,
    permission: Option<Permission>,
) -> Result<AuditContext, CallsError> {
    let Some(organisation) = request.access_cache.organisation_access(conn, registrar_id)? else {
        return Err(CallsError::Refused(Refusal::NotFound));
    };
    if organisation.kind == "provider" || organisation.kind == "platform" {
        return Err(CallsError::Refused(Refusal::NotFound));
    }
    let principal = request.principal;
    if principal.organisation_id != registrar_id {
        return Err(CallsError::Refused(Refusal::NotFound));
    }
    rekisteri_accounts::check_strong_authentication(principal, organisation.strong_authentication_required)?;
    if let Some(permission) = permission
        && !principal.can(permission)
    {
        return Err(CallsError::Refused(Refusal::Forbidden(format!(
            "the call register needs the {} permission",
            permission.as_str()
        ))));
    }
    let mut context = request.audit.clone();
    context.registrar_id = registrar_id.to_owned();
    if bare_integration(principal) {
        context.actor_kind = ActorKind::Integration;
        context.access_basis = AccessBasis::Integration;
    } else {
        context.actor_kind = ActorKind::Staff;
        context.access_basis = AccessBasis::Role;
    }
    context.special_reason = None;
    Ok(context)
}

pub(crate) fn queue(
    conn: &mut DbConnection,
    registrar_id: &str,
    queue_id: &str,
) -> Result<Option<QueueRow>, CallsError> {
    Ok(call_queues::table
        .filter(call_queues::registrar_id.eq(registrar_id))
        .filter(call_queues::id.eq(queue_id))
        .select((
            call_queues::id,
            call_queues::service_unit_id,
            call_queues::recorded,
            call_queues::recording_announcement,
        ))
        .first(conn)
        .optional()?)
}

/// Whether the principal works in the queue's service unit: the users a secret number given in
/// the queue is shown to (CA-2, AX-6).
pub(crate) fn is_queue_user(principal: &Principal, queue: &QueueRow) -> bool {
    principal.service_unit_ids.contains(&queue.service_unit_id)
}

/// Whether the principal holds listening rights for the queue (CA-1, CA-5): a supervisor of
/// the queue's unit, or a user granted the right by name. An integration never listens on its
/// own: listening needs a person who states why.
pub(crate) fn may_listen(
    conn: &mut DbConnection,
    principal: &Principal,
    registrar_id: &str,
    queue: &QueueRow,
) -> Result<bool, CallsError> {
    if bare_integration(principal) {
        return Ok(false);
    }
    if principal.can(Permission::ListenToRecordings) && is_queue_user(principal, queue) {
        return Ok(true);
    }
    if principal.integration.is_some() && !principal.can(Permission::ListenToRecordings) {
        // A named user's explicit grant reaches no further than the system's scopes.
        return Ok(false);
    }
    Ok(diesel::select(diesel::dsl::exists(
        call_queue_listeners::table
            .filter(call_queue_listeners::registrar_id.eq(registrar_id))
            .filter(call_queue_listeners::queue_id.eq(&queue.id))
            .filter(call_queue_listeners::account_id.eq(&principal.account_id))
            .filter(call_queue_listeners::revoked_at.is_null()),
    ))
    .get_result(conn)?)
}

/// The explicit grants in force, for a queue listing.
pub(crate) fn listeners_in_force(
    conn: &mut DbConnection,
    registrar_id: &str,
) -> Result<Vec<(String, String, String, PrimitiveDateTime)>, CallsError> {
    Ok(call_queue_listeners::table
        .filter(call_queue_listeners::registrar_id.eq(registrar_id))
        .filter(call_queue_listeners::revoked_at.is_null())
        .order((call_queue_listeners::queue_id, call_queue_listeners::granted_at))
        .select((
            call_queue_listeners::queue_id,
            call_queue_listeners::account_id,
            call_queue_listeners::granted_by,
            call_queue_listeners::granted_at,
        ))
        .load(conn)?)
}
