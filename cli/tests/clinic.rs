//! `lotsa clinic …` as an administrator runs it: the real binary, a real clinic directory, the
//! service as its own process on 127.0.0.1 spoken to over HTTPS, and SIGKILL at random moments
//! while devices post.

#[path = "../../clinic/tests/support/mod.rs"]
mod support;

use chrono::Utc;
use lotsa_clinic::storage::Storage;
use lotsa_core::crypto::{sha256, unb64};
use lotsa_core::program::Clinic;
use lotsa_core::protocol::{EnrolmentRequest, Problem, ProblemType};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::{payload, uuid, Device, SealTo, TempDir};

const EXAMPLE: &str = include_str!("../../schemas/examples/programs.example.json");
const PASSPHRASE: &str = "a long passphrase for the test";

fn lotsa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lotsa"))
        .args(args)
        .env(
            "LOTSA_BACKUP_PASSPHRASE",
            std::env::var("TEST_PASSPHRASE").unwrap_or_else(|_| PASSPHRASE.into()),
        )
        .output()
        .expect("the lotsa binary runs")
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A clinic made with `lotsa clinic init`, its bundle signed with `--clinic`, and (when started)
/// `lotsa clinic serve` as a child process.
struct Site {
    tmp: TempDir,
    dir: PathBuf,
    port: u16,
    serve: Option<Child>,
    rt: tokio::runtime::Runtime,
    client: Option<reqwest::Client>,
}

impl Site {
    fn new() -> Site {
        let tmp = TempDir::new();
        let dir = tmp.0.join("clinic");
        let port = free_port();
        let endpoint = format!("https://localhost:{port}/lots-for-livet");
        let d = dir.to_str().unwrap();
        ok_json(&lotsa(&[
            "--json",
            "clinic",
            "init",
            "--dir",
            d,
            "--name",
            "Testmottagningen",
            "--endpoint",
            &endpoint,
        ]));
        let admin = tmp.0.join("admin");
        ok_json(&lotsa(&[
            "--json",
            "program",
            "keygen",
            "-o",
            admin.to_str().unwrap(),
        ]));
        let site = Site {
            tmp,
            dir,
            port,
            serve: None,
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            client: None,
        };
        site.sign_bundle();
        site
    }

