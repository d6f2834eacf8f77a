//! The Finnish working-day calendar used for legal deadlines (RU-5: a registry use right closes
//! seven working days after the service ends).
//!
//! Working days are Monday to Friday except public holidays, Midsummer Eve and Christmas Eve.
//! Movable days are computed (Easter by the Gregorian computus), never tabulated, so the calendar
//! has no end year.

use time::{Date, Duration, Month, PrimitiveDateTime, Time, UtcOffset, Weekday};

/// A weekday on which Finnish offices are closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinnishHoliday {
    /// uudenvuodenpäivä
    NewYearsDay,
    /// loppiainen
    Epiphany,
    /// pitkäperjantai
    GoodFriday,
    /// pääsiäispäivä
    EasterSunday,
    /// toinen pääsiäispäivä
    EasterMonday,
    /// vappu
    MayDay,
    /// helatorstai
    AscensionDay,
    /// helluntaipäivä
    WhitSunday,
    /// juhannusaatto (not a public holiday by law, but not a working day)
    MidsummerEve,
    /// juhannuspäivä
    MidsummerDay,
    /// pyhäinpäivä
    AllSaintsDay,
    /// itsenäisyyspäivä
    IndependenceDay,
    /// jouluaatto (not a public holiday by law, but not a working day)
    ChristmasEve,
    /// joulupäivä
    ChristmasDay,
    /// tapaninpäivä
    StStephensDay,
}

/// Easter Sunday of a Gregorian year (anonymous Gregorian algorithm).
pub fn easter_sunday(year: i32) -> Date {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    let month = if month == 3 { Month::March } else { Month::April };
    Date::from_calendar_date(year, month, day as u8).unwrap_or(Date::MIN)
}

/// The holiday falling on `date`, if any.
pub fn holiday(date: Date) -> Option<FinnishHoliday> {
    use FinnishHoliday::*;
    let fixed = match (date.month(), date.day()) {
        (Month::January, 1) => Some(NewYearsDay),
        (Month::January, 6) => Some(Epiphany),
        (Month::May, 1) => Some(MayDay),
        (Month::December, 6) => Some(IndependenceDay),
        (Month::December, 24) => Some(ChristmasEve),
        (Month::December, 25) => Some(ChristmasDay),
        (Month::December, 26) => Some(StStephensDay),
        // Midsummer Day is the Saturday of 20–26 June; its eve the Friday before.
        (Month::June, 19..=25) if date.weekday() == Weekday::Friday => Some(MidsummerEve),
        (Month::June, 20..=26) if date.weekday() == Weekday::Saturday => Some(MidsummerDay),
        // All Saints' Day is the Saturday of 31 October – 6 November.
        (Month::October, 31) | (Month::November, 1..=6) if date.weekday() == Weekday::Saturday => Some(AllSaintsDay),
        _ => None,
    };
    if fixed.is_some() {
        return fixed;
    }
    let easter = easter_sunday(date.year());
    match (date - easter).whole_days() {
        -2 => Some(GoodFriday),
        0 => Some(EasterSunday),
        1 => Some(EasterMonday),
        39 => Some(AscensionDay),
        49 => Some(WhitSunday),
        _ => None,
    }
}

pub fn is_working_day(date: Date) -> bool {
    !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) && holiday(date).is_none()
}

/// The date `n` working days after `date`; `date` itself is never counted, and `n == 0` gives
/// `date` back unchanged.
pub fn add_working_days(date: Date, n: u32) -> Date {
    let mut current = date;
    let mut remaining = n;
    while remaining > 0 {
        current += Duration::days(1);
        if is_working_day(current) {
            remaining -= 1;
        }
    }
    current
}

fn last_sunday(year: i32, month: Month) -> Option<Date> {
    let first_of_next = match month {
        Month::December => Date::from_calendar_date(year + 1, Month::January, 1),
        other => Date::from_calendar_date(year, other.next(), 1),
    }
    .ok()?;
    let last = first_of_next.previous_day()?;
    let back = i64::from(last.weekday().number_days_from_sunday());
    Some(last - Duration::days(back))
}

/// The offset of Finnish time (Europe/Helsinki) at the UTC instant `utc`: +3 h in summer time
/// (from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last Sunday of October, the
/// EU rule), +2 h otherwise. Computed, so no time-zone database is needed.
pub fn helsinki_offset(utc: PrimitiveDateTime) -> UtcOffset {
    let year = utc.year();
    let one_am = Time::from_hms(1, 0, 0).unwrap_or(Time::MIDNIGHT);
    let summer = match (last_sunday(year, Month::March), last_sunday(year, Month::October)) {
        (Some(start), Some(end)) => utc >= start.with_time(one_am) && utc < end.with_time(one_am),
        _ => false,
    };
    UtcOffset::from_hms(if summer { 3 } else { 2 }, 0, 0).unwrap_or(UtcOffset::UTC)
}

/// The Finnish wall-clock time of the UTC instant `utc`.
pub fn helsinki_local(utc: PrimitiveDateTime) -> PrimitiveDateTime {
    let local = utc.assume_utc().to_offset(helsinki_offset(utc));
    PrimitiveDateTime::new(local.date(), local.time())
}

