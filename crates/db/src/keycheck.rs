//! Guards against starting with the wrong keys. The first start records, per key, a value only
//! that key can produce; later starts refuse a key file that lacks a recorded key or holds a
//! different key under the same id, before anything is written under it.

use diesel::prelude::*;
use rekisteri_crypto::{BlindIndex, CryptoError, FieldCipher, FieldContext, KeyId, Keyring};
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::schema::key_checks;
use crate::{DbConnection, DbError, write_transaction};

const CHECK_PLAINTEXT: &[u8] = b"rekisteri key check";

#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    #[error("the database holds data encrypted with key '{0}', which the key file does not contain")]
    MissingKey(String),
    #[error("key '{0}' in the key file is not the key this database was written with")]
    WrongKey(String),
    #[error("blind-index key '{0}' in the key file is not the one this database was written with")]
    WrongBlindIndexKey(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot create a key check value: {0}")]
    Crypto(#[from] CryptoError),
}

crate::query_error_into_db!(KeyCheckError);

fn check_context(key_id: &str) -> FieldContext<'_> {
    FieldContext::new("key_checks", "check_value", key_id)
}

/// Verifies the keyring against the database and records check values for keys seen the first
/// time.
pub fn verify_keyring(conn: &mut DbConnection, keyring: &Keyring, now: OffsetDateTime) -> Result<(), KeyCheckError> {
    let now = PrimitiveDateTime::new(now.date(), now.time());
    write_transaction(conn, |conn| {
        let recorded: Vec<(String, String, Vec<u8>)> = key_checks::table
            .select((key_checks::purpose, key_checks::key_id, key_checks::check_value))
            .load(conn)?;
        let cipher = FieldCipher::new(keyring);
        let blind = BlindIndex::new(keyring);
        for (purpose, key_id, value) in &recorded {
            let held = KeyId::new(key_id).ok().filter(|id| keyring.holds(id));
            let Some(id) = held else {
                return Err(KeyCheckError::MissingKey(key_id.clone()));
            };
            if purpose == "blind_index" {
                if blind
                    .compute_with(&id, "key_check", CHECK_PLAINTEXT)
                    .as_ref()
                    .map(|v| v.as_slice())
                    != Some(value.as_slice())
                {
                    return Err(KeyCheckError::WrongBlindIndexKey(key_id.clone()));
                }
                continue;
            }
            // A known check value, not personal data.
            #[allow(clippy::disallowed_methods)]
            let opened = cipher.decrypt(&check_context(key_id), value);
            match opened {
                Ok(plain) if plain == CHECK_PLAINTEXT => {}
                _ => return Err(KeyCheckError::WrongKey(key_id.clone())),
            }
        }
        let known = |purpose: &str, id: &str| recorded.iter().any(|(p, k, _)| p == purpose && k == id);
        for key_id in keyring.data_key_ids() {
            if !known("data", key_id.as_str()) {
                let value = cipher.encrypt_with(&key_id, &check_context(key_id.as_str()), CHECK_PLAINTEXT)?;
                insert(conn, "data", key_id.as_str(), value, now)?;
            }
        }
        for key_id in keyring.blind_index_key_ids() {
            if !known("blind_index", key_id.as_str())
                && let Some(value) = blind.compute_with(&key_id, "key_check", CHECK_PLAINTEXT)
            {
                insert(conn, "blind_index", key_id.as_str(), value.to_vec(), now)?;
            }
        }
        Ok(())
    })
}

fn insert(
    conn: &mut DbConnection,
    purpose: &str,
    key_id: &str,
    value: Vec<u8>,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::insert_into(key_checks::table)
        .values((
            key_checks::purpose.eq(purpose),
            key_checks::key_id.eq(key_id),
            key_checks::check_value.eq(value),
            key_checks::created_at.eq(now),
        ))
        .execute(conn)
}
