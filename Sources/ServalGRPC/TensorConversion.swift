import Foundation
import NIOCore
import NIOFoundationCompat
import ServalCore
import ServalOIPProto

/// Converts gRPC inference messages to Serval's tensors.
enum TensorConversion {
    /// The ``InferenceRequest`` a `ModelInferRequest` carries, with inputs from `raw_input_contents` (one entry per
    /// input, in order) or from the typed `contents`, never both.
    static func request(from message: Inference_ModelInferRequest) throws(ServalError) -> InferenceRequest {
        let raw = message.rawInputContents
        guard raw.isEmpty || raw.count == message.inputs.count else {
            throw ServalError(
                .validationError,
                "raw_input_contents has \(raw.count) entries for \(message.inputs.count) inputs; send one per input, in order, or use contents.")
        }
        var inputs: [Tensor] = []
        inputs.reserveCapacity(message.inputs.count)
        for (index, input) in message.inputs.enumerated() {
            guard let datatype = TensorDatatype(rawValue: input.datatype) else {
                throw ServalError(
                    .validationError,
                    "Input \"\(input.name)\" has datatype \"\(input.datatype)\"; use one of \(TensorDatatype.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            let shape = input.shape.map { Int(truncatingIfNeeded: $0) }
            let data: ByteBuffer
            if raw.isEmpty {
                data = try contents(of: input, datatype: datatype)
            } else {
                guard !input.hasContents || isEmpty(input.contents) else {
                    throw ServalError(.validationError, "Input \"\(input.name)\" has both contents and raw_input_contents; send one.")
                }
                data = ByteBuffer(data: raw[index])
            }
            inputs.append(Tensor(name: input.name, datatype: datatype, shape: shape, data: data))
        }
        return InferenceRequest(id: message.id, inputs: inputs, outputs: message.outputs.map(\.name))
    }

    private static func isEmpty(_ contents: Inference_InferTensorContents) -> Bool {
        contents.boolContents.isEmpty && contents.intContents.isEmpty && contents.int64Contents.isEmpty
            && contents.uintContents.isEmpty && contents.uint64Contents.isEmpty && contents.fp32Contents.isEmpty
            && contents.fp64Contents.isEmpty && contents.bytesContents.isEmpty
    }

    /// The little-endian bytes of a typed `contents` field, range-checked for the narrower integer types.
    private static func contents(
        of input: Inference_ModelInferRequest.InferInputTensor, datatype: TensorDatatype
    ) throws(ServalError) -> ByteBuffer {
        let contents = input.contents
        var buffer = ByteBuffer()
        func narrow<Wide: FixedWidthInteger, Narrow: FixedWidthInteger>(_ values: [Wide], _: Narrow.Type) throws(ServalError) {
            buffer.reserveCapacity(values.count * MemoryLayout<Narrow>.size)
            for value in values {
                guard let narrowed = Narrow(exactly: value) else {
                    throw ServalError(.validationError, "Input \"\(input.name)\" has \(value), out of range for \(datatype.rawValue).")
                }
                buffer.writeInteger(narrowed, endianness: .little)
            }
        }
        switch datatype {
        case .bool:
            for value in contents.boolContents { buffer.writeInteger(UInt8(value ? 1 : 0)) }
        case .int8: try narrow(contents.intContents, Int8.self)
        case .int16: try narrow(contents.intContents, Int16.self)
        case .int32: try narrow(contents.intContents, Int32.self)
        case .int64: try narrow(contents.int64Contents, Int64.self)
        case .uint8: try narrow(contents.uintContents, UInt8.self)
        case .uint16: try narrow(contents.uintContents, UInt16.self)
        case .uint32: try narrow(contents.uintContents, UInt32.self)
        case .uint64: try narrow(contents.uint64Contents, UInt64.self)
        case .fp32:
            for value in contents.fp32Contents { buffer.writeInteger(value.bitPattern, endianness: .little) }
        case .fp64:
            for value in contents.fp64Contents { buffer.writeInteger(value.bitPattern, endianness: .little) }
        case .bytes:
            for value in contents.bytesContents {
                buffer.writeInteger(UInt32(value.count), endianness: .little)
                buffer.writeData(value)
            }
        case .fp16, .bf16:
            throw ServalError(
                .validationError, "Input \"\(input.name)\" is \(datatype.rawValue), which has no typed contents field; send it in raw_input_contents.")
        }
        return buffer
    }
}
