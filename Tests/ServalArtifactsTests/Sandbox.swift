import Crypto
import Foundation
import ServalArtifacts

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A temporary folder holding a data folder (`data/`) and the archives under test (`in/`), deleted at deinit.
///
/// Everything a test stores goes to `data/`; ``tree()`` lists the whole sandbox, so a test can prove that a
/// rejected package wrote nothing anywhere — inside or outside the data folder.
final class Sandbox {
    let root: String

    init() throws {
        root = NSTemporaryDirectory() + "serval-artifacts-tests-" + UUID().uuidString.lowercased()
        try FileManager.default.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/in", withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: root)
    }

    var dataDirectory: String { root + "/data" }

    var store: PackageStore { PackageStore(dataDirectory: dataDirectory) }

    /// Writes an archive to `in/` and returns its path.
    func write(_ archive: [UInt8], name: String = "package") throws -> String {
        let path = root + "/in/" + name
        guard FileManager.default.createFile(atPath: path, contents: Data(archive)) else {
            throw HelperFailure(description: "cannot write \(path)")
        }
        return path
    }

    /// Writes `archive` and stores it as model `modelName`.
    func store(_ archive: [UInt8], modelName: String = "model-1") throws -> StoredPackage {
        try store.storeArchive(at: write(archive), modelName: modelName)
    }

    /// Every path under the sandbox, relative to it, sorted; links are listed, not followed.
    func tree() -> [String] {
        listing(of: root).map(\.path)
    }

    /// What a rejected archive must leave: the data folder with an empty staging folder, and the archive.
    var untouchedTree: [String] { ["data", "data/staging", "in", "in/package"] }
}

/// One entry of a folder listing.
struct ListedEntry: Equatable, CustomStringConvertible {
    enum Kind: Equatable {
        case directory
        case file(contents: [UInt8], executable: Bool)
        case symlink(target: String)
        case other
    }

    var path: String
    var kind: Kind

    var description: String {
        switch kind {
        case .directory: "\(path)/"
        case .file(let contents, let executable): "\(path) (\(contents.count) bytes\(executable ? ", executable" : ""))"
        case .symlink(let target): "\(path) -> \(target)"
        case .other: "\(path) (special)"
        }
    }
}

/// Lists `folder` recursively without following links, sorted by path.
func listing(of folder: String) -> [ListedEntry] {
    var entries: [ListedEntry] = []
    func walk(_ relative: String) {
        let absolute = relative.isEmpty ? folder : folder + "/" + relative
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: absolute) else { return }
        for name in names.sorted() {
            let path = relative.isEmpty ? name : relative + "/" + name
            let full = folder + "/" + path
            var info = stat()
            guard lstat(full, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                entries.append(ListedEntry(path: path, kind: .directory))
                walk(path)
            case S_IFREG:
                let contents = FileManager.default.contents(atPath: full).map(Array.init) ?? []
                entries.append(ListedEntry(path: path, kind: .file(contents: contents, executable: info.st_mode & 0o100 != 0)))
            case S_IFLNK:
                let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: full)) ?? "?"
                entries.append(ListedEntry(path: path, kind: .symlink(target: target)))
            default:
                entries.append(ListedEntry(path: path, kind: .other))
            }
        }
    }
    walk("")
    return entries
}

/// The SHA-256 of `bytes`, hex.
func sha256Hex(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
}
