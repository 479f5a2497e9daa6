//! The Rust side of the FFI cost comparison (bindings/bench/ffi_cost.sh builds and runs it).
//!
//! For each exported call of `lotsa-ffi`, this times the *body* of that FFI function called
//! directly from Rust: the same `lotsa-core` calls and the same conversion into the FFI's owned
//! records (Strings, Vecs, texts in the app's language), on the same inputs and the same bundle
//! the Python and Kotlin timings use. What it leaves out is exactly the FFI: lowering the
//! arguments, serialising records into a RustBuffer, the foreign side lifting them into its own
//! objects, and the call-status check. So `Python − Rust` and `Kotlin − Rust` are the cost of
//! crossing the boundary.
//!
//! The functions below are copies of bindings/src/{lookup,programs}.rs with the uniffi
//! attributes and the error mapping left out (every case timed here succeeds). Keep them in step
//! when those change.
//!
//! Usage: rust_cost <fixtures-dir> <out.json>   (fixtures: bundle.json + admin.pub)
//! Output: JSON {"language": "rust", "results": {case: {"ns_median": .., "ns_min": .., "iterations": ..}}}

use chrono::NaiveDate;
use lotsa_core::clock::{to_stockholm, Clock, SystemClock};
use lotsa_core::consent::{self, ConsentRecord};
use lotsa_core::crypto::PublicKey;
use lotsa_core::eligibility::{self, AgeEvidence, Facts, Residency};
use lotsa_core::program::{self, Bundle, Need};
use lotsa_core::text::{Lang, Reasoned};
use lotsa_core::{geo, identity, referral};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

// --- the FFI bodies, without the FFI --------------------------------------------------------

static ENGLISH: AtomicBool = AtomicBool::new(false);

fn language() -> Lang {
    if ENGLISH.load(Ordering::Relaxed) {
        Lang::En
    } else {
        Lang::Sv
    }
}

fn parse_date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").expect("a date")
}

#[allow(dead_code)]
struct IdentityCheck {
    kind: u8,
    normalized: String,
    birth_date: String,
    age: Option<u32>,
    age_min: u32,
    age_max: u32,
}

fn check_identity_number(number: &str, on: Option<&str>) -> IdentityCheck {
    let on = match on {
        Some(d) => parse_date(d),
        None => SystemClock.today(),
    };
    let n = identity::parse(number, on).expect("valid");
    let age = n.age_on(on);
    IdentityCheck {
        kind: match n.kind() {
            identity::IdKind::Personnummer => 0,
            identity::IdKind::Samordningsnummer => 1,
        },
        normalized: n.normalized().to_string(),
        birth_date: n.birth().to_iso(),
        age: age.exact(),
        age_min: age.min,
        age_max: age.max,
    }
}

#[allow(dead_code)]
#[derive(Clone)]
struct Municipality {
    kommunkod: String,
    name: String,
    county_code: String,
    county_name: String,
}

impl From<&geo::Municipality> for Municipality {
    fn from(m: &geo::Municipality) -> Municipality {
        Municipality {
            kommunkod: m.code.to_string(),
            name: m.name.to_string(),
            county_code: m.county_code.to_string(),
            county_name: m.county().name.to_string(),
        }
    }
}

fn find_municipality(query: &str) -> Municipality {
    geo::find_municipality(query).expect("known").into()
}

fn all_municipalities() -> Vec<Municipality> {
    geo::municipalities().iter().map(Municipality::from).collect()
}

fn municipalities_for_postal_code(postal_code: &str) -> Vec<Municipality> {
    let hint = geo::postal_hint(postal_code).expect("known");
    hint.municipalities.into_iter().map(Municipality::from).collect()
}

fn normalize_phone(phone: &str) -> String {
    referral::normalize_phone(phone).expect("valid")
}

fn validate_contact(contact: referral::ContactDetails) -> referral::ContactDetails {
    let v = contact.validate().expect("valid");
    referral::ContactDetails {
        name: v.name,
        phone: v.phone,
        language: v.language,
        best_time: v.best_time,
        note: v.note,
    }
}

#[allow(dead_code)]
struct ProgramInfo {
    id: String,
    name: String,
    operator: String,
    municipalities: Vec<Municipality>,
    minimum_age: u32,
    clinic_name: String,
    callback_promise: String,
    fields: Vec<(String, u8)>,
    script_languages: Vec<String>,
    provisional_allowed: bool,
    draft_lifetime_hours: u32,
}

fn program_info(p: &program::Program) -> ProgramInfo {
    ProgramInfo {
        id: p.id.clone(),
        name: p.name.clone(),
        operator: p.operator.clone(),
        municipalities: p
            .eligibility
            .kommunkoder
            .iter()
            .filter_map(|k| geo::municipality_by_code(k))
            .map(Municipality::from)
            .collect(),
        minimum_age: p.eligibility.minimum_age,
        clinic_name: p.clinic.name.clone(),
        callback_promise: p.callback_promise.get(language()).to_string(),
        fields: program::Field::ALL
            .iter()
            .map(|f| {
                (
                    f.as_str().to_string(),
                    match p.fields.need(*f) {
                        Need::Required => 0,
                        Need::Optional => 1,
                        Need::Never => 2,
                    },
                )
            })
            .collect(),
        script_languages: p
            .consent_scripts
            .iter()
            .map(|s| s.language.code().to_string())
            .collect(),
        provisional_allowed: p.eligibility.provisional_allowed,
        draft_lifetime_hours: p.draft_lifetime_hours,
    }
}

