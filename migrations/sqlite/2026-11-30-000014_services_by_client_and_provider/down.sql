DROP INDEX services_client;
CREATE INDEX services_client ON services (registrar_id, client_id);
