//! The outbox: finalized referrals, sealed to the clinic, waiting for delivery; and withdrawal
//! messages. Finalize is the one step where plaintext becomes ciphertext the device cannot read:
//! validate, build the payload, seal it, then in one transaction write the outbox item with its
//! audit entry and delete the draft with its key.

use super::audit::Event;
use super::stats::Counter;
use super::{Store, StoreError};
use crate::clock::to_stockholm;
use crate::consent::{Recorder, Withdrawal};
use crate::crypto::seal::{seal_to_clinic_b64, SealBinding};
use crate::crypto::sha256_hex;
use crate::program::Bundle;
use crate::protocol::WithdrawalMessage;
use crate::referral::{build_handover, find_program, new_referral_id};
use chrono::Timelike;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

pub use crate::referral::PAYLOAD_SCHEMA_VERSION;

/// What an outbox item carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// A sealed referral.
    Referral,
    /// A withdrawal message for a delivered referral.
    Withdrawal,
}

/// Where an item is on its way to the clinic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Waiting to be sent.
    Pending,
    /// A sync run holds its lease.
    Sending,
    /// The clinic's receipt was verified; the payload is erased.
    Delivered,
    /// Stopped after a permanent error; the reason is kept, with retry and cancel actions.
    Failed,
    /// Consent withdrawn before delivery; the payload is erased.
    Withdrawn,
    /// Cancelled by the officer; the payload is erased.
    Cancelled,
    /// The payload no longer matches its digest; kept and flagged.
    Damaged,
}

impl ItemState {
    /// Every state, in display order.
    pub const ALL: [ItemState; 7] = [
        ItemState::Pending,
        ItemState::Sending,
        ItemState::Delivered,
        ItemState::Failed,
        ItemState::Withdrawn,
        ItemState::Cancelled,
        ItemState::Damaged,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Pending => "pending",
            ItemState::Sending => "sending",
            ItemState::Delivered => "delivered",
            ItemState::Failed => "failed",
            ItemState::Withdrawn => "withdrawn",
            ItemState::Cancelled => "cancelled",
            ItemState::Damaged => "damaged",
        }
    }
}

impl ItemKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Referral => "referral",
            ItemKind::Withdrawal => "withdrawal",
        }
    }
}

/// Stored states and kinds are read strictly: a value this build does not know is an error
/// (a newer app wrote it, or the file is damaged), never silently another state.
fn parse_stored<T: Copy>(
    value: rusqlite::types::ValueRef<'_>,
    all: &[T],
    name: fn(T) -> &'static str,
) -> rusqlite::types::FromSqlResult<T> {
    let text = value.as_str()?;
    all.iter()
        .copied()
        .find(|x| name(*x) == text)
        .ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown stored value {text:?}").into())
        })
}

impl rusqlite::types::FromSql for ItemState {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        parse_stored(value, &ItemState::ALL, ItemState::as_str)
    }
}

impl rusqlite::types::FromSql for ItemKind {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        parse_stored(
            value,
            &[ItemKind::Referral, ItemKind::Withdrawal],
            ItemKind::as_str,
        )
    }
}

/// What a withdrawal did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Withdrawn {
    /// It was still a draft: erased.
    DraftErased,
    /// It was in the outbox, not yet delivered: the sealed payload is erased.
    ErasedBeforeDelivery,
    /// It may have reached the clinic: a withdrawal message is queued (id given).
    QueuedForClinic {
        /// The withdrawal message's outbox id.
        withdrawal_id: String,
    },
    /// It was already withdrawn or cancelled: nothing more to do.
    AlreadyWithdrawn,
}

