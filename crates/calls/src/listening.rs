//! Listening by stated reason (CA-5), its processing memo (CA-6), saving to external media
//! (CA-6) and disclosure (CA-7), and the audio grant that serves the bytes (CA-8).

use diesel::prelude::*;
use rekisteri_audit::{AuditContext, DataUse, DisclosureEntry, NewEntry, Outcome};
use rekisteri_core::Refusal;
use rekisteri_db::schema::{listening_grants, processing_memo_entries, processing_memos, recordings};
use rekisteri_db::{DbConnection, write_transaction};
use time::PrimitiveDateTime;

use crate::access::{enter, may_listen, queue};
use crate::contacts::{ContactRow, contact_row};
use crate::model::{
    ListeningGrant, ListeningRequest, MediaExport, MemoEntry, MemoEntryKind, NewDisclosure, ProcessingMemo,
    ReasonCategory, RecipientKind,
};
use crate::{
    CallRegister, CallsError, LISTENING_GRANT_SECONDS, Request, at_primitive, format_time, new_id, validation,
};
use rekisteri_crypto::RowCipher;

const MEMOS: &str = "processing_memos";
const ENTRIES: &str = "processing_memo_entries";

/// A recording's columns a listening needs.
#[derive(Debug, Clone, Queryable)]
struct RecordingRow {
    id: String,
    content_type: String,
    bytes: i64,
    sha256: Vec<u8>,
    data_key: Vec<u8>,
    storage_key: String,
    destroyed_at: Option<PrimitiveDateTime>,
}

fn recording_row(
    conn: &mut DbConnection,
    registrar_id: &str,
    contact_id: &str,
) -> Result<Option<RecordingRow>, CallsError> {
    Ok(recordings::table
        .filter(recordings::registrar_id.eq(registrar_id))
        .filter(recordings::contact_id.eq(contact_id))
        .select((
            recordings::id,
            recordings::content_type,
            recordings::bytes,
            recordings::sha256,
            recordings::data_key,
            recordings::storage_key,
            recordings::destroyed_at,
        ))
        .first(conn)
        .optional()?)
}

/// The recording a listener may hear now: audio present and not destroyed.
fn audible_recording(conn: &mut DbConnection, contact: &ContactRow) -> Result<RecordingRow, CallsError> {
    let recording = recording_row(conn, &contact.registrar_id, &contact.id)?
        .ok_or_else(|| CallsError::Refused(Refusal::Conflict("the contact has no recording".to_owned())))?;
    if let Some(destroyed) = recording.destroyed_at {
        return Err(CallsError::Refused(Refusal::Conflict(format!(
            "the recording's audio was destroyed by retention at {}",
            format_time(destroyed)
        ))));
    }
    Ok(recording)
}

/// The contact and the caller's listening right for its queue (CA-1, CA-5): 404 for a contact
/// the registrar does not have, 403 without listening rights.
fn listenable_contact(
    conn: &mut DbConnection,
    request: &Request<'_>,
    registrar_id: &str,
    contact_id: &str,
) -> Result<(AuditContext, ContactRow), CallsError> {
    let context = enter(conn, request, registrar_id, None)?;
    let contact = contact_row(conn, registrar_id, contact_id)?.ok_or(CallsError::Refused(Refusal::NotFound))?;
    let queue = queue(conn, registrar_id, &contact.queue_id)?.ok_or(CallsError::Refused(Refusal::NotFound))?;
    if !may_listen(conn, request.principal, registrar_id, &queue)? {
        return Err(CallsError::Refused(Refusal::Forbidden(
            "listening needs listening rights for the contact's queue".to_owned(),
        )));
    }
    Ok((context, contact))
}

/// A reason stated in words (CA-5): at least 15 characters and three words.
fn check_reason(field: &str, reason: &str) -> Result<(), CallsError> {
    let words = reason.split_whitespace().count();
    let length = reason.chars().count();
    if words < 3 || !(15..=2000).contains(&length) {
        return Err(validation(
            field,
            "must state the reason in words: at least three words and 15 characters, at most 2000",
        ));
    }
    if reason.chars().any(|c| c.is_control() && c != '\n') {
        return Err(validation(field, "must not contain control characters"));
    }
    Ok(())
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), CallsError> {
    if value.trim().is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(validation(
            field,
            format!("must be 1-{max} characters without control characters"),
        ));
    }
    Ok(())
}

