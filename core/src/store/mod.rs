//! The device's store: encrypted drafts, the sealed outbox, receipts, the audit log and anonymous
//! statistics, in one SQLite file.
//!
//! The phone is lost, seized or dies at a drug scene: nothing personal may leak from it and no
//! recorded consent may be lost. So every state change is one transaction (a crash leaves the old
//! state or the new one, never both or neither), personal data exists on disk only encrypted under
//! a per-draft key that the platform key vault protects, and after finalize the device keeps only
//! HPKE ciphertext that only the clinic can open. A blob that fails to open is a typed error and
//! its row is flagged — never a wrong plaintext, never a silent drop.
//!
//! The key vault is asked only when a draft is created or read: the first such call unwraps the
//! root key (creating it on first use) and keeps it in memory until the store is dropped. So the
//! store opens, and the outbox, statistics and audit log work, while the device is locked — the
//! background sync job needs no key to send what is already sealed — and a draft call on a locked
//! device is a temporary error that loses nothing. An app that wants drafts closed while the
//! device is locked drops the store on lock.
//!
//! The store is the front door of the field workflow: every front end (the FFI, the CLI)
//! creates, fills in, checks, consents, finalizes, refuses, closes and withdraws through its
//! methods, with the bundle and typed input, and the store computes verdicts and consent records
//! itself — a front end never hands it one it built. Every change goes through one write path,
//! `Store::write`: an IMMEDIATE transaction in which the change appends its audit entry and
//! bumps its counters, then a commit, then a WAL checkpoint when it erased personal data.

pub mod audit;
mod bundles;
mod delivery;
mod drafts;
mod files;
mod outbox;
pub mod schema;
mod stats;

pub use audit::{AuditReport, Event};
pub use delivery::{device_key_lost, DeviceIdentity, Leased, Settled, DEVICE_KEY_ALIAS};
pub use drafts::{DraftCheck, DraftSaved, StoredDraft};
pub use outbox::{ItemKind, ItemState, QueueItem, QueueStatus, Withdrawn, PAYLOAD_SCHEMA_VERSION};
pub use stats::{Counter, StatRow};

use crate::clock::{stockholm_date, Clock};
use crate::consent::ConsentError;
use crate::crypto::field::{FieldAad, RootKey};
use crate::crypto::CryptoError;
use crate::referral::ReferralError;
use crate::text::{Lang, Reasoned};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::crypto::vault::{KeyVault, VaultError};

