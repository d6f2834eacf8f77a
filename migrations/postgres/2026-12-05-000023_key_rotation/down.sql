CREATE OR REPLACE FUNCTION refuse_memo_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'processing memos are append-only';
END;
$$;
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
DROP TRIGGER change_history_skip_key_rotation ON change_history;
DROP FUNCTION change_history_skip_key_rotation();
UPDATE key_checks SET key_id = 'blind_index' WHERE purpose = 'blind_index' AND key_id = 'b1';
DROP TABLE instance_keys;
DROP TABLE key_rotation_progress;
DROP TABLE key_rotations;
