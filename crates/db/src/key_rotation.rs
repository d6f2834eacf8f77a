//! Key rotation (PL-6): the state of a rotation and the passes that move every sealed value to
//! the active data key and every blind index to the active blind-index key, table by table, in
//! batches that commit their progress with them, so that a rotation killed at any moment resumes
//! after its last committed batch.
//!
//! A rotation goes `prepared` (the new keys are in the key file; every server loads them but
//! still writes with the old ones) → `switched` (every server writes with the new keys; the
//! passes run) → `finished`. The servers report the keys they hold and write with in
//! `instance_keys`; the command that drives a rotation waits on those reports between the steps.
//!
//! The passes run while requests go on: each row is updated only if its values are still the
//! ones the pass read (compare and swap), so a concurrent change is never overwritten; such a
//! change was written with the new keys anyway. The change history keeps copies of sealed values:
//! its pass re-encrypts those copies in place (the one UPDATE the history allows besides the
//! protection-order redaction), and the passes' own updates leave no history rows (their actor
//! is [`ACTOR`], which the history's insert trigger skips).
//!
//! Blind indexes in the audit log are not re-indexed: they are part of its hash chain, and
//! rewriting them would break the tamper evidence. Lookups match every blind key held, so those
//! entries stay findable while the old blind key is kept.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Nullable, Text};
use rekisteri_crypto::{CryptoError, FieldCipher, FieldContext, KeyId, Keyring};
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::schema::{instance_keys, key_checks, key_rotation_progress, key_rotations, server_instances};
use crate::{DbConnection, to_primitive, write_transaction, write_transaction_as};

/// The change-history actor of the passes' updates; the history skips its rows.
pub const ACTOR: &str = "system:key-rotation";

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("a value in {target}.{column} cannot be re-encrypted: {source}")]
    Crypto {
        target: &'static str,
        column: &'static str,
        source: CryptoError,
    },
    #[error("the change history row {id} is not valid JSON")]
    History { id: i64 },
}

/// Where a rotation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationState {
    Prepared,
    Switched,
    Finished,
}

impl RotationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prepared => "prepared",
            Self::Switched => "switched",
            Self::Finished => "finished",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "prepared" => Self::Prepared,
            "switched" => Self::Switched,
            // The column's CHECK allows nothing else.
            _ => Self::Finished,
        }
    }
}

/// One rotation as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub id: String,
    pub from_data_key: String,
    pub to_data_key: String,
    pub from_blind_key: String,
    pub to_blind_key: String,
    pub state: RotationState,
    pub started_at: PrimitiveDateTime,
    pub switched_at: Option<PrimitiveDateTime>,
    pub finished_at: Option<PrimitiveDateTime>,
    pub values_resealed: i64,
}

impl Rotation {
    /// The keys servers write with now: the old ones until the switch.
    pub fn active(&self) -> (&str, &str) {
        match self.state {
            RotationState::Prepared => (&self.from_data_key, &self.from_blind_key),
            RotationState::Switched | RotationState::Finished => (&self.to_data_key, &self.to_blind_key),
        }
    }
}

type RotationRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    PrimitiveDateTime,
    Option<PrimitiveDateTime>,
    Option<PrimitiveDateTime>,
    i64,
);

fn rotation_from(row: RotationRow) -> Rotation {
    let (id, from_data_key, to_data_key, from_blind_key, to_blind_key, state, started_at, switched_at, finished_at, n) =
        row;
    Rotation {
        id,
        from_data_key,
        to_data_key,
        from_blind_key,
        to_blind_key,
        state: RotationState::parse(&state),
        started_at,
        switched_at,
        finished_at,
        values_resealed: n,
    }
}

/// The newest rotation, which decides the active keys; `None` before the first.
pub fn newest(conn: &mut DbConnection) -> QueryResult<Option<Rotation>> {
    key_rotations::table
        .select((
            key_rotations::id,
            key_rotations::from_data_key,
            key_rotations::to_data_key,
            key_rotations::from_blind_key,
            key_rotations::to_blind_key,
            key_rotations::state,
            key_rotations::started_at,
            key_rotations::switched_at,
            key_rotations::finished_at,
            key_rotations::values_resealed,
        ))
        .order((key_rotations::started_at.desc(), key_rotations::id.desc()))
        .first::<RotationRow>(conn)
        .optional()
        .map(|row| row.map(rotation_from))
}

/// Records a new rotation, `prepared`, with a pending pass per table.
pub fn begin(
    conn: &mut DbConnection,
    from: (&KeyId, &KeyId),
    to: (&KeyId, &KeyId),
    now: OffsetDateTime,
) -> QueryResult<Rotation> {
    let id = format!("rot-{}", now.unix_timestamp_nanos());
    write_transaction(conn, |conn| {
        diesel::insert_into(key_rotations::table)
            .values((
                key_rotations::id.eq(&id),
                key_rotations::from_data_key.eq(from.0.as_str()),
                key_rotations::to_data_key.eq(to.0.as_str()),
                key_rotations::from_blind_key.eq(from.1.as_str()),
                key_rotations::to_blind_key.eq(to.1.as_str()),
                key_rotations::state.eq(RotationState::Prepared.as_str()),
                key_rotations::started_at.eq(to_primitive(now)),
                key_rotations::values_resealed.eq(0),
            ))
            .execute(conn)?;
        for target in TARGETS.iter().map(|t| t.name).chain([HISTORY]) {
            diesel::insert_into(key_rotation_progress::table)
                .values((
                    key_rotation_progress::rotation_id.eq(&id),
                    key_rotation_progress::target.eq(target),
                    key_rotation_progress::done.eq(false),
                    key_rotation_progress::rows_done.eq(0),
                ))
                .execute(conn)?;
        }
        QueryResult::Ok(())
    })?;
    newest(conn)?.ok_or(diesel::result::Error::NotFound)
}

