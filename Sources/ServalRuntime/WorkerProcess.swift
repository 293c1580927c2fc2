import Foundation
import Logging
import NIOCore
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
final class WorkerProcess: ModelWorker {
    let process: ChildProcess
    private let channel: WorkerChannel
    private let output: OutputTail

    private init(process: ChildProcess, channel: WorkerChannel, output: OutputTail) {
        self.process = process
        self.channel = channel
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
        do {
            let channel = try await WorkerChannel.connect(socket: process.channelDescriptor!, group: group, logger: logger)
            return WorkerProcess(process: process, channel: channel, output: output)
        } catch {
            close(process.channelDescriptor!)
            process.signal(SIGKILL)
            _ = await process.waitForExit()
            throw ServalError(.internalFailure, "Cannot connect to the model worker: \(error).")
        }
    }

    var frames: AsyncStream<WorkerFrame> { channel.frames }

    var description: String { "pid \(process.pid)" }

    func send(_ buffer: ByteBuffer) {
        channel.send(buffer)
    }

    /// Kills the worker and its children at once.
    func kill() {
        process.signal(SIGKILL)
        channel.close()
    }

    /// Waits for the process to end, closing the channel, and returns how it ended.
    func waitForExit() async -> ExitStatus {
        let status = await process.waitForExit()
        await channel.closeAndWait()
        return status
    }

    /// The last lines the worker printed, once its output has ended or after at most a second.
    func outputTail(lines: Int) async -> String {
        await output.finished(lines: lines, timeout: .seconds(1))
    }

    /// The resident set of the process in bytes, from `/proc/<pid>/statm` (its children not included); 0 when it
    /// cannot be read.
    func residentMemoryBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(process.pid)/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
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
