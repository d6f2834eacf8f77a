//! Sealing and opening one row's personal fields (PL-6).

use crate::{CryptoError, FieldCipher, FieldContext, Keyring};

/// The cipher bound to one row of one table.
pub struct RowCipher<'a> {
    cipher: FieldCipher<'a>,
    table: &'static str,
    row_id: &'a str,
}

impl<'a> RowCipher<'a> {
    pub fn new(keyring: &'a Keyring, table: &'static str, row_id: &'a str) -> Self {
        Self {
            cipher: FieldCipher::new(keyring),
            table,
            row_id,
        }
    }

    pub fn seal(&self, column: &str, value: &str) -> Result<Vec<u8>, CryptoError> {
        self.cipher
            .encrypt_str(&FieldContext::new(self.table, column, self.row_id), value)
    }

    pub fn seal_opt(&self, column: &str, value: Option<&str>) -> Result<Option<Vec<u8>>, CryptoError> {
        value.map(|v| self.seal(column, v)).transpose()
    }

    /// Only the `read` closures of `AuditLog::read_personal_data` call this, so that every
    /// opened value is logged (AU-1).
    #[allow(
        clippy::disallowed_methods,
        reason = "called inside read_personal_data closures, which log the use"
    )]
    pub fn open(&self, column: &str, value: &[u8]) -> Result<String, CryptoError> {
        self.cipher
            .decrypt_string(&FieldContext::new(self.table, column, self.row_id), value)
    }

    pub fn open_opt(&self, column: &str, value: Option<&[u8]>) -> Result<Option<String>, CryptoError> {
        value.map(|v| self.open(column, v)).transpose()
    }
}
