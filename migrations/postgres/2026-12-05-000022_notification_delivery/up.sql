-- The notification outbox is delivered over SMTP by the scheduler's `notifications` job (AC-7):
-- state pending, sent, or dropped (the reminder no longer applies: the account logged in or
-- closed before it went out); failed attempts are retried with backoff from next_attempt_at.
-- last_error holds the SMTP code or the kind of failure, never the server's text (which may
-- quote the address).
ALTER TABLE notification_outbox ADD COLUMN state TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE notification_outbox ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notification_outbox ADD COLUMN next_attempt_at TIMESTAMPTZ;
ALTER TABLE notification_outbox ADD COLUMN last_error TEXT;
CREATE INDEX notification_outbox_pending ON notification_outbox (state, next_attempt_at);
