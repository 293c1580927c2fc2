import Crypto
import Foundation
public import NIOCore
public import ServalCore
public import ServalObjects
public import ServalStore

/// What a caller submits for asynchronous inference (SageMaker's InvokeEndpointAsync, CONTRACTS.md §1).
public struct AsyncSubmission: Sendable {
    /// `s3://bucket/key` of the input in Serval's object store; `nil` when the body is inline.
    public var inputLocation: String?
    /// The inline body (at most 128,000 bytes), when there is no input location.
    public var inlineBody: ByteBuffer?
    /// The input's content type; empty when the call named none (the input object's own content type is then
    /// used, see ``AsyncInvocationService/submit(endpoint:_:)``).
    public var contentType: String
    /// The content type the caller accepts.
    public var accept: String
    /// Passed to the model unchanged.
    public var customAttributes: String
    /// The caller's id; the same id twice on one endpoint is one invocation.
    public var inferenceId: String?
    /// Queue TTL in seconds (60...21600); the config's default when `nil`.
    public var requestTTLSeconds: Int?
    /// Invocation timeout in seconds (1...3600); the config's default when `nil`.
    public var invocationTimeoutSeconds: Int?
    /// A path appended to the output prefix (SageMaker's S3OutputPathExtension).
    public var outputPathExtension: String?
    /// The output object's name instead of `<inference id>.out` (SageMaker's Filename).
    public var filename: String?

    /// Creates a submission.
    public init(
        inputLocation: String? = nil, inlineBody: ByteBuffer? = nil, contentType: String = "", accept: String = "",
        customAttributes: String = "", inferenceId: String? = nil, requestTTLSeconds: Int? = nil,
        invocationTimeoutSeconds: Int? = nil, outputPathExtension: String? = nil, filename: String? = nil
    ) {
        self.inputLocation = inputLocation
        self.inlineBody = inlineBody
        self.contentType = contentType
        self.accept = accept
        self.customAttributes = customAttributes
        self.inferenceId = inferenceId
        self.requestTTLSeconds = requestTTLSeconds
        self.invocationTimeoutSeconds = invocationTimeoutSeconds
        self.outputPathExtension = outputPathExtension
        self.filename = filename
    }
}

/// Submitting, inspecting, fetching and cancelling asynchronous invocations, for every frontend.
///
/// A submission is committed to the store before it is acknowledged; the ``AsyncDispatcher`` runs it.
public struct AsyncInvocationService: Sendable {
    let store: any DeploymentStore & AsyncInvocationStore
    let objects: any ObjectStore
    let dispatcher: AsyncDispatcher
    let clock: any WallClock

    /// Creates the service.
    public init(
        store: any DeploymentStore & AsyncInvocationStore, objects: any ObjectStore, dispatcher: AsyncDispatcher,
        clock: any WallClock
    ) {
        self.store = store
        self.objects = objects
        self.dispatcher = dispatcher
        self.clock = clock
    }

