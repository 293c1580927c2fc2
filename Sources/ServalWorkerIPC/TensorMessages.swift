public import NIOCore
public import ServalCore

/// Encoding and decoding of the tensor messages, INFER and INFER_RESULT (see `docs/worker-protocol.md`).
extension WorkerMessages {
    /// The most dimensions a tensor may have on the wire.
    public static let maxTensorRank = 32

    /// The rows an INFER item contributes to the batch: its first dimension, or 0 for a scalar input.
    public static func rows(of request: InferenceRequest) -> Int {
        request.inputs.first?.shape.first ?? 0
    }

    /// Appends an INFER frame for `requests` to `buffer`, concatenating each input along its first dimension.
    ///
    /// The requests must be batch-compatible (the same ``InferenceRequest/batchKey``) unless there is just one.
    public static func writeInfer(
        batchID: UInt64, requests: [InferenceRequest], into buffer: inout ByteBuffer
    ) throws {
        guard let first = requests.first else { throw WorkerProtocolError.malformed("INFER needs at least one item") }
        var capacity = 16 + 4 * requests.count
        for request in requests { capacity += request.byteCount + request.inputs.count * 64 }
        buffer.reserveCapacity(minimumWritableBytes: capacity)
        try buffer.writeWorkerFrame(type: .infer) { buffer in
            buffer.writeInteger(batchID, endianness: .little)
            buffer.writeInteger(UInt32(requests.count), endianness: .little)
            var totalRows = 0
            for request in requests {
                let rows = Self.rows(of: request)
                totalRows += rows
                buffer.writeInteger(UInt32(truncatingIfNeeded: rows), endianness: .little)
            }
            buffer.writeInteger(UInt16(first.inputs.count), endianness: .little)
            for (index, input) in first.inputs.enumerated() {
                var shape = input.shape
                if requests.count > 1 { shape[0] = totalRows }
                var length = 0
                for request in requests { length += request.inputs[index].data.readableBytes }
                try writeTensorHeader(name: input.name, datatype: input.datatype, shape: shape, dataLength: length, into: &buffer)
                for request in requests { buffer.writeImmutableBuffer(request.inputs[index].data) }
            }
            buffer.writeInteger(UInt16(first.outputs.count), endianness: .little)
            for output in first.outputs {
                try writeShortString(output, field: "output name", into: &buffer)
            }
        }
    }

    /// Decodes an INFER payload (used by tests and tools that play the worker's part).
    public static func readInfer(
        _ payload: ByteBuffer
    ) throws -> (batchID: UInt64, rows: [Int], inputs: [Tensor], outputs: [String]) {
        var payload = payload
        guard let batchID = payload.readInteger(endianness: .little, as: UInt64.self),
            let count = payload.readInteger(endianness: .little, as: UInt32.self),
            Int(count) * 4 <= payload.readableBytes
        else { throw WorkerProtocolError.malformed("INFER header is truncated") }
        let rows = (0..<Int(count)).map { _ in Int(payload.readInteger(endianness: .little, as: UInt32.self)!) }
        let inputs = try readTensors(&payload, what: "INFER input")
        guard let outputCount = payload.readInteger(endianness: .little, as: UInt16.self) else {
            throw WorkerProtocolError.malformed("INFER output list is truncated")
        }
        let outputs = try (0..<Int(outputCount)).map { index in try readShortString(&payload, item: index) }
        guard payload.readableBytes == 0 else {
            throw WorkerProtocolError.malformed("INFER has \(payload.readableBytes) trailing bytes")
        }
        return (batchID, rows, inputs, outputs)
    }

    /// Appends an INFER_RESULT frame in mode 0: the outputs of the whole batch (used by tests).
    public static func writeInferResult(batchID: UInt64, batchOutputs: [Tensor], into buffer: inout ByteBuffer) throws {
        try buffer.writeWorkerFrame(type: .inferResult) { buffer in
            buffer.writeInteger(batchID, endianness: .little)
            buffer.writeInteger(UInt8(0))
            try writeTensors(batchOutputs, into: &buffer)
        }
    }