/// Why a store operation failed. Nothing in it is personal: ids are random UUIDs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (disk full, file locked, corrupt file).
    #[error("storage failed: {reason}")]
    Storage {
        /// SQLite's words.
        reason: String,
    },
    /// The phone's storage is full: nothing was written (erasing and withdrawing still work);
    /// free space and retry.
    #[error("the phone's storage is full: nothing was saved; free some space (delete photos or apps) and try again. Withdrawing and deleting still work")]
    StorageFull,
    /// The file is an SQLite database of something else (its `application_id` is not Lotsa's):
    /// it is never adopted as a store.
    #[error("that file is not a Lotsa device store; choose another path")]
    NotAStore,
    /// The database was written by a newer version of the app.
    #[error(
        "the database has schema version {found}; this app reads up to {supported}: update the app"
    )]
    SchemaTooNew {
        /// Version found.
        found: u32,
        /// Newest this build reads.
        supported: u32,
    },
    /// The key vault or the encryption failed (a locked device is temporary: retry).
    #[error("encryption: {0}")]
    Crypto(#[from] CryptoError),
    /// No draft or outbox item has this id; `gone` says what became of it, as far as the audit
    /// log knows (finalized, expired, erased, or never there).
    #[error("{}", gone.text(what, Lang::En))]
    NotFound {
        /// `draft` or `handover`.
        what: &'static str,
        /// The id asked for.
        id: String,
        /// What became of it.
        gone: Gone,
    },
    /// A blob or key failed to open: the item is flagged `damaged` and kept for inspection.
    #[error("the {what} of {id} is damaged (it does not open); it has been flagged and kept")]
    Damaged {
        /// Which part.
        what: &'static str,
        /// The item's id.
        id: String,
    },
    /// Finalize without a consent record.
    #[error("no consent has been recorded for draft {id}")]
    ConsentMissing {
        /// The draft.
        id: String,
    },
    /// A consent record was refused.
    #[error("consent: {0}")]
    Consent(#[from] ConsentError),
    /// The draft cannot become a handover (a field, the verdict, the consent).
    #[error("{0}")]
    Referral(#[from] ReferralError),
    /// The bundle names no clinic key valid today.
    #[error("the program {program_id} has no clinic encryption key valid today; load a newer program bundle")]
    NoClinicKey {
        /// The program id.
        program_id: String,
    },
    /// The program bundle is refused (for instance issued too far in the future).
    #[error("{0}")]
    Bundle(#[from] crate::program::BundleError),
    /// An older bundle than one the store already accepted: a rollback to superseded scripts or
    /// clinic keys.
    #[error("the program bundle {bundle_id} is older than {newest}, which this phone already uses; load the current bundle")]
    BundleSuperseded {
        /// The bundle offered.
        bundle_id: String,
        /// The newest one accepted.
        newest: String,
    },
    /// Another bundle with the same issue time as the one accepted, but other content.
    #[error("the program bundle {bundle_id} has the same issue time as the bundle this phone uses but other content; ask the program administrator")]
    BundleConflict {
        /// The bundle offered.
        bundle_id: String,
    },
    /// The audit chain is broken at an entry.
    #[error("the audit log is broken at entry {seq}: it {reason}")]
    AuditBroken {
        /// The entry where it breaks.
        seq: i64,
        /// How.
        reason: String,
    },
    /// The operation does not fit the item's state (e.g. editing a finalized referral).
    #[error("{id} is {state}; {reason}")]
    WrongState {
        /// `draft` or `handover`: which kind of id the caller passed.
        what: &'static str,
        /// The item.
        id: String,
        /// Its state.
        state: &'static str,
        /// Why that matters.
        reason: &'static str,
    },
}

/// What became of an id that names no draft or outbox item now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// The store has never seen it.
    Never,
    /// The draft was finalized: it is a sealed handover now (under the same id).
    Finalized,
    /// The draft outlived its program's draft lifetime and was erased.
    Expired,
    /// The draft was deleted, refused, closed or withdrawn.
    Erased,
}

impl Gone {
    /// What the audit log says became of `id`.
    fn of(conn: &Connection, id: &str) -> Result<Gone, StoreError> {
        let kind: Option<String> = conn
            .query_row(
                "SELECT kind FROM audit WHERE subject = ?1 ORDER BY seq DESC LIMIT 1",
                [id],
                |r| r.get("kind"),
            )
            .optional()?;
        Ok(match kind.as_deref() {
            None => Gone::Never,
            Some("finalized") => Gone::Finalized,
            Some("draft_expired") => Gone::Expired,
            Some(_) => Gone::Erased,
        })
    }

    fn text(self, what: &str, lang: Lang) -> String {
        let handover = what == "handover";
        let (sv, en) = match (self, handover) {
            (Gone::Never, false) => (
                "Det finns inget utkast med det id:t.",
                "there is no draft with that id",
            ),
            (Gone::Never, true) => (
                "Det finns ingen remiss med det id:t.",
                "there is no referral with that id",
            ),
            (Gone::Finalized, _) => (
                "Utkastet är redan slutfört: det är en förseglad remiss nu.",
                "the draft is already finalized: it is a sealed referral now",
            ),
            (Gone::Expired, _) => (
                "Utkastet har gått ut och raderats (programmets tid för utkast passerade).",
                "the draft has expired and was erased (the program's draft lifetime passed)",
            ),
            (Gone::Erased, _) => (
                "Utkastet är raderat (borttaget, avböjt, stängt eller återkallat).",
                "the draft was erased (deleted, refused, closed or withdrawn)",
            ),
        };
        lang.pick(sv, en).to_string()
    }
}

impl Store {
    /// The error for an id that names nothing of `what` now, saying what became of it.
    pub(crate) fn not_found(&self, what: &'static str, id: &str) -> StoreError {
        not_found_in(&self.conn, what, id)
    }
}

/// [`Store::not_found`] inside a change.
pub(crate) fn not_found_in(conn: &Connection, what: &'static str, id: &str) -> StoreError {
    match Gone::of(conn, id) {
        Ok(gone) => StoreError::NotFound {
            what,
            id: id.to_string(),
            gone,
        },
        Err(e) => e,
    }
}

impl StoreError {
    /// The input the error is about, in the one vocabulary of field names every front end
    /// reports (`phone`, `identity_number`, `municipality`, `told_can_withdraw`, `draft_id`,
    /// `handover_id`, …), when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            StoreError::Referral(r) => r.field(),
            StoreError::Consent(c) => Some(c.field()),
            StoreError::ConsentMissing { .. } => Some("consent"),
            StoreError::NotFound { what, .. } | StoreError::WrongState { what, .. } => {
                Some(if *what == "draft" {
                    "draft_id"
                } else {
                    "handover_id"
                })
            }
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            return StoreError::StorageFull;
        }
        StoreError::Storage {
            reason: e.to_string(),
        }
    }
}

