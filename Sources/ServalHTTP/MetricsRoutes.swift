import HTTPTypes
import Hummingbird
import NIOCore
import ServalAuth
import ServalCore
public import ServalJobs
public import ServalMetrics
public import ServalRuntime
import ServalStore
public import ServalServices

/// What `GET /metrics` reports: the instruments every path records into, and the gauges read when it is scraped.
public struct MetricsSource: Sendable {
    /// The instruments.
    public var metrics: ServalMetrics
    /// The running endpoints.
    public var endpoints: any EndpointRegistry
    /// The async queues.
    public var asyncInvocations: AsyncInvocationService
    /// The variants of the transform jobs running now.
    public var transformVariants: @Sendable () -> [any VariantServing]

    /// Creates the source.
    public init(
        metrics: ServalMetrics, endpoints: any EndpointRegistry, asyncInvocations: AsyncInvocationService,
        transformVariants: @escaping @Sendable () -> [any VariantServing]
    ) {
        self.metrics = metrics
        self.endpoints = endpoints
        self.asyncInvocations = asyncInvocations
        self.transformVariants = transformVariants
    }

    /// The gauges as they are now: each variant's pending requests, instances by state and worker memory, and each
    /// endpoint's async queue by status.
    func readings() async -> [ServalMetrics.Reading] {
        var readings: [ServalMetrics.Reading] = []
        var variants: [any VariantServing] = endpoints.runningEndpoints().flatMap(\.variants)
        variants += transformVariants()
        for variant in variants {
            let spec = variant.spec
            let labels = [("endpoint", spec.endpointName), ("variant", spec.variant.name), ("model", spec.model.name)]
            let status = await variant.status()
            readings.append(.init("serval_pending_requests", labels, Double(status.queueDepth + status.inFlight)))
            let failed = if case .failed = status.state { true } else { false }
            let ready = failed ? 0 : status.readyInstances
            readings.append(.init("serval_instances", labels + [("state", "ready")], Double(ready)))
            readings.append(
                .init("serval_instances", labels + [("state", "loading")], Double(failed ? 0 : max(status.desiredInstances - ready, 0))))
            readings.append(.init("serval_instances", labels + [("state", "failed")], Double(failed ? status.desiredInstances : 0)))
            readings.append(.init("serval_worker_memory_bytes", labels, Double(await variant.workerMemoryBytes())))
        }
        if let depths = try? await asyncInvocations.queueDepths() {
            for (endpoint, depth) in depths {
                readings.append(.init("serval_async_queue_depth", [("endpoint", endpoint), ("status", "Queued")], Double(depth.queued)))
                readings.append(
                    .init("serval_async_queue_depth", [("endpoint", endpoint), ("status", "InProgress")], Double(depth.inProgress)))
            }
        }
        return readings
    }

    /// Registers `GET /metrics`, for whoever may describe resources.
    func register(on routes: ServalRoutes) {
        routes.add(.get, "/metrics", .requires(.describeResources)) { _, _ in
            let text = metrics.exposition(readings: await readings())
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
    }
}

/// Counts every request of the HTTP port in `serval_http_requests_total{route,method,status}`, by the route
/// template it matched (`/endpoints/{name}/invocations`; `unmatched` when none did), never by its raw path.
struct HTTPMetricsMiddleware: RouterMiddleware {
    typealias Context = ServalRequestContext
    let metrics: ServalMetrics

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            let response = try await next(request, context)
            metrics.httpRequest(
                route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: response.status.code)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            metrics.httpRequest(route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: status)
            throw error
        }
    }
}
