-- Nothing on SQLite: PostgreSQL's migration of the same name leaves room on the services' pages
-- for updates that need no new index entries; SQLite rewrites a row in its b-tree page and has
-- no such setting. The migration is here so that both backends list the same versions.
SELECT 1;
