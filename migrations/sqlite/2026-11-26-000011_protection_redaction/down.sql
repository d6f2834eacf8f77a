DROP TRIGGER change_history_append_only;
CREATE TRIGGER change_history_append_only BEFORE UPDATE ON change_history
BEGIN SELECT RAISE(ABORT, 'change_history is append-only'); END;
