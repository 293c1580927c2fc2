import NIOCore
import ServalCore
import Testing

/// An FP32 tensor of `shape` with the right number of zero bytes.
private func fp32(_ name: String, _ shape: [Int]) -> Tensor {
    let count = shape.reduce(1, *)
    return Tensor(name: name, datatype: .fp32, shape: shape, data: ByteBuffer(repeating: 0, count: count * 4))
}

private let tabular = ModelSignature(
    platform: "sklearn",
    inputs: [TensorMetadata(name: "input-0", datatype: .fp32, shape: [-1, 4])],
    outputs: [
        TensorMetadata(name: "predict", datatype: .int64, shape: [-1]),
        TensorMetadata(name: "predict_proba", datatype: .fp64, shape: [-1, 2]),
    ])

/// Runs the validation and returns the error's message, or `nil` when the request passed.
private func problem(_ request: InferenceRequest, _ signature: ModelSignature? = tabular) -> String? {
    do {
        try request.validate(against: signature)
        return nil
    } catch {
        #expect(error.code == .validationError)
        return error.message
    }
}

@Suite("InferenceRequest validation against a model's signature")
struct InferenceRequestValidationTests {
    @Test("a request that matches passes, with any numeric datatype")
    func matching() {
        #expect(problem(InferenceRequest(inputs: [fp32("input-0", [3, 4])], outputs: ["predict"])) == nil)
        var int64 = fp32("input-0", [2, 4])
        int64.datatype = .int64
        int64.data = ByteBuffer(repeating: 0, count: 2 * 4 * 8)
        #expect(problem(InferenceRequest(inputs: [int64])) == nil)
    }

    @Test("names, shapes, datatypes and outputs the model does not take are refused, naming what it takes")
    func mismatches() throws {
        #expect(try #require(problem(InferenceRequest(inputs: [fp32("x", [1, 4])]))).contains("its inputs are input-0"))
        #expect(try #require(problem(InferenceRequest(inputs: [fp32("input-0", [1, 3])]))).contains("[-1, 4]"))
        #expect(try #require(problem(InferenceRequest(inputs: [fp32("input-0", [4])]))).contains("shape [4]"))
        var bytes = fp32("input-0", [1, 1])
        bytes.datatype = .bytes
        bytes.data = ByteBuffer(bytes: [1, 0, 0, 0, 65])
        #expect(try #require(problem(InferenceRequest(inputs: [bytes]))).contains("BYTES"))
        let unknownOutput = InferenceRequest(inputs: [fp32("input-0", [1, 4])], outputs: ["proba"])
        #expect(try #require(problem(unknownOutput)).contains("no output \"proba\""))
    }

    @Test("a declared input missing from the request is refused")
    func missingInput() throws {
        let two = ModelSignature(
            platform: "python",
            inputs: [
                TensorMetadata(name: "a", datatype: .fp32, shape: [-1]),
                TensorMetadata(name: "b", datatype: .fp32, shape: [-1]),
            ],
            outputs: [])
        #expect(try #require(problem(InferenceRequest(inputs: [fp32("a", [2])]), two)).contains("lacks"))
    }

    @Test("without a signature only the tensors themselves are checked")
    func undeclared() throws {
        #expect(problem(InferenceRequest(inputs: [fp32("anything", [2, 2, 2])]), nil) == nil)
        #expect(problem(InferenceRequest(inputs: []), nil) != nil)
        let duplicate = InferenceRequest(inputs: [fp32("a", [1]), fp32("a", [1])])
        #expect(try #require(problem(duplicate, nil)).contains("more than once"))
        var short = fp32("a", [2, 2])
        short.data = ByteBuffer(repeating: 0, count: 15)
        #expect(try #require(problem(InferenceRequest(inputs: [short]), nil)).contains("15 bytes"))
        let overflow = Tensor(name: "a", datatype: .fp32, shape: [Int.max / 2, 4], data: ByteBuffer())
        #expect(try #require(problem(InferenceRequest(inputs: [overflow]), nil)).contains("overflows"))
    }

    @Test("the batch key groups requests by names, types, trailing dimensions and outputs; rows are the first dimension")
    func batchKeys() throws {
        let a = try #require(InferenceRequest(inputs: [fp32("x", [3, 4])]).batchKey)
        let b = try #require(InferenceRequest(inputs: [fp32("x", [5, 4])]).batchKey)
        #expect(a.key == b.key && a.rows == 3 && b.rows == 5)
        #expect(InferenceRequest(inputs: [fp32("x", [3, 5])]).batchKey?.key != a.key)
        #expect(InferenceRequest(inputs: [fp32("x", [3, 4])], outputs: ["p"]).batchKey?.key != a.key)
        #expect(InferenceRequest(inputs: [fp32("x", [])]).batchKey == nil)
        #expect(InferenceRequest(inputs: [fp32("x", [2, 4]), fp32("y", [3])]).batchKey == nil)
    }
}
