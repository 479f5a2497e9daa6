//! A clinic and a phone on this machine, for the delivery tests: the clinic is a real
//! `LocalClinic` on 127.0.0.1 (optionally behind the fault-injecting [`Proxy`]), the phone a real
//! store on a SQLite file with an in-memory key vault and the system clock.

use crate::proxy::Proxy;
use chrono::{DateTime, Utc};
use lotsa_clinic::local::LocalClinic;
use lotsa_core::clock::SystemClock;
use lotsa_core::consent::{ConsentForm, Recorder, Role};
use lotsa_core::crypto::vault::MemoryVault;
use lotsa_core::crypto::SigningKey;
use lotsa_core::eligibility::Provenance;
use lotsa_core::program::{self, Bundle, Clinic, ProgramSet};
use lotsa_core::referral::DraftUpdate;
use lotsa_core::store::{ItemState, Store};
use lotsa_core::sync::{self, SyncOptions, Timeouts, Trigger};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const EXAMPLE: &str = include_str!("../../schemas/examples/programs.example.json");

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory name under the system temp dir (not created yet).
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("lotsa-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A clinic on loopback serving the bundle, and a phone with its store, both in a temp dir.
pub struct Field {
    /// The temp dir (clinic/, device.sqlite).
    pub dir: TempDir,
    /// The clinic.
    pub clinic: LocalClinic,
    /// The phone's verified bundle.
    pub bundle: Bundle,
    /// The phone's key vault.
    pub vault: Arc<MemoryVault>,
    /// The phone's store.
    pub store: Store,
    /// The program administrator's key.
    pub admin: SigningKey,
    /// The proxy between phone and clinic, when there is one.
    pub proxy: Option<Proxy>,
}

/// A clinic and a phone that reaches it directly.
pub fn field(name: &str) -> Field {
    make(name, false, &["lots-for-livet"])
}

/// A clinic and a phone that reaches it through a [`Proxy`] (`field.proxy`).
pub fn field_behind_proxy(name: &str) -> Field {
    make(name, true, &["lots-for-livet"])
}

/// A clinic that serves each of the example programs named, and a phone that reaches it.
pub fn field_serving(name: &str, programs: &[&str]) -> Field {
    make(name, false, programs)
}

/// The example set with `lots-for-livet` pointed at the clinic and given its keys, signed.
pub fn bundle_for(clinic: &Clinic, admin: &SigningKey, issued: DateTime<Utc>) -> String {
    bundle_for_programs(&[("lots-for-livet", clinic)], admin, issued)
}

/// The example set with each program given pointed at its clinic and given its keys, signed.
pub fn bundle_for_programs(
    programs: &[(&str, &Clinic)],
    admin: &SigningKey,
    issued: DateTime<Utc>,
) -> String {
    let mut set = ProgramSet::from_json(EXAMPLE).unwrap();
    set.issued_at = issued.fixed_offset();
    for (id, clinic) in programs {
        for p in &mut set.programs {
            if p.id == *id {
                p.clinic.endpoint = clinic.endpoint.clone();
            }
        }
    }
    for (_, clinic) in programs {
        assert!(set.merge_clinic(clinic) >= 1);
    }
    set.sign(admin).unwrap()
}

fn make(name: &str, behind_proxy: bool, programs: &[&str]) -> Field {
    let dir = TempDir::new(&format!("delivery-{name}"));
    let proxy = behind_proxy.then(|| Proxy::start(([127, 0, 0, 1], 9).into()));
    let public_port = proxy.as_ref().map(|p| p.addr().port());
    let mut clinic = LocalClinic::create_behind(
        &dir.0.join("clinic"),
        "Mottagningen",
        "lots-for-livet",
        public_port,
        Utc::now(),
    )
    .unwrap();
    if let Some(proxy) = &proxy {
        proxy.point_at(clinic.addr());
    }
    let admin = SigningKey::generate().unwrap();
    let served: Vec<(&str, &Clinic)> = programs.iter().map(|p| (*p, clinic.clinic())).collect();
    let signed = bundle_for_programs(&served, &admin, Utc::now());
    clinic.start(&signed, &admin.public_key()).unwrap();
    let bundle = program::verify(&signed, &admin.public_key(), Utc::now()).unwrap();
    let vault = Arc::new(MemoryVault::new());
    let store = Store::open(
        &dir.0.join("device.sqlite"),
        vault.clone(),
        Arc::new(SystemClock),
    )
    .unwrap();
    Field {
        dir,
        clinic,
        bundle,
        vault,
        store,
        admin,
        proxy,
    }
}

/// Short time limits and backoff, for tests.
pub fn options() -> SyncOptions {
    SyncOptions {
        deadline: Duration::from_secs(30),
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(5),
        },
        backoff: sync::Backoff {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(2),
        },
        ..SyncOptions::default()
    }
}

