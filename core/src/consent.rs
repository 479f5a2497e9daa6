//! The consent record and its withdrawal.
//!
//! Passing a person's contact details from the police to a clinic rests on that person's consent
//! (GDPR art. 6(1)(a), 7 and 9(2)(a)), so the record must let a data-protection officer see, years
//! later: who consented (by reference only), to what (recipient, data items, purpose), when, how
//! the person was informed (script id, version, hash, language), how consent was given, who
//! recorded it, that the two disclosures the pilots found essential were made (refusing has no
//! effect on the police matter; consent can be withdrawn at any time), and that the officer judged
//! the person able to consent. A record that lacks any of that is refused, not stored.

use crate::program::{Field, Need, Program};
use crate::text::{self, Lang, Reasoned};
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

/// What the data may be used for. There is one purpose, and it is deliberately narrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// The clinic contacts the person once to offer care.
    FirstContact,
}

/// Who records consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A police officer.
    Police,
    /// A municipal outreach guide (lots).
    Lots,
}

impl Role {
    /// Parses `police` / `lots` (also Swedish `polis`).
    pub fn parse(text: &str) -> Option<Role> {
        match text.trim().to_ascii_lowercase().as_str() {
            "police" | "polis" => Some(Role::Police),
            "lots" | "guide" => Some(Role::Lots),
            _ => None,
        }
    }
}

/// The officer or guide who recorded the consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorder {
    /// Police or lots.
    pub role: Role,
    /// Service number or staff id (not a name).
    pub officer_id: String,
    /// Unit or team.
    pub unit: String,
}

/// How consent was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Method {
    /// Said out loud, heard by a witness (a colleague's service number or staff id).
    Verbal {
        /// The witness's id.
        witness: String,
    },
    /// Signed on the device's screen; the record keeps the SHA-256 of the signature image only.
    SignatureOnScreen {
        /// SHA-256 (hex) of the captured signature.
        signature_sha256: String,
    },
}

/// The officer's judgement of whether the person could consent at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capacity {
    /// Understood what was said and answered clearly.
    Adequate,
    /// In doubt (heavily intoxicated, confused): do not record consent now; offer again later.
    Doubtful,
    /// Clearly unable to consent now.
    Lacking,
}

impl Capacity {
    /// Parses `adequate` / `doubtful` / `lacking`.
    pub fn parse(text: &str) -> Option<Capacity> {
        match text.trim().to_ascii_lowercase().as_str() {
            "adequate" => Some(Capacity::Adequate),
            "doubtful" => Some(Capacity::Doubtful),
            "lacking" => Some(Capacity::Lacking),
            _ => None,
        }
    }
}

/// Which script the person heard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptRef {
    /// Script id.
    pub id: String,
    /// Script version.
    pub version: u32,
    /// SHA-256 (hex) of the exact text.
    pub sha256: String,
    /// Language it was read in.
    pub language: Lang,
}

/// A consent record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRecord {
    /// Id of this record (UUID).
    pub consent_id: String,
    /// The program.
    pub program_id: String,
    /// Who consented, by reference only: the referral's id, never a name or number.
    pub subject_ref: String,
    /// The receiving clinic, as named in the bundle.
    pub recipient: String,
    /// The data items the person agreed to pass on.
    pub data_items: Vec<Field>,
    /// What for.
    pub purpose: Purpose,
    /// When (RFC 3339 with offset).
    pub given_at: DateTime<FixedOffset>,
    /// What the person was told.
    pub script: ScriptRef,
    /// How consent was given.
    pub method: Method,
    /// Who recorded it.
    pub recorded_by: Recorder,
    /// The person was told that refusing has no effect on the police matter.
    pub told_no_effect_on_police_matter: bool,
    /// The person was told consent can be withdrawn at any time, and how.
    pub told_can_withdraw: bool,
    /// The officer's judgement of the person's capacity to consent.
    pub capacity: Capacity,
}

