-- The insert triggers as 000031 left them, each with a copy of the inserted row.
DROP TRIGGER account_roles_history_insert;
CREATE TRIGGER account_roles_history_insert AFTER INSERT ON account_roles
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('account_roles', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('id', NEW.id, 'account_id', NEW.account_id, 'role', NEW.role, 'valid_from', NEW.valid_from, 'valid_until', NEW.valid_until, 'granted_by', NEW.granted_by, 'created_at', NEW.created_at));
END;
DROP TRIGGER account_service_areas_history_insert;
CREATE TRIGGER account_service_areas_history_insert AFTER INSERT ON account_service_areas
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('account_service_areas', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('id', NEW.id, 'registrar_id', NEW.registrar_id, 'account_id', NEW.account_id, 'service_area_id', NEW.service_area_id, 'valid_from', NEW.valid_from, 'valid_until', NEW.valid_until, 'granted_by', NEW.granted_by, 'created_at', NEW.created_at));
END;
DROP TRIGGER account_service_units_history_insert;
CREATE TRIGGER account_service_units_history_insert AFTER INSERT ON account_service_units
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('account_service_units', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('id', NEW.id, 'account_id', NEW.account_id, 'service_unit_id', NEW.service_unit_id, 'valid_from', NEW.valid_from, 'valid_until', NEW.valid_until, 'created_at', NEW.created_at));
END;
DROP TRIGGER care_team_members_history_insert;
CREATE TRIGGER care_team_members_history_insert AFTER INSERT ON care_team_members
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('care_team_members', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'client_id', NEW.client_id, 'account_id', NEW.account_id, 'service_unit_id', NEW.service_unit_id, 'team_role', NEW.team_role, 'valid_from', NEW.valid_from, 'valid_until', NEW.valid_until, 'added_by', NEW.added_by, 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at));
END;
DROP TRIGGER clients_history_insert;
CREATE TRIGGER clients_history_insert AFTER INSERT ON clients
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('clients', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'subject_index', hex(NEW.subject_index), 'identity_code', hex(NEW.identity_code), 'first_names', hex(NEW.first_names), 'surname', hex(NEW.surname), 'gender', NEW.gender, 'home_municipality', NEW.home_municipality, 'moved_in_on', NEW.moved_in_on, 'moved_out_on', NEW.moved_out_on, 'died_on', NEW.died_on, 'language', NEW.language, 'email', hex(NEW.email), 'phone', hex(NEW.phone), 'next_of_kin', hex(NEW.next_of_kin), 'address', hex(NEW.address), 'protection_order', NEW.protection_order, 'restricted', NEW.restricted, 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'anonymised_at', NEW.anonymised_at, 'birth_year', NEW.birth_year, 'temporary_address', hex(NEW.temporary_address), 'postal_address', hex(NEW.postal_address), 'guardianship', hex(NEW.guardianship), 'moved_in_on_precision', NEW.moved_in_on_precision, 'moved_out_on_precision', NEW.moved_out_on_precision, 'died_on_precision', NEW.died_on_precision));
END;
DROP TRIGGER data_subject_requests_history_insert;
CREATE TRIGGER data_subject_requests_history_insert AFTER INSERT ON data_subject_requests
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('data_subject_requests', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'kind', NEW.kind, 'subject_index', hex(NEW.subject_index), 'identity_code', hex(NEW.identity_code), 'client_id', NEW.client_id, 'requester', hex(NEW.requester), 'details', hex(NEW.details), 'received_on', NEW.received_on, 'first_due_on', NEW.first_due_on, 'due_on', NEW.due_on, 'extension_reason', hex(NEW.extension_reason), 'extension_notified_on', NEW.extension_notified_on, 'status', NEW.status, 'refusal_reasons', hex(NEW.refusal_reasons), 'complaint_route', NEW.complaint_route, 'closed_on', NEW.closed_on, 'handled_by', NEW.handled_by, 'created_by', NEW.created_by, 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'identity_verification', NEW.identity_verification));
END;
DROP TRIGGER organisations_history_insert;
CREATE TRIGGER organisations_history_insert AFTER INSERT ON organisations
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('organisations', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('id', NEW.id, 'name', NEW.name, 'kind', NEW.kind, 'oid', NEW.oid, 'business_id', NEW.business_id, 'strong_authentication_required', NEW.strong_authentication_required, 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'anonymised_retention_years', NEW.anonymised_retention_years, 'contact_person', NEW.contact_person, 'data_protection_officer', NEW.data_protection_officer, 'dvv_permit_reference', NEW.dvv_permit_reference));
END;
DROP TRIGGER proxies_history_insert;
CREATE TRIGGER proxies_history_insert AFTER INSERT ON proxies
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('proxies', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'client_id', NEW.client_id, 'subject_index', hex(NEW.subject_index), 'identity_code', hex(NEW.identity_code), 'first_names', hex(NEW.first_names), 'surname', hex(NEW.surname), 'phone', hex(NEW.phone), 'email', hex(NEW.email), 'valid_from', NEW.valid_from, 'valid_to', NEW.valid_to, 'revoked_at', NEW.revoked_at, 'revoked_by', NEW.revoked_by, 'created_by', NEW.created_by, 'created_at', NEW.created_at));
END;
DROP TRIGGER service_areas_history_insert;
CREATE TRIGGER service_areas_history_insert AFTER INSERT ON service_areas
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('service_areas', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'code', NEW.code, 'name', NEW.name, 'created_at', NEW.created_at));
END;
DROP TRIGGER service_events_history_insert;
CREATE TRIGGER service_events_history_insert AFTER INSERT ON service_events
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('service_events', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'service_id', NEW.service_id, 'client_id', NEW.client_id, 'delivered_on', NEW.delivered_on, 'quantity_centi', NEW.quantity_centi, 'unit_price_cents', NEW.unit_price_cents, 'note', hex(NEW.note), 'recorded_by', NEW.recorded_by, 'created_at', NEW.created_at));
END;
DROP TRIGGER service_types_history_insert;
CREATE TRIGGER service_types_history_insert AFTER INSERT ON service_types
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('service_types', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'code', NEW.code, 'service_area_id', NEW.service_area_id, 'created_at', NEW.created_at));
END;
DROP TRIGGER services_history_insert;
CREATE TRIGGER services_history_insert AFTER INSERT ON services
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('services', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, json_object('registrar_id', NEW.registrar_id, 'id', NEW.id, 'client_id', NEW.client_id, 'kind', NEW.kind, 'service_type', NEW.service_type, 'service_name', NEW.service_name, 'quantity_centi', NEW.quantity_centi, 'unit', NEW.unit, 'unit_value_cents', NEW.unit_value_cents, 'valid_from', NEW.valid_from, 'valid_to', NEW.valid_to, 'provider_id', NEW.provider_id, 'provider_unit_oid', NEW.provider_unit_oid, 'decision_ref', NEW.decision_ref, 'status', NEW.status, 'closed_on', NEW.closed_on, 'additional_info', hex(NEW.additional_info), 'version', NEW.version, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at));
END;
