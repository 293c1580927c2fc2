import Logging
import ServalCore

/// Says when periodic housekeeping (rescuing expired leases, expiring work) is due: at most once per interval,
/// however often the work loop wakes.
struct HousekeepingGate {
    private var last: ContinuousClock.Instant?

    /// Whether housekeeping is due now; when it is, the next is one `interval` away.
    mutating func isDue(every interval: Duration, now: ContinuousClock.Instant = .now) -> Bool {
        guard last.map({ now - $0 >= interval }) ?? true else { return false }
        last = now
        return true
    }
}

/// Renews the leases a process holds, every third of the lease duration, until it stops and holds none.
///
/// - Parameters:
///   - held: what is in flight now, by group (an endpoint, a job), and whether the process is stopping.
///   - renew: renews one group's leases until the given time; returns how many it no longer holds.
func renewLeasesUntilStopped<ID: Sendable>(
    heartbeat: Wakeup, leaseDuration: Duration, clock: any WallClock, logger: Logger, what: String,
    held: () -> (groups: [String: [ID]], stopping: Bool),
    renew: (_ group: String, _ ids: [ID], _ until: Timestamp) async throws -> Int
) async {
    while true {
        await heartbeat.wait(upTo: leaseDuration / 3)
        let (groups, stopping) = held()
        if stopping && groups.values.allSatisfy(\.isEmpty) { return }
        let until = clock.now().adding(leaseDuration)
        for (group, ids) in groups where !ids.isEmpty {
            do {
                let lost = try await renew(group, ids, until)
                if lost > 0 { logger.warning("Lost leases of \(what) in flight", metadata: ["group": "\(group)", "count": "\(lost)"]) }
            } catch {
                logger.error("Could not renew the leases of \(what)", metadata: ["group": "\(group)", "error": "\(error)"])
            }
        }
    }
}
