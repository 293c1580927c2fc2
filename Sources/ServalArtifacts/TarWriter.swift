import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a folder as a tar archive: regular files, folders and symbolic links, names of any length
/// (GNU long-name records). Used to upload a package folder, and to store a folder the same way as an archive.
public enum TarWriter {
    /// Writes the contents of `folder` (not the folder itself) as a tar archive to the file at `archivePath`.
    public static func archive(folder: String, to archivePath: String) throws(PackageError) {
        let fd = open(archivePath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io("cannot create \(archivePath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var output = FileOutput(descriptor: fd)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .invalid("\(folder) is not a folder")
        }
        let entries: [String]
        do {
            entries = try FileManager.default.subpathsOfDirectory(atPath: folder).sorted()
        } catch {
            throw .io("cannot list \(folder): \(error.localizedDescription)")
        }
        for entry in entries {
            let path = folder + "/" + entry
            var info = stat()
            guard lstat(path, &info) == 0 else { throw .io("cannot read \(path): \(String(cString: strerror(errno)))") }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                try writeHeader(name: entry + "/", type: "5", size: 0, mode: 0o755, link: "", to: &output)
            case S_IFLNK:
                var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let length = readlink(path, &target, target.count - 1)
                guard length >= 0 else { throw .io("cannot read link \(path)") }
                let link = String(decoding: target[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                try writeHeader(name: entry, type: "2", size: 0, mode: 0o777, link: link, to: &output)
            case S_IFREG:
                let size = Int64(info.st_size)
                let executable = info.st_mode & 0o111 != 0
                try writeHeader(name: entry, type: "0", size: size, mode: executable ? 0o755 : 0o644, link: "", to: &output)
                try copyFile(path, size: size, to: &output)
            default:
                throw .invalid("\(path) is not a file, folder or link; remove it from the package")
            }
        }
        try output.append([UInt8](repeating: 0, count: 1024))
    }

    private static func copyFile(_ path: String, size: Int64, to output: inout FileOutput) throws(PackageError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        var remaining = size
        while remaining > 0 {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, Int(min(Int64($0.count), remaining))) }
            guard count > 0 else { throw .io("\(path) changed while it was being archived") }
            try output.append(buffer[0..<count])
            remaining -= Int64(count)
        }
        let padding = Int((512 - size % 512) % 512)
        if padding > 0 { try output.append([UInt8](repeating: 0, count: padding)) }
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
