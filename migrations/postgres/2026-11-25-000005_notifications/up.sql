-- Notifications an organisation's mail system reads and sends (AC-7): the reminder before an
-- unused account is closed. Holds the account id, never the address.
CREATE TABLE notification_outbox (
    id TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    details TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    delivered_at TIMESTAMPTZ
);
CREATE INDEX notification_outbox_account ON notification_outbox (account_id, kind, created_at);
