package se.lotsa.core

import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.ValueSource
import java.util.Base64
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotEquals
import kotlin.test.assertTrue

/**
 * The signed program bundle made by the real CLI: load and verify, programs and consent scripts,
 * and refusal of tampered, malformed and foreign-signed bundles (ApiException.Configuration).
 */
class BundleTest : LotsaTest() {
    private val bundle get() = Fixtures.bundle

    private fun refused(text: String, key: String = Fixtures.trustKey): ApiException.Configuration =
        assertFailsWith<ApiException.Configuration> { ProgramBundle.load(text, key) }

    /** Replaces the base64 character at [index] by another, which changes the decoded bits. */
    private fun flipBase64Char(text: String, index: Int): String {
        val replacement = if (text[index] != 'A') 'A' else 'B'
        return text.substring(0, index) + replacement + text.substring(index + 1)
    }

    @Test
    fun `the signed example bundle loads`() {
        assertEquals("example-2026-11", bundle.bundleId())
        assertTrue(bundle.isExample())
        assertEquals("2027-12-31T23:59:59+01:00", bundle.expiresAt())
        assertEquals(listOf("lots-for-livet", "snackan-gislaved", "snackan-ggvv", "kalmar"), bundle.programs().map { it.id })
    }

    @Test
    fun `a loaded bundle can be closed and loaded again`() {
        ProgramBundle.load(Fixtures.signedBundle, Fixtures.trustKey).use { assertEquals("example-2026-11", it.bundleId()) }
    }

    @Test
    fun `a program is shown in the app's terms`() {
        val p = bundle.program("lots-for-livet")
        assertEquals("Lots för livet", p.name)
        assertEquals(listOf("0180" to "Stockholm"), p.municipalities.map { it.kommunkod to it.name })
        assertEquals(18u, p.minimumAge)
        assertEquals("Lots för livet, mottagningen (Stockholms stad)", p.clinicName)
        assertEquals("En lots ringer upp inom två vardagar.", p.callbackPromise)
        assertEquals(listOf("sv", "en"), p.scriptLanguages)
        assertTrue(p.provisionalAllowed)
        assertEquals(72u, p.draftLifetimeHours)
        val needs = p.fields.associate { it.field to it.need }
        assertEquals(FieldNeed.REQUIRED, needs["phone"])
        assertEquals(FieldNeed.OPTIONAL, needs["note"])
        assertEquals(FieldNeed.NEVER, needs["personnummer"])
        assertEquals(FieldNeed.REQUIRED, needs["kommunkod"])
        assertEquals(listOf("0662", "0617", "0665", "0683"), bundle.program("snackan-ggvv").municipalities.map { it.kommunkod })
    }

    @Test
    fun `the callback promise follows the language`() {
        setLanguage("en")
        assertEquals("A guide (lots) phones within two working days.", bundle.program("lots-for-livet").callbackPromise)
    }

    @ParameterizedTest
    @ValueSource(strings = ["sv", "en"])
    fun `consent scripts carry the SHA-256 of their text`(language: String) {
        for (p in bundle.programs()) {
            val s = bundle.consentScript(p.id, language)
            assertEquals(language, s.language)
            assertEquals(1u, s.version)
            assertEquals(sha256Hex(s.text), s.sha256, "${p.id}/$language")
        }
        val lfl = bundle.consentScript("lots-for-livet", "sv")
        if (language == "sv") assertEquals("e54a735354003e5f29c7238d2c67f2501cd2b54b3879198344bd9064c7bc2008", lfl.sha256)
    }

    @Test
    fun `a script in an unsupported language is an invalid input`() {
        val e = assertFailsWith<ApiException.InvalidInput> { bundle.consentScript("lots-for-livet", "de") }
        assertApiError(e, field = "language", code = "unsupported_language")
    }

    @Test
    fun `an unknown program is a configuration error`() {
        val e = assertFailsWith<ApiException.Configuration> { bundle.program("no-such-program") }
        assertEquals("unknown_program", e.code)
        assertReadable(e.msg)
    }

