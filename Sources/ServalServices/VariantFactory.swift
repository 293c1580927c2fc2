public import Logging
public import ServalCore
public import ServalRuntime

/// Makes the runtime of a variant, the one way Serval builds one: endpoints' variants and transform jobs' workers
/// alike get the same worker launcher (Python environments, event loops, log streams) and observer.
public struct VariantFactory: Sendable {
    /// Starts the variants' workers.
    public let launcher: any WorkerLauncher
    /// Receives every variant's events (metrics).
    public let observer: any InferenceObserver
    let logger: Logger

    /// Creates the factory.
    public init(launcher: any WorkerLauncher, observer: any InferenceObserver = NoInferenceObserver(), logger: Logger) {
        self.launcher = launcher
        self.observer = observer
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
            spec: spec, launcher: launcher,
            observer: observer.variant(
                VariantLabels(endpoint: spec.endpointName, variant: spec.variant.name, model: spec.model.name)),
            logger: logger, onStateChange: onStateChange)
    }
}
