import Foundation
public import GRPCCore
public import Logging
import NIOCore
import ServalCore
import ServalOIPProto
import SwiftProtobuf
public import ServalServices

/// The Open Inference Protocol's `inference.GRPCInferenceService`, a thin frontend over the same services as
/// the REST routes: it converts messages to Serval's tensors and back, and maps errors to gRPC status codes once
/// (``RPCError/init(_:)``).
public struct InferenceGRPCService: Inference_GRPCInferenceService.SimpleServiceProtocol {
    let inference: InferenceService
    let repository: ModelRepositoryService
    let logger: Logger

    /// Creates the service; `logger` gets the details of unexpected failures, which clients only see as INTERNAL.
    public init(inference: InferenceService, repository: ModelRepositoryService, logger: Logger) {
        self.inference = inference
        self.repository = repository
        self.logger = logger
    }

    // MARK: Health and metadata

    public func serverLive(
        request: Inference_ServerLiveRequest, context: ServerContext
    ) async throws -> Inference_ServerLiveResponse {
        .with { $0.live = true }
    }

    public func serverReady(
        request: Inference_ServerReadyRequest, context: ServerContext
    ) async throws -> Inference_ServerReadyResponse {
        .with { $0.ready = true }
    }

    public func modelReady(
        request: Inference_ModelReadyRequest, context: ServerContext
    ) async throws -> Inference_ModelReadyResponse {
        let ready = try await mapped { () async throws(ServalError) in
            try await repository.isReady(request.name, version: request.version)
        }
        return .with { $0.ready = ready }
    }

    public func serverMetadata(
        request: Inference_ServerMetadataRequest, context: ServerContext
    ) async throws -> Inference_ServerMetadataResponse {
        .with {
            $0.name = "serval"
            $0.version = servalVersion
            $0.extensions = ["model_repository", "statistics"]
        }
    }

    public func modelMetadata(
        request: Inference_ModelMetadataRequest, context: ServerContext
    ) async throws -> Inference_ModelMetadataResponse {
        let (versions, signature, _) = try await mapped { () async throws(ServalError) in
            try await inference.metadata(model: request.name, version: request.version)
        }
        func describe(_ tensor: TensorMetadata) -> Inference_ModelMetadataResponse.TensorMetadata {
            .with {
                $0.name = tensor.name
                $0.datatype = tensor.datatype.rawValue
                $0.shape = tensor.shape.map(Int64.init)
            }
        }
        return .with {
            $0.name = request.name
            $0.versions = versions
            $0.platform = signature.platform
            $0.inputs = signature.inputs.map(describe)
            $0.outputs = signature.outputs.map(describe)
        }
    }

    // MARK: Inference

    public func modelInfer(
        request: Inference_ModelInferRequest, context: ServerContext
    ) async throws -> Inference_ModelInferResponse {
        try await mapped { () async throws(ServalError) in try await infer(request) }
    }

    public func modelStreamInfer(
        request: RPCAsyncSequence<Inference_ModelInferRequest, any Error>,
        response: RPCWriter<Inference_ModelStreamInferResponse>,
        context: ServerContext
    ) async throws {
        for try await message in request {
            let answer: Result<Inference_ModelInferResponse, ServalError>
            do {
                answer = .success(try await infer(message))
            } catch {
                answer = .failure(error)
            }
            switch answer {
            case .success(let inferResponse): try await response.write(.with { $0.inferResponse = inferResponse })
            case .failure(let error): try await response.write(.with { $0.errorMessage = error.message })
            }
        }
    }

    private func infer(_ message: Inference_ModelInferRequest) async throws(ServalError) -> Inference_ModelInferResponse {
        let request = try TensorConversion.request(from: message)
        let (response, version, capture) = try await inference.infer(
            model: message.modelName, version: message.modelVersion, request: request,
            context: InferenceContext(path: .oipGRPC, inferenceID: message.id.isEmpty ? nil : message.id))
        let answer = Inference_ModelInferResponse.with {
            $0.modelName = message.modelName
            $0.modelVersion = version
            $0.id = message.id
            $0.outputs = response.outputs.map { output in
                .with {
                    $0.name = output.name
                    $0.datatype = output.datatype.rawValue
                    $0.shape = output.shape.map(Int64.init)
                }
            }
            // tritonclient.grpc reads outputs from raw_output_contents, one entry per output, in order.
            $0.rawOutputContents = response.outputs.map { Data($0.data.readableBytesView) }
        }
        capture?.record(
            input: Self.wireBytes(message), inputType: Self.capturedContentType, output: Self.wireBytes(answer),
            outputType: Self.capturedContentType)
        return answer
    }

