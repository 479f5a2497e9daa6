//! The clinic's staff: named accounts for the people who phone referred persons back. A
//! password is kept only as an argon2id hash (the PHC string, with its salt and parameters). An
//! account starts with a one-time initial password that the administrator hands over and that
//! must be replaced at the first login; a disabled account can no longer log in.

pub use crate::storage::StaffMember;
use crate::storage::{Storage, StorageError};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use ring::rand::SecureRandom;

/// What staff administration refuses.
#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    /// The name is not 1–64 of `a-z 0-9 . _ -` (what a login field and a log line can carry).
    #[error("a staff name is 1 to 64 of a-z, 0-9, '.', '_' and '-'")]
    BadName,
    /// An account of that name exists.
    #[error("a staff account of that name exists")]
    Exists,
    /// `console`: the access log's name for exports made at the console.
    #[error(
        "'console' is the access log's name for the administrator's exports: choose another name"
    )]
    Reserved,
    /// No account of that name.
    #[error("no staff account has that name")]
    Unknown,
    /// The random number generator or the hash failed.
    #[error("the password could not be made: {0}")]
    Crypto(String),
    /// The database.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The name as stored: trimmed, lowercase, and checked.
pub fn normalize_name(name: &str) -> Result<String, StaffError> {
    let name = name.trim().to_ascii_lowercase();
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(name)
    } else {
        Err(StaffError::BadName)
    }
}

/// The letters of initial passwords: no 0/o, 1/l/i, so it can be read aloud and typed.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A one-time initial password: four groups of four (about 79 bits), `xxxx-xxxx-xxxx-xxxx`.
pub fn initial_password() -> Result<String, StaffError> {
    let rng = ring::rand::SystemRandom::new();
    let mut out = String::with_capacity(19);
    let mut byte = [0u8; 1];
    while out.len() < 19 {
        if out.len() % 5 == 4 {
            out.push('-');
            continue;
        }
        rng.fill(&mut byte)
            .map_err(|_| StaffError::Crypto("no random numbers".into()))?;
        // Rejection sampling keeps every letter equally likely.
        let limit = 256 - 256 % ALPHABET.len();
        if usize::from(byte[0]) < limit {
            out.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

/// The argon2id hash of a password (PHC string; argon2's default parameters: 19 MiB, two
/// passes, one lane, as OWASP recommends at least).
pub fn hash_password(password: &str) -> Result<String, StaffError> {
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| StaffError::Crypto("no random numbers".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| StaffError::Crypto(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StaffError::Crypto(e.to_string()))
}

/// Whether a password matches a stored hash (false for a hash that does not parse).
pub fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Adds an account with a fresh initial password, which is returned (to be shown once).
pub fn add(storage: &Storage, name: &str, now: i64) -> Result<(String, String), StaffError> {
    let name = normalize_name(name)?;
    if name == crate::export::CONSOLE {
        return Err(StaffError::Reserved);
    }
    let password = initial_password()?;
    let hash = hash_password(&password)?;
    if !storage.add_staff(&name, &hash, now)? {
        return Err(StaffError::Exists);
    }
    Ok((name, password))
}

/// Disables an account: it can no longer log in (its sessions end with it).
pub fn disable(storage: &Storage, name: &str, now: i64) -> Result<String, StaffError> {
    let name = normalize_name(name)?;
    if !storage.disable_staff(&name, now)? {
        return Err(StaffError::Unknown);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_login_names_and_nothing_else() {
        assert_eq!(normalize_name("  Anna.B ").unwrap(), "anna.b");
        assert_eq!(normalize_name("nurse_2-night").unwrap(), "nurse_2-night");
        for bad in [
            "",
            " ",
            "anna b",
            "åsa",
            "a\u{202e}b",
            "x".repeat(65).as_str(),
            "a/b",
        ] {
            assert!(
                matches!(normalize_name(bad), Err(StaffError::BadName)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_initial_password_is_four_readable_groups_and_never_the_same_twice() {
        let a = initial_password().unwrap();
        let b = initial_password().unwrap();
        assert_ne!(a, b);
        let groups: Vec<&str> = a.split('-').collect();
        assert_eq!(groups.len(), 4, "{a}");
        assert!(groups
            .iter()
            .all(|g| g.len() == 4 && g.bytes().all(|c| ALPHABET.contains(&c))));
    }

    #[test]
    fn a_password_is_kept_as_an_argon2id_hash_that_only_it_matches() {
        let hash = hash_password("kalas-sommar-42").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(!hash.contains("kalas"));
        assert!(password_matches(&hash, "kalas-sommar-42"));
        assert!(!password_matches(&hash, "kalas-sommar-43"));
        assert!(!password_matches("not a hash", "kalas-sommar-42"));
        // Salted: the same password hashes differently each time.
        assert_ne!(hash, hash_password("kalas-sommar-42").unwrap());
    }
}
