//! Reading entries for verification. Each row is hashed while it is decoded, straight from the
//! database's own buffers: no entry is copied into owned strings, and no encoding is assembled.
//! The columns and their order follow the canonical encoding (`canonical.rs`, `docs/audit.md`);
//! `UsageRow::canonical` and its siblings are the reference this must agree with, and the
//! tests check that it does.

use diesel::backend::Backend;
use diesel::connection::DefaultLoadingMode;
use diesel::deserialize::{self, FromSql, QueryableByName};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::result::{UnexpectedEndOfRow, UnexpectedNullError};
use diesel::row::{Field, NamedRow};
use diesel::sql_types::{BigInt, Text, Timestamp};
use diesel::sqlite::Sqlite;
use rekisteri_crypto::ChainHash;
use rekisteri_db::DbConnection;
use time::PrimitiveDateTime;

use crate::LogKind;
use crate::canonical::Canonical;

/// An entry as the walk sees it.
#[derive(Debug)]
pub struct Walked {
    pub seq: i64,
    pub link: Link,
}

#[derive(Debug)]
pub enum Link {
    /// The stored `prev_hash`, the hash recomputed over the entry's stored content linked to it,
    /// and whether the stored `hash` equals that.
    Hashed {
        prev: ChainHash,
        computed: ChainHash,
        matches: bool,
    },
    /// A stored `prev_hash` that is not a hash at all.
    Malformed(Vec<u8>),
}

/// How a column after `occurred_at` goes into the encoding.
#[derive(Clone, Copy)]
enum Column {
    Text,
    OptionalText,
    OptionalBinary,
}

/// A log table: its name in the encoding and its columns after `chain_id`, `seq` and
/// `occurred_at`, in the encoding's order.
struct Log {
    name: &'static str,
    table: &'static str,
    columns: &'static [(&'static str, Column)],
}

const USAGE: Log = Log {
    name: "usage",
    table: "usage_log",
    columns: &[
        ("registrar_id", Column::Text),
        ("log_controller_id", Column::Text),
        ("subject_index", Column::OptionalBinary),
        ("data_kind", Column::Text),
        ("data_id", Column::OptionalText),
        ("outcome", Column::Text),
        ("actor_kind", Column::Text),
        ("actor_id", Column::Text),
        ("actor_name", Column::OptionalText),
        ("on_behalf_of", Column::OptionalText),
        ("service_unit_oid", Column::OptionalText),
        ("purpose", Column::Text),
        ("access_basis", Column::Text),
        ("special_reason", Column::OptionalText),
        ("request_id", Column::Text),
        ("calling_system", Column::OptionalText),
    ],
};

const DISCLOSURE: Log = Log {
    name: "disclosure",
    table: "disclosure_log",
    columns: &[
        ("registrar_id", Column::Text),
        ("subject_index", Column::OptionalBinary),
        ("description", Column::Text),
        ("discloser_kind", Column::Text),
        ("discloser_id", Column::Text),
        ("recipient_kind", Column::Text),
        ("recipient_id", Column::Text),
        ("recipient_name", Column::OptionalText),
        ("purpose", Column::Text),
        ("legal_basis", Column::Text),
        ("request_id", Column::Text),
    ],
};

const SECURITY: Log = Log {
    name: "security",
    table: "security_events",
    columns: &[
        ("organisation_id", Column::OptionalText),
        ("event_type", Column::Text),
        ("actor_kind", Column::Text),
        ("actor_id", Column::OptionalText),
        ("details", Column::Text),
        ("request_id", Column::OptionalText),
    ],
};

fn log_of(kind: LogKind) -> &'static Log {
    match kind {
        LogKind::Usage => &USAGE,
        LogKind::Disclosure => &DISCLOSURE,
        LogKind::Security => &SECURITY,
    }
}

/// Columns 0..5 are fixed: `prev_hash` first, as the hash starts with it.
const PREV_HASH: usize = 0;
const HASH: usize = 1;
const CHAIN_ID: usize = 2;
const SEQ: usize = 3;
const OCCURRED_AT: usize = 4;
const FIRST_OTHER: usize = 5;

/// A page of a chain, `after < seq <= last`, in order, on the primary key.
fn page_sql(log: &Log, postgres: bool) -> String {
    let mut sql = format!(
        "SELECT prev_hash, hash, chain_id, seq, occurred_at, {} FROM {} WHERE chain_id = ",
        log.columns.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", "),
        log.table
    );
    sql.push_str(if postgres {
        "$1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4"
    } else {
        "? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
    });
    sql
}

