//! Idempotency keys of creating POSTs (PL-2): a retried push from a client system never creates
//! a duplicate.
//!
//! A key belongs to its caller (an account, an API client, a citizen) within the registrar the
//! path names, for [`TTL`]. The first request with a key *claims* it (a `pending` row, committed
//! before the work starts); a second request meanwhile gets [`Claim::InProgress`] (409). When the
//! first answered 201 its response is stored ([`complete`]) and every later request with the key
//! and the same method, path and body gets that response back ([`replay`]) and creates nothing;
//! with another method, path or body it gets [`Claim::Mismatch`] (422). A first request that did
//! not answer 201 leaves no row ([`release`]), so the client may retry.
//!
//! An answer marked `Cache-Control: no-store` holds a secret shown only once (an invitation
//! token, an API client's secret): the key is kept, so a retry creates nothing, but the body is
//! not, and a retry is told that the first request succeeded instead of getting the secret.
//!
//! The stored body may hold personal data (a created client): it is sealed with the field
//! cipher, bound to this table, column and row (PL-6). What it discloses (whose data, which
//! record) is stored beside it, and a replay of such a body is a read of personal data: the body
//! is opened inside `AuditLog::read_personal_data`, so the usage entry is durable before a byte
//! leaves (AU-1, AU-4).
//!
//! ## Claims belong to a live server (PL-17)
//!
//! A claim is owned by the server process that took it: every server makes a random
//! [`Instance`] id at start and keeps its `server_instances` row alive ([`register_instance`],
//! renewed well within [`Instance::lease`]; [`retire_instance`] at a clean stop). Several servers
//! may share one database; each renews only its own row. A pending claim whose owner's row has
//! expired or is gone belongs to a process that was killed (or has stalled past its lease), and
//! the next request with the key decides by what that request left behind:
//!
//! - It committed nothing: the claim is taken over (a new claim id and owner, one conditional
//!   UPDATE) and the request runs again, as if it were the first.
//! - It committed a write: the request is never run again ([`Claim::Interrupted`]); its answer
//!   was lost with the process, so the retry is told that the first request did its work and
//!   nothing was created again (409 `conflict`, `Idempotent-Replayed: true`).
//!
//! The second case is known exactly because the mark is made in the request's own write
//! transactions: while a claimed request runs, every `write_transaction` of it ends in
//! [`commit_check`], which sets the claim's `written` flag *only if the claim is still this
//! owner's and still pending* and otherwise rolls the transaction back. So a creation and the
//! mark commit together or not at all, and a taker and a stalled owner cannot both win: on
//! PostgreSQL the mark's UPDATE locks the claim row until the commit and the taker's conditional
//! UPDATE (`written = false`, same owner) waits for it and then finds it written; on SQLite the
//! `BEGIN IMMEDIATE` of both serialises them. A claim is never run twice, whatever the clocks
//! say; the lease only decides how soon a dead owner's claim is given up (409 until then).
//!
//! Claims made before owners existed (no `owner`) keep the old rule: pending until they expire.

use diesel::prelude::*;
use rekisteri_audit::{AuditContext, AuditError, AuditLog, DataUse, Outcome};
use rekisteri_crypto::{FieldCipher, FieldContext, Keyring};
use std::sync::Arc;

use rekisteri_db::schema::idempotency_keys as keys;
use rekisteri_db::schema::server_instances as instances;
use rekisteri_db::{CommitCheck, DbConnection, write_transaction};
use serde::{Deserialize, Serialize};
use time::PrimitiveDateTime;

/// How long a key is remembered.
pub const TTL: time::Duration = time::Duration::hours(24);

const TABLE: &str = "idempotency_keys";

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error(transparent)]
    Db(#[from] rekisteri_db::DbError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("cryptography failed: {0}")]
    Crypto(String),
    #[error("the stored response cannot be replayed: {0}")]
    Unusable(String),
}

rekisteri_db::query_error_into_db!(IdempotencyError);
rekisteri_db::crypto_error_into_message!(IdempotencyError);

/// Whether `key` is a valid `Idempotency-Key`: 1-255 visible ASCII characters.
pub fn is_valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// SHA-256 of the request: method, path (with query) and body, unambiguously separated.
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [method.as_bytes(), path.as_bytes()] {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part);
    }
    context.update(body);
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// The registrar a path belongs to (`/v1/registrars/{rid}/…`), `platform` for any other path:
/// the rows are kept with the register whose data they may hold (PL-7).
pub fn registrar_of_path(path: &str) -> &str {
    path.strip_prefix("/v1/registrars/")
        .and_then(|rest| rest.split('/').next())
        .filter(|rid| !rid.is_empty())
        .unwrap_or("platform")
}

