//! The FHIR export's rules: a referral leaves the clinic as FHIR only when its program allows it
//! (`fhir_export`, which is off for programs that keep people anonymous), only to the
//! administrator at the console or to a system holding an API token of its own, and every
//! export goes into the access log under who fetched it. [`crate::fhir`] makes the bundle;
//! `lotsa clinic export` and [`crate::export_api`] hand it out.
//!
//! API tokens are 256 random bits, shown once when the system is added and stored only as their
//! SHA-256 (a token is not a password a person chooses: a fast hash of it cannot be guessed
//! backwards). A revoked token is refused at its next use. Each system is given the programs
//! it may fetch (or every program that allows the export): a referral of another program is
//! to it as one the clinic does not hold, except in the access log.

use crate::fhir::{self, Held};
use crate::intake::ClinicKeys;
use crate::staff::{normalize_name, StaffError};
use crate::storage::{AccessEntry, Indexed, Storage, StorageError};
use crate::worklist::phone_hmac;
use base64::Engine;
use chrono::{DateTime, Utc};
use lotsa_core::program::{is_program_id, Bundle};
use serde_json::Value;
use std::collections::BTreeSet;

/// What every API token starts with (so that a leaked one is recognised by secret scanners).
pub const TOKEN_PREFIX: &str = "lotsa_api_";
/// The prefix of an API client's name in the access log (staff names cannot hold a `:`).
pub const API_PREFIX: &str = "api:";
/// Who the access log names for an export made with `lotsa clinic export` at the console.
pub const CONSOLE: &str = "console";
/// The access log's action for an export.
pub const EXPORT_ACTION: &str = "fhir_export";
/// The access log's action for an export refused (the program does not allow it, or nothing
/// is left) of a referral the clinic knows.
pub const REFUSED_ACTION: &str = "fhir_export_refused";
/// The access log's action for a look at the index of what can be exported.
pub const INDEX_ACTION: &str = "fhir_index";

/// Why a referral was not exported (nothing was handed out).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The referral's program does not allow the export (or the served bundle no longer has it).
    #[error("the program of this referral does not allow a FHIR export")]
    NotAllowed,
    /// No referral with that id is held or remembered.
    #[error("no referral with that id is held here")]
    NotFound,
    /// The referral is of a program this API client was not given: it is told
    /// [`ExportError::NotFound`], and the access log says it asked.
    #[error("the referral's program is not one this API client may fetch")]
    NotItsProgram,
    /// The referral was erased when its program's retention ran out: nothing is left to export.
    #[error("the referral was erased after its retention ran out; nothing is left to export")]
    Erased,
    /// A stored referral did not open with the clinic's keys.
    #[error("a stored referral does not open: {0}")]
    Unreadable(String),
    /// The bundle given is older than one the service has served (its id): it may allow what
    /// the served one no longer does.
    #[error("the service has served a newer program bundle ({0}): export with that one")]
    OlderBundle(String),
    /// The database.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why an API client was not added or revoked.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The name is not 1–64 of `a-z 0-9 . _ -`.
    #[error("an API client's name is 1 to 64 of a-z, 0-9, '.', '_' and '-'")]
    BadName,
    /// A client of that name exists (revoked ones too: a name is never reused).
    #[error("an API client of that name exists")]
    Exists,
    /// A program id is not 1–64 lowercase letters, digits and hyphens, or none was given.
    #[error("name each program by its id: 1 to 64 lowercase letters, digits and hyphens")]
    BadProgram,
    /// No unrevoked client of that name.
    #[error("no unrevoked API client has that name")]
    Unknown,
    /// The random number generator failed.
    #[error("the system's random number generator failed")]
    Random,
    /// The database.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Who an export is for: the administrator at the console, or an API client with the programs
/// it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    name: String,
    programs: Option<BTreeSet<String>>,
}

impl Reader {
    /// The administrator at the console: every program that allows the export.
    pub fn console() -> Reader {
        Reader {
            name: CONSOLE.to_string(),
            programs: None,
        }
    }

