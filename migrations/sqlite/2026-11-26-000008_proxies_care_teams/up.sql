-- Proxies (CL-7) and care teams (AX-5). Both are client data of one registrar: registrar_id
-- leads every key and every foreign key stays inside the registrar (PL-7).

-- A person authorised to act for a client (CL-7). The proxy is found by the blind index of
-- their identity code (subject_index), so that /v1/me/client-records reaches the clients they
-- act for; their personal fields are sealed like the client's (PL-6). Revoking keeps the row.
CREATE TABLE proxies (
    registrar_id TEXT NOT NULL,
    id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    subject_index BLOB NOT NULL,
    identity_code BLOB NOT NULL,
    first_names BLOB NOT NULL,
    surname BLOB NOT NULL,
    phone BLOB,
    email BLOB,
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    revoked_at TEXT,
    revoked_by TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id),
    FOREIGN KEY (registrar_id, client_id) REFERENCES clients (registrar_id, id),
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
) STRICT;
CREATE INDEX proxies_client ON proxies (registrar_id, client_id);
CREATE INDEX proxies_subject ON proxies (registrar_id, subject_index);
-- One standing authorisation per person and client.
CREATE UNIQUE INDEX proxies_one_standing ON proxies (registrar_id, client_id, subject_index)
    WHERE revoked_at IS NULL;

-- A professional on the care team of a client's case in one service unit (AX-5): with a valid
-- membership of that unit it is the professional's care relationship with the client.
CREATE TABLE care_team_members (
    registrar_id TEXT NOT NULL,
    id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    service_unit_id TEXT NOT NULL REFERENCES service_units (id),
    team_role TEXT,
    valid_from TEXT NOT NULL,
    valid_until TEXT,
    added_by TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id),
    FOREIGN KEY (registrar_id, client_id) REFERENCES clients (registrar_id, id),
    CHECK (valid_until IS NULL OR valid_until >= valid_from)
) STRICT;
CREATE INDEX care_team_members_client ON care_team_members (registrar_id, client_id);
CREATE INDEX care_team_members_account ON care_team_members (registrar_id, account_id);

