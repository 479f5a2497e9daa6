//! The device store as an app holds it: encrypted drafts, consent, finalize into the sealed
//! outbox, withdrawal, the queue, anonymous statistics and the audit log — one SQLite file, one
//! [`DeviceStore`] object per file, and a [`KeyVault`] the app implements with its platform
//! keystore (Android Keystore, iOS Keychain).
//!
//! Every [`DeviceStore`] call does disk I/O (SQLite with `synchronous=FULL`: each write waits for
//! the flash) and may call the key vault: call them off the main thread. Calls are serialised by
//! one lock per store; the vault is called while that lock is held, so a vault implementation
//! must never call back into the store.

use crate::error::ApiError;
use crate::language;
use crate::programs::{
    self, ConsentInput, ConsentReceipt, PersonFacts, ProgramBundle, Provenance, Role, Verdict,
};
use chrono::DateTime;
use lotsa_core::clock::{to_stockholm, SystemClock};
use lotsa_core::crypto::vault::{self, VaultError};
use lotsa_core::referral;
use lotsa_core::store::{self as core_store, Store, StoreError};
use lotsa_core::text::Reasoned;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// The platform key store, implemented by the app: one non-exportable, device-bound key per
/// alias (Android Keystore, iOS Keychain), which wraps the core's own random keys. The core keeps
/// only the wrapped bytes; without this key nothing in the store can be read.
///
/// Contract:
/// - `wrap` creates the alias's key on first use and returns opaque bytes. Wrapping must be
///   authenticated (an AEAD such as AES-GCM) with the alias bound, so that altered bytes, or
///   bytes wrapped under another alias, are refused — never unwrapped to something else.
/// - `unwrap` never creates a key.
/// - `destroy` deletes the alias's key; a missing alias is not an error. Everything wrapped
///   under it is gone for good (crypto-shredding).
/// - Errors: throw `ApiError.VaultLocked` when the key exists but cannot be used *now* (device
///   locked, user authentication required, keystore busy): the core keeps everything and the app
///   retries later; the store reports it back as `VaultLocked`. Throw `ApiError.VaultKeyGone`
///   from `unwrap` only when the platform says the key is gone for good (no key under the alias
///   after a reinstall, `KeyPermanentlyInvalidatedException`, the lock screen removed): the store
///   then gives up the drafts under it, starts a new key and tells the app once
///   (`take_key_loss_notice`). Throw `ApiError.Storage` (or `ApiError.VaultFailed`) for anything
///   else (wrapped bytes refused, a keystore failure): the store reports it as `VaultFailed` and
///   gives nothing up. Any other exception (a bug) arrives as `Internal` and is treated the same
///   way. Messages must not contain key material.
/// - The store's keys are used while the phone is locked only if the app makes them usable
///   "after first unlock" (Android: no `setUnlockedDeviceRequired`; iOS:
///   `kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly`), so a background job can work.
/// - Calls come from the thread that called the store, while the store's lock is held: never call
///   the store from inside the vault.
#[uniffi::export(foreign)]
pub trait KeyVault: Send + Sync {
    /// Encrypts `plaintext` (a key of the core's) under the alias's key, creating it if needed.
    fn wrap(&self, alias: String, plaintext: Vec<u8>) -> Result<Vec<u8>, ApiError>;
    /// Decrypts bytes made by `wrap` under the same alias.
    fn unwrap(&self, alias: String, wrapped: Vec<u8>) -> Result<Vec<u8>, ApiError>;
    /// Deletes the alias's key (idempotent).
    fn destroy(&self, alias: String) -> Result<(), ApiError>;
}

/// The core's vault interface over the app's implementation.
struct PlatformVault(Arc<dyn KeyVault>);

/// `VaultLocked` is temporary; everything else is a failure (the core treats a refused, lost or
/// failed key alike: it keeps its data and reports the error).
fn vault_error(e: ApiError) -> VaultError {
    match e {
        ApiError::VaultLocked { msg } => VaultError::Unavailable { reason: msg },
        ApiError::VaultKeyGone { msg } => VaultError::KeyGone { reason: msg },
        other => VaultError::Failed {
            reason: other.to_string(),
        },
    }
}

