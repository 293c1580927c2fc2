import Foundation
public import Logging
public import NIOCore
import NIOPosix
public import ServalCore
public import ServalRuntime
public import ServalWorkerIPC
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A ``WorkerLauncher`` whose workers run in this process: each is the far end of a real `socketpair`, read and
/// written with ServalWorkerIPC's frame decoder and message codecs, while Serval's end is the production
/// ``WorkerChannel``. The model each worker plays is a ``FakeModel``, chosen by the variant's model name.
///
/// It records what happened, for tests to check: launches, the batches workers received and how workers ended.
public final class FakeWorkerLauncher: WorkerLauncher {
    /// One batch a fake worker received.
    public struct Batch: Sendable, Equatable {
        /// The kind of frame it came in (INVOKE, INFER, INVOKE_FILE).
        public var kind: WorkerMessageType
        /// The model's name.
        public var model: String
        /// The worker's number (from 1, in launch order).
        public var worker: Int
        /// The requests it carried.
        public var items: Int
        /// Its rows: the items of an INVOKE, the summed rows of an INFER.
        public var rows: Int

        /// Creates a record.
        public init(kind: WorkerMessageType, model: String, worker: Int, items: Int, rows: Int) {
            self.kind = kind
            self.model = model
            self.worker = worker
            self.items = items
            self.rows = rows
        }
    }

    private struct Record {
        var launches: [String: Int] = [:]
        var batches: [Batch] = []
        var exits: [Int: ExitStatus] = [:]
        var nextWorker = 1
    }

    private let models: [String: FakeModel]
    private let defaultModel: FakeModel
    private let group: any EventLoopGroup
    private let record = Mutex(Record())

    /// Creates a launcher whose workers play `models[name]` for a model of that name, and `model` for any other.
    public init(
        _ model: FakeModel = FakeModel(), models: [String: FakeModel] = [:],
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.defaultModel = model
        self.models = models
        self.group = group
    }

    /// Fake workers read Serval's paths directly.
    public var fileExchange: FileExchange? { nil }

    /// Starts a fake worker playing the model's ``FakeModel`` (or throws its ``FakeModel/launchError``).
    public func launch(_ spec: VariantSpec, slot: Int, logger: Logger) async throws(ServalError) -> any ModelWorker {
        let name = spec.model.name
        let model = models[name] ?? defaultModel
        let number = record.withLock { record in
            record.launches[name, default: 0] += 1
            defer { record.nextWorker += 1 }
            return record.nextWorker
        }
        if let error = model.launchError { throw error }
        var descriptors: [CInt] = [-1, -1]
        guard socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0, &descriptors) == 0 else {
            throw ServalError(.internalFailure, "Cannot make a socket pair for a fake worker: errno \(errno).")
        }
        let process = FakeProcess(number: number) { [self] status in
            record.withLock { $0.exits[number] = status }
        }
        for line in model.prints { process.print(line) }
        let serval: WorkerChannel
        do {
            serval = try await WorkerChannel.connect(socket: descriptors[0], group: group, logger: logger)
        } catch {
            close(descriptors[0])
            close(descriptors[1])
            throw ServalError(.internalFailure, "Cannot connect to a fake worker: \(error).")
        }
        let nextBatch: @Sendable (WorkerMessageType, Int, Int) -> Int = { [self] kind, items, rows in
            record.withLock { record in
                record.batches.append(Batch(kind: kind, model: name, worker: number, items: items, rows: rows))
                return record.batches.count { $0.model == name }
            }
        }
        do {
            let worker = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(
                            ByteToMessageHandler(WorkerFrameDecoder()),
                            FakeWorkerHandler(model: model, modelName: name, process: process, nextBatch: nextBatch))
                    }
                }
                .withConnectedSocket(descriptors[1])
                .get()
            process.attach(worker)
        } catch {
            close(descriptors[1])
            serval.close()
            throw ServalError(.internalFailure, "Cannot start a fake worker: \(error).")
        }
        return FakeWorker(channel: serval, process: process, memoryBytes: model.memoryBytes)
    }

    /// How many workers were launched for `model` (for every model when `nil`), including launches that threw.
    public func launchCount(model: String? = nil) -> Int {
        record.withLock { record in
            model.map { record.launches[$0] ?? 0 } ?? record.launches.values.reduce(0, +)
        }
    }

    /// The batches workers received, in order; only those of `model` when given.
    public func batches(model: String? = nil) -> [Batch] {
        record.withLock { record in record.batches.filter { model == nil || $0.model == model } }
    }

    /// How each ended worker ended, by worker number.
    public func exits() -> [Int: ExitStatus] {
        record.withLock { $0.exits }
    }
}

/// What stands for a fake worker's process: its exit status, once it has one, and what it printed.
final class FakeProcess: Sendable {
    private struct State {
        var status: ExitStatus?
        var waiters: [CheckedContinuation<ExitStatus, Never>] = []
        var lines: [String] = []
        var channel: (any Channel)?
    }

    let number: Int
    private let state = Mutex(State())
    private let onExit: @Sendable (ExitStatus) -> Void

    init(number: Int, onExit: @escaping @Sendable (ExitStatus) -> Void) {
        self.number = number
        self.onExit = onExit
    }

    /// Keeps the worker's end of the socket, to close it when the process ends.
    func attach(_ channel: any Channel) {
        let exited = state.withLock { state in
            state.channel = channel
            return state.status != nil
        }
        if exited { channel.close(promise: nil) }
    }

    var hasExited: Bool { state.withLock { $0.status != nil } }

    /// Ends the process with `status` unless it has ended already, and closes its end of the socket.
    func exit(_ status: ExitStatus) {
        let (waiters, channel, first) = state.withLock { state in
            guard state.status == nil else { return ([CheckedContinuation<ExitStatus, Never>](), state.channel, false) }
            state.status = status
            defer { state.waiters = [] }
            return (state.waiters, state.channel, true)
        }
        guard first else { return }
        onExit(status)
        waiters.forEach { $0.resume(returning: status) }
        channel?.close(promise: nil)
    }

    func waitForExit() async -> ExitStatus {
        await withCheckedContinuation { continuation in
            let status = state.withLock { state in
                if state.status == nil { state.waiters.append(continuation) }
                return state.status
            }
            if let status { continuation.resume(returning: status) }
        }
    }

    func print(_ line: String) {
        state.withLock { $0.lines.append(line) }
    }

    func output(lines: Int) -> String {
        state.withLock { $0.lines.suffix(lines).joined(separator: "\n") }
    }
}

/// Serval's side of a fake worker: the production channel, and the fake process behind it.
final class FakeWorker: ModelWorker {
    private let channel: WorkerChannel
    private let process: FakeProcess
    private let memoryBytes: Int

    init(channel: WorkerChannel, process: FakeProcess, memoryBytes: Int) {
        self.channel = channel
        self.process = process
        self.memoryBytes = memoryBytes
    }

    var frames: AsyncStream<WorkerFrame> { channel.frames }

    var description: String { "fake worker \(process.number)" }

    func send(_ frame: ByteBuffer) {
        channel.send(frame)
    }

    func kill() {
        process.exit(.signaled(SIGKILL))
        channel.close()
    }

    func waitForExit() async -> ExitStatus {
        let status = await process.waitForExit()
        await channel.closeAndWait()
        return status
    }

    func outputTail(lines: Int) async -> String {
        process.output(lines: lines)
    }

    func residentMemoryBytes() -> Int {
        process.hasExited ? 0 : memoryBytes
    }
}
