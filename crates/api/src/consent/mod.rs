//! Kanta informing, disclosure consent and prohibitions, the disclosure decision (CO), registry
//! use rights, case documents and security incidents (RU) over HTTP. The rules live in the
//! consent crate; every read of consent state or documents is logged there.

mod disclosure;
mod documents;
mod incidents;
mod notifications;
mod rights;

use rekisteri_consent::{ConsentError, ConsentRegister};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::AppState;
use crate::problem::ApiError;
pub use disclosure::ConsentBody;
use disclosure::{
    add_prohibition, decide, get_consent, list_informings, list_prohibitions, record_informing, revoke_prohibition,
    set_consent,
};
use documents::{confirm_local_copy, list_documents, store_document};
use incidents::{list_incidents, report_incident, show_incident, update_incident};
use notifications::list_notifications;
use rights::{
    close_right, kanta_joining_report, list_rights, open_right, record_voucher_choice, reopen_right, set_contract,
    set_kanta_settings, show_right,
};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_informings)
        .service(record_informing)
        .service(get_consent)
        .service(set_consent)
        .service(list_prohibitions)
        .service(add_prohibition)
        .service(revoke_prohibition)
        .service(decide)
        .service(set_kanta_settings)
        .service(set_contract)
        .service(kanta_joining_report)
        .service(record_voucher_choice)
        .service(list_rights)
        .service(open_right)
        .service(show_right)
        .service(close_right)
        .service(reopen_right)
        .service(list_documents)
        .service(store_document)
        .service(confirm_local_copy)
        .service(list_notifications)
        .service(list_incidents)
        .service(report_incident)
        .service(show_incident)
        .service(update_incident);
}

impl AppState {
    /// The consent register's handle (cheap: shared pointers).
    pub fn consent(&self) -> ConsentRegister {
        ConsentRegister {
            clients: self.clients(),
            outbox_wakeup: Some(self.outbox_wakeup.clone()),
        }
    }
}

impl From<ConsentError> for ApiError {
    fn from(e: ConsentError) -> Self {
        match e {
            ConsentError::Refused(refusal) => refusal.into(),
            ConsentError::Clients(e) => e.into(),
            ConsentError::Audit(e) => e.into(),
            ConsentError::Db(e) => e.into(),
            e @ ConsentError::Crypto(_) => ApiError::internal(e),
        }
    }
}
