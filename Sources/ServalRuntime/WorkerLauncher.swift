public import Logging
public import NIOCore
public import ServalCore
public import ServalWorkerIPC

/// One started model worker, as a ``VariantRuntime`` drives it: frames in and out over the worker protocol
/// (docs/worker-protocol.md), and the process's end.
///
/// ``WorkerProcess`` (a Python worker) is the production kind; test support plays the worker's part in-process over
/// the same codec.
public protocol ModelWorker: Sendable, CustomStringConvertible {
    /// Frames from the worker, in order; finishes when its channel closes or it breaks the protocol.
    var frames: AsyncStream<WorkerFrame> { get }

    /// Sends one encoded frame. Failures surface as the channel closing, which ends ``frames``.
    func send(_ frame: ByteBuffer)

    /// Ends the worker at once (SIGKILL for a process) and closes its channel.
    func kill()

    /// Waits for the worker to end and returns how it ended.
    func waitForExit() async -> ExitStatus

    /// The last `lines` lines the worker printed, once its output has ended (or after a short wait).
    func outputTail(lines: Int) async -> String

    /// The worker's resident memory in bytes; 0 when unknown.
    func residentMemoryBytes() -> Int
}

/// Starts the workers of variants: the seam between a ``VariantRuntime`` and how a model actually runs.
///
/// A launcher owns everything a worker needs beyond the variant's spec (environment resolution, the interpreter,
/// the user it runs as, where its output goes). ``PythonWorkerLauncher`` is the production launcher.
public protocol WorkerLauncher: Sendable {
    /// Starts the worker of instance slot `slot` of the variant `spec` and connects to it; it then loads the model
    /// and reports READY or LOAD_FAILED as its first frame.
    ///
    /// - Parameter logger: Serval's log for this variant (it carries the endpoint and variant).
    /// - Throws: ``ServalError`` when the worker cannot be started at all (no environment for the model, a failed
    ///   spawn); the variant then fails with the error's message.
    func launch(_ spec: VariantSpec, slot: Int, logger: Logger) async throws(ServalError) -> any ModelWorker

    /// How the files of a file invocation reach this launcher's workers; `nil` when workers read and write Serval's
    /// paths directly.
    var fileExchange: FileExchange? { get }
}

/// Launches Python workers (`python -m serval_worker`) in the model's Python environment, as the configured user.
public struct PythonWorkerLauncher: WorkerLauncher {
    /// The Python environments workers run in; resolved per model package at each launch.
    public let environments: PythonEnvironments
    /// The event loops the workers' channels use.
    public let eventLoopGroup: any EventLoopGroup
    /// Where workers' output lines go, in the streams each spec's ``VariantSpec/logDestination`` names; `nil` keeps
    /// them only in Serval's own log.
    public let logs: (any WorkerLogSink)?

    /// Creates the launcher.
    public init(environments: PythonEnvironments, eventLoopGroup: any EventLoopGroup, logs: (any WorkerLogSink)? = nil) {
        self.environments = environments
        self.eventLoopGroup = eventLoopGroup
        self.logs = logs
    }

    /// A worker running as another user cannot reach Serval's object folders: its files are handed over.
    public var fileExchange: FileExchange? { environments.runAs.fileExchange }

    /// Resolves (creating it on first use) the Python environment of the model's package, then spawns
    /// `python -m serval_worker` in the model's folder and connects to it.
    public func launch(_ spec: VariantSpec, slot: Int, logger: Logger) async throws(ServalError) -> any ModelWorker {
        let environment = try await environments.environment(for: spec.model.package)
        return try await WorkerProcess.launch(
            WorkerLaunchSpec(
                python: environment.python, workerPath: environments.workerPath,
                modelDirectory: spec.modelDirectory, environment: spec.model.environment,
                label: "\(spec.endpointName)/\(spec.variant.name)/\(slot)", identity: environments.runAs,
                log: logs.map { ($0, spec.logDestination.stream(slot: slot)) }),
            group: eventLoopGroup, logger: logger)
    }
}
