//! Backup and restore of a whole clinic: a consistent copy of the database plus every key and
//! certificate file, in one file encrypted under a passphrase, for offline storage. Losing the
//! HPKE keys makes every stored referral unreadable, so they travel with the database.
//!
//! Format: `LOTSA-CLINIC-BACKUP/1\n`, a 16-byte salt, the PBKDF2-HMAC-SHA256 iteration count
//! (u32, big-endian), a 12-byte nonce, then ChaCha20-Poly1305 ciphertext (the header before it is
//! the associated data) of a JSON document `{schema, created_at, files: {path: base64}}`. All of it
//! from ring: no further crate.

use crate::home::{create_private_dir, write_private, Home, HomeError};
use crate::storage::{Storage, StorageError};
use chrono::{DateTime, SecondsFormat, Utc};
use lotsa_core::crypto::{b64, unb64};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::{Component, Path, PathBuf};

const MAGIC: &[u8] = b"LOTSA-CLINIC-BACKUP/1\n";
const SCHEMA: &str = "lotsa.clinic-backup/1";
/// OWASP's 2023 figure for PBKDF2-HMAC-SHA256.
const ITERATIONS: u32 = 600_000;
/// A passphrase shorter than this is refused.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The clinic directory.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The database copy.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Too short a passphrase.
    #[error("the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters")]
    WeakPassphrase,
    /// Not a backup, a damaged one, or the wrong passphrase (the cipher cannot tell which).
    #[error("this is not a Lotsa clinic backup, it is damaged, or the passphrase is wrong")]
    Unreadable,
    /// The random number generator failed.
    #[error("the system's random number generator failed")]
    Random,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Contents {
    schema: String,
    created_at: String,
    files: BTreeMap<String, String>,
}

fn key(passphrase: &str, salt: &[u8], iterations: u32) -> Result<LessSafeKey, BackupError> {
    let rounds = NonZeroU32::new(iterations).ok_or(BackupError::Unreadable)?;
    let mut bytes = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        passphrase.as_bytes(),
        &mut bytes,
    );
    let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| BackupError::Unreadable)?;
    Ok(LessSafeKey::new(key))
}

/// Writes an encrypted backup of a clinic directory (taken while the service may be running).
pub fn write(
    home: &Home,
    storage: &Storage,
    out: &Path,
    passphrase: &str,
    now: DateTime<Utc>,
) -> Result<(), BackupError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(BackupError::WeakPassphrase);
    }
    let mut files = BTreeMap::new();
    for rel in home.key_files()? {
        let path = home.dir().join(&rel);
        let bytes = std::fs::read(&path).map_err(|e| HomeError::Io {
            path: path.display().to_string(),
            reason: e.kind().to_string(),
        })?;
        files.insert(rel.to_string_lossy().into_owned(), b64(&bytes));
    }
    // The database copy is made beside the backup's target, read, and removed.
    let copy = out.with_extension("db-copy");
    let _ = std::fs::remove_file(&copy);
    storage.copy_to(&copy)?;
    let db = std::fs::read(&copy);
    let _ = std::fs::remove_file(&copy);
    let db = db.map_err(|e| HomeError::Io {
        path: copy.display().to_string(),
        reason: e.kind().to_string(),
    })?;
    files.insert("clinic.db".into(), b64(&db));
    let contents = Contents {
        schema: SCHEMA.into(),
        created_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        files,
    };
    let mut plaintext = serde_json::to_vec(&contents).map_err(|_| BackupError::Unreadable)?;

    let rng = SystemRandom::new();
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    rng.fill(&mut salt).map_err(|_| BackupError::Random)?;
    rng.fill(&mut nonce).map_err(|_| BackupError::Random)?;
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&salt);
    header.extend_from_slice(&ITERATIONS.to_be_bytes());
    header.extend_from_slice(&nonce);
    key(passphrase, &salt, ITERATIONS)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&header),
            &mut plaintext,
        )
        .map_err(|_| BackupError::Unreadable)?;
    header.extend_from_slice(&plaintext);
    Ok(write_private(out, &header)?)
}

/// Restores a backup into a new, empty directory.
pub fn restore(backup: &Path, dir: &Path, passphrase: &str) -> Result<Vec<PathBuf>, BackupError> {
    let bytes = std::fs::read(backup).map_err(|e| HomeError::Io {
        path: backup.display().to_string(),
        reason: e.kind().to_string(),
    })?;
    let header_len = MAGIC.len() + 16 + 4 + 12;
    if bytes.len() < header_len || !bytes.starts_with(MAGIC) {
        return Err(BackupError::Unreadable);
    }
    let (header, sealed) = bytes.split_at(header_len);
    let salt = &header[MAGIC.len()..MAGIC.len() + 16];
    let mut count = [0u8; 4];
    count.copy_from_slice(&header[MAGIC.len() + 16..MAGIC.len() + 20]);
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&header[MAGIC.len() + 20..]);
    let mut sealed = sealed.to_vec();
    let plaintext = key(passphrase, salt, u32::from_be_bytes(count))?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(header),
            &mut sealed,
        )
        .map_err(|_| BackupError::Unreadable)?;
    let contents: Contents =
        serde_json::from_slice(plaintext).map_err(|_| BackupError::Unreadable)?;
    if contents.schema != SCHEMA {
        return Err(BackupError::Unreadable);
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(|e| HomeError::Io {
                path: dir.display().to_string(),
                reason: e.kind().to_string(),
            })?
            .next()
            .is_some()
    {
        return Err(HomeError::NotEmpty(dir.display().to_string()).into());
    }
    let mut written = Vec::new();
    for (rel, data) in &contents.files {
        let rel = Path::new(rel);
        // Only plain relative paths inside the directory.
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(BackupError::Unreadable);
        }
        let bytes = unb64(data, "file").map_err(|_| BackupError::Unreadable)?;
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            create_private_dir(parent)?;
        }
        write_private(&path, &bytes)?;
        written.push(rel.to_path_buf());
    }
    Ok(written)
}