/// Whose key it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub registrar_id: String,
    /// `account:<id>`, `api_client:<client id>` or `citizen:<subject index>`.
    pub caller: String,
    /// The same caller as named under the other blind-index keys held (a citizen's index): a key
    /// claimed before a key rotation's switch is still theirs after it. Empty otherwise.
    pub earlier_callers: Vec<String>,
    pub key: String,
}

/// One record a stored response discloses: whose data, what and which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disclosed {
    /// The person's blind index (hex), as the usage log files them.
    pub subject_index: Option<String>,
    pub data_kind: String,
    pub data_id: Option<String>,
}

/// What a response discloses of a register, as the handler that made it tells: a replay of it
/// writes one usage entry per record under `purpose`, and only a caller still holding
/// `permission` gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disclosure {
    pub registrar_id: String,
    pub purpose: String,
    /// The permission the original request needed (`Permission::as_str`).
    pub permission: Option<String>,
    pub uses: Vec<Disclosed>,
}

impl Disclosure {
    /// One record of the person with blind index `subject`.
    pub fn one(
        registrar_id: &str,
        purpose: &str,
        permission: &str,
        subject: Option<[u8; 32]>,
        data_kind: &str,
        data_id: &str,
    ) -> Self {
        Self {
            registrar_id: registrar_id.to_owned(),
            purpose: purpose.to_owned(),
            permission: Some(permission.to_owned()),
            uses: vec![Disclosed {
                subject_index: subject.map(|s| rekisteri_crypto::to_hex(&s)),
                data_kind: data_kind.to_owned(),
                data_id: Some(data_id.to_owned()),
            }],
        }
    }
}

impl Disclosed {
    /// The person's blind index, when the record names one.
    pub fn subject(&self) -> Option<[u8; 32]> {
        self.subject_index.as_deref().and_then(from_hex)
    }
}

fn from_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A response to store: what a replay answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub location: Option<String>,
    pub etag: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// The body held a secret shown only once: it is not kept, and a replay says so instead.
    pub withheld: bool,
}

/// A completed key's row, its body still sealed.
#[derive(Debug, Clone, Queryable)]
pub struct CompletedKey {
    id: String,
    status: Option<i32>,
    location: Option<String>,
    etag: Option<String>,
    content_type: Option<String>,
    withheld: bool,
    body: Option<Vec<u8>>,
    disclosure: Option<Vec<u8>>,
}

impl CompletedKey {
    /// What the stored response discloses, if anything.
    pub fn disclosure(&self) -> Result<Option<Disclosure>, IdempotencyError> {
        self.disclosure
            .as_deref()
            .map(|json| serde_json::from_slice(json).map_err(|e| IdempotencyError::Unusable(e.to_string())))
            .transpose()
    }
}

/// The key claimed by this request: [`complete`] or [`release`] it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: String,
    /// The [`Instance`] that holds it.
    pub owner: String,
}

/// This server process as the owner of the claims it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Random, made at start: a restarted server is another owner.
    pub id: String,
    /// How long the row stays alive without a renewal: after a `kill -9`, the time a retry may
    /// still get 409 for a claim the dead process held.
    pub lease: time::Duration,
}

impl Instance {
    /// A new owner with `lease`.
    pub fn new(lease: time::Duration) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            lease,
        }
    }

    /// How often to renew: a third of the lease, so that two renewals may fail in a row.
    pub fn renew_every(&self) -> std::time::Duration {
        std::time::Duration::try_from(self.lease / 3).unwrap_or(std::time::Duration::from_secs(1))
    }
}

