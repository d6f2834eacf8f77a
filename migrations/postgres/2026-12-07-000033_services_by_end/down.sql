DROP INDEX services_closed_until;
DROP INDEX services_open_until;