impl Reasoned for StoreError {
    fn code(&self) -> &'static str {
        match self {
            StoreError::Storage { .. } => "storage",
            StoreError::StorageFull => "storage_full",
            StoreError::NotAStore => "not_a_store",
            StoreError::SchemaTooNew { .. } => "schema_too_new",
            StoreError::Crypto(CryptoError::Vault(v)) if v.is_temporary() => "vault_unavailable",
            StoreError::Crypto(CryptoError::Vault(VaultError::KeyGone { .. })) => "vault_key_gone",
            StoreError::Crypto(CryptoError::Vault(_)) => "vault_failed",
            StoreError::Crypto(_) => "crypto",
            StoreError::NotFound { .. } => "not_found",
            StoreError::Damaged { .. } => "damaged",
            StoreError::ConsentMissing { .. } => "consent_missing",
            StoreError::Consent(e) => e.code(),
            StoreError::Referral(e) => e.code(),
            StoreError::NoClinicKey { .. } => "no_clinic_key",
            StoreError::AuditBroken { .. } => "audit_broken",
            StoreError::Bundle(e) => e.code(),
            StoreError::BundleSuperseded { .. } => "bundle_superseded",
            StoreError::BundleConflict { .. } => "bundle_conflict",
            StoreError::WrongState { .. } => "wrong_state",
        }
    }

    fn message(&self, lang: Lang) -> String {
        let sv = match self {
            StoreError::Consent(e) => return e.message(lang),
            StoreError::Referral(e) => return e.message(lang),
            StoreError::Bundle(e) => return e.message(lang),
            StoreError::BundleSuperseded { bundle_id, newest } => format!(
                "Programfilen {bundle_id} är äldre än {newest}, som telefonen redan använder; hämta den aktuella programfilen."
            ),
            StoreError::BundleConflict { bundle_id } => format!(
                "Programfilen {bundle_id} har samma utfärdandetid som den telefonen använder men annat innehåll; kontakta programadministratören."
            ),
            StoreError::Storage { .. } => {
                "Lagringen i telefonen misslyckades.".to_string()
            }
            StoreError::StorageFull => {
                "Telefonens minne är fullt: inget sparades; frigör utrymme (ta bort bilder eller appar) och försök igen. Återkalla och radera fungerar ändå.".into()
            }
            StoreError::NotAStore => {
                "Filen är ingen Lotsa-databas; välj en annan sökväg.".into()
            }
            StoreError::SchemaTooNew { .. } => {
                "Databasen är skapad av en nyare version av appen: uppdatera appen.".into()
            }
            StoreError::Crypto(CryptoError::Vault(v)) if v.is_temporary() => {
                "Nyckellagret är inte tillgängligt just nu: lås upp telefonen och försök igen.".into()
            }
            StoreError::Crypto(CryptoError::Vault(_)) => {
                "Telefonens nyckellager misslyckades.".into()
            }
            StoreError::Crypto(_) => "Krypteringen misslyckades.".into(),
            StoreError::NotFound { what, gone, .. } => gone.text(what, Lang::Sv),
            StoreError::Damaged { .. } => {
                "Uppgiften är skadad och går inte att öppna; den har flaggats och sparats.".into()
            }
            StoreError::ConsentMissing { .. } => "Inget samtycke är registrerat.".into(),
            StoreError::NoClinicKey { .. } => {
                "Programmet saknar en giltig krypteringsnyckel för mottagningen: hämta en nyare programfil.".into()
            }
            StoreError::AuditBroken { seq, .. } => {
                format!("Händelseloggen är bruten vid post {seq}.")
            }
            StoreError::WrongState { .. } => "Åtgärden passar inte remissens läge.".into(),
        };
        lang.pick(sv, self.to_string())
    }
}

