//! The root of trust lives outside the core: this module exists so that no key the core can read
//! ever sits on disk in the clear, and so that the core never derives keys from a PIN.
//!
//! The platform implements [`KeyVault`] with its keystore (Android Keystore, iOS Keychain): one
//! non-exportable, device-bound key per alias, created on the first [`KeyVault::wrap`]. The core
//! hands it its own random keys to wrap and keeps only the wrapped bytes; a phone image without the
//! keystore holds nothing usable.
//!
//! Two vaults ship with the core for places without a keystore:
//! - [`DevFileVault`], for the CLI and tests: keys in files, and it says so loudly on every open;
//! - `MemoryVault`, for the crate's own tests and benches only (the `test-support` feature):
//!   keys in memory, gone with the process.

#[cfg(any(test, feature = "test-support"))]
use std::collections::HashMap;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
#[cfg(any(test, feature = "test-support"))]
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::{aead, hex, random_array, sha256_hex, wipe, CryptoError};

/// The platform's key store, as the core sees it: wrap, unwrap and destroy under an alias.
///
/// Contract for implementations:
/// - `wrap` creates the alias's key on first use (non-exportable, device-bound where the platform
///   can) and returns opaque bytes; wrapping must be authenticated (an AEAD), with the alias bound,
///   so that altered bytes or bytes wrapped under another alias are rejected, never unwrapped to
///   something else;
/// - `unwrap` never creates a key: a missing or invalidated key is [`VaultError::KeyGone`];
/// - `destroy` deletes the key; destroying a missing alias is not an error. Everything wrapped
///   under a destroyed key is unrecoverable (that is the point: crypto-shredding);
/// - a locked device or busy keystore is [`VaultError::Unavailable`], so the core can keep its
///   data and retry later instead of treating the key as lost;
/// - the device's request-signing key (alias `lotsa.device-key`, see the store's
///   `DEVICE_KEY_ALIAS`) must stay usable while the phone is locked once it has been unlocked
///   after boot ("after first unlock": Android Keystore without `setUnlockedDeviceRequired`, iOS
///   `kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly`), so the background job can send what is
///   sealed; the other aliases (the drafts' root keys) may require an unlocked phone.
pub trait KeyVault: Send + Sync {
    /// Encrypts `plaintext` (a key of the core's) under the alias's key, creating that key if needed.
    fn wrap(&self, alias: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError>;
    /// Decrypts bytes made by [`KeyVault::wrap`] under the same alias.
    fn unwrap(&self, alias: &str, wrapped: &[u8]) -> Result<Vec<u8>, VaultError>;
    /// Deletes the alias's key (idempotent).
    fn destroy(&self, alias: &str) -> Result<(), VaultError>;
}

/// What a key vault can report. Each variant carries a reason a person can read; none names the
/// alias or contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The key is gone or permanently invalidated (destroyed, app reinstalled, device lock screen
    /// removed, biometrics changed …): whatever was wrapped under it cannot be recovered.
    #[error("the key is gone or permanently invalidated ({reason}); data wrapped under it cannot be recovered")]
    KeyGone {
        /// Why, in a few words.
        reason: String,
    },
    /// The key exists but cannot be used now (device locked, keystore busy). Retry later; nothing
    /// is lost.
    #[error("the key store is temporarily unavailable ({reason}); try again when the device is unlocked")]
    Unavailable {
        /// Why, in a few words.
        reason: String,
    },
    /// The wrapped bytes were refused: altered, truncated, or wrapped under another alias.
    #[error("the wrapped key was refused: {reason}")]
    Rejected {
        /// Why, in a few words.
        reason: String,
    },
    /// Any other failure of the key store (I/O, platform error).
    #[error("the key store failed: {reason}")]
    Failed {
        /// Why, in a few words.
        reason: String,
    },
}

impl VaultError {
    /// Whether trying again later can help (the device is locked, the keystore busy).
    pub fn is_temporary(&self) -> bool {
        matches!(self, VaultError::Unavailable { .. })
    }
}

/// Format version of the blobs both bundled vaults produce.
const WRAP_VERSION: u8 = 1;

fn wrap_with(key: &[u8; 32], alias: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
    aead::seal(key, WRAP_VERSION, alias.as_bytes(), plaintext).map_err(|e| VaultError::Failed {
        reason: e.to_string(),
    })
}

