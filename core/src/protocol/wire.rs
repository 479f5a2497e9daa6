//! The messages a device sends and the clinic answers with (receipts are in
//! [`receipt`](super::receipt)). Each has a `schema` naming it and its version, like the handover
//! payload (`lotsa.handover/1`), and is refused whole when any field is wrong: a clinic never
//! acts on half a message.

use super::ProblemType;
use super::{check_id, check_schema, check_uuid, from_json, parse_sha256_hex, ProtocolError};
use crate::consent::{Role, Withdrawal};
use crate::crypto::seal::{open_from_device, ClinicKeyPair, SealBinding, Sealed, ENC_LEN, TAG_LEN};
use crate::crypto::{b64, hex, PublicKey};
use crate::referral::{HandoverPayload, HANDOVER_SCHEMA};
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

/// The `schema` of an [`Envelope`].
pub const ENVELOPE_SCHEMA: &str = "lotsa.envelope/1";
/// The `schema` of a [`WithdrawalMessage`].
pub const WITHDRAWAL_SCHEMA: &str = "lotsa.withdrawal/1";
/// The `schema` of an [`EnrolmentRequest`].
pub const ENROLMENT_REQUEST_SCHEMA: &str = "lotsa.enrolment-request/1";
/// The `schema` of an [`EnrolmentAnswer`].
pub const ENROLMENT_SCHEMA: &str = "lotsa.enrolment/1";
/// `schema` of a device's queue-health report.
pub const DEVICE_STATUS_SCHEMA: &str = "lotsa.device-status/1";

/// Opens sealed referral bytes with the clinic key pair their binding names, in memory: they
/// open with exactly that binding ([`ProblemType::DoesNotOpen`]), are a handover of the schema
/// its version names ([`ProblemType::PayloadInvalid`]), and name the binding's handover and
/// program ([`ProblemType::EnvelopeMismatch`]). The clinic opens a received envelope this way,
/// and a stored referral when staff read it.
pub fn open_payload(
    key: &ClinicKeyPair,
    binding: &SealBinding<'_>,
    sealed: &[u8],
) -> Result<HandoverPayload, ProblemType> {
    let sealed = Sealed::from_bytes(sealed).map_err(|_| ProblemType::MalformedBody)?;
    if binding.schema_version != crate::referral::PAYLOAD_SCHEMA_VERSION {
        return Err(ProblemType::PayloadInvalid);
    }
    let mut plain =
        open_from_device(key, binding, &sealed).map_err(|_| ProblemType::DoesNotOpen)?;
    let payload = serde_json::from_slice::<HandoverPayload>(&plain);
    crate::crypto::wipe(&mut plain);
    let payload = payload.map_err(|_| ProblemType::PayloadInvalid)?;
    if payload.schema != HANDOVER_SCHEMA {
        return Err(ProblemType::PayloadInvalid);
    }
    if payload.handover_id != binding.handover_id || payload.program_id != binding.program_id {
        return Err(ProblemType::EnvelopeMismatch);
    }
    Ok(payload)
}

/// A sealed referral as it travels: the clear metadata the clinic needs to pick its key and to
/// open the payload (the same values are bound into the seal, so edited metadata does not open),
/// and the sealed bytes (`enc ‖ ciphertext`, see [`crate::crypto::seal`]) in base64.
///
/// The device builds it from its outbox row every time it sends, so a resend carries the same
/// sealed bytes. Two envelopes are *the same delivery* when every field is equal; the clinic
/// compares the parsed fields, not the JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Always [`ENVELOPE_SCHEMA`].
    pub schema: String,
    /// The handover id (also the `Idempotency-Key` and the clinic's dedupe key).
    pub handover_id: String,
    /// The program the referral belongs to.
    pub program_id: String,
    /// The id of the clinic HPKE key the payload is sealed to.
    pub clinic_key_id: String,
    /// The version of the sealed payload's schema (`1` for `lotsa.handover/1`).
    pub payload_schema_version: u32,
    /// Base64 of `enc (32 bytes) ‖ ciphertext`.
    pub sealed: String,
}

impl Envelope {
    /// The envelope for sealed bytes, as the device sends it.
    pub fn new(binding: &SealBinding<'_>, sealed: &[u8]) -> Envelope {
        Envelope {
            schema: ENVELOPE_SCHEMA.to_string(),
            handover_id: binding.handover_id.to_string(),
            program_id: binding.program_id.to_string(),
            clinic_key_id: binding.clinic_key_id.to_string(),
            payload_schema_version: binding.schema_version,
            sealed: b64(sealed),
        }
    }

