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
        guard bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z") else { return nil }
        // The extended form Timestamp parses: yyyy-MM-dd'T'HH:mm:ss'Z'.
        let extended = "\(text.prefix(4))-\(text.dropFirst(4).prefix(2))-\(text.dropFirst(6).prefix(2))T\(text.dropFirst(9).prefix(2)):\(text.dropFirst(11).prefix(2)):\(text.dropFirst(13).prefix(2))Z"
        guard let timestamp = Timestamp(iso8601: extended) else { return nil }
        self.init(timestamp)
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

    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
        let quotient = value / divisor
        return value % divisor < 0 ? quotient - 1 : quotient
    }
}
