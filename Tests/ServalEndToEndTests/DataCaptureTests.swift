import Foundation
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
}
