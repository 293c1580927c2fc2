import AsyncHTTPClient
import Foundation
public import Logging
import NIOCore
import NIOHTTP1
public import ServalCore
public import ServalObjects
import ServalRuntime
public import ServalServices
public import ServalStore
public import ServiceLifecycle
import Synchronization

/// Runs asynchronous invocations: claims queued ones under leases, runs them on their endpoint's variants,
/// writes outputs and failure objects, renews leases while they run, re-queues work whose lease expired,
/// expires work past its TTL, and delivers webhook notifications at least once.
///
/// Everything it does is recorded in the store before it is acted on, so a `kill -9` of Serval or of a worker
/// at any moment loses nothing: an invocation whose runner died is re-queued when its lease ends and run again
/// (up to its `maxAttempts`); one whose output was already committed is marked `Completed` without running
/// again, because outputs are renamed into place whole and their location is fixed by the inference id.
///
/// Async work shares a variant's instances with real-time traffic; it never holds more than
/// `instances × maxConcurrentInvocationsPerInstance` of the variant's queue places, so real-time requests keep
/// finding room.
public final class AsyncDispatcher: Service, Sendable {
    private struct State {
        /// Ids in flight, by endpoint.
        var inFlight: [String: Set<String>] = [:]
        /// Endpoints not to claim for until the given time (their variants were full).
        var holdOff: [String: ContinuousClock.Instant] = [:]
        /// The config of each running endpoint, by the identity of its runtime (a re-created endpoint has a
        /// new runtime, so a stale entry is never used).
        var configs: [String: (runtime: ObjectIdentifier, config: EndpointConfig)] = [:]
        /// Buckets known to exist.
        var buckets: Set<String> = []
        /// When leases were last rescued and TTLs enforced.
        var housekeeping = HousekeepingGate()
        var stopping = false
    }

    private let store: any DeploymentStore & AsyncInvocationStore
    private var queue: any LeasedQueue<AsyncInvocation> { store.asyncInvocationQueue }
    private let objects: any ObjectStore
    private let inference: InferenceService
    private var endpoints: any EndpointRegistry { inference.endpoints }
    private let clock: any WallClock
    private let settings: AsyncSettings
    private let logger: Logger
    private let state = Mutex(State())
    private let work = Wakeup()
    private let outbox = Wakeup()
    private let heartbeat = Wakeup()

    /// Creates the dispatcher.
    public init(
        store: any DeploymentStore & AsyncInvocationStore, objects: any ObjectStore, inference: InferenceService,
        clock: any WallClock, settings: AsyncSettings, logger: Logger
    ) {
        self.store = store
        self.objects = objects
        self.inference = inference
        self.clock = clock
        self.settings = settings
        self.logger = logger
    }

    /// Tells the dispatcher that new work was queued.
    public func workArrived() {
        work.signal()
    }

    /// Tells the webhook deliverer that notifications were recorded.
    public func notificationsArrived() {
        outbox.signal()
    }

    /// How many invocations of each endpoint this process is running now.
    public func inFlightCounts() -> [String: Int] {
        state.withLock { $0.inFlight.mapValues(\.count) }
    }

    // MARK: Service

