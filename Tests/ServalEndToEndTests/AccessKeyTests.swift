import Foundation
import NIOCore
import NIOHTTP1
import ServalAPI
import ServalClient
import ServalCore
import Testing

/// A key as `serval keys create` prints it.
struct CreatedKey: Decodable {
    var AccessKeyId: String
    var SecretAccessKey: String
    var Role: String

    /// `ACCESS_KEY_ID:SECRET`.
    var apiKey: String { "\(AccessKeyId):\(SecretAccessKey)" }
}

/// Runs `serval` with `arguments` and at most `timeout`; a process still running then is killed and reported.
func runServal(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(30)) async throws
    -> (status: Int32, output: String)
{
    let process = Process()
    process.executableURL = URL(fileURLWithPath: servalBinary)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let output = OutputBuffer()
    output.collect(from: process)
    try process.run()
    let deadline = ContinuousClock.now + timeout
    while process.isRunning && ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(20))
    }
    if process.isRunning {
        process.terminate()
        process.waitUntilExit()
        throw ServalError(.internalFailure, "serval \(arguments.joined(separator: " ")) was still running:\n\(output.text)")
    }
    try await Task.sleep(for: .milliseconds(50))
    return (process.terminationStatus, output.text)
}

/// Creates a key directly on a data folder, as an operator bootstraps the first admin.
func bootstrapKey(role: String, dataDirectory: String, description: String? = nil) async throws -> CreatedKey {
    var arguments = ["keys", "create", "--role", role, "--data-dir", dataDirectory]
    if let description { arguments += ["--description", description] }
    let result = try await runServal(arguments)
    #expect(result.status == 0, "\(result.output)")
    return try JSONDecoder().decode(CreatedKey.self, from: Data(result.output.utf8))
}

@Suite("Access keys, end to end", .serialized)
struct AccessKeyTests {
    @Test("authentication is off by default on loopback; a non-loopback address without --auth refuses to start")
    func defaults() async throws {
        let server = try await ServalServer()
        defer { Task { await server.stop() } }
        #expect(try await server.client.send(.GET, "/models").status == 200)
        #expect(!FileManager.default.fileExists(atPath: server.dataDirectory + "/master.key"))

        let folder = try TemporaryFolder()
        let refused = try await runServal(
            [
                "serve", "--host", "0.0.0.0", "--port", "0", "--grpc-port", "0", "--s3-port", "0", "--data-dir", folder.path,
                "--worker-path", repositoryRoot + "/python",
            ], environment: ["SERVAL_AUTH": ""])
        #expect(refused.status != 0)
        #expect(refused.output.contains("Refusing to listen on 0.0.0.0 without authentication"), "\(refused.output)")
        #expect(refused.output.contains("--allow-unauthenticated"))
    }

    @Test("bootstrap an admin on the data folder, admin creates keys, 401 and 403, roles over REST, CLI and boto3")
    func keysAndRoles() async throws {
        let folder = try TemporaryFolder()
        let package = try await Packages.logisticRegression(in: folder.path)
        let data = folder.path + "/data"
        let admin = try await bootstrapKey(role: "admin", dataDirectory: data, description: "bootstrap")
        #expect(admin.Role == "admin")
        #expect(admin.AccessKeyId.hasPrefix("SK") && admin.AccessKeyId.count == 20)
        let attributes = try FileManager.default.attributesOfItem(atPath: data + "/master.key")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)

        let server = try await ServalServer(dataDirectory: data, arguments: ["--auth"])
        defer { Task { await server.stop() } }

        // Open routes.
        #expect(try await server.client.send(.GET, "/ping").status == 200)
        #expect(try await server.client.send(.GET, "/v2/health/live").status == 200)
        #expect(try await server.client.send(.GET, "/v2/health/ready").status == 200)

        // 401: no key, a wrong secret, an unknown id, a malformed header; in each protocol's shape.
        let missing = try await server.client.send(.GET, "/models")
        #expect(missing.status == 401)
        #expect(try jsonObject(missing)["code"] as? String == "Unauthenticated")
        let wrongSecret = ServalClient(baseURL: server.url, apiKey: admin.AccessKeyId + ":wrong")
        #expect(try await wrongSecret.send(.GET, "/models").status == 401)
        let unknown = ServalClient(baseURL: server.url, apiKey: "SKAAAAAAAAAAAAAAAAAA:" + admin.SecretAccessKey)
        #expect(try await unknown.send(.GET, "/models").status == 401)
        #expect(try await server.client.send(.GET, "/models", headers: [("Authorization", "Basic abc")]).status == 401)
        let oip = try await server.client.send(.POST, "/v2/models/x/infer", body: ByteBuffer(string: "{}"))
        #expect(oip.status == 401)
        #expect(try jsonObject(oip)["error"] is String)
        let runtime = try await server.client.invoke("x", body: ByteBuffer(string: "[]"))
        #expect(runtime.status == 401)
        #expect(runtime.header("x-amzn-ErrorType") == "MissingAuthenticationTokenException")

