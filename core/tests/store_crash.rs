//! Crash safety: a child process (this test binary, re-executed) loops create → fill → consent →
//! finalize → (every other one) withdraw, with every fifth draft withdrawn before finalize, and is
//! killed with SIGKILL after a random 5–300 ms, many times. After each kill the parent reopens the
//! store and checks: `PRAGMA integrity_check` is ok, the audit chain verifies, and every referral
//! the audit log says was created is exactly one of a draft or an outbox item (never both, never
//! neither; absent only when the audit says it was withdrawn as a draft), every remaining draft
//! still decrypts, every pending item's sealed payload matches its digest and opens for the
//! clinic, every withdrawn item's payload is NULL, and the anonymous counters (offers, consents,
//! withdrawals) match the audit log. What the child reported as done must have stuck.
//!
//! `LOTSA_CRASH_SECS` sets the time budget: 15 s by default, for a plain `cargo test`;
//! `scripts/test-all.sh` sets 55 s. Past the budget the test keeps killing (for at most three
//! budgets more) until it has its minimum of 50 kills with at least one during finalize and one
//! during withdraw, so a short budget asks no less. The seed is printed and can be replayed with
//! `LOTSA_CRASH_SEED`.

mod common;

use common::{clock, consent, fill_stockholm, load_bundle, ready_draft, Programs, TempDir};
use lotsa_core::crypto::vault::{DevFileVault, MemoryVault};
use lotsa_core::crypto::PublicKey;
use lotsa_core::store::{Store, Withdrawn};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Set (db, vault dir, bundle file, trust key; one per line) in the child's environment.
const WORKER_ENV: &str = "LOTSA_CRASH_WORKER";
/// The worker test's name, for `--exact`.
const WORKER_TEST: &str = "crash_worker";
/// Lines the worker prints start with this.
const TAG: &str = "LOTSA-STEP";

fn say(what: &str, id: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{TAG} {what} {id}").unwrap();
    out.flush().unwrap();
}

/// The child: a no-op unless started by the parent test below.
#[test]
fn crash_worker() {
    let Ok(spec) = std::env::var(WORKER_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('\n').collect();
    let [db, vault_dir, bundle_file, trust] = parts[..] else {
        panic!("bad {WORKER_ENV}");
    };
    say("begin", "open");
    let vault = Arc::new(DevFileVault::open_with_warning(vault_dir, |_| {}).unwrap());
    let signed = std::fs::read_to_string(bundle_file).unwrap();
    let bundle = load_bundle(&signed, &PublicKey::from_b64(trust).unwrap());
    let program = bundle.program("lots-for-livet").unwrap();
    let mut store = Store::open(Path::new(db), vault, Arc::new(clock())).unwrap();
    say("done", "open");
    let started = Instant::now();
    let mut i = u64::from(std::process::id());
    // Bounded, so an orphaned worker (the parent died) does not run for ever.
    while started.elapsed() < Duration::from_secs(30) {
        say("begin create", "-");
        let id = store.create_draft(&bundle, &program.id).unwrap();
        say("done create", &id);
        say("begin update", &id);
        store.update_draft(&id, fill_stockholm()).unwrap();
        say("done update", &id);
        say("begin consent", &id);
        store.record_consent(&id, &bundle, &consent()).unwrap();
        say("done consent", &id);
        i += 1;
        if i % 5 == 0 {
            say("begin withdraw_draft", &id);
            assert_eq!(store.withdraw(&id, None).unwrap(), Withdrawn::DraftErased);
            say("done withdraw_draft", &id);
            continue;
        }
        say("begin finalize", &id);
        assert_eq!(store.finalize(&id, &bundle).unwrap(), id);
        say("done finalize", &id);
        if i % 2 == 0 {
            say("begin withdraw", &id);
            assert_eq!(
                store.withdraw(&id, None).unwrap(),
                Withdrawn::ErasedBeforeDelivery
            );
            say("done withdraw", &id);
        }
    }
}

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// What the parent learned from the children's output: the last completed step of each id.
#[derive(Default)]
struct Model {
    /// id → the last step the child reported done for it.
    done: HashMap<String, &'static str>,
    /// id → a step begun and never reported done (killed during it: it may or may not have
    /// committed).
    begun: HashMap<String, &'static str>,
    /// The step in flight when each kill landed (the last `begin` without its `done`).
    in_flight: BTreeMap<String, u32>,
}

impl Model {
    fn absorb(&mut self, lines: &[String]) {
        let mut last_begin: Option<String> = None;
        for line in lines {
            let Some(rest) = line.strip_prefix(TAG) else {
                continue;
            };
            let words: Vec<&str> = rest.split_whitespace().collect();
            match words.as_slice() {
                ["begin", op, id] => {
                    last_begin = Some(op.to_string());
                    if let Some(step) = step_name(op) {
                        self.begun.insert(id.to_string(), step);
                    }
                }
                ["begin", op] => last_begin = Some(op.to_string()),
                ["done", "open"] => last_begin = None,
                ["done", op, id] => {
                    last_begin = None;
                    self.begun.remove(*id);
                    if let Some(step) = step_name(op) {
                        self.done.insert(id.to_string(), step);
                    }
                }
                _ => {}
            }
        }
        let key = last_begin.unwrap_or_else(|| "between steps".into());
        *self.in_flight.entry(key).or_default() += 1;
    }
}

fn step_name(op: &str) -> Option<&'static str> {
    Some(match op {
        "create" => "create",
        "update" => "update",
        "consent" => "consent",
        "finalize" => "finalize",
        "withdraw" => "withdraw",
        "withdraw_draft" => "withdraw_draft",
        _ => return None,
    })
}

