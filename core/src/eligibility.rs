//! Eligibility on the street: facts about a person + a program + today → a verdict.
//!
//! The pilots' hardest lesson was people turned away because they lived in another municipality,
//! often after a long wait. So the verdict comes at once, says why in words an officer can read
//! out, says when it is only provisional (residency the person merely stated), and routes to the
//! other configured programs that would accept the person. It never guesses: an age that cannot be
//! decided from a loose samordningsnummer, or a municipality known only from a postal code, makes
//! the verdict *undetermined* with what is missing. Nor does it trust an age nobody has: above
//! [`identity::MAX_PLAUSIBLE_AGE`] the century of the number (which its check digit does not
//! cover) or the typed year is far more likely wrong than the person 117, and a 17-year-old typed
//! `19…` for `20…` must not come out eligible; so that too is *undetermined* (`age_implausible`).
//! Every age reason names the age it was decided on, so the officer hears it.
//!
//! The verdict carries its [`Basis`] (age in years, kommunkod, provenance, which kind of number)
//! so that it can travel to the clinic instead of the personnummer itself.

use crate::geo;
use crate::identity::{self, AgeRange, IdKind, IdentityNumber};
use crate::program::{Bundle, Program};
use crate::text::{Lang, Reasoned, Texts};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// How a person's residency is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// The person says so: the verdict is provisional.
    Stated,
    /// Shown on an ID document or letter.
    Document,
    /// Confirmed in the population register (folkbokföringen).
    Register,
}

impl Provenance {
    /// `stated`, `document`, `register`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::Stated => "stated",
            Provenance::Document => "document",
            Provenance::Register => "register",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(text: &str) -> Option<Provenance> {
        match text.trim().to_ascii_lowercase().as_str() {
            "stated" => Some(Provenance::Stated),
            "document" => Some(Provenance::Document),
            "register" => Some(Provenance::Register),
            _ => None,
        }
    }
}

/// What tells us the person's age.
#[derive(Debug, Clone, PartialEq)]
pub enum AgeEvidence {
    /// A parsed personnummer or samordningsnummer.
    Number(IdentityNumber),
    /// A date of birth (from a document or as stated).
    BirthDate(NaiveDate),
}

impl AgeEvidence {
    fn age_on(&self, on: NaiveDate) -> AgeRange {
        match self {
            AgeEvidence::Number(n) => n.age_on(on),
            AgeEvidence::BirthDate(d) => {
                let a = identity::age_on(*d, on);
                AgeRange { min: a, max: a }
            }
        }
    }

    fn source(&self) -> AgeSource {
        match self {
            AgeEvidence::Number(n) => match n.kind() {
                IdKind::Personnummer => AgeSource::Personnummer,
                IdKind::Samordningsnummer => AgeSource::Samordningsnummer,
            },
            AgeEvidence::BirthDate(_) => AgeSource::BirthDate,
        }
    }
}

/// Where the person lives, resolved to a kommunkod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Residency {
    /// The municipality.
    pub kommunkod: String,
    /// How it is known.
    pub provenance: Provenance,
    /// True when the kommunkod is only a hint from a postal code.
    pub from_postal_code: bool,
}

impl Residency {
    /// Residency from a kommunkod or municipality name as typed (forgiving case and diacritics).
    pub fn from_municipality(
        query: &str,
        provenance: Provenance,
    ) -> Result<Residency, geo::GeoError> {
        let m = geo::find_municipality(query)?;
        Ok(Residency {
            kommunkod: m.code.to_string(),
            provenance,
            from_postal_code: false,
        })
    }

    /// Residency hinted by a postal code. Only a hint: a postal area can straddle municipalities
    /// and the table covers about 82 % of codes. When the code maps to several municipalities the
    /// first is kept and the verdict stays undetermined anyway.
    pub fn from_postal_code(
        code: &str,
        provenance: Provenance,
    ) -> Result<Residency, geo::GeoError> {
        let hint = geo::postal_hint(code)?;
        let m = hint
            .municipalities
            .first()
            .ok_or(geo::GeoError::UnknownPostalCode)?;
        Ok(Residency {
            kommunkod: m.code.to_string(),
            provenance,
            from_postal_code: true,
        })
    }
}

/// The facts an officer has about a person.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    /// Age evidence, if any.
    pub age: Option<AgeEvidence>,
    /// Residency, if known.
    pub residency: Option<Residency>,
}

