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
}
