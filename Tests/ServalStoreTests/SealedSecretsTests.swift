import Foundation
import ServalAuth
import ServalCore
import ServalStore
import Testing

@Suite struct SealedSecretsTests {
    @Test func webhookSecretsAndSecretLookingEnvironmentValuesAreSealedAtRest() async throws {
        let backend = try SQLiteBackend()
        defer { backend.destroy() }
        let store = try backend.open()
        var model = makeModel(
            "churn", environment: ["API_TOKEN": "tok-4f1e9a", "db_password": "pw-77c2b0", "REGION": "eu-west-1"])
        model.sageMakerRequest = #"{"Environment":{"API_TOKEN":"tok-4f1e9a"}}"#
        try await store.createModel(model)
        var config = makeConfig("churn", models: ["churn"])
        config.asyncInference = AsyncInferenceConfig(outputPath: "s3://out/churn", webhookSecret: "whsec-91d3aa")
        try await store.createEndpointConfig(config)
        // An endpoint's own copy of its config and models holds the same secrets; updated too.
        var endpoint = makeEndpoint("churn", config: "churn")
        endpoint.deployment = try await store.deployment(ofConfig: "churn")
        try await store.createEndpoint(endpoint)
        endpoint.status = .inService
        try await store.updateEndpoint(endpoint)

        // Read back whole, by this store and by a new one (a restart).
        for reader in [store, try backend.open()] {
            #expect(try await reader.model(named: "churn") == model)
            #expect(try await reader.models() == [model])
            #expect(try await reader.endpointConfig(named: "churn")?.asyncInference?.webhookSecret == "whsec-91d3aa")
            #expect(try await reader.endpoint(named: "churn") == endpoint)
            #expect(try await reader.endpoints().first?.deployment == EndpointDeployment(config: config, models: [model]))
        }
        let raw = String(decoding: backend.rawBytes(), as: UTF8.self)
        for secret in ["tok-4f1e9a", "pw-77c2b0", "whsec-91d3aa"] {
            #expect(!raw.contains(secret), "\(secret) is stored in clear")
        }
        #expect(raw.contains("eu-west-1"), "a value whose name does not look secret is stored as it is")
        #expect(raw.contains(SealedValues.prefix))
    }

    @Test func aSealedValueOpensOnlyInItsOwnContextAndUnderItsKey() throws {
        let sealer = SecretSealer(masterKey: .generate())
        let sealed = try sealer.seal("s3cret", context: "model/a/environment/TOKEN")
        #expect(sealed.hasPrefix(SealedValues.prefix) && !sealed.contains("s3cret"))
        #expect(try sealer.open(sealed, context: "model/a/environment/TOKEN") == "s3cret")
        #expect(throws: SecretSealingError.self) { try sealer.open(sealed, context: "model/b/environment/TOKEN") }
        #expect(throws: SecretSealingError.self) {
            try SecretSealer(masterKey: .generate()).open(sealed, context: "model/a/environment/TOKEN")
        }
        // Values stored before sealing are read as they are; sealing twice does not nest.
        #expect(try sealer.open("plain", context: "x") == "plain")
        #expect(try sealer.seal(sealed, context: "model/a/environment/TOKEN") == sealed)
    }

    @Test func secretLookingNames() {
        for name in ["API_TOKEN", "aws_secret_access_key", "DB_PASSWORD", "HF_AUTH", "PRIVATE_PEM", "OPENAI_API_KEY"] {
            #expect(SealedValues.looksSecret(variable: name), "\(name)")
        }
        for name in ["REGION", "OMP_NUM_THREADS", "SAGEMAKER_PROGRAM", "MODEL_NAME"] {
            #expect(!SealedValues.looksSecret(variable: name), "\(name)")
        }
    }
}
