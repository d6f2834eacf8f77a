//! Service queues and their listening rights (CA-1).

use diesel::prelude::*;
use rekisteri_accounts::Permission;
use rekisteri_audit::{AuditContext, NewEntry, SecurityEvent};
use rekisteri_core::Refusal;
use rekisteri_db::schema::{call_queue_listeners, call_queues};
use rekisteri_db::{DbConnection, write_transaction};
use time::PrimitiveDateTime;

use crate::access::{enter, listeners_in_force, queue};
use crate::model::{NewQueue, Queue, QueueChanges, QueueListener};
use crate::{CallRegister, CallsError, Request, at_primitive, format_time, new_id, rule, validation};

pub(crate) fn security_event(
    context: &AuditContext,
    at: PrimitiveDateTime,
    event_type: &str,
    details: serde_json::Value,
) -> NewEntry {
    NewEntry::Security(SecurityEvent {
        occurred_at: at,
        organisation_id: Some(context.registrar_id.clone()),
        event_type: event_type.to_owned(),
        actor_kind: context.actor_kind,
        actor_id: Some(context.actor_id.clone()),
        details,
        request_id: Some(context.request_id.clone()),
    })
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), CallsError> {
    let length = value.chars().count();
    if value.trim().is_empty() || length > max {
        return Err(validation(
            field,
            format!("must be 1-{max} characters, not only whitespace"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(validation(field, "must not contain control characters"));
    }
    Ok(())
}

/// Creates a queue (CA-1): its service unit must be the registrar's; a recorded queue states
/// the announcement its callers hear.
pub fn create_queue(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    registrar_id: &str,
    new: NewQueue,
) -> Result<Queue, CallsError> {
    let context = enter(conn, request, registrar_id, Some(Permission::ManageCallQueues))?;
    check_text("name", &new.name, 200)?;
    if let Some(announcement) = &new.recording_announcement {
        check_text("recording_announcement", announcement, 2000)?;
    }
    if new.recorded && new.recording_announcement.is_none() {
        return Err(rule(
            "recording_announcement",
            "is required for a recorded queue: callers are told that the call is recorded",
        ));
    }
    if uuid::Uuid::parse_str(&new.service_unit_id).is_err() {
        return Err(validation("service_unit_id", "must be a service unit id (UUID)"));
    }
    let at = at_primitive(request.now);
    let id = new_id();
    write_transaction(conn, |conn| {
        let owner = rekisteri_accounts::directory::unit_organisation(conn, &new.service_unit_id)?;
        if owner.as_deref() != Some(registrar_id) {
            return Err(rule("service_unit_id", "is not a service unit of this registrar"));
        }
        let taken: bool = diesel::select(diesel::dsl::exists(
            call_queues::table
                .filter(call_queues::registrar_id.eq(registrar_id))
                .filter(call_queues::name.eq(&new.name)),
        ))
        .get_result(conn)?;
        if taken {
            return Err(CallsError::Refused(Refusal::Conflict(
                "the registrar has a queue with this name".to_owned(),
            )));
        }
        diesel::insert_into(call_queues::table)
            .values((
                call_queues::registrar_id.eq(registrar_id),
                call_queues::id.eq(&id),
                call_queues::service_unit_id.eq(&new.service_unit_id),
                call_queues::name.eq(&new.name),
                call_queues::recorded.eq(new.recorded),
                call_queues::recording_announcement.eq(&new.recording_announcement),
                call_queues::created_by.eq(&context.actor_id),
                call_queues::created_at.eq(at),
            ))
            .execute(conn)?;
        register.audit.append_in(
            conn,
            vec![security_event(
                &context,
                at,
                "call_queue_created",
                serde_json::json!({ "queue_id": id, "recorded": new.recorded }),
            )],
            at,
        )?;
        Ok(())
    })?;
    Ok(Queue {
        id,
        registrar_id: registrar_id.to_owned(),
        service_unit_id: new.service_unit_id,
        name: new.name,
        recorded: new.recorded,
        recording_announcement: new.recording_announcement,
        listeners: Vec::new(),
        created_at: format_time(at),
    })
}

type QueueColumns = (String, String, String, bool, Option<String>, PrimitiveDateTime);

/// Changes a queue's name, recording and announcement (CA-1); a security event, since whether
/// calls are recorded is a decision about processing personal data.
pub fn update_queue(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    registrar_id: &str,
    queue_id: &str,
    changes: QueueChanges,
) -> Result<Queue, CallsError> {
    let context = enter(conn, request, registrar_id, Some(Permission::ManageCallQueues))?;
    if let Some(name) = &changes.name {
        check_text("name", name, 200)?;
    }
    if let Some(announcement) = &changes.recording_announcement {
        check_text("recording_announcement", announcement, 2000)?;
    }
    let at = at_primitive(request.now);
    write_transaction(conn, |conn| {
        let row: QueueColumns = call_queues::table
            .filter(call_queues::registrar_id.eq(registrar_id))
            .filter(call_queues::id.eq(queue_id))
            .select((
                call_queues::id,
                call_queues::service_unit_id,
                call_queues::name,
                call_queues::recorded,
                call_queues::recording_announcement,
                call_queues::created_at,
            ))
            .first(conn)
            .optional()?
            .ok_or(CallsError::Refused(Refusal::NotFound))?;
        let (id, service_unit_id, name, recorded, announcement, created_at) = row;
        let name = changes.name.unwrap_or(name);
        let recorded_now = changes.recorded.unwrap_or(recorded);
        let announcement = changes.recording_announcement.or(announcement);
        if recorded_now && announcement.is_none() {
            return Err(rule(
                "recording_announcement",
                "is required for a recorded queue: callers are told that the call is recorded",
            ));
        }
        let taken: bool = diesel::select(diesel::dsl::exists(
            call_queues::table
                .filter(call_queues::registrar_id.eq(registrar_id))
                .filter(call_queues::name.eq(&name))
                .filter(call_queues::id.ne(queue_id)),
        ))
        .get_result(conn)?;
        if taken {
            return Err(CallsError::Refused(Refusal::Conflict(
                "the registrar has a queue with this name".to_owned(),
            )));
        }
        diesel::update(
            call_queues::table
                .filter(call_queues::registrar_id.eq(registrar_id))
                .filter(call_queues::id.eq(queue_id)),
        )
        .set((
            call_queues::name.eq(&name),
            call_queues::recorded.eq(recorded_now),
            call_queues::recording_announcement.eq(&announcement),
        ))
        .execute(conn)?;
        register.audit.append_in(
            conn,
            vec![security_event(
                &context,
                at,
                "call_queue_changed",
                serde_json::json!({ "queue_id": queue_id, "recorded": recorded_now, "was_recorded": recorded }),
            )],
            at,
        )?;
        let listeners = listeners_in_force(conn, registrar_id)?
            .into_iter()
            .filter(|(q, ..)| q == queue_id)
            .map(|(_, account_id, granted_by, granted_at)| QueueListener {
                account_id,
                granted_by,
                granted_at: format_time(granted_at),
            })
            .collect();
        Ok(Queue {
            id,
            registrar_id: registrar_id.to_owned(),
            service_unit_id,
            name,
            recorded: recorded_now,
            recording_announcement: announcement,
            listeners,
            created_at: format_time(created_at),
        })
    })
}

/// The registrar's queues with their explicit listeners, for anyone of the registrar who works
/// with contacts or manages queues.
pub fn list_queues(
    conn: &mut DbConnection,
    request: &Request<'_>,
    registrar_id: &str,
) -> Result<Vec<Queue>, CallsError> {
    enter(conn, request, registrar_id, None)?;
    let principal = request.principal;
    if ![
        Permission::ManageCallQueues,
        Permission::ReadContacts,
        Permission::PushContacts,
        Permission::ListenToRecordings,
        Permission::ReadContactReports,
    ]
    .into_iter()
    .any(|p| principal.can(p))
    {
        return Err(CallsError::Refused(Refusal::Forbidden(
            "no right in the call register".to_owned(),
        )));
    }
    let rows: Vec<QueueColumns> = call_queues::table
        .filter(call_queues::registrar_id.eq(registrar_id))
        .order((call_queues::name, call_queues::id))
        .select((
            call_queues::id,
            call_queues::service_unit_id,
            call_queues::name,
            call_queues::recorded,
            call_queues::recording_announcement,
            call_queues::created_at,
        ))
        .load(conn)?;
    let listeners = listeners_in_force(conn, registrar_id)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, service_unit_id, name, recorded, recording_announcement, created_at)| Queue {
                listeners: listeners
                    .iter()
                    .filter(|(queue_id, ..)| *queue_id == id)
                    .map(|(_, account_id, granted_by, granted_at)| QueueListener {
                        account_id: account_id.clone(),
                        granted_by: granted_by.clone(),
                        granted_at: format_time(*granted_at),
                    })
                    .collect(),
                id,
                registrar_id: registrar_id.to_owned(),
                service_unit_id,
                name,
                recorded,
                recording_announcement,
                created_at: format_time(created_at),
            },
        )
        .collect())
}

