//! The passes' dynamic SQL on either backend: the row a pass reads, bound values, the keyset
//! cursor, and running the statements.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Nullable, Text};

use super::targets::Second;
use crate::DbConnection;

pub(super) const MAX_SEALED: usize = 10;
pub(super) const MAX_INDEXES: usize = 2;

/// One row as a pass reads it: its key, its row id, up to ten sealed values, the plaintext
/// source of an index kept elsewhere, and up to two current indexes.
#[derive(QueryableByName, Debug)]
pub(super) struct PassRow {
    #[diesel(sql_type = Text)]
    pub(super) k1: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub(super) k2_text: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(super) k2_int: Option<i64>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub(super) k2_bin: Option<Vec<u8>>,
    #[diesel(sql_type = Text)]
    pub(super) row_id: String,
    #[diesel(sql_type = Nullable<Binary>)]
    pub(super) v0: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub(super) v1: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub(super) v2: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub(super) v3: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub(super) v4: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub(super) v5: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub(super) v6: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub(super) v7: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub(super) v8: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub(super) v9: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub(super) source: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub(super) i0: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub(super) i1: Option<Vec<u8>>,
}

impl PassRow {
    pub(super) fn values(&self) -> [&Option<Vec<u8>>; MAX_SEALED] {
        [
            &self.v0, &self.v1, &self.v2, &self.v3, &self.v4, &self.v5, &self.v6, &self.v7, &self.v8, &self.v9,
        ]
    }

    pub(super) fn indexes(&self) -> [&Option<Vec<u8>>; MAX_INDEXES] {
        [&self.i0, &self.i1]
    }
}

/// A bound value of the passes' dynamic statements.
#[derive(Debug, Clone)]
pub(super) enum Bind {
    Text(String),
    BigInt(i64),
    Binary(Option<Vec<u8>>),
}

/// The statements of one pass, written for one backend.
pub(super) struct Sql {
    pub(super) postgres: bool,
    pub(super) next: usize,
}

impl Sql {
    pub(super) fn new(conn: &DbConnection) -> Self {
        Self {
            postgres: matches!(conn, DbConnection::Postgres(_)),
            next: 0,
        }
    }

    pub(super) fn placeholder(&mut self) -> String {
        self.next += 1;
        if self.postgres {
            format!("${}", self.next)
        } else {
            "?".to_owned()
        }
    }

    pub(super) fn same(&self) -> &'static str {
        if self.postgres { "IS NOT DISTINCT FROM" } else { "IS" }
    }
}

/// `sql` with `binds` bound on the connection's backend, then `$run` (`load` or `execute`);
/// `|query, bind| …` binds one value when a statement binds them otherwise than by their kind.
macro_rules! run_bound {
    ($conn:expr, $sql:expr, $binds:expr, $run:ident) => {
        run_bound!($conn, $sql, $binds, $run, |query, bind| match bind {
            Bind::Text(v) => query.bind::<Text, _>(v),
            Bind::BigInt(v) => query.bind::<BigInt, _>(v),
            Bind::Binary(v) => query.bind::<Nullable<Binary>, _>(v),
        })
    };
    ($conn:expr, $sql:expr, $binds:expr, $run:ident, |$query:ident, $bind:ident| $bound:expr) => {
        match $conn {
            DbConnection::Sqlite(inner) => {
                run_bound!(@query diesel::sqlite::Sqlite, $sql, $binds, $query, $bind, $bound).$run(inner)
            }
            DbConnection::Postgres(inner) => {
                run_bound!(@query diesel::pg::Pg, $sql, $binds, $query, $bind, $bound).$run(inner)
            }
        }
    };
    (@query $backend:ty, $sql:expr, $binds:expr, $query:ident, $bind:ident, $bound:expr) => {{
        let mut $query = diesel::sql_query($sql).into_boxed::<$backend>();
        for $bind in $binds {
            $query = $bound;
        }
        $query
    }};
}
pub(super) use run_bound;

pub(super) fn load_rows(conn: &mut DbConnection, sql: &str, binds: Vec<Bind>) -> QueryResult<Vec<PassRow>> {
    run_bound!(conn, sql, binds, load)
}

pub(super) fn execute(conn: &mut DbConnection, sql: &str, binds: Vec<Bind>) -> QueryResult<usize> {
    run_bound!(conn, sql, binds, execute)
}

/// The keyset position of a pass, kept as JSON text in `key_rotation_progress.cursor`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Cursor {
    pub(super) first: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) int: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) history_id: Option<i64>,
}

impl Cursor {
    pub(super) fn of(row: &PassRow) -> Self {
        Self {
            first: row.k1.clone(),
            text: row.k2_text.clone(),
            int: row.k2_int,
            hex: row.k2_bin.as_deref().map(rekisteri_crypto::to_hex),
            history_id: None,
        }
    }

    pub(super) fn second_bind(&self, second: Second) -> Option<Bind> {
        match second {
            Second::None => None,
            Second::Text(_) => Some(Bind::Text(self.text.clone().unwrap_or_default())),
            Second::BigInt(_) => Some(Bind::BigInt(self.int.unwrap_or_default())),
            Second::Binary(_) => Some(Bind::Binary(Some(from_hex(self.hex.as_deref().unwrap_or_default())))),
        }
    }
}

pub(super) fn from_hex(text: &str) -> Vec<u8> {
    text.as_bytes()
        .chunks(2)
        .filter_map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
        })
        .collect()
}
