import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ServalAPI
import ServalClient
import ServalCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The repository root, from this file's location.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// The Python interpreter the tests use for training models and as Serval's base runtime.
/// `scripts/test.sh` points it at a venv with numpy, scikit-learn, joblib, xgboost, onnx and onnxruntime.
let testPython = ProcessInfo.processInfo.environment["SERVAL_TEST_PYTHON"] ?? "python3"

/// Where Serval caches layered Python environments across tests and runs.
let testPythonCache =
    ProcessInfo.processInfo.environment["SERVAL_TEST_PYTHON_CACHE"] ?? NSTemporaryDirectory() + "serval-test-python-cache"

/// The `serval` binary built beside the test bundle.
let servalBinary: String = {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var folder = bundle.deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = folder.appendingPathComponent("serval").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        folder.deleteLastPathComponent()
    }
    return repositoryRoot + "/.build/debug/serval"
}()

/// A temporary folder removed when the value is released.
final class TemporaryFolder: Sendable {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "serval-test-" + UUID().uuidString.lowercased().prefix(12)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

extension TemporaryFolder {
    /// A folder inside this one that model code may write in: when the tests run as root, workers run as an
    /// unprivileged user (docs/security.md), and a test that watches a model through files needs such a place.
    func writableByWorkers() throws -> String {
        let shared = path + "/shared-with-workers"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        chmod(shared, 0o1777)
        return shared
    }
}

/// A plain TCP connection to a loopback port, for requests no HTTP client would send (slowly, half, or malformed).
final class RawConnection: @unchecked Sendable {
    let descriptor: Int32
    private var isOpen = true

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw ServalError(.internalFailure, "cannot connect to port \(port)") }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close()
    }

    func close() {
        if isOpen { Glibc.close(descriptor) }
        isOpen = false
    }

    /// Sends all of `text`; a connection the server closed is ignored (the tests read what it answered).
    func send(_ text: String) {
        try? send(Array(text.utf8))
    }

    /// Sends all of `bytes`.
    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw ServalError(.internalFailure, "send failed: \(String(cString: strerror(errno)))") }
            offset += written
        }
    }

    /// Reads until the server closes the connection or `timeout` passes; returns what arrived and whether the
    /// connection was closed. The blocking reads run on a thread of their own, not on the tests' shared pool.
    func readUntilClosed(timeout: Duration) async -> (text: String, closed: Bool) {
        await offPool { self.blockingReadUntilClosed(timeout: timeout) }
    }

    /// Reads what arrives within `timeout`: the bytes (empty when nothing came) and whether the connection closed.
    func receive(timeout: Duration) async -> (bytes: [UInt8], closed: Bool) {
        await offPool {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                let count = recv(self.descriptor, &chunk, chunk.count, 0)
                if count > 0 { return (Array(chunk[0..<count]), false) }
                if count == 0 { return ([], true) }
                if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR { return ([], true) }
            }
            return ([], false)
        }
    }

    private func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: body()) }
        }
    }

    private func blockingReadUntilClosed(timeout: Duration) -> (text: String, closed: Bool) {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let count = recv(descriptor, &chunk, chunk.count, 0)
            if count == 0 { return (String(decoding: received, as: UTF8.self), true) }
            if count < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                return (String(decoding: received, as: UTF8.self), true)  // reset
            }
            received.append(contentsOf: chunk[0..<count])
        }
        return (String(decoding: received, as: UTF8.self), false)
    }
}

/// Runs a command to completion; returns its status and combined output.
///
/// The wait happens on a thread of its own, never on one of the few threads async tests share (two on a two-core
/// machine): a test waiting for a long script must not stall every other test in the process.
@discardableResult
func run(_ arguments: [String], environment: [String: String] = [:], input: String? = nil) async throws -> (status: Int32, output: String) {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try runBlocking(arguments, environment: environment, input: input) })
        }
    }
}

private func runBlocking(_ arguments: [String], environment: [String: String], input: String?) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0].contains("/") ? arguments[0] : "/usr/bin/env")
    process.arguments = arguments[0].contains("/") ? Array(arguments.dropFirst()) : arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    if let input {
        let inputPipe = Pipe()
        process.standardInput = inputPipe
        inputPipe.fileHandleForWriting.write(Data(input.utf8))
        try inputPipe.fileHandleForWriting.close()
    }
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