fn unwrap_with(key: &[u8; 32], alias: &str, wrapped: &[u8]) -> Result<Vec<u8>, VaultError> {
    aead::open(key, WRAP_VERSION, alias.as_bytes(), wrapped, "wrapped key").map_err(|e| match e {
        CryptoError::DoesNotOpen { .. } => VaultError::Rejected {
            reason: "it was altered or was wrapped under another alias".into(),
        },
        other => VaultError::Rejected {
            reason: other.to_string(),
        },
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A development key vault: one random 32-byte key per alias, **in a plain file** under a
/// directory, wrapping with ChaCha20-Poly1305 (fresh random nonce, the alias as associated data).
///
/// For the CLI and tests only. Anyone who can read the directory can unwrap everything, so
/// [`DevFileVault::open`] warns on standard error every time. Key files are named by the SHA-256
/// of the alias (never the alias itself), are created atomically (a crash never leaves half a
/// key) and are readable by the owner only on unix (mode 0600; a directory the vault creates gets
/// 0700, an existing one is left as it is).
#[derive(Debug)]
pub struct DevFileVault {
    dir: PathBuf,
    lock: Mutex<()>,
}

impl DevFileVault {
    /// The fixed part of the warning printed on every open.
    pub const WARNING: &'static str =
        "DEVELOPMENT KEY VAULT: keys are stored in files that anyone \
        who can read them can use to decrypt everything; never use on a real device";

    /// Opens (creating if needed) a vault in `dir` and prints [`DevFileVault::warning`] to
    /// standard error.
    pub fn open(dir: impl AsRef<Path>) -> Result<DevFileVault, VaultError> {
        DevFileVault::open_with_warning(dir, |text| eprintln!("{text}"))
    }

    /// Like [`DevFileVault::open`], handing the warning to `warn` instead of standard error (for
    /// callers with their own output, and for tests that check it is given).
    pub fn open_with_warning(
        dir: impl AsRef<Path>,
        warn: impl FnOnce(&str),
    ) -> Result<DevFileVault, VaultError> {
        let dir = dir.as_ref();
        warn(&DevFileVault::warning(dir));
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(|e| io_failed("creating the vault directory", e))?;
            restrict_dir(dir)?;
        }
        refuse_shared_dir(dir)?;
        let vault = DevFileVault {
            dir: dir.to_path_buf(),
            lock: Mutex::new(()),
        };
        vault.remove_stale_temporaries();
        Ok(vault)
    }

    /// The full warning text for a vault in `dir`.
    pub fn warning(dir: &Path) -> String {
        format!(
            "*** WARNING *** {} (directory: {})",
            DevFileVault::WARNING,
            dir.display()
        )
    }

    /// The directory holding the key files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file_stem(alias: &str) -> String {
        sha256_hex(alias.as_bytes())
    }

    fn key_path(&self, alias: &str) -> PathBuf {
        self.dir
            .join(format!("{}.key", DevFileVault::file_stem(alias)))
    }

    fn load(&self, alias: &str) -> Result<Option<[u8; 32]>, VaultError> {
        let mut bytes = match fs::read(self.key_path(alias)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_failed("reading a key file", e)),
        };
        let key: Result<[u8; 32], _> = bytes.as_slice().try_into();
        wipe(&mut bytes);
        match key {
            Ok(k) => Ok(Some(k)),
            Err(_) => Err(VaultError::KeyGone {
                reason: "the key file is damaged".into(),
            }),
        }
    }

    fn load_or_create(&self, alias: &str) -> Result<[u8; 32], VaultError> {
        if let Some(k) = self.load(alias)? {
            return Ok(k);
        }
        let mut key: [u8; 32] = random_array().map_err(|e| VaultError::Failed {
            reason: e.to_string(),
        })?;
        let suffix: [u8; 8] = random_array().map_err(|e| VaultError::Failed {
            reason: e.to_string(),
        })?;
        let tmp = self.dir.join(format!(
            "{}.{}.tmp",
            DevFileVault::file_stem(alias),
            hex(&suffix)
        ));
        let written = write_new_private(&tmp, &key);
        if let Err(e) = written {
            wipe(&mut key);
            let _ = fs::remove_file(&tmp);
            return Err(io_failed("writing a key file", e));
        }
        // A hard link publishes the complete file atomically and never replaces a key that another
        // process created in the meantime (rename would, losing everything wrapped under it).
        let linked = fs::hard_link(&tmp, self.key_path(alias));
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                sync_dir(&self.dir)?;
                Ok(key)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                wipe(&mut key);
                self.load(alias)?.ok_or_else(|| VaultError::Failed {
                    reason: "a key file vanished while being created".into(),
                })
            }
            Err(e) => {
                wipe(&mut key);
                Err(io_failed("publishing a key file", e))
            }
        }
    }

    /// Shreds temporaries left by a crash during key creation (older than a minute, so that a
    /// creation running in another process right now is left alone).
    fn remove_stale_temporaries(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let cutoff = SystemTime::now() - Duration::from_secs(60);
        for entry in entries.flatten() {
            let path = entry.path();
            let is_tmp = path.extension().is_some_and(|x| x == "tmp");
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < cutoff);
            if is_tmp && old {
                let _ = shred(&path);
            }
        }
    }
}

