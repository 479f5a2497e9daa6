//! The clinic's directory: every key and file the service needs, made by `init` with owner-only
//! permissions, and read back by `serve`. An IT department backs up this directory (see
//! [`crate::backup`]) and nothing else.
//!
//! ```text
//! D/                       0700
//!   clinic.json            the clinic part of a program bundle (public: endpoint, TLS trust,
//!                          HPKE public keys with validity, receipt public key)
//!   clinic.db              the database (crate::storage)
//!   keys/hpke/<id>.key     HPKE secret keys, old ones kept to open what was sealed to them
//!   keys/receipt.key       the receipt signing key
//!   keys/access-log.key    the HMAC key of the access log's phone hashes (made when first needed)
//!   tls/cert.pem, key.pem  the server certificate chain and key (made, or IT's own)
//!   tls/ca.pem, ca.key     the development CA, when init made one
//!   tls/backup-key.pem     a spare server key whose pin is already in the bundle
//! ```

use crate::intake::ClinicKeys;
use chrono::{DateTime, Duration, Utc};
use lotsa_core::crypto::seal::ClinicKeyPair;
use lotsa_core::crypto::{b64, sha256, unb64, SigningKey};
use lotsa_core::program::{Clinic, HpkeKey, ReceiptKey, TlsTrust};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::Write;
use std::path::{Path, PathBuf};

/// First line of an HPKE secret key file.
const HPKE_HEADER: &str = "lotsa-x25519-secret-v1";
/// First line of the access log's HMAC key file.
const HMAC_HEADER: &str = "lotsa-hmac-sha256-v1";
/// First line of a receipt key file (the same form as `lotsa program keygen`'s key).
const ED25519_HEADER: &str = "lotsa-ed25519-pkcs8-v1";
/// How long a new HPKE key is used for sealing.
const HPKE_VALIDITY_DAYS: i64 = 2 * 365;

/// What can go wrong with the clinic's directory. Paths are named (they are not personal data);
/// file contents never are.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A file is there but is not what it should be.
    #[error("{path} is not a valid {what}")]
    Invalid {
        /// The file.
        path: String,
        /// What it should be.
        what: &'static str,
    },
    /// `init` into a directory that already holds something.
    #[error("{0} is not empty: init never overwrites a clinic")]
    NotEmpty(String),
    /// The endpoint is not an https base URL.
    #[error(
        "the endpoint must be an https base URL (https://host[:port][/path]), without a trailing /"
    )]
    BadEndpoint,
    /// Certificate making failed.
    #[error("cannot make the TLS certificate: {0}")]
    Certificate(String),
    /// The system's random number generator failed.
    #[error("the system's random number generator failed")]
    Random,
    /// `rotate-tls` on a clinic whose certificate IT provided: only IT's CA can issue the next.
    #[error("the certificate was provided by IT, not made by init: give IT the request `lotsa clinic tls-request` prints, then run rotate-tls --cert with the certificate IT issues for it")]
    NotOurCa,
    /// `rotate-tls --cert` with a certificate for another key than the spare one.
    #[error("the certificate is not for the spare key (tls/backup-key.pem), whose pin phones already have: have IT issue it for the request `lotsa clinic tls-request` prints")]
    NotForSpare,
    /// `rotate-tls --cert` with a certificate phones would refuse.
    #[error("phones would refuse the certificate (they trust only tls/ca.pem, for the endpoint's host): {0}")]
    Untrusted(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HomeError + '_ {
    move |e| HomeError::Io {
        path: path.display().to_string(),
        reason: e.kind().to_string(),
    }
}

fn invalid(path: &Path, what: &'static str) -> HomeError {
    HomeError::Invalid {
        path: path.display().to_string(),
        what,
    }
}

/// Creates a directory (and its parents) with owner-only permissions.
pub fn create_private_dir(path: &Path) -> Result<(), HomeError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path).map_err(io(path))
}