        // The admin creates a deployer and an invoker through the API; the CLI lists them with the admin key.
        server.apiKey = admin.apiKey
        let deployerKey = try await server.client.createAccessKey(role: "deployer", description: "ci")
        let invokerKey = try await server.client.createAccessKey(role: "invoker", description: nil)
        #expect(deployerKey.role == "deployer" && invokerKey.role == "invoker")
        let deployerSecret = try #require(deployerKey.secretAccessKey)
        let invokerSecret = try #require(invokerKey.secretAccessKey)
        let deployer = "\(deployerKey.accessKeyId):\(deployerSecret)"
        let invoker = "\(invokerKey.accessKeyId):\(invokerSecret)"
        let listed = try await server.client.accessKeys()
        #expect(Set(listed.map(\.accessKeyId)) == [admin.AccessKeyId, deployerKey.accessKeyId, invokerKey.accessKeyId])
        #expect(listed.allSatisfy { $0.secretAccessKey == nil })
        let document = try jsonObject(try await server.client.send(.GET, "/openapi.json"))
        #expect((document["paths"] as? [String: Any])?["/access-keys"] != nil)
        let cli = try await runServal(["keys", "list", "--server", server.url], environment: ["SERVAL_API_KEY": admin.apiKey])
        #expect(cli.status == 0 && cli.output.contains(invokerKey.accessKeyId), "\(cli.output)")
        let cliWithout = try await runServal(["keys", "list", "--server", server.url], environment: ["SERVAL_API_KEY": ""])
        #expect(cliWithout.status != 0 && cliWithout.output.contains("no credentials"), "\(cliWithout.output)")

