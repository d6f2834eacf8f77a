//! Kanta informing, disclosure consent and prohibitions (CO-1..CO-6), the disclosure decision,
//! registry use rights (RU-1..RU-7) and the documents providers store under them (RU-8).
//!
//! The decision itself ([`decision::decide`]) is a pure function over state loaded beforehand,
//! so its invariants are checked by property tests; everything else reads and writes through
//! the client register's access decision ([`rekisteri_clients::reach_client`]) and logs every
//! read of consent state or documents in the usage log (AU-1).

mod access_document;
mod consent;
mod created;
pub mod decision;
mod outbox;
mod rights;

pub use access_document::{ConsentSections, RightWithDocuments, access_document};
pub use consent::{
    ConsentChange, ConsentView, DecisionRequest, DecisionResponse, Informing, NewInforming, NewProhibition,
    Prohibition, RecipientBody, add_prohibition, decide_disclosure, get_consent, list_informings, list_prohibitions,
    record_informing, revoke_prohibition, set_consent,
};
pub use outbox::{ForwardReport, WillService, forward_due, pending_count as will_service_outbox_depth};
pub use rights::{
    CaseDocument, CloseRight, ClosingReport, ContractBody, IncidentChanges, KantaJoiningReport, KantaSettings,
    MissingKantaJoining, NewDocument, NewIncident, OpenRight, OpenedRight, RegistryNotification, ReopenRight, Right,
    SecurityIncident, SupportService, VoucherChoice, VoucherChoiceBody, close_right, confirm_local_copy_destroyed,
    get_right, get_security_incident, kanta_joining_report, list_documents, list_notifications, list_rights,
    list_security_incidents, open_right, record_voucher_choice, reopen_right, report_security_incident, run_closing,
    set_contract, set_kanta_settings, store_document, update_security_incident,
};

use rekisteri_clients::ClientRegister;
use rekisteri_core::Refusal;

/// What every operation needs besides the connection.
#[derive(Clone)]
pub struct ConsentRegister {
    pub clients: ClientRegister,
    /// Wakes the will-service forwarder (the scheduler's `outbox` job) after a transaction that
    /// queued an item has committed, so that the item leaves at once (CO-6: "without delay")
    /// instead of at the next scheduled run. `None` where nothing forwards in this process.
    pub outbox_wakeup: Option<rekisteri_core::Wakeup>,
}

impl ConsentRegister {
    /// Called after the transaction of a record committed, with whether it queued an item.
    pub(crate) fn outbox_queued(&self, queued: bool) {
        if queued && let Some(wakeup) = &self.outbox_wakeup {
            wakeup.wake();
        }
    }
}

// Not declared with `rekisteri_accounts::register_error!`: the derive cannot see a transparent
// variant of the caller's (`Clients`) through the macro.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// 400, 403, 404, 409 or 422: what the caller can act on, shared by every register.
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Clients(#[from] rekisteri_clients::ClientsError),
    #[error(transparent)]
    Db(#[from] rekisteri_db::DbError),
    #[error(transparent)]
    Audit(#[from] rekisteri_audit::AuditError),
    #[error("cryptography failed: {0}")]
    Crypto(String),
}

rekisteri_db::query_error_into_db!(ConsentError);
rekisteri_db::crypto_error_into_message!(ConsentError);

impl From<rekisteri_accounts::AccountsError> for ConsentError {
    fn from(e: rekisteri_accounts::AccountsError) -> Self {
        Self::Clients(e.into())
    }
}

pub(crate) fn validation(field: impl Into<String>, message: impl Into<String>) -> ConsentError {
    Refusal::validation(field, message).into()
}

pub(crate) fn rule(field: impl Into<String>, message: impl Into<String>) -> ConsentError {
    Refusal::rule(field, message).into()
}

pub(crate) use rekisteri_audit::format_time;
pub(crate) use rekisteri_db::to_primitive as at_primitive;

/// Today in Finland, the day every date rule of the register is compared with.
pub(crate) fn helsinki_today(now: time::OffsetDateTime) -> time::Date {
    rekisteri_core::calendar::helsinki_local(at_primitive(now)).date()
}

pub(crate) use rekisteri_core::ids::new_row_id as new_id;
