//! UPDATEs the connection keeps prepared, which diesel's own would not be.
//!
//! diesel never caches an UPDATE: a changeset may leave out its `None` fields, so the same Rust
//! code can give different SQL. Preparing an UPDATE on SQLite compiles every trigger the update
//! can fire, and a tracked table's change-history trigger (CL-17) is an expression over all its
//! columns: measured on `clients`, compiling it cost more than running it (issue 22 point 4).
//! [`kept_update`] writes the same `UPDATE … SET … WHERE …` from diesel's typed parts but as a
//! statement of its own, which diesel's cache keeps by its SQL text; a changeset whose text did
//! vary would only take more cache entries, never the wrong statement.

use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::expression::{AppearsOnTable, Expression};
use diesel::query_builder::{AsChangeset, AstPass, QueryFragment, QueryId};
use diesel::query_source::{QuerySource, Table};
use diesel::sql_types::BoolOrNullableBool;

/// `UPDATE table SET changes WHERE predicate`, kept prepared; see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct KeptUpdate<F, C, W> {
    from: F,
    changes: C,
    predicate: W,
}

/// The update of the rows of `table` that match `predicate`, as `diesel::update(table.filter(
/// predicate)).set(changes)` would write it, kept prepared across executions. For statements run
/// many times, with a changeset of plain `column.eq(value)` assignments.
pub fn kept_update<T, V, W>(table: T, changes: V, predicate: W) -> KeptUpdate<T::FromClause, V::Changeset, W>
where
    T: Table + QuerySource,
    V: AsChangeset<Target = T>,
    W: Expression + AppearsOnTable<T>,
    W::SqlType: BoolOrNullableBool,
{
    KeptUpdate {
        from: table.from_clause(),
        changes: changes.as_changeset(),
        predicate,
    }
}

impl<F, C, W, DB> QueryFragment<DB> for KeptUpdate<F, C, W>
where
    DB: Backend,
    F: QueryFragment<DB>,
    C: QueryFragment<DB>,
    W: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" SET ");
        self.changes.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        self.predicate.walk_ast(out.reborrow())
    }
}

impl<F, C, W> QueryId for KeptUpdate<F, C, W> {
    // No static id: the cache keys the statement by its SQL text and bind types.
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<F, C, W, Conn> diesel::RunQueryDsl<Conn> for KeptUpdate<F, C, W> {}

/// `INSERT INTO <table_name> (columns) VALUES (…)`, kept prepared by its SQL text: the insert of
/// one row into a table diesel knows only by its shape, such as a month's log partition on SQLite
/// (migration 000030), whose name is data.
#[derive(Debug, Clone, Copy)]
pub struct KeptInsert<'a, V> {
    table_name: &'a str,
    values: V,
}

/// The insert of `record` (one row, `Insertable` into `T`) into the table named `table_name`,
/// which must have `T`'s columns.
pub fn kept_insert_into<T, V>(table_name: &str, _shape: T, record: V) -> KeptInsert<'_, V::Values>
where
    T: Table,
    V: diesel::Insertable<T>,
{
    KeptInsert {
        table_name,
        values: record.values(),
    }
}

impl<V, DB> QueryFragment<DB> for KeptInsert<'_, V>
where
    DB: Backend,
    V: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("INSERT INTO ");
        out.push_identifier(self.table_name)?;
        out.push_sql(" ");
        self.values.walk_ast(out.reborrow())
    }
}

impl<V> QueryId for KeptInsert<'_, V> {
    // No static id: the cache keys the statement by its SQL text (the table's name) and bind types.
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<V, Conn> diesel::RunQueryDsl<Conn> for KeptInsert<'_, V> {}
