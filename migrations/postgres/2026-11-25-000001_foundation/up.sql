-- One row per key the database has data under: lets the server refuse to start with a key file
-- that is not the one the data was written with, instead of writing under a stranger key.
CREATE TABLE key_checks (
    purpose TEXT NOT NULL CHECK (purpose IN ('data', 'blind_index')),
    key_id TEXT NOT NULL,
    check_value BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (purpose, key_id)
);
