"""The machine-readable contract: the JSON Schemas in schemas/ against every JSON the vectors and
docs/PROTOCOL.md publish, the OpenAPI document schemas/intake-api.yaml, and the refusals a schema
must share with the core (an extra field, a bad UUID, an uppercase digest, ...)."""

from __future__ import annotations

import base64
import json
import re

import pytest
import yaml
from openapi_spec_validator import validate as validate_openapi

from common import (
    KEYS,
    PROTOCOL_DOC,
    SCHEMA_OF,
    SCHEMAS,
    SEAL,
    VECTORS,
    errors,
    load_schema,
    refs,
    resolve_pointer,
    validator,
)

API = SCHEMAS / "intake-api.yaml"


def vector_json() -> dict[str, tuple[str, dict]]:
    """Every JSON the vectors file holds, with the schema it is an instance of."""
    return {
        "envelope": ("envelope", json.loads(SEAL["envelope"])),
        "plaintext": ("handover", json.loads(SEAL["plaintext"])),
        "receipt": ("receipt", json.loads(VECTORS["receipt"]["json"])),
        "withdrawal body": ("withdrawal", json.loads(VECTORS["withdrawal"]["body"])),
        "confirmation": ("withdrawal-confirmation", json.loads(VECTORS["withdrawal_confirmation"]["json"])),
    }


def sample(name: str) -> dict:
    """A valid instance of each wire body (the vectors' own where they have one)."""
    from_vectors = {schema: instance for schema, instance in vector_json().values()}
    built_here = {
        "enrolment-request": {
            "schema": "lotsa.enrolment-request/1",
            "code": "K7QM-4TX2-9HRC",
            "public_key": KEYS["device_public_key_b64"],
        },
        "enrolment": {
            "schema": "lotsa.enrolment/1",
            "device_id": KEYS["device_id"],
            "enrolled_at": "2026-12-01T09:00:00Z",
        },
        "device-status": {
            "schema": "lotsa.device-status/1",
            "reported_at": "2026-12-01T09:31:02Z",
            "counts": {"pending": 2, "sending": 0, "failed": 1, "damaged": 0},
            "oldest_pending_secs": 5400,
        },
        "problem": {
            "type": "urn:lotsa:problem:withdrawn",
            "title": "This referral was withdrawn; it will not be accepted",
            "status": 410,
            "code": "withdrawn",
        },
    }
    return json.loads(json.dumps({**from_vectors, **built_here}[name]))


def assert_valid(schema_name: str, instance, what: str):
    complaints = errors(SCHEMA_OF[schema_name], instance)
    assert not complaints, f"{what} must validate against {SCHEMA_OF[schema_name]}: {complaints}"


def assert_refused(schema_name: str, instance, what: str):
    assert errors(SCHEMA_OF[schema_name], instance), f"{SCHEMA_OF[schema_name]} must refuse {what}"


# ---------------------------------------------------------------------------------------------
# The schemas and what is published


@pytest.mark.parametrize("name", sorted(set(SCHEMA_OF.values())))
def test_every_schema_is_a_valid_2020_12_schema_with_an_id_title_and_description(name):
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://lotsa.example/schemas/{name}"
    assert schema["title"] and schema["description"]
    validator(name)  # checks the schema against the meta-schema


def test_the_date_time_format_is_checked_not_only_annotated():
    # jsonschema ignores "format": "date-time" without rfc3339-validator: that must not pass quietly.
    receipt = sample("receipt")
    receipt["received_at"] = "2026-13-01T09:31:02Z"
    assert_refused("receipt", receipt, "month 13 (the format check is not running)")


@pytest.mark.parametrize("what", sorted(vector_json()))
def test_every_json_in_the_vectors_validates_against_its_schema(what):
    schema_name, instance = vector_json()[what]
    assert_valid(schema_name, instance, f"the vectors' {what}")


@pytest.mark.parametrize("name", ["enrolment-request", "enrolment", "device-status", "problem"])
def test_the_bodies_the_vectors_lack_validate_as_built_here(name):
    assert_valid(name, sample(name), f"the sample {name}")


EXAMPLE_MARK = re.compile(r"^<!-- example: ([a-z-]+) -->$")


