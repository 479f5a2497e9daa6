//! Programs and the signed bundle that carries them.
//!
//! A program is one cooperation agreement between police and a municipality ("Lots för livet",
//! "Snäckan", …): who may be offered it, which data the clinic needs, the consent script the
//! officer reads out, and where and how referrals are delivered. Because the bundle decides where a
//! person's contact details go, it is only accepted when signed by the program administrator's
//! Ed25519 key that the app is built with: nobody can redirect referrals by editing a file.
//!
//! The signed form is a small JSON envelope around the exact bytes that were signed:
//! `{"format": "lotsa.signed-program-bundle", "version": 1, "key_id", "payload", "signature"}`,
//! where `payload` is the base64 of the canonical JSON of the [`ProgramSet`] (the typed struct
//! serialised by serde: fixed field order, no whitespace). Verification never re-serialises: it
//! checks the signature over the bytes as shipped, then parses them.

use crate::crypto::{self, CryptoError, PublicKey, SigningKey};
use crate::text::{Lang, Reasoned, Texts};
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The `format` of an unsigned program set.
pub const SET_FORMAT: &str = "lotsa.program-set";
/// The `format` of the signed envelope.
pub const SIGNED_FORMAT: &str = "lotsa.signed-program-bundle";
/// How far after the device's clock a bundle may say it was issued (clocks drift; a bundle from
/// further ahead is refused, and the store's memory of the newest bundle never passes it).
pub const FUTURE_TOLERANCE: chrono::Duration = chrono::Duration::hours(1);

/// The program-set versions this core reads. Version 2 adds the clinic's terms to every program
/// ([`Program::callback_within`], [`Program::clinic_retention`], [`Program::never_reached_after`],
/// [`Program::fhir_export`]); a version 1 set still loads, its programs without them.
pub const SET_VERSIONS: [u32; 2] = [1, 2];
/// The newest program-set version: the one an administrator writes today.
pub const LATEST_SET_VERSION: u32 = 2;
/// The set version from which every program carries the clinic's terms.
const TERMS_VERSION: u32 = 2;
/// The version of the signed envelope around the set. Its format is the same for every set
/// version, so it stays 1.
pub const ENVELOPE_VERSION: u32 = 1;

/// The programs an administrator configures, before signing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramSet {
    /// Always [`SET_FORMAT`].
    pub format: String,
    /// One of [`SET_VERSIONS`] (the envelope has a version of its own, [`ENVELOPE_VERSION`]).
    pub version: u32,
    /// An id for this edition of the configuration (shown in support requests).
    pub bundle_id: String,
    /// Who signs it (a name, for people).
    pub administrator: String,
    /// When it was issued.
    #[serde(deserialize_with = "rfc3339")]
    pub issued_at: DateTime<FixedOffset>,
    /// After this the app refuses it and asks for a new one.
    #[serde(deserialize_with = "rfc3339")]
    pub expires_at: DateTime<FixedOffset>,
    /// True for example data that must never reach a real clinic.
    #[serde(default)]
    pub example: bool,
    /// The programs.
    pub programs: Vec<Program>,
}

/// One program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    /// Stable id (`lots-for-livet`), lowercase letters, digits and hyphens.
    pub id: String,
    /// Name shown to officers.
    pub name: String,
    /// Who runs it (police region and municipality).
    pub operator: String,
    /// Who may be offered it.
    pub eligibility: Rules,
    /// Which data the clinic needs.
    pub fields: FieldPolicy,
    /// The current consent scripts, one per language.
    pub consent_scripts: Vec<ConsentScript>,
    /// Script versions withdrawn from use: a consent given under one of them no longer counts,
    /// even if it was given while that script was current. (A consent given under an older
    /// script that is not listed here stays valid after a bundle update.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked_consent_scripts: Vec<ScriptVersion>,
    /// The receiving clinic.
    pub clinic: Clinic,
    /// Hours an unfinished draft is kept before it is erased.
    pub draft_lifetime_hours: u32,
    /// What the person is promised ("Snäckan ringer inom 24 timmar").
    pub callback_promise: Texts,
    /// The same promise as a deadline the clinic service can keep count of (the text is for the
    /// person, this is for the worklist): it must say what `callback_promise` says. Required from
    /// set version 2; `None` only in a version 1 set, and the clinic service requires version 2.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub callback_within: Option<CallbackWithin>,
    /// How long the clinic keeps the person's data after the first contact is settled (reached,
    /// declined or given up): the consent covers a first contact only. Required from set version
    /// 2; `None` only in a version 1 set.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub clinic_retention: Option<ClinicRetention>,
    /// When the clinic stops trying to reach a person who does not answer, and the first
    /// contact counts as settled ("not reached"): nobody is phoned for ever on one consent.
    /// Required from set version 2; `None` only in a version 1 set.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub never_reached_after: Option<NeverReachedAfter>,
    /// Whether the clinic may export this program's referrals as FHIR resources at all (into a
    /// care record system). A program that keeps people anonymous says no. Required from set
    /// version 2; `None` only in a version 1 set.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub fhir_export: Option<bool>,
}

/// A field that may be left out but, when it is there, holds a value: `null` is refused, so a set
/// cannot carry a field its version does not have by writing it as `null`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// The clinic's callback deadline, counted from the moment of consent (hours offline count
/// against the promise): in JSON exactly one of `{"hours": N}` or `{"working_days": N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "CallbackWithinKeys")]
pub enum CallbackWithin {
    /// Clock hours, 1–720 (a clinic staffed around the clock, such as Snäckan's 24 hours).
    Hours(u32),
    /// Swedish working days (Monday to Friday, not public holidays), 1–30: what a promise of
    /// "two working days" means to a clinic that is closed at weekends.
    WorkingDays(u32),
}

/// `callback_within` as written, read key by key so that both keys, or neither, is refused in
/// words that name them (serde's own enum reading would only say where the parser stopped).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallbackWithinKeys {
    hours: Option<u32>,
    working_days: Option<u32>,
}

impl TryFrom<CallbackWithinKeys> for CallbackWithin {
    type Error = &'static str;

    fn try_from(k: CallbackWithinKeys) -> Result<Self, Self::Error> {
        match (k.hours, k.working_days) {
            (Some(n), None) => Ok(CallbackWithin::Hours(n)),
            (None, Some(n)) => Ok(CallbackWithin::WorkingDays(n)),
            _ => Err("callback_within holds exactly one of `hours` and `working_days`"),
        }
    }
}

/// How long the clinic keeps personal data once the first contact is settled: `{"days": N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClinicRetention {
    /// Days, 0–365; 0 erases the data as soon as the first contact is settled.
    pub days: u32,
}

/// When "not reached" gives up: in JSON exactly one of `{"days": N}` or `{"attempts": N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "NeverReachedAfterKeys")]
pub enum NeverReachedAfter {
    /// Days after the referral arrived, 1–60.
    Days(u32),
    /// Call attempts that got no answer, 1–20.
    Attempts(u32),
}

/// `never_reached_after` as written, read key by key (see [`CallbackWithinKeys`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NeverReachedAfterKeys {
    days: Option<u32>,
    attempts: Option<u32>,
}

impl TryFrom<NeverReachedAfterKeys> for NeverReachedAfter {
    type Error = &'static str;

    fn try_from(k: NeverReachedAfterKeys) -> Result<Self, Self::Error> {
        match (k.days, k.attempts) {
            (Some(n), None) => Ok(NeverReachedAfter::Days(n)),
            (None, Some(n)) => Ok(NeverReachedAfter::Attempts(n)),
            _ => Err("never_reached_after holds exactly one of `days` and `attempts`"),
        }
    }
}

/// Who may be offered a program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Minimum age in completed years.
    pub minimum_age: u32,
    /// Kommunkoder where a person must be folkbokförd.
    pub kommunkoder: Vec<String>,
    /// Whether a person with only a samordningsnummer (not folkbokförd) can qualify.
    pub samordningsnummer_can_qualify: bool,
    /// Whether residency the person only states (no document, no register) can qualify.
    pub stated_residency_qualifies: bool,
    /// Whether a provisional verdict (on stated residency) may be handed over for the clinic to confirm.
    pub provisional_allowed: bool,
}

/// A piece of data the clinic may receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// Name or chosen name.
    Name,
    /// Phone number (E.164).
    Phone,
    /// Preferred language for the call.
    Language,
    /// Best time to call.
    BestTime,
    /// A short note from the officer.
    Note,
    /// The personnummer or samordningsnummer itself.
    Personnummer,
    /// Date of birth.
    BirthDate,
    /// The municipality of residence.
    Kommunkod,
}

impl Field {
    /// Every field, in display order.
    pub const ALL: [Field; 8] = [
        Field::Name,
        Field::Phone,
        Field::Language,
        Field::BestTime,
        Field::Note,
        Field::Personnummer,
        Field::BirthDate,
        Field::Kommunkod,
    ];

    /// The snake_case name used in JSON, errors and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Phone => "phone",
            Field::Language => "language",
            Field::BestTime => "best_time",
            Field::Note => "note",
            Field::Personnummer => "personnummer",
            Field::BirthDate => "birth_date",
            Field::Kommunkod => "kommunkod",
        }
    }
}

/// Whether the clinic gets a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Need {
    /// The referral cannot be handed over without it.
    Required,
    /// Passed on when the person gives it.
    Optional,
    /// Never leaves the device.
    Never,
}

/// Which fields the clinic needs: data minimisation, per program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldPolicy {
    /// Name or chosen name.
    pub name: Need,
    /// Phone number.
    pub phone: Need,
    /// Preferred language.
    pub language: Need,
    /// Best time to call.
    pub best_time: Need,
    /// Officer's note.
    pub note: Need,
    /// The identity number itself.
    pub personnummer: Need,
    /// Date of birth.
    pub birth_date: Need,
    /// Municipality of residence.
    pub kommunkod: Need,
}

impl FieldPolicy {
    /// What the program says about a field.
    pub fn need(&self, field: Field) -> Need {
        match field {
            Field::Name => self.name,
            Field::Phone => self.phone,
            Field::Language => self.language,
            Field::BestTime => self.best_time,
            Field::Note => self.note,
            Field::Personnummer => self.personnummer,
            Field::BirthDate => self.birth_date,
            Field::Kommunkod => self.kommunkod,
        }
    }

