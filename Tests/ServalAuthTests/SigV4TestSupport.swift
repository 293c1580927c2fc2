import Crypto
import Foundation
import ServalAuth
import ServalCore
import Testing

enum SigV4TestSupport {
    /// The lowercase hex SHA-256 of a string's UTF-8 bytes.
    static func sha256Hex(_ text: String) -> String {
        sha256Hex(Array(text.utf8))
    }

    /// The lowercase hex SHA-256 of some bytes.
    static func sha256Hex(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map {
            String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16)
        }
        .joined()
    }

    /// The failure `body` throws, or `nil` if it succeeds.
    static func failure<T>(_ body: () throws -> T) -> AuthenticationFailure? {
        do {
            _ = try body()
            return nil
        } catch let failure as AuthenticationFailure {
            return failure
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }
}

extension Timestamp {
    /// This time moved by some seconds.
    func adding(seconds: Int64) -> Timestamp {
        Timestamp(millisecondsSinceEpoch: millisecondsSinceEpoch + seconds * 1000)
    }
}
