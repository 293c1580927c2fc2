import NIOCore
import ServalCore
import ServalOIP
import Testing

@Suite("OIP infer requests: JSON")
struct RequestDecodingTests {
    @Test(
        "every datatype decodes to little-endian elements",
        arguments: [
            ("BOOL", "[true, false, true]", [UInt8]([1, 0, 1])),
            ("UINT8", "[0, 7, 255]", littleEndianBytes([UInt8(0), 7, 255])),
            ("UINT16", "[0, 65535, 300]", littleEndianBytes([UInt16(0), 65535, 300])),
            ("UINT32", "[0, 4294967295, 7]", littleEndianBytes([UInt32(0), 4_294_967_295, 7])),
            ("UINT64", "[0, 18446744073709551615, 9]", littleEndianBytes([UInt64(0), .max, 9])),
            ("INT8", "[-128, 127, -0]", littleEndianBytes([Int8(-128), 127, 0])),
            ("INT16", "[-32768, 32767, 5]", littleEndianBytes([Int16(-32768), 32767, 5])),
            ("INT32", "[-2147483648, 2147483647, 0]", littleEndianBytes([Int32.min, .max, 0])),
            ("INT64", "[-9223372036854775808, 9223372036854775807, -1]", littleEndianBytes([Int64.min, .max, -1])),
            ("FP16", "[1, -2.5, 65504]", littleEndianBytes([UInt16(0x3C00), 0xC100, 0x7BFF])),
            ("BF16", "[1, -2.5, 0.5]", littleEndianBytes([UInt16(0x3F80), 0xC020, 0x3F00])),
            (
                "FP32", "[1.5, -0.1, 3]",
                littleEndianBytes([Float(1.5).bitPattern, Float(-0.1).bitPattern, Float(3).bitPattern])
            ),
            (
                "FP64", "[0.1, -1e300, 5]",
                littleEndianBytes([(0.1).bitPattern, (-1e300).bitPattern, Double(5).bitPattern])
            ),
            (
                "BYTES", #"["a", "", "h\u00e9llo", "q\"\\\/\b\f\n\r\t\ud83d\ude00"]"#,
                Array(
                    bytesData([Array("a".utf8), [], Array("héllo".utf8), Array("q\"\\/\u{8}\u{C}\n\r\t😀".utf8)])
                        .readableBytesView)
            ),
        ])
    func everyDatatype(datatype: String, data: String, expected: [UInt8]) throws {
        let count = datatype == "BYTES" ? 4 : 3
        let request = try decode(oneInput(datatype, shape: [count], data: data))
        let input = try #require(request.request.inputs.first)
        #expect(input.datatype.rawValue == datatype)
        #expect(input.shape == [count])
        #expect(Array(input.data.readableBytesView) == expected)
    }

    @Test(
        "integers out of their type's range are rejected, naming input, element and range",
        arguments: [
            ("UINT8", "256", "0 to 255"), ("UINT8", "-1", "0 to 255"), ("INT8", "128", "-128 to 127"),
            ("INT8", "-129", "-128 to 127"), ("UINT16", "65536", "0 to 65535"), ("INT16", "-32769", "-32768 to 32767"),
            ("UINT32", "4294967296", "0 to 4294967295"), ("INT32", "2147483648", "-2147483648 to 2147483647"),
            ("UINT64", "18446744073709551616", "0 to 18446744073709551615"),
            ("INT64", "9223372036854775808", "to 9223372036854775807"),
            ("INT64", "-9223372036854775809", "-9223372036854775808 to"),
            ("UINT64", "123456789012345678901234567890", "0 to"),
        ])
    func integerRange(datatype: String, value: String, range: String) {
        expectRejected(
            oneInput(datatype, shape: [2], data: "[1, \(value)]", name: "pixels"), "Input \"pixels\"", "element 1",
            value,
            "out of range for \(datatype)", range)
    }

