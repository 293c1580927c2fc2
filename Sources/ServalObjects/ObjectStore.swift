public import Foundation
public import NIOCore
public import ServalCore

/// Serval's object store: buckets of objects addressed by ``ServalCore/ObjectLocation``, written atomically.
///
/// An object exists complete or not at all: writers stream into a temporary file and rename it into place, so a
/// reader or a listing never sees a partial or temporary object. Every operation is `async` and does its file I/O
/// off the event loops. Errors are ``ObjectStoreError``s.
public protocol ObjectStore: Sendable {
    // MARK: Buckets

    /// Creates a bucket; returns `false` when it existed already.
    @discardableResult
    func createBucket(_ name: String) async throws -> Bool

    /// Whether the bucket exists.
    func bucketExists(_ name: String) async throws -> Bool

    /// Every bucket, sorted by name.
    func listBuckets() async throws -> [BucketInfo]

    /// Deletes an empty bucket; throws ``ObjectStoreError/bucketNotEmpty(_:)`` otherwise.
    func deleteBucket(_ name: String) async throws

    // MARK: Objects

    /// Streams `body` into a new object that replaces any object at `location` once complete.
    ///
    /// - Parameters:
    ///   - attributes: the content type, user metadata and tags to store with the object.
    ///   - expectedLength: when given, a body of another length fails with ``ObjectStoreError/incompleteBody(expected:received:)``
    ///     and nothing is stored.
    ///   - expectedMD5: when given, a body with another MD5 digest fails with ``ObjectStoreError/badDigest`` and
    ///     nothing is stored.
    ///   - condition: when given, checked against the object in place at the moment the new one replaces it; a failed
    ///     check stores nothing.
    /// - Returns: the stored object's description.
    func put<Body: AsyncSequence & Sendable>(
        _ location: ObjectLocation, attributes: ObjectAttributes, body: Body, expectedLength: Int64?,
        expectedMD5: [UInt8]?, condition: WriteCondition?
    ) async throws -> ObjectInfo where Body.Element == ByteBuffer

    /// Copies an object (all of it) to `target`, atomically, streaming on disk (never through memory).
    ///
    /// - Parameters:
    ///   - attributes: called with the source's description once it is open; checks it (throwing to refuse the
    ///     copy) and returns the attributes of the copy.
    ///   - condition: checked against the object at `target` as for ``put(_:attributes:body:expectedLength:expectedMD5:condition:)``.
    /// - Returns: the copy's description.
    func copy(
        from source: ObjectLocation, to target: ObjectLocation, condition: WriteCondition?,
        attributes: @Sendable (_ source: ObjectInfo) throws -> ObjectAttributes
    ) async throws -> ObjectInfo

    /// Replaces an object's tags (an empty list removes them), leaving its bytes and other attributes as they are.
    func setTags(_ tags: [ObjectTag], of location: ObjectLocation) async throws

    /// A path for a new temporary file on the same filesystem as the objects, outside every bucket, for
    /// ``commit(temporaryFile:to:contentType:)``. The file does not exist yet; its folder does.
    func makeTemporaryFile() async throws -> String

    /// Renames a complete file (made at a path from ``makeTemporaryFile()``) into place as an object, atomically.
    func commit(temporaryFile: String, to location: ObjectLocation, contentType: String?) async throws -> ObjectInfo

    /// The object's description, or `nil` when there is none.
    func head(_ location: ObjectLocation) async throws -> ObjectInfo?

    /// Opens an object for reading.
    ///
    /// - Parameter range: called with the object's size; returns the byte range to read, or `nil` for all of it.
    ///   It may throw (e.g. ``ObjectStoreError/invalidRange(size:)``) to refuse the read.
    /// - Returns: the object's description, the range read, and its bytes as a stream of chunks.
    func read(
        _ location: ObjectLocation, range: @Sendable (_ size: Int64) throws -> ClosedRange<Int64>?
    ) async throws -> ObjectReader

