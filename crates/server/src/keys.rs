//! Where the keys come from: `REKISTERI_KEYS` (the key file's text, for secret stores), a key
//! file named by `REKISTERI_KEY_FILE`, or `keys.toml` in the data directory. Only with the
//! embedded SQLite default is a missing key file created, with a warning; a production database
//! must never silently get fresh keys.

use std::path::PathBuf;

use rekisteri_crypto::{Keyring, KeyringError};

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

/// Loads the keys; `create` allows creating the embedded default's key file.
pub fn load(config: &Config, env_keys: Option<String>, create: bool) -> Result<(Keyring, KeySource), KeySourceError> {
    if let Some(text) = env_keys.filter(|t| !t.trim().is_empty()) {
        return Ok((
            Keyring::from_toml(&text).map_err(KeySourceError::Environment)?,
            KeySource::Environment,
        ));
    }
    if let Some(path) = &config.key_file {
        return Ok((Keyring::load_file(path)?, KeySource::File(path.clone())));
    }
    let path = default_path(config);
    if path.exists() {
        return Ok((Keyring::load_file(&path)?, KeySource::File(path)));
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
