ALTER TABLE security_incidents DROP COLUMN data_subjects_notified_at;
ALTER TABLE security_incidents DROP COLUMN data_subjects_notified;
ALTER TABLE provider_contracts DROP COLUMN kanta_exemption;
