//! `lotsa field`: a scriptable field device — the same store, vault and bundle an app uses, one
//! command per officer action. Keys live in a development file vault (`--vault`), which says so
//! loudly every time it opens: never use it on a real device.

use crate::eligibility_cmd::{parse_provenance, verdict_json, verdict_text, PersonArgs};
use crate::out::{Ctx, Done, Failure};
use crate::program_cmd::load_bundle;
use crate::CmdResult;
use clap::{Args, Subcommand};
use lotsa_core::clock::{to_stockholm, SystemClock};
use lotsa_core::consent::{Capacity, ConsentForm, Method, Recorder, Role};
use lotsa_core::crypto::vault::DevFileVault;
use lotsa_core::crypto::CryptoError;
use lotsa_core::eligibility::Provenance;
use lotsa_core::program::Bundle;
use lotsa_core::referral::{find_program, DraftUpdate, ReferralError};
use lotsa_core::store::{ItemKind, ItemState, Store, StoreError, Withdrawn};
use lotsa_core::text::{Lang, Reasoned};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args)]
pub struct FieldArgs {
    /// The device database (created if missing).
    #[arg(long)]
    db: PathBuf,
    /// The development key vault's folder (created if missing).
    #[arg(long)]
    vault: PathBuf,
    /// The signed program bundle (needed by new, check, consent, finalize, close and
    /// refuse --program).
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// The administrator's public key (.pub file or base64), with --bundle.
    #[arg(long)]
    trust: Option<String>,
    #[command(subcommand)]
    command: FieldCommand,
}

/// The names of a `DraftUpdate` as JSON (`field set --from`), the same as the options of `set`.
const UPDATE_FIELDS: [&str; 10] = [
    "name",
    "phone",
    "language",
    "best_time",
    "note",
    "identity_number",
    "birth_date",
    "municipality",
    "postal_code",
    "provenance",
];

