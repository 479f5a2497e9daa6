//! The signed program bundle as an app holds it: loaded and verified once at start (or when a new
//! one arrives), then asked for programs, consent scripts, eligibility verdicts and consent checks.
//! Loading verifies an Ed25519 signature and parses a few kilobytes (well under a millisecond);
//! every other call is pure and cheap enough for the UI thread.

use crate::error::ApiError;
use crate::{language, lookup::Municipality, parse_date, today};
use lotsa_core::clock::{to_stockholm, Clock, SystemClock};
use lotsa_core::consent::{self, ConsentForm, ConsentRecord, GivenConsent};
use lotsa_core::crypto::PublicKey;
use lotsa_core::eligibility;
use lotsa_core::geo;
use lotsa_core::program::{self, Bundle, Need};
use lotsa_core::referral;
use lotsa_core::text::{Lang, Reasoned};
use std::sync::Arc;

/// How residency is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Provenance {
    /// The person says so (the verdict is provisional).
    Stated,
    /// Seen on a document.
    Document,
    /// Confirmed in the population register.
    Register,
}

impl From<Provenance> for eligibility::Provenance {
    fn from(p: Provenance) -> eligibility::Provenance {
        match p {
            Provenance::Stated => eligibility::Provenance::Stated,
            Provenance::Document => eligibility::Provenance::Document,
            Provenance::Register => eligibility::Provenance::Register,
        }
    }
}

impl From<eligibility::Provenance> for Provenance {
    fn from(p: eligibility::Provenance) -> Provenance {
        match p {
            eligibility::Provenance::Stated => Provenance::Stated,
            eligibility::Provenance::Document => Provenance::Document,
            eligibility::Provenance::Register => Provenance::Register,
        }
    }
}

/// Whether the clinic gets a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FieldNeed {
    /// Must be filled in.
    Required,
    /// Passed on if given.
    Optional,
    /// Never leaves the device.
    Never,
}

/// One field and what the program says about it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FieldRule {
    /// `name`, `phone`, `language`, `best_time`, `note`, `personnummer`, `birth_date`, `kommunkod`.
    pub field: String,
    /// Required, optional or never.
    pub need: FieldNeed,
}

/// A program as the app shows it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ProgramInfo {
    /// Stable id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Who runs it.
    pub operator: String,
    /// The municipalities it covers.
    pub municipalities: Vec<Municipality>,
    /// Minimum age.
    pub minimum_age: u32,
    /// The receiving clinic.
    pub clinic_name: String,
    /// What the person is promised, in the app's language.
    pub callback_promise: String,
    /// Which fields the clinic needs.
    pub fields: Vec<FieldRule>,
    /// Languages with a consent script (`sv`, `en`).
    pub script_languages: Vec<String>,
    /// Whether a provisional verdict (stated residency) may be referred.
    pub provisional_allowed: bool,
    /// Hours an unfinished draft is kept.
    pub draft_lifetime_hours: u32,
}

/// The consent script the officer reads out.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ConsentScript {
    /// Script id.
    pub id: String,
    /// Version (the consent record must cite the current one).
    pub version: u32,
    /// Language code.
    pub language: String,
    /// The words to read.
    pub text: String,
    /// SHA-256 of the text, hex.
    pub sha256: String,
}

/// What the officer knows about the person. Everything is optional: the verdict says what is missing.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct PersonFacts {
    /// Personnummer or samordningsnummer as typed.
    #[uniffi(default = None)]
    pub identity_number: Option<String>,
    /// Date of birth (`YYYY-MM-DD`) when there is no number.
    #[uniffi(default = None)]
    pub birth_date: Option<String>,
    /// Kommunkod or municipality name.
    #[uniffi(default = None)]
    pub municipality: Option<String>,
    /// Postal code (a hint only), used when no municipality is given.
    #[uniffi(default = None)]
    pub postal_code: Option<String>,
    /// How residency is known.
    pub provenance: Provenance,
}

/// Eligible, not eligible, or undetermined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Outcome {
    /// The program can be offered.
    Eligible,
    /// It cannot (see routing).
    NotEligible,
    /// Something is missing or cannot be decided (see reasons).
    Undetermined,
}

/// One reason behind a verdict.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Reason {
    /// Stable code (`too_young`, `not_resident`, …).
    pub code: String,
    /// A sentence in the app's language.
    pub text: String,
}

