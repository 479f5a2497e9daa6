//! Drafts at rest: each draft has its own data key (wrapped under the epoch's root key) and two
//! sealed blobs, the draft itself and its consent record. Every write seals afresh with a new
//! nonce; erasing the row (and checkpointing the WAL, see [`Store::checkpoint`]) erases the only
//! copy of the key, so the draft is gone even where flash memory keeps old pages.

use super::audit::{self, Event};
use super::stats::{self, Counter};
use super::{draft_aad, Store, StoreError};
use crate::clock::to_stockholm;
use crate::consent::ConsentRecord;
use crate::crypto::field::{open_field, seal_field, DataKey};
use crate::eligibility::Verdict;
use crate::program::Program;
use crate::referral::{new_referral_id, Draft};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

/// A draft as read back: what was typed, and the consent if one was recorded.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredDraft {
    /// The draft.
    pub draft: Draft,
    /// The consent record, once given.
    pub consent: Option<ConsentRecord>,
    /// When it will be erased unless finalized (unix seconds).
    pub expires_at: i64,
}

debug_without_personal_data!(StoredDraft, draft, expires_at);

struct Row {
    program_id: String,
    expires_at: i64,
    key_epoch: u32,
    wrapped_key: Vec<u8>,
    body: Vec<u8>,
    consent: Option<Vec<u8>>,
}

impl Store {
    /// Starts a draft for a program; returns its id. Counts an offer.
    pub fn create_draft(&mut self, program: &Program) -> Result<String, StoreError> {
        let id = new_referral_id();
        let now = self.now();
        let draft = Draft::new(
            id.clone(),
            program.id.clone(),
            to_stockholm(self.clock.now()),
        );
        let key = DataKey::generate()?;
        let wrapped = self.root(super::CURRENT_EPOCH)?.wrap_data_key(&key, &id)?;
        let body = seal_field(&key, &draft_aad("body", &id), &to_json(&draft))?;
        // Rounded up to the minute: a clear column keeps only coarse times.
        let exact = now + i64::from(program.draft_lifetime_hours) * 3600;
        let expires_at = exact + (60 - exact.rem_euclid(60)) % 60;
        let day = self.today();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO drafts (id, program_id, created_day, expires_at, key_epoch, wrapped_key, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![id, program.id, day, expires_at, super::CURRENT_EPOCH, wrapped, body],
        )?;
        audit::append(&tx, now, Event::DraftCreated, Some(&id), Some(&program.id))?;
        stats::bump(&tx, &day, &program.id, &Counter::Offers)?;
        tx.commit()?;
        Ok(id)
    }

    /// Reads a draft back. A blob or key that does not open flags the draft and is
    /// [`StoreError::Damaged`].
    pub fn draft(&mut self, id: &str) -> Result<StoredDraft, StoreError> {
        let (row, key) = self.draft_row(id)?;
        let body = self.open_or_flag(id, "body", &key, &row.body)?;
        let draft: Draft = self.parse_or_flag(id, "body", &body)?;
        let consent = match &row.consent {
            Some(blob) => {
                let bytes = self.open_or_flag(id, "consent", &key, blob)?;
                Some(self.parse_or_flag(id, "consent", &bytes)?)
            }
            None => None,
        };
        Ok(StoredDraft {
            draft,
            consent,
            expires_at: row.expires_at,
        })
    }

