import Foundation
import ServalCore
import Testing

/// Runs a boto3 script against the server's S3 API; the script gets `s3` (a path-style client with dummy
/// credentials), `TransferConfig`, `ClientError` and `DATA` (its first argument, the server's data folder).
@discardableResult
func s3Client(_ server: ServalServer, _ script: String) async throws -> String {
    let prelude = """
        import sys, os, time, hashlib
        import boto3
        from botocore.config import Config
        from botocore.exceptions import ClientError
        from boto3.s3.transfer import TransferConfig
        s3 = boto3.client(
            "s3", endpoint_url="\(server.s3URL)", aws_access_key_id="test", aws_secret_access_key="test",
            region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
        DATA = sys.argv[1]

        """
    return try await python(prelude + script, server.dataDirectory)
}

@Suite("Object store, end to end with boto3 and the CLI", .serialized)
struct ObjectStoreTests {
    @Test("boto3: buckets, put/get/head/delete, ranges, multipart upload_file, listings with prefix, delimiter and pages")
    func boto3() async throws {
        let server = try await ServalServer()
        defer { Task { await server.stop() } }
        let output = try await s3Client(
            server,
            """
            s3.create_bucket(Bucket="inputs")
            try:
                s3.create_bucket(Bucket="inputs")
                raise AssertionError("a second create succeeded")
            except ClientError as e:
                assert e.response["Error"]["Code"] == "BucketAlreadyOwnedByYou", e.response
            assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["inputs"]
            s3.head_bucket(Bucket="inputs")

            # A 2 MB put: botocore sends Expect: 100-continue and would wait a second without the interim answer.
            data = os.urandom(2 << 20)
            started = time.monotonic()
            put = s3.put_object(Bucket="inputs", Key="docs/a.bin", Body=data, ContentType="application/x-test", Metadata={"owner": "me"})
            elapsed = time.monotonic() - started
            assert elapsed < 1.0, f"a 2 MB put took {elapsed:.2f} s"
            print(f"put 2 MB: {elapsed * 1000:.0f} ms")
            assert put["ETag"] == '"%s"' % hashlib.md5(data).hexdigest(), put["ETag"]

            head = s3.head_object(Bucket="inputs", Key="docs/a.bin")
            assert head["ContentLength"] == len(data) and head["ContentType"] == "application/x-test", head
            assert head["Metadata"] == {"owner": "me"}, head["Metadata"]
            assert head["ETag"] == put["ETag"]
            assert s3.get_object(Bucket="inputs", Key="docs/a.bin")["Body"].read() == data

            ranged = s3.get_object(Bucket="inputs", Key="docs/a.bin", Range="bytes=100-199")
            assert ranged["ResponseMetadata"]["HTTPStatusCode"] == 206
            assert ranged["ContentRange"] == f"bytes 100-199/{len(data)}", ranged["ContentRange"]
            assert ranged["Body"].read() == data[100:200]
            assert s3.get_object(Bucket="inputs", Key="docs/a.bin", Range="bytes=-10")["Body"].read() == data[-10:]
            assert s3.get_object(Bucket="inputs", Key="docs/a.bin", Range=f"bytes={len(data) - 5}-")["Body"].read() == data[-5:]
            try:
                s3.get_object(Bucket="inputs", Key="docs/a.bin", Range=f"bytes={len(data)}-")
                raise AssertionError("an unsatisfiable range succeeded")
            except ClientError as e:
                assert e.response["Error"]["Code"] == "InvalidRange", e.response
                assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 416

            # upload_file goes multipart above the threshold: 3 parts of 5 MB and a last one of 1 MB.
            big = os.path.join(DATA, "big.bin")
            with open(big, "wb") as f:
                f.write(os.urandom(16 << 20))
            config = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
            s3.upload_file(big, "inputs", "big/one.bin", Config=config)
            assert s3.head_object(Bucket="inputs", Key="big/one.bin")["ETag"].endswith('-4"')
            back = os.path.join(DATA, "back.bin")
            s3.download_file("inputs", "big/one.bin", back, Config=config)
            assert open(back, "rb").read() == open(big, "rb").read()
            # No part or temporary file shows in the bucket, and the parts are gone.
            assert not os.listdir(os.path.join(DATA, "objects", ".serval", "multipart"))

            for i in range(7):
                s3.put_object(Bucket="inputs", Key=f"pages/{i:02d}", Body=b"x" * i)
            top = s3.list_objects_v2(Bucket="inputs", Delimiter="/")
            assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["big/", "docs/", "pages/"], top
            assert "Contents" not in top
            keys, pages = [], 0
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket="inputs", Prefix="pages/", PaginationConfig={"PageSize": 3}):
                keys += [o["Key"] for o in page["Contents"]]
                pages += 1
            assert keys == [f"pages/{i:02d}" for i in range(7)] and pages == 3, (keys, pages)
            listed = s3.list_objects_v2(Bucket="inputs", Prefix="pages/", StartAfter="pages/04")
            assert [o["Key"] for o in listed["Contents"]] == ["pages/05", "pages/06"]
            assert [o["Size"] for o in listed["Contents"]] == [5, 6]
            assert [o["Key"] for o in s3.list_objects(Bucket="inputs", Prefix="docs/")["Contents"]] == ["docs/a.bin"]

            # A file dropped into the bucket's folder by hand is an object.
            with open(os.path.join(DATA, "objects", "inputs", "pages", "by-hand.txt"), "wb") as f:
                f.write(b"hello")
            assert s3.get_object(Bucket="inputs", Key="pages/by-hand.txt")["Body"].read() == b"hello"

            s3.delete_object(Bucket="inputs", Key="docs/a.bin")
            s3.delete_object(Bucket="inputs", Key="docs/a.bin")
            try:
                s3.get_object(Bucket="inputs", Key="docs/a.bin")
                raise AssertionError("a deleted object was read")
            except s3.exceptions.NoSuchKey:
                pass
            try:
                s3.head_object(Bucket="inputs", Key="docs/a.bin")
                raise AssertionError("a deleted object has a head")
            except ClientError as e:
                assert e.response["Error"]["Code"] == "404"
            try:
                s3.list_objects_v2(Bucket="missing")
                raise AssertionError("a missing bucket was listed")
            except s3.exceptions.NoSuchBucket:
                pass
            try:
                s3.delete_bucket(Bucket="inputs")
                raise AssertionError("a bucket with objects was deleted")
            except ClientError as e:
                assert e.response["Error"]["Code"] == "BucketNotEmpty"
            print("ok")
            """)
        #expect(output.contains("ok"))
        print(output)
    }

