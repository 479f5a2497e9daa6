//! The intake protocol's JSON Schemas (`schemas/envelope.schema.json` and the others beside it)
//! against the core: every body `lotsa_core::protocol` writes validates against its schema, and
//! what the core refuses on reading, the schema refuses too.

use chrono::{DateTime, TimeZone, Utc};
use jsonschema::{Draft as SchemaDraft, Validator};
use lotsa_core::consent::{Role, Withdrawal};
use lotsa_core::crypto::seal::{seal_to_clinic, ClinicKeyPair, SealBinding};
use lotsa_core::crypto::{sha256, SigningKey};
use lotsa_core::protocol::receipt::WithdrawalOutcome;
use lotsa_core::protocol::{
    AuditHead, ConfirmationFacts, DeviceStatus, EnrolmentAnswer, EnrolmentRequest, Envelope,
    Problem, ProblemType, QueueCounts, ReceiptFacts, WithdrawalMessage,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

// ---------------------------------------------------------------------------------------------
// Helpers

fn read_schema(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Compiles a schema as draft 2020-12 with `format` asserted, after checking it against the
/// 2020-12 meta-schema.
fn schema(name: &str) -> Validator {
    let schema = read_schema(name);
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{name} is written in draft 2020-12"
    );
    if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
        panic!("{name} is not a valid 2020-12 schema: {e}");
    }
    jsonschema::options()
        .with_draft(SchemaDraft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{name} does not compile: {e}"))
}

fn assert_valid(v: &Validator, bytes: &[u8], what: &str) {
    let instance: Value = serde_json::from_slice(bytes).expect("the core writes JSON");
    let errs: Vec<String> = v
        .iter_errors(&instance)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errs.is_empty(),
        "{what} must validate, but: {errs:#?}\n{instance}"
    );
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

const HANDOVER_ID: &str = "0b6c1f5e-3d2a-4c8e-9f10-2a3b4c5d6e7f";
const WITHDRAWAL_ID: &str = "6f1d2c3b-4a59-4e8d-8c7b-1a2b3c4d5e6f";

fn binding() -> SealBinding<'static> {
    SealBinding {
        handover_id: HANDOVER_ID,
        program_id: "lots-for-livet",
        clinic_key_id: "lfl-2026",
        schema_version: 1,
    }
}

/// An envelope as a device sends it: a real seal to a fresh clinic key.
fn envelope() -> Envelope {
    let clinic = ClinicKeyPair::generate().unwrap();
    let sealed = seal_to_clinic(
        &clinic.public_key(),
        &binding(),
        br#"{"schema":"lotsa.handover/1"}"#,
    )
    .unwrap();
    Envelope::new(&binding(), &sealed.to_bytes())
}

fn device_key() -> SigningKey {
    SigningKey::from_seed(&sha256(b"protocol schema test: device key"))
}

fn receipt_key() -> SigningKey {
    SigningKey::from_seed(&sha256(b"protocol schema test: receipt key"))
}

// ---------------------------------------------------------------------------------------------
// What the core writes validates

#[test]
fn the_core_envelope_validates_against_the_envelope_schema() {
    assert_valid(
        &schema("envelope.schema.json"),
        &envelope().to_json(),
        "Envelope::new(..).to_json()",
    );
}

#[test]
fn the_core_receipt_validates_against_the_receipt_schema() {
    let v = schema("receipt.schema.json");
    for head in [
        AuditHead {
            seq: 0,
            sha256: [0; 32],
        },
        AuditHead {
            seq: 17,
            sha256: sha256(b"entry 17"),
        },
        AuditHead {
            seq: u64::MAX,
            sha256: [0xff; 32],
        },
    ] {
        let facts = ReceiptFacts {
            handover_id: HANDOVER_ID.into(),
            sealed_sha256: sha256(b"sealed"),
            received_at: at(2026, 12, 1, 9, 31, 2),
            hpke_key_id: "lfl-2026".into(),
            receipt_key_id: "lfl-receipts".into(),
            device_id: lotsa_core::protocol::device_id(&device_key().public_key()),
            audit_head: head,
        };
        let what = format!(
            "ReceiptFacts::sign(..).to_json() with audit seq {}",
            head.seq
        );
        assert_valid(&v, &facts.sign(&receipt_key()).to_json(), &what);
    }
}