/// The three possible answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The program can be offered.
    Eligible,
    /// The program cannot be offered (see routing).
    NotEligible,
    /// Something is missing or cannot be decided; the reasons say what.
    Undetermined,
}

impl Outcome {
    /// `eligible`, `not_eligible`, `undetermined`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Eligible => "eligible",
            Outcome::NotEligible => "not_eligible",
            Outcome::Undetermined => "undetermined",
        }
    }
}

/// Which kind of evidence gave the age.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgeSource {
    /// A personnummer.
    Personnummer,
    /// A samordningsnummer.
    Samordningsnummer,
    /// A date of birth.
    BirthDate,
}

/// One reason behind a verdict. Each has a stable code (for statistics: ineligibility by reason)
/// and a sentence in Swedish and English.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Reason {
    /// Old enough.
    AgeMet {
        /// The program's minimum.
        minimum: u32,
        /// Youngest possible age.
        min: u32,
        /// Oldest possible age (equal to `min` when the age is exact).
        max: u32,
    },
    /// Too young.
    TooYoung {
        /// The program's minimum.
        minimum: u32,
        /// The person's age (the highest possible, if a range).
        age: u32,
    },
    /// The age cannot be decided against the minimum (loose samordningsnummer).
    AgeUndetermined {
        /// The program's minimum.
        minimum: u32,
        /// Youngest possible age.
        min: u32,
        /// Oldest possible age.
        max: u32,
    },
    /// No number and no date of birth.
    AgeMissing,
    /// The age is above [`identity::MAX_PLAUSIBLE_AGE`]: most likely a mistyped century or year
    /// of birth. Undetermined, never taken as "old enough".
    AgeImplausible {
        /// The age the number or date gives (the youngest possible, if a range).
        age: u32,
    },
    /// Folkbokförd in the program's area.
    Resident {
        /// The kommunkod.
        kommunkod: String,
    },
    /// Lives in a municipality the program does not cover.
    NotResident {
        /// The kommunkod.
        kommunkod: String,
    },
    /// Residency only as stated: the verdict is provisional.
    ResidencyStated,
    /// The program does not accept residency that is only stated.
    StatedResidencyNotAccepted,
    /// Residency is only a postal-code hint.
    ResidencyFromPostalCode {
        /// The hinted kommunkod.
        kommunkod: String,
    },
    /// Where the person lives is not known.
    ResidencyMissing,
    /// A samordningsnummer is issued to people who are not folkbokförda.
    SamordningsnummerNotFolkbokford,
}

fn municipality_name(kommunkod: &str) -> &str {
    geo::municipality_by_code(kommunkod)
        .map(|m| m.name)
        .unwrap_or(kommunkod)
}

impl Reason {
    /// Whether this reason stops the program being offered (not eligible).
    pub fn excludes(&self) -> bool {
        matches!(
            self,
            Reason::TooYoung { .. }
                | Reason::NotResident { .. }
                | Reason::SamordningsnummerNotFolkbokford
        )
    }

    /// Whether this reason leaves the verdict undetermined.
    pub fn leaves_open(&self) -> bool {
        matches!(
            self,
            Reason::AgeUndetermined { .. }
                | Reason::AgeMissing
                | Reason::AgeImplausible { .. }
                | Reason::StatedResidencyNotAccepted
                | Reason::ResidencyFromPostalCode { .. }
                | Reason::ResidencyMissing
        )
    }
}

