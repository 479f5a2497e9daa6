//! Drafts at rest: each draft has its own data key (wrapped under the epoch's root key) and two
//! sealed blobs, the draft itself and its consent record. Every write seals afresh with a new
//! nonce; erasing the row (and checkpointing the WAL, see [`Store::checkpoint`]) erases the only
//! copy of the key, so the draft is gone even where flash memory keeps old pages.

use super::audit::Event;
use super::stats::Counter;
use super::{draft_aad, Store, StoreError};
use crate::clock::to_stockholm;
use crate::consent::{ConsentForm, ConsentRecord, GivenConsent};
use crate::crypto::field::{open_field, seal_field, DataKey};
use crate::eligibility::{self, Verdict};
use crate::identity;
use crate::program::Bundle;
use crate::referral::{
    assess_typed, find_program, new_referral_id, Draft, DraftUpdate, ReferralError, TypedFacts,
};
use rusqlite::{params, OptionalExtension};

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

/// Where a draft stands: the verdict on what it holds, whether consent is recorded, and the
/// first thing still to fix before it can be finalized.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftCheck {
    /// The eligibility verdict, computed by the store from the draft and the bundle.
    pub verdict: Verdict,
    /// Whether a consent record is stored with the draft.
    pub consent_recorded: bool,
    /// The first field that is missing or wrong for the program, if any.
    pub problem: Option<ReferralError>,
    /// Verdict, consent and fields all allow finalize.
    pub ready_to_finalize: bool,
}

/// What an update did: every problem with what the draft now holds as typed (kept all the same),
/// and whether it cleared a recorded consent because the person may be someone else.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftSaved {
    /// One problem per field that is wrong as typed (contact details, identity number, date of
    /// birth, municipality, postal code), in form order; empty when all is well formed.
    pub problems: Vec<ReferralError>,
    /// A new identity number or date of birth cleared the consent: it must be given again.
    pub consent_cleared: bool,
}

struct Row {
    program_id: String,
    expires_at: i64,
    key_epoch: u32,
    wrapped_key: Vec<u8>,
    body: Vec<u8>,
    consent: Option<Vec<u8>>,
    damaged: Option<String>,
}

impl Store {
    /// Starts a draft for a program of the bundle; returns its id. Counts an offer. A program
    /// the bundle does not hold is refused (a typo must not invent a program).
    pub fn create_draft(
        &mut self,
        bundle: &Bundle,
        program_id: &str,
    ) -> Result<String, StoreError> {
        self.accept_bundle(bundle)?;
        let program = find_program(bundle, program_id)?;
        let id = new_referral_id();
        let draft = Draft::new(
            id.clone(),
            program.id.clone(),
            to_stockholm(self.clock.now()),
        );
        let key = DataKey::generate()?;
        let (epoch, root) = self.current_root()?;
        let wrapped = root.wrap_data_key(&key, &id)?;
        let body = seal_field(&key, &draft_aad("body", &id), &to_json(&draft))?;
        // Rounded up to the minute: a clear column keeps only coarse times.
        let exact = self.now() + i64::from(program.draft_lifetime_hours) * 3600;
        let expires_at = exact + (60 - exact.rem_euclid(60)) % 60;
        self.write(|c| {
            c.execute(
                "INSERT INTO drafts (id, program_id, created_day, expires_at, key_epoch, wrapped_key, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, program.id, c.day, expires_at, epoch, wrapped, body],
            )?;
            c.audit(Event::DraftCreated, Some(&id), Some(&program.id))?;
            c.count(&program.id, &Counter::Offers)
        })?;
        Ok(id)
    }

