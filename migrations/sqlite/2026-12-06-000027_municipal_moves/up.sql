-- Source 000: the municipalities whose residents' registers a registrar keeps (its own code;
-- a wellbeing services county's every member). A code belongs to at most one registrar, so that a
-- move tells whose register the person moved into.
CREATE TABLE registrar_municipalities (
    municipality_code TEXT PRIMARY KEY NOT NULL,
    registrar_id TEXT NOT NULL REFERENCES organisations (id)
) STRICT;
CREATE INDEX registrar_municipalities_registrar ON registrar_municipalities (registrar_id);
-- VT-4: a client moved from one registrar's municipalities to another registrar's. The receiving
-- registrar's notice holds only what VTJ told (the identity code sealed to its row, the new home
-- municipality and the day of the move) and who sent it; the sending register keeps the record.
CREATE TABLE client_moves (
    registrar_id TEXT NOT NULL,
    id TEXT NOT NULL,
    from_registrar_id TEXT NOT NULL,
    subject_index BLOB NOT NULL,
    identity_code BLOB NOT NULL,
    home_municipality TEXT NOT NULL,
    moved_on TEXT,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id)
) STRICT;
CREATE INDEX client_moves_recorded ON client_moves (registrar_id, recorded_at);
