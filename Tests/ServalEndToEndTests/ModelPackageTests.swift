import Foundation
import NIOCore
import NIOHTTP1
import ServalAPI
import ServalClient
import ServalCore
import Testing

/// Model packages as users hand them over: archives, frameworks, requirements, and hostile archives.
@Suite(.serialized)
struct ModelPackageTests {
    @Test func pathTraversalArchiveIsRejectedAndWritesNothingOutside() async throws {
        let folder = try TemporaryFolder()
        let archive = folder.path + "/evil.tar.gz"
        try await python(
            """
            import io, sys, tarfile
            with tarfile.open(sys.argv[1], "w:gz") as tar:
                for name, data in [("model.joblib", b"x"), ("../evil.txt", b"pwned")]:
                    info = tarfile.TarInfo(name); info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            """, archive)
        let server = try await ServalServer()
        let data = try Data(contentsOf: URL(fileURLWithPath: archive))
        let response = try await server.client.send(
            .POST, "/models?name=evil", headers: [("Content-Type", "application/gzip")], body: ByteBuffer(bytes: data))
        #expect(response.status == 400)
        #expect(ServalClient.error(from: response).message.contains("\"..\""))
        let parent = (server.dataDirectory as NSString).deletingLastPathComponent
        #expect(!FileManager.default.fileExists(atPath: parent + "/evil.txt"))
        #expect(!FileManager.default.fileExists(atPath: server.dataDirectory + "/evil.txt"))
        let staging = (try? FileManager.default.contentsOfDirectory(atPath: server.dataDirectory + "/staging")) ?? []
        #expect(staging.isEmpty, "staging leftovers: \(staging)")
        #expect(try await server.client.models().isEmpty)

        // A link out of the package is refused too.
        try await python(
            """
            import sys, tarfile
            with tarfile.open(sys.argv[1], "w") as tar:
                info = tarfile.TarInfo("model.joblib"); info.type = tarfile.SYMTYPE; info.linkname = "/etc/passwd"
                tar.addfile(info)
            """, folder.path + "/link.tar")
        let link = try await server.client.send(
            .POST, "/models?name=link", headers: [("Content-Type", "application/x-tar")],
            body: ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: folder.path + "/link.tar"))))
        #expect(link.status == 400)
        #expect(ServalClient.error(from: link).message.contains("outside the package"))
        await server.stop()
    }

    @Test func sageMakerStyleTarGzWithRequirementsDeploys() async throws {
        let folder = try TemporaryFolder()
        let model = try await Packages.logisticRegression(in: folder.path)
        // code/inference.py that needs a package from code/requirements.txt (not in the base runtime).
        try FileManager.default.createDirectory(atPath: model.path + "/code", withIntermediateDirectories: true)
        try """
            import json, os, joblib, six
            def model_fn(model_dir):
                return joblib.load(os.path.join(model_dir, "model.joblib"))
            def predict_fn(data, model):
                return {"labels": model.predict(data).tolist(), "six": six.__version__}
            def output_fn(prediction, accept):
                return json.dumps(prediction), "application/json"
            """.write(toFile: model.path + "/code/inference.py", atomically: true, encoding: .utf8)
        try "six==1.16.0\n".write(toFile: model.path + "/code/requirements.txt", atomically: true, encoding: .utf8)
        let archive = folder.path + "/model.tar.gz"
        try await run(["tar", "-czf", archive, "-C", model.path, "."])

        let server = try await ServalServer()
        let endpoint = try await server.deploy(archive, name: "sm")
        #expect(endpoint.status == "InService", "\(endpoint.failureReason ?? "")")
        let described = try await server.client.model("sm")
        #expect(described.hasInferenceCode && described.hasRequirements && described.artifact == "sklearn")
        let response = try await server.invoke("sm", json: "{\"instances\": [\(model.probe[0])]}")
        let object = try jsonObject(response)
        #expect(object["labels"] as? [Int] == [model.expected[0]])
        #expect(object["six"] as? String == "1.16.0")
        await server.stop()
    }

    @Test func failingRequirementsGiveTheTailOfPipsOutput() async throws {
        let folder = try TemporaryFolder()
        let package = try Packages.custom(
            in: folder.path, name: "pipfail", source: "def model_fn(model_dir):\n    return None\n",
            requirements: "serval-no-such-package-0e7c1f==9.9.9\n")
        let server = try await ServalServer()
        let endpoint = try await server.deploy(package, name: "pipfail")
        #expect(endpoint.status == "Failed")
        #expect(endpoint.failureReason?.contains("pip install") == true)
        #expect(endpoint.failureReason?.contains("serval-no-such-package-0e7c1f") == true, "\(endpoint.failureReason ?? "")")
        await server.stop()
    }

    @Test func xgboostAndONNXDefaultHandlers() async throws {
        let folder = try TemporaryFolder()
        let output = try await python(
            """
            import json, os, sys
            import numpy as np, xgboost as xgb, onnx
            from onnx import helper, TensorProto
            root = sys.argv[1]
            rng = np.random.default_rng(3)
            X = rng.normal(size=(200, 5)); y = (X[:, 0] + X[:, 1] > 0).astype(int)
            os.makedirs(root + "/xgb"); os.makedirs(root + "/onnx")
            booster = xgb.train({"objective": "binary:logistic", "max_depth": 3}, xgb.DMatrix(X, label=y), 10)
            booster.save_model(root + "/xgb/model.json")
            probe = X[:4].round(4)
            W = rng.normal(size=(5, 2)).astype(np.float32); b = np.array([0.5, -0.5], dtype=np.float32)
            graph = helper.make_graph(
                [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])], "lin",
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 5])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
                [helper.make_tensor("W", TensorProto.FLOAT, [5, 2], W.flatten()), helper.make_tensor("b", TensorProto.FLOAT, [2], b)])
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
            model.ir_version = 8
            onnx.save(model, root + "/onnx/model.onnx")
            print(json.dumps({"probe": probe.tolist(),
                              "xgb": booster.predict(xgb.DMatrix(probe)).tolist(),
                              "onnx": (probe.astype(np.float32) @ W + b).tolist()}))
            """, folder.path)
        let expected = try JSONSerialization.jsonObject(with: Data(output.utf8)) as! [String: Any]
        let probe = expected["probe"] as! [[Double]]
        let body = "{\"instances\": \(probe)}"

        let server = try await ServalServer()
        for kind in ["xgb", "onnx"] {
            let endpoint = try await server.deploy(folder.path + "/" + kind, name: kind)
            #expect(endpoint.status == "InService", "\(kind): \(endpoint.failureReason ?? "")")
            let response = try await server.invoke(kind, json: body)
            #expect(response.status == 200, "\(kind): \(response.text)")
            let predictions = try jsonObject(response)["predictions"] as! [Any]
            let want = expected[kind] as! [Any]
            #expect(predictions.count == want.count)
            let flat = { (values: [Any]) in values.flatMap { ($0 as? [Double]) ?? [$0 as! Double] } }
            for (got, wanted) in zip(flat(predictions), flat(want)) {
                #expect(abs(got - wanted) < 1e-4, "\(kind): \(got) vs \(wanted)")
            }
        }
        #expect(try await server.client.model("xgb").artifact == "xgboost")
        #expect(try await server.client.model("onnx").artifact == "onnx")
        await server.stop()
    }

    @Test func missingPythonGivesAClearFailureReason() async throws {
        let folder = try TemporaryFolder()
        let model = try await Packages.logisticRegression(in: folder.path)
        let server = try await ServalServer(python: "/nonexistent/python3", pythonCache: folder.path + "/python")
        let endpoint = try await server.deploy(model.path, name: "m")
        #expect(endpoint.status == "Failed")
        #expect(endpoint.failureReason?.contains("/nonexistent/python3 was not found") == true, "\(endpoint.failureReason ?? "")")
        await server.stop()
    }

    @Test func cliListsAndDescribesAndTheOpenAPIDocumentIsServed() async throws {
        let folder = try TemporaryFolder()
        let model = try await Packages.logisticRegression(in: folder.path)
        let server = try await ServalServer()
        let create = try await run([servalBinary, "models", "create", "lr", model.path], environment: ["SERVAL_URL": server.url])
        #expect(create.status == 0, "\(create.output)")
        let list = try await run([servalBinary, "models", "list", "--server", server.url])
        #expect(list.output.contains("\"name\" : \"lr\""), "\(list.output)")
        let missing = try await run([servalBinary, "endpoints", "describe", "nope", "--server", server.url])
        #expect(missing.status != 0)
        #expect(missing.output.contains("Endpoint \"nope\" does not exist"))
        let deploy = try await run([servalBinary, "deploy", model.path, "--name", "cli", "--max-batch-size", "4", "--server", server.url])
        #expect(deploy.status == 0, "\(deploy.output)")
        let csvRow = model.probe[0].map { String($0) }.joined(separator: ",")
        let invoke = try await run(
            [servalBinary, "invoke", "cli", "--body", "-", "--content-type", "text/csv", "--accept", "text/csv", "--server", server.url],
            input: csvRow + "\n")
        #expect(invoke.status == 0, "\(invoke.output)")
        #expect(invoke.output == "\(model.expected[0])\n")

        let document = try await server.client.send(.GET, "/openapi.json")
        #expect(document.status == 200)
        let paths = try #require(try jsonObject(document)["paths"] as? [String: Any])
        for path in [
            "/ping", "/models", "/models/{name}", "/endpoint-configs", "/endpoints", "/endpoints/{name}/invocations", "/v2",
            "/endpoints/{name}/async-invocations", "/endpoints/{name}/async-invocations/{id}",
            "/endpoints/{name}/async-invocations/{id}/result",
            "/v2/models/{model}/infer", "/v2/models/{model}/versions/{version}/infer", "/v2/repository/index",
            "/transform-jobs", "/transform-jobs/{name}", "/transform-jobs/{name}/stop", "/endpoints/{name}/logs",
            "/transform-jobs/{name}/logs",
        ] {
            #expect(paths[path] != nil, "openapi.json lacks \(path)")
        }
        // And it is a valid OpenAPI document.
        try Data(document.body.readableBytesView).write(to: URL(fileURLWithPath: folder.path + "/openapi.json"))
        try await python(
            "import json, sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1])))",
            folder.path + "/openapi.json")
        await server.stop()
    }

    @Test func aBareInterpreterGetsABaseRuntimeBuiltAndCached() async throws {
        let folder = try TemporaryFolder()
        let model = try await Packages.logisticRegression(in: folder.path)
        // An interpreter without numpy or scikit-learn: Serval must build its base runtime from PyPI.
        try await run([testPython, "-m", "venv", folder.path + "/bare"])
        let data = try TemporaryFolder()
        let server = try await ServalServer(
            dataDirectory: data.path, python: folder.path + "/bare/bin/python", pythonCache: data.path + "/python")
        let endpoint = try await server.deploy(model.path, name: "bare")
        #expect(endpoint.status == "InService", "\(endpoint.failureReason ?? "")")
        #expect(server.log.contains("Preparing the base Python runtime"))
        let rows = model.probe.map { "[" + $0.map { String($0) }.joined(separator: ",") + "]" }
        let response = try await server.invoke("bare", json: "[\(rows.joined(separator: ","))]")
        #expect(try jsonObject(response)["predictions"] as? [Int] == model.expected)
        // After a restart the cached runtime is reused, not rebuilt.
        await server.stop()
        try await server.restart()
        try await eventually("the endpoint serves after the restart") {
            try await server.invoke("bare", json: "[\(rows[0])]").status == 200
        }
        #expect(!server.log.contains("Preparing the base Python runtime"))
        await server.stop()
    }
}