/// Another program that would accept the person.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Route {
    /// Program id.
    pub program_id: String,
    /// Program name.
    pub program_name: String,
    /// The clinic.
    pub clinic_name: String,
    /// What it promises, in the app's language.
    pub callback_promise: String,
    /// Whether that verdict is only provisional.
    pub provisional: bool,
}

/// The eligibility verdict.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Verdict {
    /// The program assessed.
    pub program_id: String,
    /// The answer.
    pub outcome: Outcome,
    /// Eligible only on stated residency.
    pub provisional: bool,
    /// Whether a referral may be handed over on this verdict.
    pub may_refer: bool,
    /// Why.
    pub reasons: Vec<Reason>,
    /// Where else the person could go.
    pub routing: Vec<Route>,
    /// Youngest possible age, when known.
    pub age_min: Option<u32>,
    /// Oldest possible age, when known.
    pub age_max: Option<u32>,
    /// The municipality the verdict used, when known.
    pub kommunkod: Option<String>,
}

/// Police officer or municipal guide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Role {
    /// Police officer.
    Police,
    /// Municipal outreach guide (lots).
    Lots,
}

/// How consent was given.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ConsentMethod {
    /// Out loud, with a witness (their service number or staff id).
    Verbal {
        /// The witness.
        witness: String,
    },
    /// Signed on screen; only the SHA-256 of the signature image is kept.
    SignatureOnScreen {
        /// Hex SHA-256.
        signature_sha256: String,
    },
}

/// The officer's judgement of the person's capacity to consent right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Capacity {
    /// Understood and answered clearly.
    Adequate,
    /// In doubt: do not record consent now.
    Doubtful,
    /// Clearly unable now.
    Lacking,
}

/// What the officer records when the person consents.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ConsentInput {
    /// The program.
    pub program_id: String,
    /// The referral's id (the person by reference only).
    pub subject_ref: String,
    /// The language the script was read in.
    pub language: String,
    /// The script version the officer read (from `consent_script`).
    pub script_version: u32,
    /// How consent was given.
    pub method: ConsentMethod,
    /// Police or lots.
    pub role: Role,
    /// The officer's service number or staff id.
    pub officer_id: String,
    /// Unit or team.
    pub unit: String,
    /// The person was told refusing has no effect on the police matter.
    pub told_no_effect_on_police_matter: bool,
    /// The person was told consent can be withdrawn at any time, and how.
    pub told_can_withdraw: bool,
    /// Capacity assessment.
    pub capacity: Capacity,
    /// The person agrees, in so many words, to pass on their personnummer too. Only matters for a
    /// program that accepts it as optional: a program that requires it always gets it, one that
    /// never takes it never does.
    #[uniffi(default = false)]
    pub share_personnummer: bool,
}

/// A consent record that passed validation.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ConsentReceipt {
    /// The record's id.
    pub consent_id: String,
    /// The recipient it names.
    pub recipient: String,
    /// The data items it covers.
    pub data_items: Vec<String>,
    /// The script it cites (id, version, hash).
    pub script_id: String,
    /// Script version.
    pub script_version: u32,
    /// Script hash.
    pub script_sha256: String,
    /// When (RFC 3339, Stockholm offset).
    pub given_at: String,
    /// What the officer should be told: a choice that did not apply (code
    /// `personnummer_never_taken` when the person agreed to share a personnummer the program
    /// never takes). Empty for a record read back from a draft.
    pub notes: Vec<Reason>,
}

/// A verified program bundle.
#[derive(uniffi::Object)]
pub struct ProgramBundle {
    bundle: Bundle,
}

fn lang_of(code: &str) -> Result<Lang, ApiError> {
    Lang::parse(code).ok_or_else(|| ApiError::InvalidInput {
        field: "language".into(),
        code: "unsupported_language".into(),
        msg: match language() {
            Lang::Sv => "Språket stöds inte: välj sv eller en.".into(),
            Lang::En => "Unsupported language: choose sv or en.".into(),
        },
    })
}

