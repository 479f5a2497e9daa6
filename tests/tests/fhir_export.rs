//! The FHIR export, fed by a real phone's deliveries over HTTPS and the worklist's real actions:
//! every bundle the clinic hands out (waiting, in progress, reached, declined, never reached,
//! withdrawn from the phone and by phone, a personnummer passed on) is validated by HAPI FHIR's
//! validator against base R4, all in one JVM, with no error; a deliberately broken bundle in the
//! same run shows the validator does find errors. The refusals: an anonymous program's referral,
//! no token, a wrong token, a revoked token, a referral erased after its retention, a referral
//! of a program the system was not given.

use chrono::{Duration, Utc};
use lotsa_clinic::export::{self, ExportError, Reader};
use lotsa_clinic::retention;
use lotsa_clinic::storage::{AccessFilter, Storage};
use lotsa_clinic::worklist::Action;
use lotsa_core::sync::Trigger;
use lotsa_tests::field::{field_serving, trusting, Field, TempDir};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const PROGRAMS: [&str; 3] = ["lots-for-livet", "kalmar", "snackan-gislaved"];

fn resource<'a>(bundle: &'a Value, kind: &str) -> &'a Value {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {bundle}"))
}

/// `GET /export/v1/fhir/{id}` with an optional bearer token: status, headers and body.
fn fetch(f: &Field, id: &str, token: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
    get(f, &format!("/export/v1/fhir/{id}"), token)
}

