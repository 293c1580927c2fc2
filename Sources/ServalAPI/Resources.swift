import Foundation
public import ServalCore

/// The JSON shapes of Serval's REST API. Field names are camelCase; times are ISO 8601 strings in UTC.
///
/// These types are the contract between the server and every client; `openapi.json` documents the same shapes.

/// `POST /models` with a JSON body: a model whose package is referenced, not uploaded.
public struct CreateModelRequest: Codable, Sendable, Equatable {
    /// The model's name.
    public var name: String
    /// Where the package is: `s3://bucket/key` of a (gzipped) tar in Serval's object store, or an absolute path or
    /// `file://` URL of a folder or a (gzipped) tar on the server, under a `serve --model-source-root` folder.
    public var modelDataUrl: String
    /// Environment variables for the model's workers.
    public var environment: [String: String]?

    /// Creates a request.
    public init(name: String, modelDataUrl: String, environment: [String: String]? = nil) {
        self.name = name
        self.modelDataUrl = modelDataUrl
        self.environment = environment
    }
}

/// A model as the API shows it.
public struct ModelDescription: Codable, Sendable, Equatable {
    public var name: String
    /// The framework file found: `sklearn`, `xgboost`, `onnx`, `torchscript` or `custom`.
    public var artifact: String
    /// Whether the package has `code/inference.py`.
    public var hasInferenceCode: Bool
    /// Whether the package has `code/requirements.txt`.
    public var hasRequirements: Bool
    /// SHA-256 of the package as received.
    public var packageDigest: String
    /// Unpacked size in bytes.
    public var packageSizeBytes: Int64
    public var environment: [String: String]
    public var createdAt: String

    /// Describes a model.
    public init(_ model: Model) {
        name = model.name
        artifact = model.package.artifact.rawValue
        hasInferenceCode = model.package.hasInferenceCode
        hasRequirements = model.package.requirements != nil
        packageDigest = model.package.digest
        packageSizeBytes = model.package.sizeBytes
        environment = model.environment
        createdAt = model.createdAt.iso8601
    }
}

/// One production variant, as sent to `POST /endpoint-configs` and shown back.
public struct VariantConfig: Codable, Sendable, Equatable {
    /// The variant's name; default `AllTraffic`.
    public var name: String?
    /// The model it serves.
    public var model: String
    /// Worker instances; default 1.
    public var instanceCount: Int?
    /// Traffic weight; default 1.
    public var weight: Double?
    /// Most items per batch; default 1 (batching off).
    public var maxBatchSize: Int?
    /// How long the oldest item waits for a fuller batch, in milliseconds (fractions allowed); default 0.
    public var maxQueueDelayMs: Double?
    /// Most queued items before requests are refused with 503; default 1024.
    public var maxQueueSize: Int?
    /// Seconds a batch may run before its worker is restarted; default 60.
    public var invocationTimeoutSeconds: Int?
    /// Seconds a worker may take to load the model; default 240.
    public var modelLoadTimeoutSeconds: Int?

    /// Creates a variant config.
    public init(
        name: String? = nil, model: String, instanceCount: Int? = nil, weight: Double? = nil,
        maxBatchSize: Int? = nil, maxQueueDelayMs: Double? = nil, maxQueueSize: Int? = nil,
        invocationTimeoutSeconds: Int? = nil, modelLoadTimeoutSeconds: Int? = nil
    ) {
        self.name = name
        self.model = model
        self.instanceCount = instanceCount
        self.weight = weight
        self.maxBatchSize = maxBatchSize
        self.maxQueueDelayMs = maxQueueDelayMs
        self.maxQueueSize = maxQueueSize
        self.invocationTimeoutSeconds = invocationTimeoutSeconds
        self.modelLoadTimeoutSeconds = modelLoadTimeoutSeconds
    }