/// Writes a new owner-only file (never over an existing one), synced to disk.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), HomeError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// Replaces an owner-only file atomically: written beside it, then renamed over it.
fn replace_private(path: &Path, bytes: &[u8]) -> Result<(), HomeError> {
    let mut next = path.as_os_str().to_owned();
    next.push(".next");
    let next = PathBuf::from(next);
    let _ = std::fs::remove_file(&next);
    write_private(&next, bytes)?;
    std::fs::rename(&next, path).map_err(io(path))
}

fn read(path: &Path) -> Result<Vec<u8>, HomeError> {
    std::fs::read(path).map_err(io(path))
}

/// The files of a clinic directory.
#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
}

/// What `init` is told.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The clinic's name, shown to officers.
    pub name: String,
    /// The base URL devices use.
    pub endpoint: String,
    /// A certificate chain and key IT provides (PEM files), and the CA devices should trust for
    /// it; without them init makes a development CA and a certificate for the endpoint's host.
    pub provided_tls: Option<ProvidedTls>,
}

/// A certificate IT provides.
#[derive(Debug, Clone)]
pub struct ProvidedTls {
    /// The chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The leaf's private key (PEM, PKCS#8).
    pub key: PathBuf,
    /// The CA devices trust for it (PEM).
    pub ca: PathBuf,
}

/// The secrets and settings `serve` needs.
pub struct Loaded {
    /// The public part, as the bundle must carry it.
    pub clinic: Clinic,
    /// The HPKE and receipt secrets.
    pub keys: ClinicKeys,
    /// The server certificate chain.
    pub chain: Vec<CertificateDer<'static>>,
    /// The server key.
    pub tls_key: PrivateKeyDer<'static>,
}