/// `GET path` on the clinic with an optional bearer token: status, headers and body.
fn get(f: &Field, path: &str, token: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
    let client = reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(trusting(f.clinic.clinic().tls.ca_pem.as_deref().unwrap()))
        .no_proxy()
        .build()
        .unwrap();
    let mut request = client.get(format!("https://{}{path}", f.clinic.addr()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = serde_json::from_slice(&response.bytes().unwrap()).unwrap_or(Value::Null);
    (status, headers, body)
}

/// The access log's refused exports: who asked, for which referral.
fn refusals(storage: &Storage) -> Vec<(String, Option<String>)> {
    storage
        .access_log(&AccessFilter::default())
        .unwrap()
        .into_iter()
        .filter(|l| l.action == export::REFUSED_ACTION)
        .map(|l| (l.staff, l.handover_id))
        .collect()
}

/// Runs the HAPI FHIR validator over every `*.json` in `dir`, in one JVM: its JSON report.
fn validate(dir: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fhir-validator/validate.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "the validator could not run (run .ci/fhir-setup.sh first): {stderr}"
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("the validator's report is not JSON ({e}): {stderr}"))
}

#[test]
fn every_exported_bundle_passes_the_hapi_validator_against_base_r4_and_a_withdrawal_shows_consent_inactive(
) {
    let mut f = field_serving("fhir-valid", &PROGRAMS);
    f.enrol();
    let lfl = |f: &mut Field| f.referral_to("lots-for-livet", "Stockholm");
    let (waiting, tried, contacted, declined, never, by_phone) = (
        lfl(&mut f),
        lfl(&mut f),
        lfl(&mut f),
        lfl(&mut f),
        lfl(&mut f),
        lfl(&mut f),
    );
    let kalmar = f.referral_of("kalmar", "Kalmar", "19900412-1233", true);
    let kalmar_withdrawn = f.referral_of("kalmar", "Kalmar", "19900412-1233", true);
    assert_eq!(f.sync(Trigger::Manual).delivered.len(), 8);
    f.store.withdraw(&kalmar_withdrawn, None).unwrap();
    assert_eq!(f.sync(Trigger::Manual).delivered.len(), 1);

    let storage = f.clinic.storage().unwrap();
    let secrets = f.clinic_secrets();
    let list = secrets.worklist(&storage, &f.bundle);
    let now = Utc::now();
    let act = |id: &str, action: Action, reason: &str| {
        list.claim("anna", id, now).unwrap();
        list.record("anna", id, action, reason, now).unwrap();
    };
    act(&tried, Action::NotReached, "no_answer");
    act(&contacted, Action::NotReached, "voicemail");
    act(&contacted, Action::Contacted, "appointment_booked");
    act(&declined, Action::Declined, "not_now");
    for _ in 0..5 {
        act(&never, Action::NotReached, "phone_off");
    }
    act(&by_phone, Action::WithdrewByPhone, "withdrew");

    let exporter = secrets.exporter(&storage, &f.bundle);
    let dir = TempDir::new("fhir-bundles");
    std::fs::create_dir_all(&dir.0).unwrap();
    let mut exported = Vec::new();
    for (label, id) in [
        ("waiting", &waiting),
        ("tried", &tried),
        ("contacted", &contacted),
        ("declined", &declined),
        ("never-reached", &never),
        ("withdrawn-by-phone", &by_phone),
        ("kalmar", &kalmar),
        ("kalmar-withdrawn", &kalmar_withdrawn),
    ] {
        let bundle = exporter.export(id, &Reader::console(), now).unwrap();
        let file = format!("{:02}-{label}.json", exported.len());
        std::fs::write(dir.0.join(&file), bundle.to_string()).unwrap();
        exported.push((label, bundle));
    }
    let of = |label: &str| &exported.iter().find(|(l, _)| *l == label).unwrap().1;
    // The index lists every one of them, with its state (a withdrawal only to whoever fetched
    // the referral before: here the console did).
    let index = exporter.index(&Reader::console(), None, now).unwrap();
    let state = |id: &str| index.iter().find(|r| r.handover_id == id).map(|r| r.state);
    assert_eq!(index.len(), 8);
    assert_eq!(state(&waiting), Some("waiting"));
    assert_eq!(state(&tried), Some("waiting"));
    assert_eq!(state(&contacted), Some("settled"));
    assert_eq!(state(&never), Some("settled"));
    assert_eq!(state(&by_phone), Some("withdrawn"));
    assert_eq!(state(&kalmar_withdrawn), Some("withdrawn"));
    let stranger = exporter
        .index(&Reader::client("nobody", None), None, now)
        .unwrap();
    assert!(stranger.iter().all(|r| r.state != "withdrawn"));
    let status = |label: &str, kind: &str| resource(of(label), kind)["status"].clone();

    // What each bundle says.
    assert_eq!(status("waiting", "Task"), "requested");
    assert_eq!(status("waiting", "ServiceRequest"), "active");
    assert_eq!(status("waiting", "Consent"), "active");
    assert_eq!(status("tried", "Task"), "in-progress");
    assert_eq!(status("contacted", "Task"), "completed");
    assert_eq!(status("contacted", "ServiceRequest"), "completed");
    assert_eq!(
        resource(of("contacted"), "Task")["statusReason"]["text"],
        "contacted (appointment_booked)"
    );
    assert_eq!(
        resource(of("contacted"), "Task")["note"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(status("declined", "Task"), "completed");
    assert_eq!(status("never-reached", "Task"), "failed");
    assert_eq!(status("never-reached", "ServiceRequest"), "revoked");
    for withdrawn in ["withdrawn-by-phone", "kalmar-withdrawn"] {
        assert_eq!(status(withdrawn, "Consent"), "inactive", "{withdrawn}");
        assert_eq!(
            status(withdrawn, "ServiceRequest"),
            "revoked",
            "{withdrawn}"
        );
        assert_eq!(status(withdrawn, "Task"), "cancelled", "{withdrawn}");
        let text = of(withdrawn).to_string();
        assert!(
            !text.contains("+46701234567") && !text.contains("Kim"),
            "{text}"
        );
    }
    // Kalmar takes the personnummer when the person agrees; Lots för livet never does.
    let identifier = &resource(of("kalmar"), "Patient")["identifier"][0];
    assert_eq!(
        identifier["system"],
        lotsa_clinic::fhir::PERSONNUMMER_SYSTEM
    );
    assert_eq!(identifier["value"], "199004121233");
    assert!(resource(of("waiting"), "Patient")
        .get("identifier")
        .is_none());
    assert!(!of("waiting").to_string().contains("199004121233"));
    let patient = resource(of("waiting"), "Patient");
    assert_eq!(patient["telecom"][0]["value"], "+46701234567");
    assert_eq!(patient["address"][0]["district"], "Stockholm");

    // A broken bundle in the same run: the validator is not a rubber stamp.
    let mut broken = of("waiting").clone();
    let consent = broken["entry"][1]["resource"].as_object_mut().unwrap();
    consent.remove("status");
    consent.insert("dateTime".into(), "yesterday".into());
    std::fs::write(dir.0.join("zz-broken-control.json"), broken.to_string()).unwrap();

    let report = validate(&dir.0);
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), exported.len() + 1, "{report}");
    for file in files {
        let name = file["file"].as_str().unwrap();
        let errors = file["errors"].as_u64().unwrap();
        eprintln!(
            "{name}: {errors} errors, {} warnings",
            file["warnings"].as_u64().unwrap_or(0)
        );
        if name == "zz-broken-control.json" {
            assert!(errors >= 2, "the broken control passed: {file}");
            continue;
        }
        assert_eq!(errors, 0, "{name}: {file}");
        // The one warning left: LOINC is not bundled with the validator, so the Consent's
        // category code cannot be checked offline.
        for message in file["messages"].as_array().unwrap() {
            let text = message["message"].as_str().unwrap();
            assert!(text.contains("http://loinc.org"), "{name}: {message}");
        }
    }
}

#[test]
fn an_anonymous_programs_referral_a_revoked_token_and_an_erased_referral_are_refused_and_only_exports_are_logged(
) {
    let mut f = field_serving("fhir-refusals", &PROGRAMS);
    f.enrol();
    let lfl = f.referral_to("lots-for-livet", "Stockholm");
    let snackan = f.referral_to("snackan-gislaved", "Gislaved");
    let settled = f.referral_to("lots-for-livet", "Stockholm");
    assert_eq!(f.sync(Trigger::Manual).delivered.len(), 3);
    let storage = f.clinic.storage().unwrap();
    let secrets = f.clinic_secrets();
    // The clinic's bundle, apart from the phone that syncs again below.
    let served = f.bundle.clone();
    let exporter = secrets.exporter(&storage, &served);
    let now = Utc::now();

    // Snäckan promises anonymity: no export, at the console or over HTTPS.
    assert!(matches!(
        exporter.export(&snackan, &Reader::console(), now),
        Err(ExportError::NotAllowed)
    ));
    let (token_name, token) = export::add_client(&storage, "Journal", None, now).unwrap();
    assert_eq!(token_name, "journal");
    let (status, _, problem) = fetch(&f, &snackan, Some(&token));
    assert_eq!(status, 403);
    assert_eq!(
        problem["type"],
        "urn:lotsa:export-problem:export_not_allowed"
    );

    // Without a token, with a wrong one: 401, asking for a bearer token.
    for wrong in [None, Some("lotsa_api_not-a-token"), Some("Basic abc")] {
        let (status, headers, problem) = fetch(&f, &lfl, wrong);
        assert_eq!(status, 401, "{wrong:?}");
        assert_eq!(headers["www-authenticate"], "Bearer");
        assert_eq!(problem["code"], "token_refused");
    }
    // With the token: the bundle, as application/fhir+json.
    let (status, headers, bundle) = fetch(&f, &lfl, Some(&token));
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/fhir+json");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(
        resource(&bundle, "Patient")["telecom"][0]["value"],
        "+46701234567"
    );
    // The index, for a system that polls: Lots för livet's two referrals, not Snäckan's.
    let (status, headers, index) = get(&f, "/export/v1/referrals", Some(&token));
    assert_eq!(
        (status, &headers["content-type"]),
        (200, &"application/json".parse().unwrap())
    );
    let listed: Vec<&str> = index["referrals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["handover_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{index}");
    assert!(listed.contains(&lfl.as_str()) && listed.contains(&settled.as_str()));
    assert_eq!(index["referrals"][0]["state"], "waiting");
    assert_eq!(
        index["referrals"][0]["fhir"],
        format!("/export/v1/fhir/{}", listed[0])
    );
    let later = (now + Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
    let (_, _, none) = get(
        &f,
        &format!("/export/v1/referrals?changed_since={later}"),
        Some(&token),
    );
    assert_eq!(none["referrals"], serde_json::json!([]));
    let (status, _, problem) = get(
        &f,
        "/export/v1/referrals?changed_since=tuesday",
        Some(&token),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("bad_changed_since"))
    );
    assert!(!problem.to_string().contains("tuesday"));
    assert_eq!(get(&f, "/export/v1/referrals", None).0, 401);
    // An id nothing is known of: 404.
    let (status, _, _) = fetch(&f, "0b6c1f5e-0000-4c8e-9f10-2a3b4c5d6e7f", Some(&token));
    assert_eq!(status, 404);

    // Revoked: refused at its next use; a name revoked is not reused.
    assert_eq!(
        export::revoke_client(&storage, "journal", now).unwrap(),
        "journal"
    );
    let (status, _, _) = fetch(&f, &lfl, Some(&token));
    assert_eq!(status, 401);
    assert!(matches!(
        export::add_client(&storage, "journal", None, now),
        Err(export::ClientError::Exists)
    ));
    let clients = storage.api_clients().unwrap();
    assert_eq!(clients.len(), 1);
    assert!(clients[0].revoked_at.is_some());
    assert!(clients[0].last_used_at.is_some());

    // Erased after its retention: nothing left to export, 410.
    let list = secrets.worklist(&storage, &served);
    list.claim("anna", &settled, now).unwrap();
    list.record("anna", &settled, Action::Contacted, "talked", now)
        .unwrap();
    retention::run(&storage, &served, now + Duration::days(31)).unwrap();
    assert!(matches!(
        exporter.export(&settled, &Reader::console(), now),
        Err(ExportError::Erased)
    ));
    let (token2_name, token2) = export::add_client(&storage, "journal-2", None, now).unwrap();
    let (status, _, problem) = fetch(&f, &settled, Some(&token2));
    assert_eq!((status, problem["code"].as_str()), (410, Some("erased")));

    // The phone withdraws the erased one afterwards: now it is a withdrawal, exported with no
    // personal data, and listed only to a system that has fetched it (the console never did).
    f.store.withdraw(&settled, None).unwrap();
    assert_eq!(f.sync(Trigger::Manual).delivered.len(), 1);
    let (status, _, bundle) = fetch(&f, &settled, Some(&token2));
    assert_eq!(status, 200);
    assert_eq!(resource(&bundle, "Consent")["status"], "inactive");
    let (_, _, index) = get(&f, "/export/v1/referrals", Some(&token2));
    let withdrawn = index["referrals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["handover_id"] == settled.as_str());
    assert_eq!(
        withdrawn.map(|r| &r["state"]),
        Some(&Value::from("withdrawn")),
        "{index}"
    );
    let console = exporter.index(&Reader::console(), None, now).unwrap();
    assert!(console.iter().all(|r| r.handover_id != settled));

    // A later call shows up for a system polling with changed_since; the scheme's case is free.
    let later = now + Duration::hours(2);
    list.claim("anna", &lfl, later).unwrap();
    list.record("anna", &lfl, Action::NotReached, "voicemail", later)
        .unwrap();
    let since = (now + Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
    let client = reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(trusting(f.clinic.clinic().tls.ca_pem.as_deref().unwrap()))
        .no_proxy()
        .build()
        .unwrap();
    let polled = client
        .get(format!(
            "https://{}/export/v1/referrals?changed_since={since}",
            f.clinic.addr()
        ))
        .header("authorization", format!("bearer {token2}"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let polled: Value = serde_json::from_slice(&polled).unwrap();
    assert_eq!(polled["referrals"].as_array().unwrap().len(), 1, "{polled}");
    assert_eq!(polled["referrals"][0]["handover_id"], lfl.as_str());
    let (status, _, _) = get(
        &f,
        "/export/v1/referrals?changed_since=2026-12-01T10:00:00Z&changed_since=x",
        Some(&token2),
    );
    assert_eq!(status, 400);

    // Only what was handed out is logged as an export: one to the journal system, and the
    // withdrawal to the second; the refusals of known referrals are logged as refusals.
    let exports: Vec<_> = storage
        .access_log(&AccessFilter::default())
        .unwrap()
        .into_iter()
        .filter(|l| l.action == export::EXPORT_ACTION)
        .collect();
    assert_eq!(exports.len(), 2, "{exports:?}");
    let looks = storage
        .access_log(&AccessFilter {
            staff: Some("api:journal".into()),
            ..AccessFilter::default()
        })
        .unwrap()
        .into_iter()
        .filter(|l| l.action == export::INDEX_ACTION)
        .count();
    // Two looks at the index; the refused one (a bad time) is not one.
    assert_eq!(looks, 2);
    assert_eq!(exports[0].staff, "api:journal");
    assert_eq!(exports[0].handover_id.as_deref(), Some(lfl.as_str()));
    assert!(exports[0].phone_hmac.is_some());
    assert_eq!(exports[1].staff, "api:journal-2");
    assert!(
        exports[1].phone_hmac.is_none(),
        "a withdrawal has no number"
    );
    let line = |who: &str, id: &str| (who.to_string(), Some(id.to_string()));
    assert_eq!(
        refusals(&storage),
        [
            line("console", &snackan),
            line("api:journal", &snackan),
            line("console", &settled),
            line("api:journal-2", &settled),
        ]
    );
    assert_ne!(token2_name, token_name);
}

#[test]
fn a_system_given_one_program_is_told_another_programs_referrals_are_not_held_and_the_log_says_it_asked(
) {
    let mut f = field_serving("fhir-scope", &PROGRAMS);
    f.enrol();
    let lfl = f.referral_to("lots-for-livet", "Stockholm");
    let kalmar = f.referral_of("kalmar", "Kalmar", "19900412-1233", true);
    let kalmar_withdrawn = f.referral_of("kalmar", "Kalmar", "19900412-1233", true);
    assert_eq!(f.sync(Trigger::Manual).delivered.len(), 3);
    let storage = f.clinic.storage().unwrap();
    let now = Utc::now();

    // Kalmar's journal is given Kalmar; a regional system every program.
    let given = BTreeSet::from(["kalmar".to_string()]);
    let (_, kalmar_token) =
        export::add_client(&storage, "kalmar-journal", Some(&given), now).unwrap();
    let (_, every_token) = export::add_client(&storage, "region", None, now).unwrap();
    for bad in [
        BTreeSet::new(),
        BTreeSet::from(["Kalmar".to_string()]),
        BTreeSet::from(["kalmar".to_string(), String::new()]),
    ] {
        assert!(
            matches!(
                export::add_client(&storage, "typo", Some(&bad), now),
                Err(export::ClientError::BadProgram)
            ),
            "{bad:?}"
        );
    }
    let clients = storage.api_clients().unwrap();
    let scope = |name: &str| {
        clients
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .programs
            .clone()
    };
    assert_eq!(scope("kalmar-journal"), Some(vec!["kalmar".to_string()]));
    assert_eq!(scope("region"), None);
    assert_eq!(clients.len(), 2, "a refused client is not added");

    // Kalmar's referral: 200. Lots för livet's: 404, the same answer as an id never held.
    let (status, _, bundle) = fetch(&f, &kalmar, Some(&kalmar_token));
    assert_eq!(status, 200);
    assert_eq!(
        resource(&bundle, "Patient")["identifier"][0]["value"],
        "199004121233"
    );
    let (status, _, problem) = fetch(&f, &lfl, Some(&kalmar_token));
    let (unknown_status, _, unknown) = fetch(
        &f,
        "0b6c1f5e-0000-4c8e-9f10-2a3b4c5d6e7f",
        Some(&kalmar_token),
    );
    assert_eq!((status, &problem), (unknown_status, &unknown));
    assert_eq!(problem["code"], "unknown_referral");
    let (status, _, _) = fetch(&f, &lfl, Some(&every_token));
    assert_eq!(status, 200);

    // The index: only Kalmar's, for Kalmar's system; both programs for the region's.
    let listed = |f: &Field, token: &str| -> Vec<String> {
        get(f, "/export/v1/referrals", Some(token)).2["referrals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["program_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(listed(&f, &kalmar_token), ["kalmar", "kalmar"]);
    let mut every = listed(&f, &every_token);
    every.sort();
    assert_eq!(every, ["kalmar", "kalmar", "lots-for-livet"]);

    // Kalmar's system fetched a referral that is then withdrawn: its withdrawal is still its
    // own to update; the region never fetched it, so it does not see it.
    let (status, _, _) = fetch(&f, &kalmar_withdrawn, Some(&kalmar_token));
    assert_eq!(status, 200);
    f.store.withdraw(&kalmar_withdrawn, None).unwrap();
    assert_eq!(f.sync(Trigger::Manual).delivered.len(), 1);
    let (status, _, bundle) = fetch(&f, &kalmar_withdrawn, Some(&kalmar_token));
    assert_eq!(status, 200);
    assert_eq!(resource(&bundle, "Consent")["status"], "inactive");
    assert_eq!(listed(&f, &kalmar_token), ["kalmar", "kalmar"]);
    assert_eq!(listed(&f, &every_token).len(), 2);

    // The access log: the look at Lots för livet's referral is a refusal under Kalmar's name;
    // the id never held is not in the log at all.
    assert_eq!(
        refusals(&storage),
        [("api:kalmar-journal".to_string(), Some(lfl))]
    );
}
