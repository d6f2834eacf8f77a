-- Audit logs (AU-1..AU-5): usage log, disclosure log, security events, each an append-only
-- hash chain per (log, registrar or organisation). See docs/audit.md.

-- The head of every chain: the writer reads and advances it in the transaction that appends.
CREATE TABLE audit_chains (
    chain_id TEXT PRIMARY KEY NOT NULL,
    last_seq INTEGER NOT NULL,
    last_hash BLOB NOT NULL,
    updated_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- käyttöloki
CREATE TABLE usage_log (
    chain_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    occurred_at TEXT NOT NULL,
    registrar_id TEXT NOT NULL,
    log_controller_id TEXT NOT NULL,
    subject_index BLOB,
    data_kind TEXT NOT NULL,
    data_id TEXT,
    outcome TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    actor_name TEXT,
    on_behalf_of TEXT,
    service_unit_oid TEXT,
    purpose TEXT NOT NULL,
    access_basis TEXT NOT NULL,
    special_reason TEXT,
    request_id TEXT NOT NULL,
    calling_system TEXT,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (chain_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX usage_log_registrar_time ON usage_log (registrar_id, occurred_at);
CREATE INDEX usage_log_subject ON usage_log (subject_index, occurred_at) WHERE subject_index IS NOT NULL;
CREATE INDEX usage_log_actor ON usage_log (actor_id, occurred_at);
CREATE INDEX usage_log_controller_time ON usage_log (log_controller_id, occurred_at);

-- luovutusloki
CREATE TABLE disclosure_log (
    chain_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    occurred_at TEXT NOT NULL,
    registrar_id TEXT NOT NULL,
    subject_index BLOB,
    description TEXT NOT NULL,
    discloser_kind TEXT NOT NULL,
    discloser_id TEXT NOT NULL,
    recipient_kind TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    recipient_name TEXT,
    purpose TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    request_id TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (chain_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX disclosure_log_registrar_time ON disclosure_log (registrar_id, occurred_at);
CREATE INDEX disclosure_log_subject ON disclosure_log (subject_index, occurred_at) WHERE subject_index IS NOT NULL;

CREATE TABLE security_events (
    chain_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    occurred_at TEXT NOT NULL,
    organisation_id TEXT,
    event_type TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    details TEXT NOT NULL,
    request_id TEXT,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (chain_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX security_events_time ON security_events (occurred_at);
CREATE INDEX security_events_organisation_time ON security_events (organisation_id, occurred_at);

-- Signed chain heads and retention cuts.
CREATE TABLE audit_checkpoints (
    chain_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('signed', 'retention')),
    hash BLOB NOT NULL,
    signing_key_id TEXT,
    signature BLOB,
    created_at TEXT NOT NULL,
    PRIMARY KEY (chain_id, seq, kind)
) STRICT, WITHOUT ROWID;

-- Append only (AU-5). UPDATE is refused outright. DELETE is refused unless the connection has
-- the function rekisteri_retention_allowed(), which only the retention run registers on its own
-- connection: no other connection (the server's pool, the sqlite3 shell) can even name it.
CREATE TRIGGER usage_log_append_only BEFORE UPDATE ON usage_log
BEGIN SELECT RAISE(ABORT, 'usage_log is append-only'); END;
CREATE TRIGGER usage_log_retention_only BEFORE DELETE ON usage_log
BEGIN SELECT RAISE(ABORT, 'usage_log is append-only') WHERE rekisteri_retention_allowed() IS NOT 1; END;
CREATE TRIGGER disclosure_log_append_only BEFORE UPDATE ON disclosure_log
BEGIN SELECT RAISE(ABORT, 'disclosure_log is append-only'); END;
CREATE TRIGGER disclosure_log_retention_only BEFORE DELETE ON disclosure_log
BEGIN SELECT RAISE(ABORT, 'disclosure_log is append-only') WHERE rekisteri_retention_allowed() IS NOT 1; END;
CREATE TRIGGER security_events_append_only BEFORE UPDATE ON security_events
BEGIN SELECT RAISE(ABORT, 'security_events is append-only'); END;
CREATE TRIGGER security_events_retention_only BEFORE DELETE ON security_events
BEGIN SELECT RAISE(ABORT, 'security_events is append-only') WHERE rekisteri_retention_allowed() IS NOT 1; END;
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