fn load(signed: &str, trust_key: &str) -> Bundle {
    let key = PublicKey::from_b64(trust_key).expect("a key");
    program::verify(signed, &key, SystemClock.now()).expect("verifies")
}

fn find<'a>(bundle: &'a Bundle, id: &str) -> &'a program::Program {
    bundle.program(id).expect("known program")
}

#[allow(dead_code)]
struct ConsentScript {
    id: String,
    version: u32,
    language: String,
    text: String,
    sha256: String,
}

fn consent_script(bundle: &Bundle, program_id: &str, language: &str) -> ConsentScript {
    let p = find(bundle, program_id);
    let lang = Lang::parse(language).expect("sv or en");
    let s = p.consent_script(lang).expect("a script");
    ConsentScript {
        id: s.id.clone(),
        version: s.version,
        language: s.language.code().to_string(),
        text: s.text.clone(),
        sha256: s.sha256.clone(),
    }
}

struct PersonFacts {
    identity_number: Option<String>,
    birth_date: Option<String>,
    municipality: Option<String>,
    postal_code: Option<String>,
    provenance: eligibility::Provenance,
}

#[allow(dead_code)]
struct Verdict {
    program_id: String,
    outcome: u8,
    provisional: bool,
    may_refer: bool,
    reasons: Vec<(String, String)>,
    routing: Vec<(String, String, String, String, bool)>,
    age_min: Option<u32>,
    age_max: Option<u32>,
    kommunkod: Option<String>,
}