#[derive(Subcommand)]
enum FieldCommand {
    /// Start a draft for a program; prints its id.
    New {
        /// The program offered (an id from the bundle, e.g. lots-for-livet).
        #[arg(long)]
        program: String,
    },
    /// Fill in a draft (only the fields given change; an empty value clears a field).
    ///
    /// Personal data on the command line can be read by others (ps, shell history): `--from -`
    /// reads the change from stdin instead, `--from FILE` from a file.
    Set {
        /// The draft's id (from `new`).
        draft: String,
        /// The person's name or chosen name.
        #[arg(long)]
        name: Option<String>,
        /// Phone number to call back on.
        #[arg(long)]
        phone: Option<String>,
        /// The language the person wants to be called in.
        #[arg(long)]
        language: Option<String>,
        /// When it suits the person to be called.
        #[arg(long)]
        best_time: Option<String>,
        /// A short note for the clinic.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        person: PersonArgs,
        /// How residency is known: stated, document or register.
        #[arg(long, value_parser = parse_provenance)]
        provenance: Option<Provenance>,
        /// Read the change as one JSON object from a file, or from stdin with `-`.
        ///
        /// The names are the options' (name, phone, language, best_time, note,
        /// identity_number, birth_date, municipality, postal_code, provenance); a value "" clears
        /// a field, null or no name keeps it. Not together with those options. At most 1 MiB.
        #[arg(long, value_name = "FILE|-", conflicts_with_all = UPDATE_FIELDS)]
        from: Option<String>,
    },
    /// Show a draft's eligibility verdict and what is still missing.
    Check {
        /// The draft's id.
        draft: String,
    },
    /// Record the person's consent to the draft's program.
    Consent {
        /// The draft's id.
        draft: String,
        /// verbal (with --witness) or signature (with --signature-sha256).
        #[arg(long, default_value = "verbal")]
        method: String,
        /// The witness's service number or staff id (a verbal consent).
        #[arg(long)]
        witness: Option<String>,
        /// SHA-256 (hex) of the signature given on screen (a signed consent).
        #[arg(long)]
        signature_sha256: Option<String>,
        /// The recording officer's service number or staff id.
        #[arg(long)]
        officer: String,
        /// The officer's unit (or set LOTSA_UNIT once for the shift).
        #[arg(long, env = "LOTSA_UNIT")]
        unit: String,
        /// The person agrees to pass on their personnummer too (only asked when the program
        /// accepts it as optional; a program that requires it always gets it).
        #[arg(long)]
        share_personnummer: bool,
        /// police or lots.
        #[arg(long, default_value = "police")]
        role: String,
        /// The person was told refusing has no effect on the police matter.
        #[arg(long)]
        told_no_effect: bool,
        /// The person was told consent can be withdrawn at any time, and how.
        #[arg(long)]
        told_withdrawal: bool,
        /// adequate, doubtful or lacking.
        #[arg(long)]
        capacity: String,
        /// The language the script was read in.
        #[arg(long, default_value = "sv")]
        language: String,
        /// The script version read out (default: the program's current one).
        #[arg(long)]
        script_version: Option<u32>,
    },
    /// The person said no: erase their draft (--draft) or count the offer (--program).
    ///
    /// With --program no draft was started. Only the refusal is counted; nothing about the
    /// person is stored.
    Refuse {
        /// The program offered, when no draft was started.
        #[arg(long, required_unless_present = "draft", conflicts_with = "draft")]
        program: Option<String>,
        /// The draft to erase.
        #[arg(long)]
        draft: Option<String>,
    },
    /// The person cannot be offered the program: count the verdict's reasons and erase the draft.
    Close {
        /// The draft's id.
        draft: String,
    },
    /// Seal the draft for the clinic and move it to the outbox; prints the handover id.
    Finalize {
        /// The draft's id.
        draft: String,
    },
    /// Withdraw consent: erase before delivery, or queue a withdrawal for the clinic.
    Withdraw {
        /// The handover id (from `finalize`) or a draft's id.
        handover: String,
    },
    /// Delete a draft.
    Delete {
        /// The draft's id.
        draft: String,
    },
    /// Enrol this device at a clinic, with the clinic's one-time code.
    Enrol {
        /// A program whose clinic to enrol at (e.g. lots-for-livet).
        #[arg(long, required_unless_present = "clinic", conflicts_with = "clinic")]
        program: Option<String>,
        /// Or the clinic's endpoint, as the bundle names it.
        #[arg(long)]
        clinic: Option<String>,
        /// The one-time code from `lotsa clinic enrol-code`.
        #[arg(long)]
        code: String,
    },
    /// Send what is due to the clinics, verify the receipts, and forget what was delivered.
    Sync {
        /// Stop by then (seconds); no request is started that could not finish in time.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
        deadline: u64,
        /// Coverage just came back: retry at once what never reached a clinic.
        #[arg(long)]
        connectivity_restored: bool,
        /// How long an item stays leased to this run (seconds; for tests).
        #[arg(long, default_value_t = 120, hide = true)]
        lease_secs: u64,
        /// The first retry's bound (milliseconds; for tests).
        #[arg(long, default_value_t = 30_000, hide = true)]
        backoff_base_ms: u64,
    },
    /// Try a failed or waiting item again at the next sync.
    Retry {
        /// The handover or withdrawal id.
        id: String,
    },
    /// Cancel an undelivered referral: erased, and the clinic told if a send was ever tried.
    Cancel {
        /// The handover id.
        handover: String,
    },
    /// The outbox: counts by state, oldest waiting item, each item (no personal data).
    Status,
    /// Anonymous counters per program and day.
    ///
    /// With --json one object: {"stats": [{"day", "program_id", "counter", "count"}, …]}.
    Stats,
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain.
    Verify,
}

fn store_fail(ctx: &Ctx, e: StoreError) -> Failure {
    let f = ctx.fail(&e);
    match e.field() {
        Some(name) => f.on_field(name),
        None => f,
    }
}

/// Opens the device store with the development vault (which warns on stderr).
pub fn open_store(ctx: &Ctx, db: &Path, vault: &Path) -> Result<Store, Failure> {
    let vault =
        DevFileVault::open_with_warning(vault, |w| ctx.warn(&vault_warning(ctx.lang, vault, w)))
            .map_err(|e| store_fail(ctx, StoreError::Crypto(CryptoError::Vault(e))))?;
    Store::open(db, Arc::new(vault), Arc::new(SystemClock)).map_err(|e| store_fail(ctx, e))
}

/// The development vault's warning in the chosen language (the core words it in English).
pub fn vault_warning(lang: Lang, dir: &Path, english: &str) -> String {
    lang.pick(
        format!(
            "*** VARNING *** UTVECKLINGSNYCKELLAGER: nycklarna ligger i filer som vem som helst som kan läsa dem kan använda för att dekryptera allt; använd det aldrig på en riktig enhet (mapp: {})",
            dir.display()
        ),
        english.to_string(),
    )
}

