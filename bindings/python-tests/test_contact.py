"""Contact details: phone normalisation to E.164 and the form check of a contact record."""

import pytest

from helpers import assert_api_error


@pytest.mark.parametrize(
    "typed, e164",
    [
        ("070-123 45 67", "+46701234567"),
        ("0701234567", "+46701234567"),
        ("+46 70 123 45 67", "+46701234567"),
        ("0046701234567", "+46701234567"),
        ("08-123 456 78", "+46812345678"),
        ("  070 123 45 67  ", "+46701234567"),
    ],
)
def test_a_swedish_number_is_normalised_to_e164(ffi, typed, e164):
    assert ffi.normalize_phone(typed) == e164


@pytest.mark.parametrize(
    "typed, code",
    [
        ("12", "phone_too_short"),
        ("", "phone_too_short"),
        ("+4670", "phone_too_short"),
        ("0701234567890123", "phone_too_long"),
        ("abc", "phone_invalid_characters"),
        ("070-123 45 67 ring efter 17", "phone_invalid_characters"),
        ("46701234567", "phone_invalid"),
    ],
)
def test_an_invalid_phone_is_an_invalid_input_on_phone(ffi, typed, code):
    with pytest.raises(ffi.ApiError) as excinfo:
        ffi.normalize_phone(typed)
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="phone", code=code)
    assert "Telefonnumret" in excinfo.value.msg or "telefonnummer" in excinfo.value.msg


def test_the_phone_text_follows_the_language(ffi):
    ffi.set_language("en")
    with pytest.raises(ffi.ApiError.InvalidInput) as excinfo:
        ffi.normalize_phone("12")
    assert "phone" in excinfo.value.msg.lower()


def test_validate_contact_trims_and_normalises(ffi):
    checked = ffi.validate_contact(
        ffi.ContactDetails(name="  Anna  ", phone="070-123 45 67", language="arabiska", best_time="efter 17")
    )
    assert isinstance(checked, ffi.ContactDetails)
    assert checked.name == "Anna"
    assert checked.phone == "+46701234567"
    assert checked.language == "arabiska"
    assert checked.best_time == "efter 17"
    assert checked.note is None


def test_empty_contact_details_pass_the_form_check(ffi):
    # Which fields are required depends on the program; the form check only checks the form.
    checked = ffi.validate_contact(ffi.ContactDetails())
    assert (checked.name, checked.phone, checked.note) == (None, None, None)


def test_an_invalid_phone_in_contact_details_names_the_phone_field(ffi):
    with pytest.raises(ffi.ApiError) as excinfo:
        ffi.validate_contact(ffi.ContactDetails(name="Anna", phone="12"))
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="phone", code="phone_too_short")


@pytest.mark.parametrize(
    "kw, field, code",
    [
        ({"note": "x" * 501}, "note", "too_long"),
        ({"name": "An\x07na"}, "name", "control_characters"),
    ],
)
def test_other_contact_problems_name_their_field(ffi, kw, field, code):
    with pytest.raises(ffi.ApiError) as excinfo:
        ffi.validate_contact(ffi.ContactDetails(phone="0701234567", **kw))
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field=field, code=code)


def test_a_note_of_exactly_500_characters_is_accepted(ffi):
    assert len(ffi.validate_contact(ffi.ContactDetails(note="x" * 500)).note) == 500
