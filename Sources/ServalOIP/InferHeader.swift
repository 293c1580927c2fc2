import NIOCore
import ServalCore

/// The JSON part of an infer request, parsed and checked: the inputs whose elements came as JSON are decoded, the
/// others wait for their binary data.
///
/// ``OIPCodec/decodeInferRequest(_:headerLength:)`` and ``OIPInferBodyDecoder`` share it, so both decode alike:
/// parse the header, check the declared binary sizes against the body, then attach the binary data.
struct InferHeader: Sendable {
    /// Where an input's elements come from.
    enum Payload: Sendable {
        /// Decoded from `data`.
        case json(ByteBuffer)
        /// `binary_data_size` bytes of the binary section.
        case binary(size: Int)
    }

    /// One input, as the header describes it.
    struct Input: Sendable {
        /// The input's name.
        var name: String
        /// Its element type.
        var datatype: TensorDatatype
        /// Its dimensions.
        var shape: [Int]
        /// Its elements, or how many bytes of binary data hold them.
        var payload: Payload
    }

    /// The request's `id`; empty when absent.
    var id: String
    /// The inputs, in request order.
    var inputs: [Input]
    /// The names of the requested outputs.
    var outputs: [String]
    /// How the client wants the outputs encoded.
    var encoding: OIPOutputEncoding
    /// The bytes of binary data the inputs declare, in total.
    var binaryByteCount: Int

    /// Parses the JSON header `json`. `hasBinarySection` says whether the request carries
    /// `Inference-Header-Content-Length`, that is, whether inputs may declare binary data.
    static func parse(_ json: ByteBuffer, hasBinarySection: Bool) throws(ServalError) -> InferHeader {
        try json.withUnsafeReadableBytes { (bytes) throws(ServalError) -> InferHeader in
            var parser = InferHeaderParser(scanner: JSONScanner(bytes))
            return try parser.parseRequest(hasBinarySection: hasBinarySection)
        }
    }

    /// The error when the binary section's size differs from what the inputs declare.
    static func binarySizeMismatch(declared: Int, available: Int) -> ServalError {
        ServalError(
            .validationError,
            "The body has \(available) bytes after the JSON header, but the inputs' parameters.binary_data_size add "
                + "up to \(declared) bytes; send exactly the declared bytes after the JSON, in input order.")
    }

    /// The request, with `binary` (all of the body after the JSON header) split among the binary inputs.
    func request(binary: ByteBuffer) throws(ServalError) -> OIPInferRequest {
        guard binary.readableBytes == binaryByteCount else {
            throw Self.binarySizeMismatch(declared: binaryByteCount, available: binary.readableBytes)
        }
        var rest = binary
        var tensors: [Tensor] = []
        tensors.reserveCapacity(inputs.count)
        for input in inputs {
            switch input.payload {
            case .json(let data):
                tensors.append(Tensor(name: input.name, datatype: input.datatype, shape: input.shape, data: data))
            case .binary(let size):
                guard let data = rest.readSlice(length: size) else {
                    throw Self.binarySizeMismatch(declared: binaryByteCount, available: binary.readableBytes)
                }
                let tensor = Tensor(name: input.name, datatype: input.datatype, shape: input.shape, data: data)
                try tensor.validate()
                tensors.append(tensor)
            }
        }
        return OIPInferRequest(
            request: InferenceRequest(id: id, inputs: tensors, outputs: outputs), outputEncoding: encoding)
    }
}

/// Reads the request object with a ``JSONScanner``.
private struct InferHeaderParser {
    var scanner: JSONScanner

    private static let datatypeList = TensorDatatype.allCases.map(\.rawValue).joined(separator: ", ")

