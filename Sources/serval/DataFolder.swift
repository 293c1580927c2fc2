import Foundation
import Logging
import ServalRuntime

#if canImport(Glibc)
import Glibc
#endif

/// The data folder's permissions: only Serval's user may list or read it. Its database holds the queue and the
/// sealed secrets, `master.key` unseals them, `logs.sqlite` holds every model's output, and `objects/` holds every
/// user's data.
enum DataFolder {
    /// Folders beneath the data folder that are Serval's alone (workers reach `models/` only through the passage
    /// that ``ServalRuntime/WorkerIsolation`` grants, never by listing it).
    static let privateFolders = ["models", "objects", "staging", "transform-parts", "exchange"]
    /// The SQLite databases: the metadata, and the workers' logs (every model's output).
    static let databases = ["serval.sqlite", "logs.sqlite"]
    /// Files that are Serval's alone (SQLite makes `-wal` and `-shm` with the database's mode).
    static let privateFiles = databases.flatMap { [$0, $0 + "-wal", $0 + "-shm"] } + ["master.key"]

    /// Creates the data folder and its private folders, and makes them 0700 and its private files 0600,
    /// tightening an existing folder with a notice.
    static func secure(_ path: String, logger: Logger) throws {
        let parent = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: parent.isEmpty ? "." : parent, withIntermediateDirectories: true)
        var tightened: [String] = []
        for folder in [path] + privateFolders.map({ path + "/" + $0 }) {
            if mkdir(folder, 0o700) == 0 {
                _ = chmod(folder, 0o700)  // Whatever the umask: a new folder is made private, not tightened.
                continue
            }
            guard errno == EEXIST else {
                throw StartupFailure("Cannot create \(folder): \(String(cString: strerror(errno))).")
            }
            if try restrict(folder, to: 0o700) { tightened.append(folder) }
        }
        // Files handed to workers by an invocation a crash interrupted.
        for leftover in (try? FileManager.default.contentsOfDirectory(atPath: path + "/exchange")) ?? [] {
            try? FileManager.default.removeItem(atPath: path + "/exchange/" + leftover)
        }
        // SQLite creates a new database (and its -wal and -shm beside it) with the database file's mode.
        for name in databases {
            let database = open(path + "/" + name, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
            if database >= 0 { close(database) }
        }
        for file in privateFiles.map({ path + "/" + $0 }) where FileManager.default.fileExists(atPath: file) {
            if try restrict(file, to: 0o600) { tightened.append(file) }
        }
        if !tightened.isEmpty {
            logger.notice(
                "Tightened the data folder's permissions: only Serval's user may read it",
                metadata: ["paths": "\(tightened.joined(separator: ", "))"])
        }
    }

    /// Sets `mode` unless the owner's bits already are and nobody else has any; returns whether it changed
    /// anything. (A folder's group bits may show the mask of the workers' ACL entry, which is not access.)
    private static func restrict(_ path: String, to mode: mode_t) throws -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        let hasACL = WorkerIsolation.hasAccessACL(path)
        let others = info.st_mode & (hasACL ? 0o007 : 0o077)
        guard others != 0 || info.st_mode & 0o700 != mode & 0o700 else { return false }
        guard chmod(path, mode) == 0 else {
            throw StartupFailure("Cannot restrict \(path) to mode \(String(mode, radix: 8)): \(String(cString: strerror(errno))).")
        }
        return true
    }
}

/// Why `serval serve` cannot start: printed as `Error: …`, and the process exits non-zero.
struct StartupFailure: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