/// A referral as the reopened store holds it.
struct OutboxRow {
    state: String,
    payload: Option<Vec<u8>>,
}

/// Reopens the store after a kill and checks every invariant. Returns how many referrals the
/// audit log says were created.
fn check_after_kill(
    db: &Path,
    vault_dir: &Path,
    programs: &Programs,
    model: &Model,
    opened: &mut HashSet<String>,
    kill: u32,
) -> usize {
    let vault = Arc::new(DevFileVault::open_with_warning(vault_dir, |_| {}).unwrap());
    let mut store = Store::open(db, vault, Arc::new(clock()))
        .unwrap_or_else(|e| panic!("kill {kill}: the store does not reopen: {e}"));
    assert!(
        store.integrity_ok().unwrap(),
        "kill {kill}: integrity_check failed"
    );
    store
        .verify_audit()
        .unwrap_or_else(|e| panic!("kill {kill}: the audit chain does not verify: {e}"));

    let mut kinds: HashMap<String, Vec<String>> = HashMap::new();
    let mut created = Vec::new();
    for e in store.audit_entries().unwrap() {
        let Some(subject) = e.subject else { continue };
        if e.kind == "draft_created" {
            created.push(subject.clone());
        }
        kinds.entry(subject).or_default().push(e.kind);
    }
    let drafts: HashSet<String> = store
        .draft_ids()
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let outbox: HashMap<String, OutboxRow> = {
        let conn = store.connection();
        let mut stmt = conn
            .prepare("SELECT id, kind, state, payload FROM outbox")
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                let kind: String = r.get(1)?;
                assert_eq!(kind, "referral", "kill {kill}: unexpected outbox item kind");
                Ok((
                    r.get::<_, String>(0)?,
                    OutboxRow {
                        state: r.get(2)?,
                        payload: r.get(3)?,
                    },
                ))
            })
            .unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };

    let created_set: HashSet<&String> = created.iter().collect();
    assert_eq!(
        created_set.len(),
        created.len(),
        "kill {kill}: an id was created twice"
    );
    for id in drafts.iter().chain(outbox.keys()) {
        assert!(
            created_set.contains(id),
            "kill {kill}: {id} is stored but the audit log never saw it created"
        );
    }
    let no_kinds = Vec::new();
    for id in &created {
        let k = kinds.get(id).unwrap_or(&no_kinds);
        let has = |kind: &str| k.iter().any(|x| x == kind);
        match (drafts.contains(id), outbox.get(id)) {
            (true, Some(_)) => panic!("kill {kill}: {id} is both a draft and an outbox item"),
            (false, None) => assert!(
                has("draft_withdrawn"),
                "kill {kill}: {id} is neither a draft nor an outbox item (audit: {k:?})"
            ),
            (true, None) => {
                assert!(
                    !has("finalized") && !has("draft_withdrawn"),
                    "kill {kill}: {id} is a draft but the audit says {k:?}"
                );
                // The draft must still open: no torn blob, no lost key.
                let d = store
                    .draft(id)
                    .unwrap_or_else(|e| panic!("kill {kill}: draft {id} does not open: {e}"));
                assert_eq!(d.draft.draft_id, *id);
            }
            (false, Some(row)) => {
                assert!(
                    has("finalized") && !has("draft_withdrawn"),
                    "kill {kill}: {id} is in the outbox but the audit says {k:?}"
                );
                match row.state.as_str() {
                    "withdrawn" => {
                        assert!(
                            row.payload.is_none(),
                            "kill {kill}: withdrawn {id} still has its payload"
                        );
                        assert!(
                            has("withdrawn_before_delivery"),
                            "kill {kill}: {id} withdrawn without an audit entry: {k:?}"
                        );
                    }
                    "pending" => {
                        assert!(
                            !has("withdrawn_before_delivery"),
                            "kill {kill}: {id} is pending but the audit says withdrawn: {k:?}"
                        );
                        let sealed = store.sealed_payload(id).unwrap_or_else(|e| {
                            panic!("kill {kill}: the payload of {id} is damaged: {e}")
                        });
                        assert_eq!(Some(&sealed), row.payload.as_ref());
                        if opened.insert(id.clone()) {
                            let p = programs.open_sealed(id, "lots-for-livet", &sealed);
                            assert_eq!(p.handover_id, *id);
                            assert_eq!(p.consent.subject_ref, *id);
                        }
                    }
                    other => panic!("kill {kill}: {id} is in state {other}"),
                }
            }
        }
    }
    // The anonymous counters move with the changes they count, in the same transaction: after
    // any kill they match the audit log exactly.
    let counter = |name: &str| -> u64 {
        store
            .stats()
            .unwrap()
            .iter()
            .filter(|r| r.counter == name)
            .map(|r| r.count)
            .sum()
    };
    let audit_count = |kind: &str| {
        kinds
            .values()
            .filter(|k| k.iter().any(|x| x == kind))
            .count()
    };
    assert_eq!(
        counter("offers"),
        created.len() as u64,
        "kill {kill}: offers counted != drafts created"
    );
    assert_eq!(
        counter("consents"),
        audit_count("consent_recorded") as u64,
        "kill {kill}: consents counted != referrals with a consent"
    );
    let withdrawals_audited =
        (audit_count("draft_withdrawn") + audit_count("withdrawn_before_delivery")) as u64;
    let withdrawals_counted = counter("withdrawals");
    assert_eq!(
        withdrawals_counted, withdrawals_audited,
        "kill {kill}: withdrawals counted != withdrawals in the audit log"
    );

    // What a child reported done has stuck (or the step it was killed in has committed).
    for (id, step) in &model.done {
        let in_draft = drafts.contains(id);
        let row = outbox.get(id);
        let holds = |step: &str| match step {
            "create" | "update" | "consent" => in_draft || row.is_some(),
            "finalize" => row.is_some(),
            "withdraw" => row.is_some_and(|r| r.state == "withdrawn" && r.payload.is_none()),
            "withdraw_draft" => !in_draft && row.is_none(),
            _ => true,
        };
        let ok = holds(step) || model.begun.get(id).is_some_and(|b| holds(b));
        assert!(
            ok,
            "kill {kill}: {id} was reported '{step}' done, but the store has draft={in_draft}, \
             outbox={:?}",
            row.map(|r| &r.state)
        );
    }
    created.len()
}

