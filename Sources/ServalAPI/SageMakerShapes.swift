public import Foundation
public import ServalCore

// The JSON shapes of SageMaker's control plane (boto3's `sagemaker` client, protocol JSON 1.1; CONTRACTS.md §2)
// for models, endpoint configs and endpoints; transform jobs reuse TransformResources.swift. Properties are
// spelled as on the wire (PascalCase). Fields Serval does not act on are decoded, recorded with the resource and
// reported back by the Describe operations; docs/sagemaker-control-plane.md lists them.

// MARK: Errors and ARNs

/// An error of SageMaker's control plane: `{"__type", "message"}` with HTTP status 400 for client errors.
public struct SageMakerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The `__type` values Serval answers with.
    public enum Kind: String, Sendable, Equatable {
        /// A bad value, an unknown model, config or endpoint, or a resource in the wrong state.
        case validation = "ValidationException"
        /// An unknown transform job.
        case resourceNotFound = "ResourceNotFound"
        /// A name that is taken (transform jobs), or a resource other resources still use.
        case resourceInUse = "ResourceInUse"
        /// A limit of Serval's was reached.
        case resourceLimitExceeded = "ResourceLimitExceeded"
        /// The `X-Amz-Target` names no operation Serval implements.
        case unknownOperation = "UnknownOperationException"
        /// Serval cannot serve the request now; botocore retries.
        case serviceUnavailable = "ServiceUnavailable"
        /// An unexpected failure inside Serval; botocore retries.
        case internalFailure = "InternalFailure"

        /// The HTTP status botocore expects with this error.
        public var status: Int {
            switch self {
            case .serviceUnavailable: 503
            case .internalFailure: 500
            default: 400
            }
        }
    }

    /// The error's `__type`.
    public var kind: Kind
    /// The error's `message`.
    public var message: String

    /// Creates an error.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(kind.rawValue): \(message)" }

    /// The response body.
    public var body: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(["__type": kind.rawValue, "message": message])) ?? Data()
    }
}

/// Builds SageMaker ARNs: `arn:aws:sagemaker:REGION:ACCOUNT:KIND/name`, the name lowercased as SageMaker does.
public struct SageMakerARN: Sendable, Equatable {
    /// The region shown in ARNs.
    public var region: String
    /// The 12-digit account id shown in ARNs.
    public var account: String

    /// Creates an ARN builder.
    public init(region: String, account: String) {
        self.region = region
        self.account = account
    }

    /// The ARN of a resource of `kind` (`model`, `endpoint-config`, `endpoint`, `transform-job`).
    public func arn(_ kind: String, _ name: String) -> String {
        "arn:aws:sagemaker:\(region):\(account):\(kind)/\(name.lowercased())"
    }

    /// The region of a SigV4 `Authorization` header's credential scope
    /// (`Credential=AKID/20261124/REGION/sagemaker/aws4_request`), when it has a plausible one.
    public static func region(fromAuthorization header: String?) -> String? {
        guard let header, let range = header.range(of: "Credential=") else { return nil }
        let credential = header[range.upperBound...].prefix { $0 != "," && $0 != " " }
        let parts = credential.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 5, isRegion(parts[2]) else { return nil }
        return String(parts[2])
    }

    /// Whether `text` looks like a region name: 1–32 lowercase letters, digits and hyphens.
    public static func isRegion(_ text: some StringProtocol) -> Bool {
        (1...32).contains(text.utf8.count)
            && text.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
    }

    /// Whether `text` is an account id: 12 digits.
    public static func isAccount(_ text: String) -> Bool {
        text.utf8.count == 12 && text.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }
}

// MARK: Any JSON

