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

    /// Writes a part as it is produced, so that a unit's output never has to be held whole: bytes go to a
    /// temporary file of this attempt's own (two attempts of one unit may run at once: its lease expired and this
    /// process claimed it again; a shared temporary file would let one rename the other's half-written bytes), and
    /// ``commit()`` flushes it and renames it into place. A temporary file left by a crash goes with the job's
    /// parts folder.
    final class Writer: Sendable {
        let path: String
        private let temporary: String
        private let fd: Int32

        /// Starts the part at `path`.
        init(path: String) async throws {
            let folder = String(path[..<path.lastIndex(of: "/")!])
            let temporary = path + ".tmp-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
            self.path = path
            self.temporary = temporary
            fd = try await NIOThreadPool.singleton.runIfActive {
                try FileSystem.makeDirectories(folder)
                return try FileSystem.create(temporary)
            }
        }

        /// Appends bytes.
        func write(_ bytes: [UInt8]) async throws {
            let (fd, temporary) = (fd, temporary)
            try await NIOThreadPool.singleton.runIfActive {
                try bytes.withUnsafeBytes { buffer in try FileSystem.writeAll(buffer, to: fd, path: temporary) }
            }
        }

        /// Flushes the part and renames it into place, replacing an earlier attempt's.
        func commit() async throws {
            let (fd, temporary, path) = (fd, temporary, path)
            try await NIOThreadPool.singleton.runIfActive {
                try FileSystem.sync(fd, path: temporary)
                let failure = FileSystem.move(temporary, path)
                guard failure == 0 else { throw FileSystem.error("Cannot rename into", path, failure) }
                FileSystem.syncDirectory(String(path[..<path.lastIndex(of: "/")!]))
            }
        }

        deinit {
            close(fd)
            // After a commit the temporary name is gone; otherwise the attempt failed and its bytes go.
            FileSystem.remove(temporary)
        }
    }

    /// Commits `bytes` as the part at `path`, replacing an earlier attempt's; concurrent commits each land whole.
    static func commit(_ bytes: [UInt8], at path: String) async throws {
        let writer = try await Writer(path: path)
        try await writer.write(bytes)
        try await writer.commit()
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
