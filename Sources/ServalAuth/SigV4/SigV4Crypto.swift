import Crypto
import Foundation

/// The hashing and key derivation of AWS Signature Version 4.
enum SigV4Crypto {
    /// The only signing algorithm Serval accepts.
    static let algorithm = "AWS4-HMAC-SHA256"
    /// The algorithm line of a streaming chunk's string to sign.
    static let chunkAlgorithm = "AWS4-HMAC-SHA256-PAYLOAD"
    /// The last element of every credential scope.
    static let terminator = "aws4_request"
    /// The SHA-256 of the empty string, in hex.
    static let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// The hex SHA-256 of some bytes.
    static func sha256Hex(_ bytes: [UInt8]) -> String {
        hexString(SHA256.hash(data: bytes))
    }

    /// The hex SHA-256 of a string's UTF-8 bytes.
    static func sha256Hex(_ text: String) -> String {
        sha256Hex(Array(text.utf8))
    }

    /// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
    static func signingKey(secret: AccessKeySecret, scope: SigV4CredentialScope) -> [UInt8] {
        var key = Array(("AWS4" + secret.value).utf8)
        for element in [scope.date, scope.region, scope.service, terminator] {
            key = Array(HMAC<SHA256>.authenticationCode(for: Array(element.utf8), using: SymmetricKey(data: key)))
        }
        return key
    }

    /// The hex HMAC-SHA256 of a string to sign under a signing key: the signature.
    static func signature(of stringToSign: String, using key: [UInt8]) -> String {
        hexString(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: SymmetricKey(data: key)))
    }
}
