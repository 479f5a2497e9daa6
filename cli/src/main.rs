//! `lotsa`: the terminal front end of the Lotsa core — the end-to-end demo, a scriptable field
//! device and the administrator's tools. Every command takes `--json` for scripts; without it,
//! output is for people. Exit codes: 0 done, 1 refused or invalid input (the reason is printed),
//! 2 wrong usage.

mod demo;
mod eligibility_cmd;
mod field_cmd;
mod geo_cmd;
mod id_cmd;
mod out;
mod program_cmd;

use clap::{Parser, Subcommand};
use lotsa_core::text::Lang;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lotsa",
    version,
    about = "Lotsa: from an open drug scene to care, with consent"
)]
struct Cli {
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    /// Language of human texts: sv or en.
    #[arg(long, global = true, default_value = "en", value_parser = parse_lang)]
    lang: Lang,
    #[command(subcommand)]
    command: Command,
}

fn parse_lang(s: &str) -> Result<Lang, String> {
    Lang::parse(s).ok_or_else(|| format!("unknown language {s:?}: use sv or en"))
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
}

/// What every command returns: success, or a refusal already printed.
pub type CmdResult = Result<(), out::Failure>;

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = Cli::parse();
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            ctx.report(&failure);
            ExitCode::from(1)
        }
    }
}

/// Rust ignores SIGPIPE, so `lotsa … | head` would panic on the first write after `head` exits.
/// A command-line tool should just stop, as every Unix tool does.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called once at start, before any thread exists; SIG_DFL is always a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
