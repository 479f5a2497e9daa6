//! The intake protocol: the contract between a phone and a receiving clinic, shared by the
//! device (its sync engine) and the clinic service alike, so that both are built from one
//! definition and a municipality can implement either side in another language from
//! `docs/PROTOCOL.md` alone.
//!
//! - [`wire`]: the messages: the sealed envelope, the withdrawal message, the enrolment request
//!   and its answer, the audit-chain head a delivery carries;
//! - [`receipt`]: the clinic's signed receipt for a referral and its signed confirmation of a
//!   withdrawal, with their canonical bytes;
//! - [`signature`]: RFC 9421 HTTP Message Signatures with the device's Ed25519 key, and RFC 9530
//!   `Content-Digest`;
//! - [`problem`]: RFC 9457 problem details with stable types, and the one table that says what a
//!   device does with each HTTP status.
//!
//! Nothing here does I/O or keeps state: the clinic's nonce memory, device register and dedupe live
//! in the clinic service, the device's leases and backoff in `sync`. The constants below are the
//! protocol's numbers; `docs/PROTOCOL.md` states each of them and why.

pub mod problem;
pub mod receipt;
pub mod signature;
pub mod wire;

pub use problem::{Disposition, Problem, ProblemType};
pub use receipt::{ConfirmationFacts, Receipt, ReceiptFacts, WithdrawalConfirmation};
pub use signature::{ReceivedSignature, SignatureError};
pub use wire::{
    open_payload, AuditHead, DeviceStatus, EnrolmentAnswer, EnrolmentRequest, Envelope,
    QueueCounts, WithdrawalMessage,
};

/// The path prefix of every endpoint: a clinic's API lives at `{endpoint}/v1/…`.
pub const API_PREFIX: &str = "/v1";
/// `POST`: deliver a sealed referral.
pub const HANDOVERS_PATH: &str = "/v1/handovers";
/// `POST`: withdraw a referral.
pub const WITHDRAWALS_PATH: &str = "/v1/withdrawals";
/// `POST`: enrol a device's public key with a one-time code.
pub const DEVICES_PATH: &str = "/v1/devices";
/// `GET`: the current signed program bundle.
pub const BUNDLE_PATH: &str = "/v1/bundle";
/// Where a device reports its queue's health.
pub const DEVICE_STATUS_PATH: &str = "/v1/device-status";
/// `GET`: whether the service is up.
pub const HEALTH_PATH: &str = "/v1/health";

/// The media type of every request body and successful answer.
pub const JSON: &str = "application/json";
/// The media type of an error answer (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The header that carries the device's audit-chain head (covered by the signature).
pub const AUDIT_HEAD_HEADER: &str = "lotsa-audit-head";
/// The idempotency header (an RFC 9651 string holding the handover id).
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// How far a signature's `created` may lie from the clinic's clock, either way, in seconds.
/// Phones drift and set their clocks by the network they last saw; five minutes covers that
/// without letting a captured request be replayed for long.
pub const CLOCK_SKEW_SECS: i64 = 300;
/// How long the clinic remembers a `(keyid, nonce)` pair, in seconds: at least as long as a
/// `created` value can be accepted (the skew either way), so a replay is always caught.
pub const NONCE_WINDOW_SECS: i64 = 2 * CLOCK_SKEW_SECS;
/// The largest request body a clinic must accept, in bytes (a referral is about 2 KiB sealed).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A referral older than this (from the consent) is no longer delivered: the device stops trying
/// and the clinic refuses it (`referral_too_old`). A first call months later helps nobody.
pub const MAX_DELIVERY_AGE_DAYS: i64 = 30;
/// How long the clinic keeps the tombstone of a withdrawn handover (its id and the time): longer
/// than a device may hold an undelivered referral, so a late copy is always refused.
pub const TOMBSTONE_DAYS: i64 = 60;

/// A device's id at a clinic: the first 8 bytes of the SHA-256 of its raw 32-byte Ed25519 public
/// key, as 16 lowercase hex digits. It is also the signature's `keyid`.
pub fn device_id(key: &crate::crypto::PublicKey) -> String {
    key.key_id()
}

