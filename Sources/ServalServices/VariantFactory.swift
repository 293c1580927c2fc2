public import Logging
public import NIOCore
public import ServalCore
public import ServalRuntime

/// Makes the runtime of a variant, the one way Serval builds one: endpoints' variants and transform jobs' workers
/// alike get the same Python environments, event loops, observer and log streams.
public struct VariantFactory: Sendable {
    /// The Python environments workers run in.
    public let environments: PythonEnvironments
    /// The event loops the workers' channels use.
    public let eventLoopGroup: any EventLoopGroup
    /// Receives every variant's events (metrics).
    public let observer: any InferenceObserver
    /// Where workers' output lines go, in the streams each spec's ``VariantSpec/logDestination`` names; `nil` keeps
    /// them only in Serval's own log.
    public let logs: (any WorkerLogSink)?
    let logger: Logger

    /// Creates the factory.
    public init(
        environments: PythonEnvironments, eventLoopGroup: any EventLoopGroup,
        observer: any InferenceObserver = NoInferenceObserver(), logs: (any WorkerLogSink)? = nil, logger: Logger
    ) {
        self.environments = environments
        self.eventLoopGroup = eventLoopGroup
        self.observer = observer
        self.logs = logs
        self.logger = logger
    }

    /// A runtime for `spec`, not started: its owner runs ``VariantRuntime/run()``. It is the first kind of
    /// ``VariantServing``, and what endpoints and transform jobs serve with today.
    ///
    /// - Parameter onStateChange: called, in order, whenever the variant's state changes.
    public func make(
        _ spec: VariantSpec, onStateChange: @escaping @Sendable (VariantRuntime.State) async -> Void = { _ in }
    ) -> VariantRuntime {
        VariantRuntime(
            spec: spec, environments: environments, eventLoopGroup: eventLoopGroup,
            observer: observer.variant(
                VariantLabels(endpoint: spec.endpointName, variant: spec.variant.name, model: spec.model.name)),
            logs: logs, logger: logger, onStateChange: onStateChange)
    }
}