fn to_facts(f: &PersonFacts, today: NaiveDate) -> Facts {
    let present = |o: &Option<String>| {
        o.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let mut facts = Facts::default();
    if let Some(n) = present(&f.identity_number) {
        facts.age = Some(AgeEvidence::Number(identity::parse(&n, today).expect("valid")));
    } else if let Some(d) = present(&f.birth_date) {
        facts.age = Some(AgeEvidence::BirthDate(
            identity::parse_birth_date(&d, today).expect("valid"),
        ));
    }
    if let Some(m) = present(&f.municipality) {
        facts.residency = Some(Residency::from_municipality(&m, f.provenance).expect("known"));
    } else if let Some(p) = present(&f.postal_code) {
        facts.residency = Some(Residency::from_postal_code(&p, f.provenance).expect("known"));
    }
    facts
}

fn assess(bundle: &Bundle, program_id: &str, facts: &PersonFacts, on: Option<&str>) -> Verdict {
    let p = find(bundle, program_id);
    let today = match on {
        Some(d) => parse_date(d),
        None => SystemClock.today(),
    };
    let facts = to_facts(facts, today);
    let v = eligibility::assess(&facts, bundle, p, today);
    let lang = language();
    Verdict {
        program_id: v.program_id.clone(),
        outcome: match v.outcome {
            eligibility::Outcome::Eligible => 0,
            eligibility::Outcome::NotEligible => 1,
            eligibility::Outcome::Undetermined => 2,
        },
        provisional: v.provisional,
        may_refer: v.may_refer,
        reasons: v
            .reasons
            .iter()
            .map(|r| (r.code().to_string(), r.message(lang)))
            .collect(),
        routing: v
            .routing
            .iter()
            .map(|r| {
                (
                    r.program_id.clone(),
                    r.program_name.clone(),
                    r.clinic_name.clone(),
                    r.callback_promise.get(lang).to_string(),
                    r.provisional,
                )
            })
            .collect(),
        age_min: v.basis.age_min,
        age_max: v.basis.age_max,
        kommunkod: v.basis.kommunkod.clone(),
    }
}

#[allow(dead_code)]
struct ConsentReceipt {
    consent_id: String,
    recipient: String,
    data_items: Vec<String>,
    script_id: String,
    script_version: u32,
    script_sha256: String,
    given_at: String,
}

fn validate_consent(bundle: &Bundle, program_id: &str, language: &str) -> ConsentReceipt {
    let p = find(bundle, program_id);
    let lang = Lang::parse(language).expect("sv or en");
    let now = to_stockholm(SystemClock.now());
    let mut record = ConsentRecord::for_program(
        p,
        lang,
        referral::new_referral_id(),
        "referral-0001".to_string(),
        now,
        consent::Method::Verbal {
            witness: "P-4711".to_string(),
        },
        consent::Recorder {
            role: consent::Role::Police,
            officer_id: "P-1234".to_string(),
            unit: "Polisen City, Sergels torg".to_string(),
        },
        true,
        true,
        consent::Capacity::Adequate,
    )
    .expect("a record");
    record.script.version = 1;
    record.validate(p).expect("valid");
    ConsentReceipt {
        consent_id: record.consent_id,
        recipient: record.recipient,
        data_items: record
            .data_items
            .iter()
            .map(|f| f.as_str().to_string())
            .collect(),
        script_id: record.script.id,
        script_version: record.script.version,
        script_sha256: record.script.sha256,
        given_at: record.given_at.to_rfc3339(),
    }
}

// --- timing ---------------------------------------------------------------------------------

const ROUNDS: usize = 7;
const ROUND_TIME: Duration = Duration::from_millis(150);

/// Calibrates the iterations so one round takes about ROUND_TIME, then times ROUNDS rounds.
/// Returns (median ns/call, min ns/call, iterations per round).
fn time<R>(mut f: impl FnMut() -> R) -> (f64, f64, u64) {
    let mut n: u64 = 1;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            black_box(f());
        }
        let e = t.elapsed();
        if e >= ROUND_TIME / 4 {
            n = ((n as f64) * ROUND_TIME.as_secs_f64() / e.as_secs_f64()).ceil() as u64;
            break;
        }
        n *= 4;
    }
    let mut per_call: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                black_box(f());
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    per_call.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (per_call[ROUNDS / 2], per_call[0], n)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: rust_cost <fixtures-dir> <out.json>");
        std::process::exit(2);
    }
    let dir = std::path::Path::new(&args[1]);
    let signed = std::fs::read_to_string(dir.join("bundle.json")).expect("bundle.json");
    let trust = std::fs::read_to_string(dir.join("admin.pub")).expect("admin.pub");
    let trust = trust.trim().to_string();
    let bundle = load(&signed, &trust);

    const ON: &str = "2026-11-23";
    const ADULT: &str = "199004121233";
    let stockholm = PersonFacts {
        identity_number: Some(ADULT.into()),
        birth_date: None,
        municipality: Some("Stockholm".into()),
        postal_code: None,
        provenance: eligibility::Provenance::Document,
    };
    let gislaved = PersonFacts {
        identity_number: Some(ADULT.into()),
        birth_date: None,
        municipality: Some("Gislaved".into()),
        postal_code: None,
        provenance: eligibility::Provenance::Document,
    };
    // Sanity: the same verdicts as the binding tests.
    assert_eq!(assess(&bundle, "lots-for-livet", &stockholm, Some(ON)).outcome, 0);
    let routed = assess(&bundle, "lots-for-livet", &gislaved, Some(ON));
    assert_eq!((routed.outcome, routed.routing.len()), (1, 2));
    assert_eq!(check_identity_number(ADULT, Some(ON)).age, Some(36));

    let mut results: Vec<(&str, (f64, f64, u64))> = Vec::new();
    results.push(("core_version", time(|| env!("CARGO_PKG_VERSION").to_string())));
    results.push(("check_identity_number", time(|| check_identity_number(black_box(ADULT), Some(ON)))));
    results.push(("find_municipality", time(|| find_municipality(black_box("Gislaved")))));
    results.push((
        "municipalities_for_postal_code",
        time(|| municipalities_for_postal_code(black_box("111 22"))),
    ));
    results.push(("normalize_phone", time(|| normalize_phone(black_box("070-123 45 67")))));
    results.push((
        "validate_contact",
        time(|| {
            validate_contact(referral::ContactDetails {
                name: Some("Anna".into()),
                phone: Some("070-123 45 67".into()),
                language: None,
                best_time: Some("efter 17".into()),
                note: None,
            })
        }),
    ));
    results.push(("all_municipalities", time(all_municipalities)));
    results.push(("ProgramBundle.load", time(|| load(black_box(&signed), &trust))));
    results.push((
        "programs",
        time(|| bundle.programs().iter().map(program_info).collect::<Vec<_>>()),
    ));
    results.push((
        "consent_script",
        time(|| consent_script(&bundle, "lots-for-livet", "sv")),
    ));
    results.push((
        "assess (eligible)",
        time(|| assess(&bundle, "lots-for-livet", black_box(&stockholm), Some(ON))),
    ));
    results.push((
        "assess (routed)",
        time(|| assess(&bundle, "lots-for-livet", black_box(&gislaved), Some(ON))),
    ));
    results.push((
        "validate_consent",
        time(|| validate_consent(&bundle, "lots-for-livet", "sv")),
    ));

    let mut json = String::from("{\n  \"language\": \"rust\",\n  \"results\": {\n");
    for (i, (name, (median, min, n))) in results.iter().enumerate() {
        println!("{name:32} {median:>12.0} ns/call (min {min:.0}, {n} calls/round)");
        json.push_str(&format!(
            "    \"{name}\": {{\"ns_median\": {median:.1}, \"ns_min\": {min:.1}, \"iterations\": {n}}}{}\n",
            if i + 1 < results.len() { "," } else { "" }
        ));
    }
    json.push_str("  }\n}\n");
    std::fs::write(&args[2], json).expect("write the results");
}