/// A withdrawal of consent: as easy as giving it, one call with the referral's id. This is what
/// the clinic is told when a delivered referral is withdrawn: ids, a time to the minute, and who
/// took the withdrawal by role only — nothing about the person or the officer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Withdrawal {
    /// The referral withdrawn (its handover id).
    pub handover_id: String,
    /// The consent withdrawn, when the device still knows it.
    pub consent_id: Option<String>,
    /// The program.
    pub program_id: String,
    /// When, rounded down to the minute.
    pub withdrawn_at: DateTime<FixedOffset>,
    /// Taken by police or a lots on the street; `None` when the person told the clinic directly.
    pub recorded_by_role: Option<Role>,
}

/// Why a consent record was refused. Each names the field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    /// A field is empty.
    #[error("the consent record is missing {}", label(field, Lang::En))]
    Missing {
        /// Which field.
        field: &'static str,
    },
    /// A field holds bidirectional-text controls (it would read differently than it is stored).
    #[error("the consent record's {} holds invisible text-direction characters; type it again without them", label(field, Lang::En))]
    InvisibleText {
        /// Which field.
        field: &'static str,
    },
    /// The witness is the officer who records the consent: a witness must be someone else.
    #[error("the witness must be another person than the officer who records the consent")]
    WitnessIsRecorder,
    /// The script the person heard was withdrawn by a newer bundle: consent must be given again
    /// with the current script.
    #[error("the consent script the person heard has been withdrawn; read the current script (version {current}) and record consent again")]
    ScriptRevoked {
        /// The current version in that language (0 when there is none).
        current: u32,
    },
    /// The record is for another program or recipient than the one it is used for.
    #[error("the consent record's {field} does not match the program")]
    Mismatch {
        /// Which field.
        field: &'static str,
    },
    /// The script is not the program's current one (or its hash is wrong).
    #[error("the consent script is not the program's current one; read the current script (version {current}) and record consent again")]
    ScriptNotCurrent {
        /// The current version in that language.
        current: u32,
    },
    /// The program has no script in that language.
    #[error("the program has no consent script in {language}")]
    NoScriptInLanguage {
        /// The language code.
        language: &'static str,
    },
    /// The script was read in a language the core has no texts for.
    #[error("unsupported language: choose sv or en")]
    UnsupportedLanguage,
    /// One of the two mandatory disclosures was not confirmed.
    #[error("the person must be told {} before consenting", disclosure_text(what))]
    DisclosureMissing {
        /// Which disclosure: `no_effect_on_police_matter` or `can_withdraw`.
        what: &'static str,
    },
    /// The officer judged the person unable to consent now.
    #[error("consent cannot be recorded while the person's capacity to consent is {capacity}; offer again later")]
    CapacityNotAdequate {
        /// `doubtful` or `lacking`.
        capacity: &'static str,
    },
    /// The record lets through data the program never receives, or misses data it requires.
    #[error(
        "the consent's data items do not fit the program: {} {problem}",
        item_label_en(item)
    )]
    DataItems {
        /// The field.
        item: &'static str,
        /// `is never passed on` or `is required`.
        problem: &'static str,
    },
}

impl ConsentError {
    /// The record field the error is about (for a form to highlight).
    pub fn field(&self) -> &'static str {
        match self {
            ConsentError::Missing { field }
            | ConsentError::Mismatch { field }
            | ConsentError::InvisibleText { field } => field,
            ConsentError::WitnessIsRecorder => "method.witness",
            ConsentError::ScriptNotCurrent { .. }
            | ConsentError::ScriptRevoked { .. }
            | ConsentError::NoScriptInLanguage { .. } => "script",
            ConsentError::UnsupportedLanguage => "language",
            ConsentError::DisclosureMissing { what } => match *what {
                "no_effect_on_police_matter" => "told_no_effect_on_police_matter",
                _ => "told_can_withdraw",
            },
            ConsentError::CapacityNotAdequate { .. } => "capacity",
            ConsentError::DataItems { .. } => "data_items",
        }
    }
}

