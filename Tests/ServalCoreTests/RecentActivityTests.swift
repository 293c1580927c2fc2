import Foundation
import ServalFuzzSupport
import Testing

@testable import ServalCore

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

    /// The bucket function as it was first written: multiply the first edge by 1.2 until it reaches the duration.
    static func bucketByMultiplying(_ duration: Duration) -> Int {
        let nanoseconds = Double(duration.components.seconds) * 1e9 + Double(duration.components.attoseconds) / 1e9
        guard nanoseconds > 10_000 else { return 0 }
        var edge = 10_000.0
        var index = 0
        while edge < nanoseconds && index < 87 {
            edge *= 1.2
            index += 1
        }
        return index
    }

    @Test("the binary search over the edge table finds the bucket the multiplying loop found, edges and their neighbours included")
    func bucketAgreesWithTheLoop() {
        var durations: [Duration] = [.zero, .nanoseconds(-5), .nanoseconds(1), .seconds(1000), .seconds(Int64.max / 2)]
        // Every edge, and one nanosecond either side of it (at the scale Duration resolves).
        for edge in RecentActivity.upperEdgesNanoseconds {
            let nanoseconds = Int64(edge.rounded(.down))
            durations += [.nanoseconds(nanoseconds - 1), .nanoseconds(nanoseconds), .nanoseconds(nanoseconds + 1)]
            durations.append(.nanoseconds(Int64(edge.rounded(.up))))
        }
        // Log-uniform from 1 µs to 200 s, with attoseconds, from a fixed seed.
        var generator = SeededGenerator(seed: 42)
        for _ in 0..<100_000 {
            let exponent = Double.random(in: 3...11.3, using: &generator)
            let nanoseconds = Int64(pow(10, exponent))
            let attoseconds = Int64.random(in: 0..<1_000_000_000, using: &generator)
            durations.append(
                Duration(
                    secondsComponent: nanoseconds / 1_000_000_000,
                    attosecondsComponent: (nanoseconds % 1_000_000_000) * 1_000_000_000 + attoseconds))
        }
        var mismatches: [String] = []
        for duration in durations where RecentActivity.bucket(for: duration) != Self.bucketByMultiplying(duration) {
            mismatches.append("\(duration): \(RecentActivity.bucket(for: duration)) vs \(Self.bucketByMultiplying(duration))")
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
        // Bucket i ends at 10 µs × 1.2^i.
        #expect(RecentActivity.upperEdgesNanoseconds.count == 88)
        for index in [0, 1, 40, 87] {
            #expect(abs(RecentActivity.upperEdgeMilliseconds(index) / (0.01 * pow(1.2, Double(index))) - 1) < 1e-12)
        }
    }
}

