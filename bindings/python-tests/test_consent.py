"""ProgramBundle.validate_consent: a consent record citing the program's current script.

A complete record gives a receipt naming the recipient, the data items and the script
(id, version, SHA-256); anything missing is ApiError.ConsentMissing naming the field.
"""

import datetime
import hashlib
import uuid

import pytest

from helpers import assert_api_error


def test_a_complete_consent_gives_a_receipt_citing_the_current_script(ffi, bundle, consent):
    script = bundle.consent_script("lots-for-livet", "sv")
    receipt = bundle.validate_consent(consent())
    assert isinstance(receipt, ffi.ConsentReceipt)
    assert (receipt.script_id, receipt.script_version) == (script.id, script.version) == ("lfl-samtycke", 1)
    assert receipt.script_sha256 == script.sha256
    assert receipt.script_sha256 == hashlib.sha256(script.text.encode("utf-8")).hexdigest()
    assert receipt.recipient == "Lots för livet, mottagningen (Stockholms stad)"
    # What the person agreed to pass on: the program's required and optional fields, never
    # the personnummer or the birth date.
    assert receipt.data_items == ["name", "phone", "language", "best_time", "note", "kommunkod"]
    uuid.UUID(receipt.consent_id)
    given = datetime.datetime.fromisoformat(receipt.given_at)
    assert given.utcoffset() in (datetime.timedelta(hours=1), datetime.timedelta(hours=2))  # Stockholm
    assert abs(given - datetime.datetime.now(datetime.timezone.utc)) < datetime.timedelta(minutes=5)


def test_each_receipt_has_its_own_id(bundle, consent):
    assert bundle.validate_consent(consent()).consent_id != bundle.validate_consent(consent()).consent_id


def test_a_consent_read_in_english_cites_the_english_script(ffi, bundle, consent):
    receipt = bundle.validate_consent(consent(language="en"))
    assert receipt.script_sha256 == bundle.consent_script("lots-for-livet", "en").sha256
    assert receipt.script_sha256 != bundle.consent_script("lots-for-livet", "sv").sha256


def test_a_signature_on_screen_and_a_lots_guide_are_accepted(ffi, bundle, consent):
    receipt = bundle.validate_consent(
        consent(
            program_id="snackan-gislaved",
            method=ffi.ConsentMethod.SIGNATURE_ON_SCREEN(signature_sha256="ab" * 32),
            role=ffi.Role.LOTS,
        )
    )
    assert receipt.script_id == "snackan-samtycke"
    assert receipt.recipient == "Öppenvårdsmottagningen Snäckan"
    assert "name" in receipt.data_items  # optional at Snäckan, still passed on if given


def test_a_missing_disclosure_about_the_police_matter_names_the_field(ffi, bundle, consent):
    with pytest.raises(ffi.ApiError) as excinfo:
        bundle.validate_consent(consent(told_no_effect_on_police_matter=False))
    assert_api_error(
        excinfo,
        ffi.ApiError.ConsentMissing,
        field="told_no_effect_on_police_matter",
        code="consent_disclosure_missing",
        message_contains="polisärendet",
    )


def test_a_missing_disclosure_about_withdrawal_names_the_field(ffi, bundle, consent):
    with pytest.raises(ffi.ApiError) as excinfo:
        bundle.validate_consent(consent(told_can_withdraw=False))
    assert_api_error(
        excinfo, ffi.ApiError.ConsentMissing, field="told_can_withdraw", code="consent_disclosure_missing"
    )


@pytest.mark.parametrize("capacity", ["DOUBTFUL", "LACKING"])
def test_doubtful_or_lacking_capacity_is_refused(ffi, bundle, consent, capacity):
    with pytest.raises(ffi.ApiError) as excinfo:
        bundle.validate_consent(consent(capacity=getattr(ffi.Capacity, capacity)))
    assert_api_error(
        excinfo, ffi.ApiError.ConsentMissing, field="capacity", code="consent_capacity_not_adequate"
    )


