//! The audit chains' heads on PostgreSQL, in two statements kept prepared per group commit.
//!
//! A group commit of the audit writer used to send at least three statements for the heads:
//! create every head it names (`INSERT … ON CONFLICT DO NOTHING`, which almost always found the
//! row), lock them (`SELECT … FOR UPDATE`), and one `UPDATE` per chain at the end, the first and
//! the last unprepared (issue 22, PostgreSQL's statement census in `docs/performance.md`). On
//! PostgreSQL a statement's cost is mostly its round trip, so [`lock_or_create`] does the first
//! two in one statement and [`advance`] the last in one, each with array parameters so that
//! its text, and with it the prepared statement, is the same for any number of chains.
//!
//! The lock order is what keeps two writers from deadlocking: [`lock_or_create`] takes each head
//! in chain-id order, creating it or locking it as it comes, within one statement; a head it
//! creates is, to a concurrent writer, locked like one it found.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Binary, Text, Timestamp};
use time::PrimitiveDateTime;

/// A chain's head: its id, the sequence number of its last entry and that entry's hash.
pub type Head = (String, i64, Vec<u8>);

/// Locks the heads of `chain_ids` (distinct) for the rest of the transaction, in chain-id
/// order, creating a missing one at sequence 0 with `genesis` as its hash, and returns them all.
pub fn lock_or_create(
    conn: &mut PgConnection,
    chain_ids: &[String],
    genesis: &[u8],
    now: PrimitiveDateTime,
) -> QueryResult<Vec<Head>> {
    LockOrCreate {
        chain_ids,
        genesis,
        now,
    }
    .load(conn)
}

/// Moves each of `heads` (locked by [`lock_or_create`] in this transaction) to its new sequence
/// number and hash; returns how many heads it changed.
pub fn advance<'h>(
    conn: &mut PgConnection,
    heads: impl IntoIterator<Item = (&'h str, i64, &'h [u8])>,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    let mut ids = Vec::new();
    let mut seqs = Vec::new();
    let mut hashes = Vec::new();
    for (id, seq, hash) in heads {
        ids.push(id);
        seqs.push(seq);
        hashes.push(hash);
    }
    Advance {
        ids: &ids,
        seqs: &seqs,
        hashes: &hashes,
        now,
    }
    .execute(conn)
}

struct LockOrCreate<'a> {
    chain_ids: &'a [String],
    genesis: &'a [u8],
    now: PrimitiveDateTime,
}

impl QueryFragment<Pg> for LockOrCreate<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // `DO UPDATE` with an assignment that changes nothing locks an existing head as `FOR
        // UPDATE` would (and returns it, which `DO NOTHING` would not); the `ORDER BY` makes the
        // statement take the heads in chain-id order.
        out.push_sql(
            "INSERT INTO audit_chains (chain_id, last_seq, last_hash, updated_at) \
             SELECT id, 0, ",
        );
        out.push_bind_param::<Binary, _>(self.genesis)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(" FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(self.chain_ids)?;
        out.push_sql(
            ") AS id ORDER BY id \
             ON CONFLICT (chain_id) DO UPDATE SET last_seq = audit_chains.last_seq \
             RETURNING chain_id, last_seq, last_hash",
        );
        Ok(())
    }
}

impl QueryId for LockOrCreate<'_> {
    // No static id: diesel's cache keys the statement by its text, which never varies.
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for LockOrCreate<'_> {
    type SqlType = (Text, BigInt, Binary);
}

impl RunQueryDsl<PgConnection> for LockOrCreate<'_> {}

struct Advance<'a> {
    ids: &'a [&'a str],
    seqs: &'a [i64],
    hashes: &'a [&'a [u8]],
    now: PrimitiveDateTime,
}

impl QueryFragment<Pg> for Advance<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE audit_chains SET last_seq = advanced.seq, last_hash = advanced.hash, updated_at = ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(" FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(self.ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(self.seqs)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Binary>, _>(self.hashes)?;
        out.push_sql(") AS advanced (id, seq, hash) WHERE audit_chains.chain_id = advanced.id");
        Ok(())
    }
}

impl QueryId for Advance<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl RunQueryDsl<PgConnection> for Advance<'_> {}
