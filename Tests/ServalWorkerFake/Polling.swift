/// Checks `condition` every 10 ms until it holds or `timeout` has passed, and returns whether it held: the tests'
/// way of waiting for something to happen, instead of sleeping. Timeouts are generous (the machine may be loaded);
/// a condition that holds returns at once.
public func eventually(
    within timeout: Duration = .seconds(30), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        guard ContinuousClock.now < deadline else { return false }
        try? await Task.sleep(for: .milliseconds(10))
    }
}
