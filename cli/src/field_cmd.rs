//! `lotsa field`: a scriptable field device — the same store, vault and bundle an app uses, one
//! command per officer action. Keys live in a development file vault (`--vault`), which says so
//! loudly every time it opens: never use it on a real device.

use crate::eligibility_cmd::{verdict_json, verdict_text};
use crate::out::{self, Ctx, Failure};
use crate::program_cmd::load_bundle;
use crate::CmdResult;
use clap::{Args, Subcommand};
use lotsa_core::clock::{to_stockholm, Clock, SystemClock};
use lotsa_core::consent::{Capacity, ConsentRecord, Method, Recorder, Role};
use lotsa_core::crypto::vault::DevFileVault;
use lotsa_core::eligibility::{self, Provenance};
use lotsa_core::program::Bundle;
use lotsa_core::referral::{new_referral_id, ResidenceInput};
use lotsa_core::store::{ItemState, Store, Withdrawn};
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
        /// Personnummer or samordningsnummer.
        #[arg(long)]
        id: Option<String>,
        /// Date of birth (YYYY-MM-DD), when there is no number.
        #[arg(long)]
        born: Option<String>,
        /// Kommunkod or municipality name.
        #[arg(long)]
        municipality: Option<String>,
        /// Postal code (a hint only).
        #[arg(long)]
        postal_code: Option<String>,
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

fn parse_provenance(s: &str) -> Result<Provenance, String> {
    Provenance::parse(s).ok_or_else(|| format!("{s:?}: use stated, document or register"))
}

