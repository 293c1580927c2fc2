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

/// An inference request whose body is a file and whose response goes to a file, for payloads too large to pass
/// through Serval's memory (asynchronous inference).
///
/// The worker reads `inputPath`, runs the model's handlers exactly as for an ``InvocationRequest`` with that body,
/// and writes the response body to `outputPath` (created, or truncated). On an error nothing is left at
/// `outputPath`.
public struct FileInvocationRequest: Sendable, Equatable {
    /// The absolute path of the file holding the request body.
    public var inputPath: String
    /// The absolute path the response body is written to; its folder must exist.
    public var outputPath: String
    /// The body's content type; empty when the request had none.
    public var contentType: String
    /// The content type the caller accepts; empty when the request had none.
    public var accept: String
    /// SageMaker's custom attributes header, passed to the model unchanged; empty when absent.
    public var customAttributes: String

    /// Creates a request.
    public init(inputPath: String, outputPath: String, contentType: String, accept: String, customAttributes: String) {
        self.inputPath = inputPath
        self.outputPath = outputPath
        self.contentType = contentType
        self.accept = accept
        self.customAttributes = customAttributes
    }
}

/// The model's answer to a ``FileInvocationRequest``: the body is in the request's `outputPath`.
public struct FileInvocationResponse: Sendable, Equatable {
    /// The response's content type.
    public var contentType: String
    /// The number of bytes written to the output file.
    public var bytesWritten: Int

    /// Creates a response.
    public init(contentType: String, bytesWritten: Int) {
        self.contentType = contentType
        self.bytesWritten = bytesWritten
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