def protocol_examples() -> list[tuple[int, str, str]]:
    """(line, name, JSON text) of every `<!-- example: NAME -->` block in docs/PROTOCOL.md."""
    if not PROTOCOL_DOC.is_file():
        pytest.fail(
            f"{PROTOCOL_DOC} does not exist: the protocol document must print its examples, each "
            "marked with <!-- example: NAME --> directly before its ```json fence"
        )
    lines = PROTOCOL_DOC.read_text(encoding="utf-8").splitlines()
    found = []
    for i, line in enumerate(lines):
        mark = EXAMPLE_MARK.match(line.strip())
        if not mark:
            continue
        where = f"docs/PROTOCOL.md:{i + 1}"
        assert mark.group(1) in SCHEMA_OF, f"{where}: unknown example name {mark.group(1)!r}"
        assert i + 1 < len(lines) and lines[i + 1].strip() == "```json", (
            f"{where}: the example mark must be directly followed by a ```json fence"
        )
        end = next((j for j in range(i + 2, len(lines)) if lines[j].strip() == "```"), None)
        assert end is not None, f"{where}: the example's fence is never closed"
        found.append((i + 1, mark.group(1), "\n".join(lines[i + 2 : end])))
    assert found, "docs/PROTOCOL.md marks no example with <!-- example: NAME -->"
    return found


def test_every_example_in_the_protocol_document_validates_against_its_schema():
    failures = []
    for line, name, text in protocol_examples():
        try:
            instance = json.loads(text)
        except json.JSONDecodeError as e:
            failures.append(f"docs/PROTOCOL.md:{line} ({name}) is not JSON: {e}")
            continue
        complaints = errors(SCHEMA_OF[name], instance)
        if complaints:
            failures.append(f"docs/PROTOCOL.md:{line} ({name}): {complaints}")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------------------------
# The OpenAPI document


def load_api() -> dict:
    return yaml.safe_load(API.read_text(encoding="utf-8"))


def test_the_openapi_document_is_valid_openapi_3_1():
    api = load_api()
    assert api["openapi"].startswith("3.1")
    validate_openapi(api, base_uri=API.resolve().as_uri())


def test_every_ref_in_the_openapi_document_points_to_an_existing_file_and_place():
    api = load_api()
    files = set()
    for ref in sorted(set(refs(api))):
        path, _, fragment = ref.partition("#")
        if path:
            target = SCHEMAS / path
            assert target.is_file(), f"{ref}: no file {target}"
            document = json.loads(target.read_text(encoding="utf-8"))
            files.add(path)
        else:
            document = api
        try:
            resolve_pointer(document, fragment)
        except (KeyError, IndexError, ValueError):
            pytest.fail(f"{ref}: {fragment!r} names nothing in {path or API.name}")
    bodies = {SCHEMA_OF[n] for n in SCHEMA_OF if n != "handover"}
    assert bodies | {"program-bundle.schema.json"} <= files, "every wire body is referenced"


def test_the_api_lives_under_v1_at_the_endpoint_server_variable():
    api = load_api()
    [server] = api["servers"]
    assert server["url"] == "{endpoint}" and "endpoint" in server["variables"]
    assert set(api["paths"]) == {
        "/v1/handovers", "/v1/withdrawals", "/v1/devices", "/v1/device-status", "/v1/bundle", "/v1/health",
    }


def test_every_problem_code_is_named_in_the_openapi_document():
    text = API.read_text(encoding="utf-8")
    codes = load_schema("problem.schema.json")["properties"]["code"]["enum"]
    missing = [code for code in codes if f"`{code}`" not in text]
    assert not missing, f"intake-api.yaml never names {missing}"


def test_every_problem_response_is_problem_json_with_the_problem_schema():
    api = load_api()
    responses = []
    for path in api["paths"].values():
        for operation in path.values():
            responses += [r for status, r in operation["responses"].items() if int(status) >= 400]
    named = api["components"]["responses"]
    for response in responses:
        if "$ref" in response:
            response = named[response["$ref"].rsplit("/", 1)[1]]
        assert response["content"] == {"application/problem+json": {"schema": {"$ref": "problem.schema.json"}}}


