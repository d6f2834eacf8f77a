//! Cron schedules read in Finnish time (PL-8).
//!
//! Expressions are parsed by `croner`: the classic five fields (minute hour day month weekday,
//! Vixie cron's rules, names such as `MON`, `L` and `#`), or six with seconds first, which the
//! outbox's ten-second default needs. They are read in Europe/Helsinki wall-clock time without a
//! time-zone database: the UTC offset comes from `rekisteri_core::helsinki_offset`.

use rekisteri_core::{helsinki_local, helsinki_offset};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

#[derive(Debug, thiserror::Error)]
#[error("invalid cron expression '{expression}': {message}")]
pub struct ScheduleError {
    pub expression: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    cron: croner::Cron,
}

impl Schedule {
    pub fn parse(expression: &str) -> Result<Self, ScheduleError> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(expression)
            .map_err(|e| ScheduleError {
                expression: expression.to_owned(),
                message: e.to_string(),
            })?;
        Ok(Self {
            expression: expression.trim().to_owned(),
            cron,
        })
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first instant strictly after `after` at which the expression matches Finnish
    /// wall-clock time. A wall-clock time skipped by the spring change runs as if the clock had
    /// not jumped yet (an hour later on the new clock); one repeated by the autumn change runs
    /// once, at its first occurrence.
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let mut from = helsinki_local(rekisteri_db::to_primitive(after));
        // The autumn hour repeats wall-clock times already passed; a few steps get past it.
        for _ in 0..8 {
            let wall = chrono::DateTime::<chrono::Utc>::from_timestamp(from.assume_utc().unix_timestamp(), 0)?;
            let next = self.cron.find_next_occurrence(&wall, false).ok()?;
            let local = OffsetDateTime::from_unix_timestamp(next.timestamp()).ok()?;
            let local = PrimitiveDateTime::new(local.date(), local.time());
            let utc = to_utc(local)?;
            if utc > after {
                return Some(utc);
            }
            from = local;
        }
        None
    }
}

/// The UTC instant of a Finnish wall-clock time: summer time first (so a repeated autumn time is
/// its first occurrence), and a time in the spring gap as if the clock had not jumped yet.
fn to_utc(local: PrimitiveDateTime) -> Option<OffsetDateTime> {
    for hours in [3, 2] {
        let offset = UtcOffset::from_hms(hours, 0, 0).ok()?;
        let utc = local.assume_offset(offset).to_offset(UtcOffset::UTC);
        if helsinki_offset(PrimitiveDateTime::new(utc.date(), utc.time())) == offset {
            return Some(utc);
        }
    }
    Some(
        local
            .assume_offset(UtcOffset::from_hms(2, 0, 0).ok()?)
            .to_offset(UtcOffset::UTC),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::datetime;

    #[test]
    fn pl_8_schedules_are_read_in_finnish_time() {
        let nightly = Schedule::parse("0 2 * * *").unwrap();
        // Winter: 02:00 Helsinki is 00:00 UTC; summer: 23:00 UTC the day before.
        assert_eq!(
            nightly.next_after(datetime!(2026-01-10 12:00 UTC)),
            Some(datetime!(2026-01-11 00:00 UTC))
        );
        assert_eq!(
            nightly.next_after(datetime!(2026-07-10 12:00 UTC)),
            Some(datetime!(2026-07-10 23:00 UTC))
        );
        let weekly = Schedule::parse("0 3 * * MON").unwrap();
        // 2026-12-07 is a Monday.
        assert_eq!(
            weekly.next_after(datetime!(2026-12-03 12:00 UTC)),
            Some(datetime!(2026-12-07 01:00 UTC))
        );
        let outbox = Schedule::parse("*/10 * * * * *").unwrap();
        assert_eq!(
            outbox.next_after(datetime!(2026-12-03 12:00:03.5 UTC)),
            Some(datetime!(2026-12-03 12:00:10 UTC))
        );
        assert!(Schedule::parse("every night").is_err());
    }

    #[test]
    fn pl_8_a_nightly_run_survives_the_clock_changes() {
        let at_0330 = Schedule::parse("30 3 * * *").unwrap();
        // 2026-03-29: 03:00 becomes 04:00, 03:30 does not exist; it runs at 04:30 (01:30 UTC).
        assert_eq!(
            at_0330.next_after(datetime!(2026-03-28 12:00 UTC)),
            Some(datetime!(2026-03-29 01:30 UTC))
        );
        // 2026-10-25: 03:30 happens twice; it runs once, the first time (00:30 UTC).
        let first = at_0330.next_after(datetime!(2026-10-24 12:00 UTC)).unwrap();
        assert_eq!(first, datetime!(2026-10-25 00:30 UTC));
        assert_eq!(at_0330.next_after(first), Some(datetime!(2026-10-26 01:30 UTC)));
    }
}
