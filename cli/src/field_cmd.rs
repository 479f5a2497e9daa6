//! `lotsa field`: a scriptable field device — the same store, vault and bundle an app uses, one
//! command per officer action. Keys live in a development file vault (`--vault`), which says so
//! loudly every time it opens: never use it on a real device.

use crate::eligibility_cmd::{parse_provenance, verdict_json, verdict_text, PersonArgs};
use crate::out::{self, Ctx, Failure};
use crate::program_cmd::load_bundle;
use crate::CmdResult;
use clap::{Args, Subcommand};
use lotsa_core::clock::{to_stockholm, SystemClock};
use lotsa_core::consent::{Capacity, ConsentForm, Method, Recorder, Role};
use lotsa_core::crypto::vault::DevFileVault;
use lotsa_core::eligibility::Provenance;
use lotsa_core::program::Bundle;
use lotsa_core::referral::{find_program, DraftUpdate, ReferralError};
use lotsa_core::store::{ItemState, Store, StoreError, Withdrawn};
use lotsa_core::text::{Lang, Reasoned};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args)]
pub struct FieldArgs {
    /// The device database (created if missing).
    #[arg(long)]
    db: PathBuf,
    /// The development key vault's folder (created if missing).
    #[arg(long)]
    vault: PathBuf,
    /// The signed program bundle (needed by new, check, consent, finalize, close).
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// The administrator's public key (.pub file or base64).
    #[arg(long)]
    trust: Option<String>,
    #[command(subcommand)]
    command: FieldCommand,
}

