import Logging
import ServalArtifacts
import ServalCore
import ServalRuntime
import ServalScheduling
import ServalStore

/// Endpoints' lifecycle: creating one (recorded `Creating`, its variants started), deleting one (recorded
/// `Deleting`, drained, removed), and restoring them all when Serval starts.
struct EndpointLifecycle: Sendable {
    let driver: DeploymentDriver
    let store: any MetadataStore
    let packages: PackageStore
    let work: EndpointWork
    let clock: any WallClock
    let logger: Logger

    private var records: EndpointRecords { driver.records }

    /// Records a new endpoint as `Creating` and starts loading its variants.
    func create(name: String, configName: String) async throws -> Endpoint {
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
            try await records.setStatus(name, .failed, reason: "\(error)")
        }
        return try await store.endpoint(named: name) ?? endpoint
    }

    /// Marks the endpoint `Deleting`, then drains and stops its variants and removes it.
    func delete(_ name: String) async throws -> Endpoint {
        guard var endpoint = try await store.endpoint(named: name) else {
            throw ServalError.notFound("Endpoint", name)
        }
        guard endpoint.status != .deleting else { return endpoint }
        endpoint.status = .deleting
        endpoint.updatedAt = clock.now()
        try await store.updateEndpoint(endpoint)
        let entry = driver.table.remove(name)
        let variants = entry.map { entry in entry.machine.variants.compactMap { entry.variants[$0] } } ?? []
        let released = endpoint.deployment?.models.map(\.packagePath) ?? []
        work.submit { [store, logger, packages] in
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

    /// Brings back the endpoints that were `InService`, `Creating` or `Updating` (an interrupted config update starts
    /// again beside what ran), and finishes deletions a crash interrupted.
    func restore() async throws {
        for endpoint in try await store.endpoints() {
            switch endpoint.status {
            case .inService, .creating, .updating, .systemUpdating, .rollingBack:
                logger.info("Restoring endpoint", metadata: ["endpoint": "\(endpoint.name)"])
                do {
                    try await launch(endpoint, resumingUpdate: true)
                } catch {
                    try await records.setStatus(endpoint.name, .failed, reason: "Serval could not restart it: \(error)")
                }
            case .deleting:
                _ = try await store.deleteEndpoint(named: endpoint.name)
                await packages.removeUnused(endpoint.deployment?.models.map(\.packagePath) ?? [], store: store)
            case .failed, .outOfService, .updateRollbackFailed:
                break
            }
        }
    }

    /// Makes the endpoint's variants from its own deployment and starts them; with `resumingUpdate`, the update to
    /// its pending config starts beside them, or is rolled back when it cannot.
    private func launch(_ endpoint: Endpoint, resumingUpdate: Bool = false) async throws {
        let runtime = try driver.makeRuntime(
            endpoint: endpoint.name, deployment: try await records.deployment(of: endpoint),
            overrides: endpoint.variantOverrides)
        guard resumingUpdate, let pending = endpoint.pendingConfigName else {
            await driver.launch(endpoint.name, runtime: runtime)
            return
        }
        do {
            let plan = try await driver.planConfigUpdate(endpoint, to: pending, retainOverrides: false, restoring: true)
            await driver.launch(endpoint.name, runtime: runtime, interrupted: plan)
        } catch {
            await driver.launch(endpoint.name, runtime: runtime)
            await driver.handle(
                endpoint.name, .updateAbandoned(reason: "The update to endpoint config \"\(pending)\" failed: \(error)"))
        }
    }
}
