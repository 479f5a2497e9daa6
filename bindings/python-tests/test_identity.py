"""check_identity_number: personnummer and samordningsnummer as typed, on a fixed date.

Numbers are made here by the Luhn rule (helpers.personnummer), never taken from real
people; ages are computed on helpers.ON (2026-11-23) so they never drift.
"""

import pytest

from helpers import ON, assert_api_error, personnummer, with_wrong_check_digit


def test_a_personnummer_is_valid_with_kind_birth_date_and_exact_age(ffi):
    number = personnummer("1990-04-12")
    check = ffi.check_identity_number(number, ON)
    assert isinstance(check, ffi.IdentityCheck)
    assert check.kind == ffi.IdKind.PERSONNUMMER
    assert check.normalized == number
    assert check.birth_date == "1990-04-12"
    assert check.age == 36
    assert (check.age_min, check.age_max) == (36, 36)


@pytest.mark.parametrize(
    "written",
    ["19900412-1233", "900412-1233", "9004121233", "199004121233", "  900412-1233 "],
)
def test_every_written_form_normalises_to_twelve_digits(ffi, written):
    assert personnummer("1990-04-12") == "199004121233"  # the Luhn helper agrees with the core
    check = ffi.check_identity_number(written, ON)
    assert check.normalized == "199004121233"
    assert check.age == 36


def test_a_plus_sign_means_a_hundred_years_older(ffi):
    check = ffi.check_identity_number("900412+1233", ON)
    assert check.normalized == "189004121233"
    assert check.birth_date == "1890-04-12"
    assert check.age == 136


@pytest.mark.parametrize(
    "birth, age",
    [("2008-11-23", 18), ("2008-11-24", 17), ("2010-01-01", 16), ("1958-11-23", 68)],
)
def test_age_is_completed_years_on_the_given_date(ffi, birth, age):
    check = ffi.check_identity_number(personnummer(birth), ON)
    assert (check.age, check.age_min, check.age_max) == (age, age, age)


def test_the_age_follows_the_on_date(ffi):
    number = personnummer("2008-11-24")
    assert ffi.check_identity_number(number, "2026-11-23").age == 17
    assert ffi.check_identity_number(number, "2026-11-24").age == 18


def test_without_a_date_the_age_is_taken_today(ffi):
    check = ffi.check_identity_number(personnummer("1990-04-12"), None)
    assert check.age is not None and check.age >= 36


def test_a_samordningsnummer_has_its_own_kind_and_the_real_birth_date(ffi):
    number = personnummer("1990-04-12", samordningsnummer=True)
    assert number == "199004721230"
    check = ffi.check_identity_number(number, ON)
    assert check.kind == ffi.IdKind.SAMORDNINGSNUMMER
    assert check.normalized == number
    assert check.birth_date == "1990-04-12"
    assert check.age == 36


def test_a_samordningsnummer_with_unknown_month_and_day_gives_an_age_range(ffi):
    # Month 00 and day 60: only the year is known, so the age is 35 or 36, never guessed.
    check = ffi.check_identity_number(personnummer("19900060"), ON)
    assert check.kind == ffi.IdKind.SAMORDNINGSNUMMER
    assert check.birth_date == "1990"
    assert check.age is None
    assert (check.age_min, check.age_max) == (35, 36)


def test_a_samordningsnummer_with_unknown_day_keeps_the_month(ffi):
    check = ffi.check_identity_number(personnummer("19900460"), ON)
    assert check.birth_date == "1990-04"
    assert check.age == 36


@pytest.mark.parametrize("wrong", [d for d in "0123456789" if d != "3"])
def test_every_wrong_check_digit_is_an_invalid_checksum(ffi, wrong):
    with pytest.raises(ffi.ApiError) as excinfo:
        ffi.check_identity_number("19900412123" + wrong, ON)
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="identity_number", code="invalid_checksum")


@pytest.mark.parametrize(
    "number, code",
    [
        (with_wrong_check_digit(personnummer("1990-04-12")), "invalid_checksum"),
        (personnummer("1990-04-12")[:-1], "wrong_length"),  # 11 digits
        ("9004121", "wrong_length"),
        ("19900412-T123", "interim_number"),
        ("900412-TF12", "interim_number"),
        ("", "empty"),
        ("   ", "empty"),
        ("1990O412-1233", "invalid_characters"),
        ("19900412  1233", "invalid_separator"),  # two spaces
        ("1990 04 12-1233", "invalid_separator"),  # a space is a separator: one, before the last four
        ("900412 -1233", "invalid_separator"),
        ("19900412+1233", "invalid_separator"),
        (personnummer("1990-04-12", serial="000"), "zero_serial"),
        (personnummer("19901332"), "invalid_date"),
        (personnummer("19900230"), "invalid_date"),
        (personnummer("2027-01-01"), "future_birth_date"),
        (personnummer("99900412"), "reserve_number"),
        (personnummer("1812-12-12", serial="121"), "year_out_of_range"),
        (personnummer("1839-12-31"), "year_out_of_range"),
    ],
)
def test_a_bad_number_is_refused_with_field_code_and_readable_text(ffi, number, code):
    with pytest.raises(ffi.ApiError) as excinfo:
        ffi.check_identity_number(number, ON)
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="identity_number", code=code)
    msg = excinfo.value.msg
    assert len(msg) > 20 and msg[0].isupper(), msg
    # The text is shown on screen and may be logged: it never repeats the number.
    if len(number.strip()) >= 6:
        assert number.strip() not in msg and number.strip()[-4:] not in msg, msg


