import NIOHTTP1
public import ServalAPI

extension ServalClient {
    /// Creates an access key (admin only when authentication is on); the answer holds its secret, once.
    public func createAccessKey(role: String, description: String?) async throws -> AccessKeyDescription {
        try await decode(send(.POST, "/access-keys", json: CreateAccessKeyRequest(role: role, description: description)))
    }

    /// Every access key, oldest first, without secrets.
    public func accessKeys() async throws -> [AccessKeyDescription] {
        try await decode(send(.GET, "/access-keys"), as: AccessKeyList.self).accessKeys
    }

    /// Deletes an access key.
    public func deleteAccessKey(_ id: String) async throws {
        try check(await send(.DELETE, "/access-keys/\(escape(id))"))
    }
}
