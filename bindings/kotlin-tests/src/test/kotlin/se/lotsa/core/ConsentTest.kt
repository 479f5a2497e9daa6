package se.lotsa.core

import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.EnumSource
import org.junit.jupiter.params.provider.ValueSource
import java.time.OffsetDateTime
import java.util.UUID
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotEquals
import kotlin.test.assertTrue

/** ProgramBundle.validateConsent: a consent record citing the program's current script. */
class ConsentTest : LotsaTest() {
    private val bundle get() = Fixtures.bundle

    private fun consent(
        programId: String = "lots-for-livet",
        subjectRef: String = "referral-0001",
        language: String = "sv",
        scriptVersion: UInt = 1u,
        method: ConsentMethod = ConsentMethod.Verbal("P-4711"),
        role: Role = Role.POLICE,
        officerId: String = "P-1234",
        unit: String = "Polisen City, Sergels torg",
        toldNoEffectOnPoliceMatter: Boolean = true,
        toldCanWithdraw: Boolean = true,
        capacity: Capacity = Capacity.ADEQUATE,
        sharePersonnummer: Boolean? = null,
    ) = if (sharePersonnummer == null) {
        // The field left out, as an app that never asks would: its default applies.
        ConsentInput(
            programId = programId, subjectRef = subjectRef, language = language, scriptVersion = scriptVersion,
            method = method, role = role, officerId = officerId, unit = unit,
            toldNoEffectOnPoliceMatter = toldNoEffectOnPoliceMatter, toldCanWithdraw = toldCanWithdraw, capacity = capacity,
        )
    } else {
        ConsentInput(
            programId = programId, subjectRef = subjectRef, language = language, scriptVersion = scriptVersion,
            method = method, role = role, officerId = officerId, unit = unit,
            toldNoEffectOnPoliceMatter = toldNoEffectOnPoliceMatter, toldCanWithdraw = toldCanWithdraw, capacity = capacity,
            sharePersonnummer = sharePersonnummer,
        )
    }

    private fun missing(input: ConsentInput) = assertFailsWith<ApiException.ConsentMissing> { bundle.validateConsent(input) }

    @Test
    fun `a complete consent gives a receipt citing the current script`() {
        val script = bundle.consentScript("lots-for-livet", "sv")
        val r = bundle.validateConsent(consent())
        assertEquals("lfl-samtycke", r.scriptId)
        assertEquals(script.version, r.scriptVersion)
        assertEquals(script.sha256, r.scriptSha256)
        assertEquals(sha256Hex(script.text), r.scriptSha256)
        assertEquals("Lots för livet, mottagningen (Stockholms stad)", r.recipient)
        assertEquals(listOf("name", "phone", "language", "best_time", "note", "kommunkod"), r.dataItems)
        UUID.fromString(r.consentId)
        val given = OffsetDateTime.parse(r.givenAt)
        assertTrue(given.offset.totalSeconds in listOf(3600, 7200), r.givenAt) // Stockholm
        assertNotEquals(r.consentId, bundle.validateConsent(consent()).consentId)
    }

    @Test
    fun `a consent read in English cites the English script`() {
        val r = bundle.validateConsent(consent(language = "en"))
        assertEquals(bundle.consentScript("lots-for-livet", "en").sha256, r.scriptSha256)
    }

    @Test
    fun `a signature on screen and a lots guide are accepted`() {
        val r = bundle.validateConsent(
            consent(programId = "snackan-gislaved", method = ConsentMethod.SignatureOnScreen("ab".repeat(32)), role = Role.LOTS),
        )
        assertEquals("snackan-samtycke", r.scriptId)
        assertEquals("Öppenvårdsmottagningen Snäckan", r.recipient)
    }

    @Test
    fun `a missing disclosure about the police matter names the field`() {
        val e = missing(consent(toldNoEffectOnPoliceMatter = false))
        assertEquals("told_no_effect_on_police_matter", e.field)
        assertEquals("consent_disclosure_missing", e.code)
        assertReadable(e.msg)
        assertTrue(e.msg.contains("polisärendet"), e.msg)
    }

