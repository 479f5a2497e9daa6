//! The delivery engine: one `sync` run sends what is due, acts on each answer exactly as the
//! protocol's status table says, and reports. The store's lock is never held while a request is
//! on the wire: a batch of items is leased in one short transaction and the batch's results are
//! settled together in another (one commit and one checkpoint for many receipts), so a crash at
//! any moment leaves every item pending (its lease runs out; a resend gets the original receipt),
//! delivered (a verified receipt was kept) or settled otherwise, never lost.

use super::transport::{Timeouts, Transport, TransportError};
use crate::crypto::seal::SealBinding;
use crate::crypto::{sha256, PublicKey};
use crate::program::{Bundle, Clinic};
use crate::protocol::signature::{new_nonce, sign_request};
use crate::protocol::wire::DEVICE_STATUS_SCHEMA;
use crate::protocol::{
    DeviceStatus, Disposition, EnrolmentAnswer, EnrolmentRequest, Envelope, Problem, QueueCounts,
    Receipt, ReceiptFacts, WithdrawalConfirmation, IDEMPOTENCY_KEY_HEADER, JSON,
};
use crate::store::{
    device_key_lost, DeviceIdentity, ItemKind, ItemState, Leased, Settled, Store, StoreError,
    PAYLOAD_SCHEMA_VERSION,
};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// The most items one lease takes (their receipts are recorded in one transaction).
const BATCH_ITEMS: usize = 64;

/// The most payload bytes one lease takes (the phone holds a batch in memory while sending it).
const BATCH_BYTES: usize = 1 << 20;

/// Why a sync runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The platform's scheduler (WorkManager, BGTaskScheduler) at `next_sync_due`.
    Scheduled,
    /// The phone is back in coverage: items whose last attempt never reached the clinic are due
    /// at once.
    ConnectivityRestored,
    /// The officer asked.
    Manual,
}

/// Exponential backoff with full jitter: the `n`th retry waits a random time up to
/// `min(cap, base × 2ⁿ)`, and never less than a `Retry-After` the clinic gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first retry's bound.
    pub base: Duration,
    /// The largest bound.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_secs(30),
            cap: Duration::from_secs(6 * 3600),
        }
    }
}

impl Backoff {
    /// Seconds to wait before retry number `attempts + 1`.
    pub fn delay_secs(&self, attempts: u32, retry_after_secs: Option<u64>) -> i64 {
        let bound = self
            .base
            .saturating_mul(1u32 << attempts.min(20))
            .min(self.cap)
            .as_millis()
            .max(1);
        let mut r = [0u8; 8];
        let random = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut r)
            .map(|()| u64::from_le_bytes(r))
            .unwrap_or(u64::MAX / 2);
        let jittered = (u128::from(random) % (bound + 1)) as i64 / 1000;
        let floor = retry_after_secs.map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX));
        jittered.max(floor).max(1)
    }
}

/// How one run is done.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// The run ends by then (iOS gives a background task about 30 s); no request is started
    /// that could not finish before it.
    pub deadline: Duration,
    /// Why it runs.
    pub trigger: Trigger,
    /// Retry timing.
    pub backoff: Backoff,
    /// Connection and request time limits.
    pub timeouts: Timeouts,
    /// How long an item stays leased to this run (longer than one request).
    pub lease: Duration,
    /// The program administrator's key: a bundle a clinic serves is applied only if it verifies.
    pub trust: Option<PublicKey>,
}

impl Default for SyncOptions {
    fn default() -> SyncOptions {
        SyncOptions {
            deadline: Duration::from_secs(25),
            trigger: Trigger::Scheduled,
            backoff: Backoff::default(),
            timeouts: Timeouts::default(),
            lease: Duration::from_secs(120),
            trust: None,
        }
    }
}

/// One item that did not go through, with why (no personal data: ids, codes and texts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemNote {
    /// Handover or withdrawal id.
    pub id: String,
    /// The program.
    pub program_id: String,
    /// A stable code (a problem code, `network`, `not_enrolled`, …).
    pub code: String,
    /// A readable reason.
    pub text: String,
}

