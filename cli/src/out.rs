//! Output for people and for scripts: one place decides between a table and JSON, and how a
//! refusal is shown (code + message, on stderr for people, as `{"error": …}` on stdout for JSON).

use lotsa_core::text::{printable, Lang, Reasoned};
use serde_json::json;
use std::io::Write;

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
}

impl Failure {
    /// From any core error with a reason code.
    pub fn from_reason(e: &dyn Reasoned, lang: Lang) -> Failure {
        Failure {
            code: e.code().to_string(),
            message: e.message(lang),
            field: None,
        }
    }

    /// A failure outside the core (files, usage).
    pub fn other(code: &str, message: impl Into<String>) -> Failure {
        Failure {
            code: code.to_string(),
            message: message.into(),
            field: None,
        }
    }

    /// With the field it is about.
    pub fn on_field(mut self, field: &str) -> Failure {
        self.field = Some(field.to_string());
        self
    }
}

impl Ctx {
    /// Turns a core error into a failure in this context's language.
    pub fn fail(&self, e: &dyn Reasoned) -> Failure {
        Failure::from_reason(e, self.lang)
    }

    /// Prints a failure where the reader expects it.
    pub fn report(&self, f: &Failure) {
        if self.json {
            let mut error = json!({ "code": f.code, "message": f.message });
            if let Some(field) = &f.field {
                error["field"] = json!(field);
            }
            println!("{}", json!({ "error": error }));
        } else {
            let field = f
                .field
                .as_deref()
                .map(|x| format!(" [{x}]"))
                .unwrap_or_default();
            eprintln!("lotsa: {}{field}: {}", f.code, printable(&f.message));
        }
    }

    /// Prints a JSON value on one line.
    pub fn print_json(&self, value: &serde_json::Value) {
        println!("{value}");
    }
}

/// Prints rows as an aligned table (the header first). Widths count characters, not bytes.
/// Every cell is made printable first: a control or bidi character in a name or id (from a file
/// someone else wrote) is shown as an escape, never sent to the terminal.
pub fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| printable(c).into_owned()).collect())
        .collect();
    let rows = rows.as_slice();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: Vec<&str>| -> std::io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, header.to_vec())?;
    for row in rows {
        line(out, row.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

/// Reads a file, naming it in the failure.
pub fn read_file(path: &std::path::Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::other("file", format!("cannot read {}: {e}", path.display())))
}
