-- CL-8: when a protection order arrives, the stored address and home municipality are purged
-- from the client's change history too, not only from the client row. The one UPDATE the
-- append-only history allows is that redaction, on rows of the clients table: it may only remove
-- the keys address and home_municipality from old_row and new_row; every other column must stay
-- as it was. DELETE stays reserved to the lifecycle runs (000009), TRUNCATE refused.
CREATE OR REPLACE FUNCTION change_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('rekisteri.lifecycle_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE'
        AND OLD.table_name = 'clients'
        AND NEW.id = OLD.id AND NEW.table_name = OLD.table_name AND NEW.row_id = OLD.row_id
        AND NEW.operation = OLD.operation AND NEW.actor = OLD.actor AND NEW.changed_at = OLD.changed_at
        AND NEW.old_row IS NOT DISTINCT FROM (OLD.old_row - 'address' - 'home_municipality')
        AND NEW.new_row IS NOT DISTINCT FROM (OLD.new_row - 'address' - 'home_municipality') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'change_history is append-only';
END $$;
