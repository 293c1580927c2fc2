import Crypto
import Foundation
import NIOCore
public import ServalCore

extension LocalObjectStore {
    /// An object opened as the source of a copy.
    struct CopySource: Sendable {
        var file: FileDescriptor
        var sidecar: Sidecar
        var info: ObjectInfo
    }

    /// Opens an object's file for a copy, with what its sidecar says of it.
    func openCopySource(_ location: ObjectLocation) async throws -> CopySource {
        try await io {
            guard let path = try self.filePath(location, createFolders: false),
                let fd = try FileSystem.openForReading(path)
            else { throw ObjectStoreError.noSuchKey(location) }
            let file = FileDescriptor(fd, path: path)
            let status = try FileSystem.status(fd: fd, path: path)
            guard status.kind == .file else { throw ObjectStoreError.noSuchKey(location) }
            let sidecar = self.sidecar(location, status: status)
            return CopySource(file: file, sidecar: sidecar, info: sidecar.info(location, modified: status.modified.date))
        }
    }

    /// The MD5 digest of the bytes `range` of `file`, read a megabyte at a time.
    func md5(of file: FileDescriptor, range: Range<Int64>) throws -> [UInt8] {
        var md5 = Insecure.MD5()
        var offset = range.lowerBound
        while offset < range.upperBound {
            let count = Int(min(Int64(Self.writeChunk), range.upperBound - offset))
            let chunk = try FileSystem.readChunk(fd: file.fd, at: offset, count: count, path: file.path)
            guard chunk.readableBytes > 0 else { throw ObjectStoreError.io("\(file.path) became shorter while it was copied.") }
            chunk.withUnsafeReadableBytes { md5.update(bufferPointer: $0) }
            offset += Int64(chunk.readableBytes)
        }
        return Array(md5.finalize())
    }

    /// Copies the bytes `range` of `source` into a new file at `path` and flushes it; on any failure the file is
    /// removed. With `digest`, the bytes pass through memory a megabyte at a time and their MD5 is returned;
    /// without, the kernel copies them (where it can) and the result is `nil`.
    func copyBytes(from source: FileDescriptor, range: Range<Int64>, to path: String, digest: Bool) throws -> [UInt8]? {
        let output = FileDescriptor(try FileSystem.create(path), path: path)
        do {
            var md5 = Insecure.MD5()
            var offset = range.lowerBound
            while offset < range.upperBound {
                let count = Int(min(Int64(Self.writeChunk) * 8, range.upperBound - offset))
                let copied: Int
                if digest {
                    let chunk = try FileSystem.readChunk(fd: source.fd, at: offset, count: min(count, Self.writeChunk), path: source.path)
                    try chunk.withUnsafeReadableBytes { bytes in
                        md5.update(bufferPointer: bytes)
                        try FileSystem.writeAll(bytes, to: output.fd, path: path)
                    }
                    copied = chunk.readableBytes
                } else {
                    copied = try FileSystem.copy(from: source.fd, at: offset, count: count, to: output.fd, paths: (source.path, path))
                }
                guard copied > 0 else { throw ObjectStoreError.io("\(source.path) became shorter while it was copied.") }
                offset += Int64(copied)
            }
            try FileSystem.sync(output.fd, path: path)
            return digest ? Array(md5.finalize()) : nil
        } catch {
            FileSystem.remove(path)
            throw error
        }
    }

    public func copy(
        from source: ObjectLocation, to target: ObjectLocation, condition: WriteCondition?,
        attributes: @Sendable (_ source: ObjectInfo) throws -> ObjectAttributes
    ) async throws -> ObjectInfo {
        let opened = try await openCopySource(source)
        let chosen = try attributes(opened.info)
        let temporary = try await makeTemporaryFile()
        return try await io {
            // A copy of all the bytes has the source's ETag when that was computed from them (as an MD5, or from the
            // parts' MD5s); else the copy's MD5 is computed on the way.
            let digest = opened.sidecar.derivedETag == true
            let md5 = try self.copyBytes(from: opened.file, range: 0..<opened.info.size, to: temporary, digest: digest)
            do {
                return try self.install(
                    temporary, at: target, etag: md5?.hex ?? opened.info.etag, attributes: chosen,
                    condition: condition, partSizes: digest ? [] : opened.info.partSizes)
            } catch {
                FileSystem.remove(temporary)
                throw error
            }
        }
    }
}
