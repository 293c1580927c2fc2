import ServalScheduling
import Testing

@Suite("RestartBackoff")
struct RestartBackoffTests {
    /// Fails an instance `count` times, each a moment after it started, and returns the decisions.
    private func failRepeatedly(_ backoff: inout RestartBackoff, count: Int, from start: Int = 0) -> [RestartBackoff.Decision] {
        (0..<count).map { index in
            backoff.started(now: at(start + index * 10))
            return backoff.exited(now: at(start + index * 10 + 1))
        }
    }

    @Test("delays double from the initial delay, and the default policy gives up at the fifth failure")
    func defaultPolicy() {
        var backoff = RestartBackoff()
        #expect(
            failRepeatedly(&backoff, count: 5) == [
                .restart(after: .milliseconds(250)), .restart(after: .milliseconds(500)), .restart(after: .seconds(1)),
                .restart(after: .seconds(2)), .giveUp(consecutiveFailures: 5),
            ])
    }

    @Test("delays are capped at maxDelay")
    func capped() {
        var backoff = RestartBackoff(initialDelay: .seconds(1), maxDelay: .seconds(5), maxConsecutiveFailures: 100)
        #expect(
            failRepeatedly(&backoff, count: 6).map(\.delay) == [
                .seconds(1), .seconds(2), .seconds(4), .seconds(5), .seconds(5), .seconds(5),
            ])
    }

    @Test("a cap that is not a power-of-two multiple of the initial delay is hit exactly")
    func capBetweenDoublings() {
        var backoff = RestartBackoff(initialDelay: .seconds(3), maxDelay: .seconds(10), maxConsecutiveFailures: 100)
        #expect(failRepeatedly(&backoff, count: 4).map(\.delay) == [.seconds(3), .seconds(6), .seconds(10), .seconds(10)])
    }

    @Test("hundreds of failures in a row stay at maxDelay without overflowing")
    func manyFailures() {
        var backoff = RestartBackoff(maxConsecutiveFailures: .max)
        let decisions = failRepeatedly(&backoff, count: 300)
        #expect(decisions.last == .restart(after: .seconds(30)))
        #expect(decisions.allSatisfy { ($0.delay ?? .zero) <= .seconds(30) })
    }

    @Test("an instance that stayed up for stableAfter resets the failure count")
    func resetAfterStable() {
        var backoff = RestartBackoff(stableAfter: .seconds(60))
        #expect(failRepeatedly(&backoff, count: 3).last == .restart(after: .seconds(1)))
        backoff.started(now: at(1_000))
        #expect(backoff.exited(now: at(61_000)) == .restart(after: .milliseconds(250)))
        // And counting starts again from there.
        backoff.started(now: at(61_500))
        #expect(backoff.exited(now: at(61_600)) == .restart(after: .milliseconds(500)))
    }

    @Test("an instance that exits just before stableAfter keeps counting")
    func noResetBeforeStable() {
        var backoff = RestartBackoff(stableAfter: .seconds(60))
        _ = failRepeatedly(&backoff, count: 2)
        backoff.started(now: at(1_000))
        #expect(backoff.exited(now: at(60_999)) == .restart(after: .seconds(1)))
    }

    @Test("an exit with no recorded start never resets the count")
    func exitWithoutStart() {
        var backoff = RestartBackoff(stableAfter: .seconds(1))
        #expect(backoff.exited(now: at(0)) == .restart(after: .milliseconds(250)))
        #expect(backoff.exited(now: at(100_000)) == .restart(after: .milliseconds(500)))
        // The start is forgotten at each exit: a later exit does not count from an old start.
        backoff.started(now: at(100_001))
        #expect(backoff.exited(now: at(100_002)) == .restart(after: .seconds(1)))
        #expect(backoff.exited(now: at(500_000)) == .restart(after: .seconds(2)))
    }

    @Test("giveUp comes at maxConsecutiveFailures and keeps coming after it")
    func giveUp() {
        var backoff = RestartBackoff(maxConsecutiveFailures: 3)
        #expect(failRepeatedly(&backoff, count: 4).map(\.givesUp) == [false, false, true, true])
        #expect(backoff.exited(now: at(1_000)) == .giveUp(consecutiveFailures: 5))
        // A stable run afterwards starts over.
        backoff.started(now: at(2_000))
        #expect(backoff.exited(now: at(200_000)) == .restart(after: .milliseconds(250)))
    }

    @Test("with maxConsecutiveFailures 1 the first failure gives up")
    func giveUpAtOnce() {
        var backoff = RestartBackoff(maxConsecutiveFailures: 1)
        backoff.started(now: at(0))
        #expect(backoff.exited(now: at(1)) == .giveUp(consecutiveFailures: 1))
    }
}

extension RestartBackoff.Decision {
    var delay: Duration? {
        if case .restart(let delay) = self { return delay }
        return nil
    }

    var givesUp: Bool { delay == nil }
}
