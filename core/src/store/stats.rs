//! Anonymous statistics: counters per program and day — offers, consents, refusals,
//! ineligibility by reason code, withdrawals. The pilots could not tell how many offers were
//! made; these counters answer that without storing anything about a person: a refusal is one
//! increment, nothing more.

use super::{Store, StoreError};
use crate::program::Bundle;
use crate::referral::find_program;
use rusqlite::{params, Transaction};
use serde::Serialize;

/// What is counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counter {
    /// A program was offered (a draft started, or an offer refused on the spot).
    Offers,
    /// A consent was recorded.
    Consents,
    /// The person said no.
    Refusals,
    /// The person could not be offered the program, by the verdict's blocking reason code.
    Ineligible(&'static str),
    /// Consent was withdrawn.
    Withdrawals,
}

impl Counter {
    fn name(&self) -> String {
        match self {
            Counter::Offers => "offers".into(),
            Counter::Consents => "consents".into(),
            Counter::Refusals => "refusals".into(),
            Counter::Ineligible(code) => format!("ineligible:{code}"),
            Counter::Withdrawals => "withdrawals".into(),
        }
    }
}

/// One counter's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatRow {
    /// Stockholm date.
    pub day: String,
    /// Program.
    pub program_id: String,
    /// `offers`, `consents`, `refusals`, `ineligible:<reason>`, `withdrawals`.
    pub counter: String,
    /// How many.
    pub count: u64,
}

/// Adds one to a counter inside the caller's transaction (through [`super::Change::count`]).
pub(super) fn bump(
    tx: &Transaction<'_>,
    day: &str,
    program_id: &str,
    counter: &Counter,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO stats (day, program_id, counter, count) VALUES (?1, ?2, ?3, 1)
         ON CONFLICT (day, program_id, counter) DO UPDATE SET count = count + 1",
        params![day, program_id, counter.name()],
    )?;
    Ok(())
}

impl Store {
    /// Counts an offer the person refused before any draft was started. Stores nothing about
    /// the person. The program must be in the bundle: a typo must not invent a program in the
    /// statistics.
    pub fn record_refusal(&mut self, bundle: &Bundle, program_id: &str) -> Result<(), StoreError> {
        self.accept_bundle(bundle)?;
        let program = find_program(bundle, program_id)?;
        self.write(|c| {
            c.count(&program.id, &Counter::Offers)?;
            c.count(&program.id, &Counter::Refusals)
        })
    }

    /// Every counter, by day, program and name.
    pub fn stats(&self) -> Result<Vec<StatRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT day, program_id, counter, count FROM stats ORDER BY day, program_id, counter",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(StatRow {
                day: r.get("day")?,
                program_id: r.get("program_id")?,
                counter: r.get("counter")?,
                count: r.get::<_, i64>("count")?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