    /// The object's file, for a store that keeps objects as local files (else `nil`); lets a worker read an input
    /// directly. The path is only valid until the object is replaced or deleted.
    func localPath(of location: ObjectLocation) async throws -> String?

    /// Deletes an object; returns whether there was one.
    @discardableResult
    func delete(_ location: ObjectLocation) async throws -> Bool

    /// Lists a bucket's objects in S3's order (by the UTF-8 bytes of their keys).
    func list(_ request: ObjectListRequest) async throws -> ObjectListing

    // MARK: Multipart uploads

    /// Starts a multipart upload to `location` of an object with these attributes; returns its id.
    func createMultipartUpload(_ location: ObjectLocation, attributes: ObjectAttributes) async throws -> String

    /// Stores part `number` (1...10,000) of an upload, replacing an earlier upload of the same part.
    func uploadPart<Body: AsyncSequence & Sendable>(
        _ location: ObjectLocation, uploadID: String, number: Int, body: Body, expectedLength: Int64?,
        expectedMD5: [UInt8]?
    ) async throws -> PartInfo where Body.Element == ByteBuffer

    /// Stores part `number` of an upload as a copy of bytes of another object, streaming on disk.
    ///
    /// - Parameter range: called with the source's description once it is open; checks it (throwing to refuse the
    ///   copy) and returns the bytes to copy, or `nil` for all of them.
    func uploadPartCopy(
        from source: ObjectLocation, to location: ObjectLocation, uploadID: String, number: Int,
        range: @Sendable (_ source: ObjectInfo) throws -> ClosedRange<Int64>?
    ) async throws -> PartInfo

    /// The parts uploaded so far, by number.
    func listParts(_ location: ObjectLocation, uploadID: String) async throws -> [PartInfo]

    /// Concatenates the named parts, in order, into the object and ends the upload.
    ///
    /// - Parameters:
    ///   - parts: part numbers in ascending order with the ETags their uploads returned.
    ///   - condition: checked as for ``put(_:attributes:body:expectedLength:expectedMD5:condition:)``; a failed check
    ///     leaves the upload in progress.
    func completeMultipartUpload(
        _ location: ObjectLocation, uploadID: String, parts: [(number: Int, etag: String)], condition: WriteCondition?
    ) async throws -> ObjectInfo

    /// Ends an upload and removes its parts.
    func abortMultipartUpload(_ location: ObjectLocation, uploadID: String) async throws
}

extension ObjectStore {
    /// Streams `body` into a new object, unconditionally; see
    /// ``put(_:attributes:body:expectedLength:expectedMD5:condition:)``.
    @discardableResult
    public func put<Body: AsyncSequence & Sendable>(
        _ location: ObjectLocation, contentType: String? = nil, metadata: [String: String] = [:], body: Body,
        expectedLength: Int64? = nil
    ) async throws -> ObjectInfo where Body.Element == ByteBuffer {
        try await put(
            location, attributes: ObjectAttributes(contentType: contentType, metadata: metadata), body: body,
            expectedLength: expectedLength, expectedMD5: nil, condition: nil)
    }

    /// Stores a small object held in memory.
    @discardableResult
    public func put(_ location: ObjectLocation, bytes: ByteBuffer, contentType: String? = nil) async throws -> ObjectInfo {
        try await put(
            location, contentType: contentType, body: OneChunk(buffer: bytes), expectedLength: Int64(bytes.readableBytes))
    }

    /// Opens an object for reading, all of it or the bytes in `range` (whose upper bound may lie past the end:
    /// the read stops at the end, as S3's does).
    public func read(_ location: ObjectLocation, range: ClosedRange<Int64>? = nil) async throws -> ObjectReader {
        try await read(location) { size in
            guard let range else { return nil }
            guard range.lowerBound < size else { throw ObjectStoreError.invalidRange(size: size) }
            return range.lowerBound...min(range.upperBound, size - 1)
        }
    }

