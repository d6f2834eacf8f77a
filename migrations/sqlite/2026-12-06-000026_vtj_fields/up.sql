-- VT-4 (issue 25 point 3): what VTJ gives about a client is kept, not dropped.
--
-- temporary_address, postal_address: the temporary (TILAPAINEN_KOTIMAINEN_OSOITE,
-- TILAPAINEN_ULKOMAINEN_OSOITE) and postal (KOTIMAINEN_POSTIOSOITE, ULKOMAINEN_POSTIOSOITE)
-- addresses beside the permanent one, sealed to their row like address. Like address they are
-- never stored under a protection order (CL-8, VT-6), and the order purges them from the change
-- history too.
-- guardianship: EDUNVALVONTA and EDUNVALVONTAVALTUUTUS with their dates, sealed JSON.
-- moved_in_on_precision, moved_out_on_precision, died_on_precision: 'month' or 'year' when VTJ gave
-- the date with that precision only (tarkkuus KUUKAUSI or year); the date column then holds the
-- first day of that month or year. NULL: a full date.
ALTER TABLE clients ADD COLUMN temporary_address BLOB;
ALTER TABLE clients ADD COLUMN postal_address BLOB;
ALTER TABLE clients ADD COLUMN guardianship BLOB;
ALTER TABLE clients ADD COLUMN moved_in_on_precision TEXT
    CHECK (moved_in_on_precision IS NULL OR moved_in_on_precision IN ('month', 'year'));
ALTER TABLE clients ADD COLUMN moved_out_on_precision TEXT
    CHECK (moved_out_on_precision IS NULL OR moved_out_on_precision IN ('month', 'year'));
ALTER TABLE clients ADD COLUMN died_on_precision TEXT
    CHECK (died_on_precision IS NULL OR died_on_precision IN ('month', 'year'));

-- The one UPDATE of the history besides a key rotation's: a protection order removes every
-- address and the home municipality (000011, 000023), now the secondary addresses too.
DROP TRIGGER change_history_append_only;
CREATE TRIGGER change_history_append_only BEFORE UPDATE ON change_history
WHEN NOT (
    NEW.id IS OLD.id AND NEW.table_name IS OLD.table_name AND NEW.row_id IS OLD.row_id
    AND NEW.operation IS OLD.operation AND NEW.actor IS OLD.actor AND NEW.changed_at IS OLD.changed_at
    AND (
        (OLD.table_name = 'clients'
            AND NEW.old_row IS json_remove(OLD.old_row, '$.address', '$.home_municipality',
                '$.temporary_address', '$.postal_address')
            AND NEW.new_row IS json_remove(OLD.new_row, '$.address', '$.home_municipality',
                '$.temporary_address', '$.postal_address'))
        OR (SELECT actor FROM change_actor LIMIT 1) IS 'system:key-rotation'))
BEGIN SELECT RAISE(ABORT, 'change_history is append-only'); END;

-- The history triggers of clients, with the new columns (tools/sqlite-history-triggers.py).
DROP TRIGGER clients_history_insert;
DROP TRIGGER clients_history_update;
DROP TRIGGER clients_history_delete;

