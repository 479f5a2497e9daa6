package se.lotsa.core

import org.junit.jupiter.api.Test
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.CsvSource
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlin.test.assertTrue

/** Phone normalisation to E.164 and the form check of contact details. */
class ContactTest : LotsaTest() {
    @ParameterizedTest
    @CsvSource(
        "070-123 45 67, +46701234567",
        "0701234567, +46701234567",
        "+46 70 123 45 67, +46701234567",
        "0046701234567, +46701234567",
        "08-123 456 78, +46812345678",
    )
    fun `a Swedish number is normalised to E164`(typed: String, e164: String) {
        assertEquals(e164, normalizePhone(typed))
    }

    @ParameterizedTest
    @CsvSource(
        "12, phone_too_short",
        "'', phone_too_short",
        "0701234567890123, phone_too_long",
        "abc, phone_invalid_characters",
        "46701234567, phone_invalid",
    )
    fun `an invalid phone is an invalid input on phone`(typed: String, code: String) {
        val e = assertFailsWith<ApiException.InvalidInput> { normalizePhone(typed) }
        assertEquals("phone", e.field)
        assertEquals(code, e.code)
        assertReadable(e.msg)
        assertTrue(e.msg.contains("elefonnum"), e.msg)
    }

    @Test
    fun `the phone text follows the language`() {
        setLanguage("en")
        val e = assertFailsWith<ApiException.InvalidInput> { normalizePhone("12") }
        assertTrue(e.msg.lowercase().contains("phone"), e.msg)
    }

    @Test
    fun `validateContact trims and normalises`() {
        val c = validateContact(ContactDetails(name = "  Anna  ", phone = "070-123 45 67", bestTime = "efter 17"))
        assertEquals("Anna", c.name)
        assertEquals("+46701234567", c.phone)
        assertEquals("efter 17", c.bestTime)
        assertNull(c.note)
    }

    @Test
    fun `empty contact details pass the form check`() {
        val c = validateContact(ContactDetails())
        assertNull(c.name)
        assertNull(c.phone)
    }

    @Test
    fun `an invalid phone in contact details names the phone field`() {
        val e = assertFailsWith<ApiException.InvalidInput> { validateContact(ContactDetails(name = "Anna", phone = "12")) }
        assertApiError(e, field = "phone", code = "phone_too_short")
    }

    @Test
    fun `other contact problems name their field`() {
        val note = assertFailsWith<ApiException.InvalidInput> { validateContact(ContactDetails(phone = "0701234567", note = "x".repeat(501))) }
        assertApiError(note, field = "note", code = "too_long")
        val name = assertFailsWith<ApiException.InvalidInput> { validateContact(ContactDetails(name = "An\u0007na")) }
        assertApiError(name, field = "name", code = "control_characters")
        assertEquals(500, validateContact(ContactDetails(note = "x".repeat(500))).note!!.length)
    }
}
