-- Source 003 §5: an organiser may exempt a small provider of support services from joining
-- Kanta and from recording separate electronic client documents. kanta_exemption: the support
-- services of the exemption as a JSON array (e.g. ["cleaning","meals"]); NULL: not exempt.
ALTER TABLE provider_contracts ADD COLUMN kanta_exemption TEXT;
-- RU-4: whether the data subjects of an incident were notified (NULL: not recorded yet) and when.
ALTER TABLE security_incidents ADD COLUMN data_subjects_notified BOOLEAN;
ALTER TABLE security_incidents ADD COLUMN data_subjects_notified_at TIMESTAMPTZ;