fn spawn_reader<R: Read + Send + 'static>(r: R) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        BufReader::new(r)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    })
}

#[test]
fn finalize_and_withdraw_survive_sigkill_at_random_moments() {
    if std::env::var_os(WORKER_ENV).is_some() {
        return;
    }
    let budget = Duration::from_secs(
        std::env::var("LOTSA_CRASH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(15),
    );
    let max_kills = 400u32;
    let seed = std::env::var("LOTSA_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            (t.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32) | 1
        });
    eprintln!("crash test seed {seed} (LOTSA_CRASH_SEED to replay)");
    let mut rng = Rng(seed);

    let programs = Programs::new();
    let dir = TempDir::new("crash");
    let db = dir.path().join("device.sqlite");
    let vault_dir = dir.path().join("vault");
    let bundle_file = dir.path().join("programs.signed.json");
    std::fs::write(&bundle_file, &programs.signed).unwrap();
    let spec = [
        db.display().to_string(),
        vault_dir.display().to_string(),
        bundle_file.display().to_string(),
        programs.trust.to_b64(),
    ]
    .join("\n");
    let exe: PathBuf = std::env::current_exe().unwrap();

    let started = Instant::now();
    let mut model = Model::default();
    let mut opened = HashSet::new();
    let mut kills = 0u32;
    let mut referrals = 0usize;
    let mut delays = Vec::new();
    let enough = |kills: u32, model: &Model| {
        kills >= 50
            && ["finalize", "withdraw"]
                .iter()
                .all(|op| model.in_flight.get(*op).copied().unwrap_or(0) > 0)
    };
    while kills < max_kills
        && (started.elapsed() < budget
            || (started.elapsed() < budget * 4 && !enough(kills, &model)))
    {
        let delay = Duration::from_millis(5 + rng.below(296));
        let mut child = Command::new(&exe)
            .args(["--exact", WORKER_TEST, "--nocapture", "--test-threads", "1"])
            .env(WORKER_ENV, &spec)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = spawn_reader(child.stdout.take().unwrap());
        let err = spawn_reader(child.stderr.take().unwrap());
        std::thread::sleep(delay);
        if let Some(status) = child.try_wait().unwrap() {
            let err = err.join().unwrap().join("\n");
            let out = out.join().unwrap();
            panic!(
                "the worker ended by itself ({status}) before the kill after {delay:?}; last \
                 output {:?}; stderr:\n{err}",
                out.last()
            );
        }
        child.kill().unwrap(); // SIGKILL on unix
        let status = child.wait().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt as _;
            assert_eq!(status.signal(), Some(9), "{status}");
        }
        kills += 1;
        delays.push(delay.as_millis() as u64);
        let lines = out.join().unwrap();
        let _ = err.join().unwrap();
        model.absorb(&lines);
        referrals = check_after_kill(&db, &vault_dir, &programs, &model, &mut opened, kills);
    }

    // A last look with a fresh eye: the counts add up.
    let vault = Arc::new(DevFileVault::open_with_warning(&vault_dir, |_| {}).unwrap());
    let store = Store::open(&db, vault, Arc::new(clock())).unwrap();
    let status = store.queue_status().unwrap();
    let count = |s: &str| {
        status
            .counts
            .iter()
            .find(|(st, _)| st.as_str() == s)
            .map_or(0, |c| c.1)
    };
    let drafts = store.draft_ids().unwrap().len();
    let draft_withdrawn = store
        .audit_entries()
        .unwrap()
        .iter()
        .filter(|e| e.kind == "draft_withdrawn")
        .count();
    let (pending, withdrawn) = (count("pending"), count("withdrawn"));
    assert_eq!(
        drafts as u64 + pending + withdrawn + draft_withdrawn as u64,
        referrals as u64,
        "drafts + outbox + withdrawn drafts must be every referral created"
    );
    delays.sort_unstable();
    eprintln!(
        "crash test: {kills} SIGKILLs in {:.1} s (delays {}–{} ms, median {} ms); {referrals} \
         referrals checked after the last kill: {drafts} drafts, {pending} pending, {withdrawn} \
         withdrawn before delivery, {draft_withdrawn} withdrawn as drafts; {} sealed payloads \
         opened by the clinic key; statistics match the audit log; step in flight at each \
         kill: {:?}",
        started.elapsed().as_secs_f64(),
        delays.first().unwrap_or(&0),
        delays.last().unwrap_or(&0),
        delays.get(delays.len() / 2).unwrap_or(&0),
        opened.len(),
        model.in_flight
    );
    assert!(kills >= 50, "only {kills} kills in the time budget");
    assert!(referrals > 0);
    for op in ["finalize", "withdraw"] {
        assert!(
            model.in_flight.get(op).copied().unwrap_or(0) > 0,
            "no kill landed during {op}: {:?}",
            model.in_flight
        );
    }
}

