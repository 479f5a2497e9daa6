//! The clinic keeps little, briefly. A referral is erased when its program's `clinic_retention`
//! has run out after its first contact was settled (and at once when it is withdrawn, which the
//! intake and the worklist do themselves); what stays is a tombstone, so that a late copy from a
//! phone is refused, and the anonymous outcome counters per program and ISO week. Tombstones
//! are forgotten after [`TOMBSTONE_DAYS`], longer than a phone may still deliver a referral
//! (`MAX_DELIVERY_AGE_DAYS`), so no copy can outlive its tombstone.
//!
//! [`run`] is one pass with a given clock; the service runs it on its own (`housekeeping`).

use crate::storage::{Erased, Storage, StorageError};
use chrono::{DateTime, Utc};
use lotsa_core::program::Bundle;

pub use lotsa_core::protocol::TOMBSTONE_DAYS;

/// Days a settled referral is kept when its program is no longer in the bundle.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// Erases what is due at `now`: settled referrals past their program's retention, and
/// tombstones past theirs. Nothing else is touched.
pub fn run(storage: &Storage, bundle: &Bundle, now: DateTime<Utc>) -> Result<Erased, StorageError> {
    let t = now.timestamp();
    let due: Vec<String> = storage
        .settled()?
        .into_iter()
        .filter(|(_, program_id, settled_at)| {
            let days = bundle
                .program(program_id)
                .and_then(|p| p.clinic_retention)
                .map_or(DEFAULT_RETENTION_DAYS, |r| r.days);
            settled_at + i64::from(days) * 86_400 <= t
        })
        .map(|(id, _, _)| id)
        .collect();
    storage.erase(due, t, t - TOMBSTONE_DAYS * 86_400)
}