    /// Appends an INFER_RESULT frame in mode 1: one result per item (used by tests).
    public static func writeInferResult(
        _ result: WorkerBatchResult<InferenceResponse>, into buffer: inout ByteBuffer
    ) throws {
        try buffer.writeWorkerFrame(type: .inferResult) { buffer in
            buffer.writeInteger(result.batchID, endianness: .little)
            buffer.writeInteger(UInt8(1))
            buffer.writeInteger(UInt32(result.items.count), endianness: .little)
            for item in result.items {
                switch item {
                case .success(let response):
                    buffer.writeInteger(UInt8(0))
                    try writeTensors(response.outputs, into: &buffer)
                case .badInput(let message), .modelError(let message):
                    if case .badInput = item { buffer.writeInteger(UInt8(1)) } else { buffer.writeInteger(UInt8(2)) }
                    buffer.writeInteger(UInt32(message.utf8.count), endianness: .little)
                    buffer.writeString(message)
                }
            }
        }
    }

    /// Decodes an INFER_RESULT payload into one result per item of the batch whose items had `rows` rows.
    ///
    /// Batch outputs (mode 0) are split along their first dimension by `rows`; the pieces are views into
    /// `payload`, not copies. An output that does not split (its first dimension is not the batch's rows) fails
    /// every item as a model error, since the model, not the protocol, is at fault.
    public static func readInferResult(
        _ payload: ByteBuffer, rows: [Int]
    ) throws -> WorkerBatchResult<InferenceResponse> {
        var payload = payload
        guard let batchID = payload.readInteger(endianness: .little, as: UInt64.self),
            let mode = payload.readInteger(as: UInt8.self)
        else { throw WorkerProtocolError.malformed("INFER_RESULT header is truncated") }
        var items: [WorkerItemResult<InferenceResponse>]
        switch mode {
        case 0:
            let outputs = try readTensors(&payload, what: "INFER_RESULT output")
            items = split(outputs, rows: rows)
        case 1:
            guard let count = payload.readInteger(endianness: .little, as: UInt32.self) else {
                throw WorkerProtocolError.malformed("INFER_RESULT item count is truncated")
            }
            items = []
            items.reserveCapacity(Int(min(count, 4096)))
            for index in 0..<Int(count) {
                guard let status = payload.readInteger(as: UInt8.self) else {
                    throw WorkerProtocolError.malformed("INFER_RESULT item \(index) is truncated")
                }
                switch status {
                case 0:
                    items.append(.success(InferenceResponse(outputs: try readTensors(&payload, what: "INFER_RESULT output"))))
                case 1, 2:
                    let message = String(buffer: try readLongBytes(&payload, item: index))
                    items.append(status == 1 ? .badInput(message: message) : .modelError(message: message))
                default:
                    throw WorkerProtocolError.malformed("INFER_RESULT item \(index) has unknown status \(status)")
                }
            }
        default:
            throw WorkerProtocolError.malformed("INFER_RESULT has unknown mode \(mode)")
        }
        guard payload.readableBytes == 0 else {
            throw WorkerProtocolError.malformed("INFER_RESULT has \(payload.readableBytes) trailing bytes")
        }
        return WorkerBatchResult(batchID: batchID, items: items)
    }

    // MARK: Tensors on the wire

    private static func writeTensorHeader(
        name: String, datatype: TensorDatatype, shape: [Int], dataLength: Int, into buffer: inout ByteBuffer
    ) throws {
        guard shape.count <= maxTensorRank else {
            throw WorkerProtocolError.malformed("tensor \(name) has rank \(shape.count), above \(maxTensorRank)")
        }
        try writeShortString(name, field: "tensor name", into: &buffer)
        try writeShortString(datatype.rawValue, field: "datatype", into: &buffer)
        buffer.writeInteger(UInt8(shape.count))
        for dimension in shape { buffer.writeInteger(Int64(dimension), endianness: .little) }
        buffer.writeInteger(UInt64(dataLength), endianness: .little)
    }

