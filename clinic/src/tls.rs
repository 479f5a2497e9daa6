//! The clinic's TLS material: a development CA and server certificate made by `init` (rcgen, on
//! ring), PEM reading, and the SPKI pins devices check (RFC 7469 `pin-sha256`: base64 of the
//! SHA-256 of the DER SubjectPublicKeyInfo, outer SEQUENCE included).

use crate::home::HomeError;
use chrono::{DateTime, Datelike, Duration, Utc};
use lotsa_core::crypto::{b64, sha256};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::path::Path;
use std::sync::Arc;

/// How long a development server certificate is valid; the CA lives ten times as long.
const CERT_VALIDITY_DAYS: i64 = 397;

/// What `init` makes when IT brings no certificate.
pub struct Development {
    /// The CA certificate devices trust (PEM).
    pub ca_pem: String,
    /// The CA's key (PEM), kept to issue the next server certificate.
    pub ca_key_pem: String,
    /// The server certificate (PEM).
    pub cert_pem: String,
    /// The server key (PEM).
    pub key_pem: String,
}

/// A spare server key: its pin goes into the bundle now, so the certificate can be replaced
/// without waiting for every phone to get a new bundle.
pub struct Spare {
    /// The key (PEM).
    pub pem: String,
    /// Its pin.
    pub pin: String,
}

fn failed(e: rcgen::Error) -> HomeError {
    HomeError::Certificate(e.to_string())
}

/// A development CA and a server certificate for `host` (plus `localhost` and `127.0.0.1`).
pub fn development(name: &str, host: &str, now: DateTime<Utc>) -> Result<Development, HomeError> {
    let ca_key = KeyPair::generate().map_err(failed)?;
    let ca_key_pem = ca_key.serialize_pem();
    let mut ca = ca_params(name)?;
    valid_for(&mut ca, now, 10 * CERT_VALIDITY_DAYS);
    let issuer = CertifiedIssuer::self_signed(ca, ca_key).map_err(failed)?;
    let key = KeyPair::generate().map_err(failed)?;
    let cert = leaf_params(host, now)?
        .signed_by(&key, &issuer)
        .map_err(failed)?;
    Ok(Development {
        ca_pem: issuer.pem(),
        ca_key_pem,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A new server certificate for `host`, for the key `key_pem` (the spare one), issued by the
/// development CA `init` made for the clinic `name` (its key `ca_key_pem`): the CA's name and
/// key are its identity, so its certificate need not be parsed again.
pub fn reissue(
    ca_key_pem: &str,
    name: &str,
    host: &str,
    key_pem: &str,
    now: DateTime<Utc>,
) -> Result<String, HomeError> {
    let ca_key = KeyPair::from_pem(ca_key_pem).map_err(failed)?;
    let issuer = Issuer::new(ca_params(name)?, ca_key);
    let key = KeyPair::from_pem(key_pem).map_err(failed)?;
    let cert = leaf_params(host, now)?
        .signed_by(&key, &issuer)
        .map_err(failed)?;
    Ok(cert.pem())
}

/// A PKCS#10 certificate signing request for the key `key_pem` (the spare one), naming `host`:
/// what IT needs to issue the next certificate. It asks for `host` alone (a development
/// certificate also names `localhost` and `127.0.0.1`, which IT's CA has no business issuing).
pub fn request(host: &str, key_pem: &str, now: DateTime<Utc>) -> Result<String, HomeError> {
    let key = KeyPair::from_pem(key_pem).map_err(failed)?;
    let csr = server_params(vec![host.to_string()], host, now)?
        .serialize_request(&key)
        .map_err(failed)?;
    csr.pem().map_err(failed)
}

/// The pin of a private key's public half (the spare key's, before it has a certificate).
pub fn key_pin(key_pem: &str) -> Result<String, HomeError> {
    let key = KeyPair::from_pem(key_pem).map_err(failed)?;
    Ok(b64(&sha256(&key.subject_public_key_info())))
}

/// Checks that `chain` (leaf first) is one a phone accepts for `host` at `now`, trusting only
/// `ca_pem`, as the phone's own check (webpki, ring) does; the reason if not.
pub fn check_chain(
    chain: &[CertificateDer<'static>],
    ca_pem: &[u8],
    host: &str,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem) {
        let ca = ca.map_err(|_| "tls/ca.pem is not a PEM certificate".to_string())?;
        roots.add(ca).map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let (leaf, intermediates) = chain.split_first().ok_or("no certificate")?;
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(now.timestamp()).unwrap_or(0),
    ));
    verifier
        .verify_server_cert(leaf, intermediates, &name, &[], at)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Valid from the day before `now` for `days` (calendar days: rcgen takes `time`'s type,
/// which this crate does not name).
fn valid_for(params: &mut CertificateParams, now: DateTime<Utc>, days: i64) {
    let day = |at: DateTime<Utc>| date_time_ymd(at.year(), at.month() as u8, at.day() as u8);
    params.not_before = day(now - Duration::days(1));
    params.not_after = day(now + Duration::days(days));
}

/// The development CA's identity and powers (its validity is set where it is made).
fn ca_params(name: &str) -> Result<CertificateParams, HomeError> {
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    ca.distinguished_name.push(
        DnType::CommonName,
        format!("Lotsa development CA: {name} (not a public CA)"),
    );
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(ca)
}

/// A server certificate's parameters for `host`, `localhost` and `127.0.0.1`, valid from
/// yesterday for [`CERT_VALIDITY_DAYS`].
fn leaf_params(host: &str, now: DateTime<Utc>) -> Result<CertificateParams, HomeError> {
    let mut names = vec![host.to_string()];
    for extra in ["localhost", "127.0.0.1"] {
        if !names.iter().any(|n| n == extra) {
            names.push(extra.to_string());
        }
    }
    server_params(names, host, now)
}

/// A server certificate's parameters for `names`, its common name `host`.
fn server_params(
    names: Vec<String>,
    host: &str,
    now: DateTime<Utc>,
) -> Result<CertificateParams, HomeError> {
    let mut leaf = CertificateParams::new(names).map_err(failed)?;
    leaf.distinguished_name.push(DnType::CommonName, host);
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    valid_for(&mut leaf, now, CERT_VALIDITY_DAYS);
    Ok(leaf)
}

/// A spare server key and its pin.
pub fn spare_key() -> Result<Spare, HomeError> {
    let key = KeyPair::generate().map_err(failed)?;
    Ok(Spare {
        pem: key.serialize_pem(),
        pin: b64(&sha256(&key.subject_public_key_info())),
    })
}

/// The certificates of a PEM file, leaf first.
pub fn certificates(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, HomeError> {
    let chain: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|_| invalid(path, "PEM certificate chain"))?;
    if chain.is_empty() {
        return Err(invalid(path, "PEM certificate chain"));
    }
    Ok(chain)
}

/// The private key of a PEM file.
pub fn private_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, HomeError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| invalid(path, "PEM private key"))
}

fn invalid(path: &Path, what: &'static str) -> HomeError {
    HomeError::Invalid {
        path: path.display().to_string(),
        what,
    }
}

/// The pin of a certificate's key.
pub fn spki_pin(cert: &CertificateDer<'_>) -> Option<String> {
    let parsed = rustls::server::ParsedCertificate::try_from(cert).ok()?;
    Some(b64(&sha256(parsed.subject_public_key_info().as_ref())))
}

/// The SHA-256 fingerprint of a certificate, as `openssl x509 -fingerprint -sha256` shows it.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    sha256(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