/// Removes a rotation that never got past `prepared` (its keys never reached the key file):
/// nothing was written with its keys, since servers write with the old ones until the switch.
pub fn abandon_prepared(conn: &mut DbConnection, id: &str) -> QueryResult<bool> {
    write_transaction(conn, |conn| {
        let prepared = key_rotations::table
            .filter(key_rotations::id.eq(id))
            .filter(key_rotations::state.eq(RotationState::Prepared.as_str()));
        if diesel::select(diesel::dsl::exists(prepared)).get_result::<bool>(conn)? {
            diesel::delete(key_rotation_progress::table.filter(key_rotation_progress::rotation_id.eq(id)))
                .execute(conn)?;
            diesel::delete(key_rotations::table.filter(key_rotations::id.eq(id))).execute(conn)?;
            return Ok(true);
        }
        Ok(false)
    })
}

/// Moves a rotation to `state`, stamping the time.
pub fn advance(conn: &mut DbConnection, id: &str, state: RotationState, now: OffsetDateTime) -> QueryResult<()> {
    let now = to_primitive(now);
    write_transaction(conn, |conn| {
        let target = key_rotations::table.filter(key_rotations::id.eq(id));
        match state {
            RotationState::Prepared => diesel::update(target)
                .set(key_rotations::state.eq(state.as_str()))
                .execute(conn)?,
            RotationState::Switched => diesel::update(target)
                .set((
                    key_rotations::state.eq(state.as_str()),
                    key_rotations::switched_at.eq(now),
                ))
                .execute(conn)?,
            RotationState::Finished => diesel::update(target)
                .set((
                    key_rotations::state.eq(state.as_str()),
                    key_rotations::finished_at.eq(now),
                ))
                .execute(conn)?,
        };
        Ok(())
    })
}

/// Each pass of a rotation: target, rows done, whether it is done.
pub fn progress(conn: &mut DbConnection, rotation_id: &str) -> QueryResult<Vec<(String, i64, bool)>> {
    key_rotation_progress::table
        .filter(key_rotation_progress::rotation_id.eq(rotation_id))
        .select((
            key_rotation_progress::target,
            key_rotation_progress::rows_done,
            key_rotation_progress::done,
        ))
        .order(key_rotation_progress::target)
        .load(conn)
}

