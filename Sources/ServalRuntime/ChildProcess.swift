import Foundation
import CServalSpawn
import ServalCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How a child process ended.
public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
    /// It exited with this status.
    case exited(Int32)
    /// A signal ended it.
    case signaled(Int32)

    public var description: String {
        switch self {
        case .exited(let code): "exited with status \(code)"
        case .signaled(let signal): "was killed by signal \(signal)\(signal == SIGKILL ? " (SIGKILL)" : signal == SIGSEGV ? " (SIGSEGV)" : "")"
        }
    }
}

/// Who a child process runs as, when Serval starts it as another user.
public struct ProcessUser: Sendable, Equatable, CustomStringConvertible {
    /// The user's name, for messages.
    public var name: String
    /// The user id.
    public var uid: uid_t
    /// The primary group id, also the only supplementary group.
    public var gid: gid_t

    /// Creates a user.
    public init(name: String, uid: uid_t, gid: gid_t) {
        self.name = name
        self.uid = uid
        self.gid = gid
    }

    public var description: String { "\(name) (uid \(uid))" }
}

/// How to start a child process.
struct ChildLaunch: Sendable {
    /// The program (searched on the environment's `PATH` when it has no slash) and its arguments.
    var arguments: [String]
    /// The child's whole environment: nothing of Serval's own is passed on unless it is here.
    var environment: [String: String]
    /// The child's working directory; `nil` keeps Serval's.
    var directory: String?
    /// The user to run as; `nil` runs as Serval's own user.
    var user: ProcessUser?
    /// Give the child one end of a Unix socket pair as fd 3 (see ``ChildProcess/channelDescriptor``).
    var withChannel = false
}

/// A child process: stdin from /dev/null, stdout and stderr into one pipe that the caller reads, optionally one
/// end of a socket pair as file descriptor 3, and no other descriptor of Serval's (its listening sockets, the
/// database, other workers' channels), in a process group of its own so that its own children can be signalled
/// with it, and killed by the kernel when Serval dies (`PR_SET_PDEATHSIG`), so that no worker outlives its server.
final class ChildProcess: Sendable {
    /// The child's process id (also its process group id).
    let pid: pid_t
    /// The read end of the pipe carrying the child's stdout and stderr; owned by the caller after launch.
    let outputDescriptor: Int32
    /// Serval's end of the socket pair whose other end the child has as fd 3; owned by the caller after launch.
    let channelDescriptor: Int32?

    private init(pid: pid_t, outputDescriptor: Int32, channelDescriptor: Int32?) {
        self.pid = pid
        self.outputDescriptor = outputDescriptor
        self.channelDescriptor = channelDescriptor
    }

    /// Starts a child process.
    ///
    /// - Throws: ``ServalError`` naming the program when it cannot be started (`validationError` when it is not
    ///   found).
    static func launch(_ launch: ChildLaunch) async throws(ServalError) -> ChildProcess {
        precondition(!launch.arguments.isEmpty)
        let program = launch.arguments[0]
        guard let path = executablePath(program, searchPath: launch.environment["PATH"]) else {
            throw ServalError(.validationError, "\(program) was not found; install it or point Serval at it.")
        }
        let result = await SpawnThread.shared.run { () -> Result<ChildProcess, ServalError> in
            Result { () throws(ServalError) in try spawn(path: path, launch) }
        }
        return try result.get()
    }

    private static func spawn(path: String, _ launch: ChildLaunch) throws(ServalError) -> ChildProcess {
        let program = launch.arguments[0]
        func failure(_ what: String, _ error: Int32) -> ServalError {
            ServalError(.internalFailure, "Cannot \(what) for \(program): \(String(cString: strerror(error))).")
        }
        // Every descriptor is made close-on-exec and above 9, so that the child's moves onto 0-3 cannot collide.
        var pipeEnds: [Int32] = [-1, -1]
        guard serval_pipe_cloexec(&pipeEnds) == 0 else { throw failure("create a pipe", errno) }
        pipeEnds = pipeEnds.map(Self.raised)
        var socketEnds: [Int32] = [-1, -1]
        if launch.withChannel {
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &socketEnds) == 0 else {
                let error = errno
                pipeEnds.forEach { close($0) }
                throw failure("create a socket pair", error)
            }
            socketEnds = socketEnds.map(Self.raised)
        }
        defer {
            close(pipeEnds[1])
            if launch.withChannel { close(socketEnds[1]) }
        }

