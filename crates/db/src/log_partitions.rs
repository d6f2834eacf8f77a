//! The log tables' monthly partitions on SQLite (migration 000030).
//!
//! PostgreSQL partitions the logs by month declaratively; SQLite has no such thing, so each log
//! (`usage_log`, `disclosure_log`, `security_events`) is there a view, `UNION ALL` of its tables:
//! `<log>_legacy` (the rows written before 000030, and any entry whose year a name cannot hold)
//! and one `<log>_YYYY_MM` per month of `occurred_at` (UTC). Readers query the view and never
//! see the split. The writer appends into the month's table, creating it from the template that
//! 000030 stores (`audit_partition_templates`) in the appending transaction itself, so a month
//! starts without a job. Retention drops a month whose entries all lie in the chains' expired
//! prefixes as one table instead of deleting its entries one B-tree entry at a time
//! (issue 22 point 5: 10 000 000 entries took 465 s).
//!
//! Every view is rebuilt from the tables present whenever one is created or dropped, and at
//! start-up ([`rebuild_views`]), so a view never misses a partition for long.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::SqliteConnection;
use time::{Date, Month, PrimitiveDateTime};

/// The partitioned logs, by their view's name.
pub const LOG_TABLES: [&str; 3] = ["usage_log", "disclosure_log", "security_events"];

/// One table of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    /// The month's first day; `None` for `<log>_legacy`.
    pub month: Option<Date>,
}

impl Partition {
    /// The instant the month ends (the next month's first midnight, UTC); `None` for legacy,
    /// which has no end.
    pub fn ends_at(&self) -> Option<PrimitiveDateTime> {
        let first = self.month?;
        let (year, month) = match first.month() {
            Month::December => (first.year().checked_add(1)?, Month::January),
            m => (first.year(), m.next()),
        };
        Date::from_calendar_date(year, month, 1).ok().map(|d| d.midnight())
    }
}

/// The table of `log_table` that holds an entry of `occurred_at`.
pub fn partition_for(log_table: &str, occurred_at: PrimitiveDateTime) -> String {
    let year = occurred_at.year();
    if (1000..=9999).contains(&year) {
        format!("{log_table}_{year:04}_{:02}", u8::from(occurred_at.month()))
    } else {
        // Four digits are what the views' name pattern matches.
        format!("{log_table}_legacy")
    }
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = Nullable<BigInt>)]
    n: Option<i64>,
}

/// `"name"`, for a name this module made (letters, digits and `_` only).
fn quoted(name: &str) -> Result<String, diesel::result::Error> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(format!("\"{name}\""))
    } else {
        Err(diesel::result::Error::QueryBuilderError(
            format!("not a log partition's name: {name:?}").into(),
        ))
    }
}

fn known_log(log_table: &str) -> Result<&'static str, diesel::result::Error> {
    LOG_TABLES
        .into_iter()
        .find(|t| *t == log_table)
        .ok_or_else(|| diesel::result::Error::QueryBuilderError(format!("not a log: {log_table:?}").into()))
}

fn month_of(log_table: &str, name: &str) -> Option<Date> {
    let rest = name.strip_prefix(log_table)?.strip_prefix('_')?;
    let (year, month) = rest.split_once('_')?;
    let month = Month::try_from(month.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(year.parse().ok()?, month, 1).ok()
}

/// The tables of `log_table`: legacy first, then the months in order.
pub fn partitions(conn: &mut SqliteConnection, log_table: &str) -> QueryResult<Vec<Partition>> {
    let log_table = known_log(log_table)?;
    let names: Vec<Name> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB ?1 || '_[0-9][0-9][0-9][0-9]_[0-9][0-9]' \
         ORDER BY name",
    )
    .bind::<Text, _>(log_table)
    .load(conn)?;
    let mut all = vec![Partition {
        name: format!("{log_table}_legacy"),
        month: None,
    }];
    all.extend(names.into_iter().filter_map(|n| {
        month_of(log_table, &n.name).map(|month| Partition {
            name: n.name,
            month: Some(month),
        })
    }));
    Ok(all)
}

