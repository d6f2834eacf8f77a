//! Cryptography of Rekisteri, on top of `ring`: field encryption bound to its row (PL-6), blind
//! indexes for lookups, password hashes, random tokens and the audit hash chain step.
//!
//! Nothing here touches the database or logs a secret; callers pass bytes in and get bytes out.

// The cipher itself is where decryption lives; callers elsewhere are held to clippy.toml.
#![allow(clippy::disallowed_methods)]

mod blind_index;
mod chain;
mod field;
mod hex;
mod keys;
mod password;
mod row;
mod signing;
mod token;

pub use blind_index::BlindIndex;
pub use chain::{CHAIN_GENESIS, ChainHash, ChainHasher, chain_step};
pub use field::{FieldCipher, FieldContext, Resealed};
pub use hex::to_hex;
pub use keys::{FIRST_BLIND_INDEX_KEY, KeyId, Keyring, KeyringError, RotationKeys};
pub use password::{DEFAULT_PBKDF2_ITERATIONS, PasswordHashError, hash_password, verify_password};
pub use row::RowCipher;
pub use signing::{CheckpointSigner, verify_signature};
pub use token::{equal_constant_time, random_bytes, random_token, token_hash};

/// Why a cryptographic operation failed. Deliberately vague about decryption failures: the
/// caller learns that the value is unusable, not why.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the ciphertext is malformed")]
    MalformedCiphertext,
    #[error("the ciphertext was encrypted with key '{0}', which is not loaded")]
    UnknownKey(String),
    #[error("decryption failed: wrong key, or the value was moved or altered")]
    DecryptionFailed,
    #[error("the system random number generator failed")]
    Random,
}
