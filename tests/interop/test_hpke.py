"""The sealed referral with pyhpke: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305 in
base mode, with `info` and `aad` rebuilt here from the envelope's values (the SealBinding rules:
handover id, program id and clinic key id each length-prefixed, then the schema version as 4 bytes
big-endian; `info` is the label "lotsa handover v1" followed by those bytes)."""

from __future__ import annotations

import json
import struct

import pytest
from pyhpke import AEADId, CipherSuite, KDFId, KEMId, OpenError

from common import KEYS, SEAL, b64, length_prefixed, sha256, unb64

SUITE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.CHACHA20_POLY1305)
INFO_LABEL = b"lotsa handover v1"

ENC = bytes.fromhex(SEAL["enc_hex"])
CIPHERTEXT = unb64(SEAL["ciphertext_b64"])
INFO = bytes.fromhex(SEAL["info_hex"])
AAD = bytes.fromhex(SEAL["aad_hex"])
PLAINTEXT = SEAL["plaintext"].encode("utf-8")


def binding(handover_id: str, program_id: str, clinic_key_id: str, version: int) -> bytes:
    return length_prefixed(
        handover_id.encode(), program_id.encode(), clinic_key_id.encode()
    ) + struct.pack(">I", version)


def clinic_key_pair():
    return SUITE.kem.derive_key_pair(bytes.fromhex(KEYS["clinic_hpke_ikm_hex"]))


def open_sealed(enc: bytes, ciphertext: bytes, info: bytes = INFO, aad: bytes = AAD) -> bytes:
    context = SUITE.create_recipient_context(enc, clinic_key_pair().private_key, info=info)
    return context.open(ciphertext, aad=aad)


def clamp(secret: bytes) -> bytes:
    """RFC 7748 decodeScalar25519's bit operations."""
    k = bytearray(secret)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return bytes(k)


def test_the_clinic_key_derived_from_the_vector_ikm_has_the_published_public_key():
    assert b64(clinic_key_pair().public_key.to_public_bytes()) == KEYS["clinic_hpke_public_key_b64"]


def test_the_published_clinic_secret_key_is_the_clamped_form_of_the_derived_one():
    # RFC 9180 section 7.1.2: SerializePrivateKey MUST clamp for X25519. pyhpke serializes the
    # DeriveKeyPair output unclamped; the vector prints it clamped. Both are the same key.
    derived = clinic_key_pair().private_key.to_private_bytes()
    published = bytes.fromhex(KEYS["clinic_hpke_secret_key_hex"])
    assert clamp(derived) == published
    loaded = SUITE.kem.deserialize_private_key(published)
    assert b64(loaded.raw.public_key().public_bytes_raw()) == KEYS["clinic_hpke_public_key_b64"]


def test_info_and_aad_rebuilt_from_the_envelope_values_equal_the_vector():
    aad = binding(
        SEAL["handover_id"], SEAL["program_id"], SEAL["clinic_key_id"], SEAL["payload_schema_version"]
    )
    assert aad == AAD
    assert INFO_LABEL + aad == INFO


def test_the_hpke_vector_opens_with_pyhpke_to_the_exact_plaintext():
    assert open_sealed(ENC, CIPHERTEXT) == PLAINTEXT


def test_the_hpke_vector_opens_with_the_published_secret_key_too():
    secret = SUITE.kem.deserialize_private_key(bytes.fromhex(KEYS["clinic_hpke_secret_key_hex"]))
    context = SUITE.create_recipient_context(ENC, secret, info=INFO)
    assert context.open(CIPHERTEXT, aad=AAD) == PLAINTEXT


def test_sealing_with_the_vector_ephemeral_key_reproduces_enc_and_ciphertext_byte_for_byte():
    ephemeral = SUITE.kem.derive_key_pair(bytes.fromhex(SEAL["ikm_e_hex"]))
    enc, context = SUITE.create_sender_context(clinic_key_pair().public_key, info=INFO, eks=ephemeral)
    assert enc == ENC
    assert context.seal(PLAINTEXT, aad=AAD) == CIPHERTEXT


def test_a_python_seal_to_the_clinic_public_key_opens_in_python():
    public = SUITE.kem.deserialize_public_key(unb64(KEYS["clinic_hpke_public_key_b64"]))
    message = "Ett annat meddelande".encode()
    enc, context = SUITE.create_sender_context(public, info=INFO)
    ciphertext = context.seal(message, aad=AAD)
    assert enc != ENC, "a fresh ephemeral key each time"
    assert len(enc) == 32 and len(ciphertext) == len(message) + 16
    assert open_sealed(enc, ciphertext) == message


def flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


@pytest.mark.parametrize(
    "what, spoil",
    [
        ("enc", lambda: (flip(ENC, 0), CIPHERTEXT, INFO, AAD)),
        ("ciphertext start", lambda: (ENC, flip(CIPHERTEXT, 0), INFO, AAD)),
        ("tag", lambda: (ENC, flip(CIPHERTEXT, len(CIPHERTEXT) - 1), INFO, AAD)),
        ("info", lambda: (ENC, CIPHERTEXT, flip(INFO, len(INFO) - 1), AAD)),
        ("aad", lambda: (ENC, CIPHERTEXT, INFO, flip(AAD, len(AAD) - 1))),
        (
            "another handover id in the binding",
            lambda: (
                ENC,
                CIPHERTEXT,
                INFO_LABEL + binding("1b6c1f5e-3d2a-4c8e-9f10-2a3b4c5d6e7f", "lots-for-livet", "lfl-2026", 1),
                binding("1b6c1f5e-3d2a-4c8e-9f10-2a3b4c5d6e7f", "lots-for-livet", "lfl-2026", 1),
            ),
        ),
    ],
)
def test_a_flipped_byte_does_not_open(what, spoil):
    enc, ciphertext, info, aad = spoil()
    with pytest.raises(OpenError):
        open_sealed(enc, ciphertext, info, aad)


def test_the_envelope_carries_enc_then_ciphertext_and_its_sha_256_is_published():
    envelope = json.loads(SEAL["envelope"])
    sealed = unb64(envelope["sealed"])
    assert sealed == ENC + CIPHERTEXT
    assert sha256(sealed).hex() == SEAL["sealed_sha256_hex"]
    # The clear metadata is the binding the payload opens with.
    assert (
        envelope["handover_id"],
        envelope["program_id"],
        envelope["clinic_key_id"],
        envelope["payload_schema_version"],
    ) == (SEAL["handover_id"], SEAL["program_id"], SEAL["clinic_key_id"], SEAL["payload_schema_version"])
    assert envelope["clinic_key_id"] == KEYS["clinic_hpke_key_id"]
    # And the payload names the same handover and program as its envelope.
    payload = json.loads(open_sealed(sealed[:32], sealed[32:]))
    assert (payload["handover_id"], payload["program_id"]) == (
        envelope["handover_id"],
        envelope["program_id"],
    )
