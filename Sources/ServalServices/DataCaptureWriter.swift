public import Logging
public import NIOCore
import NIOPosix
public import ServalCore
public import ServalObjects
public import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One variant's data capture, made once when its endpoint's runtime is built: the config and where the variant's
/// records go. Every buffered record refers to its stream instead of carrying the config.
public final class CaptureStream: Sendable {
    /// The endpoint and the variant.
    public let endpoint: String
    public let variant: String
    /// The endpoint config's capture settings.
    public let config: DataCaptureConfig
    /// Counts the variant's dropped records in `serval_capture_dropped_total`.
    let observer: any VariantObserver
    /// The destination's bucket, and the key prefix of the variant's files (`<prefix>/<endpoint>/<variant>/`);
    /// `nil` for a destination that does not parse (the config was checked when it was made, so only a config
    /// stored by an older Serval could be one).
    let location: (bucket: String, keyPrefix: String)?

    /// Creates the stream of `variant` of `endpoint`.
    public init(endpoint: String, variant: String, config: DataCaptureConfig, observer: any VariantObserver) {
        self.endpoint = endpoint
        self.variant = variant
        self.config = config
        self.observer = observer
        if let (bucket, prefix) = try? ObjectLocation.split(uri: config.destination, field: "destination") {
            let folder = prefix.isEmpty || prefix.hasSuffix("/") ? prefix : prefix + "/"
            location = (bucket, "\(folder)\(endpoint)/\(variant)/")
        } else {
            location = nil
        }
    }
}

/// What became of an endpoint's captured records since Serval started: shown on the deploy card
/// (`serval endpoints describe`) so that a failing capture is seen where a user looks.
public struct DataCaptureStatus: Sendable, Equatable {
    /// Records written to the object store.
    public var recordsWritten = 0
    /// Records dropped: the buffer was full, a record was too large, or writing it failed.
    public var recordsDropped = 0
    /// Why records were last dropped, and when.
    public var lastError: String?
    public var lastErrorAt: Timestamp?

    /// Creates a status.
    public init(recordsWritten: Int = 0, recordsDropped: Int = 0, lastError: String? = nil, lastErrorAt: Timestamp? = nil) {
        self.recordsWritten = recordsWritten
        self.recordsDropped = recordsDropped
        self.lastError = lastError
        self.lastErrorAt = lastErrorAt
    }
}

/// An invocation drawn for capture. The frontend that answered it hands over the request's and the response's
/// bodies as they went over the wire with ``record(input:inputType:output:outputType:)``; a path that exchanged
/// files (a large asynchronous invocation) with ``record(inputFile:inputType:outputFile:outputType:)``.
public struct CaptureTicket: Sendable {
    let writer: DataCaptureWriter
    let stream: CaptureStream
    let inferenceID: String?
    let time: Timestamp

    /// Queues the record. A body the endpoint does not capture (its mode is off) is not evaluated; the buffers are
    /// kept, not copied.
    public func record(
        input: @autoclosure () -> ByteBuffer, inputType: String, output: @autoclosure () -> ByteBuffer, outputType: String
    ) {
        let config = stream.config
        writer.offer(
            CaptureEvent(
                stream: stream, input: config.captureInput ? input() : nil, inputType: inputType,
                output: config.captureOutput ? output() : nil, outputType: outputType, inferenceID: inferenceID, time: time))
    }

    /// Reads the input and output files (on the thread pool) and queues the record, or drops it, counted, when the
    /// captured bodies are larger than a record may hold.
    public func record(inputFile: String, inputType: String, outputFile: String, outputType: String) async {
        let config = stream.config
        let paths = (config.captureInput ? inputFile : nil, config.captureOutput ? outputFile : nil)
        let limit = writer.maxRecordBytes
        let read: Result<(ByteBuffer?, ByteBuffer?), CaptureReadFailure>
        do {
            read = try await NIOThreadPool.singleton.runIfActive { Self.read(paths, limit: limit) }
        } catch {
            read = .failure(.unreadable("\(error)"))
        }
        switch read {
        case .success(let (input, output)):
            writer.offer(
                CaptureEvent(
                    stream: stream, input: input, inputType: inputType, output: output, outputType: outputType,
                    inferenceID: inferenceID, time: time))
        case .failure(let failure):
            writer.drop(stream, reason: failure.reason(limit: limit), detail: failure.detail, log: true)
        }
    }

