//! `lotsa demo`: the main job, end to end, on embedded defaults. A shift at Sergels torg
//! ("Plattan"): the example programs are signed with a throw-away administrator key and verified as
//! the app does at start; a temporary device (store + development key vault) is set up; then the
//! officer meets seven people, and for each the account shows the verdict, its reasons, the
//! routing, and the consent script the officer reads. Those who consent go draft → consent →
//! finalize into the sealed outbox (and the account shows what the clinic will read: only the
//! fields the program needs); a refusal and the ineligibility reasons are counted; one person
//! withdraws before delivery. It ends with the queue, the statistics and the audit check.

use crate::eligibility_cmd::{verdict_json, verdict_text};
use crate::field_cmd;
use crate::field_cmd::{print_stats, print_status};
use crate::out::{self, Ctx, Failure};
use crate::CmdResult;
use chrono::{Duration, Months, NaiveDate};
use lotsa_core::clock::{to_stockholm, Clock, SystemClock};
use lotsa_core::consent::{Capacity, ConsentForm, Method, Recorder, Role};
use lotsa_core::crypto::seal::{open_from_device, ClinicKeyPair, SealBinding, Sealed};
use lotsa_core::crypto::vault::DevFileVault;
use lotsa_core::crypto::{CryptoError, SigningKey};
use lotsa_core::eligibility::Provenance;
use lotsa_core::identity;
use lotsa_core::program::{self, Bundle, HpkeKey, ProgramSet, EXAMPLE_PROGRAMS_JSON};
use lotsa_core::referral::{
    assess_typed, find_program, new_referral_id, DraftUpdate, HandoverPayload, TypedFacts,
};
use lotsa_core::store::{Store, StoreError, Withdrawn, PAYLOAD_SCHEMA_VERSION};
use lotsa_core::text::{Lang, Reasoned};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One person the officer meets.
struct Person {
    who: &'static str,
    typed_number: String,
    corrected_number: Option<String>,
    municipality: &'static str,
    provenance: Provenance,
    name: &'static str,
    phone: &'static str,
    consents: bool,
    script_lang: Lang,
}

fn years_ago(today: NaiveDate, years: u32, days: i64) -> NaiveDate {
    today
        .checked_sub_months(Months::new(12 * years))
        .unwrap_or(today)
        - Duration::days(days)
}

fn people(today: NaiveDate) -> Vec<Person> {
    let pnr = |born, serial| identity::compose(born, serial, false);
    let alex = pnr(years_ago(today, 36, 40), 123);
    // A typo: two digits swapped in the serial, which the check digit catches.
    let sam = pnr(years_ago(today, 41, 3), 457);
    let mut typo: Vec<char> = sam.chars().collect();
    typo.swap(9, 10);
    vec![
        Person {
            who: "Alex, lives in Stockholm, shows an ID card",
            typed_number: alex,
            corrected_number: None,
            municipality: "Stockholm",
            provenance: Provenance::Document,
            name: "Alex",
            phone: "070-123 45 67",
            consents: true,
            script_lang: Lang::Sv,
        },
        Person {
            who: "Robin, in town for the day, registered in Gislaved",
            typed_number: pnr(years_ago(today, 29, 100), 662),
            corrected_number: None,
            municipality: "gislaved kommun",
            provenance: Provenance::Document,
            name: "Robin",
            phone: "+46 (0)72-555 01 02",
            consents: true,
            script_lang: Lang::En,
        },
        Person {
            who: "Kim, says they live in Solna",
            typed_number: pnr(years_ago(today, 45, 0), 184),
            corrected_number: None,
            municipality: "Solna",
            provenance: Provenance::Stated,
            name: "Kim",
            phone: "073 000 11 22",
            consents: false,
            script_lang: Lang::Sv,
        },
        Person {
            who: "Mika, 17, turns 18 in twelve days",
            typed_number: pnr(years_ago(today, 18, -12), 345),
            corrected_number: None,
            municipality: "Stockholm",
            provenance: Provenance::Register,
            name: "Mika",
            phone: "076-111 22 33",
            consents: false,
            script_lang: Lang::Sv,
        },
        Person {
            who: "Jo, has a samordningsnummer, sleeps in Stockholm",
            typed_number: identity::compose(years_ago(today, 31, 7), 228, true),
            corrected_number: None,
            municipality: "Stockholm",
            provenance: Provenance::Stated,
            name: "Jo",
            phone: "070-999 88 77",
            consents: false,
            script_lang: Lang::Sv,
        },
        Person {
            who: "Noor, lives in Stockholm, listens, and says no for now",
            typed_number: pnr(years_ago(today, 52, 200), 816),
            corrected_number: None,
            municipality: "Stockholms stad",
            provenance: Provenance::Register,
            name: "Noor",
            phone: "070-555 66 77",
            consents: false,
            script_lang: Lang::Sv,
        },
        Person {
            who: "Sam, lives in Stockholm (says so); the officer mistypes the number",
            typed_number: typo.into_iter().collect(),
            corrected_number: Some(sam),
            municipality: "0180",
            provenance: Provenance::Stated,
            name: "Sam",
            phone: "08-123 456 78",
            consents: true,
            script_lang: Lang::Sv,
        },
    ]
}

