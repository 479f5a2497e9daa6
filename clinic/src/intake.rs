//! The intake endpoints' logic: from a received request to the answer `docs/PROTOCOL.md`
//! prescribes, in its order of checks. The HTTP layer only turns bytes into an [`Incoming`] and an
//! [`Answer`] back into bytes; every rule is here (and the wire rules in the core's `protocol`).

use crate::storage::{Enrolled, Storage, StorageError, Stored, StoredHandover, Withdrawal};
use chrono::{DateTime, Utc};
use lotsa_core::crypto::seal::{ClinicKeyPair, SealBinding};
use lotsa_core::crypto::{sha256, SigningKey};
use lotsa_core::protocol::receipt::WithdrawalOutcome;
use lotsa_core::protocol::signature::{
    verify_request, DeviceKey, Incoming, Verified, DELIVERY_COMPONENTS, ENROLMENT_COMPONENTS,
};
use lotsa_core::protocol::{
    device_id, idempotency_key, open_payload, ConfirmationFacts, DeviceStatus, EnrolmentAnswer,
    EnrolmentRequest, Envelope, Problem, ProblemType, ReceiptFacts, WithdrawalMessage,
    IDEMPOTENCY_KEY_HEADER, JSON, NONCE_WINDOW_SECS, PROBLEM_JSON,
};
use lotsa_core::referral::HandoverPayload;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// The clinic's secret keys: its HPKE key pairs by id (old ones kept to open what was sealed to
/// them) and its receipt key.
pub struct ClinicKeys {
    /// HPKE key pairs by key id.
    pub hpke: Vec<(String, ClinicKeyPair)>,
    /// The receipt key's id (as the bundle names it).
    pub receipt_key_id: String,
    /// The receipt key.
    pub receipt: SigningKey,
}

impl ClinicKeys {
    /// A stored referral, opened in memory with the key it is sealed to (for staff reading it;
    /// the plain text is never written anywhere).
    pub fn open(
        &self,
        handover_id: &str,
        held: &StoredHandover,
    ) -> Result<HandoverPayload, ProblemType> {
        let (_, pair) = self
            .hpke
            .iter()
            .find(|(kid, _)| *kid == held.clinic_key_id)
            .ok_or(ProblemType::UnknownClinicKey)?;
        let binding = SealBinding {
            handover_id,
            program_id: &held.program_id,
            clinic_key_id: &held.clinic_key_id,
            schema_version: held.payload_schema_version,
        };
        open_payload(pair, &binding, &held.sealed)
    }
}

/// An answer: status, media type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// `application/json` or `application/problem+json`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// Seconds to wait before retrying, for a 429.
    pub retry_after: Option<u32>,
}

impl Answer {
    fn json(status: u16, body: Vec<u8>) -> Answer {
        Answer {
            status,
            content_type: JSON,
            body,
            retry_after: None,
        }
    }

    /// A problem detail.
    pub fn problem(kind: ProblemType, detail: Option<String>) -> Answer {
        Answer {
            status: kind.status(),
            content_type: PROBLEM_JSON,
            body: Problem::new(kind, detail).to_json(),
            retry_after: None,
        }
    }

    /// The problem type, when this is a refusal.
    pub fn problem_type(&self) -> Option<ProblemType> {
        Problem::from_json(&self.body).and_then(|p| p.problem_type())
    }
}

/// Why a request was not served: a protocol refusal, a device over its budget (429 with the
/// seconds to wait), or the clinic's own failure (500, nothing stored; the cause goes to the log,
/// which carries no personal data).
enum Refusal {
    Problem(ProblemType, Option<String>),
    RateLimited(u32),
    Storage(StorageError),
}

impl From<StorageError> for Refusal {
    fn from(e: StorageError) -> Refusal {
        Refusal::Storage(e)
    }
}