    /// The request body (compact JSON, fields in the order above).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serialises")
    }

    /// Parses and checks a received body.
    pub fn from_json(bytes: &[u8]) -> Result<Envelope, ProtocolError> {
        const WHAT: &str = "envelope";
        let e: Envelope = from_json(bytes, WHAT)?;
        check_schema(&e.schema, ENVELOPE_SCHEMA, WHAT)?;
        check_uuid(&e.handover_id, WHAT, "handover_id")?;
        check_id(&e.program_id, WHAT, "program_id")?;
        check_id(&e.clinic_key_id, WHAT, "clinic_key_id")?;
        if e.payload_schema_version == 0 {
            return Err(ProtocolError::Invalid {
                what: WHAT,
                field: "payload_schema_version",
                reason: "must be 1 or more",
            });
        }
        e.sealed_bytes()?;
        Ok(e)
    }

    /// The sealed bytes.
    pub fn sealed_bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        let invalid = |reason| ProtocolError::Invalid {
            what: "envelope",
            field: "sealed",
            reason,
        };
        let bytes = super::strict_b64(&self.sealed)
            .ok_or(invalid("must be standard base64 with padding"))?;
        if bytes.len() < ENC_LEN + TAG_LEN {
            return Err(invalid("is shorter than an HPKE encapsulated key and tag"));
        }
        Ok(bytes)
    }

    /// The clinic's opening of a received envelope, in memory, with the key pair its
    /// `clinic_key_id` names: the payload opens with the envelope's binding
    /// ([`ProblemType::DoesNotOpen`]), is a handover of the schema its version names
    /// ([`ProblemType::PayloadInvalid`]), names the envelope's handover and program
    /// ([`ProblemType::EnvelopeMismatch`]), and its consent is at most
    /// [`MAX_DELIVERY_AGE_DAYS`](super::MAX_DELIVERY_AGE_DAYS) old at `now`
    /// ([`ProblemType::ReferralTooOld`]).
    pub fn open(
        &self,
        key: &ClinicKeyPair,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<HandoverPayload, ProblemType> {
        let sealed = self
            .sealed_bytes()
            .map_err(|_| ProblemType::MalformedBody)?;
        let payload = open_payload(key, &self.binding(), &sealed)?;
        let age = now - payload.consent.given_at.with_timezone(&chrono::Utc);
        if age > chrono::Duration::days(super::MAX_DELIVERY_AGE_DAYS) {
            return Err(ProblemType::ReferralTooOld);
        }
        Ok(payload)
    }

    /// What the payload is bound to: the clinic opens it with exactly these values.
    pub fn binding(&self) -> SealBinding<'_> {
        SealBinding {
            handover_id: &self.handover_id,
            program_id: &self.program_id,
            clinic_key_id: &self.clinic_key_id,
            schema_version: self.payload_schema_version,
        }
    }
}

/// The device's audit-chain head when it sent a request: the sequence number and hash of its
/// newest audit entry (0 and 32 zero bytes for an empty log). It travels in the signed
/// `Lotsa-Audit-Head` header, because the sealed body is resent byte-identical, and the clinic's
/// receipt signs it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditHead {
    /// The newest entry's sequence number.
    pub seq: u64,
    /// The newest entry's hash, 64 lowercase hex digits in JSON.
    #[serde(with = "hex32")]
    pub sha256: [u8; 32],
}

impl AuditHead {
    /// The header value: an RFC 9651 dictionary, `seq=42, sha256=:<base64>:`.
    pub fn to_header(&self) -> String {
        format!("seq={}, sha256=:{}:", self.seq, b64(&self.sha256))
    }

