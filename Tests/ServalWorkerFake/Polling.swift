import Foundation

/// How much longer than its stated timeout a polled wait may take (`SERVAL_TEST_TIME_SCALE`, default 4, as in the
/// end-to-end tests): the whole suite runs these tests beside dozens of servers and workers on two cores, where the
/// process's few concurrency threads can be busy for many seconds. Widening a deadline only delays the report of a
/// real failure.
public let testTimeScale = Double(ProcessInfo.processInfo.environment["SERVAL_TEST_TIME_SCALE"] ?? "") ?? 4

/// Checks `condition` every 10 ms until it holds, and returns whether it held: the tests' way of waiting for
/// something to happen, instead of sleeping. It gives up once `timeout` (times ``testTimeScale``) has passed *and* it
/// has polled that long's worth of 10 ms turns, so that a process whose threads were all busy elsewhere for minutes
/// (blocking calls in other suites of the same run) still gives the awaited work its turns. A condition that holds
/// returns at once.
public func eventually(
    within timeout: Duration = .seconds(30), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let interval = Duration.milliseconds(10)
    let scaled = timeout * testTimeScale
    let deadline = ContinuousClock.now + scaled
    let turns = Int(scaled / interval)
    var polled = 0
    while true {
        if try await condition() { return true }
        polled += 1
        guard ContinuousClock.now < deadline || polled < turns else { return false }
        try? await Task.sleep(for: interval)
    }
}
