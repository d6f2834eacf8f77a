//! The password rules (length only, no composition rules) and hashing, shared by invitations,
//! logins and the first admin.

use rekisteri_crypto::hash_password;

use crate::{AccountsError, rule, validation};

pub(crate) fn check_password(options: &crate::AccountsOptions, password: &str) -> Result<(), AccountsError> {
    if password.chars().count() < options.minimum_password_length {
        return Err(validation(
            "password",
            format!("must be at least {} characters", options.minimum_password_length),
        ));
    }
    if password.chars().count() > 1024 {
        return Err(validation("password", "must be at most 1024 characters"));
    }
    if crate::sessions::is_common_password(password) {
        return Err(rule("password", "is one of the most common passwords"));
    }
    Ok(())
}

pub(crate) fn hash(options: &crate::AccountsOptions, password: &str) -> Result<String, AccountsError> {
    hash_password(password, options.pbkdf2_iterations).map_err(|e| AccountsError::Crypto(e.to_string()))
}

/// Hashing a new password: PBKDF2, CPU work for whichever thread the caller chooses (the API
/// runs it on its own small pool).
#[derive(Debug, Clone, Copy)]
pub struct PasswordHasher {
    pub(super) iterations: std::num::NonZeroU32,
}

impl PasswordHasher {
    pub fn hash(&self, password: &str) -> Result<String, AccountsError> {
        hash_password(password, self.iterations).map_err(|e| AccountsError::Crypto(e.to_string()))
    }
}
