//! What the clinic keeps, behind one narrow interface: enrolled devices and their one-time codes,
//! the sealed bytes of each referral with the receipt sent for it, tombstones of withdrawn
//! handovers, withdrawal confirmations, and the nonces of the replay window. Nothing opened from a
//! payload is stored: at rest there is only ciphertext, ids, program ids and times.
//!
//! Embedded SQLite (WAL, `synchronous=FULL`: a 201 is only sent for what survives a power cut).
//! The schema version is in `PRAGMA user_version`; each migration runs in one transaction.
//!
//! **One write path, with group commit.** Every change goes through [`Storage::write`]: one
//! writer thread owns the only writing connection, takes every write that is waiting, runs each
//! in its own savepoint inside one transaction and commits them together. A caller returns only
//! after the commit (fsync) that holds its write, so durability costs one fsync per batch, not
//! per referral. Reads use a second connection and see what is committed.

use lotsa_core::crypto::PublicKey;
use lotsa_core::protocol::signature::DeviceKey;
use lotsa_core::protocol::NONCE_WINDOW_SECS;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;

/// What can go wrong with the database.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// SQLite failed (disk, lock, corruption).
    #[error("the clinic database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file was written by a newer version of the service.
    #[error("the clinic database has schema version {0}, newer than this service reads")]
    TooNew(i64),
    /// The batch a write was part of did not commit, or the writer has stopped.
    #[error("the clinic database did not commit: {0}")]
    NotCommitted(String),
}

/// The schema version this service writes (the number of migrations).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Most writes in one commit (a bound on one transaction's size, never reached at 2 cores).
const MAX_BATCH: usize = 512;

/// Migration `i` brings the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    r#"
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
"#,
    r#"
-- v2: the queue health a device reports (counts by state, oldest waiting age; JSON as received
-- and checked) and when it last reported.
ALTER TABLE devices ADD COLUMN last_seen_at INTEGER;
ALTER TABLE devices ADD COLUMN backlog TEXT;
"#,
    r#"
-- v3: staff accounts (the password as an argon2id PHC string only).
CREATE TABLE staff (
    name          TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    must_change   INTEGER NOT NULL,   -- 1 until the initial password is replaced
    created_at    INTEGER NOT NULL,
    last_login_at INTEGER,
    disabled_at   INTEGER
) WITHOUT ROWID;
"#,
    r#"
-- v4: the worklist. Who is about to phone whom (claims, which expire); every attempt with its
-- outcome and reason; the first contact once settled; the access log (staff, referral, time and
-- a keyed hash of the phone number, never the number). No column holds clear personal data.
CREATE TABLE claims (
    handover_id TEXT PRIMARY KEY NOT NULL,
    staff       TEXT NOT NULL,
    until       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE attempts (
    handover_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    staff       TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    PRIMARY KEY (handover_id, seq)
) WITHOUT ROWID;
CREATE TABLE first_contacts (
    handover_id TEXT PRIMARY KEY NOT NULL,
    outcome     TEXT NOT NULL,
    at          INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE access_log (
    seq         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    staff       TEXT NOT NULL,
    handover_id TEXT,
    action      TEXT NOT NULL,
    phone_hmac  BLOB
);
CREATE INDEX access_log_handover ON access_log (handover_id);
CREATE INDEX access_log_phone ON access_log (phone_hmac);
CREATE INDEX access_log_staff ON access_log (staff, at);
"#,
    r#"
-- v5: what is kept after a referral is erased: anonymous outcome counters per program and ISO
-- week (contacted_in_time, contacted_late, never_reached, declined, called_first, withdrawn).
CREATE TABLE outcomes (
    program_id TEXT NOT NULL,
    week       TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (program_id, week, outcome)
) WITHOUT ROWID;
"#,
    r#"
-- v6: the FHIR export. A tombstone says which program its referral was in and why it went
-- ('withdrawn' or 'retention'; NULL for one made before v6), so that a withdrawal can still be
-- exported to a care record system (Consent inactive, no personal data). The systems allowed
-- to fetch exports, each by the SHA-256 of its API token (the token itself is shown once),
-- with the programs it may fetch (their ids, space-separated; NULL for every program that
-- allows the export).
ALTER TABLE tombstones ADD COLUMN program_id TEXT;
ALTER TABLE tombstones ADD COLUMN reason TEXT;
CREATE TABLE api_clients (
    name       TEXT PRIMARY KEY NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    programs   TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) WITHOUT ROWID;
-- Every program bundle the service was started with, so that an export at the console can
-- refuse a bundle older than the one served.
CREATE TABLE served_bundles (
    bundle_id  TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    served_at  INTEGER NOT NULL,
    PRIMARY KEY (bundle_id, issued_at)
) WITHOUT ROWID;
"#,
];

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

/// One device as the administrator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The device id (the key id of its public key).
    pub device_id: String,
    /// When it enrolled (unix seconds).
    pub enrolled_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// Referrals it delivered that are held now.
    pub held: i64,
    /// When it last reported its queue (unix seconds).
    pub last_seen_at: Option<i64>,
    /// Its queue as it last reported it (the `lotsa.device-status/1` body).
    pub backlog: Option<String>,
}

/// One staff account, as the administrator lists it (never its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    /// The login name.
    pub name: String,
    /// When it was added (unix seconds).
    pub created_at: i64,
    /// When it last logged in, if ever.
    pub last_login_at: Option<i64>,
    /// When it was disabled, if it was.
    pub disabled_at: Option<i64>,
    /// Whether the initial password is still to be replaced.
    pub must_change_password: bool,
}

/// A referral still waiting for its first call, as stored (sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// The handover id.
    pub handover_id: String,
    /// The stored referral.
    pub held: StoredHandover,
    /// When it arrived (unix seconds).
    pub received_at: i64,
    /// Who holds a claim on it, until when (the claim may have run out).
    pub claim: Option<(String, i64)>,
    /// Attempts so far, oldest first.
    pub attempts: Vec<Attempt>,
}

/// One call attempt or action on a referral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// When (unix seconds).
    pub at: i64,
    /// Who.
    pub staff: String,
    /// The action's code (`contacted`, `not_reached`, …).
    pub outcome: String,
    /// Its reason code.
    pub reason: String,
}

