package se.lotsa.core

import org.junit.jupiter.api.Test
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.Arguments
import org.junit.jupiter.params.provider.MethodSource
import org.junit.jupiter.params.provider.ValueSource
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotEquals
import kotlin.test.assertNull
import kotlin.test.assertTrue

/** checkIdentityNumber: personnummer and samordningsnummer as typed, on the fixed date [ON]. */
class IdentityTest : LotsaTest() {
    @Test
    fun `a personnummer is valid with kind, birth date and exact age`() {
        val number = Ids.personnummer("1990-04-12")
        assertEquals("199004121233", number) // the Luhn helper agrees with the core
        val c = checkIdentityNumber(number, ON)
        assertEquals(IdKind.PERSONNUMMER, c.kind)
        assertEquals(number, c.normalized)
        assertEquals("1990-04-12", c.birthDate)
        assertEquals(36u, c.age)
        assertEquals(36u, c.ageMin)
        assertEquals(36u, c.ageMax)
    }

    @ParameterizedTest
    @ValueSource(strings = ["19900412-1233", "900412-1233", "9004121233", "199004121233", "  900412-1233 "])
    fun `every written form normalises to twelve digits`(written: String) {
        val c = checkIdentityNumber(written, ON)
        assertEquals("199004121233", c.normalized)
        assertEquals(36u, c.age)
    }

    @Test
    fun `a plus sign means a hundred years older`() {
        val c = checkIdentityNumber("900412+1233", ON)
        assertEquals("189004121233", c.normalized)
        assertEquals(136u, c.age)
    }

    @ParameterizedTest
    @MethodSource("ages")
    fun `age is completed years on the given date`(birth: String, age: Int) {
        val c = checkIdentityNumber(Ids.personnummer(birth), ON)
        assertEquals(age.toUInt(), c.age)
        assertEquals(age.toUInt(), c.ageMin)
        assertEquals(age.toUInt(), c.ageMax)
    }

    @Test
    fun `the age follows the on date, and today without one`() {
        val number = Ids.personnummer("2008-11-24")
        assertEquals(17u, checkIdentityNumber(number, "2026-11-23").age)
        assertEquals(18u, checkIdentityNumber(number, "2026-11-24").age)
        assertTrue(checkIdentityNumber(Ids.ADULT, null).age!! >= 36u)
    }

    @Test
    fun `a samordningsnummer has its own kind and the real birth date`() {
        val number = Ids.personnummer("1990-04-12", samordningsnummer = true)
        assertEquals("199004721230", number)
        val c = checkIdentityNumber(number, ON)
        assertEquals(IdKind.SAMORDNINGSNUMMER, c.kind)
        assertEquals("1990-04-12", c.birthDate)
        assertEquals(36u, c.age)
    }

    @Test
    fun `a samordningsnummer with unknown month and day gives an age range, never a guess`() {
        val c = checkIdentityNumber(Ids.personnummer("19900060"), ON)
        assertEquals(IdKind.SAMORDNINGSNUMMER, c.kind)
        assertEquals("1990", c.birthDate)
        assertNull(c.age)
        assertEquals(35u, c.ageMin)
        assertEquals(36u, c.ageMax)
    }

    @ParameterizedTest
    @MethodSource("badNumbers")
    fun `a bad number is refused with field, code and readable text`(number: String, code: String) {
        val e = assertFailsWith<ApiException.InvalidInput> { checkIdentityNumber(number, ON) }
        assertApiError(e, field = "identity_number", code = code)
        assertEquals("identity_number", e.field)
        assertEquals(code, e.code)
        assertReadable(e.msg)
        // Shown on screen and maybe logged: the text never repeats the number.
        val typed = number.trim()
        if (typed.length >= 6) assertFalse(e.msg.contains(typed) || e.msg.contains(typed.takeLast(4)), e.msg)
    }

    @Test
    fun `every wrong check digit is an invalid checksum`() {
        for (d in "012456789") {
            val e = assertFailsWith<ApiException.InvalidInput> { checkIdentityNumber("19900412123$d", ON) }
            assertEquals("invalid_checksum", e.code, "check digit $d")
        }
    }

    @Test
    fun `the refusal text follows the language`() {
        val bad = Ids.withWrongCheckDigit(Ids.ADULT)
        val sv = assertFailsWith<ApiException.InvalidInput> { checkIdentityNumber(bad, ON) }
        setLanguage("en")
        val en = assertFailsWith<ApiException.InvalidInput> { checkIdentityNumber(bad, ON) }
        assertEquals(sv.code, en.code)
        assertNotEquals(sv.msg, en.msg)
        assertTrue(sv.msg.contains("Kontrollsiffran"), sv.msg)
        assertTrue(en.msg.lowercase().contains("check digit"), en.msg)
    }

    @ParameterizedTest
    @ValueSource(strings = ["23/11/2026", "2026-13-01", "tomorrow", ""])
    fun `a bad on date is an invalid input on field on`(on: String) {
        val e = assertFailsWith<ApiException.InvalidInput> { checkIdentityNumber(Ids.ADULT, on) }
        assertApiError(e, field = "on", code = "invalid_date")
    }

    @ParameterizedTest
    @ValueSource(strings = ["19900412 1233", "900412 1233", "19900412\u00a01233", " 900412 1233 "])
    fun `one space may stand where the hyphen goes`(written: String) {
        val c = checkIdentityNumber(written, ON)
        assertEquals("199004121233", c.normalized)
        assertEquals(36u, c.age)
        assertTrue(c.plausible)
    }