/// Reading a value in place, as diesel's own `FromSql` for `i64`, `String`, `Vec<u8>` and
/// `PrimitiveDateTime` would read it, so the bytes hashed are the bytes a `UsageRow` would hold.
pub trait Decode: Backend {
    fn long(value: Self::RawValue<'_>) -> deserialize::Result<i64>;
    fn time(value: Self::RawValue<'_>) -> deserialize::Result<PrimitiveDateTime>;
    fn text<R>(value: Self::RawValue<'_>, read: impl FnOnce(&str) -> R) -> deserialize::Result<R>;
    fn blob<R>(value: Self::RawValue<'_>, read: impl FnOnce(&[u8]) -> R) -> R;
}

impl Decode for Sqlite {
    fn long(value: Self::RawValue<'_>) -> deserialize::Result<i64> {
        <i64 as FromSql<BigInt, Sqlite>>::from_sql(value)
    }

    fn time(mut value: Self::RawValue<'_>) -> deserialize::Result<PrimitiveDateTime> {
        if let Some(time) = sqlite_time(value.read_text()) {
            return Ok(time);
        }
        <PrimitiveDateTime as FromSql<Timestamp, Sqlite>>::from_sql(value)
    }

    fn text<R>(mut value: Self::RawValue<'_>, read: impl FnOnce(&str) -> R) -> deserialize::Result<R> {
        Ok(read(value.read_text()))
    }

    fn blob<R>(mut value: Self::RawValue<'_>, read: impl FnOnce(&[u8]) -> R) -> R {
        read(value.read_blob())
    }
}

impl Decode for Pg {
    fn long(value: Self::RawValue<'_>) -> deserialize::Result<i64> {
        <i64 as FromSql<BigInt, Pg>>::from_sql(value)
    }

    fn time(value: Self::RawValue<'_>) -> deserialize::Result<PrimitiveDateTime> {
        <PrimitiveDateTime as FromSql<Timestamp, Pg>>::from_sql(value)
    }

    fn text<R>(value: Self::RawValue<'_>, read: impl FnOnce(&str) -> R) -> deserialize::Result<R> {
        Ok(read(std::str::from_utf8(value.as_bytes())?))
    }

    fn blob<R>(value: Self::RawValue<'_>, read: impl FnOnce(&[u8]) -> R) -> R {
        read(value.as_bytes())
    }
}

/// The form diesel writes timestamps to SQLite in, `YYYY-MM-DD HH:MM:SS[.f{1,9}]`, read the way
/// diesel reads it, without its search through a list of formats. `None` for anything else:
/// diesel's own parser decides then.
fn sqlite_time(text: &str) -> Option<PrimitiveDateTime> {
    let bytes = text.as_bytes();
    let (whole, fraction) = bytes.split_at_checked(19)?;
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        whole
            .get(range)?
            .iter()
            .try_fold(0u32, |n, &b| b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0')))
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b' '), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, sep)| whole.get(at) != Some(&sep)) {
        return None;
    }
    let nanosecond = match fraction {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) => {
            let value = digits.iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0'));
            value * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let month = time::Month::try_from(u8::try_from(number(5..7)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(number(0..4)?).ok()?, month, number(8..10)? as u8).ok()?;
    let time = time::Time::from_hms_nano(
        number(11..13)? as u8,
        number(14..16)? as u8,
        number(17..19)? as u8,
        nanosecond,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time))
}

fn column<'a, DB: Backend, T>(
    row: &impl NamedRow<'a, DB>,
    index: usize,
    read: impl FnOnce(Option<DB::RawValue<'_>>) -> deserialize::Result<T>,
) -> deserialize::Result<T> {
    let field = diesel::row::Row::get(row, index).ok_or(UnexpectedEndOfRow)?;
    read(field.value())
}

fn required<T>(value: Option<T>) -> deserialize::Result<T> {
    value.ok_or_else(|| UnexpectedNullError.into())
}

fn walk<'a, DB: Decode>(row: &impl NamedRow<'a, DB>, log: &Log) -> deserialize::Result<Walked> {
    let seq = column(row, SEQ, |v| DB::long(required(v)?))?;
    let prev = column(row, PREV_HASH, |v| {
        Ok(DB::blob(required(v)?, |b| {
            ChainHash::try_from(b).map_err(|_| b.to_vec())
        }))
    })?;
    let prev = match prev {
        Ok(prev) => prev,
        Err(malformed) => {
            return Ok(Walked {
                seq,
                link: Link::Malformed(malformed),
            });
        }
    };
    let mut canonical = Canonical::hashing(&prev, log.name);
    column(row, CHAIN_ID, |v| {
        DB::text(required(v)?, |t| {
            canonical.text(Some(t));
        })
    })?;
    canonical.number(seq);
    canonical.time(column(row, OCCURRED_AT, |v| DB::time(required(v)?))?);
    for (index, (_, kind)) in log.columns.iter().enumerate() {
        column(row, FIRST_OTHER + index, |v| match (kind, v) {
            (Column::Text, None) => Err(UnexpectedNullError.into()),
            (_, None) => {
                canonical.text(None);
                Ok(())
            }
            (Column::Text | Column::OptionalText, Some(v)) => DB::text(v, |t| {
                canonical.text(Some(t));
            }),
            (Column::OptionalBinary, Some(v)) => {
                DB::blob(v, |b| {
                    canonical.binary(Some(b));
                });
                Ok(())
            }
        })?;
    }
    let computed = canonical.finish_hash();
    let matches = column(row, HASH, |v| Ok(DB::blob(required(v)?, |b| b == computed.as_slice())))?;
    Ok(Walked {
        seq,
        link: Link::Hashed {
            prev,
            computed,
            matches,
        },
    })
}

macro_rules! walk_type {
    ($name:ident, $log:expr) => {
        struct $name(Walked);

        impl<DB: Decode> QueryableByName<DB> for $name {
            fn build<'a>(row: &impl NamedRow<'a, DB>) -> deserialize::Result<Self> {
                walk(row, &$log).map(Self)
            }
        }
    };
}

walk_type!(UsageWalk, USAGE);
walk_type!(DisclosureWalk, DISCLOSURE);
walk_type!(SecurityWalk, SECURITY);

/// Hands `visit` the entries of `chain` with `after < seq <= last`, at most `limit`, in order,
/// until it returns false. Returns how many it was handed. Rows are decoded one at a time as
/// `visit` takes them (SQLite streams; PostgreSQL holds the page).
pub fn walk_page(
    conn: &mut DbConnection,
    kind: LogKind,
    chain: &str,
    after: i64,
    last: i64,
    limit: i64,
    visit: &mut dyn FnMut(Walked) -> bool,
) -> QueryResult<i64> {
    let log = log_of(kind);
    let mut seen = 0;
    macro_rules! run {
        ($conn:expr, $postgres:expr, $walk:ty) => {{
            let rows = diesel::sql_query(page_sql(log, $postgres))
                .bind::<Text, _>(chain)
                .bind::<BigInt, _>(after)
                .bind::<BigInt, _>(last)
                .bind::<BigInt, _>(limit)
                .load_iter::<$walk, DefaultLoadingMode>($conn)?;
            for row in rows {
                seen += 1;
                if !visit(row?.0) {
                    break;
                }
            }
        }};
    }
    match (conn, kind) {
        (DbConnection::Sqlite(c), LogKind::Usage) => run!(c, false, UsageWalk),
        (DbConnection::Sqlite(c), LogKind::Disclosure) => run!(c, false, DisclosureWalk),
        (DbConnection::Sqlite(c), LogKind::Security) => run!(c, false, SecurityWalk),
        (DbConnection::Postgres(c), LogKind::Usage) => run!(c, true, UsageWalk),
        (DbConnection::Postgres(c), LogKind::Disclosure) => run!(c, true, DisclosureWalk),
        (DbConnection::Postgres(c), LogKind::Security) => run!(c, true, SecurityWalk),
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn sqlite_times_read_as_diesel_reads_them() {
        for (text, expected) in [
            ("2026-11-25 10:00:00.5", Some(datetime!(2026-11-25 10:00:00.5))),
            (
                "2026-11-25 10:00:00.123456",
                Some(datetime!(2026-11-25 10:00:00.123456)),
            ),
            (
                "2026-11-25 10:00:00.123456789",
                Some(datetime!(2026-11-25 10:00:00.123456789)),
            ),
            ("2026-11-25 10:00:00", Some(datetime!(2026-11-25 10:00:00))),
            (
                "2024-02-29 23:59:59.000001",
                Some(datetime!(2024-02-29 23:59:59.000001)),
            ),
            ("2025-02-29 10:00:00", None),
            ("2026-11-25 24:00:00", None),
            ("2026-11-25 10:00:60", None),
            ("2026-11-25T10:00:00", None),
            ("2026-11-25 10:00:00.", None),
            ("2026-11-25 10:00:00.1234567890", None),
            ("2026-11-25 10:00:00Z", None),
            ("2026-1-25 10:00:00", None),
            ("+026-11-25 10:00:00", None),
        ] {
            assert_eq!(sqlite_time(text), expected, "{text}");
            // Whatever the short cut reads, diesel reads the same.
            let mut conn = SqliteConnection::establish(":memory:").unwrap();
            let diesel = diesel::select(diesel::dsl::sql::<Timestamp>(&format!("'{text}'")))
                .get_result::<PrimitiveDateTime>(&mut conn);
            if let Some(expected) = expected {
                assert_eq!(diesel.ok(), Some(expected), "{text}");
            }
        }
    }
}
