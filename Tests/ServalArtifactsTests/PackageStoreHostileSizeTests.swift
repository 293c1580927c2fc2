import Foundation
import ServalArtifacts
import Testing

/// Stores `archive` in the data folder of `sandboxRoot` and exits with status 0 when it is refused as invalid or
/// too large, 1 otherwise. Run inside an exit test, so that a crash fails one test instead of the whole run.
func exitZeroIfRejected(_ archive: [UInt8], sandboxRoot: String) -> Never {
    let archivePath = sandboxRoot + "/in/package"
    guard FileManager.default.createFile(atPath: archivePath, contents: Data(archive)) else { exit(2) }
    do {
        _ = try PackageStore(dataDirectory: sandboxRoot + "/data").storeArchive(at: archivePath, modelName: "m")
    } catch {
        exit(error.isInvalid || error.isTooLarge ? 0 : 1)
    }
    exit(1)
}

/// 8 GiB - 1, the largest size an 11-digit octal field holds.
let eightGiB = 0o77777777777

/// Archives whose headers declare sizes far beyond their data. Each must be refused as invalid (truncated or too
/// large); none may bring the server down.
@Suite("PackageStore: hostile sizes")
struct PackageStoreHostileSizeTests {
    @Test("control: an exit test of an ordinary bad archive exits 0, so the refusals below are real, not crashes")
    func control() async throws {
        let sandbox = try Sandbox()
        await #expect(processExitsWith: .success) { [root = sandbox.root as String] in
            var tar = TarBuilder()
            tar.file("../evil", "x")
            exitZeroIfRejected(tar.archive, sandboxRoot: root)
        }
        await #expect(processExitsWith: .failure) { [root = sandbox.root as String] in
            exitZeroIfRejected(sklearnPackage().archive, sandboxRoot: root)
        }
    }

    @Test("a folder entry that declares 8 GiB of data is refused")
    func hugeDirectory() async throws {
        let sandbox = try Sandbox()
        await #expect(processExitsWith: .success) { [root = sandbox.root as String] in
            var tar = TarBuilder()
            tar.file("model.joblib", "x")
            tar.entry(name: "big/", type: .directory, declaredSize: eightGiB)
            exitZeroIfRejected(tar.archive, sandboxRoot: root)
        }
    }

    @Test("a link entry that declares 8 GiB of data is refused")
    func hugeSymlink() async throws {
        let sandbox = try Sandbox()
        await #expect(processExitsWith: .success) { [root = sandbox.root as String] in
            var tar = TarBuilder()
            tar.file("model.joblib", "x")
            tar.entry(name: "link", type: .symlink, linkName: "model.joblib", declaredSize: eightGiB)
            exitZeroIfRejected(tar.archive, sandboxRoot: root)
        }
    }

    @Test("a pax global header that declares 8 GiB is refused")
    func hugeGlobalHeader() async throws {
        let sandbox = try Sandbox()
        await #expect(processExitsWith: .success) { [root = sandbox.root as String] in
            var tar = TarBuilder()
            tar.file("model.joblib", "x")
            tar.entry(name: "PaxHeaders/global", type: .paxGlobal, declaredSize: eightGiB)
            exitZeroIfRejected(tar.archive, sandboxRoot: root)
        }
    }

    @Test("a compressed folder entry that declares 8 GiB of data is refused")
    func hugeDirectoryGzip() async throws {
        let sandbox = try Sandbox()
        var tar = TarBuilder()
        tar.file("model.joblib", "x")
        tar.entry(name: "big/", type: .directory, declaredSize: eightGiB)
        let compressed = try gzip(tar.archive)
        await #expect(processExitsWith: .success) { [root = sandbox.root as String, compressed = compressed as [UInt8]] in
            exitZeroIfRejected(compressed, sandboxRoot: root)
        }
    }

    @Test("a file whose base-256 size nears Int64.max is refused")
    func base256Overflow() async throws {
        let sandbox = try Sandbox()
        await #expect(processExitsWith: .success) { [root = sandbox.root as String] in
            var tar = TarBuilder()
            tar.file("model.joblib", [UInt8](repeating: 1, count: 1_000))
            // 0x7FFF_FFFF_FFFF_FEFF in GNU base-256: the marker byte, three zero bytes, then eight value bytes.
            let size: [UInt8] = [0x80, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF]
            tar.raw(TarBuilder.header(name: "huge.bin", type: UInt8(ascii: "0"), sizeField: size))
            exitZeroIfRejected(tar.archive, sandboxRoot: root)
        }
    }

    @Test("a moderately oversized declaration is refused as truncated, without a trap")
    func truncatedSmallDeclaration() throws {
        let sandbox = try Sandbox()
        var tar = TarBuilder()
        tar.file("model.joblib", "x")
        tar.entry(name: "dir/", type: .directory, declaredSize: 10_000)
        let error = #expect(throws: PackageError.self) { try sandbox.store(tar.archive) }
        #expect(error?.isInvalid == true)
        #expect(sandbox.tree() == sandbox.untouchedTree)
    }
}
