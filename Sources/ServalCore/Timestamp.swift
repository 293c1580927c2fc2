/// A point in wall-clock time with millisecond precision, stored as milliseconds since the Unix epoch.
///
/// Serval keeps its own type so that the domain does not depend on Foundation and so that every layer agrees
/// on precision. Frontends format it for their protocol (ISO 8601 for the REST API, epoch seconds for SageMaker).
public struct Timestamp: Codable, Sendable, Hashable, Comparable {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    public var millisecondsSinceEpoch: Int64

    /// Creates a timestamp.
    public init(millisecondsSinceEpoch: Int64) {
        self.millisecondsSinceEpoch = millisecondsSinceEpoch
    }

    /// Seconds since the epoch, as SageMaker's JSON protocols send them.
    public var secondsSinceEpoch: Double { Double(millisecondsSinceEpoch) / 1000 }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch
    }

    public init(from decoder: any Decoder) throws {
        self.millisecondsSinceEpoch = try decoder.singleValueContainer().decode(Int64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(millisecondsSinceEpoch)
    }
}

/// A source of wall-clock time, injected so that tests control it.
public protocol WallClock: Sendable {
    /// The current time.
    func now() -> Timestamp
}
