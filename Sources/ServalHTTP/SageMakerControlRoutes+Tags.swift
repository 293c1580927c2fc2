import ServalAPI
import ServalCore
import ServalServices

/// SageMaker's tag operations on models, endpoint configs, endpoints and transform jobs, named by ARN. An ARN
/// shows the name in lowercase; the resource is found ignoring case.
extension Call {
    func addTags() async throws -> AddTagsOutput {
        let input = try decode(AddTagsInput.self)
        let tags = try input.Tags.validated()
        let resource = try await resource(input.ResourceArn)
        return AddTagsOutput(try await found(input.ResourceArn, resource) { try await services.tags.add(tags, to: resource) })
    }

    func listTags() async throws -> ListTagsOutput {
        let input = try decode(ListTagsInput.self)
        try input.validate()
        let resource = try await resource(input.ResourceArn)
        return ListTagsOutput(try await found(input.ResourceArn, resource) { try await services.tags.list(resource) })
    }

    func deleteTags() async throws -> Empty {
        let input = try decode(DeleteTagsInput.self)
        try ResourceTags.validate(keys: input.TagKeys, field: "TagKeys")
        let resource = try await resource(input.ResourceArn)
        try await found(input.ResourceArn, resource) { try await services.tags.delete(keys: input.TagKeys, from: resource) }
        return Empty()
    }

    /// Adds the tags of a create call to the resource it made.
    func tagCreated(_ resource: TaggedResource, _ tags: [ResourceTag]) async throws {
        guard !tags.isEmpty else { return }
        _ = try await services.tags.add(tags, to: resource)
    }

    /// The resource an ARN names, or SageMaker's `Could not find <kind> "<arn>".`
    private func resource(_ arn: String) async throws -> TaggedResource {
        let (kind, name) = try arns.resource(arn)
        return try await found(arn, TaggedResource(kind, name)) {
            try await services.tags.resource(kind, nameIgnoringCase: name)
        }
    }

    /// Runs `body`, turning "does not exist" into SageMaker's `Could not find <kind> "<arn>".`
    private func found<Value>(_ arn: String, _ resource: TaggedResource, _ body: () async throws -> Value) async throws -> Value {
        try await finding(resource.kind.displayName, arn: arn, body)
    }
}
