-- PostgreSQL's change-history trigger function changes here (see its 000036); SQLite's insert
-- triggers name the row by NEW.id already. Kept so that both databases count the same
-- migrations.
SELECT 1;