fn need_bundle(ctx: &Ctx, a: &FieldArgs) -> Result<Bundle, Failure> {
    match (&a.bundle, &a.trust) {
        (Some(b), Some(t)) => load_bundle(ctx, b, t),
        _ => Err(Failure::usage(ctx.lang.pick(
            "kommandot behöver --bundle och --trust (den signerade programfilen och administratörens nyckel)",
            "this command needs --bundle and --trust (the signed program bundle and the administrator's key)",
        ))),
    }
}

/// A problem found in what was typed, as JSON.
fn problem_json(ctx: &Ctx, e: &ReferralError) -> serde_json::Value {
    json!({"field": e.field(), "code": e.code(), "message": e.message(ctx.lang)})
}

/// A `DraftUpdate` from one JSON object (`set --from`). A refusal names what is wrong — the
/// syntax by line and column, a field by its name when it is one of ours — never what was
/// written (it is personal data).
fn parse_update(ctx: &Ctx, text: &str) -> Result<DraftUpdate, Failure> {
    if let Ok(update) = serde_json::from_str::<DraftUpdate>(text) {
        return Ok(update);
    }
    let lang = ctx.lang;
    let bad = |field: &str, sv: String, en: String| {
        Failure::other("invalid_json", lang.pick(sv, en)).on_field(field)
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Eof => bad(
            "from",
            "JSON-texten tar slut för tidigt".into(),
            "the JSON ends too early".into(),
        ),
        _ => bad(
            "from",
            format!(
                "ingen giltig JSON (rad {}, kolumn {})",
                e.line(),
                e.column()
            ),
            format!("not valid JSON (line {}, column {})", e.line(), e.column()),
        ),
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err(bad(
            "from",
            "ska vara ett JSON-objekt, {…}".into(),
            "must be one JSON object, {…}".into(),
        ));
    };
    let names = UPDATE_FIELDS.join(", ");
    for (key, v) in &map {
        let Some(field) = UPDATE_FIELDS.iter().find(|f| *f == key) else {
            return Err(bad(
                "from",
                format!("objektet har ett fält som lotsa inte känner till; fälten är {names}"),
                format!("the object has a field lotsa does not know; the fields are {names}"),
            ));
        };
        if serde_json::from_value::<DraftUpdate>(json!({ key: v })).is_err() {
            let (sv, en) = if *field == "provenance" {
                (
                    "ska vara \"stated\", \"document\" eller \"register\"",
                    "must be \"stated\", \"document\" or \"register\"",
                )
            } else {
                (
                    "ska vara en sträng (\"\" tömmer fältet, null behåller det)",
                    "must be a string (\"\" clears the field, null keeps it)",
                )
            };
            return Err(bad(field, format!("{field} {sv}"), format!("{field} {en}")));
        }
    }
    Err(bad(
        "from",
        "ett fält förekommer två gånger".into(),
        "a field is given twice".into(),
    ))
}

/// The consent form from the options: the words an officer types become the core's choices;
/// the core builds and checks the record.
fn consent_form(ctx: &Ctx, c: &FieldCommand) -> Result<ConsentForm, Failure> {
    let FieldCommand::Consent {
        method,
        witness,
        signature_sha256,
        officer,
        unit,
        role,
        told_no_effect,
        told_withdrawal,
        capacity,
        language,
        script_version,
        share_personnummer,
        ..
    } = c
    else {
        unreachable!("only called for consent")
    };
    let lang = ctx.lang;
    let method = match method.trim().to_ascii_lowercase().as_str() {
        "verbal" => Method::Verbal {
            witness: witness.clone().unwrap_or_default(),
        },
        "signature" | "signature_on_screen" => Method::SignatureOnScreen {
            signature_sha256: signature_sha256.clone().unwrap_or_default(),
        },
        _ => {
            return Err(Failure::other(
                "invalid_method",
                lang.pick(
                    "okänd metod: välj verbal eller signature",
                    "unknown method: use verbal or signature",
                ),
            )
            .on_field("method"))
        }
    };
    let role = Role::parse(role).ok_or_else(|| {
        Failure::other(
            "invalid_role",
            lang.pick("välj police eller lots", "use police or lots"),
        )
        .on_field("role")
    })?;
    let capacity = Capacity::parse(capacity).ok_or_else(|| {
        Failure::other(
            "invalid_capacity",
            lang.pick(
                "välj adequate, doubtful eller lacking",
                "use adequate, doubtful or lacking",
            ),
        )
        .on_field("capacity")
    })?;
    Ok(ConsentForm {
        program_id: None,
        language: language.clone(),
        script_version: *script_version,
        method,
        recorded_by: Recorder {
            role,
            officer_id: officer.clone(),
            unit: unit.clone(),
        },
        told_no_effect_on_police_matter: *told_no_effect,
        told_can_withdraw: *told_withdrawal,
        capacity,
        share_personnummer: *share_personnummer,
    })
}

