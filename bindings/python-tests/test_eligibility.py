"""ProgramBundle.assess: the eligibility verdict with reasons, provisional flag and routing.

Every verdict is made on helpers.ON (2026-11-23) with numbers made by the Luhn rule.
"""

import pytest

from helpers import ON, assert_api_error, personnummer, reason_codes, route_ids, with_wrong_check_digit

ADULT = personnummer("1990-04-12")  # 36 on ON


def facts(ffi, provenance=None, **kw):
    return ffi.PersonFacts(provenance=provenance or ffi.Provenance.DOCUMENT, **kw)


def test_a_stockholm_resident_with_a_document_is_eligible_for_lots_for_livet(ffi, bundle):
    v = bundle.assess("lots-for-livet", facts(ffi, identity_number=ADULT, municipality="Stockholm"), ON)
    assert isinstance(v, ffi.Verdict)
    assert v.program_id == "lots-for-livet"
    assert v.outcome == ffi.Outcome.ELIGIBLE
    assert v.provisional is False
    assert v.may_refer is True
    assert reason_codes(v) == ["age_met", "resident"]
    assert v.routing == []
    assert (v.age_min, v.age_max, v.kommunkod) == (36, 36, "0180")
    for r in v.reasons:
        assert isinstance(r, ffi.Reason) and r.text.strip()
    assert v.reasons[1].text == "Bor i Stockholm (0180), som programmet omfattar."


def test_a_register_confirmed_resident_is_eligible_too(ffi, bundle):
    v = bundle.assess(
        "lots-for-livet", facts(ffi, ffi.Provenance.REGISTER, identity_number=ADULT, municipality="0180"), ON
    )
    assert v.outcome == ffi.Outcome.ELIGIBLE and not v.provisional and v.may_refer


def test_a_gislaved_resident_is_routed_to_the_two_snackan_programs(ffi, bundle):
    v = bundle.assess("lots-for-livet", facts(ffi, identity_number=ADULT, municipality="Gislaved"), ON)
    assert v.outcome == ffi.Outcome.NOT_ELIGIBLE
    assert v.may_refer is False
    assert reason_codes(v) == ["age_met", "not_resident"]
    assert "Gislaved (0662)" in v.reasons[1].text
    assert v.kommunkod == "0662"
    assert route_ids(v) == ["snackan-gislaved", "snackan-ggvv"]
    gislaved, ggvv = v.routing
    assert isinstance(gislaved, ffi.Route)
    assert gislaved.program_name == "Snäckan (Gislaved)"
    assert ggvv.program_name == "Snäckan (GGVV-regionen)"
    for r in v.routing:
        assert r.clinic_name == "Öppenvårdsmottagningen Snäckan"
        assert r.callback_promise == "Snäckan ringer upp inom 24 timmar."
        assert r.provisional is False


def test_the_routed_programs_accept_the_person(ffi, bundle):
    f = facts(ffi, identity_number=ADULT, municipality="Gislaved")
    for program_id in ["snackan-gislaved", "snackan-ggvv"]:
        v = bundle.assess(program_id, f, ON)
        assert v.outcome == ffi.Outcome.ELIGIBLE, program_id
        assert v.routing == []


def test_a_gnosjo_resident_is_routed_only_to_the_ggvv_program(ffi, bundle):
    v = bundle.assess("lots-for-livet", facts(ffi, identity_number=ADULT, municipality="Gnosjö"), ON)
    assert v.outcome == ffi.Outcome.NOT_ELIGIBLE
    assert route_ids(v) == ["snackan-ggvv"]


def test_a_routed_verdict_on_stated_residency_is_provisional_there(ffi, bundle):
    v = bundle.assess(
        "lots-for-livet", facts(ffi, ffi.Provenance.STATED, identity_number=ADULT, municipality="0662"), ON
    )
    assert v.outcome == ffi.Outcome.NOT_ELIGIBLE
    assert route_ids(v) == ["snackan-gislaved", "snackan-ggvv"]
    assert all(r.provisional for r in v.routing)


