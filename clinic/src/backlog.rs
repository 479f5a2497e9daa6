//! Which phones sit on undelivered referrals. Each phone reports its queue for this clinic at
//! every sync (counts by state and the oldest waiting age: nothing about any person); a phone
//! that had referrals waiting and has been silent longer than the shortest callback promise of
//! the clinic's programs is flagged, because someone is waiting for a call that cannot come.

use crate::deadline::deadline;
use crate::storage::DeviceRecord;
use chrono::{DateTime, Utc};
use lotsa_core::program::{Bundle, CallbackWithin};
use lotsa_core::protocol::DeviceStatus;

/// The promise used when no program gives one.
const DEFAULT_PROMISE: CallbackWithin = CallbackWithin::Hours(24);

/// One enrolled phone, as the administrator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceView {
    /// The device id.
    pub device_id: String,
    /// When it enrolled.
    pub enrolled_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// Referrals it delivered that are held now.
    pub held: i64,
    /// When it last reported.
    pub last_seen_at: Option<i64>,
    /// Its last report, if it made one that parses.
    pub backlog: Option<DeviceStatus>,
    /// It had referrals waiting and has been silent past the shortest promise.
    pub silent_with_backlog: bool,
}

/// The waiting referrals of a report: pending, sending and failed (not the damaged ones).
pub fn waiting(status: &DeviceStatus) -> u64 {
    status.counts.pending + status.counts.sending + status.counts.failed
}

/// The devices with their backlog and flag, for the programs of `bundle` served at `endpoint`.
pub fn view(
    devices: Vec<DeviceRecord>,
    bundle: Option<&Bundle>,
    endpoint: &str,
    now: DateTime<Utc>,
) -> Vec<DeviceView> {
    let promises: Vec<CallbackWithin> = bundle
        .map(|b| {
            b.programs()
                .iter()
                .filter(|p| p.clinic.endpoint == endpoint)
                .filter_map(|p| p.callback_within)
                .collect()
        })
        .unwrap_or_default();
    devices
        .into_iter()
        .map(|d| {
            let backlog = d
                .backlog
                .as_deref()
                .and_then(|b| DeviceStatus::from_json(b.as_bytes()).ok());
            let silent_with_backlog = match (&backlog, d.last_seen_at, d.revoked_at) {
                (Some(status), Some(seen), None) if waiting(status) > 0 => {
                    let seen = DateTime::from_timestamp(seen, 0).unwrap_or(now);
                    let earliest = promises
                        .iter()
                        .map(|p| deadline(seen, *p))
                        .min()
                        .unwrap_or_else(|| deadline(seen, DEFAULT_PROMISE));
                    now > earliest
                }
                _ => false,
            };
            DeviceView {
                device_id: d.device_id,
                enrolled_at: d.enrolled_at,
                revoked_at: d.revoked_at,
                held: d.held,
                last_seen_at: d.last_seen_at,
                backlog,
                silent_with_backlog,
            }
        })
        .collect()
}
