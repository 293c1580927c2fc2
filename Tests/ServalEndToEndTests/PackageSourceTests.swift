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

/// What a model create may make the server read (`modelDataUrl` only under `--model-source-root`, regular files
/// and folders only) and write (the unpacked limit, the disk reserve), and what a crash leaves behind.
@Suite(.serialized)
struct PackageSourceTests {
    /// Creates a model by reference and returns the response with how long it took.
    private func createByPath(
        _ server: ServalServer, name: String, url: String
    ) async throws -> (response: ServalClient.RawResponse, seconds: Double) {
        let body = try JSONEncoder().encode(CreateModelRequest(name: name, modelDataUrl: url))
        let start = ContinuousClock.now
        let response = try await server.client.send(
            .POST, "/models", headers: [("Content-Type", "application/json")], body: ByteBuffer(bytes: body))
        let elapsed = ContinuousClock.now - start
        return (response, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// Stops the server with SIGTERM and returns how many seconds it took to exit.
    private func secondsToStop(_ server: ServalServer) async -> Double {
        let start = ContinuousClock.now
        await server.stop()
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds)
    }

    @Test("modelDataUrl: /dev/zero, a FIFO, a folder outside the roots and a link out of a root get 400 at once; a folder under a root deploys")
    func localPathsStayUnderSourceRoots() async throws {
        let root = try TemporaryFolder()
        let outside = try TemporaryFolder()
        let model = try await Packages.logisticRegression(in: root.path)
        _ = try await Packages.logisticRegression(in: outside.path)
        #expect(mkfifo(root.path + "/pipe", 0o644) == 0)
        try FileManager.default.createSymbolicLink(atPath: root.path + "/escape", withDestinationPath: outside.path + "/lr")

        // By default the server reads no local path at all.
        let closed = try await ServalServer()
        let zero = try await createByPath(closed, name: "zero", url: "/dev/zero")
        #expect(zero.response.status == 400)
        let zeroMessage = ServalClient.error(from: zero.response).message
        #expect(zeroMessage.hasPrefix("modelDataUrl: /dev/zero is not under a folder"), "\(zeroMessage)")
        #expect(zeroMessage.contains("--model-source-root"))
        #expect(zero.seconds < 60)
        #expect(await secondsToStop(closed) < 30)

        let server = try await ServalServer(arguments: ["--model-source-root", root.path])
        for (name, url, expected) in [
            ("zero", "/dev/zero", "is not under a folder"),
            ("fifo", root.path + "/pipe", "is a FIFO (named pipe)"),
            ("outside", outside.path + "/lr", "is not under a folder"),
            ("escape", "file://" + root.path + "/escape", "is not under a folder"),
        ] {
            let (response, seconds) = try await createByPath(server, name: name, url: url)
            #expect(response.status == 400, "\(name)")
            let message = ServalClient.error(from: response).message
            #expect(message.hasPrefix("modelDataUrl: ") && message.contains(expected), "\(name): \(message)")
            #expect(!message.contains(outside.path) || name == "outside", "\(name) leaks the link's target: \(message)")
            // Refused without reading: the bound is loose because a whole suite shares two cores.
            #expect(seconds < 60, "\(name) took \(seconds) s")
        }
        #expect(try await server.client.models().isEmpty)

        // The server still serves: a folder under the root deploys and predicts.
        let created = try await createByPath(server, name: "rooted", url: "file://" + model.path)
        #expect(created.response.status == 201, "\(created.response.text)")
        _ = try await server.client.createEndpointConfig(.init(name: "rooted", variants: [.init(model: "rooted")]))
        _ = try await server.client.createEndpoint(name: "rooted", config: "rooted")
        let endpoint = try await server.client.waitForEndpoint("rooted", timeout: .seconds(600))
        #expect(endpoint.status == "InService", "\(endpoint.failureReason ?? "")")
        let rows = model.probe.map { "[\($0.map { String($0) }.joined(separator: ","))]" }.joined(separator: ",")
        let prediction = try jsonObject(try await server.invoke("rooted", json: "{\"instances\": [\(rows)]}"))
        #expect(prediction["predictions"] as? [Int] == model.expected)

        // The CLI uploads from its own machine, so a folder outside every root still works through it.
        let cli = try await run([servalBinary, "models", "create", "from-cli", outside.path + "/lr", "--server", server.url])
        #expect(cli.status == 0, "\(cli.output)")
        #expect(try await server.client.model("from-cli").artifact == "sklearn")

        // An object in Serval's own object store is accepted too.
        try await run(["tar", "-czf", root.path + "/lr.tar.gz", "-C", model.path, "."])
        try await s3Client(server, "s3.create_bucket(Bucket='packages')\ns3.upload_file('\(root.path)/lr.tar.gz', 'packages', 'lr.tar.gz')")
        let fromObject = try await createByPath(server, name: "from-s3", url: "s3://packages/lr.tar.gz")
        #expect(fromObject.response.status == 201, "\(fromObject.response.text)")
        let missingObject = try await createByPath(server, name: "missing-s3", url: "s3://packages/absent.tar.gz")
        #expect(missingObject.response.status == 400)
        #expect(await secondsToStop(server) < 30)
    }

    @Test("a gzip bomb gets 413 naming --max-unpacked-bytes and leaves nothing on disk; the disk reserve gets 400")
    func gzipBombAndDiskReserve() async throws {
        let folder = try TemporaryFolder()
        let bomb = folder.path + "/bomb.tar.gz"
        // 300 MB of zeros after a model file, compressed as it is written.
        try await python(
            """
            import io, sys, tarfile
            class Zeros(io.RawIOBase):
                def __init__(self, n): self.left = n
                def readable(self): return True
                def readinto(self, b):
                    n = min(len(b), self.left); b[:n] = bytes(n); self.left -= n; return n
            with tarfile.open(sys.argv[1], "w:gz", compresslevel=9) as tar:
                info = tarfile.TarInfo("model.joblib"); info.size = 1
                tar.addfile(info, io.BytesIO(b"x"))
                info = tarfile.TarInfo("zeros.bin"); info.size = 300 * 1024 * 1024
                tar.addfile(info, Zeros(info.size))
            """, bomb)
        let compressed = try Data(contentsOf: URL(fileURLWithPath: bomb))
        #expect(compressed.count < 1_000_000)

        let server = try await ServalServer(arguments: ["--max-unpacked-bytes", "20000000"])
        let response = try await server.client.send(
            .POST, "/models?name=bomb", headers: [("Content-Type", "application/gzip")], body: ByteBuffer(bytes: compressed))
        #expect(response.status == 413)
        let error = ServalClient.error(from: response)
        #expect(error.code == .payloadTooLarge)
        #expect(error.message.contains("20000000 bytes") && error.message.contains("serve --max-unpacked-bytes"), "\(error.message)")
        let staging = (try? FileManager.default.contentsOfDirectory(atPath: server.dataDirectory + "/staging")) ?? []
        #expect(staging.isEmpty, "staging leftovers: \(staging)")
        let models = (try? FileManager.default.contentsOfDirectory(atPath: server.dataDirectory + "/models")) ?? []
        #expect(models.isEmpty, "package leftovers: \(models)")
        #expect(try await server.client.models().isEmpty)
        await server.stop()

        let package = try await Packages.logisticRegression(in: folder.path)
        let reserved = try await ServalServer(arguments: ["--disk-reserve-bytes", String(Int.max / 2)])
        let tar = folder.path + "/lr.tar"
        try await run(["tar", "-cf", tar, "-C", package.path, "."])
        let refused = try await reserved.client.send(
            .POST, "/models?name=lr", headers: [("Content-Type", "application/x-tar")],
            body: ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: tar))))
        #expect(refused.status == 400)
        let reserveMessage = ServalClient.error(from: refused).message
        #expect(reserveMessage.contains("free") && reserveMessage.contains("serve --disk-reserve-bytes"), "\(reserveMessage)")
        await reserved.stop()
    }

    @Test("kill -9 during an upload leaves staged bytes; the next start removes them and says so")
    func killDuringUploadCleansStagingAtStart() async throws {
        let server = try await ServalServer()
        let socket = try RawConnection(port: server.port)
        socket.send(
            "POST /models?name=big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-tar\r\nContent-Length: 1000000000\r\n\r\n")
        let chunk = [UInt8](repeating: 0x41, count: 1 << 20)
        let staging = server.dataDirectory + "/staging"
        func stagedBytes() -> Int {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? []
            return names.reduce(0) { total, name in
                total + ((try? FileManager.default.attributesOfItem(atPath: staging + "/" + name))?[.size] as? Int ?? 0)
            }
        }
        // Send a megabyte at a time until the server has staged at least 4 MB, then crash it mid-upload.
        try await eventually(timeout: .seconds(60), "the upload to reach staging/") {
            try socket.send(chunk)
            return stagedBytes() >= 4 << 20
        }
        await server.kill()
        socket.close()
        #expect(stagedBytes() >= 4 << 20)

        try await server.restart()
        #expect(stagedBytes() == 0)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? []).isEmpty)
        #expect(server.log.contains("Removed what an interrupted upload or extraction left"), "\(server.log)")
        #expect(try await server.client.models().isEmpty)
        await server.stop()
    }
}
