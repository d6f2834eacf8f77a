-- Client register (CL-1..CL-6) and the service areas that divide a registrar's data (AX-4).
-- Every client-data table carries registrar_id, its key and every unique key start with it, and
-- every foreign key stays inside one registrar (PL-7: ready to distribute by registrar_id).
-- Personal fields are ciphertext bound to table, column and row (PL-6); a client is found by
-- the blind index of the identity code (subject_index, the same index the usage log names the
-- person by).

CREATE TABLE service_areas (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    id TEXT NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (registrar_id, id),
    UNIQUE (registrar_id, code)
);

-- Every service type belongs to one service area of its registrar (AX-4).
CREATE TABLE service_types (
    registrar_id TEXT NOT NULL,
    id TEXT NOT NULL,
    code TEXT NOT NULL,
    service_area_id TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (registrar_id, id),
    UNIQUE (registrar_id, code),
    FOREIGN KEY (registrar_id, service_area_id) REFERENCES service_areas (registrar_id, id)
);

-- A staff user's right to a registrar's service area, with a validity period (AC-11, AX-4).
CREATE TABLE account_service_areas (
    id TEXT PRIMARY KEY NOT NULL,
    registrar_id TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    service_area_id TEXT NOT NULL,
    valid_from TIMESTAMPTZ NOT NULL,
    valid_until TIMESTAMPTZ,
    granted_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    FOREIGN KEY (registrar_id, service_area_id) REFERENCES service_areas (registrar_id, id)
);
CREATE INDEX account_service_areas_account ON account_service_areas (account_id);

CREATE TABLE clients (
    registrar_id TEXT NOT NULL REFERENCES organisations (id),
    id TEXT NOT NULL,
    subject_index BYTEA,
    identity_code BYTEA,
    first_names BYTEA,
    surname BYTEA,
    gender TEXT NOT NULL CHECK (gender IN ('male', 'female', 'unknown')),
    home_municipality TEXT,
    moved_in_on DATE,
    moved_out_on DATE,
    died_on DATE,
    language TEXT,
    email BYTEA,
    phone BYTEA,
    next_of_kin BYTEA,
    address BYTEA,
    protection_order BOOLEAN NOT NULL DEFAULT FALSE,
    restricted BOOLEAN NOT NULL DEFAULT FALSE,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    anonymised_at TIMESTAMPTZ,
    PRIMARY KEY (registrar_id, id),
    UNIQUE (registrar_id, subject_index)
);

CREATE TABLE services (
    registrar_id TEXT NOT NULL,
    id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('service_voucher', 'purchased_service')),
    service_type TEXT NOT NULL,
    service_name TEXT NOT NULL,
    -- Hundredths of the unit: 1.5 hours is 150.
    quantity_centi BIGINT NOT NULL CHECK (quantity_centi > 0),
    unit TEXT NOT NULL CHECK (unit IN ('hour', 'visit', 'day', 'euro')),
    unit_value_cents BIGINT,
    valid_from DATE NOT NULL,
    valid_to DATE NOT NULL,
    provider_id TEXT NOT NULL REFERENCES organisations (id),
    provider_unit_oid TEXT,
    decision_ref TEXT,
    status TEXT NOT NULL CHECK (status IN ('active', 'closed')),
    closed_on DATE,
    additional_info BYTEA,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (registrar_id, id),
    FOREIGN KEY (registrar_id, client_id) REFERENCES clients (registrar_id, id),
    FOREIGN KEY (registrar_id, service_type) REFERENCES service_types (registrar_id, code)
);
CREATE INDEX services_client ON services (registrar_id, client_id);
CREATE INDEX services_provider ON services (registrar_id, provider_id);

CREATE TABLE service_events (
    registrar_id TEXT NOT NULL,
    id TEXT NOT NULL,
    service_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    delivered_on DATE NOT NULL,
    quantity_centi BIGINT NOT NULL CHECK (quantity_centi > 0),
    unit_price_cents BIGINT NOT NULL CHECK (unit_price_cents >= 0),
    note BYTEA,
    recorded_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (registrar_id, id),
    FOREIGN KEY (registrar_id, service_id) REFERENCES services (registrar_id, id)
);
CREATE INDEX service_events_service ON service_events (registrar_id, service_id, delivered_on);
CREATE INDEX service_events_delivered ON service_events (registrar_id, delivered_on);

CREATE TRIGGER service_areas_history AFTER INSERT OR UPDATE OR DELETE ON service_areas
    FOR EACH ROW EXECUTE FUNCTION record_change();
CREATE TRIGGER service_types_history AFTER INSERT OR UPDATE OR DELETE ON service_types
    FOR EACH ROW EXECUTE FUNCTION record_change();
CREATE TRIGGER account_service_areas_history AFTER INSERT OR UPDATE OR DELETE ON account_service_areas
    FOR EACH ROW EXECUTE FUNCTION record_change();
CREATE TRIGGER clients_history AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH ROW EXECUTE FUNCTION record_change();
CREATE TRIGGER services_history AFTER INSERT OR UPDATE OR DELETE ON services
    FOR EACH ROW EXECUTE FUNCTION record_change();
CREATE TRIGGER service_events_history AFTER INSERT OR UPDATE OR DELETE ON service_events
    FOR EACH ROW EXECUTE FUNCTION record_change();
