-- The register of call and contact recordings (CA, seed 001).
--
-- call_queues: a registrar's service queues (CA-1). A queue belongs to one service unit: the
-- unit's staff are its users (a secret number given in the queue is shown to them only, AX-6)
-- and the unit's call supervisors hold its listening rights by default. Whether calls are
-- recorded and the announcement the caller hears are the queue's; each recorded contact keeps
-- the announcement it was pushed under.
--
-- call_queue_listeners: explicit listening rights granted to named users (CA-1); revoked, not
-- deleted, so who could listen when stays known.
--
-- contacts: what the telephony system pushes (CA-2). The caller's number, the client's name
-- and identity code are ciphertext bound to their row (PL-6); the number and the identity code
-- are found through blind indexes (the subject index is the same one the usage log names the
-- person by). A chat keeps none of them.
--
-- recordings: the metadata of a call recording or voicemail (CA-3, CA-4); the audio itself is
-- in the audio store under storage_key, encrypted in chunks with a per-recording data key that
-- is sealed here under the platform key. A row is written only after its audio is durable; a
-- recording is never updated except to record its destruction (CA-9), which also empties
-- data_key: ciphertext left anywhere (a backup, a disk block) is then undecryptable. storage_key is made of
-- the registrar and recording ids only: nothing personal reaches object names.
--
-- legal_holds: a recording handed over as pre-trial investigation material (CA-10); at most one
-- hold in force per contact.
--
-- processing_memos and processing_memo_entries: every listening (CA-6) and what was later
-- saved to external media or disclosed (CA-6, CA-7); what was disclosed, the recipient, the
-- medium and the reasons are free text and sealed. Append-only: triggers refuse updates and
-- deletes. Memos outlive their contact: they record what was done with a recording.
--
-- listening_grants: a short-lived grant to stream one recording, for the user it was issued
-- to (CA-5, CA-8). Found by its id alone (the audio URL has no registrar in it).

CREATE TABLE call_queues (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    id TEXT NOT NULL,
    service_unit_id TEXT NOT NULL REFERENCES service_units (id),
    name TEXT NOT NULL,
    recorded INTEGER NOT NULL CHECK (recorded IN (0, 1)),
    recording_announcement TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id),
    UNIQUE (registrar_id, name),
    CHECK (recorded = 0 OR recording_announcement IS NOT NULL)
) STRICT;

CREATE TABLE call_queue_listeners (
    registrar_id TEXT NOT NULL,
    id TEXT NOT NULL,
    queue_id TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    granted_by TEXT NOT NULL,
    granted_at TEXT NOT NULL,
    revoked_by TEXT,
    revoked_at TEXT,
    PRIMARY KEY (registrar_id, id),
    FOREIGN KEY (registrar_id, queue_id) REFERENCES call_queues (registrar_id, id)
) STRICT;
CREATE UNIQUE INDEX call_queue_listeners_in_force ON call_queue_listeners (registrar_id, queue_id, account_id)
    WHERE revoked_at IS NULL;

CREATE TABLE contacts (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    id TEXT NOT NULL,
    queue_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('call', 'callback', 'voicemail', 'chat')),
    caller_number BLOB,
    caller_number_index BLOB,
    secret_number INTEGER NOT NULL CHECK (secret_number IN (0, 1)),
    agent_id TEXT,
    answered INTEGER NOT NULL CHECK (answered IN (0, 1)),
    home_municipality TEXT,
    started_at TEXT NOT NULL,
    wait_seconds INTEGER CHECK (wait_seconds >= 0),
    duration_seconds INTEGER CHECK (duration_seconds >= 0),
    client_name BLOB,
    subject_index BLOB,
    identity_code BLOB,
    recording_announcement TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id),
    FOREIGN KEY (registrar_id, queue_id) REFERENCES call_queues (registrar_id, id),
    CHECK (kind <> 'chat' OR (caller_number IS NULL AND caller_number_index IS NULL AND secret_number = 0
        AND client_name IS NULL AND subject_index IS NULL AND identity_code IS NULL AND home_municipality IS NULL))
) STRICT;
CREATE INDEX contacts_by_start ON contacts (registrar_id, started_at, id);
CREATE INDEX contacts_by_queue ON contacts (registrar_id, queue_id, started_at);
CREATE INDEX contacts_by_number ON contacts (registrar_id, caller_number_index);
CREATE INDEX contacts_by_subject ON contacts (registrar_id, subject_index);

