-- Source 000 §4 and GDPR art. 13-15: the registrar's contact person and data-protection officer,
-- shown where a person sees their records. Each is a JSON object {name, email, phone}; NULL:
-- not recorded yet.
ALTER TABLE organisations ADD COLUMN contact_person TEXT;
ALTER TABLE organisations ADD COLUMN data_protection_officer TEXT;
-- VT-9: the registrar's own DVV permit (its reference is written into every VTJ query's usage
-- entry); NULL: the platform-wide REKISTERI_VTJ_PERMIT applies.
ALTER TABLE organisations ADD COLUMN dvv_permit_reference TEXT;
-- Source 000 §4: how the requester's identity was verified (in person, a signed letter or
-- strong electronic identification); NULL: not verified yet, and the request cannot complete.
ALTER TABLE data_subject_requests ADD COLUMN identity_verification TEXT
    CHECK (identity_verification IN ('in_person', 'signed_letter', 'strong_electronic_identification'));
