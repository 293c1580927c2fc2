public import ServalAuth
import ServalCore

/// An access key as stored: its record, an optional description, and its secret sealed with the master key
/// (``ServalAuth/SecretSealer``). The plaintext secret is never stored.
public struct StoredAccessKey: Sendable, Equatable {
    /// The id, role and creation time.
    public var key: AccessKey
    /// What the key is for, as its creator wrote it.
    public var description: String?
    /// The secret, sealed for ``AccessKey/id``.
    public var sealedSecret: SealedSecret

    /// Creates a stored key.
    public init(key: AccessKey, description: String?, sealedSecret: SealedSecret) {
        self.key = key
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
