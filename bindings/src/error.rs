//! The one public error of the FFI: a few variants an app can act on, each with a readable text
//! (`msg`, in the language set with `set_language`) and, where there is one, the field and a
//! stable reason code.
//!
//! Why `msg` and not `message`: a variant field named `message` clashes with `Throwable.message`
//! in the generated Kotlin; and Python's `str(e)` ignores Rust's Display, so the readable text
//! must be a field of its own.

use crate::language;
use lotsa_core::consent::ConsentError;
use lotsa_core::crypto::CryptoError;
use lotsa_core::geo::GeoError;
use lotsa_core::identity::IdError;
use lotsa_core::program::BundleError;
use lotsa_core::referral::{PhoneError, ReferralError};
use lotsa_core::store::StoreError;
use lotsa_core::text::Reasoned;

/// What went wrong, in terms an app can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum ApiError {
    /// Something the officer typed is wrong: highlight `field`, show `msg`.
    #[error("{msg}")]
    InvalidInput {
        /// The input field (`identity_number`, `phone`, `municipality`, …).
        field: String,
        /// Stable reason code (`invalid_checksum`, `phone_too_short`, …).
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
    /// The device's storage failed.
    #[error("{msg}")]
    Storage {
        /// Readable text.
        msg: String,
    },
    /// The clinic could not be reached or refused the request.
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
    #[error("{msg}")]
    VaultLocked {
        /// Readable text.
        msg: String,
    },
    /// A bug or a failure of a platform service; the app should report it.
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
        ApiError::ConsentMissing {
            field: e.field().to_string(),
            code: e.code().to_string(),
            msg: e.message(language()),
        }
    }
}

impl From<ReferralError> for ApiError {
    fn from(e: ReferralError) -> ApiError {
        match e {
            ReferralError::Consent(c) => c.into(),
            ReferralError::NotEligible { outcome } => ApiError::NotEligible {
                code: outcome.to_string(),
                msg: e.message(language()),
            },
            ReferralError::Field { field, .. } => ApiError::InvalidInput {
                field: field.to_string(),
                code: e.code().to_string(),
                msg: e.message(language()),
            },
            ReferralError::Mismatch { .. } => ApiError::Internal {
                msg: e.message(language()),
            },
        }
    }
}

/// The device store's errors, by what the app can do about them: fix a field (`InvalidInput`,
/// including an id that names no draft or handover, code `not_found`), record consent
/// (`ConsentMissing`), follow the verdict (`NotEligible`), load a newer bundle or app
/// (`Configuration`), unlock the device and retry (`VaultLocked`), or report a storage failure
/// (`Storage`: SQLite, the key store, a damaged item, a broken audit chain).
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let msg = e.message(language());
        match e {
            StoreError::Consent(c) => c.into(),
            StoreError::Referral(r) => match ApiError::from(r) {
                // The draft's fields as `DraftUpdate` names them.
                ApiError::InvalidInput { field, code, msg } => ApiError::InvalidInput {
                    field: field
                        .strip_prefix("residence.")
                        .unwrap_or(&field)
                        .to_string(),
                    code,
                    msg,
                },
                other => other,
            },
            StoreError::ConsentMissing { .. } => ApiError::ConsentMissing {
                field: "consent".into(),
                code: e.code().to_string(),
                msg,
            },
            StoreError::NotFound { what, .. } => ApiError::InvalidInput {
                field: format!("{what}_id"),
                code: e.code().to_string(),
                msg,
            },
            StoreError::WrongState { .. } => ApiError::InvalidInput {
                field: "handover_id".into(),
                code: e.code().to_string(),
                msg,
            },
            StoreError::SchemaTooNew { .. }
            | StoreError::UnknownProgram { .. }
            | StoreError::NoClinicKey { .. } => ApiError::configuration(e.code(), msg),
            StoreError::Crypto(CryptoError::Vault(ref v)) if v.is_temporary() => {
                ApiError::VaultLocked { msg }
            }
            StoreError::Storage { .. }
            | StoreError::Crypto(_)
            | StoreError::Damaged { .. }
            | StoreError::AuditBroken { .. } => ApiError::Storage { msg },
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
