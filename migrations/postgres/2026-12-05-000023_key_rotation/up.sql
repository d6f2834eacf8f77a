-- Key rotation (PL-6). A rotation re-encrypts every sealed value under a new data key and
-- re-indexes every blind index under a new blind-index key while the servers keep serving.
-- state: 'prepared' (the new keys are in the key file; servers load them but still write with
-- the old ones), 'switched' (servers write with the new keys; values are being re-encrypted),
-- 'finished' (no value uses the old data key). The newest rotation decides which keys are
-- active, so a server restarted with the new key file does not write with them before every
-- other server can read them.
CREATE TABLE key_rotations (
    id TEXT PRIMARY KEY,
    from_data_key TEXT NOT NULL,
    to_data_key TEXT NOT NULL,
    from_blind_key TEXT NOT NULL,
    to_blind_key TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('prepared', 'switched', 'finished')),
    started_at TIMESTAMPTZ NOT NULL,
    switched_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    values_resealed BIGINT NOT NULL DEFAULT 0
);
-- Where each table's pass stands, committed with each batch: a rotation killed mid-way resumes
-- after the last committed batch. cursor: the last primary key done, as JSON.
CREATE TABLE key_rotation_progress (
    rotation_id TEXT NOT NULL REFERENCES key_rotations (id),
    target TEXT NOT NULL,
    cursor TEXT,
    done BOOLEAN NOT NULL DEFAULT FALSE,
    rows_done BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (rotation_id, target)
);
-- The keys each running server holds and writes with, reported with its heartbeat: a rotation
-- switches only when every live server holds the new keys, and re-encrypts only when every one
-- writes with them.
CREATE TABLE instance_keys (
    instance_id TEXT PRIMARY KEY,
    held TEXT NOT NULL,
    data_key TEXT NOT NULL,
    blind_key TEXT NOT NULL,
    reported_at TIMESTAMPTZ NOT NULL
);
-- Blind-index keys have ids now (b1, b2, ...); the single key of before is b1.
UPDATE key_checks SET key_id = 'b1' WHERE purpose = 'blind_index' AND key_id = 'blind_index';
-- Re-encrypting a row changes how its values are stored, not what they are: the change history
-- records nothing for it (such a row would keep the old ciphertexts), and the history's own
-- copies of sealed values are re-encrypted in place, the one other UPDATE it allows.
CREATE FUNCTION change_history_skip_key_rotation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.actor = 'system:key-rotation' THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER change_history_skip_key_rotation BEFORE INSERT ON change_history
    FOR EACH ROW EXECUTE FUNCTION change_history_skip_key_rotation();
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
-- Processing memos are append-only too; a rotation may re-encrypt their sealed values in place
-- and change nothing else of the row.
CREATE OR REPLACE FUNCTION refuse_memo_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('rekisteri.actor', true) = 'system:key-rotation'
        AND NEW.registrar_id = OLD.registrar_id AND NEW.id = OLD.id THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'processing memos are append-only';
END;
$$;
