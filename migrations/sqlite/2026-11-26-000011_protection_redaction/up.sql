-- CL-8: when a protection order arrives, the stored address and home municipality are purged
-- from the client's change history too, not only from the client row. The one UPDATE the
-- append-only history allows is that redaction, on rows of the clients table: it may only remove
-- the keys address and home_municipality from old_row and new_row; every other column must stay
-- as it was. DELETE stays reserved to the lifecycle runs (000009).
DROP TRIGGER change_history_append_only;
CREATE TRIGGER change_history_append_only BEFORE UPDATE ON change_history
WHEN NOT (OLD.table_name = 'clients'
    AND NEW.id IS OLD.id AND NEW.table_name IS OLD.table_name AND NEW.row_id IS OLD.row_id
    AND NEW.operation IS OLD.operation AND NEW.actor IS OLD.actor AND NEW.changed_at IS OLD.changed_at
    AND NEW.old_row IS json_remove(OLD.old_row, '$.address', '$.home_municipality')
    AND NEW.new_row IS json_remove(OLD.new_row, '$.address', '$.home_municipality'))
BEGIN SELECT RAISE(ABORT, 'change_history is append-only'); END;
