-- Organisations, service units, accounts and their rights, invitations and sessions (AC-1..AC-11).
-- Personal fields of accounts (names, e-mail) are encrypted; the e-mail is found by blind index.

CREATE TABLE organisations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('platform', 'municipality', 'wellbeing_services_county', 'provider', 'other_organiser')),
    oid TEXT UNIQUE,
    business_id TEXT,
    strong_authentication_required BOOLEAN NOT NULL DEFAULT TRUE,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE service_units (
    id TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    oid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX service_units_organisation ON service_units (organisation_id);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    email_index BYTEA NOT NULL UNIQUE,
    email BYTEA NOT NULL,
    first_name BYTEA NOT NULL,
    surname BYTEA NOT NULL,
    password_hash TEXT,
    status TEXT NOT NULL CHECK (status IN ('invited', 'active', 'closed')),
    closed_at TIMESTAMPTZ,
    last_login_at TIMESTAMPTZ,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX accounts_organisation ON accounts (organisation_id);

-- Every right has a validity period (AC-11); rows are never deleted while the account's history
-- must stay explainable (AC-8), ending a right sets valid_until.
CREATE TABLE account_roles (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    role TEXT NOT NULL,
    valid_from TIMESTAMPTZ NOT NULL,
    valid_until TIMESTAMPTZ,
    granted_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX account_roles_account ON account_roles (account_id);

CREATE TABLE account_service_units (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    service_unit_id TEXT NOT NULL REFERENCES service_units (id),
    valid_from TIMESTAMPTZ NOT NULL,
    valid_until TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX account_service_units_account ON account_service_units (account_id);

CREATE TABLE invitations (
    token_hash BYTEA PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX invitations_account ON invitations (account_id);

CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    auth_method TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ,
    end_reason TEXT
);
CREATE INDEX sessions_account ON sessions (account_id);

-- Failed-login throttling per account and per client address (AC-5).
CREATE TABLE login_throttle (
    throttle_key BYTEA PRIMARY KEY,
    failures INTEGER NOT NULL,
    window_started_at TIMESTAMPTZ NOT NULL,
    locked_until TIMESTAMPTZ
);
