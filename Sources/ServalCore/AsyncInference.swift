/// The asynchronous inference section of an endpoint config (SageMaker's `AsyncInferenceConfig`, plus webhooks).
public struct AsyncInferenceConfig: Codable, Sendable, Equatable {
    /// Where results go: `s3://bucket/prefix`; each result is `<prefix>/<inference id>.out`.
    public var outputPath: String
    /// Where failure objects go: `s3://bucket/prefix`; defaults to the output path.
    public var failurePath: String?
    /// How many invocations each instance runs at once (1...1000). Async work never holds more than
    /// `instances × this` places in a variant's queue, so real-time traffic always finds room.
    public var maxConcurrentInvocationsPerInstance: Int
    /// A URL notified with a JSON body when an invocation completes.
    public var successWebhook: String?
    /// A URL notified with a JSON body when an invocation fails or expires.
    public var errorWebhook: String?
    /// A shared secret: notifications then carry `X-Serval-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    public var webhookSecret: String?
    /// How long a request may wait in the queue before it expires, by default (60...21600 s).
    public var defaultRequestTTLSeconds: Int
    /// How long one invocation may run, by default (1...3600 s).
    public var defaultInvocationTimeoutSeconds: Int
    /// How many times an invocation is tried when a worker crashes under it (1...100) before it fails.
    public var maxAttempts: Int

    /// SageMaker's default queue TTL: 6 hours.
    public static let defaultRequestTTLSeconds = 21_600
    /// SageMaker's default async invocation timeout: 15 minutes.
    public static let defaultInvocationTimeoutSeconds = 900
    /// The default number of concurrent invocations per instance.
    public static let defaultMaxConcurrentInvocationsPerInstance = 4
    /// The default number of attempts.
    public static let defaultMaxAttempts = 3

    /// Creates an async section.
    public init(
        outputPath: String,
        failurePath: String? = nil,
        maxConcurrentInvocationsPerInstance: Int = AsyncInferenceConfig.defaultMaxConcurrentInvocationsPerInstance,
        successWebhook: String? = nil,
        errorWebhook: String? = nil,
        webhookSecret: String? = nil,
        defaultRequestTTLSeconds: Int = AsyncInferenceConfig.defaultRequestTTLSeconds,
        defaultInvocationTimeoutSeconds: Int = AsyncInferenceConfig.defaultInvocationTimeoutSeconds,
        maxAttempts: Int = AsyncInferenceConfig.defaultMaxAttempts
    ) {
        self.outputPath = outputPath
        self.failurePath = failurePath
        self.maxConcurrentInvocationsPerInstance = maxConcurrentInvocationsPerInstance
        self.successWebhook = successWebhook
        self.errorWebhook = errorWebhook
        self.webhookSecret = webhookSecret
        self.defaultRequestTTLSeconds = defaultRequestTTLSeconds
        self.defaultInvocationTimeoutSeconds = defaultInvocationTimeoutSeconds
        self.maxAttempts = maxAttempts
    }

    /// The failure path, or the output path when none is set.
    public var effectiveFailurePath: String { failurePath ?? outputPath }

    /// Checks every field except the webhooks' addresses, which the services check against the allow-list.
    public func validate(field: String) throws(ServalError) {
        try ObjectLocation.validate(prefixURI: outputPath, field: "\(field).outputPath")
        if let failurePath { try ObjectLocation.validate(prefixURI: failurePath, field: "\(field).failurePath") }
        guard (1...1000).contains(maxConcurrentInvocationsPerInstance) else {
            throw .invalid("\(field).maxConcurrentInvocationsPerInstance", "is \(maxConcurrentInvocationsPerInstance); it must be between 1 and 1000.")
        }
        guard AsyncLimits.requestTTLSeconds.contains(defaultRequestTTLSeconds) else {
            throw .invalid("\(field).requestTTLSeconds", "must be between 60 and 21600 seconds.")
        }
        guard AsyncLimits.invocationTimeoutSeconds.contains(defaultInvocationTimeoutSeconds) else {
            throw .invalid("\(field).invocationTimeoutSeconds", "must be between 1 and 3600 seconds.")
        }
        guard (1...100).contains(maxAttempts) else {
            throw .invalid("\(field).maxAttempts", "is \(maxAttempts); it must be between 1 and 100.")
        }
        if let webhookSecret, webhookSecret.isEmpty || webhookSecret.utf8.count > 256 {
            throw .invalid("\(field).webhookSecret", "must be 1 to 256 characters long.")
        }
    }
}

/// Limits of asynchronous inference (SageMaker's, CONTRACTS.md §1 and §5).
public enum AsyncLimits {
    /// The largest inline request body: 128,000 bytes.
    public static let maxInlineBodyBytes = 128_000
    /// The largest input read from the object store: 1 GB.
    public static let maxInputBytes: Int64 = 1_000_000_000
    /// The allowed request TTLs, in seconds.
    public static let requestTTLSeconds = 60...21_600
    /// The allowed invocation timeouts, in seconds.
    public static let invocationTimeoutSeconds = 1...3600
    /// The longest inference id.
    public static let maxInferenceIdLength = 64

