//! Races between real processes on one store file: this test binary re-executes itself as
//! several workers that wait for the same "go" file and then act at once — opening a brand-new
//! database, creating the first draft (and so the first root key), setting different fields of
//! one draft, and finalizing one draft. Every worker must end with success or a typed error,
//! never a raw SQLite error, and the store must hold what every "saved" promised.

mod common;

use common::{clock, consent, fill_stockholm, load_bundle, Programs, TempDir};
use lotsa_core::crypto::vault::DevFileVault;
use lotsa_core::crypto::PublicKey;
use lotsa_core::referral::DraftUpdate;
use lotsa_core::store::Store;
use lotsa_core::text::Reasoned;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Set (scenario, db, vault dir, bundle file, trust key, go file, argument; one per line) in a
/// worker's environment.
const WORKER_ENV: &str = "LOTSA_RACE_WORKER";
const WORKER_TEST: &str = "race_worker";
const WORKERS: usize = 6;

/// One worker: waits for the go file, does its scenario's step once, prints `ok …` or
/// `err <code>` on its last line.
#[test]
fn race_worker() {
    let Ok(spec) = std::env::var(WORKER_ENV) else {
        return;
    };
    let lines: Vec<&str> = spec.lines().collect();
    let [scenario, db, vault_dir, bundle_file, trust, go, arg] = lines[..] else {
        panic!("bad worker spec");
    };
    let signed = std::fs::read_to_string(bundle_file).unwrap();
    let bundle = load_bundle(&signed, &PublicKey::from_b64(trust).unwrap());
    let started = Instant::now();
    while !Path::new(go).exists() {
        assert!(started.elapsed() < Duration::from_secs(30), "no go");
        std::thread::sleep(Duration::from_millis(1));
    }
    let result = (|| {
        let vault = Arc::new(DevFileVault::open_with_warning(vault_dir, |_| {})?);
        let mut store = Store::open(Path::new(db), vault, Arc::new(clock()))?;
        let done = match scenario {
            "open" => "opened".to_string(),
            "first_draft" => store.create_draft(&bundle, "lots-for-livet")?,
            "set" => {
                let mut u = DraftUpdate::default();
                match arg {
                    "name" => u.name = Some("Kim Racesson".into()),
                    "language" => u.language = Some("sv".into()),
                    "best_time" => u.best_time = Some("efter 14".into()),
                    "note" => u.note = Some("vid Plattan".into()),
                    "phone" => u.phone = Some("070-123 45 67".into()),
                    "identity_number" => u.identity_number = Some("19850412-1230".into()),
                    other => panic!("no field {other}"),
                }
                store.update_draft(arg_draft(), u)?;
                "saved".to_string()
            }
            "finalize" => store.finalize(arg, &bundle)?,
            other => panic!("no scenario {other}"),
        };
        Ok::<_, Box<dyn std::error::Error>>(done)
    })();
    match result {
        Ok(done) => println!("\nRESULT ok {done}"),
        Err(e) => {
            let code = e
                .downcast_ref::<lotsa_core::store::StoreError>()
                .map(|s| format!("{} ({s})", s.code()))
                .unwrap_or_else(|| format!("other:{e}"));
            println!("\nRESULT err {code}");
        }
    }
}

/// The draft id the `set` workers share (passed through the environment as well).
fn arg_draft() -> &'static str {
    Box::leak(
        std::env::var("LOTSA_RACE_DRAFT")
            .unwrap_or_default()
            .into_boxed_str(),
    )
}

struct Race {
    dir: TempDir,
    programs: Programs,
    bundle_file: PathBuf,
}

impl Race {
    fn new(name: &str) -> Race {
        let dir = TempDir::new(name);
        let programs = Programs::new();
        let bundle_file = dir.path().join("bundle.json");
        std::fs::write(&bundle_file, &programs.signed).unwrap();
        Race {
            dir,
            programs,
            bundle_file,
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("device.sqlite")
    }

    fn vault(&self) -> PathBuf {
        self.dir.path().join("vault")
    }

    fn store(&self) -> Store {
        let vault = DevFileVault::open_with_warning(self.vault(), |_| {}).unwrap();
        Store::open(&self.db(), Arc::new(vault), Arc::new(clock())).unwrap()
    }

    /// Runs one worker per argument, all released at once; returns their last lines.
    fn run(&self, scenario: &str, args: &[&str], draft: &str) -> Vec<String> {
        let go = self.dir.path().join(format!("go-{scenario}"));
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = args
            .iter()
            .map(|arg| {
                let spec = [
                    scenario,
                    &self.db().display().to_string(),
                    &self.vault().display().to_string(),
                    &self.bundle_file.display().to_string(),
                    &self.programs.trust.to_b64(),
                    &go.display().to_string(),
                    arg,
                ]
                .join("\n");
                Command::new(&exe)
                    .args(["--exact", WORKER_TEST, "--nocapture", "--test-threads", "1"])
                    .env(WORKER_ENV, spec)
                    .env("LOTSA_RACE_DRAFT", draft)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        std::fs::write(&go, b"go").unwrap();
        children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().unwrap();
                let text = String::from_utf8_lossy(&out.stdout).to_string();
                text.lines()
                    .rev()
                    .find_map(|l| l.strip_prefix("RESULT "))
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        format!("no result: {text} {}", String::from_utf8_lossy(&out.stderr))
                    })
            })
            .collect()
    }
}

