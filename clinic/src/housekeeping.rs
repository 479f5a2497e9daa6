//! What the service does on its own, once at start and then every hour: it forgets the access
//! log lines older than their period (five years unless told otherwise). Erasing referrals past
//! their retention joins this with the retention work.

use crate::intake::Intake;
use crate::worklist::prune_access_log;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;

/// How often the housekeeping runs.
pub const EVERY: Duration = Duration::from_secs(3600);

/// Runs the housekeeping now and every [`EVERY`] on the current tokio runtime, until aborted; a
/// failure is reported on stderr (no personal data is involved) and tried again next time.
pub fn spawn(intake: Arc<Intake>, access_log_years: u32) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            let intake = intake.clone();
            let pruned = tokio::task::spawn_blocking(move || {
                prune_access_log(intake.storage(), access_log_years, Utc::now())
            })
            .await;
            if !matches!(pruned, Ok(Ok(_))) {
                eprintln!(
                    "lotsa-clinic: the access log could not be pruned; trying again in an hour"
                );
            }
        }
    })
}
