//! Output for people and for scripts: one place decides between a table and JSON, and how a
//! refusal is shown (code + message, on stderr for people, as `{"error": …}` on stdout for JSON).
//!
//! Every write to stdout goes through a helper here that returns a `Result`: a full disk, a closed
//! stdout or a reader that went away is a refusal with the code `io` (reported on stderr, exit 1),
//! never a panic. Every human text passes [`printable`] on its way out, so a control or bidi
//! character typed by someone (an id, a line on stdin) never acts on the terminal.
//!
//! Every file the CLI reads (bundles, keys, trust keys, `field set --from`) is read through
//! [`Ctx::read_file`] or [`Ctx::read_stdin`], which stop at [`MAX_INPUT_BYTES`].

use lotsa_core::text::{printable, Lang, Reasoned};
use serde_json::json;
use std::io::{Read, Write};
use std::path::Path;

/// The most the CLI reads from one file or from stdin as one document (a bundle is a few
/// kilobytes, a key less than one): `/dev/zero` or a wrong path to a disk image is refused.
pub const MAX_INPUT_BYTES: u64 = 1 << 20;

/// Output settings.
pub struct Ctx {
    /// JSON instead of text.
    pub json: bool,
    /// Language of messages.
    pub lang: Lang,
}

/// A refusal: a stable code and a readable message (plus the field when there is one).
#[derive(Debug)]
pub struct Failure {
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    /// Writing to stdout failed: the refusal goes to stderr even with `--json`.
    pub stdout_failed: bool,
}

impl Failure {
    /// From any core error with a reason code.
    pub fn from_reason(e: &dyn Reasoned, lang: Lang) -> Failure {
        Failure::other(e.code(), e.message(lang))
    }

    /// A failure outside the core (files, usage).
    pub fn other(code: &str, message: impl Into<String>) -> Failure {
        Failure {
            code: code.to_string(),
            message: message.into(),
            field: None,
            stdout_failed: false,
        }
    }

    /// A wrong use of the command line (exit code 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::other("usage", message)
    }

    /// With the field it is about.
    pub fn on_field(mut self, field: &str) -> Failure {
        self.field = Some(field.to_string());
        self
    }

    /// The exit code: 2 for wrong usage, 1 for every other refusal.
    pub fn exit_code(&self) -> u8 {
        if self.code == "usage" {
            2
        } else {
            1
        }
    }

    /// A failure to print what was already done (`what` with the id `id`): the message names the
    /// id, on stderr, so the officer can still find it. An id is a random UUID, not personal data.
    pub fn after_done(mut self, lang: Lang, what: Done, id: &str) -> Failure {
        let id = printable(id);
        let done = match what {
            Done::DraftCreated => lang.pick(
                format!("utkastet {id} är skapat, men dess id gick inte att skriva ut"),
                format!("the draft {id} was created, but its id could not be printed"),
            ),
            Done::Sealed => lang.pick(
                format!("remissen {id} är förseglad och ligger i utkorgen, men dess id gick inte att skriva ut"),
                format!("the referral {id} is sealed in the outbox, but its id could not be printed"),
            ),
        };
        self.message = format!("{done}: {}", self.message);
        self.field = Some(
            match what {
                Done::DraftCreated => "draft_id",
                Done::Sealed => "handover_id",
            }
            .to_string(),
        );
        self
    }
}

/// Something already done when its output failed (see [`Failure::after_done`]).
#[derive(Clone, Copy)]
pub enum Done {
    /// `field new` created a draft.
    DraftCreated,
    /// `field finalize` sealed a referral.
    Sealed,
}

/// A readable reason for an I/O error in the given language (the operating system's own words
/// are English, so they are used only for English, and only for kinds without a text here).
pub fn io_reason(e: &std::io::Error, lang: Lang) -> String {
    use std::io::ErrorKind as K;
    let (sv, en) = match e.kind() {
        K::NotFound => ("finns inte", "does not exist"),
        K::PermissionDenied => ("åtkomst nekad", "permission denied"),
        K::AlreadyExists => ("finns redan", "already exists"),
        K::IsADirectory => ("är en mapp", "is a directory"),
        K::NotADirectory => (
            "en del av sökvägen är ingen mapp",
            "a part of the path is not a directory",
        ),
        K::StorageFull => ("disken är full", "no space left on the device"),
        K::BrokenPipe => ("mottagaren har stängt", "the reader has gone away"),
        K::InvalidData => ("är inte UTF-8-text", "is not UTF-8 text"),
        K::ReadOnlyFilesystem => (
            "filsystemet är skrivskyddat",
            "the file system is read-only",
        ),
        K::Interrupted => ("avbröts", "interrupted"),
        _ => {
            return match (lang, e.raw_os_error()) {
                (Lang::Sv, Some(n)) => format!("fel från systemet (os error {n})"),
                (Lang::Sv, None) => "fel från systemet".to_string(),
                (Lang::En, _) => e.to_string(),
            }
        }
    };
    lang.pick(sv, en).to_string()
}

