//! What delivery needs from the store, each a short transaction so that no lock is held during
//! network I/O: the device's signing key and its enrolments, leases on due items, and the
//! settling of each attempt (a verified receipt erases the payload; a failure keeps it with its
//! reason and the time of the next try). The engine that calls these is `sync`.

use super::audit::Event;
use super::outbox::{ItemKind, ItemState};
use super::{Store, StoreError};
use crate::crypto::vault::VaultError;
use crate::crypto::{CryptoError, SigningKey};
use crate::protocol::{device_id, AuditHead};
use rusqlite::{params, OptionalExtension};

/// The KeyVault alias of the device's signing key. Its contract (see `KeyVault`): usable whenever
/// the phone has been unlocked once since it started ("after first unlock"), so a background
/// job can sign while the screen is locked.
pub const DEVICE_KEY_ALIAS: &str = "lotsa.device-key";

/// How long an item that waits for the app (an enrolment, a newer bundle) stays not due.
pub const WAITING_RECHECK_SECS: i64 = 15 * 60;

/// The codes of items that wait for an enrolment: enrolling makes them due at once.
const WAITING_FOR_ENROLMENT: &str = "('not_enrolled', 'device_revoked', 'unknown_device')";

/// The device's signing key and its id.
pub struct DeviceIdentity {
    /// The Ed25519 key every request is signed with.
    pub key: SigningKey,
    /// Its id (the protocol's `keyid`).
    pub device_id: String,
}

impl std::fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceIdentity")
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// An item leased for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    /// Handover id (referral) or withdrawal id.
    pub id: String,
    /// Referral or withdrawal.
    pub kind: ItemKind,
    /// The program (its clinic is where it goes).
    pub program_id: String,
    /// A referral's HPKE key id.
    pub clinic_key_id: Option<String>,
    /// The sealed referral or the withdrawal message, checked against its digest.
    pub payload: Vec<u8>,
    /// Attempts before this one.
    pub attempts: u32,
    /// The audit head it is sent with: the device's head at its first attempt.
    pub audit_head: AuditHead,
    /// Where it stands in the queue (queued minute, id): a run leases the next one after it.
    pub position: (i64, String),
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// A verified receipt or confirmation: the payload is erased, the receipt kept.
    Delivered {
        /// The receipt's bytes as the clinic sent them.
        receipt: Vec<u8>,
    },
    /// 410: withdrawn at the clinic; terminal, the payload is erased.
    WithdrawnAtClinic,
    /// This item cannot be taken as it is (400, 413, 415, 422): kept, with its reason; retry and
    /// cancel stay available.
    Failed {
        /// The problem code.
        code: String,
        /// A readable reason.
        text: String,
    },
    /// Try again at `at` (unix seconds): a network failure, a 5xx, a 2xx without a valid
    /// receipt, … One more attempt is counted.
    Retry {
        /// When.
        at: i64,
        /// Why, as a code.
        code: String,
        /// Why, readably.
        text: String,
        /// The request never reached the clinic (a `ConnectivityRestored` sync retries at once).
        network: bool,
    },
    /// Not attempted after all (the run's deadline, a device-level stop, no enrolment): back to
    /// pending as it was, with the reason when there is one.
    Released {
        /// Why it waits, when it is worth showing.
        reason: Option<(String, String)>,
    },
}

impl Store {
    /// The device's signing key: unwrapped from the vault, or made and wrapped on first use.
    /// A vault that says the key is gone is [`StoreError::Crypto`] with `KeyGone`; then
    /// [`Store::renew_device_key`] makes a new one, which must enrol again.
    pub fn device_identity(&mut self) -> Result<DeviceIdentity, StoreError> {
        let stored: Option<(Vec<u8>, String)> = self
            .conn
            .query_row(
                "SELECT wrapped, device_id FROM device_key WHERE id = 1",
                [],
                |r| Ok((r.get("wrapped")?, r.get("device_id")?)),
            )
            .optional()?;
        match stored {
            Some((wrapped, device_id)) => {
                let pkcs8 = self
                    .vault
                    .unwrap(DEVICE_KEY_ALIAS, &wrapped)
                    .map_err(CryptoError::Vault)?;
                let key = SigningKey::from_pkcs8(&pkcs8)?;
                Ok(DeviceIdentity { key, device_id })
            }
            None => self.new_device_key(1),
        }
    }

