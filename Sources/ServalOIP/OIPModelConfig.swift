public import ServalCore

/// `GET /v2/models/{m}[/versions/{v}]/config`: the model's configuration in Triton's JSON form, what
/// `tritonclient.http.InferenceServerClient.get_model_config` reads.
///
/// Serval batches along the first dimension, so when every tensor's first dimension varies it is the batch
/// dimension: `max_batch_size` is the variant's and `dims` leave it out, as Triton writes them. Otherwise
/// `max_batch_size` is 0 and `dims` are the whole shapes. A batched tensor with no other dimension is `dims: [1]`
/// reshaped to `[]`, Triton's way of writing one value per row.
public struct OIPModelConfig: Encodable, Sendable, Equatable {
    /// One input or output.
    public struct Tensor: Encodable, Sendable, Equatable {
        /// Triton's `reshape`: the shape the model sees.
        public struct Reshape: Encodable, Sendable, Equatable {
            /// The shape, without the batch dimension.
            public var shape: [Int]
        }

        /// The tensor's name.
        public var name: String
        /// Triton's name for the datatype: `TYPE_FP32`, `TYPE_STRING` for BYTES, and so on.
        public var dataType: String
        /// The shape without the batch dimension when `max_batch_size` > 0; -1 marks a variable dimension.
        public var dims: [Int]
        /// Present when `dims` is `[1]` standing for no dimension at all.
        public var reshape: Reshape?

        enum CodingKeys: String, CodingKey {
            case name, dims, reshape
            case dataType = "data_type"
        }

        init(_ metadata: TensorMetadata, batched: Bool) {
            name = metadata.name
            dataType = Self.tritonName(metadata.datatype)
            dims = batched ? Array(metadata.shape.dropFirst()) : metadata.shape
            if dims.isEmpty {
                dims = [1]
                reshape = Reshape(shape: [])
            }
        }

        /// Triton's configuration name for a datatype.
        static func tritonName(_ datatype: TensorDatatype) -> String {
            datatype == .bytes ? "TYPE_STRING" : "TYPE_" + datatype.rawValue
        }
    }

    /// The model (endpoint) name.
    public var name: String
    /// The framework, as in the model's metadata.
    public var platform: String
    /// The most rows a batch holds (the variant's `maxBatchSize`); 0 when the tensors have no batch dimension.
    public var maxBatchSize: Int
    /// The inputs.
    public var input: [Tensor]
    /// The outputs.
    public var output: [Tensor]

    enum CodingKeys: String, CodingKey {
        case name, platform, input, output
        case maxBatchSize = "max_batch_size"
    }

    /// The configuration of `name`, whose loaded model has `signature`, served with batches of at most
    /// `maxBatchSize` rows.
    public init(name: String, signature: ModelSignature, maxBatchSize: Int) {
        let tensors = signature.inputs + signature.outputs
        let batched = maxBatchSize > 0 && !tensors.isEmpty && tensors.allSatisfy { $0.shape.first == -1 }
        self.name = name
        platform = signature.platform
        self.maxBatchSize = batched ? maxBatchSize : 0
        input = signature.inputs.map { Tensor($0, batched: batched) }
        output = signature.outputs.map { Tensor($0, batched: batched) }
    }
}