/// Reports, for the running server `instance_id`, the keys it holds and the ones it writes with.
pub fn report_instance_keys(
    conn: &mut DbConnection,
    instance_id: &str,
    keyring: &Keyring,
    now: OffsetDateTime,
) -> QueryResult<()> {
    let held = keyring
        .data_key_ids()
        .into_iter()
        .chain(keyring.blind_index_key_ids())
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let (data, blind) = (keyring.active_key_id(), keyring.active_blind_index_key_id());
    let now = to_primitive(now);
    write_transaction(conn, |conn| {
        let updated = diesel::update(instance_keys::table.filter(instance_keys::instance_id.eq(instance_id)))
            .set((
                instance_keys::held.eq(&held),
                instance_keys::data_key.eq(data.as_str()),
                instance_keys::blind_key.eq(blind.as_str()),
                instance_keys::reported_at.eq(now),
            ))
            .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(instance_keys::table)
                .values((
                    instance_keys::instance_id.eq(instance_id),
                    instance_keys::held.eq(&held),
                    instance_keys::data_key.eq(data.as_str()),
                    instance_keys::blind_key.eq(blind.as_str()),
                    instance_keys::reported_at.eq(now),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// What a rotation waits for before its next step.
#[derive(Debug, Clone, Copy)]
pub enum Awaited<'a> {
    /// Every live server holds these keys.
    Holding(&'a str, &'a str),
    /// Every live server writes with these keys.
    WritingWith(&'a str, &'a str),
}

/// The live servers (their instance row not expired) that have not yet reported what `awaited`
/// asks; empty when the rotation may go on.
pub fn servers_behind(conn: &mut DbConnection, awaited: Awaited<'_>, now: OffsetDateTime) -> QueryResult<Vec<String>> {
    let live: Vec<String> = server_instances::table
        .filter(server_instances::expires_at.gt(to_primitive(now)))
        .select(server_instances::id)
        .load(conn)?;
    let reports: BTreeMap<String, (String, String, String)> = instance_keys::table
        .filter(instance_keys::instance_id.eq_any(&live))
        .select((
            instance_keys::instance_id,
            (instance_keys::held, instance_keys::data_key, instance_keys::blind_key),
        ))
        .load::<(String, (String, String, String))>(conn)?
        .into_iter()
        .collect();
    Ok(live
        .into_iter()
        .filter(|id| {
            let Some((held, data, blind)) = reports.get(id) else {
                return true;
            };
            match awaited {
                Awaited::Holding(d, b) => {
                    let held: Vec<&str> = held.split(',').collect();
                    !(held.contains(&d) && held.contains(&b))
                }
                Awaited::WritingWith(d, b) => !(data == d && blind == b),
            }
        })
        .collect())
}

/// Removes the key check of a retired key (the key file no longer holds it).
pub fn forget_key(conn: &mut DbConnection, key_id: &str) -> QueryResult<usize> {
    write_transaction(conn, |conn| {
        diesel::delete(key_checks::table.filter(key_checks::key_id.eq(key_id))).execute(conn)
    })
}

/// How the primary key of a table orders its rows for the passes' keyset paging.
#[derive(Debug, Clone, Copy)]
enum Second {
    None,
    Text(&'static str),
    BigInt(&'static str),
    Binary(&'static str),
}

/// How a blind index's value is derived from the plaintext it indexes: the same normalisation
/// the lookups apply.
#[derive(Debug, Clone, Copy)]
enum Normalise {
    IdentityCode,
    Email,
    AsIs,
    /// The identity code (`henkilotunnus`) inside a staged VTJ change message.
    VtjMessage,
}

impl Normalise {
    fn apply(self, plain: &[u8]) -> Option<Vec<u8>> {
        let text = std::str::from_utf8(plain).ok()?;
        let code = |code: &str| {
            rekisteri_core::PersonalIdentityCode::parse(code, rekisteri_core::TemporaryCodesAllowed::Yes)
                .map(|c| c.reveal().as_bytes().to_vec())
                .unwrap_or_else(|_| code.as_bytes().to_vec())
        };
        match self {
            Self::IdentityCode => Some(code(text)),
            Self::Email => Some(text.trim().to_lowercase().into_bytes()),
            Self::AsIs => Some(plain.to_vec()),
            Self::VtjMessage => {
                let message: serde_json::Value = serde_json::from_str(text).ok()?;
                message.get("henkilotunnus")?.as_str().map(code)
            }
        }
    }
}

/// Where a blind index's plaintext comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// A sealed column of the same row (its position in `sealed`).
    Sealed(usize),
    /// The identity code of the client the row names by `client_id`.
    ClientIdentityCode,
}

#[derive(Debug, Clone, Copy)]
struct Index {
    column: &'static str,
    domain: &'static str,
    source: Source,
    normalise: Normalise,
}

/// A table with sealed values or blind indexes.
#[derive(Debug)]
struct Target {
    name: &'static str,
    first: &'static str,
    second: Second,
    /// SQL giving the row id the values' encryption context names.
    row_id: &'static str,
    sealed: &'static [&'static str],
    indexes: &'static [Index],
}

const fn subject(source: usize) -> Index {
    Index {
        column: "subject_index",
        domain: "data_subject",
        source: Source::Sealed(source),
        normalise: Normalise::IdentityCode,
    }
}

/// Every table that holds sealed values or blind indexes, except the audit log (see the module
/// comment) and the login throttles (short-lived counters that restart under the new key).
/// `every_sealed_column_is_rotated` holds this list to the schema.
const TARGETS: &[Target] = &[
    Target {
        name: "accounts",
        first: "id",
        second: Second::None,
        row_id: "t.id",
        sealed: &["email", "first_name", "surname"],
        indexes: &[Index {
            column: "email_index",
            domain: "account_email",
            source: Source::Sealed(0),
            normalise: Normalise::Email,
        }],
    },
    Target {
        name: "clients",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &[
            "identity_code",
            "first_names",
            "surname",
            "email",
            "phone",
            "next_of_kin",
            "address",
            "temporary_address",
            "postal_address",
            "guardianship",
        ],
        indexes: &[subject(0)],
    },
    Target {
        name: "services",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["additional_info"],
        indexes: &[],
    },
    Target {
        name: "service_events",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["note"],
        indexes: &[],
    },
    Target {
        name: "proxies",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["identity_code", "first_names", "surname", "phone", "email"],
        indexes: &[subject(0)],
    },
    Target {
        name: "idempotency_keys",
        first: "id",
        second: Second::None,
        row_id: "t.id",
        sealed: &["body"],
        indexes: &[],
    },
    Target {
        name: "data_subject_requests",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &[
            "identity_code",
            "requester",
            "details",
            "extension_reason",
            "refusal_reasons",
        ],
        indexes: &[subject(0)],
    },
    Target {
        name: "client_moves",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["identity_code"],
        indexes: &[subject(0)],
    },
    Target {
        name: "case_documents",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["title", "signature", "content"],
        indexes: &[],
    },
    Target {
        name: "security_incidents",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["description", "assessment"],
        indexes: &[],
    },
    Target {
        name: "will_service_outbox",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["payload"],
        indexes: &[],
    },
    Target {
        name: "vtj_staged",
        first: "registrar_id",
        second: Second::BigInt("seq"),
        row_id: "t.registrar_id || '/' || CAST(t.seq AS TEXT)",
        sealed: &["message"],
        indexes: &[Index {
            column: "subject_index",
            domain: "data_subject",
            source: Source::Sealed(0),
            normalise: Normalise::VtjMessage,
        }],
    },
    Target {
        name: "vtj_monitored",
        first: "registrar_id",
        second: Second::Binary("subject_index"),
        row_id: "t.client_id",
        sealed: &[],
        indexes: &[Index {
            column: "subject_index",
            domain: "data_subject",
            source: Source::ClientIdentityCode,
            normalise: Normalise::IdentityCode,
        }],
    },
    Target {
        name: "client_previous_codes",
        first: "registrar_id",
        second: Second::Binary("subject_index"),
        row_id: "t.client_id",
        sealed: &["identity_code"],
        indexes: &[subject(0)],
    },
    Target {
        name: "contacts",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["caller_number", "client_name", "identity_code"],
        indexes: &[
            Index {
                column: "caller_number_index",
                domain: "caller_number",
                source: Source::Sealed(0),
                normalise: Normalise::AsIs,
            },
            subject(2),
        ],
    },
    Target {
        name: "recordings",
        first: "registrar_id",
        second: Second::Text("contact_id"),
        row_id: "t.id",
        sealed: &["data_key"],
        indexes: &[],
    },
    Target {
        name: "processing_memos",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["reason"],
        indexes: &[],
    },
    Target {
        name: "processing_memo_entries",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["recipient", "disclosed", "medium", "reason"],
        indexes: &[],
    },
];

/// The pass over the change history's copies of sealed values.
pub const HISTORY: &str = "change_history";

/// The names of every pass, in the order a rotation runs them.
pub fn pass_names() -> Vec<&'static str> {
    TARGETS.iter().map(|t| t.name).chain([HISTORY]).collect()
}

/// The sealed columns of every table the passes cover, for the schema test.
pub fn sealed_columns() -> Vec<(&'static str, &'static str)> {
    TARGETS
        .iter()
        .flat_map(|t| t.sealed.iter().map(move |c| (t.name, *c)))
        .chain(
            TARGETS
                .iter()
                .flat_map(|t| t.indexes.iter().map(move |i| (t.name, i.column))),
        )
        .collect()
}

const MAX_SEALED: usize = 10;
const MAX_INDEXES: usize = 2;

/// One row as a pass reads it: its key, its row id, up to ten sealed values, the plaintext
/// source of an index kept elsewhere, and up to two current indexes.
#[derive(QueryableByName, Debug)]
struct PassRow {
    #[diesel(sql_type = Text)]
    k1: String,
    #[diesel(sql_type = Nullable<Text>)]
    k2_text: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    k2_int: Option<i64>,
    #[diesel(sql_type = Nullable<Binary>)]
    k2_bin: Option<Vec<u8>>,
    #[diesel(sql_type = Text)]
    row_id: String,
    #[diesel(sql_type = Nullable<Binary>)]
    v0: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    v1: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    v2: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    v3: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    v4: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    v5: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    v6: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    v7: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    v8: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    v9: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    source: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    i0: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    i1: Option<Vec<u8>>,
}

impl PassRow {
    fn values(&self) -> [&Option<Vec<u8>>; MAX_SEALED] {
        [
            &self.v0, &self.v1, &self.v2, &self.v3, &self.v4, &self.v5, &self.v6, &self.v7, &self.v8, &self.v9,
        ]
    }

    fn indexes(&self) -> [&Option<Vec<u8>>; MAX_INDEXES] {
        [&self.i0, &self.i1]
    }
}

/// A bound value of the passes' dynamic statements.
#[derive(Debug, Clone)]
enum Bind {
    Text(String),
    BigInt(i64),
    Binary(Option<Vec<u8>>),
}

/// The statements of one pass, written for one backend.
struct Sql {
    postgres: bool,
    next: usize,
}

impl Sql {
    fn new(conn: &DbConnection) -> Self {
        Self {
            postgres: matches!(conn, DbConnection::Postgres(_)),
            next: 0,
        }
    }

    fn placeholder(&mut self) -> String {
        self.next += 1;
        if self.postgres {
            format!("${}", self.next)
        } else {
            "?".to_owned()
        }
    }

    fn same(&self) -> &'static str {
        if self.postgres { "IS NOT DISTINCT FROM" } else { "IS" }
    }
}

fn load_rows(conn: &mut DbConnection, sql: &str, binds: Vec<Bind>) -> QueryResult<Vec<PassRow>> {
    match conn {
        DbConnection::Sqlite(inner) => {
            let mut query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
            for bind in binds {
                query = match bind {
                    Bind::Text(v) => query.bind::<Text, _>(v),
                    Bind::BigInt(v) => query.bind::<BigInt, _>(v),
                    Bind::Binary(v) => query.bind::<Nullable<Binary>, _>(v),
                };
            }
            query.load(inner)
        }
        DbConnection::Postgres(inner) => {
            let mut query = diesel::sql_query(sql).into_boxed::<diesel::pg::Pg>();
            for bind in binds {
                query = match bind {
                    Bind::Text(v) => query.bind::<Text, _>(v),
                    Bind::BigInt(v) => query.bind::<BigInt, _>(v),
                    Bind::Binary(v) => query.bind::<Nullable<Binary>, _>(v),
                };
            }
            query.load(inner)
        }
    }
}

fn execute(conn: &mut DbConnection, sql: &str, binds: Vec<Bind>) -> QueryResult<usize> {
    match conn {
        DbConnection::Sqlite(inner) => {
            let mut query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
            for bind in binds {
                query = match bind {
                    Bind::Text(v) => query.bind::<Text, _>(v),
                    Bind::BigInt(v) => query.bind::<BigInt, _>(v),
                    Bind::Binary(v) => query.bind::<Nullable<Binary>, _>(v),
                };
            }
            query.execute(inner)
        }
        DbConnection::Postgres(inner) => {
            let mut query = diesel::sql_query(sql).into_boxed::<diesel::pg::Pg>();
            for bind in binds {
                query = match bind {
                    Bind::Text(v) => query.bind::<Text, _>(v),
                    Bind::BigInt(v) => query.bind::<BigInt, _>(v),
                    Bind::Binary(v) => query.bind::<Nullable<Binary>, _>(v),
                };
            }
            query.execute(inner)
        }
    }
}

/// The keyset position of a pass, kept as JSON text in `key_rotation_progress.cursor`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Cursor {
    first: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    int: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    history_id: Option<i64>,
}

impl Cursor {
    fn of(row: &PassRow) -> Self {
        Self {
            first: row.k1.clone(),
            text: row.k2_text.clone(),
            int: row.k2_int,
            hex: row.k2_bin.as_deref().map(rekisteri_crypto::to_hex),
            history_id: None,
        }
    }

    fn second_bind(&self, second: Second) -> Option<Bind> {
        match second {
            Second::None => None,
            Second::Text(_) => Some(Bind::Text(self.text.clone().unwrap_or_default())),
            Second::BigInt(_) => Some(Bind::BigInt(self.int.unwrap_or_default())),
            Second::Binary(_) => Some(Bind::Binary(Some(from_hex(self.hex.as_deref().unwrap_or_default())))),
        }
    }
}

fn from_hex(text: &str) -> Vec<u8> {
    text.as_bytes()
        .chunks(2)
        .filter_map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
        })
        .collect()
}

