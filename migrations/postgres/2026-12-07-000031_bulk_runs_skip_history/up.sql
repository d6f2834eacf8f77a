-- The anonymisation and deletion runs ask for a batch's earlier identity codes by client; the
-- table is keyed by the code's blind index, so each batch read the registrar's every row.
-- (SQLite's history triggers change in this migration too; record_change() already returns
-- before building anything for the bulk runs' actors, 000028.)
CREATE INDEX client_previous_codes_client ON client_previous_codes (registrar_id, client_id);
