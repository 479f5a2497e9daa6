//! Errors on the wire and what a device does about them. A clinic answers every refusal with an
//! RFC 9457 problem detail (`application/problem+json`) whose `type` is stable
//! (`urn:lotsa:problem:<code>`), so a device, a log search or another implementation can act on
//! it without reading prose. [`Disposition::of_status`] is the one table that says what a device
//! does with each HTTP status; `docs/PROTOCOL.md` prints the same table.

use serde::{Deserialize, Serialize};

/// The prefix of every problem `type`.
pub const TYPE_PREFIX: &str = "urn:lotsa:problem:";

macro_rules! problem_types {
    ($( $(#[$doc:meta])* $variant:ident = ($code:literal, $status:literal, $title:literal), )*) => {
        /// Every refusal a clinic can give, with its status and a stable code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ProblemType {
            $( $(#[$doc])* $variant, )*
        }

        impl ProblemType {
            /// Every type, in the order `docs/PROTOCOL.md` lists them.
            pub const ALL: &'static [ProblemType] = &[$(ProblemType::$variant,)*];

            /// The stable code (the end of the `type` URI).
            pub fn code(self) -> &'static str {
                match self { $(ProblemType::$variant => $code,)* }
            }

            /// The HTTP status it is sent with.
            pub fn status(self) -> u16 {
                match self { $(ProblemType::$variant => $status,)* }
            }

            /// A short English title (RFC 9457 `title`).
            pub fn title(self) -> &'static str {
                match self { $(ProblemType::$variant => $title,)* }
            }
        }
    };
}

problem_types! {
    /// The body is not the message the endpoint takes (not JSON, a field missing or wrong).
    MalformedBody = ("malformed_body", 400, "The body is not a valid message for this endpoint"),
    /// `Content-Digest` is missing or does not match the body.
    DigestMismatch = ("digest_mismatch", 400, "Content-Digest is missing or does not match the body"),
    /// `Idempotency-Key` is missing or is not the envelope's handover id.
    IdempotencyKeyMismatch = ("idempotency_key_mismatch", 400, "Idempotency-Key is missing or is not the handover id"),
    /// The signature is missing, malformed, covers too little or does not verify.
    BadSignature = ("bad_signature", 401, "The request signature is missing or does not verify"),
    /// The signature's `keyid` names no device enrolled here.
    UnknownDevice = ("unknown_device", 401, "This device is not enrolled at this clinic"),
    /// The device was revoked by the clinic's administrator.
    DeviceRevoked = ("device_revoked", 401, "This device's enrolment was revoked"),
    /// `created` is further from the clinic's clock than the skew allows.
    SignatureStale = ("signature_stale", 401, "The signature's created time is outside the allowed window; check the device clock"),
    /// The `(keyid, nonce)` pair was seen before.
    SignatureReplayed = ("signature_replayed", 401, "This signature nonce was already used"),
    /// The enrolment code is unknown, used by another key, or expired.
    EnrolmentCodeRefused = ("enrolment_code_refused", 403, "The enrolment code is unknown, already used or expired"),
    /// No such endpoint.
    NotFound = ("not_found", 404, "No such endpoint"),
    /// The endpoint does not take this method.
    MethodNotAllowed = ("method_not_allowed", 405, "The endpoint does not take this method"),
    /// The request (headers or body) did not arrive within the clinic's time limit.
    RequestTimeout = ("request_timeout", 408, "The request did not arrive in time; retry"),
    /// The same handover id is being stored by another request right now.
    InFlight = ("in_flight", 409, "The same handover is being received by another request; retry"),
    /// The referral was withdrawn: the clinic keeps only its tombstone.
    Withdrawn = ("withdrawn", 410, "This referral was withdrawn; it will not be accepted"),
    /// The body is larger than the clinic accepts.
    TooLarge = ("too_large", 413, "The body is too large"),
    /// The body is not `application/json`.
    UnsupportedMediaType = ("unsupported_media_type", 415, "The body must be application/json"),
    /// The handover id was received before with other content.
    ConflictingResend = ("conflicting_resend", 422, "This handover id was received before with other content"),
    /// The withdrawal id was received before with other content.
    ConflictingWithdrawal = ("conflicting_withdrawal", 422, "This withdrawal id was received before with other content"),
    /// The envelope or withdrawal names a program this clinic does not serve.
    UnknownProgram = ("unknown_program", 422, "This clinic does not serve the program named"),
    /// The envelope names an HPKE key this clinic does not have.
    UnknownClinicKey = ("unknown_clinic_key", 422, "This clinic has no HPKE key with that id"),
    /// The sealed payload does not open with the binding the envelope names.
    DoesNotOpen = ("does_not_open", 422, "The sealed payload does not open with the envelope's binding"),
    /// The opened payload is not a valid handover for its schema.
    PayloadInvalid = ("payload_invalid", 422, "The opened payload is not a valid handover"),
    /// The opened payload names another handover id or program than its envelope.
    EnvelopeMismatch = ("envelope_mismatch", 422, "The payload's handover id or program differs from its envelope"),
    /// The referral is older than the protocol delivers.
    ReferralTooOld = ("referral_too_old", 422, "The referral is older than the maximum delivery age"),
    /// A withdrawal names a handover another device delivered.
    HandoverOfAnotherDevice = ("handover_of_another_device", 422, "This handover was delivered by another device"),
    /// Too many requests from this device.
    RateLimited = ("rate_limited", 429, "Too many requests; retry after the time given"),
    /// The request's header lines are larger than the clinic accepts.
    HeadersTooLarge = ("headers_too_large", 431, "The request headers are too large"),
    /// The clinic failed; nothing was stored.
    Internal = ("internal", 500, "The clinic service failed; nothing was stored"),
    /// The clinic is shedding load; nothing was stored.
    Overloaded = ("overloaded", 503, "The clinic service is busy; retry after the time given"),
}

impl ProblemType {
    /// The `type` URI.
    pub fn uri(self) -> String {
        format!("{TYPE_PREFIX}{}", self.code())
    }

    /// The type a `type` URI names, if this build knows it.
    pub fn from_uri(uri: &str) -> Option<ProblemType> {
        let code = uri.strip_prefix(TYPE_PREFIX)?;
        ProblemType::ALL.iter().copied().find(|t| t.code() == code)
    }
}

/// An RFC 9457 problem detail as a clinic sends it. `detail` may say more (which field, which
/// limit) but never repeats received personal data; `code` repeats the end of `type` for
/// clients that do not want to parse URIs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `urn:lotsa:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short English title.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// More about this occurrence, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The stable code.
    pub code: String,
}

