import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServalAPI
import ServalArtifacts
import ServalAuth
import ServalCore
public import ServalJobs
public import ServalLogs
import ServalObjects
import ServalRuntime
public import ServalServices
import ServalStore

/// The services the HTTP frontend calls.
public struct HTTPServices: Sendable {
    public var models: ModelService
    public var configs: EndpointConfigService
    public var endpoints: EndpointManager
    public var inference: InferenceService
    /// The Open Inference Protocol's model repository.
    public var repository: ModelRepositoryService
    /// Asynchronous invocations.
    public var asyncInvocations: AsyncInvocationService
    /// Batch transform jobs.
    public var transformJobs: TransformJobService
    /// The tags of models, endpoint configs, endpoints and transform jobs.
    public var tags: ResourceTagService
    /// Model workers' output, for CloudWatch Logs' API and the `/logs` routes.
    public var logs: WorkerLogStore
    /// The time shown in descriptions.
    public var clock: any WallClock
    /// The SageMaker control plane's object store, account id and default region.
    public var sageMaker = SageMakerControlSettings()
    /// What `GET /metrics` reports; `nil` when metrics are off (`serve --no-metrics`).
    public var metrics: MetricsSource?
    /// The gRPC port Serval listens on, once it does; for the URLs an endpoint's description shows.
    public var grpcPort: @Sendable () -> Int? = { nil }

    /// Creates the set.
    public init(
        models: ModelService, configs: EndpointConfigService, endpoints: EndpointManager, inference: InferenceService,
        repository: ModelRepositoryService, asyncInvocations: AsyncInvocationService,
        transformJobs: TransformJobService, tags: ResourceTagService, logs: WorkerLogStore, clock: any WallClock
    ) {
        self.logs = logs
        self.repository = repository
        self.asyncInvocations = asyncInvocations
        self.transformJobs = transformJobs
        self.tags = tags
        self.clock = clock
        self.models = models
        self.configs = configs
        self.endpoints = endpoints
        self.inference = inference
    }
}

/// The SageMaker runtime contract: `POST /endpoints/{name}/invocations`.
struct SageMakerRuntimeRoutes: Sendable {
    let inference: InferenceService

    @Sendable func invoke(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        let body = try await request.body.collect(upTo: InvocationLimits.maxPayloadBytes)
        let headers = request.headers
        let invocation = InvocationRequest(
            body: body, contentType: headers[.contentType] ?? "", accept: headers[.accept] ?? "",
            customAttributes: headers[.customAttributes] ?? "")
        if let id = headers[.inferenceID], id.utf8.count > 64 {
            throw ServalError.invalid("X-Amzn-SageMaker-Inference-Id", "is longer than 64 characters.")
        }
        let (response, variant) = try await inference.invoke(
            endpoint: name, request: invocation, targetVariant: headers[.targetVariant],
            context: InferenceContext(path: .sageMaker, inferenceID: headers[.inferenceID]))
        let responseHeaders: HTTPFields = [
            .contentType: response.contentType.isEmpty ? "application/octet-stream" : response.contentType,
            .invokedProductionVariant: variant,
        ]
        return Response(status: .ok, headers: responseHeaders, body: .init(byteBuffer: response.body))
    }
}

/// Serval's own REST API for models, endpoint configs and endpoints.
struct RESTRoutes: Sendable {
    let services: HTTPServices

    /// Registers the routes: reading describes; creating and deleting manage the resource.
    func register(on routes: ServalRoutes) {
        routes.add(.post, "/models", .requires(.manageModels), use: createModel)
        routes.add(.get, "/models", .requires(.describeResources), use: listModels)
        routes.add(.get, "/models/{name}", .requires(.describeResources), use: describeModel)
        routes.add(.delete, "/models/{name}", .requires(.manageModels), use: deleteModel)
        routes.add(.post, "/endpoint-configs", .requires(.manageEndpointConfigs), use: createEndpointConfig)
        routes.add(.get, "/endpoint-configs", .requires(.describeResources), use: listEndpointConfigs)
        routes.add(.get, "/endpoint-configs/{name}", .requires(.describeResources), use: describeEndpointConfig)
        routes.add(.delete, "/endpoint-configs/{name}", .requires(.manageEndpointConfigs), use: deleteEndpointConfig)
        routes.add(.post, "/endpoints", .requires(.manageEndpoints), use: createEndpoint)
        routes.add(.get, "/endpoints", .requires(.describeResources), use: listEndpoints)
        routes.add(.get, "/endpoints/{name}", .requires(.describeResources), use: describeEndpoint)
        routes.add(.delete, "/endpoints/{name}", .requires(.manageEndpoints), use: deleteEndpoint)
    }

