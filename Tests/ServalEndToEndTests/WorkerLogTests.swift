import Foundation
import NIOHTTP1
import ServalAPI
import ServalClient
import ServalCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Model workers' output where SageMaker's clients look for it: CloudWatch Logs (boto3's `logs` client and the
/// SageMaker SDK's log tailing), `GET /endpoints/{name}/logs` and `GET /transform-jobs/{name}/logs`, and
/// `serval logs`. A real `serval serve` and real workers printing known lines.
@Suite("Worker logs", .serialized)
struct WorkerLogTests {
    /// Prints known lines when it loads (stdout and stderr) and for each request (the request's tag); answers its pid.
    static let loudModel = """
        import json, os, sys
        def model_fn(model_dir):
            print("MARKER load pid=%d" % os.getpid())
            print("MARKER stderr at load", file=sys.stderr)
            return {}
        def input_fn(body, content_type):
            return json.loads(body)
        def predict_fn(data, model):
            print("MARKER predict %s" % data["tag"])
            return {"pid": os.getpid()}
        def output_fn(prediction, accept):
            return json.dumps(prediction), "application/json"
        """

    /// boto3's `logs` client on Serval's main port and helpers that read to the end the way clients do.
    static let prelude = SageMakerControlPlaneTests.prelude + #"""
        logs = boto3.client("logs", endpoint_url=f"http://127.0.0.1:{port}", **session)
        group = "/aws/sagemaker/Endpoints/loud"

        def wait_for(check, what, timeout=60):
            deadline = time.time() + timeout
            while True:
                value = check()
                if value:
                    return value
                if time.time() > deadline:
                    raise AssertionError("timed out waiting for " + what)
                time.sleep(0.1)

        def streams(group, limit=50, **extra):
            """Every stream name, paging with nextToken until a page comes without one; and the number of calls."""
            names, calls, arguments = [], 0, dict(logGroupName=group, limit=limit, **extra)
            while True:
                page = logs.describe_log_streams(**arguments)
                calls += 1
                names += [s["logStreamName"] for s in page["logStreams"]]
                if "nextToken" not in page:
                    return names, calls
                assert calls < 20, "DescribeLogStreams never ended"
                arguments["nextToken"] = page["nextToken"]

        def messages(group, stream, limit=10000):
            """A stream's messages from the head, as the SDK reads them: until a page is empty."""
            out, arguments, calls = [], dict(logGroupName=group, logStreamName=stream, startFromHead=True, limit=limit), 0
            while True:
                page = logs.get_log_events(**arguments)
                calls += 1
                assert calls < 100, "GetLogEvents never ended"
                out += [e["message"] for e in page["events"]]
                if not page["events"]:
                    assert page["nextForwardToken"] == arguments.get("nextToken", page["nextForwardToken"])
                    return out
                arguments["nextToken"] = page["nextForwardToken"]

        """#

    func invoke(_ server: ServalServer, tag: String) async throws -> pid_t {
        let response = try await server.invoke("loud", json: #"{"tag": "\#(tag)"}"#)
        #expect(response.status == 200, "\(response.text)")
        return pid_t(try #require(try jsonObject(response)["pid"] as? Int))
    }

    @Test("an endpoint's worker output through boto3's logs client (all three actions), REST and serval logs; a restarted worker is a new stream and the old one stays readable; logs outlive Serval's restart")
    func endpointLogs() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer()
        let package = try Packages.custom(in: folder.path, name: "loud", source: Self.loudModel)
        let deployed = try await server.deploy(package, name: "loud")
        #expect(deployed.status == "InService", "\(deployed.failureReason ?? "")")
        let firstPid = try await invoke(server, tag: "first")

        let first = try await python(
            Self.prelude + #"""
            # The group appears with the worker's first line; one stream, <variant>/<instance id>, no nextToken.
            names, calls = wait_for(lambda: (lambda r: r if r[0] else None)(streams(group)), "a stream", 30)
            assert calls == 1 and len(names) == 1 and names[0].startswith("AllTraffic/i-"), names
            stream = names[0]
            lines = wait_for(lambda: (lambda m: m if "MARKER predict first" in m else None)(messages(group, stream)), "the predict line")
            assert f"MARKER load pid={sys.argv[3]}" in lines and "MARKER stderr at load" in lines, lines
            assert any(l.startswith("serval_worker: loaded") for l in lines), lines
            assert lines.index(f"MARKER load pid={sys.argv[3]}") < lines.index("MARKER predict first"), lines
            # Paging one event at a time reads the same, and ends.
            assert messages(group, stream, limit=1) == lines

            # Without startFromHead: the newest events; the backward token reads older ones.
            newest = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=1)
            assert [e["message"] for e in newest["events"]] == ["MARKER predict first"], newest
            older = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=1, nextToken=newest["nextBackwardToken"])
            assert [e["message"] for e in older["events"]] == [lines[-2]], older

            found = logs.filter_log_events(logGroupName=group, filterPattern="MARKER predict")
            assert [(e["logStreamName"], e["message"]) for e in found["events"]] == [(stream, "MARKER predict first")], found
            assert "nextToken" not in found and found["searchedLogStreams"][0]["logStreamName"] == stream, found
            found = logs.filter_log_events(logGroupName=group, logStreamNamePrefix="AllTraffic/", filterPattern='"MARKER load" -stderr')
            assert [e["message"] for e in found["events"]] == [f"MARKER load pid={sys.argv[3]}"], found
            paged, arguments = [], dict(logGroupName=group, filterPattern="MARKER", limit=1)
            while True:
                page = logs.filter_log_events(**arguments)
                paged += [e["message"] for e in page["events"]]
                if "nextToken" not in page:
                    break
                arguments["nextToken"] = page["nextToken"]
            assert paged == [l for l in lines if "MARKER" in l], paged

            # CloudWatch's errors.
            assert error(logs.describe_log_streams, logGroupName="/aws/sagemaker/Endpoints/nothing")[0] == "ResourceNotFoundException"
            assert error(logs.get_log_events, logGroupName=group, logStreamName="AllTraffic/i-none")[0] == "ResourceNotFoundException"
            assert error(logs.describe_log_streams, logGroupName=group, limit=51)[:3:2] == ("InvalidParameterException", 400)
            assert error(logs.describe_log_streams, logGroupName=group, orderBy="LastEventTime", logStreamNamePrefix="A")[0] == "InvalidParameterException"
            assert error(logs.get_log_events, logGroupName=group, logStreamName=stream, nextToken="garbage")[0] == "InvalidParameterException"
            code, message, _ = error(logs.filter_log_events, logGroupName=group, filterPattern='{ $.level = "error" }')
            assert code == "InvalidParameterException" and "term patterns" in message, message
            code, message, _ = error(logs.create_log_group, logGroupName="/mine")
            assert code == "UnknownOperationException" and "CreateLogGroup" in message, message
            print("stream", stream)
            print("ok")
            """#, "\(server.port)", "\(server.s3Port)", "\(firstPid)")
        #expect(first.contains("ok"), "\(first)")
        let firstStream = try #require(first.split(separator: "\n").first { $0.hasPrefix("stream ") }).dropFirst("stream ".count)

        // The worker dies; its replacement is a new instance with a new stream.
        kill(firstPid, SIGKILL)
        var secondPid: pid_t = 0
        try await eventually(timeout: .seconds(120), "the restarted worker answers") {
            let response = try await server.invoke("loud", json: #"{"tag": "second"}"#)
            guard response.status == 200, let pid = try jsonObject(response)["pid"] as? Int else { return false }
            secondPid = pid_t(pid)
            return true
        }
        #expect(secondPid != firstPid)
        let second = try await python(
            Self.prelude + #"""
            old = sys.argv[3]
            names, _ = wait_for(lambda: (lambda r: r if len(r[0]) == 2 else None)(streams(group)), "two streams")
            new = [n for n in names if n != old][0]
            assert old in names and new.startswith("AllTraffic/i-"), names
            # One stream a page: the first page has a token, the last none, and paging ends.
            assert streams(group, limit=1) == (sorted(names), 2), streams(group, limit=1)
            assert streams(group, limit=2) == (sorted(names), 1)
            assert streams(group, orderBy="LastEventTime", descending=True)[0][0] == new
            assert "MARKER predict first" in messages(group, old) and "MARKER predict second" not in messages(group, old)
            lines = wait_for(lambda: (lambda m: m if "MARKER predict second" in m else None)(messages(group, new)), "the new stream")
            assert f"MARKER load pid={sys.argv[4]}" in lines, lines
            print("ok")
            """#, "\(server.port)", "\(server.s3Port)", String(firstStream), "\(secondPid)")
        #expect(second.contains("ok"), "\(second)")

        // REST: every stream's lines in the order written; since, limit and nextToken; errors.
        let page = try await server.client.logs(.endpoint("loud"))
        #expect(page.logGroup == "/aws/sagemaker/Endpoints/loud")
        let messages = page.events.map(\.message)
        #expect(messages.filter { $0.hasPrefix("MARKER predict") } == ["MARKER predict first", "MARKER predict second"])
        #expect(page.events.first { $0.message == "MARKER predict first" }?.stream == String(firstStream))
        #expect(Timestamp(iso8601: page.events[0].time) != nil)
        let limited = try await server.client.logs(.endpoint("loud"), limit: 2)
        #expect(limited.events.map(\.message) == Array(messages.prefix(2)))
        let rest = try await server.client.logs(.endpoint("loud"), nextToken: limited.nextToken)
        #expect(rest.events.map(\.message) == Array(messages.dropFirst(2)))
        let future = try await server.client.logs(.endpoint("loud"), since: Timestamp(millisecondsSinceEpoch: Int64(Date().timeIntervalSince1970 * 1000) + 3_600_000))
        #expect(future.events.isEmpty)
        for (query, status) in [("?since=yesterday", 400), ("?limit=0", 400), ("?limit=10001", 400), ("?nextToken=b%2F1", 400)] {
            let response = try await server.client.send(.GET, "/endpoints/loud/logs" + query)
            #expect(response.status == status, "\(query): \(response.text)")
        }
        #expect(try await server.client.send(.GET, "/endpoints/nothing/logs").status == 404)
        #expect(try await server.client.send(.GET, "/transform-jobs/nothing/logs").status == 404)

        // serval logs: prints and exits; unknown names fail.
        let environment = ["SERVAL_URL": server.url]
        let printed = try await runServal(["logs", "loud"], environment: environment)
        #expect(printed.status == 0, "\(printed.output)")
        #expect(printed.output.contains(" \(firstStream) MARKER predict first\n"), "\(printed.output)")
        #expect(printed.output.contains("MARKER predict second"))
        let missing = try await runServal(["logs", "nothing"], environment: environment)
        #expect(missing.status != 0 && missing.output.contains("nothing"), "\(missing.output)")
        let badSince = try await runServal(["logs", "loud", "--since", "soon"], environment: environment)
        #expect(badSince.status != 0 && badSince.output.contains("--since"), "\(badSince.output)")
        let recent = try await runServal(["logs", "loud", "--since", "1h"], environment: environment)
        #expect(recent.output.contains("MARKER predict second"), "\(recent.output)")

        // serval logs --follow: what there is, then only new lines, until interrupted.
        let follower = Process()
        follower.executableURL = URL(fileURLWithPath: servalBinary)
        follower.arguments = ["logs", "loud", "--follow"]
        follower.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let followed = OutputBuffer()
        followed.collect(from: follower)
        try follower.run()
        defer { if follower.isRunning { follower.terminate() } }
        try await eventually("the follower prints what there is") { followed.text.contains("MARKER predict second") }
        _ = try await invoke(server, tag: "third")
        try await eventually("the follower prints the new line") { followed.text.contains("MARKER predict third") }
        #expect(follower.isRunning)
        let occurrences = followed.text.components(separatedBy: "MARKER predict first").count - 1
        #expect(occurrences == 1, "\(followed.text)")
        follower.terminate()
        follower.waitUntilExit()

        // After a restart of Serval the lines are still there (the endpoint's workers start new streams).
        await server.stop()
        try await server.restart()
        let afterRestart = try await server.client.logs(.endpoint("loud"))
        #expect(afterRestart.events.map(\.message).filter { $0.hasPrefix("MARKER predict") } == [
            "MARKER predict first", "MARKER predict second", "MARKER predict third",
        ])
        // Deleting the endpoint keeps its logs, as SageMaker does; they age out with --log-retention-days.
        _ = try await server.client.send(.DELETE, "/endpoints/loud")
        try await eventually("the endpoint is gone") { try await server.client.send(.GET, "/endpoints/loud").status == 404 }
        #expect(try await server.client.logs(.endpoint("loud")).events.contains { $0.message == "MARKER predict first" })
    }

    @Test("the SageMaker SDK's logs_for_transform_job(wait=True) prints a running transform job's worker output and returns when it ends; REST and serval logs --transform-job show it")
    func transformJobLogs() async throws {
        let server = try await ServalServer()
        let output = try await python(
            Self.prelude + #"""
            import contextlib, os
            os.environ["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"] = f"http://127.0.0.1:{port}"
            import sagemaker

            source = (b"import time\n"
                      b"def model_fn(model_dir):\n"
                      b"    print('MARKER transform worker up')\n"
                      b"    return None\n"
                      b"def transform_fn(model, body, content_type, accept):\n"
                      b"    text = body.decode() if isinstance(body, bytes) else body\n"
                      b"    time.sleep(0.5)\n"
                      b"    print('MARKER record ' + text.strip())\n"
                      b"    return text.upper(), 'text/plain'\n")
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                info = tarfile.TarInfo("code/inference.py")
                info.size = len(source)
                tar.addfile(info, io.BytesIO(source))
            s3.create_bucket(Bucket="batch")
            s3.put_object(Bucket="batch", Key="model/model.tar.gz", Body=buffer.getvalue())
            s3.put_object(Bucket="batch", Key="in/records.txt", Body=b"".join(b"row-%d\n" % i for i in range(6)))
            sm.create_model(ModelName="shouty", PrimaryContainer={"ModelDataUrl": "s3://batch/model/model.tar.gz"})
            sm.create_transform_job(
                TransformJobName="shouty-job", ModelName="shouty", BatchStrategy="SingleRecord",
                TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://batch/in/"}},
                                "ContentType": "text/plain", "SplitType": "Line"},
                TransformOutput={"S3OutputPath": "s3://batch/out", "AssembleWith": "Line"},
                TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
            assert sm.describe_transform_job(TransformJobName="shouty-job")["TransformJobStatus"] == "InProgress"

            boto_session = boto3.Session(**session)
            sdk = sagemaker.Session(boto_session=boto_session, sagemaker_client=sm, sagemaker_runtime_client=rt)
            printed = io.StringIO()
            started = time.time()
            with contextlib.redirect_stdout(printed):
                sdk.logs_for_transform_job("shouty-job", wait=True, poll=1)
            text = printed.getvalue()
            assert sm.describe_transform_job(TransformJobName="shouty-job")["TransformJobStatus"] == "Completed"
            for i in range(6):
                assert f"MARKER record row-{i}" in text, text
            assert "MARKER transform worker up" in text and text.count("MARKER record row-0") == 1, text
            streams_now, _ = streams("/aws/sagemaker/TransformJobs", logStreamNamePrefix="shouty-job/")
            assert len(streams_now) == 1 and streams_now[0].startswith("shouty-job/i-"), streams_now
            print("took %.1f s" % (time.time() - started))
            print("ok")
            """#, "\(server.port)", "\(server.s3Port)")
        #expect(output.contains("ok"), "\(output)")

        let page = try await server.client.logs(.transformJob("shouty-job"))
        #expect(page.logGroup == "/aws/sagemaker/TransformJobs")
        #expect(page.events.filter { $0.message.hasPrefix("MARKER record") }.count == 6)
        #expect(page.events.allSatisfy { $0.stream.hasPrefix("shouty-job/i-") })
        let printed = try await runServal(["logs", "--transform-job", "shouty-job"], environment: ["SERVAL_URL": server.url])
        #expect(printed.status == 0 && printed.output.contains("MARKER record row-5"), "\(printed.output)")
        // Without --transform-job the name is an endpoint's, and there is none.
        let asEndpoint = try await runServal(["logs", "shouty-job"], environment: ["SERVAL_URL": server.url])
        #expect(asEndpoint.status != 0, "\(asEndpoint.output)")
    }
}
