import Logging
import ServalCore
import ServalStore

/// The endpoint records' writes: statuses, reasons, committed and rolled-back updates. Every write reads the record
/// first and leaves an endpoint being deleted alone.
struct EndpointRecords: Sendable {
    let store: any MetadataStore
    let clock: any WallClock
    let logger: Logger

    /// Records `status` with `reason`; `Failed` also drops the pending config.
    func setStatus(_ name: String, _ status: EndpointStatus, reason: String?) async throws {
        guard var endpoint = try await store.endpoint(named: name), endpoint.status != .deleting else { return }
        guard endpoint.status != status || endpoint.failureReason != reason else { return }
        endpoint.status = status
        endpoint.failureReason = reason
        if status == .failed { endpoint.pendingConfigName = nil }
        endpoint.updatedAt = clock.now()
        try await store.updateEndpoint(endpoint)
        logger.info("Endpoint is \(status.rawValue)", metadata: ["endpoint": "\(name)"])
    }

    /// Records `status`; an endpoint already `InService` keeps the reason of its last rolled-back update.
    func record(_ name: String, _ status: EndpointStatus, reason: String?) async throws {
        var reason = reason
        if status == .inService, reason == nil, let endpoint = try await store.endpoint(named: name),
            endpoint.status == .inService
        {
            reason = endpoint.failureReason
        }
        try await setStatus(name, status, reason: reason)
    }

    /// Records an update as rolled back: the endpoint leaves `Updating` for `status`, with its config and (when the
    /// update was prepared) its variant settings as they were before it, and the reason.
    func recordRollback(_ name: String, plan: UpdatePlan?, status: EndpointStatus, reason: String) async {
        logger.warning("Endpoint update rolled back", metadata: ["endpoint": "\(name)", "reason": "\(reason)"])
        do {
            guard var endpoint = try await store.endpoint(named: name), endpoint.status == .updating else { return }
            endpoint.pendingConfigName = nil
            if let plan { endpoint.variantOverrides = plan.previousOverrides }
            endpoint.status = status
            endpoint.failureReason = reason
            endpoint.updatedAt = clock.now()
            try await store.updateEndpoint(endpoint)
        } catch {
            logger.error("Could not record the rollback", metadata: ["endpoint": "\(name)", "error": "\(error)"])
        }
    }

    /// Records an update as done: the endpoint is `InService` on the update's config and settings (a weights-only
    /// update writes its overrides alone). Returns the packages the endpoint used before.
    func recordCommitted(_ name: String, plan: UpdatePlan) async throws -> [String] {
        guard var endpoint = try await store.endpoint(named: name), endpoint.status != .deleting else { return [] }
        endpoint.variantOverrides = plan.overrides
        endpoint.updatedAt = clock.now()
        if plan.weightsOnly {
            try await store.updateEndpoint(endpoint)
            return []
        }
        let replaced = endpoint.deployment?.models.map(\.packagePath) ?? []
        endpoint.configName = plan.deployment.config.name
        endpoint.deployment = plan.deployment
        endpoint.pendingConfigName = nil
        endpoint.status = .inService
        endpoint.failureReason = nil
        try await store.updateEndpoint(endpoint)
        return replaced
    }

    /// What the endpoint runs: its own copy, made now from the stored config and models for a record written
    /// before endpoints kept one (and recorded, so that later deletions take nothing from it).
    func deployment(of endpoint: Endpoint) async throws -> EndpointDeployment {
        if let deployment = endpoint.deployment { return deployment }
        let deployment = try await store.deployment(ofConfig: endpoint.configName)
        if var stored = try await store.endpoint(named: endpoint.name) {
            stored.deployment = deployment
            try await store.updateEndpoint(stored)
        }
        return deployment
    }
}
