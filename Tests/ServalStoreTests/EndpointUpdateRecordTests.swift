import ServalCore
import ServalStore
import Testing

/// The fields the SageMaker control plane and endpoint updates add to stored resources survive a reopen, and
/// records written before they existed still read.
@Suite("MetadataStore conformance: SageMaker records and endpoint updates")
struct EndpointUpdateRecordTests {
    @Test("sageMakerRequest, pendingConfigName and variantOverrides round-trip", arguments: StoreKind.allCases)
    func roundTrip(kind: StoreKind) async throws {
        try await withStore(kind) { store, backend in
            var model = makeModel("m")
            model.sageMakerRequest = #"{"ModelName":"m","PrimaryContainer":{"Image":"any"}}"#
            var config = makeConfig("c", models: ["m"])
            config.sageMakerRequest = #"{"EndpointConfigName":"c"}"#
            try await store.createModel(model)
            try await store.createEndpointConfig(config)
            try await store.createEndpointConfig(makeConfig("d", models: ["m"]))
            var endpoint = makeEndpoint("e", config: "c", status: .inService)
            try await store.createEndpoint(endpoint)
            endpoint.status = .updating
            endpoint.pendingConfigName = "d"
            endpoint.variantOverrides = [VariantOverride(variantName: "variant-0", weight: 3, instanceCount: 2)]
            try await store.updateEndpoint(endpoint)

            let reopened = try backend.open()
            #expect(try await reopened.model(named: "m") == model)
            #expect(try await reopened.endpointConfig(named: "c") == config)
            #expect(try await reopened.endpoint(named: "e") == endpoint)
            #expect(try await reopened.endpointConfig(named: "d")?.sageMakerRequest == nil)
        }
    }
}
