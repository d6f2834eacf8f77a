CREATE OR REPLACE FUNCTION change_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('rekisteri.lifecycle_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE'
        AND NEW.id = OLD.id AND NEW.table_name = OLD.table_name AND NEW.row_id = OLD.row_id
        AND NEW.operation = OLD.operation AND NEW.actor = OLD.actor AND NEW.changed_at = OLD.changed_at
        AND ((OLD.table_name = 'clients'
                AND NEW.old_row IS NOT DISTINCT FROM (OLD.old_row - 'address' - 'home_municipality')
                AND NEW.new_row IS NOT DISTINCT FROM (OLD.new_row - 'address' - 'home_municipality'))
            OR current_setting('rekisteri.actor', true) = 'system:key-rotation') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'change_history is append-only';
END $$;
ALTER TABLE clients
    DROP COLUMN died_on_precision,
    DROP COLUMN moved_out_on_precision,
    DROP COLUMN moved_in_on_precision,
    DROP COLUMN guardianship,
    DROP COLUMN postal_address,
    DROP COLUMN temporary_address;
