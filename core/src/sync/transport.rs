//! The HTTPS client a device uses to reach one clinic: HTTPS only, TLS 1.3, rustls on the ring
//! provider, trusting only the CA the program bundle names for that clinic, and then only a server
//! key whose SPKI pin (base64 SHA-256 of the DER SubjectPublicKeyInfo) is in the bundle. No proxy,
//! no redirects: a certificate or key that is not the clinic's ends the connection before a
//! single byte of a request is sent.

use crate::crypto::{b64, sha256};
use crate::program::Clinic;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;

/// How long a device waits. The delivery engine never starts a request it cannot finish before
/// its deadline, so `request` bounds one whole exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// For the TCP connection and the TLS handshake.
    pub connect: Duration,
    /// For one whole request, connection and answer included.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(15),
        }
    }
}

/// Why a request got no answer. No variant carries request or answer content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The bundle's TLS settings for this clinic cannot make a client (no CA, a bad CA).
    #[error("the program bundle's TLS settings for this clinic are unusable: {reason}")]
    Config {
        /// Why.
        reason: String,
    },
    /// The server is not the clinic the bundle names: wrong CA, wrong name, expired, or a key
    /// that is not pinned. Nothing was sent.
    #[error("the clinic's certificate is not the one the program bundle trusts: {reason}")]
    Untrusted {
        /// Why.
        reason: String,
    },
    /// The time allowed ran out.
    #[error("the clinic did not answer in time")]
    Timeout,
    /// No connection, or it broke (no coverage, the clinic is down, a reset).
    #[error("the clinic could not be reached: {reason}")]
    Network {
        /// Why, in a few words.
        reason: String,
    },
}

/// An answer: status, the headers a device acts on, and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// `Retry-After` in seconds, when given as seconds.
    pub retry_after_secs: Option<u64>,
    /// The clinic's `Date` (to tell the user how far off the phone's clock is).
    pub date: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// A client for one clinic.
pub struct Transport {
    client: reqwest::blocking::Client,
    clinic: Clinic,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("endpoint", &self.clinic.endpoint)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// The client for a clinic as its program bundle describes it.
    pub fn for_clinic(clinic: &Clinic, timeouts: Timeouts) -> Result<Transport, TransportError> {
        let config = client_config(clinic)?;
        let client = reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(config)
            .https_only(true)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            .pool_max_idle_per_host(1)
            .build()
            .map_err(|e| TransportError::Config {
                reason: e.to_string(),
            })?;
        Ok(Transport {
            client,
            clinic: clinic.clone(),
        })
    }

    /// The full URL of an API path (`handovers` → `{endpoint}/v1/handovers`), as it is signed.
    pub fn url(&self, path: &str) -> String {
        self.clinic.api_url(path)
    }

    /// The clinic it talks to.
    pub fn clinic(&self) -> &Clinic {
        &self.clinic
    }

    /// `POST {endpoint}/v1/{path}` with the given (signed) headers and body.
    pub fn post(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Reply, TransportError> {
        let mut request = self.client.post(self.url(path)).body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        reply(request.send())
    }

    /// `GET {endpoint}/v1/{path}`.
    pub fn get(&self, path: &str) -> Result<Reply, TransportError> {
        reply(self.client.get(self.url(path)).send())
    }
}

fn reply(sent: reqwest::Result<reqwest::blocking::Response>) -> Result<Reply, TransportError> {
    let response = sent.map_err(failure)?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let status = response.status().as_u16();
    let retry_after_secs = header("retry-after").and_then(|v| v.trim().parse().ok());
    let date = header("date");
    let body = response.bytes().map_err(failure)?.to_vec();
    Ok(Reply {
        status,
        retry_after_secs,
        date,
        body,
    })
}

/// What went wrong, from reqwest's error chain: a refused certificate, a timeout, or the network.
fn failure(e: reqwest::Error) -> TransportError {
    if e.is_timeout() {
        return TransportError::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return TransportError::Untrusted {
                reason: tls.to_string(),
            };
        }
        // An I/O error wraps rustls' error, sometimes in another I/O error, and its `source`
        // skips what it wraps: look inside.
        let mut io = s.downcast_ref::<std::io::Error>();
        while let Some(e) = io {
            if e.kind() == std::io::ErrorKind::TimedOut {
                return TransportError::Timeout;
            }
            let inner = e.get_ref();
            if let Some(tls) = inner.and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return TransportError::Untrusted {
                    reason: tls.to_string(),
                };
            }
            io = inner.and_then(|i| i.downcast_ref::<std::io::Error>());
        }
        source = s.source();
    }
    TransportError::Network {
        reason: if e.is_connect() {
            "no connection".into()
        } else {
            "the connection broke".into()
        },
    }
}

/// The TLS configuration for one clinic: its CA as the only root, its pins on top.
fn client_config(clinic: &Clinic) -> Result<rustls::ClientConfig, TransportError> {
    let config_error = |reason: String| TransportError::Config { reason };
    let pem = clinic
        .tls
        .ca_pem
        .as_deref()
        .ok_or_else(|| config_error("the bundle names no CA for this clinic".into()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|_| config_error("the CA certificate is not PEM".into()))?;
        roots
            .add(cert)
            .map_err(|e| config_error(format!("the CA certificate is not usable: {e}")))?;
    }
    let pins = clinic.tls.spki_sha256_pins.clone();
    if pins.is_empty() {
        return Err(config_error("the bundle pins no server key".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| config_error(e.to_string()))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| config_error(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { inner, pins }))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The bundle's CA checks the chain, the name and the validity; then the server key must be one of
/// the pinned ones.
#[derive(Debug)]
struct Pinned {
    inner: Arc<WebPkiServerVerifier>,
    pins: Vec<String>,
}

/// The RFC 7469 pin of a certificate's key.
pub fn spki_pin(cert: &CertificateDer<'_>) -> Option<String> {
    let parsed = rustls::server::ParsedCertificate::try_from(cert).ok()?;
    Some(b64(&sha256(parsed.subject_public_key_info().as_ref())))
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)?;
        match spki_pin(end_entity) {
            Some(pin) if self.pins.contains(&pin) => Ok(ServerCertVerified::assertion()),
            _ => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
