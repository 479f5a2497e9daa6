//! The time source, and the Stockholm calendar.
//!
//! Ages and "today" are decided on the Europe/Stockholm calendar date, never UTC: at 00:30 on a
//! birthday in Stockholm it is still the day before in UTC, and an 18-year-old would be turned away.
//! The clock is a trait so tests and the app control "now".
//!
//! Sweden follows the EU summer-time rule (since 1996, and in law since 2001): CET (UTC+1), and
//! CEST (UTC+2) from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last Sunday of
//! October. That rule is small enough to write here instead of shipping a time-zone database to
//! every phone.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Utc, Weekday};

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// Today's date on the Stockholm calendar.
    fn today(&self) -> NaiveDate {
        stockholm_date(self.now())
    }
}

/// The device's real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that always says the same instant (tests, demos, `--on` in the CLI).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl FixedClock {
    /// Noon in Stockholm on the given date.
    pub fn at_stockholm_noon(date: NaiveDate) -> FixedClock {
        FixedClock(stockholm_noon(date))
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// The UTC offset in force in Stockholm at an instant.
pub fn stockholm_offset(instant: DateTime<Utc>) -> FixedOffset {
    let year = instant.year();
    let start = last_sunday_0100_utc(year, 3);
    let end = last_sunday_0100_utc(year, 10);
    let hours = if instant >= start && instant < end {
        2
    } else {
        1
    };
    FixedOffset::east_opt(hours * 3600).expect("offset within range")
}

/// The instant as Stockholm local time (for RFC 3339 timestamps with offset).
pub fn to_stockholm(instant: DateTime<Utc>) -> DateTime<FixedOffset> {
    instant.with_timezone(&stockholm_offset(instant))
}

/// The Stockholm calendar date at an instant.
pub fn stockholm_date(instant: DateTime<Utc>) -> NaiveDate {
    to_stockholm(instant).date_naive()
}

/// Noon in Stockholm on a date, as an instant (a safe "some time that day").
pub fn stockholm_noon(date: NaiveDate) -> DateTime<Utc> {
    let naive = date.and_hms_opt(12, 0, 0).expect("noon exists");
    // Noon is never near a switch (they happen at 01:00 UTC), so either offset gives the same date.
    let guess = Utc.from_utc_datetime(&naive);
    let offset = stockholm_offset(guess);
    offset
        .from_local_datetime(&naive)
        .single()
        .expect("fixed offsets are unambiguous")
        .with_timezone(&Utc)
}

fn last_sunday_0100_utc(year: i32, month: u32) -> DateTime<Utc> {
    let first_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }
    .expect("valid month");
    let mut day = first_next.pred_opt().expect("has a previous day");
    while day.weekday() != Weekday::Sun {
        day = day.pred_opt().expect("has a previous day");
    }
    Utc.from_utc_datetime(&day.and_hms_opt(1, 0, 0).expect("01:00 exists"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn winter_is_utc_plus_one_and_summer_plus_two() {
        assert_eq!(
            stockholm_offset(utc("2026-01-15T12:00:00Z")).local_minus_utc(),
            3600
        );
        assert_eq!(
            stockholm_offset(utc("2026-07-15T12:00:00Z")).local_minus_utc(),
            7200
        );
    }

    #[test]
    fn switches_at_one_utc_on_the_last_sundays() {
        // 2026: summer time from 29 March, back on 25 October.
        assert_eq!(
            stockholm_offset(utc("2026-03-29T00:59:59Z")).local_minus_utc(),
            3600
        );
        assert_eq!(
            stockholm_offset(utc("2026-03-29T01:00:00Z")).local_minus_utc(),
            7200
        );
        assert_eq!(
            stockholm_offset(utc("2026-10-25T00:59:59Z")).local_minus_utc(),
            7200
        );
        assert_eq!(
            stockholm_offset(utc("2026-10-25T01:00:00Z")).local_minus_utc(),
            3600
        );
    }

    #[test]
    fn the_stockholm_date_runs_ahead_of_utc_around_midnight() {
        // 23:30 UTC on 31 Dec is already New Year's Day in Stockholm.
        let d = stockholm_date(utc("2025-12-31T23:30:00Z"));
        assert_eq!(d, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
        // 22:30 UTC in summer is 00:30 the next day.
        let d = stockholm_date(utc("2026-06-10T22:30:00Z"));
        assert_eq!(d, NaiveDate::from_ymd_opt(2026, 6, 11).unwrap());
    }

    #[test]
    fn fixed_clock_at_noon_is_that_date() {
        let date = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let clock = FixedClock::at_stockholm_noon(date);
        assert_eq!(clock.today(), date);
        assert_eq!(
            to_stockholm(clock.now()).format("%H:%M").to_string(),
            "12:00"
        );
    }
}
