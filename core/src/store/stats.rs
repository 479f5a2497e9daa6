//! Anonymous statistics: counters per program and day — offers, consents, refusals,
//! ineligibility by reason code, withdrawals. The pilots could not tell how many offers were
//! made; these counters answer that without storing anything about a person: a refusal is one
//! increment, nothing more.

use super::{Store, StoreError};
use crate::eligibility::Verdict;
use rusqlite::{params, Transaction, TransactionBehavior};
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

/// Adds one to a counter inside the caller's transaction.
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
    /// Counts an offer the person refused. Stores nothing about the person.
    pub fn record_refusal(&mut self, program_id: &str) -> Result<(), StoreError> {
        let day = self.today();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        bump(&tx, &day, program_id, &Counter::Offers)?;
        bump(&tx, &day, program_id, &Counter::Refusals)?;
        tx.commit()?;
        Ok(())
    }

    /// Counts a person the program could not take, once per blocking reason code.
    pub fn record_ineligible(&mut self, verdict: &Verdict) -> Result<(), StoreError> {
        let day = self.today();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for code in verdict.blocking_codes() {
            bump(&tx, &day, &verdict.program_id, &Counter::Ineligible(code))?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every counter, by day, program and name.
    pub fn stats(&self) -> Result<Vec<StatRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT day, program_id, counter, count FROM stats ORDER BY day, program_id, counter",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(StatRow {
                day: r.get(0)?,
                program_id: r.get(1)?,
                counter: r.get(2)?,
                count: r.get::<_, i64>(3)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