pub fn run(ctx: &Ctx, a: FieldArgs) -> CmdResult {
    let mut store = open_store(ctx, &a.db, &a.vault)?;
    let sf = |e| store_fail(ctx, e);
    let lang = ctx.lang;
    match &a.command {
        FieldCommand::New { program } => {
            let bundle = need_bundle(ctx, &a)?;
            let id = store.create_draft(&bundle, program).map_err(sf)?;
            if ctx.json {
                ctx.print_json(&json!({ "draft_id": id }))
            } else {
                ctx.line(&id)
            }
            .map_err(|f| f.after_done(lang, Done::DraftCreated, &id))
        }
        FieldCommand::Set {
            draft,
            name,
            phone,
            language,
            best_time,
            note,
            person,
            provenance,
            from,
        } => {
            let change = match from {
                Some(source) => {
                    let text = if source == "-" {
                        ctx.read_stdin()
                    } else {
                        ctx.read_file(Path::new(source))
                    }
                    .map_err(|f| f.on_field("from"))?;
                    parse_update(ctx, &text)?
                }
                None => DraftUpdate {
                    name: name.clone(),
                    phone: phone.clone(),
                    language: language.clone(),
                    best_time: best_time.clone(),
                    note: note.clone(),
                    identity_number: person.identity_number.clone(),
                    birth_date: person.birth_date.clone(),
                    municipality: person.municipality.clone(),
                    postal_code: person.postal_code.clone(),
                    provenance: *provenance,
                },
            };
            // The core says at once what is wrong with what was typed, and keeps it all the same.
            let saved = store.update_draft(draft, change).map_err(sf)?;
            if ctx.json {
                let problems: Vec<_> = saved
                    .problems
                    .iter()
                    .map(|e| problem_json(ctx, e))
                    .collect();
                return ctx.print_json(&json!({
                    "draft_id": draft,
                    "saved": true,
                    "problem": problems.first(),
                    "problems": problems,
                    "consent_cleared": saved.consent_cleared,
                }));
            }
            ctx.line(lang.pick(format!("sparat {draft}"), format!("saved {draft}")))?;
            for e in &saved.problems {
                ctx.line(format!(
                    "  {}: {} [{}]",
                    lang.pick("att åtgärda", "to fix"),
                    e.message(lang),
                    e.code()
                ))?;
            }
            if saved.consent_cleared {
                ctx.line(lang.pick(
                    "  obs: personnumret eller födelsedatumet ändrades: samtycket är borttaget och måste ges igen",
                    "  note: the identity number or date of birth changed: the consent is cleared and must be given again",
                ))?;
            }
            Ok(())
        }
        FieldCommand::Check { draft } => {
            let bundle = need_bundle(ctx, &a)?;
            let check = store.check_draft(draft, &bundle).map_err(sf)?;
            let program =
                find_program(&bundle, &check.verdict.program_id).map_err(|e| sf(e.into()))?;
            if ctx.json {
                let mut v = verdict_json(&check.verdict, lang);
                v["consent_recorded"] = json!(check.consent_recorded);
                v["ready_to_finalize"] = json!(check.ready_to_finalize);
                if let Some(e) = &check.problem {
                    v["problem"] = problem_json(ctx, e);
                }
                return ctx.print_json(&v);
            }
            ctx.text(verdict_text(&check.verdict, &program.name, lang))?;
            if let Some(e) = &check.problem {
                ctx.line(format!(
                    "  {}: {} [{}]",
                    lang.pick("att åtgärda", "still to fix"),
                    e.message(lang),
                    e.code()
                ))?;
            }
            ctx.line(match check.consent_recorded {
                true => lang.pick("  samtycke: registrerat", "  consent: recorded"),
                false => lang.pick(
                    "  samtycke: ännu inte registrerat",
                    "  consent: not yet recorded",
                ),
            })?;
            ctx.line(match check.ready_to_finalize {
                true => lang.pick("  klar att skicka: ja", "  ready to finalize: yes"),
                false => lang.pick("  klar att skicka: nej", "  ready to finalize: no"),
            })
        }
        c @ FieldCommand::Consent { draft, .. } => {
            let bundle = need_bundle(ctx, &a)?;
            let form = consent_form(ctx, c)?;
            let given = store.record_consent(draft, &bundle, &form).map_err(sf)?;
            let record = &given.record;
            if ctx.json {
                let notes: Vec<_> = given
                    .notes
                    .iter()
                    .map(|n| json!({"code": n.code(), "message": n.message(lang)}))
                    .collect();
                return ctx.print_json(&json!({
                    "draft_id": draft,
                    "consent_id": record.consent_id,
                    "script": record.script,
                    "data_items": record.data_items,
                    "notes": notes,
                }));
            }
            let (id, version, script_lang) = (
                &record.script.id,
                record.script.version,
                record.script.language.code(),
            );
            ctx.line(lang.pick(
                format!("samtycke registrerat för {draft} (samtyckestext {id} v{version}, {script_lang})"),
                format!("consent recorded for {draft} (script {id} v{version}, {script_lang})"),
            ))?;
            for n in &given.notes {
                ctx.line(format!(
                    "  {}: {} [{}]",
                    lang.pick("obs", "note"),
                    n.message(lang),
                    n.code()
                ))?;
            }
            Ok(())
        }
        FieldCommand::Refuse { program, draft } => {
            let program_id = match (draft, program) {
                (Some(d), _) => store.refuse_draft(d).map_err(sf)?,
                (None, Some(p)) => {
                    let bundle = need_bundle(ctx, &a)?;
                    store.record_refusal(&bundle, p).map_err(sf)?;
                    p.clone()
                }
                (None, None) => unreachable!("clap requires --program or --draft"),
            };
            if ctx.json {
                ctx.print_json(&json!({ "program_id": program_id, "refusal_counted": true }))
            } else {
                ctx.line(lang.pick(
                    format!("nej tack räknat för {program_id} (inget om personen sparas)"),
                    format!("refusal counted for {program_id} (nothing about the person is kept)"),
                ))
            }
        }
        FieldCommand::Close { draft } => {
            let bundle = need_bundle(ctx, &a)?;
            let verdict = store.close_ineligible(draft, &bundle).map_err(sf)?;
            let codes = verdict.counted_codes();
            if ctx.json {
                return ctx
                    .print_json(&json!({ "draft_id": draft, "erased": true, "counted": codes }));
            }
            if codes.is_empty() {
                return ctx.line(lang.pick(
                    format!("stängt {draft}: utkastet är raderat; inget räknades (inget beslut nåddes)"),
                    format!("closed {draft}: the draft is erased; nothing was counted (no verdict was reached)"),
                ));
            }
            ctx.line(lang.pick(
                format!("stängt {draft}: utkastet är raderat; räknat som skäl:"),
                format!("closed {draft}: the draft is erased; counted as reasons:"),
            ))?;
            for r in verdict.reasons.iter().filter(|r| codes.contains(&r.code())) {
                ctx.line(format!("  - {} [{}]", r.message(lang), r.code()))?;
            }
            Ok(())
        }
        FieldCommand::Finalize { draft } => {
            let bundle = need_bundle(ctx, &a)?;
            let handover = store.finalize(draft, &bundle).map_err(sf)?;
            if ctx.json {
                ctx.print_json(&json!({ "handover_id": handover }))
            } else {
                ctx.line(&handover)
            }
            .map_err(|f| f.after_done(lang, Done::Sealed, &handover))
        }
        FieldCommand::Withdraw { handover } => {
            let result = store.withdraw(handover, None).map_err(sf)?;
            if ctx.json {
                let mut v = serde_json::to_value(&result).unwrap_or_default();
                v["handover_id"] = json!(handover);
                return ctx.print_json(&v);
            }
            ctx.line(match result {
                Withdrawn::DraftErased => lang.pick(
                    "återkallat: utkastet är raderat".to_string(),
                    "withdrawn: the draft is erased".to_string(),
                ),
                Withdrawn::ErasedBeforeDelivery => lang.pick(
                    "återkallat före leverans: den förseglade remissen är raderad".to_string(),
                    "withdrawn before delivery: the sealed referral is erased".to_string(),
                ),
                Withdrawn::QueuedForClinic { withdrawal_id } => lang.pick(
                    format!("återkallat efter leverans: återkallelsen {withdrawal_id} väntar på att skickas till mottagningen"),
                    format!("withdrawn after delivery: withdrawal {withdrawal_id} is queued for the clinic"),
                ),
                Withdrawn::AlreadyWithdrawn => lang.pick(
                    "redan återkallat".to_string(),
                    "already withdrawn".to_string(),
                ),
            })
        }
        FieldCommand::Delete { draft } => {
            store.delete_draft(draft).map_err(sf)?;
            if ctx.json {
                ctx.print_json(&json!({ "draft_id": draft, "deleted": true }))
            } else {
                ctx.line(lang.pick(format!("raderat {draft}"), format!("deleted {draft}")))
            }
        }
        FieldCommand::Status => {
            // Told once: drafts lost when the key store was reset (the vault folder replaced).
            if let Some(notice) = store.take_key_loss_notice().map_err(sf)? {
                let text = notice.message(ctx.lang);
                if ctx.json {
                    ctx.print_json(&json!({ "key_loss": { "drafts_lost": notice.drafts_lost, "day": notice.day, "message": text } }))?;
                } else {
                    ctx.line(&text)?;
                }
            }
            print_status(ctx, &store)
        }
        FieldCommand::Stats => print_stats(ctx, &store),
        FieldCommand::Enrol {
            program,
            clinic,
            code,
        } => {
            let bundle = need_bundle(ctx, &a)?;
            let named = bundle
                .programs()
                .iter()
                .find(|p| clinic.as_deref() == Some(p.clinic.endpoint.as_str()))
                .map(|p| p.id.clone());
            let Some(program) = program.clone().or(named) else {
                return Err(Failure::other(
                    "unknown_clinic",
                    lang.pick(
                        "ingen mottagning i programfilen har den adressen",
                        "no clinic in the program bundle has that endpoint",
                    ),
                )
                .on_field("clinic"));
            };
            let program = &program;
            let timeouts = lotsa_core::sync::Timeouts::default();
            let device = lotsa_core::sync::enrol(&mut store, &bundle, program, code, timeouts)
                .map_err(|e| ctx.fail(&e))?;
            if ctx.json {
                ctx.print_json(&json!({ "enrolled": program, "device_id": device }))
            } else {
                ctx.line(lang.pick(
                    format!("registrerad hos mottagningen för {program} som enhet {device}"),
                    format!("enrolled at the clinic of {program} as device {device}"),
                ))
            }
        }
        FieldCommand::Sync {
            deadline,
            connectivity_restored,
            lease_secs,
            backoff_base_ms,
        } => {
            let bundle = need_bundle(ctx, &a)?;
            let trust = match &a.trust {
                Some(t) => Some(crate::program_cmd::read_trust(ctx, t)?),
                None => None,
            };
            let options = lotsa_core::sync::SyncOptions {
                deadline: std::time::Duration::from_secs(*deadline),
                trigger: if *connectivity_restored {
                    lotsa_core::sync::Trigger::ConnectivityRestored
                } else {
                    lotsa_core::sync::Trigger::Manual
                },
                trust,
                lease: std::time::Duration::from_secs(*lease_secs),
                backoff: lotsa_core::sync::Backoff {
                    base: std::time::Duration::from_millis(*backoff_base_ms),
                    ..lotsa_core::sync::Backoff::default()
                },
                ..lotsa_core::sync::SyncOptions::default()
            };
            let report =
                lotsa_core::sync::sync(&mut store, &bundle, &options).map_err(|e| ctx.fail(&e))?;
            // The device keeps the newest bundle a clinic served: it replaces the file.
            if let (Some(text), Some(path)) = (&report.new_bundle, &a.bundle) {
                keep_bundle(ctx, path, text)?;
            }
            print_sync(ctx, &report)
        }
        FieldCommand::Retry { id } => {
            store.retry_item(id).map_err(sf)?;
            if ctx.json {
                ctx.print_json(&json!({ "retry": id }))
            } else {
                ctx.line(lang.pick(
                    format!("{id} skickas vid nästa synkning"),
                    format!("{id} goes at the next sync"),
                ))
            }
        }
        FieldCommand::Cancel { handover } => {
            let result = store.cancel(handover).map_err(sf)?;
            if ctx.json {
                let mut v = serde_json::to_value(&result).unwrap_or_default();
                v["handover_id"] = json!(handover);
                return ctx.print_json(&v);
            }
            ctx.line(match result {
                Withdrawn::QueuedForClinic { withdrawal_id } => lang.pick(
                    format!("avbrutet: remissen är raderad och mottagningen får återkallelsen {withdrawal_id}"),
                    format!("cancelled: the referral is erased and withdrawal {withdrawal_id} is queued for the clinic"),
                ),
                _ => lang.pick(
                    "avbrutet: remissen är raderad".to_string(),
                    "cancelled: the referral is erased".to_string(),
                ),
            })
        }
        FieldCommand::Audit(AuditCommand::Verify) => {
            let report = store.verify_audit().map_err(sf)?;
            if ctx.json {
                return ctx.print_json(
                    &json!({ "ok": true, "entries": report.entries, "head": report.head }),
                );
            }
            let (n, head) = (
                report.entries,
                report.head.get(..16).unwrap_or(&report.head),
            );
            ctx.line(lang.pick(
                format!("händelseloggen är hel: {n} poster, senaste {head}"),
                format!("audit log intact: {n} entries, head {head}"),
            ))
        }
    }
}

