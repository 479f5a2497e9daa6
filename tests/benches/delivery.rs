//! Delivery from the phone: 1,000 and 10,000 queued referrals go to a clinic on loopback through
//! `sync::sync`, run in its own process (this binary started again in the device role) so its
//! peak RSS is the phone's alone. The baseline is measured in the same run, against the same
//! clinic reset to a fresh database (the phone enrolled, nothing delivered): a plain reqwest
//! keep-alive loop that signs and POSTs the same envelopes and reads each answer, with no store,
//! no lease, no receipt check and no erasure. Each size runs the device three times, each from the
//! same queued phone, with the baseline before, between and after; the table gives medians.
//!
//! `cargo bench -p lotsa-tests --bench delivery [-- N …]` prints a table and one JSON line.
//! Not in CI.

use chrono::Utc;
use lotsa_clinic::intake::DeviceRate;
use lotsa_clinic::local::LocalClinic;
use lotsa_core::clock::SystemClock;
use lotsa_core::consent::{ConsentForm, Recorder, Role};
use lotsa_core::crypto::seal::SealBinding;
use lotsa_core::crypto::vault::DevFileVault;
use lotsa_core::crypto::{PublicKey, SigningKey};
use lotsa_core::eligibility::Provenance;
use lotsa_core::program::{self, Bundle};
use lotsa_core::protocol::signature::{new_nonce, sign_request};
use lotsa_core::protocol::{Envelope, HANDOVERS_PATH, IDEMPOTENCY_KEY_HEADER, JSON};
use lotsa_core::referral::{DraftUpdate, PAYLOAD_SCHEMA_VERSION};
use lotsa_core::store::Store;
use lotsa_core::sync::{self, SyncOptions, Timeouts, Trigger};
use lotsa_tests::field::bundle_for;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SIZES: [usize; 2] = [1_000, 10_000];
/// Device runs per size; the baseline runs before, between and after them.
const ROUNDS: usize = 3;
const PROGRAM: &str = "lots-for-livet";

fn main() {
    if let Ok(dir) = std::env::var("LOTSA_BENCH_DEVICE") {
        device(Path::new(&dir));
        return;
    }
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        SIZES.to_vec()
    } else {
        sizes
    };
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("delivery-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut rows = Vec::new();
    for n in sizes {
        let dir = root.join(format!("n{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        rows.push(measure(&dir, n));
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&root);
    println!();
    println!(
        "{:>7}  {:>11}  {:>11}  {:>6}  {:>15}",
        "queued", "baseline /s", "device /s", "ratio", "device peak MiB"
    );
    for r in &rows {
        println!(
            "{:>7}  {:>11.0}  {:>11.0}  {:>5.2}×  {:>15.1}",
            r.n,
            r.baseline,
            r.device,
            r.ratio(),
            r.peak_rss_kib as f64 / 1024.0
        );
    }
    let json: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{{\"queued\":{},\"baseline_per_sec\":{:.1},\"device_per_sec\":{:.1},\"ratio\":{:.3},\"device_peak_rss_kib\":{}}}",
                r.n, r.baseline, r.device, r.ratio(), r.peak_rss_kib
            )
        })
        .collect();
    println!("{{\"bench\":\"delivery\",\"rows\":[{}]}}", json.join(","));
}

/// Medians of the rounds.
struct Row {
    n: usize,
    baseline: f64,
    device: f64,
    peak_rss_kib: u64,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.device / self.baseline
    }
}

/// The phone's files in `dir`: its store and its development vault.
fn open_store(dir: &Path) -> Store {
    let vault = DevFileVault::open(dir.join("vault")).unwrap();
    Store::open(
        &dir.join("phone.sqlite"),
        Arc::new(vault),
        Arc::new(SystemClock),
    )
    .unwrap()
}