    /// Validates and commits a submission; returns the invocation and whether it is new (`false` when the
    /// endpoint already had an invocation with the caller's id, which is then returned unchanged).
    ///
    /// A submission that names no content type takes the input object's stored one (the SageMaker SDK's
    /// `AsyncPredictor` sets it on the upload, not on the call); an object stored without one
    /// (`application/octet-stream`) leaves it empty, which the model reads as its default.
    public func submit(
        endpoint name: String, _ submission: AsyncSubmission
    ) async throws -> (invocation: AsyncInvocation, created: Bool) {
        guard let endpoint = try await store.endpoint(named: name) else {
            throw ServalError(.notFound, "Endpoint \"\(name)\" does not exist; create it first or check the name.")
        }
        guard let config = try await store.config(of: endpoint) else {
            throw ServalError.notFound("Endpoint config", endpoint.configName)
        }
        guard let settings = config.asyncInference else {
            throw ServalError(
                .validationError,
                "Endpoint \"\(name)\" does not take asynchronous invocations: its config \"\(config.name)\" has no asyncInference section. Deploy it with --async-output s3://bucket/prefix.")
        }
        let id = submission.inferenceId ?? UUID().uuidString.lowercased()
        if let given = submission.inferenceId {
            try AsyncLimits.validate(inferenceId: given, field: "X-Amzn-SageMaker-Inference-Id")
        }
        let ttl = submission.requestTTLSeconds ?? settings.defaultRequestTTLSeconds
        guard AsyncLimits.requestTTLSeconds.contains(ttl) else {
            throw ServalError.invalid("X-Amzn-SageMaker-RequestTTLSeconds", "is \(ttl); it must be between 60 and 21600.")
        }
        let timeout = submission.invocationTimeoutSeconds ?? settings.defaultInvocationTimeoutSeconds
        guard AsyncLimits.invocationTimeoutSeconds.contains(timeout) else {
            throw ServalError.invalid(
                "X-Amzn-SageMaker-InvocationTimeoutSeconds", "is \(timeout); it must be between 1 and 3600.")
        }
        try Self.checkHeaders(submission)

        var inlineBody: [UInt8]?
        var contentType = submission.contentType
        let inputLocation: String?
        if let uri = submission.inputLocation {
            let location = try ObjectLocation(uri: uri, field: "X-Amzn-SageMaker-InputLocation")
            guard let info = try await Self.head(location, in: objects) else {
                throw ServalError.invalid(
                    "X-Amzn-SageMaker-InputLocation",
                    "the object \(uri) does not exist; upload it first (serval objects put FILE \(uri), or any S3 client).")
            }
            guard info.size <= AsyncLimits.maxInputBytes else {
                throw ServalError(
                    .payloadTooLarge,
                    "The input \(uri) is \(info.size) bytes; asynchronous invocations take at most \(AsyncLimits.maxInputBytes).")
            }
            if contentType.isEmpty, info.contentType != Self.unspecifiedContentType {
                contentType = info.contentType
            }
            inputLocation = location.uri
        } else if let body = submission.inlineBody, body.readableBytes > 0 {
            guard body.readableBytes <= AsyncLimits.maxInlineBodyBytes else {
                throw ServalError(
                    .payloadTooLarge,
                    "The inline body is \(body.readableBytes) bytes; at most \(AsyncLimits.maxInlineBodyBytes) may be sent inline. Upload the input to the object store and pass X-Amzn-SageMaker-InputLocation.")
            }
            inlineBody = Array(buffer: body)
            inputLocation = nil
        } else {
            throw ServalError.invalid(
                "X-Amzn-SageMaker-InputLocation",
                "is required: name the input object (s3://bucket/key), or send the input (at most 128,000 bytes) as the body.")
        }

        let output = try Self.outputLocation(
            settings.outputPath, id: id, extension: submission.outputPathExtension, filename: submission.filename,
            config: config.name)
        let failure = try Self.failureLocation(settings.effectiveFailurePath, id: id, config: config.name)
        let now = clock.now()
        let invocation = AsyncInvocation(
            id: id, endpointName: name, inputLocation: inputLocation, contentType: contentType,
            accept: submission.accept, customAttributes: submission.customAttributes, outputLocation: output,
            failureLocation: failure, maxAttempts: settings.maxAttempts, invocationTimeoutSeconds: timeout,
            createdAt: now, updatedAt: now, expiresAt: Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch + Int64(ttl) * 1000),
            inlineBodySHA256: inlineBody.map(Self.sha256))
        try await dispatcher.ensureBuckets(of: [output, failure])
        let result = try await store.enqueueAsyncInvocation(invocation, inlineBody: inlineBody)
        if result.created {
            dispatcher.workArrived()
            return result
        }
        var existing = result.invocation
        if existing.inputLocation == nil, existing.inlineBodySHA256 == nil,
            let stored = try await store.asyncInvocationInlineBody(endpoint: name, id: id)
        {
            existing.inlineBodySHA256 = Self.sha256(stored)  // accepted before digests were recorded
        }
        if let conflict = Self.conflict(existing: existing, submitted: invocation) {
            throw ServalError(
                .conflict,
                "Endpoint \"\(name)\" already has an invocation with id \"\(id)\" \(conflict); an id names one invocation and its input. Send X-Amzn-SageMaker-Inference-Id with a new id for new input.")
        }
        return result
    }

    /// Why `existing`, the endpoint's invocation with the submitted id, is not the same submission as
    /// `submitted`: another input location, another inline body (by digest), or another output location. `nil`
    /// when it is the same, and a resubmission is answered with the existing invocation.
    static func conflict(existing: AsyncInvocation, submitted: AsyncInvocation) -> String? {
        if existing.inputLocation != submitted.inputLocation {
            switch (existing.inputLocation, submitted.inputLocation) {
            case (let first?, _): return "whose input is \(first)"
            default: return "whose input was sent inline, not as an input location"
            }
        }
        if existing.inlineBodySHA256 != submitted.inlineBodySHA256 {
            return "that was submitted with a different inline body"
        }
        if existing.outputLocation != submitted.outputLocation {
            return "whose output goes to \(existing.outputLocation)"
        }
        return nil
    }

    /// The lowercase hex SHA-256 of `bytes`.
    static func sha256(_ bytes: [UInt8]) -> String {
        hexString(SHA256.hash(data: bytes))
    }

    /// The invocation.
    public func get(endpoint: String, id: String) async throws -> AsyncInvocation {
        guard let invocation = try await store.asyncInvocation(endpoint: endpoint, id: id) else {
            if try await store.endpoint(named: endpoint) == nil {
                throw ServalError(.notFound, "Endpoint \"\(endpoint)\" does not exist; check the name.")
            }
            throw ServalError.notFound("Invocation", id, hint: "Endpoint \"\(endpoint)\" has no invocation with this id.")
        }
        return invocation
    }

    /// A page of the endpoint's invocations, newest first.
    public func list(endpoint: String, filter: AsyncInvocationFilter) async throws -> (invocations: [AsyncInvocation], nextToken: String?) {
        guard (1...1000).contains(filter.limit) else { throw ServalError.invalid("limit", "must be between 1 and 1000.") }
        return try await store.asyncInvocations(endpoint: endpoint, filter: filter)
    }

    /// A completed invocation's output, streamed from the object store.
    public func result(endpoint: String, id: String) async throws -> (invocation: AsyncInvocation, object: ObjectReader) {
        let invocation = try await get(endpoint: endpoint, id: id)
        switch invocation.status {
        case .completed:
            let location = try ObjectLocation(uri: invocation.outputLocation, field: "outputLocation")
            do {
                return (invocation, try await objects.read(location, range: nil))
            } catch ObjectStoreError.noSuchKey(_), ObjectStoreError.noSuchBucket(_) {
                throw ServalError(.notFound, "The output \(invocation.outputLocation) of invocation \"\(id)\" is gone; it was deleted from the object store.")
            }
        case .queued, .inProgress:
            throw ServalError(.conflict, "Invocation \"\(id)\" is \(invocation.status.rawValue); its result is available once it is Completed.")
        case .failed, .expired:
            throw ServalError(
                .conflict,
                "Invocation \"\(id)\" is \(invocation.status.rawValue) and has no result: \(invocation.failureReason ?? "no reason recorded"). Details are in \(invocation.failureLocation).")
        }
    }

    /// The endpoint's async queue, when its config takes async invocations (`nil` otherwise).
    public func queueDepth(endpoint name: String) async -> AsyncQueueDepth? {
        guard let endpoint = try? await store.endpoint(named: name),
            let config = try? await store.config(of: endpoint), config.asyncInference != nil
        else { return nil }
        return (try? await store.queuedAsyncCounts())?[name] ?? AsyncQueueDepth(queued: 0, inProgress: 0)
    }

    /// The async queue of every endpoint that has queued or running invocations.
    public func queueDepths() async throws -> [String: AsyncQueueDepth] {
        try await store.queuedAsyncCounts()
    }

    /// Cancels a queued invocation: it ends `Failed` with the reason "cancelled", its failure object is
    /// written and the error webhook notified.
    public func cancel(endpoint: String, id: String) async throws -> AsyncInvocation {
        _ = try await get(endpoint: endpoint, id: id)
        let config = try await dispatcher.asyncConfig(endpoint: endpoint)
        let reason = "Cancelled: a DELETE request cancelled it while it was queued."
        let now = clock.now()
        guard let current = try await store.asyncInvocation(endpoint: endpoint, id: id) else {
            throw ServalError.notFound("Invocation", id)
        }
        let notifications = AsyncNotificationBody.notifications(
            for: current, outcome: .failed(reason: reason), config: config, now: now)
        guard let cancelled = try await store.cancelAsyncInvocation(
            endpoint: endpoint, id: id, reason: reason, now: now, notifications: notifications)
        else {
            throw ServalError.notFound("Invocation", id)
        }
        await dispatcher.writeFailureObject(for: cancelled, reason: reason)
        dispatcher.notificationsArrived()
        return cancelled
    }

    /// The content type the object store records for an object written without one.
    static let unspecifiedContentType = "application/octet-stream"

    /// The object's description, or `nil` when it or its bucket does not exist.
    private static func head(_ location: ObjectLocation, in objects: any ObjectStore) async throws -> ObjectInfo? {
        do {
            return try await objects.head(location)
        } catch ObjectStoreError.noSuchBucket(_) {
            return nil
        }
    }

    private static func checkHeaders(_ submission: AsyncSubmission) throws(ServalError) {
        guard submission.customAttributes.utf8.count <= InvocationLimits.maxCustomAttributesLength else {
            throw .invalid("X-Amzn-SageMaker-Custom-Attributes", "is longer than 1024 characters.")
        }
        guard submission.contentType.utf8.count <= 1024 else { throw .invalid("X-Amzn-SageMaker-Content-Type", "is longer than 1024 characters.") }
        guard submission.accept.utf8.count <= 1024 else { throw .invalid("X-Amzn-SageMaker-Accept", "is longer than 1024 characters.") }
    }

    /// `<output path>[/<extension>]/<filename or id.out>`, checked as an object location. A problem is blamed
    /// on what caused it: the config's output path (`config` names the config), or the header that was sent.
    static func outputLocation(
        _ path: String, id: String, extension: String?, filename: String?, config: String
    ) throws(ServalError) -> String {
        try ObjectLocation.validate(prefixURI: path, field: "asyncInference.outputPath of endpoint config \"\(config)\"")
        var name = "\(id).out"
        var field = "asyncInference.outputPath of endpoint config \"\(config)\""
        if let filename {
            guard !filename.isEmpty, !filename.contains("/"), filename != ".", filename != ".." else {
                throw .invalid("X-Amzn-SageMaker-Filename", "\"\(filename)\" must be a file name without \"/\".")
            }
            name = filename
            field = "X-Amzn-SageMaker-Filename"
        }
        var prefix = path
        if let pathExtension = `extension`?.trimmingCharacters(in: CharacterSet(charactersIn: "/")), !pathExtension.isEmpty {
            prefix = join(prefix, pathExtension)
            field = "X-Amzn-SageMaker-S3OutputPathExtension"
        }
        return try join(prefix, name, field: field)
    }

    /// `<failure path>/<id>-error.out`, checked as an object location.
    static func failureLocation(_ path: String, id: String, config: String) throws(ServalError) -> String {
        let field = "asyncInference.failurePath of endpoint config \"\(config)\""
        try ObjectLocation.validate(prefixURI: path, field: field)
        return try join(path, "\(id)-error.out", field: field)
    }

    private static func join(_ prefix: String, _ name: String) -> String {
        prefix.hasSuffix("/") ? prefix + name : prefix + "/" + name
    }

    private static func join(_ prefix: String, _ name: String, field: String) throws(ServalError) -> String {
        let uri = join(prefix, name)
        return try ObjectLocation(uri: uri, field: field).uri
    }
}

/// `bytes` as lowercase hex.
func hexString(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}
