//! What the clinic signs: the receipt for a referral, which lets the device erase its copy, and
//! the confirmation of a withdrawal. Both are Ed25519 signatures with the clinic's receipt key
//! (its public half is in the program bundle) over canonical bytes: a fixed label, then each
//! field with a 64-bit big-endian length prefix (see `docs/PROTOCOL.md`). No JSON is
//! canonicalised: the JSON carries the same values as text and the signature covers exactly
//! those texts.
//!
//! The device believes a receipt only when the signature verifies with the bundle's receipt key
//! *and* every signed field is what it sent: its handover id, the SHA-256 of its sealed bytes,
//! the clinic key it sealed to, its device id and its audit-chain head. An endpoint that answers
//! 200 with anything else causes no erasure.

use super::wire::AuditHead;
use super::{
    check_id, check_schema, check_uuid, from_json, parse_utc_seconds, signing_bytes, ProtocolError,
};
use crate::crypto::{b64, PublicKey, SigningKey};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The `schema` of a [`Receipt`].
pub const RECEIPT_SCHEMA: &str = "lotsa.receipt/1";
/// The `schema` of a [`WithdrawalConfirmation`].
pub const CONFIRMATION_SCHEMA: &str = "lotsa.withdrawal-confirmation/1";
/// The first part of a receipt's canonical bytes.
pub const RECEIPT_LABEL: &[u8] = b"lotsa receipt v1";
/// The first part of a confirmation's canonical bytes.
pub const CONFIRMATION_LABEL: &[u8] = b"lotsa withdrawal confirmation v1";

/// Why a receipt or confirmation is not believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Not a receipt at all.
    #[error(transparent)]
    Malformed(#[from] ProtocolError),
    /// Signed with a key the bundle does not name for this clinic.
    #[error("the {what} is signed with another key than the clinic's receipt key")]
    WrongKey {
        /// Receipt or confirmation.
        what: &'static str,
    },
    /// The signature does not verify.
    #[error("the {what}'s signature does not verify with the clinic's receipt key")]
    BadSignature {
        /// Receipt or confirmation.
        what: &'static str,
    },
    /// A signed field is not what the device sent.
    #[error("the {what}'s {field} is not what this device sent")]
    Mismatch {
        /// Receipt or confirmation.
        what: &'static str,
        /// Which field.
        field: &'static str,
    },
}

/// The clinic's signature: made with the receipt key the bundle names (`key_ids`: the one the
/// message names, the bundle's) and valid over the canonical bytes.
fn check_signed(
    what: &'static str,
    key_ids: (&str, &str),
    key: &PublicKey,
    signature_b64: &str,
    signed: &[u8],
) -> Result<(), ReceiptError> {
    if key_ids.0 != key_ids.1 {
        return Err(ReceiptError::WrongKey { what });
    }
    let signature = super::strict_b64(signature_b64).ok_or(ReceiptError::BadSignature { what })?;
    key.verify(signed, &signature)
        .map_err(|_| ReceiptError::BadSignature { what })
}

/// What a receipt attests, as values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptFacts {
    /// The referral received.
    pub handover_id: String,
    /// SHA-256 of the sealed bytes received (`enc ‖ ciphertext`).
    pub sealed_sha256: [u8; 32],
    /// When the clinic stored it durably.
    pub received_at: DateTime<Utc>,
    /// The clinic HPKE key it was sealed to.
    pub hpke_key_id: String,
    /// The key that signs this receipt.
    pub receipt_key_id: String,
    /// The device that delivered it.
    pub device_id: String,
    /// The device's audit-chain head sent with it.
    pub audit_head: AuditHead,
}

impl ReceiptFacts {
    /// The canonical bytes: [`RECEIPT_LABEL`], handover id, sealed SHA-256 (32 bytes),
    /// received-at (its RFC 3339 text), HPKE key id, receipt key id, device id, audit seq
    /// (8 bytes big-endian), audit hash (32 bytes); each length-prefixed.
    pub fn signing_bytes(&self) -> Vec<u8> {
        signing_bytes(&[
            RECEIPT_LABEL,
            self.handover_id.as_bytes(),
            &self.sealed_sha256,
            super::utc_seconds(self.received_at).as_bytes(),
            self.hpke_key_id.as_bytes(),
            self.receipt_key_id.as_bytes(),
            self.device_id.as_bytes(),
            &self.audit_head.seq.to_be_bytes(),
            &self.audit_head.sha256,
        ])
    }

    /// The clinic signs: the receipt it sends, and sends again byte for byte on a repeat.
    pub fn sign(&self, key: &SigningKey) -> Receipt {
        Receipt {
            schema: RECEIPT_SCHEMA.to_string(),
            handover_id: self.handover_id.clone(),
            sealed_sha256: crate::crypto::hex(&self.sealed_sha256),
            received_at: super::utc_seconds(self.received_at),
            hpke_key_id: self.hpke_key_id.clone(),
            receipt_key_id: self.receipt_key_id.clone(),
            device_id: self.device_id.clone(),
            audit_head: self.audit_head,
            signature: b64(&key.sign(&self.signing_bytes())),
        }
    }
}

