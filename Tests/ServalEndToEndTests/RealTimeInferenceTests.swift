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

/// End to end against the real `serval serve`, real Python workers and real scikit-learn models.
@Suite(.serialized)
struct RealTimeInferenceTests {
    @Test func deployAndInvokeWithJSONAndCSV() async throws {
        let folder = try TemporaryFolder()
        let model = try await Packages.logisticRegression(in: folder.path)
        let server = try await ServalServer()
        let endpoint = try await server.deploy(model.path, name: "churn")
        #expect(endpoint.status == "InService", "\(endpoint.failureReason ?? "")")

        // JSON instances: the same predictions as the model in-process.
        let rows = model.probe.map { "[" + $0.map { String($0) }.joined(separator: ",") + "]" }
        let response = try await server.invoke("churn", json: "{\"instances\": [\(rows.joined(separator: ","))]}")
        #expect(response.status == 200)
        #expect(try jsonObject(response)["predictions"] as? [Int] == model.expected)
        #expect(response.header("x-Amzn-Invoked-Production-Variant") == "AllTraffic")
        #expect(response.header("x-amzn-RequestId")?.isEmpty == false)
        #expect(response.header("Content-Type") == "application/json")

        // A bare list of rows, and a single row.
        let bare = try await server.invoke("churn", json: "[\(rows[0]), \(rows[1])]")
        #expect(try jsonObject(bare)["predictions"] as? [Int] == Array(model.expected.prefix(2)))

        // CSV in, CSV out: one line per row.
        let csv = model.probe.map { $0.map { String($0) }.joined(separator: ",") }.joined(separator: "\n")
        let csvResponse = try await server.client.invoke(
            "churn", body: ByteBuffer(string: csv + "\n"), contentType: "text/csv", accept: "text/csv")
        #expect(csvResponse.status == 200)
        #expect(csvResponse.header("Content-Type") == "text/csv")
        #expect(csvResponse.text.split(separator: "\n").map { Int($0) } == model.expected.map { Optional($0) })

        // Describe shows the live variant.
        let described = try await server.client.endpoint("churn")
        #expect(described.variants.first?.readyInstances == 1)
        await server.stop()
    }

    @Test func badInputGetsClearErrors() async throws {
        let folder = try TemporaryFolder()
        let model = try await Packages.logisticRegression(in: folder.path)
        let server = try await ServalServer()
        try await server.deploy(model.path, name: "m")

        let unknown = try await server.invoke("nope", json: "[[1,2,3,4]]")
        #expect(unknown.status == 404)
        #expect(unknown.header("x-amzn-ErrorType") == "ValidationError")
        #expect(ServalClient.error(from: unknown).message.contains("nope"))

        // What the model's handler cannot decode is the model's error (SageMaker's 424), not Serval's 400.
        let malformed = try await server.invoke("m", json: "{\"instances\": [[1,2,")
        #expect(malformed.status == 424)
        #expect(ServalClient.error(from: malformed).code == .modelError)

        let width = try await server.invoke("m", json: "[[1,2]]")
        #expect(width.status == 424)
        #expect(ServalClient.error(from: width).message.contains("expected 4 features"))

        let contentType = try await server.client.invoke("m", body: ByteBuffer(string: "x"), contentType: "image/png")
        #expect(contentType.status == 424)
        #expect(ServalClient.error(from: contentType).message.contains("unsupported content type"))

        let empty = try await server.client.invoke("m", body: ByteBuffer())
        #expect(empty.status == 400)
        #expect(ServalClient.error(from: empty).code == .validationError)
        #expect(ServalClient.error(from: empty).message.contains("empty"))

        let big = ByteBuffer(repeating: UInt8(ascii: " "), count: InvocationLimits.maxPayloadBytes + 1)
        let tooLarge = try await server.client.invoke("m", body: big)
        #expect(tooLarge.status == 413)
        #expect(ServalClient.error(from: tooLarge).code == .payloadTooLarge)

        let badConfig = try await server.client.send(
            .POST, "/endpoint-configs", headers: [("Content-Type", "application/json")],
            body: ByteBuffer(string: "{\"name\": \"c\", \"variants\": [{\"model\": \"m\", \"maxBatchSize\": 5000}]}"))
        #expect(badConfig.status == 400)
        #expect(ServalClient.error(from: badConfig).message.contains("variants[0].maxBatchSize"))

        let missingModel = try await server.client.send(
            .POST, "/endpoint-configs", headers: [("Content-Type", "application/json")],
            body: ByteBuffer(string: "{\"name\": \"c\", \"variants\": [{\"model\": \"ghost\"}]}"))
        #expect(missingModel.status == 404)

        let duplicate = try await server.client.send(
            .POST, "/endpoints", headers: [("Content-Type", "application/json")],
            body: ByteBuffer(string: "{\"name\": \"m\", \"config\": \"m\"}"))
        #expect(duplicate.status == 409)

        // A model in use may be deleted, as on SageMaker; the endpoint serves on from its own copy.
        let inUse = try await server.client.send(.DELETE, "/models/m")
        #expect(inUse.status == 204)

        // Every error above left the service up.
        let fine = try await server.invoke("m", json: "[[1,2,3,4]]")
        #expect(fine.status == 200)
        await server.stop()
    }

