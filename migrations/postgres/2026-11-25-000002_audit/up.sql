-- Audit logs (AU-1..AU-5): usage log, disclosure log, security events, each an append-only
-- hash chain per (log, registrar or organisation). The log tables are partitioned by month
-- (PL-7): queries by time touch few partitions and retention drops whole partitions.
-- See docs/audit.md.

CREATE TABLE audit_chains (
    chain_id TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL,
    last_hash BYTEA NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- käyttöloki
CREATE TABLE usage_log (
    chain_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    registrar_id TEXT NOT NULL,
    log_controller_id TEXT NOT NULL,
    subject_index BYTEA,
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
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    -- The partition key must be part of every unique key; the chain writer's lock on the chain
    -- head keeps (chain_id, seq) unique.
    PRIMARY KEY (chain_id, seq, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX usage_log_registrar_time ON usage_log (registrar_id, occurred_at);
CREATE INDEX usage_log_subject ON usage_log (subject_index, occurred_at) WHERE subject_index IS NOT NULL;
CREATE INDEX usage_log_actor ON usage_log (actor_id, occurred_at);
CREATE INDEX usage_log_controller_time ON usage_log (log_controller_id, occurred_at);

-- luovutusloki
CREATE TABLE disclosure_log (
    chain_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    registrar_id TEXT NOT NULL,
    subject_index BYTEA,
    description TEXT NOT NULL,
    discloser_kind TEXT NOT NULL,
    discloser_id TEXT NOT NULL,
    recipient_kind TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    recipient_name TEXT,
    purpose TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    request_id TEXT NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (chain_id, seq, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX disclosure_log_registrar_time ON disclosure_log (registrar_id, occurred_at);
CREATE INDEX disclosure_log_subject ON disclosure_log (subject_index, occurred_at) WHERE subject_index IS NOT NULL;

CREATE TABLE security_events (
    chain_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    organisation_id TEXT,
    event_type TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    details TEXT NOT NULL,
    request_id TEXT,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (chain_id, seq, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX security_events_time ON security_events (occurred_at);
CREATE INDEX security_events_organisation_time ON security_events (organisation_id, occurred_at);

-- Rows outside every monthly partition land here rather than fail; audit_ensure_partitions
-- keeps this empty in practice by creating months ahead.
CREATE TABLE usage_log_default PARTITION OF usage_log DEFAULT;
CREATE TABLE disclosure_log_default PARTITION OF disclosure_log DEFAULT;
CREATE TABLE security_events_default PARTITION OF security_events DEFAULT;

CREATE TABLE audit_checkpoints (
    chain_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('signed', 'retention')),
    hash BYTEA NOT NULL,
    signing_key_id TEXT,
    signature BYTEA,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (chain_id, seq, kind)
);

-- Creates the monthly partitions of every log table from the month of `first` for `months`
-- months; existing ones are kept. A month whose rows already sit in the default partition is
-- skipped (with a notice) rather than failing the caller.
CREATE FUNCTION audit_ensure_partitions(first DATE, months INTEGER) RETURNS VOID AS $$
DECLARE
    log_table TEXT;
    month_start DATE;
    partition_name TEXT;
BEGIN
    FOREACH log_table IN ARRAY ARRAY['usage_log', 'disclosure_log', 'security_events'] LOOP
        FOR i IN 0 .. months - 1 LOOP
            month_start := (date_trunc('month', first) + make_interval(months => i))::date;
            partition_name := format('%s_%s', log_table, to_char(month_start, 'YYYY_MM'));
            IF to_regclass(partition_name) IS NULL THEN
                BEGIN
                    EXECUTE format(
                        'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                        partition_name, log_table,
                        month_start::timestamptz, (month_start + interval '1 month')::timestamptz);
                EXCEPTION WHEN check_violation THEN
                    RAISE NOTICE 'partition % skipped: its rows are in the default partition', partition_name;
                END;
            END IF;
        END LOOP;
    END LOOP;
END $$ LANGUAGE plpgsql;

SELECT audit_ensure_partitions((now() AT TIME ZONE 'UTC')::date - 31, 15);

-- Append only (AU-5). UPDATE is refused; DELETE only inside the retention run, which sets the
-- transaction-local setting rekisteri.audit_retention (SET LOCAL), and usually drops whole
-- partitions instead. Checkpoints are never changed.
CREATE FUNCTION audit_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_ARGV[0] = 'retention'
       AND current_setting('rekisteri.audit_retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$ LANGUAGE plpgsql;

CREATE TRIGGER usage_log_append_only BEFORE UPDATE OR DELETE ON usage_log
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change('retention');
CREATE TRIGGER disclosure_log_append_only BEFORE UPDATE OR DELETE ON disclosure_log
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change('retention');
CREATE TRIGGER security_events_append_only BEFORE UPDATE OR DELETE ON security_events
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change('retention');
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change('never');
-- TRUNCATE bypasses row triggers; refuse it too.
CREATE TRIGGER usage_log_no_truncate BEFORE TRUNCATE ON usage_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change('never');
CREATE TRIGGER disclosure_log_no_truncate BEFORE TRUNCATE ON disclosure_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change('never');
CREATE TRIGGER security_events_no_truncate BEFORE TRUNCATE ON security_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change('never');
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change('never');