def test_stated_residency_gives_a_provisional_verdict_that_may_be_referred(ffi, bundle):
    v = bundle.assess(
        "lots-for-livet", facts(ffi, ffi.Provenance.STATED, identity_number=ADULT, municipality="Stockholm"), ON
    )
    assert v.outcome == ffi.Outcome.ELIGIBLE
    assert v.provisional is True
    assert v.may_refer is True
    assert reason_codes(v) == ["age_met", "resident", "residency_stated"]


def test_a_program_that_refuses_stated_residency_leaves_it_undetermined(ffi, bundle):
    v = bundle.assess("kalmar", facts(ffi, ffi.Provenance.STATED, identity_number=ADULT, municipality="Kalmar"), ON)
    assert v.outcome == ffi.Outcome.UNDETERMINED
    assert v.may_refer is False
    assert "stated_residency_not_accepted" in reason_codes(v)


def test_a_person_under_18_is_too_young(ffi, bundle):
    v = bundle.assess(
        "lots-for-livet", facts(ffi, identity_number=personnummer("2010-01-01"), municipality="Stockholm"), ON
    )
    assert v.outcome == ffi.Outcome.NOT_ELIGIBLE
    assert v.may_refer is False
    assert reason_codes(v) == ["too_young", "resident"]
    assert (v.age_min, v.age_max) == (16, 16)
    assert "16" in v.reasons[0].text and "18" in v.reasons[0].text
    assert v.routing == []  # no other program takes a 16-year-old either


@pytest.mark.parametrize("birth, outcome", [("2008-11-23", "ELIGIBLE"), ("2008-11-24", "NOT_ELIGIBLE")])
def test_the_eighteenth_birthday_counts_from_that_day(ffi, bundle, birth, outcome):
    by_number = bundle.assess(
        "lots-for-livet", facts(ffi, identity_number=personnummer(birth), municipality="0180"), ON
    )
    by_date = bundle.assess("lots-for-livet", facts(ffi, birth_date=birth, municipality="0180"), ON)
    assert by_number.outcome == by_date.outcome == getattr(ffi.Outcome, outcome)


def test_a_samordningsnummer_is_not_folkbokford(ffi, bundle):
    number = personnummer("1990-04-12", samordningsnummer=True)
    v = bundle.assess("lots-for-livet", facts(ffi, identity_number=number, municipality="Stockholm"), ON)
    assert v.outcome == ffi.Outcome.NOT_ELIGIBLE
    assert v.may_refer is False
    assert "samordningsnummer_not_folkbokford" in reason_codes(v)
    assert "too_young" not in reason_codes(v)
    assert v.routing == []


def test_a_postal_code_is_only_a_hint_and_leaves_the_verdict_undetermined(ffi, bundle):
    v = bundle.assess("lots-for-livet", facts(ffi, identity_number=ADULT, postal_code="111 22"), ON)
    assert v.outcome == ffi.Outcome.UNDETERMINED
    assert v.may_refer is False
    assert v.provisional is False
    assert reason_codes(v) == ["age_met", "residency_from_postal_code"]
    assert v.kommunkod == "0180"
    assert "postnummer" in v.reasons[1].text.lower()


def test_the_municipality_wins_over_the_postal_code(ffi, bundle):
    v = bundle.assess(
        "lots-for-livet", facts(ffi, identity_number=ADULT, municipality="0180", postal_code="332 30"), ON
    )
    assert v.outcome == ffi.Outcome.ELIGIBLE
    assert v.kommunkod == "0180"


def test_with_nothing_known_the_verdict_says_what_is_missing(ffi, bundle):
    v = bundle.assess("lots-for-livet", facts(ffi, ffi.Provenance.STATED), ON)
    assert v.outcome == ffi.Outcome.UNDETERMINED
    assert reason_codes(v) == ["age_missing", "residency_missing"]
    assert (v.age_min, v.age_max, v.kommunkod) == (None, None, None)
    assert v.may_refer is False