impl Field {
    /// Enrols the phone at the clinic with a fresh code.
    pub fn enrol(&mut self) -> String {
        let code = self.clinic.enrolment_code().unwrap();
        sync::enrol(
            &mut self.store,
            &self.bundle,
            "lots-for-livet",
            &code,
            options().timeouts,
        )
        .unwrap()
    }

    /// A consented lots-for-livet referral, finalized: its handover id.
    pub fn referral(&mut self) -> String {
        self.referral_to("lots-for-livet", "Stockholm")
    }

    /// A consented referral to a program, of a person registered in `municipality`, finalized.
    pub fn referral_to(&mut self, program: &str, municipality: &str) -> String {
        self.referral_of(program, municipality, "19900412-1233", false)
    }

    /// The same for a person with this identity number, who agrees (or not) to pass it on.
    pub fn referral_of(
        &mut self,
        program: &str,
        municipality: &str,
        identity_number: &str,
        share_number: bool,
    ) -> String {
        let id = self.store.create_draft(&self.bundle, program).unwrap();
        let fill = DraftUpdate {
            name: Some("Kim Testsson".into()),
            phone: Some("070-123 45 67".into()),
            language: Some("sv".into()),
            identity_number: Some(identity_number.into()),
            municipality: Some(municipality.into()),
            provenance: Some(Provenance::Document),
            ..DraftUpdate::default()
        };
        self.store.update_draft(&id, fill).unwrap();
        let officer = Recorder {
            role: Role::Police,
            officer_id: "P-1234".into(),
            unit: "Plattan".into(),
        };
        self.store
            .record_consent(
                &id,
                &self.bundle,
                &ConsentForm::complete_for_tests(officer, share_number),
            )
            .unwrap();
        self.store.finalize(&id, &self.bundle).unwrap()
    }

    /// One run with the test options.
    pub fn sync(&mut self, trigger: Trigger) -> sync::SyncReport {
        let options = SyncOptions {
            trigger,
            ..options()
        };
        sync::sync(&mut self.store, &self.bundle, &options).unwrap()
    }

    /// An item's state.
    pub fn state(&self, id: &str) -> ItemState {
        self.store
            .queue_status()
            .unwrap()
            .items
            .into_iter()
            .find(|i| i.id == id)
            .unwrap()
            .state
    }

    /// Referrals the clinic holds.
    pub fn held(&self) -> i64 {
        self.clinic.storage().unwrap().handover_count().unwrap()
    }

    /// The clinic's secrets its worklist needs, loaded from its directory.
    pub fn clinic_secrets(&self) -> ClinicSecrets {
        let home = self.clinic.home();
        ClinicSecrets {
            keys: home.load().unwrap().keys,
            log_key: home.access_log_key().unwrap(),
        }
    }
}

/// A clinic's keys and access-log key, for building its worklist in a test.
pub struct ClinicSecrets {
    /// The keys that open stored referrals.
    pub keys: lotsa_clinic::intake::ClinicKeys,
    /// The access log's HMAC key.
    pub log_key: [u8; 32],
}

impl ClinicSecrets {
    /// The worklist over `storage`, for the programs of `bundle`.
    pub fn worklist<'a>(
        &'a self,
        storage: &'a lotsa_clinic::storage::Storage,
        bundle: &'a Bundle,
    ) -> lotsa_clinic::worklist::Worklist<'a> {
        lotsa_clinic::worklist::Worklist {
            storage,
            keys: &self.keys,
            bundle,
            log_key: &self.log_key,
        }
    }

    /// The FHIR exporter over `storage`, for the programs of `bundle`.
    pub fn exporter<'a>(
        &'a self,
        storage: &'a lotsa_clinic::storage::Storage,
        bundle: &'a Bundle,
    ) -> lotsa_clinic::export::Exporter<'a> {
        lotsa_clinic::export::Exporter {
            storage,
            keys: &self.keys,
            bundle,
            log_key: &self.log_key,
        }
    }
}

/// A TLS 1.3 client configuration (HTTP/1.1, ring) that trusts only a clinic's CA (PEM): what a
/// plain HTTP client in a test or a benchmark uses to reach it.
pub fn trusting(ca_pem: &str) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}