    /// Claims and runs work until graceful shutdown; then stops claiming and lets running invocations finish.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.renewLeases() }
            group.addTask { await self.deliverNotifications() }
            await withGracefulShutdownHandler {
                while !self.isStopping {
                    await self.dispatch(into: &group)
                    await self.work.wait(upTo: self.settings.pollInterval)
                }
            } onGracefulShutdown: {
                self.state.withLock { $0.stopping = true }
                self.work.signal()
                self.outbox.signal()
                self.heartbeat.signal()
            }
        }
    }

    private var isStopping: Bool { state.withLock(\.stopping) }

    /// One pass over the queue: claim what each endpoint has room for. Once per poll interval (not on every
    /// submission or completion) it also rescues expired leases, ends work past its TTL, and fails the work of
    /// deleted endpoints.
    private func dispatch(into group: inout DiscardingTaskGroup) async {
        let now = clock.now()
        let housekeeping = state.withLock { $0.housekeeping.isDue(every: settings.pollInterval) }
        do {
            if housekeeping {
                let rescued = try await queue.rescueExpired(now: now)
                if rescued > 0 { logger.notice("Re-queued async invocations whose lease expired", metadata: ["count": "\(rescued)"]) }
            }
            for (endpoint, counts) in try await store.queuedAsyncCounts() where counts.queued > 0 {
                try await dispatch(endpoint: endpoint, now: now, housekeeping: housekeeping, into: &group)
            }
        } catch {
            logger.error("Async dispatch failed", metadata: ["error": "\(error)"])
        }
    }

    private func dispatch(
        endpoint name: String, now: Timestamp, housekeeping: Bool, into group: inout DiscardingTaskGroup
    ) async throws {
        let leaseUntil = now.adding(settings.leaseDuration)
        if housekeeping {
            // Work past its TTL ends now, whether or not the endpoint has room.
            let expired = try await queue.claim(
                in: name, owner: settings.owner, limit: 100, now: now, leaseUntil: leaseUntil, overdueOnly: true)
            if !expired.isEmpty {
                let config = try await asyncConfig(endpoint: name)
                for invocation in expired { start(invocation, runtime: nil, config: config, into: &group) }
            }
        }
        guard let runtime = try? await endpoints.runtime(for: name) else {
            // Not running: loading, failed (its work waits, up to its TTL), or deleted (its work fails).
            if housekeeping, try await store.endpoint(named: name) == nil {
                for invocation in try await queue.claim(
                    in: name, owner: settings.owner, limit: 100, now: now, leaseUntil: leaseUntil, overdueOnly: false)
                {
                    start(invocation, runtime: nil, config: nil, into: &group)
                }
            }
            return
        }
        guard let config = try await config(of: name, runtime: runtime) else { return }
        let perInstance = config.asyncInference?.maxConcurrentInvocationsPerInstance ?? 1
        let capacity = config.variants.reduce(0) { $0 + $1.instanceCount } * perInstance
        let room = state.withLock { state -> Int in
            if let until = state.holdOff[name], until > .now { return 0 }
            return capacity - (state.inFlight[name]?.count ?? 0)
        }
        guard room > 0 else { return }
        for invocation in try await queue.claim(
            in: name, owner: settings.owner, limit: room, now: now, leaseUntil: leaseUntil, overdueOnly: false)
        {
            start(invocation, runtime: runtime, config: config.asyncInference, into: &group)
        }
    }

    /// The config of a running endpoint, read from the store once per runtime.
    private func config(of name: String, runtime: EndpointRuntime) async throws -> EndpointConfig? {
        let identity = ObjectIdentifier(runtime)
        if let cached = state.withLock({ $0.configs[name] }), cached.runtime == identity { return cached.config }
        guard let endpoint = try await store.endpoint(named: name),
            let config = try await store.config(of: endpoint)
        else { return nil }
        state.withLock { $0.configs[name] = (identity, config) }
        return config
    }

    private func start(
        _ invocation: AsyncInvocation, runtime: EndpointRuntime?, config: AsyncInferenceConfig?,
        into group: inout DiscardingTaskGroup
    ) {
        state.withLock { _ = $0.inFlight[invocation.endpointName, default: []].insert(invocation.id) }
        group.addTask {
            await self.process(invocation, runtime: runtime, config: config)
            self.state.withLock { state in
                state.inFlight[invocation.endpointName]?.remove(invocation.id)
                if state.inFlight[invocation.endpointName]?.isEmpty == true { state.inFlight[invocation.endpointName] = nil }
            }
            self.work.signal()
            if self.isStopping { self.heartbeat.signal() }  // the lease loop ends once nothing runs
        }
    }

    // MARK: One invocation

    private enum Step {
        /// It ended; `variant` ran it, if any did.
        case finish(AsyncOutcome, variant: String? = nil)
        /// Back to the queue; the attempt counts when the worker crashed under it.
        case requeue(countAttempt: Bool)
    }

    private func process(_ invocation: AsyncInvocation, runtime: EndpointRuntime?, config: AsyncInferenceConfig?) async {
        var logger = self.logger
        logger[metadataKey: "endpoint"] = "\(invocation.endpointName)"
        logger[metadataKey: "inference_id"] = "\(invocation.id)"
        let step = await run(invocation, runtime: runtime, logger: logger)
        let now = clock.now()
        do {
            switch step {
            case .requeue(let countAttempt):
                if !countAttempt {
                    state.withLock { $0.holdOff[invocation.endpointName] = .now + .milliseconds(200) }
                }
                _ = try await queue.release(
                    in: invocation.endpointName, id: invocation.id, owner: settings.owner, now: now,
                    countAttempt: countAttempt)
            case .finish(let outcome, let variant):
                switch outcome {
                case .failed(let reason), .expired(let reason): await writeFailureObject(for: invocation, reason: reason)
                case .completed: break
                }
                let notifications = AsyncNotificationBody.notifications(for: invocation, outcome: outcome, config: config, now: now)
                let finished = try await queue.finish(
                    in: invocation.endpointName, id: invocation.id, owner: settings.owner,
                    completion: AsyncInvocationEnd(outcome, variant: variant, notifications: notifications), now: now)
                if !finished {
                    logger.warning("Lost the lease of an async invocation before recording its end; another attempt owns it")
                }
                if !notifications.isEmpty { outbox.signal() }
            }
        } catch {
            logger.error("Could not record the end of an async invocation; its lease will expire and it will be retried", metadata: ["error": "\(error)"])
        }
    }

    /// Runs one claimed invocation and says how it ended.
    private func run(_ invocation: AsyncInvocation, runtime: EndpointRuntime?, logger: Logger) async -> Step {
        if clock.now() > invocation.expiresAt {
            return .finish(.expired(reason: "It waited in the queue longer than its TTL (until \(invocation.expiresAt.iso8601)) without starting."))
        }
        guard let runtime else {
            return .finish(.failed(reason: "Endpoint \"\(invocation.endpointName)\" was deleted before the invocation ran."))
        }
        if invocation.attempts > invocation.maxAttempts {
            return .finish(
                .failed(reason: "Serval or its model worker stopped while running it, \(invocation.maxAttempts) times (maxAttempts); it is not tried again."))
        }
        var variant: String?
        do {
            let output = try ObjectLocation(uri: invocation.outputLocation, field: "outputLocation")
            if invocation.attempts > 1, let existing = try await objects.head(output) {
                // A previous attempt committed the output, then died before recording it.
                return .finish(.completed(outputContentType: existing.contentType))
            }
            // The variant is chosen here, by weight, so that a failure is recorded against it too.
            variant = try runtime.variant(target: nil).name
            let contentType = try await execute(invocation, on: variant!, output: output)
            return .finish(.completed(outputContentType: contentType), variant: variant)
        } catch {
            let error = (error as? ObjectStoreError)?.servalError ?? error
            guard let error = error as? ServalError else {
                logger.error("Async invocation failed inside Serval", metadata: ["error": "\(error)"])
                return .finish(.failed(reason: "Serval could not run it: \(error)"), variant: variant)
            }
            switch error.code {
            case .overloaded, .modelNotReady:
                return .requeue(countAttempt: false)
            case .serviceUnavailable where invocation.attempts < invocation.maxAttempts:
                logger.warning("Async invocation interrupted; it goes back to the queue", metadata: ["error": "\(error.message)"])
                return .requeue(countAttempt: true)
            default:
                return .finish(.failed(reason: error.message), variant: variant)
            }
        }
    }

    /// Reads the input, runs the model, commits the output; returns the output's content type.
    private func execute(_ invocation: AsyncInvocation, on variant: String, output: ObjectLocation) async throws -> String {
        let context = InferenceContext(
            path: .async, timeoutSeconds: invocation.invocationTimeoutSeconds, inferenceID: invocation.id)
        try await ensureBuckets(of: [invocation.outputLocation])
        let body: ByteBuffer
        if let uri = invocation.inputLocation {
            let input = try ObjectLocation(uri: uri, field: "inputLocation")
            guard let info = try await objects.head(input) else {
                throw ServalError(.validationError, "The input object \(uri) no longer exists; it was deleted after the invocation was accepted.")
            }
            if info.size > settings.inMemoryInputLimit, let path = try await objects.localPath(of: input) {
                let temporary = try await objects.makeTemporaryFile()
                let (response, _) = try await inference.invoke(
                    endpoint: invocation.endpointName,
                    file: FileInvocationRequest(
                        inputPath: path, outputPath: temporary, contentType: invocation.contentType,
                        accept: invocation.accept, customAttributes: invocation.customAttributes),
                    targetVariant: variant, context: context)
                _ = try await objects.commit(temporaryFile: temporary, to: output, contentType: response.contentType)
                return response.contentType
            }
            body = try await objects.readAll(input, upTo: Int(AsyncLimits.maxInputBytes))
        } else {
            let inline = try await store.asyncInvocationInlineBody(endpoint: invocation.endpointName, id: invocation.id) ?? []
            body = ByteBuffer(bytes: inline)
        }
        let (response, _) = try await inference.invoke(
            endpoint: invocation.endpointName,
            request: InvocationRequest(
                body: body, contentType: invocation.contentType, accept: invocation.accept,
                customAttributes: invocation.customAttributes),
            targetVariant: variant, context: context)
        _ = try await objects.put(output, bytes: response.body, contentType: response.contentType)
        return response.contentType
    }

    /// Writes the failure object (the reason, as text); a failure to write it is logged, not fatal.
    func writeFailureObject(for invocation: AsyncInvocation, reason: String) async {
        do {
            let location = try ObjectLocation(uri: invocation.failureLocation, field: "failureLocation")
            try await ensureBuckets(of: [invocation.failureLocation])
            _ = try await objects.put(location, bytes: ByteBuffer(string: reason + "\n"), contentType: "text/plain; charset=utf-8")
        } catch {
            logger.error(
                "Could not write the failure object of an async invocation",
                metadata: ["endpoint": "\(invocation.endpointName)", "inference_id": "\(invocation.id)", "error": "\(error)"])
        }
    }

    /// Creates the bucket of each location unless this process already knows it exists, so that clients polling
    /// for an output find the bucket there from the first submission on.
    func ensureBuckets(of locations: [String]) async throws {
        for uri in locations {
            let bucket = try ObjectLocation(uri: uri, field: "location").bucket
            guard !state.withLock({ $0.buckets.contains(bucket) }) else { continue }
            try await objects.createBucket(bucket)
            state.withLock { _ = $0.buckets.insert(bucket) }
        }
    }

    /// The async section of the endpoint's config, if the endpoint and its config still exist.
    func asyncConfig(endpoint: String) async throws -> AsyncInferenceConfig? {
        guard let stored = try await store.endpoint(named: endpoint),
            let config = try await store.config(of: stored)
        else { return nil }
        return config.asyncInference
    }

    // MARK: Leases

    /// Renews the leases of running invocations every third of the lease duration.
    private func renewLeases() async {
        await renewLeasesUntilStopped(
            heartbeat: heartbeat, leaseDuration: settings.leaseDuration, clock: clock, logger: logger,
            what: "async invocations", held: { state.withLock { ($0.inFlight.mapValues { Array($0) }, $0.stopping) } }
        ) { endpoint, ids, until in
            try await queue.renew(in: endpoint, ids: ids, owner: settings.owner, until: until).count
        }
    }

    // MARK: Webhooks

    /// Delivers due notifications until shutdown, retrying failures with exponential backoff.
    private func deliverNotifications() async {
        while !isStopping {
            var wait = settings.pollInterval
            do {
                let now = clock.now()
                let due = try await store.dueAsyncNotifications(now: now, limit: 32)
                await withDiscardingTaskGroup { group in
                    for notification in due {
                        group.addTask { await self.deliver(notification) }
                    }
                }
                if due.count == 32 { continue }
                if let next = try await store.nextAsyncNotificationDue() {
                    let milliseconds = max(0, next.millisecondsSinceEpoch - clock.now().millisecondsSinceEpoch)
                    wait = min(wait, .milliseconds(milliseconds))
                }
            } catch {
                logger.error("Webhook delivery failed", metadata: ["error": "\(error)"])
            }
            await outbox.wait(upTo: wait)
        }
    }

    private func deliver(_ notification: AsyncNotification) async {
        var logger = self.logger
        logger[metadataKey: "endpoint"] = "\(notification.endpointName)"
        logger[metadataKey: "inference_id"] = "\(notification.inferenceId)"
        do {
            // Checked again now, with fresh name resolution: the allow-list may have changed, or the name may
            // resolve elsewhere. The delivery connects to an address this check allowed.
            let problem: String
            switch Result(catching: { () throws(ServalError) in try settings.webhookPolicy.target(for: notification.url, field: "webhook") }) {
            case .success(let target):
                guard let failure = await post(notification, to: target) else {
                    try await store.asyncNotificationDelivered(sequence: notification.sequence)
                    return
                }
                problem = failure
            case .failure(let refusal):
                problem = "refused by the webhook allow-list: \(refusal.message)"
            }
            let attempts = notification.attempts + 1
            if attempts >= settings.webhookMaxAttempts {
                logger.error("Webhook not delivered after \(attempts) attempts; giving up", metadata: ["error": "\(problem)"])
                try await store.asyncNotificationDelivered(sequence: notification.sequence)
                return
            }
            let delay = min(settings.webhookMaxBackoff, settings.webhookInitialBackoff * (1 << min(attempts - 1, 20)))
            logger.warning("Webhook delivery failed; retrying", metadata: ["error": "\(problem)", "retry_in": "\(delay)"])
            try await store.asyncNotificationFailed(
                sequence: notification.sequence, nextAttemptAt: clock.now().adding(delay), reason: problem)
        } catch {
            logger.error("Could not record a webhook delivery", metadata: ["error": "\(error)"])
        }
    }

    /// POSTs a notification to the address `target` was checked for (the request keeps the URL's host in `Host`
    /// and TLS); returns `nil` on a 2xx answer, or what went wrong. Redirects are not followed: a 3xx is a failed
    /// attempt whose reason names its `Location`.
    private func post(_ notification: AsyncNotification, to target: WebhookTarget) async -> String? {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        if !target.isAddressLiteral {
            // Keyed by the host as the URL writes it and lowercased (the two may be one key).
            configuration.dnsOverride = Dictionary(
                [(target.host, target.connectAddress), (target.host.lowercased(), target.connectAddress)], uniquingKeysWith: { first, _ in first })
        }
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        var request = HTTPClientRequest(url: notification.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Serval/\(servalVersion)")
        request.headers.add(name: "X-Serval-Inference-Id", value: notification.inferenceId)
        request.headers.add(name: "X-Serval-Delivery-Attempt", value: "\(notification.attempts + 1)")
        if let signature = notification.signature { request.headers.add(name: "X-Serval-Signature", value: signature) }
        request.body = .bytes(ByteBuffer(bytes: notification.body))
        let problem: String?
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(Int64(settings.webhookTimeout.components.seconds) * 1_000_000_000))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            problem = WebhookAnswer(status: Int(response.status.code), location: response.headers.first(name: "Location")).problem
        } catch {
            problem = "\(error) (connecting to \(target.connectAddress))"
        }
        try? await client.shutdown()
        return problem
    }
}

/// What a webhook receiver's answer means for the delivery.
struct WebhookAnswer: Equatable {
    /// The HTTP status.
    var status: Int
    /// The `Location` header, if any.
    var location: String?

    /// `nil` for a 2xx answer (delivered); otherwise why the attempt failed. A redirect is never followed (its
    /// target was not checked against the allow-list), so it fails the attempt with the `Location` it named.
    var problem: String? {
        switch status {
        case 200..<300:
            return nil
        case 300..<400:
            let target = location.map { "to \"\($0.prefix(512))\"" } ?? "without a Location"
            return "the receiver answered \(status), a redirect \(target); webhooks do not follow redirects, so configure the final URL"
        default:
            return "the receiver answered \(status)"
        }
    }
}

extension Timestamp {
    /// This time plus `duration`.
    func adding(_ duration: Duration) -> Timestamp {
        let (seconds, attoseconds) = duration.components
        return Timestamp(millisecondsSinceEpoch: millisecondsSinceEpoch + seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}