impl Reasoned for ConsentError {
    fn code(&self) -> &'static str {
        match self {
            ConsentError::Missing { .. } => "consent_incomplete",
            ConsentError::Mismatch { .. } => "consent_mismatch",
            ConsentError::InvisibleText { .. } => "bidi_control",
            ConsentError::WitnessIsRecorder => "consent_witness_is_recorder",
            ConsentError::ScriptNotCurrent { .. } => "consent_script_not_current",
            ConsentError::ScriptRevoked { .. } => "consent_script_revoked",
            ConsentError::NoScriptInLanguage { .. } => "consent_no_script_in_language",
            ConsentError::UnsupportedLanguage => "unsupported_language",
            ConsentError::DisclosureMissing { .. } => "consent_disclosure_missing",
            ConsentError::CapacityNotAdequate { .. } => "consent_capacity_not_adequate",
            ConsentError::DataItems { .. } => "consent_data_items",
        }
    }

    fn message(&self, lang: Lang) -> String {
        let sv = match self {
            ConsentError::Missing { field } => {
                format!("Samtycket saknar {}.", label(field, Lang::Sv))
            }
            ConsentError::Mismatch { field } => {
                format!("Samtyckets {} stämmer inte med programmet.", label(field, Lang::Sv))
            }
            ConsentError::InvisibleText { field } => format!(
                "Samtyckets {} innehåller osynliga tecken för textriktning; skriv in det igen utan dem.",
                label(field, Lang::Sv)
            ),
            ConsentError::WitnessIsRecorder => {
                "Vittnet måste vara en annan person än den som registrerar samtycket.".into()
            }
            ConsentError::ScriptNotCurrent { current } => format!(
                "Samtyckestexten är inte programmets aktuella; läs upp den aktuella texten (version {current}) och registrera samtycket igen."
            ),
            ConsentError::NoScriptInLanguage { language } => {
                format!("Programmet har ingen samtyckestext på språket {language}.")
            }
            ConsentError::ScriptRevoked { current } => format!(
                "Samtyckestexten som personen fick höra har dragits tillbaka; läs upp den aktuella texten (version {current}) och registrera samtycket igen."
            ),
            ConsentError::UnsupportedLanguage => "Språket stöds inte: välj sv eller en.".into(),
            ConsentError::DisclosureMissing { what } => match *what {
                "no_effect_on_police_matter" => {
                    "Personen måste få veta att ett nej inte påverkar polisärendet.".into()
                }
                _ => "Personen måste få veta att samtycket kan tas tillbaka när som helst.".into(),
            },
            ConsentError::CapacityNotAdequate { .. } => {
                "Samtycke kan inte registreras när personen inte bedöms kunna samtycka just nu; erbjud igen senare.".into()
            }
            ConsentError::DataItems { item, problem } => {
                let p = if *problem == "is required" { "krävs" } else { "lämnas aldrig ut" };
                format!("Samtyckets uppgifter passar inte programmet: {} {p}.", label(item, Lang::Sv))
            }
        };
        lang.pick(sv, self.to_string())
    }
}

/// Which scripts a record may cite.
#[derive(Clone, Copy)]
enum ScriptRule {
    /// Only the program's current one (recording consent).
    Current,
    /// Any the bundle has not revoked (finalize, after a bundle update).
    NotRevoked,
}

/// The English words of a disclosure code.
fn disclosure_text(what: &str) -> &'static str {
    match what {
        "no_effect_on_police_matter" => "that refusing has no effect on the police matter",
        _ => "that consent can be withdrawn at any time, and how",
    }
}

/// A data item as an English sentence names it.
fn item_label_en(item: &str) -> &str {
    match item {
        "best_time" => "the best time to call",
        "birth_date" => "the date of birth",
        "kommunkod" => "the municipality",
        "personnummer" => "the personnummer",
        other => other,
    }
}

/// A record field as a person names it.
fn label(field: &str, lang: Lang) -> &str {
    let sv = lang == Lang::Sv;
    match field {
        "consent_id" if sv => "ett id",
        "consent_id" => "an id",
        "subject_ref" if sv => "referensen till remissen",
        "subject_ref" => "the referral it belongs to",
        "recorded_by.officer_id" if sv => "tjänstenumret på den som registrerar",
        "recorded_by.officer_id" => "the recording officer's service number",
        "recorded_by.unit" if sv => "enheten för den som registrerar",
        "recorded_by.unit" => "the recording officer's unit",
        "method.witness" if sv => "vittnet (tjänstenummer)",
        "method.witness" => "the witness (service number)",
        "method.signature_sha256" if sv => "den skärmsignerade underskriften",
        "method.signature_sha256" => "the signature given on screen",
        "program_id" if sv => "program",
        "recipient" if sv => "mottagare",
        "name" if sv => "namn",
        "phone" if sv => "telefonnummer",
        "language" if sv => "språk",
        "best_time" if sv => "bästa tid att ringa",
        "note" if sv => "anteckning",
        "birth_date" if sv => "födelsedatum",
        other => other,
    }
}

