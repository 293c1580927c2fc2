import NIOCore
public import ServalCore
import ServalRuntime

/// How a request reached the inference entry: what the entry needs beyond the request itself.
public struct InferenceContext: Sendable {
    /// The way it came in, as metrics label it.
    public var path: InferencePath
    /// The request's own timeout in seconds (asynchronous invocations, transform jobs), which also lets its answer
    /// exceed the real-time 6 MB; `nil` for a real-time request under the variant's `invocationTimeoutSeconds`.
    public var timeoutSeconds: Int?
    /// The caller's id of this inference (SageMaker's `X-Amzn-SageMaker-Inference-Id`, an async invocation's id, an
    /// Open Inference Protocol request's `id`), recorded by data capture.
    public var inferenceID: String?

    /// Creates a context.
    public init(path: InferencePath, timeoutSeconds: Int? = nil, inferenceID: String? = nil) {
        self.path = path
        self.timeoutSeconds = timeoutSeconds
        self.inferenceID = inferenceID
    }
}

/// The one way into a model, for every path alike: the SageMaker runtime API, the Open Inference Protocol over
/// REST and gRPC, asynchronous invocations and transform jobs' payloads.
///
/// What every invocation needs lives here once: checking the request, the retry when an endpoint update retired the
/// variant a request was sent to, telling the variant's observer how it ended (metrics count each invocation once,
/// here), and data capture.
///
/// In the Open Inference Protocol a *model* is an endpoint and a *version* one of its variants. Without a
/// version, requests are split across the variants by weight, as SageMaker invocations are.
public struct InferenceService: Sendable {
    /// The endpoints it serves.
    public let endpoints: any EndpointRegistry
    /// Where captured invocations go; `nil` to capture nothing.
    let capture: DataCaptureWriter?

    /// Creates the service.
    ///
    /// - Parameter capture: the writer of endpoints' data capture; without one, capture configs are not acted on.
    public init(endpoints: any EndpointRegistry, capture: DataCaptureWriter? = nil) {
        self.endpoints = endpoints
        self.capture = capture
    }

    /// What became of the endpoint's captured records since Serval started; `nil` before its first one, or without
    /// a capture writer.
    public func captureStatus(endpoint: String) -> DataCaptureStatus? {
        capture?.status(endpoint: endpoint)
    }

    // MARK: SageMaker-style payloads

    /// The model's answer to one request, and the variant that served it.
    ///
    /// - Parameter targetVariant: the variant to use, or `nil` to split traffic by weight.
    public func invoke(
        endpoint name: String, request: InvocationRequest, targetVariant: String?,
        context: InferenceContext = InferenceContext(path: .sageMaker)
    ) async throws(ServalError) -> (response: InvocationResponse, variant: String) {
        let served = try await onEndpoint(name, targetVariant: targetVariant, context: context) {
            variant throws(ServalError) in
            try Self.validate(request, timeoutSeconds: context.timeoutSeconds)
            return try await variant.invoke(request, timeoutSeconds: context.timeoutSeconds)
        }
        captureTicket(served.capture, context)?.record(
            input: request.body, inputType: request.contentType, output: served.response.body,
            outputType: served.response.contentType)
        return (served.response, served.variant.name)
    }

    /// Runs a request whose body is a file and whose answer goes to a file (a large asynchronous input), and
    /// returns the answer's content type and the variant that served it. See ``VariantServing/invoke(file:timeoutSeconds:)``.
    public func invoke(
        endpoint name: String, file request: FileInvocationRequest, targetVariant: String?, context: InferenceContext
    ) async throws(ServalError) -> (response: FileInvocationResponse, variant: String) {
        let served = try await onEndpoint(name, targetVariant: targetVariant, context: context) {
            variant throws(ServalError) in try await variant.invoke(file: request, timeoutSeconds: context.timeoutSeconds)
        }
        await captureTicket(served.capture, context)?.record(
            inputFile: request.inputPath, inputType: request.contentType, outputFile: request.outputPath,
            outputType: served.response.contentType)
        return (served.response, served.variant.name)
    }

    /// The model's answer to one request on a variant its caller owns (a transform job's workers).
    public func invoke(
        _ request: InvocationRequest, on variant: any VariantServing, context: InferenceContext
    ) async throws(ServalError) -> InvocationResponse {
        try await observed(variant, context) { () throws(ServalError) in
            try Self.validate(request, timeoutSeconds: context.timeoutSeconds)
            return try await variant.invoke(request, timeoutSeconds: context.timeoutSeconds)
        }
    }

