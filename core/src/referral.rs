//! The referral: the draft an officer fills in, its validation, and the handover payload the
//! clinic receives.
//!
//! The draft holds what was typed, exactly as typed, so nothing is lost when a field is wrong;
//! validation then names the field and the reason. The handover payload is built from draft +
//! verdict + consent and carries only the fields the program asks for and the person agreed to
//! pass on (data minimisation): a program that never needs the personnummer never receives it,
//! even if the officer typed it to check the age. One id follows the referral from draft to
//! handover, and the consent record names the person by that id only.

use crate::consent::{ConsentError, ConsentRecord};
use crate::eligibility::{
    self, AgeEvidence, Basis, Facts, Outcome, Provenance, Residency, Verdict,
};
use crate::geo::GeoError;
use crate::identity::{self, IdError};
use crate::program::{Bundle, Field, Need, Program};
use crate::text::{self, Lang, Reasoned, Texts};
use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};

/// The `schema` value of handover payloads this core produces.
pub const HANDOVER_SCHEMA: &str = "lotsa.handover/1";

/// The version of the handover payload schema, bound into the seal (the `1` of
/// [`HANDOVER_SCHEMA`]).
pub const PAYLOAD_SCHEMA_VERSION: u32 = 1;

/// A fresh referral id (random UUID v4): the draft's id, and later the handover id.
pub fn new_referral_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Contact details as typed.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactDetails {
    /// Name or chosen name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Phone number in any common Swedish or international way of writing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Preferred language for the call (a code like `sv`, `ar`, or a name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Best time to call ("efter 14", "mornings").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_time: Option<String>,
    /// A short note from the officer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Where the person lives, as typed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResidenceInput {
    /// A kommunkod or municipality name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub municipality: Option<String>,
    /// A postal code (a hint only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// How it is known.
    pub provenance: Provenance,
}

/// A referral being filled in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    /// The referral's id (UUID); it becomes the handover id.
    pub draft_id: String,
    /// The program it is for.
    pub program_id: String,
    /// When it was started.
    pub created_at: DateTime<FixedOffset>,
    /// Contact details.
    pub contact: ContactDetails,
    /// Personnummer or samordningsnummer as typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_number: Option<String>,
    /// Date of birth as typed (when there is no number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    /// Residence as typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residence: Option<ResidenceInput>,
}

/// What the officer typed about the person: the facts eligibility rests on, exactly as typed.
/// Its field names are the one vocabulary every front end reports errors in: `identity_number`,
/// `birth_date`, `municipality`, `postal_code`. Used by the street check (no draft) and by a
/// draft alike, so both parse the same way.
#[derive(Clone, PartialEq, Eq)]
pub struct TypedFacts {
    /// Personnummer or samordningsnummer as typed.
    pub identity_number: Option<String>,
    /// Date of birth as typed (`YYYY-MM-DD`), used when there is no number.
    pub birth_date: Option<String>,
    /// A kommunkod or municipality name.
    pub municipality: Option<String>,
    /// A postal code (a hint only), used when no municipality is given.
    pub postal_code: Option<String>,
    /// How residency is known.
    pub provenance: Provenance,
}

impl Default for TypedFacts {
    fn default() -> TypedFacts {
        TypedFacts {
            identity_number: None,
            birth_date: None,
            municipality: None,
            postal_code: None,
            provenance: Provenance::Stated,
        }
    }
}

/// A typed value, trimmed, unless it is blank.
pub(crate) fn typed(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl TypedFacts {
    /// Parses what was typed against the Stockholm date `today`. A blank field is absent (the
    /// verdict then says what is missing); a wrong one is an error naming the field.
    pub fn parse(&self, today: NaiveDate) -> Result<Facts, ReferralError> {
        let mut facts = Facts::default();
        if let Some(n) = typed(&self.identity_number) {
            let parsed = identity::parse(n, today)
                .map_err(|e| field_error("identity_number", Problem::Identity(e)))?;
            facts.age = Some(AgeEvidence::Number(parsed));
        } else if let Some(d) = typed(&self.birth_date) {
            let date = identity::parse_birth_date(d, today)
                .map_err(|e| field_error("birth_date", Problem::Identity(e)))?;
            facts.age = Some(AgeEvidence::BirthDate(date));
        }
        if let Some(m) = typed(&self.municipality) {
            facts.residency = Some(
                Residency::from_municipality(m, self.provenance)
                    .map_err(|e| field_error("municipality", Problem::Residence(e)))?,
            );
        } else if let Some(p) = typed(&self.postal_code) {
            facts.residency = Some(
                Residency::from_postal_code(p, self.provenance)
                    .map_err(|e| field_error("postal_code", Problem::Residence(e)))?,
            );
        }
        Ok(facts)
    }
}

/// The street check: the verdict for a person and a program of the bundle on `today`, from what
/// the officer typed, with no draft and nothing stored.
pub fn assess_typed(
    bundle: &Bundle,
    program_id: &str,
    facts: &TypedFacts,
    today: NaiveDate,
) -> Result<Verdict, ReferralError> {
    let program = find_program(bundle, program_id)?;
    Ok(eligibility::assess(
        &facts.parse(today)?,
        bundle,
        program,
        today,
    ))
}

/// A program of the bundle, or [`ReferralError::UnknownProgram`] (a typo must never invent a
/// program, in a draft or in the statistics).
pub fn find_program<'b>(
    bundle: &'b Bundle,
    program_id: &str,
) -> Result<&'b Program, ReferralError> {
    bundle
        .program(program_id)
        .ok_or_else(|| ReferralError::UnknownProgram {
            program_id: program_id.to_string(),
            known: bundle.programs().iter().map(|p| p.id.clone()).collect(),
        })
}