    @Test(
        "elements of the wrong kind are rejected with what the datatype takes",
        arguments: [
            ("INT32", "1.5", "must be integers"), ("INT32", "1e3", "must be integers"),
            ("UINT8", "NaN", "must be integers"),
            ("INT64", "\"7\"", "must be integers"), ("BOOL", "1", "must be true or false"),
            ("BOOL", "\"true\"", "must be true or false"), ("FP32", "\"1.0\"", "must be numbers"),
            ("FP64", "true", "must be numbers"), ("FP16", "null", "must be numbers"), ("BYTES", "1", "must be strings"),
            ("BYTES", "false", "must be strings"), ("FP32", "{}", "must be numbers"),
        ])
    func wrongKind(datatype: String, value: String, problem: String) {
        expectRejected(
            oneInput(datatype, shape: [2], data: "[\(["BYTES": "\"a\"", "BOOL": "true"][datatype] ?? "0"), \(value)]"),
            "element 1", problem)
    }

    @Test(
        "nested data equals flat data, row-major",
        arguments: [
            ("INT32", [2, 3], "[[1, 2, 3], [4, 5, 6]]", "[1, 2, 3, 4, 5, 6]"),
            ("FP32", [2, 2, 1], "[[[1.5], [2]], [[3], [4]]]", "[1.5, 2, 3, 4]"),
            ("BYTES", [2, 1], #"[["a"], ["bc"]]"#, #"["a", "bc"]"#),
            ("BOOL", [1, 1, 1, 2], "[[[[true, false]]]]", "[true, false]"),
            ("FP64", [0, 3], "[]", "[[], []]"),
        ])
    func nestedEqualsFlat(datatype: String, shape: [Int], nested: String, flat: String) throws {
        let a = try decode(oneInput(datatype, shape: shape, data: nested)).request.inputs[0]
        let b = try decode(oneInput(datatype, shape: shape, data: flat)).request.inputs[0]
        #expect(a == b)
    }

    @Test("an input's keys may come in any order, data before datatype and shape included")
    func keysInAnyOrder() throws {
        let members = [
            #""name":"x""#, #""shape":[2,2]"#, #""datatype":"INT16""#, #""data":[[1,-2],[3,4]]"#,
            #""parameters":{"a":1}"#,
        ]
        let reference = try decode("{\"inputs\":[{\(members.joined(separator: ","))}]}").request.inputs[0]
        #expect(words(reference.data, as: Int16.self) == [1, -2, 3, 4])
        var permutations: [[String]] = [[]]
        for member in members {
            permutations = permutations.flatMap { permutation in
                (0...permutation.count).map { index in
                    var next = permutation
                    next.insert(member, at: index)
                    return next
                }
            }
        }
        #expect(permutations.count == 120)
        for order in permutations {
            let json = "{\"id\":\"r\",\"inputs\":[{\(order.joined(separator: ","))}]}"
            #expect(try decode(json).request.inputs[0] == reference, "\(json)")
        }
        // The top level too: inputs after outputs and parameters.
        let late = try decode(
            #"{"outputs":[{"name":"y"}],"parameters":{"binary_data_output":true},"id":"r","inputs":[{"datatype":"FP32","data":[1],"name":"x","shape":[1]}]}"#
        )
        #expect(late.request.outputs == ["y"])
        #expect(late.outputEncoding.isBinary("y"))
        #expect(late.request.id == "r")
    }

    @Test("unknown keys are skipped at every level, whatever they hold")
    func unknownKeys() throws {
        let json = #"""
            {"model_name": "m", "extra": {"deep": [1, {"a": null, "b": [true, false, "s\"]"]}], "n": -1.5e3},
             "parameters": {"content_type": "np", "sequence_id": 7, "binary_data_output": false, "x": [NaN]},
             "inputs": [{"name": "x", "future": [[["nested"]]], "shape": [1, 2], "datatype": "UINT8",
                         "parameters": {"content_type": "np", "classification": {"k": 3}}, "data": [1, 2], "z": null}],
             "outputs": [{"name": "y", "parameters": {"classification": 3, "binary_data": true}, "foo": [1]},
                         {"name": "z", "bar": {}}],
             "trailing": "ok"}
            """#
        let request = try decode(json)
        #expect(request.request.inputs.count == 1)
        #expect(Array(request.request.inputs[0].data.readableBytesView) == [1, 2])
        #expect(request.request.outputs == ["y", "z"])
        #expect(request.outputEncoding == OIPOutputEncoding(binaryByDefault: false, binaryByOutput: ["y": true]))
    }

    @Test("id and requested outputs reach the request; binary_data overrides binary_data_output")
    func idAndOutputs() throws {
        let json = #"""
            {"id": "req-\u00e9\"1\"", "parameters": {"binary_data_output": true},
             "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],
             "outputs": [{"name": "probabilities"}, {"name": "label", "parameters": {"binary_data": false}}]}
            """#
        let request = try decode(json)
        #expect(request.request.id == "req-é\"1\"")
        #expect(request.request.outputs == ["probabilities", "label"])
        #expect(request.outputEncoding.isBinary("probabilities"))
        #expect(!request.outputEncoding.isBinary("label"))
        #expect(request.outputEncoding.isBinary("anything else"))
        let plain = try decode(oneInput("FP32", shape: [1], data: "[1]"))
        #expect(plain.request.id == "")
        #expect(plain.request.outputs == [])
        #expect(plain.outputEncoding == .json)
    }

    @Test(
        "scalars and empty tensors",
        arguments: [([Int](), "[5]", 1), ([0], "[]", 0), ([2, 0], "[[], []]", 0), ([1, 1], "[[7]]", 1)])
    func scalarsAndEmpty(shape: [Int], data: String, count: Int) throws {
        let input = try decode(oneInput("INT64", shape: shape, data: data)).request.inputs[0]
        #expect(input.shape == shape)
        #expect(input.data.readableBytes == 8 * count)
    }

    @Test("whitespace may appear between any tokens")
    func whitespace() throws {
        let json =
            "\r\n\t {\n \"inputs\" :\t[ {\"name\" : \"x\" , \"shape\" : [ 2 ] ,\r\n \"datatype\" : \"FP32\" , \"data\" : [ 1.5 ,\n -2 ] } ] \n}\n\t "
        #expect(
            words(try decode(json).request.inputs[0].data, as: UInt32.self) == [
                Float(1.5).bitPattern, Float(-2).bitPattern,
            ])
    }

    @Test(
        "malformed requests are rejected with what is wrong",
        arguments: [
            (#"{}"#, ["no \"inputs\""]),
            (#"{"inputs": []}"#, ["\"inputs\" is empty"]),
            (#"{"inputs": {}}"#, ["\"inputs\" must be a JSON array", "an object"]),
            (#"[1, 2]"#, ["must be a JSON object", "an array"]),
            (#"{"inputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]}"#, ["inputs[0] has no \"name\""]),
            (#"{"inputs": [{"name": "x", "datatype": "FP32", "data": [1]}]}"#, ["Input \"x\" has no \"shape\""]),
            (
                #"{"inputs": [{"name": "x", "shape": [1], "data": [1]}]}"#,
                ["Input \"x\" has no \"datatype\"", "FP32", "BYTES"]
            ),
            (
                #"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}"#,
                ["Input \"x\" has no \"data\"", "binary_data_size"]
            ),
            (
                #"{"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT32", "data": [1]}]}"#,
                ["\"FLOAT32\"", "FP32, FP64"]
            ),
            (
                #"{"inputs": [{"name": "x", "shape": [-1, 2], "datatype": "FP32", "data": [1, 2]}]}"#,
                ["Input \"x\"", "dimension", "-1"]
            ),
            (#"{"inputs": [{"name": "x", "shape": [1.5], "datatype": "FP32", "data": [1]}]}"#, ["dimension", "1.5"]),
            (
                #"{"inputs": [{"name": "x", "shape": "2", "datatype": "FP32", "data": [1]}]}"#,
                ["\"shape\" must be a JSON array"]
            ),
            (
                #"{"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5]}]}"#,
                ["shape [2, 3]", "6 elements", "has 5"]
            ),
            (
                #"{"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1, 2, 3]}]}"#,
                ["holds 2 elements", "has 3"]
            ),
            (
                #"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": 1}]}"#,
                ["\"data\" must be an array of FP32"]
            ),
            (
                #"{"inputs": [{"name": 5, "shape": [1], "datatype": "FP32", "data": [1]}]}"#,
                ["\"name\" must be a string"]
            ),
            (
                #"{"inputs": [{"name": "x", "shape": [1], "datatype": 1, "data": [1]}]}"#,
                ["\"datatype\" must be a string"]
            ),
            (
                #"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}, {"name": "x", "shape": [1], "datatype": "FP32", "data": [2]}]}"#,
                ["Input \"x\" appears more than once"]
            ),
            (
                #"{"inputs": [{"name": "x", "name": "y", "shape": [1], "datatype": "FP32", "data": [1]}]}"#,
                ["\"name\" twice"]
            ),
            (#"{"inputs": [], "inputs": []}"#, ["\"inputs\" twice"]),
            (#"{"id": 7, "inputs": []}"#, ["\"id\" must be a string"]),
            (
                #"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}], "outputs": [{"name": "y"}, {"name": "y"}]}"#,
                ["Output \"y\" is requested more than once"]
            ),
            (
                #"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}], "outputs": [{}]}"#,
                ["outputs[0] has no \"name\""]
            ),
            (
                #"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}], "outputs": [{"name": "y", "parameters": {"binary_data": 1}}]}"#,
                ["Output \"y\": parameters.binary_data must be true or false"]
            ),
            (
                #"{"parameters": {"binary_data_output": "yes"}, "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}"#,
                ["binary_data_output must be true or false"]
            ),
            (
                #"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": 4}}]}"#,
                ["Input \"x\" sets parameters.binary_data_size", "Inference-Header-Content-Length"]
            ),
            (
                #"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": -4}}]}"#,
                ["binary_data_size must be a non-negative integer"]
            ),
            (
                #"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]} {}"#,
                ["continues after its JSON", "Inference-Header-Content-Length"]
            ),
            (
                #"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1,]}]}"#,
                ["malformed", "expected a value, found ']'"]
            ),
            (
                #"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [01]}]}"#,
                ["malformed", "expected ',' or ']'"]
            ),
            (#"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [.5]}]}"#, ["malformed"]),
            (#"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.]}]}"#, ["digit after '.'"]),
            (
                #"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1e]}]}"#,
                ["digit in the exponent"]
            ),
            (#"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [+1]}]}"#, ["malformed"]),
            (#"{"inputs": [{"name": "x\q", "shape": [1], "datatype": "FP32", "data": [1]}]}"#, ["escape"]),
            (
                #"{"inputs": [{"name": "\ud800", "shape": [1], "datatype": "FP32", "data": [1]}]}"#,
                ["unpaired UTF-16 surrogate"]
            ),
            (
                #"{"inputs": [{"name": "\udc00x", "shape": [1], "datatype": "FP32", "data": [1]}]}"#,
                ["unpaired UTF-16 surrogate"]
            ),
            (
                "{\"inputs\": [{\"name\": \"a\tb\", \"shape\": [1], \"datatype\": \"FP32\", \"data\": [1]}]}",
                ["control character"]
            ),
            (
                #"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],}"#,
                ["expected a key in quotes"]
            ),
            (#"{"inputs" [1]}"#, ["expected ':'"]),
            (
                #"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [tru]}]}"#,
                ["element 0 is the boolean tru", "must be numbers"]
            ),
            ("", ["ends early"]),
        ])
    func malformed(json: String, fragments: [String]) {
        guard let error = decodeError(json) else { return }
        #expect(error.code == .validationError)
        for fragment in fragments {
            #expect(error.message.contains(fragment), "message \"\(error.message)\" lacks \"\(fragment)\"")
        }
    }

    @Test("strings must be UTF-8")
    func invalidUTF8() {
        for bad in [[UInt8]([0xC3]), [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xFF]] {
            var body = ByteBuffer(string: #"{"inputs": [{"name": "x"#)
            body.writeBytes(bad)
            body.writeString(#"", "shape": [1], "datatype": "FP32", "data": [1]}]}"#)
            #expect(throws: ServalError.self) { try OIPCodec.decodeInferRequest(body, headerLength: nil) }
        }
        #expect(throws: Never.self) { try decode(oneInput("BYTES", shape: [1], data: "[\"日本語 ✓ 😀\"]")) }
    }
}