/// Grants a named user of the registrar listening rights for a queue (CA-1); a security event.
pub fn grant_listening(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    registrar_id: &str,
    queue_id: &str,
    account_id: &str,
) -> Result<QueueListener, CallsError> {
    let context = enter(conn, request, registrar_id, Some(Permission::ManageCallQueues))?;
    if uuid::Uuid::parse_str(account_id).is_err() {
        return Err(validation("account_id", "must be an account id (UUID)"));
    }
    let at = at_primitive(request.now);
    write_transaction(conn, |conn| {
        queue(conn, registrar_id, queue_id)?.ok_or(CallsError::Refused(Refusal::NotFound))?;
        if !rekisteri_accounts::is_active_member(conn, registrar_id, account_id)? {
            return Err(rule("account_id", "is not an active account of this registrar"));
        }
        let held: bool = diesel::select(diesel::dsl::exists(
            call_queue_listeners::table
                .filter(call_queue_listeners::registrar_id.eq(registrar_id))
                .filter(call_queue_listeners::queue_id.eq(queue_id))
                .filter(call_queue_listeners::account_id.eq(account_id))
                .filter(call_queue_listeners::revoked_at.is_null()),
        ))
        .get_result(conn)?;
        if held {
            return Err(CallsError::Refused(Refusal::Conflict(
                "the user already holds listening rights for the queue".to_owned(),
            )));
        }
        diesel::insert_into(call_queue_listeners::table)
            .values((
                call_queue_listeners::registrar_id.eq(registrar_id),
                call_queue_listeners::id.eq(new_id()),
                call_queue_listeners::queue_id.eq(queue_id),
                call_queue_listeners::account_id.eq(account_id),
                call_queue_listeners::granted_by.eq(&context.actor_id),
                call_queue_listeners::granted_at.eq(at),
            ))
            .execute(conn)?;
        register.audit.append_in(
            conn,
            vec![security_event(
                &context,
                at,
                "listening_right_granted",
                serde_json::json!({ "queue_id": queue_id, "account_id": account_id }),
            )],
            at,
        )?;
        Ok(QueueListener {
            account_id: account_id.to_owned(),
            granted_by: context.actor_id.clone(),
            granted_at: format_time(at),
        })
    })
}

/// Ends a user's explicit listening rights for a queue; a security event. 404 when the user
/// holds none.
pub fn revoke_listening(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    registrar_id: &str,
    queue_id: &str,
    account_id: &str,
) -> Result<(), CallsError> {
    let context = enter(conn, request, registrar_id, Some(Permission::ManageCallQueues))?;
    let at = at_primitive(request.now);
    write_transaction(conn, |conn| {
        let ended = diesel::update(
            call_queue_listeners::table
                .filter(call_queue_listeners::registrar_id.eq(registrar_id))
                .filter(call_queue_listeners::queue_id.eq(queue_id))
                .filter(call_queue_listeners::account_id.eq(account_id))
                .filter(call_queue_listeners::revoked_at.is_null()),
        )
        .set((
            call_queue_listeners::revoked_at.eq(at),
            call_queue_listeners::revoked_by.eq(&context.actor_id),
        ))
        .execute(conn)?;
        if ended == 0 {
            return Err(CallsError::Refused(Refusal::NotFound));
        }
        register.audit.append_in(
            conn,
            vec![security_event(
                &context,
                at,
                "listening_right_revoked",
                serde_json::json!({ "queue_id": queue_id, "account_id": account_id }),
            )],
            at,
        )?;
        Ok(())
    })
}
