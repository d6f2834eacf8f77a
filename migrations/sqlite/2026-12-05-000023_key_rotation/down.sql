DROP TRIGGER processing_memos_no_update;
CREATE TRIGGER processing_memos_no_update BEFORE UPDATE ON processing_memos
BEGIN
    SELECT RAISE(ABORT, 'processing memos are append-only');
END;
DROP TRIGGER processing_memo_entries_no_update;
CREATE TRIGGER processing_memo_entries_no_update BEFORE UPDATE ON processing_memo_entries
BEGIN
    SELECT RAISE(ABORT, 'processing memos are append-only');
END;
DROP TRIGGER change_history_append_only;
CREATE TRIGGER change_history_append_only BEFORE UPDATE ON change_history
WHEN NOT (OLD.table_name = 'clients'
    AND NEW.id IS OLD.id AND NEW.table_name IS OLD.table_name AND NEW.row_id IS OLD.row_id
    AND NEW.operation IS OLD.operation AND NEW.actor IS OLD.actor AND NEW.changed_at IS OLD.changed_at
    AND NEW.old_row IS json_remove(OLD.old_row, '$.address', '$.home_municipality')
    AND NEW.new_row IS json_remove(OLD.new_row, '$.address', '$.home_municipality'))
BEGIN SELECT RAISE(ABORT, 'change_history is append-only'); END;
DROP TRIGGER change_history_skip_key_rotation;
UPDATE key_checks SET key_id = 'blind_index' WHERE purpose = 'blind_index' AND key_id = 'b1';
DROP TABLE instance_keys;
DROP TABLE key_rotation_progress;
DROP TABLE key_rotations;
