//! The worklist: the referrals waiting for a first call, opened for the staff member who looks
//! at them and sorted by deadline; claiming one before calling, so that two people never phone
//! the same person; and the outcome of each call, kept in the attempt history. Every look at a
//! referral's personal data and every action goes into the access log, under the staff member's
//! name, with a keyed hash of the phone number instead of the number.
//!
//! The staff pages only render what this module returns and pass on what staff click.

use crate::deadline::{deadline, urgency, Urgency};
use crate::intake::ClinicKeys;
use crate::storage::{AccessEntry, Attempt, Claimed, Settles, Storage, StorageError};
use chrono::{DateTime, Utc};
use lotsa_core::program::{Bundle, CallbackWithin, NeverReachedAfter};
use lotsa_core::referral::HandoverPayload;

/// How long a claim lasts unless renewed or given up.
pub const CLAIM_SECS: i64 = 30 * 60;

/// A referral's promise when the bundle gives none (a v1 bundle; the service requires v2).
const DEFAULT_PROMISE: CallbackWithin = CallbackWithin::Hours(24);

/// What a staff member does with a claimed referral. Each has its reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reached: the first contact is made.
    Contacted,
    /// No answer: try again later (until the program's `never_reached_after`).
    NotReached,
    /// Reached, and the person said no.
    Declined,
    /// The person phoned the clinic first.
    CalledUsFirst,
    /// The person withdrew consent by phone: the referral is erased.
    WithdrewByPhone,
}

impl Action {
    /// Every action, in the order the page offers them.
    pub const ALL: [Action; 5] = [
        Action::Contacted,
        Action::NotReached,
        Action::Declined,
        Action::CalledUsFirst,
        Action::WithdrewByPhone,
    ];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Action::Contacted => "contacted",
            Action::NotReached => "not_reached",
            Action::Declined => "declined",
            Action::CalledUsFirst => "called_us_first",
            Action::WithdrewByPhone => "withdrew_by_phone",
        }
    }

    /// From its code.
    pub fn from_code(code: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.code() == code)
    }

    /// The reason codes it takes (the first is the default).
    pub fn reasons(self) -> &'static [&'static str] {
        match self {
            Action::Contacted => &["talked", "appointment_booked", "referred_on"],
            Action::NotReached => &["no_answer", "voicemail", "phone_off", "wrong_number"],
            Action::Declined => &["not_now", "not_interested", "other_help"],
            Action::CalledUsFirst => &["called_us"],
            Action::WithdrewByPhone => &["withdrew"],
        }
    }
}

/// Why an action was refused (nothing was recorded).
#[derive(Debug, thiserror::Error)]
pub enum WorklistError {
    /// No referral waits under that id (never held, erased, or settled).
    #[error("no referral waiting for a call has that id")]
    NotWaiting,
    /// Someone else holds the claim.
    #[error("{0} is calling this person")]
    ClaimedBy(String),
    /// The staff member does not hold the claim (it ran out, or was never taken).
    #[error("claim the referral before recording a call")]
    NotClaimed,
    /// The colleague to hand over to has no active account.
    #[error("no active staff account has that name")]
    NoSuchColleague,
    /// The reason code is not one of the action's.
    #[error("that reason does not go with that action")]
    BadReason,
    /// A stored referral did not open with the clinic's keys.
    #[error("a stored referral does not open: {0}")]
    Unreadable(String),
    /// The database.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// One referral as the worklist shows it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The handover id.
    pub handover_id: String,
    /// What the person agreed to pass on, opened.
    pub payload: HandoverPayload,
    /// The program's name (its id if the bundle no longer has it).
    pub program_name: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// When consent was given.
    pub consented_at: DateTime<Utc>,
    /// By when the person must have been phoned.
    pub deadline: DateTime<Utc>,
    /// In time, due soon or overdue, now.
    pub urgency: Urgency,
    /// Who is calling, until when (an unexpired claim only).
    pub claimed_by: Option<(String, DateTime<Utc>)>,
    /// Earlier attempts.
    pub attempts: Vec<Attempt>,
}

/// The worklist of one service: its database, its keys, the programs it serves.
pub struct Worklist<'a> {
    /// The database.
    pub storage: &'a Storage,
    /// The keys that open stored referrals.
    pub keys: &'a ClinicKeys,
    /// The verified bundle the service serves.
    pub bundle: &'a Bundle,
    /// The access log's HMAC key.
    pub log_key: &'a [u8; 32],
}

/// How many referrals wait, for a notification: no names, no numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Arrived since the last notification.
    pub new: usize,
    /// In the last quarter of their promise.
    pub due_soon: usize,
    /// Past their deadline.
    pub overdue: usize,
}

