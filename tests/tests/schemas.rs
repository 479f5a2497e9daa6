//! The contracts in `schemas/` against the code: what the core produces validates against the
//! JSON Schemas, what the schemas refuse the core refuses too, and the handover payload carries
//! only what each program's configuration allows.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use jsonschema::{Draft as SchemaDraft, Validator};
use lotsa_core::consent::{Capacity, ConsentForm, ConsentRecord, Method, Recorder, Role};
use lotsa_core::crypto::SigningKey;
use lotsa_core::eligibility::{self, Outcome, Provenance};
use lotsa_core::identity::compose;
use lotsa_core::program::{
    self, Bundle, BundleError, Field, Need, Program, ProgramSet, EXAMPLE_PROGRAMS_JSON,
};
use lotsa_core::referral::{
    build_handover, ContactDetails, Draft, HandoverPayload, ResidenceInput,
};
use serde_json::{json, Value};
use std::path::PathBuf;

// ---------------------------------------------------------------------------------------------
// Helpers

fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

fn read_json(name: &str) -> Value {
    let path = schemas_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Compiles a schema as draft 2020-12, with `format` asserted (not only annotated), after checking
/// the schema itself against the 2020-12 meta-schema.
fn compile(schema: &Value) -> Validator {
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "the contracts are written in draft 2020-12"
    );
    if let Err(e) = jsonschema::draft202012::meta::validate(schema) {
        panic!("the schema is not a valid 2020-12 schema: {e}");
    }
    jsonschema::options()
        .with_draft(SchemaDraft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("the schema does not compile: {e}"))
}

fn bundle_schema() -> Validator {
    compile(&read_json("program-bundle.schema.json"))
}

/// A schema that is `#/$defs/signedBundle` of the program-bundle schema (with its `$defs`).
fn signed_bundle_schema() -> Validator {
    let full = read_json("program-bundle.schema.json");
    assert!(full["$defs"]["signedBundle"].is_object());
    compile(&json!({
        "$schema": full["$schema"],
        "$defs": full["$defs"],
        "$ref": "#/$defs/signedBundle",
    }))
}

fn handover_schema() -> Validator {
    compile(&read_json("handover.schema.json"))
}

/// The schema's complaints, for assertion messages.
fn errors(v: &Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

fn assert_valid(v: &Validator, instance: &Value, what: &str) {
    let errs = errors(v, instance);
    assert!(errs.is_empty(), "{what} must validate, but: {errs:#?}");
}

fn example_value() -> Value {
    serde_json::from_str(EXAMPLE_PROGRAMS_JSON).unwrap()
}

/// The example programs as a version 1 set (before the clinic's terms): version 1 still loads.
fn example_v1_value() -> Value {
    read_json("examples/programs.v1.example.json")
}

/// A fixed instant inside the example set's validity (2026-11-01 to 2027-12-31).
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 11, 0, 0).unwrap()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

fn stockholm_now() -> DateTime<FixedOffset> {
    now().with_timezone(&FixedOffset::east_opt(3600).unwrap())
}

/// The example programs signed with a fresh key and verified, as the app loads them.
fn example_bundle() -> Bundle {
    let key = SigningKey::generate().unwrap();
    let signed = ProgramSet::from_json(EXAMPLE_PROGRAMS_JSON)
        .unwrap()
        .sign(&key)
        .unwrap();
    program::verify(&signed, &key.public_key(), now()).expect("the example bundle verifies")
}

// ---------------------------------------------------------------------------------------------
// Program bundle schema

#[test]
fn example_program_set_validates_and_parses() {
    let schema = bundle_schema();
    assert_valid(&schema, &example_value(), "programs.example.json");
    let set = ProgramSet::from_json(EXAMPLE_PROGRAMS_JSON).expect("the core accepts the example");
    assert_eq!(set.programs.len(), 4);
    assert_eq!(set.version, program::LATEST_SET_VERSION);

    let v1 = example_v1_value();
    assert_valid(&schema, &v1, "programs.v1.example.json");
    let set = ProgramSet::from_json(&v1.to_string()).expect("the core accepts the v1 example");
    assert_eq!(set.version, 1);
    assert_eq!(set.programs.len(), 4);
}

