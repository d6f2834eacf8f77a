//! Configuration (PL-10): defaults, then an optional TOML file, then the environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rekisteri_db::{DatabaseUrl, PoolOptions, SqliteSynchronous};

use crate::data_location::{self, DataLocation, Placement};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the configuration file {path} is invalid: {message}")]
    File { path: String, message: String },
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
    #[error(transparent)]
    DatabaseUrl(#[from] rekisteri_db::DatabaseUrlError),
}

/// The TOML file's shape; every key is optional and named like its environment variable.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    bind: Option<String>,
    data_dir: Option<PathBuf>,
    key_file: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    workers: Option<usize>,
    shutdown_timeout_secs: Option<u64>,
    instance_lease_secs: Option<u64>,
    pool_size: Option<u32>,
    db_request_timeout_ms: Option<u64>,
    sqlite_synchronous: Option<String>,
    sqlite_group_commit: Option<bool>,
    sqlite_max_size_mb: Option<u64>,
    audit_checkpoint_interval: Option<i64>,
    audit_retention_years: Option<u16>,
    trusted_proxies: Option<Vec<String>>,
    hashing_threads: Option<usize>,
    hashing_queue: Option<usize>,
    recordings_dir: Option<PathBuf>,
    recording_max_bytes: Option<u64>,
    recordings_s3: Option<S3FileConfig>,
    #[serde(default)]
    identity_providers: Vec<IdentityProviderConfig>,
    jobs: Option<crate::jobs::JobsFileConfig>,
    data_location: Option<String>,
    database_country: Option<String>,
    metrics_token: Option<String>,
    smtp: Option<SmtpFileConfig>,
}

/// The mail relay for the notification outbox (AC-7), `[smtp]` in the file or `REKISTERI_SMTP_*`
/// in the environment. The password is best given in the environment.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmtpFileConfig {
    host: Option<String>,
    port: Option<u16>,
    /// `none`, `starttls` (the default) or `tls`.
    tls: Option<String>,
    sender: Option<String>,
    username: Option<String>,
    password: Option<String>,
    timeout_secs: Option<u64>,
}

/// S3-compatible object storage for call recordings (CA-4), `[recordings_s3]` in the file or
/// `REKISTERI_S3_*` in the environment. The secret key is best given in the environment.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct S3FileConfig {
    endpoint: Option<String>,
    bucket: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    allow_http: Option<bool>,
    prefix: Option<String>,
    /// The bucket's country when its region name does not tell (PL-10a).
    country: Option<String>,
}

/// A trusted identity provider (AX-2.3), only from the file: `[[identity_providers]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityProviderConfig {
    pub name: String,
    /// `citizen` or `staff`.
    pub kind: String,
    pub issuer: String,
    pub audience: String,
    pub identity_code_claim: Option<String>,
    pub account_claim: Option<String>,
    pub strong_methods: Option<Vec<String>>,
    /// Citizens: the longest `exp - iat` accepted, in seconds (default 3600).
    pub max_token_lifetime_secs: Option<u64>,
    pub keys: Vec<IdentityProviderKey>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityProviderKey {
    /// `EdDSA`, `ES256` or `RS256`.
    pub algorithm: String,
    pub kid: Option<String>,
    /// The public key in PEM (SPKI), inline or in a file.
    pub public_key_pem: Option<String>,
    pub public_key_file: Option<PathBuf>,
}

