//! What `rekisteri backup` asks of the database: an online, consistent copy of a SQLite database
//! and the schema version a copy was taken at.

use diesel::RunQueryDsl;
use diesel_migrations::MigrationHarness;

use crate::{DbConnection, DbError};

/// The latest migration applied, e.g. `20261205000022`; `None` on an empty database.
pub fn schema_version(conn: &mut DbConnection) -> Result<Option<String>, DbError> {
    let applied = match conn {
        DbConnection::Sqlite(c) => c.applied_migrations(),
        DbConnection::Postgres(c) => c.applied_migrations(),
    }
    .map_err(|e| DbError::Migration(e.to_string()))?;
    Ok(applied.iter().map(ToString::to_string).max())
}

/// Writes a consistent copy of the SQLite database to `target` (which must not exist) while
/// other connections go on writing: `VACUUM INTO` reads in one read transaction, so the copy is
/// the database as of one commit, WAL included, and never a torn file as copying the file and
/// its WAL by hand can be. `None` on PostgreSQL, whose copies are `pg_dump`'s business.
pub fn copy_sqlite_into(conn: &mut DbConnection, target: &std::path::Path) -> Result<Option<()>, DbError> {
    match conn {
        DbConnection::Sqlite(c) => {
            diesel::sql_query("VACUUM INTO ?")
                .bind::<diesel::sql_types::Text, _>(target.to_string_lossy().into_owned())
                .execute(c)?;
            Ok(Some(()))
        }
        DbConnection::Postgres(_) => Ok(None),
    }
}
