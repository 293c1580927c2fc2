import Crypto
import Foundation
public import NIOCore
public import NIOPosix
public import ServalCore
import Synchronization

/// An ``ObjectStore`` in a local folder: one folder per bucket, one file per object.
///
/// Layout under `root`:
/// ```
/// <bucket>/<key>                      the objects; files dropped here by hand are objects too
/// .serval/tmp/                        files being written, renamed into place when complete
/// .serval/meta/<bucket>/<sha256(key)> content type, ETag and user metadata of objects written through the store
/// .serval/multipart/<upload id>/      the parts of multipart uploads in progress
/// ```
/// Bucket names cannot start with `.`, so `.serval` is never a bucket. A sidecar describes its object only while
/// the object's inode, size and modification time still match; a file replaced by hand gets the defaults
/// (`application/octet-stream`, an ETag derived from its size and modification time).
///
/// A symlink inside a bucket is followed only when it resolves inside the same bucket.
public struct LocalObjectStore: ObjectStore {
    /// The folder holding the buckets.
    public let root: String
    let threadPool: NIOThreadPool
    let commitLock: CommitLock
    /// Bytes buffered before each write to the temporary file.
    static let writeChunk = 1 << 20
    /// Bytes per chunk of a read.
    static let readChunk = 256 << 10

    /// Opens (and creates, if needed) a store in `root`.
    public init(root: String, threadPool: NIOThreadPool = .singleton) throws {
        self.root = URL(fileURLWithPath: root).standardizedFileURL.path
        self.threadPool = threadPool
        self.commitLock = CommitLock()
        for folder in [temporaryDirectory, metaRoot, multipartRoot] {
            try FileSystem.makeDirectories(folder)
        }
        removeAbandonedTemporaryFiles()
    }

    /// Removes temporary files left by a crash: those not written to for an hour (a write in progress touches its
    /// file with every chunk).
    private func removeAbandonedTemporaryFiles() {
        let cutoff = Int64(Date().timeIntervalSince1970) - 3600
        for name in FileSystem.entries(temporaryDirectory) {
            let path = temporaryDirectory + "/" + name
            if let status = try? FileSystem.status(path, follow: false), status.modified.seconds < cutoff {
                FileSystem.remove(path)
            }
        }
    }

    var temporaryDirectory: String { root + "/.serval/tmp" }
    var metaRoot: String { root + "/.serval/meta" }
    var multipartRoot: String { root + "/.serval/multipart" }

    func bucketPath(_ bucket: String) -> String { root + "/" + bucket }

    func sidecarPath(_ location: ObjectLocation) -> String {
        let digest = SHA256.hash(data: Array(location.key.utf8))
        return metaRoot + "/" + location.bucket + "/" + digest.hex
    }

