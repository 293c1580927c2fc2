
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a folder as a tar archive: regular files, folders and symbolic links, names of any length
/// (GNU long-name records). Used to upload a package folder, and to store a folder the same way as an archive.
///
/// The folder is walked through descriptors: every entry is examined with `fstatat` without following links and
/// opened relative to its folder with `O_NOFOLLOW` (files also `O_NONBLOCK`, and checked again with `fstat`), so a
/// link or FIFO swapped in during the walk is never followed or read; each file is read for the size it had.
public enum TarWriter {
    /// The deepest folder nesting archived.
    static let maxDepth = 256

    /// Writes the contents of `folder` (not the folder itself) as a tar archive to the file at `archivePath`.
    public static func archive(folder: String, to archivePath: String) throws(PackageError) {
        let directory = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else {
            throw errno == ENOTDIR ? PackageError.invalid("\(folder) is not a folder") : .io("cannot open \(folder): \(String(cString: strerror(errno)))")
        }
        defer { close(directory) }
        var budget = WriteBudget.unlimited
        try archive(directory: directory, to: archivePath, maxEntries: .max, budget: &budget)
    }

    /// Writes the contents of the open folder `directory` as a tar archive to `archivePath`, within `budget`
    /// and at most `maxEntries` entries.
    static func archive(
        directory: Int32, to archivePath: String, maxEntries: Int, budget: inout WriteBudget
    ) throws(PackageError) {
        let fd = open(archivePath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io("cannot create \(archivePath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var walk = Walk(output: FileOutput(descriptor: fd), budget: budget, maxEntries: maxEntries)
        defer { budget = walk.budget }
        try walk.archive(directory, prefix: "", depth: 0)
        try walk.output.append([UInt8](repeating: 0, count: 1024))
    }

    /// One archiving pass over a folder tree.
    private struct Walk {
        var output: FileOutput
        var budget: WriteBudget
        let maxEntries: Int
        var entries = 0

        mutating func archive(_ directory: Int32, prefix: String, depth: Int) throws(PackageError) {
            guard depth < TarWriter.maxDepth else {
                throw .invalid("\(prefix) is nested more than \(TarWriter.maxDepth) folders deep")
            }
            for name in try names(in: directory) {
                let entry = prefix + name
                entries += 1
                guard entries <= maxEntries else { throw .invalid("the folder has more than \(maxEntries) entries") }
                var info = stat()
                guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                    throw .io("cannot read \(entry): \(String(cString: strerror(errno)))")
                }
                switch info.st_mode & S_IFMT {
                case S_IFDIR:
                    try TarWriter.writeHeader(name: entry + "/", type: "5", size: 0, mode: 0o755, link: "", to: &output)
                    let child = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    guard child >= 0 else { throw .invalid("\(entry) changed while it was being archived") }
                    defer { close(child) }
                    try archive(child, prefix: entry + "/", depth: depth + 1)
                case S_IFLNK:
                    var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                    let length = readlinkat(directory, name, &target, target.count - 1)
                    guard length >= 0 else { throw .io("cannot read link \(entry)") }
                    let link = String(decoding: target[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    try TarWriter.writeHeader(name: entry, type: "2", size: 0, mode: 0o777, link: link, to: &output)
                case S_IFREG:
                    try archiveFile(in: directory, name: name, entry: entry)
                default:
                    throw .invalid("\(entry) is not a file, folder or link; remove it from the package")
                }
            }
        }

        private mutating func archiveFile(in directory: Int32, name: String, entry: String) throws(PackageError) {
            let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { throw .invalid("\(entry) changed while it was being archived") }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
                throw .invalid("\(entry) changed while it was being archived")
            }
            let size = Int64(info.st_size)
            try budget.declare(size, entry: entry)
            let executable = info.st_mode & 0o111 != 0
            try TarWriter.writeHeader(name: entry, type: "0", size: size, mode: executable ? 0o755 : 0o644, link: "", to: &output)
            var buffer = [UInt8](repeating: 0, count: 256 * 1024)
            var remaining = size
            while remaining > 0 {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, Int(min(Int64($0.count), remaining))) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { throw .invalid("\(entry) changed while it was being archived") }
                try output.append(buffer[0..<count])
                remaining -= Int64(count)
                try budget.wrote(count)
            }
            let padding = Int((512 - size % 512) % 512)
            if padding > 0 { try output.append([UInt8](repeating: 0, count: padding)) }
        }

        /// The names in a folder, sorted, without `.` and `..`.
        private func names(in directory: Int32) throws(PackageError) -> [String] {
            let copy = dup(directory)
            guard copy >= 0, let stream = fdopendir(copy) else {
                if copy >= 0 { close(copy) }
                throw .io("cannot list a folder: \(String(cString: strerror(errno)))")
            }
            defer { closedir(stream) }
            var names: [String] = []
            while let item = readdir(stream) {
                let name = withUnsafeBytes(of: item.pointee.d_name) { bytes in
                    String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name == "." || name == ".." { continue }
                names.append(name)
                guard names.count <= maxEntries else { throw .invalid("the folder has more than \(maxEntries) entries") }
            }
            return names.sorted()
        }
    }

    private static func writeHeader(
        name: String, type: Character, size: Int64, mode: Int, link: String, to output: inout FileOutput
    ) throws(PackageError) {
        let nameBytes = Array(name.utf8)
        let linkBytes = Array(link.utf8)
        if nameBytes.count > 99 {
            try writeLongRecord(nameBytes, type: "L", to: &output)
        }
        if linkBytes.count > 99 {
            try writeLongRecord(linkBytes, type: "K", to: &output)
        }
        try output.append(header(name: nameBytes, type: type, size: size, mode: mode, link: linkBytes))
    }

    private static func writeLongRecord(_ bytes: [UInt8], type: Character, to output: inout FileOutput) throws(PackageError) {
        let data = bytes + [0]
        try output.append(header(name: Array("././@LongLink".utf8), type: type, size: Int64(data.count), mode: 0, link: []))
        try output.append(data)
        let padding = (512 - data.count % 512) % 512
        if padding > 0 { try output.append([UInt8](repeating: 0, count: padding)) }
    }

    private static func header(name: [UInt8], type: Character, size: Int64, mode: Int, link: [UInt8]) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ bytes: some Collection<UInt8>, at offset: Int, max: Int) {
            for (index, byte) in bytes.prefix(max).enumerated() { header[offset + index] = byte }
        }
        func octal(_ value: Int64, width: Int) -> [UInt8] {
            Array(String(value, radix: 8).leftPadded(to: width - 1).utf8) + [0]
        }
        put(name, at: 0, max: 100)
        put(octal(Int64(mode), width: 8), at: 100, max: 8)
        put(octal(0, width: 8), at: 108, max: 8)
        put(octal(0, width: 8), at: 116, max: 8)
        if size < 0o77777777777 {
            put(octal(size, width: 12), at: 124, max: 12)
        } else {  // 8 GiB or more: GNU base-256, big-endian with the high bit of the first byte set.
            var value = UInt64(size)
            for index in stride(from: 135, through: 124, by: -1) {
                header[index] = UInt8(value & 0xFF)
                value >>= 8
            }
            header[124] |= 0x80
        }
        put(octal(0, width: 12), at: 136, max: 12)
        header[156] = type.asciiValue!
        put(link, at: 157, max: 100)
        put("ustar\u{0}00".utf8, at: 257, max: 8)
        put(Array(repeating: UInt8(ascii: " "), count: 8), at: 148, max: 8)
        let checksum = header.reduce(0) { $0 + Int($1) }
        put(octal(Int64(checksum), width: 7) + [UInt8(ascii: " ")], at: 148, max: 8)
        return header
    }
}

private struct FileOutput {
    let descriptor: Int32

    mutating func append(_ bytes: some Collection<UInt8>) throws(PackageError) {
        let array = Array(bytes)
        var offset = 0
        while offset < array.count {
            let written = array.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, array.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw .io("writing the archive failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
