public import ServalCore

/// `GET /v2`: the server's metadata.
public struct OIPServerMetadata: Codable, Sendable, Equatable {
    /// The server's name, `serval`.
    public var name: String
    /// Serval's version.
    public var version: String
    /// The protocol extensions Serval speaks.
    public var extensions: [String]

    /// Creates the document.
    public init(name: String, version: String, extensions: [String]) {
        self.name = name
        self.version = version
        self.extensions = extensions
    }
}

/// `GET /v2/models/{m}`: a model's metadata.
public struct OIPModelMetadata: Codable, Sendable, Equatable {
    /// The model (endpoint) name.
    public var name: String
    /// Its versions: the endpoint's variants.
    public var versions: [String]
    /// The framework, e.g. `sklearn`.
    public var platform: String
    /// The inputs; -1 marks a variable dimension.
    public var inputs: [TensorMetadata]
    /// The outputs.
    public var outputs: [TensorMetadata]

    /// Creates the document.
    public init(name: String, versions: [String], signature: ModelSignature) {
        self.name = name
        self.versions = versions
        platform = signature.platform
        inputs = signature.inputs
        outputs = signature.outputs
    }
}

/// `GET /v2/health/live` and `/v2/health/ready`: `{"live": true}` or `{"ready": true}`, as KServe answers (Triton's
/// clients read only the status).
public struct OIPHealth: Codable, Sendable, Equatable {
    /// Whether the server is live; set on the liveness probe only.
    public var live: Bool?
    /// Whether the server is ready; set on the readiness probe only.
    public var ready: Bool?

    /// Creates the liveness answer.
    public init(live: Bool) {
        self.live = live
    }

    /// Creates the readiness answer.
    public init(ready: Bool) {
        self.ready = ready
    }
}

/// `GET /v2/models/{m}[/versions/{v}]/ready` when the model is ready: `{"name", "ready": true}`.
public struct OIPModelReady: Codable, Sendable, Equatable {
    /// The model (endpoint) name.
    public var name: String
    /// Whether it can serve.
    public var ready: Bool

    /// Creates the answer.
    public init(name: String, ready: Bool) {
        self.name = name
        self.ready = ready
    }
}

/// An error in the protocol's shape: `{"error": "..."}`.
public struct OIPErrorBody: Codable, Sendable, Equatable {
    /// The message for the user.
    public var error: String

    /// Creates the body.
    public init(error: String) {
        self.error = error
    }
}

/// One entry of `POST /v2/repository/index`.
public struct OIPRepositoryEntry: Codable, Sendable, Equatable {
    /// The model's name.
    public var name: String
    /// `READY`, `LOADING`, `UNLOADING` or `UNAVAILABLE`.
    public var state: String
    /// Why it is not ready; empty when it is.
    public var reason: String

    /// Creates an entry.
    public init(name: String, state: String, reason: String) {
        self.name = name
        self.state = state
        self.reason = reason
    }
}

/// The body `POST /v2/repository/index` may carry.
public struct OIPRepositoryIndexRequest: Codable, Sendable, Equatable {
    /// Only models that are ready (`true`) or not (`false`); all when absent.
    public var ready: Bool?
}

/// `GET /v2/models/{m}/stats`: Triton's statistics extension.
public struct OIPStatistics: Codable, Sendable, Equatable {
    /// A count and the nanoseconds it took.
    public struct Duration: Codable, Sendable, Equatable {
        /// How many.
        public var count: Int
        /// Their total duration in nanoseconds.
        public var ns: Int64

        init(_ timed: TimedCount) {
            count = timed.count
            ns = timed.nanoseconds
        }

        static let zero = Duration(TimedCount())
    }

    /// Per-request counts and times.
    public struct InferenceStats: Codable, Sendable, Equatable {
        /// Requests answered successfully, arrival to answer.
        public var success: Duration
        /// Requests that failed.
        public var fail: Duration
        /// Time in the queue.
        public var queue: Duration
        /// Time preparing inputs (inside the worker's batch time in Serval, so 0).
        public var computeInput: Duration
        /// Time in the worker, per request.
        public var computeInfer: Duration
        /// Time preparing outputs (inside the worker's batch time in Serval, so 0).
        public var computeOutput: Duration

        enum CodingKeys: String, CodingKey {
            case success, fail, queue
            case computeInput = "compute_input"
            case computeInfer = "compute_infer"
            case computeOutput = "compute_output"
        }
    }

    /// One model version's statistics.
    public struct ModelStats: Codable, Sendable, Equatable {
        /// The model (endpoint) name.
        public var name: String
        /// The version (variant).
        public var version: String
        /// When the last request was answered, in milliseconds since the Unix epoch.
        public var lastInference: Int64
        /// Rows inferred.
        public var inferenceCount: Int
        /// Batches run.
        public var executionCount: Int
        /// Per-request counts and times.
        public var inferenceStats: InferenceStats

        enum CodingKeys: String, CodingKey {
            case name, version
            case lastInference = "last_inference"
            case inferenceCount = "inference_count"
            case executionCount = "execution_count"
            case inferenceStats = "inference_stats"
        }

        /// Creates the statistics of one version.
        public init(name: String, version: String, statistics: InferenceStatistics) {
            self.name = name
            self.version = version
            lastInference = statistics.lastInferenceMilliseconds
            inferenceCount = statistics.inferenceCount
            executionCount = statistics.executionCount
            inferenceStats = InferenceStats(
                success: Duration(statistics.success), fail: Duration(statistics.fail),
                queue: Duration(statistics.queue), computeInput: .zero,
                computeInfer: Duration(statistics.computeInfer), computeOutput: .zero)
        }
    }

    /// Every version asked for.
    public var modelStats: [ModelStats]

    /// Creates the document.
    public init(modelStats: [ModelStats]) {
        self.modelStats = modelStats
    }

    enum CodingKeys: String, CodingKey {
        case modelStats = "model_stats"
    }
}