    @Test("boto3: input the model cannot use is client.exceptions.ModelError (424) with the model's message; an empty body is ValidationError")
    func boto3ModelErrors() async throws {
        let folder = try TemporaryFolder()
        let model = try await Packages.logisticRegression(in: folder.path)
        let server = try await ServalServer()
        try await server.deploy(model.path, name: "m")
        let output = try await python(
            """
            import sys, boto3
            runtime = boto3.client("sagemaker-runtime", endpoint_url="http://127.0.0.1:" + sys.argv[1],
                                   region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
            def model_error(body):
                try:
                    runtime.invoke_endpoint(EndpointName="m", Body=body, ContentType="text/csv")
                except runtime.exceptions.ModelError as error:
                    meta = error.response["ResponseMetadata"]
                    assert meta["HTTPStatusCode"] == 424, meta
                    assert error.response["OriginalStatusCode"] == 400, error.response
                    assert error.response["OriginalMessage"] == error.response["Error"]["Message"], error.response
                    return error.response["OriginalMessage"]
                raise AssertionError("no ModelError for %r" % body)
            width = model_error(b"1,2")
            assert "expected 4 features per row, got 2" in width, width
            text = model_error(b"1,2,abc,4")
            assert "'abc' is not a number" in text, text
            try:
                runtime.invoke_endpoint(EndpointName="m", Body=b"", ContentType="text/csv")
                raise AssertionError("an empty body was accepted")
            except runtime.exceptions.ModelError:
                raise AssertionError("an empty body reached the model")
            except runtime.exceptions.ClientError as error:
                assert error.response["Error"]["Code"] == "ValidationError", error.response
                assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400, error.response
                assert "empty" in error.response["Error"]["Message"], error.response
            print(runtime.invoke_endpoint(EndpointName="m", Body=b"1,2,3,4", ContentType="text/csv")["Body"].read())
            print("ok")
            """, "\(server.port)")
        #expect(output.contains("ok"), "\(output)")
        await server.stop()
    }

    @Test func concurrentRequestsAreBatchedAndABadItemFailsAlone() async throws {
        let folder = try TemporaryFolder()
        // Each prediction reports the size of the batch it ran in.
        let package = try Packages.custom(
            in: folder.path, name: "batchsize",
            source: """
                import json
                def model_fn(model_dir):
                    return None
                def input_fn(body, content_type):
                    data = json.loads(body)
                    if data.get("bad"):
                        raise ValueError("this item is bad")
                    return data["x"]
                def predict_batch_fn(inputs, model):
                    return [{"x": x, "batch": len(inputs)} for x in inputs]
                def output_fn(prediction, accept):
                    return json.dumps(prediction), "application/json"
                """)
        let server = try await ServalServer()
        let endpoint = try await server.deploy(package, name: "b", maxBatchSize: 8, maxDelayMs: 50)
        #expect(endpoint.status == "InService", "\(endpoint.failureReason ?? "")")

        let results = try await withThrowingTaskGroup(of: (Int, ServalClient.RawResponse).self) { group in
            for index in 0..<16 {
                group.addTask {
                    let body = index == 5 ? "{\"bad\": true}" : "{\"x\": \(index)}"
                    return (index, try await server.invoke("b", json: body))
                }
            }
            var results: [Int: ServalClient.RawResponse] = [:]
            for try await (index, response) in group { results[index] = response }
            return results
        }
        var batchSizes: [Int] = []
        for (index, response) in results {
            if index == 5 {
                #expect(response.status == 424)
                #expect(ServalClient.error(from: response).message.contains("ValueError: this item is bad"))
            } else {
                #expect(response.status == 200)
                let object = try jsonObject(response)
                #expect(object["x"] as? Int == index)
                batchSizes.append(object["batch"] as! Int)
            }
        }
        #expect(batchSizes.max()! > 1, "concurrent requests were not batched: \(batchSizes)")
        #expect(batchSizes.max()! <= 8)
        await server.stop()
    }

