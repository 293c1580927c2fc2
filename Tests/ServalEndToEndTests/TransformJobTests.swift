import Foundation
import NIOCore
import ServalAPI
import ServalClient
import ServalCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Inputs for transform jobs made at test time: a LogisticRegression on 5 features, CSV and JSON Lines files
/// written into the local object store's folders, and the predictions each file's rows get in-process.
struct TransformFixture {
    let model: String
    /// Expected prediction lines, by input key (relative to the bucket).
    let expected: [String: [String]]

    /// Writes `files` (key → rows) into `bucket` of the server's object store; `kind` is csv, jsonl, csv-id
    /// (an id column first), or gzip (csv, gzip-compressed). Rows are random; some CSV files have blank lines,
    /// CRLF endings or no final newline.
    static func make(
        server: ServalServer, folder: String, bucket: String, files: [String: Int], kind: String = "csv"
    ) async throws -> TransformFixture {
        let spec = files.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        let output = try await python(
            """
            import gzip, json, os, sys
            import numpy as np, joblib
            from sklearn.linear_model import LogisticRegression
            model_dir, root, kind, spec = sys.argv[1:5]
            rng = np.random.default_rng(11)
            X = rng.normal(size=(400, 5)); y = (X[:, 0] + X[:, 1] * 0.5 > 0).astype(int)
            model = LogisticRegression().fit(X, y)
            os.makedirs(model_dir, exist_ok=True)
            joblib.dump(model, os.path.join(model_dir, "model.joblib"))
            expected = {}
            for n, item in enumerate(sorted(spec.split(","))):
                key, rows = item.split("=")
                rows = int(rows)
                data = rng.normal(size=(rows, 5)).round(4)
                predictions = model.predict(data).tolist()
                if kind == "jsonl":
                    lines = [json.dumps({"id": i, "features": r.tolist()}) for i, r in enumerate(data)]
                    expected[key] = [json.dumps({"id": i, "SageMakerOutput": p}, separators=(",", ":")) for i, p in enumerate(predictions)]
                elif kind == "csv-id":
                    lines = [",".join([str(1000 + i)] + [repr(float(v)) for v in r]) for i, r in enumerate(data)]
                    expected[key] = ["%d,%s" % (1000 + i, p) for i, p in enumerate(predictions)]
                else:
                    lines = [",".join(repr(float(v)) for v in r) for r in data]
                    expected[key] = [str(p) for p in predictions]
                if kind == "csv" and n % 3 == 1:
                    text = "\\r\\n".join(lines) + "\\r\\n"       # CRLF endings
                elif kind == "csv" and n % 3 == 2:
                    text = "\\n\\n".join(lines)                  # blank lines, no final newline
                else:
                    text = "\\n".join(lines) + "\\n"
                path = os.path.join(root, key)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                payload = text.encode()
                if kind == "gzip":
                    payload = gzip.compress(payload)
                with open(path, "wb") as f:
                    f.write(payload)
            print(json.dumps(expected))
            """, folder + "/lr5", server.dataDirectory + "/objects/" + bucket, kind, spec)
        let expected = try JSONSerialization.jsonObject(with: Data(output.utf8)) as! [String: [String]]
        return TransformFixture(model: folder + "/lr5", expected: expected)
    }
}

extension ServalServer {
    /// Creates a transform job from a request and waits for it to end.
    func runTransform(_ request: CreateTransformJobRequest, timeout: Duration = .seconds(600)) async throws -> TransformJobDescription {
        _ = try await client.createTransformJob(request)
        return try await client.waitForTransformJob(request.TransformJobName, timeout: timeout)
    }

