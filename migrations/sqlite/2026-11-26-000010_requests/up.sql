-- Idempotency keys (PL-2) and data-subject requests with their due dates (CL-12).
--
-- idempotency_keys: one row per (caller, key) of a creating POST. While the first request runs
-- the row is `pending` (a second request with the key gets 409); once it answered 201 the row
-- keeps that answer (status, Location, ETag, body) so a retry is answered with it and creates
-- nothing; a request that failed leaves no row. The body may hold personal data (a created
-- client): it is ciphertext bound to this table, column and row (PL-6), and what it discloses
-- (subject index, data kind and id) is kept so that a replay writes its usage entry (AU-1).
-- registrar_id is the registrar named in the path (`platform` for other paths): the rows are
-- distributed with the register they belong to (PL-7).
--
-- data_subject_requests: access, rectification, restriction, objection and erasure requests
-- (GDPR art. 12-22) with the due date of one month from receipt, extendable by at most two
-- months with the reason notified within the first month; a refusal records its reasons and
-- the complaint route. The person is the blind index of the identity code (the same index the
-- usage log and the client register use), the code itself and the requester's contact data are
-- ciphertext. client_id links the register's client with that index, when there was one at
-- receipt; it is not a foreign key, so that the client's anonymisation and deletion (CL-14,
-- CL-15) are not held up by a request about them.

CREATE TABLE idempotency_keys (
    registrar_id TEXT NOT NULL,
    caller TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    -- SHA-256 of method, path and body.
    request_hash BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'completed')),
    status INTEGER,
    location TEXT,
    etag TEXT,
    content_type TEXT,
    -- The answer held a secret shown only once (Cache-Control: no-store): its body is not kept
    -- and a retry is told so (409) instead of getting the secret again.
    withheld INTEGER NOT NULL DEFAULT 0,
    body BLOB,
    -- What the stored response discloses, for the usage entry of a replay (AU-1).
    disclosure BLOB,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, caller, idempotency_key)
) STRICT;
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (registrar_id, expires_at);

CREATE TABLE data_subject_requests (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'rectification', 'restriction', 'objection', 'erasure')),
    subject_index BLOB NOT NULL,
    identity_code BLOB NOT NULL,
    client_id TEXT,
    requester BLOB,
    details BLOB,
    received_on TEXT NOT NULL,
    -- One calendar month from receipt; due_on moves when the deadline is extended.
    first_due_on TEXT NOT NULL,
    due_on TEXT NOT NULL,
    extension_reason BLOB,
    extension_notified_on TEXT,
    status TEXT NOT NULL CHECK (status IN ('received', 'in_progress', 'completed', 'refused')),
    refusal_reasons BLOB,
    complaint_route TEXT,
    closed_on TEXT,
    handled_by TEXT,
    created_by TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id),
    CHECK (due_on >= first_due_on),
    CHECK (status <> 'refused' OR (refusal_reasons IS NOT NULL AND complaint_route IS NOT NULL))
) STRICT;
CREATE INDEX data_subject_requests_due ON data_subject_requests (registrar_id, due_on, id);
CREATE INDEX data_subject_requests_subject ON data_subject_requests (registrar_id, subject_index);

