"""The clinic's signed receipt and withdrawal confirmation: their canonical bytes rebuilt here from
the JSON (a fixed label, then each signed value after a 64-bit big-endian length prefix; digests
and hashes as their 32 raw bytes, the audit seq as 8 bytes big-endian, instants as their text), and
the Ed25519 signature checked with cryptography and the receipt public key."""

from __future__ import annotations

import json
import struct

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common import KEYS, SEAL, VECTORS, b64, length_prefixed, unb64

RECEIPT = json.loads(VECTORS["receipt"]["json"])
CONFIRMATION = json.loads(VECTORS["withdrawal_confirmation"]["json"])
RECEIPT_PUBLIC = Ed25519PublicKey.from_public_bytes(unb64(KEYS["receipt_public_key_b64"]))


def receipt_bytes(r: dict) -> bytes:
    return length_prefixed(
        b"lotsa receipt v1",
        r["handover_id"].encode(),
        bytes.fromhex(r["sealed_sha256"]),
        r["received_at"].encode(),
        r["hpke_key_id"].encode(),
        r["receipt_key_id"].encode(),
        r["device_id"].encode(),
        struct.pack(">Q", r["audit_head"]["seq"]),
        bytes.fromhex(r["audit_head"]["sha256"]),
    )


def confirmation_bytes(c: dict) -> bytes:
    return length_prefixed(
        b"lotsa withdrawal confirmation v1",
        c["withdrawal_id"].encode(),
        c["handover_id"].encode(),
        c["outcome"].encode(),
        c["confirmed_at"].encode(),
        c["receipt_key_id"].encode(),
        c["device_id"].encode(),
    )


def verifies(message: dict, canonical) -> bool:
    try:
        RECEIPT_PUBLIC.verify(unb64(message["signature"]), canonical(message))
        return True
    except InvalidSignature:
        return False


def test_the_receipt_key_seed_has_the_published_public_key():
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(KEYS["receipt_seed_hex"]))
    assert b64(key.public_key().public_bytes_raw()) == KEYS["receipt_public_key_b64"]


def test_the_receipt_canonical_bytes_rebuilt_from_its_json_equal_the_vector():
    assert receipt_bytes(RECEIPT).hex() == VECTORS["receipt"]["signing_bytes_hex"]


def test_the_confirmation_canonical_bytes_rebuilt_from_its_json_equal_the_vector():
    assert confirmation_bytes(CONFIRMATION).hex() == VECTORS["withdrawal_confirmation"]["signing_bytes_hex"]


@pytest.mark.parametrize(
    "message, canonical", [(RECEIPT, receipt_bytes), (CONFIRMATION, confirmation_bytes)], ids=["receipt", "confirmation"]
)
def test_the_signature_verifies_with_the_receipt_public_key_and_is_what_the_seed_signs(message, canonical):
    assert message["receipt_key_id"] == KEYS["receipt_key_id"]
    assert verifies(message, canonical)
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(KEYS["receipt_seed_hex"]))
    assert b64(key.sign(canonical(message))) == message["signature"]


def test_the_receipt_attests_exactly_what_the_device_sent():
    request = VECTORS["request_signature"]
    assert RECEIPT["handover_id"] == SEAL["handover_id"]
    assert RECEIPT["sealed_sha256"] == SEAL["sealed_sha256_hex"]
    assert RECEIPT["hpke_key_id"] == SEAL["clinic_key_id"]
    assert RECEIPT["device_id"] == KEYS["device_id"]
    assert RECEIPT["audit_head"] == {
        "seq": request["audit_head"]["seq"],
        "sha256": request["audit_head"]["sha256_hex"],
    }


def test_the_confirmation_is_about_the_withdrawal_sent():
    withdrawal = json.loads(VECTORS["withdrawal"]["body"])
    assert CONFIRMATION["withdrawal_id"] == withdrawal["withdrawal_id"]
    assert CONFIRMATION["handover_id"] == withdrawal["handover_id"]
    assert CONFIRMATION["device_id"] == KEYS["device_id"]
    assert CONFIRMATION["outcome"] in ("erased", "not_received")


def edited(message: dict, path: str, value) -> dict:
    out = json.loads(json.dumps(message))
    *parents, last = path.split(".")
    target = out
    for p in parents:
        target = target[p]
    target[last] = value
    return out


RECEIPT_EDITS = [
    ("handover_id", "1b6c1f5e-3d2a-4c8e-9f10-2a3b4c5d6e7f"),
    ("sealed_sha256", "0" * 64),
    ("received_at", "2026-12-01T09:31:03Z"),
    ("hpke_key_id", "lfl-2027"),
    ("receipt_key_id", "lfl-receipts-2"),
    ("device_id", "0000000000000000"),
    ("audit_head.seq", 18),
    ("audit_head.sha256", "0" * 64),
]


@pytest.mark.parametrize("path, value", RECEIPT_EDITS, ids=[p for p, _ in RECEIPT_EDITS])
def test_editing_any_signed_receipt_field_breaks_the_signature(path, value):
    assert verifies(edited(RECEIPT, path, value), receipt_bytes) is False


CONFIRMATION_EDITS = [
    ("withdrawal_id", "7f1d2c3b-4a59-4e8d-8c7b-1a2b3c4d5e6f"),
    ("handover_id", "1b6c1f5e-3d2a-4c8e-9f10-2a3b4c5d6e7f"),
    ("outcome", "not_received"),
    ("confirmed_at", "2026-12-01T13:06:02Z"),
    ("receipt_key_id", "lfl-receipts-2"),
    ("device_id", "0000000000000000"),
]


@pytest.mark.parametrize("path, value", CONFIRMATION_EDITS, ids=[p for p, _ in CONFIRMATION_EDITS])
def test_editing_any_signed_confirmation_field_breaks_the_signature(path, value):
    assert verifies(edited(CONFIRMATION, path, value), confirmation_bytes) is False


def test_the_signed_fields_are_every_field_but_schema_and_the_signature():
    # schema is not signed: the label ("... v1") carries the version. Everything else is.
    receipt_fields = {p.split(".")[0] for p, _ in RECEIPT_EDITS}
    confirmation_fields = {p for p, _ in CONFIRMATION_EDITS}
    assert receipt_fields == set(RECEIPT) - {"schema", "signature"}
    assert confirmation_fields == set(CONFIRMATION) - {"schema", "signature"}
