"""The signed delivery requests with http-message-signatures (RFC 9421), http_sf (RFC 9651),
hashlib (RFC 9530 Content-Digest) and cryptography's Ed25519.

Two vectors: the referral (`request_signature`, POST /v1/handovers) and the withdrawal
(`withdrawal`, POST /v1/withdrawals). Both cover @method, @target-uri, content-digest and
lotsa-audit-head with the parameters created, nonce, keyid and alg, in that order.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
from dataclasses import dataclass, field

import http_sf
import pytest
from cryptography.exceptions import InvalidSignature as BadEd25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)

from common import KEYS, SEAL, VECTORS, b64, sha256, unb64

DELIVERY_COMPONENTS = ("@method", "@target-uri", "content-digest", "lotsa-audit-head")
DEVICE_ID = KEYS["device_id"]
DEVICE_KEY = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(KEYS["device_seed_hex"]))
DEVICE_PUBLIC = Ed25519PublicKey.from_public_bytes(unb64(KEYS["device_public_key_b64"]))


@dataclass
class Request:
    """The message interface http-message-signatures reads: method, url, headers."""

    method: str
    url: str
    headers: dict = field(default_factory=dict)


@dataclass
class Vector:
    name: str
    target_uri: str
    body: bytes
    audit_head: str
    signature_input: str
    signature: str
    base: str


def vector(name: str) -> Vector:
    if name == "handover":
        v = VECTORS["request_signature"]
        return Vector(
            name,
            v["target_uri"],
            SEAL["envelope"].encode(),
            v["lotsa_audit_head"],
            v["signature_input"],
            v["signature"],
            v["signature_base"],
        )
    v = VECTORS["withdrawal"]
    return Vector(
        name,
        v["target_uri"],
        v["body"].encode(),
        v["lotsa_audit_head"],
        v["signature_input"],
        v["signature"],
        v["signature_base"],
    )


VECTOR_NAMES = ["handover", "withdrawal"]


def content_digest(body: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"


def request(v: Vector, **overrides) -> Request:
    headers = {
        "Content-Type": "application/json",
        "Content-Digest": content_digest(v.body),
        "Lotsa-Audit-Head": v.audit_head,
        "Signature-Input": v.signature_input,
        "Signature": v.signature,
    }
    headers.update(overrides.pop("headers", {}))
    return Request("POST", overrides.pop("url", v.target_uri), headers)


def library_verifier() -> HTTPMessageVerifier:
    class VectorVerifier(HTTPMessageVerifier):
        # The vectors were signed at a fixed instant: freshness (300 s at a clinic) is not what
        # this checks, so the library's own clock window is opened wide.
        max_clock_skew = datetime.timedelta(days=365 * 100)

    keys = MappingKeyResolver(public_keys={DEVICE_ID: DEVICE_PUBLIC}, private_keys={})
    return VectorVerifier(signature_algorithm=algorithms.ED25519, key_resolver=keys)


def library_verify(req: Request, body: bytes):
    return library_verifier().verify(
        req, max_age=None, require_components=DELIVERY_COMPONENTS, body=body
    )


def verify_as_the_protocol_says(req: Request, body: bytes, public: Ed25519PublicKey) -> dict:
    """The clinic's rule, written here from docs/PROTOCOL.md: rebuild @signature-params from the
    Signature-Input as received (the signer's order of components and parameters), never from a
    template; require the delivery components and created, nonce, keyid, alg="ed25519"; check the
    signature, then the digest. Returns the parameters."""
    headers = {name.lower(): value for name, value in req.headers.items()}
    inputs = http_sf.parse(headers["signature-input"].encode(), tltype="dictionary")
    signatures = http_sf.parse(headers["signature"].encode(), tltype="dictionary")
    assert len(inputs) == 1 and inputs.keys() == signatures.keys(), "exactly one signature"
    [(label, (components, params))] = inputs.items()
    names = [name for name, item_params in components if not item_params]
    assert len(names) == len(components), "plain component names only"
    assert set(DELIVERY_COMPONENTS) <= set(names), "covers what a delivery must"
    assert params["alg"] == "ed25519" and {"created", "nonce", "keyid"} <= set(params)
    derived = {"@method": req.method, "@target-uri": req.url}
    lines = [f'"{name}": {derived[name] if name.startswith("@") else headers[name]}' for name in names]
    lines.append(f'"@signature-params": {http_sf.ser([inputs[label]])}')
    public.verify(signatures[label][0], "\n".join(lines).encode())
    ContentDigest.verify(headers["content-digest"], body)
    return params


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_the_content_digest_is_the_sha_256_of_the_body(name):
    v = vector(name)
    digest = content_digest(v.body)
    assert digest == ContentDigest.create(v.body), "hashlib and the library agree"
    assert f'"content-digest": {digest}\n' in v.base
    published = VECTORS["request_signature" if name == "handover" else "withdrawal"]
    assert digest == published["content_digest"]


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_the_audit_head_header_is_an_rfc_9651_dictionary_of_seq_and_sha256(name):
    v = vector(name)
    head = http_sf.parse(v.audit_head.encode(), tltype="dictionary")
    assert set(head) == {"seq", "sha256"}
    seq, digest = head["seq"][0], head["sha256"][0]
    assert isinstance(seq, int) and seq >= 0 and isinstance(digest, bytes) and len(digest) == 32
    assert http_sf.ser({"seq": seq, "sha256": digest}) == v.audit_head
    if name == "handover":
        published = VECTORS["request_signature"]["audit_head"]
        assert (seq, digest.hex()) == (published["seq"], published["sha256_hex"])


def test_the_device_id_is_the_first_8_bytes_of_the_sha_256_of_its_public_key():
    public = DEVICE_KEY.public_key().public_bytes_raw()
    assert b64(public) == KEYS["device_public_key_b64"]
    assert sha256(public)[:8].hex() == DEVICE_ID


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_the_signature_base_built_from_rfc_9421_equals_the_vector(name):
    v = vector(name)
    published = http_sf.parse(v.signature_input.encode(), tltype="dictionary")
    [(_, (_, params))] = published.items()
    assert list(params) == ["created", "nonce", "keyid", "alg"]
    assert params["keyid"] == DEVICE_ID and params["alg"] == "ed25519"
    if name == "handover":
        r = VECTORS["request_signature"]
        assert (params["created"], params["nonce"]) == (r["created"], r["nonce"])
    signature_params = http_sf.ser([([(c, {}) for c in DELIVERY_COMPONENTS], params)])
    base = "\n".join(
        [
            '"@method": POST',
            f'"@target-uri": {v.target_uri}',
            f'"content-digest": {content_digest(v.body)}',
            f'"lotsa-audit-head": {v.audit_head}',
            f'"@signature-params": {signature_params}',
        ]
    )
    assert base == v.base


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_the_device_seed_signs_the_base_to_the_vector_signature_bytes(name):
    v = vector(name)
    label = v.signature_input.split("=", 1)[0]
    assert label == "sig1"
    assert f"{label}=:{b64(DEVICE_KEY.sign(v.base.encode()))}:" == v.signature


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_the_library_verifies_the_vector_request_with_the_device_public_key(name):
    v = vector(name)
    [result] = library_verify(request(v), v.body)
    assert result.parameters["keyid"] == DEVICE_ID
    assert result.body == v.body, "the library checked the digest against the body"
    library_base = "\n".join(f"{k}: {val}" for k, val in result.covered_components.items())
    assert library_base == v.base


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_the_protocol_verifier_written_here_accepts_the_vector_request(name):
    v = vector(name)
    params = verify_as_the_protocol_says(request(v), v.body, DEVICE_PUBLIC)
    assert params["keyid"] == DEVICE_ID


@pytest.mark.parametrize("name", VECTOR_NAMES)
@pytest.mark.parametrize(
    "tamper",
    ["another endpoint", "another audit head", "another body with its own digest", "another body"],
)
def test_a_tampered_vector_request_does_not_verify_with_the_library(name, tamper):
    v = vector(name)
    other_body = b'{"schema":"lotsa.envelope/1"}'
    req, body = {
        "another endpoint": (request(v, url=v.target_uri.rsplit("/", 1)[0] + "/devices"), v.body),
        "another audit head": (
            request(v, headers={"Lotsa-Audit-Head": v.audit_head.replace("seq=", "seq=1")}),
            v.body,
        ),
        "another body with its own digest": (
            request(v, headers={"Content-Digest": content_digest(other_body)}),
            other_body,
        ),
        "another body": (request(v), other_body),
    }[tamper]
    with pytest.raises(InvalidSignature):
        library_verify(req, body)


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_the_library_signs_in_its_own_parameter_order_and_both_verifiers_accept_it(name):
    """http-message-signatures writes created;keyid;alg;nonce where Lotsa writes
    created;nonce;keyid;alg. The same request signed by the library has another base and another
    signature, and still verifies, because a verifier rebuilds @signature-params from the
    Signature-Input it received."""
    v = vector(name)
    published = http_sf.parse(v.signature_input.encode(), tltype="dictionary")
    [(label, (_, params))] = published.items()
    req = Request("POST", v.target_uri, {"Content-Type": "application/json", "Lotsa-Audit-Head": v.audit_head})
    keys = MappingKeyResolver(public_keys={}, private_keys={DEVICE_ID: DEVICE_KEY})
    signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=keys)
    prepared = signer.prepare(
        req,
        key_id=DEVICE_ID,
        created=datetime.datetime.fromtimestamp(params["created"], datetime.timezone.utc),
        nonce=params["nonce"],
        label=label,
        covered_component_ids=DELIVERY_COMPONENTS,
        body=v.body,
    )
    signer.apply(req, prepared, DEVICE_KEY.sign(prepared.signature_base))

    theirs = http_sf.parse(req.headers["Signature-Input"].encode(), tltype="dictionary")
    [(_, (components, their_params))] = theirs.items()
    assert [c for c, _ in components] == list(DELIVERY_COMPONENTS)
    assert dict(their_params) == dict(params), "the same parameters"
    assert list(their_params) != list(params), "in another order"
    assert req.headers["Content-Digest"] == content_digest(v.body)
    assert prepared.signature_base.decode() != v.base
    assert req.headers["Signature"] != v.signature

    [result] = library_verify(req, v.body)
    assert result.parameters == dict(params)
    verify_as_the_protocol_says(req, v.body, DEVICE_PUBLIC)

    # A verifier that rebuilt @signature-params from Lotsa's own order instead would refuse it.
    with pytest.raises(BadEd25519):
        template = request(v, headers={"Signature": req.headers["Signature"]})
        verify_as_the_protocol_says(template, v.body, DEVICE_PUBLIC)


@pytest.mark.parametrize("offset, accepted", [(-290, True), (290, True), (-310, False), (310, False)])
def test_the_clock_window_of_300_seconds_either_way_is_two_settings_of_the_library(offset, accepted):
    """A clinic built on http-message-signatures gets the protocol's window (created within 300 s
    of its clock, either way) with max_clock_skew=300 s and max_age=0; the library's defaults
    (5 s, one day) are another window."""
    v = vector("handover")
    req = Request("POST", v.target_uri, {"Content-Type": "application/json", "Lotsa-Audit-Head": v.audit_head})
    keys = MappingKeyResolver(public_keys={DEVICE_ID: DEVICE_PUBLIC}, private_keys={DEVICE_ID: DEVICE_KEY})
    created = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=keys).sign(
        req,
        key_id=DEVICE_ID,
        created=created,
        nonce="dGVzdC1jbG9jay13aW5kb3c",
        label="sig1",
        covered_component_ids=DELIVERY_COMPONENTS,
        body=v.body,
    )

    class ClinicVerifier(HTTPMessageVerifier):
        max_clock_skew = datetime.timedelta(seconds=300)

    verifier = ClinicVerifier(signature_algorithm=algorithms.ED25519, key_resolver=keys)

    def verify():
        verifier.verify(req, max_age=datetime.timedelta(0), require_components=DELIVERY_COMPONENTS, body=v.body)

    if accepted:
        verify()
    else:
        with pytest.raises(InvalidSignature):
            verify()
