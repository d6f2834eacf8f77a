-- Client register (CL-1..CL-6) and the service areas that divide a registrar's data (AX-4).
-- Every client-data table carries registrar_id, its key and every unique key start with it, and
-- every foreign key stays inside one registrar (PL-7: ready to distribute by registrar_id).
-- Personal fields are ciphertext bound to table, column and row (PL-6); a client is found by
-- the blind index of the identity code (subject_index, the same index the usage log names the
-- person by).

CREATE TABLE service_areas (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    id TEXT NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id),
    UNIQUE (registrar_id, code)
) STRICT;

-- Every service type belongs to one service area of its registrar (AX-4).
CREATE TABLE service_types (
    registrar_id TEXT NOT NULL,
    id TEXT NOT NULL,
    code TEXT NOT NULL,
    service_area_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id),
    UNIQUE (registrar_id, code),
    FOREIGN KEY (registrar_id, service_area_id) REFERENCES service_areas (registrar_id, id)
) STRICT;

-- A staff user's right to a registrar's service area, with a validity period (AC-11, AX-4).
CREATE TABLE account_service_areas (
    id TEXT PRIMARY KEY NOT NULL,
    registrar_id TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    service_area_id TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_until TEXT,
    granted_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    FOREIGN KEY (registrar_id, service_area_id) REFERENCES service_areas (registrar_id, id)
) STRICT;
CREATE INDEX account_service_areas_account ON account_service_areas (account_id);

CREATE TABLE clients (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    id TEXT NOT NULL,
    subject_index BLOB,
    identity_code BLOB,
    first_names BLOB,
    surname BLOB,
    gender TEXT NOT NULL CHECK (gender IN ('male', 'female', 'unknown')),
    home_municipality TEXT,
    moved_in_on TEXT,
    moved_out_on TEXT,
    died_on TEXT,
    language TEXT,
    email BLOB,
    phone BLOB,
    next_of_kin BLOB,
    address BLOB,
    protection_order INTEGER NOT NULL DEFAULT 0,
    restricted INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    anonymised_at TEXT,
    PRIMARY KEY (registrar_id, id),
    UNIQUE (registrar_id, subject_index)
) STRICT;

CREATE TABLE services (
    registrar_id TEXT NOT NULL,
    id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('service_voucher', 'purchased_service')),
    service_type TEXT NOT NULL,
    service_name TEXT NOT NULL,
    -- Hundredths of the unit: 1.5 hours is 150.
    quantity_centi INTEGER NOT NULL CHECK (quantity_centi > 0),
    unit TEXT NOT NULL CHECK (unit IN ('hour', 'visit', 'day', 'euro')),
    unit_value_cents INTEGER,
    valid_from TEXT NOT NULL,
    valid_to TEXT NOT NULL,
    provider_id TEXT NOT NULL REFERENCES organisations (id),
    provider_unit_oid TEXT,
    decision_ref TEXT,
    status TEXT NOT NULL CHECK (status IN ('active', 'closed')),
    closed_on TEXT,
    additional_info BLOB,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id),
    FOREIGN KEY (registrar_id, client_id) REFERENCES clients (registrar_id, id),
    FOREIGN KEY (registrar_id, service_type) REFERENCES service_types (registrar_id, code)
) STRICT;
CREATE INDEX services_client ON services (registrar_id, client_id);
CREATE INDEX services_provider ON services (registrar_id, provider_id);

CREATE TABLE service_events (
    registrar_id TEXT NOT NULL,
    id TEXT NOT NULL,
    service_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    delivered_on TEXT NOT NULL,
    quantity_centi INTEGER NOT NULL CHECK (quantity_centi > 0),
    unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),
    note BLOB,
    recorded_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id),
    FOREIGN KEY (registrar_id, service_id) REFERENCES services (registrar_id, id)
) STRICT;
CREATE INDEX service_events_service ON service_events (registrar_id, service_id, delivered_on);
CREATE INDEX service_events_delivered ON service_events (registrar_id, delivered_on);

