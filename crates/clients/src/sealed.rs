//! Sealing and opening one row's personal fields (PL-6); a JSON-valued field is sealed as its
//! JSON text.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) use rekisteri_crypto::RowCipher;

use crate::ClientsError;

/// Sealing and opening a field that holds a JSON value.
pub(crate) trait JsonFields {
    fn seal_json<T: Serialize>(&self, column: &str, value: Option<&T>) -> Result<Option<Vec<u8>>, ClientsError>;

    fn open_json<T: DeserializeOwned>(&self, column: &str, value: Option<&[u8]>) -> Result<Option<T>, ClientsError>;
}

impl JsonFields for RowCipher<'_> {
    fn seal_json<T: Serialize>(&self, column: &str, value: Option<&T>) -> Result<Option<Vec<u8>>, ClientsError> {
        value
            .map(|v| {
                let json = serde_json::to_string(v).map_err(|e| ClientsError::Crypto(e.to_string()))?;
                Ok(self.seal(column, &json)?)
            })
            .transpose()
    }

    /// Only the `read` closures of `AuditLog::read_personal_data` call this, so that every
    /// opened value is logged (AU-1).
    fn open_json<T: DeserializeOwned>(&self, column: &str, value: Option<&[u8]>) -> Result<Option<T>, ClientsError> {
        self.open_opt(column, value)?
            .map(|json| serde_json::from_str(&json).map_err(|e| ClientsError::Crypto(e.to_string())))
            .transpose()
    }
}
