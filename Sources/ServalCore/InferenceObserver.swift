/// The way a model invocation came in: one of a bounded set, used as a metric label.
public enum InferencePath: String, Sendable, CaseIterable {
    /// The SageMaker runtime API (`POST /endpoints/{name}/invocations`).
    case sageMaker = "sagemaker"
    /// The Open Inference Protocol over REST (`/v2/models/{m}/infer`).
    case oipREST = "oip_rest"
    /// The Open Inference Protocol over gRPC.
    case oipGRPC = "oip_grpc"
    /// An asynchronous invocation, when the dispatcher runs it.
    case async
    /// One payload of a batch transform job.
    case transform
}

/// Why a model invocation failed, as metrics count it: one of a bounded set, used as a metric label.
public enum InferenceFailure: String, Sendable, CaseIterable {
    /// Serval refused the request before the model saw it (a bad body, an unknown variant).
    case validation
    /// The model or its handler code rejected the input or raised.
    case modelError = "model_error"
    /// The variant's queue was full.
    case overloaded
    /// The model did not answer within the invocation timeout.
    case timeout
    /// The variant could not serve: loading, failed, stopping, or its worker crashed.
    case unavailable
    /// A failure inside Serval.
    case `internal`

    /// The failure that an error of `code` counts as.
    public init(_ code: ServalError.Code) {
        switch code {
        case .validationError, .notFound, .conflict, .payloadTooLarge: self = .validation
        case .modelError: self = .modelError
        case .overloaded: self = .overloaded
        case .invocationTimeout: self = .timeout
        case .modelNotReady, .serviceUnavailable: self = .unavailable
        case .internalFailure: self = .internal
        }
    }
}

/// What names a variant in metrics: its endpoint (or transform job), its name and its model.
public struct VariantLabels: Sendable, Hashable {
    /// The endpoint's name; for a transform job's workers, `transform-job/<job>`.
    public var endpoint: String
    /// The variant's name.
    public var variant: String
    /// The model's name.
    public var model: String

    /// Creates the labels.
    public init(endpoint: String, variant: String, model: String) {
        self.endpoint = endpoint
        self.variant = variant
        self.model = model
    }
}

/// Receives what happens on the way into a model, so that metrics (or anything else that watches) live beside
/// the serving code instead of inside it; Triton's metric reporter, as a seam. The runtime and the inference entry
/// are handed one; ``NoInferenceObserver`` when metrics are off.
public protocol InferenceObserver: Sendable {
    /// The observer of one variant's events. Asked once when a variant's runtime is made; the runtime keeps it, so
    /// the returned value should have its instruments ready and make no look-ups per event.
    func variant(_ labels: VariantLabels) -> any VariantObserver
}

/// Receives one variant's events. Called on hot paths: each method must be cheap and must not block.
public protocol VariantObserver: Sendable {
    /// A model invocation ended: every path counts each invocation once, here.
    ///
    /// - Parameters:
    ///   - duration: from the request reaching the inference entry to its answer.
    ///   - failure: `nil` for success.
    func invocationEnded(path: InferencePath, duration: Duration, failure: InferenceFailure?)

    /// A batch went to a worker: `items` requests holding `rows` inferences (a SageMaker request counts 1, a
    /// tensor request its first dimension).
    func batchSent(items: Int, rows: Int)

    /// A request left the queue for a worker after waiting `duration`.
    func queued(for duration: Duration)

    /// A worker answered a batch after computing for `duration`.
    func batchComputed(in duration: Duration)

    /// A worker loaded the model in `duration`, from its start to its READY.
    func modelLoaded(in duration: Duration)

    /// A transform job's workers finished `count` more records.
    func recordsTransformed(_ count: Int)

    /// `count` captured invocations were dropped: the capture buffer was full, or writing them failed.
    func captureDropped(_ count: Int)
}

/// The observer used when metrics are off: it ignores everything.
public struct NoInferenceObserver: InferenceObserver, VariantObserver {
    /// Creates it.
    public init() {}

    public func variant(_ labels: VariantLabels) -> any VariantObserver { self }
    public func invocationEnded(path: InferencePath, duration: Duration, failure: InferenceFailure?) {}
    public func batchSent(items: Int, rows: Int) {}
    public func queued(for duration: Duration) {}
    public func batchComputed(in duration: Duration) {}
    public func modelLoaded(in duration: Duration) {}
    public func recordsTransformed(_ count: Int) {}
    public func captureDropped(_ count: Int) {}
}