/// How an attempt settles the first contact: the outcome kept with it, and the anonymous
/// counter it adds to (`contacted_in_time`, `contacted_late`, `never_reached`, `declined`,
/// `called_first`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settles {
    /// The first contact's outcome.
    pub outcome: &'static str,
    /// The outcome counter.
    pub counter: &'static str,
}

/// One outcome counter: how many referrals of a program ended one way in one ISO week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeCount {
    /// The program.
    pub program_id: String,
    /// The ISO week (`2026-W49`, Stockholm time).
    pub week: String,
    /// The counter.
    pub outcome: String,
    /// How many.
    pub count: i64,
}

/// What a retention run erased.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Referrals whose retention ran out after their first contact.
    pub referrals: usize,
    /// Tombstones past their period.
    pub tombstones: usize,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// This staff member holds it now, until then.
    Yours(i64),
    /// Someone else holds an unexpired claim.
    Theirs(String),
    /// Not held, or its first contact is settled: nothing to claim.
    NotWaiting,
}

/// One line of the access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// When (unix seconds).
    pub at: i64,
    /// Who.
    pub staff: String,
    /// Which referral, if one.
    pub handover_id: Option<String>,
    /// What (`view`, `claim`, `contacted`, `login`, …).
    pub action: String,
    /// HMAC-SHA256 of the person's phone number under the clinic's access-log key.
    pub phone_hmac: Option<Vec<u8>>,
}

/// What the access log is searched by (all given must match).
#[derive(Debug, Clone, Default)]
pub struct AccessFilter {
    /// One referral.
    pub handover_id: Option<String>,
    /// One staff member.
    pub staff: Option<String>,
    /// One phone number's keyed hash.
    pub phone_hmac: Option<Vec<u8>>,
}

/// What the clinic still knows of a referral it no longer holds (its tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gone {
    /// The program it was in; `None` when it was withdrawn before it arrived, or for a
    /// tombstone older than schema v6.
    pub program_id: Option<String>,
    /// Why it went: `withdrawn` or `retention`; `None` for a tombstone older than schema v6.
    pub reason: Option<String>,
    /// When (unix seconds).
    pub at: i64,
}

/// A held referral and what the worklist did with it, as one read saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The stored referral.
    pub held: StoredHandover,
    /// When it arrived (unix seconds).
    pub received_at: i64,
    /// Attempts so far, oldest first.
    pub attempts: Vec<Attempt>,
    /// The settled first contact (outcome, when), if settled.
    pub first_contact: Option<(String, i64)>,
}

/// One referral as the export's index lists it: no personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indexed {
    /// The handover id.
    pub handover_id: String,
    /// The program.
    pub program_id: String,
    /// `waiting` (no first contact yet), `settled` or `withdrawn`.
    pub state: &'static str,
    /// When it last changed: arrived, a call was recorded, settled or withdrawn (unix seconds).
    pub changed_at: i64,
}

/// A system allowed to fetch FHIR exports, as the administrator lists it (never its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiClient {
    /// Its name (as the access log names it, after `api:`).
    pub name: String,
    /// The programs it may fetch; `None` for every program that allows the export.
    pub programs: Option<Vec<String>>,
    /// When it was added (unix seconds).
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// When it last fetched an export (from the access log), if ever.
    pub last_used_at: Option<i64>,
}

/// An API client's name and the programs it may fetch (`None`: every program that allows the
/// export).
pub type ClientScope = (String, Option<Vec<String>>);

/// The `programs` column read back: space-separated ids, NULL for every program.
fn programs(column: Option<String>) -> Option<Vec<String>> {
    column.map(|p| p.split(' ').map(str::to_string).collect())
}

/// What storing a referral did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored and committed.
    New,
    /// A withdrawal of this id committed first: nothing stored.
    Withdrawn,
    /// The id was stored by someone else meanwhile: nothing stored (the caller answers a retry).
    Raced,
}

/// A write waiting for the writer: run inside its savepoint, then told whether it committed.
trait Job: Send {
    /// Runs the write; false if it failed (its savepoint is rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Tells the caller: its result if the batch committed, else why not.
    fn finish(self: Box<Self>, failed: Option<&str>);
}

struct Pending<R, F> {
    work: Option<F>,
    outcome: Option<Result<R, StorageError>>,
    reply: Option<SyncSender<Result<R, StorageError>>>,
}

impl<R, F> Job for Pending<R, F>
where
    R: Send,
    F: FnOnce(&Connection) -> Result<R, StorageError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(StorageError::NotCommitted("a write panicked".into())));
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, failed: Option<&str>) {
        let Some(reply) = self.reply else { return };
        let result = match (failed, self.outcome) {
            (None, Some(outcome)) => outcome,
            (None, None) => Err(StorageError::NotCommitted("the write did not run".into())),
            (Some(why), Some(Err(e))) => Err(StorageError::NotCommitted(format!("{e}; {why}"))),
            (Some(why), _) => Err(StorageError::NotCommitted(why.to_string())),
        };
        let _ = reply.send(result);
    }
}

/// The clinic's database.
pub struct Storage {
    read: Mutex<Connection>,
    jobs: Option<Sender<Box<dyn Job>>>,
    writer: Option<JoinHandle<()>>,
}

fn connect(path: &Path) -> Result<Connection, StorageError> {
    let conn = Connection::open(path)?;
    conn.set_prepared_statement_cache_capacity(32);
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    Ok(conn)
}

