import ServalCore
import Testing

@Suite("RecentActivity: a variant's last minute")
struct RecentActivityTests {
    @Test("rate, percentiles, batch size and errors over the window; what is older than a minute is forgotten")
    func window() {
        let origin = ContinuousClock.now
        let activity = RecentActivity(origin: origin)
        // 10 s of 100 invocations a second: 98 at 2 ms and 2 at 50 ms each second, 1 failure a second.
        for second in 0..<10 {
            let now = origin + .seconds(second) + .milliseconds(500)
            for index in 0..<100 {
                activity.invocation(duration: index < 98 ? .milliseconds(2) : .milliseconds(50), failed: index == 0, now: now)
            }
            activity.batch(items: 30, now: now)
            activity.batch(items: 70, now: now)
        }
        let snapshot = activity.snapshot(now: origin + .seconds(9) + .milliseconds(900))
        #expect(snapshot.invocations == 1000 && snapshot.errors == 10)
        #expect(snapshot.requestsPerSecond == 100)
        #expect(snapshot.averageBatchSize == 50)
        // Buckets are 20 % wide: the percentile is the upper edge of the bucket holding it.
        let p50 = snapshot.p50Milliseconds!
        let p99 = snapshot.p99Milliseconds!
        #expect(p50 >= 2 && p50 < 2.4, "\(p50)")
        #expect(p99 >= 50 && p99 < 60, "\(p99)")

        // Seventy seconds later only the new traffic counts.
        let later = origin + .seconds(80)
        activity.invocation(duration: .milliseconds(7), failed: false, now: later)
        let fresh = activity.snapshot(now: later)
        #expect(fresh.invocations == 1 && fresh.errors == 0 && fresh.averageBatchSize == nil)
        #expect(fresh.requestsPerSecond == 1.0 / 60)
        #expect(fresh.p99Milliseconds! >= 7 && fresh.p99Milliseconds! < 8.4)
    }

    @Test("an empty window has no percentiles")
    func empty() {
        let snapshot = RecentActivity().snapshot()
        #expect(snapshot.invocations == 0 && snapshot.p50Milliseconds == nil && snapshot.requestsPerSecond == 0)
    }
}