#[test]
fn the_core_withdrawal_confirmation_validates_for_either_outcome() {
    let v = schema("withdrawal-confirmation.schema.json");
    for outcome in [WithdrawalOutcome::Erased, WithdrawalOutcome::NotReceived] {
        let facts = ConfirmationFacts {
            withdrawal_id: WITHDRAWAL_ID.into(),
            handover_id: HANDOVER_ID.into(),
            outcome,
            confirmed_at: at(2026, 12, 1, 13, 6, 1),
            receipt_key_id: "lfl-receipts".into(),
            device_id: lotsa_core::protocol::device_id(&device_key().public_key()),
        };
        let what = format!(
            "ConfirmationFacts::sign(..).to_json() ({})",
            outcome.as_str()
        );
        assert_valid(&v, &facts.sign(&receipt_key()).to_json(), &what);
    }
}

#[test]
fn the_core_withdrawal_message_validates_with_and_without_consent_and_role() {
    let v = schema("withdrawal.schema.json");
    let withdrawn_at = DateTime::parse_from_rfc3339("2026-12-01T14:05:00+01:00").unwrap();
    for (consent_id, role) in [
        (
            Some("5e2480f3-9c4a-4e56-984a-7d65cbce480f".to_string()),
            Some(Role::Police),
        ),
        (
            Some("5e2480f3-9c4a-4e56-984a-7d65cbce480f".to_string()),
            Some(Role::Lots),
        ),
        (None, None),
    ] {
        let withdrawal = Withdrawal {
            handover_id: HANDOVER_ID.into(),
            consent_id,
            program_id: "lots-for-livet".into(),
            withdrawn_at,
            recorded_by_role: role,
        };
        let message = WithdrawalMessage::new(WITHDRAWAL_ID, &withdrawal);
        assert_valid(
            &v,
            &message.to_json(),
            &format!("WithdrawalMessage::new({withdrawal:?})"),
        );
    }
}

#[test]
fn the_core_enrolment_request_and_answer_validate() {
    let key = device_key().public_key();
    assert_valid(
        &schema("enrolment-request.schema.json"),
        &EnrolmentRequest::new("K7QM-4TX2-9HRC", &key).to_json(),
        "EnrolmentRequest::new(..).to_json()",
    );
    assert_valid(
        &schema("enrolment.schema.json"),
        &EnrolmentAnswer::new(&key, at(2026, 12, 1, 8, 55, 0)).to_json(),
        "EnrolmentAnswer::new(..).to_json()",
    );
}

#[test]
fn the_core_device_status_validates() {
    let v = schema("device-status.schema.json");
    for oldest in [None, Some(3600)] {
        let status = DeviceStatus {
            schema: "lotsa.device-status/1".into(),
            reported_at: "2026-12-01T09:31:02Z".into(),
            counts: QueueCounts {
                pending: 2,
                sending: 0,
                failed: 1,
                damaged: 0,
            },
            oldest_pending_secs: oldest,
        };
        assert_valid(&v, &status.to_json(), &format!("{status:?}"));
        assert_eq!(DeviceStatus::from_json(&status.to_json()).unwrap(), status);
    }
}

#[test]
fn every_problem_type_validates_against_the_problem_schema() {
    let v = schema("problem.schema.json");
    for &t in ProblemType::ALL {
        for detail in [None, Some("which field, which limit".to_string())] {
            let what = format!("Problem::new({t:?}, {detail:?})");
            assert_valid(&v, &Problem::new(t, detail).to_json(), &what);
        }
    }
}