    @Test
    fun `a space in ten digits never means plus`() {
        // Like a number with no separator at all, a space reads as a hyphen: 1927, not 1827.
        val number = Ids.personnummer("1927-05-01")
        val spaced = checkIdentityNumber(number.substring(2, 8) + " " + number.substring(8), ON)
        assertEquals(number, spaced.normalized)
        assertEquals(checkIdentityNumber(number.substring(2), ON).normalized, spaced.normalized)
    }

    @ParameterizedTest
    @MethodSource("plausibility")
    fun `an age above 110 is valid but not plausible`(birth: String, age: Int, plausible: Boolean) {
        val c = checkIdentityNumber(Ids.personnummer(birth), ON)
        assertEquals(age.toUInt(), c.age)
        assertEquals(plausible, c.plausible)
    }

    @Test
    fun `a century typo keeps its check digit and is flagged`() {
        val minor = Ids.personnummer("2009-06-01")
        val typo = Ids.personnummer("1909-06-01")
        assertEquals(minor.substring(2), typo.substring(2)) // Luhn does not cover the century
        assertTrue(checkIdentityNumber(minor, ON).plausible)
        for (written in listOf(typo, typo.substring(0, 8) + "-" + typo.substring(8), typo.substring(2, 8) + "+" + typo.substring(8))) {
            val c = checkIdentityNumber(written, ON)
            assertEquals(typo, c.normalized, written)
            assertEquals(117u, c.age, written)
            assertFalse(c.plausible, written)
        }
        // A plus sign on 1890s digits is a valid, very old number: not plausible either.
        assertFalse(checkIdentityNumber("900412+1233", ON).plausible)
    }

    @Test
    fun `an age range is implausible only when all of it is`() {
        // Month and day unknown: 1915 gives 110 or 111 (possible), 1914 gives 111 or 112.
        val inReach = checkIdentityNumber(Ids.personnummer("19150060"), ON)
        assertEquals(listOf(110u, 111u), listOf(inReach.ageMin, inReach.ageMax))
        assertTrue(inReach.plausible)
        val beyond = checkIdentityNumber(Ids.personnummer("19140060"), ON)
        assertEquals(listOf(111u, 112u), listOf(beyond.ageMin, beyond.ageMax))
        assertFalse(beyond.plausible)
    }

    @Test
    fun `a year before 1840 is refused in both languages without the number`() {
        val number = Ids.personnummer("1812-12-12", serial = "121")
        assertEquals(Ids.personnummer("1912-12-12", serial = "121").substring(2), number.substring(2))
        val sv = assertFailsWith<ApiException.InvalidInput> { checkIdentityNumber(number, ON) }
        assertApiError(sv, field = "identity_number", code = "year_out_of_range")
        setLanguage("en")
        val en = assertFailsWith<ApiException.InvalidInput> {
            checkIdentityNumber(number.substring(0, 8) + " " + number.substring(8), ON)
        }
        assertApiError(en, field = "identity_number", code = "year_out_of_range")
        assertTrue(sv.msg.contains("1840") && sv.msg.contains("Födelseåret"), sv.msg)
        assertTrue(en.msg.contains("1840") && en.msg.contains("century"), en.msg)
        for (msg in listOf(sv.msg, en.msg)) assertFalse(msg.contains("121212") || msg.contains(number.takeLast(4)), msg)
    }

    companion object {
        @JvmStatic
        fun ages() = listOf(
            Arguments.of("2008-11-23", 18),
            Arguments.of("2008-11-24", 17),
            Arguments.of("2010-01-01", 16),
            Arguments.of("1958-11-23", 68),
        )

        @JvmStatic
        fun badNumbers() = listOf(
            Arguments.of(Ids.withWrongCheckDigit(Ids.ADULT), "invalid_checksum"),
            Arguments.of(Ids.ADULT.dropLast(1), "wrong_length"),
            Arguments.of("9004121", "wrong_length"),
            Arguments.of("19900412-T123", "interim_number"),
            Arguments.of("900412-TF12", "interim_number"),
            Arguments.of("", "empty"),
            Arguments.of("1990O412-1233", "invalid_characters"),
            Arguments.of("19900412  1233", "invalid_separator"), // two spaces
            Arguments.of("1990 04 12-1233", "invalid_separator"), // a space is a separator: one, before the last four
            Arguments.of("900412 -1233", "invalid_separator"),
            Arguments.of(Ids.personnummer("1990-04-12", serial = "000"), "zero_serial"),
            Arguments.of(Ids.personnummer("19901332"), "invalid_date"),
            Arguments.of(Ids.personnummer("2027-01-01"), "future_birth_date"),
            Arguments.of(Ids.personnummer("99900412"), "reserve_number"),
            Arguments.of(Ids.personnummer("1812-12-12", serial = "121"), "year_out_of_range"),
            Arguments.of(Ids.personnummer("1839-12-31"), "year_out_of_range"),
        )

        @JvmStatic
        fun plausibility() = listOf(
            Arguments.of("2009-06-01", 17, true),
            Arguments.of("1909-06-01", 117, false), // the same number with the century typed 19
            Arguments.of("1916-11-23", 110, true),
            Arguments.of("1915-11-23", 111, false),
            Arguments.of("1915-11-24", 110, true),
            Arguments.of("1840-01-01", 186, false),
        )
    }
}
