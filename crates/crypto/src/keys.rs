//! Key material: the data keys for field encryption (several, by key id, one active) and the
//! separate blind-index key.
//!
//! The key file is TOML:
//!
//! ```toml
//! active_data_key = "k2"
//! active_blind_index_key = "b2"   # optional, `b1` by default
//! [data_keys]
//! k1 = "<32 bytes, base64>"
//! k2 = "<32 bytes, base64>"
//! [blind_index_keys]
//! b1 = "<32 bytes, base64>"
//! b2 = "<32 bytes, base64>"
//! ```
//!
//! A key file from before blind-index rotation has one `blind_index_key = "…"` instead of the
//! `[blind_index_keys]` table; that key is `b1`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::RwLock;

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
    #[error("key '{0}' appears twice in the key file")]
    DuplicateKey(String),
    #[error("key '{0}' differs from the key of the same id already loaded")]
    DifferentKey(String),
    #[error("key '{0}' is active; rotate to another key before retiring it")]
    ActiveKey(String),
    #[error("there is no key '{0}' in the key file")]
    UnknownKey(String),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    active_data_key: String,
    /// The first blind-index key, `b1`; later keys live in `blind_index_keys`. Kept under this
    /// name so that key files written before blind-index rotation still load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blind_index_key: Option<String>,
    /// Defaults to `b1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    active_blind_index_key: Option<String>,
    /// Ed25519 seed for signing audit checkpoints; optional so older key files still load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audit_signing_key: Option<String>,
    data_keys: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    blind_index_keys: BTreeMap<String, String>,
}

/// The id the single blind-index key of older key files has.
pub const FIRST_BLIND_INDEX_KEY: &str = "b1";

impl KeyFile {
    fn parse(text: &str) -> Result<Self, KeyringError> {
        toml::from_str(text).map_err(|e| KeyringError::Syntax(e.message().to_owned()))
    }

    fn render(&self) -> Result<String, KeyringError> {
        let body = toml::to_string(self).map_err(|e| KeyringError::Syntax(e.to_string()))?;
        Ok(format!(
            "# Rekisteri encryption keys. Losing this file makes the encrypted data unreadable;\n\
             # anyone holding it and the database can read everything. Back it up apart from the data.\n{body}"
        ))
    }

    /// Every blind-index key by id, the legacy single key as `b1`.
    fn blind_keys(&self) -> Result<BTreeMap<String, String>, KeyringError> {
        let mut keys = self.blind_index_keys.clone();
        if let Some(first) = &self.blind_index_key
            && keys.insert(FIRST_BLIND_INDEX_KEY.to_owned(), first.clone()).is_some()
        {
            return Err(KeyringError::DuplicateKey(FIRST_BLIND_INDEX_KEY.to_owned()));
        }
        Ok(keys)
    }

    fn active_blind(&self) -> &str {
        self.active_blind_index_key.as_deref().unwrap_or(FIRST_BLIND_INDEX_KEY)
    }
}

/// One key's material and a fingerprint of it, so two key files can be compared key by key
/// without keeping the raw bytes around.
struct DataKey {
    key: LessSafeKey,
    fingerprint: [u8; 32],
}

struct BlindKey {
    key: hmac::Key,
    fingerprint: [u8; 32],
}