    @Test func modelExceptionsAre424AndTimeoutsRestartTheWorker() async throws {
        let folder = try TemporaryFolder()
        let package = try Packages.custom(
            in: folder.path, name: "moody",
            source: """
                import json, time
                def model_fn(model_dir):
                    return None
                def input_fn(body, content_type):
                    return json.loads(body)
                def predict_fn(data, model):
                    if data.get("raise"):
                        raise RuntimeError("the model is unhappy")
                    if data.get("sleep"):
                        time.sleep(data["sleep"])
                    return {"ok": True}
                def output_fn(prediction, accept):
                    return json.dumps(prediction)
                """)
        let server = try await ServalServer()
        try await server.deploy(package, name: "moody", invocationTimeoutSeconds: 1)

        let failed = try await server.invoke("moody", json: "{\"raise\": true}")
        #expect(failed.status == 424)
        #expect(failed.header("x-amzn-ErrorType") == "ModelError")
        #expect(ServalClient.error(from: failed).message.contains("RuntimeError: the model is unhappy"))
        let body = try jsonObject(failed)
        #expect(body["OriginalStatusCode"] as? Int == 500)
        #expect((body["OriginalMessage"] as? String)?.contains("RuntimeError: the model is unhappy") == true)

        let start = ContinuousClock.now
        let hung = try await server.invoke("moody", json: "{\"sleep\": 30}")
        #expect(hung.status == 504)
        #expect(ContinuousClock.now - start < .seconds(10))

        // The worker was replaced; the endpoint serves again.
        try await eventually("the restarted worker answers") {
            try await server.invoke("moody", json: "{}").status == 200
        }
        await server.stop()
    }

    @Test func killedWorkerFailsItsRequestAtOnceAndIsRestarted() async throws {
        let folder = try TemporaryFolder()
        let pidFile = try folder.writableByWorkers() + "/pid"
        let package = try Packages.custom(
            in: folder.path, name: "victim",
            source: """
                import json, os, time
                def model_fn(model_dir):
                    return None
                def transform_fn(model, body, content_type, accept):
                    data = json.loads(body)
                    if data.get("hang"):
                        with open(\(String(reflecting: pidFile)), "w") as f:
                            f.write(str(os.getpid()))
                        time.sleep(60)
                    return json.dumps({"pid": os.getpid()}), "application/json"
                """)
        let server = try await ServalServer()
        try await server.deploy(package, name: "victim")
        let firstPid = try jsonObject(try await server.invoke("victim", json: "{}"))["pid"] as! Int

        async let hung = server.invoke("victim", json: "{\"hang\": true}")
        try await eventually("the worker is inside the request") { FileManager.default.fileExists(atPath: pidFile) }
        #expect(Int(try String(contentsOfFile: pidFile, encoding: .utf8)) == firstPid)
        Glibc.kill(pid_t(firstPid), SIGKILL)
        let failed = try await hung
        #expect(failed.status == 503)
        #expect(ServalClient.error(from: failed).message.contains("signal 9"))

        var secondPid = 0
        try await eventually("a new worker serves") {
            let response = try await server.invoke("victim", json: "{}")
            if response.status == 200 { secondPid = try jsonObject(response)["pid"] as! Int }
            return response.status == 200
        }
        #expect(secondPid != firstPid)
        await server.stop()
    }

