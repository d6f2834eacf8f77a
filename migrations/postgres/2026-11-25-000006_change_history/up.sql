-- Change history (AU-9, CL-17): every insert, update and delete of a tracked table leaves a row
-- here, made by a database trigger, so changes made directly in the database are caught too.
-- The actor is the application user when the application names one for its transaction, the
-- database otherwise. Encrypted columns are copied as ciphertext. Here: organisations and the
-- history of users' rights (AC-8, AC-11); the accounts themselves are not copied, so that an
-- account deleted after closing (AC-8) leaves no personal data behind. The register issues add
-- their client tables the same way.

CREATE TABLE change_history (
    id BIGSERIAL PRIMARY KEY,
    table_name TEXT NOT NULL,
    row_id TEXT NOT NULL,
    operation TEXT NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE')),
    actor TEXT NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL,
    old_row JSONB,
    new_row JSONB
);
CREATE INDEX change_history_row ON change_history (table_name, row_id, id);

CREATE FUNCTION change_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'change_history is append-only';
END $$;
CREATE TRIGGER change_history_append_only BEFORE UPDATE OR DELETE ON change_history
    FOR EACH ROW EXECUTE FUNCTION change_history_append_only();
CREATE TRIGGER change_history_no_truncate BEFORE TRUNCATE ON change_history
    FOR EACH STATEMENT EXECUTE FUNCTION change_history_append_only();

-- The trigger's arguments name the columns to leave out. The actor is the transaction-local
-- setting rekisteri.actor, or the database role.
CREATE FUNCTION record_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    hidden TEXT[] := COALESCE(TG_ARGV, '{}'::TEXT[]);
    old_doc JSONB;
    new_doc JSONB;
BEGIN
    IF TG_OP <> 'INSERT' THEN old_doc := to_jsonb(OLD) - hidden; END IF;
    IF TG_OP <> 'DELETE' THEN new_doc := to_jsonb(NEW) - hidden; END IF;
    IF TG_OP = 'UPDATE' AND old_doc = new_doc THEN
        RETURN NEW;
    END IF;
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES (TG_TABLE_NAME, COALESCE(new_doc ->> 'id', old_doc ->> 'id'), TG_OP,
            COALESCE(NULLIF(current_setting('rekisteri.actor', true), ''), 'database:' || current_user),
            clock_timestamp(), old_doc, new_doc);
    RETURN NULL;
END $$;
CREATE TRIGGER organisations_history AFTER INSERT OR UPDATE OR DELETE ON organisations
    FOR EACH ROW EXECUTE FUNCTION record_change();
CREATE TRIGGER account_roles_history AFTER INSERT OR UPDATE OR DELETE ON account_roles
    FOR EACH ROW EXECUTE FUNCTION record_change();
CREATE TRIGGER account_service_units_history AFTER INSERT OR UPDATE OR DELETE ON account_service_units
    FOR EACH ROW EXECUTE FUNCTION record_change();
