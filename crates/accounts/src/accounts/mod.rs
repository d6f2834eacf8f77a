//! Accounts, their rights, invitations and passwords (AC-2..AC-5, AC-8, AC-11).
//!
//! One file per subject: the stored `row`, `passwords`, `invitations`, `reads`, `changes` to an
//! account itself and its `rights`.

mod changes;
mod invitations;
mod passwords;
mod reads;
mod rights;
mod row;

pub(crate) use changes::mark_closed;
pub use changes::{AccountChanges, bootstrap_admin, close_account, restore_account, update_account};
pub use invitations::{
    PendingAcceptance, accept_invitation, begin_accept_invitation, finish_accept_invitation, invite,
};
pub use passwords::PasswordHasher;
pub(crate) use passwords::hash;
pub use reads::{get_account, is_active_member, list_accounts};
pub use rights::{
    ServiceUnitMembership, add_service_unit_membership, end_role, end_service_unit_membership, grant_role,
    service_unit_memberships,
};
pub use row::{Account, NewAccount, RoleGrant};
pub(crate) use row::{decrypt, email_index_candidates};