fn refuse<T>(kind: ProblemType, detail: impl Into<Option<String>>) -> Result<T, Refusal> {
    Err(Refusal::Problem(kind, detail.into()))
}

/// The intake service's state: its database, keys, the programs it serves, the handover ids
/// being stored right now and the nonces of the replay window.
pub struct Intake {
    storage: Storage,
    keys: ClinicKeys,
    programs: Vec<String>,
    in_flight: Mutex<HashSet<String>>,
    nonces: Mutex<Nonces>,
    budgets: Mutex<Budgets>,
}

/// How many requests one device may make: a burst, then a steady rate (a token bucket). A phone
/// emptying a long queue after a week offline stays well inside the default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceRate {
    /// Requests a device may make at once.
    pub burst: u32,
    /// Requests per minute after the burst.
    pub per_minute: u32,
}

impl Default for DeviceRate {
    fn default() -> DeviceRate {
        DeviceRate {
            burst: 1200,
            per_minute: 1200,
        }
    }
}

/// Each device's bucket: tokens left and when it was last filled (milliseconds).
#[derive(Default)]
struct Budgets {
    rate: DeviceRate,
    by_device: HashMap<String, (f64, i64)>,
}

impl Budgets {
    /// Takes one request from the device's budget, or says how many seconds until it may.
    fn take(&mut self, device_id: &str, now_ms: i64) -> Result<(), u32> {
        let per_ms = f64::from(self.rate.per_minute) / 60_000.0;
        let burst = f64::from(self.rate.burst.max(1));
        let (tokens, at) = self
            .by_device
            .entry(device_id.to_string())
            .or_insert((burst, now_ms));
        *tokens = (*tokens + (now_ms - *at).max(0) as f64 * per_ms).min(burst);
        *at = now_ms;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else if per_ms > 0.0 {
            Err(((1.0 - *tokens) / per_ms / 1000.0).ceil().max(1.0) as u32)
        } else {
            Err(60)
        }
    }
}

/// The replay memory: each `(device id, nonce)` seen within the window, with when. It is checked
/// in memory (no commit to wait for) and kept in the database too, so a restart remembers it.
#[derive(Default)]
struct Nonces {
    seen: HashMap<(String, String), i64>,
    pruned_at: i64,
}

impl Nonces {
    /// Remembers a nonce; false if the device used it within the window.
    fn fresh(&mut self, device_id: &str, nonce: &str, now: i64) -> bool {
        let horizon = now - NONCE_WINDOW_SECS;
        if now - self.pruned_at >= 60 {
            self.seen.retain(|_, at| *at >= horizon);
            self.pruned_at = now;
        }
        let key = (device_id.to_string(), nonce.to_string());
        match self.seen.get(&key) {
            Some(at) if *at >= horizon => false,
            _ => {
                self.seen.insert(key, now);
                true
            }
        }
    }
}

/// Marks a handover id as being stored until dropped.
struct InFlight<'a> {
    set: &'a Mutex<HashSet<String>>,
    id: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.lock() {
            set.remove(&self.id);
        }
    }
}