    /// How data capture records a call: the `ModelInferRequest` and `ModelInferResponse` messages in protobuf's
    /// binary encoding (as in the call's frames, base64 in the record), with this content type.
    static let capturedContentType = "application/grpc+proto"

    /// A message in protobuf's binary encoding.
    private static func wireBytes(_ message: some SwiftProtobuf.Message) -> ByteBuffer {
        (try? message.serializedBytes() as [UInt8]).map { ByteBuffer(bytes: $0) } ?? ByteBuffer()
    }

    // MARK: Statistics and repository

    public func modelStatistics(
        request: Inference_ModelStatisticsRequest, context: ServerContext
    ) async throws -> Inference_ModelStatisticsResponse {
        let stats = try await mappedAny { try await repository.statistics(model: request.name, version: request.version) }
        return .with { $0.modelStats = stats.map { Self.statistics(model: $0.model, version: $0.version, $0.statistics) } }
    }

    private static func statistics(
        model: String, version: String, _ statistics: InferenceStatistics
    ) -> Inference_ModelStatistics {
        func duration(_ timed: TimedCount) -> Inference_StatisticDuration {
            .with {
                $0.count = UInt64(timed.count)
                $0.ns = UInt64(max(timed.nanoseconds, 0))
            }
        }
        return .with {
            $0.name = model
            $0.version = version
            $0.lastInference = UInt64(max(statistics.lastInferenceMilliseconds, 0))
            $0.inferenceCount = UInt64(statistics.inferenceCount)
            $0.executionCount = UInt64(statistics.executionCount)
            $0.inferenceStats = .with {
                $0.success = duration(statistics.success)
                $0.fail = duration(statistics.fail)
                $0.queue = duration(statistics.queue)
                $0.computeInfer = duration(statistics.computeInfer)
            }
        }
    }

    public func repositoryIndex(
        request: Inference_RepositoryIndexRequest, context: ServerContext
    ) async throws -> Inference_RepositoryIndexResponse {
        let entries = try await mappedAny { try await repository.index(readyOnly: request.ready) }
        return .with {
            $0.models = entries.map { entry in
                .with {
                    $0.name = entry.name
                    $0.state = entry.state.rawValue
                    $0.reason = entry.reason
                }
            }
        }
    }

    public func repositoryModelLoad(
        request: Inference_RepositoryModelLoadRequest, context: ServerContext
    ) async throws -> Inference_RepositoryModelLoadResponse {
        try await mappedAny { try await repository.load(request.modelName) }
        return .init()
    }

    public func repositoryModelUnload(
        request: Inference_RepositoryModelUnloadRequest, context: ServerContext
    ) async throws -> Inference_RepositoryModelUnloadResponse {
        try await mappedAny { try await repository.unload(request.modelName) }
        return .init()
    }

    // MARK: Errors

    private func mapped<T>(_ body: () async throws(ServalError) -> T) async throws(RPCError) -> T {
        do {
            return try await body()
        } catch {
            throw RPCError(error)
        }
    }

    private func mappedAny<T>(_ body: () async throws -> T) async throws(RPCError) -> T {
        do {
            return try await body()
        } catch let error as ServalError {
            throw RPCError(error)
        } catch {
            logger.error("Unhandled error in a gRPC call", metadata: ["error": "\(String(reflecting: error))"])
            throw RPCError(code: .internalError, message: "Serval failed to handle the request; the server log has the details.")
        }
    }
}

extension RPCError {
    /// The gRPC status for a ``ServalError``, mapped once for the whole gRPC frontend.
    public init(_ error: ServalError) {
        let code: RPCError.Code =
            switch error.code {
            case .validationError: .invalidArgument
            case .notFound: .notFound
            case .conflict: .alreadyExists
            case .payloadTooLarge: .resourceExhausted
            case .modelNotReady, .serviceUnavailable: .unavailable
            case .overloaded: .resourceExhausted
            case .invocationTimeout: .deadlineExceeded
            case .modelError: error.modelStatusCode == 400 ? .invalidArgument : .internalError
            case .internalFailure: .internalError
            }
        self.init(code: code, message: error.message)
    }
}