    /// Runs `call` on the endpoint's variant for `targetVariant`, observed; when an update retired that variant
    /// while the request was on its way (it refuses requests once it stops), once more on the variant that serves now.
    /// Returns the answer, the variant that gave it, and that variant's capture stream when the endpoint captures.
    private func onEndpoint<Answer>(
        _ name: String, targetVariant: String?, context: InferenceContext,
        _ call: (any VariantServing) async throws(ServalError) -> Answer
    ) async throws(ServalError) -> (response: Answer, variant: any VariantServing, capture: CaptureStream?) {
        let runtime = try await endpoints.runtime(for: name)
        let variant = try runtime.variant(target: targetVariant)
        let started = ContinuousClock.now
        do {
            let answer = try await call(variant)
            variant.observer.invocationEnded(path: context.path, duration: .now - started, failure: nil)
            return (answer, variant, runtime.captureStream(of: variant))
        } catch where error.code == .serviceUnavailable {
            let current = try? await endpoints.runtime(for: name)
            guard let current, current !== runtime, let replacement = try? current.variant(target: targetVariant),
                replacement !== variant
            else {
                variant.observer.invocationEnded(path: context.path, duration: .now - started, failure: .init(error.code))
                throw error
            }
            let answer = try await observed(replacement, context, since: started) { () throws(ServalError) in
                try await call(replacement)
            }
            return (answer, replacement, current.captureStream(of: replacement))
        } catch {
            variant.observer.invocationEnded(path: context.path, duration: .now - started, failure: .init(error.code))
            throw error
        }
    }

    /// A ticket to capture this invocation, when its variant captures and the sampling draw picks it.
    private func captureTicket(_ stream: CaptureStream?, _ context: InferenceContext) -> CaptureTicket? {
        guard let stream, let capture else { return nil }
        return capture.ticket(stream, inferenceID: context.inferenceID)
    }

    /// Runs `call` and tells `variant`'s observer how it ended.
    private func observed<Answer>(
        _ variant: any VariantServing, _ context: InferenceContext, since started: ContinuousClock.Instant = .now,
        _ call: () async throws(ServalError) -> Answer
    ) async throws(ServalError) -> Answer {
        do {
            let answer = try await call()
            variant.observer.invocationEnded(path: context.path, duration: .now - started, failure: nil)
            return answer
        } catch {
            variant.observer.invocationEnded(path: context.path, duration: .now - started, failure: .init(error.code))
            throw error
        }
    }

    /// Checks a request against the real-time limits. Asynchronous invocations and transform payloads, which bring
    /// their own timeout, were checked against their own limits when they were accepted.
    private static func validate(_ request: InvocationRequest, timeoutSeconds: Int?) throws(ServalError) {
        guard timeoutSeconds == nil else { return }
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

    /// The model's answer to a tensor request, the version (variant) that served it, and a ticket when the
    /// invocation is to be captured: the frontend hands it the request and the answer as they went over the wire.
    ///
    /// The request is validated against the model's signature before it is queued; a model that is loading or
    /// failed answers ``ServalError/Code/modelNotReady`` or ``ServalError/Code/serviceUnavailable``.
    public func infer(
        model: String, version: String?, request: InferenceRequest, context: InferenceContext
    ) async throws(ServalError) -> (response: InferenceResponse, version: String, capture: CaptureTicket?) {
        guard let version, !version.isEmpty else {
            let served = try await onEndpoint(model, targetVariant: nil, context: context) {
                variant throws(ServalError) in try await variant.infer(request)
            }
            return (served.response, served.variant.name, captureTicket(served.capture, context))
        }
        let runtime = try await endpoints.runtime(for: model)
        let variant = try Self.select(runtime, version: version)[0]
        let response = try await observed(variant, context) { () throws(ServalError) in try await variant.infer(request) }
        return (response, variant.name, captureTicket(runtime.captureStream(of: variant), context))
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
        return (runtime.variants.map(\.name), signature, variant.spec.variant.batching.maxBatchSize)
    }

    /// The statistics of each version of the model (or of the given one), by version.
    public func statistics(
        model: String, version: String?
    ) async throws(ServalError) -> [(version: String, statistics: InferenceStatistics)] {
        let runtime = try await endpoints.runtime(for: model)
        var result: [(String, InferenceStatistics)] = []
        for variant in try Self.select(runtime, version: version) {
            result.append((variant.name, await variant.inferenceStatistics()))
        }
        return result
    }

    /// The named version, or every version when `version` is empty or `nil`.
    private static func select(_ runtime: EndpointRuntime, version: String?) throws(ServalError) -> [any VariantServing] {
        guard let version, !version.isEmpty else { return runtime.variants }
        guard let variant = runtime.variants.first(where: { $0.name == version }) else {
            throw ServalError(
                .notFound,
                "Model \"\(runtime.name)\" has no version \"\(version)\"; its versions (variants) are \(runtime.variants.map(\.name).joined(separator: ", ")).")
        }
        return [variant]
    }
}
