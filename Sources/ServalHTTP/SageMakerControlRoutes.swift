import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServalAPI
import ServalAuth
import ServalCore
import ServalJobs
public import ServalObjects
import ServalServices
import ServalStore

/// What SageMaker's control plane needs beyond the shared services.
public struct SageMakerControlSettings: Sendable {
    /// The object store `ModelDataUrl`s (`s3://bucket/key.tar.gz`) are read from.
    public var objects: (any ObjectStore)?
    /// The account id shown in ARNs (12 digits).
    public var accountID: String
    /// The region shown in ARNs when a request's SigV4 credential scope names none.
    public var defaultRegion: String

    /// Creates the settings.
    public init(objects: (any ObjectStore)? = nil, accountID: String = "000000000000", defaultRegion: String = "us-east-1") {
        self.objects = objects
        self.accountID = accountID
        self.defaultRegion = defaultRegion
    }
}

/// SageMaker's control plane on the main HTTP port (boto3's `sagemaker` client, JSON 1.1): `POST /` with
/// `X-Amz-Target: SageMaker.<Operation>`, JSON in and out, epoch-second times, errors `{"__type", "message"}`.
/// Each operation decodes its shape, calls the same services as the REST API, and maps errors once
/// (``sageMakerError(_:operation:arn:)``). docs/sagemaker-control-plane.md describes the mapping.
struct SageMakerControlRoutes: Sendable {
    let services: HTTPServices

    /// Registers `POST /`: each operation needs the action ``action(target:)`` gives it.
    func register(on routes: ServalRoutes) {
        routes.add(
            .post, "/", .decided { Self.action(target: $0.headers[.sageMakerControlTarget]) }, shape: .sageMakerJSON,
            use: handle)
    }

    /// The action of a control-plane operation, from `X-Amz-Target: SageMaker.<Operation>`.
    ///
    /// `Describe*` and `List*` (`ListTags` too) describe; `AddTags` and `DeleteTags` manage tags; `Create*`,
    /// `Delete*`, `Update*` and `Stop*` manage the resource the operation names. Any other operation, or none,
    /// needs a deployer (``handle(_:context:)`` then refuses it); a mutating operation on a resource Serval does not
    /// know needs an admin. CloudWatch Logs on the same route only reads workers' output.
    static func action(target: String?) -> AccessAction {
        guard let target, let dot = target.lastIndex(of: ".") else { return .describeResources }
        if target.hasPrefix(CloudWatchLogsRoutes.targetPrefix) { return .describeResources }
        let operation = target[target.index(after: dot)...]
        if operation.hasPrefix("Describe") || operation.hasPrefix("List") { return .describeResources }
        if operation == "AddTags" || operation == "DeleteTags" { return .manageTags }
        guard ["Create", "Delete", "Update", "Stop"].contains(where: { operation.hasPrefix($0) }) else {
            return .describeResources
        }
        if operation.contains("TransformJob") { return .manageTransformJobs }
        if operation.contains("EndpointConfig") { return .manageEndpointConfigs }
        if operation.contains("Endpoint") { return .manageEndpoints }
        if operation.contains("Model") { return .manageModels }
        return .manageAccessKeys
    }

    /// The largest request body: SageMaker's requests are small JSON documents.
    static let maxBodyBytes = 1 << 20

    @Sendable func handle(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let settings = services.sageMaker
        let arns = SageMakerARN(
            region: SageMakerARN.region(fromAuthorization: request.headers[.authorization]) ?? settings.defaultRegion,
            account: settings.accountID)
        let target = request.headers[.sageMakerControlTarget] ?? ""
        if target.hasPrefix(CloudWatchLogsRoutes.targetPrefix) {
            return await CloudWatchLogsRoutes(logs: services.logs, arns: arns)
                .handle(String(target.dropFirst(CloudWatchLogsRoutes.targetPrefix.count)), request, context: context)
        }
        let operation = target.hasPrefix("SageMaker.") ? String(target.dropFirst("SageMaker.".count)) : ""
        do {
            let body = try await request.body.collect(upTo: Self.maxBodyBytes)
            let call = Call(services: services, arns: arns, body: Data(body.readableBytesView))
            let output = try await call.perform(operation)
            return try Self.response(output)
        } catch {
            let failure = Self.sageMakerError(from: error, request: request, context: context)
            if failure.kind == .internalFailure || failure.kind == .serviceUnavailable {
                context.logger.warning("SageMaker \(operation) failed", metadata: ["error": "\(failure)"])
            }
            return Self.response(failure)
        }
    }

    // MARK: Encoding

