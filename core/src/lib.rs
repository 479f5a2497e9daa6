//! Lotsa's domain core: everything a field app needs to offer a person at an open drug scene a way
//! into care, as a plain Rust API with no FFI types and no screens.
//!
//! Modules are listed in dependency order (see `docs/DESIGN.md`, "Layout"): each may use those above
//! it, never those below. `text` is the shared vocabulary of reason codes and sv/en messages.

/// `Debug` that shows only the named (non-personal) fields of a type holding personal data, so a
/// stray `{:?}`, `dbg!` or failed `unwrap` never prints a name, a phone number or a number.
macro_rules! debug_without_personal_data {
    ($t:ty $(, $field:ident)*) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t))
                    $(.field(stringify!($field), &self.$field))*
                    .finish_non_exhaustive()
            }
        }
    };
}

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

// 9. The intake protocol: wire types, request signatures, receipts, problem details.
pub mod protocol;

// 10. The device's encrypted store: drafts, sealed outbox, audit log, statistics.
pub mod store;

// 11. Delivery to the clinic: the pinned HTTPS client.
pub mod sync;
