//! The FFI face of the Lotsa core: the only crate that knows about uniffi.
//!
//! It exposes the core in the app's terms — records, enums, two objects
//! ([`programs::ProgramBundle`], [`store::DeviceStore`]) and one trait the app implements
//! ([`store::KeyVault`], its platform keystore) — and maps the core's many error enums to one small
//! [`error::ApiError`] whose variants an app can act on. Nothing here holds domain logic; each call
//! converts, calls the core, converts back. uniffi catches panics at the boundary, and the core
//! returns typed errors for every bad input, so no panic crosses the FFI.

uniffi::setup_scaffolding!();

pub mod error;
pub mod lookup;
pub mod programs;
pub mod store;
pub mod sync;

use chrono::NaiveDate;
use error::ApiError;
use lotsa_core::clock::{Clock, SystemClock};
use lotsa_core::text::Lang;
use std::sync::atomic::{AtomicBool, Ordering};

/// The core's version, so an app can log which core it runs.
#[uniffi::export]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

static ENGLISH: AtomicBool = AtomicBool::new(false);

/// Sets the language of every human text the core returns (`sv`, the default, or `en`).
#[uniffi::export]
pub fn set_language(language: String) -> Result<(), ApiError> {
    let lang = Lang::parse(&language).ok_or_else(|| ApiError::InvalidInput {
        field: "language".into(),
        code: "unsupported_language".into(),
        msg: "Unsupported language: choose sv or en. / Språket stöds inte: välj sv eller en."
            .into(),
    })?;
    ENGLISH.store(lang == Lang::En, Ordering::Relaxed);
    Ok(())
}

/// The language set with [`set_language`].
pub(crate) fn language() -> Lang {
    if ENGLISH.load(Ordering::Relaxed) {
        Lang::En
    } else {
        Lang::Sv
    }
}

/// Today on the Stockholm calendar.
pub(crate) fn today() -> NaiveDate {
    SystemClock.today()
}

/// Parses a `YYYY-MM-DD` date given by the app.
pub(crate) fn parse_date(text: &str, field: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| ApiError::InvalidInput {
        field: field.to_string(),
        code: "invalid_date".into(),
        msg: match language() {
            Lang::Sv => "Datumet ska skrivas ÅÅÅÅ-MM-DD.".into(),
            Lang::En => "Write the date as YYYY-MM-DD.".into(),
        },
    })
}
