import ServalCore
import Testing

/// The error a validation throws, or `nil` when it passes.
func failure(_ validation: () throws -> Void) -> ServalError? {
    do {
        try validation()
        return nil
    } catch let error as ServalError {
        return error
    } catch {
        Issue.record("expected a ServalError, got \(error)")
        return ServalError(.internalFailure, "\(error)")
    }
}

/// Expects a validation to fail with a validation error whose message starts with `field` and mentions `detail`.
func expectInvalid(
    field: String, mentioning detail: String? = nil, sourceLocation: SourceLocation = #_sourceLocation,
    _ validation: () throws -> Void
) {
    guard let error = failure(validation) else {
        Issue.record("the validation passed; expected it to fail on \(field)", sourceLocation: sourceLocation)
        return
    }
    #expect(error.code == .validationError, sourceLocation: sourceLocation)
    #expect(error.message.hasPrefix(field + ": "), "message: \(error.message)", sourceLocation: sourceLocation)
    if let detail {
        #expect(error.message.contains(detail), "message: \(error.message)", sourceLocation: sourceLocation)
    }
}
