//! What the audit writer's group commits look like from outside (`/metrics`): how many entries a
//! group takes, how long its commit takes, and how many failed. One writer runs per process, so
//! its figures are the process's.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

pub struct WriterMetrics {
    /// Entries per group commit.
    pub group_entries: Histogram,
    /// Seconds from a group's first entry taken to its commit (or failure).
    pub commit_seconds: Histogram,
    /// Group commits that failed (their callers got the error, none got data).
    pub failures: Counter,
}

static WRITER: LazyLock<WriterMetrics> = LazyLock::new(|| WriterMetrics {
    group_entries: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
    commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 14)),
    failures: Counter::default(),
});

/// The process's audit writer figures.
pub fn writer_metrics() -> &'static WriterMetrics {
    &WRITER
}
