//! The protocol's published test vectors (`docs/protocol-vectors.json`, printed in
//! `docs/PROTOCOL.md`): fixed keys and inputs, and every byte the protocol derives from them.
//! This test recomputes each value with the code the device and the clinic run and compares it
//! with the file; the Python interop test checks the same file with Python's own libraries.
//!
//! After a deliberate change to the protocol, `LOTSA_WRITE_VECTORS=1 cargo test -p lotsa-core
//! --lib protocol::vectors` rewrites the file (and the test still fails once, so that the change
//! is seen); then update `docs/PROTOCOL.md` until the second test passes.

use super::receipt::{ConfirmationFacts, ReceiptFacts, WithdrawalOutcome};
use super::signature::sign_request;
use super::wire::{AuditHead, Envelope, WithdrawalMessage};
use super::{device_id, HANDOVERS_PATH, WITHDRAWALS_PATH};
use crate::consent::{Role, Withdrawal};
use crate::crypto::seal::{open_from_device, seal_with_fixed_ephemeral, ClinicKeyPair, Sealed};
use crate::crypto::{b64, hex, sha256, SigningKey};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol-vectors.json");
const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md");

/// A fixed 32-byte value from a label, so that the inputs say what they are.
fn fixed(label: &str) -> [u8; 32] {
    sha256(label.as_bytes())
}

const HANDOVER_ID: &str = "0b6c1f5e-3d2a-4c8e-9f10-2a3b4c5d6e7f";
const WITHDRAWAL_ID: &str = "6f1d2c3b-4a59-4e8d-8c7b-1a2b3c4d5e6f";
const ORIGIN: &str = "https://clinic.example:8443";

/// A handover as a device builds it (fictitious person), compact as it is sealed.
pub(crate) const PLAINTEXT: &str = concat!(
    r#"{"schema":"lotsa.handover/1","handover_id":"0b6c1f5e-3d2a-4c8e-9f10-2a3b4c5d6e7f","#,
    r#""program_id":"lots-for-livet","created_at":"2026-12-01T10:30:00+01:00","#,
    r#""contact":{"name":"Alex","phone":"+46701234567","language":"sv","best_time":"efter kl. 14"},"#,
    r#""person":{"kommunkod":"0180"},"#,
    r#""eligibility":{"outcome":"eligible","provisional":true,"reasons":["age_met","resident","residency_stated"],"#,
    r#""basis":{"age_source":"personnummer","age_min":38,"age_max":38,"minimum_age":18,"kommunkod":"0180","#,
    r#""residency_provenance":"stated","decided_on":"2026-12-01"}},"#,
    r#""consent":{"consent_id":"5e2480f3-9c4a-4e56-984a-7d65cbce480f","program_id":"lots-for-livet","#,
    r#""subject_ref":"0b6c1f5e-3d2a-4c8e-9f10-2a3b4c5d6e7f","recipient":"Lots för livet, mottagningen (Stockholms stad)","#,
    r#""data_items":["name","phone","language","best_time","kommunkod"],"purpose":"first_contact","#,
    r#""given_at":"2026-12-01T10:30:00+01:00","#,
    r#""script":{"id":"lfl-samtycke","version":1,"sha256":"e54a735354003e5f29c7238d2c67f2501cd2b54b3879198344bd9064c7bc2008","language":"sv"},"#,
    r#""method":{"kind":"verbal","witness":"P-4711"},"#,
    r#""recorded_by":{"role":"police","officer_id":"P-1234","unit":"City polisområde"},"#,
    r#""told_no_effect_on_police_matter":true,"told_can_withdraw":true,"capacity":"adequate"},"#,
    r#""callback_promise":{"sv":"En lots ringer upp inom två vardagar.","en":"A guide (lots) phones within two working days."}}"#
);

