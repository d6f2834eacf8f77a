-- PL-12: the version of everything an authentication or an access decision reads. Servers cache
-- a token's principal and a principal's access decisions under the version they read; a trigger
-- on every table those reads touch moves the version on, so a right that ends or a session that
-- is ended stops working on the next request of every server process (AC-11). Inserts that add
-- a new session or token change no cached answer and move nothing.

CREATE TABLE access_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO access_version (id, version) VALUES (1, 0);

CREATE FUNCTION bump_access_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE access_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER organisations_update_access_version AFTER UPDATE OF kind, strong_authentication_required ON organisations
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER organisations_delete_access_version AFTER DELETE ON organisations
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER accounts_update_access_version AFTER UPDATE OF organisation_id, status ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER accounts_delete_access_version AFTER DELETE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER account_roles_insert_access_version AFTER INSERT ON account_roles
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER account_roles_update_access_version AFTER UPDATE ON account_roles
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER account_roles_delete_access_version AFTER DELETE ON account_roles
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER account_service_units_insert_access_version AFTER INSERT ON account_service_units
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER account_service_units_update_access_version AFTER UPDATE ON account_service_units
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER account_service_units_delete_access_version AFTER DELETE ON account_service_units
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER sessions_update_access_version AFTER UPDATE OF account_id, auth_method, expires_at, ended_at ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER sessions_delete_access_version AFTER DELETE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER api_clients_update_access_version AFTER UPDATE OF organisation_id, scopes, disabled_at ON api_clients
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER api_clients_delete_access_version AFTER DELETE ON api_clients
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER api_tokens_update_access_version AFTER UPDATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER api_tokens_delete_access_version AFTER DELETE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER service_areas_insert_access_version AFTER INSERT ON service_areas
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER service_areas_update_access_version AFTER UPDATE ON service_areas
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER service_areas_delete_access_version AFTER DELETE ON service_areas
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER service_types_insert_access_version AFTER INSERT ON service_types
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER service_types_update_access_version AFTER UPDATE ON service_types
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER service_types_delete_access_version AFTER DELETE ON service_types
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER account_service_areas_insert_access_version AFTER INSERT ON account_service_areas
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER account_service_areas_update_access_version AFTER UPDATE ON account_service_areas
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();

CREATE TRIGGER account_service_areas_delete_access_version AFTER DELETE ON account_service_areas
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();
