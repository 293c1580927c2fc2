import Foundation
public import Logging
import NIOCore
public import ServalArtifacts
public import ServalCore
public import ServalRuntime
public import ServalStore
public import ServiceLifecycle
import Synchronization

/// Creates, runs, updates, restores and deletes endpoints; a `Service` whose `run()` hosts every endpoint's
/// workers.
///
/// Endpoint status lives in the store; running endpoints live here. Creating an endpoint records it as
/// `Creating` and starts its variants; when every instance has loaded the model it becomes `InService`, or
/// `Failed` with the reason. Updating an endpoint (a new config, or new instance counts) records it as `Updating`
/// and starts the new variants beside the running ones, which keep serving; once every new variant is ready,
/// traffic switches to them in one step and the replaced variants drain and stop. If a new variant fails, it is
/// stopped and the endpoint stays `InService` on what it ran before, with the reason in `failureReason`. Weight
/// changes alone switch at once. On start, endpoints that were `InService`, `Creating` or `Updating` are brought
/// back (an interrupted config update starts again), and deletions interrupted by a crash are finished. On
/// graceful shutdown every endpoint drains and its workers stop.
public final class EndpointManager: Service, Sendable {
    private let store: any MetadataStore
    private let packages: PackageStore
    private let variants: VariantFactory
    private let clock: any WallClock
    private let logger: Logger
    private let registry = Mutex<Registry>(Registry())
    private let tokens = Atomic<UInt64>(0)
    private let work: AsyncStream<@Sendable () async -> Void>.Continuation
    private let workStream: AsyncStream<@Sendable () async -> Void>

    /// The running endpoints and the updates in progress.
    private struct Registry {
        /// What serves each endpoint.
        var running: [String: EndpointRuntime] = [:]
        /// Each endpoint's update in progress.
        var updates: [String: PendingUpdate] = [:]
    }

    /// An update in progress: the runtime that replaces the running one once its new variants are ready.
    private struct PendingUpdate {
        /// Names this update, so that a late callback cannot act on a later one.
        var id: UInt64
        /// What will serve: new variants, and running ones the update keeps.
        var runtime: EndpointRuntime
        /// The tokens of the variants started for this update.
        var fresh: Set<UInt64>
        /// The running variants the update replaces, stopped once it has switched.
        var retiring: [VariantRuntime]
        /// The endpoint's config and models after the update.
        var deployment: EndpointDeployment
        /// The endpoint's overrides after the update, and before it (restored by a rollback).
        var overrides: [VariantOverride]?
        var previousOverrides: [VariantOverride]?
        /// Set once the switch has begun; a rollback no longer applies.
        var completing = false
    }

    /// One variant of an endpoint as SageMaker's `DescribeEndpoint` shows it.
    public struct VariantSummary: Sendable, Equatable {
        /// The variant's name.
        public var name: String
        /// The weight traffic is routed by now, and the one an update in progress sets.
        public var currentWeight: Double
        public var desiredWeight: Double
        /// The instances serving now (ready), and how many the variant should have.
        public var currentInstanceCount: Int
        public var desiredInstanceCount: Int
    }

    /// Creates the manager.
    public init(
        store: any MetadataStore, packages: PackageStore, variants: VariantFactory, clock: any WallClock, logger: Logger
    ) {
        self.store = store
        self.packages = packages
        self.variants = variants
        self.clock = clock
        self.logger = logger
        (workStream, work) = AsyncStream.makeStream()
    }

    // MARK: Service

    /// Restores endpoints, then runs every endpoint's work until graceful shutdown, then drains them.
    public func run() async throws {
        try await restore()
        await withDiscardingTaskGroup { group in
            await withGracefulShutdownHandler {
                for await job in workStream {
                    group.addTask { await job() }
                }
            } onGracefulShutdown: {
                self.work.finish()
            }
            // Shutting down: drain every endpoint; their run() tasks end once their workers have exited.
            let (running, updates) = registry.withLock { (Array($0.running.values), Array($0.updates.values)) }
            for variant in running.flatMap(\.variants) + updates.flatMap({ Self.freshVariants(of: $0) }) {
                group.addTask { await variant.stop() }
            }
        }
    }

