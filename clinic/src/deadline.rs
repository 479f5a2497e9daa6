//! When a referred person must have been phoned: the program's promise (`callback_within`)
//! counted from the moment of consent, not of receipt, so hours a phone spent offline count
//! against it and a referral that arrives late is late at once.
//!
//! - An hours promise counts clock hours: 24 hours across a change to or from summer time are
//!   24 real hours, and nights and weekends count.
//! - A working-days promise counts Swedish bank days: Monday to Friday, without the public
//!   holidays (the Easter-based ones computed, not listed) and without midsommarafton, julafton
//!   and nyårsafton. The deadline is the end (midnight, Stockholm time) of the Nth bank day after
//!   the day of consent: consent on a Thursday before Easter with two working days to go is due
//!   by the end of the Wednesday after Easter.
//!
//! A referral is *due soon* in the last quarter of its promise (measured in real time from
//! consent to deadline), and *overdue* after the deadline.

use chrono::{DateTime, Datelike, Days, Duration, NaiveDate, Utc, Weekday};
use lotsa_core::clock::{stockholm_date, stockholm_offset};
use lotsa_core::program::CallbackWithin;

/// Where a referral stands against its promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// More than a quarter of the promise is left.
    InTime,
    /// The last quarter of the promise.
    DueSoon,
    /// Past the deadline.
    Overdue,
}

impl Urgency {
    /// A stable code (`in_time`, `due_soon`, `overdue`).
    pub fn code(self) -> &'static str {
        match self {
            Urgency::InTime => "in_time",
            Urgency::DueSoon => "due_soon",
            Urgency::Overdue => "overdue",
        }
    }
}

/// The deadline of a promise for a consent given at `consented`.
pub fn deadline(consented: DateTime<Utc>, promise: CallbackWithin) -> DateTime<Utc> {
    match promise {
        CallbackWithin::Hours(h) => consented + Duration::hours(i64::from(h)),
        CallbackWithin::WorkingDays(n) => {
            let mut day = stockholm_date(consented);
            let mut counted = 0;
            while counted < n {
                day = day + Days::new(1);
                if is_bank_day(day) {
                    counted += 1;
                }
            }
            end_of_day(day)
        }
    }
}

/// Where a referral consented at `consented` stands at `now`.
pub fn urgency(consented: DateTime<Utc>, promise: CallbackWithin, now: DateTime<Utc>) -> Urgency {
    let due = deadline(consented, promise);
    if now > due {
        return Urgency::Overdue;
    }
    let span = due - consented;
    if due - now <= span / 4 {
        Urgency::DueSoon
    } else {
        Urgency::InTime
    }
}

/// The instant a Stockholm calendar day ends (the next day's local midnight).
fn end_of_day(day: NaiveDate) -> DateTime<Utc> {
    let next = day + Days::new(1);
    let midnight = next.and_hms_opt(0, 0, 0).unwrap_or_default();
    // Summer time changes at 02:00 or 03:00, never near midnight: the offset at the end of a day
    // is the one at its noon.
    let noon = day.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc();
    let offset = stockholm_offset(noon);
    (midnight - Duration::seconds(i64::from(offset.local_minus_utc()))).and_utc()
}

/// Whether banks are open in Sweden: Monday to Friday, not a public holiday, not midsommarafton,
/// julafton or nyårsafton.
pub fn is_bank_day(day: NaiveDate) -> bool {
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && holiday(day).is_none()
}

/// The Swedish public holiday (or bank holiday eve) on a day, by its Swedish name.
pub fn holiday(day: NaiveDate) -> Option<&'static str> {
    let (y, m, d) = (day.year(), day.month(), day.day());
    let easter = easter_sunday(y)?;
    let from_easter = (day - easter).num_days();
    match (m, d) {
        (1, 1) => return Some("nyårsdagen"),
        (1, 6) => return Some("trettondedag jul"),
        (5, 1) => return Some("första maj"),
        (6, 6) => return Some("Sveriges nationaldag"),
        (12, 24) => return Some("julafton"),
        (12, 25) => return Some("juldagen"),
        (12, 26) => return Some("annandag jul"),
        (12, 31) => return Some("nyårsafton"),
        _ => {}
    }
    match from_easter {
        -2 => return Some("långfredagen"),
        0 => return Some("påskdagen"),
        1 => return Some("annandag påsk"),
        39 => return Some("Kristi himmelsfärdsdag"),
        49 => return Some("pingstdagen"),
        _ => {}
    }
    // Midsommarafton is the Friday between 19 and 25 June, midsommardagen the Saturday after;
    // alla helgons dag the Saturday between 31 October and 6 November.
    match (m, d, day.weekday()) {
        (6, 19..=25, Weekday::Fri) => Some("midsommarafton"),
        (6, 20..=26, Weekday::Sat) => Some("midsommardagen"),
        (10, 31, Weekday::Sat) | (11, 1..=6, Weekday::Sat) => Some("alla helgons dag"),
        _ => None,
    }
}