    // MARK: Models

    /// `POST /models`: JSON `{"name", "modelDataUrl"}` for a package in the object store or under a source root on
    /// the server, or `?name=NAME` with a tar or tar.gz body to upload one.
    @Sendable func createModel(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let model: Model
        if request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true {
            let body = try await request.decode(as: CreateModelRequest.self, context: context)
            let environment = body.environment ?? [:]
            model = try await services.models.create(
                name: body.name, source: try await packageSource(body.modelDataUrl), environment: environment,
                code: try await services.submittedCode(environment, field: "environment"))
        } else {
            guard let name = request.uri.queryParameters.get("name") else {
                throw ServalError.invalid(
                    "name", "is required: upload a package with POST /models?name=NAME, or send JSON {\"name\", \"modelDataUrl\"}.")
            }
            model = try await services.models.create(name: name, upload: request.body)
        }
        return try Self.json(ModelDescription(model), status: .created)
    }

    @Sendable func listModels(_ request: Request, context: ServalRequestContext) async throws -> Response {
        try Self.json(ModelList(models: try await services.models.list().map(ModelDescription.init)))
    }

    @Sendable func describeModel(_ request: Request, context: ServalRequestContext) async throws -> Response {
        try Self.json(ModelDescription(try await services.models.get(try context.parameters.require("name"))))
    }

    @Sendable func deleteModel(_ request: Request, context: ServalRequestContext) async throws -> Response {
        try await services.models.delete(try context.parameters.require("name"))
        return Response(status: .noContent)
    }

    // MARK: Endpoint configs

    @Sendable func createEndpointConfig(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let body = try await request.decode(as: EndpointConfigDescription.self, context: context)
        var variants: [ProductionVariant] = []
        for (index, variant) in body.variants.enumerated() {
            variants.append(try variant.productionVariant(field: "variants[\(index)]"))
        }
        let config = try await services.configs.create(
            name: body.name, variants: variants, asyncInference: body.asyncInference?.config,
            dataCapture: try body.dataCapture?.config())
        return try Self.json(EndpointConfigDescription(config), status: .created)
    }

    @Sendable func listEndpointConfigs(_ request: Request, context: ServalRequestContext) async throws -> Response {
        try Self.json(EndpointConfigList(endpointConfigs: try await services.configs.list().map(EndpointConfigDescription.init)))
    }

    @Sendable func describeEndpointConfig(_ request: Request, context: ServalRequestContext) async throws -> Response {
        try Self.json(EndpointConfigDescription(try await services.configs.get(try context.parameters.require("name"))))
    }

    @Sendable func deleteEndpointConfig(_ request: Request, context: ServalRequestContext) async throws -> Response {
        try await services.configs.delete(try context.parameters.require("name"))
        return Response(status: .noContent)
    }

    // MARK: Endpoints

    @Sendable func createEndpoint(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let body = try await request.decode(as: CreateEndpointRequest.self, context: context)
        let endpoint = try await services.endpoints.create(name: body.name, configName: body.config)
        return try Self.json(await describe(endpoint), status: .created)
    }

