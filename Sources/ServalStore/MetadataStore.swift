public import ServalCore

/// Where Serval keeps its metadata: what is deployed (``DeploymentStore``), the queue of asynchronous invocations
/// (``AsyncInvocationStore``), transform jobs (``TransformJobStore``), access keys (``AccessKeyStore``) and the
/// resources' tags (``TagStore``), so that one store object carries everything. The executable opens one store and
/// hands it to each consumer; a consumer that needs only part of it names the narrow protocols it uses (the async
/// dispatcher and the transform runner do).
///
/// Every implementation (SQLite today, PostgreSQL for clusters) passes the same conformance suites in
/// `ServalStoreTests`.
public protocol MetadataStore: DeploymentStore, AsyncInvocationStore, TransformJobStore, AccessKeyStore, TagStore {}

/// Where models, endpoint configs and endpoints are kept.
///
/// Creating something that exists throws ``ServalError/Code/conflict``; reads of missing names return `nil`; deletes
/// return whether something was deleted.
public protocol DeploymentStore: Sendable {
    /// Stores a new model.
    func createModel(_ model: Model) async throws
    /// The model named `name`, if any.
    func model(named name: String) async throws -> Model?
    /// Every model, by name.
    func models() async throws -> [Model]
    /// Deletes a model, also while configs or endpoints use it (endpoints keep their own copy,
    /// ``Endpoint/deployment``).
    func deleteModel(named name: String) async throws -> Bool

    /// Stores a new endpoint config.
    func createEndpointConfig(_ config: EndpointConfig) async throws
    /// The endpoint config named `name`, if any.
    func endpointConfig(named name: String) async throws -> EndpointConfig?
    /// Every endpoint config, by name.
    func endpointConfigs() async throws -> [EndpointConfig]
    /// Deletes an endpoint config, also while endpoints use it (they keep their own copy, ``Endpoint/deployment``).
    func deleteEndpointConfig(named name: String) async throws -> Bool

    /// Stores a new endpoint.
    func createEndpoint(_ endpoint: Endpoint) async throws
    /// The endpoint named `name`, if any.
    func endpoint(named name: String) async throws -> Endpoint?
    /// Every endpoint, by name.
    func endpoints() async throws -> [Endpoint]
    /// Replaces a stored endpoint's fields; fails with ``ServalError/Code/notFound`` when it does not exist.
    func updateEndpoint(_ endpoint: Endpoint) async throws
    /// Deletes an endpoint.
    func deleteEndpoint(named name: String) async throws -> Bool
}

extension DeploymentStore {
    /// The config `endpoint` runs: its own copy, or for records written before endpoints kept one, the stored
    /// config of that name.
    public func config(of endpoint: Endpoint) async throws -> EndpointConfig? {
        if let deployment = endpoint.deployment { return deployment.config }
        return try await endpointConfig(named: endpoint.configName)
    }

    /// A copy of the stored config `name` and of its models, to deploy it.
    ///
    /// - Throws: ``ServalError/Code/notFound`` when the config or one of its models does not exist.
    public func deployment(ofConfig name: String) async throws -> EndpointDeployment {
        guard let config = try await endpointConfig(named: name) else {
            throw ServalError(.notFound, "config: endpoint config \"\(name)\" does not exist; create it first (POST /endpoint-configs).")
        }
        var models: [Model] = []
        for modelName in Set(config.variants.map(\.modelName)).sorted() {
            guard let model = try await model(named: modelName) else {
                throw ServalError(
                    .notFound,
                    "Model \"\(modelName)\" of endpoint config \"\(name)\" does not exist any more; create it again or use another config.")
            }
            models.append(model)
        }
        return EndpointDeployment(config: config, models: models)
    }

    /// The package paths still needed: every model's, and those of every endpoint's deployment.
    public func packagePathsInUse() async throws -> Set<String> {
        var paths = Set(try await models().map(\.packagePath))
        for endpoint in try await endpoints() {
            paths.formUnion(endpoint.deployment?.models.map(\.packagePath) ?? [])
        }
        return paths
    }
}