/// The receiving side of the demo: the clinic's key pair (the clinic service holds the secret; the
/// device only ever sees the public key in the bundle).
struct DemoClinic {
    keys: ClinicKeyPair,
}

/// Signs the embedded example programs with a throw-away administrator key, valid from today for
/// a year, with a freshly generated clinic key, and verifies the result exactly as the app verifies
/// a bundle at start.
fn example_bundle(
    ctx: &Ctx,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Bundle, String, DemoClinic), Failure> {
    let crypto = |e: CryptoError| ctx.fail(&StoreError::Crypto(e));
    let mut set = ProgramSet::from_json(EXAMPLE_PROGRAMS_JSON).map_err(|e| ctx.fail(&e))?;
    set.issued_at = to_stockholm(now);
    set.expires_at = to_stockholm(now + Duration::days(365));
    let clinic = ClinicKeyPair::generate().map_err(crypto)?;
    set.replace_clinic_hpke_keys(&HpkeKey {
        key_id: "demo-clinic-1".into(),
        public_key: clinic.public_key_b64(),
        not_before: to_stockholm(now - Duration::days(1)),
        not_after: to_stockholm(now + Duration::days(365)),
    });
    let key = SigningKey::generate().map_err(crypto)?;
    let signed = set.sign(&key).map_err(|e| ctx.fail(&e))?;
    let bundle = program::verify(&signed, &key.public_key(), now).map_err(|e| ctx.fail(&e))?;
    Ok((
        bundle,
        key.public_key().key_id(),
        DemoClinic { keys: clinic },
    ))
}

impl DemoClinic {
    /// What the clinic reads when it opens a sealed referral.
    fn open(
        &self,
        ctx: &Ctx,
        id: &str,
        program_id: &str,
        sealed: &[u8],
    ) -> Result<HandoverPayload, Failure> {
        let binding = SealBinding {
            handover_id: id,
            program_id,
            clinic_key_id: "demo-clinic-1",
            schema_version: PAYLOAD_SCHEMA_VERSION,
        };
        let crypto = |e: CryptoError| ctx.fail(&StoreError::Crypto(e));
        let sealed = Sealed::from_bytes(sealed).map_err(crypto)?;
        let plain = open_from_device(&self.keys, &binding, &sealed).map_err(crypto)?;
        serde_json::from_slice(&plain).map_err(|_| {
            Failure::other(
                "payload",
                ctx.lang.pick(
                    "mottagningen kan inte läsa den öppnade remissen",
                    "the clinic cannot read the opened referral",
                ),
            )
        })
    }
}

/// The name of every demo device folder in the temp dir: `lotsa-demo-<uuid>`.
const DEMO_PREFIX: &str = "lotsa-demo-";

/// The file in a demo device folder that names the process using it.
const OWNER_FILE: &str = "owner.pid";

/// A demo folder without a live owner this old is left over from a run that was killed.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// The folder to remove if the demo is interrupted (SIGINT, SIGTERM, SIGHUP).
static ON_SIGNAL: Mutex<Option<PathBuf>> = Mutex::new(None);

/// A temporary device: a store and a development key vault in a fresh folder, removed at the end,
/// on SIGINT/SIGTERM/SIGHUP, or — after a SIGKILL or a crash — by the next demo run.
struct TempDevice {
    dir: PathBuf,
}

