//! Swedish identity numbers (personnummer and samordningsnummer), birth dates and age.
//!
//! On the street, whether a person may be offered a program is often decided by age, and the age
//! is read from the number the person states. So this module turns an officer's typing into a
//! checked [`IdentityNumber`] with what is known of the birth date, and answers "how old?" as an
//! [`AgeRange`] on the Stockholm calendar date. Bad input gets a typed refusal ([`IdError`], with a
//! reason code and a sentence in Swedish and English that never repeats the number), never a panic.
//!
//! # Accepted forms
//!
//! `YYMMDD-NNNC`, `YYMMDD+NNNC`, `YYMMDDNNNC`, `YYYYMMDD-NNNC` and `YYYYMMDDNNNC`, and the same
//! with **one space instead of the hyphen**: `YYMMDD NNNC`, `YYYYMMDD NNNC` (any one white-space
//! character, so a no-break space pasted from a document counts). Whitespace around the number is
//! ignored.
//!
//! A space is a separator like the hyphen, and means what the hyphen means. For 12 digits the
//! century is written out, so nothing is guessed. For 10 digits a space reads as `-`, exactly as
//! a 10-digit number written without any separator already does: only `+` makes a person a century
//! older, and nobody is read as older than they wrote. Every other place or number of separators
//! is an `invalid_separator`, whatever the separators are (`1990 04 12-1233`, `900412 -1233`,
//! `19900412  1233`, `81 12189876`), as a hyphen in the wrong place always was. A `+` in a
//! 12-digit form is an `invalid_separator`; any other odd character alone in the separator's place
//! (an en dash, a slash) too, and anywhere else it is `invalid_characters`.
//!
//! # Century of a 10-digit number
//!
//! Against a reference date (normally today): the largest year ≤ the reference year that ends in
//! those two digits; for `+`, 100 years before that (the rule in docs/DESIGN.md). If that puts the birth
//! date after the reference date (same year, a later day) the number is refused as
//! `future_birth_date`, like a 12-digit one: it is not read as a century earlier, because a person
//! born a century earlier writes `+` from the calendar year they turn 100.
//!
//! # Checks, in order
//!
//! 1. characters and shape (`empty`, `invalid_characters`, `interim_number`, `wrong_length`,
//!    `invalid_separator`);
//! 2. `reserve_number`: a 12-digit number whose century is not 18 up to the reference date's
//!    century (so today not 18, 19 or 20; e.g. Region Stockholm's reservnummer start with `99`).
//!    A 10-digit number whose inferred century falls outside that range (only possible against a
//!    reference date before 1900) is an `invalid_date`;
//! 3. `invalid_checksum`: Luhn over the ten digits `YYMMDDNNNC`, century excluded. Luhn catches
//!    every single-digit typo, and since it comes first, such a typo is always reported as one;
//! 4. `zero_serial`: the serial `NNN` is never `000`;
//! 5. `year_out_of_range`: a birth year before [`FIRST_BIRTH_YEAR`] (1840). Personnummer were
//!    issued from 1947 to everyone then folkbokförd, and a person born in 1840 was 107 that year,
//!    an age very few people anywhere have reached; so no personnummer (and no later
//!    samordningsnummer) names an earlier year. Such a number is a typo, nearly always of the
//!    century, which Luhn does not cover: `18121212-1212` for `19121212-1212`, or `+` for `-`;
//! 6. `invalid_date`, `future_birth_date`.
//!
//! # Plausible age
//!
//! A well-formed number can still give an age nobody has: `19090601-…` typed for `20090601-…`
//! has the same check digit and makes a 17-year-old 117. Such a number stays valid (it may be
//! right, and refusing it would lose the rest of what the officer typed), but an age above
//! [`MAX_PLAUSIBLE_AGE`] (110) is *implausible*: [`AgeRange::plausible`] and
//! [`IdentityNumber::plausible_on`] say so, the front ends show it, and eligibility leaves the
//! verdict undetermined (`age_implausible`) instead of calling a possible minor an adult.
//!
//! Interim numbers ("T-nummer", a letter in the last four: `19900101-T123`, `900101-TF12`) are
//! `interim_number`; letters anywhere else are `invalid_characters`.
//!
//! # Samordningsnummer
//!
//! The day is the birth day + 60 (61–91). Skatteverket also issues them with month `00` (month
//! unknown), day `60` (day unknown) and with a day past the end of the month (e.g. 30 February, day
//! `90`): all are valid, the unknown or impossible parts are kept as unknown in [`BirthDate`], and
//! the age becomes a range that may be undetermined against a threshold (never guessed). A month
//! above 12 or a day above 91 is `invalid_date`.
//!
//! # Age and 29 February
//!
//! Age is completed years on a calendar date. A person born on 29 February completes a year on
//! 29 February in leap years and on **1 March** in other years (as in Swedish law): nobody is
//! treated as 18 a day early.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::text::{Lang, Reasoned};

/// The earliest birth year an identity number can have. Personnummer were issued from 1947 to
/// everyone then folkbokförd, and someone born in 1840 was 107 that year, an age very few people
/// anywhere have reached: an earlier year is a typo (usually of the century), refused as
/// `year_out_of_range`. The bound is generous rather than tight, so that no real number is ever
/// refused by it; the ages between it and today are caught by [`MAX_PLAUSIBLE_AGE`] instead.
pub const FIRST_BIRTH_YEAR: i32 = 1840;

/// The oldest age taken at face value. Older ages are possible but so rare that, on the street,
/// one almost always comes from a mistyped century: the number stays valid, but the age is not
/// [plausible](AgeRange::plausible).
pub const MAX_PLAUSIBLE_AGE: u32 = 110;

/// Which kind of identity number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    /// Personnummer: given to people who are or have been folkbokförda in Sweden.
    Personnummer,
    /// Samordningsnummer (coordination number): for people who are not folkbokförda. It cannot
    /// prove residency.
    Samordningsnummer,
}

impl IdKind {
    /// Stable snake_case name (`personnummer`, `samordningsnummer`), as in serde.
    pub fn as_str(self) -> &'static str {
        match self {
            IdKind::Personnummer => "personnummer",
            IdKind::Samordningsnummer => "samordningsnummer",
        }
    }
}

/// What is known of a birth date. A personnummer always gives all three parts; a samordningsnummer
/// may leave the month and/or the day unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BirthDate {
    /// The year (always known).
    pub year: i32,
    /// The month 1–12, if known.
    pub month: Option<u32>,
    /// The day of the month, if known.
    pub day: Option<u32>,
}

impl BirthDate {
    /// A fully known date.
    pub fn from_date(date: NaiveDate) -> BirthDate {
        BirthDate {
            year: date.year(),
            month: Some(date.month()),
            day: Some(date.day()),
        }
    }

    /// The date, when year, month and day are all known (and form a real date).
    pub fn exact(&self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(self.year, self.month?, self.day?)
    }

