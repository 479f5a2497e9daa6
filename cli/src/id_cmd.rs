//! `lotsa id check`: validates personnummer and samordningsnummer in bulk (arguments or stdin,
//! one per line), as a table or one JSON object per line. A valid number whose age is above 110
//! stays valid but is marked not plausible (the core's `IdentityNumber::plausible_on`: most
//! likely a mistyped century); it does not change the exit code.

use crate::out::{self, Ctx, Failure};
use crate::CmdResult;
use chrono::NaiveDate;
use clap::Subcommand;
use lotsa_core::clock::{Clock, SystemClock};
use lotsa_core::identity;
use lotsa_core::text::{Lang, Reasoned};
use serde_json::json;
use std::io::{BufRead, BufWriter, Write};

#[derive(Subcommand)]
pub enum IdCommand {
    /// Check numbers given as arguments, or one per line on stdin. Exit code 1 if any is invalid.
    Check {
        /// Numbers to check; reads stdin when none are given.
        numbers: Vec<String>,
        /// The date to compute ages on (YYYY-MM-DD); default today in Stockholm.
        #[arg(long)]
        on: Option<NaiveDate>,
    },
}

pub fn run(ctx: &Ctx, cmd: IdCommand) -> CmdResult {
    let IdCommand::Check { numbers, on } = cmd;
    let on = on.unwrap_or_else(|| SystemClock.today());
    let stdout = std::io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    let mut rows = Vec::new();
    let mut invalid = 0usize;
    let mut each = |input: &str, w: &mut BufWriter<std::io::StdoutLock>| -> std::io::Result<()> {
        let result = identity::parse(input, on);
        if result.is_err() {
            invalid += 1;
        }
        if ctx.json {
            serde_json::to_writer(&mut *w, &check_json(input, &result, on, ctx.lang))?;
            w.write_all(b"\n")
        } else {
            rows.push(check_row(input, &result, on, ctx.lang));
            Ok(())
        }
    };
    let io = |e: std::io::Error| Failure::other("io", e.to_string());
    if numbers.is_empty() {
        // Bytes, not `lines()`: one line that is not UTF-8 is refused on its own row
        // (invalid_characters), it does not end the batch.
        for line in std::io::stdin().lock().split(b'\n') {
            let line = line.map_err(io)?;
            let line = String::from_utf8_lossy(&line);
            each(line.trim_end_matches('\r'), &mut w).map_err(io)?;
        }
    } else {
        for n in &numbers {
            each(n, &mut w).map_err(io)?;
        }
    }
    if !ctx.json {
        out::table(
            &mut w,
            &[
                "INPUT",
                "VALID",
                "KIND",
                "NORMALIZED",
                "BORN",
                "AGE",
                "PLAUSIBLE",
                "REASON",
            ],
            &rows,
        )
        .map_err(io)?;
    }
    w.flush().map_err(io)?;
    if invalid > 0 {
        // Every line was printed with its reason; exit 1 tells a script that some were refused.
        std::process::exit(1);
    }
    Ok(())
}

fn age_text(r: identity::AgeRange) -> String {
    match r.exact() {
        Some(a) => a.to_string(),
        None => format!("{}–{}", r.min, r.max),
    }
}

fn check_row(
    input: &str,
    result: &Result<identity::IdentityNumber, identity::IdError>,
    on: NaiveDate,
    lang: Lang,
) -> Vec<String> {
    match result {
        Ok(n) => vec![
            input.trim().to_string(),
            "yes".into(),
            n.kind().as_str().into(),
            n.normalized().into(),
            n.birth().to_iso(),
            age_text(n.age_on(on)),
            if n.plausible_on(on) { "yes" } else { "no" }.into(),
            String::new(),
        ],
        Err(e) => vec![
            input.trim().to_string(),
            "no".into(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            format!("{}: {}", e.code(), e.message(lang)),
        ],
    }
}

fn check_json(
    input: &str,
    result: &Result<identity::IdentityNumber, identity::IdError>,
    on: NaiveDate,
    lang: Lang,
) -> serde_json::Value {
    match result {
        Ok(n) => {
            let age = n.age_on(on);
            json!({
                "input": input,
                "valid": true,
                "kind": n.kind().as_str(),
                "normalized": n.normalized(),
                "birth_date": n.birth().to_iso(),
                "age": age.exact(),
                "age_min": age.min,
                "age_max": age.max,
                "plausible": n.plausible_on(on),
            })
        }
        Err(e) => json!({
            "input": input,
            "valid": false,
            "error": { "code": e.code(), "message": e.message(lang) },
        }),
    }
}
