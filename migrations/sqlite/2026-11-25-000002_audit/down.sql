DROP TABLE audit_checkpoints;
DROP TABLE security_events;
DROP TABLE disclosure_log;
DROP TABLE usage_log;
DROP TABLE audit_chains;
