-- One row per key the database has data under: lets the server refuse to start with a key file
-- that is not the one the data was written with, instead of writing under a stranger key.
CREATE TABLE key_checks (
    purpose TEXT NOT NULL CHECK (purpose IN ('data', 'blind_index')),
    key_id TEXT NOT NULL,
    check_value BLOB NOT NULL,
    created_at TEXT NOT NULL, -- UTC, diesel Timestamp text form
    PRIMARY KEY (purpose, key_id)
) STRICT, WITHOUT ROWID;