/// Replaces the bundle file with a newer one, atomically (written beside it, then renamed).
fn keep_bundle(ctx: &Ctx, path: &Path, text: &str) -> CmdResult {
    let next = path.with_extension("next");
    std::fs::write(&next, text)
        .and_then(|()| std::fs::rename(&next, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&next);
            Failure::other(
                "io",
                ctx.lang.pick(
                    format!(
                        "den nya programfilen gick inte att spara: {}",
                        crate::out::io_reason(&e, Lang::Sv)
                    ),
                    format!(
                        "cannot keep the new program bundle: {}",
                        crate::out::io_reason(&e, Lang::En)
                    ),
                ),
            )
            .on_field("bundle")
        })
}

/// A sync run's report: one JSON object, or a few lines for people.
fn print_sync(ctx: &Ctx, r: &lotsa_core::sync::SyncReport) -> CmdResult {
    if ctx.json {
        return ctx.print_json(&serde_json::to_value(r).unwrap_or_default());
    }
    let lang = ctx.lang;
    let (d, a, w) = (
        r.delivered.len(),
        r.already_delivered.len(),
        r.withdrawn_at_clinic.len(),
    );
    ctx.line(lang.pick(
        format!("levererat {d}, redan hos mottagningen {a}, återkallat där {w}"),
        format!("delivered {d}, already at the clinic {a}, withdrawn there {w}"),
    ))?;
    for (label, notes) in [
        (lang.pick("misslyckades", "failed"), &r.failed),
        (lang.pick("försöker igen", "retrying"), &r.retrying),
        (lang.pick("väntar", "waiting"), &r.waiting),
    ] {
        for n in notes {
            ctx.line(format!("{label}: {} ({}: {})", n.id, n.code, n.text))?;
        }
    }
    for action in &r.actions {
        ctx.line(match action {
            lotsa_core::sync::DeviceAction::Enrol { clinic, reason, .. } => lang.pick(
                format!("registrera telefonen hos {clinic} med en engångskod ({reason})"),
                format!("enrol this phone at {clinic} with a one-time code ({reason})"),
            ),
            lotsa_core::sync::DeviceAction::FixClock { clinic_date } => lang.pick(
                format!(
                    "ställ telefonens klocka (mottagningens tid: {})",
                    clinic_date.as_deref().unwrap_or("?")
                ),
                format!(
                    "set the phone's clock (the clinic's time: {})",
                    clinic_date.as_deref().unwrap_or("?")
                ),
            ),
        })?;
    }
    if r.stopped_at_deadline {
        ctx.line(lang.pick(
            "tiden tog slut; resten skickas vid nästa synkning",
            "time ran out; the rest goes at the next sync",
        ))?;
    }
    if let Some(b) = &r.bundle_updated {
        ctx.line(lang.pick(
            format!("ny programfil från mottagningen: {b}"),
            format!("new program bundle from the clinic: {b}"),
        ))?;
    }
    if let Some(due) = r
        .next_due
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
    {
        ctx.line(lang.pick(
            format!(
                "nästa försök: {}",
                to_stockholm(due).format("%Y-%m-%d %H:%M")
            ),
            format!(
                "next attempt: {}",
                to_stockholm(due).format("%Y-%m-%d %H:%M")
            ),
        ))?;
    }
    Ok(())
}

