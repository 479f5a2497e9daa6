package se.lotsa.core

import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.io.File
import java.security.SecureRandom
import javax.crypto.Cipher
import javax.crypto.spec.GCMParameterSpec
import javax.crypto.spec.SecretKeySpec
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

/**
 * A KeyVault written in Kotlin — a TEST DOUBLE of what the app builds on Android Keystore: the
 * keys live in this JVM's memory (the real one keeps them non-exportable in hardware). It wraps
 * with AES-256-GCM, a fresh random nonce and the alias as associated data, so altered bytes or
 * another alias are refused. [fail] makes an operation throw, the way a locked phone or a broken
 * keystore does.
 */
class TestVault : KeyVault {
    private val keys = HashMap<String, ByteArray>()
    private val random = SecureRandom()
    private val failing = HashMap<String, () -> Nothing>()
    val calls = mutableListOf<Pair<String, String>>()

    fun fail(operation: String, error: () -> Nothing) {
        failing[operation] = error
    }

    fun recover() = failing.clear()

    private fun enter(operation: String, alias: String) {
        calls += operation to alias
        failing[operation]?.invoke()
    }

    private fun cipher(mode: Int, key: ByteArray, nonce: ByteArray, alias: String): Cipher =
        Cipher.getInstance("AES/GCM/NoPadding").apply {
            init(mode, SecretKeySpec(key, "AES"), GCMParameterSpec(128, nonce))
            updateAAD(alias.toByteArray(Charsets.UTF_8))
        }

    override fun wrap(alias: String, plaintext: ByteArray): ByteArray {
        enter("wrap", alias)
        val key = keys.getOrPut(alias) { ByteArray(32).also(random::nextBytes) }
        val nonce = ByteArray(12).also(random::nextBytes)
        return nonce + cipher(Cipher.ENCRYPT_MODE, key, nonce, alias).doFinal(plaintext)
    }

    override fun unwrap(alias: String, wrapped: ByteArray): ByteArray {
        enter("unwrap", alias)
        val key = keys[alias] ?: throw ApiException.Storage("the key store has no key under this alias")
        if (wrapped.size < 12 + 16) throw ApiException.Storage("the wrapped key was refused")
        return try {
            cipher(Cipher.DECRYPT_MODE, key, wrapped.copyOfRange(0, 12), alias).doFinal(wrapped, 12, wrapped.size - 12)
        } catch (e: javax.crypto.AEADBadTagException) {
            throw ApiException.Storage("the wrapped key was refused")
        }
    }

    override fun destroy(alias: String) {
        enter("destroy", alias)
        keys.remove(alias)?.fill(0)
    }
}

private fun locked(): Nothing = throw ApiException.VaultLocked("the device is locked")

private fun broken(): Nothing = throw ApiException.Storage("the keystore failed")

private fun bug(): Nothing = throw IllegalStateException("a bug in the app's vault")

/** DeviceStore through the generated Kotlin, with the Kotlin [TestVault]. */
class StoreTest : LotsaTest() {
    private val bundle get() = Fixtures.bundle
    private val program = "lots-for-livet"

    @TempDir
    lateinit var tmp: File

    private val db get() = tmp.resolve("device.db").path

    private fun consent(programId: String = program, toldCanWithdraw: Boolean = true) = ConsentInput(
        programId = programId, subjectRef = "ignored: the store uses the draft id", language = "sv",
        scriptVersion = 1u, method = ConsentMethod.Verbal("P-4711"), role = Role.POLICE, officerId = "P-1234",
        unit = "Polisen City, Sergels torg", toldNoEffectOnPoliceMatter = true, toldCanWithdraw = toldCanWithdraw,
        capacity = Capacity.ADEQUATE,
    )

    /** A draft of an adult resident of Stockholm with name and phone. */
    private fun eligibleDraft(store: DeviceStore, identityNumber: String = Ids.ADULT): String {
        val id = store.createDraft(bundle, program)
        store.updateDraft(
            id,
            DraftUpdate(
                name = "Kim Testsson", phone = "070-123 45 67", identityNumber = identityNumber,
                municipality = "Stockholm", provenance = Provenance.DOCUMENT,
            ),
        )
        return id
    }

    private fun counters(store: DeviceStore, programId: String = program) =
        store.stats().filter { it.programId == programId }.associate { it.counter to it.count.toLong() }

    @Test
    fun `the whole path - draft, consent, finalize, withdraw`() {
        val vault = TestVault()
        DeviceStore.open(db, vault).use { store ->
            assertEquals(listOf("wrap" to "lotsa.root.1"), vault.calls)
            val id = eligibleDraft(store)
            val view = store.draft(id)
            assertEquals("Kim Testsson", view.name)
            assertEquals(Ids.ADULT, view.identityNumber)
            assertEquals(Provenance.DOCUMENT, view.provenance)
            assertNull(view.consent)

            val verdict = store.checkDraft(bundle, id)
            assertEquals(Outcome.ELIGIBLE, verdict.outcome)
            assertTrue(verdict.mayRefer)

            val receipt = store.recordConsent(bundle, id, consent())
            assertEquals("lfl-samtycke", receipt.scriptId)
            assertEquals(receipt, store.draft(id).consent)

            val handover = store.finalize(bundle, id)
            assertEquals(id, handover)
            val gone = assertFailsWith<ApiException.InvalidInput> { store.draft(id) }
            assertApiError(gone, field = "draft_id", code = "not_found")

            var status = store.queueStatus()
            assertEquals(1uL, status.counts.pending)
            val oldest = assertNotNull(status.oldestPendingSecs)
            assertTrue(oldest in 0L..119L, "oldest pending $oldest s")
            val item = status.items.single()
            assertEquals(handover, item.id)
            assertEquals(ItemKind.REFERRAL, item.kind)
            assertEquals(ItemState.PENDING, item.state)
            assertEquals(0u, item.attempts)

            assertEquals(WithdrawResult.ErasedBeforeDelivery, store.withdraw(handover))
            status = store.queueStatus()
            assertEquals(0uL, status.counts.pending)
            assertEquals(1uL, status.counts.withdrawn)
            assertNull(status.oldestPendingSecs)
            assertEquals(WithdrawResult.AlreadyWithdrawn, store.withdraw(handover))

            assertEquals(mapOf("offers" to 1L, "consents" to 1L, "withdrawals" to 1L), counters(store))
            val audit = store.verifyAudit()
            assertTrue(audit.intact)
            assertEquals(5uL, audit.entries)
            assertEquals(64, audit.head?.length)
        }
        // Only the first open needed the vault, to wrap the new root key.
        assertEquals(listOf("wrap" to "lotsa.root.1"), vault.calls)
    }

