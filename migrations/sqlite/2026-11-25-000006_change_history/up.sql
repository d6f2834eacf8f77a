-- Change history (AU-9, CL-17): every insert, update and delete of a tracked table leaves a row
-- here, made by a database trigger, so changes made directly in the database are caught too.
-- The actor is the application user when the application names one for its transaction, the
-- database otherwise. Encrypted columns are copied as ciphertext. Here: organisations and the
-- history of users' rights (AC-8, AC-11); the accounts themselves are not copied, so that an
-- account deleted after closing (AC-8) leaves no personal data behind. The register issues add
-- their client tables the same way.

CREATE TABLE change_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name TEXT NOT NULL,
    row_id TEXT NOT NULL,
    operation TEXT NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE')),
    actor TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    old_row TEXT,
    new_row TEXT
) STRICT;
CREATE INDEX change_history_row ON change_history (table_name, row_id, id);

-- The application user of the current write transaction: set at its start and cleared before
-- its commit (SQLite serialises writers, so one row is enough).
CREATE TABLE change_actor (actor TEXT NOT NULL) STRICT;

CREATE TRIGGER change_history_append_only BEFORE UPDATE ON change_history
BEGIN SELECT RAISE(ABORT, 'change_history is append-only'); END;
CREATE TRIGGER change_history_no_delete BEFORE DELETE ON change_history
BEGIN SELECT RAISE(ABORT, 'change_history is append-only'); END;

CREATE TRIGGER organisations_history_insert AFTER INSERT ON organisations
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('organisations', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('id', NEW.id, 'name', NEW.name, 'kind', NEW.kind, 'oid', NEW.oid, 'business_id', NEW.business_id, 'strong_authentication_required', NEW.strong_authentication_required, 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at));
END;
CREATE TRIGGER organisations_history_update AFTER UPDATE ON organisations
WHEN OLD.id IS NOT NEW.id OR OLD.name IS NOT NEW.name OR OLD.kind IS NOT NEW.kind OR OLD.oid IS NOT NEW.oid OR OLD.business_id IS NOT NEW.business_id OR OLD.strong_authentication_required IS NOT NEW.strong_authentication_required OR OLD.version IS NOT NEW.version OR OLD.created_at IS NOT NEW.created_at OR OLD.updated_at IS NOT NEW.updated_at
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('organisations', NEW.id, 'UPDATE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('id', OLD.id, 'name', OLD.name, 'kind', OLD.kind, 'oid', OLD.oid, 'business_id', OLD.business_id, 'strong_authentication_required', OLD.strong_authentication_required, 'version', OLD.version, 'created_at', OLD.created_at, 'updated_at', OLD.updated_at), json_object('id', NEW.id, 'name', NEW.name, 'kind', NEW.kind, 'oid', NEW.oid, 'business_id', NEW.business_id, 'strong_authentication_required', NEW.strong_authentication_required, 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at));
END;
CREATE TRIGGER organisations_history_delete AFTER DELETE ON organisations
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('organisations', OLD.id, 'DELETE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('id', OLD.id, 'name', OLD.name, 'kind', OLD.kind, 'oid', OLD.oid, 'business_id', OLD.business_id, 'strong_authentication_required', OLD.strong_authentication_required, 'version', OLD.version, 'created_at', OLD.created_at, 'updated_at', OLD.updated_at), NULL);
END;


CREATE TRIGGER account_roles_history_insert AFTER INSERT ON account_roles
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('account_roles', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('id', NEW.id, 'account_id', NEW.account_id, 'role', NEW.role, 'valid_from', NEW.valid_from, 'valid_until', NEW.valid_until, 'granted_by', NEW.granted_by, 'created_at', NEW.created_at));
END;
CREATE TRIGGER account_roles_history_update AFTER UPDATE ON account_roles
WHEN OLD.id IS NOT NEW.id OR OLD.account_id IS NOT NEW.account_id OR OLD.role IS NOT NEW.role OR OLD.valid_from IS NOT NEW.valid_from OR OLD.valid_until IS NOT NEW.valid_until OR OLD.granted_by IS NOT NEW.granted_by OR OLD.created_at IS NOT NEW.created_at
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('account_roles', NEW.id, 'UPDATE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('id', OLD.id, 'account_id', OLD.account_id, 'role', OLD.role, 'valid_from', OLD.valid_from, 'valid_until', OLD.valid_until, 'granted_by', OLD.granted_by, 'created_at', OLD.created_at), json_object('id', NEW.id, 'account_id', NEW.account_id, 'role', NEW.role, 'valid_from', NEW.valid_from, 'valid_until', NEW.valid_until, 'granted_by', NEW.granted_by, 'created_at', NEW.created_at));
END;
CREATE TRIGGER account_roles_history_delete AFTER DELETE ON account_roles
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('account_roles', OLD.id, 'DELETE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('id', OLD.id, 'account_id', OLD.account_id, 'role', OLD.role, 'valid_from', OLD.valid_from, 'valid_until', OLD.valid_until, 'granted_by', OLD.granted_by, 'created_at', OLD.created_at), NULL);
END;

CREATE TRIGGER account_service_units_history_insert AFTER INSERT ON account_service_units
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('account_service_units', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('id', NEW.id, 'account_id', NEW.account_id, 'service_unit_id', NEW.service_unit_id, 'valid_from', NEW.valid_from, 'valid_until', NEW.valid_until, 'created_at', NEW.created_at));
END;
CREATE TRIGGER account_service_units_history_update AFTER UPDATE ON account_service_units
WHEN OLD.id IS NOT NEW.id OR OLD.account_id IS NOT NEW.account_id OR OLD.service_unit_id IS NOT NEW.service_unit_id OR OLD.valid_from IS NOT NEW.valid_from OR OLD.valid_until IS NOT NEW.valid_until OR OLD.created_at IS NOT NEW.created_at
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('account_service_units', NEW.id, 'UPDATE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('id', OLD.id, 'account_id', OLD.account_id, 'service_unit_id', OLD.service_unit_id, 'valid_from', OLD.valid_from, 'valid_until', OLD.valid_until, 'created_at', OLD.created_at), json_object('id', NEW.id, 'account_id', NEW.account_id, 'service_unit_id', NEW.service_unit_id, 'valid_from', NEW.valid_from, 'valid_until', NEW.valid_until, 'created_at', NEW.created_at));
END;
CREATE TRIGGER account_service_units_history_delete AFTER DELETE ON account_service_units
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('account_service_units', OLD.id, 'DELETE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('id', OLD.id, 'account_id', OLD.account_id, 'service_unit_id', OLD.service_unit_id, 'valid_from', OLD.valid_from, 'valid_until', OLD.valid_until, 'created_at', OLD.created_at), NULL);
END;
