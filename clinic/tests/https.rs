//! The status matrix against the running service: a clinic made by `init`, its bundle signed
//! with `--clinic clinic.json`'s merge, served over real HTTPS on 127.0.0.1 and spoken to by a real
//! HTTP client (reqwest on rustls/ring, trusting only the clinic's development CA). Faults are
//! real too: a database locked by another connection, a slow peer on a raw TLS socket, a restart,
//! a restore from backup.

mod support;

use chrono::{Duration as Days, Utc};
use lotsa_clinic::backup;
use lotsa_clinic::home::{Home, InitOptions};
use lotsa_clinic::intake::DeviceRate;
use lotsa_clinic::serve::prepare;
use lotsa_clinic::server::{start, Limits, Running};
use lotsa_clinic::storage::Storage;
use lotsa_core::crypto::{sha256, unb64, PublicKey, SigningKey};
use lotsa_core::program::Clinic;
use lotsa_core::protocol::{
    EnrolmentRequest, Envelope, Problem, ProblemType, Receipt, ReceiptFacts,
};
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use support::{payload, uuid, Device, SealTo, Signed, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An answer as the client saw it.
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn code(&self) -> Option<&'static str> {
        Problem::from_json(&self.body)
            .and_then(|p| p.problem_type())
            .map(ProblemType::code)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A clinic made by `init` and served on loopback, with its own runtime.
struct Served {
    dir: TempDir,
    home: Home,
    admin: SigningKey,
    bundle: String,
    rt: tokio::runtime::Runtime,
    running: Option<Running>,
    addr: SocketAddr,
    client: reqwest::Client,
    clinic: Clinic,
    limits: Limits,
    rate: DeviceRate,
}

fn short_limits() -> Limits {
    Limits {
        request_timeout: Duration::from_secs(2),
        handshake_timeout: Duration::from_secs(2),
        ..Limits::default()
    }
}

impl Served {
    fn new() -> Served {
        Served::with(short_limits(), DeviceRate::default())
    }

    fn with(limits: Limits, rate: DeviceRate) -> Served {
        let dir = TempDir::new();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let endpoint = format!("https://localhost:{}/lots-for-livet", addr.port());
        let home = Home::new(dir.0.join("clinic"));
        let options = InitOptions {
            name: "Testmottagningen".into(),
            endpoint: endpoint.clone(),
            provided_tls: None,
        };
        let clinic = home.init(&options, Utc::now()).unwrap();
        let admin = SigningKey::generate().unwrap();
        let bundle = support::bundle_for(&clinic, &admin);
        let client = support::http_client(home.dir(), addr);
        let mut served = Served {
            dir,
            home,
            admin,
            bundle,
            rt,
            running: None,
            addr,
            client,
            clinic,
            limits,
            rate,
        };
        served.start(listener);
        served
    }

    fn start(&mut self, listener: TcpListener) {
        let ready = prepare(
            &self.home,
            &self.bundle,
            &self.admin.public_key(),
            Utc::now(),
            self.limits.clone(),
            self.rate,
        )
        .unwrap();
        let _entered = self.rt.enter();
        self.running = Some(start(listener, ready.tls, ready.service));
    }

    fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            self.rt.block_on(running.stop());
        }
    }

    /// Stops the service and starts it again on the same address (from `home`, which may now be
    /// another directory).
    fn restart(&mut self) {
        self.stop();
        let listener = self.rt.block_on(TcpListener::bind(self.addr)).unwrap();
        self.start(listener);
    }

    fn base(&self) -> String {
        self.clinic.endpoint.clone()
    }

    fn seal_to(&self) -> SealTo {
        let key = &self.clinic.hpke_keys[0];
        SealTo {
            public_key: unb64(&key.public_key, "key").unwrap().try_into().unwrap(),
            key_id: key.key_id.clone(),
        }
    }

    fn storage(&self) -> Storage {
        Storage::open(&self.home.database()).unwrap()
    }

    fn held(&self) -> i64 {
        self.storage().handover_count().unwrap()
    }

    /// A device enrolled with a fresh one-time code.
    fn device(&self) -> Device {
        let mut device = Device::new(&self.base());
        let code = lotsa_clinic::intake::new_enrolment_code().unwrap();
        self.storage()
            .add_enrolment_code(
                lotsa_clinic::intake::code_hash(&code),
                (Utc::now() + Days::hours(1)).timestamp(),
            )
            .unwrap();
        let body = EnrolmentRequest::new(&code, &device.key.public_key()).to_json();
        let reply = self.send(&device.request("/v1/devices", body, Utc::now()));
        assert_eq!(reply.status, 201, "{}", reply.text());
        device
    }

    fn send(&self, req: &Signed) -> Reply {
        let mut builder = self.client.post(&req.uri).body(req.body.clone());
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        self.reply(builder)
    }

    fn get(&self, path: &str) -> Reply {
        self.reply(self.client.get(format!("{}{path}", self.base())))
    }

    fn reply(&self, builder: reqwest::RequestBuilder) -> Reply {
        self.rt.block_on(async {
            let response = builder.send().await.unwrap();
            Reply {
                status: response.status().as_u16(),
                headers: response.headers().clone(),
                body: response.bytes().await.unwrap().to_vec(),
            }
        })
    }

    /// A fresh referral's envelope.
    fn envelope(&self, device: &Device) -> Envelope {
        let id = uuid();
        device.envelope(&self.seal_to(), &id, &payload(&id, Utc::now()))
    }

    /// Writes `bytes` on a raw TLS connection, waits, and returns the status line's code of what
    /// comes back (None if the connection closed without an answer).
    fn raw(&self, bytes: Vec<u8>, wait: Duration) -> Option<u16> {
        let config = Arc::new(support::tls_client_config(self.home.dir()));
        let addr = self.addr;
        self.rt.block_on(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let connector = tokio_rustls::TlsConnector::from(config);
            let name = ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await.unwrap();
            // The server may stop reading (and answer) before everything is written.
            let _ = tls.write_all(&bytes).await;
            let _ = tls.flush().await;
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(wait, tls.read_to_end(&mut answer)).await;
            let text = String::from_utf8_lossy(&answer);
            text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
        })
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Holds the clinic database's write lock from another connection, as another process could.
struct Locked(rusqlite::Connection);

