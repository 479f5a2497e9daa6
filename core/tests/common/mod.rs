//! Shared set-up for the store's integration tests, through the public API only: a signed
//! program bundle whose clinic key the test holds, consent records, filled-in drafts and a
//! temporary directory that cleans up after itself.

#![allow(dead_code)]

use chrono::{DateTime, NaiveDate};
use lotsa_core::clock::{stockholm_noon, FixedClock};
use lotsa_core::consent::{ConsentForm, Recorder, Role};
use lotsa_core::crypto::seal::{open_from_device, ClinicKeyPair, SealBinding, Sealed};
use lotsa_core::crypto::{PublicKey, SigningKey};
use lotsa_core::eligibility::Provenance;
use lotsa_core::program::{self, Bundle, HpkeKey, Program, ProgramSet, EXAMPLE_PROGRAMS_JSON};
use lotsa_core::referral::{DraftUpdate, HandoverPayload};
use lotsa_core::store::Store;
use std::path::{Path, PathBuf};

/// The clinic key id the test bundles carry.
pub const CLINIC_KEY_ID: &str = "it-clinic-1";

/// The handover payload schema version finalize binds into the seal.
pub use lotsa_core::store::PAYLOAD_SCHEMA_VERSION;

/// The Stockholm date every store test runs on.
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

/// Noon in Stockholm on [`today`], fixed.
pub fn clock() -> FixedClock {
    FixedClock(stockholm_noon(today()))
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "lotsa-it-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// A directory under `parent` (e.g. on the same disk as the build), removed on drop.
    pub fn new_in(parent: &Path, name: &str) -> TempDir {
        let dir = parent.join(format!(
            "lotsa-it-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A signed bundle of the example programs, every clinic key replaced by one the test holds.
pub struct Programs {
    /// The verified bundle.
    pub bundle: Bundle,
    /// The signed bundle text (what a device loads from a file).
    pub signed: String,
    /// The administrator's public key the bundle verifies with.
    pub trust: PublicKey,
    /// The clinic's key pair (to open what the device sealed).
    pub clinic: ClinicKeyPair,
}

impl Programs {
    pub fn new() -> Programs {
        let clinic = ClinicKeyPair::generate().unwrap();
        let mut set = ProgramSet::from_json(EXAMPLE_PROGRAMS_JSON).unwrap();
        set.replace_clinic_hpke_keys(&HpkeKey {
            key_id: CLINIC_KEY_ID.into(),
            public_key: clinic.public_key_b64(),
            not_before: DateTime::parse_from_rfc3339("2026-01-01T00:00:00+01:00").unwrap(),
            not_after: DateTime::parse_from_rfc3339("2027-12-31T00:00:00+01:00").unwrap(),
        });
        let admin = SigningKey::generate().unwrap();
        let signed = set.sign(&admin).unwrap();
        let trust = admin.public_key();
        let bundle = load_bundle(&signed, &trust);
        Programs {
            bundle,
            signed,
            trust,
            clinic,
        }
    }

    pub fn program(&self, id: &str) -> &Program {
        self.bundle.program(id).unwrap()
    }

    /// Opens what the device sealed for `id` (panics if it does not open).
    pub fn open_sealed(&self, id: &str, program_id: &str, sealed: &[u8]) -> HandoverPayload {
        let binding = SealBinding {
            handover_id: id,
            program_id,
            clinic_key_id: CLINIC_KEY_ID,
            schema_version: PAYLOAD_SCHEMA_VERSION,
        };
        let plain =
            open_from_device(&self.clinic, &binding, &Sealed::from_bytes(sealed).unwrap()).unwrap();
        serde_json::from_slice(&plain).unwrap()
    }
}

/// Verifies a signed bundle as a device does at start-up.
pub fn load_bundle(signed: &str, trust: &PublicKey) -> Bundle {
    program::verify(signed, trust, stockholm_noon(today())).unwrap()
}

/// The officer who records consent in these tests.
pub fn officer() -> Recorder {
    Recorder {
        role: Role::Police,
        officer_id: "P-1234".into(),
        unit: "Plattan".into(),
    }
}

/// A valid verbal consent, in which the person agrees to pass on everything the program
/// accepts — their personnummer too, where it is optional (Kalmar), so that the scans look for it
/// inside the sealed payload as well.
pub fn consent() -> ConsentForm {
    ConsentForm::complete_for_tests(officer(), true)
}

/// Contact details, number and residence a Kalmar referral needs.
pub fn fill_kalmar(name: &str, phone: &str, number: &str) -> DraftUpdate {
    DraftUpdate {
        name: Some(name.into()),
        phone: Some(phone.into()),
        language: Some("sv".into()),
        identity_number: Some(number.into()),
        municipality: Some("Kalmar".into()),
        provenance: Some(Provenance::Document),
        ..DraftUpdate::default()
    }
}

/// Contact details and residence a lots-for-livet referral needs.
pub fn fill_stockholm() -> DraftUpdate {
    DraftUpdate {
        name: Some("Kim Testsson".into()),
        phone: Some("070-123 45 67".into()),
        language: Some("sv".into()),
        identity_number: Some("19900412-1233".into()),
        municipality: Some("Stockholm".into()),
        provenance: Some(Provenance::Document),
        ..DraftUpdate::default()
    }
}

/// A lots-for-livet draft, filled in, with a valid consent: ready to finalize.
pub fn ready_draft(store: &mut Store, programs: &Programs) -> String {
    let id = store
        .create_draft(&programs.bundle, "lots-for-livet")
        .unwrap();
    store.update_draft(&id, fill_stockholm()).unwrap();
    store
        .record_consent(&id, &programs.bundle, &consent())
        .unwrap();
    id
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