    /// A new device key after the vault lost the old one: every enrolment is void (the clinic
    /// knows the old key), so each clinic needs a new one-time code. The outbox is untouched.
    pub fn renew_device_key(&mut self) -> Result<DeviceIdentity, StoreError> {
        let generation: Option<u32> = self
            .conn
            .query_row("SELECT generation FROM device_key WHERE id = 1", [], |r| {
                r.get("generation")
            })
            .optional()?;
        // A wrap under a destroyed alias makes a fresh vault key.
        let _ = self.vault.destroy(DEVICE_KEY_ALIAS);
        self.new_device_key(generation.map_or(1, |g| g + 1))
    }

    fn new_device_key(&mut self, generation: u32) -> Result<DeviceIdentity, StoreError> {
        let key = SigningKey::generate()?;
        let id = device_id(&key.public_key());
        let wrapped = self
            .vault
            .wrap(DEVICE_KEY_ALIAS, key.pkcs8())
            .map_err(CryptoError::Vault)?;
        let stored: (Vec<u8>, String) = self.write(|c| {
            if generation > 1 {
                c.execute("DELETE FROM device_key", [])?;
                c.execute("DELETE FROM enrolments", [])?;
            }
            c.execute(
                "INSERT INTO device_key (id, generation, wrapped, device_id, created_day)
                 VALUES (1, ?1, ?2, ?3, ?4) ON CONFLICT (id) DO NOTHING",
                params![generation, wrapped, id, c.day],
            )?;
            Ok(c.query_row(
                "SELECT wrapped, device_id FROM device_key WHERE id = 1",
                [],
                |r| Ok((r.get("wrapped")?, r.get("device_id")?)),
            )?)
        })?;
        if stored.1 == id {
            return Ok(DeviceIdentity { key, device_id: id });
        }
        // Another process made the key first: use that one.
        let pkcs8 = self
            .vault
            .unwrap(DEVICE_KEY_ALIAS, &stored.0)
            .map_err(CryptoError::Vault)?;
        Ok(DeviceIdentity {
            key: SigningKey::from_pkcs8(&pkcs8)?,
            device_id: stored.1,
        })
    }

