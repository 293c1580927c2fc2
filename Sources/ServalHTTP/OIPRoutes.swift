import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServalArtifacts
import ServalAuth
import ServalCore
import ServalOIP
import ServalServices

/// The Open Inference Protocol v2 over REST, on Serval's main port: health, server and model metadata,
/// readiness, inference (JSON tensors and Triton's binary tensor extension), statistics and the model
/// repository extension. Every error under `/v2`, unknown routes included, is `{"error": "..."}`
/// (``errorResponse(for:)``, applied by ``ErrorMiddleware``).
struct OIPRoutes: Sendable {
    let inference: InferenceService
    let repository: ModelRepositoryService

    /// The protocol extensions Serval speaks.
    static let extensions = ["binary_tensor_data", "model_repository", "statistics"]

    /// Registers every route under `/v2`: health and server metadata are open; what an inference client needs
    /// (metadata, readiness, config, inference) invokes; statistics and the repository index describe; loading
    /// and unloading manage endpoints.
    func register(on routes: ServalRoutes) {
        func add(_ method: HTTPRequest.Method, _ path: String, _ permission: Permission, use handler: @escaping ServalRoutes.Handler) {
            routes.add(method, "/v2" + path, permission, shape: .openInference, use: handler)
        }
        add(.get, "", .open, use: serverMetadata)
        add(.get, "/health/live", .open) { _, _ in try Self.json(OIPHealth(live: true)) }
        add(.get, "/health/ready", .open) { _, _ in try Self.json(OIPHealth(ready: true)) }
        add(.get, "/models/stats", .requires(.describeResources), use: allStatistics)
        for prefix in ["/models/{model}", "/models/{model}/versions/{version}"] {
            add(.get, prefix, .requires(.invoke), use: modelMetadata)
            add(.get, prefix + "/ready", .requires(.invoke), use: modelReady)
            add(.get, prefix + "/config", .requires(.invoke), use: modelConfig)
            add(.post, prefix + "/infer", .requires(.invoke), use: infer)
            add(.get, prefix + "/stats", .requires(.describeResources), use: statistics)
        }
        add(.post, "/repository/index", .requires(.describeResources), use: repositoryIndex)
        add(.post, "/repository/models/{model}/load", .requires(.manageEndpoints), use: load)
        add(.post, "/repository/models/{model}/unload", .requires(.manageEndpoints), use: unload)
    }

    // MARK: Health and metadata

    @Sendable func serverMetadata(_ request: Request, context: ServalRequestContext) async throws -> Response {
        try Self.json(OIPServerMetadata(name: "serval", version: servalVersion, extensions: Self.extensions))
    }

    @Sendable func modelMetadata(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let model = try context.parameters.require("model")
        let (versions, signature, _) = try await inference.metadata(model: model, version: context.parameters.get("version"))
        return try Self.json(OIPModelMetadata(name: model, versions: versions, signature: signature))
    }

    /// Triton's model configuration (``OIPModelConfig``); 503 while the model loads.
    @Sendable func modelConfig(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let model = try context.parameters.require("model")
        let (_, signature, maxBatchSize) = try await inference.metadata(model: model, version: context.parameters.get("version"))
        return try Self.json(OIPModelConfig(name: model, signature: signature, maxBatchSize: maxBatchSize))
    }

    /// 200 `{"name", "ready": true}` when the model can serve; 400 (as Triton answers) `{"error"}` while it loads or
    /// after it failed; 404 when unknown.
    @Sendable func modelReady(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let model = try context.parameters.require("model")
        guard try await repository.isReady(model, version: context.parameters.get("version")) else {
            return Self.errorResponse(
                status: .badRequest,
                message: "Model \"\(model)\" is not ready: it is loading, or it failed; POST /v2/repository/index shows its state and why.")
        }
        return try Self.json(OIPModelReady(name: model, ready: true))
    }

    // MARK: Inference