    /// An API client as the access log names it ([`API_PREFIX`] and its name), with its
    /// programs (`None`: every program that allows the export).
    pub fn client(name: &str, programs: Option<Vec<String>>) -> Reader {
        Reader {
            name: format!("{API_PREFIX}{name}"),
            programs: programs.map(|p| p.into_iter().collect()),
        }
    }

    /// Its name in the access log.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it may fetch referrals of `program_id` (if the program allows the export).
    pub fn may_fetch(&self, program_id: &str) -> bool {
        self.programs
            .as_ref()
            .is_none_or(|p| p.contains(program_id))
    }
}

/// Exports from one service: its database, its keys, the programs it serves.
pub struct Exporter<'a> {
    /// The database.
    pub storage: &'a Storage,
    /// The keys that open stored referrals.
    pub keys: &'a ClinicKeys,
    /// The verified bundle the service serves.
    pub bundle: &'a Bundle,
    /// The access log's HMAC key.
    pub log_key: &'a [u8; 32],
}

impl Exporter<'_> {
    /// One referral as a FHIR Bundle, for `who`, logged before it is handed out.
    pub fn export(
        &self,
        handover_id: &str,
        who: &Reader,
        now: DateTime<Utc>,
    ) -> Result<Value, ExportError> {
        let made = self.make(handover_id, who, now);
        // A refusal of a referral the clinic knows is a use too; an id it does not know is not
        // logged (it would put whatever was sent into the log).
        let (action, phone) = match &made {
            Ok((_, phone)) => (EXPORT_ACTION, phone.clone()),
            Err(ExportError::NotAllowed | ExportError::NotItsProgram | ExportError::Erased) => {
                (REFUSED_ACTION, None)
            }
            Err(_) => return made.map(|(bundle, _)| bundle),
        };
        self.storage.log_access(vec![AccessEntry {
            at: now.timestamp(),
            staff: who.name().to_string(),
            handover_id: Some(handover_id.to_string()),
            action: action.to_string(),
            phone_hmac: phone,
        }])?;
        made.map(|(bundle, _)| bundle)
    }

    /// The bundle and the keyed hash of the person's number, or why not.
    fn make(
        &self,
        handover_id: &str,
        who: &Reader,
        now: DateTime<Utc>,
    ) -> Result<(Value, Option<Vec<u8>>), ExportError> {
        if let Some(h) = self.storage.history(handover_id)? {
            its_program(who, &h.held.program_id)?;
            let program = self.allowed(&h.held.program_id)?;
            let payload = self
                .keys
                .open(handover_id, &h.held)
                .map_err(|kind| ExportError::Unreadable(kind.code().to_string()))?;
            let state = Held::Open {
                payload: &payload,
                received_at: at(h.received_at),
                attempts: &h.attempts,
                first_contact: h.first_contact.as_ref().map(|(o, t)| (o.as_str(), at(*t))),
            };
            let phone = payload
                .contact
                .phone
                .as_deref()
                .map(|p| phone_hmac(self.log_key, p));
            return Ok((fhir::bundle(handover_id, program, &state, now), phone));
        }
        let gone = self
            .storage
            .gone(handover_id)?
            .ok_or(ExportError::NotFound)?;
        let program_id = gone.program_id.ok_or(ExportError::NotFound)?;
        its_program(who, &program_id)?;
        if gone.reason.as_deref() != Some("withdrawn") {
            return Err(ExportError::Erased);
        }
        // A withdrawal carries no personal data: it goes to a system the referral went to even
        // if the program has stopped allowing exports since.
        let program = match self.allowed(&program_id) {
            Err(ExportError::NotAllowed) if self.storage.exported_before(handover_id)? => self
                .bundle
                .program(&program_id)
                .ok_or(ExportError::NotAllowed)?,
            other => other?,
        };
        let state = Held::Withdrawn { at: at(gone.at) };
        Ok((fhir::bundle(handover_id, program, &state, now), None))
    }

    /// What can be exported, changed at or after `since` (every one without it), oldest
    /// change first: ids, programs, states and times, no personal data. A withdrawal is listed
    /// only to a system that fetched the referral before (it has something to update). The
    /// look is logged.
    pub fn index(
        &self,
        who: &Reader,
        since: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Indexed>, ExportError> {
        let fetched = self.storage.exported_by(who.name())?;
        let list = self
            .storage
            .index()?
            .into_iter()
            .filter(|r| who.may_fetch(&r.program_id))
            .filter(|r| match r.state {
                "withdrawn" => fetched.contains(&r.handover_id),
                _ => self.allowed(&r.program_id).is_ok(),
            })
            .filter(|r| since.is_none_or(|t| r.changed_at >= t))
            .collect();
        self.storage.log_access(vec![AccessEntry {
            at: now.timestamp(),
            staff: who.name().to_string(),
            handover_id: None,
            action: INDEX_ACTION.to_string(),
            phone_hmac: None,
        }])?;
        Ok(list)
    }

    fn allowed(&self, program_id: &str) -> Result<&lotsa_core::program::Program, ExportError> {
        self.bundle
            .program(program_id)
            .filter(|p| p.fhir_export == Some(true))
            .ok_or(ExportError::NotAllowed)
    }
}