    /// Changes a draft (contact details, number, residence). The id and program cannot change.
    /// Changing the identity number or date of birth clears a recorded consent (it may be another
    /// person); correcting contact details keeps it.
    pub fn update_draft(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut Draft),
    ) -> Result<Draft, StoreError> {
        let (row, key) = self.draft_row(id)?;
        let body = self.open_or_flag(id, "body", &key, &row.body)?;
        let mut draft: Draft = self.parse_or_flag(id, "body", &body)?;
        let before = (draft.identity_number.clone(), draft.birth_date.clone());
        change(&mut draft);
        draft.draft_id = id.to_string();
        draft.program_id = row.program_id.clone();
        // A consent belongs to the person who gave it: a different number or date of birth may be
        // a different person, so the consent must be given again. Corrections to contact details
        // keep it.
        let person_changed = before != (draft.identity_number.clone(), draft.birth_date.clone());
        let clear_consent = person_changed && row.consent.is_some();
        let sealed = seal_field(&key, &draft_aad("body", id), &to_json(&draft))?;
        let now = self.now();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE drafts SET body = ?1 WHERE id = ?2",
            params![sealed, id],
        )?;
        audit::append(
            &tx,
            now,
            Event::DraftUpdated,
            Some(id),
            Some(&row.program_id),
        )?;
        if clear_consent {
            tx.execute("UPDATE drafts SET consent = NULL WHERE id = ?1", [id])?;
            audit::append(
                &tx,
                now,
                Event::ConsentCleared,
                Some(id),
                Some(&row.program_id),
            )?;
        }
        tx.commit()?;
        Ok(draft)
    }

    /// Stores a consent record with its draft after checking it against the program. Counts a
    /// consent.
    pub fn record_consent(
        &mut self,
        id: &str,
        consent: &ConsentRecord,
        program: &Program,
    ) -> Result<(), StoreError> {
        let (row, key) = self.draft_row(id)?;
        if row.program_id != program.id {
            return Err(StoreError::Consent(
                crate::consent::ConsentError::Mismatch {
                    field: "program_id",
                },
            ));
        }
        if consent.subject_ref != id {
            return Err(StoreError::Consent(
                crate::consent::ConsentError::Mismatch {
                    field: "subject_ref",
                },
            ));
        }
        consent.validate(program)?;
        let sealed = seal_field(&key, &draft_aad("consent", id), &to_json(consent))?;
        let now = self.now();
        let day = self.today();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // One consent per draft in the statistics, however often it is recorded again.
        let had_consent: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM audit WHERE subject = ?1 AND kind = 'consent_recorded')",
            [id],
            |r| r.get(0),
        )?;
        tx.execute(
            "UPDATE drafts SET consent = ?1 WHERE id = ?2",
            params![sealed, id],
        )?;
        audit::append(
            &tx,
            now,
            Event::ConsentRecorded,
            Some(id),
            Some(&program.id),
        )?;
        if !had_consent {
            stats::bump(&tx, &day, &program.id, &Counter::Consents)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes a draft and its key.
    pub fn delete_draft(&mut self, id: &str) -> Result<(), StoreError> {
        self.erase_draft(id, Event::DraftDeleted, &[])
    }

    /// The person declined after a draft was started: erases the draft and counts the refusal
    /// (the offer was counted when the draft was started), in one transaction.
    pub fn refuse_draft(&mut self, id: &str) -> Result<(), StoreError> {
        self.erase_draft(id, Event::DraftRefused, &[Counter::Refusals])
    }

    /// The program cannot take the person: erases the draft and counts the verdict's blocking
    /// reasons, in one transaction.
    pub fn close_ineligible(&mut self, id: &str, verdict: &Verdict) -> Result<(), StoreError> {
        if verdict.may_refer {
            return Err(StoreError::WrongState {
                id: id.to_string(),
                state: "eligible",
                reason: "the person can be referred: refuse or delete the draft instead",
            });
        }
        let counters: Vec<Counter> = verdict
            .blocking_codes()
            .into_iter()
            .map(Counter::Ineligible)
            .collect();
        self.erase_draft(id, Event::DraftClosed, &counters)
    }

    /// Erases a draft row (and with it the only copy of its data key), with an audit entry and
    /// the given counter bumps — all in one transaction.
    pub(super) fn erase_draft(
        &mut self,
        id: &str,
        event: Event,
        counters: &[Counter],
    ) -> Result<(), StoreError> {
        let day = self.today();
        let now = self.now();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(program_id) = program_of(&tx, id)? else {
            return Err(StoreError::NotFound {
                what: "draft",
                id: id.to_string(),
            });
        };
        tx.execute("DELETE FROM drafts WHERE id = ?1", [id])?;
        audit::append(&tx, now, event, Some(id), Some(&program_id))?;
        for counter in counters {
            stats::bump(&tx, &day, &program_id, counter)?;
        }
        tx.commit()?;
        self.checkpoint();
        Ok(())
    }

    /// Erases every draft past its program's draft lifetime; returns how many. Runs at open.
    pub fn purge_expired(&mut self) -> Result<usize, StoreError> {
        let now = self.now();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let expired: Vec<(String, String)> = {
            let mut stmt =
                tx.prepare("SELECT id, program_id FROM drafts WHERE expires_at <= ?1")?;
            let rows = stmt.query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (id, program_id) in &expired {
            tx.execute("DELETE FROM drafts WHERE id = ?1", [id])?;
            audit::append(&tx, now, Event::DraftExpired, Some(id), Some(program_id))?;
        }
        tx.commit()?;
        if !expired.is_empty() {
            self.checkpoint();
        }
        Ok(expired.len())
    }

    /// The ids of the drafts on the device, oldest first, with their program (no personal data).
    pub fn draft_ids(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, program_id FROM drafts ORDER BY created_day, id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn draft_row(&mut self, id: &str) -> Result<(Row, DataKey), StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT program_id, expires_at, key_epoch, wrapped_key, body, consent, damaged
                 FROM drafts WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        Row {
                            program_id: r.get(0)?,
                            expires_at: r.get(1)?,
                            key_epoch: r.get(2)?,
                            wrapped_key: r.get(3)?,
                            body: r.get(4)?,
                            consent: r.get(5)?,
                        },
                        r.get::<_, Option<String>>(6)?,
                    ))
                },
            )
            .optional()?;
        let Some((row, damaged)) = row else {
            return Err(StoreError::NotFound {
                what: "draft",
                id: id.to_string(),
            });
        };
        if row.expires_at <= self.now() {
            self.erase_draft(id, Event::DraftExpired, &[])?;
            return Err(StoreError::NotFound {
                what: "draft",
                id: id.to_string(),
            });
        }
        if damaged.is_some() {
            return Err(StoreError::Damaged {
                what: "draft",
                id: id.to_string(),
            });
        }
        let unwrapped = self
            .root(row.key_epoch)?
            .unwrap_data_key(id, &row.wrapped_key);
        match unwrapped {
            Ok(key) => Ok((row, key)),
            Err(crate::crypto::CryptoError::Vault(v)) => Err(StoreError::Crypto(v.into())),
            Err(_) => Err(self.flag_damaged(id, "data key")),
        }
    }

    fn open_or_flag(
        &mut self,
        id: &str,
        column: &'static str,
        key: &DataKey,
        blob: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        open_field(key, &draft_aad(column, id), blob).map_err(|_| self.flag_damaged(id, column))
    }

    fn parse_or_flag<T: serde::de::DeserializeOwned>(
        &mut self,
        id: &str,
        column: &'static str,
        bytes: &[u8],
    ) -> Result<T, StoreError> {
        serde_json::from_slice(bytes).map_err(|_| self.flag_damaged(id, column))
    }

    /// Marks a draft damaged (kept, never dropped) and returns the error to report.
    fn flag_damaged(&mut self, id: &str, what: &'static str) -> StoreError {
        let now = self.now();
        let result = (|| -> Result<(), StoreError> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let program_id = program_of(&tx, id)?;
            tx.execute(
                "UPDATE drafts SET damaged = ?1 WHERE id = ?2",
                params![format!("{what}_does_not_open"), id],
            )?;
            audit::append(&tx, now, Event::Damaged, Some(id), program_id.as_deref())?;
            tx.commit()?;
            Ok(())
        })();
        match result {
            Ok(()) => StoreError::Damaged {
                what,
                id: id.to_string(),
            },
            Err(e) => e,
        }
    }
}

/// The program a draft belongs to, if the draft exists.
fn program_of(tx: &rusqlite::Transaction<'_>, id: &str) -> Result<Option<String>, StoreError> {
    Ok(tx
        .query_row("SELECT program_id FROM drafts WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?)
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("drafts and consent records always serialise")
}
