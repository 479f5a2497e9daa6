//! The one public error of the FFI: a few variants an app can act on, each with a readable text
//! (`msg`, in the language set with `set_language`) and, where there is one, the field and a
//! stable reason code.
//!
//! Why `msg` and not `message`: a variant field named `message` clashes with `Throwable.message`
//! in the generated Kotlin; and Python's `str(e)` ignores Rust's Display, so the readable text
//! must be a field of its own.

use crate::language;
use lotsa_core::consent::ConsentError;
use lotsa_core::crypto::vault::VaultError;
use lotsa_core::crypto::CryptoError;
use lotsa_core::geo::GeoError;
use lotsa_core::identity::IdError;
use lotsa_core::program::BundleError;
use lotsa_core::referral::{PhoneError, ReferralError};
use lotsa_core::store::StoreError;
use lotsa_core::text::Reasoned;

/// What went wrong, in terms an app can act on: one variant per thing an app does differently,
/// each with a readable `msg` and a stable code, [`ApiError::error_code`] (`e.errorCode()` in
/// Kotlin and Swift, `e.error_code()` in Python). Variants that can have many reasons (`InvalidInput`, `NotEligible`,
/// `ConsentMissing`, `Configuration`) carry their code as a field; every other variant has one
/// code, named in its doc. Those hold only `msg`, so foreign code that throws them (a `KeyVault`
/// in Kotlin, Swift or Python: `VaultLocked(msg)`, `Storage(msg)`) is written as before. (uniffi
/// allows no default values in error fields, so a `code` field there would break such code.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum ApiError {
    /// Something the officer typed is wrong: highlight `field`, show `msg`. An id that names no
    /// draft or handover, or one in the wrong state, is reported on `draft_id` or `handover_id`.
    #[error("{msg}")]
    InvalidInput {
        /// The input field (`identity_number`, `phone`, `municipality`, `draft_id`, …).
        field: String,
        /// Stable reason code (`invalid_checksum`, `phone_too_short`, `not_found`, …).
        code: String,
        /// Readable text.
        msg: String,
    },
    /// The person cannot be referred to this program (the verdict says why).
    #[error("{msg}")]
    NotEligible {
        /// `not_eligible` or `undetermined`.
        code: String,
        /// Readable text.
        msg: String,
    },
    /// The consent record is missing or incomplete: `field` says what to fix.
    #[error("{msg}")]
    ConsentMissing {
        /// The record field.
        field: String,
        /// Stable reason code.
        code: String,
        /// Readable text.
        msg: String,
    },
    /// The device's storage failed (SQLite, or a platform store a `KeyVault` uses). Code
    /// `storage`.
    #[error("{msg}")]
    Storage {
        /// Readable text.
        msg: String,
    },
    /// The phone's storage is full: nothing was written; free space and retry. Code `storage_full`.
    #[error("{msg}")]
    StorageFull {
        /// Readable text.
        msg: String,
    },
    /// A draft or sealed item does not open (tampered or corrupted); it is kept and flagged, and
    /// the other items go on working. Code `damaged`.
    #[error("{msg}")]
    Damaged {
        /// Readable text.
        msg: String,
    },
    /// The audit log's hash chain is broken. Code `audit_broken`.
    #[error("{msg}")]
    AuditBroken {
        /// Readable text.
        msg: String,
    },
    /// The platform key store says the key is gone for good (app reinstalled, lock screen removed,
    /// key invalidated). A `KeyVault` throws it from `unwrap` only then — never for a locked device
    /// or a passing failure: the store then gives up the drafts under that key (they are flagged
    /// and expire as usual), starts a new key, and keeps sending what is sealed. Code
    /// `vault_key_gone`.
    #[error("{msg}")]
    VaultKeyGone {
        /// Readable text.
        msg: String,
    },
    /// The platform key store refused or failed to use a key (not a locked device: that is
    /// `VaultLocked`). Code `vault_failed`.
    #[error("{msg}")]
    VaultFailed {
        /// Readable text.
        msg: String,
    },
    /// An enrolment did not happen: the clinic refused the one-time code
    /// (`enrolment_code_refused`: ask the clinic for a new one), or the key store lost the
    /// device key (`device_key_lost`: call `renew_device_key`, then enrol again at each clinic).
    #[error("{msg}")]
    Enrolment {
        /// Stable reason code.
        code: String,
        /// Readable text.
        msg: String,
    },
    /// The clinic could not be reached or refused the request. Code `network`.
    #[error("{msg}")]
    Network {
        /// Readable text.
        msg: String,
    },
    /// The program bundle or another configuration is refused: the app needs a new one.
    #[error("{msg}")]
    Configuration {
        /// Stable reason code (`bundle_bad_signature`, `unknown_program`, …).
        code: String,
        /// Readable text.
        msg: String,
    },
    /// The platform key store cannot be used right now (device locked, keystore busy): nothing
    /// is lost; retry when the device is unlocked. A `KeyVault` implementation
    /// throws it for a temporary failure, and the device store reports it back the same way.
    /// Code `vault_unavailable`.
    #[error("{msg}")]
    VaultLocked {
        /// Readable text.
        msg: String,
    },
    /// A bug or a failure of a platform service; the app should report it. Code `internal`.
    #[error("{msg}")]
    Internal {
        /// Readable text.
        msg: String,
    },
}

impl ApiError {
    pub(crate) fn input(field: &str, e: &dyn Reasoned) -> ApiError {
        ApiError::InvalidInput {
            field: field.to_string(),
            code: e.code().to_string(),
            msg: e.message(language()),
        }
    }

