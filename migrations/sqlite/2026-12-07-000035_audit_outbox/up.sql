-- Usage-log entries of committed changes waiting for their place in the hash chain: used on
-- PostgreSQL (see its migration 000035). SQLite's changes append to the chain in their own
-- transaction, which the group commit shares among concurrent requests, so nothing waits there;
-- the table exists here too so that both databases have one schema.
CREATE TABLE audit_outbox (
    id INTEGER PRIMARY KEY,
    created_at TIMESTAMP NOT NULL,
    entry TEXT NOT NULL
);
