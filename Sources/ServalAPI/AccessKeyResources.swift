import Foundation

// Access keys in the REST API (`/access-keys`, admin only). Unlike the rest of the API these shapes use IAM's
// PascalCase names (`AccessKeyId`, `SecretAccessKey`), so that what `serval keys create` prints reads like the
// credentials AWS tools expect.

/// `POST /access-keys`.
public struct CreateAccessKeyRequest: Codable, Sendable, Equatable {
    /// `admin`, `deployer` or `invoker`.
    public var role: String
    /// What the key is for (at most 256 characters).
    public var description: String?

    enum CodingKeys: String, CodingKey {
        case role = "Role"
        case description = "Description"
    }

    /// Creates a request.
    public init(role: String, description: String? = nil) {
        self.role = role
        self.description = description
    }
}

/// An access key as the API shows it; ``secretAccessKey`` only in the answer to its creation.
public struct AccessKeyDescription: Codable, Sendable, Equatable {
    public var accessKeyId: String
    /// The secret, shown once: present only when the key has just been created.
    public var secretAccessKey: String?
    public var role: String
    public var description: String?
    /// ISO 8601.
    public var createdAt: String

    enum CodingKeys: String, CodingKey {
        case accessKeyId = "AccessKeyId"
        case secretAccessKey = "SecretAccessKey"
        case role = "Role"
        case description = "Description"
        case createdAt = "CreatedAt"
    }

    /// Creates a description.
    public init(accessKeyId: String, secretAccessKey: String?, role: String, description: String?, createdAt: String) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.role = role
        self.description = description
        self.createdAt = createdAt
    }
}

/// `GET /access-keys`: every key, oldest first, without secrets.
public struct AccessKeyList: Codable, Sendable, Equatable {
    public var accessKeys: [AccessKeyDescription]

    enum CodingKeys: String, CodingKey {
        case accessKeys = "AccessKeys"
    }

    /// Creates a list.
    public init(accessKeys: [AccessKeyDescription]) {
        self.accessKeys = accessKeys
    }
}