    /// Whether the current device key is enrolled at a clinic endpoint.
    pub fn is_enrolled(&self, endpoint: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM enrolments e JOIN device_key k ON k.device_id = e.device_id
                                WHERE e.endpoint = ?1) AS enrolled",
            )?
            .query_row([endpoint], |r| r.get("enrolled"))?)
    }

    /// Records that the clinic at `endpoint` enrolled `device_id`; items that were waiting for
    /// an enrolment are due at once.
    pub fn record_enrolment(&mut self, endpoint: &str, device_id: &str) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO enrolments (endpoint, device_id, enrolled_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (endpoint) DO UPDATE SET device_id = ?2, enrolled_at = ?3",
                params![endpoint, device_id, c.now()],
            )?;
            c.execute(
                &format!(
                    "UPDATE outbox SET next_attempt_at = ?1
                     WHERE state = 'pending' AND last_error_code IN {WAITING_FOR_ENROLMENT}"
                ),
                [c.now()],
            )?;
            Ok(())
        })
    }

    /// The newest audit entry's sequence number and hash (0 and zeros for an empty log), as the
    /// `Lotsa-Audit-Head` header carries it.
    pub fn audit_head(&self) -> Result<AuditHead, StoreError> {
        head_of(&self.conn)
    }

    /// Leases the items due now after `after` (a position in the queue: queued minute, id),
    /// oldest first, for `lease_secs`, in one short transaction: at most `max_items`, and no more
    /// payload bytes than `max_bytes` (but always at least one item). A run killed mid-batch
    /// leaves those items leased until the lease runs out; sent again, the clinic answers with
    /// the same receipt. A withdrawal is due only once its referral has settled. An item's first
    /// lease fixes the audit head it is sent with, every time. A payload that no longer matches
    /// its digest is flagged damaged and kept, never leased.
    pub fn lease_batch(
        &mut self,
        owner: &str,
        lease_secs: i64,
        after: Option<&(i64, String)>,
        max_items: usize,
        max_bytes: usize,
    ) -> Result<Vec<Leased>, StoreError> {
        let (mut after_at, mut after_id) = after
            .map(|(at, id)| (*at, id.clone()))
            .unwrap_or((i64::MIN, String::new()));
        loop {
            let leased: Vec<(Leased, Option<String>)> = self.write(|c| {
                let now = c.now();
                let mut found = Vec::new();
                let mut bytes = 0;
                {
                    let mut stmt = c.prepare_cached(
                        "SELECT o.id, o.kind, o.program_id, o.clinic_key_id, o.payload,
                                o.payload_sha256, o.attempts, o.head_seq, o.head_hash, o.queued_at
                         FROM outbox o INDEXED BY outbox_queue
                         WHERE ((o.state = 'pending' AND o.next_attempt_at <= ?1)
                                OR (o.state = 'sending' AND o.lease_until < ?1))
                           AND o.payload IS NOT NULL
                           AND (o.queued_at, o.id) > (?2, ?3)
                           AND (o.kind = 'referral' OR NOT EXISTS (
                                SELECT 1 FROM outbox r WHERE r.id = o.refers_to
                                  AND r.state IN ('pending', 'sending')))
                         ORDER BY o.queued_at, o.id LIMIT ?4",
                    )?;
                    let limit = i64::try_from(max_items.max(1)).unwrap_or(i64::MAX);
                    let mut rows = stmt.query(params![now, after_at, after_id, limit])?;
                    while let Some(r) = rows.next()? {
                        let id: String = r.get("id")?;
                        let queued_at: i64 = r.get("queued_at")?;
                        let payload: Vec<u8> = r.get("payload")?;
                        bytes += payload.len();
                        if !found.is_empty() && bytes > max_bytes {
                            break;
                        }
                        let head = stored_head(r.get("head_seq")?, r.get("head_hash")?);
                        found.push((
                            Leased {
                                position: (queued_at, id.clone()),
                                id,
                                kind: r.get("kind")?,
                                program_id: r.get("program_id")?,
                                clinic_key_id: r.get("clinic_key_id")?,
                                payload,
                                attempts: r.get("attempts")?,
                                audit_head: head.unwrap_or(AuditHead {
                                    seq: 0,
                                    sha256: [0; 32],
                                }),
                            },
                            r.get::<_, Option<String>>("payload_sha256")?,
                            head.is_some(),
                        ));
                    }
                }
                let mut current_head = None;
                let mut leased = Vec::with_capacity(found.len());
                for (mut item, digest, has_head) in found {
                    if !has_head {
                        item.audit_head = match current_head {
                            Some(head) => head,
                            None => *current_head.insert(head_of(c)?),
                        };
                    }
                    c.prepare_cached(
                        "UPDATE outbox SET state = 'sending', lease_owner = ?2, lease_until = ?3,
                                head_seq = ?4, head_hash = ?5
                         WHERE id = ?1",
                    )?
                    .execute(params![
                        item.id,
                        owner,
                        now + lease_secs,
                        item.audit_head.seq as i64,
                        item.audit_head.sha256.to_vec()
                    ])?;
                    leased.push((item, digest));
                }
                Ok(leased)
            })?;
            let Some((last, _)) = leased.last() else {
                return Ok(Vec::new());
            };
            (after_at, after_id) = last.position.clone();
            let mut sound = Vec::with_capacity(leased.len());
            for (item, digest) in leased {
                if digest.as_deref() == Some(crate::crypto::sha256_hex(&item.payload).as_str()) {
                    sound.push(item);
                } else {
                    // Flagged damaged and kept, never sent.
                    let _ = self.sealed_payload(&item.id);
                }
            }
            if !sound.is_empty() {
                return Ok(sound);
            }
        }
    }

    /// Records how an attempt ended (see [`Store::settle_all`]).
    pub fn settle(&mut self, id: &str, owner: &str, how: Settled) -> Result<(), StoreError> {
        self.settle_all(owner, vec![(id.to_string(), how)])
    }

    /// Records how each attempt of a batch ended, in one transaction (and, when receipts erase
    /// payloads, one checkpoint), for the items `owner` still holds the lease of (a withdrawal
    /// or a cancel while one was in flight has settled it already; then only its receipt is
    /// kept). A crash before this commits loses only receipts, which a resend fetches again.
    pub fn settle_all(
        &mut self,
        owner: &str,
        outcomes: Vec<(String, Settled)>,
    ) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let erasing = outcomes
            .iter()
            .any(|(_, how)| matches!(how, Settled::Delivered { .. } | Settled::WithdrawnAtClinic));
        let change = |c: &mut super::Change<'_>| -> Result<(), StoreError> {
            for (id, how) in &outcomes {
                settle_one(c, id, owner, how)?;
            }
            Ok(())
        };
        if erasing {
            self.write_erasing(change)
        } else {
            self.write(change)
        }
    }

    /// When the next item is due (unix seconds), if any is waiting.
    pub fn next_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.conn.query_row(
            "SELECT min(CASE WHEN state = 'sending' THEN lease_until ELSE next_attempt_at END)
                    AS due
             FROM outbox WHERE state IN ('pending', 'sending') AND payload IS NOT NULL",
            [],
            |r| r.get("due"),
        )?)
    }

    /// Coverage is back: items whose last attempt never reached the clinic are due now; the
    /// backoff of those the clinic answered is kept. Returns how many.
    pub fn connectivity_restored(&mut self) -> Result<usize, StoreError> {
        self.write(|c| {
            Ok(c.execute(
                "UPDATE outbox SET next_attempt_at = ?1
                 WHERE state = 'pending' AND failure_kind = 'network' AND next_attempt_at > ?1",
                [c.now()],
            )?)
        })
    }

    /// The officer asks for a failed or waiting item to be tried again now.
    pub fn retry_item(&mut self, id: &str) -> Result<(), StoreError> {
        let n = self.write(|c| {
            Ok(c.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?2
                 WHERE id = ?1 AND state IN ('pending', 'failed') AND payload IS NOT NULL",
                params![id, c.now()],
            )?)
        })?;
        if n == 1 {
            Ok(())
        } else {
            Err(self.item_not_retryable(id))
        }
    }

    fn item_not_retryable(&self, id: &str) -> StoreError {
        let state: Option<ItemState> = self
            .conn
            .query_row("SELECT state FROM outbox WHERE id = ?1", [id], |r| {
                r.get("state")
            })
            .optional()
            .ok()
            .flatten();
        match state {
            None => self.not_found("handover", id),
            Some(state) => StoreError::WrongState {
                what: "handover",
                id: id.to_string(),
                state: state.as_str(),
                reason: "only a pending or failed item can be retried or cancelled",
            },
        }
    }
}

