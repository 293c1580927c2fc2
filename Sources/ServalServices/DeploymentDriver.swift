import Logging
import ServalArtifacts
import ServalCore
import ServalRuntime
import ServalScheduling
import ServalStore
import Synchronization

/// Carries out endpoints' deployments: makes their variants, feeds each endpoint's ``DeploymentStateMachine`` what
/// happens (a variant became ready or failed, an update was asked for or committed) and executes the actions it
/// returns against the variants, the routing table and the store.
final class DeploymentDriver: Sendable {
    let table: EndpointTable
    let records: EndpointRecords
    private let store: any MetadataStore
    private let packages: PackageStore
    private let factory: VariantFactory
    private let work: EndpointWork
    private let logger: Logger
    private let ids = Atomic<UInt64>(0)

    init(
        table: EndpointTable, records: EndpointRecords, store: any MetadataStore, packages: PackageStore,
        factory: VariantFactory, work: EndpointWork, logger: Logger
    ) {
        self.table = table
        self.records = records
        self.store = store
        self.packages = packages
        self.factory = factory
        self.work = work
        self.logger = logger
    }

    // MARK: Making variants

    /// A new id for a variant or an update.
    func nextID() -> UInt64 {
        ids.add(1, ordering: .relaxed).newValue
    }

    /// Makes (without starting) one variant of `endpoint`, serving `model`, whose state changes feed the endpoint's
    /// machine.
    func makeVariant(endpoint: String, variant: ProductionVariant, model: Model) -> (variant: any VariantServing, id: UInt64) {
        let spec = VariantSpec(
            endpointName: endpoint, variant: variant, model: model,
            modelDirectory: packages.absolutePath(of: model.packagePath))
        let id = nextID()
        let runtime = factory.make(spec) { [weak self] state in
            await self?.variantChanged(endpoint: endpoint, id: id, state: state)
        }
        return (runtime, id)
    }

    /// Makes (without starting) the runtime of a deployment's variants with `overrides` applied.
    func makeRuntime(endpoint: String, deployment: EndpointDeployment, overrides: [VariantOverride]?) throws -> EndpointRuntime {
        var members: [(variant: any VariantServing, id: UInt64)] = []
        let variants = deployment.config.variants(applying: overrides)
        for variant in variants {
            guard let model = deployment.model(named: variant.modelName) else {
                throw ServalError.notFound("Model", variant.modelName)
            }
            members.append(makeVariant(endpoint: endpoint, variant: variant, model: model))
        }
        return EndpointRuntime(
            name: endpoint, variants: members.map(\.variant), weights: variants.map(\.weight), ids: members.map(\.id),
            dataCapture: deployment.config.dataCapture)
    }

    /// Plans the move of `endpoint` to `configName`: a runtime of the config's variants beside the serving ones.
    ///
    /// - Parameters:
    ///   - retainOverrides: keep the endpoint's weights and instance counts for variants of the same name.
    ///   - restoring: the endpoint is being restored, so it does not serve yet.
    func planConfigUpdate(
        _ endpoint: Endpoint, to configName: String, retainOverrides: Bool, restoring: Bool = false
    ) async throws -> UpdatePlan {
        let deployment = try await store.deployment(ofConfig: configName)
        let config = deployment.config
        guard restoring || table.entry(endpoint.name)?.serving != nil else {
            throw ServalError(.serviceUnavailable, "the endpoint is not running.")
        }
        let overrides = retainOverrides
            ? endpoint.variantOverrides?.filter { override in config.variants.contains { $0.name == override.variantName } }
            : nil
        return UpdatePlan(
            id: nextID(), runtime: try makeRuntime(endpoint: endpoint.name, deployment: deployment, overrides: overrides),
            deployment: deployment, overrides: overrides, previousOverrides: endpoint.variantOverrides)
    }

    // MARK: Events

    /// Starts serving `runtime` for a new or restored endpoint, with the update a crash interrupted, if any.
    func launch(_ name: String, runtime: EndpointRuntime, interrupted plan: UpdatePlan? = nil) async {
        table.insert(name, serving: runtime)
        await handle(name, .restored(runtime.members, interruptedUpdate: plan.map { ($0.id, $0.runtime.members) })) {
            if let plan {
                $0.plans[plan.id] = plan
                $0.add(plan.runtime)
            }
        }
    }