def test_blank_fields_count_as_missing(ffi, bundle):
    v = bundle.assess(
        "lots-for-livet", facts(ffi, identity_number="  ", municipality="", postal_code=" "), ON
    )
    assert reason_codes(v) == ["age_missing", "residency_missing"]


def test_an_unknown_municipality_is_an_invalid_input_on_municipality(ffi, bundle):
    with pytest.raises(ffi.ApiError) as excinfo:
        bundle.assess("lots-for-livet", facts(ffi, identity_number=ADULT, municipality="Atlantis"), ON)
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="municipality", code="unknown_municipality")
    assert "kommun" in excinfo.value.msg


@pytest.mark.parametrize(
    "kw, field, code",
    [
        ({"identity_number": with_wrong_check_digit(ADULT)}, "identity_number", "invalid_checksum"),
        ({"identity_number": "19900412-T123"}, "identity_number", "interim_number"),
        ({"birth_date": "12/04/1990"}, "birth_date", "invalid_birth_date_format"),
        ({"municipality": "Narnia"}, "municipality", "unknown_municipality"),
        ({"postal_code": "abc"}, "postal_code", "invalid_postal_code"),
    ],
)
def test_bad_input_names_the_field(ffi, bundle, kw, field, code):
    with pytest.raises(ffi.ApiError) as excinfo:
        bundle.assess("lots-for-livet", facts(ffi, **kw), ON)
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field=field, code=code)


def test_a_bad_date_is_an_invalid_input_on_on(ffi, bundle):
    with pytest.raises(ffi.ApiError) as excinfo:
        bundle.assess("lots-for-livet", facts(ffi, identity_number=ADULT), "2026-02-30")
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="on", code="invalid_date")


def test_an_unknown_program_is_a_configuration_error(ffi, bundle):
    with pytest.raises(ffi.ApiError) as excinfo:
        bundle.assess("no-such-program", facts(ffi, identity_number=ADULT, municipality="0180"), ON)
    assert_api_error(excinfo, ffi.ApiError.Configuration, code="unknown_program")


def test_without_a_date_the_verdict_is_made_today(ffi, bundle):
    v = bundle.assess("lots-for-livet", facts(ffi, identity_number=ADULT, municipality="Stockholm"), None)
    assert v.outcome == ffi.Outcome.ELIGIBLE
    assert v.age_min >= 36


def test_set_language_changes_the_texts_but_not_the_codes(ffi, bundle):
    f = facts(ffi, identity_number=personnummer("2010-01-01"), municipality="Gislaved")
    sv = bundle.assess("lots-for-livet", f, ON)
    ffi.set_language("en")
    en = bundle.assess("lots-for-livet", f, ON)
    ffi.set_language("sv")
    sv_again = bundle.assess("lots-for-livet", f, ON)
    assert reason_codes(sv) == reason_codes(en) == ["too_young", "not_resident"]
    assert sv.reasons[0].text == "Personen är 16 år; programmet kräver att man har fyllt 18."
    assert en.reasons[0].text == "The person is 16; the program requires an age of at least 18."
    assert en.reasons[1].text == "Lives in Gislaved (0662), which the program does not cover."
    assert [r.text for r in sv_again.reasons] == [r.text for r in sv.reasons]


def test_set_language_changes_the_routing_promise(ffi, bundle):
    f = facts(ffi, identity_number=ADULT, municipality="Gislaved")
    ffi.set_language("en")
    v = bundle.assess("lots-for-livet", f, ON)
    assert [r.callback_promise for r in v.routing] == ["Snäckan phones within 24 hours."] * 2


