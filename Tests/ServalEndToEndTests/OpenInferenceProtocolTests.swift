import Foundation
import NIOCore
import NIOHTTP1
import ServalAPI
import ServalClient
import ServalCore
import Testing

/// Runs a Python client script against `server` with the test interpreter (which has `tritonclient[http,grpc]`).
/// The script gets `HTTP` (host:port), `GRPC` (host:port) and `MODEL_DIR` (its first argument) as globals and
/// asserts what it checks; a failing assertion fails the test with the script's output.
@discardableResult
func oipClient(_ server: ServalServer, modelDirectory: String = "", _ script: String) async throws -> String {
    let prelude = """
        import sys, json
        import numpy as np
        HTTP = "127.0.0.1:\(server.port)"
        GRPC = "127.0.0.1:\(server.grpcPort)"
        MODEL_DIR = sys.argv[1]

        """
    return try await python(prelude + script, modelDirectory)
}

/// A package whose `code/inference.py` has a batched tensor hook and whose `model-settings.json` declares a
/// BYTES and an INT64 input: `length` is each text's length plus `n`, `echo` the text upper-cased.
func textPackage(in folder: String) throws -> String {
    let path = try Packages.custom(
        in: folder, name: "text",
        source: """
            import numpy as np

            def model_fn(model_dir):
                return "text-model"

            def infer_fn(inputs, model):
                text = inputs["text"]
                lengths = np.array([len(t) for t in text.reshape(-1)], dtype=np.int64).reshape(text.shape)
                echo = np.array([t.upper() for t in text.reshape(-1)], dtype=object).reshape(text.shape)
                return {"length": lengths + inputs["n"], "echo": echo}
            """)
    try """
        {"name": "text",
         "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]},
                    {"name": "n", "datatype": "INT64", "shape": [-1]}],
         "outputs": [{"name": "length", "datatype": "INT64", "shape": [-1]},
                     {"name": "echo", "datatype": "BYTES", "shape": [-1]}]}
        """.write(toFile: path + "/model-settings.json", atomically: true, encoding: .utf8)
    return path
}

