DROP TABLE login_throttle;
DROP TABLE sessions;
DROP TABLE invitations;
DROP TABLE account_service_units;
DROP TABLE account_roles;
DROP TABLE accounts;
DROP TABLE service_units;
DROP TABLE organisations;
