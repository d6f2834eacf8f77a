//! The planner's statistics on a PostgreSQL whose autovacuum is off.
//!
//! PostgreSQL plans a foreign key's check once per connection, at its first use, with the
//! statistics of that moment, and keeps the plan until the table's statistics change. With
//! autovacuum off they never do: a check planned while `clients` was empty or small stayed a
//! scan of the registrar's every client (`clients_anonymised` on `registrar_id` alone, or a
//! sequential scan), so every new service read all the clients before it. 100 000 services took
//! a quarter of an hour in the benchmark (5 000 000 000 index entries read). Autovacuum's analyze
//! re-plans within a minute of such growth; a server that finds it off does the same for the
//! tables it would have analysed.

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use crate::DbConnection;

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Bool)]
    autovacuum_off: bool,
}

#[derive(QueryableByName)]
struct Stale {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Whether this database leaves its statistics to the server: PostgreSQL with autovacuum off.
/// SQLite keeps none that its plans depend on (the schema's indexes decide).
pub fn kept_by_server(conn: &mut DbConnection) -> QueryResult<bool> {
    match conn {
        DbConnection::Sqlite(_) => Ok(false),
        DbConnection::Postgres(c) => {
            let setting: Setting =
                diesel::sql_query("SELECT current_setting('autovacuum') <> 'on' AS autovacuum_off").get_result(c)?;
            Ok(setting.autovacuum_off)
        }
    }
}

/// Analyses the tables of the connection's schema that autovacuum would analyse now (changed rows past
/// `autovacuum_analyze_threshold` plus `autovacuum_analyze_scale_factor` of the table); returns
/// their names. Nothing on SQLite.
pub fn analyze_stale(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    let DbConnection::Postgres(c) = conn else {
        return Ok(Vec::new());
    };
    let stale: Vec<Stale> = diesel::sql_query(
        "SELECT format('%I.%I', s.schemaname, s.relname) AS name \
           FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
          WHERE s.schemaname = current_schema() \
            AND s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float8 \
                + current_setting('autovacuum_analyze_scale_factor')::float8 * GREATEST(c.reltuples, 0) \
          ORDER BY s.n_mod_since_analyze DESC",
    )
    .load(c)?;
    let names: Vec<String> = stale.into_iter().map(|s| s.name).collect();
    for name in &names {
        // The name comes quoted from format('%I.%I').
        diesel::sql_query(format!("ANALYZE {name}")).execute(c)?;
    }
    Ok(names)
}