/// A change to a draft, one field per thing the officer can type. Each is optional: `None` keeps
/// the stored value, a blank string clears it (see [`Draft::apply`]). As JSON (`lotsa field set
/// --from`), one object with these names; unknown names are refused.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftUpdate {
    /// Name or chosen name.
    pub name: Option<String>,
    /// Phone number as typed.
    pub phone: Option<String>,
    /// Preferred language for the call.
    pub language: Option<String>,
    /// Best time to call.
    pub best_time: Option<String>,
    /// A short note.
    pub note: Option<String>,
    /// Personnummer or samordningsnummer as typed.
    pub identity_number: Option<String>,
    /// Date of birth as typed.
    pub birth_date: Option<String>,
    /// Kommunkod or municipality name.
    pub municipality: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// How residency is known; it cannot be cleared, only changed.
    pub provenance: Option<Provenance>,
}

/// `Some` replaces (a blank value clears), `None` keeps.
fn set_typed(slot: &mut Option<String>, value: Option<String>) {
    if let Some(v) = value {
        *slot = (!v.trim().is_empty()).then_some(v);
    }
}

/// A program field by the name the typed input uses for it.
fn typed_field(f: Field) -> &'static str {
    match f {
        Field::Personnummer => "identity_number",
        Field::Kommunkod => "municipality",
        other => other.as_str(),
    }
}

/// Why a phone number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Letters or symbols other than spaces, `-`, `(`, `)`, `.`, `/` and a leading `+`.
    #[error("a phone number may hold only digits, spaces, hyphens, dots, slashes, brackets and a leading +")]
    InvalidCharacters,
    /// Too few digits for a Swedish or international number.
    #[error("the phone number has too few digits")]
    TooShort,
    /// More digits than any number can have.
    #[error("the phone number has too many digits")]
    TooLong,
    /// A premium-rate number (0900, 0939, 0944): the clinic must never be sent to one.
    #[error("this is a premium-rate number; ask for the person's own phone number")]
    PremiumRate,
    /// Digits that cannot be a number in Sweden (e.g. a mobile number of the wrong length).
    #[error(
        "this is not a valid Swedish phone number; check the area code and the number of digits"
    )]
    NotSwedish,
}

impl Reasoned for PhoneError {
    fn code(&self) -> &'static str {
        match self {
            PhoneError::InvalidCharacters => "phone_invalid_characters",
            PhoneError::TooShort => "phone_too_short",
            PhoneError::TooLong => "phone_too_long",
            PhoneError::NotSwedish => "phone_invalid",
            PhoneError::PremiumRate => "phone_premium_rate",
        }
    }

    fn message(&self, lang: Lang) -> String {
        let sv = match self {
            PhoneError::InvalidCharacters => {
                "Ett telefonnummer får bara innehålla siffror, mellanslag, bindestreck, punkter, snedstreck, parenteser och ett inledande +."
            }
            PhoneError::TooShort => "Telefonnumret har för få siffror.",
            PhoneError::TooLong => "Telefonnumret har för många siffror.",
            PhoneError::PremiumRate => {
                "Det är ett betalnummer; fråga efter personens eget telefonnummer."
            }
            PhoneError::NotSwedish => {
                "Det är inget giltigt svenskt telefonnummer; kontrollera riktnumret och antalet siffror."
            }
        };
        lang.pick(sv.to_string(), self.to_string())
    }
}