    /// The lines of a stored object.
    func storedLines(_ uri: String) -> [String]? {
        storedObject(uri).map { String(decoding: $0, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
    }
}

/// A CreateTransformJob request with the tests' defaults.
func transformRequest(
    _ name: String, model: String, input: String, output: String, contentType: String = "text/csv",
    split: String? = "Line", strategy: String? = "MultiRecord", maxPayloadMB: Int? = nil, concurrency: Int? = nil,
    instances: Int? = nil, accept: String? = nil, assemble: String? = "Line", compression: String? = nil,
    inputFilter: String? = nil, outputFilter: String? = nil, join: String? = nil, retries: Int? = nil
) -> CreateTransformJobRequest {
    CreateTransformJobRequest(
        TransformJobName: name, ModelName: model, MaxConcurrentTransforms: concurrency, MaxPayloadInMB: maxPayloadMB,
        BatchStrategy: strategy, ModelClientConfig: retries.map { .init(InvocationsMaxRetries: $0) },
        TransformInput: .init(
            DataSource: .init(S3DataSource: .init(S3DataType: "S3Prefix", S3Uri: input)), ContentType: contentType,
            CompressionType: compression, SplitType: split),
        TransformOutput: .init(S3OutputPath: output, Accept: accept, AssembleWith: assemble),
        TransformResources: .init(InstanceType: "ml.m5.large", InstanceCount: instances),
        DataProcessing: inputFilter == nil && outputFilter == nil && join == nil
            ? nil : .init(InputFilter: inputFilter, OutputFilter: outputFilter, JoinSource: join))
}

@Suite("Batch transform jobs", .serialized)
struct TransformJobTests {
    /// Checks that every input's `.out` holds exactly the expected lines, and that nothing else is under the
    /// output prefix.
    func expectOutputs(
        _ server: ServalServer, _ fixture: TransformFixture, inputPrefix: String, outputBucket: String, outputPrefix: String
    ) {
        let keys = fixture.expected.keys.filter { $0.hasPrefix(inputPrefix) }.sorted()
        let outputs = keys.map { outputPrefix + "/" + $0.dropFirst(inputPrefix.count) + ".out" }
        #expect(server.storedKeys(bucket: outputBucket).filter { $0.hasPrefix(outputPrefix + "/") } == outputs.sorted())
        for (key, output) in zip(keys, outputs) {
            let lines = server.storedLines("s3://\(outputBucket)/\(output)")
            #expect(lines == fixture.expected[key]! + [""], "\(output): \(lines?.count ?? -1) lines for \(fixture.expected[key]!.count) records")
        }
    }

    @Test("CSV across files: MultiRecord units of whole records and SingleRecord give the same lines, in order, one per record")
    func csvAcrossFiles() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer()
        let fixture = try await TransformFixture.make(
            server: server, folder: folder.path, bucket: "tin",
            files: ["big/a.csv": 40_000, "big/b.csv": 1, "big/c.csv": 2_500, "big/d/e.csv": 30_000, "small/x.csv": 120, "small/y.csv": 80, "small/z.csv": 45])
        _ = try await server.client.createModel(name: "lr", package: fixture.model)

        let multi = try await server.runTransform(
            transformRequest("multi", model: "lr", input: "s3://tin/big/", output: "s3://tout/multi", maxPayloadMB: 1, concurrency: 2, instances: 2))
        #expect(multi.TransformJobStatus == "Completed", "\(multi.FailureReason ?? "")")
        #expect(multi.Progress.RecordsTotal == 72_501 && multi.Progress.RecordsDone == 72_501)
        #expect(multi.Progress.ObjectsTotal == 4 && multi.Progress.ObjectsDone == 4)
        #expect(multi.TransformStartTime != nil && multi.TransformEndTime != nil)
        expectOutputs(server, fixture, inputPrefix: "big/", outputBucket: "tout", outputPrefix: "multi")

        for strategy in ["SingleRecord", "MultiRecord"] {
            let job = try await server.runTransform(
                transformRequest(strategy.lowercased(), model: "lr", input: "s3://tin/small/", output: "s3://tout/\(strategy)", strategy: strategy, accept: "text/csv"))
            #expect(job.TransformJobStatus == "Completed", "\(job.FailureReason ?? "")")
            expectOutputs(server, fixture, inputPrefix: "small/", outputBucket: "tout", outputPrefix: strategy)
        }
        let listed = try await server.client.transformJobs(status: "Completed")
        #expect(Set(listed.TransformJobSummaries.map(\.TransformJobName)) == ["multi", "singlerecord", "multirecord"])
    }

    @Test("gzip inputs stream through and give the same lines")
    func gzipInputs() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer()
        let fixture = try await TransformFixture.make(
            server: server, folder: folder.path, bucket: "tin", files: ["gz/a.csv.gz": 30_000, "gz/b.csv.gz": 7], kind: "gzip")
        _ = try await server.client.createModel(name: "lr", package: fixture.model)
        let job = try await server.runTransform(
            transformRequest("gz", model: "lr", input: "s3://tin/gz/", output: "s3://tout/gz", maxPayloadMB: 1, compression: "Gzip"))
        #expect(job.TransformJobStatus == "Completed", "\(job.FailureReason ?? "")")
        #expect(job.Progress.RecordsDone == 30_007)
        expectOutputs(server, fixture, inputPrefix: "gz/", outputBucket: "tout", outputPrefix: "gz")
    }