    /// `GET /endpoints[?status=&nameContains=&model=]`: every endpoint, or those in that status, whose name contains
    /// that text (case-insensitively), and whose config serves that model.
    @Sendable func listEndpoints(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        let status = query.get("status")
        if let status, !EndpointStatus.allCases.map(\.rawValue).contains(status) {
            throw ServalError.invalid(
                "status", "\"\(status)\" is not an endpoint status; use one of \(EndpointStatus.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        let nameContains = query.get("nameContains")?.lowercased()
        let model = query.get("model")
        var described: [EndpointDescription] = []
        for endpoint in try await services.endpoints.list() {
            if let status, endpoint.status.rawValue != status { continue }
            if let nameContains, !endpoint.name.lowercased().contains(nameContains) { continue }
            if let model {
                guard let config = try? await services.configs.get(endpoint.configName),
                    config.variants.contains(where: { $0.modelName == model })
                else { continue }
            }
            described.append(await describe(endpoint))
        }
        return try Self.json(EndpointList(endpoints: described))
    }

    @Sendable func describeEndpoint(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let endpoint = try await services.endpoints.get(try context.parameters.require("name"))
        // The URLs as this client reached Serval.
        let authority = request.head.authority ?? "127.0.0.1"
        let host = authority.hasPrefix("[") ? String(authority.prefix { $0 != "]" }) + "]" : String(authority.prefix { $0 != ":" })
        let urls = EndpointURLs(
            sageMaker: "http://\(authority)/endpoints/\(endpoint.name)/invocations",
            openInference: "http://\(authority)/v2/models/\(endpoint.name)/infer",
            grpc: "\(host):\(services.grpcPort().map(String.init) ?? "?")")
        return try Self.json(await describe(endpoint, urls: urls))
    }

    @Sendable func deleteEndpoint(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let endpoint = try await services.endpoints.delete(try context.parameters.require("name"))
        return try Self.json(await describe(endpoint), status: .accepted)
    }

    // MARK: Helpers

    private func describe(_ endpoint: Endpoint, urls: EndpointURLs? = nil) async -> EndpointDescription {
        let variants = await services.endpoints.variantStatuses(endpoint.name).map { card in
            let status = card.status
            let failed = if case .failed = status.state { true } else { false }
            let ready = failed ? 0 : status.readyInstances
            return VariantState(
                name: card.name, model: card.model, desiredInstances: status.desiredInstances, readyInstances: ready,
                loadingInstances: failed ? 0 : max(status.desiredInstances - ready, 0),
                failedInstances: failed ? status.desiredInstances : 0, queueDepth: status.queueDepth,
                inFlight: status.inFlight, requestsPerSecond: card.activity.requestsPerSecond,
                latencyP50Ms: card.activity.p50Milliseconds, latencyP99Ms: card.activity.p99Milliseconds,
                averageBatchSize: card.activity.averageBatchSize, invocationsLastMinute: card.activity.invocations,
                errorsLastMinute: card.activity.errors, workerMemoryBytes: card.workerMemoryBytes)
        }
        let queue = await services.asyncInvocations.queueDepth(endpoint: endpoint.name)
        return EndpointDescription(
            endpoint, variants: variants, asyncQueue: queue.map { AsyncQueueState(queued: $0.queued, inProgress: $0.inProgress) },
            urls: urls, dataCapture: await captureState(endpoint))
    }

    /// The endpoint config's data capture with what became of the endpoint's records.
    private func captureState(_ endpoint: Endpoint) async -> DataCaptureState? {
        guard let config = try? await services.configs.get(endpoint.configName).dataCapture else { return nil }
        let status = services.inference.captureStatus(endpoint: endpoint.name) ?? DataCaptureStatus()
        return DataCaptureState(
            status: config.enabled ? "Started" : "Stopped", destination: config.destination,
            samplingPercentage: config.samplingPercentage,
            captureModes: (config.captureInput ? ["Input"] : []) + (config.captureOutput ? ["Output"] : []),
            recordsWritten: status.recordsWritten, recordsDropped: status.recordsDropped, lastError: status.lastError,
            lastErrorAt: status.lastErrorAt?.iso8601)
    }

    /// Where `modelDataUrl` points: an object in Serval's object store (`s3://bucket/key`), or a path on the server
    /// (`/path` or `file:///path`), which ``ModelService`` reads only under the operator's source roots.
    private func packageSource(_ url: String) async throws -> PackageSource {
        if url.hasPrefix("s3://") {
            let location = try ObjectLocation(uri: url, field: "modelDataUrl")
            guard let objects = services.sageMaker.objects, let path = try await objects.localPath(of: location) else {
                throw ServalError.invalid(
                    "modelDataUrl", "\(location.uri) does not exist in Serval's object store; upload the package (tar.gz) there first.")
            }
            return .archive(path: path)
        }
        var path = url
        if path.hasPrefix("file://") { path.removeFirst("file://".count) }
        guard path.hasPrefix("/") else {
            throw ServalError.invalid(
                "modelDataUrl",
                "\"\(url)\" must be s3://BUCKET/KEY in Serval's object store, or an absolute path or file:// URL under a folder the server allows (serve --model-source-root); to send a package from your machine, upload it with POST /models?name=NAME.")
        }
        return .userPath(path)
    }

    /// A time in a query parameter: ISO 8601 (`2026-11-24T06:58:35Z`) or epoch seconds.
    static func time(_ text: String, field: String) throws(ServalError) -> Timestamp {
        if let seconds = Double(text), seconds.isFinite {
            return Timestamp(millisecondsSinceEpoch: Int64((seconds * 1000).rounded()))
        }
        guard let time = Timestamp(iso8601: text) else {
            throw .invalid(field, "\"\(text)\" is neither an ISO 8601 time nor epoch seconds.")
        }
        return time
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
