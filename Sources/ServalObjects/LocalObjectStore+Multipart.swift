import Crypto
import Foundation
public import NIOCore
public import ServalCore

extension LocalObjectStore {
    /// The largest part number S3 allows.
    public static let maxPartNumber = 10_000
    /// The largest part S3 allows (5 GiB).
    public static let maxPartSize: Int64 = 5 << 30

    /// What a multipart upload's folder records about it.
    private struct Upload: Codable {
        var bucket: String
        var key: String
        var contentType: String?
        var metadata: [String: String]
        var tags: [ObjectTag]? = nil

        var attributes: ObjectAttributes {
            ObjectAttributes(contentType: contentType, metadata: metadata, tags: tags ?? [])
        }
    }

    private func uploadPath(_ id: String) -> String { multipartRoot + "/" + id }

    /// Reads an upload's record, checking that it belongs to `location`.
    private func upload(_ id: String, for location: ObjectLocation) throws -> Upload {
        guard !id.isEmpty, id.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }),
            let data = FileManager.default.contents(atPath: uploadPath(id) + "/upload.json"),
            let upload = try? JSONDecoder().decode(Upload.self, from: data),
            upload.bucket == location.bucket, upload.key == location.key
        else { throw ObjectStoreError.noSuchUpload(id) }
        return upload
    }

    public func createMultipartUpload(_ location: ObjectLocation, attributes: ObjectAttributes) async throws -> String {
        let id = Self.randomID()
        let folder = uploadPath(id)
        let bucket = bucketPath(location.bucket)
        let record = try JSONEncoder().encode(
            Upload(
                bucket: location.bucket, key: location.key, contentType: attributes.contentType,
                metadata: attributes.metadata, tags: attributes.tags.isEmpty ? nil : attributes.tags))
        try await io {
            guard try FileSystem.status(bucket, follow: true)?.kind == .directory else {
                throw ObjectStoreError.noSuchBucket(location.bucket)
            }
            try FileSystem.makeDirectory(folder)
            guard FileManager.default.createFile(atPath: folder + "/upload.json", contents: record) else {
                throw ObjectStoreError.io("Cannot write \(folder)/upload.json")
            }
        }
        return id
    }

    public func uploadPart<Body: AsyncSequence & Sendable>(
        _ location: ObjectLocation, uploadID: String, number: Int, body: Body, expectedLength: Int64?,
        expectedMD5: [UInt8]?
    ) async throws -> PartInfo where Body.Element == ByteBuffer {
        try Self.checkPartNumber(number)
        let temporary = uploadPath(uploadID) + "/.tmp-" + Self.randomID()
        let written = try await write(
            body, to: temporary, expectedLength: expectedLength, expectedMD5: expectedMD5, limit: Self.maxPartSize,
            before: { _ = try self.upload(uploadID, for: location) })
        return try await io {
            try self.storePart(temporary, uploadID: uploadID, number: number, etag: written.md5.hex, size: written.size)
        }
    }

    public func uploadPartCopy(
        from source: ObjectLocation, to location: ObjectLocation, uploadID: String, number: Int,
        range resolve: @Sendable (_ source: ObjectInfo) throws -> ClosedRange<Int64>?
    ) async throws -> PartInfo {
        try Self.checkPartNumber(number)
        let opened = try await openCopySource(source)
        let range: Range<Int64>
        if let selected = try resolve(opened.info) {
            guard selected.lowerBound >= 0, selected.upperBound < opened.info.size else {
                throw ObjectStoreError.invalidRange(size: opened.info.size)
            }
            range = selected.lowerBound..<(selected.upperBound + 1)
        } else {
            range = 0..<opened.info.size
        }
        guard Int64(range.count) <= Self.maxPartSize else { throw ObjectStoreError.entityTooLarge(limit: Self.maxPartSize) }
        let temporary = uploadPath(uploadID) + "/.tmp-" + Self.randomID()
        return try await io {
            _ = try self.upload(uploadID, for: location)
            // The part is a hard link to the source's file and the range, its bytes copied once, by the completion:
            // objects are replaced by renames, never rewritten in place, so the linked file keeps these bytes even
            // when the source is replaced or deleted (and a file changed in place by hand is caught at completion by
            // its modification time). Where no link can be made (another filesystem), the bytes are copied now.
            if let linked = try self.link(opened.file, as: temporary) {
                do {
                    let md5 = try self.md5(of: opened.file, range: range)
                    return try self.storePart(
                        temporary, uploadID: uploadID, number: number, etag: md5.hex, size: Int64(range.count),
                        source: PartSource(first: range.lowerBound, modified: linked.modified))
                } catch {
                    FileSystem.remove(temporary)
                    throw error
                }
            }
            let md5 = try self.copyBytes(from: opened.file, range: range, to: temporary, digest: true)!
            return try self.storePart(temporary, uploadID: uploadID, number: number, etag: md5.hex, size: Int64(range.count))
        }
    }

    /// Where a part copied from another object finds its bytes: from `first` in its file, a hard link to the
    /// source's, as long as that file still has the modification time it had when it was linked.
    struct PartSource: Equatable {
        var first: Int64
        var modified: FileSystem.Timestamp
    }

    /// Makes `path` a hard link to the open file `source`; `nil` when it cannot be made or names another file (the
    /// object was replaced between its opening and the link).
    private func link(_ source: FileDescriptor, as path: String) throws -> FileSystem.Status? {
        guard FileSystem.hardLink(source.path, path) == 0 else { return nil }
        let opened = try FileSystem.status(fd: source.fd, path: source.path)
        guard let linked = try FileSystem.status(path, follow: false), linked.kind == .file, linked.inode == opened.inode else {
            FileSystem.remove(path)
            return nil
        }
        return opened
    }

    private static func checkPartNumber(_ number: Int) throws(ObjectStoreError) {
        guard (1...Self.maxPartNumber).contains(number) else {
            throw ObjectStoreError.invalidArgument("Part numbers must be 1 to \(Self.maxPartNumber); got \(number).")
        }
    }

    /// Renames a complete part file (or, with `source`, a link to a copied part's source) into its upload's folder,
    /// replacing an earlier upload of the same part. Its name says the rest: `part-NNNNN-ETAG`, or for a linked
    /// source `part-NNNNN-ETAG-FIRST-SIZE-SECONDS.NANOSECONDS`.
    private func storePart(
        _ temporary: String, uploadID: String, number: Int, etag: String, size: Int64, source: PartSource? = nil
    ) throws -> PartInfo {
        let folder = uploadPath(uploadID)
        let name = Self.partName(number)
        for old in FileSystem.entries(folder) where old.hasPrefix(name + "-") { FileSystem.remove(folder + "/" + old) }
        var target = folder + "/" + name + "-" + etag
        if let source {
            target += "-\(source.first)-\(size)-\(source.modified.seconds).\(source.modified.nanoseconds)"
        }
        let result = FileSystem.move(temporary, target)
        guard result == 0 else {
            FileSystem.remove(temporary)
            if result == ENOENT { throw ObjectStoreError.noSuchUpload(uploadID) }
            throw FileSystem.error("Cannot rename to", target, result)
        }
        // A linked part's file has its source's modification time.
        let modified = source == nil ? try FileSystem.status(target, follow: false)?.modified.date ?? Date() : Date()
        return PartInfo(number: number, etag: etag, size: size, lastModified: modified)
    }

    private static func partName(_ number: Int) -> String {
        "part-" + String(number).leftPadded(to: 5)
    }

    /// A part in an upload's folder.
    private struct StoredPart {
        var path: String
        var info: PartInfo
        /// For a part copied by a link to its source's file: where its bytes are in that file.
        var source: PartSource?
    }

    /// The parts in an upload's folder, by number (see ``storePart(_:uploadID:number:etag:size:source:)`` for the
    /// names).
    private func parts(in folder: String) throws -> [Int: StoredPart] {
        var parts: [Int: StoredPart] = [:]
        for name in FileSystem.entries(folder) where name.hasPrefix("part-") {
            let fields = name.split(separator: "-")
            guard fields.count == 3 || fields.count == 6, let number = Int(fields[1]) else { continue }
            let path = folder + "/" + name
            guard let status = try FileSystem.status(path, follow: false) else { continue }
            var part = StoredPart(
                path: path,
                info: PartInfo(number: number, etag: String(fields[2]), size: status.size, lastModified: status.modified.date))
            if fields.count == 6 {
                let time = fields[5].split(separator: ".")
                guard let first = Int64(fields[3]), let size = Int64(fields[4]), time.count == 2,
                    let seconds = Int64(time[0]), let nanoseconds = Int64(time[1])
                else { continue }
                part.info.size = size
                part.source = PartSource(first: first, modified: .init(seconds: seconds, nanoseconds: nanoseconds))
            }
            parts[number] = part
        }
        return parts
    }

    public func listParts(_ location: ObjectLocation, uploadID: String) async throws -> [PartInfo] {
        try await io {
            _ = try self.upload(uploadID, for: location)
            return try self.parts(in: self.uploadPath(uploadID)).values.map(\.info).sorted { $0.number < $1.number }
        }
    }

    public func completeMultipartUpload(
        _ location: ObjectLocation, uploadID: String, parts requested: [(number: Int, etag: String)],
        condition: WriteCondition?
    ) async throws -> ObjectInfo {
        guard !requested.isEmpty else {
            throw ObjectStoreError.invalidArgument("A multipart upload is completed with at least one part.")
        }
        for (previous, next) in zip(requested, requested.dropFirst()) where next.number <= previous.number {
            throw ObjectStoreError.invalidPartOrder
        }
        let temporary = try await makeTemporaryFile()
        let folder = uploadPath(uploadID)
        return try await io {
            let upload = try self.upload(uploadID, for: location)
            let stored = try self.parts(in: folder)
            var chosen: [StoredPart] = []
            var digests: [UInt8] = []
            for part in requested {
                let etag = part.etag.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
                guard let found = stored[part.number], found.info.etag == etag else {
                    throw ObjectStoreError.invalidPart(part.number)
                }
                chosen.append(found)
                digests += Self.bytes(hex: etag)
            }
            let output = FileDescriptor(try FileSystem.create(temporary), path: temporary)
            do {
                for part in chosen {
                    guard let fd = try FileSystem.openForReading(part.path) else { throw ObjectStoreError.noSuchUpload(uploadID) }
                    let input = FileDescriptor(fd, path: part.path)
                    var range = 0..<part.info.size
                    if let source = part.source {
                        // The linked source file was changed in place since the part was copied: its bytes are gone.
                        let status = try FileSystem.status(fd: fd, path: part.path)
                        guard status.modified == source.modified, status.size >= source.first + part.info.size else {
                            throw ObjectStoreError.invalidPart(part.info.number)
                        }
                        range = source.first..<(source.first + part.info.size)
                    }
                    // The parts' digests are known: the kernel copies the bytes without passing them through memory.
                    var offset = range.lowerBound
                    while offset < range.upperBound {
                        let count = Int(min(Int64(Self.writeChunk) * 8, range.upperBound - offset))
                        let copied = try FileSystem.copy(
                            from: input.fd, at: offset, count: count, to: output.fd, paths: (part.path, temporary))
                        guard copied > 0 else { throw ObjectStoreError.invalidPart(part.info.number) }
                        offset += Int64(copied)
                    }
                }
                try FileSystem.sync(output.fd, path: temporary)
                let etag = Insecure.MD5.hash(data: digests).hex + "-\(requested.count)"
                let info = try self.install(
                    temporary, at: location, etag: etag, attributes: upload.attributes, condition: condition,
                    partSizes: chosen.map(\.info.size))
                FileSystem.removeTree(folder)
                return info
            } catch {
                FileSystem.remove(temporary)
                throw error
            }
        }
    }

    public func abortMultipartUpload(_ location: ObjectLocation, uploadID: String) async throws {
        try await io {
            _ = try self.upload(uploadID, for: location)
            FileSystem.removeTree(self.uploadPath(uploadID))
        }
    }

    private static func bytes(hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var high: UInt8?
        for character in hex.utf8 {
            let value: UInt8
            switch character {
            case 0x30...0x39: value = character - 0x30
            case 0x61...0x66: value = character - 0x61 + 10
            case 0x41...0x46: value = character - 0x41 + 10
            default: continue
            }
            if let h = high {
                result.append(h << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        return result
    }
}
