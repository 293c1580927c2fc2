import NIOCore
import ServalCore
import ServalOIP
import Testing

/// Decodes a pure-JSON body.
func decode(_ json: String) throws(ServalError) -> OIPInferRequest {
    try OIPCodec.decodeInferRequest(ByteBuffer(string: json), headerLength: nil)
}

/// The error decoding `json` throws; fails the test when it decodes.
func decodeError(_ json: String, sourceLocation: SourceLocation = #_sourceLocation) -> ServalError? {
    do {
        let request = try decode(json)
        Issue.record(
            "decoded but should have failed: \(request.request.inputs.map(\.name))", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// Expects decoding `json` to fail with a validation error whose message contains every one of `fragments`.
func expectRejected(_ json: String, _ fragments: String..., sourceLocation: SourceLocation = #_sourceLocation) {
    guard let error = decodeError(json, sourceLocation: sourceLocation) else { return }
    #expect(error.code == .validationError, "\(error)", sourceLocation: sourceLocation)
    for fragment in fragments {
        #expect(
            error.message.contains(fragment), "message \"\(error.message)\" lacks \"\(fragment)\"",
            sourceLocation: sourceLocation)
    }
}

/// A request body with one input whose `data` is the given JSON text.
func oneInput(_ datatype: String, shape: [Int], data: String, name: String = "x") -> String {
    #"{"inputs":[{"name":"\#(name)","shape":\#(shape),"datatype":"\#(datatype)","data":\#(data)}]}"#
}

/// Decodes one input and returns its data's bytes.
func decodeData(_ datatype: String, shape: [Int], data: String) throws -> [UInt8] {
    let request = try decode(oneInput(datatype, shape: shape, data: data))
    return Array(request.request.inputs[0].data.readableBytesView)
}

/// The little-endian bytes of `values`.
func littleEndianBytes<Value: FixedWidthInteger>(_ values: [Value]) -> [UInt8] {
    var buffer = ByteBuffer()
    for value in values { buffer.writeInteger(value, endianness: .little) }
    return Array(buffer.readableBytesView)
}

/// The words of a buffer read as little-endian `Value`s.
func words<Value: FixedWidthInteger>(_ buffer: ByteBuffer, as _: Value.Type) -> [Value] {
    var buffer = buffer
    var values: [Value] = []
    while let value = buffer.readInteger(endianness: .little, as: Value.self) { values.append(value) }
    return values
}

/// A tensor from little-endian words.
func tensor<Value: FixedWidthInteger>(_ name: String, _ datatype: TensorDatatype, _ shape: [Int], _ values: [Value])
    -> Tensor
{
    Tensor(name: name, datatype: datatype, shape: shape, data: ByteBuffer(bytes: littleEndianBytes(values)))
}

/// The BYTES wire form of `elements`.
func bytesData(_ elements: [[UInt8]]) -> ByteBuffer {
    var buffer = ByteBuffer()
    for element in elements {
        buffer.writeInteger(UInt32(element.count), endianness: .little)
        buffer.writeBytes(element)
    }
    return buffer
}

/// A binary-extension body: the JSON header, then `binary`; returns it with the header length.
func binaryBody(_ json: String, _ binary: [[UInt8]]) -> (body: ByteBuffer, headerLength: Int) {
    var body = ByteBuffer(string: json)
    let headerLength = body.readableBytes
    for part in binary { body.writeBytes(part) }
    return (body, headerLength)
}

/// Encodes a response and returns the JSON text and the binary section (empty for pure JSON).
func encode(
    _ outputs: [Tensor], encoding: OIPOutputEncoding = .json, modelName: String = "m", modelVersion: String = "",
    id: String = ""
) throws(ServalError) -> (json: String, binary: [UInt8], headerLength: Int?) {
    var buffer = ByteBuffer()
    let headerLength = try OIPCodec.encodeInferResponse(
        modelName: modelName, modelVersion: modelVersion, id: id, outputs: outputs, encoding: encoding, into: &buffer)
    let jsonLength = headerLength ?? buffer.readableBytes
    let json = buffer.readString(length: jsonLength)!
    return (json, Array(buffer.readableBytesView), headerLength)
}

/// Whether two decoded requests are the same.
func same(_ lhs: OIPInferRequest, _ rhs: OIPInferRequest) -> Bool {
    lhs.request.id == rhs.request.id && lhs.request.inputs == rhs.request.inputs
        && lhs.request.outputs == rhs.request.outputs && lhs.outputEncoding == rhs.outputEncoding
}