CREATE TRIGGER clients_history_insert AFTER INSERT ON clients
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('clients', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'subject_index', hex(NEW.subject_index), 'identity_code', hex(NEW.identity_code), 'first_names', hex(NEW.first_names), 'surname', hex(NEW.surname), 'gender', NEW.gender, 'home_municipality', NEW.home_municipality, 'moved_in_on', NEW.moved_in_on, 'moved_out_on', NEW.moved_out_on, 'died_on', NEW.died_on, 'language', NEW.language, 'email', hex(NEW.email), 'phone', hex(NEW.phone), 'next_of_kin', hex(NEW.next_of_kin), 'address', hex(NEW.address), 'protection_order', NEW.protection_order, 'restricted', NEW.restricted, 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'anonymised_at', NEW.anonymised_at, 'birth_year', NEW.birth_year, 'temporary_address', hex(NEW.temporary_address), 'postal_address', hex(NEW.postal_address), 'guardianship', hex(NEW.guardianship), 'moved_in_on_precision', NEW.moved_in_on_precision, 'moved_out_on_precision', NEW.moved_out_on_precision, 'died_on_precision', NEW.died_on_precision));
END;
CREATE TRIGGER clients_history_update AFTER UPDATE ON clients
WHEN OLD.registrar_id IS NOT NEW.registrar_id OR OLD.id IS NOT NEW.id OR OLD.subject_index IS NOT NEW.subject_index OR OLD.identity_code IS NOT NEW.identity_code OR OLD.first_names IS NOT NEW.first_names OR OLD.surname IS NOT NEW.surname OR OLD.gender IS NOT NEW.gender OR OLD.home_municipality IS NOT NEW.home_municipality OR OLD.moved_in_on IS NOT NEW.moved_in_on OR OLD.moved_out_on IS NOT NEW.moved_out_on OR OLD.died_on IS NOT NEW.died_on OR OLD.language IS NOT NEW.language OR OLD.email IS NOT NEW.email OR OLD.phone IS NOT NEW.phone OR OLD.next_of_kin IS NOT NEW.next_of_kin OR OLD.address IS NOT NEW.address OR OLD.protection_order IS NOT NEW.protection_order OR OLD.restricted IS NOT NEW.restricted OR OLD.version IS NOT NEW.version OR OLD.created_at IS NOT NEW.created_at OR OLD.updated_at IS NOT NEW.updated_at OR OLD.anonymised_at IS NOT NEW.anonymised_at OR OLD.birth_year IS NOT NEW.birth_year OR OLD.temporary_address IS NOT NEW.temporary_address OR OLD.postal_address IS NOT NEW.postal_address OR OLD.guardianship IS NOT NEW.guardianship OR OLD.moved_in_on_precision IS NOT NEW.moved_in_on_precision OR OLD.moved_out_on_precision IS NOT NEW.moved_out_on_precision OR OLD.died_on_precision IS NOT NEW.died_on_precision
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('clients', NEW.id, 'UPDATE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'subject_index', hex(OLD.subject_index), 'identity_code', hex(OLD.identity_code), 'first_names', hex(OLD.first_names), 'surname', hex(OLD.surname), 'gender', OLD.gender, 'home_municipality', OLD.home_municipality, 'moved_in_on', OLD.moved_in_on, 'moved_out_on', OLD.moved_out_on, 'died_on', OLD.died_on, 'language', OLD.language, 'email', hex(OLD.email), 'phone', hex(OLD.phone), 'next_of_kin', hex(OLD.next_of_kin), 'address', hex(OLD.address), 'protection_order', OLD.protection_order, 'restricted', OLD.restricted, 'version', OLD.version, 'created_at', OLD.created_at, 'updated_at', OLD.updated_at, 'anonymised_at', OLD.anonymised_at, 'birth_year', OLD.birth_year, 'temporary_address', hex(OLD.temporary_address), 'postal_address', hex(OLD.postal_address), 'guardianship', hex(OLD.guardianship), 'moved_in_on_precision', OLD.moved_in_on_precision, 'moved_out_on_precision', OLD.moved_out_on_precision, 'died_on_precision', OLD.died_on_precision), json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'subject_index', hex(NEW.subject_index), 'identity_code', hex(NEW.identity_code), 'first_names', hex(NEW.first_names), 'surname', hex(NEW.surname), 'gender', NEW.gender, 'home_municipality', NEW.home_municipality, 'moved_in_on', NEW.moved_in_on, 'moved_out_on', NEW.moved_out_on, 'died_on', NEW.died_on, 'language', NEW.language, 'email', hex(NEW.email), 'phone', hex(NEW.phone), 'next_of_kin', hex(NEW.next_of_kin), 'address', hex(NEW.address), 'protection_order', NEW.protection_order, 'restricted', NEW.restricted, 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'anonymised_at', NEW.anonymised_at, 'birth_year', NEW.birth_year, 'temporary_address', hex(NEW.temporary_address), 'postal_address', hex(NEW.postal_address), 'guardianship', hex(NEW.guardianship), 'moved_in_on_precision', NEW.moved_in_on_precision, 'moved_out_on_precision', NEW.moved_out_on_precision, 'died_on_precision', NEW.died_on_precision));
END;
CREATE TRIGGER clients_history_delete AFTER DELETE ON clients
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('clients', OLD.id, 'DELETE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'subject_index', hex(OLD.subject_index), 'identity_code', hex(OLD.identity_code), 'first_names', hex(OLD.first_names), 'surname', hex(OLD.surname), 'gender', OLD.gender, 'home_municipality', OLD.home_municipality, 'moved_in_on', OLD.moved_in_on, 'moved_out_on', OLD.moved_out_on, 'died_on', OLD.died_on, 'language', OLD.language, 'email', hex(OLD.email), 'phone', hex(OLD.phone), 'next_of_kin', hex(OLD.next_of_kin), 'address', hex(OLD.address), 'protection_order', OLD.protection_order, 'restricted', OLD.restricted, 'version', OLD.version, 'created_at', OLD.created_at, 'updated_at', OLD.updated_at, 'anonymised_at', OLD.anonymised_at, 'birth_year', OLD.birth_year, 'temporary_address', hex(OLD.temporary_address), 'postal_address', hex(OLD.postal_address), 'guardianship', hex(OLD.guardianship), 'moved_in_on_precision', OLD.moved_in_on_precision, 'moved_out_on_precision', OLD.moved_out_on_precision, 'died_on_precision', OLD.died_on_precision), NULL);
END;