/// An outbox state as people read it (the JSON keeps the code).
fn state_label(state: ItemState, lang: Lang) -> &'static str {
    match state {
        ItemState::Pending => lang.pick("väntar", "pending"),
        ItemState::Sending => lang.pick("skickas", "sending"),
        ItemState::Delivered => lang.pick("levererad", "delivered"),
        ItemState::Failed => lang.pick("misslyckad", "failed"),
        ItemState::Withdrawn => lang.pick("återkallad", "withdrawn"),
        ItemState::Cancelled => lang.pick("avbruten", "cancelled"),
        ItemState::Damaged => lang.pick("skadad", "damaged"),
    }
}

/// A counter's name as people read it (the JSON keeps the name).
fn counter_label(counter: &str, lang: Lang) -> String {
    match (counter, lang) {
        ("offers", Lang::Sv) => "erbjudanden".into(),
        ("consents", Lang::Sv) => "samtycken".into(),
        ("refusals", Lang::Sv) => "nej tack".into(),
        ("withdrawals", Lang::Sv) => "återkallelser".into(),
        (other, _) => match other.strip_prefix("ineligible:") {
            Some(code) => lang.pick(
                format!("kan inte erbjudas: {code}"),
                format!("ineligible: {code}"),
            ),
            None => other.to_string(),
        },
    }
}

