package se.lotsa.core

import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.CsvSource
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue

/** ProgramBundle.assess: the verdict with reasons, provisional flag and routing, on [ON]. */
class EligibilityTest : LotsaTest() {
    private val bundle get() = Fixtures.bundle

    private fun assess(f: PersonFacts, program: String = "lots-for-livet") = bundle.assess(program, f, ON)

    @Test
    fun `a Stockholm resident with a document is eligible for lots-for-livet`() {
        val v = assess(facts(identityNumber = Ids.ADULT, municipality = "Stockholm"))
        assertEquals("lots-for-livet", v.programId)
        assertEquals(Outcome.ELIGIBLE, v.outcome)
        assertFalse(v.provisional)
        assertTrue(v.mayRefer)
        assertEquals(listOf("age_met", "resident"), codes(v))
        assertTrue(v.routing.isEmpty())
        assertEquals(36u, v.ageMin)
        assertEquals(36u, v.ageMax)
        assertEquals("0180", v.kommunkod)
        assertEquals("Bor i Stockholm (0180), som programmet omfattar.", v.reasons[1].text)
    }

    @Test
    fun `a Gislaved resident is routed to the two Snackan programs`() {
        val v = assess(facts(identityNumber = Ids.ADULT, municipality = "Gislaved"))
        assertEquals(Outcome.NOT_ELIGIBLE, v.outcome)
        assertFalse(v.mayRefer)
        assertEquals(listOf("age_met", "not_resident"), codes(v))
        assertEquals("0662", v.kommunkod)
        assertEquals(listOf("snackan-gislaved", "snackan-ggvv"), routeIds(v))
        assertEquals(listOf("Snäckan (Gislaved)", "Snäckan (GGVV-regionen)"), v.routing.map { it.programName })
        for (r in v.routing) {
            assertEquals("Öppenvårdsmottagningen Snäckan", r.clinicName)
            assertEquals("Snäckan ringer upp inom 24 timmar.", r.callbackPromise)
            assertFalse(r.provisional)
        }
        for (id in routeIds(v)) assertEquals(Outcome.ELIGIBLE, assess(facts(identityNumber = Ids.ADULT, municipality = "Gislaved"), id).outcome)
    }

    @Test
    fun `a routed verdict on stated residency is provisional there`() {
        val v = assess(facts(identityNumber = Ids.ADULT, municipality = "0662", provenance = Provenance.STATED))
        assertEquals(listOf("snackan-gislaved", "snackan-ggvv"), routeIds(v))
        assertTrue(v.routing.all { it.provisional })
    }

    @Test
    fun `stated residency gives a provisional verdict that may be referred`() {
        val v = assess(facts(identityNumber = Ids.ADULT, municipality = "Stockholm", provenance = Provenance.STATED))
        assertEquals(Outcome.ELIGIBLE, v.outcome)
        assertTrue(v.provisional)
        assertTrue(v.mayRefer)
        assertEquals(listOf("age_met", "resident", "residency_stated"), codes(v))
    }

    @Test
    fun `a program that refuses stated residency leaves it undetermined`() {
        val v = assess(facts(identityNumber = Ids.ADULT, municipality = "Kalmar", provenance = Provenance.STATED), "kalmar")
        assertEquals(Outcome.UNDETERMINED, v.outcome)
        assertFalse(v.mayRefer)
        assertTrue("stated_residency_not_accepted" in codes(v))
    }

    @Test
    fun `a person under 18 is too young`() {
        val v = assess(facts(identityNumber = Ids.personnummer("2010-01-01"), municipality = "Stockholm"))
        assertEquals(Outcome.NOT_ELIGIBLE, v.outcome)
        assertFalse(v.mayRefer)
        assertEquals(listOf("too_young", "resident"), codes(v))
        assertEquals(16u, v.ageMax)
        assertTrue(v.reasons[0].text.contains("16") && v.reasons[0].text.contains("18"), v.reasons[0].text)
        assertTrue(v.routing.isEmpty())
    }

