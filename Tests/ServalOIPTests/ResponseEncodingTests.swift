import Foundation
import NIOCore
import ServalCore
import ServalOIP
import ServalFuzzSupport
import Testing

/// The text of the `data` array of the first output in a response.
func dataText(_ json: String) -> String {
    let start = json.range(of: "\"data\":[")!.upperBound
    let end = json[start...].range(of: "]}")!.lowerBound
    return String(json[start..<end])
}

@Suite("OIP infer responses")
struct ResponseEncodingTests {
    @Test("the response document, with model_version and id when given")
    func document() throws {
        let output = tensor("y", .int32, [2, 1], [Int32(1), -2])
        #expect(
            try encode([output], modelVersion: "v2", id: "r1").json
                == #"{"model_name":"m","model_version":"v2","id":"r1","outputs":[{"name":"y","datatype":"INT32","shape":[2,1],"data":[1,-2]}]}"#
        )
        #expect(
            try encode([output]).json
                == #"{"model_name":"m","outputs":[{"name":"y","datatype":"INT32","shape":[2,1],"data":[1,-2]}]}"#)
        #expect(try encode([output]).headerLength == nil)
        #expect(try encode([]).json == #"{"model_name":"m","outputs":[]}"#)
    }

    @Test(
        "every datatype's elements as JSON",
        arguments: [
            (tensor("o", .bool, [3], [UInt8(1), 0, 2]), "true,false,true"),
            (tensor("o", .uint8, [2], [UInt8(0), 255]), "0,255"),
            (tensor("o", .uint16, [2], [UInt16(0), 65535]), "0,65535"),
            (tensor("o", .uint32, [2], [UInt32(0), .max]), "0,4294967295"),
            (tensor("o", .uint64, [2], [UInt64(0), .max]), "0,18446744073709551615"),
            (tensor("o", .int8, [2], [Int8.min, .max]), "-128,127"),
            (tensor("o", .int16, [2], [Int16.min, .max]), "-32768,32767"),
            (tensor("o", .int32, [2], [Int32.min, .max]), "-2147483648,2147483647"),
            (tensor("o", .int64, [3], [Int64.min, .max, 0]), "-9223372036854775808,9223372036854775807,0"),
            (
                tensor("o", .fp16, [6], [UInt16(0x3C00), 0xC100, 0x7BFF, 0x0001, 0x7C00, 0x7E00]),
                "1.0,-2.5,65504.0,5.9604645e-08,Infinity,NaN"
            ),
            (tensor("o", .bf16, [4], [UInt16(0x3F80), 0xC020, 0xFF80, 0x3DCD]), "1.0,-2.5,-Infinity,0.100097656"),
            (
                tensor(
                    "o", .fp32, [6],
                    [Float(0.1), .leastNonzeroMagnitude, .greatestFiniteMagnitude, -0.0, 100, 1e20].map(\.bitPattern)),
                "0.1,1e-45,3.4028235e+38,-0.0,100.0,1e+20"
            ),
            (
                tensor(
                    "o", .fp64, [6],
                    [0.1, 1e300, .leastNonzeroMagnitude, .nan, -.infinity, 0.30000000000000004].map(\.bitPattern)),
                "0.1,1e+300,5e-324,NaN,-Infinity,0.30000000000000004"
            ),
            (
                Tensor(
                    name: "o", datatype: .bytes, shape: [4],
                    data: bytesData([Array("a".utf8), [], Array("é😀".utf8), Array("q\"\\\n\t\u{1}\u{1F}/".utf8)])),
                #""a","","é😀","q\"\\\n\t\u0001\u001f/""#
            ),
        ])
    func everyDatatype(output: Tensor, data: String) throws {
        let json = try encode([output]).json
        #expect(dataText(json) == data)
        #expect(json.contains("\"datatype\":\"\(output.datatype.rawValue)\""))
    }

    @Test("names, ids and strings are JSON-escaped, so any JSON parser reads them back")
    func escaping() throws {
        let name = "y \"quoted\"\n\\ \u{7} ünï"
        let output = Tensor(name: name, datatype: .bytes, shape: [1], data: bytesData([Array("\u{0}\r\u{2028}".utf8)]))
        let (json, _, _) = try encode([output], modelName: "m\"\\", modelVersion: "1\t", id: "id\u{1B}")
        let document = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        #expect(document["model_name"] as? String == "m\"\\")
        #expect(document["model_version"] as? String == "1\t")
        #expect(document["id"] as? String == "id\u{1B}")
        let outputs = document["outputs"] as! [[String: Any]]
        #expect(outputs[0]["name"] as? String == name)
        #expect(outputs[0]["data"] as? [String] == ["\u{0}\r\u{2028}"])
    }

    @Test(
        "a BYTES output that is not UTF-8 cannot be JSON: the error says to request binary data, the buffer is untouched"
    )
    func bytesNotUTF8() {
        let output = Tensor(
            name: "raw", datatype: .bytes, shape: [2], data: bytesData([Array("ok".utf8), [0xC3, 0x28]]))
        var buffer = ByteBuffer(string: "prefix")
        do {
            _ = try OIPCodec.encodeInferResponse(
                modelName: "m", modelVersion: "", id: "", outputs: [output], encoding: .json, into: &buffer)
            Issue.record("encoded")
        } catch {
            #expect(error.code == .validationError)
            #expect(error.message.contains("Output \"raw\" element 1"), "\(error.message)")
            #expect(error.message.contains("\"binary_data\": true"), "\(error.message)")
        }
        #expect(String(buffer: buffer) == "prefix")
    }

    @Test(
        "outputs whose data does not match their shape are the model's error",
        arguments: [
            tensor("y", .fp32, [3], [UInt32(1), 2]),
            tensor("y", .int64, [-1], [Int64(1)]),
            Tensor(name: "y", datatype: .bytes, shape: [2], data: bytesData([[1]])),
            Tensor(name: "y", datatype: .bytes, shape: [1], data: ByteBuffer(bytes: [9, 0, 0, 0, 1])),
        ])
    func inconsistentOutput(output: Tensor) {
        var buffer = ByteBuffer()
        #expect {
            _ = try OIPCodec.encodeInferResponse(
                modelName: "m", modelVersion: "", id: "", outputs: [output], encoding: .json, into: &buffer)
        } throws: { error in
            (error as? ServalError)?.code == .modelError
        }
        #expect(buffer.readableBytes == 0)
    }

    @Test(
        "floats written as JSON read back to the same bits, in every float format",
        arguments: [
            ("FP16", TensorDatatype.fp16, 2), ("BF16", .bf16, 2), ("FP32", .fp32, 4), ("FP64", .fp64, 8),
        ])
    func floatRoundTrip(name: String, datatype: TensorDatatype, size: Int) throws {
        var random = SeededGenerator(seed: UInt64(size) * 7 + UInt64(name.utf8.first!))
        let count = 20_000
        var data = ByteBuffer()
        for _ in 0..<count {
            data.writeBytes(withUnsafeBytes(of: random.next().littleEndian) { Array($0.prefix(size)) })
        }
        let output = Tensor(name: "y", datatype: datatype, shape: [count], data: data)
        let json = try encode([output]).json
        let back = try decode(oneInput(name, shape: [count], data: "[" + dataText(json) + "]")).request.inputs[0].data
        var original = data
        var decoded = back
        for _ in 0..<count {
            let a = original.readBytes(length: size)!
            let b = decoded.readBytes(length: size)!
            let isNaN: Bool =
                switch datatype {
                case .fp16: a[1] & 0x7C == 0x7C && (a[1] & 0x03 != 0 || a[0] != 0)
                case .bf16: a[1] & 0x7F == 0x7F && a[0] & 0x80 == 0x80 && a[0] & 0x7F != 0
                case .fp32:
                    Float(bitPattern: UInt32(littleEndian: a.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }))
                        .isNaN
                default:
                    Double(bitPattern: UInt64(littleEndian: a.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }))
                        .isNaN
                }
            if isNaN {
                #expect(b != [0, 0], "NaN came back as zero")
            } else {
                #expect(a == b)
            }
        }
    }

    @Test("a whole request's JSON decodes, and the response to it encodes, every datatype and back")
    func requestResponseRoundTrip() throws {
        let outputs: [Tensor] = [
            tensor("a", .bool, [2], [UInt8(1), 0]), tensor("b", .uint64, [1], [UInt64.max]),
            tensor("c", .int16, [2, 1], [Int16(-5), 5]), tensor("d", .fp16, [1], [UInt16(0x3555)]),
            tensor("e", .bf16, [1], [UInt16(0x4049)]),
            tensor("f", .fp32, [2], [Float(1) / 3, -Float.leastNormalMagnitude / 3].map(\.bitPattern)),
            tensor("g", .fp64, [1], [Double.pi.bitPattern]),
            Tensor(name: "h", datatype: .bytes, shape: [2], data: bytesData([Array("x\"y".utf8), Array("".utf8)])),
        ]
        let json = try encode(outputs).json
        // The response's outputs have exactly the shape of request inputs.
        let request = try decode(json.replacingOccurrences(of: "\"outputs\":", with: "\"inputs\":"))
        #expect(request.request.inputs == outputs)
    }
}
