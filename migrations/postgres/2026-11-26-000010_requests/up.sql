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
    request_hash BYTEA NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'completed')),
    status INTEGER,
    location TEXT,
    etag TEXT,
    content_type TEXT,
    -- The answer held a secret shown only once (Cache-Control: no-store): its body is not kept
    -- and a retry is told so (409) instead of getting the secret again.
    withheld BOOLEAN NOT NULL DEFAULT FALSE,
    body BYTEA,
    -- What the stored response discloses, for the usage entry of a replay (AU-1).
    disclosure BYTEA,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (registrar_id, caller, idempotency_key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (registrar_id, expires_at);

CREATE TABLE data_subject_requests (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'rectification', 'restriction', 'objection', 'erasure')),
    subject_index BYTEA NOT NULL,
    identity_code BYTEA NOT NULL,
    client_id TEXT,
    requester BYTEA,
    details BYTEA,
    received_on DATE NOT NULL,
    -- One calendar month from receipt; due_on moves when the deadline is extended.
    first_due_on DATE NOT NULL,
    due_on DATE NOT NULL,
    extension_reason BYTEA,
    extension_notified_on DATE,
    status TEXT NOT NULL CHECK (status IN ('received', 'in_progress', 'completed', 'refused')),
    refusal_reasons BYTEA,
    complaint_route TEXT,
    closed_on DATE,
    handled_by TEXT,
    created_by TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (registrar_id, id),
    CHECK (due_on >= first_due_on),
    CHECK (status <> 'refused' OR (refusal_reasons IS NOT NULL AND complaint_route IS NOT NULL))
);
CREATE INDEX data_subject_requests_due ON data_subject_requests (registrar_id, due_on, id);
CREATE INDEX data_subject_requests_subject ON data_subject_requests (registrar_id, subject_index);

CREATE TRIGGER data_subject_requests_history AFTER INSERT OR UPDATE OR DELETE ON data_subject_requests
    FOR EACH ROW EXECUTE FUNCTION record_change();
