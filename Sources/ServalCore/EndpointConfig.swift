/// Dynamic batching settings of a production variant.
///
/// A request waits until `maxBatchSize` items are queued or the oldest has waited `maxQueueDelayMicroseconds`,
/// then the batch goes to a free instance. `maxBatchSize` 1 turns batching off.
public struct BatchingSettings: Codable, Sendable, Equatable {
    /// The most items one batch carries, 1...1024: requests on the SageMaker path, rows (first dimensions) for
    /// tensor requests, of which a single larger one runs alone. 1 means batching is off.
    public var maxBatchSize: Int
    /// How long the oldest queued item may wait for a fuller batch, in microseconds (0...60 s).
    public var maxQueueDelayMicroseconds: Int
    /// The most items waiting in the variant's queue; more are refused with 503 (1...100,000).
    public var maxQueueSize: Int

    /// Batching off, with a queue of 1,024 items.
    public static let off = BatchingSettings(maxBatchSize: 1, maxQueueDelayMicroseconds: 0, maxQueueSize: 1024)

    /// Creates batching settings.
    public init(maxBatchSize: Int, maxQueueDelayMicroseconds: Int, maxQueueSize: Int) {
        self.maxBatchSize = maxBatchSize
        self.maxQueueDelayMicroseconds = maxQueueDelayMicroseconds
        self.maxQueueSize = maxQueueSize
    }

    /// Checks every field's range.
    public func validate(field: String) throws(ServalError) {
        guard (1...1024).contains(maxBatchSize) else {
            throw .invalid("\(field).maxBatchSize", "is \(maxBatchSize); it must be between 1 (batching off) and 1024.")
        }
        guard (0...60_000_000).contains(maxQueueDelayMicroseconds) else {
            throw .invalid("\(field).maxQueueDelay", "must be between 0 and 60 seconds.")
        }
        guard (1...100_000).contains(maxQueueSize) else {
            throw .invalid("\(field).maxQueueSize", "is \(maxQueueSize); it must be between 1 and 100000.")
        }
    }
}

/// One production variant of an endpoint config: a model, its instances, its traffic weight and its batching.
public struct ProductionVariant: Codable, Sendable, Equatable {
    /// The variant's name, unique within its config.
    public var name: String
    /// The model the variant serves.
    public var modelName: String
    /// How many worker instances serve the variant (1...64).
    public var instanceCount: Int
    /// The variant's share of traffic relative to the other variants' weights (0...1,000,000).
    public var weight: Double
    /// Dynamic batching.
    public var batching: BatchingSettings
    /// How long one batch may run in a worker before the worker is killed and restarted, in seconds (1...3600).
    public var invocationTimeoutSeconds: Int
    /// How long a worker may take to load the model, in seconds (1...3600).
    public var modelLoadTimeoutSeconds: Int

    /// The invocation timeout SageMaker uses for real-time endpoints.
    public static let defaultInvocationTimeoutSeconds = 60
    /// The time SageMaker allows a container to pass its first health check.
    public static let defaultModelLoadTimeoutSeconds = 240

    /// Creates a variant.
    public init(
        name: String,
        modelName: String,
        instanceCount: Int = 1,
        weight: Double = 1,
        batching: BatchingSettings = .off,
        invocationTimeoutSeconds: Int = ProductionVariant.defaultInvocationTimeoutSeconds,
        modelLoadTimeoutSeconds: Int = ProductionVariant.defaultModelLoadTimeoutSeconds
    ) {
        self.name = name
        self.modelName = modelName
        self.instanceCount = instanceCount
        self.weight = weight
        self.batching = batching
        self.invocationTimeoutSeconds = invocationTimeoutSeconds
        self.modelLoadTimeoutSeconds = modelLoadTimeoutSeconds
    }

    /// Checks every field; `field` is the variant's path in the request, for messages.
    public func validate(field: String) throws(ServalError) {
        try ResourceName.validate(name, field: "\(field).name")
        try ResourceName.validate(modelName, field: "\(field).model")
        guard (1...64).contains(instanceCount) else {
            throw .invalid("\(field).instanceCount", "is \(instanceCount); it must be between 1 and 64.")
        }
        guard weight.isFinite, (0...1_000_000).contains(weight) else {
            throw .invalid("\(field).weight", "must be a number between 0 and 1000000.")
        }
        try batching.validate(field: field)
        guard (1...3600).contains(invocationTimeoutSeconds) else {
            throw .invalid("\(field).invocationTimeoutSeconds", "must be between 1 and 3600.")
        }
        guard (1...3600).contains(modelLoadTimeoutSeconds) else {
            throw .invalid("\(field).modelLoadTimeoutSeconds", "must be between 1 and 3600.")
        }
    }
}

/// An endpoint config: the production variants an endpoint runs.
public struct EndpointConfig: Codable, Sendable, Equatable {
    /// The config's name, unique among endpoint configs.
    public var name: String
    /// One to ten production variants.
    public var variants: [ProductionVariant]
    /// Asynchronous inference, when the endpoint takes async invocations.
    public var asyncInference: AsyncInferenceConfig?
    /// Data capture, when a share of invocations is recorded.
    public var dataCapture: DataCaptureConfig?
    /// When the config was created.
    public var createdAt: Timestamp
    /// The SageMaker `CreateEndpointConfig` request the config was made with, as JSON, when it came through the
    /// SageMaker control plane: `DescribeEndpointConfig` reports it back, with the fields Serval records but does
    /// not act on (`InstanceType`, `ServerlessConfig`, ...).
    public var sageMakerRequest: String?

    /// Creates an endpoint config.
    public init(
        name: String, variants: [ProductionVariant], asyncInference: AsyncInferenceConfig? = nil,
        dataCapture: DataCaptureConfig? = nil, createdAt: Timestamp, sageMakerRequest: String? = nil
    ) {
        self.name = name
        self.variants = variants
        self.asyncInference = asyncInference
        self.dataCapture = dataCapture
        self.createdAt = createdAt
        self.sageMakerRequest = sageMakerRequest
    }

    /// The variants with an endpoint's overrides of weights and instance counts applied.
    public func variants(applying overrides: [VariantOverride]?) -> [ProductionVariant] {
        guard let overrides, !overrides.isEmpty else { return variants }
        return variants.map { variant in
            var variant = variant
            if let override = overrides.first(where: { $0.variantName == variant.name }) {
                if let weight = override.weight { variant.weight = weight }
                if let count = override.instanceCount { variant.instanceCount = count }
            }
            return variant
        }
    }

    /// Checks the name, the variants and that variant names are unique and some weight is positive.
    public func validate() throws(ServalError) {
        try ResourceName.validate(name, field: "name")
        guard (1...10).contains(variants.count) else {
            throw .invalid("variants", "has \(variants.count) entries; an endpoint config needs 1 to 10 variants.")
        }
        var seen = Set<String>()
        for (index, variant) in variants.enumerated() {
            try variant.validate(field: "variants[\(index)]")
            guard seen.insert(variant.name).inserted else {
                throw .invalid("variants[\(index)].name", "\"\(variant.name)\" is used by another variant of this config.")
            }
        }
        guard variants.contains(where: { $0.weight > 0 }) else {
            throw .invalid("variants", "every weight is 0; at least one variant must have a positive weight.")
        }
        try asyncInference?.validate(field: "asyncInference")
        try dataCapture?.validate(fields: .rest("dataCapture"))
    }
}