fn lock(served: &Served) -> Locked {
    let conn = rusqlite::Connection::open(served.home.database()).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    Locked(conn)
}

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = self.0.execute_batch("ROLLBACK");
    }
}

fn assert_problem(reply: &Reply, code: &str) {
    assert_eq!(
        reply.code(),
        Some(code),
        "{} {}",
        reply.status,
        reply.text()
    );
    let kind = ProblemType::ALL.iter().find(|t| t.code() == code).unwrap();
    assert_eq!(reply.status, kind.status(), "{code}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert!(reply.header("date").is_some(), "every answer has a Date");
}

#[test]
fn a_delivery_is_stored_before_its_201_and_a_repeat_gets_the_same_receipt_bytes_even_after_a_restart(
) {
    let mut s = Served::new();
    let mut device = s.device();
    let envelope = s.envelope(&device);
    let first = s.send(&device.delivery(&envelope, Utc::now()));
    assert_eq!(first.status, 201, "{}", first.text());
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert!(first.header("date").is_some());
    // Stored (a separate connection sees it) before the answer arrived.
    assert_eq!(s.held(), 1);

    let receipt: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    let received_at =
        chrono::DateTime::parse_from_rfc3339(receipt["received_at"].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc);
    let sent = ReceiptFacts {
        handover_id: envelope.handover_id.clone(),
        sealed_sha256: sha256(&envelope.sealed_bytes().unwrap()),
        received_at,
        hpke_key_id: envelope.clinic_key_id.clone(),
        receipt_key_id: s.clinic.receipt_key.key_id.clone(),
        device_id: device.id(),
        audit_head: device.head(),
    };
    let receipt_key = PublicKey::from_b64(&s.clinic.receipt_key.public_key).unwrap();
    Receipt::verify(&first.body, &sent.receipt_key_id, &receipt_key, &sent).unwrap();

    let repeat = s.send(&device.delivery(&envelope, Utc::now()));
    assert_eq!((repeat.status, &repeat.body), (200, &first.body));

    s.restart();
    let after = s.send(&device.delivery(&envelope, Utc::now()));
    assert_eq!((after.status, &after.body), (200, &first.body));
    // Other bytes under the same id.
    let other = device.envelope(
        &s.seal_to(),
        &envelope.handover_id,
        &payload(&envelope.handover_id, Utc::now()),
    );
    assert_problem(
        &s.send(&device.delivery(&other, Utc::now())),
        "conflicting_resend",
    );
    assert_eq!(s.held(), 1);
}

#[test]
fn every_bad_input_gets_its_problem_stores_nothing_and_the_next_good_request_is_served() {
    let s = Served::new();
    let mut device = s.device();
    let good = s.envelope(&device);
    let id = good.handover_id.clone();
    let now = Utc::now();
    let to = s.seal_to();

    let mut stranger = Device::new(&s.base());
    let mut unknown_program = good.clone();
    unknown_program.program_id = "no-such-program".into();
    let mut unknown_key = good.clone();
    unknown_key.clinic_key_id = "hpke-00000000".into();
    let other_binding = device.envelope_for(&to, &id, "snackan", &payload(&id, now));
    let mut rebound = other_binding.clone();
    rebound.program_id = support::PROGRAM.into();
    let other_id = uuid();
    let mismatch = device.envelope(&to, &id, &payload(&other_id, now));
    let too_old = device.envelope(&to, &id, &payload(&id, now - Days::days(31)));
    let not_a_handover = device.envelope(&to, &id, "{\"schema\":\"lotsa.handover/1\"}");
    let with_key = |r: Signed| r.set("idempotency-key", &format!("\"{id}\""));
    let bad_base64 = String::from_utf8(good.to_json())
        .unwrap()
        .replace(&good.sealed, "not base64!");
    let nested = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    let signed_other_body = {
        let r = device.delivery(&good, now);
        let digest = lotsa_core::protocol::signature::content_digest(b"{}");
        Signed {
            body: b"{}".to_vec(),
            ..r
        }
        .set("content-digest", &digest)
    };

    let cases: Vec<(&str, Signed)> = vec![
        (
            "malformed_body",
            with_key(device.request("/v1/handovers", b"{\"schema\":".to_vec(), now)),
        ),
        (
            "malformed_body",
            with_key(device.request("/v1/handovers", nested.into_bytes(), now)),
        ),
        (
            "malformed_body",
            with_key(device.request("/v1/handovers", bad_base64.into_bytes(), now)),
        ),
        (
            "unsupported_media_type",
            device
                .delivery(&good, now)
                .set("content-type", "text/plain"),
        ),
        (
            "digest_mismatch",
            Signed {
                body: b"{}".to_vec(),
                ..device.delivery(&good, now)
            },
        ),
        (
            "idempotency_key_mismatch",
            device.delivery(&good, now).set("idempotency-key", "\"x\""),
        ),
        ("bad_signature", signed_other_body),
        ("unknown_device", stranger.delivery(&good, now)),
        (
            "signature_stale",
            device.delivery(&good, now - Days::hours(1)),
        ),
        ("unknown_program", device.delivery(&unknown_program, now)),
        ("unknown_clinic_key", device.delivery(&unknown_key, now)),
        ("does_not_open", device.delivery(&rebound, now)),
        ("payload_invalid", device.delivery(&not_a_handover, now)),
        ("envelope_mismatch", device.delivery(&mismatch, now)),
        ("referral_too_old", device.delivery(&too_old, now)),
        (
            "headers_too_large",
            device
                .delivery(&good, now)
                .set("x-padding", &"a".repeat(20_000)),
        ),
    ];
    for (code, req) in cases {
        let reply = s.send(&req);
        assert_problem(&reply, code);
        assert_eq!(s.held(), 0, "{code} stored nothing");
    }

    // 20 MB: refused from its Content-Length, before the body is read (so on a raw socket: the
    // service closes the connection rather than read 20 MB, which an HTTP client reports as a
    // broken pipe before it reads the answer).
    let mut huge = String::from(
        "POST /lots-for-livet/v1/handovers HTTP/1.1\r\nhost: localhost\r\n\
         content-type: application/json\r\ncontent-length: 20971520\r\n\r\n",
    )
    .into_bytes();
    huge.resize(huge.len() + 20 * 1024 * 1024, b' ');
    assert_eq!(s.raw(huge, Duration::from_secs(5)), Some(413));
    // 1 MB of headers: hyper's own 431 (no body) before any handler runs.
    let mut head = String::from(
        "POST /lots-for-livet/v1/handovers HTTP/1.1\r\nhost: localhost\r\ncontent-length: 0\r\n",
    );
    for i in 0..1000 {
        head.push_str(&format!("x-h{i}: {}\r\n", "a".repeat(1000)));
    }
    head.push_str("\r\n");
    assert_eq!(s.raw(head.into_bytes(), Duration::from_secs(5)), Some(431));
    assert_eq!(s.held(), 0);

    let reply = s.send(&device.delivery(&good, Utc::now()));
    assert_eq!(reply.status, 201, "{}", reply.text());
}

#[test]
fn a_replayed_request_stores_nothing_and_a_revoked_device_is_refused_on_its_next_request() {
    let s = Served::new();
    let mut device = s.device();
    let first = s.envelope(&device);
    let req = device.delivery(&first, Utc::now());
    assert_eq!(s.send(&req).status, 201);
    assert_problem(&s.send(&req), "signature_replayed");
    // A replay of a new referral's request, sent once already, stores nothing new either.
    let second = s.envelope(&device);
    let req = device.delivery(&second, Utc::now());
    assert_eq!(s.send(&req).status, 201);
    assert_problem(&s.send(&req), "signature_replayed");
    assert_eq!(s.held(), 2);

    // Revoked by the administrator's command (another connection), while the service runs.
    assert!(s
        .storage()
        .revoke(&device.id(), Utc::now().timestamp())
        .unwrap());
    let third = s.envelope(&device);
    assert_problem(
        &s.send(&device.delivery(&third, Utc::now())),
        "device_revoked",
    );
    assert_eq!(s.held(), 2);
}

#[test]
fn a_withdrawal_before_the_referral_makes_it_a_410_and_one_after_erases_it() {
    let s = Served::new();
    let mut device = s.device();
    let early = s.envelope(&device);
    let w1 = uuid();
    let confirmation = s.send(&device.withdrawal(&w1, &early.handover_id, Utc::now()));
    assert_eq!(confirmation.status, 201, "{}", confirmation.text());
    assert!(confirmation.text().contains("\"outcome\":\"not_received\""));
    assert_problem(&s.send(&device.delivery(&early, Utc::now())), "withdrawn");
    let again = s.send(&device.withdrawal(&w1, &early.handover_id, Utc::now()));
    assert_eq!((again.status, &again.body), (200, &confirmation.body));
    // The same withdrawal id with other content.
    let other = s.envelope(&device);
    assert_problem(
        &s.send(&device.withdrawal(&w1, &other.handover_id, Utc::now())),
        "conflicting_withdrawal",
    );

    let late = s.envelope(&device);
    assert_eq!(s.send(&device.delivery(&late, Utc::now())).status, 201);
    assert_eq!(s.held(), 1);
    let mut thief = s.device();
    assert_problem(
        &s.send(&thief.withdrawal(&uuid(), &late.handover_id, Utc::now())),
        "handover_of_another_device",
    );
    let erased = s.send(&device.withdrawal(&uuid(), &late.handover_id, Utc::now()));
    assert_eq!(erased.status, 201);
    assert!(erased.text().contains("\"outcome\":\"erased\""));
    assert_eq!(s.held(), 0);
    assert_problem(&s.send(&device.delivery(&late, Utc::now())), "withdrawn");
}

#[test]
fn an_enrolment_code_is_taken_once_and_unknown_paths_and_methods_get_problem_details() {
    let s = Served::new();
    let device = s.device();
    let mut again = Device::new(&s.base());
    again.key = SigningKey::from_pkcs8(device.key.pkcs8()).unwrap();
    let mut other = Device::new(&s.base());
    let code = lotsa_clinic::intake::new_enrolment_code().unwrap();
    s.storage()
        .add_enrolment_code(
            lotsa_clinic::intake::code_hash(&code),
            (Utc::now() + Days::hours(1)).timestamp(),
        )
        .unwrap();
    let body = EnrolmentRequest::new(&code, &other.key.public_key()).to_json();
    assert_eq!(
        s.send(&other.request("/v1/devices", body.clone(), Utc::now()))
            .status,
        201
    );
    // The answer was lost: the same key and code again is the same enrolment.
    assert_eq!(
        s.send(&other.request("/v1/devices", body, Utc::now()))
            .status,
        200
    );
    let body = EnrolmentRequest::new(&code, &again.key.public_key()).to_json();
    assert_problem(
        &s.send(&again.request("/v1/devices", body, Utc::now())),
        "enrolment_code_refused",
    );

    assert_problem(&s.get("/v1/nothing-here"), "not_found");
    assert_problem(&s.get("/v1/handovers"), "method_not_allowed");
    let bundle = s.get("/v1/bundle");
    assert_eq!(
        (bundle.status, bundle.body.as_slice()),
        (200, s.bundle.as_bytes())
    );
    let health = s.get("/v1/health");
    assert_eq!(
        (health.status, health.text()),
        (200, "{\"status\":\"ok\"}".into())
    );
}

#[test]
fn a_locked_database_makes_a_copy_in_flight_a_409_and_past_the_busy_timeout_a_500() {
    let s = Served::new();
    let mut device = s.device();
    let envelope = s.envelope(&device);
    let first = device.delivery(&envelope, Utc::now());
    let copy = device.delivery(&envelope, Utc::now());
    let locked = lock(&s);
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| s.send(&first));
        std::thread::sleep(Duration::from_millis(500));
        // The first is waiting for its commit: the same id at once is in flight.
        assert_problem(&s.send(&copy), "in_flight");
        drop(locked);
        assert_eq!(waiting.join().unwrap().status, 201);
    });
    assert_eq!(s.held(), 1);

    // Held past the busy timeout (5 s): nothing stored, and the clinic says it failed.
    let other = s.envelope(&device);
    let req = device.delivery(&other, Utc::now());
    let locked = lock(&s);
    let reply = s.send(&req);
    drop(locked);
    assert_problem(&reply, "internal");
    assert_eq!(s.held(), 1);
    let reply = s.send(&device.delivery(&other, Utc::now()));
    assert_eq!(reply.status, 201, "the retry is served");
}