    private func restore() async throws {
        for endpoint in try await store.endpoints() {
            switch endpoint.status {
            case .inService, .creating, .updating, .systemUpdating, .rollingBack:
                logger.info("Restoring endpoint", metadata: ["endpoint": "\(endpoint.name)"])
                do {
                    try await launch(endpoint)
                } catch {
                    try await setStatus(endpoint.name, .failed, reason: "Serval could not restart it: \(error)")
                    continue
                }
                if let pending = endpoint.pendingConfigName {
                    await beginConfigUpdate(endpoint, to: pending)
                }
            case .deleting:
                _ = try await store.deleteEndpoint(named: endpoint.name)
                await packages.removeUnused(endpoint.deployment?.models.map(\.packagePath) ?? [], store: store)
            case .failed, .outOfService, .updateRollbackFailed:
                break
            }
        }
    }

    // MARK: Use cases

    /// Records a new endpoint as `Creating` and starts loading its variants.
    public func create(name: String, configName: String) async throws -> Endpoint {
        try ResourceName.validate(name, field: "name")
        try ResourceName.validate(configName, field: "config")
        let deployment = try await store.deployment(ofConfig: configName)
        let now = clock.now()
        let endpoint = Endpoint(
            name: name, configName: configName, status: .creating, createdAt: now, updatedAt: now, deployment: deployment)
        try await store.createEndpoint(endpoint)
        do {
            try await launch(endpoint)
        } catch {
            try await setStatus(name, .failed, reason: "\(error)")
        }
        return try await store.endpoint(named: name) ?? endpoint
    }

    /// The named endpoint.
    public func get(_ name: String) async throws -> Endpoint {
        guard let endpoint = try await store.endpoint(named: name) else {
            throw ServalError.notFound("Endpoint", name)
        }
        return endpoint
    }

    /// Every endpoint.
    public func list() async throws -> [Endpoint] {
        try await store.endpoints()
    }

    /// Moves an `InService` endpoint to another config: it becomes `Updating`, the new config's variants start
    /// beside the running ones (which keep serving), and traffic switches once all are ready.
    ///
    /// - Parameter retainVariantProperties: keep the weights and instance counts set on the running endpoint
    ///   (for variants of the same name); by default they are dropped with the old config.
    /// - Throws: `.notFound` for an unknown endpoint or config; `.validationError` when the endpoint is not
    ///   `InService`.
    public func update(name: String, configName: String, retainVariantProperties: Bool = false) async throws -> Endpoint {
        try ResourceName.validate(name, field: "name")
        try ResourceName.validate(configName, field: "config")
        var endpoint = try await get(name)
        try checkUpdatable(endpoint)
        _ = try await store.deployment(ofConfig: configName)  // the config and its models exist
        endpoint.status = .updating
        endpoint.pendingConfigName = configName
        endpoint.failureReason = nil
        endpoint.updatedAt = clock.now()
        try await store.updateEndpoint(endpoint)
        await beginConfigUpdate(endpoint, to: configName, retainOverrides: retainVariantProperties)
        return try await store.endpoint(named: name) ?? endpoint
    }