def test_the_age_met_text_names_the_age(ffi, bundle):
    f = facts(ffi, identity_number=ADULT, municipality="Stockholm")
    sv = bundle.assess("lots-for-livet", f, ON)
    ffi.set_language("en")
    en = bundle.assess("lots-for-livet", f, ON)
    assert sv.reasons[0].text == "Personen är 36 år (programmet kräver att man har fyllt 18)."
    assert en.reasons[0].text == "The person is 36 (the program requires at least 18)."


@pytest.mark.parametrize(
    "kw",
    [
        {"identity_number": personnummer("1909-06-01")},  # 20090601-… typed with 19
        {"identity_number": personnummer("1909-06-01")[2:8] + "+" + personnummer("1909-06-01")[8:]},
        {"identity_number": personnummer("1909-06-01")[:8] + " " + personnummer("1909-06-01")[8:]},
        {"birth_date": "1909-06-01"},
    ],
)
def test_an_age_above_110_leaves_the_verdict_undetermined(ffi, bundle, kw):
    v = bundle.assess("lots-for-livet", facts(ffi, municipality="Stockholm", **kw), ON)
    assert v.outcome == ffi.Outcome.UNDETERMINED
    assert v.may_refer is False
    assert v.provisional is False
    assert reason_codes(v) == ["age_implausible", "resident"]
    assert (v.age_min, v.age_max) == (117, 117)
    assert v.reasons[0].text == "Personen skulle vara 117 år: kontrollera århundradet i numret eller födelseåret."
    assert v.routing == []  # no other program takes the verdict as an adult either


def test_the_same_digits_with_the_right_century_are_a_minor(ffi, bundle):
    minor = personnummer("2009-06-01")
    assert minor[2:] == personnummer("1909-06-01")[2:]  # the check digit cannot tell them apart
    v = bundle.assess("lots-for-livet", facts(ffi, identity_number=minor, municipality="Stockholm"), ON)
    assert v.outcome == ffi.Outcome.NOT_ELIGIBLE
    assert reason_codes(v) == ["too_young", "resident"]


def test_an_implausible_age_never_hides_a_reason_that_excludes(ffi, bundle):
    v = bundle.assess(
        "lots-for-livet", facts(ffi, identity_number=personnummer("1909-06-01"), municipality="Gislaved"), ON
    )
    assert v.outcome == ffi.Outcome.NOT_ELIGIBLE
    assert reason_codes(v) == ["age_implausible", "not_resident"]
    assert v.routing == []


@pytest.mark.parametrize(
    "birth, codes",
    [
        ("1916-11-23", ["age_met", "resident"]),  # 110: taken at face value
        ("1915-11-24", ["age_met", "resident"]),  # 110 until tomorrow
        ("1915-11-23", ["age_implausible", "resident"]),  # 111 today
    ],
)
def test_110_is_the_last_plausible_age(ffi, bundle, birth, codes):
    by_number = bundle.assess("lots-for-livet", facts(ffi, identity_number=personnummer(birth), municipality="0180"), ON)
    by_date = bundle.assess("lots-for-livet", facts(ffi, birth_date=birth, municipality="0180"), ON)
    assert reason_codes(by_number) == reason_codes(by_date) == codes


def test_the_implausible_age_text_follows_the_language(ffi, bundle):
    ffi.set_language("en")
    v = bundle.assess("lots-for-livet", facts(ffi, birth_date="1909-06-01", municipality="Stockholm"), ON)
    assert v.reasons[0].code == "age_implausible"
    assert v.reasons[0].text == "The person would be 117: check the century of the number or the year of birth."


def test_a_year_before_1840_is_an_invalid_input_on_the_identity_number(ffi, bundle):
    with pytest.raises(ffi.ApiError) as excinfo:
        bundle.assess(
            "lots-for-livet",
            facts(ffi, identity_number=personnummer("1812-12-12", serial="121"), municipality="0180"),
            ON,
        )
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="identity_number", code="year_out_of_range")
