//! Lotsa's domain core: everything a field app needs to offer a person at an open drug scene a way
//! into care, as a plain Rust API with no FFI types and no screens.
//!
//! Modules are listed in dependency order (see `DESIGN.md`, "Layout"): each may use those above
//! it, never those below. `text` is the shared vocabulary of reason codes and sv/en messages.

pub mod text;

// 1. The time source and the Stockholm calendar.
pub mod clock;

// 2. Personnummer, samordningsnummer, age.
pub mod identity;

// 3. Municipalities, counties, postal codes.
pub mod geo;

// 4. Key vault, field encryption, HPKE sealing, signatures.
pub mod crypto;

// 5. Program definitions and signed bundles.
pub mod program;

// 6. Facts + program → verdict, reasons, routing.
pub mod eligibility;

// 7. The consent record and its withdrawal.
pub mod consent;

// 8. The draft, its validation, the handover payload.
pub mod referral;

// 10. The device's encrypted store: drafts, sealed outbox, audit log, statistics.
pub mod store;