fn measure(dir: &Path, n: usize) -> Row {
    let now = Utc::now();
    let mut clinic =
        LocalClinic::create(&dir.join("clinic"), "Mottagningen", PROGRAM, now).unwrap();
    let admin = SigningKey::generate().unwrap();
    let signed = bundle_for(clinic.clinic(), &admin, now);
    clinic.start(&signed, &admin.public_key()).unwrap();
    // One phone sends the whole queue: no per-device budget gets in the way.
    clinic
        .set_device_rate(DeviceRate {
            burst: 1_000_000,
            per_minute: 1_000_000,
        })
        .unwrap();
    std::fs::write(dir.join("bundle.json"), &signed).unwrap();
    std::fs::write(dir.join("admin.pub"), admin.public_key().to_b64()).unwrap();
    let bundle = program::verify(&signed, &admin.public_key(), now).unwrap();

    let mut store = open_store(dir);
    let code = clinic.enrolment_code().unwrap();
    sync::enrol(&mut store, &bundle, PROGRAM, &code, Timeouts::default()).unwrap();
    let fresh = dir.join("clinic-enrolled.sqlite");
    clinic.storage().unwrap().copy_to(&fresh).unwrap();

    eprint!("{n}: recording");
    let started = Instant::now();
    for i in 0..n {
        record(&mut store, &bundle);
        if i % 1000 == 999 {
            eprint!(".");
        }
    }
    eprintln!(" {:.1} s", started.elapsed().as_secs_f64());
    let envelopes = envelopes(&mut store, &bundle);
    assert_eq!(envelopes.len(), n);
    let key = store.device_identity().unwrap().key;
    let head = store.audit_head().unwrap();
    drop(store);

    let endpoint = clinic.clinic().endpoint.clone();
    let ca = clinic.clinic().tls.ca_pem.clone().unwrap();
    // The phone with its whole queue (closed, so all in the main file), to start each device
    // round from.
    assert!(!dir.join("phone.sqlite-wal").exists());
    let queued = dir.join("phone-queued.sqlite");
    std::fs::copy(dir.join("phone.sqlite"), &queued).unwrap();

    let mut baselines = Vec::new();
    let mut devices = Vec::new();
    let mut peak_rss_kib = 0;
    for round in 0..=ROUNDS {
        reset(&mut clinic, &fresh);
        let rate = baseline(&endpoint, &ca, &key, &head, &envelopes);
        assert_eq!(
            clinic.storage().unwrap().handover_count().unwrap(),
            n as i64
        );
        eprintln!("{n}: baseline {rate:.0}/s");
        baselines.push(rate);
        if round == ROUNDS {
            break;
        }
        reset(&mut clinic, &fresh);
        let phone = dir.join("phone.sqlite");
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", phone.display()));
        }
        std::fs::copy(&queued, &phone).unwrap();
        let (rate, rss) = device_round(dir, n);
        assert_eq!(
            clinic.storage().unwrap().handover_count().unwrap(),
            n as i64
        );
        eprintln!("{n}: device {rate:.0}/s, peak RSS {rss} KiB");
        devices.push(rate);
        peak_rss_kib = peak_rss_kib.max(rss);
    }
    Row {
        n,
        baseline: median(&mut baselines),
        device: median(&mut devices),
        peak_rss_kib,
    }
}