#[uniffi::export]
impl ProgramBundle {
    /// Verifies a signed bundle against the administrator's public key (base64) the app was
    /// built with. Refuses unsigned, tampered, expired, unknown-version and invalid bundles.
    #[uniffi::constructor]
    pub fn load(signed_bundle: String, trust_key: String) -> Result<Arc<ProgramBundle>, ApiError> {
        let key = PublicKey::from_b64(&trust_key).map_err(|e| {
            ApiError::configuration(
                "trust_key_invalid",
                format!("the trust key is not an Ed25519 public key: {e}"),
            )
        })?;
        let bundle = program::verify(&signed_bundle, &key, SystemClock.now())?;
        Ok(Arc::new(ProgramBundle { bundle }))
    }

    /// The bundle's id (for support).
    pub fn bundle_id(&self) -> String {
        self.bundle.set().bundle_id.clone()
    }

    /// True for example data that must never reach a real clinic.
    pub fn is_example(&self) -> bool {
        self.bundle.set().example
    }

    /// When it expires (RFC 3339).
    pub fn expires_at(&self) -> String {
        self.bundle.set().expires_at.to_rfc3339()
    }

    /// All programs.
    pub fn programs(&self) -> Vec<ProgramInfo> {
        self.bundle.programs().iter().map(program_info).collect()
    }

    /// One program.
    pub fn program(&self, program_id: String) -> Result<ProgramInfo, ApiError> {
        Ok(program_info(self.find(&program_id)?))
    }

    /// The current consent script of a program in a language (`sv`, `en`).
    pub fn consent_script(
        &self,
        program_id: String,
        language: String,
    ) -> Result<ConsentScript, ApiError> {
        let p = self.find(&program_id)?;
        let lang = lang_of(&language)?;
        let s = p.consent_script(lang).ok_or_else(|| {
            ApiError::from(consent::ConsentError::NoScriptInLanguage {
                language: lang.code(),
            })
        })?;
        Ok(ConsentScript {
            id: s.id.clone(),
            version: s.version,
            language: s.language.code().to_string(),
            text: s.text.clone(),
            sha256: s.sha256.clone(),
        })
    }

    /// The eligibility verdict for a person and a program, on `on` (`YYYY-MM-DD`, default today
    /// in Stockholm). Bad input (a mistyped number, an unknown municipality) is an
    /// `InvalidInput` error naming the field; missing facts give an undetermined verdict.
    pub fn assess(
        &self,
        program_id: String,
        facts: PersonFacts,
        on: Option<String>,
    ) -> Result<Verdict, ApiError> {
        let today = match on {
            Some(d) => parse_date(&d, "on")?,
            None => today(),
        };
        let verdict = referral::assess_typed(&self.bundle, &program_id, &facts.into(), today)?;
        Ok(verdict_from(&verdict))
    }

    /// Builds and checks a consent record: complete, citing the program's current script, both
    /// disclosures made, capacity adequate. Returns what the record says, or `ConsentMissing`
    /// naming the field to fix.
    pub fn validate_consent(&self, input: ConsentInput) -> Result<ConsentReceipt, ApiError> {
        let p = self.find(&input.program_id)?;
        let subject_ref = input.subject_ref.clone();
        let given =
            ConsentForm::from(input).record(p, &subject_ref, to_stockholm(SystemClock.now()))?;
        Ok(receipt_with_notes(&given))
    }
}

impl ProgramBundle {
    /// The verified core bundle (for the device store).
    pub(crate) fn core(&self) -> &Bundle {
        &self.bundle
    }

    /// A program of the bundle, or `Configuration` / `unknown_program`.
    pub(crate) fn find(&self, id: &str) -> Result<&program::Program, ApiError> {
        Ok(referral::find_program(&self.bundle, id)?)
    }
}

fn program_info(p: &program::Program) -> ProgramInfo {
    ProgramInfo {
        id: p.id.clone(),
        name: p.name.clone(),
        operator: p.operator.clone(),
        municipalities: p
            .eligibility
            .kommunkoder
            .iter()
            .filter_map(|k| geo::municipality_by_code(k))
            .map(Municipality::from)
            .collect(),
        minimum_age: p.eligibility.minimum_age,
        clinic_name: p.clinic.name.clone(),
        callback_promise: p.callback_promise.get(language()).to_string(),
        fields: program::Field::ALL
            .iter()
            .map(|f| FieldRule {
                field: f.as_str().to_string(),
                need: match p.fields.need(*f) {
                    Need::Required => FieldNeed::Required,
                    Need::Optional => FieldNeed::Optional,
                    Need::Never => FieldNeed::Never,
                },
            })
            .collect(),
        script_languages: p
            .consent_scripts
            .iter()
            .map(|s| s.language.code().to_string())
            .collect(),
        provisional_allowed: p.eligibility.provisional_allowed,
        draft_lifetime_hours: p.draft_lifetime_hours,
    }
}

