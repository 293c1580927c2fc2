public import ServalCore
import ServalRuntime
import ServalScheduling
import ServalStore

extension EndpointManager {
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
        do {
            let plan = try await driver.planConfigUpdate(endpoint, to: configName, retainOverrides: retainVariantProperties)
            await driver.request(name, plan)
        } catch {
            await driver.handle(
                name, .updateAbandoned(reason: "The update to endpoint config \"\(configName)\" failed: \(error)"))
        }
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
        guard let running = table.entry(name)?.serving else {
            throw ServalError(.validationError, "Endpoint \"\(name)\" is not running; it cannot be updated now.")
        }
        try Self.validate(changes, of: running)
        let overrides = VariantOverride.merging(endpoint.variantOverrides, changes)
        var weights = running.weights
        for change in changes {
            if let weight = change.weight, let index = running.variants.firstIndex(where: { $0.name == change.variantName }) {
                weights[index] = weight
            }
        }
        guard weights.contains(where: { $0 > 0 }) else {
            throw ServalError.invalid("DesiredWeightsAndCapacities", "would make every weight 0; at least one variant must have a positive weight.")
        }
        var members = zip(running.variants, running.ids).map { (variant: $0.0, id: $0.1) }
        var restarted = false
        for change in changes {
            guard let count = change.instanceCount,
                let index = running.variants.firstIndex(where: { $0.name == change.variantName }),
                count != running.variants[index].spec.variant.instanceCount
            else { continue }
            var variant = running.variants[index].spec.variant
            variant.instanceCount = count
            variant.weight = weights[index]
            members[index] = driver.makeVariant(endpoint: name, variant: variant, model: running.variants[index].spec.model)
            restarted = true
        }
        let runtime = EndpointRuntime(
            name: name, variants: members.map(\.variant), weights: weights, ids: members.map(\.id),
            dataCapture: running.dataCapture)
        let previous = endpoint.variantOverrides
        endpoint.variantOverrides = overrides
        endpoint.updatedAt = clock.now()
        if restarted {
            endpoint.status = .updating
            endpoint.failureReason = nil
        }
        // Recorded before anything changes, so that a store that cannot record it fails the call, not a restart later.
        try await store.updateEndpoint(endpoint)
        let plan = UpdatePlan(
            id: driver.nextID(), runtime: runtime, deployment: try await driver.records.deployment(of: endpoint),
            overrides: overrides, previousOverrides: previous, weightsOnly: !restarted)
        await driver.request(name, plan)
        return endpoint
    }

    /// Checks each change names a variant of `running` once and sets something in range.
    private static func validate(_ changes: [VariantOverride], of running: EndpointRuntime) throws {
        guard !changes.isEmpty else {
            throw ServalError.invalid("DesiredWeightsAndCapacities", "must name at least one variant.")
        }
        var seen = Set<String>()
        for (index, change) in changes.enumerated() {
            let field = "DesiredWeightsAndCapacities[\(index)]"
            guard running.member(named: change.variantName) != nil else {
                throw ServalError.invalid(
                    "\(field).VariantName",
                    "endpoint \"\(running.name)\" has no variant \"\(change.variantName)\"; its variants are \(running.variants.map(\.name).joined(separator: ", ")).")
            }
            guard seen.insert(change.variantName).inserted else {
                throw ServalError.invalid("\(field).VariantName", "\"\(change.variantName)\" is named twice.")
            }
            guard change.weight != nil || change.instanceCount != nil else {
                throw ServalError.invalid(field, "set DesiredWeight, DesiredInstanceCount or both.")
            }
            try change.validate(field: field)
        }
    }

    private func checkUpdatable(_ endpoint: Endpoint) throws(ServalError) {
        guard endpoint.status == .inService, table.entry(endpoint.name)?.update == nil else {
            throw ServalError(
                .validationError,
                "Endpoint \"\(endpoint.name)\" is \(endpoint.status.rawValue); it can be updated only when InService. Wait for it (e.g. the endpoint_in_service waiter) and retry.")
        }
    }
}
