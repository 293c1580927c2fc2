import Foundation
import NIOCore
import ServalCore
import ServalObjects
import Testing

/// A store in a fresh temporary folder, removed afterwards.
final class TemporaryStore: Sendable {
    let root: String
    let store: LocalObjectStore

    init() throws {
        root = NSTemporaryDirectory() + "serval-objects-" + UUID().uuidString.lowercased().prefix(12)
        store = try LocalObjectStore(root: root)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}

func location(_ bucket: String, _ key: String) throws -> ObjectLocation {
    try ObjectLocation(bucket: bucket, key: key)
}

/// Chunks of bytes, then optionally an error.
struct Chunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    var chunks: [ByteBuffer]
    var failure: (any Error & Sendable)?

    struct AsyncIterator: AsyncIteratorProtocol {
        var chunks: [ByteBuffer]
        var failure: (any Error & Sendable)?

        mutating func next() async throws -> ByteBuffer? {
            if !chunks.isEmpty { return chunks.removeFirst() }
            if let failure { throw failure }
            return nil
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(chunks: chunks, failure: failure) }
}

struct BodyFailed: Error {}

func text(_ store: LocalObjectStore, _ location: ObjectLocation, range: ClosedRange<Int64>? = nil) async throws -> String {
    var result = ""
    for try await chunk in try await store.read(location, range: range).body { result += String(buffer: chunk) }
    return result
}

@Suite struct LocalObjectStoreTests {
    @Test func bucketsAreCreatedOnceListedAndDeletedWhenEmpty() async throws {
        let folder = try TemporaryStore()
        let store = folder.store
        #expect(try await store.createBucket("alpha"))
        #expect(try await !store.createBucket("alpha"))
        #expect(try await store.createBucket("beta"))
        #expect(try await store.listBuckets().map(\.name) == ["alpha", "beta"])
        #expect(try await store.bucketExists("alpha"))
        #expect(try await !store.bucketExists("gamma"))
        try await store.put(location("alpha", "x"), bytes: ByteBuffer(string: "1"))
        await #expect(throws: ObjectStoreError.bucketNotEmpty("alpha")) { try await store.deleteBucket("alpha") }
        try await store.delete(location("alpha", "x"))
        try await store.deleteBucket("alpha")
        #expect(try await store.listBuckets().map(\.name) == ["beta"])
        await #expect(throws: ObjectStoreError.noSuchBucket("alpha")) {
            try await store.put(location("alpha", "x"), bytes: ByteBuffer(string: "1"))
        }
    }

    @Test func putHeadReadAndDelete() async throws {
        let folder = try TemporaryStore()
        let store = folder.store
        try await store.createBucket("data")
        let key = try location("data", "a/b/c.json")
        let info = try await store.put(
            key, contentType: "application/json", metadata: ["owner": "me"],
            body: Chunks(chunks: [ByteBuffer(string: "{\"x\":"), ByteBuffer(string: "1}")]), expectedLength: 7)
        let head = try #require(try await store.head(key))
        #expect(head.size == 7)
        #expect(head.contentType == "application/json")
        #expect(head.metadata == ["owner": "me"])
        #expect(head.etag == info.etag)
        #expect(try await text(store, key) == "{\"x\":1}")
        #expect(try await store.localPath(of: key) == folder.root + "/data/a/b/c.json")
        #expect(try await store.delete(key))
        #expect(try await !store.delete(key))
        #expect(try await store.head(key) == nil)
        // Empty folders of the key are gone, the bucket stays.
        #expect(!FileManager.default.fileExists(atPath: folder.root + "/data/a"))
        #expect(FileManager.default.fileExists(atPath: folder.root + "/data"))
    }

    @Test func etagIsTheMD5OfTheBytes() async throws {
        let folder = try TemporaryStore()
        try await folder.store.createBucket("data")
        let info = try await folder.store.put(location("data", "k"), bytes: ByteBuffer(string: "hello"))
        #expect(info.etag == "5d41402abc4b2a76b9719d911017c592")
    }

