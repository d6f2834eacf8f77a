-- VT-7: the registrar's work list of clients whose services VTJ closed by the date of death.
-- One row per client; it holds no personal field but the date, and goes with the client on
-- anonymisation (CL-14).
CREATE TABLE client_death_closures (
    registrar_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    died_on TEXT NOT NULL,
    services_closed INTEGER NOT NULL,
    proxies_ended INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, client_id)
) STRICT;
CREATE INDEX client_death_closures_recorded ON client_death_closures (registrar_id, recorded_at);