CREATE TRIGGER service_areas_history_insert AFTER INSERT ON service_areas
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('service_areas', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'code', NEW.code, 'name', NEW.name, 'created_at', NEW.created_at));
END;
CREATE TRIGGER service_areas_history_update AFTER UPDATE ON service_areas
WHEN OLD.registrar_id IS NOT NEW.registrar_id OR OLD.id IS NOT NEW.id OR OLD.code IS NOT NEW.code OR OLD.name IS NOT NEW.name OR OLD.created_at IS NOT NEW.created_at
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('service_areas', NEW.id, 'UPDATE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'code', OLD.code, 'name', OLD.name, 'created_at', OLD.created_at), json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'code', NEW.code, 'name', NEW.name, 'created_at', NEW.created_at));
END;
CREATE TRIGGER service_areas_history_delete AFTER DELETE ON service_areas
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('service_areas', OLD.id, 'DELETE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'code', OLD.code, 'name', OLD.name, 'created_at', OLD.created_at), NULL);
END;

CREATE TRIGGER service_types_history_insert AFTER INSERT ON service_types
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('service_types', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'code', NEW.code, 'service_area_id', NEW.service_area_id, 'created_at', NEW.created_at));
END;
CREATE TRIGGER service_types_history_update AFTER UPDATE ON service_types
WHEN OLD.registrar_id IS NOT NEW.registrar_id OR OLD.id IS NOT NEW.id OR OLD.code IS NOT NEW.code OR OLD.service_area_id IS NOT NEW.service_area_id OR OLD.created_at IS NOT NEW.created_at
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('service_types', NEW.id, 'UPDATE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'code', OLD.code, 'service_area_id', OLD.service_area_id, 'created_at', OLD.created_at), json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'code', NEW.code, 'service_area_id', NEW.service_area_id, 'created_at', NEW.created_at));
END;
CREATE TRIGGER service_types_history_delete AFTER DELETE ON service_types
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('service_types', OLD.id, 'DELETE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'code', OLD.code, 'service_area_id', OLD.service_area_id, 'created_at', OLD.created_at), NULL);
END;

CREATE TRIGGER account_service_areas_history_insert AFTER INSERT ON account_service_areas
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('account_service_areas', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('id', NEW.id, 'registrar_id', NEW.registrar_id, 'account_id', NEW.account_id, 'service_area_id', NEW.service_area_id, 'valid_from', NEW.valid_from, 'valid_until', NEW.valid_until, 'granted_by', NEW.granted_by, 'created_at', NEW.created_at));
END;
CREATE TRIGGER account_service_areas_history_update AFTER UPDATE ON account_service_areas
WHEN OLD.id IS NOT NEW.id OR OLD.registrar_id IS NOT NEW.registrar_id OR OLD.account_id IS NOT NEW.account_id OR OLD.service_area_id IS NOT NEW.service_area_id OR OLD.valid_from IS NOT NEW.valid_from OR OLD.valid_until IS NOT NEW.valid_until OR OLD.granted_by IS NOT NEW.granted_by OR OLD.created_at IS NOT NEW.created_at
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('account_service_areas', NEW.id, 'UPDATE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('id', OLD.id, 'registrar_id', OLD.registrar_id, 'account_id', OLD.account_id, 'service_area_id', OLD.service_area_id, 'valid_from', OLD.valid_from, 'valid_until', OLD.valid_until, 'granted_by', OLD.granted_by, 'created_at', OLD.created_at), json_object('id', NEW.id, 'registrar_id', NEW.registrar_id, 'account_id', NEW.account_id, 'service_area_id', NEW.service_area_id, 'valid_from', NEW.valid_from, 'valid_until', NEW.valid_until, 'granted_by', NEW.granted_by, 'created_at', NEW.created_at));
END;
CREATE TRIGGER account_service_areas_history_delete AFTER DELETE ON account_service_areas
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('account_service_areas', OLD.id, 'DELETE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('id', OLD.id, 'registrar_id', OLD.registrar_id, 'account_id', OLD.account_id, 'service_area_id', OLD.service_area_id, 'valid_from', OLD.valid_from, 'valid_until', OLD.valid_until, 'granted_by', OLD.granted_by, 'created_at', OLD.created_at), NULL);
END;

CREATE TRIGGER clients_history_insert AFTER INSERT ON clients
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('clients', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'subject_index', hex(NEW.subject_index), 'identity_code', hex(NEW.identity_code), 'first_names', hex(NEW.first_names), 'surname', hex(NEW.surname), 'gender', NEW.gender, 'home_municipality', NEW.home_municipality, 'moved_in_on', NEW.moved_in_on, 'moved_out_on', NEW.moved_out_on, 'died_on', NEW.died_on, 'language', NEW.language, 'email', hex(NEW.email), 'phone', hex(NEW.phone), 'next_of_kin', hex(NEW.next_of_kin), 'address', hex(NEW.address), 'protection_order', NEW.protection_order, 'restricted', NEW.restricted, 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'anonymised_at', NEW.anonymised_at));
END;
CREATE TRIGGER clients_history_update AFTER UPDATE ON clients
WHEN OLD.registrar_id IS NOT NEW.registrar_id OR OLD.id IS NOT NEW.id OR OLD.subject_index IS NOT NEW.subject_index OR OLD.identity_code IS NOT NEW.identity_code OR OLD.first_names IS NOT NEW.first_names OR OLD.surname IS NOT NEW.surname OR OLD.gender IS NOT NEW.gender OR OLD.home_municipality IS NOT NEW.home_municipality OR OLD.moved_in_on IS NOT NEW.moved_in_on OR OLD.moved_out_on IS NOT NEW.moved_out_on OR OLD.died_on IS NOT NEW.died_on OR OLD.language IS NOT NEW.language OR OLD.email IS NOT NEW.email OR OLD.phone IS NOT NEW.phone OR OLD.next_of_kin IS NOT NEW.next_of_kin OR OLD.address IS NOT NEW.address OR OLD.protection_order IS NOT NEW.protection_order OR OLD.restricted IS NOT NEW.restricted OR OLD.version IS NOT NEW.version OR OLD.created_at IS NOT NEW.created_at OR OLD.updated_at IS NOT NEW.updated_at OR OLD.anonymised_at IS NOT NEW.anonymised_at
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('clients', NEW.id, 'UPDATE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'subject_index', hex(OLD.subject_index), 'identity_code', hex(OLD.identity_code), 'first_names', hex(OLD.first_names), 'surname', hex(OLD.surname), 'gender', OLD.gender, 'home_municipality', OLD.home_municipality, 'moved_in_on', OLD.moved_in_on, 'moved_out_on', OLD.moved_out_on, 'died_on', OLD.died_on, 'language', OLD.language, 'email', hex(OLD.email), 'phone', hex(OLD.phone), 'next_of_kin', hex(OLD.next_of_kin), 'address', hex(OLD.address), 'protection_order', OLD.protection_order, 'restricted', OLD.restricted, 'version', OLD.version, 'created_at', OLD.created_at, 'updated_at', OLD.updated_at, 'anonymised_at', OLD.anonymised_at), json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'subject_index', hex(NEW.subject_index), 'identity_code', hex(NEW.identity_code), 'first_names', hex(NEW.first_names), 'surname', hex(NEW.surname), 'gender', NEW.gender, 'home_municipality', NEW.home_municipality, 'moved_in_on', NEW.moved_in_on, 'moved_out_on', NEW.moved_out_on, 'died_on', NEW.died_on, 'language', NEW.language, 'email', hex(NEW.email), 'phone', hex(NEW.phone), 'next_of_kin', hex(NEW.next_of_kin), 'address', hex(NEW.address), 'protection_order', NEW.protection_order, 'restricted', NEW.restricted, 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'anonymised_at', NEW.anonymised_at));
END;
CREATE TRIGGER clients_history_delete AFTER DELETE ON clients
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('clients', OLD.id, 'DELETE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'subject_index', hex(OLD.subject_index), 'identity_code', hex(OLD.identity_code), 'first_names', hex(OLD.first_names), 'surname', hex(OLD.surname), 'gender', OLD.gender, 'home_municipality', OLD.home_municipality, 'moved_in_on', OLD.moved_in_on, 'moved_out_on', OLD.moved_out_on, 'died_on', OLD.died_on, 'language', OLD.language, 'email', hex(OLD.email), 'phone', hex(OLD.phone), 'next_of_kin', hex(OLD.next_of_kin), 'address', hex(OLD.address), 'protection_order', OLD.protection_order, 'restricted', OLD.restricted, 'version', OLD.version, 'created_at', OLD.created_at, 'updated_at', OLD.updated_at, 'anonymised_at', OLD.anonymised_at), NULL);
END;

CREATE TRIGGER services_history_insert AFTER INSERT ON services
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('services', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'client_id', NEW.client_id, 'kind', NEW.kind, 'service_type', NEW.service_type, 'service_name', NEW.service_name, 'quantity_centi', NEW.quantity_centi, 'unit', NEW.unit, 'unit_value_cents', NEW.unit_value_cents, 'valid_from', NEW.valid_from, 'valid_to', NEW.valid_to, 'provider_id', NEW.provider_id, 'provider_unit_oid', NEW.provider_unit_oid, 'decision_ref', NEW.decision_ref, 'status', NEW.status, 'closed_on', NEW.closed_on, 'additional_info', hex(NEW.additional_info), 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at));
END;
CREATE TRIGGER services_history_update AFTER UPDATE ON services
WHEN OLD.registrar_id IS NOT NEW.registrar_id OR OLD.id IS NOT NEW.id OR OLD.client_id IS NOT NEW.client_id OR OLD.kind IS NOT NEW.kind OR OLD.service_type IS NOT NEW.service_type OR OLD.service_name IS NOT NEW.service_name OR OLD.quantity_centi IS NOT NEW.quantity_centi OR OLD.unit IS NOT NEW.unit OR OLD.unit_value_cents IS NOT NEW.unit_value_cents OR OLD.valid_from IS NOT NEW.valid_from OR OLD.valid_to IS NOT NEW.valid_to OR OLD.provider_id IS NOT NEW.provider_id OR OLD.provider_unit_oid IS NOT NEW.provider_unit_oid OR OLD.decision_ref IS NOT NEW.decision_ref OR OLD.status IS NOT NEW.status OR OLD.closed_on IS NOT NEW.closed_on OR OLD.additional_info IS NOT NEW.additional_info OR OLD.version IS NOT NEW.version OR OLD.created_at IS NOT NEW.created_at OR OLD.updated_at IS NOT NEW.updated_at
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('services', NEW.id, 'UPDATE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'client_id', OLD.client_id, 'kind', OLD.kind, 'service_type', OLD.service_type, 'service_name', OLD.service_name, 'quantity_centi', OLD.quantity_centi, 'unit', OLD.unit, 'unit_value_cents', OLD.unit_value_cents, 'valid_from', OLD.valid_from, 'valid_to', OLD.valid_to, 'provider_id', OLD.provider_id, 'provider_unit_oid', OLD.provider_unit_oid, 'decision_ref', OLD.decision_ref, 'status', OLD.status, 'closed_on', OLD.closed_on, 'additional_info', hex(OLD.additional_info), 'version', OLD.version, 'created_at', OLD.created_at, 'updated_at', OLD.updated_at), json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'client_id', NEW.client_id, 'kind', NEW.kind, 'service_type', NEW.service_type, 'service_name', NEW.service_name, 'quantity_centi', NEW.quantity_centi, 'unit', NEW.unit, 'unit_value_cents', NEW.unit_value_cents, 'valid_from', NEW.valid_from, 'valid_to', NEW.valid_to, 'provider_id', NEW.provider_id, 'provider_unit_oid', NEW.provider_unit_oid, 'decision_ref', NEW.decision_ref, 'status', NEW.status, 'closed_on', NEW.closed_on, 'additional_info', hex(NEW.additional_info), 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at));
END;
CREATE TRIGGER services_history_delete AFTER DELETE ON services
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('services', OLD.id, 'DELETE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'client_id', OLD.client_id, 'kind', OLD.kind, 'service_type', OLD.service_type, 'service_name', OLD.service_name, 'quantity_centi', OLD.quantity_centi, 'unit', OLD.unit, 'unit_value_cents', OLD.unit_value_cents, 'valid_from', OLD.valid_from, 'valid_to', OLD.valid_to, 'provider_id', OLD.provider_id, 'provider_unit_oid', OLD.provider_unit_oid, 'decision_ref', OLD.decision_ref, 'status', OLD.status, 'closed_on', OLD.closed_on, 'additional_info', hex(OLD.additional_info), 'version', OLD.version, 'created_at', OLD.created_at, 'updated_at', OLD.updated_at), NULL);
END;

CREATE TRIGGER service_events_history_insert AFTER INSERT ON service_events
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('service_events', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'service_id', NEW.service_id, 'client_id', NEW.client_id, 'delivered_on', NEW.delivered_on, 'quantity_centi', NEW.quantity_centi, 'unit_price_cents', NEW.unit_price_cents, 'note', hex(NEW.note), 'recorded_by', NEW.recorded_by, 'created_at', NEW.created_at));
END;
CREATE TRIGGER service_events_history_update AFTER UPDATE ON service_events
WHEN OLD.registrar_id IS NOT NEW.registrar_id OR OLD.id IS NOT NEW.id OR OLD.service_id IS NOT NEW.service_id OR OLD.client_id IS NOT NEW.client_id OR OLD.delivered_on IS NOT NEW.delivered_on OR OLD.quantity_centi IS NOT NEW.quantity_centi OR OLD.unit_price_cents IS NOT NEW.unit_price_cents OR OLD.note IS NOT NEW.note OR OLD.recorded_by IS NOT NEW.recorded_by OR OLD.created_at IS NOT NEW.created_at
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('service_events', NEW.id, 'UPDATE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'service_id', OLD.service_id, 'client_id', OLD.client_id, 'delivered_on', OLD.delivered_on, 'quantity_centi', OLD.quantity_centi, 'unit_price_cents', OLD.unit_price_cents, 'note', hex(OLD.note), 'recorded_by', OLD.recorded_by, 'created_at', OLD.created_at), json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'service_id', NEW.service_id, 'client_id', NEW.client_id, 'delivered_on', NEW.delivered_on, 'quantity_centi', NEW.quantity_centi, 'unit_price_cents', NEW.unit_price_cents, 'note', hex(NEW.note), 'recorded_by', NEW.recorded_by, 'created_at', NEW.created_at));
END;
CREATE TRIGGER service_events_history_delete AFTER DELETE ON service_events
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('service_events', OLD.id, 'DELETE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'service_id', OLD.service_id, 'client_id', OLD.client_id, 'delivered_on', OLD.delivered_on, 'quantity_centi', OLD.quantity_centi, 'unit_price_cents', OLD.unit_price_cents, 'note', hex(OLD.note), 'recorded_by', OLD.recorded_by, 'created_at', OLD.created_at), NULL);
END;

