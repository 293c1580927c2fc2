import Foundation
import ServalClient
import Testing

/// boto3's `sagemaker` client, unmodified, against a real `serval serve` (`endpoint_url=`): models, endpoint
/// configs, endpoints with updates, listings, errors, tags and transform jobs. Packages go in through boto3's `s3` client
/// on Serval's S3 port; invocations through `sagemaker-runtime`. Auth is off, so the credentials are dummies.
@Suite("SageMaker control plane", .serialized)
struct SageMakerControlPlaneTests {
    /// Clients for the server at argv[1] (HTTP) and argv[2] (S3), and `package(tag)`: a model.tar.gz whose
    /// `transform_fn` answers `{"model": tag, "echo": body}` (a tag of `broken` fails to load, `slow` takes 4 s).
    static let prelude = #"""
        import io, json, sys, tarfile, time
        import boto3
        from botocore.config import Config
        from botocore.exceptions import ClientError
        port, s3port = sys.argv[1], sys.argv[2]
        session = dict(region_name="eu-west-2", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
        sm = boto3.client("sagemaker", endpoint_url=f"http://127.0.0.1:{port}", **session)
        rt = boto3.client("sagemaker-runtime", endpoint_url=f"http://127.0.0.1:{port}", **session)
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3port}", config=Config(s3={"addressing_style": "path"}), **session)
        fast = {"Delay": 1, "MaxAttempts": 300}

        def package(tag):
            source = (
                "import json\n"
                "def model_fn(model_dir):\n"
                f"    if {tag!r} == 'broken':\n"
                "        raise RuntimeError('this model cannot load')\n"
                f"    if {tag!r} == 'slow':\n"
                "        import time; time.sleep(4)\n"
                f"    return {tag!r}\n"
                "def transform_fn(model, body, content_type, accept):\n"
                "    if isinstance(body, bytes):\n"
                "        body = body.decode()\n"
                "    return json.dumps({'model': model, 'echo': body}), 'application/json'\n")
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                data = source.encode()
                info = tarfile.TarInfo("code/inference.py")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            return buffer.getvalue()

        def upload(tag):
            try:
                s3.create_bucket(Bucket="models")
            except ClientError:
                pass
            s3.put_object(Bucket="models", Key=f"{tag}/model.tar.gz", Body=package(tag))
            return f"s3://models/{tag}/model.tar.gz"

        def invoke(name, **extra):
            response = rt.invoke_endpoint(EndpointName=name, Body=b"hello", ContentType="text/plain", **extra)
            return json.loads(response["Body"].read())["model"], response["InvokedProductionVariant"]

        def error(call, **arguments):
            try:
                call(**arguments)
            except ClientError as failure:
                return failure.response["Error"]["Code"], failure.response["Error"]["Message"], failure.response["ResponseMetadata"]["HTTPStatusCode"]
            raise SystemExit(f"{call.__name__}({arguments}) did not fail")

        """#

    @discardableResult
    func runScript(_ body: String, server: ServalServer) async throws -> String {
        let output = try await python(Self.prelude + body, "\(server.port)", "\(server.s3Port)")
        #expect(output.contains("ok"), "\(output)")
        return output
    }

    @Test("create_model → create_endpoint_config → create_endpoint → waiter → invoke → update_endpoint → waiter → weights and capacities → delete_endpoint → waiter endpoint_deleted")
    func lifecycle() async throws {
        let server = try await ServalServer()
        try await runScript(
            #"""
            arn = sm.create_model(
                ModelName="model-a",
                PrimaryContainer={"Image": "763104351884.dkr.ecr.eu-west-2.amazonaws.com/sklearn-inference:1.2-1",
                                  "ModelDataUrl": upload("a"), "Environment": {"GREETING": "hi"}, "Mode": "SingleModel"},
                ExecutionRoleArn="arn:aws:iam::000000000000:role/SageMakerRole")["ModelArn"]
            assert arn == "arn:aws:sagemaker:eu-west-2:000000000000:model/model-a", arn
            sm.create_model(ModelName="Model-B", Containers=[{"ModelDataUrl": upload("b")}], InferenceExecutionConfig={"Mode": "Serial"})
            described = sm.describe_model(ModelName="model-a")
            assert described["PrimaryContainer"]["Image"].endswith("sklearn-inference:1.2-1"), described
            assert described["PrimaryContainer"]["Environment"] == {"GREETING": "hi"}, described
            assert described["ExecutionRoleArn"] == "arn:aws:iam::000000000000:role/SageMakerRole", described
            assert described["CreationTime"].year >= 2024, described
            described = sm.describe_model(ModelName="Model-B")
            assert described["ModelArn"].endswith(":model/model-b"), described
            assert described["InferenceExecutionConfig"] == {"Mode": "Serial"}, described

