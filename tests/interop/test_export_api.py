"""A care record system against a real clinic service: the FHIR export API
(schemas/export-api.yaml, docs/CLINIC.md "FHIR export to a care record system") used the way an
independent client would, in Python alone, over HTTPS to `lotsa clinic serve` on 127.0.0.1.

The clinic, its signed bundle and the device that delivers the referrals to export are those of
test_independent_device.py (its module-scoped `clinic` fixture gives this module a clinic of its
own). The `lotsa` binary plays only the clinic's administrator here: it adds and revokes the API
clients (`lotsa --json clinic api-client add|revoke|list`). Everything the system reads is checked with
jsonschema against the component schemas of export-api.yaml, every `$ref` resolved inside that one
document, with `format` asserted. TLS trusts only the clinic's CA and a key pinned in clinic.json,
as the device does.

`lotsa --json clinic access-log` shows that each export is logged under the system's name and a
refusal logs nothing. One test reads clinic/src/export_api.rs as text: every problem code passed to
`refused(` must be in the document's enum with the same status, so the document cannot fall behind
the code.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import http
import http.client
import json
import re
import secrets
import socket
import urllib.parse
import uuid
from dataclasses import dataclass

import jsonschema
import pytest
import referencing
import referencing.jsonschema
import yaml
from openapi_spec_validator import validate as validate_openapi

from common import ROOT, SCHEMAS, errors, refs, resolve_pointer
from test_independent_device import (  # noqa: F401  (clinic is a fixture, used by name)
    Answer,
    DATE_SLACK,
    DELIVERY_COMPONENTS,
    PROGRAM,
    STOCKHOLM,
    Clinic,
    Device,
    believe_receipt,
    clinic,
    compact,
    enrol,
    enrolment_code,
    idempotency_key,
    lotsa,
    now,
    raw_request,
    sealed_envelope,
    sealing_key,
    spki_pin,
)

API = SCHEMAS / "export-api.yaml"
API_URI = "urn:lotsa:schemas:export-api.yaml"
EXPORT_API_SOURCE = ROOT / "clinic" / "src" / "export_api.rs"
PROBLEM_PREFIX = "urn:lotsa:export-problem:"
RESOURCE_TYPES = ["Patient", "Consent", "ServiceRequest", "Task"]


# --- the document -----------------------------------------------------------------------------


def load_api() -> dict:
    return yaml.safe_load(API.read_text(encoding="utf-8"))


def schema_validator(api: dict, name: str) -> jsonschema.Draft202012Validator:
    """A draft 2020-12 validator for components/schemas/NAME, with every `$ref` resolved inside
    the document (it is self-contained) and `format` asserted."""
    document = referencing.Resource.from_contents(api, default_specification=referencing.jsonschema.DRAFT202012)
    registry = referencing.Registry().with_resource(API_URI, document)
    schema = {"$ref": f"{API_URI}#/components/schemas/{name}"}
    return jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def complaints(api: dict, name: str, instance) -> list[str]:
    return [
        f"{e.message} at {'/'.join(map(str, e.absolute_path)) or '(root)'}"
        for e in schema_validator(api, name).iter_errors(instance)
    ]


def media_schemas(api: dict):
    """(where, media type, component schema name, media object) of every body in the paths."""
    for path, item in api["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                if "$ref" in response:
                    response = resolve_pointer(api, response["$ref"].removeprefix("#"))
                for media_type, media in response.get("content", {}).items():
                    ref = media["schema"]["$ref"]
                    assert ref.startswith("#/components/schemas/"), ref
                    yield f"{method.upper()} {path} {status}", media_type, ref.rsplit("/", 1)[1], media


# --- the wire ---------------------------------------------------------------------------------


def host_url(clinic: Clinic, path: str) -> str:
    """The export lives at the root of the host, not under the endpoint's path."""
    parts = urllib.parse.urlsplit(clinic.endpoint)
    return f"{parts.scheme}://{parts.netloc}{path}"


