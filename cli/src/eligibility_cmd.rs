//! `lotsa eligibility`: one person, one program, one verdict — with reasons and routing.

use crate::out::{parse_date, Ctx, Hint};
use crate::program_cmd::load_bundle;
use crate::CmdResult;
use chrono::NaiveDate;
use clap::{ArgGroup, Args};
use lotsa_core::clock::{Clock, SystemClock};
use lotsa_core::eligibility::{self, Provenance, Verdict};
use lotsa_core::referral::{assess_typed, find_program, TypedFacts};
use lotsa_core::text::{printable, Lang, Reasoned};
use serde_json::json;
use std::path::PathBuf;

#[derive(Args)]
#[command(group(ArgGroup::new("age").required(true).args(["identity_number", "birth_date"])))]
#[command(group(ArgGroup::new("residence").required(true).args(["municipality", "postal_code"])))]
pub struct EligibilityArgs {
    /// The signed program bundle.
    #[arg(long)]
    bundle: PathBuf,
    /// The administrator's public key (.pub file or base64).
    #[arg(long)]
    trust: String,
    /// The program to assess.
    #[arg(long)]
    program: String,
    #[command(flatten)]
    person: PersonArgs,
    /// How residency is known.
    #[arg(long, default_value = "stated", value_parser = parse_provenance)]
    provenance: Provenance,
    /// The date to decide on (YYYY-MM-DD); default today in Stockholm.
    #[arg(long, value_parser = parse_date)]
    on: Option<NaiveDate>,
}

/// What the officer typed about the person, as options named as the core names the fields
/// (`--id` and `--born` stay as aliases). Shared by `eligibility` and `field set`.
#[derive(Args, Clone)]
pub struct PersonArgs {
    /// Personnummer or samordningsnummer.
    #[arg(long, visible_alias = "id")]
    pub identity_number: Option<String>,
    /// Date of birth (YYYY-MM-DD), when there is no number.
    #[arg(long, visible_alias = "born")]
    pub birth_date: Option<String>,
    /// Kommunkod or municipality name.
    #[arg(long)]
    pub municipality: Option<String>,
    /// Postal code (a hint only).
    #[arg(long)]
    pub postal_code: Option<String>,
}

/// `stated`, `document` or `register`.
pub fn parse_provenance(s: &str) -> Result<Provenance, Hint> {
    Provenance::parse(s).ok_or(Hint {
        sv: "välj stated, document eller register",
        en: "use stated, document or register",
    })
}

pub fn run(ctx: &Ctx, a: EligibilityArgs) -> CmdResult {
    let bundle = load_bundle(ctx, &a.bundle, &a.trust)?;
    let today = a.on.unwrap_or_else(|| SystemClock.today());
    let p = a.person;
    let facts = TypedFacts {
        identity_number: p.identity_number,
        birth_date: p.birth_date,
        municipality: p.municipality,
        postal_code: p.postal_code,
        provenance: a.provenance,
    };
    let verdict = assess_typed(&bundle, &a.program, &facts, today).map_err(|e| {
        let f = ctx.fail(&e);
        match e.field() {
            Some(field) => f.on_field(field),
            None => f,
        }
    })?;
    if ctx.json {
        ctx.print_json(&verdict_json(&verdict, ctx.lang))
    } else {
        let program = find_program(&bundle, &a.program).map_err(|e| ctx.fail(&e))?;
        ctx.text(verdict_text(&verdict, &program.name, ctx.lang))
    }
}

/// The verdict as JSON, with each reason's code and text.
pub fn verdict_json(v: &Verdict, lang: Lang) -> serde_json::Value {
    json!({
        "program_id": v.program_id,
        "outcome": v.outcome.as_str(),
        "provisional": v.provisional,
        "may_refer": v.may_refer,
        "reasons": v.reasons.iter().map(|r| json!({"code": r.code(), "message": r.message(lang)})).collect::<Vec<_>>(),
        "routing": v.routing.iter().map(|r| json!({
            "program_id": r.program_id,
            "program_name": r.program_name,
            "clinic": r.clinic_name,
            "callback_promise": r.callback_promise.get(lang),
            "provisional": r.provisional,
        })).collect::<Vec<_>>(),
        "basis": v.basis,
    })
}

/// The verdict as a few lines an officer can read.
pub fn verdict_text(v: &Verdict, program_name: &str, lang: Lang) -> String {
    use std::fmt::Write;
    let sv = lang == Lang::Sv;
    let outcome = match (v.outcome, sv) {
        (eligibility::Outcome::Eligible, false) => "ELIGIBLE",
        (eligibility::Outcome::Eligible, true) => "KAN ERBJUDAS",
        (eligibility::Outcome::NotEligible, false) => "NOT ELIGIBLE",
        (eligibility::Outcome::NotEligible, true) => "KAN INTE ERBJUDAS",
        (eligibility::Outcome::Undetermined, false) => "UNDETERMINED",
        (eligibility::Outcome::Undetermined, true) => "KAN INTE AVGÖRAS",
    };
    let mut s = String::new();
    let provisional = match (v.provisional, sv) {
        (false, _) => "",
        (true, false) => " (provisional)",
        (true, true) => " (preliminärt)",
    };
    let _ = writeln!(s, "{}: {outcome}{provisional}", printable(program_name));
    for r in &v.reasons {
        let _ = writeln!(s, "  - {} [{}]", r.message(lang), r.code());
    }
    if !v.routing.is_empty() {
        let _ = writeln!(
            s,
            "  {}",
            if sv {
                "Kan i stället erbjudas:"
            } else {
                "Can be offered instead:"
            }
        );
        for r in &v.routing {
            let _ = writeln!(
                s,
                "    → {} ({}) — {}",
                printable(&r.program_name),
                printable(&r.clinic_name),
                printable(r.callback_promise.get(lang))
            );
        }
    } else if v.outcome == eligibility::Outcome::NotEligible
        && v.reasons.iter().any(|r| r.code() == "not_resident")
    {
        let _ = writeln!(
            s,
            "  {}",
            if sv {
                "Inget konfigurerat program omfattar personens kommun."
            } else {
                "No configured program covers the person's municipality."
            }
        );
    }
    s
}
