DROP TRIGGER organisations_history ON organisations;
DROP TRIGGER account_roles_history ON account_roles;
DROP TRIGGER account_service_units_history ON account_service_units;
DROP FUNCTION record_change();
DROP TABLE change_history;
DROP FUNCTION change_history_append_only();
