import HTTPTypes
import Hummingbird
import ServalAuth

/// The protocol a route belongs to, which decides how a refusal on it is written.
enum ErrorShape: Equatable, Sendable {
    /// Serval's REST API: `{"code", "message"}`.
    case rest
    /// SageMaker runtime (rest-json): `x-amzn-ErrorType` and `{"message"}`, AWS codes.
    case sageMakerRuntime
    /// SageMaker's control plane (JSON 1.1, `POST /` with `X-Amz-Target`): `{"__type", "message"}`.
    case sageMakerJSON
    /// The Open Inference Protocol: `{"error"}`.
    case openInference
}

/// Who may call a route: anyone, or a caller whose access key's role permits an ``ServalAuth/AccessAction``.
enum Permission: Sendable {
    /// No credentials needed (health and server metadata).
    case open
    /// A key whose role permits the action.
    case requires(AccessAction)
    /// A key whose role permits the action the request asks for; the SageMaker control plane's `POST /` names its
    /// operation in `X-Amz-Target`.
    case decided(by: @Sendable (Request) -> AccessAction)

    /// What a route nobody registered needs, so that its refusal looks like a known route's: a deployer to read
    /// (`GET`, `HEAD`) and an admin to change anything.
    static func unmatched(_ method: HTTPRequest.Method) -> AccessAction {
        method == .get || method == .head ? .describeResources : .manageAccessKeys
    }
}

/// One route of the HTTP port, as registered.
struct RegisteredRoute: Sendable {
    /// The method.
    var method: HTTPRequest.Method
    /// The path template, as Hummingbird matches it (`/endpoints/{name}/invocations`).
    var path: String
    /// Who may call it.
    var permission: Permission
    /// How its refusals are written.
    var shape: ErrorShape
}

/// The HTTP port's routes, each registered once together with its ``Permission`` and ``ErrorShape``.
///
/// With authentication on, a route's handler runs only after ``Authentication`` has checked the request's key
/// against the route's permission; routes nobody registered are checked by ``UnmatchedRouteGuard`` before their
/// 404. With authentication off every route is served as is.
final class ServalRoutes {
    /// A route's handler.
    typealias Handler = @Sendable (Request, ServalRequestContext) async throws -> Response

    /// The router the routes are added to.
    let router: Router<ServalRequestContext>
    /// The key check; `nil` when authentication is off.
    let authentication: Authentication?
    /// Every route added, in order.
    private(set) var registered: [RegisteredRoute] = []

    init(router: Router<ServalRequestContext>, authentication: Authentication?) {
        self.router = router
        self.authentication = authentication
    }

    /// Adds a route, its permission and its error shape.
    func add(
        _ method: HTTPRequest.Method, _ path: String, _ permission: Permission, shape: ErrorShape = .rest,
        use handler: @escaping Handler
    ) {
        registered.append(RegisteredRoute(method: method, path: path, permission: permission, shape: shape))
        guard let authentication else {
            router.on(RouterPath(path), method: method, use: handler)
            return
        }
        switch permission {
        case .open:
            router.on(RouterPath(path), method: method, use: handler)
        case .requires(let action):
            router.on(RouterPath(path), method: method) { request, context in
                try await authentication.authorize(request, context: context, action: action, shape: shape, next: handler)
            }
        case .decided(let decide):
            router.on(RouterPath(path), method: method) { request, context in
                try await authentication.authorize(
                    request, context: context, action: decide(request), shape: shape, next: handler)
            }
        }
    }
}

/// Refuses a request that matched no route as ``Authentication`` refuses a known route's, with
/// ``Permission/unmatched(_:)``: only a caller who could have read (or changed) the server's resources learns
/// that the route does not exist. Under `/v2` in the Open Inference Protocol's shape, elsewhere in the REST API's.
///
/// Router middlewares run after Hummingbird has matched the route (they wrap each route's responder and the
/// not-found responder); a matched route has its `endpointPath` set and passes through, to its own check.
struct UnmatchedRouteGuard: RouterMiddleware {
    typealias Context = ServalRequestContext
    let authentication: Authentication

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard context.endpointPath == nil else { return try await next(request, context) }
        return try await authentication.authorize(
            request, context: context, action: Permission.unmatched(request.method),
            shape: OIPRoutes.owns(request.uri.path) ? .openInference : .rest, next: next)
    }
}