impl From<PersonFacts> for referral::TypedFacts {
    fn from(f: PersonFacts) -> referral::TypedFacts {
        referral::TypedFacts {
            identity_number: f.identity_number,
            birth_date: f.birth_date,
            municipality: f.municipality,
            postal_code: f.postal_code,
            provenance: f.provenance.into(),
        }
    }
}

/// The FFI verdict of a core verdict, its texts in the app's language.
pub(crate) fn verdict_from(v: &eligibility::Verdict) -> Verdict {
    let lang = language();
    Verdict {
        program_id: v.program_id.clone(),
        outcome: match v.outcome {
            eligibility::Outcome::Eligible => Outcome::Eligible,
            eligibility::Outcome::NotEligible => Outcome::NotEligible,
            eligibility::Outcome::Undetermined => Outcome::Undetermined,
        },
        provisional: v.provisional,
        may_refer: v.may_refer,
        reasons: v
            .reasons
            .iter()
            .map(|r| Reason {
                code: r.code().to_string(),
                text: r.message(lang),
            })
            .collect(),
        routing: v
            .routing
            .iter()
            .map(|r| Route {
                program_id: r.program_id.clone(),
                program_name: r.program_name.clone(),
                clinic_name: r.clinic_name.clone(),
                callback_promise: r.callback_promise.get(lang).to_string(),
                provisional: r.provisional,
            })
            .collect(),
        age_min: v.basis.age_min,
        age_max: v.basis.age_max,
        kommunkod: v.basis.kommunkod.clone(),
    }
}

impl From<ConsentInput> for ConsentForm {
    fn from(input: ConsentInput) -> ConsentForm {
        ConsentForm {
            program_id: Some(input.program_id),
            language: input.language,
            script_version: Some(input.script_version),
            method: match input.method {
                ConsentMethod::Verbal { witness } => consent::Method::Verbal { witness },
                ConsentMethod::SignatureOnScreen { signature_sha256 } => {
                    consent::Method::SignatureOnScreen { signature_sha256 }
                }
            },
            recorded_by: recorder(input.role, input.officer_id, input.unit),
            told_no_effect_on_police_matter: input.told_no_effect_on_police_matter,
            told_can_withdraw: input.told_can_withdraw,
            capacity: match input.capacity {
                Capacity::Adequate => consent::Capacity::Adequate,
                Capacity::Doubtful => consent::Capacity::Doubtful,
                Capacity::Lacking => consent::Capacity::Lacking,
            },
            share_personnummer: input.share_personnummer,
        }
    }
}

/// The core's record of who recorded something.
pub(crate) fn recorder(role: Role, officer_id: String, unit: String) -> consent::Recorder {
    consent::Recorder {
        role: match role {
            Role::Police => consent::Role::Police,
            Role::Lots => consent::Role::Lots,
        },
        officer_id,
        unit,
    }
}

/// What a (validated) consent record says, for the app.
pub(crate) fn receipt(record: &ConsentRecord) -> ConsentReceipt {
    ConsentReceipt {
        consent_id: record.consent_id.clone(),
        recipient: record.recipient.clone(),
        data_items: record
            .data_items
            .iter()
            .map(|f| f.as_str().to_string())
            .collect(),
        script_id: record.script.id.clone(),
        script_version: record.script.version,
        script_sha256: record.script.sha256.clone(),
        given_at: record.given_at.to_rfc3339(),
        notes: Vec::new(),
    }
}

/// The receipt of a consent just given, with the notes for the officer.
pub(crate) fn receipt_with_notes(given: &GivenConsent) -> ConsentReceipt {
    let lang = language();
    ConsentReceipt {
        notes: given
            .notes
            .iter()
            .map(|n| Reason {
                code: n.code().to_string(),
                text: n.message(lang),
            })
            .collect(),
        ..receipt(&given.record)
    }
}