    /// Reads the files unless together they are larger than `limit`; blocks.
    private static func read(
        _ paths: (String?, String?), limit: Int
    ) -> Result<(ByteBuffer?, ByteBuffer?), CaptureReadFailure> {
        do {
            var total: Int64 = 0
            for path in [paths.0, paths.1].compactMap({ $0 }) { total += try FileSystem.status(path, follow: true)?.size ?? 0 }
            guard total <= Int64(limit) else { return .failure(.tooLarge(bytes: total)) }
            return .success((try paths.0.map(readFile), try paths.1.map(readFile)))
        } catch {
            return .failure(.unreadable("\(error)"))
        }
    }

    private static func readFile(_ path: String) throws(ObjectStoreError) -> ByteBuffer {
        guard let fd = try FileSystem.openForReading(path) else { throw .io("\(path) no longer exists") }
        defer { close(fd) }
        let size = try FileSystem.status(path, follow: true)?.size ?? 0
        return try FileSystem.readChunk(fd: fd, at: 0, count: Int(size), path: path)
    }
}

/// Why a file-backed capture could not be read.
enum CaptureReadFailure: Error {
    case tooLarge(bytes: Int64)
    /// The system's reason, for the log.
    case unreadable(String)

    func reason(limit: Int) -> String {
        switch self {
        case .tooLarge(let bytes):
            DataCaptureWriter.tooLarge(bytes: bytes, limit: limit)
        case .unreadable:
            "An invocation's input or output file could not be read for capture; the server log has the details."
        }
    }

    var detail: String? {
        if case .unreadable(let reason) = self { reason } else { nil }
    }
}

/// One captured invocation, waiting to be written. Small: its stream by reference, the bodies as the request's and
/// response's own buffers (no copy is made on the request path).
struct CaptureEvent: Sendable {
    /// The endpoint and variant it belongs to, with their settings.
    var stream: CaptureStream
    /// The request's body, when inputs are captured, and its content type.
    var input: ByteBuffer?
    var inputType: String
    /// The response's body, when outputs are captured, and its content type.
    var output: ByteBuffer?
    var outputType: String
    /// The caller's inference id, if it gave one.
    var inferenceID: String?
    /// When the invocation was answered.
    var time: Timestamp

    /// The bytes the event holds.
    var bytes: Int { (input?.readableBytes ?? 0) + (output?.readableBytes ?? 0) }
}

/// Writes captured invocations to the object store as JSON Lines, in SageMaker's record shape, off the request path.
///
/// The request path does little: ``ticket(_:inferenceID:)`` draws whether an invocation is captured (a lock-free
/// counter-based generator: no lock, no system call) and ``CaptureTicket/record(input:inputType:output:outputType:)``
/// appends a small event to a bounded buffer under a short lock, or drops it (counted in
/// `serval_capture_dropped_total` and in the endpoint's ``DataCaptureStatus``) when the buffer is full. The buffer is
/// flushed every `flushInterval` (5 s) or as soon as it holds `flushBytes` (1 MB): each variant's records of one hour
/// become one new object, `<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/mm-ss-SSS-<id>.jsonl`, written whole (the
/// store renames a finished file into place) into a bucket created when missing. A crash therefore loses at most
/// what arrived since the last flush, and leaves no partial file. A failed write (a store error, a full disk) is
/// logged, its records counted as dropped, and the reason shown in the endpoint's status.
public final class DataCaptureWriter: Service, Sendable {
    private struct State {
        var events: [CaptureEvent] = []
        var bytes = 0
        /// By endpoint name; kept while Serval runs.
        var statuses: [String: DataCaptureStatus] = [:]
    }

    private let objects: any ObjectStore
    private let clock: any WallClock
    private let logger: Logger
    private let flushInterval: Duration
    private let flushBytes: Int
    private let maxBufferedBytes: Int
    /// The largest captured bodies (input and output together) one record holds.
    let maxRecordBytes: Int
    private let state = Mutex(State())
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>
    /// The sampling draw's state: a SplitMix64 sequence advanced atomically.
    private let draws: Atomic<UInt64>
    /// Event and file ids: a random 128-bit value per writer, plus a counter in its low bits.
    private let idBase: (high: UInt64, low: UInt64)
    private let idCounter = Atomic<UInt64>(0)