#[test]
fn the_version_decides_the_clinic_terms_in_schema_and_core_alike() {
    use lotsa_core::text::Reasoned;
    let schema = bundle_schema();
    let terms = [
        "callback_within",
        "clinic_retention",
        "never_reached_after",
        "fhir_export",
    ];
    // Version 1 carrying one of them, and the version 2 example relabelled as version 1.
    for term in terms {
        let mut v = example_v1_value();
        v["programs"][1][term] = example_value()["programs"][1][term].clone();
        assert!(
            !schema.is_valid(&v),
            "v1 with {term}: the schema refuses it"
        );
        match ProgramSet::from_json(&v.to_string()) {
            Err(BundleError::Invalid { field, reason }) => {
                assert_eq!(field, format!("programs[1].{term}"));
                assert!(reason.contains("needs bundle version 2"), "{reason}");
            }
            other => panic!("v1 with {term}: {other:?}"),
        }
    }
    let mut relabelled = example_value();
    relabelled["version"] = json!(1);
    assert!(!schema.is_valid(&relabelled));
    assert_eq!(
        ProgramSet::from_json(&relabelled.to_string())
            .unwrap_err()
            .code(),
        "bundle_invalid"
    );
    // Version 2 without one of them, and the version 1 example relabelled as version 2.
    for term in terms {
        let mut v = example_value();
        v["programs"][3].as_object_mut().unwrap().remove(term);
        assert!(
            !schema.is_valid(&v),
            "v2 without {term}: the schema refuses it"
        );
        match ProgramSet::from_json(&v.to_string()) {
            Err(BundleError::Invalid { field, reason }) => {
                assert_eq!(field, format!("programs[3].{term}"));
                assert!(reason.contains("required in bundle version 2"), "{reason}");
            }
            other => panic!("v2 without {term}: {other:?}"),
        }
    }
    let mut relabelled = example_v1_value();
    relabelled["version"] = json!(2);
    assert!(!schema.is_valid(&relabelled));
    assert_eq!(
        ProgramSet::from_json(&relabelled.to_string())
            .unwrap_err()
            .code(),
        "bundle_invalid"
    );
}

/// A change to a JSON value.
type Change = fn(&mut Value);

/// One change to the example program set that both layers must refuse.
struct Broken {
    name: &'static str,
    change: Change,
    /// The code `ProgramSet::from_json` must refuse it with.
    core_code: &'static str,
}