impl Problem {
    /// The problem detail of a type.
    pub fn new(kind: ProblemType, detail: Option<String>) -> Problem {
        Problem {
            kind: kind.uri(),
            title: kind.title().to_string(),
            status: kind.status(),
            detail,
            code: kind.code().to_string(),
        }
    }

    /// The answer body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a problem always serialises")
    }

    /// Reads a problem detail a clinic sent (lenient: other members are ignored, as RFC 9457
    /// allows extensions).
    pub fn from_json(bytes: &[u8]) -> Option<Problem> {
        serde_json::from_slice(bytes).ok()
    }

    /// The type, if this build knows it.
    pub fn problem_type(&self) -> Option<ProblemType> {
        ProblemType::from_uri(&self.kind)
    }
}

/// What a device does with the answer to a delivery (a referral or a withdrawal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// 200/201: verify the receipt (or confirmation), then erase the payload.
    Delivered,
    /// 408, 409, 425, 429, 5xx and anything unexpected: keep the item and retry with backoff,
    /// honouring `Retry-After`; the status is kept as the item's reason.
    Retry,
    /// 401, 403: a state of the device, not of the item. Stop the run, keep every item pending,
    /// and tell the app: re-enrol, or fix the clock (`signature_stale`).
    DeviceLevel,
    /// 410: the referral was withdrawn at the clinic. Terminal: erase the payload.
    WithdrawnAtClinic,
    /// 400, 413, 415, 422: this item fails, with its reason kept and retry/cancel offered.
    ItemFails,
}

impl Disposition {
    /// The table in `docs/PROTOCOL.md`.
    pub fn of_status(status: u16) -> Disposition {
        match status {
            200 | 201 => Disposition::Delivered,
            401 | 403 => Disposition::DeviceLevel,
            410 => Disposition::WithdrawnAtClinic,
            400 | 413 | 415 | 422 => Disposition::ItemFails,
            // 408, 409, 425, 429, 431, 5xx, and anything this table does not name (a proxy's 404 or
            // 502, a redirect): retrying loses nothing, and the reason stays visible.
            _ => Disposition::Retry,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_type_has_a_unique_code_and_round_trips_through_its_uri() {
        let mut codes = std::collections::BTreeSet::new();
        for &t in ProblemType::ALL {
            assert!(codes.insert(t.code()), "{} twice", t.code());
            assert_eq!(ProblemType::from_uri(&t.uri()), Some(t));
            let p = Problem::from_json(&Problem::new(t, None).to_json()).unwrap();
            assert_eq!(p.problem_type(), Some(t));
            assert_eq!(p.status, t.status());
            assert!(t
                .code()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        assert_eq!(ProblemType::from_uri("urn:lotsa:problem:nonsense"), None);
        assert_eq!(ProblemType::from_uri("about:blank"), None);
    }

    #[test]
    fn the_status_table_sends_each_refusal_where_the_protocol_says() {
        use Disposition::*;
        for (status, expected) in [
            (200, Delivered),
            (201, Delivered),
            (400, ItemFails),
            (401, DeviceLevel),
            (403, DeviceLevel),
            (408, Retry),
            (409, Retry),
            (410, WithdrawnAtClinic),
            (413, ItemFails),
            (415, ItemFails),
            (422, ItemFails),
            (429, Retry),
            (500, Retry),
            (503, Retry),
            (404, Retry),
            (302, Retry),
        ] {
            assert_eq!(Disposition::of_status(status), expected, "{status}");
        }
        // Every refusal a clinic sends leads somewhere sensible: nothing it sends is "delivered".
        for &t in ProblemType::ALL {
            assert_ne!(
                Disposition::of_status(t.status()),
                Delivered,
                "{}",
                t.code()
            );
        }
    }

    #[test]
    fn a_problem_detail_is_rfc_9457_shaped() {
        let p = Problem::new(
            ProblemType::SignatureStale,
            Some("created is 900 s away".into()),
        );
        let v: serde_json::Value = serde_json::from_slice(&p.to_json()).unwrap();
        assert_eq!(v["type"], "urn:lotsa:problem:signature_stale");
        assert_eq!(v["status"], 401);
        assert_eq!(v["code"], "signature_stale");
        assert!(v["title"].as_str().unwrap().contains("clock"));
        // Extensions from another implementation are allowed.
        let other = br#"{"type":"urn:lotsa:problem:withdrawn","title":"x","status":410,"code":"withdrawn","instance":"/v1/handovers"}"#;
        assert_eq!(
            Problem::from_json(other).unwrap().problem_type(),
            Some(ProblemType::Withdrawn)
        );
    }
}
