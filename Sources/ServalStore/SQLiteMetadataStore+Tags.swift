import GRDB
public import ServalCore

/// Tags in SQLite: one row per tag, keyed by the resource's kind and name and the tag's key; listed in `rowid`
/// order, which an upsert keeps, so a key keeps its place when its value changes. The resource's own table says
/// whether it exists, in the same transaction.
extension SQLiteMetadataStore {
    static func createTagTable(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE resource_tag (
                    kind TEXT NOT NULL,
                    name TEXT NOT NULL,
                    key TEXT NOT NULL,
                    value TEXT NOT NULL,
                    PRIMARY KEY (kind, name, key));
                """)
    }

    /// The table that holds resources of `kind`.
    private static func table(_ kind: TaggedResourceKind) -> String {
        switch kind {
        case .model: "model"
        case .endpointConfig: "endpoint_config"
        case .endpoint: "endpoint"
        case .transformJob: "transform_job"
        }
    }

    public func resourceNames(_ kind: TaggedResourceKind, ignoringCase name: String) async throws -> [String] {
        try await database.read { db in
            try String.fetchAll(
                db, sql: "SELECT name FROM \(Self.table(kind)) WHERE lower(name) = lower(?) ORDER BY name", arguments: [name])
        }
    }

    public func tags(of resource: TaggedResource) async throws -> [ResourceTag]? {
        try await database.read { db in
            guard try Self.exists(resource, in: db) else { return nil }
            return try Self.tags(of: resource, in: db)
        }
    }

    public func addTags(_ tags: [ResourceTag], to resource: TaggedResource) async throws -> [ResourceTag]? {
        try await database.write { db in
            guard try Self.exists(resource, in: db) else { return nil }
            let merged = try ResourceTags.merging(try Self.tags(of: resource, in: db), tags)
            let statement = try db.cachedStatement(
                sql: """
                    INSERT INTO resource_tag (kind, name, key, value) VALUES (?, ?, ?, ?)
                    ON CONFLICT (kind, name, key) DO UPDATE SET value = excluded.value
                    """)
            for tag in tags {
                try statement.execute(arguments: [resource.kind.rawValue, resource.name, tag.key, tag.value])
            }
            return merged
        }
    }

    public func deleteTags(keys: [String], from resource: TaggedResource) async throws -> Bool {
        try await database.write { db in
            guard try Self.exists(resource, in: db) else { return false }
            let statement = try db.cachedStatement(sql: "DELETE FROM resource_tag WHERE kind = ? AND name = ? AND key = ?")
            for key in keys {
                try statement.execute(arguments: [resource.kind.rawValue, resource.name, key])
            }
            return true
        }
    }

    /// Deletes every tag of a resource; part of deleting it.
    static func deleteTags(of kind: TaggedResourceKind, named name: String, in db: Database) throws {
        try db.execute(sql: "DELETE FROM resource_tag WHERE kind = ? AND name = ?", arguments: [kind.rawValue, name])
    }

    private static func exists(_ resource: TaggedResource, in db: Database) throws -> Bool {
        try Bool.fetchOne(
            db, sql: "SELECT EXISTS (SELECT 1 FROM \(table(resource.kind)) WHERE name = ?)", arguments: [resource.name]) ?? false
    }

    private static func tags(of resource: TaggedResource, in db: Database) throws -> [ResourceTag] {
        try Row.fetchAll(
            db, sql: "SELECT key, value FROM resource_tag WHERE kind = ? AND name = ? ORDER BY rowid",
            arguments: [resource.kind.rawValue, resource.name]
        ).map { ResourceTag(key: $0["key"], value: $0["value"]) }
    }
}