    /// The fields that may be passed on (required and optional), in display order.
    pub fn passed_on(&self) -> Vec<Field> {
        Field::ALL
            .into_iter()
            .filter(|f| self.need(*f) != Need::Never)
            .collect()
    }
}

/// The text the officer reads out before asking for consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentScript {
    /// Script id (stable across versions).
    pub id: String,
    /// Version; only the version in the current bundle may be used.
    pub version: u32,
    /// Language of this text.
    pub language: Lang,
    /// The words to read out.
    pub text: String,
    /// SHA-256 of `text` (UTF-8), lowercase hex: what the consent record cites.
    pub sha256: String,
}

/// One version of a consent script, by id and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptVersion {
    /// Script id.
    pub id: String,
    /// Version.
    pub version: u32,
}

/// The receiving clinic and how to reach it.
///
/// One clinic service has one HPKE key set and one receipt key: programs in a bundle that name
/// the same endpoint carry the same `tls`, `hpke_keys` and `receipt_key` (checked at sign and at
/// load).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clinic {
    /// Name shown to officers and in the consent record.
    pub name: String,
    /// Base URL of the clinic service (https only, no query, fragment or trailing `/`): the
    /// intake API lives under `{endpoint}/v1/`, see [`Clinic::api_url`].
    pub endpoint: String,
    /// Which TLS certificates to trust.
    pub tls: TlsTrust,
    /// The clinic's HPKE public keys referrals are sealed to.
    pub hpke_keys: Vec<HpkeKey>,
    /// The key the clinic signs receipts with.
    pub receipt_key: ReceiptKey,
}

/// TLS trust for the clinic endpoint: a private CA and/or SPKI pins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsTrust {
    /// PEM of the CA that issues the clinic's certificate, if not a public one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Base64 SHA-256 of the SubjectPublicKeyInfo of accepted server keys (current and backup).
    pub spki_sha256_pins: Vec<String>,
}

/// An HPKE (X25519) public key of the clinic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpkeKey {
    /// Key id, bound into every sealed payload.
    pub key_id: String,
    /// Base64 of the 32-byte X25519 public key.
    pub public_key: String,
    /// Not used before this instant.
    #[serde(deserialize_with = "rfc3339")]
    pub not_before: DateTime<FixedOffset>,
    /// Not used after this instant.
    #[serde(deserialize_with = "rfc3339")]
    pub not_after: DateTime<FixedOffset>,
}

/// The clinic's receipt-signing key (Ed25519).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptKey {
    /// Key id named in receipts.
    pub key_id: String,
    /// Base64 of the 32-byte Ed25519 public key.
    pub public_key: String,
}

impl Clinic {
    /// The URL of one resource of the clinic's intake API: `{endpoint}/v1/{path}`, with `path`
    /// written without a leading slash (`api_url("handovers")`; a leading `/` is dropped). The
    /// endpoint is a base URL (validated without a query, fragment or trailing `/`), so joining
    /// is plain concatenation, and every version of the API sits under a prefix of its own.
    pub fn api_url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.endpoint, path.trim_start_matches('/'))
    }
}

impl Program {
    /// The current consent script in a language, if the program has one.
    pub fn consent_script(&self, lang: Lang) -> Option<&ConsentScript> {
        self.consent_scripts.iter().find(|s| s.language == lang)
    }

    /// Whether the bundle withdrew a script version from use.
    pub fn revokes_script(&self, id: &str, version: u32) -> bool {
        self.revoked_consent_scripts
            .iter()
            .any(|s| s.id == id && s.version == version)
    }

    /// The clinic's HPKE key valid at an instant (the one that starts latest, if several).
    pub fn current_hpke_key(&self, at: DateTime<Utc>) -> Option<&HpkeKey> {
        self.clinic
            .hpke_keys
            .iter()
            .filter(|k| k.not_before <= at && at <= k.not_after)
            .max_by_key(|k| k.not_before)
    }

    /// Whether a kommunkod is in the program's area.
    pub fn covers(&self, kommunkod: &str) -> bool {
        self.eligibility.kommunkoder.iter().any(|k| k == kommunkod)
    }
}

/// Why a bundle was refused. Every variant tells the administrator or support what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Not JSON, or not the expected shape.
    #[error("the program bundle is malformed: {reason}")]
    Malformed {
        /// What the parser said.
        reason: String,
    },
    /// Another kind of file.
    #[error("this is not a Lotsa program bundle (format {found:?})")]
    UnsupportedFormat {
        /// The format found.
        found: String,
    },
    /// A program-set version this app does not understand (it reads [`SET_VERSIONS`]).
    #[error(
        "program bundle version {found} is not supported (this app reads {}); update the app",
        versions_read(Lang::En)
    )]
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// A signed envelope of a version this app does not understand (it reads
    /// [`ENVELOPE_VERSION`]). Same code as [`BundleError::UnsupportedVersion`]: the remedy is the
    /// same, an app update.
    #[error("the signed program bundle's envelope version {found} is not supported (this app reads envelope version {ENVELOPE_VERSION}); update the app")]
    UnsupportedEnvelopeVersion {
        /// The version found.
        found: u32,
    },
    /// Signed by a key the app does not trust.
    #[error("the program bundle is signed by an unknown key ({key_id}); it is not from your program administrator")]
    UnknownSigner {
        /// The key id named in the bundle.
        key_id: String,
    },
    /// The signature does not match: the file was changed after signing.
    #[error("the program bundle's signature does not match: it was changed after signing")]
    BadSignature,
    /// Signed and intact, but its content breaks a rule.
    #[error("the program bundle is invalid at {field}: {reason}")]
    Invalid {
        /// Where (a JSON path such as `programs[1].eligibility.kommunkoder[0]`).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// Past its expiry date.
    #[error(
        "the program bundle expired on {expired_at}; ask your program administrator for a new one"
    )]
    Expired {
        /// When it expired (RFC 3339).
        expired_at: String,
    },
    /// Issued more than [`FUTURE_TOLERANCE`] after the device's clock: the phone's clock is wrong,
    /// or the bundle is.
    #[error("the program bundle is issued {issued_at}, later than this phone's clock allows: check the phone's clock")]
    FromFuture {
        /// When it says it was issued (RFC 3339).
        issued_at: String,
    },
    /// A signing key file could not be used.
    #[error("the signing key cannot be used: {reason}")]
    Key {
        /// Why.
        reason: String,
    },
}

impl Reasoned for BundleError {
    fn code(&self) -> &'static str {
        match self {
            BundleError::Malformed { .. } => "bundle_malformed",
            BundleError::UnsupportedFormat { .. } => "bundle_unsupported_format",
            BundleError::UnsupportedVersion { .. }
            | BundleError::UnsupportedEnvelopeVersion { .. } => "bundle_unsupported_version",
            BundleError::UnknownSigner { .. } => "bundle_unknown_signer",
            BundleError::BadSignature => "bundle_bad_signature",
            BundleError::Invalid { .. } => "bundle_invalid",
            BundleError::Expired { .. } => "bundle_expired",
            BundleError::FromFuture { .. } => "bundle_from_future",
            BundleError::Key { .. } => "bundle_key",
        }
    }

    fn message(&self, lang: Lang) -> String {
        let sv = match self {
                BundleError::Malformed { .. } => {
                    "Programfilen är trasig och går inte att läsa.".to_string()
                }
                BundleError::UnsupportedFormat { .. } => {
                    "Filen är ingen programfil för Lotsa.".to_string()
                }
                BundleError::UnsupportedVersion { found } => format!(
                    "Programfilens version {found} stöds inte (appen läser {}); uppdatera appen.",
                    versions_read(Lang::Sv)
                ),
                BundleError::UnsupportedEnvelopeVersion { found } => format!(
                    "Programfilens kuvertversion {found} stöds inte (appen läser kuvertversion {ENVELOPE_VERSION}); uppdatera appen."
                ),
                BundleError::UnknownSigner { key_id } => format!(
                    "Programfilen är signerad med en okänd nyckel ({key_id}); den kommer inte från er programadministratör."
                ),
                BundleError::BadSignature => {
                    "Programfilens signatur stämmer inte: filen har ändrats efter signering.".to_string()
                }
                BundleError::Invalid { field, .. } => {
                    format!("Programfilen är ogiltig vid {field}.")
                }
                BundleError::Expired { expired_at } => format!(
                    "Programfilen gick ut {expired_at}; be er programadministratör om en ny."
                ),
                BundleError::Key { .. } => "Signeringsnyckeln går inte att använda.".to_string(),
                BundleError::FromFuture { issued_at } => format!(
                    "Programfilen är utfärdad {issued_at}, senare än telefonens klocka tillåter: kontrollera telefonens klocka."
                ),
        };
        lang.pick(sv, self.to_string())
    }
}