/// Whether two service numbers or staff ids name the same person, however they were typed
/// (`P-1234`, `p 1234`, `P1234` with a zero-width space): letters and digits compared without case.
fn same_person_id(a: &str, b: &str) -> bool {
    let key = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    key(a) == key(b)
}

fn capacity_name(c: Capacity) -> &'static str {
    match c {
        Capacity::Adequate => "adequate",
        Capacity::Doubtful => "doubtful",
        Capacity::Lacking => "lacking",
    }
}

/// What a consent covers unless the person says otherwise: every field the program requires or
/// accepts — except an optional personnummer, which is passed on only when the person agrees to
/// it in so many words ([`ConsentForm::share_personnummer`]). The design document: the
/// personnummer goes to the clinic only if required.
pub fn default_data_items(program: &Program) -> Vec<Field> {
    program
        .fields
        .passed_on()
        .into_iter()
        .filter(|f| *f != Field::Personnummer || program.fields.need(*f) == Need::Required)
        .collect()
}

/// What the officer fills in when the person consents, one named answer per field. Every front
/// end records consent through [`ConsentForm::record`], so the rules (which script, which data
/// items, the personnummer choice) exist once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentForm {
    /// The program whose script was read. When given it must be the draft's program (an app
    /// that shows one program's script and records against another's draft is refused).
    pub program_id: Option<String>,
    /// The language the script was read in (`sv`, `en`).
    pub language: String,
    /// The script version read out; `None` means the program's current one.
    pub script_version: Option<u32>,
    /// How consent was given.
    pub method: Method,
    /// Who records it.
    pub recorded_by: Recorder,
    /// The person was told that refusing has no effect on the police matter.
    pub told_no_effect_on_police_matter: bool,
    /// The person was told consent can be withdrawn at any time, and how.
    pub told_can_withdraw: bool,
    /// The officer's judgement of the person's capacity to consent.
    pub capacity: Capacity,
    /// The person agrees, in so many words, to pass on their personnummer too. It matters only
    /// where the program accepts the number as optional: a program that requires it always gets
    /// it, and on one that never takes it the choice is ignored with a [`ConsentNote`].
    pub share_personnummer: bool,
}

#[cfg(any(test, feature = "test-support"))]
impl ConsentForm {
    /// A complete verbal consent, witnessed by `P-4711`, in Swedish, to the current script: both
    /// disclosures made and capacity adequate. For the crate's own tests only (`test-support`):
    /// no front end may fill in a consent for the officer.
    pub fn complete_for_tests(recorded_by: Recorder, share_personnummer: bool) -> ConsentForm {
        ConsentForm {
            program_id: None,
            language: "sv".into(),
            script_version: None,
            method: Method::Verbal {
                witness: "P-4711".into(),
            },
            recorded_by,
            told_no_effect_on_police_matter: true,
            told_can_withdraw: true,
            capacity: Capacity::Adequate,
            share_personnummer,
        }
    }
}

/// Something worth telling the officer about a consent that was recorded: not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentNote {
    /// The person agreed to pass on the personnummer, but the program never takes it: the
    /// choice was ignored and the number stays on the device.
    PersonnummerNeverTaken,
}

impl Reasoned for ConsentNote {
    fn code(&self) -> &'static str {
        match self {
            ConsentNote::PersonnummerNeverTaken => "personnummer_never_taken",
        }
    }

    fn message(&self, lang: Lang) -> String {
        let (sv, en) = match self {
            ConsentNote::PersonnummerNeverTaken => (
                "Programmet tar aldrig emot personnummer: valet att dela det gäller inte, och numret lämnar inte telefonen.",
                "The program never receives the personnummer: the choice to share it does not apply, and the number stays on the phone.",
            ),
        };
        lang.pick(sv, en).to_string()
    }
}

/// A consent record that passed validation, with any notes for the officer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenConsent {
    /// The validated record.
    pub record: ConsentRecord,
    /// What the officer should be told (a choice that did not apply).
    pub notes: Vec<ConsentNote>,
}