            arn = sm.create_endpoint_config(
                EndpointConfigName="config-a",
                ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "model-a", "InitialInstanceCount": 1,
                                     "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}],
                DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": 50, "DestinationS3Uri": "s3://capture/a",
                                   "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]},
                AsyncInferenceConfig={"ClientConfig": {"MaxConcurrentInvocationsPerInstance": 2},
                                      "OutputConfig": {"S3OutputPath": "s3://results/a"}})["EndpointConfigArn"]
            assert arn == "arn:aws:sagemaker:eu-west-2:000000000000:endpoint-config/config-a", arn
            config = sm.describe_endpoint_config(EndpointConfigName="config-a")
            assert config["ProductionVariants"][0]["InstanceType"] == "ml.m5.large", config
            assert config["DataCaptureConfig"]["InitialSamplingPercentage"] == 50, config
            assert config["AsyncInferenceConfig"]["ClientConfig"]["MaxConcurrentInvocationsPerInstance"] == 2, config
            sm.create_endpoint_config(
                EndpointConfigName="config-b",
                ProductionVariants=[{"VariantName": "blue", "ModelName": "Model-B", "InitialInstanceCount": 1},
                                    {"VariantName": "green", "ModelName": "model-a", "InitialInstanceCount": 1, "InitialVariantWeight": 0.0}])
            assert sm.describe_endpoint_config(EndpointConfigName="config-b")["ProductionVariants"][0]["InitialVariantWeight"] == 1.0

