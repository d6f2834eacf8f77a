-- Kanta informing, disclosure consent and prohibitions (CO-1..CO-6), registry use rights and
-- the documents providers store under them (RU-1..RU-8).
--
-- Consent and prohibitions are append-only history: the current consent is the newest row; a
-- prohibition stays in force until its revoked_at is set, and the row is kept. Every table that
-- names a client keys on registrar_id first (PL-7): the organiser's register is the distribution
-- key of everything a provider writes into it.

-- CO-1: the client was told about Kanta storage.
CREATE TABLE kanta_informings (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    informed_at TEXT NOT NULL,
    method TEXT NOT NULL CHECK (method IN ('in_person', 'omakanta_receipt')),
    recorded_by TEXT NOT NULL,
    recorded_by_organisation TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id)
) STRICT;
CREATE INDEX kanta_informings_client ON kanta_informings (registrar_id, client_id, recorded_at);

-- CO-2: every change of the disclosure consent; the newest row is the state.
CREATE TABLE disclosure_consents (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('positive', 'negative', 'revoked')),
    recorded_by TEXT NOT NULL,
    recorded_by_organisation TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (registrar_id, id),
    UNIQUE (registrar_id, client_id, seq)
) STRICT;

-- CO-3: prohibitions of all data, one registrar's, one service task's or one document's.
CREATE TABLE disclosure_prohibitions (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('all', 'registrar', 'service_task', 'document')),
    target TEXT,
    recorded_by TEXT NOT NULL,
    recorded_by_organisation TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    revoked_by TEXT,
    revoked_at TEXT,
    PRIMARY KEY (registrar_id, id),
    CHECK ((scope = 'all') = (target IS NULL))
) STRICT;
CREATE INDEX disclosure_prohibitions_client ON disclosure_prohibitions (registrar_id, client_id);

-- RU-1: the organiser's Kanta settings (start date, the OID root its case OIDs are issued
-- under, the working days of notice before an automatic closing).
CREATE TABLE kanta_settings (
    registrar_id TEXT NOT NULL PRIMARY KEY REFERENCES organisations (id),
    kanta_start_date TEXT NOT NULL,
    case_oid_root TEXT NOT NULL,
    last_case_number INTEGER NOT NULL DEFAULT 0,
    closing_notice_working_days INTEGER NOT NULL DEFAULT 3,
    -- RU-8: the Sosmeta document types whose documents must carry the professional's
    -- electronic signature (a JSON array of type codes).
    signed_document_types TEXT NOT NULL DEFAULT '[]',
    updated_at TEXT NOT NULL
) STRICT;

-- RU-1: the organiser's contract with a provider and the provider's Kanta joining.
CREATE TABLE provider_contracts (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    provider_id TEXT NOT NULL REFERENCES organisations (id),
    contract_ref TEXT NOT NULL,
    kanta_joined_on TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, provider_id)
) STRICT;

-- RU-1: a voucher client's choice of provider, reported by the provider.
CREATE TABLE voucher_provider_choices (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    service_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    provider_unit_oid TEXT NOT NULL,
    reported_by TEXT NOT NULL,
    reported_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id)
) STRICT;
CREATE INDEX voucher_provider_choices_service ON voucher_provider_choices (registrar_id, service_id);

-- RU-1..RU-7: registry use rights. closes_after is the last usable date (Finnish time); the
-- right is closed from 00:00 Europe/Helsinki of the day after it.
CREATE TABLE registry_use_rights (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    service_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    provider_unit_oid TEXT NOT NULL,
    case_oid TEXT NOT NULL,
    opened_on TEXT NOT NULL,
    service_ended_on TEXT,
    closes_after TEXT,
    closing_set_by_organiser INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed', 'reopened')),
    closed_at TEXT,
    reopen_reason TEXT,
    warned_for TEXT,
    unit_oid_changed INTEGER NOT NULL DEFAULT 0,
    opened_by TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id),
    UNIQUE (registrar_id, case_oid)
) STRICT;
CREATE INDEX registry_use_rights_client ON registry_use_rights (registrar_id, client_id);
CREATE INDEX registry_use_rights_closing ON registry_use_rights (status, closes_after);

-- RU-8: documents stored into the organiser's register under a case; content sealed (PL-6).
-- local_copy: the provider's local copy, marked for destruction when the right closes (RU-7).
CREATE TABLE case_documents (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    id TEXT NOT NULL,
    case_oid TEXT NOT NULL,
    right_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    service_task TEXT NOT NULL,
    author_id TEXT NOT NULL,
    author_unit_oid TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    document_type TEXT NOT NULL,
    structure_id TEXT NOT NULL,
    title BLOB NOT NULL,
    document_time TEXT NOT NULL,
    signature BLOB,
    content_type TEXT NOT NULL,
    content BLOB NOT NULL,
    local_copy TEXT NOT NULL CHECK (local_copy IN ('kept', 'marked_for_destruction', 'destroyed')),
    local_copy_marked_at TEXT,
    local_copy_destroyed_at TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id)
) STRICT;
CREATE INDEX case_documents_case ON case_documents (registrar_id, case_oid, created_at);

-- RU-4: security incidents with the 72-hour clock from discovery.
CREATE TABLE security_incidents (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('suspected', 'assessed', 'authority_notified', 'notification_not_required')),
    source TEXT NOT NULL CHECK (source IN ('reported', 'refused_store', 'misplaced_document')),
    description BLOB,
    document_id TEXT,
    discovered_at TEXT NOT NULL,
    notify_by TEXT NOT NULL,
    assessment BLOB,
    notified_at TEXT,
    reported_by TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id)
) STRICT;

-- RU-4, RU-5: notifications to an organisation (the provider before a closing and on a date
-- change; the registrar's contact about an incident). Ids, dates and kinds only.
CREATE TABLE registry_notifications (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    id TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    details TEXT NOT NULL,
    created_at TEXT NOT NULL,
    delivered_at TEXT,
    PRIMARY KEY (registrar_id, id)
) STRICT;

-- CO-6: informing records, consents and prohibitions recorded at a provider, for the national
-- will service. The payload (it holds the identity code) is sealed to its row.
CREATE TABLE will_service_outbox (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    record_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    delivered_at TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (registrar_id, id)
) STRICT;
CREATE INDEX will_service_outbox_due ON will_service_outbox (state, next_attempt_at);