impl Intake {
    /// The service over a database, with its keys and the ids of the programs it serves (those
    /// whose bundle entry names its endpoint).
    /// The nonces the database remembers from the last `NONCE_WINDOW_SECS` are loaded first.
    pub fn new(
        storage: Storage,
        keys: ClinicKeys,
        programs: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<Intake, StorageError> {
        let mut nonces = Nonces::default();
        for (device, nonce, at) in storage.recent_nonces(now.timestamp())? {
            nonces.seen.insert((device, nonce), at);
        }
        Ok(Intake {
            storage,
            keys,
            programs,
            in_flight: Mutex::new(HashSet::new()),
            nonces: Mutex::new(nonces),
            budgets: Mutex::new(Budgets::default()),
        })
    }

    /// The same service with another per-device rate.
    pub fn with_device_rate(self, rate: DeviceRate) -> Intake {
        if let Ok(mut budgets) = self.budgets.lock() {
            budgets.rate = rate;
        }
        self
    }

    /// The database (for the administrator's views and the tests).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Whether this service takes referrals of a program.
    pub fn serves(&self, program_id: &str) -> bool {
        self.programs.iter().any(|p| p == program_id)
    }

    /// Runs a storage-using closure, answering 500 on a storage failure.
    fn answer(&self, f: impl FnOnce() -> Result<Answer, Refusal>) -> Answer {
        match f() {
            Ok(a) => a,
            Err(Refusal::Problem(kind, detail)) => Answer::problem(kind, detail),
            Err(Refusal::RateLimited(secs)) => Answer {
                retry_after: Some(secs),
                ..Answer::problem(ProblemType::RateLimited, None)
            },
            Err(Refusal::Storage(e)) => {
                eprintln!("lotsa-clinic: storage failure: {e}");
                Answer::problem(ProblemType::Internal, None)
            }
        }
    }

    /// The checks every signed request passes: media type, then the signature as the protocol
    /// orders it, then the device's budget, then the nonce.
    fn signed(
        &self,
        req: &Incoming<'_>,
        required: &[&str],
        now: DateTime<Utc>,
        key_for: impl FnOnce(&str) -> Result<DeviceKey, StorageError>,
    ) -> Result<Verified, Refusal> {
        let media = req.header("content-type").unwrap_or_default();
        let essence = media.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case(JSON) {
            return refuse(ProblemType::UnsupportedMediaType, None);
        }
        let mut failure = None;
        let verified = verify_request(req, required, now.timestamp(), |id| {
            key_for(id).unwrap_or_else(|e| {
                failure = Some(e);
                DeviceKey::Unknown
            })
        });
        if let Some(e) = failure {
            return Err(Refusal::Storage(e));
        }
        let verified =
            verified.map_err(|e| Refusal::Problem(e.problem_type(), Some(e.to_string())))?;
        self.budgets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(&verified.device_id, now.timestamp_millis())
            .map_err(Refusal::RateLimited)?;
        let at = now.timestamp();
        let fresh = self.nonces.lock().unwrap_or_else(|p| p.into_inner()).fresh(
            &verified.device_id,
            &verified.nonce,
            at,
        );
        if !fresh {
            return refuse(ProblemType::SignatureReplayed, None);
        }
        // Queued before this request's own write, so it commits no later than that write.
        self.storage
            .remember_nonce(verified.device_id.clone(), verified.nonce.clone(), at)?;
        Ok(verified)
    }

    /// `POST /v1/handovers`.
    pub fn deliver(&self, req: &Incoming<'_>, now: DateTime<Utc>) -> Answer {
        self.answer(|| {
            let v = self.signed(req, &DELIVERY_COMPONENTS, now, |id| {
                self.storage.device_key(id)
            })?;
            let envelope = Envelope::from_json(req.body)
                .map_err(|e| Refusal::Problem(ProblemType::MalformedBody, Some(e.to_string())))?;
            let key = req
                .header(IDEMPOTENCY_KEY_HEADER)
                .and_then(|h| idempotency_key(&h));
            if key.as_deref() != Some(envelope.handover_id.as_str()) {
                return refuse(ProblemType::IdempotencyKeyMismatch, None);
            }
            let id = envelope.handover_id.clone();
            let _guard = {
                let mut set = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
                if !set.insert(id.clone()) {
                    return refuse(ProblemType::InFlight, None);
                }
                InFlight {
                    set: &self.in_flight,
                    id: id.clone(),
                }
            };
            let sealed = envelope
                .sealed_bytes()
                .map_err(|e| Refusal::Problem(ProblemType::MalformedBody, Some(e.to_string())))?;
            if self.storage.tombstone(&id)?.is_some() {
                return refuse(ProblemType::Withdrawn, None);
            }
            if let Some(held) = self.storage.handover(&id)? {
                let same = held.device_id == v.device_id
                    && held.program_id == envelope.program_id
                    && held.clinic_key_id == envelope.clinic_key_id
                    && held.payload_schema_version == envelope.payload_schema_version
                    && held.sealed == sealed;
                return if same {
                    Ok(Answer::json(200, held.receipt))
                } else {
                    refuse(ProblemType::ConflictingResend, None)
                };
            }
            if !self.programs.contains(&envelope.program_id) {
                return refuse(ProblemType::UnknownProgram, None);
            }
            let Some((_, pair)) = self
                .keys
                .hpke
                .iter()
                .find(|(kid, _)| *kid == envelope.clinic_key_id)
            else {
                return refuse(ProblemType::UnknownClinicKey, None);
            };
            // Opened in memory only, to check it; only the sealed bytes are kept.
            envelope
                .open(pair, now)
                .map_err(|kind| Refusal::Problem(kind, None))?;
            // Deliveries must cover the audit head, so a verified one always carries it.
            let Some(audit_head) = v.audit_head else {
                return refuse(ProblemType::BadSignature, None);
            };
            let received_at = whole_seconds(now);
            let receipt = ReceiptFacts {
                handover_id: id.clone(),
                sealed_sha256: sha256(&sealed),
                received_at,
                hpke_key_id: envelope.clinic_key_id.clone(),
                receipt_key_id: self.keys.receipt_key_id.clone(),
                device_id: v.device_id.clone(),
                audit_head,
            }
            .sign(&self.keys.receipt)
            .to_json();
            let stored = StoredHandover {
                device_id: v.device_id,
                program_id: envelope.program_id,
                clinic_key_id: envelope.clinic_key_id,
                payload_schema_version: envelope.payload_schema_version,
                sealed,
                receipt: receipt.clone(),
            };
            match self
                .storage
                .store_handover(id, stored, received_at.timestamp())?
            {
                Stored::New => Ok(Answer::json(201, receipt)),
                Stored::Withdrawn => refuse(ProblemType::Withdrawn, None),
                Stored::Raced => refuse(ProblemType::InFlight, None),
            }
        })
    }

    /// `POST /v1/withdrawals`.
    pub fn withdraw(&self, req: &Incoming<'_>, now: DateTime<Utc>) -> Answer {
        self.answer(|| {
            let v = self.signed(req, &DELIVERY_COMPONENTS, now, |id| {
                self.storage.device_key(id)
            })?;
            let message = WithdrawalMessage::from_json(req.body)
                .map_err(|e| Refusal::Problem(ProblemType::MalformedBody, Some(e.to_string())))?;
            let canonical = message.to_json();
            let storage = &self.storage;
            if let Some(seen) = storage.withdrawal(&message.withdrawal_id)? {
                return if seen.message == canonical {
                    Ok(Answer::json(200, seen.confirmation))
                } else {
                    refuse(ProblemType::ConflictingWithdrawal, None)
                };
            }
            if !self.programs.contains(&message.program_id) {
                return refuse(ProblemType::UnknownProgram, None);
            }
            let held = storage.handover(&message.handover_id)?;
            let owner = match &held {
                Some(h) => Some(h.device_id.clone()),
                None => storage.tombstone(&message.handover_id)?,
            };
            if owner.is_some_and(|o| o != v.device_id) {
                return refuse(ProblemType::HandoverOfAnotherDevice, None);
            }
            let outcome = if held.is_some() {
                WithdrawalOutcome::Erased
            } else {
                WithdrawalOutcome::NotReceived
            };
            let confirmation = ConfirmationFacts {
                withdrawal_id: message.withdrawal_id.clone(),
                handover_id: message.handover_id.clone(),
                outcome,
                confirmed_at: whole_seconds(now),
                receipt_key_id: self.keys.receipt_key_id.clone(),
                device_id: v.device_id.clone(),
            }
            .sign(&self.keys.receipt)
            .to_json();
            let recorded = storage.withdraw(
                Withdrawal {
                    withdrawal_id: message.withdrawal_id,
                    handover_id: message.handover_id,
                    device_id: v.device_id,
                    held: held.is_some(),
                    message: canonical,
                    confirmation: confirmation.clone(),
                },
                now.timestamp(),
            )?;
            if recorded {
                Ok(Answer::json(201, confirmation))
            } else {
                // The referral or this withdrawal id changed meanwhile: the retry sees it.
                refuse(ProblemType::InFlight, None)
            }
        })
    }

    /// `POST /v1/device-status`: a device's queue health, recorded as received (counts and an
    /// age, nothing personal); 204.
    pub fn report(&self, req: &Incoming<'_>, now: DateTime<Utc>) -> Answer {
        self.answer(|| {
            let v = self.signed(req, &ENROLMENT_COMPONENTS, now, |id| {
                self.storage.device_key(id)
            })?;
            let status = DeviceStatus::from_json(req.body)
                .map_err(|e| Refusal::Problem(ProblemType::MalformedBody, Some(e.to_string())))?;
            self.storage
                .record_status(v.device_id, status.to_json(), now.timestamp())?;
            Ok(Answer {
                status: 204,
                content_type: JSON,
                body: Vec::new(),
                retry_after: None,
            })
        })
    }

    /// `POST /v1/devices`: the request is signed with the key it enrols.
    pub fn enrol(&self, req: &Incoming<'_>, now: DateTime<Utc>) -> Answer {
        self.answer(|| {
            let (request, key) = EnrolmentRequest::from_json(req.body)
                .map_err(|e| Refusal::Problem(ProblemType::MalformedBody, Some(e.to_string())))?;
            let id = device_id(&key);
            let v = self.signed(req, &ENROLMENT_COMPONENTS, now, |keyid| {
                Ok(if keyid == id {
                    DeviceKey::Active(key)
                } else {
                    DeviceKey::Unknown
                })
            });
            let v = match v {
                Err(Refusal::Problem(ProblemType::UnknownDevice, _)) => {
                    return refuse(
                        ProblemType::BadSignature,
                        "keyid is not the device id of the key being enrolled".to_string(),
                    )
                }
                other => other?,
            };
            let code_hash = code_hash(&request.code);
            let answer = |at: i64| {
                EnrolmentAnswer::new(&key, chrono::DateTime::from_timestamp(at, 0).unwrap_or(now))
                    .to_json()
            };
            match self
                .storage
                .enrol(code_hash, v.device_id, key, now.timestamp())?
            {
                Enrolled::New(at) => Ok(Answer::json(201, answer(at))),
                Enrolled::Repeat(at) => Ok(Answer::json(200, answer(at))),
                Enrolled::CodeRefused => refuse(ProblemType::EnrolmentCodeRefused, None),
            }
        })
    }
}

/// The characters of an enrolment code: no 0/O or 1/I look-alikes; 32 of them, so a random byte
/// modulo 32 is unbiased.
const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A new one-time enrolment code, `XXXX-XXXX-XXXX` (60 random bits), read aloud or typed on a
/// phone; it is stored only as [`code_hash`].
pub fn new_enrolment_code() -> Option<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 12];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| char::from(CODE_ALPHABET[usize::from(b % 32)]))
        .collect();
    let groups: Vec<String> = chars.chunks(4).map(|c| c.iter().collect()).collect();
    Some(groups.join("-"))
}

/// The hash a one-time code is stored under: SHA-256 of the code in upper case without dashes
/// or spaces, so "k7qm 4tx2-9hrc" is "K7QM-4TX2-9HRC".
pub fn code_hash(code: &str) -> [u8; 32] {
    let normal: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    sha256(normal.as_bytes())
}

/// An instant as the clinic signs it: whole seconds (the wire form has no fractions).
fn whole_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}
