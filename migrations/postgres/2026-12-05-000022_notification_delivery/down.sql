DROP INDEX notification_outbox_pending;
ALTER TABLE notification_outbox DROP COLUMN last_error;
ALTER TABLE notification_outbox DROP COLUMN next_attempt_at;
ALTER TABLE notification_outbox DROP COLUMN attempts;
ALTER TABLE notification_outbox DROP COLUMN state;
