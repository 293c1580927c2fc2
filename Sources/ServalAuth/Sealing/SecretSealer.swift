import Crypto
import Foundation

/// The 256-bit key that seals access key secrets at rest.
///
/// Its file holds one line, `serval-master-key-v1 <64 hex digits>`; the caller reads and writes the file (owner-only
/// permissions) and this type encodes and decodes its contents. The key prints only as its ``fingerprint``.
public struct MasterKey: Sendable, CustomStringConvertible, CustomReflectable {
    private let bytes: [UInt8]

    /// The key for CryptoKit-style APIs.
    var key: SymmetricKey { SymmetricKey(data: bytes) }

    /// The first token of a master key file.
    public static let fileFormatTag = "serval-master-key-v1"

    /// A new random key from the system's cryptographically secure generator.
    public static func generate() -> MasterKey {
        MasterKey(uncheckedBytes: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    /// A key from exactly 32 bytes.
    public init(bytes: [UInt8]) throws(SecretSealingError) {
        guard bytes.count == 32 else {
            throw .invalidMasterKeyFile("a master key is 32 bytes, not \(bytes.count).")
        }
        self.init(uncheckedBytes: bytes)
    }

    /// Decodes a master key file's contents; surrounding whitespace and a final newline are allowed.
    public init(fileContents: String) throws(SecretSealingError) {
        let fields = fileContents.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
        guard fields.count == 2, fields[0] == Self.fileFormatTag else {
            throw .invalidMasterKeyFile("expected one line '\(Self.fileFormatTag) <64 hex digits>'.")
        }
        guard fields[1].utf8.count == 64, let bytes = decodeHex(fields[1]) else {
            throw .invalidMasterKeyFile("the key must be 64 hexadecimal digits (256 bits).")
        }
        try self.init(bytes: bytes)
    }

    private init(uncheckedBytes: [UInt8]) {
        self.bytes = uncheckedBytes
    }

    /// The file contents for this key: `serval-master-key-v1 <64 hex digits>` and a newline. Secret: write it to a
    /// file only the server can read, never to a log.
    public var fileContents: String {
        "\(Self.fileFormatTag) \(hexString(bytes))\n"
    }

    /// A short identifier of the key (16 hex digits of a SHA-256 over it), safe to log and to store beside sealed
    /// secrets, so that a wrong key file is reported as such.
    public var fingerprint: String {
        let digest = SHA256.hash(data: Array("serval-master-key-fingerprint\0".utf8) + bytes)
        return String(hexString(digest).prefix(16))
    }

    /// `MasterKey(fingerprint: ...)`.
    public var description: String { "MasterKey(fingerprint: \(fingerprint))" }

    /// A mirror showing only the fingerprint, so that `dump` prints no key bytes.
    public var customMirror: Mirror { Mirror(self, children: ["fingerprint": fingerprint], displayStyle: .struct) }
}

/// Seals access key secrets for storage with AES-256-GCM under a ``MasterKey``, binding each to its access key id.
///
/// The key id is the associated data: a sealed secret copied onto another key's record does not open. The sealed
/// form is a version byte, the 12-byte nonce, the ciphertext and the 16-byte tag.
public struct SecretSealer: Sendable {
    private let masterKey: MasterKey
    /// The master key for CryptoKit-style APIs.
    var key: SymmetricKey { masterKey.key }

    /// The version byte of the sealed format.
    static let formatVersion: UInt8 = 1

    /// Creates a sealer.
    public init(masterKey: MasterKey) {
        self.masterKey = masterKey
    }

    /// Encrypts `secret` for the access key `accessKeyID`, with a fresh random nonce.
    public func seal(_ secret: AccessKeySecret, accessKeyID: String) throws(SecretSealingError) -> SealedSecret {
        do {
            let box = try AES.GCM.seal(
                Array(secret.value.utf8), using: masterKey.key, authenticating: Self.associatedData(accessKeyID))
            guard let combined = box.combined else { throw SecretSealingError.cannotSeal }
            return SealedSecret(bytes: [Self.formatVersion] + Array(combined))
        } catch {
            throw .cannotSeal
        }
    }

    /// Decrypts a sealed secret of the access key `accessKeyID`.
    ///
    /// Fails with ``SecretSealingError/cannotOpen`` for a different master key, a different key id, or altered bytes:
    /// AES-GCM cannot tell which, and none of them must yield a secret.
    public func open(_ sealed: SealedSecret, accessKeyID: String) throws(SecretSealingError) -> AccessKeySecret {
        guard let version = sealed.bytes.first else { throw .cannotOpen }
        guard version == Self.formatVersion else { throw .unsupportedFormat(version) }
        do {
            let box = try AES.GCM.SealedBox(combined: sealed.bytes.dropFirst())
            let plaintext = try AES.GCM.open(
                box, using: masterKey.key, authenticating: Self.associatedData(accessKeyID))
            guard let text = String(validating: plaintext, as: UTF8.self) else { throw SecretSealingError.cannotOpen }
            return AccessKeySecret(text)
        } catch {
            throw .cannotOpen
        }
    }

    private static func associatedData(_ accessKeyID: String) -> [UInt8] {
        Array("serval-access-key-secret-v1\0".utf8) + Array(accessKeyID.utf8)
    }
}

/// An access key secret encrypted for storage. Not secret itself without the master key.
public struct SealedSecret: Sendable, Hashable {
    /// The sealed bytes: version, nonce, ciphertext, tag.
    public var bytes: [UInt8]

    /// Wraps sealed bytes read from storage.
    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }
}

/// Why a master key or a sealed secret could not be used.
public enum SecretSealingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The master key file is not in the expected format; the text says how.
    case invalidMasterKeyFile(String)
    /// The sealed secret is in a format version this build does not know.
    case unsupportedFormat(UInt8)
    /// Encryption failed (not expected to happen).
    case cannotSeal
    /// The sealed secret does not open: another master key, another access key id, or altered bytes.
    case cannotOpen

    /// A message for the operator.
    public var description: String {
        switch self {
        case .invalidMasterKeyFile(let reason): "The master key file is invalid: \(reason)"
        case .unsupportedFormat(let version):
            "The sealed secret has format version \(version), which this Serval does not know."
        case .cannotSeal: "The secret could not be encrypted."
        case .cannotOpen:
            "A sealed secret could not be decrypted: the master key file is not the one it was sealed with, or the "
                + "stored secret was altered."
        }
    }
}