    /// Parses a header value made by [`AuditHead::to_header`] (any RFC 9651 spelling of the same
    /// dictionary): exactly the members `seq` (a non-negative integer) and `sha256` (32 bytes).
    pub fn from_header(value: &str) -> Result<AuditHead, ProtocolError> {
        let invalid = |reason| ProtocolError::Invalid {
            what: "audit head",
            field: super::AUDIT_HEAD_HEADER,
            reason,
        };
        let dict: sfv::Dictionary = sfv::Parser::new(value)
            .parse()
            .map_err(|_| invalid("is not an RFC 9651 dictionary"))?;
        if dict.len() != 2 {
            return Err(invalid("must hold exactly seq and sha256"));
        }
        let item = |name: &str| match dict.get(name) {
            Some(sfv::ListEntry::Item(item)) if item.params.is_empty() => Some(&item.bare_item),
            _ => None,
        };
        let seq = item("seq")
            .and_then(|v| v.as_integer())
            .and_then(|n| u64::try_from(i64::from(n)).ok())
            .ok_or_else(|| invalid("seq must be a non-negative integer"))?;
        let sha256: [u8; 32] = item("sha256")
            .and_then(|v| v.as_byte_sequence())
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| invalid("sha256 must be a 32-byte byte sequence"))?;
        Ok(AuditHead { seq, sha256 })
    }
}

/// A withdrawal of consent as the clinic receives it: the consent module's [`Withdrawal`] (ids,
/// the minute, the recorder's role; nothing about the person or the officer) with an id of its
/// own. The device stores it as it will be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalMessage {
    /// Always [`WITHDRAWAL_SCHEMA`].
    pub schema: String,
    /// This message's id (the clinic's dedupe key for it).
    pub withdrawal_id: String,
    /// The referral withdrawn.
    pub handover_id: String,
    /// The consent withdrawn, when the device still knew it (present, `null` otherwise).
    #[serde(deserialize_with = "nullable")]
    pub consent_id: Option<String>,
    /// The program.
    pub program_id: String,
    /// When, to the minute, with the Stockholm offset.
    pub withdrawn_at: DateTime<FixedOffset>,
    /// Who took it on the street, by role; `null` when the person told the clinic directly.
    #[serde(deserialize_with = "nullable")]
    pub recorded_by_role: Option<Role>,
}

impl WithdrawalMessage {
    /// The message for a withdrawal.
    pub fn new(withdrawal_id: &str, withdrawal: &Withdrawal) -> WithdrawalMessage {
        WithdrawalMessage {
            schema: WITHDRAWAL_SCHEMA.to_string(),
            withdrawal_id: withdrawal_id.to_string(),
            handover_id: withdrawal.handover_id.clone(),
            consent_id: withdrawal.consent_id.clone(),
            program_id: withdrawal.program_id.clone(),
            withdrawn_at: withdrawal.withdrawn_at,
            recorded_by_role: withdrawal.recorded_by_role,
        }
    }

    /// The request body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a withdrawal always serialises")
    }

    /// Parses and checks a received body.
    pub fn from_json(bytes: &[u8]) -> Result<WithdrawalMessage, ProtocolError> {
        const WHAT: &str = "withdrawal";
        let m: WithdrawalMessage = from_json(bytes, WHAT)?;
        check_schema(&m.schema, WITHDRAWAL_SCHEMA, WHAT)?;
        check_uuid(&m.withdrawal_id, WHAT, "withdrawal_id")?;
        check_uuid(&m.handover_id, WHAT, "handover_id")?;
        if let Some(consent) = &m.consent_id {
            check_uuid(consent, WHAT, "consent_id")?;
        }
        check_id(&m.program_id, WHAT, "program_id")?;
        if m.withdrawn_at.timestamp() % 60 != 0 || m.withdrawn_at.timestamp_subsec_nanos() != 0 {
            return Err(ProtocolError::Invalid {
                what: WHAT,
                field: "withdrawn_at",
                reason: "must be a whole minute (the clinic learns the minute, not the second)",
            });
        }
        Ok(m)
    }
}

/// `POST /v1/devices`: a device asks a clinic to know its public key, with the one-time code
/// the clinic's administrator gave. The request is signed with the key being enrolled (proof of
/// possession), so `keyid` must be this key's [`device_id`](super::device_id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentRequest {
    /// Always [`ENROLMENT_REQUEST_SCHEMA`].
    pub schema: String,
    /// The one-time code, as the administrator printed it (case and dashes do not matter).
    pub code: String,
    /// Base64 of the device's 32-byte Ed25519 public key.
    pub public_key: String,
}

impl EnrolmentRequest {
    /// The request for a key and a code.
    pub fn new(code: &str, key: &PublicKey) -> EnrolmentRequest {
        EnrolmentRequest {
            schema: ENROLMENT_REQUEST_SCHEMA.to_string(),
            code: code.to_string(),
            public_key: key.to_b64(),
        }
    }

