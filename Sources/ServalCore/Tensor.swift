public import NIOCore

/// The element types of the Open Inference Protocol.
public enum TensorDatatype: String, Sendable, Equatable, Hashable, CaseIterable, Codable {
    case bool = "BOOL"
    case uint8 = "UINT8"
    case uint16 = "UINT16"
    case uint32 = "UINT32"
    case uint64 = "UINT64"
    case int8 = "INT8"
    case int16 = "INT16"
    case int32 = "INT32"
    case int64 = "INT64"
    case fp16 = "FP16"
    case fp32 = "FP32"
    case fp64 = "FP64"
    case bf16 = "BF16"
    /// Variable-length byte strings; on the wire each element is a little-endian `u32` length, then the bytes.
    case bytes = "BYTES"

    /// The size of one element in bytes; `nil` for ``bytes``, whose elements vary in length.
    public var elementSize: Int? {
        switch self {
        case .bool, .uint8, .int8: 1
        case .uint16, .int16, .fp16, .bf16: 2
        case .uint32, .int32, .fp32: 4
        case .uint64, .int64, .fp64: 8
        case .bytes: nil
        }
    }

    /// Whether values of this type are numbers (or booleans) that a tabular model can take after a cast.
    public var isNumeric: Bool { self != .bytes }
}

/// A tensor as Serval carries it between frontends and workers: a name, a type, a shape and its elements as raw
/// row-major little-endian bytes.
///
/// The bytes are never turned back into per-element values inside Serval: frontends decode JSON numbers straight
/// into ``data``, and workers map it with `numpy.frombuffer`.
public struct Tensor: Sendable, Equatable {
    /// The tensor's name, as the model declares it.
    public var name: String
    /// The element type.
    public var datatype: TensorDatatype
    /// The dimensions; every one is at least 0.
    public var shape: [Int]
    /// The elements, row-major and little-endian. For ``TensorDatatype/bytes`` each element is a `u32` length
    /// and the bytes.
    public var data: ByteBuffer

    /// Creates a tensor.
    public init(name: String, datatype: TensorDatatype, shape: [Int], data: ByteBuffer) {
        self.name = name
        self.datatype = datatype
        self.shape = shape
        self.data = data
    }

    /// The number of elements `shape` holds, or an error when a dimension is negative or the product overflows.
    public static func elementCount(of shape: [Int], name: String) throws(ServalError) -> Int {
        var count = 1
        for dimension in shape {
            guard dimension >= 0 else {
                throw ServalError(.validationError, "Input \"\(name)\" has a negative dimension in shape \(shape).")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else {
                throw ServalError(.validationError, "Input \"\(name)\" has shape \(shape), whose element count overflows.")
            }
            count = product
        }
        return count
    }

    /// The byte length that `count` elements of `datatype` take, when the type has a fixed size.
    public static func byteCount(elements count: Int, of datatype: TensorDatatype, name: String) throws(ServalError) -> Int? {
        guard let size = datatype.elementSize else { return nil }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow else {
            throw ServalError(.validationError, "Input \"\(name)\" is too large: \(count) elements of \(datatype.rawValue).")
        }
        return bytes
    }

    /// Checks that ``data`` holds exactly the elements ``shape`` promises.
    ///
    /// For ``TensorDatatype/bytes`` it walks the length-prefixed elements: each must fit in the data, and their
    /// number must match the shape.
    public func validate() throws(ServalError) {
        let count = try Self.elementCount(of: shape, name: name)
        if let expected = try Self.byteCount(elements: count, of: datatype, name: name) {
            guard data.readableBytes == expected else {
                throw ServalError(
                    .validationError,
                    "Input \"\(name)\" has shape \(shape) (\(count) \(datatype.rawValue) elements, \(expected) bytes) but \(data.readableBytes) bytes of data.")
            }
            return
        }
        var cursor = data
        var seen = 0
        while let length = cursor.readInteger(endianness: .little, as: UInt32.self) {
            guard Int(length) <= cursor.readableBytes else {
                throw ServalError(.validationError, "Input \"\(name)\" has a truncated BYTES element (element \(seen)).")
            }
            cursor.moveReaderIndex(forwardBy: Int(length))
            seen += 1
        }
        guard cursor.readableBytes == 0 else {
            throw ServalError(.validationError, "Input \"\(name)\" has a truncated BYTES element (element \(seen)).")
        }
        guard seen == count else {
            throw ServalError(
                .validationError, "Input \"\(name)\" has shape \(shape) (\(count) elements) but \(seen) BYTES elements.")
        }
    }
}

/// A tensor a model takes or produces, as model metadata describes it. A dimension of -1 varies.
public struct TensorMetadata: Sendable, Equatable, Hashable, Codable {
    /// The tensor's name.
    public var name: String
    /// Its element type.
    public var datatype: TensorDatatype
    /// Its shape; -1 marks a variable dimension (usually the first, the batch).
    public var shape: [Int]

    /// Creates a tensor description.
    public init(name: String, datatype: TensorDatatype, shape: [Int]) {
        self.name = name
        self.datatype = datatype
        self.shape = shape
    }

