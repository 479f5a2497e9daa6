//! Lotsa's domain core: everything a field app needs to offer a person at an open drug scene a way
//! into care, as a plain Rust API with no FFI types and no screens.
//!
//! Modules are listed in dependency order: each may use those above it, never those below
//! (see `DESIGN.md`, "Layout").

pub mod text;

pub mod clock;
pub mod consent;
pub mod crypto;
pub mod eligibility;
pub mod geo;
pub mod identity;
pub mod program;
pub mod referral;