impl vault::KeyVault for PlatformVault {
    fn wrap(&self, alias: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.0
            .wrap(alias.to_string(), plaintext.to_vec())
            .map_err(vault_error)
    }

    fn unwrap(&self, alias: &str, wrapped: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.0
            .unwrap(alias.to_string(), wrapped.to_vec())
            .map_err(vault_error)
    }

    fn destroy(&self, alias: &str) -> Result<(), VaultError> {
        self.0.destroy(alias.to_string()).map_err(vault_error)
    }
}

/// A change to a draft. Every field is optional: `None` (null / omitted) leaves the stored value
/// unchanged; an empty or blank string clears it. Values are stored exactly as typed; they are
/// checked by `check_draft` (identity number, date of birth, municipality, postal code) and by
/// `finalize` (everything the program needs), which name the field on error.
#[derive(Clone, PartialEq, Eq, Default, uniffi::Record)]
pub struct DraftUpdate {
    /// Name or chosen name.
    #[uniffi(default = None)]
    pub name: Option<String>,
    /// Phone number as typed.
    #[uniffi(default = None)]
    pub phone: Option<String>,
    /// Preferred language for the call.
    #[uniffi(default = None)]
    pub language: Option<String>,
    /// Best time to call.
    #[uniffi(default = None)]
    pub best_time: Option<String>,
    /// A short note (at most 500 characters).
    #[uniffi(default = None)]
    pub note: Option<String>,
    /// Personnummer or samordningsnummer as typed.
    #[uniffi(default = None)]
    pub identity_number: Option<String>,
    /// Date of birth (`YYYY-MM-DD`), when there is no number.
    #[uniffi(default = None)]
    pub birth_date: Option<String>,
    /// Kommunkod or municipality name.
    #[uniffi(default = None)]
    pub municipality: Option<String>,
    /// Postal code (a hint only), used when no municipality is given.
    #[uniffi(default = None)]
    pub postal_code: Option<String>,
    /// How residency is known. A draft given a municipality or postal code without it counts as
    /// `Stated` (a provisional verdict) until set. It cannot be cleared, only changed.
    #[uniffi(default = None)]
    pub provenance: Option<Provenance>,
}

/// A draft as read back: what was typed (blank fields are `None`), and its consent if recorded.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct DraftView {
    /// The referral's id (it becomes the handover id).
    pub draft_id: String,
    /// The program.
    pub program_id: String,
    /// When it was started (RFC 3339, Stockholm offset).
    pub created_at: String,
    /// When it is erased unless finalized (RFC 3339, Stockholm offset).
    pub expires_at: String,
    /// Name or chosen name.
    pub name: Option<String>,
    /// Phone number as typed.
    pub phone: Option<String>,
    /// Preferred language for the call.
    pub language: Option<String>,
    /// Best time to call.
    pub best_time: Option<String>,
    /// The officer's note.
    pub note: Option<String>,
    /// Identity number as typed.
    pub identity_number: Option<String>,
    /// Date of birth as typed.
    pub birth_date: Option<String>,
    /// Municipality as typed.
    pub municipality: Option<String>,
    /// Postal code as typed.
    pub postal_code: Option<String>,
    /// How residency is known (`None` until a residence field is set).
    pub provenance: Option<Provenance>,
    /// The recorded consent, if any.
    pub consent: Option<ConsentReceipt>,
}

/// Told once after the phone's key store lost the store's key.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct KeyLossNotice {
    /// How many unfinished referrals (drafts) were lost.
    pub drafts_lost: u32,
    /// The date of the loss (`YYYY-MM-DD`, Stockholm).
    pub day: String,
    /// What to tell the officer, in the app's language.
    pub text: String,
}

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DraftSaved {
    /// The recorded consent was cleared and must be given again.
    pub consent_cleared: bool,
    /// One problem per field that is wrong as typed (contact details, identity number, date of
    /// birth, municipality, postal code), in form order; the values are kept all the same.
    pub problems: Vec<FieldProblem>,
}

