//! The store's files on disk: created private to the app's user, and a small reserve of space
//! beside the database so that erasing and withdrawing work on a full disk.
//!
//! SQLite creates the `-wal` and `-shm` files with the database file's permissions, so creating
//! the database file 0600 first keeps all three private whatever the umask. The WAL is truncated
//! after every erasing commit, so it holds no spare room: an erasure on a full disk needs space to
//! append its pages, and the reserve gives it that space for the moment it runs.

use super::StoreError;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// How much space the reserve holds: far more than one erasure writes (a few pages of WAL and
/// audit), little enough not to matter on a phone.
const RESERVE_BYTES: usize = 256 * 1024;

/// Creates the database file, owner read/write only, if it does not exist yet. An existing file
/// is not touched here: it is claimed (or refused as someone else's) first, then
/// [`make_private`] tightens it.
pub(crate) fn create_private(path: &Path) -> Result<(), StoreError> {
    if path.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path).map_err(|e| StoreError::Storage {
        reason: format!("cannot create the store file: {e}"),
    })?;
    Ok(())
}

/// Makes a claimed store's files owner read/write only (a store made by a build that created it
/// 0644 is tightened).
#[cfg_attr(not(unix), allow(unused_variables))]
pub(crate) fn make_private(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        let io = |e: std::io::Error| StoreError::Storage {
            reason: format!("cannot restrict the store file: {e}"),
        };
        use std::os::unix::fs::PermissionsExt as _;
        for file in [
            path.to_path_buf(),
            sibling(path, "-wal"),
            sibling(path, "-shm"),
        ] {
            if file.exists() {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                    .map_err(io)?;
            }
        }
    }
    Ok(())
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A file of [`RESERVE_BYTES`] beside the database (`<db>-reserve`), released just before an
/// erasing change and made again after it. Making it may fail on a full disk; then the next
/// erasure simply has no reserve to release, and it is made again once there is room.
pub(crate) struct Reserve {
    path: PathBuf,
}

impl Reserve {
    pub(crate) fn beside(db: &Path) -> Reserve {
        Reserve {
            path: sibling(db, "-reserve"),
        }
    }

    /// Makes the reserve if it is missing or short. Never fails the caller.
    pub(crate) fn make(&self) {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() as usize >= RESERVE_BYTES) {
            return;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let made = options.open(&self.path).and_then(|mut f| {
            f.write_all(&vec![0u8; RESERVE_BYTES])?;
            f.sync_all()
        });
        if made.is_err() {
            // No room for it now: a short file would only pretend.
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Gives the reserve's space back to the file system.
    pub(crate) fn release(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
