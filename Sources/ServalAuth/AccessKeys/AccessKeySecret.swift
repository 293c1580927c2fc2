/// The secret half of an access key.
///
/// It prints as `AccessKeySecret(redacted)` in logs, string interpolation, `dump` and debugger descriptions, so that
/// a secret never reaches a log by accident; read ``value`` only to sign, verify, seal or show it once to its owner.
/// It is deliberately not `Equatable`: compare secrets with ``matches(_:)``, which takes constant time.
public struct AccessKeySecret: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The secret text. Never log it.
    public let value: String

    /// Wraps a secret.
    public init(_ value: String) {
        self.value = value
    }

    /// Whether `other` is the same secret, compared in time that does not depend on where the two differ.
    public func matches(_ other: AccessKeySecret) -> Bool {
        constantTimeEquals(value.utf8, other.value.utf8)
    }

    /// `AccessKeySecret(redacted)`.
    public var description: String { "AccessKeySecret(redacted)" }

    /// `AccessKeySecret(redacted)`.
    public var debugDescription: String { description }

    /// A mirror with no children, so that `dump` shows nothing secret.
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