/// Writes or renews the instance's row: alive until `now + lease`.
pub fn register_instance(
    conn: &mut DbConnection,
    instance: &Instance,
    now: PrimitiveDateTime,
) -> Result<(), IdempotencyError> {
    let expires_at = now + instance.lease;
    write_transaction(conn, |conn| {
        let renewed = diesel::update(instances::table.filter(instances::id.eq(&instance.id)))
            .set(instances::expires_at.eq(expires_at))
            .execute(conn)?;
        if renewed == 0 {
            diesel::insert_into(instances::table)
                .values((
                    instances::id.eq(&instance.id),
                    instances::started_at.eq(now),
                    instances::expires_at.eq(expires_at),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// Removes the row at a clean stop (after the last request was answered): any claim still
/// naming it is free at once.
pub fn retire_instance(conn: &mut DbConnection, instance: &Instance) -> Result<(), IdempotencyError> {
    write_transaction(conn, |conn| {
        diesel::delete(instances::table.filter(instances::id.eq(&instance.id))).execute(conn)?;
        Ok(())
    })
}

fn owner_alive(conn: &mut DbConnection, owner: &str, now: PrimitiveDateTime) -> QueryResult<bool> {
    let alive: i64 = instances::table
        .filter(instances::id.eq(owner))
        .filter(instances::expires_at.gt(now))
        .count()
        .get_result(conn)?;
    Ok(alive > 0)
}

/// The error a claimed request's write transaction fails with once the claim is no longer its
/// owner's (taken over after the owner's lease expired) or no longer pending.
#[derive(Debug, thiserror::Error)]
#[error("the Idempotency-Key claim {claim} is no longer held by this server")]
pub struct ClaimLost {
    pub claim: String,
}

/// Whether a database error is a failed [`commit_check`].
pub fn is_claim_lost(error: &diesel::result::Error) -> bool {
    matches!(error, diesel::result::Error::QueryBuilderError(e) if e.is::<ClaimLost>())
}

/// The check every write transaction of the claimed request ends in (see the module docs):
/// marks the claim `written`, or fails with [`ClaimLost`] when it is no longer this owner's.
pub fn commit_check(claimed: &Claimed) -> CommitCheck {
    let claimed = claimed.clone();
    Arc::new(move |conn: &mut DbConnection| {
        let marked = diesel::update(
            keys::table
                .filter(keys::id.eq(&claimed.id))
                .filter(keys::owner.eq(&claimed.owner))
                .filter(keys::state.eq("pending")),
        )
        .set(keys::written.eq(true))
        .execute(conn)?;
        if marked == 1 {
            Ok(())
        } else {
            Err(diesel::result::Error::QueryBuilderError(Box::new(ClaimLost {
                claim: claimed.id.clone(),
            })))
        }
    })
}

/// What a request with a key may do.
#[derive(Debug)]
pub enum Claim {
    /// The first with the key: go on.
    Claimed(Claimed),
    /// The first request with the key is still running (409).
    InProgress,
    /// The key was used for another method, path or body (422).
    Mismatch,
    /// The first request answered: replay its response.
    Completed(Box<CompletedKey>),
    /// The first request's server died after the request had committed its writes but before
    /// its answer was stored: it is not run again, and its answer is lost.
    Interrupted,
}

#[derive(Queryable)]
struct KeyState {
    id: String,
    request_hash: Vec<u8>,
    state: String,
    owner: Option<String>,
    written: bool,
}

/// Claims `scope`'s key for the request with `hash` as `owner`, or says why not. Expired keys
/// of the registrar are removed on the way (so an expired key can be used again), and a pending
/// claim of a dead owner that wrote nothing is taken over.
pub fn claim(
    conn: &mut DbConnection,
    scope: &Scope,
    method: &str,
    path: &str,
    hash: &[u8; 32],
    owner: &Instance,
    now: PrimitiveDateTime,
) -> Result<Claim, IdempotencyError> {
    // On PostgreSQL two first requests can both find no row; the loser's insert fails on the key
    // and it looks again, finding the winner's claim.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let result = write_transaction(conn, |conn| claim_once(conn, scope, method, path, hash, &owner.id, now));
        match result {
            Err(IdempotencyError::Db(rekisteri_db::DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )))) if attempts < 3 => {}
            other => return other,
        }
    }
}

fn claim_once(
    conn: &mut DbConnection,
    scope: &Scope,
    method: &str,
    path: &str,
    hash: &[u8; 32],
    owner: &str,
    now: PrimitiveDateTime,
) -> Result<Claim, IdempotencyError> {
    diesel::delete(
        keys::table
            .filter(keys::registrar_id.eq(&scope.registrar_id))
            .filter(keys::expires_at.le(now)),
    )
    .execute(conn)?;
    let callers: Vec<&String> = std::iter::once(&scope.caller).chain(&scope.earlier_callers).collect();
    let mine = keys::table
        .filter(keys::registrar_id.eq(&scope.registrar_id))
        .filter(keys::caller.eq_any(callers))
        .filter(keys::idempotency_key.eq(&scope.key));
    let existing: Option<KeyState> = mine
        .select((keys::id, keys::request_hash, keys::state, keys::owner, keys::written))
        .first(conn)
        .optional()?;
    match existing {
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            diesel::insert_into(keys::table)
                .values((
                    keys::registrar_id.eq(&scope.registrar_id),
                    keys::caller.eq(&scope.caller),
                    keys::idempotency_key.eq(&scope.key),
                    keys::id.eq(&id),
                    keys::method.eq(method),
                    keys::path.eq(path),
                    keys::request_hash.eq(hash.to_vec()),
                    keys::state.eq("pending"),
                    keys::created_at.eq(now),
                    keys::expires_at.eq(now + TTL),
                    keys::owner.eq(owner),
                ))
                .execute(conn)?;
            Ok(Claim::Claimed(Claimed {
                id,
                owner: owner.to_owned(),
            }))
        }
        Some(found) if found.request_hash != hash.as_slice() => Ok(Claim::Mismatch),
        Some(found) if found.state == "pending" => {
            let Some(dead) = found.owner else {
                return Ok(Claim::InProgress);
            };
            if owner_alive(conn, &dead, now)? {
                return Ok(Claim::InProgress);
            }
            if found.written {
                return Ok(Claim::Interrupted);
            }
            // Only if it is still the dead owner's and still unwritten: a stalled owner whose
            // write committed first has marked it (see the module docs).
            let id = uuid::Uuid::new_v4().to_string();
            let taken = diesel::update(
                keys::table
                    .filter(keys::id.eq(&found.id))
                    .filter(keys::owner.eq(&dead))
                    .filter(keys::state.eq("pending"))
                    .filter(keys::written.eq(false)),
            )
            .set((
                keys::id.eq(&id),
                keys::owner.eq(owner),
                keys::created_at.eq(now),
                keys::expires_at.eq(now + TTL),
            ))
            .execute(conn)?;
            if taken == 1 {
                Ok(Claim::Claimed(Claimed {
                    id,
                    owner: owner.to_owned(),
                }))
            } else {
                Ok(Claim::InProgress)
            }
        }
        Some(found) => {
            let row: CompletedKey = keys::table
                .filter(keys::id.eq(&found.id))
                .select((
                    keys::id,
                    keys::status,
                    keys::location,
                    keys::etag,
                    keys::content_type,
                    keys::withheld,
                    keys::body,
                    keys::disclosure,
                ))
                .first(conn)?;
            Ok(Claim::Completed(Box::new(row)))
        }
    }
}

/// Stores the response of the claimed request, its body sealed to the row.
pub fn complete(
    conn: &mut DbConnection,
    keyring: &Keyring,
    claimed: &Claimed,
    response: &StoredResponse,
    disclosure: Option<&Disclosure>,
) -> Result<(), IdempotencyError> {
    let sealed = if response.withheld {
        None
    } else {
        Some(FieldCipher::new(keyring).encrypt(&FieldContext::new(TABLE, "body", &claimed.id), &response.body)?)
    };
    let disclosure = disclosure
        .map(|d| serde_json::to_vec(d).map_err(|e| IdempotencyError::Unusable(e.to_string())))
        .transpose()?;
    write_transaction(conn, |conn| {
        diesel::update(
            keys::table
                .filter(keys::id.eq(&claimed.id))
                .filter(keys::owner.eq(&claimed.owner))
                .filter(keys::state.eq("pending")),
        )
        .set((
            keys::state.eq("completed"),
            keys::status.eq(i32::from(response.status)),
            keys::location.eq(&response.location),
            keys::etag.eq(&response.etag),
            keys::content_type.eq(&response.content_type),
            keys::withheld.eq(response.withheld),
            keys::body.eq(&sealed),
            keys::disclosure.eq(&disclosure),
        ))
        .execute(conn)?;
        Ok(())
    })
}

/// Forgets the claim of a request that did not create anything, so that the key may be used
/// again.
pub fn release(conn: &mut DbConnection, claimed: &Claimed) -> Result<(), IdempotencyError> {
    write_transaction(conn, |conn| {
        diesel::delete(
            keys::table
                .filter(keys::id.eq(&claimed.id))
                .filter(keys::owner.eq(&claimed.owner))
                .filter(keys::state.eq("pending")),
        )
        .execute(conn)?;
        Ok(())
    })
}

/// Opens the stored response. When it discloses personal data, the opening is a logged read
/// under `context` (which must then be given): the usage entries are durable before the body is
/// returned (AU-1, AU-4).
pub fn replay(
    conn: &mut DbConnection,
    keyring: &Keyring,
    audit: &AuditLog,
    completed: &CompletedKey,
    context: Option<&AuditContext>,
    at: PrimitiveDateTime,
) -> Result<StoredResponse, IdempotencyError> {
    let disclosure = completed.disclosure()?;
    let open = || -> Result<StoredResponse, IdempotencyError> {
        let status = completed
            .status
            .and_then(|s| u16::try_from(s).ok())
            .ok_or_else(|| IdempotencyError::Unusable("no stored status".into()))?;
        if completed.withheld {
            return Ok(StoredResponse {
                status,
                location: completed.location.clone(),
                etag: completed.etag.clone(),
                content_type: None,
                body: Vec::new(),
                withheld: true,
            });
        }
        let sealed = completed
            .body
            .as_deref()
            .ok_or_else(|| IdempotencyError::Unusable("no stored body".into()))?;
        #[allow(
            clippy::disallowed_methods,
            reason = "a stored response is opened only here: inside read_personal_data when it discloses personal data"
        )]
        let body = FieldCipher::new(keyring).decrypt(&FieldContext::new(TABLE, "body", &completed.id), sealed)?;
        Ok(StoredResponse {
            status,
            location: completed.location.clone(),
            etag: completed.etag.clone(),
            content_type: completed.content_type.clone(),
            body,
            withheld: false,
        })
    };
    match disclosure.filter(|d| !d.uses.is_empty()) {
        None => open(),
        Some(disclosure) => {
            let context = context.ok_or_else(|| {
                IdempotencyError::Unusable("a replay of personal data needs the caller's audit context".into())
            })?;
            audit.read_personal_data(conn, context, at, |_| {
                let response = open()?;
                let uses = disclosure
                    .uses
                    .iter()
                    .map(|u| DataUse {
                        subject_index: u.subject_index.as_deref().and_then(from_hex),
                        data_kind: u.data_kind.clone(),
                        data_id: u.data_id.clone(),
                        outcome: Outcome::Used,
                    })
                    .collect();
                Ok((response, uses))
            })
        }
    }
}

