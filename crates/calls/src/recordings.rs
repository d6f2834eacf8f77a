//! A contact's recording or voicemail (CA-3): stored once, never changed.
//!
//! An upload is two steps around the audio store: [`begin_upload`] decides whether the contact
//! may take audio and names the object; the caller streams the audio into the store; then
//! [`finish_upload`] commits the metadata. The audio is durable before its row exists, so a
//! row never points at missing audio; a crash between the two leaves an object no row names,
//! which the caller deletes when the commit fails (and which holds nothing readable without
//! its data key, sealed only in the row that never came).

use diesel::prelude::*;
use rekisteri_accounts::Permission;
use rekisteri_audit::AuditContext;
use rekisteri_core::Refusal;
use rekisteri_db::schema::recordings;
use rekisteri_db::{DbConnection, write_transaction};

use crate::access::{enter, queue};
use crate::contacts::contact_row;
use crate::model::{ContactKind, Recording};
use crate::{CallRegister, CallsError, Request, at_primitive, format_time, new_id, rule};

/// What an upload may store, decided before any byte is read.
#[derive(Debug, Clone)]
pub struct UploadPlan {
    pub registrar_id: String,
    pub contact_id: String,
    /// The recording's own id: the chunks' associated data and the data key's seal name it.
    pub recording_id: String,
    /// The object name in the audio store: registrar and recording ids, nothing personal.
    pub storage_key: String,
    context: AuditContext,
}

/// What the audio store reported of a finished upload.
#[derive(Debug, Clone)]
pub struct StoredAudio {
    pub bytes: u64,
    pub sha256: [u8; 32],
    pub content_type: String,
    /// The recording's data key, sealed under the platform key.
    pub sealed_data_key: Vec<u8>,
}

fn already_stored(conn: &mut DbConnection, registrar_id: &str, contact_id: &str) -> Result<bool, CallsError> {
    Ok(diesel::select(diesel::dsl::exists(
        recordings::table
            .filter(recordings::registrar_id.eq(registrar_id))
            .filter(recordings::contact_id.eq(contact_id)),
    ))
    .get_result(conn)?)
}

fn conflict() -> CallsError {
    CallsError::Refused(Refusal::Conflict(
        "the contact already has its audio; a recording is never replaced or changed".to_owned(),
    ))
}

/// Checks that `contact_id` may take audio now: the pusher's right, a call or callback of a
/// recorded queue or a voicemail, and no audio yet (409).
pub fn begin_upload(
    conn: &mut DbConnection,
    request: &Request<'_>,
    registrar_id: &str,
    contact_id: &str,
) -> Result<UploadPlan, CallsError> {
    let context = enter(conn, request, registrar_id, Some(Permission::PushContacts))?;
    let contact = contact_row(conn, registrar_id, contact_id)?.ok_or(CallsError::Refused(Refusal::NotFound))?;
    // Audio can never be replaced, so only whoever pushed the contact (the telephony system, or
    // the agent who recorded a callback) may give it: anyone else could plant false evidence.
    if contact.created_by != context.actor_id {
        return Err(CallsError::Refused(Refusal::Forbidden(
            "only the system or user that pushed the contact uploads its audio".to_owned(),
        )));
    }
    match contact.kind() {
        ContactKind::Chat => return Err(rule("kind", "a chat has no audio")),
        ContactKind::Call | ContactKind::Callback => {
            let queue = queue(conn, registrar_id, &contact.queue_id)?.ok_or(CallsError::Refused(Refusal::NotFound))?;
            if !queue.recorded || contact.recording_announcement.is_none() {
                return Err(rule(
                    "queue_id",
                    "calls of this queue are not recorded: the caller was not told of a recording",
                ));
            }
        }
        ContactKind::Voicemail => {}
    }
    if already_stored(conn, registrar_id, contact_id)? {
        return Err(conflict());
    }
    let recording_id = new_id();
    Ok(UploadPlan {
        registrar_id: registrar_id.to_owned(),
        contact_id: contact_id.to_owned(),
        storage_key: format!("{registrar_id}/{recording_id}"),
        recording_id,
        context,
    })
}

/// Commits a stored upload's metadata with its usage entry. 409 when another upload for the
/// contact won meanwhile: the caller then deletes its own object.
pub fn finish_upload(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    plan: &UploadPlan,
    stored: StoredAudio,
) -> Result<Recording, CallsError> {
    let at = at_primitive(request.now);
    let bytes = i64::try_from(stored.bytes).map_err(|_| rule("body", "is too large"))?;
    let contact =
        contact_row(conn, &plan.registrar_id, &plan.contact_id)?.ok_or(CallsError::Refused(Refusal::NotFound))?;
    write_transaction(conn, |conn| {
        if already_stored(conn, &plan.registrar_id, &plan.contact_id)? {
            return Err(conflict());
        }
        diesel::insert_into(recordings::table)
            .values((
                recordings::registrar_id.eq(&plan.registrar_id),
                recordings::contact_id.eq(&plan.contact_id),
                recordings::id.eq(&plan.recording_id),
                recordings::content_type.eq(&stored.content_type),
                recordings::bytes.eq(bytes),
                recordings::sha256.eq(stored.sha256.as_slice()),
                recordings::data_key.eq(&stored.sealed_data_key),
                recordings::storage_key.eq(&plan.storage_key),
                recordings::stored_at.eq(at),
            ))
            .execute(conn)?;
        register.audit.append_in(
            conn,
            vec![plan.context.usage_entry(contact.data_use("recording"), at)],
            at,
        )?;
        Ok(())
    })?;
    Ok(Recording {
        sha256: rekisteri_crypto::to_hex(&stored.sha256),
        content_type: stored.content_type,
        bytes,
        stored_at: format_time(at),
        destroyed_at: None,
        destroyed_by_run: None,
    })
}