/// A receipt as it travels (the body of a 201 or 200 answer to `POST /v1/handovers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Always [`RECEIPT_SCHEMA`].
    pub schema: String,
    /// See [`ReceiptFacts`].
    pub handover_id: String,
    /// 64 lowercase hex digits.
    pub sealed_sha256: String,
    /// RFC 3339 in UTC with whole seconds.
    pub received_at: String,
    /// See [`ReceiptFacts`].
    pub hpke_key_id: String,
    /// See [`ReceiptFacts`].
    pub receipt_key_id: String,
    /// See [`ReceiptFacts`].
    pub device_id: String,
    /// See [`ReceiptFacts`].
    pub audit_head: AuditHead,
    /// Base64 of the Ed25519 signature over [`ReceiptFacts::signing_bytes`].
    pub signature: String,
}

impl Receipt {
    /// The answer body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a receipt always serialises")
    }

    /// Parses a received receipt and reads its facts (nothing is believed yet: see
    /// [`Receipt::verify`]).
    pub fn from_json(bytes: &[u8]) -> Result<(Receipt, ReceiptFacts), ProtocolError> {
        const WHAT: &str = "receipt";
        let r: Receipt = from_json(bytes, WHAT)?;
        check_schema(&r.schema, RECEIPT_SCHEMA, WHAT)?;
        check_uuid(&r.handover_id, WHAT, "handover_id")?;
        check_id(&r.hpke_key_id, WHAT, "hpke_key_id")?;
        check_id(&r.receipt_key_id, WHAT, "receipt_key_id")?;
        check_id(&r.device_id, WHAT, "device_id")?;
        let facts = ReceiptFacts {
            handover_id: r.handover_id.clone(),
            sealed_sha256: super::parse_sha256_hex(&r.sealed_sha256, WHAT, "sealed_sha256")?,
            received_at: parse_utc_seconds(&r.received_at, WHAT, "received_at")?,
            hpke_key_id: r.hpke_key_id.clone(),
            receipt_key_id: r.receipt_key_id.clone(),
            device_id: r.device_id.clone(),
            audit_head: r.audit_head,
        };
        Ok((r, facts))
    }

    /// The device's check before it erases anything: the receipt is signed by the clinic's
    /// receipt key (`key_id`, `key` from the bundle) and attests exactly what the device sent
    /// (`sent`; its `received_at` is ignored). Returns the clinic's received-at.
    pub fn verify(
        bytes: &[u8],
        key_id: &str,
        key: &PublicKey,
        sent: &ReceiptFacts,
    ) -> Result<(Receipt, DateTime<Utc>), ReceiptError> {
        const WHAT: &str = "receipt";
        let (receipt, facts) = Receipt::from_json(bytes)?;
        check_signed(
            WHAT,
            (&facts.receipt_key_id, key_id),
            key,
            &receipt.signature,
            &facts.signing_bytes(),
        )?;
        let checks: [(&'static str, bool); 5] = [
            ("handover_id", facts.handover_id == sent.handover_id),
            ("sealed_sha256", facts.sealed_sha256 == sent.sealed_sha256),
            ("hpke_key_id", facts.hpke_key_id == sent.hpke_key_id),
            ("device_id", facts.device_id == sent.device_id),
            ("audit_head", facts.audit_head == sent.audit_head),
        ];
        if let Some((field, _)) = checks.iter().find(|(_, ok)| !ok) {
            return Err(ReceiptError::Mismatch { what: WHAT, field });
        }
        Ok((receipt, facts.received_at))
    }
}

/// What the clinic did with a withdrawal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalOutcome {
    /// It held the referral and erased everything opened from it and its sealed bytes.
    Erased,
    /// It had not received the referral: it remembers the withdrawal and will refuse the
    /// referral with 410 if it arrives.
    NotReceived,
}

impl WithdrawalOutcome {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            WithdrawalOutcome::Erased => "erased",
            WithdrawalOutcome::NotReceived => "not_received",
        }
    }
}

/// What a withdrawal confirmation attests, as values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmationFacts {
    /// The withdrawal message confirmed.
    pub withdrawal_id: String,
    /// The referral withdrawn.
    pub handover_id: String,
    /// What the clinic did.
    pub outcome: WithdrawalOutcome,
    /// When.
    pub confirmed_at: DateTime<Utc>,
    /// The key that signs this confirmation.
    pub receipt_key_id: String,
    /// The device that sent the withdrawal.
    pub device_id: String,
}

