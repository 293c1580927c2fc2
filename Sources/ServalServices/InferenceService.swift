import NIOCore
public import ServalCore
import ServalRuntime

/// Runs inference requests against endpoints, for every frontend alike.
public struct InferenceService: Sendable {
    let endpoints: EndpointManager

    /// Creates the service.
    public init(endpoints: EndpointManager) {
        self.endpoints = endpoints
    }

    /// The model's answer to one request, and the variant that served it.
    ///
    /// - Parameter targetVariant: the variant to use, or `nil` to split traffic by weight.
    public func invoke(
        endpoint name: String, request: InvocationRequest, targetVariant: String?
    ) async throws(ServalError) -> (response: InvocationResponse, variant: String) {
        try Self.validate(request)
        let variant = try await endpoints.runtime(for: name).variant(target: targetVariant)
        let response = try await variant.invoke(request)
        return (response, variant.spec.variant.name)
    }

    private static func validate(_ request: InvocationRequest) throws(ServalError) {
        guard request.body.readableBytes <= InvocationLimits.maxPayloadBytes else {
            throw ServalError(
                .payloadTooLarge,
                "The request body is \(request.body.readableBytes) bytes; real-time invocations take at most \(InvocationLimits.maxPayloadBytes). Use asynchronous inference for larger inputs.")
        }
        guard request.customAttributes.utf8.count <= InvocationLimits.maxCustomAttributesLength else {
            throw .invalid("X-Amzn-SageMaker-Custom-Attributes", "is longer than 1024 characters.")
        }
        guard request.contentType.utf8.count <= 1024 else { throw .invalid("Content-Type", "is longer than 1024 characters.") }
        guard request.accept.utf8.count <= 1024 else { throw .invalid("Accept", "is longer than 1024 characters.") }
    }
}
