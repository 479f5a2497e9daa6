"""The signed program bundle: load and verify, then programs and consent scripts.

The bundle and keys are made by the real CLI from schemas/examples/programs.example.json
(see conftest.py). A bundle that is tampered with, malformed or signed by another key is
refused with ApiError.Configuration and a reason code the app can log.
"""

import base64
import hashlib
import json

import pytest

from helpers import assert_api_error

PROGRAM_IDS = ["lots-for-livet", "snackan-gislaved", "snackan-ggvv", "kalmar"]


def _envelope(signed_bundle):
    return json.loads(signed_bundle)


def _flip_base64_char(text, index):
    """Replaces one base64 character by another that changes the decoded bits."""
    c = text[index]
    replacement = "A" if c != "A" else "B"
    return text[:index] + replacement + text[index + 1:]


# --- a valid bundle -------------------------------------------------------------------------


def test_the_signed_example_bundle_loads(ffi, bundle):
    assert isinstance(bundle, ffi.ProgramBundle)
    assert bundle.bundle_id() == "example-2026-11"
    assert bundle.is_example() is True
    assert bundle.expires_at() == "2027-12-31T23:59:59+01:00"


def test_loading_twice_gives_two_independent_bundles(ffi, signed_bundle, trust_key):
    a = ffi.ProgramBundle.load(signed_bundle, trust_key)
    b = ffi.ProgramBundle.load(signed_bundle, trust_key)
    assert a is not b
    assert a.bundle_id() == b.bundle_id()


def test_the_programs_are_listed_in_bundle_order(bundle):
    assert [p.id for p in bundle.programs()] == PROGRAM_IDS


def test_a_program_is_shown_in_the_apps_terms(ffi, bundle):
    p = bundle.program("lots-for-livet")
    assert isinstance(p, ffi.ProgramInfo)
    assert p.name == "Lots för livet"
    assert p.operator == "Polisen region Stockholm och Stockholms stad"
    assert [(m.kommunkod, m.name) for m in p.municipalities] == [("0180", "Stockholm")]
    assert p.minimum_age == 18
    assert p.clinic_name == "Lots för livet, mottagningen (Stockholms stad)"
    assert p.callback_promise == "En lots ringer upp inom två vardagar."
    assert p.script_languages == ["sv", "en"]
    assert p.provisional_allowed is True
    assert p.draft_lifetime_hours == 72
    needs = {f.field: f.need for f in p.fields}
    N = ffi.FieldNeed
    assert needs == {
        "name": N.REQUIRED, "phone": N.REQUIRED, "language": N.OPTIONAL, "best_time": N.OPTIONAL,
        "note": N.OPTIONAL, "personnummer": N.NEVER, "birth_date": N.NEVER, "kommunkod": N.REQUIRED,
    }


def test_program_details_match_the_signed_source(bundle, example_programs):
    for src in example_programs["programs"]:
        p = bundle.program(src["id"])
        assert p.name == src["name"]
        assert p.minimum_age == src["eligibility"]["minimum_age"]
        assert [m.kommunkod for m in p.municipalities] == src["eligibility"]["kommunkoder"]
        assert p.provisional_allowed == src["eligibility"]["provisional_allowed"]
        assert p.draft_lifetime_hours == src["draft_lifetime_hours"]
        assert p.callback_promise == src["callback_promise"]["sv"]


def test_the_callback_promise_follows_the_language(ffi, bundle):
    ffi.set_language("en")
    assert bundle.program("lots-for-livet").callback_promise == "A guide (lots) phones within two working days."


@pytest.mark.parametrize("language", ["sv", "en"])
def test_consent_scripts_are_the_signed_texts_with_their_hash(ffi, bundle, example_programs, language):
    for src in example_programs["programs"]:
        script = bundle.consent_script(src["id"], language)
        expected = next(s for s in src["consent_scripts"] if s["language"] == language)
        assert isinstance(script, ffi.ConsentScript)
        assert (script.id, script.version, script.language) == (expected["id"], expected["version"], language)
        assert script.text == expected["text"]
        assert script.sha256 == expected["sha256"]
        assert script.sha256 == hashlib.sha256(script.text.encode("utf-8")).hexdigest()


def test_a_script_in_an_unsupported_language_is_an_invalid_input(ffi, bundle):
    with pytest.raises(ffi.ApiError) as excinfo:
        bundle.consent_script("lots-for-livet", "de")
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="language", code="unsupported_language")


@pytest.mark.parametrize("call", ["program", "consent_script"])
def test_an_unknown_program_is_a_configuration_error(ffi, bundle, call):
    with pytest.raises(ffi.ApiError) as excinfo:
        if call == "program":
            bundle.program("no-such-program")
        else:
            bundle.consent_script("no-such-program", "sv")
    assert_api_error(excinfo, ffi.ApiError.Configuration, code="unknown_program")


# --- refused bundles ------------------------------------------------------------------------


def _load_refused(ffi, text, key):
    with pytest.raises(ffi.ApiError) as excinfo:
        ffi.ProgramBundle.load(text, key)
    return excinfo