fn compute() -> Value {
    let device_seed = fixed("lotsa test vector: device key");
    let device = SigningKey::from_seed(&device_seed);
    let device_id = device_id(&device.public_key());
    let receipt_seed = fixed("lotsa test vector: clinic receipt key");
    let receipt_key = SigningKey::from_seed(&receipt_seed);
    let hpke_ikm = fixed("lotsa test vector: clinic HPKE key");
    let clinic = ClinicKeyPair::derive(&hpke_ikm);
    let ikm_e = fixed("lotsa test vector: ephemeral key");

    // The seal.
    let binding = crate::crypto::seal::SealBinding {
        handover_id: HANDOVER_ID,
        program_id: "lots-for-livet",
        clinic_key_id: "lfl-2026",
        schema_version: 1,
    };
    let sealed =
        seal_with_fixed_ephemeral(&clinic.public_key(), &binding, PLAINTEXT.as_bytes(), &ikm_e)
            .unwrap();
    let sealed_bytes = sealed.to_bytes();
    let opened = open_from_device(
        &clinic,
        &binding,
        &Sealed::from_bytes(&sealed_bytes).unwrap(),
    );
    assert_eq!(opened.unwrap(), PLAINTEXT.as_bytes(), "the vector opens");
    let envelope = String::from_utf8(Envelope::new(&binding, &sealed_bytes).to_json()).unwrap();

    // The delivery request.
    let head = AuditHead {
        seq: 17,
        sha256: fixed("lotsa test vector: audit entry 17"),
    };
    let created = Utc.with_ymd_and_hms(2026, 12, 1, 9, 31, 0).unwrap();
    let nonce = "dGVzdC12ZWN0b3Itbm9uY2U";
    let target = format!("{ORIGIN}{HANDOVERS_PATH}");
    let signed = sign_request(
        &device,
        "POST",
        &target,
        envelope.as_bytes(),
        Some(&head),
        created.timestamp(),
        nonce,
    )
    .unwrap();
    let header = |name: &str| {
        signed
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };

    // The receipt.
    let facts = ReceiptFacts {
        handover_id: HANDOVER_ID.into(),
        sealed_sha256: sha256(&sealed_bytes),
        received_at: Utc.with_ymd_and_hms(2026, 12, 1, 9, 31, 2).unwrap(),
        hpke_key_id: "lfl-2026".into(),
        receipt_key_id: "lfl-receipts".into(),
        device_id: device_id.clone(),
        audit_head: head,
    };
    let receipt = facts.sign(&receipt_key);

    // The withdrawal and its confirmation.
    let withdrawal = Withdrawal {
        handover_id: HANDOVER_ID.into(),
        consent_id: Some("5e2480f3-9c4a-4e56-984a-7d65cbce480f".into()),
        program_id: "lots-for-livet".into(),
        withdrawn_at: chrono::DateTime::parse_from_rfc3339("2026-12-01T14:05:00+01:00").unwrap(),
        recorded_by_role: Some(Role::Lots),
    };
    let message =
        String::from_utf8(WithdrawalMessage::new(WITHDRAWAL_ID, &withdrawal).to_json()).unwrap();
    let withdrawal_head = AuditHead {
        seq: 23,
        sha256: fixed("lotsa test vector: audit entry 23"),
    };
    let withdrawal_created = Utc.with_ymd_and_hms(2026, 12, 1, 13, 6, 0).unwrap();
    let withdrawal_nonce = "dGVzdC12ZWN0b3Itbm9uY2UtMg";
    let withdrawal_signed = sign_request(
        &device,
        "POST",
        &format!("{ORIGIN}{WITHDRAWALS_PATH}"),
        message.as_bytes(),
        Some(&withdrawal_head),
        withdrawal_created.timestamp(),
        withdrawal_nonce,
    )
    .unwrap();
    let withdrawal_header = |name: &str| {
        withdrawal_signed
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let confirmation = ConfirmationFacts {
        withdrawal_id: WITHDRAWAL_ID.into(),
        handover_id: HANDOVER_ID.into(),
        outcome: WithdrawalOutcome::Erased,
        confirmed_at: Utc.with_ymd_and_hms(2026, 12, 1, 13, 6, 1).unwrap(),
        receipt_key_id: "lfl-receipts".into(),
        device_id: device_id.clone(),
    };

    json!({
        "about": "Lotsa intake protocol test vectors (docs/PROTOCOL.md). The request_signature body is hpke_seal.envelope. Every key here is a published test key: never use one for real.",
        "keys": {
            "device_seed_hex": hex(&device_seed),
            "device_public_key_b64": device.public_key_b64(),
            "device_id": device_id,
            "clinic_hpke_ikm_hex": hex(&hpke_ikm),
            "clinic_hpke_secret_key_hex": hex(&clinic.secret_bytes()),
            "clinic_hpke_public_key_b64": clinic.public_key_b64(),
            "clinic_hpke_key_id": "lfl-2026",
            "receipt_seed_hex": hex(&receipt_seed),
            "receipt_public_key_b64": receipt_key.public_key_b64(),
            "receipt_key_id": "lfl-receipts",
        },
        "hpke_seal": {
            "handover_id": HANDOVER_ID,
            "program_id": "lots-for-livet",
            "clinic_key_id": "lfl-2026",
            "payload_schema_version": 1,
            "info_hex": hex(&binding.info()),
            "aad_hex": hex(&binding.to_bytes()),
            "ikm_e_hex": hex(&ikm_e),
            "plaintext": PLAINTEXT,
            "enc_hex": hex(&sealed.enc),
            "ciphertext_b64": b64(&sealed.ciphertext),
            "sealed_sha256_hex": hex(&sha256(&sealed_bytes)),
            "envelope": envelope,
        },
        "request_signature": {
            "method": "POST",
            "target_uri": target,
            "audit_head": {"seq": head.seq, "sha256_hex": hex(&head.sha256)},
            "created": created.timestamp(),
            "nonce": nonce,
            "content_digest": header("content-digest"),
            "lotsa_audit_head": header("lotsa-audit-head"),
            "signature_base": signed.base,
            "signature_input": header("signature-input"),
            "signature": header("signature"),
        },
        "receipt": {
            "signing_bytes_hex": hex(&facts.signing_bytes()),
            "json": String::from_utf8(receipt.to_json()).unwrap(),
        },
        "withdrawal": {
            "body": message,
            "target_uri": format!("{ORIGIN}{WITHDRAWALS_PATH}"),
            "audit_head": {"seq": withdrawal_head.seq, "sha256_hex": hex(&withdrawal_head.sha256)},
            "created": withdrawal_created.timestamp(),
            "nonce": withdrawal_nonce,
            "content_digest": withdrawal_header("content-digest"),
            "lotsa_audit_head": withdrawal_header("lotsa-audit-head"),
            "signature_base": withdrawal_signed.base,
            "signature_input": withdrawal_header("signature-input"),
            "signature": withdrawal_header("signature"),
        },
        "withdrawal_confirmation": {
            "signing_bytes_hex": hex(&confirmation.signing_bytes()),
            "json": String::from_utf8(confirmation.sign(&receipt_key).to_json()).unwrap(),
        },
    })
}

#[test]
fn the_published_vectors_are_what_the_code_computes() {
    let computed = compute();
    let published: Option<Value> = std::fs::read_to_string(FILE)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if published.as_ref() != Some(&computed) {
        if std::env::var_os("LOTSA_WRITE_VECTORS").is_some() {
            let text = serde_json::to_string_pretty(&computed).unwrap() + "\n";
            std::fs::write(FILE, text).unwrap();
            panic!("{FILE} rewritten: check the diff and update docs/PROTOCOL.md");
        }
        panic!(
            "{FILE} differs from what the code computes: a protocol change? \
             (LOTSA_WRITE_VECTORS=1 rewrites it)"
        );
    }
}

#[test]
fn the_vector_plaintext_is_a_handover_the_core_would_build() {
    let parsed: crate::referral::HandoverPayload = serde_json::from_str(PLAINTEXT).unwrap();
    assert_eq!(String::from_utf8(parsed.to_bytes()).unwrap(), PLAINTEXT);
}

#[test]
fn the_protocol_document_prints_every_vector_byte_for_byte() {
    let doc = std::fs::read_to_string(DOC).expect("docs/PROTOCOL.md exists");
    fn leaves(v: &Value, path: String, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => m
                .iter()
                .for_each(|(k, v)| leaves(v, format!("{path}.{k}"), out)),
            Value::String(s) => out.push((path, s.clone())),
            Value::Number(n) => out.push((path, n.to_string())),
            _ => {}
        }
    }
    let mut all = Vec::new();
    leaves(&compute(), String::new(), &mut all);
    let missing: Vec<&str> = all
        .iter()
        .filter(|(path, value)| path != ".about" && !doc.contains(value.as_str()))
        .map(|(path, _)| path.as_str())
        .collect();
    assert!(missing.is_empty(), "docs/PROTOCOL.md lacks {missing:?}");
}

#[test]
fn the_protocol_document_lists_every_problem_type_with_its_status() {
    let doc = std::fs::read_to_string(DOC).expect("docs/PROTOCOL.md exists");
    for &t in super::ProblemType::ALL {
        let row = format!("| {} | `{}` | {} |", t.status(), t.code(), t.title());
        assert!(doc.contains(&row), "docs/PROTOCOL.md lacks the row {row}");
    }
}