CREATE TRIGGER data_subject_requests_history_insert AFTER INSERT ON data_subject_requests
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('data_subject_requests', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'kind', NEW.kind, 'subject_index', hex(NEW.subject_index), 'identity_code', hex(NEW.identity_code), 'client_id', NEW.client_id, 'requester', hex(NEW.requester), 'details', hex(NEW.details), 'received_on', NEW.received_on, 'first_due_on', NEW.first_due_on, 'due_on', NEW.due_on, 'extension_reason', hex(NEW.extension_reason), 'extension_notified_on', NEW.extension_notified_on, 'status', NEW.status, 'refusal_reasons', hex(NEW.refusal_reasons), 'complaint_route', NEW.complaint_route, 'closed_on', NEW.closed_on, 'handled_by', NEW.handled_by, 'created_by', NEW.created_by, 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at));
END;
CREATE TRIGGER data_subject_requests_history_update AFTER UPDATE ON data_subject_requests
WHEN OLD.registrar_id IS NOT NEW.registrar_id OR OLD.id IS NOT NEW.id OR OLD.kind IS NOT NEW.kind OR OLD.subject_index IS NOT NEW.subject_index OR OLD.identity_code IS NOT NEW.identity_code OR OLD.client_id IS NOT NEW.client_id OR OLD.requester IS NOT NEW.requester OR OLD.details IS NOT NEW.details OR OLD.received_on IS NOT NEW.received_on OR OLD.first_due_on IS NOT NEW.first_due_on OR OLD.due_on IS NOT NEW.due_on OR OLD.extension_reason IS NOT NEW.extension_reason OR OLD.extension_notified_on IS NOT NEW.extension_notified_on OR OLD.status IS NOT NEW.status OR OLD.refusal_reasons IS NOT NEW.refusal_reasons OR OLD.complaint_route IS NOT NEW.complaint_route OR OLD.closed_on IS NOT NEW.closed_on OR OLD.handled_by IS NOT NEW.handled_by OR OLD.created_by IS NOT NEW.created_by OR OLD.version IS NOT NEW.version OR OLD.created_at IS NOT NEW.created_at OR OLD.updated_at IS NOT NEW.updated_at
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('data_subject_requests', NEW.id, 'UPDATE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'kind', OLD.kind, 'subject_index', hex(OLD.subject_index), 'identity_code', hex(OLD.identity_code), 'client_id', OLD.client_id, 'requester', hex(OLD.requester), 'details', hex(OLD.details), 'received_on', OLD.received_on, 'first_due_on', OLD.first_due_on, 'due_on', OLD.due_on, 'extension_reason', hex(OLD.extension_reason), 'extension_notified_on', OLD.extension_notified_on, 'status', OLD.status, 'refusal_reasons', hex(OLD.refusal_reasons), 'complaint_route', OLD.complaint_route, 'closed_on', OLD.closed_on, 'handled_by', OLD.handled_by, 'created_by', OLD.created_by, 'version', OLD.version, 'created_at', OLD.created_at, 'updated_at', OLD.updated_at), json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'kind', NEW.kind, 'subject_index', hex(NEW.subject_index), 'identity_code', hex(NEW.identity_code), 'client_id', NEW.client_id, 'requester', hex(NEW.requester), 'details', hex(NEW.details), 'received_on', NEW.received_on, 'first_due_on', NEW.first_due_on, 'due_on', NEW.due_on, 'extension_reason', hex(NEW.extension_reason), 'extension_notified_on', NEW.extension_notified_on, 'status', NEW.status, 'refusal_reasons', hex(NEW.refusal_reasons), 'complaint_route', NEW.complaint_route, 'closed_on', NEW.closed_on, 'handled_by', NEW.handled_by, 'created_by', NEW.created_by, 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at));
END;
CREATE TRIGGER data_subject_requests_history_delete AFTER DELETE ON data_subject_requests
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('data_subject_requests', OLD.id, 'DELETE', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object('registrar_id', OLD.registrar_id, 'id', OLD.id, 'kind', OLD.kind, 'subject_index', hex(OLD.subject_index), 'identity_code', hex(OLD.identity_code), 'client_id', OLD.client_id, 'requester', hex(OLD.requester), 'details', hex(OLD.details), 'received_on', OLD.received_on, 'first_due_on', OLD.first_due_on, 'due_on', OLD.due_on, 'extension_reason', hex(OLD.extension_reason), 'extension_notified_on', OLD.extension_notified_on, 'status', OLD.status, 'refusal_reasons', hex(OLD.refusal_reasons), 'complaint_route', OLD.complaint_route, 'closed_on', OLD.closed_on, 'handled_by', OLD.handled_by, 'created_by', OLD.created_by, 'version', OLD.version, 'created_at', OLD.created_at, 'updated_at', OLD.updated_at), NULL);
END;