    /// Shows a stored variant with every default filled in.
    public init(_ variant: ProductionVariant) {
        self.init(
            name: variant.name, model: variant.modelName, instanceCount: variant.instanceCount, weight: variant.weight,
            maxBatchSize: variant.batching.maxBatchSize,
            maxQueueDelayMs: Double(variant.batching.maxQueueDelayMicroseconds) / 1000,
            maxQueueSize: variant.batching.maxQueueSize, invocationTimeoutSeconds: variant.invocationTimeoutSeconds,
            modelLoadTimeoutSeconds: variant.modelLoadTimeoutSeconds)
    }

    /// The domain variant, with defaults for absent fields.
    public func productionVariant(field: String) throws(ServalError) -> ProductionVariant {
        let delay = maxQueueDelayMs ?? 0
        guard delay.isFinite, delay >= 0, delay <= 60_000 else {
            throw .invalid("\(field).maxQueueDelayMs", "must be between 0 and 60000.")
        }
        return ProductionVariant(
            name: name ?? "AllTraffic", modelName: model, instanceCount: instanceCount ?? 1, weight: weight ?? 1,
            batching: BatchingSettings(
                maxBatchSize: maxBatchSize ?? 1, maxQueueDelayMicroseconds: Int((delay * 1000).rounded()),
                maxQueueSize: maxQueueSize ?? BatchingSettings.off.maxQueueSize),
            invocationTimeoutSeconds: invocationTimeoutSeconds ?? ProductionVariant.defaultInvocationTimeoutSeconds,
            modelLoadTimeoutSeconds: modelLoadTimeoutSeconds ?? ProductionVariant.defaultModelLoadTimeoutSeconds)
    }
}

/// `POST /endpoint-configs`, and how a config is shown.
public struct EndpointConfigDescription: Codable, Sendable, Equatable {
    public var name: String
    public var variants: [VariantConfig]
    /// Asynchronous inference; absent when the endpoint takes only real-time requests.
    public var asyncInference: AsyncInferenceSettings?
    /// Data capture; absent when nothing is captured.
    public var dataCapture: DataCaptureSettings?
    /// Absent in requests.
    public var createdAt: String?

    /// Creates a request body.
    public init(
        name: String, variants: [VariantConfig], asyncInference: AsyncInferenceSettings? = nil,
        dataCapture: DataCaptureSettings? = nil
    ) {
        self.name = name
        self.variants = variants
        self.asyncInference = asyncInference
        self.dataCapture = dataCapture
    }

    /// Describes a stored config.
    public init(_ config: EndpointConfig) {
        name = config.name
        variants = config.variants.map(VariantConfig.init)
        asyncInference = config.asyncInference.map(AsyncInferenceSettings.init)
        dataCapture = config.dataCapture.map(DataCaptureSettings.init)
        createdAt = config.createdAt.iso8601
    }
}

/// An endpoint config's data capture (docs/data-capture.md).
public struct DataCaptureSettings: Codable, Sendable, Equatable {
    /// `s3://bucket/prefix` in Serval's object store.
    public var destination: String
    /// The share of invocations captured, 0–100; default 100.
    public var samplingPercentage: Int?
    /// `Input`, `Output` or both (the default).
    public var captureModes: [String]?
    /// Whether capture is on; default true.
    public var enabled: Bool?

    /// Creates settings.
    public init(destination: String, samplingPercentage: Int? = nil, captureModes: [String]? = nil, enabled: Bool? = nil) {
        self.destination = destination
        self.samplingPercentage = samplingPercentage
        self.captureModes = captureModes
        self.enabled = enabled
    }

    /// Describes stored settings.
    public init(_ config: DataCaptureConfig) {
        destination = config.destination
        samplingPercentage = config.samplingPercentage
        captureModes = (config.captureInput ? ["Input"] : []) + (config.captureOutput ? ["Output"] : [])
        enabled = config.enabled
    }

