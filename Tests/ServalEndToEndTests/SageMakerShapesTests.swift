import Foundation
import ServalAPI
import ServalCore
import Testing

/// The SageMaker control plane's shapes without a server: validation, mapping to Serval's domain, ARNs, listings.
@Suite("SageMaker shapes")
struct SageMakerShapesTests {
    func decode<Value: Decodable>(_ type: Value.Type, _ json: String) throws -> Value {
        try JSONDecoder().decode(type, from: Data(json.utf8))
    }

    @Test("ARNs lowercase the name; the region comes from the SigV4 credential scope when it has one")
    func arns() {
        let arns = SageMakerARN(region: "eu-west-2", account: "123456789012")
        #expect(arns.arn("model", "My-Model") == "arn:aws:sagemaker:eu-west-2:123456789012:model/my-model")
        let header = "AWS4-HMAC-SHA256 Credential=AKID/20261124/ap-south-1/sagemaker/aws4_request, SignedHeaders=host, Signature=00"
        #expect(SageMakerARN.region(fromAuthorization: header) == "ap-south-1")
        #expect(SageMakerARN.region(fromAuthorization: "Bearer a:b") == nil)
        #expect(SageMakerARN.region(fromAuthorization: "AWS4-HMAC-SHA256 Credential=AKID/20261124/EU WEST/s/aws4_request") == nil)
        #expect(SageMakerARN.isAccount("000000000000") && !SageMakerARN.isAccount("12345"))
    }