/// One item, as the app's queue screen shows it. No personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueItem {
    /// Handover or withdrawal id.
    pub id: String,
    /// Referral or withdrawal.
    pub kind: ItemKind,
    /// The program.
    pub program_id: String,
    /// Its state.
    pub state: ItemState,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When the next attempt is due (unix seconds).
    pub next_attempt_at: i64,
    /// The last error's code, if any.
    pub last_error_code: Option<String>,
    /// The last error's text, if any (readable; no personal data).
    pub last_error_text: Option<String>,
    /// When it was queued (unix seconds, rounded down to the minute).
    pub queued_at: i64,
    /// For a withdrawal: the referral it withdraws.
    pub refers_to: Option<String>,
    /// For a referral withdrawn after it may have reached the clinic (delivered, or sent at
    /// least once): the state of the withdrawal message that tells the clinic, so that a
    /// delivered referral does not look as if nothing had happened to it.
    pub withdrawal: Option<ItemState>,
}

/// The whole queue at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueStatus {
    /// How many items are in each state (every state listed, zeros included).
    pub counts: Vec<(ItemState, u64)>,
    /// Age in seconds of the oldest item still waiting (pending, sending or failed).
    pub oldest_pending_secs: Option<i64>,
    /// Every item, oldest first.
    pub items: Vec<QueueItem>,
}

