-- An insert's history row names its row by the row's `id` column, read as such, instead of
-- turning the whole new row into JSON to take its `id` out of it (issue 22 point 3). The JSON
-- held every sealed column hex-encoded; on a client push it was most of the trigger's work.
-- Every table with this trigger has a text `id` (a table without one fails its first insert,
-- which the tests of its register would show).
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
        changed_row := NEW.id;
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