    /// Runs blocking file work on the thread pool.
    func io<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await threadPool.runIfActive(work)
    }

    // MARK: Buckets

    @discardableResult
    public func createBucket(_ name: String) async throws -> Bool {
        try Self.checkBucketName(name)
        let path = bucketPath(name)
        return try await io { try FileSystem.makeDirectory(path) }
    }

    public func bucketExists(_ name: String) async throws -> Bool {
        guard (try? ObjectLocation.validate(bucket: name)) != nil else { return false }
        let path = bucketPath(name)
        return try await io { try FileSystem.status(path, follow: true)?.kind == .directory }
    }

    public func listBuckets() async throws -> [BucketInfo] {
        let root = self.root
        return try await io {
            FileSystem.entries(root).compactMap { name -> BucketInfo? in
                guard (try? ObjectLocation.validate(bucket: name)) != nil,
                    let status = try? FileSystem.status(root + "/" + name, follow: true), status.kind == .directory
                else { return nil }
                return BucketInfo(name: name, creationDate: status.modified.date)
            }.sorted { $0.name < $1.name }
        }
    }

    public func deleteBucket(_ name: String) async throws {
        try Self.checkBucketName(name)
        let path = bucketPath(name)
        let meta = metaRoot + "/" + name
        try await io {
            guard try FileSystem.status(path, follow: true)?.kind == .directory else { throw ObjectStoreError.noSuchBucket(name) }
            guard try !Self.containsObject(path) else { throw ObjectStoreError.bucketNotEmpty(name) }
            FileSystem.removeTree(path)
            FileSystem.removeTree(meta)
        }
    }

    static func checkBucketName(_ name: String) throws(ObjectStoreError) {
        do {
            try ObjectLocation.validate(bucket: name)
        } catch {
            throw .invalidArgument(error.message)
        }
    }

    /// Whether a folder holds at least one file (at any depth).
    static func containsObject(_ folder: String) throws -> Bool {
        for name in FileSystem.entries(folder) {
            let path = folder + "/" + name
            switch try FileSystem.status(path, follow: false)?.kind {
            case .directory: if try containsObject(path) { return true }
            case .none: continue
            default: return true
            }
        }
        return false
    }

    // MARK: Paths

    /// The file path of an object, after checking that no symlink on the way leads out of its bucket and no file
    /// stands where a folder of the key should be.
    ///
    /// - Parameter createFolders: make the missing folders of the key (for a write); otherwise a missing folder
    ///   returns `nil`.
    func filePath(_ location: ObjectLocation, createFolders: Bool) throws -> String? {
        let bucket = bucketPath(location.bucket)
        guard try FileSystem.status(bucket, follow: true)?.kind == .directory else {
            throw ObjectStoreError.noSuchBucket(location.bucket)
        }
        var bucketRealPath: String?
        func checkInside(_ path: String) throws {
            if bucketRealPath == nil { bucketRealPath = try FileSystem.realPath(bucket) }
            let real = try FileSystem.realPath(path)
            guard real == bucketRealPath! || real.hasPrefix(bucketRealPath! + "/") else {
                throw ObjectStoreError.invalidArgument(
                    "\(location.uri) goes through a symbolic link that leads out of the bucket; Serval does not follow it.")
            }
        }
        let segments = location.key.split(separator: "/")
        var current = bucket
        var keySoFar = ""
        for segment in segments.dropLast() {
            current += "/" + segment
            keySoFar += keySoFar.isEmpty ? String(segment) : "/" + segment
            var attempts = 0
            while true {
                attempts += 1
                switch try FileSystem.status(current, follow: false)?.kind {
                case .directory:
                    break
                case .symlink:
                    try checkInside(current)
                    guard try FileSystem.status(current, follow: true)?.kind == .directory else {
                        guard createFolders else { return nil }
                        throw ObjectStoreError.keyConflict(location, conflictingKey: keySoFar)
                    }
                case .none:
                    guard createFolders else { return nil }
                    // A concurrent delete may remove a folder just made; try again a few times.
                    if attempts < 5 { try FileSystem.makeDirectory(current); continue }
                    throw ObjectStoreError.io("Cannot create the folder \(current)")
                case .file, .other:
                    guard createFolders else { return nil }
                    throw ObjectStoreError.keyConflict(location, conflictingKey: keySoFar)
                }
                break
            }
        }
        let path = current + "/" + segments.last!
        if try FileSystem.status(path, follow: false)?.kind == .symlink {
            try checkInside(path)
        }
        return path
    }

    // MARK: Reading

    public func head(_ location: ObjectLocation) async throws -> ObjectInfo? {
        try await io { try self.headNow(location) }
    }

    func headNow(_ location: ObjectLocation) throws -> ObjectInfo? {
        guard let path = try filePath(location, createFolders: false),
            let status = try FileSystem.status(path, follow: true), status.kind == .file
        else { return nil }
        return info(location, status: status)
    }

    /// The description of an object from its file's status and its sidecar, if the sidecar still matches.
    func info(_ location: ObjectLocation, status: FileSystem.Status) -> ObjectInfo {
        sidecar(location, status: status).info(location, modified: status.modified.date)
    }

    /// The object's sidecar if it still describes the file with this status, else the defaults for a file dropped in
    /// by hand (an ETag derived from size and modification time, `application/octet-stream`).
    func sidecar(_ location: ObjectLocation, status: FileSystem.Status) -> Sidecar {
        if let data = FileManager.default.contents(atPath: sidecarPath(location)),
            let sidecar = try? JSONDecoder().decode(Sidecar.self, from: data),
            sidecar.key == location.key, sidecar.inode == status.inode, sidecar.size == status.size,
            sidecar.modified == status.modified
        {
            return sidecar
        }
        let tag = Insecure.MD5.hash(data: Array("\(status.size)-\(status.modified.seconds).\(status.modified.nanoseconds)".utf8))
        return Sidecar(
            key: location.key, etag: tag.hex, contentType: "application/octet-stream", metadata: [:],
            size: status.size, inode: status.inode, modified: status.modified, derivedETag: true)
    }

    /// Writes a sidecar (to a temporary file renamed into place). Call with ``commitLock`` held.
    func writeSidecar(_ sidecar: Sidecar, for location: ObjectLocation) throws {
        let sidecarPath = self.sidecarPath(location)
        let sidecarData = try JSONEncoder().encode(sidecar)
        try FileSystem.makeDirectories((sidecarPath as NSString).deletingLastPathComponent)
        let sidecarTemporary = sidecarPath + ".tmp"
        guard FileManager.default.createFile(atPath: sidecarTemporary, contents: sidecarData) else {
            throw ObjectStoreError.io("Cannot write \(sidecarTemporary)")
        }
        let sidecarResult = FileSystem.move(sidecarTemporary, sidecarPath)
        guard sidecarResult == 0 else { throw FileSystem.error("Cannot rename to", sidecarPath, sidecarResult) }
    }

    public func read(
        _ location: ObjectLocation, range: @Sendable (_ size: Int64) throws -> ClosedRange<Int64>?
    ) async throws -> ObjectReader {
        // The resolver is not escaping; run it here, on the result of the open.
        let (file, info) = try await io { () throws -> (FileDescriptor, ObjectInfo) in
            guard let path = try self.filePath(location, createFolders: false),
                let fd = try FileSystem.openForReading(path)
            else { throw ObjectStoreError.noSuchKey(location) }
            let file = FileDescriptor(fd, path: path)
            let status = try FileSystem.status(fd: fd, path: path)
            guard status.kind == .file else { throw ObjectStoreError.noSuchKey(location) }
            return (file, self.info(location, status: status))
        }
        let selected = try range(info.size)
        if let selected {
            guard selected.lowerBound >= 0, selected.upperBound < info.size else {
                throw ObjectStoreError.invalidRange(size: info.size)
            }
        }
        let cursor = ReadCursor(
            file: file, offset: selected?.lowerBound ?? 0,
            end: (selected?.upperBound).map { $0 + 1 } ?? info.size)
        let pool = threadPool
        return ObjectReader(info: info, range: selected, body: ObjectBody { try await cursor.next(on: pool) })
    }

    public func localPath(of location: ObjectLocation) async throws -> String? {
        try await io {
            guard let path = try self.filePath(location, createFolders: false),
                try FileSystem.status(path, follow: true)?.kind == .file
            else { return nil }
            return path
        }
    }

    // MARK: Writing

    public func put<Body: AsyncSequence & Sendable>(
        _ location: ObjectLocation, attributes: ObjectAttributes, body: Body, expectedLength: Int64?,
        expectedMD5: [UInt8]?, condition: WriteCondition?
    ) async throws -> ObjectInfo where Body.Element == ByteBuffer {
        let bucket = bucketPath(location.bucket)
        let temporary = try await makeTemporaryFile()
        let written = try await write(
            body, to: temporary, expectedLength: expectedLength, expectedMD5: expectedMD5,
            before: {
                guard try FileSystem.status(bucket, follow: true)?.kind == .directory else {
                    throw ObjectStoreError.noSuchBucket(location.bucket)
                }
            })
        do {
            return try await io {
                try self.install(
                    temporary, at: location, etag: written.md5.hex, attributes: attributes, condition: condition)
            }
        } catch {
            FileSystem.remove(temporary)
            throw error
        }
    }

    public func makeTemporaryFile() async throws -> String {
        temporaryDirectory + "/" + Self.randomID()
    }

    public func commit(temporaryFile: String, to location: ObjectLocation, contentType: String?) async throws -> ObjectInfo {
        try await io {
            guard let fd = try FileSystem.openForReading(temporaryFile) else {
                throw ObjectStoreError.io("The temporary file \(temporaryFile) does not exist.")
            }
            let file = FileDescriptor(fd, path: temporaryFile)
            var md5 = Insecure.MD5()
            var offset: Int64 = 0
            while true {
                let chunk = try FileSystem.readChunk(fd: file.fd, at: offset, count: Self.writeChunk, path: temporaryFile)
                if chunk.readableBytes == 0 { break }
                chunk.withUnsafeReadableBytes { md5.update(bufferPointer: $0) }
                offset += Int64(chunk.readableBytes)
            }
            try FileSystem.sync(file.fd, path: temporaryFile)
            return try self.install(
                temporaryFile, at: location, etag: md5.finalize().hex, attributes: ObjectAttributes(contentType: contentType),
                condition: nil)
        }
    }

    /// The result of streaming a body into a file.
    struct Written {
        var size: Int64
        /// The MD5 digest of the bytes.
        var md5: [UInt8]
    }

    /// Streams `body` into a new file at `path`, flushed to disk. On any failure the file is removed.
    ///
    /// - Parameter before: checks run on the thread pool before the file is created.
    func write<Body: AsyncSequence & Sendable>(
        _ body: Body, to path: String, expectedLength: Int64?, expectedMD5: [UInt8]?,
        limit: Int64? = nil, before: @escaping @Sendable () throws -> Void = {}
    ) async throws -> Written where Body.Element == ByteBuffer {
        let writer = try await io { () throws -> FileWriter in
            try before()
            return FileWriter(file: FileDescriptor(try FileSystem.create(path), path: path))
        }
        do {
            var pending = ByteBuffer()
            var size: Int64 = 0
            for try await var chunk in body {
                size += Int64(chunk.readableBytes)
                if let expectedLength, size > expectedLength {
                    throw ObjectStoreError.incompleteBody(expected: expectedLength, received: size)
                }
                if let limit, size > limit { throw ObjectStoreError.entityTooLarge(limit: limit) }
                if pending.readableBytes == 0 && chunk.readableBytes >= Self.writeChunk {
                    try await io { [chunk] in try writer.append(chunk) }
                    continue
                }
                pending.writeBuffer(&chunk)
                if pending.readableBytes >= Self.writeChunk {
                    try await io { [pending] in try writer.append(pending) }
                    pending.clear()
                }
            }
            if let expectedLength, size != expectedLength {
                throw ObjectStoreError.incompleteBody(expected: expectedLength, received: size)
            }
            let md5 = try await io { [pending] in
                try writer.append(pending)
                return try writer.finish()
            }
            if let expectedMD5, md5 != expectedMD5 { throw ObjectStoreError.badDigest }
            return Written(size: size, md5: md5)
        } catch {
            FileSystem.remove(path)
            throw error
        }
    }

    /// Renames a complete, flushed file into place as `location`, after writing its sidecar.
    ///
    /// The condition is checked under ``commitLock``, so no write through this store comes between the check and the
    /// rename; for ``WriteCondition/absent`` the file is linked into place, which fails if anything (even a file
    /// dropped in by hand) got there first.
    func install(
        _ temporary: String, at location: ObjectLocation, etag: String, attributes: ObjectAttributes,
        condition: WriteCondition?, partSizes: [Int64] = []
    ) throws -> ObjectInfo {
        guard let target = try filePath(location, createFolders: true) else {
            throw ObjectStoreError.noSuchKey(location)
        }
        if try FileSystem.status(target, follow: false)?.kind == .directory {
            let below = FileSystem.entries(target).sorted().first.map { location.key + "/" + $0 } ?? location.key + "/"
            throw ObjectStoreError.keyConflict(location, conflictingKey: below)
        }
        guard let status = try FileSystem.status(temporary, follow: false) else {
            throw ObjectStoreError.io("The temporary file \(temporary) vanished.")
        }
        let sidecar = Sidecar(
            key: location.key, etag: etag, contentType: attributes.contentType ?? "application/octet-stream",
            metadata: attributes.metadata, size: status.size, inode: status.inode, modified: status.modified,
            tags: attributes.tags.isEmpty ? nil : attributes.tags, partSizes: partSizes.isEmpty ? nil : partSizes)
        try commitLock.mutex.withLock { _ in
            switch condition {
            case .none: break
            case .absent:
                if try FileSystem.status(target, follow: false) != nil { throw ObjectStoreError.preconditionFailed }
            case .matching(let etag):
                guard let current = try headNow(location) else { throw ObjectStoreError.noSuchKey(location) }
                guard current.etag == etag else { throw ObjectStoreError.preconditionFailed }
            }
            try writeSidecar(sidecar, for: location)
            let result = condition == .absent ? FileSystem.hardLink(temporary, target) : FileSystem.move(temporary, target)
            switch result {
            case 0: break
            case EEXIST where condition == .absent:
                throw ObjectStoreError.preconditionFailed
            case EISDIR, ENOTEMPTY, EEXIST:
                throw ObjectStoreError.keyConflict(location, conflictingKey: location.key + "/")
            case ENOTDIR:
                throw ObjectStoreError.keyConflict(location, conflictingKey: location.key)
            default:
                throw FileSystem.error("Cannot rename to", target, result)
            }
        }
        // A linked file keeps its temporary name too.
        if condition == .absent { FileSystem.remove(temporary) }
        FileSystem.syncDirectory((target as NSString).deletingLastPathComponent)
        return sidecar.info(location, modified: status.modified.date)
    }

    // MARK: Tags

    public func setTags(_ tags: [ObjectTag], of location: ObjectLocation) async throws {
        try await io {
            try self.commitLock.mutex.withLock { _ in
                guard let path = try self.filePath(location, createFolders: false),
                    let status = try FileSystem.status(path, follow: true), status.kind == .file
                else { throw ObjectStoreError.noSuchKey(location) }
                var sidecar = self.sidecar(location, status: status)
                sidecar.tags = tags.isEmpty ? nil : tags
                try self.writeSidecar(sidecar, for: location)
            }
        }
    }

    // MARK: Deleting

    @discardableResult
    public func delete(_ location: ObjectLocation) async throws -> Bool {
        try await io {
            guard let path = try self.filePath(location, createFolders: false),
                let status = try FileSystem.status(path, follow: false), status.kind != .directory
            else { return false }
            try self.commitLock.mutex.withLock { _ in
                guard unlink(path) == 0 else {
                    if errno == ENOENT { return }
                    throw FileSystem.error("Cannot delete", path)
                }
                FileSystem.remove(self.sidecarPath(location))
            }
            // Remove the folders the key leaves empty, up to the bucket.
            let bucket = self.bucketPath(location.bucket)
            var folder = (path as NSString).deletingLastPathComponent
            while folder.count > bucket.count, folder.hasPrefix(bucket + "/"), rmdir(folder) == 0 {
                folder = (folder as NSString).deletingLastPathComponent
            }
            return true
        }
    }

    static func randomID() -> String {
        (0..<4).map { _ in String(UInt32.random(in: 0...UInt32.max), radix: 16).leftPadded(to: 8) }.joined()
    }
}

