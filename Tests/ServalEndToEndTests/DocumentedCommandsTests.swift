import Foundation
import ServalCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The commands the documentation shows and the quickstart prints, run as typed against a real Serval.
///
/// **Documented blocks.** Every fenced `sh` or `python` block of README.md and docs/*.md that follows a line
/// `<!-- tested -->` runs. A file's tested blocks run in order in one bash session, as a reader following the page
/// would type them, in a fresh folder holding what the pages say the reader brings: `my-model/` (a scikit-learn
/// `model.joblib` on four features), `model.tar.gz` (the same as a SageMaker model archive), `big.json` (a JSON
/// request for it) and `data/part-1.csv` (CSV rows for it). `python` blocks run with `python3`. The session differs
/// from a reader's terminal only in what cannot be typed on a shared machine:
/// - the debug-built `serval` and the test's Python come first on `PATH`, and `SERVAL_PYTHON`/`SERVAL_PYTHON_CACHE`
///   point Serval at the test's interpreter and environment cache (no pip install);
/// - the documented default ports are replaced by free ones: `serval serve` gets `--port`, `--grpc-port` and
///   `--s3-port`, `localhost:8080`/`127.0.0.1:8080`, `127.0.0.1:8081` and `127.0.0.1:9000` in the blocks become
///   those ports, and the CLI finds them through `SERVAL_URL` and `SERVAL_S3_URL`;
/// - when a file's blocks do not start `serval serve`, one is started first (`serval serve --data-dir .serval &`, as
///   README's "Use it" does); after a command put in the background with `&`, the session waits until Serval answers
///   `/ping` (a reader types the next command later).
///
/// The session stops at the first command that fails, and `curl` runs with `--fail-with-body`, so a command that is
/// answered with an HTTP error fails the test too.
///
/// **The quickstart.** `scripts/quickstart.sh` runs with the debug-built `serval` (`SERVAL`), the test's Python
/// (`PYTHON`) and free ports, so no release build; every command it prints (the lines starting with `$ `) then runs
/// as typed, while the quickstart's Serval keeps serving.
@Suite struct DocumentedCommandsTests {
    /// The marker line before a block the test runs.
    static let marker = "<!-- tested -->"

    /// The Markdown files with at least one tested block, relative to the repository root.
    static let documents: [String] = {
        let docs = (try? FileManager.default.contentsOfDirectory(atPath: repositoryRoot + "/docs")) ?? []
        let files = ["README.md"] + docs.filter { $0.hasSuffix(".md") }.sorted().map { "docs/" + $0 }
        return files.filter { file in
            (try? String(contentsOfFile: repositoryRoot + "/" + file, encoding: .utf8))?.contains(marker) == true
        }
    }()

    @Test func readmeAndDocsHaveTestedBlocks() throws {
        #expect(Self.documents.contains("README.md"))
        #expect(Self.documents.count >= 4, "tested documents: \(Self.documents)")
    }

    @Test(arguments: DocumentedCommandsTests.documents)
    func documentedBlocksRunAsTyped(_ document: String) async throws {
        let text = try String(contentsOfFile: repositoryRoot + "/" + document, encoding: .utf8)
        let blocks = try DocumentedBlock.parse(text, marker: Self.marker, file: document)
        #expect(!blocks.isEmpty)
        let folder = try TemporaryFolder()
        try await makeFixtures(in: folder.path)
        let ports = try freePorts(3)
        let session = DocumentedSession(ports: ports)
        let script = session.script(for: blocks)
        try script.write(toFile: folder.path + "/session.sh", atomically: true, encoding: .utf8)
        let result = try await runScript(
            ["bash", folder.path + "/session.sh"], in: folder.path, environment: session.environment,
            timeout: .seconds(900))
        #expect(result.status == 0, "\(document): a documented command failed (status \(result.status)):\n\(result.output)")
    }