fn insert_memo(
    conn: &mut DbConnection,
    register: &CallRegister,
    context: &AuditContext,
    contact: &ContactRow,
    category: ReasonCategory,
    reason: &str,
    at: PrimitiveDateTime,
) -> Result<String, CallsError> {
    let id = new_id();
    let sealed = RowCipher::new(&register.keyring, MEMOS, &id).seal("reason", reason)?;
    diesel::insert_into(processing_memos::table)
        .values((
            processing_memos::registrar_id.eq(&contact.registrar_id),
            processing_memos::id.eq(&id),
            processing_memos::contact_id.eq(&contact.id),
            processing_memos::listener_id.eq(&context.actor_id),
            processing_memos::reason_category.eq(category.as_str()),
            processing_memos::reason.eq(sealed),
            processing_memos::created_at.eq(at),
        ))
        .execute(conn)?;
    Ok(id)
}

struct EntryInput<'a> {
    kind: MemoEntryKind,
    recipient_kind: RecipientKind,
    recipient: &'a str,
    legal_basis: &'a str,
    disclosed: &'a str,
    medium: Option<&'a str>,
    reason: Option<&'a str>,
}

/// Appends a line to a memo and writes its disclosure-log entry (AU-2) in the same transaction.
fn append_entry(
    conn: &mut DbConnection,
    register: &CallRegister,
    context: &AuditContext,
    contact: &ContactRow,
    memo_id: &str,
    input: EntryInput<'_>,
    at: PrimitiveDateTime,
) -> Result<MemoEntry, CallsError> {
    let id = new_id();
    let cipher = RowCipher::new(&register.keyring, ENTRIES, &id);
    diesel::insert_into(processing_memo_entries::table)
        .values((
            processing_memo_entries::registrar_id.eq(&contact.registrar_id),
            processing_memo_entries::id.eq(&id),
            processing_memo_entries::memo_id.eq(memo_id),
            processing_memo_entries::kind.eq(input.kind.as_str()),
            processing_memo_entries::recipient_kind.eq(input.recipient_kind.as_str()),
            processing_memo_entries::recipient.eq(cipher.seal("recipient", input.recipient)?),
            processing_memo_entries::legal_basis.eq(input.legal_basis),
            processing_memo_entries::disclosed.eq(cipher.seal("disclosed", input.disclosed)?),
            processing_memo_entries::medium.eq(cipher.seal_opt("medium", input.medium)?),
            processing_memo_entries::reason.eq(cipher.seal_opt("reason", input.reason)?),
            processing_memo_entries::created_by.eq(&context.actor_id),
            processing_memo_entries::created_at.eq(at),
        ))
        .execute(conn)?;
    let description = match input.kind {
        MemoEntryKind::Disclosure => "call recording disclosed",
        MemoEntryKind::MediaExport => "call recording saved to external media",
    };
    // The recipient's name stays sealed in the memo; the log names the memo line.
    register.audit.append_in(
        conn,
        vec![NewEntry::Disclosure(DisclosureEntry {
            occurred_at: at,
            registrar_id: contact.registrar_id.clone(),
            subject_index: contact.subject(),
            description: format!("{description} (contact {}, memo {memo_id})", contact.id),
            discloser_kind: context.actor_kind,
            discloser_id: context.actor_id.clone(),
            recipient_kind: input.recipient_kind.as_str().to_owned(),
            recipient_id: format!("processing_memo_entry:{id}"),
            recipient_name: None,
            // What was disclosed is free text and stays sealed in the memo.
            purpose: description.to_owned(),
            legal_basis: input.legal_basis.to_owned(),
            request_id: context.request_id.clone(),
        })],
        at,
    )?;
    Ok(MemoEntry {
        id,
        kind: input.kind,
        recipient_kind: input.recipient_kind,
        recipient: input.recipient.to_owned(),
        legal_basis: input.legal_basis.to_owned(),
        disclosed: input.disclosed.to_owned(),
        medium: input.medium.map(str::to_owned),
        created_by: context.actor_id.clone(),
        created_at: format_time(at),
    })
}

