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
mod drafts;
mod outbox;
pub mod schema;
mod stats;

pub use audit::{AuditReport, Event};
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

use crate::crypto::vault::KeyVault;

/// Why a store operation failed. Nothing in it is personal: ids are random UUIDs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (disk full, file locked, corrupt file).
    #[error("storage failed: {reason}")]
    Storage {
        /// SQLite's words.
        reason: String,
    },
    /// The phone's storage is full: nothing was written; free space and retry.
    #[error("the phone's storage is full: free some space and try again")]
    DiskFull,
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
    /// No draft or outbox item has this id (it may have expired, been finalized or withdrawn).
    #[error("no {what} with id {id}")]
    NotFound {
        /// `draft` or `handover`.
        what: &'static str,
        /// The id asked for.
        id: String,
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
            return StoreError::DiskFull;
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
            StoreError::DiskFull => "disk_full",
            StoreError::SchemaTooNew { .. } => "schema_too_new",
            StoreError::Crypto(CryptoError::Vault(v)) if v.is_temporary() => "vault_unavailable",
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
            StoreError::DiskFull => {
                "Telefonens minne är fullt: frigör utrymme och försök igen.".into()
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
            StoreError::NotFound { .. } => {
                "Uppgiften finns inte (den kan ha gått ut, skickats eller återkallats).".into()
            }
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

/// The epoch new drafts are created in. (Starting a new epoch after a lost vault key is a later
/// feature; reading works for any epoch.)
const CURRENT_EPOCH: u32 = 1;

/// The device store.
pub struct Store {
    conn: Connection,
    vault: Arc<dyn KeyVault>,
    clock: Arc<dyn Clock>,
    roots: HashMap<u32, RootKey>,
    erasure_pending: bool,
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
        let mut conn = Connection::open(path)?;
        schema::configure(&conn)?;
        schema::migrate(&mut conn)?;
        let mut store = Store {
            conn,
            vault,
            clock,
            roots: HashMap::new(),
            erasure_pending: false,
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

    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    fn today(&self) -> String {
        stockholm_date(self.clock.now())
            .format("%Y-%m-%d")
            .to_string()
    }

    /// The root key of an epoch: unwrapped from the vault once per open; for the current epoch,
    /// created on first use.
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
                None if epoch == CURRENT_EPOCH => {
                    let key = RootKey::generate(epoch)?;
                    let w = key.wrap_with(self.vault.as_ref())?;
                    self.write(|c| {
                        c.execute(
                            "INSERT INTO root_keys (epoch, wrapped, created_day) VALUES (?1, ?2, ?3)",
                            params![epoch, w, c.day],
                        )?;
                        Ok(())
                    })?;
                    key
                }
                None => {
                    return Err(StoreError::Crypto(CryptoError::Malformed {
                        what: "root key",
                        reason: format!("no root key for epoch {epoch}"),
                    }))
                }
            };
            self.roots.insert(epoch, key);
        }
        Ok(&self.roots[&epoch])
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