    mutating func parseRequest(hasBinarySection: Bool) throws(ServalError) -> InferHeader {
        guard try scanner.peek(expecting: "a JSON object") == UInt8(ascii: "{") else {
            throw ServalError(
                .validationError,
                "The request body must be a JSON object with \"inputs\", not \(scanner.describeValue()).")
        }
        var id = ""
        var inputs: [InferHeader.Input]?
        var outputs: [String] = []
        var encoding = OIPOutputEncoding()
        var seen = SeenKeys()
        if try scanner.beginObject("The request") {
            repeat {
                let key = try scanner.readKey()
                if scanner.string(key, equals: "inputs") {
                    try seen.insert("inputs", at: 0, in: "The request")
                    inputs = try parseInputs()
                } else if scanner.string(key, equals: "id") {
                    try seen.insert("id", at: 1, in: "The request")
                    guard try scanner.peek(expecting: "the id") == UInt8(ascii: "\"") else {
                        throw ServalError(
                            .validationError, "The request's \"id\" must be a string, not \(scanner.describeValue()).")
                    }
                    id = scanner.string(try scanner.readString())
                } else if scanner.string(key, equals: "parameters") {
                    try seen.insert("parameters", at: 2, in: "The request")
                    encoding.binaryByDefault = try parseRequestParameters()
                } else if scanner.string(key, equals: "outputs") {
                    try seen.insert("outputs", at: 3, in: "The request")
                    try parseOutputs(into: &outputs, encoding: &encoding)
                } else {
                    try scanner.skipValue()
                }
            } while try scanner.nextMember()
        }
        let end = scanner.position
        guard scanner.isAtEnd() else {
            if hasBinarySection {
                throw ServalError(
                    .validationError,
                    "The JSON header ends at byte \(end) but Inference-Header-Content-Length is \(scanner.bytes.count); "
                        + "set that header to the JSON's byte length.")
            }
            throw ServalError(
                .validationError,
                "The request body continues after its JSON, at byte \(end). If it carries binary tensor data, send the "
                    + "JSON's byte length in the Inference-Header-Content-Length header.")
        }
        guard let inputs else {
            throw ServalError(
                .validationError,
                "The request has no \"inputs\"; send {\"inputs\": [{\"name\": …, \"shape\": […], \"datatype\": …, \"data\": […]}]}."
            )
        }
        guard !inputs.isEmpty else {
            throw ServalError(.validationError, "The request's \"inputs\" is empty; send at least one input tensor.")
        }
        if inputs.count > 1 {
            var names = Set<String>(minimumCapacity: inputs.count)
            for input in inputs where !names.insert(input.name).inserted {
                throw ServalError(
                    .validationError, "Input \"\(input.name)\" appears more than once; input names must be distinct.")
            }
        }
        var binaryByteCount = 0
        for input in inputs {
            guard case .binary(let size) = input.payload else { continue }
            guard hasBinarySection else {
                throw ServalError(
                    .validationError,
                    "Input \"\(input.name)\" sets parameters.binary_data_size, but the request has no "
                        + "Inference-Header-Content-Length header; send the JSON's byte length in that header and the "
                        + "binary data after the JSON.")
            }
            let (sum, overflow) = binaryByteCount.addingReportingOverflow(size)
            guard !overflow else {
                throw ServalError(
                    .validationError,
                    "The inputs' parameters.binary_data_size add up to more bytes than a body can hold.")
            }
            binaryByteCount = sum
        }
        return InferHeader(
            id: id, inputs: inputs, outputs: outputs, encoding: encoding, binaryByteCount: binaryByteCount)
    }

    private mutating func parseInputs() throws(ServalError) -> [InferHeader.Input] {
        var inputs: [InferHeader.Input] = []
        if try scanner.beginArray("\"inputs\"") {
            repeat {
                inputs.append(try parseInput(index: inputs.count))
            } while try scanner.nextElement()
        }
        return inputs
    }

    private static func label(_ index: Int, _ name: String?) -> String {
        name.map { "Input \"\($0)\"" } ?? "inputs[\(index)]"
    }

