//! `rekisteri backup --to DIR`: what must be restored together, taken while the server runs.
//!
//! The database first, the audio after it: a recording's row commits only after its audio is
//! durable, so every row in the copy finds its audio in the copy of the store taken later. Audio
//! uploaded in between is copied without its row: ciphertext nobody can open, harmless. The key
//! file goes along (or, with `--keys-to`, elsewhere): without it the copy is unreadable.

use std::path::{Path, PathBuf};

use rekisteri_db::Pool;

use crate::config::Config;
use crate::keys::{self, KeySource};
use crate::{Failure, create_private_dir, runtime, usage};

pub(crate) struct BackupOptions {
    pub to: PathBuf,
    pub keys_to: Option<PathBuf>,
    pub no_database: bool,
}

pub(crate) fn run(config: &Config, options: &BackupOptions) -> Result<(), Failure> {
    let target = &options.to;
    if std::fs::read_dir(target).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(usage(format!(
            "{} is not empty: give a new directory for each backup",
            target.display()
        )));
    }
    let pool = Pool::open(&config.database_url, &config.pool).map_err(runtime)?;
    let mut conn = pool.get().map_err(runtime)?;
    let backend = conn.backend();
    if backend == rekisteri_db::Backend::Postgres && !options.no_database {
        return Err(usage(
            "a PostgreSQL database is backed up with its own tools: `pg_dump -Fc` (or point-in-time \
             recovery), then `rekisteri backup --no-database --to DIR` for the key file and the audio \
             (docs/operations.md, Backup and restore)",
        ));
    }
    // The keys are checked before anything is written: a backup whose keys do not open its
    // database would be found out only at the restore.
    let (keyring, source) = keys::load(config, std::env::var("REKISTERI_KEYS").ok(), false).map_err(usage)?;
    rekisteri_db::keycheck::verify_keyring(&mut conn, &keyring, time::OffsetDateTime::now_utc()).map_err(usage)?;
    create_private_dir(target)?;
    let created_at = time::OffsetDateTime::now_utc();
    let schema_version = rekisteri_db::backup::schema_version(&mut conn)
        .map_err(runtime)?
        .unwrap_or_default();

    let mut manifest = toml::Table::new();
    let mut put = |key: &str, value: toml::Value| {
        manifest.insert(key.to_owned(), value);
    };
    put("created_at", toml::Value::String(format_time(created_at)?));
    put(
        "rekisteri_version",
        toml::Value::String(env!("CARGO_PKG_VERSION").to_owned()),
    );
    put("backend", toml::Value::String(backend.to_string()));
    put("schema_version", toml::Value::String(schema_version));

    let database = if options.no_database {
        "not included (--no-database)".to_owned()
    } else {
        let file = target.join("rekisteri.db");
        rekisteri_db::backup::copy_sqlite_into(&mut conn, &file)
            .map_err(|e| runtime(format!("copying the database into {}: {e}", file.display())))?;
        sync_file(&file)?;
        "rekisteri.db".to_owned()
    };
    drop(conn);
    put("database", toml::Value::String(database));

    let keys = match source {
        KeySource::File(path) | KeySource::Created(path) => {
            let dir = options.keys_to.as_deref().unwrap_or(target);
            create_private_dir(dir)?;
            let copy = dir.join("keys.toml");
            copy_private(&path, &copy)?;
            copy.display().to_string()
        }
        KeySource::Environment => {
            "not included: the keys come from REKISTERI_KEYS (back up the secret store)".to_owned()
        }
    };
    put("keys", toml::Value::String(keys));

    let (audio, objects) = match &config.audio {
        rekisteri_recordings::StorageConfig::Local { dir } => {
            let copy = target.join("recordings");
            create_private_dir(&copy)?;
            let objects = if dir.exists() { copy_tree(dir, &copy)? } else { 0 };
            ("recordings".to_owned(), objects)
        }
        rekisteri_recordings::StorageConfig::S3(s3) => (
            format!(
                "not included: the bucket {} (copy it with the provider's replication or a sync tool)",
                s3.bucket
            ),
            0,
        ),
    };
    put("audio", toml::Value::String(audio));
    put("audio_objects", toml::Value::Integer(objects as i64));

    let text = toml::to_string(&manifest).map_err(runtime)?;
    let manifest_path = target.join("manifest.toml");
    std::fs::write(&manifest_path, text.as_bytes())
        .map_err(|e| runtime(format!("cannot write {}: {e}", manifest_path.display())))?;
    sync_file(&manifest_path)?;
    print!("{text}");
    println!("# backup written to {}", target.display());
    Ok(())
}

fn format_time(at: time::OffsetDateTime) -> Result<String, Failure> {
    at.format(&time::format_description::well_known::Rfc3339)
        .map_err(runtime)
}

fn io_error(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Failure {
    let message = format!("{what} {}", path.display());
    move |e| runtime(format!("{message}: {e}"))
}

fn sync_file(path: &Path) -> Result<(), Failure> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_error("cannot sync", path))
}

/// Copies a file readable by the service's user only (the umask makes new files 0600, and the
/// mode is set again in case the file existed).
fn copy_private(from: &Path, to: &Path) -> Result<(), Failure> {
    std::fs::copy(from, to).map_err(io_error("cannot copy", from))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600))
            .map_err(io_error("cannot set the mode of", to))?;
    }
    sync_file(to)
}

/// Copies the audio store's objects (names not starting with a dot: those are the store's
/// temporary files of uploads in progress); returns how many.
fn copy_tree(from: &Path, to: &Path) -> Result<u64, Failure> {
    let mut copied = 0;
    for entry in std::fs::read_dir(from).map_err(io_error("cannot read", from))? {
        let entry = entry.map_err(io_error("cannot read", from))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let (source, target) = (entry.path(), to.join(&name));
        let kind = entry.file_type().map_err(io_error("cannot read", &source))?;
        if kind.is_dir() {
            create_private_dir(&target)?;
            copied += copy_tree(&source, &target)?;
        } else if kind.is_file() {
            match std::fs::copy(&source, &target) {
                Ok(_) => {}
                // Destroyed by the retention job since the directory was listed.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("cannot copy", &source)(e)),
            }
            sync_file(&target)?;
            copied += 1;
        }
    }
    Ok(copied)
}