/// Any JSON value, for the parts of SageMaker's shapes Serval records without reading (VpcConfig,
/// NotificationConfig, DeploymentConfig, ...).
public enum SageMakerJSON: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([SageMakerJSON])
    case object([String: SageMakerJSON])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([SageMakerJSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: SageMakerJSON].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// `Tag`: a key and a value (kept in the tag store, not in the recorded request).
public struct SageMakerTag: Codable, Sendable, Equatable {
    public var Key: String
    public var Value: String?

    /// Creates a tag.
    public init(Key: String, Value: String?) {
        self.Key = Key
        self.Value = Value
    }
}

// MARK: Validation helpers

enum SageMakerCheck {
    static func name(_ value: String, _ field: String) throws(ServalError) {
        try ResourceName.validate(value, field: field)
    }

    static func length(_ value: String?, _ field: String, _ range: ClosedRange<Int>) throws(ServalError) {
        guard let value else { return }
        guard range.contains(value.utf8.count) else {
            throw .invalid(field, "must be \(range.lowerBound) to \(range.upperBound) characters long.")
        }
    }

    static func range<Value: Comparable>(_ value: Value?, _ field: String, _ range: ClosedRange<Value>) throws(ServalError) {
        guard let value else { return }
        guard range.contains(value) else {
            throw .invalid(field, "is \(value); it must be between \(range.lowerBound) and \(range.upperBound).")
        }
    }

    static func choice(_ value: String?, _ field: String, _ allowed: [String]) throws(ServalError) {
        guard let value else { return }
        guard allowed.contains(value) else {
            throw .invalid(field, "is \"\(value)\"; it must be one of \(allowed.joined(separator: ", ")).")
        }
    }

    static func s3URI(_ value: String?, _ field: String) throws(ServalError) {
        guard let value else { return }
        try length(value, field, 1...1024)
        _ = try ObjectLocation.split(uri: value, field: field)
    }
}

// MARK: Models

/// `ContainerDefinition`.
public struct SageMakerContainer: Codable, Sendable, Equatable {
    /// Recorded (required by SageMaker only for direct multi-container invocation).
    public var ContainerHostname: String?
    /// Recorded; any value is accepted and the model runs on Serval's Python runtime.
    public var Image: String?
    public var ImageConfig: SageMakerJSON?
    /// `SingleModel` (default); `MultiModel` is refused.
    public var Mode: String?
    /// `s3://bucket/key.tar.gz` in Serval's object store: the model package.
    public var ModelDataUrl: String?
    public var ModelDataSource: SageMakerJSON?
    /// The workers' environment variables (≤ 100).
    public var Environment: [String: String]?
    public var ModelPackageName: String?
    public var InferenceSpecificationName: String?
    public var MultiModelConfig: SageMakerJSON?

    public init(Image: String? = nil, Mode: String? = nil, ModelDataUrl: String? = nil, Environment: [String: String]? = nil) {
        self.Image = Image
        self.Mode = Mode
        self.ModelDataUrl = ModelDataUrl
        self.Environment = Environment
    }

    func validate(field: String) throws(ServalError) {
        if let hostname = ContainerHostname { try SageMakerCheck.name(hostname, "\(field).ContainerHostname") }
        try SageMakerCheck.length(Image, "\(field).Image", 0...255)
        try SageMakerCheck.choice(Mode, "\(field).Mode", ["SingleModel", "MultiModel"])
        guard Mode != "MultiModel" else {
            throw .invalid("\(field).Mode", "MultiModel is not supported: Serval serves one model package per model.")
        }
        guard let ModelDataUrl else {
            throw .invalid(
                "\(field).ModelDataUrl",
                "is required: Serval serves a model package, s3://bucket/key.tar.gz in its object store (upload it with an S3 client pointed at Serval's S3 port).")
        }
        try SageMakerCheck.length(ModelDataUrl, "\(field).ModelDataUrl", 1...1024)
        _ = try ObjectLocation(uri: ModelDataUrl, field: "\(field).ModelDataUrl")
        if let Environment {
            do {
                try Model.validateEnvironment(Environment)
            } catch {
                throw ServalError(.validationError, "\(field).\(error.message)")
            }
        }
    }
}

/// `InferenceExecutionConfig`.
public struct SageMakerInferenceExecutionConfig: Codable, Sendable, Equatable {
    /// `Serial` or `Direct`; recorded.
    public var Mode: String
}

/// `CreateModel`'s input.
public struct CreateModelInput: Codable, Sendable, Equatable {
    public var ModelName: String
    public var PrimaryContainer: SageMakerContainer?
    public var Containers: [SageMakerContainer]?
    public var InferenceExecutionConfig: SageMakerInferenceExecutionConfig?
    public var ExecutionRoleArn: String?
    public var Tags: [SageMakerTag]?
    public var VpcConfig: SageMakerJSON?
    public var EnableNetworkIsolation: Bool?

    public init(ModelName: String, PrimaryContainer: SageMakerContainer? = nil, Containers: [SageMakerContainer]? = nil) {
        self.ModelName = ModelName
        self.PrimaryContainer = PrimaryContainer
        self.Containers = Containers
    }

    /// Checks names, lengths and ranges, and returns the one container Serval runs.
    public func validatedContainer() throws(ServalError) -> (container: SageMakerContainer, field: String) {
        try SageMakerCheck.name(ModelName, "ModelName")
        try SageMakerCheck.length(ExecutionRoleArn, "ExecutionRoleArn", 20...2048)
        try SageMakerCheck.choice(InferenceExecutionConfig?.Mode, "InferenceExecutionConfig.Mode", ["Serial", "Direct"])
        let chosen: (SageMakerContainer, String)
        switch (PrimaryContainer, Containers) {
        case (let primary?, nil):
            chosen = (primary, "PrimaryContainer")
        case (nil, let containers?):
            guard (1...15).contains(containers.count) else {
                throw .invalid("Containers", "has \(containers.count) entries; it must have 1 to 15.")
            }
            guard containers.count == 1 else {
                throw .invalid(
                    "Containers",
                    "has \(containers.count) containers; Serval runs one container per model (inference pipelines and direct multi-container invocation are not supported).")
            }
            chosen = (containers[0], "Containers[0]")
        case (.some, .some):
            throw .invalid("PrimaryContainer", "and Containers cannot both be given.")
        case (nil, nil):
            throw .invalid("PrimaryContainer", "or Containers is required.")
        }
        try chosen.0.validate(field: chosen.1)
        return chosen
    }
}

/// `DescribeModel`'s output.
public struct DescribeModelOutput: Codable, Sendable, Equatable {
    public var ModelName: String
    public var ModelArn: String
    public var PrimaryContainer: SageMakerContainer?
    public var Containers: [SageMakerContainer]?
    public var InferenceExecutionConfig: SageMakerInferenceExecutionConfig?
    public var ExecutionRoleArn: String?
    public var VpcConfig: SageMakerJSON?
    public var EnableNetworkIsolation: Bool?
    public var CreationTime: WireTime

    /// Describes a model: what its `CreateModel` recorded, or, for a model made through Serval's own API, its
    /// environment as the primary container.
    public init(_ model: Model, arn: String) {
        ModelName = model.name
        ModelArn = arn
        CreationTime = WireTime(model.createdAt)
        if let text = model.sageMakerRequest, let input = try? JSONDecoder().decode(CreateModelInput.self, from: Data(text.utf8)) {
            PrimaryContainer = input.PrimaryContainer
            Containers = input.Containers
            InferenceExecutionConfig = input.InferenceExecutionConfig
            ExecutionRoleArn = input.ExecutionRoleArn
            VpcConfig = input.VpcConfig
            EnableNetworkIsolation = input.EnableNetworkIsolation
        } else {
            PrimaryContainer = SageMakerContainer(Mode: "SingleModel", Environment: model.environment)
        }
    }
}

// MARK: Endpoint configs

/// `ServerlessConfig`.
public struct SageMakerServerlessConfig: Codable, Sendable, Equatable {
    /// 1024–6144 in steps of 1024.
    public var MemorySizeInMB: Int
    /// 1–200.
    public var MaxConcurrency: Int
    /// 1–200, at most `MaxConcurrency`.
    public var ProvisionedConcurrency: Int?

    public init(MemorySizeInMB: Int, MaxConcurrency: Int, ProvisionedConcurrency: Int? = nil) {
        self.MemorySizeInMB = MemorySizeInMB
        self.MaxConcurrency = MaxConcurrency
        self.ProvisionedConcurrency = ProvisionedConcurrency
    }

    func validate(field: String) throws(ServalError) {
        guard (1024...6144).contains(MemorySizeInMB), MemorySizeInMB % 1024 == 0 else {
            throw .invalid("\(field).MemorySizeInMB", "is \(MemorySizeInMB); it must be 1024, 2048, 3072, 4096, 5120 or 6144.")
        }
        try SageMakerCheck.range(MaxConcurrency, "\(field).MaxConcurrency", 1...200)
        try SageMakerCheck.range(ProvisionedConcurrency, "\(field).ProvisionedConcurrency", 1...MaxConcurrency)
    }
}

/// `RoutingConfig`.
public struct SageMakerRoutingConfig: Codable, Sendable, Equatable {
    /// `LEAST_OUTSTANDING_REQUESTS` or `RANDOM`; recorded (Serval routes at random by weight).
    public var RoutingStrategy: String
}

/// `ProductionVariant`.
public struct SageMakerProductionVariant: Codable, Sendable, Equatable {
    public var VariantName: String
    public var ModelName: String?
    /// 1–64 instances (SageMaker allows more; one machine does not).
    public var InitialInstanceCount: Int?
    /// Recorded; Serval does not act on it.
    public var InstanceType: String?
    /// 0–1,000,000; default 1.
    public var InitialVariantWeight: Double?
    public var AcceleratorType: String?
    public var CoreDumpConfig: SageMakerJSON?
    /// Recorded; the variant runs one instance.
    public var ServerlessConfig: SageMakerServerlessConfig?
    public var VolumeSizeInGB: Int?
    public var ModelDataDownloadTimeoutInSeconds: Int?
    /// 60–3600: how long a worker may take to load the model.
    public var ContainerStartupHealthCheckTimeoutInSeconds: Int?
    public var EnableSSMAccess: Bool?
    public var ManagedInstanceScaling: SageMakerJSON?
    public var RoutingConfig: SageMakerRoutingConfig?
    public var InferenceAmiVersion: String?

    public init(
        VariantName: String, ModelName: String?, InitialInstanceCount: Int? = nil, InstanceType: String? = nil,
        InitialVariantWeight: Double? = nil, ServerlessConfig: SageMakerServerlessConfig? = nil
    ) {
        self.VariantName = VariantName
        self.ModelName = ModelName
        self.InitialInstanceCount = InitialInstanceCount
        self.InstanceType = InstanceType
        self.InitialVariantWeight = InitialVariantWeight
        self.ServerlessConfig = ServerlessConfig
    }

    func validate(field: String) throws(ServalError) {
        try SageMakerCheck.name(VariantName, "\(field).VariantName")
        guard let ModelName else { throw .invalid("\(field).ModelName", "is required.") }
        try SageMakerCheck.name(ModelName, "\(field).ModelName")
        try SageMakerCheck.length(InstanceType, "\(field).InstanceType", 1...64)
        if let weight = InitialVariantWeight, !(weight.isFinite && (0...1_000_000).contains(weight)) {
            throw .invalid("\(field).InitialVariantWeight", "must be a number between 0 and 1000000.")
        }
        switch (InitialInstanceCount, ServerlessConfig) {
        case (let count?, nil):
            try SageMakerCheck.range(count, "\(field).InitialInstanceCount", 1...64)
        case (nil, let serverless?):
            try serverless.validate(field: "\(field).ServerlessConfig")
        case (.some, .some):
            throw .invalid("\(field).InitialInstanceCount", "and ServerlessConfig cannot both be given.")
        case (nil, nil):
            throw .invalid("\(field).InitialInstanceCount", "is required unless the variant has a ServerlessConfig.")
        }
        try SageMakerCheck.range(VolumeSizeInGB, "\(field).VolumeSizeInGB", 1...512)
        try SageMakerCheck.range(ModelDataDownloadTimeoutInSeconds, "\(field).ModelDataDownloadTimeoutInSeconds", 60...3600)
        try SageMakerCheck.range(
            ContainerStartupHealthCheckTimeoutInSeconds, "\(field).ContainerStartupHealthCheckTimeoutInSeconds", 60...3600)
        try SageMakerCheck.choice(
            RoutingConfig?.RoutingStrategy, "\(field).RoutingConfig.RoutingStrategy", ["LEAST_OUTSTANDING_REQUESTS", "RANDOM"])
    }

    /// Serval's variant: the instance count (one for a serverless variant), the weight and the model load timeout.
    func productionVariant() -> ProductionVariant {
        ProductionVariant(
            name: VariantName, modelName: ModelName ?? "", instanceCount: InitialInstanceCount ?? 1,
            weight: InitialVariantWeight ?? 1,
            modelLoadTimeoutSeconds: ContainerStartupHealthCheckTimeoutInSeconds
                ?? ProductionVariant.defaultModelLoadTimeoutSeconds)
    }
}

/// `DataCaptureConfig`: a sampled share of invocations written as JSON Lines to Serval's object store
/// (docs/data-capture.md).
public struct SageMakerDataCaptureConfig: Codable, Sendable, Equatable {
    public struct CaptureOption: Codable, Sendable, Equatable {
        /// `Input`, `Output` or `InputAndOutput`.
        public var CaptureMode: String
    }

    /// `CaptureContentTypeHeader`: the content types captured as text.
    public struct ContentTypeHeader: Codable, Sendable, Equatable {
        public var CsvContentTypes: [String]?
        public var JsonContentTypes: [String]?
    }

    public var EnableCapture: Bool?
    /// 0–100.
    public var InitialSamplingPercentage: Int
    public var DestinationS3Uri: String
    public var KmsKeyId: String?
    /// 1–32 options.
    public var CaptureOptions: [CaptureOption]
    public var CaptureContentTypeHeader: ContentTypeHeader?

    func validate(field: String) throws(ServalError) {
        try SageMakerCheck.range(InitialSamplingPercentage, "\(field).InitialSamplingPercentage", 0...100)
        try SageMakerCheck.length(DestinationS3Uri, "\(field).DestinationS3Uri", 1...512)
        try SageMakerCheck.range(CaptureOptions.count, "\(field).CaptureOptions (count)", 1...32)
        for (index, option) in CaptureOptions.enumerated() {
            try SageMakerCheck.choice(
                option.CaptureMode, "\(field).CaptureOptions[\(index)].CaptureMode", ["Input", "Output", "InputAndOutput"])
        }
        try config().validate(fields: .sageMaker(field))
    }

    /// Serval's capture settings.
    func config() -> DataCaptureConfig {
        let modes = Set(CaptureOptions.map(\.CaptureMode))
        return DataCaptureConfig(
            enabled: EnableCapture ?? true, samplingPercentage: InitialSamplingPercentage, destination: DestinationS3Uri,
            captureInput: !modes.isDisjoint(with: ["Input", "InputAndOutput"]),
            captureOutput: !modes.isDisjoint(with: ["Output", "InputAndOutput"]),
            csvContentTypes: CaptureContentTypeHeader?.CsvContentTypes ?? DataCaptureConfig.defaultCSVContentTypes,
            jsonContentTypes: CaptureContentTypeHeader?.JsonContentTypes ?? DataCaptureConfig.defaultJSONContentTypes,
            kmsKeyID: KmsKeyId)
    }

    /// What a config made through Serval's own API looks like in SageMaker's shape.
    public init(_ config: DataCaptureConfig) {
        EnableCapture = config.enabled
        InitialSamplingPercentage = config.samplingPercentage
        DestinationS3Uri = config.destination
        KmsKeyId = config.kmsKeyID
        CaptureOptions = (config.captureInput ? [CaptureOption(CaptureMode: "Input")] : [])
            + (config.captureOutput ? [CaptureOption(CaptureMode: "Output")] : [])
        CaptureContentTypeHeader = ContentTypeHeader(
            CsvContentTypes: config.csvContentTypes, JsonContentTypes: config.jsonContentTypes)
    }
}

/// `AsyncInferenceConfig`.
public struct SageMakerAsyncInferenceConfig: Codable, Sendable, Equatable {
    /// `AsyncInferenceConfig.ClientConfig`.
    public struct Client: Codable, Sendable, Equatable {
        /// 1–1000.
        public var MaxConcurrentInvocationsPerInstance: Int?
    }

    /// `AsyncInferenceConfig.OutputConfig`.
    public struct Output: Codable, Sendable, Equatable {
        public var KmsKeyId: String?
        /// `s3://bucket/prefix` in Serval's object store; required by Serval.
        public var S3OutputPath: String?
        /// SNS topics: recorded, not notified (Serval notifies webhooks, set through its own API).
        public var NotificationConfig: SageMakerJSON?
        public var S3FailurePath: String?
    }

    public var ClientConfig: Client?
    public var OutputConfig: Output

    func validate(field: String) throws(ServalError) {
        try SageMakerCheck.range(
            ClientConfig?.MaxConcurrentInvocationsPerInstance, "\(field).ClientConfig.MaxConcurrentInvocationsPerInstance",
            1...1000)
        guard let output = OutputConfig.S3OutputPath else {
            throw .invalid("\(field).OutputConfig.S3OutputPath", "is required: Serval writes results to its object store.")
        }
        try SageMakerCheck.length(output, "\(field).OutputConfig.S3OutputPath", 1...1024)
        try ObjectLocation.validate(prefixURI: output, field: "\(field).OutputConfig.S3OutputPath")
        if let failure = OutputConfig.S3FailurePath {
            try SageMakerCheck.length(failure, "\(field).OutputConfig.S3FailurePath", 1...1024)
            try ObjectLocation.validate(prefixURI: failure, field: "\(field).OutputConfig.S3FailurePath")
        }
    }

    /// Serval's async section: paths and concurrency; the rest takes Serval's defaults.
    func config() -> ServalCore.AsyncInferenceConfig {
        ServalCore.AsyncInferenceConfig(
            outputPath: OutputConfig.S3OutputPath ?? "", failurePath: OutputConfig.S3FailurePath,
            maxConcurrentInvocationsPerInstance: ClientConfig?.MaxConcurrentInvocationsPerInstance
                ?? AsyncInferenceConfig.defaultMaxConcurrentInvocationsPerInstance)
    }
}

/// `CreateEndpointConfig`'s input.
public struct CreateEndpointConfigInput: Codable, Sendable, Equatable {
    public var EndpointConfigName: String
    public var ProductionVariants: [SageMakerProductionVariant]
    public var DataCaptureConfig: SageMakerDataCaptureConfig?
    public var Tags: [SageMakerTag]?
    public var KmsKeyId: String?
    public var AsyncInferenceConfig: SageMakerAsyncInferenceConfig?
    public var ExplainerConfig: SageMakerJSON?
    public var ShadowProductionVariants: [SageMakerProductionVariant]?
    public var ExecutionRoleArn: String?
    public var VpcConfig: SageMakerJSON?
    public var EnableNetworkIsolation: Bool?

    public init(EndpointConfigName: String, ProductionVariants: [SageMakerProductionVariant]) {
        self.EndpointConfigName = EndpointConfigName
        self.ProductionVariants = ProductionVariants
    }

    /// Checks names, lengths and ranges, and maps the config to Serval's variants and async section.
    public func validated() throws(ServalError) -> (
        variants: [ProductionVariant], asyncInference: ServalCore.AsyncInferenceConfig?,
        dataCapture: ServalCore.DataCaptureConfig?
    ) {
        try SageMakerCheck.name(EndpointConfigName, "EndpointConfigName")
        try SageMakerCheck.range(ProductionVariants.count, "ProductionVariants (count)", 1...10)
        var seen = Set<String>()
        for (index, variant) in ProductionVariants.enumerated() {
            try variant.validate(field: "ProductionVariants[\(index)]")
            guard seen.insert(variant.VariantName).inserted else {
                throw .invalid("ProductionVariants[\(index)].VariantName", "\"\(variant.VariantName)\" is used by another variant.")
            }
        }
        guard ProductionVariants.contains(where: { ($0.InitialVariantWeight ?? 1) > 0 }) else {
            throw .invalid("ProductionVariants", "every InitialVariantWeight is 0; at least one must be positive.")
        }
        if let shadows = ShadowProductionVariants {
            try SageMakerCheck.range(shadows.count, "ShadowProductionVariants (count)", 0...10)
            for (index, variant) in shadows.enumerated() {
                try variant.validate(field: "ShadowProductionVariants[\(index)]")
            }
        }
        try DataCaptureConfig?.validate(field: "DataCaptureConfig")
        try AsyncInferenceConfig?.validate(field: "AsyncInferenceConfig")
        try SageMakerCheck.length(KmsKeyId, "KmsKeyId", 0...2048)
        try SageMakerCheck.length(ExecutionRoleArn, "ExecutionRoleArn", 20...2048)
        return (
            ProductionVariants.map { $0.productionVariant() }, AsyncInferenceConfig?.config(), DataCaptureConfig?.config()
        )
    }

    /// What a config made through Serval's own API looks like in SageMaker's shape.
    public init(_ config: EndpointConfig) {
        EndpointConfigName = config.name
        ProductionVariants = config.variants.map {
            SageMakerProductionVariant(
                VariantName: $0.name, ModelName: $0.modelName, InitialInstanceCount: $0.instanceCount,
                InitialVariantWeight: $0.weight)
        }
        if let async = config.asyncInference {
            AsyncInferenceConfig = SageMakerAsyncInferenceConfig(
                ClientConfig: SageMakerAsyncInferenceConfig.Client(MaxConcurrentInvocationsPerInstance: async.maxConcurrentInvocationsPerInstance),
                OutputConfig: SageMakerAsyncInferenceConfig.Output(S3OutputPath: async.outputPath, S3FailurePath: async.failurePath))
        }
        DataCaptureConfig = config.dataCapture.map(SageMakerDataCaptureConfig.init)
    }

    /// The recorded request of `config`, or its SageMaker shape when it was made through Serval's own API.
    public static func recorded(_ config: EndpointConfig) -> CreateEndpointConfigInput {
        if let text = config.sageMakerRequest,
            let input = try? JSONDecoder().decode(CreateEndpointConfigInput.self, from: Data(text.utf8))
        {
            return input
        }
        return CreateEndpointConfigInput(config)
    }
}

/// `DescribeEndpointConfig`'s output.
public struct DescribeEndpointConfigOutput: Codable, Sendable, Equatable {
    public var EndpointConfigName: String
    public var EndpointConfigArn: String
    public var ProductionVariants: [SageMakerProductionVariant]
    public var DataCaptureConfig: SageMakerDataCaptureConfig?
    public var KmsKeyId: String?
    public var CreationTime: WireTime
    public var AsyncInferenceConfig: SageMakerAsyncInferenceConfig?
    public var ExplainerConfig: SageMakerJSON?
    public var ShadowProductionVariants: [SageMakerProductionVariant]?
    public var ExecutionRoleArn: String?
    public var VpcConfig: SageMakerJSON?
    public var EnableNetworkIsolation: Bool?

    /// Describes a config.
    public init(_ config: EndpointConfig, arn: String) {
        let input = CreateEndpointConfigInput.recorded(config)
        EndpointConfigName = config.name
        EndpointConfigArn = arn
        ProductionVariants = input.ProductionVariants
        DataCaptureConfig = input.DataCaptureConfig
        KmsKeyId = input.KmsKeyId
        CreationTime = WireTime(config.createdAt)
        AsyncInferenceConfig = input.AsyncInferenceConfig
        ExplainerConfig = input.ExplainerConfig
        ShadowProductionVariants = input.ShadowProductionVariants
        ExecutionRoleArn = input.ExecutionRoleArn
        VpcConfig = input.VpcConfig
        EnableNetworkIsolation = input.EnableNetworkIsolation
    }
}

// MARK: Endpoints

/// `CreateEndpoint`'s input. `DeploymentConfig` is accepted and not acted on.
public struct CreateEndpointInput: Codable, Sendable, Equatable {
    public var EndpointName: String
    public var EndpointConfigName: String
    public var DeploymentConfig: SageMakerJSON?
    public var Tags: [SageMakerTag]?

    /// Checks the names (the tags: ``Swift/Array/validated(field:)``).
    public func validate() throws(ServalError) {
        try SageMakerCheck.name(EndpointName, "EndpointName")
        try SageMakerCheck.name(EndpointConfigName, "EndpointConfigName")
    }
}

/// `UpdateEndpoint`'s input. `DeploymentConfig` is accepted and not acted on: Serval switches all traffic at
/// once, after every new variant is ready.
public struct UpdateEndpointInput: Codable, Sendable, Equatable {
    public var EndpointName: String
    public var EndpointConfigName: String
    /// Keeps weights and instance counts set by `UpdateEndpointWeightsAndCapacities`.
    public var RetainAllVariantProperties: Bool?
    public var ExcludeRetainedVariantProperties: SageMakerJSON?
    public var DeploymentConfig: SageMakerJSON?
    public var RetainDeploymentConfig: Bool?

    /// Checks the names.
    public func validate() throws(ServalError) {
        try SageMakerCheck.name(EndpointName, "EndpointName")
        try SageMakerCheck.name(EndpointConfigName, "EndpointConfigName")
    }
}

/// `UpdateEndpointWeightsAndCapacities`'s input.
public struct UpdateEndpointWeightsAndCapacitiesInput: Codable, Sendable, Equatable {
    public struct DesiredWeightAndCapacity: Codable, Sendable, Equatable {
        public var VariantName: String
        public var DesiredWeight: Double?
        public var DesiredInstanceCount: Int?
        /// Accepted and not acted on.
        public var ServerlessUpdateConfig: SageMakerJSON?
    }

    public var EndpointName: String
    /// 1–10 changes.
    public var DesiredWeightsAndCapacities: [DesiredWeightAndCapacity]

    /// Checks the names and ranges and maps the changes to Serval's overrides.
    public func validated() throws(ServalError) -> [VariantOverride] {
        try SageMakerCheck.name(EndpointName, "EndpointName")
        try SageMakerCheck.range(DesiredWeightsAndCapacities.count, "DesiredWeightsAndCapacities (count)", 1...10)
        var overrides: [VariantOverride] = []
        for (index, change) in DesiredWeightsAndCapacities.enumerated() {
            let field = "DesiredWeightsAndCapacities[\(index)]"
            try SageMakerCheck.name(change.VariantName, "\(field).VariantName")
            if let weight = change.DesiredWeight, !(weight.isFinite && (0...1_000_000).contains(weight)) {
                throw .invalid("\(field).DesiredWeight", "must be a number between 0 and 1000000.")
            }
            try SageMakerCheck.range(change.DesiredInstanceCount, "\(field).DesiredInstanceCount", 1...64)
            guard change.DesiredWeight != nil || change.DesiredInstanceCount != nil else {
                throw .invalid(field, "set DesiredWeight, DesiredInstanceCount or both.")
            }
            overrides.append(
                VariantOverride(variantName: change.VariantName, weight: change.DesiredWeight, instanceCount: change.DesiredInstanceCount))
        }
        return overrides
    }
}

/// `ProductionVariantSummary` in `DescribeEndpoint`.
public struct SageMakerProductionVariantSummary: Codable, Sendable, Equatable {
    public var VariantName: String
    public var CurrentWeight: Double?
    public var DesiredWeight: Double?
    public var CurrentInstanceCount: Int?
    public var DesiredInstanceCount: Int?
    public var CurrentServerlessConfig: SageMakerServerlessConfig?
    public var DesiredServerlessConfig: SageMakerServerlessConfig?

    public init(
        VariantName: String, CurrentWeight: Double?, DesiredWeight: Double?, CurrentInstanceCount: Int?,
        DesiredInstanceCount: Int?, ServerlessConfig: SageMakerServerlessConfig? = nil
    ) {
        self.VariantName = VariantName
        self.CurrentWeight = CurrentWeight
        self.DesiredWeight = DesiredWeight
        self.CurrentInstanceCount = CurrentInstanceCount
        self.DesiredInstanceCount = DesiredInstanceCount
        CurrentServerlessConfig = ServerlessConfig
        DesiredServerlessConfig = ServerlessConfig
    }
}

/// `DataCaptureConfigSummary` in `DescribeEndpoint`: `Started` while capture is on.
public struct SageMakerDataCaptureSummary: Codable, Sendable, Equatable {
    public var EnableCapture: Bool
    public var CaptureStatus: String
    public var CurrentSamplingPercentage: Int
    public var DestinationS3Uri: String
    public var KmsKeyId: String?

    public init(_ config: DataCaptureConfig) {
        EnableCapture = config.enabled
        CaptureStatus = config.enabled ? "Started" : "Stopped"
        CurrentSamplingPercentage = config.samplingPercentage
        DestinationS3Uri = config.destination
        KmsKeyId = config.kmsKeyID
    }
}

/// `DescribeEndpoint`'s output.
public struct DescribeEndpointOutput: Codable, Sendable, Equatable {
    public var EndpointName: String
    public var EndpointArn: String
    public var EndpointConfigName: String?
    public var ProductionVariants: [SageMakerProductionVariantSummary]?
    public var DataCaptureConfig: SageMakerDataCaptureSummary?
    /// `Creating`, `Updating`, `InService`, `Deleting`, `Failed`, ...
    public var EndpointStatus: String
    public var FailureReason: String?
    public var CreationTime: WireTime
    public var LastModifiedTime: WireTime
    public var AsyncInferenceConfig: SageMakerAsyncInferenceConfig?

    public init(
        _ endpoint: Endpoint, arn: String, variants: [SageMakerProductionVariantSummary], config: CreateEndpointConfigInput?
    ) {
        EndpointName = endpoint.name
        EndpointArn = arn
        EndpointConfigName = endpoint.configName
        ProductionVariants = variants.isEmpty ? nil : variants
        DataCaptureConfig = config?.DataCaptureConfig.map { SageMakerDataCaptureSummary($0.config()) }
        EndpointStatus = endpoint.status.rawValue
        FailureReason = endpoint.failureReason
        CreationTime = WireTime(endpoint.createdAt)
        LastModifiedTime = WireTime(endpoint.updatedAt)
        AsyncInferenceConfig = config?.AsyncInferenceConfig
    }
}

// MARK: Listing

/// The input of the `List*` operations; each reads the fields it has.
public struct SageMakerListInput: Codable, Sendable, Equatable {
    public var SortBy: String?
    public var SortOrder: String?
    public var NextToken: String?
    public var MaxResults: Int?
    public var NameContains: String?
    public var CreationTimeBefore: WireTime?
    public var CreationTimeAfter: WireTime?
    public var LastModifiedTimeBefore: WireTime?
    public var LastModifiedTimeAfter: WireTime?
    public var StatusEquals: String?

    public init(
        SortBy: String? = nil, SortOrder: String? = nil, NextToken: String? = nil, MaxResults: Int? = nil,
        NameContains: String? = nil, StatusEquals: String? = nil
    ) {
        self.SortBy = SortBy
        self.SortOrder = SortOrder
        self.NextToken = NextToken
        self.MaxResults = MaxResults
        self.NameContains = NameContains
        self.StatusEquals = StatusEquals
    }

    /// Checks the fields every listing shares.
    public func validate(sortKeys: [String], statuses: [String]?) throws(ServalError) {
        try SageMakerCheck.choice(SortBy, "SortBy", sortKeys)
        try SageMakerCheck.choice(SortOrder, "SortOrder", ["Ascending", "Descending"])
        try SageMakerCheck.range(MaxResults, "MaxResults", 1...100)
        try SageMakerCheck.length(NextToken, "NextToken", 0...8192)
        if let NameContains {
            try SageMakerCheck.length(NameContains, "NameContains", 1...63)
            guard NameContains.utf8.allSatisfy({ $0 == 0x2D || ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) }) else {
                throw .invalid("NameContains", "may only hold letters, digits and hyphens.")
            }
        }
        if let statuses {
            try SageMakerCheck.choice(StatusEquals, "StatusEquals", statuses)
        } else if StatusEquals != nil {
            throw .invalid("StatusEquals", "is not a filter of this operation.")
        }
    }

    /// One resource as a listing sees it.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var creationTime: Timestamp
        public var lastModifiedTime: Timestamp?
        public var status: String?

        public init(name: String, creationTime: Timestamp, lastModifiedTime: Timestamp? = nil, status: String? = nil) {
            self.name = name
            self.creationTime = creationTime
            self.lastModifiedTime = lastModifiedTime
            self.status = status
        }
    }

    /// Filters, sorts (default: newest first) and pages `items`. `NextToken` is the offset of the next page in
    /// the same listing.
    public func page<Item>(_ items: [Item], entry describe: (Item) -> Entry) throws(ServalError) -> (items: [Item], nextToken: String?) {
        let needle = NameContains?.lowercased()
        var selected: [(item: Item, entry: Entry)] = []
        for item in items {
            let entry = describe(item)
            if let needle, !entry.name.lowercased().contains(needle) { continue }
            if let after = CreationTimeAfter, !(entry.creationTime > after.timestamp) { continue }
            if let before = CreationTimeBefore, !(entry.creationTime < before.timestamp) { continue }
            if let after = LastModifiedTimeAfter, !((entry.lastModifiedTime ?? entry.creationTime) > after.timestamp) { continue }
            if let before = LastModifiedTimeBefore, !((entry.lastModifiedTime ?? entry.creationTime) < before.timestamp) { continue }
            if let status = StatusEquals, entry.status != status { continue }
            selected.append((item, entry))
        }
        let ascending = SortOrder == "Ascending"
        let sortBy = SortBy ?? "CreationTime"
        selected.sort { left, right in
            let (a, b) = ascending ? (left.entry, right.entry) : (right.entry, left.entry)
            switch sortBy {
            case "Name":
                return Array(a.name.utf8).lexicographicallyPrecedes(Array(b.name.utf8))
            case "Status" where a.status != b.status:
                return (a.status ?? "") < (b.status ?? "")
            default:
                if a.creationTime != b.creationTime { return a.creationTime < b.creationTime }
                return Array(a.name.utf8).lexicographicallyPrecedes(Array(b.name.utf8))
            }
        }
        var offset = 0
        if let token = NextToken, !token.isEmpty {
            guard let decoded = Data(base64Encoded: token).map({ String(decoding: $0, as: UTF8.self) }),
                decoded.hasPrefix("offset:"), let value = Int(decoded.dropFirst("offset:".count)), value >= 0
            else {
                throw .invalid("NextToken", "is not a token from a previous page of this listing.")
            }
            offset = value
        }
        let limit = MaxResults ?? 10
        let page = selected.dropFirst(offset).prefix(limit).map { $0.item }
        let next = offset + limit < selected.count ? Data("offset:\(offset + limit)".utf8).base64EncodedString() : nil
        return (Array(page), next)
    }
}

