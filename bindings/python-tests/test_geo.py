"""Municipalities (kommuner) by code, name and postal code."""

import pytest

from helpers import assert_api_error


@pytest.mark.parametrize(
    "query, code, name",
    [
        ("0180", "0180", "Stockholm"),
        ("Stockholm", "0180", "Stockholm"),
        ("stockholms stad", "0180", "Stockholm"),
        ("0662", "0662", "Gislaved"),
        ("GISLAVEDS KOMMUN", "0662", "Gislaved"),
        ("Gnosjo", "0617", "Gnosjö"),
        ("  kalmar ", "0880", "Kalmar"),
    ],
)
def test_a_municipality_is_found_by_code_or_name_forgiving_case_and_diacritics(ffi, query, code, name):
    m = ffi.find_municipality(query)
    assert isinstance(m, ffi.Municipality)
    assert (m.kommunkod, m.name) == (code, name)


def test_a_municipality_carries_its_county(ffi):
    m = ffi.find_municipality("Gislaved")
    assert (m.county_code, m.county_name) == ("06", "Jönköpings län")


@pytest.mark.parametrize("query", ["Atlantis", "9999", "", "Stockholmx"])
def test_an_unknown_municipality_is_an_invalid_input_with_a_readable_message(ffi, query):
    with pytest.raises(ffi.ApiError) as excinfo:
        ffi.find_municipality(query)
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="municipality", code="unknown_municipality")
    assert "kommun" in excinfo.value.msg


def test_a_near_miss_suggests_the_municipality_meant(ffi):
    with pytest.raises(ffi.ApiError.InvalidInput) as excinfo:
        ffi.find_municipality("Ed")
    assert excinfo.value.code == "unknown_municipality"
    assert "Eda" in excinfo.value.msg


def test_the_unknown_municipality_text_follows_the_language(ffi):
    ffi.set_language("en")
    with pytest.raises(ffi.ApiError.InvalidInput) as excinfo:
        ffi.find_municipality("Atlantis")
    assert "municipality" in excinfo.value.msg.lower()


def test_all_municipalities_are_listed_once_sorted_by_code(ffi):
    all_ = ffi.all_municipalities()
    codes = [m.kommunkod for m in all_]
    assert len(all_) == 290
    assert codes == sorted(codes)
    assert len(set(codes)) == len(codes)
    assert all(len(c) == 4 and c.isdigit() for c in codes)
    assert {"0180", "0662", "0617", "0665", "0683", "0880"} <= set(codes)


@pytest.mark.parametrize("postal_code", ["111 22", "11122", "SE-111 22", " 111 22 "])
def test_a_postal_code_hints_at_its_municipality(ffi, postal_code):
    hint = ffi.municipalities_for_postal_code(postal_code)
    assert [m.kommunkod for m in hint] == ["0180"]
    assert hint[0].name == "Stockholm"


def test_a_gislaved_postal_code_hints_at_gislaved(ffi):
    assert [m.kommunkod for m in ffi.municipalities_for_postal_code("332 30")] == ["0662"]


@pytest.mark.parametrize(
    "postal_code, code",
    [("abc", "invalid_postal_code"), ("", "invalid_postal_code"), ("1234", "invalid_postal_code"),
     ("012 34", "invalid_postal_code"), ("123 45", "unknown_postal_code")],
)
def test_a_bad_postal_code_is_an_invalid_input_on_postal_code(ffi, postal_code, code):
    with pytest.raises(ffi.ApiError) as excinfo:
        ffi.municipalities_for_postal_code(postal_code)
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="postal_code", code=code)


@pytest.mark.parametrize("query", ["Region Stockholm", "region stockholm", "Stockholms län", "Stockholm län"])
def test_a_region_lists_its_municipalities_for_a_picker(ffi, query):
    ms = ffi.region_municipalities(query)
    codes = [m.kommunkod for m in ms]
    assert len(ms) == 26
    assert {"0180", "0127"} <= set(codes)
    assert codes == sorted(codes)
    assert all(isinstance(m, ffi.Municipality) and m.county_code == "01" for m in ms)


@pytest.mark.parametrize(
    "query", ["Västra Götalandsregionen", "Vastra Gotalandsregionen", "Region Stockholm", "Skåne", "Region Sörmland"]
)
def test_a_region_is_no_municipality_and_is_refused_as_region_not_municipality(ffi, query):
    with pytest.raises(ffi.ApiError) as excinfo:
        ffi.find_municipality(query)
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="municipality", code="region_not_municipality")
    assert "inte en kommun" in excinfo.value.msg


def test_region_gotland_is_still_the_municipality_gotland(ffi):
    m = ffi.find_municipality("Region Gotland")
    assert (m.kommunkod, m.name) == ("0980", "Gotland")
    assert [m.kommunkod for m in ffi.region_municipalities("Region Gotland")] == ["0980"]


@pytest.mark.parametrize(
    "query, code",
    [("Stockholm", "municipality_not_region"), ("Kalmar", "municipality_not_region"),
     ("Region Atlantis", "region_not_municipality"), ("Atlantis", "unknown_municipality")],
)
def test_region_municipalities_refuses_anything_but_a_region(ffi, query, code):
    with pytest.raises(ffi.ApiError) as excinfo:
        ffi.region_municipalities(query)
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="municipality", code=code)