/// A problem with one typed field.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FieldProblem {
    /// The field (`phone`, `name`, …).
    pub field: String,
    /// Stable reason code.
    pub code: String,
    /// A sentence in the app's language.
    pub text: String,
}

/// A draft on the device, without its content (no decryption needed).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DraftSummary {
    /// The draft's id.
    pub draft_id: String,
    /// The program.
    pub program_id: String,
}

/// Who records a withdrawal (sent to the clinic with a withdrawal message).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Officer {
    /// Police or lots.
    pub role: Role,
    /// Service number or staff id.
    pub officer_id: String,
    /// Unit or team.
    pub unit: String,
}

/// What a withdrawal did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum WithdrawResult {
    /// It was still a draft: erased.
    DraftErased,
    /// It was in the outbox, not yet delivered: the sealed payload is erased.
    ErasedBeforeDelivery,
    /// It may have reached the clinic: a withdrawal message is queued for it.
    QueuedForClinic {
        /// The withdrawal message's outbox id.
        withdrawal_id: String,
    },
    /// It was already withdrawn or cancelled: nothing more to do.
    AlreadyWithdrawn,
}

/// What an outbox item carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ItemKind {
    /// A sealed referral.
    Referral,
    /// A withdrawal message for a delivered referral.
    Withdrawal,
}

/// Where an outbox item is on its way to the clinic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ItemState {
    /// Waiting to be sent.
    Pending,
    /// Being sent.
    Sending,
    /// The clinic's receipt was verified; the payload is erased.
    Delivered,
    /// Stopped after a permanent error (see the item's last error).
    Failed,
    /// Consent withdrawn before delivery; the payload is erased.
    Withdrawn,
    /// Cancelled by the officer; the payload is erased.
    Cancelled,
    /// The payload is damaged; kept and flagged.
    Damaged,
}

impl From<core_store::Withdrawn> for WithdrawResult {
    fn from(w: core_store::Withdrawn) -> WithdrawResult {
        match w {
            core_store::Withdrawn::DraftErased => WithdrawResult::DraftErased,
            core_store::Withdrawn::ErasedBeforeDelivery => WithdrawResult::ErasedBeforeDelivery,
            core_store::Withdrawn::QueuedForClinic { withdrawal_id } => {
                WithdrawResult::QueuedForClinic { withdrawal_id }
            }
            core_store::Withdrawn::AlreadyWithdrawn => WithdrawResult::AlreadyWithdrawn,
        }
    }
}

impl From<core_store::ItemState> for ItemState {
    fn from(s: core_store::ItemState) -> ItemState {
        match s {
            core_store::ItemState::Pending => ItemState::Pending,
            core_store::ItemState::Sending => ItemState::Sending,
            core_store::ItemState::Delivered => ItemState::Delivered,
            core_store::ItemState::Failed => ItemState::Failed,
            core_store::ItemState::Withdrawn => ItemState::Withdrawn,
            core_store::ItemState::Cancelled => ItemState::Cancelled,
            core_store::ItemState::Damaged => ItemState::Damaged,
        }
    }
}

/// One outbox item as the queue screen shows it. No personal data.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
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
    /// When the next attempt is due (RFC 3339, Stockholm offset).
    pub next_attempt_at: String,
    /// The last error's code, if any.
    pub last_error_code: Option<String>,
    /// The last error's text, if any.
    pub last_error_text: Option<String>,
    /// For a withdrawal: the referral it withdraws.
    pub refers_to: Option<String>,
    /// For a referral withdrawn after it may have reached the clinic: the state of the
    /// withdrawal message (`Delivered` once the clinic has it). Show the referral as withdrawn.
    pub withdrawal: Option<ItemState>,
}

