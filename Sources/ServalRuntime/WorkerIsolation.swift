import CServalSpawn
import Foundation
import Logging
public import ServalCore

#if canImport(Glibc)
import Glibc
#endif

/// Keeps model code away from what is Serval's: when Serval runs as root, every Python process it starts (probes,
/// `venv`, `pip`, workers) runs as an unprivileged user, which can pass through the folders on the way to the
/// interpreter, the worker code, the Python environments and the model packages, and can read nothing else of
/// the data folder. See docs/security.md.
public enum WorkerIsolation {
    /// The user Serval creates for its workers when it runs as root and `--worker-user` names none.
    public static let defaultUserName = "serval-worker"

    /// The user workers run as: `requested` (which must exist), or, when Serval runs as root, the default user,
    /// created on first use; `nil` when Serval does not run as root and none was requested (workers then run as
    /// Serval's own user).
    ///
    /// - Throws: ``ServalError`` when the requested user does not exist, is root, or cannot be switched to.
    public static func user(requested: String?, logger: Logger) async throws(ServalError) -> ProcessUser? {
        let isRoot = geteuid() == 0
        guard let name = requested ?? (isRoot ? defaultUserName : nil) else { return nil }
        guard isRoot else {
            throw ServalError(
                .validationError,
                "--worker-user \(name) needs Serval to run as root, to switch users; run Serval as root or leave --worker-user out.")
        }
        if let user = lookUp(name) {
            guard user.uid != 0 else {
                throw ServalError(.validationError, "--worker-user \(name) is root; name an unprivileged user.")
            }
            return user
        }
        guard requested == nil else {
            throw ServalError(.validationError, "--worker-user \(name): there is no such user; create it (useradd --system \(name)) or leave --worker-user out.")
        }
        let command = [
            "useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
            "--shell", "/usr/sbin/nologin", name,
        ]
        let environment = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        let created = try await runToCompletion(ChildLaunch(arguments: command, environment: environment))
        // Another Serval starting at the same moment may have created it first.
        guard let user = lookUp(name) else {
            throw ServalError(
                .internalFailure,
                "Cannot create the user \(name) for model workers (\(created.status)): \(tail(created.output, lines: 3)) Create it, or pass --worker-user NAME.")
        }
        logger.notice("Created the user model workers run as", metadata: ["user": "\(name)", "uid": "\(user.uid)"])
        return user
    }

    /// Prepares the folders workers need when they run as `user`: the Python cache and the workers' home belong to
    /// `user`, and `user` may pass through (not list) every folder on the way to `paths`.
    ///
    /// - Parameters:
    ///   - paths: what workers must reach: the interpreter, the worker code, the model packages folder.
    ///   - cacheDirectory: where Python environments are built; handed to `user`.
    ///   - exchangeDirectory: Serval's folder (on the object store's file system) where file invocations hand
    ///     their files to workers.
    /// - Returns: the identity workers run with.
    public static func prepare(
        user: ProcessUser, paths: [String], cacheDirectory: String, exchangeDirectory: String, logger: Logger
    ) throws(ServalError) -> ChildIdentity {
        let home = cacheDirectory + "/home"
        do {
            try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        } catch {
            throw ServalError(.internalFailure, "Cannot create \(home): \(error.localizedDescription).")
        }
        try handOver(cacheDirectory, to: user)
        var granted: [String] = []
        for path in paths + [cacheDirectory, exchangeDirectory] {
            try FolderPassage.grant(toReach: path, for: user.uid, granted: &granted)
        }
        if !granted.isEmpty {
            logger.notice(
                "Model workers may pass through these folders (an ACL entry each, without listing them)",
                metadata: ["user": "\(user.name)", "folders": "\(granted.joined(separator: ", "))"])
        }
        return ChildIdentity(user: user, home: home, exchangeDirectory: exchangeDirectory)
    }

    /// Whether `path` has an access ACL (then a folder's group bits show the ACL's mask, not the group's access).
    public static func hasAccessACL(_ path: String) -> Bool {
        getxattr(path, "system.posix_acl_access", nil, 0) > 0
    }

    /// Gives `user` the folders of the Python cache it creates entries in: the cache itself, its home and `envs/`.
    /// Environments built earlier by another user stay theirs: the workers' user only reads them.
    private static func handOver(_ cacheDirectory: String, to user: ProcessUser) throws(ServalError) {
        for folder in [cacheDirectory, cacheDirectory + "/home", cacheDirectory + "/envs"] {
            var info = stat()
            guard lstat(folder, &info) == 0, info.st_uid != user.uid || info.st_gid != user.gid else { continue }
            guard lchown(folder, user.uid, user.gid) == 0 else {
                throw ServalError(.internalFailure, "Cannot give \(folder) to \(user): \(String(cString: strerror(errno))).")
            }
        }
    }

    private static func lookUp(_ name: String) -> ProcessUser? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16 * 1024)
        guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return ProcessUser(name: name, uid: entry.pw_uid, gid: entry.pw_gid)
    }
}

