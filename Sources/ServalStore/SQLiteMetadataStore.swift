import Foundation
import GRDB
public import ServalCore

/// The metadata store of a single machine: one SQLite database in the data folder, in WAL mode.
///
/// Each resource is a row with its name, the columns queries need, and the whole value as JSON, so that new
/// fields need no migration.
public final class SQLiteMetadataStore: MetadataStore {
    let database: DatabasePool
    /// Seals secret values of models and endpoint configs (also endpoints' copies of them) before they are written;
    /// `nil` stores them as they are.
    let sealer: (any ValueSealer)?
    public let asyncInvocationQueue: any LeasedQueue<AsyncInvocation>
    public let transformUnitQueue: any LeasedQueue<TransformUnit>

    /// Opens (creating if needed) the database at `path` and migrates it to the current schema.
    ///
    /// - Parameter sealer: seals webhook secrets and secret-looking model environment values at rest (see
    ///   ``ServalCore/SealedValues``); rows written without one are read as they are.
    public init(path: String, sealer: (any ValueSealer)? = nil) throws {
        self.sealer = sealer
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        database = try DatabasePool(path: path, configuration: configuration)
        asyncInvocationQueue = SQLiteLeasedQueue(database: database)
        transformUnitQueue = SQLiteLeasedQueue(database: database)
        try Self.migrator.migrate(database)
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE model (name TEXT PRIMARY KEY NOT NULL, body BLOB NOT NULL);
                    CREATE TABLE endpoint_config (name TEXT PRIMARY KEY NOT NULL, body BLOB NOT NULL);
                    CREATE TABLE endpoint_config_model (
                        config_name TEXT NOT NULL REFERENCES endpoint_config(name) ON DELETE CASCADE,
                        model_name TEXT NOT NULL,
                        PRIMARY KEY (config_name, model_name));
                    CREATE INDEX endpoint_config_model_by_model ON endpoint_config_model(model_name);
                    CREATE TABLE endpoint (
                        name TEXT PRIMARY KEY NOT NULL,
                        config_name TEXT NOT NULL,
                        body BLOB NOT NULL);
                    CREATE INDEX endpoint_by_config ON endpoint(config_name);
                    """)
        }
        migrator.registerMigration("v2", migrate: createAsyncInvocationTables)
        migrator.registerMigration("v3", migrate: createTransformJobTables)
        migrator.registerMigration("v4-access-keys", migrate: createAccessKeyTable)
        migrator.registerMigration("v5-async-notification-last-error", migrate: addAsyncNotificationLastError)
        // Endpoints keep their own copy of their config and models, so models and configs in use may be deleted.
        migrator.registerMigration("v6-drop-endpoint-config-model") { db in
            try db.execute(sql: "DROP TABLE endpoint_config_model")
        }
        migrator.registerMigration("v7-resource-tags", migrate: createTagTable)
        return migrator
    }

    // MARK: Models

    public func createModel(_ model: Model) async throws {
        let body = try Self.encode(sealer.map { sealer in try model.mappingSecrets(sealer.seal) } ?? model)
        try await insert(kind: "model", name: model.name) { db in
            try db.execute(sql: "INSERT INTO model (name, body) VALUES (?, ?)", arguments: [model.name, body])
        }
    }

    public func model(named name: String) async throws -> Model? {
        try await (fetchOne(sql: "SELECT body FROM model WHERE name = ?", name) as Model?).map(opened)
    }

    public func models() async throws -> [Model] {
        try await (fetchAll(sql: "SELECT body FROM model ORDER BY name") as [Model]).map(opened)
    }

    public func deleteModel(named name: String) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: "DELETE FROM model WHERE name = ?", arguments: [name])
            let deleted = db.changesCount > 0
            try Self.deleteTags(of: .model, named: name, in: db)
            return deleted
        }
    }

    // MARK: Endpoint configs

    public func createEndpointConfig(_ config: EndpointConfig) async throws {
        let body = try Self.encode(sealer.map { sealer in try config.mappingSecrets(sealer.seal) } ?? config)
        try await insert(kind: "endpoint config", name: config.name) { db in
            try db.execute(sql: "INSERT INTO endpoint_config (name, body) VALUES (?, ?)", arguments: [config.name, body])
        }
    }

    public func endpointConfig(named name: String) async throws -> EndpointConfig? {
        try await (fetchOne(sql: "SELECT body FROM endpoint_config WHERE name = ?", name) as EndpointConfig?).map(opened)
    }

    public func endpointConfigs() async throws -> [EndpointConfig] {
        try await (fetchAll(sql: "SELECT body FROM endpoint_config ORDER BY name") as [EndpointConfig]).map(opened)
    }

    public func deleteEndpointConfig(named name: String) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: "DELETE FROM endpoint_config WHERE name = ?", arguments: [name])
            let deleted = db.changesCount > 0
            try Self.deleteTags(of: .endpointConfig, named: name, in: db)
            return deleted
        }
    }

    // MARK: Endpoints

    public func createEndpoint(_ endpoint: Endpoint) async throws {
        let body = try Self.encode(sealer.map { sealer in try endpoint.mappingSecrets(sealer.seal) } ?? endpoint)
        try await insert(kind: "endpoint", name: endpoint.name) { db in
            try db.execute(
                sql: "INSERT INTO endpoint (name, config_name, body) VALUES (?, ?, ?)",
                arguments: [endpoint.name, endpoint.configName, body])
        }
    }

    public func endpoint(named name: String) async throws -> Endpoint? {
        try await (fetchOne(sql: "SELECT body FROM endpoint WHERE name = ?", name) as Endpoint?).map(opened)
    }

    public func endpoints() async throws -> [Endpoint] {
        try await (fetchAll(sql: "SELECT body FROM endpoint ORDER BY name") as [Endpoint]).map(opened)
    }

    public func updateEndpoint(_ endpoint: Endpoint) async throws {
        let body = try Self.encode(sealer.map { sealer in try endpoint.mappingSecrets(sealer.seal) } ?? endpoint)
        try await database.write { db in
            try db.execute(
                sql: "UPDATE endpoint SET config_name = ?, body = ? WHERE name = ?",
                arguments: [endpoint.configName, body, endpoint.name])
            guard db.changesCount > 0 else { throw ServalError.notFound("Endpoint", endpoint.name) }
        }
    }

    public func deleteEndpoint(named name: String) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: "DELETE FROM endpoint WHERE name = ?", arguments: [name])
            let deleted = db.changesCount > 0
            try Self.deleteTags(of: .endpoint, named: name, in: db)
            return deleted
        }
    }

    // MARK: Helpers

    private func opened(_ model: Model) throws -> Model {
        try sealer.map { sealer in try model.mappingSecrets(sealer.open) } ?? model
    }

    private func opened(_ config: EndpointConfig) throws -> EndpointConfig {
        try sealer.map { sealer in try config.mappingSecrets(sealer.open) } ?? config
    }

    private func opened(_ endpoint: Endpoint) throws -> Endpoint {
        try sealer.map { sealer in try endpoint.mappingSecrets(sealer.open) } ?? endpoint
    }

    private func insert(kind: String, name: String, _ body: @escaping @Sendable (Database) throws -> Void) async throws {
        do {
            try await database.write(body)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw ServalError(.conflict, "\(kind.prefix(1).uppercased() + kind.dropFirst()) \"\(name)\" already exists; delete it first or choose another name.")
        }
    }

    private func fetchOne<Value: Decodable & Sendable>(sql: String, _ name: String) async throws -> Value? {
        let data = try await database.read { db in try Data.fetchOne(db, sql: sql, arguments: [name]) }
        return try data.map(Self.decode)
    }

    private func fetchAll<Value: Decodable & Sendable>(sql: String) async throws -> [Value] {
        let rows = try await database.read { db in try Data.fetchAll(db, sql: sql) }
        return try rows.map(Self.decode)
    }

    static func encode(_ value: some Encodable) throws -> Data {
        try JSONEncoder().encode(value)
    }

    static func decode<Value: Decodable>(_ data: Data) throws -> Value {
        try JSONDecoder().decode(Value.self, from: data)
    }
}