/// One device run in its own process: referrals/s and its peak RSS.
fn device_round(dir: &Path, n: usize) -> (f64, u64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .env("LOTSA_BENCH_DEVICE", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (delivered, secs, peak_rss_kib, cpu): (usize, f64, u64, f64) = (
        fields[0].parse().unwrap(),
        fields[1].parse().unwrap(),
        fields[2].parse().unwrap(),
        fields[3].parse().unwrap(),
    );
    assert_eq!(delivered, n, "the device delivered everything");
    eprintln!(
        "{n}: device CPU {:.0} µs per referral (the whole process)",
        cpu * 1e6 / n as f64
    );
    (n as f64 / secs, peak_rss_kib)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// One consented referral, finalized into the outbox.
fn record(store: &mut Store, bundle: &Bundle) {
    let id = store.create_draft(bundle, PROGRAM).unwrap();
    let fill = DraftUpdate {
        name: Some("Kim Testsson".into()),
        phone: Some("070-123 45 67".into()),
        language: Some("sv".into()),
        identity_number: Some("19900412-1233".into()),
        municipality: Some("Stockholm".into()),
        provenance: Some(Provenance::Document),
        ..DraftUpdate::default()
    };
    store.update_draft(&id, fill).unwrap();
    let officer = Recorder {
        role: Role::Police,
        officer_id: "P-1234".into(),
        unit: "Plattan".into(),
    };
    let consent = ConsentForm::complete_for_tests(officer, false);
    store.record_consent(&id, bundle, &consent).unwrap();
    store.finalize(&id, bundle).unwrap();
}

/// Every queued referral as the envelope the device sends: (handover id, body).
fn envelopes(store: &mut Store, bundle: &Bundle) -> Vec<(String, Vec<u8>)> {
    let program = bundle.program(PROGRAM).unwrap();
    let key_id = program.clinic.hpke_keys[0].key_id.clone();
    let ids: Vec<String> = store
        .queue_status()
        .unwrap()
        .items
        .into_iter()
        .map(|i| i.id)
        .collect();
    ids.into_iter()
        .map(|id| {
            let sealed = store.sealed_payload(&id).unwrap();
            let binding = SealBinding {
                handover_id: &id,
                program_id: PROGRAM,
                clinic_key_id: &key_id,
                schema_version: PAYLOAD_SCHEMA_VERSION,
            };
            let body = Envelope::new(&binding, &sealed).to_json();
            (id, body)
        })
        .collect()
}

/// The clinic again with the database it had right after the enrolment.
fn reset(clinic: &mut LocalClinic, fresh: &Path) {
    clinic.stop();
    let db = clinic.home().database();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::copy(fresh, &db).unwrap();
    clinic.resume().unwrap();
}

/// The baseline: sign and POST every envelope over one keep-alive connection; referrals/s.
fn baseline(
    endpoint: &str,
    ca_pem: &str,
    key: &SigningKey,
    head: &lotsa_core::protocol::AuditHead,
    envelopes: &[(String, Vec<u8>)],
) -> f64 {
    let config = lotsa_tests::field::trusting(ca_pem);
    let client = reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(config)
        .timeout(Duration::from_secs(15))
        .no_proxy()
        .build()
        .unwrap();
    let url = format!("{endpoint}{HANDOVERS_PATH}");
    let started = Instant::now();
    for (id, body) in envelopes {
        let nonce = new_nonce().unwrap();
        let created = Utc::now().timestamp();
        let headers = sign_request(key, "POST", &url, body, Some(head), created, &nonce)
            .unwrap()
            .headers;
        let mut request = client
            .post(&url)
            .header("content-type", JSON)
            .header(IDEMPOTENCY_KEY_HEADER, format!("\"{id}\""))
            .body(body.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let _receipt = response.bytes().unwrap();
        assert_eq!(status, 201);
    }
    envelopes.len() as f64 / started.elapsed().as_secs_f64()
}

/// The device role: open the phone in `dir`, sync until nothing is due, print
/// `delivered seconds peak_rss_kib`.
fn device(dir: &Path) {
    let admin = PublicKey::from_b64(
        std::fs::read_to_string(dir.join("admin.pub"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let signed = std::fs::read_to_string(dir.join("bundle.json")).unwrap();
    let bundle = program::verify(&signed, &admin, Utc::now()).unwrap();
    let mut store = open_store(dir);
    let options = SyncOptions {
        deadline: Duration::from_secs(3600),
        trigger: Trigger::Manual,
        ..SyncOptions::default()
    };
    let started = Instant::now();
    let mut delivered = 0;
    loop {
        let report = sync::sync(&mut store, &bundle, &options).unwrap();
        assert!(
            report.failed.is_empty() && report.retrying.is_empty(),
            "{report:?}"
        );
        if report.delivered.is_empty() {
            break;
        }
        delivered += report.delivered.len();
    }
    let secs = started.elapsed().as_secs_f64();
    println!("{delivered} {secs:.3} {} {:.3}", peak_rss_kib(), cpu_secs());
}

/// CPU time (user + system) the process has used so far, in seconds (Linux: ticks of 1/100 s).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name in parentheses: state is field 3, utime 14 and stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// The process's peak resident set (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
