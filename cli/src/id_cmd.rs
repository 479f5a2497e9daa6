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
use lotsa_core::text::{printable, Lang, Reasoned};
use serde_json::json;
use std::io::{BufRead, BufWriter, Write};

#[derive(Subcommand)]
pub enum IdCommand {
    /// Check numbers given as arguments, or one per line on stdin. Exit code 1 if any is invalid.
    Check {
        /// Numbers to check; reads stdin when none are given.
        numbers: Vec<String>,
        /// The date to compute ages on (YYYY-MM-DD); default today in Stockholm.
        #[arg(long, value_parser = out::parse_date)]
        on: Option<NaiveDate>,
    },
}

/// The longest line read as a number: a number with its separators is at most 13 characters,
/// so 256 bytes leave room for any white space around it. A longer line is refused on its own
/// row (`line_too_long`) and the stream goes on; it is never held whole in memory.
const MAX_LINE_BYTES: usize = 256;

/// A line that runs this far without a newline is no list of numbers (`/dev/zero`, a binary
/// file): reading stops there with `input_too_large`.
const MAX_RUN_BYTES: u64 = 1 << 20;

/// A line longer than this many characters is shown shortened, in the table and the JSON.
const SHOWN_CHARS: usize = 24;

/// One line read from stdin.
enum Line {
    /// The line, without its newline, in the buffer.
    Text,
    /// Longer than [`MAX_LINE_BYTES`]: its first bytes are in the buffer, the rest was skipped.
    TooLong,
    /// No newline within [`MAX_RUN_BYTES`].
    Endless,
}

/// Reads one line into `buf` (at most [`MAX_LINE_BYTES`] of it), skipping the rest of a longer
/// line chunk by chunk; `None` at the end of the input.
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<Line>> {
    buf.clear();
    let mut total: u64 = 0;
    let mut too_long = false;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(match (total, too_long) {
                (0, _) => None,
                (_, true) => Some(Line::TooLong),
                (_, false) => Some(Line::Text),
            });
        }
        let newline = chunk.iter().position(|&b| b == b'\n');
        let part = &chunk[..newline.unwrap_or(chunk.len())];
        total += part.len() as u64 + u64::from(newline.is_some());
        let room = MAX_LINE_BYTES.saturating_sub(buf.len());
        if part.len() > room {
            too_long = true;
        }
        buf.extend_from_slice(&part[..part.len().min(room)]);
        let used = part.len() + usize::from(newline.is_some());
        r.consume(used);
        if newline.is_some() {
            return Ok(Some(if too_long { Line::TooLong } else { Line::Text }));
        }
        if total > MAX_RUN_BYTES {
            return Ok(Some(Line::Endless));
        }
    }
}

/// Where the answers go: one JSON object per line, or a table printed as it fills.
enum Sink<W: Write> {
    Json(W),
    Table(out::TableWriter<W>),
}

impl<W: Write> Sink<W> {
    fn json(&mut self, v: &serde_json::Value) -> std::io::Result<()> {
        if let Sink::Json(w) = self {
            serde_json::to_writer(&mut *w, v)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Sink::Json(mut w) => w.flush(),
            Sink::Table(t) => t.finish().map(|_| ()),
        }
    }
}