    pub(crate) fn configuration(code: &str, msg: impl Into<String>) -> ApiError {
        ApiError::Configuration {
            code: code.to_string(),
            msg: msg.into(),
        }
    }
}

#[uniffi::export]
impl ApiError {
    /// The stable, machine-readable code of the error, whatever its variant.
    pub fn error_code(&self) -> String {
        match self {
            ApiError::InvalidInput { code, .. }
            | ApiError::NotEligible { code, .. }
            | ApiError::ConsentMissing { code, .. }
            | ApiError::Configuration { code, .. }
            | ApiError::Enrolment { code, .. } => code.clone(),
            ApiError::Storage { .. } => "storage".into(),
            ApiError::StorageFull { .. } => "storage_full".into(),
            ApiError::Damaged { .. } => "damaged".into(),
            ApiError::AuditBroken { .. } => "audit_broken".into(),
            ApiError::VaultFailed { .. } => "vault_failed".into(),
            ApiError::VaultKeyGone { .. } => "vault_key_gone".into(),
            ApiError::Network { .. } => "network".into(),
            ApiError::VaultLocked { .. } => "vault_unavailable".into(),
            ApiError::Internal { .. } => "internal".into(),
        }
    }
}

/// Which input field a core error is about, for errors that do not carry one.
pub(crate) trait OnField<T> {
    fn on_field(self, field: &str) -> Result<T, ApiError>;
}

macro_rules! on_field {
    ($($e:ty),*) => {$(
        impl<T> OnField<T> for Result<T, $e> {
            fn on_field(self, field: &str) -> Result<T, ApiError> {
                self.map_err(|e| ApiError::input(field, &e))
            }
        }
    )*};
}
on_field!(IdError, GeoError, PhoneError);

impl From<BundleError> for ApiError {
    fn from(e: BundleError) -> ApiError {
        ApiError::configuration(e.code(), e.message(language()))
    }
}

impl From<ConsentError> for ApiError {
    fn from(e: ConsentError) -> ApiError {
        let (field, code, msg) = (
            e.field().to_string(),
            e.code().to_string(),
            e.message(language()),
        );
        match e {
            // A language the app offers is a choice on the form, not a gap in the record.
            ConsentError::UnsupportedLanguage => ApiError::InvalidInput { field, code, msg },
            _ => ApiError::ConsentMissing { field, code, msg },
        }
    }
}

impl From<ReferralError> for ApiError {
    fn from(e: ReferralError) -> ApiError {
        let msg = e.message(language());
        let code = e.code().to_string();
        match e {
            ReferralError::Consent(c) => c.into(),
            ReferralError::NotEligible { .. } => ApiError::NotEligible { code, msg },
            ReferralError::Field { field, .. } => ApiError::InvalidInput {
                field: field.to_string(),
                code,
                msg,
            },
            ReferralError::UnknownProgram { .. } => ApiError::Configuration { code, msg },
            ReferralError::Mismatch { .. } => ApiError::Internal { msg },
        }
    }
}

/// The device store's errors, by what the app can do about them: fix a field (`InvalidInput`,
/// including an id that names no draft or handover, or one in the wrong state, on `draft_id` or
/// `handover_id`), record consent (`ConsentMissing`), follow the verdict (`NotEligible`), load a
/// newer bundle or app (`Configuration`), unlock the device and retry (`VaultLocked`), free space
/// (`StorageFull`), show a damaged item (`Damaged`), report a broken audit chain (`AuditBroken`) or
/// a failing key store (`VaultFailed`), or report a storage failure (`Storage`).
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let msg = e.message(language());
        let code = e.code().to_string();
        match e {
            StoreError::Consent(c) => c.into(),
            StoreError::Referral(r) => r.into(),
            StoreError::ConsentMissing { .. } => ApiError::ConsentMissing {
                field: e.field().unwrap_or("consent").into(),
                code,
                msg,
            },
            StoreError::NotFound { .. } | StoreError::WrongState { .. } => ApiError::InvalidInput {
                field: e.field().unwrap_or("id").into(),
                code,
                msg,
            },
            StoreError::SchemaTooNew { .. }
            | StoreError::NotAStore
            | StoreError::NoClinicKey { .. }
            | StoreError::Bundle(_)
            | StoreError::BundleSuperseded { .. }
            | StoreError::BundleConflict { .. } => ApiError::Configuration { code, msg },
            StoreError::Crypto(CryptoError::Vault(ref v)) if v.is_temporary() => {
                ApiError::VaultLocked { msg }
            }
            StoreError::Crypto(CryptoError::Vault(VaultError::KeyGone { .. })) => {
                ApiError::VaultKeyGone { msg }
            }
            StoreError::Crypto(CryptoError::Vault(_)) => ApiError::VaultFailed { msg },
            StoreError::StorageFull => ApiError::StorageFull { msg },
            StoreError::Damaged { .. } => ApiError::Damaged { msg },
            StoreError::AuditBroken { .. } => ApiError::AuditBroken { msg },
            StoreError::Storage { .. } | StoreError::Crypto(_) => ApiError::Storage { msg },
        }
    }
}

/// A foreign implementation (Kotlin, Swift, Python) threw something that is not an `ApiError`:
/// without this conversion uniffi would turn it into a panic.
impl From<uniffi::UnexpectedUniFFICallbackError> for ApiError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> ApiError {
        ApiError::Internal {
            msg: format!("a platform service failed: {}", e.reason),
        }
    }
}