fn fingerprint(bytes: &[u8; 32]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The keys that can change while a process runs: a key rotation adds keys and switches the
/// active ones (PL-6).
struct KeySet {
    data: BTreeMap<KeyId, DataKey>,
    blind: BTreeMap<KeyId, BlindKey>,
    active_data: KeyId,
    active_blind: KeyId,
    /// The active blind key itself, so computing an index never has to look it up.
    active_blind_key: hmac::Key,
}

/// All keys the process holds. `Debug` shows key ids only.
///
/// The data keys and blind-index keys sit behind a lock so that a running server can take in
/// the keys of a rotation ([`Keyring::absorb`]) and switch to them ([`Keyring::set_active`])
/// without a restart; every operation takes the lock for one cipher call only.
pub struct Keyring {
    keys: RwLock<KeySet>,
    audit_signer: Option<crate::CheckpointSigner>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.read();
        f.debug_struct("Keyring")
            .field("data_keys", &keys.data.keys().collect::<Vec<_>>())
            .field("active", &keys.active_data)
            .field("blind_keys", &keys.blind.keys().collect::<Vec<_>>())
            .field("active_blind", &keys.active_blind)
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

fn random_key() -> Result<String, KeyringError> {
    Ok(STANDARD.encode(random_bytes::<32>().map_err(|_| KeyringError::Random)?))
}

/// The next free id of the form `<prefix><n>`: `k1` → `k2`, `b1` → `b2`.
fn next_id<'a>(prefix: &str, taken: impl Iterator<Item = &'a String>) -> Result<KeyId, KeyringError> {
    let highest = taken
        .filter_map(|id| id.strip_prefix(prefix).and_then(|n| n.parse::<u32>().ok()))
        .max()
        .unwrap_or(0);
    KeyId::new(&format!("{prefix}{}", highest.saturating_add(1)))
}

/// The ids a rotation switches to, as [`Keyring::add_rotation_keys`] chose them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationKeys {
    pub data: KeyId,
    pub blind_index: KeyId,
}

