-- An Idempotency-Key's claim belongs to the server process that took it (PL-2, PL-17). Every
-- `rekisteri serve` makes a random instance id at start and keeps its row here alive by
-- renewing expires_at; a pending claim whose owner's row has expired (or is gone) belongs to a
-- dead process, and a retry may take it over instead of getting 409 until the key expires.
CREATE TABLE server_instances (
    id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
-- owner: the instance that holds a pending claim (NULL on claims made before this migration,
-- which keep the old rule: pending until the key expires). written: a write transaction of the
-- claimed request committed (set inside that transaction, which also proves the claim was still
-- the owner's): such a claim is never run again, also when its owner died before answering.
ALTER TABLE idempotency_keys ADD COLUMN owner TEXT;
ALTER TABLE idempotency_keys ADD COLUMN written INTEGER NOT NULL DEFAULT 0;
