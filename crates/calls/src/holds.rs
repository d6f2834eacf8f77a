//! Legal hold (CA-10): a recording handed over as pre-trial investigation material is kept
//! past its retention while the hold is in force (until its last day, or until released).

use diesel::prelude::*;
use rekisteri_accounts::Permission;
use rekisteri_core::Refusal;
use rekisteri_db::schema::legal_holds;
use rekisteri_db::{DbConnection, write_transaction};

use crate::access::enter;
use crate::contacts::contact_row;
use crate::model::{LegalHold, NewLegalHold};
use crate::queues::security_event;
use crate::{CallRegister, CallsError, Request, at_primitive, format_time, new_id, rule, validation};

fn check_text(field: &str, value: &str) -> Result<(), CallsError> {
    if value.trim().is_empty() || value.chars().count() > 200 || value.chars().any(char::is_control) {
        return Err(validation(field, "must be 1-200 characters without control characters"));
    }
    Ok(())
}

/// Puts a contact's recording on legal hold; 409 when a hold is already in force. A security
/// event (CA-14).
pub fn place_legal_hold(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    registrar_id: &str,
    contact_id: &str,
    new: NewLegalHold,
) -> Result<LegalHold, CallsError> {
    let context = enter(conn, request, registrar_id, Some(Permission::ManageLegalHolds))?;
    check_text("authority", &new.authority)?;
    check_text("case_reference", &new.case_reference)?;
    let at = at_primitive(request.now);
    // A hold's last day is a Finnish calendar day.
    let today = rekisteri_core::helsinki_local(at).date();
    if let Some(until) = new.until_on
        && until < today
    {
        return Err(rule("until_on", "is in the past"));
    }
    contact_row(conn, registrar_id, contact_id)?.ok_or(CallsError::Refused(Refusal::NotFound))?;
    let id = new_id();
    write_transaction(conn, |conn| {
        // A dated hold whose last day has passed is over: it is closed as released by its date,
        // making room for the new one.
        diesel::update(
            legal_holds::table
                .filter(legal_holds::registrar_id.eq(registrar_id))
                .filter(legal_holds::contact_id.eq(contact_id))
                .filter(legal_holds::released_at.is_null())
                .filter(legal_holds::until_on.lt(today)),
        )
        .set((legal_holds::released_at.eq(at), legal_holds::released_by.eq("expired")))
        .execute(conn)?;
        let held: bool = diesel::select(diesel::dsl::exists(
            legal_holds::table
                .filter(legal_holds::registrar_id.eq(registrar_id))
                .filter(legal_holds::contact_id.eq(contact_id))
                .filter(legal_holds::released_at.is_null()),
        ))
        .get_result(conn)?;
        if held {
            return Err(CallsError::Refused(Refusal::Conflict(
                "the contact is already on legal hold; release it first to change the hold".to_owned(),
            )));
        }
        diesel::insert_into(legal_holds::table)
            .values((
                legal_holds::registrar_id.eq(registrar_id),
                legal_holds::id.eq(&id),
                legal_holds::contact_id.eq(contact_id),
                legal_holds::authority.eq(&new.authority),
                legal_holds::case_reference.eq(&new.case_reference),
                legal_holds::until_on.eq(new.until_on),
                legal_holds::placed_by.eq(&context.actor_id),
                legal_holds::placed_at.eq(at),
            ))
            .execute(conn)?;
        register.audit.append_in(
            conn,
            vec![security_event(
                &context,
                at,
                "legal_hold_placed",
                serde_json::json!({
                    "contact_id": contact_id,
                    "hold_id": id,
                    "until_on": new.until_on.map(|d| d.to_string()),
                }),
            )],
            at,
        )?;
        Ok(())
    })?;
    Ok(LegalHold {
        id,
        authority: new.authority,
        case_reference: new.case_reference,
        until_on: new.until_on,
        placed_by: context.actor_id,
        placed_at: format_time(at),
    })
}

/// Releases the hold in force: the recording returns to normal retention (CA-10). 404 when the
/// contact has none.
pub fn release_legal_hold(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    registrar_id: &str,
    contact_id: &str,
) -> Result<(), CallsError> {
    let context = enter(conn, request, registrar_id, Some(Permission::ManageLegalHolds))?;
    let at = at_primitive(request.now);
    write_transaction(conn, |conn| {
        let today = rekisteri_core::helsinki_local(at).date();
        let released = diesel::update(
            legal_holds::table
                .filter(legal_holds::registrar_id.eq(registrar_id))
                .filter(legal_holds::contact_id.eq(contact_id))
                .filter(legal_holds::released_at.is_null())
                .filter(legal_holds::until_on.is_null().or(legal_holds::until_on.ge(today))),
        )
        .set((
            legal_holds::released_at.eq(at),
            legal_holds::released_by.eq(&context.actor_id),
        ))
        .execute(conn)?;
        if released == 0 {
            return Err(CallsError::Refused(Refusal::NotFound));
        }
        register.audit.append_in(
            conn,
            vec![security_event(
                &context,
                at,
                "legal_hold_released",
                serde_json::json!({ "contact_id": contact_id }),
            )],
            at,
        )?;
        Ok(())
    })
}
