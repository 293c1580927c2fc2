import Foundation
public import Logging
public import NIOCore
public import ServalCore
public import ServalObjects
public import ServiceLifecycle
import Synchronization

/// One captured invocation, waiting to be written. Bodies are the request's and response's own buffers (no copy is
/// made on the request path).
public struct CaptureEvent: Sendable {
    /// The endpoint's capture settings.
    public var config: DataCaptureConfig
    /// The endpoint and the variant that served.
    public var endpoint: String
    public var variant: String
    /// Counts the event if it is dropped.
    public var observer: any VariantObserver
    /// The request's body and content type, when inputs are captured.
    public var input: (body: ByteBuffer, contentType: String)?
    /// The response's body and content type, when outputs are captured.
    public var output: (body: ByteBuffer, contentType: String)?
    /// The caller's inference id, if it gave one.
    public var inferenceID: String?
    /// When the invocation was answered.
    public var time: Timestamp

    /// Creates an event.
    public init(
        config: DataCaptureConfig, endpoint: String, variant: String, observer: any VariantObserver,
        input: (body: ByteBuffer, contentType: String)?, output: (body: ByteBuffer, contentType: String)?,
        inferenceID: String?, time: Timestamp
    ) {
        self.config = config
        self.endpoint = endpoint
        self.variant = variant
        self.observer = observer
        self.input = input
        self.output = output
        self.inferenceID = inferenceID
        self.time = time
    }

    /// The bytes the event holds.
    var bytes: Int { (input?.body.readableBytes ?? 0) + (output?.body.readableBytes ?? 0) }
}

/// Writes captured invocations to the object store as JSON Lines, in SageMaker's record shape, off the request path.
///
/// ``offer(_:)`` never blocks and never fails an invocation: it adds the event to a bounded buffer, or drops it
/// (counted in `serval_capture_dropped_total`) when the buffer is full. The buffer is flushed every
/// `flushInterval` (5 s) or as soon as it holds `flushBytes` (1 MB): each endpoint and variant's records of one
/// hour become one new object, `<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/mm-ss-SSS-<uuid>.jsonl`, written whole
/// (the store renames a finished file into place). A crash therefore loses at most what arrived since the last
/// flush, and leaves no partial file. A failed write (a store error, a full disk) is logged and its records counted
/// as dropped.
public final class DataCaptureWriter: Service, Sendable {
    private struct State {
        var events: [CaptureEvent] = []
        var bytes = 0
        var buckets = Set<String>()
    }

    private let objects: any ObjectStore
    private let clock: any WallClock
    private let logger: Logger
    private let flushInterval: Duration
    private let flushBytes: Int
    private let maxBufferedBytes: Int
    private let state = Mutex(State())
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>

