import ServalCore
import Testing

func variant(
    _ name: String, model: String = "model-a", instances: Int = 1, weight: Double = 1, batching: BatchingSettings = .off,
    invocationTimeout: Int = 60, loadTimeout: Int = 240
) -> ProductionVariant {
    ProductionVariant(
        name: name, modelName: model, instanceCount: instances, weight: weight, batching: batching,
        invocationTimeoutSeconds: invocationTimeout, modelLoadTimeoutSeconds: loadTimeout)
}

func config(_ variants: [ProductionVariant], name: String = "config-1") -> EndpointConfig {
    EndpointConfig(name: name, variants: variants, createdAt: Timestamp(millisecondsSinceEpoch: 0))
}

@Suite("EndpointConfig validation")
struct EndpointConfigTests {
    @Test("a config of one to ten valid variants passes", arguments: [1, 2, 10])
    func valid(count: Int) {
        let variants = (0..<count).map { variant("v\($0)", weight: Double($0 + 1)) }
        #expect(failure { try config(variants).validate() } == nil)
    }

    @Test("the defaults and the bounds of every range pass")
    func bounds() {
        let variants = [
            ProductionVariant(name: "defaults", modelName: "m"),
            variant(
                "low", instances: 1, weight: 0.5,
                batching: BatchingSettings(maxBatchSize: 1, maxQueueDelayMicroseconds: 0, maxQueueSize: 1),
                invocationTimeout: 1, loadTimeout: 1),
            variant(
                "high", instances: 64, weight: 1_000_000,
                batching: BatchingSettings(maxBatchSize: 1024, maxQueueDelayMicroseconds: 60_000_000, maxQueueSize: 100_000),
                invocationTimeout: 3600, loadTimeout: 3600),
        ]
        #expect(failure { try config(variants).validate() } == nil)
    }

    @Test("zero variants fail")
    func noVariants() {
        expectInvalid(field: "variants", mentioning: "has 0 entries") { try config([]).validate() }
    }

    @Test("eleven variants fail")
    func elevenVariants() {
        let variants = (0..<11).map { variant("v\($0)") }
        expectInvalid(field: "variants", mentioning: "has 11 entries") { try config(variants).validate() }
    }

    @Test("duplicate variant names fail on the second one")
    func duplicateNames() {
        let variants = [variant("a"), variant("b"), variant("a", model: "model-b")]
        expectInvalid(field: "variants[2].name", mentioning: #""a" is used by another variant"#) {
            try config(variants).validate()
        }
    }

    @Test("all weights 0 fail; one positive weight is enough")
    func zeroWeights() {
        expectInvalid(field: "variants", mentioning: "every weight is 0") {
            try config([variant("a", weight: 0), variant("b", weight: 0)]).validate()
        }
        #expect(failure { try config([variant("a", weight: 0), variant("b", weight: 0.001)]).validate() } == nil)
    }

    @Test("an invalid config name fails on name")
    func badConfigName() {
        expectInvalid(field: "name") { try config([variant("a")], name: "bad_name").validate() }
    }

    @Test("invalid variant and model names fail with the variant's path")
    func badVariantNames() {
        expectInvalid(field: "variants[1].name") { try config([variant("a"), variant("-b")]).validate() }
        expectInvalid(field: "variants[0].model") { try config([variant("a", model: "")]).validate() }
    }

    @Test(
        "out-of-range batching fails with the field's path",
        arguments: [
            (BatchingSettings(maxBatchSize: 0, maxQueueDelayMicroseconds: 0, maxQueueSize: 10), "variants[0].maxBatchSize"),
            (BatchingSettings(maxBatchSize: 1025, maxQueueDelayMicroseconds: 0, maxQueueSize: 10), "variants[0].maxBatchSize"),
            (BatchingSettings(maxBatchSize: -1, maxQueueDelayMicroseconds: 0, maxQueueSize: 10), "variants[0].maxBatchSize"),
            (BatchingSettings(maxBatchSize: 8, maxQueueDelayMicroseconds: -1, maxQueueSize: 10), "variants[0].maxQueueDelay"),
            (BatchingSettings(maxBatchSize: 8, maxQueueDelayMicroseconds: 60_000_001, maxQueueSize: 10), "variants[0].maxQueueDelay"),
            (BatchingSettings(maxBatchSize: 8, maxQueueDelayMicroseconds: 1_000, maxQueueSize: 0), "variants[0].maxQueueSize"),
            (BatchingSettings(maxBatchSize: 8, maxQueueDelayMicroseconds: 1_000, maxQueueSize: 100_001), "variants[0].maxQueueSize"),
        ])
    func badBatching(batching: BatchingSettings, field: String) {
        expectInvalid(field: field) { try config([variant("a", batching: batching)]).validate() }
    }

