package se.lotsa.core

import org.junit.jupiter.api.Test
import kotlin.test.assertTrue

/**
 * The smallest round trip: Kotlin -> JNA -> liblotsa_ffi.so -> a Rust String back.
 * If this fails, the plumbing (library path, JNA, generated code) is broken,
 * not the domain logic.
 */
class CoreVersionTest {
    @Test
    fun `core version is a semver string from the Rust crate`() {
        val version = coreVersion()
        assertTrue(
            Regex("""\d+\.\d+\.\d+([-+].*)?""").matches(version),
            "coreVersion() returned '$version'",
        )
    }

    @Test
    fun `the library is loaded from the host build, not from somewhere else`() {
        val override = System.getProperty("uniffi.component.lotsa_ffi.libraryOverride")
        assertTrue(override != null && java.io.File(override).isFile, "libraryOverride=$override")
    }
}