    @Test("JSON Lines with an input filter, JoinSource Input and an output filter; CSV joins append columns")
    func joinsAndFilters() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer()
        let json = try await TransformFixture.make(
            server: server, folder: folder.path, bucket: "tin", files: ["jl/a.jsonl": 300, "jl/b.jsonl": 5], kind: "jsonl")
        _ = try await server.client.createModel(name: "lr", package: json.model)
        let job = try await server.runTransform(
            transformRequest(
                "jl", model: "lr", input: "s3://tin/jl/", output: "s3://tout/jl", contentType: "application/jsonlines",
                inputFilter: "$.features", outputFilter: "$['id','SageMakerOutput']", join: "Input"))
        #expect(job.TransformJobStatus == "Completed", "\(job.FailureReason ?? "")")
        expectOutputs(server, json, inputPrefix: "jl/", outputBucket: "tout", outputPrefix: "jl")

        let csv = try await TransformFixture.make(
            server: server, folder: folder.path, bucket: "tin", files: ["id/a.csv": 250, "id/b.csv": 3], kind: "csv-id")
        let joined = try await server.runTransform(
            transformRequest(
                "csvjoin", model: "lr", input: "s3://tin/id/", output: "s3://tout/id", accept: "text/csv",
                inputFilter: "$[1:]", outputFilter: "$[0,-1]", join: "Input"))
        #expect(joined.TransformJobStatus == "Completed", "\(joined.FailureReason ?? "")")
        expectOutputs(server, csv, inputPrefix: "id/", outputBucket: "tout", outputPrefix: "id")
    }

    @Test("bad input: unknown model 404, empty prefix 400, invalid JSONPath 400; oversized and rejected records fail the job, naming them")
    func badInput() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer()
        let fixture = try await TransformFixture.make(server: server, folder: folder.path, bucket: "tin", files: ["ok/a.csv": 10])
        _ = try await server.client.createModel(name: "lr", package: fixture.model)

        func refusal(_ request: CreateTransformJobRequest) async -> ServalError? {
            do {
                _ = try await server.client.createTransformJob(request)
                return nil
            } catch {
                return error as? ServalError
            }
        }
        let unknown = await refusal(transformRequest("u", model: "nope", input: "s3://tin/ok/", output: "s3://tout/u"))
        #expect(unknown?.code == .notFound)
        let empty = await refusal(transformRequest("e", model: "lr", input: "s3://tin/none/", output: "s3://tout/e"))
        #expect(empty?.code == .validationError && empty?.message.contains("has no objects") == true)
        let path = await refusal(transformRequest("p", model: "lr", input: "s3://tin/ok/", output: "s3://tout/p", inputFilter: "$[a"))
        #expect(path?.code == .validationError && path?.message.contains("$[a") == true, "\(path?.message ?? "")")
        let payload = await refusal(transformRequest("m", model: "lr", input: "s3://tin/ok/", output: "s3://tout/m", maxPayloadMB: 60, concurrency: 2))
        #expect(payload?.code == .validationError && payload?.message.contains("MaxConcurrentTransforms") == true)
        _ = try await server.runTransform(transformRequest("dup", model: "lr", input: "s3://tin/ok/", output: "s3://tout/dup"))
        let duplicate = await refusal(transformRequest("dup", model: "lr", input: "s3://tin/ok/", output: "s3://tout/dup"))
        #expect(duplicate?.code == .conflict)

        // A line longer than the 1 MB payload.
        let root = server.dataDirectory + "/objects/tin/"
        try FileManager.default.createDirectory(atPath: root + "long", withIntermediateDirectories: true)
        try ("1,2,3,4,5\n" + String(repeating: "7,", count: 600_000) + "7\n").write(toFile: root + "long/a.csv", atomically: true, encoding: .utf8)
        let long = try await server.runTransform(
            transformRequest("long", model: "lr", input: "s3://tin/long/", output: "s3://tout/long", maxPayloadMB: 1))
        #expect(long.TransformJobStatus == "Failed")
        #expect(long.FailureReason?.contains("s3://tin/long/a.csv") == true && long.FailureReason?.contains("record 2") == true, "\(long.FailureReason ?? "")")

        // Record 37 is not numbers: the batch fails, and its records alone name the culprit.
        try FileManager.default.createDirectory(atPath: root + "bad", withIntermediateDirectories: true)
        let rows = (1...60).map { $0 == 37 ? "1,2,oops,4,5" : "1,2,3,4,5" }
        try (rows.joined(separator: "\n") + "\n").write(toFile: root + "bad/a.csv", atomically: true, encoding: .utf8)
        let rejected = try await server.runTransform(
            transformRequest("bad", model: "lr", input: "s3://tin/bad/", output: "s3://tout/bad", retries: 0))
        #expect(rejected.TransformJobStatus == "Failed")
        #expect(rejected.FailureReason?.contains("s3://tin/bad/a.csv, record 37") == true, "\(rejected.FailureReason ?? "")")
        #expect(server.storedKeys(bucket: "tout").filter { $0.hasPrefix("bad/") }.isEmpty)
    }

    @Test("kill -9 of Serval mid-job: after a restart the job resumes from committed units; every record is output exactly once")
    func crashAndResume() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer(arguments: ["--lease-seconds", "2"])
        var files: [String: Int] = [:]
        for index in 0..<6 { files["r/part-\(index).csv"] = 25_000 + index }
        let fixture = try await TransformFixture.make(server: server, folder: folder.path, bucket: "tin", files: files)
        let slow = try Packages.custom(
            in: folder.path, name: "slow-lr",
            source: """
                import io, os, time, joblib, numpy as np

                def model_fn(model_dir):
                    return joblib.load(os.path.join(model_dir, "model.joblib"))

                def transform_fn(model, body, content_type, accept):
                    time.sleep(2.0)
                    X = np.loadtxt(io.StringIO(body.decode() if isinstance(body, bytes) else body), delimiter=",", ndmin=2)
                    return "".join("%d\\n" % p for p in model.predict(X)), "text/csv"
                """)
        try FileManager.default.copyItem(atPath: fixture.model + "/model.joblib", toPath: slow + "/model.joblib")
        _ = try await server.client.createModel(name: "slow", package: slow)
        _ = try await server.client.createTransformJob(
            transformRequest("resume", model: "slow", input: "s3://tin/r/", output: "s3://tout/r", maxPayloadMB: 1, concurrency: 2))
        // Mid-job: some units committed, not all. (Polls may be seconds apart when the whole suite runs on two
        // cores, so the window is the whole run, not its first half, and each payload takes the model 2 s.)
        try await eventually(timeout: .seconds(300), "some records are done") {
            let progress = try await server.client.transformJob("resume").Progress
            return progress.RecordsDone > 0 && progress.RecordsDone < progress.RecordsTotal
        }
        await server.kill()
        try await server.restart()
        let job = try await server.client.waitForTransformJob("resume", timeout: .seconds(300))
        #expect(job.TransformJobStatus == "Completed", "\(job.FailureReason ?? "")")
        #expect(job.Progress.RecordsDone == job.Progress.RecordsTotal)
        expectOutputs(server, fixture, inputPrefix: "r/", outputBucket: "tout", outputPrefix: "r")
    }

    @Test("stop: the job ends Stopped; outputs are whole or absent, never partial")
    func stop() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer()
        var files: [String: Int] = [:]
        for index in 0..<4 { files["s/part-\(index).csv"] = 20 }
        let fixture = try await TransformFixture.make(server: server, folder: folder.path, bucket: "tin", files: files)
        let slow = try Packages.custom(
            in: folder.path, name: "sleepy",
            source: """
                import time

                def model_fn(model_dir):
                    return None

                def transform_fn(model, body, content_type, accept):
                    time.sleep(0.3)
                    return "0\\n", "text/csv"
                """)
        _ = try await server.client.createModel(name: "sleepy", package: slow)
        _ = try await server.client.createTransformJob(
            transformRequest("stopme", model: "sleepy", input: "s3://tin/s/", output: "s3://tout/s", strategy: "SingleRecord"))
        try await eventually(timeout: .seconds(120), "the job is running") {
            try await server.client.transformJob("stopme").Progress.RecordsDone > 0 || server.log.contains("Transform job planned")
        }
        let stopping = try await server.client.stopTransformJob("stopme")
        #expect(["Stopping", "Stopped"].contains(stopping.TransformJobStatus))
        let job = try await server.client.waitForTransformJob("stopme", timeout: .seconds(60))
        #expect(job.TransformJobStatus == "Stopped")
        #expect(job.Progress.RecordsDone < 80)
        for key in server.storedKeys(bucket: "tout") {
            #expect(server.storedLines("s3://tout/\(key)")?.count == 21, "\(key) is partial")
        }
        _ = fixture
    }

    @Test("serval transform create --wait shows progress and prints the description; describe and list work")
    func cli() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer()
        let fixture = try await TransformFixture.make(server: server, folder: folder.path, bucket: "tin", files: ["c/a.csv": 500, "c/b.csv": 20])
        _ = try await server.client.createModel(name: "lr", package: fixture.model)
        let environment = ["SERVAL_URL": server.url]
        let created = try await run(
            [servalBinary, "transform", "create", "cli", "--model", "lr", "--input", "s3://tin/c/", "--output", "s3://tout/c",
             "--content-type", "text/csv", "--split-type", "Line", "--strategy", "MultiRecord", "--accept", "text/csv",
             "--assemble-with", "Line", "--instances", "1", "--wait"],
            environment: environment)
        #expect(created.status == 0, "\(created.output)")
        #expect(created.output.contains("Completed [##############################] 100% 520/520 records"), "\(created.output)")
        let described = try await run([servalBinary, "transform", "describe", "cli"], environment: environment)
        #expect(described.status == 0 && described.output.contains("\"TransformJobStatus\" : \"Completed\""), "\(described.output)")
        let listed = try await run([servalBinary, "transform", "list"], environment: environment)
        #expect(listed.output.contains("\"TransformJobName\" : \"cli\""), "\(listed.output)")
        let missing = try await run([servalBinary, "transform", "describe", "nope"], environment: environment)
        #expect(missing.status != 0 && missing.output.contains("does not exist"))
        expectOutputs(server, fixture, inputPrefix: "c/", outputBucket: "tout", outputPrefix: "c")
    }
}