    @Test func quickstartPrintsCommandsThatWork() async throws {
        let folder = try TemporaryFolder()
        let ports = try freePorts(3)
        let url = "http://127.0.0.1:\(ports[0])"
        let quickstart = try ScriptProcess(
            ["bash", repositoryRoot + "/scripts/quickstart.sh"], in: repositoryRoot,
            environment: [
                "SERVAL": servalBinary, "PYTHON": testPython, "PORT": "\(ports[0])", "GRPC_PORT": "\(ports[1])",
                "S3_PORT": "\(ports[2])", "DATA_DIR": folder.path + "/data", "MODEL_DIR": folder.path + "/model",
            ])
        defer { quickstart.stop() }
        try await eventually(timeout: .seconds(600), "the quickstart to finish its start") {
            if !quickstart.isRunning { throw ServalError(.internalFailure, "the quickstart ended:\n\(quickstart.output)") }
            return quickstart.output.contains("Ctrl-C stops it.")
        }
        let output = quickstart.output
        let commands = output.split(separator: "\n").filter { $0.hasPrefix("$ ") }.map { String($0.dropFirst(2)) }
        #expect(commands.count >= 5, "the quickstart printed:\n\(output)")
        #expect(commands.allSatisfy { $0.contains(url) }, "every command names the quickstart's port:\n\(output)")
        #expect(output.contains("\"predictions\""), "the quickstart showed no prediction:\n\(output)")
        #expect(!output.contains("\"code\""), "the quickstart showed an error:\n\(output)")
        for command in commands {
            let result = try await runScript(
                ["bash", "-c", DocumentedSession.curlFailsOnHTTPErrors + "\n" + command], in: folder.path, environment: [:],
                timeout: .seconds(120))
            #expect(result.status == 0, "a command the quickstart printed failed:\n$ \(command)\n\(result.output)")
        }
        quickstart.stop()
        #expect(await quickstart.waitForExit(timeout: .seconds(60)), "the quickstart did not stop on SIGTERM")
    }

    /// The files the documented commands expect in the reader's folder (see the suite's documentation).
    private func makeFixtures(in folder: String) async throws {
        try await python(
            """
            import csv, json, os, sys, tarfile, joblib
            from sklearn.datasets import make_classification
            from sklearn.linear_model import LogisticRegression
            os.chdir(sys.argv[1])
            X, y = make_classification(n_samples=300, n_features=4, n_informative=2, n_redundant=0, random_state=7)
            os.makedirs("my-model", exist_ok=True)
            joblib.dump(LogisticRegression().fit(X, y), "my-model/model.joblib")
            with tarfile.open("model.tar.gz", "w:gz") as tar:
                tar.add("my-model/model.joblib", arcname="model.joblib")
            with open("big.json", "w") as f:
                json.dump({"instances": X[:200].round(4).tolist()}, f)
            os.makedirs("data", exist_ok=True)
            with open("data/part-1.csv", "w", newline="") as f:
                csv.writer(f).writerows(X[:100].round(4).tolist())
            """, folder)
    }
}

/// A fenced block of a Markdown file that follows the tested marker.
struct DocumentedBlock {
    /// `sh` or `python`.
    var language: String
    var code: String
    /// Where the block starts, for messages.
    var line: Int

    /// The tested blocks of `text`; a marker not followed by a `sh` or `python` block is an error.
    static func parse(_ text: String, marker: String, file: String) throws -> [DocumentedBlock] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var blocks: [DocumentedBlock] = []
        var index = 0
        while index < lines.count {
            defer { index += 1 }
            guard lines[index].trimmingCharacters(in: .whitespaces) == marker else { continue }
            let fence = index + 1 < lines.count ? lines[index + 1] : ""
            guard fence == "```sh" || fence == "```python" else {
                throw ServalError(.internalFailure, "\(file):\(index + 1): \(marker) must come right before a ```sh or ```python block")
            }
            var body: [String] = []
            var end = index + 2
            while end < lines.count && lines[end] != "```" {
                body.append(lines[end])
                end += 1
            }
            guard end < lines.count else { throw ServalError(.internalFailure, "\(file):\(index + 2): the block never ends") }
            blocks.append(DocumentedBlock(language: String(fence.dropFirst(3)), code: body.joined(separator: "\n"), line: index + 2))
            index = end
        }
        return blocks
    }
}

/// The bash session that runs a file's tested blocks (see ``DocumentedCommandsTests``).
struct DocumentedSession {
    /// HTTP, gRPC and S3 ports.
    var ports: [Int]

    /// Makes `curl` fail, with the answer shown, when it is answered with an HTTP error.
    static let curlFailsOnHTTPErrors = #"curl() { command curl --fail-with-body "$@"; }"#

