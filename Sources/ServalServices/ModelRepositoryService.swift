public import ServalCore
import ServalStore

/// The Open Inference Protocol's model repository extension over Serval's own resources.
///
/// The repository holds every endpoint, and every model that has no endpoint of its name. *Loading* a name
/// starts an endpoint: the existing one (again, when it failed), or one made from the endpoint config of that
/// name, or from the model of that name with one default variant (`AllTraffic`, one instance, batching off).
/// *Unloading* deletes the endpoint; its config and model stay, so the name can be loaded again.
public struct ModelRepositoryService: Sendable {
    /// One entry of the repository index.
    public struct Entry: Sendable, Equatable {
        /// The model's name.
        public var name: String
        /// `READY`, `LOADING`, `UNLOADING` or `UNAVAILABLE`.
        public var state: String
        /// Why it is not ready, when it is not.
        public var reason: String
    }

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

    /// Every endpoint, then every model without an endpoint of its name, sorted by name.
    public func index() async throws -> [Entry] {
        var entries: [String: Entry] = [:]
        for model in try await store.models() {
            entries[model.name] = Entry(name: model.name, state: "UNAVAILABLE", reason: "unloaded")
        }
        for endpoint in try await endpoints.list() {
            let state: String
            switch endpoint.status {
            case .inService: state = "READY"
            case .creating, .updating, .systemUpdating, .rollingBack: state = "LOADING"
            case .deleting: state = "UNLOADING"
            case .failed, .outOfService, .updateRollbackFailed: state = "UNAVAILABLE"
            }
            entries[endpoint.name] = Entry(name: endpoint.name, state: state, reason: endpoint.failureReason ?? "")
        }
        return entries.values.sorted { $0.name < $1.name }
    }

    /// Loads `name` and waits until it serves, or throws with the reason it cannot.
    ///
    /// - Parameter timeout: how long to wait for the model to load.
    public func load(_ name: String, timeout: Duration) async throws {
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
