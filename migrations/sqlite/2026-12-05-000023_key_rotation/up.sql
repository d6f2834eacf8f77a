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
    started_at TEXT NOT NULL,
    switched_at TEXT,
    finished_at TEXT,
    values_resealed BIGINT NOT NULL DEFAULT 0
);
-- Where each table's pass stands, committed with each batch: a rotation killed mid-way resumes
-- after the last committed batch. cursor: the last primary key done, as JSON.
CREATE TABLE key_rotation_progress (
    rotation_id TEXT NOT NULL REFERENCES key_rotations (id),
    target TEXT NOT NULL,
    cursor TEXT,
    done INTEGER NOT NULL DEFAULT 0,
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
    reported_at TEXT NOT NULL
);
-- Blind-index keys have ids now (b1, b2, ...); the single key of before is b1.
UPDATE key_checks SET key_id = 'b1' WHERE purpose = 'blind_index' AND key_id = 'blind_index';
-- Re-encrypting a row changes how its values are stored, not what they are: the change history
-- records nothing for it (such a row would keep the old ciphertexts), and the history's own
-- copies of sealed values are re-encrypted in place, the one other UPDATE it allows.
CREATE TRIGGER change_history_skip_key_rotation BEFORE INSERT ON change_history
WHEN NEW.actor = 'system:key-rotation'
BEGIN SELECT RAISE(IGNORE); END;
DROP TRIGGER change_history_append_only;
CREATE TRIGGER change_history_append_only BEFORE UPDATE ON change_history
WHEN NOT (
    NEW.id IS OLD.id AND NEW.table_name IS OLD.table_name AND NEW.row_id IS OLD.row_id
    AND NEW.operation IS OLD.operation AND NEW.actor IS OLD.actor AND NEW.changed_at IS OLD.changed_at
    AND (
        (OLD.table_name = 'clients'
            AND NEW.old_row IS json_remove(OLD.old_row, '$.address', '$.home_municipality')
            AND NEW.new_row IS json_remove(OLD.new_row, '$.address', '$.home_municipality'))
        OR (SELECT actor FROM change_actor LIMIT 1) IS 'system:key-rotation'))
BEGIN SELECT RAISE(ABORT, 'change_history is append-only'); END;
-- Processing memos are append-only too; a rotation may re-encrypt their sealed values in place
-- and change nothing else of the row.
DROP TRIGGER processing_memos_no_update;
CREATE TRIGGER processing_memos_no_update BEFORE UPDATE ON processing_memos
WHEN NOT ((SELECT actor FROM change_actor LIMIT 1) IS 'system:key-rotation'
    AND NEW.registrar_id IS OLD.registrar_id AND NEW.id IS OLD.id)
BEGIN
    SELECT RAISE(ABORT, 'processing memos are append-only');
END;
DROP TRIGGER processing_memo_entries_no_update;
CREATE TRIGGER processing_memo_entries_no_update BEFORE UPDATE ON processing_memo_entries
WHEN NOT ((SELECT actor FROM change_actor LIMIT 1) IS 'system:key-rotation'
    AND NEW.registrar_id IS OLD.registrar_id AND NEW.id IS OLD.id AND NEW.memo_id IS OLD.memo_id)
BEGIN
    SELECT RAISE(ABORT, 'processing memos are append-only');
END;