#[cfg(test)]
mod tests {
    use super::*;
    use FinnishHoliday::*;
    use time::macros::date;

    #[test]
    fn working_days_easter_is_computed() {
        assert_eq!(easter_sunday(2026), date!(2026 - 04 - 05));
        assert_eq!(easter_sunday(2027), date!(2027 - 03 - 28));
        assert_eq!(easter_sunday(2028), date!(2028 - 04 - 16));
        assert_eq!(easter_sunday(2038), date!(2038 - 04 - 25));
        assert_eq!(easter_sunday(2285), date!(2285 - 03 - 22));
    }

    #[test]
    fn working_days_holidays_2026_to_2028() {
        let expected = [
            (date!(2026 - 04 - 03), GoodFriday),
            (date!(2026 - 04 - 06), EasterMonday),
            (date!(2026 - 05 - 14), AscensionDay),
            (date!(2026 - 06 - 19), MidsummerEve),
            (date!(2026 - 06 - 20), MidsummerDay),
            (date!(2026 - 10 - 31), AllSaintsDay),
            (date!(2026 - 12 - 24), ChristmasEve),
            (date!(2026 - 12 - 25), ChristmasDay),
            (date!(2027 - 03 - 26), GoodFriday),
            (date!(2027 - 03 - 29), EasterMonday),
            (date!(2027 - 05 - 06), AscensionDay),
            (date!(2027 - 06 - 25), MidsummerEve),
            (date!(2027 - 06 - 26), MidsummerDay),
            (date!(2027 - 11 - 06), AllSaintsDay),
            (date!(2027 - 12 - 24), ChristmasEve),
            (date!(2028 - 04 - 14), GoodFriday),
            (date!(2028 - 04 - 17), EasterMonday),
            (date!(2028 - 05 - 25), AscensionDay),
            (date!(2028 - 06 - 23), MidsummerEve),
            (date!(2028 - 06 - 24), MidsummerDay),
            (date!(2028 - 11 - 04), AllSaintsDay),
            (date!(2028 - 12 - 25), ChristmasDay),
            (date!(2028 - 12 - 26), StStephensDay),
        ];
        for (day, holiday_kind) in expected {
            assert_eq!(holiday(day), Some(holiday_kind), "{day}");
            assert!(!is_working_day(day), "{day}");
        }
        // The days around movable holidays are ordinary.
        for day in [
            date!(2026 - 04 - 02),
            date!(2026 - 04 - 07),
            date!(2026 - 06 - 18),
            date!(2027 - 11 - 05),
        ] {
            assert_eq!(holiday(day), None, "{day}");
            assert!(is_working_day(day), "{day}");
        }
    }

    #[test]
    fn working_days_seven_working_days_over_christmas() {
        // The spec's example: a service ending Friday 2026-12-18 keeps its right through
        // Thursday 2026-12-31 (Christmas Eve, Christmas Day and the weekend are skipped).
        assert_eq!(add_working_days(date!(2026 - 12 - 18), 7), date!(2026 - 12 - 31));
        // New Year's Day and Epiphany 2027 (Wednesday) are skipped too.
        assert_eq!(add_working_days(date!(2026 - 12 - 31), 4), date!(2027 - 01 - 08));
        assert_eq!(add_working_days(date!(2028 - 12 - 22), 1), date!(2028 - 12 - 27));
    }

    #[test]
    fn working_days_working_days_over_easter_midsummer_and_all_saints() {
        // Thursday before Easter 2027 + 1 working day = Tuesday after Easter Monday.
        assert_eq!(add_working_days(date!(2027 - 03 - 25), 1), date!(2027 - 03 - 30));
        // Midsummer 2028: Thursday 22 June + 1 = Monday 26 June.
        assert_eq!(add_working_days(date!(2028 - 06 - 22), 1), date!(2028 - 06 - 26));
        // All Saints' Day falls on a Saturday and costs no working day.
        assert_eq!(add_working_days(date!(2027 - 11 - 05), 1), date!(2027 - 11 - 08));
        // Ascension Day 2026 (Thursday 14 May).
        assert_eq!(add_working_days(date!(2026 - 05 - 13), 1), date!(2026 - 05 - 15));
        assert_eq!(add_working_days(date!(2026 - 05 - 13), 0), date!(2026 - 05 - 13));
    }

    #[test]
    fn au_10_helsinki_time_follows_the_eu_summer_time_rule() {
        use time::macros::datetime;
        // Summer time 2026: 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(helsinki_local(datetime!(2026-03-29 00:59)), datetime!(2026-03-29 02:59));
        assert_eq!(helsinki_local(datetime!(2026-03-29 01:00)), datetime!(2026-03-29 04:00));
        assert_eq!(helsinki_local(datetime!(2026-10-25 00:59)), datetime!(2026-10-25 03:59));
        assert_eq!(helsinki_local(datetime!(2026-10-25 01:00)), datetime!(2026-10-25 03:00));
        assert_eq!(helsinki_local(datetime!(2026-12-31 22:30)), datetime!(2027-01-01 00:30));
        assert_eq!(helsinki_local(datetime!(2027-06-30 21:00)), datetime!(2027-07-01 00:00));
    }
}