#[derive(Subcommand)]
enum FieldCommand {
    /// Start a draft for a program; prints its id.
    New {
        #[arg(long)]
        program: String,
    },
    /// Fill in a draft (only the fields given change; an empty value clears a field).
    Set {
        draft: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        #[arg(long)]
        language: Option<String>,
        #[arg(long)]
        best_time: Option<String>,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        person: PersonArgs,
        /// How residency is known.
        #[arg(long, value_parser = parse_provenance)]
        provenance: Option<Provenance>,
    },
    /// Show a draft's eligibility verdict and what is still missing.
    Check { draft: String },
    /// Record the person's consent to the draft's program.
    Consent {
        draft: String,
        /// verbal (with --witness) or signature (with --signature-sha256).
        #[arg(long, default_value = "verbal")]
        method: String,
        #[arg(long)]
        witness: Option<String>,
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
    /// The person said no: erase their draft (--draft) or, with no draft started, count the
    /// offer (--program). Only the refusal is counted; nothing about the person is stored.
    Refuse {
        #[arg(long, required_unless_present = "draft", conflicts_with = "draft")]
        program: Option<String>,
        #[arg(long)]
        draft: Option<String>,
    },
    /// The person cannot be offered the program: count the verdict's reasons and erase the draft.
    Close { draft: String },
    /// Seal the draft for the clinic and move it to the outbox; prints the handover id.
    Finalize { draft: String },
    /// Withdraw consent: erase before delivery, or queue a withdrawal for the clinic.
    Withdraw { handover: String },
    /// Delete a draft.
    Delete { draft: String },
    /// The outbox: counts by state, oldest waiting item, each item (no personal data).
    Status,
    /// Anonymous counters per program and day.
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
pub fn open_store(db: &std::path::Path, vault: &std::path::Path) -> Result<Store, Failure> {
    let vault = DevFileVault::open(vault).map_err(|e| Failure::other("vault", e.to_string()))?;
    Store::open(db, Arc::new(vault), Arc::new(SystemClock))
        .map_err(|e| Failure::from_reason(&e, Lang::En))
}

fn need_bundle(ctx: &Ctx, a: &FieldArgs) -> Result<Bundle, Failure> {
    match (&a.bundle, &a.trust) {
        (Some(b), Some(t)) => load_bundle(ctx, b, t),
        _ => Err(Failure::other(
            "usage",
            "this command needs --bundle and --trust (the signed program bundle and the administrator's key)",
        )),
    }
}

/// A problem found in what was typed, as JSON.
fn problem_json(ctx: &Ctx, e: &ReferralError) -> serde_json::Value {
    json!({"field": e.field(), "code": e.code(), "message": e.message(ctx.lang)})
}

/// The consent form from the options: the words an officer types become the core's choices;
/// the core builds and checks the record.
fn consent_form(c: &FieldCommand) -> Result<ConsentForm, Failure> {
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
    let method = match method.as_str() {
        "verbal" => Method::Verbal {
            witness: witness.clone().unwrap_or_default(),
        },
        "signature" | "signature_on_screen" => Method::SignatureOnScreen {
            signature_sha256: signature_sha256.clone().unwrap_or_default(),
        },
        other => {
            return Err(Failure::other(
                "invalid_method",
                format!("{other:?}: use verbal or signature"),
            )
            .on_field("method"))
        }
    };
    let role = Role::parse(role)
        .ok_or_else(|| Failure::other("invalid_role", "use police or lots").on_field("role"))?;
    let capacity = Capacity::parse(capacity).ok_or_else(|| {
        Failure::other("invalid_capacity", "use adequate, doubtful or lacking").on_field("capacity")
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
    let mut store = open_store(&a.db, &a.vault)?;
    let sf = |e| store_fail(ctx, e);
    match &a.command {
        FieldCommand::New { program } => {
            let bundle = need_bundle(ctx, &a)?;
            let id = store.create_draft(&bundle, program).map_err(sf)?;
            if ctx.json {
                ctx.print_json(&json!({ "draft_id": id }));
            } else {
                println!("{id}");
            }
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
        } => {
            let change = DraftUpdate {
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
            };
            // The core says at once what is wrong with what was typed, and keeps it all the same.
            let saved = store.update_draft(draft, change).map_err(sf)?;
            let problems: Vec<_> = saved
                .problems
                .iter()
                .map(|e| problem_json(ctx, e))
                .collect();
            if ctx.json {
                ctx.print_json(&json!({
                    "draft_id": draft,
                    "saved": true,
                    "problem": problems.first(),
                    "problems": problems,
                    "consent_cleared": saved.consent_cleared,
                }));
            } else {
                println!("saved {draft}");
                for p in &problems {
                    println!("note: {} [{}]: {}", p["field"], p["code"], p["message"]);
                }
                if saved.consent_cleared {
                    println!("{}", ctx.lang.pick(
                        "obs: personnumret eller födelsedatumet ändrades: samtycket är borttaget och måste ges igen",
                        "note: the identity number or date of birth changed: the consent is cleared and must be given again",
                    ));
                }
            }
        }
        FieldCommand::Check { draft } => {
            let bundle = need_bundle(ctx, &a)?;
            let check = store.check_draft(draft, &bundle).map_err(sf)?;
            let program =
                find_program(&bundle, &check.verdict.program_id).map_err(|e| sf(e.into()))?;
            if ctx.json {
                let mut v = verdict_json(&check.verdict, ctx.lang);
                v["consent_recorded"] = json!(check.consent_recorded);
                v["ready_to_finalize"] = json!(check.ready_to_finalize);
                if let Some(e) = &check.problem {
                    v["problem"] = problem_json(ctx, e);
                }
                ctx.print_json(&v);
            } else {
                print!("{}", verdict_text(&check.verdict, &program.name, ctx.lang));
                if let Some(e) = &check.problem {
                    println!("  still to fix: {}", e.message(ctx.lang));
                }
                let consent = if check.consent_recorded {
                    "recorded"
                } else {
                    "not yet recorded"
                };
                println!("  consent: {consent}");
            }
        }
        c @ FieldCommand::Consent { draft, .. } => {
            let bundle = need_bundle(ctx, &a)?;
            let given = store
                .record_consent(draft, &bundle, &consent_form(c)?)
                .map_err(sf)?;
            let record = &given.record;
            let notes: Vec<_> = given
                .notes
                .iter()
                .map(|n| json!({"code": n.code(), "message": n.message(ctx.lang)}))
                .collect();
            if ctx.json {
                ctx.print_json(&json!({
                    "draft_id": draft,
                    "consent_id": record.consent_id,
                    "script": record.script,
                    "data_items": record.data_items,
                    "notes": notes,
                }));
            } else {
                println!(
                    "consent recorded for {draft} (script {} v{}, {})",
                    record.script.id,
                    record.script.version,
                    record.script.language.code()
                );
                for n in &notes {
                    println!("note: [{}]: {}", n["code"], n["message"]);
                }
            }
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
                ctx.print_json(&json!({ "program_id": program_id, "refusal_counted": true }));
            } else {
                println!("refusal counted for {program_id} (nothing about the person is kept)");
            }
        }
        FieldCommand::Close { draft } => {
            let bundle = need_bundle(ctx, &a)?;
            let verdict = store.close_ineligible(draft, &bundle).map_err(sf)?;
            let codes = verdict.counted_codes();
            if ctx.json {
                ctx.print_json(&json!({ "draft_id": draft, "erased": true, "counted": codes }));
            } else {
                let counted = if codes.is_empty() {
                    "nothing (no verdict was reached)".to_string()
                } else {
                    codes.join(", ")
                };
                println!("closed {draft}: counted {counted}; the draft is erased");
            }
        }
        FieldCommand::Finalize { draft } => {
            let bundle = need_bundle(ctx, &a)?;
            let handover = store.finalize(draft, &bundle).map_err(sf)?;
            if ctx.json {
                ctx.print_json(&json!({ "handover_id": handover }));
            } else {
                println!("{handover}");
            }
        }
        FieldCommand::Withdraw { handover } => {
            let result = store.withdraw(handover, None).map_err(sf)?;
            if ctx.json {
                let mut v = serde_json::to_value(&result).unwrap_or_default();
                v["handover_id"] = json!(handover);
                ctx.print_json(&v);
            } else {
                println!(
                    "{}",
                    match result {
                        Withdrawn::DraftErased => "withdrawn: the draft is erased".to_string(),
                        Withdrawn::ErasedBeforeDelivery =>
                            "withdrawn before delivery: the sealed referral is erased".to_string(),
                        Withdrawn::QueuedForClinic { withdrawal_id } => format!(
                            "withdrawn after delivery: withdrawal {withdrawal_id} is queued for the clinic"
                        ),
                        Withdrawn::AlreadyWithdrawn => "already withdrawn".to_string(),
                    }
                );
            }
        }
        FieldCommand::Delete { draft } => {
            store.delete_draft(draft).map_err(sf)?;
            if ctx.json {
                ctx.print_json(&json!({ "draft_id": draft, "deleted": true }));
            } else {
                println!("deleted {draft}");
            }
        }
        FieldCommand::Status => print_status(ctx, &store)?,
        FieldCommand::Stats => print_stats(ctx, &store)?,
        FieldCommand::Audit(AuditCommand::Verify) => {
            let report = store.verify_audit().map_err(sf)?;
            if ctx.json {
                ctx.print_json(
                    &json!({ "ok": true, "entries": report.entries, "head": report.head }),
                );
            } else {
                println!(
                    "audit log intact: {} entries, head {}",
                    report.entries,
                    &report.head[..16]
                );
            }
        }
    }
    Ok(())
}

/// The queue as a table or JSON (shared with the demo).
pub fn print_status(ctx: &Ctx, store: &Store) -> CmdResult {
    let status = store.queue_status().map_err(|e| store_fail(ctx, e))?;
    if ctx.json {
        ctx.print_json(&serde_json::to_value(&status).unwrap_or_default());
        return Ok(());
    }
    let counts: Vec<String> = status
        .counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    println!(
        "outbox: {}{}",
        if counts.is_empty() {
            "empty".to_string()
        } else {
            counts.join(", ")
        },
        status
            .oldest_pending_secs
            .map(|s| format!("; oldest waiting {} min", s / 60))
            .unwrap_or_default()
    );
    let rows: Vec<Vec<String>> = status
        .items
        .iter()
        .map(|i| {
            vec![
                i.id.clone(),
                format!("{:?}", i.kind).to_lowercase(),
                i.program_id.clone(),
                i.state.as_str().to_string(),
                i.attempts.to_string(),
                if i.state == ItemState::Pending {
                    chrono::DateTime::from_timestamp(i.next_attempt_at, 0)
                        .map(|t| to_stockholm(t).format("%H:%M").to_string())
                        .unwrap_or_default()
                } else {
                    String::new()
                },
                i.last_error_text.clone().unwrap_or_default(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out::table(
            &mut std::io::stdout(),
            &[
                "ID",
                "KIND",
                "PROGRAM",
                "STATE",
                "ATTEMPTS",
                "NEXT",
                "LAST ERROR",
            ],
            &rows,
        )
        .map_err(|e| Failure::other("io", e.to_string()))?;
    }
    Ok(())
}

/// The statistics as a table or JSON (shared with the demo).
pub fn print_stats(ctx: &Ctx, store: &Store) -> CmdResult {
    let rows = store.stats().map_err(|e| store_fail(ctx, e))?;
    if ctx.json {
        ctx.print_json(&serde_json::to_value(&rows).unwrap_or_default());
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.day.clone(),
                r.program_id.clone(),
                r.counter.clone(),
                r.count.to_string(),
            ]
        })
        .collect();
    out::table(
        &mut std::io::stdout(),
        &["DAY", "PROGRAM", "COUNTER", "COUNT"],
        &table,
    )
    .map_err(|e| Failure::other("io", e.to_string()))
}
