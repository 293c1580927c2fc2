import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Extracts a tar stream into a folder, refusing anything that could write outside it.
///
/// Accepted: regular files, directories, and symbolic links whose target stays inside the folder. Refused with
/// a message naming the entry: absolute paths, `..` components, links pointing out, hard links, devices and
/// FIFOs, and archives above the entry limit or the ``WriteBudget`` (unpacked size, free disk space). Understands ustar, GNU long names and pax `path` /
/// `linkpath` records. Files are created with `O_EXCL | O_NOFOLLOW` after checking that the real path of their
/// folder is inside the destination, so a link planted by an earlier entry cannot redirect a later one.
struct TarExtractor {
    let destination: String
    let maxEntries: Int
    /// What the archive may write; every entry's declared size and every byte written are counted.
    private(set) var budget: WriteBudget
    private var realDestination: String = ""
    /// The bytes of the regular files extracted.
    private(set) var totalBytes: Int64 = 0
    private var entries = 0
    private var links: [String] = []

    init(destination: String, maxEntries: Int, budget: WriteBudget) {
        self.destination = destination
        self.maxEntries = maxEntries
        self.budget = budget
    }

    /// Reads the whole archive from `stream` and extracts it.
    mutating func extract(from stream: inout some ByteStream) throws(PackageError) {
        guard let real = realpath(destination, nil) else {
            throw .io("the staging folder \(destination) is missing")
        }
        realDestination = String(cString: real)
        free(real)

        var reader = BlockReader()
        var pendingPath: String?
        var pendingLinkPath: String?
        var sawAnyHeader = false
        archive: while true {
            guard let header = try reader.read(count: 512, from: &stream) else {
                if sawAnyHeader { break archive }  // Some writers omit the end-of-archive blocks.
                throw .invalid("the archive is empty")
            }
            if header.allSatisfy({ $0 == 0 }) { break archive }
            try Self.verifyChecksum(header, isFirst: !sawAnyHeader)
            sawAnyHeader = true
            entries += 1
            guard entries <= maxEntries else {
                throw .invalid("the archive has more than \(maxEntries) entries")
            }

            let type = header[156]
            let size = try Self.parseSize(header)
            var path = pendingPath ?? Self.headerPath(header)
            // Every declared size, skipped entries' too, is counted before anything is read, skipped or written,
            // so a tiny archive cannot make the server allocate, skip, write or add up impossible sizes.
            try budget.declare(size, entry: path)
            let linkPath = pendingLinkPath ?? Self.cString(header[157..<257])
            pendingPath = nil
            pendingLinkPath = nil

            switch type {
            case UInt8(ascii: "L"), UInt8(ascii: "K"):  // GNU long name / long link name
                guard size <= 64 * 1024 else { throw .invalid("a GNU long name record is \(size) bytes") }
                let data = try reader.readPadded(count: Int(size), from: &stream)
                let name = Self.cString(data[...])
                if type == UInt8(ascii: "L") { pendingPath = name } else { pendingLinkPath = name }
            case UInt8(ascii: "x"):  // pax extended header for the next entry
                guard size <= 1024 * 1024 else { throw .invalid("a pax header is \(size) bytes") }
                let records = Self.parsePax(try reader.readPadded(count: Int(size), from: &stream))
                pendingPath = records["path"]
                pendingLinkPath = records["linkpath"]
            case UInt8(ascii: "g"):  // pax global header: nothing Serval uses
                guard size <= 1024 * 1024 else { throw .invalid("a pax global header is \(size) bytes") }
                try reader.skipPadded(count: size, from: &stream)
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"):
                guard let relative = try Self.safeRelativePath(path) else {
                    try reader.skipPadded(count: size, from: &stream)
                    continue
                }
                totalBytes += size  // Cannot overflow: the budget bounds the sum of declared sizes.
                let mode = Self.parseOctal(header[100..<108]) ?? 0o644
                try writeFile(relative, size: size, executable: mode & 0o111 != 0, reader: &reader, stream: &stream)
            case UInt8(ascii: "5"):
                if path.hasSuffix("/") { path.removeLast() }
                if let relative = try Self.safeRelativePath(path) {
                    try makeDirectories(relative, includingLast: true)
                }
                try reader.skipPadded(count: size, from: &stream)
            case UInt8(ascii: "2"):
                guard let relative = try Self.safeRelativePath(path) else { continue }
                try makeSymlink(relative, target: linkPath)
                try reader.skipPadded(count: size, from: &stream)
            case UInt8(ascii: "1"):
                throw .invalid("entry \"\(path)\" is a hard link; model packages may not contain hard links")
            case UInt8(ascii: "3"), UInt8(ascii: "4"), UInt8(ascii: "6"):
                throw .invalid("entry \"\(path)\" is a device or FIFO; model packages may contain only files, folders and links")
            default:
                throw .invalid("entry \"\(path)\" has unsupported tar type '\(Character(Unicode.Scalar(type)))'")
            }
        }
        // Each link was checked lexically when made; links through other links are checked now, fully resolved.
        for link in links {
            try ensureInside(destination + "/" + link, entry: link)
        }
    }