impl TempDevice {
    fn new(ctx: &Ctx) -> Result<TempDevice, Failure> {
        let temp = std::env::temp_dir();
        sweep_stale(&temp);
        let dir = temp.join(format!("{DEMO_PREFIX}{}", new_referral_id()));
        // Named before it exists, so a signal from here on removes it.
        if let Ok(mut slot) = ON_SIGNAL.lock() {
            *slot = Some(dir.clone());
        }
        // Only the first demo of a process installs the handler (there is only one).
        let _ = ctrlc::set_handler(|| {
            if let Ok(slot) = ON_SIGNAL.lock() {
                if let Some(dir) = slot.as_ref() {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            // 128 + SIGINT: interrupted, whichever of the signals it was.
            std::process::exit(130);
        });
        let device = TempDevice { dir };
        let mut folder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            // The device holds keys and drafts: the user's own.
            folder.mode(0o700);
        }
        folder
            .create(&device.dir)
            .and_then(|()| {
                std::fs::write(
                    device.dir.join(OWNER_FILE),
                    format!("{}\n", std::process::id()),
                )
            })
            .map_err(|e| {
                let d = device.dir.display();
                Failure::other(
                    "io",
                    ctx.lang.pick(
                        format!("{d} går inte att skapa: {}", out::io_reason(&e, Lang::Sv)),
                        format!("cannot create {d}: {}", out::io_reason(&e, Lang::En)),
                    ),
                )
            })?;
        Ok(device)
    }
}

impl Drop for TempDevice {
    fn drop(&mut self) {
        let mut slot = ON_SIGNAL.lock().ok();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(slot) = slot.as_mut() {
            **slot = None;
        }
    }
}

/// `lotsa-demo-` and a UUID in its usual form: only such folders are ever swept.
fn is_demo_folder(name: &str) -> bool {
    let Some(id) = name.strip_prefix(DEMO_PREFIX) else {
        return false;
    };
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Removes the demo folders earlier runs left behind (killed with SIGKILL, or crashed): those
/// whose owner process is gone, and those without a live owner older than [`STALE_AFTER`]. Only
/// folders (never links) named as the demo names them, and on unix only the user's own.
fn sweep_stale(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_str().is_some_and(is_demo_folder) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || !owned_by_me(&meta) {
            continue;
        }
        let owner = std::fs::read_to_string(path.join(OWNER_FILE))
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok());
        let stale = match owner.map(process_alive) {
            Some(Some(alive)) => !alive,
            // No owner named, or no way to tell: by age.
            _ => meta
                .modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_AFTER),
        };
        if stale {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

#[cfg(unix)]
fn owned_by_me(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    meta.uid() == unsafe { libc::geteuid() }
}

#[cfg(not(unix))]
fn owned_by_me(_: &std::fs::Metadata) -> bool {
    true
}

/// Whether the process `pid` runs (`None`: cannot tell).
#[cfg(unix)]
fn process_alive(pid: u32) -> Option<bool> {
    let pid = libc::pid_t::try_from(pid).ok().filter(|p| *p > 0)?;
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return Some(true);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ESRCH) => Some(false),
        // EPERM: it exists, under another user.
        _ => Some(true),
    }
}

#[cfg(not(unix))]
fn process_alive(_: u32) -> Option<bool> {
    None
}

