import Foundation
public import Logging
import NIOCore
public import ServalCore
import ServalScheduling
import ServalWorkerIPC
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What it takes to run one production variant.
public struct VariantSpec: Sendable {
    /// The endpoint the variant belongs to.
    public var endpointName: String
    /// The variant's settings.
    public var variant: ProductionVariant
    /// The model it serves.
    public var model: Model
    /// The absolute path of the model's extracted package.
    public var modelDirectory: String
    /// Where each worker's output goes (``WorkerLogDestination/stream(slot:)``).
    public var logDestination: WorkerLogDestination

    /// Creates a spec; the workers write to the endpoint variant's log streams unless `logDestination` says
    /// otherwise.
    public init(
        endpointName: String, variant: ProductionVariant, model: Model, modelDirectory: String,
        logDestination: WorkerLogDestination? = nil
    ) {
        self.endpointName = endpointName
        self.variant = variant
        self.model = model
        self.modelDirectory = modelDirectory
        self.logDestination = logDestination ?? .endpoint(endpointName, variant: variant.name)
    }
}

/// A snapshot of a running variant, for describe calls and metrics.
public struct VariantStatus: Sendable, Equatable {
    /// The variant's lifecycle state.
    public var state: VariantState
    /// Instances the variant should run.
    public var desiredInstances: Int
    /// Instances ready to take batches now.
    public var readyInstances: Int
    /// Items waiting in the queue.
    public var queueDepth: Int
    /// Items in batches that instances are running.
    public var inFlight: Int
}

