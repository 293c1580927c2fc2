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

extension Timestamp {
    /// The date and time in UTC (proleptic Gregorian calendar).
    public struct Components: Sendable, Equatable {
        public var year: Int64
        /// 1–12.
        public var month: Int64
        /// 1–31.
        public var day: Int64
        public var hour: Int64
        public var minute: Int64
        public var second: Int64
        public var millisecond: Int64
    }

    /// The date and time in UTC, computed without Foundation or allocation (Howard Hinnant's days-to-civil).
    public var components: Components {
        let milliseconds = millisecondsSinceEpoch
        var days = milliseconds / 86_400_000
        var rest = milliseconds % 86_400_000
        if rest < 0 {
            rest += 86_400_000
            days -= 1
        }
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return Components(
            year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month: month, day: day, hour: rest / 3_600_000,
            minute: rest / 60_000 % 60, second: rest / 1000 % 60, millisecond: rest % 1000)
    }

    /// ISO 8601 in UTC with milliseconds, e.g. `2026-11-24T06:58:35.123Z` (proleptic Gregorian calendar).
    public var iso8601: String {
        let time = components
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(time.year, 4))-\(pad(time.month, 2))-\(pad(time.day, 2))T\(pad(time.hour, 2)):\(pad(time.minute, 2)):\(pad(time.second, 2)).\(pad(time.millisecond, 3))Z"
    }
}

extension Timestamp {
    /// Parses ISO 8601 in UTC as ``iso8601`` writes it, with or without fractional seconds
    /// (`2026-11-24T06:58:35Z`, `2026-11-24T06:58:35.123Z`); `nil` for anything else.
    public init?(iso8601 text: String) {
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int64? {
            guard range.upperBound <= bytes.count else { return nil }
            var value: Int64 = 0
            for byte in bytes[range] {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int64(byte - 0x30)
            }
            return value
        }
        guard bytes.count >= 20, bytes[4] == 0x2D, bytes[7] == 0x2D, bytes[10] == 0x54, bytes[13] == 0x3A,
            bytes[16] == 0x3A, bytes.last == 0x5A,
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var milliseconds: Int64 = 0
        if bytes.count > 20 {
            // A fraction: "." and 1 or more digits before the "Z"; milliseconds are kept.
            guard bytes[19] == 0x2E, bytes.count > 21, let fraction = number(20..<(bytes.count - 1)) else { return nil }
            let digits = bytes.count - 21
            milliseconds = digits >= 3 ? fraction / Self.power10(digits - 3) : fraction * Self.power10(3 - digits)
        } else if bytes.count != 20 {
            return nil
        }
        // A civil date to days since 1970-01-01 (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        self.init(millisecondsSinceEpoch: ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + milliseconds)
    }

    private static func power10(_ exponent: Int) -> Int64 {
        (0..<min(exponent, 18)).reduce(1) { value, _ in value * 10 }
    }
}

/// A source of wall-clock time, injected so that tests control it.
public protocol WallClock: Sendable {
    /// The current time.
    func now() -> Timestamp
}