    @Test
    fun `one flipped byte in the decoded payload is a bad signature`() {
        val text = Fixtures.signedBundle
        val payload64 = envelopeField(text, "payload")
        val payload = Base64.getDecoder().decode(payload64)
        val needle = "\"minimum_age\":18".toByteArray()
        val at = payload.indexOfSlice(needle)
        assertTrue(at >= 0, "minimum_age not in the payload")
        payload[at + needle.size - 1] = '6'.code.toByte() // a 16-year-old would qualify
        val tampered = text.replace(payload64, Base64.getEncoder().encodeToString(payload))
        assertNotEquals(text, tampered)
        val e = refused(tampered)
        assertApiError(e, code = "bundle_bad_signature")
        assertEquals("bundle_bad_signature", e.code)
        assertReadable(e.msg)
        assertTrue(e.msg.contains("signatur"), e.msg)
    }

    @ParameterizedTest
    @ValueSource(doubles = [0.1, 0.5, 0.9])
    fun `one flipped character of the payload in the file is a bad signature`(position: Double) {
        val text = Fixtures.signedBundle
        val payload64 = envelopeField(text, "payload")
        val i = text.indexOf(payload64) + (payload64.length * position).toInt()
        assertEquals("bundle_bad_signature", refused(flipBase64Char(text, i)).code)
    }

    @Test
    fun `one flipped character of the signature is a bad signature`() {
        val text = Fixtures.signedBundle
        val i = text.indexOf(envelopeField(text, "signature")) + 10
        assertEquals("bundle_bad_signature", refused(flipBase64Char(text, i)).code)
    }

    @Test
    fun `a file that is not JSON is malformed`() {
        val text = Fixtures.signedBundle
        for (mangled in listOf(text.replaceFirst("{", "["), text.substring(0, text.length / 2), "", "not json at all")) {
            val e = refused(mangled)
            assertEquals("bundle_malformed", e.code, mangled.take(40))
            assertReadable(e.msg)
        }
    }

    @Test
    fun `a bundle checked against another key has an unknown signer`() {
        val e = refused(Fixtures.signedBundle, Fixtures.otherTrustKey)
        assertApiError(e, code = "bundle_unknown_signer")
        assertTrue(e.msg.contains(envelopeField(Fixtures.signedBundle, "key_id")), e.msg)
    }

    @Test
    fun `a bundle signed by another key loads only with that key`() {
        assertEquals("example-2026-11", ProgramBundle.load(Fixtures.otherSignedBundle, Fixtures.otherTrustKey).bundleId())
        assertEquals("bundle_unknown_signer", refused(Fixtures.otherSignedBundle).code)
    }

    @Test
    fun `a bundle signed by another key that claims the trusted key id is a bad signature`() {
        val ours = envelopeField(Fixtures.signedBundle, "key_id")
        val theirs = envelopeField(Fixtures.otherSignedBundle, "key_id")
        val relabelled = Fixtures.otherSignedBundle.replace("\"$theirs\"", "\"$ours\"")
        assertEquals("bundle_bad_signature", refused(relabelled).code)
    }

    @ParameterizedTest
    @ValueSource(strings = ["", "not base64!", "AAAA"])
    fun `a trust key that is no Ed25519 key is refused`(key: String) {
        assertEquals("trust_key_invalid", refused(Fixtures.signedBundle, key).code)
    }

    @Test
    fun `the refusal text follows the language`() {
        val text = Fixtures.signedBundle
        val tampered = flipBase64Char(text, text.indexOf(envelopeField(text, "payload")) + 100)
        val sv = refused(tampered)
        setLanguage("en")
        val en = refused(tampered)
        assertEquals(sv.code, en.code)
        assertNotEquals(sv.msg, en.msg)
        assertTrue(en.msg.lowercase().contains("signature"), en.msg)
    }

    companion object {
        /** Fail the whole class at once, with instructions, if the CLI-made fixtures are missing. */
        @JvmStatic
        @BeforeAll
        fun fixturesPresent() {
            Fixtures.dir
        }

        private fun ByteArray.indexOfSlice(needle: ByteArray): Int =
            (0..size - needle.size).firstOrNull { i -> needle.indices.all { this[i + it] == needle[it] } } ?: -1
    }
}