/// How many outbox items are in each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Record)]
pub struct QueueCounts {
    /// Waiting to be sent.
    pub pending: u64,
    /// Being sent.
    pub sending: u64,
    /// Delivered.
    pub delivered: u64,
    /// Stopped after a permanent error.
    pub failed: u64,
    /// Withdrawn before delivery.
    pub withdrawn: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Damaged.
    pub damaged: u64,
}

/// The outbox at a glance. No personal data.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct QueueStatus {
    /// Items per state.
    pub counts: QueueCounts,
    /// Age in seconds of the oldest item still waiting (pending, sending or failed).
    pub oldest_pending_secs: Option<i64>,
    /// Every item, oldest first.
    pub items: Vec<QueueItem>,
}

/// One anonymous counter.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct StatRow {
    /// Stockholm date, `YYYY-MM-DD`.
    pub day: String,
    /// The program.
    pub program_id: String,
    /// `offers`, `consents`, `refusals`, `ineligible:<reason code>` or `withdrawals`.
    pub counter: String,
    /// How many.
    pub count: u64,
}

/// The result of checking the audit log's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AuditReport {
    /// True when every entry is intact and in place.
    pub intact: bool,
    /// How many entries the log holds.
    pub entries: u64,
    /// The last entry's hash (hex) when intact (64 zeros for an empty log).
    pub head: Option<String>,
    /// The first entry where the chain breaks (an entry edited, removed or reordered).
    pub broken_at: Option<i64>,
    /// What is wrong there, readable.
    pub problem: Option<String>,
}

/// The device store: one SQLite file. See the module documentation: every call does I/O.
#[derive(uniffi::Object)]
pub struct DeviceStore {
    inner: Mutex<Store>,
}

impl std::fmt::Debug for DeviceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceStore").finish_non_exhaustive()
    }
}

#[uniffi::export]
impl DeviceStore {
    /// Opens (or creates) the store at `path` with the app's key vault: migrations, then erases
    /// expired drafts. The vault is asked only when a draft is created or read (the root key is
    /// made and wrapped with the first draft), so the store opens, and the outbox works, while the
    /// device is locked; a draft call then is `VaultLocked`, and nothing is lost.
    #[uniffi::constructor]
    pub fn open(path: String, vault: Arc<dyn KeyVault>) -> Result<Arc<DeviceStore>, ApiError> {
        DeviceStore::open_on(&path, Arc::new(PlatformVault(vault)))
    }

    /// Starts a draft for a program of the bundle; returns its id. Counts an offer.
    pub fn create_draft(
        &self,
        bundle: Arc<ProgramBundle>,
        program_id: String,
    ) -> Result<String, ApiError> {
        Ok(self.lock().create_draft(bundle.core(), &program_id)?)
    }

    /// Changes a draft: `None` fields stay, blank strings clear (see [`DraftUpdate`]). Says
    /// whether a recorded consent was cleared (a new identity number or date of birth: it may be
    /// another person; the same number retyped in another form is not), and every problem with
    /// what the draft holds as typed, which is kept all the same.
    pub fn update_draft(
        &self,
        draft_id: String,
        update: DraftUpdate,
    ) -> Result<DraftSaved, ApiError> {
        let saved = self.lock().update_draft(&draft_id, update.into())?;
        Ok(DraftSaved {
            consent_cleared: saved.consent_cleared,
            problems: saved
                .problems
                .iter()
                .map(|e| FieldProblem {
                    field: e.field().unwrap_or_default().to_string(),
                    code: e.code().to_string(),
                    text: e.message(language()),
                })
                .collect(),
        })
    }

    /// The notice to show once after the phone's key store lost the store's key ("3 unfinished
    /// referrals were lost when the phone's key store was reset"); `None` when there is nothing
    /// to tell. Each loss is told once.
    pub fn take_key_loss_notice(&self) -> Result<Option<KeyLossNotice>, ApiError> {
        let notice = self.lock().take_key_loss_notice()?;
        Ok(notice.map(|n| KeyLossNotice {
            drafts_lost: n.drafts_lost,
            day: n.day.clone(),
            text: n.message(language()),
        }))
    }

