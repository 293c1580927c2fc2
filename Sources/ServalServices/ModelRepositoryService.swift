public import ServalCore
import ServalStore

/// The Open Inference Protocol's model repository extension over Serval's own resources.
///
/// The repository holds every endpoint, and every model that has no endpoint of its name. *Loading* a name
/// starts an endpoint: the existing one (again, when it failed), or one made from the endpoint config of that
/// name, or from the model of that name with one default variant (`AllTraffic`, one instance, batching off).
/// *Unloading* deletes the endpoint; its config and model stay, so the name can be loaded again.
public struct ModelRepositoryService: Sendable {
    /// A model's state in the repository index; the raw values are the protocol's.
    public enum State: String, Sendable {
        case ready = "READY"
        case loading = "LOADING"
        case unloading = "UNLOADING"
        case unavailable = "UNAVAILABLE"
    }

    /// One entry of the repository index.
    public struct Entry: Sendable, Equatable {
        /// The model's name.
        public var name: String
        /// Its state.
        public var state: State
        /// Why it is not ready, when it is not.
        public var reason: String
    }

    /// How long ``load(_:timeout:)`` waits by default: SageMaker's health-check allowance and a minute for the
    /// Python environment.
    public static let defaultLoadTimeout = Duration.seconds(ProductionVariant.defaultModelLoadTimeoutSeconds + 60)

    let endpoints: EndpointManager
    let configs: EndpointConfigService
    let inference: InferenceService
    let store: any MetadataStore

    /// Creates the service.
    public init(
        endpoints: EndpointManager, configs: EndpointConfigService, inference: InferenceService, store: any MetadataStore
    ) {
        self.endpoints = endpoints
        self.configs = configs
        self.inference = inference
        self.store = store
    }

    /// Whether the model (or the given version) can serve now: `false` while it loads, after it failed, and
    /// when it is unloaded (a stored model without an endpoint). Throws ``ServalError/Code/notFound`` only for a
    /// name the repository does not hold.
    public func isReady(_ name: String, version: String?) async throws(ServalError) -> Bool {
        do {
            return try await inference.isReady(model: name, version: version)
        } catch where error.code == .notFound {
            guard (try? await store.endpoint(named: name)) == nil, (try? await store.model(named: name)) != nil else {
                throw error
            }
            return false
        }
    }

    /// Every endpoint, and every model without an endpoint of its name, sorted by name; only the ready ones
    /// when `readyOnly` is set.
    public func index(readyOnly: Bool = false) async throws -> [Entry] {
        var entries: [String: Entry] = [:]
        for model in try await store.models() {
            entries[model.name] = Entry(name: model.name, state: .unavailable, reason: "unloaded")
        }
        for endpoint in try await endpoints.list() {
            let state: State
            switch endpoint.status {
            case .inService: state = .ready
            case .creating, .updating, .systemUpdating, .rollingBack: state = .loading
            case .deleting: state = .unloading
            case .failed, .outOfService, .updateRollbackFailed: state = .unavailable
            }
            entries[endpoint.name] = Entry(name: endpoint.name, state: state, reason: endpoint.failureReason ?? "")
        }
        return entries.values.filter { !readyOnly || $0.state == .ready }.sorted { $0.name < $1.name }
    }

    /// The statistics of every version of every ready model, or of one model's versions (or one version).
    ///
    /// A model that stops serving between the index and its statistics is left out of the whole-repository
    /// answer; a named model that cannot answer throws.
    public func statistics(
        model: String?, version: String?
    ) async throws -> [(model: String, version: String, statistics: InferenceStatistics)] {
        if let model, !model.isEmpty {
            return try await inference.statistics(model: model, version: version).map { (model, $0.version, $0.statistics) }
        }
        var result: [(String, String, InferenceStatistics)] = []
        for entry in try await index(readyOnly: true) {
            guard let versions = try? await inference.statistics(model: entry.name, version: nil) else { continue }
            result += versions.map { (entry.name, $0.version, $0.statistics) }
        }
        return result
    }

    /// Loads `name` and waits until it serves, or throws with the reason it cannot.
    ///
    /// - Parameter timeout: how long to wait for the model to load.
    public func load(_ name: String, timeout: Duration = defaultLoadTimeout) async throws {
        if let endpoint = try await store.endpoint(named: name) {
            switch endpoint.status {
            case .failed, .outOfService, .updateRollbackFailed:
                _ = try await endpoints.delete(name)
                try await waitUntilGone(name, timeout: .seconds(60))
                _ = try await endpoints.create(name: name, configName: endpoint.configName)
            case .deleting:
                try await waitUntilGone(name, timeout: .seconds(60))
                try await load(name, timeout: timeout)
                return
            default:
                break
            }
        } else if try await store.endpointConfig(named: name) != nil {
            _ = try await endpoints.create(name: name, configName: name)
        } else if try await store.model(named: name) != nil {
            _ = try await configs.create(name: name, variants: [ProductionVariant(name: "AllTraffic", modelName: name)])
            _ = try await endpoints.create(name: name, configName: name)
        } else {
            throw ServalError(
                .notFound,
                "There is no model, endpoint config or endpoint named \"\(name)\" to load; create the model first (POST /models or `serval models create`).")
        }
        try await waitUntilServing(name, timeout: timeout)
    }

    /// Unloads `name`: deletes its endpoint and waits until its workers have stopped.
    public func unload(_ name: String) async throws {
        guard try await store.endpoint(named: name) != nil else {
            if try await store.model(named: name) != nil { return }  // already unloaded
            throw ServalError.notFound("Model", name)
        }
        _ = try await endpoints.delete(name)
        try await waitUntilGone(name, timeout: .seconds(60))
    }

    private func waitUntilServing(_ name: String, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            let endpoint = try await endpoints.get(name)
            switch endpoint.status {
            case .inService:
                return
            case .failed:
                throw ServalError(
                    .validationError, "Model \"\(name)\" failed to load: \(endpoint.failureReason ?? "no reason recorded")")
            default:
                guard ContinuousClock.now < deadline else {
                    throw ServalError(.serviceUnavailable, "Model \"\(name)\" is still \(endpoint.status.rawValue) after \(timeout); it goes on loading.")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    private func waitUntilGone(_ name: String, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await store.endpoint(named: name) != nil {
            guard ContinuousClock.now < deadline else {
                throw ServalError(.serviceUnavailable, "Model \"\(name)\" is still unloading after \(timeout).")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