/// Normalises a phone number to E.164 (`+46701234567`) from the ways people write it:
/// `070-123 45 67`, `0701234567`, `+46 70 123 45 67`, `+46 (0)70-123 45 67`, `0046 70 123 45 67`,
/// `08-123 456 78`. A number with another country code (`+47 …`, `0047 …`) is kept as given.
pub fn normalize_phone(input: &str) -> Result<String, PhoneError> {
    let text = input.trim().replace("(0)", "");
    let mut digits = String::with_capacity(16);
    let mut plus = false;
    for (i, c) in text.chars().enumerate() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => plus = true,
            ' ' | '-' | '(' | ')' | '.' | '/' | '\u{a0}' => {}
            _ => return Err(PhoneError::InvalidCharacters),
        }
    }
    let international = if plus {
        Some(digits.as_str())
    } else {
        digits.strip_prefix("00")
    };
    let national = match international {
        // `+46 070…`: the trunk zero typed after the country code is dropped, as a caller would.
        Some(rest) => match rest.strip_prefix("46") {
            Some(nsn) => nsn.strip_prefix('0').unwrap_or(nsn).to_string(),
            None => {
                if rest.len() < 8 {
                    return Err(PhoneError::TooShort);
                }
                if rest.len() > 15 {
                    return Err(PhoneError::TooLong);
                }
                if rest.starts_with('0') {
                    return Err(PhoneError::NotSwedish);
                }
                return Ok(format!("+{rest}"));
            }
        },
        None => match digits.strip_prefix('0') {
            Some(nsn) => nsn.to_string(),
            None if digits.len() < 7 => return Err(PhoneError::TooShort),
            None => return Err(PhoneError::NotSwedish),
        },
    };
    // Premium-rate services (0900, 0939, 0944): never a person's phone, whatever the length
    // typed. (Umeå's area code 090 is not one: its subscriber numbers never start with 0.)
    if national.starts_with("900") || national.starts_with("939") || national.starts_with("944") {
        return Err(PhoneError::PremiumRate);
    }
    // The Swedish national significant number: 7–9 digits, no trunk 0; mobiles (07x) have 9.
    if national.len() < 7 {
        return Err(PhoneError::TooShort);
    }
    if national.len() > 9 {
        return Err(PhoneError::TooLong);
    }
    if national.starts_with('0') || (national.starts_with('7') && national.len() != 9) {
        return Err(PhoneError::NotSwedish);
    }
    Ok(format!("+46{national}"))
}

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The program requires it and it is empty.
    #[error("is required by the program")]
    Missing,
    /// Longer than allowed.
    #[error("is longer than {max} characters")]
    TooLong {
        /// The maximum.
        max: usize,
    },
    /// Holds control characters.
    #[error("holds control characters")]
    ControlCharacters,
    /// Holds bidirectional-text controls, which make text read differently than it is stored.
    #[error("holds invisible text-direction characters; type it again without them")]
    BidiControl,
    /// Not a phone number.
    #[error("{0}")]
    Phone(PhoneError),
    /// Not a valid identity number or date of birth.
    #[error("{0}")]
    Identity(IdError),
    /// An unknown municipality or postal code.
    #[error("{0}")]
    Residence(GeoError),
}

impl Reasoned for Problem {
    fn code(&self) -> &'static str {
        match self {
            Problem::Missing => "missing",
            Problem::TooLong { .. } => "too_long",
            Problem::ControlCharacters => "control_characters",
            Problem::BidiControl => "bidi_control",
            Problem::Phone(e) => e.code(),
            Problem::Identity(e) => e.code(),
            Problem::Residence(e) => e.code(),
        }
    }

    fn message(&self, lang: Lang) -> String {
        let (sv, en) = match self {
            Problem::Phone(e) => return e.message(lang),
            Problem::Identity(e) => return e.message(lang),
            Problem::Residence(e) => return e.message(lang),
            Problem::Missing => ("krävs av programmet".to_string(), self.to_string()),
            Problem::TooLong { max } => (format!("är längre än {max} tecken"), self.to_string()),
            Problem::ControlCharacters => ("innehåller styrtecken".to_string(), self.to_string()),
            Problem::BidiControl => (
                "innehåller osynliga tecken för textriktning; skriv in det igen utan dem"
                    .to_string(),
                self.to_string(),
            ),
        };
        lang.pick(sv, en)
    }
}

/// Why a draft cannot become a handover.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferralError {
    /// One field is missing or wrong.
    #[error("{field}: {problem}")]
    Field {
        /// The field, in the one vocabulary every front end uses (`phone`, `identity_number`,
        /// `birth_date`, `municipality`, `postal_code`, …).
        field: &'static str,
        /// What is wrong.
        problem: Problem,
    },
    /// The verdict does not allow a referral.
    #[error("the person is not eligible for this program ({outcome}); see the verdict's reasons")]
    NotEligible {
        /// `not_eligible`, `undetermined`, or `eligible` when only provisional and the program refuses that.
        outcome: &'static str,
    },
    /// The consent record is missing or invalid.
    #[error("consent: {0}")]
    Consent(ConsentError),
    /// The program is not in the current bundle. The text names the programs the bundle has,
    /// never what was typed (a personnummer typed into the wrong field must not reach a log).
    #[error("that program is not in the current program bundle (it has: {})", known.join(", "))]
    UnknownProgram {
        /// The program id asked for, as typed (for the caller; never in the text).
        program_id: String,
        /// The programs the bundle does hold.
        known: Vec<String>,
    },
    /// Draft, verdict and consent are not about the same program or referral.
    #[error("the {what} belongs to another program or referral")]
    Mismatch {
        /// `verdict` or `consent`.
        what: &'static str,
    },
}