    @Test("serval objects put, ls and get round-trip a file through the S3 API")
    func cli() async throws {
        let server = try await ServalServer()
        defer { Task { await server.stop() } }
        let folder = try TemporaryFolder()
        let input = folder.path + "/input.json"
        let content = String(repeating: "{\"instances\": [[1, 2, 3]]}\n", count: 50_000)
        try content.write(toFile: input, atomically: true, encoding: .utf8)
        let environment = ["SERVAL_S3_URL": server.s3URL]

        let put = try await run([servalBinary, "objects", "put", input, "s3://cli-bucket/in/input.json", "--content-type", "application/json"], environment: environment)
        #expect(put.status == 0, "\(put.output)")
        #expect(put.output.hasPrefix("s3://cli-bucket/in/input.json"))

        let buckets = try await run([servalBinary, "objects", "ls"], environment: environment)
        #expect(buckets.output.split(separator: "\n") == ["s3://cli-bucket"])
        let top = try await run([servalBinary, "objects", "ls", "s3://cli-bucket"], environment: environment)
        #expect(top.output.contains("PRE in/"), "\(top.output)")
        let under = try await run([servalBinary, "objects", "ls", "s3://cli-bucket/in/"], environment: environment)
        #expect(under.output.contains("\(content.utf8.count)  in/input.json"), "\(under.output)")

        let output = folder.path + "/output.json"
        let get = try await run([servalBinary, "objects", "get", "s3://cli-bucket/in/input.json", output], environment: environment)
        #expect(get.status == 0, "\(get.output)")
        #expect(try String(contentsOfFile: output, encoding: .utf8) == content)
        let stdout = try await run([servalBinary, "objects", "get", "s3://cli-bucket/in/input.json", "-", "--s3-url", server.s3URL])
        #expect(stdout.output == content)

        let missing = try await run([servalBinary, "objects", "get", "s3://cli-bucket/nothing", output], environment: environment)
        #expect(missing.status != 0)
        #expect(missing.output.contains("NoSuchKey"), "\(missing.output)")
        #expect(try String(contentsOfFile: output, encoding: .utf8) == content)
    }
}
