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

/// A package whose `transform_fn` answers JSON with the body's length, SHA-256 and first 64 bytes; a body
/// starting with `fail` raises, and `sleep:MS` sleeps that long first.
func digestPackage(in folder: String) throws -> String {
    try Packages.custom(
        in: folder, name: "digest",
        source: """
            import hashlib, json, time

            def model_fn(model_dir):
                return None

            def transform_fn(model, body, content_type, accept):
                if isinstance(body, str):
                    body = body.encode()
                if body.startswith(b"fail"):
                    raise ValueError("the input asked to fail")
                if body.startswith(b"sleep:"):
                    time.sleep(int(body[6:].split(b";")[0]) / 1000)
                return json.dumps({"n": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                                   "echo": body[:64].decode("latin-1")}), "application/json"
            """)
}

extension ServalServer {
    /// Uploads a package and deploys it as an endpoint that takes async invocations, writing under
    /// `s3://results/<name>`.
    @discardableResult
    func deployAsync(
        _ package: String, name: String, instances: Int = 1, maxConcurrency: Int? = nil, maxBatchSize: Int = 1,
        successWebhook: String? = nil, errorWebhook: String? = nil, webhookSecret: String? = nil, maxAttempts: Int? = nil
    ) async throws -> EndpointDescription {
        _ = try await client.createModel(name: name, package: package)
        _ = try await client.createEndpointConfig(
            .init(
                name: name, variants: [.init(model: name, instanceCount: instances, maxBatchSize: maxBatchSize, maxQueueDelayMs: maxBatchSize > 1 ? 2 : 0)],
                asyncInference: .init(
                    outputPath: "s3://results/\(name)", failurePath: "s3://failures/\(name)",
                    maxConcurrentInvocationsPerInstance: maxConcurrency, successWebhook: successWebhook,
                    errorWebhook: errorWebhook, webhookSecret: webhookSecret, maxAttempts: maxAttempts)))
        _ = try await client.createEndpoint(name: name, config: name)
        let endpoint = try await client.waitForEndpoint(name, timeout: .seconds(600))
        #expect(endpoint.status == "InService", "\(endpoint.failureReason ?? "")")
        return endpoint
    }

    /// The object's bytes from the data folder (the local object store), or nil.
    func storedObject(_ uri: String) -> Data? {
        guard uri.hasPrefix("s3://") else { return nil }
        return FileManager.default.contents(atPath: dataDirectory + "/objects/" + uri.dropFirst(5))
    }

    /// Every file under a bucket folder of the local object store, relative to it.
    func storedKeys(bucket: String) -> [String] {
        let root = dataDirectory + "/objects/" + bucket
        guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
        var keys: [String] = []
        while let path = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isDirectory), !isDirectory.boolValue {
                keys.append(path)
            }
        }
        return keys.sorted()
    }
}

/// What the digest model answers for `body`.
struct Digest: Decodable, Equatable {
    var n: Int
    var sha256: String
    var echo: String
}

