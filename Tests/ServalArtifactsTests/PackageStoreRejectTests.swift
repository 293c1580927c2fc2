import Foundation
import ServalArtifacts
import ServalCore
import Testing

/// An archive that must be refused, built for a given sandbox root (so that absolute paths can aim at it).
struct RejectedArchive: Sendable, CustomTestStringConvertible {
    var name: String
    /// Words the error message must contain.
    var mentioning: String
    var make: @Sendable (_ sandboxRoot: String) throws -> [UInt8]

    var testDescription: String { name }

    init(_ name: String, mentioning: String = "", _ make: @escaping @Sendable (String) throws -> [UInt8]) {
        self.name = name
        self.mentioning = mentioning
        self.make = make
    }

    /// A tar archive of the entries `build` adds after a valid model file, so that only the bad entry is wrong.
    init(_ name: String, mentioning: String = "", tar build: @escaping @Sendable (inout TarBuilder, String) -> Void) {
        self.init(name, mentioning: mentioning) { root in
            var tar = TarBuilder()
            tar.file("model.joblib", "x")
            build(&tar, root)
            return tar.archive
        }
    }

    /// The same archive, gzip-compressed.
    var gzipped: RejectedArchive {
        let make = self.make
        return RejectedArchive(name + " (gzip)", mentioning: mentioning) { try gzip(make($0)) }
    }
}

/// A chain of links that each look inside the package but together lead out of it: `a/b/c/x` is the package
/// root, and `y` is three folders above it — the sandbox root.
func escapingLinkChain(_ tar: inout TarBuilder) {
    tar.symlink("a/b/c/x", to: "../../..")
    tar.symlink("y", to: "a/b/c/x/../../..")
}

