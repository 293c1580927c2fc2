import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Stops a package copy or extraction running on another thread: its request was cancelled, or Serval is
/// shutting down. Copies and extractions check it before every read and write.
public final class PackageCancellation: Sendable {
    private let flag = Atomic<Bool>(false)
    private let parents: [PackageCancellation]

    /// Creates a flag that is also cancelled when any of `parents` is.
    public init(parents: [PackageCancellation] = []) {
        self.parents = parents
    }

    /// Stops the work that checks this flag (and every flag made with this one as a parent).
    public func cancel() {
        flag.store(true, ordering: .relaxed)
    }

    /// Whether this flag or one of its parents was cancelled.
    public var isCancelled: Bool {
        flag.load(ordering: .relaxed) || parents.contains { $0.isCancelled }
    }

    func check() throws(PackageError) {
        if isCancelled { throw .cancelled }
    }
}

/// Bounds what storing one package may write: its unpacked size (`serve --max-unpacked-bytes`), the free space it
/// leaves on the disk (`serve --disk-reserve-bytes`), and cancellation. Sizes declared by tar headers are counted
/// before anything is written, and the bytes actually written are counted as they go.
struct WriteBudget {
    /// The most bytes the package may unpack to.
    var maxBytes: Int64
    /// The free bytes that must remain on the file system of `folder`.
    var diskReserveBytes: Int64
    /// A folder on the file system written to.
    var folder: String
    var cancellation: PackageCancellation
    /// The sum of the sizes declared so far.
    private(set) var declared: Int64 = 0
    /// The bytes written so far.
    private(set) var written: Int64 = 0

    init(maxBytes: Int64, diskReserveBytes: Int64, folder: String, cancellation: PackageCancellation) {
        self.maxBytes = maxBytes
        self.diskReserveBytes = diskReserveBytes
        self.folder = folder
        self.cancellation = cancellation
    }

    /// An unbounded budget: the CLI archiving a user's own folder on the user's machine.
    static var unlimited: WriteBudget {
        WriteBudget(maxBytes: .max, diskReserveBytes: 0, folder: "/", cancellation: PackageCancellation())
    }

    /// Counts `size` bytes an entry declares; refuses when the declared total crosses the limit or more than
    /// the free space above the reserve.
    mutating func declare(_ size: Int64, entry: String) throws(PackageError) {
        try cancellation.check()
        guard size >= 0, size <= maxBytes - declared else {
            throw .tooLarge(
                "entry \"\(entry)\" declares \(size) bytes, taking the package past \(maxBytes) bytes, the limit on what a package unpacks to (serve --max-unpacked-bytes)")
        }
        declared += size
        try checkFreeSpace(needing: size)
    }

    /// Counts `count` bytes just written; refuses when the total crosses the limit or the disk's reserve.
    mutating func wrote(_ count: Int) throws(PackageError) {
        written += Int64(count)
        guard written <= maxBytes else {
            throw .tooLarge(
                "it unpacks to more than \(maxBytes) bytes, the limit on what a package unpacks to (serve --max-unpacked-bytes)")
        }
        try cancellation.check()
        try checkFreeSpace(needing: 0)
    }

    private func checkFreeSpace(needing size: Int64) throws(PackageError) {
        guard diskReserveBytes > 0, size > 0 || written > 0 else { return }
        var info = statvfs()
        guard statvfs(folder, &info) == 0 else { return }
        let (free, overflow) = Int64(info.f_bavail).multipliedReportingOverflow(by: Int64(info.f_frsize))
        if overflow { return }
        guard free - size >= diskReserveBytes else {
            throw .invalid(
                "unpacking it would leave less than \(diskReserveBytes) bytes free on the server's data disk (\(free) bytes are free now); the operator can free space or lower serve --disk-reserve-bytes")
        }
    }
}

/// A package source opened for reading: a regular file or a folder.
struct OpenedSource {
    /// The open descriptor; the caller closes it.
    var descriptor: Int32
    var isDirectory: Bool
    /// The file's size (0 for a folder).
    var size: Int64
}

/// The folders on the server whose packages users may name by path (`modelDataUrl`), set with
/// `serve --model-source-root`; none by default.
///
/// A path is accepted only when its real path (every link resolved) lies under a root's real path, and it names
/// a regular file or a folder. It is then opened one component at a time from the root with `O_NOFOLLOW`, so
/// a link swapped in after the check cannot lead out of the root, and the final file with `O_NONBLOCK` after
/// `fstatat`, so a FIFO or device is refused rather than opened or read.
public struct PackageSourceRoots: Sendable, Equatable {
    /// The real paths of the roots.
    public let paths: [String]