    /// Reads a whole object into memory, for small objects.
    public func readAll(_ location: ObjectLocation, upTo limit: Int = 64 << 20) async throws -> ByteBuffer {
        let reader = try await read(location, range: nil)
        guard reader.info.size <= limit else {
            throw ObjectStoreError.entityTooLarge(limit: Int64(limit))
        }
        var result = ByteBuffer()
        result.reserveCapacity(Int(reader.info.size))
        for try await var chunk in reader.body { result.writeBuffer(&chunk) }
        return result
    }
}

/// A bucket.
public struct BucketInfo: Sendable, Hashable {
    /// The bucket's name.
    public var name: String
    /// When the bucket's folder was created (or last changed, where the filesystem does not record creation).
    public var creationDate: Date

    /// Creates a description.
    public init(name: String, creationDate: Date) {
        self.name = name
        self.creationDate = creationDate
    }
}

/// One tag of an object (S3's object tagging): a key and a value.
public struct ObjectTag: Sendable, Hashable, Codable {
    /// The tag's key, 1 to 128 Unicode characters.
    public var key: String
    /// The tag's value, 0 to 256 Unicode characters.
    public var value: String

    /// Creates a tag.
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// What a writer sets on a new object besides its bytes.
public struct ObjectAttributes: Sendable, Hashable {
    /// The content type; `nil` stores `application/octet-stream`.
    public var contentType: String?
    /// User metadata (S3's `x-amz-meta-*`): lowercase names without the prefix.
    public var metadata: [String: String]
    /// The object's tags, in the order given.
    public var tags: [ObjectTag]

    /// Creates attributes.
    public init(contentType: String? = nil, metadata: [String: String] = [:], tags: [ObjectTag] = []) {
        self.contentType = contentType
        self.metadata = metadata
        self.tags = tags
    }
}

/// A condition a write checks against the object it replaces, at the moment it replaces it (S3's conditional
/// writes). A failed check throws ``ObjectStoreError/preconditionFailed`` (or ``ObjectStoreError/noSuchKey(_:)``
/// when ``matching(etag:)`` finds no object) and stores nothing.
public enum WriteCondition: Sendable, Hashable {
    /// There must be no object yet (`If-None-Match: *`).
    case absent
    /// There must be an object with this ETag, without quotes (`If-Match`).
    case matching(etag: String)
}

/// What the store knows about one object.
public struct ObjectInfo: Sendable, Hashable {
    /// Where the object is.
    public var location: ObjectLocation
    /// Its size in bytes.
    public var size: Int64
    /// The entity tag, without quotes: the MD5 of the bytes in hex, or `<md5 of the parts' MD5s>-<parts>` for a
    /// multipart upload, or a value derived from size and modification time for a file dropped in by hand.
    public var etag: String
    /// When it was written.
    public var lastModified: Date
    /// Its content type.
    public var contentType: String
    /// User metadata (S3's `x-amz-meta-*`): lowercase names without the prefix.
    public var metadata: [String: String]
    /// Its tags.
    public var tags: [ObjectTag]
    /// The sizes of the parts it was assembled from, in order, for an object completed from a multipart upload
    /// (else empty).
    public var partSizes: [Int64]

    /// Creates a description.
    public init(
        location: ObjectLocation, size: Int64, etag: String, lastModified: Date, contentType: String,
        metadata: [String: String] = [:], tags: [ObjectTag] = [], partSizes: [Int64] = []
    ) {
        self.location = location
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
        self.contentType = contentType
        self.metadata = metadata
        self.tags = tags
        self.partSizes = partSizes
    }
}

/// One uploaded part of a multipart upload.
public struct PartInfo: Sendable, Hashable {
    /// The part number, 1...10,000.
    public var number: Int
    /// The part's ETag (the MD5 of its bytes in hex), without quotes.
    public var etag: String
    /// Its size in bytes.
    public var size: Int64
    /// When it was uploaded.
    public var lastModified: Date