impl ReferralError {
    /// The field to highlight, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ReferralError::Field { field, .. } => Some(field),
            ReferralError::Consent(e) => Some(e.field()),
            ReferralError::UnknownProgram { .. } => Some("program_id"),
            _ => None,
        }
    }
}

impl Reasoned for ReferralError {
    fn code(&self) -> &'static str {
        match self {
            ReferralError::Field { problem, .. } => problem.code(),
            // An open verdict is not a refusal: the officer can still find out what is missing.
            ReferralError::NotEligible {
                outcome: "undetermined",
            } => "undetermined",
            ReferralError::NotEligible { .. } => "not_eligible",
            ReferralError::Consent(e) => e.code(),
            ReferralError::UnknownProgram { .. } => "unknown_program",
            ReferralError::Mismatch { .. } => "mismatch",
        }
    }

    fn message(&self, lang: Lang) -> String {
        let (sv, en) = match self {
            ReferralError::Field { field, problem } => {
                return format!("{}: {}", field_label(field, lang), problem.message(lang))
            }
            ReferralError::Consent(e) => return e.message(lang),
            ReferralError::NotEligible { outcome } => (
                "Personen uppfyller inte programmets villkor; se beskedets skäl.".to_string(),
                format!("the person is not eligible for this program ({outcome}); see the verdict's reasons"),
            ),
            ReferralError::UnknownProgram { known, .. } => (
                format!(
                    "Programmet finns inte i den aktuella programfilen (den har: {}).",
                    known.join(", ")
                ),
                self.to_string(),
            ),
            ReferralError::Mismatch { what } => (
                "Beskedet eller samtycket gäller ett annat program eller en annan remiss.".to_string(),
                format!("the {what} belongs to another program or referral"),
            ),
        };
        lang.pick(sv, en)
    }
}

/// A field as a person names it, in each language (never the raw field name in a sentence).
fn field_label(field: &str, lang: Lang) -> &str {
    let (sv, en) = match field {
        "name" => ("Namn", "Name"),
        "phone" => ("Telefon", "Phone"),
        "language" => ("Språk", "Language"),
        "best_time" => ("Bästa tid att ringa", "Best time to call"),
        "note" => ("Anteckning", "Note"),
        "identity_number" => ("Personnummer", "Personal identity number"),
        "birth_date" => ("Födelsedatum", "Date of birth"),
        "municipality" => ("Kommun", "Municipality"),
        "postal_code" => ("Postnummer", "Postal code"),
        "program_id" => ("Program", "Program"),
        other => (other, other),
    };
    lang.pick(sv, en)
}

fn field_error(field: &'static str, problem: Problem) -> ReferralError {
    ReferralError::Field { field, problem }
}

/// Contact details that passed validation: trimmed, phone in E.164.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidContact {
    /// Name or chosen name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E.164 phone number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Preferred language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Best time to call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_time: Option<String>,
    /// Officer's note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn clean_text(
    field: &'static str,
    value: &Option<String>,
    max: usize,
) -> Result<Option<String>, ReferralError> {
    let Some(v) = value else { return Ok(None) };
    let v = v.trim();
    // Text that shows nothing (only white space and zero-width or other invisible characters)
    // is no answer: a required field made of it is missing.
    if text::is_blank(v) {
        return Ok(None);
    }
    if v.chars().any(text::is_bidi_control) {
        return Err(field_error(field, Problem::BidiControl));
    }
    if v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(field_error(field, Problem::ControlCharacters));
    }
    if v.chars().count() > max {
        return Err(field_error(field, Problem::TooLong { max }));
    }
    Ok(Some(v.to_string()))
}

/// The fields in the order the form shows them (problems are reported in this order).
const FORM_ORDER: [&str; 9] = [
    "name",
    "phone",
    "language",
    "best_time",
    "note",
    "identity_number",
    "birth_date",
    "municipality",
    "postal_code",
];

/// Maximum lengths, in characters.
pub const MAX_NAME: usize = 100;
/// Maximum length of the language field.
pub const MAX_LANGUAGE: usize = 40;
/// Maximum length of the best-time field.
pub const MAX_BEST_TIME: usize = 100;
/// Maximum length of the note: short on purpose (no case notes on a phone).
pub const MAX_NOTE: usize = 500;