/// Brings a database up to `target` (at most [`SCHEMA_VERSION`]), one transaction per step.
fn migrate(conn: &mut Connection, target: i64) -> Result<(), StorageError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StorageError::TooNew(version));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target.clamp(0, SCHEMA_VERSION) as usize)
        .skip(version as usize)
    {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Adds one to a program's outcome counter for the ISO week (Stockholm) of `at`.
fn count_outcome(
    c: &Connection,
    handover_id: &str,
    outcome: &str,
    at: i64,
) -> rusqlite::Result<()> {
    let week = iso_week(at);
    c.prepare_cached(
        "INSERT INTO outcomes (program_id, week, outcome, count)
         SELECT program_id, ?2, ?3, 1 FROM handovers WHERE handover_id = ?1
         ON CONFLICT (program_id, week, outcome) DO UPDATE SET count = count + 1",
    )?
    .execute(params![handover_id, week, outcome])?;
    Ok(())
}

/// The ISO week of a time, on the Stockholm calendar: `2026-W49`.
pub fn iso_week(at: i64) -> String {
    use chrono::Datelike;
    let day = lotsa_core::clock::stockholm_date(
        chrono::DateTime::from_timestamp(at, 0).unwrap_or_default(),
    );
    let week = day.iso_week();
    format!("{}-W{:02}", week.year(), week.week())
}

fn attempts_of(conn: &Connection, handover_id: &str) -> rusqlite::Result<Vec<Attempt>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, staff, outcome, reason FROM attempts WHERE handover_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([handover_id], |r| {
        Ok(Attempt {
            at: r.get("at")?,
            staff: r.get("staff")?,
            outcome: r.get("outcome")?,
            reason: r.get("reason")?,
        })
    })?;
    rows.collect()
}

fn is_waiting(c: &Connection, handover_id: &str) -> rusqlite::Result<bool> {
    c.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM handovers WHERE handover_id = ?1)
                AND NOT EXISTS (SELECT 1 FROM first_contacts WHERE handover_id = ?1) AS waiting",
    )?
    .query_row([handover_id], |r| r.get("waiting"))
}

fn holds_claim(c: &Connection, handover_id: &str, staff: &str, now: i64) -> rusqlite::Result<bool> {
    c.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM claims WHERE handover_id = ?1 AND staff = ?2 AND until > ?3)
         AS holds",
    )?
    .query_row(params![handover_id, staff, now], |r| r.get("holds"))
}

fn append_attempt(c: &Connection, handover_id: &str, a: &Attempt) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO attempts (handover_id, seq, at, staff, outcome, reason)
         VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM attempts WHERE handover_id = ?1),
                 ?2, ?3, ?4, ?5)",
    )?
    .execute(params![handover_id, a.at, a.staff, a.outcome, a.reason])?;
    Ok(())
}

fn staff_member(r: &rusqlite::Row<'_>) -> rusqlite::Result<StaffMember> {
    Ok(StaffMember {
        name: r.get("name")?,
        created_at: r.get("created_at")?,
        last_login_at: r.get("last_login_at")?,
        disabled_at: r.get("disabled_at")?,
        must_change_password: r.get::<_, i64>("must_change")? != 0,
    })
}

/// Creates a database at an earlier schema version (for the upgrade tests of every version).
#[doc(hidden)]
pub fn create_at_version(path: &Path, version: i64) -> Result<(), StorageError> {
    migrate(&mut connect(path)?, version)
}

/// The writer thread: waits for a write, takes every other one waiting (up to [`MAX_BATCH`]),
/// and commits them in one transaction.
fn run_writer(conn: Connection, jobs: Receiver<Box<dyn Job>>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let failed = commit(&conn, &mut batch).err();
        if failed.is_some() {
            // The database refused a whole transaction (locked past the busy timeout, disk
            // full): what waited behind this batch fails with it at once, instead of each
            // later batch waiting out the timeout again.
            while let Ok(job) = jobs.try_recv() {
                batch.push(job);
            }
        }
        for job in batch {
            job.finish(failed.as_deref());
        }
    }
}

fn commit(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), String> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| e.to_string())?;
    for job in batch.iter_mut() {
        let step = conn.execute_batch("SAVEPOINT job").and_then(|()| {
            if job.run(conn) {
                conn.execute_batch("RELEASE job")
            } else {
                conn.execute_batch("ROLLBACK TO job; RELEASE job")
            }
        });
        if let Err(e) = step {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.to_string());
        }
    }
    conn.execute_batch("COMMIT").map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        e.to_string()
    })
}

impl Drop for Storage {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what it holds and stop.
        self.jobs.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Storage {
    /// Opens (or creates) the database file, brings its schema up to date and starts its writer.
    pub fn open(path: &Path) -> Result<Storage, StorageError> {
        let mut conn = connect(path)?;
        migrate(&mut conn, SCHEMA_VERSION)?;
        let read = connect(path)?;
        read.pragma_update(None, "query_only", "ON")?;
        let (jobs, queue) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("lotsa-clinic-writer".into())
            .spawn(move || run_writer(conn, queue))
            .map_err(|e| StorageError::NotCommitted(format!("no writer thread: {e}")))?;
        Ok(Storage {
            read: Mutex::new(read),
            jobs: Some(jobs),
            writer: Some(writer),
        })
    }

    /// The one write path: runs `work` in the writer's next batch and returns its result once
    /// that batch is committed. An error from `work` undoes only its own changes.
    pub fn write<R, F>(&self, work: F) -> Result<R, StorageError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StorageError> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        self.enqueue(Box::new(Pending {
            work: Some(work),
            outcome: None,
            reply: Some(reply),
        }))?;
        answer
            .recv()
            .map_err(|_| StorageError::NotCommitted("the writer stopped".into()))?
    }

    /// A write nobody waits for (it still commits in order with the others).
    fn write_later<F>(&self, work: F) -> Result<(), StorageError>
    where
        F: FnOnce(&Connection) -> Result<(), StorageError> + Send + 'static,
    {
        self.enqueue(Box::new(Pending {
            work: Some(work),
            outcome: None,
            reply: None,
        }))
    }