    @Sendable func infer(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let model = try context.parameters.require("model")
        let version = context.parameters.get("version")
        let headerLength = try OIPCodec.parseHeaderLength(request.headers[.inferenceHeaderContentLength])
        let coding = try ContentCoding(contentEncoding: request.headers[.contentEncoding])
        // Content-Length counts the compressed bytes, so it says nothing about the decoded body's size.
        let contentLength = coding == nil ? request.headers[.contentLength].flatMap { Int($0) } : nil
        var decoder = try OIPInferBodyDecoder(
            headerLength: headerLength, contentLength: contentLength, maxBodyBytes: InvocationLimits.maxTensorRequestBytes)
        if let coding {
            try await Self.decompress(request.body, coding: coding, into: &decoder)
        } else {
            for try await chunk in request.body {
                try decoder.feed(chunk)
            }
        }
        let decoded = try decoder.finish()
        let (response, servedVersion, capture) = try await inference.infer(
            model: model, version: version, request: decoded.request,
            context: InferenceContext(path: .oipREST, inferenceID: decoded.request.id.isEmpty ? nil : decoded.request.id))
        var body = ByteBuffer()
        let jsonLength = try OIPCodec.encodeInferResponse(
            modelName: model, modelVersion: servedVersion, id: decoded.request.id, outputs: response.outputs,
            encoding: decoded.outputEncoding, into: &body)
        var headers: HTTPFields = [:]
        if let jsonLength {
            headers[.contentType] = "application/octet-stream"
            headers[.inferenceHeaderContentLength] = String(jsonLength)
        } else {
            headers[.contentType] = "application/json"
        }
        capture?.record(
            input: decoder.receivedBody,
            inputType: headerLength.map(Self.binaryContentType) ?? request.headers[.contentType] ?? "application/json",
            output: body, outputType: jsonLength.map(Self.binaryContentType) ?? "application/json")
        if body.readableBytes >= ContentCoding.minimumCompressedBytes,
            let coding = ContentCoding.preferred(acceptEncoding: request.headers[.acceptEncoding])
        {
            body = coding.encode(body)
            headers[.contentEncoding] = coding.name
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }

    /// How data capture records a body with binary tensors (Triton's binary extension): SageMaker's content type for
    /// it, whose `json-header-size` says where the JSON header ends (`Inference-Header-Content-Length`).
    static func binaryContentType(headerLength: Int) -> String {
        "application/vnd.sagemaker-triton.binary+json;json-header-size=\(headerLength)"
    }

    /// Feeds a compressed request body to `decoder` as it decompresses. Both sides are bounded by the request limit:
    /// the decompressed bytes (a bomb is 413 once it passes the limit) and the compressed ones (a stream of empty
    /// blocks cannot go on for ever).
    private static func decompress(
        _ body: RequestBody, coding: ContentCoding, into decoder: inout OIPInferBodyDecoder
    ) async throws {
        let limit = InvocationLimits.maxTensorRequestBytes
        let inflater = try coding.decoder(maxBytes: limit)
        var received = 0
        for try await chunk in body {
            received += chunk.readableBytes
            guard received <= limit else { throw coding.requestError(.tooLarge(""), limit: limit) }
            var plain = ByteBuffer()
            do {
                try inflater.decode(chunk, into: &plain)
            } catch {
                throw coding.requestError(error, limit: limit)
            }
            if plain.readableBytes > 0 { try decoder.feed(plain) }
        }
        do {
            try inflater.finish()
        } catch {
            throw coding.requestError(error, limit: limit)
        }
    }

    // MARK: Statistics

    @Sendable func statistics(_ request: Request, context: ServalRequestContext) async throws -> Response {
        try await statistics(model: context.parameters.require("model"), version: context.parameters.get("version"))
    }

    @Sendable func allStatistics(_ request: Request, context: ServalRequestContext) async throws -> Response {
        try await statistics(model: nil, version: nil)
    }

    private func statistics(model: String?, version: String?) async throws -> Response {
        let stats = try await repository.statistics(model: model, version: version)
        return try Self.json(
            OIPStatistics(modelStats: stats.map { OIPStatistics.ModelStats(name: $0.model, version: $0.version, statistics: $0.statistics) }))
    }

    // MARK: Model repository

    @Sendable func repositoryIndex(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        var readyOnly = false  // Triton: `"ready": true` keeps the ready models; false or absent lists them all
        if body.readableBytes > 0 {
            readyOnly = try JSONDecoder().decode(OIPRepositoryIndexRequest.self, from: Data(body.readableBytesView)).ready ?? false
        }
        let entries = try await repository.index(readyOnly: readyOnly)
            .map { OIPRepositoryEntry(name: $0.name, state: $0.state.rawValue, reason: $0.reason) }
        return try Self.json(entries)
    }

    @Sendable func load(_ request: Request, context: ServalRequestContext) async throws -> Response {
        try await repository.load(try context.parameters.require("model"))
        return Response(status: .ok)
    }

    @Sendable func unload(_ request: Request, context: ServalRequestContext) async throws -> Response {
        try await repository.unload(try context.parameters.require("model"))
        return Response(status: .ok)
    }

    private static func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}

extension OIPRoutes {
    /// Whether `path` is under `/v2`, where errors take the Open Inference Protocol's shape.
    static func owns(_ path: String) -> Bool {
        path == "/v2" || path.hasPrefix("/v2/")
    }

    /// An error in the Open Inference Protocol's shape: `{"error": "..."}` with the status for its code, and
    /// `Retry-After` when a retry may succeed.
    static func errorResponse(for error: ServalError) -> Response {
        var response = errorResponse(status: status(for: error), message: error.message)
        if let seconds = error.retryAfterSeconds { response.headers[.retryAfter] = String(seconds) }
        return response
    }

    private static func errorResponse(status: HTTPResponse.Status, message: String) -> Response {
        let body = (try? JSONEncoder().encode(OIPErrorBody(error: message))) ?? Data()
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// The HTTP status for each error in the Open Inference Protocol. A model that is loading answers 503, like one
    /// that failed. A model's own error answers what Triton answers for a backend's: 400 when it rejected the input
    /// (`INVALID_ARG`), 500 when it raised (`INTERNAL`).
    static func status(for error: ServalError) -> HTTPResponse.Status {
        switch error.code {
        case .validationError: .badRequest
        case .notFound: .notFound
        case .conflict: .conflict
        case .payloadTooLarge: .contentTooLarge
        case .modelNotReady, .serviceUnavailable, .overloaded: .serviceUnavailable
        case .invocationTimeout: .gatewayTimeout
        case .modelError: error.modelStatusCode == 400 ? .badRequest : .internalServerError
        case .internalFailure: .internalServerError
        }
    }
}

extension HTTPField.Name {
    static let inferenceHeaderContentLength = Self("Inference-Header-Content-Length")!
}