def fetch(
    clinic: Clinic, path: str, token: str | None = None, *, headers=(), under_endpoint=False, method="GET"
) -> Answer:
    """GET over TLS 1.3 trusting only the clinic's CA, the server's key pinned by clinic.json; one
    request per connection. Checks what every answer of the export API promises: a Date, no
    caching, no sniffing."""
    url = clinic.url(path) if under_endpoint else host_url(clinic, path)
    sent = [("Accept", "application/fhir+json, application/json")]
    if token is not None:
        sent.append(("Authorization", f"Bearer {token}"))
    raw = raw_request(method, url, [*sent, *headers])
    host = urllib.parse.urlsplit(clinic.endpoint).hostname
    with socket.create_connection(("127.0.0.1", clinic.port), timeout=30) as tcp:
        with clinic.tls_context().wrap_socket(tcp, server_hostname=host) as tls:
            assert tls.version() == "TLSv1.3"
            pin = spki_pin(tls.getpeercert(binary_form=True))
            assert pin in clinic.clinic_json["tls"]["spki_sha256_pins"], pin
            tls.sendall(raw)
            response = http.client.HTTPResponse(tls, method=method)
            response.begin()
            answer = Answer(response.status, response.headers, response.read())
            response.close()
    date = answer.headers.get("Date")
    assert date, f"no Date header on {answer!r}"
    assert abs(email.utils.parsedate_to_datetime(date) - now()) < DATE_SLACK, date
    if not under_endpoint:
        assert answer.headers.get("Cache-Control") == "no-store", answer.headers
        assert answer.headers.get("X-Content-Type-Options") == "nosniff", answer.headers
    return answer


def assert_refused(api: dict, answer: Answer, status: int, code: str) -> dict:
    """A refusal of the export API: problem+json, valid against ExportProblem, this status and
    code, and the type that ends with it."""
    assert answer.status == status, answer
    assert answer.media_type == "application/problem+json", answer
    problem = answer.json()
    assert complaints(api, "ExportProblem", problem) == [], problem
    assert problem["code"] == code and problem["status"] == status, problem
    assert problem["type"] == f"{PROBLEM_PREFIX}{code}", problem
    if status == 401:
        assert answer.headers.get("WWW-Authenticate") == "Bearer", answer.headers
    return problem


def index(api: dict, clinic: Clinic, token: str, changed_since: str | None = None) -> list[dict]:
    query = "" if changed_since is None else "?" + urllib.parse.urlencode({"changed_since": changed_since})
    answer = fetch(clinic, f"/export/v1/referrals{query}", token)
    assert answer.status == 200, answer
    assert answer.media_type == "application/json", answer
    body = answer.json()
    assert complaints(api, "ReferralIndex", body) == [], body
    listed = body["referrals"]
    changes = [(r["changed_at"], r["handover_id"]) for r in listed]
    assert changes == sorted(changes), "oldest change first"
    return listed


def fhir_bundle(api: dict, clinic: Clinic, token: str, handover_id: str) -> dict:
    answer = fetch(clinic, f"/export/v1/fhir/{handover_id}", token)
    assert answer.status == 200, answer
    assert answer.media_type == "application/fhir+json", answer
    bundle = answer.json()
    assert complaints(api, "FhirTransactionBundle", bundle) == [], bundle
    return bundle