impl Store {
    /// Turns a draft into a sealed handover in the outbox; returns the handover id (the draft's
    /// id). Refuses, with the draft untouched, when consent is missing or invalid, the verdict does
    /// not allow a referral, or a field is wrong.
    pub fn finalize(&mut self, id: &str, bundle: &Bundle) -> Result<String, StoreError> {
        self.accept_bundle(bundle)?;
        // Finalize seals exactly the version it read, or nothing: the blobs before and after the
        // read must be the same, and the draft is deleted only while it still holds them.
        let blobs = |conn: &Connection| -> Result<Option<DraftBlobs>, StoreError> {
            Ok(conn
                .query_row(
                    "SELECT body, consent FROM drafts WHERE id = ?1",
                    [id],
                    |r| Ok((r.get("body")?, r.get("consent")?)),
                )
                .optional()?)
        };
        let before = blobs(&self.conn)?;
        let stored = self.draft(id)?;
        let after = blobs(&self.conn)?;
        if before != after {
            return Err(changed_while_finalizing(id));
        }
        let (body_read, consent_read) = after.ok_or_else(|| self.not_found("draft", id))?;
        let draft = &stored.draft;
        let program = find_program(bundle, &draft.program_id)?;
        let consent = stored
            .consent
            .as_ref()
            .ok_or_else(|| StoreError::ConsentMissing { id: id.to_string() })?;
        let now_utc = self.clock.now();
        let verdict = self.verdict_of(draft, bundle)?;
        let payload = build_handover(
            draft,
            program,
            &verdict,
            consent,
            to_stockholm(now_utc),
            self.clock.today(),
        )?;
        let key = program
            .current_hpke_key(now_utc)
            .ok_or_else(|| StoreError::NoClinicKey {
                program_id: program.id.clone(),
            })?;
        let binding = SealBinding {
            handover_id: id,
            program_id: &program.id,
            clinic_key_id: &key.key_id,
            schema_version: PAYLOAD_SCHEMA_VERSION,
        };
        let sealed = seal_to_clinic_b64(&key.public_key, &binding, &payload.to_bytes())?.to_bytes();
        drop(payload);

        self.write(|c| {
            // The draft goes first: a concurrent finalize of the same draft (another process) has
            // then either already taken it — a typed error, nothing written — or waits for us.
            let deleted = c.execute(
                "DELETE FROM drafts WHERE id = ?1 AND body = ?2 AND consent IS ?3",
                params![id, body_read, consent_read],
            )?;
            if deleted != 1 {
                let there: bool = c.query_row(
                    "SELECT EXISTS (SELECT 1 FROM drafts WHERE id = ?1) AS there",
                    [id],
                    |r| r.get("there"),
                )?;
                if there {
                    return Err(changed_while_finalizing(id));
                }
                return Err(super::not_found_in(c, "draft", id));
            }
            // Clear columns keep coarse times: an item is due from the minute it was queued.
            let minute = c.now() - c.now().rem_euclid(60);
            c.execute(
                "INSERT INTO outbox (id, kind, program_id, consent_id, clinic_key_id, payload,
                                     payload_sha256, state, next_attempt_at, queued_at, created_day)
                 VALUES (?1, 'referral', ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9)",
                params![
                    id,
                    program.id,
                    consent.consent_id,
                    key.key_id,
                    sealed,
                    sha256_hex(&sealed),
                    minute,
                    minute,
                    c.day
                ],
            )?;
            c.erases();
            c.audit(Event::Finalized, Some(id), Some(&program.id))
        })?;
        Ok(id.to_string())
    }

    /// Withdraws consent for a referral, with one call whatever its state: a draft is erased; an
    /// undelivered outbox item has its sealed payload erased; a delivered (or in-flight) one gets a
    /// withdrawal message queued for the clinic.
    pub fn withdraw(
        &mut self,
        id: &str,
        recorded_by: Option<&Recorder>,
    ) -> Result<Withdrawn, StoreError> {
        let draft_consented: Option<bool> = self
            .conn
            .query_row(
                "SELECT consent IS NOT NULL AS consented FROM drafts WHERE id = ?1",
                [id],
                |r| r.get("consented"),
            )
            .optional()?;
        if let Some(consented) = draft_consented {
            // Only a consent that was given can be withdrawn; an unconsented draft is just erased.
            let counters: &[Counter] = if consented {
                &[Counter::Withdrawals]
            } else {
                &[]
            };
            self.erase_draft(id, Event::DraftWithdrawn, counters)?;
            return Ok(Withdrawn::DraftErased);
        }
        let withdrawn_at = self.withdrawal_minute();
        self.write_erasing(|c| {
            let item = referral_item(c, id)?;
            let Some(ReferralItem {
                program_id,
                state,
                consent_id,
                attempts,
            }) = item
            else {
                // A draft withdrawn before: withdrawing again is the same answer as for an item.
                return match super::Gone::of(c, id)? {
                    super::Gone::Erased if withdrawn_as_draft(c, id)? => {
                        Ok(Withdrawn::AlreadyWithdrawn)
                    }
                    _ => Err(super::not_found_in(c, "handover", id)),
                };
            };
            if matches!(state, ItemState::Withdrawn | ItemState::Cancelled) {
                return Ok(Withdrawn::AlreadyWithdrawn);
            }
            let result =
                if state == ItemState::Delivered || state == ItemState::Sending || attempts > 0 {
                    // It may have reached the clinic (delivered, in flight, or tried without a
                    // receipt): erase our copy and tell the clinic, whose tombstone refuses a late one.
                    let withdrawal = Withdrawal {
                        handover_id: id.to_string(),
                        consent_id,
                        program_id: program_id.clone(),
                        withdrawn_at,
                        recorded_by_role: recorded_by.map(|r| r.role),
                    };
                    let withdrawal_id = queue_withdrawal(c, state, &withdrawal, "withdrawn")?;
                    c.audit(Event::WithdrawalQueued, Some(id), Some(&program_id))?;
                    Withdrawn::QueuedForClinic { withdrawal_id }
                } else {
                    c.execute(
                        "UPDATE outbox SET state = 'withdrawn', payload = NULL, lease_until = NULL,
                            lease_owner = NULL WHERE id = ?1",
                        [id],
                    )?;
                    c.audit(Event::WithdrawnBeforeDelivery, Some(id), Some(&program_id))?;
                    Withdrawn::ErasedBeforeDelivery
                };
            c.count(&program_id, &Counter::Withdrawals)?;
            c.erases();
            Ok(result)
        })
    }

    /// Now in Stockholm, to the minute: the clinic learns the minute of a withdrawal, not the
    /// second.
    fn withdrawal_minute(&self) -> chrono::DateTime<chrono::FixedOffset> {
        let at = to_stockholm(self.clock.now());
        at - chrono::Duration::nanoseconds(
            i64::from(at.second()) * 1_000_000_000 + i64::from(at.nanosecond()),
        )
    }

    /// The officer cancels an undelivered item (a referral that keeps failing, say): its payload
    /// is erased and, if a send was ever tried, a withdrawal message is queued, since it may have
    /// reached the clinic without a receipt.
    pub fn cancel(&mut self, id: &str) -> Result<Withdrawn, StoreError> {
        let withdrawn_at = self.withdrawal_minute();
        self.write_erasing(|c| {
            let item = referral_item(c, id)?;
            let Some(ReferralItem {
                program_id,
                state,
                consent_id,
                attempts,
            }) = item
            else {
                return Err(super::not_found_in(c, "handover", id));
            };
            if !matches!(
                state,
                ItemState::Pending | ItemState::Failed | ItemState::Damaged
            ) {
                return Err(StoreError::WrongState {
                    what: "handover",
                    id: id.to_string(),
                    state: state.as_str(),
                    reason: "only an undelivered item that is not being sent can be cancelled",
                });
            }
            let result = if attempts > 0 {
                let withdrawal = Withdrawal {
                    handover_id: id.to_string(),
                    consent_id,
                    program_id: program_id.clone(),
                    withdrawn_at,
                    recorded_by_role: None,
                };
                let withdrawal_id = queue_withdrawal(c, state, &withdrawal, "cancelled")?;
                Withdrawn::QueuedForClinic { withdrawal_id }
            } else {
                c.execute(
                    "UPDATE outbox SET state = 'cancelled', payload = NULL WHERE id = ?1",
                    [id],
                )?;
                Withdrawn::ErasedBeforeDelivery
            };
            c.audit(Event::Cancelled, Some(id), Some(&program_id))?;
            c.erases();
            Ok(result)
        })
    }

    /// The sealed bytes of an outbox item, after checking them against the digest written at
    /// finalize; a mismatch flags the item `damaged` (kept, never dropped) and is an error.
    pub fn sealed_payload(&mut self, id: &str) -> Result<Vec<u8>, StoreError> {
        let row: Option<(Option<Vec<u8>>, Option<String>, ItemState)> = self
            .conn
            .query_row(
                "SELECT payload, payload_sha256, state FROM outbox WHERE id = ?1",
                [id],
                |r| Ok((r.get("payload")?, r.get("payload_sha256")?, r.get("state")?)),
            )
            .optional()?;
        let Some((payload, digest, state)) = row else {
            return Err(self.not_found("handover", id));
        };
        let Some(payload) = payload else {
            return Err(StoreError::WrongState {
                what: "handover",
                id: id.to_string(),
                state: state.as_str(),
                reason: "its payload has been erased",
            });
        };
        if digest.as_deref() != Some(sha256_hex(&payload).as_str()) {
            self.write(|c| {
                c.execute(
                    "UPDATE outbox SET state = 'damaged', last_error_code = 'payload_damaged',
                            last_error_text = 'the sealed payload no longer matches its digest'
                     WHERE id = ?1",
                    [id],
                )?;
                c.audit(Event::Damaged, Some(id), None)
            })?;
            return Err(StoreError::Damaged {
                what: "sealed payload",
                id: id.to_string(),
            });
        }
        Ok(payload)
    }

    /// The queue at a glance: counts by state, the oldest waiting item's age, every item.
    pub fn queue_status(&self) -> Result<QueueStatus, StoreError> {
        let now = self.now();
        let mut stmt = self.conn.prepare(
            "SELECT o.id, o.kind, o.program_id, o.state, o.attempts, o.next_attempt_at,
                    o.last_error_code, o.last_error_text, o.queued_at, o.refers_to,
                    (SELECT w.state FROM outbox w
                     WHERE w.kind = 'withdrawal' AND w.refers_to = o.id) AS withdrawal
             FROM outbox o ORDER BY o.queued_at, o.id",
        )?;
        let mut oldest: Option<i64> = None;
        let mut items = Vec::new();
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let state: ItemState = r.get("state")?;
            let queued_at: i64 = r.get("queued_at")?;
            if matches!(
                state,
                ItemState::Pending | ItemState::Sending | ItemState::Failed
            ) {
                oldest = Some(oldest.map_or(queued_at, |o: i64| o.min(queued_at)));
            }
            items.push(QueueItem {
                id: r.get("id")?,
                kind: r.get("kind")?,
                program_id: r.get("program_id")?,
                state,
                attempts: r.get("attempts")?,
                next_attempt_at: r.get("next_attempt_at")?,
                last_error_code: r.get("last_error_code")?,
                last_error_text: r.get("last_error_text")?,
                queued_at,
                refers_to: r.get("refers_to")?,
                withdrawal: r.get("withdrawal")?,
            });
        }
        let counts = ItemState::ALL
            .into_iter()
            .map(|s| (s, items.iter().filter(|i| i.state == s).count() as u64))
            .collect();
        Ok(QueueStatus {
            counts,
            oldest_pending_secs: oldest.map(|o| (now - o).max(0)),
            items,
        })
    }
}

