//! The audit log: what happened to which referral, when — and nothing personal.
//!
//! Entries hold an event kind, ids, a program id and a time rounded to the minute. They are
//! hash-chained: each entry's hash covers the previous entry's hash and its own fields, so an
//! edited, removed or reordered entry breaks the chain and [`Store::verify_audit`](super::Store::verify_audit) names where. (Cutting
//! entries off the end leaves a shorter valid chain; the receipts the clinic signs are the
//! defence against that, once sync delivers them.)

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::StoreError;
use crate::crypto::{hex, sha256};

/// The `prev_hash` of the first entry.
const GENESIS: [u8; 32] = [0; 32];

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A draft was started.
    DraftCreated,
    /// A draft was edited.
    DraftUpdated,
    /// A consent record was stored with a draft.
    ConsentRecorded,
    /// A draft was finalized into the sealed outbox.
    Finalized,
    /// A draft was deleted by the officer.
    DraftDeleted,
    /// A draft outlived its program's draft lifetime and was erased.
    DraftExpired,
    /// A blob or key failed to open; the item was flagged.
    Damaged,
    /// Consent was withdrawn before delivery: the sealed payload was erased.
    WithdrawnBeforeDelivery,
    /// Consent was withdrawn after delivery: a withdrawal message was queued.
    WithdrawalQueued,
    /// A draft was withdrawn before finalize: erased.
    DraftWithdrawn,
    /// The person declined after a draft was started: erased.
    DraftRefused,
    /// The program could not take the person: the draft was erased, the reasons counted.
    DraftClosed,
    /// The identity number or date of birth changed after consent: the consent was cleared.
    ConsentCleared,
    /// The clinic's verified receipt (or withdrawal confirmation) came back: the payload is erased.
    Delivered,
    /// The clinic said the referral was withdrawn there (410): the payload is erased.
    WithdrawnAtClinic,
    /// The officer cancelled an undelivered item: the payload is erased.
    Cancelled,
}

impl Event {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::DraftCreated => "draft_created",
            Event::DraftUpdated => "draft_updated",
            Event::ConsentRecorded => "consent_recorded",
            Event::Finalized => "finalized",
            Event::DraftDeleted => "draft_deleted",
            Event::DraftExpired => "draft_expired",
            Event::Damaged => "damaged",
            Event::WithdrawnBeforeDelivery => "withdrawn_before_delivery",
            Event::WithdrawalQueued => "withdrawal_queued",
            Event::DraftWithdrawn => "draft_withdrawn",
            Event::DraftRefused => "draft_refused",
            Event::DraftClosed => "draft_closed",
            Event::ConsentCleared => "consent_cleared",
            Event::Delivered => "delivered",
            Event::WithdrawnAtClinic => "withdrawn_at_clinic",
            Event::Cancelled => "cancelled",
        }
    }
}

/// One entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// UUID of the entry.
    pub id: String,
    /// Unix seconds, rounded down to the minute.
    pub at: i64,
    /// The event's stored name.
    pub kind: String,
    /// The draft, handover or withdrawal id.
    pub subject: Option<String>,
    /// The program.
    pub program_id: Option<String>,
}

impl Entry {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
        Ok(Entry {
            seq: r.get("seq")?,
            id: r.get("id")?,
            at: r.get("at")?,
            kind: r.get("kind")?,
            subject: r.get("subject")?,
            program_id: r.get("program_id")?,
        })
    }
}

fn entry_hash(prev: &[u8], e: &Entry) -> [u8; 32] {
    let mut buf = Vec::with_capacity(160);
    buf.extend_from_slice(b"lotsa audit v1\0");
    buf.extend_from_slice(prev);
    buf.extend_from_slice(&e.seq.to_be_bytes());
    buf.extend_from_slice(&e.at.to_be_bytes());
    for part in [
        Some(e.id.as_str()),
        Some(e.kind.as_str()),
        e.subject.as_deref(),
        e.program_id.as_deref(),
    ] {
        match part {
            None => buf.push(0),
            Some(s) => {
                buf.push(1);
                buf.extend_from_slice(&(s.len() as u64).to_be_bytes());
                buf.extend_from_slice(s.as_bytes());
            }
        }
    }
    sha256(&buf)
}