fn broken_sets() -> Vec<Broken> {
    vec![
        Broken {
            name: "minimum_age is a string",
            change: |v| v["programs"][0]["eligibility"]["minimum_age"] = json!("18"),
            core_code: "bundle_malformed",
        },
        Broken {
            name: "provisional_allowed is a number",
            change: |v| v["programs"][1]["eligibility"]["provisional_allowed"] = json!(1),
            core_code: "bundle_malformed",
        },
        Broken {
            name: "programs is an object",
            change: |v| v["programs"] = json!({}),
            core_code: "bundle_malformed",
        },
        Broken {
            name: "missing clinic",
            change: |v| {
                v["programs"][0].as_object_mut().unwrap().remove("clinic");
            },
            core_code: "bundle_malformed",
        },
        Broken {
            name: "missing bundle_id",
            change: |v| {
                v.as_object_mut().unwrap().remove("bundle_id");
            },
            core_code: "bundle_malformed",
        },
        Broken {
            name: "missing fields.personnummer",
            change: |v| {
                v["programs"][3]["fields"]
                    .as_object_mut()
                    .unwrap()
                    .remove("personnummer");
            },
            core_code: "bundle_malformed",
        },
        Broken {
            name: "unknown top-level property",
            change: |v| v["comment"] = json!("hello"),
            core_code: "bundle_malformed",
        },
        Broken {
            name: "unknown program property",
            change: |v| v["programs"][0]["redirect_to"] = json!("https://evil.example"),
            core_code: "bundle_malformed",
        },
        Broken {
            name: "unknown eligibility rule",
            change: |v| v["programs"][2]["eligibility"]["maximum_age"] = json!(99),
            core_code: "bundle_malformed",
        },
        Broken {
            name: "kommunkod with three digits",
            change: |v| v["programs"][0]["eligibility"]["kommunkoder"][0] = json!("180"),
            core_code: "bundle_invalid",
        },
        Broken {
            name: "kommunkod with a letter",
            change: |v| v["programs"][2]["eligibility"]["kommunkoder"][1] = json!("06l7"),
            core_code: "bundle_invalid",
        },
        Broken {
            name: "kommunkod as a number",
            change: |v| v["programs"][0]["eligibility"]["kommunkoder"][0] = json!(180),
            core_code: "bundle_malformed",
        },
        Broken {
            name: "no kommunkoder",
            change: |v| v["programs"][0]["eligibility"]["kommunkoder"] = json!([]),
            core_code: "bundle_invalid",
        },
        Broken {
            name: "plain http endpoint",
            change: |v| v["programs"][0]["clinic"]["endpoint"] = json!("http://localhost:8443/x"),
            core_code: "bundle_invalid",
        },
        Broken {
            name: "minimum_age above 130",
            change: |v| v["programs"][0]["eligibility"]["minimum_age"] = json!(131),
            core_code: "bundle_invalid",
        },
        Broken {
            name: "program id with capitals",
            change: |v| v["programs"][0]["id"] = json!("Lots-For-Livet"),
            core_code: "bundle_invalid",
        },
        Broken {
            name: "no programs",
            change: |v| v["programs"] = json!([]),
            core_code: "bundle_invalid",
        },
        Broken {
            name: "version 3",
            change: |v| v["version"] = json!(3),
            core_code: "bundle_unsupported_version",
        },
        Broken {
            name: "version 0",
            change: |v| v["version"] = json!(0),
            core_code: "bundle_unsupported_version",
        },
        Broken {
            name: "another format",
            change: |v| v["format"] = json!("lotsa.something-else"),
            core_code: "bundle_unsupported_format",
        },
        Broken {
            name: "a single consent script",
            change: |v| {
                v["programs"][0]["consent_scripts"]
                    .as_array_mut()
                    .unwrap()
                    .truncate(1)
            },
            core_code: "bundle_invalid",
        },
        Broken {
            name: "draft lifetime 0",
            change: |v| v["programs"][0]["draft_lifetime_hours"] = json!(0),
            core_code: "bundle_invalid",
        },
        Broken {
            name: "callback within 0 hours",
            change: |v| v["programs"][1]["callback_within"] = json!({"hours": 0}),
            core_code: "bundle_invalid",
        },
        Broken {
            name: "callback within 721 hours",
            change: |v| v["programs"][1]["callback_within"] = json!({"hours": 721}),
            core_code: "bundle_invalid",
        },
        Broken {
            name: "callback within 31 working days",
            change: |v| v["programs"][0]["callback_within"] = json!({"working_days": 31}),
            core_code: "bundle_invalid",
        },
        Broken {
            name: "callback within hours and working days",
            change: |v| {
                v["programs"][0]["callback_within"] = json!({"hours": 24, "working_days": 2})
            },
            core_code: "bundle_malformed",
        },
        Broken {
            name: "callback within minutes",
            change: |v| v["programs"][0]["callback_within"] = json!({"minutes": 30}),
            core_code: "bundle_malformed",
        },
        Broken {
            name: "callback within nothing",
            change: |v| v["programs"][0]["callback_within"] = json!({}),
            core_code: "bundle_malformed",
        },
        Broken {
            name: "clinic retention 366 days",
            change: |v| v["programs"][3]["clinic_retention"] = json!({"days": 366}),
            core_code: "bundle_invalid",
        },
        Broken {
            name: "clinic retention in hours",
            change: |v| v["programs"][3]["clinic_retention"] = json!({"days": 1, "hours": 2}),
            core_code: "bundle_malformed",
        },
        Broken {
            name: "never reached after 0 days",
            change: |v| v["programs"][1]["never_reached_after"] = json!({"days": 0}),
            core_code: "bundle_invalid",
        },
        Broken {
            name: "never reached after 61 days",
            change: |v| v["programs"][1]["never_reached_after"] = json!({"days": 61}),
            core_code: "bundle_invalid",
        },
        Broken {
            name: "never reached after 21 attempts",
            change: |v| v["programs"][0]["never_reached_after"] = json!({"attempts": 21}),
            core_code: "bundle_invalid",
        },
        Broken {
            name: "never reached after days and attempts",
            change: |v| v["programs"][0]["never_reached_after"] = json!({"days": 7, "attempts": 5}),
            core_code: "bundle_malformed",
        },
        Broken {
            name: "fhir_export null",
            change: |v| v["programs"][2]["fhir_export"] = json!(null),
            core_code: "bundle_malformed",
        },
        Broken {
            name: "fhir_export a string",
            change: |v| v["programs"][2]["fhir_export"] = json!("no"),
            core_code: "bundle_malformed",
        },
        Broken {
            name: "endpoint with a trailing slash",
            change: |v| v["programs"][0]["clinic"]["endpoint"] = json!("https://localhost:8443/"),
            core_code: "bundle_invalid",
        },
        Broken {
            name: "endpoint with a query",
            change: |v| {
                v["programs"][0]["clinic"]["endpoint"] = json!("https://localhost:8443/x?p=lfl")
            },
            core_code: "bundle_invalid",
        },
        Broken {
            name: "endpoint with a fragment",
            change: |v| {
                v["programs"][0]["clinic"]["endpoint"] = json!("https://localhost:8443/x#y")
            },
            core_code: "bundle_invalid",
        },
        Broken {
            name: "endpoint with an empty path segment",
            change: |v| v["programs"][0]["clinic"]["endpoint"] = json!("https://localhost:8443//x"),
            core_code: "bundle_invalid",
        },
    ]
}

