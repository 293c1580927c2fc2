import ServalCore
import Testing

/// The ``ServalError`` `body` throws, or `nil` when it returns (any other error is recorded as an issue).
public func caught<T>(_ body: () async throws -> T) async -> ServalError? {
    do {
        _ = try await body()
        return nil
    } catch let error as ServalError {
        return error
    } catch {
        Issue.record("not a ServalError: \(error)")
        return nil
    }
}