    /// Asks the endpoint's machine to carry out `plan`.
    func request(_ name: String, _ plan: UpdatePlan) async {
        if !plan.weightsOnly {
            logger.info("Endpoint is updating", metadata: ["endpoint": "\(name)", "config": "\(plan.deployment.config.name)"])
        }
        await handle(name, .updateRequested(plan.id, fleet: plan.runtime.members)) {
            $0.plans[plan.id] = plan
            $0.add(plan.runtime)
        }
    }

    private func variantChanged(endpoint name: String, id: UInt64, state: VariantState) async {
        switch state {
        case .ready: await handle(name, .variantReady(id))
        case .failed(let reason): await handle(name, .variantFailed(id, reason: reason))
        case .starting, .stopped: break
        }
    }

    /// Steps the endpoint's machine with `event` and carries out what it returns, in order.
    func handle(
        _ name: String, _ event: DeploymentStateMachine.Event, prepare: (inout DeployedEndpoint) -> Void = { _ in }
    ) async {
        let (actions, entry) = table.step(name, event, prepare: prepare)
        for action in actions {
            do {
                try await execute(action, endpoint: name, entry: entry)
            } catch {
                logger.error("Could not record endpoint status", metadata: ["endpoint": "\(name)", "error": "\(error)"])
            }
        }
    }

    private func execute(_ action: DeploymentStateMachine.Action, endpoint name: String, entry: DeployedEndpoint) async throws {
        switch action {
        case .start(let ids):
            for variant in ids.compactMap({ entry.variants[$0] }) {
                work.submit { await variant.run() }
            }
        case .stop(let ids):
            for variant in ids.compactMap({ entry.variants[$0] }) {
                work.submit { await variant.stopNow() }
            }
        case .commit(let id):
            // The store first: the async dispatcher reads the config of each new runtime from it.
            guard let plan = entry.plans[id] else { return }
            let replaced = try await records.recordCommitted(name, plan: plan)
            table.modify(name) { $0.plans[id]?.replacedPackages = replaced }
            await handle(name, .switchCompleted(id))
        case .route(let id):
            let weightsOnly = entry.plans[id]?.weightsOnly == true
            logger.info(
                weightsOnly ? "Endpoint weights changed" : "Endpoint is InService after its update",
                metadata: ["endpoint": "\(name)", "config": "\(entry.plans[id]?.deployment.config.name ?? "")"])
        case .retire(let ids, let id):
            let retiring = ids.compactMap { entry.variants[$0] }
            let replaced = entry.plans[id]?.replacedPackages ?? []
            work.submit { [self] in
                await withDiscardingTaskGroup { group in
                    for variant in retiring { group.addTask { await variant.stop() } }
                }
                if table.entry(name) == nil {
                    await packages.removeUnused(replaced, store: store)  // deleted meanwhile
                } else {
                    await handle(name, .retiredDrained(id))
                }
            }
        case .release(let id):
            if let replaced = entry.plans[id]?.replacedPackages, !replaced.isEmpty {
                await packages.removeUnused(replaced, store: store)
            }
        case .withdraw:
            break  // done with the step
        case .record(let status, let reason):
            try await records.record(name, status, reason: reason)
        case .rollBack(let id, let status, let reason):
            await records.recordRollback(name, plan: id.flatMap { entry.plans[$0] }, status: status, reason: reason)
        }
    }
}

/// The endpoints' background work (variants' `run()`, draining stops), run by ``EndpointManager/run()`` in its task
/// group so that none of it is fire-and-forget.
final class EndpointWork: Sendable {
    let stream: AsyncStream<@Sendable () async -> Void>
    private let continuation: AsyncStream<@Sendable () async -> Void>.Continuation
    private let logger: Logger

    init(logger: Logger) {
        (stream, continuation) = AsyncStream.makeStream()
        self.logger = logger
    }

    /// Runs `job` in the manager's task group.
    func submit(_ job: @escaping @Sendable () async -> Void) {
        if case .terminated = continuation.yield(job) {
            logger.warning("Serval is shutting down; endpoint work was not started")
        }
    }

    /// Takes no more work.
    func finish() {
        continuation.finish()
    }
}