impl KeyVault for DevFileVault {
    fn wrap(&self, alias: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let _guard = lock(&self.lock);
        let mut key = self.load_or_create(alias)?;
        let out = wrap_with(&key, alias, plaintext);
        wipe(&mut key);
        out
    }

    fn unwrap(&self, alias: &str, wrapped: &[u8]) -> Result<Vec<u8>, VaultError> {
        let _guard = lock(&self.lock);
        let mut key = self.load(alias)?.ok_or_else(|| VaultError::KeyGone {
            reason: "no key under this alias: never created, or destroyed".into(),
        })?;
        let out = unwrap_with(&key, alias, wrapped);
        wipe(&mut key);
        out
    }

    fn destroy(&self, alias: &str) -> Result<(), VaultError> {
        let _guard = lock(&self.lock);
        match shred(&self.key_path(alias)) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_failed("destroying a key file", e)),
        }
    }
}

fn io_failed(doing: &str, e: io::Error) -> VaultError {
    VaultError::Failed {
        reason: format!("{doing}: {e}"),
    }
}

/// Creates `path` (which must not exist) readable by the owner only, writes `bytes`, syncs.
fn write_new_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Overwrites a file with zeros, syncs, then removes it. On flash storage and journaling file
/// systems the old blocks may survive the overwrite; that is why the real vaults keep keys in the
/// platform keystore and erasure means destroying a key, not a file.
fn shred(path: &Path) -> io::Result<()> {
    let len = fs::metadata(path)?.len();
    let mut file = fs::OpenOptions::new().write(true).open(path)?;
    file.write_all(&vec![0u8; usize::try_from(len).unwrap_or(0)])?;
    file.sync_all()?;
    drop(file);
    fs::remove_file(path)
}

#[cfg(unix)]
fn restrict_dir(dir: &Path) -> Result<(), VaultError> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| io_failed("restricting the vault directory", e))
}

#[cfg(not(unix))]
fn restrict_dir(_dir: &Path) -> Result<(), VaultError> {
    Ok(())
}

/// Makes a creation or removal in `dir` durable.
/// A vault folder that others may write to could have its key files swapped or planted: refused.
#[cfg(unix)]
fn refuse_shared_dir(dir: &Path) -> Result<(), VaultError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs::metadata(dir)
        .map_err(|e| io_failed("reading the vault directory", e))?
        .permissions()
        .mode();
    if mode & 0o022 != 0 {
        return Err(VaultError::Failed {
            reason: format!(
                "the vault directory can be written by other users (mode {:o}); make it 0700",
                mode & 0o777
            ),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_shared_dir(_dir: &Path) -> Result<(), VaultError> {
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), VaultError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_failed("syncing the vault directory", e))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), VaultError> {
    Ok(())
}

/// An in-memory key vault **for tests only**: keys live in the process and die with it (or with
/// [`KeyVault::destroy`]). [`MemoryVault::set_unavailable`] simulates a locked device.
#[derive(Default)]
#[cfg(any(test, feature = "test-support"))]
pub struct MemoryVault {
    keys: Mutex<HashMap<String, [u8; 32]>>,
    unavailable: AtomicBool,
    screen_locked: AtomicBool,
    open_while_locked: Mutex<Vec<String>>,
}

#[cfg(any(test, feature = "test-support"))]
impl std::fmt::Debug for MemoryVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryVault")
            .field("aliases", &lock(&self.keys).len())
            .field("unavailable", &self.unavailable.load(Ordering::SeqCst))
            .finish()
    }
}

#[cfg(any(test, feature = "test-support"))]
impl MemoryVault {
    /// An empty vault.
    pub fn new() -> MemoryVault {
        MemoryVault::default()
    }

    /// While set, every call fails with [`VaultError::Unavailable`] (a locked device).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// A locked screen as the `KeyVault` contract describes it: while set, every alias but the
    /// "after first unlock" ones given is unavailable.
    pub fn set_screen_locked(&self, locked: bool, after_first_unlock: &[&str]) {
        *lock(&self.open_while_locked) = after_first_unlock.iter().map(|a| a.to_string()).collect();
        self.screen_locked.store(locked, Ordering::SeqCst);
    }