pub fn run(ctx: &Ctx) -> CmdResult {
    let clock = SystemClock;
    let now = clock.now();
    let today = clock.today();
    let lang = ctx.lang;
    let say = |line: String| -> CmdResult {
        if ctx.json {
            Ok(())
        } else {
            ctx.line(line)
        }
    };
    let (bundle, key_id, clinic) = example_bundle(ctx, now)?;
    let home = bundle.program("lots-for-livet").ok_or_else(|| {
        Failure::other(
            "bundle",
            lang.pick(
                "exemplet saknar lots-for-livet",
                "the example has no lots-for-livet",
            ),
        )
    })?;
    let device = TempDevice::new(ctx)?;
    let mut vault_warning = String::new();
    let vault_dir = device.dir.join("vault");
    let vault = DevFileVault::open_with_warning(&vault_dir, |w| {
        vault_warning = field_cmd::vault_warning(lang, &vault_dir, w)
    })
    .map_err(|e| ctx.fail(&StoreError::Crypto(CryptoError::Vault(e))))?;
    let mut store = Store::open(
        &device.dir.join("device.sqlite"),
        Arc::new(vault),
        Arc::new(clock),
    )
    .map_err(|e| ctx.fail(&e))?;
    let sf = |e: StoreError| ctx.fail(&e);
    let officer = Recorder {
        role: Role::Police,
        officer_id: "P-1234".into(),
        unit: "City polisområde, Plattan".into(),
    };

    let started = to_stockholm(now).format("%Y-%m-%d %H:%M %:z");
    say(lang.pick(
        format!("Lotsa-demo — ett pass på Sergels torg (\"Plattan\"), Stockholm, {started}"),
        format!("Lotsa demo — a shift at Sergels torg (\"Plattan\"), Stockholm, {started}"),
    ))?;
    let n = bundle.programs().len();
    say(lang.pick(
        format!("Programfil: exempelprogrammen, signerade med en tillfällig administratörsnyckel {key_id} och kontrollerade som appen gör vid start ({n} program); exempelmottagningens krypteringsnyckel skapas ny för varje körning."),
        format!("Program bundle: the example programs, signed with a throw-away administrator key {key_id} and verified as the app does at start ({n} programs); the example clinic's encryption key is made fresh for this run."),
    ))?;
    let dir = device.dir.display();
    say(lang.pick(
        format!("Enhet: en tillfällig lagring i {dir}"),
        format!("Device: a temporary store in {dir}"),
    ))?;
    say(format!("  ({})", vault_warning.trim()))?;
    say(format!(
        "Officer {} ({}) offers {}.\n",
        officer.officer_id, officer.unit, home.name
    ))?;

    let mut log = Vec::new();
    let mut handovers: Vec<(String, String, &'static str)> = Vec::new();
    let (mut offers, mut eligible, mut routed) = (0, 0, 0);
    for (i, p) in people(today).into_iter().enumerate() {
        say(format!("{}. {}", i + 1, p.who))?;
        let mut number = p.typed_number.clone();
        let parsed = match identity::parse(&number, today) {
            Ok(n) => n,
            Err(e) => {
                say(format!(
                    "   number {number}: refused — {} [{}]",
                    e.message(lang),
                    e.code()
                ))?;
                let Some(fixed) = &p.corrected_number else {
                    log.push(json!({"person": i + 1, "error": e.code()}));
                    continue;
                };
                say(format!("   The officer asks again and retypes it: {fixed}"))?;
                number = fixed.clone();
                identity::parse(&number, today).map_err(|e| ctx.fail(&e))?
            }
        };
        let age = parsed.age_on(today);
        say(format!(
            "   number {number}: a valid {}, age {}",
            parsed.kind().as_str(),
            age.exact()
                .map(|a| a.to_string())
                .unwrap_or_else(|| format!("{}–{}", age.min, age.max))
        ))?;
        // What the officer has typed so far, checked on the street before anything is stored.
        let typed = TypedFacts {
            identity_number: Some(number.clone()),
            municipality: Some(p.municipality.to_string()),
            provenance: p.provenance,
            ..TypedFacts::default()
        };
        let street_check = |program_id: &str| {
            assess_typed(&bundle, program_id, &typed, today).map_err(|e| ctx.fail(&e))
        };
        let verdict = street_check(&home.id)?;
        offers += 1;
        for line in verdict_text(&verdict, &home.name, lang).lines() {
            say(format!("   {line}"))?;
        }
        let target = if verdict.may_refer {
            eligible += 1;
            Some((home, verdict.clone()))
        } else if let Some(route) = verdict.routing.first() {
            routed += 1;
            let other = find_program(&bundle, &route.program_id).map_err(|e| ctx.fail(&e))?;
            Some((other, street_check(&other.id)?))
        } else {
            None
        };
        let mut entry = json!({"person": i + 1, "verdict": verdict_json(&verdict, lang)});
        match target {
            Some((program, v)) if v.may_refer => {
                let script = program.consent_script(p.script_lang).ok_or_else(|| {
                    Failure::other(
                        "bundle",
                        lang.pick("ingen samtyckestext", "no consent script"),
                    )
                })?;
                say(format!(
                    "   The officer reads {}'s consent script ({} v{}, {}):",
                    program.name,
                    script.id,
                    script.version,
                    p.script_lang.code()
                ))?;
                for line in wrap(&script.text, 92) {
                    say(format!("     │ {line}"))?;
                }
                if !p.consents {
                    store.record_refusal(&bundle, &program.id).map_err(sf)?;
                    say("   Declines for now. The refusal is counted; nothing about the person is kept.".into())?;
                    entry["refused"] = json!(true);
                    log.push(entry);
                    say(String::new())?;
                    continue;
                }
                let id = store.create_draft(&bundle, &program.id).map_err(sf)?;
                let typed_in = DraftUpdate {
                    name: Some(p.name.into()),
                    phone: Some(p.phone.into()),
                    language: Some(p.script_lang.code().into()),
                    best_time: Some("efter kl. 14".into()),
                    identity_number: typed.identity_number.clone(),
                    municipality: typed.municipality.clone(),
                    provenance: Some(typed.provenance),
                    ..DraftUpdate::default()
                };
                store.update_draft(&id, typed_in).map_err(sf)?;
                let consent = ConsentForm {
                    program_id: Some(program.id.clone()),
                    language: p.script_lang.code().into(),
                    script_version: Some(script.version),
                    method: Method::Verbal {
                        witness: "P-4711".into(),
                    },
                    recorded_by: officer.clone(),
                    told_no_effect_on_police_matter: true,
                    told_can_withdraw: true,
                    capacity: Capacity::Adequate,
                    share_personnummer: false,
                };
                store.record_consent(&id, &bundle, &consent).map_err(sf)?;
                let handover = store.finalize(&id, &bundle).map_err(sf)?;
                let sealed = store.sealed_payload(&handover).map_err(sf)?;
                say(format!(
                    "   Consents (verbal, witness P-4711). Draft → consent → finalize: handover {handover} is sealed to {} ({} bytes the phone cannot open); the draft and its key are erased.",
                    program.clinic.name,
                    sealed.len()
                ))?;
                let payload = clinic.open(ctx, &handover, &program.id, &sealed)?;
                say(format!(
                    "   What the clinic will read: contact {} | person {} | eligibility {}{} — {}",
                    serde_json::to_string(&payload.contact).unwrap_or_default(),
                    serde_json::to_string(&payload.person).unwrap_or_default(),
                    payload.eligibility.outcome.as_str(),
                    if payload.eligibility.provisional {
                        " (provisional: the clinic confirms residency)"
                    } else {
                        ""
                    },
                    program.callback_promise.get(lang)
                ))?;
                entry["handover_id"] = json!(handover);
                entry["handover"] = serde_json::to_value(&payload).unwrap_or_default();
                handovers.push((handover, program.id.clone(), p.name));
            }
            _ => {
                store
                    .record_ineligible(&bundle, &home.id, &typed)
                    .map_err(sf)?;
                say("   Nothing to offer today; the officer explains why. Only the reason is counted.".into())?;
            }
        }
        log.push(entry);
        say(String::new())?;
    }

    // Sam changes their mind before the phone has had coverage: one call withdraws.
    let mut withdrawals = Vec::new();
    if let Some((id, _, name)) = handovers.iter().find(|(_, _, n)| *n == "Sam") {
        let result = store.withdraw(id, Some(&officer)).map_err(sf)?;
        say(format!(
            "Twenty minutes later {name} comes back and withdraws consent. The phone has had no coverage, so: {}.",
            match &result {
                Withdrawn::ErasedBeforeDelivery => "the sealed referral is erased before delivery".to_string(),
                other => format!("{other:?}"),
            }
        ))?;
        withdrawals.push(json!({"handover_id": id, "result": result}));
    }

    say(format!(
        "\nEnd of shift: {offers} people met, {eligible} eligible here, {routed} routed to another program, {} referrals sealed for delivery.",
        handovers.len()
    ))?;
    let status = store.queue_status().map_err(sf)?;
    let stats = store.stats().map_err(sf)?;
    let audit = store.verify_audit().map_err(sf)?;
    if !ctx.json {
        say(lang.pick(
            "\nUtkorgen (det appen visar; inga personuppgifter):".into(),
            "\nQueue (what the app shows; no personal data):".into(),
        ))?;
        print_status(ctx, &store)?;
        say(lang.pick(
            "\nStatistik (anonyma räknare):".into(),
            "\nStatistics (anonymous counters):".into(),
        ))?;
        print_stats(ctx, &store)?;
        let (n, head) = (audit.entries, audit.head.get(..16).unwrap_or(&audit.head));
        say(lang.pick(
            format!("\nHändelseloggen: {n} poster, hashkedjan är hel (senaste {head})."),
            format!("\nAudit log: {n} entries, hash chain intact (head {head})."),
        ))?;
        say(lang.pick(
            "Leveransen till mottagningen sker när telefonen har täckning (synksteget).".into(),
            "Delivery to the clinic comes when the phone has coverage (the sync step).".into(),
        ))?;
    } else {
        ctx.print_json(&json!({
            "date": today,
            "bundle_signer": key_id,
            "people": log,
            "withdrawals": withdrawals,
            "totals": {"offers": offers, "eligible": eligible, "routed": routed, "handovers": handovers.len()},
            "queue": status,
            "stats": stats,
            "audit": {"ok": true, "entries": audit.entries, "head": audit.head},
        }))?;
    }
    Ok(())
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