/// The set versions this app reads, for a message: "version 1 och 2", "versions 1 and 2".
fn versions_read(lang: Lang) -> String {
    let numbers: Vec<String> = SET_VERSIONS.iter().map(u32::to_string).collect();
    let list = match numbers.split_last() {
        Some((last, rest)) if !rest.is_empty() => {
            format!("{} {} {last}", rest.join(", "), lang.pick("och", "and"))
        }
        _ => numbers.concat(),
    };
    let word = if numbers.len() == 1 {
        "version"
    } else {
        lang.pick("version", "versions")
    };
    format!("{word} {list}")
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> BundleError {
    BundleError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The signed envelope as it lies on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedEnvelope {
    format: String,
    version: u32,
    key_id: String,
    payload: String,
    signature: String,
}

/// A verified bundle: the only way to get at programs.
#[derive(Debug, Clone)]
pub struct Bundle {
    set: ProgramSet,
    signer: PublicKey,
    payload_sha256: String,
}

impl Bundle {
    /// The verified programs and their metadata.
    pub fn set(&self) -> &ProgramSet {
        &self.set
    }

    /// The programs.
    pub fn programs(&self) -> &[Program] {
        &self.set.programs
    }

    /// A program by id.
    pub fn program(&self, id: &str) -> Option<&Program> {
        self.set.programs.iter().find(|p| p.id == id)
    }

    /// The key that signed it.
    pub fn signer(&self) -> PublicKey {
        self.signer
    }

    /// SHA-256 (hex) of the signed bytes: identifies exactly this configuration.
    pub fn payload_sha256(&self) -> &str {
        &self.payload_sha256
    }
}

impl ProgramSet {
    /// Parses an unsigned program set (as an administrator writes it) and checks its rules.
    pub fn from_json(json: &str) -> Result<ProgramSet, BundleError> {
        let set: ProgramSet = parse_json(json.as_bytes())?;
        set.validate()?;
        Ok(set)
    }

    /// Puts one HPKE key in place of every program's clinic keys (the example programs get the
    /// keys of a clinic started for a demo or test; an administrator rotating a clinic key does
    /// the same for real).
    pub fn replace_clinic_hpke_keys(&mut self, key: &HpkeKey) {
        for p in &mut self.programs {
            p.clinic.hpke_keys = vec![key.clone()];
        }
    }

    /// Puts a clinic's own description (its `clinic.json`, from `lotsa clinic init`) in place of
    /// the `clinic` of every program that names its endpoint; returns how many programs it
    /// replaced (0 means no program names that endpoint).
    pub fn merge_clinic(&mut self, clinic: &Clinic) -> usize {
        let mut merged = 0;
        for p in &mut self.programs {
            if p.clinic.endpoint == clinic.endpoint {
                p.clinic = clinic.clone();
                merged += 1;
            }
        }
        merged
    }

    /// The canonical bytes that get signed.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a program set always serialises")
    }

    /// Signs the set: returns the signed bundle file's text.
    pub fn sign(&self, key: &SigningKey) -> Result<String, BundleError> {
        self.validate()?;
        let payload = self.canonical_bytes();
        let envelope = SignedEnvelope {
            format: SIGNED_FORMAT.to_string(),
            version: ENVELOPE_VERSION,
            key_id: key.public_key().key_id(),
            payload: crypto::b64(&payload),
            signature: crypto::b64(&key.sign(&payload)),
        };
        Ok(serde_json::to_string_pretty(&envelope).expect("an envelope always serialises") + "\n")
    }

    /// Checks every rule a JSON Schema cannot express (and the ones it can, so a bundle is never
    /// half-checked): ids, kommunkoder, script hashes, keys, endpoint, dates, the clinic's terms
    /// that the set's version requires (or does not know), and one set of keys per endpoint.
    pub fn validate(&self) -> Result<(), BundleError> {
        if self.format != SET_FORMAT {
            return Err(BundleError::UnsupportedFormat {
                found: self.format.clone(),
            });
        }
        if !SET_VERSIONS.contains(&self.version) {
            return Err(BundleError::UnsupportedVersion {
                found: self.version,
            });
        }
        if self.bundle_id.trim().is_empty() {
            return Err(invalid("bundle_id", "must not be empty"));
        }
        if self.administrator.trim().is_empty() {
            return Err(invalid("administrator", "must not be empty"));
        }
        if self.expires_at <= self.issued_at {
            return Err(invalid("expires_at", "must be after issued_at"));
        }
        if self.programs.is_empty() {
            return Err(invalid("programs", "at least one program is needed"));
        }
        for (field, value) in [
            ("bundle_id", &self.bundle_id),
            ("administrator", &self.administrator),
        ] {
            check_text(field, value, false)?;
        }
        let mut ids = BTreeSet::new();
        for (i, p) in self.programs.iter().enumerate() {
            let at = format!("programs[{i}]");
            validate_program(p, &at, self.issued_at.with_timezone(&Utc))?;
            check_terms(p, &at, self.version)?;
            if !ids.insert(p.id.as_str()) {
                return Err(invalid(
                    format!("{at}.id"),
                    format!("duplicate program id {:?}", p.id),
                ));
            }
            check_one_service_per_endpoint(&self.programs[..i], p, &at)?;
        }
        Ok(())
    }
}

/// The clinic's terms: required from [`TERMS_VERSION`], unknown before it (a version 1 set that
/// carries one was written for another app, or mislabelled), and each within its range.
fn check_terms(p: &Program, at: &str, version: u32) -> Result<(), BundleError> {
    let present = [
        ("callback_within", p.callback_within.is_some()),
        ("clinic_retention", p.clinic_retention.is_some()),
        ("never_reached_after", p.never_reached_after.is_some()),
        ("fhir_export", p.fhir_export.is_some()),
    ];
    for (name, there) in present {
        if version >= TERMS_VERSION && !there {
            return Err(invalid(
                format!("{at}.{name}"),
                format!("required in bundle version {version}"),
            ));
        }
        if version < TERMS_VERSION && there {
            return Err(invalid(
                format!("{at}.{name}"),
                format!("needs bundle version {TERMS_VERSION} (this set is version {version})"),
            ));
        }
    }
    let in_range = |field: String, n: u32, lo: u32, hi: u32, unit: &str| {
        if (lo..=hi).contains(&n) {
            Ok(())
        } else {
            Err(invalid(
                field,
                format!("must be between {lo} and {hi} {unit}"),
            ))
        }
    };
    match p.callback_within {
        Some(CallbackWithin::Hours(n)) => {
            in_range(format!("{at}.callback_within.hours"), n, 1, 720, "hours")?
        }
        Some(CallbackWithin::WorkingDays(n)) => in_range(
            format!("{at}.callback_within.working_days"),
            n,
            1,
            30,
            "working days",
        )?,
        None => {}
    }
    if let Some(r) = p.clinic_retention {
        in_range(
            format!("{at}.clinic_retention.days"),
            r.days,
            0,
            365,
            "days",
        )?;
    }
    match p.never_reached_after {
        Some(NeverReachedAfter::Days(n)) => {
            in_range(format!("{at}.never_reached_after.days"), n, 1, 60, "days")?
        }
        Some(NeverReachedAfter::Attempts(n)) => in_range(
            format!("{at}.never_reached_after.attempts"),
            n,
            1,
            20,
            "attempts",
        )?,
        None => {}
    }
    Ok(())
}

/// One clinic service has one HPKE key set and one receipt key: a program that names the
/// endpoint of an earlier one with other keys or TLS trust would have referrals sealed to a key
/// the service does not hold, or receipts refused that it signed. Endpoints are compared as the
/// service is reached: the host's case does not matter, and `:443` is the same as no port.
fn check_one_service_per_endpoint(
    earlier: &[Program],
    p: &Program,
    at: &str,
) -> Result<(), BundleError> {
    let service = endpoint_service(&p.clinic.endpoint);
    for (j, other) in earlier.iter().enumerate() {
        let (a, b) = (&other.clinic, &p.clinic);
        if endpoint_service(&a.endpoint) == service
            && (a.tls != b.tls || a.hpke_keys != b.hpke_keys || a.receipt_key != b.receipt_key)
        {
            return Err(invalid(
                format!("{at}.clinic.endpoint"),
                format!("another program (programs[{j}]) names this endpoint with other keys or TLS trust"),
            ));
        }
    }
    Ok(())
}

/// A validated endpoint in the form two spellings of the same service share: the host in
/// lowercase (host names are case-insensitive), an explicit default port dropped; the path as
/// written (paths are case-sensitive).
fn endpoint_service(url: &str) -> String {
    let rest = url.strip_prefix("https://").unwrap_or(url);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let authority = authority.to_ascii_lowercase();
    let authority = authority.strip_suffix(":443").unwrap_or(&authority);
    format!("{authority}{path}")
}

/// Text a person reads (a name, an id): no control characters (a newline only where `multiline`)
/// and no bidi controls, so nothing in a bundle can act on a terminal or read differently on
/// screen than it is stored.
fn check_text(field: impl Into<String>, value: &str, multiline: bool) -> Result<(), BundleError> {
    if value
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t')))
    {
        return Err(invalid(field, "holds control characters"));
    }
    if value.chars().any(crate::text::is_bidi_control) {
        return Err(invalid(
            field,
            "holds bidi (text-direction) control characters",
        ));
    }
    if crate::text::is_blank(value) {
        return Err(invalid(field, "must not be empty"));
    }
    Ok(())
}

/// Whether `id` has a program id's shape: 1–64 lowercase letters, digits and hyphens.
pub fn is_program_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn validate_program(p: &Program, at: &str, issued: DateTime<Utc>) -> Result<(), BundleError> {
    if !is_program_id(&p.id) {
        return Err(invalid(
            format!("{at}.id"),
            "use 1–64 lowercase letters, digits and hyphens",
        ));
    }
    for (name, value) in [
        ("name", &p.name),
        ("operator", &p.operator),
        ("clinic.name", &p.clinic.name),
        ("callback_promise.sv", &p.callback_promise.sv),
        ("callback_promise.en", &p.callback_promise.en),
    ] {
        check_text(format!("{at}.{name}"), value, false)?;
    }
    let rules = &p.eligibility;
    if rules.minimum_age > 130 {
        return Err(invalid(
            format!("{at}.eligibility.minimum_age"),
            "must be at most 130",
        ));
    }
    if rules.kommunkoder.is_empty() {
        return Err(invalid(
            format!("{at}.eligibility.kommunkoder"),
            "at least one kommunkod is needed",
        ));
    }
    for (j, k) in rules.kommunkoder.iter().enumerate() {
        if rules.kommunkoder[..j].contains(k) {
            return Err(invalid(
                format!("{at}.eligibility.kommunkoder[{j}]"),
                format!("{k:?} is listed twice"),
            ));
        }
        if crate::geo::municipality_by_code(k).is_none() {
            return Err(invalid(
                format!("{at}.eligibility.kommunkoder[{j}]"),
                format!("{k:?} is not a Swedish kommunkod"),
            ));
        }
    }
    if p.fields.phone == Need::Never {
        return Err(invalid(
            format!("{at}.fields.phone"),
            "the clinic phones the person: the phone number cannot be 'never'",
        ));
    }
    if p.draft_lifetime_hours == 0 || p.draft_lifetime_hours > 24 * 30 {
        return Err(invalid(
            format!("{at}.draft_lifetime_hours"),
            "must be between 1 and 720 hours",
        ));
    }
    for lang in [Lang::Sv, Lang::En] {
        if p.consent_script(lang).is_none() {
            return Err(invalid(
                format!("{at}.consent_scripts"),
                format!("a consent script in {:?} is needed", lang.code()),
            ));
        }
    }
    let mut langs = BTreeSet::new();
    for (j, s) in p.consent_scripts.iter().enumerate() {
        let sat = format!("{at}.consent_scripts[{j}]");
        if !langs.insert(s.language.code()) {
            return Err(invalid(
                &sat,
                "more than one current script in the same language",
            ));
        }
        if s.id.trim().is_empty() || s.text.trim().is_empty() || s.version == 0 {
            return Err(invalid(&sat, "id, text and a version ≥ 1 are needed"));
        }
        check_text(format!("{sat}.id"), &s.id, false)?;
        check_text(format!("{sat}.text"), &s.text, true)?;
        if p.revokes_script(&s.id, s.version) {
            return Err(invalid(&sat, "a current script cannot also be revoked"));
        }
        if crypto::sha256_hex(s.text.as_bytes()) != s.sha256 {
            return Err(invalid(
                format!("{sat}.sha256"),
                "does not match the SHA-256 of the text",
            ));
        }
    }
    let clinic = &p.clinic;
    let cat = format!("{at}.clinic");
    if clinic.name.trim().is_empty() {
        return Err(invalid(format!("{cat}.name"), "must not be empty"));
    }
    validate_endpoint(&clinic.endpoint).map_err(|r| invalid(format!("{cat}.endpoint"), r))?;
    // Pins alone would need a trust design of their own (what a pin-only handshake checks, how
    // a backup pin is rolled): until then the clinic's CA is required and pins narrow it.
    let Some(pem) = &clinic.tls.ca_pem else {
        return Err(invalid(
            format!("{cat}.tls.ca_pem"),
            "the clinic's CA certificate is needed (SPKI pins alone are not supported)",
        ));
    };
    check_ca_pem(pem).map_err(|r| invalid(format!("{cat}.tls.ca_pem"), r))?;
    for (j, pin) in clinic.tls.spki_sha256_pins.iter().enumerate() {
        let ok = crypto::unb64(pin, "pin")
            .map(|b| b.len() == 32)
            .unwrap_or(false);
        if !ok {
            return Err(invalid(
                format!("{cat}.tls.spki_sha256_pins[{j}]"),
                "must be the base64 of a 32-byte SHA-256",
            ));
        }
    }
    if clinic.hpke_keys.is_empty() {
        return Err(invalid(
            format!("{cat}.hpke_keys"),
            "at least one key is needed",
        ));
    }
    for (j, k) in clinic.hpke_keys.iter().enumerate() {
        let kat = format!("{cat}.hpke_keys[{j}]");
        let ok = crypto::unb64(&k.public_key, "key")
            .map(|b| b.len() == 32)
            .unwrap_or(false);
        if !ok {
            return Err(invalid(
                format!("{kat}.public_key"),
                "must be the base64 of a 32-byte X25519 public key",
            ));
        }
        if k.key_id.trim().is_empty() {
            return Err(invalid(format!("{kat}.key_id"), "must not be empty"));
        }
        if k.not_after <= k.not_before {
            return Err(invalid(
                format!("{kat}.not_after"),
                "must be after not_before",
            ));
        }
        check_text(format!("{kat}.key_id"), &k.key_id, false)?;
        crypto::seal::check_clinic_public_key(&k.public_key).map_err(|_| {
            invalid(
                format!("{kat}.public_key"),
                "is not a usable X25519 public key (all zeros or a low-order point)",
            )
        })?;
    }
    check_keys_valid_at(p, at, issued)?;
    for (j, r) in p.revoked_consent_scripts.iter().enumerate() {
        check_text(
            format!("{at}.revoked_consent_scripts[{j}].id"),
            &r.id,
            false,
        )?;
    }
    check_text(
        format!("{cat}.receipt_key.key_id"),
        &clinic.receipt_key.key_id,
        false,
    )?;
    if clinic.receipt_key.key_id.trim().is_empty() {
        return Err(invalid(
            format!("{cat}.receipt_key.key_id"),
            "must not be empty",
        ));
    }
    PublicKey::from_b64(&clinic.receipt_key.public_key).map_err(|e: CryptoError| {
        invalid(format!("{cat}.receipt_key.public_key"), e.to_string())
    })?;
    for (lang, text) in [
        ("sv", &p.callback_promise.sv),
        ("en", &p.callback_promise.en),
    ] {
        if text.trim().is_empty() {
            return Err(invalid(
                format!("{at}.callback_promise.{lang}"),
                "must not be empty",
            ));
        }
    }
    Ok(())
}

/// At least one of the clinic's HPKE keys is valid at `instant` (the bundle's issue time when it
/// is signed, the device's clock when it is loaded): a bundle whose keys are all not yet valid,
/// or all expired, would let a person consent to a referral that cannot be sealed.
fn check_keys_valid_at(p: &Program, at: &str, instant: DateTime<Utc>) -> Result<(), BundleError> {
    if p.current_hpke_key(instant).is_none() {
        return Err(invalid(
            format!("{at}.clinic.hpke_keys"),
            format!(
                "no key is valid at {} (all are not yet valid or expired)",
                instant.to_rfc3339()
            ),
        ));
    }
    Ok(())
}

/// The CA field: PEM holding exactly one X.509 certificate that can serve as a trust anchor,
/// parsed with the same crates the HTTPS client will use (rustls-pki-types, rustls-webpki).
fn check_ca_pem(pem: &str) -> Result<(), String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    // Nothing but the one certificate: a private key or anything else pasted in is refused, not
    // skipped.
    if pem.matches("-----BEGIN ").count() != 1 {
        return Err("must hold exactly one PEM block, a CERTIFICATE".to_string());
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| "is not a PEM certificate".to_string())?;
    let [cert] = certs.as_slice() else {
        return Err(format!(
            "must hold exactly one PEM certificate, not {}",
            certs.len()
        ));
    };
    webpki::anchor_from_trusted_cert(cert)
        .map(drop)
        .map_err(|e| format!("is not an X.509 certificate that can be trusted: {e}"))
}