fn rebuild_view(conn: &mut SqliteConnection, log_table: &str) -> QueryResult<()> {
    let parts = partitions(conn, log_table)?;
    let mut select = String::new();
    for part in &parts {
        if !select.is_empty() {
            select.push_str(" UNION ALL ");
        }
        select.push_str("SELECT * FROM ");
        select.push_str(&quoted(&part.name)?);
    }
    let create = format!("CREATE VIEW {log_table} AS {select}");
    #[derive(QueryableByName)]
    struct Sql {
        #[diesel(sql_type = Text)]
        sql: String,
    }
    let current: Option<Sql> = diesel::sql_query("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?")
        .bind::<Text, _>(log_table)
        .get_result(conn)
        .optional()?;
    if current.is_some_and(|c| c.sql == create) {
        // Unchanged: leave the schema (and every connection's prepared statements) alone.
        return Ok(());
    }
    conn.batch_execute(&format!("DROP VIEW IF EXISTS {log_table}; {create};"))
}

/// Rebuilds every log's view from the tables present (start-up, after a restore).
pub fn rebuild_views(conn: &mut SqliteConnection) -> QueryResult<()> {
    for log_table in LOG_TABLES {
        rebuild_view(conn, log_table)?;
    }
    Ok(())
}

fn table_exists(conn: &mut SqliteConnection, name: &str) -> QueryResult<bool> {
    let found: Option<Name> = diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?")
        .bind::<Text, _>(name)
        .get_result(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Runs `insert` (a row into month `partition` of `log_table`); if the month has no table yet,
/// makes it (see [`ensure`]) and runs `insert` again. The writer's common case, a month that
/// exists, costs no lookup; a failed prepare leaves the caller's transaction as it was.
pub fn insert_into_month<R>(
    conn: &mut SqliteConnection,
    log_table: &str,
    partition: &str,
    mut insert: impl FnMut(&mut SqliteConnection) -> QueryResult<R>,
) -> QueryResult<R> {
    match insert(conn) {
        Err(diesel::result::Error::DatabaseError(_, info)) if info.message().starts_with("no such table") => {
            ensure(conn, log_table, partition)?;
            insert(conn)
        }
        done => done,
    }
}

/// Makes sure `partition` of `log_table` exists: creates it from the template and adds it to the
/// view when it does not. Run inside the write transaction that appends to it.
pub fn ensure(conn: &mut SqliteConnection, log_table: &str, partition: &str) -> QueryResult<()> {
    let log_table = known_log(log_table)?;
    if table_exists(conn, partition)? {
        return Ok(());
    }
    // Checked, and used bare: the template also makes the index and trigger names from it.
    quoted(partition)?;
    #[derive(QueryableByName)]
    struct Template {
        #[diesel(sql_type = Text)]
        ddl: String,
    }
    let template: Template = diesel::sql_query("SELECT ddl FROM audit_partition_templates WHERE log_table = ?")
        .bind::<Text, _>(log_table)
        .get_result(conn)?;
    conn.batch_execute(&template.ddl.replace("{p}", partition))?;
    rebuild_view(conn, log_table)
}

/// The greatest sequence number of `chain` in `partition`.
pub fn max_seq(conn: &mut SqliteConnection, partition: &str, chain: &str) -> QueryResult<Option<i64>> {
    seq_aggregate(conn, "max", partition, chain)
}

/// The least sequence number of `chain` in `partition`.
pub fn min_seq(conn: &mut SqliteConnection, partition: &str, chain: &str) -> QueryResult<Option<i64>> {
    seq_aggregate(conn, "min", partition, chain)
}

fn seq_aggregate(
    conn: &mut SqliteConnection,
    aggregate: &str,
    partition: &str,
    chain: &str,
) -> QueryResult<Option<i64>> {
    let row: Number = diesel::sql_query(format!(
        "SELECT {aggregate}(seq) AS n FROM {} WHERE chain_id = ?",
        quoted(partition)?
    ))
    .bind::<Text, _>(chain)
    .get_result(conn)?;
    Ok(row.n)
}

/// Whether `partition` holds an entry of a chain other than `chains`.
pub fn holds_other_chains(conn: &mut SqliteConnection, partition: &str, chains: &[String]) -> QueryResult<bool> {
    // Chains are few (one per registrar and log); a skip over the primary key per chain.
    let mut after = String::new();
    loop {
        let next: Option<Name> = diesel::sql_query(format!(
            "SELECT chain_id AS name FROM {} WHERE chain_id > ? ORDER BY chain_id LIMIT 1",
            quoted(partition)?
        ))
        .bind::<Text, _>(&after)
        .get_result(conn)
        .optional()?;
        let Some(next) = next else {
            return Ok(false);
        };
        if !chains.contains(&next.name) {
            return Ok(true);
        }
        after = next.name;
    }
}

/// The least sequence number of `chain` in `partition` whose entry occurred at or after `at`.
pub fn first_at_or_after(
    conn: &mut SqliteConnection,
    partition: &str,
    chain: &str,
    at: PrimitiveDateTime,
) -> QueryResult<Option<i64>> {
    let row: Number = diesel::sql_query(format!(
        "SELECT min(seq) AS n FROM {} WHERE chain_id = ? AND occurred_at >= ?",
        quoted(partition)?
    ))
    .bind::<Text, _>(chain)
    .bind::<diesel::sql_types::Timestamp, _>(at)
    .get_result(conn)?;
    Ok(row.n)
}

/// The last entry of `chain` in `partition` up to and including `seq`: its number and hash.
pub fn last_through(
    conn: &mut SqliteConnection,
    partition: &str,
    chain: &str,
    seq: i64,
) -> QueryResult<Option<(i64, Vec<u8>)>> {
    #[derive(QueryableByName)]
    struct Last {
        #[diesel(sql_type = BigInt)]
        seq: i64,
        #[diesel(sql_type = diesel::sql_types::Binary)]
        hash: Vec<u8>,
    }
    let last: Option<Last> = diesel::sql_query(format!(
        "SELECT seq, hash FROM {} WHERE chain_id = ? AND seq <= ? ORDER BY seq DESC LIMIT 1",
        quoted(partition)?
    ))
    .bind::<Text, _>(chain)
    .bind::<BigInt, _>(seq)
    .get_result(conn)
    .optional()?;
    Ok(last.map(|l| (l.seq, l.hash)))
}

/// The entries in `partition`.
pub fn count(conn: &mut SqliteConnection, partition: &str) -> QueryResult<i64> {
    let row: Number =
        diesel::sql_query(format!("SELECT count(*) AS n FROM {}", quoted(partition)?)).get_result(conn)?;
    Ok(row.n.unwrap_or(0))
}

/// Drops month `partition` of `log_table` whole and takes it out of the view. Only the retention
/// run may: the caller has established that every entry in it is past retention.
pub fn drop_month(conn: &mut SqliteConnection, log_table: &str, partition: &str) -> QueryResult<()> {
    let log_table = known_log(log_table)?;
    if month_of(log_table, partition).is_none() {
        return Err(diesel::result::Error::QueryBuilderError(
            format!("not a month of {log_table}: {partition:?}").into(),
        ));
    }
    // The view first, so that it never names a table that is gone.
    conn.batch_execute(&format!(
        "DROP VIEW IF EXISTS {log_table}; DROP TABLE {};",
        quoted(partition)?
    ))?;
    rebuild_view(conn, log_table)
}

/// Deletes `chain`'s entries with sequence numbers `from..=to` from `partition` (the retention
/// run's connection, whose delete triggers let it).
pub fn delete_range(
    conn: &mut SqliteConnection,
    partition: &str,
    chain: &str,
    from: i64,
    to: i64,
) -> QueryResult<usize> {
    diesel::sql_query(format!(
        "DELETE FROM {} WHERE chain_id = ? AND seq BETWEEN ? AND ?",
        quoted(partition)?
    ))
    .bind::<Text, _>(chain)
    .bind::<BigInt, _>(from)
    .bind::<BigInt, _>(to)
    .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pl_15_an_entry_goes_to_its_months_partition_and_a_month_ends_at_the_next_ones_midnight() {
        let at = time::macros::datetime!(2026-12-31 23:59:59.999);
        assert_eq!(partition_for("usage_log", at), "usage_log_2026_12");
        let part = Partition {
            name: "usage_log_2026_12".to_owned(),
            month: month_of("usage_log", "usage_log_2026_12"),
        };
        assert_eq!(part.ends_at(), Some(time::macros::datetime!(2027-01-01 00:00)));
        assert_eq!(month_of("usage_log", "usage_log_2026_13"), None);
        assert_eq!(month_of("usage_log", "usage_log_legacy"), None);
        assert_eq!(
            partition_for("security_events", time::macros::datetime!(0999-01-01 00:00)),
            "security_events_legacy"
        );
        assert!(quoted("usage_log\"; DROP TABLE x; --").is_err());
    }
}