#[test]
fn load_beyond_the_concurrency_limit_is_shed_with_503_and_retry_after() {
    let limits = Limits {
        max_in_flight: 1,
        ..short_limits()
    };
    let s = Served::with(limits, DeviceRate::default());
    let mut device = s.device();
    let a = s.envelope(&device);
    let b = s.envelope(&device);
    let (first, second) = (
        device.delivery(&a, Utc::now()),
        device.delivery(&b, Utc::now()),
    );
    let locked = lock(&s);
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| s.send(&first));
        std::thread::sleep(Duration::from_millis(500));
        let shed = s.send(&second);
        assert_problem(&shed, "overloaded");
        assert!(shed.header("retry-after").unwrap().parse::<u32>().unwrap() >= 1);
        drop(locked);
        assert_eq!(waiting.join().unwrap().status, 201);
    });
    assert_eq!(s.send(&device.delivery(&b, Utc::now())).status, 201);
}

#[test]
fn a_device_over_its_budget_gets_429_with_the_seconds_to_wait() {
    let rate = DeviceRate {
        burst: 3,
        per_minute: 1,
    };
    let s = Served::with(short_limits(), rate);
    // The enrolment took one of the three.
    let mut device = s.device();
    assert_eq!(
        s.send(&device.delivery(&s.envelope(&device), Utc::now()))
            .status,
        201
    );
    assert_eq!(
        s.send(&device.delivery(&s.envelope(&device), Utc::now()))
            .status,
        201
    );
    let limited = s.send(&device.delivery(&s.envelope(&device), Utc::now()));
    assert_problem(&limited, "rate_limited");
    let wait: u32 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Another device has its own budget.
    let mut other = s.device();
    assert_eq!(
        s.send(&other.delivery(&s.envelope(&other), Utc::now()))
            .status,
        201
    );
}