    fn check(&self, alias: &str) -> Result<(), VaultError> {
        if self.screen_locked.load(Ordering::SeqCst)
            && !lock(&self.open_while_locked).iter().any(|a| a == alias)
        {
            return Err(VaultError::Unavailable {
                reason: "the test vault's screen is locked".into(),
            });
        }
        self.check_available()
    }

    fn check_available(&self) -> Result<(), VaultError> {
        if self.unavailable.load(Ordering::SeqCst) {
            Err(VaultError::Unavailable {
                reason: "the test vault is set to unavailable".into(),
            })
        } else {
            Ok(())
        }
    }
}

#[cfg(any(test, feature = "test-support"))]
impl Drop for MemoryVault {
    fn drop(&mut self) {
        for key in lock(&self.keys).values_mut() {
            wipe(key);
        }
    }
}

#[cfg(any(test, feature = "test-support"))]
impl KeyVault for MemoryVault {
    fn wrap(&self, alias: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.check(alias)?;
        let mut keys = lock(&self.keys);
        let key = match keys.get(alias) {
            Some(k) => *k,
            None => {
                let k = random_array().map_err(|e| VaultError::Failed {
                    reason: e.to_string(),
                })?;
                keys.insert(alias.to_string(), k);
                k
            }
        };
        wrap_with(&key, alias, plaintext)
    }

    fn unwrap(&self, alias: &str, wrapped: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.check(alias)?;
        let keys = lock(&self.keys);
        let key = keys.get(alias).ok_or_else(|| VaultError::KeyGone {
            reason: "no key under this alias: never created, or destroyed".into(),
        })?;
        unwrap_with(key, alias, wrapped)
    }

