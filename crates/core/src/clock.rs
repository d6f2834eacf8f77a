//! Time as the domain sees it. Everything that depends on "now" takes a [`Clock`], so tests can
//! set the date instead of waiting for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::{Duration, OffsetDateTime};

pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant in UTC, truncated to microseconds: both databases store microseconds,
    /// so a value read back compares equal to the value written.
    fn now(&self) -> OffsetDateTime;
}

pub type SharedClock = Arc<dyn Clock>;

fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    let nanos = t.nanosecond();
    t.replace_nanosecond(nanos - nanos % 1_000).unwrap_or(t)
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        truncate_to_micros(OffsetDateTime::now_utc())
    }
}

/// A clock that stands still until a test moves it.
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    pub fn new(at: OffsetDateTime) -> Self {
        let clock = Self {
            micros: AtomicI64::new(0),
        };
        clock.set(at);
        clock
    }

    pub fn set(&self, at: OffsetDateTime) {
        let micros = (at.unix_timestamp_nanos() / 1_000) as i64;
        self.micros.store(micros, Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        self.micros.fetch_add(by.whole_microseconds() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        let micros = i128::from(self.micros.load(Ordering::SeqCst));
        OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn manual_clock_is_set_and_advanced() {
        let clock = ManualClock::new(datetime!(2026-12-18 10:00:00.123456789 UTC));
        assert_eq!(clock.now(), datetime!(2026-12-18 10:00:00.123456 UTC));
        clock.advance(Duration::days(14));
        assert_eq!(clock.now(), datetime!(2027-01-01 10:00:00.123456 UTC));
    }

    #[test]
    fn system_clock_has_microsecond_precision() {
        assert_eq!(SystemClock.now().nanosecond() % 1_000, 0);
    }
}
