//! Staff sessions: who is logged in on which browser. A session is a random token in an
//! `HttpOnly; Secure; SameSite=Strict` cookie; the service keeps only the token's SHA-256, the
//! staff name, a CSRF token for its forms and when it was last used. A session ends at logout,
//! after a period without use, when its account is disabled, and when the service restarts.
//!
//! Failed logins are throttled per name: after [`MAX_FAILURES`] in [`FAILURE_WINDOW_SECS`], that
//! name cannot log in until the window has passed, whatever the password.

use crate::staff::password_matches;
use crate::storage::{Storage, StorageError};
use lotsa_core::crypto::{hex, sha256};
use ring::rand::SecureRandom;
use std::collections::HashMap;
use std::sync::Mutex;

/// Failed logins of one name that lock it for the rest of the window.
pub const MAX_FAILURES: usize = 5;

/// The window over which failed logins count, and how long a lock lasts.
pub const FAILURE_WINDOW_SECS: i64 = 15 * 60;

/// How long a session lasts without use.
pub const IDLE_SECS: i64 = 30 * 60;

/// A logged-in staff member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The staff member's login name.
    pub staff: String,
    /// The token every form of this session carries.
    pub csrf: String,
    /// The initial password is still to be replaced: nothing else is allowed until it is.
    pub must_change_password: bool,
    last_used: i64,
}

/// Why a login was refused. The page says the same for each: no one learns which names exist.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong name or password, or a disabled account.
    #[error("wrong name or password")]
    Refused,
    /// Too many failures for this name lately.
    #[error("too many failed logins; try again later")]
    Throttled,
    /// The random number generator failed.
    #[error("no random numbers")]
    Random,
    /// The database.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The sessions of one running service.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, Vec<i64>>>,
}

/// 32 random bytes in hex.
pub fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(hex(&bytes))
}

fn key(token: &str) -> String {
    hex(&sha256(token.as_bytes()))
}

impl Sessions {
    /// Checks a name and password; on success a new session and its cookie token.
    pub fn login(
        &self,
        storage: &Storage,
        name: &str,
        password: &str,
        now: i64,
    ) -> Result<(String, Session), LoginError> {
        let name = name.trim().to_ascii_lowercase();
        {
            let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            let recent = failures.entry(name.clone()).or_default();
            recent.retain(|at| now - at < FAILURE_WINDOW_SECS);
            if recent.len() >= MAX_FAILURES {
                return Err(LoginError::Throttled);
            }
        }
        let account = storage.staff_login(&name)?;
        let ok = match &account {
            Some((member, hash)) => {
                member.disabled_at.is_none() && password_matches(hash, password)
            }
            // The same work for an unknown name, so timing does not tell names apart.
            None => {
                let _ = password_matches(dummy_hash(), password);
                false
            }
        };
        let Some((member, _)) = account.filter(|_| ok) else {
            self.failures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(name)
                .or_default()
                .push(now);
            return Err(LoginError::Refused);
        };
        storage.record_login(&member.name, now)?;
        let token = random_token().ok_or(LoginError::Random)?;
        let session = Session {
            staff: member.name,
            csrf: random_token().ok_or(LoginError::Random)?,
            must_change_password: member.must_change_password,
            last_used: now,
        };
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key(&token), session.clone());
        Ok((token, session))
    }

    /// The session of a cookie token, if it is live (and its account not disabled); using it
    /// keeps it alive.
    pub fn get(&self, storage: &Storage, token: &str, now: i64) -> Option<Session> {
        let k = key(token);
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let session = live.get_mut(&k)?;
        let active = storage
            .staff_login(&session.staff)
            .ok()
            .flatten()
            .is_some_and(|(m, _)| m.disabled_at.is_none());
        if now - session.last_used > IDLE_SECS || !active {
            live.remove(&k);
            return None;
        }
        session.last_used = now;
        Some(session.clone())
    }

    /// The password was changed: the session may do everything now.
    pub fn password_changed(&self, token: &str) {
        if let Some(s) = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&key(token))
        {
            s.must_change_password = false;
        }
    }

    /// Ends a session.
    pub fn logout(&self, token: &str) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key(token));
    }
}

/// An argon2id hash of a random password, to spend the same time on an unknown name.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        crate::staff::hash_password(&random_token().unwrap_or_default()).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(name: &str) -> (Storage, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("lotsa-sessions-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        (Storage::open(&dir.join("clinic.db")).unwrap(), dir)
    }

    #[test]
    fn a_session_ends_after_half_an_hour_unused_and_at_logout_but_use_keeps_it_alive() {
        let (storage, dir) = storage("idle");
        let (_, password) = crate::staff::add(&storage, "anna", 1_000).unwrap();
        let sessions = Sessions::default();
        let t0 = 2_000_000;
        let (token, session) = sessions.login(&storage, "anna", &password, t0).unwrap();
        assert!(session.must_change_password);
        // Used every 20 minutes for two hours: still alive.
        let mut t = t0;
        for _ in 0..6 {
            t += 20 * 60;
            assert!(sessions.get(&storage, &token, t).is_some(), "at {t}");
        }
        // Then unused for longer than the idle period: gone, and gone for good.
        assert!(sessions.get(&storage, &token, t + IDLE_SECS + 1).is_none());
        assert!(sessions.get(&storage, &token, t + 1).is_none());
        // A fresh one ends at logout; an unknown token is nobody.
        let (token, _) = sessions.login(&storage, "anna", &password, t).unwrap();
        sessions.logout(&token);
        assert!(sessions.get(&storage, &token, t).is_none());
        assert!(sessions.get(&storage, "not-a-token", t).is_none());
        // Disabling the account ends its live sessions at their next use.
        let (token, _) = sessions.login(&storage, "anna", &password, t).unwrap();
        crate::staff::disable(&storage, "anna", t).unwrap();
        assert!(sessions.get(&storage, &token, t + 1).is_none());
        drop(storage);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_throttle_forgets_failures_older_than_its_window() {
        let (storage, dir) = storage("throttle");
        let (_, password) = crate::staff::add(&storage, "bertil", 1_000).unwrap();
        let sessions = Sessions::default();
        let t0 = 3_000_000;
        for i in 0..MAX_FAILURES as i64 {
            assert!(matches!(
                sessions.login(&storage, "bertil", "wrong", t0 + i),
                Err(LoginError::Refused)
            ));
        }
        assert!(matches!(
            sessions.login(&storage, "bertil", &password, t0 + 10),
            Err(LoginError::Throttled)
        ));
        // Another name is not locked by bertil's failures.
        assert!(matches!(
            sessions.login(&storage, "nobody", "x", t0 + 10),
            Err(LoginError::Refused)
        ));
        // After the window, the right password works again.
        assert!(sessions
            .login(&storage, "bertil", &password, t0 + FAILURE_WINDOW_SECS + 10)
            .is_ok());
        drop(storage);
        let _ = std::fs::remove_dir_all(dir);
    }
}
