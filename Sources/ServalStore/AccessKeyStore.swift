public import ServalCore

/// An access key as stored: its id, role and creation time, an optional description, and its secret sealed with
/// the master key. The plaintext secret is never stored.
///
/// The store keeps these as plain values; what a role permits and how a secret is sealed and opened are
/// `ServalAuth`'s (`AccessKeyRole`, `SecretSealer`), applied by the access key service.
public struct StoredAccessKey: Sendable, Equatable {
    /// The access key id.
    public var id: String
    /// The role's name (`admin`, `deployer`, `invoker`).
    public var role: String
    /// When the key was created.
    public var createdAt: Timestamp
    /// What the key is for, as its creator wrote it.
    public var description: String?
    /// The secret, sealed for ``id``.
    public var sealedSecret: [UInt8]

    /// Creates a stored key.
    public init(id: String, role: String, createdAt: Timestamp, description: String?, sealedSecret: [UInt8]) {
        self.id = id
        self.role = role
        self.createdAt = createdAt
        self.description = description
        self.sealedSecret = sealedSecret
    }
}

/// Where access keys are kept.
///
/// Creating an id that exists throws ``ServalError/Code/conflict``; reads of missing ids return `nil`; deletes
/// return whether something was deleted.
public protocol AccessKeyStore: Sendable {
    /// Stores a new access key.
    func createAccessKey(_ key: StoredAccessKey) async throws
    /// The access key `id`, if any.
    func accessKey(id: String) async throws -> StoredAccessKey?
    /// Every access key, oldest first (ids break ties).
    func accessKeys() async throws -> [StoredAccessKey]
    /// Deletes an access key; requests signed with it fail from then on.
    func deleteAccessKey(id: String) async throws -> Bool
}
