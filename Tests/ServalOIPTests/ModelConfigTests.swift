import Foundation
import ServalCore
import ServalOIP
import Testing

@Suite("Triton's model configuration document")
struct ModelConfigTests {
    private func json(_ config: OIPModelConfig) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(config), as: UTF8.self)
    }

    @Test("a batched model: max_batch_size is the variant's, dims leave the batch dimension out, BYTES is TYPE_STRING")
    func batched() throws {
        let signature = ModelSignature(
            platform: "sklearn",
            inputs: [TensorMetadata(name: "input-0", datatype: .fp32, shape: [-1, 4]),
                     TensorMetadata(name: "text", datatype: .bytes, shape: [-1, -1])],
            outputs: [TensorMetadata(name: "predict", datatype: .int64, shape: [-1]),
                      TensorMetadata(name: "predict_proba", datatype: .fp64, shape: [-1, 2])])
        #expect(
            try json(OIPModelConfig(name: "lr", signature: signature, maxBatchSize: 8))
                == #"{"input":[{"data_type":"TYPE_FP32","dims":[4],"name":"input-0"},{"data_type":"TYPE_STRING","dims":[-1],"name":"text"}],"#
                + #""max_batch_size":8,"name":"lr","#
                + #""output":[{"data_type":"TYPE_INT64","dims":[1],"name":"predict","reshape":{"shape":[]}},{"data_type":"TYPE_FP64","dims":[2],"name":"predict_proba"}],"#
                + #""platform":"sklearn"}"#)
    }

    @Test("a tensor whose first dimension is fixed: no batch dimension, max_batch_size 0, whole shapes")
    func unbatched() {
        let signature = ModelSignature(
            platform: "onnxruntime",
            inputs: [TensorMetadata(name: "x", datatype: .fp16, shape: [3, 224])],
            outputs: [TensorMetadata(name: "y", datatype: .bf16, shape: [-1, 10])])
        let config = OIPModelConfig(name: "m", signature: signature, maxBatchSize: 16)
        #expect(config.maxBatchSize == 0)
        #expect(config.input.map(\.dims) == [[3, 224]] && config.output.map(\.dims) == [[-1, 10]])
        #expect(config.input[0].dataType == "TYPE_FP16" && config.output[0].dataType == "TYPE_BF16")
    }

    @Test("a model that declares nothing (TorchScript) has empty lists and no batch dimension")
    func nothingDeclared() {
        let config = OIPModelConfig(name: "t", signature: ModelSignature(platform: "pytorch_torchscript", inputs: [], outputs: []), maxBatchSize: 4)
        #expect(config.maxBatchSize == 0 && config.input.isEmpty && config.output.isEmpty)
    }
}
