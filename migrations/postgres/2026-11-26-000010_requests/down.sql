DROP TABLE data_subject_requests;
DROP TABLE idempotency_keys;
