import ServalCore

/// A SigV4 request time, kept both as a ``Timestamp`` and as the `yyyyMMdd'T'HHmmss'Z'` text that is signed.
struct AmzDate: Sendable, Equatable {
    /// The instant, to the second.
    let timestamp: Timestamp
    /// The ISO 8601 basic form SigV4 signs, e.g. `20150830T123600Z`.
    let basic: String

    /// The date part of ``basic`` (`yyyyMMdd`), which the credential scope must repeat.
    var day: Substring { basic.prefix(8) }

    /// The time `timestamp` names, truncated to the second.
    init(_ timestamp: Timestamp) {
        let seconds = Self.floorDivide(timestamp.millisecondsSinceEpoch, 1000)
        self.timestamp = Timestamp(millisecondsSinceEpoch: seconds * 1000)
        // `Timestamp.iso8601` is `YYYY-MM-DDTHH:MM:SS.mmmZ`; keep the digits SigV4 wants.
        let text = Array(self.timestamp.iso8601.utf8)
        let ranges: [Range<Int>] = [0..<4, 5..<7, 8..<10, 10..<11, 11..<13, 14..<16, 17..<19, 23..<24]
        var kept: [UInt8] = []
        for range in ranges { kept += text[range] }
        self.basic = String(decoding: kept, as: UTF8.self)
    }

    /// Parses the basic form `yyyyMMdd'T'HHmmss'Z'` (the `X-Amz-Date` header and query parameter).
    init?(basic text: some StringProtocol) {
        let bytes = Array(text.utf8)
        guard bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z"),
            let year = Self.number(bytes[0..<4]), let month = Self.number(bytes[4..<6]),
            let day = Self.number(bytes[6..<8]),
            let hour = Self.number(bytes[9..<11]), let minute = Self.number(bytes[11..<13]),
            let second = Self.number(bytes[13..<15])
        else { return nil }
        self.init(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        // Reject dates that do not exist (2015-02-30, 25:00:00) by formatting back.
        guard basic == String(text) else { return nil }
    }

    /// Parses an HTTP `Date` header in the IMF-fixdate form, e.g. `Fri, 24 May 2013 00:00:00 GMT`.
    init?(httpDate text: some StringProtocol) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 6, parts[0].hasSuffix(","), parts[5] == "GMT", parts[1].utf8.count == 2,
            parts[3].utf8.count == 4, let month = Self.months.firstIndex(of: String(parts[2]))
        else { return nil }
        let clock = parts[4].split(separator: ":", omittingEmptySubsequences: false)
        guard clock.count == 3, clock.allSatisfy({ $0.utf8.count == 2 }) else { return nil }
        let monthDigits = month < 9 ? "0\(month + 1)" : "\(month + 1)"
        self.init(basic: "\(parts[3])\(monthDigits)\(parts[1])T\(clock[0])\(clock[1])\(clock[2])Z")
    }

    private init(year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64) {
        let days = Self.daysSinceEpoch(year: year, month: month, day: day)
        self.init(Timestamp(millisecondsSinceEpoch: ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000))
    }

    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    private static func number(_ digits: some Collection<UInt8>) -> Int64? {
        guard !digits.isEmpty else { return nil }
        var value: Int64 = 0
        for digit in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) else { return nil }
            value = value * 10 + Int64(digit - UInt8(ascii: "0"))
        }
        return value
    }

    /// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm, proleptic Gregorian calendar).
    private static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
        let quotient = value / divisor
        return value % divisor < 0 ? quotient - 1 : quotient
    }
}