    /// The age on `on`, as the youngest and oldest the person can be over all dates this partial
    /// date allows (never later than `on`). Both are 0 if every allowed date is after `on`.
    pub fn age_on(&self, on: NaiveDate) -> AgeRange {
        let today = ymd(on);
        let earliest = self.earliest();
        if earliest > today {
            return AgeRange { min: 0, max: 0 };
        }
        // Age only falls as the birth date moves later, so the extremes are the earliest allowed
        // date and the latest one that is not after `on`. Clamping to `on` itself gives the same
        // age as the latest allowed date before it (both are in `on`'s year, on or before its day).
        let latest = self.latest().min(today);
        AgeRange {
            min: completed_years(latest, today),
            max: completed_years(earliest, today),
        }
    }

    /// ISO 8601 with the known parts: `1990-04-12`, `1990-04` or `1990`.
    pub fn to_iso(&self) -> String {
        match (self.month, self.day) {
            (Some(m), Some(d)) => format!("{:04}-{:02}-{:02}", self.year, m, d),
            (Some(m), None) => format!("{:04}-{:02}", self.year, m),
            (None, _) => format!("{:04}", self.year),
        }
    }

    /// The earliest date allowed, as (year, month, day).
    fn earliest(&self) -> (i32, u32, u32) {
        (self.year, self.month.unwrap_or(1), self.day.unwrap_or(1))
    }

    /// The latest date allowed, as (year, month, day).
    fn latest(&self) -> (i32, u32, u32) {
        let month = self.month.unwrap_or(12);
        let day = self.day.unwrap_or_else(|| days_in_month(self.year, month));
        (self.year, month, day)
    }
}

/// An age in completed years, as a range when the birth date is only partly known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgeRange {
    /// The youngest the person can be.
    pub min: u32,
    /// The oldest the person can be.
    pub max: u32,
}

impl AgeRange {
    /// The age, if it is determined.
    pub fn exact(&self) -> Option<u32> {
        (self.min == self.max).then_some(self.min)
    }

    /// Whether the person is at least `years` old: `Some(true)` if certainly, `Some(false)` if
    /// certainly not, `None` if the range straddles the threshold (undetermined: ask for a
    /// document, do not guess).
    pub fn at_least(&self, years: u32) -> Option<bool> {
        if self.min >= years {
            Some(true)
        } else if self.max < years {
            Some(false)
        } else {
            None
        }
    }

    /// Whether the age can be taken at face value: false when even the youngest possible age is
    /// above [`MAX_PLAUSIBLE_AGE`], which on the street means a mistyped century or year of birth
    /// far more often than a person of 111. A range that reaches 110 is still plausible.
    pub fn plausible(&self) -> bool {
        self.min <= MAX_PLAUSIBLE_AGE
    }
}

/// A checked personnummer or samordningsnummer.
///
/// `Debug` shows only the kind: the number is personal data and must not end up in logs.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdentityNumber {
    kind: IdKind,
    /// `YYYYMMDDNNNC`; for a samordningsnummer the day stays + 60 as issued.
    normalized: String,
    birth: BirthDate,
}

impl std::fmt::Debug for IdentityNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityNumber")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl IdentityNumber {
    /// Personnummer or samordningsnummer.
    pub fn kind(&self) -> IdKind {
        self.kind
    }

    /// The 12 digits `YYYYMMDDNNNC` (a samordningsnummer keeps its day + 60).
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// What the number tells of the birth date.
    pub fn birth(&self) -> &BirthDate {
        &self.birth
    }

    /// The age on a (Stockholm calendar) date.
    pub fn age_on(&self, on: NaiveDate) -> AgeRange {
        self.birth.age_on(on)
    }

    /// Whether the age on `on` is [plausible](AgeRange::plausible) (at most
    /// [`MAX_PLAUSIBLE_AGE`]). The number is valid either way; an implausible one most likely has
    /// the wrong century (Luhn does not cover it), so the officer should check it.
    pub fn plausible_on(&self, on: NaiveDate) -> bool {
        self.age_on(on).plausible()
    }

    /// The 10-digit form as written on `on`: `YYMMDD-NNNC`, or `YYMMDD+NNNC` from the calendar
    /// year the person turns 100.
    pub fn display_10(&self, on: NaiveDate) -> String {
        let separator = if on.year() - self.birth.year >= 100 {
            '+'
        } else {
            '-'
        };
        // `normalized` is always 12 ASCII digits, so byte slicing is safe.
        let mut out = String::with_capacity(11);
        out.push_str(&self.normalized[2..8]);
        out.push(separator);
        out.push_str(&self.normalized[8..]);
        out
    }
}

/// Why an identity number or birth date was refused. Never carries the input itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum IdError {
    /// Nothing was entered.
    #[error("{}", self.message(Lang::En))]
    Empty,
    /// Characters other than digits and one separator (letters outside the last four, unicode…).
    #[error("{}", self.message(Lang::En))]
    InvalidCharacters,
    /// Not 10 or 12 digits.
    #[error("{}", self.message(Lang::En))]
    WrongLength {
        /// How many digits were entered.
        digits: usize,
    },
    /// A separator other than `-`, `+` or one space, in the wrong place, more than one, or `+`
    /// with 12 digits.
    #[error("{}", self.message(Lang::En))]
    InvalidSeparator,
    /// The Luhn check digit does not match.
    #[error("{}", self.message(Lang::En))]
    InvalidChecksum,
    /// The serial number is `000`, which is never issued.
    #[error("{}", self.message(Lang::En))]
    ZeroSerial,
    /// The date part is not a date (a personnummer's date must exist).
    #[error("{}", self.message(Lang::En))]
    InvalidDate,
    /// The birth year is before [`FIRST_BIRTH_YEAR`]: no identity number can name it (most often
    /// a mistyped century, or `+` for `-`).
    #[error("{}", self.message(Lang::En))]
    YearOutOfRange,
    /// The birth date is after the reference date.
    #[error("{}", self.message(Lang::En))]
    FutureBirthDate,
    /// An interim number (T-number) with a letter in the last four: not a national identity number.
    #[error("{}", self.message(Lang::En))]
    InterimNumber,
    /// A healthcare reserve number (12 digits with a century that no personnummer has).
    #[error("{}", self.message(Lang::En))]
    ReserveNumber,
    /// A birth date not written `YYYY-MM-DD` or `YYYYMMDD`.
    #[error("{}", self.message(Lang::En))]
    InvalidBirthDateFormat,
}