    /// Checks a caller's inference id: 1–64 printable ASCII characters, none of them `/` or `\`, and not `.`
    /// or `..`, so that it can name the output object.
    public static func validate(inferenceId: String, field: String) throws(ServalError) {
        let bytes = Array(inferenceId.utf8)
        guard (1...maxInferenceIdLength).contains(bytes.count) else {
            throw .invalid(field, "must be 1 to \(maxInferenceIdLength) characters long.")
        }
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x2F && $0 != 0x5C }), inferenceId != ".",
            inferenceId != ".."
        else {
            throw .invalid(field, "\"\(inferenceId)\" may only hold printable ASCII characters other than spaces, \"/\" and \"\\\".")
        }
    }
}

/// The status of an asynchronous invocation.
public enum AsyncInvocationStatus: String, Codable, Sendable, Equatable, CaseIterable {
    /// Accepted and committed; waiting for an instance.
    case queued = "Queued"
    /// Claimed by Serval under a lease and running.
    case inProgress = "InProgress"
    /// The output object is written.
    case completed = "Completed"
    /// It ended without output; the failure object and `failureReason` say why.
    case failed = "Failed"
    /// It waited in the queue past its TTL.
    case expired = "Expired"

    /// Whether the invocation has ended.
    public var isFinal: Bool { self == .completed || self == .failed || self == .expired }
}

/// One asynchronous invocation: what was asked, where its result goes and how far it got.
public struct AsyncInvocation: Codable, Sendable, Equatable {
    /// The inference id: the caller's `X-Amzn-SageMaker-Inference-Id`, or a UUID Serval chose.
    public var id: String
    /// The endpoint it runs on.
    public var endpointName: String
    /// The status.
    public var status: AsyncInvocationStatus
    /// Where the input is, as `s3://bucket/key`; `nil` when the body came inline (it is then stored with the
    /// invocation).
    public var inputLocation: String?
    /// The input's content type; empty when none was given.
    public var contentType: String
    /// The content type the caller accepts; empty when none was given.
    public var accept: String
    /// SageMaker's custom attributes, passed to the model; empty when absent.
    public var customAttributes: String
    /// Where the result is written.
    public var outputLocation: String
    /// Where the failure object is written.
    public var failureLocation: String
    /// The variant that ran it, once it has run.
    public var variant: String?
    /// How many times it has been started.
    public var attempts: Int
    /// How many starts it may have before it fails.
    public var maxAttempts: Int
    /// How long one attempt may run, in seconds.
    public var invocationTimeoutSeconds: Int
    /// When it was accepted.
    public var createdAt: Timestamp
    /// When it last changed.
    public var updatedAt: Timestamp
    /// When its last attempt started.
    public var startedAt: Timestamp?
    /// When it ended.
    public var completedAt: Timestamp?
    /// When it expires if it has not started by then (acceptance plus the TTL).
    public var expiresAt: Timestamp
    /// The output's content type, once completed.
    public var outputContentType: String?
    /// Why it failed or expired, for the user.
    public var failureReason: String?
    /// The lowercase hex SHA-256 of the inline body, when the body came inline (so that a resubmission with the
    /// same id can be told apart from one with another body); `nil` for an input location, and for invocations
    /// accepted before Serval recorded it.
    public var inlineBodySHA256: String?

    /// Creates an invocation record.
    public init(
        id: String, endpointName: String, status: AsyncInvocationStatus = .queued, inputLocation: String?,
        contentType: String, accept: String, customAttributes: String, outputLocation: String, failureLocation: String,
        variant: String? = nil, attempts: Int = 0, maxAttempts: Int, invocationTimeoutSeconds: Int, createdAt: Timestamp,
        updatedAt: Timestamp, startedAt: Timestamp? = nil, completedAt: Timestamp? = nil, expiresAt: Timestamp,
        outputContentType: String? = nil, failureReason: String? = nil, inlineBodySHA256: String? = nil
    ) {
        self.id = id
        self.endpointName = endpointName
        self.status = status
        self.inputLocation = inputLocation
        self.contentType = contentType
        self.accept = accept
        self.customAttributes = customAttributes
        self.outputLocation = outputLocation
        self.failureLocation = failureLocation
        self.variant = variant
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.invocationTimeoutSeconds = invocationTimeoutSeconds
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.expiresAt = expiresAt
        self.outputContentType = outputContentType
        self.failureReason = failureReason
        self.inlineBodySHA256 = inlineBodySHA256
    }
}

/// A webhook notification waiting to be delivered (at least once), kept in the store with the invocation's end.
public struct AsyncNotification: Codable, Sendable, Equatable {
    /// The store's sequence number.
    public var sequence: Int64
    /// The invocation it reports.
    public var inferenceId: String
    /// The invocation's endpoint.
    public var endpointName: String
    /// Where to POST it.
    public var url: String
    /// The JSON body.
    public var body: [UInt8]
    /// The `X-Serval-Signature` header, when the endpoint's config has a webhook secret.
    public var signature: String?
    /// Deliveries tried so far.
    public var attempts: Int
    /// When the next delivery is due.
    public var nextAttemptAt: Timestamp
    /// Why the last delivery failed (a refused address, a redirect, a non-2xx answer, no answer), if one did.
    public var lastError: String?

    /// Creates a notification.
    public init(
        sequence: Int64, inferenceId: String, endpointName: String, url: String, body: [UInt8], signature: String? = nil,
        attempts: Int, nextAttemptAt: Timestamp, lastError: String? = nil
    ) {
        self.sequence = sequence
        self.inferenceId = inferenceId
        self.endpointName = endpointName
        self.url = url
        self.body = body
        self.signature = signature
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
    }
}
