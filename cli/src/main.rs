//! `lotsa`: the terminal front end of the Lotsa core — the end-to-end demo, a scriptable field
//! device and the administrator's tools. Every command takes `--json` for scripts; without it,
//! output is for people. Exit codes: 0 done, 1 refused or invalid input (the reason is printed),
//! 2 wrong usage (with `--json` as `{"error": {"code": "usage", …}}` on stdout).

mod clinic_cmd;
mod demo;
mod eligibility_cmd;
mod field_cmd;
mod geo_cmd;
mod id_cmd;
mod out;
mod program_cmd;

use clap::{Parser, Subcommand};
use lotsa_core::text::Lang;
use std::ffi::OsString;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lotsa",
    version,
    about = "Lotsa: from an open drug scene to care, with consent"
)]
struct Cli {
    /// Machine-readable output: one JSON object per line (errors as {"error": {"code", "message"}}).
    #[arg(long, global = true)]
    json: bool,
    /// Language of human texts: sv or en.
    #[arg(long, global = true, default_value = "en", value_parser = parse_lang)]
    lang: Lang,
    #[command(subcommand)]
    command: Command,
}

fn parse_lang(s: &str) -> Result<Lang, out::Hint> {
    Lang::parse(s).ok_or(out::Hint {
        sv: "okänt språk: välj sv eller en",
        en: "unknown language: use sv or en",
    })
}

#[derive(Subcommand)]
enum Command {
    /// Walk through a shift at Sergels torg on embedded example programs.
    Demo,
    /// Personnummer and samordningsnummer.
    #[command(subcommand)]
    Id(id_cmd::IdCommand),
    /// Municipalities and postal codes.
    #[command(subcommand)]
    Geo(geo_cmd::GeoCommand),
    /// Program bundles: keys, signing, verification.
    #[command(subcommand)]
    Program(program_cmd::ProgramCommand),
    /// Eligibility verdict for one person and one program.
    Eligibility(eligibility_cmd::EligibilityArgs),
    /// A scriptable field device: drafts, consent, finalize, withdraw, queue, statistics, audit.
    Field(field_cmd::FieldArgs),
    /// The clinic's intake service and its administration.
    #[command(subcommand)]
    Clinic(clinic_cmd::ClinicCommand),
}

/// What every command returns: success, or a refusal already printed.
pub type CmdResult = Result<(), out::Failure>;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e, &args),
    };
    // A read-only command stops quietly when its reader goes away (`lotsa id check … | head`), as
    // every Unix tool does. The field device and the demo keep SIGPIPE ignored (Rust's default),
    // so a closed pipe is an error they report: `field new` still names the draft it made, and the
    // demo removes its temporary device. The clinic's commands keep it ignored too: the service
    // writes to sockets whose peer may be gone (a phone killed mid-request), and SIGPIPE would
    // kill the service.
    if !matches!(
        cli.command,
        Command::Field(_) | Command::Demo | Command::Clinic(_)
    ) {
        restore_sigpipe();
    }
    let ctx = out::Ctx {
        json: cli.json,
        lang: cli.lang,
    };
    let result = match cli.command {
        Command::Demo => demo::run(&ctx),
        Command::Id(c) => id_cmd::run(&ctx, c),
        Command::Geo(c) => geo_cmd::run(&ctx, c),
        Command::Program(c) => program_cmd::run(&ctx, c),
        Command::Eligibility(a) => eligibility_cmd::run(&ctx, a),
        Command::Field(a) => field_cmd::run(&ctx, a),
        Command::Clinic(c) => clinic_cmd::run(&ctx, c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            ctx.report(&failure);
            ExitCode::from(failure.exit_code())
        }
    }
}

/// `--json` and `--lang` as typed, for a command line clap refused (so not parsed): options
/// before a `--` only.
fn early_flags(args: &[OsString]) -> (bool, Lang) {
    let mut json = false;
    let mut lang = Lang::En;
    let mut it = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(a) = it.next() {
        match a.as_ref() {
            "--" => break,
            "--json" => json = true,
            "--lang" => {
                if let Some(l) = it.next().as_deref().and_then(Lang::parse) {
                    lang = l;
                }
            }
            other => {
                if let Some(l) = other.strip_prefix("--lang=").and_then(Lang::parse) {
                    lang = l;
                }
            }
        }
    }
    (json, lang)
}