fn select_sql(target: &Target, cursor: Option<&Cursor>, sql: &mut Sql, limit: i64) -> (String, Vec<Bind>) {
    let column = |i: usize| {
        target
            .sealed
            .get(i)
            .map(|c| format!("t.{c}"))
            .unwrap_or("NULL".to_owned())
    };
    let index = |i: usize| {
        target
            .indexes
            .get(i)
            .map(|x| format!("t.{}", x.column))
            .unwrap_or("NULL".to_owned())
    };
    let source = if target
        .indexes
        .iter()
        .any(|i| matches!(i.source, Source::ClientIdentityCode))
    {
        "(SELECT c.identity_code FROM clients c WHERE c.registrar_id = t.registrar_id AND c.id = t.client_id)"
    } else {
        "NULL"
    };
    let (k2_text, k2_int, k2_bin, order) = match target.second {
        Second::None => (
            "NULL".to_owned(),
            "NULL".to_owned(),
            "NULL".to_owned(),
            format!("t.{}", target.first),
        ),
        Second::Text(c) => (
            format!("t.{c}"),
            "NULL".into(),
            "NULL".into(),
            format!("t.{}, t.{c}", target.first),
        ),
        Second::BigInt(c) => (
            "NULL".into(),
            format!("t.{c}"),
            "NULL".into(),
            format!("t.{}, t.{c}", target.first),
        ),
        Second::Binary(c) => (
            "NULL".into(),
            "NULL".into(),
            format!("t.{c}"),
            format!("t.{}, t.{c}", target.first),
        ),
    };
    let mut binds = Vec::new();
    let filter = match cursor {
        None => String::new(),
        Some(cursor) => {
            let first = sql.placeholder();
            binds.push(Bind::Text(cursor.first.clone()));
            match cursor.second_bind(target.second) {
                None => format!("WHERE t.{} > {first}", target.first),
                Some(bind) => {
                    let second = sql.placeholder();
                    binds.push(bind);
                    format!("WHERE ({order}) > ({first}, {second})")
                }
            }
        }
    };
    let limit_at = sql.placeholder();
    binds.push(Bind::BigInt(limit));
    let text = format!(
        "SELECT t.{first} AS k1, {k2_text} AS k2_text, {k2_int} AS k2_int, {k2_bin} AS k2_bin, \
         {row_id} AS row_id, {v0} AS v0, {v1} AS v1, {v2} AS v2, {v3} AS v3, {v4} AS v4, {v5} AS v5, \
         {v6} AS v6, {v7} AS v7, {v8} AS v8, {v9} AS v9, {source} AS source, {i0} AS i0, {i1} AS i1 FROM {table} t {filter} ORDER BY {order} \
         LIMIT {limit_at}",
        first = target.first,
        row_id = target.row_id,
        v0 = column(0),
        v1 = column(1),
        v2 = column(2),
        v3 = column(3),
        v4 = column(4),
        v5 = column(5),
        v6 = column(6),
        v7 = column(7),
        v8 = column(8),
        v9 = column(9),
        i0 = index(0),
        i1 = index(1),
        table = target.name,
    );
    (text, binds)
}