    @ParameterizedTest
    @CsvSource("2008-11-23, ELIGIBLE", "2008-11-24, NOT_ELIGIBLE")
    fun `the eighteenth birthday counts from that day`(birth: String, outcome: Outcome) {
        assertEquals(outcome, assess(facts(identityNumber = Ids.personnummer(birth), municipality = "0180")).outcome)
        assertEquals(outcome, assess(facts(birthDate = birth, municipality = "0180")).outcome)
    }

    @Test
    fun `a samordningsnummer is not folkbokford`() {
        val number = Ids.personnummer("1990-04-12", samordningsnummer = true)
        val v = assess(facts(identityNumber = number, municipality = "Stockholm"))
        assertEquals(Outcome.NOT_ELIGIBLE, v.outcome)
        assertFalse(v.mayRefer)
        assertTrue("samordningsnummer_not_folkbokford" in codes(v), codes(v).toString())
        assertFalse("too_young" in codes(v))
    }

    @Test
    fun `a postal code is only a hint and leaves the verdict undetermined`() {
        val v = assess(facts(identityNumber = Ids.ADULT, postalCode = "111 22"))
        assertEquals(Outcome.UNDETERMINED, v.outcome)
        assertFalse(v.mayRefer)
        assertEquals(listOf("age_met", "residency_from_postal_code"), codes(v))
        assertEquals("0180", v.kommunkod)
    }

    @Test
    fun `with nothing known the verdict says what is missing`() {
        val v = assess(facts(provenance = Provenance.STATED))
        assertEquals(Outcome.UNDETERMINED, v.outcome)
        assertEquals(listOf("age_missing", "residency_missing"), codes(v))
        assertNull(v.ageMin)
        assertNull(v.kommunkod)
    }

    @Test
    fun `an unknown municipality is an invalid input on municipality`() {
        val e = assertFailsWith<ApiException.InvalidInput> { assess(facts(identityNumber = Ids.ADULT, municipality = "Atlantis")) }
        assertEquals("municipality", e.field)
        assertEquals("unknown_municipality", e.code)
        assertReadable(e.msg)
        assertTrue(e.msg.contains("kommun"), e.msg)
    }

    @Test
    fun `bad input names the field`() {
        val cases = listOf(
            facts(identityNumber = Ids.withWrongCheckDigit(Ids.ADULT)) to ("identity_number" to "invalid_checksum"),
            facts(identityNumber = "19900412-T123") to ("identity_number" to "interim_number"),
            facts(birthDate = "12/04/1990") to ("birth_date" to "invalid_birth_date_format"),
            facts(postalCode = "abc") to ("postal_code" to "invalid_postal_code"),
        )
        for ((f, expected) in cases) {
            val e = assertFailsWith<ApiException.InvalidInput> { assess(f) }
            assertApiError(e, field = expected.first, code = expected.second)
        }
        val e = assertFailsWith<ApiException.InvalidInput> { bundle.assess("lots-for-livet", facts(identityNumber = Ids.ADULT), "2026-02-30") }
        assertApiError(e, field = "on", code = "invalid_date")
    }

    @Test
    fun `an unknown program is a configuration error`() {
        val e = assertFailsWith<ApiException.Configuration> { assess(facts(identityNumber = Ids.ADULT), "no-such-program") }
        assertEquals("unknown_program", e.code)
    }

    @Test
    fun `setLanguage changes the texts but not the codes`() {
        val f = facts(identityNumber = Ids.personnummer("2010-01-01"), municipality = "Gislaved")
        val sv = assess(f)
        setLanguage("en")
        val en = assess(f)
        assertEquals(codes(sv), codes(en))
        assertEquals("Personen är 16 år; programmet kräver att man har fyllt 18.", sv.reasons[0].text)
        assertEquals("The person is 16; the program requires an age of at least 18.", en.reasons[0].text)
        assertEquals("Lives in Gislaved (0662), which the program does not cover.", en.reasons[1].text)
        val routed = assess(facts(identityNumber = Ids.ADULT, municipality = "Gislaved"))
        assertEquals(listOf("Snäckan phones within 24 hours.", "Snäckan phones within 24 hours."), routed.routing.map { it.callbackPromise })
    }

