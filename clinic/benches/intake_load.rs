//! Intake under load: 1, 8 and 64 concurrent devices post distinct signed referrals over HTTPS
//! keep-alive on loopback to the clinic service, running as its own process (this binary started
//! again in the server role), against a baseline measured in the same run on the same disk: a
//! bare rusqlite loop that durably inserts the same bytes, one commit each.
//!
//! `cargo bench -p lotsa-clinic --bench intake_load` prints a table and one JSON line. Not in CI.

#[path = "../tests/support/mod.rs"]
mod support;

use chrono::Utc;
use lotsa_clinic::home::{Home, InitOptions};
use lotsa_clinic::intake::{code_hash, new_enrolment_code, DeviceRate};
use lotsa_clinic::serve::prepare;
use lotsa_clinic::server::{start, Limits};
use lotsa_clinic::storage::Storage;
use lotsa_core::crypto::{unb64, PublicKey, SigningKey};
use lotsa_core::protocol::EnrolmentRequest;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{http_client, payload, post, uuid, Device, SealTo, Signed};

/// (concurrent devices, referrals each).
const LEVELS: [(usize, usize); 3] = [(1, 400), (8, 150), (64, 40)];
const BASELINE_INSERTS: usize = 400;

fn main() {
    if let Ok(dir) = std::env::var("LOTSA_BENCH_SERVE") {
        serve(Path::new(&dir));
        return;
    }
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("intake-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    run(&root);
    let _ = std::fs::remove_dir_all(&root);
}

/// The server role: the clinic in `dir`, on an ephemeral port printed on stdout.
fn serve(dir: &Path) {
    let home = Home::new(dir.join("clinic"));
    let bundle = std::fs::read_to_string(dir.join("bundle.json")).unwrap();
    let admin = PublicKey::from_b64(
        std::fs::read_to_string(dir.join("admin.pub"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let port: u16 = std::fs::read_to_string(dir.join("port"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let ready = prepare(
        &home,
        &bundle,
        &admin,
        Utc::now(),
        Limits::default(),
        DeviceRate::default(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let running = start(listener, ready.tls, ready.service);
        println!("ready");
        // Until the parent closes stdin.
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await;
        running.stop().await;
    });
}

struct Setup {
    endpoint: String,
    addr: SocketAddr,
    seal_to: SealTo,
    clinic_dir: PathBuf,
}

fn run(root: &Path) {
    // The baseline on the same disk, first.
    let envelope_bytes = {
        let pair = lotsa_core::crypto::seal::ClinicKeyPair::generate().unwrap();
        let to = SealTo {
            public_key: pair.public_key(),
            key_id: "hpke-x".into(),
        };
        let id = uuid();
        Device::new("https://localhost")
            .envelope(&to, &id, &payload(&id, Utc::now()))
            .to_json()
    };
    let receipt_like = vec![b'r'; 520];
    let baseline = bare_inserts(&root.join("baseline.db"), &envelope_bytes, &receipt_like);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("https://localhost:{port}/lots-for-livet");
    let home = Home::new(root.join("clinic"));
    let clinic = home
        .init(
            &InitOptions {
                name: "Bench".into(),
                endpoint: endpoint.clone(),
                provided_tls: None,
            },
            Utc::now(),
        )
        .unwrap();
    let admin = SigningKey::generate().unwrap();
    std::fs::write(
        root.join("bundle.json"),
        support::bundle_for(&clinic, &admin),
    )
    .unwrap();
    std::fs::write(root.join("admin.pub"), admin.public_key_b64()).unwrap();
    std::fs::write(root.join("port"), port.to_string()).unwrap();
    let key = &clinic.hpke_keys[0];
    let setup = Setup {
        endpoint,
        addr: ([127, 0, 0, 1], port).into(),
        seal_to: SealTo {
            public_key: unb64(&key.public_key, "k").unwrap().try_into().unwrap(),
            key_id: key.key_id.clone(),
        },
        clinic_dir: home.dir().to_path_buf(),
    };

    let mut server = Command::new(std::env::current_exe().unwrap())
        .env("LOTSA_BENCH_SERVE", root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let storage = Storage::open(&home.database()).unwrap();
    let mut rows = Vec::new();
    for (devices, each) in LEVELS {
        let mut fleet = Vec::new();
        for _ in 0..devices {
            let code = new_enrolment_code().unwrap();
            storage
                .add_enrolment_code(code_hash(&code), Utc::now().timestamp() + 3600)
                .unwrap();
            let mut device = Device::new(&setup.endpoint);
            let client = http_client(&setup.clinic_dir, setup.addr);
            let body = EnrolmentRequest::new(&code, &device.key.public_key()).to_json();
            let req = device.request("/v1/devices", body, Utc::now());
            assert_eq!(rt.block_on(post(&client, &req)).unwrap().0, 201);
            // Signed before the clock starts: the load measures the service, not the signing.
            let requests: Vec<Signed> = (0..each)
                .map(|_| {
                    let id = uuid();
                    let e = device.envelope(&setup.seal_to, &id, &payload(&id, Utc::now()));
                    device.delivery(&e, Utc::now())
                })
                .collect();
            fleet.push((client, requests));
        }
        let cpu_server_0 = process_cpu(server.id());
        let cpu_self_0 = self_cpu();
        let started = Instant::now();
        let latencies: Vec<Duration> = rt.block_on(async {
            let tasks: Vec<_> = fleet
                .into_iter()
                .map(|(client, requests)| {
                    tokio::spawn(async move {
                        let mut times = Vec::new();
                        for req in &requests {
                            let t = Instant::now();
                            let (status, _) = post(&client, req).await.unwrap();
                            assert_eq!(status, 201);
                            times.push(t.elapsed());
                        }
                        times
                    })
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all
        });
        let wall = started.elapsed().as_secs_f64();
        let server_cpu = process_cpu(server.id()) - cpu_server_0;
        let load_cpu = self_cpu() - cpu_self_0;
        let mut sorted = latencies.clone();
        sorted.sort();
        let pct = |p: f64| {
            sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64()
                * 1000.0
        };
        let per_sec = latencies.len() as f64 / wall;
        rows.push(Row {
            devices,
            referrals: latencies.len(),
            per_sec,
            ratio: per_sec / baseline,
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            server_cpu: server_cpu / wall,
            load_cpu: load_cpu / wall,
        });
    }
    let peak_rss_mib = peak_rss_kib(server.id()) as f64 / 1024.0;
    drop(server.stdin.take());
    let _ = server.wait();
    report(baseline, &rows, peak_rss_mib);
}

struct Row {
    devices: usize,
    referrals: usize,
    per_sec: f64,
    ratio: f64,
    p50_ms: f64,
    p99_ms: f64,
    server_cpu: f64,
    load_cpu: f64,
}

fn report(baseline: f64, rows: &[Row], rss: f64) {
    println!("baseline: bare rusqlite, one durable commit per insert (WAL, synchronous=FULL): {baseline:.0} inserts/s");
    println!("| devices | referrals | accepted/s | × baseline | p50 ms | p99 ms | server CPU | load CPU |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.1} | {:.1} | {:.0}% | {:.0}% |",
            r.devices,
            r.referrals,
            r.per_sec,
            r.ratio,
            r.p50_ms,
            r.p99_ms,
            r.server_cpu * 100.0,
            r.load_cpu * 100.0
        );
    }
    println!("service peak RSS: {rss:.1} MiB (2 cores shared by service and load)");
    let levels: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{{\"devices\":{},\"referrals\":{},\"per_sec\":{:.1},\"ratio\":{:.3},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"server_cpu\":{:.3},\"load_cpu\":{:.3}}}",
                r.devices, r.referrals, r.per_sec, r.ratio, r.p50_ms, r.p99_ms, r.server_cpu, r.load_cpu
            )
        })
        .collect();
    println!(
        "{{\"bench\":\"intake_load\",\"baseline_inserts_per_sec\":{baseline:.1},\"peak_rss_mib\":{rss:.1},\"levels\":[{}]}}",
        levels.join(",")
    );
}

/// The baseline: the same bytes, inserted one durable commit at a time.
fn bare_inserts(path: &Path, sealed: &[u8], receipt: &[u8]) -> f64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(
        "CREATE TABLE t (id TEXT PRIMARY KEY, sealed BLOB, receipt BLOB, at INTEGER)",
    )
    .unwrap();
    let started = Instant::now();
    for i in 0..BASELINE_INSERTS {
        conn.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![format!("{i:08}"), sealed, receipt, i as i64],
        )
        .unwrap();
    }
    BASELINE_INSERTS as f64 / started.elapsed().as_secs_f64()
}

/// CPU seconds (user + system) of a process, from /proc.
fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; 12 and 13 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

fn self_cpu() -> f64 {
    process_cpu(std::process::id())
}

/// Peak resident set (VmHWM) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