CREATE TABLE recordings (
    registrar_id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    -- The recording's own id: its chunks' associated data and its sealed data key name it.
    id TEXT NOT NULL,
    content_type TEXT NOT NULL,
    bytes INTEGER NOT NULL CHECK (bytes > 0),
    sha256 BLOB NOT NULL,
    data_key BLOB NOT NULL,
    storage_key TEXT NOT NULL,
    stored_at TEXT NOT NULL,
    destroyed_at TEXT,
    destroyed_by_run TEXT,
    PRIMARY KEY (registrar_id, contact_id),
    FOREIGN KEY (registrar_id, contact_id) REFERENCES contacts (registrar_id, id)
) STRICT;

CREATE TABLE legal_holds (
    registrar_id TEXT NOT NULL,
    id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    authority TEXT NOT NULL,
    case_reference TEXT NOT NULL,
    until_on TEXT,
    placed_by TEXT NOT NULL,
    placed_at TEXT NOT NULL,
    released_by TEXT,
    released_at TEXT,
    PRIMARY KEY (registrar_id, id),
    FOREIGN KEY (registrar_id, contact_id) REFERENCES contacts (registrar_id, id)
) STRICT;
CREATE UNIQUE INDEX legal_holds_in_force ON legal_holds (registrar_id, contact_id) WHERE released_at IS NULL;

CREATE TABLE processing_memos (
    registrar_id TEXT NOT NULL,
    id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    listener_id TEXT NOT NULL,
    reason_category TEXT NOT NULL,
    reason BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id)
) STRICT;
CREATE INDEX processing_memos_by_contact ON processing_memos (registrar_id, contact_id);

CREATE TABLE processing_memo_entries (
    registrar_id TEXT NOT NULL,
    id TEXT NOT NULL,
    memo_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('disclosure', 'media_export')),
    recipient_kind TEXT NOT NULL CHECK (recipient_kind IN ('party', 'authority')),
    recipient BLOB NOT NULL,
    legal_basis TEXT NOT NULL,
    disclosed BLOB NOT NULL,
    medium BLOB,
    reason BLOB,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id),
    FOREIGN KEY (registrar_id, memo_id) REFERENCES processing_memos (registrar_id, id)
) STRICT;

CREATE TRIGGER processing_memos_no_update BEFORE UPDATE ON processing_memos
BEGIN
    SELECT RAISE(ABORT, 'processing memos are append-only');
END;
CREATE TRIGGER processing_memos_no_delete BEFORE DELETE ON processing_memos
BEGIN
    SELECT RAISE(ABORT, 'processing memos are append-only');
END;
CREATE TRIGGER processing_memo_entries_no_update BEFORE UPDATE ON processing_memo_entries
BEGIN
    SELECT RAISE(ABORT, 'processing memos are append-only');
END;
CREATE TRIGGER processing_memo_entries_no_delete BEFORE DELETE ON processing_memo_entries
BEGIN
    SELECT RAISE(ABORT, 'processing memos are append-only');
END;

CREATE TABLE listening_grants (
    registrar_id TEXT NOT NULL,
    id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    memo_id TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id)
) STRICT;
CREATE UNIQUE INDEX listening_grants_by_id ON listening_grants (id);
CREATE INDEX listening_grants_by_contact ON listening_grants (registrar_id, contact_id);