    // MARK: Writing

    private mutating func writeFile(
        _ relative: [String], size: Int64, executable: Bool, reader: inout BlockReader, stream: inout some ByteStream
    ) throws(PackageError) {
        try makeDirectories(relative, includingLast: false)
        let parent = destination + "/" + relative.dropLast().joined(separator: "/")
        try ensureInside(parent, entry: relative.joined(separator: "/"))
        let path = destination + "/" + relative.joined(separator: "/")
        unlink(path)  // A later entry of the same name replaces the earlier one, as tar does.
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, executable ? 0o755 : 0o644)
        guard fd >= 0 else { throw Self.creationError(relative.joined(separator: "/"), errno: errno) }
        defer { close(fd) }
        var remaining = size
        while remaining > 0 {
            guard var chunk = try reader.read(upTo: Int(min(remaining, 256 * 1024)), from: &stream) else {
                throw .invalid("the archive ends inside \"\(relative.joined(separator: "/"))\"")
            }
            let count = chunk.readableBytes
            remaining -= Int64(count)
            let failure = chunk.withUnsafeReadableBytes { writeFully(fd, $0) }
            if failure != 0 {
                throw .io("writing \(relative.joined(separator: "/")) failed: \(String(cString: strerror(failure)))")
            }
            chunk.clear()
            try budget.wrote(count)
        }
        try reader.skip(count: Self.padding(size), from: &stream)
    }

    private func makeDirectories(_ relative: [String], includingLast: Bool) throws(PackageError) {
        var path = destination
        let components = includingLast ? relative[...] : relative.dropLast()
        for component in components {
            path += "/" + component
            if mkdir(path, 0o755) != 0 && errno != EEXIST {
                throw Self.creationError(relative.joined(separator: "/"), errno: errno)
            }
            try ensureInside(path, entry: relative.joined(separator: "/"))
        }
    }

    private mutating func makeSymlink(_ relative: [String], target: String) throws(PackageError) {
        let entry = relative.joined(separator: "/")
        guard !target.isEmpty, !target.hasPrefix("/") else {
            throw .invalid("entry \"\(entry)\" is a link to \"\(target)\", outside the package")
        }
        // Resolve the target against the link's folder, lexically; it must stay inside the package.
        var resolved = Array(relative.dropLast())
        for component in target.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..":
                guard !resolved.isEmpty else {
                    throw .invalid("entry \"\(entry)\" is a link to \"\(target)\", outside the package")
                }
                resolved.removeLast()
            default: resolved.append(String(component))
            }
        }
        try makeDirectories(relative, includingLast: false)
        let path = destination + "/" + entry
        unlink(path)
        guard symlink(target, path) == 0 else { throw Self.creationError(entry, errno: errno) }
        links.append(entry)
    }

    /// An entry that cannot be created because an earlier entry is in its way, or because its name is too long,
    /// is the archive's fault (400); anything else is the server's (500).
    private static func creationError(_ entry: String, errno code: Int32) -> PackageError {
        switch code {
        case EEXIST, ENOTDIR, EISDIR, ELOOP:
            .invalid("entry \"\(entry)\" conflicts with an earlier entry of the archive (a file, folder or link of the same path)")
        case ENAMETOOLONG:
            .invalid("entry \"\(entry)\" has a name longer than the file system allows (255 bytes per folder or file name)")
        default:
            .io("cannot create \(entry): \(String(cString: strerror(code)))")
        }
    }

    /// Fails unless the real path of `path` lies inside the destination.
    private func ensureInside(_ path: String, entry: String) throws(PackageError) {
        guard let real = realpath(path, nil) else {
            throw .invalid("entry \"\(entry)\" goes through a link that points nowhere")
        }
        defer { free(real) }
        let resolved = String(cString: real)
        guard resolved == realDestination || resolved.hasPrefix(realDestination + "/") else {
            throw .invalid("entry \"\(entry)\" resolves outside the package")
        }
    }

    // MARK: Header parsing

    /// Splits a path into safe components; `nil` for the archive root itself ("." or "./").
    static func safeRelativePath(_ path: String) throws(PackageError) -> [String]? {
        guard !path.utf8.contains(0) else { throw .invalid("an entry name contains a NUL byte") }
        guard !path.hasPrefix("/") else {
            throw .invalid("entry \"\(path)\" has an absolute path; package entries must be relative")
        }
        var components: [String] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            guard component != ".." else {
                throw .invalid("entry \"\(path)\" contains \"..\"; package entries must stay inside the package")
            }
            components.append(String(component))
        }
        return components.isEmpty ? nil : components
    }

    private static func headerPath(_ header: [UInt8]) -> String {
        let name = cString(header[0..<100])
        let isUstar = header[257..<262].elementsEqual("ustar".utf8)
        let prefix = isUstar ? cString(header[345..<500]) : ""
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    private static func cString(_ bytes: ArraySlice<UInt8>) -> String {
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        return String(decoding: bytes[bytes.startIndex..<end], as: UTF8.self)
    }

    private static func parseOctal(_ bytes: ArraySlice<UInt8>) -> Int64? {
        var value: Int64 = 0
        var sawDigit = false
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                guard value < Int64.max >> 3 else { return nil }
                value = value << 3 + Int64(byte - UInt8(ascii: "0"))
                sawDigit = true
            case UInt8(ascii: " "), 0:
                if sawDigit { return value }
            default:
                return nil
            }
        }
        return sawDigit ? value : 0
    }

    private static func parseSize(_ header: [UInt8]) throws(PackageError) -> Int64 {
        let field = header[124..<136]
        if field.first! & 0x80 != 0 {  // GNU base-256
            var value: Int64 = Int64(field.first! & 0x7F)
            for byte in field.dropFirst() {
                guard value < Int64.max >> 8 else { throw .invalid("an entry declares an impossible size") }
                value = value << 8 | Int64(byte)
            }
            return value
        }
        guard let size = parseOctal(field), size >= 0 else { throw .invalid("an entry has a malformed size field") }
        return size
    }

    private static func verifyChecksum(_ header: [UInt8], isFirst: Bool) throws(PackageError) {
        var unsigned = 0
        for (index, byte) in header.enumerated() {
            unsigned += (148..<156).contains(index) ? 32 : Int(byte)
        }
        guard let stored = parseOctal(header[148..<156]), stored == unsigned else {
            throw .invalid(
                isFirst
                    ? "it is neither a tar archive nor a gzip-compressed tar archive (.tar.gz)"
                    : "a tar header is corrupt (bad checksum); the archive is damaged")
        }
    }

    private static func parsePax(_ data: [UInt8]) -> [String: String] {
        // Records are "<length> <key>=<value>\n".
        var records: [String: String] = [:]
        var index = 0
        while index < data.count {
            guard let space = data[index...].firstIndex(of: UInt8(ascii: " ")),
                let length = Int(String(decoding: data[index..<space], as: UTF8.self)), length > 0,
                index + length <= data.count
            else { break }
            let record = data[(space + 1)..<(index + length - 1)]
            if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
                records[String(decoding: record[..<equals], as: UTF8.self)] =
                    String(decoding: record[(equals + 1)...], as: UTF8.self)
            }
            index += length
        }
        return records
    }

    private static func padding(_ size: Int64) -> Int { Int((512 - size % 512) % 512) }
}