    private mutating func parseInput(index: Int) throws(ServalError) -> InferHeader.Input {
        var name: String?
        var shape: [Int]?
        var datatype: TensorDatatype?
        var binaryDataSize: Int?
        var decoded: (data: ByteBuffer, count: Int)?
        var deferredData: Int?
        var seen = SeenKeys()
        if try scanner.beginObject("inputs[\(index)]") {
            repeat {
                let key = try scanner.readKey()
                if scanner.string(key, equals: "name") {
                    try seen.insert("name", at: 0, in: Self.label(index, name))
                    guard try scanner.peek(expecting: "a name") == UInt8(ascii: "\"") else {
                        throw ServalError(
                            .validationError,
                            "inputs[\(index)]: \"name\" must be a string, not \(scanner.describeValue()).")
                    }
                    name = scanner.string(try scanner.readString())
                } else if scanner.string(key, equals: "shape") {
                    try seen.insert("shape", at: 1, in: Self.label(index, name))
                    shape = try parseShape(Self.label(index, name))
                } else if scanner.string(key, equals: "datatype") {
                    try seen.insert("datatype", at: 2, in: Self.label(index, name))
                    datatype = try parseDatatype(Self.label(index, name))
                } else if scanner.string(key, equals: "data") {
                    try seen.insert("data", at: 3, in: Self.label(index, name))
                    if let datatype, let name {
                        decoded = try scanner.decodeTensorData(
                            datatype, input: name, expectedCount: shape.flatMap(Self.product))
                    } else {
                        // The element type (or the name, for messages) comes later: decode after the object.
                        deferredData = scanner.position
                        try scanner.skipValue()
                    }
                } else if scanner.string(key, equals: "parameters") {
                    try seen.insert("parameters", at: 4, in: Self.label(index, name))
                    binaryDataSize = try parseInputParameters(Self.label(index, name))
                } else {
                    try scanner.skipValue()
                }
            } while try scanner.nextMember()
        }
        guard let name else {
            throw ServalError(.validationError, "inputs[\(index)] has no \"name\"; every input needs a name.")
        }
        guard let datatype else {
            throw ServalError(
                .validationError, "Input \"\(name)\" has no \"datatype\"; use one of \(Self.datatypeList).")
        }
        guard let shape else {
            throw ServalError(.validationError, "Input \"\(name)\" has no \"shape\"; send its dimensions, e.g. [1, 4].")
        }
        let count = try Tensor.elementCount(of: shape, name: name)
        if let binaryDataSize {
            guard !seen.contains(at: 3) else {
                throw ServalError(
                    .validationError,
                    "Input \"\(name)\" has both \"data\" and parameters.binary_data_size; send its elements one way.")
            }
            if let expected = try Tensor.byteCount(elements: count, of: datatype, name: name),
                expected != binaryDataSize
            {
                throw ServalError(
                    .validationError,
                    "Input \"\(name)\" has shape \(shape) (\(count) \(datatype.rawValue) elements, \(expected) bytes) "
                        + "but parameters.binary_data_size is \(binaryDataSize).")
            }
            return InferHeader.Input(
                name: name, datatype: datatype, shape: shape, payload: .binary(size: binaryDataSize))
        }
        if let deferredData {
            let resume = (scanner.position, scanner.depth)
            scanner.position = deferredData
            scanner.depth += 1
            decoded = try scanner.decodeTensorData(datatype, input: name, expectedCount: count)
            (scanner.position, scanner.depth) = resume
        }
        guard let decoded else {
            throw ServalError(
                .validationError,
                "Input \"\(name)\" has no \"data\"; send its elements in \"data\", or as binary data after the JSON "
                    + "with parameters.binary_data_size.")
        }
        guard decoded.count == count else {
            throw ServalError(
                .validationError,
                "Input \"\(name)\" has shape \(shape), which holds \(count) elements, but \"data\" has \(decoded.count)."
            )
        }
        return InferHeader.Input(name: name, datatype: datatype, shape: shape, payload: .json(decoded.data))
    }

    /// The element count of `shape`, or nil when it overflows or a dimension is negative.
    private static func product(_ shape: [Int]) -> Int? {
        var count = 1
        for dimension in shape {
            guard dimension >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { return nil }
            count = product
        }
        return count
    }

    private mutating func parseShape(_ label: @autoclosure () -> String) throws(ServalError) -> [Int] {
        var shape: [Int] = []
        if try scanner.beginArray("\(label()): \"shape\"") {
            repeat {
                shape.append(try scanner.readCount("\(label()): each dimension in \"shape\""))
            } while try scanner.nextElement()
        }
        return shape
    }

