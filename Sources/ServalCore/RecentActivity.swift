import Synchronization

/// A variant's last minute: invocations, failures, latency percentiles and batch sizes, for the deploy card
/// (`serval endpoints describe`). Sixty one-second slots of counts and a logarithmic latency histogram; recording is
/// one short lock and no allocation.
public final class RecentActivity: Sendable {
    /// What the last minute looked like.
    public struct Snapshot: Sendable, Equatable {
        /// Invocations per second over the window (the time since the first event when that is shorter).
        public var requestsPerSecond: Double
        /// Latency percentiles in milliseconds (the upper edge of the histogram bucket they fall in; ±9 %), `nil`
        /// without invocations.
        public var p50Milliseconds: Double?
        public var p99Milliseconds: Double?
        /// Requests per batch, `nil` without batches.
        public var averageBatchSize: Double?
        /// Invocations that failed.
        public var errors: Int
        /// Invocations, failed ones included.
        public var invocations: Int
    }

    /// Latency buckets: bucket `i` holds durations up to `10 µs × 1.2^i`; the last one everything longer (~90 s).
    static let bucketCount = 88
    static let bucketRatio = 1.2
    static let firstBucketNanoseconds = 10_000.0
    static let slots = 60

    private struct Slot {
        var second: Int64 = -1
        var invocations = 0
        var errors = 0
        var batches = 0
        var batchItems = 0
        var latency = [Int](repeating: 0, count: RecentActivity.bucketCount)
    }

    private struct State {
        var slots = [Slot](repeating: Slot(), count: RecentActivity.slots)
        var firstSecond: Int64?
    }

    private let state = Mutex(State())
    private let origin: ContinuousClock.Instant

    /// Creates an empty window; `origin` is the instant seconds are counted from.
    public init(origin: ContinuousClock.Instant = .now) {
        self.origin = origin
    }

    private func second(_ instant: ContinuousClock.Instant) -> Int64 {
        (instant - origin).components.seconds
    }

    /// Counts an invocation that ended at `now` after `duration`.
    public func invocation(duration: Duration, failed: Bool, now: ContinuousClock.Instant = .now) {
        let bucket = Self.bucket(for: duration)
        let second = second(now)
        state.withLock { state in
            Self.touch(&state, second: second) { slot in
                slot.invocations += 1
                if failed { slot.errors += 1 }
                slot.latency[bucket] += 1
            }
        }
    }

    /// Counts a batch of `items` requests sent at `now`.
    public func batch(items: Int, now: ContinuousClock.Instant = .now) {
        let second = second(now)
        state.withLock { state in
            Self.touch(&state, second: second) { slot in
                slot.batches += 1
                slot.batchItems += items
            }
        }
    }

    private static func touch(_ state: inout State, second: Int64, _ change: (inout Slot) -> Void) {
        if state.firstSecond == nil { state.firstSecond = second }
        let index = Int(second % Int64(slots))
        if state.slots[index].second != second { state.slots[index] = Slot(second: second) }
        change(&state.slots[index])
    }

    /// The window ending at `now`.
    public func snapshot(now: ContinuousClock.Instant = .now) -> Snapshot {
        let current = second(now)
        return state.withLock { state in
            var invocations = 0
            var errors = 0
            var batches = 0
            var items = 0
            var latency = [Int](repeating: 0, count: Self.bucketCount)
            for slot in state.slots where slot.second > current - Int64(Self.slots) && slot.second <= current {
                invocations += slot.invocations
                errors += slot.errors
                batches += slot.batches
                items += slot.batchItems
                for index in latency.indices { latency[index] += slot.latency[index] }
            }
            let span = max(1, min(Int64(Self.slots), current - (state.firstSecond ?? current) + 1))
            return Snapshot(
                requestsPerSecond: Double(invocations) / Double(span),
                p50Milliseconds: Self.percentile(0.50, of: latency, total: invocations),
                p99Milliseconds: Self.percentile(0.99, of: latency, total: invocations),
                averageBatchSize: batches == 0 ? nil : Double(items) / Double(batches), errors: errors,
                invocations: invocations)
        }
    }

    /// Each bucket's upper edge in nanoseconds, `10 µs × 1.2^i`, made by the same repeated multiplication a loop
    /// would do, so that the edges are exact to the last bit whichever way they are used.
    static let upperEdgesNanoseconds: [Double] = {
        var edges = [firstBucketNanoseconds]
        for _ in 1..<bucketCount { edges.append(edges[edges.count - 1] * bucketRatio) }
        return edges
    }()

    /// The bucket holding `duration`: the first whose upper edge is at least `duration`, or the last one. A binary
    /// search over the edges: seven comparisons, no multiplication.
    static func bucket(for duration: Duration) -> Int {
        let nanoseconds = Double(duration.components.seconds) * 1e9 + Double(duration.components.attoseconds) / 1e9
        return upperEdgesNanoseconds.withUnsafeBufferPointer { edges in
            var low = 0
            var high = bucketCount - 1  // the last bucket takes everything longer
            while low < high {
                let middle = (low + high) / 2
                if edges[middle] < nanoseconds { low = middle + 1 } else { high = middle }
            }
            return low
        }
    }

    static func upperEdgeMilliseconds(_ bucket: Int) -> Double {
        upperEdgesNanoseconds[bucket] / 1e6
    }

    private static func percentile(_ quantile: Double, of histogram: [Int], total: Int) -> Double? {
        guard total > 0 else { return nil }
        let rank = Int((quantile * Double(total)).rounded(.up))
        var seen = 0
        for (index, count) in histogram.enumerated() {
            seen += count
            if seen >= max(rank, 1) { return upperEdgeMilliseconds(index) }
        }
        return upperEdgeMilliseconds(histogram.count - 1)
    }
}
