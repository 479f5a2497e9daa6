//! Benchmarks of the two things an officer waits for on the street: checking a typed number and
//! getting a verdict. `baseline/parse_date` (chrono parsing one ISO date) runs in the same process
//! so the figures can be read as ratios, independent of the machine.
//!
//! Run: `cargo bench -p lotsa-core --bench core -- --warm-up-time 1 --measurement-time 3`

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lotsa_core::crypto::SigningKey;
use lotsa_core::eligibility::{self, AgeEvidence, Facts, Outcome, Provenance, Residency};
use lotsa_core::identity::{self, compose};
use lotsa_core::program::{self, ProgramSet, EXAMPLE_PROGRAMS_JSON};
use std::hint::black_box;

/// The Stockholm date every benchmark decides on.
fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

/// A small deterministic generator (xorshift64*), so every run parses the same numbers.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// 1,000 numbers as officers type them: every written form, about half valid; the invalid ones
/// are the usual mistakes (a wrong digit, a missing digit, a stray letter, serial 000).
fn number_mix() -> Vec<String> {
    let mut rng = Rng(0x0B5E_55ED_CAFE_F00D);
    let first = NaiveDate::from_ymd_opt(1930, 1, 1).unwrap();
    let span = (today() - first).num_days() as u64;
    (0..1000)
        .map(|_| {
            let born = first + Duration::days(rng.below(span + 1) as i64);
            let twelve = compose(born, 1 + rng.below(999) as u16, rng.below(5) == 0);
            let written = match rng.below(4) {
                0 => twelve.clone(),
                1 => format!("{}-{}", &twelve[..8], &twelve[8..]),
                2 => twelve[2..].to_string(),
                _ => format!("{}-{}", &twelve[2..8], &twelve[8..]),
            };
            match rng.below(8) {
                0..=3 => written,
                4 => {
                    let mut b = written.into_bytes();
                    let last = b.len() - 1;
                    b[last] = b'0' + (b[last] - b'0' + 1) % 10;
                    String::from_utf8(b).unwrap()
                }
                5 => written[1..].to_string(),
                6 => format!("{}x{}", &written[..4], &written[4..]),
                _ => compose(born, 0, false),
            }
        })
        .collect()
}

fn id_check(c: &mut Criterion) {
    let numbers = number_mix();
    let on = today();
    let valid = numbers
        .iter()
        .filter(|n| identity::parse(n, on).is_ok())
        .count();
    assert!(
        (400..=600).contains(&valid),
        "the mix is about half valid, got {valid} of 1000"
    );
    let mut group = c.benchmark_group("id_check");
    group.throughput(Throughput::Elements(numbers.len() as u64));
    group.bench_function("parse_mix_1000", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for n in &numbers {
                if identity::parse(black_box(n), on).is_ok() {
                    ok += 1;
                }
            }
            ok
        })
    });
    group.finish();
}

fn eligibility_verdict(c: &mut Criterion) {
    let key = SigningKey::generate().expect("a key");
    let signed = ProgramSet::from_json(EXAMPLE_PROGRAMS_JSON)
        .expect("the example set")
        .sign(&key)
        .expect("signs");
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 11, 0, 0).unwrap();
    let bundle = program::verify(&signed, &key.public_key(), now).expect("verifies");
    let program = bundle.program("lots-for-livet").expect("lots-for-livet");
    let number = compose(NaiveDate::from_ymd_opt(1990, 4, 12).unwrap(), 123, false);
    let facts = Facts {
        age: Some(AgeEvidence::Number(
            identity::parse(&number, today()).expect("valid"),
        )),
        residency: Some(
            Residency::from_municipality("Gislaved", Provenance::Document).expect("Gislaved"),
        ),
    };
    // The path measured: not eligible here, routed to the two Snäckan programs.
    let v = eligibility::assess(&facts, &bundle, program, today());
    assert_eq!(v.outcome, Outcome::NotEligible);
    assert_eq!(v.routing.len(), 2);
    c.bench_function("eligibility_verdict", |b| {
        b.iter(|| eligibility::assess(black_box(&facts), &bundle, program, today()))
    });
}

fn baseline(c: &mut Criterion) {
    let mut group = c.benchmark_group("baseline");
    group.bench_function("parse_date", |b| {
        b.iter(|| black_box("1990-04-12").parse::<NaiveDate>())
    });
    group.finish();
}

criterion_group!(benches, baseline, id_check, eligibility_verdict);
criterion_main!(benches);
