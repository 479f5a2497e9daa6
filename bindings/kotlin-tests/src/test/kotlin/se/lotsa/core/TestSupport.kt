package se.lotsa.core

import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.BeforeEach
import java.io.File
import java.security.MessageDigest
import kotlin.test.assertTrue

/** The Stockholm calendar date every test decides on, so ages never drift with the clock. */
const val ON = "2026-11-23"

/**
 * Valid Swedish identity numbers made by the Luhn rule (the twin of `helpers.personnummer` in the
 * Python suite): never real people's numbers.
 */
object Ids {
    /** The check digit of `YYMMDDNNN` (weights 2, 1, 2, … from the left). */
    fun luhnDigit(nine: String): Char {
        require(nine.length == 9 && nine.all(Char::isDigit)) { nine }
        var sum = 0
        nine.forEachIndexed { i, c ->
            val v = (c - '0') * (if (i % 2 == 0) 2 else 1)
            sum += v / 10 + v % 10
        }
        return '0' + (10 - sum % 10) % 10
    }

    /**
     * A valid 12-digit `YYYYMMDDNNNC` for `YYYY-MM-DD` (or raw `YYYYMMDD` digits, to build a
     * month 00 / day 60 samordningsnummer or an impossible date with a valid check digit).
     * With [samordningsnummer] the day is raised by 60.
     */
    fun personnummer(birth: String, serial: String = "123", samordningsnummer: Boolean = false): String {
        var digits = birth.replace("-", "")
        require(digits.length == 8 && digits.all(Char::isDigit)) { birth }
        if (samordningsnummer) digits = digits.substring(0, 6) + "%02d".format(digits.substring(6).toInt() + 60)
        return digits + serial + luhnDigit(digits.substring(2) + serial)
    }

    /** The same number with its last digit changed: always an `invalid_checksum`. */
    fun withWrongCheckDigit(number: String): String =
        number.dropLast(1) + ('0' + ((number.last() - '0') + 1) % 10)

    /** 36 years old on [ON]. */
    val ADULT = personnummer("1990-04-12")
}

/**
 * The signed program bundle and trust keys made by the real CLI (`lotsa program keygen`,
 * `lotsa program sign schemas/examples/programs.example.json`). bindings/test.sh writes them to
 * target/bindings/fixtures and passes the folder as `-Dlotsa.fixtures` and `LOTSA_FIXTURES`;
 * without either, the folder beside the host library's profile dir is used. Missing files fail
 * the tests that need them, with instructions; nothing is skipped.
 */
object Fixtures {
    val dir: File by lazy {
        val configured = System.getProperty("lotsa.fixtures")?.takeIf { it.isNotBlank() }
            ?: System.getenv("LOTSA_FIXTURES")?.takeIf { it.isNotBlank() }
        val dir = configured?.let(::File)
            ?: System.getProperty("jna.library.path")?.let { File(it).absoluteFile.parentFile.resolve("bindings/fixtures") }
            ?: File("../../target/bindings/fixtures")
        val missing = listOf("bundle.json", "admin.pub", "other-bundle.json", "other.pub", "pnr-required-bundle.json")
            .filterNot { dir.resolve(it).isFile }
        check(missing.isEmpty()) {
            "binding test fixtures missing in $dir: $missing. Run bindings/test.sh (it builds the lotsa CLI " +
                "and signs schemas/examples/programs.example.json into target/bindings/fixtures), or pass " +
                "-Dlotsa.fixtures=/folder (or LOTSA_FIXTURES) with bundle.json, admin.pub, other-bundle.json, other.pub, " +
                "pnr-required-bundle.json."
        }
        dir
    }

    private fun read(name: String) = dir.resolve(name).readText(Charsets.UTF_8)

    /** bundle.json: the example program set signed with admin.key. */
    val signedBundle: String by lazy { read("bundle.json") }
    /** admin.pub: the administrator key the app trusts (base64). */
    val trustKey: String by lazy { read("admin.pub").trim() }
    /** other-bundle.json: the same set signed with other.key. */
    val otherSignedBundle: String by lazy { read("other-bundle.json") }
    /** other.pub: a key that did not sign bundle.json. */
    val otherTrustKey: String by lazy { read("other.pub").trim() }

    /** The verified example bundle, loaded once for the whole run. */
    val bundle: ProgramBundle by lazy { ProgramBundle.load(signedBundle, trustKey) }

    /** pnr-required-bundle.json: the example set with Kalmar's personnummer required, signed with admin.key. */
    val pnrRequiredBundle: ProgramBundle by lazy { ProgramBundle.load(read("pnr-required-bundle.json"), trustKey) }
}

/** A string field of the signed envelope (`payload`, `signature`, `key_id`). */
fun envelopeField(text: String, name: String): String =
    Regex("\"$name\"\\s*:\\s*\"([^\"]*)\"").find(text)?.groupValues?.get(1)
        ?: error("no \"$name\" in the bundle")

fun sha256Hex(text: String): String =
    MessageDigest.getInstance("SHA-256").digest(text.toByteArray(Charsets.UTF_8)).joinToString("") { "%02x".format(it) }

fun codes(v: Verdict): List<String> = v.reasons.map { it.code }

fun routeIds(v: Verdict): List<String> = v.routing.map { it.programId }

/** Facts with a document-backed residency unless told otherwise. */
fun facts(
    identityNumber: String? = null,
    birthDate: String? = null,
    municipality: String? = null,
    postalCode: String? = null,
    provenance: Provenance = Provenance.DOCUMENT,
) = PersonFacts(
    identityNumber = identityNumber,
    birthDate = birthDate,
    municipality = municipality,
    postalCode = postalCode,
    provenance = provenance,
)

/**
 * Base of the API tests: the language (`setLanguage`) is process-wide state in the library, so
 * every test starts and ends in Swedish, the default.
 */
abstract class LotsaTest {
    @BeforeEach
    fun swedishBefore() = setLanguage("sv")

    @AfterEach
    fun swedishAfter() = setLanguage("sv")

    /** A readable message: a sentence, not a code or a field dump. */
    fun assertReadable(msg: String) {
        assertTrue(msg.isNotBlank() && msg.length > 15 && msg.first().isLetter(), "not a readable message: '$msg'")
        assertTrue(!msg.contains("field=") && !msg.contains("code="), "message is a field dump: '$msg'")
    }
}
