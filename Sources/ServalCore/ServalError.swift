/// The one error type every Serval layer throws.
///
/// Each error carries a stable ``Code`` that clients can branch on and a message written for the user: it says
/// what went wrong and what to do about it. Frontends map the code to their protocol once (an HTTP status and
/// SageMaker's `x-amzn-ErrorType`); nothing else about an error reaches a client.
public struct ServalError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable error codes. The raw values are what clients see.
    public enum Code: String, Sendable, Equatable, CaseIterable {
        /// The request is malformed or names an invalid value (HTTP 400).
        case validationError = "ValidationError"
        /// The named resource does not exist (HTTP 404).
        case notFound = "NotFound"
        /// The resource exists already, or is in use (HTTP 409).
        case conflict = "Conflict"
        /// The request body is larger than allowed (HTTP 413).
        case payloadTooLarge = "PayloadTooLarge"
        /// The model or its handler code rejected this input or raised an error for it (HTTP 424 on SageMaker's
        /// routes; ``ServalError/modelStatusCode`` on the Open Inference Protocol's).
        case modelError = "ModelError"
        /// The endpoint exists but its model is not loaded yet (HTTP 429).
        case modelNotReady = "ModelNotReadyException"
        /// The variant cannot serve now: its worker crashed mid-request, it failed, or it is stopping (HTTP 503).
        case serviceUnavailable = "ServiceUnavailable"
        /// The variant's queue is full; retry later or add instances (HTTP 503; gRPC RESOURCE_EXHAUSTED).
        case overloaded = "Overloaded"
        /// The model did not answer within the invocation timeout (HTTP 504).
        case invocationTimeout = "InvocationTimeout"
        /// An unexpected failure inside Serval (HTTP 500).
        case internalFailure = "InternalFailure"
    }

    /// The stable code.
    public var code: Code
    /// A message for the user: what went wrong and what to do.
    public var message: String
    /// Seconds after which a retry may succeed, for overload and not-ready errors.
    public var retryAfterSeconds: Int?
    /// For ``Code/modelError``, the status the model's own server answered: 400 when its handler rejected the input
    /// (it could not decode it, or it has the wrong number of features), 500 when it raised. SageMaker reports it as
    /// `OriginalStatusCode`; the Open Inference Protocol answers with it, as Triton answers a backend's error.
    public var modelStatusCode: Int

    /// Creates an error.
    public init(_ code: Code, _ message: String, retryAfterSeconds: Int? = nil) {
        self.code = code
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
        modelStatusCode = 500
    }

    /// The model's handler rejected the input (it raised while decoding or checking it): a ``Code/modelError`` whose
    /// ``modelStatusCode`` is 400.
    public static func modelRejectedInput(_ message: String) -> ServalError {
        var error = ServalError(.modelError, "The model rejected the input: \(message)")
        error.modelStatusCode = 400
        return error
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// A request field is invalid. The message names the field.
    public static func invalid(_ field: String, _ problem: String) -> ServalError {
        ServalError(.validationError, "\(field): \(problem)")
    }

    /// A named resource does not exist.
    public static func notFound(_ kind: String, _ name: String, hint: String? = nil) -> ServalError {
        var message = "\(kind) \"\(name)\" does not exist."
        if let hint { message += " " + hint }
        return ServalError(.notFound, message)
    }
}
