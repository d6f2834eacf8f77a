//! The register of call and contact recordings (CA, seed 001): a wellbeing services county's
//! telephony system pushes every contact (calls, callbacks, voicemails, chats) into it, and the
//! audio of recorded queues' calls with it.
//!
//! Only the registrar's own staff and integrations stand in this register: a provider that
//! serves the registrar's clients has no business with its phone lines (AX-4). Every read of a
//! contact is logged through [`rekisteri_audit::AuditLog::read_personal_data`] before the data
//! leaves (AU-1, CA-14); listening needs a stated reason each time and leaves a processing memo
//! that can be appended to but never changed (CA-5, CA-6). The audio itself is kept by the
//! `rekisteri-recordings` store; this crate keeps its metadata, the sealed data key and the
//! rules around it.

mod access;
mod contacts;
mod holds;
mod listening;
mod model;
mod queues;
mod recordings;
pub mod reports;
pub mod retention;

use std::sync::Arc;

pub use contacts::{
    ContactFilter, ContactPage, as_e164, check_e164, contacts_of_person, create_contact, get_contact, list_contacts,
    search_by_caller_number,
};
pub use holds::{place_legal_hold, release_legal_hold};
pub use listening::{
    GrantedAudio, add_disclosure, export_to_media, list_disclosures, open_grant, record_integrity_failure,
    request_listening,
};
pub use model::{
    Contact, ContactKind, LegalHold, ListeningGrant, ListeningRequest, MediaExport, MemoEntry, MemoEntryKind,
    NewContact, NewDisclosure, NewLegalHold, NewQueue, ProcessingMemo, Queue, QueueChanges, QueueListener,
    ReasonCategory, RecipientKind, Recording,
};
pub use queues::{create_queue, grant_listening, list_queues, revoke_listening, update_queue};
pub use recordings::{StoredAudio, UploadPlan, begin_upload, finish_upload};

use rekisteri_audit::{AuditContext, AuditLog};
use rekisteri_core::Refusal;
use rekisteri_crypto::Keyring;

/// How long a listening grant can be used (CA-8): long enough to listen to a call with pauses
/// and seeks, short enough that a grant left in a browser's history is soon worthless.
pub const LISTENING_GRANT_SECONDS: i64 = 15 * 60;

/// What every operation of the register needs besides the connection.
#[derive(Clone)]
pub struct CallRegister {
    pub keyring: Arc<Keyring>,
    pub audit: AuditLog,
}

/// One request's caller and log context.
pub struct Request<'a> {
    pub principal: &'a rekisteri_accounts::Principal,
    pub audit: AuditContext,
    pub now: time::OffsetDateTime,
    pub access_cache: Arc<rekisteri_accounts::access_cache::AccessCache>,
}

rekisteri_accounts::register_error! {
    #[own_query_errors]
    /// Why an operation was refused. Messages never contain a phone number, name or other
    /// personal data.
    pub enum CallsError {
        #[error("this registrar's data needs strong authentication")]
        StrongAuthenticationRequired,
    }
}

impl From<diesel::result::Error> for CallsError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            // Two requests that both passed the existence check: on PostgreSQL the second meets
            // the unique key at insert. It is the same conflict the check reports.
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Self::Refused(Refusal::Conflict(
                "a concurrent request made the same record first".to_owned(),
            )),
            e => Self::Db(rekisteri_db::DbError::Query(e)),
        }
    }
}

rekisteri_accounts::from_accounts_error!(CallsError);

pub(crate) use rekisteri_audit::format_time;
pub(crate) use rekisteri_db::to_primitive as at_primitive;

pub(crate) use rekisteri_core::ids::new_row_id as new_id;
