// NOT COMPILED HERE: there is no Swift toolchain on the build machine. The iOS counterpart of
// android/.../SyncWorker.kt: BGTaskScheduler gives a processing task about 30 s; the run's
// deadline stays inside it, and the next run is asked for at `nextDue`.

import BackgroundTasks
import Foundation

enum LotsaSync {
    static let identifier = "se.lotsa.sync"

    /// Register once at launch (Info.plist: BGTaskSchedulerPermittedIdentifiers).
    static func register(store: DeviceStore, bundle: @escaping () -> ProgramBundle,
                         trustKey: String?, keep: @escaping (String) -> Void) {
        BGTaskScheduler.shared.register(forTaskWithIdentifier: identifier, using: nil) { task in
            let work = Task.detached {
                let request = SyncRequest(deadlineSecs: 25, connectivityRestored: false, trustKey: trustKey)
                do {
                    let report = try store.sync(bundle: bundle(), request: request)
                    if let text = report.newBundle { keep(text) }
                    schedule(after: report.nextDue)
                    task.setTaskCompleted(success: report.retrying.isEmpty && !report.stoppedAtDeadline)
                } catch {
                    schedule(after: nil)
                    task.setTaskCompleted(success: false)
                }
            }
            task.expirationHandler = { work.cancel() }
        }
    }

    /// Asks for the next run at `nextDue` (RFC 3339), or in 15 minutes.
    static func schedule(after nextDue: String?) {
        let request = BGProcessingTaskRequest(identifier: identifier)
        request.requiresNetworkConnectivity = true
        request.earliestBeginDate = nextDue.flatMap { ISO8601DateFormatter().date(from: $0) }
            ?? Date(timeIntervalSinceNow: 15 * 60)
        try? BGTaskScheduler.shared.submit(request)
    }
}
