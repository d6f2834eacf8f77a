-- API clients (AX-2.2): systems that log in with OAuth 2.0 client credentials. Only hashes of
-- secrets and access tokens are kept.
CREATE TABLE api_clients (
    id TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    name TEXT NOT NULL,
    secret_hash BYTEA NOT NULL,
    scopes TEXT NOT NULL,
    created_by TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    secret_rotated_at TIMESTAMPTZ NOT NULL,
    disabled_at TIMESTAMPTZ
);

CREATE TABLE api_tokens (
    token_hash BYTEA PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES api_clients (id),
    scopes TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX api_tokens_client ON api_tokens (client_id);