/// Serialises sidecar writes with the renames they describe, so that concurrent writers of one key end with the
/// sidecar of the file that won.
final class CommitLock: Sendable {
    let mutex = Mutex(())
}

/// What the store records about an object it wrote, beside the object.
struct Sidecar: Codable {
    var key: String
    var etag: String
    var contentType: String
    var metadata: [String: String]
    /// The file this sidecar describes: if it no longer matches, the object was replaced by hand.
    var size: Int64
    var inode: UInt64
    var modified: FileSystem.Timestamp
    /// The object's tags; `nil` when it has none.
    var tags: [ObjectTag]? = nil
    /// The sizes of the parts of an object completed from a multipart upload.
    var partSizes: [Int64]? = nil
    /// `true` when the ETag was derived from size and modification time (a file dropped in by hand), not computed
    /// from the bytes.
    var derivedETag: Bool? = nil

    func info(_ location: ObjectLocation, modified date: Date) -> ObjectInfo {
        ObjectInfo(
            location: location, size: size, etag: etag, lastModified: date, contentType: contentType,
            metadata: metadata, tags: tags ?? [], partSizes: partSizes ?? [])
    }
}

/// A temporary file being written, with the MD5 of what was written so far. Used by one writer at a time.
final class FileWriter: @unchecked Sendable {
    private let file: FileDescriptor
    private var md5 = Insecure.MD5()

