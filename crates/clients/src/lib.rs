//! The client register of service vouchers and purchased services (PSOP, CL): clients with
//! their granted services, the service events providers record, and settlement.
//!
//! Every read of client data goes through [`rekisteri_audit::AuditLog::read_personal_data`]
//! with the basis the access decision ([`access`]) gave, so the usage entry is durable before
//! the data leaves (AU-1, AU-4); a denial is logged the same way and answers 404 (AX-4, AX-7).
//! Personal fields are sealed to their table, column and row (PL-6) and a client is found by
//! the blind index of the identity code, the same index the usage log names the person by.

pub mod access;
mod access_report;
mod care_team;
mod clients;
pub mod lifecycle;
mod model;
pub mod moves;
mod own_records;
pub mod population;
mod provider_users;
mod proxies;
mod reach;
mod requests;
mod sealed;
mod services;
mod settlement;
pub mod special_reasons;
pub mod statistics;
mod subjects;

use std::sync::Arc;

pub use access_report::{AccessReport, ReportedDisclosure, ReportedUse, access_report, access_report_with};
pub use care_team::{add_care_team_member, list_care_team, remove_care_team_member, update_care_team_member};
pub use clients::{ClientPage, create_client, get_client, list_clients, search_by_identity_code, update_client};
pub use model::{
    Address, CareTeamMember, CareTeamMemberChanges, Client, ClientChanges, ContactChanges, DatePrecision, Gender,
    Guardianship, GuardianshipPeriod, NewCareTeamMember, NewClient, NewProxy, NewService, NewServiceEvent, NextOfKin,
    OwnRecord, Proxy, Quantity, RecordRelation, Service, ServiceChanges, ServiceEvent, ServiceKind, ServiceStatus,
    Unit, VtjDate,
};
pub use own_records::{CitizenRequest, change_own_contact, own_records};
pub use provider_users::{ProviderUser, provider_users};
pub use proxies::{add_proxy, list_proxies, revoke_proxy};
pub use reach::{CLIENT_REGISTER_KINDS, ReachedClient, identity_code_of, reach_client, reach_subject};
pub use requests::{
    DEFAULT_COMPLAINT_ROUTE, DataSubjectRequest, DataSubjectRequestChanges, IdentityVerification,
    NewDataSubjectRequest, RequestCursor, RequestFilter, RequestKind, RequestPage, RequestStatus, Requester,
    add_months, create_request, get_request, list_requests, update_request,
};
pub use services::{
    ServiceTerm, add_service, get_service, list_events, list_services, record_event, service_ends_on, service_term,
    update_service,
};
pub use settlement::{Settlement, SettlementLine, settlement, to_csv as settlement_csv};
pub use subjects::{Created, CreatedRecord, IntoCreated, subject_of, written};

use rekisteri_audit::{AuditContext, AuditLog};
use rekisteri_crypto::Keyring;

/// What every operation of the register needs besides the connection.
#[derive(Clone)]
pub struct ClientRegister {
    pub keyring: Arc<Keyring>,
    pub audit: AuditLog,
}

/// One request's caller and log context: the access decision fills in the basis.
pub struct Request<'a> {
    pub principal: &'a rekisteri_accounts::Principal,
    /// A special reason the caller stated for reaching clients without a care relationship
    /// (AX-5); only roles with `special_reason_access` can rely on it.
    pub special_reason: Option<special_reasons::SpecialReason>,
    /// The usage entries' context; its basis and actor kind are replaced by the decision's.
    pub audit: AuditContext,
    pub now: time::OffsetDateTime,
    /// The process's access cache: access decisions read organisations and service-area rights
    /// through it, under the access version the request's authentication read.
    pub access_cache: std::sync::Arc<rekisteri_accounts::access_cache::AccessCache>,
}

rekisteri_accounts::register_error! {
    /// Why an operation was refused. Messages never contain an identity code, name or other
    /// personal data.
    pub enum ClientsError {
        /// 409 to a create: the register already has a client with the identity code; its id only
        /// for a caller who reaches that client (AX-4).
        #[error("the register already has a client with this identity code")]
        ClientExists {
            registrar_id: String,
            client_id: Option<String>,
        },
        /// The record changed since the version the caller sent in `If-Match` (412).
        #[error("the record has changed; read it again")]
        VersionMismatch,
        /// Processing of the client is restricted (CL-12): only storage until the flag is lifted.
        #[error("processing of this client's data is restricted")]
        Restricted,
        #[error("this registrar's client data needs strong authentication")]
        StrongAuthenticationRequired,
    }
}

rekisteri_accounts::from_accounts_error!(ClientsError);

pub(crate) use rekisteri_audit::format_time;
pub(crate) use rekisteri_db::to_primitive as at_primitive;
