//! The FFI face of the Lotsa core: the only crate that knows about uniffi.
uniffi::setup_scaffolding!();

/// The core's version, so an app can log which core it runs.
#[uniffi::export]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