            arn = sm.create_endpoint(EndpointName="ep", EndpointConfigName="config-a")["EndpointArn"]
            assert arn == "arn:aws:sagemaker:eu-west-2:000000000000:endpoint/ep", arn
            sm.get_waiter("endpoint_in_service").wait(EndpointName="ep", WaiterConfig=fast)
            assert invoke("ep") == ("a", "AllTraffic")
            endpoint = sm.describe_endpoint(EndpointName="ep")
            assert endpoint["EndpointStatus"] == "InService" and endpoint["EndpointConfigName"] == "config-a", endpoint
            variant = endpoint["ProductionVariants"][0]
            assert (variant["VariantName"], variant["CurrentWeight"], variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == ("AllTraffic", 1.0, 1, 1), endpoint
            assert endpoint["DataCaptureConfig"]["CurrentSamplingPercentage"] == 50, endpoint
            assert endpoint["LastModifiedTime"] >= endpoint["CreationTime"], endpoint

            sm.update_endpoint(EndpointName="ep", EndpointConfigName="config-b")
            assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Updating"
            code, message, status = error(sm.update_endpoint, EndpointName="ep", EndpointConfigName="config-a")
            assert (code, status) == ("ValidationException", 400), message
            code, message, status = error(sm.delete_endpoint_config, EndpointConfigName="config-b")
            assert (code, status) == ("ResourceInUse", 400) and "being deployed" in message, message
            code, message, status = error(sm.delete_model, ModelName="Model-B")
            assert (code, status) == ("ResourceInUse", 400) and "being deployed" in message, message
            assert invoke("ep")[0] == "a", "the old config serves until the new one is ready"
            # Traffic during the update and across the switch: every request is answered, by the old model or the new.
            import threading
            answers, failures, updating = [], [], threading.Event()
            updating.set()
            def hammer():
                while updating.is_set():
                    try:
                        answers.append(invoke("ep")[0])
                    except Exception as failure:
                        failures.append(repr(failure))
            threads = [threading.Thread(target=hammer) for _ in range(4)]
            for thread in threads:
                thread.start()
            sm.get_waiter("endpoint_in_service").wait(EndpointName="ep", WaiterConfig=fast)
            time.sleep(0.5)
            updating.clear()
            for thread in threads:
                thread.join()
            assert not failures, failures[:3]
            assert "a" in answers and answers[-1] == "b", (answers[:3], answers[-3:])
            endpoint = sm.describe_endpoint(EndpointName="ep")
            assert endpoint["EndpointConfigName"] == "config-b" and "FailureReason" not in endpoint, endpoint
            assert [invoke("ep") for _ in range(10)] == [("b", "blue")] * 10
            assert invoke("ep", TargetVariant="green") == ("a", "green")

            sm.update_endpoint_weights_and_capacities(EndpointName="ep", DesiredWeightsAndCapacities=[
                {"VariantName": "blue", "DesiredWeight": 0.0},
                {"VariantName": "green", "DesiredWeight": 1.0, "DesiredInstanceCount": 2}])
            sm.get_waiter("endpoint_in_service").wait(EndpointName="ep", WaiterConfig=fast)
            variants = {v["VariantName"]: v for v in sm.describe_endpoint(EndpointName="ep")["ProductionVariants"]}
            assert variants["green"]["CurrentWeight"] == 1.0 and variants["green"]["CurrentInstanceCount"] == 2, variants
            assert variants["blue"]["CurrentWeight"] == 0.0 and variants["blue"]["CurrentInstanceCount"] == 1, variants
            assert [invoke("ep") for _ in range(10)] == [("a", "green")] * 10

            # An update whose model cannot load rolls back: InService on the old config, with the reason.
            sm.create_model(ModelName="broken", PrimaryContainer={"Image": "anything", "ModelDataUrl": upload("broken")})
            sm.create_endpoint_config(EndpointConfigName="config-broken", ProductionVariants=[
                {"VariantName": "AllTraffic", "ModelName": "broken", "InitialInstanceCount": 1}])
            sm.update_endpoint(EndpointName="ep", EndpointConfigName="config-broken")
            sm.get_waiter("endpoint_in_service").wait(EndpointName="ep", WaiterConfig=fast)
            endpoint = sm.describe_endpoint(EndpointName="ep")
            assert endpoint["EndpointConfigName"] == "config-b", endpoint
            assert "cannot load" in endpoint["FailureReason"], endpoint
            assert invoke("ep") == ("a", "green")

            sm.delete_endpoint(EndpointName="ep")
            sm.get_waiter("endpoint_deleted").wait(EndpointName="ep", WaiterConfig=fast)
            code, message, status = error(sm.describe_endpoint, EndpointName="ep")
            assert (code, status) == ("ValidationException", 400) and "Could not find endpoint" in message, message
            sm.delete_endpoint_config(EndpointConfigName="config-a")
            sm.delete_endpoint_config(EndpointConfigName="config-broken")
            sm.delete_model(ModelName="broken")
            print("ok")
            """#, server: server)
    }

    @Test("an update interrupted by kill -9 starts again when Serval restarts, the old config serving meanwhile")
    func updateSurvivesRestart() async throws {
        let server = try await ServalServer()
        try await runScript(
            #"""
            sm.create_model(ModelName="a", PrimaryContainer={"ModelDataUrl": upload("a")})
            sm.create_model(ModelName="slow", PrimaryContainer={"ModelDataUrl": upload("slow")})
            for name, model in [("config-a", "a"), ("config-slow", "slow")]:
                sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
                    {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1}])
            sm.create_endpoint(EndpointName="ep", EndpointConfigName="config-a")
            sm.get_waiter("endpoint_in_service").wait(EndpointName="ep", WaiterConfig=fast)
            sm.update_endpoint(EndpointName="ep", EndpointConfigName="config-slow")
            assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Updating"
            print("ok")
            """#, server: server)
        await server.kill()
        try await server.restart()
        try await runScript(
            #"""
            endpoint = sm.describe_endpoint(EndpointName="ep")
            assert endpoint["EndpointStatus"] == "Updating" and endpoint["EndpointConfigName"] == "config-a", endpoint
            deadline = time.time() + 60
            while True:
                try:
                    assert invoke("ep")[0] == "a"
                    break
                except ClientError:
                    assert time.time() < deadline, "the old config does not serve again"
                    time.sleep(0.1)
            sm.get_waiter("endpoint_in_service").wait(EndpointName="ep", WaiterConfig=fast)
            endpoint = sm.describe_endpoint(EndpointName="ep")
            assert endpoint["EndpointConfigName"] == "config-slow" and "FailureReason" not in endpoint, endpoint
            assert invoke("ep")[0] == "slow"
            print("ok")
            """#, server: server)
    }

    @Test("list_models and list_endpoints page with NextToken, filter and sort; unknown names and invalid values are ClientErrors")
    func listingsAndErrors() async throws {
        let server = try await ServalServer()
        try await runScript(
            #"""
            url = upload("a")
            for index in range(5):
                sm.create_model(ModelName=f"m-{index}", PrimaryContainer={"ModelDataUrl": url})
                time.sleep(0.01)
            names, token, pages = [], None, 0
            while True:
                page = sm.list_models(MaxResults=2, SortBy="CreationTime", SortOrder="Ascending", **({"NextToken": token} if token else {}))
                names += [model["ModelName"] for model in page["Models"]]
                pages += 1
                token = page.get("NextToken")
                if not token:
                    break
            assert names == [f"m-{index}" for index in range(5)] and pages == 3, (names, pages)
            paged = [m["ModelName"] for p in sm.get_paginator("list_models").paginate(SortBy="Name", SortOrder="Ascending", PaginationConfig={"PageSize": 2}) for m in p["Models"]]
            assert paged == sorted(names), paged
            assert [m["ModelName"] for m in sm.list_models(NameContains="M-3")["Models"]] == ["m-3"]
            assert sm.list_models(SortBy="Name", SortOrder="Descending")["Models"][0]["ModelArn"].endswith("model/m-4")

            sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
                {"VariantName": "AllTraffic", "ModelName": "m-0", "InitialInstanceCount": 1}])
            for name in ["ep-1", "ep-2", "ep-3"]:
                sm.create_endpoint(EndpointName=name, EndpointConfigName="c")
            for name in ["ep-1", "ep-2", "ep-3"]:
                sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=fast)
            seen, token = [], None
            while True:
                page = sm.list_endpoints(MaxResults=1, SortBy="Name", SortOrder="Ascending", StatusEquals="InService", **({"NextToken": token} if token else {}))
                seen += [(e["EndpointName"], e["EndpointStatus"]) for e in page["Endpoints"]]
                token = page.get("NextToken")
                if not token:
                    break
            assert seen == [("ep-1", "InService"), ("ep-2", "InService"), ("ep-3", "InService")], seen
            assert sm.list_endpoints(StatusEquals="Failed")["Endpoints"] == []
            assert [e["EndpointName"] for e in sm.list_endpoints(NameContains="ep-2")["Endpoints"]] == ["ep-2"]
            assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]] == ["c"]

            checks = [
                (sm.describe_endpoint, dict(EndpointName="missing"), "ValidationException", "Could not find endpoint"),
                (sm.describe_model, dict(ModelName="missing"), "ValidationException", "Could not find model"),
                (sm.describe_endpoint_config, dict(EndpointConfigName="missing"), "ValidationException", "Could not find endpoint configuration"),
                (sm.delete_model, dict(ModelName="missing"), "ValidationException", "Could not find model"),
                (sm.describe_transform_job, dict(TransformJobName="missing"), "ResourceNotFound", "Could not find transform job"),
                (sm.create_model, dict(ModelName="bad_name", PrimaryContainer={"ModelDataUrl": url}), "ValidationException", "ModelName"),
                (sm.create_model, dict(ModelName="m" * 64, PrimaryContainer={"ModelDataUrl": url}), "ValidationException", "limit is 63"),
                (sm.create_model, dict(ModelName="m-0", PrimaryContainer={"ModelDataUrl": url}), "ValidationException", "Cannot create already existing model"),
                (sm.create_model, dict(ModelName="nodata", PrimaryContainer={"ModelDataUrl": "s3://models/none.tar.gz"}), "ValidationException", "does not exist"),
                (sm.create_model, dict(ModelName="nourl", PrimaryContainer={"Image": "x"}), "ValidationException", "ModelDataUrl"),
                (sm.create_model, dict(ModelName="two", Containers=[{"ModelDataUrl": url}, {"ModelDataUrl": url}]), "ValidationException", "one container"),
                (sm.create_endpoint_config, dict(EndpointConfigName="big", ProductionVariants=[
                    {"VariantName": "v", "ModelName": "m-0", "InitialInstanceCount": 1000}]), "ValidationException", "InitialInstanceCount"),
                (sm.create_endpoint_config, dict(EndpointConfigName="nomodel", ProductionVariants=[
                    {"VariantName": "v", "ModelName": "nope", "InitialInstanceCount": 1}]), "ValidationException", "Could not find model"),
                (sm.create_endpoint_config, dict(EndpointConfigName="serverless", ProductionVariants=[
                    {"VariantName": "v", "ModelName": "m-0", "ServerlessConfig": {"MemorySizeInMB": 1500, "MaxConcurrency": 5}}]), "ValidationException", "MemorySizeInMB"),
                (sm.create_endpoint_config, dict(EndpointConfigName="capture", ProductionVariants=[
                    {"VariantName": "v", "ModelName": "m-0", "InitialInstanceCount": 1}],
                    DataCaptureConfig={"InitialSamplingPercentage": 101, "DestinationS3Uri": "s3://capture/x", "CaptureOptions": [{"CaptureMode": "Input"}]}),
                    "ValidationException", "InitialSamplingPercentage"),
                (sm.create_endpoint_config, dict(EndpointConfigName="async-up", ProductionVariants=[
                    {"VariantName": "v", "ModelName": "m-0", "InitialInstanceCount": 1}],
                    AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://results/../escape"}}),
                    "ValidationException", "AsyncInferenceConfig.OutputConfig.S3OutputPath"),
                (sm.create_endpoint_config, dict(EndpointConfigName="async-fail", ProductionVariants=[
                    {"VariantName": "v", "ModelName": "m-0", "InitialInstanceCount": 1}],
                    AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://results/ok", "S3FailurePath": "s3://failures//x"}}),
                    "ValidationException", "AsyncInferenceConfig.OutputConfig.S3FailurePath"),
                (sm.create_endpoint, dict(EndpointName="ep-1", EndpointConfigName="c"), "ValidationException", "Cannot create already existing endpoint"),
                (sm.create_endpoint, dict(EndpointName="ep-9", EndpointConfigName="missing"), "ValidationException", "Could not find endpoint configuration"),
                (sm.update_endpoint_weights_and_capacities, dict(EndpointName="ep-1", DesiredWeightsAndCapacities=[
                    {"VariantName": "nope", "DesiredWeight": 1.0}]), "ValidationException", "no variant"),
                (sm.update_endpoint_weights_and_capacities, dict(EndpointName="ep-1", DesiredWeightsAndCapacities=[
                    {"VariantName": "AllTraffic", "DesiredWeight": 0.0}]), "ValidationException", "positive weight"),
                (sm.list_endpoints, dict(StatusEquals="Sleeping"), "ValidationException", "StatusEquals"),
                (sm.list_models, dict(NextToken="garbage"), "ValidationException", "NextToken"),
            ]
            for call, arguments, expected, text in checks:
                code, message, status = error(call, **arguments)
                assert (code, status) == (expected, 400) and text in message, (call.__name__, arguments, code, status, message)
            print("ok")
            """#, server: server)
    }

    @Test("the SDK's clean-up order: delete_endpoint_config and delete_model while the endpoint serves; it serves on across a restart and a new instance count and updates to a new config; a package goes when nothing uses it")
    func deleteInUse() async throws {
        let server = try await ServalServer()
        try await runScript(
            #"""
            sm.create_model(ModelName="kept", PrimaryContainer={"ModelDataUrl": upload("kept")})
            sm.create_endpoint_config(EndpointConfigName="kept-config", ProductionVariants=[
                {"VariantName": "AllTraffic", "ModelName": "kept", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
            sm.create_endpoint(EndpointName="kept", EndpointConfigName="kept-config")
            sm.get_waiter("endpoint_in_service").wait(EndpointName="kept", WaiterConfig=fast)
            # Predictor.delete_endpoint() deletes the config first; delete_model() follows at once.
            sm.delete_endpoint_config(EndpointConfigName="kept-config")
            sm.delete_model(ModelName="kept")
            assert sm.list_models()["Models"] == [] and sm.list_endpoint_configs()["EndpointConfigs"] == []
            code, message, status = error(sm.describe_model, ModelName="kept")
            assert code == "ValidationException" and "Could not find model" in message, message
            assert invoke("kept") == ("kept", "AllTraffic")
            endpoint = sm.describe_endpoint(EndpointName="kept")
            assert endpoint["EndpointStatus"] == "InService" and endpoint["EndpointConfigName"] == "kept-config", endpoint
            # The name is free again: a new model of that name does not touch the endpoint's.
            sm.create_model(ModelName="kept", PrimaryContainer={"ModelDataUrl": upload("other")})
            sm.delete_model(ModelName="kept")
            print("ok")
            """#, server: server)
        let packages = server.dataDirectory + "/models"
        let kept = try FileManager.default.contentsOfDirectory(atPath: packages)
        #expect(kept.count == 1, "the endpoint's package stays while it serves: \(kept)")
        await server.kill()
        try await server.restart()
        try await runScript(
            #"""
            deadline = time.time() + 120
            while True:  # InService again at once; its worker is loading its model
                try:
                    assert invoke("kept") == ("kept", "AllTraffic")
                    break
                except rt.exceptions.ModelNotReadyException:
                    assert time.time() < deadline, "the endpoint did not come back"
                    time.sleep(0.2)
            # A new instance count starts new workers from the endpoint's own copy.
            sm.update_endpoint_weights_and_capacities(EndpointName="kept", DesiredWeightsAndCapacities=[
                {"VariantName": "AllTraffic", "DesiredInstanceCount": 2}])
            sm.get_waiter("endpoint_in_service").wait(EndpointName="kept", WaiterConfig=fast)
            variant = sm.describe_endpoint(EndpointName="kept")["ProductionVariants"][0]
            assert variant["CurrentInstanceCount"] == 2, variant
            assert invoke("kept") == ("kept", "AllTraffic")
            # An update to a new config works too; the deleted model's package goes once the endpoint switched.
            sm.create_model(ModelName="next", PrimaryContainer={"ModelDataUrl": upload("next")})
            sm.create_endpoint_config(EndpointConfigName="next-config", ProductionVariants=[
                {"VariantName": "AllTraffic", "ModelName": "next", "InitialInstanceCount": 1}])
            sm.update_endpoint(EndpointName="kept", EndpointConfigName="next-config")
            sm.get_waiter("endpoint_in_service").wait(EndpointName="kept", WaiterConfig=fast)
            endpoint = sm.describe_endpoint(EndpointName="kept")
            assert endpoint["EndpointConfigName"] == "next-config" and "FailureReason" not in endpoint, endpoint
            assert invoke("kept") == ("next", "AllTraffic")
            print("ok")
            """#, server: server)
        try await eventually("the replaced package goes once the update has switched") {
            let left = try FileManager.default.contentsOfDirectory(atPath: packages)
            return left.count == 1 && left != kept
        }
        try await runScript(
            #"""
            sm.delete_endpoint_config(EndpointConfigName="next-config")
            sm.delete_endpoint(EndpointName="kept")
            sm.get_waiter("endpoint_deleted").wait(EndpointName="kept", WaiterConfig=fast)
            print("ok")
            """#, server: server)
        // The model "next" still exists, so its package stays; deleting it deletes the package.
        #expect(try FileManager.default.contentsOfDirectory(atPath: packages).count == 1)
        try await runScript("sm.delete_model(ModelName=\"next\")\nprint(\"ok\")\n", server: server)
        try await eventually("the package goes with the last user") {
            try FileManager.default.contentsOfDirectory(atPath: packages).isEmpty
        }
        await server.stop()
    }

    @Test("over REST too: DELETE the config and the model while the endpoint serves; it serves on across a restart")
    func deleteInUseREST() async throws {
        let folder = try TemporaryFolder()
        let model = try await Packages.logisticRegression(in: folder.path)
        let server = try await ServalServer()
        #expect(try await server.deploy(model.path, name: "lr").status == "InService")
        try await server.client.deleteEndpointConfig("lr")
        try await server.client.deleteModel("lr")
        #expect(try await server.client.models().isEmpty)
        let probe = "{\"instances\": \(model.probe)}"
        #expect(try jsonObject(try await server.invoke("lr", json: probe))["predictions"] as? [Int] == model.expected)
        await server.kill()
        try await server.restart()
        try await eventually(timeout: .seconds(120), "the endpoint serves again after the restart") {
            try await server.invoke("lr", json: probe).status == 200
        }
        #expect(try jsonObject(try await server.invoke("lr", json: probe))["predictions"] as? [Int] == model.expected)
        _ = try await server.client.deleteEndpoint("lr")
        try await server.client.waitForEndpointDeleted("lr")
        try await eventually("the package goes with the endpoint") {
            try FileManager.default.contentsOfDirectory(atPath: server.dataDirectory + "/models").isEmpty
        }
        await server.stop()
    }

    @Test("add_tags, list_tags and delete_tags on models, endpoint configs, endpoints and transform jobs, and Tags on their create calls; SageMaker's limits and errors; a deleted resource's tags go with it")
    func tags() async throws {
        let server = try await ServalServer()
        try await runScript(
            #"""
            tags = [{"Key": "team", "Value": "ml"}, {"Key": "cost center", "Value": "42"}]
            url = upload("a")
            s3.create_bucket(Bucket="batch")
            s3.put_object(Bucket="batch", Key="in/data.txt", Body=b"one\n")
            arns = {
                "model": sm.create_model(ModelName="Tagged-Model", PrimaryContainer={"ModelDataUrl": url}, Tags=tags)["ModelArn"],
                "endpoint configuration": sm.create_endpoint_config(EndpointConfigName="tagged-config", ProductionVariants=[
                    {"VariantName": "AllTraffic", "ModelName": "Tagged-Model", "InitialInstanceCount": 1}], Tags=tags)["EndpointConfigArn"],
                "endpoint": sm.create_endpoint(EndpointName="tagged-endpoint", EndpointConfigName="tagged-config", Tags=tags)["EndpointArn"],
                "transform job": sm.create_transform_job(
                    TransformJobName="tagged-job", ModelName="Tagged-Model", Tags=tags,
                    TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://batch/in/"}}},
                    TransformOutput={"S3OutputPath": "s3://batch/out"},
                    TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})["TransformJobArn"],
            }
            assert arns["model"].endswith(":model/tagged-model"), arns  # an ARN shows the name in lowercase
            for kind, arn in arns.items():
                assert sm.list_tags(ResourceArn=arn)["Tags"] == tags, (kind, sm.list_tags(ResourceArn=arn))
                added = sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "platform"}, {"Key": "stage", "Value": ""}])["Tags"]
                expected = [{"Key": "team", "Value": "platform"}, {"Key": "cost center", "Value": "42"}, {"Key": "stage", "Value": ""}]
                assert added == expected and sm.list_tags(ResourceArn=arn, MaxResults=50)["Tags"] == expected, (kind, added)
                sm.delete_tags(ResourceArn=arn, TagKeys=["cost center", "absent"])
                pages = list(sm.get_paginator("list_tags").paginate(ResourceArn=arn))
                assert [page["Tags"] for page in pages] == [[{"Key": "team", "Value": "platform"}, {"Key": "stage", "Value": ""}]], (kind, pages)
                # The limit: 50 tags a resource.
                sm.add_tags(ResourceArn=arn, Tags=[{"Key": f"k{index}", "Value": "v"} for index in range(48)])
                code, message, status = error(sm.add_tags, ResourceArn=arn, Tags=[{"Key": "one-more", "Value": "v"}])
                assert (code, status) == ("ValidationException", 400) and "51 tags; the limit is 50" in message, (kind, message)
                assert len(sm.list_tags(ResourceArn=arn)["Tags"]) == 50
                sm.add_tags(ResourceArn=arn, Tags=[{"Key": "k0", "Value": "replaced"}])  # replacing stays within it

            model_arn = arns["model"]
            checks = [
                (sm.add_tags, dict(ResourceArn=model_arn, Tags=[{"Key": "aws:owner", "Value": "x"}]), "Tags[0].Key", "reserved"),
                (sm.add_tags, dict(ResourceArn=model_arn, Tags=[{"Key": "k" * 129, "Value": "x"}]), "Tags[0].Key", "129 characters"),
                (sm.add_tags, dict(ResourceArn=model_arn, Tags=[{"Key": "k", "Value": "v" * 257}]), "Tags[0].Value", "257 characters"),
                (sm.add_tags, dict(ResourceArn=model_arn, Tags=[{"Key": "semi;colon", "Value": "x"}]), "Tags[0].Key", "contains"),
                (sm.add_tags, dict(ResourceArn=model_arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]), "Tags[1].Key", "twice"),
                (sm.add_tags, dict(ResourceArn=model_arn, Tags=[{"Key": f"n{i}", "Value": "v"} for i in range(51)]), "Tags", "51 tags"),
                (sm.delete_tags, dict(ResourceArn=model_arn, TagKeys=["aws:owner"]), "TagKeys[0]", "reserved"),
                (sm.list_tags, dict(ResourceArn=model_arn, NextToken="garbage"), "NextToken", "one page"),
                (sm.list_tags, dict(ResourceArn="arn:aws:sagemaker:eu-west-2:000000000000:model/missing"), "Could not find model", "model/missing"),
                (sm.add_tags, dict(ResourceArn="arn:aws:sagemaker:eu-west-2:000000000000:endpoint/missing", Tags=tags), "Could not find endpoint", ""),
                (sm.delete_tags, dict(ResourceArn="arn:aws:sagemaker:eu-west-2:000000000000:endpoint-config/missing", TagKeys=["a"]), "Could not find endpoint configuration", ""),
                (sm.list_tags, dict(ResourceArn="arn:aws:sagemaker:eu-west-2:000000000000:transform-job/missing"), "Could not find transform job", ""),
                (sm.list_tags, dict(ResourceArn="arn:aws:sagemaker:eu-west-2:111111111111:model/tagged-model"), "Could not find model", "111111111111"),
                (sm.list_tags, dict(ResourceArn="arn:aws:sagemaker:eu-west-2:000000000000:training-job/x"), "ResourceArn", "names no resource Serval has"),
                (sm.list_tags, dict(ResourceArn="arn:aws:s3:::bucket"), "ResourceArn", "is not a SageMaker ARN"),
                (sm.list_tags, dict(ResourceArn="arn:aws:sagemaker:eu-west-2:000000000000:model/" + "m" * 250), "ResourceArn", "limit is 256"),
                # Tags on a create call are checked before anything is made.
                (sm.create_model, dict(ModelName="bad-tags", PrimaryContainer={"ModelDataUrl": url}, Tags=[{"Key": "aws:x", "Value": "y"}]), "Tags[0].Key", "reserved"),
                (sm.create_endpoint_config, dict(EndpointConfigName="bad-tags", ProductionVariants=[
                    {"VariantName": "v", "ModelName": "Tagged-Model", "InitialInstanceCount": 1}], Tags=[{"Key": "k", "Value": "v" * 257}]), "Tags[0].Value", ""),
                (sm.create_endpoint, dict(EndpointName="bad-tags", EndpointConfigName="tagged-config", Tags=[{"Key": "a:b;", "Value": ""}]), "Tags[0].Key", ""),
                (sm.create_transform_job, dict(TransformJobName="bad-tags", ModelName="Tagged-Model", Tags=[{"Key": f"n{i}", "Value": "v"} for i in range(51)],
                    TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://batch/in/"}}},
                    TransformOutput={"S3OutputPath": "s3://batch/out"}, TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1}), "Tags", "51 tags"),
            ]
            for call, arguments, start, text in checks:
                code, message, status = error(call, **arguments)
                assert (code, status) == ("ValidationException", 400) and message.startswith(start) and text in message, (call.__name__, code, status, message)
            assert sm.list_models(NameContains="bad")["Models"] == [] and sm.list_endpoint_configs(NameContains="bad")["EndpointConfigs"] == []
            assert sm.list_endpoints(NameContains="bad")["Endpoints"] == [] and sm.list_transform_jobs(NameContains="bad")["TransformJobSummaries"] == []

            # Serval's REST API takes the same Tags on POST /transform-jobs.
            import urllib.request
            body = {"TransformJobName": "rest-job", "ModelName": "Tagged-Model", "Tags": [{"Key": "via", "Value": "rest"}],
                    "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://batch/in/"}}},
                    "TransformOutput": {"S3OutputPath": "s3://batch/rest"}}
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/transform-jobs", data=json.dumps(body).encode(),
                                                          headers={"Content-Type": "application/json"}, method="POST"))
            rest_job = arns["transform job"].replace("tagged-job", "rest-job")
            assert sm.list_tags(ResourceArn=rest_job)["Tags"] == [{"Key": "via", "Value": "rest"}]
            sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName="rest-job", WaiterConfig=fast)

            # A deleted resource's tags go with it; one made again under the name starts with none.
            sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName="tagged-job", WaiterConfig=fast)
            sm.get_waiter("endpoint_in_service").wait(EndpointName="tagged-endpoint", WaiterConfig=fast)
            sm.delete_endpoint(EndpointName="tagged-endpoint")
            sm.get_waiter("endpoint_deleted").wait(EndpointName="tagged-endpoint", WaiterConfig=fast)
            sm.delete_endpoint_config(EndpointConfigName="tagged-config")
            sm.delete_model(ModelName="Tagged-Model")
            for kind in ("model", "endpoint configuration", "endpoint"):
                code, message, status = error(sm.list_tags, ResourceArn=arns[kind])
                assert code == "ValidationException" and message == f'Could not find {kind} "{arns[kind]}".', message
            sm.create_model(ModelName="Tagged-Model", PrimaryContainer={"ModelDataUrl": url})
            assert sm.list_tags(ResourceArn=arns["model"])["Tags"] == []
            assert len(sm.list_tags(ResourceArn=arns["transform job"])["Tags"]) == 50  # jobs are kept, with their tags
            print("ok")
            """#, server: server)
        await server.stop()
    }

    @Test("create_transform_job, the transform_job_completed_or_stopped waiter, describe, list and stop")
    func transformJob() async throws {
        let server = try await ServalServer()
        try await runScript(
            #"""
            sm.create_model(ModelName="model-a", PrimaryContainer={"ModelDataUrl": upload("a")})
            s3.create_bucket(Bucket="batch")
            s3.put_object(Bucket="batch", Key="in/data.txt", Body=b"one\ntwo\nthree\n")
            arn = sm.create_transform_job(
                TransformJobName="job-1", ModelName="model-a", BatchStrategy="SingleRecord",
                TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://batch/in/"}},
                                "ContentType": "text/plain", "SplitType": "Line"},
                TransformOutput={"S3OutputPath": "s3://batch/out", "AssembleWith": "Line"},
                TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})["TransformJobArn"]
            assert arn == "arn:aws:sagemaker:eu-west-2:000000000000:transform-job/job-1", arn
            sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName="job-1", WaiterConfig=fast)
            job = sm.describe_transform_job(TransformJobName="job-1")
            assert job["TransformJobStatus"] == "Completed" and job["TransformJobArn"] == arn, job
            assert job["TransformResources"]["InstanceType"] == "ml.m5.large" and job["CreationTime"].year >= 2024, job
            lines = s3.get_object(Bucket="batch", Key="out/data.txt.out")["Body"].read().decode().splitlines()
            assert [json.loads(line)["echo"].strip() for line in lines] == ["one", "two", "three"], lines
            summaries = sm.list_transform_jobs(StatusEquals="Completed")["TransformJobSummaries"]
            assert [(s["TransformJobName"], s["TransformJobArn"]) for s in summaries] == [("job-1", arn)], summaries
            sm.stop_transform_job(TransformJobName="job-1")
            assert sm.describe_transform_job(TransformJobName="job-1")["TransformJobStatus"] == "Completed"
            code, message, status = error(sm.create_transform_job, TransformJobName="job-1", ModelName="model-a",
                TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://batch/in/"}}},
                TransformOutput={"S3OutputPath": "s3://batch/out"}, TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
            assert code == "ResourceInUse", (code, message)
            code, message, status = error(sm.create_transform_job, TransformJobName="job-2", ModelName="nope",
                TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://batch/in/"}}},
                TransformOutput={"S3OutputPath": "s3://batch/out"}, TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
            assert code == "ValidationException" and "Could not find model" in message, (code, message)
            print("ok")
            """#, server: server)
    }
}