/// The queue as a table or one JSON object (shared with the demo).
pub fn print_status(ctx: &Ctx, store: &Store) -> CmdResult {
    let status = store.queue_status().map_err(|e| store_fail(ctx, e))?;
    if ctx.json {
        return ctx.print_json(&serde_json::to_value(&status).unwrap_or_default());
    }
    let lang = ctx.lang;
    let counts: Vec<String> = status
        .counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {}", state_label(*s, lang)))
        .collect();
    let counts = if counts.is_empty() {
        lang.pick("tom", "empty").to_string()
    } else {
        counts.join(", ")
    };
    let oldest = status
        .oldest_pending_secs
        .map(|s| {
            let m = s / 60;
            lang.pick(
                format!("; äldsta väntande {m} min"),
                format!("; oldest waiting {m} min"),
            )
        })
        .unwrap_or_default();
    ctx.line(format!(
        "{}: {counts}{oldest}",
        lang.pick("utkorg", "outbox")
    ))?;
    let rows: Vec<Vec<String>> = status
        .items
        .iter()
        .map(|i| {
            vec![
                i.id.clone(),
                match i.kind {
                    ItemKind::Referral => lang.pick("remiss", "referral"),
                    ItemKind::Withdrawal => lang.pick("återkallelse", "withdrawal"),
                }
                .to_string(),
                i.program_id.clone(),
                match i.withdrawal {
                    None => state_label(i.state, lang).to_string(),
                    Some(told) => format!(
                        "{}, {}",
                        state_label(i.state, lang),
                        if told == ItemState::Delivered {
                            lang.pick(
                                "återkallad (mottagningen vet)",
                                "withdrawn (the clinic knows)",
                            )
                        } else {
                            lang.pick(
                                "återkallad (meddelas mottagningen)",
                                "withdrawn (the clinic is told at the next sync)",
                            )
                        }
                    ),
                },
                i.attempts.to_string(),
                if i.state == ItemState::Pending {
                    chrono::DateTime::from_timestamp(i.next_attempt_at, 0)
                        .map(|t| to_stockholm(t).format("%H:%M").to_string())
                        .unwrap_or_default()
                } else {
                    String::new()
                },
                i.last_error_code.clone().unwrap_or_default(),
            ]
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    ctx.table(
        &lang.pick(
            [
                "ID",
                "SLAG",
                "PROGRAM",
                "LÄGE",
                "FÖRSÖK",
                "NÄSTA",
                "SENASTE FEL",
            ],
            [
                "ID",
                "KIND",
                "PROGRAM",
                "STATE",
                "ATTEMPTS",
                "NEXT",
                "LAST ERROR",
            ],
        ),
        &rows,
    )
}

/// The statistics as a table or one JSON object, `{"stats": [...]}` (shared with the demo).
pub fn print_stats(ctx: &Ctx, store: &Store) -> CmdResult {
    let rows = store.stats().map_err(|e| store_fail(ctx, e))?;
    if ctx.json {
        return ctx.print_json(&json!({ "stats": rows }));
    }
    let lang = ctx.lang;
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.day.clone(),
                r.program_id.clone(),
                counter_label(&r.counter, lang),
                r.count.to_string(),
            ]
        })
        .collect();
    ctx.table(
        &lang.pick(
            ["DAG", "PROGRAM", "RÄKNARE", "ANTAL"],
            ["DAY", "PROGRAM", "COUNTER", "COUNT"],
        ),
        &table,
    )
}