    /// Changes the weights and instance counts of a running endpoint's variants in place. Weights alone switch
    /// at once; a new instance count starts the variant anew with that many instances beside the old one, which
    /// serves until the new one is ready (the endpoint is `Updating` meanwhile).
    ///
    /// - Throws: `.notFound` for an unknown endpoint; `.validationError` for an unknown variant, a value out of
    ///   range, every weight 0, or an endpoint that is not `InService`.
    public func updateWeightsAndCapacities(name: String, changes: [VariantOverride]) async throws -> Endpoint {
        var endpoint = try await get(name)
        try checkUpdatable(endpoint)
        guard let running = registry.withLock({ $0.running[name] }) else {
            throw ServalError(.validationError, "Endpoint \"\(name)\" is not running; it cannot be updated now.")
        }
        guard !changes.isEmpty else {
            throw ServalError.invalid("DesiredWeightsAndCapacities", "must name at least one variant.")
        }
        var seen = Set<String>()
        for (index, change) in changes.enumerated() {
            let field = "DesiredWeightsAndCapacities[\(index)]"
            guard running.member(named: change.variantName) != nil else {
                throw ServalError.invalid(
                    "\(field).VariantName",
                    "endpoint \"\(name)\" has no variant \"\(change.variantName)\"; its variants are \(running.variants.map(\.spec.variant.name).joined(separator: ", ")).")
            }
            guard seen.insert(change.variantName).inserted else {
                throw ServalError.invalid("\(field).VariantName", "\"\(change.variantName)\" is named twice.")
            }
            guard change.weight != nil || change.instanceCount != nil else {
                throw ServalError.invalid(field, "set DesiredWeight, DesiredInstanceCount or both.")
            }
            try change.validate(field: field)
        }
        let overrides = VariantOverride.merging(endpoint.variantOverrides, changes)
        var weights = running.weights
        var members = zip(running.variants, running.tokens).map { (variant: $0.0, token: $0.1) }
        for change in changes {
            if let weight = change.weight, let index = running.variants.firstIndex(where: { $0.spec.variant.name == change.variantName }) {
                weights[index] = weight
            }
        }
        guard weights.contains(where: { $0 > 0 }) else {
            throw ServalError.invalid("DesiredWeightsAndCapacities", "would make every weight 0; at least one variant must have a positive weight.")
        }
        var fresh = Set<UInt64>()
        var retiring: [VariantRuntime] = []
        for change in changes {
            guard let count = change.instanceCount,
                let index = running.variants.firstIndex(where: { $0.spec.variant.name == change.variantName }),
                count != running.variants[index].spec.variant.instanceCount
            else { continue }
            var variant = running.variants[index].spec.variant
            variant.instanceCount = count
            variant.weight = weights[index]
            let made = makeVariant(endpoint: name, variant: variant, model: running.variants[index].spec.model)
            members[index] = made
            fresh.insert(made.token)
            retiring.append(running.variants[index])
        }
        let runtime = EndpointRuntime(
            name: name, variants: members.map { $0.variant }, weights: weights, tokens: members.map { $0.token },
            dataCapture: running.dataCapture)
        let previous = endpoint.variantOverrides
        endpoint.variantOverrides = overrides
        endpoint.updatedAt = clock.now()
        if fresh.isEmpty {
            try await store.updateEndpoint(endpoint)
            registry.withLock { $0.running[name] = runtime }
            logger.info("Endpoint weights changed", metadata: ["endpoint": "\(name)"])
            return endpoint
        }
        endpoint.status = .updating
        endpoint.failureReason = nil
        try await store.updateEndpoint(endpoint)
        let update = PendingUpdate(
            id: tokens.add(1, ordering: .relaxed).newValue, runtime: runtime, fresh: fresh, retiring: retiring,
            deployment: try await deployment(of: endpoint), overrides: overrides, previousOverrides: previous)
        start(update, endpoint: name)
        return endpoint
    }

    /// The variants of an endpoint as `DescribeEndpoint` shows them: what serves now and what an update in
    /// progress asks for. Empty when the endpoint is not running.
    public func variantSummaries(_ name: String) async -> [VariantSummary] {
        let (running, update) = registry.withLock { ($0.running[name], $0.updates[name]) }
        guard let running else { return [] }
        var result: [VariantSummary] = []
        for (index, variant) in running.variants.enumerated() {
            let status = await variant.status()
            var summary = VariantSummary(
                name: variant.spec.variant.name, currentWeight: running.weights[index],
                desiredWeight: running.weights[index], currentInstanceCount: status.readyInstances,
                desiredInstanceCount: variant.spec.variant.instanceCount)
            if let next = update?.runtime.member(named: summary.name) {
                summary.desiredWeight = next.weight
                summary.desiredInstanceCount = next.variant.spec.variant.instanceCount
            }
            result.append(summary)
        }
        return result
    }

    /// The live numbers of each variant of a running endpoint, by variant name; empty when it is not running.
    public func variantStatuses(_ name: String) async -> [VariantCard] {
        guard let runtime = registry.withLock({ $0.running[name] }) else { return [] }
        var result: [VariantCard] = []
        for variant in runtime.variants {
            result.append(
                VariantCard(
                    name: variant.spec.variant.name, model: variant.spec.model.name, status: await variant.status(),
                    activity: variant.activity.snapshot(), workerMemoryBytes: await variant.workerMemoryBytes()))
        }
        return result
    }

    /// What a running variant's deploy card shows.
    public struct VariantCard: Sendable {
        public var name: String
        public var model: String
        public var status: VariantStatus
        /// The last minute.
        public var activity: RecentActivity.Snapshot
        public var workerMemoryBytes: Int
    }

