import Foundation
import ServalArtifacts
import ServalCore
import Testing

let inferenceSource = "def model_fn(model_dir):\n    return None\n"
let requirementsText = "numpy==2.1\nscikit-learn\n"

/// A typical SageMaker-style scikit-learn package: a model file, serving code and requirements.
func sklearnPackage() -> TarBuilder {
    var tar = TarBuilder()
    tar.file("model.joblib", [UInt8](repeating: 0x80, count: 700))
    tar.directory("code")
    tar.file("code/inference.py", inferenceSource, mode: 0o755)
    tar.file("code/requirements.txt", requirementsText)
    return tar
}

/// Deterministic bytes that do not compress, to make archives span several reads.
func noise(count: Int, seed: UInt64 = 1) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
}

@Suite("PackageStore: accepted packages")
struct PackageStoreAcceptTests {
    @Test("a plain tar stores, inspects and extracts")
    func plainTar() throws {
        let sandbox = try Sandbox()
        let archive = sklearnPackage().archive
        let stored = try sandbox.store(archive, modelName: "iris")

        #expect(stored.relativePath.hasPrefix("models/iris-"))
        #expect(stored.relativePath.count == "models/iris-".count + 8)
        #expect(
            stored.info
                == ModelPackageInfo(
                    artifact: .sklearn, hasInferenceCode: true, requirements: requirementsText,
                    digest: sha256Hex(archive), sizeBytes: Int64(700 + inferenceSource.utf8.count + requirementsText.utf8.count)))
        let package = sandbox.store.absolutePath(of: stored.relativePath)
        #expect(
            listing(of: package) == [
                ListedEntry(path: "code", kind: .directory),
                ListedEntry(path: "code/inference.py", kind: .file(contents: Array(inferenceSource.utf8), executable: true)),
                ListedEntry(path: "code/requirements.txt", kind: .file(contents: Array(requirementsText.utf8), executable: false)),
                ListedEntry(path: "model.joblib", kind: .file(contents: [UInt8](repeating: 0x80, count: 700), executable: false)),
            ])
        // The staging folder is empty again.
        #expect(sandbox.tree().filter { $0.hasPrefix("data/staging/") }.isEmpty)
    }

    @Test("a tar.gz stores the same files; its digest is that of the compressed bytes")
    func gzipTar() throws {
        let sandbox = try Sandbox()
        let plain = sklearnPackage().archive
        let compressed = try gzip(plain)
        let fromPlain = try sandbox.store(plain, modelName: "plain")
        let fromGzip = try sandbox.store(compressed, modelName: "gzip")

        #expect(fromGzip.info.digest == sha256Hex(compressed))
        #expect(fromGzip.info.digest != fromPlain.info.digest)
        var expected = fromPlain.info
        expected.digest = fromGzip.info.digest
        #expect(fromGzip.info == expected)
        #expect(
            listing(of: sandbox.store.absolutePath(of: fromGzip.relativePath))
                == listing(of: sandbox.store.absolutePath(of: fromPlain.relativePath)))
        #expect(fromGzip.relativePath != fromPlain.relativePath)
    }

    @Test("large files spanning many reads come out intact, plain and compressed", arguments: [false, true])
    func largeFiles(compressed: Bool) throws {
        let sandbox = try Sandbox()
        let big = noise(count: 700_001)
        var tar = TarBuilder()
        tar.file("model.onnx", big)
        tar.file("weights/extra.bin", noise(count: 513, seed: 2))
        let archive = compressed ? try gzip(tar.archive) : tar.archive
        let stored = try sandbox.store(archive)
        #expect(stored.info.sizeBytes == 700_001 + 513)
        #expect(stored.info.digest == sha256Hex(archive))
        let package = sandbox.store.absolutePath(of: stored.relativePath)
        #expect(FileManager.default.contents(atPath: package + "/model.onnx").map(Array.init) == big)
        #expect(FileManager.default.contents(atPath: package + "/weights/extra.bin").map(Array.init) == noise(count: 513, seed: 2))
    }

    @Test(
        "the artifact kind comes from the model file",
        arguments: [
            ("model.joblib", "x", ArtifactKind.sklearn),
            ("model.pkl", "x", .sklearn),
            ("model.json", #"{"learner": {"attributes": {}}, "version": [2, 1, 0]}"#, .xgboost),
            ("model.ubj", "x", .xgboost),
            ("xgboost-model", "x", .xgboost),
            ("model.onnx", "x", .onnx),
            ("model.pt", "x", .torchscript),
        ])
    func artifactKind(file: String, contents: String, kind: ArtifactKind) throws {
        let sandbox = try Sandbox()
        var tar = TarBuilder()
        tar.file(file, contents)
        let stored = try sandbox.store(tar.archive)
        #expect(stored.info.artifact == kind)
        #expect(stored.info.hasInferenceCode == false)
        #expect(stored.info.requirements == nil)
    }

    @Test("a model.json without \"learner\" is no XGBoost model: the package needs code/inference.py")
    func jsonWithoutLearner() throws {
        let sandbox = try Sandbox()
        var tar = TarBuilder()
        tar.file("model.json", #"{"weights": [1, 2, 3]}"#)
        tar.file("code/inference.py", "print()")
        let stored = try sandbox.store(tar.archive)
        #expect(stored.info.artifact == .custom)
        #expect(stored.info.hasInferenceCode)
    }

    @Test("serving code alone makes a custom package")
    func codeOnly() throws {
        let sandbox = try Sandbox()
        var tar = TarBuilder()
        tar.file("code/inference.py", "def model_fn(d): pass\n")
        tar.file("weights.bin", [1, 2, 3])
        let stored = try sandbox.store(tar.archive)
        #expect(stored.info.artifact == .custom)
        #expect(stored.info.hasInferenceCode)
        #expect(stored.info.requirements == nil)
    }

    @Test("model files take precedence in a fixed order")
    func precedence() throws {
        let sandbox = try Sandbox()
        var tar = TarBuilder()
        tar.file("model.onnx", "x")
        tar.file("model.pt", "x")
        tar.file("model.joblib", "x")
        #expect(try sandbox.store(tar.archive).info.artifact == .sklearn)
    }

    @Test("entries written as ./path, as tar -C dir . does, are accepted")
    func dotSlashPaths() throws {
        let sandbox = try Sandbox()
        var tar = TarBuilder()
        tar.directory("./")
        tar.file("./model.joblib", "x")
        tar.directory("./code/")
        tar.file("./code/inference.py", "x")
        let stored = try sandbox.store(tar.archive)
        #expect(stored.info.artifact == .sklearn)
        #expect(stored.info.hasInferenceCode)
    }

    @Test("links inside the package are kept, and files may be written through them")
    func internalSymlinks() throws {
        let sandbox = try Sandbox()
        var tar = TarBuilder()
        tar.directory("artifacts")
        tar.file("artifacts/model-v2.joblib", "x")
        tar.symlink("model.joblib", to: "artifacts/model-v2.joblib")
        tar.directory("shared")
        tar.symlink("code/lib", to: "../shared")
        tar.file("code/lib/util.py", "X = 1\n")
        tar.symlink("code/self", to: ".")
        tar.symlink("root", to: "code/..")
        let stored = try sandbox.store(tar.archive)
        #expect(stored.info.artifact == .sklearn)
        #expect(stored.info.sizeBytes == 7)
        let package = sandbox.store.absolutePath(of: stored.relativePath)
        #expect(
            listing(of: package).map(\.description) == [
                "artifacts/", "artifacts/model-v2.joblib (1 bytes)", "code/", "code/lib -> ../shared",
                "code/self -> .", "model.joblib -> artifacts/model-v2.joblib", "root -> code/..", "shared/",
                "shared/util.py (6 bytes)",
            ])
    }

    @Test("a path of 150+ characters arrives whole through a GNU long name, a pax path and the ustar prefix")
    func longPaths() throws {
        let sandbox = try Sandbox()
        let directory = "code/" + String(repeating: "d", count: 70) + "/" + String(repeating: "e", count: 70)
        let viaGNU = directory + "/gnu-" + String(repeating: "g", count: 30) + ".py"
        let viaPax = directory + "/pax-" + String(repeating: "p", count: 30) + ".py"
        let viaPrefix = directory + "/prefix.py"
        #expect(viaGNU.count > 150 && viaPax.count > 150 && viaPrefix.count > 150)
        var tar = TarBuilder()
        tar.file("code/inference.py", "x")
        tar.gnuLongEntry(viaGNU, contents: Array("gnu".utf8))
        tar.paxEntry([("mtime", "1700000000.5"), ("path", viaPax)], contents: Array("pax".utf8))
        tar.entry(name: "prefix.py", type: .file, contents: Array("prefix".utf8), prefix: directory)
        let stored = try sandbox.store(tar.archive)
        let package = sandbox.store.absolutePath(of: stored.relativePath)
        #expect(FileManager.default.contents(atPath: package + "/" + viaGNU) == Data("gnu".utf8))
        #expect(FileManager.default.contents(atPath: package + "/" + viaPax) == Data("pax".utf8))
        #expect(FileManager.default.contents(atPath: package + "/" + viaPrefix) == Data("prefix".utf8))
        // The truncated names in the headers themselves were not extracted.
        #expect(listing(of: package).filter { if case .file = $0.kind { true } else { false } }.count == 4)
    }

    @Test("long link targets arrive whole through GNU long link and pax linkpath records")
    func longLinkTargets() throws {
        let sandbox = try Sandbox()
        let target = String(repeating: "t", count: 60) + "/" + String(repeating: "u", count: 60) + "/model.joblib"
        var tar = TarBuilder()
        tar.gnuLongEntry(target, contents: Array("x".utf8))
        tar.gnuLongEntry("gnu-link", type: .symlink, linkName: target)
        tar.paxEntry([("path", "pax-link"), ("linkpath", target)], type: .symlink)
        tar.symlink("model.joblib", to: "pax-link")
        let stored = try sandbox.store(tar.archive)
        let package = sandbox.store.absolutePath(of: stored.relativePath)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: package + "/gnu-link") == target)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: package + "/pax-link") == target)
        #expect(stored.info.artifact == .sklearn)
    }

    @Test("a later entry of the same name replaces the earlier one")
    func laterEntryWins() throws {
        let sandbox = try Sandbox()
        var tar = TarBuilder()
        tar.file("model.joblib", "first")
        tar.file("model.joblib", "second")
        tar.symlink("link", to: "model.joblib")
        tar.file("link", "a file now")
        let stored = try sandbox.store(tar.archive)
        let package = sandbox.store.absolutePath(of: stored.relativePath)
        #expect(FileManager.default.contents(atPath: package + "/model.joblib") == Data("second".utf8))
        #expect(listing(of: package).map(\.description) == ["link (10 bytes)", "model.joblib (6 bytes)"])
    }

    @Test("contiguous files, pax global headers and base-256 sizes are understood")
    func lessCommonHeaders() throws {
        let sandbox = try Sandbox()
        var tar = TarBuilder()
        tar.record(type: .paxGlobal, TarBuilder.paxRecord(key: "comment", value: "made by hand"))
        tar.file("model.pt", Array("torch".utf8), type: .contiguousFile)
        var base256 = [UInt8](repeating: 0, count: 12)
        base256[0] = 0x80
        base256[11] = 5
        tar.raw(TarBuilder.header(name: "notes.txt", type: UInt8(ascii: "0"), sizeField: base256))
        tar.append(padded: Array("hello".utf8))
        let stored = try sandbox.store(tar.archive)
        #expect(stored.info.artifact == .torchscript)
        let package = sandbox.store.absolutePath(of: stored.relativePath)
        #expect(FileManager.default.contents(atPath: package + "/notes.txt") == Data("hello".utf8))
    }

    @Test("an archive without the end-of-archive blocks is accepted, as some writers omit them")
    func noEndBlocks() throws {
        let sandbox = try Sandbox()
        #expect(try sandbox.store(sklearnPackage().bytes).info.artifact == .sklearn)
    }

    @Test("concatenated gzip members read as one stream")
    func concatenatedGzip() throws {
        let sandbox = try Sandbox()
        var first = TarBuilder()
        first.file("model.joblib", "x")
        var second = TarBuilder()
        second.file("code/inference.py", "y")
        let archive = try gzip(first.bytes) + gzip(second.archive)
        let stored = try sandbox.store(archive)
        #expect(stored.info.artifact == .sklearn)
        #expect(stored.info.hasInferenceCode)
        #expect(stored.info.digest == sha256Hex(archive))
    }

    @Test("archives made by GNU tar, in gnu and pax formats, plain and gzipped, are accepted")
    func gnuTarArchives() throws {
        let sandbox = try Sandbox()
        let source = sandbox.root + "/source"
        let long = String(repeating: "n", count: 120) + "/" + String(repeating: "m", count: 80) + ".txt"
        try writeFolder(
            source,
            files: ["model.joblib": "x", "code/inference.py": "y", "code/requirements.txt": "pandas\n", long: "long"],
            links: ["latest": "model.joblib"])
        for (format, flags) in [("gnu", "-cf"), ("pax", "-cf"), ("gnu", "-czf"), ("pax", "-czf")] {
            let archive = sandbox.root + "/in/made-by-tar"
            try run("/usr/bin/tar", ["--format=\(format)", flags, archive, "-C", source, "."])
            let stored = try sandbox.store.storeArchive(at: archive, modelName: "tar-\(format)")
            #expect(stored.info == ModelPackageInfo(
                artifact: .sklearn, hasInferenceCode: true, requirements: "pandas\n",
                digest: sha256Hex(Array(try Data(contentsOf: URL(fileURLWithPath: archive)))), sizeBytes: 1 + 1 + 7 + 4))
            #expect(listing(of: sandbox.store.absolutePath(of: stored.relativePath)) == listing(of: source))
        }
    }

    @Test("the package size and entry limits apply")
    func limits() throws {
        let sandbox = try Sandbox()
        var tar = TarBuilder()
        tar.file("model.joblib", [UInt8](repeating: 1, count: 100))
        tar.file("b", [UInt8](repeating: 2, count: 50))
        tar.directory("c")
        var store = sandbox.store
        store.maxUnpackedBytes = 150
        store.maxEntries = 3
        #expect(try store.storeArchive(at: sandbox.write(tar.archive), modelName: "at-limits").info.sizeBytes == 150)

        store.maxUnpackedBytes = 149
        let tooLarge = #expect(throws: PackageError.self) {
            try store.storeArchive(at: sandbox.write(tar.archive), modelName: "m")
        }
        #expect(tooLarge?.isTooLarge == true)
        #expect(tooLarge?.description.contains("past 149 bytes") == true)
        #expect(tooLarge?.description.contains("serve --max-unpacked-bytes") == true)
        #expect(tooLarge?.servalError.code == .payloadTooLarge)
        store.maxUnpackedBytes = 150
        store.maxEntries = 2
        let tooMany = #expect(throws: PackageError.self) {
            try store.storeArchive(at: sandbox.write(tar.archive), modelName: "m")
        }
        #expect(tooMany?.description == "the archive has more than 2 entries")
        #expect(sandbox.tree().filter { $0.hasPrefix("data/staging/") }.isEmpty)
        #expect(sandbox.tree().filter { $0.hasPrefix("data/models/") && $0.split(separator: "/").count == 3 }.count == 1)
    }

    @Test("remove deletes a stored package")
    func remove() throws {
        let sandbox = try Sandbox()
        let stored = try sandbox.store(sklearnPackage().archive)
        sandbox.store.remove(relativePath: stored.relativePath)
        #expect(!FileManager.default.fileExists(atPath: sandbox.store.absolutePath(of: stored.relativePath)))
    }

    @Test("a missing archive is an I/O error")
    func missingArchive() throws {
        let sandbox = try Sandbox()
        let error = #expect(throws: PackageError.self) {
            try sandbox.store.storeArchive(at: sandbox.root + "/in/absent", modelName: "m")
        }
        #expect(error?.isIO == true)
        #expect(error?.servalError.code == .internalFailure)
    }
}

extension PackageError {
    var isInvalid: Bool {
        if case .invalid = self { return true }
        return false
    }

    var isTooLarge: Bool {
        if case .tooLarge = self { return true }
        return false
    }

    var isIO: Bool {
        if case .io = self { return true }
        return false
    }
}

/// Creates a folder with `files` (path: contents) and `links` (path: target).
func writeFolder(_ folder: String, files: [String: String], links: [String: String] = [:]) throws {
    for (path, contents) in files {
        let full = folder + "/" + path
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(contents.utf8).write(to: URL(fileURLWithPath: full))
    }
    for (path, target) in links {
        try FileManager.default.createSymbolicLink(atPath: folder + "/" + path, withDestinationPath: target)
    }
}
