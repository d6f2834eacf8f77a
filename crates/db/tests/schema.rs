//! The migrated schema of both backends is the one `schema.rs` declares (issue 23): every table
//! and column, with the same nullability, so that a migration written for one backend only, or a
//! column added to `schema.rs` but not migrated, fails here rather than at a query.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use rekisteri_db::DbConnection;
use rekisteri_db::testing::TestDatabase;

/// (table, column) → nullable.
type Columns = BTreeMap<(String, String), bool>;

/// Migrated columns that `schema.rs` leaves out on purpose, and why.
const NOT_IN_SCHEMA_RS: &[(&str, &str, &str)] = &[
    (
        "audit_partition_templates",
        "log_table",
        "SQLite only: read by rekisteri_db::log_partitions with SQL of its own",
    ),
    (
        "audit_partition_templates",
        "ddl",
        "SQLite only: read by rekisteri_db::log_partitions with SQL of its own",
    ),
    (
        "change_history",
        "old_row",
        "written by the triggers, read with per-backend SQL (jsonb or JSON text)",
    ),
    (
        "change_history",
        "new_row",
        "written by the triggers, read with per-backend SQL (jsonb or JSON text)",
    ),
    ("change_history", "changed_at", "written by the triggers only"),
    (
        "change_actor",
        "actor",
        "SQLite only: the triggers' actor (PostgreSQL keeps it in a session setting)",
    ),
];

/// The columns `schema.rs` declares, read from its `diesel::table!` blocks.
fn declared() -> Columns {
    let mut columns = Columns::new();
    let mut table: Option<String> = None;
    for line in include_str!("../src/schema.rs").lines() {
        let line = line.trim();
        if line.starts_with("diesel::") {
            // `table!` opens a table; `joinable!` and `allow_tables…!` end the last one.
            table = None;
            continue;
        }
        if table.is_none() && line.ends_with('{') && line.contains('(') {
            table = line.split_whitespace().next().map(str::to_owned);
            continue;
        }
        if line == "}" {
            continue;
        }
        if let (Some(table), Some((name, sql_type))) = (&table, line.split_once(" -> ")) {
            let name = name.trim().trim_start_matches("r#").to_owned();
            columns.insert((table.clone(), name), sql_type.trim().starts_with("Nullable<"));
        }
    }
    columns
}

#[derive(QueryableByName)]
struct SqliteTable {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    notnull: i64,
    #[diesel(sql_type = BigInt)]
    pk: i64,
}

#[derive(QueryableByName)]
struct PostgresColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
}

/// A log's table of one month on SQLite, `<log>_YYYY_MM`.
fn is_month_partition(table: &str) -> bool {
    rekisteri_db::log_partitions::LOG_TABLES.iter().any(|log| {
        table
            .strip_prefix(log)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|rest| rest.len() == 7 && rest.as_bytes()[4] == b'_')
    })
}

fn is_internal(table: &str) -> bool {
    table.starts_with("__diesel") || table.starts_with("sqlite_")
}

/// The migrated columns. SQLite lets a non-integer primary key hold NULL unless the column says
/// NOT NULL; diesel's primary keys are never `Nullable`, so a key column counts as NOT NULL.
fn migrated(conn: &mut DbConnection) -> Columns {
    let mut columns = Columns::new();
    match conn {
        DbConnection::Sqlite(c) => {
            let tables: Vec<SqliteTable> =
                diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                    .load(c)
                    .unwrap();
            for table in tables.into_iter().filter(|t| !is_internal(&t.name)) {
                // The logs are views there over their monthly tables (migration 000030), which
                // the writer makes from the template 000030 also used for `<log>_legacy`: the
                // legacy table stands for the log, as PostgreSQL's partitioned table does.
                let name = match table.name.strip_suffix("_legacy") {
                    Some(log) if rekisteri_db::log_partitions::LOG_TABLES.contains(&log) => log.to_owned(),
                    _ if is_month_partition(&table.name) => continue,
                    _ => table.name.clone(),
                };
                let rows: Vec<SqliteColumn> = diesel::sql_query(format!(
                    "SELECT name, \"notnull\", pk FROM pragma_table_info('{}')",
                    table.name
                ))
                .load(c)
                .unwrap();
                for column in rows {
                    columns.insert((name.clone(), column.name), column.notnull == 0 && column.pk == 0);
                }
            }
        }
        DbConnection::Postgres(c) => {
            // Tables and partitioned tables, not their partitions (the usage log's by month).
            let rows: Vec<PostgresColumn> = diesel::sql_query(
                "SELECT c.relname::text AS table_name, a.attname::text AS column_name, \
                 CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END AS is_nullable \
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
                 AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped",
            )
            .load(c)
            .unwrap();
            for column in rows.into_iter().filter(|c| !is_internal(&c.table_name)) {
                columns.insert((column.table_name, column.column_name), column.is_nullable == "YES");
            }
        }
    }
    columns
}

/// What differs, one line per column, so a failure names every difference at once.
fn differences(backend: &str, declared: &Columns, migrated: &Columns) -> Vec<String> {
    let mut out = Vec::new();
    for ((table, column), nullable) in declared {
        match migrated.get(&(table.clone(), column.clone())) {
            None => out.push(format!("{backend}: {table}.{column} is in schema.rs but not migrated")),
            Some(m) if m != nullable => out.push(format!(
                "{backend}: {table}.{column} is {} in schema.rs but {} when migrated",
                if *nullable { "Nullable" } else { "NOT NULL" },
                if *m { "nullable" } else { "NOT NULL" }
            )),
            Some(_) => {}
        }
    }
    for (table, column) in migrated.keys() {
        let excused = NOT_IN_SCHEMA_RS.iter().any(|(t, c, _)| t == table && c == column);
        if !excused && !declared.contains_key(&(table.clone(), column.clone())) {
            out.push(format!("{backend}: {table}.{column} is migrated but not in schema.rs"));
        }
    }
    out
}

#[test]
fn the_migrated_columns_of_both_backends_are_the_ones_schema_rs_declares() {
    let declared = declared();
    assert!(declared.len() > 100, "schema.rs parsed to {} columns", declared.len());
    let sqlite = TestDatabase::sqlite();
    let mut found = differences("SQLite", &declared, &migrated(&mut sqlite.conn()));
    if let Some(postgres) = TestDatabase::postgres() {
        found.extend(differences("PostgreSQL", &declared, &migrated(&mut postgres.conn())));
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
