//! A nudge without personal data: every so often the service counts the referrals that are new,
//! due soon and overdue, and when any count is above zero it runs the command IT configured
//! (`lotsa clinic serve --notify-command PATH`), so the person on call knows to look at the
//! worklist. The command gets the counts as `LOTSA_NEW`, `LOTSA_DUE_SOON` and `LOTSA_OVERDUE`
//! and as one JSON object on stdin, and nothing else: it can post them to a pager, a chat or a
//! webhook as the municipality does that.

use crate::pages::StaffSite;
use crate::worklist::{Counts, Worklist};
use chrono::{DateTime, Utc};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// The command and how often it may run.
#[derive(Debug, Clone)]
pub struct Notifier {
    /// The program to run (no shell, no arguments).
    pub command: PathBuf,
    /// How often the counts are taken.
    pub every: Duration,
}

/// The JSON the command reads on stdin.
pub fn message(counts: &Counts, at: DateTime<Utc>) -> String {
    serde_json::json!({
        "schema": "lotsa.worklist-counts/1",
        "at": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "new": counts.new,
        "due_soon": counts.due_soon,
        "overdue": counts.overdue,
    })
    .to_string()
}

/// What one round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Nothing waits: no command run.
    Quiet,
    /// The command ran and exited 0.
    Told(Counts),
    /// The command failed or took longer than 30 s: the next round tries again.
    CommandFailed(Counts),
}

/// Counts now and, if any count is above zero, runs the command (waiting at most 30 s for it).
pub fn run_once(
    site: &StaffSite,
    notifier: &Notifier,
    since: i64,
    now: DateTime<Utc>,
) -> Result<Sent, String> {
    let list = Worklist {
        storage: site.intake.storage(),
        keys: &site.keys,
        bundle: &site.bundle,
        log_key: &site.log_key,
    };
    let counts = list.counts(since, now).map_err(|e| e.to_string())?;
    if counts == Counts::default() {
        return Ok(Sent::Quiet);
    }
    let mut child = Command::new(&notifier.command)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LOTSA_NEW", counts.new.to_string())
        .env("LOTSA_DUE_SOON", counts.due_soon.to_string())
        .env("LOTSA_OVERDUE", counts.overdue.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run the notify command: {}", e.kind()))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(message(&counts, now).as_bytes());
    }
    let started = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(Sent::Told(counts)),
            Ok(Some(_)) => return Ok(Sent::CommandFailed(counts)),
            Ok(None) if started.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(Sent::CommandFailed(counts));
            }
        }
    }
}

/// Runs [`run_once`] every `notifier.every` on the current tokio runtime, until the service
/// stops; a failure is reported on stderr without any referral's content.
pub fn spawn(site: Arc<StaffSite>, notifier: Notifier) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut since = Utc::now().timestamp();
        let mut tick = tokio::time::interval(notifier.every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let (site, notifier) = (site.clone(), notifier.clone());
            let now = Utc::now();
            let ran =
                tokio::task::spawn_blocking(move || run_once(&site, &notifier, since, now)).await;
            match ran {
                Ok(Ok(Sent::Quiet | Sent::Told(_))) => since = now.timestamp(),
                Ok(Ok(Sent::CommandFailed(_))) => {
                    eprintln!("lotsa-clinic: the notify command failed; trying again next round")
                }
                Ok(Err(why)) => eprintln!("lotsa-clinic: notification failed: {why}"),
                Err(_) => eprintln!("lotsa-clinic: notification failed"),
            }
        }
    })
}
