import NIOCore
public import ServalCore
import ServalRuntime

/// Runs inference requests against endpoints, for every frontend alike: the SageMaker runtime API, the Open
/// Inference Protocol over REST, and over gRPC.
///
/// In the Open Inference Protocol a *model* is an endpoint and a *version* one of its variants. Without a
/// version, requests are split across the variants by weight, as SageMaker invocations are.
public struct InferenceService: Sendable {
    let endpoints: EndpointManager

    /// Creates the service.
    public init(endpoints: EndpointManager) {
        self.endpoints = endpoints
    }

    // MARK: SageMaker runtime

    /// The model's answer to one request, and the variant that served it.
    ///
    /// - Parameter targetVariant: the variant to use, or `nil` to split traffic by weight.
    public func invoke(
        endpoint name: String, request: InvocationRequest, targetVariant: String?
    ) async throws(ServalError) -> (response: InvocationResponse, variant: String) {
        try Self.validate(request)
        let runtime = try await endpoints.runtime(for: name)
        let variant = try runtime.variant(target: targetVariant)
        do {
            return (try await variant.invoke(request), variant.spec.variant.name)
        } catch where error.code == .serviceUnavailable {
            // An update may have switched traffic while this request was on its way to a variant it replaced, which
            // refuses requests once it stops: the request goes to the variant that serves now.
            let current = try await endpoints.runtime(for: name)
            let replacement = try current.variant(target: targetVariant)
            guard current !== runtime, replacement !== variant else { throw error }
            return (try await replacement.invoke(request), replacement.spec.variant.name)
        }
    }

    private static func validate(_ request: InvocationRequest) throws(ServalError) {
        guard request.body.readableBytes > 0 else {
            throw ServalError(.validationError, "The request body is empty; send the model's input (for example CSV rows or JSON) as the body.")
        }
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

    // MARK: Open Inference Protocol

    /// The model's answer to a tensor request, and the version (variant) that served it.
    ///
    /// The request is validated against the model's signature before it is queued; a model that is loading or
    /// failed answers ``ServalError/Code/modelNotReady`` or ``ServalError/Code/serviceUnavailable``.
    public func infer(
        model: String, version: String?, request: InferenceRequest
    ) async throws(ServalError) -> (response: InferenceResponse, version: String) {
        let variant = try await self.variant(model: model, version: version)
        let response = try await variant.infer(request)
        return (response, variant.spec.variant.name)
    }

    /// Whether the model (or the given version) can serve now. Throws ``ServalError/Code/notFound`` for an
    /// unknown model or version.
    public func isReady(model: String, version: String?) async throws(ServalError) -> Bool {
        let runtime: EndpointRuntime
        do {
            runtime = try await endpoints.runtime(for: model)
        } catch where error.code == .notFound {
            throw error
        } catch {
            return false  // it exists but is loading, failed or being deleted
        }
        let variants = try Self.select(runtime, version: version)
        for variant in variants where await variant.status().state != .ready { return false }
        return true
    }

    /// The model's versions (its variants), and the signature and largest batch (in rows) of the given version or
    /// the first variant.
    public func metadata(
        model: String, version: String?
    ) async throws(ServalError) -> (versions: [String], signature: ModelSignature, maxBatchSize: Int) {
        let runtime = try await endpoints.runtime(for: model)
        let variant = try Self.select(runtime, version: version)[0]
        guard let signature = await variant.modelSignature() else {
            throw ServalError(
                .modelNotReady, "Model \"\(model)\" is still loading; its metadata is known once it has loaded.",
                retryAfterSeconds: 1)
        }
        return (runtime.variants.map(\.spec.variant.name), signature, variant.spec.variant.batching.maxBatchSize)
    }

    /// The statistics of each version of the model (or of the given one), by version.
    public func statistics(
        model: String, version: String?
    ) async throws(ServalError) -> [(version: String, statistics: InferenceStatistics)] {
        let runtime = try await endpoints.runtime(for: model)
        var result: [(String, InferenceStatistics)] = []
        for variant in try Self.select(runtime, version: version) {
            result.append((variant.spec.variant.name, await variant.inferenceStatistics()))
        }
        return result
    }

    /// The variant that serves a request for `model` at `version`: the named one, or one by weight.
    private func variant(model: String, version: String?) async throws(ServalError) -> VariantRuntime {
        let runtime = try await endpoints.runtime(for: model)
        guard let version, !version.isEmpty else { return try runtime.variant(target: nil) }
        return try Self.select(runtime, version: version)[0]
    }

    /// The named version, or every version when `version` is empty or `nil`.
    private static func select(_ runtime: EndpointRuntime, version: String?) throws(ServalError) -> [VariantRuntime] {
        guard let version, !version.isEmpty else { return runtime.variants }
        guard let variant = runtime.variants.first(where: { $0.spec.variant.name == version }) else {
            throw ServalError(
                .notFound,
                "Model \"\(runtime.name)\" has no version \"\(version)\"; its versions (variants) are \(runtime.variants.map(\.spec.variant.name).joined(separator: ", ")).")
        }
        return [variant]
    }
}
