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
            Arguments.of("19900412 1233", "invalid_separator"),
            Arguments.of(Ids.personnummer("1990-04-12", serial = "000"), "zero_serial"),
            Arguments.of(Ids.personnummer("19901332"), "invalid_date"),
            Arguments.of(Ids.personnummer("2027-01-01"), "future_birth_date"),
            Arguments.of(Ids.personnummer("99900412"), "reserve_number"),
        )
    }
}
