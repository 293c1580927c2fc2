import Foundation
public import Logging
public import NIOCore
public import ServalArtifacts
public import ServalCore
public import ServalRuntime
public import ServalStore
public import ServiceLifecycle
import Synchronization

/// Creates, runs, restores and deletes endpoints; a `Service` whose `run()` hosts every endpoint's workers.
///
/// Endpoint status lives in the store; running endpoints live here. Creating an endpoint records it as
/// `Creating` and starts its variants; when every instance has loaded the model it becomes `InService`, or
/// `Failed` with the reason. On start, endpoints that were `InService`, `Creating` or `Updating` are brought
/// back, and deletions interrupted by a crash are finished. On graceful shutdown every endpoint drains and
/// its workers stop.
public final class EndpointManager: Service, Sendable {
    private let store: any MetadataStore
    private let packages: PackageStore
    private let environments: PythonEnvironments
    private let eventLoopGroup: any EventLoopGroup
    private let clock: any WallClock
    private let logger: Logger
    private let registry = Mutex<[String: EndpointRuntime]>([:])
    private let work: AsyncStream<@Sendable () async -> Void>.Continuation
    private let workStream: AsyncStream<@Sendable () async -> Void>

    /// Creates the manager.
    public init(
        store: any MetadataStore, packages: PackageStore, environments: PythonEnvironments,
        eventLoopGroup: any EventLoopGroup, clock: any WallClock, logger: Logger
    ) {
        self.store = store
        self.packages = packages
        self.environments = environments
        self.eventLoopGroup = eventLoopGroup
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
            for runtime in registry.withLock({ Array($0.values) }) {
                for variant in runtime.variants {
                    group.addTask { await variant.stop() }
                }
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
                }
            case .deleting:
                _ = try await store.deleteEndpoint(named: endpoint.name)
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
        guard try await store.endpointConfig(named: configName) != nil else {
            throw ServalError(.notFound, "config: endpoint config \"\(configName)\" does not exist; create it first (POST /endpoint-configs).")
        }
        let now = clock.now()
        let endpoint = Endpoint(name: name, configName: configName, status: .creating, createdAt: now, updatedAt: now)
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

    /// The live numbers of each variant of a running endpoint, by variant name; empty when it is not running.
    public func variantStatuses(_ name: String) async -> [(name: String, status: VariantStatus)] {
        guard let runtime = registry.withLock({ $0[name] }) else { return [] }
        var result: [(String, VariantStatus)] = []
        for variant in runtime.variants {
            result.append((variant.spec.variant.name, await variant.status()))
        }
        return result
    }

    /// Marks the endpoint `Deleting`, then drains and stops its workers and removes it.
    public func delete(_ name: String) async throws -> Endpoint {
        var endpoint = try await get(name)
        guard endpoint.status != .deleting else { return endpoint }
        endpoint.status = .deleting
        endpoint.updatedAt = clock.now()
        try await store.updateEndpoint(endpoint)
        let runtime = registry.withLock { $0.removeValue(forKey: name) }
        submit { [store, logger] in
            if let runtime {
                await withDiscardingTaskGroup { group in
                    for variant in runtime.variants { group.addTask { await variant.stop() } }
                }
            }
            do {
                _ = try await store.deleteEndpoint(named: name)
            } catch {
                logger.error("Could not remove deleted endpoint", metadata: ["endpoint": "\(name)", "error": "\(error)"])
            }
        }
        return endpoint
    }

    /// The running endpoint named `name`, or the error that explains why it cannot serve.
    public func runtime(for name: String) async throws(ServalError) -> EndpointRuntime {
        if let runtime = registry.withLock({ $0[name] }) { return runtime }
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

    private func launch(_ endpoint: Endpoint) async throws {
        guard let config = try await store.endpointConfig(named: endpoint.configName) else {
            throw ServalError.notFound("Endpoint config", endpoint.configName)
        }
        var variants: [VariantRuntime] = []
        for variant in config.variants {
            guard let model = try await store.model(named: variant.modelName) else {
                throw ServalError.notFound("Model", variant.modelName)
            }
            let spec = VariantSpec(
                endpointName: endpoint.name, variant: variant, model: model,
                modelDirectory: packages.absolutePath(of: model.packagePath))
            let name = endpoint.name
            variants.append(
                VariantRuntime(spec: spec, environments: environments, eventLoopGroup: eventLoopGroup, logger: logger) {
                    [weak self] state in
                    await self?.variantChanged(endpoint: name, variant: variant.name, state: state)
                })
        }
        let runtime = EndpointRuntime(name: endpoint.name, variants: variants)
        registry.withLock { $0[endpoint.name] = runtime }
        for variant in variants {
            submit { await variant.run() }
        }
    }

    private func variantChanged(endpoint name: String, variant: String, state: VariantRuntime.State) async {
        guard let runtime = registry.withLock({ $0[name] }) else { return }
        do {
            switch state {
            case .failed(let reason):
                registry.withLock { _ = $0.removeValue(forKey: name) }
                for other in runtime.variants { submit { await other.stop(drainTimeout: .zero, exitTimeout: .seconds(5)) } }
                try await setStatus(name, .failed, reason: runtime.variants.count > 1 ? "Variant \(variant): \(reason)" : reason)
            case .ready:
                var allReady = true
                for other in runtime.variants where await other.status().state != .ready { allReady = false }
                if allReady { try await setStatus(name, .inService, reason: nil) }
            case .starting, .stopped:
                break
            }
        } catch {
            logger.error("Could not record endpoint status", metadata: ["endpoint": "\(name)", "error": "\(error)"])
        }
    }

    private func setStatus(_ name: String, _ status: EndpointStatus, reason: String?) async throws {
        guard var endpoint = try await store.endpoint(named: name), endpoint.status != .deleting else { return }
        guard endpoint.status != status || endpoint.failureReason != reason else { return }
        endpoint.status = status
        endpoint.failureReason = reason
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
