import NIOCore
import ServalCore
import ServalOIP
import ServalFuzzSupport
import Testing

@Suite("OIP requests: hostile input throws, never crashes")
struct HostileInputTests {
    @Test("deep nesting is refused, in data and in skipped values", arguments: [100, 10_000, 1_000_000])
    func deepNesting(depth: Int) {
        let open = String(repeating: "[", count: depth)
        let close = String(repeating: "]", count: depth)
        expectRejected(oneInput("FP32", shape: [1], data: open + "1" + close), "nests", "deep")
        expectRejected(#"{"junk": \#(open)\#(close), "inputs": []}"#, "nests")
        let objects = String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
        expectRejected(#"{"junk": \#(objects), "inputs": []}"#, "nests")
        expectRejected(open, "must be a JSON object")
        expectRejected(#"{"inputs": [{"parameters": {"k": \#(open)\#(close)}}]}"#, "nests")
    }

    @Test("nesting within the limit decodes")
    func nestingWithinLimit() throws {
        // The request object, "inputs" and the input object take three levels of the 64.
        let depth = 61
        let data = String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth)
        let input = try decode(oneInput("FP32", shape: [1], data: data)).request.inputs[0]
        #expect(input.data.readableBytes == 4)
        expectRejected(oneInput("FP32", shape: [1], data: "[" + data + "]"), "nests")
    }

    @Test(
        "shapes whose element count overflows, or that promise more than the data, are rejected",
        arguments: [
            ("[4294967296, 4294967296, 4]", "overflows"), ("[9223372036854775807, 2]", "overflows"),
            ("[1000000000000]", "1000000000000 elements"), ("[99999999999999999999]", "dimension"),
            ("[3037000500, 3037000500]", "overflows"),
        ])
    func hugeShapes(shape: String, fragment: String) {
        expectRejected(#"{"inputs": [{"name": "x", "shape": \#(shape), "datatype": "FP64", "data": [1]}]}"#, fragment)
        let (body, headerLength) = binaryBody(
            #"{"inputs": [{"name": "x", "shape": \#(shape), "datatype": "FP64", "parameters": {"binary_data_size": 8}}]}"#,
            [[0, 0, 0, 0, 0, 0, 0, 0]])
        #expect(throws: ServalError.self) { try OIPCodec.decodeInferRequest(body, headerLength: headerLength) }
    }

    @Test("binary sizes that overflow when added are rejected")
    func binarySizesOverflow() {
        func input(_ name: String) -> String {
            #"{"name": "\#(name)", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 9223372036854775807}}"#
        }
        let json = #"{"inputs": [\#(input("a")), \#(input("b"))]}"#
        let (body, headerLength) = binaryBody(json, [[1, 2, 3]])
        #expect(throws: ServalError.self) { try OIPCodec.decodeInferRequest(body, headerLength: headerLength) }
    }

    @Test("huge exponents saturate: tiny numbers are zero, big ones out of range")
    func hugeExponents() throws {
        let zeros = try decodeData("FP32", shape: [2], data: "[1e-99999999999999999999999, -0.0e99999999999]")
        #expect(zeros == [0, 0, 0, 0, 0, 0, 0, 0x80])
        expectRejected(oneInput("FP32", shape: [1], data: "[1e99999999999999999999999]"), "out of range for FP32")
        expectRejected(oneInput("FP64", shape: [1], data: "[-9e9999]"), "out of range for FP64")
    }

    @Test("every truncation of a valid body throws", arguments: 0..<5)
    func truncations(sample: Int) {
        let (body, headerLength) = sampleBodies()[sample]
        for length in 0..<body.readableBytes {
            let prefix = body.getSlice(at: body.readerIndex, length: length)!
            #expect(throws: ServalError.self, "prefix of \(length) bytes") {
                try OIPCodec.decodeInferRequest(prefix, headerLength: headerLength.map { min($0, length) })
            }
            if let headerLength {
                #expect(throws: ServalError.self) {
                    try OIPCodec.decodeInferRequest(prefix, headerLength: headerLength)
                }
            }
        }
    }

    @Test("random byte mutations of valid bodies decode or throw a ServalError")
    func mutations() {
        var random = SeededGenerator(seed: 7)
        let replacements = Array("[]{}\",:-.e0159tfnNI \\u".utf8) + [0x00, 0x80, 0xC3, 0xFF]
        var failures = 0
        for (body, headerLength) in sampleBodies() {
            let bytes = Array(body.readableBytesView)
            for _ in 0..<2_000 {
                var mutated = bytes
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    let index = Int.random(in: 0..<mutated.count, using: &random)
                    switch Int.random(in: 0..<3, using: &random) {
                    case 0: mutated[index] = replacements.randomElement(using: &random)!
                    case 1: mutated.remove(at: index)
                    default: mutated.insert(replacements.randomElement(using: &random)!, at: index)
                    }
                }
                do {
                    _ = try OIPCodec.decodeInferRequest(ByteBuffer(bytes: mutated), headerLength: headerLength)
                } catch {
                    failures += 1
                    #expect(error.code == .validationError)
                }
            }
        }
        #expect(failures > 5_000)
    }

    @Test("random garbage throws")
    func garbage() {
        var random = SeededGenerator(seed: 11)
        for _ in 0..<2_000 {
            let bytes = (0..<Int.random(in: 0..<64, using: &random)).map { _ in
                UInt8.random(in: 0...255, using: &random)
            }
            #expect(throws: ServalError.self) {
                try OIPCodec.decodeInferRequest(ByteBuffer(bytes: bytes), headerLength: nil)
            }
        }
    }

    @Test("a shape that claims billions of elements does not reserve memory for them")
    func hugeShapeSmallData() {
        // Decoding must not try to allocate 8 TB; it reads the one element and reports the mismatch.
        expectRejected(
            #"{"inputs": [{"name": "x", "shape": [1000000000000], "datatype": "FP64", "data": [1, 2, 3]}]}"#,
            "1000000000000 elements", "has 3")
    }
}