    /// The request body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an enrolment request always serialises")
    }

    /// Parses and checks a received body; returns it with the key.
    pub fn from_json(bytes: &[u8]) -> Result<(EnrolmentRequest, PublicKey), ProtocolError> {
        const WHAT: &str = "enrolment request";
        let r: EnrolmentRequest = from_json(bytes, WHAT)?;
        check_schema(&r.schema, ENROLMENT_REQUEST_SCHEMA, WHAT)?;
        if r.code.is_empty() || r.code.len() > 64 || !r.code.is_ascii() {
            return Err(ProtocolError::Invalid {
                what: WHAT,
                field: "code",
                reason: "must be the code as printed (1–64 ASCII characters)",
            });
        }
        let key = super::strict_b64(&r.public_key)
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .map(PublicKey)
            .ok_or(ProtocolError::Invalid {
                what: WHAT,
                field: "public_key",
                reason: "must be the base64 of a 32-byte Ed25519 public key",
            })?;
        Ok((r, key))
    }
}

/// The clinic's answer to an enrolment: the device id it now knows the key by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentAnswer {
    /// Always [`ENROLMENT_SCHEMA`].
    pub schema: String,
    /// The device id (the signature `keyid` from now on).
    pub device_id: String,
    /// When the clinic enrolled it (see [`utc_seconds`](super::utc_seconds)).
    pub enrolled_at: String,
}

impl EnrolmentAnswer {
    /// Parses and checks an answer.
    pub fn from_json(bytes: &[u8]) -> Result<EnrolmentAnswer, ProtocolError> {
        const WHAT: &str = "enrolment";
        let a: EnrolmentAnswer = from_json(bytes, WHAT)?;
        check_schema(&a.schema, ENROLMENT_SCHEMA, WHAT)?;
        check_id(&a.device_id, WHAT, "device_id")?;
        super::parse_utc_seconds(&a.enrolled_at, WHAT, "enrolled_at")?;
        Ok(a)
    }

    /// The answer for a key enrolled at an instant.
    pub fn new(key: &PublicKey, enrolled_at: chrono::DateTime<chrono::Utc>) -> EnrolmentAnswer {
        EnrolmentAnswer {
            schema: ENROLMENT_SCHEMA.to_string(),
            device_id: super::device_id(key),
            enrolled_at: super::utc_seconds(enrolled_at),
        }
    }

    /// The answer body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an enrolment answer always serialises")
    }
}