/// `ModelSummary`.
public struct SageMakerModelSummary: Codable, Sendable, Equatable {
    public var ModelName: String
    public var ModelArn: String
    public var CreationTime: WireTime
}

/// `ListModels`' output.
public struct ListModelsOutput: Codable, Sendable, Equatable {
    public var Models: [SageMakerModelSummary]
    public var NextToken: String?

    public init(_ models: [Model], nextToken: String?, arn: (String) -> String) {
        Models = models.map { SageMakerModelSummary(ModelName: $0.name, ModelArn: arn($0.name), CreationTime: WireTime($0.createdAt)) }
        NextToken = nextToken
    }
}

/// `EndpointConfigSummary`.
public struct SageMakerEndpointConfigSummary: Codable, Sendable, Equatable {
    public var EndpointConfigName: String
    public var EndpointConfigArn: String
    public var CreationTime: WireTime
}

/// `ListEndpointConfigs`' output.
public struct ListEndpointConfigsOutput: Codable, Sendable, Equatable {
    public var EndpointConfigs: [SageMakerEndpointConfigSummary]
    public var NextToken: String?

    public init(_ configs: [EndpointConfig], nextToken: String?, arn: (String) -> String) {
        EndpointConfigs = configs.map {
            SageMakerEndpointConfigSummary(EndpointConfigName: $0.name, EndpointConfigArn: arn($0.name), CreationTime: WireTime($0.createdAt))
        }
        NextToken = nextToken
    }
}

/// `EndpointSummary`.
public struct SageMakerEndpointSummary: Codable, Sendable, Equatable {
    public var EndpointName: String
    public var EndpointArn: String
    public var CreationTime: WireTime
    public var LastModifiedTime: WireTime
    public var EndpointStatus: String
}

/// `ListEndpoints`' output.
public struct ListEndpointsOutput: Codable, Sendable, Equatable {
    public var Endpoints: [SageMakerEndpointSummary]
    public var NextToken: String?

    public init(_ endpoints: [Endpoint], nextToken: String?, arn: (String) -> String) {
        Endpoints = endpoints.map {
            SageMakerEndpointSummary(
                EndpointName: $0.name, EndpointArn: arn($0.name), CreationTime: WireTime($0.createdAt),
                LastModifiedTime: WireTime($0.updatedAt), EndpointStatus: $0.status.rawValue)
        }
        NextToken = nextToken
    }
}
