import NIOCore
import NIOPosix
import ServalObjects

#if canImport(Glibc)
import Glibc
#endif

/// A transform unit's committed output: a file written whole under a temporary name, flushed, and renamed into
/// place, so that it exists complete or not at all. Parts live outside every bucket, so no partial output is ever
/// visible under an output prefix.
enum TransformPart {
    /// Whether a previous attempt committed the part.
    static func exists(at path: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive {
            guard let fd = try FileSystem.openForReading(path) else { return false }
            close(fd)
            return true
        }
    }

    /// Commits `bytes` as the part at `path`, replacing an earlier attempt's; concurrent commits each land whole.
    static func commit(_ bytes: [UInt8], at path: String) async throws {
        try await NIOThreadPool.singleton.runIfActive {
            let folder = String(path[..<path.lastIndex(of: "/")!])
            try FileSystem.makeDirectories(folder)
            // A name of its own: two attempts of one unit may commit at once (its lease expired and this process
            // claimed it again), and a shared temporary file would let one rename the other's half-written bytes.
            // A temporary file left by a crash goes with the job's parts folder.
            let temporary = path + ".tmp-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
            let fd = try FileSystem.create(temporary)
            do {
                try bytes.withUnsafeBytes { buffer in
                    try FileSystem.writeAll(buffer, to: fd, path: temporary)
                }
                try FileSystem.sync(fd, path: temporary)
                close(fd)
            } catch {
                close(fd)
                FileSystem.remove(temporary)
                throw error
            }
            let failure = FileSystem.move(temporary, path)
            guard failure == 0 else { throw FileSystem.error("Cannot rename into", path, failure) }
            FileSystem.syncDirectory(folder)
        }
    }

    /// Writes the parts, in order, into the new file `path` and flushes it.
    static func concatenate(_ parts: [String], into path: String) async throws {
        try await NIOThreadPool.singleton.runIfActive {
            let out = try FileSystem.create(path)
            defer { close(out) }
            for part in parts {
                guard let fd = try FileSystem.openForReading(part) else {
                    throw ObjectStoreError.io("The committed part \(part) is missing; the job's parts folder was changed.")
                }
                defer { close(fd) }
                var offset: Int64 = 0
                while true {
                    let chunk = try FileSystem.readChunk(fd: fd, at: offset, count: 1 << 20, path: part)
                    if chunk.readableBytes == 0 { break }
                    try chunk.withUnsafeReadableBytes { buffer in
                        try FileSystem.writeAll(buffer, to: out, path: path)
                    }
                    offset += Int64(chunk.readableBytes)
                }
            }
            try FileSystem.sync(out, path: path)
        }
    }
}