impl Keyring {
    /// Parses the key file format (also accepted from the environment as one string).
    pub fn from_toml(text: &str) -> Result<Self, KeyringError> {
        let file = KeyFile::parse(text)?;
        let mut data = BTreeMap::new();
        for (id, encoded) in &file.data_keys {
            let bytes = decode_key(id, encoded)?;
            data.insert(
                KeyId::new(id)?,
                DataKey {
                    key: aead_key(&bytes)?,
                    fingerprint: fingerprint(&bytes),
                },
            );
        }
        let mut blind = BTreeMap::new();
        for (id, encoded) in &file.blind_keys()? {
            let bytes = decode_key(id, encoded)?;
            blind.insert(
                KeyId::new(id)?,
                BlindKey {
                    key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
                    fingerprint: fingerprint(&bytes),
                },
            );
        }
        let active_data = KeyId::new(&file.active_data_key)?;
        if !data.contains_key(&active_data) {
            return Err(KeyringError::MissingActiveKey(file.active_data_key));
        }
        let active_blind = KeyId::new(file.active_blind())?;
        let active_blind_key = blind
            .get(&active_blind)
            .map(|k: &BlindKey| k.key.clone())
            .ok_or_else(|| KeyringError::MissingActiveKey(active_blind.to_string()))?;
        let audit_signer = match &file.audit_signing_key {
            Some(encoded) => Some(signer_from_seed(&decode_key("audit_signing_key", encoded)?)?),
            None => None,
        };
        Ok(Self {
            keys: RwLock::new(KeySet {
                data,
                blind,
                active_data,
                active_blind,
                active_blind_key,
            }),
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
        KeyFile {
            active_data_key: "k1".to_owned(),
            blind_index_key: Some(random_key()?),
            active_blind_index_key: None,
            audit_signing_key: Some(random_key()?),
            data_keys: BTreeMap::from([("k1".to_owned(), random_key()?)]),
            blind_index_keys: BTreeMap::new(),
        }
        .render()
    }

    /// A key file's text with a new data key and a new blind-index key added and made active;
    /// every old key stays, so values written under them remain readable and findable.
    pub fn add_rotation_keys(text: &str) -> Result<(String, RotationKeys), KeyringError> {
        let mut file = KeyFile::parse(text)?;
        let mut blind = file.blind_keys()?;
        let data_id = next_id("k", file.data_keys.keys())?;
        let blind_id = next_id("b", blind.keys())?;
        file.data_keys.insert(data_id.to_string(), random_key()?);
        blind.insert(blind_id.to_string(), random_key()?);
        file.blind_index_key = None;
        file.blind_index_keys = blind;
        file.active_data_key = data_id.to_string();
        file.active_blind_index_key = Some(blind_id.to_string());
        let rendered = file.render()?;
        Self::from_toml(&rendered)?;
        Ok((
            rendered,
            RotationKeys {
                data: data_id,
                blind_index: blind_id,
            },
        ))
    }

    /// A key file's text without the data key or blind-index key `id`; refuses an active key.
    pub fn remove_key(text: &str, id: &KeyId) -> Result<String, KeyringError> {
        let mut file = KeyFile::parse(text)?;
        let mut blind = file.blind_keys()?;
        if file.active_data_key == id.as_str() || file.active_blind() == id.as_str() {
            return Err(KeyringError::ActiveKey(id.to_string()));
        }
        let removed = file.data_keys.remove(id.as_str()).is_some() | blind.remove(id.as_str()).is_some();
        if !removed {
            return Err(KeyringError::UnknownKey(id.to_string()));
        }
        file.blind_index_key = None;
        file.active_blind_index_key = Some(file.active_blind().to_owned());
        file.blind_index_keys = blind;
        let rendered = file.render()?;
        Self::from_toml(&rendered)?;
        Ok(rendered)
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

    /// Replaces a key file with `text`: written beside it (owner-only), synced, renamed over it
    /// and the directory synced, so a crash leaves either the old file or the new one.
    pub fn replace_file(path: &Path, text: &str) -> Result<(), KeyringError> {
        Self::from_toml(text)?;
        let write_err = |source| KeyringError::Write {
            path: path.display().to_string(),
            source,
        };
        let temporary = path.with_extension("toml.new");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temporary).map_err(write_err)?;
        file.write_all(text.as_bytes()).map_err(write_err)?;
        file.sync_all().map_err(write_err)?;
        drop(file);
        std::fs::rename(&temporary, path).map_err(write_err)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(write_err)?;
        }
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeySet> {
        // A panic while the lock was held cannot leave a half-written key set: every write
        // below is a single assignment or insert.
        self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, KeySet> {
        self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn active_key_id(&self) -> KeyId {
        self.read().active_data.clone()
    }

    pub fn active_blind_index_key_id(&self) -> KeyId {
        self.read().active_blind.clone()
    }

    pub fn data_key_ids(&self) -> Vec<KeyId> {
        self.read().data.keys().cloned().collect()
    }

    pub fn blind_index_key_ids(&self) -> Vec<KeyId> {
        self.read().blind.keys().cloned().collect()
    }

    pub fn holds(&self, id: &KeyId) -> bool {
        let keys = self.read();
        keys.data.contains_key(id) || keys.blind.contains_key(id)
    }

    /// Takes in the keys of `other` this keyring lacks (a key file reloaded during a rotation).
    /// Refuses, changing nothing, when `other` holds a different key under a known id.
    pub fn absorb(&self, other: Keyring) -> Result<Vec<KeyId>, KeyringError> {
        let incoming = other
            .keys
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut keys = self.write();
        for (id, key) in &incoming.data {
            if keys
                .data
                .get(id)
                .is_some_and(|known| known.fingerprint != key.fingerprint)
            {
                return Err(KeyringError::DifferentKey(id.to_string()));
            }
        }
        for (id, key) in &incoming.blind {
            if keys
                .blind
                .get(id)
                .is_some_and(|known| known.fingerprint != key.fingerprint)
            {
                return Err(KeyringError::DifferentKey(id.to_string()));
            }
        }
        let mut added = Vec::new();
        for (id, key) in incoming.data {
            if let std::collections::btree_map::Entry::Vacant(slot) = keys.data.entry(id.clone()) {
                slot.insert(key);
                added.push(id);
            }
        }
        for (id, key) in incoming.blind {
            if let std::collections::btree_map::Entry::Vacant(slot) = keys.blind.entry(id.clone()) {
                slot.insert(key);
                added.push(id);
            }
        }
        Ok(added)
    }

    /// Makes `data` the key new values are encrypted with and `blind_index` the key new blind
    /// indexes are computed with; both must be held.
    pub fn set_active(&self, data: &KeyId, blind_index: &KeyId) -> Result<(), KeyringError> {
        let mut keys = self.write();
        if !keys.data.contains_key(data) {
            return Err(KeyringError::MissingActiveKey(data.to_string()));
        }
        let Some(blind_key) = keys.blind.get(blind_index).map(|k| k.key.clone()) else {
            return Err(KeyringError::MissingActiveKey(blind_index.to_string()));
        };
        keys.active_data = data.clone();
        keys.active_blind = blind_index.clone();
        keys.active_blind_key = blind_key;
        Ok(())
    }

    /// Runs `f` with the active data key.
    pub(crate) fn with_active_key<R>(&self, f: impl FnOnce(&KeyId, &LessSafeKey) -> R) -> Option<R> {
        let keys = self.read();
        let key = keys.data.get(&keys.active_data)?;
        Some(f(&keys.active_data, &key.key))
    }

    pub(crate) fn with_data_key<R>(&self, id: &str, f: impl FnOnce(&LessSafeKey) -> R) -> Option<R> {
        let keys = self.read();
        keys.data.get(&KeyId(id.to_owned())).map(|k| f(&k.key))
    }

    /// Runs `f` with the active blind-index key.
    pub(crate) fn with_blind_key<R>(&self, f: impl FnOnce(&hmac::Key) -> R) -> R {
        f(&self.read().active_blind_key)
    }

    /// Runs `f` with every blind-index key, the active one first.
    pub(crate) fn with_blind_keys<R>(&self, mut f: impl FnMut(&KeyId, &hmac::Key) -> R) -> Vec<R> {
        let keys = self.read();
        let active = keys.blind.get_key_value(&keys.active_blind);
        let others = keys.blind.iter().filter(|(id, _)| **id != keys.active_blind);
        active
            .into_iter()
            .chain(others)
            .map(|(id, key)| f(id, &key.key))
            .collect()
    }

    /// The audit checkpoint signer, when the key file has a signing key.
    pub fn audit_signer(&self) -> Option<&crate::CheckpointSigner> {
        self.audit_signer.as_ref()
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
        assert_eq!(loaded.data_key_ids().len(), 1);
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

    #[test]
    fn pl_6_rotation_keys_are_added_active_and_old_ones_kept() {
        let first = Keyring::generate_toml().unwrap();
        let old = Keyring::from_toml(&first).unwrap();
        let (text, ids) = Keyring::add_rotation_keys(&first).unwrap();
        assert_eq!((ids.data.as_str(), ids.blind_index.as_str()), ("k2", "b2"));
        let rotated = Keyring::from_toml(&text).unwrap();
        assert_eq!(rotated.active_key_id().as_str(), "k2");
        assert_eq!(rotated.active_blind_index_key_id().as_str(), "b2");
        assert_eq!(rotated.data_key_ids().len(), 2);
        // The old blind key is still b1 with the same material: its indexes still match.
        let value = b"131052-308T";
        let candidates = crate::BlindIndex::new(&rotated).candidates("data_subject", value);
        assert_eq!(candidates.len(), 2);
        assert_eq!(
            candidates[1],
            crate::BlindIndex::new(&old).compute("data_subject", value)
        );
        assert_ne!(candidates[0], candidates[1]);
        // The running keyring takes in the new keys, then switches.
        assert_eq!(old.absorb(Keyring::from_toml(&text).unwrap()).unwrap().len(), 2);
        assert_eq!(old.active_key_id().as_str(), "k1");
        old.set_active(&ids.data, &ids.blind_index).unwrap();
        assert_eq!(
            crate::BlindIndex::new(&old).compute("data_subject", value),
            candidates[0]
        );
        // A key file with another key under a known id is refused.
        let (other, _) = Keyring::add_rotation_keys(&Keyring::generate_toml().unwrap()).unwrap();
        assert!(matches!(
            old.absorb(Keyring::from_toml(&other).unwrap()),
            Err(KeyringError::DifferentKey(_))
        ));
        // Retiring: the active key is refused, an old one leaves the file.
        assert!(matches!(
            Keyring::remove_key(&text, &ids.data),
            Err(KeyringError::ActiveKey(_))
        ));
        let retired = Keyring::remove_key(&text, &KeyId::new("k1").unwrap()).unwrap();
        let retired = Keyring::remove_key(&retired, &KeyId::new("b1").unwrap()).unwrap();
        let ring = Keyring::from_toml(&retired).unwrap();
        assert_eq!(ring.data_key_ids(), vec![KeyId::new("k2").unwrap()]);
        assert_eq!(ring.blind_index_key_ids(), vec![KeyId::new("b2").unwrap()]);
    }
}
