import Foundation
public import Logging
public import ServalArtifacts
public import ServalCore
public import ServalRuntime
import ServalScheduling
public import ServalStore
public import ServiceLifecycle

/// Creates, runs, updates, restores and deletes endpoints; a `Service` whose `run()` hosts every endpoint's
/// variants. The one door to endpoints for the control planes; the inference entry reads running endpoints through
/// the ``EndpointRegistry`` it implements.
///
/// Endpoint status lives in the store; running endpoints live in the registry, each stepped through a
/// ``DeploymentStateMachine`` whose actions a driver carries out. Creating an endpoint records it as `Creating` and
/// starts its variants; when every instance has loaded the model it becomes `InService`, or `Failed` with the reason.
/// Updating an endpoint (a new config, or new instance counts) records it as `Updating` and starts the new variants
/// beside the running ones, which keep serving; once every new variant is ready, traffic switches to them in one step
/// and the replaced variants drain and stop. If a new variant fails, it is stopped and the endpoint stays `InService`
/// on what it ran before, with the reason in `failureReason`. Weight changes alone switch at once. On start,
/// endpoints that were `InService`, `Creating` or `Updating` are brought back (an interrupted config update starts
/// again), and deletions interrupted by a crash are finished. On graceful shutdown every endpoint drains and its
/// variants stop.
public final class EndpointManager: Service, EndpointRegistry {
    let store: any MetadataStore
    let clock: any WallClock
    let logger: Logger
    let table: EndpointTable
    let driver: DeploymentDriver
    private let lifecycle: EndpointLifecycle
    private let work: EndpointWork

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

    /// What a running variant's deploy card shows.
    public struct VariantCard: Sendable {
        public var name: String
        public var model: String
        public var status: VariantStatus
        /// The last minute.
        public var activity: RecentActivity.Snapshot
        public var workerMemoryBytes: Int
    }

    /// Creates the manager.
    public init(
        store: any MetadataStore, packages: PackageStore, variants: VariantFactory, clock: any WallClock, logger: Logger
    ) {
        self.store = store
        self.clock = clock
        self.logger = logger
        let work = EndpointWork(logger: logger)
        let table = EndpointTable(store: store)
        let driver = DeploymentDriver(
            table: table, records: EndpointRecords(store: store, clock: clock, logger: logger), store: store,
            packages: packages, factory: variants, work: work, logger: logger)
        self.work = work
        self.table = table
        self.driver = driver
        lifecycle = EndpointLifecycle(
            driver: driver, store: store, packages: packages, work: work, clock: clock, logger: logger)
    }

    // MARK: Service

    /// Restores endpoints, then runs every endpoint's work until graceful shutdown, then drains them.
    public func run() async throws {
        try await lifecycle.restore()
        await withDiscardingTaskGroup { group in
            await withGracefulShutdownHandler {
                for await job in work.stream {
                    group.addTask { await job() }
                }
            } onGracefulShutdown: {
                self.work.finish()
            }
            // Shutting down: drain every endpoint; their run() tasks end once their variants have stopped.
            for entry in table.all() {
                for variant in entry.machine.variants.compactMap({ entry.variants[$0] }) {
                    group.addTask { await variant.stop() }
                }
            }
        }
    }

    // MARK: Use cases

    /// Records a new endpoint as `Creating` and starts loading its variants.
    public func create(name: String, configName: String) async throws -> Endpoint {
        try await lifecycle.create(name: name, configName: configName)
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

    /// Marks the endpoint `Deleting`, then drains and stops its variants and removes it.
    public func delete(_ name: String) async throws -> Endpoint {
        try await lifecycle.delete(name)
    }

    // MARK: Reading

    /// The endpoints running now (those that serve or load), in no particular order.
    public func runningEndpoints() -> [EndpointRuntime] {
        table.runningEndpoints()
    }

    /// The running endpoint named `name`, or the error that explains why it cannot serve.
    public func runtime(for name: String) async throws(ServalError) -> EndpointRuntime {
        try await table.runtime(for: name)
    }

    /// The variants of an endpoint as `DescribeEndpoint` shows them: what serves now and what an update in
    /// progress asks for. Empty when the endpoint is not running.
    public func variantSummaries(_ name: String) async -> [VariantSummary] {
        guard let entry = table.entry(name), let running = entry.serving else { return [] }
        let update = entry.update
        var result: [VariantSummary] = []
        for (index, variant) in running.variants.enumerated() {
            let status = await variant.status()
            var summary = VariantSummary(
                name: variant.name, currentWeight: running.weights[index], desiredWeight: running.weights[index],
                currentInstanceCount: status.readyInstances, desiredInstanceCount: variant.spec.variant.instanceCount)
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
        guard let runtime = table.entry(name)?.serving else { return [] }
        var result: [VariantCard] = []
        for variant in runtime.variants {
            result.append(
                VariantCard(
                    name: variant.name, model: variant.spec.model.name, status: await variant.status(),
                    activity: variant.activity.snapshot(), workerMemoryBytes: await variant.workerMemoryBytes()))
        }
        return result
    }
}
