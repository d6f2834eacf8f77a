//! Delivery of the notification outbox over SMTP (AC-7): the reminder before an unused account
//! is closed goes to the account's e-mail address, through the organisation's mail relay.
//!
//! **At least once.** An item is marked sent in a write transaction after the relay accepted
//! it (250 after `DATA`). A crash, or the loss of the job's lease, between those two steps leaves
//! the item pending, and the next run sends it again: a reminder twice is a small nuisance, a
//! reminder lost means an account closed without warning. A refused or failed attempt is
//! retried with exponential backoff; what is recorded of a failure is the SMTP code or the kind
//! of failure, never the relay's text, which may quote the address.
//!
//! The message holds what the reminder must say (the closing date, what to do) and is sent to
//! the address; no name, organisation or account id.

use diesel::prelude::*;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};
use rekisteri_core::Refusal;
use rekisteri_db::schema::{accounts, notification_outbox};
use rekisteri_db::{DbConnection, write_transaction};
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::{AccountsError, Register, now_primitive};

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP: only to a relay on the same host or a trusted network.
    None,
    /// Plain connection upgraded with `STARTTLS`, which the relay must offer (port 587).
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
}

impl SmtpTls {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" => Some(Self::None),
            "starttls" => Some(Self::StartTls),
            "tls" => Some(Self::Tls),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::StartTls => "starttls",
            Self::Tls => "tls",
        }
    }

    /// The port that goes with the mode when none is given.
    pub fn default_port(self) -> u16 {
        match self {
            Self::None => 25,
            Self::StartTls => 587,
            Self::Tls => 465,
        }
    }
}

/// Where and as whom reminders are sent.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// The `From` address, e.g. `Rekisteri <rekisteri@kunta.fi>`.
    pub sender: String,
    /// User name and password for `AUTH`, when the relay asks for them.
    pub credentials: Option<(String, String)>,
    pub timeout: std::time::Duration,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("sender", &self.sender)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(user, _)| (user, "****")),
            )
            .finish()
    }
}

/// A connection recipe to the relay (each delivery run connects anew).
#[derive(Clone)]
pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
}

impl Mailer {
    pub fn new(settings: &SmtpSettings) -> Result<Self, AccountsError> {
        let invalid =
            |field: &'static str, message: String| AccountsError::Refused(Refusal::validation(field, message));
        let from: Mailbox = settings
            .sender
            .parse()
            .map_err(|_| invalid("smtp.sender", "is not an e-mail address".to_owned()))?;
        let builder = match settings.tls {
            SmtpTls::None => SmtpTransport::builder_dangerous(&settings.host),
            SmtpTls::StartTls => SmtpTransport::starttls_relay(&settings.host)
                .map_err(|e| invalid("smtp.host", format!("TLS setup failed: {e}")))?,
            SmtpTls::Tls => SmtpTransport::relay(&settings.host)
                .map_err(|e| invalid("smtp.host", format!("TLS setup failed: {e}")))?,
        };
        let mut builder = builder.port(settings.port).timeout(Some(settings.timeout));
        if let Some((user, password)) = &settings.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// Sends one message; the error is what may be recorded of the failure.
    fn send(&self, to: &str, subject: &str, body: String) -> Result<(), String> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| "the account's address is not valid".to_owned())?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|_| "the message could not be built".to_owned())?;
        self.transport.send(&message).map(drop).map_err(|e| describe(&e))
    }
}

/// The kind of a failure without the relay's text (it may quote the address).
fn describe(error: &lettre::transport::smtp::Error) -> String {
    if let Some(code) = error.status() {
        let kind = if error.is_transient() {
            "refused for now"
        } else {
            "refused"
        };
        format!("SMTP {code} ({kind})")
    } else if error.is_timeout() || timed_out(error) {
        "timeout".to_owned()
    } else if error.is_tls() {
        "TLS failed".to_owned()
    } else {
        "connection failed".to_owned()
    }
}

/// A blocking socket's read timeout surfaces as `WouldBlock` on Unix, which lettre's
/// `is_timeout` does not count.
fn timed_out(error: &lettre::transport::smtp::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut);
        }
        source = cause.source();
    }
    false
}

/// Backoff of failed attempts.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryOptions {
    /// The wait after a first failure; it doubles with every further one up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            first_backoff: Duration::minutes(1),
            max_backoff: Duration::hours(1),
        }
    }
}

impl DeliveryOptions {
    fn backoff(&self, attempts: i64) -> Duration {
        let doublings = u32::try_from(attempts.clamp(0, 16)).unwrap_or(16);
        (self.first_backoff * f64::from(2_u32.saturating_pow(doublings))).min(self.max_backoff)
    }
}

