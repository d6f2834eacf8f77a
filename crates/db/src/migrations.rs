//! Per-backend migrations, embedded in the binary (`migrations/sqlite`, `migrations/postgres`).

use diesel::connection::SimpleConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::{DbConnection, DbError};

const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Serialises migration runs of several servers starting at once against one PostgreSQL.
const POSTGRES_MIGRATION_LOCK: i64 = 0x5245_4b49_5354_4552; // "REKISTER"

fn migration_error(e: impl std::fmt::Display) -> DbError {
    DbError::Migration(e.to_string())
}

/// Applies every pending migration; returns the versions applied.
pub fn run_pending(conn: &mut DbConnection) -> Result<Vec<String>, DbError> {
    match conn {
        DbConnection::Sqlite(c) => {
            let applied = c.run_pending_migrations(SQLITE).map_err(migration_error)?;
            Ok(applied.iter().map(|v| v.to_string()).collect())
        }
        DbConnection::Postgres(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({POSTGRES_MIGRATION_LOCK})"))?;
            let result = c
                .run_pending_migrations(POSTGRES)
                .map(|applied| applied.iter().map(|v| v.to_string()).collect());
            c.batch_execute(&format!("SELECT pg_advisory_unlock({POSTGRES_MIGRATION_LOCK})"))?;
            result.map_err(migration_error)
        }
    }
}

/// The versions not yet applied; empty when the schema is current.
pub fn pending(conn: &mut DbConnection) -> Result<Vec<String>, DbError> {
    match conn {
        DbConnection::Sqlite(c) => {
            let pending = c.pending_migrations(SQLITE).map_err(migration_error)?;
            Ok(pending.iter().map(|m| m.name().version().to_string()).collect())
        }
        DbConnection::Postgres(c) => {
            let pending = c.pending_migrations(POSTGRES).map_err(migration_error)?;
            Ok(pending.iter().map(|m| m.name().version().to_string()).collect())
        }
    }
}