    /// Accepts a program bundle for use on this device, or refuses it with `Configuration`:
    /// older than one already accepted (`bundle_superseded`), the same issue time with other
    /// content (`bundle_conflict`), or issued more than an hour after the phone's clock
    /// (`bundle_from_future`). Call it when a new bundle arrives; every call that takes a
    /// bundle checks it the same way.
    pub fn accept_bundle(&self, bundle: Arc<ProgramBundle>) -> Result<(), ApiError> {
        Ok(self.lock().accept_bundle(bundle.core())?)
    }

    /// Reads a draft back. An id that names no draft (never made, expired, finalized, deleted)
    /// is `InvalidInput` on `draft_id`, code `not_found`.
    pub fn draft(&self, draft_id: String) -> Result<DraftView, ApiError> {
        Ok(view(self.lock().draft(&draft_id)?))
    }

    /// The drafts on the device (ids and programs only), oldest first.
    pub fn drafts(&self) -> Result<Vec<DraftSummary>, ApiError> {
        let ids = self.lock().draft_ids()?;
        Ok(ids
            .into_iter()
            .map(|(draft_id, program_id)| DraftSummary {
                draft_id,
                program_id,
            })
            .collect())
    }

    /// The eligibility verdict on what the draft holds, today in Stockholm. A mistyped number or
    /// an unknown municipality is `InvalidInput` naming the field; missing facts give an
    /// undetermined verdict.
    pub fn check_draft(
        &self,
        bundle: Arc<ProgramBundle>,
        draft_id: String,
    ) -> Result<Verdict, ApiError> {
        let check = self.lock().check_draft(&draft_id, bundle.core())?;
        Ok(programs::verdict_from(&check.verdict))
    }

    /// Records the person's consent with the draft: the core builds the record like
    /// `ProgramBundle.validate_consent` (naming the person by the draft id; the input's
    /// `subject_ref` is not used), checks it against the program and stores it encrypted.
    /// Counts a consent (once per draft). An incomplete record is `ConsentMissing` naming the
    /// field; a `program_id` other than the draft's is `ConsentMissing` on `program_id`, code
    /// `consent_mismatch`. A choice that does not apply comes back as a note in the receipt.
    pub fn record_consent(
        &self,
        bundle: Arc<ProgramBundle>,
        draft_id: String,
        consent: ConsentInput,
    ) -> Result<ConsentReceipt, ApiError> {
        let given = self
            .lock()
            .record_consent(&draft_id, bundle.core(), &consent.into())?;
        Ok(programs::receipt_with_notes(&given))
    }

    /// Turns the draft into a sealed handover in the outbox and erases the draft; returns the
    /// handover id (the draft's id). Refuses, leaving the draft untouched, without consent
    /// (`ConsentMissing`), on a verdict that does not allow a referral (`NotEligible`), or with a
    /// missing or invalid field (`InvalidInput`).
    pub fn finalize(
        &self,
        bundle: Arc<ProgramBundle>,
        draft_id: String,
    ) -> Result<String, ApiError> {
        Ok(self.lock().finalize(&draft_id, bundle.core())?)
    }

    /// Withdraws consent, whatever the referral's state: a draft is erased; an undelivered
    /// handover has its sealed payload erased; a delivered one gets a withdrawal message queued
    /// for the clinic (naming `recorded_by`'s role, if given). Counts a withdrawal.
    #[uniffi::method(default(recorded_by = None))]
    pub fn withdraw(
        &self,
        id: String,
        recorded_by: Option<Officer>,
    ) -> Result<WithdrawResult, ApiError> {
        let recorder = recorded_by.map(|o| programs::recorder(o.role, o.officer_id, o.unit));
        Ok(self.lock().withdraw(&id, recorder.as_ref())?.into())
    }

