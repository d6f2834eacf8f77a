-- Organisations, service units, accounts and their rights, invitations and sessions (AC-1..AC-11).
-- Personal fields of accounts (names, e-mail) are encrypted; the e-mail is found by blind index.

CREATE TABLE organisations (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('platform', 'municipality', 'wellbeing_services_county', 'provider', 'other_organiser')),
    oid TEXT UNIQUE,
    business_id TEXT,
    strong_authentication_required INTEGER NOT NULL DEFAULT 1 CHECK (strong_authentication_required IN (0, 1)),
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE service_units (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    oid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX service_units_organisation ON service_units (organisation_id);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    email_index BLOB NOT NULL UNIQUE,
    email BLOB NOT NULL,
    first_name BLOB NOT NULL,
    surname BLOB NOT NULL,
    password_hash TEXT,
    status TEXT NOT NULL CHECK (status IN ('invited', 'active', 'closed')),
    closed_at TEXT,
    last_login_at TEXT,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX accounts_organisation ON accounts (organisation_id);

-- Every right has a validity period (AC-11); rows are never deleted while the account's history
-- must stay explainable (AC-8), ending a right sets valid_until.
CREATE TABLE account_roles (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    role TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_until TEXT,
    granted_by TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX account_roles_account ON account_roles (account_id);

CREATE TABLE account_service_units (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    service_unit_id TEXT NOT NULL REFERENCES service_units (id),
    valid_from TEXT NOT NULL,
    valid_until TEXT,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX account_service_units_account ON account_service_units (account_id);

CREATE TABLE invitations (
    token_hash BLOB PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    expires_at TEXT NOT NULL,
    used_at TEXT,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX invitations_account ON invitations (account_id);

CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY NOT NULL,
    id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    auth_method TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    ended_at TEXT,
    end_reason TEXT
) STRICT;
CREATE INDEX sessions_account ON sessions (account_id);

-- Failed-login throttling per account and per client address (AC-5).
CREATE TABLE login_throttle (
    throttle_key BLOB PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    window_started_at TEXT NOT NULL,
    locked_until TEXT
) STRICT, WITHOUT ROWID;