/// One attempt's end, inside a batch's transaction (see [`Store::settle_all`]).
fn settle_one(
    c: &mut super::Change<'_>,
    id: &str,
    owner: &str,
    how: &Settled,
) -> Result<(), StoreError> {
    let held: Option<(String, ItemKind)> = c
        .prepare_cached(
            "SELECT program_id, kind FROM outbox
             WHERE id = ?1 AND state = 'sending' AND lease_owner = ?2",
        )?
        .query_row(params![id, owner], |r| {
            Ok((r.get("program_id")?, r.get("kind")?))
        })
        .optional()?;
    if let Settled::Delivered { receipt } = how {
        c.prepare_cached(
            "INSERT INTO receipts (handover_id, receipt, received_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (handover_id) DO NOTHING",
        )?
        .execute(params![id, receipt, c.now()])?;
    }
    let Some((program_id, _kind)) = held else {
        return Ok(());
    };
    let clear = "lease_owner = NULL, lease_until = NULL";
    match how {
        Settled::Delivered { .. } => {
            c.prepare_cached(&format!(
                "UPDATE outbox SET state = 'delivered', payload = NULL, {clear},
                        last_error_code = NULL, last_error_text = NULL,
                        failure_kind = NULL, attempts = attempts + 1 WHERE id = ?1"
            ))?
            .execute([id])?;
            c.audit(Event::Delivered, Some(id), Some(&program_id))?;
            c.erases();
        }
        Settled::WithdrawnAtClinic => {
            c.execute(
                &format!(
                    "UPDATE outbox SET state = 'withdrawn', payload = NULL, {clear},
                            last_error_code = 'withdrawn_at_clinic',
                            last_error_text = 'the clinic says it was withdrawn there',
                            attempts = attempts + 1 WHERE id = ?1"
                ),
                [id],
            )?;
            c.audit(Event::WithdrawnAtClinic, Some(id), Some(&program_id))?;
            c.erases();
        }
        Settled::Failed { code, text } => {
            c.execute(
                &format!(
                    "UPDATE outbox SET state = 'failed', {clear}, last_error_code = ?2,
                            last_error_text = ?3, failure_kind = 'clinic',
                            attempts = attempts + 1 WHERE id = ?1"
                ),
                params![id, code, text],
            )?;
        }
        Settled::Retry {
            at,
            code,
            text,
            network,
        } => {
            c.execute(
                &format!(
                    "UPDATE outbox SET state = 'pending', {clear}, next_attempt_at = ?2,
                            last_error_code = ?3, last_error_text = ?4, failure_kind = ?5,
                            attempts = attempts + 1 WHERE id = ?1"
                ),
                params![
                    id,
                    at,
                    code,
                    text,
                    if *network { "network" } else { "clinic" }
                ],
            )?;
        }
        Settled::Released { reason: None } => {
            c.prepare_cached(&format!(
                "UPDATE outbox SET state = 'pending', {clear} WHERE id = ?1"
            ))?
            .execute([id])?;
        }
        Settled::Released {
            reason: Some((code, text)),
        } => {
            // Waiting for the app (an enrolment, a bundle): not due again for a while, so a
            // scheduler does not spin; enrolling makes it due at once.
            c.execute(
                &format!(
                    "UPDATE outbox SET state = 'pending', {clear}, last_error_code = ?2,
                            last_error_text = ?3,
                            next_attempt_at = max(next_attempt_at, ?4) WHERE id = ?1"
                ),
                params![id, code, text, c.now() + WAITING_RECHECK_SECS],
            )?;
        }
    }
    Ok(())
}

fn head_of(conn: &rusqlite::Connection) -> Result<AuditHead, StoreError> {
    let last: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get("seq")?, r.get("hash")?)),
        )
        .optional()?;
    Ok(last
        .and_then(|(seq, hash)| stored_head(Some(seq), Some(hash)))
        .unwrap_or(AuditHead {
            seq: 0,
            sha256: [0; 32],
        }))
}

fn stored_head(seq: Option<i64>, hash: Option<Vec<u8>>) -> Option<AuditHead> {
    Some(AuditHead {
        seq: u64::try_from(seq?).ok()?,
        sha256: hash?.try_into().ok()?,
    })
}

/// Whether a vault error means the device key itself is lost (re-key and enrol again) rather than
/// unavailable for now.
pub fn device_key_lost(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Crypto(CryptoError::Vault(VaultError::KeyGone { .. }))
    )
}