impl ConsentForm {
    /// Builds the record for `program` from the form — recipient, [`default_data_items`] plus
    /// the personnummer where the person agreed and the program accepts it, the script in the
    /// language used — naming the person by `subject_ref` only, given at `given_at`; then
    /// validates it. A record that would be refused is an error naming the field to fix.
    pub fn record(
        &self,
        program: &Program,
        subject_ref: &str,
        given_at: DateTime<FixedOffset>,
    ) -> Result<GivenConsent, ConsentError> {
        if self
            .program_id
            .as_deref()
            .is_some_and(|id| id != program.id)
        {
            return Err(ConsentError::Mismatch {
                field: "program_id",
            });
        }
        let language = Lang::parse(&self.language).ok_or(ConsentError::UnsupportedLanguage)?;
        let script = program
            .consent_script(language)
            .ok_or(ConsentError::NoScriptInLanguage {
                language: language.code(),
            })?;
        let mut data_items = default_data_items(program);
        let mut notes = Vec::new();
        if self.share_personnummer {
            match program.fields.need(Field::Personnummer) {
                Need::Optional => data_items.push(Field::Personnummer),
                Need::Never => notes.push(ConsentNote::PersonnummerNeverTaken),
                Need::Required => {}
            }
        }
        let record = ConsentRecord {
            consent_id: uuid::Uuid::new_v4().to_string(),
            program_id: program.id.clone(),
            subject_ref: subject_ref.to_string(),
            recipient: program.clinic.name.clone(),
            data_items,
            purpose: Purpose::FirstContact,
            given_at,
            script: ScriptRef {
                id: script.id.clone(),
                version: self.script_version.unwrap_or(script.version),
                sha256: script.sha256.clone(),
                language,
            },
            method: self.method.clone(),
            recorded_by: self.recorded_by.clone(),
            told_no_effect_on_police_matter: self.told_no_effect_on_police_matter,
            told_can_withdraw: self.told_can_withdraw,
            capacity: self.capacity,
        };
        record.validate(program)?;
        Ok(GivenConsent { record, notes })
    }
}

impl ConsentRecord {
    /// Checks the record is complete and fits the program as configured now: it must cite the
    /// program's current script. This is the rule when consent is recorded.
    pub fn validate(&self, program: &Program) -> Result<(), ConsentError> {
        self.check(program, ScriptRule::Current)
    }

    /// The rule at finalize: as [`ConsentRecord::validate`], except that a consent given under a
    /// script that was current when it was recorded (in a bundle the store accepted) stays valid
    /// after a newer bundle brings a newer script — unless that bundle revokes the script. A
    /// bundle update must not strand a person who already consented.
    pub fn validate_at_finalize(&self, program: &Program) -> Result<(), ConsentError> {
        self.check(program, ScriptRule::NotRevoked)
    }