/// Asks to listen to a contact's recording (CA-5): the caller's listening right for the queue
/// and a stated reason. Creates the processing memo (CA-6) and a grant for this one recording
/// that expires soon; the request is logged.
pub fn request_listening(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    registrar_id: &str,
    contact_id: &str,
    listening: ListeningRequest,
) -> Result<ListeningGrant, CallsError> {
    check_reason("reason", &listening.reason)?;
    let (mut context, contact) = listenable_contact(conn, request, registrar_id, contact_id)?;
    audible_recording(conn, &contact)?;
    context.purpose = format!("call register: listening ({})", listening.reason_category.as_str());
    let at = at_primitive(request.now);
    let expires_at = at + time::Duration::seconds(LISTENING_GRANT_SECONDS);
    let grant_id = new_id();
    let memo_id = write_transaction(conn, |conn| {
        let memo_id = insert_memo(
            conn,
            register,
            &context,
            &contact,
            listening.reason_category,
            &listening.reason,
            at,
        )?;
        diesel::insert_into(listening_grants::table)
            .values((
                listening_grants::registrar_id.eq(registrar_id),
                listening_grants::id.eq(&grant_id),
                listening_grants::contact_id.eq(contact_id),
                listening_grants::account_id.eq(&request.principal.account_id),
                listening_grants::memo_id.eq(&memo_id),
                listening_grants::issued_at.eq(at),
                listening_grants::expires_at.eq(expires_at),
            ))
            .execute(conn)?;
        register.audit.append_in(
            conn,
            vec![context.usage_entry(contact.data_use("listening_request"), at)],
            at,
        )?;
        Ok::<_, CallsError>(memo_id)
    })?;
    Ok(ListeningGrant {
        audio_url: format!("/v1/listening-grants/{grant_id}/audio"),
        grant_id,
        contact_id: contact_id.to_owned(),
        memo_id,
        expires_at: format_time(expires_at),
    })
}

/// What the audio endpoint needs to serve a granted recording.
#[derive(Debug, Clone)]
pub struct GrantedAudio {
    pub registrar_id: String,
    pub contact_id: String,
    pub recording_id: String,
    pub storage_key: String,
    pub sealed_data_key: Vec<u8>,
    pub content_type: String,
    pub bytes: u64,
    pub sha256: [u8; 32],
}

type GrantColumns = (String, String, String, String, PrimitiveDateTime);

/// Opens a listening grant for the user it was issued to (CA-8): 404 for a grant that does not
/// exist or is someone else's, 403 once expired or when the listening right has since ended
/// (CA-12). Each use is logged before any audio is served.
pub fn open_grant(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    grant_id: &str,
    purpose: &str,
) -> Result<GrantedAudio, CallsError> {
    if uuid::Uuid::parse_str(grant_id).is_err() {
        return Err(CallsError::Refused(Refusal::NotFound));
    }
    let grant: Option<GrantColumns> = listening_grants::table
        .filter(listening_grants::id.eq(grant_id))
        .select((
            listening_grants::registrar_id,
            listening_grants::contact_id,
            listening_grants::account_id,
            listening_grants::memo_id,
            listening_grants::expires_at,
        ))
        .first(conn)
        .optional()?;
    let Some((registrar_id, contact_id, account_id, memo_id, expires_at)) = grant else {
        return Err(CallsError::Refused(Refusal::NotFound));
    };
    if account_id != request.principal.account_id {
        return Err(CallsError::Refused(Refusal::NotFound));
    }
    let at = at_primitive(request.now);
    if at >= expires_at {
        return Err(CallsError::Refused(Refusal::Forbidden(
            "the listening grant has expired; ask to listen again with a reason".to_owned(),
        )));
    }
    let (mut context, contact) = listenable_contact(conn, request, &registrar_id, &contact_id)?;
    let recording = audible_recording(conn, &contact)?;
    context.purpose = format!("{purpose} (memo {memo_id})");
    let sha256: [u8; 32] = recording
        .sha256
        .as_slice()
        .try_into()
        .map_err(|_| CallsError::Crypto("a stored recording hash is not 32 bytes".to_owned()))?;
    let bytes = u64::try_from(recording.bytes).map_err(|_| CallsError::Crypto("a negative size".to_owned()))?;
    register.audit.read_personal_data(conn, &context, at, |_| {
        Ok::<_, CallsError>((
            GrantedAudio {
                registrar_id: registrar_id.clone(),
                contact_id: contact_id.clone(),
                recording_id: recording.id.clone(),
                storage_key: recording.storage_key.clone(),
                sealed_data_key: recording.data_key.clone(),
                content_type: recording.content_type.clone(),
                bytes,
                sha256,
            },
            vec![DataUse {
                subject_index: contact.subject(),
                data_kind: "recording".to_owned(),
                data_id: Some(contact.id.clone()),
                outcome: Outcome::Used,
            }],
        ))
    })
}

type MemoColumns = (String, String, String, String, Vec<u8>, PrimitiveDateTime);
type EntryColumns = (
    String,
    String,
    String,
    Vec<u8>,
    String,
    Vec<u8>,
    Option<Vec<u8>>,
    String,
    PrimitiveDateTime,
);