    @Test func workerKilledWhileLoadingIsRestartedAndTheEndpointComesUp() async throws {
        let folder = try TemporaryFolder()
        let marker = try folder.writableByWorkers() + "/first-load"
        let package = try Packages.custom(
            in: folder.path, name: "slowload",
            source: """
                import os, time
                def model_fn(model_dir):
                    if not os.path.exists(\(String(reflecting: marker))):
                        with open(\(String(reflecting: marker)), "w") as f:
                            f.write(str(os.getpid()))
                        time.sleep(120)
                    return "loaded"
                def transform_fn(model, body, content_type, accept):
                    return model
                """)
        let server = try await ServalServer()
        _ = try await server.client.createModel(name: "slow", package: package)
        _ = try await server.client.createEndpointConfig(.init(name: "slow", variants: [.init(model: "slow")]))
        _ = try await server.client.createEndpoint(name: "slow", config: "slow")
        try await eventually("the first worker is loading") {
            (try? String(contentsOfFile: marker, encoding: .utf8))?.isEmpty == false
        }
        let notReady = try await server.invoke("slow", json: "{}")
        #expect(notReady.status == 429)
        #expect(notReady.header("x-amzn-ErrorType") == "ModelNotReadyException")
        Glibc.kill(pid_t(Int(try String(contentsOfFile: marker, encoding: .utf8))!), SIGKILL)
        let endpoint = try await server.client.waitForEndpoint("slow", timeout: .seconds(60))
        #expect(endpoint.status == "InService", "\(endpoint.failureReason ?? "")")
        #expect(try await server.invoke("slow", json: "{}").text == "loaded")
        await server.stop()
    }

    @Test func loadFailureMakesTheEndpointFailedWithTheTraceback() async throws {
        let folder = try TemporaryFolder()
        let package = try Packages.custom(
            in: folder.path, name: "broken",
            source: """
                def model_fn(model_dir):
                    raise ValueError("the weights file is corrupt")
                """)
        let server = try await ServalServer()
        // Through the CLI, as a user would: it exits non-zero and prints the reason.
        let deploy = try await run([servalBinary, "deploy", package, "--name", "broken", "--server", server.url])
        #expect(deploy.status != 0)
        #expect(deploy.output.contains("ValueError: the weights file is corrupt"), "\(deploy.output)")
        let endpoint = try await server.client.endpoint("broken")
        #expect(endpoint.status == "Failed")
        #expect(endpoint.failureReason?.contains("Traceback") == true)
        let invoke = try await server.invoke("broken", json: "{}")
        #expect(invoke.status == 503)
        await server.stop()
    }

    @Test func queueFullIsRefusedWith503AndRetryAfter() async throws {
        let folder = try TemporaryFolder()
        let package = try Packages.custom(
            in: folder.path, name: "slow",
            source: """
                import time
                def model_fn(model_dir):
                    return None
                def transform_fn(model, body, content_type, accept):
                    time.sleep(1.5)
                    return b"done"
                """)
        let server = try await ServalServer()
        try await server.deploy(package, name: "slow", maxQueueSize: 1)
        let statuses = try await withThrowingTaskGroup(of: ServalClient.RawResponse.self) { group in
            for _ in 0..<4 { group.addTask { try await server.invoke("slow", json: "{}") } }
            var all: [ServalClient.RawResponse] = []
            for try await response in group { all.append(response) }
            return all
        }
        let refused = statuses.filter { $0.status == 503 }
        #expect(statuses.filter { $0.status == 200 }.count >= 2)
        #expect(!refused.isEmpty)
        #expect(refused.allSatisfy { $0.header("Retry-After") == "1" })
        await server.stop()
    }

    @Test func endpointsComeBackAfterARestartOfServal() async throws {
        let folder = try TemporaryFolder()
        let model = try await Packages.logisticRegression(in: folder.path)
        let server = try await ServalServer()
        try await server.deploy(model.path, name: "durable", instances: 2)
        await server.kill()  // kill -9: no graceful shutdown
        try await server.restart()
        // Two workers load the model again; under a full suite on two cores that took more than 30 s.
        try await eventually(timeout: .seconds(120), "the endpoint serves after the restart") {
            try await server.invoke("durable", json: "[[1,2,3,4]]").status == 200
        }
        #expect(try await server.client.endpoint("durable").status == "InService")
        await server.stop()
        try await server.restart()  // and after a graceful stop too
        try await eventually(timeout: .seconds(120), "the endpoint serves after the second restart") {
            try await server.invoke("durable", json: "[[1,2,3,4]]").status == 200
        }
        await server.stop()
    }

