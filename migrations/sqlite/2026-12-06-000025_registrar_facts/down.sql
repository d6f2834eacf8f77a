ALTER TABLE data_subject_requests DROP COLUMN identity_verification;
ALTER TABLE organisations DROP COLUMN dvv_permit_reference;
ALTER TABLE organisations DROP COLUMN data_protection_officer;
ALTER TABLE organisations DROP COLUMN contact_person;