    /// Creates the writer; ``run()`` flushes until graceful shutdown, then once more.
    public init(
        objects: any ObjectStore, clock: any WallClock, logger: Logger, flushInterval: Duration = .seconds(5),
        flushBytes: Int = 1 << 20, maxBufferedBytes: Int = 64 << 20, maxRecordBytes: Int = 16 << 20
    ) {
        self.objects = objects
        self.clock = clock
        self.logger = logger
        self.flushInterval = flushInterval
        self.flushBytes = flushBytes
        self.maxBufferedBytes = maxBufferedBytes
        self.maxRecordBytes = min(maxRecordBytes, maxBufferedBytes)
        (wakes, wake) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
        var random = SystemRandomNumberGenerator()
        draws = Atomic(random.next())
        idBase = (random.next(), random.next())
    }

    // MARK: The request path

    /// A ticket when the stream's sampling draw picks this invocation; `nil` when it does not.
    public func ticket(_ stream: CaptureStream, inferenceID: String?) -> CaptureTicket? {
        let percentage = stream.config.samplingPercentage
        guard percentage >= 100 || (percentage > 0 && draw() % 100 < UInt64(percentage)) else { return nil }
        return CaptureTicket(writer: self, stream: stream, inferenceID: inferenceID, time: clock.now())
    }

    /// The next value of a SplitMix64 sequence whose state every caller advances atomically.
    private func draw() -> UInt64 {
        var value = draws.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }

    /// Queues an event for the next flush, or drops it when the buffer is full or the event too large.
    func offer(_ event: CaptureEvent) {
        let bytes = event.bytes
        guard bytes <= maxRecordBytes else {
            drop(event.stream, reason: Self.tooLarge(bytes: Int64(bytes), limit: maxRecordBytes), log: true)
            return
        }
        let (accepted, full) = state.withLock { state -> (Bool, Bool) in
            guard state.bytes + bytes <= maxBufferedBytes else { return (false, false) }
            state.events.append(event)
            state.bytes += bytes + 512
            return (true, state.bytes >= flushBytes)
        }
        // Not logged: under a load the store cannot keep up with, that would be a line per invocation.
        if !accepted { drop(event.stream, reason: Self.bufferFull, log: false) }
        if full { wake.yield() }
    }

    static func tooLarge(bytes: Int64, limit: Int) -> String {
        "An invocation's captured bodies were \(bytes) bytes, more than the \(limit >> 20) MiB a capture record holds; it was not captured."
    }

    private static let bufferFull =
        "The capture buffer was full (the object store is slower than the captured traffic); records were dropped."

    /// Drops one record of `stream`, counted in its endpoint's status and its metrics.
    func drop(_ stream: CaptureStream, reason: String, detail: String? = nil, log: Bool) {
        if log {
            logger.warning(
                "A captured invocation was dropped",
                metadata: ["endpoint": "\(stream.endpoint)", "variant": "\(stream.variant)", "reason": "\(detail ?? reason)"])
        }
        let now = clock.now()
        state.withLock { Self.dropped(1, of: stream.endpoint, reason: reason, at: now, in: &$0) }
        stream.observer.captureDropped(1)
    }

    private static func dropped(_ count: Int, of endpoint: String, reason: String, at time: Timestamp, in state: inout State) {
        state.statuses[endpoint, default: DataCaptureStatus()].recordsDropped += count
        state.statuses[endpoint]!.lastError = reason
        state.statuses[endpoint]!.lastErrorAt = time
    }

    /// What became of the endpoint's records since Serval started; `nil` before its first captured invocation.
    public func status(endpoint: String) -> DataCaptureStatus? {
        state.withLock { $0.statuses[endpoint] }
    }

    // MARK: Flushing

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