    static func response(_ output: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.userInfo[.epochSecondTimes] = true
        let data = try encoder.encode(output)
        return Response(
            status: .ok, headers: [.contentType: "application/x-amz-json-1.1"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func response(_ error: SageMakerError) -> Response {
        var headers: HTTPFields = [.contentType: "application/x-amz-json-1.1"]
        headers[.amznErrorType] = error.kind.rawValue
        let status: HTTPResponse.Status =
            switch error.kind.status {
            case 500: .internalServerError
            case 503: .serviceUnavailable
            default: .badRequest
            }
        return Response(
            status: status, headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: error.body)))
    }

    /// Maps any error to SageMaker's: Serval's codes by kind; what is not Serval's as the REST API does.
    static func sageMakerError(from error: any Error, request: Request, context: ServalRequestContext) -> SageMakerError {
        if let error = error as? SageMakerError { return error }
        let serval = ErrorMiddleware.servalError(from: error, request: request, context: context)
        switch serval.code {
        case .validationError, .notFound, .payloadTooLarge: return SageMakerError(.validation, serval.message)
        case .conflict: return SageMakerError(.resourceInUse, serval.message)
        case .modelNotReady, .serviceUnavailable, .overloaded: return SageMakerError(.serviceUnavailable, serval.message)
        case .modelError, .invocationTimeout, .internalFailure: return SageMakerError(.internalFailure, serval.message)
        }
    }
}

/// One control-plane request: its body, the ARN builder for its region, and the operations (tags in
/// SageMakerControlRoutes+Tags.swift).
struct Call: Sendable {
    let services: HTTPServices
    let arns: SageMakerARN
    let body: Data

    struct Empty: Codable, Sendable {}

    func perform(_ operation: String) async throws -> any Encodable {
        switch operation {
        case "CreateModel": return try await createModel()
        case "DescribeModel": return try await describeModel()
        case "ListModels": return try await listModels()
        case "DeleteModel": return try await deleteModel()
        case "CreateEndpointConfig": return try await createEndpointConfig()
        case "DescribeEndpointConfig": return try await describeEndpointConfig()
        case "ListEndpointConfigs": return try await listEndpointConfigs()
        case "DeleteEndpointConfig": return try await deleteEndpointConfig()
        case "CreateEndpoint": return try await createEndpoint()
        case "DescribeEndpoint": return try await describeEndpoint()
        case "UpdateEndpoint": return try await updateEndpoint()
        case "UpdateEndpointWeightsAndCapacities": return try await updateEndpointWeightsAndCapacities()
        case "DeleteEndpoint": return try await deleteEndpoint()
        case "ListEndpoints": return try await listEndpoints()
        case "CreateTransformJob": return try await createTransformJob()
        case "DescribeTransformJob": return try await describeTransformJob()
        case "StopTransformJob": return try await stopTransformJob()
        case "ListTransformJobs": return try await listTransformJobs()
        case "AddTags": return try await addTags()
        case "ListTags": return try await listTags()
        case "DeleteTags": return try await deleteTags()
        default:
            throw SageMakerError(
                .unknownOperation,
                operation.isEmpty
                    ? "Send SageMaker control-plane requests with the header X-Amz-Target: SageMaker.<Operation>."
                    : "Serval does not implement the SageMaker operation \(operation); docs/sagemaker-control-plane.md lists those it does.")
        }
    }

    func decode<Input: Decodable>(_ type: Input.Type) throws -> Input {
        try JSONDecoder().decode(Input.self, from: body.isEmpty ? Data("{}".utf8) : body)
    }

    /// The JSON text of a request, recorded with the resource it made.
    static func record(_ input: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(input), as: UTF8.self)
    }

    /// Runs `body`, turning "does not exist" into SageMaker's `Could not find <kind> "<arn>".`
    func finding<Value>(
        _ kind: String, arn: String, as errorKind: SageMakerError.Kind = .validation, _ body: () async throws -> Value
    ) async throws -> Value {
        do {
            return try await body()
        } catch let error as ServalError where error.code == .notFound {
            throw SageMakerError(errorKind, "Could not find \(kind) \"\(arn)\".")
        }
    }

    /// Runs `body`, turning "exists already" into SageMaker's `Cannot create already existing <kind> "<arn>".`
    func creating<Value>(_ kind: String, arn: String, _ body: () async throws -> Value) async throws -> Value {
        do {
            return try await body()
        } catch let error as ServalError where error.code == .conflict {
            throw SageMakerError(.validation, "Cannot create already existing \(kind) \"\(arn)\".")
        }
    }

    func validName(_ name: String, _ field: String) throws(ServalError) {
        try ResourceName.validate(name, field: field)
    }