/// Appends an entry inside the caller's transaction (so the entry and the change it records
/// commit together). Only the store's write path calls it ([`super::Change::audit`]).
pub(crate) fn append(
    tx: &Transaction<'_>,
    at: i64,
    event: Event,
    subject: Option<&str>,
    program_id: Option<&str>,
) -> Result<(), StoreError> {
    let last: Option<(i64, Vec<u8>)> = tx
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get("seq")?, r.get("hash")?)))
        .optional()?;
    let (seq, prev) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_vec()),
    };
    let entry = Entry {
        seq,
        id: uuid::Uuid::new_v4().to_string(),
        at: at - at.rem_euclid(60),
        kind: event.as_str().to_string(),
        subject: subject.map(str::to_string),
        program_id: program_id.map(str::to_string),
    };
    let hash = entry_hash(&prev, &entry);
    tx.prepare_cached(
        "INSERT INTO audit (seq, id, at, kind, subject, program_id, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        entry.seq,
        entry.id,
        entry.at,
        entry.kind,
        entry.subject,
        entry.program_id,
        prev,
        hash.to_vec()
    ])?;
    Ok(())
}

/// The result of a successful check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// How many entries the chain holds.
    pub entries: u64,
    /// The last entry's hash (hex), or 64 zeros for an empty log.
    pub head: String,
}

/// Walks the whole chain; the first break is an [`StoreError::AuditBroken`] naming the entry.
pub(crate) fn verify(conn: &Connection) -> Result<AuditReport, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT seq, id, at, kind, subject, program_id, prev_hash, hash FROM audit ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    let mut prev = GENESIS.to_vec();
    let mut expected_seq = 1i64;
    while let Some(r) = rows.next()? {
        let entry = Entry::from_row(r)?;
        let stored_prev: Vec<u8> = r.get("prev_hash")?;
        let stored_hash: Vec<u8> = r.get("hash")?;
        let broken = |reason: &str| StoreError::AuditBroken {
            seq: entry.seq,
            reason: reason.to_string(),
        };
        if entry.seq != expected_seq {
            return Err(broken("an entry before this one is missing"));
        }
        if stored_prev != prev {
            return Err(broken(
                "does not follow the entry before it (removed or reordered)",
            ));
        }
        if stored_hash != entry_hash(&prev, &entry) {
            return Err(broken("was changed after it was written"));
        }
        prev = stored_hash;
        expected_seq += 1;
    }
    Ok(AuditReport {
        entries: (expected_seq - 1) as u64,
        head: hex(&prev),
    })
}

/// All entries in order (for the CLI and tests).
pub(crate) fn entries(conn: &Connection) -> Result<Vec<Entry>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT seq, id, at, kind, subject, program_id FROM audit ORDER BY seq")?;
    let rows = stmt.query_map([], Entry::from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema;

    fn log_with(n: usize) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn).unwrap();
        let tx = conn.transaction().unwrap();
        for i in 0..n {
            let subject = format!("00000000-0000-4000-8000-{i:012}");
            append(
                &tx,
                1_790_000_000 + i as i64 * 61,
                Event::DraftCreated,
                Some(&subject),
                Some("kalmar"),
            )
            .unwrap();
        }
        tx.commit().unwrap();
        conn
    }

    #[test]
    fn an_intact_chain_verifies() {
        let conn = log_with(5);
        let report = verify(&conn).unwrap();
        assert_eq!(report.entries, 5);
        assert_ne!(report.head, hex(&GENESIS));
        assert_eq!(verify(&log_with(0)).unwrap().entries, 0);
        // Times are rounded to the minute.
        assert!(entries(&conn).unwrap().iter().all(|e| e.at % 60 == 0));
    }

    #[test]
    fn an_edited_entry_is_found() {
        let conn = log_with(5);
        conn.execute("UPDATE audit SET kind = 'finalized' WHERE seq = 3", [])
            .unwrap();
        assert!(matches!(
            verify(&conn),
            Err(StoreError::AuditBroken { seq: 3, .. })
        ));
    }

    #[test]
    fn a_removed_entry_is_found() {
        let conn = log_with(5);
        conn.execute("DELETE FROM audit WHERE seq = 2", []).unwrap();
        assert!(matches!(
            verify(&conn),
            Err(StoreError::AuditBroken { seq: 3, .. })
        ));
        // Even with the sequence numbers closed up again.
        conn.execute("UPDATE audit SET seq = seq - 1 WHERE seq > 2", [])
            .unwrap();
        assert!(matches!(
            verify(&conn),
            Err(StoreError::AuditBroken { seq: 2, .. })
        ));
    }

    #[test]
    fn reordered_entries_are_found() {
        let conn = log_with(5);
        conn.execute_batch(
            "UPDATE audit SET seq = 100 WHERE seq = 2;
             UPDATE audit SET seq = 2 WHERE seq = 4;
             UPDATE audit SET seq = 4 WHERE seq = 100;",
        )
        .unwrap();
        assert!(matches!(
            verify(&conn),
            Err(StoreError::AuditBroken { seq: 2, .. })
        ));
    }
}
