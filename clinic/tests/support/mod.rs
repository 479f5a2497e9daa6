//! What the clinic's tests share: temporary directories, a device that seals and signs as the
//! protocol says (with the core's protocol module; the independent Python device in
//! tests/interop does the same from PROTOCOL.md alone), and a fresh handover payload.
#![allow(dead_code)]

use chrono::{DateTime, SecondsFormat, Utc};
use lotsa_core::crypto::seal::{seal_to_clinic, SealBinding};
use lotsa_core::crypto::{sha256, SigningKey};
use lotsa_core::protocol::signature::{new_nonce, sign_request};
use lotsa_core::protocol::{device_id, AuditHead, Envelope, WithdrawalMessage};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// A valid handover payload (program `lots-for-livet`), as recorded on 2026-12-01.
pub const PLAINTEXT: &str = include_str!("../handover.json");
/// Its handover id.
pub const HANDOVER: &str = "0b6c1f5e-3d2a-4c8e-9f10-2a3b4c5d6e7f";
/// The program of the payload.
pub const PROGRAM: &str = "lots-for-livet";

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "lotsa-clinic-it-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The example program set, issued now, its `lots-for-livet` program pointed at a clinic made by
/// `init` and given that clinic's keys and trust (as `lotsa program sign --clinic` does), signed.
pub fn bundle_for(clinic: &lotsa_core::program::Clinic, admin: &SigningKey) -> String {
    let example = include_str!("../../../schemas/examples/programs.example.json");
    let mut set = lotsa_core::program::ProgramSet::from_json(example).unwrap();
    set.issued_at = chrono::Utc::now().fixed_offset();
    for p in &mut set.programs {
        if p.id == PROGRAM {
            p.clinic.endpoint = clinic.endpoint.clone();
        }
    }
    assert_eq!(set.merge_clinic(clinic), 1);
    set.sign(admin).unwrap()
}

/// A TLS client as a device makes one for a clinic made by `init`: TLS 1.3 on ring, trusting only
/// the clinic's development CA (`tls/ca.pem` in its directory), HTTP/1.1.
pub fn tls_client_config(clinic_dir: &Path) -> rustls::ClientConfig {
    let ca = std::fs::read(clinic_dir.join("tls").join("ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca) {
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

/// An HTTP client for that clinic, with `localhost` resolved to `addr` (one keep-alive
/// connection per host).
pub fn http_client(clinic_dir: &Path, addr: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_client_config(clinic_dir))
        .resolve("localhost", addr)
        .pool_max_idle_per_host(1)
        .timeout(std::time::Duration::from_secs(10))
        .https_only(true)
        .no_proxy()
        .build()
        .unwrap()
}

/// Sends a signed request; the status and body, or None when no answer came (a killed service).
pub async fn post(client: &reqwest::Client, req: &Signed) -> Option<(u16, Vec<u8>)> {
    let mut builder = client.post(&req.uri).body(req.body.clone());
    for (name, value) in &req.headers {
        builder = builder.header(*name, value);
    }
    let response = builder.send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.bytes().await.ok()?.to_vec()))
}

/// A random UUID v4, lowercase.
pub fn uuid() -> String {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = lotsa_core::crypto::hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The fixture payload under another handover id, consented at `at`.
pub fn payload(handover_id: &str, at: DateTime<Utc>) -> String {
    let when = at
        .with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap())
        .to_rfc3339_opts(SecondsFormat::Secs, false);
    PLAINTEXT
        .replace(HANDOVER, handover_id)
        .replace("2026-12-01T10:30:00+01:00", &when)
        .replace("\"2026-12-01\"", &format!("\"{}\"", at.date_naive()))
}

/// A request as a device sends it.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The URL signed (`@target-uri`).
    pub uri: String,
    /// Header lines, signature included.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Signed {
    /// The same request with one header replaced.
    pub fn set(mut self, name: &'static str, value: &str) -> Signed {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.to_string()));
        self
    }

    /// The path after the base URL's last `/v1/`.
    pub fn endpoint(&self) -> &str {
        self.uri.rsplit('/').next().unwrap_or("")
    }
}

/// The clinic's HPKE key as a device finds it in the bundle.
#[derive(Debug, Clone)]
pub struct SealTo {
    pub public_key: [u8; 32],
    pub key_id: String,
}

/// A device: its key, the base URL it posts to and its audit sequence.
pub struct Device {
    pub key: SigningKey,
    pub base: String,
    pub seq: u64,
}

impl Device {
    pub fn new(base: &str) -> Device {
        Device {
            key: SigningKey::generate().unwrap(),
            base: base.to_string(),
            seq: 0,
        }
    }

    pub fn id(&self) -> String {
        device_id(&self.key.public_key())
    }

    /// The audit head it claims (a stand-in chain: the protocol only carries it).
    pub fn head(&self) -> AuditHead {
        AuditHead {
            seq: self.seq,
            sha256: sha256(&self.seq.to_be_bytes()),
        }
    }

    /// A signed POST to `{base}{path}` created at `at`.
    pub fn request(&mut self, path: &str, body: Vec<u8>, at: DateTime<Utc>) -> Signed {
        self.seq += 1;
        let uri = format!("{}{path}", self.base);
        let head = self.head();
        let mut headers = sign_request(
            &self.key,
            "POST",
            &uri,
            &body,
            Some(&head),
            at.timestamp(),
            &new_nonce().unwrap(),
        )
        .unwrap()
        .headers;
        headers.push(("content-type", "application/json".into()));
        Signed { uri, headers, body }
    }

    /// An envelope of `plaintext` sealed to the clinic with the binding of `handover_id`.
    pub fn envelope(&self, to: &SealTo, handover_id: &str, plaintext: &str) -> Envelope {
        self.envelope_for(to, handover_id, PROGRAM, plaintext)
    }

    /// The same, bound to another program.
    pub fn envelope_for(
        &self,
        to: &SealTo,
        handover_id: &str,
        program_id: &str,
        plaintext: &str,
    ) -> Envelope {
        let binding = SealBinding {
            handover_id,
            program_id,
            clinic_key_id: &to.key_id,
            schema_version: 1,
        };
        let sealed = seal_to_clinic(&to.public_key, &binding, plaintext.as_bytes()).unwrap();
        Envelope::new(&binding, &sealed.to_bytes())
    }

    /// `POST /v1/handovers` of an envelope.
    pub fn delivery(&mut self, envelope: &Envelope, at: DateTime<Utc>) -> Signed {
        self.request("/v1/handovers", envelope.to_json(), at)
            .set("idempotency-key", &format!("\"{}\"", envelope.handover_id))
    }

    /// `POST /v1/withdrawals` of a handover, with its own withdrawal id.
    pub fn withdrawal(
        &mut self,
        withdrawal_id: &str,
        handover_id: &str,
        at: DateTime<Utc>,
    ) -> Signed {
        let body = withdrawal_message(withdrawal_id, handover_id, at).to_json();
        self.request("/v1/withdrawals", body, at)
    }
}

/// A withdrawal message, to the minute.
pub fn withdrawal_message(
    withdrawal_id: &str,
    handover_id: &str,
    at: DateTime<Utc>,
) -> WithdrawalMessage {
    let minute = DateTime::from_timestamp(at.timestamp() - at.timestamp() % 60, 0).unwrap();
    WithdrawalMessage {
        schema: "lotsa.withdrawal/1".into(),
        withdrawal_id: withdrawal_id.into(),
        handover_id: handover_id.into(),
        consent_id: None,
        program_id: PROGRAM.into(),
        withdrawn_at: minute.with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap()),
        recorded_by_role: None,
    }
}