    fn destroy(&self, alias: &str) -> Result<(), VaultError> {
        self.check_available()?;
        if let Some(mut key) = lock(&self.keys).remove(alias) {
            wipe(&mut key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let suffix: [u8; 8] = random_array().unwrap();
            let p = std::env::temp_dir().join(format!("lotsa-vault-{tag}-{}", hex(&suffix)));
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn quiet(dir: &Path) -> DevFileVault {
        DevFileVault::open_with_warning(dir, |_| {}).unwrap()
    }

    #[test]
    fn dev_vault_warns_on_every_open() {
        let tmp = TempDir::new("warn");
        for _ in 0..2 {
            let mut seen = Vec::new();
            DevFileVault::open_with_warning(&tmp.0, |w| seen.push(w.to_string())).unwrap();
            assert_eq!(seen.len(), 1);
            assert!(seen[0].contains(DevFileVault::WARNING));
            assert!(seen[0].contains("DEVELOPMENT KEY VAULT"));
            assert!(seen[0].contains("never use on a real device"));
            assert!(seen[0].contains(&tmp.0.display().to_string()));
        }
        // The plain `open` prints it to standard error; it must still open.
        DevFileVault::open(&tmp.0).unwrap();
    }

    #[test]
    fn dev_vault_round_trips_across_reopen_and_destroy_shreds() {
        let tmp = TempDir::new("rt");
        let alias = "lotsa.root.7";
        let wrapped = quiet(&tmp.0).wrap(alias, b"secret key bytes").unwrap();
        assert!(!wrapped
            .windows(b"secret".len())
            .any(|w| w == b"secret".as_slice()));

        let again = quiet(&tmp.0);
        assert_eq!(again.unwrap(alias, &wrapped).unwrap(), b"secret key bytes");
        // A second wrap under the same alias uses the same key (no new file).
        let wrapped2 = again.wrap(alias, b"other").unwrap();
        assert_eq!(fs::read_dir(&tmp.0).unwrap().count(), 1);
        assert_eq!(again.unwrap(alias, &wrapped2).unwrap(), b"other");

        again.destroy(alias).unwrap();
        assert_eq!(fs::read_dir(&tmp.0).unwrap().count(), 0);
        assert!(matches!(
            quiet(&tmp.0).unwrap(alias, &wrapped),
            Err(VaultError::KeyGone { .. })
        ));
        // Destroying again is fine.
        again.destroy(alias).unwrap();
        // Wrapping after destroy creates a new key: the old wrapped bytes stay dead.
        again.wrap(alias, b"new").unwrap();
        assert!(matches!(
            again.unwrap(alias, &wrapped),
            Err(VaultError::Rejected { .. })
        ));
    }

    #[test]
    fn dev_vault_file_names_never_contain_the_alias() {
        let tmp = TempDir::new("names");
        let vault = quiet(&tmp.0);
        let aliases = [
            "lotsa.root.1",
            "device-identity",
            "Kalle Anka 19121212-1212",
        ];
        for a in aliases {
            vault.wrap(a, b"k").unwrap();
        }
        let names: Vec<String> = fs::read_dir(&tmp.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), aliases.len());
        for name in &names {
            let lower = name.to_lowercase();
            for a in aliases {
                for part in a.split(['.', ' ', '-']) {
                    if part.len() >= 4 && !part.chars().all(|c| c.is_ascii_hexdigit()) {
                        assert!(
                            !lower.contains(&part.to_lowercase()),
                            "{name} contains {part}"
                        );
                    }
                }
            }
            assert!(name.ends_with(".key"));
            assert_eq!(name.len(), 64 + 4);
        }
        for a in aliases {
            let expected = format!("{}.key", sha256_hex(a.as_bytes()));
            assert!(names.contains(&expected));
        }
    }

    #[cfg(unix)]
    #[test]
    fn dev_vault_key_files_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = TempDir::new("perm");
        let vault = quiet(&tmp.0);
        vault.wrap("a", b"k").unwrap();
        let dir_mode = fs::metadata(&tmp.0).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        for e in fs::read_dir(&tmp.0).unwrap() {
            let mode = e.unwrap().metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn dev_vault_refuses_wrong_alias_and_altered_bytes() {
        let tmp = TempDir::new("wrong");
        let vault = quiet(&tmp.0);
        let wrapped = vault.wrap("lotsa.root.1", b"root key").unwrap();
        vault.wrap("lotsa.root.2", b"other root").unwrap();
        // Another alias with a key: refused (different key, and the alias is the AAD).
        assert!(matches!(
            vault.unwrap("lotsa.root.2", &wrapped),
            Err(VaultError::Rejected { .. })
        ));
        // An alias with no key: gone.
        assert!(matches!(
            vault.unwrap("lotsa.root.3", &wrapped),
            Err(VaultError::KeyGone { .. })
        ));
        for i in 0..wrapped.len() {
            let mut bad = wrapped.clone();
            bad[i] ^= 0x80;
            assert!(matches!(
                vault.unwrap("lotsa.root.1", &bad),
                Err(VaultError::Rejected { .. })
            ));
        }
        assert!(matches!(
            vault.unwrap("lotsa.root.1", &wrapped[..10]),
            Err(VaultError::Rejected { .. })
        ));
        // A damaged key file is a lost key, not garbage output.
        let path = vault.key_path("lotsa.root.1");
        fs::write(&path, b"short").unwrap();
        assert!(matches!(
            vault.unwrap("lotsa.root.1", &wrapped),
            Err(VaultError::KeyGone { .. })
        ));
    }

    #[test]
    fn dev_vault_shares_keys_between_instances_and_threads() {
        let tmp = TempDir::new("threads");
        let vault = std::sync::Arc::new(quiet(&tmp.0));
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let v = vault.clone();
                std::thread::spawn(move || v.wrap("shared", &[i]).unwrap())
            })
            .collect();
        let wrapped: Vec<Vec<u8>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let other = quiet(&tmp.0);
        for (i, w) in wrapped.iter().enumerate() {
            assert_eq!(other.unwrap("shared", w).unwrap(), vec![i as u8]);
        }
    }

    #[test]
    fn memory_vault_behaves_like_a_vault() {
        let vault = MemoryVault::new();
        let w = vault.wrap("a", b"key a").unwrap();
        assert_eq!(vault.unwrap("a", &w).unwrap(), b"key a");
        assert!(matches!(
            vault.unwrap("b", &w),
            Err(VaultError::KeyGone { .. })
        ));
        vault.wrap("b", b"key b").unwrap();
        assert!(matches!(
            vault.unwrap("b", &w),
            Err(VaultError::Rejected { .. })
        ));
        vault.set_unavailable(true);
        let err = vault.unwrap("a", &w).unwrap_err();
        assert!(err.is_temporary());
        assert!(err.to_string().contains("unlocked"));
        vault.set_unavailable(false);
        assert_eq!(vault.unwrap("a", &w).unwrap(), b"key a");
        vault.destroy("a").unwrap();
        let err = vault.unwrap("a", &w).unwrap_err();
        assert!(matches!(err, VaultError::KeyGone { .. }));
        assert!(!err.is_temporary());
    }

    #[cfg(unix)]
    #[test]
    fn a_vault_folder_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("lotsa-vault-shared-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        for mode in [0o777, 0o770, 0o722] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
            let err = DevFileVault::open_with_warning(&dir, |_| {}).unwrap_err();
            assert!(err.to_string().contains("other users"), "{mode:o}: {err}");
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(DevFileVault::open_with_warning(&dir, |_| {}).is_ok());
        let _ = fs::remove_dir_all(&dir);
    }
}
