//! An account as stored: its types, the sealing of its personal fields and the e-mail's blind
//! index, and loading a row; staff data (AC-9), not client data.

use diesel::prelude::*;
use rekisteri_crypto::{BlindIndex, FieldCipher, FieldContext, Keyring};
use rekisteri_db::DbConnection;
use rekisteri_db::schema::{account_roles, account_service_units};
use time::PrimitiveDateTime;

use crate::{AccountsError, Role, validation};

/// A role held for a period (AC-11). `valid_until` is when it stopped or will stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    pub id: String,
    pub role: Role,
    pub valid_from: PrimitiveDateTime,
    pub valid_until: Option<PrimitiveDateTime>,
}

impl RoleGrant {
    pub fn active_at(&self, at: PrimitiveDateTime) -> bool {
        self.valid_from <= at && self.valid_until.is_none_or(|until| at < until)
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub organisation_id: String,
    pub email: String,
    pub first_name: String,
    pub surname: String,
    /// `invited`, `active` or `closed`.
    pub status: String,
    pub roles: Vec<RoleGrant>,
    pub service_unit_ids: Vec<String>,
    pub closed_at: Option<PrimitiveDateTime>,
    pub last_login_at: Option<PrimitiveDateTime>,
    pub created_at: PrimitiveDateTime,
}

rekisteri_core::redacted_debug!(Account { id, status });

#[derive(Clone)]
pub struct NewAccount {
    pub email: String,
    pub first_name: String,
    pub surname: String,
    pub organisation_id: String,
    pub role: Role,
    pub service_unit_ids: Vec<String>,
}

rekisteri_core::redacted_debug!(NewAccount {});

const EMAIL_DOMAIN: &str = "account_email";

/// The normalised form the blind index is computed over: e-mail is case-insensitive (AC-2).
fn normalised_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The blind index an account's e-mail address is stored with, under the active blind-index key.
pub(crate) fn email_index(keyring: &Keyring, email: &str) -> [u8; 32] {
    BlindIndex::new(keyring).compute(EMAIL_DOMAIN, normalised_email(email).as_bytes())
}

/// Every index an account with this address may hold: under each blind-index key held, since
/// accounts created before a key rotation's switch keep the previous key's index until
/// re-indexed. The active key's first; one element when one key is held.
pub(crate) fn email_index_candidates(keyring: &Keyring, email: &str) -> Vec<Vec<u8>> {
    BlindIndex::new(keyring)
        .candidates(EMAIL_DOMAIN, normalised_email(email).as_bytes())
        .into_iter()
        .map(|index| index.to_vec())
        .collect()
}

pub(super) fn valid_name(field: &'static str, value: &str) -> Result<String, AccountsError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 100 {
        return Err(validation(field, "must be 1-100 characters"));
    }
    Ok(value.to_owned())
}

pub(super) fn encrypt(keyring: &Keyring, id: &str, column: &str, value: &str) -> Result<Vec<u8>, AccountsError> {
    Ok(FieldCipher::new(keyring).encrypt_str(&FieldContext::new("accounts", column, id), value)?)
}

// Staff account data (AC-9), not client data: shown only to the account, its main users and
// admins, and not part of the usage log.
#[allow(clippy::disallowed_methods)]
pub(crate) fn decrypt(keyring: &Keyring, id: &str, column: &str, value: &[u8]) -> Result<String, AccountsError> {
    Ok(FieldCipher::new(keyring).decrypt_string(&FieldContext::new("accounts", column, id), value)?)
}

pub(super) type AccountRow = (
    String,
    String,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    String,
    Option<PrimitiveDateTime>,
    Option<PrimitiveDateTime>,
    PrimitiveDateTime,
);

macro_rules! account_columns {
    () => {
        (
            accounts::id,
            accounts::organisation_id,
            accounts::email,
            accounts::first_name,
            accounts::surname,
            accounts::status,
            accounts::closed_at,
            accounts::last_login_at,
            accounts::created_at,
        )
    };
}
pub(super) use account_columns;

pub(super) fn load_account(
    conn: &mut DbConnection,
    keyring: &Keyring,
    row: AccountRow,
) -> Result<Account, AccountsError> {
    let (id, organisation_id, email, first_name, surname, status, closed_at, last_login_at, created_at) = row;
    let roles: Vec<(String, String, PrimitiveDateTime, Option<PrimitiveDateTime>)> = account_roles::table
        .filter(account_roles::account_id.eq(&id))
        .order(account_roles::valid_from)
        .select((
            account_roles::id,
            account_roles::role,
            account_roles::valid_from,
            account_roles::valid_until,
        ))
        .load(conn)?;
    let units: Vec<String> = account_service_units::table
        .filter(
            account_service_units::account_id
                .eq(&id)
                .and(account_service_units::valid_until.is_null()),
        )
        .select(account_service_units::service_unit_id)
        .load(conn)?;
    Ok(Account {
        email: decrypt(keyring, &id, "email", &email)?,
        first_name: decrypt(keyring, &id, "first_name", &first_name)?,
        surname: decrypt(keyring, &id, "surname", &surname)?,
        roles: roles
            .into_iter()
            .filter_map(|(rid, role, valid_from, valid_until)| {
                Some(RoleGrant {
                    id: rid,
                    role: role.parse().ok()?,
                    valid_from,
                    valid_until,
                })
            })
            .collect(),
        service_unit_ids: units,
        id,
        organisation_id,
        status,
        closed_at,
        last_login_at,
        created_at,
    })
}