/// What the app must do before some items can go (the run kept them pending).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum DeviceAction {
    /// Enrol at this clinic with a one-time code (never enrolled, revoked, or unknown there).
    Enrol {
        /// The clinic's endpoint.
        endpoint: String,
        /// The clinic's name.
        clinic: String,
        /// Why (`not_enrolled`, `unknown_device`, `device_revoked`).
        reason: String,
    },
    /// The phone's clock is too far off for the clinic to believe its signatures.
    FixClock {
        /// The clinic's `Date`, to show how far off.
        clinic_date: Option<String>,
    },
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Delivered now (201), receipts verified, payloads erased.
    pub delivered: Vec<String>,
    /// The clinic had them already (200 with the original receipt), verified and erased.
    pub already_delivered: Vec<String>,
    /// The clinic says they were withdrawn there (410); erased.
    pub withdrawn_at_clinic: Vec<String>,
    /// Refused as they are (400, 413, 415, 422): kept, with the reason; retry or cancel.
    pub failed: Vec<ItemNote>,
    /// To be tried again later (network, 5xx, 409, 429, a 2xx without a valid receipt).
    pub retrying: Vec<ItemNote>,
    /// Waiting for something the app must do (see `actions`) or a newer bundle.
    pub waiting: Vec<ItemNote>,
    /// What the app must do.
    pub actions: Vec<DeviceAction>,
    /// The run stopped at its deadline with items still due.
    pub stopped_at_deadline: bool,
    /// A newer program bundle a clinic served and this phone now uses (its id).
    pub bundle_updated: Option<String>,
    /// That bundle's signed text: the app keeps it and uses it from now on (the store refuses
    /// the older one from now on).
    #[serde(skip)]
    pub new_bundle: Option<String>,
    /// When the next item is due (unix seconds), if any is waiting.
    pub next_due: Option<i64>,
}

/// Why a run could not happen at all.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vault lost the device key: make a new one (`Store::renew_device_key`) and enrol again.
    #[error("the phone's key store lost the device key: enrol again at each clinic")]
    DeviceKeyLost,
    /// A request could not be signed (a bug: the inputs are the device's own).
    #[error("cannot sign the request: {0}")]
    Signing(String),
    /// The clinic refused the enrolment or it could not be made.
    #[error("enrolment failed: {code}: {text}")]
    Enrolment {
        /// The problem code (or `network`, `untrusted_server`, …).
        code: String,
        /// Why.
        text: String,
    },
}

impl crate::text::Reasoned for SyncError {
    fn code(&self) -> &'static str {
        match self {
            SyncError::Store(e) => e.code(),
            SyncError::DeviceKeyLost => "device_key_lost",
            SyncError::Signing(_) => "signing",
            SyncError::Enrolment { .. } => "enrolment_failed",
        }
    }

    fn message(&self, lang: crate::text::Lang) -> String {
        match self {
            SyncError::Store(e) => e.message(lang),
            SyncError::DeviceKeyLost => lang
                .pick(
                    "Telefonens nyckellager har tappat enhetsnyckeln: registrera telefonen igen hos varje mottagning.",
                    "The phone's key store lost the device key: enrol the phone again at each clinic.",
                )
                .to_string(),
            SyncError::Signing(reason) => lang.pick(
                format!("Begäran gick inte att signera: {reason}"),
                format!("The request could not be signed: {reason}"),
            ),
            SyncError::Enrolment { code, text } => lang.pick(
                format!("Registreringen misslyckades ({code}): {text}"),
                format!("Enrolment failed ({code}): {text}"),
            ),
        }
    }
}

fn identity(store: &mut Store) -> Result<DeviceIdentity, SyncError> {
    store.device_identity().map_err(|e| {
        if device_key_lost(&e) {
            SyncError::DeviceKeyLost
        } else {
            SyncError::Store(e)
        }
    })
}