def resources(bundle: dict) -> dict[str, dict]:
    kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    # Four resources; three (no Patient) once withdrawn.
    assert kinds in (list(RESOURCE_TYPES), list(RESOURCE_TYPES[1:])), kinds
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}", entry["fullUrl"]
        assert entry["request"] == {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
    return {entry["resource"]["resourceType"]: entry["resource"] for entry in bundle["entry"]}


# --- the administrator ------------------------------------------------------------------------


def add_api_client(clinic: Clinic, name: str, program: str = PROGRAM) -> str:
    added = json.loads(
        lotsa("--json", "clinic", "api-client", "add", name, "--program", program, "--dir", str(clinic.dir))
    )
    assert set(added) == {"added", "programs", "token"}, added
    assert added["added"] == name and added["programs"] == [program], added
    assert re.fullmatch(r"lotsa_api_[A-Za-z0-9_-]{43}", added["token"]), "256 bits, unpadded base64url"
    return added["token"]


def revoke_api_client(clinic: Clinic, name: str) -> None:
    revoked = json.loads(lotsa("--json", "clinic", "api-client", "revoke", name, "--dir", str(clinic.dir)))
    assert revoked == {"revoked": name}, revoked


@dataclass
class ApiClient:
    name: str
    token: str


@pytest.fixture
def client(clinic, request) -> ApiClient:
    """A fresh API client for one test (a name is never reused, revoked or not)."""
    name = "journal-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[-40:].strip("-")
    return ApiClient(name, add_api_client(clinic, name))


def access_log(clinic: Clinic, *filters: str) -> list[dict]:
    """The clinic's access log, as its administrator reads it."""
    return json.loads(lotsa("--json", "clinic", "access-log", "--dir", str(clinic.dir), *filters))["access_log"]


@pytest.fixture(scope="module")
def api() -> dict:
    return load_api()


# --- the device that refers -------------------------------------------------------------------


@dataclass
class Delivered:
    device: Device
    handover_id: str
    payload: dict


def deliver(clinic: Clinic, device: Device) -> Delivered:
    """One fresh referral (clinic/tests/handover.json, new ids), sealed and signed on the Python
    device and delivered; its receipt believed."""
    handover_id = str(uuid.uuid4())
    key = sealing_key(clinic.clinic_json)
    plaintext, sealed, envelope = sealed_envelope(handover_id, key)
    device.audit(f"finalized {handover_id}")
    sent = {"handover_id": handover_id, "sealed": sealed, "hpke_key_id": key["key_id"],
            "audit_head": device.audit_head, "at": now().replace(microsecond=0)}
    request = device.post(clinic.url("/v1/handovers"), envelope, DELIVERY_COMPONENTS, idempotency_key(handover_id))
    answer = clinic.exchange(request)
    assert answer.status == 201, answer
    receipt = believe_receipt(answer, clinic.clinic_json, device, sent)
    device.audit(f"delivered {handover_id} {receipt['signature']}")
    return Delivered(device, handover_id, json.loads(plaintext))


def withdraw(clinic: Clinic, delivered: Delivered) -> None:
    fields = {
        "schema": "lotsa.withdrawal/1",
        "withdrawal_id": str(uuid.uuid4()),
        "handover_id": delivered.handover_id,
        "consent_id": delivered.payload["consent"]["consent_id"],
        "program_id": PROGRAM,
        "withdrawn_at": now().astimezone(STOCKHOLM).replace(second=0, microsecond=0).isoformat(),
        "recorded_by_role": "police",
    }
    assert errors("withdrawal.schema.json", fields) == []
    delivered.device.audit(f"withdrawn {delivered.handover_id}")
    answer = clinic.exchange(delivered.device.post(clinic.url("/v1/withdrawals"), compact(fields), DELIVERY_COMPONENTS))
    assert answer.status == 201, answer
    assert answer.json()["outcome"] == "erased", answer


@pytest.fixture(scope="module")
def device(clinic) -> Device:
    device = Device()
    enrolled = enrol(clinic, device, enrolment_code(clinic))
    assert enrolled.status == 201, enrolled
    device.audit("enrolled")
    return device


@pytest.fixture(scope="module")
def referral(clinic, device) -> Delivered:
    return deliver(clinic, device)


def test_the_fixture_bundle_lets_lots_for_livet_export_to_fhir(clinic):
    bundle = json.loads(clinic.bundle_file.read_text(encoding="utf-8"))
    program_set = json.loads(base64.b64decode(bundle["payload"]))
    [ours] = [p for p in program_set["programs"] if p["id"] == PROGRAM]
    assert ours["fhir_export"] is True, "the export tests need a program that allows the export"
    assert ours["fields"]["phone"] != "never"


# --- the tests: the document ------------------------------------------------------------------


def test_the_export_api_document_is_valid_openapi_3_1_and_self_contained(api):
    assert api["openapi"].startswith("3.1")
    validate_openapi(api, base_uri=API.resolve().as_uri())
    found = sorted(set(refs(api)))
    assert found, "the bodies are component schemas, referenced"
    for ref in found:
        assert ref.startswith("#/"), f"{ref}: export-api.yaml refers only inside itself"
        try:
            resolve_pointer(api, ref.removeprefix("#"))
        except (KeyError, IndexError, ValueError):
            pytest.fail(f"{ref} names nothing in {API.name}")
    for name, schema in api["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
        schema_validator(api, name)  # every $ref in it resolves when used

    assert set(api["paths"]) == {"/export/v1/referrals", "/export/v1/fhir/{handover_id}"}
    assert api["components"]["securitySchemes"] == {
        "apiToken": api["components"]["securitySchemes"]["apiToken"]
    }
    scheme = api["components"]["securitySchemes"]["apiToken"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer", scheme
    assert api["security"] == [{"apiToken": []}]
    [server] = api["servers"]
    assert "/" not in server["url"].removeprefix("https://"), "at the root of the host"


def test_every_body_and_example_in_the_document_matches_its_media_type_and_schema(api):
    expected = {
        "200": {"application/json", "application/fhir+json"},
    }
    seen = set()
    for where, media_type, name, media in media_schemas(api):
        status = where.rsplit(" ", 1)[1]
        if int(status) >= 400:
            assert (media_type, name) == ("application/problem+json", "ExportProblem"), where
        else:
            assert media_type in expected[status], where
        examples = list(media.get("examples", {}).values())
        assert examples, f"{where} has no example"
        for example in examples:
            value = example["value"]
            assert complaints(api, name, value) == [], f"{where}: {example.get('summary')}"
            if name == "ExportProblem":
                assert str(value["status"]) == status, f"{where}: {value}"
            seen.add(value.get("code"))
    problem_codes = set(api["components"]["schemas"]["ExportProblem"]["properties"]["code"]["enum"])
    assert problem_codes <= seen, f"no example of {problem_codes - seen}"


def test_the_problem_schema_refuses_what_the_api_never_sends(api):
    good = {"type": f"{PROBLEM_PREFIX}erased", "code": "erased", "title": "Erased", "status": 410}
    assert complaints(api, "ExportProblem", good) == []
    for bad in [
        {**good, "status": 404},
        {**good, "type": "urn:lotsa:problem:erased"},
        {**good, "code": "withdrawn", "type": f"{PROBLEM_PREFIX}withdrawn"},
        {key: value for key, value in good.items() if key != "title"},
    ]:
        assert complaints(api, "ExportProblem", bad), f"ExportProblem must refuse {bad}"
    entry = {"handover_id": str(uuid.uuid4()), "program_id": PROGRAM, "state": "waiting",
             "changed_at": "2026-12-01T10:00:00Z"}
    entry["fhir"] = f"/export/v1/fhir/{entry['handover_id']}"
    assert complaints(api, "ReferralIndex", {"referrals": [entry]}) == []
    for bad in [
        {**entry, "phone": "+46701234567"},  # no personal data, nothing unknown
        {**entry, "state": "open"},
        {**entry, "changed_at": "2026-12-01T11:00:00+01:00"},
        {**entry, "changed_at": "2026-13-01T10:00:00Z"},  # format asserted
        {**entry, "handover_id": entry["handover_id"].upper()},
    ]:
        assert complaints(api, "ReferralIndex", {"referrals": [bad]}), f"ReferralIndex must refuse {bad}"


def test_every_problem_code_the_rust_code_can_send_is_in_the_openapi_enum_with_its_status(api):
    source = EXPORT_API_SOURCE.read_text(encoding="utf-8")
    sent = {
        code: http.HTTPStatus[status].value
        for status, code in re.findall(r'refused\(\s*StatusCode::([A-Z_]+)\s*,\s*"([a-z_]+)"', source)
    }
    # All six of the export's refusals, and no other call of `refused(` the pattern did not read.
    assert len(sent) >= 6, f"the pattern found only {sent} in {EXPORT_API_SOURCE}"
    assert source.count("refused(") - source.count("fn refused(") == len(sent), "a refused( call not read"
    problem = api["components"]["schemas"]["ExportProblem"]
    documented = problem["properties"]["code"]["enum"]
    missing = sorted(set(sent) - set(documented))
    assert not missing, f"export_api.rs sends {missing}, which export-api.yaml does not list"
    assert not set(documented) - set(sent), f"export-api.yaml lists codes never sent: {set(documented) - set(sent)}"
    status_of = {
        branch["properties"]["code"]["const"]: branch["properties"]["status"]["const"] for branch in problem["oneOf"]
    }
    assert status_of == sent, "each code has the status the code sends it with"
    assert source.count(f'"{PROBLEM_PREFIX}"') == 1, "the type prefix is the document's"
    for code, status in sent.items():
        operations = [op for item in api["paths"].values() for op in item.values() if str(status) in op["responses"]]
        assert operations, f"no operation documents status {status} ({code})"
        assert f"`{code}`" in API.read_text(encoding="utf-8"), f"the document never names `{code}`"


# --- the tests: the live service --------------------------------------------------------------


def test_a_care_record_system_lists_the_delivered_referral_as_waiting_and_fetches_its_bundle(api, clinic, referral, client):
    token = client.token
    listed = index(api, clinic, token)
    [entry] = [r for r in listed if r["handover_id"] == referral.handover_id]
    assert entry["program_id"] == PROGRAM
    assert entry["state"] == "waiting"
    assert entry["fhir"] == f"/export/v1/fhir/{referral.handover_id}"
    changed = datetime.datetime.fromisoformat(entry["changed_at"])
    assert now() - datetime.timedelta(minutes=5) <= changed <= now() + datetime.timedelta(seconds=2), changed
    phone = referral.payload["contact"]["phone"]
    assert phone and phone not in json.dumps(listed), "the index holds no personal data"

    # Polling: changed at or after that second (in UTC, or in Stockholm time), and nothing later.
    assert referral.handover_id in {r["handover_id"] for r in index(api, clinic, token, entry["changed_at"])}
    before = (changed - datetime.timedelta(hours=1)).astimezone(STOCKHOLM).isoformat()
    assert before.endswith(("+01:00", "+02:00")), before  # sent percent-encoded by urlencode
    assert referral.handover_id in {r["handover_id"] for r in index(api, clinic, token, before)}
    later = (now() + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert index(api, clinic, token, later) == []

    # The link the index gives, followed as it is.
    bundle = fhir_bundle(api, clinic, token, entry["fhir"].rsplit("/", 1)[1])
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == RESOURCE_TYPES
    found = resources(bundle)
    patient = found["Patient"]
    assert {"system": "phone", "value": phone, "use": "mobile"} in patient["telecom"], patient
    assert patient["name"][0]["text"] == referral.payload["contact"]["name"]
    assert found["Consent"]["status"] == "active"
    assert found["Consent"]["identifier"][0]["value"] == f"urn:uuid:{referral.payload['consent']['consent_id']}"
    assert found["ServiceRequest"]["status"] == "active"
    assert {"system": "urn:lotsa:handover", "value": referral.handover_id} in found["ServiceRequest"]["identifier"]
    assert found["Task"]["status"] == "requested"
    # Every reference inside the bundle names one of its entries, as Type/id.
    put_urls = {e["request"]["url"] for e in bundle["entry"]}
    inside = re.findall(r'"reference": "([^"]+)"', json.dumps(bundle))
    assert len(inside) >= 7 and set(inside) <= put_urls, inside

    # The document's example has the shape of what is sent for such a referral, member for member.
    example = resources(api["paths"]["/export/v1/fhir/{handover_id}"]["get"]["responses"]["200"]["content"]
                        ["application/fhir+json"]["examples"]["waiting"]["value"])
    for kind in RESOURCE_TYPES:
        assert sorted(example[kind]) == sorted(found[kind]), kind

    # A second export updates the same resources: the same ids.
    again = resources(fhir_bundle(api, clinic, token, referral.handover_id))
    assert {k: r["id"] for k, r in again.items()} == {k: r["id"] for k, r in found.items()}

    # Each export is one access-log line under the system's name, found also by the number.
    ours = f"api:{client.name}"
    lines = [line["action"] for line in access_log(clinic, "--referral", referral.handover_id) if line["staff"] == ours]
    assert lines == ["fhir_export"] * 2, lines
    by_phone = [(line["referral"], line["action"]) for line in access_log(clinic, "--phone", phone) if line["staff"] == ours]
    assert by_phone == [(referral.handover_id, "fhir_export")] * 2, by_phone


def test_refusals_are_problem_details_that_hand_out_nothing_log_nothing_and_repeat_nothing(api, clinic, referral, client):
    token = client.token
    logged = access_log(clinic, "--referral", referral.handover_id)
    for path in ["/export/v1/referrals", f"/export/v1/fhir/{referral.handover_id}"]:
        # No token at all, another scheme, an unknown token of the right form, a known token
        # without its prefix.
        assert_refused(api, fetch(clinic, path), 401, "token_refused")
        assert_refused(api, fetch(clinic, path, headers=[("Authorization", f"Basic {token}")]), 401, "token_refused")
        stranger = "lotsa_api_" + secrets.token_urlsafe(32)
        answer = fetch(clinic, path, stranger)
        assert_refused(api, answer, 401, "token_refused")
        assert set(answer.json()) == {"type", "code", "title", "status"}, "nothing else"
        assert stranger not in answer.body.decode()
        assert_refused(api, fetch(clinic, path, token.removeprefix("lotsa_api_")), 401, "token_refused")

    bad = "yesterday-at-noon-" + secrets.token_hex(4)
    first = fetch(clinic, "/export/v1/referrals?" + urllib.parse.urlencode({"changed_since": bad}), token)
    assert_refused(api, first, 400, "bad_changed_since")
    assert bad not in first.body.decode() and "yesterday" not in first.body.decode(), first
    # Whatever was sent, the same bytes come back: nothing of the value is repeated.
    for other in ["2026-12-01", "2026-12-01 10:00:00", "2026-12-01T10:00:00", "1796117460", "", "<script>"]:
        answer = fetch(clinic, "/export/v1/referrals?" + urllib.parse.urlencode({"changed_since": other}), token)
        assert_refused(api, answer, 400, "bad_changed_since")
        assert answer.body == first.body, answer

    unknown = str(uuid.uuid4())
    answer = fetch(clinic, f"/export/v1/fhir/{unknown}", token)
    assert_refused(api, answer, 404, "unknown_referral")
    assert unknown not in answer.body.decode(), answer
    assert_refused(api, fetch(clinic, "/export/v1/fhir/not-a-referral", token), 404, "unknown_referral")
    # The token is refused before anything is said about the referral or the query.
    assert_refused(api, fetch(clinic, f"/export/v1/fhir/{unknown}"), 401, "token_refused")
    assert_refused(api, fetch(clinic, "/export/v1/referrals?changed_since=soon"), 401, "token_refused")

    assert access_log(clinic, "--referral", referral.handover_id) == logged, "a refusal logs nothing"
    assert access_log(clinic, "--referral", unknown) == []


def test_the_export_is_at_the_root_of_the_host_not_under_the_endpoint_path(clinic, client):
    assert urllib.parse.urlsplit(clinic.endpoint).path == f"/{PROGRAM}"
    for path in ["/export/v1/referrals", f"/export/v1/fhir/{uuid.uuid4()}"]:
        answer = fetch(clinic, path, client.token, under_endpoint=True)
        assert answer.status == 404, answer
        assert answer.json()["type"] == "urn:lotsa:problem:not_found", answer


def test_only_get_is_offered_and_another_method_hands_out_and_logs_nothing(api, clinic, referral, client):
    logged = access_log(clinic, "--staff", f"api:{client.name}")
    for path in ["/export/v1/referrals", f"/export/v1/fhir/{referral.handover_id}"]:
        for method in ["HEAD", "POST", "PUT", "DELETE"]:
            answer = fetch(clinic, path, client.token, method=method)
            assert answer.status == 405, (method, path, answer)
            assert answer.headers.get("Allow") == "GET", answer.headers
            assert answer.body == b"", answer
    assert access_log(clinic, "--staff", f"api:{client.name}") == logged


def test_a_system_given_another_program_is_told_the_referral_is_not_held(api, clinic, referral):
    token = add_api_client(clinic, "journal-of-another-program", program="kalmar")
    assert [r for r in index(api, clinic, token) if r["program_id"] == PROGRAM] == []
    answer = fetch(clinic, f"/export/v1/fhir/{referral.handover_id}", token)
    assert_refused(api, answer, 404, "unknown_referral")
    assert answer.body == fetch(clinic, f"/export/v1/fhir/{uuid.uuid4()}", token).body, "as an id never held"
    [line] = access_log(clinic, "--staff", "api:journal-of-another-program", "--referral", referral.handover_id)
    assert line["action"] == "fhir_export_refused", line


def test_a_revoked_token_is_refused_from_its_next_request(api, clinic, referral):
    name = "journal-to-revoke"
    token = add_api_client(clinic, name)
    assert index(api, clinic, token)
    fhir_bundle(api, clinic, token, referral.handover_id)
    other = add_api_client(clinic, "journal-that-stays")

    revoke_api_client(clinic, name)
    assert_refused(api, fetch(clinic, "/export/v1/referrals", token), 401, "token_refused")
    assert_refused(api, fetch(clinic, f"/export/v1/fhir/{referral.handover_id}", token), 401, "token_refused")
    # Only that system's token: another one still works.
    assert index(api, clinic, other)

    listed = json.loads(lotsa("--json", "clinic", "api-client", "list", "--dir", str(clinic.dir)))["api_clients"]
    [revoked] = [c for c in listed if c["name"] == name]
    assert revoked["revoked_at"] is not None and revoked["last_used_at"] is not None, revoked
    assert token not in json.dumps(listed), "the list never shows a token"


def test_a_withdrawn_referral_is_listed_as_withdrawn_and_exported_with_the_same_ids_and_no_personal_data(api, clinic, device, client):
    token = client.token
    delivered = deliver(clinic, device)
    before = resources(fhir_bundle(api, clinic, token, delivered.handover_id))
    withdraw(clinic, delivered)

    [entry] = [r for r in index(api, clinic, token) if r["handover_id"] == delivered.handover_id]
    assert entry["state"] == "withdrawn", entry
    bundle = fhir_bundle(api, clinic, token, delivered.handover_id)
    after = resources(bundle)
    # No Patient is sent again (the clinic has erased it; an empty one would wipe the receiving
    # system's); the other three keep their ids and still point at the Patient sent before.
    assert set(after) == {"Consent", "ServiceRequest", "Task"}, set(after)
    assert {k: r["id"] for k, r in after.items()} == {k: before[k]["id"] for k in after}
    assert after["Consent"]["status"] == "inactive"
    assert after["Consent"]["patient"]["reference"] == f"Patient/{before['Patient']['id']}"
    assert after["ServiceRequest"]["status"] == "revoked"
    assert after["Task"]["status"] == "cancelled"
    text = json.dumps(bundle, ensure_ascii=False)
    contact = delivered.payload["contact"]
    for personal in [contact["phone"], contact["name"], delivered.payload["consent"]["consent_id"]]:
        assert personal not in text, personal
