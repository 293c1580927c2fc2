import ServalCore
import ServalStore
import Testing

// MARK: Fixtures

func timestamp(_ milliseconds: Int64) -> Timestamp {
    Timestamp(millisecondsSinceEpoch: milliseconds)
}

func makeModel(_ name: String, environment: [String: String] = [:]) -> Model {
    Model(
        name: name, packagePath: "models/\(name)-0123abcd",
        package: ModelPackageInfo(
            artifact: .sklearn, hasInferenceCode: true, requirements: "numpy==2.1\nscikit-learn\n",
            digest: String(repeating: "ab", count: 32), sizeBytes: 12_345),
        environment: environment, createdAt: timestamp(1_700_000_000_123))
}

func makeConfig(_ name: String, models: [String]) -> EndpointConfig {
    EndpointConfig(
        name: name,
        variants: models.enumerated().map { index, model in
            ProductionVariant(
                name: "variant-\(index)", modelName: model, instanceCount: index + 1, weight: Double(index) + 0.5,
                batching: BatchingSettings(maxBatchSize: 8, maxQueueDelayMicroseconds: 2_000, maxQueueSize: 64))
        },
        createdAt: timestamp(1_700_000_001_000))
}

func makeEndpoint(_ name: String, config: String, status: EndpointStatus = .creating) -> Endpoint {
    Endpoint(
        name: name, configName: config, status: status, createdAt: timestamp(1_700_000_002_000),
        updatedAt: timestamp(1_700_000_002_000))
}