    fn enqueue(&self, job: Box<dyn Job>) -> Result<(), StorageError> {
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| StorageError::NotCommitted("the writer stopped".into()))
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-done read.
        self.read.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a one-time enrolment code (by its hash) valid until `expires_at`.
    pub fn add_enrolment_code(
        &self,
        code_hash: [u8; 32],
        expires_at: i64,
    ) -> Result<(), StorageError> {
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO enrolment_codes (code_hash, expires_at) VALUES (?1, ?2)",
            )?
            .execute(params![code_hash.as_slice(), expires_at])?;
            Ok(())
        })
    }

    /// Enrols a key with a code, once: the same key and code again is a repeat, anything else
    /// with a used, unknown or expired code is refused.
    pub fn enrol(
        &self,
        code_hash: [u8; 32],
        device_id: String,
        key: PublicKey,
        now: i64,
    ) -> Result<Enrolled, StorageError> {
        self.write(move |c| {
            let code: Option<(i64, Option<String>)> = c
                .prepare_cached(
                    "SELECT expires_at, used_by FROM enrolment_codes WHERE code_hash = ?1",
                )?
                .query_row([code_hash.as_slice()], |r| {
                    Ok((r.get("expires_at")?, r.get("used_by")?))
                })
                .optional()?;
            Ok(match code {
                Some((_, Some(used_by))) if used_by == device_id => {
                    let at: i64 = c
                        .prepare_cached("SELECT enrolled_at FROM devices WHERE device_id = ?1")?
                        .query_row([&device_id], |r| r.get("enrolled_at"))?;
                    Enrolled::Repeat(at)
                }
                Some((expires_at, None)) if now <= expires_at => {
                    let taken: bool = c
                        .prepare_cached(
                            "SELECT EXISTS (SELECT 1 FROM devices WHERE device_id = ?1) AS taken",
                        )?
                        .query_row([&device_id], |r| r.get("taken"))?;
                    if taken {
                        Enrolled::CodeRefused
                    } else {
                        c.prepare_cached(
                            "INSERT INTO devices (device_id, public_key, code_hash, enrolled_at)
                             VALUES (?1, ?2, ?3, ?4)",
                        )?
                        .execute(params![
                            device_id,
                            key.0.as_slice(),
                            code_hash.as_slice(),
                            now
                        ])?;
                        c.prepare_cached(
                            "UPDATE enrolment_codes SET used_by = ?1 WHERE code_hash = ?2",
                        )?
                        .execute(params![device_id, code_hash.as_slice()])?;
                        Enrolled::New(now)
                    }
                }
                _ => Enrolled::CodeRefused,
            })
        })
    }

    /// A device's key as the signature check needs it (read at every request, so a revocation
    /// by the administrator's command takes effect at once).
    pub fn device_key(&self, device_id: &str) -> Result<DeviceKey, StorageError> {
        let row: Option<(Vec<u8>, Option<i64>)> = self
            .reader()
            .prepare_cached("SELECT public_key, revoked_at FROM devices WHERE device_id = ?1")?
            .query_row([device_id], |r| {
                Ok((r.get("public_key")?, r.get("revoked_at")?))
            })
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

    /// Every enrolled device, oldest first.
    pub fn devices(&self) -> Result<Vec<DeviceRecord>, StorageError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT d.device_id, d.enrolled_at, d.revoked_at, d.last_seen_at, d.backlog,
                    (SELECT COUNT(*) FROM handovers h WHERE h.device_id = d.device_id) AS held
             FROM devices d ORDER BY d.enrolled_at, d.device_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(DeviceRecord {
                device_id: r.get("device_id")?,
                enrolled_at: r.get("enrolled_at")?,
                revoked_at: r.get("revoked_at")?,
                held: r.get("held")?,
                last_seen_at: r.get("last_seen_at")?,
                backlog: r.get("backlog")?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a device's queue report (and that it was seen now).
    pub fn record_status(
        &self,
        device_id: String,
        report: Vec<u8>,
        now: i64,
    ) -> Result<(), StorageError> {
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE devices SET last_seen_at = ?2, backlog = ?3 WHERE device_id = ?1",
            )?
            .execute(params![device_id, now, String::from_utf8_lossy(&report)])?;
            Ok(())
        })
    }

    /// Revokes a device at once; false if it was not enrolled (or already revoked).
    pub fn revoke(&self, device_id: &str, now: i64) -> Result<bool, StorageError> {
        let device_id = device_id.to_string();
        self.write(move |c| {
            let n = c.prepare_cached("UPDATE devices SET revoked_at = ?2 WHERE device_id = ?1 AND revoked_at IS NULL")?
            .execute(
                params![device_id, now],
            )?;
            Ok(n == 1)
        })
    }

    /// Adds a staff account with its password hash, to be changed at the first login; false if
    /// the name is taken.
    pub fn add_staff(&self, name: &str, hash: &str, now: i64) -> Result<bool, StorageError> {
        let (name, hash) = (name.to_string(), hash.to_string());
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "INSERT OR IGNORE INTO staff (name, password_hash, must_change, created_at)
                     VALUES (?1, ?2, 1, ?3)",
                )?
                .execute(params![name, hash, now])?;
            Ok(n == 1)
        })
    }

    /// Every staff account, by name.
    pub fn staff(&self) -> Result<Vec<StaffMember>, StorageError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT name, created_at, last_login_at, disabled_at, must_change FROM staff
             ORDER BY name",
        )?;
        let rows = stmt.query_map([], staff_member)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One account and its password hash, for a login.
    pub fn staff_login(&self, name: &str) -> Result<Option<(StaffMember, String)>, StorageError> {
        Ok(self
            .reader()
            .prepare_cached(
                "SELECT name, created_at, last_login_at, disabled_at, must_change, password_hash
                 FROM staff WHERE name = ?1",
            )?
            .query_row([name], |r| Ok((staff_member(r)?, r.get("password_hash")?)))
            .optional()?)
    }

    /// Notes a successful login.
    pub fn record_login(&self, name: &str, now: i64) -> Result<(), StorageError> {
        let name = name.to_string();
        self.write(move |c| {
            c.prepare_cached("UPDATE staff SET last_login_at = ?2 WHERE name = ?1")?
                .execute(params![name, now])?;
            Ok(())
        })
    }

    /// Replaces an account's password hash (the initial password is then spent).
    pub fn set_password(&self, name: &str, hash: &str) -> Result<bool, StorageError> {
        let (name, hash) = (name.to_string(), hash.to_string());
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE staff SET password_hash = ?2, must_change = 0
                     WHERE name = ?1 AND disabled_at IS NULL",
                )?
                .execute(params![name, hash])?;
            Ok(n == 1)
        })
    }

    /// Disables an account at once; false if there is none of that name (disabling twice keeps
    /// the first time).
    pub fn disable_staff(&self, name: &str, now: i64) -> Result<bool, StorageError> {
        let name = name.to_string();
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE staff SET disabled_at = coalesce(disabled_at, ?2) WHERE name = ?1",
                )?
                .execute(params![name, now])?;
            Ok(n == 1)
        })
    }

    /// The referrals waiting for a first call (held, first contact not settled), oldest first,
    /// with their claims and attempts.
    pub fn waiting(&self) -> Result<Vec<Waiting>, StorageError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT h.handover_id, h.device_id, h.program_id, h.clinic_key_id,
                    h.payload_schema_version, h.sealed, h.receipt, h.received_at,
                    c.staff, c.until
             FROM handovers h LEFT JOIN claims c ON c.handover_id = h.handover_id
             WHERE NOT EXISTS (SELECT 1 FROM first_contacts f WHERE f.handover_id = h.handover_id)
             ORDER BY h.received_at, h.handover_id",
        )?;
        let rows = stmt.query_map([], |r| {
            let staff: Option<String> = r.get("staff")?;
            let until: Option<i64> = r.get("until")?;
            Ok(Waiting {
                handover_id: r.get("handover_id")?,
                held: StoredHandover {
                    device_id: r.get("device_id")?,
                    program_id: r.get("program_id")?,
                    clinic_key_id: r.get("clinic_key_id")?,
                    payload_schema_version: r.get("payload_schema_version")?,
                    sealed: r.get("sealed")?,
                    receipt: r.get("receipt")?,
                },
                received_at: r.get("received_at")?,
                claim: staff.zip(until),
                attempts: Vec::new(),
            })
        })?;
        let mut waiting: Vec<Waiting> = rows.collect::<Result<_, _>>()?;
        for w in &mut waiting {
            w.attempts = attempts_of(&conn, &w.handover_id)?;
        }
        Ok(waiting)
    }

    /// When a held referral arrived (unix seconds).
    pub fn received_at(&self, handover_id: &str) -> Result<Option<i64>, StorageError> {
        Ok(self
            .reader()
            .prepare_cached("SELECT received_at FROM handovers WHERE handover_id = ?1")?
            .query_row([handover_id], |r| r.get("received_at"))
            .optional()?)
    }

    /// The attempts on a referral, oldest first.
    pub fn attempts(&self, handover_id: &str) -> Result<Vec<Attempt>, StorageError> {
        Ok(attempts_of(&self.reader(), handover_id)?)
    }

    /// The settled first contact of a referral: its outcome and time.
    pub fn first_contact(&self, handover_id: &str) -> Result<Option<(String, i64)>, StorageError> {
        Ok(self
            .reader()
            .prepare_cached("SELECT outcome, at FROM first_contacts WHERE handover_id = ?1")?
            .query_row([handover_id], |r| Ok((r.get("outcome")?, r.get("at")?)))
            .optional()?)
    }

    /// Claims a waiting referral for `staff` until `until`, atomically: an unexpired claim by
    /// someone else wins; one's own claim is extended.
    pub fn claim(
        &self,
        handover_id: &str,
        staff: &str,
        now: i64,
        until: i64,
    ) -> Result<Claimed, StorageError> {
        let (id, staff) = (handover_id.to_string(), staff.to_string());
        self.write(move |c| {
            if !is_waiting(c, &id)? {
                return Ok(Claimed::NotWaiting);
            }
            let held: Option<(String, i64)> = c
                .prepare_cached("SELECT staff, until FROM claims WHERE handover_id = ?1")?
                .query_row([&id], |r| Ok((r.get("staff")?, r.get("until")?)))
                .optional()?;
            if let Some((other, their_until)) = held {
                if other != staff && their_until > now {
                    return Ok(Claimed::Theirs(other));
                }
            }
            c.prepare_cached(
                "INSERT INTO claims (handover_id, staff, until) VALUES (?1, ?2, ?3)
                 ON CONFLICT (handover_id) DO UPDATE SET staff = ?2, until = ?3",
            )?
            .execute(params![id, staff, until])?;
            Ok(Claimed::Yours(until))
        })
    }

    /// Gives a claim up (only the one holding it can); false if `staff` did not hold it.
    pub fn release(&self, handover_id: &str, staff: &str) -> Result<bool, StorageError> {
        let (id, staff) = (handover_id.to_string(), staff.to_string());
        self.write(move |c| {
            let n = c
                .prepare_cached("DELETE FROM claims WHERE handover_id = ?1 AND staff = ?2")?
                .execute(params![id, staff])?;
            Ok(n == 1)
        })
    }

    /// Hands an unexpired claim of `staff` to `to`, until `until`; false if `staff` did not hold
    /// it.
    pub fn reassign(
        &self,
        handover_id: &str,
        staff: &str,
        to: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StorageError> {
        let (id, staff, to) = (handover_id.to_string(), staff.to_string(), to.to_string());
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE claims SET staff = ?3, until = ?5
                     WHERE handover_id = ?1 AND staff = ?2 AND until > ?4",
                )?
                .execute(params![id, staff, to, now, until])?;
            Ok(n == 1)
        })
    }

    /// Records an attempt by the staff member who holds the referral's unexpired claim; with
    /// `settles`, the first contact is settled with that outcome and the claim ends; without,
    /// the claim ends too (someone may try again later). False if `staff` did not hold it.
    pub fn record_attempt(
        &self,
        handover_id: &str,
        attempt: Attempt,
        settles: Option<Settles>,
    ) -> Result<bool, StorageError> {
        let id = handover_id.to_string();
        self.write(move |c| {
            if !holds_claim(c, &id, &attempt.staff, attempt.at)? || !is_waiting(c, &id)? {
                return Ok(false);
            }
            append_attempt(c, &id, &attempt)?;
            if let Some(settles) = &settles {
                c.prepare_cached(
                    "INSERT INTO first_contacts (handover_id, outcome, at) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![id, settles.outcome, attempt.at])?;
                count_outcome(c, &id, settles.counter, attempt.at)?;
            }
            c.prepare_cached("DELETE FROM claims WHERE handover_id = ?1")?
                .execute([&id])?;
            Ok(true)
        })
    }

    /// The person withdrew by phone, to the staff member holding the claim: the referral and
    /// its worklist history are erased and a tombstone kept, as for a withdrawal the phone
    /// sends (the access log keeps who took it, and when). False if `staff` did not hold it.
    pub fn withdraw_by_phone(
        &self,
        handover_id: &str,
        attempt: Attempt,
    ) -> Result<bool, StorageError> {
        let id = handover_id.to_string();
        self.write(move |c| {
            if !holds_claim(c, &id, &attempt.staff, attempt.at)? || !is_waiting(c, &id)? {
                return Ok(false);
            }
            count_outcome(c, &id, "withdrawn", attempt.at)?;
            bury(c, &id, "withdrawn", attempt.at)?;
            forget(c, &id)?;
            Ok(true)
        })
    }

    /// Adds lines to the access log, in one write.
    pub fn log_access(&self, entries: Vec<AccessEntry>) -> Result<(), StorageError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.write(move |c| {
            let mut stmt = c.prepare_cached(
                "INSERT INTO access_log (at, staff, handover_id, action, phone_hmac)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for e in &entries {
                stmt.execute(params![
                    e.at,
                    e.staff,
                    e.handover_id,
                    e.action,
                    e.phone_hmac
                ])?;
            }
            Ok(())
        })
    }

    /// The outcome counters, by program, week and outcome.
    pub fn outcomes(&self) -> Result<Vec<OutcomeCount>, StorageError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT program_id, week, outcome, count FROM outcomes ORDER BY program_id, week, outcome",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(OutcomeCount {
                program_id: r.get("program_id")?,
                week: r.get("week")?,
                outcome: r.get("outcome")?,
                count: r.get("count")?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The settled referrals still held: (handover id, program, when settled).
    pub fn settled(&self) -> Result<Vec<(String, String, i64)>, StorageError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT h.handover_id, h.program_id, f.at FROM handovers h
             JOIN first_contacts f ON f.handover_id = h.handover_id ORDER BY f.at",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get("handover_id")?, r.get("program_id")?, r.get("at")?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Erases referrals (their sealed bytes, attempts and first contact; a tombstone stays, so
    /// a late copy from a phone is refused) and forgets the tombstones made before
    /// `tombstones_before`, in one write; then checkpoints the WAL so no copy stays there.
    pub fn erase(
        &self,
        handover_ids: Vec<String>,
        now: i64,
        tombstones_before: i64,
    ) -> Result<Erased, StorageError> {
        let erased = self.write(move |c| {
            let mut erased = Erased::default();
            for id in &handover_ids {
                bury(c, id, "retention", now)?;
                erased.referrals += forget(c, id)?;
            }
            erased.tombstones = c
                .prepare_cached("DELETE FROM tombstones WHERE at < ?1")?
                .execute([tombstones_before])?;
            Ok(erased)
        })?;
        self.checkpoint()?;
        Ok(erased)
    }

    /// Moves everything in the WAL into the database and empties the WAL.
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        self.reader()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Forgets access log lines older than `before` (unix seconds); how many.
    pub fn prune_access_log(&self, before: i64) -> Result<usize, StorageError> {
        self.write(move |c| {
            Ok(c.prepare_cached("DELETE FROM access_log WHERE at < ?1")?
                .execute([before])?)
        })
    }

    /// The access log lines that match, oldest first.
    pub fn access_log(&self, filter: &AccessFilter) -> Result<Vec<AccessEntry>, StorageError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT at, staff, handover_id, action, phone_hmac FROM access_log
             WHERE (?1 IS NULL OR handover_id = ?1) AND (?2 IS NULL OR staff = ?2)
               AND (?3 IS NULL OR phone_hmac = ?3)
             ORDER BY seq",
        )?;
        let rows = stmt.query_map(
            params![filter.handover_id, filter.staff, filter.phone_hmac],
            |r| {
                Ok(AccessEntry {
                    at: r.get("at")?,
                    staff: r.get("staff")?,
                    handover_id: r.get("handover_id")?,
                    action: r.get("action")?,
                    phone_hmac: r.get("phone_hmac")?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Keeps a nonce for the replay window (in the next batch; nobody waits for it), and forgets
    /// those older than the window.
    pub fn remember_nonce(
        &self,
        device_id: String,
        nonce: String,
        now: i64,
    ) -> Result<(), StorageError> {
        self.write_later(move |c| {
            c.prepare_cached("DELETE FROM nonces WHERE seen_at < ?1")?
                .execute([now - NONCE_WINDOW_SECS])?;
            c.prepare_cached(
                "INSERT OR IGNORE INTO nonces (device_id, nonce, seen_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![device_id, nonce, now])?;
            Ok(())
        })
    }

    /// The nonces still inside the replay window: `(device id, nonce, seen at)`.
    pub fn recent_nonces(&self, now: i64) -> Result<Vec<(String, String, i64)>, StorageError> {
        let conn = self.reader();
        let mut stmt =
            conn.prepare("SELECT device_id, nonce, seen_at FROM nonces WHERE seen_at >= ?1")?;
        let rows = stmt.query_map([now - NONCE_WINDOW_SECS], |r| {
            Ok((r.get("device_id")?, r.get("nonce")?, r.get("seen_at")?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A stored referral.
    pub fn handover(&self, handover_id: &str) -> Result<Option<StoredHandover>, StorageError> {
        Ok(handover_of(&self.reader(), handover_id)?.map(|(held, _)| held))
    }

    /// A held referral with what the worklist did with it, read in one transaction so that no
    /// call, settlement or erasure lands between its parts.
    pub fn history(&self, handover_id: &str) -> Result<Option<History>, StorageError> {
        let conn = self.reader();
        conn.execute_batch("BEGIN")?;
        let read = (|| -> rusqlite::Result<Option<History>> {
            let Some((held, received_at)) = handover_of(&conn, handover_id)? else {
                return Ok(None);
            };
            let first_contact = conn
                .prepare_cached("SELECT outcome, at FROM first_contacts WHERE handover_id = ?1")?
                .query_row([handover_id], |r| Ok((r.get("outcome")?, r.get("at")?)))
                .optional()?;
            Ok(Some(History {
                held,
                received_at,
                attempts: attempts_of(&conn, handover_id)?,
                first_contact,
            }))
        })();
        conn.execute_batch("COMMIT")?;
        Ok(read?)
    }

    /// Whether a referral was ever exported (as FHIR) to anyone, by the access log.
    pub fn exported_before(&self, handover_id: &str) -> Result<bool, StorageError> {
        Ok(self
            .reader()
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM access_log WHERE handover_id = ?1
                                AND action = 'fhir_export') AS exported",
            )?
            .query_row([handover_id], |r| r.get("exported"))?)
    }

    /// The referrals `who` (an access-log name) has exported, by the access log.
    pub fn exported_by(&self, who: &str) -> Result<HashSet<String>, StorageError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT DISTINCT handover_id FROM access_log
             WHERE staff = ?1 AND action = 'fhir_export' AND handover_id IS NOT NULL",
        )?;
        let rows = stmt.query_map([who], |r| r.get("handover_id"))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The ids of every referral held, in the order received.
    pub fn handover_ids(&self) -> Result<Vec<String>, StorageError> {
        let conn = self.reader();
        let mut stmt =
            conn.prepare("SELECT handover_id FROM handovers ORDER BY received_at, handover_id")?;
        let rows = stmt.query_map([], |r| r.get("handover_id"))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The device a withdrawn handover's tombstone names, if there is one.
    pub fn tombstone(&self, handover_id: &str) -> Result<Option<String>, StorageError> {
        Ok(tombstone_of(&self.reader(), handover_id)?)
    }

    /// What the tombstone of a referral no longer held says, if there is one.
    pub fn gone(&self, handover_id: &str) -> Result<Option<Gone>, StorageError> {
        Ok(self
            .reader()
            .prepare_cached("SELECT program_id, reason, at FROM tombstones WHERE handover_id = ?1")?
            .query_row([handover_id], |r| {
                Ok(Gone {
                    program_id: r.get("program_id")?,
                    reason: r.get("reason")?,
                    at: r.get("at")?,
                })
            })
            .optional()?)
    }

    /// Every referral held, and every one withdrawn whose tombstone names its program, with its
    /// state and when it last changed, oldest change first.
    pub fn index(&self) -> Result<Vec<Indexed>, StorageError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT h.handover_id, h.program_id,
                    CASE WHEN f.handover_id IS NULL THEN 0 ELSE 1 END AS settled,
                    max(h.received_at, coalesce(f.at, 0),
                        coalesce((SELECT max(a.at) FROM attempts a
                                  WHERE a.handover_id = h.handover_id), 0)) AS changed_at
             FROM handovers h LEFT JOIN first_contacts f ON f.handover_id = h.handover_id
             UNION ALL
             SELECT handover_id, program_id, 2 AS settled, at AS changed_at FROM tombstones
             WHERE reason = 'withdrawn' AND program_id IS NOT NULL
             ORDER BY changed_at, handover_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Indexed {
                handover_id: r.get("handover_id")?,
                program_id: r.get("program_id")?,
                state: match r.get::<_, i64>("settled")? {
                    0 => "waiting",
                    1 => "settled",
                    _ => "withdrawn",
                },
                changed_at: r.get("changed_at")?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Notes that the service starts serving a bundle (issued at `issued_at`, unix seconds).
    pub fn note_served(
        &self,
        bundle_id: &str,
        issued_at: i64,
        now: i64,
    ) -> Result<(), StorageError> {
        let bundle_id = bundle_id.to_string();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO served_bundles (bundle_id, issued_at, served_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (bundle_id, issued_at) DO UPDATE SET served_at = excluded.served_at",
            )?
            .execute(params![bundle_id, issued_at, now])?;
            Ok(())
        })
    }

    /// The newest bundle the service was ever started with: its id and when it was issued.
    pub fn newest_served(&self) -> Result<Option<(String, i64)>, StorageError> {
        Ok(self
            .reader()
            .prepare_cached(
                "SELECT bundle_id, issued_at FROM served_bundles ORDER BY issued_at DESC LIMIT 1",
            )?
            .query_row([], |r| Ok((r.get("bundle_id")?, r.get("issued_at")?)))
            .optional()?)
    }

    /// Adds a system allowed to fetch exports, by its token's hash; false if the name is taken.
    pub fn add_api_client(
        &self,
        name: &str,
        token_hash: Vec<u8>,
        programs: Option<&[String]>,
        now: i64,
    ) -> Result<bool, StorageError> {
        let name = name.to_string();
        let programs = programs.map(|p| p.join(" "));
        self.write(move |c| {
            Ok(c.prepare_cached(
                "INSERT OR IGNORE INTO api_clients (name, token_hash, programs, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![name, token_hash, programs, now])?
                == 1)
        })
    }

    /// Every system allowed to fetch exports, by name, with when each last did.
    pub fn api_clients(&self) -> Result<Vec<ApiClient>, StorageError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT name, programs, created_at, revoked_at,
                    (SELECT max(at) FROM access_log WHERE staff = 'api:' || name) AS last_used_at
             FROM api_clients ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ApiClient {
                name: r.get("name")?,
                programs: programs(r.get("programs")?),
                created_at: r.get("created_at")?,
                revoked_at: r.get("revoked_at")?,
                last_used_at: r.get("last_used_at")?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes a system's token at once; false if no unrevoked client has that name.
    pub fn revoke_api_client(&self, name: &str, now: i64) -> Result<bool, StorageError> {
        let name = name.to_string();
        self.write(move |c| {
            Ok(c.prepare_cached(
                "UPDATE api_clients SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
            )?
            .execute(params![name, now])?
                == 1)
        })
    }

    /// The unrevoked system whose token has this hash: its name and the programs it may fetch
    /// (`None`: every program that allows the export).
    pub fn api_client(&self, token_hash: &[u8]) -> Result<Option<ClientScope>, StorageError> {
        Ok(self
            .reader()
            .prepare_cached(
                "SELECT name, programs FROM api_clients
                 WHERE token_hash = ?1 AND revoked_at IS NULL",
            )?
            .query_row([token_hash], |r| {
                Ok((r.get("name")?, programs(r.get("programs")?)))
            })
            .optional()?)
    }

    /// Stores a referral with its receipt, durably, unless a withdrawal of it committed first.
    pub fn store_handover(
        &self,
        handover_id: String,
        stored: StoredHandover,
        received_at: i64,
    ) -> Result<Stored, StorageError> {
        self.write(move |c| {
            if tombstone_of(c, &handover_id)?.is_some() {
                return Ok(Stored::Withdrawn);
            }
            let n = c.prepare_cached("INSERT OR IGNORE INTO handovers (handover_id, device_id, program_id, clinic_key_id,
                                    payload_schema_version, sealed, receipt, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?
            .execute(
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
            Ok(if n == 1 { Stored::New } else { Stored::Raced })
        })
    }

    /// A withdrawal received before.
    pub fn withdrawal(&self, withdrawal_id: &str) -> Result<Option<SeenWithdrawal>, StorageError> {
        Ok(self
            .reader()
            .prepare_cached(
                "SELECT message, confirmation FROM withdrawals WHERE withdrawal_id = ?1",
            )?
            .query_row([withdrawal_id], |r| {
                Ok(SeenWithdrawal {
                    message: r.get("message")?,
                    confirmation: r.get("confirmation")?,
                })
            })
            .optional()?)
    }

    /// Erases a referral (if held), leaves its tombstone and records the confirmation, all in
    /// one write. `held` is what the caller saw when it made the confirmation; if that changed
    /// meanwhile, or the withdrawal id was taken meanwhile, nothing is written and the answer is
    /// false (the caller answers a retry).
    pub fn withdraw(&self, w: Withdrawal, now: i64) -> Result<bool, StorageError> {
        self.write(move |c| {
            let held: bool = c
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM handovers WHERE handover_id = ?1) AS held",
                )?
                .query_row([&w.handover_id], |r| r.get("held"))?;
            if held != w.held {
                return Ok(false);
            }
            let n = c
                .prepare_cached(
                    "INSERT OR IGNORE INTO withdrawals (withdrawal_id, message, confirmation)
                 VALUES (?1, ?2, ?3)",
                )?
                .execute(params![w.withdrawal_id, w.message, w.confirmation])?;
            if n == 0 {
                return Ok(false);
            }
            if held {
                count_outcome(c, &w.handover_id, "withdrawn", now)?;
                bury(c, &w.handover_id, "withdrawn", now)?;
            } else {
                // Withdrawn before it arrived: the tombstone refuses a late copy; nothing was
                // held, so it names no program.
                c.prepare_cached(
                    "INSERT OR IGNORE INTO tombstones (handover_id, device_id, at, reason)
                     VALUES (?1, ?2, ?3, 'withdrawn')",
                )?
                .execute(params![w.handover_id, w.device_id, now])?;
                // Erased after its retention, withdrawn since: it is a withdrawal from now on,
                // so that a care record system it was exported to is told.
                c.prepare_cached(
                    "UPDATE tombstones SET reason = 'withdrawn', at = ?2
                     WHERE handover_id = ?1 AND reason = 'retention'",
                )?
                .execute(params![w.handover_id, now])?;
            }
            forget(c, &w.handover_id)?;
            Ok(true)
        })
    }

    /// How many referrals are held (for tests and the administrator).
    pub fn handover_count(&self) -> Result<i64, StorageError> {
        Ok(self
            .reader()
            .prepare_cached("SELECT COUNT(*) AS n FROM handovers")?
            .query_row([], |r| r.get("n"))?)
    }

    /// A consistent copy of the whole database in a new file (`VACUUM INTO`), taken while the
    /// service runs.
    pub fn copy_to(&self, path: &Path) -> Result<(), StorageError> {
        let target = path.to_string_lossy().into_owned();
        let source = self.reader().path().map(Path::new).map(Path::to_path_buf);
        let source = source.ok_or_else(|| StorageError::NotCommitted("no database file".into()))?;
        connect(&source)?.execute("VACUUM INTO ?1", [target])?;
        Ok(())
    }
}

/// A withdrawal to record, as [`Storage::withdraw`] takes it.
#[derive(Debug, Clone)]
pub struct Withdrawal {
    /// The withdrawal id.
    pub withdrawal_id: String,
    /// The handover it withdraws.
    pub handover_id: String,
    /// The device that sent it.
    pub device_id: String,
    /// Whether the referral was held when the confirmation was made.
    pub held: bool,
    /// The message as re-serialized.
    pub message: Vec<u8>,
    /// The confirmation sent.
    pub confirmation: Vec<u8>,
}

/// Deletes a referral and everything the worklist kept of it (its attempts, its first contact,
/// a claim), leaving its tombstone and the access log; how many referrals were deleted (0 or 1).
fn forget(c: &Connection, handover_id: &str) -> rusqlite::Result<usize> {
    let deleted = c
        .prepare_cached("DELETE FROM handovers WHERE handover_id = ?1")?
        .execute([handover_id])?;
    for table in ["attempts", "first_contacts", "claims"] {
        c.prepare_cached(&format!("DELETE FROM {table} WHERE handover_id = ?1"))?
            .execute([handover_id])?;
    }
    Ok(deleted)
}

/// Leaves the tombstone of a held referral (before it is deleted): its device, its program and
/// why it went.
fn bury(c: &Connection, handover_id: &str, reason: &str, at: i64) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT OR IGNORE INTO tombstones (handover_id, device_id, at, program_id, reason)
         SELECT handover_id, device_id, ?2, program_id, ?3 FROM handovers WHERE handover_id = ?1",
    )?
    .execute(params![handover_id, at, reason])?;
    Ok(())
}

fn handover_of(
    c: &Connection,
    handover_id: &str,
) -> rusqlite::Result<Option<(StoredHandover, i64)>> {
    c.prepare_cached(
        "SELECT device_id, program_id, clinic_key_id, payload_schema_version, sealed, receipt,
                received_at
         FROM handovers WHERE handover_id = ?1",
    )?
    .query_row([handover_id], |r| {
        let held = StoredHandover {
            device_id: r.get("device_id")?,
            program_id: r.get("program_id")?,
            clinic_key_id: r.get("clinic_key_id")?,
            payload_schema_version: r.get("payload_schema_version")?,
            sealed: r.get("sealed")?,
            receipt: r.get("receipt")?,
        };
        Ok((held, r.get("received_at")?))
    })
    .optional()
}

fn tombstone_of(c: &Connection, handover_id: &str) -> rusqlite::Result<Option<String>> {
    c.prepare_cached("SELECT device_id FROM tombstones WHERE handover_id = ?1")?
        .query_row([handover_id], |r| r.get("device_id"))
        .optional()
}
