//! The store's SQLite schema and its migrations.
//!
//! The schema version lives in `PRAGMA user_version`. Each migration runs in one immediate
//! transaction together with the version bump, so a crash leaves the old schema or the new one.
//! Clear columns hold only ids, states, coarse times, program ids and reason codes; everything
//! personal is in encrypted blobs (drafts) or HPKE-sealed bytes the device cannot open (outbox).
//! Primary keys are UUIDs. `drafts` and `outbox` are ordinary (rowid) tables because their rows
//! hold kilobyte blobs, which would spill into overflow pages in a `WITHOUT ROWID` b-tree (2.3×
//! the size, measured); the small tables are `WITHOUT ROWID`.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 5;

/// How long a write waits for another connection's lock before it gives up.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Migration `i` takes the database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5];

const V1: &str = "
CREATE TABLE root_keys (
    epoch        INTEGER PRIMARY KEY NOT NULL,
    wrapped      BLOB NOT NULL,             -- the epoch's root key, wrapped by the platform KeyVault
    created_day  TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE drafts (
    id           TEXT PRIMARY KEY NOT NULL, -- UUID; becomes the handover id
    program_id   TEXT NOT NULL,
    created_day  TEXT NOT NULL,             -- Stockholm date only
    expires_at   INTEGER NOT NULL,          -- unix seconds: erased after this
    key_epoch    INTEGER NOT NULL REFERENCES root_keys(epoch),
    wrapped_key  BLOB NOT NULL,             -- the draft's data key under the epoch's root key
    body         BLOB NOT NULL,             -- the draft (contact details, number, residence), sealed
    consent      BLOB,                      -- the consent record, sealed
    damaged      TEXT                       -- reason code once a blob or key failed to open
);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY NOT NULL, -- handover id (referral) or a new UUID (withdrawal)
    kind            TEXT NOT NULL CHECK (kind IN ('referral', 'withdrawal')),
    program_id      TEXT NOT NULL,
    refers_to       TEXT,                      -- withdrawal: the referral it withdraws
    consent_id      TEXT,                      -- referral: its consent record's id
    clinic_key_id   TEXT,                      -- referral: the clinic key it is sealed to
    payload         BLOB,                      -- sealed referral / withdrawal message; NULL once erased
    payload_sha256  TEXT,
    state           TEXT NOT NULL CHECK (state IN
                      ('pending', 'sending', 'delivered', 'failed', 'withdrawn', 'cancelled', 'damaged')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,          -- unix seconds
    lease_until     INTEGER,
    lease_owner     TEXT,
    last_error_code TEXT,
    last_error_text TEXT,
    queued_at       INTEGER NOT NULL,          -- unix seconds, rounded down to the minute
    created_day     TEXT NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

CREATE TABLE receipts (
    handover_id  TEXT PRIMARY KEY NOT NULL,
    receipt      BLOB NOT NULL,
    received_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY NOT NULL,
    id          TEXT NOT NULL UNIQUE,           -- UUID of the entry
    at          INTEGER NOT NULL,               -- unix seconds, rounded down to the minute
    kind        TEXT NOT NULL,
    subject     TEXT,                           -- a draft, handover or withdrawal id
    program_id  TEXT,
    prev_hash   BLOB NOT NULL,
    hash        BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE stats (
    day         TEXT NOT NULL,
    program_id  TEXT NOT NULL,
    counter     TEXT NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (day, program_id, counter)
) WITHOUT ROWID;
";

/// Version 2: the newest program bundle the store has accepted, so an older one (a rollback to a
/// superseded script or a leaked clinic key) is refused.
const V2: &str = "
CREATE TABLE bundle_floor (
    id              INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    issued_at       INTEGER NOT NULL,        -- unix seconds: the newest accepted bundle's issue time
    payload_sha256  TEXT NOT NULL,           -- its signed bytes' SHA-256 (equal time, other content: refused)
    bundle_id       TEXT NOT NULL
) WITHOUT ROWID;
";

/// Version 3: a root key the platform reported gone is marked lost (the current epoch is then the
/// newest live one, kept in the store), and each loss waits in `key_loss` to be told once.
const V3: &str = "
ALTER TABLE root_keys ADD COLUMN lost_day TEXT;   -- Stockholm date the vault said the key is gone
CREATE TABLE key_loss (
    epoch        INTEGER PRIMARY KEY NOT NULL,
    day          TEXT NOT NULL,
    drafts_lost  INTEGER NOT NULL,
    shown        INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
";

/// Version 4: delivery. The device's request-signing key (Ed25519, wrapped by the platform KeyVault
/// under its own alias; a new generation after the vault lost it), one enrolment per clinic
/// endpoint, whether an item's last failure was the network (a `ConnectivityRestored` sync
/// retries those at once), and the audit head an item is sent with (fixed at its first attempt,
/// so the original receipt of a repeat attests exactly what was sent).
const V4: &str = "
CREATE TABLE device_key (
    id           INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    generation   INTEGER NOT NULL,
    wrapped      BLOB NOT NULL,
    device_id    TEXT NOT NULL,
    created_day  TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE enrolments (
    endpoint     TEXT PRIMARY KEY NOT NULL,
    device_id    TEXT NOT NULL,           -- the key it enrolled (an older key's enrolment is void)
    enrolled_at  INTEGER NOT NULL
) WITHOUT ROWID;
ALTER TABLE outbox ADD COLUMN failure_kind TEXT;  -- 'network' or 'clinic', for the last failed attempt
ALTER TABLE outbox ADD COLUMN head_seq INTEGER;   -- the audit head sent with every attempt of the
ALTER TABLE outbox ADD COLUMN head_hash BLOB;     -- item: the one at its first attempt
";

/// The queue in order, only the items that still hold a payload: a sync leases the next batch by
/// walking it from where the last batch ended, rather than sorting every due item each time.
const V5: &str = "
CREATE INDEX outbox_queue ON outbox (queued_at, id) WHERE payload IS NOT NULL;
";

/// Sets the connection up as the design document (`docs/DESIGN.md`) decides: WAL, full sync (a consent must survive a dead
/// battery), secure delete, foreign keys, and a busy timeout for a second connection.
pub(crate) fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get("journal_mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Storage {
            reason: format!("the database refused WAL mode ({mode})"),
        });
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA secure_delete = ON;
         PRAGMA foreign_keys = ON;",
    )?;
    Ok(())
}

/// Runs `step` again while SQLite answers "busy" or "locked" without having waited (as switching a
/// brand-new file to WAL can), for at most [`BUSY_TIMEOUT`].
pub(crate) fn retry_busy<T>(
    mut step: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let started = std::time::Instant::now();
    loop {
        match step() {
            Err(StoreError::Storage { reason })
                if (reason.contains("database is locked")
                    || reason.contains("database table is locked")
                    || reason.contains("busy"))
                    && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// `PRAGMA application_id` of a Lotsa device store ("LOTS").
pub const APPLICATION_ID: i32 = 0x4C4F_5453;

/// Makes sure the file is a Lotsa store before anything is written to it: a new, empty database
/// is claimed (its `application_id` set); one that is already Lotsa's is fine; a store made
/// before the id was set (version 1 or 2, with its tables) is claimed; anything else is refused
/// with [`StoreError::NotAStore`], never adopted.
///
/// The look and the claim are one IMMEDIATE transaction: a process opening a brand-new file
/// while another is claiming and migrating it sees either the empty file or the claimed one,
/// never the first migrations of an unclaimed one (which it would refuse as someone else's).
pub(crate) fn claim(conn: &Connection) -> Result<(), StoreError> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let id: i32 = tx.query_row("PRAGMA application_id", [], |r| r.get("application_id"))?;
    if id == APPLICATION_ID {
        return Ok(());
    }
    if id != 0 {
        return Err(StoreError::NotAStore);
    }
    let tables: Vec<String> = {
        let mut stmt = tx.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
        let rows = stmt.query_map([], |r| r.get("name"))?;
        rows.collect::<Result<_, _>>()?
    };
    let ours = ["root_keys", "drafts", "outbox", "audit", "stats"];
    let empty = tables.is_empty() && version(&tx)? == 0;
    let older_lotsa = ours.iter().all(|t| tables.iter().any(|n| n == t));
    if !empty && !older_lotsa {
        return Err(StoreError::NotAStore);
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.commit()?;
    Ok(())
}

/// The schema version of an open database.
pub fn version(conn: &Connection) -> Result<u32, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get("user_version"))?)
}

/// Brings the database to [`SCHEMA_VERSION`], one migration per transaction. Refuses a database
/// written by a newer build rather than guess at its meaning.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    loop {
        // The version is read inside the migration's own IMMEDIATE transaction: several
        // processes opening a brand-new database at once take turns, and each sees the version
        // the one before it left.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get("user_version"))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let Some(sql) = MIGRATIONS.get(found as usize) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", found + 1)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn every_earlier_version_migrates_to_the_current_one() {
        for start in 0..SCHEMA_VERSION {
            let mut conn = Connection::open_in_memory().unwrap();
            for sql in &MIGRATIONS[..start as usize] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", start).unwrap();
            migrate(&mut conn).unwrap();
            assert_eq!(version(&conn).unwrap(), SCHEMA_VERSION, "from {start}");
            assert_eq!(
                tables(&conn),
                [
                    "audit",
                    "bundle_floor",
                    "device_key",
                    "drafts",
                    "enrolments",
                    "key_loss",
                    "outbox",
                    "receipts",
                    "root_keys",
                    "stats"
                ]
            );
            let indexes: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'outbox_queue'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(indexes, 1, "from {start}");
            // Migrating again is a no-op.
            migrate(&mut conn).unwrap();
        }
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(StoreError::SchemaTooNew { found, .. }) if found == SCHEMA_VERSION + 1
        ));
    }

    #[test]
    fn a_failing_migration_leaves_the_old_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        // A table in the way makes V1 fail half-way; nothing of it may stay.
        conn.execute_batch("CREATE TABLE stats (x)").unwrap();
        assert!(migrate(&mut conn).is_err());
        assert_eq!(version(&conn).unwrap(), 0);
        assert_eq!(tables(&conn), ["stats"]);
    }
}
