//! The intake logic against a real SQLite file, with requests signed as a device signs them.
//! (The same matrix over real HTTPS on loopback follows with the server.)

use chrono::{DateTime, TimeZone, Utc};
use lotsa_clinic::intake::{code_hash, Answer, ClinicKeys, Intake};
use lotsa_clinic::storage::Storage;
use lotsa_core::crypto::seal::ClinicKeyPair;
use lotsa_core::crypto::{sha256, SigningKey};
use lotsa_core::protocol::signature::Incoming;
use lotsa_core::protocol::{
    EnrolmentRequest, ProblemType, Receipt, ReceiptFacts, WithdrawalMessage,
};
use std::path::PathBuf;

mod support;
use support::{Device, SealTo, Signed, TempDir, HANDOVER, PLAINTEXT};

/// The base URL the in-process requests are signed for.
const BASE: &str = "https://clinic.example:8443";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 31, 0).unwrap()
}

struct World {
    _dir: TempDir,
    db: PathBuf,
    intake: Intake,
    hpke: ClinicKeyPair,
    receipt_key: SigningKey,
}

fn keys(hpke: &ClinicKeyPair, receipt: &SigningKey) -> ClinicKeys {
    ClinicKeys {
        hpke: vec![("lfl-2026".into(), hpke.clone())],
        receipt_key_id: "lfl-receipts".into(),
        receipt: SigningKey::from_pkcs8(receipt.pkcs8()).unwrap(),
    }
}

fn world() -> World {
    let dir = TempDir::new();
    let db = dir.0.join("clinic.db");
    let hpke = ClinicKeyPair::generate().unwrap();
    let receipt_key = SigningKey::generate().unwrap();
    let intake = Intake::new(
        Storage::open(&db).unwrap(),
        keys(&hpke, &receipt_key),
        vec!["lots-for-livet".into()],
        now(),
    )
    .unwrap();
    World {
        _dir: dir,
        db,
        intake,
        hpke,
        receipt_key,
    }
}

fn seal_to(world: &World) -> SealTo {
    SealTo {
        public_key: world.hpke.public_key(),
        key_id: "lfl-2026".into(),
    }
}

fn send(world: &World, req: &Signed, at: DateTime<Utc>) -> Answer {
    let headers: Vec<(&str, &str)> = req.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let incoming = Incoming {
        method: "POST",
        target_uri: &req.uri,
        headers: &headers,
        body: &req.body,
    };
    match req.endpoint() {
        "handovers" => world.intake.deliver(&incoming, at),
        "withdrawals" => world.intake.withdraw(&incoming, at),
        _ => world.intake.enrol(&incoming, at),
    }
}

fn enrolled(world: &World) -> Device {
    let mut device = Device::new(BASE);
    let code = format!("CODE-{}", device.id());
    let storage = Storage::open(&world.db).unwrap();
    storage
        .add_enrolment_code(code_hash(&code), now().timestamp() + 3600)
        .unwrap();
    let body = EnrolmentRequest::new(&code.to_lowercase(), &device.key.public_key()).to_json();
    let answer = send(world, &device.request("/v1/devices", body, now()), now());
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    device
}

fn code_of(answer: &Answer) -> Option<&'static str> {
    answer.problem_type().map(ProblemType::code)
}

