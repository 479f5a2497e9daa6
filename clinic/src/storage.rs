//! What the clinic keeps, behind one narrow interface: enrolled devices and their one-time codes,
//! the sealed bytes of each referral with the receipt sent for it, tombstones of withdrawn
//! handovers, withdrawal confirmations, and the nonces of the replay window. Nothing opened from a
//! payload is stored: at rest there is only ciphertext, ids, program ids and times.
//!
//! Embedded SQLite (WAL, `synchronous=FULL`: a 201 is only sent for what survives a power cut).
//! The schema version is in `PRAGMA user_version`; each migration runs in one transaction.

use lotsa_core::crypto::PublicKey;
use lotsa_core::protocol::signature::DeviceKey;
use lotsa_core::protocol::NONCE_WINDOW_SECS;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;

/// What can go wrong with the database.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// SQLite failed (disk, lock, corruption).
    #[error("the clinic database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file was written by a newer version of the service.
    #[error("the clinic database has schema version {0}, newer than this service reads")]
    TooNew(i64),
}

const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE devices (
    device_id   TEXT PRIMARY KEY NOT NULL,
    public_key  BLOB NOT NULL,
    code_hash   BLOB NOT NULL,
    enrolled_at INTEGER NOT NULL,
    revoked_at  INTEGER
) WITHOUT ROWID;
CREATE TABLE enrolment_codes (
    code_hash  BLOB PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL,
    used_by    TEXT
) WITHOUT ROWID;
CREATE TABLE handovers (
    handover_id            TEXT PRIMARY KEY NOT NULL,
    device_id              TEXT NOT NULL,
    program_id             TEXT NOT NULL,
    clinic_key_id          TEXT NOT NULL,
    payload_schema_version INTEGER NOT NULL,
    sealed                 BLOB NOT NULL,
    receipt                BLOB NOT NULL,
    received_at            INTEGER NOT NULL
);
CREATE TABLE tombstones (
    handover_id TEXT PRIMARY KEY NOT NULL,
    device_id   TEXT NOT NULL,
    at          INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE withdrawals (
    withdrawal_id TEXT PRIMARY KEY NOT NULL,
    message       BLOB NOT NULL,
    confirmation  BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE nonces (
    device_id TEXT NOT NULL,
    nonce     TEXT NOT NULL,
    seen_at   INTEGER NOT NULL,
    PRIMARY KEY (device_id, nonce)
) WITHOUT ROWID;
CREATE INDEX nonces_seen ON nonces (seen_at);
"#];

/// A stored referral, as the intake needs it to answer a repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHandover {
    /// The device that delivered it.
    pub device_id: String,
    /// The program.
    pub program_id: String,
    /// The HPKE key it is sealed to.
    pub clinic_key_id: String,
    /// The payload schema version.
    pub payload_schema_version: u32,
    /// The sealed bytes.
    pub sealed: Vec<u8>,
    /// The receipt bytes sent for it (sent again, byte for byte, for a repeat).
    pub receipt: Vec<u8>,
}

/// A withdrawal received before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenWithdrawal {
    /// The message as re-serialized from what was parsed (a repeat compares equal).
    pub message: Vec<u8>,
    /// The confirmation sent (sent again, byte for byte, for a repeat).
    pub confirmation: Vec<u8>,
}

/// What an enrolment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enrolled {
    /// The key is enrolled now, at this instant (unix seconds).
    New(i64),
    /// The same key with the same code again: enrolled before, at this instant.
    Repeat(i64),
    /// The code is unknown, expired, or was used by another key.
    CodeRefused,
}

/// The clinic's database.
pub struct Storage {
    conn: Connection,
}