fn its_program(who: &Reader, program_id: &str) -> Result<(), ExportError> {
    if who.may_fetch(program_id) {
        Ok(())
    } else {
        Err(ExportError::NotItsProgram)
    }
}

/// Refuses a bundle older than the newest the service was started with, for an export at the
/// console (where the administrator names the bundle): an old file may still allow an export,
/// or a field, that the served one no longer does.
pub fn check_current(storage: &Storage, bundle: &Bundle) -> Result<(), ExportError> {
    match storage.newest_served()? {
        Some((id, issued)) if bundle.set().issued_at.timestamp() < issued => {
            Err(ExportError::OlderBundle(id))
        }
        _ => Ok(()),
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

/// A name as the access log writes it, from what an administrator types: a staff member's
/// login name, [`CONSOLE`], or [`API_PREFIX`] and an API client's name.
pub fn logged_name(who: &str) -> Result<String, StaffError> {
    let who = who.trim();
    match who.get(..API_PREFIX.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(API_PREFIX) => Ok(format!(
            "{API_PREFIX}{}",
            normalize_name(&who[API_PREFIX.len()..])?
        )),
        _ => normalize_name(who),
    }
}

/// Adds a system allowed to fetch exports of `programs` (their ids; `None` for every program
/// that allows the export): its normalised name and its token (shown once).
pub fn add_client(
    storage: &Storage,
    name: &str,
    programs: Option<&BTreeSet<String>>,
    now: DateTime<Utc>,
) -> Result<(String, String), ClientError> {
    let name = normalize_name(name).map_err(|_| ClientError::BadName)?;
    let programs: Option<Vec<String>> = programs.map(|p| p.iter().cloned().collect());
    if programs
        .as_ref()
        .is_some_and(|p| p.is_empty() || !p.iter().all(|id| is_program_id(id)))
    {
        return Err(ClientError::BadProgram);
    }
    let mut secret = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
        .map_err(|_| ClientError::Random)?;
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    if !storage.add_api_client(
        &name,
        token_hash(&token),
        programs.as_deref(),
        now.timestamp(),
    )? {
        return Err(ClientError::Exists);
    }
    Ok((name, token))
}

/// Revokes a system's token at once; its normalised name.
pub fn revoke_client(
    storage: &Storage,
    name: &str,
    now: DateTime<Utc>,
) -> Result<String, ClientError> {
    let name = normalize_name(name).map_err(|_| ClientError::BadName)?;
    if !storage.revoke_api_client(&name, now.timestamp())? {
        return Err(ClientError::Unknown);
    }
    Ok(name)
}

/// The system presenting `Authorization: Bearer <token>`, if the token is one of an unrevoked
/// client.
pub fn authenticate(
    storage: &Storage,
    authorization: Option<&str>,
) -> Result<Option<Reader>, StorageError> {
    // The scheme is case-insensitive (RFC 9110 §11.1); the token is not.
    let Some(token) = authorization
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| t.starts_with(TOKEN_PREFIX))
    else {
        return Ok(None);
    };
    Ok(storage
        .api_client(&token_hash(token))?
        .map(|(name, programs)| Reader::client(&name, programs)))
}

fn token_hash(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}