impl IdentityProviderConfig {
    /// The provider with its keys loaded and checked.
    pub fn load(&self) -> Result<rekisteri_accounts::idp::IdentityProvider, ConfigError> {
        use rekisteri_accounts::idp::{IdentityProvider, IdpKind, TrustedKey};
        let invalid = |message: String| ConfigError::Invalid {
            name: "identity_providers",
            message: format!("{}: {message}", self.name),
        };
        let kind = match self.kind.as_str() {
            "citizen" => IdpKind::Citizen,
            "staff" => IdpKind::Staff,
            other => return Err(invalid(format!("kind '{other}' is not citizen or staff"))),
        };
        if self.keys.is_empty() {
            return Err(invalid("no keys".to_owned()));
        }
        let mut keys = Vec::new();
        for key in &self.keys {
            let pem = match (&key.public_key_pem, &key.public_key_file) {
                (Some(pem), None) => pem.clone(),
                (None, Some(path)) => std::fs::read_to_string(path)
                    .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?,
                _ => {
                    return Err(invalid(
                        "give a key as public_key_pem or public_key_file, one of them".to_owned(),
                    ));
                }
            };
            keys.push(TrustedKey::from_pem(&key.algorithm, &pem, key.kid.clone()).map_err(invalid)?);
        }
        let mut provider = IdentityProvider::new(&self.name, kind, &self.issuer, &self.audience, keys);
        if let Some(claim) = &self.identity_code_claim {
            provider.identity_code_claim = claim.clone();
        }
        if let Some(claim) = &self.account_claim {
            provider.account_claim = claim.clone();
        }
        if let Some(methods) = &self.strong_methods {
            provider.strong_methods = methods.clone();
        }
        if let Some(seconds) = self.max_token_lifetime_secs {
            if kind != IdpKind::Citizen {
                return Err(invalid(
                    "max_token_lifetime_secs applies to citizen providers only".to_owned(),
                ));
            }
            if !(1..=86_400).contains(&seconds) {
                return Err(invalid("max_token_lifetime_secs must be 1-86400".to_owned()));
            }
            provider.max_token_lifetime = time::Duration::seconds(seconds.cast_signed());
        }
        Ok(provider)
    }
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub bind: String,
    pub data_dir: PathBuf,
    pub key_file: Option<PathBuf>,
    /// Whether the database URL was left at its default (the embedded SQLite in the data dir):
    /// only then is a missing key file created automatically.
    pub embedded_default: bool,
    pub max_body_bytes: usize,
    pub workers: usize,
    pub shutdown_timeout: Duration,
    /// How long this server's claims of `Idempotency-Key`s outlive it after a `kill -9`: its
    /// instance row is renewed every third of this (PL-17).
    pub instance_lease: Duration,
    pub pool: PoolOptions,
    /// How long a request waits for a database connection before it answers 503 (the
    /// commands wait the pool's own `connection_timeout`).
    pub request_db_timeout: Duration,
    /// Whether the pushes' write transactions are group-committed by one writer thread on
    /// SQLite (PL-13; default on, `REKISTERI_SQLITE_GROUP_COMMIT=off` for one commit each).
    pub sqlite_group_commit: bool,
    /// A signed audit checkpoint every this many entries of a chain; never change it on a
    /// running installation (verification expects checkpoints at its multiples).
    pub audit_checkpoint_interval: i64,
    /// How long audit entries are kept (AU-8).
    pub audit_retention_years: u16,
    pub identity_providers: Vec<rekisteri_accounts::idp::IdentityProvider>,
    /// The proxies whose `X-Forwarded-For` names the client address (AC-5); none by default.
    pub trusted_proxies: rekisteri_api::client_address::TrustedProxies,
    /// Threads of the password-hashing pool (default half the CPUs, at least one).
    pub hashing_threads: usize,
    /// Password checks that may wait for a hashing thread; past it, 503 with `Retry-After`.
    pub hashing_queue: usize,
    /// Where call recordings' audio is kept (CA-4): a directory (default `DATA_DIR/recordings`)
    /// or an S3-compatible bucket.
    pub audio: rekisteri_recordings::StorageConfig,
    /// The largest recording accepted (default 200 MB).
    pub recording_max_bytes: u64,
    /// The scheduler of the periodic jobs (PL-8), `[jobs]` in the file.
    pub jobs: crate::jobs::JobsConfig,
    /// Where personal data may be kept (PL-10a), and where the configured stores are.
    pub data_location: DataLocation,
    pub database_placement: Placement,
    /// `None` for audio in a local directory (the database's machine, as far as we know).
    pub audio_placement: Option<Placement>,
    /// The bearer token a Prometheus scraper sends to `/metrics` (admins need none); best given
    /// in the environment. Never printed.
    pub metrics_token: Option<String>,
    /// The mail relay the `notifications` job sends reminders through (AC-7); `None`: the
    /// notifications stay in the outbox.
    pub smtp: Option<rekisteri_accounts::notifications::SmtpSettings>,
}

/// SQLite's default page size, which the platform keeps.
const SQLITE_PAGE_BYTES: u64 = 4096;

fn parse_number<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::Invalid {
        name,
        message: format!("'{value}' is not a valid number"),
    })
}