/// Buffers a ``ByteStream`` so that the tar reader can take exact byte counts.
private struct BlockReader {
    private var buffer = ByteBuffer()

    /// Reads exactly `count` bytes, or `nil` at a clean end of stream.
    /// The most bytes asked of the stream at once, whatever the archive declares.
    private static let chunkSize = 256 * 1024

    mutating func read(count: Int, from stream: inout some ByteStream) throws(PackageError) -> [UInt8]? {
        while buffer.readableBytes < count {
            guard var chunk = try stream.next(maxLength: Self.chunkSize) else {
                if buffer.readableBytes == 0 { return nil }
                throw .invalid("the archive is truncated")
            }
            buffer.discardReadBytes()
            buffer.writeBuffer(&chunk)
        }
        return buffer.readBytes(length: count)
    }

    /// Reads between 1 and `maxLength` bytes, or `nil` at end of stream.
    mutating func read(upTo maxLength: Int, from stream: inout some ByteStream) throws(PackageError) -> ByteBuffer? {
        if buffer.readableBytes == 0 {
            guard let chunk = try stream.next(maxLength: Self.chunkSize) else { return nil }
            buffer = chunk
        }
        return buffer.readSlice(length: min(maxLength, buffer.readableBytes))
    }

    /// Reads `count` bytes and the padding to the next 512-byte block.
    mutating func readPadded(count: Int, from stream: inout some ByteStream) throws(PackageError) -> [UInt8] {
        guard let data = try read(count: count, from: &stream) else { throw .invalid("the archive is truncated") }
        try skip(count: (512 - count % 512) % 512, from: &stream)
        return data
    }

    /// Skips `count` bytes and the padding to the next 512-byte block.
    mutating func skipPadded(count: Int64, from stream: inout some ByteStream) throws(PackageError) {
        try skip(count: count + (512 - count % 512) % 512, from: &stream)
    }

    mutating func skip(count: Int, from stream: inout some ByteStream) throws(PackageError) {
        try skip(count: Int64(count), from: &stream)
    }

    mutating func skip(count: Int64, from stream: inout some ByteStream) throws(PackageError) {
        var remaining = count
        while remaining > 0 {
            guard let chunk = try read(upTo: Int(min(remaining, Int64(Self.chunkSize))), from: &stream) else {
                throw .invalid("the archive is truncated")
            }
            remaining -= Int64(chunk.readableBytes)
        }
    }
}
