/// Decides when a crashed worker instance restarts, and when to give up, as a pure state machine.
///
/// Delays double from `initialDelay` up to `maxDelay`. An instance that stayed up for `stableAfter` since its
/// last start is considered healthy again and its failure count resets. After `maxConsecutiveFailures`
/// failures in a row the caller should stop restarting and mark the endpoint failed.
public struct RestartBackoff: Sendable, Equatable {
    /// What to do after an instance exited.
    public enum Decision: Sendable, Equatable {
        /// Start the instance again after this delay.
        case restart(after: Duration)
        /// Stop restarting: the instance is in a crash loop.
        case giveUp(consecutiveFailures: Int)
    }

    /// The first delay.
    public var initialDelay: Duration
    /// The longest delay.
    public var maxDelay: Duration
    /// How long an instance must stay up for its failure count to reset.
    public var stableAfter: Duration
    /// Failures in a row after which to give up.
    public var maxConsecutiveFailures: Int

    private var consecutiveFailures = 0
    private var startedAt: ContinuousClock.Instant?

    /// Creates a policy.
    public init(
        initialDelay: Duration = .milliseconds(250),
        maxDelay: Duration = .seconds(30),
        stableAfter: Duration = .seconds(60),
        maxConsecutiveFailures: Int = 5
    ) {
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.stableAfter = stableAfter
        self.maxConsecutiveFailures = maxConsecutiveFailures
    }

    /// Records that the instance was started at `now`.
    public mutating func started(now: ContinuousClock.Instant) {
        startedAt = now
    }

    /// Records that the instance exited or failed to load at `now`, and decides what comes next.
    public mutating func exited(now: ContinuousClock.Instant) -> Decision {
        if let startedAt, now - startedAt >= stableAfter {
            consecutiveFailures = 0
        }
        startedAt = nil
        consecutiveFailures += 1
        guard consecutiveFailures < maxConsecutiveFailures else {
            return .giveUp(consecutiveFailures: consecutiveFailures)
        }
        var delay = initialDelay
        for _ in 1..<consecutiveFailures {
            delay = delay * 2
            if delay >= maxDelay { return .restart(after: maxDelay) }
        }
        return .restart(after: min(delay, maxDelay))
    }
}
