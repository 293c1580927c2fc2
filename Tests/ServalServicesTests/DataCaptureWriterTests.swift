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

@Suite("Data capture writer: SageMaker's records, bounded buffer, whole files")
struct DataCaptureWriterTests {
    static let config = DataCaptureConfig(samplingPercentage: 100, destination: "s3://capture/p/")
    static let time = Timestamp(iso8601: "2026-12-07T21:05:09.042Z")!

    static func event(_ input: String, type: String, output: String, observer: any VariantObserver, id: String? = nil) -> CaptureEvent {
        CaptureEvent(
            config: config, endpoint: "churn", variant: "AllTraffic", observer: observer,
            input: (ByteBuffer(string: input), type), output: (ByteBuffer(string: output), type + "; charset=utf-8"),
            inferenceID: id, time: time)
    }

    @Test("one record per line in SageMaker's shape: CSV and JSON as text, anything else (or invalid UTF-8) as BASE64")
    func recordShape() throws {
        var buffer = ByteBuffer()
        DataCaptureWriter.writeRecord(Self.event("1,2\n\"x\"", type: "text/csv", output: "0.5", observer: DropCounter(), id: "abc"), into: &buffer)
        var binary = Self.event("", type: "application/octet-stream", output: "", observer: DropCounter())
        binary.input = (ByteBuffer(bytes: [0xff, 0x00, 0x41]), "application/json")  // JSON type, invalid UTF-8
        DataCaptureWriter.writeRecord(binary, into: &buffer)
        let lines = String(buffer: buffer).split(separator: "\n")
        #expect(lines.count == 2)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        let capture = first["captureData"] as! [String: [String: String]]
        #expect(capture["endpointInput"] == ["observedContentType": "text/csv", "mode": "INPUT", "data": "1,2\n\"x\"", "encoding": "CSV"])
        #expect(capture["endpointOutput"]?["encoding"] == "CSV")
        #expect(capture["endpointOutput"]?["observedContentType"] == "text/csv; charset=utf-8")
        let metadata = first["eventMetadata"] as! [String: String]
        #expect(metadata["inferenceId"] == "abc" && metadata["inferenceTime"] == "2026-12-07T21:05:09.042Z")
        #expect(metadata["eventId"]?.count == 36 && first["eventVersion"] as? String == "0")
        let second = try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as! [String: Any]
        let input = (second["captureData"] as! [String: [String: String]])["endpointInput"]!
        #expect(input["encoding"] == "BASE64" && input["data"] == Data([0xff, 0x00, 0x41]).base64EncodedString())
        #expect((second["eventMetadata"] as! [String: String])["inferenceId"] == nil)
    }

    @Test("a flush writes each endpoint and variant's hour as one whole object under the dated path")
    func flushLayout() async throws {
        let folder = NSTemporaryDirectory() + "serval-capture-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let objects = try LocalObjectStore(root: folder)
        let writer = DataCaptureWriter(objects: objects, clock: FixedClock(time: Self.time), logger: Logger(label: "test"))
        let observer = DropCounter()
        for index in 0..<3 {
            writer.offer(Self.event("\(index)", type: "text/csv", output: "\(index * 2)", observer: observer))
        }
        await writer.flush()
        let listed = try await objects.list(ObjectListRequest(bucket: "capture", prefix: "p/churn/AllTraffic/2026/12/07/21/"))
        #expect(listed.objects.count == 1)
        let key = try #require(listed.objects.first?.location.key)
        #expect(key.hasPrefix("p/churn/AllTraffic/2026/12/07/21/05-09-042-") && key.hasSuffix(".jsonl"))
        let body = try await objects.readAll(try ObjectLocation(bucket: "capture", key: key), upTo: 1 << 20)
        #expect(String(buffer: body).split(separator: "\n").count == 3)
        #expect(observer.dropped.load(ordering: .relaxed) == 0)
    }

    @Test("a full buffer drops what does not fit, counted, and never blocks")
    func drops() async throws {
        let folder = NSTemporaryDirectory() + "serval-capture-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let writer = DataCaptureWriter(
            objects: try LocalObjectStore(root: folder), clock: FixedClock(time: Self.time), logger: Logger(label: "test"),
            maxBufferedBytes: 4096)
        let observer = DropCounter()
        let big = String(repeating: "7", count: 1000)
        for _ in 0..<10 { writer.offer(Self.event(big, type: "text/csv", output: big, observer: observer)) }
        // Each event holds 2,000 body bytes plus its bookkeeping: one fits in 4 KiB.
        #expect(observer.dropped.load(ordering: .relaxed) == 9)
    }
}
