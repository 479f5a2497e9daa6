//! The Rust side of the FFI cost comparison (bindings/bench/ffi_cost.sh builds and runs it).
//!
//! For each exported call of `lotsa-ffi`, this times that very function called from Rust, as a
//! Rust function of the `lotsa_ffi` library: the same core calls and the same conversion into the
//! FFI's owned records (Strings, Vecs, texts in the app's language), on the same inputs and the
//! same bundle the Python and Kotlin timings use. What it leaves out is exactly the FFI: lowering
//! the arguments, serialising records into a RustBuffer, the foreign side lifting them into its
//! own objects, and the call-status check. So `Python − Rust` and `Kotlin − Rust` are the cost
//! of crossing the boundary. (It calls the exported functions themselves, so nothing here can
//! drift from `bindings/src`.)
//!
//! Usage: rust_cost <fixtures-dir> <out.json>   (fixtures: bundle.json + admin.pub)
//! Output: JSON {"language": "rust", "results": {case: {"ns_median": .., "ns_min": .., "iterations": ..}}}

use lotsa_ffi::lookup::{self, ContactDetails};
use lotsa_ffi::programs::{
    Capacity, ConsentInput, ConsentMethod, Outcome, PersonFacts, ProgramBundle, Provenance, Role,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

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
    let bundle = ProgramBundle::load(signed.clone(), trust.clone()).expect("the bundle verifies");
    let on = || Some("2026-11-23".to_string());

    const ADULT: &str = "199004121233";
    let facts = |municipality: &str| PersonFacts {
        identity_number: Some(ADULT.into()),
        birth_date: None,
        municipality: Some(municipality.into()),
        postal_code: None,
        provenance: Provenance::Document,
    };
    let (stockholm, gislaved) = (facts("Stockholm"), facts("Gislaved"));
    let consent = || ConsentInput {
        program_id: "lots-for-livet".into(),
        subject_ref: "d7a1f000-0000-4000-8000-000000000002".into(),
        language: "sv".into(),
        script_version: 1,
        method: ConsentMethod::Verbal {
            witness: "P-4711".into(),
        },
        role: Role::Police,
        officer_id: "P-1234".into(),
        unit: "Polisen City".into(),
        told_no_effect_on_police_matter: true,
        told_can_withdraw: true,
        capacity: Capacity::Adequate,
        share_personnummer: false,
    };
    // Sanity: the same verdicts as the binding tests.
    let assess = |f: &PersonFacts| {
        bundle
            .assess("lots-for-livet".into(), f.clone(), on())
            .expect("a verdict")
    };
    assert_eq!(assess(&stockholm).outcome, Outcome::Eligible);
    let routed = assess(&gislaved);
    assert_eq!((routed.outcome, routed.routing.len()), (Outcome::NotEligible, 2));
    let id = lookup::check_identity_number(ADULT.into(), on()).expect("valid");
    assert_eq!(id.age, Some(36));

    let mut results: Vec<(&str, (f64, f64, u64))> = Vec::new();
    results.push(("core_version", time(lotsa_ffi::core_version)));
    results.push((
        "check_identity_number",
        time(|| lookup::check_identity_number(black_box(ADULT).into(), on())),
    ));
    results.push((
        "find_municipality",
        time(|| lookup::find_municipality(black_box("Gislaved").into())),
    ));
    results.push((
        "municipalities_for_postal_code",
        time(|| lookup::municipalities_for_postal_code(black_box("111 22").into())),
    ));
    results.push((
        "normalize_phone",
        time(|| lookup::normalize_phone(black_box("070-123 45 67").into())),
    ));
    results.push((
        "validate_contact",
        time(|| {
            lookup::validate_contact(ContactDetails {
                name: Some("Anna".into()),
                phone: Some("070-123 45 67".into()),
                language: None,
                best_time: Some("efter 17".into()),
                note: None,
            })
        }),
    ));
    results.push(("all_municipalities", time(lookup::all_municipalities)));
    results.push((
        "ProgramBundle.load",
        time(|| ProgramBundle::load(black_box(signed.clone()), trust.clone())),
    ));
    results.push(("programs", time(|| bundle.programs())));
    results.push((
        "consent_script",
        time(|| bundle.consent_script("lots-for-livet".into(), "sv".into())),
    ));
    results.push(("assess (eligible)", time(|| assess(black_box(&stockholm)))));
    results.push(("assess (routed)", time(|| assess(black_box(&gislaved)))));
    results.push((
        "validate_consent",
        time(|| bundle.validate_consent(consent()).expect("valid")),
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
