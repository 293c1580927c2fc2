public import ServalCore

/// An access key: the public id a client presents, its role and when it was created. The secret is kept apart,
/// sealed (see ``SecretSealer``), and shown only once, when the key is created.
public struct AccessKey: Sendable, Hashable, Codable {
    /// The access key id: `SK` and 18 characters of uppercase base32, e.g. `SKQ3V7X2MZ4HJ5NB6RTA`.
    public var id: String
    /// What the key may do.
    public var role: AccessKeyRole
    /// When the key was created.
    public var createdAt: Timestamp

    /// Creates a key record.
    public init(id: String, role: AccessKeyRole, createdAt: Timestamp) {
        self.id = id
        self.role = role
        self.createdAt = createdAt
    }

    /// The prefix of every access key id Serval generates.
    public static let idPrefix = "SK"
    /// The length of an access key id.
    public static let idLength = 20
    /// The length of a secret access key.
    public static let secretLength = 40

    private static let base32Alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)
    private static let secretAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Generates a new key with a random id and secret, from the system's cryptographically secure generator.
    public static func generate(role: AccessKeyRole, createdAt: Timestamp) -> NewAccessKey {
        var generator = SystemRandomNumberGenerator()
        return generate(role: role, createdAt: createdAt, using: &generator)
    }

    /// Generates a new key from `generator`, which must be cryptographically secure outside tests.
    ///
    /// The id carries 90 random bits (18 base32 characters); the secret 240 (40 characters of the base64 alphabet,
    /// as AWS secrets look).
    public static func generate(
        role: AccessKeyRole, createdAt: Timestamp, using generator: inout some RandomNumberGenerator
    ) -> NewAccessKey {
        let idBody = randomBytes(idLength - idPrefix.utf8.count, using: &generator).map { base32Alphabet[Int($0 & 31)] }
        let secret = randomBytes(secretLength, using: &generator).map { secretAlphabet[Int($0 & 63)] }
        return NewAccessKey(
            key: AccessKey(id: idPrefix + String(decoding: idBody, as: UTF8.self), role: role, createdAt: createdAt),
            secret: AccessKeySecret(String(decoding: secret, as: UTF8.self)))
    }

    /// Whether `id` has the form of a Serval access key id: `SK` and 18 characters of `A-Z2-7`.
    ///
    /// Lets a store skip looking up text that cannot be a key id; a well-formed id may still be unknown.
    public static func isWellFormedID(_ id: String) -> Bool {
        id.utf8.count == idLength && id.hasPrefix(idPrefix)
            && id.utf8.dropFirst(idPrefix.utf8.count).allSatisfy(base32Alphabet.contains)
    }

    private static func randomBytes(_ count: Int, using generator: inout some RandomNumberGenerator) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count + 7)
        while bytes.count < count {
            withUnsafeBytes(of: generator.next() as UInt64) { bytes += $0 }
        }
        return Array(bytes.prefix(count))
    }
}

/// A freshly created access key with its secret: what `serval keys create` prints, once.
public struct NewAccessKey: Sendable {
    /// The key record to store.
    public var key: AccessKey
    /// The secret to show to the key's owner and to seal for storage. It is never stored in clear.
    public var secret: AccessKeySecret

    /// Creates the pair.
    public init(key: AccessKey, secret: AccessKeySecret) {
        self.key = key
        self.secret = secret
    }
}