    /// Creates a description.
    public init(number: Int, etag: String, size: Int64, lastModified: Date) {
        self.number = number
        self.etag = etag
        self.size = size
        self.lastModified = lastModified
    }
}

/// The parameters of a listing, as S3's ListObjectsV2 takes them.
public struct ObjectListRequest: Sendable, Hashable {
    /// The bucket.
    public var bucket: String
    /// Only keys starting with this.
    public var prefix: String
    /// When set, keys with this after the prefix are rolled up into one common prefix each (up to and including
    /// the delimiter's first occurrence).
    public var delimiter: String?
    /// Only keys (and common prefixes) after this one; a continuation token from a previous page takes precedence.
    public var startAfter: String?
    /// The ``ObjectListing/nextContinuationToken`` of the previous page.
    public var continuationToken: String?
    /// At most this many keys and common prefixes together (1...1000; 0 lists nothing).
    public var maxKeys: Int

    /// Creates a request.
    public init(
        bucket: String, prefix: String = "", delimiter: String? = nil, startAfter: String? = nil,
        continuationToken: String? = nil, maxKeys: Int = 1000
    ) {
        self.bucket = bucket
        self.prefix = prefix
        self.delimiter = delimiter
        self.startAfter = startAfter
        self.continuationToken = continuationToken
        self.maxKeys = maxKeys
    }
}

/// One page of a listing.
public struct ObjectListing: Sendable, Hashable {
    /// The objects, in key order.
    public var objects: [ObjectInfo]
    /// The common prefixes (with a delimiter), in order.
    public var commonPrefixes: [String]
    /// Whether more keys follow.
    public var isTruncated: Bool
    /// Pass as ``ObjectListRequest/continuationToken`` for the next page, when truncated.
    public var nextContinuationToken: String?
    /// The last key or common prefix of this page (S3's `NextMarker` for ListObjects v1), when truncated.
    public var lastEntry: String?

    /// Creates a listing.
    public init(
        objects: [ObjectInfo], commonPrefixes: [String], isTruncated: Bool, nextContinuationToken: String?,
        lastEntry: String?
    ) {
        self.objects = objects
        self.commonPrefixes = commonPrefixes
        self.isTruncated = isTruncated
        self.nextContinuationToken = nextContinuationToken
        self.lastEntry = lastEntry
    }
}

/// An object opened for reading: its description and its bytes.
public struct ObjectReader: Sendable {
    /// The object's description at the time it was opened.
    public var info: ObjectInfo
    /// The bytes read: `range`, or all of the object when it is `nil`.
    public var range: ClosedRange<Int64>?
    /// The bytes, in chunks.
    public var body: ObjectBody

    /// Creates a reader.
    public init(info: ObjectInfo, range: ClosedRange<Int64>?, body: ObjectBody) {
        self.info = info
        self.range = range
        self.body = body
    }

    /// How many bytes `body` yields.
    public var length: Int64 { range.map { $0.upperBound - $0.lowerBound + 1 } ?? info.size }
}

/// The bytes of an object as a stream of chunks, read on demand.
///
/// Iterate it once; the underlying file stays open until the stream ends or is released.
public struct ObjectBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    private let next: @Sendable () async throws -> ByteBuffer?

    /// Creates a stream from a function returning the next chunk, or `nil` at the end.
    public init(next: @escaping @Sendable () async throws -> ByteBuffer?) {
        self.next = next
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let next: @Sendable () async throws -> ByteBuffer?

        public mutating func next() async throws -> ByteBuffer? {
            try await next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(next: next)
    }
}

/// A body of one chunk.
struct OneChunk: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let buffer: ByteBuffer

    struct AsyncIterator: AsyncIteratorProtocol {
        var buffer: ByteBuffer?

        mutating func next() async -> ByteBuffer? {
            defer { buffer = nil }
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(buffer: buffer) }
}
