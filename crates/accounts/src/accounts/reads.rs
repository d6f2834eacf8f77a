//! Reading and listing accounts within what the actor may see (AC-9), and whether an account is
//! an active member for the other registers.

use diesel::prelude::*;
use rekisteri_core::Refusal;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::accounts;

use super::row::{Account, AccountRow, account_columns, load_account};
use crate::{AccountsError, Principal, Register};

/// An account, when the actor may see it (AC-9): itself, its organisation's main users, admins.
pub fn get_account(
    conn: &mut DbConnection,
    register: &Register,
    actor: Option<&Principal>,
    id: &str,
) -> Result<Account, AccountsError> {
    let row: Option<AccountRow> = accounts::table
        .find(id)
        .select(account_columns!())
        .first(conn)
        .optional()?;
    let row = row.ok_or(AccountsError::Refused(Refusal::NotFound))?;
    if let Some(actor) = actor
        && actor.account_id != row.0
        && !actor.manages_organisation(&row.1)
    {
        return Err(AccountsError::Refused(Refusal::NotFound));
    }
    load_account(conn, &register.keyring, row)
}

/// Accounts the actor manages: all for admins, its organisation's for main users, itself
/// otherwise.
pub fn list_accounts(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
) -> Result<Vec<Account>, AccountsError> {
    let mut query = accounts::table
        .select(account_columns!())
        .order(accounts::created_at)
        .into_boxed();
    if !actor.is_admin() {
        if actor.can(crate::Permission::ManageOwnOrganisationAccounts) {
            query = query.filter(accounts::organisation_id.eq(actor.organisation_id.clone()));
        } else {
            query = query.filter(accounts::id.eq(actor.account_id.clone()));
        }
    }
    let rows: Vec<AccountRow> = query.load(conn)?;
    rows.into_iter()
        .map(|row| load_account(conn, &register.keyring, row))
        .collect()
}

/// Whether `account_id` is an active account of `organisation_id`, for other registers that
/// name a member of staff (CA-1, CA-2).
pub fn is_active_member(conn: &mut DbConnection, organisation_id: &str, account_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        accounts::table
            .filter(accounts::id.eq(account_id))
            .filter(accounts::organisation_id.eq(organisation_id))
            .filter(accounts::status.eq("active")),
    ))
    .get_result(conn)
}