    /// The settings as Serval's config, checked; errors name `dataCapture.<field>`.
    public func config() throws(ServalError) -> DataCaptureConfig {
        let modes = captureModes ?? ["Input", "Output"]
        for (index, mode) in modes.enumerated() where !["Input", "Output"].contains(mode) {
            throw .invalid("dataCapture.captureModes[\(index)]", "\"\(mode)\" is not a capture mode; use Input, Output or both.")
        }
        guard !modes.isEmpty else { throw .invalid("dataCapture.captureModes", "must name Input, Output or both.") }
        let config = DataCaptureConfig(
            enabled: enabled ?? true, samplingPercentage: samplingPercentage ?? 100, destination: destination,
            captureInput: modes.contains("Input"), captureOutput: modes.contains("Output"))
        try config.validate(fields: .rest("dataCapture"))
        return config
    }
}

/// `POST /endpoints`.
public struct CreateEndpointRequest: Codable, Sendable, Equatable {
    public var name: String
    /// The endpoint config to deploy.
    public var config: String

    /// Creates a request.
    public init(name: String, config: String) {
        self.name = name
        self.config = config
    }
}

/// The live state of one variant of a running endpoint.
public struct VariantState: Codable, Sendable, Equatable {
    public var name: String
    /// The model the variant serves.
    public var model: String
    public var desiredInstances: Int
    /// Instances serving now, starting (loading the model), and failed (the variant cannot serve).
    public var readyInstances: Int
    public var loadingInstances: Int
    public var failedInstances: Int
    public var queueDepth: Int
    public var inFlight: Int
    /// The last minute: invocations per second, latency percentiles in milliseconds, requests per batch,
    /// invocations and failed invocations.
    public var requestsPerSecond: Double
    public var latencyP50Ms: Double?
    public var latencyP99Ms: Double?
    public var averageBatchSize: Double?
    public var invocationsLastMinute: Int
    public var errorsLastMinute: Int
    /// Resident memory of the variant's worker processes.
    public var workerMemoryBytes: Int

    /// Creates a variant state.
    public init(
        name: String, model: String, desiredInstances: Int, readyInstances: Int, loadingInstances: Int,
        failedInstances: Int, queueDepth: Int, inFlight: Int, requestsPerSecond: Double, latencyP50Ms: Double?,
        latencyP99Ms: Double?, averageBatchSize: Double?, invocationsLastMinute: Int, errorsLastMinute: Int,
        workerMemoryBytes: Int
    ) {
        self.name = name
        self.model = model
        self.desiredInstances = desiredInstances
        self.readyInstances = readyInstances
        self.loadingInstances = loadingInstances
        self.failedInstances = failedInstances
        self.queueDepth = queueDepth
        self.inFlight = inFlight
        self.requestsPerSecond = requestsPerSecond
        self.latencyP50Ms = latencyP50Ms
        self.latencyP99Ms = latencyP99Ms
        self.averageBatchSize = averageBatchSize
        self.invocationsLastMinute = invocationsLastMinute
        self.errorsLastMinute = errorsLastMinute
        self.workerMemoryBytes = workerMemoryBytes
    }
}

/// Where an endpoint is called.
public struct EndpointURLs: Codable, Sendable, Equatable {
    /// The SageMaker runtime: `POST` here.
    public var sageMaker: String
    /// The Open Inference Protocol over REST: `POST` here.
    public var openInference: String
    /// The Open Inference Protocol over gRPC: `host:port`, model name = the endpoint's.
    public var grpc: String

    /// Creates the set.
    public init(sageMaker: String, openInference: String, grpc: String) {
        self.sageMaker = sageMaker
        self.openInference = openInference
        self.grpc = grpc
    }
}

/// An endpoint as the API shows it.
public struct EndpointDescription: Codable, Sendable, Equatable {
    public var name: String
    public var config: String
    /// `Creating`, `InService`, `Failed`, `Deleting`, ...
    public var status: String
    /// Why it failed, when `status` is `Failed`.
    public var failureReason: String?
    public var createdAt: String
    public var updatedAt: String
    /// Live numbers per variant while it runs.
    public var variants: [VariantState]
    /// The async queue, for endpoints that take async invocations.
    public var asyncQueue: AsyncQueueState?
    /// Where to call it; absent in listings.
    public var urls: EndpointURLs?
    /// Its data capture, when its config has one.
    public var dataCapture: DataCaptureState?