def test_one_flipped_byte_in_the_payload_is_a_bad_signature(ffi, signed_bundle, trust_key):
    env = _envelope(signed_bundle)
    payload = bytearray(base64.b64decode(env["payload"]))
    i = payload.index(b'"minimum_age":18') + len(b'"minimum_age":1')
    payload[i] = ord("6")  # a 16-year-old would now qualify: exactly what the signature stops
    env["payload"] = base64.b64encode(bytes(payload)).decode("ascii")
    tampered = json.dumps(env, indent=2)
    excinfo = _load_refused(ffi, tampered, trust_key)
    assert_api_error(excinfo, ffi.ApiError.Configuration, code="bundle_bad_signature")
    assert "signatur" in excinfo.value.msg


@pytest.mark.parametrize("position", [0.1, 0.5, 0.9])
def test_one_flipped_character_of_the_payload_in_the_file_is_a_bad_signature(ffi, signed_bundle, trust_key, position):
    env = _envelope(signed_bundle)
    start = signed_bundle.index(env["payload"])
    i = start + int(len(env["payload"]) * position)
    tampered = _flip_base64_char(signed_bundle, i)
    assert tampered != signed_bundle and len(tampered) == len(signed_bundle)
    excinfo = _load_refused(ffi, tampered, trust_key)
    assert_api_error(excinfo, ffi.ApiError.Configuration, code="bundle_bad_signature")


def test_one_flipped_character_of_the_signature_is_a_bad_signature(ffi, signed_bundle, trust_key):
    env = _envelope(signed_bundle)
    start = signed_bundle.index(env["signature"])
    tampered = _flip_base64_char(signed_bundle, start + 10)
    excinfo = _load_refused(ffi, tampered, trust_key)
    assert_api_error(excinfo, ffi.ApiError.Configuration, code="bundle_bad_signature")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace("{", "[", 1),  # not the envelope any more
        lambda t: t[: len(t) // 2],  # truncated in transfer
        lambda t: "",
        lambda t: "not json at all",
    ],
    ids=["bracket", "truncated", "empty", "text"],
)
def test_a_file_that_is_not_json_is_malformed(ffi, signed_bundle, trust_key, mangle):
    excinfo = _load_refused(ffi, mangle(signed_bundle), trust_key)
    assert_api_error(excinfo, ffi.ApiError.Configuration, code="bundle_malformed")


def test_a_bundle_checked_against_another_key_has_an_unknown_signer(ffi, signed_bundle, other_trust_key):
    excinfo = _load_refused(ffi, signed_bundle, other_trust_key)
    assert_api_error(excinfo, ffi.ApiError.Configuration, code="bundle_unknown_signer")
    assert _envelope(signed_bundle)["key_id"] in excinfo.value.msg


def test_a_bundle_signed_by_another_key_loads_only_with_that_key(ffi, other_signed_bundle, other_trust_key, trust_key):
    assert ffi.ProgramBundle.load(other_signed_bundle, other_trust_key).bundle_id() == "example-2026-11"
    excinfo = _load_refused(ffi, other_signed_bundle, trust_key)
    assert_api_error(excinfo, ffi.ApiError.Configuration, code="bundle_unknown_signer")


def test_a_bundle_signed_by_another_key_that_claims_the_trusted_key_id_is_a_bad_signature(
    ffi, signed_bundle, other_signed_bundle, trust_key
):
    # The key id is only a label: relabel the other administrator's bundle with ours and
    # the Ed25519 signature still does not verify.
    env = _envelope(other_signed_bundle)
    env["key_id"] = _envelope(signed_bundle)["key_id"]
    excinfo = _load_refused(ffi, json.dumps(env, indent=2), trust_key)
    assert_api_error(excinfo, ffi.ApiError.Configuration, code="bundle_bad_signature")


@pytest.mark.parametrize("key", ["", "not base64!", "AAAA"])
def test_a_trust_key_that_is_no_ed25519_key_is_refused(ffi, signed_bundle, key):
    excinfo = _load_refused(ffi, signed_bundle, key)
    assert_api_error(excinfo, ffi.ApiError.Configuration, code="trust_key_invalid")


def test_the_refusal_text_follows_the_language(ffi, signed_bundle, trust_key):
    env = _envelope(signed_bundle)
    tampered = _flip_base64_char(signed_bundle, signed_bundle.index(env["payload"]) + 100)
    with pytest.raises(ffi.ApiError.Configuration) as sv:
        ffi.ProgramBundle.load(tampered, trust_key)
    ffi.set_language("en")
    with pytest.raises(ffi.ApiError.Configuration) as en:
        ffi.ProgramBundle.load(tampered, trust_key)
    assert sv.value.code == en.value.code == "bundle_bad_signature"
    assert "signaturen" in sv.value.msg.lower() or "signatur" in sv.value.msg.lower()
    assert "signature" in en.value.msg.lower()
    assert sv.value.msg != en.value.msg