    /// Counts an offer the person refused before any draft was started. Stores nothing about the
    /// person. The program must be in the bundle (a typo must not invent a program in the
    /// statistics).
    pub fn record_refusal(
        &self,
        bundle: Arc<ProgramBundle>,
        program_id: String,
    ) -> Result<(), ApiError> {
        Ok(self.lock().record_refusal(bundle.core(), &program_id)?)
    }

    /// The person declined after a draft was started: erases the draft and counts the refusal
    /// (the offer was counted when the draft was started), in one step.
    pub fn refuse_draft(&self, draft_id: String) -> Result<(), ApiError> {
        self.lock().refuse_draft(&draft_id)?;
        Ok(())
    }

    /// The program cannot take the person whose draft this is: the core assesses the draft,
    /// erases it and counts the verdict's blocking reasons, in one step. Returns the verdict.
    pub fn close_ineligible(
        &self,
        bundle: Arc<ProgramBundle>,
        draft_id: String,
    ) -> Result<Verdict, ApiError> {
        let verdict = self.lock().close_ineligible(&draft_id, bundle.core())?;
        Ok(programs::verdict_from(&verdict))
    }

    /// Assesses a person for a program and, when the verdict does not allow a referral, counts
    /// it once per blocking reason code (`ineligible:<code>`). Stores nothing about the person.
    /// Returns the verdict.
    pub fn record_ineligible(
        &self,
        bundle: Arc<ProgramBundle>,
        program_id: String,
        facts: PersonFacts,
    ) -> Result<Verdict, ApiError> {
        let verdict = self
            .lock()
            .record_ineligible(bundle.core(), &program_id, &facts.into())?;
        Ok(programs::verdict_from(&verdict))
    }

    /// Deletes a draft and its key.
    pub fn delete_draft(&self, draft_id: String) -> Result<(), ApiError> {
        Ok(self.lock().delete_draft(&draft_id)?)
    }

    /// The outbox at a glance: counts per state, the oldest waiting item's age, every item.
    pub fn queue_status(&self) -> Result<QueueStatus, ApiError> {
        let q = self.lock().queue_status()?;
        let mut counts = QueueCounts::default();
        for (state, n) in q.counts {
            let slot = match state {
                core_store::ItemState::Pending => &mut counts.pending,
                core_store::ItemState::Sending => &mut counts.sending,
                core_store::ItemState::Delivered => &mut counts.delivered,
                core_store::ItemState::Failed => &mut counts.failed,
                core_store::ItemState::Withdrawn => &mut counts.withdrawn,
                core_store::ItemState::Cancelled => &mut counts.cancelled,
                core_store::ItemState::Damaged => &mut counts.damaged,
            };
            *slot += n;
        }
        Ok(QueueStatus {
            counts,
            oldest_pending_secs: q.oldest_pending_secs,
            items: q
                .items
                .into_iter()
                .map(|i| QueueItem {
                    id: i.id,
                    kind: match i.kind {
                        core_store::ItemKind::Referral => ItemKind::Referral,
                        core_store::ItemKind::Withdrawal => ItemKind::Withdrawal,
                    },
                    program_id: i.program_id,
                    state: i.state.into(),
                    attempts: i.attempts,
                    next_attempt_at: rfc3339(i.next_attempt_at),
                    last_error_code: i.last_error_code,
                    last_error_text: i.last_error_text,
                    refers_to: i.refers_to,
                    withdrawal: i.withdrawal.map(Into::into),
                })
                .collect(),
        })
    }

    /// Every anonymous counter, by day, program and name.
    pub fn stats(&self) -> Result<Vec<StatRow>, ApiError> {
        Ok(self
            .lock()
            .stats()?
            .into_iter()
            .map(|r| StatRow {
                day: r.day,
                program_id: r.program_id,
                counter: r.counter,
                count: r.count,
            })
            .collect())
    }