/// Enrols this device at the clinic of `program_id` with a one-time code.
pub fn enrol(
    store: &mut Store,
    bundle: &Bundle,
    program_id: &str,
    code: &str,
    timeouts: Timeouts,
) -> Result<String, SyncError> {
    let program = crate::referral::find_program(bundle, program_id)
        .map_err(|e| SyncError::Store(StoreError::Referral(e)))?;
    let me = identity(store)?;
    let transport = Transport::for_clinic(&program.clinic, timeouts).map_err(transport_failure)?;
    let body = EnrolmentRequest::new(code, &me.key.public_key()).to_json();
    let headers = signed(&me, &transport, "devices", &body, None, store.now_unix())?;
    let reply = transport
        .post("devices", &headers, &body)
        .map_err(transport_failure)?;
    if !matches!(reply.status, 200 | 201) {
        let (code, text) = problem_of(reply.status, &reply.body);
        return Err(SyncError::Enrolment { code, text });
    }
    let answer = EnrolmentAnswer::from_json(&reply.body).map_err(|e| SyncError::Enrolment {
        code: "bad_answer".into(),
        text: e.to_string(),
    })?;
    if answer.device_id != me.device_id {
        return Err(SyncError::Enrolment {
            code: "bad_answer".into(),
            text: "the clinic enrolled another device id".into(),
        });
    }
    store.record_enrolment(&program.clinic.endpoint, &me.device_id)?;
    Ok(me.device_id)
}

fn transport_failure(e: TransportError) -> SyncError {
    let code = match &e {
        TransportError::Untrusted { .. } => "untrusted_server",
        TransportError::Timeout => "timeout",
        TransportError::Network { .. } => "network",
        TransportError::Config { .. } => "tls_config",
    };
    SyncError::Enrolment {
        code: code.into(),
        text: e.to_string(),
    }
}