fn store_fail(ctx: &Ctx, e: lotsa_core::store::StoreError) -> Failure {
    let field = match &e {
        lotsa_core::store::StoreError::Referral(r) => r.field(),
        lotsa_core::store::StoreError::Consent(c) => Some(c.field()),
        _ => None,
    };
    let f = ctx.fail(&e);
    match field {
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

fn clear_or(v: String) -> Option<String> {
    (!v.trim().is_empty()).then_some(v)
}

pub fn run(ctx: &Ctx, a: FieldArgs) -> CmdResult {
    let mut store = open_store(&a.db, &a.vault)?;
    let sf = |e| store_fail(ctx, e);
    match &a.command {
        FieldCommand::New { program } => {
            let bundle = need_bundle(ctx, &a)?;
            let p = find_program(&bundle, program)?;
            let id = store.create_draft(p).map_err(sf)?;
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
            id,
            born,
            municipality,
            postal_code,
            provenance,
        } => {
            let updated = store
                .update_draft(draft, |d| {
                    let c = &mut d.contact;
                    for (slot, value) in [
                        (&mut c.name, name),
                        (&mut c.phone, phone),
                        (&mut c.language, language),
                        (&mut c.best_time, best_time),
                        (&mut c.note, note),
                        (&mut d.identity_number, id),
                        (&mut d.birth_date, born),
                    ] {
                        if let Some(v) = value {
                            *slot = clear_or(v.clone());
                        }
                    }
                    if municipality.is_some() || postal_code.is_some() || provenance.is_some() {
                        let r = d.residence.get_or_insert(ResidenceInput {
                            municipality: None,
                            postal_code: None,
                            provenance: Provenance::Stated,
                        });
                        if let Some(m) = municipality {
                            r.municipality = clear_or(m.clone());
                        }
                        if let Some(p) = postal_code {
                            r.postal_code = clear_or(p.clone());
                        }
                        if let Some(p) = provenance {
                            r.provenance = *p;
                        }
                    }
                })
                .map_err(sf)?;
            // Say at once what is wrong with what was typed, without refusing to keep it.
            let problem = updated.contact.validate().err().map(
                |e| json!({"field": e.field(), "code": e.code(), "message": e.message(ctx.lang)}),
            );
            if ctx.json {
                ctx.print_json(
                    &json!({ "draft_id": updated.draft_id, "saved": true, "problem": problem }),
                );
            } else {
                println!("saved {}", updated.draft_id);
                if let Some(p) = problem {
                    println!("note: {} [{}]: {}", p["field"], p["code"], p["message"]);
                }
            }
        }
        FieldCommand::Check { draft } => {
            let bundle = need_bundle(ctx, &a)?;
            let stored = store.draft(draft).map_err(sf)?;
            let p = find_program(&bundle, &stored.draft.program_id)?;
            let today = SystemClock.today();
            let facts = stored
                .draft
                .facts(today)
                .map_err(|e| store_fail(ctx, e.into()))?;
            let verdict = eligibility::assess(&facts, &bundle, p, today);
            let missing = stored.draft.validate(p, today).err();
            if ctx.json {
                let mut v = verdict_json(&verdict, ctx.lang);
                v["consent_recorded"] = json!(stored.consent.is_some());
                v["ready_to_finalize"] =
                    json!(verdict.may_refer && stored.consent.is_some() && missing.is_none());
                if let Some(e) = &missing {
                    v["problem"] = json!({"field": e.field(), "code": e.code(), "message": e.message(ctx.lang)});
                }
                ctx.print_json(&v);
            } else {
                print!("{}", verdict_text(&verdict, &p.name, ctx.lang));
                if let Some(e) = &missing {
                    println!("  still to fix: {}", e.message(ctx.lang));
                }
                println!(
                    "  consent: {}",
                    if stored.consent.is_some() {
                        "recorded"
                    } else {
                        "not yet recorded"
                    }
                );
            }
        }
        FieldCommand::Consent {
            draft,
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
        } => {
            let bundle = need_bundle(ctx, &a)?;
            let stored = store.draft(draft).map_err(sf)?;
            let p = find_program(&bundle, &stored.draft.program_id)?;
            let lang = Lang::parse(language).ok_or_else(|| {
                Failure::other("unsupported_language", "choose sv or en").on_field("language")
            })?;
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
            let role = Role::parse(role).ok_or_else(|| {
                Failure::other("invalid_role", "use police or lots").on_field("role")
            })?;
            let capacity = Capacity::parse(capacity).ok_or_else(|| {
                Failure::other("invalid_capacity", "use adequate, doubtful or lacking")
                    .on_field("capacity")
            })?;
            let mut record = ConsentRecord::for_program(
                p,
                lang,
                new_referral_id(),
                draft.clone(),
                to_stockholm(SystemClock.now()),
                method,
                Recorder {
                    role,
                    officer_id: officer.clone(),
                    unit: unit.clone(),
                },
                *told_no_effect,
                *told_withdrawal,
                capacity,
            )
            .map_err(|e| store_fail(ctx, e.into()))?;
            if let Some(v) = script_version {
                record.script.version = *v;
            }
            if *share_personnummer && !record.covers(lotsa_core::program::Field::Personnummer) {
                record
                    .data_items
                    .push(lotsa_core::program::Field::Personnummer);
            }
            store.record_consent(draft, &record, p).map_err(sf)?;
            if ctx.json {
                ctx.print_json(&json!({
                    "draft_id": draft,
                    "consent_id": record.consent_id,
                    "script": record.script,
                    "data_items": record.data_items,
                }));
            } else {
                println!(
                    "consent recorded for {draft} (script {} v{}, {})",
                    record.script.id,
                    record.script.version,
                    lang.code()
                );
            }
        }
        FieldCommand::Refuse { program, draft } => {
            let program_id = match (draft, program) {
                (Some(d), _) => {
                    let (_, program_id) = store
                        .draft_ids()
                        .map_err(sf)?
                        .into_iter()
                        .find(|(id, _)| id == d)
                        .ok_or_else(|| {
                            Failure::other("not_found", format!("no draft with id {d}"))
                                .on_field("draft")
                        })?;
                    store.refuse_draft(d).map_err(sf)?;
                    program_id
                }
                (None, Some(p)) => {
                    // A typo must not invent a program in the statistics.
                    let bundle = need_bundle(ctx, &a)?;
                    find_program(&bundle, p)?;
                    store.record_refusal(p).map_err(sf)?;
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
            let stored = store.draft(draft).map_err(sf)?;
            let p = find_program(&bundle, &stored.draft.program_id)?;
            let today = SystemClock.today();
            let facts = stored
                .draft
                .facts(today)
                .map_err(|e| store_fail(ctx, e.into()))?;
            let verdict = eligibility::assess(&facts, &bundle, p, today);
            store.close_ineligible(draft, &verdict).map_err(sf)?;
            let codes = verdict.blocking_codes();
            if ctx.json {
                ctx.print_json(&json!({ "draft_id": draft, "erased": true, "counted": codes }));
            } else {
                println!(
                    "closed {draft}: counted {}; the draft is erased",
                    codes.join(", ")
                );
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

fn find_program<'b>(
    bundle: &'b Bundle,
    id: &str,
) -> Result<&'b lotsa_core::program::Program, Failure> {
    bundle.program(id).ok_or_else(|| {
        Failure::other(
            "unknown_program",
            format!("no program {id:?} in the bundle"),
        )
        .on_field("program")
    })
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
