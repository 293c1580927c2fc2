public import NIOCore
public import ServalCore

/// How one item of a batch ended, as the worker reported it. `Output` is an ``InvocationResponse`` for INVOKE
/// and an ``InferenceResponse`` for INFER.
public enum WorkerItemResult<Output: Sendable & Equatable>: Sendable, Equatable {
    /// The model answered.
    case success(Output)
    /// The item's input was rejected by the handler (HTTP 400).
    case badInput(message: String)
    /// The model or handler raised while processing the item (HTTP 424).
    case modelError(message: String)
}

/// The worker's answer to one INVOKE or INFER.
public struct WorkerBatchResult<Output: Sendable & Equatable>: Sendable, Equatable {
    /// The batch it answers.
    public var batchID: UInt64
    /// One result per item, in the batch's order.
    public var items: [WorkerItemResult<Output>]

    /// Creates a batch result.
    public init(batchID: UInt64, items: [WorkerItemResult<Output>]) {
        self.batchID = batchID
        self.items = items
    }
}

/// Encoding and decoding of the worker protocol's payloads.
public enum WorkerMessages {
    /// Appends an INVOKE frame for `requests` to `buffer`.
    ///
    /// - Throws: ``WorkerProtocolError/malformed(_:)`` when a header value exceeds its 65,535-byte field.
    public static func writeInvoke(
        batchID: UInt64, requests: some Collection<InvocationRequest>, into buffer: inout ByteBuffer
    ) throws {
        var capacity = 6 + 12
        for request in requests {
            capacity += 10 + request.contentType.utf8.count + request.accept.utf8.count
                + request.customAttributes.utf8.count + request.body.readableBytes
        }
        buffer.reserveCapacity(minimumWritableBytes: capacity)
        try buffer.writeWorkerFrame(type: .invoke) { buffer in
            buffer.writeInteger(batchID, endianness: .little)
            buffer.writeInteger(UInt32(requests.count), endianness: .little)
            for request in requests {
                try writeShortString(request.contentType, field: "content type", into: &buffer)
                try writeShortString(request.accept, field: "accept", into: &buffer)
                try writeShortString(request.customAttributes, field: "custom attributes", into: &buffer)
                buffer.writeInteger(UInt32(request.body.readableBytes), endianness: .little)
                buffer.writeImmutableBuffer(request.body)
            }
        }
    }

    /// Decodes an INVOKE payload (used by tests and tools that play the worker's part).
    public static func readInvoke(_ payload: ByteBuffer) throws -> (batchID: UInt64, requests: [InvocationRequest]) {
        var payload = payload
        guard let batchID = payload.readInteger(endianness: .little, as: UInt64.self),
            let count = payload.readInteger(endianness: .little, as: UInt32.self)
        else { throw WorkerProtocolError.malformed("INVOKE header is truncated") }
        var requests: [InvocationRequest] = []
        requests.reserveCapacity(Int(min(count, 4096)))
        for index in 0..<Int(count) {
            let contentType = try readShortString(&payload, item: index)
            let accept = try readShortString(&payload, item: index)
            let attributes = try readShortString(&payload, item: index)
            let body = try readLongBytes(&payload, item: index)
            requests.append(
                InvocationRequest(body: body, contentType: contentType, accept: accept, customAttributes: attributes))
        }
        guard payload.readableBytes == 0 else {
            throw WorkerProtocolError.malformed("INVOKE has \(payload.readableBytes) trailing bytes")
        }
        return (batchID, requests)
    }

    /// Appends a RESULT frame to `buffer` (used by tests and tools that play the worker's part).
    public static func writeResult(_ result: WorkerBatchResult<InvocationResponse>, into buffer: inout ByteBuffer) throws {
        try buffer.writeWorkerFrame(type: .result) { buffer in
            buffer.writeInteger(result.batchID, endianness: .little)
            buffer.writeInteger(UInt32(result.items.count), endianness: .little)
            for item in result.items {
                switch item {
                case .success(let response):
                    buffer.writeInteger(UInt8(0))
                    try writeShortString(response.contentType, field: "content type", into: &buffer)
                    buffer.writeInteger(UInt32(response.body.readableBytes), endianness: .little)
                    buffer.writeImmutableBuffer(response.body)
                case .badInput(let message), .modelError(let message):
                    buffer.writeInteger(UInt8(item.isBadInput ? 1 : 2))
                    buffer.writeInteger(UInt16(0), endianness: .little)
                    buffer.writeInteger(UInt32(message.utf8.count), endianness: .little)
                    buffer.writeString(message)
                }
            }
        }
    }

    /// Decodes a RESULT payload. Response bodies are views into `payload`, not copies.
    public static func readResult(_ payload: ByteBuffer) throws -> WorkerBatchResult<InvocationResponse> {
        var payload = payload
        guard let batchID = payload.readInteger(endianness: .little, as: UInt64.self),
            let count = payload.readInteger(endianness: .little, as: UInt32.self)
        else { throw WorkerProtocolError.malformed("RESULT header is truncated") }
        var items: [WorkerItemResult<InvocationResponse>] = []
        items.reserveCapacity(Int(min(count, 4096)))
        for index in 0..<Int(count) {
            guard let status = payload.readInteger(as: UInt8.self) else {
                throw WorkerProtocolError.malformed("RESULT item \(index) is truncated")
            }
            let contentType = try readShortString(&payload, item: index)
            let body = try readLongBytes(&payload, item: index)
            switch status {
            case 0: items.append(.success(InvocationResponse(body: body, contentType: contentType)))
            case 1: items.append(.badInput(message: String(buffer: body)))
            case 2: items.append(.modelError(message: String(buffer: body)))
            default: throw WorkerProtocolError.malformed("RESULT item \(index) has unknown status \(status)")
            }
        }
        guard payload.readableBytes == 0 else {
            throw WorkerProtocolError.malformed("RESULT has \(payload.readableBytes) trailing bytes")
        }
        return WorkerBatchResult(batchID: batchID, items: items)
    }

    /// Appends an empty-payload frame (SHUTDOWN) to `buffer`.
    public static func writeShutdown(into buffer: inout ByteBuffer) {
        buffer.writeWorkerFrame(type: .shutdown) { _ in }
    }

    static func writeShortString(_ string: String, field: String, into buffer: inout ByteBuffer) throws {
        let length = string.utf8.count
        guard length <= Int(UInt16.max) else {
            throw WorkerProtocolError.malformed("\(field) of \(length) bytes exceeds 65535")
        }
        buffer.writeInteger(UInt16(length), endianness: .little)
        buffer.writeString(string)
    }

    static func readShortString(_ payload: inout ByteBuffer, item: Int) throws -> String {
        guard let length = payload.readInteger(endianness: .little, as: UInt16.self),
            let string = payload.readString(length: Int(length))
        else { throw WorkerProtocolError.malformed("item \(item) is truncated") }
        return string
    }

    static func readLongBytes(_ payload: inout ByteBuffer, item: Int) throws -> ByteBuffer {
        guard let length = payload.readInteger(endianness: .little, as: UInt32.self),
            let bytes = payload.readSlice(length: Int(length))
        else { throw WorkerProtocolError.malformed("item \(item) body is truncated") }
        return bytes
    }
}

extension WorkerItemResult {
    var isBadInput: Bool {
        if case .badInput = self { return true }
        return false
    }
}
