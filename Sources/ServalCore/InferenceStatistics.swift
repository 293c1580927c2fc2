/// A count of events and the total time they took.
public struct TimedCount: Sendable, Equatable {
    /// How many.
    public var count: Int = 0
    /// Their cumulative duration in nanoseconds.
    public var nanoseconds: Int64 = 0

    /// Creates an empty count.
    public init() {}

    /// Adds `count` events that each took `duration`.
    public mutating func add(count: Int, duration: Duration) {
        self.count += count
        let (seconds, attoseconds) = duration.components
        nanoseconds += Int64(count) * (seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// What a variant has served since it started, in the terms Triton's statistics extension uses.
public struct InferenceStatistics: Sendable, Equatable {
    /// Requests answered successfully, with their time from arrival to answer.
    public var success = TimedCount()
    /// Requests that failed, with their time from arrival to failure.
    public var fail = TimedCount()
    /// Requests sent to a worker, with the time they waited in the queue.
    public var queue = TimedCount()
    /// Requests a worker answered, with the time their batch spent in the worker.
    public var computeInfer = TimedCount()
    /// Rows inferred (a SageMaker request counts 1; a tensor request its first dimension).
    public var inferenceCount = 0
    /// Batches run.
    public var executionCount = 0
    /// When the last request was answered, in milliseconds since the Unix epoch; 0 when none was.
    public var lastInferenceMilliseconds: Int64 = 0

    /// Creates empty statistics.
    public init() {}
}
