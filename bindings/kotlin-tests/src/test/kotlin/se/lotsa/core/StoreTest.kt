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

    /** A locked screen: every alias but this one ("after first unlock") is `VaultLocked`. */
    var lockedExcept: String? = null

    /** The platform lost the key under [alias] for good. */
    fun forget(alias: String) {
        keys.remove(alias)?.fill(0)
    }

    fun fail(operation: String, error: () -> Nothing) {
        failing[operation] = error
    }

    fun recover() = failing.clear()

    private fun enter(operation: String, alias: String) {
        calls += operation to alias
        failing[operation]?.invoke()
        lockedExcept?.let { if (alias != it) locked() }
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
        // The platform says so explicitly: the key is gone for good (app reinstalled).
        val key = keys[alias] ?: throw ApiException.VaultKeyGone("the key store has no key under this alias")
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

    private fun consent(
        programId: String = program,
        toldCanWithdraw: Boolean = true,
        unit: String = "Polisen City, Sergels torg",
        sharePersonnummer: Boolean = false,
    ) = ConsentInput(
        programId = programId, subjectRef = "ignored: the store uses the draft id", language = "sv",
        scriptVersion = 1u, method = ConsentMethod.Verbal("P-4711"), role = Role.POLICE, officerId = "P-1234",
        unit = unit, toldNoEffectOnPoliceMatter = true, toldCanWithdraw = toldCanWithdraw,
        capacity = Capacity.ADEQUATE, sharePersonnummer = sharePersonnummer,
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

    /** A draft that is already a sealed handover in the outbox. */
    private fun sealedHandover(store: DeviceStore): String {
        val id = eligibleDraft(store)
        store.recordConsent(bundle, id, consent())
        return store.finalize(bundle, id)
    }

    private fun counters(store: DeviceStore, programId: String = program) =
        store.stats().filter { it.programId == programId }.associate { it.counter to it.count.toLong() }

    private val root = "lotsa.root.1"

    @Test
    fun `the whole path - draft, consent, finalize, withdraw`() {
        val vault = TestVault()
        DeviceStore.open(db, vault).use { store ->
            // Opening asks the vault nothing: the root key is made with the first draft.
            assertEquals(emptyList(), vault.calls)
            val id = eligibleDraft(store)
            assertEquals(listOf("wrap" to root), vault.calls)
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
        // Only the first draft needed the vault, to wrap the new root key.
        assertEquals(listOf("wrap" to root), vault.calls)
    }

    @Test
    fun `reopening unwraps the root key once, at the first draft call`() {
        val vault = TestVault()
        val (id, receipt) = DeviceStore.open(db, vault).use { store ->
            val id = eligibleDraft(store)
            id to store.recordConsent(bundle, id, consent())
        }
        vault.calls.clear()
        DeviceStore.open(db, vault).use { store ->
            assertEquals(emptyList(), vault.calls)
            assertEquals(receipt, store.draft(id).consent)
            assertEquals(listOf("unwrap" to root), vault.calls)
            val second = store.createDraft(bundle, program)
            assertEquals(id, store.finalize(bundle, id))
            assertEquals(program, store.draft(second).programId)
            // Kept while the store is open; the existing root key is reused, not replaced.
            assertEquals(listOf("unwrap" to root), vault.calls)
        }
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
        val vault = TestVault()
        DeviceStore.open(db, vault).use { store ->
            store.recordRefusal(bundle, "kalmar")
            assertEquals(mapOf("offers" to 1L, "refusals" to 1L), counters(store, "kalmar"))
            assertTrue(store.drafts().isEmpty())
            assertTrue(store.queueStatus().items.isEmpty())
            assertEquals(0uL, store.verifyAudit().entries)
            // A program not in the bundle is refused: a typo must not invent a program in the statistics.
            val e = assertFailsWith<ApiException.Configuration> { store.recordRefusal(bundle, "kalmr") }
            assertApiError(e, code = "unknown_program")
            assertEquals(listOf("kalmar"), store.stats().map { it.programId }.distinct())
        }
        assertEquals(emptyList(), vault.calls)
    }

    @Test
    fun `refusing a started draft erases it and counts one refusal`() {
        DeviceStore.open(db, TestVault()).use { store ->
            val id = eligibleDraft(store)
            val kept = store.createDraft(bundle, program)
            val entries = store.verifyAudit().entries
            store.refuseDraft(id)
            assertEquals(listOf(kept), store.drafts().map { it.draftId })
            assertApiError(assertFailsWith<ApiException.InvalidInput> { store.draft(id) }, field = "draft_id", code = "not_found")
            // The offer was counted when the draft was started: no second one.
            assertEquals(mapOf("offers" to 2L, "refusals" to 1L), counters(store))
            assertEquals(entries + 1uL, store.verifyAudit().entries)
            assertTrue(store.verifyAudit().intact)
            val again = assertFailsWith<ApiException.InvalidInput> { store.refuseDraft(id) }
            assertApiError(again, field = "draft_id", code = "not_found")
            assertEquals(mapOf("offers" to 2L, "refusals" to 1L), counters(store))
        }
    }

    @Test
    fun `closing an ineligible draft erases it and counts the reasons that excluded the person`() {
        DeviceStore.open(db, TestVault()).use { store ->
            val young = eligibleDraft(store, identityNumber = Ids.personnummer("2012-01-01"))
            val expected = store.checkDraft(bundle, young)
            val verdict = store.closeIneligible(bundle, young)
            assertEquals(expected, verdict)
            assertEquals(Outcome.NOT_ELIGIBLE, verdict.outcome)
            assertTrue("too_young" in codes(verdict))
            assertTrue(store.drafts().isEmpty())
            assertApiError(assertFailsWith<ApiException.InvalidInput> { store.draft(young) }, field = "draft_id", code = "not_found")
            assertEquals(mapOf("offers" to 1L, "ineligible:too_young" to 1L), counters(store))

            // Only the reasons that excluded the person are counted: a missing residence is no verdict.
            val noResidence = store.createDraft(bundle, program)
            store.updateDraft(noResidence, DraftUpdate(birthDate = "2012-01-01"))
            val open = store.closeIneligible(bundle, noResidence)
            assertTrue(codes(open).containsAll(listOf("too_young", "residency_missing")), codes(open).toString())
            assertEquals(mapOf("offers" to 2L, "ineligible:too_young" to 2L), counters(store))
            // An empty draft closed: no verdict was reached, so only the offer is counted.
            val empty = store.createDraft(bundle, program)
            assertEquals(Outcome.UNDETERMINED, store.closeIneligible(bundle, empty).outcome)
            assertEquals(mapOf("offers" to 3L, "ineligible:too_young" to 2L), counters(store))
            assertTrue(store.drafts().isEmpty())
            assertTrue(store.verifyAudit().intact)
            val gone = assertFailsWith<ApiException.InvalidInput> { store.closeIneligible(bundle, young) }
            assertApiError(gone, field = "draft_id", code = "not_found")
        }
    }

    @Test
    fun `withdrawing a draft counts a withdrawal only when consent was given`() {
        DeviceStore.open(db, TestVault()).use { store ->
            val bare = eligibleDraft(store)
            val consented = eligibleDraft(store)
            store.recordConsent(bundle, consented, consent())
            assertEquals(WithdrawResult.DraftErased, store.withdraw(bare))
            assertEquals(mapOf("offers" to 2L, "consents" to 1L), counters(store))
            assertEquals(WithdrawResult.DraftErased, store.withdraw(consented))
            assertEquals(mapOf("offers" to 2L, "consents" to 1L, "withdrawals" to 1L), counters(store))
            assertTrue(store.drafts().isEmpty())
            // Withdrawing again answers as it does for an outbox item: already withdrawn.
            assertEquals(WithdrawResult.AlreadyWithdrawn, store.withdraw(bare))
            val e = assertFailsWith<ApiException.InvalidInput> { store.withdraw("00000000-0000-4000-8000-000000000000") }
            assertApiError(e, field = "handover_id", code = "not_found")
        }
    }

    @Test
    fun `a new identity number or birth date clears the consent, contact details keep it`() {
        DeviceStore.open(db, TestVault()).use { store ->
            val id = eligibleDraft(store)
            val receipt = store.recordConsent(bundle, id, consent())
            val entries = store.verifyAudit().entries
            store.updateDraft(id, DraftUpdate(name = "Kim T.", phone = "070-123 45 68", note = "ringer efter 14"))
            store.updateDraft(id, DraftUpdate(identityNumber = Ids.ADULT)) // the same number: no change
            assertEquals(receipt, store.draft(id).consent)
            assertEquals(entries + 2uL, store.verifyAudit().entries) // two updates, nothing cleared

            val other = Ids.personnummer("1985-07-30", "417")
            store.updateDraft(id, DraftUpdate(identityNumber = other))
            val view = store.draft(id)
            assertNull(view.consent)
            assertEquals(other, view.identityNumber)
            assertEquals("Kim T.", view.name)
            assertEquals(entries + 4uL, store.verifyAudit().entries) // the update and consent_cleared
            val e = assertFailsWith<ApiException.ConsentMissing> { store.finalize(bundle, id) }
            assertApiError(e, field = "consent", code = "consent_missing")

            store.recordConsent(bundle, id, consent())
            store.updateDraft(id, DraftUpdate(birthDate = "1985-07-30"))
            assertNull(store.draft(id).consent)

            store.recordConsent(bundle, id, consent())
            assertEquals(id, store.finalize(bundle, id))
            assertTrue(store.verifyAudit().intact)
        }
    }

    @Test
    fun `a Kalmar consent covers the optional personnummer only when the person agrees`() {
        DeviceStore.open(db, TestVault()).use { store ->
            val plain = store.createDraft(bundle, "kalmar")
            val shared = store.createDraft(bundle, "kalmar")
            val r1 = store.recordConsent(bundle, plain, consent(programId = "kalmar", unit = "Polisen Kalmar"))
            assertTrue("personnummer" !in r1.dataItems, r1.dataItems.toString())
            assertTrue(r1.dataItems.containsAll(listOf("name", "phone", "kommunkod")))
            assertEquals(r1, store.draft(plain).consent)
            val r2 = store.recordConsent(
                bundle, shared, consent(programId = "kalmar", unit = "Polisen Kalmar", sharePersonnummer = true),
            )
            assertTrue("personnummer" in r2.dataItems, r2.dataItems.toString())
            assertEquals(r2, store.draft(shared).consent)
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
    fun `a vault failing to wrap fails the first draft, not the open, and nothing is half made`() {
        val vault = TestVault()
        vault.fail("wrap", ::broken)
        DeviceStore.open(db, vault).use { store ->
            assertEquals(emptyList(), vault.calls)
            assertTrue(store.verifyAudit().intact)
            assertApiError(assertFailsWith<ApiException.VaultFailed> { store.createDraft(bundle, program) })
            // A Kotlin exception that is not an ApiException: a typed error too, not a crash.
            vault.fail("wrap", ::bug)
            setLanguage("en")
            val e = assertFailsWith<ApiException.VaultFailed> { store.createDraft(bundle, program) }
            assertTrue(e.msg.contains("key store failed"), e.msg)
            // Locked: a temporary error.
            vault.fail("wrap", ::locked)
            val locked = assertFailsWith<ApiException.VaultLocked> { store.createDraft(bundle, program) }
            assertTrue(locked.msg.contains("unlocked"), locked.msg)
            assertEquals(List(3) { "wrap" to root }, vault.calls)
            // No draft, no offer counted, no audit entry.
            assertTrue(store.drafts().isEmpty())
            assertTrue(store.stats().isEmpty())
            assertEquals(0uL, store.verifyAudit().entries)

            vault.recover()
            val id = store.createDraft(bundle, program)
            assertEquals(program, store.draft(id).programId)
            assertEquals(mapOf("offers" to 1L), counters(store))
        }
    }

    @Test
    fun `a locked vault opens the store, keeps the outbox working and loses nothing`() {
        val vault = TestVault()
        val (id, receipt, sealed) = DeviceStore.open(db, vault).use { store ->
            val id = eligibleDraft(store)
            Triple(id, store.recordConsent(bundle, id, consent()), sealedHandover(store))
        }
        vault.fail("unwrap", ::locked)
        vault.calls.clear()
        DeviceStore.open(db, vault).use { store ->
            // The outbox, statistics and audit log need no key.
            assertEquals(listOf(sealed), store.queueStatus().items.map { it.id })
            val entries = store.verifyAudit().entries
            assertTrue(store.verifyAudit().intact)
            store.recordRefusal(bundle, "kalmar")
            assertEquals(mapOf("offers" to 1L, "refusals" to 1L), counters(store, "kalmar"))
            assertEquals(listOf(id), store.drafts().map { it.draftId })
            assertEquals(emptyList(), vault.calls)

            // Every call that opens or makes a draft waits for the unlock.
            val draftCalls = listOf<() -> Unit>(
                { store.draft(id) },
                { store.updateDraft(id, DraftUpdate(name = "Someone Else")) },
                { store.checkDraft(bundle, id) },
                { store.recordConsent(bundle, id, consent()) },
                { store.finalize(bundle, id) },
                { store.closeIneligible(bundle, id) },
                { store.createDraft(bundle, program) },
            )
            for (call in draftCalls) {
                val e = assertFailsWith<ApiException.VaultLocked> { call() }
                assertTrue(e.msg.contains("lås upp"), e.msg)
                assertReadable(e.msg)
            }
            assertEquals(List(draftCalls.size) { "unwrap" to root }, vault.calls)
            // Nothing changed meanwhile.
            assertEquals(listOf(id), store.drafts().map { it.draftId })
            assertEquals(mapOf("offers" to 2L, "consents" to 2L), counters(store))
            assertEquals(entries, store.verifyAudit().entries)

            // Unlocked: the same store carries on.
            vault.recover()
            val view = store.draft(id)
            assertEquals("Kim Testsson", view.name)
            assertEquals(receipt, view.consent)
            assertEquals(id, store.finalize(bundle, id))
            assertTrue(store.verifyAudit().intact)
        }
    }

    @Test
    fun `a vault that fails loses nothing and one that lost its key starts anew`() {
        val vault = TestVault()
        val (id, sealed) = DeviceStore.open(db, vault).use { store -> eligibleDraft(store) to sealedHandover(store) }

        // A vault that throws anything but "key gone" on unwrap: a typed error, nothing given up.
        vault.fail("unwrap", ::bug)
        DeviceStore.open(db, vault).use { store ->
            assertFailsWith<ApiException.VaultFailed> { store.draft(id) }
            vault.recover()
            assertEquals("Kim Testsson", store.draft(id).name)
            assertNull(store.takeKeyLossNotice())
        }
        // Another vault (app reinstalled): the key is gone. The draft under it is lost (flagged,
        // kept until it expires), new drafts work under a new key, and the app is told once.
        val other = TestVault()
        DeviceStore.open(db, other).use { store ->
            assertApiError(assertFailsWith<ApiException.Damaged> { store.draft(id) })
            val fresh = eligibleDraft(store)
            assertEquals("Kim Testsson", store.draft(fresh).name)
            val notice = assertNotNull(store.takeKeyLossNotice())
            assertEquals(1u, notice.draftsLost)
            assertTrue(notice.text.startsWith("1 ofärdig remiss"), notice.text)
            assertNull(store.takeKeyLossNotice())
            // The outbox stays usable: what is sealed needs no device key.
            assertEquals(listOf(sealed to ItemState.PENDING), store.queueStatus().items.map { it.id to it.state })
            assertEquals(WithdrawResult.ErasedBeforeDelivery, store.withdraw(sealed))
            assertTrue(store.verifyAudit().intact)
        }
    }

    @Test
    fun `the development file vault`() {
        val keys = tmp.resolve("vault")
        val id = DeviceStore.openWithDevVault(db, keys.path).use { store ->
            // Asked lazily like any vault: no key until the first draft.
            assertEquals(0, keys.listFiles { f -> f.name.endsWith(".key") }?.size ?: 0)
            store.createDraft(bundle, program)
        }
        assertEquals(1, keys.listFiles { f -> f.name.endsWith(".key") }?.size)
        DeviceStore.openWithDevVault(db, keys.path).use { store -> assertEquals(program, store.draft(id).programId) }
    }
}
