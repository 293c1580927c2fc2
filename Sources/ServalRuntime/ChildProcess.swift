import Foundation
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

/// A child process started with `posix_spawn`: stdin from /dev/null, stdout and stderr into one pipe that the
/// caller reads, optionally one end of a socket pair as file descriptor 3, in a process group of its own so
/// that its own children can be signalled with it.
final class ChildProcess: Sendable {
    /// The child's process id (also its process group id).
    let pid: pid_t
    /// The read end of the pipe carrying the child's stdout and stderr; owned by the caller after launch.
    let outputDescriptor: Int32
    /// Serval's end of the socket pair whose other end the child has as fd 3; owned by the caller after launch.
    let channelDescriptor: Int32?

    /// Serialises descriptor creation and spawning, so that no child inherits another child's pipe or socket
    /// in the moment before close-on-exec is set.
    private static let spawnLock = Mutex(())

    private init(pid: pid_t, outputDescriptor: Int32, channelDescriptor: Int32?) {
        self.pid = pid
        self.outputDescriptor = outputDescriptor
        self.channelDescriptor = channelDescriptor
    }

    /// Starts `arguments[0]`, searched on `PATH` when it has no slash.
    ///
    /// - Parameter withChannel: give the child one end of a Unix socket pair as fd 3 (see ``channelDescriptor``).
    /// - Throws: ``ServalError`` naming the program when it cannot be started.
    static func launch(
        arguments: [String], environment: [String: String], withChannel: Bool = false
    ) throws(ServalError) -> ChildProcess {
        try spawnLock.withLock { _ throws(ServalError) in
            try launchLocked(arguments: arguments, environment: environment, withChannel: withChannel)
        }
    }

    private static func launchLocked(
        arguments: [String], environment: [String: String], withChannel: Bool
    ) throws(ServalError) -> ChildProcess {
        precondition(!arguments.isEmpty)
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else {
            throw ServalError(.internalFailure, "Cannot create a pipe for \(arguments[0]): \(String(cString: strerror(errno))).")
        }
        for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        var socketEnds: [Int32] = [-1, -1]
        if withChannel {
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &socketEnds) == 0 else {
                pipeEnds.forEach { close($0) }
                throw ServalError(.internalFailure, "Cannot create a socket pair for \(arguments[0]): \(String(cString: strerror(errno))).")
            }
            // Keep both ends above 3 so that dup2 onto 3 always happens (and clears close-on-exec).
            for index in 0..<2 {
                let moved = fcntl(socketEnds[index], F_DUPFD_CLOEXEC, 10)
                close(socketEnds[index])
                socketEnds[index] = moved
            }
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 2)
        if withChannel {
            posix_spawn_file_actions_adddup2(&actions, socketEnds[1], 3)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD] { sigaddset(&defaultSignals, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let status = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, envp)
        close(pipeEnds[1])
        if withChannel { close(socketEnds[1]) }
        guard status == 0 else {
            close(pipeEnds[0])
            if withChannel { close(socketEnds[0]) }
            if status == ENOENT {
                throw ServalError(.validationError, "\(arguments[0]) was not found; install it or point Serval at it.")
            }
            throw ServalError(.internalFailure, "Cannot start \(arguments[0]): \(String(cString: strerror(status))).")
        }
        return ChildProcess(pid: pid, outputDescriptor: pipeEnds[0], channelDescriptor: withChannel ? socketEnds[0] : nil)
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
    _ arguments: [String], environment: [String: String], outputLimit: Int = 64 * 1024
) async throws(ServalError) -> (status: ExitStatus, output: String) {
    let process = try ChildProcess.launch(arguments: arguments, environment: environment)
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
