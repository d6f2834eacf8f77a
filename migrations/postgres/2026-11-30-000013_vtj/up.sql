-- VTJ change ingestion (VT-1..VT-13). Every table carries registrar_id first in its key (PL-7).
-- Identity codes never appear in clear: people are named by the blind index (subject_index) and
-- the staged raw messages are sealed to their row (PL-6).

-- The registrar's position in DVV's change stream and its run lock (VT-3, VT-10).
CREATE TABLE vtj_state (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    -- viimeisinKirjausavain: the cursor the next muutokset call continues from.
    change_cursor BIGINT,
    running_since TIMESTAMP,
    run_id TEXT,
    last_run_started_at TIMESTAMP,
    last_run_finished_at TIMESTAMP,
    last_run_outcome TEXT,
    last_error TEXT,
    PRIMARY KEY (registrar_id)
);

-- The monitored identity codes (VT-1), by blind index: whether the base data still has to be
-- fetched (a newly monitored person, or a protection order that ended, VT-2, VT-6) and the
-- change date of the newest change applied (VT-4: an older change does not overwrite it).
CREATE TABLE vtj_monitored (
    registrar_id TEXT NOT NULL,
    subject_index BYTEA NOT NULL,
    client_id TEXT NOT NULL,
    needs_load BOOLEAN NOT NULL DEFAULT TRUE,
    last_change_on DATE,
    PRIMARY KEY (registrar_id, subject_index)
);

-- Raw change messages as they arrived (VT-3), sealed, with their outcome (VT-4, VT-8).
CREATE TABLE vtj_staged (
    registrar_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('perustiedot', 'muutokset', 'import', 'push')),
    change_cursor BIGINT,
    subject_index BYTEA,
    message BYTEA NOT NULL,
    received_at TIMESTAMP NOT NULL,
    outcome TEXT CHECK (outcome IN ('applied', 'skipped', 'failed')),
    reason TEXT,
    processed_at TIMESTAMP,
    PRIMARY KEY (registrar_id, seq)
);
CREATE INDEX vtj_staged_pending ON vtj_staged (registrar_id, seq) WHERE outcome IS NULL;
CREATE INDEX vtj_staged_subject ON vtj_staged (registrar_id, subject_index);
CREATE INDEX vtj_monitored_client ON vtj_monitored (registrar_id, client_id);

-- Identity codes a client had before a correction (VT-5): a search by the old code finds them.
CREATE TABLE client_previous_codes (
    registrar_id TEXT NOT NULL,
    subject_index BYTEA NOT NULL,
    client_id TEXT NOT NULL,
    identity_code BYTEA NOT NULL,
    corrected_at TIMESTAMP NOT NULL,
    PRIMARY KEY (registrar_id, subject_index)
);