/// HTTPS only, with a host name or IP literal and a valid port. Plain HTTP is refused even on
/// loopback: the device never sends personal data unencrypted. The host is plain ASCII (letters,
/// digits, hyphens and dots; an internationalised name in its `xn--` form), so no look-alike or
/// bidi character can hide where referrals go. It is a base URL: the API lives under
/// `{endpoint}/v1/` ([`Clinic::api_url`]), so a query, a fragment, a trailing `/` or an empty,
/// `.` or `..` path segment (which would move the API elsewhere once joined) is refused.
fn validate_endpoint(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| "must start with https://".to_string())?;
    if url.contains('?') {
        return Err(
            "must not carry a query (?): it is the base URL the API paths are added to".to_string(),
        );
    }
    if url.contains('#') {
        return Err(
            "must not carry a fragment (#): it is the base URL the API paths are added to"
                .to_string(),
        );
    }
    if url.ends_with('/') {
        return Err(
            "must not end with /: it is the base URL the API paths (/v1/…) are added to"
                .to_string(),
        );
    }
    let authority = rest.split('/').next().unwrap_or("");
    let path = &rest[authority.len()..];
    if path
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || crate::text::is_bidi_control(c))
    {
        return Err("the path must hold no spaces, control or bidi characters".to_string());
    }
    // A dot segment, also percent-encoded (`%2e`), is resolved away by URL parsers.
    let dot_or_empty = |seg: &str| {
        let seg = seg.to_ascii_lowercase().replace("%2e", ".");
        seg.is_empty() || seg == "." || seg == ".."
    };
    if path.split('/').skip(1).any(dot_or_empty) {
        return Err("the path must hold no empty, . or .. segments".to_string());
    }
    if authority.contains('@') {
        return Err("must not carry a user name or password".to_string());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| "an IPv6 host must be closed with ]".to_string())?;
        addr.parse::<std::net::Ipv6Addr>()
            .map_err(|_| "is not a valid IPv6 address".to_string())?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("must name a host")?),
        };
        (addr, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("must name a host".to_string());
    }
    if let Some(port) = port {
        let ok = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n));
        if !ok {
            return Err("the port must be a number from 1 to 65535".to_string());
        }
    }
    if authority.starts_with('[') {
        return Ok(());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    // A host that a URL parser would read as an IPv4 address must be one: `999.1.1.1`,
    // `2130706433` or `0x7f.1` would hide (or break) where referrals go.
    let numeric = host.rsplit('.').next().is_some_and(|last| {
        last.bytes().all(|b| b.is_ascii_digit())
            || (last.len() > 2 && last.as_bytes()[..2].eq_ignore_ascii_case(b"0x"))
    });
    if numeric && host.parse::<std::net::Ipv4Addr>().is_err() {
        return Err("a numeric host must be a plain IPv4 address (four numbers 0–255)".to_string());
    }
    if host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(
            "the host must be plain ASCII letters, digits, hyphens and dots (an internationalised name in its xn-- form)"
                .to_string(),
        );
    }
    Ok(())
}

/// Reads a time the way the set documents it, with an error that says so: chrono's own ("input
/// contains invalid characters") does not tell an administrator that `2026-12-02T05:48Z`, as some
/// libraries print a time at :00 seconds, lacks its seconds.
fn rfc3339<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<FixedOffset>, D::Error> {
    let text = String::deserialize(d)?;
    DateTime::parse_from_rfc3339(&text).map_err(|_| {
        serde::de::Error::custom(
            "a time must be RFC 3339 with seconds and an offset, like 2026-11-01T00:00:00+01:00",
        )
    })
}

fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, BundleError> {
    serde_json::from_slice(bytes).map_err(|e| BundleError::Malformed {
        reason: e.to_string(),
    })
}