    /// Describes an endpoint.
    public init(
        _ endpoint: Endpoint, variants: [VariantState], asyncQueue: AsyncQueueState? = nil, urls: EndpointURLs? = nil,
        dataCapture: DataCaptureState? = nil
    ) {
        name = endpoint.name
        config = endpoint.configName
        status = endpoint.status.rawValue
        failureReason = endpoint.failureReason
        createdAt = endpoint.createdAt.iso8601
        updatedAt = endpoint.updatedAt.iso8601
        self.variants = variants
        self.asyncQueue = asyncQueue
        self.urls = urls
        self.dataCapture = dataCapture
    }
}

/// An endpoint's data capture on its deploy card: the settings, and what became of its records since Serval
/// started (docs/data-capture.md).
public struct DataCaptureState: Codable, Sendable, Equatable {
    /// `Started` while capture is enabled, `Stopped` when the config turns it off (as SageMaker reports `CaptureStatus`).
    public var status: String
    /// `s3://bucket/prefix` in Serval's object store.
    public var destination: String
    /// The share of invocations captured, 0–100.
    public var samplingPercentage: Int
    /// `Input`, `Output` or both.
    public var captureModes: [String]
    /// Records written to the object store.
    public var recordsWritten: Int
    /// Records dropped: the buffer was full, a record was too large, or writing it failed.
    public var recordsDropped: Int
    /// Why records were last dropped, and when (ISO 8601).
    public var lastError: String?
    public var lastErrorAt: String?

    /// Creates the state.
    public init(
        status: String, destination: String, samplingPercentage: Int, captureModes: [String], recordsWritten: Int,
        recordsDropped: Int, lastError: String? = nil, lastErrorAt: String? = nil
    ) {
        self.status = status
        self.destination = destination
        self.samplingPercentage = samplingPercentage
        self.captureModes = captureModes
        self.recordsWritten = recordsWritten
        self.recordsDropped = recordsDropped
        self.lastError = lastError
        self.lastErrorAt = lastErrorAt
    }
}

/// Every error response body.
public struct ErrorBody: Codable, Sendable, Equatable {
    /// The stable error code.
    public var code: String
    /// What went wrong and what to do.
    public var message: String
    /// For `ModelError`: the status the model's handler failed with, as SageMaker reports it.
    public var originalStatusCode: Int?
    /// For `ModelError`: the model's own error text, as SageMaker reports it.
    public var originalMessage: String?

    enum CodingKeys: String, CodingKey {
        case code, message
        case originalStatusCode = "OriginalStatusCode"
        case originalMessage = "OriginalMessage"
    }

    /// Creates an error body.
    public init(code: String, message: String, originalStatusCode: Int? = nil, originalMessage: String? = nil) {
        self.code = code
        self.message = message
        self.originalStatusCode = originalStatusCode
        self.originalMessage = originalMessage
    }
}

/// `GET /models`.
public struct ModelList: Codable, Sendable {
    public var models: [ModelDescription]

    /// Creates a list.
    public init(models: [ModelDescription]) {
        self.models = models
    }
}

/// `GET /endpoint-configs`.
public struct EndpointConfigList: Codable, Sendable {
    public var endpointConfigs: [EndpointConfigDescription]

    /// Creates a list.
    public init(endpointConfigs: [EndpointConfigDescription]) {
        self.endpointConfigs = endpointConfigs
    }
}

/// `GET /endpoints`.
public struct EndpointList: Codable, Sendable {
    public var endpoints: [EndpointDescription]

    /// Creates a list.
    public init(endpoints: [EndpointDescription]) {
        self.endpoints = endpoints
    }
}