impl Reasoned for Reason {
    fn code(&self) -> &'static str {
        match self {
            Reason::AgeMet { .. } => "age_met",
            Reason::TooYoung { .. } => "too_young",
            Reason::AgeUndetermined { .. } => "age_undetermined",
            Reason::AgeMissing => "age_missing",
            Reason::AgeImplausible { .. } => "age_implausible",
            Reason::Resident { .. } => "resident",
            Reason::NotResident { .. } => "not_resident",
            Reason::ResidencyStated => "residency_stated",
            Reason::StatedResidencyNotAccepted => "stated_residency_not_accepted",
            Reason::ResidencyFromPostalCode { .. } => "residency_from_postal_code",
            Reason::ResidencyMissing => "residency_missing",
            Reason::SamordningsnummerNotFolkbokford => "samordningsnummer_not_folkbokford",
        }
    }

    fn message(&self, lang: Lang) -> String {
        let (sv, en) = match self {
            Reason::AgeMet { minimum, min, max } => {
                let age = if min == max { min.to_string() } else { format!("{min}–{max}") };
                (format!("Personen är {age} år (programmet kräver att man har fyllt {minimum})."), format!("The person is {age} (the program requires at least {minimum})."))
            }
            Reason::TooYoung { minimum, age } => {
                (format!("Personen är {age} år; programmet kräver att man har fyllt {minimum}."), format!(                         "The person is {age}; the program requires an age of at least {minimum}."                     ))
            }
            Reason::AgeUndetermined { minimum, min, max } => {
                (format!("Åldern kan inte avgöras ur numret (mellan {min} och {max} år) mot gränsen {minimum} år: be om födelsedatum från en handling."), format!("The age cannot be decided from the number (between {min} and {max}) against the limit of {minimum}: ask for a date of birth from a document."))
            }
            Reason::AgeMissing => {
                ("Ålder saknas: ange personnummer, samordningsnummer eller födelsedatum.".to_string(), "Age is missing: give a personnummer, samordningsnummer or date of birth.".to_string())
            }
            Reason::AgeImplausible { age } => {
                (format!("Personen skulle vara {age} år: kontrollera århundradet i numret eller födelseåret."), format!("The person would be {age}: check the century of the number or the year of birth."))
            }
            Reason::Resident { kommunkod } => {
                let n = municipality_name(kommunkod);
                (format!("Bor i {n} ({kommunkod}), som programmet omfattar."), format!("Lives in {n} ({kommunkod}), which the program covers."))
            }
            Reason::NotResident { kommunkod } => {
                let n = municipality_name(kommunkod);
                (format!("Bor i {n} ({kommunkod}), som programmet inte omfattar."), format!("Lives in {n} ({kommunkod}), which the program does not cover."))
            }
            Reason::ResidencyStated => {
                ("Bostadsorten bygger på personens egen uppgift: beskedet är preliminärt och mottagningen kontrollerar folkbokföringen.".to_string(), "Residency rests on the person's own word: the verdict is provisional and the clinic checks the population register.".to_string())
            }
            Reason::StatedResidencyNotAccepted => {
                ("Programmet godtar inte enbart egen uppgift om bostadsort: se en handling eller kontrollera folkbokföringen.".to_string(), "The program does not accept residency on the person's word alone: see a document or check the register.".to_string())
            }
            Reason::ResidencyFromPostalCode { kommunkod } => {
                let n = municipality_name(kommunkod);
                (format!("Postnumret tyder på {n} ({kommunkod}), men ett postnummer avgör inte folkbokföringen: fråga efter kommunen."), format!("The postal code suggests {n} ({kommunkod}), but a postal code does not decide residency: ask for the municipality."))
            }
            Reason::ResidencyMissing => {
                ("Bostadsort saknas: fråga i vilken kommun personen är folkbokförd.".to_string(), "Residency is missing: ask which municipality the person is registered in.".to_string())
            }
            Reason::SamordningsnummerNotFolkbokford => {
                ("Ett samordningsnummer ges till den som inte är folkbokförd i Sverige, och programmet kräver folkbokföring.".to_string(), "A samordningsnummer is issued to people who are not registered as residents, and the program requires registered residency.".to_string())
            }
        };
        lang.pick(sv, en)
    }
}

/// What the verdict rests on: enough for the clinic to trust it without the personnummer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Basis {
    /// Which evidence gave the age, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_source: Option<AgeSource>,
    /// Age in completed years (youngest possible).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_min: Option<u32>,
    /// Age in completed years (oldest possible; equal to `age_min` when exact).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_max: Option<u32>,
    /// The program's minimum age.
    pub minimum_age: u32,
    /// The municipality of residence, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kommunkod: Option<String>,
    /// How residency is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub residency_provenance: Option<Provenance>,
    /// True when residency is only a postal-code hint.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub residency_from_postal_code: bool,
    /// The Stockholm calendar date the verdict was made on.
    pub decided_on: NaiveDate,
}

/// Another program that would accept the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Program id.
    pub program_id: String,
    /// Program name.
    pub program_name: String,
    /// The receiving clinic.
    pub clinic_name: String,
    /// What it promises.
    pub callback_promise: Texts,
    /// Whether that verdict too is only provisional.
    pub provisional: bool,
}

/// The answer for one person and one program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The program assessed.
    pub program_id: String,
    /// Eligible, not eligible or undetermined.
    pub outcome: Outcome,
    /// True when eligible only on stated residency (the clinic confirms).
    pub provisional: bool,
    /// Whether a referral may be handed over on this verdict (eligible, and if provisional, the
    /// program allows provisional referrals).
    pub may_refer: bool,
    /// Why, in order: age first, then residency.
    pub reasons: Vec<Reason>,
    /// Other configured programs that would accept this person (only when this one does not).
    pub routing: Vec<Route>,
    /// What it rests on.
    pub basis: Basis,
}