extension RejectedArchive {
    static let unsafePaths: [RejectedArchive] = [
        .init("../evil", mentioning: #""..""#) { tar, _ in tar.file("../evil", "x") },
        .init("../../../evil, aimed at the sandbox root", mentioning: #""..""#) { tar, _ in tar.file("../../../evil", "x") },
        .init("absolute path", mentioning: "absolute path") { tar, root in tar.file(root + "/abs-evil", "x") },
        .init("absolute directory", mentioning: "absolute path") { tar, root in tar.directory(root + "/abs-dir") },
        .init("a/../../x", mentioning: #""..""#) { tar, _ in tar.file("a/../../x", "x") },
        .init("a/.. inside the package is refused too", mentioning: #""..""#) { tar, _ in tar.file("a/../model.pkl", "x") },
        .init("../ directory", mentioning: #""..""#) { tar, _ in tar.directory("../up") },
        .init("../ via GNU long name", mentioning: #""..""#) { tar, _ in
            tar.gnuLongEntry("../" + String(repeating: "l", count: 120), contents: [1])
        },
        .init("../ via pax path", mentioning: #""..""#) { tar, _ in tar.paxEntry([("path", "../pax-evil")], contents: [1]) },
        .init("NUL in a pax path", mentioning: "NUL") { tar, _ in tar.paxEntry([("path", "a\u{0}b")], contents: [1]) },
    ]

    static let unsafeLinks: [RejectedArchive] = [
        .init("link to /etc", mentioning: "outside the package") { tar, _ in tar.symlink("etc", to: "/etc") },
        .init("link to ../..", mentioning: "outside the package") { tar, _ in tar.symlink("up", to: "../..") },
        .init("link to ..", mentioning: "outside the package") { tar, _ in tar.symlink("up", to: "..") },
        .init("nested link to ../../..", mentioning: "outside the package") { tar, _ in tar.symlink("a/b/up", to: "../../..") },
        .init("link with an empty target", mentioning: "outside the package") { tar, _ in tar.symlink("empty", to: "") },
        .init("link to /etc via pax linkpath", mentioning: "outside the package") { tar, _ in
            tar.paxEntry([("path", "etc"), ("linkpath", "/etc")], type: .symlink)
        },
        .init("link to .. via GNU long link", mentioning: "outside the package") { tar, _ in
            tar.gnuLongEntry("up", type: .symlink, linkName: String(repeating: "./", count: 60) + "..")
        },
        .init("chain: d/x -> .. and y -> d/x/..", mentioning: "resolves outside") { tar, _ in
            tar.symlink("d/x", to: "..")
            tar.symlink("y", to: "d/x/..")
        },
        .init("a file written through a link to /tmp", mentioning: "outside the package") { tar, _ in
            tar.symlink("out", to: "/tmp")
            tar.file("out/serval-evil", "x")
        },
        .init("a file written through a chain of links out of the package", mentioning: "resolves outside") { tar, _ in
            escapingLinkChain(&tar)
            tar.file("y/evil.txt", "x")
        },
        .init("a folder made through a chain of links out of the package", mentioning: "resolves outside") { tar, _ in
            escapingLinkChain(&tar)
            tar.directory("y/evil-dir")
        },
        .init("a link made through a chain of links out of the package", mentioning: "resolves outside") { tar, _ in
            escapingLinkChain(&tar)
            tar.symlink("y/evil-link", to: ".")
        },
        .init("a link that points nowhere", mentioning: "points nowhere") { tar, _ in tar.symlink("dangling", to: "missing") },
    ]

    static let forbiddenTypes: [RejectedArchive] = [
        .init("hard link", mentioning: "hard link") { tar, _ in tar.hardLink("copy.joblib", to: "model.joblib") },
        .init("character device", mentioning: "device or FIFO") { tar, _ in tar.entry(name: "null", type: .characterDevice) },
        .init("block device", mentioning: "device or FIFO") { tar, _ in tar.entry(name: "sda", type: .blockDevice) },
        .init("FIFO", mentioning: "device or FIFO") { tar, _ in tar.entry(name: "pipe", type: .fifo) },
        .init("unknown entry type", mentioning: "unsupported tar type 'V'") { tar, _ in
            tar.raw(TarBuilder.header(name: "volume", type: UInt8(ascii: "V")))
        },
    ]

    static let malformed: [RejectedArchive] = [
        .init("truncated inside a file's data", mentioning: "ends inside") { _ in
            var tar = sklearnPackage()
            tar.file("weights.bin", [UInt8](repeating: 7, count: 2_000))
            return Array(tar.bytes.dropLast(1_024))
        },
        .init("truncated inside a header", mentioning: "truncated") { _ in
            var tar = sklearnPackage()
            tar.file("weights.bin", "x")
            return Array(tar.bytes.dropLast(512 + 300))
        },
        .init("truncated inside the padding", mentioning: "truncated") { _ in
            var tar = sklearnPackage()
            tar.file("weights.bin", "x")
            return Array(tar.bytes.dropLast(100))
        },
        .init("truncated gzip", mentioning: "truncated") { _ in
            var tar = sklearnPackage()
            tar.file("weights.bin", noise(count: 200_000))
            let compressed = try gzip(tar.archive)
            return Array(compressed.prefix(compressed.count / 2))
        },
        .init("not a tar file", mentioning: "neither a tar archive nor a gzip-compressed tar archive") { _ in
            Array(String(repeating: "This is a README, not an archive.\n", count: 40).utf8)
        },
        .init("a short file that is not a tar", mentioning: "truncated") { _ in Array("PK\u{3}\u{4} zip?".utf8) },
        .init("gzip of a file that is not a tar", mentioning: "neither a tar archive") { _ in
            try gzip(Array(String(repeating: "plain text ", count: 100).utf8))
        },
        .init("corrupt gzip: the magic and then garbage", mentioning: "not valid gzip") { _ in
            [0x1F, 0x8B] + noise(count: 4_000)
        },
        .init("corrupt gzip: damaged compressed data") { _ in
            var compressed = try gzip(sklearnPackage().archive)
            for index in 20..<(compressed.count - 8) { compressed[index] ^= 0x5A }
            return compressed
        },
        .init("a damaged second header", mentioning: "bad checksum") { _ in
            var tar = TarBuilder()
            tar.file("model.joblib", "x")
            tar.file("code/inference.py", "y")
            var bytes = tar.archive
            bytes[1_024 + 10] ^= 0x01  // a byte of the second header's name, after the first header and its block
            return bytes
        },
        .init("an empty file", mentioning: "empty") { _ in [] },
        .init("an archive of only end blocks", mentioning: "no model file") { _ in [UInt8](repeating: 0, count: 1_024) },
        .init("gzip of nothing", mentioning: "empty") { _ in try gzip([]) },
        .init("no model file and no code/inference.py", mentioning: "no model file") { _ in
            var tar = TarBuilder()
            tar.file("README.md", "# My model\n")
            tar.file("code/train.py", "x")
            tar.file("model.json", #"{"not": "xgboost"}"#)
            tar.directory("model.onnx")  // a folder, not a file
            return tar.archive
        },
        .init("a GNU long name record that claims 64 KiB + 1", mentioning: "long name record") { _ in
            var tar = TarBuilder()
            tar.entry(name: "././@LongLink", type: .gnuLongName, declaredSize: 64 * 1024 + 1)
            return tar.archive
        },
        .init("a pax header that claims 1 MiB + 1", mentioning: "pax header") { _ in
            var tar = TarBuilder()
            tar.entry(name: "PaxHeaders/x", type: .pax, declaredSize: 1024 * 1024 + 1)
            return tar.archive
        },
        .init("a file name of 256 bytes, above the file system's 255 (found by fuzzing; was a 500)", mentioning: "longer than") { _ in
            var tar = TarBuilder()
            tar.file("model.joblib", "m")
            tar.gnuLongEntry("code/" + String(repeating: "n", count: 256), contents: Array("x".utf8))
            return tar.archive
        },
        .init("a malformed size field", mentioning: "size field") { _ in
            var header = TarBuilder.header(name: "model.joblib", type: UInt8(ascii: "0"))
            for (index, byte) in "12x4".utf8.enumerated() { header[124 + index] = byte }
            return TarBuilder.withChecksum(header) + [UInt8](repeating: 0, count: 1_024)
        },
    ]

    static let all = unsafePaths + unsafeLinks + forbiddenTypes + malformed
    static let compressed = (unsafePaths.prefix(3) + unsafeLinks.suffix(6) + forbiddenTypes.prefix(1)).map(\.gzipped)
}

@Suite("PackageStore: rejected packages")
struct PackageStoreRejectTests {
    @Test("unsafe or malformed archives are refused as invalid and leave nothing behind", arguments: RejectedArchive.all)
    func rejected(archive: RejectedArchive) throws {
        try expectRejected(archive)
    }

    @Test("compressed unsafe archives are refused the same way", arguments: RejectedArchive.compressed)
    func rejectedGzip(archive: RejectedArchive) throws {
        try expectRejected(archive)
    }

    @Test("an invalid package maps to a validation error for the user")
    func userFacingError() throws {
        let sandbox = try Sandbox()
        var tar = TarBuilder()
        tar.file("../evil", "x")
        let error = #expect(throws: PackageError.self) { try sandbox.store(tar.archive) }
        #expect(error?.servalError.code == .validationError)
        #expect(error?.servalError.message.hasPrefix("The model package was rejected: entry \"../evil\"") == true)
    }

    private func expectRejected(_ archive: RejectedArchive, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let sandbox = try Sandbox()
        let bytes = try archive.make(sandbox.root)
        let error = #expect(throws: PackageError.self, sourceLocation: sourceLocation) { try sandbox.store(bytes) }
        #expect(error?.isInvalid == true, "expected .invalid, got \(String(describing: error))", sourceLocation: sourceLocation)
        if let error, !archive.mentioning.isEmpty {
            #expect(error.description.contains(archive.mentioning), "message: \(error)", sourceLocation: sourceLocation)
        }
        #expect(sandbox.tree() == sandbox.untouchedTree, sourceLocation: sourceLocation)
        #expect(!FileManager.default.fileExists(atPath: "/tmp/serval-evil"), sourceLocation: sourceLocation)
    }
}

@Suite("PackageStore: conflicting entries")
struct PackageStoreConflictingEntryTests {
    /// Archives whose entries contradict each other: the user's mistake, so a validation error (400), not an
    /// I/O failure of the server (500).
    static let cases: [RejectedArchive] = [
        .init("a file where a folder is") { tar, _ in
            tar.directory("code")
            tar.file("code", "x")
        },
        .init("a file inside a file") { tar, _ in
            tar.file("weights", "x")
            tar.file("weights/part-1", "y")
        },
        .init("a link where a folder is") { tar, _ in
            tar.directory("code")
            tar.symlink("code", to: "model.joblib")
        },
    ]

    @Test("entries that contradict each other are invalid, not I/O failures", arguments: cases)
    func conflicting(archive: RejectedArchive) async throws {
        let sandbox = try Sandbox()
        let error = #expect(throws: PackageError.self) { try sandbox.store(try archive.make(sandbox.root)) }
        #expect(sandbox.tree() == sandbox.untouchedTree)
        #expect(error?.isInvalid == true, "got \(String(describing: error))")
    }
}