/// A command line clap refused: help and version as clap prints them; anything else as a usage
/// error (exit 2) in our words, which never repeat a value that was typed (it may be a name or a
/// personnummer typed in the wrong place) — as JSON on stdout with `--json`.
fn usage_error(e: &clap::Error, args: &[OsString]) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let (json, lang) = early_flags(args);
    let help_on_missing = e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand;
    let ctx = out::Ctx { json, lang };
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
        || (help_on_missing && !json)
    {
        // Help that cannot be written is an I/O refusal like any other output.
        if let Err(io) = e.print() {
            ctx.report(&ctx.stdout_failed(io));
            return ExitCode::from(1);
        }
        return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
    }
    let failure = out::Failure::usage(usage_message(e, lang));
    if json {
        ctx.report(&failure);
    } else {
        let usage = match e.get(ContextKind::Usage) {
            Some(ContextValue::StyledStr(s)) => {
                let s = s.to_string();
                let s = s.trim();
                match lang {
                    Lang::Sv => s.replacen("Usage:", "Användning:", 1),
                    Lang::En => s.to_string(),
                }
            }
            _ => String::new(),
        };
        ctx.warn(&format!(
            "lotsa: usage: {}\n\n{usage}{}{}",
            failure.message,
            if usage.is_empty() { "" } else { "\n\n" },
            lang.pick(
                "Mer hjälp: lotsa --help",
                "For more information, try '--help'."
            )
        ));
    }
    ExitCode::from(2)
}

/// What is wrong with the command line, in the chosen language. Names options, commands and the
/// reasons of our value parsers ([`out::Hint`]); never a value that was typed.
fn usage_message(e: &clap::Error, lang: Lang) -> String {
    use clap::error::{ContextKind as C, ContextValue as V, ErrorKind as K};
    let get = |k: C| -> Option<String> {
        match e.get(k)? {
            V::String(s) => Some(s.clone()),
            V::Strings(v) => Some(v.join(", ")),
            V::StyledStr(s) => Some(s.to_string()),
            V::StyledStrs(v) => Some(
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            _ => None,
        }
    };
    let arg = get(C::InvalidArg).unwrap_or_default();
    let pick = |sv: String, en: String| lang.pick(sv, en);
    let suggestion = |what: Option<String>| match what {
        Some(s) => pick(
            format!(" (menade du {s}?)"),
            format!(" (did you mean {s}?)"),
        ),
        None => String::new(),
    };
    match e.kind() {
        K::ValueValidation => {
            let hint = std::error::Error::source(e).and_then(|s| s.downcast_ref::<out::Hint>());
            match hint {
                Some(h) => format!("{arg}: {}", lang.pick(h.sv, h.en)),
                None => pick(
                    format!("ogiltigt värde för {arg}"),
                    format!("invalid value for {arg}"),
                ),
            }
        }
        K::InvalidValue => {
            let valid = get(C::ValidValue)
                .map(|v| pick(format!(": välj {v}"), format!(": use {v}")))
                .unwrap_or_default();
            pick(
                format!("ogiltigt värde för {arg}{valid}"),
                format!("invalid value for {arg}{valid}"),
            )
        }
        K::UnknownArgument => {
            // What was typed is named only when it is the name of an option (never a value).
            let name = arg.split('=').next().unwrap_or_default();
            let option_like = name.starts_with('-')
                && name.len() <= 40
                && name
                    .trim_start_matches('-')
                    .starts_with(|c: char| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            let shown = if option_like {
                format!(" {name}")
            } else {
                String::new()
            };
            let hint = suggestion(get(C::SuggestedArg));
            pick(
                format!("okänt eller överflödigt argument{shown}{hint}"),
                format!("unexpected argument{shown}{hint}"),
            )
        }
        K::InvalidSubcommand => {
            let hint = suggestion(get(C::SuggestedSubcommand));
            pick(
                format!("okänt kommando{hint}; se --help"),
                format!("unknown command{hint}; see --help"),
            )
        }
        K::MissingRequiredArgument => pick(format!("saknas: {arg}"), format!("missing: {arg}")),
        K::MissingSubcommand | K::DisplayHelpOnMissingArgumentOrSubcommand => pick(
            "ett kommando saknas; se --help".into(),
            "a command is missing; see --help".into(),
        ),
        K::ArgumentConflict => {
            let prior = get(C::PriorArg).unwrap_or_default();
            pick(
                format!("{arg} kan inte användas tillsammans med {prior}"),
                format!("{arg} cannot be used with {prior}"),
            )
        }
        K::NoEquals | K::TooManyValues | K::TooFewValues | K::WrongNumberOfValues => pick(
            format!("fel antal värden för {arg}"),
            format!("wrong number of values for {arg}"),
        ),
        K::InvalidUtf8 => pick(
            "ett argument är inte UTF-8-text".into(),
            "an argument is not UTF-8 text".into(),
        ),
        _ => pick(
            "fel användning; se --help".into(),
            "wrong usage; see --help".into(),
        ),
    }
}

/// Rust ignores SIGPIPE, so `lotsa … | head` would report an error on the first write after
/// `head` exits. A read-only command-line tool should just stop, as every Unix tool does.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called once at start, before any thread exists; SIG_DFL is always a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
