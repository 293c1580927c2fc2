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

/// What a model's code can reach: only its own descriptors, no server secrets, no server environment; and no
/// worker outlives its server.
@Suite(.serialized) struct IsolationTests {
    /// The processes whose parent is `pid`.
    static func children(of pid: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> pid_t? in
            guard let child = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && pid_t(fields[1]) == pid ? child : nil
        }
    }

    /// Each open descriptor of `pid` and what it refers to (`socket:[123]`, a path, `pipe:[456]`).
    static func descriptors(of pid: pid_t) -> [Int: String] {
        let folder = "/proc/\(pid)/fd"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        var result: [Int: String] = [:]
        for entry in entries {
            if let number = Int(entry), let target = try? FileManager.default.destinationOfSymbolicLink(atPath: folder + "/" + entry) {
                result[number] = target
            }
        }
        return result
    }

    /// The socket inodes (`socket:[N]`) listening on TCP `port`.
    static func listeningSockets(port: Int) -> Set<String> {
        var sockets = Set<String>()
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let text = (try? String(contentsOfFile: table, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 9, fields[3] == "0A", let colon = fields[1].lastIndex(of: ":"),
                    Int(fields[1][fields[1].index(after: colon)...], radix: 16) == port
                else { continue }
                sockets.insert("socket:[\(fields[9])]")
            }
        }
        return sockets
    }

    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(descriptor, pointer, size) == 0 && getsockname(descriptor, pointer, &size) == 0
            }
        }
        guard bound else { throw ServalError(.internalFailure, "cannot pick a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    @Test func workersHoldNoneOfTheServersDescriptors() async throws {
        let folder = try TemporaryFolder()
        let model = try await Packages.logisticRegression(in: folder.path)
        let server = try await ServalServer()
        let endpoint = try await server.deploy(model.path, name: "fds", instances: 2)
        #expect(endpoint.status == "InService", "\(endpoint.failureReason ?? "")")

        let workers = Self.children(of: server.pid)
        #expect(workers.count == 2, "workers: \(workers)")
        // /proc/net/tcp is read while other tests open and close sockets, and such a read may skip entries: read it
        // until each of the three ports shows its listening socket.
        var sockets: [Int: Set<String>] = [:]
        try await eventually(timeout: .seconds(30), "the server's three listening sockets in /proc/net") {
            for port in [server.port, server.grpcPort, server.s3Port] {
                sockets[port, default: []].formUnion(Self.listeningSockets(port: port))
            }
            return sockets.count == 3 && sockets.values.allSatisfy { !$0.isEmpty }
        }
        let listening = sockets.values.reduce(into: Set<String>()) { $0.formUnion($1) }
        let serverDescriptors = Set(Self.descriptors(of: server.pid).values)
        for worker in workers {
            let held = Self.descriptors(of: worker)
            #expect(!held.isEmpty)
            // 0-2 are /dev/null and the output pipe, 3 the worker's own channel; nothing else is the server's.
            let shared = held.filter { $0.key > 3 && serverDescriptors.contains($0.value) }
            #expect(shared.isEmpty, "worker \(worker) holds the server's \(shared)")
            #expect(Set(held.values).isDisjoint(with: listening), "worker \(worker) holds a listening socket")
        }
        await server.stop()
    }

    @Test func restartRightAfterKill9Serves() async throws {
        let folder = try TemporaryFolder()
        let model = try await Packages.logisticRegression(in: folder.path)
        let ports = ["--port", "\(try Self.freePort())", "--grpc-port", "\(try Self.freePort())", "--s3-port", "\(try Self.freePort())"]
        let server = try await ServalServer(arguments: ports)
        let endpoint = try await server.deploy(model.path, name: "orphans")
        #expect(endpoint.status == "InService", "\(endpoint.failureReason ?? "")")
        let workers = Self.children(of: server.pid)
        #expect(workers.count == 1)

        await server.kill()
        try await eventually(timeout: .seconds(10), "the workers die with their server") {
            workers.allSatisfy { kill($0, 0) != 0 }
        }
        try await server.restart()
        // Restored endpoints answer 429 (ModelNotReady) while their workers load.
        let body = "{\"instances\": \(model.probe)}"
        try await eventually(timeout: .seconds(120), "the endpoint serves again on the same ports") {
            try await server.invoke("orphans", json: body).status == 200
        }
        await server.stop()
    }

    @Test func aTakenPortEndsTheStartAtOnceNamingIt() async throws {
        let server = try await ServalServer()
        let data = try TemporaryFolder()
        let start = ContinuousClock.now
        let result = try await run([
            servalBinary, "serve", "--port", "\(server.port)", "--grpc-port", "0", "--s3-port", "0",
            "--data-dir", data.path, "--python", testPython, "--worker-path", repositoryRoot + "/python",
        ])
        #expect(ContinuousClock.now - start < .seconds(20))
        #expect(result.status != 0)
        #expect(result.output.contains("HTTP port 127.0.0.1:\(server.port)"), "\(result.output)")
        #expect(result.output.contains("--port"), "\(result.output)")
        if geteuid() == 0 {  // /proc shows another user's descriptors to root only.
            #expect(result.output.contains("pid \(server.pid) (serval)"), "\(result.output)")
        }
        await server.stop()
    }

    @Test func modelCodeCannotReadTheServersSecretsOrEnvironment() async throws {
        let folder = try TemporaryFolder()
        let data = try TemporaryFolder()
        // The master key exists before the server starts, as after any access key was made.
        let keys = try await run([servalBinary, "keys", "create", "--data-dir", data.path, "--role", "admin"])
        #expect(keys.status == 0, "\(keys.output)")
        #expect(FileManager.default.fileExists(atPath: data.path + "/master.key"))
        let source = """
            import json, os

            DATA = \(String(reflecting: data.path))

            def attempt(action):
                try:
                    action()
                    return "read"
                except OSError as error:
                    return type(error).__name__

            def model_fn(model_dir):
                return {
                    "uid": os.getuid(),
                    "cwd": os.getcwd(),
                    "model_dir": model_dir,
                    "environment": sorted(os.environ),
                    "master_key": attempt(lambda: open(os.path.join(DATA, "master.key"), "rb").read()),
                    "database": attempt(lambda: open(os.path.join(DATA, "serval.sqlite"), "rb").read(16)),
                    "logs": attempt(lambda: open(os.path.join(DATA, "logs.sqlite"), "rb").read(16)),
                    "list_data": attempt(lambda: os.listdir(DATA)),
                    "list_objects": attempt(lambda: os.listdir(os.path.join(DATA, "objects"))),
                    "canary": os.environ.get("SERVAL_CANARY") or os.environ.get("AWS_SECRET_ACCESS_KEY"),
                }

            def input_fn(body, content_type):
                return body

            def predict_fn(data, model):
                return model

            def output_fn(prediction, accept):
                return json.dumps(prediction)
            """
        let package = try Packages.custom(in: folder.path, name: "snoop", source: source)
        let server = try await ServalServer(
            dataDirectory: data.path,
            environment: ["SERVAL_CANARY": "server-secret", "AWS_SECRET_ACCESS_KEY": "server-secret"])
        let endpoint = try await server.deploy(package, name: "snoop")
        #expect(endpoint.status == "InService", "\(endpoint.failureReason ?? "")")
        let response = try await server.invoke("snoop", json: "{}")
        #expect(response.status == 200)
        let seen = try jsonObject(response)

        #expect(seen["canary"] is NSNull, "\(seen)")
        let allowed: Set<String> = [
            "PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONPATH",
            "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "SM_MODEL_DIR",
        ]
        let environment = try #require(seen["environment"] as? [String])
        let unexpected = environment.filter { !allowed.contains($0) && !$0.hasPrefix("LC_") && !$0.hasPrefix("OPENBLAS_") }
        #expect(unexpected.isEmpty, "the worker's environment holds \(unexpected)")
        #expect(seen["cwd"] as? String == seen["model_dir"] as? String)

        if geteuid() == 0 {
            // Serval runs as root: the worker runs as an unprivileged user and reaches none of the data folder's
            // secrets, nor its other users' objects.
            #expect(seen["uid"] as? Int != 0)
            #expect(seen["master_key"] as? String == "PermissionError", "\(seen)")
            #expect(seen["database"] as? String == "PermissionError", "\(seen)")
            #expect(seen["logs"] as? String == "PermissionError", "other models' output: \(seen)")
            #expect(seen["list_data"] as? String == "PermissionError", "\(seen)")
            #expect(seen["list_objects"] as? String == "PermissionError", "\(seen)")
        }
        await server.stop()
    }

    @Test func secretsAreSealedInTheDatabaseAndStillReachTheWorker() async throws {
        let folder = try TemporaryFolder()
        let source = """
            import json, os
            def model_fn(model_dir):
                return os.environ.get("API_TOKEN")
            def transform_fn(model, body, content_type, accept):
                return json.dumps({"token": model}), "application/json"
            """
        let package = try Packages.custom(in: folder.path, name: "sealed", source: source)
        let server = try await ServalServer(arguments: ["--model-source-root", folder.path])
        let token = "tok-\(UUID().uuidString.prefix(8))"
        let hook = "whsec-\(UUID().uuidString.prefix(8))"
        let request = CreateModelRequest(
            name: "sealed", modelDataUrl: package, environment: ["API_TOKEN": token, "REGION": "eu-west-3"])
        let created = try await server.client.send(
            .POST, "/models", headers: [("Content-Type", "application/json")],
            body: ByteBuffer(bytes: Array(try JSONEncoder().encode(request))))
        #expect(created.status == 201, "\(String(buffer: created.body))")
        _ = try await server.client.createEndpointConfig(
            .init(
                name: "sealed", variants: [.init(model: "sealed", instanceCount: 1, maxBatchSize: 1, maxQueueDelayMs: 0)],
                asyncInference: AsyncInferenceSettings(outputPath: "s3://sealed-out/results", webhookSecret: hook)))
        _ = try await server.client.createEndpoint(name: "sealed", config: "sealed")
        let endpoint = try await server.client.waitForEndpoint("sealed", timeout: .seconds(300))
        #expect(endpoint.status == "InService", "\(endpoint.failureReason ?? "")")

        // The worker gets its environment in clear...
        let answer = try jsonObject(try await server.invoke("sealed", json: "{}"))
        #expect(answer["token"] as? String == token)
        // ...and the database, with its write-ahead log, holds neither secret in clear.
        let stored = ["", "-wal"].map { FileManager.default.contents(atPath: server.dataDirectory + "/serval.sqlite" + $0) ?? Data() }
        let raw = String(decoding: stored.reduce(Data(), +), as: UTF8.self)
        #expect(!raw.contains(token) && !raw.contains(hook))
        #expect(raw.contains("eu-west-3"))
        await server.stop()
    }

    @Test func theDataFolderIsTightenedAtStart() async throws {
        let data = try TemporaryFolder()
        chmod(data.path, 0o755)
        _ = FileManager.default.createFile(atPath: data.path + "/serval.sqlite-wal", contents: nil)
        chmod(data.path + "/serval.sqlite-wal", 0o644)
        _ = FileManager.default.createFile(atPath: data.path + "/logs.sqlite", contents: nil)
        chmod(data.path + "/logs.sqlite", 0o644)
        let server = try await ServalServer(dataDirectory: data.path)
        func mode(_ path: String) -> mode_t {
            var info = stat()
            return stat(path, &info) == 0 ? info.st_mode & 0o777 : 0o7777
        }
        // Group bits may show the mask of the workers' passage (an ACL entry); nobody else has any access.
        #expect(mode(data.path) & 0o707 == 0o700)
        #expect(mode(data.path + "/serval.sqlite") == 0o600)
        #expect(mode(data.path + "/serval.sqlite-wal") == 0o600)
        #expect(mode(data.path + "/logs.sqlite") == 0o600)
        #expect(mode(data.path + "/logs.sqlite-wal") == 0o600, "SQLite gives the WAL the database's mode")
        #expect(mode(data.path + "/objects") & 0o707 == 0o700)
        #expect(server.log.contains("Tightened the data folder's permissions"))
        await server.stop()
    }
}
