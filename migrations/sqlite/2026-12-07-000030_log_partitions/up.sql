-- The log tables become monthly partitions, as on PostgreSQL (issue 22 point 5): retention then
-- drops a month whose entries are all past it instead of deleting them one B-tree entry at a time.
-- SQLite has no declarative partitioning, so each log is a view over its tables:
--   <log>_legacy    the rows written before this migration (PostgreSQL's default partition);
--   <log>_YYYY_MM   one per month of `occurred_at` (UTC), created by the writer on the month's
--                   first entry from the template below, in the appending transaction;
--   <log>           a view, UNION ALL of them, which every reader queries.
-- rekisteri_audit::partitions keeps the views in step with the tables.
CREATE TABLE audit_partition_templates (
    log_table TEXT PRIMARY KEY,
    ddl TEXT NOT NULL
) STRICT;

INSERT INTO audit_partition_templates (log_table, ddl) VALUES ('usage_log', 'CREATE TABLE {p} (
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
CREATE INDEX {p}_registrar_time ON {p} (registrar_id, occurred_at);
CREATE INDEX {p}_subject ON {p} (subject_index, occurred_at) WHERE subject_index IS NOT NULL;
CREATE INDEX {p}_actor ON {p} (actor_id, occurred_at);
CREATE INDEX {p}_controller_time ON {p} (log_controller_id, occurred_at);
CREATE TRIGGER {p}_append_only BEFORE UPDATE ON {p}
BEGIN SELECT RAISE(ABORT, ''usage_log is append-only''); END;
CREATE TRIGGER {p}_retention_only BEFORE DELETE ON {p}
BEGIN SELECT RAISE(ABORT, ''usage_log is append-only'') WHERE rekisteri_retention_allowed() IS NOT 1; END;
');

ALTER TABLE usage_log RENAME TO usage_log_legacy;
CREATE VIEW usage_log AS SELECT * FROM usage_log_legacy;

INSERT INTO audit_partition_templates (log_table, ddl) VALUES ('disclosure_log', 'CREATE TABLE {p} (
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
CREATE INDEX {p}_registrar_time ON {p} (registrar_id, occurred_at);
CREATE INDEX {p}_subject ON {p} (subject_index, occurred_at) WHERE subject_index IS NOT NULL;
CREATE TRIGGER {p}_append_only BEFORE UPDATE ON {p}
BEGIN SELECT RAISE(ABORT, ''disclosure_log is append-only''); END;
CREATE TRIGGER {p}_retention_only BEFORE DELETE ON {p}
BEGIN SELECT RAISE(ABORT, ''disclosure_log is append-only'') WHERE rekisteri_retention_allowed() IS NOT 1; END;
');

ALTER TABLE disclosure_log RENAME TO disclosure_log_legacy;
CREATE VIEW disclosure_log AS SELECT * FROM disclosure_log_legacy;

INSERT INTO audit_partition_templates (log_table, ddl) VALUES ('security_events', 'CREATE TABLE {p} (
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
CREATE INDEX {p}_time ON {p} (occurred_at);
CREATE INDEX {p}_organisation_time ON {p} (organisation_id, occurred_at);
CREATE TRIGGER {p}_append_only BEFORE UPDATE ON {p}
BEGIN SELECT RAISE(ABORT, ''security_events is append-only''); END;
CREATE TRIGGER {p}_retention_only BEFORE DELETE ON {p}
BEGIN SELECT RAISE(ABORT, ''security_events is append-only'') WHERE rekisteri_retention_allowed() IS NOT 1; END;
');

ALTER TABLE security_events RENAME TO security_events_legacy;
CREATE VIEW security_events AS SELECT * FROM security_events_legacy;