@Suite("Open Inference Protocol, end to end with tritonclient", .serialized)
struct OpenInferenceProtocolTests {
    @Test("tritonclient.http: health, metadata, JSON and binary tensors, FP32/FP64/INT64 inputs, output selection")
    func httpClient() async throws {
        let folder = try TemporaryFolder()
        let package = try await Packages.logisticRegression(in: folder.path, features: 4)
        let server = try await ServalServer()
        #expect(try await server.deploy(package.path, name: "lr", maxBatchSize: 8, maxDelayMs: 2).status == "InService")
        try await oipClient(
            server, modelDirectory: package.path,
            """
            import joblib
            import tritonclient.http as httpclient
            model = joblib.load(MODEL_DIR + "/model.joblib")
            client = httpclient.InferenceServerClient(HTTP)
            assert client.is_server_live() and client.is_server_ready()
            assert client.is_model_ready("lr") and client.is_model_ready("lr", "AllTraffic")
            meta = client.get_server_metadata()
            assert meta["name"] == "serval" and "binary_tensor_data" in meta["extensions"], meta
            meta = client.get_model_metadata("lr")
            assert meta["versions"] == ["AllTraffic"] and meta["platform"] == "sklearn", meta
            assert meta["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}], meta
            outputs = {o["name"]: o for o in meta["outputs"]}
            assert outputs["predict"]["datatype"] == "INT64" and outputs["predict"]["shape"] == [-1], meta
            assert outputs["predict_proba"]["shape"] == [-1, 2], meta

            X = np.random.default_rng(3).normal(size=(5, 4))
            for dtype, name in ((np.float32, "FP32"), (np.float64, "FP64"), (np.int64, "INT64")):
                x = X.astype(dtype) if dtype != np.int64 else (X * 3).astype(np.int64)
                for binary_in in (False, True):
                    for binary_out in (False, True):
                        inp = httpclient.InferInput("input-0", list(x.shape), name)
                        inp.set_data_from_numpy(x, binary_data=binary_in)
                        outs = [httpclient.InferRequestedOutput("predict", binary_data=binary_out),
                                httpclient.InferRequestedOutput("predict_proba", binary_data=binary_out)]
                        result = client.infer("lr", [inp], outputs=outs, request_id="r-7")
                        assert result.get_response()["id"] == "r-7"
                        assert result.get_response()["model_version"] == "AllTraffic"
                        expected = model.predict(x.astype(np.float32))
                        assert (result.as_numpy("predict") == expected).all(), (name, result.as_numpy("predict"), expected)
                        proba = result.as_numpy("predict_proba")
                        assert proba.shape == (5, 2)
                        assert np.allclose(proba, model.predict_proba(x.astype(np.float32)), atol=1e-6)

            # Only the outputs asked for come back; none asked for means all of them.
            inp = httpclient.InferInput("input-0", [2, 4], "FP32")
            inp.set_data_from_numpy(X[:2].astype(np.float32))
            result = client.infer("lr", [inp], outputs=[httpclient.InferRequestedOutput("predict_proba")])
            assert [o["name"] for o in result.get_response()["outputs"]] == ["predict_proba"]
            result = client.infer("lr", [inp], model_version="AllTraffic")
            assert sorted(o["name"] for o in result.get_response()["outputs"]) == ["predict", "predict_proba"]

            # Plain JSON with nested data, as curl would send it.
            import urllib.request
            body = json.dumps({"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32",
                                           "data": X[:2].tolist()}], "outputs": [{"name": "predict"}]}).encode()
            request = urllib.request.Request("http://" + HTTP + "/v2/models/lr/infer", data=body,
                                             headers={"Content-Type": "application/json"})
            answer = json.load(urllib.request.urlopen(request))
            assert answer["model_name"] == "lr" and answer["outputs"][0]["data"] == model.predict(X[:2].astype(np.float32)).tolist(), answer
            stats = client.get_inference_statistics("lr")["model_stats"][0]
            assert stats["inference_stats"]["success"]["count"] >= 14 and stats["execution_count"] >= 1, stats
            print("ok")
            """)
        await server.stop()
    }

    @Test("tritonclient.grpc: metadata and raw tensors; concurrent requests of different sizes batch together")
    func grpcClientBatches() async throws {
        let folder = try TemporaryFolder()
        let package = try await Packages.logisticRegression(in: folder.path, features: 4)
        let server = try await ServalServer()
        #expect(try await server.deploy(package.path, name: "lr", maxBatchSize: 32, maxDelayMs: 20).status == "InService")
        try await oipClient(
            server, modelDirectory: package.path,
            """
            import joblib, threading
            import tritonclient.grpc as grpcclient
            model = joblib.load(MODEL_DIR + "/model.joblib")
            client = grpcclient.InferenceServerClient(GRPC)
            assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("lr")
            assert client.get_server_metadata().name == "serval"
            meta = client.get_model_metadata("lr")
            assert meta.inputs[0].name == "input-0" and list(meta.inputs[0].shape) == [-1, 4], meta
            assert [o.name for o in meta.outputs] == ["predict", "predict_proba"], meta

            rng = np.random.default_rng(5)
            batches = [rng.normal(size=(1 + i % 3, 4)).astype(np.float32) for i in range(48)]
            results, errors = [None] * len(batches), []
            def callback(index):
                def done(result, error):
                    if error is not None:
                        errors.append(error)
                    else:
                        results[index] = result
                return done
            before = client.get_inference_statistics("lr").model_stats[0].execution_count
            for index, x in enumerate(batches):
                inp = grpcclient.InferInput("input-0", list(x.shape), "FP32")
                inp.set_data_from_numpy(x)
                client.async_infer("lr", [inp], callback(index), outputs=[grpcclient.InferRequestedOutput("predict")])
            import time
            deadline = time.time() + 60
            while (any(r is None for r in results) and not errors) and time.time() < deadline:
                time.sleep(0.01)
            assert not errors, errors
            for x, result in zip(batches, results):
                assert (result.as_numpy("predict") == model.predict(x)).all()
            stats = client.get_inference_statistics("lr").model_stats[0]
            runs = stats.execution_count - before
            assert runs < len(batches), ("requests were not batched", runs)
            print("batches", runs, "for", len(batches), "requests")
            """)
        await server.stop()
    }

