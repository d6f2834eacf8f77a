-- VT-4 (issue 25 point 3): what VTJ gives about a client is kept, not dropped.
--
-- temporary_address, postal_address: the temporary (TILAPAINEN_KOTIMAINEN_OSOITE,
-- TILAPAINEN_ULKOMAINEN_OSOITE) and postal (KOTIMAINEN_POSTIOSOITE, ULKOMAINEN_POSTIOSOITE)
-- addresses beside the permanent one, sealed to their row like address. Like address they are
-- never stored under a protection order (CL-8, VT-6), and the order purges them from the change
-- history too.
-- guardianship: EDUNVALVONTA and EDUNVALVONTAVALTUUTUS with their dates, sealed JSON.
-- moved_in_on_precision, moved_out_on_precision, died_on_precision: 'month' or 'year' when VTJ gave
-- the date with that precision only (tarkkuus KUUKAUSI or year); the date column then holds the
-- first day of that month or year. NULL: a full date.
ALTER TABLE clients
    ADD COLUMN temporary_address BYTEA,
    ADD COLUMN postal_address BYTEA,
    ADD COLUMN guardianship BYTEA,
    ADD COLUMN moved_in_on_precision TEXT
        CHECK (moved_in_on_precision IS NULL OR moved_in_on_precision IN ('month', 'year')),
    ADD COLUMN moved_out_on_precision TEXT
        CHECK (moved_out_on_precision IS NULL OR moved_out_on_precision IN ('month', 'year')),
    ADD COLUMN died_on_precision TEXT
        CHECK (died_on_precision IS NULL OR died_on_precision IN ('month', 'year'));

-- The one UPDATE of the history besides a key rotation's: a protection order removes every
-- address and the home municipality (000011, 000023), now the secondary addresses too.
CREATE OR REPLACE FUNCTION change_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('rekisteri.lifecycle_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE'
        AND NEW.id = OLD.id AND NEW.table_name = OLD.table_name AND NEW.row_id = OLD.row_id
        AND NEW.operation = OLD.operation AND NEW.actor = OLD.actor AND NEW.changed_at = OLD.changed_at
        AND ((OLD.table_name = 'clients'
                AND NEW.old_row IS NOT DISTINCT FROM
                    (OLD.old_row - 'address' - 'home_municipality' - 'temporary_address' - 'postal_address')
                AND NEW.new_row IS NOT DISTINCT FROM
                    (OLD.new_row - 'address' - 'home_municipality' - 'temporary_address' - 'postal_address'))
            OR current_setting('rekisteri.actor', true) = 'system:key-rotation') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'change_history is append-only';
END $$;