impl ConfirmationFacts {
    /// The canonical bytes: [`CONFIRMATION_LABEL`], withdrawal id, handover id, outcome,
    /// confirmed-at (its RFC 3339 text), receipt key id, device id; each length-prefixed.
    pub fn signing_bytes(&self) -> Vec<u8> {
        signing_bytes(&[
            CONFIRMATION_LABEL,
            self.withdrawal_id.as_bytes(),
            self.handover_id.as_bytes(),
            self.outcome.as_str().as_bytes(),
            super::utc_seconds(self.confirmed_at).as_bytes(),
            self.receipt_key_id.as_bytes(),
            self.device_id.as_bytes(),
        ])
    }

    /// The clinic signs.
    pub fn sign(&self, key: &SigningKey) -> WithdrawalConfirmation {
        WithdrawalConfirmation {
            schema: CONFIRMATION_SCHEMA.to_string(),
            withdrawal_id: self.withdrawal_id.clone(),
            handover_id: self.handover_id.clone(),
            outcome: self.outcome,
            confirmed_at: super::utc_seconds(self.confirmed_at),
            receipt_key_id: self.receipt_key_id.clone(),
            device_id: self.device_id.clone(),
            signature: b64(&key.sign(&self.signing_bytes())),
        }
    }
}

/// A withdrawal confirmation as it travels (the body of a 201 or 200 answer to
/// `POST /v1/withdrawals`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalConfirmation {
    /// Always [`CONFIRMATION_SCHEMA`].
    pub schema: String,
    /// See [`ConfirmationFacts`].
    pub withdrawal_id: String,
    /// See [`ConfirmationFacts`].
    pub handover_id: String,
    /// See [`ConfirmationFacts`].
    pub outcome: WithdrawalOutcome,
    /// RFC 3339 in UTC with whole seconds.
    pub confirmed_at: String,
    /// See [`ConfirmationFacts`].
    pub receipt_key_id: String,
    /// See [`ConfirmationFacts`].
    pub device_id: String,
    /// Base64 of the Ed25519 signature over [`ConfirmationFacts::signing_bytes`].
    pub signature: String,
}