/// The device store.
pub struct Store {
    conn: Connection,
    vault: Arc<dyn KeyVault>,
    clock: Arc<dyn Clock>,
    roots: HashMap<u32, RootKey>,
    erasure_pending: bool,
    reserve: files::Reserve,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the store at `path`: connection set-up, migrations, the current root
    /// key (created and wrapped by the vault on first use), then erases expired drafts.
    pub fn open(
        path: &Path,
        vault: Arc<dyn KeyVault>,
        clock: Arc<dyn Clock>,
    ) -> Result<Store, StoreError> {
        files::create_private(path)?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(schema::BUSY_TIMEOUT)?;
        // Several processes may open a brand-new file at once: switching it to WAL can report
        // "busy" without waiting, so the set-up is retried for as long as a busy write would wait.
        // The file is claimed (or refused as someone else's) before anything changes it.
        schema::retry_busy(|| schema::claim(&conn))?;
        files::make_private(path)?;
        schema::retry_busy(|| schema::configure(&conn))?;
        schema::retry_busy(|| schema::migrate(&mut conn))?;
        let reserve = files::Reserve::beside(path);
        reserve.make();
        let mut store = Store {
            conn,
            vault,
            clock,
            roots: HashMap::new(),
            erasure_pending: false,
            reserve,
        };
        store.purge_expired()?;
        // A crash between an erasing commit and its checkpoint leaves old pages in the WAL file.
        store.checkpoint();
        Ok(store)
    }

    /// Whether erased data may still sit in the WAL file because the last checkpoint could not
    /// complete (another connection was reading). The next erasing commit or open tries again.
    pub fn erasure_pending(&self) -> bool {
        self.erasure_pending
    }

