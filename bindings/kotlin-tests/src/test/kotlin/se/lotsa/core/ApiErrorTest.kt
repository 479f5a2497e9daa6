package se.lotsa.core

import org.junit.jupiter.api.Test
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

/**
 * The public error enum crosses the FFI as a typed Kotlin exception: uniffi turns the Rust
 * `ApiError` into the sealed class `ApiException`, one subclass per variant. Each API test
 * asserts its own errors with [assertApiError]; this test checks the shape of the hierarchy.
 *
 * Kotlin's `message` on a uniffi exception is a field dump, so every variant carries a readable
 * `msg` field (plus `field` / `code` where there is one), which is what the app shows. Not
 * `message`: a variant field of that name clashes with `Throwable.message` and the generated
 * Kotlin does not compile (uniffi 0.32.2).
 */
class ApiErrorTest {
    @Test
    fun `ApiException is a sealed exception hierarchy`() {
        val cls = ApiException::class
        assertTrue(Exception::class.java.isAssignableFrom(cls.java), "$cls is not an Exception")
        assertTrue(cls.isSealed, "$cls is not sealed")
        assertTrue(cls.sealedSubclasses.isNotEmpty(), "$cls has no variants")
    }

    @Test
    fun `a typed error crosses the FFI as a Kotlin exception`() {
        // An unsupported language is refused with InvalidInput; the state is left as it was.
        val e = assertFailsWith<ApiException.InvalidInput> { setLanguage("xx") }
        assertApiError(e, field = "language", code = "unsupported_language")
        assertTrue(e.msg.contains("sv"), e.msg)
    }

    @Test
    fun `an error a vault throws is written as before and still has a stable code`() {
        // A KeyVault in Kotlin throws these with its message alone; the code comes with the variant.
        val cases = mapOf(
            ApiException.VaultLocked("locked") to "vault_unavailable",
            ApiException.Storage("keystore failed") to "storage",
            ApiException.VaultFailed("key invalidated") to "vault_failed",
        )
        for ((e, code) in cases) assertApiError(e, code = null).also { assertTrue(e.errorCode() == code, "$e") }
    }
}

/**
 * Checks a caught uniffi exception: readable `msg` property, and `field` / `code` when given.
 * Reads the properties by reflection so it serves every variant.
 *
 * Usage: `val e = assertFailsWith<ApiException.InvalidInput> { … }; assertApiError(e, field = "phone", code = "…")`
 */
fun assertApiError(e: Throwable, field: String? = null, code: String? = null) {
    fun prop(name: String): Any? =
        e.javaClass.methods.firstOrNull { it.name == "get" + name.replaceFirstChar(Char::uppercase) && it.parameterCount == 0 }
            ?.invoke(e)
    val msg = prop("msg")
    assertTrue(msg is String && msg.isNotBlank(), "no readable msg on $e")
    if (field != null) assertTrue(prop("field") == field, "field ${prop("field")} != $field on $e")
    if (code != null) assertTrue(prop("code") == code, "code ${prop("code")} != $code on $e")
    // Every variant has a stable code; where it carries one as a field, the two agree.
    val stable = (e as ApiException).errorCode()
    assertTrue(stable.isNotBlank(), "no stable code on $e")
    if (code != null) assertTrue(stable == code, "errorCode() $stable != $code on $e")
}
