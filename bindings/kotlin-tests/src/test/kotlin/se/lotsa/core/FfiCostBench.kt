package se.lotsa.core

import org.junit.jupiter.api.Test
import java.io.File
import kotlin.test.assertEquals

/**
 * The cost of one FFI call from Kotlin on the JVM (JNA), for the table in bindings/README.md.
 *
 * Not a test: it asserts no times and its class name matches none of Surefire's default
 * patterns (`*Test`, `Test*`, `*Tests`, `*TestCase`), so `mvn test` never runs it.
 * bindings/bench/ffi_cost.sh runs it against the release library:
 *
 *     mvn -B test -Dtest=FfiCostBench -Dlotsa.lib.dir=…/target/release \
 *         -Dlotsa.fixtures=… -Dlotsa.bench.out=…/kotlin.json
 *
 * The same calls on the same inputs as bindings/bench/ffi_cost.py and rust_cost.rs. Each call is
 * first warmed up for about a second (so the JIT has compiled the generated bindings), then
 * the iterations are calibrated so one round takes about 0.15 s, and 7 rounds are timed; the
 * median round (ns per call) is reported, with the fastest.
 */
class FfiCostBench {
    private data class Result(val median: Double, val min: Double, val iterations: Long)

    private fun time(f: () -> Any?): Result {
        var sink = 0
        val warmUntil = System.nanoTime() + 1_000_000_000L
        while (System.nanoTime() < warmUntil) sink += f().hashCode() and 1
        var n = 1L
        while (true) {
            val t = System.nanoTime()
            for (i in 0 until n) sink += f().hashCode() and 1
            val e = System.nanoTime() - t
            if (e >= ROUND_NS / 4) {
                n = maxOf(1L, (n * ROUND_NS.toDouble() / e).toLong())
                break
            }
            n *= 4
        }
        val rounds = (0 until ROUNDS).map {
            val t = System.nanoTime()
            for (i in 0 until n) sink += f().hashCode() and 1
            (System.nanoTime() - t).toDouble() / n
        }.sorted()
        if (sink == Int.MIN_VALUE) println(sink) // keeps the results alive
        return Result(rounds[ROUNDS / 2], rounds[0], n)
    }

    @Test
    fun `ffi call cost`() {
        val signed = Fixtures.signedBundle
        val trust = Fixtures.trustKey
        val bundle = Fixtures.bundle
        setLanguage("sv")
        val stockholm = facts(identityNumber = ADULT, municipality = "Stockholm")
        val gislaved = facts(identityNumber = ADULT, municipality = "Gislaved")
        assertEquals(Outcome.ELIGIBLE, bundle.assess("lots-for-livet", stockholm, ON).outcome)
        assertEquals(2, bundle.assess("lots-for-livet", gislaved, ON).routing.size)
        assertEquals(36u, checkIdentityNumber(ADULT, ON).age)

        fun consent() = ConsentInput(
            programId = "lots-for-livet", subjectRef = "referral-0001", language = "sv", scriptVersion = 1u,
            method = ConsentMethod.Verbal("P-4711"), role = Role.POLICE, officerId = "P-1234",
            unit = "Polisen City, Sergels torg", toldNoEffectOnPoliceMatter = true, toldCanWithdraw = true,
            capacity = Capacity.ADEQUATE,
        )

        val cases = linkedMapOf<String, () -> Any?>(
            "core_version" to { coreVersion() },
            "check_identity_number" to { checkIdentityNumber(ADULT, ON) },
            "find_municipality" to { findMunicipality("Gislaved") },
            "municipalities_for_postal_code" to { municipalitiesForPostalCode("111 22") },
            "normalize_phone" to { normalizePhone("070-123 45 67") },
            "validate_contact" to { validateContact(ContactDetails(name = "Anna", phone = "070-123 45 67", bestTime = "efter 17")) },
            "all_municipalities" to { allMunicipalities() },
            // Closed at once, as an app replacing its bundle would: the Rust object is freed.
            "ProgramBundle.load" to { ProgramBundle.load(signed, trust).use { it.hashCode() } },
            "programs" to { bundle.programs() },
            "consent_script" to { bundle.consentScript("lots-for-livet", "sv") },
            "assess (eligible)" to { bundle.assess("lots-for-livet", stockholm, ON) },
            "assess (routed)" to { bundle.assess("lots-for-livet", gislaved, ON) },
            "validate_consent" to { bundle.validateConsent(consent()) },
        )

        val json = StringBuilder()
        json.append("{\n  \"language\": \"kotlin\",\n")
        json.append("  \"runtime\": \"Kotlin ${KotlinVersion.CURRENT} on ${System.getProperty("java.vm.name")} ${System.getProperty("java.version")}, JNA ${com.sun.jna.Native.VERSION}\",\n")
        json.append("  \"library\": \"${System.getProperty("uniffi.component.lotsa_ffi.libraryOverride")}\",\n")
        json.append("  \"results\": {\n")
        cases.entries.forEachIndexed { i, (name, f) ->
            val r = time(f)
            println("%-32s %12.0f ns/call (min %.0f, %d calls/round)".format(name, r.median, r.min, r.iterations))
            json.append("    \"$name\": {\"ns_median\": %.1f, \"ns_min\": %.1f, \"iterations\": %d}".format(java.util.Locale.ROOT, r.median, r.min, r.iterations))
            json.append(if (i + 1 < cases.size) ",\n" else "\n")
        }
        json.append("  }\n}\n")
        val out = System.getProperty("lotsa.bench.out")?.takeIf { it.isNotBlank() }
        if (out != null) File(out).writeText(json.toString())
        else println(json)
    }

    private companion object {
        const val ROUNDS = 7
        const val ROUND_NS = 150_000_000L
        val ADULT = Ids.ADULT
    }
}