#[test]
fn a_body_that_does_not_arrive_in_time_gets_408_and_a_silent_peer_is_disconnected() {
    let s = Served::new();
    let slow = "POST /lots-for-livet/v1/handovers HTTP/1.1\r\nhost: localhost\r\n\
                content-type: application/json\r\ncontent-length: 500\r\n\r\n{\"schema\":";
    assert_eq!(
        s.raw(slow.as_bytes().to_vec(), Duration::from_secs(6)),
        Some(408)
    );
    // Half a request line, then nothing: closed without an answer once the header time is up.
    let started = std::time::Instant::now();
    assert_eq!(
        s.raw(
            b"POST /lots-for-livet/v1/hand".to_vec(),
            Duration::from_secs(8)
        ),
        None
    );
    assert!(started.elapsed() < Duration::from_secs(7));
    assert_eq!(s.get("/v1/health").status, 200);
}

#[test]
fn a_restore_from_backup_serves_the_same_referrals() {
    let mut s = Served::new();
    let mut device = s.device();
    let envelopes: Vec<Envelope> = (0..3).map(|_| s.envelope(&device)).collect();
    let mut receipts = Vec::new();
    for e in &envelopes {
        let reply = s.send(&device.delivery(e, Utc::now()));
        assert_eq!(reply.status, 201);
        receipts.push(reply.body);
    }
    let withdrawn = &envelopes[2].handover_id;
    assert_eq!(
        s.send(&device.withdrawal(&uuid(), withdrawn, Utc::now()))
            .status,
        201
    );
    let before = s.storage().handover_ids().unwrap();
    assert_eq!(before.len(), 2);

    let file = s.dir.0.join("clinic.backup");
    backup::write(
        &s.home,
        &s.storage(),
        &file,
        "correct horse battery",
        Utc::now(),
    )
    .unwrap();
    assert!(matches!(
        backup::restore(&file, &s.dir.0.join("wrong"), "not the passphrase"),
        Err(backup::BackupError::Unreadable)
    ));
    let restored = s.dir.0.join("restored");
    backup::restore(&file, &restored, "correct horse battery").unwrap();
    s.home = Home::new(&restored);
    s.restart();

    assert_eq!(s.storage().handover_ids().unwrap(), before);
    for (e, receipt) in envelopes.iter().zip(&receipts).take(2) {
        let reply = s.send(&device.delivery(e, Utc::now()));
        assert_eq!((reply.status, &reply.body), (200, receipt));
    }
    assert_problem(
        &s.send(&device.delivery(&envelopes[2], Utc::now())),
        "withdrawn",
    );
}
