//! The user register (AC): organisations and their service units, accounts with roles and
//! service units that each have a validity period, invitations, passwords and sessions.
//!
//! Every change is a security event written in the transaction that makes it (AC-10). Account
//! names and e-mail addresses are encrypted; an e-mail is found through its blind index.

pub mod access_cache;
mod accounts;
pub mod api_clients;
pub mod directory;
mod ending;
pub mod idp;
pub mod inactivity;
mod model;
pub mod notifications;
mod organisations;
mod permissions;
pub mod register_error;
pub mod service_areas;
mod sessions;
mod throttle;

use std::num::NonZeroU32;
use std::sync::Arc;

pub use accounts::{
    Account, AccountChanges, NewAccount, PasswordHasher, PendingAcceptance, RoleGrant, ServiceUnitMembership,
    accept_invitation, add_service_unit_membership, begin_accept_invitation, bootstrap_admin, close_account, end_role,
    end_service_unit_membership, finish_accept_invitation, get_account, grant_role, invite, is_active_member,
    list_accounts, restore_account, service_unit_memberships, update_account,
};
pub use model::{AuthMethod, Caller, Citizen, Integration, OrganisationKind, Principal, Role, UsageLogReach};
pub use organisations::{
    ContactDetails, NewOrganisation, Organisation, OrganisationChanges, RegistrarContacts, ServiceUnit,
    add_service_unit, create_organisation, find_organisation, list_organisations, list_service_units,
    update_organisation,
};
pub use permissions::{Permission, ROLE_PERMISSIONS, permissions_table_markdown};
pub use sessions::{
    LoginOutcome, PasswordCheck, PendingLogin, SessionToken, authenticate, authenticate_bearer, begin_login,
    check_strong_authentication, finish_login, login, logout, remembered_bearer, require_strong_authentication,
};

use rekisteri_audit::AuditLog;
use rekisteri_crypto::Keyring;
use time::OffsetDateTime;

/// Settings of the user register.
#[derive(Debug, Clone)]
pub struct AccountsOptions {
    pub pbkdf2_iterations: NonZeroU32,
    pub invitation_valid: time::Duration,
    pub session_idle: time::Duration,
    pub session_absolute: time::Duration,
    /// Failed logins per account within `throttle_window` before the account is held back.
    pub throttle_failures: i32,
    /// Failed logins (and invitation acceptances) per client address within `throttle_window`
    /// before the address is held back: higher than per account, so that the failures of a
    /// few people behind one address (an office's NAT) do not hold back everyone there.
    pub throttle_address_failures: i32,
    /// The first hold past a limit; every further failure doubles it, up to `throttle_window`.
    pub throttle_delay: time::Duration,
    /// How long failures are remembered: from a key's first failure, or from the end of its
    /// latest hold.
    pub throttle_window: time::Duration,
    pub minimum_password_length: usize,
    /// Trusted identity providers (AX-2.3); empty: only password sessions.
    pub identity_providers: Arc<Vec<idp::IdentityProvider>>,
}

impl Default for AccountsOptions {
    fn default() -> Self {
        Self {
            pbkdf2_iterations: NonZeroU32::new(rekisteri_crypto::DEFAULT_PBKDF2_ITERATIONS).unwrap_or(NonZeroU32::MIN),
            invitation_valid: time::Duration::days(7),
            session_idle: time::Duration::minutes(30),
            session_absolute: time::Duration::hours(12),
            throttle_failures: 5,
            throttle_address_failures: 30,
            throttle_delay: time::Duration::minutes(1),
            throttle_window: time::Duration::minutes(15),
            minimum_password_length: 12,
            identity_providers: Arc::new(Vec::new()),
        }
    }
}

/// What every operation of the register needs besides the connection.
#[derive(Clone)]
pub struct Register {
    pub keyring: Arc<Keyring>,
    pub audit: AuditLog,
    pub options: AccountsOptions,
    /// The principals of recently seen tokens (one per server process).
    pub access_cache: Arc<access_cache::AccessCache>,
}

crate::register_error! {
    /// Why an operation was refused. Messages never contain a password, token or e-mail address.
    pub enum AccountsError {
        #[error("the e-mail address or the password is wrong")]
        InvalidCredentials,
        #[error("too many failed logins; try again in {retry_after_seconds} s")]
        Throttled { retry_after_seconds: i64 },
        #[error("authentication required")]
        Unauthenticated,
        /// The registrar requires a strong identity provider login for client data (AX-2).
        #[error("this registrar's client data needs strong authentication")]
        StrongAuthenticationRequired,
    }
}

pub(crate) use rekisteri_audit::format_time;

/// Who the change history names for a change: the account, or the command line.
pub(crate) fn actor_label(actor: Option<&Principal>) -> String {
    actor.map_or_else(|| "system:cli".to_owned(), |a| a.account_id.clone())
}

pub(crate) fn now_primitive(now: OffsetDateTime) -> time::PrimitiveDateTime {
    rekisteri_db::to_primitive(now)
}