/// Lets one user pass through folders it could not search, with a POSIX ACL entry (`u:USER:--x`) on each: the
/// user may open what it knows the name of beneath, but not list the folder, and nobody else gains anything.
enum FolderPassage {
    /// Grants passage through every folder from `/` to `path` (and `path` itself when it is a folder), following
    /// symbolic links on the way, as the kernel does when the user opens it.
    static func grant(toReach path: String, for uid: uid_t, granted: inout [String]) throws(ServalError) {
        var folders: [String] = []
        var pending = [URL(fileURLWithPath: path).standardizedFileURL.path]
        var seen = Set<String>()
        while let next = pending.popLast() {
            guard seen.insert(next).inserted, seen.count <= 64 else { continue }  // Link loops end here.
            let components = next.split(separator: "/")
            var prefix = ""
            for (index, component) in components.enumerated() {
                folders.append(prefix.isEmpty ? "/" : prefix)
                prefix += "/" + component
                var info = stat()
                guard lstat(prefix, &info) == 0 else { break }
                if info.st_mode & S_IFMT == S_IFLNK,
                    let target = try? FileManager.default.destinationOfSymbolicLink(atPath: prefix)
                {
                    let rest = components[(index + 1)...].joined(separator: "/")
                    let base = URL(fileURLWithPath: (prefix as NSString).deletingLastPathComponent + "/")
                    let resolved = URL(fileURLWithPath: target, relativeTo: base).standardizedFileURL.path
                    pending.append(rest.isEmpty ? resolved : resolved + "/" + rest)
                    break
                }
                if index == components.count - 1, info.st_mode & S_IFMT == S_IFDIR { folders.append(prefix) }
            }
        }
        for folder in folders where !granted.contains(folder) {
            var info = stat()
            guard stat(folder, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { continue }
            if info.st_uid == uid ? info.st_mode & S_IXUSR != 0 : info.st_mode & S_IXOTH != 0 { continue }
            if try addEntry(to: folder, uid: uid, mode: info.st_mode) { granted.append(folder) }
        }
    }

    private static let attribute = "system.posix_acl_access"
    private enum Tag: UInt16 {
        case userObject = 0x01, user = 0x02, groupObject = 0x04, group = 0x08, mask = 0x10, other = 0x20
    }
    private struct Entry {
        var tag: UInt16
        var permissions: UInt16
        var id: UInt32
    }

    /// Adds (or widens) `u:uid:--x` in the folder's access ACL, keeping its other entries; returns whether the
    /// ACL changed.
    private static func addEntry(to folder: String, uid: uid_t, mode: mode_t) throws(ServalError) -> Bool {
        let existing = readEntries(folder)
        if let existing, existing.contains(where: { $0.tag == Tag.user.rawValue && $0.id == uid && $0.permissions & 1 != 0 }),
            existing.contains(where: { $0.tag == Tag.mask.rawValue && $0.permissions & 1 != 0 })
        {
            return false
        }
        var entries = existing ?? [
            Entry(tag: Tag.userObject.rawValue, permissions: UInt16((mode >> 6) & 7), id: UInt32.max),
            Entry(tag: Tag.groupObject.rawValue, permissions: UInt16((mode >> 3) & 7), id: UInt32.max),
            Entry(tag: Tag.other.rawValue, permissions: UInt16(mode & 7), id: UInt32.max),
        ]
        if let index = entries.firstIndex(where: { $0.tag == Tag.user.rawValue && $0.id == uid }) {
            entries[index].permissions |= 1
        } else {
            entries.append(Entry(tag: Tag.user.rawValue, permissions: 1, id: uid))
        }
        if let index = entries.firstIndex(where: { $0.tag == Tag.mask.rawValue }) {
            entries[index].permissions |= 1
        } else {
            // Without a mask the group bits were the owning group's; the mask must not widen them beyond that.
            let group = entries.first { $0.tag == Tag.groupObject.rawValue }?.permissions ?? 0
            entries.append(Entry(tag: Tag.mask.rawValue, permissions: group | 1, id: UInt32.max))
        }
        entries.sort { ($0.tag, $0.id) < ($1.tag, $1.id) }
        var bytes: [UInt8] = []
        append(UInt32(2), to: &bytes)
        for entry in entries {
            append(entry.tag, to: &bytes)
            append(entry.permissions, to: &bytes)
            append(entry.id, to: &bytes)
        }
        guard setxattr(folder, attribute, bytes, bytes.count, 0) == 0 else {
            throw ServalError(
                .internalFailure,
                "Model workers run as another user and cannot reach \(folder), and Serval cannot let them pass (\(String(cString: strerror(errno)))). Make the folder searchable (chmod o+x), move the interpreter, worker code or data folder elsewhere, or pass --worker-user.")
        }
        return true
    }

    private static func readEntries(_ folder: String) -> [Entry]? {
        var bytes = [UInt8](repeating: 0, count: 4096)
        let count = getxattr(folder, attribute, &bytes, bytes.count)
        guard count >= 4, (count - 4) % 8 == 0 else { return nil }
        return stride(from: 4, to: count, by: 8).map { offset in
            Entry(
                tag: UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8,
                permissions: UInt16(bytes[offset + 2]) | UInt16(bytes[offset + 3]) << 8,
                id: (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + 4 + $1]) << (8 * $1) })
        }
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}
