package se.lotsa.sync

// NOT COMPILED HERE: androidx.work is not on Maven Central, and there is no Android SDK on the
// build machine. This is the whole Android side of background delivery; the logic is SyncJob,
// which is compiled and tested on the JVM (bindings/kotlin-tests).

import android.content.Context
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.ExistingWorkPolicy
import androidx.work.NetworkType
import androidx.work.OneTimeWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import java.time.Duration
import java.time.Instant

/** WorkManager's entry point: one SyncJob run with a network, then the next run scheduled. */
class SyncWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {
    override suspend fun doWork(): Result {
        val app = applicationContext as LotsaApp // the app's Application: holds the store and bundle
        val result = app.syncJob.run(Duration.ofMinutes(9), connectivityRestored = runAttemptCount == 0)
        result.nextRunAt?.let { schedule(applicationContext, it) }
        return when (result.outcome) {
            is SyncJob.Outcome.Done -> Result.success()
            is SyncJob.Outcome.Retry -> Result.retry()
            is SyncJob.Outcome.NeedsOfficer -> Result.success() // the app shows the action
        }
    }

    companion object {
        /** Runs at `at` (or as soon as there is a network after it). */
        fun schedule(context: Context, at: Instant) {
            val delay = Duration.between(Instant.now(), at).coerceAtLeast(Duration.ZERO)
            val request = OneTimeWorkRequestBuilder<SyncWorker>()
                .setConstraints(Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build())
                .setInitialDelay(delay)
                .build()
            WorkManager.getInstance(context).enqueueUniqueWork("lotsa-sync", ExistingWorkPolicy.REPLACE, request)
        }
    }
}

/** What the app's Application provides (the app defines it). */
interface LotsaApp {
    val syncJob: SyncJob
}