fn memo_row(conn: &mut DbConnection, registrar_id: &str, memo_id: &str) -> Result<MemoColumns, CallsError> {
    if uuid::Uuid::parse_str(memo_id).is_err() {
        return Err(CallsError::Refused(Refusal::NotFound));
    }
    processing_memos::table
        .filter(processing_memos::registrar_id.eq(registrar_id))
        .filter(processing_memos::id.eq(memo_id))
        .select((
            processing_memos::id,
            processing_memos::contact_id,
            processing_memos::listener_id,
            processing_memos::reason_category,
            processing_memos::reason,
            processing_memos::created_at,
        ))
        .first(conn)
        .optional()?
        .ok_or(CallsError::Refused(Refusal::NotFound))
}

/// A memo with its lines, opened. Called only inside `read_personal_data`.
fn open_memo(
    conn: &mut DbConnection,
    register: &CallRegister,
    registrar_id: &str,
    memo: &MemoColumns,
) -> Result<ProcessingMemo, CallsError> {
    let (id, contact_id, listener_id, category, reason, created_at) = memo;
    let entries: Vec<EntryColumns> = processing_memo_entries::table
        .filter(processing_memo_entries::registrar_id.eq(registrar_id))
        .filter(processing_memo_entries::memo_id.eq(id))
        .order((processing_memo_entries::created_at, processing_memo_entries::id))
        .select((
            processing_memo_entries::id,
            processing_memo_entries::kind,
            processing_memo_entries::recipient_kind,
            processing_memo_entries::recipient,
            processing_memo_entries::legal_basis,
            processing_memo_entries::disclosed,
            processing_memo_entries::medium,
            processing_memo_entries::created_by,
            processing_memo_entries::created_at,
        ))
        .load(conn)?;
    let entries = entries
        .into_iter()
        .map(
            |(entry_id, kind, recipient_kind, recipient, legal_basis, disclosed, medium, created_by, created_at)| {
                let cipher = RowCipher::new(&register.keyring, ENTRIES, &entry_id);
                let recipient = cipher.open("recipient", &recipient)?;
                let disclosed = cipher.open("disclosed", &disclosed)?;
                let medium = cipher.open_opt("medium", medium.as_deref())?;
                Ok(MemoEntry {
                    kind: if kind == "media_export" {
                        MemoEntryKind::MediaExport
                    } else {
                        MemoEntryKind::Disclosure
                    },
                    recipient_kind: RecipientKind::parse(&recipient_kind).unwrap_or(RecipientKind::Authority),
                    recipient,
                    legal_basis,
                    disclosed,
                    medium,
                    created_by,
                    created_at: format_time(created_at),
                    id: entry_id,
                })
            },
        )
        .collect::<Result<Vec<_>, CallsError>>()?;
    Ok(ProcessingMemo {
        id: id.clone(),
        contact_id: contact_id.clone(),
        listener_id: listener_id.clone(),
        reason_category: ReasonCategory::parse(category).unwrap_or(ReasonCategory::Other),
        reason: RowCipher::new(&register.keyring, MEMOS, id).open("reason", reason)?,
        created_at: format_time(*created_at),
        entries,
    })
}

/// Who may read and complete a memo: a listener of the contact's queue; the registrar's auditor
/// reads it too (AU-6).
fn memo_access(
    conn: &mut DbConnection,
    request: &Request<'_>,
    registrar_id: &str,
    memo_id: &str,
    write: bool,
) -> Result<(AuditContext, MemoColumns, Option<ContactRow>), CallsError> {
    let context = enter(conn, request, registrar_id, None)?;
    let memo = memo_row(conn, registrar_id, memo_id)?;
    let contact = contact_row(conn, registrar_id, &memo.1)?;
    let listener = match &contact {
        Some(contact) => match queue(conn, registrar_id, &contact.queue_id)? {
            Some(queue) => may_listen(conn, request.principal, registrar_id, &queue)?,
            None => false,
        },
        None => false,
    };
    let auditor = !write && request.principal.audits_registrar(registrar_id);
    if !listener && !auditor {
        return Err(CallsError::Refused(Refusal::Forbidden(
            "a processing memo is for the listeners of the contact's queue and the registrar's auditors".to_owned(),
        )));
    }
    Ok((context, memo, contact))
}

