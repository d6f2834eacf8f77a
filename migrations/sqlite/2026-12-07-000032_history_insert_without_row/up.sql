-- An insert's history row names who inserted the row and when, without a copy of it (CL-17,
-- issue 22 points 4 and 5). The row itself holds the inserted values until it changes, and
-- every change's history row keeps the old values of what it changed (000029), as a delete's
-- keeps the whole old row: the row as inserted is the row now with the changes since undone,
-- newest first. The copy was the bulk of the history (a client's some 30 columns, most of
-- them ciphertexts, hex-encoded: about 1 KB a row), written once more by every push and
-- deleted again by the anonymisation run. History rows already written keep their copy.
-- Written from the triggers as 000031 left them: only the new_row value differs.
DROP TRIGGER account_roles_history_insert;
CREATE TRIGGER account_roles_history_insert AFTER INSERT ON account_roles
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('account_roles', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, NULL);
END;
DROP TRIGGER account_service_areas_history_insert;
CREATE TRIGGER account_service_areas_history_insert AFTER INSERT ON account_service_areas
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('account_service_areas', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, NULL);
END;
DROP TRIGGER account_service_units_history_insert;
CREATE TRIGGER account_service_units_history_insert AFTER INSERT ON account_service_units
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('account_service_units', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, NULL);
END;
DROP TRIGGER care_team_members_history_insert;
CREATE TRIGGER care_team_members_history_insert AFTER INSERT ON care_team_members
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('care_team_members', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, NULL);
END;
DROP TRIGGER clients_history_insert;
CREATE TRIGGER clients_history_insert AFTER INSERT ON clients
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('clients', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, NULL);
END;
DROP TRIGGER data_subject_requests_history_insert;
CREATE TRIGGER data_subject_requests_history_insert AFTER INSERT ON data_subject_requests
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('data_subject_requests', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, NULL);
END;
DROP TRIGGER organisations_history_insert;
CREATE TRIGGER organisations_history_insert AFTER INSERT ON organisations
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('organisations', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, NULL);
END;
DROP TRIGGER proxies_history_insert;
CREATE TRIGGER proxies_history_insert AFTER INSERT ON proxies
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('proxies', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, NULL);
END;
DROP TRIGGER service_areas_history_insert;
CREATE TRIGGER service_areas_history_insert AFTER INSERT ON service_areas
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('service_areas', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, NULL);
END;
DROP TRIGGER service_events_history_insert;
CREATE TRIGGER service_events_history_insert AFTER INSERT ON service_events
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('service_events', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, NULL);
END;
DROP TRIGGER service_types_history_insert;
CREATE TRIGGER service_types_history_insert AFTER INSERT ON service_types
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('service_types', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, NULL);
END;
DROP TRIGGER services_history_insert;
CREATE TRIGGER services_history_insert AFTER INSERT ON services
WHEN COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database') NOT IN ('system:lifecycle-purge', 'system:key-rotation')
BEGIN
    INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)
    VALUES ('services', NEW.id, 'INSERT', COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database'), strftime('%Y-%m-%d %H:%M:%f', 'now'), NULL, NULL);
END;
