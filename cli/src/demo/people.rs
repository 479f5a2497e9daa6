//! The people the officer meets in the demo's shift at Plattan: one for each thing the street
//! brings — an eligible resident, someone who lives elsewhere, a municipality no program covers, a
//! 17-year-old, a samordningsnummer, a refusal, and a mistyped number.

use chrono::{Duration, Months, NaiveDate};
use lotsa_core::eligibility::Provenance;
use lotsa_core::identity;
use lotsa_core::text::Lang;

/// One person the officer meets.
pub struct Person {
    /// Who they are, in Swedish and in English.
    pub who: [&'static str; 2],
    /// The number as the officer first types it.
    pub typed_number: String,
    /// The number typed again after a refusal, if the first was wrong.
    pub corrected_number: Option<String>,
    /// Where they say or show they are registered, as typed.
    pub municipality: &'static str,
    /// How the residency is known.
    pub provenance: Provenance,
    /// The name (or chosen name) given for the call back.
    pub name: &'static str,
    /// The phone number, as typed.
    pub phone: &'static str,
    /// Whether they say yes after hearing the consent script.
    pub consents: bool,
    /// The language the script is read in.
    pub script_lang: Lang,
}

fn years_ago(today: NaiveDate, years: u32, days: i64) -> NaiveDate {
    today
        .checked_sub_months(Months::new(12 * years))
        .unwrap_or(today)
        - Duration::days(days)
}

/// The people met in one shift, their ages counted from `today`.
pub fn people(today: NaiveDate) -> Vec<Person> {
    let pnr = |born, serial| identity::compose(born, serial, false);
    let alex = pnr(years_ago(today, 36, 40), 123);
    // A typo: two digits swapped in the serial, which the check digit catches.
    let sam = pnr(years_ago(today, 41, 3), 457);
    let mut typo: Vec<char> = sam.chars().collect();
    typo.swap(9, 10);
    vec![
        Person {
            who: [
                "Alex, bor i Stockholm, visar id-kort",
                "Alex, lives in Stockholm, shows an ID card",
            ],
            typed_number: alex,
            corrected_number: None,
            municipality: "Stockholm",
            provenance: Provenance::Document,
            name: "Alex",
            phone: "070-123 45 67",
            consents: true,
            script_lang: Lang::Sv,
        },
        Person {
            who: [
                "Robin, på besök i stan, folkbokförd i Gislaved",
                "Robin, in town for the day, registered in Gislaved",
            ],
            typed_number: pnr(years_ago(today, 29, 100), 662),
            corrected_number: None,
            municipality: "gislaved kommun",
            provenance: Provenance::Document,
            name: "Robin",
            phone: "+46 (0)72-555 01 02",
            consents: true,
            script_lang: Lang::En,
        },
        Person {
            who: ["Kim, säger sig bo i Solna", "Kim, says they live in Solna"],
            typed_number: pnr(years_ago(today, 45, 0), 184),
            corrected_number: None,
            municipality: "Solna",
            provenance: Provenance::Stated,
            name: "Kim",
            phone: "073 000 11 22",
            consents: false,
            script_lang: Lang::Sv,
        },
        Person {
            who: [
                "Mika, 17 år, fyller 18 om tolv dagar",
                "Mika, 17, turns 18 in twelve days",
            ],
            typed_number: pnr(years_ago(today, 18, -12), 345),
            corrected_number: None,
            municipality: "Stockholm",
            provenance: Provenance::Register,
            name: "Mika",
            phone: "076-111 22 33",
            consents: false,
            script_lang: Lang::Sv,
        },
        Person {
            who: [
                "Jo, har samordningsnummer, sover i Stockholm",
                "Jo, has a samordningsnummer, sleeps in Stockholm",
            ],
            typed_number: identity::compose(years_ago(today, 31, 7), 228, true),
            corrected_number: None,
            municipality: "Stockholm",
            provenance: Provenance::Stated,
            name: "Jo",
            phone: "070-999 88 77",
            consents: false,
            script_lang: Lang::Sv,
        },
        Person {
            who: [
                "Noor, bor i Stockholm, lyssnar och säger nej just nu",
                "Noor, lives in Stockholm, listens, and says no for now",
            ],
            typed_number: pnr(years_ago(today, 52, 200), 816),
            corrected_number: None,
            municipality: "Stockholms stad",
            provenance: Provenance::Register,
            name: "Noor",
            phone: "070-555 66 77",
            consents: false,
            script_lang: Lang::Sv,
        },
        Person {
            who: [
                "Sam, bor i Stockholm (säger Sam); polisen skriver fel nummer",
                "Sam, lives in Stockholm (says so); the officer mistypes the number",
            ],
            typed_number: typo.into_iter().collect(),
            corrected_number: Some(sam),
            municipality: "0180",
            provenance: Provenance::Stated,
            name: "Sam",
            phone: "08-123 456 78",
            consents: true,
            script_lang: Lang::Sv,
        },
    ]
}