    /// No roots: every path is refused.
    public static let none = PackageSourceRoots(realPaths: [])

    private init(realPaths: [String]) {
        paths = realPaths
    }

    /// Resolves each root to its real path; each must be an existing folder.
    public init(_ roots: [String]) throws(PackageError) {
        var real: [String] = []
        for root in roots {
            guard let resolved = realpath(root, nil) else {
                throw .invalid("\(root) does not exist: --model-source-root must name a folder")
            }
            let path = String(cString: resolved)
            free(resolved)
            var info = stat()
            guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
                throw .invalid("\(root) is not a folder: --model-source-root must name a folder")
            }
            real.append(path)
        }
        paths = real
    }

    /// The message for a path outside every root; it names none of them, since they are the server's.
    static func outsideMessage(_ path: String) -> String {
        "\(path) is not under a folder this server reads model packages from. Upload the package instead (POST /models?name=NAME, which `serval models create` and `serval deploy` do from your machine), or ask the operator to allow its folder with `serval serve --model-source-root DIR`"
    }

    /// Opens the regular file or folder at `path`, which must lie under a root.
    func openSource(_ path: String) throws(PackageError) -> OpenedSource {
        guard path.hasPrefix("/"), !path.utf8.contains(0) else {
            throw .refusedSource("\"\(path)\" must be an absolute path (or a file:// URL) on the server")
        }
        guard let resolved = realpath(path, nil) else {
            // Say whether it exists only when it is lexically under a root: paths elsewhere are not for users to probe.
            let lexical = Self.lexicallyNormalized(path)
            if enclosingRoot(of: lexical) != nil { throw .refusedSource("\(path) does not exist") }
            throw .refusedSource(Self.outsideMessage(path))
        }
        let real = String(cString: resolved)
        free(resolved)
        guard let root = enclosingRoot(of: real) else { throw .refusedSource(Self.outsideMessage(path)) }
        let components = real.dropFirst(root.count).split(separator: "/").map(String.init)

        var directory = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { throw .io("cannot open a model source root: \(String(cString: strerror(errno)))") }
        guard let last = components.last else {
            return OpenedSource(descriptor: directory, isDirectory: true, size: 0)
        }
        for component in components.dropLast() {
            let next = openat(directory, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            close(directory)
            guard next >= 0 else { throw .refusedSource("\(path) changed while it was opened; try again") }
            directory = next
        }
        defer { close(directory) }
        var before = stat()
        guard fstatat(directory, last, &before, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw .refusedSource("\(path) changed while it was opened; try again")
        }
        let type = before.st_mode & S_IFMT
        guard type == S_IFREG || type == S_IFDIR else {
            throw .refusedSource(
                "\(path) is \(Self.describe(type)); a model package must be a regular file (a tar or tar.gz archive) or a folder")
        }
        let flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (type == S_IFDIR ? O_DIRECTORY : 0)
        let descriptor = openat(directory, last, flags)
        guard descriptor >= 0 else { throw .refusedSource("\(path) cannot be opened: \(String(cString: strerror(errno)))") }
        var after = stat()
        guard fstat(descriptor, &after) == 0, after.st_mode & S_IFMT == type, after.st_ino == before.st_ino,
            after.st_dev == before.st_dev
        else {
            close(descriptor)
            throw .refusedSource("\(path) changed while it was opened; try again")
        }
        return OpenedSource(descriptor: descriptor, isDirectory: type == S_IFDIR, size: Int64(after.st_size))
    }

    private func enclosingRoot(of path: String) -> String? {
        paths.first { path == $0 || path.hasPrefix($0 == "/" ? "/" : $0 + "/") }
    }

    /// `path` with `.`, `..` and repeated slashes removed, without touching the disk.
    static func lexicallyNormalized(_ path: String) -> String {
        var components: [Substring] = []
        for component in path.split(separator: "/") {
            switch component {
            case ".": continue
            case "..": _ = components.popLast()
            default: components.append(component)
            }
        }
        return "/" + components.joined(separator: "/")
    }

    private static func describe(_ type: mode_t) -> String {
        switch type {
        case S_IFIFO: "a FIFO (named pipe)"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        case S_IFLNK: "a link"
        default: "not a regular file or folder"
        }
    }
}
