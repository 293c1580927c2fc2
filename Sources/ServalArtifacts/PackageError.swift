public import ServalCore

/// Why a model package could not be stored.
public enum PackageError: Error, Equatable, CustomStringConvertible {
    /// The package is malformed or unsafe; the message says which entry and why.
    case invalid(String)
    /// Reading or writing files failed.
    case io(String)

    public var description: String {
        switch self {
        case .invalid(let message), .io(let message): message
        }
    }

    /// The error as users see it: invalid packages are the caller's to fix (400), I/O failures are Serval's (500).
    public var servalError: ServalError {
        switch self {
        case .invalid(let message): ServalError(.validationError, "The model package was rejected: \(message).")
        case .io(let message): ServalError(.internalFailure, "Storing the model package failed: \(message).")
        }
    }
}