/// Runs one production variant: its worker instances, its dynamic batcher and its router.
///
/// The batching and routing decisions are ``BatchScheduler``'s; this actor carries them out against the workers
/// its ``WorkerLauncher`` starts (Python processes in production). Each instance slot is supervised: a worker that
/// exits or hangs past the invocation timeout is killed and restarted with capped backoff, and the requests it held
/// fail at once with a clear error. A worker that cannot load the model during the first start, or that crashes five times in a row,
/// makes the variant ``State/failed(_:)`` with the worker's own words as the reason.
public actor VariantRuntime: VariantServing {
    /// The lifecycle of a variant.
    public typealias State = VariantState

    /// What a queued request asks of the model.
    private enum Work: Sendable {
        /// A SageMaker-style request: a body the handler decodes.
        case payload(InvocationRequest)
        /// An Open Inference Protocol request: tensors.
        case tensors(InferenceRequest)
        /// A SageMaker-style request whose body is in a file and whose response goes to a file.
        case file(FileInvocationRequest)

        var payload: InvocationRequest? {
            if case .payload(let request) = self { request } else { nil }
        }

        var tensors: InferenceRequest? {
            if case .tensors(let request) = self { request } else { nil }
        }
    }

    /// The model's answer, of the same kind as the ``Work``.
    private enum Answer: Sendable {
        case payload(InvocationResponse)
        case tensors(InferenceResponse)
        case file(FileInvocationResponse)
    }

    private struct Pending {
        var work: Work
        /// The rows the request adds to a tensor batch (1 for a payload or a file).
        var rows: Int
        /// The request's own timeout in seconds; `nil` for the variant's `invocationTimeoutSeconds`.
        var timeoutSeconds: Int?
        var enqueuedAt: ContinuousClock.Instant
        var continuation: CheckedContinuation<Result<Answer, ServalError>, Never>
    }

    private enum InstanceOutcome {
        case exited
        case loadFailed(String)
        case launchFailed(ServalError)
    }

    /// The variant's spec.
    public nonisolated let spec: VariantSpec
    /// Receives the variant's events: the batches it runs here, the invocations it answers at the inference entry.
    /// They also go into ``activity``.
    public nonisolated let observer: any VariantObserver
    /// The variant's last minute, for its deploy card.
    public nonisolated let activity: RecentActivity
    private let launcher: any WorkerLauncher
    private let logger: Logger
    private let onStateChange: @Sendable (State) async -> Void

    private var scheduler: BatchScheduler<Pending>
    private var workers: [Int: any ModelWorker] = [:]
    private var state: State = .starting
    private var slotsEverReady = Set<Int>()
    private var drainWaiters: [CheckedContinuation<Void, Never>] = []
    private var stopping = false
    private var nextInstanceID = 1
    private var wakeUpTask: Task<Void, Never>?
    private var wakeUpAt: ContinuousClock.Instant?
    /// How the last worker crash looked, for the failure reason of a crash loop.
    private var lastCrash: String?
    private let allocator = ByteBufferAllocator()
    /// What the model says of itself, from its first worker's READY.
    private var signature: ModelSignature?
    private var statistics = InferenceStatistics()
    /// When each instance's batch in flight was sent.
    private var batchStartedAt: [Int: ContinuousClock.Instant] = [:]
    /// The batch class of each tensor signature seen; class 0 is SageMaker payloads, negative classes are
    /// requests that batch with nothing.
    private var batchClasses: [TensorBatchKey: Int] = [:]
    private var nextBatchClass = 1
    private var nextLoneClass = -1

    /// Creates a variant runtime; ``run()`` starts it.
    ///
    /// - Parameters:
    ///   - launcher: starts the variant's workers.
    ///   - onStateChange: called, in order, whenever ``State`` changes.
    public init(
        spec: VariantSpec,
        launcher: any WorkerLauncher,
        observer: any VariantObserver = NoInferenceObserver(),
        logger: Logger,
        onStateChange: @escaping @Sendable (State) async -> Void = { _ in }
    ) {
        self.spec = spec
        let activity = RecentActivity()
        self.activity = activity
        self.observer = ActivityRecorder(activity: activity, next: observer)
        self.launcher = launcher
        var logger = logger
        logger[metadataKey: "endpoint"] = "\(spec.endpointName)"
        logger[metadataKey: "variant"] = "\(spec.variant.name)"
        self.logger = logger
        self.onStateChange = onStateChange
        let batching = spec.variant.batching
        self.scheduler = BatchScheduler(
            configuration: .init(
                maxBatchSize: batching.maxBatchSize,
                maxQueueDelay: .microseconds(batching.maxQueueDelayMicroseconds),
                maxQueueSize: batching.maxQueueSize,
                invocationTimeout: .seconds(spec.variant.invocationTimeoutSeconds)))
    }

    // MARK: Serving

    /// Runs a SageMaker-style request through the variant's batcher and a worker.
    ///
    /// - Parameter timeoutSeconds: how long the request may wait in the queue and the batch it joins may run
    ///   (at least 1); `nil` for the variant's `invocationTimeoutSeconds` and a real-time request, whose response
    ///   may not exceed SageMaker's 6 MB. Asynchronous invocations and transform jobs bring their own,
    ///   and batch only with each other: a batch's deadline is its items' longest, so a real-time request must not
    ///   share a batch with a request that may run for an hour.
    public func invoke(
        _ request: InvocationRequest, timeoutSeconds: Int? = nil
    ) async throws(ServalError) -> InvocationResponse {
        let answer = try await submit(
            .payload(request), bytes: request.body.readableBytes, rows: 1,
            batchClass: timeoutSeconds == nil ? 0 : Self.timedPayloadClass, timeoutSeconds: timeoutSeconds)
        guard case .payload(let response) = answer else { throw Self.mismatchedAnswer }
        if timeoutSeconds == nil, response.body.readableBytes > InvocationLimits.maxPayloadBytes {
            throw ServalError(
                .modelError,
                "The model's response is \(response.body.readableBytes) bytes, above the \(InvocationLimits.maxPayloadBytes)-byte limit; use asynchronous inference for large outputs.")
        }
        return response
    }

    /// Runs a SageMaker-style request whose body is the file at `request.inputPath` and writes the response body
    /// to `request.outputPath`, so that the payload never passes through Serval's memory.
    ///
    /// The request takes a place in the variant's queue like any other and runs alone, in a batch of its own. The
    /// worker reads the whole input into its own memory and runs the model's handlers as for ``invoke(_:timeoutSeconds:)``.
    /// When this throws, no output of this request is left at `request.outputPath`: the worker removes it on the
    /// errors it reports, and Serval when the worker crashed or was killed (best effort, so the caller should
    /// still write to a temporary path and rename it into place on success).
    ///
    /// - Parameter timeoutSeconds: how long the request may wait in the queue and run (at least 1); `nil` for the
    ///   variant's `invocationTimeoutSeconds`.
    /// - Throws: ``ServalError`` with `.validationError` for input the handler rejects (or an input file the worker
    ///   cannot read), `.modelError` when the model raises or the output cannot be written, and the codes of
    ///   ``invoke(_:timeoutSeconds:)`` otherwise.
    public func invoke(
        file request: FileInvocationRequest, timeoutSeconds: Int? = nil
    ) async throws(ServalError) -> FileInvocationResponse {
        // A batch class of its own, and the size of a full batch: it goes out alone, without waiting for the
        // batching delay.
        let batchClass = nextLoneClass
        nextLoneClass -= 1
        // A worker running as another user cannot reach Serval's object folders: its files are handed over.
        let exchange = launcher.fileExchange
        let staged = try exchange?.stage(request) ?? request
        let answer: Answer
        do {
            answer = try await submit(
                .file(staged), bytes: 0, rows: 1, batchClass: batchClass, size: spec.variant.batching.maxBatchSize,
                timeoutSeconds: timeoutSeconds)
        } catch {
            exchange?.discard(staged)
            throw error
        }
        guard case .file(let response) = answer else {
            exchange?.discard(staged)
            throw Self.mismatchedAnswer
        }
        try exchange?.finish(staged, as: request)
        return response
    }

    /// Checks an Open Inference Protocol request against the model's signature, then runs it through the
    /// batcher (concatenated with compatible requests) and a worker.
    public func infer(_ request: InferenceRequest) async throws(ServalError) -> InferenceResponse {
        try checkServing()
        try request.validate(against: signature)
        let batchClass: Int
        let rows: Int
        if let (key, keyRows) = request.batchKey {
            rows = keyRows
            if let known = batchClasses[key] {
                batchClass = known
            } else {
                if batchClasses.count >= 1024 { batchClasses.removeAll() }  // hostile variety: stay bounded
                batchClass = nextBatchClass
                nextBatchClass += 1
                batchClasses[key] = batchClass
            }
        } else {
            rows = 1
            batchClass = nextLoneClass
            nextLoneClass -= 1
        }
        let answer = try await submit(.tensors(request), bytes: request.byteCount, rows: rows, batchClass: batchClass)
        guard case .tensors(let response) = answer else { throw Self.mismatchedAnswer }
        return response
    }

    /// What the model says of itself, once a worker has loaded it; `nil` before.
    public func modelSignature() -> ModelSignature? {
        signature
    }

    /// Counts and cumulative times of the requests this variant has answered since it started.
    public func inferenceStatistics() -> InferenceStatistics {
        statistics
    }

    /// The batch class of payload requests with their own timeout (asynchronous invocations); tensor classes are
    /// positive and lone classes count down from -1, so this one is never taken by another request.
    private static let timedPayloadClass = Int.min

    private static let mismatchedAnswer = ServalError(.internalFailure, "The model worker answered with the wrong kind of result.")

    /// Throws the error that explains why the variant cannot take a request now.
    private func checkServing() throws(ServalError) {
        switch state {
        case .ready:
            break
        case .starting where scheduler.readyInstanceCount > 0:
            break  // Some instances are up (e.g. after a restart of Serval); they serve while the rest load.
        case .starting:
            throw ServalError(
                .modelNotReady,
                "Endpoint \"\(spec.endpointName)\" is still loading its model (variant \(spec.variant.name)); retry shortly.",
                retryAfterSeconds: 1)
        case .failed(let reason):
            throw ServalError(
                .serviceUnavailable, "Endpoint \"\(spec.endpointName)\" failed and cannot serve: \(reason)")
        case .stopped:
            throw ServalError(.serviceUnavailable, "Endpoint \"\(spec.endpointName)\" has been stopped.")
        }
        guard !stopping else {
            throw ServalError(
                .serviceUnavailable, "Endpoint \"\(spec.endpointName)\" is shutting down; retry against another node.",
                retryAfterSeconds: 1)
        }
    }

    /// Queues `work` and waits for its answer.
    ///
    /// - Parameter size: what it counts towards `maxBatchSize`; `rows` when `nil`.
    private func submit(
        _ work: Work, bytes: Int, rows: Int, batchClass: Int, size: Int? = nil, timeoutSeconds: Int? = nil
    ) async throws(ServalError) -> Answer {
        try checkServing()
        let timeoutSeconds = timeoutSeconds.map { max($0, 1) }
        let result = await withCheckedContinuation { continuation in
            let now = ContinuousClock.now
            let pending = Pending(
                work: work, rows: rows, timeoutSeconds: timeoutSeconds, enqueuedAt: now, continuation: continuation)
            guard
                let step = scheduler.enqueue(
                    pending, bytes: bytes, size: size ?? rows, batchClass: batchClass,
                    timeout: timeoutSeconds.map { .seconds($0) }, now: now)
            else {
                resolve(
                    pending,
                    .failure(
                        ServalError(
                            .overloaded,
                            "Variant \(spec.variant.name) of endpoint \"\(spec.endpointName)\" has \(scheduler.queueDepth) requests queued, its limit; retry later or add instances.",
                            retryAfterSeconds: 1)))
                return
            }
            perform(step)
        }
        return try result.get()
    }

    /// The variant's current numbers.
    public func status() -> VariantStatus {
        VariantStatus(
            state: state, desiredInstances: spec.variant.instanceCount, readyInstances: scheduler.readyInstanceCount,
            queueDepth: scheduler.queueDepth, inFlight: scheduler.inFlightItemCount)
    }

    /// The resident memory of the variant's worker processes, in bytes (their children not included).
    public func workerMemoryBytes() -> Int {
        workers.values.reduce(0) { $0 + $1.residentMemoryBytes() }
    }

    // MARK: Lifecycle

    /// Starts the instances and supervises them until the variant is stopped or fails.
    public func run() async {
        await withDiscardingTaskGroup { group in
            for slot in 0..<spec.variant.instanceCount {
                group.addTask { await self.superviseSlot(slot) }
            }
            group.addTask { await self.watchdog() }
        }
        wakeUpTask?.cancel()
        if case .failed = state {} else { await setState(.stopped) }
    }

    /// Stops the variant gracefully: refuses new requests, lets queued and running ones finish (up to
    /// `drainTimeout`), then asks each worker to exit, killing those that do not within `exitTimeout`.
    public func stop(drainTimeout: Duration = .seconds(30), exitTimeout: Duration = .seconds(10)) async {
        guard !stopping else { return }
        stopping = true
        if scheduler.queueDepth + scheduler.inFlightItemCount > 0 {
            await waitForDrain(timeout: drainTimeout)
        }
        let unserved = scheduler.removeAllQueued()
        for pending in unserved {
            resolve(pending, .failure(ServalError(.serviceUnavailable, "Endpoint \"\(spec.endpointName)\" stopped before this request ran.")))
        }
        var shutdown = allocator.buffer(capacity: 6)
        WorkerMessages.writeShutdown(into: &shutdown)
        for worker in workers.values { worker.send(shutdown) }
        let deadline = ContinuousClock.now + exitTimeout
        while !workers.isEmpty && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for worker in workers.values { worker.kill() }
    }

    // MARK: Instances

    private func superviseSlot(_ slot: Int) async {
        var backoff = RestartBackoff()
        while !stopping && !isFailed {
            backoff.started(now: .now)
            let outcome = await runInstance(slot: slot)
            if stopping || isFailed { return }
            switch outcome {
            case .launchFailed(let error):
                await fail(error.message)
                return
            case .loadFailed(let reason) where state == .starting:
                await fail("The model failed to load:\n\(reason)")
                return
            case .loadFailed, .exited:
                break
            }
            switch backoff.exited(now: .now) {
            case .restart(let delay):
                logger.warning("Restarting model worker", metadata: ["slot": "\(slot)", "delay": "\(delay)"])
                await sleepUnlessStopping(delay)
            case .giveUp(let failures):
                await fail("The model worker crashed \(failures) times in a row. \(lastCrash ?? "")")
                return
            }
        }
    }

    private var isFailed: Bool {
        if case .failed = state { return true }
        return false
    }

    /// Starts one worker and serves batches with it until it exits.
    private func runInstance(slot: Int) async -> InstanceOutcome {
        let id = nextInstanceID
        nextInstanceID += 1
        let launchedAt = ContinuousClock.now
        let worker: any ModelWorker
        do {
            worker = try await launcher.launch(spec, slot: slot, logger: logger)
        } catch {
            return .launchFailed(error)
        }
        scheduler.addInstance(id)
        workers[id] = worker
        logger.info(
            "Started model worker",
            metadata: ["worker": "\(worker)", "slot": "\(slot)", "log_stream": "\(spec.logDestination.stream(slot: slot))"])

        var frames = worker.frames.makeAsyncIterator()
        let loadTimedOut = Flag()
        let loadTimeout = Duration.seconds(spec.variant.modelLoadTimeoutSeconds)
        let loadWatch = Task {
            try? await Task.sleep(for: loadTimeout)
            if !Task.isCancelled {
                loadTimedOut.set()
                worker.kill()
            }
        }
        let first = await frames.next(isolation: self)
        loadWatch.cancel()

        var outcome = InstanceOutcome.exited
        switch first?.type {
        case .ready:
            observer.modelLoaded(in: .now - launchedAt)
            recordReady(first!.payload)
            slotsEverReady.insert(slot)
            perform(scheduler.instanceReady(id, now: .now))
            if state == .starting && slotsEverReady.count == spec.variant.instanceCount {
                await setState(.ready)
            }
            await serve(instance: id, worker: worker, frames: &frames)
        case .loadFailed:
            outcome = .loadFailed(Self.loadFailureReason(first!.payload))
        case nil:
            break
        case .some(let type):
            logger.error("Model worker sent \(type) before READY; killing it")
        }

        // The worker is gone, or must go. Its requests fail as soon as its exit status is known.
        let lost = scheduler.removeInstance(id)
        batchStartedAt[id] = nil
        let status = await waitForExit(worker)
        workers[id] = nil
        let error = ServalError(
            .serviceUnavailable,
            "The model worker \(status) while handling this request; Serval is restarting it. Retry the request.",
            retryAfterSeconds: 1)
        for pending in lost { resolve(pending, .failure(error)) }
        notifyDrainIfIdle()
        let output = await worker.outputTail(lines: 20)
        let timedOut = loadTimedOut.isSet
        if timedOut, case .exited = outcome {
            outcome = .loadFailed(
                "The worker did not load the model within \(spec.variant.modelLoadTimeoutSeconds) s (modelLoadTimeoutSeconds). Last output:\n\(tail(output, lines: 10))")
        } else if case .exited = outcome, !stopping {
            // A crash, even during the first load, is retried with backoff: it may be transient (OOM, kill -9).
            lastCrash = "The worker \(status). Last output:\n\(tail(output, lines: 15))"
            logger.error("Model worker \(status)", metadata: ["slot": "\(slot)", "output": "\(tail(output, lines: 5))"])
        }
        return outcome
    }

    /// Reads RESULT and INFER_RESULT frames until the worker's channel closes.
    private func serve(
        instance id: Int, worker: any ModelWorker, frames: inout AsyncStream<WorkerFrame>.Iterator
    ) async {
        while let frame = await frames.next(isolation: self) {
            guard frame.type == .result || frame.type == .inferResult || frame.type == .fileResult,
                let batchID = frame.payload.getInteger(at: frame.payload.readerIndex, endianness: .little, as: UInt64.self)
            else {
                logger.error("Model worker sent an unexpected \(frame.type) frame; killing it")
                worker.kill()
                return
            }
            let now = ContinuousClock.now
            let (items, next) = scheduler.batchCompleted(instance: id, batchID: batchID, now: now)
            let startedAt = batchStartedAt.removeValue(forKey: id)
            if let items {
                do {
                    let answers = try Self.answers(to: items, from: frame)
                    if let startedAt {
                        statistics.computeInfer.add(count: items.count, duration: now - startedAt)
                        observer.batchComputed(in: now - startedAt)
                    }
                    for (pending, answer) in zip(items, answers) { resolve(pending, answer) }
                } catch {
                    logger.error("Model worker sent a malformed result; killing it", metadata: ["error": "\(error)"])
                    let failure = ServalError(.internalFailure, "The model worker sent a malformed answer; Serval restarted it.")
                    for pending in items { resolve(pending, .failure(failure)) }
                    worker.kill()
                    return
                }
            }
            perform(next)
            notifyDrainIfIdle()
        }
    }

    /// Decodes the worker's answers to a batch, one per item, or throws when the frame breaks the protocol.
    private static func answers(to items: [Pending], from frame: WorkerFrame) throws -> [Result<Answer, ServalError>] {
        switch (items.first?.work, frame.type) {
        case (.payload, .result):
            let result = try WorkerMessages.readResult(frame.payload)
            guard result.items.count == items.count else {
                throw WorkerProtocolError.malformed("RESULT answers \(result.items.count) of \(items.count) requests")
            }
            return result.items.map { item in Self.response(for: item).map(Answer.payload) }
        case (.tensors, .inferResult):
            let result = try WorkerMessages.readInferResult(frame.payload, rows: items.map(\.rows))
            guard result.items.count == items.count else {
                throw WorkerProtocolError.malformed("INFER_RESULT answers \(result.items.count) of \(items.count) requests")
            }
            return result.items.map { item in Self.response(for: item) { .tensors($0) } }
        case (.file, .fileResult):
            guard items.count == 1 else {
                throw WorkerProtocolError.malformed("FILE_RESULT answers 1 of \(items.count) requests")
            }
            return [Self.response(for: try WorkerMessages.readFileResult(frame.payload).result) { .file($0) }]
        default:
            throw WorkerProtocolError.malformed("a \(frame.type) frame does not answer this kind of batch")
        }
    }

    private static func response(for item: WorkerItemResult<InvocationResponse>) -> Result<InvocationResponse, ServalError> {
        response(for: item) { $0 }
    }

    private static func response<Output, Mapped>(
        for item: WorkerItemResult<Output>, _ transform: (Output) -> Mapped
    ) -> Result<Mapped, ServalError> {
        switch item {
        case .success(let output):
            return .success(transform(output))
        case .badInput(let message):
            return .failure(.modelRejectedInput(message))
        case .modelError(let message):
            return .failure(ServalError(.modelError, "The model raised an error: \(message)"))
        }
    }

    /// Answers a request and counts it in the statistics.
    private func resolve(_ pending: Pending, _ result: Result<Answer, ServalError>) {
        let elapsed = ContinuousClock.now - pending.enqueuedAt
        switch result {
        case .success:
            statistics.success.add(count: 1, duration: elapsed)
        case .failure:
            statistics.fail.add(count: 1, duration: elapsed)
            // The worker removes its output on errors it reports; not when it crashed or was killed mid-write.
            if case .file(let request) = pending.work { unlink(request.outputPath) }
        }
        statistics.lastInferenceMilliseconds = Int64(Date().timeIntervalSince1970 * 1000)
        pending.continuation.resume(returning: result)
    }

    // MARK: Scheduler actions

    private func perform(_ step: BatchScheduler<Pending>.Step) {
        for dispatch in step.dispatches {
            send(dispatch)
        }
        if let wakeUp = step.wakeUp {
            armWakeUp(at: wakeUp)
        }
    }

    private func send(_ dispatch: BatchScheduler<Pending>.Dispatch) {
        guard let worker = workers[dispatch.instance] else { return }
        let now = ContinuousClock.now
        batchStartedAt[dispatch.instance] = now
        statistics.executionCount += 1
        var rows = 0
        for pending in dispatch.items {
            statistics.queue.add(count: 1, duration: now - pending.enqueuedAt)
            observer.queued(for: now - pending.enqueuedAt)
            rows += pending.rows
        }
        statistics.inferenceCount += rows
        observer.batchSent(items: dispatch.items.count, rows: rows)
        var buffer = allocator.buffer(capacity: 0)
        do {
            switch dispatch.items[0].work {
            case .payload:
                try WorkerMessages.writeInvoke(
                    batchID: dispatch.batchID, requests: dispatch.items.lazy.map(\.work.payload!), into: &buffer)
            case .tensors:
                try WorkerMessages.writeInfer(
                    batchID: dispatch.batchID, requests: dispatch.items.map(\.work.tensors!), into: &buffer)
            case .file(let request):
                try WorkerMessages.writeInvokeFile(batchID: dispatch.batchID, request: request, into: &buffer)
            }
        } catch {
            let failure = ServalError(.internalFailure, "Serval could not encode the batch: \(error).")
            let (items, next) = scheduler.batchCompleted(instance: dispatch.instance, batchID: dispatch.batchID, now: now)
            batchStartedAt[dispatch.instance] = nil
            for pending in items ?? [] { resolve(pending, .failure(failure)) }
            perform(next)
            return
        }
        worker.send(buffer)
    }

    private func armWakeUp(at instant: ContinuousClock.Instant) {
        if let wakeUpAt, wakeUpAt <= instant, wakeUpTask != nil { return }
        wakeUpTask?.cancel()
        wakeUpAt = instant
        wakeUpTask = Task { [weak self] in
            try? await Task.sleep(until: instant, clock: .continuous)
            guard !Task.isCancelled else { return }
            await self?.wakeUp()
        }
    }

    private func wakeUp() {
        wakeUpTask = nil
        wakeUpAt = nil
        perform(scheduler.wakeUp(now: .now))
    }

    /// Every 250 ms: kills instances whose batch ran past its deadline and fails stale queued items.
    private func watchdog() async {
        while !stopping && !isFailed {
            try? await Task.sleep(for: .milliseconds(250))
            let expired = scheduler.expire(now: .now)
            for (instance, items) in expired.hungInstances {
                logger.error("Model worker exceeded the invocation timeout; killing it", metadata: ["instance": "\(instance)"])
                workers[instance]?.kill()
                batchStartedAt[instance] = nil
                // The batch's deadline was the largest timeout of its items.
                let variantTimeout = spec.variant.invocationTimeoutSeconds
                let seconds = items.map { $0.timeoutSeconds ?? variantTimeout }.max() ?? variantTimeout
                let source = items.contains { $0.timeoutSeconds == seconds } ? "the invocation's timeout" : "invocationTimeoutSeconds"
                let error = ServalError(
                    .invocationTimeout,
                    "The model did not answer within \(seconds) s (\(source)); its worker was restarted.")
                for pending in items { resolve(pending, .failure(error)) }
            }
            for pending in expired.staleItems {
                let seconds = pending.timeoutSeconds ?? spec.variant.invocationTimeoutSeconds
                let error = ServalError(
                    .serviceUnavailable,
                    "No model worker of endpoint \"\(spec.endpointName)\" could take this request within \(seconds) s; retry later.",
                    retryAfterSeconds: 1)
                resolve(pending, .failure(error))
            }
            if !expired.hungInstances.isEmpty || !expired.staleItems.isEmpty { notifyDrainIfIdle() }
        }
    }

    // MARK: State

    private func setState(_ newState: State) async {
        guard state != newState else { return }
        state = newState
        await onStateChange(newState)
    }

    private func fail(_ reason: String) async {
        logger.error("Variant failed", metadata: ["reason": "\(reason)"])
        await setState(.failed(reason))
        let error = ServalError(.serviceUnavailable, "Endpoint \"\(spec.endpointName)\" failed: \(reason)")
        for pending in scheduler.removeAllQueued() { resolve(pending, .failure(error)) }
        for worker in workers.values { worker.kill() }
    }

    /// Logs the worker's READY and keeps the model's signature from it.
    private func recordReady(_ payload: ByteBuffer) {
        struct Ready: Decodable {
            var handler: String?
            var batching: String?
            var platform: String?
            var inputs: [TensorMetadata]?
            var outputs: [TensorMetadata]?
        }
        guard let ready = try? JSONDecoder().decode(Ready.self, from: Data(payload.readableBytesView)) else {
            logger.warning("Model worker sent a READY that does not describe the model")
            return
        }
        signature = ModelSignature(
            platform: ready.platform ?? "", inputs: ready.inputs ?? [], outputs: ready.outputs ?? [])
        logger.info(
            "Model loaded", metadata: ["handler": "\(ready.handler ?? "?")", "batching": "\(ready.batching ?? "?")"])
    }

    private static func loadFailureReason(_ payload: ByteBuffer) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(payload.readableBytesView)) as? [String: Any]
        else { return "The worker reported a load failure it could not describe." }
        let message = object["message"] as? String ?? "unknown error"
        let traceback = object["traceback"] as? String ?? ""
        guard !traceback.isEmpty else { return message }
        // Its header, then the last frames, where the user's code and the error are.
        let lines = traceback.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count > 14, let header = lines.first else { return traceback }
        return header + "\n  …\n" + tail(traceback, lines: 12)
    }

    private func waitForExit(_ worker: any ModelWorker) async -> ExitStatus {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: .seconds(2))
                if !Task.isCancelled { worker.kill() }
            }
            let status = await worker.waitForExit()
            group.cancelAll()
            return status
        }
    }

    private func sleepUnlessStopping(_ delay: Duration) async {
        let deadline = ContinuousClock.now + delay
        while !stopping && ContinuousClock.now < deadline {
            try? await Task.sleep(for: min(.milliseconds(100), deadline - .now))
        }
    }

    private func waitForDrain(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: timeout)
                await self.notifyDrain()
            }
            await withCheckedContinuation { drainWaiters.append($0) }
            group.cancelAll()
        }
    }

    private func notifyDrainIfIdle() {
        if stopping && scheduler.queueDepth == 0 && scheduler.inFlightItemCount == 0 { notifyDrain() }
    }

    private func notifyDrain() {
        let waiters = drainWaiters
        drainWaiters = []
        waiters.forEach { $0.resume() }
    }
}

/// A flag set once, from any thread.
private final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

/// Keeps a variant's ``RecentActivity`` and passes every event on.
private struct ActivityRecorder: VariantObserver {
    let activity: RecentActivity
    let next: any VariantObserver

    func invocationEnded(path: InferencePath, duration: Duration, failure: InferenceFailure?) {
        activity.invocation(duration: duration, failed: failure != nil)
        next.invocationEnded(path: path, duration: duration, failure: failure)
    }

    func batchSent(items: Int, rows: Int) {
        activity.batch(items: items)
        next.batchSent(items: items, rows: rows)
    }

    func queued(for duration: Duration) { next.queued(for: duration) }
    func batchComputed(in duration: Duration) { next.batchComputed(in: duration) }
    func modelLoaded(in duration: Duration) { next.modelLoaded(in: duration) }
    func recordsTransformed(_ count: Int) { next.recordsTransformed(count) }
    func captureDropped(_ count: Int) { next.captureDropped(count) }
}
