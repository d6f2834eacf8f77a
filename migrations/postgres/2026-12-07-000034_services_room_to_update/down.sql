ALTER TABLE services RESET (fillfactor);