/// A reason in both languages for a value the command line refused (from a value parser): the
/// usage message picks the language, and never repeats the value.
#[derive(Debug)]
pub struct Hint {
    pub sv: &'static str,
    pub en: &'static str,
}

impl std::fmt::Display for Hint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.en)
    }
}

impl std::error::Error for Hint {}

impl Ctx {
    /// Turns a core error into a failure in this context's language.
    pub fn fail(&self, e: &dyn Reasoned) -> Failure {
        Failure::from_reason(e, self.lang)
    }

    /// A failure to write to stdout.
    pub fn stdout_failed(&self, e: std::io::Error) -> Failure {
        let mut f = Failure::other(
            "io",
            self.lang.pick(
                format!("utdata gick inte att skriva: {}", io_reason(&e, Lang::Sv)),
                format!("cannot write the output: {}", io_reason(&e, Lang::En)),
            ),
        );
        f.stdout_failed = true;
        f
    }

    /// Prints a line for people (made printable first).
    pub fn line(&self, text: impl AsRef<str>) -> Result<(), Failure> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", printable(text.as_ref()))
            .and_then(|()| out.flush())
            .map_err(|e| self.stdout_failed(e))
    }

    /// Prints text for people that ends with its own newline (made printable first).
    pub fn text(&self, text: impl AsRef<str>) -> Result<(), Failure> {
        let mut out = std::io::stdout().lock();
        out.write_all(printable(text.as_ref()).as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| self.stdout_failed(e))
    }

    /// Prints a JSON value on one line.
    pub fn print_json(&self, value: &serde_json::Value) -> Result<(), Failure> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{value}")
            .and_then(|()| out.flush())
            .map_err(|e| self.stdout_failed(e))
    }

    /// Prints rows as an aligned table on stdout (see [`table`]).
    pub fn table(&self, header: &[&str], rows: &[Vec<String>]) -> Result<(), Failure> {
        let mut out = std::io::stdout().lock();
        table(&mut out, header, rows)
            .and_then(|()| out.flush())
            .map_err(|e| self.stdout_failed(e))
    }

    /// A warning for people on stderr (a failing stderr is ignored: there is nowhere else).
    pub fn warn(&self, text: &str) {
        let _ = writeln!(std::io::stderr(), "{}", printable(text));
    }

    /// Prints a failure where the reader expects it: with `--json` as `{"error": …}` on stdout
    /// (on stderr if stdout is what failed), otherwise on stderr. Never panics.
    pub fn report(&self, f: &Failure) {
        if self.json && !f.stdout_failed {
            let mut error = json!({ "code": f.code, "message": f.message });
            if let Some(field) = &f.field {
                error["field"] = json!(field);
            }
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{}", json!({ "error": error }))
                .and_then(|()| out.flush())
                .is_ok()
            {
                return;
            }
        }
        let field = f
            .field
            .as_deref()
            .map(|x| format!(" [{x}]"))
            .unwrap_or_default();
        let _ = writeln!(
            std::io::stderr(),
            "lotsa: {}{field}: {}",
            f.code,
            printable(&f.message)
        );
    }

    /// Reads a text file of at most [`MAX_INPUT_BYTES`], naming it in the failure.
    pub fn read_file(&self, path: &Path) -> Result<String, Failure> {
        let shown = printable(&path.display().to_string()).into_owned();
        let cannot = |e: std::io::Error| {
            Failure::other(
                "file",
                self.lang.pick(
                    format!("{shown} går inte att läsa: {}", io_reason(&e, Lang::Sv)),
                    format!("cannot read {shown}: {}", io_reason(&e, Lang::En)),
                ),
            )
        };
        let file = std::fs::File::open(path).map_err(cannot)?;
        self.read_capped(file, &shown).map_err(|f| {
            if f.code == "io" {
                Failure {
                    code: "file".into(),
                    ..f
                }
            } else {
                f
            }
        })
    }

    /// Reads stdin as one text document of at most [`MAX_INPUT_BYTES`].
    pub fn read_stdin(&self) -> Result<String, Failure> {
        let name = self
            .lang
            .pick("standardinmatningen", "standard input")
            .to_string();
        self.read_capped(std::io::stdin().lock(), &name)
    }

    fn read_capped(&self, reader: impl Read, name: &str) -> Result<String, Failure> {
        let mut bytes = Vec::new();
        reader
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                Failure::other(
                    "io",
                    self.lang.pick(
                        format!("{name} går inte att läsa: {}", io_reason(&e, Lang::Sv)),
                        format!("cannot read {name}: {}", io_reason(&e, Lang::En)),
                    ),
                )
            })?;
        if bytes.len() as u64 > MAX_INPUT_BYTES {
            return Err(Failure::other(
                "file_too_large",
                self.lang.pick(
                    format!("{name} är större än 1 MiB: ingen fil som lotsa läser är så stor"),
                    format!("{name} is larger than 1 MiB: no file lotsa reads is that large"),
                ),
            ));
        }
        String::from_utf8(bytes).map_err(|_| {
            Failure::other(
                "file_not_text",
                self.lang.pick(
                    format!("{name} är inte UTF-8-text"),
                    format!("{name} is not UTF-8 text"),
                ),
            )
        })
    }
}