impl Verdict {
    /// The reasons as sentences in a language.
    pub fn explain(&self, lang: Lang) -> Vec<String> {
        self.reasons.iter().map(|r| r.message(lang)).collect()
    }

    /// Codes of the reasons that made it not eligible or undetermined (what the officer is told).
    pub fn blocking_codes(&self) -> Vec<&'static str> {
        self.reasons
            .iter()
            .filter(|r| r.excludes() || r.leaves_open())
            .map(|r| r.code())
            .collect()
    }

    /// The codes the anonymous statistics count for this verdict: only a verdict that was really
    /// reached — *not eligible*, for the reasons that excluded the person. Facts that are merely
    /// missing or undecided (an empty draft, an implausible age) are no verdict and count nothing.
    pub fn counted_codes(&self) -> Vec<&'static str> {
        if self.outcome != Outcome::NotEligible {
            return Vec::new();
        }
        self.reasons
            .iter()
            .filter(|r| r.excludes())
            .map(|r| r.code())
            .collect()
    }
}

/// Assesses one program, without routing.
pub fn assess_program(facts: &Facts, program: &Program, today: NaiveDate) -> Verdict {
    let rules = &program.eligibility;
    let mut reasons = Vec::new();
    let mut basis = Basis {
        age_source: None,
        age_min: None,
        age_max: None,
        minimum_age: rules.minimum_age,
        kommunkod: None,
        residency_provenance: None,
        residency_from_postal_code: false,
        decided_on: today,
    };

    match &facts.age {
        None => reasons.push(Reason::AgeMissing),
        Some(evidence) => {
            let age = evidence.age_on(today);
            basis.age_source = Some(evidence.source());
            basis.age_min = Some(age.min);
            basis.age_max = Some(age.max);
            reasons.push(match age.at_least(rules.minimum_age) {
                // Checked first: 117 is "old enough" only if the century is right.
                _ if !age.plausible() => Reason::AgeImplausible { age: age.min },
                Some(true) => Reason::AgeMet {
                    minimum: rules.minimum_age,
                    min: age.min,
                    max: age.max,
                },
                Some(false) => Reason::TooYoung {
                    minimum: rules.minimum_age,
                    age: age.max,
                },
                None => Reason::AgeUndetermined {
                    minimum: rules.minimum_age,
                    min: age.min,
                    max: age.max,
                },
            });
        }
    }

    let samordningsnummer = matches!(
        &facts.age,
        Some(AgeEvidence::Number(n)) if n.kind() == IdKind::Samordningsnummer
    );
    let mut provisional = false;
    let excluded_by_number = samordningsnummer && !rules.samordningsnummer_can_qualify;
    if excluded_by_number {
        reasons.push(Reason::SamordningsnummerNotFolkbokford);
    }
    match &facts.residency {
        None => reasons.push(Reason::ResidencyMissing),
        Some(r) => {
            basis.kommunkod = Some(r.kommunkod.clone());
            // A samordningsnummer holder's residency is never more than their own word.
            basis.residency_provenance = Some(if samordningsnummer {
                Provenance::Stated
            } else {
                r.provenance
            });
            basis.residency_from_postal_code = r.from_postal_code;
            if r.from_postal_code {
                // A hint decides nothing, neither in nor out of the program's area.
                reasons.push(Reason::ResidencyFromPostalCode {
                    kommunkod: r.kommunkod.clone(),
                });
            } else if !program.covers(&r.kommunkod) {
                reasons.push(Reason::NotResident {
                    kommunkod: r.kommunkod.clone(),
                });
            } else {
                reasons.push(Reason::Resident {
                    kommunkod: r.kommunkod.clone(),
                });
                // A samordningsnummer holder is not folkbokförd: whatever they show, residency
                // is at best their own word.
                if (r.provenance == Provenance::Stated || samordningsnummer) && !excluded_by_number
                {
                    if rules.stated_residency_qualifies {
                        reasons.push(Reason::ResidencyStated);
                        provisional = true;
                    } else {
                        reasons.push(Reason::StatedResidencyNotAccepted);
                    }
                }
            }
        }
    }

    let outcome = if reasons.iter().any(Reason::excludes) {
        Outcome::NotEligible
    } else if reasons.iter().any(Reason::leaves_open) {
        Outcome::Undetermined
    } else {
        Outcome::Eligible
    };
    let provisional = provisional && outcome == Outcome::Eligible;
    Verdict {
        program_id: program.id.clone(),
        outcome,
        provisional,
        may_refer: outcome == Outcome::Eligible && (!provisional || rules.provisional_allowed),
        reasons,
        routing: Vec::new(),
        basis,
    }
}