/// Expects `body` to throw a ``ServalError`` with `code`, and returns it.
@discardableResult
func expectServalError(
    _ code: ServalError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> ServalError? {
    do {
        try await body()
        Issue.record("expected a \(code.rawValue) error; nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as ServalError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected a ServalError \(code.rawValue), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

// MARK: The suite

/// The behaviour every ``MetadataStore`` must have, run against each ``StoreKind``.
@Suite("MetadataStore conformance")
struct MetadataStoreConformanceTests {
    // MARK: Models

    @Test("models: create, get, list by name, delete", arguments: StoreKind.allCases)
    func models(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(try await store.models().isEmpty)
            #expect(try await store.model(named: "zeta") == nil)
            let zeta = makeModel("zeta", environment: ["OMP_NUM_THREADS": "2", "NOTE": "ünïcode ✓"])
            let alpha = makeModel("alpha")
            try await store.createModel(zeta)
            try await store.createModel(alpha)

            #expect(try await store.model(named: "zeta") == zeta)
            #expect(try await store.model(named: "alpha") == alpha)
            #expect(try await store.model(named: "Alpha") == nil)
            #expect(try await store.models() == [alpha, zeta])

            #expect(try await store.deleteModel(named: "zeta"))
            #expect(try await store.model(named: "zeta") == nil)
            #expect(try await store.deleteModel(named: "zeta") == false)
            #expect(try await store.deleteModel(named: "never-was") == false)
            #expect(try await store.models() == [alpha])
        }
    }

    @Test("models: creating a duplicate is a conflict and keeps the original", arguments: StoreKind.allCases)
    func duplicateModel(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let original = makeModel("m1")
            try await store.createModel(original)
            var other = makeModel("m1")
            other.packagePath = "models/other"
            let error = await expectServalError(.conflict) { try await store.createModel(other) }
            #expect(error?.message.contains("\"m1\" already exists") == true)
            #expect(try await store.model(named: "m1") == original)
            #expect(try await store.models().count == 1)
        }
    }

    @Test("models and configs in use may be deleted; an endpoint keeps its deployment and its packages stay in use", arguments: StoreKind.allCases)
    func deletionInUse(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.createModel(makeModel("m1"))
            try await store.createModel(makeModel("m2"))
            // m1 twice in one config.
            try await store.createEndpointConfig(makeConfig("cfg-a", models: ["m1", "m2", "m1"]))
            let deployment = try await store.deployment(ofConfig: "cfg-a")
            #expect(deployment.config == (try await store.endpointConfig(named: "cfg-a")))
            #expect(deployment.models.map(\.name) == ["m1", "m2"])
            var endpoint = makeEndpoint("ep", config: "cfg-a")
            endpoint.deployment = deployment
            try await store.createEndpoint(endpoint)

            #expect(try await store.deleteEndpointConfig(named: "cfg-a"))
            #expect(try await store.deleteModel(named: "m1"))
            #expect(try await store.deleteModel(named: "m2"))
            #expect(try await store.models().isEmpty)
            let stored = try #require(try await store.endpoint(named: "ep"))
            #expect(stored.deployment == deployment)
            #expect(try await store.config(of: stored) == deployment.config)
            #expect(try await store.packagePathsInUse() == ["models/m1-0123abcd", "models/m2-0123abcd"])

            #expect(try await store.deleteEndpoint(named: "ep"))
            #expect(try await store.packagePathsInUse().isEmpty)
        }
    }

    @Test("deployments: a config whose model is gone cannot be deployed; an endpoint without a copy reads the stored config", arguments: StoreKind.allCases)
    func deployments(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.createModel(makeModel("m1"))
            try await store.createEndpointConfig(makeConfig("cfg", models: ["m1", "gone"]))
            let error = await expectServalError(.notFound) { _ = try await store.deployment(ofConfig: "cfg") }
            #expect(error?.message.contains("\"gone\"") == true)
            await expectServalError(.notFound) { _ = try await store.deployment(ofConfig: "nope") }
            let old = makeEndpoint("old", config: "cfg")
            try await store.createEndpoint(old)
            #expect(try await store.config(of: old) == (try await store.endpointConfig(named: "cfg")))
            #expect(try await store.packagePathsInUse() == ["models/m1-0123abcd"])
        }
    }

    // MARK: Endpoint configs

    @Test("endpoint configs: create, get, list by name, delete", arguments: StoreKind.allCases)
    func endpointConfigs(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(try await store.endpointConfigs().isEmpty)
            let two = makeConfig("two", models: ["m1", "m2"])
            let one = makeConfig("one", models: ["m1"])
            try await store.createEndpointConfig(two)
            try await store.createEndpointConfig(one)

            #expect(try await store.endpointConfig(named: "two") == two)
            #expect(try await store.endpointConfig(named: "three") == nil)
            #expect(try await store.endpointConfigs() == [one, two])

            #expect(try await store.deleteEndpointConfig(named: "two"))
            #expect(try await store.deleteEndpointConfig(named: "two") == false)
            #expect(try await store.endpointConfig(named: "two") == nil)
            #expect(try await store.endpointConfigs() == [one])
        }
    }

    @Test("endpoint configs: creating a duplicate is a conflict and keeps the original", arguments: StoreKind.allCases)
    func duplicateConfig(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let original = makeConfig("cfg", models: ["m1"])
            try await store.createEndpointConfig(original)
            await expectServalError(.conflict) { try await store.createEndpointConfig(makeConfig("cfg", models: ["m2"])) }
            #expect(try await store.endpointConfig(named: "cfg") == original)
        }
    }

    // MARK: Endpoints

    @Test("endpoints: create, get, list by name, update, delete", arguments: StoreKind.allCases)
    func endpoints(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(try await store.endpoints().isEmpty)
            let b = makeEndpoint("b", config: "cfg")
            let a = makeEndpoint("a", config: "cfg")
            try await store.createEndpoint(b)
            try await store.createEndpoint(a)
            #expect(try await store.endpoint(named: "b") == b)
            #expect(try await store.endpoint(named: "c") == nil)
            #expect(try await store.endpoints() == [a, b])

            var failed = b
            failed.status = .failed
            failed.failureReason = "The worker exited: ModuleNotFoundError: No module named 'sklearn'"
            failed.updatedAt = timestamp(1_700_000_009_999)
            try await store.updateEndpoint(failed)
            #expect(try await store.endpoint(named: "b") == failed)
            #expect(try await store.endpoints() == [a, failed])

            var recovered = failed
            recovered.status = .inService
            recovered.failureReason = nil
            try await store.updateEndpoint(recovered)
            #expect(try await store.endpoint(named: "b")?.failureReason == nil)

            #expect(try await store.deleteEndpoint(named: "a"))
            #expect(try await store.deleteEndpoint(named: "a") == false)
            #expect(try await store.endpoints() == [recovered])
        }
    }

    @Test("endpoints: creating a duplicate is a conflict", arguments: StoreKind.allCases)
    func duplicateEndpoint(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let original = makeEndpoint("ep", config: "cfg-a")
            try await store.createEndpoint(original)
            await expectServalError(.conflict) { try await store.createEndpoint(makeEndpoint("ep", config: "cfg-b")) }
            #expect(try await store.endpoint(named: "ep") == original)
        }
    }

    @Test("endpoints: updating a missing endpoint is notFound and creates nothing", arguments: StoreKind.allCases)
    func updateMissingEndpoint(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let error = await expectServalError(.notFound) {
                try await store.updateEndpoint(makeEndpoint("ghost", config: "cfg", status: .inService))
            }
            #expect(error?.message.contains("ghost") == true)
            let ghost = try await store.endpoint(named: "ghost")
            #expect(ghost == nil)
            #expect(try await store.endpoints().isEmpty)
        }
    }

    @Test("the kinds of resource have separate names", arguments: StoreKind.allCases)
    func separateNamespaces(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.createModel(makeModel("same"))
            try await store.createEndpointConfig(makeConfig("same", models: ["same"]))
            try await store.createEndpoint(makeEndpoint("same", config: "same"))
            #expect(try await store.model(named: "same") != nil)
            #expect(try await store.endpointConfig(named: "same") != nil)
            #expect(try await store.endpoint(named: "same") != nil)
        }
    }

    // MARK: Durability

    @Test("everything survives reopening the database", arguments: StoreKind.allCases)
    func survivesReopen(kind: StoreKind) async throws {
        try await withStore(kind) { store, backend in
            let model = makeModel("m1", environment: ["A": "1"])
            let config = makeConfig("cfg", models: ["m1"])
            var endpoint = makeEndpoint("ep", config: "cfg")
            try await store.createModel(model)
            try await store.createModel(makeModel("doomed"))
            try await store.createEndpointConfig(config)
            endpoint.deployment = try await store.deployment(ofConfig: "cfg")  // its copy survives too
            try await store.createEndpoint(endpoint)
            endpoint.status = .inService
            try await store.updateEndpoint(endpoint)
            #expect(try await store.deleteModel(named: "doomed"))

            let reopened = try backend.open()
            #expect(try await reopened.models() == [model])
            #expect(try await reopened.endpointConfigs() == [config])
            #expect(try await reopened.endpoints() == [endpoint])
            await expectServalError(.conflict) { try await reopened.createModel(model) }
        }
    }

    @Test("a store sees what another store on the same data wrote", arguments: StoreKind.allCases)
    func twoStoresShareData(kind: StoreKind) async throws {
        try await withStore(kind) { store, backend in
            let other = try backend.open()
            try await store.createModel(makeModel("m1"))
            #expect(try await other.model(named: "m1") == makeModel("m1"))
            #expect(try await other.deleteModel(named: "m1"))
            #expect(try await store.model(named: "m1") == nil)
        }
    }

    @Test("concurrent creates of one name: exactly one wins, the others conflict", arguments: StoreKind.allCases)
    func concurrentCreates(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let outcomes = await withTaskGroup(of: ServalError.Code?.self) { group in
                for index in 0..<16 {
                    group.addTask {
                        var model = makeModel("race")
                        model.packagePath = "models/race-\(index)"
                        do {
                            try await store.createModel(model)
                            return nil
                        } catch let error as ServalError {
                            return error.code
                        } catch {
                            return .internalFailure
                        }
                    }
                }
                return await group.reduce(into: [ServalError.Code?]()) { $0.append($1) }
            }
            #expect(outcomes.count(where: { $0 == nil }) == 1)
            #expect(outcomes.count(where: { $0 == .conflict }) == 15)
        }
    }
}