impl Config {
    /// Loads the configuration; `env` looks up environment variables (a parameter so tests can
    /// supply their own).
    pub fn load(file: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let file_config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::File {
                    path: path.display().to_string(),
                    message: e.message().to_owned(),
                })?
            }
            None => FileConfig::default(),
        };
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());

        let data_dir = env("REKISTERI_DATA_DIR")
            .map(PathBuf::from)
            .or(file_config.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));
        let configured_url = env("DATABASE_URL").or(file_config.database_url);
        let embedded_default = configured_url.is_none();
        let url_text =
            configured_url.unwrap_or_else(|| format!("sqlite://{}", data_dir.join("rekisteri.db").display()));
        let database_url = DatabaseUrl::parse(&url_text)?;
        let bind = env("REKISTERI_BIND")
            .or(file_config.bind)
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        if bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::Invalid {
                name: "REKISTERI_BIND",
                message: format!("'{bind}' is not an address:port such as 127.0.0.1:8080"),
            });
        }
        let key_file = env("REKISTERI_KEY_FILE").map(PathBuf::from).or(file_config.key_file);
        let max_body_bytes = match env("REKISTERI_MAX_BODY_BYTES") {
            Some(v) => parse_number("REKISTERI_MAX_BODY_BYTES", &v)?,
            None => file_config.max_body_bytes.unwrap_or(rekisteri_api::DEFAULT_BODY_LIMIT),
        };
        if max_body_bytes < 1024 {
            return Err(ConfigError::Invalid {
                name: "REKISTERI_MAX_BODY_BYTES",
                message: "must be at least 1024".to_owned(),
            });
        }
        let default_workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let workers = match env("REKISTERI_WORKERS") {
            Some(v) => parse_number("REKISTERI_WORKERS", &v)?,
            None => file_config.workers.unwrap_or(default_workers),
        };
        let shutdown_secs: u64 = match env("REKISTERI_SHUTDOWN_TIMEOUT_SECS") {
            Some(v) => parse_number("REKISTERI_SHUTDOWN_TIMEOUT_SECS", &v)?,
            None => file_config.shutdown_timeout_secs.unwrap_or(30),
        };
        let lease_secs: u64 = match env("REKISTERI_INSTANCE_LEASE_SECS") {
            Some(v) => parse_number("REKISTERI_INSTANCE_LEASE_SECS", &v)?,
            None => file_config.instance_lease_secs.unwrap_or(30),
        };
        if lease_secs < 3 {
            return Err(ConfigError::Invalid {
                name: "REKISTERI_INSTANCE_LEASE_SECS",
                message: "must be at least 3 (the lease is renewed every third of it)".to_owned(),
            });
        }
        let pool_size: u32 = match env("REKISTERI_DB_POOL_SIZE") {
            Some(v) => parse_number("REKISTERI_DB_POOL_SIZE", &v)?,
            None => file_config.pool_size.unwrap_or(16),
        };
        if pool_size == 0 {
            return Err(ConfigError::Invalid {
                name: "REKISTERI_DB_POOL_SIZE",
                message: "must be at least 1".to_owned(),
            });
        }
        let request_db_timeout_ms: u64 = match env("REKISTERI_DB_REQUEST_TIMEOUT_MS") {
            Some(v) => parse_number("REKISTERI_DB_REQUEST_TIMEOUT_MS", &v)?,
            None => file_config
                .db_request_timeout_ms
                .unwrap_or(rekisteri_api::DEFAULT_REQUEST_DB_TIMEOUT.as_millis() as u64),
        };
        if !(1..=60_000).contains(&request_db_timeout_ms) {
            return Err(ConfigError::Invalid {
                name: "REKISTERI_DB_REQUEST_TIMEOUT_MS",
                message: "must be 1-60000".to_owned(),
            });
        }
        let sqlite_max_size_mb: Option<u64> = match env("REKISTERI_SQLITE_MAX_SIZE_MB") {
            Some(v) => Some(parse_number("REKISTERI_SQLITE_MAX_SIZE_MB", &v)?),
            None => file_config.sqlite_max_size_mb,
        };
        if sqlite_max_size_mb == Some(0) {
            return Err(ConfigError::Invalid {
                name: "REKISTERI_SQLITE_MAX_SIZE_MB",
                message: "must be at least 1".to_owned(),
            });
        }
        let synchronous = match env("REKISTERI_SQLITE_SYNCHRONOUS").or(file_config.sqlite_synchronous) {
            Some(v) => v.parse::<SqliteSynchronous>().map_err(|message| ConfigError::Invalid {
                name: "REKISTERI_SQLITE_SYNCHRONOUS",
                message,
            })?,
            None => SqliteSynchronous::Full,
        };
        let sqlite_group_commit = match env("REKISTERI_SQLITE_GROUP_COMMIT") {
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "on" | "true" => true,
                "off" | "false" => false,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "REKISTERI_SQLITE_GROUP_COMMIT",
                        message: format!("'{v}' is not on or off"),
                    });
                }
            },
            None => file_config.sqlite_group_commit.unwrap_or(true),
        };
        let audit_checkpoint_interval: i64 = match env("REKISTERI_AUDIT_CHECKPOINT_INTERVAL") {
            Some(v) => parse_number("REKISTERI_AUDIT_CHECKPOINT_INTERVAL", &v)?,
            None => file_config.audit_checkpoint_interval.unwrap_or(1000),
        };
        if audit_checkpoint_interval < 1 {
            return Err(ConfigError::Invalid {
                name: "REKISTERI_AUDIT_CHECKPOINT_INTERVAL",
                message: "must be at least 1".to_owned(),
            });
        }
        let audit_retention_years: u16 = match env("REKISTERI_AUDIT_RETENTION_YEARS") {
            Some(v) => parse_number("REKISTERI_AUDIT_RETENTION_YEARS", &v)?,
            None => file_config.audit_retention_years.unwrap_or(12),
        };
        if audit_retention_years < 12 {
            return Err(ConfigError::Invalid {
                name: "REKISTERI_AUDIT_RETENTION_YEARS",
                message: "the law requires at least 12 years".to_owned(),
            });
        }
        let trusted_proxies = match env("REKISTERI_TRUSTED_PROXIES") {
            Some(v) => rekisteri_api::client_address::TrustedProxies::parse_list(&v),
            None => rekisteri_api::client_address::TrustedProxies::parse_list(
                &file_config.trusted_proxies.clone().unwrap_or_default().join(","),
            ),
        }
        .map_err(|message| ConfigError::Invalid {
            name: "REKISTERI_TRUSTED_PROXIES",
            message,
        })?;
        let hashing_threads: usize = match env("REKISTERI_HASHING_THREADS") {
            Some(v) => parse_number("REKISTERI_HASHING_THREADS", &v)?,
            None => file_config
                .hashing_threads
                .unwrap_or_else(rekisteri_api::hashing::default_threads),
        };
        if hashing_threads == 0 {
            return Err(ConfigError::Invalid {
                name: "REKISTERI_HASHING_THREADS",
                message: "must be at least 1".to_owned(),
            });
        }
        let hashing_queue: usize = match env("REKISTERI_HASHING_QUEUE") {
            Some(v) => parse_number("REKISTERI_HASHING_QUEUE", &v)?,
            None => file_config
                .hashing_queue
                .unwrap_or(rekisteri_api::hashing::DEFAULT_QUEUE),
        };
        let recording_max_bytes: u64 = match env("REKISTERI_RECORDING_MAX_BYTES") {
            Some(v) => parse_number("REKISTERI_RECORDING_MAX_BYTES", &v)?,
            None => file_config
                .recording_max_bytes
                .unwrap_or(rekisteri_recordings::DEFAULT_MAX_BYTES),
        };
        if recording_max_bytes == 0 {
            return Err(ConfigError::Invalid {
                name: "REKISTERI_RECORDING_MAX_BYTES",
                message: "must be at least 1".to_owned(),
            });
        }
        let data_location = match env("REKISTERI_DATA_LOCATION").or(file_config.data_location) {
            Some(value) => DataLocation::parse(&value)?,
            None => DataLocation::default(),
        };
        let database_country = env("REKISTERI_DATABASE_COUNTRY")
            .or(file_config.database_country)
            .map(|v| data_location::parse_country("REKISTERI_DATABASE_COUNTRY", &v))
            .transpose()?;
        let database_placement = data_location::check_database(
            data_location,
            match &database_url {
                DatabaseUrl::Postgres { url } => Some(url.as_str()),
                DatabaseUrl::Sqlite { .. } => None,
            },
            database_country.as_deref(),
        )?;
        let s3 = file_config.recordings_s3.unwrap_or_default();
        let s3_country = env("REKISTERI_S3_COUNTRY")
            .or(s3.country.clone())
            .map(|v| data_location::parse_country("REKISTERI_S3_COUNTRY", &v))
            .transpose()?;
        let audio = match env("REKISTERI_S3_BUCKET").or(s3.bucket) {
            Some(bucket) => {
                let required = |name: &'static str, value: Option<String>| {
                    value.ok_or(ConfigError::Invalid {
                        name,
                        message: "is required when REKISTERI_S3_BUCKET (recordings_s3.bucket) is set".to_owned(),
                    })
                };
                rekisteri_recordings::StorageConfig::S3(rekisteri_recordings::S3Config {
                    endpoint: required("REKISTERI_S3_ENDPOINT", env("REKISTERI_S3_ENDPOINT").or(s3.endpoint))?,
                    bucket,
                    region: env("REKISTERI_S3_REGION")
                        .or(s3.region)
                        .unwrap_or_else(|| "eu-north-1".to_owned()),
                    access_key_id: required(
                        "REKISTERI_S3_ACCESS_KEY_ID",
                        env("REKISTERI_S3_ACCESS_KEY_ID").or(s3.access_key_id),
                    )?,
                    secret_access_key: required(
                        "REKISTERI_S3_SECRET_ACCESS_KEY",
                        env("REKISTERI_S3_SECRET_ACCESS_KEY").or(s3.secret_access_key),
                    )?,
                    allow_http: match env("REKISTERI_S3_ALLOW_HTTP") {
                        Some(v) => v.trim() == "true",
                        None => s3.allow_http.unwrap_or(false),
                    },
                    prefix: env("REKISTERI_S3_PREFIX").or(s3.prefix),
                })
            }
            None => rekisteri_recordings::StorageConfig::Local {
                dir: env("REKISTERI_RECORDINGS_DIR")
                    .map(PathBuf::from)
                    .or(file_config.recordings_dir)
                    .unwrap_or_else(|| data_dir.join("recordings")),
            },
        };
        let audio_placement = match &audio {
            rekisteri_recordings::StorageConfig::S3(s3) => Some(data_location::check_bucket(
                data_location,
                &s3.region,
                s3_country.as_deref(),
            )?),
            rekisteri_recordings::StorageConfig::Local { .. } => None,
        };
        let identity_providers = file_config
            .identity_providers
            .iter()
            .map(IdentityProviderConfig::load)
            .collect::<Result<Vec<_>, _>>()?;
        let jobs = crate::jobs::JobsConfig::from_file(file_config.jobs.unwrap_or_default())?;
        let metrics_token = env("REKISTERI_METRICS_TOKEN").or(file_config.metrics_token);
        if let Some(token) = &metrics_token
            && token.trim().len() < 32
        {
            return Err(ConfigError::Invalid {
                name: "REKISTERI_METRICS_TOKEN",
                message: "must be at least 32 characters (e.g. `openssl rand -hex 32`)".to_owned(),
            });
        }
        let smtp = smtp_settings(file_config.smtp.unwrap_or_default(), &env)?;
        Ok(Self {
            metrics_token: metrics_token.map(|t| t.trim().to_owned()),
            data_location,
            database_placement,
            audio_placement,
            jobs,
            smtp,
            audio,
            recording_max_bytes,
            identity_providers,
            trusted_proxies,
            hashing_threads,
            hashing_queue,
            audit_checkpoint_interval,
            audit_retention_years,
            database_url,
            bind,
            data_dir,
            key_file,
            embedded_default,
            max_body_bytes,
            workers,
            shutdown_timeout: Duration::from_secs(shutdown_secs),
            instance_lease: Duration::from_secs(lease_secs),
            pool: PoolOptions {
                max_size: pool_size,
                sqlite_synchronous: synchronous,
                sqlite_max_pages: sqlite_max_size_mb.map(|mb| mb.saturating_mul(1024 * 1024) / SQLITE_PAGE_BYTES),
                ..PoolOptions::default()
            },
            request_db_timeout: Duration::from_millis(request_db_timeout_ms),
            sqlite_group_commit,
        })
    }

    /// The effective configuration as TOML, without secrets (`config check`).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let mut line = |key: &str, value: String| out.push_str(&format!("{key} = {value}\n"));
        line("database_url", format!("{:?}", self.database_url.redacted()));
        line("bind", format!("{:?}", self.bind));
        line("data_dir", format!("{:?}", self.data_dir.display().to_string()));
        line(
            "key_file",
            format!(
                "{:?}",
                self.key_file
                    .as_ref()
                    .map_or(String::new(), |p| p.display().to_string())
            ),
        );
        line("max_body_bytes", self.max_body_bytes.to_string());
        line("workers", self.workers.to_string());
        line("shutdown_timeout_secs", self.shutdown_timeout.as_secs().to_string());
        line("instance_lease_secs", self.instance_lease.as_secs().to_string());
        line("pool_size", self.pool.max_size.to_string());
        line("db_request_timeout_ms", self.request_db_timeout.as_millis().to_string());
        if let Some(pages) = self.pool.sqlite_max_pages {
            line(
                "sqlite_max_size_mb",
                (pages * SQLITE_PAGE_BYTES / (1024 * 1024)).to_string(),
            );
        }
        line(
            "sqlite_synchronous",
            format!("{:?}", self.pool.sqlite_synchronous.as_str().to_ascii_lowercase()),
        );
        line("sqlite_group_commit", self.sqlite_group_commit.to_string());
        let providers: Vec<String> = self
            .identity_providers
            .iter()
            .map(|p| {
                format!(
                    "{:?}",
                    format!("{} ({:?}, {}, {} keys)", p.name, p.kind, p.issuer, p.keys.len())
                )
            })
            .collect();
        line("identity_providers", format!("[{}]", providers.join(", ")));
        let proxies: Vec<String> = self
            .trusted_proxies
            .blocks()
            .iter()
            .map(|block| format!("{:?}", block.to_string()))
            .collect();
        line("trusted_proxies", format!("[{}]", proxies.join(", ")));
        line("hashing_threads", self.hashing_threads.to_string());
        line("hashing_queue", self.hashing_queue.to_string());
        line(
            "metrics_token",
            format!(
                "{:?}",
                if self.metrics_token.is_some() {
                    "(set)"
                } else {
                    "(unset: admins only)"
                }
            ),
        );
        line("data_location", format!("{:?}", self.data_location.as_str()));
        line(
            "database_placement",
            format!("{:?}", self.database_placement.describe()),
        );
        line(
            "recordings_placement",
            format!(
                "{:?}",
                self.audio_placement.as_ref().map_or_else(
                    || "a local directory, beside the database".to_owned(),
                    Placement::describe
                )
            ),
        );
        out.push_str(&self.jobs.describe());
        match &self.smtp {
            Some(smtp) => {
                out.push_str(&format!(
                    "\n[smtp]\nhost = {:?}\nport = {}\ntls = {:?}\nsender = {:?}\n",
                    smtp.host,
                    smtp.port,
                    smtp.tls.as_str(),
                    smtp.sender
                ));
                if let Some((user, _)) = &smtp.credentials {
                    out.push_str(&format!("username = {user:?}\npassword = \"****\"\n"));
                }
                out.push_str(&format!("timeout_secs = {}\n", smtp.timeout.as_secs()));
            }
            None => out.push_str("\n# [smtp] not configured: notifications stay in the outbox\n"),
        }
        out
    }
}