    /// Whether a tensor of `shape` fits this description: same rank, and equal wherever this one is fixed.
    public func accepts(shape other: [Int]) -> Bool {
        other.count == shape.count && zip(shape, other).allSatisfy { $0 == -1 || $0 == $1 }
    }
}

/// What a loaded model says about itself: its framework and the tensors it takes and produces.
///
/// Workers report it when the model has loaded — declared in the package's `model-settings.json`, or inferred
/// from the model (e.g. scikit-learn's `n_features_in_`). Empty lists mean the model did not say.
public struct ModelSignature: Sendable, Equatable, Codable {
    /// The framework, e.g. `sklearn`, `xgboost`, `onnxruntime`, `pytorch_torchscript`, `python`.
    public var platform: String
    /// The inputs, in the model's order.
    public var inputs: [TensorMetadata]
    /// The outputs, in the model's order.
    public var outputs: [TensorMetadata]

    /// Creates a signature.
    public init(platform: String, inputs: [TensorMetadata], outputs: [TensorMetadata]) {
        self.platform = platform
        self.inputs = inputs
        self.outputs = outputs
    }
}

/// One Open Inference Protocol request as every frontend hands it to the inference service.
public struct InferenceRequest: Sendable {
    /// The caller's request id, echoed in the response; empty when the request had none.
    public var id: String
    /// The input tensors, in request order, with distinct names.
    public var inputs: [Tensor]
    /// The outputs to return, by name; empty means every output the model produces.
    public var outputs: [String]

    /// Creates a request.
    public init(id: String = "", inputs: [Tensor], outputs: [String] = []) {
        self.id = id
        self.inputs = inputs
        self.outputs = outputs
    }

    /// The request's payload size in bytes, for queue limits.
    public var byteCount: Int { inputs.reduce(0) { $0 + $1.data.readableBytes } }
}

/// The model's answer to one ``InferenceRequest``.
public struct InferenceResponse: Sendable, Equatable {
    /// The output tensors.
    public var outputs: [Tensor]

    /// Creates a response.
    public init(outputs: [Tensor]) {
        self.outputs = outputs
    }
}

/// Which requests may share a batch: the same input names, types and trailing dimensions, and the same
/// requested outputs (Triton's rule). Requests are concatenated along their first dimension.
public struct TensorBatchKey: Sendable, Hashable {
    struct Input: Sendable, Hashable {
        var name: String
        var datatype: TensorDatatype
        var trailingShape: ArraySlice<Int>
    }

    var inputs: [Input]
    var outputs: [String]
}

extension InferenceRequest {
    /// The key that decides which requests batch together, and this request's rows (its first dimension).
    ///
    /// `nil` when the request cannot be concatenated with others: an input without a first dimension, or inputs
    /// whose first dimensions differ. Such a request runs as a batch of its own.
    public var batchKey: (key: TensorBatchKey, rows: Int)? {
        guard let rows = inputs.first?.shape.first else { return nil }
        var key = TensorBatchKey(inputs: [], outputs: outputs)
        key.inputs.reserveCapacity(inputs.count)
        for input in inputs {
            guard input.shape.first == rows else { return nil }
            key.inputs.append(.init(name: input.name, datatype: input.datatype, trailingShape: input.shape.dropFirst()))
        }
        return (key, rows)
    }
}

extension InferenceRequest {
    /// Checks the request before it is queued: every tensor's data against its shape, distinct input names, and
    /// — when the model declares them — input names, datatypes and shapes, and the requested outputs.
    ///
    /// Numeric datatypes are interchangeable (the worker casts, e.g. INT64 or FP64 to a model's FP32); BYTES
    /// is not interchangeable with numbers.
    public func validate(against signature: ModelSignature?) throws(ServalError) {
        guard !inputs.isEmpty else {
            throw ServalError(.validationError, "The request has no inputs; send at least one tensor in \"inputs\".")
        }
        var names = Set<String>()
        for input in inputs {
            guard names.insert(input.name).inserted else {
                throw ServalError(.validationError, "Input \"\(input.name)\" appears more than once; input names must be distinct.")
            }
            try input.validate()
        }
        guard let signature else { return }
        if !signature.inputs.isEmpty {
            for input in inputs {
                guard let declared = signature.inputs.first(where: { $0.name == input.name }) else {
                    throw ServalError(
                        .validationError,
                        "The model has no input \"\(input.name)\"; its inputs are \(signature.inputs.map(\.name).joined(separator: ", ")).")
                }
                guard declared.datatype.isNumeric == input.datatype.isNumeric else {
                    throw ServalError(
                        .validationError,
                        "Input \"\(input.name)\" is \(input.datatype.rawValue) but the model takes \(declared.datatype.rawValue).")
                }
                guard declared.accepts(shape: input.shape) else {
                    throw ServalError(
                        .validationError,
                        "Input \"\(input.name)\" has shape \(input.shape); the model takes \(declared.shape) (-1 varies).")
                }
            }
            let missing = signature.inputs.map(\.name).filter { !names.contains($0) }
            guard missing.isEmpty else {
                throw ServalError(.validationError, "The request lacks the model's input(s) \(missing.joined(separator: ", ")).")
            }
        }
        if !signature.outputs.isEmpty {
            for output in outputs where !signature.outputs.contains(where: { $0.name == output }) {
                throw ServalError(
                    .validationError,
                    "The model has no output \"\(output)\"; its outputs are \(signature.outputs.map(\.name).joined(separator: ", ")).")
            }
        }
    }
}
