import Foundation
import Logging
import NIOCore
import NIOPosix
import ServalCore
import ServalWorkerIPC
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What Serval needs to start one worker.
struct WorkerLaunchSpec: Sendable {
    var python: String
    var workerPath: String
    var modelDirectory: String
    /// The model's own environment variables (its config's `Environment`).
    var environment: [String: String]
    var label: String
    /// Who the worker runs as and with which home; see ``PythonSettings/runAs``.
    var identity: ChildIdentity
    /// Where the worker's output lines go besides the tail and Serval's log: a sink and this instance's stream.
    var log: (sink: any WorkerLogSink, stream: LogStreamID)?
}

/// One running Python worker: its process, the framed channel to it, and the tail of its output.
final class WorkerProcess: Sendable {
    let process: ChildProcess
    /// Frames from the worker; finishes when the channel closes or the worker breaks the protocol.
    let frames: AsyncStream<WorkerFrame>
    private let channel: any Channel
    private let output: OutputTail

    private init(process: ChildProcess, channel: any Channel, frames: AsyncStream<WorkerFrame>, output: OutputTail) {
        self.process = process
        self.channel = channel
        self.frames = frames
        self.output = output
    }

    /// Starts a worker and connects to it.
    static func launch(
        _ spec: WorkerLaunchSpec, group: any EventLoopGroup, logger: Logger
    ) async throws(ServalError) -> WorkerProcess {
        // Serval's own environment stays with Serval: the worker gets the basics, the model's variables and the
        // contract's (docs/security.md).
        var environment = spec.identity.environment(ChildEnvironment.basics)
        for (key, value) in spec.environment { environment[key] = value }
        environment["PYTHONPATH"] = [spec.workerPath, spec.environment["PYTHONPATH"]].compactMap { $0 }.joined(separator: ":")
        environment["PYTHONUNBUFFERED"] = "1"
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        environment["SM_MODEL_DIR"] = spec.modelDirectory
        let process = try await ChildProcess.launch(
            ChildLaunch(
                arguments: [spec.python, "-m", "serval_worker", "--model-dir", spec.modelDirectory, "--fd", "3"],
                environment: environment, directory: spec.modelDirectory, user: spec.identity.user, withChannel: true))
        let output = OutputTail(descriptor: process.outputDescriptor, logger: logger, label: spec.label, log: spec.log)
        let (frames, continuation) = AsyncStream<WorkerFrame>.makeStream()
        do {
            let channel = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(
                            ByteToMessageHandler(WorkerFrameDecoder()),
                            FrameForwarder(continuation: continuation, logger: logger))
                    }
                }
                .withConnectedSocket(process.channelDescriptor!)
                .get()
            return WorkerProcess(process: process, channel: channel, frames: frames, output: output)
        } catch {
            close(process.channelDescriptor!)
            process.signal(SIGKILL)
            _ = await process.waitForExit()
            throw ServalError(.internalFailure, "Cannot connect to the model worker: \(error).")
        }
    }

    /// Sends an encoded frame. Failures surface as the channel closing, which ends ``frames``.
    func send(_ buffer: ByteBuffer) {
        channel.writeAndFlush(buffer, promise: nil)
    }

    /// Kills the worker and its children at once.
    func kill() {
        process.signal(SIGKILL)
        channel.close(promise: nil)
    }

    /// Asks the worker to finish its batch and exit.
    func shutdown() {
        var buffer = channel.allocator.buffer(capacity: 6 + 4)
        WorkerMessages.writeShutdown(into: &buffer)
        send(buffer)
    }

    /// Waits for the process to end, closing the channel, and returns how it ended.
    func waitForExit() async -> ExitStatus {
        let status = await process.waitForExit()
        try? await channel.close()
        return status
    }

    /// The last lines the worker printed, once its output has ended or after at most `timeout`.
    func outputTail(lines: Int = 20, timeout: Duration = .seconds(1)) async -> String {
        await output.finished(lines: lines, timeout: timeout)
    }
}

/// Passes decoded frames into an `AsyncStream`, finishing it when the channel closes.
private final class FrameForwarder: ChannelInboundHandler, Sendable {
    typealias InboundIn = WorkerFrame

    let continuation: AsyncStream<WorkerFrame>.Continuation
    let logger: Logger

    init(continuation: AsyncStream<WorkerFrame>.Continuation, logger: Logger) {
        self.continuation = continuation
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        continuation.yield(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !(error is ChannelError) {
            logger.error("Worker protocol error; closing the worker's channel", metadata: ["error": "\(error)"])
        }
        continuation.finish()
        context.close(promise: nil)
    }
}

/// Reads a worker's output on a thread of its own: logs each line, keeps the last ones for failure reasons, and
/// hands each to the worker's log stream. Lines longer than ``WorkerLogLimits/maxMessageBytes`` become several.
private final class OutputTail: Sendable {
    private struct State {
        var lines: [String] = []
        var finished = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }

    private let state = Mutex(State())
    private let logger: Logger
    private let label: String
    private let log: (sink: any WorkerLogSink, stream: LogStreamID)?
    private static let keptLines = 60

    init(descriptor: Int32, logger: Logger, label: String, log: (sink: any WorkerLogSink, stream: LogStreamID)?) {
        self.logger = logger
        self.label = label
        self.log = log
        Thread.detachNewThread { [self] in
            var lines = OutputLineSplitter()
            var chunk = [UInt8](repeating: 0, count: 8192)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                lines.feed(chunk[0..<count]).forEach(self.append)
            }
            if let last = lines.finish() { self.append(last) }
            close(descriptor)
            let waiters = self.state.withLock { state in
                state.finished = true
                defer { state.waiters = [:] }
                return state.waiters.values
            }
            waiters.forEach { $0.resume() }
        }
    }

    private func append(_ line: String) {
        logger.info("\(line)", metadata: ["worker": "\(label)"])
        if let log {
            let now = Timestamp(millisecondsSinceEpoch: Int64(Date().timeIntervalSince1970 * 1000))
            log.sink.append(line, at: now, to: log.stream)
        }
        state.withLock { state in
            state.lines.append(line)
            if state.lines.count > 2 * Self.keptLines { state.lines.removeFirst(state.lines.count - Self.keptLines) }
        }
    }

    /// Waits until the output has ended, or `timeout` has passed (something outside the worker's process group
    /// may still hold the pipe), and returns its last lines.
    func finished(lines: Int, timeout: Duration) async -> String {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        let expiry = Task { [self] in
            try? await Task.sleep(for: timeout)
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
        await withCheckedContinuation { continuation in
            let done = state.withLock { state in
                if state.finished { return true }
                state.waiters[id] = continuation
                return false
            }
            if done { continuation.resume() }
        }
        expiry.cancel()
        return state.withLock { $0.lines.suffix(lines).joined(separator: "\n") }
    }
}