/// What one row becomes: new values for the columns that change.
struct RowChange {
    sets: Vec<(&'static str, Option<Vec<u8>>)>,
    resealed: u64,
}

fn rekey_row(keyring: &Keyring, target: &Target, row: &PassRow) -> Result<RowChange, RotationError> {
    let cipher = FieldCipher::new(keyring);
    let crypto = |column: &'static str| {
        move |source: CryptoError| RotationError::Crypto {
            target: target.name,
            column,
            source,
        }
    };
    let mut sets = Vec::new();
    let mut resealed = 0;
    let mut computed: [Option<[u8; 32]>; MAX_INDEXES] = [None, None];
    for (position, column) in target.sealed.iter().enumerate() {
        let Some(Some(value)) = row.values().get(position).copied() else {
            continue;
        };
        let context = FieldContext::new(target.name, column, &row.row_id);
        let index_of = target
            .indexes
            .iter()
            .position(|i| matches!(i.source, Source::Sealed(p) if p == position));
        let new_value = match index_of.and_then(|i| target.indexes.get(i).map(|x| (i, x))) {
            Some((slot, index)) => {
                let normalise = index.normalise;
                let out = cipher
                    .reseal_and_index(&context, value, index.domain, |plain| normalise.apply(plain))
                    .map_err(crypto(column))?;
                if let Some(computed_slot) = computed.get_mut(slot) {
                    *computed_slot = out.index;
                }
                out.value
            }
            None => cipher.reseal(&context, value).map_err(crypto(column))?,
        };
        if let Some(new_value) = new_value {
            sets.push((*column, Some(new_value)));
            resealed += 1;
        }
    }
    for (slot, index) in target.indexes.iter().enumerate() {
        if let (Source::ClientIdentityCode, Some(source)) = (index.source, &row.source) {
            let context = FieldContext::new("clients", "identity_code", &row.row_id);
            let normalise = index.normalise;
            let out = cipher
                .reseal_and_index(&context, source, index.domain, |plain| normalise.apply(plain))
                .map_err(crypto(index.column))?;
            if let Some(computed_slot) = computed.get_mut(slot) {
                *computed_slot = out.index;
            }
        }
        let current = row.indexes().get(slot).copied().cloned().flatten();
        if let Some(Some(new_index)) = computed.get(slot)
            && current.as_deref() != Some(new_index.as_slice())
        {
            sets.push((index.column, Some(new_index.to_vec())));
        }
    }
    Ok(RowChange { sets, resealed })
}

fn update_sql(target: &Target, row: &PassRow, change: &RowChange, sql: &mut Sql) -> (String, Vec<Bind>) {
    let mut binds = Vec::new();
    let mut assignments = Vec::new();
    for (column, value) in &change.sets {
        assignments.push(format!("{column} = {}", sql.placeholder()));
        binds.push(Bind::Binary(value.clone()));
    }
    let mut conditions = vec![format!("{} = {}", target.first, sql.placeholder())];
    binds.push(Bind::Text(row.k1.clone()));
    match target.second {
        Second::None => {}
        Second::Text(c) => {
            conditions.push(format!("{c} = {}", sql.placeholder()));
            binds.push(Bind::Text(row.k2_text.clone().unwrap_or_default()));
        }
        Second::BigInt(c) => {
            conditions.push(format!("{c} = {}", sql.placeholder()));
            binds.push(Bind::BigInt(row.k2_int.unwrap_or_default()));
        }
        Second::Binary(c) => {
            conditions.push(format!("{c} = {}", sql.placeholder()));
            binds.push(Bind::Binary(row.k2_bin.clone()));
        }
    }
    // Compare and swap: the row is changed only if every value read is still there.
    let same = sql.same();
    for (position, column) in target.sealed.iter().enumerate() {
        conditions.push(format!("{column} {same} {}", sql.placeholder()));
        binds.push(Bind::Binary(row.values().get(position).copied().cloned().flatten()));
    }
    for (slot, index) in target.indexes.iter().enumerate() {
        if matches!(target.second, Second::Binary(c) if c == index.column) {
            continue;
        }
        conditions.push(format!("{} {same} {}", index.column, sql.placeholder()));
        binds.push(Bind::Binary(row.indexes().get(slot).copied().cloned().flatten()));
    }
    (
        format!(
            "UPDATE {} SET {} WHERE {}",
            target.name,
            assignments.join(", "),
            conditions.join(" AND ")
        ),
        binds,
    )
}

