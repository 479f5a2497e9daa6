package se.lotsa.core

import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.io.TempDir
import java.io.File
import java.net.InetAddress
import java.net.ServerSocket
import java.time.Instant
import java.time.temporal.ChronoUnit
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

/**
 * A clinic service as a municipality runs it: `lotsa clinic init`, the example program set signed
 * with `--clinic clinic.json`, and `lotsa clinic serve` on 127.0.0.1, all with the real CLI
 * (`-Dlotsa.cli`, or target/debug/lotsa beside the host library).
 */
class LocalClinicService(dir: File) : AutoCloseable {
    private val cli: File = (System.getProperty("lotsa.cli")?.takeIf { it.isNotBlank() }?.let(::File)
        ?: System.getProperty("jna.library.path")?.let { File(it).resolve("lotsa") }
        ?: File("../../target/debug/lotsa")).also {
        check(it.canExecute()) { "the lotsa CLI is missing at $it: run bindings/test.sh (it builds it) or pass -Dlotsa.cli" }
    }
    private val home = dir.resolve("clinic")
    val bundle: String
    val trust: String
    private val serve: Process

    private fun run(vararg args: String): String {
        val p = ProcessBuilder(cli.path, "--json", *args).redirectError(ProcessBuilder.Redirect.INHERIT).start()
        val out = p.inputStream.bufferedReader().readText()
        check(p.waitFor() == 0) { "lotsa ${args.joinToString(" ")} failed: $out" }
        return out
    }

    init {
        val port = ServerSocket(0, 1, InetAddress.getLoopbackAddress()).use { it.localPort }
        val endpoint = "https://127.0.0.1:$port/lots-for-livet"
        run("clinic", "init", "--dir", home.path, "--name", "Mottagningen", "--endpoint", endpoint)
        run("program", "keygen", "-o", dir.resolve("admin").path)
        val example = cli.absoluteFile.parentFile.parentFile.parentFile
            .resolve("schemas/examples/programs.example.json").readText()
        // Instant prints its seconds always; OffsetDateTime drops ":00", which is not RFC 3339.
        val now = Instant.now().truncatedTo(ChronoUnit.SECONDS)
        val set = example
            .replace("https://localhost:8443/lots-for-livet", endpoint)
            .replace(Regex("\"issued_at\": \"[^\"]+\""), "\"issued_at\": \"$now\"")
        dir.resolve("set.json").writeText(set)
        run(
            "program", "sign", dir.resolve("set.json").path, "--key", dir.resolve("admin.key").path,
            "-o", dir.resolve("bundle.json").path, "--clinic", home.resolve("clinic.json").path,
        )
        bundle = dir.resolve("bundle.json").readText()
        trust = dir.resolve("admin.pub").readText().trim()
        serve = ProcessBuilder(
            cli.path, "--json", "clinic", "serve", "--dir", home.path, "--bundle", dir.resolve("bundle.json").path,
            "--trust", dir.resolve("admin.pub").path, "--bind", "127.0.0.1:$port",
        ).redirectError(ProcessBuilder.Redirect.INHERIT).start()
        val started = serve.inputStream.bufferedReader().readLine()
        check(started != null && started.contains("\"listening\"")) { "the clinic did not start: $started" }
    }

    /** A one-time enrolment code. */
    fun code(): String = Regex("\"code\":\"([^\"]+)\"").find(run("clinic", "enrol-code", "--dir", home.path))!!.groupValues[1]

    /** How many referrals the clinic holds, over all devices. */
    fun held(): Int = Regex("\"held\":(\\d+)").findAll(run("clinic", "devices", "--dir", home.path))
        .sumOf { it.groupValues[1].toInt() }

    override fun close() {
        serve.destroy()
        serve.waitFor()
    }
}

