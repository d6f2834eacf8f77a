//! The client of DVV's change interface over HTTP (VT-9). The wire details come from public
//! clients of the interface (see `docs/vtj.md`); every one of them is configuration.

use std::time::Duration;

use base64::Engine;
use serde::Serialize;
use time::Date;

use crate::VtjError;
use crate::message::{
    KirjausavainResponse, MuutoksetRequest, MuutoksetResponse, PerustiedotRequest, PerustiedotResponse,
    parse_muutokset, parse_perustiedot,
};

/// How the credentials travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CredentialScheme {
    /// `Authorization: Basic …`.
    #[default]
    Basic,
    /// `MUTP-Tunnus` and `MUTP-Salasana` headers, as some municipal clients send them.
    MutpHeaders,
}

impl CredentialScheme {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "basic" => Some(Self::Basic),
            "mutp-headers" => Some(Self::MutpHeaders),
            _ => None,
        }
    }
}

/// The interface's user name and password. `Debug` never shows the password.
#[derive(Clone, Default)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"****")
            .finish()
    }
}

/// Where and how to reach the interface.
#[derive(Debug, Clone)]
pub struct VtjConfig {
    /// Up to the service: `{security_server}/r1/FI/GOV/0245437-2/VTJmutpa/VTJmutpa`; the calls
    /// append `/api/v1/…`.
    pub base_url: String,
    pub credentials: Credentials,
    pub scheme: CredentialScheme,
    /// `X-Road-Client: FI/{class}/{member}/{subsystem}`.
    pub xroad_client: Option<String>,
    /// Codes per `perustiedot` call (VT-2: at most 1000).
    pub batch_size: usize,
    pub timeout: Duration,
    pub max_retries: u32,
    /// The first backoff; it doubles per retry, with jitter, up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// The registrar's DVV permit reference, written into every query log entry (VT-9).
    pub permit_reference: String,
    /// Staged rows applied per transaction (VT-13: bounded batches).
    pub apply_batch: usize,
}

impl Default for VtjConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8090".into(),
            credentials: Credentials::default(),
            scheme: CredentialScheme::Basic,
            xroad_client: None,
            batch_size: 1000,
            timeout: Duration::from_secs(30),
            max_retries: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            permit_reference: String::new(),
            apply_batch: 1000,
        }
    }
}

/// The HTTP client of the three calls.
pub struct VtjClient {
    config: VtjConfig,
    http: reqwest::blocking::Client,
}