    @Test
    fun `a missing disclosure about withdrawal names the field`() {
        assertApiError(missing(consent(toldCanWithdraw = false)), field = "told_can_withdraw", code = "consent_disclosure_missing")
    }

    @ParameterizedTest
    @EnumSource(value = Capacity::class, names = ["DOUBTFUL", "LACKING"])
    fun `doubtful or lacking capacity is refused`(capacity: Capacity) {
        val e = missing(consent(capacity = capacity))
        assertEquals("capacity", e.field)
        assertEquals("consent_capacity_not_adequate", e.code)
        assertReadable(e.msg)
    }

    @ParameterizedTest
    @ValueSource(ints = [0, 2, 99])
    fun `a script version that is not current is refused`(version: Int) {
        val e = missing(consent(scriptVersion = version.toUInt()))
        assertEquals("script", e.field)
        assertEquals("consent_script_not_current", e.code)
        assertReadable(e.msg)
    }

    @Test
    fun `an incomplete record names the field`() {
        val cases = listOf(
            consent(officerId = " ") to "recorded_by.officer_id",
            consent(unit = "") to "recorded_by.unit",
            consent(subjectRef = "") to "subject_ref",
            consent(method = ConsentMethod.Verbal("")) to "method.witness",
            consent(method = ConsentMethod.SignatureOnScreen("not-a-hash")) to "method.signature_sha256",
        )
        for ((input, field) in cases) assertApiError(missing(input), field = field, code = "consent_incomplete")
    }

    @Test
    fun `the consent text follows the language`() {
        setLanguage("en")
        val e = missing(consent(toldNoEffectOnPoliceMatter = false))
        assertTrue(e.msg.lowercase().contains("police"), e.msg)
    }

    @Test
    fun `an unsupported language or program is refused`() {
        val lang = assertFailsWith<ApiException.InvalidInput> { bundle.validateConsent(consent(language = "fi")) }
        assertApiError(lang, field = "language", code = "unsupported_language")
        val program = assertFailsWith<ApiException.Configuration> { bundle.validateConsent(consent(programId = "nope")) }
        assertEquals("unknown_program", program.code)
    }

    private val withoutPersonnummer = listOf("name", "phone", "language", "best_time", "note", "kommunkod")

    @Test
    fun `an optional personnummer is covered only when the person agrees`() {
        // Kalmar accepts the personnummer as optional: by default the consent leaves it out ...
        val default = bundle.validateConsent(consent(programId = "kalmar"))
        assertEquals("Kalmar kommun, öppenvården", default.recipient)
        assertEquals(withoutPersonnummer, default.dataItems)
        assertEquals(withoutPersonnummer, bundle.validateConsent(consent(programId = "kalmar", sharePersonnummer = false)).dataItems)
        // ... and covers it when the person agrees to share it too.
        val shared = bundle.validateConsent(consent(programId = "kalmar", sharePersonnummer = true))
        assertEquals(withoutPersonnummer + "personnummer", shared.dataItems)
    }

    @Test
    fun `a personnummer the program never takes is never covered`() {
        // lots-for-livet never takes it: agreeing to share it changes nothing (and is no error).
        for (share in listOf(null, false, true)) {
            assertEquals(withoutPersonnummer, bundle.validateConsent(consent(sharePersonnummer = share)).dataItems, "share=$share")
        }
    }

    @Test
    fun `a required personnummer is always covered`() {
        // The same program set with Kalmar's personnummer required (fixture pnr-required-bundle.json).
        val required = Fixtures.pnrRequiredBundle
        assertEquals(FieldNeed.REQUIRED, required.program("kalmar").fields.single { it.field == "personnummer" }.need)
        for (share in listOf(null, false, true)) {
            val items = required.validateConsent(consent(programId = "kalmar", sharePersonnummer = share)).dataItems
            assertEquals(1, items.count { it == "personnummer" }, "share=$share: $items")
        }
    }

    companion object {
        @JvmStatic
        @BeforeAll
        fun fixturesPresent() {
            Fixtures.dir
        }
    }
}