    @Test func deletingAnEndpointStopsItsWorkers() async throws {
        let folder = try TemporaryFolder()
        let package = try Packages.custom(
            in: folder.path, name: "pid",
            source: """
                import os
                def model_fn(model_dir):
                    return None
                def transform_fn(model, body, content_type, accept):
                    return str(os.getpid())
                """)
        let server = try await ServalServer()
        try await server.deploy(package, name: "gone")
        let pid = pid_t(Int(try await server.invoke("gone", json: "{}").text)!)
        #expect(Glibc.kill(pid, 0) == 0)
        let deleting = try await server.client.deleteEndpoint("gone")
        #expect(deleting.status == "Deleting")
        try await server.client.waitForEndpointDeleted("gone")
        try await eventually("the worker exits") { Glibc.kill(pid, 0) != 0 }
        #expect(try await server.invoke("gone", json: "{}").status == 404)
        // The config and the model can go now.
        try await server.client.deleteEndpointConfig("gone")
        try await server.client.deleteModel("gone")
        #expect(try await server.client.models().isEmpty)
        await server.stop()
    }

    @Test func sigtermDrainsRequestsInFlightThenStopsTheWorkers() async throws {
        let folder = try TemporaryFolder()
        let started = try folder.writableByWorkers() + "/started"
        let package = try Packages.custom(
            in: folder.path, name: "drain",
            source: """
                import os, time
                def model_fn(model_dir):
                    return None
                def transform_fn(model, body, content_type, accept):
                    if body == "slow":
                        with open(\(String(reflecting: started)), "w") as f:
                            f.write(str(os.getpid()))
                        time.sleep(1.5)
                    return "finished"
                """)
        let server = try await ServalServer()
        try await server.deploy(package, name: "drain")
        async let slow = server.client.invoke("drain", body: ByteBuffer(string: "slow"), contentType: "text/plain")
        try await eventually("the request is running") { FileManager.default.fileExists(atPath: started) }
        let workerPid = pid_t(Int(try String(contentsOfFile: started, encoding: .utf8))!)
        await server.stop()  // SIGTERM, then wait for Serval to exit
        let answer = try await slow
        #expect(answer.status == 200)
        #expect(answer.text == "finished")
        #expect(Glibc.kill(workerPid, 0) != 0, "the worker outlived Serval")
    }

    @Test func aCrashLoopMakesTheEndpointFailedWithTheWorkersOutput() async throws {
        let folder = try TemporaryFolder()
        let package = try Packages.custom(
            in: folder.path, name: "crashy",
            source: """
                import os, sys
                def model_fn(model_dir):
                    print("native library exploded", file=sys.stderr, flush=True)
                    os._exit(3)
                """)
        let server = try await ServalServer()
        let endpoint = try await server.deploy(package, name: "crashy")
        #expect(endpoint.status == "Failed")
        let reason = try #require(endpoint.failureReason)
        #expect(reason.contains("crashed 5 times in a row"), "\(reason)")
        #expect(reason.contains("exited with status 3"), "\(reason)")
        #expect(reason.contains("native library exploded"), "\(reason)")
        await server.stop()
    }

    @Test func aWorkerWhoseChildOutlivesItIsStillRestarted() async throws {
        let folder = try TemporaryFolder()
        let package = try Packages.custom(
            in: folder.path, name: "forks",
            source: """
                import os, subprocess
                def model_fn(model_dir):
                    # A helper process that inherits the worker's output and would outlive it.
                    subprocess.Popen(["sleep", "600"])
                    return None
                def transform_fn(model, body, content_type, accept):
                    if body == "die":
                        os._exit(7)
                    return str(os.getpid())
                """)
        let server = try await ServalServer()
        try await server.deploy(package, name: "forks")
        let first = try await server.client.invoke("forks", body: ByteBuffer(string: "pid"), contentType: "text/plain").text
        let died = try await server.client.invoke("forks", body: ByteBuffer(string: "die"), contentType: "text/plain")
        #expect(died.status == 503)
        var second = ""
        try await eventually(timeout: .seconds(20), "a new worker serves although the old one's child kept its output open") {
            let response = try await server.client.invoke("forks", body: ByteBuffer(string: "pid"), contentType: "text/plain")
            second = response.text
            return response.status == 200
        }
        #expect(second != first)
        await server.stop()
    }
}

