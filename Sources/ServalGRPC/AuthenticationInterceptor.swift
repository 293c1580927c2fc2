public import GRPCCore
import Logging
public import ServalAuth

/// Authenticates gRPC calls when authentication is on: metadata `authorization: Bearer ACCESS_KEY_ID:SECRET`, the
/// same access keys as the REST API.
///
/// `ServerLive`, `ServerReady` and `ServerMetadata` stay open, like `/v2/health/*` and `/v2` over REST; inference,
/// model metadata and readiness need a key that may invoke. Refusals are `UNAUTHENTICATED` (no, unreadable or
/// wrong credentials) and `PERMISSION_DENIED` (a role without the right). The metadata value is never logged.
public struct AuthenticationInterceptor: ServerInterceptor {
    let authenticator: RequestAuthenticator
    let logger: Logger

    /// Creates the interceptor.
    public init(authenticator: RequestAuthenticator, logger: Logger) {
        self.authenticator = authenticator
        self.logger = logger
    }

    /// The methods that need no credentials.
    static let openMethods: Set<String> = ["ServerLive", "ServerReady", "ServerMetadata"]

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let method = context.descriptor.method
        if Self.openMethods.contains(method) { return try await next(request, context) }
        let values = request.metadata[stringValues: "authorization"].map { String($0) }
        switch try await authenticator.bearer(authorization: values) {
        case .failure(let failure):
            logger.notice("gRPC call refused: not authenticated", metadata: ["method": "\(method)", "reason": "\(failure)"])
            throw RPCError(code: .unauthenticated, message: failure.message)
        case .success(let key):
            let action = Self.action(method)
            guard key.role.permits(action) else {
                logger.notice(
                    "gRPC call refused: role not permitted",
                    metadata: ["method": "\(method)", "access_key": "\(key.id)", "role": "\(key.role.rawValue)"])
                throw RPCError(
                    code: .permissionDenied,
                    message: AccessDenied(accessKeyID: key.id, role: key.role, action: action).message)
            }
            return try await next(request, context)
        }
    }

    /// What each method needs, as over REST: inference and what an inference client reads need `invoke`; loading
    /// and unloading manage endpoints; statistics, the repository index and anything else need a deployer.
    static func action(_ method: String) -> AccessAction {
        switch method {
        case "ModelInfer", "ModelStreamInfer", "ModelMetadata", "ModelReady": .invoke
        case "RepositoryModelLoad", "RepositoryModelUnload": .manageEndpoints
        default: .describeResources
        }
    }
}