        // 403: the invoker may not deploy, describe or manage keys; the deployer may not manage keys.
        server.apiKey = invoker
        let denied = try await server.client.send(
            .POST, "/endpoints", headers: [("Content-Type", "application/json")],
            body: ByteBuffer(string: #"{"name": "lr", "config": "lr"}"#))
        #expect(denied.status == 403)
        #expect(try jsonObject(denied)["code"] as? String == "AccessDenied")
        #expect(try await server.client.send(.GET, "/models").status == 403)
        await #expect(throws: ServalError.self) { _ = try await server.client.createModel(name: "lr", package: package.path) }
        #expect(try await server.client.send(.GET, "/access-keys").status == 403)
        server.apiKey = deployer
        #expect(try await server.client.send(.GET, "/access-keys").status == 403)

        // The deployer deploys (REST and the CLI's bearer header), the invoker invokes.
        let deploy = try await runServal(
            ["deploy", package.path, "--name", "lr", "--server", server.url, "--api-key", deployer], timeout: .seconds(600))
        #expect(deploy.status == 0, "\(deploy.output)")
        server.apiKey = invoker
        let rows = package.probe.map { "[" + $0.map { String($0) }.joined(separator: ",") + "]" }
        let answer = try await server.invoke("lr", json: "[\(rows.joined(separator: ","))]")
        #expect(answer.status == 200, "\(answer.text)")
        let cliInvoke = try await runServal(
            ["invoke", "lr", "--body", "[\(rows[0])]", "--server", server.url], environment: ["SERVAL_API_KEY": invoker])
        #expect(cliInvoke.status == 0, "\(cliInvoke.output)")

        // boto3: SigV4 on the runtime, the control plane and S3.
        let output = try await python(
            Self.boto3Script, server.url, server.s3URL, invoker, deployer, admin.apiKey, rows[0], "127.0.0.1:\(server.grpcPort)")
        #expect(output.contains("boto3 ok"), "\(output)")

        // The CLI signs object requests with its key.
        let file = folder.path + "/object.txt"
        try "hello".write(toFile: file, atomically: true, encoding: .utf8)
        let put = try await runServal(
            ["objects", "put", file, "s3://cli/object.txt", "--s3-url", server.s3URL, "--api-key", deployer])
        #expect(put.status == 0, "\(put.output)")
        let get = try await runServal(
            ["objects", "get", "s3://cli/object.txt", "-", "--s3-url", server.s3URL], environment: ["SERVAL_API_KEY": deployer])
        #expect(get.status == 0 && get.output.contains("hello"), "\(get.output)")
        let unsigned = try await runServal(
            ["objects", "ls", "s3://cli", "--s3-url", server.s3URL], environment: ["SERVAL_API_KEY": ""])
        #expect(unsigned.status != 0 && unsigned.output.contains("AccessDenied"), "\(unsigned.output)")

        // A deleted key is refused from then on.
        server.apiKey = admin.apiKey
        try await server.client.deleteAccessKey(invokerKey.accessKeyId)
        server.apiKey = invoker
        #expect(try await server.invoke("lr", json: "[\(rows[0])]").status == 401)

        // No secret reaches the log or the database in clear.
        let secrets = [admin.SecretAccessKey, deployerSecret, invokerSecret]
        let log = server.log
        #expect(!secrets.contains { log.contains($0) })
        for file in ["serval.sqlite", "serval.sqlite-wal"] {
            let bytes = FileManager.default.contents(atPath: data + "/" + file) ?? Data()
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(!secrets.contains { text.contains($0) }, "\(file) holds a secret in clear")
        }
    }

    /// argv: URL, S3 URL, invoker, deployer, admin (`ID:SECRET`), one JSON row, the gRPC address. Also checks gRPC
    /// with tritonclient: health open, metadata needs a bearer token, statistics need a deployer.
    static let boto3Script = """
        import datetime, json, sys, urllib.request
        import boto3, botocore.auth
        from botocore.config import Config
        from botocore.exceptions import ClientError

        url, s3_url, row = sys.argv[1], sys.argv[2], sys.argv[6]
        invoker, deployer, admin = (tuple(k.split(":", 1)) for k in sys.argv[3:6])
        config = Config(retries={"mode": "standard", "max_attempts": 1}, s3={"addressing_style": "path"})

        def client(service, key, endpoint=url):
            return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key[0],
                                aws_secret_access_key=key[1], config=config)

        def code(call):
            try:
                call()
            except ClientError as error:
                return error.response["Error"]["Code"], error.response["Error"].get("Message", "")
            raise AssertionError("the call succeeded")

        body = "[" + row + "]"
        runtime = client("sagemaker-runtime", invoker)
        answer = runtime.invoke_endpoint(EndpointName="lr", Body=body, ContentType="application/json")
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200, answer
        print("invoke:", answer["Body"].read())

        wrong = client("sagemaker-runtime", (invoker[0], invoker[1][:-1] + ("A" if invoker[1][-1] != "A" else "B")))
        failure = code(lambda: wrong.invoke_endpoint(EndpointName="lr", Body=body, ContentType="application/json"))
        assert failure[0] == "InvalidSignatureException", failure

        unknown = client("sagemaker-runtime", ("SKAAAAAAAAAAAAAAAAAA", invoker[1]))
        failure = code(lambda: unknown.invoke_endpoint(EndpointName="lr", Body=body, ContentType="application/json"))
        assert failure[0] == "UnrecognizedClientException", failure

        # The body changes after signing: same length, other bytes.
        tampered = client("sagemaker-runtime", invoker)
        def tamper(request, **kwargs):
            original = request.body if isinstance(request.body, bytes) else request.body.encode()
            request.body = original.replace(b"[", b" ", 1)
        tampered.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", tamper)
        failure = code(lambda: tampered.invoke_endpoint(EndpointName="lr", Body=body, ContentType="application/json"))
        assert failure[0] == "InvalidSignatureException", failure

        # Signed with a clock 20 minutes behind.
        real_now = botocore.auth.get_current_datetime
        botocore.auth.get_current_datetime = lambda: real_now() - datetime.timedelta(minutes=20)
        try:
            failure = code(lambda: runtime.invoke_endpoint(EndpointName="lr", Body=body, ContentType="application/json"))
        finally:
            botocore.auth.get_current_datetime = real_now
        assert failure[0] == "InvalidSignatureException" and "expired" in failure[1], failure

        # The control plane: a deployer's signed calls work; an invoker may not list or delete (JSON 1.1's
        # AccessDeniedException).
        deployer_control = client("sagemaker", deployer)
        assert "lr" in [e["EndpointName"] for e in deployer_control.list_endpoints()["Endpoints"]]
        assert deployer_control.describe_endpoint(EndpointName="lr")["EndpointStatus"] == "InService"
        control = client("sagemaker", invoker)
        failure = code(lambda: control.list_endpoints())
        assert failure[0] == "AccessDeniedException", failure
        failure = code(lambda: control.delete_endpoint(EndpointName="lr"))
        assert failure[0] == "AccessDeniedException", failure
        failure = code(lambda: client("sagemaker", (admin[0], "x" * 40)).list_models())
        assert failure[0] == "InvalidSignatureException", failure

        # CloudWatch Logs, signed for "logs" on the same port: a deployer reads the workers' output, an invoker may not.
        logs = client("logs", deployer)
        group = "/aws/sagemaker/Endpoints/lr"
        for _ in range(300):
            try:
                if logs.describe_log_streams(logGroupName=group)["logStreams"]:
                    break
            except ClientError as error:
                assert error.response["Error"]["Code"] == "ResourceNotFoundException", error.response
            __import__("time").sleep(0.1)
        assert logs.describe_log_streams(logGroupName=group)["logStreams"][0]["logStreamName"].startswith("AllTraffic/i-")
        failure = code(lambda: client("logs", invoker).describe_log_streams(logGroupName=group))
        assert failure[0] == "AccessDeniedException", failure
        failure = code(lambda: client("logs", (deployer[0], "x" * 40)).get_log_events(logGroupName=group, logStreamName="x"))
        assert failure[0] == "InvalidSignatureException", failure

        # S3: signed puts and gets, a wrong secret, an unknown key, a role that may not write, a presigned URL.
        s3 = client("s3", deployer, s3_url)
        s3.create_bucket(Bucket="signed")
        s3.put_object(Bucket="signed", Key="a/b.txt", Body=b"signed bytes")
        assert s3.get_object(Bucket="signed", Key="a/b.txt")["Body"].read() == b"signed bytes"
        failure = code(lambda: client("s3", (deployer[0], "x" * 40), s3_url).get_object(Bucket="signed", Key="a/b.txt"))
        assert failure[0] == "SignatureDoesNotMatch", failure
        failure = code(lambda: client("s3", (deployer[0], "x" * 40), s3_url).put_object(Bucket="signed", Key="c", Body=b"x"))
        assert failure[0] == "SignatureDoesNotMatch", failure
        failure = code(lambda: client("s3", ("SKAAAAAAAAAAAAAAAAAA", deployer[1]), s3_url).list_buckets())
        assert failure[0] == "InvalidAccessKeyId", failure
        failure = code(lambda: client("s3", invoker, s3_url).put_object(Bucket="signed", Key="c", Body=b"x"))
        assert failure[0] == "AccessDenied", failure
        legacy = s3.generate_presigned_url("get_object", Params={"Bucket": "signed", "Key": "a/b.txt"}, ExpiresIn=60)
        try:
            urllib.request.urlopen(legacy)
            raise AssertionError("a Signature Version 2 URL worked")
        except urllib.error.HTTPError as error:
            text = error.read()
            assert error.code == 401 and b"AuthorizationQueryParametersError" in text and b"s3v4" in text, text
        v4 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id=deployer[0],
                          aws_secret_access_key=deployer[1], config=config.merge(Config(signature_version="s3v4")))
        presigned = v4.generate_presigned_url("get_object", Params={"Bucket": "signed", "Key": "a/b.txt"}, ExpiresIn=60)
        assert urllib.request.urlopen(presigned).read() == b"signed bytes"
        try:
            urllib.request.urlopen(presigned.replace("X-Amz-Expires=60", "X-Amz-Expires=61"))
            raise AssertionError("a presigned URL with an altered expiry worked")
        except urllib.error.HTTPError as error:
            assert error.code == 401 and b"SignatureDoesNotMatch" in error.read(), error

        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException
        grpc = grpcclient.InferenceServerClient(sys.argv[7])
        assert grpc.is_server_live() and grpc.is_server_ready()
        def grpc_status(call):
            try:
                call()
            except InferenceServerException as error:
                return str(error.status())
            raise AssertionError("the call succeeded")
        assert "UNAUTHENTICATED" in grpc_status(lambda: grpc.get_model_metadata("lr")), "no token"
        wrong_token = {"authorization": "Bearer " + invoker[0] + ":nope"}
        assert "UNAUTHENTICATED" in grpc_status(lambda: grpc.get_model_metadata("lr", headers=wrong_token))
        token = {"authorization": "Bearer " + ":".join(invoker)}
        assert grpc.get_model_metadata("lr", headers=token).name == "lr"
        assert "PERMISSION_DENIED" in grpc_status(lambda: grpc.get_inference_statistics("lr", headers=token))
        print("boto3 ok")
        """
}