    // MARK: Models

    struct ModelNameInput: Codable { var ModelName: String }
    struct ModelArnOutput: Codable { var ModelArn: String }

    func createModel() async throws -> ModelArnOutput {
        var input = try decode(CreateModelInput.self)
        let (container, field) = try input.validatedContainer()
        let tags = try input.Tags?.validated() ?? []
        input.Tags = nil  // kept in the tag store
        let arn = arns.arn("model", input.ModelName)
        if (try? await services.models.get(input.ModelName)) != nil {
            throw SageMakerError(.validation, "Cannot create already existing model \"\(arn)\".")
        }
        let location = try ObjectLocation(uri: container.ModelDataUrl ?? "", field: "\(field).ModelDataUrl")
        guard let objects = services.sageMaker.objects, let path = try await objects.localPath(of: location) else {
            throw SageMakerError(
                .validation,
                "\(field).ModelDataUrl: \(location.uri) does not exist in Serval's object store; upload the package (tar.gz) there first, e.g. with boto3's s3 client pointed at Serval's S3 port.")
        }
        let environment = container.Environment ?? [:]
        let code = try await services.submittedCode(environment, field: "\(field).Environment")
        _ = try await creating("model", arn: arn) {
            try await services.models.create(
                name: input.ModelName, source: .archive(path: path), environment: environment, code: code,
                sageMakerRequest: try Self.record(input))
        }
        try await tagCreated(TaggedResource(.model, input.ModelName), tags)
        return ModelArnOutput(ModelArn: arn)
    }

    func describeModel() async throws -> DescribeModelOutput {
        let input = try decode(ModelNameInput.self)
        try validName(input.ModelName, "ModelName")
        let arn = arns.arn("model", input.ModelName)
        let model = try await finding("model", arn: arn) { try await services.models.get(input.ModelName) }
        return DescribeModelOutput(model, arn: arn)
    }

    func listModels() async throws -> ListModelsOutput {
        let input = try decode(SageMakerListInput.self)
        try input.validate(sortKeys: ["Name", "CreationTime"], statuses: nil)
        let page = try input.page(try await services.models.list()) { .init(name: $0.name, creationTime: $0.createdAt) }
        return ListModelsOutput(page.items, nextToken: page.nextToken) { arns.arn("model", $0) }
    }

    func deleteModel() async throws -> Empty {
        let input = try decode(ModelNameInput.self)
        try validName(input.ModelName, "ModelName")
        try await finding("model", arn: arns.arn("model", input.ModelName)) { try await services.models.delete(input.ModelName) }
        return Empty()
    }

    // MARK: Endpoint configs

    struct ConfigNameInput: Codable { var EndpointConfigName: String }
    struct ConfigArnOutput: Codable { var EndpointConfigArn: String }

    func createEndpointConfig() async throws -> ConfigArnOutput {
        var input = try decode(CreateEndpointConfigInput.self)
        let (variants, asyncInference, dataCapture) = try input.validated()
        let tags = try input.Tags?.validated() ?? []
        input.Tags = nil  // kept in the tag store
        // Recorded with SageMaker's default weight, which DescribeEndpointConfig reports.
        for index in input.ProductionVariants.indices where input.ProductionVariants[index].ServerlessConfig == nil {
            input.ProductionVariants[index].InitialVariantWeight = input.ProductionVariants[index].InitialVariantWeight ?? 1
        }
        let arn = arns.arn("endpoint-config", input.EndpointConfigName)
        for variant in variants {
            _ = try await finding("model", arn: arns.arn("model", variant.modelName)) {
                try await services.models.get(variant.modelName)
            }
        }
        _ = try await creating("endpoint configuration", arn: arn) {
            try await services.configs.create(
                name: input.EndpointConfigName, variants: variants, asyncInference: asyncInference,
                dataCapture: dataCapture, sageMakerRequest: try Self.record(input))
        }
        try await tagCreated(TaggedResource(.endpointConfig, input.EndpointConfigName), tags)
        return ConfigArnOutput(EndpointConfigArn: arn)
    }

    func describeEndpointConfig() async throws -> DescribeEndpointConfigOutput {
        let input = try decode(ConfigNameInput.self)
        try validName(input.EndpointConfigName, "EndpointConfigName")
        let arn = arns.arn("endpoint-config", input.EndpointConfigName)
        let config = try await finding("endpoint configuration", arn: arn) {
            try await services.configs.get(input.EndpointConfigName)
        }
        return DescribeEndpointConfigOutput(config, arn: arn)
    }