    private mutating func parseDatatype(_ label: @autoclosure () -> String) throws(ServalError) -> TensorDatatype {
        guard try scanner.peek(expecting: "a datatype") == UInt8(ascii: "\"") else {
            throw ServalError(
                .validationError, "\(label()): \"datatype\" must be a string, not \(scanner.describeValue()).")
        }
        let text = scanner.string(try scanner.readString())
        guard let datatype = TensorDatatype(rawValue: text) else {
            throw ServalError(
                .validationError,
                "\(label()) has datatype \"\(text)\", which the Open Inference Protocol does not define; use one of "
                    + "\(Self.datatypeList).")
        }
        return datatype
    }

    private mutating func parseInputParameters(_ label: @autoclosure () -> String) throws(ServalError) -> Int? {
        var size: Int?
        if try scanner.beginObject("\(label()): \"parameters\"") {
            repeat {
                let key = try scanner.readKey()
                if scanner.string(key, equals: "binary_data_size") {
                    size = try scanner.readCount("\(label()): parameters.binary_data_size")
                } else {
                    try scanner.skipValue()
                }
            } while try scanner.nextMember()
        }
        return size
    }

    private mutating func parseRequestParameters() throws(ServalError) -> Bool {
        var binary = false
        if try scanner.beginObject("The request's \"parameters\"") {
            repeat {
                let key = try scanner.readKey()
                if scanner.string(key, equals: "binary_data_output") {
                    binary = try scanner.readBool("The request's parameters.binary_data_output")
                } else {
                    try scanner.skipValue()
                }
            } while try scanner.nextMember()
        }
        return binary
    }

    private mutating func parseOutputs(
        into outputs: inout [String], encoding: inout OIPOutputEncoding
    ) throws(ServalError) {
        guard try scanner.beginArray("\"outputs\"") else { return }
        repeat {
            let index = outputs.count
            var name: String?
            var binary: Bool?
            if try scanner.beginObject("outputs[\(index)]") {
                repeat {
                    let key = try scanner.readKey()
                    if scanner.string(key, equals: "name") {
                        guard try scanner.peek(expecting: "a name") == UInt8(ascii: "\"") else {
                            throw ServalError(
                                .validationError,
                                "outputs[\(index)]: \"name\" must be a string, not \(scanner.describeValue()).")
                        }
                        name = scanner.string(try scanner.readString())
                    } else if scanner.string(key, equals: "parameters") {
                        binary = try parseOutputParameters(index, name)
                    } else {
                        try scanner.skipValue()
                    }
                } while try scanner.nextMember()
            }
            guard let name else {
                throw ServalError(.validationError, "outputs[\(index)] has no \"name\"; name each output you request.")
            }
            guard !outputs.contains(name) else {
                throw ServalError(
                    .validationError, "Output \"\(name)\" is requested more than once; request each output once.")
            }
            outputs.append(name)
            if let binary { encoding.binaryByOutput[name] = binary }
        } while try scanner.nextElement()
    }

    private mutating func parseOutputParameters(_ index: Int, _ name: String?) throws(ServalError) -> Bool? {
        var binary: Bool?
        let label = { name.map { "Output \"\($0)\"" } ?? "outputs[\(index)]" }
        if try scanner.beginObject("\(label()): \"parameters\"") {
            repeat {
                let key = try scanner.readKey()
                if scanner.string(key, equals: "binary_data") {
                    binary = try scanner.readBool("\(label()): parameters.binary_data")
                } else {
                    try scanner.skipValue()
                }
            } while try scanner.nextMember()
        }
        return binary
    }
}

/// The known keys an object has had, to reject a key given twice.
private struct SeenKeys {
    private var bits: UInt8 = 0

    /// Notes `key` (the `bit`th known key) or throws if it came before; `owner` names the object.
    mutating func insert(_ key: StaticString, at bit: Int, in owner: @autoclosure () -> String) throws(ServalError) {
        guard bits & 1 << bit == 0 else {
            throw ServalError(.validationError, "\(owner()) has the key \"\(key)\" twice; send it once.")
        }
        bits |= 1 << bit
    }

    /// Whether the `bit`th known key came.
    func contains(at bit: Int) -> Bool { bits & 1 << bit != 0 }
}
