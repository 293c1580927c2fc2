public import ServalCore

/// The `asyncInference` section of an endpoint config in requests and descriptions. The webhook secret is
/// write-only: descriptions say whether one is set, never what it is.
public struct AsyncInferenceSettings: Codable, Sendable, Equatable {
    /// `s3://bucket/prefix` for results.
    public var outputPath: String
    /// `s3://bucket/prefix` for failure objects; default the output path.
    public var failurePath: String?
    /// Concurrent invocations per instance, 1...1000; default 4.
    public var maxConcurrentInvocationsPerInstance: Int?
    /// Notified when an invocation completes.
    public var successWebhook: String?
    /// Notified when an invocation fails or expires.
    public var errorWebhook: String?
    /// Signs notifications (`X-Serval-Signature`); only in requests.
    public var webhookSecret: String?
    /// In descriptions: whether a webhook secret is set.
    public var webhookSecretSet: Bool?
    /// Default queue TTL in seconds, 60...21600; default 21600.
    public var requestTTLSeconds: Int?
    /// Default invocation timeout in seconds, 1...3600; default 900.
    public var invocationTimeoutSeconds: Int?
    /// Attempts before an invocation whose worker keeps crashing fails, 1...100; default 3.
    public var maxAttempts: Int?

    /// Creates a section.
    public init(
        outputPath: String, failurePath: String? = nil, maxConcurrentInvocationsPerInstance: Int? = nil,
        successWebhook: String? = nil, errorWebhook: String? = nil, webhookSecret: String? = nil,
        requestTTLSeconds: Int? = nil, invocationTimeoutSeconds: Int? = nil, maxAttempts: Int? = nil
    ) {
        self.outputPath = outputPath
        self.failurePath = failurePath
        self.maxConcurrentInvocationsPerInstance = maxConcurrentInvocationsPerInstance
        self.successWebhook = successWebhook
        self.errorWebhook = errorWebhook
        self.webhookSecret = webhookSecret
        self.requestTTLSeconds = requestTTLSeconds
        self.invocationTimeoutSeconds = invocationTimeoutSeconds
        self.maxAttempts = maxAttempts
    }

    /// Describes a stored section, with every default filled in and the secret hidden.
    public init(_ config: AsyncInferenceConfig) {
        self.init(
            outputPath: config.outputPath, failurePath: config.effectiveFailurePath,
            maxConcurrentInvocationsPerInstance: config.maxConcurrentInvocationsPerInstance,
            successWebhook: config.successWebhook, errorWebhook: config.errorWebhook,
            requestTTLSeconds: config.defaultRequestTTLSeconds,
            invocationTimeoutSeconds: config.defaultInvocationTimeoutSeconds, maxAttempts: config.maxAttempts)
        webhookSecretSet = config.webhookSecret != nil
    }

    /// The domain section, with defaults for absent fields.
    public var config: AsyncInferenceConfig {
        AsyncInferenceConfig(
            outputPath: outputPath, failurePath: failurePath,
            maxConcurrentInvocationsPerInstance: maxConcurrentInvocationsPerInstance
                ?? AsyncInferenceConfig.defaultMaxConcurrentInvocationsPerInstance,
            successWebhook: successWebhook, errorWebhook: errorWebhook, webhookSecret: webhookSecret,
            defaultRequestTTLSeconds: requestTTLSeconds ?? AsyncInferenceConfig.defaultRequestTTLSeconds,
            defaultInvocationTimeoutSeconds: invocationTimeoutSeconds ?? AsyncInferenceConfig.defaultInvocationTimeoutSeconds,
            maxAttempts: maxAttempts ?? AsyncInferenceConfig.defaultMaxAttempts)
    }
}

/// `POST /endpoints/{name}/async-invocations` answers `{"InferenceId"}`, as SageMaker's InvokeEndpointAsync.
public struct AsyncInvocationAccepted: Codable, Sendable, Equatable {
    public var inferenceId: String

    enum CodingKeys: String, CodingKey {
        case inferenceId = "InferenceId"
    }

    /// Creates the answer.
    public init(inferenceId: String) {
        self.inferenceId = inferenceId
    }
}

/// `GET /endpoints/{name}/async-invocations/{id}`: an invocation's status.
public struct AsyncInvocationDescription: Codable, Sendable, Equatable {
    public var inferenceId: String
    public var endpoint: String
    /// `Queued`, `InProgress`, `Completed`, `Failed` or `Expired`.
    public var status: String
    public var inputLocation: String?
    public var outputLocation: String
    public var failureLocation: String
    public var contentType: String?
    public var accept: String?
    /// The output's content type, once completed.
    public var outputContentType: String?
    /// The variant that ran it.
    public var variant: String?
    public var attempts: Int
    public var maxAttempts: Int
    public var invocationTimeoutSeconds: Int
    public var createdAt: String
    public var updatedAt: String
    public var startedAt: String?
    public var completedAt: String?
    public var expiresAt: String
    /// Why it failed or expired.
    public var failureReason: String?

    /// Describes an invocation.
    public init(_ invocation: AsyncInvocation) {
        inferenceId = invocation.id
        endpoint = invocation.endpointName
        status = invocation.status.rawValue
        inputLocation = invocation.inputLocation
        outputLocation = invocation.outputLocation
        failureLocation = invocation.failureLocation
        contentType = invocation.contentType.isEmpty ? nil : invocation.contentType
        accept = invocation.accept.isEmpty ? nil : invocation.accept
        outputContentType = invocation.outputContentType
        variant = invocation.variant
        attempts = invocation.attempts
        maxAttempts = invocation.maxAttempts
        invocationTimeoutSeconds = invocation.invocationTimeoutSeconds
        createdAt = invocation.createdAt.iso8601
        updatedAt = invocation.updatedAt.iso8601
        startedAt = invocation.startedAt?.iso8601
        completedAt = invocation.completedAt?.iso8601
        expiresAt = invocation.expiresAt.iso8601
        failureReason = invocation.failureReason
    }
}

/// `GET /endpoints/{name}/async-invocations`: a page of invocations, newest first.
public struct AsyncInvocationList: Codable, Sendable, Equatable {
    public var invocations: [AsyncInvocationDescription]
    /// Pass as `nextToken` for the next page; absent on the last one.
    public var nextToken: String?

    /// Creates a page.
    public init(invocations: [AsyncInvocationDescription], nextToken: String?) {
        self.invocations = invocations
        self.nextToken = nextToken
    }
}

/// The async queue of an endpoint, in its description.
public struct AsyncQueueState: Codable, Sendable, Equatable {
    /// Invocations waiting.
    public var queued: Int
    /// Invocations running (on any Serval process).
    public var inProgress: Int

    /// Creates a state.
    public init(queued: Int, inProgress: Int) {
        self.queued = queued
        self.inProgress = inProgress
    }
}