    @Test("CreateModel: one container with a ModelDataUrl; pipelines, MultiModel and bad names are refused")
    func createModel() throws {
        let primary = try decode(
            CreateModelInput.self,
            #"{"ModelName": "m", "PrimaryContainer": {"Image": "any:thing", "ModelDataUrl": "s3://models/m.tar.gz", "Environment": {"A": "1"}}}"#)
        let (container, field) = try primary.validatedContainer()
        #expect(field == "PrimaryContainer" && container.Image == "any:thing" && container.Environment == ["A": "1"])
        let single = try decode(CreateModelInput.self, #"{"ModelName": "m", "Containers": [{"ModelDataUrl": "s3://models/m.tar.gz"}]}"#)
        #expect(try single.validatedContainer().field == "Containers[0]")

        let refused = [
            #"{"ModelName": "m", "Containers": [{"ModelDataUrl": "s3://b1/a"}, {"ModelDataUrl": "s3://b1/b"}]}"#,
            #"{"ModelName": "m", "PrimaryContainer": {"ModelDataUrl": "s3://b1/a", "Mode": "MultiModel"}}"#,
            #"{"ModelName": "m", "PrimaryContainer": {"Image": "x"}}"#,
            #"{"ModelName": "m", "PrimaryContainer": {"ModelDataUrl": "https://example.com/m.tar.gz"}}"#,
            #"{"ModelName": "m_1", "PrimaryContainer": {"ModelDataUrl": "s3://b1/a"}}"#,
            #"{"ModelName": "m"}"#,
            #"{"ModelName": "m", "PrimaryContainer": {"ModelDataUrl": "s3://b1/a"}, "InferenceExecutionConfig": {"Mode": "Parallel"}}"#,
            #"{"ModelName": "m", "PrimaryContainer": {"ModelDataUrl": "s3://b1/a", "Environment": {"1BAD": "x"}}}"#,
        ]
        for json in refused {
            #expect(throws: ServalError.self, "\(json)") { try decode(CreateModelInput.self, json).validatedContainer() }
        }
    }

    @Test("CreateEndpointConfig maps counts, weights and the startup timeout; serverless runs one instance; ranges are checked")
    func createEndpointConfig() throws {
        let input = try decode(
            CreateEndpointConfigInput.self,
            #"""
            {"EndpointConfigName": "c", "ProductionVariants": [
              {"VariantName": "a", "ModelName": "m", "InitialInstanceCount": 3, "InitialVariantWeight": 0.25,
               "InstanceType": "ml.g5.xlarge", "ContainerStartupHealthCheckTimeoutInSeconds": 600},
              {"VariantName": "b", "ModelName": "m", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}],
             "AsyncInferenceConfig": {"ClientConfig": {"MaxConcurrentInvocationsPerInstance": 7},
                                      "OutputConfig": {"S3OutputPath": "s3://out/p", "NotificationConfig": {"SuccessTopic": "arn:aws:sns:x"}}},
             "DataCaptureConfig": {"InitialSamplingPercentage": 10, "DestinationS3Uri": "s3://cap/x", "CaptureOptions": [{"CaptureMode": "Input"}]}}
            """#)
        let (variants, asyncInference, dataCapture) = try input.validated()
        #expect(dataCapture?.samplingPercentage == 10 && dataCapture?.captureInput == true && dataCapture?.captureOutput == false)
        #expect(variants.map(\.instanceCount) == [3, 1])
        #expect(variants.map(\.weight) == [0.25, 1])
        #expect(variants[0].modelLoadTimeoutSeconds == 600)
        #expect(asyncInference?.outputPath == "s3://out/p" && asyncInference?.maxConcurrentInvocationsPerInstance == 7)

        // What Serval does not act on is reported back as it was sent.
        let config = EndpointConfig(
            name: "c", variants: variants, asyncInference: asyncInference, createdAt: Timestamp(millisecondsSinceEpoch: 1_500),
            sageMakerRequest: String(decoding: try JSONEncoder().encode(input), as: UTF8.self))
        let described = DescribeEndpointConfigOutput(config, arn: "arn")
        #expect(described.ProductionVariants[0].InstanceType == "ml.g5.xlarge")
        #expect(described.ProductionVariants[1].ServerlessConfig?.MemorySizeInMB == 2048)
        #expect(described.AsyncInferenceConfig?.OutputConfig.NotificationConfig == .object(["SuccessTopic": .string("arn:aws:sns:x")]))
        #expect(described.DataCaptureConfig?.InitialSamplingPercentage == 10)
        let encoder = JSONEncoder()
        encoder.userInfo[.epochSecondTimes] = true
        let json = try JSONSerialization.jsonObject(with: try encoder.encode(described)) as! [String: Any]
        #expect(json["CreationTime"] as? Double == 1.5)

        let refused = [
            #"{"VariantName": "v", "ModelName": "m", "InitialInstanceCount": 65}"#,
            #"{"VariantName": "v", "ModelName": "m"}"#,
            #"{"VariantName": "v", "ModelName": "m", "InitialInstanceCount": 1, "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1}}"#,
            #"{"VariantName": "v", "ModelName": "m", "ServerlessConfig": {"MemorySizeInMB": 8192, "MaxConcurrency": 1}}"#,
            #"{"VariantName": "v", "ModelName": "m", "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 201}}"#,
            #"{"VariantName": "v", "ModelName": "m", "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 2, "ProvisionedConcurrency": 3}}"#,
            #"{"VariantName": "v", "ModelName": "m", "InitialInstanceCount": 1, "InitialVariantWeight": -1}"#,
            #"{"VariantName": "v", "ModelName": "m", "InitialInstanceCount": 1, "ContainerStartupHealthCheckTimeoutInSeconds": 10}"#,
            #"{"VariantName": "v", "ModelName": "m", "InitialInstanceCount": 1, "RoutingConfig": {"RoutingStrategy": "ROUND_ROBIN"}}"#,
            #"{"VariantName": "-v", "ModelName": "m", "InitialInstanceCount": 1}"#,
        ]
        for variant in refused {
            let json = #"{"EndpointConfigName": "c", "ProductionVariants": ["# + variant + "]}"
            #expect(throws: ServalError.self, "\(variant)") { try decode(CreateEndpointConfigInput.self, json).validated() }
        }
        let twice = #"{"EndpointConfigName": "c", "ProductionVariants": [{"VariantName": "v", "ModelName": "m", "InitialInstanceCount": 1}, {"VariantName": "v", "ModelName": "m", "InitialInstanceCount": 1}]}"#
        #expect(throws: ServalError.self) { try decode(CreateEndpointConfigInput.self, twice).validated() }
        let noOutput = #"{"EndpointConfigName": "c", "ProductionVariants": [{"VariantName": "v", "ModelName": "m", "InitialInstanceCount": 1}], "AsyncInferenceConfig": {"OutputConfig": {}}}"#
        #expect(throws: ServalError.self) { try decode(CreateEndpointConfigInput.self, noOutput).validated() }
    }

    @Test("UpdateEndpointWeightsAndCapacities maps to overrides, which merge per variant")
    func weightsAndCapacities() throws {
        let input = try decode(
            UpdateEndpointWeightsAndCapacitiesInput.self,
            #"{"EndpointName": "e", "DesiredWeightsAndCapacities": [{"VariantName": "a", "DesiredWeight": 2}, {"VariantName": "b", "DesiredInstanceCount": 4}]}"#)
        let changes = try input.validated()
        #expect(changes == [VariantOverride(variantName: "a", weight: 2), VariantOverride(variantName: "b", instanceCount: 4)])
        let merged = VariantOverride.merging([VariantOverride(variantName: "a", instanceCount: 2)], changes)
        #expect(merged == [VariantOverride(variantName: "a", weight: 2, instanceCount: 2), VariantOverride(variantName: "b", instanceCount: 4)])
        let config = EndpointConfig(
            name: "c", variants: [ProductionVariant(name: "a", modelName: "m"), ProductionVariant(name: "b", modelName: "m")],
            createdAt: Timestamp(millisecondsSinceEpoch: 0))
        #expect(config.variants(applying: merged).map(\.instanceCount) == [2, 4])
        #expect(config.variants(applying: merged).map(\.weight) == [2, 1])
        let empty = #"{"EndpointName": "e", "DesiredWeightsAndCapacities": [{"VariantName": "a"}]}"#
        #expect(throws: ServalError.self) { try decode(UpdateEndpointWeightsAndCapacitiesInput.self, empty).validated() }
        let tooMany = #"{"EndpointName": "e", "DesiredWeightsAndCapacities": [{"VariantName": "a", "DesiredInstanceCount": 65}]}"#
        #expect(throws: ServalError.self) { try decode(UpdateEndpointWeightsAndCapacitiesInput.self, tooMany).validated() }
    }

    @Test("listings filter, sort and page with NextToken; bad tokens and values are refused")
    func listings() throws {
        let items = (0..<5).map { SageMakerListInput.Entry(name: "n-\($0)", creationTime: Timestamp(millisecondsSinceEpoch: Int64($0) * 1000), status: $0 % 2 == 0 ? "InService" : "Failed") }
        var input = SageMakerListInput(SortOrder: "Ascending", MaxResults: 2)
        var names: [String] = []
        var pages = 0
        repeat {
            let page = try input.page(items) { $0 }
            names += page.items.map(\.name)
            input.NextToken = page.nextToken
            pages += 1
        } while input.NextToken != nil
        #expect(names == ["n-0", "n-1", "n-2", "n-3", "n-4"] && pages == 3)
        #expect(try SageMakerListInput().page(items) { $0 }.items.first?.name == "n-4")
        #expect(try SageMakerListInput(StatusEquals: "Failed").page(items) { $0 }.items.map(\.name) == ["n-3", "n-1"])
        #expect(try SageMakerListInput(SortBy: "Name", NameContains: "N-2").page(items) { $0 }.items.map(\.name) == ["n-2"])
        #expect(throws: ServalError.self) { try SageMakerListInput(NextToken: "nonsense").page(items) { $0 } }
        #expect(throws: ServalError.self) { try SageMakerListInput(MaxResults: 0).validate(sortKeys: ["Name"], statuses: nil) }
        #expect(throws: ServalError.self) { try SageMakerListInput(SortBy: "Status").validate(sortKeys: ["Name"], statuses: nil) }
        #expect(throws: ServalError.self) { try SageMakerListInput(StatusEquals: "Failed").validate(sortKeys: ["Name"], statuses: nil) }
    }

    @Test("errors are {__type, message} with botocore's statuses")
    func errors() throws {
        let error = SageMakerError(.validation, "Could not find endpoint \"arn\".")
        let body = try JSONSerialization.jsonObject(with: error.body) as! [String: String]
        #expect(body == ["__type": "ValidationException", "message": "Could not find endpoint \"arn\"."])
        #expect(SageMakerError.Kind.resourceNotFound.status == 400 && SageMakerError.Kind.internalFailure.status == 500)
    }
}