impl Reasoned for IdError {
    fn code(&self) -> &'static str {
        match self {
            IdError::Empty => "empty",
            IdError::InvalidCharacters => "invalid_characters",
            IdError::WrongLength { .. } => "wrong_length",
            IdError::InvalidSeparator => "invalid_separator",
            IdError::InvalidChecksum => "invalid_checksum",
            IdError::ZeroSerial => "zero_serial",
            IdError::InvalidDate => "invalid_date",
            IdError::YearOutOfRange => "year_out_of_range",
            IdError::FutureBirthDate => "future_birth_date",
            IdError::InterimNumber => "interim_number",
            IdError::ReserveNumber => "reserve_number",
            IdError::InvalidBirthDateFormat => "invalid_birth_date_format",
        }
    }

    fn message(&self, lang: Lang) -> String {
        let (sv, en) = match self {
            IdError::Empty => (
                "Inget har skrivits in – skriv in personnumret, samordningsnumret eller födelsedatumet.",
                "Nothing was entered – enter the personal identity number, coordination number or birth date.",
            ),
            IdError::InvalidCharacters => (
                "Numret innehåller otillåtna tecken – använd bara siffror, med ett bindestreck, mellanslag eller plustecken före de fyra sista.",
                "The number contains characters that are not allowed – use only digits, with a hyphen, space or plus sign before the last four.",
            ),
            IdError::WrongLength { digits } => {
                let (sv_n, en_n) = if *digits == 1 {
                    ("1 siffra".to_string(), "1 digit".to_string())
                } else {
                    (format!("{digits} siffror"), format!("{digits} digits"))
                };
                return match lang {
                    Lang::Sv => format!(
                        "Numret har {sv_n} men ska ha 10 (ÅÅMMDD-NNNN) eller 12 (ÅÅÅÅMMDD-NNNN) – kontrollera att ingen siffra saknas eller skrivits två gånger."
                    ),
                    Lang::En => format!(
                        "The number has {en_n} but must have 10 (YYMMDD-NNNN) or 12 (YYYYMMDD-NNNN) – check that no digit is missing or typed twice."
                    ),
                };
            }
            IdError::InvalidSeparator => (
                "Skiljetecknet är fel – skriv ett bindestreck (-) eller mellanslag före de fyra sista siffrorna och inget mellan de andra, eller plustecken (+) om personen fyller 100 i år eller är äldre; 12-siffriga nummer har aldrig plustecken.",
                "The separator is wrong – write one hyphen (-) or space before the last four digits and none between the others, or a plus sign (+) if the person turns 100 this year or is older; 12-digit numbers never have a plus sign.",
            ),
            IdError::InvalidChecksum => (
                "Kontrollsiffran stämmer inte – kontrollera att numret är rätt inskrivet.",
                "The check digit does not match – check that the number was entered correctly.",
            ),
            IdError::ZeroSerial => (
                "Födelsenumret 000 delas aldrig ut – kontrollera de fyra sista siffrorna.",
                "The serial number 000 is never issued – check the last four digits.",
            ),
            IdError::InvalidDate => (
                "Datumdelen är inte ett giltigt datum – kontrollera år, månad och dag.",
                "The date part is not a valid date – check the year, month and day.",
            ),
            IdError::YearOutOfRange => {
                return lang.pick(
                    format!("Födelseåret ligger före {FIRST_BIRTH_YEAR} och kan inte stå i ett personnummer eller samordningsnummer – kontrollera århundradet (de två första av tolv siffror) och att det står bindestreck, inte plustecken."),
                    format!("The birth year is before {FIRST_BIRTH_YEAR} and cannot be in a personal identity number or coordination number – check the century (the first two of twelve digits) and that the separator is a hyphen, not a plus sign."),
                )
            }
            IdError::FutureBirthDate => (
                "Födelsedatumet ligger i framtiden – kontrollera årtalet och numret.",
                "The birth date is in the future – check the year and the number.",
            ),
            IdError::InterimNumber => (
                "Detta är ett interimistiskt nummer (med bokstav), inte ett personnummer eller samordningsnummer – fråga efter personens personnummer eller samordningsnummer.",
                "This is an interim number (with a letter), not a personal identity number or coordination number – ask for the person's personal identity number or coordination number.",
            ),
            IdError::ReserveNumber => (
                "Detta är ett reservnummer från vården, inte ett personnummer eller samordningsnummer – fråga efter personens personnummer eller samordningsnummer.",
                "This is a healthcare reserve number, not a personal identity number or coordination number – ask for the person's personal identity number or coordination number.",
            ),
            IdError::InvalidBirthDateFormat => (
                "Födelsedatumet ska skrivas ÅÅÅÅ-MM-DD eller ÅÅÅÅMMDD – kontrollera det inskrivna datumet.",
                "Write the birth date as YYYY-MM-DD or YYYYMMDD – check the date that was entered.",
            ),
        };
        match lang {
            Lang::Sv => sv.to_owned(),
            Lang::En => en.to_owned(),
        }
    }
}

/// Parses a personnummer or samordningsnummer, inferring the century of a 10-digit number against
/// `reference` (normally today's Stockholm date). See the module documentation for the rules.
pub fn parse(input: &str, reference: NaiveDate) -> Result<IdentityNumber, IdError> {
    let shape = scan(input)?;
    let d = &shape.digits;
    let pair = |i: usize| u32::from(d[i]) * 10 + u32::from(d[i + 1]);

    // Centuries a personnummer can have: 18 up to the reference date's (at least 20).
    let centuries = 18..=reference.year().div_euclid(100).clamp(20, 99);
    if shape.twelve {
        let century = i32::from(d[0]) * 10 + i32::from(d[1]);
        if !centuries.contains(&century) {
            return Err(IdError::ReserveNumber);
        }
    }
    if !luhn_ok(&d[2..]) {
        return Err(IdError::InvalidChecksum);
    }
    if d[8] == 0 && d[9] == 0 && d[10] == 0 {
        return Err(IdError::ZeroSerial);
    }

    let yy = pair(2) as i32;
    let mm = pair(4);
    let dd = pair(6);

    let year = if shape.twelve {
        i32::from(d[0]) * 1000 + i32::from(d[1]) * 100 + yy
    } else {
        let ref_year = reference.year();
        let mut year = ref_year - ref_year.rem_euclid(100) + yy;
        if year > ref_year {
            year -= 100;
        }
        if shape.plus {
            year -= 100;
        }
        year
    };
    if !centuries.contains(&year.div_euclid(100)) {
        // A 10-digit number read against a reference date before 1900 (or after 9999): its
        // 12-digit form would be a reserve number, so it names no real birth date.
        return Err(IdError::InvalidDate);
    }
    // Luhn does not cover the century: a year no number can name is a typo, not an age.
    if year < FIRST_BIRTH_YEAR {
        return Err(IdError::YearOutOfRange);
    }

    let kind = if dd >= 60 {
        IdKind::Samordningsnummer
    } else {
        IdKind::Personnummer
    };
    let day_raw = match kind {
        IdKind::Personnummer if (1..=12).contains(&mm) && (1..=31).contains(&dd) => dd,
        IdKind::Samordningsnummer if mm <= 12 && dd <= 91 => dd - 60,
        _ => return Err(IdError::InvalidDate),
    };
    let birth = match kind {
        IdKind::Personnummer => {
            if day_raw > days_in_month(year, mm) {
                return Err(IdError::InvalidDate);
            }
            BirthDate {
                year,
                month: Some(mm),
                day: Some(day_raw),
            }
        }
        IdKind::Samordningsnummer => samordning_birth(year, mm, day_raw),
    };
    if birth.earliest() > ymd(reference) {
        return Err(IdError::FutureBirthDate);
    }

    let mut normalized = String::with_capacity(12);
    let century = year / 100;
    normalized.push(digit_char(century / 10));
    normalized.push(digit_char(century % 10));
    for &x in &d[2..] {
        normalized.push(digit_char(i32::from(x)));
    }
    Ok(IdentityNumber {
        kind,
        normalized,
        birth,
    })
}

/// The oldest age a typed date of birth may give.
pub const MAX_AGE_YEARS: i32 = 130;