@pytest.mark.parametrize("version", [0, 2, 99])
def test_a_script_version_that_is_not_current_is_refused(ffi, bundle, consent, version):
    with pytest.raises(ffi.ApiError) as excinfo:
        bundle.validate_consent(consent(script_version=version))
    assert_api_error(excinfo, ffi.ApiError.ConsentMissing, field="script", code="consent_script_not_current")
    assert "1" in excinfo.value.msg  # names the current version


@pytest.mark.parametrize(
    "override, field",
    [
        ({"officer_id": " "}, "recorded_by.officer_id"),
        ({"unit": ""}, "recorded_by.unit"),
        ({"subject_ref": ""}, "subject_ref"),
        ({"method": "verbal-no-witness"}, "method.witness"),
        ({"method": "bad-signature-hash"}, "method.signature_sha256"),
    ],
)
def test_an_incomplete_record_names_the_field(ffi, bundle, consent, override, field):
    if override.get("method") == "verbal-no-witness":
        override = {"method": ffi.ConsentMethod.VERBAL(witness="")}
    elif override.get("method") == "bad-signature-hash":
        override = {"method": ffi.ConsentMethod.SIGNATURE_ON_SCREEN(signature_sha256="not-a-hash")}
    with pytest.raises(ffi.ApiError) as excinfo:
        bundle.validate_consent(consent(**override))
    assert_api_error(excinfo, ffi.ApiError.ConsentMissing, field=field, code="consent_incomplete")


def test_the_consent_text_follows_the_language(ffi, bundle, consent):
    ffi.set_language("en")
    with pytest.raises(ffi.ApiError.ConsentMissing) as excinfo:
        bundle.validate_consent(consent(told_no_effect_on_police_matter=False))
    assert "police" in excinfo.value.msg.lower()


def test_an_unsupported_language_is_an_invalid_input(ffi, bundle, consent):
    with pytest.raises(ffi.ApiError) as excinfo:
        bundle.validate_consent(consent(language="fi"))
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="language", code="unsupported_language")


def test_an_unknown_program_is_a_configuration_error(ffi, bundle, consent):
    with pytest.raises(ffi.ApiError) as excinfo:
        bundle.validate_consent(consent(program_id="no-such-program"))
    assert_api_error(excinfo, ffi.ApiError.Configuration, code="unknown_program")


# The personnummer is passed on only if the program needs it or the person agrees in so many words.


def test_an_optional_personnummer_is_covered_only_when_the_person_agrees(ffi, bundle, consent):
    # Kalmar accepts the personnummer as optional: by default the consent leaves it out ...
    default = bundle.validate_consent(consent(program_id="kalmar"))
    assert default.recipient == "Kalmar kommun, öppenvården"
    assert default.data_items == ["name", "phone", "language", "best_time", "note", "kommunkod"]
    # ... and covers it when the person agrees to share it too.
    shared = bundle.validate_consent(consent(program_id="kalmar", share_personnummer=True))
    assert shared.data_items == ["name", "phone", "language", "best_time", "note", "kommunkod", "personnummer"]
    assert bundle.validate_consent(consent(program_id="kalmar", share_personnummer=False)).data_items == (
        default.data_items
    )


def test_a_personnummer_the_program_never_takes_is_never_covered(ffi, bundle, consent):
    # lots-for-livet never takes it: agreeing to share it changes nothing (and is no error).
    for share in (False, True):
        receipt = bundle.validate_consent(consent(share_personnummer=share))
        assert "personnummer" not in receipt.data_items
        assert receipt.data_items == ["name", "phone", "language", "best_time", "note", "kommunkod"]


def test_a_required_personnummer_is_always_covered(ffi, pnr_required_bundle, consent):
    # The same program set with Kalmar's personnummer required (fixture pnr-required-bundle.json).
    info = pnr_required_bundle.program("kalmar")
    assert [r.need for r in info.fields if r.field == "personnummer"] == [ffi.FieldNeed.REQUIRED]
    for share in (False, True):
        receipt = pnr_required_bundle.validate_consent(consent(program_id="kalmar", share_personnummer=share))
        assert receipt.data_items.count("personnummer") == 1, receipt.data_items
