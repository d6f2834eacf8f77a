//! Where the keys come from: `REKISTERI_KEYS` (the key file's text, for secret stores), a key
//! file named by `REKISTERI_KEY_FILE`, or `keys.toml` in the data directory. Only with the
//! embedded SQLite default is a missing key file created, with a warning; a production database
//! must never silently get fresh keys.

use std::io::Read;
use std::path::{Path, PathBuf};

use rekisteri_crypto::{KeyId, Keyring, KeyringError};

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum KeySourceError {
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error("REKISTERI_KEYS is set but invalid: {0}")]
    Environment(KeyringError),
    #[error(
        "no key file at {0}: set REKISTERI_KEY_FILE or REKISTERI_KEYS (a key file is created \
         automatically only for the embedded SQLite default)"
    )]
    Missing(String),
    #[error(
        "the key file {path} is open to group or others (mode {mode:04o}); anyone who can read it \
         can read every encrypted field: run `chmod 600 {path}`"
    )]
    Exposed { path: String, mode: u32 },
}

pub enum KeySource {
    Environment,
    File(PathBuf),
    Created(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Environment => f.write_str("REKISTERI_KEYS"),
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Created(path) => write!(f, "{} (created)", path.display()),
        }
    }
}

fn default_path(config: &Config) -> PathBuf {
    config.data_dir.join("keys.toml")
}

/// The key file this configuration reads (when the keys do not come from `REKISTERI_KEYS`).
pub fn key_file_path(config: &Config) -> PathBuf {
    config.key_file.clone().unwrap_or_else(|| default_path(config))
}

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(
        "the database's key rotation {rotation} writes with key {key}, which the loaded keys lack: \
         start with the key file that rotation wrote"
    )]
    MissingKey { rotation: String, key: String },
    #[error("the key rotation state cannot be read: {0}")]
    Db(String),
    #[error("{0}")]
    Keyring(#[from] KeyringError),
}

/// Makes the keyring write with the keys the newest rotation names, not the key file's choice:
/// a server started with a rotation's new key file must not write with the new keys before
/// every other server can read them.
pub fn follow_rotation(conn: &mut rekisteri_db::DbConnection, keyring: &Keyring) -> Result<bool, FollowError> {
    let Some(rotation) = rekisteri_db::key_rotation::newest(conn).map_err(|e| FollowError::Db(e.to_string()))? else {
        return Ok(false);
    };
    let (data, blind) = rotation.active();
    let (data, blind) = (KeyId::new(data)?, KeyId::new(blind)?);
    for key in [&data, &blind] {
        if !keyring.holds(key) {
            return Err(FollowError::MissingKey {
                rotation: rotation.id.clone(),
                key: key.to_string(),
            });
        }
    }
    if keyring.active_key_id() == data && keyring.active_blind_index_key_id() == blind {
        return Ok(false);
    }
    keyring.set_active(&data, &blind)?;
    Ok(true)
}

/// A running server's part in a rotation, run with its heartbeat: takes in the keys a rotation
/// added (re-reading the key source), switches when the rotation has, and reports what it holds.
pub fn keep_up_with_rotation(
    conn: &mut rekisteri_db::DbConnection,
    keyring: &Keyring,
    config: &Config,
    instance_id: &str,
    now: time::OffsetDateTime,
) -> Result<(), String> {
    let newest = rekisteri_db::key_rotation::newest(conn).map_err(|e| e.to_string())?;
    if let Some(rotation) = &newest {
        let wanted = [&rotation.to_data_key, &rotation.to_blind_key];
        let missing = wanted
            .iter()
            .any(|id| KeyId::new(id).map(|id| !keyring.holds(&id)).unwrap_or(true));
        if missing {
            let (reloaded, source) =
                load(config, std::env::var("REKISTERI_KEYS").ok(), false).map_err(|e| e.to_string())?;
            let added = keyring.absorb(reloaded).map_err(|e| e.to_string())?;
            if !added.is_empty() {
                let added: Vec<String> = added.iter().map(|k| k.to_string()).collect();
                log::info!(
                    "took in keys {} from {source} for rotation {}",
                    added.join(", "),
                    rotation.id
                );
            }
        }
        if follow_rotation(conn, keyring).map_err(|e| e.to_string())? {
            log::info!(
                "now writing with keys {} and {} (rotation {})",
                keyring.active_key_id(),
                keyring.active_blind_index_key_id(),
                rotation.id
            );
        }
    }
    rekisteri_db::key_rotation::report_instance_keys(conn, instance_id, keyring, now).map_err(|e| e.to_string())
}

/// Loads the keys; `create` allows creating the embedded default's key file.
pub fn load(config: &Config, env_keys: Option<String>, create: bool) -> Result<(Keyring, KeySource), KeySourceError> {
    if let Some(text) = env_keys.filter(|t| !t.trim().is_empty()) {
        return Ok((
            Keyring::from_toml(&text).map_err(KeySourceError::Environment)?,
            KeySource::Environment,
        ));
    }
    if let Some(path) = &config.key_file {
        return Ok((load_private_file(path)?, KeySource::File(path.clone())));
    }
    let path = default_path(config);
    if path.exists() {
        return Ok((load_private_file(&path)?, KeySource::File(path)));
    }
    if create && config.embedded_default {
        let keyring = Keyring::create_file(&path)?;
        log::warn!(
            "created a new key file {} (mode 0600) for the embedded database; back it up apart from \
             the data: without it the encrypted fields cannot be read",
            path.display()
        );
        return Ok((keyring, KeySource::Created(path)));
    }
    Err(KeySourceError::Missing(path.display().to_string()))
}

/// Reads a key file that only its owner can read or change, as ssh does with private keys: a
/// key file open to others is a leak waiting to happen (a backup, a shared host), and one open to
/// writing could be swapped. The mode is read from the opened file, so it is the file read.
fn load_private_file(path: &Path) -> Result<Keyring, KeySourceError> {
    let read_error = |source| KeyringError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().map_err(read_error)?.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeySourceError::Exposed {
                path: path.display().to_string(),
                mode,
            });
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read_error)?;
    Ok(Keyring::from_toml(&text)?)
}
