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

/// An endpoint: a named, addressable deployment of an endpoint config.
public struct Endpoint: Codable, Sendable, Equatable {
    /// The endpoint's name, unique among endpoints.
    public var name: String
    /// The endpoint config it runs.
    public var configName: String
    /// The endpoint's status.
    public var status: EndpointStatus
    /// Why the endpoint failed, in words the user can act on; set when `status` is `Failed`.
    public var failureReason: String?
    /// When the endpoint was created.
    public var createdAt: Timestamp
    /// When the endpoint last changed.
    public var updatedAt: Timestamp

    /// Creates an endpoint.
    public init(
        name: String, configName: String, status: EndpointStatus, failureReason: String? = nil, createdAt: Timestamp,
        updatedAt: Timestamp
    ) {
        self.name = name
        self.configName = configName
        self.status = status
        self.failureReason = failureReason
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}
