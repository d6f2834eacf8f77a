-- Bulk lifecycle runs (PL-15). The anonymisation and deletion runs purge, in the same
-- transaction, the change history of every row they change (000009); the history rows their own
-- changes would write are purged a moment later. Such rows are not written at all: inside a
-- purge (rekisteri.lifecycle_purge, SET LOCAL) a change made as 'system:lifecycle-purge' leaves
-- no history, and the row is not even turned into JSON.
CREATE OR REPLACE FUNCTION record_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    hidden TEXT[] := COALESCE(TG_ARGV, '{}'::TEXT[]);
    old_doc JSONB;
    new_doc JSONB;
BEGIN
    IF current_setting('rekisteri.lifecycle_purge', true) = 'on'
        AND current_setting('rekisteri.actor', true) = 'system:lifecycle-purge' THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN old_doc := to_jsonb(OLD) - hidden; END IF;
    IF TG_OP <> 'DELETE' THEN new_doc := to_jsonb(NEW) - hidden; END IF;
    IF TG_OP = 'UPDATE' AND old_doc = new_doc THEN
        RETURN NEW;
    END IF;
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES (TG_TABLE_NAME, COALESCE(new_doc ->> 'id', old_doc ->> 'id'), TG_OP,
            COALESCE(NULLIF(current_setting('rekisteri.actor', true), ''), 'database:' || current_user),
            clock_timestamp(), old_doc, new_doc);
    RETURN NULL;
END $$;
-- A client's events were found through the registrar's every event: the access report's event
-- list, the anonymisation and deletion runs and the statistics ask by client.
CREATE INDEX service_events_client ON service_events (registrar_id, client_id, delivered_on);
-- The anonymisation run walks the clients not yet anonymised in the order they were created,
-- which is near the order of their rows in the heap (000017's index, which it replaces, walked them by id, at random: a batch of 1 000 rewrote
-- a page per client, and every index entry it moved was one more).
DROP INDEX clients_not_anonymised;
CREATE INDEX clients_not_anonymised_by_age ON clients (registrar_id, created_at, id) WHERE anonymised_at IS NULL;