impl VtjClient {
    pub fn new(config: VtjConfig) -> Result<Self, VtjError> {
        if config.batch_size == 0 || config.batch_size > 1000 {
            return Err(VtjError::Config("batch_size must be 1..=1000".into()));
        }
        let http = reqwest::blocking::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| VtjError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { config, http })
    }

    pub fn config(&self) -> &VtjConfig {
        &self.config
    }

    /// `GET /api/v1/kirjausavain/{date}`: the cursor at that date.
    pub fn kirjausavain(&self, on: Date) -> Result<i64, VtjError> {
        let path = format!(
            "/api/v1/kirjausavain/{:04}-{:02}-{:02}",
            on.year(),
            u8::from(on.month()),
            on.day()
        );
        let body = self.call::<()>(reqwest::Method::GET, &path, None)?;
        let parsed: KirjausavainResponse = serde_json::from_str(&body)
            .map_err(|e| VtjError::Malformed(format!("line {} column {}", e.line(), e.column())))?;
        Ok(parsed.viimeisin_kirjausavain)
    }

    /// `POST /api/v1/perustiedot` for at most `batch_size` codes.
    pub fn perustiedot(&self, codes: &[String]) -> Result<PerustiedotResponse, VtjError> {
        if codes.len() > self.config.batch_size {
            return Err(VtjError::Config("more codes than the batch size".into()));
        }
        let request = PerustiedotRequest {
            hetulista: codes.to_vec(),
            tietoryhmat: None,
        };
        let body = self.call(reqwest::Method::POST, "/api/v1/perustiedot", Some(&request))?;
        parse_perustiedot(&body)
    }

    /// `POST /api/v1/muutokset` from `cursor`.
    pub fn muutokset(&self, cursor: i64, codes: &[String]) -> Result<MuutoksetResponse, VtjError> {
        let request = MuutoksetRequest {
            viimeisin_kirjausavain: cursor,
            hetulista: codes.to_vec(),
        };
        let body = self.call(reqwest::Method::POST, "/api/v1/muutokset", Some(&request))?;
        parse_muutokset(&body)
    }

    /// One call with retries: 429 and 5xx (and transport errors) are retried with exponential
    /// backoff and jitter, at most `max_retries` times. Bodies and credentials are never logged.
    fn call<B: Serialize>(&self, method: reqwest::Method, path: &str, body: Option<&B>) -> Result<String, VtjError> {
        let url = format!("{}{path}", self.config.base_url.trim_end_matches('/'));
        let mut attempt = 0u32;
        loop {
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header(reqwest::header::ACCEPT, "application/json");
            request = match self.config.scheme {
                CredentialScheme::Basic => {
                    let token = base64::engine::general_purpose::STANDARD.encode(format!(
                        "{}:{}",
                        self.config.credentials.username, self.config.credentials.password
                    ));
                    request.header(reqwest::header::AUTHORIZATION, format!("Basic {token}"))
                }
                CredentialScheme::MutpHeaders => request
                    .header("MUTP-Tunnus", &self.config.credentials.username)
                    .header("MUTP-Salasana", &self.config.credentials.password),
            };
            if let Some(client) = &self.config.xroad_client {
                request = request.header("X-Road-Client", client);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let retry_after;
            match request.send() {
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        return response.text().map_err(|e| {
                            VtjError::Transport(format!("{}: reading the answer: {}", path_kind(path), e.without_url()))
                        });
                    }
                    if status.as_u16() != 429 && !status.is_server_error() {
                        return Err(VtjError::InterfaceRefused {
                            status: status.as_u16(),
                            call: path_kind(path),
                        });
                    }
                    retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    log::warn!("vtj: {} answered {status}; attempt {}", path_kind(path), attempt + 1);
                    if attempt >= self.config.max_retries {
                        return Err(VtjError::InterfaceRefused {
                            status: status.as_u16(),
                            call: path_kind(path),
                        });
                    }
                }
                Err(e) => {
                    let e = e.without_url();
                    log::warn!("vtj: {} failed: {e}; attempt {}", path_kind(path), attempt + 1);
                    if attempt >= self.config.max_retries {
                        return Err(VtjError::Transport(format!("{}: {e}", path_kind(path))));
                    }
                    retry_after = None;
                }
            }
            std::thread::sleep(self.backoff(attempt, retry_after));
            attempt += 1;
        }
    }

    /// Full jitter: a random delay up to the doubled backoff, never below a server's
    /// `Retry-After`, never above `max_backoff`.
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .config
            .initial_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.config.max_backoff);
        let mut bytes = [0u8; 4];
        let fraction = match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes) {
            Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
            Err(_) => 0.5,
        };
        let jittered = ceiling.mul_f64(0.5 + fraction / 2.0);
        retry_after.map_or(jittered, |r| jittered.max(r).min(self.config.max_backoff))
    }
}

/// The call's name for logs and errors (the path can hold nothing personal, but the name is
/// enough).
fn path_kind(path: &str) -> &'static str {
    if path.contains("kirjausavain") {
        "kirjausavain"
    } else if path.contains("perustiedot") {
        "perustiedot"
    } else {
        "muutokset"
    }
}

impl VtjConfig {
    /// The configuration from `REKISTERI_VTJ_*` variables (`env` looks them up); unset ones keep
    /// their defaults. The password is read here and never printed.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, VtjError> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let number = |name: &str, default: u64| -> Result<u64, VtjError> {
            match env(name) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| VtjError::Config(format!("{name}: not a number"))),
            }
        };
        let defaults = Self::default();
        let scheme = match env("REKISTERI_VTJ_CREDENTIALS") {
            None => CredentialScheme::Basic,
            Some(v) => CredentialScheme::parse(v.trim())
                .ok_or_else(|| VtjError::Config("REKISTERI_VTJ_CREDENTIALS: basic or mutp-headers".into()))?,
        };
        let config = Self {
            base_url: env("REKISTERI_VTJ_BASE_URL").unwrap_or(defaults.base_url),
            credentials: Credentials {
                username: env("REKISTERI_VTJ_USERNAME").unwrap_or_default(),
                password: env("REKISTERI_VTJ_PASSWORD").unwrap_or_default(),
            },
            scheme,
            xroad_client: env("REKISTERI_VTJ_XROAD_CLIENT"),
            batch_size: number("REKISTERI_VTJ_BATCH_SIZE", 1000)? as usize,
            timeout: Duration::from_secs(number("REKISTERI_VTJ_TIMEOUT_SECS", 30)?),
            max_retries: number("REKISTERI_VTJ_MAX_RETRIES", 5)? as u32,
            permit_reference: env("REKISTERI_VTJ_PERMIT").unwrap_or_default(),
            apply_batch: number("REKISTERI_VTJ_APPLY_BATCH", 1000)?.max(1) as usize,
            ..defaults
        };
        if config.batch_size == 0 || config.batch_size > 1000 {
            return Err(VtjError::Config("REKISTERI_VTJ_BATCH_SIZE: 1..=1000".into()));
        }
        Ok(config)
    }
}