    @Test(
        "out-of-range instance counts, weights and timeouts fail with the field's path",
        arguments: [
            (variant("a", instances: 0), "variants[0].instanceCount"),
            (variant("a", instances: 65), "variants[0].instanceCount"),
            (variant("a", weight: -1), "variants[0].weight"),
            (variant("a", weight: 1_000_001), "variants[0].weight"),
            (variant("a", weight: .nan), "variants[0].weight"),
            (variant("a", weight: .infinity), "variants[0].weight"),
            (variant("a", invocationTimeout: 0), "variants[0].invocationTimeoutSeconds"),
            (variant("a", invocationTimeout: 3601), "variants[0].invocationTimeoutSeconds"),
            (variant("a", loadTimeout: 0), "variants[0].modelLoadTimeoutSeconds"),
            (variant("a", loadTimeout: 3601), "variants[0].modelLoadTimeoutSeconds"),
        ])
    func badVariantFields(variant: ProductionVariant, field: String) {
        expectInvalid(field: field) { try config([variant]).validate() }
    }

    @Test("the first invalid variant is the one reported")
    func firstInvalidReported() {
        let variants = [variant("ok"), variant("bad", instances: 0), variant("worse", weight: -5)]
        expectInvalid(field: "variants[1].instanceCount") { try config(variants).validate() }
    }
}

@Suite("AsyncInferenceConfig validation")
struct AsyncInferenceConfigTests {
    func asyncConfig(output: String, failure: String? = nil) -> EndpointConfig {
        EndpointConfig(
            name: "c", variants: [ProductionVariant(name: "v", modelName: "m")],
            asyncInference: AsyncInferenceConfig(outputPath: output, failurePath: failure), createdAt: Timestamp(millisecondsSinceEpoch: 0))
    }

    @Test("usable output and failure paths pass", arguments: ["s3://results", "s3://results/", "s3://results/docs", "s3://results/a/b.c/d/"])
    func usablePaths(path: String) {
        #expect(failure { try asyncConfig(output: path, failure: path).validate() } == nil)
    }

    @Test(
        "an output path that is not s3://bucket/prefix, or whose prefix steps out or is empty, fails naming the field",
        arguments: [
            "s3://results/../x", "s3://results/a/../../b", "s3://results/./x", "s3://results//x", "s3://results//",
            "s3://results/a/..", "s3://Bad_Bucket/x", "s3://ab/x", "s3://../x", "http://results/x", "results/x",
            "s3://results/" + String(repeating: "p", count: 769),
        ])
    func unusableOutputPath(path: String) {
        expectInvalid(field: "asyncInference.outputPath", mentioning: path.count < 100 ? path : nil) {
            try asyncConfig(output: path).validate()
        }
        expectInvalid(field: "asyncInference.failurePath") { try asyncConfig(output: "s3://results/ok", failure: path).validate() }
    }

    @Test("prefix URIs: a bucket alone, a prefix with or without a trailing slash")
    func prefixURIs() {
        #expect(failure { try ObjectLocation.validate(prefixURI: "s3://bucket", field: "f") } == nil)
        #expect(failure { try ObjectLocation.validate(prefixURI: "s3://bucket/" + String(repeating: "p", count: 768), field: "f") } == nil)
        expectInvalid(field: "f", mentioning: "room") {
            try ObjectLocation.validate(prefixURI: "s3://bucket/" + String(repeating: "p", count: 769), field: "f")
        }
        expectInvalid(field: "f") { try ObjectLocation.validate(prefixURI: "s3://bucket/a\u{1}b", field: "f") }
    }
}
