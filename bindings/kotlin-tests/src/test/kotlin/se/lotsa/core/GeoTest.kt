package se.lotsa.core

import org.junit.jupiter.api.Test
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.CsvSource
import org.junit.jupiter.params.provider.ValueSource
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

/** Municipalities (kommuner) by code, name and postal code. */
class GeoTest : LotsaTest() {
    @ParameterizedTest
    @CsvSource(
        "0180, 0180, Stockholm",
        "Stockholm, 0180, Stockholm",
        "stockholms stad, 0180, Stockholm",
        "GISLAVEDS KOMMUN, 0662, Gislaved",
        "Gnosjo, 0617, Gnosjö",
        "kalmar, 0880, Kalmar",
    )
    fun `a municipality is found by code or name, forgiving case and diacritics`(query: String, code: String, name: String) {
        val m = findMunicipality(query)
        assertEquals(code, m.kommunkod)
        assertEquals(name, m.name)
    }

    @Test
    fun `a municipality carries its county`() {
        val m = findMunicipality("Gislaved")
        assertEquals("06", m.countyCode)
        assertEquals("Jönköpings län", m.countyName)
    }

    @ParameterizedTest
    @ValueSource(strings = ["Atlantis", "9999", "", "Stockholmx"])
    fun `an unknown municipality is an invalid input with a readable message`(query: String) {
        val e = assertFailsWith<ApiException.InvalidInput> { findMunicipality(query) }
        assertApiError(e, field = "municipality", code = "unknown_municipality")
        assertReadable(e.msg)
        assertTrue(e.msg.contains("kommun"), e.msg)
    }

    @Test
    fun `a near miss suggests the municipality meant`() {
        val e = assertFailsWith<ApiException.InvalidInput> { findMunicipality("Ed") }
        assertTrue(e.msg.contains("Eda"), e.msg)
    }

    @Test
    fun `all municipalities are listed once, sorted by code`() {
        val codes = allMunicipalities().map { it.kommunkod }
        assertEquals(290, codes.size)
        assertEquals(codes.sorted(), codes)
        assertEquals(codes.size, codes.toSet().size)
        assertTrue(codes.containsAll(listOf("0180", "0662", "0617", "0665", "0683", "0880")))
    }

    @ParameterizedTest
    @ValueSource(strings = ["111 22", "11122", "SE-111 22"])
    fun `a postal code hints at its municipality`(postalCode: String) {
        assertEquals(listOf("0180"), municipalitiesForPostalCode(postalCode).map { it.kommunkod })
    }

    @ParameterizedTest
    @CsvSource("abc, invalid_postal_code", "1234, invalid_postal_code", "123 45, unknown_postal_code")
    fun `a bad postal code is an invalid input on postal_code`(postalCode: String, code: String) {
        val e = assertFailsWith<ApiException.InvalidInput> { municipalitiesForPostalCode(postalCode) }
        assertApiError(e, field = "postal_code", code = code)
    }

    @ParameterizedTest
    @ValueSource(strings = ["Region Stockholm", "region stockholm", "Stockholms län"])
    fun `a region lists its municipalities for a picker`(query: String) {
        val codes = regionMunicipalities(query).map { it.kommunkod }
        assertEquals(26, codes.size)
        assertTrue(codes.containsAll(listOf("0180", "0127")), codes.toString())
        assertEquals(codes.sorted(), codes)
    }

    @ParameterizedTest
    @ValueSource(strings = ["Västra Götalandsregionen", "Vastra Gotalandsregionen", "Region Stockholm", "Skåne"])
    fun `a region is no municipality and is refused as region_not_municipality`(query: String) {
        val e = assertFailsWith<ApiException.InvalidInput> { findMunicipality(query) }
        assertApiError(e, field = "municipality", code = "region_not_municipality")
        assertReadable(e.msg)
    }

    @Test
    fun `Region Gotland is still the municipality Gotland`() {
        assertEquals("0980", findMunicipality("Region Gotland").kommunkod)
        assertEquals(listOf("0980"), regionMunicipalities("Region Gotland").map { it.kommunkod })
    }

    @ParameterizedTest
    @CsvSource("Stockholm, municipality_not_region", "Region Atlantis, region_not_municipality", "Atlantis, unknown_municipality")
    fun `region municipalities refuses anything but a region`(query: String, code: String) {
        val e = assertFailsWith<ApiException.InvalidInput> { regionMunicipalities(query) }
        assertApiError(e, field = "municipality", code = code)
    }
}