    /// Walks the audit log's hash chain. A broken chain is a report with `intact = false` naming
    /// the first broken entry, not an error; errors are for a store that cannot be read.
    pub fn verify_audit(&self) -> Result<AuditReport, ApiError> {
        let store = self.lock();
        match store.verify_audit() {
            Ok(r) => Ok(AuditReport {
                intact: true,
                entries: r.entries,
                head: Some(r.head),
                broken_at: None,
                problem: None,
            }),
            Err(e @ StoreError::AuditBroken { seq, .. }) => Ok(AuditReport {
                intact: false,
                entries: store.audit_entries()?.len() as u64,
                head: None,
                broken_at: Some(seq),
                problem: Some(e.message(language())),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Erases every draft past its program's draft lifetime; returns how many. (Opening the
    /// store does it too; an app calls this when it resumes.)
    pub fn purge_expired(&self) -> Result<u32, ApiError> {
        let n = self.lock().purge_expired()?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}

impl DeviceStore {
    fn open_on(path: &str, vault: Arc<dyn vault::KeyVault>) -> Result<Arc<DeviceStore>, ApiError> {
        let store = Store::open(Path::new(path), vault, Arc::new(SystemClock))?;
        Ok(Arc::new(DeviceStore {
            inner: Mutex::new(store),
        }))
    }

    /// The store. A panic while it was held (caught by uniffi) left no half-done change behind —
    /// every change is one SQLite transaction, rolled back when dropped — so a poisoned lock is
    /// taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Store> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl From<DraftUpdate> for referral::DraftUpdate {
    fn from(u: DraftUpdate) -> referral::DraftUpdate {
        referral::DraftUpdate {
            name: u.name,
            phone: u.phone,
            language: u.language,
            best_time: u.best_time,
            note: u.note,
            identity_number: u.identity_number,
            birth_date: u.birth_date,
            municipality: u.municipality,
            postal_code: u.postal_code,
            provenance: u.provenance.map(Into::into),
        }
    }
}

fn view(stored: core_store::StoredDraft) -> DraftView {
    let d = stored.draft;
    let blank = |o: Option<String>| o.filter(|s| !s.trim().is_empty());
    let (municipality, postal_code, provenance) = match d.residence {
        Some(r) => (
            blank(r.municipality),
            blank(r.postal_code),
            Some(r.provenance.into()),
        ),
        None => (None, None, None),
    };
    DraftView {
        draft_id: d.draft_id,
        program_id: d.program_id,
        created_at: d.created_at.to_rfc3339(),
        expires_at: rfc3339(stored.expires_at),
        name: blank(d.contact.name),
        phone: blank(d.contact.phone),
        language: blank(d.contact.language),
        best_time: blank(d.contact.best_time),
        note: blank(d.contact.note),
        identity_number: blank(d.identity_number),
        birth_date: blank(d.birth_date),
        municipality,
        postal_code,
        provenance,
        consent: stored.consent.as_ref().map(programs::receipt),
    }
}

/// Unix seconds as RFC 3339 with the Stockholm offset.
pub(crate) fn rfc3339(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0)
        .map(|t| to_stockholm(t).to_rfc3339())
        .unwrap_or_default()
}

#[cfg(feature = "dev-vault")]
#[uniffi::export]
impl DeviceStore {
    /// **Development only**: opens the store with the core's file-backed key vault in
    /// `vault_dir` — keys in plain files that anyone who can read them can use to decrypt
    /// everything. Prints a warning to standard error on every open. For tests and emulators;
    /// never on a real device, so it exists only in builds with the `dev-vault` feature
    /// (`bindings/generate.sh` turns it on for the binding tests; release builds leave it out).
    #[uniffi::constructor]
    pub fn open_with_dev_vault(
        path: String,
        vault_dir: String,
    ) -> Result<Arc<DeviceStore>, ApiError> {
        let vault = vault::DevFileVault::open(&vault_dir)
            .map_err(|e| ApiError::VaultFailed { msg: e.to_string() })?;
        DeviceStore::open_on(&path, Arc::new(vault))
    }
}
