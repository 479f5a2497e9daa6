"""What the interop tests share: the published vectors, the schemas, and the one encoding the
protocol signs and binds with (each part after a 64-bit big-endian length prefix).

Nothing here comes from Lotsa: every value is read from docs/protocol-vectors.json and
schemas/, and every derived byte is rebuilt from the protocol's rules in a few lines of Python.
"""

from __future__ import annotations

import base64
import hashlib
import json
import pathlib
import struct
import urllib.parse

import jsonschema

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
PROTOCOL_DOC = ROOT / "docs" / "PROTOCOL.md"
VECTORS = json.loads((ROOT / "docs" / "protocol-vectors.json").read_text(encoding="utf-8"))

KEYS = VECTORS["keys"]
SEAL = VECTORS["hpke_seal"]

# The schema of each wire body, by the names docs/PROTOCOL.md gives its examples.
SCHEMA_OF = {
    "envelope": "envelope.schema.json",
    "receipt": "receipt.schema.json",
    "withdrawal": "withdrawal.schema.json",
    "withdrawal-confirmation": "withdrawal-confirmation.schema.json",
    "enrolment-request": "enrolment-request.schema.json",
    "enrolment": "enrolment.schema.json",
    "device-status": "device-status.schema.json",
    "problem": "problem.schema.json",
    "handover": "handover.schema.json",
}


def length_prefixed(*parts: bytes) -> bytes:
    """Each part after its length as 8 bytes big-endian."""
    return b"".join(struct.pack(">Q", len(part)) + part for part in parts)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def load_schema(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


def validator(name: str) -> jsonschema.Draft202012Validator:
    """A draft 2020-12 validator for schemas/<name> that asserts `format` (not only annotates)."""
    schema = load_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def errors(name: str, instance) -> list[str]:
    """The schema's complaints about an instance, readable in an assertion message."""
    return [
        f"{e.message} at {'/'.join(map(str, e.absolute_path)) or '(root)'}"
        for e in validator(name).iter_errors(instance)
    ]


def refs(node):
    """Every `$ref` in a document (an OpenAPI document or a schema), depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve_pointer(document, pointer: str):
    """The part of a document a JSON pointer (RFC 6901) names."""
    target = document
    for token in filter(None, pointer.split("/")):
        token = urllib.parse.unquote(token).replace("~1", "/").replace("~0", "~")
        target = target[int(token)] if isinstance(target, list) else target[token]
    return target