    /// Marks the endpoint `Deleting`, then drains and stops its workers and removes it.
    public func delete(_ name: String) async throws -> Endpoint {
        var endpoint = try await get(name)
        guard endpoint.status != .deleting else { return endpoint }
        endpoint.status = .deleting
        endpoint.updatedAt = clock.now()
        try await store.updateEndpoint(endpoint)
        let (runtime, update) = registry.withLock {
            ($0.running.removeValue(forKey: name), $0.updates.removeValue(forKey: name))
        }
        let variants = (runtime?.variants ?? []) + (update.map(Self.freshVariants) ?? [])
        let released = endpoint.deployment?.models.map(\.packagePath) ?? []
        submit { [store, logger, packages] in
            await withDiscardingTaskGroup { group in
                for variant in variants { group.addTask { await variant.stop() } }
            }
            do {
                _ = try await store.deleteEndpoint(named: name)
                await packages.removeUnused(released, store: store)
            } catch {
                logger.error("Could not remove deleted endpoint", metadata: ["endpoint": "\(name)", "error": "\(error)"])
            }
        }
        return endpoint
    }

    /// The endpoints running now (those that serve or load), in no particular order.
    public func runningEndpoints() -> [EndpointRuntime] {
        registry.withLock { Array($0.running.values) }
    }

    /// The running endpoint named `name`, or the error that explains why it cannot serve.
    public func runtime(for name: String) async throws(ServalError) -> EndpointRuntime {
        if let runtime = registry.withLock({ $0.running[name] }) { return runtime }
        let endpoint: Endpoint?
        do {
            endpoint = try await store.endpoint(named: name)
        } catch {
            throw ServalError(.internalFailure, "Reading endpoint \"\(name)\" failed.")
        }
        guard let endpoint else {
            throw ServalError(.notFound, "Endpoint \"\(name)\" does not exist; create it first or check the name.")
        }
        switch endpoint.status {
        case .failed:
            throw ServalError(.serviceUnavailable, "Endpoint \"\(name)\" is Failed: \(endpoint.failureReason ?? "no reason recorded").")
        case .deleting:
            throw ServalError(.notFound, "Endpoint \"\(name)\" is being deleted.")
        default:
            throw ServalError(.modelNotReady, "Endpoint \"\(name)\" is \(endpoint.status.rawValue); retry shortly.", retryAfterSeconds: 1)
        }
    }

    // MARK: Running

    private func checkUpdatable(_ endpoint: Endpoint) throws(ServalError) {
        guard endpoint.status == .inService, registry.withLock({ $0.updates[endpoint.name] == nil }) else {
            throw ServalError(
                .validationError,
                "Endpoint \"\(endpoint.name)\" is \(endpoint.status.rawValue); it can be updated only when InService. Wait for it (e.g. the endpoint_in_service waiter) and retry.")
        }
    }

    /// Makes (without starting) the runtime of one variant of `endpoint`, serving `model`.
    private func makeVariant(endpoint: String, variant: ProductionVariant, model: Model) -> (variant: VariantRuntime, token: UInt64) {
        let spec = VariantSpec(
            endpointName: endpoint, variant: variant, model: model,
            modelDirectory: packages.absolutePath(of: model.packagePath))
        let token = tokens.add(1, ordering: .relaxed).newValue
        let runtime = variants.make(spec) { [weak self] state in
            await self?.variantChanged(endpoint: endpoint, token: token, variant: variant.name, state: state)
        }
        return (runtime, token)
    }

    /// Makes (without starting) the runtime of a deployment's variants with `overrides` applied.
    private func makeRuntime(endpoint: String, deployment: EndpointDeployment, overrides: [VariantOverride]?) throws -> EndpointRuntime {
        var members: [(variant: VariantRuntime, token: UInt64)] = []
        let variants = deployment.config.variants(applying: overrides)
        for variant in variants {
            guard let model = deployment.model(named: variant.modelName) else {
                throw ServalError.notFound("Model", variant.modelName)
            }
            members.append(makeVariant(endpoint: endpoint, variant: variant, model: model))
        }
        return EndpointRuntime(
            name: endpoint, variants: members.map { $0.variant }, weights: variants.map(\.weight), tokens: members.map { $0.token },
            dataCapture: deployment.config.dataCapture)
    }