/// One committed batch of a pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batch {
    pub rows: u64,
    pub values_resealed: u64,
    /// Rows a concurrent change got to first (left as that change wrote them).
    pub rows_skipped: u64,
    pub done: bool,
}

fn saved_cursor(conn: &mut DbConnection, rotation_id: &str, target: &str) -> QueryResult<(Option<String>, bool)> {
    key_rotation_progress::table
        .filter(key_rotation_progress::rotation_id.eq(rotation_id))
        .filter(key_rotation_progress::target.eq(target))
        .select((key_rotation_progress::cursor, key_rotation_progress::done))
        .first(conn)
        .optional()
        .map(|row| row.unwrap_or((None, false)))
}

fn save_progress(
    conn: &mut DbConnection,
    rotation_id: &str,
    target: &str,
    cursor: Option<&Cursor>,
    batch: &Batch,
) -> QueryResult<()> {
    let cursor = cursor.and_then(|c| serde_json::to_string(c).ok());
    diesel::update(
        key_rotation_progress::table
            .filter(key_rotation_progress::rotation_id.eq(rotation_id))
            .filter(key_rotation_progress::target.eq(target)),
    )
    .set((
        key_rotation_progress::cursor.eq(cursor),
        key_rotation_progress::done.eq(batch.done),
        key_rotation_progress::rows_done.eq(key_rotation_progress::rows_done + batch.rows as i64),
    ))
    .execute(conn)?;
    diesel::update(key_rotations::table.filter(key_rotations::id.eq(rotation_id)))
        .set(key_rotations::values_resealed.eq(key_rotations::values_resealed + batch.values_resealed as i64))
        .execute(conn)?;
    Ok(())
}

/// Runs the next batch of the pass `target` of the rotation `rotation_id` and commits it with
/// its progress; a pass already done returns a done batch of no rows. `before_commit` sees the
/// batch inside its transaction (fault injection for the crash tests).
pub fn next_batch(
    conn: &mut DbConnection,
    keyring: &Keyring,
    rotation_id: &str,
    target: &str,
    batch_size: i64,
    before_commit: &mut dyn FnMut(&Batch),
) -> Result<Batch, RotationError> {
    if target == HISTORY {
        return next_history_batch(conn, keyring, rotation_id, batch_size, before_commit);
    }
    let Some(spec) = TARGETS.iter().find(|t| t.name == target) else {
        return Ok(Batch {
            done: true,
            ..Batch::default()
        });
    };
    write_transaction_as(conn, ACTOR, |conn| {
        let (saved, done) = saved_cursor(conn, rotation_id, target)?;
        if done {
            return Ok(Batch {
                done: true,
                ..Batch::default()
            });
        }
        let cursor: Option<Cursor> = saved.as_deref().and_then(|c| serde_json::from_str(c).ok());
        let (select, binds) = select_sql(spec, cursor.as_ref(), &mut Sql::new(conn), batch_size);
        let rows = load_rows(conn, &select, binds)?;
        let mut batch = Batch {
            rows: rows.len() as u64,
            done: (rows.len() as i64) < batch_size,
            ..Batch::default()
        };
        for row in &rows {
            let change = rekey_row(keyring, spec, row)?;
            if change.sets.is_empty() {
                continue;
            }
            let (update, binds) = update_sql(spec, row, &change, &mut Sql::new(conn));
            if execute(conn, &update, binds)? == 1 {
                batch.values_resealed += change.resealed;
            } else {
                batch.rows_skipped += 1;
            }
        }
        let next = rows.last().map(Cursor::of).or(cursor);
        save_progress(conn, rotation_id, target, next.as_ref(), &batch)?;
        before_commit(&batch);
        Ok(batch)
    })
}

#[derive(QueryableByName, Debug)]
struct HistoryRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    row_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    old_row: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    new_row: Option<String>,
}

/// A sealed value as the history's JSON holds it: upper-case hex on SQLite (`hex()`), `\x` and
/// lower-case hex on PostgreSQL (`to_jsonb` of a `bytea`). The re-encrypted value keeps the form.
fn decode_history_value(text: &str) -> (Vec<u8>, bool) {
    match text.strip_prefix("\\x") {
        Some(hex) => (from_hex(hex), true),
        None => (from_hex(text), false),
    }
}

fn encode_history_value(bytes: &[u8], postgres_form: bool) -> String {
    let hex = rekisteri_crypto::to_hex(bytes);
    if postgres_form {
        format!("\\x{hex}")
    } else {
        hex.to_uppercase()
    }
}

/// Re-encrypts the sealed values in one history document; `None` when nothing changes.
fn rekey_document(
    keyring: &Keyring,
    target: &Target,
    row_id: &str,
    document: &str,
) -> Result<Option<String>, RotationError> {
    let mut json: serde_json::Value = serde_json::from_str(document).map_err(|_| RotationError::History { id: 0 })?;
    let Some(fields) = json.as_object_mut() else {
        return Ok(None);
    };
    let cipher = FieldCipher::new(keyring);
    let mut changed = false;
    for (position, column) in target.sealed.iter().enumerate() {
        let Some(serde_json::Value::String(text)) = fields.get(*column) else {
            continue;
        };
        let (bytes, postgres_form) = decode_history_value(text);
        if bytes.is_empty() {
            continue;
        }
        let context = FieldContext::new(target.name, column, row_id);
        let index = target
            .indexes
            .iter()
            .find(|i| matches!(i.source, Source::Sealed(p) if p == position));
        let crypto = |source| RotationError::Crypto {
            target: HISTORY,
            column,
            source,
        };
        let (value, new_index) = match index {
            Some(index) => {
                let normalise = index.normalise;
                let out = cipher
                    .reseal_and_index(&context, &bytes, index.domain, |plain| normalise.apply(plain))
                    .map_err(crypto)?;
                (out.value, out.index.map(|i| (index.column, i)))
            }
            None => (cipher.reseal(&context, &bytes).map_err(crypto)?, None),
        };
        if let Some(value) = value {
            fields.insert((*column).to_owned(), encode_history_value(&value, postgres_form).into());
            changed = true;
        }
        if let Some((column, new_index)) = new_index
            && fields.get(column).is_some_and(|v| v.is_string())
        {
            let encoded: serde_json::Value = encode_history_value(&new_index, postgres_form).into();
            if fields.get(column) != Some(&encoded) {
                fields.insert(column.to_owned(), encoded);
                changed = true;
            }
        }
    }
    Ok(changed.then(|| json.to_string()))
}

