-- API clients (AX-2.2): systems that log in with OAuth 2.0 client credentials. Only hashes of
-- secrets and access tokens are kept.
CREATE TABLE api_clients (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    name TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    scopes TEXT NOT NULL,
    created_by TEXT,
    created_at TEXT NOT NULL,
    secret_rotated_at TEXT NOT NULL,
    disabled_at TEXT
) STRICT;

CREATE TABLE api_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES api_clients (id),
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;
CREATE INDEX api_tokens_client ON api_tokens (client_id);
