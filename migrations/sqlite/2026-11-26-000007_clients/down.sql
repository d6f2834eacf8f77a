DROP TABLE service_events;
DROP TABLE services;
DROP TABLE clients;
DROP TABLE account_service_areas;
DROP TABLE service_types;
DROP TABLE service_areas;
