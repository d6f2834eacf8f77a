//! The will-service outbox (CO-6): informing records, consents and prohibitions recorded at a
//! provider are queued in the same transaction as the record, and a forwarder delivers them to
//! the national will service (Tahdonilmaisupalvelu) with retries and exponential backoff. Each
//! item carries its id as `Idempotency-Key`, and is marked delivered only on a 2xx, so nothing
//! is lost while the endpoint is down and a recovered endpoint receives every item once.

use diesel::prelude::*;
use rekisteri_audit::{ActorKind, DisclosureEntry, NewEntry};
use rekisteri_clients::ReachedClient;
use rekisteri_crypto::{FieldCipher, FieldContext};
use rekisteri_db::schema::will_service_outbox;
use rekisteri_db::{DbConnection, write_transaction};
use time::{Duration, PrimitiveDateTime};

use crate::{ConsentError, ConsentRegister, at_primitive, new_id};

/// Queues one record when it was recorded at a provider (the caller reaches the client as a
/// provider); called inside the record's transaction and the logged use's closure. `true` when
/// it queued: the caller wakes the forwarder once that transaction has committed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn enqueue_if_provider(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    reached: &ReachedClient,
    registrar_id: &str,
    kind: &str,
    record_id: &str,
    mut payload: serde_json::Value,
    at: PrimitiveDateTime,
) -> Result<bool, ConsentError> {
    if !reached.decision.is_provider() {
        return Ok(false);
    }
    let identity_code = reached.reveal_identity_code(&register.clients)?;
    if let Some(object) = payload.as_object_mut() {
        object.insert("kind".into(), kind.into());
        object.insert("client_id".into(), reached.client_id.clone().into());
        object.insert("identity_code".into(), identity_code.into());
        object.insert("registrar_id".into(), registrar_id.into());
    }
    let id = new_id();
    let sealed = FieldCipher::new(&register.clients.keyring).encrypt_str(
        &FieldContext::new("will_service_outbox", "payload", &id),
        &payload.to_string(),
    )?;
    diesel::insert_into(will_service_outbox::table)
        .values((
            will_service_outbox::registrar_id.eq(registrar_id),
            will_service_outbox::id.eq(&id),
            will_service_outbox::kind.eq(kind),
            will_service_outbox::record_id.eq(record_id),
            will_service_outbox::payload.eq(sealed),
            will_service_outbox::state.eq("pending"),
            will_service_outbox::attempts.eq(0i64),
            will_service_outbox::next_attempt_at.eq(at),
            will_service_outbox::created_at.eq(at),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Where and how the forwarder delivers.
#[derive(Debug, Clone)]
pub struct WillService {
    pub url: String,
    pub client: reqwest::blocking::Client,
    /// The first retry waits this long; each further one doubles it, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl WillService {
    pub fn new(url: impl Into<String>) -> Result<Self, ConsentError> {
        let client = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| ConsentError::Crypto(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            url: url.into(),
            client,
            first_backoff: Duration::seconds(30),
            max_backoff: Duration::hours(1),
        })
    }

    fn backoff(&self, attempts: i64) -> Duration {
        let factor = 1i32 << attempts.clamp(0, 16) as u32;
        let wait = self.first_backoff * factor;
        if wait > self.max_backoff {
            self.max_backoff
        } else {
            wait
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ForwardReport {
    pub delivered: usize,
    pub failed: usize,
    /// Items still waiting (their next attempt later than now).
    pub waiting: usize,
}

type OutboxRow = (String, String, String, String, Vec<u8>, i64);

/// Delivers every pending item due at `now`; one attempt each. A failure schedules the next
/// attempt with exponential backoff.
pub fn forward_due(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    will: &WillService,
    now: time::OffsetDateTime,
) -> Result<ForwardReport, ConsentError> {
    let at = at_primitive(now);
    let due: Vec<OutboxRow> = will_service_outbox::table
        .filter(will_service_outbox::state.eq("pending"))
        .filter(will_service_outbox::next_attempt_at.le(at))
        .order((will_service_outbox::created_at, will_service_outbox::id))
        .select((
            will_service_outbox::registrar_id,
            will_service_outbox::id,
            will_service_outbox::kind,
            will_service_outbox::record_id,
            will_service_outbox::payload,
            will_service_outbox::attempts,
        ))
        .load(conn)?;
    let mut report = ForwardReport::default();
    for (registrar_id, id, kind, record_id, sealed, attempts) in due {
        #[allow(
            clippy::disallowed_methods,
            reason = "the will-service payload, opened only to deliver it; the delivery is a disclosure-log entry"
        )]
        let payload = FieldCipher::new(&register.clients.keyring)
            .decrypt_string(&FieldContext::new("will_service_outbox", "payload", &id), &sealed)?;
        let payload: serde_json::Value =
            serde_json::from_str(&payload).map_err(|e| ConsentError::Crypto(e.to_string()))?;
        let outcome = will
            .client
            .post(&will.url)
            .header("Idempotency-Key", &id)
            .json(&serde_json::json!({"id": id, "kind": kind, "record_id": record_id, "record": payload}))
            .send();
        let error = match outcome {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!("HTTP {}", response.status().as_u16())),
            Err(e) => Some(if e.is_timeout() {
                "timeout".to_owned()
            } else {
                "connection failed".to_owned()
            }),
        };
        let target = will_service_outbox::table
            .filter(will_service_outbox::registrar_id.eq(&registrar_id))
            .filter(will_service_outbox::id.eq(&id));
        match error {
            None => {
                let client_id = payload["client_id"].as_str().unwrap_or_default().to_owned();
                let subject = rekisteri_clients::subject_of(conn, &registrar_id, "client", &client_id)?;
                register
                    .clients
                    .audit
                    .append(vec![NewEntry::Disclosure(DisclosureEntry {
                        occurred_at: at,
                        registrar_id: registrar_id.clone(),
                        subject_index: subject,
                        description: format!("{kind} {record_id}"),
                        discloser_kind: ActorKind::System,
                        discloser_id: "will-service-forwarder".into(),
                        recipient_kind: "national_service".into(),
                        recipient_id: "tahdonilmaisupalvelu".into(),
                        recipient_name: Some("Tahdonilmaisupalvelu".into()),
                        purpose: "recording for the national will service (CO-6)".into(),
                        legal_basis: "will_service_recording".into(),
                        request_id: id.clone(),
                    })])?;
                write_transaction(conn, |conn| {
                    diesel::update(target)
                        .set((
                            will_service_outbox::state.eq("delivered"),
                            will_service_outbox::attempts.eq(attempts + 1),
                            will_service_outbox::delivered_at.eq(Some(at)),
                            will_service_outbox::last_error.eq(None::<String>),
                        ))
                        .execute(conn)
                })?;
                report.delivered += 1;
            }
            Some(error) => {
                log::warn!("will service: item {id} not delivered: {error}");
                let next = at + will.backoff(attempts);
                write_transaction(conn, |conn| {
                    diesel::update(target)
                        .set((
                            will_service_outbox::attempts.eq(attempts + 1),
                            will_service_outbox::next_attempt_at.eq(next),
                            will_service_outbox::last_error.eq(Some(error)),
                        ))
                        .execute(conn)
                })?;
                report.failed += 1;
            }
        }
    }
    report.waiting = will_service_outbox::table
        .filter(will_service_outbox::state.eq("pending"))
        .count()
        .get_result::<i64>(conn)? as usize;
    Ok(report)
}

/// Items waiting for the will service (`/metrics`' outbox depth).
pub fn pending_count(conn: &mut DbConnection) -> QueryResult<i64> {
    will_service_outbox::table
        .filter(will_service_outbox::state.eq("pending"))
        .count()
        .get_result(conn)
}