/// Makes every insert into (or update of) `table` matching `when` fail, as a full disk or an I/O
/// error would part-way through a state change.
fn inject_failure(store: &Store, table: &str, when: &str) {
    store
        .connection()
        .execute_batch(&format!(
            "CREATE TRIGGER inject_ins BEFORE INSERT ON {table} WHEN {when}
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END;
             CREATE TRIGGER inject_upd BEFORE UPDATE ON {table} WHEN {when}
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        ))
        .unwrap();
}

fn remove_failure(store: &Store) {
    store
        .connection()
        .execute_batch("DROP TRIGGER inject_ins; DROP TRIGGER inject_upd;")
        .unwrap();
}

/// The same property as the SIGKILL test, made deterministic: a write that fails inside a state
/// change must leave the old state (the caller gets an error and can retry) or the new one (the
/// caller gets Ok) — never report an error after the change is already irreversible.
#[test]
fn a_failure_inside_a_withdrawal_leaves_the_old_state_or_the_new_one() {
    if std::env::var_os(WORKER_ENV).is_some() {
        return;
    }
    let programs = Programs::new();
    let dir = TempDir::new("inject");
    let mut store = Store::open(
        &dir.path().join("device.sqlite"),
        Arc::new(MemoryVault::new()),
        Arc::new(clock()),
    )
    .unwrap();
    let outbox_state = |store: &Store, id: &str| -> (String, bool) {
        store
            .connection()
            .query_row(
                "SELECT state, payload IS NOT NULL FROM outbox WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };

    // Finalize is one transaction: refused at its last write, nothing changes.
    let a = ready_draft(&mut store, &programs);
    inject_failure(&store, "audit", "NEW.kind = 'finalized'");
    assert!(store.finalize(&a, &programs.bundle).is_err());
    remove_failure(&store);
    assert!(store.draft_ids().unwrap().iter().any(|(id, _)| *id == a));
    assert!(store.draft(&a).unwrap().consent.is_some());
    assert_eq!(store.queue_status().unwrap().items.len(), 0);
    store.finalize(&a, &programs.bundle).unwrap();

    // Withdrawal before delivery is one transaction: refused at its count, nothing changes.
    inject_failure(&store, "stats", "NEW.counter = 'withdrawals'");
    assert!(store.withdraw(&a, None).is_err());
    assert_eq!(outbox_state(&store, &a), ("pending".to_string(), true));

    // Withdrawing a draft: the same failure must leave the draft (and let the retry work).
    let b = ready_draft(&mut store, &programs);
    let result = store.withdraw(&b, None);
    remove_failure(&store);
    let still_a_draft = store.draft_ids().unwrap().iter().any(|(id, _)| *id == b);
    let retry = store.withdraw(&b, None);
    let withdrawals: u64 = store
        .stats()
        .unwrap()
        .iter()
        .filter(|r| r.counter == "withdrawals")
        .map(|r| r.count)
        .sum();
    match &result {
        Ok(_) => panic!("the injected failure was not hit"),
        Err(e) => assert!(
            still_a_draft,
            "withdraw({b}) reported an error ({e}) although the draft was already erased: \
             Store::withdraw erases the draft in one transaction (erase_draft) and counts the \
             withdrawal in a second one, so a failure (or a kill) between them loses the count \
             and tells the caller the withdrawal failed; the retry then gives {retry:?} and the \
             statistics hold {withdrawals} withdrawals for 1 withdrawn draft"
        ),
    }
    assert_eq!(retry.unwrap(), Withdrawn::DraftErased);
    assert_eq!(withdrawals, 1);
}