/// The handover id an `Idempotency-Key` header holds: an RFC 9651 string (`"0b6c…"`) with no
/// parameters; anything else is no key.
pub fn idempotency_key(header: &str) -> Option<String> {
    let item: sfv::Item = sfv::Parser::new(header).parse().ok()?;
    if !item.params.is_empty() {
        return None;
    }
    item.bare_item.as_string().map(|s| s.as_str().to_string())
}

/// Why a wire message was refused. The texts name the field and the reason and never repeat
/// the received bytes (a clinic sends them back in a problem detail).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Not JSON, or not the message's shape.
    #[error("the {what} is not valid: {reason}")]
    Malformed {
        /// Which message.
        what: &'static str,
        /// Where and why, without the received text.
        reason: String,
    },
    /// A field holds a value the protocol does not allow.
    #[error("the {what}'s {field} is not valid: {reason}")]
    Invalid {
        /// Which message.
        what: &'static str,
        /// Which field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
}

impl ProtocolError {
    /// The field at fault, if one is known.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ProtocolError::Malformed { .. } => None,
            ProtocolError::Invalid { field, .. } => Some(field),
        }
    }
}

/// Parses JSON into a wire type, with an error that gives the position and kind of the fault
/// but never the received text (serde's own messages quote it).
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, ProtocolError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        let kind = match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => "not JSON",
            Category::Data => "a field is missing, unknown or of the wrong type",
        };
        ProtocolError::Malformed {
            what,
            reason: format!("{kind} (line {}, column {})", e.line(), e.column()),
        }
    })
}

/// The canonical bytes a clinic signs: each part with a 64-bit big-endian length prefix, the
/// first part being the fixed label. Any language builds the same bytes in a few lines.
pub(crate) fn signing_bytes(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 8).sum());
    for part in parts {
        crate::crypto::put_field(&mut out, part);
    }
    out
}

/// An instant on the wire where it is signed: RFC 3339 in UTC, whole seconds, `Z`
/// (`2026-12-01T09:30:00Z`), so that every implementation signs the same text.
pub fn utc_seconds(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Reads an instant written by [`utc_seconds`]; any other form is refused.
pub(crate) fn parse_utc_seconds(
    text: &str,
    what: &'static str,
    field: &'static str,
) -> Result<chrono::DateTime<chrono::Utc>, ProtocolError> {
    let invalid = ProtocolError::Invalid {
        what,
        field,
        reason: "must be RFC 3339 in UTC with whole seconds, like 2026-12-01T09:30:00Z",
    };
    let ok_shape = text.len() == 20 && text.ends_with('Z') && text.as_bytes()[10] == b'T';
    if !ok_shape {
        return Err(invalid);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| invalid)
}

/// A message's `schema` must be the one this build reads.
pub(crate) fn check_schema(
    found: &str,
    expected: &'static str,
    what: &'static str,
) -> Result<(), ProtocolError> {
    if found == expected {
        Ok(())
    } else {
        Err(ProtocolError::Invalid {
            what,
            field: "schema",
            reason: "names another message or a version this build does not read",
        })
    }
}

/// A handover, withdrawal or consent id: a UUID in its lowercase hyphenated form.
pub(crate) fn check_uuid(
    text: &str,
    what: &'static str,
    field: &'static str,
) -> Result<(), ProtocolError> {
    let ok = text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        });
    if ok {
        Ok(())
    } else {
        Err(ProtocolError::Invalid {
            what,
            field,
            reason: "must be a UUID in lowercase hyphenated form",
        })
    }
}

/// A program id, key id or device id: 1–64 visible ASCII characters (letters, digits, `-`, `_`,
/// `.`), so it can be logged, compared and put in a header safely.
pub(crate) fn check_id(
    text: &str,
    what: &'static str,
    field: &'static str,
) -> Result<(), ProtocolError> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ProtocolError::Invalid {
            what,
            field,
            reason: "must be 1–64 ASCII letters, digits, '-', '_' or '.'",
        })
    }
}