impl ContactDetails {
    /// Checks each field's form (not whether the program needs it): the first problem found, in
    /// form order.
    pub fn validate(&self) -> Result<ValidContact, ReferralError> {
        let phone = match &self.phone {
            Some(p) if !p.trim().is_empty() => {
                Some(normalize_phone(p).map_err(|e| field_error("phone", Problem::Phone(e)))?)
            }
            _ => None,
        };
        Ok(ValidContact {
            name: clean_text("name", &self.name, MAX_NAME)?,
            phone,
            language: clean_text("language", &self.language, MAX_LANGUAGE)?,
            best_time: clean_text("best_time", &self.best_time, MAX_BEST_TIME)?,
            note: clean_text("note", &self.note, MAX_NOTE)?,
        })
    }
}

impl Draft {
    /// A new, empty draft.
    pub fn new(draft_id: String, program_id: String, created_at: DateTime<FixedOffset>) -> Draft {
        Draft {
            draft_id,
            program_id,
            created_at,
            contact: ContactDetails::default(),
            identity_number: None,
            birth_date: None,
            residence: None,
        }
    }

    /// What the draft holds about the person, in the one vocabulary of typed facts. A residence
    /// typed without provenance counts as stated.
    pub fn typed_facts(&self) -> TypedFacts {
        let residence = self.residence.as_ref();
        TypedFacts {
            identity_number: self.identity_number.clone(),
            birth_date: self.birth_date.clone(),
            municipality: residence.and_then(|r| r.municipality.clone()),
            postal_code: residence.and_then(|r| r.postal_code.clone()),
            provenance: residence.map_or(Provenance::Stated, |r| r.provenance),
        }
    }

    /// The eligibility facts the draft holds, parsed against the Stockholm date `today`.
    pub fn facts(&self, today: NaiveDate) -> Result<Facts, ReferralError> {
        self.typed_facts().parse(today)
    }

    /// Applies a change: an absent field keeps its value, a blank one clears it, and a residence
    /// given without provenance is stated (a provisional verdict) until the provenance is set.
    /// Values are kept exactly as typed; validation names the field later.
    pub fn apply(&mut self, change: DraftUpdate) {
        let contact = &mut self.contact;
        for (slot, value) in [
            (&mut contact.name, change.name),
            (&mut contact.phone, change.phone),
            (&mut contact.language, change.language),
            (&mut contact.best_time, change.best_time),
            (&mut contact.note, change.note),
            (&mut self.identity_number, change.identity_number),
            (&mut self.birth_date, change.birth_date),
        ] {
            set_typed(slot, value);
        }
        if change.municipality.is_some()
            || change.postal_code.is_some()
            || change.provenance.is_some()
        {
            let residence = self.residence.get_or_insert(ResidenceInput {
                municipality: None,
                postal_code: None,
                provenance: Provenance::Stated,
            });
            set_typed(&mut residence.municipality, change.municipality);
            set_typed(&mut residence.postal_code, change.postal_code);
            if let Some(p) = change.provenance {
                residence.provenance = p;
            }
        }
    }

    /// Every field that is wrong as typed, one problem each, in form order (what an officer is told
    /// after each change; nothing is refused).
    pub fn problems(&self, today: NaiveDate) -> Vec<ReferralError> {
        let c = &self.contact;
        let mut out = Vec::new();
        for (field, value, max) in [
            ("name", &c.name, MAX_NAME),
            ("language", &c.language, MAX_LANGUAGE),
            ("best_time", &c.best_time, MAX_BEST_TIME),
            ("note", &c.note, MAX_NOTE),
        ] {
            if let Err(e) = clean_text(field, value, max) {
                out.push(e);
            }
        }
        if let Some(p) = c.phone.as_deref().filter(|p| !p.trim().is_empty()) {
            if let Err(e) = normalize_phone(p) {
                out.push(field_error("phone", Problem::Phone(e)));
            }
        }
        let facts = self.typed_facts();
        let only = |f: TypedFacts| f.parse(today).err();
        out.extend(only(TypedFacts {
            identity_number: facts.identity_number.clone(),
            ..TypedFacts::default()
        }));
        if typed(&facts.identity_number).is_none() {
            out.extend(only(TypedFacts {
                birth_date: facts.birth_date.clone(),
                ..TypedFacts::default()
            }));
        }
        out.extend(only(TypedFacts {
            municipality: facts.municipality.clone(),
            ..TypedFacts::default()
        }));
        if typed(&facts.municipality).is_none() {
            out.extend(only(TypedFacts {
                postal_code: facts.postal_code,
                ..TypedFacts::default()
            }));
        }
        out.sort_by_key(|e| FORM_ORDER.iter().position(|f| Some(*f) == e.field()));
        out
    }

