DROP INDEX clients_not_anonymised_by_age;
CREATE INDEX clients_not_anonymised ON clients (registrar_id, id) WHERE anonymised_at IS NULL;
DROP INDEX service_events_client;
DROP TRIGGER change_history_skip_lifecycle_purge;
