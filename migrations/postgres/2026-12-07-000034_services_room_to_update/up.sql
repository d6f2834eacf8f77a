-- Room on the services' pages for their next versions (PL-15, issue 22 point 5). A service is
-- updated in place over its life (changed, closed, and at the end purged by the anonymisation
-- run), and its purge changes no indexed column. PostgreSQL writes such an update's new row
-- version on the same page without touching the indexes (a heap-only tuple) only when the page
-- has room for it; at the default fillfactor of 100 a page filled by inserts has none, so every
-- purged service added an entry to each of the table's five indexes (the services' UPDATE was
-- over a third of an anonymisation batch's time on PostgreSQL; with 90, some 13 % of the purges
-- find room, docs/performance.md). This applies to pages written from now on; an existing
-- installation gets it for its old rows with `VACUUM FULL services` (docs/operations.md).
ALTER TABLE services SET (fillfactor = 90);
