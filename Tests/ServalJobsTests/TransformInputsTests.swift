import Foundation
import NIOCore
import ServalCore
import ServalObjects
import Testing

@testable import ServalJobs

@Suite("Transform inputs: listing, manifests and output names")
struct TransformInputsTests {
    func store() throws -> (LocalObjectStore, String) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("serval-inputs-\(UUID().uuidString)").path
        return (try LocalObjectStore(root: root), root)
    }

    func spec(_ input: String, dataType: TransformDataType = .s3Prefix, output: String = "s3://outp/scores") -> TransformJobSpec {
        TransformJobSpec(name: "job", modelName: "m", dataType: dataType, inputUri: input, outputPath: output)
    }

    @Test("a prefix lists its objects in key order; outputs are named below the prefix's folder")
    func prefix() async throws {
        let (objects, root) = try store()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try await objects.createBucket("inp")
        for key in ["batch/part-2.csv", "batch/part-1.csv", "batch/2026/part-3.csv", "other/x.csv", "batchy.csv"] {
            _ = try await objects.put(try ObjectLocation(bucket: "inp", key: key), bytes: ByteBuffer(string: "1\n"))
        }
        let folder = try await TransformInputs.list(spec("s3://inp/batch/"), objects: objects)
        #expect(folder.map(\.location.key) == ["batch/2026/part-3.csv", "batch/part-1.csv", "batch/part-2.csv"])
        #expect(folder.map(\.relativeKey) == ["2026/part-3.csv", "part-1.csv", "part-2.csv"])
        let partial = try await TransformInputs.list(spec("s3://inp/batch/part"), objects: objects)
        #expect(partial.map(\.relativeKey) == ["part-1.csv", "part-2.csv"])
        let bucket = try await TransformInputs.list(spec("s3://inp"), objects: objects, limit: 2)
        #expect(bucket.map(\.relativeKey) == ["batch/2026/part-3.csv", "batch/part-1.csv"])
        #expect(
            try TransformInputs.outputLocation(for: folder[0], outputPath: "s3://outp/scores/").uri
                == "s3://outp/scores/2026/part-3.csv.out")
        #expect(try TransformInputs.outputLocation(for: folder[1], outputPath: "s3://outp").uri == "s3://outp/part-1.csv.out")
        await #expect(throws: ServalError.self) { try await TransformInputs.list(spec("s3://missing/x"), objects: objects) }
    }

    @Test("a manifest names keys below its prefix; a bad manifest or a missing object is a clear 400")
    func manifest() async throws {
        let (objects, root) = try store()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try await objects.createBucket("inp")
        for key in ["data/a.csv", "data/sub/b.csv"] {
            _ = try await objects.put(try ObjectLocation(bucket: "inp", key: key), bytes: ByteBuffer(string: "1\n"))
        }
        func putManifest(_ text: String) async throws {
            _ = try await objects.put(try ObjectLocation(bucket: "inp", key: "m.json"), bytes: ByteBuffer(string: text))
        }
        try await putManifest(#"[{"prefix": "s3://inp/data/"}, "sub/b.csv", "a.csv"]"#)
        let inputs = try await TransformInputs.list(spec("s3://inp/m.json", dataType: .manifestFile), objects: objects)
        #expect(inputs.map(\.location.uri) == ["s3://inp/data/sub/b.csv", "s3://inp/data/a.csv"])
        #expect(inputs.map(\.relativeKey) == ["sub/b.csv", "a.csv"])
        for bad in [#"{"prefix": "s3://inp/data/"}"#, #"[{"prefix": "s3://inp/data/"}]"#, #"[{"prefix": "s3://inp/data/"}, 3]"#, "not json"] {
            try await putManifest(bad)
            await #expect(throws: ServalError.self, "\(bad)") {
                try await TransformInputs.list(spec("s3://inp/m.json", dataType: .manifestFile), objects: objects)
            }
        }
        // The plan keeps each object's key only and units read it from the manifest's bucket: a manifest whose
        // prefix is in another bucket is refused (before, its units read the keys from the wrong bucket).
        _ = try await objects.createBucket("other")
        _ = try await objects.put(try ObjectLocation(bucket: "other", key: "data/a.csv"), bytes: ByteBuffer(string: "1\n"))
        try await putManifest(#"[{"prefix": "s3://other/data/"}, "a.csv"]"#)
        do {
            _ = try await TransformInputs.list(spec("s3://inp/m.json", dataType: .manifestFile), objects: objects)
            Issue.record("a manifest listing objects of another bucket was accepted")
        } catch let error as ServalError {
            #expect(error.code == .validationError && error.message.contains("\"other\""))
        }
        try await putManifest(#"[{"prefix": "s3://inp/data/"}, "gone.csv"]"#)
        do {
            _ = try await TransformInputs.list(spec("s3://inp/m.json", dataType: .manifestFile), objects: objects)
            Issue.record("a manifest naming a missing object was accepted")
        } catch let error as ServalError {
            #expect(error.code == .validationError && error.message.contains("s3://inp/data/gone.csv"))
        }
    }
}
