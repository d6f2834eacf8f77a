-- The scheduler's leases (PL-8): one row per periodic job. A server runs a job only while it
-- holds the job's lease (holder, until expires_at); every acquisition moves token, and a job's
-- write transactions check that token, so a holder that stalled past its expiry and lost the
-- lease cannot commit anything afterwards (fencing). The row also keeps what `jobs list` shows
-- and what every server's scheduler shares: the last run, its outcome and counts (JSON text),
-- the number of failures in a row (the backoff) and when the job is next due.
CREATE TABLE job_leases (
    job TEXT PRIMARY KEY,
    holder TEXT,
    token BIGINT NOT NULL DEFAULT 0,
    acquired_at TEXT,
    expires_at TEXT,
    last_started_at TEXT,
    last_finished_at TEXT,
    last_outcome TEXT,
    last_counts TEXT,
    last_error TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    next_run_at TEXT
);
