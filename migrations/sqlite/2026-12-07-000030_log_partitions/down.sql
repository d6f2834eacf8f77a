-- Back to one table per log, only while no monthly partition exists: SQL cannot name the
-- partitions to copy them back. Once one exists this fails on the CHECK below; move their rows
-- into <log>_legacy by hand, drop them, and run it again.
CREATE TEMP TABLE log_partitions_must_be_gone (partitions INTEGER CHECK (partitions = 0));
INSERT INTO log_partitions_must_be_gone
SELECT count(*) FROM sqlite_master
WHERE type = 'table' AND (name GLOB 'usage_log_[0-9][0-9][0-9][0-9]_[0-9][0-9]'
    OR name GLOB 'disclosure_log_[0-9][0-9][0-9][0-9]_[0-9][0-9]'
    OR name GLOB 'security_events_[0-9][0-9][0-9][0-9]_[0-9][0-9]');
DROP TABLE log_partitions_must_be_gone;

DROP VIEW usage_log;
ALTER TABLE usage_log_legacy RENAME TO usage_log;
DROP VIEW disclosure_log;
ALTER TABLE disclosure_log_legacy RENAME TO disclosure_log;
DROP VIEW security_events;
ALTER TABLE security_events_legacy RENAME TO security_events;
DROP TABLE audit_partition_templates;