    private static func writeTensors(_ tensors: [Tensor], into buffer: inout ByteBuffer) throws {
        buffer.writeInteger(UInt16(tensors.count), endianness: .little)
        for tensor in tensors {
            try writeTensorHeader(
                name: tensor.name, datatype: tensor.datatype, shape: tensor.shape, dataLength: tensor.data.readableBytes,
                into: &buffer)
            buffer.writeImmutableBuffer(tensor.data)
        }
    }

    /// Reads a `u16` count and that many tensors, each checked against its shape.
    private static func readTensors(_ payload: inout ByteBuffer, what: String) throws -> [Tensor] {
        guard let count = payload.readInteger(endianness: .little, as: UInt16.self) else {
            throw WorkerProtocolError.malformed("\(what) count is truncated")
        }
        var tensors: [Tensor] = []
        tensors.reserveCapacity(Int(count))
        for index in 0..<Int(count) {
            let name = try readShortString(&payload, item: index)
            let rawType = try readShortString(&payload, item: index)
            guard let datatype = TensorDatatype(rawValue: rawType) else {
                throw WorkerProtocolError.malformed("\(what) \(name) has unknown datatype \(rawType)")
            }
            guard let rank = payload.readInteger(as: UInt8.self), Int(rank) <= maxTensorRank,
                payload.readableBytes >= Int(rank) * 8 + 8
            else { throw WorkerProtocolError.malformed("\(what) \(name) has a truncated or oversized shape") }
            let shape = (0..<Int(rank)).map { _ in Int(payload.readInteger(endianness: .little, as: Int64.self)!) }
            let length = payload.readInteger(endianness: .little, as: UInt64.self)!
            guard length <= UInt64(payload.readableBytes), let data = payload.readSlice(length: Int(length)) else {
                throw WorkerProtocolError.malformed("\(what) \(name) data is truncated")
            }
            let tensor = Tensor(name: name, datatype: datatype, shape: shape, data: data)
            do {
                try tensor.validate()
            } catch {
                throw WorkerProtocolError.malformed("\(what) \(name): \(error.message)")
            }
            tensors.append(tensor)
        }
        return tensors
    }

    /// Splits batch outputs along their first dimension into one response per item.
    private static func split(_ outputs: [Tensor], rows: [Int]) -> [WorkerItemResult<InferenceResponse>] {
        if rows.count == 1 { return [.success(InferenceResponse(outputs: outputs))] }
        let total = rows.reduce(0, +)
        var pieces = Array(repeating: [Tensor](), count: rows.count)
        for output in outputs {
            guard output.shape.first == total else {
                let message =
                    "The model returned output \"\(output.name)\" with shape \(output.shape) for a batch of \(total) rows; its first dimension must be the batch's."
                return Array(repeating: .modelError(message: message), count: rows.count)
            }
            let rowElements = output.shape.dropFirst().reduce(1, *)
            var data = output.data
            for (index, itemRows) in rows.enumerated() {
                let slice: ByteBuffer
                if let size = output.datatype.elementSize {
                    slice = data.readSlice(length: itemRows * rowElements * size)!
                } else {
                    slice = readBytesElements(&data, count: itemRows * rowElements)
                }
                var shape = output.shape
                shape[0] = itemRows
                pieces[index].append(Tensor(name: output.name, datatype: output.datatype, shape: shape, data: slice))
            }
        }
        return pieces.map { .success(InferenceResponse(outputs: $0)) }
    }

    /// Reads `count` length-prefixed BYTES elements (already validated) as one slice.
    private static func readBytesElements(_ data: inout ByteBuffer, count: Int) -> ByteBuffer {
        var cursor = data
        for _ in 0..<count {
            let length = cursor.readInteger(endianness: .little, as: UInt32.self)!
            cursor.moveReaderIndex(forwardBy: Int(length))
        }
        return data.readSlice(length: cursor.readerIndex - data.readerIndex)!
    }
}
