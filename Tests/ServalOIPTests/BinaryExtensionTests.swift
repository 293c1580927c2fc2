import NIOCore
import ServalCore
import ServalOIP
import Testing

@Suite("OIP binary tensor extension")
struct BinaryExtensionTests {
    /// A body mixing binary inputs (FP32, BYTES, BOOL) with a JSON one (INT64).
    static func mixedBody() -> (body: ByteBuffer, headerLength: Int, bytes: ByteBuffer) {
        let bytes = bytesData([Array("hello".utf8), [], [0xFF, 0x00]])
        let json = #"""
            {"id": "b1", "inputs": [
              {"name": "x", "shape": [2, 2], "datatype": "FP32", "parameters": {"binary_data_size": 16}},
              {"name": "n", "shape": [2], "datatype": "INT64", "data": [7, -7]},
              {"name": "s", "shape": [3], "datatype": "BYTES", "parameters": {"binary_data_size": \#(bytes.readableBytes)}},
              {"parameters": {"binary_data_size": 2}, "shape": [2], "name": "flags", "datatype": "BOOL"}],
             "outputs": [{"name": "y", "parameters": {"binary_data": true}}]}
            """#
        let (body, headerLength) = binaryBody(
            json,
            [littleEndianBytes([Float(1), 2, 3, 4].map(\.bitPattern)), Array(bytes.readableBytesView), [1, 0]])
        return (body, headerLength, bytes)
    }

    @Test("binary inputs take their bytes after the JSON, in input order, beside JSON inputs")
    func mixedInputs() throws {
        let (body, headerLength, bytes) = Self.mixedBody()
        let request = try OIPCodec.decodeInferRequest(body, headerLength: headerLength)
        let inputs = request.request.inputs
        #expect(inputs.map(\.name) == ["x", "n", "s", "flags"])
        #expect(words(inputs[0].data, as: UInt32.self) == [Float(1), 2, 3, 4].map(\.bitPattern))
        #expect(words(inputs[1].data, as: Int64.self) == [7, -7])
        #expect(inputs[2].data == bytes)
        #expect(Array(inputs[3].data.readableBytesView) == [1, 0])
        #expect(request.request.id == "b1")
        #expect(request.outputEncoding.isBinary("y"))
    }

    @Test("a header length covering the whole body means no binary data")
    func headerIsWholeBody() throws {
        let json = oneInput("INT8", shape: [2], data: "[1, -1]")
        let request = try OIPCodec.decodeInferRequest(ByteBuffer(string: json), headerLength: json.utf8.count)
        #expect(words(request.request.inputs[0].data, as: Int8.self) == [1, -1])
    }

    @Test(
        "bad header lengths and binary sizes are rejected",
        arguments: [
            (1_000, ["Inference-Header-Content-Length is 1000", "the body has only"]),
            (-1, ["Inference-Header-Content-Length is -1", "non-negative"]),
            (0, ["ends early"]),
            (40, ["ends early"]),
        ])
    func badHeaderLength(headerLength: Int, fragments: [String]) {
        let (body, _, _) = Self.mixedBody()
        do {
            _ = try OIPCodec.decodeInferRequest(body, headerLength: headerLength)
            Issue.record("decoded")
        } catch {
            #expect(error.code == .validationError)
            for fragment in fragments { #expect(error.message.contains(fragment), "\(error.message)") }
        }
    }

    @Test("a header length past the JSON takes binary bytes for JSON")
    func headerTooLong() {
        let (body, headerLength, _) = Self.mixedBody()
        #expect(throws: ServalError.self) { try OIPCodec.decodeInferRequest(body, headerLength: headerLength + 3) }
    }

    @Test("missing or extra binary bytes are rejected")
    func wrongBinaryLength() {
        let (body, headerLength, _) = Self.mixedBody()
        var short = body
        short.moveWriterIndex(to: body.writerIndex - 1)
        var long = body
        long.writeInteger(UInt8(0))
        for candidate in [short, long] {
            do {
                _ = try OIPCodec.decodeInferRequest(candidate, headerLength: headerLength)
                Issue.record("decoded")
            } catch {
                #expect(error.message.contains("binary_data_size add up to 37 bytes"), "\(error.message)")
            }
        }
    }

    @Test(
        "binary sizes must match the shape; BYTES binary data must hold the shape's elements",
        arguments: [
            (
                #"{"name": "x", "shape": [3], "datatype": "FP32", "parameters": {"binary_data_size": 8}}"#,
                [UInt8](repeating: 0, count: 8), "binary_data_size is 8"
            ),
            (
                #"{"name": "x", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 5}}"#,
                [1, 0, 0, 0, 65], "1 BYTES elements"
            ),
            (
                #"{"name": "x", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 5}}"#,
                [9, 0, 0, 0, 65], "truncated BYTES element"
            ),
            (
                #"{"name": "x", "shape": [1], "datatype": "FP32", "data": [1], "parameters": {"binary_data_size": 4}}"#,
                [0, 0, 0, 0], "both \"data\" and"
            ),
        ])
    func binaryShapeMismatch(input: String, binary: [UInt8], fragment: String) {
        let (body, headerLength) = binaryBody("{\"inputs\": [\(input)]}", [binary])
        do {
            _ = try OIPCodec.decodeInferRequest(body, headerLength: headerLength)
            Issue.record("decoded")
        } catch {
            #expect(error.code == .validationError)
            #expect(error.message.contains(fragment), "\(error.message)")
        }
    }

    @Test(
        "the header's value parses as a non-negative decimal",
        arguments: [
            ("12", 12 as Int?), ("0", 0), ("000123", 123),
        ])
    func headerLengthValues(value: String, expected: Int?) throws {
        #expect(try OIPCodec.parseHeaderLength(value) == expected)
    }

    @Test(
        "garbage header values are rejected",
        arguments: ["-1", "abc", "", "1e3", " 12", "12 ", "+5", "99999999999999999999", "0x10"])
    func headerLengthGarbage(value: String) throws {
        #expect(throws: ServalError.self) { try OIPCodec.parseHeaderLength(value) }
        #expect(try OIPCodec.parseHeaderLength(nil) == nil)
    }

    @Test("binary outputs: binary_data_size in the JSON, raw bytes after it in output order")
    func binaryOutputs() throws {
        let probabilities = tensor("probabilities", .fp32, [1, 2], [Float(0.25), 0.75].map(\.bitPattern))
        let label = Tensor(name: "label", datatype: .bytes, shape: [1], data: bytesData([Array("cat".utf8)]))
        let count = tensor("count", .int64, [1], [Int64(3)])
        let encoding = OIPOutputEncoding(binaryByDefault: true, binaryByOutput: ["count": false])
        let (json, binary, headerLength) = try encode([probabilities, count, label], encoding: encoding, id: "r")
        #expect(headerLength == json.utf8.count)
        #expect(
            json
                == #"{"model_name":"m","id":"r","outputs":[{"name":"probabilities","datatype":"FP32","shape":[1,2],"parameters":{"binary_data_size":8}},{"name":"count","datatype":"INT64","shape":[1],"data":[3]},{"name":"label","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":7}}]}"#
        )
        #expect(binary == Array(probabilities.data.readableBytesView) + Array(label.data.readableBytesView))
    }

    @Test("a binary output may hold bytes that are not UTF-8")
    func binaryBytesOutput() throws {
        let raw = Tensor(name: "raw", datatype: .bytes, shape: [1], data: bytesData([[0xFF, 0xFE]]))
        let (_, binary, headerLength) = try encode([raw], encoding: OIPOutputEncoding(binaryByOutput: ["raw": true]))
        #expect(headerLength != nil)
        #expect(binary == [2, 0, 0, 0, 0xFF, 0xFE])
    }
}