    /// Variables for the session: clients find the free ports, Serval the test's Python.
    var environment: [String: String] {
        var path = [(servalBinary as NSString).deletingLastPathComponent]
        if testPython.contains("/") { path.append((testPython as NSString).deletingLastPathComponent) }
        path.append(ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        return [
            "PATH": path.joined(separator: ":"), "SERVAL_URL": "http://127.0.0.1:\(ports[0])",
            "SERVAL_S3_URL": "http://127.0.0.1:\(ports[2])", "SERVAL_PYTHON": testPython,
            "SERVAL_PYTHON_CACHE": testPythonCache,
        ]
    }

    /// The documented default ports in a block's text, replaced by this session's.
    func withPorts(_ code: String) -> String {
        code.replacingOccurrences(of: "localhost:8080", with: "127.0.0.1:\(ports[0])")
            .replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:\(ports[0])")
            .replacingOccurrences(of: "127.0.0.1:8081", with: "127.0.0.1:\(ports[1])")
            .replacingOccurrences(of: "127.0.0.1:9000", with: "127.0.0.1:\(ports[2])")
            .replacingOccurrences(
                of: "serval serve", with: "serval serve --port \(ports[0]) --grpc-port \(ports[1]) --s3-port \(ports[2])")
    }

    /// The whole session as one bash script.
    func script(for blocks: [DocumentedBlock]) -> String {
        var script = """
            set -eo pipefail
            \(Self.curlFailsOnHTTPErrors)
            # Waits until the Serval just started in the background answers, or fails when it ended.
            serval_is_up() {
              local deadline=$((SECONDS + 120))
              until command curl -sf http://127.0.0.1:\(ports[0])/ping >/dev/null; do
                kill -0 $! 2>/dev/null || { echo "the background command ended" >&2; return 1; }
                [ $SECONDS -lt $deadline ] || { echo "Serval did not answer /ping within 120 s" >&2; return 1; }
                sleep 0.1
              done
            }
            trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT
            set -x

            """
        if !blocks.contains(where: { $0.language == "sh" && $0.code.contains("serval serve") }) {
            script += withPorts("serval serve --data-dir .serval &") + "\nserval_is_up\n"
        }
        for block in blocks {
            script += "\n: block at line \(block.line)\n"
            let code = withPorts(block.code)
            if block.language == "python" {
                script += "python3 - <<'SERVAL_DOCUMENTED_PYTHON'\n\(code)\nSERVAL_DOCUMENTED_PYTHON\n"
                continue
            }
            for line in code.split(separator: "\n", omittingEmptySubsequences: false) {
                script += line + "\n"
                if line.range(of: #"[^&]&\s*(#.*)?$"#, options: .regularExpression) != nil { script += "serval_is_up\n" }
            }
        }
        return script
    }
}

/// `count` distinct loopback ports that were free a moment ago.
func freePorts(_ count: Int) throws -> [Int] {
    var sockets: [Int32] = []
    defer { sockets.forEach { _ = close($0) } }
    var ports: [Int] = []
    for _ in 0..<count {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        sockets.append(descriptor)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard bound else { throw ServalError(.internalFailure, "cannot find a free port") }
        ports.append(Int(UInt16(bigEndian: address.sin_port)))
    }
    return ports
}

/// A script run in its own process group, its output collected; stopped with its children.
final class ScriptProcess: @unchecked Sendable {
    /// Starts a command with no signal blocked, in a session (and process group) of its own: the test's threads block
    /// most signals and a child inherits the mask, so a script started directly would never see SIGTERM or run its
    /// traps; and the group lets the script stop with everything it started.
    private static let launcher = """
        import os, signal, sys
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        try:
            os.setsid()
        except OSError:
            pass  # a group leader already
        os.execvp(sys.argv[1], sys.argv[1:])
        """

    private let process = Process()
    private let buffer = OutputBuffer()
    private let ended = EndFlag()

    /// Starts `arguments` (found on `PATH`) in `folder` with `environment` added to the test's.
    init(_ arguments: [String], in folder: String, environment: [String: String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [testPython, "-c", Self.launcher] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardInput = FileHandle.nullDevice
        let ended = self.ended
        buffer.collect(from: process) { ended.set() }
        try process.run()
    }

    /// Everything printed so far.
    var output: String { buffer.text }

    var isRunning: Bool { process.isRunning }

    var status: Int32 { process.terminationStatus }

    /// Sends SIGTERM to the script's group.
    func stop() {
        if process.isRunning { kill(-process.processIdentifier, SIGTERM) }
    }

    /// Waits until the script ends; false when `timeout` passed first (its group is then killed).
    func waitForExit(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if process.isRunning {
            kill(-process.processIdentifier, SIGKILL)
            return false
        }
        // The last output may still be in the pipe.
        let flushed = ContinuousClock.now + .seconds(5)
        while !ended.isSet && ContinuousClock.now < flushed {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    deinit {
        if process.isRunning { kill(-process.processIdentifier, SIGKILL) }
    }
}

/// Runs a script to its end (its group is killed after `timeout`); returns its status and output.
func runScript(
    _ arguments: [String], in folder: String, environment: [String: String], timeout: Duration
) async throws -> (status: Int32, output: String) {
    let script = try ScriptProcess(arguments, in: folder, environment: environment)
    guard await script.waitForExit(timeout: timeout) else {
        return (-1, script.output + "\n(killed after \(timeout))")
    }
    return (script.status, script.output)
}

/// A flag set once, from any thread.
final class EndFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    func set() {
        lock.lock()
        value = true
        lock.unlock()
    }

    var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
}
