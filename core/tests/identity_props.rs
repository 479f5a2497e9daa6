//! Property tests for `lotsa_core::identity`: generated valid numbers round-trip through every
//! written form (a space where the hyphen goes included), a misplaced or second separator is
//! always an `invalid_separator`, single-digit typos are caught, a year before 1840 is out of
//! range, an age above 110 is implausible, ages match an independent definition, and no input
//! makes the parser panic.

use chrono::{Datelike, Duration, NaiveDate};
use lotsa_core::identity::{
    age_on, parse, parse_birth_date, AgeRange, BirthDate, IdError, IdKind, FIRST_BIRTH_YEAR,
    MAX_AGE_YEARS, MAX_PLAUSIBLE_AGE,
};
use proptest::prelude::*;

fn is_leap(y: i32) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The Luhn check digit for nine digits (weights 2, 1, 2, … from the left).
fn check_digit(nine: &[u8]) -> u8 {
    let sum: u32 = nine
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let v = u32::from(d) * if i % 2 == 0 { 2 } else { 1 };
            v / 10 + v % 10
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// A generated valid number: its normalized 12 digits, what it should parse to, and the reference.
#[derive(Debug, Clone)]
struct Case {
    normalized: String,
    kind: IdKind,
    birth: BirthDate,
    reference: NaiveDate,
}

impl Case {
    fn year(&self) -> i32 {
        self.birth.year
    }
    fn ten(&self) -> &str {
        &self.normalized[2..]
    }
    /// Every form this number may be written in on the reference date.
    fn forms(&self) -> Vec<String> {
        let n = &self.normalized;
        let ten = self.ten();
        let age_years = self.reference.year() - self.year();
        let mut forms = vec![
            n.clone(),
            format!("{}-{}", &n[..8], &n[8..]),
            format!("  {n}\t"),
        ];
        if age_years < 100 {
            forms.push(format!("{}-{}", &ten[..6], &ten[6..]));
            forms.push(ten.to_owned());
        } else if age_years < 200 {
            forms.push(format!("{}+{}", &ten[..6], &ten[6..]));
        }
        forms
    }

    /// The forms with a hyphen, written with one space (or a no-break space) instead.
    fn spaced_forms(&self) -> Vec<String> {
        self.forms()
            .iter()
            .filter(|f| f.contains('-'))
            .flat_map(|f| [f.replace('-', " "), f.replace('-', "\u{a0}")])
            .collect()
    }

    /// Whether a number can name this birth year at all.
    fn in_range(&self) -> bool {
        self.year() >= FIRST_BIRTH_YEAR
    }
}

/// Valid numbers: a birth year from 1840 on (what a number can name).
fn case_strategy() -> impl Strategy<Value = Case> {
    cases(0..200).prop_filter("a year before 1840", Case::in_range)
}

/// Well-formed numbers (check digit, date) whose birth year is in 1800–1839.
fn out_of_range_strategy() -> impl Strategy<Value = Case> {
    cases(160..200).prop_filter("a year from 1840 on", |c| !c.in_range())
}

/// Well-formed numbers of people `ages` calendar years old on a reference date in 2000–2099.
fn cases(ages: std::ops::Range<i32>) -> impl Strategy<Value = Case> {
    (
        0i64..36_500, // reference: 2000-01-01 + up to ~100 years
        ages,         // age in calendar years
        1u32..=12,
        0u32..31,
        1u16..=999,
        0u8..4, // kind / samordning variant
        any::<bool>(),
    )
        .prop_filter_map(
            "birth after the reference date",
            |(ref_offset, age, month, day_seed, serial, variant, month_unknown)| {
                let reference = NaiveDate::from_ymd_opt(2000, 1, 1)? + Duration::days(ref_offset);
                let year = reference.year() - age;
                let dim = days_in_month(year, month);
                let (kind, birth, mm, dd) = match variant {
                    // Personnummer.
                    0 | 1 => {
                        let day = 1 + day_seed % dim;
                        let birth = BirthDate {
                            year,
                            month: Some(month),
                            day: Some(day),
                        };
                        (IdKind::Personnummer, birth, month, day)
                    }
                    // Samordningsnummer with a known day (month maybe unknown).
                    2 => {
                        let day = 1 + day_seed % dim;
                        let known_month = (!month_unknown).then_some(month);
                        let birth = BirthDate {
                            year,
                            month: known_month,
                            day: Some(day),
                        };
                        (
                            IdKind::Samordningsnummer,
                            birth,
                            known_month.unwrap_or(0),
                            day + 60,
                        )
                    }
                    // Samordningsnummer with the day unknown (60) or past the month's end.
                    _ => {
                        let known_month = (!month_unknown).then_some(month);
                        let past_end = 31 - dim; // how many impossible days this month has
                        let dd = if known_month.is_some() && past_end > 0 && day_seed % 2 == 0 {
                            60 + dim + 1 + day_seed % past_end
                        } else {
                            60
                        };
                        let birth = BirthDate {
                            year,
                            month: known_month,
                            day: None,
                        };
                        (
                            IdKind::Samordningsnummer,
                            birth,
                            known_month.unwrap_or(0),
                            dd,
                        )
                    }
                };
                let earliest = NaiveDate::from_ymd_opt(
                    year,
                    birth.month.unwrap_or(1),
                    birth.day.unwrap_or(1),
                )?;
                if earliest > reference {
                    return None;
                }
                let yy = year.rem_euclid(100) as u32;
                let mut nine: Vec<u8> = Vec::with_capacity(9);
                for v in [yy, mm, dd] {
                    nine.push((v / 10) as u8);
                    nine.push((v % 10) as u8);
                }
                nine.push((serial / 100) as u8);
                nine.push((serial / 10 % 10) as u8);
                nine.push((serial % 10) as u8);
                let check = check_digit(&nine);
                let mut normalized = format!("{:02}", year / 100);
                for d in nine.iter().chain(std::iter::once(&check)) {
                    normalized.push(char::from(b'0' + d));
                }
                Some(Case {
                    normalized,
                    kind,
                    birth,
                    reference,
                })
            },
        )
}

/// Completed years by counting birthdays; a 29 February birthday falls on 1 March in common years.
fn oracle_age(birth: NaiveDate, on: NaiveDate) -> u32 {
    let mut age = 0;
    loop {
        let year = birth.year() + age as i32 + 1;
        let birthday = if birth.month() == 2 && birth.day() == 29 && !is_leap(year) {
            NaiveDate::from_ymd_opt(year, 3, 1).unwrap()
        } else {
            NaiveDate::from_ymd_opt(year, birth.month(), birth.day()).unwrap()
        };
        if birthday > on {
            return age;
        }
        age += 1;
    }
}

fn any_date() -> impl Strategy<Value = NaiveDate> {
    (0i64..73_000).prop_map(|d| NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + Duration::days(d))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn valid_numbers_round_trip_through_every_form(case in case_strategy()) {
        for form in case.forms() {
            let n = parse(&form, case.reference);
            prop_assert!(n.is_ok(), "{:?} refused: {:?}", form, n);
            let n = n.unwrap();
            prop_assert_eq!(n.normalized(), case.normalized.as_str());
            prop_assert_eq!(n.kind(), case.kind);
            prop_assert_eq!(*n.birth(), case.birth);
        }
        let n = parse(&case.normalized, case.reference).unwrap();
        // The 10-digit display reads back to the same number.
        if case.reference.year() - case.year() < 200 {
            let shown = n.display_10(case.reference);
            prop_assert_eq!(shown.len(), 11);
            let back = parse(&shown, case.reference).unwrap();
            prop_assert_eq!(back.normalized(), n.normalized());
        }
        // An exact birth date gives an exact age.
        let range = n.age_on(case.reference);
        prop_assert!(range.min <= range.max);
        if let Some(date) = n.birth().exact() {
            prop_assert_eq!(range.exact(), Some(age_on(date, case.reference)));
            // Plausible exactly when the age, counted birthday by birthday, is at most 110.
            prop_assert_eq!(
                n.plausible_on(case.reference),
                oracle_age(date, case.reference) <= MAX_PLAUSIBLE_AGE
            );
        }
        // A range is implausible only when every age it allows is above 110.
        prop_assert_eq!(n.plausible_on(case.reference), range.min <= MAX_PLAUSIBLE_AGE);
    }

    #[test]
    fn a_space_instead_of_the_hyphen_is_the_same_number(case in case_strategy()) {
        for form in case.spaced_forms() {
            let n = parse(&form, case.reference);
            prop_assert!(n.is_ok(), "{:?} refused: {:?}", form, n);
            let n = n.unwrap();
            prop_assert_eq!(n.normalized(), case.normalized.as_str());
        }
    }

    #[test]
    fn a_space_in_ten_digits_reads_as_no_separator_never_as_plus(case in cases(0..200)) {
        // Whatever the number and the reference (a centenarian, a year out of range, a future
        // date), a space changes nothing: it never moves the person a century.
        let ten = case.ten();
        let spaced = format!("{} {}", &ten[..6], &ten[6..]);
        prop_assert_eq!(parse(&spaced, case.reference), parse(ten, case.reference));
    }

    #[test]
    fn a_misplaced_or_second_separator_is_invalid_separator(
        case in case_strategy(),
        at in 1usize..12,
        sep in prop::sample::select(vec![" ", "-", "\u{a0}"]),
    ) {
        let n = &case.normalized;
        // One separator anywhere but before the last four, in 12 digits.
        prop_assume!(at != 8);
        let misplaced = format!("{}{sep}{}", &n[..at], &n[at..]);
        prop_assert_eq!(parse(&misplaced, case.reference), Err(IdError::InvalidSeparator));
        // A second one anywhere inside a hyphenated number.
        let hyphenated = format!("{}-{}", &n[..8], &n[8..]);
        let pos = if at >= 8 { at + 1 } else { at };
        let doubled = format!("{}{sep}{}", &hyphenated[..pos], &hyphenated[pos..]);
        prop_assert_eq!(parse(&doubled, case.reference), Err(IdError::InvalidSeparator));
    }

    #[test]
    fn a_year_before_1840_is_out_of_range_in_every_form(case in out_of_range_strategy()) {
        for form in case.forms().into_iter().chain(case.spaced_forms()) {
            prop_assert_eq!(parse(&form, case.reference), Err(IdError::YearOutOfRange), "{:?}", form);
        }
    }

    #[test]
    fn a_century_typo_is_out_of_range_or_implausible_or_another_real_person(
        case in case_strategy(),
        other in 0usize..2,
    ) {
        // Luhn does not cover the century: the typo keeps a valid check digit, so the parser must
        // catch it by the year or flag the age.
        let centuries: Vec<i32> = (18..=20).filter(|c| *c != case.year() / 100).collect();
        let century = centuries[other];
        let typed = format!("{century}{}", case.ten());
        let year = century * 100 + case.year().rem_euclid(100);
        match parse(&typed, case.reference) {
            Ok(n) => {
                prop_assert!(year >= FIRST_BIRTH_YEAR);
                prop_assert_eq!(n.birth().year, year);
                let range = n.age_on(case.reference);
                prop_assert_eq!(n.plausible_on(case.reference), range.min <= MAX_PLAUSIBLE_AGE);
                // At least 100 years older than the real person: 111 or more whenever the real
                // person is 11 or more, so every minor of 11–17 is flagged.
                let real = parse(&case.normalized, case.reference).unwrap().age_on(case.reference);
                if year < case.year() && real.min >= 11 {
                    prop_assert!(!n.plausible_on(case.reference));
                }
            }
            // Out of range exactly when the year is; otherwise only what the other century
            // makes of the date (in the future, or 29 February in a common year).
            Err(IdError::YearOutOfRange) => prop_assert!(year < FIRST_BIRTH_YEAR),
            Err(e) => {
                prop_assert!(year >= FIRST_BIRTH_YEAR);
                prop_assert!(
                    matches!(e, IdError::FutureBirthDate | IdError::InvalidDate),
                    "{:?}",
                    e
                );
            }
        }
    }

    #[test]
    fn every_single_digit_change_is_caught(case in cases(0..200), pos in 0usize..10, delta in 1u8..10) {
        let mut bytes = case.normalized.clone().into_bytes();
        let i = 2 + pos;
        bytes[i] = b'0' + (bytes[i] - b'0' + delta) % 10;
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert_eq!(parse(&changed, case.reference).unwrap_err(), IdError::InvalidChecksum);
        prop_assert_eq!(parse(&changed[2..], case.reference).unwrap_err(), IdError::InvalidChecksum);
    }

    #[test]
    fn arbitrary_strings_never_panic(input in ".*", days in 0i64..100_000) {
        let reference = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + Duration::days(days);
        check_any(&input, reference)?;
        let _ = parse_birth_date(&input, reference);
    }

    #[test]
    fn digit_and_separator_strings_never_panic(input in "[0-9+\\- \u{2013}]{0,16}", days in 0i64..100_000) {
        let reference = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + Duration::days(days);
        check_any(&input, reference)?;
        let _ = parse_birth_date(&input, reference);
    }

    #[test]
    fn near_miss_strings_never_panic(input in "[0-9A-Za-z+\\-]{8,14}", days in 0i64..100_000) {
        let reference = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + Duration::days(days);
        check_any(&input, reference)?;
    }

    #[test]
    fn age_matches_counting_birthdays(birth in any_date(), on in any_date()) {
        let age = age_on(birth, on);
        if on < birth {
            prop_assert_eq!(age, 0);
        } else {
            prop_assert_eq!(age, oracle_age(birth, on));
        }
        // Never younger on a later date.
        prop_assert!(age_on(birth, on + Duration::days(1)) >= age);
    }

    #[test]
    fn partial_birth_date_range_is_exactly_the_ages_it_allows(
        year in 1950i32..2030,
        month in proptest::option::of(1u32..=12),
        day in proptest::option::of(1u32..=31),
        on in any_date(),
    ) {
        let birth = BirthDate { year, month, day };
        // Every real date the partial date allows, up to `on`.
        let ages: Vec<u32> = (1..=12u32)
            .filter(|m| month.is_none_or(|k| k == *m))
            .flat_map(|m| (1..=days_in_month(year, m)).map(move |d| (m, d)))
            .filter(|(_, d)| day.is_none_or(|k| k == *d))
            .filter_map(|(m, d)| NaiveDate::from_ymd_opt(year, m, d))
            .filter(|d| *d <= on)
            .map(|d| age_on(d, on))
            .collect();
        // Only combinations a parser can produce: a known day exists in its known month.
        prop_assume!(!(month.is_some() && day.is_some() && birth.exact().is_none()));
        let range = birth.age_on(on);
        match (ages.iter().min(), ages.iter().max()) {
            (Some(&min), Some(&max)) => prop_assert_eq!(range, AgeRange { min, max }),
            _ => prop_assert_eq!(range, AgeRange { min: 0, max: 0 }),
        }
    }

    #[test]
    fn typed_birth_dates_round_trip(birth in any_date(), reference in any_date()) {
        for text in [birth.format("%Y-%m-%d").to_string(), birth.format("%Y%m%d").to_string()] {
            let parsed = parse_birth_date(&text, reference);
            if birth > reference {
                prop_assert_eq!(parsed, Err(IdError::FutureBirthDate));
            } else if reference.year() - birth.year() > MAX_AGE_YEARS {
                prop_assert_eq!(parsed, Err(IdError::InvalidDate));
            } else {
                prop_assert_eq!(parsed, Ok(birth));
            }
        }
    }
}

/// Parsing anything either refuses it with a coded reason or gives a number that is consistent.
fn check_any(input: &str, reference: NaiveDate) -> Result<(), TestCaseError> {
    use lotsa_core::text::{Lang, Reasoned};
    match parse(input, reference) {
        Err(e) => {
            prop_assert!(!e.code().is_empty());
            prop_assert!(!e.message(Lang::Sv).is_empty());
        }
        Ok(n) => {
            let norm = n.normalized();
            prop_assert_eq!(norm.len(), 12);
            prop_assert!(norm.bytes().all(|b| b.is_ascii_digit()));
            let again = parse(norm, reference);
            prop_assert!(again.is_ok(), "{:?}", again);
            let again = again.unwrap();
            prop_assert_eq!(again.normalized(), norm);
            let range = n.age_on(reference);
            prop_assert!(range.min <= range.max);
            // No input names a year before any number existed.
            prop_assert!(n.birth().year >= FIRST_BIRTH_YEAR, "{}", n.birth().year);
            if n.kind() == IdKind::Personnummer {
                prop_assert!(n.birth().exact().is_some());
            }
        }
    }
    Ok(())
}
