//! Delivery through the bindings: enrolment at a clinic, one sync run with a deadline, when the
//! next run is due, and the queue actions (retry, cancel). Each method translates; the core's
//! `sync` does the work. Every call does network I/O (sync and enrol block until done or the
//! deadline): call them off the main thread, from the app's background job.

use crate::error::ApiError;
use crate::language;
use crate::programs::ProgramBundle;
use crate::store::{rfc3339, DeviceStore, WithdrawResult};
use lotsa_core::crypto::PublicKey;
use lotsa_core::sync::{self as core_sync, SyncError, SyncOptions, Timeouts, Trigger};
use lotsa_core::text::Reasoned;
use std::sync::Arc;
use std::time::Duration;

/// How one sync run is done.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncRequest {
    /// The run ends by then (seconds; iOS gives a background task about 30). No request is
    /// started that could not finish in time.
    pub deadline_secs: u32,
    /// The phone just got coverage back: what never reached a clinic is tried at once.
    pub connectivity_restored: bool,
    /// The program administrator's key (base64): given, a newer bundle a clinic serves is
    /// verified, applied and returned in `new_bundle`.
    pub trust_key: Option<String>,
}

/// An item that did not go through, and why (ids, codes and texts; nothing personal).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ItemNote {
    /// Handover or withdrawal id.
    pub id: String,
    /// The program.
    pub program_id: String,
    /// A stable code (a problem code, `network`, `not_enrolled`, `receipt_invalid`, …).
    pub code: String,
    /// A readable reason.
    pub text: String,
}

/// What the app must do before some items can go.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum DeviceAction {
    /// Enrol at this clinic with a one-time code (never enrolled, revoked, or unknown there).
    Enrol {
        /// The clinic's endpoint.
        endpoint: String,
        /// The clinic's name, to show.
        clinic: String,
        /// `not_enrolled`, `device_revoked` or `unknown_device`.
        reason: String,
    },
    /// The phone's clock is too far off for the clinic: show the clinic's time.
    FixClock {
        /// The clinic's `Date` header.
        clinic_date: Option<String>,
    },
}

/// What a run did. A background job maps it to success or retry and schedules the next run at
/// `next_due`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    /// Delivered now; receipts verified, payloads erased.
    pub delivered: Vec<String>,
    /// The clinic had them already; the original receipts verified, payloads erased.
    pub already_delivered: Vec<String>,
    /// Withdrawn at the clinic (410); erased.
    pub withdrawn_at_clinic: Vec<String>,
    /// Refused as they are: kept with the reason; retry or cancel.
    pub failed: Vec<ItemNote>,
    /// To be tried again later.
    pub retrying: Vec<ItemNote>,
    /// Waiting for something the app must do (`actions`).
    pub waiting: Vec<ItemNote>,
    /// What the app must do.
    pub actions: Vec<DeviceAction>,
    /// The run stopped at its deadline with items still due.
    pub stopped_at_deadline: bool,
    /// A newer signed bundle a clinic served, now in force: the app keeps it and loads it.
    pub new_bundle: Option<String>,
    /// When the next run is due (RFC 3339, Stockholm), if anything waits.
    pub next_due: Option<String>,
}

fn sync_error(e: SyncError) -> ApiError {
    let msg = e.message(language());
    match e {
        SyncError::Store(s) => s.into(),
        SyncError::DeviceKeyLost => ApiError::Enrolment {
            code: "device_key_lost".into(),
            msg,
        },
        SyncError::Signing(_) => ApiError::Internal { msg },
        SyncError::Enrolment { code, .. } => match code.as_str() {
            "network" | "timeout" | "untrusted_server" => ApiError::Network { msg },
            _ => ApiError::Enrolment { code, msg },
        },
    }
}

fn note(n: core_sync::ItemNote) -> ItemNote {
    ItemNote {
        id: n.id,
        program_id: n.program_id,
        code: n.code,
        text: n.text,
    }
}

#[uniffi::export]
impl DeviceStore {
    /// Enrols this phone at the clinic of `program_id` with the clinic's one-time code; returns
    /// the device id. `Enrolment` when the clinic refuses the code (`enrolment_code_refused`)
    /// or the phone's key was lost (`device_key_lost`: call `renew_device_key`, then enrol
    /// again everywhere); `Network` when the clinic cannot be reached.
    pub fn enrol(
        &self,
        bundle: Arc<ProgramBundle>,
        program_id: String,
        code: String,
    ) -> Result<String, ApiError> {
        let mut store = self.lock();
        core_sync::enrol(
            &mut store,
            bundle.core(),
            &program_id,
            &code,
            Timeouts::default(),
        )
        .map_err(sync_error)
    }

    /// A new device key after the key store lost the old one; every clinic then needs a new
    /// enrolment code. Returns the new device id. The outbox is untouched.
    pub fn renew_device_key(&self) -> Result<String, ApiError> {
        Ok(self.lock().renew_device_key()?.device_id)
    }

    /// One sync run: sends what is due, verifies receipts, erases what was delivered.
    pub fn sync(
        &self,
        bundle: Arc<ProgramBundle>,
        request: SyncRequest,
    ) -> Result<SyncReport, ApiError> {
        let trust = match &request.trust_key {
            Some(k) => Some(PublicKey::from_b64(k).map_err(|e| {
                ApiError::configuration(
                    "trust_key_invalid",
                    format!("the trust key is not an Ed25519 public key: {e}"),
                )
            })?),
            None => None,
        };
        let options = SyncOptions {
            deadline: Duration::from_secs(u64::from(request.deadline_secs)),
            trigger: if request.connectivity_restored {
                Trigger::ConnectivityRestored
            } else {
                Trigger::Scheduled
            },
            trust,
            ..SyncOptions::default()
        };
        let r = core_sync::sync(&mut self.lock(), bundle.core(), &options).map_err(sync_error)?;
        Ok(SyncReport {
            delivered: r.delivered,
            already_delivered: r.already_delivered,
            withdrawn_at_clinic: r.withdrawn_at_clinic,
            failed: r.failed.into_iter().map(note).collect(),
            retrying: r.retrying.into_iter().map(note).collect(),
            waiting: r.waiting.into_iter().map(note).collect(),
            actions: r
                .actions
                .into_iter()
                .map(|a| match a {
                    core_sync::DeviceAction::Enrol {
                        endpoint,
                        clinic,
                        reason,
                    } => DeviceAction::Enrol {
                        endpoint,
                        clinic,
                        reason,
                    },
                    core_sync::DeviceAction::FixClock { clinic_date } => {
                        DeviceAction::FixClock { clinic_date }
                    }
                })
                .collect(),
            stopped_at_deadline: r.stopped_at_deadline,
            new_bundle: r.new_bundle,
            next_due: r.next_due.map(rfc3339),
        })
    }

    /// When the next sync is due (RFC 3339, Stockholm), for WorkManager or BGTaskScheduler;
    /// `None` when nothing waits.
    pub fn next_sync_due(&self) -> Result<Option<String>, ApiError> {
        Ok(self.lock().next_due()?.map(rfc3339))
    }

    /// Tries a failed or waiting item again at the next sync.
    pub fn retry(&self, id: String) -> Result<(), ApiError> {
        Ok(self.lock().retry_item(&id)?)
    }

    /// Cancels an undelivered referral: erased, and the clinic told if a send was ever tried.
    pub fn cancel(&self, handover_id: String) -> Result<WithdrawResult, ApiError> {
        Ok(self.lock().cancel(&handover_id)?.into())
    }
}
