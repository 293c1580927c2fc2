import Foundation
import Hummingbird
public import ServalAPI
public import ServalAuth
import ServalCore
public import ServalServices
import ServalStore

/// Access keys on the HTTP port: the key management service behind `/access-keys`, and the authenticator that
/// checks every request (but those of the open routes) when authentication is on.
public struct HTTPAccessControl: Sendable {
    /// Creates, lists and deletes keys.
    public var keys: AccessKeyService
    /// Checks requests; `nil` when authentication is off.
    public var authenticator: RequestAuthenticator?

    /// Creates the access control.
    public init(keys: AccessKeyService, authenticator: RequestAuthenticator?) {
        self.keys = keys
        self.authenticator = authenticator
    }

    /// Registers the `/access-keys` routes, for admins only.
    func register(on routes: ServalRoutes) {
        let keys = AccessKeyRoutes(keys: keys)
        routes.add(.post, "/access-keys", .requires(.manageAccessKeys), use: keys.create)
        routes.add(.get, "/access-keys", .requires(.manageAccessKeys), use: keys.list)
        routes.add(.delete, "/access-keys/{id}", .requires(.manageAccessKeys), use: keys.delete)
    }
}

/// `/access-keys`: create (the answer holds the secret, once), list and delete. Admin only when authentication is on.
struct AccessKeyRoutes: Sendable {
    let keys: AccessKeyService

    @Sendable func create(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let body = try await request.decode(as: CreateAccessKeyRequest.self, context: context)
        let role = try AccessKeyRole(parsing: body.role)
        let new = try await keys.create(role: role, description: body.description)
        return try RESTRoutes.json(
            AccessKeyDescription(new.key, description: body.description, secret: new.secret), status: .created)
    }

    @Sendable func list(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let stored = try await keys.list()
        return try RESTRoutes.json(
            AccessKeyList(accessKeys: stored.map { AccessKeyDescription($0.key, description: $0.description, secret: nil) }))
    }

    @Sendable func delete(_ request: Request, context: ServalRequestContext) async throws -> Response {
        try await keys.delete(id: try context.parameters.require("id"))
        return Response(status: .noContent)
    }
}

extension AccessKeyRole {
    /// Parses `admin`, `deployer` or `invoker`, with a message listing them otherwise.
    public init(parsing text: String) throws(ServalError) {
        guard let role = AccessKeyRole(rawValue: text.lowercased()) else {
            throw .invalid(
                "Role", "\"\(text)\" is not a role; use one of \(AccessKeyRole.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        self = role
    }
}

extension AccessKeyDescription {
    /// Describes a key; `secret` only in the answer to its creation.
    public init(_ key: AccessKey, description: String?, secret: AccessKeySecret?) {
        self.init(
            accessKeyId: key.id, secretAccessKey: secret?.value, role: key.role.rawValue,
            description: description.flatMap { $0.isEmpty ? nil : $0 }, createdAt: key.createdAt.iso8601)
    }
}
