public import ServalCore

/// The tags of models, endpoint configs, endpoints and transform jobs (SageMaker's `AddTags`, `ListTags`,
/// `DeleteTags`). A resource's tags go with it when it is deleted, so a new resource of the same name starts
/// with none.
public protocol TagStore: Sendable {
    /// The exact names of the resources of `kind` whose name is `name` ignoring ASCII case (an ARN shows the name
    /// in lowercase; names may differ only in case).
    func resourceNames(_ kind: TaggedResourceKind, ignoringCase name: String) async throws -> [String]
    /// The resource's tags in the order their keys were first added; `nil` when the resource does not exist.
    func tags(of resource: TaggedResource) async throws -> [ResourceTag]?
    /// Adds tags, a key the resource has taking the new value, in one transaction; returns the resource's tags
    /// after, or `nil` when it does not exist.
    ///
    /// - Throws: ``ServalError/Code/validationError`` when the resource would carry more than
    ///   ``ServalCore/ResourceTags/maxPerResource`` tags (nothing is added).
    func addTags(_ tags: [ResourceTag], to resource: TaggedResource) async throws -> [ResourceTag]?
    /// Deletes the resource's tags with these keys (keys it lacks are ignored); `false` when it does not exist.
    func deleteTags(keys: [String], from resource: TaggedResource) async throws -> Bool
}