    @Test
    fun `finalize without consent is ConsentMissing and the draft stays`() {
        DeviceStore.open(db, TestVault()).use { store ->
            val id = eligibleDraft(store)
            val e = assertFailsWith<ApiException.ConsentMissing> { store.finalize(bundle, id) }
            assertApiError(e, field = "consent", code = "consent_missing")
            assertReadable(e.msg)
            assertEquals("Kim Testsson", store.draft(id).name)

            val other = assertFailsWith<ApiException.ConsentMissing> { store.recordConsent(bundle, id, consent(programId = "kalmar")) }
            assertApiError(other, field = "program_id", code = "consent_mismatch")
            val incomplete = assertFailsWith<ApiException.ConsentMissing> { store.recordConsent(bundle, id, consent(toldCanWithdraw = false)) }
            assertApiError(incomplete, field = "told_can_withdraw")
        }
    }

    @Test
    fun `an ineligible person cannot be finalized`() {
        DeviceStore.open(db, TestVault()).use { store ->
            val id = eligibleDraft(store, identityNumber = Ids.personnummer("2012-01-01"))
            store.recordConsent(bundle, id, consent())
            assertEquals(Outcome.NOT_ELIGIBLE, store.checkDraft(bundle, id).outcome)
            val e = assertFailsWith<ApiException.NotEligible> { store.finalize(bundle, id) }
            assertApiError(e, code = "not_eligible")
            assertEquals(listOf(id), store.drafts().map { it.draftId })
        }
    }

    @Test
    fun `a refusal is counted and nothing about the person is stored`() {
        DeviceStore.open(db, TestVault()).use { store ->
            store.recordRefusal("kalmar")
            assertEquals(mapOf("offers" to 1L, "refusals" to 1L), counters(store, "kalmar"))
            assertTrue(store.drafts().isEmpty())
            assertTrue(store.queueStatus().items.isEmpty())
            assertEquals(0uL, store.verifyAudit().entries)
        }
    }

    @Test
    fun `update - null keeps, a blank string clears`() {
        DeviceStore.open(db, TestVault()).use { store ->
            val id = store.createDraft(bundle, program)
            store.updateDraft(id, DraftUpdate(name = "Kim", phone = "0701234567", postalCode = "111 22"))
            store.updateDraft(id, DraftUpdate(phone = ""))
            val view = store.draft(id)
            assertEquals("Kim", view.name)
            assertNull(view.phone)
            assertEquals("111 22", view.postalCode)
            assertEquals(Provenance.STATED, view.provenance)
        }
    }

    @Test
    fun `a vault failing on first open is a typed error and nothing is half made`() {
        val vault = TestVault()
        vault.fail("wrap", ::broken)
        assertApiError(assertFailsWith<ApiException.Storage> { DeviceStore.open(db, vault) })
        // A Kotlin exception that is not an ApiException: a typed error too, not a crash.
        vault.fail("wrap", ::bug)
        setLanguage("en")
        val e = assertFailsWith<ApiException.Storage> { DeviceStore.open(db, vault) }
        assertTrue(e.msg.contains("key store failed"), e.msg)
        vault.recover()
        DeviceStore.open(db, vault).use { store -> assertTrue(store.verifyAudit().intact) }
    }

    @Test
    fun `a locked or failing vault loses nothing`() {
        val vault = TestVault()
        val (id, receipt) = DeviceStore.open(db, vault).use { store ->
            val id = eligibleDraft(store)
            id to store.recordConsent(bundle, id, consent())
        }

        vault.fail("unwrap", ::locked)
        val e = assertFailsWith<ApiException.VaultLocked> { DeviceStore.open(db, vault) }
        assertTrue(e.msg.contains("lås upp"), e.msg)
        assertReadable(e.msg)
        vault.fail("unwrap", ::bug)
        assertFailsWith<ApiException.Storage> { DeviceStore.open(db, vault) }
        // Another vault (app reinstalled, key invalidated): the root key does not unwrap.
        assertFailsWith<ApiException.Storage> { DeviceStore.open(db, TestVault()) }

        vault.recover()
        DeviceStore.open(db, vault).use { store ->
            val view = store.draft(id)
            assertEquals("Kim Testsson", view.name)
            assertEquals(receipt, view.consent)
            assertEquals(id, store.finalize(bundle, id))
            assertTrue(store.verifyAudit().intact)
        }
    }

    @Test
    fun `the development file vault`() {
        val keys = tmp.resolve("vault")
        val id = DeviceStore.openWithDevVault(db, keys.path).use { store -> store.createDraft(bundle, program) }
        assertEquals(1, keys.listFiles { f -> f.name.endsWith(".key") }?.size)
        DeviceStore.openWithDevVault(db, keys.path).use { store -> assertEquals(program, store.draft(id).programId) }
    }
}
