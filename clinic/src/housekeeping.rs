//! What the service does on its own, once at start and then every hour: it erases the referrals
//! past their retention and the tombstones past theirs ([`crate::retention`]), and forgets the
//! access log lines older than their period (five years unless told otherwise).

use crate::pages::StaffSite;
use crate::worklist::prune_access_log;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;

/// How often the housekeeping runs.
pub const EVERY: Duration = Duration::from_secs(3600);

/// One pass at the current time.
pub fn once(site: &StaffSite, access_log_years: u32) -> Result<(), String> {
    let now = Utc::now();
    let storage = site.intake.storage();
    crate::retention::run(storage, &site.bundle, now).map_err(|e| e.to_string())?;
    prune_access_log(storage, access_log_years, now).map_err(|e| e.to_string())?;
    Ok(())
}

/// Runs [`once`] now and every [`EVERY`] on the current tokio runtime, until aborted; a failure
/// is reported on stderr (without any referral's content) and tried again next time.
pub fn spawn(site: Arc<StaffSite>, access_log_years: u32) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            let site = site.clone();
            let done = tokio::task::spawn_blocking(move || once(&site, access_log_years)).await;
            if !matches!(done, Ok(Ok(()))) {
                eprintln!("lotsa-clinic: housekeeping failed (retention or the access log); trying again in an hour");
            }
        }
    })
}