    func listEndpointConfigs() async throws -> ListEndpointConfigsOutput {
        let input = try decode(SageMakerListInput.self)
        try input.validate(sortKeys: ["Name", "CreationTime"], statuses: nil)
        let page = try input.page(try await services.configs.list()) { .init(name: $0.name, creationTime: $0.createdAt) }
        return ListEndpointConfigsOutput(page.items, nextToken: page.nextToken) { arns.arn("endpoint-config", $0) }
    }

    func deleteEndpointConfig() async throws -> Empty {
        let input = try decode(ConfigNameInput.self)
        try validName(input.EndpointConfigName, "EndpointConfigName")
        try await finding("endpoint configuration", arn: arns.arn("endpoint-config", input.EndpointConfigName)) {
            try await services.configs.delete(input.EndpointConfigName)
        }
        return Empty()
    }

    // MARK: Endpoints

    struct EndpointNameInput: Codable { var EndpointName: String }
    struct EndpointArnOutput: Codable { var EndpointArn: String }

    func createEndpoint() async throws -> EndpointArnOutput {
        let input = try decode(CreateEndpointInput.self)
        try input.validate()
        let tags = try input.Tags?.validated() ?? []
        let arn = arns.arn("endpoint", input.EndpointName)
        _ = try await finding("endpoint configuration", arn: arns.arn("endpoint-config", input.EndpointConfigName)) {
            try await services.configs.get(input.EndpointConfigName)
        }
        _ = try await creating("endpoint", arn: arn) {
            try await services.endpoints.create(name: input.EndpointName, configName: input.EndpointConfigName)
        }
        try await tagCreated(TaggedResource(.endpoint, input.EndpointName), tags)
        return EndpointArnOutput(EndpointArn: arn)
    }

    func describeEndpoint() async throws -> DescribeEndpointOutput {
        let input = try decode(EndpointNameInput.self)
        try validName(input.EndpointName, "EndpointName")
        let arn = arns.arn("endpoint", input.EndpointName)
        let endpoint = try await finding("endpoint", arn: arn) { try await services.endpoints.get(input.EndpointName) }
        var config = endpoint.deployment?.config
        if config == nil { config = try? await services.configs.get(endpoint.configName) }
        let recorded = config.map(CreateEndpointConfigInput.recorded)
        let serverless = Dictionary(
            (recorded?.ProductionVariants ?? []).map { ($0.VariantName, $0.ServerlessConfig) }, uniquingKeysWith: { first, _ in first })
        var variants = await services.endpoints.variantSummaries(endpoint.name).map {
            SageMakerProductionVariantSummary(
                VariantName: $0.name, CurrentWeight: $0.currentWeight, DesiredWeight: $0.desiredWeight,
                CurrentInstanceCount: $0.currentInstanceCount, DesiredInstanceCount: $0.desiredInstanceCount,
                ServerlessConfig: serverless[$0.name] ?? nil)
        }
        if variants.isEmpty, endpoint.status != .failed, let config {
            // Not running yet (or any more): what the config asks for, nothing serving.
            variants = config.variants(applying: endpoint.variantOverrides).map {
                SageMakerProductionVariantSummary(
                    VariantName: $0.name, CurrentWeight: $0.weight, DesiredWeight: $0.weight, CurrentInstanceCount: 0,
                    DesiredInstanceCount: $0.instanceCount, ServerlessConfig: serverless[$0.name] ?? nil)
            }
        }
        return DescribeEndpointOutput(endpoint, arn: arn, variants: variants, config: recorded)
    }

    func updateEndpoint() async throws -> EndpointArnOutput {
        let input = try decode(UpdateEndpointInput.self)
        try input.validate()
        let arn = arns.arn("endpoint", input.EndpointName)
        _ = try await finding("endpoint", arn: arn) { try await services.endpoints.get(input.EndpointName) }
        _ = try await finding("endpoint configuration", arn: arns.arn("endpoint-config", input.EndpointConfigName)) {
            try await services.configs.get(input.EndpointConfigName)
        }
        _ = try await services.endpoints.update(
            name: input.EndpointName, configName: input.EndpointConfigName,
            retainVariantProperties: input.RetainAllVariantProperties ?? false)
        return EndpointArnOutput(EndpointArn: arn)
    }

    func updateEndpointWeightsAndCapacities() async throws -> EndpointArnOutput {
        let input = try decode(UpdateEndpointWeightsAndCapacitiesInput.self)
        let changes = try input.validated()
        let arn = arns.arn("endpoint", input.EndpointName)
        _ = try await finding("endpoint", arn: arn) {
            try await services.endpoints.updateWeightsAndCapacities(name: input.EndpointName, changes: changes)
        }
        return EndpointArnOutput(EndpointArn: arn)
    }