    /// What the endpoint runs: its own copy, made now from the stored config and models for a record written
    /// before endpoints kept one (and recorded, so that later deletions take nothing from it).
    private func deployment(of endpoint: Endpoint) async throws -> EndpointDeployment {
        if let deployment = endpoint.deployment { return deployment }
        let deployment = try await store.deployment(ofConfig: endpoint.configName)
        if var stored = try await store.endpoint(named: endpoint.name) {
            stored.deployment = deployment
            try await store.updateEndpoint(stored)
        }
        return deployment
    }

    private func launch(_ endpoint: Endpoint) async throws {
        let runtime = try makeRuntime(
            endpoint: endpoint.name, deployment: try await deployment(of: endpoint), overrides: endpoint.variantOverrides)
        registry.withLock { $0.running[endpoint.name] = runtime }
        for variant in runtime.variants {
            submit { await variant.run() }
        }
    }

    /// Starts the variants of `configName` beside the running ones; on an error it rolls back at once.
    private func beginConfigUpdate(_ endpoint: Endpoint, to configName: String, retainOverrides: Bool = false) async {
        do {
            let deployment = try await store.deployment(ofConfig: configName)
            let config = deployment.config
            guard let running = registry.withLock({ $0.running[endpoint.name] }) else {
                throw ServalError(.serviceUnavailable, "the endpoint is not running.")
            }
            let overrides = retainOverrides
                ? endpoint.variantOverrides?.filter { override in config.variants.contains { $0.name == override.variantName } }
                : nil
            let runtime = try makeRuntime(endpoint: endpoint.name, deployment: deployment, overrides: overrides)
            let update = PendingUpdate(
                id: tokens.add(1, ordering: .relaxed).newValue, runtime: runtime, fresh: Set(runtime.tokens),
                retiring: running.variants, deployment: deployment, overrides: overrides,
                previousOverrides: endpoint.variantOverrides)
            start(update, endpoint: endpoint.name)
        } catch {
            await recordRollback(endpoint.name, reason: "The update to endpoint config \"\(configName)\" failed: \(error)", overrides: endpoint.variantOverrides)
        }
    }

    private func start(_ update: PendingUpdate, endpoint name: String) {
        registry.withLock { $0.updates[name] = update }
        logger.info("Endpoint is updating", metadata: ["endpoint": "\(name)", "config": "\(update.deployment.config.name)"])
        for variant in Self.freshVariants(of: update) {
            submit { await variant.run() }
        }
    }

    private static func freshVariants(of update: PendingUpdate) -> [VariantRuntime] {
        zip(update.runtime.variants, update.runtime.tokens).filter { update.fresh.contains($0.1) }.map { $0.0 }
    }

    private enum Role {
        case running(EndpointRuntime)
        case fresh(PendingUpdate)
        case stale
    }

    private func variantChanged(endpoint name: String, token: UInt64, variant: String, state: VariantRuntime.State) async {
        let role = registry.withLock { registry -> Role in
            if let update = registry.updates[name], update.fresh.contains(token) { return .fresh(update) }
            if let running = registry.running[name], running.tokens.contains(token) { return .running(running) }
            return .stale
        }
        do {
            switch (role, state) {
            case (.running(let runtime), .failed(let reason)):
                // What serves the endpoint failed: the endpoint fails, and an update in progress is abandoned.
                let update = registry.withLock { registry -> PendingUpdate? in
                    registry.running[name] = nil
                    return registry.updates.removeValue(forKey: name)
                }
                for other in runtime.variants + (update.map(Self.freshVariants) ?? []) {
                    submit { await other.stop(drainTimeout: .zero, exitTimeout: .seconds(5)) }
                }
                try await setStatus(name, .failed, reason: runtime.variants.count > 1 ? "Variant \(variant): \(reason)" : reason)
            case (.running(let runtime), .ready):
                guard registry.withLock({ $0.updates[name] == nil }) else { return }
                for other in runtime.variants where await other.status().state != .ready { return }
                guard let endpoint = try await store.endpoint(named: name), endpoint.pendingConfigName == nil else { return }
                try await setStatus(name, .inService, reason: endpoint.status == .inService ? endpoint.failureReason : nil)
            case (.fresh(let update), .failed(let reason)):
                let variants = update.runtime.variants.count > 1 ? "Variant \(variant): " : ""
                try await rollBack(name, update: update, reason: "The update failed and was rolled back. \(variants)\(reason)")
            case (.fresh(let update), .ready):
                for other in update.runtime.variants where await other.status().state != .ready { return }
                try await complete(name, update: update)
            case (_, .starting), (_, .stopped), (.stale, _):
                break
            }
        } catch {
            logger.error("Could not record endpoint status", metadata: ["endpoint": "\(name)", "error": "\(error)"])
        }
    }

