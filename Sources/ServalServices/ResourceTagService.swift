public import ServalCore
public import ServalStore

/// The tags of models, endpoint configs, endpoints and transform jobs: find the resource an ARN names, list, add
/// and delete its tags. Tags given to a create call are added once the resource exists; they are checked before
/// it is made, so a bad tag leaves nothing behind.
public struct ResourceTagService: Sendable {
    let store: any MetadataStore

    /// Creates the service.
    public init(store: any MetadataStore) {
        self.store = store
    }

    /// The resource of `kind` whose name is `name` ignoring case, as an ARN shows it.
    ///
    /// - Throws: `.notFound` when there is none; `.validationError` when names differing only in case match.
    public func resource(_ kind: TaggedResourceKind, nameIgnoringCase name: String) async throws -> TaggedResource {
        let names = try await store.resourceNames(kind, ignoringCase: name)
        guard let first = names.first else { throw ServalError.notFound(kind.displayName, name) }
        guard names.count == 1 else {
            throw ServalError(
                .validationError,
                "The ARN names \(names.count) \(kind.displayName)s, \(names.map { "\"\($0)\"" }.joined(separator: ", ")), whose names differ only in case; an ARN cannot tell them apart.")
        }
        return TaggedResource(kind, first)
    }

    /// The resource's tags, in the order their keys were first added.
    public func list(_ resource: TaggedResource) async throws -> [ResourceTag] {
        guard let tags = try await store.tags(of: resource) else { throw Self.notFound(resource) }
        return tags
    }

    /// Adds checked tags (``ServalCore/ResourceTags/validate(_:field:)``); returns the resource's tags after.
    ///
    /// - Throws: `.validationError` when the resource would carry more than 50; `.notFound`.
    public func add(_ tags: [ResourceTag], to resource: TaggedResource) async throws -> [ResourceTag] {
        guard let after = try await store.addTags(tags, to: resource) else { throw Self.notFound(resource) }
        return after
    }

    /// Deletes the tags with checked keys (``ServalCore/ResourceTags/validate(keys:field:)``).
    public func delete(keys: [String], from resource: TaggedResource) async throws {
        guard try await store.deleteTags(keys: keys, from: resource) else { throw Self.notFound(resource) }
    }

    private static func notFound(_ resource: TaggedResource) -> ServalError {
        .notFound(resource.kind.displayName, resource.name)
    }
}