/// Standard base64 with padding and nothing around it: the same bytes have one spelling on the
/// wire, so a resend compares equal and a signature covers what was meant.
pub(crate) fn strict_b64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// 32 bytes from 64 lowercase hex digits.
pub(crate) fn parse_sha256_hex(
    text: &str,
    what: &'static str,
    field: &'static str,
) -> Result<[u8; 32], ProtocolError> {
    let invalid = ProtocolError::Invalid {
        what,
        field,
        reason: "must be 64 lowercase hex digits",
    };
    if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(invalid);
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| invalid.clone())?;
    }
    Ok(out)
}

#[cfg(test)]
mod vectors;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn signed_instants_have_exactly_one_form() {
        let at = chrono::Utc.with_ymd_and_hms(2026, 12, 1, 9, 30, 0).unwrap();
        assert_eq!(utc_seconds(at), "2026-12-01T09:30:00Z");
        assert_eq!(
            parse_utc_seconds("2026-12-01T09:30:00Z", "receipt", "received_at").unwrap(),
            at
        );
        for other in [
            "2026-12-01T10:30:00+01:00",
            "2026-12-01T09:30:00.000Z",
            "2026-12-01 09:30:00Z",
            "2026-13-01T09:30:00Z",
            "",
        ] {
            let err = parse_utc_seconds(other, "receipt", "received_at").unwrap_err();
            assert_eq!(err.field(), Some("received_at"), "{other}");
        }
    }

    #[test]
    fn ids_uuids_and_digests_are_checked_strictly() {
        assert!(check_uuid("0b9f7a52-5c1e-4d7a-9a43-1f0e2d3c4b5a", "x", "handover_id").is_ok());
        for bad in [
            "0B9F7A52-5C1E-4D7A-9A43-1F0E2D3C4B5A",
            "0b9f7a525c1e4d7a9a431f0e2d3c4b5a",
            "0b9f7a52-5c1e-4d7a-9a43-1f0e2d3c4b5",
        ] {
            assert!(check_uuid(bad, "x", "handover_id").is_err(), "{bad}");
        }
        assert!(check_id("lfl-2026", "x", "key").is_ok());
        for bad in ["", "a b", "ä", "a\nb", &"a".repeat(65)] {
            assert!(check_id(bad, "x", "key").is_err(), "{bad:?}");
        }
        let hex = crate::crypto::sha256_hex(b"x");
        assert_eq!(
            parse_sha256_hex(&hex, "x", "d").unwrap(),
            crate::crypto::sha256(b"x")
        );
        assert!(parse_sha256_hex(&hex.to_uppercase(), "x", "d").is_err());
        assert!(parse_sha256_hex(&hex[1..], "x", "d").is_err());
    }

    #[test]
    fn json_errors_give_the_place_but_never_the_received_text() {
        let err =
            from_json::<wire::Envelope>(br#"{"schema": "Anna Andersson 0701234567"}"#, "envelope")
                .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 1"), "{text}");
        assert!(
            !text.contains("Anna") && !text.contains("0701234567"),
            "{text}"
        );
        let err = from_json::<wire::Envelope>(b"{not json", "envelope").unwrap_err();
        assert!(err.to_string().contains("not JSON"), "{err}");
    }

    #[test]
    fn an_idempotency_key_is_an_rfc_9651_string() {
        let id = "0b6c1f5e-3d2a-4c8e-9f10-2a3b4c5d6e7f";
        assert_eq!(idempotency_key(&format!("\"{id}\"")).as_deref(), Some(id));
        for bad in [
            id.to_string(),
            format!("\"{id}\";x=1"),
            "\"a\", \"b\"".into(),
            String::new(),
        ] {
            assert_eq!(idempotency_key(&bad), None, "{bad}");
        }
    }

    #[test]
    fn signing_bytes_are_length_prefixed_so_parts_cannot_shift() {
        assert_ne!(signing_bytes(&[b"ab", b"c"]), signing_bytes(&[b"a", b"bc"]));
        assert_eq!(
            signing_bytes(&[b"ab"]),
            [0, 0, 0, 0, 0, 0, 0, 2, b'a', b'b'].to_vec()
        );
    }
}
