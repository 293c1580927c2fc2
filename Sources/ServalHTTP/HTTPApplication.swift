public import Hummingbird
public import HummingbirdCore
public import Logging
public import NIOCore
import ServalAuth

/// Serval's HTTP port as a Hummingbird application, built in one place from Serval's services: the health route,
/// the REST API, the SageMaker runtime and control plane, the Open Inference Protocol under `/v2`, `/metrics`,
/// `/access-keys` and the OpenAPI document; each route registered once with who may call it (``ServalRoutes``);
/// and the middlewares (metrics, errors, and with authentication on the check of requests no route matched).
///
/// `serval serve` runs ``application(configuration:server:onServerRunning:logger:)``; tests drive the same
/// application in process (HummingbirdTesting's `.router`).
public struct HTTPApplication: Sendable {
    /// The services the routes call.
    public var services: HTTPServices
    /// The access key service and, when authentication is on, the authenticator.
    public var accessControl: HTTPAccessControl

    /// Creates the builder.
    public init(services: HTTPServices, accessControl: HTTPAccessControl) {
        self.services = services
        self.accessControl = accessControl
    }

    /// The application: the router with every route, served by `server` at `configuration`'s address.
    public func application(
        configuration: ApplicationConfiguration = ApplicationConfiguration(), server: HTTPServerBuilder = .http1(),
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }, logger: Logger? = nil
    ) -> Application<RouterResponder<ServalRequestContext>> {
        Application(
            router: routes().router, server: server, configuration: configuration, onServerRunning: onServerRunning,
            logger: logger)
    }

    /// The router with its middlewares and every route, with what each route was registered with.
    func routes() -> ServalRoutes {
        let router = Router(context: ServalRequestContext.self)
        if let metrics = services.metrics {
            // Outermost, so that it sees the status every request ends with, refusals included.
            router.add(middleware: HTTPMetricsMiddleware(metrics: metrics.metrics))
        }
        router.add(middleware: ErrorMiddleware())
        let authentication = accessControl.authenticator.map(Authentication.init(authenticator:))
        if let authentication { router.add(middleware: UnmatchedRouteGuard(authentication: authentication)) }
        let routes = ServalRoutes(router: router, authentication: authentication)

        routes.add(.get, "/ping", .open) { _, _ in Response(status: .ok) }
        services.metrics?.register(on: routes)
        // Any key may read the API's description.
        routes.add(.get, "/openapi.json", .requires(.invoke)) { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: OpenAPIDocument.bytes))
        }

        let runtime = SageMakerRuntimeRoutes(inference: services.inference)
        routes.add(.post, "/endpoints/{name}/invocations", .requires(.invoke), shape: .sageMakerRuntime, use: runtime.invoke)
        AsyncRoutes(service: services.asyncInvocations).register(on: routes)
        TransformRoutes(service: services.transformJobs, clock: services.clock).register(on: routes)
        LogRoutes(services: services).register(on: routes)
        SageMakerControlRoutes(services: services).register(on: routes)
        RESTRoutes(services: services).register(on: routes)
        accessControl.register(on: routes)
        OIPRoutes(inference: services.inference, repository: services.repository).register(on: routes)
        return routes
    }
}
