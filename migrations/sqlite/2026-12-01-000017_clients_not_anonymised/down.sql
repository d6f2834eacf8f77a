DROP INDEX clients_not_anonymised;
