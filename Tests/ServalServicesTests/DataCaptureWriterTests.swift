import Foundation
import Logging
import NIOCore
import ServalCore
import ServalObjects
import Synchronization
import Testing

@testable import ServalServices

/// Counts what a variant's observer is told about dropped captures.
final class DropCounter: VariantObserver {
    let dropped = Atomic<Int>(0)
    func invocationEnded(path: InferencePath, duration: Duration, failure: InferenceFailure?) {}
    func batchSent(items: Int, rows: Int) {}
    func queued(for duration: Duration) {}
    func batchComputed(in duration: Duration) {}
    func modelLoaded(in duration: Duration) {}
    func recordsTransformed(_ count: Int) {}
    func captureDropped(_ count: Int) { dropped.add(count, ordering: .relaxed) }
}

struct FixedClock: WallClock {
    var time: Timestamp
    func now() -> Timestamp { time }
}

/// A temporary folder for a local object store, removed by `defer`.
struct StoreFolder {
    let path = NSTemporaryDirectory() + "serval-capture-" + UUID().uuidString

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

@Suite("Data capture writer: SageMaker's records, bounded buffer, whole files, visible failures")
struct DataCaptureWriterTests {
    static let config = DataCaptureConfig(samplingPercentage: 100, destination: "s3://capture/p/")
    static let time = Timestamp(iso8601: "2026-12-07T21:05:09.042Z")!

    static func stream(_ observer: any VariantObserver, config: DataCaptureConfig = config) -> CaptureStream {
        CaptureStream(endpoint: "churn", variant: "AllTraffic", config: config, observer: observer)
    }

    static func event(_ input: String, type: String, output: String, stream: CaptureStream, id: String? = nil) -> CaptureEvent {
        CaptureEvent(
            stream: stream, input: ByteBuffer(string: input), inputType: type, output: ByteBuffer(string: output),
            outputType: type + "; charset=utf-8", inferenceID: id, time: time)
    }

    static func writer(_ folder: StoreFolder, maxBufferedBytes: Int = 64 << 20, maxRecordBytes: Int = 16 << 20) throws
        -> (DataCaptureWriter, LocalObjectStore)
    {
        let objects = try LocalObjectStore(root: folder.path)
        let writer = DataCaptureWriter(
            objects: objects, clock: FixedClock(time: time), logger: Logger(label: "test"),
            maxBufferedBytes: maxBufferedBytes, maxRecordBytes: maxRecordBytes)
        return (writer, objects)
    }

    static func records(in objects: LocalObjectStore, prefix: String = "p/churn/AllTraffic/") async throws -> [[String: Any]] {
        var records: [[String: Any]] = []
        for object in try await objects.list(ObjectListRequest(bucket: "capture", prefix: prefix)).objects {
            let body = try await objects.readAll(object.location, upTo: 64 << 20)
            for line in String(buffer: body).split(separator: "\n") {
                records.append(try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any])
            }
        }
        return records
    }

