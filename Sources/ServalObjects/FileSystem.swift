import ServalArtifacts
import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The small set of POSIX file operations the local store needs, throwing ``ObjectStoreError/io(_:)`` with the
/// system's reason. All of them block: call them on a thread pool.
package enum FileSystem {
    /// What `lstat`/`stat` say about a path.
    package struct Status {
        package enum Kind { case file, directory, symlink, other }
        package var kind: Kind
        package var size: Int64
        var inode: UInt64
        var modified: Timestamp
    }

    /// Seconds and nanoseconds since 1970.
    struct Timestamp: Codable, Hashable {
        var seconds: Int64
        var nanoseconds: Int64

        var date: Date { Date(timeIntervalSince1970: Double(seconds) + Double(nanoseconds) / 1e9) }
    }

    package static func error(_ what: String, _ path: String, _ code: Int32 = errno) -> ObjectStoreError {
        .io("\(what) \(path): \(String(cString: strerror(code)))")
    }

    private static func status(of info: stat) -> Status {
        let kind: Status.Kind
        switch info.st_mode & S_IFMT {
        case S_IFREG: kind = .file
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symlink
        default: kind = .other
        }
        #if canImport(Darwin)
        let modified = Timestamp(seconds: Int64(info.st_mtimespec.tv_sec), nanoseconds: Int64(info.st_mtimespec.tv_nsec))
        #else
        let modified = Timestamp(seconds: Int64(info.st_mtim.tv_sec), nanoseconds: Int64(info.st_mtim.tv_nsec))
        #endif
        return Status(kind: kind, size: Int64(info.st_size), inode: UInt64(info.st_ino), modified: modified)
    }

    /// `lstat` (`follow: false`) or `stat`; `nil` when the path does not exist.
    package static func status(_ path: String, follow: Bool) throws(ObjectStoreError) -> Status? {
        var info = stat()
        let result = follow ? stat(path, &info) : lstat(path, &info)
        guard result == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw error("Cannot inspect", path)
        }
        return status(of: info)
    }

    static func status(fd: Int32, path: String) throws(ObjectStoreError) -> Status {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw error("Cannot inspect", path) }
        return status(of: info)
    }

    /// The canonical path, symlinks resolved.
    static func realPath(_ path: String) throws(ObjectStoreError) -> String {
        guard let resolved = realpath(path, nil) else { throw error("Cannot resolve", path) }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Creates a folder; returns `false` when one existed.
    @discardableResult
    static func makeDirectory(_ path: String) throws(ObjectStoreError) -> Bool {
        if mkdir(path, 0o755) == 0 { return true }
        if errno == EEXIST, try status(path, follow: true)?.kind == .directory { return false }
        throw error("Cannot create the folder", path)
    }

    /// Creates a folder and its missing parents.
    package static func makeDirectories(_ path: String) throws(ObjectStoreError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw .io("Cannot create the folder \(path): \(error)")
        }
    }

    /// Opens a new file for writing; fails if it exists.
    package static func create(_ path: String) throws(ObjectStoreError) -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw error("Cannot create", path) }
        return fd
    }

    /// Opens a file for reading; `nil` when it does not exist.
    package static func openForReading(_ path: String) throws(ObjectStoreError) -> Int32? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw error("Cannot open", path)
        }
        return fd
    }

    package static func writeAll(_ bytes: UnsafeRawBufferPointer, to fd: Int32, path: String) throws(ObjectStoreError) {
        let failure = writeFully(fd, bytes)
        if failure != 0 { throw error("Cannot write", path, failure) }
    }

    /// Reads up to `count` bytes at `offset`; fewer only at the end of the file.
    package static func readChunk(fd: Int32, at offset: Int64, count: Int, path: String) throws(ObjectStoreError) -> ByteBuffer {
        var buffer = ByteBuffer()
        var failure: Int32 = 0
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { pointer in
            var done = 0
            while done < count {
                let n = pread(fd, pointer.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return done
                }
                if n == 0 { break }
                done += n
            }
            return done
        }
        if failure != 0 { throw error("Cannot read", path, failure) }
        return buffer
    }

    /// Copies up to `count` bytes at `offset` of `source` to the end of `target`, in the kernel where the system
    /// allows: `copy_file_range` (which shares the blocks instead on filesystems with reflinks, such as XFS and
    /// Btrfs), else `sendfile`; returns how many were copied, 0 only at the end of `source`.
    static func copy(from source: Int32, at offset: Int64, count: Int, to target: Int32, paths: (String, String)) throws(ObjectStoreError) -> Int {
        #if os(Linux)
        var position = off_t(offset)
        if let copyFileRange {
            while true {
                let n = copyFileRange(source, &position, target, nil, count, 0)
                if n >= 0 { return n }
                if errno == EINTR { continue }
                // Not between these files (another filesystem, an old kernel): sendfile copies them.
                if [EXDEV, ENOSYS, EINVAL, EOPNOTSUPP].contains(errno) { break }
                throw error("Cannot copy \(paths.0) to", paths.1)
            }
        }
        while true {
            let n = sendfile(target, source, &position, count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw error("Cannot copy \(paths.0) to", paths.1)
        }
        #else
        let chunk = try readChunk(fd: source, at: offset, count: count, path: paths.0)
        let failure = chunk.withUnsafeReadableBytes { writeFully(target, $0) }
        if failure != 0 { throw error("Cannot write", paths.1, failure) }
        return chunk.readableBytes
        #endif
    }

    #if os(Linux)
    private typealias CopyFileRange = @convention(c) (
        Int32, UnsafeMutablePointer<off_t>?, Int32, UnsafeMutablePointer<off_t>?, Int, UInt32
    ) -> Int

    /// glibc's `copy_file_range` (2.27 and later), which Swift's Glibc module does not declare.
    private static let copyFileRange: CopyFileRange? = dlsym(nil, "copy_file_range").map {
        unsafeBitCast($0, to: CopyFileRange.self)
    }
    #endif

    package static func sync(_ fd: Int32, path: String) throws(ObjectStoreError) {
        guard fsync(fd) == 0 else { throw error("Cannot flush", path) }
    }

    /// Flushes a folder's entries (after a rename into it), best effort.
    package static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    package static func move(_ from: String, _ to: String) -> Int32 {
        rename(from, to) == 0 ? 0 : errno
    }

    /// Makes `to` a second name of the file `from`; fails with `EEXIST` (returned, as `move`'s errors are) when
    /// `to` exists, whatever wrote it.
    package static func hardLink(_ from: String, _ to: String) -> Int32 {
        link(from, to) == 0 ? 0 : errno
    }

    package static func remove(_ path: String) {
        _ = unlink(path)
    }

    /// Removes a folder and everything in it, best effort.
    package static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// The names in a folder (without `.` and `..`); empty when it does not exist.
    static func entries(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

/// A file descriptor closed when the last reference goes away.
final class FileDescriptor: @unchecked Sendable {
    let fd: Int32
    let path: String

    init(_ fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }
}