/// Verifies a signed bundle against the administrator's public key at an instant.
///
/// Order matters: the signature is checked on the bytes as shipped before anything inside them is
/// believed; then format, version, rules and expiry.
pub fn verify(signed: &str, trust: &PublicKey, now: DateTime<Utc>) -> Result<Bundle, BundleError> {
    let envelope: SignedEnvelope = parse_json(signed.as_bytes())?;
    if envelope.format != SIGNED_FORMAT {
        return Err(BundleError::UnsupportedFormat {
            found: envelope.format,
        });
    }
    if envelope.version != ENVELOPE_VERSION {
        return Err(BundleError::UnsupportedEnvelopeVersion {
            found: envelope.version,
        });
    }
    if envelope.key_id != trust.key_id() {
        return Err(BundleError::UnknownSigner {
            key_id: envelope.key_id,
        });
    }
    let payload =
        crypto::unb64(&envelope.payload, "payload").map_err(|e| BundleError::Malformed {
            reason: e.to_string(),
        })?;
    let signature =
        crypto::unb64(&envelope.signature, "signature").map_err(|_| BundleError::BadSignature)?;
    trust
        .verify(&payload, &signature)
        .map_err(|_| BundleError::BadSignature)?;
    let set: ProgramSet = parse_json(&payload)?;
    set.validate()?;
    if now >= set.expires_at {
        return Err(BundleError::Expired {
            expired_at: set.expires_at.to_rfc3339(),
        });
    }
    if set.issued_at > now + FUTURE_TOLERANCE {
        return Err(BundleError::FromFuture {
            issued_at: set.issued_at.to_rfc3339(),
        });
    }
    for (i, p) in set.programs.iter().enumerate() {
        check_keys_valid_at(p, &format!("programs[{i}]"), now)?;
    }
    Ok(Bundle {
        payload_sha256: crypto::sha256_hex(&payload),
        set,
        signer: *trust,
    })
}

