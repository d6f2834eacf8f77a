-- An insert's history row names who inserted the row and when, without a copy of it (CL-17,
-- issue 22 points 4 and 5). The row itself holds the inserted values until it changes, and
-- every change's history row keeps the old values of what it changed (000029), as a delete's
-- keeps the whole old row: the row as inserted is the row now with the changes since undone,
-- newest first. The copy was the bulk of the history, written once more by every push and
-- deleted again by the anonymisation run. History rows already written keep their copy.
CREATE OR REPLACE FUNCTION record_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    hidden TEXT[] := COALESCE(TG_ARGV, '{}'::TEXT[]);
    old_doc JSONB;
    new_doc JSONB;
    changed_row TEXT;
BEGIN
    IF current_setting('rekisteri.lifecycle_purge', true) = 'on'
        AND current_setting('rekisteri.actor', true) = 'system:lifecycle-purge' THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN old_doc := to_jsonb(OLD) - hidden; END IF;
    IF TG_OP = 'UPDATE' THEN new_doc := to_jsonb(NEW) - hidden; END IF;
    IF TG_OP = 'INSERT' THEN
        changed_row := to_jsonb(NEW) ->> 'id';
    ELSE
        changed_row := COALESCE(new_doc ->> 'id', old_doc ->> 'id');
    END IF;
    IF TG_OP = 'UPDATE' THEN
        SELECT jsonb_object_agg(before.key, before.value), jsonb_object_agg(before.key, after.value)
          INTO old_doc, new_doc
          FROM jsonb_each(old_doc) AS before
          JOIN jsonb_each(new_doc) AS after ON after.key = before.key
         WHERE before.value IS DISTINCT FROM after.value;
        IF old_doc IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES (TG_TABLE_NAME, changed_row, TG_OP,
            COALESCE(NULLIF(current_setting('rekisteri.actor', true), ''), 'database:' || current_user),
            clock_timestamp(), old_doc, new_doc);
    RETURN NULL;
END $$;