    fn check(&self, program: &Program, script_rule: ScriptRule) -> Result<(), ConsentError> {
        let witness = match &self.method {
            Method::Verbal { witness } => Some(witness.as_str()),
            Method::SignatureOnScreen { .. } => None,
        };
        let typed = [
            ("consent_id", Some(self.consent_id.as_str())),
            ("subject_ref", Some(self.subject_ref.as_str())),
            (
                "recorded_by.officer_id",
                Some(self.recorded_by.officer_id.as_str()),
            ),
            ("recorded_by.unit", Some(self.recorded_by.unit.as_str())),
            ("method.witness", witness),
        ];
        for (field, value) in typed {
            let Some(value) = value else { continue };
            // Only white space and zero-width characters is no answer.
            if text::is_blank(value) {
                return Err(ConsentError::Missing { field });
            }
            if value.chars().any(text::is_bidi_control) {
                return Err(ConsentError::InvisibleText { field });
            }
        }
        if let Method::SignatureOnScreen { signature_sha256 } = &self.method {
            if signature_sha256.len() != 64
                || !signature_sha256.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(ConsentError::Missing {
                    field: "method.signature_sha256",
                });
            }
        }
        if witness.is_some_and(|w| same_person_id(w, &self.recorded_by.officer_id)) {
            return Err(ConsentError::WitnessIsRecorder);
        }
        if self.program_id != program.id {
            return Err(ConsentError::Mismatch {
                field: "program_id",
            });
        }
        if self.recipient != program.clinic.name {
            return Err(ConsentError::Mismatch { field: "recipient" });
        }
        let current = program.consent_script(self.script.language);
        let is_current = current.is_some_and(|c| {
            self.script.id == c.id
                && self.script.version == c.version
                && self.script.sha256 == c.sha256
        });
        let current_version = current.map_or(0, |c| c.version);
        match script_rule {
            _ if is_current => {}
            ScriptRule::Current => {
                return Err(match current {
                    None => ConsentError::NoScriptInLanguage {
                        language: self.script.language.code(),
                    },
                    Some(c) => ConsentError::ScriptNotCurrent { current: c.version },
                })
            }
            ScriptRule::NotRevoked => {
                if program.revokes_script(&self.script.id, self.script.version) {
                    return Err(ConsentError::ScriptRevoked {
                        current: current_version,
                    });
                }
            }
        }
        if !self.told_no_effect_on_police_matter {
            return Err(ConsentError::DisclosureMissing {
                what: "no_effect_on_police_matter",
            });
        }
        if !self.told_can_withdraw {
            return Err(ConsentError::DisclosureMissing {
                what: "can_withdraw",
            });
        }
        if self.capacity != Capacity::Adequate {
            return Err(ConsentError::CapacityNotAdequate {
                capacity: capacity_name(self.capacity),
            });
        }
        for item in &self.data_items {
            if program.fields.need(*item) == Need::Never {
                return Err(ConsentError::DataItems {
                    item: item.as_str(),
                    problem: "is never passed on",
                });
            }
        }
        for field in Field::ALL {
            if program.fields.need(field) == Need::Required && !self.data_items.contains(&field) {
                return Err(ConsentError::DataItems {
                    item: field.as_str(),
                    problem: "is required",
                });
            }
        }
        Ok(())
    }

    /// Whether the person agreed to pass on a field.
    pub fn covers(&self, field: Field) -> bool {
        self.data_items.contains(&field)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::program::{ProgramSet, EXAMPLE_PROGRAMS_JSON};

    fn program(id: &str) -> Program {
        let set = ProgramSet::from_json(EXAMPLE_PROGRAMS_JSON).unwrap();
        set.programs.into_iter().find(|p| p.id == id).unwrap()
    }

    pub(crate) fn form() -> ConsentForm {
        let officer = Recorder {
            role: Role::Police,
            officer_id: "P-1234".into(),
            unit: "City polisområde, Plattan".into(),
        };
        ConsentForm::complete_for_tests(officer, false)
    }

    fn record(p: &Program) -> ConsentRecord {
        let given_at = DateTime::parse_from_rfc3339("2026-11-23T21:15:00+01:00").unwrap();
        form()
            .record(p, "d7a1f000-0000-4000-8000-000000000002", given_at)
            .unwrap()
            .record
    }

    #[test]
    fn a_complete_record_is_valid_and_cites_the_current_script() {
        let p = program("lots-for-livet");
        let r = record(&p);
        assert_eq!(r.validate(&p), Ok(()));
        assert_eq!(r.script.version, 1);
        assert_eq!(r.script.sha256, p.consent_script(Lang::Sv).unwrap().sha256);
        assert!(r.covers(Field::Phone) && !r.covers(Field::Personnummer));
    }

    #[test]
    fn every_gap_is_refused_with_its_field() {
        let p = program("snackan-gislaved");
        type Change = Box<dyn Fn(&mut ConsentRecord)>;
        let cases: Vec<(&str, &str, Change)> = vec![
            (
                "consent_incomplete",
                "recorded_by.officer_id",
                Box::new(|r| r.recorded_by.officer_id = " ".into()),
            ),
            (
                "consent_incomplete",
                "subject_ref",
                Box::new(|r| r.subject_ref.clear()),
            ),
            (
                "consent_incomplete",
                "method.witness",
                Box::new(|r| r.method = Method::Verbal { witness: "".into() }),
            ),
            (
                "consent_incomplete",
                "method.signature_sha256",
                Box::new(|r| {
                    r.method = Method::SignatureOnScreen {
                        signature_sha256: "abc".into(),
                    }
                }),
            ),
            (
                "consent_mismatch",
                "recipient",
                Box::new(|r| r.recipient = "Another clinic".into()),
            ),
            (
                "consent_mismatch",
                "program_id",
                Box::new(|r| r.program_id = "kalmar".into()),
            ),
            (
                "consent_script_not_current",
                "script",
                Box::new(|r| r.script.version = 0),
            ),
            (
                "consent_script_not_current",
                "script",
                Box::new(|r| r.script.sha256 = "00".repeat(32)),
            ),
            (
                "consent_disclosure_missing",
                "told_no_effect_on_police_matter",
                Box::new(|r| r.told_no_effect_on_police_matter = false),
            ),
            (
                "consent_disclosure_missing",
                "told_can_withdraw",
                Box::new(|r| r.told_can_withdraw = false),
            ),
            (
                "consent_capacity_not_adequate",
                "capacity",
                Box::new(|r| r.capacity = Capacity::Doubtful),
            ),
            (
                "consent_capacity_not_adequate",
                "capacity",
                Box::new(|r| r.capacity = Capacity::Lacking),
            ),
            (
                "consent_data_items",
                "data_items",
                Box::new(|r| r.data_items.push(Field::Personnummer)),
            ),
            (
                "consent_data_items",
                "data_items",
                Box::new(|r| r.data_items.retain(|f| *f != Field::Phone)),
            ),
        ];
        for (code, field, change) in cases {
            let mut r = record(&p);
            change(&mut r);
            let err = r.validate(&p).unwrap_err();
            assert_eq!((err.code(), err.field()), (code, field), "{err}");
            assert!(!err.message(Lang::Sv).is_empty());
        }
    }

    #[test]
    fn a_newer_script_in_the_bundle_invalidates_old_records() {
        let mut p = program("kalmar");
        let r = record(&p);
        let s = p
            .consent_scripts
            .iter_mut()
            .find(|s| s.language == Lang::Sv)
            .unwrap();
        s.version = 2;
        s.text.push_str(" (uppdaterad)");
        s.sha256 = crate::crypto::sha256_hex(s.text.as_bytes());
        assert_eq!(
            r.validate(&p),
            Err(ConsentError::ScriptNotCurrent { current: 2 })
        );
    }

    #[test]
    fn records_round_trip_through_json() {
        let p = program("lots-for-livet");
        let r = record(&p);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"kind\":\"verbal\""));
        assert!(json.contains("\"given_at\":\"2026-11-23T21:15:00+01:00\""));
        let back: ConsentRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn the_share_personnummer_choice_is_one_rule_for_every_program() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T21:15:00+01:00").unwrap();
        let share = ConsentForm {
            share_personnummer: true,
            ..form()
        };
        // Optional (Kalmar): only with the person's explicit yes.
        let kalmar = program("kalmar");
        let given = form().record(&kalmar, "ref", at).unwrap();
        assert!(!given.record.covers(Field::Personnummer) && given.notes.is_empty());
        let given = share.record(&kalmar, "ref", at).unwrap();
        assert!(given.record.covers(Field::Personnummer) && given.notes.is_empty());
        // Required: covered whatever the choice, with nothing to tell.
        let mut required = program("kalmar");
        required.fields.personnummer = Need::Required;
        for f in [form(), share.clone()] {
            let given = f.record(&required, "ref", at).unwrap();
            assert!(given.record.covers(Field::Personnummer) && given.notes.is_empty());
        }
        // Never (Stockholm): the choice is ignored and the officer is told.
        let stockholm = program("lots-for-livet");
        let given = share.record(&stockholm, "ref", at).unwrap();
        assert!(!given.record.covers(Field::Personnummer));
        assert_eq!(given.notes, [ConsentNote::PersonnummerNeverTaken]);
        assert_eq!(given.notes[0].code(), "personnummer_never_taken");
        assert!(given.notes[0].message(Lang::Sv).contains("personnummer"));
        assert!(form()
            .record(&stockholm, "ref", at)
            .unwrap()
            .notes
            .is_empty());
    }

    #[test]
    fn a_form_is_recorded_for_its_program_in_a_language_with_a_script() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T21:15:00+01:00").unwrap();
        let p = program("snackan-gislaved");
        let given = form().record(&p, "d-1", at).unwrap();
        let r = &given.record;
        assert_eq!((r.subject_ref.as_str(), r.given_at), ("d-1", at));
        assert_eq!(r.recipient, p.clinic.name);
        assert_eq!(
            r.script.version,
            p.consent_script(Lang::Sv).unwrap().version
        );
        assert_ne!(
            form().record(&p, "d-1", at).unwrap().record.consent_id,
            r.consent_id
        );
        let cases: Vec<(ConsentForm, &str, &str)> = vec![
            (
                ConsentForm {
                    program_id: Some("kalmar".into()),
                    ..form()
                },
                "consent_mismatch",
                "program_id",
            ),
            (
                ConsentForm {
                    language: "fi".into(),
                    ..form()
                },
                "unsupported_language",
                "language",
            ),
            (
                ConsentForm {
                    script_version: Some(99),
                    ..form()
                },
                "consent_script_not_current",
                "script",
            ),
            (
                ConsentForm {
                    told_no_effect_on_police_matter: false,
                    ..form()
                },
                "consent_disclosure_missing",
                "told_no_effect_on_police_matter",
            ),
        ];
        for (f, code, field) in cases {
            let err = f.record(&p, "d-1", at).unwrap_err();
            assert_eq!((err.code(), err.field()), (code, field), "{err}");
        }
        // The program's own id is no mismatch.
        let named = ConsentForm {
            program_id: Some(p.id.clone()),
            ..form()
        };
        assert!(named.record(&p, "d-1", at).is_ok());
    }

    #[test]
    fn swedish_texts_name_fields_in_swedish() {
        let e = ConsentError::DataItems {
            item: "phone",
            problem: "is required",
        };
        assert_eq!(
            e.message(Lang::Sv),
            "Samtyckets uppgifter passar inte programmet: telefonnummer krävs."
        );
        let e = ConsentError::Mismatch {
            field: "program_id",
        };
        assert_eq!(
            e.message(Lang::Sv),
            "Samtyckets program stämmer inte med programmet."
        );
    }

    #[test]
    fn invisible_ids_are_missing_bidi_is_refused_and_the_witness_is_someone_else() {
        let p = program("kalmar");
        type Change = Box<dyn Fn(&mut ConsentRecord)>;
        let verbal = |w: &str| Method::Verbal { witness: w.into() };
        let cases: Vec<(Change, &str, &str)> = vec![
            (
                Box::new(|r| r.recorded_by.officer_id = "\u{200B}\u{200B}".into()),
                "consent_incomplete",
                "recorded_by.officer_id",
            ),
            (
                Box::new(|r| r.recorded_by.unit = " \u{FEFF} ".into()),
                "consent_incomplete",
                "recorded_by.unit",
            ),
            (
                Box::new(move |r| r.method = verbal("\u{2060}\u{3164}")),
                "consent_incomplete",
                "method.witness",
            ),
            (
                Box::new(|r| r.recorded_by.officer_id = "P-12\u{202E}34".into()),
                "bidi_control",
                "recorded_by.officer_id",
            ),
            (
                Box::new(move |r| r.method = verbal("\u{2067}P-4711\u{2069}")),
                "bidi_control",
                "method.witness",
            ),
            (
                Box::new(|r| r.recorded_by.unit = "Plattan\u{200E}".into()),
                "bidi_control",
                "recorded_by.unit",
            ),
        ];
        for (change, code, field) in cases {
            let mut r = record(&p);
            change(&mut r);
            let err = r.validate(&p).unwrap_err();
            assert_eq!((err.code(), err.field()), (code, field), "{err}");
        }
        // The officer (P-1234) cannot witness their own record, however the id is typed.
        for same in ["P-1234", "p-1234", "P1234", " p 1234 ", "P-12\u{200B}34"] {
            let mut r = record(&p);
            r.method = verbal(same);
            let err = r.validate(&p).unwrap_err();
            assert_eq!(
                (err.code(), err.field()),
                ("consent_witness_is_recorder", "method.witness"),
                "{same:?}"
            );
        }
        let mut r = record(&p);
        r.method = verbal("P-12345");
        assert_eq!(r.validate(&p), Ok(()));
    }
}