func decodeDigest(_ data: Data?) throws -> Digest {
    try JSONDecoder().decode(Digest.self, from: try #require(data))
}

@Suite("Asynchronous inference", .serialized)
struct AsyncInferenceTests {
    @Test("many submissions complete with the right outputs, each written once, and the queue drains")
    func manyComplete() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer()
        let package = try await Packages.logisticRegression(in: folder.path, features: 4)
        try await server.deployAsync(package.path, name: "lr", maxConcurrency: 8, maxBatchSize: 8)

        let count = 120
        let ids = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for index in 0..<count {
                group.addTask {
                    let row = package.probe[index % package.probe.count]
                    let body = ByteBuffer(string: "[[\(row.map { "\($0)" }.joined(separator: ","))]]")
                    let submitted = try await server.client.submitAsync("lr", body: body, contentType: "application/json")
                    #expect(submitted.outputLocation == "s3://results/lr/\(submitted.inferenceId).out")
                    #expect(submitted.failureLocation == "s3://failures/lr/\(submitted.inferenceId)-error.out")
                    return (index, submitted.inferenceId)
                }
            }
            var ids = [String](repeating: "", count: count)
            for try await (index, id) in group { ids[index] = id }
            return ids
        }
        #expect(Set(ids).count == count)
        for (index, id) in ids.enumerated() {
            let done = try await server.client.waitForAsyncInvocation("lr", id: id, timeout: .seconds(120))
            #expect(done.status == "Completed", "\(done.failureReason ?? "")")
            #expect(done.attempts == 1)
            let result = try await server.client.asyncResult("lr", id: id)
            let predictions = try jsonObject(result)["predictions"] as? [Int]
            #expect(predictions == [package.expected[index % package.probe.count]])
            #expect(server.storedObject(done.outputLocation) == Data(result.body.readableBytesView))
        }
        // Exactly one output object per invocation and nothing else (no temporary or partial objects).
        #expect(server.storedKeys(bucket: "results") == ids.map { "lr/\($0).out" }.sorted())
        #expect(server.storedKeys(bucket: "failures").isEmpty)

        let completed = try await server.client.asyncInvocations("lr", status: "Completed", limit: 1000)
        #expect(completed.invocations.count == count)
        let page = try await server.client.asyncInvocations("lr", limit: 50)
        #expect(page.invocations.count == 50 && page.nextToken != nil)
        let endpoint = try await server.client.endpoint("lr")
        #expect(endpoint.asyncQueue == AsyncQueueState(queued: 0, inProgress: 0))
    }

    @Test("an inference id makes a submission idempotent; reusing it for another inline body or input is a conflict")
    func idempotentId() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer()
        try await server.deployAsync(try digestPackage(in: folder.path), name: "digest")
        let first = try await server.client.submitAsync("digest", body: ByteBuffer(string: "hello"), inferenceId: "order-42")
        let again = try await server.client.submitAsync("digest", body: ByteBuffer(string: "hello"), inferenceId: "order-42")
        #expect(first == again)
        #expect(first.inferenceId == "order-42")
        let done = try await server.client.waitForAsyncInvocation("digest", id: "order-42", timeout: .seconds(60))
        #expect(done.status == "Completed")
        let afterwards = try await server.client.submitAsync("digest", body: ByteBuffer(string: "hello"), inferenceId: "order-42")
        #expect(afterwards == first)
        #expect(try await server.client.asyncInvocations("digest").invocations.count == 1)
        #expect(try decodeDigest(server.storedObject(first.outputLocation)).echo == "hello")

        // The same id with another inline body is refused, before and after the first one ran.
        _ = try await server.client.submitAsync("digest", body: ByteBuffer(string: "sleep:1000"), inferenceId: "slow-1")
        for (id, body) in [("slow-1", "sleep:1000 but different"), ("order-42", "goodbye")] {
            let otherBody = try await server.client.send(
                .POST, "/endpoints/digest/async-invocations", headers: [("X-Amzn-SageMaker-Inference-Id", id)],
                body: ByteBuffer(string: body))
            #expect(otherBody.status == 409, "\(otherBody.text)")
            #expect(otherBody.text.contains("different inline body") && otherBody.text.contains("new id"), "\(otherBody.text)")
        }
        #expect(try await server.client.waitForAsyncInvocation("digest", id: "slow-1", timeout: .seconds(60)).status == "Completed")
        #expect(try await server.client.asyncInvocations("digest").invocations.count == 2)
        #expect(try decodeDigest(server.storedObject(first.outputLocation)).echo == "hello")

        let conflict = try await server.client.send(
            .POST, "/endpoints/digest/async-invocations",
            headers: [("X-Amzn-SageMaker-Inference-Id", "order-42"), ("X-Amzn-SageMaker-InputLocation", "s3://inputs/other.json")])
        #expect(conflict.status == 400 || conflict.status == 409)
    }

    @Test("bad submissions get clear errors and nothing is queued")
    func badInput() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer(arguments: ["--webhook-allow", "127.0.0.1"])
        try await server.deployAsync(try digestPackage(in: folder.path), name: "digest")
        try await server.deploy(try digestPackage(in: folder.path + "/rt"), name: "realtime")

        func submit(_ endpoint: String, headers: [(String, String)], body: String? = nil) async throws -> ServalClient.RawResponse {
            try await server.client.send(
                .POST, "/endpoints/\(endpoint)/async-invocations", headers: headers, body: body.map { ByteBuffer(string: $0) })
        }
        let unknown = try await submit("nope", headers: [], body: "x")
        #expect(unknown.status == 404)
        #expect(unknown.header("x-amzn-ErrorType") == "ValidationError")
        let noAsync = try await submit("realtime", headers: [], body: "x")
        #expect(noAsync.status == 400)
        #expect(noAsync.text.contains("asyncInference"))
        let missing = try await submit("digest", headers: [("X-Amzn-SageMaker-InputLocation", "s3://inputs/missing.json")])
        #expect(missing.status == 400)
        #expect(missing.text.contains("does not exist"))
        for bad in ["s3://inputs/../secret", "s3://inputs/a/../../b", "file:///etc/passwd", "s3://../x", "s3://inputs//a", "s3://inputs/"] {
            let response = try await submit("digest", headers: [("X-Amzn-SageMaker-InputLocation", bad)])
            #expect(response.status == 400, "\(bad): \(response.text)")
        }
        let big = try await submit("digest", headers: [], body: String(repeating: "x", count: 128_001))
        #expect(big.status == 413)
        let ttl = try await submit("digest", headers: [("X-Amzn-SageMaker-RequestTTLSeconds", "5")], body: "x")
        #expect(ttl.status == 400)
        let id = try await submit("digest", headers: [("X-Amzn-SageMaker-Inference-Id", "a/b")], body: "x")
        #expect(id.status == 400)
        let empty = try await submit("digest", headers: [])
        #expect(empty.status == 400)
        #expect(try await server.client.asyncInvocations("digest").invocations.isEmpty)

        // Webhooks: link-local addresses are always refused; others must be on the allow-list.
        for url in ["http://169.254.169.254/latest/meta-data", "http://10.1.2.3/hook", "ftp://127.0.0.1/x"] {
            let response = try await server.client.send(
                .POST, "/endpoint-configs", headers: [("Content-Type", "application/json")],
                body: ByteBuffer(
                    string: #"{"name": "hooked", "variants": [{"model": "digest"}], "asyncInference": {"outputPath": "s3://results/x", "successWebhook": "\#(url)"}}"#))
            #expect(response.status == 400, "\(url): \(response.text)")
        }
        let allowed = try await server.client.send(
            .POST, "/endpoint-configs", headers: [("Content-Type", "application/json")],
            body: ByteBuffer(
                string: #"{"name": "hooked", "variants": [{"model": "digest"}], "asyncInference": {"outputPath": "s3://results/x", "successWebhook": "http://127.0.0.1:9/hook", "webhookSecret": "s3cret"}}"#))
        #expect(allowed.status == 201, "\(allowed.text)")
        #expect(!allowed.text.contains("s3cret"))

        // Output and failure paths that could never hold an object are refused when the config is made.
        for (section, field) in [
            (#""outputPath": "s3://results/../x""#, "asyncInference.outputPath"),
            (#""outputPath": "s3://results/a/..""#, "asyncInference.outputPath"),
            (#""outputPath": "s3://Results/x""#, "asyncInference.outputPath"),
            (#""outputPath": "s3://results/ok", "failurePath": "s3://failures//x""#, "asyncInference.failurePath"),
        ] {
            let response = try await server.client.send(
                .POST, "/endpoint-configs", headers: [("Content-Type", "application/json")],
                body: ByteBuffer(string: #"{"name": "paths", "variants": [{"model": "digest"}], "asyncInference": {\#(section)}}"#))
            #expect(response.status == 400, "\(section): \(response.text)")
            #expect(try jsonObject(response)["code"] as? String == "ValidationError")
            #expect((try jsonObject(response)["message"] as? String)?.hasPrefix(field) == true, "\(response.text)")
        }
        #expect(try await server.client.send(.GET, "/endpoint-configs/paths").status == 404)
    }

    @Test("a queued invocation can be cancelled; a running one cannot; a model error fails with the reason")
    func cancelAndFail() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer()
        try await server.deployAsync(try digestPackage(in: folder.path), name: "digest", maxConcurrency: 1)
        let running = try await server.client.submitAsync("digest", body: ByteBuffer(string: "sleep:1500"))
        try await eventually("the first invocation runs") {
            try await server.client.asyncInvocation("digest", id: running.inferenceId).status == "InProgress"
        }
        let queued = try await server.client.submitAsync("digest", body: ByteBuffer(string: "queued"))
        let cancelled = try await server.client.cancelAsync("digest", id: queued.inferenceId)
        #expect(cancelled.status == "Failed")
        #expect(cancelled.failureReason?.contains("Cancelled") == true)
        let refused = try await server.client.send(.DELETE, "/endpoints/digest/async-invocations/\(running.inferenceId)")
        #expect(refused.status == 409)
        #expect(try await server.client.waitForAsyncInvocation("digest", id: running.inferenceId).status == "Completed")
        #expect(try await server.client.asyncInvocation("digest", id: queued.inferenceId).status == "Failed")
        #expect(server.storedObject(queued.outputLocation) == nil)
        #expect(String(decoding: try #require(server.storedObject(queued.failureLocation)), as: UTF8.self).contains("Cancelled"))

        let failing = try await server.client.submitAsync("digest", body: ByteBuffer(string: "fail please"))
        let failed = try await server.client.waitForAsyncInvocation("digest", id: failing.inferenceId)
        #expect(failed.status == "Failed")
        #expect(failed.failureReason?.contains("the input asked to fail") == true)
        #expect(String(decoding: try #require(server.storedObject(failing.failureLocation)), as: UTF8.self).contains("the input asked to fail"))
        let noResult = try await server.client.send(.GET, "/endpoints/digest/async-invocations/\(failing.inferenceId)/result")
        #expect(noResult.status == 409)
        let unknown = try await server.client.send(.GET, "/endpoints/digest/async-invocations/nope")
        #expect(unknown.status == 404)
    }

    @Test("webhooks are delivered, retried while the receiver answers 500, and signed")
    func webhooks() async throws {
        let folder = try TemporaryFolder()
        let receiver = try WebhookReceiver(failFirst: 2, folder: folder.path)
        defer { receiver.stop() }
        let server = try await ServalServer(arguments: ["--webhook-retry-base-ms", "50"])
        try await server.deployAsync(
            try digestPackage(in: folder.path), name: "digest", successWebhook: receiver.url + "/ok",
            errorWebhook: receiver.url + "/error", webhookSecret: "s3cret")
        let good = try await server.client.submitAsync("digest", body: ByteBuffer(string: "good"), inferenceId: "good-1")
        let bad = try await server.client.submitAsync("digest", body: ByteBuffer(string: "fail now"), inferenceId: "bad-1")
        try await eventually(timeout: .seconds(60), "both notifications are delivered") {
            Set(try receiver.delivered().map(\.inferenceId)) == ["good-1", "bad-1"]
        }
        let all = try receiver.received()
        #expect(all.count >= 4, "the first two deliveries were answered 500 and retried")
        for delivery in try receiver.delivered() {
            #expect(delivery.signatureValid, "X-Serval-Signature must be the HMAC-SHA256 of the body")
            let body = delivery.body
            if delivery.inferenceId == "good-1" {
                #expect(delivery.path == "/ok")
                #expect(body["invocationStatus"] as? String == "Completed")
                let response = body["responseParameters"] as? [String: Any]
                #expect(response?["outputLocation"] as? String == good.outputLocation)
                let request = body["requestParameters"] as? [String: Any]
                #expect(request?["endpointName"] as? String == "digest")
            } else {
                #expect(delivery.path == "/error")
                #expect(body["invocationStatus"] as? String == "Failed")
                #expect((body["failureReason"] as? String)?.contains("the input asked to fail") == true)
                let response = body["responseParameters"] as? [String: Any]
                #expect(response?["failureLocation"] as? String == bad.failureLocation)
            }
        }
    }

    @Test("a webhook answered with 302 or 307 is not followed: the attempt fails naming the Location and is retried")
    func webhookRedirectsNotFollowed() async throws {
        let folder = try TemporaryFolder()
        // The redirect target listens on 127.0.0.2, which the allow-list (127.0.0.1 only) does not admit.
        let target = try WebhookReceiver(folder: folder.path, name: "target", host: "127.0.0.2")
        defer { target.stop() }
        let found = try WebhookReceiver(folder: folder.path, name: "found", redirect: (302, target.url + "/via-302"))
        defer { found.stop() }
        let temporary = try WebhookReceiver(folder: folder.path, name: "temporary", redirect: (307, target.url + "/via-307"))
        defer { temporary.stop() }
        let server = try await ServalServer(arguments: ["--webhook-allow", "127.0.0.1", "--webhook-retry-base-ms", "50"])
        try await server.deployAsync(
            try digestPackage(in: folder.path), name: "digest", successWebhook: found.url + "/ok",
            errorWebhook: temporary.url + "/error")
        _ = try await server.client.submitAsync("digest", body: ByteBuffer(string: "good"), inferenceId: "good-1")
        _ = try await server.client.submitAsync("digest", body: ByteBuffer(string: "fail now"), inferenceId: "bad-1")
        try await eventually(timeout: .seconds(60), "both redirecting receivers are tried again after the redirect") {
            try found.received().count >= 2 && temporary.received().count >= 2
        }
        for (status, location) in [(302, target.url + "/via-302"), (307, target.url + "/via-307")] {
            let line = server.log.split(separator: "\n").first { $0.contains("Webhook delivery failed") && $0.contains(location) }
            #expect(line?.contains("answered \(status)") == true, "the log names the redirect's status and Location")
        }
        #expect(try found.received().allSatisfy { $0.inferenceId == "good-1" && $0.path == "/ok" })
        #expect(try temporary.received().allSatisfy { $0.inferenceId == "bad-1" && $0.path == "/error" })
        #expect(try target.received().isEmpty, "the redirect target must never be contacted")
    }

    @Test("a listed name whose address the allow-list refuses gets no webhook, at config time and at delivery")
    func webhookNameResolvingToRefusedAddress() async throws {
        let folder = try TemporaryFolder()
        let receiver = try WebhookReceiver(folder: folder.path)
        defer { receiver.stop() }
        // localhost resolves to loopback: listing the name alone does not admit Serval's own host.
        let hook = "http://localhost:\(receiver.port)/ok"
        let strict = try await ServalServer(arguments: ["--webhook-allow", "localhost"])
        let refused = try await strict.client.send(
            .POST, "/endpoint-configs", headers: [("Content-Type", "application/json")],
            body: ByteBuffer(
                string: #"{"name": "hooked", "variants": [{"model": "digest"}], "asyncInference": {"outputPath": "s3://results/x", "successWebhook": "\#(hook)"}}"#))
        #expect(refused.status == 400, "\(refused.text)")
        #expect(refused.text.contains("127.0.0.1") && refused.text.contains("--webhook-allow"), "\(refused.text)")
        await strict.stop()

        // A config accepted while loopback was allowed; then Serval restarts with the name alone listed, so the
        // check before each delivery resolves the name again and refuses it.
        let data = try TemporaryFolder()
        let wide = try await ServalServer(
            dataDirectory: data.path,
            arguments: ["--webhook-allow", "localhost", "--webhook-allow", "127.0.0.0/8", "--webhook-allow", "::1", "--webhook-retry-base-ms", "50"])
        try await wide.deployAsync(try digestPackage(in: folder.path), name: "digest", successWebhook: hook)
        _ = try await wide.client.submitAsync("digest", body: ByteBuffer(string: "allowed"), inferenceId: "allowed-1")
        try await eventually(timeout: .seconds(60), "the notification reaches the receiver while loopback is allowed") {
            try receiver.delivered().map(\.inferenceId) == ["allowed-1"]
        }
        #expect(try receiver.delivered().map(\.host) == ["localhost:\(receiver.port)"], "Serval connects to the checked address but sends the URL's host")
        await wide.stop()
        let narrowed = try await ServalServer(
            dataDirectory: data.path, arguments: ["--webhook-allow", "localhost", "--webhook-retry-base-ms", "50"])
        let endpoint = try await narrowed.client.waitForEndpoint("digest", timeout: .seconds(600))
        #expect(endpoint.status == "InService")
        _ = try await narrowed.client.submitAsync("digest", body: ByteBuffer(string: "refused"), inferenceId: "refused-1")
        #expect(try await narrowed.client.waitForAsyncInvocation("digest", id: "refused-1", timeout: .seconds(60)).status == "Completed")
        try await eventually(timeout: .seconds(60), "two delivery attempts are refused") {
            narrowed.log.split(separator: "\n").filter { $0.contains("refused by the webhook allow-list") && $0.contains("127.0.0.1") }.count >= 2
        }
        #expect(try receiver.received().map(\.inferenceId) == ["allowed-1"], "nothing reaches the refused address")
    }

    @Test("kill -9 of Serval with hundreds queued and running: after a restart every id ends once, with its output")
    func servalCrash() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer(arguments: ["--lease-seconds", "2"])
        try await server.deployAsync(try digestPackage(in: folder.path), name: "digest", instances: 2, maxConcurrency: 4)
        let count = 300
        var ids: [String] = []
        for index in 0..<count {
            let submitted = try await server.client.submitAsync(
                "digest", body: ByteBuffer(string: "sleep:5;item-\(index)"), inferenceId: "item-\(index)")
            ids.append(submitted.inferenceId)
        }
        try await eventually(timeout: .seconds(60), "some invocations complete") {
            try await server.client.asyncInvocations("digest", status: "Completed", limit: 1000).invocations.count >= 20
        }
        await server.kill()
        try await server.restart()
        for (index, id) in ids.enumerated() {
            let done = try await server.client.waitForAsyncInvocation("digest", id: id, timeout: .seconds(180))
            #expect(done.status == "Completed", "\(id): \(done.status) \(done.failureReason ?? "")")
            let digest = try decodeDigest(server.storedObject(done.outputLocation))
            #expect(digest.echo == "sleep:5;item-\(index)")
        }
        #expect(server.storedKeys(bucket: "results") == ids.map { "digest/\($0).out" }.sorted())
        #expect(server.storedKeys(bucket: "failures").isEmpty)
    }

    @Test("kill -9 of a worker mid-run: interrupted invocations are retried and every id ends Completed")
    func workerCrash() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer(arguments: ["--lease-seconds", "2"])
        try await server.deployAsync(try digestPackage(in: folder.path), name: "digest", maxConcurrency: 2, maxAttempts: 5)
        let count = 60
        for index in 0..<count {
            _ = try await server.client.submitAsync("digest", body: ByteBuffer(string: "sleep:250;item-\(index)"), inferenceId: "item-\(index)")
        }
        var kills = 0
        let deadline = ContinuousClock.now + .seconds(60)
        while kills < 3 && ContinuousClock.now < deadline {
            let inProgress = try await server.client.asyncInvocations("digest", status: "InProgress").invocations
            if !inProgress.isEmpty, let worker = workerProcesses(of: server.process.processIdentifier).first {
                Glibc.kill(worker, SIGKILL)
                kills += 1
                try await eventually(timeout: .seconds(60), "the worker restarts") {
                    !workerProcesses(of: server.process.processIdentifier).contains(worker)
                        && workerProcesses(of: server.process.processIdentifier).count == 1
                }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(kills >= 1, "no worker was killed while an invocation was in progress")
        var retried = 0
        for index in 0..<count {
            let done = try await server.client.waitForAsyncInvocation("digest", id: "item-\(index)", timeout: .seconds(120))
            #expect(done.status == "Completed", "item-\(index): \(done.failureReason ?? "")")
            if done.attempts > 1 { retried += 1 }
            #expect(try decodeDigest(server.storedObject(done.outputLocation)).echo == "sleep:250;item-\(index)")
        }
        #expect(retried >= 1, "a killed worker's invocations run again")
        #expect(server.storedKeys(bucket: "results").count == count)
    }

    @Test("a 20 MB input goes to the worker as a file, uploaded with boto3, invoked with invoke_endpoint_async")
    func boto3LargeInput() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer()
        try await server.deployAsync(try digestPackage(in: folder.path), name: "digest")
        let output = try await python(
            """
            import hashlib, os, sys, time, json
            import boto3
            from botocore.config import Config
            s3port, port = sys.argv[1], sys.argv[2]
            session = dict(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
            s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3port}", config=Config(s3={"addressing_style": "path"}), **session)
            runtime = boto3.client("sagemaker-runtime", endpoint_url=f"http://127.0.0.1:{port}", **session)
            s3.create_bucket(Bucket="inputs")
            body = os.urandom(20 * 1024 * 1024)
            s3.put_object(Bucket="inputs", Key="big/input.bin", Body=body)
            response = runtime.invoke_endpoint_async(
                EndpointName="digest", InputLocation="s3://inputs/big/input.bin", ContentType="application/octet-stream",
                InferenceId="big-1")
            assert response["InferenceId"] == "big-1", response
            location = response["OutputLocation"]
            assert location == "s3://results/digest/big-1.out", response
            assert response["FailureLocation"] == "s3://failures/digest/big-1-error.out", response
            deadline = time.time() + 120
            while True:
                try:
                    result = s3.get_object(Bucket="results", Key="digest/big-1.out")["Body"].read()
                    break
                except (s3.exceptions.NoSuchKey, s3.exceptions.NoSuchBucket):
                    assert time.time() < deadline, "no output"
                    time.sleep(0.1)
            answer = json.loads(result)
            assert answer["n"] == len(body), answer
            assert answer["sha256"] == hashlib.sha256(body).hexdigest(), answer
            small = runtime.invoke_endpoint_async(EndpointName="digest", InputLocation="s3://inputs/big/input.bin", InferenceId="big-1")
            assert small["OutputLocation"] == location
            try:
                runtime.invoke_endpoint_async(EndpointName="nope", InputLocation="s3://inputs/big/input.bin")
                raise SystemExit("an unknown endpoint must fail")
            except runtime.exceptions.ValidationError as error:
                print("validation:", error.response["Error"]["Code"])
            print("ok")
            """, "\(server.s3Port)", "\(server.port)")
        #expect(output.contains("ok"), "\(output)")
        #expect(output.contains("validation: ValidationError"))
        let done = try await server.client.asyncInvocation("digest", id: "big-1")
        #expect(done.status == "Completed" && done.attempts == 1)
    }

    @Test("an input uploaded as text/csv and invoked with no content type is read as CSV; failure objects are text/plain")
    func inputObjectContentType() async throws {
        let folder = try TemporaryFolder()
        let model = try await Packages.logisticRegression(in: folder.path)
        let server = try await ServalServer()
        try await server.deployAsync(model.path, name: "lr")
        let csv = model.probe.map { $0.map { "\($0)" }.joined(separator: ",") }.joined(separator: "\n")
        let json = "{\"instances\": [[1.0, 2.0]]}"
        let output = try await python(
            """
            import json, sys, time
            import boto3
            from botocore.config import Config
            s3port, port, csv, bad_json = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
            session = dict(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
            s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3port}", config=Config(s3={"addressing_style": "path"}), **session)
            runtime = boto3.client("sagemaker-runtime", endpoint_url=f"http://127.0.0.1:{port}", **session)
            s3.create_bucket(Bucket="inputs")
            s3.put_object(Bucket="inputs", Key="probe.csv", Body=csv.encode(), ContentType="text/csv")
            s3.put_object(Bucket="inputs", Key="bad.csv", Body=b"a,b,c,d\\n", ContentType="text/csv")
            s3.put_object(Bucket="inputs", Key="untyped", Body=bad_json.encode())

            def wait(bucket, key):
                deadline = time.time() + 120
                while True:
                    try:
                        return s3.get_object(Bucket=bucket, Key=key)
                    except (s3.exceptions.NoSuchKey, s3.exceptions.NoSuchBucket):
                        assert time.time() < deadline, f"no s3://{bucket}/{key}"
                        time.sleep(0.1)

            runtime.invoke_endpoint_async(EndpointName="lr", InputLocation="s3://inputs/probe.csv", InferenceId="csv")
            print("predictions:", json.dumps(json.loads(wait("results", "lr/csv.out")["Body"].read())["predictions"]))
            runtime.invoke_endpoint_async(EndpointName="lr", InputLocation="s3://inputs/bad.csv", InferenceId="bad")
            failure = wait("failures", "lr/bad-error.out")
            print("failure type:", failure["ContentType"])
            print("failure text:", failure["Body"].read().decode().strip().replace("\\n", " "))
            runtime.invoke_endpoint_async(EndpointName="lr", InputLocation="s3://inputs/untyped", InferenceId="untyped")
            untyped = wait("failures", "lr/untyped-error.out")["Body"].read().decode()
            print("untyped:", untyped.strip().replace("\\n", " "))
            print("ok")
            """, "\(server.s3Port)", "\(server.port)", csv, json)
        #expect(output.contains("ok"), "\(output)")
        let predictions = try #require(output.split(separator: "\n").first { $0.hasPrefix("predictions: ") })
        #expect(try JSONDecoder().decode([Int].self, from: Data(predictions.dropFirst("predictions: ".count).utf8)) == model.expected)
        #expect(output.contains("failure type: text/plain"), "\(output)")
        #expect(output.contains("failure text:") && output.contains("text/csv") == true, "\(output)")
        // The object stored without a content type falls back to JSON: it decodes, and fails only on its width.
        #expect(output.contains("expected 4 features"), "\(output)")
        let csvInvocation = try await server.client.asyncInvocation("lr", id: "csv")
        #expect(csvInvocation.status == "Completed")
    }

    @Test("serval async submit --file uploads, waits, and result writes the output")
    func cli() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer()
        try await server.deployAsync(try digestPackage(in: folder.path), name: "digest")
        let input = folder.path + "/input.txt"
        try "from a file".write(toFile: input, atomically: true, encoding: .utf8)
        let environment = ["SERVAL_URL": server.url, "SERVAL_S3_URL": server.s3URL]
        let submitted = try await run(
            [servalBinary, "async", "submit", "digest", "--file", input, "--content-type", "text/plain", "--inference-id", "cli-1", "--wait"],
            environment: environment)
        #expect(submitted.status == 0, "\(submitted.output)")
        #expect(submitted.output.contains("\"status\" : \"Completed\""), "\(submitted.output)")
        let result = try await run([servalBinary, "async", "result", "digest", "cli-1"], environment: environment)
        #expect(result.status == 0)
        #expect(try decodeDigest(Data(result.output.utf8)).echo == "from a file")
        let status = try await run([servalBinary, "async", "status", "digest", "cli-1"], environment: environment)
        #expect(status.output.contains("s3://serval-inputs/digest/"))
        let missing = try await run([servalBinary, "async", "wait", "digest", "nope"], environment: environment)
        #expect(missing.status != 0)
    }
}

/// The worker processes Serval started (its children running serval_worker).
func workerProcesses(of server: Int32) -> [Int32] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    return entries.compactMap(Int32.init).filter { pid in
        // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so read after its last ')'.
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 1, Int32(fields[1]) == server else { return false }
        let command = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
        return command.contains("serval_worker")
    }
}

/// A local HTTP receiver for webhooks (a Python process) listening on `host`: answers 500 to the first
/// `failFirst` requests, then 200 (or, with `redirect`, always that status with that `Location`), and records
/// every request in `<folder>/<name>.jsonl`.
final class WebhookReceiver: @unchecked Sendable {
    struct Delivery {
        var path: String
        var status: Int
        var inferenceId: String
        var body: [String: Any]
        var signatureValid: Bool
        /// The `Host` header.
        var host: String
    }

    let url: String
    private let process: Process
    private let log: String

    init(
        failFirst: Int = 0, folder: String, name: String = "webhooks", host: String = "127.0.0.1",
        redirect: (status: Int, location: String)? = nil
    ) throws {
        log = folder + "/\(name).jsonl"
        process = Process()
        process.executableURL = URL(fileURLWithPath: testPython)
        process.arguments = [
            "-c",
            """
            import hashlib, hmac, json, sys, threading
            from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
            fail_first, log, host, redirect_status, location = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
            lock = threading.Lock()
            seen = [0]
            class Handler(BaseHTTPRequestHandler):
                def do_POST(self):
                    body = self.rfile.read(int(self.headers["Content-Length"]))
                    with lock:
                        seen[0] += 1
                        status = redirect_status or (500 if seen[0] <= fail_first else 200)
                        expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
                        with open(log, "a") as f:
                            f.write(json.dumps({"path": self.path, "status": status, "id": self.headers["X-Serval-Inference-Id"],
                                                "valid": self.headers.get("X-Serval-Signature") == expected, "host": self.headers.get("Host"),
                                                "body": json.loads(body)}) + "\\n")
                    self.send_response(status)
                    if redirect_status:
                        self.send_header("Location", location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                def log_message(self, *args):
                    pass
            server = ThreadingHTTPServer((host, 0), Handler)
            print(server.server_address[1], flush=True)
            server.serve_forever()
            """,
            "\(failFirst)", log, host, "\(redirect?.status ?? 0)", redirect?.location ?? "",
        ]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let line = String(decoding: pipe.fileHandleForReading.availableData, as: UTF8.self)
        url = "http://\(host):\(line.trimmingCharacters(in: .whitespacesAndNewlines))"
    }

    /// The port it listens on.
    var port: Int { Int(url.split(separator: ":").last!)! }

    func received() throws -> [Delivery] {
        guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return Delivery(
                path: object["path"] as? String ?? "", status: object["status"] as? Int ?? 0,
                inferenceId: object["id"] as? String ?? "", body: object["body"] as? [String: Any] ?? [:],
                signatureValid: object["valid"] as? Bool ?? false, host: object["host"] as? String ?? "")
        }
    }

    func delivered() throws -> [Delivery] {
        try received().filter { $0.status == 200 }
    }

    func stop() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