/// Assesses a program of the bundle and, when it cannot take the person, lists the other
/// programs that would.
pub fn assess(facts: &Facts, bundle: &Bundle, program: &Program, today: NaiveDate) -> Verdict {
    let mut verdict = assess_program(facts, program, today);
    if verdict.outcome != Outcome::Eligible {
        verdict.routing = routes(facts, bundle, Some(&program.id), today);
    }
    verdict
}

/// Every program in the bundle (except `excluding`) that would accept the person.
pub fn routes(
    facts: &Facts,
    bundle: &Bundle,
    excluding: Option<&str>,
    today: NaiveDate,
) -> Vec<Route> {
    bundle
        .programs()
        .iter()
        .filter(|p| Some(p.id.as_str()) != excluding)
        .filter_map(|p| {
            let v = assess_program(facts, p, today);
            (v.outcome == Outcome::Eligible).then(|| Route {
                program_id: p.id.clone(),
                program_name: p.name.clone(),
                clinic_name: p.clinic.name.clone(),
                callback_promise: p.callback_promise.clone(),
                provisional: v.provisional,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::stockholm_noon;
    use crate::crypto::SigningKey;
    use crate::program::{verify, ProgramSet, EXAMPLE_PROGRAMS_JSON};

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    fn bundle() -> Bundle {
        let key = SigningKey::generate().unwrap();
        let signed = ProgramSet::from_json(EXAMPLE_PROGRAMS_JSON)
            .unwrap()
            .sign(&key)
            .unwrap();
        verify(&signed, &key.public_key(), stockholm_noon(today())).unwrap()
    }

    fn facts(number: &str, municipality: &str, provenance: Provenance) -> Facts {
        Facts {
            age: Some(AgeEvidence::Number(
                identity::parse(number, today()).unwrap(),
            )),
            residency: Some(Residency::from_municipality(municipality, provenance).unwrap()),
        }
    }

    fn codes(v: &Verdict) -> Vec<&'static str> {
        v.reasons.iter().map(|r| r.code()).collect()
    }

    #[test]
    fn a_stockholm_resident_with_a_document_is_eligible() {
        let b = bundle();
        let p = b.program("lots-for-livet").unwrap();
        let v = assess(
            &facts("19900412-1233", "Stockholm", Provenance::Document),
            &b,
            p,
            today(),
        );
        assert_eq!(v.outcome, Outcome::Eligible, "{v:?}");
        assert!(!v.provisional && v.may_refer);
        assert_eq!(codes(&v), ["age_met", "resident"]);
        assert!(v.routing.is_empty());
        assert_eq!(v.basis.age_min, Some(36));
        assert_eq!(v.basis.kommunkod.as_deref(), Some("0180"));
        assert_eq!(v.basis.age_source, Some(AgeSource::Personnummer));
    }

    #[test]
    fn stated_residency_is_provisional() {
        let b = bundle();
        let p = b.program("lots-for-livet").unwrap();
        let v = assess(
            &facts("199004121233", "stockholms stad", Provenance::Stated),
            &b,
            p,
            today(),
        );
        assert_eq!(v.outcome, Outcome::Eligible);
        assert!(v.provisional && v.may_refer);
        assert_eq!(codes(&v), ["age_met", "resident", "residency_stated"]);
        // Kalmar does not accept stated residency.
        let k = b.program("kalmar").unwrap();
        let v = assess(
            &facts("199004121233", "Kalmar", Provenance::Stated),
            &b,
            k,
            today(),
        );
        assert_eq!(v.outcome, Outcome::Undetermined);
        assert_eq!(v.blocking_codes(), ["stated_residency_not_accepted"]);
        assert!(!v.may_refer);
    }

    #[test]
    fn a_gislaved_resident_is_routed_to_snackan() {
        let b = bundle();
        let p = b.program("lots-for-livet").unwrap();
        let v = assess(
            &facts("19900412-1233", "Gislaved", Provenance::Register),
            &b,
            p,
            today(),
        );
        assert_eq!(v.outcome, Outcome::NotEligible);
        assert_eq!(v.blocking_codes(), ["not_resident"]);
        let ids: Vec<_> = v.routing.iter().map(|r| r.program_id.as_str()).collect();
        assert_eq!(ids, ["snackan-gislaved", "snackan-ggvv"]);
        assert!(v.explain(Lang::Sv)[1].contains("Gislaved"));
    }

    #[test]
    fn a_varnamo_resident_is_routed_only_to_the_region() {
        let b = bundle();
        let p = b.program("snackan-gislaved").unwrap();
        let v = assess(
            &facts("19900412-1233", "Värnamo", Provenance::Document),
            &b,
            p,
            today(),
        );
        assert_eq!(v.outcome, Outcome::NotEligible);
        let ids: Vec<_> = v.routing.iter().map(|r| r.program_id.as_str()).collect();
        assert_eq!(ids, ["snackan-ggvv"]);
    }

    #[test]
    fn a_solna_resident_has_nowhere_to_go() {
        let b = bundle();
        let p = b.program("lots-for-livet").unwrap();
        let v = assess(
            &facts("19900412-1233", "Solna", Provenance::Stated),
            &b,
            p,
            today(),
        );
        assert_eq!(v.outcome, Outcome::NotEligible);
        assert!(v.routing.is_empty());
        assert!(v.explain(Lang::En)[1].contains("Solna (0184)"));
    }

    #[test]
    fn a_seventeen_year_old_is_too_young_everywhere() {
        let b = bundle();
        let p = b.program("lots-for-livet").unwrap();
        // Born 24 Nov 2008: turns 18 tomorrow.
        let n = format!("20081124-{}", serial_for("0811240", "12"));
        let v = assess(
            &facts(&n, "Stockholm", Provenance::Register),
            &b,
            p,
            today(),
        );
        assert_eq!(v.outcome, Outcome::NotEligible);
        assert_eq!(
            v.reasons[0],
            Reason::TooYoung {
                minimum: 18,
                age: 17
            }
        );
        assert!(v.routing.is_empty());
        // On the birthday itself the same person is eligible.
        let tomorrow = today().succ_opt().unwrap();
        let f = facts(&n, "Stockholm", Provenance::Register);
        assert_eq!(assess(&f, &b, p, tomorrow).outcome, Outcome::Eligible);
    }

    #[test]
    fn a_samordningsnummer_cannot_prove_folkbokforing() {
        let b = bundle();
        let p = b.program("lots-for-livet").unwrap();
        // 12 April 1990 + 60 = day 72.
        let n = format!("19900472-{}", serial_for("9004722", "23"));
        let v = assess(
            &facts(&n, "Stockholm", Provenance::Document),
            &b,
            p,
            today(),
        );
        assert_eq!(v.outcome, Outcome::NotEligible);
        assert!(codes(&v).contains(&"samordningsnummer_not_folkbokford"));
        assert_eq!(v.basis.age_source, Some(AgeSource::Samordningsnummer));
    }

    #[test]
    fn a_samordningsnummer_with_unknown_day_can_leave_age_undetermined() {
        let b = bundle();
        let mut p = b.program("lots-for-livet").unwrap().clone();
        p.eligibility.samordningsnummer_can_qualify = true;
        // Born in November 2008, day unknown (day 60): 17 or 18 on 23 Nov 2026.
        let n = format!("20081160-{}", serial_for("0811602", "34"));
        let f = facts(&n, "Stockholm", Provenance::Stated);
        let v = assess_program(&f, &p, today());
        assert_eq!(v.outcome, Outcome::Undetermined, "{v:?}");
        assert_eq!(
            v.reasons[0],
            Reason::AgeUndetermined {
                minimum: 18,
                min: 17,
                max: 18
            }
        );
        // A month later it is decided.
        let later = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let v = assess_program(&f, &p, later);
        assert_eq!(v.outcome, Outcome::Eligible);
        assert!(
            v.provisional,
            "a samordningsnummer holder's residency is never more than stated"
        );
        let f = facts(&n, "Stockholm", Provenance::Register);
        let v = assess_program(&f, &p, later);
        assert_eq!(v.basis.residency_provenance, Some(Provenance::Stated));
    }

    #[test]
    fn a_postal_code_is_only_a_hint() {
        let b = bundle();
        let p = b.program("lots-for-livet").unwrap();
        let f = Facts {
            age: Some(AgeEvidence::BirthDate(
                NaiveDate::from_ymd_opt(1980, 1, 1).unwrap(),
            )),
            residency: Some(Residency::from_postal_code("111 22", Provenance::Stated).unwrap()),
        };
        let v = assess(&f, &b, p, today());
        assert_eq!(v.outcome, Outcome::Undetermined);
        assert_eq!(v.blocking_codes(), ["residency_from_postal_code"]);
        assert!(v.basis.residency_from_postal_code);
        assert_eq!(v.basis.age_source, Some(AgeSource::BirthDate));
        // Outside the program's area it is no firmer: a hint never turns a person away.
        let f = Facts {
            residency: Some(Residency::from_postal_code("332 30", Provenance::Stated).unwrap()),
            ..f
        };
        let v = assess(&f, &b, p, today());
        assert_eq!(v.outcome, Outcome::Undetermined);
        assert_eq!(v.blocking_codes(), ["residency_from_postal_code"]);
        assert!(v.explain(Lang::En)[1].contains("Gislaved"));
    }

    #[test]
    fn missing_facts_say_what_to_ask_for() {
        let b = bundle();
        let p = b.program("kalmar").unwrap();
        let v = assess(&Facts::default(), &b, p, today());
        assert_eq!(v.outcome, Outcome::Undetermined);
        assert_eq!(v.blocking_codes(), ["age_missing", "residency_missing"]);
        assert!(v.explain(Lang::Sv)[0].contains("födelsedatum"));
    }

    #[test]
    fn the_basis_carries_no_number() {
        let b = bundle();
        let p = b.program("lots-for-livet").unwrap();
        let v = assess(
            &facts("19900412-1233", "0180", Provenance::Register),
            &b,
            p,
            today(),
        );
        let json = serde_json::to_string(&v).unwrap();
        assert!(!json.contains("1233") && !json.contains("900412"), "{json}");
    }

    #[test]
    fn a_century_typo_leaves_the_age_undetermined() {
        let b = bundle();
        let p = b.program("lots-for-livet").unwrap();
        // Born 1 June 2009: 17 on today(). The same digits typed with 19: the check digit still
        // fits, and the person would be 117.
        let ten = format!("090601-{}", serial_for("0906011", "23"));
        let minor = format!("20{ten}");
        let typo = format!("19{ten}");
        let v = assess(
            &facts(&minor, "Stockholm", Provenance::Register),
            &b,
            p,
            today(),
        );
        assert_eq!(v.outcome, Outcome::NotEligible);
        assert_eq!(codes(&v), ["too_young", "resident"]);
        let v = assess(
            &facts(&typo, "Stockholm", Provenance::Register),
            &b,
            p,
            today(),
        );
        assert_eq!(v.outcome, Outcome::Undetermined, "{v:?}");
        assert!(!v.may_refer && !v.provisional);
        assert_eq!(v.reasons[0], Reason::AgeImplausible { age: 117 });
        assert_eq!(codes(&v), ["age_implausible", "resident"]);
        assert_eq!(v.blocking_codes(), ["age_implausible"]);
        assert!(
            v.routing.is_empty(),
            "no other program takes the person either"
        );
        assert_eq!((v.basis.age_min, v.basis.age_max), (Some(117), Some(117)));
        assert_eq!(
            v.explain(Lang::En)[0],
            "The person would be 117: check the century of the number or the year of birth."
        );
        assert_eq!(
            v.explain(Lang::Sv)[0],
            "Personen skulle vara 117 år: kontrollera århundradet i numret eller födelseåret."
        );
        // It never excludes: the other reasons still decide a "no".
        let v = assess(
            &facts(&typo, "Gislaved", Provenance::Register),
            &b,
            p,
            today(),
        );
        assert_eq!(v.outcome, Outcome::NotEligible);
        assert_eq!(v.blocking_codes(), ["age_implausible", "not_resident"]);
        // In 10 digits with `+` (from the year the person turns 100) it is the same person.
        let plus = ten.replace('-', "+");
        let v = assess(
            &facts(&plus, "Stockholm", Provenance::Register),
            &b,
            p,
            today(),
        );
        assert_eq!(codes(&v), ["age_implausible", "resident"]);
    }

    #[test]
    fn a_typed_birth_date_over_110_years_back_is_implausible() {
        let b = bundle();
        let p = b.program("lots-for-livet").unwrap();
        let born = |y, m, d| Facts {
            age: Some(AgeEvidence::BirthDate(
                NaiveDate::from_ymd_opt(y, m, d).unwrap(),
            )),
            residency: Some(Residency::from_municipality("0180", Provenance::Register).unwrap()),
        };
        let v = assess(&born(1909, 6, 1), &b, p, today());
        assert_eq!(v.outcome, Outcome::Undetermined);
        assert_eq!(v.reasons[0], Reason::AgeImplausible { age: 117 });
        assert_eq!(v.basis.age_source, Some(AgeSource::BirthDate));
        // 110 is taken at face value, 111 is not: the birthday decides.
        let v = assess(&born(1916, 11, 23), &b, p, today());
        assert_eq!(v.outcome, Outcome::Eligible);
        assert!(v.explain(Lang::En)[0].contains("is 110"));
        let v = assess(&born(1915, 11, 23), &b, p, today());
        assert_eq!(v.reasons[0], Reason::AgeImplausible { age: 111 });
        let v = assess(&born(1915, 11, 24), &b, p, today());
        assert_eq!(v.outcome, Outcome::Eligible);
    }

    #[test]
    fn a_samordningsnummer_range_is_implausible_only_when_all_of_it_is() {
        let b = bundle();
        let mut p = b.program("lots-for-livet").unwrap().clone();
        p.eligibility.samordningsnummer_can_qualify = true;
        // Month and day unknown in 1915: 110 or 111 on today() — could be 110, so plausible.
        let n = format!("19150060-{}", serial_for("1500602", "34"));
        let v = assess_program(&facts(&n, "Stockholm", Provenance::Stated), &p, today());
        assert_eq!(
            v.reasons[0],
            Reason::AgeMet {
                minimum: 18,
                min: 110,
                max: 111
            }
        );
        assert_eq!(
            v.explain(Lang::En)[0],
            "The person is 110–111 (the program requires at least 18)."
        );
        // In 1914 every possible age is above 110.
        let n = format!("19140060-{}", serial_for("1400602", "34"));
        let v = assess_program(&facts(&n, "Stockholm", Provenance::Stated), &p, today());
        assert_eq!(v.reasons[0], Reason::AgeImplausible { age: 111 });
        assert_eq!(v.outcome, Outcome::Undetermined);
    }

    #[test]
    fn every_age_text_names_the_age() {
        let b = bundle();
        let p = b.program("lots-for-livet").unwrap();
        let v = assess(
            &facts("19900412-1233", "Stockholm", Provenance::Document),
            &b,
            p,
            today(),
        );
        assert_eq!(
            v.reasons[0],
            Reason::AgeMet {
                minimum: 18,
                min: 36,
                max: 36
            }
        );
        assert_eq!(
            v.explain(Lang::En)[0],
            "The person is 36 (the program requires at least 18)."
        );
        assert_eq!(
            v.explain(Lang::Sv)[0],
            "Personen är 36 år (programmet kräver att man har fyllt 18)."
        );
        let reasons = [
            (
                Reason::AgeMet {
                    minimum: 18,
                    min: 36,
                    max: 36,
                },
                "36",
            ),
            (
                Reason::AgeMet {
                    minimum: 18,
                    min: 35,
                    max: 36,
                },
                "35–36",
            ),
            (
                Reason::TooYoung {
                    minimum: 18,
                    age: 17,
                },
                "17",
            ),
            (
                Reason::AgeUndetermined {
                    minimum: 18,
                    min: 17,
                    max: 18,
                },
                "17",
            ),
            (Reason::AgeImplausible { age: 117 }, "117"),
        ];
        for (r, age) in reasons {
            for lang in [Lang::Sv, Lang::En] {
                let text = r.message(lang);
                assert!(text.contains(age), "{}: {text}", r.code());
            }
            assert_ne!(r.message(Lang::Sv), r.message(Lang::En));
        }
        let implausible = Reason::AgeImplausible { age: 117 };
        assert!(implausible.leaves_open() && !implausible.excludes());
        assert_eq!(
            serde_json::to_value(&implausible).unwrap(),
            serde_json::json!({"code": "age_implausible", "age": 117})
        );
    }

    /// Completes a serial: `prefix` is YYMMDD + first serial digit, `mid` two more digits;
    /// returns the 4-digit serial+check.
    fn serial_for(prefix: &str, mid: &str) -> String {
        let nine = format!("{prefix}{mid}");
        let first_serial = &prefix[6..];
        let digits: Vec<u32> = nine.chars().map(|c| c.to_digit(10).unwrap()).collect();
        let sum: u32 = digits
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let v = if i % 2 == 0 { d * 2 } else { *d };
                v / 10 + v % 10
            })
            .sum();
        format!("{first_serial}{mid}{}", (10 - sum % 10) % 10)
    }
}
