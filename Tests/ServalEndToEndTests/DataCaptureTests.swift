import Foundation
import ServalAPI
import ServalClient
import Testing

/// SageMaker's `DataCaptureConfig` on a real `serval serve`: sampled invocations land in the object store as JSON
/// Lines in SageMaker's record shape, equal to what was sent and answered; a `kill -9` loses at most the records
/// that arrived since the last flush and leaves no partial file.
@Suite("Data capture", .serialized)
struct DataCaptureTests {
    /// A model that answers each body reversed, with the request's content type; and helpers to read captures.
    static let prelude = SageMakerControlPlaneTests.prelude + #"""
        import base64, os, random, re

        def echo_package():
            source = (b"def model_fn(model_dir):\n    return None\n"
                      b"def transform_fn(model, body, content_type, accept):\n"
                      b"    data = body if isinstance(body, bytes) else body.encode()\n"
                      b"    return data[::-1], content_type\n")
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                info = tarfile.TarInfo("code/inference.py")
                info.size = len(source)
                tar.addfile(info, io.BytesIO(source))
            return buffer.getvalue()

        def deploy(name, percent, destination):
            try:
                s3.create_bucket(Bucket="models")
            except ClientError:
                pass
            s3.put_object(Bucket="models", Key="echo.tar.gz", Body=echo_package())
            sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::000000000000:role/R",
                            PrimaryContainer={"ModelDataUrl": "s3://models/echo.tar.gz"})
            sm.create_endpoint_config(
                EndpointConfigName=name,
                ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1}],
                DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": percent, "DestinationS3Uri": destination,
                                   "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]})
            sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
            sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=fast)

        def body(index):
            kind = index % 3
            if kind == 0:
                return "text/csv", f"{index},{random.random()},3\n".encode()
            if kind == 1:
                return "application/json", json.dumps({"instances": [[index, "é", "\"quoted\"\n"]]}).encode()
            return "application/octet-stream", os.urandom(64)

        def send(endpoint, first, count, sent):
            for index in range(first, first + count):
                content_type, data = body(index)
                inference_id = f"{endpoint}-{index}"
                response = rt.invoke_endpoint(EndpointName=endpoint, ContentType=content_type, Body=data,
                                              InferenceId=inference_id)
                answer = response["Body"].read()
                assert answer == data[::-1], (index, answer)
                sent[inference_id] = {"type": content_type, "input": base64.b64encode(data).decode(),
                                      "output": base64.b64encode(answer).decode(),
                                      "outputType": response["ContentType"]}

        def captured(bucket, prefix):
            records, keys = [], []
            try:
                s3.head_bucket(Bucket=bucket)
            except ClientError:
                return records, keys  # made by the first flush
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    keys.append(item["Key"])
                    text = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
                    assert text.endswith("\n"), item["Key"]
                    records += [json.loads(line) for line in text.splitlines()]
            return records, keys

        def decoded(part):
            if part["encoding"] == "BASE64":
                return base64.b64decode(part["data"])
            return part["data"].encode()

        def check(records, keys, endpoint, sent):
            for key in keys:
                assert re.fullmatch(rf"data/{endpoint}/AllTraffic/\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}}/\d{{2}}-\d{{2}}-\d{{3}}-[0-9a-f-]{{36}}\.jsonl", key), key
            ids = set()
            for record in records:
                assert record["eventVersion"] == "0", record
                meta = record["eventMetadata"]
                assert meta["eventId"] not in ids, record
                ids.add(meta["eventId"])
                assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", meta["inferenceTime"]), meta
                expected = sent[meta["inferenceId"]]
                given, answered = record["captureData"]["endpointInput"], record["captureData"]["endpointOutput"]
                assert (given["mode"], answered["mode"]) == ("INPUT", "OUTPUT"), record
                assert given["observedContentType"] == expected["type"], record
                assert answered["observedContentType"] == expected["outputType"], record
                encoding = {"text/csv": "CSV", "application/json": "JSON"}.get(expected["type"], "BASE64")
                assert given["encoding"] == encoding and answered["encoding"] == encoding, record
                assert decoded(given) == base64.b64decode(expected["input"]), record
                assert decoded(answered) == base64.b64decode(expected["output"]), record
            return len(ids)

        """#

    @Test("1,000 invocations at 20 %: a binomial share is captured, each record equal to what was sent and answered")
    func sampled() async throws {
        let server = try await ServalServer()
        let folder = try TemporaryFolder()
        let sentFile = folder.path + "/sent.json"
        let first = try await python(
            Self.prelude + #"""
            # Bad settings are refused with the field named.
            for settings, field in (({"InitialSamplingPercentage": 101}, "InitialSamplingPercentage"),
                                    ({"DestinationS3Uri": "https://example.com/capture"}, "DestinationS3Uri"),
                                    ({"CaptureOptions": [{"CaptureMode": "Both"}]}, "CaptureMode")):
                config = {"EnableCapture": True, "InitialSamplingPercentage": 20, "DestinationS3Uri": "s3://capture/data",
                          "CaptureOptions": [{"CaptureMode": "Input"}]}
                config.update(settings)
                try:
                    sm.create_endpoint_config(EndpointConfigName="bad", DataCaptureConfig=config, ProductionVariants=[
                        {"VariantName": "AllTraffic", "ModelName": "none", "InitialInstanceCount": 1}])
                    raise AssertionError(f"accepted {settings}")
                except ClientError as error:
                    assert error.response["Error"]["Code"] == "ValidationException", error.response
                    assert field in error.response["Error"]["Message"], error.response
            deploy("sampled", 20, "s3://capture/data")
            summary = sm.describe_endpoint(EndpointName="sampled")["DataCaptureConfig"]
            assert summary["CaptureStatus"] == "Started" and summary["CurrentSamplingPercentage"] == 20, summary
            assert summary["DestinationS3Uri"] == "s3://capture/data", summary
            sent = {}
            send("sampled", 0, 1000, sent)
            json.dump(sent, open(sys.argv[3], "w"))
            print("ok")
            """#, "\(server.port)", "\(server.s3Port)", sentFile)
        #expect(first.contains("ok"), "\(first)")
        // A graceful stop flushes what is buffered.
        await server.stop()
        try await server.restart()
        let second = try await python(
            Self.prelude + #"""
            sent = json.load(open(sys.argv[3]))
            records, keys = captured("capture", "data/")
            count = check(records, keys, "sampled", sent)
            # Binomial(1000, 0.2): mean 200, standard deviation 12.6; these bounds are 4.7 deviations out.
            assert 140 <= count <= 260, count
            assert len(records) == count
            print("ok", count, len(keys))
            """#, "\(server.port)", "\(server.s3Port)", sentFile)
        #expect(second.contains("ok"), "\(second)")
    }

    @Test("kill -9 loses at most the records since the last flush and leaves no partial file")
    func crash() async throws {
        let server = try await ServalServer()
        let folder = try TemporaryFolder()
        let sentFile = folder.path + "/sent.json"
        let first = try await python(
            Self.prelude + #"""
            deploy("crash", 100, "s3://capture/data")
            sent = {}
            send("crash", 0, 30, sent)
            deadline = time.time() + 60
            while True:
                records, _ = captured("capture", "data/")
                if len(records) == 30:
                    break
                assert time.time() < deadline, f"{len(records)} of 30 flushed"
                time.sleep(0.2)
            send("crash", 30, 20, sent)
            json.dump(sent, open(sys.argv[3], "w"))
            print("ok")
            """#, "\(server.port)", "\(server.s3Port)", sentFile)
        #expect(first.contains("ok"), "\(first)")
        await server.kill()
        try await server.restart()
        let second = try await python(
            Self.prelude + #"""
            sent = json.load(open(sys.argv[3]))
            records, keys = captured("capture", "data/")
            count = check(records, keys, "crash", sent)
            # The first 30 were flushed before the crash; of the last 20, those flushed since may be there too.
            assert 30 <= count <= 50 and len(records) == count, count
            print("ok", count)
            """#, "\(server.port)", "\(server.s3Port)", sentFile)
        #expect(second.contains("ok"), "\(second)")
    }

    @Test("OIP REST (JSON and binary tensors), gRPC, real-time and async invocations large and small: each captured once, as sent and answered")
    func everyPath() async throws {
        let server = try await ServalServer()
        let output = try await python(
            Self.prelude + #"""
            import grpc, urllib.request
            import numpy as np
            from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as rpc
            import tritonclient.grpc as grpcclient
            grpc_address = f"127.0.0.1:{sys.argv[3]}"

            # A model that doubles tensors (Open Inference Protocol) and reverses bodies (SageMaker, async).
            source = (b"def model_fn(model_dir):\n    return None\n"
                      b"def infer_fn(inputs, model):\n    return {'y': inputs['x'] * 2}\n"
                      b"def transform_fn(model, body, content_type, accept):\n"
                      b"    data = body if isinstance(body, bytes) else body.encode()\n"
                      b"    return data[::-1], content_type\n")
            settings = json.dumps({"name": "paths", "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}],
                                   "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}]}).encode()
            archive = io.BytesIO()
            with tarfile.open(fileobj=archive, mode="w:gz") as tar:
                for name, data in (("code/inference.py", source), ("model-settings.json", settings)):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            for bucket in ("models", "inputs"):
                s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket="models", Key="paths.tar.gz", Body=archive.getvalue())
            sm.create_model(ModelName="paths", ExecutionRoleArn="arn:aws:iam::000000000000:role/R",
                            PrimaryContainer={"ModelDataUrl": "s3://models/paths.tar.gz"})
            sm.create_endpoint_config(
                EndpointConfigName="paths",
                ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "paths", "InitialInstanceCount": 1}],
                DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://capture/data",
                                   "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]},
                AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://results/paths"}})
            sm.create_endpoint(EndpointName="paths", EndpointConfigName="paths")
            sm.get_waiter("endpoint_in_service").wait(EndpointName="paths", WaiterConfig=fast)

            expected = {}  # inference id -> (input type, input, output type, output), or a check of the parsed messages
            binary_type = "application/vnd.sagemaker-triton.binary+json;json-header-size={}"

            def post(body, headers):
                request = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/paths/infer", data=body, headers=headers)
                with urllib.request.urlopen(request) as response:
                    return response.read(), response.headers

            # OIP REST with a JSON body.
            body = json.dumps({"id": "rest-json", "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 3],
                                                             "data": [1, 2, 3, 4, 5, 6.5]}]}).encode()
            answer, headers = post(body, {"Content-Type": "application/json"})
            assert json.loads(answer)["outputs"][0]["data"] == [2, 4, 6, 8, 10, 13], answer
            expected["rest-json"] = ("application/json", body, headers["Content-Type"], answer)

            # OIP REST with binary tensors both ways.
            header = json.dumps({"id": "rest-binary",
                                 "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "parameters": {"binary_data_size": 12}}],
                                 "outputs": [{"name": "y", "parameters": {"binary_data": True}}]}).encode()
            body = header + np.array([[1.5, -2, 3]], dtype="<f4").tobytes()
            answer, headers = post(body, {"Content-Type": "application/octet-stream",
                                          "Inference-Header-Content-Length": str(len(header))})
            length = int(headers["Inference-Header-Content-Length"])
            assert np.frombuffer(answer[length:], dtype="<f4").tolist() == [3, -4, 6], answer
            expected["rest-binary"] = (binary_type.format(len(header)), body, binary_type.format(length), answer)

            # OIP gRPC, a raw stub (the messages compared whole) and tritonclient.
            stub = rpc.GRPCInferenceServiceStub(grpc.insecure_channel(grpc_address))
            request = pb.ModelInferRequest(model_name="paths", id="grpc-stub")
            request.inputs.add(name="x", datatype="FP32", shape=[1, 3])
            request.raw_input_contents.append(np.array([[7, 8, 9]], dtype="<f4").tobytes())
            answer = stub.ModelInfer(request)
            assert np.frombuffer(answer.raw_output_contents[0], dtype="<f4").tolist() == [14, 16, 18]
            expected["grpc-stub"] = (request, answer)
            client = grpcclient.InferenceServerClient(grpc_address)
            tensor = grpcclient.InferInput("x", [2, 3], "FP32")
            tensor.set_data_from_numpy(np.arange(6, dtype=np.float32).reshape(2, 3))
            result = client.infer("paths", [tensor], request_id="grpc-client")
            assert result.as_numpy("y").tolist() == [[0, 2, 4], [6, 8, 10]]
            expected["grpc-client"] = (None, result.get_response())

            # SageMaker real time.
            response = rt.invoke_endpoint(EndpointName="paths", ContentType="text/csv", Body=b"1,2,3\n", InferenceId="real-time")
            expected["real-time"] = ("text/csv", b"1,2,3\n", response["ContentType"], response["Body"].read())

            # Async: a small input read into memory, and a 7 MiB one the worker gets as a file.
            for inference_id, data in (("async-small", os.urandom(1000)), ("async-large", os.urandom(7 * 1024 * 1024))):
                s3.put_object(Bucket="inputs", Key=inference_id, Body=data)
                rt.invoke_endpoint_async(EndpointName="paths", InputLocation=f"s3://inputs/{inference_id}",
                                         ContentType="application/octet-stream", InferenceId=inference_id)
                deadline = time.time() + 120
                while True:
                    try:
                        result = s3.get_object(Bucket="results", Key=f"paths/{inference_id}.out")["Body"].read()
                        break
                    except ClientError:
                        assert time.time() < deadline, f"{inference_id} not answered"
                        time.sleep(0.2)
                assert result == data[::-1]
                expected[inference_id] = ("application/octet-stream", data, "application/octet-stream", result)

            deadline = time.time() + 60
            while True:
                records, keys = captured("capture", "data/")
                if len(records) >= len(expected):
                    break
                assert time.time() < deadline, f"{len(records)} of {len(expected)} records flushed"
                time.sleep(0.2)
            ids = [record["eventMetadata"]["inferenceId"] for record in records]
            assert sorted(ids) == sorted(expected), ids
            for record in records:
                inference_id = record["eventMetadata"]["inferenceId"]
                given, answered = record["captureData"]["endpointInput"], record["captureData"]["endpointOutput"]
                if inference_id.startswith("grpc"):
                    assert given["observedContentType"] == answered["observedContentType"] == "application/grpc+proto", record
                    assert given["encoding"] == answered["encoding"] == "BASE64", record
                    sent, returned = expected[inference_id]
                    captured_request = pb.ModelInferRequest.FromString(decoded(given))
                    assert captured_request == sent or (sent is None and captured_request.id == "grpc-client"
                        and captured_request.inputs[0].shape == [2, 3]
                        and np.frombuffer(captured_request.raw_input_contents[0], dtype="<f4").tolist() == list(range(6))), captured_request
                    assert pb.ModelInferResponse.FromString(decoded(answered)) == returned, record
                    continue
                input_type, sent, output_type, returned = expected[inference_id]
                assert given["observedContentType"] == input_type and answered["observedContentType"] == output_type, record
                assert decoded(given) == sent and decoded(answered) == returned, inference_id
                text = {"application/json": "JSON", "text/csv": "CSV"}
                assert given["encoding"] == text.get(input_type, "BASE64"), record
            print("ok", len(records))
            """#, "\(server.port)", "\(server.s3Port)", "\(server.grpcPort)")
        #expect(output.contains("ok"), "\(output)")
        await server.stop()
    }

    @Test("a destination the store cannot write: invocations still succeed, the deploy card shows the drops and why")
    func failingDestination() async throws {
        let server = try await ServalServer()
        let output = try await python(
            Self.prelude + #"""
            import urllib.request, urllib.error

            def rest(method, path, body=None):
                request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                                 data=None if body is None else json.dumps(body).encode(),
                                                 headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(request) as response:
                        return response.status, json.loads(response.read())
                except urllib.error.HTTPError as error:
                    return error.code, json.loads(error.read())

            # Serval's REST API refuses bad settings with its own field names.
            for settings, field in (({"samplingPercentage": 101}, "dataCapture.samplingPercentage"),
                                    ({"samplingPercentage": -1}, "dataCapture.samplingPercentage"),
                                    ({"destination": "https://example.com/capture"}, "dataCapture.destination"),
                                    ({"destination": "s3://Bad_Bucket/x"}, "dataCapture.destination"),
                                    ({"captureModes": ["Both"]}, "dataCapture.captureModes[0]"),
                                    ({"captureModes": []}, "dataCapture.captureModes")):
                capture = {"destination": "s3://capture/data", **settings}
                status, refusal = rest("POST", "/endpoint-configs", {"name": "bad", "variants": [{"model": "none"}], "dataCapture": capture})
                assert status == 400 and refusal["message"].startswith(field + ":"), (settings, status, refusal)

            # An object where the capture files' folder would be: no file can be written below it.
            s3.create_bucket(Bucket="blocked")
            s3.put_object(Bucket="blocked", Key="data", Body=b"in the way")
            deploy("blocked", 100, "s3://blocked/data")
            sent = {}
            send("blocked", 0, 3, sent)
            deadline = time.time() + 60
            while True:
                status, card = rest("GET", "/endpoints/blocked")
                capture = card["dataCapture"]
                if capture["recordsDropped"] == 3:
                    break
                assert time.time() < deadline, card
                time.sleep(0.2)
            assert capture["status"] == "Started" and capture["recordsWritten"] == 0, capture
            assert capture["destination"] == "s3://blocked/data" and capture["samplingPercentage"] == 100, capture
            assert capture["captureModes"] == ["Input", "Output"], capture
            assert "\"data\" is in the way" in capture["lastError"], capture
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", capture["lastErrorAt"]), capture
            # SageMaker has only Started and Stopped: capture is still on.
            summary = sm.describe_endpoint(EndpointName="blocked")["DataCaptureConfig"]
            assert summary["CaptureStatus"] == "Started", summary

            # With the way clear, the next records are written.
            s3.delete_object(Bucket="blocked", Key="data")
            send("blocked", 3, 2, sent)
            deadline = time.time() + 60
            while rest("GET", "/endpoints/blocked")[1]["dataCapture"]["recordsWritten"] < 2:
                assert time.time() < deadline
                time.sleep(0.2)
            records, keys = captured("blocked", "data/")
            assert check(records, keys, "blocked", sent) == 2
            print("ok")
            """#, "\(server.port)", "\(server.s3Port)")
        #expect(output.contains("ok"), "\(output)")
        let card = try await server.client.endpoint("blocked")
        #expect(card.dataCapture?.recordsDropped == 3 && card.dataCapture?.recordsWritten == 2)
        let printed = try await run([servalBinary, "endpoints", "describe", "blocked"], environment: ["SERVAL_URL": server.url])
        #expect(printed.status == 0)
        for expected in [
            "Data capture       Started: 100 % of input and output to s3://blocked/data; 2 records written, 3 dropped",
            "Last capture error 20", "\"data\" is in the way",
        ] {
            #expect(printed.output.contains(expected), "\(printed.output)")
        }
        await server.stop()
    }
}
