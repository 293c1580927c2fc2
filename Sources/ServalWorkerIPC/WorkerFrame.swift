public import NIOCore

/// The version of the worker protocol this build speaks. See `docs/worker-protocol.md`.
public let workerProtocolVersion: UInt8 = 2

/// The message types of the worker protocol.
public enum WorkerMessageType: UInt8, Sendable {
    /// Worker → Serval: the model loaded; JSON payload.
    case ready = 0x01
    /// Worker → Serval: the model failed to load; JSON payload.
    case loadFailed = 0x02
    /// Serval → worker: a batch of requests.
    case invoke = 0x10
    /// Worker → Serval: the answers to a batch.
    case result = 0x11
    /// Serval → worker: a batch of tensor requests.
    case infer = 0x12
    /// Worker → Serval: the answers to a batch of tensor requests.
    case inferResult = 0x13
    /// Serval → worker: one request whose body is a file and whose response goes to a file.
    case invokeFile = 0x14
    /// Worker → Serval: the answer to an INVOKE_FILE.
    case fileResult = 0x15
    /// Serval → worker: finish the current batch and exit.
    case shutdown = 0x20
}

/// One frame of the worker protocol: a type and its payload.
public struct WorkerFrame: Sendable, Equatable {
    /// The message type.
    public var type: WorkerMessageType
    /// The payload, a view into the received bytes.
    public var payload: ByteBuffer

    /// Creates a frame.
    public init(type: WorkerMessageType, payload: ByteBuffer) {
        self.type = type
        self.payload = payload
    }
}

/// A violation of the worker protocol. The connection cannot be trusted after one and is closed.
public enum WorkerProtocolError: Error, Equatable, CustomStringConvertible {
    /// A frame declared a length above the limit.
    case frameTooLarge(length: Int, limit: Int)
    /// A frame carried a protocol version this build does not speak.
    case unsupportedVersion(UInt8)
    /// A frame carried an unknown message type.
    case unknownType(UInt8)
    /// A payload did not match its message's layout.
    case malformed(String)

    public var description: String {
        switch self {
        case .frameTooLarge(let length, let limit): "worker frame of \(length) bytes exceeds the \(limit)-byte limit"
        case .unsupportedVersion(let version): "worker speaks protocol version \(version); this Serval speaks \(workerProtocolVersion)"
        case .unknownType(let type): "unknown worker message type 0x\(String(type, radix: 16))"
        case .malformed(let what): "malformed worker message: \(what)"
        }
    }
}

/// Splits a byte stream into ``WorkerFrame``s: `length:u32le`, then `version:u8 type:u8 payload`.
///
/// Usable directly in a NIO pipeline through `ByteToMessageHandler`, and on its own in tests.
public struct WorkerFrameDecoder: ByteToMessageDecoder, NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = WorkerFrame

    /// The largest frame body accepted.
    public let maxFrameLength: Int

    /// The default limit: 256 MiB, above the largest batch Serval sends.
    public static let defaultMaxFrameLength = 256 * 1024 * 1024

    /// Creates a decoder.
    public init(maxFrameLength: Int = WorkerFrameDecoder.defaultMaxFrameLength) {
        self.maxFrameLength = maxFrameLength
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> WorkerFrame? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt32.self) else {
            return nil
        }
        let bodyLength = Int(length)
        guard bodyLength <= maxFrameLength else {
            throw WorkerProtocolError.frameTooLarge(length: bodyLength, limit: maxFrameLength)
        }
        guard bodyLength >= 2 else {
            throw WorkerProtocolError.malformed("frame body of \(bodyLength) bytes is shorter than its header")
        }
        guard buffer.readableBytes >= 4 + bodyLength else { return nil }
        let version = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt8.self)!
        let rawType = buffer.getInteger(at: buffer.readerIndex + 5, as: UInt8.self)!
        guard version == workerProtocolVersion else { throw WorkerProtocolError.unsupportedVersion(version) }
        guard let type = WorkerMessageType(rawValue: rawType) else { throw WorkerProtocolError.unknownType(rawType) }
        let payload = buffer.getSlice(at: buffer.readerIndex + 6, length: bodyLength - 2)!
        buffer.moveReaderIndex(forwardBy: 4 + bodyLength)
        return WorkerFrame(type: type, payload: payload)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try decode(buffer: &buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> WorkerFrame? {
        try decode(buffer: &buffer)
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

extension ByteBuffer {
    /// Writes a frame header for a body of `payloadLength` bytes, then lets `writePayload` write exactly that many.
    ///
    /// Use ``writeWorkerFrame(type:_:)`` when the payload length is not known up front.
    @inlinable
    public mutating func writeWorkerFrame(type: WorkerMessageType, _ writePayload: (inout ByteBuffer) throws -> Void) rethrows {
        let lengthIndex = writerIndex
        writeInteger(UInt32(0), endianness: .little)
        writeInteger(workerProtocolVersion)
        writeInteger(type.rawValue)
        try writePayload(&self)
        let bodyLength = writerIndex - lengthIndex - 4
        setInteger(UInt32(bodyLength), at: lengthIndex, endianness: .little)
    }
}
