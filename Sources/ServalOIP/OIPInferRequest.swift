public import ServalCore

/// A decoded Open Inference Protocol infer request: the request for the inference service, and how the client
/// wants the response's outputs encoded.
public struct OIPInferRequest: Sendable {
    /// The request as every frontend hands it to the inference service.
    public var request: InferenceRequest
    /// How to encode each output in the response.
    public var outputEncoding: OIPOutputEncoding

    /// Creates a decoded request.
    public init(request: InferenceRequest, outputEncoding: OIPOutputEncoding = .json) {
        self.request = request
        self.outputEncoding = outputEncoding
    }
}