    @Test
    fun `the age met text names the age`() {
        val f = facts(identityNumber = Ids.ADULT, municipality = "Stockholm")
        assertEquals("Personen är 36 år (programmet kräver att man har fyllt 18).", assess(f).reasons[0].text)
        setLanguage("en")
        assertEquals("The person is 36 (the program requires at least 18).", assess(f).reasons[0].text)
    }

    @Test
    fun `an age above 110 leaves the verdict undetermined`() {
        val typo = Ids.personnummer("1909-06-01") // 20090601-… typed with 19
        val written = listOf(
            facts(identityNumber = typo, municipality = "Stockholm"),
            facts(identityNumber = typo.substring(2, 8) + "+" + typo.substring(8), municipality = "Stockholm"),
            facts(identityNumber = typo.substring(0, 8) + " " + typo.substring(8), municipality = "Stockholm"),
            facts(birthDate = "1909-06-01", municipality = "Stockholm"),
        )
        for (f in written) {
            val v = assess(f)
            assertEquals(Outcome.UNDETERMINED, v.outcome, f.toString())
            assertFalse(v.mayRefer)
            assertFalse(v.provisional)
            assertEquals(listOf("age_implausible", "resident"), codes(v))
            assertEquals(117u, v.ageMin)
            assertEquals(117u, v.ageMax)
            assertEquals("Personen skulle vara 117 år: kontrollera århundradet i numret eller födelseåret.", v.reasons[0].text)
            assertTrue(v.routing.isEmpty())
        }
        setLanguage("en")
        assertEquals(
            "The person would be 117: check the century of the number or the year of birth.",
            assess(written[0]).reasons[0].text,
        )
    }

    @Test
    fun `the same digits with the right century are a minor`() {
        val minor = Ids.personnummer("2009-06-01")
        assertEquals(Ids.personnummer("1909-06-01").substring(2), minor.substring(2))
        val v = assess(facts(identityNumber = minor, municipality = "Stockholm"))
        assertEquals(Outcome.NOT_ELIGIBLE, v.outcome)
        assertEquals(listOf("too_young", "resident"), codes(v))
    }

    @Test
    fun `an implausible age never hides a reason that excludes`() {
        val v = assess(facts(identityNumber = Ids.personnummer("1909-06-01"), municipality = "Gislaved"))
        assertEquals(Outcome.NOT_ELIGIBLE, v.outcome)
        assertEquals(listOf("age_implausible", "not_resident"), codes(v))
        assertTrue(v.routing.isEmpty())
    }

    @ParameterizedTest
    @CsvSource("1916-11-23, age_met", "1915-11-24, age_met", "1915-11-23, age_implausible")
    fun `110 is the last plausible age`(birth: String, ageCode: String) {
        val byNumber = assess(facts(identityNumber = Ids.personnummer(birth), municipality = "0180"))
        val byDate = assess(facts(birthDate = birth, municipality = "0180"))
        assertEquals(listOf(ageCode, "resident"), codes(byNumber))
        assertEquals(codes(byNumber), codes(byDate))
    }

    @Test
    fun `a year before 1840 is an invalid input on the identity number`() {
        val e = assertFailsWith<ApiException.InvalidInput> {
            assess(facts(identityNumber = Ids.personnummer("1812-12-12", serial = "121"), municipality = "0180"))
        }
        assertApiError(e, field = "identity_number", code = "year_out_of_range")
        assertReadable(e.msg)
    }

    companion object {
        @JvmStatic
        @BeforeAll
        fun fixturesPresent() {
            Fixtures.dir
        }
    }
}