    /// One file of a flush: a stream's records of one hour.
    private struct FileKey: Hashable {
        var stream: ObjectIdentifier
        var hour: Int64
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
            files[FileKey(stream: ObjectIdentifier(event.stream), hour: event.time.millisecondsSinceEpoch / 3_600_000), default: []]
                .append(event)
        }
        for events in files.values {
            let stream = events[0].stream
            do {
                guard let folder = stream.location else {
                    throw ServalError.invalid(
                        "DestinationS3Uri", "\"\(stream.config.destination)\" is not a location in Serval's object store.")
                }
                let location = try ObjectLocation(bucket: folder.bucket, key: folder.keyPrefix + fileName(firstEvent: events[0].time))
                _ = try await objects.createBucket(folder.bucket)
                var body = ByteBuffer()
                body.reserveCapacity(events.reduce(0) { $0 + $1.bytes * 4 / 3 + 512 })
                for event in events { Self.writeRecord(event, id: nextID(), into: &body) }
                try await objects.put(location, bytes: body, contentType: "application/jsonlines")
                state.withLock { $0.statuses[stream.endpoint, default: DataCaptureStatus()].recordsWritten += events.count }
            } catch {
                logger.error(
                    "Could not write captured data; its records are dropped",
                    metadata: ["endpoint": "\(stream.endpoint)", "variant": "\(stream.variant)", "error": "\(error)"])
                let reason =
                    "Writing \(events.count) captured records to \(stream.config.destination) failed: "
                    + ((error as? ObjectStoreError)?.servalError.message ?? (error as? ServalError)?.message
                        ?? "the object store failed; the server log has the details.")
                let now = clock.now()
                state.withLock { Self.dropped(events.count, of: stream.endpoint, reason: reason, at: now, in: &$0) }
                stream.observer.captureDropped(events.count)
            }
        }
    }

    /// `mm-ss-SSS-<id>.jsonl` under `yyyy/mm/dd/hh/`, from the time of the file's first record.
    private func fileName(firstEvent time: Timestamp) -> String {
        var name = ByteBuffer()
        let parts = time.components
        for (value, width, separator) in [
            (parts.year, 4, "/"), (parts.month, 2, "/"), (parts.day, 2, "/"), (parts.hour, 2, "/"), (parts.minute, 2, "-"),
            (parts.second, 2, "-"), (parts.millisecond, 3, "-"),
        ] {
            Self.writeDigits(value, width: width, into: &name)
            name.writeString(separator)
        }
        Self.writeID(nextID(), into: &name)
        name.writeString(".jsonl")
        return String(buffer: name)
    }

    /// A new id: the writer's random base with a counter added to its low 62 bits, marked as a version 4 UUID.
    func nextID() -> (high: UInt64, low: UInt64) {
        let count = idCounter.wrappingAdd(1, ordering: .relaxed).newValue
        let high = idBase.high & ~0xF000 | 0x4000
        let low = (idBase.low &+ count) & 0x3FFF_FFFF_FFFF_FFFF | 0x8000_0000_0000_0000
        return (high, low)
    }

    // MARK: Records

    /// Appends one JSON Lines record in SageMaker's shape: `captureData.endpointInput` / `endpointOutput`
    /// (`observedContentType`, `mode`, `data`, `encoding`), `eventMetadata` (`eventId`, `inferenceId`,
    /// `inferenceTime`) and `eventVersion`.
    static func writeRecord(_ event: CaptureEvent, id: (high: UInt64, low: UInt64), into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"captureData":{"#)
        if let input = event.input {
            writePart("endpointInput", mode: "INPUT", body: input, contentType: event.inputType, config: event.stream.config, into: &buffer)
        }
        if let output = event.output {
            if event.input != nil { buffer.writeStaticString(",") }
            writePart(
                "endpointOutput", mode: "OUTPUT", body: output, contentType: event.outputType, config: event.stream.config,
                into: &buffer)
        }
        buffer.writeStaticString(#"},"eventMetadata":{"eventId":""#)
        writeID(id, into: &buffer)
        buffer.writeStaticString("\"")
        if let inferenceID = event.inferenceID {
            buffer.writeStaticString(",\"inferenceId\":")
            writeJSONString(inferenceID.utf8, into: &buffer)
        }
        buffer.writeStaticString(",\"inferenceTime\":\"")
        let time = event.time.components
        writeDigits(time.year, width: 4, into: &buffer)
        for (separator, value) in [("-", time.month), ("-", time.day), ("T", time.hour), (":", time.minute), (":", time.second)] {
            buffer.writeString(separator)
            writeDigits(value, width: 2, into: &buffer)
        }
        buffer.writeStaticString(".")
        writeDigits(time.millisecond, width: 3, into: &buffer)
        buffer.writeStaticString("Z\"},\"eventVersion\":\"0\"}\n")
    }

    /// `"name":{"observedContentType":…,"mode":…,"data":…,"encoding":…}`; a CSV or JSON body that is not valid UTF-8
    /// is written as BASE64.
    private static func writePart(
        _ name: StaticString, mode: StaticString, body: ByteBuffer, contentType: String, config: DataCaptureConfig,
        into buffer: inout ByteBuffer
    ) {
        var encoding = config.encoding(of: contentType)
        if encoding != .base64, !isValidUTF8(body.readableBytesView) { encoding = .base64 }
        buffer.writeStaticString("\"")
        buffer.writeStaticString(name)
        buffer.writeStaticString("\":{\"observedContentType\":")
        writeJSONString(contentType.utf8, into: &buffer)
        buffer.writeStaticString(",\"mode\":\"")
        buffer.writeStaticString(mode)
        buffer.writeStaticString("\",\"data\":")
        if encoding == .base64 {
            buffer.writeStaticString("\"")
            writeBase64(body.readableBytesView, into: &buffer)
            buffer.writeStaticString("\"")
        } else {
            writeJSONString(body.readableBytesView, into: &buffer)
        }
        buffer.writeStaticString(",\"encoding\":\"")
        buffer.writeString(encoding.rawValue)
        buffer.writeStaticString("\"}")
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// An id as a UUID-shaped string: 8-4-4-4-12 lowercase hexadecimal digits.
    static func writeID(_ id: (high: UInt64, low: UInt64), into buffer: inout ByteBuffer) {
        for (index, shift) in stride(from: 60, through: 0, by: -4).enumerated() {
            if index == 8 || index == 12 { buffer.writeInteger(UInt8(ascii: "-")) }
            buffer.writeInteger(hexDigits[Int(id.high >> UInt64(shift) & 0xF)])
        }
        for (index, shift) in stride(from: 60, through: 0, by: -4).enumerated() {
            if index == 0 || index == 4 { buffer.writeInteger(UInt8(ascii: "-")) }
            buffer.writeInteger(hexDigits[Int(id.low >> UInt64(shift) & 0xF)])
        }
    }

    /// `value` (not negative) in decimal, zero-padded to `width` digits.
    static func writeDigits(_ value: Int64, width: Int, into buffer: inout ByteBuffer) {
        var divisor: Int64 = 1
        for _ in 1..<width { divisor *= 10 }
        while value / divisor >= 10 { divisor *= 10 }
        while divisor > 0 {
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(value / divisor % 10))
            divisor /= 10
        }
    }

    /// Whether the bytes are valid UTF-8.
    static func isValidUTF8(_ bytes: ByteBufferView) -> Bool {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    /// Writes UTF-8 `bytes` as a JSON string literal, copying runs that need no escape whole.
    static func writeJSONString(_ bytes: some Collection<UInt8>, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        let written = bytes.withContiguousStorageIfAvailable { escape(UnsafeRawBufferPointer($0), into: &buffer) }
        if written == nil { Array(bytes).withUnsafeBytes { escape($0, into: &buffer) } }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    private static func escape(_ bytes: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        var runStart = 0
        for (index, byte) in bytes.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
            runStart = index + 1
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
            case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
            case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
            case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
            default:
                buffer.writeStaticString("\\u00")
                buffer.writeInteger(hexDigits[Int(byte >> 4)])
                buffer.writeInteger(hexDigits[Int(byte & 0xF)])
            }
        }
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart...]))
    }

    private static let base64Alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Writes `bytes` in standard base64 with padding, straight into the buffer.
    static func writeBase64(_ bytes: ByteBufferView, into buffer: inout ByteBuffer) {
        let count = bytes.count
        let length = (count + 2) / 3 * 4
        guard length > 0 else { return }
        bytes.withContiguousStorageIfAvailable { source in
            base64Alphabet.withUnsafeBufferPointer { alphabet in
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { target in
                    var out = 0
                    var index = 0
                    while index + 3 <= count {
                        let value = UInt32(source[index]) << 16 | UInt32(source[index + 1]) << 8 | UInt32(source[index + 2])
                        target[out] = alphabet[Int(value >> 18 & 63)]
                        target[out + 1] = alphabet[Int(value >> 12 & 63)]
                        target[out + 2] = alphabet[Int(value >> 6 & 63)]
                        target[out + 3] = alphabet[Int(value & 63)]
                        index += 3
                        out += 4
                    }
                    if index < count {
                        let second = index + 1 < count ? UInt32(source[index + 1]) : 0
                        let value = UInt32(source[index]) << 16 | second << 8
                        target[out] = alphabet[Int(value >> 18 & 63)]
                        target[out + 1] = alphabet[Int(value >> 12 & 63)]
                        target[out + 2] = index + 1 < count ? alphabet[Int(value >> 6 & 63)] : UInt8(ascii: "=")
                        target[out + 3] = UInt8(ascii: "=")
                        out += 4
                    }
                    return out
                }
            }
        }
    }
}
