-- Nothing on SQLite: PostgreSQL's migration of the same name indexes the services by their end
-- for its planner; SQLite asks whether a client has a service ending on or after the cut-off per
-- client, through `services_client`. The migration is here so that both backends list the same
-- versions.
SELECT 1;