/// What one delivery run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: u64,
    pub failed: u64,
    /// Reminders that no longer applied (the account logged in or closed first).
    pub dropped: u64,
    /// Items still pending after the run (failed ones wait for their next attempt).
    pub waiting: u64,
    /// The failures of the run, as recorded (no addresses).
    pub errors: Vec<String>,
}

type Pending = (String, String, String, String, PrimitiveDateTime, i64);

/// Sends every pending notification due at `now`, one attempt each.
pub fn deliver_due(
    conn: &mut DbConnection,
    register: &Register,
    mailer: &Mailer,
    options: DeliveryOptions,
    now: OffsetDateTime,
) -> Result<DeliveryReport, AccountsError> {
    let at = now_primitive(now);
    let due: Vec<Pending> = notification_outbox::table
        .filter(notification_outbox::state.eq("pending"))
        .filter(
            notification_outbox::next_attempt_at
                .is_null()
                .or(notification_outbox::next_attempt_at.le(at)),
        )
        .order((notification_outbox::created_at, notification_outbox::id))
        .select((
            notification_outbox::id,
            notification_outbox::account_id,
            notification_outbox::kind,
            notification_outbox::details,
            notification_outbox::created_at,
            notification_outbox::attempts,
        ))
        .load(conn)?;
    let mut report = DeliveryReport::default();
    for (id, account_id, kind, details, created_at, attempts) in due {
        let target = notification_outbox::table
            .filter(notification_outbox::id.eq(&id))
            .filter(notification_outbox::state.eq("pending"));
        let account: Option<(Vec<u8>, String, Option<PrimitiveDateTime>)> = accounts::table
            .find(&account_id)
            .select((accounts::email, accounts::status, accounts::last_login_at))
            .first(conn)
            .optional()?;
        let message = match (&account, kind.as_str()) {
            (Some((email, status, last_login)), "inactivity_reminder")
                if status == "active" && last_login.is_none_or(|login| login < created_at) =>
            {
                let email = crate::accounts::decrypt(&register.keyring, &account_id, "email", email)?;
                Some((email, inactivity_reminder(&details)))
            }
            _ => None,
        };
        let Some((email, (subject, body))) = message else {
            write_transaction(conn, |conn| {
                diesel::update(target)
                    .set(notification_outbox::state.eq("dropped"))
                    .execute(conn)
            })?;
            report.dropped += 1;
            continue;
        };
        match mailer.send(&email, &subject, body) {
            Ok(()) => {
                write_transaction(conn, |conn| {
                    diesel::update(target)
                        .set((
                            notification_outbox::state.eq("sent"),
                            notification_outbox::delivered_at.eq(Some(at)),
                            notification_outbox::attempts.eq(attempts + 1),
                            notification_outbox::last_error.eq(None::<String>),
                        ))
                        .execute(conn)
                })?;
                report.sent += 1;
            }
            Err(error) => {
                log::warn!("notification {id} not sent: {error}");
                let next = at + options.backoff(attempts);
                write_transaction(conn, |conn| {
                    diesel::update(target)
                        .set((
                            notification_outbox::attempts.eq(attempts + 1),
                            notification_outbox::next_attempt_at.eq(Some(next)),
                            notification_outbox::last_error.eq(Some(&error)),
                        ))
                        .execute(conn)
                })?;
                report.failed += 1;
                report.errors.push(error);
            }
        }
    }
    let waiting: i64 = notification_outbox::table
        .filter(notification_outbox::state.eq("pending"))
        .count()
        .get_result(conn)?;
    report.waiting = u64::try_from(waiting).unwrap_or(0);
    Ok(report)
}

/// The reminder's subject and text: the closing date (Finnish time) and what to do.
fn inactivity_reminder(details: &str) -> (String, String) {
    let closes_on = serde_json::from_str::<serde_json::Value>(details)
        .ok()
        .and_then(|d| d["closes_at"].as_str().map(str::to_owned))
        .and_then(|text| OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339).ok())
        .map(|at| rekisteri_core::helsinki_local(now_primitive(at)).date());
    let when = closes_on.map_or_else(
        || "soon".to_owned(),
        |date| format!("on {}.{}.{}", date.day(), u8::from(date.month()), date.year()),
    );
    (
        "Rekisteri: log in to keep your account open".to_owned(),
        // Lines under 76 characters: the message then goes as plain 7-bit text, readable as it is.
        format!(
            "Your Rekisteri account has not been used for almost six months\n\
             and will be closed {when}.\n\
             \n\
             Log in before then to keep it open. If you no longer need\n\
             the account, you need not do anything.\n"
        ),
    )
}
