-- Proxies (CL-7) and care teams (AX-5). Both are client data of one registrar: registrar_id
-- leads every key and every foreign key stays inside the registrar (PL-7).

-- A person authorised to act for a client (CL-7). The proxy is found by the blind index of
-- their identity code (subject_index), so that /v1/me/client-records reaches the clients they
-- act for; their personal fields are sealed like the client's (PL-6). Revoking keeps the row.
CREATE TABLE proxies (
    registrar_id TEXT NOT NULL,
    id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    subject_index BYTEA NOT NULL,
    identity_code BYTEA NOT NULL,
    first_names BYTEA NOT NULL,
    surname BYTEA NOT NULL,
    phone BYTEA,
    email BYTEA,
    valid_from DATE NOT NULL,
    valid_to DATE,
    revoked_at TIMESTAMPTZ,
    revoked_by TEXT,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (registrar_id, id),
    FOREIGN KEY (registrar_id, client_id) REFERENCES clients (registrar_id, id),
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
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
    valid_from DATE NOT NULL,
    valid_until DATE,
    added_by TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (registrar_id, id),
    FOREIGN KEY (registrar_id, client_id) REFERENCES clients (registrar_id, id),
    CHECK (valid_until IS NULL OR valid_until >= valid_from)
);
CREATE INDEX care_team_members_client ON care_team_members (registrar_id, client_id);
CREATE INDEX care_team_members_account ON care_team_members (registrar_id, account_id);

CREATE TRIGGER proxies_history AFTER INSERT OR UPDATE OR DELETE ON proxies
    FOR EACH ROW EXECUTE FUNCTION record_change();
CREATE TRIGGER care_team_members_history AFTER INSERT OR UPDATE OR DELETE ON care_team_members
    FOR EACH ROW EXECUTE FUNCTION record_change();