/// A processing memo with its disclosures and exports (CA-6); reading it is logged.
pub fn list_disclosures(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    registrar_id: &str,
    memo_id: &str,
) -> Result<ProcessingMemo, CallsError> {
    let (context, memo, contact) = memo_access(conn, request, registrar_id, memo_id, false)?;
    let at = at_primitive(request.now);
    let subject = contact.as_ref().and_then(ContactRow::subject);
    register.audit.read_personal_data(conn, &context, at, |conn| {
        let opened = open_memo(conn, register, registrar_id, &memo)?;
        Ok::<_, CallsError>((
            opened,
            vec![DataUse {
                subject_index: subject,
                data_kind: "processing_memo".to_owned(),
                data_id: Some(memo.0.clone()),
                outcome: Outcome::Used,
            }],
        ))
    })
}

/// Records a disclosure of the listened recording (CA-7): to a party of the call or an
/// authority only; completes the memo and writes the disclosure log.
pub fn add_disclosure(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    registrar_id: &str,
    memo_id: &str,
    disclosure: NewDisclosure,
) -> Result<MemoEntry, CallsError> {
    check_text("recipient", &disclosure.recipient, 300)?;
    check_text("legal_basis", &disclosure.legal_basis, 500)?;
    check_text("disclosed", &disclosure.disclosed, 500)?;
    let (mut context, memo, contact) = memo_access(conn, request, registrar_id, memo_id, true)?;
    let contact = contact.ok_or(CallsError::Refused(Refusal::NotFound))?;
    context.purpose = "call register: disclosure of a recording".to_owned();
    let at = at_primitive(request.now);
    write_transaction(conn, |conn| {
        append_entry(
            conn,
            register,
            &context,
            &contact,
            &memo.0,
            EntryInput {
                kind: MemoEntryKind::Disclosure,
                recipient_kind: disclosure.recipient_kind,
                recipient: &disclosure.recipient,
                legal_basis: &disclosure.legal_basis,
                disclosed: &disclosure.disclosed,
                medium: None,
                reason: None,
            },
            at,
        )
    })
}

/// Saves a recording to external media (CA-6): listening rights and a stated reason, like a
/// listening; a new memo with the medium, recipient and basis, and a disclosure-log entry.
pub fn export_to_media(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    registrar_id: &str,
    contact_id: &str,
    export: MediaExport,
) -> Result<ProcessingMemo, CallsError> {
    check_reason("reason", &export.reason)?;
    check_text("medium", &export.medium, 200)?;
    check_text("recipient", &export.recipient, 300)?;
    check_text("legal_basis", &export.legal_basis, 500)?;
    let (mut context, contact) = listenable_contact(conn, request, registrar_id, contact_id)?;
    audible_recording(conn, &contact)?;
    context.purpose = format!(
        "call register: saving to external media ({})",
        export.reason_category.as_str()
    );
    let at = at_primitive(request.now);
    write_transaction(conn, |conn| {
        let memo_id = insert_memo(
            conn,
            register,
            &context,
            &contact,
            export.reason_category,
            &export.reason,
            at,
        )?;
        let entry = append_entry(
            conn,
            register,
            &context,
            &contact,
            &memo_id,
            EntryInput {
                kind: MemoEntryKind::MediaExport,
                recipient_kind: export.recipient_kind,
                recipient: &export.recipient,
                legal_basis: &export.legal_basis,
                disclosed: "the recording, saved to external media",
                medium: Some(&export.medium),
                reason: Some(&export.reason),
            },
            at,
        )?;
        register
            .audit
            .append_in(conn, vec![context.usage_entry(contact.data_use("recording"), at)], at)?;
        Ok(ProcessingMemo {
            id: memo_id,
            contact_id: contact.id.clone(),
            listener_id: context.actor_id.clone(),
            reason_category: export.reason_category,
            reason: export.reason.clone(),
            created_at: format_time(at),
            entries: vec![entry],
        })
    })
}

/// Records that a granted recording's stored audio failed its integrity check (CA-3): a
/// security event for the registrar, so that someone looks at the storage.
pub fn record_integrity_failure(
    register: &CallRegister,
    request: &Request<'_>,
    audio: &GrantedAudio,
) -> Result<(), CallsError> {
    let at = at_primitive(request.now);
    register
        .audit
        .append(vec![NewEntry::Security(rekisteri_audit::SecurityEvent {
            occurred_at: at,
            organisation_id: Some(audio.registrar_id.clone()),
            event_type: "recording_integrity_failure".to_owned(),
            actor_kind: request.audit.actor_kind,
            actor_id: Some(request.principal.account_id.clone()),
            details: serde_json::json!({
                "contact_id": audio.contact_id,
                "recording_id": audio.recording_id,
            }),
            request_id: Some(request.audit.request_id.clone()),
        })])?;
    Ok(())
}
