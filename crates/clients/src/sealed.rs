//! Sealing and opening one row's personal fields (PL-6).

use rekisteri_crypto::{FieldCipher, FieldContext, Keyring};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ClientsError;

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

    pub(crate) fn seal(&self, column: &str, value: &str) -> Result<Vec<u8>, ClientsError> {
        Ok(self
            .cipher
            .encrypt_str(&FieldContext::new(self.table, column, self.row_id), value)?)
    }

    pub(crate) fn seal_opt(&self, column: &str, value: Option<&str>) -> Result<Option<Vec<u8>>, ClientsError> {
        value.map(|v| self.seal(column, v)).transpose()
    }

    pub(crate) fn seal_json<T: Serialize>(
        &self,
        column: &str,
        value: Option<&T>,
    ) -> Result<Option<Vec<u8>>, ClientsError> {
        value
            .map(|v| {
                let json = serde_json::to_string(v).map_err(|e| ClientsError::Crypto(e.to_string()))?;
                self.seal(column, &json)
            })
            .transpose()
    }

    /// Only the `read` closures of `AuditLog::read_personal_data` call this, so that every
    /// opened value is logged (AU-1).
    #[allow(
        clippy::disallowed_methods,
        reason = "called inside read_personal_data closures, which log the use"
    )]
    pub(crate) fn open(&self, column: &str, value: &[u8]) -> Result<String, ClientsError> {
        Ok(self
            .cipher
            .decrypt_string(&FieldContext::new(self.table, column, self.row_id), value)?)
    }

    pub(crate) fn open_opt(&self, column: &str, value: Option<&[u8]>) -> Result<Option<String>, ClientsError> {
        value.map(|v| self.open(column, v)).transpose()
    }

    pub(crate) fn open_json<T: DeserializeOwned>(
        &self,
        column: &str,
        value: Option<&[u8]>,
    ) -> Result<Option<T>, ClientsError> {
        self.open_opt(column, value)?
            .map(|json| serde_json::from_str(&json).map_err(|e| ClientsError::Crypto(e.to_string())))
            .transpose()
    }
}
