import NIOCore
import ServalCore
import ServalWorkerIPC
import Testing

/// An FP32 tensor of `rows` × `columns` whose elements count up from `start`.
func fp32(_ name: String, rows: Int, columns: Int, start: Float = 0) -> Tensor {
    var data = ByteBuffer()
    for index in 0..<(rows * columns) { data.writeInteger((start + Float(index)).bitPattern, endianness: .little) }
    return Tensor(name: name, datatype: .fp32, shape: [rows, columns], data: data)
}

/// A BYTES tensor of one column holding `strings`.
func bytesTensor(_ name: String, _ strings: [String]) -> Tensor {
    var data = ByteBuffer()
    for string in strings {
        data.writeInteger(UInt32(string.utf8.count), endianness: .little)
        data.writeString(string)
    }
    return Tensor(name: name, datatype: .bytes, shape: [strings.count, 1], data: data)
}

/// The payload of the first frame in `buffer`.
func payload(of buffer: ByteBuffer) throws -> WorkerFrame {
    var buffer = buffer
    var decoder = WorkerFrameDecoder()
    return try #require(try decoder.decode(buffer: &buffer))
}

@Suite("Worker protocol: INFER and INFER_RESULT")
struct TensorMessagesTests {
    @Test("INFER concatenates the items' inputs along the first dimension")
    func inferConcatenates() throws {
        let requests = [
            InferenceRequest(inputs: [fp32("x", rows: 2, columns: 3), bytesTensor("tag", ["a", "bc"])], outputs: ["predict"]),
            InferenceRequest(inputs: [fp32("x", rows: 1, columns: 3, start: 100), bytesTensor("tag", ["def"])], outputs: ["predict"]),
        ]
        var buffer = ByteBuffer()
        try WorkerMessages.writeInfer(batchID: 9, requests: requests, into: &buffer)
        let frame = try payload(of: buffer)
        #expect(frame.type == .infer)
        let decoded = try WorkerMessages.readInfer(frame.payload)
        #expect(decoded.batchID == 9)
        #expect(decoded.rows == [2, 1])
        #expect(decoded.outputs == ["predict"])
        #expect(decoded.inputs.map(\.name) == ["x", "tag"])
        #expect(decoded.inputs[0].shape == [3, 3])
        var joined = requests[0].inputs[0].data
        joined.writeImmutableBuffer(requests[1].inputs[0].data)
        #expect(decoded.inputs[0].data == joined)
        #expect(decoded.inputs[1].shape == [3, 1])
        #expect(decoded.inputs[1].data.readableBytes == 4 * 3 + 6)
    }

    @Test("a single item keeps its own shape, even a scalar")
    func singleItemKeepsShape() throws {
        var scalar = ByteBuffer()
        scalar.writeInteger(Int64(42), endianness: .little)
        let request = InferenceRequest(inputs: [Tensor(name: "n", datatype: .int64, shape: [], data: scalar)])
        var buffer = ByteBuffer()
        try WorkerMessages.writeInfer(batchID: 1, requests: [request], into: &buffer)
        let decoded = try WorkerMessages.readInfer(try payload(of: buffer).payload)
        #expect(decoded.rows == [0])
        #expect(decoded.inputs == request.inputs)
        #expect(decoded.outputs.isEmpty)
    }

    @Test("batch outputs (mode 0) split back by rows, fixed-size and BYTES alike, as views")
    func batchOutputsSplit() throws {
        let outputs = [fp32("proba", rows: 4, columns: 2), bytesTensor("label", ["x", "yy", "", "zzz"])]
        var buffer = ByteBuffer()
        try WorkerMessages.writeInferResult(batchID: 3, batchOutputs: outputs, into: &buffer)
        let frame = try payload(of: buffer)
        let result = try WorkerMessages.readInferResult(frame.payload, rows: [1, 3])
        #expect(result.batchID == 3)
        #expect(result.items.count == 2)
        guard case .success(let first) = result.items[0], case .success(let second) = result.items[1] else {
            Issue.record("expected two successes, got \(result.items)")
            return
        }
        #expect(first.outputs[0] == fp32("proba", rows: 1, columns: 2))
        #expect(second.outputs[0] == fp32("proba", rows: 3, columns: 2, start: 2))
        #expect(first.outputs[1] == bytesTensor("label", ["x"]))
        #expect(second.outputs[1] == bytesTensor("label", ["yy", "", "zzz"]))
    }

    @Test("a batch output whose first dimension is not the batch's fails every item as a model error")
    func unsplittableOutput() throws {
        var buffer = ByteBuffer()
        try WorkerMessages.writeInferResult(batchID: 3, batchOutputs: [fp32("p", rows: 5, columns: 1)], into: &buffer)
        let result = try WorkerMessages.readInferResult(try payload(of: buffer).payload, rows: [2, 2])
        #expect(result.items.count == 2)
        for item in result.items {
            guard case .modelError(let message) = item else {
                Issue.record("expected a model error, got \(item)")
                continue
            }
            #expect(message.contains("\"p\"") && message.contains("4 rows"))
        }
    }

    @Test("per-item results (mode 1) round-trip")
    func perItemRoundTrip() throws {
        let result = WorkerBatchResult<InferenceResponse>(
            batchID: 77,
            items: [
                .success(InferenceResponse(outputs: [fp32("p", rows: 1, columns: 2)])),
                .badInput(message: "input-0 has 3 features per row; the model expects 4"),
                .modelError(message: "ValueError: boom"),
            ])
        var buffer = ByteBuffer()
        try WorkerMessages.writeInferResult(result, into: &buffer)
        #expect(try WorkerMessages.readInferResult(try payload(of: buffer).payload, rows: [1, 1, 1]) == result)
    }

    @Test("every truncation of an INFER_RESULT throws a protocol error, never crashes")
    func truncatedResults() throws {
        var buffer = ByteBuffer()
        try WorkerMessages.writeInferResult(
            batchID: 1, batchOutputs: [fp32("p", rows: 2, columns: 2), bytesTensor("l", ["ab", "c"])], into: &buffer)
        let full = try payload(of: buffer).payload
        for length in 0..<full.readableBytes {
            #expect(throws: WorkerProtocolError.self) {
                try WorkerMessages.readInferResult(full.getSlice(at: full.readerIndex, length: length)!, rows: [1, 1])
            }
        }
    }

    @Test("a tensor whose data does not match its shape is malformed")
    func dataShapeMismatch() throws {
        var bad = fp32("p", rows: 2, columns: 2)
        bad.shape = [2, 3]
        var buffer = ByteBuffer()
        try WorkerMessages.writeInferResult(batchID: 1, batchOutputs: [bad], into: &buffer)
        #expect(throws: WorkerProtocolError.self) {
            try WorkerMessages.readInferResult(try payload(of: buffer).payload, rows: [2])
        }
    }
}