pub fn run(ctx: &Ctx, cmd: IdCommand) -> CmdResult {
    let IdCommand::Check { numbers, on } = cmd;
    let on = on.unwrap_or_else(|| SystemClock.today());
    let lang = ctx.lang;
    let w = BufWriter::new(std::io::stdout().lock());
    let mut sink = if ctx.json {
        Sink::Json(w)
    } else {
        Sink::Table(out::TableWriter::new(
            w,
            &lang.pick(
                [
                    "INMATAT",
                    "GILTIGT",
                    "SLAG",
                    "NORMALISERAT",
                    "FÖDD",
                    "ÅLDER",
                    "RIMLIGT",
                    "SKÄL",
                ],
                [
                    "INPUT",
                    "VALID",
                    "KIND",
                    "NORMALIZED",
                    "BORN",
                    "AGE",
                    "PLAUSIBLE",
                    "REASON",
                ],
            ),
        ))
    };
    let invalid = std::cell::Cell::new(0usize);
    let each = |input: &str, sink: &mut Sink<_>| -> std::io::Result<()> {
        let result = identity::parse(input, on);
        if result.is_err() {
            invalid.set(invalid.get() + 1);
        }
        match sink {
            Sink::Json(_) => sink.json(&check_json(input, &result, on, lang)),
            Sink::Table(t) => t.row(&check_row(input, &result, on, lang)),
        }
    };
    let io = |e: std::io::Error| ctx.stdout_failed(e);
    let mut endless = false;
    if numbers.is_empty() {
        // Bytes, not `lines()`: one line that is not UTF-8 is refused on its own row
        // (invalid_characters), it does not end the batch.
        let stdin = std::io::stdin();
        let mut r = stdin.lock();
        let mut buf = Vec::with_capacity(MAX_LINE_BYTES);
        loop {
            let line = read_line(&mut r, &mut buf).map_err(|e| {
                Failure::other(
                    "io",
                    lang.pick(
                        format!(
                            "standardinmatningen går inte att läsa: {}",
                            out::io_reason(&e, Lang::Sv)
                        ),
                        format!(
                            "cannot read standard input: {}",
                            out::io_reason(&e, Lang::En)
                        ),
                    ),
                )
            })?;
            let text = String::from_utf8_lossy(&buf);
            match line {
                None => break,
                Some(Line::Text) => each(text.trim_end_matches('\r'), &mut sink).map_err(io)?,
                Some(Line::TooLong) => {
                    invalid.set(invalid.get() + 1);
                    let shorten = |t: &str| -> String {
                        t.chars().take(SHOWN_CHARS).chain(['…']).collect()
                    };
                    let (code, message) = (
                        "line_too_long",
                        lang.pick(
                            "Raden är längre än 256 byte: inget nummer är så långt.",
                            "The line is longer than 256 bytes: no number is that long.",
                        ),
                    );
                    match &mut sink {
                        Sink::Json(_) => sink.json(&json!({
                            "input": shorten(&text),
                            "valid": false,
                            "error": {"code": code, "message": message},
                        })),
                        Sink::Table(t) => {
                            let mut row = vec![
                                shorten(&printable(&text)),
                                lang.pick("nej", "no").to_string(),
                            ];
                            row.extend(std::iter::repeat_n(String::new(), 5));
                            row.push(format!("{code}: {message}"));
                            t.row(&row)
                        }
                    }
                    .map_err(io)?;
                }
                Some(Line::Endless) => {
                    endless = true;
                    break;
                }
            }
        }
    } else {
        for n in &numbers {
            each(n, &mut sink).map_err(io)?;
        }
    }
    sink.finish().map_err(io)?;
    if endless {
        return Err(Failure::other(
            "input_too_large",
            lang.pick(
                "En rad på standardinmatningen är längre än 1 MiB utan radslut: det är ingen lista med nummer. Läsningen avbröts; raderna före den är besvarade.",
                "A line on standard input runs past 1 MiB without a newline: that is no list of numbers. Reading stopped; the lines before it are answered.",
            ),
        ));
    }
    if invalid.get() > 0 {
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
            lang.pick("ja", "yes").into(),
            n.kind().as_str().into(),
            n.normalized().into(),
            n.birth().to_iso(),
            age_text(n.age_on(on)),
            if n.plausible_on(on) {
                lang.pick("ja", "yes")
            } else {
                lang.pick("nej", "no")
            }
            .into(),
            String::new(),
        ],
        Err(e) => vec![
            input.trim().to_string(),
            lang.pick("nej", "no").into(),
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
