-- The visibility and provider checks of one client ask for its services of one provider
-- (registrar_id, client_id, provider_id). With only (registrar_id, client_id) and
-- (registrar_id, provider_id) to choose from, SQLite's planner (no statistics) took the
-- provider's index and walked every service of the provider per request.
DROP INDEX services_client;
CREATE INDEX services_client ON services (registrar_id, client_id, provider_id);
