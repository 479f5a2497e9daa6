//! The demo's two clinics: the Stockholm reception of Lots för livet and Snäckan (which serves
//! both Snäckan programs). Each is made as `lotsa clinic init` makes one (HPKE and receipt keys, a
//! development CA and a TLS certificate) in the demo's folder, and served in-process on
//! 127.0.0.1. The example programs are signed for them with a throw-away administrator key.

use crate::out::{Ctx, Failure};
use chrono::{DateTime, Duration, Utc};
use lotsa_clinic::export::{ExportError, Exporter, Reader};
use lotsa_clinic::local::LocalClinic;
use lotsa_core::clock::to_stockholm;
use lotsa_core::crypto::{CryptoError, PublicKey, SigningKey};
use lotsa_core::program::{self, Bundle, ProgramSet, EXAMPLE_PROGRAMS_JSON};
use lotsa_core::referral::HandoverPayload;
use lotsa_core::store::StoreError;
use std::path::Path;

/// One clinic of the demo and the programs it serves.
pub struct DemoClinic {
    /// The running clinic.
    pub local: LocalClinic,
    /// The programs whose referrals it receives.
    pub programs: &'static [&'static str],
}

/// The demo's clinics and the bundle the phone and they share.
pub struct Clinics {
    /// Stockholm, then Snäckan.
    pub all: Vec<DemoClinic>,
    /// The verified bundle.
    pub bundle: Bundle,
    /// The program administrator's public key (the phone trusts bundles it signed).
    pub admin: PublicKey,
}

/// (folder, path prefix, programs) of each clinic.
const CLINICS: [(&str, &str, &[&str]); 2] = [
    ("stockholm", "lots-for-livet", &["lots-for-livet"]),
    ("snackan", "snackan", &["snackan-gislaved", "snackan-ggvv"]),
];

/// A clinic failure, as the demo reports it (the clinic speaks English: its reader is IT).
pub fn clinic_failed(ctx: &Ctx, e: impl std::fmt::Display) -> Failure {
    Failure::other(
        "clinic",
        ctx.lang.pick(
            format!("demomottagningen: {e}"),
            format!("the demo clinic: {e}"),
        ),
    )
}

impl Clinics {
    /// Makes both clinics in `dir`, signs the example programs for them (only the programs whose
    /// clinic runs here), verifies the bundle as the app does at start, and starts them.
    pub fn start(ctx: &Ctx, dir: &Path, now: DateTime<Utc>) -> Result<Clinics, Failure> {
        let mut set = ProgramSet::from_json(EXAMPLE_PROGRAMS_JSON).map_err(|e| ctx.fail(&e))?;
        set.issued_at = to_stockholm(now);
        set.expires_at = to_stockholm(now + Duration::days(365));
        let mut all = Vec::new();
        for (folder, prefix, programs) in CLINICS {
            let name = set
                .programs
                .iter()
                .find(|p| p.id == programs[0])
                .map(|p| p.clinic.name.clone())
                .unwrap_or_else(|| prefix.to_string());
            let local = LocalClinic::create(&dir.join(folder), &name, prefix, now)
                .map_err(|e| clinic_failed(ctx, e))?;
            for p in set.programs.iter_mut() {
                if programs.contains(&p.id.as_str()) {
                    p.clinic.endpoint = local.clinic().endpoint.clone();
                }
            }
            set.merge_clinic(local.clinic());
            all.push(DemoClinic { local, programs });
        }
        set.programs.retain(|p| {
            CLINICS
                .iter()
                .any(|(_, _, ids)| ids.contains(&p.id.as_str()))
        });
        let crypto = |e: CryptoError| ctx.fail(&StoreError::Crypto(e));
        let admin = SigningKey::generate().map_err(crypto)?;
        let signed = set.sign(&admin).map_err(|e| ctx.fail(&e))?;
        let bundle =
            program::verify(&signed, &admin.public_key(), now).map_err(|e| ctx.fail(&e))?;
        for clinic in &mut all {
            clinic
                .local
                .start(&signed, &admin.public_key())
                .map_err(|e| clinic_failed(ctx, e))?;
        }
        Ok(Clinics {
            all,
            bundle,
            admin: admin.public_key(),
        })
    }

    /// The clinic that receives a program's referrals.
    pub fn of(&self, program_id: &str) -> Option<&DemoClinic> {
        self.all.iter().find(|c| c.programs.contains(&program_id))
    }

    /// Both clinics stop listening: the phone finds them unreachable.
    pub fn go_offline(&mut self) {
        for c in &mut self.all {
            c.local.stop();
        }
    }

    /// Both clinics listen again on their ports.
    pub fn come_back(&mut self, ctx: &Ctx) -> Result<(), Failure> {
        for c in &mut self.all {
            c.local.resume().map_err(|e| clinic_failed(ctx, e))?;
        }
        Ok(())
    }
}

impl DemoClinic {
    /// The ids of the referrals it holds, oldest first.
    pub fn held(&self, ctx: &Ctx) -> Result<Vec<String>, Failure> {
        let storage = self.local.storage().map_err(|e| clinic_failed(ctx, e))?;
        storage.handover_ids().map_err(|e| clinic_failed(ctx, e))
    }

    /// Whether it keeps a tombstone for a withdrawn referral.
    pub fn has_tombstone(&self, ctx: &Ctx, handover_id: &str) -> Result<bool, Failure> {
        let storage = self.local.storage().map_err(|e| clinic_failed(ctx, e))?;
        let tombstone = storage
            .tombstone(handover_id)
            .map_err(|e| clinic_failed(ctx, e))?;
        Ok(tombstone.is_some())
    }

    /// A referral as its staff read it.
    pub fn read(&self, ctx: &Ctx, handover_id: &str) -> Result<Option<HandoverPayload>, Failure> {
        self.local
            .read(handover_id)
            .map_err(|e| clinic_failed(ctx, e))
    }

    /// A referral as FHIR, exported at this clinic's console for the programs of `bundle`: the
    /// bundle, or why the clinic refuses (the outer error is the clinic failing).
    pub fn export_fhir(
        &self,
        ctx: &Ctx,
        handover_id: &str,
        bundle: &Bundle,
    ) -> Result<Result<serde_json::Value, ExportError>, Failure> {
        let home = self.local.home();
        let keys = home.load().map_err(|e| clinic_failed(ctx, e))?.keys;
        let log_key = home.access_log_key().map_err(|e| clinic_failed(ctx, e))?;
        let storage = self.local.storage().map_err(|e| clinic_failed(ctx, e))?;
        let exporter = Exporter {
            storage: &storage,
            keys: &keys,
            bundle,
            log_key: &log_key,
        };
        Ok(exporter.export(handover_id, &Reader::console(), Utc::now()))
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.local.clinic().name
    }
}