/// Removes every expired key (the retention run; claims also remove their registrar's), and the
/// rows of servers dead for longer than a key lives (no claim can name them any more).
pub fn purge_expired(conn: &mut DbConnection, now: PrimitiveDateTime) -> Result<usize, IdempotencyError> {
    write_transaction(conn, |conn| {
        diesel::delete(instances::table.filter(instances::expires_at.le(now - TTL))).execute(conn)?;
        Ok(diesel::delete(keys::table.filter(keys::expires_at.le(now))).execute(conn)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pl_2_key_syntax_is_one_to_255_visible_ascii_characters() {
        assert!(is_valid_key("a"));
        assert!(is_valid_key("3f1c2a9e-1b2c-4d5e-8f90-123456789abc"));
        assert!(is_valid_key(&"k".repeat(255)));
        assert!(!is_valid_key(""));
        assert!(!is_valid_key(&"k".repeat(256)));
        assert!(!is_valid_key("has space"));
        assert!(!is_valid_key("tab\there"));
        assert!(!is_valid_key("ä"));
    }

    #[test]
    fn pl_2_request_hash_separates_its_parts() {
        assert_ne!(request_hash("POST", "/a", b"bc"), request_hash("POST", "/ab", b"c"));
        assert_eq!(request_hash("POST", "/a", b"{}"), request_hash("POST", "/a", b"{}"));
        assert_ne!(request_hash("POST", "/a", b"{}"), request_hash("POST", "/a", b"{ }"));
    }

    #[test]
    fn pl_2_registrar_is_taken_from_the_path() {
        assert_eq!(registrar_of_path("/v1/registrars/abc/clients"), "abc");
        assert_eq!(registrar_of_path("/v1/registrars/abc"), "abc");
        assert_eq!(registrar_of_path("/v1/organisations"), "platform");
        assert_eq!(registrar_of_path("/v1/registrars//x"), "platform");
    }

    #[test]
    fn pl_2_subject_index_hex_round_trips() {
        let subject = [0xabu8; 32];
        assert_eq!(from_hex(&rekisteri_crypto::to_hex(&subject)), Some(subject));
        assert_eq!(from_hex("zz"), None);
    }
}