    init(file: FileDescriptor) {
        self.file = file
    }

    func append(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { bytes in
            md5.update(bufferPointer: bytes)
            try FileSystem.writeAll(bytes, to: file.fd, path: file.path)
        }
    }

    func finish() throws -> [UInt8] {
        try FileSystem.sync(file.fd, path: file.path)
        return Array(md5.finalize())
    }
}

/// The position of a streaming read. Used by one iterator at a time.
final class ReadCursor: @unchecked Sendable {
    private let file: FileDescriptor
    private var offset: Int64
    private let end: Int64

    init(file: FileDescriptor, offset: Int64, end: Int64) {
        self.file = file
        self.offset = offset
        self.end = end
    }

    func next(on pool: NIOThreadPool) async throws -> ByteBuffer? {
        guard offset < end else { return nil }
        let count = Int(min(Int64(LocalObjectStore.readChunk), end - offset))
        let (file, offset) = (self.file, self.offset)
        let chunk = try await pool.runIfActive {
            try FileSystem.readChunk(fd: file.fd, at: offset, count: count, path: file.path)
        }
        guard chunk.readableBytes > 0 else {
            throw ObjectStoreError.io("\(file.path) became shorter while it was read.")
        }
        self.offset += Int64(chunk.readableBytes)
        return chunk
    }
}

extension Sequence where Element == UInt8 {
    /// Lowercase hexadecimal.
    var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var result: [UInt8] = []
        for byte in self {
            result.append(digits[Int(byte >> 4)])
            result.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: result, as: UTF8.self)
    }
}

extension String {
    func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
