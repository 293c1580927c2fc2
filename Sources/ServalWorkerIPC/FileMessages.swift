public import NIOCore
public import ServalCore

extension WorkerMessages {
    /// Appends an INVOKE_FILE frame for `request` to `buffer`.
    ///
    /// - Throws: ``WorkerProtocolError/malformed(_:)`` when a header value or path exceeds its 65,535-byte field,
    ///   or a path is empty or holds a NUL byte.
    public static func writeInvokeFile(
        batchID: UInt64, request: FileInvocationRequest, into buffer: inout ByteBuffer
    ) throws {
        for (field, path) in [("input path", request.inputPath), ("output path", request.outputPath)]
        where path.isEmpty || path.utf8.contains(0) {
            throw WorkerProtocolError.malformed("\(field) is empty or holds a NUL byte")
        }
        try buffer.writeWorkerFrame(type: .invokeFile) { buffer in
            buffer.writeInteger(batchID, endianness: .little)
            try writeShortString(request.contentType, field: "content type", into: &buffer)
            try writeShortString(request.accept, field: "accept", into: &buffer)
            try writeShortString(request.customAttributes, field: "custom attributes", into: &buffer)
            try writeShortString(request.inputPath, field: "input path", into: &buffer)
            try writeShortString(request.outputPath, field: "output path", into: &buffer)
        }
    }

    /// Decodes an INVOKE_FILE payload (used by tests and tools that play the worker's part).
    public static func readInvokeFile(_ payload: ByteBuffer) throws -> (batchID: UInt64, request: FileInvocationRequest) {
        var payload = payload
        guard let batchID = payload.readInteger(endianness: .little, as: UInt64.self) else {
            throw WorkerProtocolError.malformed("INVOKE_FILE header is truncated")
        }
        let contentType = try readShortString(&payload, item: 0)
        let accept = try readShortString(&payload, item: 0)
        let attributes = try readShortString(&payload, item: 0)
        let inputPath = try readShortString(&payload, item: 0)
        let outputPath = try readShortString(&payload, item: 0)
        guard payload.readableBytes == 0 else {
            throw WorkerProtocolError.malformed("INVOKE_FILE has \(payload.readableBytes) trailing bytes")
        }
        guard !inputPath.isEmpty, !outputPath.isEmpty, !inputPath.utf8.contains(0), !outputPath.utf8.contains(0) else {
            throw WorkerProtocolError.malformed("INVOKE_FILE has an empty path or one with a NUL byte")
        }
        let request = FileInvocationRequest(
            inputPath: inputPath, outputPath: outputPath, contentType: contentType, accept: accept,
            customAttributes: attributes)
        return (batchID, request)
    }

    /// Appends a FILE_RESULT frame to `buffer` (used by tests and tools that play the worker's part).
    public static func writeFileResult(
        batchID: UInt64, _ result: WorkerItemResult<FileInvocationResponse>, into buffer: inout ByteBuffer
    ) throws {
        try buffer.writeWorkerFrame(type: .fileResult) { buffer in
            buffer.writeInteger(batchID, endianness: .little)
            switch result {
            case .success(let response):
                buffer.writeInteger(UInt8(0))
                try writeShortString(response.contentType, field: "content type", into: &buffer)
                buffer.writeInteger(UInt64(response.bytesWritten), endianness: .little)
                buffer.writeInteger(UInt32(0), endianness: .little)
            case .badInput(let message), .modelError(let message):
                buffer.writeInteger(UInt8(result.isBadInput ? 1 : 2))
                buffer.writeInteger(UInt16(0), endianness: .little)
                buffer.writeInteger(UInt64(0), endianness: .little)
                buffer.writeInteger(UInt32(message.utf8.count), endianness: .little)
                buffer.writeString(message)
            }
        }
    }

    /// Decodes a FILE_RESULT payload.
    public static func readFileResult(
        _ payload: ByteBuffer
    ) throws -> (batchID: UInt64, result: WorkerItemResult<FileInvocationResponse>) {
        var payload = payload
        guard let batchID = payload.readInteger(endianness: .little, as: UInt64.self),
            let status = payload.readInteger(as: UInt8.self)
        else { throw WorkerProtocolError.malformed("FILE_RESULT header is truncated") }
        let contentType = try readShortString(&payload, item: 0)
        guard let bytesWritten = payload.readInteger(endianness: .little, as: UInt64.self),
            bytesWritten <= UInt64(Int.max)
        else { throw WorkerProtocolError.malformed("FILE_RESULT byte count is truncated or out of range") }
        let message = try readLongBytes(&payload, item: 0)
        guard payload.readableBytes == 0 else {
            throw WorkerProtocolError.malformed("FILE_RESULT has \(payload.readableBytes) trailing bytes")
        }
        switch status {
        case 0: return (batchID, .success(FileInvocationResponse(contentType: contentType, bytesWritten: Int(bytesWritten))))
        case 1: return (batchID, .badInput(message: String(buffer: message)))
        case 2: return (batchID, .modelError(message: String(buffer: message)))
        default: throw WorkerProtocolError.malformed("FILE_RESULT has unknown status \(status)")
        }
    }
}
