public import ServalCore

/// Where Serval keeps its metadata: models, endpoint configs and endpoints, the queue of asynchronous
/// invocations (``AsyncInvocationStore``), transform jobs (``TransformJobStore``) and access keys
/// (``AccessKeyStore``), so that one store object carries everything.
///
/// Every implementation (SQLite today, PostgreSQL for clusters) passes the same conformance suite in
/// `ServalStoreTests`. Creating something that exists throws ``ServalError/Code/conflict``; reads of missing
/// names return `nil`; deletes return whether something was deleted.
public protocol MetadataStore: AsyncInvocationStore, TransformJobStore, AccessKeyStore {
    /// Stores a new model.
    func createModel(_ model: Model) async throws
    /// The model named `name`, if any.
    func model(named name: String) async throws -> Model?
    /// Every model, by name.
    func models() async throws -> [Model]
    /// Deletes a model; fails with ``ServalError/Code/conflict`` while an endpoint config uses it.
    func deleteModel(named name: String) async throws -> Bool

    /// Stores a new endpoint config.
    func createEndpointConfig(_ config: EndpointConfig) async throws
    /// The endpoint config named `name`, if any.
    func endpointConfig(named name: String) async throws -> EndpointConfig?
    /// Every endpoint config, by name.
    func endpointConfigs() async throws -> [EndpointConfig]
    /// Deletes an endpoint config; fails with ``ServalError/Code/conflict`` while an endpoint uses it.
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
