-- Bulk lifecycle runs (PL-15). The anonymisation and deletion runs purge, in the same
-- transaction, the change history of every row they change (000009); the history rows their own
-- changes would write are purged a moment later. Such rows are not written at all: a change made
-- as 'system:lifecycle-purge' leaves no history, which saves an insert and a delete per row.
-- Only those runs act as it (rekisteri_db::history::purging), on the connection that alone may
-- delete history.
CREATE TRIGGER change_history_skip_lifecycle_purge BEFORE INSERT ON change_history
WHEN NEW.actor = 'system:lifecycle-purge'
BEGIN SELECT RAISE(IGNORE); END;
-- A client's events were found through the registrar's every event: the access report's event
-- list, the anonymisation and deletion runs and the statistics ask by client.
CREATE INDEX service_events_client ON service_events (registrar_id, client_id, delivered_on);
-- The anonymisation run walks the clients not yet anonymised in the order they were created,
-- which is near the order of their rows in the file (000017's index, which it replaces, walked them by id, at random: a batch of 1 000 rewrote
-- a page per client, and every index entry it moved was one more).
DROP INDEX clients_not_anonymised;
CREATE INDEX clients_not_anonymised_by_age ON clients (registrar_id, created_at, id) WHERE anonymised_at IS NULL;