/// Easter Sunday of a Gregorian year (the anonymous algorithm of 1876, as Meeus gives it).
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
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
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Timelike};
    use lotsa_core::clock::to_stockholm;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// A Stockholm wall-clock time as an instant (summer time where it applies).
    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        let naive = date(y, m, d).and_hms_opt(h, min, 0).unwrap();
        let guess = Utc.from_utc_datetime(&naive);
        let offset = stockholm_offset(guess);
        Utc.from_utc_datetime(&(naive - Duration::seconds(i64::from(offset.local_minus_utc()))))
    }

    #[test]
    fn easter_falls_where_the_almanac_says() {
        for (y, m, d) in [
            (1818, 3, 22),
            (1943, 4, 25),
            (2000, 4, 23),
            (2019, 4, 21),
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2028, 4, 16),
            (2029, 4, 1),
            (2030, 4, 21),
            (2038, 4, 25),
        ] {
            assert_eq!(easter_sunday(y), Some(date(y, m, d)), "{y}");
        }
    }

    #[test]
    fn the_swedish_holidays_of_2026_are_the_ones_the_calendar_prints() {
        let found: Vec<(NaiveDate, &str)> = date(2026, 1, 1)
            .iter_days()
            .take_while(|d| d.year() == 2026)
            .filter_map(|d| holiday(d).map(|h| (d, h)))
            .collect();
        let expected = vec![
            (date(2026, 1, 1), "nyårsdagen"),
            (date(2026, 1, 6), "trettondedag jul"),
            (date(2026, 4, 3), "långfredagen"),
            (date(2026, 4, 5), "påskdagen"),
            (date(2026, 4, 6), "annandag påsk"),
            (date(2026, 5, 1), "första maj"),
            (date(2026, 5, 14), "Kristi himmelsfärdsdag"),
            (date(2026, 5, 24), "pingstdagen"),
            (date(2026, 6, 6), "Sveriges nationaldag"),
            (date(2026, 6, 19), "midsommarafton"),
            (date(2026, 6, 20), "midsommardagen"),
            (date(2026, 10, 31), "alla helgons dag"),
            (date(2026, 12, 24), "julafton"),
            (date(2026, 12, 25), "juldagen"),
            (date(2026, 12, 26), "annandag jul"),
            (date(2026, 12, 31), "nyårsafton"),
        ];
        assert_eq!(found, expected);
        // 261 weekdays, of which ten are holidays or eves: 251 bank days.
        let bank_days = date(2026, 1, 1)
            .iter_days()
            .take_while(|d| d.year() == 2026)
            .filter(|d| is_bank_day(*d))
            .count();
        assert_eq!(bank_days, 251);
        // Midsummer moves: 2027's eve is Friday 25 June, its day Saturday 26 June.
        assert_eq!(holiday(date(2027, 6, 25)), Some("midsommarafton"));
        assert_eq!(holiday(date(2027, 6, 26)), Some("midsommardagen"));
        assert_eq!(holiday(date(2027, 6, 18)), None);
    }

    #[test]
    fn working_days_skip_weekends_easter_midsummer_christmas_and_new_year() {
        let two = CallbackWithin::WorkingDays(2);
        let one = CallbackWithin::WorkingDays(1);
        for (consent, promise, due_by_end_of) in [
            // An ordinary week: Monday → Wednesday.
            (local(2026, 3, 2, 15, 0), two, date(2026, 3, 4)),
            // Friday evening: the weekend does not count.
            (local(2026, 3, 6, 22, 30), two, date(2026, 3, 10)),
            // Saturday: Monday is the first working day.
            (local(2026, 3, 7, 11, 0), one, date(2026, 3, 9)),
            // Maundy Thursday: Good Friday, Easter and Easter Monday are off.
            (local(2026, 4, 2, 10, 0), two, date(2026, 4, 8)),
            // The day before midsommarafton.
            (local(2026, 6, 18, 16, 0), one, date(2026, 6, 22)),
            // Christmas week: julafton, juldagen and the weekend are off.
            (local(2026, 12, 23, 9, 0), two, date(2026, 12, 29)),
            // New Year: nyårsafton and nyårsdagen off, then the weekend.
            (local(2026, 12, 30, 9, 0), one, date(2027, 1, 4)),
            // Trettondedag jul, a Wednesday in 2027.
            (local(2027, 1, 5, 13, 0), one, date(2027, 1, 7)),
            // Ascension Day 2026 is Thursday 14 May.
            (local(2026, 5, 13, 8, 0), one, date(2026, 5, 15)),
            // A minute before midnight is still that day.
            (local(2026, 3, 2, 23, 59), one, date(2026, 3, 3)),
        ] {
            let due = deadline(consent, promise);
            let at = to_stockholm(due);
            assert_eq!(
                (at.date_naive(), at.hour(), at.minute()),
                (due_by_end_of + Days::new(1), 0, 0),
                "consent {consent}, {promise:?}"
            );
        }
    }

    #[test]
    fn an_hours_promise_counts_clock_hours_across_midnight_weekends_and_summer_time() {
        let day = CallbackWithin::Hours(24);
        // Spring forward (29 March 2026, 02:00 → 03:00): 24 real hours end at 13:00 summer time.
        let spring = deadline(local(2026, 3, 28, 12, 0), day);
        assert_eq!(spring - local(2026, 3, 28, 12, 0), Duration::hours(24));
        assert_eq!(to_stockholm(spring).hour(), 13);
        // Fall back (25 October 2026, 03:00 → 02:00): they end at 11:00 winter time.
        let fall = deadline(local(2026, 10, 24, 12, 0), day);
        assert_eq!(to_stockholm(fall).hour(), 11);
        // Across a weekend and midnight: Saturday 22:00 + 24 h is Sunday 22:00.
        let weekend = deadline(local(2026, 3, 7, 22, 0), day);
        assert_eq!(weekend, local(2026, 3, 8, 22, 0));
    }

    #[test]
    fn every_hour_of_a_year_gets_a_deadline_at_the_end_of_the_right_bank_day() {
        let mut consent = local(2026, 1, 1, 0, 30);
        let end = local(2027, 1, 1, 0, 0);
        while consent < end {
            for n in [1, 2, 5] {
                let due = deadline(consent, CallbackWithin::WorkingDays(n));
                let at = to_stockholm(due);
                assert_eq!(
                    (at.hour(), at.minute(), at.second()),
                    (0, 0, 0),
                    "{consent}"
                );
                let last = at.date_naive() - Days::new(1);
                assert!(is_bank_day(last), "{consent} → {last}");
                let between = stockholm_date(consent)
                    .iter_days()
                    .skip(1)
                    .take_while(|d| *d <= last)
                    .filter(|d| is_bank_day(*d))
                    .count();
                assert_eq!(between, n as usize, "{consent}");
            }
            let hours = deadline(consent, CallbackWithin::Hours(36));
            assert_eq!(hours - consent, Duration::hours(36));
            consent += Duration::hours(1);
        }
    }

    #[test]
    fn a_referral_is_due_soon_in_the_last_quarter_and_overdue_after() {
        let consent = local(2026, 3, 2, 12, 0);
        let day = CallbackWithin::Hours(24);
        assert_eq!(urgency(consent, day, consent), Urgency::InTime);
        assert_eq!(
            urgency(consent, day, consent + Duration::hours(17)),
            Urgency::InTime
        );
        assert_eq!(
            urgency(consent, day, consent + Duration::hours(18)),
            Urgency::DueSoon
        );
        assert_eq!(
            urgency(consent, day, consent + Duration::hours(24)),
            Urgency::DueSoon
        );
        assert_eq!(
            urgency(
                consent,
                day,
                consent + Duration::hours(24) + Duration::seconds(1)
            ),
            Urgency::Overdue
        );
        // A referral that reaches the clinic after its deadline is overdue on arrival.
        assert_eq!(
            urgency(consent, day, consent + Duration::hours(30)).code(),
            "overdue"
        );
    }
}