CREATE TRIGGER proxies_history_insert AFTER INSERT ON proxies
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('proxies', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'client_id', NEW.client_id, 'subject_index', hex(NEW.subject_index), 'identity_code', hex(NEW.identity_code), 'first_names', hex(NEW.first_names), 'surname', hex(NEW.surname), 'phone', hex(NEW.phone), 'email', hex(NEW.email), 'valid_from', NEW.valid_from, 'valid_to', NEW.valid_to, 'revoked_at', NEW.revoked_at, 'revoked_by', NEW.revoked_by, 'created_by', NEW.created_by, 'created_at', NEW.created_at));
END;
CREATE TRIGGER proxies_history_update AFTER UPDATE ON proxies
WHEN OLD.registrar_id IS NOT NEW.registrar_id OR OLD.id IS NOT NEW.id OR OLD.client_id IS NOT NEW.client_id OR OLD.subject_index IS NOT NEW.subject_index OR OLD.identity_code IS NOT NEW.identity_code OR OLD.first_names IS NOT NEW.first_names OR OLD.surname IS NOT NEW.surname OR OLD.phone IS NOT NEW.phone OR OLD.email IS NOT NEW.email OR OLD.valid_from IS NOT NEW.valid_from OR OLD.valid_to IS NOT NEW.valid_to OR OLD.revoked_at IS NOT NEW.revoked_at OR OLD.revoked_by IS NOT NEW.revoked_by OR OLD.created_by IS NOT NEW.created_by OR OLD.created_at IS NOT NEW.created_at
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('proxies', NEW.id, 'UPDATE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'client_id', OLD.client_id, 'subject_index', hex(OLD.subject_index), 'identity_code', hex(OLD.identity_code), 'first_names', hex(OLD.first_names), 'surname', hex(OLD.surname), 'phone', hex(OLD.phone), 'email', hex(OLD.email), 'valid_from', OLD.valid_from, 'valid_to', OLD.valid_to, 'revoked_at', OLD.revoked_at, 'revoked_by', OLD.revoked_by, 'created_by', OLD.created_by, 'created_at', OLD.created_at), json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'client_id', NEW.client_id, 'subject_index', hex(NEW.subject_index), 'identity_code', hex(NEW.identity_code), 'first_names', hex(NEW.first_names), 'surname', hex(NEW.surname), 'phone', hex(NEW.phone), 'email', hex(NEW.email), 'valid_from', NEW.valid_from, 'valid_to', NEW.valid_to, 'revoked_at', NEW.revoked_at, 'revoked_by', NEW.revoked_by, 'created_by', NEW.created_by, 'created_at', NEW.created_at));
END;
CREATE TRIGGER proxies_history_delete AFTER DELETE ON proxies
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('proxies', OLD.id, 'DELETE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'client_id', OLD.client_id, 'subject_index', hex(OLD.subject_index), 'identity_code', hex(OLD.identity_code), 'first_names', hex(OLD.first_names), 'surname', hex(OLD.surname), 'phone', hex(OLD.phone), 'email', hex(OLD.email), 'valid_from', OLD.valid_from, 'valid_to', OLD.valid_to, 'revoked_at', OLD.revoked_at, 'revoked_by', OLD.revoked_by, 'created_by', OLD.created_by, 'created_at', OLD.created_at), NULL);
END;


CREATE TRIGGER care_team_members_history_insert AFTER INSERT ON care_team_members
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('care_team_members', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'client_id', NEW.client_id, 'account_id', NEW.account_id, 'service_unit_id', NEW.service_unit_id, 'team_role', NEW.team_role, 'valid_from', NEW.valid_from, 'valid_until', NEW.valid_until, 'added_by', NEW.added_by, 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at));
END;
CREATE TRIGGER care_team_members_history_update AFTER UPDATE ON care_team_members
WHEN OLD.registrar_id IS NOT NEW.registrar_id OR OLD.id IS NOT NEW.id OR OLD.client_id IS NOT NEW.client_id OR OLD.account_id IS NOT NEW.account_id OR OLD.service_unit_id IS NOT NEW.service_unit_id OR OLD.team_role IS NOT NEW.team_role OR OLD.valid_from IS NOT NEW.valid_from OR OLD.valid_until IS NOT NEW.valid_until OR OLD.added_by IS NOT NEW.added_by OR OLD.version IS NOT NEW.version OR OLD.created_at IS NOT NEW.created_at OR OLD.updated_at IS NOT NEW.updated_at
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('care_team_members', NEW.id, 'UPDATE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'client_id', OLD.client_id, 'account_id', OLD.account_id, 'service_unit_id', OLD.service_unit_id, 'team_role', OLD.team_role, 'valid_from', OLD.valid_from, 'valid_until', OLD.valid_until, 'added_by', OLD.added_by, 'version', OLD.version, 'created_at', OLD.created_at, 'updated_at', OLD.updated_at), json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'client_id', NEW.client_id, 'account_id', NEW.account_id, 'service_unit_id', NEW.service_unit_id, 'team_role', NEW.team_role, 'valid_from', NEW.valid_from, 'valid_until', NEW.valid_until, 'added_by', NEW.added_by, 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at));
END;
CREATE TRIGGER care_team_members_history_delete AFTER DELETE ON care_team_members
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('care_team_members', OLD.id, 'DELETE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'client_id', OLD.client_id, 'account_id', OLD.account_id, 'service_unit_id', OLD.service_unit_id, 'team_role', OLD.team_role, 'valid_from', OLD.valid_from, 'valid_until', OLD.valid_until, 'added_by', OLD.added_by, 'version', OLD.version, 'created_at', OLD.created_at, 'updated_at', OLD.updated_at), NULL);
END;