    /// Checks everything a handover needs from the draft for this program: every field well
    /// formed and every required one present. Returns the first problem, in form order.
    pub fn validate(
        &self,
        program: &Program,
        today: NaiveDate,
    ) -> Result<ValidContact, ReferralError> {
        let contact = self.contact.validate()?;
        let facts = self.facts(today)?;
        let present = |f: Field| match f {
            Field::Name => contact.name.is_some(),
            Field::Phone => contact.phone.is_some(),
            Field::Language => contact.language.is_some(),
            Field::BestTime => contact.best_time.is_some(),
            Field::Note => contact.note.is_some(),
            Field::Personnummer => matches!(facts.age, Some(AgeEvidence::Number(_))),
            Field::BirthDate => facts.age.is_some(),
            Field::Kommunkod => facts.residency.is_some(),
        };
        for f in Field::ALL {
            if program.fields.need(f) == Need::Required && !present(f) {
                return Err(field_error(typed_field(f), Problem::Missing));
            }
        }
        Ok(contact)
    }
}

/// What the clinic learns about the person beyond contact details (only what the program needs).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoverPerson {
    /// 12-digit personnummer or samordningsnummer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personnummer: Option<String>,
    /// Date of birth, as far as known (`1990-04-12`, `1990-04`, `1990`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    /// Municipality of residence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kommunkod: Option<String>,
}

/// The verdict as the clinic receives it: outcome, reason codes and basis, no number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoverEligibility {
    /// Always `eligible` in a handover.
    pub outcome: Outcome,
    /// True when residency was only stated: the clinic confirms it.
    pub provisional: bool,
    /// The reason codes.
    pub reasons: Vec<String>,
    /// What the verdict rests on.
    pub basis: Basis,
}

/// The handover payload: what is sealed to the clinic. Schema: `schemas/handover.schema.json`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoverPayload {
    /// Always [`HANDOVER_SCHEMA`].
    pub schema: String,
    /// The referral's id (also the idempotency key on delivery).
    pub handover_id: String,
    /// The program.
    pub program_id: String,
    /// When it was finalized.
    pub created_at: DateTime<FixedOffset>,
    /// How to reach the person.
    pub contact: ValidContact,
    /// What else the program needs.
    pub person: HandoverPerson,
    /// The verdict.
    pub eligibility: HandoverEligibility,
    /// The consent.
    pub consent: ConsentRecord,
    /// What the person was promised.
    pub callback_promise: Texts,
}

impl HandoverPayload {
    /// The canonical JSON bytes that get sealed.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a payload always serialises")
    }
}