#[test]
fn a_delivery_is_stored_once_and_a_repeat_gets_the_same_receipt_bytes() {
    let w = world();
    let mut device = enrolled(&w);
    let envelope = device.envelope(&seal_to(&w), HANDOVER, PLAINTEXT);
    let first = send(&w, &device.delivery(&envelope, now()), now());
    assert_eq!(
        first.status,
        201,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let sent = ReceiptFacts {
        handover_id: HANDOVER.into(),
        sealed_sha256: sha256(&envelope.sealed_bytes().unwrap()),
        received_at: now(),
        hpke_key_id: "lfl-2026".into(),
        receipt_key_id: "lfl-receipts".into(),
        device_id: device.id(),
        audit_head: device.head(),
    };
    Receipt::verify(
        &first.body,
        "lfl-receipts",
        &w.receipt_key.public_key(),
        &sent,
    )
    .unwrap();

    let later = now() + chrono::Duration::seconds(40);
    let repeat = send(&w, &device.delivery(&envelope, later), later);
    assert_eq!((repeat.status, &repeat.body), (200, &first.body));
    // Other bytes under the same id.
    let other = device.envelope(&seal_to(&w), HANDOVER, PLAINTEXT);
    assert_eq!(
        code_of(&send(&w, &device.delivery(&other, later), later)),
        Some("conflicting_resend")
    );
    assert_eq!(Storage::open(&w.db).unwrap().handover_count().unwrap(), 1);
}

#[test]
fn every_refusal_stores_nothing_and_names_its_problem() {
    let w = world();
    let mut device = enrolled(&w);
    let envelope = device.envelope(&seal_to(&w), HANDOVER, PLAINTEXT);
    let stranger_key = SigningKey::generate().unwrap();
    let mut stranger = Device {
        key: stranger_key,
        base: BASE.into(),
        seq: 0,
    };
    let hour_ago = now() - chrono::Duration::hours(1);
    let mut other_program = envelope.clone();
    other_program.program_id = "kalmar".into();
    let mut other_key = envelope.clone();
    other_key.clinic_key_id = "lfl-2027".into();
    let mut relabelled = envelope.clone();
    relabelled.handover_id = "1b6c1f5e-3d2a-4c8e-9f10-2a3b4c5d6e7f".into();

    let cases: Vec<(&str, Signed)> = vec![
        ("unknown_device", stranger.delivery(&envelope, now())),
        ("signature_stale", device.delivery(&envelope, hour_ago)),
        (
            "unsupported_media_type",
            device
                .delivery(&envelope, now())
                .set("content-type", "text/plain"),
        ),
        (
            "digest_mismatch",
            Signed {
                body: b"{}".to_vec(),
                ..device.delivery(&envelope, now())
            },
        ),
        (
            "bad_signature",
            device.delivery(&envelope, now()).set(
                "content-digest",
                &lotsa_core::protocol::signature::content_digest(b"{}"),
            ),
        ),
        ("malformed_body", {
            let r = device.request("/v1/handovers", b"{\"schema\":1}".to_vec(), now());
            r.set("idempotency-key", &format!("\"{HANDOVER}\""))
        }),
        (
            "idempotency_key_mismatch",
            device
                .delivery(&envelope, now())
                .set("idempotency-key", "\"x\""),
        ),
        ("unknown_program", device.delivery(&other_program, now())),
        ("unknown_clinic_key", device.delivery(&other_key, now())),
        ("does_not_open", device.delivery(&relabelled, now())),
        (
            "payload_invalid",
            device.delivery(&device.envelope(&seal_to(&w), HANDOVER, "{}"), now()),
        ),
    ];
    for (expected, req) in cases {
        let answer = send(&w, &req, now());
        assert_eq!(
            code_of(&answer),
            Some(expected),
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(
            answer.status,
            ProblemType::ALL
                .iter()
                .find(|t| t.code() == expected)
                .unwrap()
                .status()
        );
    }
    assert_eq!(Storage::open(&w.db).unwrap().handover_count().unwrap(), 0);
    // The next good request is served.
    assert_eq!(
        send(&w, &device.delivery(&envelope, now()), now()).status,
        201
    );
}

#[test]
fn a_replayed_request_stores_nothing_and_a_revoked_device_is_refused_at_once() {
    let w = world();
    let mut device = enrolled(&w);
    let envelope = device.envelope(&seal_to(&w), HANDOVER, PLAINTEXT);
    let req = device.delivery(&envelope, now());
    assert_eq!(send(&w, &req, now()).status, 201);
    assert_eq!(code_of(&send(&w, &req, now())), Some("signature_replayed"));

    assert!(Storage::open(&w.db)
        .unwrap()
        .revoke(&device.id(), now().timestamp())
        .unwrap());
    assert_eq!(
        code_of(&send(&w, &device.delivery(&envelope, now()), now())),
        Some("device_revoked")
    );
}

#[test]
fn a_withdrawal_erases_the_referral_and_a_withdrawal_first_makes_it_a_410() {
    let w = world();
    let mut device = enrolled(&w);
    let envelope = device.envelope(&seal_to(&w), HANDOVER, PLAINTEXT);
    let withdrawal = |id: &str| {
        WithdrawalMessage {
            schema: "lotsa.withdrawal/1".into(),
            withdrawal_id: id.into(),
            handover_id: HANDOVER.into(),
            consent_id: None,
            program_id: "lots-for-livet".into(),
            withdrawn_at: chrono::DateTime::parse_from_rfc3339("2026-12-01T10:31:00+01:00")
                .unwrap(),
            recorded_by_role: None,
        }
        .to_json()
    };
    // Withdrawn before it arrives: remembered, and the referral is refused later.
    let first = send(
        &w,
        &device.request(
            "/v1/withdrawals",
            withdrawal("6f1d2c3b-4a59-4e8d-8c7b-1a2b3c4d5e6f"),
            now(),
        ),
        now(),
    );
    assert_eq!(
        first.status,
        201,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert!(String::from_utf8_lossy(&first.body).contains("\"outcome\":\"not_received\""));
    assert_eq!(
        code_of(&send(&w, &device.delivery(&envelope, now()), now())),
        Some("withdrawn")
    );
    // The same withdrawal again: the same confirmation.
    let again = send(
        &w,
        &device.request(
            "/v1/withdrawals",
            withdrawal("6f1d2c3b-4a59-4e8d-8c7b-1a2b3c4d5e6f"),
            now(),
        ),
        now(),
    );
    assert_eq!((again.status, &again.body), (200, &first.body));

    // Delivered, then withdrawn: erased.
    let w2 = world();
    let mut device2 = enrolled(&w2);
    let envelope2 = device2.envelope(&seal_to(&w2), HANDOVER, PLAINTEXT);
    assert_eq!(
        send(&w2, &device2.delivery(&envelope2, now()), now()).status,
        201
    );
    let erased = send(
        &w2,
        &device2.request(
            "/v1/withdrawals",
            withdrawal("7f1d2c3b-4a59-4e8d-8c7b-1a2b3c4d5e6f"),
            now(),
        ),
        now(),
    );
    assert!(String::from_utf8_lossy(&erased.body).contains("\"outcome\":\"erased\""));
    assert_eq!(Storage::open(&w2.db).unwrap().handover_count().unwrap(), 0);
    // Another device cannot withdraw it.
    let mut other = enrolled(&w2);
    assert_eq!(
        code_of(&send(
            &w2,
            &other.request(
                "/v1/withdrawals",
                withdrawal("8f1d2c3b-4a59-4e8d-8c7b-1a2b3c4d5e6f"),
                now()
            ),
            now()
        )),
        Some("handover_of_another_device")
    );
}

#[test]
fn an_enrolment_code_is_used_once_by_one_key() {
    let w = world();
    let storage = Storage::open(&w.db).unwrap();
    storage
        .add_enrolment_code(code_hash("K7QM-4TX2-9HRC"), now().timestamp() + 60)
        .unwrap();
    let mut device = Device::new(BASE);
    let body = EnrolmentRequest::new("k7qm 4tx2 9hrc", &device.key.public_key()).to_json();
    assert_eq!(
        send(
            &w,
            &device.request("/v1/devices", body.clone(), now()),
            now()
        )
        .status,
        201
    );
    // The same key and code again (the answer was lost): the same enrolment.
    assert_eq!(
        send(&w, &device.request("/v1/devices", body, now()), now()).status,
        200
    );
    // Another key with the used code, and any key after expiry.
    let mut other = Device::new(BASE);
    let body = EnrolmentRequest::new("K7QM-4TX2-9HRC", &other.key.public_key()).to_json();
    assert_eq!(
        code_of(&send(&w, &other.request("/v1/devices", body, now()), now())),
        Some("enrolment_code_refused")
    );
    storage
        .add_enrolment_code(code_hash("LATE"), now().timestamp() - 1)
        .unwrap();
    let body = EnrolmentRequest::new("LATE", &other.key.public_key()).to_json();
    assert_eq!(
        code_of(&send(&w, &other.request("/v1/devices", body, now()), now())),
        Some("enrolment_code_refused")
    );
    // A request signed by another key than the one in the body.
    let mut impostor = Device::new(BASE);
    storage
        .add_enrolment_code(code_hash("FRESH"), now().timestamp() + 60)
        .unwrap();
    let body = EnrolmentRequest::new("FRESH", &other.key.public_key()).to_json();
    assert_eq!(
        code_of(&send(
            &w,
            &impostor.request("/v1/devices", body, now()),
            now()
        )),
        Some("bad_signature")
    );
}

#[test]
fn stored_referrals_survive_reopening_the_database() {
    let w = world();
    let mut device = enrolled(&w);
    let envelope = device.envelope(&seal_to(&w), HANDOVER, PLAINTEXT);
    let first = send(&w, &device.delivery(&envelope, now()), now());
    assert_eq!(first.status, 201);
    let reopened = World {
        intake: Intake::new(
            Storage::open(&w.db).unwrap(),
            keys(&w.hpke, &w.receipt_key),
            vec!["lots-for-livet".into()],
            now(),
        )
        .unwrap(),
        _dir: TempDir::new(),
        db: w.db.clone(),
        hpke: w.hpke.clone(),
        receipt_key: SigningKey::from_pkcs8(w.receipt_key.pkcs8()).unwrap(),
    };
    let later = now() + chrono::Duration::seconds(5);
    let repeat = send(&reopened, &device.delivery(&envelope, later), later);
    assert_eq!((repeat.status, repeat.body), (200, first.body));
}
