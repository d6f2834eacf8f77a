//! Sealing and opening one row's personal fields (PL-6).

use rekisteri_crypto::{FieldCipher, FieldContext, Keyring};

use crate::CallsError;

/// The cipher bound to one row of one table.
pub(crate) struct RowCipher<'a> {
    cipher: FieldCipher<'a>,
    table: &'static str,
    row_id: &'a str,
}

impl<'a> RowCipher<'a> {
    pub(crate) fn new(keyring: &'a Keyring, table: &'static str, row_id: &'a str) -> Self {
        Self {
            cipher: FieldCipher::new(keyring),
            table,
            row_id,
        }
    }

    pub(crate) fn seal(&self, column: &str, value: &str) -> Result<Vec<u8>, CallsError> {
        Ok(self
            .cipher
            .encrypt_str(&FieldContext::new(self.table, column, self.row_id), value)?)
    }

    pub(crate) fn seal_opt(&self, column: &str, value: Option<&str>) -> Result<Option<Vec<u8>>, CallsError> {
        value.map(|v| self.seal(column, v)).transpose()
    }

    /// Only the `read` closures of `AuditLog::read_personal_data` call this, so that every
    /// opened value is logged (AU-1).
    #[allow(
        clippy::disallowed_methods,
        reason = "called inside read_personal_data closures, which log the use"
    )]
    pub(crate) fn open(&self, column: &str, value: &[u8]) -> Result<String, CallsError> {
        Ok(self
            .cipher
            .decrypt_string(&FieldContext::new(self.table, column, self.row_id), value)?)
    }

    pub(crate) fn open_opt(&self, column: &str, value: Option<&[u8]>) -> Result<Option<String>, CallsError> {
        value.map(|v| self.open(column, v)).transpose()
    }
}