# ---------------------------------------------------------------------------------------------
# What the schemas refuse, as the core does


@pytest.mark.parametrize("name", [n for n in SCHEMA_OF if n != "problem"])
def test_the_schemas_refuse_an_extra_field(name):
    instance = sample(name)
    instance["note"] = "not in the message"
    assert_refused(name, instance, "an unknown member")


def test_the_problem_schema_allows_extension_members_as_rfc_9457_does():
    problem = sample("problem")
    problem["instance"] = "/v1/handovers"
    problem["retry_in_seconds"] = 30
    assert_valid("problem", problem, "a problem with extension members")


def test_the_problem_schema_ties_each_code_to_its_type_and_status():
    for field, value in [("status", 422), ("type", "urn:lotsa:problem:conflicting_resend"), ("code", "nonsense")]:
        problem = sample("problem")
        problem[field] = value
        assert_refused("problem", problem, f"a withdrawn problem with {field} {value!r}")
    problem = sample("problem")
    problem["type"] = "about:blank"
    assert_refused("problem", problem, "a type outside urn:lotsa:problem:")


BAD_UUIDS = [
    "0B6C1F5E-3D2A-4C8E-9F10-2A3B4C5D6E7F",
    "0b6c1f5e3d2a4c8e9f102a3b4c5d6e7f",
    "0b6c1f5e-3d2a-4c8e-9f10-2a3b4c5d6e7",
    "not-a-uuid",
]
UUID_FIELDS = [
    ("envelope", "handover_id"),
    ("withdrawal", "withdrawal_id"),
    ("withdrawal", "handover_id"),
    ("withdrawal", "consent_id"),
    ("receipt", "handover_id"),
    ("withdrawal-confirmation", "withdrawal_id"),
    ("withdrawal-confirmation", "handover_id"),
    ("handover", "handover_id"),
]


@pytest.mark.parametrize("name, field", UUID_FIELDS)
@pytest.mark.parametrize("bad", BAD_UUIDS)
def test_the_schemas_refuse_a_bad_uuid(name, field, bad):
    instance = sample(name)
    instance[field] = bad
    assert_refused(name, instance, f"{field} {bad!r}")


@pytest.mark.parametrize("where", ["sealed_sha256", "audit_head.sha256"])
def test_the_schemas_refuse_an_uppercase_hex_digest(where):
    receipt = sample("receipt")
    if where == "sealed_sha256":
        receipt["sealed_sha256"] = receipt["sealed_sha256"].upper()
    else:
        receipt["audit_head"]["sha256"] = receipt["audit_head"]["sha256"].upper()
    assert_refused("receipt", receipt, f"an uppercase {where}")


@pytest.mark.parametrize(
    "bad", ["2026-12-01T10:31:02+01:00", "2026-12-01T09:31:02.000Z", "2026-12-01 09:31:02Z", "2026-12-01T09:31:02z"]
)
def test_the_schemas_refuse_a_signed_instant_in_any_other_form(bad):
    receipt = sample("receipt")
    receipt["received_at"] = bad
    assert_refused("receipt", receipt, f"received_at {bad!r}")


@pytest.mark.parametrize("name, field", [("envelope", "program_id"), ("envelope", "clinic_key_id"), ("receipt", "device_id")])
@pytest.mark.parametrize("bad", ["", "lots för livet", "a b", "a" * 65])
def test_the_schemas_refuse_a_bad_id(name, field, bad):
    instance = sample(name)
    instance[field] = bad
    assert_refused(name, instance, f"{field} {bad!r}")


def test_the_envelope_schema_needs_at_least_an_encapsulated_key_and_a_tag():
    envelope = sample("envelope")
    envelope["sealed"] = base64.b64encode(bytes(47)).decode()
    assert_refused("envelope", envelope, "47 sealed bytes")
    envelope["sealed"] = base64.b64encode(bytes(48)).decode()
    assert_valid("envelope", envelope, "48 sealed bytes")
    envelope["sealed"] = base64.b64encode(bytes(49)).decode()
    assert_valid("envelope", envelope, "49 sealed bytes")
    envelope["payload_schema_version"] = 0
    assert_refused("envelope", envelope, "payload_schema_version 0")