    /// Creates the writer; ``run()`` flushes until graceful shutdown, then once more.
    public init(
        objects: any ObjectStore, clock: any WallClock, logger: Logger, flushInterval: Duration = .seconds(5),
        flushBytes: Int = 1 << 20, maxBufferedBytes: Int = 64 << 20
    ) {
        self.objects = objects
        self.clock = clock
        self.logger = logger
        self.flushInterval = flushInterval
        self.flushBytes = flushBytes
        self.maxBufferedBytes = maxBufferedBytes
        (wakes, wake) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues an event for the next flush, or drops it when the buffer is full.
    public func offer(_ event: CaptureEvent) {
        let bytes = event.bytes
        let (accepted, full) = state.withLock { state -> (Bool, Bool) in
            guard state.bytes + bytes <= maxBufferedBytes else { return (false, false) }
            state.events.append(event)
            state.bytes += bytes + 512
            return (true, state.bytes >= flushBytes)
        }
        if !accepted { event.observer.captureDropped(1) }
        if full { wake.yield() }
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { [wake, flushInterval] in
                    while !Task.isCancelled {
                        try? await Task.sleep(for: flushInterval)
                        wake.yield()
                    }
                }
                for await _ in wakes {
                    await flush()
                }
                group.cancelAll()
            }
        } onGracefulShutdown: { [wake] in
            wake.finish()
        }
        await flush()
    }

    /// Writes everything buffered now.
    func flush() async {
        let events = state.withLock { state in
            defer {
                state.events = []
                state.bytes = 0
            }
            return state.events
        }
        guard !events.isEmpty else { return }
        var files: [FileKey: [CaptureEvent]] = [:]
        for event in events {
            let hour = String(event.time.iso8601.prefix(13))
            files[FileKey(destination: event.config.destination, endpoint: event.endpoint, variant: event.variant, hour: hour), default: []]
                .append(event)
        }
        for (key, events) in files {
            do {
                let location = try key.location(firstEvent: events[0].time)
                try await ensureBucket(location.bucket)
                var body = ByteBuffer()
                body.reserveCapacity(events.reduce(0) { $0 + $1.bytes * 4 / 3 + 512 })
                for event in events { Self.writeRecord(event, into: &body) }
                try await objects.put(location, bytes: body, contentType: "application/jsonlines")
            } catch {
                logger.error(
                    "Could not write captured data; its records are dropped",
                    metadata: ["endpoint": "\(key.endpoint)", "variant": "\(key.variant)", "error": "\(error)"])
                events[0].observer.captureDropped(events.count)
            }
        }
    }

    private func ensureBucket(_ bucket: String) async throws {
        guard !state.withLock({ $0.buckets.contains(bucket) }) else { return }
        if try await !objects.bucketExists(bucket) { _ = try await objects.createBucket(bucket) }
        state.withLock { _ = $0.buckets.insert(bucket) }
    }

    /// Where one flush's records of one endpoint, variant and hour go.
    private struct FileKey: Hashable {
        var destination: String
        var endpoint: String
        var variant: String
        /// `yyyy-mm-ddThh`.
        var hour: String

        func location(firstEvent time: Timestamp) throws(ServalError) -> ObjectLocation {
            let (bucket, prefix) = try ObjectLocation.split(uri: destination, field: "DataCaptureConfig.DestinationS3Uri")
            let stamp = Array(time.iso8601)  // 2026-11-24T06:58:35.123Z
            func part(_ range: Range<Int>) -> String { String(stamp[range]) }
            var key = prefix.hasSuffix("/") || prefix.isEmpty ? prefix : prefix + "/"
            key += "\(endpoint)/\(variant)/\(part(0..<4))/\(part(5..<7))/\(part(8..<10))/\(part(11..<13))/"
            key += "\(part(14..<16))-\(part(17..<19))-\(part(20..<23))-\(UUID().uuidString.lowercased()).jsonl"
            return try ObjectLocation(bucket: bucket, key: key)
        }
    }

    // MARK: Records

    /// Appends one JSON Lines record in SageMaker's shape: `captureData.endpointInput` / `endpointOutput`
    /// (`observedContentType`, `mode`, `data`, `encoding`), `eventMetadata` (`eventId`, `inferenceId`,
    /// `inferenceTime`) and `eventVersion`.
    static func writeRecord(_ event: CaptureEvent, into buffer: inout ByteBuffer) {
        buffer.writeString(#"{"captureData":{"#)
        var first = true
        for (name, mode, part) in [("endpointInput", "INPUT", event.input), ("endpointOutput", "OUTPUT", event.output)] {
            guard let part else { continue }
            if !first { buffer.writeString(",") }
            first = false
            let encoding = event.config.encoding(of: part.contentType)
            let text = encoding == .base64 ? nil : String(validatingUTF8Bytes: part.body.readableBytesView)
            buffer.writeString("\"\(name)\":{\"observedContentType\":")
            writeJSONString(part.contentType, into: &buffer)
            buffer.writeString(",\"mode\":\"\(mode)\",\"data\":")
            if let text {
                writeJSONString(text, into: &buffer)
            } else {
                writeJSONString(Data(part.body.readableBytesView).base64EncodedString(), into: &buffer)
            }
            buffer.writeString(",\"encoding\":\"\(text == nil ? CaptureEncoding.base64.rawValue : encoding.rawValue)\"}")
        }
        buffer.writeString(#"},"eventMetadata":{"eventId":""#)
        buffer.writeString(UUID().uuidString.lowercased())
        buffer.writeString("\"")
        if let id = event.inferenceID {
            buffer.writeString(",\"inferenceId\":")
            writeJSONString(id, into: &buffer)
        }
        buffer.writeString(",\"inferenceTime\":\"\(event.time.iso8601)\"},\"eventVersion\":\"0\"}\n")
    }

    /// Writes `text` as a JSON string literal.
    static func writeJSONString(_ text: String, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
            case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
            case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
            case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                buffer.writeStaticString("\\u00")
                buffer.writeInteger(hex[Int(byte >> 4)])
                buffer.writeInteger(hex[Int(byte & 0xF)])
            default: buffer.writeInteger(byte)
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }
}

extension String {
    /// The bytes as a string when they are valid UTF-8; `nil` otherwise.
    init?(validatingUTF8Bytes bytes: ByteBufferView) {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: break loop
            case .error: return nil
            }
        }
        self.init(decoding: bytes, as: UTF8.self)
    }
}