/// `[smtp]` and `REKISTERI_SMTP_*` (the environment wins); no host: no SMTP.
fn smtp_settings(
    file: SmtpFileConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<rekisteri_accounts::notifications::SmtpSettings>, ConfigError> {
    use rekisteri_accounts::notifications::{Mailer, SmtpSettings, SmtpTls};
    let Some(host) = env("REKISTERI_SMTP_HOST").or(file.host) else {
        return Ok(None);
    };
    let invalid = |name: &'static str, message: &str| ConfigError::Invalid {
        name,
        message: message.to_owned(),
    };
    let tls = match env("REKISTERI_SMTP_TLS").or(file.tls) {
        Some(text) => {
            SmtpTls::parse(&text).ok_or_else(|| invalid("REKISTERI_SMTP_TLS", "must be none, starttls or tls"))?
        }
        None => SmtpTls::StartTls,
    };
    let port = match env("REKISTERI_SMTP_PORT") {
        Some(v) => parse_number("REKISTERI_SMTP_PORT", &v)?,
        None => file.port.unwrap_or_else(|| tls.default_port()),
    };
    let sender = env("REKISTERI_SMTP_SENDER")
        .or(file.sender)
        .ok_or_else(|| invalid("REKISTERI_SMTP_SENDER", "is required when an SMTP host is set"))?;
    let credentials = match (
        env("REKISTERI_SMTP_USERNAME").or(file.username),
        env("REKISTERI_SMTP_PASSWORD").or(file.password),
    ) {
        (Some(user), Some(password)) => Some((user, password)),
        (None, None) => None,
        _ => {
            return Err(invalid(
                "REKISTERI_SMTP_USERNAME",
                "give both the user name and the password, or neither",
            ));
        }
    };
    let timeout_secs: u64 = match env("REKISTERI_SMTP_TIMEOUT_SECS") {
        Some(v) => parse_number("REKISTERI_SMTP_TIMEOUT_SECS", &v)?,
        None => file.timeout_secs.unwrap_or(30),
    };
    if !(1..=600).contains(&timeout_secs) {
        return Err(invalid("REKISTERI_SMTP_TIMEOUT_SECS", "must be 1-600"));
    }
    let settings = SmtpSettings {
        host,
        port,
        tls,
        sender,
        credentials,
        timeout: Duration::from_secs(timeout_secs),
    };
    // The sender's form and the TLS setup are checked now, not at the first reminder.
    Mailer::new(&settings).map_err(|e| ConfigError::Invalid {
        name: "REKISTERI_SMTP_SENDER",
        message: e.to_string(),
    })?;
    Ok(Some(settings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)], file: Option<&Path>) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::load(file, &|name| vars.get(name).cloned())
    }

    #[test]
    fn pl_10_defaults_are_the_embedded_sqlite_in_the_data_dir() {
        let config = load(&[], None).unwrap();
        assert_eq!(
            config.database_url,
            DatabaseUrl::parse("sqlite://data/rekisteri.db").unwrap()
        );
        assert!(config.embedded_default);
        assert_eq!(config.bind, "127.0.0.1:8080");
        assert_eq!(config.max_body_bytes, 1024 * 1024);
        let moved = load(&[("REKISTERI_DATA_DIR", "/srv/r")], None).unwrap();
        assert_eq!(moved.database_url.redacted(), "sqlite:///srv/r/rekisteri.db");
    }

    #[test]
    fn pl_10_environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rekisteri.toml");
        std::fs::write(
            &path,
            "bind = \"0.0.0.0:9000\"\nmax_body_bytes = 4096\ndatabase_url = \"postgres://app:pw@db/reg\"\n",
        )
        .unwrap();
        let config = load(&[("REKISTERI_BIND", "127.0.0.1:9999")], Some(&path)).unwrap();
        assert_eq!(config.bind, "127.0.0.1:9999");
        assert_eq!(config.max_body_bytes, 4096);
        assert!(!config.embedded_default);
        let described = config.describe();
        assert!(
            described.contains("database_url = \"postgres://app:****@db/reg\""),
            "{described}"
        );
        assert!(!described.contains("pw"), "{described}");
    }

    #[test]
    fn pl_13_sqlite_group_commit_is_on_by_default_and_can_be_turned_off() {
        assert!(load(&[], None).unwrap().sqlite_group_commit);
        let off = load(&[("REKISTERI_SQLITE_GROUP_COMMIT", "off")], None).unwrap();
        assert!(!off.sqlite_group_commit);
        assert!(off.describe().contains("sqlite_group_commit = false"));
        let err = load(&[("REKISTERI_SQLITE_GROUP_COMMIT", "sometimes")], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("REKISTERI_SQLITE_GROUP_COMMIT"), "{err}");
    }

    #[test]
    fn pl_10_invalid_settings_are_named() {
        let err = load(&[("REKISTERI_BIND", "localhost")], None).unwrap_err().to_string();
        assert!(err.starts_with("REKISTERI_BIND:"), "{err}");
        let err = load(&[("DATABASE_URL", "mysql://x")], None).unwrap_err().to_string();
        assert!(err.contains("unsupported database URL scheme 'mysql'"), "{err}");
        let err = load(&[("REKISTERI_SQLITE_SYNCHRONOUS", "off")], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("REKISTERI_SQLITE_SYNCHRONOUS"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "bnid = \"x\"\n").unwrap();
        let err = load(&[], Some(&path)).unwrap_err().to_string();
        assert!(err.contains("unknown field `bnid`"), "{err}");
    }

    #[test]
    fn pl_10_request_connection_wait_and_sqlite_size_limit_are_configured() {
        let config = load(&[], None).unwrap();
        assert_eq!(config.request_db_timeout, Duration::from_millis(1500));
        assert_eq!(
            config.pool.connection_timeout,
            Duration::from_secs(10),
            "commands wait longer"
        );
        assert_eq!(config.pool.sqlite_max_pages, None);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rekisteri.toml");
        std::fs::write(&path, "db_request_timeout_ms = 800\nsqlite_max_size_mb = 2048\n").unwrap();
        let config = load(&[], Some(&path)).unwrap();
        assert_eq!(config.request_db_timeout, Duration::from_millis(800));
        assert_eq!(config.pool.sqlite_max_pages, Some(524_288));
        let described = config.describe();
        assert!(described.contains("db_request_timeout_ms = 800\n"), "{described}");
        assert!(described.contains("sqlite_max_size_mb = 2048\n"), "{described}");
        let config = load(&[("REKISTERI_DB_REQUEST_TIMEOUT_MS", "250")], Some(&path)).unwrap();
        assert_eq!(config.request_db_timeout, Duration::from_millis(250));
        for (name, value) in [
            ("REKISTERI_DB_REQUEST_TIMEOUT_MS", "0"),
            ("REKISTERI_DB_REQUEST_TIMEOUT_MS", "60001"),
            ("REKISTERI_SQLITE_MAX_SIZE_MB", "0"),
        ] {
            let err = load(&[(name, value)], None).unwrap_err().to_string();
            assert!(err.starts_with(name), "{err}");
        }
    }

    #[test]
    fn ac_5_trusted_proxies_and_the_hashing_pool_are_configured() {
        let config = load(&[], None).unwrap();
        assert!(config.trusted_proxies.blocks().is_empty());
        assert!(config.hashing_threads >= 1);
        assert_eq!(config.hashing_queue, rekisteri_api::hashing::DEFAULT_QUEUE);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rekisteri.toml");
        std::fs::write(
            &path,
            "trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.1\"]\nhashing_queue = 2\n",
        )
        .unwrap();
        let config = load(&[("REKISTERI_HASHING_THREADS", "3")], Some(&path)).unwrap();
        assert_eq!(config.trusted_proxies.blocks().len(), 2);
        assert_eq!((config.hashing_threads, config.hashing_queue), (3, 2));
        let described = config.describe();
        assert!(
            described.contains("trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.1/32\"]"),
            "{described}"
        );
        let config = load(&[("REKISTERI_TRUSTED_PROXIES", "172.16.0.0/12")], Some(&path)).unwrap();
        assert_eq!(config.trusted_proxies.blocks().len(), 1);
        let err = load(&[("REKISTERI_TRUSTED_PROXIES", "10.0.0.0/40")], None)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("REKISTERI_TRUSTED_PROXIES:"), "{err}");
        let err = load(&[("REKISTERI_HASHING_THREADS", "0")], None)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("REKISTERI_HASHING_THREADS:"), "{err}");
    }

    #[test]
    fn ac_7_the_mail_relay_is_configured_from_the_file_and_the_environment_without_printing_its_password() {
        let config = load(&[], None).unwrap();
        assert!(config.smtp.is_none());
        assert!(config.describe().contains("# [smtp] not configured"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rekisteri.toml");
        std::fs::write(
            &path,
            "[smtp]\nhost = \"smtp.kunta.fi\"\nsender = \"Rekisteri <rekisteri@kunta.fi>\"\nusername = \"rekisteri\"\n",
        )
        .unwrap();
        let config = load(&[("REKISTERI_SMTP_PASSWORD", "s3cret-relay-pw")], Some(&path)).unwrap();
        let smtp = config.smtp.clone().unwrap();
        assert_eq!((smtp.host.as_str(), smtp.port), ("smtp.kunta.fi", 587));
        assert_eq!(smtp.tls, rekisteri_accounts::notifications::SmtpTls::StartTls);
        assert_eq!(
            smtp.credentials,
            Some(("rekisteri".to_owned(), "s3cret-relay-pw".to_owned()))
        );
        let described = config.describe();
        assert!(
            described.contains("[smtp]\nhost = \"smtp.kunta.fi\"\nport = 587\ntls = \"starttls\""),
            "{described}"
        );
        assert!(
            described.contains("password = \"****\"") && !described.contains("s3cret"),
            "{described}"
        );
        assert!(!format!("{smtp:?}").contains("s3cret"));
        let tls = load(
            &[("REKISTERI_SMTP_TLS", "tls"), ("REKISTERI_SMTP_PASSWORD", "x")],
            Some(&path),
        )
        .unwrap();
        assert_eq!(tls.smtp.unwrap().port, 465);
        for (vars, name) in [
            (vec![("REKISTERI_SMTP_TLS", "ssl")], "REKISTERI_SMTP_TLS"),
            (vec![], "REKISTERI_SMTP_USERNAME"),
            (
                vec![
                    ("REKISTERI_SMTP_PASSWORD", "x"),
                    ("REKISTERI_SMTP_SENDER", "not an address"),
                ],
                "REKISTERI_SMTP_SENDER",
            ),
        ] {
            let error = load(&vars, Some(&path)).unwrap_err().to_string();
            assert!(error.starts_with(&format!("{name}:")), "{error}");
        }
        let error = load(&[("REKISTERI_SMTP_HOST", "smtp.kunta.fi")], None)
            .unwrap_err()
            .to_string();
        assert_eq!(error, "REKISTERI_SMTP_SENDER: is required when an SMTP host is set");
    }

    #[test]
    fn ax_2_identity_providers_come_from_the_file_with_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let key = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/idp/ed25519.pub");
        let path = dir.path().join("rekisteri.toml");
        std::fs::write(
            &path,
            format!(
                "[[identity_providers]]\nname = \"Suomi.fi\"\nkind = \"citizen\"\nissuer = \"https://tunnistus.suomi.fi\"\n\
                 audience = \"rekisteri\"\n[[identity_providers.keys]]\nalgorithm = \"EdDSA\"\npublic_key_file = {key:?}\n"
            ),
        )
        .unwrap();
        let config = load(&[], Some(&path)).unwrap();
        assert_eq!(config.identity_providers.len(), 1);
        assert_eq!(
            config.identity_providers[0].identity_code_claim,
            "national_identification_number"
        );
        assert!(
            config
                .describe()
                .contains("Suomi.fi (Citizen, https://tunnistus.suomi.fi, 1 keys)")
        );
        std::fs::write(
            &path,
            format!(
                "[[identity_providers]]\nname = \"X\"\nkind = \"staff\"\nissuer = \"i\"\naudience = \"a\"\n\
                 [[identity_providers.keys]]\nalgorithm = \"HS256\"\npublic_key_file = {key:?}\n"
            ),
        )
        .unwrap();
        let error = load(&[], Some(&path)).unwrap_err().to_string();
        assert!(error.contains("unsupported algorithm 'HS256'"), "{error}");
    }

    #[test]
    fn ax_2_a_citizen_providers_longest_token_lifetime_is_configured() {
        let dir = tempfile::tempdir().unwrap();
        let key = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/idp/ed25519.pub");
        let path = dir.path().join("rekisteri.toml");
        let provider = |kind: &str, lifetime: &str| {
            format!(
                "[[identity_providers]]\nname = \"X\"\nkind = \"{kind}\"\nissuer = \"i\"\naudience = \"a\"\n{lifetime}\
                 [[identity_providers.keys]]\nalgorithm = \"EdDSA\"\npublic_key_file = {key:?}\n"
            )
        };
        std::fs::write(&path, provider("citizen", "")).unwrap();
        let config = load(&[], Some(&path)).unwrap();
        assert_eq!(
            config.identity_providers[0].max_token_lifetime,
            time::Duration::hours(1)
        );
        std::fs::write(&path, provider("citizen", "max_token_lifetime_secs = 900\n")).unwrap();
        let config = load(&[], Some(&path)).unwrap();
        assert_eq!(
            config.identity_providers[0].max_token_lifetime,
            time::Duration::minutes(15)
        );
        for (kind, lifetime, message) in [
            (
                "citizen",
                "max_token_lifetime_secs = 0\n",
                "X: max_token_lifetime_secs must be 1-86400",
            ),
            (
                "citizen",
                "max_token_lifetime_secs = 86401\n",
                "X: max_token_lifetime_secs must be 1-86400",
            ),
            (
                "staff",
                "max_token_lifetime_secs = 900\n",
                "X: max_token_lifetime_secs applies to citizen providers only",
            ),
        ] {
            std::fs::write(&path, provider(kind, lifetime)).unwrap();
            let error = load(&[], Some(&path)).unwrap_err().to_string();
            assert_eq!(error, format!("identity_providers: {message}"));
        }
    }
}
