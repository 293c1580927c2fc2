import ServalCore
import Testing

/// A valid spec with SageMaker's defaults; `change` edits it.
func transformSpec(_ change: (inout TransformJobSpec) -> Void = { _ in }) -> TransformJobSpec {
    var spec = TransformJobSpec(
        name: "nightly-scores", modelName: "model-a", inputUri: "s3://inputs/2026/11/",
        outputPath: "s3://outputs/scores")
    change(&spec)
    return spec
}

@Suite("TransformJobSpec validation")
struct TransformJobSpecTests {
    @Test("SageMaker's defaults pass")
    func defaults() {
        let spec = transformSpec()
        #expect(failure { try spec.validate() } == nil)
        #expect(spec.maxPayloadMB == 6)
        #expect(spec.maxPayloadBytes == 6 * 1_048_576)
        #expect(spec.maxConcurrentTransforms == 1)
        #expect(spec.invocationTimeoutSeconds == 600)
        #expect(spec.maxRetries == 3)
        #expect(spec.batchStrategy == .multiRecord)
        #expect(spec.splitType == TransformSplitType.none)
        #expect(spec.instanceCount == 1)
    }

    @Test("the bounds of every range pass")
    func bounds() {
        let specs = [
            transformSpec {
                $0.maxPayloadMB = 1
                $0.maxConcurrentTransforms = 100
                $0.invocationTimeoutSeconds = 1
                $0.maxRetries = 0
                $0.instanceCount = 1
            },
            transformSpec {
                $0.maxPayloadMB = 100
                $0.maxConcurrentTransforms = 1
                $0.invocationTimeoutSeconds = 3600
                $0.maxRetries = 3
                $0.instanceCount = 64
            },
            transformSpec {
                $0.maxPayloadMB = 50
                $0.maxConcurrentTransforms = 2
                $0.inputFilter = "$"
                $0.outputFilter = "$" + String(repeating: "a", count: 62)
            },
            transformSpec {
                $0.environment = Dictionary(uniqueKeysWithValues: (0..<100).map { ("KEY_\($0)", "value") })
            },
            transformSpec {
                $0.environment = [
                    String(repeating: "K", count: 1024): String(repeating: "v", count: 1024), "EMPTY": "",
                ]
            },
        ]
        for spec in specs {
            #expect(failure { try spec.validate() } == nil, "\(spec)")
        }
    }

    @Test("invalid job and model names fail on their fields")
    func badNames() {
        expectInvalid(field: "TransformJobName", mentioning: "must not be empty") {
            try transformSpec { $0.name = "" }.validate()
        }
        expectInvalid(field: "TransformJobName", mentioning: "letters, digits and hyphens") {
            try transformSpec { $0.name = "nightly_scores" }.validate()
        }
        expectInvalid(field: "TransformJobName", mentioning: "the limit is 63") {
            try transformSpec { $0.name = String(repeating: "j", count: 64) }.validate()
        }
        expectInvalid(field: "ModelName") { try transformSpec { $0.modelName = "-model" }.validate() }
    }

    @Test(
        "input URIs that are not s3://bucket[/prefix] fail on the input field",
        arguments: [
            "inputs/2026/", "http://inputs/2026/", "S3://inputs/2026/", "s3://", "s3:///key", "s3://In-Puts/x",
            "s3://ab/x", "s3://-inputs/x", "s3://inputs../x", "s3://in..puts/x", "",
        ])
    func badInputUri(uri: String) {
        expectInvalid(field: "TransformInput.DataSource.S3DataSource.S3Uri") {
            try transformSpec { $0.inputUri = uri }.validate()
        }
    }

    @Test(
        "output paths that are not s3://bucket[/prefix] fail on the output field",
        arguments: ["outputs/scores", "https://outputs/scores", "s3://", "s3://OUT/x", "s3://o/x", "s3://out_puts/x"])
    func badOutputPath(uri: String) {
        expectInvalid(field: "TransformOutput.S3OutputPath") { try transformSpec { $0.outputPath = uri }.validate() }
    }

    @Test("a prefix source may name a whole bucket; a manifest source needs the manifest's key")
    func manifestNeedsKey() {
        #expect(failure { try transformSpec { $0.inputUri = "s3://inputs" }.validate() } == nil)
        #expect(failure { try transformSpec { $0.inputUri = "s3://inputs/" }.validate() } == nil)
        #expect(failure { try transformSpec { $0.outputPath = "s3://outputs" }.validate() } == nil)
        for uri in ["s3://inputs", "s3://inputs/"] {
            expectInvalid(
                field: "TransformInput.DataSource.S3DataSource.S3Uri", mentioning: "names the manifest object"
            ) {
                try transformSpec {
                    $0.dataType = .manifestFile
                    $0.inputUri = uri
                }.validate()
            }
        }
        let manifest = transformSpec {
            $0.dataType = .manifestFile
            $0.inputUri = "s3://inputs/manifests/nightly.json"
        }
        #expect(failure { try manifest.validate() } == nil)
    }