#[test]
fn the_problem_schema_names_exactly_the_core_problem_types_with_their_statuses() {
    let schema = read_schema("problem.schema.json");
    let codes: Vec<&str> = schema["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let core: Vec<&str> = ProblemType::ALL.iter().map(|t| t.code()).collect();
    assert_eq!(
        codes, core,
        "the code enum is ProblemType::ALL, in its order"
    );

    let table: BTreeMap<&str, (&str, u64)> = schema["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let p = &row["properties"];
            (
                p["code"]["const"].as_str().unwrap(),
                (
                    p["type"]["const"].as_str().unwrap(),
                    p["status"]["const"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(table.len(), ProblemType::ALL.len());
    for &t in ProblemType::ALL {
        let uri = t.uri();
        assert_eq!(
            table.get(t.code()),
            Some(&(uri.as_str(), u64::from(t.status()))),
            "{t:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The schema is as strict as the core

type Spoil = fn(&mut Value);

/// Each spoiled envelope must be refused by `Envelope::from_json` and by the schema alike.
#[test]
fn an_envelope_the_core_refuses_the_schema_refuses_too() {
    let v = schema("envelope.schema.json");
    let good: Value = serde_json::from_slice(&envelope().to_json()).unwrap();
    assert!(v.is_valid(&good));
    assert!(Envelope::from_json(good.to_string().as_bytes()).is_ok());

    let cases: [(&str, Spoil); 12] = [
        ("an extra field", |e| e["extra"] = json!(1)),
        ("a missing field", |e| {
            e.as_object_mut().unwrap().remove("clinic_key_id");
        }),
        ("another schema", |e| {
            e["schema"] = json!("lotsa.envelope/2")
        }),
        ("an uppercase handover id", |e| {
            e["handover_id"] = json!(HANDOVER_ID.to_uppercase())
        }),
        ("a handover id without hyphens", |e| {
            e["handover_id"] = json!(HANDOVER_ID.replace('-', ""))
        }),
        ("a handover id with a trailing newline", |e| {
            e["handover_id"] = json!(format!("{HANDOVER_ID}\n"))
        }),
        ("a program id with spaces", |e| {
            e["program_id"] = json!("lots för livet")
        }),
        ("a key id with a trailing newline", |e| {
            e["clinic_key_id"] = json!("lfl-2026\n")
        }),
        ("an empty key id", |e| e["clinic_key_id"] = json!("")),
        ("payload schema version 0", |e| {
            e["payload_schema_version"] = json!(0)
        }),
        ("47 sealed bytes", |e| {
            e["sealed"] = json!(lotsa_core::crypto::b64(&[1u8; 47]))
        }),
        ("sealed bytes that are not base64", |e| {
            e["sealed"] = json!("not base64!")
        }),
    ];
    for (what, spoil) in cases {
        let mut e = good.clone();
        spoil(&mut e);
        assert!(
            Envelope::from_json(e.to_string().as_bytes()).is_err(),
            "the core must refuse an envelope with {what}"
        );
        assert!(
            !v.is_valid(&e),
            "the schema must refuse an envelope with {what}"
        );
    }
}

/// The same for a receipt: `Receipt::from_json` and the schema refuse the same spoiled bodies.
#[test]
fn a_receipt_the_core_refuses_the_schema_refuses_too() {
    use lotsa_core::protocol::Receipt;
    let v = schema("receipt.schema.json");
    let facts = ReceiptFacts {
        handover_id: HANDOVER_ID.into(),
        sealed_sha256: sha256(b"sealed"),
        received_at: at(2026, 12, 1, 9, 31, 2),
        hpke_key_id: "lfl-2026".into(),
        receipt_key_id: "lfl-receipts".into(),
        device_id: "af4fec1fd70d4f87".into(),
        audit_head: AuditHead {
            seq: 17,
            sha256: sha256(b"entry 17"),
        },
    };
    let good: Value = serde_json::from_slice(&facts.sign(&receipt_key()).to_json()).unwrap();
    assert!(v.is_valid(&good));

    let cases: [(&str, Spoil); 7] = [
        ("an extra field", |r| r["extra"] = json!(true)),
        ("an extra audit head member", |r| {
            r["audit_head"]["extra"] = json!(1)
        }),
        ("an uppercase sealed digest", |r| {
            let upper = r["sealed_sha256"].as_str().unwrap().to_uppercase();
            r["sealed_sha256"] = json!(upper)
        }),
        ("an uppercase audit hash", |r| {
            let upper = r["audit_head"]["sha256"].as_str().unwrap().to_uppercase();
            r["audit_head"]["sha256"] = json!(upper)
        }),
        ("received_at with an offset", |r| {
            r["received_at"] = json!("2026-12-01T10:31:02+01:00")
        }),
        ("received_at with fractions", |r| {
            r["received_at"] = json!("2026-12-01T09:31:02.000Z")
        }),
        ("received_at in month 13", |r| {
            r["received_at"] = json!("2026-13-01T09:31:02Z")
        }),
    ];
    for (what, spoil) in cases {
        let mut r = good.clone();
        spoil(&mut r);
        assert!(
            Receipt::from_json(r.to_string().as_bytes()).is_err(),
            "the core must refuse a receipt with {what}"
        );
        assert!(
            !v.is_valid(&r),
            "the schema must refuse a receipt with {what}"
        );
    }
}