def test_the_refusal_text_follows_the_language(ffi):
    bad = with_wrong_check_digit(personnummer("1990-04-12"))
    with pytest.raises(ffi.ApiError.InvalidInput) as sv:
        ffi.check_identity_number(bad, ON)
    ffi.set_language("en")
    with pytest.raises(ffi.ApiError.InvalidInput) as en:
        ffi.check_identity_number(bad, ON)
    assert sv.value.code == en.value.code == "invalid_checksum"
    assert sv.value.msg != en.value.msg
    assert "Kontrollsiffran" in sv.value.msg
    assert "check digit" in en.value.msg.lower()


@pytest.mark.parametrize("on", ["23/11/2026", "2026-13-01", "tomorrow", ""])
def test_a_bad_on_date_is_an_invalid_input_on_field_on(ffi, on):
    with pytest.raises(ffi.ApiError) as excinfo:
        ffi.check_identity_number(personnummer("1990-04-12"), on)
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="on", code="invalid_date")


@pytest.mark.parametrize(
    "written",
    ["19900412 1233", "900412 1233", "19900412\u00a01233", " 900412 1233 "],
)
def test_one_space_may_stand_where_the_hyphen_goes(ffi, written):
    check = ffi.check_identity_number(written, ON)
    assert check.normalized == "199004121233"
    assert check.age == 36
    assert check.plausible is True


def test_a_space_in_ten_digits_never_means_plus(ffi):
    # Like a number with no separator at all, a space reads as a hyphen: 1927, not 1827.
    number = personnummer("1927-05-01")
    spaced = ffi.check_identity_number(number[2:8] + " " + number[8:], ON)
    assert spaced.normalized == ffi.check_identity_number(number[2:], ON).normalized == number


@pytest.mark.parametrize(
    "birth, age, plausible",
    [
        ("2009-06-01", 17, True),
        ("1909-06-01", 117, False),  # the same number with the century typed 19
        ("1916-11-23", 110, True),
        ("1915-11-23", 111, False),
        ("1915-11-24", 110, True),
        ("1840-01-01", 186, False),
    ],
)
def test_an_age_above_110_is_valid_but_not_plausible(ffi, birth, age, plausible):
    check = ffi.check_identity_number(personnummer(birth), ON)
    assert check.age == age
    assert check.plausible is plausible


def test_a_century_typo_keeps_its_check_digit_and_is_flagged(ffi):
    minor = personnummer("2009-06-01")
    typo = personnummer("1909-06-01")
    assert minor[2:] == typo[2:]  # Luhn does not cover the century
    assert ffi.check_identity_number(minor, ON).plausible is True
    for written in [typo, typo[:8] + "-" + typo[8:], typo[2:8] + "+" + typo[8:]]:
        check = ffi.check_identity_number(written, ON)
        assert check.normalized == typo
        assert (check.age, check.plausible) == (117, False)
    # A plus sign on 1890s digits is a valid, very old number: not plausible either.
    assert ffi.check_identity_number("900412+1233", ON).plausible is False


def test_an_age_range_is_implausible_only_when_all_of_it_is(ffi):
    # Month and day unknown: 1915 gives 110 or 111 (possible), 1914 gives 111 or 112.
    in_reach = ffi.check_identity_number(personnummer("19150060"), ON)
    assert (in_reach.age_min, in_reach.age_max, in_reach.plausible) == (110, 111, True)
    beyond = ffi.check_identity_number(personnummer("19140060"), ON)
    assert (beyond.age_min, beyond.age_max, beyond.plausible) == (111, 112, False)


def test_a_year_before_1840_is_refused_in_both_languages_without_the_number(ffi):
    number = personnummer("1812-12-12", serial="121")
    assert number[2:] == personnummer("1912-12-12", serial="121")[2:]
    with pytest.raises(ffi.ApiError) as sv:
        ffi.check_identity_number(number, ON)
    assert_api_error(sv, ffi.ApiError.InvalidInput, field="identity_number", code="year_out_of_range")
    ffi.set_language("en")
    with pytest.raises(ffi.ApiError) as en:
        ffi.check_identity_number(number[:8] + " " + number[8:], ON)
    assert_api_error(en, ffi.ApiError.InvalidInput, field="identity_number", code="year_out_of_range")
    assert "1840" in sv.value.msg and "1840" in en.value.msg
    assert "Födelseåret" in sv.value.msg
    assert "century" in en.value.msg
    for msg in (sv.value.msg, en.value.msg):
        assert "121212" not in msg and number[-4:] not in msg, msg