        let argv = launch.arguments.map { strdup($0) } + [nil]
        let envp = launch.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let directory = launch.directory.flatMap { strdup($0) }
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
            free(directory)
        }
        var pid: pid_t = 0
        var step: Int32 = 0
        let status = path.withCString { path in
            argv.withUnsafeBufferPointer { argv in
                envp.withUnsafeBufferPointer { envp in
                    var request = serval_spawn_request(
                        path: path, argv: argv.baseAddress, envp: envp.baseAddress, directory: directory,
                        output_fd: pipeEnds[1], channel_fd: launch.withChannel ? socketEnds[1] : -1,
                        set_user: launch.user == nil ? 0 : 1, uid: launch.user?.uid ?? 0, gid: launch.user?.gid ?? 0)
                    return serval_spawn(&request, &pid, &step)
                }
            }
        }
        guard status == 0 else {
            close(pipeEnds[0])
            if launch.withChannel { close(socketEnds[0]) }
            let reason = String(cString: strerror(status))
            switch Int(step) {
            case Int(SERVAL_SPAWN_STEP_USER.rawValue):
                throw ServalError(.internalFailure, "Cannot start \(program) as \(launch.user?.description ?? "?"): \(reason).")
            case Int(SERVAL_SPAWN_STEP_DIRECTORY.rawValue):
                throw ServalError(.internalFailure, "Cannot start \(program) in \(launch.directory ?? "?"): \(reason).")
            case Int(SERVAL_SPAWN_STEP_EXEC.rawValue) where status == EACCES:
                throw ServalError(
                    .validationError,
                    "\(program) cannot be run\(launch.user.map { " by \($0)" } ?? ""): \(reason). Make it and its folders readable and executable\(launch.user == nil ? "" : " by that user"), or point Serval at another interpreter.")
            default:
                throw ServalError(.internalFailure, "Cannot start \(program): \(reason).")
            }
        }
        return ChildProcess(pid: pid, outputDescriptor: pipeEnds[0], channelDescriptor: launch.withChannel ? socketEnds[0] : nil)
    }

    /// The descriptor moved to 10 or above, close-on-exec.
    private static func raised(_ descriptor: Int32) -> Int32 {
        guard descriptor < 10 else { return descriptor }
        let moved = fcntl(descriptor, F_DUPFD_CLOEXEC, 10)
        guard moved >= 0 else { return descriptor }
        close(descriptor)
        return moved
    }

    /// `program` itself when it holds a slash, else the first executable of that name on `searchPath` (Serval's
    /// own `PATH` when the child's environment has none).
    static func executablePath(_ program: String, searchPath: String?) -> String? {
        if program.contains("/") { return access(program, X_OK) == 0 ? program : nil }
        let folders = (searchPath ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return folders.lazy.map { "\($0.isEmpty ? "." : $0)/\(program)" }.first { access($0, X_OK) == 0 }
    }

    /// Sends `signal` to the child's whole process group.
    func signal(_ signal: Int32) {
        kill(-pid, signal)
    }

    /// Waits for the child to exit, without blocking a cooperative thread, then kills what is left of its
    /// process group (helpers it started, which would otherwise hold its output pipe open) and reaps it.
    ///
    /// The group is killed before the child is reaped: until then the exited child keeps its id, so the group
    /// id cannot have been reused by an unrelated process.
    func waitForExit() async -> ExitStatus {
        await withCheckedContinuation { continuation in
            let pid = self.pid
            Thread.detachNewThread {
                var info = siginfo_t()
                while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
                kill(-pid, SIGKILL)
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                continuation.resume(returning: ExitStatus(waitStatus: status))
            }
        }
    }
}

extension ExitStatus {
    init(waitStatus status: Int32) {
        let signal = status & 0x7F
        self = signal == 0 ? .exited((status >> 8) & 0xFF) : .signaled(signal)
    }
}

/// Runs a program to completion and returns its exit status and combined output (the last `outputLimit` bytes).
func runToCompletion(
    _ launch: ChildLaunch, outputLimit: Int = 64 * 1024
) async throws(ServalError) -> (status: ExitStatus, output: String) {
    let process = try await ChildProcess.launch(launch)
    let descriptor = process.outputDescriptor
    let output = await withCheckedContinuation { (continuation: CheckedContinuation<[UInt8], Never>) in
        Thread.detachNewThread {
            var collected: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 16 * 1024)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                collected.append(contentsOf: chunk[0..<count])
                if collected.count > 2 * outputLimit { collected.removeFirst(collected.count - outputLimit) }
            }
            close(descriptor)
            continuation.resume(returning: Array(collected.suffix(outputLimit)))
        }
    }
    let status = await process.waitForExit()
    return (status, String(decoding: output, as: UTF8.self))
}

/// The last lines of a text, for failure reasons.
func tail(_ text: String, lines: Int, maxBytes: Int = 2000) -> String {
    var result = text.split(separator: "\n", omittingEmptySubsequences: true).suffix(lines).joined(separator: "\n")
    if result.utf8.count > maxBytes {
        result = "…" + String(decoding: Array(result.utf8).suffix(maxBytes), as: UTF8.self)
    }
    return result
}

/// The one thread that forks child processes.
///
/// The kernel sends a child's parent-death signal when the *thread* that forked it ends, not the process: a child
/// forked from a pool thread that later retires would be killed with it. This thread lives as long as Serval.
private final class SpawnThread: Sendable {
    static let shared = SpawnThread()

    private let work = Mutex<[@Sendable () -> Void]>([])
    private let available = DispatchSemaphore(value: 0)

    private init() {
        let thread = Thread { [self] in loop() }
        thread.name = "serval-spawn"
        thread.start()
    }

    private func loop() -> Never {
        while true {
            available.wait()
            let next = work.withLock { $0.removeFirst() }
            next()
        }
    }

    /// Runs `body` on the spawn thread and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            work.withLock { $0.append { continuation.resume(returning: body()) } }
            available.signal()
        }
    }
}
