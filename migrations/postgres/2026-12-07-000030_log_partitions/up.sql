-- SQLite's log tables became monthly partitions in this version; PostgreSQL's have been since
-- 000002 (declarative partitioning), so there is nothing to do here.
SELECT 1;