/// The example programs shipped in `schemas/examples/` (endpoints on localhost, marked as examples).
pub const EXAMPLE_PROGRAMS_JSON: &str =
    include_str!("../../schemas/examples/programs.example.json");

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
    }

    fn example() -> ProgramSet {
        ProgramSet::from_json(EXAMPLE_PROGRAMS_JSON).expect("the example is valid")
    }

    #[test]
    fn a_clinic_json_replaces_the_clinic_of_exactly_the_programs_that_name_its_endpoint() {
        let mut set = example();
        let before = set.clone();
        let mut clinic = set.programs[0].clinic.clone();
        clinic.name = "Mottagningen, ny nyckel".into();
        clinic.receipt_key.key_id = "receipt-2".into();
        let endpoint = clinic.endpoint.clone();
        let named = before
            .programs
            .iter()
            .filter(|p| p.clinic.endpoint == endpoint)
            .count();
        assert_eq!(set.merge_clinic(&clinic), named);
        for (p, old) in set.programs.iter().zip(&before.programs) {
            if old.clinic.endpoint == endpoint {
                assert_eq!(p.clinic, clinic);
            } else {
                assert_eq!(p.clinic, old.clinic);
            }
        }
        clinic.endpoint = "https://nowhere.example".into();
        assert_eq!(set.merge_clinic(&clinic), 0);
    }

    /// The example programs as a version 1 set (before the clinic's terms), kept so that version
    /// 1 bundles are shown to load.
    const EXAMPLE_V1_JSON: &str = include_str!("../../schemas/examples/programs.v1.example.json");

    fn example_v1() -> ProgramSet {
        ProgramSet::from_json(EXAMPLE_V1_JSON).expect("the version 1 example is valid")
    }

    /// The example set as JSON, changed by `change`, read back by `from_json`.
    fn example_json_with(
        change: impl FnOnce(&mut serde_json::Value),
    ) -> Result<ProgramSet, BundleError> {
        let mut v: serde_json::Value = serde_json::from_str(EXAMPLE_PROGRAMS_JSON).unwrap();
        change(&mut v);
        ProgramSet::from_json(&v.to_string())
    }

    /// Signs JSON by hand (no checks), as an attacker or another tool would, so the load side
    /// must refuse it on its own.
    fn hand_signed_json(v: &serde_json::Value, key: &SigningKey) -> String {
        let payload = serde_json::to_vec(v).unwrap();
        let env = SignedEnvelope {
            format: SIGNED_FORMAT.into(),
            version: ENVELOPE_VERSION,
            key_id: key.public_key().key_id(),
            payload: crypto::b64(&payload),
            signature: crypto::b64(&key.sign(&payload)),
        };
        serde_json::to_string(&env).unwrap()
    }

    /// The error names `field` exactly and its reason holds `reason`.
    #[track_caller]
    fn assert_invalid(
        result: Result<impl std::fmt::Debug, BundleError>,
        field: &str,
        reason: &str,
    ) {
        match result {
            Err(BundleError::Invalid {
                field: f,
                reason: r,
            }) => {
                assert_eq!(f, field, "{r}");
                assert!(r.contains(reason), "{field}: {r:?} does not say {reason:?}");
            }
            other => panic!("{field}: expected Invalid, got {other:?}"),
        }
    }

    fn signed() -> (SigningKey, String) {
        let key = SigningKey::generate().unwrap();
        let text = example().sign(&key).unwrap();
        (key, text)
    }

    #[test]
    fn the_example_has_the_four_programs_with_scripts_in_both_languages() {
        let set = example();
        let ids: Vec<_> = set.programs.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "lots-for-livet",
                "snackan-gislaved",
                "snackan-ggvv",
                "kalmar"
            ]
        );
        assert!(set.example);
        for p in &set.programs {
            assert!(
                p.clinic.endpoint.starts_with("https://localhost"),
                "{}",
                p.id
            );
            for lang in [Lang::Sv, Lang::En] {
                assert!(p.consent_script(lang).is_some(), "{} {lang:?}", p.id);
            }
        }
        let ggvv = set
            .programs
            .iter()
            .find(|p| p.id == "snackan-ggvv")
            .unwrap();
        assert_eq!(
            ggvv.eligibility.kommunkoder,
            ["0662", "0617", "0665", "0683"]
        );
    }

    #[test]
    fn a_signed_bundle_verifies_with_the_right_key() {
        let (key, text) = signed();
        let bundle = verify(&text, &key.public_key(), now()).unwrap();
        assert_eq!(bundle.set(), &example());
        assert_eq!(
            bundle.program("kalmar").unwrap().eligibility.kommunkoder,
            ["0880"]
        );
        assert_eq!(bundle.payload_sha256().len(), 64);
    }

    #[test]
    fn signing_is_deterministic_over_the_canonical_bytes() {
        let key = SigningKey::generate().unwrap();
        assert_eq!(example().sign(&key).unwrap(), example().sign(&key).unwrap());
    }

    #[test]
    fn another_key_is_an_unknown_signer() {
        let (_, text) = signed();
        let other = SigningKey::generate().unwrap().public_key();
        assert!(matches!(
            verify(&text, &other, now()),
            Err(BundleError::UnknownSigner { .. })
        ));
    }

    #[test]
    fn any_flipped_byte_in_the_payload_is_refused() {
        let (key, text) = signed();
        let mut env: SignedEnvelope = serde_json::from_str(&text).unwrap();
        let payload = crypto::unb64(&env.payload, "p").unwrap();
        for i in (0..payload.len()).step_by(97) {
            let mut p = payload.clone();
            p[i] ^= 0x01;
            env.payload = crypto::b64(&p);
            let tampered = serde_json::to_string(&env).unwrap();
            assert_eq!(
                verify(&tampered, &key.public_key(), now()).unwrap_err(),
                BundleError::BadSignature,
                "byte {i}"
            );
        }
    }

    #[test]
    fn a_flipped_byte_anywhere_in_the_file_gives_a_typed_error() {
        let (key, text) = signed();
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            let mut b = bytes.to_vec();
            b[i] ^= 0x01;
            let Ok(t) = String::from_utf8(b) else {
                continue;
            };
            if t == text {
                continue;
            }
            let result = verify(&t, &key.public_key(), now());
            // Whitespace changes outside the signed bytes are harmless; anything else is refused.
            if let Ok(bundle) = result {
                assert_eq!(bundle.set(), &example(), "byte {i} changed the content");
            }
        }
    }

    #[test]
    fn an_unsigned_set_is_not_a_bundle() {
        let key = SigningKey::generate().unwrap();
        let err = verify(EXAMPLE_PROGRAMS_JSON, &key.public_key(), now()).unwrap_err();
        assert!(matches!(err, BundleError::Malformed { .. }), "{err:?}");
    }

    #[test]
    fn expired_and_unknown_versions_are_refused() {
        let key = SigningKey::generate().unwrap();
        let text = example().sign(&key).unwrap();
        let later = example().expires_at.with_timezone(&Utc);
        assert!(matches!(
            verify(&text, &key.public_key(), later),
            Err(BundleError::Expired { .. })
        ));
        let mut env: SignedEnvelope = serde_json::from_str(&text).unwrap();
        env.version = 2;
        let err = verify(
            &serde_json::to_string(&env).unwrap(),
            &key.public_key(),
            now(),
        )
        .unwrap_err();
        assert_eq!(err, BundleError::UnsupportedEnvelopeVersion { found: 2 });
        assert_eq!(err.code(), "bundle_unsupported_version");
        assert!(
            err.message(Lang::En).contains("envelope version 1"),
            "{err}"
        );
        assert!(err.message(Lang::Sv).contains("kuvertversion 1"), "{err}");
        let mut set = example();
        set.version = 3;
        let err = verify(&hand_signed(&set, &key), &key.public_key(), now()).unwrap_err();
        assert_eq!(err, BundleError::UnsupportedVersion { found: 3 });
    }

    #[test]
    fn an_unsupported_version_says_which_versions_the_app_reads() {
        for version in [0, 3, 99] {
            let mut set = example();
            set.version = version;
            let key = SigningKey::generate().unwrap();
            let err = set.sign(&key).unwrap_err();
            assert_eq!(err, BundleError::UnsupportedVersion { found: version });
            assert_eq!(err.code(), "bundle_unsupported_version");
            let en = err.message(Lang::En);
            assert!(en.contains(&format!("version {version} ")), "{en}");
            assert!(en.contains("this app reads versions 1 and 2"), "{en}");
            let sv = err.message(Lang::Sv);
            assert!(sv.contains("appen läser version 1 och 2"), "{sv}");
        }
    }

    #[test]
    fn a_signed_but_schema_invalid_set_is_refused() {
        // The administrator's tool would refuse to sign it; a hand-made signature must not help.
        let key = SigningKey::generate().unwrap();
        let mut value: serde_json::Value = serde_json::from_str(EXAMPLE_PROGRAMS_JSON).unwrap();
        value["programs"][0]["eligibility"]["minimum_age"] = serde_json::json!("eighteen");
        let payload = serde_json::to_vec(&value).unwrap();
        let env = SignedEnvelope {
            format: SIGNED_FORMAT.into(),
            version: ENVELOPE_VERSION,
            key_id: key.public_key().key_id(),
            payload: crypto::b64(&payload),
            signature: crypto::b64(&key.sign(&payload)),
        };
        let err = verify(
            &serde_json::to_string(&env).unwrap(),
            &key.public_key(),
            now(),
        );
        assert!(matches!(err, Err(BundleError::Malformed { .. })), "{err:?}");
    }

    /// Signs a set by hand, without the administrator tool's checks, as an attacker would.
    fn hand_signed(set: &ProgramSet, key: &SigningKey) -> String {
        let payload = set.canonical_bytes();
        let env = SignedEnvelope {
            format: SIGNED_FORMAT.into(),
            version: ENVELOPE_VERSION,
            key_id: key.public_key().key_id(),
            payload: crypto::b64(&payload),
            signature: crypto::b64(&key.sign(&payload)),
        };
        serde_json::to_string(&env).unwrap()
    }

    #[test]
    fn bundle_mistakes_that_would_fail_at_finalize_are_refused_at_sign_and_at_load() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap();
        let key = |b: [u8; 32]| crypto::b64(&b);
        let mut one = [0u8; 32];
        one[0] = 1;
        // A point of order 8 (from the published list of Curve25519's low-order points).
        let order8: [u8; 32] = [
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
        ];
        let mut p_minus_1 = [0xffu8; 32];
        p_minus_1[0] = 0xec;
        p_minus_1[31] = 0x7f;
        type Change = Box<dyn Fn(&mut ProgramSet)>;
        let hpke = |f: fn(&mut HpkeKey)| -> Change {
            Box::new(move |s: &mut ProgramSet| f(&mut s.programs[0].clinic.hpke_keys[0]))
        };
        let endpoint = |url: &'static str| -> Change {
            Box::new(move |s: &mut ProgramSet| s.programs[1].clinic.endpoint = url.into())
        };
        let ca = |pem: &'static str| -> Change {
            Box::new(move |s: &mut ProgramSet| s.programs[2].clinic.tls.ca_pem = Some(pem.into()))
        };
        let cases: Vec<(&str, &str, Change)> = vec![
            (
                "all-zero key",
                "hpke_keys[0].public_key",
                hpke(|k| k.public_key = crypto::b64(&[0u8; 32])),
            ),
            (
                "the point 1",
                "hpke_keys[0].public_key",
                Box::new(move |s| s.programs[0].clinic.hpke_keys[0].public_key = key(one)),
            ),
            (
                "a point of order 8",
                "hpke_keys[0].public_key",
                Box::new(move |s| s.programs[0].clinic.hpke_keys[0].public_key = key(order8)),
            ),
            (
                "p − 1",
                "hpke_keys[0].public_key",
                Box::new(move |s| s.programs[0].clinic.hpke_keys[0].public_key = key(p_minus_1)),
            ),
            (
                "keys only valid later",
                "hpke_keys",
                hpke(|k| {
                    k.not_before =
                        DateTime::parse_from_rfc3339("2028-01-01T00:00:00+01:00").unwrap();
                    k.not_after =
                        DateTime::parse_from_rfc3339("2029-01-01T00:00:00+01:00").unwrap();
                }),
            ),
            (
                "keys expired before issue",
                "hpke_keys",
                hpke(|k| {
                    k.not_before =
                        DateTime::parse_from_rfc3339("2025-01-01T00:00:00+01:00").unwrap();
                    k.not_after =
                        DateTime::parse_from_rfc3339("2025-06-01T00:00:00+01:00").unwrap();
                }),
            ),
            (
                "port 99999",
                "endpoint",
                endpoint("https://clinic.example:99999/intake"),
            ),
            (
                "port 0",
                "endpoint",
                endpoint("https://clinic.example:0/intake"),
            ),
            (
                "a port with letters",
                "endpoint",
                endpoint("https://clinic.example:84a3"),
            ),
            (
                "an empty port",
                "endpoint",
                endpoint("https://clinic.example:"),
            ),
            (
                "a bidi character in the host",
                "endpoint",
                endpoint("https://clinic\u{202E}elpmaxe.se"),
            ),
            (
                "a Cyrillic look-alike host",
                "endpoint",
                endpoint("https://snäckan.sе"),
            ),
            (
                "a user in the URL",
                "endpoint",
                endpoint("https://admin@clinic.example"),
            ),
            (
                "a broken IPv6 literal",
                "endpoint",
                endpoint("https://[::1/intake"),
            ),
            (
                "a label ending in a hyphen",
                "endpoint",
                endpoint("https://clinic-.example"),
            ),
            (
                "a CA that is not a certificate",
                "ca_pem",
                ca("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"),
            ),
            (
                "a CA with no PEM at all",
                "ca_pem",
                ca("MIIBzjCCAXWgAwIBAgIU"),
            ),
            (
                "a private key instead of a CA",
                "ca_pem",
                ca("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            ),
            (
                "pins but no CA",
                "ca_pem",
                Box::new(|s| s.programs[3].clinic.tls.ca_pem = None),
            ),
            (
                "an escape sequence in a program name",
                "name",
                Box::new(|s| s.programs[0].name = "Lots\u{1b}[2J".into()),
            ),
            (
                "a bell in the bundle id",
                "bundle_id",
                Box::new(|s| s.bundle_id.push('\u{7}')),
            ),
            (
                "a bidi override in the clinic name",
                "clinic.name",
                Box::new(|s| s.programs[1].clinic.name = "Snäckan \u{202E}ngiS".into()),
            ),
            (
                "a zero-width operator",
                "operator",
                Box::new(|s| s.programs[1].operator = "\u{200B}".into()),
            ),
            (
                "a newline in a key id",
                "key_id",
                Box::new(|s| s.programs[0].clinic.hpke_keys[0].key_id = "k1\nk2".into()),
            ),
            (
                "a revoked current script",
                "consent_scripts",
                Box::new(|s| {
                    let cur = &s.programs[0].consent_scripts[0];
                    let v = ScriptVersion {
                        id: cur.id.clone(),
                        version: cur.version,
                    };
                    s.programs[0].revoked_consent_scripts.push(v);
                }),
            ),
        ];
        let signer = SigningKey::generate().unwrap();
        for (what, field, change) in cases {
            let mut set = example();
            change(&mut set);
            let refused = |e: &BundleError| matches!(e, BundleError::Invalid { field: f, .. } if f.contains(field));
            let at_sign = set.sign(&signer).unwrap_err();
            assert!(refused(&at_sign), "{what}: at sign {at_sign:?}");
            let at_load =
                verify(&hand_signed(&set, &signer), &signer.public_key(), now()).unwrap_err();
            assert!(refused(&at_load), "{what}: at load {at_load:?}");
            assert!(!at_sign.message(Lang::Sv).contains('\u{1b}'));
        }
        // Ordinary endpoints still pass.
        for url in [
            "https://localhost:8443/x",
            "https://10.0.0.7",
            "https://[::1]:8443",
            "https://xn--snckan-gua.se",
        ] {
            assert_eq!(validate_endpoint(url), Ok(()), "{url}");
        }
        // A key that is valid at signing but expired by the time a phone loads the bundle.
        let mut set = example();
        set.programs[0].clinic.hpke_keys[0].not_after = at("2026-11-20T00:00:00+01:00");
        let text = set.sign(&signer).unwrap();
        let err = verify(&text, &signer.public_key(), now()).unwrap_err();
        assert!(
            matches!(err, BundleError::Invalid { ref field, .. } if field.ends_with("hpke_keys")),
            "{err:?}"
        );
    }

    #[test]
    fn a_bundle_from_the_future_is_refused_beyond_an_hour() {
        let signer = SigningKey::generate().unwrap();
        let issued = |set: &mut ProgramSet, t: DateTime<Utc>| {
            set.issued_at = t.fixed_offset();
            set.expires_at = (t + chrono::Duration::days(365)).fixed_offset();
            for p in &mut set.programs {
                p.clinic.hpke_keys[0].not_after = (t + chrono::Duration::days(365)).fixed_offset();
            }
        };
        let mut set = example();
        issued(&mut set, now() + chrono::Duration::minutes(59));
        assert!(verify(&set.sign(&signer).unwrap(), &signer.public_key(), now()).is_ok());
        issued(&mut set, now() + FUTURE_TOLERANCE);
        assert!(verify(&set.sign(&signer).unwrap(), &signer.public_key(), now()).is_ok());
        for ahead in [
            chrono::Duration::minutes(61),
            chrono::Duration::days(365 * 4),
        ] {
            issued(&mut set, now() + ahead);
            let err = verify(&set.sign(&signer).unwrap(), &signer.public_key(), now()).unwrap_err();
            assert_eq!(err.code(), "bundle_from_future", "{ahead}");
            assert!(err.message(Lang::En).contains("clock"));
            assert!(err.message(Lang::Sv).contains("klocka"));
        }
    }

    #[test]
    fn rules_the_schema_cannot_see_are_checked() {
        type Change = Box<dyn Fn(&mut ProgramSet)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "programs[0].eligibility.kommunkoder[0]",
                Box::new(|s| s.programs[0].eligibility.kommunkoder[0] = "0000".into()),
            ),
            (
                "programs[1].consent_scripts[0].sha256",
                Box::new(|s| s.programs[1].consent_scripts[0].text.push('!')),
            ),
            (
                "programs[0].clinic.endpoint",
                Box::new(|s| s.programs[0].clinic.endpoint = "http://localhost:8443".into()),
            ),
            (
                "programs[1].id",
                Box::new(|s| s.programs[1].id = s.programs[0].id.clone()),
            ),
            (
                "programs[0].fields.phone",
                Box::new(|s| s.programs[0].fields.phone = Need::Never),
            ),
            (
                "programs[2].clinic.hpke_keys[0].public_key",
                Box::new(|s| s.programs[2].clinic.hpke_keys[0].public_key = "AAAA".into()),
            ),
            (
                "programs[3].consent_scripts",
                Box::new(|s| {
                    s.programs[3]
                        .consent_scripts
                        .retain(|c| c.language != Lang::En)
                }),
            ),
        ];
        for (field, change) in cases {
            let mut set = example();
            change(&mut set);
            match set.validate() {
                Err(BundleError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
            let key = SigningKey::generate().unwrap();
            assert!(set.sign(&key).is_err(), "{field}: signing must refuse too");
        }
    }

    #[test]
    fn errors_have_codes_and_swedish_texts() {
        let e = BundleError::BadSignature;
        assert_eq!(e.code(), "bundle_bad_signature");
        assert!(e.message(Lang::Sv).contains("signatur"));
        assert!(e.message(Lang::En).contains("signature"));
    }

    #[test]
    fn the_current_hpke_key_respects_validity() {
        let p = &example().programs[0];
        let k = p.current_hpke_key(now()).unwrap();
        assert!(k.not_before.with_timezone(&Utc) <= now());
        let long_ago = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
        assert!(p.current_hpke_key(long_ago).is_none());
    }

    #[test]
    fn bundles_of_version_1_and_2_both_sign_and_verify() {
        let key = SigningKey::generate().unwrap();
        let v1 = example_v1();
        assert_eq!(v1.version, 1);
        let bundle = verify(&v1.sign(&key).unwrap(), &key.public_key(), now()).unwrap();
        assert_eq!(bundle.set(), &v1);
        for p in bundle.programs() {
            assert_eq!(p.callback_within, None, "{}", p.id);
            assert_eq!(p.clinic_retention, None, "{}", p.id);
            assert_eq!(p.never_reached_after, None, "{}", p.id);
            assert_eq!(p.fhir_export, None, "{}", p.id);
        }

        let v2 = example();
        assert_eq!(v2.version, LATEST_SET_VERSION);
        let bundle = verify(&v2.sign(&key).unwrap(), &key.public_key(), now()).unwrap();
        assert_eq!(bundle.set(), &v2);
        let lfl = bundle.program("lots-for-livet").unwrap();
        assert_eq!(lfl.callback_within, Some(CallbackWithin::WorkingDays(2)));
        assert_eq!(lfl.clinic_retention, Some(ClinicRetention { days: 30 }));
        assert_eq!(
            lfl.never_reached_after,
            Some(NeverReachedAfter::Attempts(5))
        );
        assert_eq!(lfl.fhir_export, Some(true));
        for id in ["snackan-gislaved", "snackan-ggvv"] {
            let p = bundle.program(id).unwrap();
            assert_eq!(p.callback_within, Some(CallbackWithin::Hours(24)), "{id}");
            assert_eq!(
                p.clinic_retention,
                Some(ClinicRetention { days: 7 }),
                "{id}"
            );
            assert_eq!(
                p.never_reached_after,
                Some(NeverReachedAfter::Days(7)),
                "{id}"
            );
            assert_eq!(p.fhir_export, Some(false), "{id}");
        }
        let kalmar = bundle.program("kalmar").unwrap();
        assert_eq!(kalmar.callback_within, Some(CallbackWithin::WorkingDays(3)));
        assert_eq!(kalmar.fhir_export, Some(true));

        // Apart from the version and the terms, the two examples are the same programs.
        let mut stripped = v2.clone();
        stripped.version = 1;
        for p in &mut stripped.programs {
            p.callback_within = None;
            p.clinic_retention = None;
            p.never_reached_after = None;
            p.fhir_export = None;
        }
        assert_eq!(stripped, v1);
    }

    #[test]
    fn the_example_promises_say_what_their_deadlines_say() {
        for p in &example().programs {
            let (sv, en) = match p.callback_within {
                Some(CallbackWithin::WorkingDays(2)) => {
                    ("inom två vardagar", "within two working days")
                }
                Some(CallbackWithin::WorkingDays(3)) => {
                    ("inom tre vardagar", "within three working days")
                }
                Some(CallbackWithin::Hours(24)) => ("inom 24 timmar", "within 24 hours"),
                other => panic!("{}: no promise text known for {other:?}", p.id),
            };
            assert!(p.callback_promise.sv.contains(sv), "{}", p.id);
            assert!(p.callback_promise.en.contains(en), "{}", p.id);
        }
    }

    #[test]
    fn a_version_1_set_signs_to_the_same_bytes_as_before_version_2() {
        let key = SigningKey::generate().unwrap();
        let signed = example_v1().sign(&key).unwrap();
        let env: SignedEnvelope = serde_json::from_str(&signed).unwrap();
        assert_eq!(env.version, ENVELOPE_VERSION);
        let payload = crypto::unb64(&env.payload, "payload").unwrap();
        let decoded: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(decoded["version"], 1);
        for (i, p) in decoded["programs"].as_array().unwrap().iter().enumerate() {
            for key in [
                "callback_within",
                "clinic_retention",
                "never_reached_after",
                "fhir_export",
            ] {
                assert!(p.get(key).is_none(), "programs[{i}] has {key}");
            }
        }
        // Byte for byte: the SHA-256 of these bytes as the core before version 2 produced them
        // from this file (a bundle already signed must keep verifying and keep its floor hash).
        assert_eq!(
            crypto::sha256_hex(&payload),
            "230baef9027d6e2ede13f2bb6d0a7e83491afa04ac0fa097af27e80a91ca38ca"
        );
    }

    #[test]
    fn a_version_2_set_without_one_of_the_terms_is_refused_naming_it() {
        type Change = fn(&mut Program);
        let cases: [(&str, Change); 4] = [
            ("callback_within", |p| p.callback_within = None),
            ("clinic_retention", |p| p.clinic_retention = None),
            ("never_reached_after", |p| p.never_reached_after = None),
            ("fhir_export", |p| p.fhir_export = None),
        ];
        let key = SigningKey::generate().unwrap();
        for (name, change) in cases {
            let mut set = example();
            change(&mut set.programs[2]);
            let field = format!("programs[2].{name}");
            assert_invalid(set.validate(), &field, "required in bundle version 2");
            assert_invalid(set.sign(&key), &field, "required in bundle version 2");
            let at_load = verify(&hand_signed(&set, &key), &key.public_key(), now());
            assert_invalid(at_load, &field, "required in bundle version 2");
            // The same from the JSON an administrator writes.
            let from_json = example_json_with(|v| {
                v["programs"][2].as_object_mut().unwrap().remove(name);
            });
            assert_invalid(from_json, &field, "required in bundle version 2");
        }
    }

    #[test]
    fn a_version_1_set_carrying_a_term_is_refused() {
        type Change = fn(&mut Program);
        let cases: [(&str, Change); 4] = [
            ("callback_within", |p| {
                p.callback_within = Some(CallbackWithin::Hours(24))
            }),
            ("clinic_retention", |p| {
                p.clinic_retention = Some(ClinicRetention { days: 7 })
            }),
            ("never_reached_after", |p| {
                p.never_reached_after = Some(NeverReachedAfter::Days(7))
            }),
            ("fhir_export", |p| p.fhir_export = Some(false)),
        ];
        let key = SigningKey::generate().unwrap();
        for (name, change) in cases {
            let mut set = example_v1();
            change(&mut set.programs[1]);
            let field = format!("programs[1].{name}");
            assert_invalid(set.sign(&key), &field, "needs bundle version 2");
            let at_load = verify(&hand_signed(&set, &key), &key.public_key(), now());
            assert_invalid(at_load, &field, "needs bundle version 2");
        }
        // Nor can a version 1 set carry one as null (which would otherwise read as absent).
        let mut v: serde_json::Value = serde_json::from_str(EXAMPLE_V1_JSON).unwrap();
        v["programs"][0]["fhir_export"] = serde_json::Value::Null;
        let err = ProgramSet::from_json(&v.to_string()).unwrap_err();
        assert!(matches!(err, BundleError::Malformed { .. }), "{err:?}");
        let err = verify(&hand_signed_json(&v, &key), &key.public_key(), now()).unwrap_err();
        assert!(matches!(err, BundleError::Malformed { .. }), "{err:?}");
    }

    #[test]
    fn a_bad_callback_deadline_is_refused_at_sign_time() {
        let key = SigningKey::generate().unwrap();
        // Out of range: refused by the rules, naming the field and the range.
        for (value, field, range) in [
            (CallbackWithin::Hours(0), "hours", "between 1 and 720 hours"),
            (
                CallbackWithin::Hours(721),
                "hours",
                "between 1 and 720 hours",
            ),
            (
                CallbackWithin::WorkingDays(0),
                "working_days",
                "between 1 and 30 working days",
            ),
            (
                CallbackWithin::WorkingDays(31),
                "working_days",
                "between 1 and 30 working days",
            ),
        ] {
            let mut set = example();
            set.programs[1].callback_within = Some(value);
            let path = format!("programs[1].callback_within.{field}");
            assert_invalid(set.sign(&key), &path, range);
            let at_load = verify(&hand_signed(&set, &key), &key.public_key(), now());
            assert_invalid(at_load, &path, range);
            let json = serde_json::to_value(value).unwrap();
            let from_json = example_json_with(|v| v["programs"][1]["callback_within"] = json);
            assert_invalid(from_json, &path, range);
        }
        // Not one of the two shapes: the set cannot even be read, so it is never signed. The
        // parser's words say what is wrong.
        for (bad, says) in [
            (
                serde_json::json!({"hours": 1, "working_days": 2}),
                "exactly one of `hours` and `working_days`",
            ),
            (
                serde_json::json!({}),
                "exactly one of `hours` and `working_days`",
            ),
            (
                serde_json::json!({"minutes": 30}),
                "unknown field `minutes`",
            ),
            (serde_json::json!({"hours": -1}), "invalid value"),
            (serde_json::json!({"hours": "24"}), "invalid type"),
            (serde_json::json!(24), "invalid type"),
            (serde_json::json!(null), "invalid type"),
        ] {
            let mut v: serde_json::Value = serde_json::from_str(EXAMPLE_PROGRAMS_JSON).unwrap();
            v["programs"][1]["callback_within"] = bad.clone();
            let err = ProgramSet::from_json(&v.to_string()).unwrap_err();
            assert!(
                matches!(&err, BundleError::Malformed { reason } if reason.contains(says)),
                "{bad}: {err:?}"
            );
            let err = verify(&hand_signed_json(&v, &key), &key.public_key(), now()).unwrap_err();
            assert!(
                matches!(err, BundleError::Malformed { .. }),
                "{bad}: {err:?}"
            );
        }
        // The edges of the ranges are fine.
        for ok in [
            CallbackWithin::Hours(1),
            CallbackWithin::Hours(720),
            CallbackWithin::WorkingDays(1),
            CallbackWithin::WorkingDays(30),
        ] {
            let mut set = example();
            set.programs[1].callback_within = Some(ok);
            assert!(set.sign(&key).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn the_clinic_retention_and_the_give_up_point_have_ranges() {
        let key = SigningKey::generate().unwrap();
        type Change = Box<dyn Fn(&mut Program)>;
        let retention = |days| -> Change {
            Box::new(move |p: &mut Program| p.clinic_retention = Some(ClinicRetention { days }))
        };
        let give_up = |n: NeverReachedAfter| -> Change {
            Box::new(move |p: &mut Program| p.never_reached_after = Some(n))
        };
        let refused: Vec<(Change, &str, &str)> = vec![
            (
                retention(366),
                "clinic_retention.days",
                "between 0 and 365 days",
            ),
            (
                retention(u32::MAX),
                "clinic_retention.days",
                "between 0 and 365 days",
            ),
            (
                give_up(NeverReachedAfter::Days(0)),
                "never_reached_after.days",
                "between 1 and 60 days",
            ),
            (
                give_up(NeverReachedAfter::Days(61)),
                "never_reached_after.days",
                "between 1 and 60 days",
            ),
            (
                give_up(NeverReachedAfter::Attempts(0)),
                "never_reached_after.attempts",
                "between 1 and 20 attempts",
            ),
            (
                give_up(NeverReachedAfter::Attempts(21)),
                "never_reached_after.attempts",
                "between 1 and 20 attempts",
            ),
        ];
        for (change, field, range) in refused {
            let mut set = example();
            change(&mut set.programs[3]);
            let path = format!("programs[3].{field}");
            assert_invalid(set.sign(&key), &path, range);
            let at_load = verify(&hand_signed(&set, &key), &key.public_key(), now());
            assert_invalid(at_load, &path, range);
        }
        let fine: Vec<Change> = vec![
            retention(0),
            retention(365),
            give_up(NeverReachedAfter::Days(1)),
            give_up(NeverReachedAfter::Days(60)),
            give_up(NeverReachedAfter::Attempts(1)),
            give_up(NeverReachedAfter::Attempts(20)),
        ];
        for change in fine {
            let mut set = example();
            change(&mut set.programs[3]);
            let text = set.sign(&key).unwrap();
            assert_eq!(verify(&text, &key.public_key(), now()).unwrap().set(), &set);
        }
        for (field, bad, says) in [
            (
                "never_reached_after",
                serde_json::json!({"days": 7, "attempts": 5}),
                "exactly one of `days` and `attempts`",
            ),
            (
                "never_reached_after",
                serde_json::json!({}),
                "exactly one of `days` and `attempts`",
            ),
            (
                "never_reached_after",
                serde_json::json!({"calls": 5}),
                "unknown field `calls`",
            ),
            (
                "clinic_retention",
                serde_json::json!({"days": 7, "hours": 2}),
                "unknown field `hours`",
            ),
            (
                "clinic_retention",
                serde_json::json!({}),
                "missing field `days`",
            ),
            ("clinic_retention", serde_json::json!(30), "invalid type"),
            ("fhir_export", serde_json::json!("yes"), "invalid type"),
        ] {
            let err = example_json_with(|v| v["programs"][3][field] = bad.clone()).unwrap_err();
            assert!(
                matches!(&err, BundleError::Malformed { reason } if reason.contains(says)),
                "{field} {bad}: {err:?}"
            );
        }
    }

    #[test]
    fn programs_that_share_an_endpoint_share_its_keys() {
        let key = SigningKey::generate().unwrap();
        let field = "programs[2].clinic.endpoint";
        let reason = "names this endpoint with other keys or TLS trust";
        // Snäckan GGVV pointed at Snäckan Gislaved's service, with its own keys and pins.
        let mut set = example();
        set.programs[2].clinic.endpoint = set.programs[1].clinic.endpoint.clone();
        assert_invalid(set.sign(&key), field, reason);
        assert_invalid(
            verify(&hand_signed(&set, &key), &key.public_key(), now()),
            field,
            reason,
        );
        // With the service's keys and trust it is one service with two programs: fine.
        let shared = set.programs[1].clinic.clone();
        set.programs[2].clinic.tls = shared.tls.clone();
        set.programs[2].clinic.hpke_keys = shared.hpke_keys.clone();
        set.programs[2].clinic.receipt_key = shared.receipt_key.clone();
        let text = set.sign(&key).unwrap();
        assert_eq!(verify(&text, &key.public_key(), now()).unwrap().set(), &set);
        // Any one of the three differing is refused.
        type Change = fn(&mut Clinic);
        let differ: [(&str, Change); 4] = [
            ("receipt key", |c| c.receipt_key.key_id.push_str("-2")),
            ("receipt public key", |c| {
                c.receipt_key.public_key = "ucGz8Ej8LiCt/Rh0CbCC+iyl9kFhSsP+EZ+FWgITK1M=".into()
            }),
            ("pins", |c| c.tls.spki_sha256_pins.truncate(1)),
            ("HPKE keys", |c| c.hpke_keys[0].key_id.push_str("-b")),
        ];
        for (what, change) in differ {
            let mut other = set.clone();
            change(&mut other.programs[2].clinic);
            match other.sign(&key) {
                Err(BundleError::Invalid {
                    field: f,
                    reason: r,
                }) => {
                    assert_eq!(f, field, "{what}");
                    assert!(
                        r.contains(reason) && r.contains("programs[1]"),
                        "{what}: {r}"
                    );
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        // Another spelling of the same service is the same service.
        for spelling in [
            "https://LOCALHOST:8443/snackan-gislaved",
            "https://Localhost:8443/snackan-gislaved",
        ] {
            let mut other = example();
            other.programs[2].clinic.endpoint = spelling.into();
            assert_invalid(other.sign(&key), field, reason);
        }
        let mut default_port = example();
        default_port.programs[1].clinic.endpoint = "https://clinic.example/snackan".into();
        default_port.programs[2].clinic.endpoint = "https://clinic.example:443/snackan".into();
        assert_invalid(default_port.sign(&key), field, reason);
        // Another path on the same host is another service, with keys of its own (the example).
        assert!(example().sign(&key).is_ok());
    }

    #[test]
    fn an_endpoint_is_a_base_url_the_api_paths_are_added_to() {
        for (url, says) in [
            ("https://clinic.example/intake?program=lfl", "query"),
            ("https://clinic.example?x", "query"),
            ("https://clinic.example/intake#v1", "fragment"),
            ("https://clinic.example/", "end with /"),
            ("https://clinic.example/intake/", "end with /"),
            ("https://clinic.example:8443/", "end with /"),
            ("https://clinic.example//intake", "segments"),
            ("https://clinic.example/intake/..", "segments"),
            ("https://clinic.example/a/./b", "segments"),
            ("https://clinic.example/a/%2E%2e", "segments"),
        ] {
            let err = validate_endpoint(url).unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
            let mut set = example();
            set.programs[0].clinic.endpoint = url.into();
            assert_invalid(set.validate(), "programs[0].clinic.endpoint", says);
        }
        // A version 1 set is held to the same rule.
        let mut set = example_v1();
        set.programs[3].clinic.endpoint.push('/');
        assert_invalid(set.validate(), "programs[3].clinic.endpoint", "end with /");

        for url in [
            "https://clinic.example",
            "https://clinic.example:8443/lots/intake",
            "https://[::1]:8443/x",
        ] {
            assert_eq!(validate_endpoint(url), Ok(()), "{url}");
        }
        let mut clinic = example().programs[0].clinic.clone();
        assert_eq!(
            clinic.api_url("handovers"),
            "https://localhost:8443/lots-for-livet/v1/handovers"
        );
        assert_eq!(
            clinic.api_url("/handovers"),
            "https://localhost:8443/lots-for-livet/v1/handovers"
        );
        clinic.endpoint = "https://clinic.example".into();
        assert_eq!(
            clinic.api_url("handovers/7f3e/withdrawal"),
            "https://clinic.example/v1/handovers/7f3e/withdrawal"
        );
    }

    #[test]
    fn a_time_without_its_seconds_is_refused_with_what_a_time_must_look_like() {
        let says = "a time must be RFC 3339 with seconds and an offset";
        for (path, bad) in [
            ("/issued_at", "2026-12-02T05:48Z"),
            ("/expires_at", "2027-12-31"),
            (
                "/programs/0/clinic/hpke_keys/0/not_before",
                "2026-01-01 00:00:00",
            ),
            ("/programs/0/clinic/hpke_keys/0/not_after", "tomorrow-ish"),
        ] {
            let mut v: serde_json::Value = serde_json::from_str(EXAMPLE_PROGRAMS_JSON).unwrap();
            *v.pointer_mut(path).expect("the example has the field") = bad.into();
            let err = ProgramSet::from_json(&v.to_string()).unwrap_err();
            let BundleError::Malformed { reason } = &err else {
                panic!("{path}: {err:?}")
            };
            assert!(reason.contains(says), "{path}: {reason}");
            assert!(!reason.contains(bad), "{path} echoes the input: {reason}");
        }
        // With its seconds the same minute is read, whatever the offset.
        let mut v: serde_json::Value = serde_json::from_str(EXAMPLE_PROGRAMS_JSON).unwrap();
        v["issued_at"] = "2026-12-02T05:48:00Z".into();
        let set = ProgramSet::from_json(&v.to_string()).unwrap();
        assert_eq!(set.issued_at.to_rfc3339(), "2026-12-02T05:48:00+00:00");
    }
}