/// Runs Python code with the test interpreter; fails the test with its output when it fails.
@discardableResult
func python(_ code: String, _ arguments: String...) async throws -> String {
    let result = try await run([testPython, "-c", code] + arguments)
    guard result.status == 0 else {
        throw ServalError(.internalFailure, "python failed (\(result.status)):\n\(result.output)")
    }
    return result.output
}

/// Model packages made at test time.
enum Packages {
    /// A LogisticRegression on `features` features saved as `model.joblib`, and the predictions it gives for
    /// `probe`, computed in-process.
    static func logisticRegression(in folder: String, features: Int = 4) async throws -> (path: String, probe: [[Double]], expected: [Int]) {
        let path = folder + "/lr"
        let output = try await python(
            """
            import json, sys, os, joblib
            from sklearn.datasets import make_classification
            from sklearn.linear_model import LogisticRegression
            X, y = make_classification(n_samples=300, n_features=\(features), n_informative=2, n_redundant=0, random_state=7)
            model = LogisticRegression().fit(X, y)
            os.makedirs(sys.argv[1], exist_ok=True)
            joblib.dump(model, os.path.join(sys.argv[1], "model.joblib"))
            probe = X[:10].round(4)
            print(json.dumps({"probe": probe.tolist(), "expected": model.predict(probe).tolist()}))
            """, path)
        let decoded = try JSONSerialization.jsonObject(with: Data(output.utf8)) as! [String: Any]
        return (path, decoded["probe"] as! [[Double]], decoded["expected"] as! [Int])
    }

    /// A package with `code/inference.py` holding `source`, and optionally a model.joblib.
    static func custom(in folder: String, name: String, source: String, requirements: String? = nil) throws -> String {
        let path = folder + "/" + name
        try FileManager.default.createDirectory(atPath: path + "/code", withIntermediateDirectories: true)
        try source.write(toFile: path + "/code/inference.py", atomically: true, encoding: .utf8)
        if let requirements {
            try requirements.write(toFile: path + "/code/requirements.txt", atomically: true, encoding: .utf8)
        }
        return path
    }
}

/// A real `serval serve` process on an ephemeral port with its own data folder.
final class ServalServer: @unchecked Sendable {
    let dataDirectory: String
    private(set) var process: Process
    private(set) var port = 0
    /// The Open Inference Protocol gRPC port.
    private(set) var grpcPort = 0
    /// The S3-compatible object API port.
    private(set) var s3Port = 0
    private let output = OutputBuffer()
    private let ownedData: TemporaryFolder?
    /// More `serve` options, e.g. `["--lease-seconds", "2"]`.
    private let extraArguments: [String]
    /// Variables added to the server's environment.
    private let extraEnvironment: [String: String]

    var url: String { "http://127.0.0.1:\(port)" }
    /// The S3-compatible object API's URL.
    var s3URL: String { "http://127.0.0.1:\(s3Port)" }
    /// The access key (`ACCESS_KEY_ID:SECRET`) ``client`` sends as a bearer token, for servers started with `--auth`.
    var apiKey: String?
    var client: ServalClient { ServalClient(baseURL: url, apiKey: apiKey) }

    private let python: String
    private let pythonCache: String

    /// Starts a server; `dataDirectory` defaults to a fresh temporary folder, the interpreter and environment
    /// cache to the test's.
    init(
        dataDirectory: String? = nil, python: String = testPython, pythonCache: String = testPythonCache,
        arguments: [String] = [], environment: [String: String] = [:]
    ) async throws {
        self.python = python
        self.pythonCache = pythonCache
        self.extraArguments = arguments
        self.extraEnvironment = environment
        if let dataDirectory {
            self.dataDirectory = dataDirectory
            ownedData = nil
        } else {
            let folder = try TemporaryFolder()
            self.dataDirectory = folder.path
            ownedData = folder
        }
        process = Process()
        try await start()
    }