    fn d(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    fn endpoint(&self) -> String {
        format!("https://localhost:{}/lots-for-livet", self.port)
    }

    /// The example set, issued now, with this clinic's endpoint, signed with `--clinic`.
    fn sign_bundle(&self) {
        self.sign_bundle_as("bundle.json", |_| {});
    }

    /// The same, changed first, into another file.
    fn sign_bundle_as(&self, file: &str, change: impl Fn(&mut Value)) {
        let mut set: Value = serde_json::from_str(EXAMPLE).unwrap();
        set["issued_at"] = Value::String(Utc::now().format("%Y-%m-%dT%H:%M:%S+00:00").to_string());
        for p in set["programs"].as_array_mut().unwrap() {
            if p["id"] == support::PROGRAM {
                p["clinic"]["endpoint"] = Value::String(self.endpoint());
            }
        }
        change(&mut set);
        let unsigned = self.tmp.0.join("set.json");
        std::fs::write(&unsigned, serde_json::to_vec(&set).unwrap()).unwrap();
        let clinic_json = self.dir.join("clinic.json");
        ok_json(&lotsa(&[
            "--json",
            "program",
            "sign",
            unsigned.to_str().unwrap(),
            "--key",
            self.tmp.0.join("admin.key").to_str().unwrap(),
            "-o",
            self.tmp.0.join(file).to_str().unwrap(),
            "--force",
            "--clinic",
            clinic_json.to_str().unwrap(),
        ]));
    }

    fn clinic(&self) -> Clinic {
        serde_json::from_slice(&std::fs::read(self.dir.join("clinic.json")).unwrap()).unwrap()
    }

    /// The arguments of `lotsa clinic serve` for this site.
    fn serve_args(&self) -> Vec<String> {
        let path = |f: &str| self.tmp.0.join(f).display().to_string();
        let args = ["--json", "clinic", "serve", "--dir", self.d(), "--bundle"];
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.extend([path("bundle.json"), "--trust".into(), path("admin.pub")]);
        args.extend(["--bind".into(), format!("127.0.0.1:{}", self.port)]);
        args
    }

    /// Starts `lotsa clinic serve` and waits until it is listening.
    fn start(&mut self) {
        let (child, started) = spawn_serve(&self.serve_args());
        assert_eq!(
            started["listening"],
            format!("https://127.0.0.1:{}", self.port)
        );
        assert_eq!(started["programs"], serde_json::json!(["lots-for-livet"]));
        self.serve = Some(child);
        if self.client.is_none() {
            self.client = Some(self.make_client());
        }
    }

    fn kill(&mut self) {
        sigkill(self.serve.take());
    }

    fn make_client(&self) -> reqwest::Client {
        support::http_client(&self.dir, ([127, 0, 0, 1], self.port).into())
    }

    fn seal_to(&self) -> SealTo {
        let key = self.clinic().hpke_keys.last().cloned().unwrap();
        SealTo {
            public_key: unb64(&key.public_key, "key").unwrap().try_into().unwrap(),
            key_id: key.key_id,
        }
    }

    /// Posts a signed request; None when the connection failed (the service was killed).
    fn post(&self, req: &support::Signed) -> Option<(u16, Vec<u8>)> {
        let client = self.client.as_ref().unwrap();
        self.rt.block_on(support::post(client, req))
    }

    /// `GET /v1/health`'s status, or None when nothing answers.
    fn get_health(&self) -> Option<u16> {
        let client = self.client.as_ref()?;
        let url = format!("{}/v1/health", self.endpoint());
        self.rt.block_on(async {
            client
                .get(url)
                .send()
                .await
                .ok()
                .map(|r| r.status().as_u16())
        })
    }

    fn enrolled_device(&self) -> Device {
        let code = ok_json(&lotsa(&[
            "--json",
            "clinic",
            "enrol-code",
            "--dir",
            self.d(),
        ]));
        let code = code["code"].as_str().unwrap().to_string();
        let mut device = Device::new(&self.endpoint());
        let body = EnrolmentRequest::new(&code, &device.key.public_key()).to_json();
        let (status, body) = self
            .post(&device.request("/v1/devices", body, Utc::now()))
            .unwrap();
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        device
    }

    fn referral(&self, device: &mut Device) -> (String, support::Signed) {
        let id = uuid();
        let envelope = device.envelope(&self.seal_to(), &id, &payload(&id, Utc::now()));
        (id, device.delivery(&envelope, Utc::now()))
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `lotsa clinic serve --json …` and returns it with the line it printed on starting.
fn spawn_serve(args: &[String]) -> (Child, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lotsa"))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let started = serde_json::from_str(&line).expect("serve prints where it listens");
    (child, started)
}

fn problem_code(body: &[u8]) -> Option<&'static str> {
    Problem::from_json(body)
        .and_then(|p| p.problem_type())
        .map(ProblemType::code)
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_makes_owner_only_keys_and_a_clinic_json_that_program_sign_merges() {
    let site = Site::new();
    #[cfg(unix)]
    {
        assert_eq!(mode(&site.dir), 0o700);
        for file in [
            "clinic.json",
            "keys/receipt.key",
            "tls/key.pem",
            "tls/ca.key",
            "tls/backup-key.pem",
        ] {
            assert_eq!(mode(&site.dir.join(file)), 0o600, "{file}");
        }
    }
    let clinic = site.clinic();
    assert_eq!(clinic.endpoint, site.endpoint());
    assert_eq!(clinic.tls.spki_sha256_pins.len(), 2);
    // rotate-tls moves the server to the spare key (its pin was the second) and makes a new
    // spare, every file still owner-only.
    let spare = std::fs::read(site.dir.join("tls/backup-key.pem")).unwrap();
    let rotated = ok_json(&lotsa(&[
        "--json",
        "clinic",
        "rotate-tls",
        "--dir",
        site.d(),
    ]));
    assert_eq!(
        rotated["spki_pins"][0],
        clinic.tls.spki_sha256_pins[1].as_str()
    );
    assert_eq!(std::fs::read(site.dir.join("tls/key.pem")).unwrap(), spare);
    assert_ne!(
        std::fs::read(site.dir.join("tls/backup-key.pem")).unwrap(),
        spare
    );
    assert_eq!(
        site.clinic().tls.spki_sha256_pins,
        rotated["spki_pins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    );
    #[cfg(unix)]
    for file in [
        "clinic.json",
        "tls/key.pem",
        "tls/cert.pem",
        "tls/backup-key.pem",
    ] {
        assert_eq!(mode(&site.dir.join(file)), 0o600, "{file}");
    }
    site.sign_bundle();
    let clinic = site.clinic();
    assert!(clinic
        .tls
        .ca_pem
        .as_deref()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    // The signed bundle carries exactly clinic.json for the program that names its endpoint.
    let verified = ok_json(&lotsa(&[
        "--json",
        "program",
        "verify",
        site.tmp.0.join("bundle.json").to_str().unwrap(),
        "--trust",
        site.tmp.0.join("admin.pub").to_str().unwrap(),
    ]));
    assert!(verified.to_string().contains("lots-for-livet"));

    // init never overwrites a clinic.
    let again = lotsa(&[
        "--json",
        "clinic",
        "init",
        "--dir",
        site.d(),
        "--name",
        "X",
        "--endpoint",
        "https://localhost:1",
    ]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stdout).contains("not empty"));
    assert_eq!(site.clinic(), clinic);
    // A clinic.json whose endpoint no program names is refused, naming the option.
    let other = site.tmp.0.join("other");
    ok_json(&lotsa(&[
        "--json",
        "clinic",
        "init",
        "--dir",
        other.to_str().unwrap(),
        "--name",
        "Annan",
        "--endpoint",
        "https://elsewhere.example",
    ]));
    let refused = lotsa(&[
        "--json",
        "program",
        "sign",
        site.tmp.0.join("set.json").to_str().unwrap(),
        "--key",
        site.tmp.0.join("admin.key").to_str().unwrap(),
        "-o",
        site.tmp.0.join("other-bundle.json").to_str().unwrap(),
        "--clinic",
        other.join("clinic.json").to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(error["error"]["field"], "clinic");
    assert!(!site.tmp.0.join("other-bundle.json").exists());
}

#[test]
fn codes_revocations_and_key_rotation_from_the_command_line_reach_the_running_service() {
    let mut site = Site::new();
    site.start();
    let mut device = site.enrolled_device();
    let listed = ok_json(&lotsa(&["--json", "clinic", "devices", "--dir", site.d()]));
    assert_eq!(listed["devices"][0]["device_id"], device.id());
    assert_eq!(listed["devices"][0]["revoked_at"], Value::Null);

    let (_, first) = site.referral(&mut device);
    assert_eq!(site.post(&first).unwrap().0, 201);

    // A new HPKE key: the bundle is signed again, the service restarted; a referral sealed to
    // the old key (queued on a phone with the old bundle) still opens, and one to the new too.
    let old = site.seal_to();
    let rotated = ok_json(&lotsa(&[
        "--json",
        "clinic",
        "rotate-key",
        "--dir",
        site.d(),
    ]));
    assert_ne!(rotated["hpke_key_id"], old.key_id.as_str());
    assert_eq!(site.clinic().hpke_keys.len(), 2);
    site.sign_bundle();
    site.kill();
    site.start();
    let id = uuid();
    let late = device.envelope(&old, &id, &payload(&id, Utc::now()));
    assert_eq!(
        site.post(&device.delivery(&late, Utc::now())).unwrap().0,
        201
    );
    let (_, fresh) = site.referral(&mut device);
    assert!(fresh
        .body
        .windows(rotated["hpke_key_id"].as_str().unwrap().len())
        .any(|w| w == rotated["hpke_key_id"].as_str().unwrap().as_bytes()));
    assert_eq!(site.post(&fresh).unwrap().0, 201);

    // Revoked from the command line while the service runs: refused on its next request.
    let revoked = ok_json(&lotsa(&[
        "--json",
        "clinic",
        "revoke",
        "--dir",
        site.d(),
        &device.id(),
    ]));
    assert_eq!(revoked["revoked"], device.id());
    let (_, next) = site.referral(&mut device);
    let (status, body) = site.post(&next).unwrap();
    assert_eq!((status, problem_code(&body)), (401, Some("device_revoked")));
    let unknown = lotsa(&[
        "--json",
        "clinic",
        "revoke",
        "--dir",
        site.d(),
        "0000000000000000",
    ]);
    assert_eq!(unknown.status.code(), Some(1));
    let listed = ok_json(&lotsa(&["--json", "clinic", "devices", "--dir", site.d()]));
    assert_ne!(listed["devices"][0]["revoked_at"], Value::Null);
    assert_eq!(listed["devices"][0]["held"], 3);
}

#[test]
fn a_backup_restores_into_a_new_directory_with_the_same_referrals() {
    let mut site = Site::new();
    site.start();
    let mut device = site.enrolled_device();
    for _ in 0..3 {
        let (_, req) = site.referral(&mut device);
        assert_eq!(site.post(&req).unwrap().0, 201);
    }
    let file = site.tmp.0.join("clinic.backup");
    let made = ok_json(&lotsa(&[
        "--json",
        "clinic",
        "backup",
        "--dir",
        site.d(),
        "--out",
        file.to_str().unwrap(),
    ]));
    assert_eq!(made["backup"], file.to_str().unwrap());
    // Encrypted: no key file's text is in it.
    let bytes = std::fs::read(&file).unwrap();
    let receipt_key = std::fs::read_to_string(site.dir.join("keys/receipt.key")).unwrap();
    let secret = receipt_key.lines().nth(1).unwrap();
    assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);

    let restored = site.tmp.0.join("restored");
    let out = Command::new(env!("CARGO_BIN_EXE_lotsa"))
        .args([
            "--json",
            "clinic",
            "restore",
            "--from",
            file.to_str().unwrap(),
            "--dir",
        ])
        .arg(&restored)
        .env("LOTSA_BACKUP_PASSPHRASE", "the wrong passphrase!")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!restored.join("clinic.db").exists());
    ok_json(&lotsa(&[
        "--json",
        "clinic",
        "restore",
        "--from",
        file.to_str().unwrap(),
        "--dir",
        restored.to_str().unwrap(),
    ]));
    let ids = |dir: &Path| {
        Storage::open(&dir.join("clinic.db"))
            .unwrap()
            .handover_ids()
            .unwrap()
    };
    assert_eq!(ids(&restored).len(), 3);
    assert_eq!(ids(&restored), ids(&site.dir));
    assert_eq!(
        std::fs::read(restored.join("clinic.json")).unwrap(),
        std::fs::read(site.dir.join("clinic.json")).unwrap()
    );
}

/// The load of the kill test: devices posting distinct referrals until told to stop; each
/// referral is retried (the same envelope, signed again) until the service answers it.
fn post_until_answered(
    site: &Site,
    device: &mut Device,
    stop: &AtomicBool,
    acked: &Mutex<BTreeMap<String, [u8; 32]>>,
) {
    while !stop.load(Ordering::SeqCst) {
        let id = uuid();
        let envelope = device.envelope(&site.seal_to(), &id, &payload(&id, Utc::now()));
        let sealed = sha256(&envelope.sealed_bytes().unwrap());
        loop {
            match site.post(&device.delivery(&envelope, Utc::now())) {
                Some((201 | 200, _)) => {
                    acked.lock().unwrap().insert(id.clone(), sealed);
                    break;
                }
                Some((status, body)) => {
                    assert!(
                        matches!(status, 409 | 503),
                        "{status} {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                None if stop.load(Ordering::SeqCst) => return,
                None => {}
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    u64::from_le_bytes(b) % n
}

#[test]
fn no_referral_acknowledged_with_201_is_lost_when_the_service_is_killed_at_random_moments() {
    const DEVICES: usize = 8;
    const KILLS: usize = 10;
    let mut site = Site::new();
    site.start();
    let devices: Vec<Device> = (0..DEVICES).map(|_| site.enrolled_device()).collect();
    let stop = AtomicBool::new(false);
    let acked = Mutex::new(BTreeMap::new());
    let started = Instant::now();
    // The killer owns the service's process; the load threads only read the site.
    let running = site.serve.take();
    let mut killer = Killer::of(&site, running);
    std::thread::scope(|scope| {
        for mut device in devices {
            let (site, stop, acked) = (&site, &stop, &acked);
            scope.spawn(move || post_until_answered(site, &mut device, stop, acked));
        }
        for _ in 0..KILLS {
            std::thread::sleep(Duration::from_millis(300 + random_below(900)));
            killer.kill_and_restart();
        }
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::SeqCst);
        killer.done();
    });
    site.kill();
    let acked = acked.into_inner().unwrap();
    let storage = Storage::open(&site.dir.join("clinic.db")).unwrap();
    let mut checked = 0;
    for (id, sealed) in &acked {
        let held = storage
            .handover(id)
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged referral {id} was lost"));
        assert_eq!(&sha256(&held.sealed), sealed);
        checked += 1;
    }
    assert!(checked > 0);
    println!(
        "kill under load: {KILLS} SIGKILLs, {DEVICES} devices, {checked} acknowledged referrals \
         checked, {} held, {:.1} s",
        storage.handover_count().unwrap(),
        started.elapsed().as_secs_f64()
    );
}

/// Kills `lotsa clinic serve` with SIGKILL and starts it again.
struct Killer {
    child: Option<Child>,
    args: Vec<String>,
}

impl Killer {
    fn of(site: &Site, running: Option<Child>) -> Killer {
        Killer {
            child: running,
            args: site.serve_args(),
        }
    }

    fn kill_and_restart(&mut self) {
        sigkill(self.child.take());
        let (child, started) = spawn_serve(&self.args);
        assert!(started["listening"].is_string(), "{started}");
        self.child = Some(child);
    }

    fn done(&mut self) {
        sigkill(self.child.take());
    }
}

/// `Child::kill` is SIGKILL on Unix: the service gets no chance to finish anything.
fn sigkill(child: Option<Child>) {
    if let Some(mut child) = child {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

#[cfg(unix)]
#[test]
fn the_systemd_unit_starts_the_service_it_documents_and_sigterm_stops_it_cleanly() {
    let unit = include_str!("../../docs/clinic/lotsa-clinic.service");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the unit has an ExecStart line");
    let args: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(args[0], "/usr/local/bin/lotsa");
    let site = Site::new();
    let bind = format!("127.0.0.1:{}", site.port);
    let args: Vec<String> = args[1..]
        .iter()
        .map(|a| match *a {
            "/var/lib/lotsa-clinic/clinic" => site.d().to_string(),
            "/etc/lotsa-clinic/bundle.json" => site.tmp.0.join("bundle.json").display().to_string(),
            "/etc/lotsa-clinic/admin.pub" => site.tmp.0.join("admin.pub").display().to_string(),
            "0.0.0.0:8443" => bind.clone(),
            other => other.to_string(),
        })
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lotsa"))
        .args(&args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert_eq!(
        first,
        format!("listening on https://{bind} for {}", site.endpoint())
    );
    let client = site.make_client();
    let health = site.rt.block_on(async {
        let r = client
            .get(format!("{}/v1/health", site.endpoint()))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    assert_eq!(health, (200, "{\"status\":\"ok\"}".to_string()));

    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on the pid of a child this test started and has not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn init_takes_a_certificate_it_provides_and_computes_the_pins_from_it() {
    // "IT's" certificate: the one another clinic directory was given by its development CA.
    let it = Site::new();
    let mut site = Site::new();
    let own = site.dir.clone();
    std::fs::remove_dir_all(&own).unwrap();
    let endpoint = site.endpoint();
    let tls = it.dir.join("tls");
    let path = |f: &str| tls.join(f).display().to_string();
    ok_json(&lotsa(&[
        "--json",
        "clinic",
        "init",
        "--dir",
        site.d(),
        "--name",
        "Testmottagningen",
        "--endpoint",
        &endpoint,
        "--tls-cert",
        &path("cert.pem"),
        "--tls-key",
        &path("key.pem"),
        "--tls-ca",
        &path("ca.pem"),
    ]));
    let theirs = it.clinic();
    let ours = site.clinic();
    assert_eq!(ours.tls.ca_pem, theirs.tls.ca_pem);
    assert_eq!(ours.tls.spki_sha256_pins[0], theirs.tls.spki_sha256_pins[0]);
    assert!(!own.join("tls/ca.key").exists(), "no CA of its own");
    // Only IT's CA can issue its next certificate: rotate-tls says so and changes nothing.
    let before = std::fs::read(own.join("clinic.json")).unwrap();
    let refused = lotsa(&["--json", "clinic", "rotate-tls", "--dir", site.d()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stdout).contains("provided by IT"));
    assert_eq!(std::fs::read(own.join("clinic.json")).unwrap(), before);
    assert_ne!(ours.hpke_keys, theirs.hpke_keys);
    // Served with that certificate: a client trusting only IT's CA gets through.
    site.sign_bundle();
    site.start();
    let mut device = site.enrolled_device();
    let (_, req) = site.referral(&mut device);
    assert_eq!(site.post(&req).unwrap().0, 201);

    // The next certificate: IT is given a request for the spare key, naming the host.
    site.kill();
    let csr = ok_json(&lotsa(&[
        "--json",
        "clinic",
        "tls-request",
        "--dir",
        site.d(),
    ]))["csr"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
        "{csr}"
    );
    let spare = std::fs::read_to_string(own.join("tls/backup-key.pem")).unwrap();
    assert!(!csr.contains("PRIVATE KEY"));
    // "IT" issues certificates for it with its CA; a stranger CA issues one too.
    let stranger = Site::new();
    let now = chrono::Utc::now();
    let issued_files = std::cell::Cell::new(0);
    let issue = |ca: &Site, key: &str| {
        let ca_key = std::fs::read_to_string(ca.dir.join("tls/ca.key")).unwrap();
        let pem =
            lotsa_clinic::tls::reissue(&ca_key, "Testmottagningen", "localhost", key, now).unwrap();
        issued_files.set(issued_files.get() + 1);
        let file = site
            .tmp
            .0
            .join(format!("issued-{}.pem", issued_files.get()));
        std::fs::write(&file, pem).unwrap();
        file
    };
    let rotate_to = |file: &Path| {
        lotsa(&[
            "--json",
            "clinic",
            "rotate-tls",
            "--dir",
            site.d(),
            "--cert",
            file.to_str().unwrap(),
        ])
    };
    let it_key = std::fs::read_to_string(tls.join("key.pem")).unwrap();
    for (file, code) in [
        (issue(&it, &it_key), "tls_not_for_spare"),
        (issue(&stranger, &spare), "tls_untrusted"),
    ] {
        let refused = rotate_to(&file);
        assert_eq!(refused.status.code(), Some(1));
        let error: Value = serde_json::from_slice(&refused.stdout).unwrap();
        assert_eq!(
            (
                error["error"]["code"].as_str(),
                error["error"]["field"].as_str()
            ),
            (Some(code), Some("cert")),
            "{error}"
        );
        assert_eq!(std::fs::read(own.join("clinic.json")).unwrap(), before);
    }
    let issued = issue(&it, &spare);
    let rotated = ok_json(&rotate_to(&issued));
    let pins = site.clinic().tls.spki_sha256_pins;
    assert_eq!(pins[0], ours.tls.spki_sha256_pins[1], "the spare is in use");
    assert_ne!(pins[1], ours.tls.spki_sha256_pins[1], "a new spare");
    assert_eq!(rotated["spki_pins"], serde_json::json!(pins));
    assert_eq!(
        std::fs::read(own.join("tls/cert.pem")).unwrap(),
        std::fs::read(&issued).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(own.join("tls/key.pem")).unwrap(),
        spare
    );
    // Served with IT's new certificate, to a phone with the new bundle.
    site.sign_bundle();
    site.client = None;
    site.start();
    let (_, req) = site.referral(&mut device);
    assert_eq!(site.post(&req).unwrap().0, 201);
    site.kill();

    // A certificate IT provides that is not PEM is refused, naming the file.
    let bad = site.tmp.0.join("not-a-cert.pem");
    std::fs::write(&bad, "hello").unwrap();
    let refused = lotsa(&[
        "--json",
        "clinic",
        "init",
        "--dir",
        site.tmp.0.join("third").to_str().unwrap(),
        "--name",
        "X",
        "--endpoint",
        &endpoint,
        "--tls-cert",
        bad.to_str().unwrap(),
        "--tls-key",
        &path("key.pem"),
        "--tls-ca",
        &path("ca.pem"),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stdout).contains("not-a-cert.pem"));
    assert!(
        !site.tmp.0.join("third").exists(),
        "nothing half-made is left"
    );
}

/// `lotsa field …` on a device database of its own, with its own copy of the site's bundle.
struct Phone<'a> {
    site: &'a Site,
    db: PathBuf,
    vault: PathBuf,
    bundle: PathBuf,
}

impl Phone<'_> {
    fn args(&self) -> Vec<String> {
        let s = |p: &Path| p.display().to_string();
        vec![
            "--json".into(),
            "field".into(),
            "--db".into(),
            s(&self.db),
            "--vault".into(),
            s(&self.vault),
            "--bundle".into(),
            s(&self.bundle),
            "--trust".into(),
            s(&self.site.tmp.0.join("admin.pub")),
        ]
    }

    fn command(&self, more: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lotsa"));
        c.args(self.args()).args(more).stderr(Stdio::null());
        c
    }

    fn run(&self, more: &[&str]) -> Value {
        let out = self.command(more).output().unwrap();
        ok_json(&out)
    }

    /// A consented, finalized lots-for-livet referral: its handover id.
    fn referral(&self) -> String {
        let draft = self.run(&["new", "--program", "lots-for-livet"])["draft_id"]
            .as_str()
            .unwrap()
            .to_string();
        self.run(&[
            "set",
            &draft,
            "--name",
            "Kim",
            "--phone",
            "070-123 45 67",
            "--identity-number",
            "19900412-1233",
            "--municipality",
            "Stockholm",
            "--provenance",
            "document",
        ]);
        self.run(&[
            "consent",
            &draft,
            "--witness",
            "P-4711",
            "--officer",
            "P-1234",
            "--unit",
            "Plattan",
            "--told-no-effect",
            "--told-withdrawal",
            "--capacity",
            "adequate",
        ]);
        self.run(&["finalize", &draft])["handover_id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

#[test]
fn a_phone_killed_during_sync_at_random_moments_still_delivers_every_referral_exactly_once() {
    const REFERRALS: usize = 40;
    let mut site = Site::new();
    site.start();
    let phone_bundle = site.tmp.0.join("phone-bundle.json");
    std::fs::copy(site.tmp.0.join("bundle.json"), &phone_bundle).unwrap();
    let phone = Phone {
        site: &site,
        db: site.tmp.0.join("phone.sqlite"),
        vault: site.tmp.0.join("phone-vault"),
        bundle: phone_bundle,
    };
    let code = ok_json(&lotsa(&[
        "--json",
        "clinic",
        "enrol-code",
        "--dir",
        site.d(),
    ]));
    let code = code["code"].as_str().unwrap();
    // A clinic the bundle does not name is refused, naming the option; then by its endpoint.
    let refused = phone
        .command(&[
            "enrol",
            "--clinic",
            "https://nowhere.example",
            "--code",
            code,
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(error["error"]["field"], "clinic");
    let enrolled = phone.run(&["enrol", "--clinic", &site.endpoint(), "--code", code]);
    assert_eq!(enrolled["enrolled"], "lots-for-livet");
    let ids: Vec<String> = (0..REFERRALS).map(|_| phone.referral()).collect();
    let sync = ["sync", "--lease-secs", "1", "--backoff-base-ms", "100"];

    // A kill leaves at most one batch leased, for a second (the lease is one second).
    // `LOTSA_SYNC_KILLS` sets how many (12 in a plain `cargo test`; the test script asks more).
    let wanted: usize = std::env::var("LOTSA_SYNC_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let mut kills = 0;
    let started = Instant::now();
    while kills < wanted && started.elapsed() < Duration::from_secs(120) {
        let mut child = phone.command(&sync).stdout(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(5 + random_below(150)));
        if child.try_wait().unwrap().is_some() {
            // It finished: everything was sent.
            break;
        }
        sigkill(Some(child));
        kills += 1;
    }
    // Leases of killed runs run out; then the runs finish the job.
    let mut status = Value::Null;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(1_100));
        phone.run(&sync);
        status = phone.run(&["status"]);
        let open = status["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["state"] == "pending" || i["state"] == "sending")
            .count();
        if open == 0 {
            break;
        }
    }
    let serving = site.get_health();
    assert_eq!(
        serving,
        Some(200),
        "the clinic service survived phones killed mid-request"
    );
    let items = status["items"].as_array().unwrap();
    for id in &ids {
        let item = items.iter().find(|i| i["id"] == id.as_str()).unwrap();
        assert_eq!(item["state"], "delivered", "{item}");
    }
    let storage = Storage::open(&site.dir.join("clinic.db")).unwrap();
    let held = storage.handover_ids().unwrap();
    assert_eq!(
        held.len(),
        REFERRALS,
        "each referral exactly once at the clinic"
    );
    assert!(ids.iter().all(|id| held.contains(id)));
    let audit = phone.run(&["audit", "verify"]);
    assert_eq!(audit["ok"], true);
    println!("phone killed during sync: {kills} SIGKILLs, {REFERRALS} referrals, each delivered exactly once");
    assert!(kills >= 1, "at least one run was killed in flight");
    drop(phone);

    // A newer bundle on the clinic: the phone's next sync keeps it in place of its own.
    std::thread::sleep(Duration::from_millis(1_100));
    site.sign_bundle();
    let served = std::fs::read_to_string(site.tmp.0.join("bundle.json")).unwrap();
    site.kill();
    site.start();
    let phone = Phone {
        site: &site,
        db: site.tmp.0.join("phone.sqlite"),
        vault: site.tmp.0.join("phone-vault"),
        bundle: site.tmp.0.join("phone-bundle.json"),
    };
    phone.referral();
    let report = phone.run(&sync);
    assert!(report["bundle_updated"].is_string(), "{report}");
    assert_eq!(std::fs::read_to_string(&phone.bundle).unwrap(), served);
}

#[test]
fn staff_accounts_are_added_with_a_one_time_password_listed_without_it_and_disabled() {
    let site = Site::new();
    let added = ok_json(&lotsa(&[
        "--json",
        "clinic",
        "staff",
        "add",
        "--dir",
        site.d(),
        "Anna.B",
    ]));
    assert_eq!(added["added"], "anna.b");
    let password = added["initial_password"].as_str().unwrap().to_string();
    assert_eq!(password.len(), 19, "{password}");

    // The password is kept only as its argon2id hash, and only it matches.
    let storage = lotsa_clinic::storage::Storage::open(&site.dir.join("clinic.db")).unwrap();
    let (member, hash) = storage.staff_login("anna.b").unwrap().unwrap();
    assert!(member.must_change_password && member.disabled_at.is_none());
    assert!(hash.starts_with("$argon2id$") && !hash.contains(&password));
    assert!(lotsa_clinic::staff::password_matches(&hash, &password));
    for file in ["clinic.db", "clinic.db-wal"] {
        let bytes = std::fs::read(site.dir.join(file)).unwrap_or_default();
        assert!(
            !bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "{file}"
        );
    }

    // A taken name, a bad one and the console's are refused, naming the field; nothing changes.
    for (name, code) in [
        ("anna.b", "staff_exists"),
        ("Anna B", "bad_name"),
        ("Console", "reserved_name"),
    ] {
        let out = lotsa(&["--json", "clinic", "staff", "add", "--dir", site.d(), name]);
        assert_eq!(out.status.code(), Some(1));
        let error: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (
                error["error"]["code"].as_str(),
                error["error"]["field"].as_str()
            ),
            (Some(code), Some("name"))
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("Anna B"));
    }

    let listed = ok_json(&lotsa(&[
        "--json",
        "clinic",
        "staff",
        "list",
        "--dir",
        site.d(),
    ]));
    assert_eq!(listed["staff"].as_array().unwrap().len(), 1);
    assert_eq!(listed["staff"][0]["name"], "anna.b");
    assert_eq!(listed["staff"][0]["must_change_password"], true);
    assert!(!listed.to_string().contains(&password) && !listed.to_string().contains("argon2"));

    let disabled = ok_json(&lotsa(&[
        "--json",
        "clinic",
        "staff",
        "disable",
        "--dir",
        site.d(),
        "anna.b",
    ]));
    assert_eq!(disabled["disabled"], "anna.b");
    let listed = ok_json(&lotsa(&[
        "--json",
        "clinic",
        "staff",
        "list",
        "--dir",
        site.d(),
    ]));
    assert!(listed["staff"][0]["disabled_at"].is_string());
    let unknown = lotsa(&[
        "--json",
        "clinic",
        "staff",
        "disable",
        "--dir",
        site.d(),
        "nobody",
    ]);
    assert_eq!(unknown.status.code(), Some(1));
    let text = lotsa(&["clinic", "staff", "list", "--dir", site.d()]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("disabled"));
}

#[test]
fn the_access_log_answers_by_referral_staff_member_or_the_number_as_people_type_it() {
    let site = Site::new();
    let home = lotsa_clinic::home::Home::new(&site.dir);
    let key = home.access_log_key().unwrap();
    let storage = lotsa_clinic::storage::Storage::open(&home.database()).unwrap();
    let line = |staff: &str, referral: &str, action: &str, phone: &str| {
        lotsa_clinic::storage::AccessEntry {
            at: 1_800_000_000,
            staff: staff.into(),
            handover_id: Some(referral.into()),
            action: action.into(),
            phone_hmac: Some(lotsa_clinic::worklist::phone_hmac(&key, phone)),
        }
    };
    storage
        .log_access(vec![
            line("anna", "r-1", "view", "+46701234567"),
            line("bertil", "r-1", "contacted", "+46701234567"),
            line("anna", "r-2", "view", "+46731112233"),
            line("api:journal", "r-1", "fhir_export", "+46701234567"),
            line("console", "r-2", "fhir_export", "+46731112233"),
        ])
        .unwrap();
    drop(storage);
    let query = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--json", "clinic", "access-log", "--dir", site.d()];
        all.extend_from_slice(args);
        ok_json(&lotsa(&all))["access_log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| format!("{}:{}:{}", l["staff"], l["referral"], l["action"]).replace('"', ""))
            .collect()
    };
    assert_eq!(
        query(&["--phone", "070-123 45 67"]),
        [
            "anna:r-1:view",
            "bertil:r-1:contacted",
            "api:journal:r-1:fhir_export"
        ]
    );
    assert_eq!(
        query(&["--staff", "Anna"]),
        ["anna:r-1:view", "anna:r-2:view"]
    );
    assert_eq!(
        query(&["--referral", "r-2"]),
        ["anna:r-2:view", "console:r-2:fhir_export"]
    );
    // An API client by its log name, the prefix in any case; the console by its own.
    assert_eq!(
        query(&["--staff", "API:Journal"]),
        ["api:journal:r-1:fhir_export"]
    );
    assert_eq!(query(&["--staff", "console"]), ["console:r-2:fhir_export"]);
    assert!(query(&["--phone", "08-123 456 78"]).is_empty());
    // A name or a number that is not one is refused, naming the field, without repeating it.
    for (field, bad, code) in [
        ("staff", "api:", "bad_name"),
        ("phone", "12ab", "phone_invalid_characters"),
    ] {
        let out = lotsa(&[
            "--json",
            "clinic",
            "access-log",
            "--dir",
            site.d(),
            &format!("--{field}"),
            bad,
        ]);
        assert_eq!(out.status.code(), Some(1));
        let error: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (
                error["error"]["code"].as_str(),
                error["error"]["field"].as_str()
            ),
            (Some(code), Some(field)),
            "{error}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains(bad));
    }
    // The database holds no number in clear.
    let db = std::fs::read(home.database()).unwrap_or_default();
    assert!(!db.windows(12).any(|w| w == b"+46701234567"));
}

#[test]
fn with_a_staff_listener_of_their_own_the_staff_pages_leave_the_devices_listener() {
    let site = Site::new();
    let staff_port = free_port();
    let mut args = site.serve_args();
    let cert = site.dir.join("tls").join("cert.pem");
    let key = site.dir.join("tls").join("key.pem");
    args.extend([
        "--staff-bind".into(),
        format!("127.0.0.1:{staff_port}"),
        "--staff-tls-cert".into(),
        cert.display().to_string(),
        "--staff-tls-key".into(),
        key.display().to_string(),
    ]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lotsa"))
        .args(&args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        lines.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    assert_eq!(
        lines[1]["staff_pages"],
        format!("https://127.0.0.1:{staff_port}/staff/login")
    );
    let get = |port: u16, path: &str| -> u16 {
        let client = support::http_client(&site.dir, ([127, 0, 0, 1], port).into());
        site.rt.block_on(async {
            client
                .get(format!("https://localhost:{port}{path}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    assert_eq!(get(staff_port, "/staff/login"), 200);
    assert_eq!(
        get(site.port, "/staff/login"),
        404,
        "not on the devices' listener"
    );
    assert_eq!(get(site.port, "/lots-for-livet/v1/health"), 200);
    assert_eq!(
        get(staff_port, "/lots-for-livet/v1/health"),
        404,
        "no device API there"
    );
    sigkill(Some(child));
}

#[test]
fn the_outcome_figures_print_as_a_table_csv_or_json_with_small_cells_suppressed() {
    let site = Site::new();
    // The counters as the service keeps them (opening the database makes its tables).
    drop(lotsa_clinic::storage::Storage::open(&site.dir.join("clinic.db")).unwrap());
    let db = rusqlite::Connection::open(site.dir.join("clinic.db")).unwrap();
    for (program, week, outcome, n) in [
        ("lots-for-livet", "2026-W49", "contacted_in_time", 12),
        ("lots-for-livet", "2026-W49", "contacted_late", 3),
        ("lots-for-livet", "2026-W50", "contacted_in_time", 5),
        ("snackan-gislaved", "2026-W49", "declined", 1),
    ] {
        db.execute(
            "INSERT INTO outcomes (program_id, week, outcome, count) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![program, week, outcome, n],
        )
        .unwrap();
    }
    drop(db);
    let json = ok_json(&lotsa(&["--json", "clinic", "outcomes", "--dir", site.d()]));
    let rows = json["outcomes"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["contacted_in_time"], 12);
    assert_eq!(rows[0]["contacted_late"], "suppressed");
    assert_eq!(rows[2]["declined"], "suppressed");
    let csv = lotsa(&[
        "clinic",
        "outcomes",
        "--dir",
        site.d(),
        "--program",
        "lots-for-livet",
        "--from",
        "2026-W50",
        "--csv",
    ]);
    let text = String::from_utf8(csv.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "week,program,contacted_in_time,contacted_late,never_reached,declined,called_first,withdrawn",
            "2026-W50,lots-for-livet,5,0,0,0,0,0"
        ]
    );
    let table =
        String::from_utf8(lotsa(&["clinic", "outcomes", "--dir", site.d()]).stdout).unwrap();
    assert!(
        table.contains("<5") && table.contains("CONTACTED_IN_TIME"),
        "{table}"
    );
    let bad = lotsa(&[
        "--json",
        "clinic",
        "outcomes",
        "--dir",
        site.d(),
        "--from",
        "49",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(
        (
            error["error"]["code"].as_str(),
            error["error"]["field"].as_str()
        ),
        (Some("bad_week"), Some("from"))
    );
}

#[test]
fn a_referral_exports_as_fhir_at_the_console_and_over_https_with_a_token_until_it_is_revoked() {
    let mut site = Site::new();
    site.start();
    let mut device = site.enrolled_device();
    let (id, delivery) = site.referral(&mut device);
    assert_eq!(site.post(&delivery).unwrap().0, 201);
    let path = |f: &str| site.tmp.0.join(f).display().to_string();
    let export = |bundle: &str, extra: &[&str]| {
        let (bundle, trust) = (path(bundle), path("admin.pub"));
        let mut args = vec![
            "--json",
            "clinic",
            "export",
            &id,
            "--fhir",
            "--dir",
            site.d(),
        ];
        args.extend(["--bundle", &bundle, "--trust", &trust]);
        args.extend_from_slice(extra);
        lotsa(&args)
    };

    // To standard output, and into a new owner-only file (never over one).
    let fhir = ok_json(&export("bundle.json", &[]));
    assert_eq!(fhir["resourceType"], "Bundle");
    let kinds: Vec<&str> = fhir["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Patient", "Consent", "ServiceRequest", "Task"]);
    assert_eq!(
        fhir["entry"][0]["resource"]["telecom"][0]["value"],
        "+46701234567"
    );
    let file = path("export.json");
    ok_json(&export("bundle.json", &["--out", &file]));
    assert_eq!(mode(Path::new(&file)), 0o600);
    let written: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written["entry"], fhir["entry"]);
    let again = export("bundle.json", &["--out", &file]);
    assert_eq!(again.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(error["error"]["field"], "out");

    // A bundle in which the program does not allow the export: refused, naming the referral.
    site.sign_bundle_as("closed.json", |set| {
        for p in set["programs"].as_array_mut().unwrap() {
            p["fhir_export"] = Value::Bool(false);
        }
    });
    let closed = export("closed.json", &[]);
    assert_eq!(closed.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&closed.stdout).unwrap();
    assert_eq!(error["error"]["code"], "export_not_allowed");
    assert_eq!(error["error"]["field"], "handover");
    assert!(!String::from_utf8_lossy(&closed.stdout).contains("+46701234567"));
    // The service noted the bundle it was started with. Once it has served a newer one, the
    // older file is refused: it may still allow what the served one no longer does.
    let storage = Storage::open(&site.dir.join("clinic.db")).unwrap();
    let (_, served_at) = storage
        .newest_served()
        .unwrap()
        .expect("serve notes its bundle");
    storage
        .note_served("a-newer-edition", served_at + 3600, Utc::now().timestamp())
        .unwrap();
    drop(storage);
    let older = export("bundle.json", &[]);
    assert_eq!(older.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&older.stdout).unwrap();
    assert_eq!(error["error"]["code"], "bundle_older_than_served");
    assert_eq!(error["error"]["field"], "bundle");
    // Without --fhir there is nothing to export.
    let bare = lotsa(&["clinic", "export", &id, "--dir", site.d()]);
    assert_eq!(bare.status.code(), Some(2));

    // A system with a token fetches it from the running service until the token is revoked.
    let client = |args: &[&str]| {
        let mut all = vec!["--json", "clinic", "api-client"];
        all.extend_from_slice(args);
        all.extend(["--dir", site.d()]);
        ok_json(&lotsa(&all))
    };
    // It must be given its programs, or all of them, and a program id of another shape is
    // refused on `program`.
    let unscoped = lotsa(&[
        "--json",
        "clinic",
        "api-client",
        "add",
        "journal",
        "--dir",
        site.d(),
    ]);
    assert_eq!(unscoped.status.code(), Some(2));
    let bad = lotsa(&[
        "--json",
        "clinic",
        "api-client",
        "add",
        "journal",
        "--program",
        "Lots för livet",
        "--dir",
        site.d(),
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(
        (&error["error"]["code"], &error["error"]["field"]),
        (&Value::from("bad_program"), &Value::from("program"))
    );
    assert!(
        !bad.stdout.windows(5).any(|w| w == b"Lots "),
        "the input is not echoed"
    );
    let added = client(&["add", "Journal", "--program", "lots-for-livet"]);
    assert_eq!(added["programs"], serde_json::json!(["lots-for-livet"]));
    let token = added["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("lotsa_api_"));
    let region = client(&["add", "region", "--all-programs"]);
    assert_eq!(region["programs"], Value::Null);
    let get = |token: &str| {
        let url = format!("https://localhost:{}/export/v1/fhir/{id}", site.port);
        let http = site.client.as_ref().unwrap();
        site.rt.block_on(async {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            let kind = r.headers()["content-type"].to_str().unwrap().to_string();
            (r.status().as_u16(), kind, r.bytes().await.unwrap())
        })
    };
    let (status, kind, body) = get(&token);
    assert_eq!((status, kind.as_str()), (200, "application/fhir+json"));
    let over_https: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(over_https["entry"], fhir["entry"]);
    let listed = client(&["list"]);
    assert_eq!(listed["api_clients"][0]["name"], "journal");
    assert_eq!(
        listed["api_clients"][0]["programs"],
        serde_json::json!(["lots-for-livet"])
    );
    assert!(listed["api_clients"][0]["last_used_at"].is_string());
    assert_eq!(listed["api_clients"][1]["programs"], Value::Null);
    assert!(!listed.to_string().contains(&token));
    client(&["revoke", "journal"]);
    assert_eq!(get(&token).0, 401);
    assert!(client(&["list"])["api_clients"][0]["revoked_at"].is_string());

    // The database keeps only the token's hash; the access log has every export.
    for file in ["clinic.db", "clinic.db-wal", "clinic.db-shm"] {
        let bytes = std::fs::read(site.dir.join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "{file}"
        );
    }
    let log = ok_json(&lotsa(&[
        "--json",
        "clinic",
        "access-log",
        "--dir",
        site.d(),
        "--referral",
        &id,
    ]));
    let exports: Vec<String> = log["access_log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["action"] == "fhir_export")
        .map(|l| l["staff"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(exports, ["console", "console", "api:journal"]);
}