/// Builds the handover payload from a draft, its verdict and the consent, with only the fields
/// the program needs and the consent covers.
pub fn build_handover(
    draft: &Draft,
    program: &Program,
    verdict: &Verdict,
    consent: &ConsentRecord,
    created_at: DateTime<FixedOffset>,
    today: NaiveDate,
) -> Result<HandoverPayload, ReferralError> {
    if draft.program_id != program.id {
        return Err(ReferralError::Mismatch { what: "draft" });
    }
    if verdict.program_id != program.id {
        return Err(ReferralError::Mismatch { what: "verdict" });
    }
    if consent.program_id != program.id || consent.subject_ref != draft.draft_id {
        return Err(ReferralError::Mismatch { what: "consent" });
    }
    consent
        .validate_at_finalize(program)
        .map_err(ReferralError::Consent)?;
    if !verdict.may_refer {
        return Err(ReferralError::NotEligible {
            outcome: verdict.outcome.as_str(),
        });
    }
    let contact = draft.validate(program, today)?;
    let facts = draft.facts(today)?;
    let allowed = |f: Field| program.fields.need(f) != Need::Never && consent.covers(f);
    let keep = |f: Field, v: Option<String>| v.filter(|_| allowed(f));

    let (number, birth) = match &facts.age {
        Some(AgeEvidence::Number(n)) => {
            (Some(n.normalized().to_string()), Some(n.birth().to_iso()))
        }
        Some(AgeEvidence::BirthDate(d)) => (None, Some(d.format("%Y-%m-%d").to_string())),
        None => (None, None),
    };
    Ok(HandoverPayload {
        schema: HANDOVER_SCHEMA.to_string(),
        handover_id: draft.draft_id.clone(),
        program_id: program.id.clone(),
        created_at,
        contact: ValidContact {
            name: keep(Field::Name, contact.name),
            phone: keep(Field::Phone, contact.phone),
            language: keep(Field::Language, contact.language),
            best_time: keep(Field::BestTime, contact.best_time),
            note: keep(Field::Note, contact.note),
        },
        person: HandoverPerson {
            personnummer: keep(Field::Personnummer, number),
            birth_date: keep(Field::BirthDate, birth),
            kommunkod: keep(Field::Kommunkod, facts.residency.map(|r| r.kommunkod)),
        },
        eligibility: HandoverEligibility {
            outcome: verdict.outcome,
            provisional: verdict.provisional,
            reasons: verdict
                .reasons
                .iter()
                .map(|r| r.code().to_string())
                .collect(),
            basis: verdict.basis.clone(),
        },
        consent: consent.clone(),
        callback_promise: program.callback_promise.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swedish_numbers_in_every_common_form() {
        for input in [
            "070-123 45 67",
            "0701234567",
            "070 123 45 67",
            "+46 70 123 45 67",
            "+46701234567",
            "+46 (0)70-123 45 67",
            "0046 70 123 45 67",
            "(070) 123 45 67",
            " 070.123.45.67 ",
        ] {
            assert_eq!(normalize_phone(input), Ok("+46701234567".into()), "{input}");
        }
        assert_eq!(normalize_phone("08-123 456 78"), Ok("+46812345678".into()));
        assert_eq!(normalize_phone("0370-123 45"), Ok("+4637012345".into()));
        assert_eq!(normalize_phone("+47 912 34 567"), Ok("+4791234567".into()));
        assert_eq!(normalize_phone("0047 912 34 567"), Ok("+4791234567".into()));
    }

    #[test]
    fn wrong_numbers_are_refused_with_a_reason() {
        assert_eq!(
            normalize_phone("070-ABC 45 67"),
            Err(PhoneError::InvalidCharacters)
        );
        assert_eq!(normalize_phone("07012"), Err(PhoneError::TooShort));
        assert_eq!(normalize_phone("070123456789"), Err(PhoneError::TooLong));
        assert_eq!(
            normalize_phone("070123456"),
            Err(PhoneError::NotSwedish),
            "mobile with 8 digits"
        );
        assert_eq!(
            normalize_phone("701234567"),
            Err(PhoneError::NotSwedish),
            "no trunk 0"
        );
        assert_eq!(normalize_phone("+46 0 70"), Err(PhoneError::TooShort));
        assert_eq!(
            normalize_phone("+1234567890123456"),
            Err(PhoneError::TooLong)
        );
        assert_eq!(normalize_phone("12+3"), Err(PhoneError::InvalidCharacters));
        assert_eq!(normalize_phone(""), Err(PhoneError::TooShort));
        assert_eq!(PhoneError::NotSwedish.code(), "phone_invalid");
    }

    #[test]
    fn a_trunk_zero_after_the_country_code_is_dropped_and_premium_numbers_refused() {
        for input in [
            "+46 070-123 45 67",
            "+460701234567",
            "0046 070 123 45 67",
            "+46 (0)70 123 45 67",
        ] {
            assert_eq!(normalize_phone(input), Ok("+46701234567".into()), "{input}");
        }
        assert_eq!(
            normalize_phone("+46 08-123 456 78"),
            Ok("+46812345678".into())
        );
        for premium in [
            "0900-123 45 67",
            "0900 12 34 56",
            "0939-123 456",
            "0944-12 34 56",
            "+46 900 123 456",
            "+46 0939 123 456",
        ] {
            assert_eq!(
                normalize_phone(premium),
                Err(PhoneError::PremiumRate),
                "{premium}"
            );
        }
        assert_eq!(PhoneError::PremiumRate.code(), "phone_premium_rate");
        // Umeå (090) and Vännäs (0935) are ordinary area codes.
        assert_eq!(normalize_phone("090-14 00 00"), Ok("+4690140000".into()));
        assert_eq!(normalize_phone("0935-123 45"), Ok("+4693512345".into()));
        // What the rule says is what it accepts: dots, slashes and brackets are separators.
        assert_eq!(normalize_phone("070.123.45.67"), Ok("+46701234567".into()));
        assert_eq!(normalize_phone("070/123 45 67"), Ok("+46701234567".into()));
        assert!(PhoneError::InvalidCharacters.to_string().contains("dots"));
        assert_eq!(
            normalize_phone("070_123"),
            Err(PhoneError::InvalidCharacters)
        );
    }

    #[test]
    fn invisible_text_is_empty_and_bidi_controls_are_refused() {
        for invisible in [
            "\u{200B}\u{200B}\u{200B}",
            "\u{200D} \u{FEFF}",
            "\u{3164}",
            "\u{2060}\u{00AD}",
        ] {
            let c = ContactDetails {
                name: Some(invisible.into()),
                ..Default::default()
            };
            assert_eq!(c.validate().unwrap().name, None, "{invisible:?}");
        }
        for bidi in ["Kim\u{202E}nna", "\u{2066}Kim\u{2069}", "Kim\u{200F}"] {
            let c = ContactDetails {
                name: Some(bidi.into()),
                ..Default::default()
            };
            let err = c.validate().unwrap_err();
            assert_eq!(
                (err.field(), err.code()),
                (Some("name"), "bidi_control"),
                "{bidi:?}"
            );
            assert!(
                !err.message(Lang::Sv).contains("Kim"),
                "the error repeats the input"
            );
        }
        let note = ContactDetails {
            note: Some("ring efter 14\u{202D}".into()),
            ..Default::default()
        };
        assert_eq!(note.validate().unwrap_err().field(), Some("note"));
    }

    #[test]
    fn contact_fields_are_trimmed_and_bounded() {
        let c = ContactDetails {
            name: Some("  Kim  ".into()),
            phone: Some("070-123 45 67".into()),
            language: Some(" ".into()),
            best_time: None,
            note: Some("x".repeat(501)),
        };
        let err = c.validate().unwrap_err();
        assert_eq!(err.field(), Some("note"));
        assert_eq!(err.code(), "too_long");
        let c = ContactDetails {
            note: Some("Träffades vid Plattan".into()),
            ..c
        };
        let v = c.validate().unwrap();
        assert_eq!(v.name.as_deref(), Some("Kim"));
        assert_eq!(v.language, None);
        let bad = ContactDetails {
            name: Some("Kim\u{0}".into()),
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().code(), "control_characters");
    }

    #[test]
    fn typed_facts_name_the_field_in_the_one_vocabulary() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let cases = [
            (
                TypedFacts {
                    identity_number: Some("19900412-1234".into()),
                    ..TypedFacts::default()
                },
                "identity_number",
                "invalid_checksum",
            ),
            (
                TypedFacts {
                    birth_date: Some("1990-02-30".into()),
                    ..TypedFacts::default()
                },
                "birth_date",
                "invalid_date",
            ),
            (
                TypedFacts {
                    municipality: Some("Atlantis".into()),
                    ..TypedFacts::default()
                },
                "municipality",
                "unknown_municipality",
            ),
            (
                TypedFacts {
                    postal_code: Some("12".into()),
                    ..TypedFacts::default()
                },
                "postal_code",
                "invalid_postal_code",
            ),
        ];
        for (typed, field, code) in cases {
            let err = typed.parse(today).unwrap_err();
            assert_eq!((err.field(), err.code()), (Some(field), code), "{err}");
        }
        // Blank is absent; a residence typed without provenance is stated.
        let blank = TypedFacts {
            identity_number: Some("  ".into()),
            municipality: Some("Stockholm".into()),
            ..TypedFacts::default()
        };
        let facts = blank.parse(today).unwrap();
        assert!(facts.age.is_none());
        let residency = facts.residency.unwrap();
        assert_eq!(residency.kommunkod, "0180");
        assert_eq!(residency.provenance, Provenance::Stated);
    }

    #[test]
    fn a_draft_update_keeps_what_is_absent_and_clears_what_is_blank() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T21:15:00+01:00").unwrap();
        let mut d = Draft::new("d-1".into(), "kalmar".into(), at);
        d.apply(DraftUpdate {
            name: Some("Kim".into()),
            phone: Some("070-123 45 67".into()),
            postal_code: Some("392 30".into()),
            ..DraftUpdate::default()
        });
        let r = d.residence.clone().unwrap();
        assert_eq!(
            r.provenance,
            Provenance::Stated,
            "a bare residence is stated"
        );
        assert_eq!(r.postal_code.as_deref(), Some("392 30"));
        d.apply(DraftUpdate {
            phone: Some(" ".into()),
            municipality: Some("Kalmar".into()),
            provenance: Some(Provenance::Document),
            ..DraftUpdate::default()
        });
        assert_eq!(d.contact.name.as_deref(), Some("Kim"), "absent keeps");
        assert_eq!(d.contact.phone, None, "blank clears");
        let r = d.residence.clone().unwrap();
        assert_eq!(
            (
                r.municipality.as_deref(),
                r.postal_code.as_deref(),
                r.provenance
            ),
            (Some("Kalmar"), Some("392 30"), Provenance::Document)
        );
        // Typed values are kept as typed, wrong or not.
        d.apply(DraftUpdate {
            identity_number: Some("not a number".into()),
            ..DraftUpdate::default()
        });
        assert_eq!(d.identity_number.as_deref(), Some("not a number"));
        assert_eq!(
            d.typed_facts().identity_number.as_deref(),
            Some("not a number")
        );
    }

    #[test]
    fn errors_name_the_field_in_both_languages() {
        let e = field_error("phone", Problem::Phone(PhoneError::TooShort));
        assert_eq!(
            e.message(Lang::Sv),
            "Telefon: Telefonnumret har för få siffror."
        );
        // A person reads the field's name, not its code (the code is in `field()`).
        assert_eq!(
            e.message(Lang::En),
            "Phone: the phone number has too few digits"
        );
        assert_eq!(e.to_string(), "phone: the phone number has too few digits");
        let e = field_error("birth_date", Problem::Missing);
        assert_eq!(
            e.message(Lang::En),
            "Date of birth: is required by the program"
        );
    }
}

debug_without_personal_data!(ContactDetails);
debug_without_personal_data!(ResidenceInput, provenance);
debug_without_personal_data!(Draft, draft_id, program_id);
debug_without_personal_data!(TypedFacts, provenance);
debug_without_personal_data!(DraftUpdate, provenance);
debug_without_personal_data!(ValidContact);
debug_without_personal_data!(HandoverPerson);
debug_without_personal_data!(HandoverPayload, handover_id, program_id);