    @Test func aFailingBodyLeavesNothingVisible() async throws {
        let folder = try TemporaryStore()
        let store = folder.store
        try await store.createBucket("data")
        let key = try location("data", "half/done")
        await #expect(throws: BodyFailed.self) {
            try await store.put(key, body: Chunks(chunks: [ByteBuffer(repeating: 1, count: 3 << 20)], failure: BodyFailed()))
        }
        await #expect(throws: ObjectStoreError.incompleteBody(expected: 10, received: 5)) {
            try await store.put(key, body: Chunks(chunks: [ByteBuffer(string: "12345")]), expectedLength: 10)
        }
        await #expect(throws: ObjectStoreError.badDigest) {
            try await store.put(
                key, attributes: ObjectAttributes(), body: Chunks(chunks: [ByteBuffer(string: "x")]), expectedLength: nil,
                expectedMD5: Array(repeating: 0, count: 16), condition: nil)
        }
        #expect(try await store.head(key) == nil)
        #expect(try await store.list(.init(bucket: "data")).objects.isEmpty)
        #expect(FileManager.default.enumerator(atPath: folder.root + "/.serval/tmp")?.allObjects.isEmpty ?? true)
        // An earlier version stays when a replacement fails.
        try await store.put(key, bytes: ByteBuffer(string: "old"))
        await #expect(throws: BodyFailed.self) {
            try await store.put(key, body: Chunks(chunks: [ByteBuffer(string: "new")], failure: BodyFailed()))
        }
        #expect(try await text(store, key) == "old")
    }

    @Test func rangesAreReadAndClampedAtTheEnd() async throws {
        let folder = try TemporaryStore()
        let store = folder.store
        try await store.createBucket("data")
        let key = try location("data", "digits")
        try await store.put(key, bytes: ByteBuffer(string: "0123456789"))
        #expect(try await text(store, key, range: 2...4) == "234")
        #expect(try await text(store, key, range: 7...100) == "789")
        let reader = try await store.read(key, range: 7...100)
        #expect(reader.range == 7...9)
        #expect(reader.length == 3)
        await #expect(throws: ObjectStoreError.invalidRange(size: 10)) { try await store.read(key, range: 10...12) }
        await #expect(throws: ObjectStoreError.noSuchKey(try location("data", "nothing"))) {
            try await store.read(location("data", "nothing"))
        }
    }

    @Test func largeObjectsStreamInBoundedChunks() async throws {
        let folder = try TemporaryStore()
        let store = folder.store
        try await store.createBucket("data")
        let key = try location("data", "big")
        var bytes = ByteBuffer()
        for i in 0..<(3 << 20) { bytes.writeInteger(UInt8(truncatingIfNeeded: i * 31)) }
        let chunks = stride(from: 0, to: bytes.readableBytes, by: 100_000).map {
            bytes.getSlice(at: $0, length: min(100_000, bytes.readableBytes - $0))!
        }
        try await store.put(key, body: Chunks(chunks: chunks), expectedLength: Int64(bytes.readableBytes))
        var read = ByteBuffer()
        var largest = 0
        for try await var chunk in try await store.read(key).body {
            largest = max(largest, chunk.readableBytes)
            read.writeBuffer(&chunk)
        }
        #expect(read == bytes)
        #expect(largest <= 256 << 10)
    }

    @Test func listingFollowsS3Order() async throws {
        let folder = try TemporaryStore()
        let store = folder.store
        try await store.createBucket("data")
        let keys = ["b", "a/1", "a/2", "a-c", "a/sub/3", "c/x/y", "ab"]
        for key in keys { try await store.put(location("data", key), bytes: ByteBuffer(string: key)) }
        let all = try await store.list(.init(bucket: "data"))
        // By bytes: '-' (0x2D) sorts before '/' (0x2F), and "a/..." before "ab".
        #expect(all.objects.map(\.location.key) == ["a-c", "a/1", "a/2", "a/sub/3", "ab", "b", "c/x/y"])
        #expect(!all.isTruncated)

        let top = try await store.list(.init(bucket: "data", delimiter: "/"))
        #expect(top.objects.map(\.location.key) == ["a-c", "ab", "b"])
        #expect(top.commonPrefixes == ["a/", "c/"])

        let underA = try await store.list(.init(bucket: "data", prefix: "a/", delimiter: "/"))
        #expect(underA.objects.map(\.location.key) == ["a/1", "a/2"])
        #expect(underA.commonPrefixes == ["a/sub/"])

        let prefixed = try await store.list(.init(bucket: "data", prefix: "a"))
        #expect(prefixed.objects.map(\.location.key) == ["a-c", "a/1", "a/2", "a/sub/3", "ab"])

        var pages: [[String]] = []
        var token: String?
        repeat {
            let page = try await store.list(.init(bucket: "data", continuationToken: token, maxKeys: 3))
            pages.append(page.objects.map(\.location.key))
            token = page.nextContinuationToken
            #expect(page.isTruncated == (token != nil))
        } while token != nil
        #expect(pages == [["a-c", "a/1", "a/2"], ["a/sub/3", "ab", "b"], ["c/x/y"]])

        let after = try await store.list(.init(bucket: "data", startAfter: "a/2"))
        #expect(after.objects.first?.location.key == "a/sub/3")

        await #expect(throws: ObjectStoreError.noSuchBucket("nope")) { try await store.list(.init(bucket: "nope")) }
    }

    @Test func filesDroppedInByHandAreObjects() async throws {
        let folder = try TemporaryStore()
        let store = folder.store
        try FileManager.default.createDirectory(atPath: folder.root + "/manual/in", withIntermediateDirectories: true)
        try Data("by hand".utf8).write(to: URL(fileURLWithPath: folder.root + "/manual/in/file.txt"))
        #expect(try await store.listBuckets().map(\.name) == ["manual"])
        let head = try #require(try await store.head(location("manual", "in/file.txt")))
        #expect(head.size == 7)
        #expect(head.contentType == "application/octet-stream")
        #expect(head.etag.count == 32)
        #expect(try await store.list(.init(bucket: "manual")).objects.map(\.location.key) == ["in/file.txt"])

        // A file replaced by hand loses the sidecar's description.
        let key = try location("manual", "typed")
        try await store.put(key, bytes: ByteBuffer(string: "{}"), contentType: "application/json")
        try FileManager.default.removeItem(atPath: folder.root + "/manual/typed")
        try Data("replaced".utf8).write(to: URL(fileURLWithPath: folder.root + "/manual/typed"))
        #expect(try await store.head(key)?.contentType == "application/octet-stream")
    }

    @Test func keyAndFolderConflictsAreErrors() async throws {
        let folder = try TemporaryStore()
        let store = folder.store
        try await store.createBucket("data")
        try await store.put(location("data", "a"), bytes: ByteBuffer(string: "file"))
        await #expect {
            try await store.put(location("data", "a/b"), bytes: ByteBuffer(string: "below"))
        } throws: { error in
            guard case .keyConflict(_, let other) = error as? ObjectStoreError else { return false }
            return other == "a"
        }
        try await store.put(location("data", "d/e"), bytes: ByteBuffer(string: "below"))
        await #expect {
            try await store.put(location("data", "d"), bytes: ByteBuffer(string: "file"))
        } throws: { error in
            guard case .keyConflict = error as? ObjectStoreError else { return false }
            return true
        }
        #expect(try await store.head(location("data", "a/b")) == nil)
        #expect(try await store.head(location("data", "d")) == nil)
        #expect(try await !store.delete(location("data", "d")))
        #expect(try await text(store, location("data", "d/e")) == "below")
        #expect(ObjectStoreError.keyConflict(try location("data", "d"), conflictingKey: "d/e").servalError.code == .conflict)
    }

    @Test func symlinksOutOfTheBucketAreRefused() async throws {
        let folder = try TemporaryStore()
        let store = folder.store
        try await store.createBucket("data")
        let outside = folder.root + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try Data("secret".utf8).write(to: URL(fileURLWithPath: outside + "/secret"))
        try FileManager.default.createSymbolicLink(atPath: folder.root + "/data/escape", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(atPath: folder.root + "/data/file", withDestinationPath: outside + "/secret")
        for key in ["escape/secret", "file"] {
            await #expect(throws: ObjectStoreError.self) { try await store.read(location("data", key)) }
            await #expect(throws: ObjectStoreError.self) { try await store.head(location("data", key)) }
        }
        await #expect(throws: ObjectStoreError.self) {
            try await store.put(location("data", "escape/new"), bytes: ByteBuffer(string: "x"))
        }
        #expect(!FileManager.default.fileExists(atPath: outside + "/new"))
        #expect(try await store.list(.init(bucket: "data")).objects.isEmpty)
        // A link that stays inside the bucket is followed.
        try await store.put(location("data", "real/one"), bytes: ByteBuffer(string: "1"))
        try FileManager.default.createSymbolicLink(atPath: folder.root + "/data/alias", withDestinationPath: folder.root + "/data/real/one")
        #expect(try await text(store, location("data", "alias")) == "1")
    }

    @Test func concurrentPutsToOneKeyEndWithOneCompleteObject() async throws {
        let folder = try TemporaryStore()
        let store = folder.store
        try await store.createBucket("data")
        let key = try location("data", "contended")
        let bodies = (0..<8).map { String(repeating: Character(String($0)), count: 200_000) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for body in bodies {
                group.addTask {
                    let chunks = stride(from: 0, to: body.utf8.count, by: 30_000).map {
                        ByteBuffer(string: String(body.dropFirst($0).prefix(30_000)))
                    }
                    try await store.put(key, body: Chunks(chunks: chunks))
                }
            }
            try await group.waitForAll()
        }
        let result = try await text(store, key)
        #expect(bodies.contains(result))
        let head = try #require(try await store.head(key))
        let expected = try await store.put(location("data", "check"), bytes: ByteBuffer(string: result))
        #expect(head.etag == expected.etag)
        #expect(try await store.list(.init(bucket: "data")).objects.map(\.location.key) == ["check", "contended"])
    }

    @Test func multipartUploadsConcatenatePartsInOrder() async throws {
        let folder = try TemporaryStore()
        let store = folder.store
        try await store.createBucket("data")
        let key = try location("data", "multi/part")
        let id = try await store.createMultipartUpload(key, attributes: ObjectAttributes(contentType: "text/plain", metadata: ["a": "b"]))
        let two = try await store.uploadPart(key, uploadID: id, number: 2, body: Chunks(chunks: [ByteBuffer(string: "world")]), expectedLength: nil, expectedMD5: nil)
        _ = try await store.uploadPart(key, uploadID: id, number: 1, body: Chunks(chunks: [ByteBuffer(string: "first")]), expectedLength: nil, expectedMD5: nil)
        let one = try await store.uploadPart(key, uploadID: id, number: 1, body: Chunks(chunks: [ByteBuffer(string: "hello ")]), expectedLength: nil, expectedMD5: nil)
        #expect(try await store.listParts(key, uploadID: id).map(\.number) == [1, 2])
        #expect(try await store.list(.init(bucket: "data")).objects.isEmpty)

        await #expect(throws: ObjectStoreError.invalidPartOrder) {
            try await store.completeMultipartUpload(key, uploadID: id, parts: [(2, two.etag), (1, one.etag)], condition: nil)
        }
        await #expect(throws: ObjectStoreError.invalidPart(1)) {
            try await store.completeMultipartUpload(key, uploadID: id, parts: [(1, two.etag), (2, two.etag)], condition: nil)
        }
        await #expect(throws: ObjectStoreError.noSuchUpload(id)) {
            try await store.completeMultipartUpload(location("data", "other"), uploadID: id, parts: [(1, one.etag)], condition: nil)
        }
        let info = try await store.completeMultipartUpload(key, uploadID: id, parts: [(1, "\"\(one.etag)\""), (2, two.etag)], condition: nil)
        #expect(info.etag.hasSuffix("-2"))
        #expect(info.size == 11)
        #expect(try await text(store, key) == "hello world")
        let head = try #require(try await store.head(key))
        #expect(head.contentType == "text/plain")
        #expect(head.metadata == ["a": "b"])
        #expect(head.etag == info.etag)
        await #expect(throws: ObjectStoreError.noSuchUpload(id)) { try await store.listParts(key, uploadID: id) }

        let aborted = try await store.createMultipartUpload(key, attributes: ObjectAttributes())
        _ = try await store.uploadPart(key, uploadID: aborted, number: 1, body: Chunks(chunks: [ByteBuffer(string: "x")]), expectedLength: nil, expectedMD5: nil)
        try await store.abortMultipartUpload(key, uploadID: aborted)
        await #expect(throws: ObjectStoreError.noSuchUpload(aborted)) { try await store.abortMultipartUpload(key, uploadID: aborted) }
        await #expect(throws: ObjectStoreError.noSuchUpload("../../etc")) { try await store.abortMultipartUpload(key, uploadID: "../../etc") }
        #expect(try await text(store, key) == "hello world")
    }

    @Test func tagsAreKeptBesideTheObjectAndLeaveItsBytesAlone() async throws {
        let folder = try TemporaryStore()
        let store = folder.store
        try await store.createBucket("data")
        let key = try location("data", "tagged")
        let put = try await store.put(key, bytes: ByteBuffer(string: "payload"), contentType: "text/plain")
        let tags = [ObjectTag(key: "team", value: "ml"), ObjectTag(key: "stage", value: "")]
        try await store.setTags(tags, of: key)
        let head = try #require(try await store.head(key))
        #expect(head.tags == tags)
        #expect(head.etag == put.etag && head.contentType == "text/plain")
        #expect(try await text(store, key) == "payload")
        try await store.setTags([], of: key)
        #expect(try await store.head(key)?.tags == [])
        await #expect(throws: ObjectStoreError.noSuchKey(try location("data", "missing"))) {
            try await store.setTags(tags, of: try location("data", "missing"))
        }
        // A file dropped in by hand keeps its derived ETag when tagged; replacing it drops the tags.
        try Data("by hand".utf8).write(to: URL(fileURLWithPath: folder.root + "/data/hand"))
        let hand = try location("data", "hand")
        let before = try #require(try await store.head(hand))
        try await store.setTags(tags, of: hand)
        #expect(try await store.head(hand)?.etag == before.etag)
        #expect(try await store.head(hand)?.tags == tags)
        try await store.put(hand, bytes: ByteBuffer(string: "new"))
        #expect(try await store.head(hand)?.tags == [])
    }

    @Test func conditionalWritesCheckTheObjectInPlace() async throws {
        let folder = try TemporaryStore()
        let store = folder.store
        try await store.createBucket("data")
        let key = try location("data", "once")
        func put(_ text: String, _ condition: WriteCondition?) async throws -> ObjectInfo {
            try await store.put(
                key, attributes: ObjectAttributes(), body: Chunks(chunks: [ByteBuffer(string: text)]), expectedLength: nil,
                expectedMD5: nil, condition: condition)
        }
        await #expect(throws: ObjectStoreError.noSuchKey(key)) { try await put("x", .matching(etag: "abc")) }
        let first = try await put("first", .absent)
        await #expect(throws: ObjectStoreError.preconditionFailed) { try await put("second", .absent) }
        await #expect(throws: ObjectStoreError.preconditionFailed) { try await put("second", .matching(etag: "abc")) }
        #expect(try await text(store, key) == "first")
        _ = try await put("third", .matching(etag: first.etag))
        #expect(try await text(store, key) == "third")
        // Nothing is left behind by the refused writes.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.root + "/.serval/tmp").isEmpty)
        // Of many writers racing with If-None-Match, exactly one wins.
        let race = try location("data", "race")
        let wins = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<8 {
                group.addTask {
                    (try? await store.put(
                        race, attributes: ObjectAttributes(), body: Chunks(chunks: [ByteBuffer(string: "\(index)")]),
                        expectedLength: nil, expectedMD5: nil, condition: .absent)) != nil
                }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(wins == 1)
    }

    @Test func copiesKeepOrReplaceAttributesAndPartCopiesTakeRanges() async throws {
        let folder = try TemporaryStore()
        let store = folder.store
        try await store.createBucket("data")
        let source = try location("data", "source")
        let bytes = ByteBuffer(bytes: (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 * 7) })
        let put = try await store.put(
            source, attributes: ObjectAttributes(contentType: "text/csv", metadata: ["a": "b"], tags: [ObjectTag(key: "k", value: "v")]),
            body: Chunks(chunks: [bytes]), expectedLength: nil, expectedMD5: nil, condition: nil)
        let target = try location("data", "copies/one")
        let copy = try await store.copy(from: source, to: target, condition: nil) { ObjectAttributes(contentType: $0.contentType, metadata: $0.metadata, tags: $0.tags) }
        #expect(copy.etag == put.etag)
        let head = try #require(try await store.head(target))
        #expect(head.contentType == "text/csv" && head.metadata == ["a": "b"] && head.tags == [ObjectTag(key: "k", value: "v")])
        #expect(try await store.readAll(target) == bytes)
        await #expect(throws: ObjectStoreError.preconditionFailed) {
            try await store.copy(from: source, to: target, condition: .absent) { _ in ObjectAttributes() }
        }
        await #expect(throws: ObjectStoreError.noSuchKey(try location("data", "nothing"))) {
            try await store.copy(from: try location("data", "nothing"), to: target, condition: nil) { _ in ObjectAttributes() }
        }
        // A file dropped in by hand has no MD5 ETag: its copy gets one computed from the bytes.
        try Data("by hand".utf8).write(to: URL(fileURLWithPath: folder.root + "/data/hand"))
        let handCopy = try await store.copy(from: try location("data", "hand"), to: try location("data", "hand2"), condition: nil) { _ in ObjectAttributes() }
        #expect(handCopy.etag == "7d909037a76176adb749eda313187060")  // md5("by hand")
        #expect(try await text(store, try location("data", "hand2")) == "by hand")

        let assembled = try location("data", "assembled")
        let id = try await store.createMultipartUpload(assembled, attributes: ObjectAttributes())
        let one = try await store.uploadPartCopy(from: source, to: assembled, uploadID: id, number: 1) { _ in 0...(1 << 20) - 1 }
        let two = try await store.uploadPartCopy(from: source, to: assembled, uploadID: id, number: 2) { _ in (1 << 20)...(3 << 20) - 1 }
        await #expect(throws: ObjectStoreError.invalidRange(size: 3 << 20)) {
            try await store.uploadPartCopy(from: source, to: assembled, uploadID: id, number: 3) { _ in 0...(3 << 20) }
        }
        let info = try await store.completeMultipartUpload(assembled, uploadID: id, parts: [(1, one.etag), (2, two.etag)], condition: nil)
        #expect(info.partSizes == [1 << 20, 2 << 20])
        #expect(try await store.readAll(assembled) == bytes)
        #expect(try await store.head(assembled)?.partSizes == [1 << 20, 2 << 20])
    }

    @Test func partCopiesKeepTheSourcesBytesUntilCompletion() async throws {
        let folder = try TemporaryStore()
        let store = folder.store
        try await store.createBucket("data")
        let source = try location("data", "source")
        let original = ByteBuffer(bytes: (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 * 13) })
        _ = try await store.put(
            source, attributes: ObjectAttributes(), body: Chunks(chunks: [original]), expectedLength: nil, expectedMD5: nil,
            condition: nil)
        let firstMiB = original.getSlice(at: 0, length: 1 << 20)!
        let expected = try await store.put(
            try location("data", "first"), attributes: ObjectAttributes(), body: Chunks(chunks: [firstMiB]),
            expectedLength: nil, expectedMD5: nil, condition: nil)
        let target = try location("data", "target")
        let id = try await store.createMultipartUpload(target, attributes: ObjectAttributes())
        let one = try await store.uploadPartCopy(from: source, to: target, uploadID: id, number: 1) { _ in 0...(1 << 20) - 1 }
        let two = try await store.uploadPartCopy(from: source, to: target, uploadID: id, number: 2) { _ in nil }
        #expect(one.etag == expected.etag && one.size == 1 << 20 && two.size == 2 << 20)

        // The source replaced, then deleted: the parts keep the bytes they were copied from.
        _ = try await store.put(
            source, attributes: ObjectAttributes(), body: Chunks(chunks: [ByteBuffer(string: "replaced")]),
            expectedLength: nil, expectedMD5: nil, condition: nil)
        #expect(try await store.delete(source))
        #expect(try await store.listParts(target, uploadID: id).map(\.size) == [1 << 20, 2 << 20])
        let info = try await store.completeMultipartUpload(
            target, uploadID: id, parts: [(1, one.etag), (2, two.etag)], condition: nil)
        #expect(info.partSizes == [1 << 20, 2 << 20])
        var whole = firstMiB
        whole.writeImmutableBuffer(original)
        #expect(try await store.readAll(target) == whole)

        // A file changed in place by hand after a part was copied from it: the completion refuses that part.
        let handPath = folder.root + "/data/hand"
        try Data("0123456789".utf8).write(to: URL(fileURLWithPath: handPath))
        let other = try location("data", "other")
        let upload = try await store.createMultipartUpload(other, attributes: ObjectAttributes())
        let part = try await store.uploadPartCopy(from: try location("data", "hand"), to: other, uploadID: upload, number: 1) { _ in 2...5 }
        #expect(part.etag == "81b073de9370ea873f548e31b8adc081" && part.size == 4)  // md5("2345")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: handPath))
        try handle.seek(toOffset: 2)
        try handle.write(contentsOf: Data("ABCD".utf8))
        try handle.close()
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_000_000)], ofItemAtPath: handPath)
        await #expect(throws: ObjectStoreError.invalidPart(1)) {
            try await store.completeMultipartUpload(other, uploadID: upload, parts: [(1, part.etag)], condition: nil)
        }
    }

    @Test func committingAWorkersFile() async throws {
        let folder = try TemporaryStore()
        let store = folder.store
        try await store.createBucket("out")
        let temporary = try await store.makeTemporaryFile()
        #expect(!temporary.hasPrefix(folder.root + "/out"))
        try Data("result".utf8).write(to: URL(fileURLWithPath: temporary))
        #expect(try await store.list(.init(bucket: "out")).objects.isEmpty)
        let info = try await store.commit(temporaryFile: temporary, to: location("out", "job/1.out"), contentType: "application/json")
        #expect(info.size == 6)
        // MD5("result")
        #expect(info.etag == "b4a88417b3d0170d754c647c30b7216a")
        #expect(try await store.head(location("out", "job/1.out"))?.contentType == "application/json")
        #expect(!FileManager.default.fileExists(atPath: temporary))
    }

    @Test func errorsBecomeServalErrors() throws {
        #expect(ObjectStoreError.noSuchBucket("b").servalError.code == .notFound)
        #expect(ObjectStoreError.bucketNotEmpty("b").servalError.code == .conflict)
        #expect(ObjectStoreError.invalidRange(size: 3).servalError.code == .validationError)
        #expect(ObjectStoreError.entityTooLarge(limit: 3).servalError.code == .payloadTooLarge)
        #expect(!ObjectStoreError.io("/secret/path: EIO").servalError.message.contains("/secret"))
    }
}