    /// Switches traffic to an update's runtime, records the endpoint `InService` on its config, and stops the
    /// variants it replaced once they have drained.
    private func complete(_ name: String, update: PendingUpdate) async throws {
        let claimed = registry.withLock { registry -> Bool in
            guard var current = registry.updates[name], current.id == update.id, !current.completing else { return false }
            current.completing = true
            registry.updates[name] = current
            return true
        }
        guard claimed else { return }
        // The store first: the async dispatcher reads the config of each new runtime from it.
        var replaced: [String] = []
        if var endpoint = try await store.endpoint(named: name), endpoint.status != .deleting {
            replaced = endpoint.deployment?.models.map(\.packagePath) ?? []
            endpoint.configName = update.deployment.config.name
            endpoint.deployment = update.deployment
            endpoint.pendingConfigName = nil
            endpoint.variantOverrides = update.overrides
            endpoint.status = .inService
            endpoint.failureReason = nil
            endpoint.updatedAt = clock.now()
            try await store.updateEndpoint(endpoint)
        }
        let switched = registry.withLock { registry -> Bool in
            guard registry.updates[name]?.id == update.id, registry.running[name] != nil else { return false }
            registry.updates[name] = nil
            registry.running[name] = update.runtime
            return true
        }
        guard switched else { return }
        logger.info("Endpoint is InService after its update", metadata: ["endpoint": "\(name)", "config": "\(update.deployment.config.name)"])
        let retiring = update.retiring
        let released = replaced
        submit { [store, packages] in
            await withDiscardingTaskGroup { group in
                for variant in retiring { group.addTask { await variant.stop() } }
            }
            await packages.removeUnused(released, store: store)
        }
    }

    /// Stops an update's new variants; the endpoint stays on what it ran, `InService`, with the reason recorded.
    private func rollBack(_ name: String, update: PendingUpdate, reason: String) async throws {
        let taken = registry.withLock { registry -> Bool in
            guard let current = registry.updates[name], current.id == update.id, !current.completing else { return false }
            registry.updates[name] = nil
            return true
        }
        guard taken else { return }
        for variant in Self.freshVariants(of: update) {
            submit { await variant.stop(drainTimeout: .zero, exitTimeout: .seconds(5)) }
        }
        await recordRollback(name, reason: reason, overrides: update.previousOverrides)
    }

    private func recordRollback(_ name: String, reason: String, overrides: [VariantOverride]?) async {
        logger.warning("Endpoint update rolled back", metadata: ["endpoint": "\(name)", "reason": "\(reason)"])
        do {
            guard var endpoint = try await store.endpoint(named: name), endpoint.status == .updating else { return }
            endpoint.pendingConfigName = nil
            endpoint.variantOverrides = overrides
            endpoint.status = registry.withLock({ $0.running[name] != nil }) ? .inService : .updateRollbackFailed
            endpoint.failureReason = reason
            endpoint.updatedAt = clock.now()
            try await store.updateEndpoint(endpoint)
        } catch {
            logger.error("Could not record the rollback", metadata: ["endpoint": "\(name)", "error": "\(error)"])
        }
    }

    private func setStatus(_ name: String, _ status: EndpointStatus, reason: String?) async throws {
        guard var endpoint = try await store.endpoint(named: name), endpoint.status != .deleting else { return }
        guard endpoint.status != status || endpoint.failureReason != reason else { return }
        endpoint.status = status
        endpoint.failureReason = reason
        if status == .failed { endpoint.pendingConfigName = nil }
        endpoint.updatedAt = clock.now()
        try await store.updateEndpoint(endpoint)
        logger.info("Endpoint is \(status.rawValue)", metadata: ["endpoint": "\(name)"])
    }

    private func submit(_ job: @escaping @Sendable () async -> Void) {
        if case .terminated = work.yield(job) {
            logger.warning("Serval is shutting down; endpoint work was not started")
        }
    }
}