impl Home {
    /// The directory (not checked until used).
    pub fn new(dir: impl Into<PathBuf>) -> Home {
        Home { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `clinic.json`.
    pub fn clinic_json(&self) -> PathBuf {
        self.dir.join("clinic.json")
    }

    /// `clinic.db`.
    pub fn database(&self) -> PathBuf {
        self.dir.join("clinic.db")
    }

    fn hpke_dir(&self) -> PathBuf {
        self.dir.join("keys").join("hpke")
    }

    fn receipt_key(&self) -> PathBuf {
        self.dir.join("keys").join("receipt.key")
    }

    fn tls(&self, file: &str) -> PathBuf {
        self.dir.join("tls").join(file)
    }

    /// Makes a new clinic in an empty (or absent) directory. Everything given is checked before
    /// anything is written, and a failure halfway leaves no half-made clinic behind.
    pub fn init(&self, options: &InitOptions, now: DateTime<Utc>) -> Result<Clinic, HomeError> {
        let host = endpoint_host(&options.endpoint).ok_or(HomeError::BadEndpoint)?;
        if let Some(p) = &options.provided_tls {
            crate::tls::certificates(&read(&p.cert)?, &p.cert)?;
            crate::tls::private_key(&read(&p.key)?, &p.key)?;
            crate::tls::certificates(&read(&p.ca)?, &p.ca)?;
        }
        if self.dir.exists() {
            let mut entries = std::fs::read_dir(&self.dir).map_err(io(&self.dir))?;
            if entries.next().is_some() {
                return Err(HomeError::NotEmpty(self.dir.display().to_string()));
            }
        }
        let made = self.make(options, &host, now);
        if made.is_err() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        made
    }

    fn make(
        &self,
        options: &InitOptions,
        host: &str,
        now: DateTime<Utc>,
    ) -> Result<Clinic, HomeError> {
        create_private_dir(&self.dir)?;
        create_private_dir(&self.hpke_dir())?;
        create_private_dir(&self.dir.join("tls"))?;

        let hpke = ClinicKeyPair::generate().map_err(|_| HomeError::Random)?;
        let hpke_key = self.add_hpke_key(&hpke, now)?;
        let receipt = SigningKey::generate().map_err(|_| HomeError::Random)?;
        let secret = format!("{ED25519_HEADER}\n{}\n", b64(receipt.pkcs8()));
        write_private(&self.receipt_key(), secret.as_bytes())?;
        let receipt_key = ReceiptKey {
            key_id: format!("receipt-{}", &receipt.public_key().key_id()[..8]),
            public_key: receipt.public_key_b64(),
        };

        let (ca_pem, chain_pem) = match &options.provided_tls {
            Some(p) => {
                let (chain, key, ca) = (read(&p.cert)?, read(&p.key)?, read(&p.ca)?);
                write_private(&self.tls("cert.pem"), &chain)?;
                write_private(&self.tls("key.pem"), &key)?;
                write_private(&self.tls("ca.pem"), &ca)?;
                (String::from_utf8_lossy(&ca).into_owned(), chain)
            }
            None => {
                let made = crate::tls::development(&options.name, host, now)?;
                write_private(&self.tls("ca.pem"), made.ca_pem.as_bytes())?;
                write_private(&self.tls("ca.key"), made.ca_key_pem.as_bytes())?;
                write_private(&self.tls("cert.pem"), made.cert_pem.as_bytes())?;
                write_private(&self.tls("key.pem"), made.key_pem.as_bytes())?;
                (made.ca_pem, made.cert_pem.into_bytes())
            }
        };
        let backup = crate::tls::spare_key()?;
        write_private(&self.tls("backup-key.pem"), backup.pem.as_bytes())?;
        let chain = crate::tls::certificates(&chain_pem, &self.tls("cert.pem"))?;
        let current_pin = crate::tls::spki_pin(&chain[0])
            .ok_or_else(|| invalid(&self.tls("cert.pem"), "certificate"))?;

        let clinic = Clinic {
            name: options.name.clone(),
            endpoint: options.endpoint.clone(),
            tls: TlsTrust {
                ca_pem: Some(ca_pem),
                spki_sha256_pins: vec![current_pin, backup.pin],
            },
            hpke_keys: vec![hpke_key],
            receipt_key,
        };
        self.write_clinic(&clinic, true)?;
        Ok(clinic)
    }

    fn add_hpke_key(&self, pair: &ClinicKeyPair, now: DateTime<Utc>) -> Result<HpkeKey, HomeError> {
        let key_id = format!(
            "hpke-{}",
            &lotsa_core::crypto::hex(&sha256(&pair.public_key()))[..8]
        );
        let secret = format!("{HPKE_HEADER}\n{}\n", b64(&pair.secret_bytes()));
        write_private(
            &self.hpke_dir().join(format!("{key_id}.key")),
            secret.as_bytes(),
        )?;
        let at = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        Ok(HpkeKey {
            key_id,
            public_key: pair.public_key_b64(),
            not_before: at.fixed_offset(),
            not_after: (at + Duration::days(HPKE_VALIDITY_DAYS)).fixed_offset(),
        })
    }

    fn write_clinic(&self, clinic: &Clinic, new: bool) -> Result<(), HomeError> {
        let mut text = serde_json::to_string_pretty(clinic)
            .map_err(|_| invalid(&self.clinic_json(), "clinic description"))?;
        text.push('\n');
        let path = self.clinic_json();
        if new {
            write_private(&path, text.as_bytes())
        } else {
            replace_private(&path, text.as_bytes())
        }
    }

    /// The public part, `clinic.json`.
    pub fn clinic(&self) -> Result<Clinic, HomeError> {
        let path = self.clinic_json();
        serde_json::from_slice(&read(&path)?).map_err(|_| invalid(&path, "clinic.json"))
    }

    /// Adds a new HPKE key, used for sealing from now on; the old ones stay to open what was
    /// sealed to them. `clinic.json` lists them all: sign the bundle again with it.
    pub fn rotate_key(&self, now: DateTime<Utc>) -> Result<HpkeKey, HomeError> {
        let mut clinic = self.clinic()?;
        let pair = ClinicKeyPair::generate().map_err(|_| HomeError::Random)?;
        let key = self.add_hpke_key(&pair, now)?;
        clinic.hpke_keys.push(key.clone());
        self.write_clinic(&clinic, false)?;
        Ok(key)
    }

    /// Moves the server to its spare key: a new certificate for the key in
    /// `tls/backup-key.pem` (whose pin every bundle already carries, so phones that have not
    /// yet seen a new bundle still trust it), and a new spare key whose pin replaces the old
    /// current one in `clinic.json`. The certificate is the one IT `issued` for that key (from
    /// [`Home::tls_request`]), checked as phones will check it, or else one from the
    /// development CA. The old server key is gone. Sign the bundle again with `clinic.json` and
    /// restart the service. Also what renews a certificate before it expires.
    pub fn rotate_tls(
        &self,
        issued: Option<&Path>,
        now: DateTime<Utc>,
    ) -> Result<TlsTrust, HomeError> {
        let mut clinic = self.clinic()?;
        let spare_path = self.tls("backup-key.pem");
        let spare = String::from_utf8_lossy(&read(&spare_path)?).into_owned();
        let host = endpoint_host(&clinic.endpoint).ok_or(HomeError::BadEndpoint)?;
        let cert = match issued {
            Some(path) => self.check_issued(path, &spare, &host, now)?,
            None => {
                let ca_key_path = self.tls("ca.key");
                if !ca_key_path.exists() {
                    return Err(HomeError::NotOurCa);
                }
                let ca_key = String::from_utf8_lossy(&read(&ca_key_path)?).into_owned();
                crate::tls::reissue(&ca_key, &clinic.name, &host, &spare, now)?
            }
        };
        let chain = crate::tls::certificates(cert.as_bytes(), &self.tls("cert.pem"))?;
        let pin = crate::tls::spki_pin(&chain[0])
            .ok_or_else(|| invalid(&self.tls("cert.pem"), "certificate"))?;
        let next_spare = crate::tls::spare_key()?;
        // The key first, then its certificate, then the new spare, then clinic.json: each file
        // is replaced whole, and a run cut short can be run again.
        replace_private(&self.tls("key.pem"), spare.as_bytes())?;
        replace_private(&self.tls("cert.pem"), cert.as_bytes())?;
        replace_private(&spare_path, next_spare.pem.as_bytes())?;
        clinic.tls.spki_sha256_pins = vec![pin, next_spare.pin];
        self.write_clinic(&clinic, false)?;
        Ok(clinic.tls)
    }

    /// A certificate IT issued (a PEM chain, leaf first) for the spare key, checked as a phone
    /// will check it: the spare key's, chained to `tls/ca.pem`, for the endpoint's host, valid now.
    fn check_issued(
        &self,
        path: &Path,
        spare: &str,
        host: &str,
        now: DateTime<Utc>,
    ) -> Result<String, HomeError> {
        let pem = read(path)?;
        let chain = crate::tls::certificates(&pem, path)?;
        if crate::tls::spki_pin(&chain[0]) != Some(crate::tls::key_pin(spare)?) {
            return Err(HomeError::NotForSpare);
        }
        crate::tls::check_chain(&chain, &read(&self.tls("ca.pem"))?, host, now)
            .map_err(HomeError::Untrusted)?;
        String::from_utf8(pem).map_err(|_| invalid(path, "PEM certificate chain"))
    }

    /// A certificate signing request for the spare key, naming the endpoint's host, for IT to
    /// issue the next certificate from (then `rotate_tls` with it).
    pub fn tls_request(&self, now: DateTime<Utc>) -> Result<String, HomeError> {
        let clinic = self.clinic()?;
        let host = endpoint_host(&clinic.endpoint).ok_or(HomeError::BadEndpoint)?;
        let spare = read(&self.tls("backup-key.pem"))?;
        crate::tls::request(&host, &String::from_utf8_lossy(&spare), now)
    }

    /// Everything `serve` needs, checked: every HPKE key in `clinic.json` has its secret, and
    /// the receipt key and TLS key are the ones `clinic.json` and the certificate name.
    pub fn load(&self) -> Result<Loaded, HomeError> {
        let clinic = self.clinic()?;
        let mut hpke = Vec::new();
        for key in &clinic.hpke_keys {
            let path = self.hpke_dir().join(format!("{}.key", key.key_id));
            let bytes = secret_line(&read(&path)?, HPKE_HEADER)
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                .ok_or_else(|| invalid(&path, "HPKE secret key"))?;
            let pair = ClinicKeyPair::from_secret_bytes(&bytes);
            if pair.public_key_b64() != key.public_key {
                return Err(invalid(&path, "secret for the key clinic.json names"));
            }
            hpke.push((key.key_id.clone(), pair));
        }
        let path = self.receipt_key();
        let receipt = secret_line(&read(&path)?, ED25519_HEADER)
            .and_then(|b| SigningKey::from_pkcs8(&b).ok())
            .ok_or_else(|| invalid(&path, "receipt key"))?;
        if receipt.public_key_b64() != clinic.receipt_key.public_key {
            return Err(invalid(
                &path,
                "secret for the receipt key clinic.json names",
            ));
        }
        let cert_path = self.tls("cert.pem");
        let chain = crate::tls::certificates(&read(&cert_path)?, &cert_path)?;
        let key_path = self.tls("key.pem");
        let tls_key = crate::tls::private_key(&read(&key_path)?, &key_path)?;
        Ok(Loaded {
            keys: ClinicKeys {
                hpke,
                receipt_key_id: clinic.receipt_key.key_id.clone(),
                receipt,
            },
            clinic,
            chain,
            tls_key,
        })
    }

    /// The key of the access log's keyed phone hashes (HMAC-SHA256), made on first use: the log
    /// can then answer "who looked at my data?" for a number long after the referral is erased,
    /// without keeping the number. It is in every backup; without it those hashes mean nothing.
    pub fn access_log_key(&self) -> Result<[u8; 32], HomeError> {
        let path = self.dir.join("keys").join("access-log.key");
        if !path.exists() {
            let mut key = [0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
                .map_err(|_| HomeError::Random)?;
            let text = format!("{HMAC_HEADER}\n{}\n", b64(&key));
            match write_private(&path, text.as_bytes()) {
                // Made meanwhile by the service or another command: read that one.
                Err(_) if path.exists() => {}
                other => other?,
            }
        }
        secret_line(&read(&path)?, HMAC_HEADER)
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| invalid(&path, "access log key"))
    }

    /// The files a backup carries, relative to the directory (the database is copied apart).
    pub fn key_files(&self) -> Result<Vec<PathBuf>, HomeError> {
        let mut files = vec![
            PathBuf::from("clinic.json"),
            PathBuf::from("keys/receipt.key"),
        ];
        if self.dir.join("keys").join("access-log.key").exists() {
            files.push(PathBuf::from("keys/access-log.key"));
        }
        let hpke = self.hpke_dir();
        let mut names: Vec<_> = std::fs::read_dir(&hpke)
            .map_err(io(&hpke))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".key"))
            .collect();
        names.sort();
        files.extend(names.into_iter().map(|n| Path::new("keys/hpke").join(n)));
        for name in ["ca.pem", "ca.key", "cert.pem", "key.pem", "backup-key.pem"] {
            if self.tls(name).exists() {
                files.push(Path::new("tls").join(name));
            }
        }
        Ok(files)
    }
}

/// The bytes of a key file: its header line, then base64.
fn secret_line(text: &[u8], header: &str) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(text).ok()?;
    let mut lines = text.lines();
    (lines.next()?.trim() == header).then_some(())?;
    unb64(lines.next()?.trim(), "key").ok()
}

/// The host of an `https://host[:port][/path]` base URL without a trailing `/`.
fn endpoint_host(endpoint: &str) -> Option<String> {
    let rest = endpoint.strip_prefix("https://")?;
    if endpoint.ends_with('/') || rest.contains(['?', '#', '@']) {
        return None;
    }
    let authority = rest.split('/').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_read_from_an_https_base_url_and_anything_else_is_refused() {
        assert_eq!(
            endpoint_host("https://localhost:8443/lots-for-livet").as_deref(),
            Some("localhost")
        );
        assert_eq!(
            endpoint_host("https://10.0.0.5").as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(endpoint_host("https://[::1]:8443").as_deref(), Some("::1"));
        assert_eq!(endpoint_host("http://localhost"), None);
        assert_eq!(endpoint_host("https://localhost/"), None);
        assert_eq!(endpoint_host("https://user@host"), None);
    }
}