    /// Reads a draft back. A blob or key that does not open flags the draft and is
    /// [`StoreError::Damaged`].
    pub fn draft(&mut self, id: &str) -> Result<StoredDraft, StoreError> {
        let (row, key) = self.draft_row(id)?;
        let draft = self.open_body(id, &key, &row)?;
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

    /// Changes a draft (see [`Draft::apply`]: absent keeps, blank clears). The id and program
    /// cannot change. Changing the identity number or date of birth clears a recorded consent
    /// (it may be another person); correcting contact details keeps it. Returns the first problem
    /// with the contact details as typed, so the officer hears at once what is wrong; the values
    /// are kept all the same.
    pub fn update_draft(
        &mut self,
        id: &str,
        change: DraftUpdate,
    ) -> Result<DraftSaved, StoreError> {
        // The key is unwrapped first (the vault may be slow or locked); then the draft is read,
        // changed and written back inside one write transaction, so two concurrent updates never
        // lose a field and a change of identity never skips the consent rule.
        let (_, key) = self.draft_row(id)?;
        let today = self.clock.today();
        let aad = draft_aad("body", id);
        let saved = self.write(|c| {
            let current: Option<(Vec<u8>, bool, String, bool)> = c
                .query_row(
                    "SELECT body, consent IS NOT NULL AS consented, program_id,
                            damaged IS NOT NULL AS flagged FROM drafts WHERE id = ?1",
                    [id],
                    |r| {
                        Ok((
                            r.get("body")?,
                            r.get("consented")?,
                            r.get("program_id")?,
                            r.get::<_, bool>("flagged")?,
                        ))
                    },
                )
                .optional()?;
            let Some((body, consented, program_id, flagged)) = current else {
                return Err(super::not_found_in(c, "draft", id));
            };
            let damaged = || StoreError::Damaged {
                what: "body",
                id: id.to_string(),
            };
            if flagged {
                return Err(damaged());
            }
            let plain = open_field(&key, &aad, &body).map_err(|_| damaged())?;
            let mut draft: Draft = serde_json::from_slice(&plain).map_err(|_| damaged())?;
            if draft.program_id != program_id {
                return Err(damaged());
            }
            let before = person_key(&draft, today);
            draft.apply(change);
            // A consent belongs to the person who gave it: a different number or date of birth
            // may be a different person, so the consent must be given again. The same number
            // typed in another form (`900412-1233` for `19900412-1233`) is the same person.
            let consent_cleared = consented && before != person_key(&draft, today);
            let sealed = seal_field(&key, &aad, &to_json(&draft))?;
            c.execute(
                "UPDATE drafts SET body = ?1 WHERE id = ?2",
                params![sealed, id],
            )?;
            c.audit(Event::DraftUpdated, Some(id), Some(&program_id))?;
            if consent_cleared {
                c.execute("UPDATE drafts SET consent = NULL WHERE id = ?1", [id])?;
                c.audit(Event::ConsentCleared, Some(id), Some(&program_id))?;
            }
            Ok(DraftSaved {
                problems: draft.problems(today),
                consent_cleared,
            })
        });
        match saved {
            Err(StoreError::Damaged { what, .. }) => Err(self.flag_damaged(id, what)),
            other => other,
        }
    }

    /// Where a draft stands (see [`DraftCheck`]), on today's Stockholm date. A mistyped number
    /// or an unknown municipality is an error naming the field.
    pub fn check_draft(&mut self, id: &str, bundle: &Bundle) -> Result<DraftCheck, StoreError> {
        self.accept_bundle(bundle)?;
        let stored = self.draft(id)?;
        let verdict = self.verdict_of(&stored.draft, bundle)?;
        let program = find_program(bundle, &stored.draft.program_id)?;
        let problem = stored.draft.validate(program, self.clock.today()).err();
        let consent_recorded = stored.consent.is_some();
        Ok(DraftCheck {
            ready_to_finalize: verdict.may_refer && consent_recorded && problem.is_none(),
            verdict,
            consent_recorded,
            problem,
        })
    }

    /// Records the person's consent with the draft: the store builds the record from the form for
    /// the draft's program (the person named by the draft's id only, given now), validates it and
    /// stores it encrypted. Counts a consent (once per draft). A form whose `program_id` is not
    /// the draft's program is [`crate::consent::ConsentError::Mismatch`] on `program_id`.
    pub fn record_consent(
        &mut self,
        id: &str,
        bundle: &Bundle,
        form: &ConsentForm,
    ) -> Result<GivenConsent, StoreError> {
        self.accept_bundle(bundle)?;
        let (row, key) = self.draft_row(id)?;
        let program = find_program(bundle, &row.program_id)?;
        let given = form.record(program, id, to_stockholm(self.clock.now()))?;
        let sealed = seal_field(&key, &draft_aad("consent", id), &to_json(&given.record))?;
        self.write(|c| {
            // One consent per draft in the statistics, however often it is recorded again.
            let had_consent: bool = c.query_row(
                "SELECT EXISTS (SELECT 1 FROM audit WHERE subject = ?1 AND kind = 'consent_recorded')
                 AS had",
                [id],
                |r| r.get("had"),
            )?;
            // Only onto the draft as it was read: if another process changed who it is about,
            // finalized or erased it meanwhile, nothing is written.
            let updated = c.execute(
                "UPDATE drafts SET consent = ?1 WHERE id = ?2 AND body = ?3 AND damaged IS NULL",
                params![sealed, id, row.body],
            )?;
            if updated != 1 {
                let there: bool = c.query_row(
                    "SELECT EXISTS (SELECT 1 FROM drafts WHERE id = ?1) AS there",
                    [id],
                    |r| r.get("there"),
                )?;
                if !there {
                    return Err(super::not_found_in(c, "draft", id));
                }
                return Err(StoreError::WrongState {
                    what: "draft",
                    id: id.to_string(),
                    state: "changed",
                    reason: "it was changed while the consent was being recorded: check it and record the consent again",
                });
            }
            c.audit(Event::ConsentRecorded, Some(id), Some(&program.id))?;
            if !had_consent {
                c.count(&program.id, &Counter::Consents)?;
            }
            Ok(())
        })?;
        Ok(given)
    }

    /// Deletes a draft and its key.
    pub fn delete_draft(&mut self, id: &str) -> Result<(), StoreError> {
        self.erase_draft(id, Event::DraftDeleted, &[]).map(drop)
    }

    /// The person declined after a draft was started: erases the draft and counts the refusal
    /// (the offer was counted when the draft was started), in one transaction. Returns the
    /// draft's program.
    pub fn refuse_draft(&mut self, id: &str) -> Result<String, StoreError> {
        self.erase_draft(id, Event::DraftRefused, &[Counter::Refusals])
    }

    /// The program cannot take the person: the store assesses the draft itself, and when the
    /// verdict does not allow a referral erases the draft and counts the reasons that excluded
    /// the person (a verdict left undetermined by missing facts counts nothing), in one
    /// transaction. Returns that verdict. A draft the program can take is
    /// [`StoreError::WrongState`]: refuse or delete it instead.
    pub fn close_ineligible(&mut self, id: &str, bundle: &Bundle) -> Result<Verdict, StoreError> {
        self.accept_bundle(bundle)?;
        let stored = self.draft(id)?;
        let verdict = self.verdict_of(&stored.draft, bundle)?;
        if verdict.may_refer {
            return Err(StoreError::WrongState {
                what: "draft",
                id: id.to_string(),
                state: "eligible",
                reason: "the person can be referred: refuse or delete the draft instead",
            });
        }
        let counters: Vec<Counter> = verdict
            .counted_codes()
            .into_iter()
            .map(Counter::Ineligible)
            .collect();
        self.erase_draft(id, Event::DraftClosed, &counters)?;
        Ok(verdict)
    }

    /// The street check, counted: assesses a person for a program from what was typed and, when
    /// the verdict is *not eligible*, counts it once per reason that excluded the person (an
    /// undetermined verdict counts nothing: no verdict was reached). Stores
    /// nothing about the person. Returns the verdict.
    pub fn record_ineligible(
        &mut self,
        bundle: &Bundle,
        program_id: &str,
        facts: &TypedFacts,
    ) -> Result<Verdict, StoreError> {
        self.accept_bundle(bundle)?;
        let verdict = assess_typed(bundle, program_id, facts, self.clock.today())?;
        let codes = verdict.counted_codes();
        if !codes.is_empty() {
            self.write(|c| {
                for code in codes {
                    c.count(&verdict.program_id, &Counter::Ineligible(code))?;
                }
                Ok(())
            })?;
        }
        Ok(verdict)
    }

    /// The verdict on what a draft holds, for its own program, today.
    pub(super) fn verdict_of(&self, draft: &Draft, bundle: &Bundle) -> Result<Verdict, StoreError> {
        let program = find_program(bundle, &draft.program_id)?;
        let today = self.clock.today();
        Ok(eligibility::assess(
            &draft.facts(today)?,
            bundle,
            program,
            today,
        ))
    }

    /// Erases a draft row (and with it the only copy of its data key), with an audit entry and
    /// the given counter bumps — all in one transaction. Returns the draft's program.
    pub(super) fn erase_draft(
        &mut self,
        id: &str,
        event: Event,
        counters: &[Counter],
    ) -> Result<String, StoreError> {
        self.write_erasing(|c| {
            let Some(program_id) = program_of(c, id)? else {
                return Err(super::not_found_in(c, "draft", id));
            };
            c.execute("DELETE FROM drafts WHERE id = ?1", [id])?;
            c.erases();
            c.audit(event, Some(id), Some(&program_id))?;
            for counter in counters {
                c.count(&program_id, counter)?;
            }
            Ok(program_id)
        })
    }

    /// Erases every draft past its program's draft lifetime; returns how many. Runs at open.
    pub fn purge_expired(&mut self) -> Result<usize, StoreError> {
        // Most opens have nothing to erase: then nothing is written (and the space reserve is
        // not touched).
        let any: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM drafts WHERE expires_at <= ?1) AS any",
            [self.now()],
            |r| r.get("any"),
        )?;
        if !any {
            return Ok(0);
        }
        self.write_erasing(|c| {
            let expired: Vec<(String, String)> = {
                let mut stmt =
                    c.prepare("SELECT id, program_id FROM drafts WHERE expires_at <= ?1")?;
                let rows =
                    stmt.query_map([c.now()], |r| Ok((r.get("id")?, r.get("program_id")?)))?;
                rows.collect::<Result<_, _>>()?
            };
            for (id, program_id) in &expired {
                c.execute("DELETE FROM drafts WHERE id = ?1", [id])?;
                c.audit(Event::DraftExpired, Some(id), Some(program_id))?;
            }
            if !expired.is_empty() {
                c.erases();
            }
            Ok(expired.len())
        })
    }

    /// The ids of the drafts on the device, oldest first, with their program (no personal data).
    pub fn draft_ids(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, program_id FROM drafts ORDER BY created_day, id")?;
        let rows = stmt.query_map([], |r| Ok((r.get("id")?, r.get("program_id")?)))?;
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
                    Ok(Row {
                        program_id: r.get("program_id")?,
                        expires_at: r.get("expires_at")?,
                        key_epoch: r.get("key_epoch")?,
                        wrapped_key: r.get("wrapped_key")?,
                        body: r.get("body")?,
                        consent: r.get("consent")?,
                        damaged: r.get("damaged")?,
                    })
                },
            )
            .optional()?;
        let Some(row) = row else {
            return Err(self.not_found("draft", id));
        };
        if row.expires_at <= self.now() {
            self.erase_draft(id, Event::DraftExpired, &[])?;
            return Err(self.not_found("draft", id));
        }
        if row.damaged.is_some() {
            return Err(StoreError::Damaged {
                what: "draft",
                id: id.to_string(),
            });
        }
        let root = match self.root(row.key_epoch) {
            Err(StoreError::Crypto(crate::crypto::CryptoError::Vault(
                crate::crypto::vault::VaultError::KeyGone { .. },
            ))) => {
                // The platform lost the key for good: give the epoch up; this draft is lost.
                self.lose_epoch(row.key_epoch)?;
                return Err(StoreError::Damaged {
                    what: "draft",
                    id: id.to_string(),
                });
            }
            other => other?,
        };
        let unwrapped = root.unwrap_data_key(id, &row.wrapped_key);
        match unwrapped {
            Ok(key) => Ok((row, key)),
            Err(crate::crypto::CryptoError::Vault(v)) => Err(StoreError::Crypto(v.into())),
            Err(_) => Err(self.flag_damaged(id, "data key")),
        }
    }

    /// The sealed draft. Its program is the sealed one: a clear `program_id` column that says
    /// otherwise was changed behind the store's back, and the draft is flagged.
    fn open_body(&mut self, id: &str, key: &DataKey, row: &Row) -> Result<Draft, StoreError> {
        let body = self.open_or_flag(id, "body", key, &row.body)?;
        let draft: Draft = self.parse_or_flag(id, "body", &body)?;
        if draft.program_id != row.program_id {
            return Err(self.flag_damaged(id, "program_id"));
        }
        Ok(draft)
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
        let flagged = self.write(|c| {
            let program_id = program_of(c, id)?;
            c.execute(
                "UPDATE drafts SET damaged = ?1 WHERE id = ?2",
                params![format!("{what}_does_not_open"), id],
            )?;
            c.audit(Event::Damaged, Some(id), program_id.as_deref())
        });
        match flagged {
            Ok(()) => StoreError::Damaged {
                what,
                id: id.to_string(),
            },
            Err(e) => e,
        }
    }
}

/// Who the draft is about, as far as the consent is concerned: the identity number and date of
/// birth in their normalised form when they parse (so a retyped format is the same person), else
/// as typed without separators.
fn person_key(draft: &Draft, today: chrono::NaiveDate) -> (Option<String>, Option<String>) {
    use crate::referral::typed;
    let digits = |s: &str| {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
    };
    let number = typed(&draft.identity_number).map(|n| match identity::parse(n, today) {
        Ok(parsed) => parsed.normalized().to_string(),
        Err(_) => digits(n),
    });
    let born = typed(&draft.birth_date).map(|d| match identity::parse_birth_date(d, today) {
        Ok(date) => date.to_string(),
        Err(_) => digits(d),
    });
    (number, born)
}

/// The program a draft belongs to, if the draft exists.
fn program_of(tx: &rusqlite::Transaction<'_>, id: &str) -> Result<Option<String>, StoreError> {
    Ok(tx
        .query_row("SELECT program_id FROM drafts WHERE id = ?1", [id], |r| {
            r.get("program_id")
        })
        .optional()?)
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("drafts and consent records always serialise")
}
