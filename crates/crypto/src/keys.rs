//! Key material: the data keys for field encryption (several, by key id, one active) and the
//! separate blind-index key.
//!
//! The key file is TOML:
//!
//! ```toml
//! active_data_key = "k1"
//! blind_index_key = "<32 bytes, base64>"
//! [data_keys]
//! k1 = "<32 bytes, base64>"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use ring::hmac;
use serde::{Deserialize, Serialize};

use crate::token::random_bytes;

/// Identifies a data key inside every ciphertext: 1–32 characters of `A-Z a-z 0-9 _ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    pub fn new(id: &str) -> Result<Self, KeyringError> {
        let valid =
            !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(id.to_owned()))
        } else {
            Err(KeyringError::InvalidKeyId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("cannot read the key file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write the key file {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("the key file is not valid TOML of the expected shape: {0}")]
    Syntax(String),
    #[error("a key id is 1-32 characters of A-Z, a-z, 0-9, '_' and '-'")]
    InvalidKeyId,
    #[error("key '{0}' is not 32 bytes of base64")]
    InvalidKey(String),
    #[error("the active data key '{0}' is not among the data keys")]
    MissingActiveKey(String),
    #[error("the random number generator failed")]
    Random,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    active_data_key: String,
    blind_index_key: String,
    /// Ed25519 seed for signing audit checkpoints; optional so older key files still load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audit_signing_key: Option<String>,
    data_keys: BTreeMap<String, String>,
}

/// All keys the process holds. `Debug` shows key ids only.
pub struct Keyring {
    data_keys: BTreeMap<KeyId, LessSafeKey>,
    active: KeyId,
    blind_index_key: hmac::Key,
    audit_signer: Option<crate::CheckpointSigner>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("data_keys", &self.data_keys.keys().collect::<Vec<_>>())
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

fn decode_key(name: &str, encoded: &str) -> Result<[u8; 32], KeyringError> {
    STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        .ok_or_else(|| KeyringError::InvalidKey(name.to_owned()))
}

fn aead_key(bytes: &[u8; 32]) -> Result<LessSafeKey, KeyringError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| KeyringError::InvalidKey("aes".to_owned()))
}

/// The signer's key id is derived from its public key, so a checkpoint names the key that
/// signed it without revealing anything.
fn signer_from_seed(seed: &[u8; 32]) -> Result<crate::CheckpointSigner, KeyringError> {
    let invalid = || KeyringError::InvalidKey("audit_signing_key".to_owned());
    let probe = crate::CheckpointSigner::from_seed("", seed).ok_or_else(invalid)?;
    let fingerprint = ring::digest::digest(&ring::digest::SHA256, &probe.public_key());
    let id = crate::to_hex(fingerprint.as_ref().get(..8).unwrap_or_default());
    crate::CheckpointSigner::from_seed(&id, seed).ok_or_else(invalid)
}

impl Keyring {
    /// Parses the key file format (also accepted from the environment as one string).
    pub fn from_toml(text: &str) -> Result<Self, KeyringError> {
        let file: KeyFile = toml::from_str(text).map_err(|e| KeyringError::Syntax(e.message().to_owned()))?;
        let mut data_keys = BTreeMap::new();
        for (id, encoded) in &file.data_keys {
            let key_id = KeyId::new(id)?;
            data_keys.insert(key_id, aead_key(&decode_key(id, encoded)?)?);
        }
        let active = KeyId::new(&file.active_data_key)?;
        if !data_keys.contains_key(&active) {
            return Err(KeyringError::MissingActiveKey(file.active_data_key));
        }
        let blind = decode_key("blind_index_key", &file.blind_index_key)?;
        let audit_signer = match &file.audit_signing_key {
            Some(encoded) => Some(signer_from_seed(&decode_key("audit_signing_key", encoded)?)?),
            None => None,
        };
        Ok(Self {
            data_keys,
            active,
            blind_index_key: hmac::Key::new(hmac::HMAC_SHA256, &blind),
            audit_signer,
        })
    }

    pub fn load_file(path: &Path) -> Result<Self, KeyringError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyringError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// A fresh key file's text: one data key `k1` and a blind-index key, from the system RNG.
    pub fn generate_toml() -> Result<String, KeyringError> {
        let data = random_bytes::<32>().map_err(|_| KeyringError::Random)?;
        let blind = random_bytes::<32>().map_err(|_| KeyringError::Random)?;
        let signing = random_bytes::<32>().map_err(|_| KeyringError::Random)?;
        let file = KeyFile {
            active_data_key: "k1".to_owned(),
            blind_index_key: STANDARD.encode(blind),
            audit_signing_key: Some(STANDARD.encode(signing)),
            data_keys: BTreeMap::from([("k1".to_owned(), STANDARD.encode(data))]),
        };
        let body = toml::to_string(&file).map_err(|e| KeyringError::Syntax(e.to_string()))?;
        Ok(format!(
            "# Rekisteri encryption keys. Losing this file makes the encrypted data unreadable;\n\
             # anyone holding it and the database can read everything. Back it up apart from the data.\n{body}"
        ))
    }

    /// Writes a newly generated key file readable by its owner only. Never overwrites: if the
    /// file appeared meanwhile, that file wins and is loaded instead.
    pub fn create_file(path: &Path) -> Result<Self, KeyringError> {
        let text = Self::generate_toml()?;
        let write_err = |source| KeyringError::Write {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(write_err)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(mut file) => {
                file.write_all(text.as_bytes()).map_err(write_err)?;
                file.sync_all().map_err(write_err)?;
                Self::from_toml(&text)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load_file(path),
            Err(e) => Err(write_err(e)),
        }
    }

    pub fn active_key_id(&self) -> &KeyId {
        &self.active
    }

    pub fn data_key_ids(&self) -> impl Iterator<Item = &KeyId> {
        self.data_keys.keys()
    }

    pub(crate) fn active_key(&self) -> (&KeyId, Option<&LessSafeKey>) {
        (&self.active, self.data_keys.get(&self.active))
    }

    pub(crate) fn data_key(&self, id: &str) -> Option<&LessSafeKey> {
        self.data_keys.get(&KeyId(id.to_owned()))
    }

    /// The audit checkpoint signer, when the key file has a signing key.
    pub fn audit_signer(&self) -> Option<&crate::CheckpointSigner> {
        self.audit_signer.as_ref()
    }

    pub(crate) fn blind_index_key(&self) -> &hmac::Key {
        &self.blind_index_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pl_6_generated_key_file_is_owner_only_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("keys.toml");
        let created = Keyring::create_file(&path).unwrap();
        assert_eq!(created.active_key_id().as_str(), "k1");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = Keyring::load_file(&path).unwrap();
        assert_eq!(loaded.data_key_ids().count(), 1);
        // A second create keeps the first file.
        let before = std::fs::read_to_string(&path).unwrap();
        Keyring::create_file(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    }

    #[test]
    fn key_file_errors_name_the_problem_not_the_key() {
        let secret = STANDARD.encode([7u8; 31]);
        let text =
            format!("active_data_key = \"k1\"\nblind_index_key = \"{secret}\"\n[data_keys]\nk1 = \"{secret}\"\n");
        let err = Keyring::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("'k1' is not 32 bytes"), "{err}");
        assert!(!err.contains(&secret));
        let good = STANDARD.encode([7u8; 32]);
        let text = format!("active_data_key = \"k2\"\nblind_index_key = \"{good}\"\n[data_keys]\nk1 = \"{good}\"\n");
        assert!(matches!(
            Keyring::from_toml(&text),
            Err(KeyringError::MissingActiveKey(_))
        ));
        assert!(matches!(Keyring::from_toml("nonsense"), Err(KeyringError::Syntax(_))));
    }

    #[test]
    fn keyring_debug_shows_no_key_material() {
        let ring = Keyring::from_toml(&Keyring::generate_toml().unwrap()).unwrap();
        let text = format!("{ring:?}");
        assert!(text.contains("k1"));
        assert!(!text.contains("blind_index_key:"));
    }
}