fn next_history_batch(
    conn: &mut DbConnection,
    keyring: &Keyring,
    rotation_id: &str,
    batch_size: i64,
    before_commit: &mut dyn FnMut(&Batch),
) -> Result<Batch, RotationError> {
    write_transaction_as(conn, ACTOR, |conn| {
        let (saved, done) = saved_cursor(conn, rotation_id, HISTORY)?;
        if done {
            return Ok(Batch {
                done: true,
                ..Batch::default()
            });
        }
        let after = saved
            .as_deref()
            .and_then(|c| serde_json::from_str::<Cursor>(c).ok())
            .and_then(|c| c.history_id)
            .unwrap_or(0);
        let tables: Vec<String> = TARGETS
            .iter()
            .filter(|t| !t.sealed.is_empty())
            .map(|t| format!("'{}'", t.name))
            .collect();
        let mut sql = Sql::new(conn);
        let select = format!(
            "SELECT id, table_name, row_id, {old} AS old_row, {new} AS new_row FROM change_history \
             WHERE id > {after_at} AND table_name IN ({tables}) ORDER BY id LIMIT {limit_at}",
            old = if sql.postgres { "old_row::text" } else { "old_row" },
            new = if sql.postgres { "new_row::text" } else { "new_row" },
            after_at = sql.placeholder(),
            tables = tables.join(", "),
            limit_at = sql.placeholder(),
        );
        let rows: Vec<HistoryRow> = match conn {
            DbConnection::Sqlite(inner) => diesel::sql_query(&select)
                .bind::<BigInt, _>(after)
                .bind::<BigInt, _>(batch_size)
                .load(inner)?,
            DbConnection::Postgres(inner) => diesel::sql_query(&select)
                .bind::<BigInt, _>(after)
                .bind::<BigInt, _>(batch_size)
                .load(inner)?,
        };
        let mut batch = Batch {
            rows: rows.len() as u64,
            done: (rows.len() as i64) < batch_size,
            ..Batch::default()
        };
        for row in &rows {
            let Some(target) = TARGETS.iter().find(|t| t.name == row.table_name) else {
                continue;
            };
            let rekey = |document: &Option<String>| -> Result<Option<String>, RotationError> {
                match document {
                    Some(text) => rekey_document(keyring, target, &row.row_id, text).map_err(|e| match e {
                        RotationError::History { .. } => RotationError::History { id: row.id },
                        other => other,
                    }),
                    None => Ok(None),
                }
            };
            let (old, new) = (rekey(&row.old_row)?, rekey(&row.new_row)?);
            if old.is_none() && new.is_none() {
                continue;
            }
            let mut sql = Sql::new(conn);
            let cast = if sql.postgres { "::jsonb" } else { "" };
            let same = sql.same();
            let update = format!(
                "UPDATE change_history SET old_row = {}{cast}, new_row = {}{cast} WHERE id = {} \
                 AND old_row {same} {}{cast} AND new_row {same} {}{cast}",
                sql.placeholder(),
                sql.placeholder(),
                sql.placeholder(),
                sql.placeholder(),
                sql.placeholder(),
            );
            let text = |v: Option<String>| v.map(Bind::Text).unwrap_or(Bind::Binary(None));
            let binds = vec![
                text(old.or(row.old_row.clone())),
                text(new.or(row.new_row.clone())),
                Bind::BigInt(row.id),
                text(row.old_row.clone()),
                text(row.new_row.clone()),
            ];
            if execute_history(conn, &update, binds)? == 1 {
                batch.values_resealed += 1;
            } else {
                batch.rows_skipped += 1;
            }
        }
        let next = rows.last().map(|r| Cursor {
            first: String::new(),
            text: None,
            int: None,
            hex: None,
            history_id: Some(r.id),
        });
        let kept = Cursor {
            first: String::new(),
            text: None,
            int: None,
            hex: None,
            history_id: Some(after),
        };
        save_progress(conn, rotation_id, HISTORY, Some(next.as_ref().unwrap_or(&kept)), &batch)?;
        before_commit(&batch);
        Ok(batch)
    })
}

/// History documents are bound as text (or NULL of text).
fn execute_history(conn: &mut DbConnection, sql: &str, binds: Vec<Bind>) -> QueryResult<usize> {
    match conn {
        DbConnection::Sqlite(inner) => {
            let mut query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
            for bind in binds {
                query = match bind {
                    Bind::Text(v) => query.bind::<Nullable<Text>, _>(Some(v)),
                    Bind::BigInt(v) => query.bind::<BigInt, _>(v),
                    Bind::Binary(_) => query.bind::<Nullable<Text>, _>(None::<String>),
                };
            }
            query.execute(inner)
        }
        DbConnection::Postgres(inner) => {
            let mut query = diesel::sql_query(sql).into_boxed::<diesel::pg::Pg>();
            for bind in binds {
                query = match bind {
                    Bind::Text(v) => query.bind::<Nullable<Text>, _>(Some(v)),
                    Bind::BigInt(v) => query.bind::<BigInt, _>(v),
                    Bind::Binary(_) => query.bind::<Nullable<Text>, _>(None::<String>),
                };
            }
            query.execute(inner)
        }
    }
}

