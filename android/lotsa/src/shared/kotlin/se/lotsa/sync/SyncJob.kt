package se.lotsa.sync

import se.lotsa.core.ApiException
import se.lotsa.core.DeviceAction
import se.lotsa.core.DeviceStore
import se.lotsa.core.ProgramBundle
import se.lotsa.core.SyncReport
import se.lotsa.core.SyncRequest
import java.time.Duration
import java.time.Instant
import java.time.OffsetDateTime

/**
 * What the background job does, with no Android in it (so it runs and is tested on a plain JVM):
 * one sync run within a deadline, the newest bundle kept, and the answer a scheduler needs —
 * done, try again, or wait for the officer — with when to run next (`next_sync_due`).
 * `SyncWorker` (WorkManager) and the iOS BGTaskScheduler handler only call [run].
 */
class SyncJob(
    private val store: DeviceStore,
    /** The bundle in force (the app's stored copy). */
    private val bundle: () -> ProgramBundle,
    /** The program administrator's key, so a newer bundle a clinic serves can be taken. */
    private val trustKey: String?,
    /** Keeps a newer signed bundle (the app stores it and loads it from now on). */
    private val keepBundle: (String) -> Unit,
    private val now: () -> Instant = Instant::now,
) {
    /** What the scheduler should do. */
    sealed interface Outcome {
        /** Everything due went; schedule at [Result.nextRunAt] if set. */
        data object Done : Outcome

        /** Something waits for coverage or the clinic: retry (with the platform's backoff). */
        data class Retry(val reason: String) : Outcome

        /** The officer must act (enrol, set the clock, renew the device key) before it can go. */
        data class NeedsOfficer(val actions: List<DeviceAction>, val reason: String) : Outcome
    }

    /** One run's result. */
    data class Result(val outcome: Outcome, val nextRunAt: Instant?, val report: SyncReport?)

    /** Runs once, never longer than [deadline]. */
    fun run(deadline: Duration, connectivityRestored: Boolean = false): Result {
        val request = SyncRequest(deadline.seconds.coerceIn(1, 3600).toUInt(), connectivityRestored, trustKey)
        val report = try {
            store.sync(bundle(), request)
        } catch (e: ApiException.VaultLocked) {
            return Result(Outcome.Retry(e.errorCode()), now().plus(RECHECK), null)
        } catch (e: ApiException.StorageFull) {
            return Result(Outcome.Retry(e.errorCode()), now().plus(RECHECK), null)
        } catch (e: ApiException.Enrolment) {
            return Result(Outcome.NeedsOfficer(emptyList(), e.errorCode()), null, null)
        }
        report.newBundle?.let(keepBundle)
        val next = report.nextDue?.let { OffsetDateTime.parse(it).toInstant() }
        val outcome = when {
            report.actions.isNotEmpty() -> Outcome.NeedsOfficer(report.actions, report.waiting.firstOrNull()?.code ?: "action")
            report.stoppedAtDeadline -> Outcome.Retry("deadline")
            report.retrying.isNotEmpty() -> Outcome.Retry(report.retrying.first().code)
            else -> Outcome.Done
        }
        return Result(outcome, next, report)
    }

    companion object {
        /** When to look again after a locked key store or a full disk. */
        val RECHECK: Duration = Duration.ofMinutes(15)
    }
}