impl WithdrawalConfirmation {
    /// The answer body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a confirmation always serialises")
    }

    /// Parses a received confirmation and reads its facts.
    pub fn from_json(
        bytes: &[u8],
    ) -> Result<(WithdrawalConfirmation, ConfirmationFacts), ProtocolError> {
        const WHAT: &str = "withdrawal confirmation";
        let c: WithdrawalConfirmation = from_json(bytes, WHAT)?;
        check_schema(&c.schema, CONFIRMATION_SCHEMA, WHAT)?;
        check_uuid(&c.withdrawal_id, WHAT, "withdrawal_id")?;
        check_uuid(&c.handover_id, WHAT, "handover_id")?;
        check_id(&c.receipt_key_id, WHAT, "receipt_key_id")?;
        check_id(&c.device_id, WHAT, "device_id")?;
        let facts = ConfirmationFacts {
            withdrawal_id: c.withdrawal_id.clone(),
            handover_id: c.handover_id.clone(),
            outcome: c.outcome,
            confirmed_at: parse_utc_seconds(&c.confirmed_at, WHAT, "confirmed_at")?,
            receipt_key_id: c.receipt_key_id.clone(),
            device_id: c.device_id.clone(),
        };
        Ok((c, facts))
    }

    /// The device's check: signed by the clinic's receipt key and about the withdrawal it sent
    /// (`withdrawal_id`, `handover_id`, `device_id`). Returns the clinic's outcome.
    pub fn verify(
        bytes: &[u8],
        key_id: &str,
        key: &PublicKey,
        sent: (&str, &str, &str),
    ) -> Result<ConfirmationFacts, ReceiptError> {
        const WHAT: &str = "withdrawal confirmation";
        let (withdrawal_id, handover_id, device_id) = sent;
        let (c, facts) = WithdrawalConfirmation::from_json(bytes)?;
        check_signed(
            WHAT,
            (&facts.receipt_key_id, key_id),
            key,
            &c.signature,
            &facts.signing_bytes(),
        )?;
        for (field, ok) in [
            ("withdrawal_id", facts.withdrawal_id == withdrawal_id),
            ("handover_id", facts.handover_id == handover_id),
            ("device_id", facts.device_id == device_id),
        ] {
            if !ok {
                return Err(ReceiptError::Mismatch { what: WHAT, field });
            }
        }
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn facts() -> ReceiptFacts {
        ReceiptFacts {
            handover_id: "0b9f7a52-5c1e-4d7a-9a43-1f0e2d3c4b5a".into(),
            sealed_sha256: crate::crypto::sha256(b"sealed"),
            received_at: Utc.with_ymd_and_hms(2026, 12, 1, 9, 30, 5).unwrap(),
            hpke_key_id: "lfl-2026".into(),
            receipt_key_id: "lfl-receipts".into(),
            device_id: "3f2a9c1b7e6d5a40".into(),
            audit_head: AuditHead {
                seq: 12,
                sha256: crate::crypto::sha256(b"entry 12"),
            },
        }
    }

    #[test]
    fn a_receipt_verifies_only_for_what_the_device_sent() {
        let key = SigningKey::generate().unwrap();
        let bytes = facts().sign(&key).to_json();
        let (_, at) = Receipt::verify(&bytes, "lfl-receipts", &key.public_key(), &facts()).unwrap();
        assert_eq!(at, facts().received_at);

        let other = SigningKey::generate().unwrap();
        assert_eq!(
            Receipt::verify(&bytes, "lfl-receipts", &other.public_key(), &facts()).unwrap_err(),
            ReceiptError::BadSignature { what: "receipt" }
        );
        assert_eq!(
            Receipt::verify(&bytes, "other-key", &key.public_key(), &facts()).unwrap_err(),
            ReceiptError::WrongKey { what: "receipt" }
        );
        type Spoil = fn(&mut ReceiptFacts);
        let cases: [(&str, Spoil); 5] = [
            ("handover_id", |f| {
                f.handover_id = "1b9f7a52-5c1e-4d7a-9a43-1f0e2d3c4b5a".into()
            }),
            ("sealed_sha256", |f| f.sealed_sha256[0] ^= 1),
            ("hpke_key_id", |f| f.hpke_key_id = "lfl-2027".into()),
            ("device_id", |f| f.device_id = "0000000000000000".into()),
            ("audit_head", |f| f.audit_head.seq += 1),
        ];
        for (field, spoil) in cases {
            let mut sent = facts();
            spoil(&mut sent);
            assert_eq!(
                Receipt::verify(&bytes, "lfl-receipts", &key.public_key(), &sent).unwrap_err(),
                ReceiptError::Mismatch {
                    what: "receipt",
                    field
                },
            );
        }
    }

    #[test]
    fn a_receipt_with_any_signed_field_edited_does_not_verify() {
        let key = SigningKey::generate().unwrap();
        let receipt = facts().sign(&key);
        let edits: [fn(&mut Receipt); 5] = [
            |r| r.received_at = "2026-12-01T09:30:06Z".into(),
            |r| r.handover_id = "1b9f7a52-5c1e-4d7a-9a43-1f0e2d3c4b5a".into(),
            |r| r.audit_head.sha256[31] ^= 1,
            |r| r.device_id = "3f2a9c1b7e6d5a41".into(),
            |r| r.hpke_key_id = "lfl-2027".into(),
        ];
        for edit in edits {
            let mut r = receipt.clone();
            edit(&mut r);
            let (_, mut sent) = Receipt::from_json(&r.to_json()).unwrap();
            sent.received_at = facts().received_at;
            let err = Receipt::verify(&r.to_json(), "lfl-receipts", &key.public_key(), &sent)
                .unwrap_err();
            assert_eq!(err, ReceiptError::BadSignature { what: "receipt" });
        }
    }

    #[test]
    fn a_confirmation_verifies_only_for_the_withdrawal_sent() {
        let key = SigningKey::generate().unwrap();
        let facts = ConfirmationFacts {
            withdrawal_id: "5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f".into(),
            handover_id: "0b9f7a52-5c1e-4d7a-9a43-1f0e2d3c4b5a".into(),
            outcome: WithdrawalOutcome::Erased,
            confirmed_at: Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap(),
            receipt_key_id: "lfl-receipts".into(),
            device_id: "3f2a9c1b7e6d5a40".into(),
        };
        let bytes = facts.sign(&key).to_json();
        let sent = (
            facts.withdrawal_id.as_str(),
            facts.handover_id.as_str(),
            facts.device_id.as_str(),
        );
        let got = WithdrawalConfirmation::verify(&bytes, "lfl-receipts", &key.public_key(), sent)
            .unwrap();
        assert_eq!(got, facts);
        let wrong = (sent.0, "1b9f7a52-5c1e-4d7a-9a43-1f0e2d3c4b5a", sent.2);
        assert_eq!(
            WithdrawalConfirmation::verify(&bytes, "lfl-receipts", &key.public_key(), wrong)
                .unwrap_err(),
            ReceiptError::Mismatch {
                what: "withdrawal confirmation",
                field: "handover_id"
            }
        );
        // The outcome is signed: "erased" cannot be turned into "not received" or back.
        let mut c = facts.sign(&key);
        c.outcome = WithdrawalOutcome::NotReceived;
        assert!(matches!(
            WithdrawalConfirmation::verify(&c.to_json(), "lfl-receipts", &key.public_key(), sent),
            Err(ReceiptError::BadSignature { .. })
        ));
    }
}
