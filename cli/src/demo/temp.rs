//! The demo's temporary folder: everything a run makes (the phone's store and vault, both
//! clinics' keys and databases) lives in one owner-only folder that never outlives the run —
//! removed at the end, on a signal, or by the next run when a run was killed.

use crate::out::{self, Ctx, Failure};
use lotsa_core::referral::new_referral_id;
use lotsa_core::text::Lang;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The name of every demo folder in the temp dir: `lotsa-demo-<uuid>`.
const DEMO_PREFIX: &str = "lotsa-demo-";

/// The file in a demo folder that names the process using it.
const OWNER_FILE: &str = "owner.pid";

/// A demo folder without a live owner this old is left over from a run that was killed.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// The folder to remove if the demo is interrupted (SIGINT, SIGTERM, SIGHUP).
static ON_SIGNAL: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The demo's folder: the phone (a store and a development key vault) and both clinics, removed
/// at the end, on SIGINT/SIGTERM/SIGHUP, or — after a SIGKILL or a crash — by the next demo run.
pub struct TempFolder {
    pub dir: PathBuf,
}

impl TempFolder {
    pub fn new(ctx: &Ctx) -> Result<TempFolder, Failure> {
        let temp = std::env::temp_dir();
        sweep_stale(&temp);
        let dir = temp.join(format!("{DEMO_PREFIX}{}", new_referral_id()));
        // Named before it exists, so a signal from here on removes it.
        if let Ok(mut slot) = ON_SIGNAL.lock() {
            *slot = Some(dir.clone());
        }
        // Only the first demo of a process installs the handler (there is only one).
        let _ = ctrlc::set_handler(|| {
            if let Ok(slot) = ON_SIGNAL.lock() {
                if let Some(dir) = slot.as_ref() {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            // 128 + SIGINT: interrupted, whichever of the signals it was.
            std::process::exit(130);
        });
        let device = TempFolder { dir };
        let mut folder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            // It holds keys, drafts and referrals: the user's own.
            folder.mode(0o700);
        }
        folder
            .create(&device.dir)
            .and_then(|()| {
                std::fs::write(
                    device.dir.join(OWNER_FILE),
                    format!("{}\n", std::process::id()),
                )
            })
            .map_err(|e| {
                let d = device.dir.display();
                Failure::other(
                    "io",
                    ctx.lang.pick(
                        format!("{d} går inte att skapa: {}", out::io_reason(&e, Lang::Sv)),
                        format!("cannot create {d}: {}", out::io_reason(&e, Lang::En)),
                    ),
                )
            })?;
        Ok(device)
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        let mut slot = ON_SIGNAL.lock().ok();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(slot) = slot.as_mut() {
            **slot = None;
        }
    }
}

/// `lotsa-demo-` and a UUID in its usual form: only such folders are ever swept.
fn is_demo_folder(name: &str) -> bool {
    let Some(id) = name.strip_prefix(DEMO_PREFIX) else {
        return false;
    };
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Removes the demo folders earlier runs left behind (killed with SIGKILL, or crashed): those
/// whose owner process is gone, and those without a live owner older than [`STALE_AFTER`]. Only
/// folders (never links) named as the demo names them, and on unix only the user's own.
fn sweep_stale(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_str().is_some_and(is_demo_folder) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || !owned_by_me(&meta) {
            continue;
        }
        let owner = std::fs::read_to_string(path.join(OWNER_FILE))
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok());
        let stale = match owner.map(process_alive) {
            Some(Some(alive)) => !alive,
            // No owner named, or no way to tell: by age.
            _ => meta
                .modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_AFTER),
        };
        if stale {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

#[cfg(unix)]
fn owned_by_me(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    meta.uid() == unsafe { libc::geteuid() }
}

#[cfg(not(unix))]
fn owned_by_me(_: &std::fs::Metadata) -> bool {
    true
}

/// Whether the process `pid` runs (`None`: cannot tell).
#[cfg(unix)]
fn process_alive(pid: u32) -> Option<bool> {
    let pid = libc::pid_t::try_from(pid).ok().filter(|p| *p > 0)?;
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return Some(true);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ESRCH) => Some(false),
        // EPERM: it exists, under another user.
        _ => Some(true),
    }
}

#[cfg(not(unix))]
fn process_alive(_: u32) -> Option<bool> {
    None
}
