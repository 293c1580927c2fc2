public import NIOCore
public import ServalCore

/// Open Inference Protocol v2 REST codecs: infer requests and responses as JSON, with Triton's binary tensor
/// extension. Pure and I/O-free; the HTTP frontend calls them with whole bodies (or feeds an
/// ``OIPInferBodyDecoder`` chunk by chunk).
///
/// Tensor elements go straight between JSON text and little-endian bytes, in one pass and without per-element
/// values in between; floats are correctly rounded both ways.
public enum OIPCodec {
    /// The header that gives the byte length of the JSON at the start of a binary-extension body.
    public static let headerLengthField = "Inference-Header-Content-Length"

    /// Reads the `Inference-Header-Content-Length` header's value: nil when the header is absent (the body is
    /// pure JSON), else the non-negative decimal byte count it holds.
    public static func parseHeaderLength(_ value: String?) throws(ServalError) -> Int? {
        guard let value else { return nil }
        let digits = value.utf8
        guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0 &- UInt8(ascii: "0") < 10 }),
            let length = Int(value)
        else {
            throw ServalError(
                .validationError,
                "\(headerLengthField) must be the JSON header's length as a non-negative decimal integer, not \"\(value.prefix(40))\"."
            )
        }
        return length
    }

    /// Decodes a complete infer request body. `headerLength` is the `Inference-Header-Content-Length` header's
    /// value, nil when absent (the body is pure JSON); with it, the first `headerLength` bytes are the JSON and
    /// the rest is the binary data of the inputs that declare `parameters.binary_data_size`, in input order.
    ///
    /// Malformed input throws ``ServalError/Code/validationError`` with a message naming the input and field.
    public static func decodeInferRequest(
        _ body: ByteBuffer, headerLength: Int?
    ) throws(ServalError) -> OIPInferRequest {
        guard let headerLength else {
            return try InferHeader.parse(body, hasBinarySection: false).request(binary: ByteBuffer())
        }
        try checkHeaderLength(headerLength, bodyLength: body.readableBytes)
        var rest = body
        guard let json = rest.readSlice(length: headerLength) else {
            throw headerLengthError(headerLength, bodyLength: body.readableBytes)
        }
        return try InferHeader.parse(json, hasBinarySection: true).request(binary: rest)
    }

    /// Checks `Inference-Header-Content-Length` against what the body can hold (`bodyLength`, or its
    /// Content-Length when it is still arriving).
    static func checkHeaderLength(_ headerLength: Int, bodyLength: Int) throws(ServalError) {
        guard headerLength >= 0 else {
            throw ServalError(
                .validationError,
                "\(headerLengthField) is \(headerLength); it must be the JSON header's non-negative byte length.")
        }
        guard headerLength <= bodyLength else { throw headerLengthError(headerLength, bodyLength: bodyLength) }
    }

    static func headerLengthError(_ headerLength: Int, bodyLength: Int) -> ServalError {
        ServalError(
            .validationError,
            "\(headerLengthField) is \(headerLength) but the body has only \(bodyLength) bytes; it must be the byte "
                + "length of the JSON at the start of the body.")
    }

    /// Appends an infer response to `buffer`: `{"model_name", "model_version", "id", "outputs": […]}`, then the
    /// raw bytes of the outputs `encoding` wants binary, in output order.
    ///
    /// `model_version` is left out when empty, and `id` too. Returns the JSON's length when any output is binary
    /// (the frontend sends it as `Inference-Header-Content-Length`, with content type
    /// `application/octet-stream`), nil when the response is pure JSON. On error `buffer` is left as it was.
    ///
    /// - Throws: ``ServalError/Code/modelError`` when an output's data does not match its shape;
    ///   ``ServalError/Code/validationError`` when a BYTES output requested as JSON is not UTF-8.
    public static func encodeInferResponse(
        modelName: String, modelVersion: String, id: String, outputs: [Tensor], encoding: OIPOutputEncoding,
        into buffer: inout ByteBuffer
    ) throws(ServalError) -> Int? {
        for output in outputs { try checkOutput(output) }
        let start = buffer.writerIndex
        do throws(ServalError) {
            buffer.writeStaticString("{\"model_name\":")
            buffer.writeJSONString(modelName)
            if !modelVersion.isEmpty {
                buffer.writeStaticString(",\"model_version\":")
                buffer.writeJSONString(modelVersion)
            }
            if !id.isEmpty {
                buffer.writeStaticString(",\"id\":")
                buffer.writeJSONString(id)
            }
            buffer.writeStaticString(",\"outputs\":[")
            var anyBinary = false
            for (index, output) in outputs.enumerated() {
                if index > 0 { buffer.writeASCII(",") }
                buffer.writeStaticString("{\"name\":")
                buffer.writeJSONString(output.name)
                buffer.writeStaticString(",\"datatype\":\"")
                buffer.writeString(output.datatype.rawValue)
                buffer.writeStaticString("\",\"shape\":[")
                for (position, dimension) in output.shape.enumerated() {
                    if position > 0 { buffer.writeASCII(",") }
                    buffer.writeJSONInteger(dimension)
                }
                if encoding.isBinary(output.name) {
                    anyBinary = true
                    buffer.writeStaticString("],\"parameters\":{\"binary_data_size\":")
                    buffer.writeJSONInteger(output.data.readableBytes)
                    buffer.writeStaticString("}}")
                } else {
                    buffer.writeStaticString("],\"data\":[")
                    try writeElements(of: output, into: &buffer)
                    buffer.writeStaticString("]}")
                }
            }
            buffer.writeStaticString("]}")
            guard anyBinary else { return nil }
            let headerLength = buffer.writerIndex - start
            for output in outputs where encoding.isBinary(output.name) {
                buffer.writeImmutableBuffer(output.data)
            }
            return headerLength
        } catch {
            buffer.moveWriterIndex(to: start)
            throw error
        }
    }

    /// Checks that an output's data holds the elements its shape promises, so encoding never reads past it.
    private static func checkOutput(_ output: Tensor) throws(ServalError) {
        var count = 1
        for dimension in output.shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard dimension >= 0, !overflow else {
                throw ServalError(
                    .modelError, "The model returned output \"\(output.name)\" with an invalid shape \(output.shape).")
            }
            count = product
        }
        if let size = output.datatype.elementSize {
            guard output.data.readableBytes == count * size else {
                throw ServalError(
                    .modelError,
                    "The model returned output \"\(output.name)\" with shape \(output.shape) (\(count) "
                        + "\(output.datatype.rawValue) elements) but \(output.data.readableBytes) bytes of data.")
            }
            return
        }
        var data = output.data
        var seen = 0
        while let length = data.readInteger(endianness: .little, as: UInt32.self) {
            guard data.readSlice(length: Int(length)) != nil else { break }
            seen += 1
        }
        guard data.readableBytes == 0, seen == count else {
            throw ServalError(
                .modelError,
                "The model returned BYTES output \"\(output.name)\" with shape \(output.shape) (\(count) elements) but "
                    + "data that does not hold \(count) length-prefixed elements.")
        }
    }

    /// Appends an output's elements as comma-separated JSON values.
    private static func writeElements(of output: Tensor, into buffer: inout ByteBuffer) throws(ServalError) {
        try output.data.withUnsafeReadableBytes { (bytes) throws(ServalError) in
            switch output.datatype {
            case .bool:
                for index in 0..<bytes.count {
                    if index > 0 { buffer.writeASCII(",") }
                    if bytes[index] != 0 { buffer.writeStaticString("true") } else { buffer.writeStaticString("false") }
                }
            case .uint8: writeIntegers(bytes, as: UInt8.self, into: &buffer)
            case .uint16: writeIntegers(bytes, as: UInt16.self, into: &buffer)
            case .uint32: writeIntegers(bytes, as: UInt32.self, into: &buffer)
            case .uint64: writeIntegers(bytes, as: UInt64.self, into: &buffer)
            case .int8: writeIntegers(bytes, as: Int8.self, into: &buffer)
            case .int16: writeIntegers(bytes, as: Int16.self, into: &buffer)
            case .int32: writeIntegers(bytes, as: Int32.self, into: &buffer)
            case .int64: writeIntegers(bytes, as: Int64.self, into: &buffer)
            case .fp16:
                forEach(bytes, as: UInt16.self, into: &buffer) {
                    $0.writeJSONNumber(HalfPrecision.float(fromBinary16: $1))
                }
            case .bf16:
                forEach(bytes, as: UInt16.self, into: &buffer) {
                    $0.writeJSONNumber(Float(bitPattern: UInt32($1) << 16))
                }
            case .fp32:
                forEach(bytes, as: UInt32.self, into: &buffer) { $0.writeJSONNumber(Float(bitPattern: $1)) }
            case .fp64:
                forEach(bytes, as: UInt64.self, into: &buffer) { $0.writeJSONNumber(Double(bitPattern: $1)) }
            case .bytes:
                try writeStrings(bytes, of: output, into: &buffer)
            }
        }
    }

    @inline(__always)
    private static func forEach<Word: FixedWidthInteger>(
        _ bytes: UnsafeRawBufferPointer, as _: Word.Type, into buffer: inout ByteBuffer,
        _ write: (inout ByteBuffer, Word) -> Void
    ) {
        let size = MemoryLayout<Word>.size
        var offset = 0
        while offset < bytes.count {
            if offset > 0 { buffer.writeASCII(",") }
            write(&buffer, Word(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Word.self)))
            offset += size
        }
    }

    private static func writeIntegers<Value: FixedWidthInteger>(
        _ bytes: UnsafeRawBufferPointer, as _: Value.Type, into buffer: inout ByteBuffer
    ) {
        forEach(bytes, as: Value.self, into: &buffer) { $0.writeJSONInteger($1) }
    }

    private static func writeStrings(
        _ bytes: UnsafeRawBufferPointer, of output: Tensor, into buffer: inout ByteBuffer
    ) throws(ServalError) {
        var offset = 0
        var index = 0
        while offset < bytes.count {
            let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            let element = UnsafeRawBufferPointer(rebasing: bytes[(offset + 4)..<(offset + 4 + length)])
            guard UTF8Validation.isValid(element) else {
                throw ServalError(
                    .validationError,
                    "Output \"\(output.name)\" element \(index) is not UTF-8 text, so it cannot be a JSON string; request "
                        + "the output as binary data: \"outputs\": [{\"name\": \"\(output.name)\", \"parameters\": "
                        + "{\"binary_data\": true}}].")
            }
            if index > 0 { buffer.writeASCII(",") }
            buffer.writeJSONString(utf8: element)
            offset += 4 + length
            index += 1
        }
    }
}

/// Conversions for IEEE 754 binary16, which not every platform's Swift has as a type.
enum HalfPrecision {
    /// The Float with the same value as the binary16 `bits` (exact: every binary16 value is a Float).
    static func float(fromBinary16 bits: UInt16) -> Float {
        let sign: UInt32 = UInt32(bits >> 15) << 31
        let exponent = Int(bits >> 10) & 0x1F
        let fraction = UInt32(bits & 0x3FF)
        switch exponent {
        case 0:
            let magnitude = Float(fraction) * 0x1p-24
            return sign == 0 ? magnitude : -magnitude
        case 0x1F:
            return Float(bitPattern: sign | 0x7F80_0000 | fraction << 13)
        default:
            return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | fraction << 13)
        }
    }
}
