public import ServalCore

/// The lifecycle of a variant, whatever serves it.
public enum VariantState: Sendable, Equatable {
    /// Instances are starting; not every one has loaded the model yet.
    case starting
    /// Every instance has loaded the model at least once; requests are served.
    case ready
    /// The variant cannot serve; the reason says why, for the user.
    case failed(String)
    /// The variant was stopped.
    case stopped
}

/// What serves one production variant: the seam between the services (endpoints, transform jobs, the inference
/// entry) and the machinery that runs a model.
///
/// ``VariantRuntime`` — a dynamic batcher in front of Python worker processes — is the first kind. Other kinds
/// (on-demand or serverless variants, several models in one worker, pipelines, a user's own server process) conform
/// here, so that the frontends and services that call a variant do not change when one is added.
///
/// Its owner calls ``run()`` once, in a task of its own, and ``stop(drainTimeout:exitTimeout:)`` to end it; the
/// variant reports its ``VariantState`` through the callback it was made with. Every request method may be called
/// from any task, concurrently.
public protocol VariantServing: AnyObject, Sendable {
    /// What the variant runs: its endpoint, settings and model.
    var spec: VariantSpec { get }
    /// Receives the variant's events; the inference entry tells it how each invocation ended.
    var observer: any VariantObserver { get }
    /// The variant's last minute, for its deploy card.
    var activity: RecentActivity { get }

    /// Runs a SageMaker-style request.
    ///
    /// - Parameter timeoutSeconds: the request's own timeout (asynchronous invocations, transform jobs), which also
    ///   lifts the real-time response limit; `nil` for a real-time request under the variant's
    ///   `invocationTimeoutSeconds`.
    func invoke(_ request: InvocationRequest, timeoutSeconds: Int?) async throws(ServalError) -> InvocationResponse

    /// Runs a SageMaker-style request whose body is a file and whose answer goes to a file (large asynchronous
    /// inputs), so that the payload never passes through Serval's memory. When this throws, no output is left at
    /// `request.outputPath`.
    func invoke(
        file request: FileInvocationRequest, timeoutSeconds: Int?
    ) async throws(ServalError) -> FileInvocationResponse

    /// Runs an Open Inference Protocol request (tensors), checked against the model's signature.
    func infer(_ request: InferenceRequest) async throws(ServalError) -> InferenceResponse

    /// What the model says of itself, once it has loaded; `nil` before.
    func modelSignature() async -> ModelSignature?

    /// Counts and cumulative times of the requests answered since the variant started.
    func inferenceStatistics() async -> InferenceStatistics

    /// The variant's current numbers: state, instances, queue.
    func status() async -> VariantStatus

    /// The resident memory of the variant's model processes, in bytes.
    func workerMemoryBytes() async -> Int

    /// Starts the variant and serves until it is stopped or fails.
    func run() async

    /// Stops the variant gracefully: refuses new requests, lets queued and running ones finish (up to
    /// `drainTimeout`), then ends its instances, forcibly after `exitTimeout`.
    func stop(drainTimeout: Duration, exitTimeout: Duration) async
}

extension VariantServing {
    /// The variant's name.
    public var name: String { spec.variant.name }

    /// The variant's metric labels.
    public var labels: VariantLabels {
        VariantLabels(endpoint: spec.endpointName, variant: spec.variant.name, model: spec.model.name)
    }

    /// Runs a real-time SageMaker-style request under the variant's `invocationTimeoutSeconds`.
    public func invoke(_ request: InvocationRequest) async throws(ServalError) -> InvocationResponse {
        try await invoke(request, timeoutSeconds: nil)
    }

    /// Stops the variant, letting requests finish for up to 30 s and its instances exit for up to 10 s.
    public func stop() async {
        await stop(drainTimeout: .seconds(30), exitTimeout: .seconds(10))
    }

    /// Stops the variant at once: requests still queued fail, and instances get 5 s to exit.
    public func stopNow() async {
        await stop(drainTimeout: .zero, exitTimeout: .seconds(5))
    }
}