#[test]
fn broken_program_sets_are_refused_by_schema_and_core_alike() {
    use lotsa_core::text::Reasoned;
    let schema = bundle_schema();
    for b in broken_sets() {
        let mut v = example_value();
        (b.change)(&mut v);
        assert_ne!(
            v,
            example_value(),
            "{}: the change changes something",
            b.name
        );
        assert!(
            !schema.is_valid(&v),
            "{}: the schema must refuse it",
            b.name
        );
        let err = ProgramSet::from_json(&v.to_string())
            .err()
            .unwrap_or_else(|| panic!("{}: ProgramSet::from_json must refuse it", b.name));
        assert_eq!(err.code(), b.core_code, "{}: {err}", b.name);
    }
}

#[test]
fn the_core_is_at_least_as_strict_as_the_bundle_schema() {
    // `ProgramSet::validate` promises to check the rules a schema can express as well, "so a
    // bundle is never half-checked" (an app loads bundles with the core only). Each of these
    // sets is refused by the schema; the core must refuse it too.
    let cases: Vec<(&str, Change)> = vec![
        ("duplicate kommunkod", |v| {
            v["programs"][0]["eligibility"]["kommunkoder"] = json!(["0180", "0180"])
        }),
        ("empty administrator", |v| v["administrator"] = json!("")),
        ("empty receipt key id", |v| {
            v["programs"][0]["clinic"]["receipt_key"]["key_id"] = json!("")
        }),
        ("empty callback promise", |v| {
            v["programs"][0]["callback_promise"]["en"] = json!("")
        }),
        ("empty name", |v| v["programs"][1]["name"] = json!("")),
        ("pin of 31 bytes", |v| {
            v["programs"][0]["clinic"]["tls"]["spki_sha256_pins"][0] =
                json!("QMsEjFUpeqhwrp/aG+KqtRGNni5JbkQA1tzqaRp2wg==")
        }),
    ];
    let schema = bundle_schema();
    let mut accepted = Vec::new();
    for (name, change) in cases {
        let mut v = example_value();
        change(&mut v);
        assert!(!schema.is_valid(&v), "{name}: the schema refuses it");
        if ProgramSet::from_json(&v.to_string()).is_ok() {
            accepted.push(name);
        }
    }
    assert!(
        accepted.is_empty(),
        "ProgramSet::from_json accepts sets the schema refuses: {accepted:?}"
    );
}