    /// Moves every committed page from the WAL file into the database and truncates the WAL.
    /// Called after each commit that erases personal data (finalize, delete, withdraw, expiry):
    /// with `secure_delete` the freed database pages are zeroed, but until the checkpoint the WAL
    /// still holds the erased rows — including a draft's wrapped data key, which the root key
    /// could still open.
    ///
    /// A reader on another connection (a sync worker, say) can block it; then it waits a little,
    /// not the full busy timeout, leaves [`Store::erasure_pending`] set and returns `false`. It
    /// never turns the commit before it into an error.
    pub(crate) fn checkpoint(&mut self) -> bool {
        let short = std::time::Duration::from_millis(100);
        let done = self.conn.busy_timeout(short).is_ok()
            && matches!(
                self.conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r
                        .get::<_, i64>("busy")),
                Ok(0)
            );
        let _ = self.conn.busy_timeout(schema::BUSY_TIMEOUT);
        self.erasure_pending = !done;
        done
    }

    /// The underlying connection, for the crate's own tests and benches only (read-only uses:
    /// counting rows, flipping bytes to test tamper detection). Behind the `test-support`
    /// feature: an app never reaches past the store's API.
    #[cfg(any(test, feature = "test-support"))]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The one write path: runs `change` in an IMMEDIATE transaction, in which it appends its
    /// audit entry and bumps its counters through [`Change`]; commits; and, when the change
    /// erased personal data, checkpoints the WAL (see [`Store::checkpoint`]). An error from the
    /// change rolls everything back.
    pub(crate) fn write<T>(
        &mut self,
        change: impl FnOnce(&mut Change<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_inner(change)
    }

    /// The write path for a change that erases or withdraws: on a full disk it must still go
    /// through (a withdrawn consent must not stay deliverable), so when the disk is full the
    /// space reserve beside the database is released and the change tried again; the reserve
    /// is made again after (a stat when it is there).
    pub(crate) fn write_erasing<T>(
        &mut self,
        mut change: impl FnMut(&mut Change<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = match self.write_inner(&mut change) {
            Err(StoreError::StorageFull) => {
                self.reserve.release();
                self.write_inner(&mut change)
            }
            other => other,
        };
        self.reserve.make();
        result
    }

    fn write_inner<T>(
        &mut self,
        change: impl FnOnce(&mut Change<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let now = self.now();
        let day = self.today();
        let (out, erases) = {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut c = Change {
                tx,
                now,
                day,
                erases: false,
            };
            let out = change(&mut c)?;
            let erases = c.erases;
            c.tx.commit()?;
            (out, erases)
        };
        if erases {
            self.checkpoint();
        }
        Ok(out)
    }

    /// `PRAGMA integrity_check` is `ok`.
    pub fn integrity_ok(&self) -> Result<bool, StoreError> {
        let r: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get("integrity_check"))?;
        Ok(r == "ok")
    }

    /// Checks the audit chain.
    pub fn verify_audit(&self) -> Result<AuditReport, StoreError> {
        audit::verify(&self.conn)
    }

    /// All audit entries in order.
    pub fn audit_entries(&self) -> Result<Vec<audit::Entry>, StoreError> {
        audit::entries(&self.conn)
    }

    /// The store clock's now, in unix seconds (what the delivery engine schedules against).
    pub fn now_unix(&self) -> i64 {
        self.now()
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    fn today(&self) -> String {
        stockholm_date(self.clock.now())
            .format("%Y-%m-%d")
            .to_string()
    }

    /// The epoch new drafts are created in: the newest whose root key the vault has not reported
    /// gone (kept in the store, `root_keys`), or the next one when there is none yet.
    fn current_epoch(&self) -> Result<u32, StoreError> {
        let (newest_live, newest): (Option<u32>, Option<u32>) = self.conn.query_row(
            "SELECT max(CASE WHEN lost_day IS NULL THEN epoch END) AS live, max(epoch) AS any
             FROM root_keys",
            [],
            |r| Ok((r.get("live")?, r.get("any")?)),
        )?;
        Ok(newest_live.unwrap_or_else(|| newest.map_or(1, |n| n + 1)))
    }

    /// The root key new drafts are wrapped under. When the vault reports the current epoch's key
    /// gone, that epoch is given up (see [`Store::lose_epoch`]) and a new one is started, so new
    /// drafts work while the sealed outbox, which needs no device key, keeps sending.
    fn current_root(&mut self) -> Result<(u32, &RootKey), StoreError> {
        let mut epoch = self.current_epoch()?;
        match self.root(epoch) {
            Err(StoreError::Crypto(CryptoError::Vault(VaultError::KeyGone { .. }))) => {
                self.lose_epoch(epoch)?;
                epoch = self.current_epoch()?;
            }
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        let key = self.root(epoch)?;
        Ok((epoch, key))
    }

    /// The root key of an epoch: unwrapped from the vault once per open; for an epoch with no
    /// key yet (the current one), created, wrapped and stored on first use. Two processes doing
    /// this at once both end up with the one that was stored first.
    fn root(&mut self, epoch: u32) -> Result<&RootKey, StoreError> {
        if !self.roots.contains_key(&epoch) {
            let wrapped: Option<Vec<u8>> = self
                .conn
                .query_row(
                    "SELECT wrapped FROM root_keys WHERE epoch = ?1",
                    [epoch],
                    |r| r.get("wrapped"),
                )
                .optional()?;
            let key = match wrapped {
                Some(w) => RootKey::unwrap_with(self.vault.as_ref(), epoch, &w)?,
                None => {
                    let key = RootKey::generate(epoch)?;
                    let ours = key.wrap_with(self.vault.as_ref())?;
                    let stored: Vec<u8> = self.write(|c| {
                        c.execute(
                            "INSERT INTO root_keys (epoch, wrapped, created_day) VALUES (?1, ?2, ?3)
                             ON CONFLICT (epoch) DO NOTHING",
                            params![epoch, ours, c.day],
                        )?;
                        Ok(c.query_row(
                            "SELECT wrapped FROM root_keys WHERE epoch = ?1",
                            [epoch],
                            |r| r.get("wrapped"),
                        )?)
                    })?;
                    if stored == ours {
                        key
                    } else {
                        // Another process stored its key first: use that one.
                        RootKey::unwrap_with(self.vault.as_ref(), epoch, &stored)?
                    }
                }
            };
            self.roots.insert(epoch, key);
        }
        Ok(&self.roots[&epoch])
    }

    /// The vault says an epoch's root key is gone for good (app reinstalled, lock screen
    /// removed): the drafts under it can never be opened again. In one transaction: the epoch is
    /// marked lost (so the next draft starts a new one), its drafts are flagged damaged and kept
    /// until their normal expiry, and a one-time notice is queued for the app
    /// ([`Store::take_key_loss_notice`]). Only an explicit "gone" leads here, never a locked
    /// device or a passing failure.
    fn lose_epoch(&mut self, epoch: u32) -> Result<(), StoreError> {
        self.roots.remove(&epoch);
        self.write(|c| {
            let marked = c.execute(
                "UPDATE root_keys SET lost_day = ?1 WHERE epoch = ?2 AND lost_day IS NULL",
                params![c.day, epoch],
            )?;
            if marked == 0 {
                return Ok(()); // another process got there first
            }
            let drafts: Vec<(String, String)> = {
                let mut stmt = c.prepare(
                    "SELECT id, program_id FROM drafts WHERE key_epoch = ?1 AND damaged IS NULL",
                )?;
                let rows = stmt.query_map([epoch], |r| Ok((r.get("id")?, r.get("program_id")?)))?;
                rows.collect::<Result<_, _>>()?
            };
            for (id, program_id) in &drafts {
                c.execute(
                    "UPDATE drafts SET damaged = 'root_key_gone' WHERE id = ?1",
                    [id],
                )?;
                c.audit(Event::Damaged, Some(id), Some(program_id))?;
            }
            c.execute(
                "INSERT INTO key_loss (epoch, day, drafts_lost) VALUES (?1, ?2, ?3)",
                params![epoch, c.day, drafts.len() as i64],
            )?;
            Ok(())
        })
    }

    /// The notice an app shows once after the phone's key store lost the store's key: how many
    /// unfinished referrals (drafts) were lost. `None` when there is nothing to tell; each loss
    /// is told once.
    pub fn take_key_loss_notice(&mut self) -> Result<Option<KeyLossNotice>, StoreError> {
        self.write(|c| {
            let pending: Option<(i64, String, i64)> = c
                .query_row(
                    "SELECT sum(drafts_lost) AS lost, min(day) AS day, count(*) AS n
                     FROM key_loss WHERE shown = 0 HAVING n > 0",
                    [],
                    |r| Ok((r.get("lost")?, r.get("day")?, r.get("n")?)),
                )
                .optional()?;
            c.execute("UPDATE key_loss SET shown = 1 WHERE shown = 0", [])?;
            Ok(pending.map(|(lost, day, _)| KeyLossNotice {
                drafts_lost: u32::try_from(lost).unwrap_or(u32::MAX),
                day,
            }))
        })
    }
}

/// Told once after the phone's key store lost the store's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLossNotice {
    /// How many unfinished referrals (drafts) could no longer be opened.
    pub drafts_lost: u32,
    /// The Stockholm date of the (first) loss.
    pub day: String,
}

impl KeyLossNotice {
    /// What the app tells the officer.
    pub fn message(&self, lang: Lang) -> String {
        let n = self.drafts_lost;
        match (lang, n) {
            (Lang::Sv, 1) => "1 ofärdig remiss gick förlorad när telefonens nyckellager återställdes. Skickade remisser påverkas inte.".into(),
            (Lang::Sv, _) => format!("{n} ofärdiga remisser gick förlorade när telefonens nyckellager återställdes. Skickade remisser påverkas inte."),
            (Lang::En, 1) => "1 unfinished referral was lost when the phone's key store was reset. Referrals already sealed are not affected.".into(),
            (Lang::En, _) => format!("{n} unfinished referrals were lost when the phone's key store was reset. Referrals already sealed are not affected."),
        }
    }
}

/// One state change in progress (see [`Store::write`]): the transaction, the time it happens at,
/// and whether it erased personal data. Its audit entry and counters commit with it or not at
/// all.
pub(crate) struct Change<'c> {
    tx: Transaction<'c>,
    now: i64,
    day: String,
    erases: bool,
}

impl Change<'_> {
    /// Unix seconds of this change.
    pub(crate) fn now(&self) -> i64 {
        self.now
    }

    /// Appends the change's audit entry.
    pub(crate) fn audit(
        &self,
        event: Event,
        subject: Option<&str>,
        program_id: Option<&str>,
    ) -> Result<(), StoreError> {
        audit::append(&self.tx, self.now, event, subject, program_id)
    }

    /// Adds one to an anonymous counter of today's.
    pub(crate) fn count(&self, program_id: &str, counter: &Counter) -> Result<(), StoreError> {
        stats::bump(&self.tx, &self.day, program_id, counter)
    }

    /// Marks the change as erasing personal data: the WAL is checkpointed after the commit.
    pub(crate) fn erases(&mut self) {
        self.erases = true;
    }
}

impl<'c> std::ops::Deref for Change<'c> {
    type Target = Transaction<'c>;
    fn deref(&self) -> &Transaction<'c> {
        &self.tx
    }
}

/// The format version of a draft's blobs, bound into their AAD. It is not the store's schema
/// version: a migration that adds a column must not make every stored draft unreadable. It
/// changes only when the blobs' contents change shape (and then old blobs are read with the old
/// version and rewritten).
const DRAFT_BLOB_VERSION: u32 = 1;

/// The AAD of a draft's blob column.
fn draft_aad<'a>(column: &'a str, id: &'a str) -> FieldAad<'a> {
    FieldAad {
        table: "drafts",
        column,
        record_id: id,
        schema_version: DRAFT_BLOB_VERSION,
    }
}

#[cfg(test)]
pub(crate) mod tests;