impl Worklist<'_> {
    /// How many referrals waiting for a first call are new since `since` (unix seconds), due
    /// soon and overdue. Opened in memory only to read the consent's time; nobody sees them, so
    /// nothing goes into the access log.
    pub fn counts(&self, since: i64, now: DateTime<Utc>) -> Result<Counts, WorklistError> {
        let mut counts = Counts::default();
        for w in self.storage.waiting()? {
            let payload = self
                .keys
                .open(&w.handover_id, &w.held)
                .map_err(|kind| WorklistError::Unreadable(kind.code().to_string()))?;
            let promise = self
                .bundle
                .program(&payload.program_id)
                .and_then(|p| p.callback_within)
                .unwrap_or(DEFAULT_PROMISE);
            let consented = payload.consent.given_at.with_timezone(&Utc);
            if w.received_at > since {
                counts.new += 1;
            }
            match urgency(consented, promise, now) {
                Urgency::DueSoon => counts.due_soon += 1,
                Urgency::Overdue => counts.overdue += 1,
                Urgency::InTime => {}
            }
        }
        Ok(counts)
    }

    /// The referrals waiting for a first call, soonest deadline first, opened for `staff`;
    /// each shown one is logged as viewed.
    pub fn waiting(&self, staff: &str, now: DateTime<Utc>) -> Result<Vec<Entry>, WorklistError> {
        let mut entries = Vec::new();
        for w in self.storage.waiting()? {
            let payload = self
                .keys
                .open(&w.handover_id, &w.held)
                .map_err(|kind| WorklistError::Unreadable(kind.code().to_string()))?;
            let program = self.bundle.program(&payload.program_id);
            let promise = program
                .and_then(|p| p.callback_within)
                .unwrap_or(DEFAULT_PROMISE);
            let consented_at = payload.consent.given_at.with_timezone(&Utc);
            let claimed_by = w
                .claim
                .filter(|(_, until)| *until > now.timestamp())
                .and_then(|(who, until)| Some((who, DateTime::from_timestamp(until, 0)?)));
            entries.push(Entry {
                handover_id: w.handover_id,
                program_name: program
                    .map_or_else(|| payload.program_id.clone(), |p| p.name.clone()),
                received_at: DateTime::from_timestamp(w.received_at, 0).unwrap_or_default(),
                consented_at,
                deadline: deadline(consented_at, promise),
                urgency: urgency(consented_at, promise, now),
                claimed_by,
                attempts: w.attempts,
                payload,
            });
        }
        entries.sort_by(|a, b| {
            a.deadline
                .cmp(&b.deadline)
                .then(a.handover_id.cmp(&b.handover_id))
        });
        let viewed = entries
            .iter()
            .map(|e| self.entry(staff, now, &e.handover_id, "view", Some(&e.payload)))
            .collect();
        self.storage.log_access(viewed)?;
        Ok(entries)
    }

    /// Claims a referral before calling (or extends one's own claim).
    pub fn claim(
        &self,
        staff: &str,
        handover_id: &str,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, WorklistError> {
        let t = now.timestamp();
        match self.storage.claim(handover_id, staff, t, t + CLAIM_SECS)? {
            Claimed::Yours(until) => {
                self.log(staff, now, handover_id, "claim")?;
                Ok(DateTime::from_timestamp(until, 0).unwrap_or(now))
            }
            Claimed::Theirs(other) => Err(WorklistError::ClaimedBy(other)),
            Claimed::NotWaiting => Err(WorklistError::NotWaiting),
        }
    }

    /// Gives one's claim up.
    pub fn release(
        &self,
        staff: &str,
        handover_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), WorklistError> {
        if !self.storage.release(handover_id, staff)? {
            return Err(WorklistError::NotClaimed);
        }
        self.log(staff, now, handover_id, "release")
    }

    /// Hands one's claim to a colleague.
    pub fn reassign(
        &self,
        staff: &str,
        handover_id: &str,
        to: &str,
        now: DateTime<Utc>,
    ) -> Result<(), WorklistError> {
        let active = self
            .storage
            .staff_login(to)?
            .is_some_and(|(m, _)| m.disabled_at.is_none());
        if !active {
            return Err(WorklistError::NoSuchColleague);
        }
        let t = now.timestamp();
        if !self
            .storage
            .reassign(handover_id, staff, to, t, t + CLAIM_SECS)?
        {
            return Err(WorklistError::NotClaimed);
        }
        self.log(staff, now, handover_id, "reassign")
    }

    /// Records what a call came to, for a referral `staff` has claimed.
    pub fn record(
        &self,
        staff: &str,
        handover_id: &str,
        action: Action,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), WorklistError> {
        if !action.reasons().contains(&reason) {
            return Err(WorklistError::BadReason);
        }
        // The payload is opened before anything changes: its phone number's hash goes into the
        // access log, also when the referral is erased by this very action.
        let held = self
            .storage
            .handover(handover_id)?
            .ok_or(WorklistError::NotWaiting)?;
        let payload = self
            .keys
            .open(handover_id, &held)
            .map_err(|kind| WorklistError::Unreadable(kind.code().to_string()))?;
        let attempt = Attempt {
            at: now.timestamp(),
            staff: staff.to_string(),
            outcome: action.code().to_string(),
            reason: reason.to_string(),
        };
        let settles = |outcome, counter| Some(Settles { outcome, counter });
        let done = match action {
            Action::WithdrewByPhone => self.storage.withdraw_by_phone(handover_id, attempt)?,
            Action::NotReached => {
                let gives_up = self.gives_up(&payload, handover_id, now)?;
                let settled = if gives_up {
                    settles("never_reached", "never_reached")
                } else {
                    None
                };
                self.storage.record_attempt(handover_id, attempt, settled)?
            }
            Action::Contacted => {
                let promise = self
                    .bundle
                    .program(&payload.program_id)
                    .and_then(|p| p.callback_within)
                    .unwrap_or(DEFAULT_PROMISE);
                let due = deadline(payload.consent.given_at.with_timezone(&Utc), promise);
                let counter = if now <= due {
                    "contacted_in_time"
                } else {
                    "contacted_late"
                };
                self.storage
                    .record_attempt(handover_id, attempt, settles("contacted", counter))?
            }
            Action::Declined => self.storage.record_attempt(
                handover_id,
                attempt,
                settles("declined", "declined"),
            )?,
            Action::CalledUsFirst => self.storage.record_attempt(
                handover_id,
                attempt,
                settles("called_us_first", "called_first"),
            )?,
        };
        if !done {
            return Err(if self.storage.first_contact(handover_id)?.is_some() {
                WorklistError::NotWaiting
            } else {
                WorklistError::NotClaimed
            });
        }
        let entry = self.entry(staff, now, handover_id, action.code(), Some(&payload));
        self.storage.log_access(vec![entry])?;
        Ok(())
    }

    /// Whether this "not reached" is the one after which the program gives up.
    fn gives_up(
        &self,
        payload: &HandoverPayload,
        handover_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, WorklistError> {
        let Some(limit) = self
            .bundle
            .program(&payload.program_id)
            .and_then(|p| p.never_reached_after)
        else {
            return Ok(false);
        };
        Ok(match limit {
            NeverReachedAfter::Attempts(n) => {
                let before = self
                    .storage
                    .attempts(handover_id)?
                    .iter()
                    .filter(|a| a.outcome == Action::NotReached.code())
                    .count();
                before + 1 >= n as usize
            }
            NeverReachedAfter::Days(days) => {
                let received = self
                    .storage
                    .received_at(handover_id)?
                    .unwrap_or(now.timestamp());
                now.timestamp() - received >= i64::from(days) * 86_400
            }
        })
    }

    fn log(
        &self,
        staff: &str,
        now: DateTime<Utc>,
        handover_id: &str,
        action: &str,
    ) -> Result<(), WorklistError> {
        let payload = self
            .storage
            .handover(handover_id)?
            .and_then(|held| self.keys.open(handover_id, &held).ok());
        let entry = self.entry(staff, now, handover_id, action, payload.as_ref());
        Ok(self.storage.log_access(vec![entry])?)
    }

    fn entry(
        &self,
        staff: &str,
        now: DateTime<Utc>,
        handover_id: &str,
        action: &str,
        payload: Option<&HandoverPayload>,
    ) -> AccessEntry {
        AccessEntry {
            at: now.timestamp(),
            staff: staff.to_string(),
            handover_id: Some(handover_id.to_string()),
            action: action.to_string(),
            phone_hmac: payload
                .and_then(|p| p.contact.phone.as_deref())
                .map(|phone| phone_hmac(self.log_key, phone)),
        }
    }
}

/// How long the access log is kept unless the service is told otherwise: five years, longer
/// than any referral, so that a person can ask who looked at their data after it is erased.
pub const ACCESS_LOG_YEARS: u32 = 5;

/// Forgets the access log lines older than `years` (365-day years) before `now`; how many.
pub fn prune_access_log(
    storage: &Storage,
    years: u32,
    now: DateTime<Utc>,
) -> Result<usize, StorageError> {
    storage.prune_access_log(now.timestamp() - i64::from(years) * 365 * 86_400)
}

/// The access log's keyed hash of a phone number (E.164, as the payload carries it).
pub fn phone_hmac(key: &[u8; 32], phone: &str) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, phone.as_bytes()).as_ref().to_vec()
}
