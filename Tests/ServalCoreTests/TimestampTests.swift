import Foundation
import ServalCore
import Testing

@Suite("Timestamp")
struct TimestampTests {
    @Test("iso8601 matches Foundation's formatting from 1600 to 9999, leap days and negative times included")
    func iso8601() {
        var generator = SystemRandomNumberGenerator()
        var samples: [Int64] = [0, -1, 951_782_400_000, 1_709_164_800_123, 253_402_300_799_999, -11_676_096_000_000]
        for _ in 0..<2000 { samples.append(Int64.random(in: -11_676_096_000_000...253_402_300_799_999, using: &generator)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.calendar = Calendar(identifier: .gregorian)
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
        for milliseconds in samples {
            let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
            #expect(Timestamp(millisecondsSinceEpoch: milliseconds).iso8601 == formatter.string(from: date), "\(milliseconds)")
        }
    }

    @Test("parsing iso8601 inverts it, with or without fractions, and refuses what is not one")
    func parseISO8601() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let milliseconds = Int64.random(in: -11_676_096_000_000...253_402_300_799_999, using: &generator)
            let time = Timestamp(millisecondsSinceEpoch: milliseconds)
            #expect(Timestamp(iso8601: time.iso8601) == time, "\(time.iso8601)")
        }
        #expect(Timestamp(iso8601: "2015-08-30T12:36:00Z")?.millisecondsSinceEpoch == 1_440_938_160_000)
        #expect(Timestamp(iso8601: "2015-08-30T12:36:00.5Z")?.millisecondsSinceEpoch == 1_440_938_160_500)
        #expect(Timestamp(iso8601: "2015-08-30T12:36:00.123456Z")?.millisecondsSinceEpoch == 1_440_938_160_123)
        for bad in ["", "2015-08-30", "2015-08-30T12:36:00", "2015-13-30T12:36:00Z", "2015-08-30T12:36:00.Z",
            "2015-08-30 12:36:00Z", "2015-08-30T12:36:00+01:00", "x015-08-30T12:36:00Z"]
        {
            #expect(Timestamp(iso8601: bad) == nil, "\(bad)")
        }
    }
}