type Headers = Vec<(&'static str, String)>;

/// The signed headers of a POST (with the audit head for deliveries).
fn signed(
    me: &DeviceIdentity,
    transport: &Transport,
    path: &str,
    body: &[u8],
    head: Option<&crate::protocol::AuditHead>,
    now: i64,
) -> Result<Headers, SyncError> {
    let nonce = new_nonce().map_err(|e| SyncError::Store(StoreError::Crypto(e)))?;
    let mut headers = sign_request(
        &me.key,
        "POST",
        &transport.url(path),
        body,
        head,
        now,
        &nonce,
    )
    .map_err(|e| SyncError::Signing(e.to_string()))?
    .headers;
    headers.push(("content-type", JSON.to_string()));
    Ok(headers)
}

/// The code and title of a problem answer (or `http_<status>`).
fn problem_of(status: u16, body: &[u8]) -> (String, String) {
    match Problem::from_json(body) {
        Some(p) => (p.code.clone(), p.title.clone()),
        None => (
            format!("http_{status}"),
            format!("the clinic answered HTTP {status}"),
        ),
    }
}

/// One run: sends what is due, settles each attempt, applies a newer bundle the clinics serve.
/// With nothing due it returns at once without touching the network.
pub fn sync(
    store: &mut Store,
    bundle: &Bundle,
    options: &SyncOptions,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    if options.trigger == Trigger::ConnectivityRestored {
        store.connectivity_restored()?;
    }
    let owner = new_nonce().map_err(|e| SyncError::Store(StoreError::Crypto(e)))?;
    let lease = i64::try_from(options.lease.as_secs()).unwrap_or(120);
    let lease_batch = |store: &mut Store, after: Option<&(i64, String)>| {
        store.lease_batch(&owner, lease, after, BATCH_ITEMS, BATCH_BYTES)
    };
    let first = lease_batch(store, None)?;
    if first.is_empty() {
        return Ok(SyncReport {
            next_due: store.next_due()?,
            ..SyncReport::default()
        });
    }
    let me = match identity(store) {
        Ok(me) => me,
        Err(e) => {
            let released = first
                .into_iter()
                .map(|item| (item.id, Settled::Released { reason: None }))
                .collect();
            store.settle_all(&owner, released)?;
            return Err(e);
        }
    };
    let mut run = Run {
        store,
        bundle,
        options,
        owner: &owner,
        me: &me,
        transports: HashMap::new(),
        blocked: BTreeSet::new(),
        clock_off: false,
        reached: BTreeSet::new(),
        report: SyncReport::default(),
        ends: started + options.deadline,
        settled: Vec::new(),
    };
    let mut batch = first;
    let mut after: Option<(i64, String)> = None;
    loop {
        let leased_at = Instant::now();
        for (i, item) in batch.into_iter().enumerate() {
            let left = options.deadline.saturating_sub(started.elapsed());
            // `request` bounds a whole exchange, connection included. After the batch's first
            // item, the lease must outlast the next exchange, or the rest is leased again.
            let lease_left = options.lease.saturating_sub(leased_at.elapsed());
            let out_of_time = left < options.timeouts.request;
            if out_of_time || (i > 0 && lease_left < options.timeouts.request) {
                run.report.stopped_at_deadline |= out_of_time;
                run.settle(&item.id, Settled::Released { reason: None });
                continue;
            }
            after = Some(item.position.clone());
            if let Err(e) = run.attempt(item) {
                // What was settled before the failure is kept; the rest waits for its lease.
                let _ = run.flush();
                return Err(e);
            }
        }
        run.flush()?;
        if options.deadline.saturating_sub(started.elapsed()) < options.timeouts.request {
            let now = run.store.now_unix();
            run.report.stopped_at_deadline |= run.store.next_due()?.is_some_and(|due| due <= now);
            break;
        }
        batch = lease_batch(run.store, after.as_ref())?;
        if batch.is_empty() {
            break;
        }
    }
    run.report_queue()?;
    let reached: Vec<String> = run.reached.iter().cloned().collect();
    let mut report = run.report;
    if let Some(trust) = &options.trust {
        if let Some((id, text)) = fetch_bundle(store, bundle, trust, &reached, options) {
            report.bundle_updated = Some(id);
            report.new_bundle = Some(text);
        }
    }
    report.next_due = store.next_due()?;
    Ok(report)
}

/// A newer bundle from the first clinic reached that serves one, applied through the store's
/// rollback floor: its id and signed text. Anything else (older, invalid, unreachable) is ignored.
fn fetch_bundle(
    store: &mut Store,
    current: &Bundle,
    trust: &PublicKey,
    reached: &[String],
    options: &SyncOptions,
) -> Option<(String, String)> {
    for endpoint in reached {
        let clinic = current
            .programs()
            .iter()
            .find(|p| &p.clinic.endpoint == endpoint)?
            .clinic
            .clone();
        let transport = Transport::for_clinic(&clinic, options.timeouts).ok()?;
        let reply = transport.get("bundle").ok()?;
        if reply.status != 200 {
            continue;
        }
        let text = String::from_utf8(reply.body).ok()?;
        let Ok(offered) = crate::program::verify(&text, trust, chrono::Utc::now()) else {
            continue;
        };
        if offered.payload_sha256() == current.payload_sha256()
            || offered.set().issued_at <= current.set().issued_at
        {
            continue;
        }
        if store.accept_bundle(&offered).is_ok() {
            return Some((offered.set().bundle_id.clone(), text));
        }
    }
    None
}

struct Run<'a> {
    store: &'a mut Store,
    bundle: &'a Bundle,
    options: &'a SyncOptions,
    owner: &'a str,
    me: &'a DeviceIdentity,
    transports: HashMap<String, Transport>,
    /// Endpoints that refused this device (revoked, unknown): their items wait.
    blocked: BTreeSet<String>,
    /// The clinic said the clock is off: nothing more is sent this run.
    clock_off: bool,
    reached: BTreeSet<String>,
    report: SyncReport,
    /// When the run must be over.
    ends: Instant,
    /// How the attempts of the current batch ended, recorded together by [`Run::flush`].
    settled: Vec<(String, Settled)>,
}

