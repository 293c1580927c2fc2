/// The status of an endpoint, with SageMaker's names.
public enum EndpointStatus: String, Codable, Sendable, Equatable, CaseIterable {
    case outOfService = "OutOfService"
    case creating = "Creating"
    case updating = "Updating"
    case systemUpdating = "SystemUpdating"
    case rollingBack = "RollingBack"
    case inService = "InService"
    case deleting = "Deleting"
    case failed = "Failed"
    case updateRollbackFailed = "UpdateRollbackFailed"
}

/// A change to one variant of an endpoint made without a new config (SageMaker's
/// `UpdateEndpointWeightsAndCapacities`): its traffic weight, its instance count, or both.
public struct VariantOverride: Codable, Sendable, Equatable {
    /// The variant changed.
    public var variantName: String
    /// The variant's traffic weight, instead of the config's.
    public var weight: Double?
    /// The variant's instance count, instead of the config's.
    public var instanceCount: Int?

    /// Creates an override.
    public init(variantName: String, weight: Double? = nil, instanceCount: Int? = nil) {
        self.variantName = variantName
        self.weight = weight
        self.instanceCount = instanceCount
    }

    /// Checks the ranges ``ProductionVariant`` allows.
    public func validate(field: String) throws(ServalError) {
        if let weight, !(weight.isFinite && (0...1_000_000).contains(weight)) {
            throw .invalid("\(field).weight", "must be a number between 0 and 1000000.")
        }
        if let instanceCount, !(1...64).contains(instanceCount) {
            throw .invalid("\(field).instanceCount", "is \(instanceCount); it must be between 1 and 64.")
        }
    }

    /// `overrides` with `changes` merged in, one entry per variant, in variant-name order.
    public static func merging(_ overrides: [VariantOverride]?, _ changes: [VariantOverride]) -> [VariantOverride] {
        var merged: [String: VariantOverride] = [:]
        for override in (overrides ?? []) + changes {
            var entry = merged[override.variantName] ?? VariantOverride(variantName: override.variantName)
            if let weight = override.weight { entry.weight = weight }
            if let count = override.instanceCount { entry.instanceCount = count }
            merged[override.variantName] = entry
        }
        return merged.values.sorted { $0.variantName < $1.variantName }
    }
}

/// An endpoint: a named, addressable deployment of an endpoint config.
public struct Endpoint: Codable, Sendable, Equatable {
    /// The endpoint's name, unique among endpoints.
    public var name: String
    /// The endpoint config it runs (during an update, the one still serving).
    public var configName: String
    /// The endpoint's status.
    public var status: EndpointStatus
    /// Why the endpoint failed, in words the user can act on; set when `status` is `Failed`, and after an update
    /// that failed and was rolled back (the endpoint is then `InService` with its previous config).
    public var failureReason: String?
    /// When the endpoint was created.
    public var createdAt: Timestamp
    /// When the endpoint last changed.
    public var updatedAt: Timestamp
    /// The config an update in progress switches to once its variants are ready.
    public var pendingConfigName: String?
    /// Weights and instance counts changed on the running endpoint, applied over its config's.
    public var variantOverrides: [VariantOverride]?
    /// The config and models the endpoint runs, copied when it was created or last updated (`nil` in records
    /// written before endpoints kept a copy). The endpoint starts from this copy after a restart, an instance
    /// restart or a change of instance count, so it serves on when its config or models are deleted, as SageMaker
    /// allows.
    public var deployment: EndpointDeployment?

    /// Creates an endpoint.
    public init(
        name: String, configName: String, status: EndpointStatus, failureReason: String? = nil, createdAt: Timestamp,
        updatedAt: Timestamp, pendingConfigName: String? = nil, variantOverrides: [VariantOverride]? = nil,
        deployment: EndpointDeployment? = nil
    ) {
        self.name = name
        self.configName = configName
        self.status = status
        self.failureReason = failureReason
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.pendingConfigName = pendingConfigName
        self.variantOverrides = variantOverrides
        self.deployment = deployment
    }
}

/// An endpoint's own copy of the config it runs and of that config's models (with their package paths), so that
/// deleting the config or a model does not take anything from a running endpoint.
public struct EndpointDeployment: Codable, Sendable, Equatable {
    /// The endpoint config as it was when deployed.
    public var config: EndpointConfig
    /// The models its variants name, as they were when deployed.
    public var models: [Model]

    /// Creates a deployment.
    public init(config: EndpointConfig, models: [Model]) {
        self.config = config
        self.models = models
    }

    /// The copy of the model named `name`.
    public func model(named name: String) -> Model? {
        models.first { $0.name == name }
    }
}
