//! Reading the change history that database triggers write (AU-9).

use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{QueryResult, QueryableByName, RunQueryDsl};

use crate::{DbConnection, write_transaction_as};

/// The actor of the lifecycle runs' purges (CL-14, CL-15). The changes such a transaction makes
/// leave no history rows (migration 000028): the transaction purges the history of those rows
/// anyway, so writing rows only to delete them a moment later would triple its writes.
pub const PURGE_ACTOR: &str = "system:lifecycle-purge";

diesel::define_sql_function! {
    /// Registered only on the lifecycle runs' own SQLite connection: lets them delete change
    /// history (migration 000009).
    fn rekisteri_lifecycle_allowed() -> Integer;
}

/// Gives `conn`, a connection of the lifecycle run's own (never a pooled one), the right to
/// delete change history on SQLite. On PostgreSQL the right is the transaction's, set by
/// [`purging`].
pub fn allow_purge(conn: &mut DbConnection) -> QueryResult<()> {
    if let DbConnection::Sqlite(inner) = conn {
        rekisteri_lifecycle_allowed_utils::register_impl(inner, || 1)?;
    }
    Ok(())
}

/// Runs `f` in a write transaction as [`PURGE_ACTOR`] in which the change history may be
/// deleted (on SQLite only on a connection given [`allow_purge`]) and the changes `f` makes
/// write no history. `f` must purge the history of every row it changes, so that none is left
/// that still holds the old values.
pub fn purging<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    write_transaction_as(conn, PURGE_ACTOR, |conn| {
        set_purge(conn, "on")?;
        let value = f(conn)?;
        set_purge(conn, "off")?;
        Ok(value)
    })
}

fn set_purge(conn: &mut DbConnection, state: &str) -> QueryResult<()> {
    if let DbConnection::Postgres(inner) = conn {
        diesel::sql_query("SELECT set_config('rekisteri.lifecycle_purge', $1, true)")
            .bind::<Text, _>(state)
            .execute(inner)?;
    }
    Ok(())
}

/// One change of one row, oldest first. The rows are JSON text; encrypted columns in them are
/// ciphertexts.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ChangeRecord {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub operation: String,
    #[diesel(sql_type = Text)]
    pub actor: String,
    #[diesel(sql_type = Text)]
    pub changed_at: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub old_row: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub new_row: Option<String>,
}

/// The history of the row `row_id` of `table`.
pub fn change_history_of(conn: &mut DbConnection, table: &str, row_id: &str) -> QueryResult<Vec<ChangeRecord>> {
    match conn {
        DbConnection::Sqlite(inner) => diesel::sql_query(
            "SELECT id, operation, actor, changed_at, old_row, new_row FROM change_history \
             WHERE table_name = ? AND row_id = ? ORDER BY id",
        )
        .bind::<Text, _>(table)
        .bind::<Text, _>(row_id)
        .load(inner),
        DbConnection::Postgres(inner) => diesel::sql_query(
            "SELECT id, operation, actor, changed_at::text AS changed_at, old_row::text AS old_row, \
             new_row::text AS new_row FROM change_history WHERE table_name = $1 AND row_id = $2 ORDER BY id",
        )
        .bind::<Text, _>(table)
        .bind::<Text, _>(row_id)
        .load(inner),
    }
}

/// Removes `address`, `temporary_address`, `postal_address` and `home_municipality` from every
/// history row of the client `client_id` (CL-8, VT-6: a protection order purges them from the
/// history too). It is the one change the
/// append-only history accepts; call it in the transaction that sets the order, after the
/// client row's own update (whose history row holds the old values).
pub fn redact_protected_address(conn: &mut DbConnection, client_id: &str) -> QueryResult<usize> {
    match conn {
        DbConnection::Sqlite(inner) => diesel::sql_query(
            "UPDATE change_history SET \
             old_row = json_remove(old_row, '$.address', '$.home_municipality', '$.temporary_address', '$.postal_address'), \
             new_row = json_remove(new_row, '$.address', '$.home_municipality', '$.temporary_address', '$.postal_address') \
             WHERE table_name = 'clients' AND row_id = ?",
        )
        .bind::<Text, _>(client_id)
        .execute(inner),
        DbConnection::Postgres(inner) => diesel::sql_query(
            "UPDATE change_history SET \
             old_row = old_row - 'address' - 'home_municipality' - 'temporary_address' - 'postal_address', \
             new_row = new_row - 'address' - 'home_municipality' - 'temporary_address' - 'postal_address' \
             WHERE table_name = 'clients' AND row_id = $1",
        )
        .bind::<Text, _>(client_id)
        .execute(inner),
    }
}
