public import NIOCore

/// One inference request as every frontend hands it to the inference service.
public struct InvocationRequest: Sendable {
    /// The request body, exactly as received.
    public var body: ByteBuffer
    /// The body's content type; empty when the request had none.
    public var contentType: String
    /// The content type the caller accepts; empty when the request had none.
    public var accept: String
    /// SageMaker's custom attributes header, passed to the model unchanged; empty when absent.
    public var customAttributes: String

    /// Creates a request.
    public init(body: ByteBuffer, contentType: String, accept: String, customAttributes: String) {
        self.body = body
        self.contentType = contentType
        self.accept = accept
        self.customAttributes = customAttributes
    }
}

/// The model's answer to one request.
public struct InvocationResponse: Sendable, Equatable {
    /// The response body the model's handler produced.
    public var body: ByteBuffer
    /// Its content type.
    public var contentType: String

    /// Creates a response.
    public init(body: ByteBuffer, contentType: String) {
        self.body = body
        self.contentType = contentType
    }
}

/// Limits of the real-time invocation path.
public enum InvocationLimits {
    /// SageMaker's real-time payload limit, each way: 6 MiB.
    public static let maxPayloadBytes = 6 * 1024 * 1024
    /// The largest Open Inference Protocol request body: 64 MiB.
    public static let maxTensorRequestBytes = 64 * 1024 * 1024
    /// The longest custom attributes header SageMaker accepts.
    public static let maxCustomAttributesLength = 1024
}
