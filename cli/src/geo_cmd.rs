//! `lotsa geo`: look up a municipality by code or name, or a postal code's likely municipality.

use crate::out::{self, Ctx};
use crate::CmdResult;
use clap::Subcommand;
use lotsa_core::geo;
use serde_json::json;

#[derive(Subcommand)]
pub enum GeoCommand {
    /// A municipality by kommunkod or name (case and diacritics forgiven).
    Municipality {
        /// `1980`, `Västerås`, `vasteras kommun`, …
        query: String,
    },
    /// The municipality a postal code most likely lies in (a hint, never proof of residency).
    Postal {
        /// `111 22`, `11122`, …
        code: String,
    },
}

fn municipality_json(m: &geo::Municipality) -> serde_json::Value {
    json!({
        "kommunkod": m.code,
        "name": m.name,
        "county_code": m.county_code,
        "county": m.county().name,
    })
}

pub fn run(ctx: &Ctx, cmd: GeoCommand) -> CmdResult {
    match cmd {
        GeoCommand::Municipality { query } => {
            let m = geo::find_municipality(&query).map_err(|e| municipality_failure(ctx, &e))?;
            if ctx.json {
                ctx.print_json(&municipality_json(m))
            } else {
                let row = vec![
                    m.code.to_string(),
                    m.name.to_string(),
                    format!("{} ({})", m.county().name, m.county_code),
                ];
                ctx.table(
                    &ctx.lang.pick(
                        ["KOMMUNKOD", "NAMN", "LÄN"],
                        ["KOMMUNKOD", "NAME", "COUNTY"],
                    ),
                    &[row],
                )
            }
        }
        GeoCommand::Postal { code } => {
            let hint = geo::postal_hint(&code).map_err(|e| ctx.fail(&e).on_field("postal_code"))?;
            if ctx.json {
                let ms: Vec<_> = hint
                    .municipalities
                    .iter()
                    .map(|m| municipality_json(m))
                    .collect();
                ctx.print_json(&json!({
                    "postal_code": hint.postal_code,
                    "municipalities": ms,
                    "hint_only": true,
                }))
            } else {
                let rows: Vec<_> = hint
                    .municipalities
                    .iter()
                    .map(|m| {
                        vec![
                            hint.postal_code.clone(),
                            m.code.to_string(),
                            m.name.to_string(),
                        ]
                    })
                    .collect();
                ctx.table(
                    &ctx.lang.pick(
                        ["POSTNUMMER", "KOMMUNKOD", "NAMN"],
                        ["POSTAL CODE", "KOMMUNKOD", "NAME"],
                    ),
                    &rows,
                )?;
                ctx.line(ctx.lang.pick(
                    "(ett postnummer är bara en ledtråd: bekräfta kommunen med personen)",
                    "(a postal code is a hint: confirm the municipality with the person)",
                ))
            }
        }
    }
}

/// A refused municipality; for a region or county, people also see its municipalities to choose
/// from, under the message. (The JSON error has only `code`, `message` and `field`.)
fn municipality_failure(ctx: &Ctx, e: &geo::GeoError) -> out::Failure {
    let mut failure = ctx.fail(e).on_field("municipality");
    if let geo::GeoError::RegionNotMunicipality { municipalities, .. } = e {
        let rows: Vec<_> = municipalities
            .iter()
            .map(|m| vec![m.code.to_string(), m.name.to_string()])
            .collect();
        let mut table = Vec::new();
        if !ctx.json
            && !rows.is_empty()
            && out::table(
                &mut table,
                &ctx.lang.pick(["KOMMUNKOD", "NAMN"], ["KOMMUNKOD", "NAME"]),
                &rows,
            )
            .is_ok()
        {
            failure.message.push('\n');
            failure
                .message
                .push_str(String::from_utf8_lossy(&table).trim_end());
        }
    }
    failure
}
