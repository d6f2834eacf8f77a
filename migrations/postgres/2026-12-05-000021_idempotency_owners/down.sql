ALTER TABLE idempotency_keys DROP COLUMN written;
ALTER TABLE idempotency_keys DROP COLUMN owner;
DROP TABLE server_instances;