/// Parses a birth date written `YYYY-MM-DD` or `YYYYMMDD` (surrounding whitespace ignored).
/// Refuses dates that do not exist or lie more than [`MAX_AGE_YEARS`] back (`invalid_date`) and
/// dates after `reference` (`future_birth_date`).
pub fn parse_birth_date(input: &str, reference: NaiveDate) -> Result<NaiveDate, IdError> {
    let s = input.trim().as_bytes();
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    // Byte checks are safe on any UTF-8: bytes of multi-byte characters are never ASCII.
    let mut digits = [0u8; 8];
    let ok = match s.len() {
        8 => copy_digits(s, &mut digits),
        10 if s[4] == b'-' && s[7] == b'-' => {
            let mut joined = [0u8; 8];
            joined[..4].copy_from_slice(&s[..4]);
            joined[4..6].copy_from_slice(&s[5..7]);
            joined[6..].copy_from_slice(&s[8..]);
            copy_digits(&joined, &mut digits)
        }
        _ => false,
    };
    if !ok {
        return Err(IdError::InvalidBirthDateFormat);
    }
    let num = |r: std::ops::Range<usize>| {
        digits[r]
            .iter()
            .fold(0u32, |acc, &x| acc * 10 + u32::from(x))
    };
    let year = num(0..4) as i32;
    let date = NaiveDate::from_ymd_opt(year, num(4..6), num(6..8)).ok_or(IdError::InvalidDate)?;
    if date > reference {
        return Err(IdError::FutureBirthDate);
    }
    // Nobody alive was born more than 130 years ago: "0990-…" is a typo, not an age.
    if reference.year() - year > MAX_AGE_YEARS {
        return Err(IdError::InvalidDate);
    }
    Ok(date)
}

/// Completed years between `birth` and `on` (a Stockholm calendar date); 0 if `on` is before the
/// birth. Born 29 February: the year completes on 1 March in years without 29 February.
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> u32 {
    completed_years(ymd(birth), ymd(on))
}

// ---------------------------------------------------------------------------------------------
// Internals

/// The shape of an accepted input: its digits (right-aligned: a 10-digit number fills 2..12).
struct Shape {
    digits: [u8; 12],
    twelve: bool,
    plus: bool,
}

/// Longest accepted input, in characters: `YYYYMMDD-NNNC`.
const MAX_CHARS: usize = 13;

/// Checks characters, length and separator without allocating, and collects the digits.
fn scan(input: &str) -> Result<Shape, IdError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    // The first MAX_CHARS characters as ASCII bytes: any white space as b' ', anything else that
    // is not ASCII as NUL (an "other" character).
    let mut buf = [0u8; MAX_CHARS];
    let (mut len, mut digits, mut letters, mut seps, mut others) = (0usize, 0usize, 0, 0, 0);
    for c in s.chars() {
        let space = c.is_whitespace();
        if len < MAX_CHARS {
            buf[len] = match c {
                _ if space => b' ',
                c if c.is_ascii() => c as u8,
                _ => 0,
            };
        }
        len += 1;
        match c {
            '0'..='9' => digits += 1,
            // A space is a separator like `-`: allowed once, before the last four.
            '-' | '+' => seps += 1,
            _ if space => seps += 1,
            c if c.is_ascii_alphabetic() => letters += 1,
            _ => others += 1,
        }
    }

    if others > 0 {
        // One odd character where the separator belongs (an en dash, a slash): the separator is
        // wrong, the rest is fine.
        let odd_separator = others == 1
            && (len == 11 || len == 13)
            && digits == len - 1
            && !buf[len - 5].is_ascii_digit();
        return Err(if odd_separator {
            IdError::InvalidSeparator
        } else {
            IdError::InvalidCharacters
        });
    }
    if letters > 0 {
        return Err(if looks_interim(&buf, len) {
            IdError::InterimNumber
        } else {
            IdError::InvalidCharacters
        });
    }
    if digits != 10 && digits != 12 {
        return Err(IdError::WrongLength { digits });
    }
    if seps > 1 {
        return Err(IdError::InvalidSeparator);
    }
    // Now len ≤ 13, so `buf` holds the whole input.
    let mut plus = false;
    if seps == 1 {
        match buf[len - 5] {
            b'+' if digits == 12 => return Err(IdError::InvalidSeparator),
            b'+' => plus = true,
            // A space means what a hyphen means (and what no separator means for 10 digits).
            b'-' | b' ' => {}
            _ => return Err(IdError::InvalidSeparator),
        }
    }
    let mut out = [0u8; 12];
    let mut i = 12 - digits;
    for &b in &buf[..len] {
        if b.is_ascii_digit() {
            out[i] = b - b'0';
            i += 1;
        }
    }
    Ok(Shape {
        digits: out,
        twelve: digits == 12,
        plus,
    })
}

/// A date part of 6 or 8 digits, an optional separator, and four digits or letters with at least
/// one letter: `19900101-T123`, `900101-TF12`.
fn looks_interim(buf: &[u8; MAX_CHARS], len: usize) -> bool {
    if !(10..=MAX_CHARS).contains(&len) {
        return false;
    }
    let (head, serial) = buf[..len].split_at(len - 4);
    let head = match head.split_last() {
        Some((b'-' | b'+' | b' ', rest)) => rest,
        _ => head,
    };
    (head.len() == 6 || head.len() == 8)
        && head.iter().all(u8::is_ascii_digit)
        && serial.iter().all(u8::is_ascii_alphanumeric)
        && serial.iter().any(u8::is_ascii_alphabetic)
}

/// Composes a valid 12-digit number (`YYYYMMDDNNNC`) for a birth date and a serial (1–999): the
/// check digit is computed. For a samordningsnummer the day gets + 60. Meant for demos, tests and
/// tools that need a well-formed number for a known date; it says nothing about whether the
/// number was ever issued.
pub fn compose(birth: NaiveDate, serial: u16, samordningsnummer: bool) -> String {
    let day = birth.day() + if samordningsnummer { 60 } else { 0 };
    let nine = format!(
        "{:02}{:02}{:02}{:03}",
        birth.year().rem_euclid(100),
        birth.month(),
        day,
        serial % 1000
    );
    let mut digits: Vec<u8> = nine.bytes().map(|b| b - b'0').collect();
    digits.push(0);
    let check = (0..10u8)
        .find(|c| {
            digits[9] = *c;
            luhn_ok(&digits)
        })
        .expect("one check digit always fits");
    format!("{:02}{nine}{check}", birth.year().div_euclid(100))
}

/// Luhn over digit values (0–9), weights 2, 1, 2, 1, … from the left (ten digits).
fn luhn_ok(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let v = u32::from(x) * if i % 2 == 0 { 2 } else { 1 };
            v / 10 + v % 10
        })
        .sum();
    sum.is_multiple_of(10)
}

/// What a samordningsnummer's month (0 = unknown) and day (0 = unknown) tell in a given year. A
/// day past the end of a known month is kept as unknown.
fn samordning_birth(year: i32, month: u32, day: u32) -> BirthDate {
    let month = (month != 0).then_some(month);
    let day = match month {
        _ if day == 0 => None,
        Some(m) if day > days_in_month(year, m) => None,
        _ => Some(day),
    };
    BirthDate { year, month, day }
}

fn ymd(date: NaiveDate) -> (i32, u32, u32) {
    (date.year(), date.month(), date.day())
}

