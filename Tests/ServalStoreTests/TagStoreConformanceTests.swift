import ServalCore
import ServalStore
import Testing

/// The behaviour every ``TagStore`` must have, run against each ``StoreKind``.
@Suite("TagStore conformance")
struct TagStoreConformanceTests {
    func tag(_ key: String, _ value: String = "v") -> ResourceTag { ResourceTag(key: key, value: value) }

    /// One resource of each kind, named `name`.
    func makeEach(_ name: String, in store: any MetadataStore) async throws -> [TaggedResource] {
        try await store.createModel(makeModel(name))
        try await store.createEndpointConfig(makeConfig(name, models: [name]))
        try await store.createEndpoint(makeEndpoint(name, config: name))
        try await store.createTransformJob(makeTransformJob(name))
        return TaggedResourceKind.allCases.map { TaggedResource($0, name) }
    }

    @Test("every kind: add in order, replace in place, delete some, and the same name of another kind is apart", arguments: StoreKind.allCases)
    func lifecycle(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let resources = try await makeEach("Res-1", in: store)
            for resource in resources {
                #expect(try await store.tags(of: resource) == [])
                #expect(try await store.addTags([tag("b", "1"), tag("a", "2")], to: resource) == [tag("b", "1"), tag("a", "2")])
                #expect(try await store.addTags([tag("c", "3"), tag("b", "9")], to: resource) == [tag("b", "9"), tag("a", "2"), tag("c", "3")])
                #expect(try await store.deleteTags(keys: ["a", "absent"], from: resource))
                #expect(try await store.tags(of: resource) == [tag("b", "9"), tag("c", "3")])
            }
            // Each kind's tags are its own.
            #expect(try await store.addTags([tag("only-model")], to: TaggedResource(.model, "Res-1"))?.count == 3)
            #expect(try await store.tags(of: TaggedResource(.endpoint, "Res-1"))?.count == 2)
        }
    }

    @Test("a resource that does not exist has no tags to read, add or delete", arguments: StoreKind.allCases)
    func missing(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            for kind in TaggedResourceKind.allCases {
                let resource = TaggedResource(kind, "nope")
                #expect(try await store.tags(of: resource) == nil)
                #expect(try await store.addTags([tag("a")], to: resource) == nil)
                #expect(try await store.deleteTags(keys: ["a"], from: resource) == false)
                #expect(try await store.resourceNames(kind, ignoringCase: "nope").isEmpty)
            }
            // Nothing was recorded for it: a resource made later under the name starts with no tags.
            try await store.createModel(makeModel("nope"))
            #expect(try await store.tags(of: TaggedResource(.model, "nope")) == [])
        }
    }

    @Test("more than 50 tags on a resource fails and adds nothing", arguments: StoreKind.allCases)
    func limit(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.createModel(makeModel("m"))
            let resource = TaggedResource(.model, "m")
            let full = (0..<50).map { tag("k\($0)") }
            #expect(try await store.addTags(full, to: resource) == full)
            let error = await expectServalError(.validationError) { _ = try await store.addTags([tag("k1", "new"), tag("k50")], to: resource) }
            #expect(error?.message.contains("51 tags") == true)
            #expect(try await store.tags(of: resource) == full)
            #expect(try await store.addTags([tag("k1", "new")], to: resource)?[1] == tag("k1", "new"))
        }
    }

    @Test("deleting a model, config or endpoint deletes its tags; one made again under the name has none", arguments: StoreKind.allCases)
    func deletion(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let resources = try await makeEach("r", in: store)
            for resource in resources { _ = try await store.addTags([tag("a")], to: resource) }
            #expect(try await store.deleteEndpoint(named: "r"))
            #expect(try await store.deleteEndpointConfig(named: "r"))
            #expect(try await store.deleteModel(named: "r"))
            for resource in resources where resource.kind != .transformJob {
                #expect(try await store.tags(of: resource) == nil)
            }
            try await store.createModel(makeModel("r"))
            try await store.createEndpointConfig(makeConfig("r", models: ["r"]))
            try await store.createEndpoint(makeEndpoint("r", config: "r"))
            for resource in resources where resource.kind != .transformJob {
                #expect(try await store.tags(of: resource) == [])
            }
            #expect(try await store.tags(of: TaggedResource(.transformJob, "r")) == [tag("a")])
        }
    }

    @Test("names are found ignoring case, as an ARN shows them in lowercase", arguments: StoreKind.allCases)
    func ignoringCase(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            _ = try await makeEach("My-Model", in: store)
            for kind in TaggedResourceKind.allCases {
                #expect(try await store.resourceNames(kind, ignoringCase: "my-model") == ["My-Model"])
            }
            try await store.createModel(makeModel("my-model"))
            #expect(try await store.resourceNames(.model, ignoringCase: "MY-MODEL") == ["My-Model", "my-model"])
        }
    }
}