/// A member that must be present but may be `null` (serde would otherwise take a missing
/// `Option` as `None`, and a message with a member left out would pass).
fn nullable<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// 32 bytes as 64 lowercase hex digits in JSON.
pub(crate) mod hex32 {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        super::parse_sha256_hex(&text, "message", "sha256")
            .map_err(|_| serde::de::Error::custom("not 64 lowercase hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SigningKey;

    fn binding() -> SealBinding<'static> {
        SealBinding {
            handover_id: "0b9f7a52-5c1e-4d7a-9a43-1f0e2d3c4b5a",
            program_id: "lots-for-livet",
            clinic_key_id: "lfl-2026",
            schema_version: 1,
        }
    }

    #[test]
    fn an_envelope_round_trips_and_names_what_it_is_bound_to() {
        let sealed = vec![7u8; 80];
        let e = Envelope::new(&binding(), &sealed);
        let back = Envelope::from_json(&e.to_json()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.sealed_bytes().unwrap(), sealed);
        assert_eq!(back.binding(), binding());
        assert!(String::from_utf8(e.to_json())
            .unwrap()
            .starts_with(r#"{"schema":"lotsa.envelope/1","handover_id":"#));
    }

    #[test]
    fn the_clinic_opens_only_a_payload_that_matches_its_envelope_and_is_fresh() {
        use crate::crypto::seal::seal_to_clinic;
        let plain = super::super::vectors::PLAINTEXT;
        let clinic = ClinicKeyPair::generate().unwrap();
        let binding = SealBinding {
            handover_id: "0b6c1f5e-3d2a-4c8e-9f10-2a3b4c5d6e7f",
            program_id: "lots-for-livet",
            clinic_key_id: "lfl-2026",
            schema_version: 1,
        };
        let given = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:30:00+01:00")
            .unwrap()
            .to_utc();
        let seal = |b: &SealBinding<'_>, text: &str| {
            let sealed = seal_to_clinic(&clinic.public_key(), b, text.as_bytes()).unwrap();
            Envelope::new(b, &sealed.to_bytes())
        };
        let good = seal(&binding, plain);
        assert_eq!(
            good.open(&clinic, given).unwrap().handover_id,
            binding.handover_id
        );

        let mut relabelled = good.clone();
        relabelled.program_id = "kalmar".into();
        assert_eq!(
            relabelled.open(&clinic, given).unwrap_err(),
            ProblemType::DoesNotOpen
        );
        let other = ClinicKeyPair::generate().unwrap();
        assert_eq!(
            good.open(&other, given).unwrap_err(),
            ProblemType::DoesNotOpen
        );

        let elsewhere = SealBinding {
            handover_id: "1b6c1f5e-3d2a-4c8e-9f10-2a3b4c5d6e7f",
            ..binding
        };
        assert_eq!(
            seal(&elsewhere, plain).open(&clinic, given).unwrap_err(),
            ProblemType::EnvelopeMismatch
        );
        assert_eq!(
            seal(&binding, r#"{"schema":"lotsa.handover/1"}"#)
                .open(&clinic, given)
                .unwrap_err(),
            ProblemType::PayloadInvalid
        );
        let day = chrono::Duration::days(1);
        assert!(good.open(&clinic, given + day * 30).is_ok());
        assert_eq!(
            good.open(&clinic, given + day * 30 + chrono::Duration::seconds(1))
                .unwrap_err(),
            ProblemType::ReferralTooOld
        );
    }

    #[test]
    fn a_wrong_envelope_is_refused_naming_the_field() {
        let good = Envelope::new(&binding(), &[7u8; 80]);
        type Spoil = fn(&mut Envelope);
        let cases: [(&str, Spoil); 7] = [
            ("schema", |e| e.schema = "lotsa.envelope/2".into()),
            ("handover_id", |e| e.handover_id = "not-a-uuid".into()),
            ("program_id", |e| e.program_id = "lots för livet".into()),
            ("clinic_key_id", |e| e.clinic_key_id = String::new()),
            ("payload_schema_version", |e| e.payload_schema_version = 0),
            ("sealed", |e| e.sealed = b64(&[1u8; 47])),
            ("sealed", |e| e.sealed = format!(" {}", e.sealed)),
        ];
        for (field, spoil) in cases {
            let mut e = good.clone();
            spoil(&mut e);
            let err = Envelope::from_json(&e.to_json()).unwrap_err();
            assert_eq!(err.field(), Some(field), "{err}");
        }
        let extra = br#"{"schema":"lotsa.envelope/1","extra":1}"#;
        assert!(matches!(
            Envelope::from_json(extra),
            Err(ProtocolError::Malformed { .. })
        ));
    }

    #[test]
    fn the_audit_head_header_round_trips_and_is_strict() {
        let head = AuditHead {
            seq: 42,
            sha256: crate::crypto::sha256(b"entry 42"),
        };
        assert_eq!(AuditHead::from_header(&head.to_header()).unwrap(), head);
        // Another spelling of the same dictionary is the same head.
        let swapped = format!("sha256=:{}:,seq=42", b64(&head.sha256));
        assert_eq!(AuditHead::from_header(&swapped).unwrap(), head);
        for bad in [
            "seq=42".to_string(),
            format!("seq=-1, sha256=:{}:", b64(&head.sha256)),
            format!("seq=1, sha256=:{}:", b64(&[0u8; 31])),
            format!("seq=1, sha256=:{}:, more=1", b64(&head.sha256)),
            format!("seq=1;x=1, sha256=:{}:", b64(&head.sha256)),
            "not a dictionary (".to_string(),
        ] {
            assert!(AuditHead::from_header(&bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&head).unwrap();
        assert_eq!(
            json,
            format!(r#"{{"seq":42,"sha256":"{}"}}"#, hex(&head.sha256))
        );
    }

    #[test]
    fn a_withdrawal_message_round_trips_and_carries_nothing_personal() {
        let w = Withdrawal {
            handover_id: binding().handover_id.to_string(),
            consent_id: Some("1c3e5f70-8a9b-4c2d-8e1f-2a3b4c5d6e7f".into()),
            program_id: "lots-for-livet".into(),
            withdrawn_at: DateTime::parse_from_rfc3339("2026-12-01T10:31:00+01:00").unwrap(),
            recorded_by_role: Some(Role::Police),
        };
        let m = WithdrawalMessage::new("5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f", &w);
        let json = m.to_json();
        assert_eq!(WithdrawalMessage::from_json(&json).unwrap(), m);
        // The fields, in the order the store has always written them; nothing else.
        let text = String::from_utf8(json.clone()).unwrap();
        let order = [
            "schema",
            "withdrawal_id",
            "handover_id",
            "consent_id",
            "program_id",
            "withdrawn_at",
            "recorded_by_role",
        ];
        let at: Vec<usize> = order
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value.as_object().unwrap().len(), order.len());
        // Both optional members are present as null, never left out.
        let mut anonymous = m.clone();
        anonymous.consent_id = None;
        anonymous.recorded_by_role = None;
        let text = String::from_utf8(anonymous.to_json()).unwrap();
        assert!(
            text.contains(r#""consent_id":null"#) && text.contains(r#""recorded_by_role":null"#)
        );
        assert_eq!(
            WithdrawalMessage::from_json(text.as_bytes()).unwrap(),
            anonymous
        );
        let left_out = text.replace(r#","recorded_by_role":null"#, "");
        assert!(matches!(
            WithdrawalMessage::from_json(left_out.as_bytes()),
            Err(ProtocolError::Malformed { .. })
        ));
        let seconds = text.replace("T10:31:00+01:00", "T10:31:07+01:00");
        assert_eq!(
            WithdrawalMessage::from_json(seconds.as_bytes())
                .unwrap_err()
                .field(),
            Some("withdrawn_at")
        );
        let mut bad = m.clone();
        bad.consent_id = Some("x".into());
        assert_eq!(
            WithdrawalMessage::from_json(&bad.to_json())
                .unwrap_err()
                .field(),
            Some("consent_id")
        );
    }

    #[test]
    fn an_enrolment_names_the_key_and_its_device_id() {
        let key = SigningKey::generate().unwrap().public_key();
        let (req, parsed) =
            EnrolmentRequest::from_json(&EnrolmentRequest::new("K7QM-4TX2-9HRC", &key).to_json())
                .unwrap();
        assert_eq!(parsed, key);
        assert_eq!(req.code, "K7QM-4TX2-9HRC");
        let bad = br#"{"schema":"lotsa.enrolment-request/1","code":"X","public_key":"AAAA"}"#;
        assert_eq!(
            EnrolmentRequest::from_json(bad).unwrap_err().field(),
            Some("public_key")
        );
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-01T09:00:00Z")
            .unwrap()
            .to_utc();
        let answer = EnrolmentAnswer::new(&key, at);
        assert_eq!(answer.device_id, super::super::device_id(&key));
        assert_eq!(
            EnrolmentAnswer::from_json(&answer.to_json()).unwrap(),
            answer
        );
    }
}

/// `POST /v1/device-status`: the health of the device's queue for this clinic, sent at most once
/// per sync run to each clinic it reached, so the clinic can see a phone that sits on undelivered
/// referrals. Counts and an age only: nothing about any person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceStatus {
    /// Always [`DEVICE_STATUS_SCHEMA`].
    pub schema: String,
    /// When the device counted (see [`utc_seconds`](super::utc_seconds)).
    pub reported_at: String,
    /// Items for this clinic by state.
    pub counts: QueueCounts,
    /// Age in seconds of the oldest item for this clinic still waiting (pending, sending or
    /// failed); `null` when none waits.
    #[serde(deserialize_with = "nullable")]
    pub oldest_pending_secs: Option<u64>,
}

/// A device's items for one clinic, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueCounts {
    /// Waiting to be sent.
    pub pending: u64,
    /// Being sent right now.
    pub sending: u64,
    /// Refused as they are; waiting for the officer (retry or cancel).
    pub failed: u64,
    /// Damaged on the device; kept.
    pub damaged: u64,
}

impl DeviceStatus {
    /// The report body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a device status always serialises")
    }

    /// Parses and checks a received body.
    pub fn from_json(bytes: &[u8]) -> Result<DeviceStatus, ProtocolError> {
        const WHAT: &str = "device status";
        let d: DeviceStatus = from_json(bytes, WHAT)?;
        check_schema(&d.schema, DEVICE_STATUS_SCHEMA, WHAT)?;
        super::parse_utc_seconds(&d.reported_at, WHAT, "reported_at")?;
        Ok(d)
    }
}