/// Completed years; comparing (month, day) makes 29 February complete on 1 March in common years.
fn completed_years(birth: (i32, u32, u32), on: (i32, u32, u32)) -> u32 {
    let mut years = i64::from(on.0) - i64::from(birth.0);
    if (birth.1, birth.2) > (on.1, on.2) {
        years -= 1;
    }
    u32::try_from(years.max(0)).unwrap_or(u32::MAX)
}

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in a month; 0 for a month that does not exist.
fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

fn digit_char(v: i32) -> char {
    char::from_digit(v.unsigned_abs() % 10, 10).unwrap_or('0')
}

fn copy_digits(src: &[u8], dst: &mut [u8; 8]) -> bool {
    if src.len() != 8 || !src.iter().all(u8::is_ascii_digit) {
        return false;
    }
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s - b'0';
    }
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn compose_makes_numbers_that_parse_back() {
        let on = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let born = NaiveDate::from_ymd_opt(1990, 4, 12).unwrap();
        let n = compose(born, 123, false);
        assert_eq!(n, "199004121233");
        let p = parse(&n, on).unwrap();
        assert_eq!(
            (p.kind(), p.birth().exact()),
            (IdKind::Personnummer, Some(born))
        );
        let s = parse(&compose(born, 228, true), on).unwrap();
        assert_eq!(
            (s.kind(), s.birth().exact()),
            (IdKind::Samordningsnummer, Some(born))
        );
        assert_eq!(&compose(born, 228, true)[6..8], "72");
    }

    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// The reference date most tests use.
    fn today() -> NaiveDate {
        date(2026, 3, 15)
    }

    /// `prefix9` (YYMMDDNNN) plus its Luhn check digit.
    fn with_check(prefix9: &str) -> String {
        let digits: Vec<u8> = prefix9.bytes().map(|b| b - b'0').collect();
        assert_eq!(digits.len(), 9);
        for c in 0..10u8 {
            let mut all = digits.clone();
            all.push(c);
            if luhn_ok(&all) {
                return format!("{prefix9}{c}");
            }
        }
        unreachable!("some check digit always fits")
    }

    /// `prefix9` with a check digit that is wrong.
    fn with_wrong_check(prefix9: &str) -> String {
        let good = with_check(prefix9);
        let last = good.as_bytes()[9] - b'0';
        format!("{prefix9}{}", (last + 1) % 10)
    }

    fn dash(ten: &str) -> String {
        format!("{}-{}", &ten[..6], &ten[6..])
    }

    fn code(input: &str) -> &'static str {
        parse(input, today()).unwrap_err().code()
    }

    #[test]
    fn known_example_numbers_are_valid() {
        let n = parse("811218-9876", today()).unwrap();
        assert_eq!(n.kind(), IdKind::Personnummer);
        assert_eq!(n.normalized(), "198112189876");
        assert_eq!(n.birth().exact(), Some(date(1981, 12, 18)));
        assert_eq!(n.age_on(today()).exact(), Some(44));

        let tolvan = parse("19121212-1212", today()).unwrap();
        assert_eq!(tolvan.normalized(), "191212121212");
        assert_eq!(tolvan.birth().to_iso(), "1912-12-12");

        let s = parse("701063-2391", today()).unwrap();
        assert_eq!(s.kind(), IdKind::Samordningsnummer);
        assert_eq!(s.normalized(), "197010632391");
        assert_eq!(s.birth().exact(), Some(date(1970, 10, 3)));
    }

    #[test]
    fn every_accepted_form_gives_the_same_number() {
        for input in [
            "811218-9876",
            "8112189876",
            "19811218-9876",
            "198112189876",
            "  811218-9876\t",
            "\u{a0}198112189876\n",
        ] {
            let n = parse(input, today()).unwrap();
            assert_eq!(n.normalized(), "198112189876", "input {input:?}");
        }
        let old = parse("121212+1212", today()).unwrap();
        assert_eq!(old.normalized(), "191212121212");
        assert_eq!(old.display_10(today()), "121212+1212");
    }

    #[test]
    fn empty_input_is_refused() {
        assert_eq!(parse("", today()), Err(IdError::Empty));
        assert_eq!(parse("   \t\n", today()), Err(IdError::Empty));
        assert_eq!(code(""), "empty");
    }

    #[test]
    fn letters_and_unicode_are_invalid_characters() {
        assert_eq!(code("abc"), "invalid_characters");
        assert_eq!(code("81121A-9876"), "invalid_characters");
        assert_eq!(code("A11218-9876"), "invalid_characters");
        assert_eq!(code("811218T9876"), "invalid_characters");
        assert_eq!(code("８１１２１８-９８７６"), "invalid_characters");
        assert_eq!(code("811218-98é6"), "invalid_characters");
        assert_eq!(code("81_1218-9876"), "invalid_characters");
        assert_eq!(code("😀😀😀😀😀😀😀😀😀😀😀😀😀😀"), "invalid_characters");
    }

    #[test]
    fn an_odd_dash_or_slash_in_the_separator_place_is_invalid_separator() {
        assert_eq!(code("811218–9876"), "invalid_separator"); // en dash
        assert_eq!(code("811218/9876"), "invalid_separator");
        assert_eq!(code("19811218—9876"), "invalid_separator"); // em dash
    }

    #[test]
    fn one_space_may_stand_where_the_hyphen_does() {
        for input in [
            "19811218 9876",
            "811218 9876",
            "19811218\u{a0}9876", // a no-break space pasted from a document
            "811218\t9876",
            " 19811218 9876 ",
        ] {
            let n = parse(input, today()).unwrap();
            assert_eq!(n.normalized(), "198112189876", "input {input:?}");
        }
        // For 10 digits a space means what a hyphen (or no separator) means: never `+`.
        let t = with_check("270101123");
        let spaced = parse(&format!("{} {}", &t[..6], &t[6..]), today()).unwrap();
        assert_eq!(spaced.birth().year, 1927);
        assert_eq!(spaced, parse(&t, today()).unwrap());
        assert_eq!(spaced, parse(&dash(&t), today()).unwrap());
        // The other refusals keep their reasons when a space is the separator.
        let t = with_check("261231123");
        assert_eq!(
            code(&format!("{} {}", &t[..6], &t[6..])),
            "future_birth_date"
        );
        assert_eq!(code("811218 9875"), "invalid_checksum");
        assert_eq!(code("19900101 T123"), "interim_number");
        assert_eq!(code("811218 987"), "wrong_length");
        assert_eq!(code("181212 12-1212"), "invalid_separator");
    }

    #[test]
    fn a_space_anywhere_else_or_with_another_separator_is_invalid_separator() {
        for input in [
            "81 1218-9876",    // a space in the date and a hyphen
            "1981 12 18-9876", // the date in groups
            "1981 12 18 9876", // groups and a space before the serial
            "19811218  9876",  // two spaces
            "811218 -9876",    // a space and a hyphen
            "811218- 9876",    // a hyphen and a space
            "811218 +9876",    // a space and a plus
            "81121 89876",     // one space, in the wrong place
            "198112 189876",   // the same in 12 digits
            "811218987 6",     // the space before the last digit
        ] {
            assert_eq!(code(input), "invalid_separator", "input {input:?}");
        }
    }

    #[test]
    fn wrong_number_of_digits() {
        assert_eq!(
            parse("81121898761", today()),
            Err(IdError::WrongLength { digits: 11 })
        );
        assert_eq!(code("811218-987"), "wrong_length");
        assert_eq!(code("1981121898765"), "wrong_length");
        assert_eq!(code("12345678901234567890"), "wrong_length");
        assert_eq!(code("-"), "wrong_length");
    }

    #[test]
    fn separators_in_wrong_places_or_plus_with_twelve_digits() {
        assert_eq!(code("19811218+9876"), "invalid_separator");
        assert_eq!(code("81121-89876"), "invalid_separator");
        assert_eq!(code("1981-12-18-9876"), "invalid_separator");
        assert_eq!(code("811218--9876"), "invalid_separator");
        assert_eq!(code("8112189876-"), "invalid_separator");
    }

    #[test]
    fn wrong_check_digit() {
        assert_eq!(code("811218-9875"), "invalid_checksum");
        assert_eq!(code("198112189877"), "invalid_checksum");
        assert_eq!(
            code(&dash(&with_wrong_check("900101123"))),
            "invalid_checksum"
        );
    }

    #[test]
    fn serial_000_is_refused() {
        let n = with_check("900101000");
        assert_eq!(code(&n), "zero_serial");
        assert_eq!(code(&format!("19{n}")), "zero_serial");
    }

    #[test]
    fn personnummer_date_must_exist() {
        assert_eq!(code(&with_check("900230123")), "invalid_date"); // 30 February
        assert_eq!(code(&with_check("900229123")), "invalid_date"); // 1990 is no leap year
        assert_eq!(code(&with_check("901301123")), "invalid_date");
        assert_eq!(code(&with_check("900001123")), "invalid_date");
        assert_eq!(code(&with_check("900100123")), "invalid_date");
        assert_eq!(code(&with_check("900132123")), "invalid_date");
        assert_eq!(code(&with_check("900431123")), "invalid_date");
        // 2000 is a leap year, 1900 is not.
        assert!(parse(&format!("20{}", with_check("000229123")), today()).is_ok());
        assert_eq!(
            code(&format!("19{}", with_check("000229123"))),
            "invalid_date"
        );
    }

    #[test]
    fn future_birth_date_in_twelve_digits() {
        assert_eq!(
            code(&format!("20{}", with_check("260316123"))),
            "future_birth_date"
        );
        assert_eq!(
            code(&format!("20{}", with_check("300101123"))),
            "future_birth_date"
        );
        // Born today is fine: age 0.
        let n = parse(&format!("20{}", with_check("260315123")), today()).unwrap();
        assert_eq!(n.age_on(today()).exact(), Some(0));
    }

    #[test]
    fn interim_numbers_are_recognised() {
        assert_eq!(code("19900101-T123"), "interim_number");
        assert_eq!(code("900101-TF12"), "interim_number");
        assert_eq!(code("19900101T123"), "interim_number");
        assert_eq!(code("900101t123"), "interim_number");
        assert_eq!(code("900101+123X"), "interim_number");
        // A letter outside the serial is not an interim number.
        assert_eq!(code("9001T1-1234"), "invalid_characters");
        assert_eq!(code("900101-T12"), "invalid_characters");
    }

    #[test]
    fn reserve_numbers_are_recognised() {
        assert_eq!(code("991234567890"), "reserve_number");
        assert_eq!(code("99123456-7890"), "reserve_number");
        assert_eq!(
            code(&format!("17{}", with_check("900101123"))),
            "reserve_number"
        );
        assert_eq!(
            code(&format!("21{}", with_check("900101123"))),
            "reserve_number"
        );
        // 18 is a real (historical) century.
        assert!(parse(&format!("18{}", with_check("900101123")), today()).is_ok());
        // In the 22nd century, 21 becomes a real century.
        let n = parse(&format!("21{}", with_check("000101123")), date(2101, 1, 1)).unwrap();
        assert_eq!(n.birth().year, 2100);
    }

    #[test]
    fn a_typed_birth_date_more_than_130_years_back_is_a_typo() {
        assert_eq!(
            parse_birth_date("0990-04-12", today()),
            Err(IdError::InvalidDate)
        );
        assert_eq!(
            parse_birth_date("1895-03-15", today()),
            Err(IdError::InvalidDate)
        );
        assert!(parse_birth_date("1896-03-15", today()).is_ok());
    }

    #[test]
    fn century_of_ten_digits_against_the_reference_date() {
        // Largest year ≤ 2026 ending in 26 is 2026; 27 → 1927.
        let n = parse(&with_check("260101123"), today()).unwrap();
        assert_eq!(n.birth().year, 2026);
        let n = parse(&with_check("270101123"), today()).unwrap();
        assert_eq!(n.birth().year, 1927);
        // Same year but later than the reference day: a future birth date, not a century
        // earlier (that person would write `+` this year).
        assert_eq!(
            parse(&with_check("261231123"), today()),
            Err(IdError::FutureBirthDate)
        );
        assert_eq!(
            parse(&dash(&with_check("261231123")), today()),
            Err(IdError::FutureBirthDate)
        );
        let t = with_check("261231123");
        let n = parse(&format!("{}+{}", &t[..6], &t[6..]), today()).unwrap();
        assert_eq!(n.birth().year, 1926);
        // `+`: a hundred years before that.
        let t = with_check("260101123");
        let n = parse(&format!("{}+{}", &t[..6], &t[6..]), today()).unwrap();
        assert_eq!(n.birth().year, 1926);
        assert_eq!(n.age_on(today()).exact(), Some(100));
        let t = with_check("500101123");
        let n = parse(&format!("{}+{}", &t[..6], &t[6..]), today()).unwrap();
        assert_eq!(n.birth().year, 1850);
        // Before 1840 no number exists: `+` for `-` here is a typo, not an age of 199.
        let t = with_check("270101123");
        assert_eq!(
            parse(&format!("{}+{}", &t[..6], &t[6..]), today()),
            Err(IdError::YearOutOfRange)
        );
    }

    #[test]
    fn a_year_before_1840_is_out_of_range() {
        // Tolvan's number with the century typed 18: the check digit still fits.
        assert!(parse("19121212-1212", today()).is_ok());
        assert_eq!(
            parse("18121212-1212", today()),
            Err(IdError::YearOutOfRange)
        );
        assert_eq!(code("181212121212"), "year_out_of_range");
        assert_eq!(code("18121212 1212"), "year_out_of_range");
        // The bound itself: 31 December 1839 is out, 1 January 1840 is in.
        assert_eq!(
            code(&format!("18{}", with_check("391231123"))),
            "year_out_of_range"
        );
        let n = parse(&format!("18{}", with_check("400101123")), today()).unwrap();
        assert_eq!(n.birth().year, FIRST_BIRTH_YEAR);
        assert!(!n.plausible_on(today()));
        // Samordningsnummer too.
        assert_eq!(
            code(&format!("18{}", with_check("120172123"))),
            "year_out_of_range"
        );
        // Typos Luhn catches are still reported as typos first.
        assert_eq!(code("18121212-1213"), "invalid_checksum");
        assert_eq!(
            code(&format!("18{}", with_check("121212000"))),
            "zero_serial"
        );
        // A 10-digit number read against an old reference date falls before 1840 too.
        let t = with_check("350101123");
        assert_eq!(
            parse(&format!("{}+{}", &t[..6], &t[6..]), date(1940, 6, 1)),
            Err(IdError::YearOutOfRange)
        );
        assert_eq!(parse(&t, date(1940, 6, 1)).unwrap().birth().year, 1935);
    }

    #[test]
    fn a_century_typo_makes_the_age_implausible_not_the_number_invalid() {
        let on = date(2026, 11, 23);
        // Born 1 June 2009: 17. The same digits with 19: 117, and the same check digit.
        let minor = parse(&format!("20{}", with_check("090601123")), on).unwrap();
        let typo = parse(&format!("19{}", with_check("090601123")), on).unwrap();
        assert_eq!(minor.age_on(on).exact(), Some(17));
        assert_eq!(typo.age_on(on).exact(), Some(117));
        assert!(minor.plausible_on(on));
        assert!(!typo.plausible_on(on));
        // 110 is plausible, 111 is not; the day of the birthday decides.
        let n = parse(&format!("19{}", with_check("151124123")), on).unwrap();
        assert_eq!(n.age_on(on).exact(), Some(110));
        assert!(n.plausible_on(on));
        assert!(!n.plausible_on(date(2026, 11, 24)));
        // Tolvan (born 1912) is 113: valid, implausible; with `+` in 10 digits too.
        let tolvan = parse("121212+1212", on).unwrap();
        assert_eq!(tolvan.normalized(), "191212121212");
        assert!(!tolvan.plausible_on(on));
        // A range is implausible only when even its youngest age is above 110.
        let month_unknown = parse(&format!("19{}", with_check("150060123")), on).unwrap();
        assert_eq!(month_unknown.age_on(on), AgeRange { min: 110, max: 111 });
        assert!(month_unknown.plausible_on(on));
        assert!(!AgeRange { min: 111, max: 112 }.plausible());
        assert!(AgeRange { min: 0, max: 0 }.plausible());
        assert!(AgeRange {
            min: MAX_PLAUSIBLE_AGE,
            max: MAX_PLAUSIBLE_AGE
        }
        .plausible());
    }

    #[test]
    fn hundred_year_old_gets_a_plus() {
        let n = parse(&format!("19{}", with_check("260101123")), today()).unwrap();
        assert_eq!(n.age_on(today()).exact(), Some(100));
        assert!(n.display_10(today()).contains('+'));
        // From the calendar year they turn 100, even before the birthday.
        let n = parse(&format!("19{}", with_check("261231123")), today()).unwrap();
        assert_eq!(n.age_on(today()).exact(), Some(99));
        let shown = n.display_10(today());
        assert_eq!(&shown[6..7], "+");
        assert_eq!(parse(&shown, today()).unwrap().normalized(), n.normalized());
        // The year before, still a hyphen.
        assert_eq!(&n.display_10(date(2025, 12, 31))[6..7], "-");
    }

    #[test]
    fn samordningsnummer_normal() {
        let n = parse(&dash(&with_check("900172123")), today()).unwrap();
        assert_eq!(n.kind(), IdKind::Samordningsnummer);
        assert_eq!(n.birth().exact(), Some(date(1990, 1, 12)));
        assert!(n.normalized().starts_with("19900172"));
        assert_eq!(n.age_on(today()).exact(), Some(36));
        assert_eq!(n.display_10(today())[..6], *"900172");
    }

    #[test]
    fn samordningsnummer_month_unknown() {
        let n = parse(&with_check("080075123"), today()).unwrap();
        assert_eq!(n.kind(), IdKind::Samordningsnummer);
        assert_eq!(
            *n.birth(),
            BirthDate {
                year: 2008,
                month: None,
                day: Some(15)
            }
        );
        assert_eq!(n.birth().exact(), None);
        assert_eq!(n.birth().to_iso(), "2008");
        // 2008-01-15 … 2008-12-15: 18 or 17 on 2026-03-15 — undetermined.
        let age = n.age_on(today());
        assert_eq!(age, AgeRange { min: 17, max: 18 });
        assert_eq!(age.at_least(18), None);
        assert_eq!(age.exact(), None);
        // Determined once every possible birthday has passed.
        assert_eq!(n.age_on(date(2026, 12, 15)).at_least(18), Some(true));
        assert_eq!(n.age_on(date(2026, 1, 14)).at_least(18), Some(false));
    }

    #[test]
    fn samordningsnummer_day_unknown() {
        let n = parse(&with_check("080360123"), today()).unwrap();
        assert_eq!(
            *n.birth(),
            BirthDate {
                year: 2008,
                month: Some(3),
                day: None
            }
        );
        assert_eq!(n.birth().to_iso(), "2008-03");
        assert_eq!(n.age_on(today()).at_least(18), None);
        assert_eq!(n.age_on(date(2026, 3, 31)).at_least(18), Some(true));
        assert_eq!(n.age_on(date(2026, 2, 28)).at_least(18), Some(false));
        // Far from the threshold it is determined.
        assert_eq!(n.age_on(today()).at_least(16), Some(true));
        assert_eq!(n.age_on(today()).at_least(20), Some(false));
    }

    #[test]
    fn samordningsnummer_month_and_day_unknown() {
        let n = parse(&with_check("900060123"), today()).unwrap();
        assert_eq!(n.birth().to_iso(), "1990");
        assert_eq!(n.age_on(today()), AgeRange { min: 35, max: 36 });
        assert_eq!(n.age_on(today()).at_least(18), Some(true));
        assert_eq!(n.age_on(today()).at_least(40), Some(false));
    }

    #[test]
    fn samordningsnummer_day_past_month_end_is_unknown_day() {
        // 30 February 2008 → day 90.
        let n = parse(&with_check("080290123"), today()).unwrap();
        assert_eq!(n.kind(), IdKind::Samordningsnummer);
        assert!(n.normalized().starts_with("20080290"));
        assert_eq!(
            *n.birth(),
            BirthDate {
                year: 2008,
                month: Some(2),
                day: None
            }
        );
        // February 2008: 18 from 1 Feb at the earliest, 29 Feb at the latest.
        assert_eq!(n.age_on(date(2026, 2, 10)).at_least(18), None);
        assert_eq!(n.age_on(date(2026, 2, 10)), AgeRange { min: 17, max: 18 });
        assert_eq!(n.age_on(today()).at_least(18), Some(true));
        assert_eq!(n.age_on(date(2026, 1, 31)).at_least(18), Some(false));
        // 31 April → day 91.
        let n = parse(&with_check("080491123"), today()).unwrap();
        assert_eq!(n.birth().day, None);
    }

    #[test]
    fn samordningsnummer_out_of_range_is_invalid_date() {
        assert_eq!(code(&with_check("901372123")), "invalid_date"); // month 13
        assert_eq!(code(&with_check("900192123")), "invalid_date"); // day 92
        assert_eq!(code(&with_check("900199123")), "invalid_date");
        // Days 32–59 are neither kind.
        assert_eq!(code(&with_check("900145123")), "invalid_date");
    }

    #[test]
    fn samordningsnummer_in_the_future() {
        // Day unknown in April 2026 is after the reference date, in 12 digits and in 10.
        assert_eq!(
            code(&format!("20{}", with_check("260460123"))),
            "future_birth_date"
        );
        assert_eq!(code(&with_check("260460123")), "future_birth_date");
        // Month unknown in the reference year is possible (earliest 1 January).
        let n = parse(&with_check("260060123"), today()).unwrap();
        assert_eq!(n.birth().year, 2026);
        assert_eq!(n.age_on(today()), AgeRange { min: 0, max: 0 });
    }

    #[test]
    fn leap_day_birthdays() {
        let born = date(2008, 2, 29);
        // Non-leap year: completes on 1 March, not on 28 February.
        assert_eq!(age_on(born, date(2026, 2, 28)), 17);
        assert_eq!(age_on(born, date(2026, 3, 1)), 18);
        // Leap year: completes on 29 February.
        assert_eq!(age_on(born, date(2028, 2, 28)), 19);
        assert_eq!(age_on(born, date(2028, 2, 29)), 20);
        assert_eq!(age_on(born, date(2028, 3, 1)), 20);
        // Through an identity number too.
        let n = parse(&format!("20{}", with_check("080229123")), today()).unwrap();
        assert_eq!(n.age_on(date(2026, 2, 28)).at_least(18), Some(false));
        assert_eq!(n.age_on(date(2026, 3, 1)).at_least(18), Some(true));
    }

    #[test]
    fn age_boundaries_on_the_birthday() {
        let born = date(2008, 3, 15);
        assert_eq!(age_on(born, date(2026, 3, 14)), 17);
        assert_eq!(age_on(born, date(2026, 3, 15)), 18);
        assert_eq!(age_on(born, date(2026, 3, 16)), 18);
        assert_eq!(age_on(born, born), 0);
        assert_eq!(age_on(born, date(2000, 1, 1)), 0);
        let born = date(2007, 12, 31);
        assert_eq!(age_on(born, date(2025, 12, 30)), 17);
        assert_eq!(age_on(born, date(2025, 12, 31)), 18);
    }

    #[test]
    fn age_range_methods() {
        let r = AgeRange { min: 17, max: 18 };
        assert_eq!(r.exact(), None);
        assert_eq!(r.at_least(18), None);
        assert_eq!(r.at_least(17), Some(true));
        assert_eq!(r.at_least(19), Some(false));
        let r = AgeRange { min: 18, max: 18 };
        assert_eq!(r.exact(), Some(18));
        assert_eq!(r.at_least(18), Some(true));
    }

    #[test]
    fn birth_date_iso_and_partial_ages() {
        let b = BirthDate {
            year: 1990,
            month: Some(4),
            day: Some(12),
        };
        assert_eq!(b.to_iso(), "1990-04-12");
        assert_eq!(b.exact(), Some(date(1990, 4, 12)));
        // Month unknown, day 31: only months with 31 days, still a range over the year.
        let b = BirthDate {
            year: 2008,
            month: None,
            day: Some(31),
        };
        assert_eq!(b.age_on(date(2026, 1, 31)), AgeRange { min: 17, max: 18 });
        // A nonsense hand-made date does not panic.
        let b = BirthDate {
            year: 2008,
            month: Some(14),
            day: Some(40),
        };
        assert_eq!(b.exact(), None);
        let _ = b.age_on(today());
        // Wholly in the future: 0.
        let b = BirthDate {
            year: 2030,
            month: None,
            day: None,
        };
        assert_eq!(b.age_on(today()), AgeRange { min: 0, max: 0 });
    }

    #[test]
    fn birth_dates_typed_in() {
        assert_eq!(
            parse_birth_date("2008-03-15", today()),
            Ok(date(2008, 3, 15))
        );
        assert_eq!(
            parse_birth_date(" 20080315 ", today()),
            Ok(date(2008, 3, 15))
        );
        assert_eq!(
            parse_birth_date("2008-02-30", today()),
            Err(IdError::InvalidDate)
        );
        assert_eq!(
            parse_birth_date("20070229", today()),
            Err(IdError::InvalidDate)
        );
        assert_eq!(
            parse_birth_date("2026-03-16", today()),
            Err(IdError::FutureBirthDate)
        );
        assert_eq!(parse_birth_date("2026-03-15", today()), Ok(today()));
        assert_eq!(parse_birth_date("", today()), Err(IdError::Empty));
        for bad in [
            "2008-3-15",
            "2008/03/15",
            "080315",
            "2008-03-1é",
            "ååååmmdd",
            "2008031500",
        ] {
            assert_eq!(
                parse_birth_date(bad, today()),
                Err(IdError::InvalidBirthDateFormat),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn codes_and_messages() {
        let all = [
            IdError::Empty,
            IdError::InvalidCharacters,
            IdError::WrongLength { digits: 11 },
            IdError::InvalidSeparator,
            IdError::InvalidChecksum,
            IdError::ZeroSerial,
            IdError::InvalidDate,
            IdError::YearOutOfRange,
            IdError::FutureBirthDate,
            IdError::InterimNumber,
            IdError::ReserveNumber,
            IdError::InvalidBirthDateFormat,
        ];
        let mut codes: Vec<_> = all.iter().map(Reasoned::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "codes are distinct");
        for e in all {
            let code = e.code();
            assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            let sv = e.message(Lang::Sv);
            let en = e.message(Lang::En);
            assert_ne!(sv, en);
            assert!(
                sv.contains(" – ") && en.contains(" – "),
                "{code}: what and what to do"
            );
            assert_eq!(e.to_string(), en);
        }
        assert_eq!(
            IdError::InvalidChecksum.message(Lang::Sv),
            "Kontrollsiffran stämmer inte – kontrollera att numret är rätt inskrivet."
        );
        assert!(IdError::WrongLength { digits: 11 }
            .message(Lang::Sv)
            .contains("11 siffror"));
    }

    #[test]
    fn errors_and_debug_never_show_the_number() {
        let input = "811218-9875";
        let err = parse(input, today()).unwrap_err();
        for text in [
            err.message(Lang::Sv),
            err.message(Lang::En),
            format!("{err:?}"),
        ] {
            assert!(!text.contains("811218"));
            assert!(!text.contains("9875"));
        }
        let n = parse("811218-9876", today()).unwrap();
        let debug = format!("{n:?}");
        assert!(!debug.contains("811218"), "{debug}");
        assert!(debug.contains("Personnummer"));
    }

    #[test]
    fn kind_names() {
        assert_eq!(IdKind::Personnummer.as_str(), "personnummer");
        assert_eq!(IdKind::Samordningsnummer.as_str(), "samordningsnummer");
        assert_eq!(
            serde_json::to_string(&IdKind::Samordningsnummer).unwrap(),
            "\"samordningsnummer\""
        );
        let b = BirthDate {
            year: 2008,
            month: Some(3),
            day: None,
        };
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"year":2008,"month":3,"day":null}"#
        );
    }

    #[test]
    fn absurd_reference_dates_do_not_panic() {
        for reference in [
            NaiveDate::MIN,
            NaiveDate::MAX,
            date(1, 1, 1),
            date(99, 12, 31),
        ] {
            let _ = parse("811218-9876", reference);
            let _ = parse("811218+9876", reference);
            let _ = parse("8112189876", reference);
            let _ = parse("198112189876", reference);
            let _ = parse_birth_date("2008-03-15", reference);
        }
    }
}