    @Test("BYTES and INT64 inputs through a custom infer_fn, declared in model-settings.json, over HTTP and gRPC")
    func bytesAndMultipleInputs() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer()
        #expect(try await server.deploy(try textPackage(in: folder.path), name: "text", maxBatchSize: 4, maxDelayMs: 2).status == "InService")
        try await oipClient(
            server,
            """
            import tritonclient.http as httpclient
            import tritonclient.grpc as grpcclient
            text = np.array([b"serval", b"cat", "\\u00e9t\\u00e9".encode()], dtype=object)
            n = np.array([1, 2, 3], dtype=np.int64)
            for module, address in ((httpclient, HTTP), (grpcclient, GRPC)):
                client = module.InferenceServerClient(address)
                for binary in ((False, True) if module is httpclient else (True,)):
                    a = module.InferInput("text", [3], "BYTES")
                    b = module.InferInput("n", [3], "INT64")
                    if module is httpclient:
                        a.set_data_from_numpy(text, binary_data=binary)
                        b.set_data_from_numpy(n, binary_data=binary)
                    else:
                        a.set_data_from_numpy(text)
                        b.set_data_from_numpy(n)
                    result = client.infer("text", [a, b])
                    assert result.as_numpy("length").tolist() == [7, 5, 8], result.as_numpy("length")
                    assert [bytes(e) for e in result.as_numpy("echo")] == [b"SERVAL", b"CAT", "\\u00e9t\\u00e9".encode().upper()], result.as_numpy("echo")
            meta = httpclient.InferenceServerClient(HTTP).get_model_metadata("text")
            assert meta["platform"] == "python" and [i["name"] for i in meta["inputs"]] == ["text", "n"], meta
            print("ok")
            """)
        await server.stop()
    }

    @Test("gRPC typed contents (a raw stub, not tritonclient), and ModelStreamInfer with an in-band error")
    func grpcTypedContentsAndStreaming() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer()
        #expect(try await server.deploy(try textPackage(in: folder.path), name: "text").status == "InService")
        try await oipClient(
            server,
            """
            import grpc, queue
            from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as rpc
            import tritonclient.grpc as grpcclient
            stub = rpc.GRPCInferenceServiceStub(grpc.insecure_channel(GRPC))

            def request(raw=False, fp16=False):
                r = pb.ModelInferRequest(model_name="text", id="typed")
                text = r.inputs.add(name="text", datatype="BYTES", shape=[2])
                n = r.inputs.add(name="n", datatype="FP16" if fp16 else "INT64", shape=[2])
                text.contents.bytes_contents.extend([b"ab", b"xyz"])
                n.contents.int64_contents.extend([10, 20])
                if raw:
                    r.raw_input_contents.extend([b"", b""])
                return r

            answer = stub.ModelInfer(request())
            assert answer.id == "typed" and [o.name for o in answer.outputs] == ["length", "echo"], answer
            assert np.frombuffer(answer.raw_output_contents[0], dtype="<i8").tolist() == [12, 23]
            for bad, words in ((request(raw=True), "raw_input_contents"), (request(fp16=True), "raw_input_contents")):
                try:
                    stub.ModelInfer(bad)
                    raise AssertionError("accepted: " + words)
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and words in error.details(), error

            # Streaming: answers in order, and an error arrives in-band without ending the stream.
            client = grpcclient.InferenceServerClient(GRPC)
            results = queue.Queue()
            client.start_stream(callback=lambda result, error: results.put((result, error)))
            for model in ("text", "nope", "text"):
                a = grpcclient.InferInput("text", [1], "BYTES")
                a.set_data_from_numpy(np.array([b"abc"], dtype=object))
                b = grpcclient.InferInput("n", [1], "INT64")
                b.set_data_from_numpy(np.array([1], dtype=np.int64))
                client.async_stream_infer(model, [a, b])
            answers = [results.get(timeout=30) for _ in range(3)]
            client.stop_stream()
            assert answers[0][1] is None and answers[0][0].as_numpy("length").tolist() == [4]
            assert answers[1][0] is None and "does not exist" in str(answers[1][1]), answers[1]
            assert answers[2][1] is None
            print("ok")
            """)
        await server.stop()
    }

    @Test("bad requests fail before queueing with 400 / INVALID_ARGUMENT; unknown models 404 / NOT_FOUND")
    func errors() async throws {
        let folder = try TemporaryFolder()
        let package = try await Packages.logisticRegression(in: folder.path, features: 4)
        let server = try await ServalServer()
        #expect(try await server.deploy(package.path, name: "lr").status == "InService")
        try await oipClient(
            server,
            """
            import urllib.request, urllib.error
            import grpc
            import tritonclient.grpc as grpcclient
            from tritonclient.utils import InferenceServerException

            def post(path, body, headers={"Content-Type": "application/json"}):
                request = urllib.request.Request("http://" + HTTP + path, data=body, headers=headers)
                try:
                    response = urllib.request.urlopen(request)
                    return response.status, json.load(response)
                except urllib.error.HTTPError as error:
                    return error.code, json.load(error)

            def tensor(**fields):
                base = {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
                base.update(fields)
                return json.dumps({"inputs": [base]}).encode()

            cases = [
                ("/v2/models/nope/infer", tensor(), 404, "does not exist"),
                ("/v2/models/lr/versions/v9/infer", tensor(), 404, "no version"),
                ("/v2/models/lr/infer", tensor(shape=[1, 3], data=[1, 2, 3]), 400, "shape"),
                ("/v2/models/lr/infer", tensor(shape=[1, 4], data=[1, 2, 3]), 400, "4"),
                ("/v2/models/lr/infer", tensor(name="x"), 400, "no input"),
                ("/v2/models/lr/infer", tensor(datatype="BYTES", data=["a", "b", "c", "d"]), 400, "BYTES"),
                ("/v2/models/lr/infer", tensor(datatype="UINT8", data=[1, 2, 3, 300]), 400, "300"),
                ("/v2/models/lr/infer", tensor(shape=[4611686018427387904, 4]), 400, "overflow"),
                ("/v2/models/lr/infer", b'{"inputs": [', 400, ""),
                ("/v2/models/lr/infer", json.dumps({"inputs": [json.loads(tensor())["inputs"][0]], "outputs": [{"name": "nope"}]}).encode(), 400, "no output"),
            ]
            for path, body, status, words in cases:
                code, answer = post(path, body)
                assert code == status and set(answer) == {"error"} and words in answer["error"], (path, body[:80], code, answer)

            # Binary extension: a header length beyond the body, and tensor sizes that do not add up.
            header = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32",
                                             "parameters": {"binary_data_size": 16}}]}).encode()
            raw = np.arange(4, dtype=np.float32).tobytes()
            for length, payload in ((len(header) + 100, header + raw), (len(header), header + raw[:8]), (len(header), header + raw + b"xx")):
                code, answer = post("/v2/models/lr/infer", payload, {"Inference-Header-Content-Length": str(length),
                                                                     "Content-Type": "application/octet-stream"})
                assert code == 400 and "error" in answer, (length, code, answer)
            code, answer = post("/v2/models/lr/infer", header + raw, {"Inference-Header-Content-Length": str(len(header)),
                                                                     "Content-Type": "application/octet-stream"})
            assert code == 200, answer

            client = grpcclient.InferenceServerClient(GRPC)
            def grpc_error(model, x, datatype="FP32", name="input-0"):
                inp = grpcclient.InferInput(name, list(x.shape), datatype)
                inp.set_data_from_numpy(x)
                try:
                    client.infer(model, [inp])
                except InferenceServerException as error:
                    return error.status(), error.message()
                raise AssertionError("no error")
            x = np.ones((2, 4), dtype=np.float32)
            assert grpc_error("nope", x)[0] == "StatusCode.NOT_FOUND"
            assert grpc_error("lr", np.ones((2, 3), dtype=np.float32))[0] == "StatusCode.INVALID_ARGUMENT"
            assert grpc_error("lr", x, name="x")[0] == "StatusCode.INVALID_ARGUMENT"
            print("ok")
            """)
        // Every rejected request was refused before it reached a batch: the model ran only the good one.
        let stats = try await server.client.send(.GET, "/v2/models/lr/stats")
        let document = try JSONSerialization.jsonObject(with: Data(stats.body.readableBytesView)) as! [String: Any]
        let model = (document["model_stats"] as! [[String: Any]])[0]
        #expect(model["execution_count"] as? Int == 1)
        await server.stop()
    }

    @Test("health and readiness answer JSON, get_model_config reads Triton's config; every /v2 error, unknown routes too, is {\"error\"}")
    func healthConfigAndRouterErrors() async throws {
        let folder = try TemporaryFolder()
        let package = try await Packages.logisticRegression(in: folder.path, features: 4)
        let server = try await ServalServer()
        #expect(try await server.deploy(package.path, name: "lr", maxBatchSize: 8, maxDelayMs: 2).status == "InService")
        try await oipClient(
            server,
            """
            import urllib.request, urllib.error
            import tritonclient.http as httpclient

            def call(method, path, body=None):
                request = urllib.request.Request("http://" + HTTP + path, data=body, method=method)
                try:
                    response = urllib.request.urlopen(request)
                except urllib.error.HTTPError as error:
                    response = error
                assert response.headers["Content-Type"] == "application/json", (path, dict(response.headers))
                return response.status, json.load(response)

            client = httpclient.InferenceServerClient(HTTP)
            assert client.is_server_live() and client.is_server_ready()
            assert client.is_model_ready("lr") and client.is_model_ready("lr", "AllTraffic")
            assert not client.is_model_ready("nope")
            assert call("GET", "/v2/health/live") == (200, {"live": True})
            assert call("GET", "/v2/health/ready") == (200, {"ready": True})
            assert call("GET", "/v2/models/lr/ready") == (200, {"name": "lr", "ready": True})
            assert call("GET", "/v2/models/lr/versions/AllTraffic/ready") == (200, {"name": "lr", "ready": True})

            for method, path, status, words in (
                ("GET", "/v2/models/nope/ready", 404, "nope"),
                ("GET", "/v2/no/such/route", 404, "/v2/no/such/route"),
                ("DELETE", "/v2/health/live", 404, "DELETE"),
                ("GET", "/v2/models/lr/infer", 404, "GET"),
            ):
                code, answer = call(method, path)
                assert code == status and set(answer) == {"error"} and words in answer["error"], (method, path, code, answer)

            for version in ("", "AllTraffic"):
                config = client.get_model_config("lr", version)
                assert config["name"] == "lr" and config["platform"] == "sklearn" and config["max_batch_size"] == 8, config
                assert config["input"] == [{"name": "input-0", "data_type": "TYPE_FP32", "dims": [4]}], config
                outputs = {o["name"]: o for o in config["output"]}
                assert outputs["predict"]["data_type"] == "TYPE_INT64" and outputs["predict"]["dims"] == [1], config
                assert outputs["predict_proba"] == {"name": "predict_proba", "data_type": "TYPE_FP64", "dims": [2]}, config
            code, answer = call("GET", "/v2/models/nope/config")
            assert code == 404 and "nope" in answer["error"], answer
            print("ok")
            """)
        await server.stop()
    }

    @Test("tritonclient's request and response compression (gzip, deflate) give the model's own predictions; a gzip bomb is 413")
    func compression() async throws {
        let folder = try TemporaryFolder()
        let package = try await Packages.logisticRegression(in: folder.path, features: 4)
        let server = try await ServalServer()
        #expect(try await server.deploy(package.path, name: "lr", maxBatchSize: 8, maxDelayMs: 2).status == "InService")
        try await oipClient(
            server, modelDirectory: package.path,
            """
            import gzip, zlib, joblib, urllib.request, urllib.error
            import tritonclient.http as httpclient
            model = joblib.load(MODEL_DIR + "/model.joblib")
            client = httpclient.InferenceServerClient(HTTP)
            X = np.random.default_rng(11).normal(size=(300, 4)).astype(np.float32)
            inp = httpclient.InferInput("input-0", list(X.shape), "FP32")
            inp.set_data_from_numpy(X, binary_data=False)
            outputs = [httpclient.InferRequestedOutput(name, binary_data=False) for name in ("predict", "predict_proba")]
            for request, response in ((None, None), ("gzip", None), ("deflate", None), (None, "gzip"), (None, "deflate"), ("gzip", "gzip")):
                result = client.infer("lr", [inp], outputs=outputs, request_compression_algorithm=request,
                                      response_compression_algorithm=response)
                assert (result.as_numpy("predict") == model.predict(X)).all(), (request, response)
                assert np.allclose(result.as_numpy("predict_proba"), model.predict_proba(X)), (request, response)

            # The response really is compressed above 1 KiB, and is not below it.
            body = json.dumps({"inputs": [{"name": "input-0", "shape": list(X.shape), "datatype": "FP32", "data": X.ravel().tolist()}]}).encode()
            def post(body, headers):
                request = urllib.request.Request("http://" + HTTP + "/v2/models/lr/infer", data=body, headers=headers)
                try:
                    return urllib.request.urlopen(request)
                except urllib.error.HTTPError as error:
                    return error
            for coding, decompress in (("gzip", gzip.decompress), ("deflate", zlib.decompress)):
                answer = post(gzip.compress(body), {"Content-Encoding": "gzip", "Accept-Encoding": coding})
                assert answer.status == 200 and answer.headers["Content-Encoding"] == coding, (answer.status, dict(answer.headers))
                document = json.loads(decompress(answer.read()))
                predict = {o["name"]: o["data"] for o in document["outputs"]}["predict"]
                assert predict == model.predict(X).tolist(), coding
            small = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}], "outputs": [{"name": "predict"}]}).encode()
            answer = post(small, {"Accept-Encoding": "gzip"})
            assert answer.status == 200 and answer.headers["Content-Encoding"] is None, dict(answer.headers)
            assert json.load(answer)["outputs"][0]["data"] == model.predict(np.array([[1, 2, 3, 4]], dtype=np.float32)).tolist()

            # A bomb: 80 MiB of spaces in about 80 KB, over the 64 MiB limit once decompressed.
            bomb = gzip.compress(b" " * (80 << 20))
            answer = post(bomb, {"Content-Encoding": "gzip"})
            assert answer.status == 413, answer.status
            message = json.load(answer)["error"]
            assert "decompresses to more than" in message, message
            # Not gzip, and an unknown coding.
            answer = post(b"not gzip at all", {"Content-Encoding": "gzip"})
            assert answer.status == 400 and "not valid gzip" in json.load(answer)["error"]
            answer = post(body, {"Content-Encoding": "br"})
            assert answer.status == 400 and "Content-Encoding" in json.load(answer)["error"]
            print("ok")
            """)
        await server.stop()
    }

    @Test("gRPC: a message just over the limit is RESOURCE_EXHAUSTED naming the limit, one just under is served")
    func grpcMessageLimit() async throws {
        let folder = try TemporaryFolder()
        let package = try await Packages.logisticRegression(in: folder.path, features: 4)
        let server = try await ServalServer()
        #expect(try await server.deploy(package.path, name: "lr").status == "InService")
        try await oipClient(
            server,
            """
            import grpc
            import tritonclient.grpc as grpcclient
            from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as rpc
            from tritonclient.utils import InferenceServerException
            LIMIT = \(InvocationLimits.maxTensorRequestBytes)
            channel = grpc.insecure_channel(GRPC, options=[("grpc.max_receive_message_length", -1)])
            stub = rpc.GRPCInferenceServiceStub(channel)

            def request(rows):
                tensor = pb.ModelInferRequest.InferInputTensor(name="input-0", datatype="FP32", shape=[rows, 4])
                output = pb.ModelInferRequest.InferRequestedOutputTensor(name="predict")
                return pb.ModelInferRequest(model_name="lr", inputs=[tensor], outputs=[output],
                                            raw_input_contents=[bytes(16 * rows)])
            # Each row is 16 raw bytes; the rest of the message is a few dozen bytes of names, shape and lengths.
            overhead = request(1).ByteSize() - 16
            over, under = (LIMIT - overhead) // 16 + 1, (LIMIT - overhead) // 16
            assert request(over).ByteSize() > LIMIT >= request(under).ByteSize(), (request(over).ByteSize(), LIMIT)

            def refused(call):
                try:
                    call()
                except (grpc.RpcError, InferenceServerException) as error:
                    return error
                raise AssertionError("an oversized message was accepted")
            for attempt in range(2):
                error = refused(lambda: stub.ModelInfer(request(over)))
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (error.code(), error.details())
                assert str(LIMIT) in error.details() and "limit" in error.details(), error.details()
                # The server keeps serving, on the same connection.
                assert list(stub.ModelInfer(request(2)).outputs[0].shape) == [2]

            # In a ModelStreamInfer stream that has already answered, the oversized message ends the stream the same way.
            import queue
            requests = queue.Queue()
            responses = stub.ModelStreamInfer(iter(requests.get, None))
            requests.put(request(2))
            assert not next(responses).error_message
            requests.put(request(over))
            error = refused(lambda: next(responses))
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and str(LIMIT) in error.details(), error
            requests.put(None)

            # tritonclient's own client reports the same status.
            client = grpcclient.InferenceServerClient(GRPC)
            big = grpcclient.InferInput("input-0", [over, 4], "FP32")
            big.set_data_from_numpy(np.zeros((over, 4), dtype=np.float32))
            error = refused(lambda: client.infer("lr", [big]))
            assert error.status() == "StatusCode.RESOURCE_EXHAUSTED" and str(LIMIT) in error.message(), error

            answer = stub.ModelInfer(request(under))
            assert [(o.name, list(o.shape)) for o in answer.outputs] == [("predict", [under])], answer.outputs
            print("ok")
            """)
        await server.stop()
    }

    @Test("model repository: a stored model loads as an endpoint, unloads, and loads again over gRPC")
    func repositoryLoadUnload() async throws {
        let folder = try TemporaryFolder()
        let package = try await Packages.logisticRegression(in: folder.path, features: 4)
        let server = try await ServalServer()
        _ = try await server.client.createModel(name: "lr", package: package.path)
        try await oipClient(
            server,
            """
            import tritonclient.http as httpclient
            import tritonclient.grpc as grpcclient
            from tritonclient.utils import InferenceServerException
            client = httpclient.InferenceServerClient(HTTP, network_timeout=600)
            index = client.get_model_repository_index()
            assert index == [{"name": "lr", "state": "UNAVAILABLE", "reason": "unloaded"}], index
            assert not client.is_model_ready("lr")
            client.load_model("lr")
            assert client.is_model_ready("lr")
            assert client.get_model_repository_index() == [{"name": "lr", "state": "READY", "reason": ""}]
            import urllib.request
            def index(body):
                request = urllib.request.Request("http://" + HTTP + "/v2/repository/index", data=json.dumps(body).encode())
                return [entry["name"] for entry in json.load(urllib.request.urlopen(request))]
            assert index({"ready": True}) == ["lr"] and index({"ready": False}) == ["lr"]
            inp = httpclient.InferInput("input-0", [1, 4], "FP32")
            inp.set_data_from_numpy(np.ones((1, 4), dtype=np.float32))
            assert client.infer("lr", [inp]).as_numpy("predict").shape == (1,)
            assert [s["name"] for s in client.get_inference_statistics()["model_stats"]] == ["lr"]
            client.unload_model("lr")
            assert not client.is_model_ready("lr")
            assert index({"ready": True}) == [] and index({}) == ["lr"]
            assert client.get_inference_statistics()["model_stats"] == []
            try:
                client.load_model("missing")
                raise AssertionError("loading an unknown model succeeded")
            except InferenceServerException as error:
                assert "missing" in error.message(), error.message()
            g = grpcclient.InferenceServerClient(GRPC)
            g.load_model("lr")
            assert g.is_model_ready("lr")
            assert [m.state for m in g.get_model_repository_index().models] == ["READY"]
            assert [s.name for s in g.get_inference_statistics().model_stats] == ["lr"]
            g.unload_model("lr")
            assert not g.is_model_ready("lr")
            print("ok")
            """)
        await server.stop()
    }

    @Test("a model still loading: the ready probe says no (400 / false) and inference is 503 / UNAVAILABLE")
    func loadingModel() async throws {
        let folder = try TemporaryFolder()
        let marker = folder.path + "/release"
        let package = try Packages.custom(
            in: folder.path, name: "slow",
            source: """
                import os, time

                def model_fn(model_dir):
                    while not os.path.exists(\(String(reflecting: marker))):
                        time.sleep(0.02)
                    return "slow"
                """)
        let server = try await ServalServer()
        _ = try await server.client.createModel(name: "slow", package: package)
        _ = try await server.client.createEndpointConfig(.init(name: "slow", variants: [.init(model: "slow")]))
        _ = try await server.client.createEndpoint(name: "slow", config: "slow")
        try await oipClient(
            server,
            """
            import urllib.request, urllib.error
            import tritonclient.grpc as grpcclient
            from tritonclient.utils import InferenceServerException
            try:
                urllib.request.urlopen("http://" + HTTP + "/v2/models/slow/ready")
                raise AssertionError("ready while loading")
            except urllib.error.HTTPError as error:
                assert error.code == 400, error.code
            body = json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}).encode()
            try:
                urllib.request.urlopen(urllib.request.Request("http://" + HTTP + "/v2/models/slow/infer", data=body))
                raise AssertionError("inferred while loading")
            except urllib.error.HTTPError as error:
                assert error.code == 503 and "loading" in json.load(error)["error"], error.code
            client = grpcclient.InferenceServerClient(GRPC)
            assert not client.is_model_ready("slow")
            inp = grpcclient.InferInput("x", [1], "FP32")
            inp.set_data_from_numpy(np.ones(1, dtype=np.float32))
            try:
                client.infer("slow", [inp])
                raise AssertionError("inferred while loading")
            except InferenceServerException as error:
                assert error.status() == "StatusCode.UNAVAILABLE", error.status()
            print("ok")
            """)
        #expect(FileManager.default.createFile(atPath: marker, contents: Data()))
        try await eventually(timeout: .seconds(60), "the model loads") {
            try await server.client.endpoint("slow").status == "InService"
        }
        await server.stop()
    }
}