    @Test("one record per line in SageMaker's shape: CSV and JSON as text, anything else (or invalid UTF-8) as BASE64")
    func recordShape() throws {
        let stream = Self.stream(DropCounter())
        var buffer = ByteBuffer()
        DataCaptureWriter.writeRecord(
            Self.event("1,2\n\"x\"\u{1}é\\", type: "text/csv", output: "0.5", stream: stream, id: "a\"b"), id: (1, 2), into: &buffer)
        var binary = Self.event("", type: "application/octet-stream", output: "", stream: stream)
        binary.input = ByteBuffer(bytes: [0xff, 0x00, 0x41])
        binary.inputType = "application/json"  // a JSON type, but not UTF-8
        binary.output = nil
        DataCaptureWriter.writeRecord(binary, id: (3, 4), into: &buffer)
        let lines = String(buffer: buffer).split(separator: "\n")
        #expect(lines.count == 2)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        let capture = first["captureData"] as! [String: [String: String]]
        #expect(
            capture["endpointInput"] == [
                "observedContentType": "text/csv", "mode": "INPUT", "data": "1,2\n\"x\"\u{1}é\\", "encoding": "CSV",
            ])
        #expect(capture["endpointOutput"]?["encoding"] == "CSV" && capture["endpointOutput"]?["mode"] == "OUTPUT")
        #expect(capture["endpointOutput"]?["observedContentType"] == "text/csv; charset=utf-8")
        let metadata = first["eventMetadata"] as! [String: String]
        #expect(metadata["inferenceId"] == "a\"b" && metadata["inferenceTime"] == "2026-12-07T21:05:09.042Z")
        #expect(metadata["eventId"] == "00000000-0000-0001-0000-000000000002" && first["eventVersion"] as? String == "0")
        let second = try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as! [String: Any]
        let captured = second["captureData"] as! [String: [String: String]]
        #expect(captured["endpointInput"]?["encoding"] == "BASE64")
        #expect(captured["endpointInput"]?["data"] == Data([0xff, 0x00, 0x41]).base64EncodedString())
        #expect(captured["endpointOutput"] == nil)
        #expect((second["eventMetadata"] as! [String: String])["inferenceId"] == nil)
    }

    @Test("base64 and JSON strings are written as Foundation writes them, for every length and byte")
    func encoders() throws {
        var generator = SystemRandomNumberGenerator()
        for length in Array(0..<70) + [1000, 4097] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var buffer = ByteBuffer()
            DataCaptureWriter.writeBase64(ByteBuffer(bytes: bytes).readableBytesView, into: &buffer)
            #expect(String(buffer: buffer) == Data(bytes).base64EncodedString(), "length \(length)")

            let text = String(decoding: bytes, as: UTF8.self)  // invalid sequences become U+FFFD
            var json = ByteBuffer()
            DataCaptureWriter.writeJSONString(text.utf8, into: &json)
            let decoded = try JSONSerialization.jsonObject(with: Data(json.readableBytesView), options: .fragmentsAllowed)
            #expect(decoded as? String == text, "length \(length)")
        }
    }

    @Test("event ids are UUID-shaped, version 4, and distinct")
    func eventIDs() throws {
        let folder = StoreFolder()
        defer { folder.remove() }
        let (writer, _) = try Self.writer(folder)
        var seen = Set<String>()
        for _ in 0..<10_000 {
            var buffer = ByteBuffer()
            DataCaptureWriter.writeID(writer.nextID(), into: &buffer)
            let id = String(buffer: buffer)
            #expect(UUID(uuidString: id) != nil && id == id.lowercased(), "\(id)")
            #expect(Array(id)[14] == "4" && "89ab".contains(Array(id)[19]), "\(id)")
            seen.insert(id)
        }
        #expect(seen.count == 10_000)
    }

    @Test("the sampling draw takes a binomial share; 100 % takes every invocation")
    func sampling() throws {
        let folder = StoreFolder()
        defer { folder.remove() }
        let (writer, _) = try Self.writer(folder)
        var config = Self.config
        config.samplingPercentage = 20
        let stream = Self.stream(DropCounter(), config: config)
        let taken = (0..<100_000).count(where: { _ in writer.ticket(stream, inferenceID: nil) != nil })
        // Binomial(100000, 0.2): mean 20000, standard deviation 126.5; these bounds are 6 deviations out.
        #expect((19_240...20_760).contains(taken), "\(taken)")
        let always = Self.stream(DropCounter())
        #expect((0..<1000).allSatisfy { _ in writer.ticket(always, inferenceID: nil) != nil })
        config.samplingPercentage = 0
        let never = Self.stream(DropCounter(), config: config)
        #expect((0..<1000).allSatisfy { _ in writer.ticket(never, inferenceID: nil) == nil })
    }

    @Test("a flush writes each variant's hour as one whole object under the dated path, into a bucket it creates")
    func flushLayout() async throws {
        let folder = StoreFolder()
        defer { folder.remove() }
        let (writer, objects) = try Self.writer(folder)
        let observer = DropCounter()
        let stream = Self.stream(observer)
        for index in 0..<3 {
            writer.ticket(stream, inferenceID: "id-\(index)")!.record(
                input: ByteBuffer(string: "\(index)"), inputType: "text/csv", output: ByteBuffer(string: "\(index * 2)"),
                outputType: "text/csv")
        }
        #expect(try await !objects.bucketExists("capture"))
        await writer.flush()
        let listed = try await objects.list(ObjectListRequest(bucket: "capture", prefix: "p/churn/AllTraffic/2026/12/07/21/"))
        #expect(listed.objects.count == 1)
        let key = try #require(listed.objects.first?.location.key)
        #expect(key.wholeMatch(of: /p\/churn\/AllTraffic\/2026\/12\/07\/21\/05-09-042-[0-9a-f-]{36}\.jsonl/) != nil, "\(key)")
        let records = try await Self.records(in: objects)
        #expect(records.count == 3)
        #expect(observer.dropped.load(ordering: .relaxed) == 0)
        #expect(writer.status(endpoint: "churn") == DataCaptureStatus(recordsWritten: 3))
    }

    @Test("input only or output only: the other part is left out")
    func modes() async throws {
        let folder = StoreFolder()
        defer { folder.remove() }
        let (writer, objects) = try Self.writer(folder)
        var config = Self.config
        config.captureOutput = false
        writer.ticket(Self.stream(DropCounter(), config: config), inferenceID: nil)!.record(
            input: ByteBuffer(string: "1,2"), inputType: "text/csv", output: ByteBuffer(string: "never"), outputType: "text/csv")
        await writer.flush()
        let records = try await Self.records(in: objects)
        let capture = try #require(records.first?["captureData"] as? [String: [String: String]])
        #expect(capture.keys.sorted() == ["endpointInput"] && capture["endpointInput"]?["data"] == "1,2")
    }

    @Test("a full buffer drops what does not fit, counted and shown in the status, and never blocks")
    func drops() throws {
        let folder = StoreFolder()
        defer { folder.remove() }
        let (writer, _) = try Self.writer(folder, maxBufferedBytes: 4096)
        let observer = DropCounter()
        let stream = Self.stream(observer)
        let big = String(repeating: "7", count: 1000)
        for _ in 0..<10 { writer.offer(Self.event(big, type: "text/csv", output: big, stream: stream)) }
        // Each event holds 2,000 body bytes plus its bookkeeping: one fits in 4 KiB.
        #expect(observer.dropped.load(ordering: .relaxed) == 9)
        let status = try #require(writer.status(endpoint: "churn"))
        #expect(status.recordsDropped == 9 && status.recordsWritten == 0)
        #expect(status.lastError?.contains("buffer was full") == true && status.lastErrorAt == Self.time)
    }

    @Test("a write the store refuses drops the flush's records, counted, with the store's reason in the status")
    func failedWrite() async throws {
        let folder = StoreFolder()
        defer { folder.remove() }
        let (writer, objects) = try Self.writer(folder)
        // An object at the destination's prefix: no key below it can be stored in a folder-backed bucket.
        try await objects.createBucket("capture")
        _ = try await objects.put(try ObjectLocation(bucket: "capture", key: "p"), bytes: ByteBuffer(string: "in the way"))
        let observer = DropCounter()
        let stream = Self.stream(observer)
        for _ in 0..<4 { writer.offer(Self.event("1", type: "text/csv", output: "2", stream: stream)) }
        await writer.flush()
        #expect(observer.dropped.load(ordering: .relaxed) == 4)
        let status = try #require(writer.status(endpoint: "churn"))
        #expect(status.recordsDropped == 4 && status.recordsWritten == 0, "\(status)")
        let error = try #require(status.lastError)
        #expect(error.contains("Writing 4 captured records to s3://capture/p/ failed") && error.contains("\"p\" is in the way"), "\(error)")
        // Once the way is clear, the next flush writes.
        _ = try await objects.delete(try ObjectLocation(bucket: "capture", key: "p"))
        writer.offer(Self.event("1", type: "text/csv", output: "2", stream: stream))
        await writer.flush()
        #expect(writer.status(endpoint: "churn")?.recordsWritten == 1)
    }

    @Test("a file-backed invocation is read into its record; one larger than a record may hold is dropped, counted")
    func files() async throws {
        let folder = StoreFolder()
        defer { folder.remove() }
        let (writer, objects) = try Self.writer(folder, maxRecordBytes: 1 << 20)
        try FileManager.default.createDirectory(atPath: folder.path + "/files", withIntermediateDirectories: true)
        let input = folder.path + "/files/in"
        let output = folder.path + "/files/out"
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try Data(bytes).write(to: URL(fileURLWithPath: input))
        try Data(bytes.reversed()).write(to: URL(fileURLWithPath: output))
        let observer = DropCounter()
        let stream = Self.stream(observer)
        await writer.ticket(stream, inferenceID: "big")!.record(
            inputFile: input, inputType: "application/octet-stream", outputFile: output, outputType: "application/x-out")
        await writer.flush()
        let records = try await Self.records(in: objects)
        let capture = try #require(records.first?["captureData"] as? [String: [String: String]])
        #expect(Data(base64Encoded: capture["endpointInput"]!["data"]!) == Data(bytes))
        #expect(Data(base64Encoded: capture["endpointOutput"]!["data"]!) == Data(bytes.reversed()))
        #expect(capture["endpointOutput"]?["observedContentType"] == "application/x-out")

        let large = Data(count: 900_000)  // with the 300 KB output, over the 1 MiB a record holds
        try large.write(to: URL(fileURLWithPath: input))
        await writer.ticket(stream, inferenceID: "bigger")!.record(
            inputFile: input, inputType: "application/octet-stream", outputFile: output, outputType: "application/x-out")
        #expect(observer.dropped.load(ordering: .relaxed) == 1)
        let status = try #require(writer.status(endpoint: "churn"))
        #expect(status.recordsWritten == 1 && status.recordsDropped == 1)
        #expect(status.lastError?.contains("1200000 bytes, more than the 1 MiB") == true, "\(status)")
    }
}
