public import ServalCore

/// Why a model package could not be stored.
public enum PackageError: Error, Equatable, CustomStringConvertible {
    /// The package is malformed or unsafe; the message says which entry and why.
    case invalid(String)
    /// The package crosses a size limit; the message names the limit and the `serve` flag that sets it.
    case tooLarge(String)
    /// The path a user named as the package's source is not one Serval reads; the message says why.
    case refusedSource(String)
    /// The copy or extraction was stopped: its request was cancelled or Serval is shutting down.
    case cancelled
    /// Reading or writing files failed.
    case io(String)

    public var description: String {
        switch self {
        case .invalid(let message), .tooLarge(let message), .refusedSource(let message), .io(let message): message
        case .cancelled: "storing the package was stopped: the request was cancelled or Serval is shutting down"
        }
    }

    /// The error as users see it: invalid packages and refused sources are the caller's to fix (400), packages
    /// over a limit are too large (413), I/O failures are Serval's (500).
    public var servalError: ServalError {
        switch self {
        case .invalid(let message): ServalError(.validationError, "The model package was rejected: \(message).")
        case .tooLarge(let message): ServalError(.payloadTooLarge, "The model package was rejected: \(message).")
        case .refusedSource(let message): ServalError.invalid("modelDataUrl", message)
        case .cancelled:
            ServalError(.serviceUnavailable, "Storing the model package was stopped: the request was cancelled or Serval is shutting down; send it again.")
        case .io(let message): ServalError(.internalFailure, "Storing the model package failed: \(message).")
        }
    }
}