#[test]
fn processes_opening_a_new_database_at_once_all_succeed() {
    if std::env::var_os(WORKER_ENV).is_some() {
        return;
    }
    for round in 0..3 {
        let race = Race::new(&format!("open-{round}"));
        let results = race.run("open", &["-"; WORKERS], "");
        assert!(results.iter().all(|r| r == "ok opened"), "{results:?}");
        let store = race.store();
        assert!(store.integrity_ok().unwrap());
    }
}

#[test]
fn processes_creating_their_first_draft_at_once_share_one_root_key() {
    if std::env::var_os(WORKER_ENV).is_some() {
        return;
    }
    let race = Race::new("first-draft");
    // The database exists, but no draft and no root key yet.
    drop(race.store());
    let results = race.run("first_draft", &["-"; WORKERS], "");
    assert!(results.iter().all(|r| r.starts_with("ok ")), "{results:?}");
    let mut store = race.store();
    for r in &results {
        let id = r.trim_start_matches("ok ");
        assert!(store.draft(id).is_ok(), "{id} does not open");
    }
    assert_eq!(store.draft_ids().unwrap().len(), WORKERS);
}

#[test]
fn concurrent_updates_of_one_draft_lose_no_field() {
    if std::env::var_os(WORKER_ENV).is_some() {
        return;
    }
    for round in 0..3 {
        let race = Race::new(&format!("set-{round}"));
        let mut store = race.store();
        let id = store
            .create_draft(&race.programs.bundle, "lots-for-livet")
            .unwrap();
        store
            .record_consent(&id, &race.programs.bundle, &consent())
            .unwrap();
        drop(store);
        let fields = [
            "name",
            "language",
            "best_time",
            "note",
            "phone",
            "identity_number",
        ];
        let results = race.run("set", &fields, &id);
        assert!(results.iter().all(|r| r == "ok saved"), "{results:?}");
        let mut store = race.store();
        let d = store.draft(&id).unwrap();
        let c = &d.draft.contact;
        assert_eq!(c.name.as_deref(), Some("Kim Racesson"));
        assert_eq!(c.language.as_deref(), Some("sv"));
        assert_eq!(c.best_time.as_deref(), Some("efter 14"));
        assert_eq!(c.note.as_deref(), Some("vid Plattan"));
        assert_eq!(c.phone.as_deref(), Some("070-123 45 67"));
        assert_eq!(d.draft.identity_number.as_deref(), Some("19850412-1230"));
        // The identity changed under a recorded consent, whichever update came when.
        assert!(d.consent.is_none(), "the consent-clearing rule was skipped");
    }
}

#[test]
fn concurrent_finalizes_of_one_draft_seal_it_once_and_the_rest_are_told_why() {
    if std::env::var_os(WORKER_ENV).is_some() {
        return;
    }
    let race = Race::new("finalize");
    let mut store = race.store();
    let id = store
        .create_draft(&race.programs.bundle, "lots-for-livet")
        .unwrap();
    store.update_draft(&id, fill_stockholm()).unwrap();
    store
        .record_consent(&id, &race.programs.bundle, &consent())
        .unwrap();
    drop(store);
    let results = race.run("finalize", &[id.as_str(); WORKERS], "");
    let ok = results.iter().filter(|r| r.starts_with("ok ")).count();
    assert_eq!(ok, 1, "{results:?}");
    for r in results.iter().filter(|r| !r.starts_with("ok ")) {
        // A typed answer that says why: it is a sealed referral now.
        assert!(
            r.starts_with("err not_found") && r.contains("already finalized"),
            "{results:?}"
        );
    }
    let store = race.store();
    let queue = store.queue_status().unwrap();
    assert_eq!(queue.items.len(), 1);
    assert!(store.verify_audit().is_ok());
}
