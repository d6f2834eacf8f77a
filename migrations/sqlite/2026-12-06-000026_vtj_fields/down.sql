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
DROP TRIGGER clients_history_insert;
DROP TRIGGER clients_history_update;
DROP TRIGGER clients_history_delete;
ALTER TABLE clients DROP COLUMN died_on_precision;
ALTER TABLE clients DROP COLUMN moved_out_on_precision;
ALTER TABLE clients DROP COLUMN moved_in_on_precision;
ALTER TABLE clients DROP COLUMN guardianship;
ALTER TABLE clients DROP COLUMN postal_address;
ALTER TABLE clients DROP COLUMN temporary_address;

CREATE TRIGGER clients_history_insert AFTER INSERT ON clients
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('clients', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'subject_index', hex(NEW.subject_index), 'identity_code', hex(NEW.identity_code), 'first_names', hex(NEW.first_names), 'surname', hex(NEW.surname), 'gender', NEW.gender, 'home_municipality', NEW.home_municipality, 'moved_in_on', NEW.moved_in_on, 'moved_out_on', NEW.moved_out_on, 'died_on', NEW.died_on, 'language', NEW.language, 'email', hex(NEW.email), 'phone', hex(NEW.phone), 'next_of_kin', hex(NEW.next_of_kin), 'address', hex(NEW.address), 'protection_order', NEW.protection_order, 'restricted', NEW.restricted, 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'anonymised_at', NEW.anonymised_at, 'birth_year', NEW.birth_year));
END;
CREATE TRIGGER clients_history_update AFTER UPDATE ON clients
WHEN OLD.registrar_id IS NOT NEW.registrar_id OR OLD.id IS NOT NEW.id OR OLD.subject_index IS NOT NEW.subject_index OR OLD.identity_code IS NOT NEW.identity_code OR OLD.first_names IS NOT NEW.first_names OR OLD.surname IS NOT NEW.surname OR OLD.gender IS NOT NEW.gender OR OLD.home_municipality IS NOT NEW.home_municipality OR OLD.moved_in_on IS NOT NEW.moved_in_on OR OLD.moved_out_on IS NOT NEW.moved_out_on OR OLD.died_on IS NOT NEW.died_on OR OLD.language IS NOT NEW.language OR OLD.email IS NOT NEW.email OR OLD.phone IS NOT NEW.phone OR OLD.next_of_kin IS NOT NEW.next_of_kin OR OLD.address IS NOT NEW.address OR OLD.protection_order IS NOT NEW.protection_order OR OLD.restricted IS NOT NEW.restricted OR OLD.version IS NOT NEW.version OR OLD.created_at IS NOT NEW.created_at OR OLD.updated_at IS NOT NEW.updated_at OR OLD.anonymised_at IS NOT NEW.anonymised_at OR OLD.birth_year IS NOT NEW.birth_year
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('clients', NEW.id, 'UPDATE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'subject_index', hex(OLD.subject_index), 'identity_code', hex(OLD.identity_code), 'first_names', hex(OLD.first_names), 'surname', hex(OLD.surname), 'gender', OLD.gender, 'home_municipality', OLD.home_municipality, 'moved_in_on', OLD.moved_in_on, 'moved_out_on', OLD.moved_out_on, 'died_on', OLD.died_on, 'language', OLD.language, 'email', hex(OLD.email), 'phone', hex(OLD.phone), 'next_of_kin', hex(OLD.next_of_kin), 'address', hex(OLD.address), 'protection_order', OLD.protection_order, 'restricted', OLD.restricted, 'version', OLD.version, 'created_at', OLD.created_at, 'updated_at', OLD.updated_at, 'anonymised_at', OLD.anonymised_at, 'birth_year', OLD.birth_year), json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'subject_index', hex(NEW.subject_index), 'identity_code', hex(NEW.identity_code), 'first_names', hex(NEW.first_names), 'surname', hex(NEW.surname), 'gender', NEW.gender, 'home_municipality', NEW.home_municipality, 'moved_in_on', NEW.moved_in_on, 'moved_out_on', NEW.moved_out_on, 'died_on', NEW.died_on, 'language', NEW.language, 'email', hex(NEW.email), 'phone', hex(NEW.phone), 'next_of_kin', hex(NEW.next_of_kin), 'address', hex(NEW.address), 'protection_order', NEW.protection_order, 'restricted', NEW.restricted, 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'anonymised_at', NEW.anonymised_at, 'birth_year', NEW.birth_year));
END;
CREATE TRIGGER clients_history_delete AFTER DELETE ON clients
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('clients', OLD.id, 'DELETE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'subject_index', hex(OLD.subject_index), 'identity_code', hex(OLD.identity_code), 'first_names', hex(OLD.first_names), 'surname', hex(OLD.surname), 'gender', OLD.gender, 'home_municipality', OLD.home_municipality, 'moved_in_on', OLD.moved_in_on, 'moved_out_on', OLD.moved_out_on, 'died_on', OLD.died_on, 'language', OLD.language, 'email', hex(OLD.email), 'phone', hex(OLD.phone), 'next_of_kin', hex(OLD.next_of_kin), 'address', hex(OLD.address), 'protection_order', OLD.protection_order, 'restricted', OLD.restricted, 'version', OLD.version, 'created_at', OLD.created_at, 'updated_at', OLD.updated_at, 'anonymised_at', OLD.anonymised_at, 'birth_year', OLD.birth_year), NULL);
END;
