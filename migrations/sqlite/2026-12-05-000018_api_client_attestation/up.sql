-- AX-2: an admin may attest that an API client's system authenticates its users strongly
-- itself; only then does a user it names reach client data of a registrar that requires strong
-- authentication without the user's own token. Who attested it and when are kept with it.
ALTER TABLE api_clients ADD COLUMN strong_user_authentication_attested_by TEXT;
ALTER TABLE api_clients ADD COLUMN strong_user_authentication_attested_at TEXT;

-- A principal read under the access version carries the attestation, so changing it moves the
-- version like a change of scopes does.
CREATE TRIGGER api_clients_attestation_access_version
AFTER UPDATE OF strong_user_authentication_attested_at ON api_clients
BEGIN
    UPDATE access_version SET version = version + 1 WHERE id = 1;
END;