    private func start() async throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: servalBinary)
        process.arguments = [
            "serve", "--port", "0", "--grpc-port", "0", "--s3-port", "0", "--data-dir", dataDirectory, "--python", python,
            "--python-cache", pythonCache, "--worker-path", repositoryRoot + "/python", "--log-level", "info",
        ] + extraArguments
        process.environment = ProcessInfo.processInfo.environment.merging(extraEnvironment) { $1 }
        let output = self.output
        output.reset()
        output.collect(from: process)
        try process.run()
        // Generous: a whole suite starts dozens of servers at once on two cores; a healthy start takes 0.3 s.
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            let lines = output.text.split(separator: "\n")
            if let http = lines.first(where: { $0.contains("Serval is listening on http://") }),
                let port = Int(http.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)),
                let grpc = lines.first(where: { $0.contains("Serval gRPC is listening on ") }),
                let grpcPort = Int(grpc.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)),
                let s3 = lines.first(where: { $0.contains("Serval S3 is listening on http://") }),
                let s3Port = Int(s3.split(separator: ":").last!.trimmingCharacters(in: .whitespaces))
            {
                self.port = port
                self.grpcPort = grpcPort
                self.s3Port = s3Port
                return
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ServalError(.internalFailure, "serval serve did not start:\n\(output.text)")
    }

    /// Everything the server printed.
    var log: String { output.text }

    /// The server's process id.
    var pid: pid_t { process.processIdentifier }

    /// Stops the server with SIGTERM (graceful) and waits for it.
    func stop() async {
        guard process.isRunning else { return }
        process.terminate()
        await waitForExit()
    }

    /// Kills the server with SIGKILL, as a crash would.
    func kill() async {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        await waitForExit()
    }

    /// Starts the server again on the same data folder (a new port).
    func restart() async throws {
        try await start()
    }

    private func waitForExit() async {
        let deadline = ContinuousClock.now + .seconds(60)
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    deinit {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
    }

    /// Uploads a package, creates a config and an endpoint, and waits until it leaves Creating.
    @discardableResult
    func deploy(
        _ package: String, name: String, instances: Int = 1, maxBatchSize: Int = 1, maxDelayMs: Double = 0,
        maxQueueSize: Int? = nil, invocationTimeoutSeconds: Int? = nil
    ) async throws -> EndpointDescriptionResult {
        _ = try await client.createModel(name: name, package: package)
        _ = try await client.createEndpointConfig(
            .init(
                name: name,
                variants: [
                    .init(
                        model: name, instanceCount: instances, maxBatchSize: maxBatchSize, maxQueueDelayMs: maxDelayMs,
                        maxQueueSize: maxQueueSize, invocationTimeoutSeconds: invocationTimeoutSeconds)
                ]))
        _ = try await client.createEndpoint(name: name, config: name)
        let endpoint = try await client.waitForEndpoint(name, timeout: .seconds(600))
        return EndpointDescriptionResult(status: endpoint.status, failureReason: endpoint.failureReason)
    }

    /// Invokes with a JSON body.
    func invoke(_ name: String, json: String, accept: String? = nil) async throws -> ServalClient.RawResponse {
        try await client.invoke(name, body: ByteBuffer(string: json), contentType: "application/json", accept: accept)
    }
}

/// The part of an endpoint description the tests check after a deploy.
struct EndpointDescriptionResult {
    var status: String
    var failureReason: String?
}

/// A thread-safe growing text buffer.
final class OutputBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()

    func append(_ chunk: Data) {
        lock.lock()
        data.append(chunk)
        lock.unlock()
    }

    func reset() {
        lock.lock()
        data = Data()
        lock.unlock()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }

    /// Points `process`'s stdout and stderr at one pipe whose bytes this buffer collects as they come; `ended` runs
    /// once the pipe closes. Call before `process.run()`.
    func collect(from process: Process, ended: (@Sendable () -> Void)? = nil) {
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        pipe.fileHandleForReading.readabilityHandler = { [self] handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                ended?()
            } else {
                append(data)
            }
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes.
/// How much longer than its stated timeout a polled wait may take (`SERVAL_TEST_TIME_SCALE`, default 4): the whole
/// suite starts dozens of servers and workers at once on two cores, where a start that takes a second alone can
/// take a minute. Widening a deadline only delays the report of a real failure.
let testTimeScale = Double(ProcessInfo.processInfo.environment["SERVAL_TEST_TIME_SCALE"] ?? "") ?? 4

func eventually(
    timeout: Duration = .seconds(30), _ what: String, _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout * testTimeScale
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(25))
    }
    throw ServalError(.internalFailure, "timed out waiting for: \(what)")
}

/// Parses a JSON object body.
func jsonObject(_ response: ServalClient.RawResponse) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
}
