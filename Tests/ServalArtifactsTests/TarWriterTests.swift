import Foundation
import ServalArtifacts
import ServalCore
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A package folder with what TarWriter must carry: long names, links inside, executables, empty folders and
/// files whose sizes sit on and around the 512-byte block.
func makePackageFolder(in sandbox: Sandbox) throws -> String {
    let folder = sandbox.root + "/source"
    let deep = "nested/" + String(repeating: "d", count: 110) + "/" + String(repeating: "f", count: 60) + ".bin"
    try writeFolder(
        folder,
        files: [
            "model.joblib": "pickle",
            "code/inference.py": "def model_fn(model_dir):\n    pass\n",
            "code/requirements.txt": "xgboost\n",
            "empty.txt": "",
            "block.bin": String(repeating: "b", count: 512),
            "block-and-one.bin": String(repeating: "c", count: 513),
            deep: "deep",
            String(repeating: "x", count: 100): "a name of exactly 100 bytes",
        ],
        links: [
            "latest.joblib": "model.joblib",
            "deep-link": deep,
            "codelink": "code",
            "code/up": "..",
        ])
    try FileManager.default.createDirectory(atPath: folder + "/empty-dir", withIntermediateDirectories: false)
    chmod(folder + "/code/inference.py", 0o755)
    return folder
}

@Suite("TarWriter")
struct TarWriterTests {
    @Test("a folder round-trips through TarWriter and storeArchive")
    func roundTrip() throws {
        let sandbox = try Sandbox()
        let folder = try makePackageFolder(in: sandbox)
        let archive = sandbox.root + "/in/package.tar"
        try TarWriter.archive(folder: folder, to: archive)
        let stored = try sandbox.store.storeArchive(at: archive, modelName: "round-trip")
        let extracted = listing(of: sandbox.store.absolutePath(of: stored.relativePath))
        #expect(extracted == listing(of: folder))
        #expect(extracted.contains(ListedEntry(path: "codelink", kind: .symlink(target: "code"))))
        #expect(stored.info.artifact == .sklearn)
        #expect(stored.info.hasInferenceCode)
        #expect(stored.info.requirements == "xgboost\n")
    }

    @Test("links are archived as links, not followed")
    func linksNotFollowed() throws {
        let sandbox = try Sandbox()
        let folder = try makePackageFolder(in: sandbox)
        let archive = sandbox.root + "/in/package.tar"
        try TarWriter.archive(folder: folder, to: archive)
        let names = String(decoding: try run("/usr/bin/tar", ["-tf", archive]), as: UTF8.self).split(separator: "\n")
        #expect(names.contains("codelink"))
        #expect(!names.contains { $0.hasPrefix("codelink/") || $0.hasPrefix("code/up/") })
        #expect(Set(names).count == names.count, "an entry was archived twice")
    }

    @Test("GNU tar reads what TarWriter writes")
    func readableByGNUTar() throws {
        let sandbox = try Sandbox()
        let folder = try makePackageFolder(in: sandbox)
        let archive = sandbox.root + "/in/package.tar"
        try TarWriter.archive(folder: folder, to: archive)
        let out = sandbox.root + "/gnu-out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        try run("/usr/bin/tar", ["-xf", archive, "-C", out])
        #expect(listing(of: out) == listing(of: folder))
    }

    @Test("storeSource stores a copy of a folder under a source root and leaves no archive behind")
    func storeFolder() throws {
        let sandbox = try Sandbox()
        let folder = try makePackageFolder(in: sandbox)
        var store = sandbox.store
        store.sourceRoots = try PackageSourceRoots([sandbox.root])
        let stored = try store.storeSource(at: folder, modelName: "from-folder")
        #expect(listing(of: sandbox.store.absolutePath(of: stored.relativePath)) == listing(of: folder))
        #expect(sandbox.tree().filter { $0.hasPrefix("data/staging/") }.isEmpty)
    }

    @Test("a path that is not a folder is refused")
    func notAFolder() throws {
        let sandbox = try Sandbox()
        let file = try sandbox.write([1, 2, 3], name: "file")
        let error = #expect(throws: PackageError.self) { try TarWriter.archive(folder: file, to: sandbox.root + "/out.tar") }
        #expect(error?.isInvalid == true)
        #expect(throws: PackageError.self) {
            try TarWriter.archive(folder: sandbox.root + "/absent", to: sandbox.root + "/out.tar")
        }
    }

    @Test("a FIFO in the folder is refused")
    func fifoRefused() throws {
        let sandbox = try Sandbox()
        let folder = sandbox.root + "/source"
        try writeFolder(folder, files: ["model.joblib": "x"])
        #expect(mkfifo(folder + "/pipe", 0o644) == 0)
        let error = #expect(throws: PackageError.self) { try TarWriter.archive(folder: folder, to: sandbox.root + "/out.tar") }
        #expect(error?.isInvalid == true)
        #expect(error?.description.contains("not a file, folder or link") == true)
    }
}
