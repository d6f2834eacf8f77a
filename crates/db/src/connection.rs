use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;

/// A connection to either backend. Queries written once against the shared schema run on both;
/// where the backends differ (batch inserts, upserts, `RETURNING` with enums), code matches on
/// the variant.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl DbConnection {
    pub fn backend(&self) -> crate::Backend {
        match self {
            Self::Sqlite(_) => crate::Backend::Sqlite,
            Self::Postgres(_) => crate::Backend::Postgres,
        }
    }
}
