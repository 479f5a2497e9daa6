//! Stateless checks an app calls while the officer types: identity numbers, municipalities and
//! postal codes, phone numbers and contact details. All are pure and take microseconds: safe on
//! the UI thread.

use crate::error::{ApiError, OnField};
use crate::{parse_date, today};
use lotsa_core::{geo, identity, referral};

/// Which kind of Swedish identity number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum IdKind {
    /// Personnummer (folkbokförd in Sweden, or once was).
    Personnummer,
    /// Samordningsnummer (not folkbokförd).
    Samordningsnummer,
}

/// A valid identity number.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct IdentityCheck {
    /// Personnummer or samordningsnummer.
    pub kind: IdKind,
    /// 12 digits, `YYYYMMDDNNNC`.
    pub normalized: String,
    /// As far as known: `1990-04-12`, `1990-04` or `1990`.
    pub birth_date: String,
    /// Age in completed years, when it can be decided.
    pub age: Option<u32>,
    /// Youngest possible age.
    pub age_min: u32,
    /// Oldest possible age.
    pub age_max: u32,
    /// False when even the youngest possible age is above 110: the number is valid, but its
    /// century (which the check digit does not cover) is most likely mistyped. The app asks the
    /// officer to check it; eligibility leaves such a verdict undetermined (`age_implausible`).
    pub plausible: bool,
}

/// Checks a personnummer or samordningsnummer as typed. `on` is the date to compute the age on
/// (`YYYY-MM-DD`); `None` means today in Stockholm.
#[uniffi::export]
pub fn check_identity_number(
    number: String,
    on: Option<String>,
) -> Result<IdentityCheck, ApiError> {
    let on = match on {
        Some(d) => parse_date(&d, "on")?,
        None => today(),
    };
    let n = identity::parse(&number, on).on_field("identity_number")?;
    let age = n.age_on(on);
    Ok(IdentityCheck {
        kind: match n.kind() {
            identity::IdKind::Personnummer => IdKind::Personnummer,
            identity::IdKind::Samordningsnummer => IdKind::Samordningsnummer,
        },
        normalized: n.normalized().to_string(),
        birth_date: n.birth().to_iso(),
        age: age.exact(),
        age_min: age.min,
        age_max: age.max,
        plausible: n.plausible_on(on),
    })
}

/// A municipality (kommun).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Municipality {
    /// The 4-digit kommunkod.
    pub kommunkod: String,
    /// Its name.
    pub name: String,
    /// The county's 2-digit code.
    pub county_code: String,
    /// The county's name.
    pub county_name: String,
}

impl From<&geo::Municipality> for Municipality {
    fn from(m: &geo::Municipality) -> Municipality {
        Municipality {
            kommunkod: m.code.to_string(),
            name: m.name.to_string(),
            county_code: m.county_code.to_string(),
            county_name: m.county().name.to_string(),
        }
    }
}

/// Finds a municipality by kommunkod or name, forgiving case, diacritics and "kommun"/"stad".
#[uniffi::export]
pub fn find_municipality(query: String) -> Result<Municipality, ApiError> {
    Ok(geo::find_municipality(&query)
        .on_field("municipality")?
        .into())
}

/// Every municipality, sorted by kommunkod (for a picker).
#[uniffi::export]
pub fn all_municipalities() -> Vec<Municipality> {
    geo::municipalities()
        .iter()
        .map(Municipality::from)
        .collect()
}

/// The municipalities a postal code most likely lies in. A hint, never proof of residency.
#[uniffi::export]
pub fn municipalities_for_postal_code(postal_code: String) -> Result<Vec<Municipality>, ApiError> {
    let hint = geo::postal_hint(&postal_code).on_field("postal_code")?;
    Ok(hint
        .municipalities
        .into_iter()
        .map(Municipality::from)
        .collect())
}

/// Normalises a phone number to E.164 (`070-123 45 67` → `+46701234567`).
#[uniffi::export]
pub fn normalize_phone(phone: String) -> Result<String, ApiError> {
    referral::normalize_phone(&phone).on_field("phone")
}

/// Contact details of the person (all optional; which are required depends on the program).
#[derive(Clone, PartialEq, Eq, Default, uniffi::Record)]
pub struct ContactDetails {
    /// Name or chosen name.
    #[uniffi(default = None)]
    pub name: Option<String>,
    /// Phone number as typed, or E.164 after validation.
    #[uniffi(default = None)]
    pub phone: Option<String>,
    /// Preferred language for the call.
    #[uniffi(default = None)]
    pub language: Option<String>,
    /// Best time to call.
    #[uniffi(default = None)]
    pub best_time: Option<String>,
    /// A short note (at most 500 characters).
    #[uniffi(default = None)]
    pub note: Option<String>,
}

impl From<ContactDetails> for referral::ContactDetails {
    fn from(c: ContactDetails) -> referral::ContactDetails {
        referral::ContactDetails {
            name: c.name,
            phone: c.phone,
            language: c.language,
            best_time: c.best_time,
            note: c.note,
        }
    }
}

/// Checks the form of contact details: returns them trimmed with the phone in E.164, or the first
/// problem with its field.
#[uniffi::export]
pub fn validate_contact(contact: ContactDetails) -> Result<ContactDetails, ApiError> {
    let v = referral::ContactDetails::from(contact).validate()?;
    Ok(ContactDetails {
        name: v.name,
        phone: v.phone,
        language: v.language,
        best_time: v.best_time,
        note: v.note,
    })
}

/// The municipalities of a region or county (`Region Stockholm`, `Stockholms län`, `Skåne`),
/// sorted by kommunkod: the picker to show after `find_municipality` refused the query as
/// `region_not_municipality`. Anything else is an `InvalidInput` on `municipality`
/// (`municipality_not_region` for a municipality's name).
#[uniffi::export]
pub fn region_municipalities(query: String) -> Result<Vec<Municipality>, ApiError> {
    let municipalities = geo::region_municipalities(&query).on_field("municipality")?;
    Ok(municipalities.into_iter().map(Municipality::from).collect())
}