/// How many rows each pass will walk, for a progress bar.
pub fn rows_to_walk(conn: &mut DbConnection) -> QueryResult<Vec<(&'static str, i64)>> {
    let mut out = Vec::new();
    for target in TARGETS {
        out.push((
            target.name,
            count(conn, &format!("SELECT COUNT(*) AS n FROM {}", target.name))?,
        ));
    }
    let tables: Vec<String> = TARGETS
        .iter()
        .filter(|t| !t.sealed.is_empty())
        .map(|t| format!("'{}'", t.name))
        .collect();
    out.push((
        HISTORY,
        count(
            conn,
            &format!(
                "SELECT COUNT(*) AS n FROM change_history WHERE table_name IN ({})",
                tables.join(", ")
            ),
        )?,
    ));
    Ok(out)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(conn: &mut DbConnection, sql: &str) -> QueryResult<i64> {
    match conn {
        DbConnection::Sqlite(inner) => diesel::sql_query(sql).get_result::<Count>(inner).map(|c| c.n),
        DbConnection::Postgres(inner) => diesel::sql_query(sql).get_result::<Count>(inner).map(|c| c.n),
    }
}

/// The values still sealed under `key_id`, per table and column (the change history's copies
/// under `change_history`): what `keys retire` refuses on. Reads ciphertext headers only.
pub fn values_under_key(conn: &mut DbConnection, key_id: &str) -> QueryResult<BTreeMap<String, u64>> {
    let mut found = BTreeMap::new();
    let names = |bytes: &[u8]| FieldCipher::key_id_of(bytes).is_ok_and(|id| id == key_id);
    for target in TARGETS.iter().filter(|t| !t.sealed.is_empty()) {
        let mut cursor: Option<Cursor> = None;
        loop {
            let (select, binds) = select_sql(target, cursor.as_ref(), &mut Sql::new(conn), 2_000);
            let rows = load_rows(conn, &select, binds)?;
            for row in &rows {
                for (position, column) in target.sealed.iter().enumerate() {
                    if let Some(Some(value)) = row.values().get(position).copied()
                        && names(value)
                    {
                        *found.entry(format!("{}.{column}", target.name)).or_insert(0) += 1;
                    }
                }
            }
            match rows.last() {
                Some(last) if rows.len() == 2_000 => cursor = Some(Cursor::of(last)),
                _ => break,
            }
        }
    }
    let postgres = matches!(conn, DbConnection::Postgres(_));
    let mut after = 0i64;
    loop {
        let select = if postgres {
            "SELECT id, table_name, row_id, old_row::text AS old_row, new_row::text AS new_row \
             FROM change_history WHERE id > $1 ORDER BY id LIMIT 2000"
        } else {
            "SELECT id, table_name, row_id, old_row, new_row FROM change_history WHERE id > ? ORDER BY id LIMIT 2000"
        };
        let rows: Vec<HistoryRow> = match conn {
            DbConnection::Sqlite(inner) => diesel::sql_query(select).bind::<BigInt, _>(after).load(inner)?,
            DbConnection::Postgres(inner) => diesel::sql_query(select).bind::<BigInt, _>(after).load(inner)?,
        };
        for row in &rows {
            let Some(target) = TARGETS.iter().find(|t| t.name == row.table_name) else {
                continue;
            };
            for document in [&row.old_row, &row.new_row].into_iter().flatten() {
                let Ok(serde_json::Value::Object(fields)) = serde_json::from_str::<serde_json::Value>(document) else {
                    continue;
                };
                for column in target.sealed {
                    if let Some(serde_json::Value::String(text)) = fields.get(*column)
                        && names(&decode_history_value(text).0)
                    {
                        *found.entry(format!("{HISTORY}.{}.{column}", target.name)).or_insert(0) += 1;
                    }
                }
            }
        }
        match rows.last() {
            Some(last) if rows.len() == 2_000 => after = last.id,
            _ => break,
        }
    }
    Ok(found)
}

/// Audit-log entries with a subject index written before `until`: found by subject only while
/// the blind key they were indexed with is held.
pub fn audit_entries_indexed_before(conn: &mut DbConnection, until: PrimitiveDateTime) -> QueryResult<i64> {
    use crate::schema::{disclosure_log, usage_log};
    let usage: i64 = usage_log::table
        .filter(usage_log::subject_index.is_not_null())
        .filter(usage_log::occurred_at.lt(until))
        .count()
        .get_result(conn)?;
    let disclosure: i64 = disclosure_log::table
        .filter(disclosure_log::subject_index.is_not_null())
        .filter(disclosure_log::occurred_at.lt(until))
        .count()
        .get_result(conn)?;
    Ok(usage + disclosure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_values_keep_their_backend_form() {
        let (bytes, pg) = decode_history_value("\\x01026b31");
        assert_eq!((bytes.as_slice(), pg), (&[1u8, 2, 0x6b, 0x31][..], true));
        assert_eq!(encode_history_value(&bytes, true), "\\x01026b31");
        let (bytes, pg) = decode_history_value("01026B31");
        assert!(!pg);
        assert_eq!(encode_history_value(&bytes, false), "01026B31");
    }

    #[test]
    fn no_target_has_more_columns_than_a_row_carries() {
        for target in TARGETS {
            assert!(target.sealed.len() <= MAX_SEALED, "{}", target.name);
            assert!(target.indexes.len() <= MAX_INDEXES, "{}", target.name);
        }
    }

    #[test]
    fn normalisation_matches_the_lookups() {
        assert_eq!(
            Normalise::Email.apply(b" Maija.Meikalainen@Example.FI ").unwrap(),
            b"maija.meikalainen@example.fi"
        );
        assert_eq!(
            Normalise::VtjMessage
                .apply(br#"{"henkilotunnus":"131052-308T","x":1}"#)
                .unwrap(),
            b"131052-308T"
        );
        assert_eq!(Normalise::VtjMessage.apply(b"{}"), None);
    }
}
