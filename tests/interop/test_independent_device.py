"""An independent device against a real clinic service: the device side of docs/PROTOCOL.md written
here in Python alone, talking HTTPS to `lotsa clinic serve` on 127.0.0.1.

No Lotsa code runs on the device side: the device key is cryptography's Ed25519, the device id is
hashed here, the referral is sealed with pyhpke (`info` and `aad` rebuilt by test_hpke.binding),
requests are signed with http-message-signatures (and once by hand, in the protocol's own parameter
order, with http_sf), the receipt and the withdrawal confirmation are checked with the canonical
bytes test_receipts.py rebuilds, and TLS is the standard library's, trusting only the clinic's CA
and then only a key whose SPKI pin is in clinic.json. The `lotsa` binary is only the clinic: it
makes the clinic (`clinic init`), signs the program bundle, serves, issues enrolment codes and lists
devices, as the clinic's administrator would.

Each request is written to the TLS socket as raw bytes, so a replay is the first request byte for
byte, and every answer is checked for a `Date` header and, when it is a refusal, for
`application/problem+json` with the protocol's type, status and code.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import http.client
import json
import os
import pathlib
import secrets
import socket
import ssl
import struct
import subprocess
import time
import urllib.parse
import uuid
import zoneinfo
from dataclasses import dataclass

import http_sf
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms
from pyhpke import AEADId, CipherSuite, KDFId, KEMId

from common import ROOT, b64, errors, sha256, unb64

# The rules each of these rebuilds were checked against the published vectors in their own files;
# here the same code meets a live clinic.
from test_hpke import INFO_LABEL, binding
from test_receipts import confirmation_bytes, receipt_bytes
from test_signatures import Request, content_digest

LOTSA = pathlib.Path(os.environ.get("LOTSA_BIN", ROOT / "target" / "debug" / "lotsa"))
PROGRAM = "lots-for-livet"
PAYLOAD_SCHEMA_VERSION = 1
STOCKHOLM = zoneinfo.ZoneInfo("Europe/Stockholm")
SUITE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.CHACHA20_POLY1305)
DELIVERY_COMPONENTS = ("@method", "@target-uri", "content-digest", "lotsa-audit-head")
ENROLMENT_COMPONENTS = ("@method", "@target-uri", "content-digest")
SIGNED_INSTANT = "%Y-%m-%dT%H:%M:%SZ"
# How far the clinic's Date may be from this machine's clock: both are the same clock here.
DATE_SLACK = datetime.timedelta(seconds=60)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def compact(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def lotsa(*args: str, timeout: float = 120) -> str:
    """Run the clinic's administration command; its stdout."""
    done = subprocess.run(
        [str(LOTSA), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"lotsa {' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
    return done.stdout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spki_pin(der_certificate: bytes) -> str:
    """RFC 7469 pin-sha256: base64 of the SHA-256 of the DER SubjectPublicKeyInfo."""
    spki = x509.load_der_x509_certificate(der_certificate).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return b64(sha256(spki))


def signed_instant(text: str) -> datetime.datetime:
    """A signed instant: RFC 3339 in UTC, whole seconds, `Z` (the only spelling)."""
    assert len(text) == 20, text
    return datetime.datetime.strptime(text, SIGNED_INSTANT).replace(tzinfo=datetime.timezone.utc)


# --- the wire ---------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def media_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:  # what an assertion prints
        return f"<{self.status} {self.media_type} {self.body[:400]!r}>"


def raw_request(method: str, url: str, headers: list[tuple[str, str]], body: bytes | None = None) -> bytes:
    """The request exactly as it goes on the wire (HTTP/1.1, one request per connection)."""
    parts = urllib.parse.urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + (body or b"")


@dataclass
class Clinic:
    """The running service, as a device reaches it: the endpoint, CA and pins of its clinic.json."""

    dir: pathlib.Path
    port: int
    endpoint: str
    clinic_json: dict
    bundle_file: pathlib.Path
    admin_public: Ed25519PublicKey

    def url(self, path: str) -> str:
        return f"{self.endpoint}{path}"

    def tls_context(self) -> ssl.SSLContext:
        # Only the clinic's CA (not the system's), TLS 1.3 only, the host name checked.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.load_verify_locations(cafile=str(self.dir / "tls" / "ca.pem"))
        assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
        return context

    def exchange(self, raw: bytes, context: ssl.SSLContext | None = None) -> Answer:
        """Send raw request bytes to https://localhost:PORT with localhost as 127.0.0.1."""
        host = urllib.parse.urlsplit(self.endpoint).hostname
        method = raw.split(b" ", 1)[0].decode("ascii")
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as tcp:
            with (context or self.tls_context()).wrap_socket(tcp, server_hostname=host) as tls:
                assert tls.version() == "TLSv1.3"
                pin = spki_pin(tls.getpeercert(binary_form=True))
                assert pin in self.clinic_json["tls"]["spki_sha256_pins"], (
                    f"the server's SPKI pin {pin} is not one of clinic.json's"
                )
                tls.sendall(raw)
                response = http.client.HTTPResponse(tls, method=method)
                response.begin()
                answer = Answer(response.status, response.headers, response.read())
                response.close()
        check_every_answer(answer)
        return answer

    def get(self, path: str) -> Answer:
        return self.exchange(raw_request("GET", self.url(path), [("Accept", "application/json")]))


def check_every_answer(answer: Answer) -> None:
    """What the protocol promises of every answer: a Date, and refusals as problem details."""
    date = answer.headers.get("Date")
    assert date, f"no Date header on {answer!r}"
    assert abs(email.utils.parsedate_to_datetime(date) - now()) < DATE_SLACK, date
    if answer.status >= 400:
        assert answer.media_type == "application/problem+json", answer
        problem = answer.json()
        assert errors("problem.schema.json", problem) == [], problem
        assert problem["status"] == answer.status, problem
        assert problem["type"] == f"urn:lotsa:problem:{problem['code']}", problem
    else:
        assert answer.media_type == "application/json", answer


def assert_problem(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer
    assert answer.json()["code"] == code, answer


# --- the device -------------------------------------------------------------------------------


class Device:
    """A phone, from PROTOCOL.md: one Ed25519 key, its device id, a small audit hash chain."""

    def __init__(self):
        self.key = Ed25519PrivateKey.generate()
        self.public_key = self.key.public_key().public_bytes_raw()
        # The first 8 bytes of the SHA-256 of the raw public key, as 16 lowercase hex digits.
        self.id = sha256(self.public_key)[:8].hex()
        self.seq, self.head_hash = 0, bytes(32)  # an empty log
        self.signer = HTTPMessageSigner(
            signature_algorithm=algorithms.ED25519,
            key_resolver=MappingKeyResolver(public_keys={}, private_keys={self.id: self.key}),
        )

    def audit(self, event: str) -> None:
        """An audit entry: each hash covers the one before (the clinic sees only the head)."""
        self.seq += 1
        self.head_hash = sha256(self.head_hash + struct.pack(">Q", self.seq) + event.encode())

    @property
    def audit_head(self) -> tuple[int, bytes]:
        return self.seq, self.head_hash

    def audit_head_header(self) -> str:
        return http_sf.ser({"seq": self.seq, "sha256": self.head_hash})

    @staticmethod
    def nonce() -> str:
        """16 random bytes as unpadded base64url."""
        return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode("ascii")

    def post(self, url: str, body: bytes, components, extra: list[tuple[str, str]] = ()) -> bytes:
        """A signed POST, signed by http-message-signatures (its parameter order:
        created;keyid;alg;nonce)."""
        headers = {"Content-Type": "application/json", **dict(extra)}
        if "lotsa-audit-head" in components:
            headers["Lotsa-Audit-Head"] = self.audit_head_header()
        message = Request("POST", url, headers)
        self.signer.sign(
            message,
            key_id=self.id,
            created=now(),
            nonce=self.nonce(),
            label="sig1",
            covered_component_ids=components,
            body=body,
        )
        assert message.headers["Content-Digest"] == content_digest(body), "RFC 9530 by hashlib"
        return raw_request("POST", url, list(message.headers.items()), body)

    def post_signed_by_hand(self, url: str, body: bytes, extra: list[tuple[str, str]] = ()) -> bytes:
        """A signed delivery POST, with the RFC 9421 signature base built here line by line and
        the parameters in the protocol's order (created, nonce, keyid, alg)."""
        digest, head = content_digest(body), self.audit_head_header()
        params = {"created": int(time.time()), "nonce": self.nonce(), "keyid": self.id, "alg": "ed25519"}
        signature_params = http_sf.ser([([(c, {}) for c in DELIVERY_COMPONENTS], params)])
        base = "\n".join(
            [
                '"@method": POST',
                f'"@target-uri": {url}',
                f'"content-digest": {digest}',
                f'"lotsa-audit-head": {head}',
                f'"@signature-params": {signature_params}',
            ]
        )
        headers = [
            ("Content-Type", "application/json"),
            *extra,
            ("Content-Digest", digest),
            ("Lotsa-Audit-Head", head),
            ("Signature-Input", f"sig1={signature_params}"),
            ("Signature", f"sig1=:{b64(self.key.sign(base.encode()))}:"),
        ]
        return raw_request("POST", url, headers, body)


def enrolment_request(device: Device, code: str) -> bytes:
    body = {"schema": "lotsa.enrolment-request/1", "code": code, "public_key": b64(device.public_key)}
    assert errors("enrolment-request.schema.json", body) == []
    return compact(body)


def handover_payload(handover_id: str) -> bytes:
    """clinic/tests/handover.json made fresh: a new id (also the consent's subject_ref and, here,
    a new consent id), given a minute ago, decided today."""
    payload = json.loads((ROOT / "clinic" / "tests" / "handover.json").read_text(encoding="utf-8"))
    given = (now() - datetime.timedelta(minutes=1)).astimezone(STOCKHOLM).replace(microsecond=0)
    payload["handover_id"] = handover_id
    payload["created_at"] = given.isoformat()
    payload["eligibility"]["basis"]["decided_on"] = given.date().isoformat()
    payload["consent"]["consent_id"] = str(uuid.uuid4())
    payload["consent"]["subject_ref"] = handover_id
    payload["consent"]["given_at"] = given.isoformat()
    assert payload["program_id"] == payload["consent"]["program_id"] == PROGRAM
    assert errors("handover.schema.json", payload) == []
    return compact(payload)


def sealing_key(clinic: dict) -> dict:
    """The HPKE key valid now (not_before <= now <= not_after); of several, the latest to start."""
    valid = [
        k
        for k in clinic["hpke_keys"]
        if datetime.datetime.fromisoformat(k["not_before"]) <= now() <= datetime.datetime.fromisoformat(k["not_after"])
    ]
    assert valid, f"no HPKE key valid now in {clinic['hpke_keys']}"
    return max(valid, key=lambda k: datetime.datetime.fromisoformat(k["not_before"]))


def seal(plaintext: bytes, handover_id: str, key: dict) -> bytes:
    """HPKE base mode, single shot, bound to (handover id, program, key id, schema version)."""
    aad = binding(handover_id, PROGRAM, key["key_id"], PAYLOAD_SCHEMA_VERSION)
    public = SUITE.kem.deserialize_public_key(unb64(key["public_key"]))
    enc, context = SUITE.create_sender_context(public, info=INFO_LABEL + aad)
    ciphertext = context.seal(plaintext, aad=aad)
    assert len(enc) == 32 and len(ciphertext) == len(plaintext) + 16
    return enc + ciphertext


def sealed_envelope(handover_id: str, key: dict) -> tuple[bytes, bytes, bytes]:
    """A fresh referral sealed to `key`: its plaintext, the sealed bytes, and the envelope (the
    body of POST /v1/handovers, compact JSON, built once and resent byte-identical)."""
    plaintext = handover_payload(handover_id)
    sealed = seal(plaintext, handover_id, key)
    fields = {
        "schema": "lotsa.envelope/1",
        "handover_id": handover_id,
        "program_id": PROGRAM,
        "clinic_key_id": key["key_id"],
        "payload_schema_version": PAYLOAD_SCHEMA_VERSION,
        "sealed": b64(sealed),
    }
    assert errors("envelope.schema.json", fields) == []
    return plaintext, sealed, compact(fields)


def idempotency_key(handover_id: str) -> list[tuple[str, str]]:
    """The handover id as an RFC 9651 string."""
    value = http_sf.ser(handover_id)
    assert value == f'"{handover_id}"'
    return [("Idempotency-Key", value)]


def believe_receipt(answer: Answer, clinic: dict, device: Device, sent: dict) -> dict:
    """PROTOCOL.md "The receipt": the receipt key id is the bundle's, the Ed25519 signature over
    the length-prefixed canonical bytes verifies with the receipt key, and every attested value is
    what was sent."""
    receipt = answer.json()
    assert errors("receipt.schema.json", receipt) == [], receipt
    assert answer.body == compact(receipt), "compact JSON, no other spelling"
    assert receipt["receipt_key_id"] == clinic["receipt_key"]["key_id"]
    receipt_key = Ed25519PublicKey.from_public_bytes(unb64(clinic["receipt_key"]["public_key"]))
    receipt_key.verify(unb64(receipt["signature"]), receipt_bytes(receipt))  # raises if not
    seq, head_hash = sent["audit_head"]
    assert receipt["handover_id"] == sent["handover_id"]
    assert receipt["sealed_sha256"] == sha256(sent["sealed"]).hex()
    assert receipt["hpke_key_id"] == sent["hpke_key_id"]
    assert receipt["device_id"] == device.id
    assert receipt["audit_head"] == {"seq": seq, "sha256": head_hash.hex()}
    received_at = signed_instant(receipt["received_at"])
    assert sent["at"] - datetime.timedelta(seconds=2) <= received_at <= now() + datetime.timedelta(seconds=2)
    return receipt


# --- the clinic -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    if not LOTSA.is_file():
        pytest.fail(f"the lotsa binary is missing at {LOTSA}: build it first with `cargo build -p lotsa`")
    work = tmp_path_factory.mktemp("independent-device")
    port = free_port()
    endpoint = f"https://localhost:{port}/{PROGRAM}"
    clinic_dir = work / "clinic"
    lotsa("clinic", "init", "--dir", str(clinic_dir), "--name", "Test clinic", "--endpoint", endpoint)
    clinic_json = json.loads((clinic_dir / "clinic.json").read_text(encoding="utf-8"))
    assert clinic_json["endpoint"] == endpoint

    admin = work / "admin"
    lotsa("program", "keygen", "-o", str(admin))
    admin_public = Ed25519PublicKey.from_public_bytes(
        unb64((work / "admin.pub").read_text(encoding="ascii").strip())
    )

    program_set = json.loads((ROOT / "schemas" / "examples" / "programs.example.json").read_text(encoding="utf-8"))
    program_set["issued_at"] = now().replace(microsecond=0).isoformat()
    [ours] = [p for p in program_set["programs"] if p["id"] == PROGRAM]
    ours["clinic"]["endpoint"] = endpoint
    unsigned = work / "programs.json"
    unsigned.write_text(json.dumps(program_set, ensure_ascii=False, indent=2), encoding="utf-8")
    bundle = work / "bundle.json"
    lotsa(
        "program", "sign", str(unsigned), "--key", str(work / "admin.key"), "-o", str(bundle),
        "--clinic", str(clinic_dir / "clinic.json"),
    )

    stdout_path, stderr_path = work / "serve.stdout", work / "serve.stderr"
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        server = subprocess.Popen(
            [
                str(LOTSA), "clinic", "serve", "--dir", str(clinic_dir), "--bundle", str(bundle),
                "--trust", str(work / "admin.pub"), "--bind", f"127.0.0.1:{port}", "--json",
            ],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    try:
        running = Clinic(clinic_dir, port, endpoint, clinic_json, bundle, admin_public)
        started = wait_until_listening(server, stdout_path, stderr_path)
        assert started["listening"] == f"https://127.0.0.1:{port}", started
        wait_until_healthy(running, server, stderr_path)
        yield running
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)


def wait_until_listening(server, stdout_path: pathlib.Path, stderr_path: pathlib.Path) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        first = stdout_path.read_bytes().split(b"\n", 1)
        if len(first) == 2:
            started = json.loads(first[0])
            assert "listening" in started, started
            return started
        if server.poll() is not None:
            pytest.fail(f"lotsa clinic serve exited with {server.returncode}:\n{stderr_path.read_text()}")
        time.sleep(0.05)
    pytest.fail(f"lotsa clinic serve wrote no first line in 60 s:\n{stderr_path.read_text()}")


def wait_until_healthy(clinic: Clinic, server, stderr_path: pathlib.Path) -> None:
    deadline = time.monotonic() + 30
    last = None
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"lotsa clinic serve exited with {server.returncode}:\n{stderr_path.read_text()}")
        try:
            last = clinic.get("/v1/health")
            if last.status == 200:
                return
        except OSError as e:
            last = e
        time.sleep(0.1)
    pytest.fail(f"GET /v1/health never answered 200: {last!r}\n{stderr_path.read_text()}")


def enrolment_code(clinic: Clinic) -> str:
    issued = json.loads(lotsa("clinic", "enrol-code", "--dir", str(clinic.dir), "--json"))
    assert set(issued) == {"code", "expires_at"}, issued
    assert datetime.datetime.fromisoformat(issued["expires_at"]) > now()
    return issued["code"]


def enrol(clinic: Clinic, device: Device, code: str) -> Answer:
    return clinic.exchange(
        device.post(clinic.url("/v1/devices"), enrolment_request(device, code), ENROLMENT_COMPONENTS)
    )


# --- the tests --------------------------------------------------------------------------------


def test_the_clinic_speaks_tls_1_3_with_a_key_pinned_in_clinic_json_and_only_to_a_device_that_trusts_its_ca(clinic):
    health = clinic.get("/v1/health")  # exchange() checked TLS 1.3 and the pin
    assert health.status == 200 and health.json() == {"status": "ok"}
    assert_problem(clinic.get("/v1/nothing-here"), 404, "not_found")

    # A device that trusted the system's CAs instead would not get through the handshake.
    system = ssl.create_default_context()
    system.minimum_version = ssl.TLSVersion.TLSv1_3
    with pytest.raises(ssl.SSLCertVerificationError):
        clinic.exchange(raw_request("GET", clinic.url("/v1/health"), []), context=system)


def test_get_bundle_answers_the_signed_bundle_file_byte_for_byte_and_it_names_this_clinic(clinic):
    answer = clinic.get("/v1/bundle")
    assert answer.status == 200
    assert answer.body == clinic.bundle_file.read_bytes()

    # The device believes it only after checking it with the administrator's key.
    bundle = answer.json()
    assert bundle["format"] == "lotsa.signed-program-bundle" and bundle["version"] == 1
    assert bundle["key_id"] == sha256(clinic.admin_public.public_bytes_raw())[:8].hex()
    payload = unb64(bundle["payload"])
    clinic.admin_public.verify(unb64(bundle["signature"]), payload)  # raises if not
    program_set = json.loads(payload)
    assert errors("program-bundle.schema.json", program_set) == []
    [ours] = [p for p in program_set["programs"] if p["id"] == PROGRAM]
    for member in ("endpoint", "tls", "hpke_keys", "receipt_key"):
        assert ours["clinic"][member] == clinic.clinic_json[member], member


def test_an_enrolment_code_is_read_without_case_or_dashes_and_refused_to_a_second_key(clinic):
    code = enrolment_code(clinic)
    first, second = Device(), Device()
    spelt_otherwise = code.replace("-", "").lower()
    answer = enrol(clinic, first, spelt_otherwise)
    assert answer.status == 201, answer
    assert answer.json()["device_id"] == first.id
    assert_problem(enrol(clinic, second, code), 403, "enrolment_code_refused")
    assert_problem(enrol(clinic, Device(), "AAAA-BBBB-CCCC"), 403, "enrolment_code_refused")


def test_a_key_that_never_enrolled_is_refused_as_an_unknown_device(clinic):
    stranger = Device()
    handover_id = str(uuid.uuid4())
    _, _, envelope = sealed_envelope(handover_id, sealing_key(clinic.clinic_json))
    request = stranger.post(clinic.url("/v1/handovers"), envelope, DELIVERY_COMPONENTS, idempotency_key(handover_id))
    assert_problem(clinic.exchange(request), 401, "unknown_device")


def test_a_device_written_from_the_protocol_alone_enrols_delivers_verifies_its_receipt_and_withdraws(clinic):
    bundle_clinic = clinic.clinic_json
    device = Device()

    # Enrolment: the request is signed with the key being enrolled; a repeat gets the same answer.
    code = enrolment_code(clinic)
    enrolled = enrol(clinic, device, code)
    assert enrolled.status == 201, enrolled
    enrolment = enrolled.json()
    assert errors("enrolment.schema.json", enrolment) == [], enrolment
    assert enrolment["device_id"] == device.id
    assert abs(signed_instant(enrolment["enrolled_at"]) - now()) < DATE_SLACK
    repeat = enrol(clinic, device, code)
    assert repeat.status == 200, repeat
    assert repeat.json() == enrolment
    device.audit("enrolled")

    # The clinic's administrator sees it under the same id.
    listed = json.loads(lotsa("clinic", "devices", "--dir", str(clinic.dir), "--json"))["devices"]
    [entry] = [d for d in listed if d["device_id"] == device.id]
    assert entry["enrolled_at"] == enrolment["enrolled_at"] and entry["revoked_at"] is None, entry

    # The referral: sealed on the phone to the clinic's current HPKE key.
    handover_id = str(uuid.uuid4())
    assert uuid.UUID(handover_id).version == 4 and handover_id == handover_id.lower()
    key = sealing_key(bundle_clinic)
    assert key == bundle_clinic["hpke_keys"][0]
    plaintext, sealed, envelope = sealed_envelope(handover_id, key)
    device.audit(f"finalized {handover_id}")

    handovers = clinic.url("/v1/handovers")
    idempotency = idempotency_key(handover_id)
    sent = {"handover_id": handover_id, "sealed": sealed, "hpke_key_id": key["key_id"],
            "audit_head": device.audit_head, "at": now().replace(microsecond=0)}
    first_request = device.post(handovers, envelope, DELIVERY_COMPONENTS, idempotency)
    delivered = clinic.exchange(first_request)
    assert delivered.status == 201, delivered
    receipt = believe_receipt(delivered, bundle_clinic, device, sent)
    device.audit(f"delivered {handover_id} {receipt['signature']}")

    # The same sealed bytes again under a new signature and nonce (signed by hand this time, in
    # the protocol's parameter order), with the audit head moved on: the original receipt, byte
    # for byte.
    assert device.audit_head != sent["audit_head"]
    resent = clinic.exchange(device.post_signed_by_hand(handovers, envelope, idempotency))
    assert resent.status == 200, resent
    assert resent.body == delivered.body
    believe_receipt(resent, bundle_clinic, device, sent)

    # The first request again, byte for byte: its (keyid, nonce) was seen.
    assert_problem(clinic.exchange(first_request), 401, "signature_replayed")

    # Withdrawal after delivery: ids, the minute with the Stockholm offset, the recorder's role.
    payload = json.loads(plaintext)
    withdrawal_fields = {
        "schema": "lotsa.withdrawal/1",
        "withdrawal_id": str(uuid.uuid4()),
        "handover_id": handover_id,
        "consent_id": payload["consent"]["consent_id"],
        "program_id": PROGRAM,
        "withdrawn_at": now().astimezone(STOCKHOLM).replace(second=0, microsecond=0).isoformat(),
        "recorded_by_role": "police",
    }
    assert errors("withdrawal.schema.json", withdrawal_fields) == []
    withdrawal = compact(withdrawal_fields)
    device.audit(f"withdrawn {handover_id}")
    withdrawals = clinic.url("/v1/withdrawals")
    withdrawn = clinic.exchange(device.post(withdrawals, withdrawal, DELIVERY_COMPONENTS))
    assert withdrawn.status == 201, withdrawn
    confirmation = withdrawn.json()
    assert errors("withdrawal-confirmation.schema.json", confirmation) == [], confirmation
    assert confirmation["receipt_key_id"] == bundle_clinic["receipt_key"]["key_id"]
    receipt_key = Ed25519PublicKey.from_public_bytes(unb64(bundle_clinic["receipt_key"]["public_key"]))
    receipt_key.verify(unb64(confirmation["signature"]), confirmation_bytes(confirmation))
    assert confirmation["withdrawal_id"] == withdrawal_fields["withdrawal_id"]
    assert confirmation["handover_id"] == handover_id
    assert confirmation["device_id"] == device.id
    assert confirmation["outcome"] == "erased"
    assert abs(signed_instant(confirmation["confirmed_at"]) - now()) < DATE_SLACK

    # The withdrawal is idempotent by its id: a repeat gets the same bytes.
    again = clinic.exchange(device.post(withdrawals, withdrawal, DELIVERY_COMPONENTS))
    assert again.status == 200, again
    assert again.body == withdrawn.body

    # A late copy of the referral is refused: the clinic holds only its tombstone.
    assert_problem(
        clinic.exchange(device.post(handovers, envelope, DELIVERY_COMPONENTS, idempotency)), 410, "withdrawn"
    )
