CREATE OR REPLACE FUNCTION change_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'change_history is append-only';
END $$;
ALTER TABLE organisations DROP COLUMN anonymised_retention_years;
DROP INDEX clients_anonymised;
ALTER TABLE clients DROP COLUMN birth_year;
