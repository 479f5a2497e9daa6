//! Putting a running clinic together: its directory, the signed program bundle verified against
//! the administrator's key, and the checks an administrator needs before the first device
//! connects (the bundle must be v2, name this clinic's endpoint, and carry exactly this clinic's
//! keys: otherwise phones would seal to keys the clinic does not hold).

use crate::home::{Home, HomeError};
use crate::intake::{DeviceRate, Intake};
use crate::server::{tls_config, Limits, Service};
use crate::storage::{Storage, StorageError};
use crate::tls;
use chrono::{DateTime, Utc};
use lotsa_core::crypto::PublicKey;
use lotsa_core::program::{self, BundleError};
use std::sync::Arc;

/// Why the service will not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The clinic's directory.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The bundle did not verify or is invalid.
    #[error("the program bundle is refused: {0}")]
    Bundle(#[from] BundleError),
    /// A v1 bundle lacks the callback promise and retention the clinic needs.
    #[error("the program bundle is version {0}; the clinic service needs version 2")]
    OldBundle(u32),
    /// No program names this clinic.
    #[error("no program in the bundle names this clinic's endpoint {0}")]
    NoProgram(String),
    /// The bundle carries other keys or TLS trust for this endpoint than clinic.json.
    #[error("program {0} names this endpoint with other keys than clinic.json: sign the bundle again with `lotsa program sign --clinic clinic.json`")]
    KeysDiffer(String),
    /// The database.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored referral does not open with the clinic's keys (the problem code).
    #[error("a stored referral does not open: {0}")]
    Unreadable(String),
    /// The TLS key and certificate do not make a configuration.
    #[error("the TLS certificate and key are not usable: {0}")]
    Tls(String),
}

/// What the administrator is shown when the service starts: enough to check the bundle and the
/// phones against.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The endpoint devices use.
    pub endpoint: String,
    /// The programs served.
    pub programs: Vec<String>,
    /// The server certificate's SHA-256 fingerprint.
    pub certificate_sha256: String,
    /// The server key's SPKI pin.
    pub spki_pin: String,
    /// The receipt key id.
    pub receipt_key_id: String,
    /// The HPKE key ids.
    pub hpke_key_ids: Vec<String>,
    /// The bundle's id.
    pub bundle_id: String,
}

/// A service ready to be started.
pub struct Ready {
    /// The service.
    pub service: Service,
    /// Its TLS configuration.
    pub tls: Arc<rustls::ServerConfig>,
    /// What to print.
    pub summary: Summary,
}

/// The service of a clinic directory and a signed bundle.
pub fn prepare(
    home: &Home,
    bundle_text: &str,
    trust: &PublicKey,
    now: DateTime<Utc>,
    limits: Limits,
    rate: DeviceRate,
) -> Result<Ready, ServeError> {
    let loaded = home.load()?;
    let bundle = program::verify(bundle_text, trust, now)?;
    if bundle.set().version < 2 {
        return Err(ServeError::OldBundle(bundle.set().version));
    }
    let ours = &loaded.clinic;
    let mut programs = Vec::new();
    for p in bundle.programs() {
        if p.clinic.endpoint != ours.endpoint {
            continue;
        }
        let same = p.clinic.hpke_keys == ours.hpke_keys
            && p.clinic.receipt_key == ours.receipt_key
            && p.clinic.tls.spki_sha256_pins == ours.tls.spki_sha256_pins;
        if !same {
            return Err(ServeError::KeysDiffer(p.id.clone()));
        }
        programs.push(p.id.clone());
    }
    if programs.is_empty() {
        return Err(ServeError::NoProgram(ours.endpoint.clone()));
    }
    let summary = Summary {
        endpoint: ours.endpoint.clone(),
        programs: programs.clone(),
        certificate_sha256: tls::fingerprint(&loaded.chain[0]),
        spki_pin: tls::spki_pin(&loaded.chain[0]).unwrap_or_default(),
        receipt_key_id: ours.receipt_key.key_id.clone(),
        hpke_key_ids: ours.hpke_keys.iter().map(|k| k.key_id.clone()).collect(),
        bundle_id: bundle.set().bundle_id.clone(),
    };
    let tls =
        tls_config(loaded.chain, loaded.tls_key).map_err(|e| ServeError::Tls(e.to_string()))?;
    let storage = Storage::open(&home.database())?;
    let set = bundle.set();
    storage.note_served(&set.bundle_id, set.issued_at.timestamp(), now.timestamp())?;
    let intake = Arc::new(Intake::new(storage, loaded.keys, programs, now)?.with_device_rate(rate));
    let staff = crate::pages::StaffSite {
        intake: intake.clone(),
        keys: home.load()?.keys,
        bundle: bundle.clone(),
        log_key: home.access_log_key()?,
        sessions: crate::sessions::Sessions::default(),
    };
    Ok(Ready {
        service: Service {
            staff: Some(Arc::new(staff)),
            intake,
            bundle: Arc::new(bundle_text.to_string()),
            endpoint: ours.endpoint.clone(),
            limits,
        },
        tls,
        summary,
    })
}

/// A TLS configuration for a listener.
pub type TlsConfig = Arc<rustls::ServerConfig>;

/// The staff listener's TLS configuration from IT's certificate chain and key (PEM files): a
/// certificate the staff's browsers trust, not the devices' pinned one.
pub fn staff_tls(cert: &std::path::Path, key: &std::path::Path) -> Result<TlsConfig, ServeError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| {
            ServeError::Home(HomeError::Io {
                path: p.display().to_string(),
                reason: e.kind().to_string(),
            })
        })
    };
    let chain = tls::certificates(&read(cert)?, cert)?;
    let key = tls::private_key(&read(key)?, key)?;
    tls_config(chain, key).map_err(|e| ServeError::Tls(e.to_string()))
}
