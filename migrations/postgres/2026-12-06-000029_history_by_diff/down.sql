-- record_change() of 000028: whole rows before and after an update.
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
