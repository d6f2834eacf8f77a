DROP TABLE client_previous_codes;
DROP TABLE vtj_staged;
DROP TABLE vtj_monitored;
DROP TABLE vtj_state;