/// A referral in the outbox, as withdrawing or cancelling it needs it.
struct ReferralItem {
    program_id: String,
    state: ItemState,
    consent_id: Option<String>,
    /// Send attempts so far (any may have reached the clinic).
    attempts: u32,
}

fn referral_item(c: &rusqlite::Connection, id: &str) -> Result<Option<ReferralItem>, StoreError> {
    Ok(c.query_row(
        "SELECT program_id, state, consent_id, attempts FROM outbox
         WHERE id = ?1 AND kind = 'referral'",
        [id],
        |r| {
            Ok(ReferralItem {
                program_id: r.get("program_id")?,
                state: r.get("state")?,
                consent_id: r.get("consent_id")?,
                attempts: r.get("attempts")?,
            })
        },
    )
    .optional()?)
}

/// Erases a referral that may have reached the clinic (it becomes `end_state`, unless it was
/// delivered) and queues the withdrawal message for it, once; returns the message's id.
fn queue_withdrawal(
    c: &mut super::Change<'_>,
    state: ItemState,
    withdrawal: &Withdrawal,
    end_state: &str,
) -> Result<String, StoreError> {
    let id = &withdrawal.handover_id;
    let already: Option<String> = c
        .query_row(
            "SELECT id FROM outbox WHERE kind = 'withdrawal' AND refers_to = ?1",
            [id],
            |r| r.get("id"),
        )
        .optional()?;
    if state != ItemState::Delivered {
        c.execute(
            "UPDATE outbox SET state = ?2, payload = NULL, lease_until = NULL, lease_owner = NULL
             WHERE id = ?1",
            params![id, end_state],
        )?;
    }
    if let Some(withdrawal_id) = already {
        return Ok(withdrawal_id);
    }
    let withdrawal_id = new_referral_id();
    // Nothing personal in it, so it is stored as it will be sent.
    let bytes = WithdrawalMessage::new(&withdrawal_id, withdrawal).to_json();
    let minute = c.now() - c.now().rem_euclid(60);
    c.execute(
        "INSERT INTO outbox (id, kind, program_id, refers_to, payload, payload_sha256,
                             state, next_attempt_at, queued_at, created_day)
         VALUES (?1, 'withdrawal', ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?8)",
        params![
            withdrawal_id,
            withdrawal.program_id,
            id,
            bytes,
            sha256_hex(&bytes),
            minute,
            minute,
            c.day
        ],
    )?;
    Ok(withdrawal_id)
}

/// Whether the audit log says `id` was withdrawn while it was still a draft.
fn withdrawn_as_draft(conn: &rusqlite::Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM audit WHERE subject = ?1 AND kind = 'draft_withdrawn') AS w",
        [id],
        |r| r.get("w"),
    )?)
}

/// A draft row's sealed body and consent, as stored.
type DraftBlobs = (Vec<u8>, Option<Vec<u8>>);

/// Another process changed the draft (or its consent) while it was being finalized.
fn changed_while_finalizing(id: &str) -> StoreError {
    StoreError::WrongState {
        what: "draft",
        id: id.to_string(),
        state: "changed",
        reason: "it was changed while it was being finalized: check it and finalize again",
    }
}