impl Storage {
    /// Opens (or creates) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Storage, StorageError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > MIGRATIONS.len() as i64 {
            return Err(StorageError::TooNew(version));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(Storage { conn })
    }

    /// Records a one-time enrolment code (by its hash) valid until `expires_at`.
    pub fn add_enrolment_code(
        &self,
        code_hash: &[u8; 32],
        expires_at: i64,
    ) -> Result<(), StorageError> {
        self.conn.execute(
            "INSERT INTO enrolment_codes (code_hash, expires_at) VALUES (?1, ?2)",
            params![code_hash.as_slice(), expires_at],
        )?;
        Ok(())
    }

    /// Enrols a key with a code, once: the same key and code again is a repeat, anything else
    /// with a used, unknown or expired code is refused.
    pub fn enrol(
        &mut self,
        code_hash: &[u8; 32],
        device_id: &str,
        key: &PublicKey,
        now: i64,
    ) -> Result<Enrolled, StorageError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let code: Option<(i64, Option<String>)> = tx
            .query_row(
                "SELECT expires_at, used_by FROM enrolment_codes WHERE code_hash = ?1",
                [code_hash.as_slice()],
                |r| Ok((r.get("expires_at")?, r.get("used_by")?)),
            )
            .optional()?;
        let answer = match code {
            Some((_, Some(used_by))) if used_by == device_id => {
                let at: i64 = tx.query_row(
                    "SELECT enrolled_at FROM devices WHERE device_id = ?1",
                    [device_id],
                    |r| r.get("enrolled_at"),
                )?;
                Enrolled::Repeat(at)
            }
            Some((expires_at, None)) if now <= expires_at => {
                let taken: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM devices WHERE device_id = ?1) AS taken",
                    [device_id],
                    |r| r.get("taken"),
                )?;
                if taken {
                    Enrolled::CodeRefused
                } else {
                    tx.execute(
                        "INSERT INTO devices (device_id, public_key, code_hash, enrolled_at)
                         VALUES (?1, ?2, ?3, ?4)",
                        params![device_id, key.0.as_slice(), code_hash.as_slice(), now],
                    )?;
                    tx.execute(
                        "UPDATE enrolment_codes SET used_by = ?1 WHERE code_hash = ?2",
                        params![device_id, code_hash.as_slice()],
                    )?;
                    Enrolled::New(now)
                }
            }
            _ => Enrolled::CodeRefused,
        };
        tx.commit()?;
        Ok(answer)
    }

    /// A device's key as the signature check needs it.
    pub fn device_key(&self, device_id: &str) -> Result<DeviceKey, StorageError> {
        let row: Option<(Vec<u8>, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT public_key, revoked_at FROM devices WHERE device_id = ?1",
                [device_id],
                |r| Ok((r.get("public_key")?, r.get("revoked_at")?)),
            )
            .optional()?;
        Ok(match row {
            None => DeviceKey::Unknown,
            Some((_, Some(_))) => DeviceKey::Revoked,
            Some((key, None)) => match <[u8; 32]>::try_from(key.as_slice()) {
                Ok(k) => DeviceKey::Active(PublicKey(k)),
                Err(_) => DeviceKey::Unknown,
            },
        })
    }

    /// Revokes a device at once; false if it was not enrolled (or already revoked).
    pub fn revoke(&self, device_id: &str, now: i64) -> Result<bool, StorageError> {
        let n = self.conn.execute(
            "UPDATE devices SET revoked_at = ?2 WHERE device_id = ?1 AND revoked_at IS NULL",
            params![device_id, now],
        )?;
        Ok(n == 1)
    }

    /// Remembers a nonce for the replay window; false if this device used it within the window.
    /// Nonces older than the window are forgotten on the way.
    pub fn fresh_nonce(
        &self,
        device_id: &str,
        nonce: &str,
        now: i64,
    ) -> Result<bool, StorageError> {
        self.conn.execute(
            "DELETE FROM nonces WHERE seen_at < ?1",
            [now - NONCE_WINDOW_SECS],
        )?;
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO nonces (device_id, nonce, seen_at) VALUES (?1, ?2, ?3)",
            params![device_id, nonce, now],
        )?;
        Ok(n == 1)
    }

    /// A stored referral.
    pub fn handover(&self, handover_id: &str) -> Result<Option<StoredHandover>, StorageError> {
        Ok(self
            .conn
            .query_row(
                "SELECT device_id, program_id, clinic_key_id, payload_schema_version, sealed, receipt
                 FROM handovers WHERE handover_id = ?1",
                [handover_id],
                |r| {
                    Ok(StoredHandover {
                        device_id: r.get("device_id")?,
                        program_id: r.get("program_id")?,
                        clinic_key_id: r.get("clinic_key_id")?,
                        payload_schema_version: r.get("payload_schema_version")?,
                        sealed: r.get("sealed")?,
                        receipt: r.get("receipt")?,
                    })
                },
            )
            .optional()?)
    }

    /// The device a withdrawn handover's tombstone names, if there is one.
    pub fn tombstone(&self, handover_id: &str) -> Result<Option<String>, StorageError> {
        Ok(self
            .conn
            .query_row(
                "SELECT device_id FROM tombstones WHERE handover_id = ?1",
                [handover_id],
                |r| r.get("device_id"),
            )
            .optional()?)
    }

    /// Stores a referral with its receipt, durably, in one transaction.
    pub fn store_handover(
        &self,
        handover_id: &str,
        stored: &StoredHandover,
        received_at: i64,
    ) -> Result<(), StorageError> {
        self.conn.execute(
            "INSERT INTO handovers (handover_id, device_id, program_id, clinic_key_id,
                                    payload_schema_version, sealed, receipt, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                handover_id,
                stored.device_id,
                stored.program_id,
                stored.clinic_key_id,
                stored.payload_schema_version,
                stored.sealed,
                stored.receipt,
                received_at
            ],
        )?;
        Ok(())
    }

    /// A withdrawal received before.
    pub fn withdrawal(&self, withdrawal_id: &str) -> Result<Option<SeenWithdrawal>, StorageError> {
        Ok(self
            .conn
            .query_row(
                "SELECT message, confirmation FROM withdrawals WHERE withdrawal_id = ?1",
                [withdrawal_id],
                |r| {
                    Ok(SeenWithdrawal {
                        message: r.get("message")?,
                        confirmation: r.get("confirmation")?,
                    })
                },
            )
            .optional()?)
    }

    /// Erases a referral (if held), leaves its tombstone and records the confirmation, in one
    /// transaction; true if a referral was erased.
    pub fn withdraw(
        &mut self,
        withdrawal_id: &str,
        handover_id: &str,
        device_id: &str,
        message: &[u8],
        confirmation: &[u8],
        now: i64,
    ) -> Result<bool, StorageError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let erased = tx.execute(
            "DELETE FROM handovers WHERE handover_id = ?1",
            [handover_id],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO tombstones (handover_id, device_id, at) VALUES (?1, ?2, ?3)",
            params![handover_id, device_id, now],
        )?;
        tx.execute(
            "INSERT INTO withdrawals (withdrawal_id, message, confirmation) VALUES (?1, ?2, ?3)",
            params![withdrawal_id, message, confirmation],
        )?;
        tx.commit()?;
        Ok(erased == 1)
    }

    /// How many referrals are held (for tests and the administrator).
    pub fn handover_count(&self) -> Result<i64, StorageError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) AS n FROM handovers", [], |r| r.get("n"))?)
    }
}
