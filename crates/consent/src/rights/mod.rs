//! Registry use rights (RU-1..RU-7), the documents stored under them (RU-8), register
//! separation (RU-3) and security incidents (RU-4).
//!
//! A right is usable on a day in Finland from its opening through `closes_after`: from 00:00
//! Europe/Helsinki of the next day it is closed (RU-5), whether or not the closing job has run
//! yet, so no access ever depends on the job's timing.

mod closing;
mod common;
mod contracts;
mod documents;
mod incidents;
mod lifecycle;
mod notifications;
mod settings;
mod voucher_choices;

pub use closing::{CloseRight, ClosingReport, ReopenRight, close_right, reopen_right, run_closing};
pub use contracts::{
    ContractBody, KantaJoiningReport, MissingKantaJoining, SupportService, kanta_joining_report, set_contract,
};
pub use documents::{CaseDocument, NewDocument, confirm_local_copy_destroyed, list_documents, store_document};
pub use incidents::{
    IncidentChanges, NewIncident, SecurityIncident, get_security_incident, list_security_incidents,
    report_security_incident, update_security_incident,
};
pub use lifecycle::{OpenRight, OpenedRight, Right, get_right, list_rights, open_right};
pub use notifications::{RegistryNotification, list_notifications};
pub use settings::{KantaSettings, set_kanta_settings};
pub use voucher_choices::{VoucherChoice, VoucherChoiceBody, record_voucher_choice};

pub(crate) use documents::case_documents_of;
pub(crate) use lifecycle::{rights_of_client, rights_of_client_read};

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// RU-5: a right closes this many working days after the service ends.
pub const CLOSING_WORKING_DAYS: u32 = 7;