    @Test("payloads outside 1...100 MB fail", arguments: [0, -1, 101, 1_000])
    func badPayload(megabytes: Int) {
        expectInvalid(field: "MaxPayloadInMB", mentioning: "is \(megabytes); it must be between 1 and 100") {
            try transformSpec {
                $0.maxPayloadMB = megabytes
                $0.maxConcurrentTransforms = 1
            }.validate()
        }
    }

    @Test(
        "concurrency must be at least 1 and concurrency × payload at most 100",
        arguments: [(0, 6), (-1, 6), (17, 6), (2, 51), (101, 1), (11, 10), (2, 100)])
    func badConcurrency(concurrency: Int, megabytes: Int) {
        expectInvalid(field: "MaxConcurrentTransforms", mentioning: "must not exceed 100") {
            try transformSpec {
                $0.maxConcurrentTransforms = concurrency
                $0.maxPayloadMB = megabytes
            }.validate()
        }
    }

    @Test(
        "concurrency × payload up to 100 passes",
        arguments: [(1, 100), (2, 50), (4, 25), (16, 6), (100, 1), (10, 10)])
    func concurrencyAtLimit(concurrency: Int, megabytes: Int) {
        let spec = transformSpec {
            $0.maxConcurrentTransforms = concurrency
            $0.maxPayloadMB = megabytes
        }
        #expect(failure { try spec.validate() } == nil)
    }

    @Test("invocation timeouts outside 1...3600 seconds fail", arguments: [0, -5, 3601])
    func badTimeout(seconds: Int) {
        expectInvalid(field: "ModelClientConfig.InvocationsTimeoutInSeconds", mentioning: "between 1 and 3600") {
            try transformSpec { $0.invocationTimeoutSeconds = seconds }.validate()
        }
    }

    @Test("retries outside 0...3 fail", arguments: [-1, 4])
    func badRetries(retries: Int) {
        expectInvalid(field: "ModelClientConfig.InvocationsMaxRetries", mentioning: "between 0 and 3") {
            try transformSpec { $0.maxRetries = retries }.validate()
        }
    }

    @Test("instance counts outside 1...64 fail", arguments: [0, -1, 65])
    func badInstanceCount(count: Int) {
        expectInvalid(field: "TransformResources.InstanceCount", mentioning: "between 1 and 64") {
            try transformSpec { $0.instanceCount = count }.validate()
        }
    }

    @Test("more than 100 environment variables fail")
    func tooManyEnvironmentVariables() {
        expectInvalid(field: "Environment", mentioning: "has 101 entries; the limit is 100") {
            try transformSpec {
                $0.environment = Dictionary(uniqueKeysWithValues: (0..<101).map { ("KEY_\($0)", "v") })
            }.validate()
        }
    }

    @Test(
        "an empty key, or a key or value over 1024 bytes, fails",
        arguments: [
            ["": "value"], [String(repeating: "K", count: 1025): "v"], ["KEY": String(repeating: "v", count: 1025)],
            // 513 two-byte characters are 1026 bytes.
            ["KEY": String(repeating: "é", count: 513)], [String(repeating: "é", count: 513): "v"],
        ])
    func badEnvironmentEntry(environment: [String: String]) {
        expectInvalid(field: "Environment", mentioning: "keys must be 1 to 1024 characters") {
            try transformSpec { $0.environment = environment }.validate()
        }
    }

    @Test("filters must be 1 to 63 characters")
    func badFilters() {
        for filter in ["", String(repeating: "a", count: 64)] {
            expectInvalid(field: "DataProcessing.InputFilter", mentioning: "1 to 63 characters") {
                try transformSpec { $0.inputFilter = filter }.validate()
            }
            expectInvalid(field: "DataProcessing.OutputFilter", mentioning: "1 to 63 characters") {
                try transformSpec { $0.outputFilter = filter }.validate()
            }
        }
    }

    @Test("the first broken rule is the one reported: names, then URIs, then ranges")
    func firstRuleReported() {
        let broken = transformSpec {
            $0.maxPayloadMB = 0
            $0.maxRetries = 9
            $0.outputPath = "nowhere"
        }
        expectInvalid(field: "TransformOutput.S3OutputPath") { try broken.validate() }
        expectInvalid(field: "TransformJobName") {
            var spec = broken
            spec.name = "_"
            try spec.validate()
        }
        expectInvalid(field: "MaxPayloadInMB") {
            var spec = broken
            spec.outputPath = "s3://outputs/x"
            try spec.validate()
        }
    }
}