    func deleteEndpoint() async throws -> Empty {
        let input = try decode(EndpointNameInput.self)
        try validName(input.EndpointName, "EndpointName")
        _ = try await finding("endpoint", arn: arns.arn("endpoint", input.EndpointName)) {
            try await services.endpoints.delete(input.EndpointName)
        }
        return Empty()
    }

    func listEndpoints() async throws -> ListEndpointsOutput {
        let input = try decode(SageMakerListInput.self)
        try input.validate(sortKeys: ["Name", "CreationTime", "Status"], statuses: EndpointStatus.allCases.map(\.rawValue))
        let page = try input.page(try await services.endpoints.list()) {
            .init(name: $0.name, creationTime: $0.createdAt, lastModifiedTime: $0.updatedAt, status: $0.status.rawValue)
        }
        return ListEndpointsOutput(page.items, nextToken: page.nextToken) { arns.arn("endpoint", $0) }
    }

    // MARK: Transform jobs

    struct TransformJobNameInput: Codable { var TransformJobName: String }
    struct TransformJobArnOutput: Codable { var TransformJobArn: String }

    func createTransformJob() async throws -> TransformJobArnOutput {
        let input = try decode(CreateTransformJobRequest.self)
        let spec = try input.spec()
        let arn = arns.arn("transform-job", input.TransformJobName)
        do {
            _ = try await services.transformJobs.create(spec, tags: try input.Tags?.validated() ?? [])
        } catch let error as ServalError where error.code == .notFound {
            throw SageMakerError(.validation, "Could not find model \"\(arns.arn("model", input.ModelName))\".")
        } catch let error as ServalError where error.code == .conflict {
            throw SageMakerError(.resourceInUse, "Job name \(input.TransformJobName) must be unique within an AWS account and region, and a job with this name already exists (\(arn)).")
        }
        return TransformJobArnOutput(TransformJobArn: arn)
    }

    func describeTransformJob() async throws -> TransformJobDescription {
        let input = try decode(TransformJobNameInput.self)
        try validName(input.TransformJobName, "TransformJobName")
        let arn = arns.arn("transform-job", input.TransformJobName)
        let job = try await finding("transform job", arn: arn, as: .resourceNotFound) {
            try await services.transformJobs.describe(input.TransformJobName)
        }
        return TransformJobDescription(job, now: services.clock.now(), arn: arn)
    }

    func stopTransformJob() async throws -> Empty {
        let input = try decode(TransformJobNameInput.self)
        try validName(input.TransformJobName, "TransformJobName")
        _ = try await finding("transform job", arn: arns.arn("transform-job", input.TransformJobName), as: .resourceNotFound) {
            try await services.transformJobs.stop(input.TransformJobName)
        }
        return Empty()
    }

    func listTransformJobs() async throws -> TransformJobList {
        let input = try decode(SageMakerListInput.self)
        try input.validate(sortKeys: ["Name", "CreationTime"], statuses: TransformJobStatus.allCases.map(\.rawValue))
        guard input.LastModifiedTimeAfter == nil, input.LastModifiedTimeBefore == nil else {
            throw SageMakerError(.validation, "LastModifiedTimeAfter and LastModifiedTimeBefore are not supported for transform jobs; filter by CreationTime.")
        }
        var filter = TransformJobFilter()
        filter.nameContains = input.NameContains
        filter.status = input.StatusEquals.flatMap(TransformJobStatus.init(rawValue:))
        filter.creationTimeAfter = input.CreationTimeAfter?.timestamp
        filter.creationTimeBefore = input.CreationTimeBefore?.timestamp
        if let sortBy = input.SortBy.flatMap(TransformJobFilter.SortKey.init(rawValue:)) { filter.sortBy = sortBy }
        if let sortOrder = input.SortOrder.flatMap(TransformJobFilter.SortOrder.init(rawValue:)) { filter.sortOrder = sortOrder }
        filter.limit = input.MaxResults ?? 10
        filter.nextToken = input.NextToken.flatMap { $0.isEmpty ? nil : $0 }
        let page = try await services.transformJobs.list(filter)
        return TransformJobList(
            TransformJobSummaries: page.jobs.map { TransformJobSummary($0, arn: arns.arn("transform-job", $0.name)) },
            NextToken: page.nextToken)
    }
}

extension HTTPField.Name {
    /// `X-Amz-Target: SageMaker.<Operation>`, naming a control-plane operation.
    static let sageMakerControlTarget = Self("X-Amz-Target")!
}
