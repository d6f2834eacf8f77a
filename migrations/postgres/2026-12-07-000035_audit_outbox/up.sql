-- Usage-log entries of committed changes waiting for their place in the hash chain (AU-4, PL-13,
-- issue 22 point 3). A request's change on PostgreSQL commits its log entries here, in its own
-- transaction, instead of appending them to the chain there: the append locks the chain's head
-- until the commit, so every push of a registrar waited for the previous push's WAL flush (the
-- chain head's lock was 90 % of a push's time, docs/performance.md). The audit writer moves them
-- into the chain in its group commit before the request is answered, and at start-up and on
-- every readiness probe takes whatever a crashed process left (docs/audit.md).
CREATE TABLE audit_outbox (
    id BIGSERIAL PRIMARY KEY,
    created_at TIMESTAMP NOT NULL,
    -- The entry as the writer takes it (JSON); it holds what the log row will hold, no more.
    entry TEXT NOT NULL
);
