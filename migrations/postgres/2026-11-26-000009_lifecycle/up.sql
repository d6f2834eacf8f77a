-- Lifecycle of the client register (CL-13..CL-16).
--
-- clients.birth_year: the year of birth, taken from the identity code when the client is created
-- (and, for rows older than this migration, by the anonymisation run just before the code is
-- removed). Year precision only: it feeds the statistics' age groups (CL-16) and survives the
-- anonymisation (CL-14); a month or a day would make an anonymised row easier to re-identify.
ALTER TABLE clients ADD COLUMN birth_year INTEGER CHECK (birth_year IS NULL OR birth_year BETWEEN 1800 AND 2999);
CREATE INDEX clients_anonymised ON clients (registrar_id, anonymised_at);

-- The registrar's retention of anonymised client data (CL-15): the maintenance run deletes an
-- anonymised client with its services and events this many whole years after the anonymisation.
ALTER TABLE organisations ADD COLUMN anonymised_retention_years INTEGER NOT NULL DEFAULT 5
    CHECK (anonymised_retention_years BETWEEN 1 AND 100);

-- The change history is append-only, with one exception: the lifecycle runs purge the history
-- rows of a client they anonymise or delete (their old values hold the identity data as
-- ciphertext that the keys still open). A DELETE is allowed only inside a transaction that set
-- rekisteri.lifecycle_purge (SET LOCAL), which only those runs do. UPDATE and TRUNCATE stay
-- refused.
CREATE OR REPLACE FUNCTION change_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('rekisteri.lifecycle_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'change_history is append-only';
END $$;