#[test]
fn the_core_names_the_field_of_a_bad_kommunkod() {
    let mut v = example_value();
    v["programs"][2]["eligibility"]["kommunkoder"][1] = json!("9999");
    // Four digits fit the schema's pattern; only the core knows 9999 is no municipality.
    assert!(bundle_schema().is_valid(&v));
    match ProgramSet::from_json(&v.to_string()) {
        Err(BundleError::Invalid { field, .. }) => {
            assert_eq!(field, "programs[2].eligibility.kommunkoder[1]")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn the_signed_payload_is_a_valid_program_set() {
    // The bytes that are signed are the core's canonical serialisation: they, too, must meet
    // the schema (a field the core adds or renames would break other readers).
    for (what, text) in [
        ("v2", EXAMPLE_PROGRAMS_JSON.to_string()),
        ("v1", example_v1_value().to_string()),
    ] {
        let set = ProgramSet::from_json(&text).unwrap();
        let canonical: Value = serde_json::from_slice(&set.canonical_bytes()).unwrap();
        assert_valid(
            &bundle_schema(),
            &canonical,
            &format!("the canonical {what} set"),
        );
        assert_eq!(
            ProgramSet::from_json(&canonical.to_string()).unwrap(),
            set,
            "the canonical {what} form reads back to the same set"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Signed envelope

fn b64_decode(text: &str) -> Vec<u8> {
    lotsa_core::crypto::unb64(text, "test").expect("base64")
}

#[test]
fn signed_envelope_validates_against_signed_bundle_def() {
    let key = SigningKey::generate().unwrap();
    let set = ProgramSet::from_json(EXAMPLE_PROGRAMS_JSON).unwrap();
    let signed = set.sign(&key).unwrap();
    let envelope: Value = serde_json::from_str(&signed).unwrap();
    let schema = signed_bundle_schema();
    assert_valid(&schema, &envelope, "the signed envelope");
    assert_eq!(envelope["key_id"], key.public_key().key_id());

    // The payload is the base64 of a program set that itself meets the schema.
    let payload: Value =
        serde_json::from_slice(&b64_decode(envelope["payload"].as_str().unwrap())).unwrap();
    assert_valid(&bundle_schema(), &payload, "the signed payload");

    // The def is not vacuous: broken envelopes fail it.
    let mut extra = envelope.clone();
    extra["comment"] = json!("x");
    assert!(!schema.is_valid(&extra), "unknown property");
    let mut short_sig = envelope.clone();
    short_sig["signature"] = json!("AAAA");
    assert!(
        !schema.is_valid(&short_sig),
        "a signature of the wrong length"
    );
    let mut no_payload = envelope.clone();
    no_payload.as_object_mut().unwrap().remove("payload");
    assert!(!schema.is_valid(&no_payload), "missing payload");
    let mut set_as_envelope = example_value();
    set_as_envelope["format"] = json!("lotsa.signed-program-bundle");
    assert!(!schema.is_valid(&set_as_envelope), "an unsigned set");
}

#[test]
fn a_tampered_bundle_is_refused_with_bad_signature() {
    let key = SigningKey::generate().unwrap();
    let signed = ProgramSet::from_json(EXAMPLE_PROGRAMS_JSON)
        .unwrap()
        .sign(&key)
        .unwrap();
    assert!(program::verify(&signed, &key.public_key(), now()).is_ok());

    let mut envelope: Value = serde_json::from_str(&signed).unwrap();
    let mut payload = b64_decode(envelope["payload"].as_str().unwrap());
    // Flip one bit of one byte of the signed bytes: e.g. a digit of a kommunkod or a letter of
    // the endpoint.
    let at = payload.len() / 2;
    payload[at] ^= 0x01;
    envelope["payload"] = json!(lotsa_core::crypto::b64(&payload));
    let tampered = serde_json::to_string_pretty(&envelope).unwrap();
    // Still a well-formed envelope: the schema cannot tell, only the signature can.
    assert_valid(&signed_bundle_schema(), &envelope, "the tampered envelope");
    assert_eq!(
        program::verify(&tampered, &key.public_key(), now()).unwrap_err(),
        BundleError::BadSignature
    );

    // A signature from another key over the same bytes is refused too.
    let other = SigningKey::generate().unwrap();
    assert!(matches!(
        program::verify(&signed, &other.public_key(), now()),
        Err(BundleError::UnknownSigner { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Handover payloads

fn officer() -> Recorder {
    Recorder {
        role: Role::Police,
        officer_id: "P-1234".into(),
        unit: "City polisområde".into(),
    }
}

fn full_contact() -> ContactDetails {
    ContactDetails {
        name: Some("Alex".into()),
        phone: Some("070-123 45 67".into()),
        language: Some("sv".into()),
        best_time: Some("efter kl. 14".into()),
        note: Some("Träffades vid Plattan".into()),
    }
}

/// What one referral to `program` turns into, with everything typed that could be typed.
struct Referral {
    number: String,
    payload: HandoverPayload,
}

fn referral(
    bundle: &Bundle,
    program: &Program,
    provenance: Provenance,
    narrow_consent: impl Fn(&mut ConsentRecord),
) -> Referral {
    let number = compose(NaiveDate::from_ymd_opt(1988, 6, 30).unwrap(), 417, false);
    let draft_id = "0b6c1f5e-3d2a-4c8e-9f10-2a3b4c5d6e7f".to_string();
    let mut draft = Draft::new(draft_id.clone(), program.id.clone(), stockholm_now());
    draft.contact = full_contact();
    draft.identity_number = Some(number.clone());
    draft.residence = Some(ResidenceInput {
        municipality: Some(program.eligibility.kommunkoder[0].clone()),
        postal_code: None,
        provenance,
    });
    let facts = draft.facts(today()).unwrap();
    let verdict = eligibility::assess(&facts, bundle, program, today());
    assert_eq!(verdict.outcome, Outcome::Eligible, "{}", program.id);
    // The person agrees to pass on everything the program accepts (the personnummer too, where it
    // is optional: by default it stays on the device, see `default_data_items`).
    let form = ConsentForm {
        program_id: None,
        language: "sv".into(),
        script_version: None,
        method: Method::Verbal {
            witness: "P-4711".into(),
        },
        recorded_by: officer(),
        told_no_effect_on_police_matter: true,
        told_can_withdraw: true,
        capacity: Capacity::Adequate,
        share_personnummer: true,
    };
    let mut consent = form
        .record(program, &draft_id, stockholm_now())
        .unwrap()
        .record;
    narrow_consent(&mut consent);
    let payload = build_handover(
        &draft,
        program,
        &verdict,
        &consent,
        stockholm_now(),
        today(),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", program.id));
    Referral { number, payload }
}

/// The JSON keys present for each field of the field policy.
fn present(payload: &Value, field: Field) -> bool {
    let (part, key) = match field {
        Field::Name => ("contact", "name"),
        Field::Phone => ("contact", "phone"),
        Field::Language => ("contact", "language"),
        Field::BestTime => ("contact", "best_time"),
        Field::Note => ("contact", "note"),
        Field::Personnummer => ("person", "personnummer"),
        Field::BirthDate => ("person", "birth_date"),
        Field::Kommunkod => ("person", "kommunkod"),
    };
    payload[part].get(key).is_some()
}

#[test]
fn handover_payloads_for_every_example_program_validate_and_are_minimal() {
    let schema = handover_schema();
    let bundle = example_bundle();
    let example = example_value();
    assert_eq!(bundle.programs().len(), 4);
    for (i, program) in bundle.programs().iter().enumerate() {
        let r = referral(&bundle, program, Provenance::Document, |_| {});
        let v = serde_json::to_value(&r.payload).unwrap();
        assert_valid(&schema, &v, &format!("the handover for {}", program.id));

        // Field by field, against the policy as written in the example file: a field the program
        // never receives is absent; every other field was typed and consented to, so it is there.
        let policy = &example["programs"][i]["fields"];
        assert_eq!(example["programs"][i]["id"], program.id.as_str());
        for field in Field::ALL {
            let never = policy[field.as_str()] == "never";
            assert_eq!(
                present(&v, field),
                !never,
                "{}: {} (policy {})",
                program.id,
                field.as_str(),
                policy[field.as_str()]
            );
        }
        // Whatever the policy, no string in the payload holds the number.
        let text = v.to_string();
        if policy["personnummer"] == "never" {
            assert!(!text.contains(&r.number), "{}", program.id);
            assert!(!text.contains(&r.number[2..]), "{}", program.id);
        } else {
            assert_eq!(v["person"]["personnummer"], r.number.as_str());
        }
        assert_eq!(v["contact"]["phone"], "+46701234567");
        assert_eq!(
            v["person"]["kommunkod"],
            example["programs"][i]["eligibility"]["kommunkoder"][0]
        );
        assert_eq!(v["handover_id"], v["consent"]["subject_ref"]);
        assert_eq!(v["eligibility"]["provisional"], false);
    }
}

#[test]
fn lots_for_livet_gets_no_personnummer_and_kalmar_does() {
    let bundle = example_bundle();
    let lfl = bundle.program("lots-for-livet").unwrap();
    let r = referral(&bundle, lfl, Provenance::Stated, |_| {});
    assert_eq!(r.payload.person.personnummer, None);
    assert_eq!(r.payload.person.birth_date, None);
    assert!(r.payload.eligibility.provisional, "stated residency");
    assert_valid(
        &handover_schema(),
        &serde_json::to_value(&r.payload).unwrap(),
        "a provisional lots-for-livet handover",
    );

    let kalmar = bundle.program("kalmar").unwrap();
    assert_eq!(kalmar.fields.personnummer, Need::Optional);
    let r = referral(&bundle, kalmar, Provenance::Register, |_| {});
    assert_eq!(
        r.payload.person.personnummer.as_deref(),
        Some(r.number.as_str())
    );

    // By default a consent does not cover an optional personnummer: it goes only when the
    // person agrees to it in so many words (docs/DESIGN.md: only if required).
    let defaults = lotsa_core::consent::default_data_items(kalmar);
    assert!(!defaults.contains(&Field::Personnummer));
    let r = referral(&bundle, kalmar, Provenance::Register, |c| {
        c.data_items = defaults.clone()
    });
    assert_eq!(r.payload.person.personnummer, None);

    // The person may decline an optional item: then it is not passed on, though it was typed.
    let r = referral(&bundle, kalmar, Provenance::Register, |c| {
        c.data_items
            .retain(|f| *f != Field::Personnummer && *f != Field::Note)
    });
    assert_eq!(r.payload.person.personnummer, None);
    assert_eq!(r.payload.contact.note, None);
    assert!(r.payload.contact.name.is_some());
}

fn kalmar_payload() -> Value {
    let bundle = example_bundle();
    let kalmar = bundle.program("kalmar").unwrap();
    serde_json::to_value(referral(&bundle, kalmar, Provenance::Document, |_| {}).payload).unwrap()
}

#[test]
fn handover_schema_refuses_extra_fields_and_short_personnummer() {
    let schema = handover_schema();
    let good = kalmar_payload();
    assert_valid(&schema, &good, "the kalmar handover");

    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut v = good.clone();
    v["debug"] = json!(true);
    cases.push(("extra top-level field", v));
    let mut v = good.clone();
    v["person"]["name_of_mother"] = json!("x");
    cases.push(("extra person field", v));
    let mut v = good.clone();
    v["contact"]["email"] = json!("a@example.org");
    cases.push(("extra contact field", v));
    let mut v = good.clone();
    let ten = v["person"]["personnummer"].as_str().unwrap()[2..].to_string();
    v["person"]["personnummer"] = json!(ten);
    cases.push(("personnummer of 10 digits", v));
    let mut v = good.clone();
    v["person"]["personnummer"] = json!("99880630417");
    cases.push(("personnummer of 11 digits", v));
    let mut v = good.clone();
    v["eligibility"]["outcome"] = json!("undetermined");
    cases.push(("a handover that is not eligible", v));
    let mut v = good.clone();
    v["consent"]["told_can_withdraw"] = json!(false);
    cases.push(("consent without the withdrawal disclosure", v));
    let mut v = good.clone();
    v["contact"]["phone"] = json!("070-123 45 67");
    cases.push(("phone not in E.164", v));
    let mut v = good.clone();
    v["handover_id"] = json!("not-a-uuid");
    cases.push(("handover id not a UUID", v));
    let mut v = good.clone();
    v["created_at"] = json!("yesterday");
    cases.push(("created_at not a date-time", v));

    for (name, v) in &cases {
        assert!(!schema.is_valid(v), "the schema must refuse: {name}");
    }
    let back: HandoverPayload = serde_json::from_value(good.clone()).unwrap();
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        good,
        "a valid payload round-trips"
    );
}

#[test]
fn handover_payload_type_refuses_unknown_fields_like_the_schema() {
    // The clinic reads payloads with the core's `HandoverPayload`; the schema says no object in a
    // payload has properties beyond those it lists. A reader that silently drops an unknown field
    // disagrees with the contract, so every object of the payload is tried.
    let schema = handover_schema();
    let good = kalmar_payload();
    let objects = [
        "",
        "/contact",
        "/person",
        "/eligibility",
        "/eligibility/basis",
        "/consent",
        "/consent/script",
        "/consent/method",
        "/consent/recorded_by",
        "/callback_promise",
    ];
    let mut disagreements = Vec::new();
    for pointer in objects {
        let mut v = good.clone();
        v.pointer_mut(pointer)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("{pointer:?} is an object in the payload"))
            .insert("x_unknown".into(), json!("surplus"));
        assert!(
            !schema.is_valid(&v),
            "the schema refuses x_unknown at {pointer:?}"
        );
        if serde_json::from_value::<HandoverPayload>(v).is_ok() {
            disagreements.push(if pointer.is_empty() { "/" } else { pointer });
        }
    }
    assert!(
        disagreements.is_empty(),
        "HandoverPayload accepts (and silently drops) an unknown field the schema refuses at: {disagreements:?}"
    );
}
