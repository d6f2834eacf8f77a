DROP TABLE client_moves;
DROP TABLE registrar_municipalities;