/// Rows printed as an aligned table while they come: the first [`TableWriter::BATCH`] rows set
/// the column widths (a wider cell later only pushes its own row), so a table of a million lines
/// never sits whole in memory. Every cell is made printable first: a control or bidi character in
/// a name, an id or a line of input is shown as an escape, never sent to the terminal.
pub struct TableWriter<W: Write> {
    out: W,
    header: Vec<String>,
    pending: Vec<Vec<String>>,
    widths: Option<Vec<usize>>,
}

impl<W: Write> TableWriter<W> {
    /// Rows held back to measure the columns.
    pub const BATCH: usize = 1000;

    pub fn new(out: W, header: &[&str]) -> TableWriter<W> {
        TableWriter {
            out,
            header: header.iter().map(|h| h.to_string()).collect(),
            pending: Vec::new(),
            widths: None,
        }
    }

    /// Adds a row (printed at once when the widths are known).
    pub fn row(&mut self, row: &[String]) -> std::io::Result<()> {
        let row: Vec<String> = row.iter().map(|c| printable(c).into_owned()).collect();
        if self.widths.is_some() {
            return self.write_row(&row);
        }
        self.pending.push(row);
        if self.pending.len() >= Self::BATCH {
            self.start()?;
        }
        Ok(())
    }

    /// Prints what is held back (the header at least) and flushes.
    pub fn finish(mut self) -> std::io::Result<W> {
        if self.widths.is_none() {
            self.start()?;
        }
        self.out.flush()?;
        Ok(self.out)
    }

    fn start(&mut self) -> std::io::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.pending {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        self.widths = Some(widths);
        let header = self.header.clone();
        self.write_row(&header)?;
        for row in std::mem::take(&mut self.pending) {
            self.write_row(&row)?;
        }
        Ok(())
    }

    fn write_row(&mut self, cells: &[String]) -> std::io::Result<()> {
        let widths = self.widths.as_deref().unwrap_or(&[]);
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i + 1 < cells.len() {
                let width = widths.get(i).copied().unwrap_or(0);
                s.push_str(&" ".repeat(width.saturating_sub(c.chars().count()) + 2));
            }
        }
        writeln!(self.out, "{}", s.trim_end())
    }
}

/// Prints rows as an aligned table (the header first). Widths count characters, not bytes.
pub fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut t = TableWriter::new(out, header);
    for row in rows {
        t.row(row)?;
    }
    t.finish().map(|_| ())
}

/// A date option (`--on`): YYYY-MM-DD.
pub fn parse_date(s: &str) -> Result<chrono::NaiveDate, Hint> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| Hint {
        sv: "skriv datumet som ÅÅÅÅ-MM-DD",
        en: "write the date as YYYY-MM-DD",
    })
}