/**
 * Sync through the generated Kotlin, against the real clinic service: deliver and forget,
 * withdraw after delivery, a locked screen still sends (the device key is "after first unlock"),
 * a lost device key enrols again.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SyncTest {
    private lateinit var clinic: LocalClinicService
    private lateinit var bundle: ProgramBundle

    @TempDir
    lateinit var tmp: File

    @BeforeAll
    fun start(@TempDir dir: File) {
        clinic = LocalClinicService(dir)
        bundle = ProgramBundle.load(clinic.bundle, clinic.trust)
    }

    @AfterAll
    fun stop() = clinic.close()

    private val request = SyncRequest(deadlineSecs = 30u, connectivityRestored = false, trustKey = null)

    private fun referral(store: DeviceStore): String = SyncTestSupport.referral(store, bundle)

    @Test
    fun `a phone enrols, delivers and forgets, then withdraws after delivery`() {
        DeviceStore.open(tmp.resolve("a.db").path, TestVault()).use { store ->
            store.enrol(bundle, "lots-for-livet", clinic.code())
            val before = clinic.held()
            val handover = referral(store)
            assertNotNull(store.nextSyncDue())
            val report = store.sync(bundle, request)
            assertEquals(listOf(handover), report.delivered)
            assertTrue(report.retrying.isEmpty() && report.actions.isEmpty())
            assertNull(store.nextSyncDue())
            assertEquals(before + 1, clinic.held())
            assertEquals(ItemState.DELIVERED, store.queueStatus().items.single { it.id == handover }.state)

            val withdrawn = store.withdraw(handover)
            assertTrue(withdrawn is WithdrawResult.QueuedForClinic)
            // The queue screen can say so: delivered, and its withdrawal on its way.
            val queued = store.queueStatus().items.associateBy { it.id }
            assertEquals(ItemState.PENDING, queued.getValue(handover).withdrawal)
            assertEquals(handover, queued.getValue(withdrawn.withdrawalId).refersTo)
            assertEquals(listOf(withdrawn.withdrawalId), store.sync(bundle, request).delivered)
            assertEquals(before, clinic.held())
            assertEquals(ItemState.DELIVERED, store.queueStatus().items.single { it.id == handover }.withdrawal)
        }
    }

    @Test
    fun `a locked screen still sends what is sealed`() {
        val vault = TestVault()
        val db = tmp.resolve("b.db").path
        val handover = DeviceStore.open(db, vault).use { store ->
            store.enrol(bundle, "lots-for-livet", clinic.code())
            referral(store)
        }
        // The background job, screen locked: the drafts' keys are out of reach, the device key is not.
        vault.lockedExcept = "lotsa.device-key"
        DeviceStore.open(db, vault).use { background ->
            assertFailsWith<ApiException.VaultLocked> { background.createDraft(bundle, "lots-for-livet") }
            assertEquals(listOf(handover), background.sync(bundle, request).delivered)
        }
    }

    @Test
    fun `a lost device key says enrol again, and a new key resumes the queue`() {
        val vault = TestVault()
        DeviceStore.open(tmp.resolve("c.db").path, vault).use { store ->
            store.enrol(bundle, "lots-for-livet", clinic.code())
            vault.forget("lotsa.device-key")
            val lost = assertFailsWith<ApiException.Enrolment> { store.enrol(bundle, "lots-for-livet", clinic.code()) }
            assertEquals("device_key_lost", lost.errorCode())
            val renewed = store.renewDeviceKey()
            assertEquals(renewed, store.enrol(bundle, "lots-for-livet", clinic.code()))
            val handover = referral(store)
            assertEquals(listOf(handover), store.sync(bundle, request).delivered)
        }
    }
}

/**
 * The background job's logic (android/lotsa/src/shared/kotlin/se/lotsa/sync/SyncJob.kt), on the
 * JVM against the real clinic: what it tells the scheduler and when it asks to run next.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SyncJobTest {
    @TempDir
    lateinit var tmp: File

    @Test
    fun `the job delivers, says done and asks for no run, then retries when the clinic is gone`() {
        val dir = tmp.resolve("clinic-dir").also { it.mkdirs() }
        val clinic = LocalClinicService(dir)
        val bundle = ProgramBundle.load(clinic.bundle, clinic.trust)
        val kept = mutableListOf<String>()
        DeviceStore.open(tmp.resolve("job.db").path, TestVault()).use { store ->
            val job = se.lotsa.sync.SyncJob(store, { bundle }, clinic.trust, { kept += it })
            // Nothing due: done at once, no next run.
            val idle = job.run(java.time.Duration.ofSeconds(25))
            assertEquals(se.lotsa.sync.SyncJob.Outcome.Done, idle.outcome)
            assertNull(idle.nextRunAt)

            // Not enrolled: the officer must act; it does not ask to run again soon.
            val waiting = SyncTestSupport.referral(store, bundle)
            val needs = job.run(java.time.Duration.ofSeconds(25))
            assertTrue(needs.outcome is se.lotsa.sync.SyncJob.Outcome.NeedsOfficer, "${needs.outcome}")
            assertTrue(needs.nextRunAt!!.isAfter(java.time.Instant.now().plusSeconds(600)))

            store.enrol(bundle, "lots-for-livet", clinic.code())
            val done = job.run(java.time.Duration.ofSeconds(25))
            assertEquals(se.lotsa.sync.SyncJob.Outcome.Done, done.outcome)
            assertEquals(listOf(waiting), done.report!!.delivered)
            assertNull(done.nextRunAt)

            // The clinic goes away: retry, with a next run asked for.
            clinic.close()
            SyncTestSupport.referral(store, bundle)
            val offline = job.run(java.time.Duration.ofSeconds(25))
            assertEquals(se.lotsa.sync.SyncJob.Outcome.Retry("network"), offline.outcome)
            assertNotNull(offline.nextRunAt)
            assertTrue(kept.isEmpty(), "no newer bundle was served")
        }
    }
}

/** A consented, finalized lots-for-livet referral (shared by the sync tests). */
object SyncTestSupport {
    fun referral(store: DeviceStore, bundle: ProgramBundle): String {
        val id = store.createDraft(bundle, "lots-for-livet")
        store.updateDraft(
            id,
            DraftUpdate(
                name = "Kim Testsson", phone = "070-123 45 67", identityNumber = Ids.ADULT,
                municipality = "Stockholm", provenance = Provenance.DOCUMENT,
            ),
        )
        store.recordConsent(
            bundle, id,
            ConsentInput(
                programId = "lots-for-livet", subjectRef = "ignored", language = "sv", scriptVersion = 1u,
                method = ConsentMethod.Verbal("P-4711"), role = Role.POLICE, officerId = "P-1234",
                unit = "Plattan", toldNoEffectOnPoliceMatter = true, toldCanWithdraw = true,
                capacity = Capacity.ADEQUATE, sharePersonnummer = false,
            ),
        )
        return store.finalize(bundle, id)
    }
}