impl Run<'_> {
    /// Records an attempt's end with the batch's others.
    fn settle(&mut self, id: &str, how: Settled) {
        self.settled.push((id.to_string(), how));
    }

    /// The batch's ends, in one transaction.
    fn flush(&mut self) -> Result<(), SyncError> {
        let settled = std::mem::take(&mut self.settled);
        Ok(self.store.settle_all(self.owner, settled)?)
    }

    fn note(item: &Leased, code: &str, text: impl Into<String>) -> ItemNote {
        ItemNote {
            id: item.id.clone(),
            program_id: item.program_id.clone(),
            code: code.to_string(),
            text: text.into(),
        }
    }

    fn wait(&mut self, item: &Leased, code: &str, text: String) -> Result<(), SyncError> {
        self.report
            .waiting
            .push(Self::note(item, code, text.clone()));
        self.settle(
            &item.id,
            Settled::Released {
                reason: Some((code.to_string(), text)),
            },
        );
        Ok(())
    }

    fn retry(
        &mut self,
        item: &Leased,
        code: &str,
        text: String,
        network: bool,
        retry_after: Option<u64>,
    ) -> Result<(), SyncError> {
        let at =
            self.store.now_unix() + self.options.backoff.delay_secs(item.attempts, retry_after);
        self.report
            .retrying
            .push(Self::note(item, code, text.clone()));
        self.settle(
            &item.id,
            Settled::Retry {
                at,
                code: code.to_string(),
                text,
                network,
            },
        );
        Ok(())
    }

    fn attempt(&mut self, item: Leased) -> Result<(), SyncError> {
        let Some(program) = self.bundle.program(&item.program_id) else {
            let text = "the program is not in the current bundle".to_string();
            return self.wait(&item, "program_not_in_bundle", text);
        };
        let clinic: Clinic = program.clinic.clone();
        if self.clock_off || self.blocked.contains(&clinic.endpoint) {
            self.settle(&item.id, Settled::Released { reason: None });
            return Ok(());
        }
        if !self.store.is_enrolled(&clinic.endpoint)? {
            self.action(&clinic, "not_enrolled");
            let text = format!("this phone is not enrolled at {}", clinic.name);
            return self.wait(&item, "not_enrolled", text);
        }
        let transport = match self.transports.get(&clinic.endpoint) {
            Some(t) => t,
            None => match Transport::for_clinic(&clinic, self.options.timeouts) {
                Ok(t) => self.transports.entry(clinic.endpoint.clone()).or_insert(t),
                Err(e) => return self.wait(&item, "tls_config", e.to_string()),
            },
        };
        let (path, body) = match item.kind {
            ItemKind::Referral => {
                let Some(key_id) = item.clinic_key_id.as_deref() else {
                    return self.wait(&item, "no_clinic_key", "no HPKE key id".into());
                };
                let binding = SealBinding {
                    handover_id: &item.id,
                    program_id: &item.program_id,
                    clinic_key_id: key_id,
                    schema_version: PAYLOAD_SCHEMA_VERSION,
                };
                (
                    "handovers",
                    Envelope::new(&binding, &item.payload).to_json(),
                )
            }
            ItemKind::Withdrawal => ("withdrawals", item.payload.clone()),
        };
        let now = self.store.now_unix();
        let mut headers = signed(self.me, transport, path, &body, Some(&item.audit_head), now)?;
        if item.kind == ItemKind::Referral {
            headers.push((IDEMPOTENCY_KEY_HEADER, format!("\"{}\"", item.id)));
        }
        let reply = match transport.post(path, &headers, &body) {
            Ok(reply) => reply,
            Err(TransportError::Config { reason }) => {
                return self.wait(&item, "tls_config", reason)
            }
            Err(e @ TransportError::Untrusted { .. }) => {
                return self.retry(&item, "untrusted_server", e.to_string(), true, None)
            }
            Err(e @ TransportError::Timeout) => {
                return self.retry(&item, "timeout", e.to_string(), true, None)
            }
            Err(e @ TransportError::Network { .. }) => {
                return self.retry(&item, "network", e.to_string(), true, None)
            }
        };
        self.reached.insert(clinic.endpoint.clone());
        match Disposition::of_status(reply.status) {
            Disposition::Delivered => match self.verify(&item, &clinic, &reply.body) {
                Ok(()) => {
                    let id = item.id.clone();
                    self.settle(
                        &item.id,
                        Settled::Delivered {
                            receipt: reply.body,
                        },
                    );
                    if reply.status == 201 {
                        self.report.delivered.push(id);
                    } else {
                        self.report.already_delivered.push(id);
                    }
                    Ok(())
                }
                Err(why) => self.retry(&item, "receipt_invalid", why, false, None),
            },
            Disposition::WithdrawnAtClinic => {
                self.report.withdrawn_at_clinic.push(item.id.clone());
                self.settle(&item.id, Settled::WithdrawnAtClinic);
                Ok(())
            }
            Disposition::ItemFails => {
                let (code, text) = problem_of(reply.status, &reply.body);
                self.report
                    .failed
                    .push(Self::note(&item, &code, text.clone()));
                self.settle(&item.id, Settled::Failed { code, text });
                Ok(())
            }
            Disposition::DeviceLevel => {
                let (code, text) = problem_of(reply.status, &reply.body);
                if code == "signature_stale" {
                    self.clock_off = true;
                    self.report.actions.push(DeviceAction::FixClock {
                        clinic_date: reply.date.clone(),
                    });
                } else {
                    self.blocked.insert(clinic.endpoint.clone());
                    self.action(&clinic, &code);
                }
                self.wait(&item, &code, text)
            }
            Disposition::Retry => {
                let (code, text) = problem_of(reply.status, &reply.body);
                self.retry(&item, &code, text, false, reply.retry_after_secs)
            }
        }
    }

    /// Tells each clinic reached how this phone's queue for it stands (best effort: a report
    /// that does not go through is not retried; the next run sends a fresh one).
    fn report_queue(&mut self) -> Result<(), SyncError> {
        if self.reached.is_empty() {
            return Ok(());
        }
        let queue = self.store.queue_status()?;
        let now = self.store.now_unix();
        for endpoint in &self.reached {
            let left = self.ends.saturating_duration_since(Instant::now());
            let Some(transport) = self.transports.get(endpoint) else {
                continue;
            };
            if left < self.options.timeouts.request {
                break;
            }
            let mut counts = QueueCounts::default();
            let mut oldest: Option<i64> = None;
            for item in &queue.items {
                let here = self
                    .bundle
                    .program(&item.program_id)
                    .is_some_and(|p| &p.clinic.endpoint == endpoint);
                if !here {
                    continue;
                }
                match item.state {
                    ItemState::Pending => counts.pending += 1,
                    ItemState::Sending => counts.sending += 1,
                    ItemState::Failed => counts.failed += 1,
                    ItemState::Damaged => counts.damaged += 1,
                    _ => continue,
                }
                if item.state != ItemState::Damaged {
                    oldest = Some(oldest.map_or(item.queued_at, |o| o.min(item.queued_at)));
                }
            }
            let body = DeviceStatus {
                schema: DEVICE_STATUS_SCHEMA.to_string(),
                reported_at: crate::protocol::utc_seconds(
                    chrono::DateTime::from_timestamp(now, 0).unwrap_or_default(),
                ),
                counts,
                oldest_pending_secs: oldest.map(|o| u64::try_from(now - o).unwrap_or(0)),
            }
            .to_json();
            let path = "device-status";
            let headers = signed(self.me, transport, path, &body, None, now)?;
            let _ = transport.post(path, &headers, &body);
        }
        Ok(())
    }

    fn action(&mut self, clinic: &Clinic, reason: &str) {
        let action = DeviceAction::Enrol {
            endpoint: clinic.endpoint.clone(),
            clinic: clinic.name.clone(),
            reason: reason.to_string(),
        };
        if !self.report.actions.contains(&action) {
            self.report.actions.push(action);
        }
    }

    /// Believes an answer only as the protocol says: signed by the bundle's receipt key and
    /// attesting exactly what was sent.
    fn verify(&self, item: &Leased, clinic: &Clinic, body: &[u8]) -> Result<(), String> {
        let key = PublicKey::from_b64(&clinic.receipt_key.public_key)
            .map_err(|_| "the bundle's receipt key is not a key".to_string())?;
        let key_id = &clinic.receipt_key.key_id;
        match item.kind {
            ItemKind::Referral => {
                let sent = ReceiptFacts {
                    handover_id: item.id.clone(),
                    sealed_sha256: sha256(&item.payload),
                    received_at: chrono::Utc::now(),
                    hpke_key_id: item.clinic_key_id.clone().unwrap_or_default(),
                    receipt_key_id: key_id.clone(),
                    device_id: self.me.device_id.clone(),
                    audit_head: item.audit_head,
                };
                Receipt::verify(body, key_id, &key, &sent)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            ItemKind::Withdrawal => {
                let message = crate::protocol::WithdrawalMessage::from_json(&item.payload)
                    .map_err(|e| e.to_string())?;
                WithdrawalConfirmation::verify(
                    body,
                    key_id,
                    &key,
                    (&item.id, &message.handover_id, &self.me.device_id),
                )
                .map(|_| ())
                .map_err(|e| e.to_string())
            }
        }
    }
}
